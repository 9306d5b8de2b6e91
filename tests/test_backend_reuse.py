"""Work the backend skips is invisible: scene reuse and skipped aesthetic scores equal recomputing."""

from __future__ import annotations

import numpy as np
import pytest

import prompt_gym

FIELDS = ("image_embeds", "aesthetic", "valid", "nonfinite", "black", "prompt_tokens")
# every pair draws the same scene: the second prompt only adds words the shapes world ignores
SAME_SCENE = [
    ("a red circle", "red circle, trending on artstation"),
    ("two blue spheres, vivid", "a photo of two blue spheres, vivid, 8k"),
    ("a striped star on black", "a striped star on black, masterpiece"),
]


def assert_same(a, b, fields=FIELDS):
    for name in fields:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def fresh(prompts, seeds):
    """Scores computed from scratch, one request per backend."""
    out = [
        prompt_gym.make_backend("shapes", memory_cache_size=0).score([p], [s], aesthetic=True)
        for p, s in zip(prompts, seeds, strict=True)
    ]
    return {name: np.concatenate([getattr(r, name) for r in out]) for name in FIELDS}


def test_scene_keys_group_prompts_that_draw_the_same_image() -> None:
    gen = prompt_gym.make_backend("shapes").generator
    for a, b in SAME_SCENE:
        assert gen.scene_keys([a]) == gen.scene_keys([b])
        np.testing.assert_array_equal(gen.generate([a], [3]), gen.generate([b], [3]))
    assert gen.scene_keys(["a red circle"]) != gen.scene_keys(["a blue circle"])


def test_reused_scenes_equal_recomputed_ones() -> None:
    backend = prompt_gym.make_backend("shapes")
    prompts = [p for pair in SAME_SCENE for p in pair] * 2
    seeds = [0] * 6 + [1] * 6
    first = backend.score(prompts, seeds, aesthetic=True)
    assert backend.stats.images_generated == 6  # one per (scene, seed)
    assert backend.stats.extra["images_reused"] == 6
    expected = fresh(prompts, seeds)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(first, name), expected[name], err_msg=name)
    # a new prompt for a remembered scene is a cache miss that renders nothing
    again = backend.score(["a red circle, 4k"], [1], aesthetic=True)
    assert backend.stats.images_generated == 6 and not again.cache_hit[0]
    np.testing.assert_array_equal(again.image_embeds[0], first.image_embeds[6])
    assert again.aesthetic[0] == first.aesthetic[6]


def test_scenes_remembered_without_aesthetic_are_drawn_again_when_it_is_asked_for() -> None:
    prompts = ["a red circle", "a pink egg, glowing", "two cubes", "a ring"]
    seeds = [1, 2, 3, 4]
    expected = fresh(prompts, seeds)
    backend = prompt_gym.make_backend("shapes")
    backend.score(prompts[:2], seeds[:2])  # no aesthetic asked
    backend.score(["a ring, 8k"], [4])  # the scene of prompts[3], no aesthetic asked
    assert backend.stats.images_generated == 3
    asked = backend.score(prompts, seeds, aesthetic=True)
    assert not asked.cache_hit.any() and backend.stats.images_generated == 7
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(asked, name), expected[name], err_msg=name)
    # the scenes are now remembered with their aesthetic: a new prompt drawing one reuses it
    reused = backend.score(["a red circle, trending on artstation"], [1], aesthetic=True)
    assert backend.stats.images_generated == 7 and not reused.cache_hit[0]
    assert reused.aesthetic[0] == expected["aesthetic"][0]
    hits = backend.score(prompts, seeds, aesthetic=True)
    assert hits.cache_hit.all() and backend.stats.images_generated == 7


@pytest.mark.parametrize("memory_cache_size", [0, 3])
def test_batch_equals_single_with_scene_reuse(memory_cache_size: int) -> None:
    prompts = ["a red circle", "red circle, 8k", "a blue box", "a red circle", "a gem, shaded"]
    seeds = [0, 0, 1, 2, 0]
    batched = prompt_gym.make_backend("shapes", memory_cache_size=memory_cache_size)
    result = batched.score(prompts, seeds, aesthetic=True)
    expected = fresh(prompts, seeds)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(result, name), expected[name], err_msg=name)
