"""Reward formulas on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from prompt_gym.rewards import (
    REWARD_CONFIGS,
    REWARD_RANGES,
    RewriteScores,
    image_similarity,
    promptist_v1,
    rewrite_reward,
)

E1, E2 = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
D = np.array([0.6, 0.8, 0.0])


def scores(image_y, aes_x, aes_y, valid_x=None, valid_y=None, text_x=E1):
    k = len(aes_x)
    return RewriteScores(
        text_x=text_x,
        image_y=np.array(image_y),
        aes_x=np.array(aes_x, dtype=np.float32),
        aes_y=np.array(aes_y, dtype=np.float32),
        valid_x=np.ones(k, bool) if valid_x is None else np.array(valid_x),
        valid_y=np.ones(k, bool) if valid_y is None else np.array(valid_y),
    )


def test_image_similarity_is_the_mean_cosine():
    assert image_similarity(np.stack([E1, D]), E1) == pytest.approx((1.0 + 0.6) / 2)
    assert image_similarity(np.stack([E1, D]), E1, np.array([True, False])) == pytest.approx(0.0)


def test_promptist_v1_by_hand():
    # cos(text(x), image(y)) = 0.6 and 0.0 -> 20*0.6-5.6 = 6.4 -> min(., 0) = 0; 20*0-5.6 = -5.6
    out = promptist_v1(scores([D, E2], aes_x=[5.0, 4.0], aes_y=[6.5, 4.5]))
    assert out["relevance"] == pytest.approx((0.0 - 5.6) / 2)
    assert out["aesthetic"] == pytest.approx(((6.5 - 5.0) + (4.5 - 4.0)) / 2)
    assert out["reward"] == pytest.approx(out["relevance"] + out["aesthetic"])


def test_relevance_hinge_threshold_is_cos_028():
    at = 0.28
    y = np.array([[at, np.sqrt(1 - at**2), 0.0]])
    assert promptist_v1(scores(y, [1.0], [1.0]))["relevance"] == pytest.approx(0.0, abs=1e-9)
    below = np.array([[0.2, np.sqrt(1 - 0.04), 0.0]])
    assert promptist_v1(scores(below, [1.0], [1.0]))["relevance"] == pytest.approx(20 * 0.2 - 5.6)


def test_failed_images_get_the_floors():
    out = promptist_v1(scores([E1], aes_x=[3.0], aes_y=[9.0], valid_y=[False]))
    assert out["relevance"] == pytest.approx(-25.6)  # cos floor -1: 20*-1 - 5.6
    assert out["aesthetic"] == pytest.approx(-3.0)  # aes floor 0 - 3
    out = promptist_v1(scores([E1], aes_x=[3.0], aes_y=[9.0], valid_x=[False]))
    assert out["aesthetic"] == pytest.approx(9.0)


def test_ablation_configs_use_one_term():
    s = scores([E2], aes_x=[2.0], aes_y=[5.0])
    assert rewrite_reward("relevance")(s)["reward"] == pytest.approx(-5.6)
    assert rewrite_reward("aesthetic")(s)["reward"] == pytest.approx(3.0)


def test_every_config_documents_a_range_and_respects_it():
    rng = np.random.default_rng(0)
    for name, fn in REWARD_CONFIGS.items():
        lo, hi = REWARD_RANGES[name]
        for _ in range(50):
            y = rng.standard_normal((3, 3))
            y /= np.linalg.norm(y, axis=1, keepdims=True)
            out = fn(
                scores(y, rng.uniform(0, 10, 3), rng.uniform(0, 10, 3), valid_y=rng.random(3) > 0.2)
            )
            assert lo <= out["reward"] <= hi


def test_unknown_config_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown reward config 'nope'"):
        rewrite_reward("nope")
