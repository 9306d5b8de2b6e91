"""Windows and tiles (``crop.py``): drawing only part of an image never changes a byte."""

from __future__ import annotations

import numpy as np
import pytest

from prompt_gym.backends.shapes import crop, geometry, params, render, vocab

STYLES = list(vocab.STYLES)
SHAPES = list(vocab.SHAPES)
COLOURS = list(vocab.COLOURS)


def random_prompts(n: int, rng: np.random.Generator) -> list[str]:
    """Prompts over the whole vocabulary: counts, sizes, positions, backgrounds, 0-4 styles."""
    out = []
    for _ in range(n):
        words = []
        if rng.random() < 0.2:
            words.append(str(rng.choice(["two", "three", "several", "pair of"])))
        if rng.random() < 0.4:
            words.append(str(rng.choice(list(vocab.SIZES))))
        if rng.random() < 0.7:
            words.append(str(rng.choice(COLOURS)))
        if rng.random() < 0.9:
            words.append(str(rng.choice(SHAPES)) + ("s" if rng.random() < 0.15 else ""))
        if rng.random() < 0.3:
            words.append(str(rng.choice(list(vocab.POSITION_PHRASES.values()))))
        if rng.random() < 0.3:
            words.append(f"on a {rng.choice(COLOURS)} background")
        k = int(rng.choice([0, 1, 1, 2, 3, 4]))
        words += [str(s) for s in rng.choice(STYLES, size=k, replace=False)]
        out.append(" ".join(words))
    return out


def whole(p: params.SceneParams, h: int, w: int) -> tuple[np.ndarray, crop.Grid]:
    return np.arange(p.geom.shape[0]), crop.Grid.whole(h, w)


def tiles(size: tuple[int, int]):
    """A plan that covers every image with tiles of ``size``."""

    def plan(p: params.SceneParams, h: int, w: int) -> tuple[np.ndarray, crop.Grid]:
        n, r, c = p.geom.shape[0], min(size[0], h), min(size[1], w)
        ty = np.minimum(np.arange(-(-h // r)) * r, h - r)
        tx = np.minimum(np.arange(-(-w // c)) * c, w - c)
        per = ty.size * tx.size
        top = np.tile(np.repeat(ty, tx.size), n)
        left = np.tile(np.tile(tx, ty.size), n)
        return np.repeat(np.arange(n), per), crop.Grid(
            h, w, r, c, top, left, np.ones(n * per, bool)
        )

    return plan


def render_with(monkeypatch, plan, prompts, seeds, h, w) -> np.ndarray:
    monkeypatch.setattr(render, "plan_windows", plan)
    return render.render_prompts(prompts, seeds, h, w)


@pytest.mark.parametrize("size", [(64, 64), (48, 64), (40, 37), (17, 23)])
def test_windows_and_tiles_draw_the_same_bytes(monkeypatch, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(size))
    prompts = random_prompts(120, rng)
    seeds = [int(s) for s in rng.integers(0, 2**63 - 1, size=len(prompts))]
    expected = render_with(monkeypatch, whole, prompts, seeds, *size)
    planned = render_with(monkeypatch, crop.plan_windows, prompts, seeds, *size)
    np.testing.assert_array_equal(planned, expected)
    for tile in [(7, 9), (size[0] // 2 + 1, size[1] // 3 + 1)]:
        tiled = render_with(monkeypatch, tiles(tile), prompts, seeds, *size)
        np.testing.assert_array_equal(tiled, expected)


def test_a_single_image_in_its_own_box_is_unchanged(monkeypatch) -> None:
    """One image per batch: the window is exactly its box, the tightest test of the bounds."""
    rng = np.random.default_rng(7)
    boxed = 0
    for prompt in random_prompts(300, rng):
        seed = int(rng.integers(0, 2**63 - 1))
        expected = render_with(monkeypatch, whole, [prompt], [seed], 64, 64)
        p = params.resolve([prompt], [seed], 64.0)
        monkeypatch.setattr(crop, "_WINDOW_COST_PX", 0)
        monkeypatch.setattr(crop, "_GRID_COST_PX", 0)
        _, grid = crop.plan_windows(p, 64, 64)
        boxed += not grid.full
        got = render_with(monkeypatch, crop.plan_windows, [prompt], [seed], 64, 64)
        np.testing.assert_array_equal(got, expected, err_msg=prompt)
    assert boxed > 100  # most images fit a window smaller than the image


def test_windows_are_used_for_a_typical_batch() -> None:
    rng = np.random.default_rng(0)
    pairs = zip(rng.choice(COLOURS, 64), rng.choice(SHAPES, 64), strict=True)
    prompts = [f"a {c} {s}" for c, s in pairs]
    p = params.resolve(prompts, list(range(64)), 64.0)
    source, grid = crop.plan_windows(p, 64, 64)
    assert not grid.full and grid.rows * grid.cols < 0.5 * 64 * 64
    assert sorted(set(source.tolist())) == list(range(64))


@pytest.mark.parametrize("name", vocab.GEOMETRIES)
def test_extent_bounds_hold_for_every_geometry(name: str) -> None:
    """``sdf < delta`` implies ``max(|u|, |v|) <= E + C delta`` (what the boxes rely on)."""
    e, c = crop.EXTENT[name]
    grid = np.linspace(-4.0, 4.0, 801, dtype=np.float32)
    u = grid[None, None, :]
    v = grid[None, :, None]
    k = np.full((1, 1, 1), 40.0, np.float32)
    ring = np.array([[0.74, 0.26]], np.float32)
    if name == "ring":
        e = float(ring.sum())
    depth = np.empty((1, grid.size, grid.size), np.float32)
    geometry.DEPTH[name](u * k, v * k, k, ring, depth)
    sdf = (0.5 - depth[0]) / k[0, 0, 0]
    reach = np.maximum(np.abs(u[0]), np.abs(v[0]))
    deltas = [0.0, 0.05, 0.2, 0.39] if name == "star" else [0.0, 0.05, 0.2, 0.6, 1.0, 1.5]
    for delta in deltas:
        inside = sdf < delta
        assert inside.any()
        assert reach[inside].max() <= e + c * delta + 1e-3, (name, delta)


def test_star_template_border_is_beyond_the_windowed_reach() -> None:
    t = geometry.template("star").reshape(geometry.TEMPLATE_SIZE, geometry.TEMPLATE_SIZE)
    border = np.concatenate([t[0], t[-1], t[:, 0], t[:, -1]])
    assert border.min() > crop.STAR_MAX_DELTA


def test_crop_takes_each_window_of_a_bank() -> None:
    rng = np.random.default_rng(1)
    bank = rng.random((4, 3, 10, 12)).astype(np.float32)
    grid = crop.Grid(10, 12, 4, 5, np.array([0, 6, 3]), np.array([7, 0, 2]))
    which = np.array([3, 0, 1])
    got = grid.crop(bank, which, np.arange(3))
    for i in range(3):
        y, x = grid.top[i], grid.left[i]
        np.testing.assert_array_equal(got[i], bank[which[i], :, y : y + 4, x : x + 5])
