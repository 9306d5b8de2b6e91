"""Shapes world: prompt parsing and the procedural generator."""

from __future__ import annotations

import numpy as np
import pytest

from prompt_gym.backends.protocols import Generator
from prompt_gym.backends.registry import resolve
from prompt_gym.backends.shapes import vocab
from prompt_gym.backends.shapes.render import ShapesGenerator
from prompt_gym.backends.shapes.scene import SceneSpec, parse_prompt

PROMPTS = [
    "a red circle",
    "two huge blue spheres in the top left on a yellow background, vivid, striped",
    "three tiny green stars, neon, grainy",
    "a box, outlined, dramatic lighting, vignette",
    "pastel pink egg on a black backdrop, rainbow, monochrome",
    "orange donuts in the corner, psychedelic, foggy, cinematic",
    "a gold cube, shaded, metallic, glowing",
    "",
    "trending on artstation, 8k",
    "a lime hexagon at the bottom, blurry, dotted, detailed, gradient",
]


@pytest.fixture(scope="module")
def gen() -> ShapesGenerator:
    return ShapesGenerator(64)


# --------------------------------------------------------------------------------------- parsing

PARSE_CASES = [
    ("a red circle", SceneSpec("circle", "red")),
    ("RED Circle!!", SceneSpec("circle", "red")),
    ("two blue balls", SceneSpec("ball", "blue", count=2)),
    ("boxes", SceneSpec("box", count=None)),
    ("a pair of crosses", SceneSpec("cross", count=2)),
    ("a picture of three disks", SceneSpec("disc", count=3)),
    ("a red circle on a blue background", SceneSpec("circle", "red", "blue")),
    ("red circle, blue backdrop", SceneSpec("circle", "red", "blue")),
    ("a red circle on green", SceneSpec("circle", "red", "green")),
    ("a huge star in the upper left corner", SceneSpec("star", size="huge", position="top left")),
    ("a star at the bottom", SceneSpec("star", position="bottom")),
    ("a star in the corner", SceneSpec("star", position="corner")),
    ("a star in the middle", SceneSpec("star", position="center")),
    ("a ring, high contrast, vivid, vivid", SceneSpec("ring", styles=("high contrast", "vivid"))),
    ("a cube, black and white", SceneSpec("cube", styles=("monochrome",))),
    ("a cube, three dimensional", SceneSpec("cube", styles=("shaded",))),
    ("grey doughnut", SceneSpec("donut", "gray")),
    ("an orb by greg rutkowski, 8k, unreal engine", SceneSpec("orb")),
    ("", SceneSpec()),
]


@pytest.mark.parametrize(("text", "spec"), PARSE_CASES)
def test_parse(text: str, spec: SceneSpec) -> None:
    assert parse_prompt(text) == spec


def test_parse_first_subject_wins() -> None:
    spec = parse_prompt("a red circle next to a blue square")
    assert (spec.shape, spec.colour) == ("circle", "red")


@pytest.mark.parametrize("text", PROMPTS + [c for c, _ in PARSE_CASES])
def test_canonical_prompt_round_trips(text: str) -> None:
    spec = parse_prompt(text)
    assert parse_prompt(spec.to_prompt()) == spec


def test_vocabulary_sizes() -> None:
    assert len(vocab.COLOURS) >= 12
    assert len(vocab.SHAPES) >= 10
    assert len(vocab.STYLES) >= 20


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="must be a str"):
        parse_prompt(3)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- generator


def test_registry_factory_and_protocol() -> None:
    gen = resolve("generator", "shapes")()
    assert isinstance(gen, Generator)
    assert gen.config() == {"name": "shapes", "version": "1", "resolution": 64}


def test_shape_dtype_and_determinism(gen: ShapesGenerator) -> None:
    a = gen.generate(PROMPTS, list(range(len(PROMPTS))))
    b = ShapesGenerator(64).generate(PROMPTS, list(range(len(PROMPTS))))
    assert a.shape == (len(PROMPTS), 64, 64, 3) and a.dtype == np.uint8
    assert a.flags.c_contiguous
    np.testing.assert_array_equal(a, b)


