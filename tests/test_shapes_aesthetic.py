"""Shapes world: the procedural aesthetic and how modifiers move it (and relevance)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prompt_gym.backends.shapes import vocab
from prompt_gym.backends.shapes.aesthetic import C_MAX, W0, WC, WK, WQ, aesthetic, components
from prompt_gym.backends.shapes.features import thumbnail
from prompt_gym.backends.shapes.render import ShapesGenerator
from prompt_gym.backends.shapes.scorer import ShapesScorer

SEEDS = list(range(300, 316))


def sigmoid10(z: float) -> float:
    return 10.0 / (1.0 + math.exp(-z))


# ----------------------------------------------------------------------------- exact values


def test_weights_are_the_documented_ones() -> None:
    assert (W0, WC, WK, WQ, C_MAX) == (-2.25, 2.5, 4.0, 1.0, 0.55)


def test_uniform_colour() -> None:
    """Uniform red: rg = 1, yb = 0.5, no spread, no subject: only the mean colour term."""
    img = np.zeros((1, 16, 16, 3), np.uint8)
    img[..., 0] = 255
    c = 0.3 * math.sqrt(1.0**2 + 0.5**2)  # 0.33541
    assert components(thumbnail(img))["composition"][0] == 0.0
    assert aesthetic(img)[0] == pytest.approx(sigmoid10(-2.25 + 2.5 * c), abs=1e-5)


def test_centred_white_square_on_black() -> None:
    """A 4x4 white square in the middle of a 16x16 black image (and the same scene at 64 px)."""
    img = np.zeros((1, 16, 16, 3), np.uint8)
    img[0, 6:10, 6:10] = 255
    contrast = math.sqrt((1 / 16) * (15 / 16))  # std of a 1/16 share of ones: 0.242061
    q_pos, q_border, q_size = 1.0, 1.0, 1.0 - abs(16 / 256 - 0.25) / 0.25  # 0.25
    composition = (q_pos + q_border + q_size) / 3  # 0.75
    c = components(thumbnail(img))
    assert c["colourfulness"][0] == pytest.approx(0.0, abs=1e-12)
    assert c["contrast"][0] == pytest.approx(contrast, abs=1e-9)
    assert c["composition"][0] == pytest.approx(composition, abs=1e-9)
    expected = sigmoid10(W0 + WK * contrast + WQ * composition)  # 3.7010
    assert aesthetic(img)[0] == pytest.approx(expected, abs=1e-5)
    big = np.repeat(np.repeat(img, 4, axis=1), 4, axis=2)
    assert aesthetic(big)[0] == pytest.approx(expected, abs=1e-5)


def test_subject_touching_the_top_edge() -> None:
    """The same square moved to the top edge: off the thirds, and on the border ring."""
    img = np.zeros((1, 16, 16, 3), np.uint8)
    img[0, 0:4, 6:10] = 255
    c = components(thumbnail(img))
    # border colour: 4 white of the 32 mid-edge pixels -> grey 0.125; the square still is the
    # whole subject (saliency 0.875 >> 0.35 * 0.875); centroid (0.5, 0.125), nearest point a third
    d = math.hypot(0.5 - 2 / 3, 0.125 - 1 / 3)
    assert d / 0.25 > 1  # -> q_pos = 0
    assert c["q_pos"][0] == 0.0
    assert c["q_border"][0] == pytest.approx(1 - 4 * 4 / 60)  # 4 of 60 ring pixels
    assert c["q_size"][0] == pytest.approx(0.25)
    composition = (0.0 + (1 - 16 / 60) + 0.25) / 3
    expected = sigmoid10(W0 + WK * math.sqrt(15 / 256) + WQ * composition)
    assert aesthetic(img)[0] == pytest.approx(expected, abs=1e-5)


def test_colourfulness_is_capped() -> None:
    """Half pure red, half pure blue: very colourful, capped at C_MAX."""
    img = np.zeros((1, 16, 16, 3), np.uint8)
    img[0, :, :8, 0] = 255
    img[0, :, 8:, 2] = 255
    rg = np.array([1.0, 0.0])  # red, blue halves
    yb = np.array([0.5, -1.0])
    c = math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())
    assert components(thumbnail(img))["colourfulness"][0] == pytest.approx(c, abs=1e-9)
    assert c > C_MAX


def test_range_and_batch_shapes() -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(8, 40, 40, 3), dtype=np.uint8)
    prompts = [
        f"a {c} {s}, {st}"
        for c, s, st in zip(vocab.COLOUR_NAMES, vocab.SHAPE_NAMES, vocab.STYLES, strict=False)
    ]
    renders = ShapesGenerator(64).generate(prompts, list(range(len(prompts))))
    for images in (
        noise,
        renders,
        np.zeros((2, 16, 16, 3), np.uint8),
        np.full((2, 9, 9, 3), 255, np.uint8),
    ):
        scores = aesthetic(images)
        assert scores.dtype == np.float32 and scores.shape == (len(images),)
        assert ((scores >= 0) & (scores <= 10)).all()
    assert aesthetic(np.zeros((0, 16, 16, 3), np.uint8)).shape == (0,)


def reference_components(image: np.ndarray) -> dict[str, float]:
    """The documented terms computed directly in float64 from one image's thumbnail."""
    t = thumbnail(image[None])[0].astype(np.float64).reshape(3, -1)
    rg, yb = t[0] - t[1], 0.5 * (t[0] + t[1]) - t[2]
    luma = 0.299 * t[0] + 0.587 * t[1] + 0.114 * t[2]
    grid = t.reshape(3, 16, 16)
    edges = [grid[:, 0, 4:12], grid[:, -1, 4:12], grid[:, 4:12, 0], grid[:, 4:12, -1]]
    border = np.concatenate(edges, axis=1).mean(axis=1)
    sal = np.sqrt(((t - border[:, None]) ** 2).sum(axis=0)) / math.sqrt(3)
    top = max(sal.max(), 0.15)
    m = np.clip((sal - 0.35 * top) / (0.3 * top), 0, 1).reshape(16, 16)
    c = (np.arange(16) + 0.5) / 16
    total = m.sum()
    colourfulness = math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())
    if total < 1e-9:  # no subject: no composition
        return {"colourfulness": colourfulness, "contrast": float(luma.std()), "composition": 0.0}
    cx, cy = (m.sum(axis=0) * c).sum() / total, (m.sum(axis=1) * c).sum() / total
    points = [(0.5, 0.5), (1 / 3, 1 / 3), (2 / 3, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 2 / 3)]
    d = min(math.hypot(cx - x, cy - y) for x, y in points)
    ring = (m[0].sum() + m[-1].sum() + m[1:-1, 0].sum() + m[1:-1, -1].sum()) / 60
    q = [
        min(max(v, 0.0), 1.0)
        for v in (1 - d / 0.25, 1 - 4 * ring, 1 - abs(total / 256 - 0.25) / 0.25)
    ]
    return {
        "colourfulness": colourfulness,
        "contrast": float(luma.std()),
        "composition": sum(q) / 3,
    }


