"""Property test: any sequence of valid actions keeps every observation inside its space."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prompt_gym.envs.registration import ENV_IDS

OFFLINE_IDS = [i for i in ENV_IDS if "-Shapes-" in i]
ENVS = {env_id: gym.make(env_id).unwrapped for env_id in OFFLINE_IDS}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    env_id=st.sampled_from(OFFLINE_IDS),
    seed=st.integers(0, 2**31 - 1),
    choices=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=30),
)
def test_valid_action_sequences_keep_observations_in_their_spaces(env_id, seed, choices):
    env = ENVS[env_id]
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