def test_batch_equals_single_in_any_order(gen: ShapesGenerator) -> None:
    prompts = PROMPTS * 3
    seeds = [7 * i + 1 for i in range(len(prompts))]
    batch = gen.generate(prompts, seeds)
    for i in range(0, len(prompts), 4):
        np.testing.assert_array_equal(gen.generate([prompts[i]], [seeds[i]])[0], batch[i])
    perm = np.random.default_rng(0).permutation(len(prompts))
    shuffled = gen.generate([prompts[i] for i in perm], [seeds[i] for i in perm])
    np.testing.assert_array_equal(shuffled, batch[perm])
    np.testing.assert_array_equal(gen.generate(prompts[:5], seeds[:5]), batch[:5])


@pytest.mark.parametrize("resolution", [8, 32, 128, 50])
def test_resolutions(resolution: int) -> None:
    g = ShapesGenerator(resolution)
    images = g.generate(PROMPTS, list(range(len(PROMPTS))))
    assert images.shape == (len(PROMPTS), resolution, resolution, 3)
    assert images.std(axis=(1, 2, 3)).min() > 0  # never blank


def test_same_scene_at_every_resolution() -> None:
    """Sizes and positions are fractions, so a 128 px render pools down to the 32 px one."""
    small = ShapesGenerator(32).generate(["a red square on the left"], [3])[0].astype(float)
    big = ShapesGenerator(128).generate(["a red square on the left"], [3])[0].astype(float)
    pooled = big.reshape(32, 4, 32, 4, 3).mean(axis=(1, 3))
    assert np.abs(pooled - small).mean() < 4.0


def test_empty_prompt_is_a_seeded_random_scene(gen: ShapesGenerator) -> None:
    images = gen.generate([""] * 8, list(range(8)))
    assert all(im.std() > 5 for im in images)
    assert len({im.tobytes() for im in images}) == 8


def test_junk_words_change_nothing(gen: ShapesGenerator) -> None:
    base = ["a red circle", "two blue cubes, vivid", ""]
    junk = [p + ", 8k, trending on artstation, by greg rutkowski, masterpiece" for p in base]
    np.testing.assert_array_equal(gen.generate(base, [1, 2, 3]), gen.generate(junk, [1, 2, 3]))


def test_style_order_and_repeats_change_nothing(gen: ShapesGenerator) -> None:
    a = gen.generate(["a red circle, vivid, striped"], [4])
    b = gen.generate(["striped red circle, vivid, vivid"], [4])
    np.testing.assert_array_equal(a, b)


def test_seed_jitters_the_render(gen: ShapesGenerator) -> None:
    images = gen.generate(["a red circle"] * 6, list(range(6)))
    assert len({im.tobytes() for im in images}) == 6
    # but a red circle stays red: the mean colour of the salient pixels is red in every render
    for im in images.astype(int):
        mask = np.abs(im - im[0, 0]).sum(axis=-1) > 100
        r, g, b = im[mask].mean(axis=0)
        assert r > 150 and g < 80 and b < 80


