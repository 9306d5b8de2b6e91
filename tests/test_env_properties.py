"""Property test: any sequence of valid actions keeps every observation inside its space.

It runs over every id that runs offline: the Shapes ids, and the real ids on the ``tiny`` backend
(fewer and shorter examples there: the tiny models are slower).
"""

from __future__ import annotations

from functools import cache

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prompt_gym.envs.registration import ENV_IDS

SHAPES_IDS = [i for i in ENV_IDS if "-Shapes-" in i]
REAL_IDS = [i for i in ENV_IDS if "-Shapes-" not in i]
TINY_KWARGS = {"ImageInversion-v0": {"n_captions": 2}}


@cache
def make(env_id: str) -> gym.Env:
    """One env per id for the whole module (real ids on the tiny backend)."""
    if env_id in REAL_IDS:
        return gym.make(env_id, backend="tiny", **TINY_KWARGS.get(env_id, {})).unwrapped
    return gym.make(env_id).unwrapped


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    env_id=st.sampled_from(SHAPES_IDS),
    seed=st.integers(0, 2**31 - 1),
    choices=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=30),
)
def test_valid_action_sequences_keep_observations_in_their_spaces(env_id, seed, choices):
    check_sequence(env_id, seed, choices)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    env_id=st.sampled_from(REAL_IDS),
    seed=st.integers(0, 2**31 - 1),
    choices=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=8),
)
def test_valid_action_sequences_on_the_tiny_backend(env_id, seed, choices):
    pytest.importorskip("diffusers")
    check_sequence(env_id, seed, choices)


def check_sequence(env_id: str, seed: int, choices: list[float]) -> None:
    """Reset with ``seed``, then take the valid action at each fraction of the valid list."""
    env = make(env_id)
    obs, info = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    for u in choices:
        valid = np.flatnonzero(env.action_masks())
        obs, reward, terminated, truncated, info = env.step(int(valid[int(u * len(valid))]))
        assert env.observation_space.contains(obs), {k: v for k, v in obs.items()}
        assert np.isfinite(reward) and isinstance(info["prompt"], str)
        if terminated or truncated:
            obs, info = env.reset()
            assert env.observation_space.contains(obs)