def test_terms_match_a_float64_reference_on_renders_faint_ones_included() -> None:
    """Near-grey, faint and ordinary renders: every term within 1e-5 of the float64 formula.

    Faint images (largest saliency under 0.15 * sqrt(3)) get a mask of their own; near-grey ones
    need the colour spread from sums of (R - G)**2, not from RGB covariances, which lose it.
    """
    prompts = [
        "a white circle on a white background, pastel",
        "a gray square on a gray background, foggy",
        "white in the top left pastel high contrast",
        "a silver egg, foggy, blurry",
        *(f"a {c} {s}" for c, s in zip(vocab.COLOUR_NAMES, vocab.SHAPE_NAMES, strict=False)),
    ]
    images = ShapesGenerator(64).generate(prompts, list(range(len(prompts))))
    got = components(thumbnail(images))
    for i, image in enumerate(images):
        expected = reference_components(image)
        for name, value in expected.items():
            assert got[name][i] == pytest.approx(value, abs=1e-5), (prompts[i], name)


def test_fused_scores_equal_standalone_ones_batched_or_single(scorer: ShapesScorer) -> None:
    rng = np.random.default_rng(1)
    prompts = [
        " ".join(rng.choice(list(vocab.STYLES), 2)) + f" {rng.choice(vocab.SHAPE_NAMES)}"
        for _ in range(40)
    ]
    images = ShapesGenerator(64).generate(prompts, list(range(40)))
    _, fused = scorer.embed_images_with_aesthetic(images)
    np.testing.assert_array_equal(fused, scorer.aesthetic(images))
    single = np.concatenate([scorer.aesthetic(images[i : i + 1]) for i in range(40)])
    np.testing.assert_array_equal(fused, single)


