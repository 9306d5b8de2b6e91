"""The SB3 VecEnv adapter: SB3's API over the native batching, with action masks."""

from __future__ import annotations

import numpy as np
import pytest

from prompt_gym.envs.registration import ENV_IDS
from prompt_gym.envs.sb3 import SB3VecEnv

OFFLINE_IDS = [i for i in ENV_IDS if "-Shapes-" in i]


@pytest.mark.parametrize("env_id", OFFLINE_IDS)
def test_adapter_follows_the_sb3_api_and_resets_in_the_same_step(env_id):
    venv = SB3VecEnv(env_id, num_envs=3)
    venv.seed(5)
    obs = venv.reset()
    assert set(obs) == set(venv.observation_space.spaces)
    assert all(v.shape[0] == 3 for v in obs.values())
    finished = 0
    for _ in range(120):
        masks = np.stack(venv.env_method("action_masks"))
        assert masks.dtype == bool and masks.shape == (3, venv.action_space.n)
        actions = np.array([np.flatnonzero(m)[-1] for m in masks])  # STOP / EOS / last valid
        obs, rewards, dones, infos = venv.step(actions)
        assert rewards.shape == (3,) and dones.dtype == bool and len(infos) == 3
        for i in np.flatnonzero(dones):
            finished += 1
            assert "terminal_observation" in infos[i]
            assert infos[i]["TimeLimit.truncated"] is False
            assert venv.observation_space.contains({k: v[i] for k, v in obs.items()})
    assert finished >= 3
    venv.close()


def test_adapter_is_seeded_like_the_native_vector_env():
    a, b = (
        SB3VecEnv("ImageInversion-Shapes-v0", num_envs=2),
        SB3VecEnv("ImageInversion-Shapes-v0", num_envs=2),
    )
    a.seed(1)
    b.seed(1)
    obs_a, obs_b = a.reset(), b.reset()
    for key in obs_a:
        np.testing.assert_array_equal(obs_a[key], obs_b[key])
    assert not np.array_equal(obs_a["target"][0], obs_a["target"][1])  # sub-envs differ


def test_maskable_ppo_runs_on_the_adapter():
    from sb3_contrib import MaskablePPO

    venv = SB3VecEnv("ImageInversion-Shapes-v0", num_envs=2)
    model = MaskablePPO("MultiInputPolicy", venv, n_steps=16, batch_size=16, n_epochs=1, seed=0)
    model.learn(64)
    assert model.num_timesteps >= 64


def test_get_set_attr_and_wrapped():
    venv = SB3VecEnv("PromptRewrite-Shapes-v0", num_envs=2)
    assert venv.get_attr("max_modifiers") == [4, 4]
    venv.set_attr("invalid_penalty", -2.0, indices=[1])
    assert venv.get_attr("invalid_penalty") == [-1.0, -2.0]
    assert venv.env_is_wrapped(object) == [False, False]