def test_unspecified_colour_comes_from_the_seed(gen: ShapesGenerator) -> None:
    images = gen.generate(["a circle"] * 16, list(range(16))).astype(int)
    colours = set()
    for im in images:
        mask = np.abs(im - im[0, 0]).sum(axis=-1) > 60
        if mask.any():
            colours.add(tuple((im[mask].mean(axis=0) // 64).astype(int)))
    assert len(colours) >= 5


@pytest.mark.parametrize(
    "words",
    [
        ("circle", "ball", "sphere", "disc", "orb"),
        ("square", "box", "cube"),
        ("triangle", "pyramid"),
        ("oval", "egg", "ellipse"),
        ("ring", "donut"),
    ],
)
def test_synonyms_render_differently(gen: ShapesGenerator, words: tuple[str, ...]) -> None:
    images = gen.generate([f"a blue {w}" for w in words], [5] * len(words)).astype(int)
    for i in range(len(words)):
        for j in range(i + 1, len(words)):
            differing = (np.abs(images[i] - images[j]).max(axis=-1) > 40).sum()
            assert differing >= 20, (words[i], words[j], differing)


def test_every_style_changes_the_image(gen: ShapesGenerator) -> None:
    base = gen.generate(["a green triangle"], [9])[0].astype(int)
    for style in vocab.STYLES:
        if style in ("minimal", "flat"):  # no-ops on a single flat shape
            continue
        img = gen.generate([f"a green triangle, {style}"], [9])[0].astype(int)
        assert np.abs(img - base).mean() > 0.2, style


def test_count_draws_that_many_objects(gen: ShapesGenerator) -> None:
    for count, word in ((1, "one"), (2, "two"), (3, "three")):
        im = gen.generate([f"{word} small black squares on a white background"], [2])[0]
        dark = (im.astype(int).sum(axis=-1) < 200).astype(int)
        # count connected blobs along rows/columns with a tiny flood fill
        assert _blobs(dark) == count


def _blobs(mask: np.ndarray) -> int:
    seen = np.zeros_like(mask, dtype=bool)
    blobs = 0
    for y, x in zip(*np.nonzero(mask), strict=True):
        if seen[y, x]:
            continue
        blobs += 1
        stack = [(y, x)]
        while stack:
            cy, cx = stack.pop()
            if (
                0 <= cy < mask.shape[0]
                and 0 <= cx < mask.shape[1]
                and mask[cy, cx]
                and not seen[cy, cx]
            ):
                seen[cy, cx] = True
                stack += [(cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)]
    return blobs


def test_position_words_move_the_object(gen: ShapesGenerator) -> None:
    def centroid(prompt: str) -> np.ndarray:
        im = gen.generate([prompt], [0])[0].astype(int)
        ys, xs = np.nonzero(np.abs(im - im[0, 32]).sum(axis=-1) > 100)
        return np.array([xs.mean(), ys.mean()]) / 64

    assert centroid("a red circle on the left")[0] < 0.4
    assert centroid("a red circle on the right")[0] > 0.6
    assert centroid("a red circle at the top")[1] < 0.4
    assert centroid("a red circle in the bottom right")[1] > 0.6


@pytest.mark.parametrize(
    ("prompts", "seeds", "message"),
    [
        (["a"], [1, 2], "got 1 prompts but 2 seeds"),
        ([3], [1], "prompt 0 must be a str"),
        (["a"], [-1], r"seed 0 must be in \[0, 2\*\*63\)"),
        (["a"], [1.5], "seed 0 must be an int"),
        (["a"], [True], "seed 0 must be an int"),
        ("a red circle", [1], "single string"),
    ],
)
def test_bad_input(gen: ShapesGenerator, prompts: list, seeds: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gen.generate(prompts, seeds)


def test_bad_resolution() -> None:
    with pytest.raises(ValueError, match="at least 8"):
        ShapesGenerator(4)
    with pytest.raises(ValueError, match="must be an int"):
        ShapesGenerator(64.0)  # type: ignore[arg-type]


def test_empty_batch(gen: ShapesGenerator) -> None:
    assert gen.generate([], []).shape == (0, 64, 64, 3)


def test_large_seeds_and_numpy_ints(gen: ShapesGenerator) -> None:
    a = gen.generate(["a red circle"] * 2, [2**63 - 1, np.int64(5)])
    b = gen.generate(["a red circle"], [5])
    np.testing.assert_array_equal(a[1], b[0])


def test_large_batches_are_chunked_invisibly() -> None:
    gen = ShapesGenerator(128)  # chunks of 16 images at 128 px
    prompts = PROMPTS * 4
    seeds = list(range(len(prompts)))
    batch = gen.generate(prompts, seeds)
    for i in (0, 15, 16, 17, 39):
        np.testing.assert_array_equal(gen.generate([prompts[i]], [seeds[i]])[0], batch[i])
