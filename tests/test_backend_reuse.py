"""Work the backend skips is invisible: scene reuse and lazy aesthetic scores equal recomputing."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import prompt_gym
from prompt_gym.backends.results import LazyScoreResult, ScoreResult
from prompt_gym.envs.core import slice_result

FIELDS = ("image_embeds", "aesthetic", "valid", "nonfinite", "black", "prompt_tokens")
# every pair draws the same scene: the second prompt only adds words the shapes world ignores
SAME_SCENE = [
    ("a red circle", "red circle, trending on artstation"),
    ("two blue spheres, vivid", "a photo of two blue spheres, vivid, 8k"),
    ("a striped star on black", "a striped star on black, masterpiece"),
]


def eager(**kwargs):
    """A backend with a disk cache: it never defers scores (the reference)."""
    return prompt_gym.make_backend("shapes", **kwargs)


def assert_same(a, b, fields=FIELDS):
    for name in fields:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def fresh(prompts, seeds):
    """Scores computed from scratch, one request per backend."""
    out = [
        prompt_gym.make_backend("shapes", memory_cache_size=0).score([p], [s])
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
    first = backend.score(prompts, seeds)
    assert backend.stats.images_generated == 6  # one per (scene, seed)
    assert backend.stats.extra["images_reused"] == 6
    expected = fresh(prompts, seeds)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(first, name), expected[name], err_msg=name)
    # a new prompt for a remembered scene is a cache miss that renders nothing
    again = backend.score(["a red circle, 4k"], [1])
    assert backend.stats.images_generated == 6 and not again.cache_hit[0]
    np.testing.assert_array_equal(again.image_embeds[0], first.image_embeds[6])
    assert again.aesthetic[0] == first.aesthetic[6]


def test_aesthetic_is_lazy_and_equals_the_eager_score(tmp_path) -> None:
    prompts = ["a red circle", "a blue box, foggy", "three green stars, neon", ""]
    seeds = [4, 5, 6, 7]
    reference = eager(cache_dir=str(tmp_path)).score(prompts, seeds)
    assert type(reference) is ScoreResult
    result = prompt_gym.make_backend("shapes").score(prompts, seeds)
    assert isinstance(result, LazyScoreResult) and result._aesthetic is None
    assert_same(result, reference)


def test_cached_results_whose_aesthetic_was_never_read_are_scored_on_demand() -> None:
    prompts = ["a red circle", "a pink egg, glowing", "two cubes", "a ring"]
    seeds = [1, 2, 3, 4]
    expected = fresh(prompts, seeds)
    backend = prompt_gym.make_backend("shapes")
    backend.score(prompts[:2], seeds[:2])  # aesthetic never read
    backend.score(["a ring, 8k"], [4])  # the scene of prompts[3], aesthetic never read
    hits = backend.score(prompts, seeds)
    assert hits.cache_hit.tolist() == [True, True, False, False]
    np.testing.assert_array_equal(hits.aesthetic, expected["aesthetic"])
    made = backend.stats.images_generated
    again = backend.score(prompts, seeds)  # the scores read above were written back
    assert type(again) is ScoreResult and backend.stats.images_generated == made
    np.testing.assert_array_equal(again.aesthetic, expected["aesthetic"])
    # so were those of the scenes: a new prompt drawing the scene of prompts[0] (scored again
    # above as a memory hit) takes the score too, without drawing anything
    reused = backend.score(["a red circle, trending on artstation"], [1])
    assert type(reused) is ScoreResult and backend.stats.images_generated == made
    assert reused.aesthetic[0] == expected["aesthetic"][0]


def test_lazy_results_slice_pickle_and_copy() -> None:
    prompts, seeds = ["a red circle", "a green square", "a blue star"], [0, 1, 2]
    reference = fresh(prompts, seeds)["aesthetic"]
    result = prompt_gym.make_backend("shapes").score(prompts, seeds)
    part = slice_result(result, 1, 3)
    assert isinstance(part, LazyScoreResult)
    np.testing.assert_array_equal(part.aesthetic, reference[1:])
    for clone in (pickle.loads(pickle.dumps(result)), copy.deepcopy(result)):
        np.testing.assert_array_equal(clone.aesthetic, reference)
    assert slice_result(result, 0, 1).aesthetic[0] == reference[0]


@pytest.mark.parametrize("memory_cache_size", [0, 3])
def test_batch_equals_single_with_reuse_and_lazy_scores(memory_cache_size: int) -> None:
    prompts = ["a red circle", "red circle, 8k", "a blue box", "a red circle", "a gem, shaded"]
    seeds = [0, 0, 1, 2, 0]
    batched = prompt_gym.make_backend("shapes", memory_cache_size=memory_cache_size)
    result = batched.score(prompts, seeds)
    expected = fresh(prompts, seeds)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(result, name), expected[name], err_msg=name)
