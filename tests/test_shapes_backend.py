"""The reward backend on the real shapes world (the fakes test the mechanism; this, the product)."""

from __future__ import annotations

import numpy as np
import pytest

import prompt_gym
from prompt_gym.backends.shapes.render import ShapesGenerator
from prompt_gym.envs.prompt_sets import load_prompts
from prompt_gym.throughput import prompt_pool

PROMPTS = [*prompt_pool(24, seed=3), "a red circle", "a red circle", ""]
SEEDS = [*range(24), 5, 5, 0]


def test_batch_equals_single_and_cache_equals_recompute_on_shapes() -> None:
    batched = prompt_gym.make_backend("shapes").score(PROMPTS, SEEDS, aesthetic=True)
    singles = [
        prompt_gym.make_backend("shapes").score([p], [s], aesthetic=True)
        for p, s in zip(PROMPTS, SEEDS, strict=True)
    ]
    np.testing.assert_array_equal(
        batched.image_embeds, np.concatenate([r.image_embeds for r in singles])
    )
    np.testing.assert_array_equal(batched.aesthetic, np.concatenate([r.aesthetic for r in singles]))
    backend = prompt_gym.make_backend("shapes")
    first = backend.score(PROMPTS, SEEDS, aesthetic=True)
    again = backend.score(PROMPTS, SEEDS, aesthetic=True)
    assert again.cache_hit.all() and not first.cache_hit[:24].any()
    np.testing.assert_array_equal(first.image_embeds, again.image_embeds)
    np.testing.assert_array_equal(first.aesthetic, again.aesthetic)
    np.testing.assert_array_equal(first.image_embeds, batched.image_embeds)
    assert backend.stats.misses == len(
        set(zip(PROMPTS, SEEDS, strict=True))
    )  # duplicates generated once


def test_disk_cache_of_shapes_reopens_with_identical_values(tmp_path) -> None:
    first = prompt_gym.make_backend("shapes", cache_dir=str(tmp_path)).score(
        PROMPTS, SEEDS, aesthetic=True
    )
    reopened = prompt_gym.make_backend("shapes", cache_dir=str(tmp_path))
    again = reopened.score(PROMPTS, SEEDS, aesthetic=True)
    assert again.cache_hit.all() and reopened.stats.disk_hits == len(
        set(zip(PROMPTS, SEEDS, strict=True))
    )
    np.testing.assert_array_equal(first.image_embeds, again.image_embeds)
    np.testing.assert_array_equal(first.aesthetic, again.aesthetic)


def test_make_backend_routes_overrides_and_rejects_unknown_ones() -> None:
    backend = prompt_gym.make_backend("shapes", resolution=32, memory_cache_size=7)
    assert backend.generate(["a red circle"], [0]).shape == (1, 32, 32, 3)
    with pytest.raises(ValueError, match="has no option 'colour_depth'"):
        prompt_gym.make_backend("shapes", colour_depth=8)
    with pytest.raises(ValueError, match="unknown backend 'shape'"):
        prompt_gym.make_backend("shape")


def test_shapes_prompt_splits_are_disjoint() -> None:
    backend = prompt_gym.make_backend("shapes")
    train, test = load_prompts(backend, "train"), load_prompts(backend, "test")
    assert len(train) > 100 and len(test) > 100 and not set(train) & set(test)
    assert set(load_prompts(backend, "all")) == set(train) | set(test)


def test_seed_jitters_position_size_and_hue_within_bounds() -> None:
    images = ShapesGenerator().generate(["a red circle"] * 32, list(range(32))).astype(float)
    centres, areas, hues = [], [], []
    for im in images:
        mask = np.abs(im - im[0, 0]).sum(axis=-1) > 100
        ys, xs = np.nonzero(mask)
        centres.append((xs.mean(), ys.mean()))
        areas.append(mask.mean())
        hues.append(im[mask].mean(axis=0))
    centres, areas, hues = np.array(centres), np.array(areas), np.array(hues)
    # position: +-0.11 of the side (7 px at 64) around the centre, and it does move
    assert np.abs(centres - 31.5).max() < 0.15 * 64 and centres.std(axis=0).min() > 1.0
    # size: x0.8..1.2 in radius, so the area varies by up to about (1.2 / 0.8)**2
    assert 1.2 < areas.max() / areas.min() < 2.6
    # colour: still red, the channels jitter a little (+-0.035 of 255 plus shading)
    assert (hues[:, 0] > 150).all() and (hues[:, 1:] < 80).all() and hues[:, 0].std() > 1.0
