"""Shapes world: the noisy captioner and the target sets."""

from __future__ import annotations

import numpy as np
import pytest

from prompt_gym.backends.protocols import Captioner, Target
from prompt_gym.backends.registry import resolve
from prompt_gym.backends.shapes import vocab
from prompt_gym.backends.shapes.captioner import SYNONYMS, ShapesCaptioner
from prompt_gym.backends.shapes.render import ShapesGenerator
from prompt_gym.backends.shapes.scene import parse_prompt
from prompt_gym.backends.shapes.targets import LEVELS, make_targets


@pytest.fixture(scope="module")
def targets() -> list[Target]:
    return make_targets("style", 6, seed=11) + make_targets("attributes", 6, seed=12)


# ------------------------------------------------------------------------------------ captioner


def test_protocol_and_registry() -> None:
    cap = resolve("captioner", "shapes")()
    assert isinstance(cap, Captioner)
    assert cap.config()["synonym_prob"] == 0.3


def test_noise_free_captions_are_canonical(targets: list[Target]) -> None:
    clean = ShapesCaptioner(synonym_prob=0, drop_prob=0, distractor_prob=0, wrong_colour_prob=0)
    for t, caps in zip(targets, clean.caption(targets, 3, seed=5), strict=True):
        assert caps == [t.caption] * 3
        assert parse_prompt(caps[0]) == t.spec


def test_deterministic_and_batch_independent(targets: list[Target]) -> None:
    cap = ShapesCaptioner()
    batch = cap.caption(targets, 4, seed=1)
    assert batch == ShapesCaptioner().caption(targets, 4, seed=1)
    assert [cap.caption([t], 4, seed=1)[0] for t in targets] == batch
    assert cap.caption(targets[::-1], 4, seed=1) == batch[::-1]
    assert cap.caption(targets, 2, seed=1) == [c[:2] for c in batch]
    assert cap.caption(targets, 4, seed=2) != batch


def test_noise_config(targets: list[Target]) -> None:
    n = 40
    swapped = ShapesCaptioner(synonym_prob=1, drop_prob=0, distractor_prob=0, wrong_colour_prob=0)
    for t, caps in zip(targets, swapped.caption(targets, n), strict=True):
        shapes = {parse_prompt(c).shape for c in caps}
        assert shapes <= {parse_prompt(w).shape for w in SYNONYMS[t.spec.shape]}
    dropped = ShapesCaptioner(synonym_prob=0, drop_prob=1, distractor_prob=0, wrong_colour_prob=0)
    for caps in dropped.caption(targets, n):
        for c in caps:
            spec = parse_prompt(c)
            assert spec.size is None and spec.background is None and spec.styles == ()
    noisy = ShapesCaptioner(synonym_prob=0, drop_prob=0, distractor_prob=1, wrong_colour_prob=0)
    for t, caps in zip(targets, noisy.caption(targets, 5), strict=True):
        for c in caps:
            assert c != t.caption and parse_prompt(c) == t.spec  # filler only, same scene
    wrong = ShapesCaptioner(synonym_prob=0, drop_prob=0, distractor_prob=0, wrong_colour_prob=1)
    for t, caps in zip(targets, wrong.caption(targets, 5), strict=True):
        assert all(parse_prompt(c).colour != t.spec.colour for c in caps)


def test_default_noise_rates(targets: list[Target]) -> None:
    caps = [c for cs in ShapesCaptioner().caption(targets, 50, seed=0) for c in cs]
    exact = np.mean([parse_prompt(c) in {t.spec for t in targets} for c in caps])
    with_filler = np.mean([any(p in c for p in vocab.CAPTION_PREFIXES) for c in caps])
    assert 0.0 < exact < 0.5
    assert 0.2 < with_filler < 0.4


def test_fallback_on_an_image_without_spec() -> None:
    image = ShapesGenerator(64).generate(["a red square on a blue background"], [4])[0]
    target = Target(image=image)
    cap = ShapesCaptioner(synonym_prob=0, drop_prob=0, distractor_prob=0, wrong_colour_prob=0)
    captions = cap.caption([target], 4, seed=0)[0]
    assert len(captions) == 4 and all(isinstance(c, str) and c for c in captions)
    best = parse_prompt(captions[0])
    assert (best.colour, best.shape, best.background) == ("red", "square", "blue")
    assert captions == cap.caption([Target(image=image.copy())], 4, seed=0)[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": -1}, "n must be"),
        ({"n": 1.5}, "n must be"),
        ({"seed": -2}, "seed must be"),
    ],
)
def test_bad_calls(targets: list[Target], kwargs: dict, message: str) -> None:
    call = {"n": 2, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        ShapesCaptioner().caption(targets, call["n"], seed=call["seed"])


def test_bad_targets_and_config() -> None:
    with pytest.raises(ValueError, match="target 0 must be a Target"):
        ShapesCaptioner().caption([np.zeros((8, 8, 3), np.uint8)], 1)  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"drop_prob must be in \[0, 1\]"):
        ShapesCaptioner(drop_prob=1.5)
    with pytest.raises(ValueError, match="uint8"):
        ShapesCaptioner().caption([Target(image=np.zeros((8, 8, 3)))], 1)


# --------------------------------------------------------------------------------------- targets


@pytest.mark.parametrize("level", LEVELS)
def test_levels(level: str) -> None:
    targets = make_targets(level, 20, seed=7, resolution=32)
    assert [t.target_id for t in targets] == [f"{level}-7-{i}" for i in range(20)]
    gen = ShapesGenerator(32)
    for t in targets:
        assert t.image.shape == (32, 32, 3) and t.image.dtype == np.uint8
        assert t.caption == t.spec.to_prompt() and parse_prompt(t.caption) == t.spec
        np.testing.assert_array_equal(
            gen.generate([t.caption], [t.extra["image_seed"]])[0], t.image
        )
    specs = [t.spec for t in targets]
    assert all(s.shape and s.colour for s in specs)
    depth = LEVELS.index(level)
    assert all((s.background is not None) == (depth >= 2) for s in specs)
    assert all((len(s.styles) > 0) == (depth >= 3) for s in specs)
    if depth >= 1:
        assert any(s.size for s in specs) and any(s.position for s in specs)
        assert any(s.count != 1 for s in specs)
    else:
        assert all(s.size is None and s.position is None and s.count == 1 for s in specs)


def test_targets_are_a_pure_function_of_level_seed_index() -> None:
    a = make_targets("background", 5, seed=1)
    b = make_targets("background", 8, seed=1)
    assert [t.caption for t in a] == [t.caption for t in b[:5]]
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b[:5], strict=False))
    assert [t.caption for t in make_targets("background", 5, seed=2)] != [t.caption for t in a]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("easy", 3, 0), "unknown target level"),
        (("objects", -1, 0), "n must be"),
        (("objects", 3, -1), "seed must be"),
    ],
)
def test_bad_target_requests(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_targets(*args)