# --------------------------------------------------------------------------- modifiers


@pytest.fixture(scope="module")
def scorer() -> ShapesScorer:
    return ShapesScorer()


@pytest.fixture(scope="module")
def gen() -> ShapesGenerator:
    return ShapesGenerator(64)


def effect(
    scorer: ShapesScorer, gen: ShapesGenerator, prompt: str, style: str
) -> tuple[float, float]:
    """(aesthetic gain, relevance change) of appending ``style``, both averaged over seeds.

    Relevance is Promptist's: cosine between the *original* prompt's text and the image.
    """
    base = gen.generate([prompt] * len(SEEDS), SEEDS)
    styled = gen.generate([f"{prompt}, {style}"] * len(SEEDS), SEEDS)
    text = scorer.embed_texts([prompt])[0]
    gain = float(scorer.aesthetic(styled).mean() - scorer.aesthetic(base).mean())
    rel = float(
        (scorer.embed_images(styled) @ text).mean() - (scorer.embed_images(base) @ text).mean()
    )
    return gain, rel


SUBJECTS = [
    "a red circle",
    "a blue square",
    "two black triangles",
    "a yellow star on a green background",
]


@pytest.mark.parametrize("style", ["rainbow", "neon", "psychedelic"])
def test_hacks_raise_aesthetic_and_destroy_relevance(
    scorer: ShapesScorer, gen: ShapesGenerator, style: str
) -> None:
    """Measured (gain, relevance change) at 64 px over 16 seeds, e.g. rainbow on the four
    subjects: (+1.0, -0.33), (+1.0, -0.28), (+2.4, -0.25), (+1.9, -0.17)."""
    effects = np.array([effect(scorer, gen, prompt, style) for prompt in SUBJECTS])
    assert (effects[:, 0] > 0.1).all() and effects[:, 0].mean() > 0.8, effects
    assert (effects[:, 1] < -0.15).all(), effects


@pytest.mark.parametrize("style", ["vivid", "high contrast", "centered", "outlined"])
def test_honest_modifiers_raise_aesthetic_and_keep_relevance(
    scorer: ShapesScorer, gen: ShapesGenerator, style: str
) -> None:
    for prompt in ("a red circle", "a blue square"):
        gain, rel = effect(scorer, gen, prompt, style)
        assert gain > 0.1, (prompt, gain)
        assert rel > -0.02, (prompt, rel)


@pytest.mark.parametrize("style", ["foggy", "metallic", "monochrome"])
def test_some_modifiers_lower_both(scorer: ShapesScorer, gen: ShapesGenerator, style: str) -> None:
    gain, rel = effect(scorer, gen, "a red circle", style)
    assert gain < -0.5 and rel < -0.02, (gain, rel)


def test_junk_changes_nothing(scorer: ShapesScorer, gen: ShapesGenerator) -> None:
    assert effect(scorer, gen, "a red circle", "8k, trending on artstation") == (0.0, 0.0)


def test_modifiers_interact_with_the_subject(scorer: ShapesScorer, gen: ShapesGenerator) -> None:
    """ "dark" helps a bright subject and hurts a dark one; no modifier is best for every prompt."""
    assert effect(scorer, gen, "a yellow circle", "dark")[0] > 0.5
    assert effect(scorer, gen, "a navy square", "dark")[0] < -0.5
    best = set()
    for prompt in ("a yellow circle", "a navy square", "a black triangle", "a gray cube"):
        text = scorer.embed_texts([prompt])[0]
        base = scorer.aesthetic(gen.generate([prompt] * 8, SEEDS[:8])).mean()
        styled = [f"{prompt}, {s}" for s in vocab.STYLES]
        images = gen.generate([p for p in styled for _ in range(8)], SEEDS[:8] * len(styled))
        aes = scorer.aesthetic(images).reshape(len(styled), 8).mean(axis=1) - base
        rel = np.minimum(20 * (scorer.embed_images(images) @ text) - 5.6, 0)  # Promptist's f_rel
        reward = aes + rel.reshape(len(styled), 8).mean(axis=1)
        best.add(list(vocab.STYLES)[int(np.argmax(reward))])
    assert len(best) >= 3, best
