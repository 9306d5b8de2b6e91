"""The standard tutorials run unmodified on every id with default kwargs (Gymnasium style).

What a new user tries first: SB3's ``check_env(gym.make(id))``, the plain SB3 PPO tutorial
(``PPO("MultiInputPolicy", gym.make(id))``, which samples masked actions: they are penalized
no-ops) and sb3-contrib's ``MaskablePPO``, reading the env's ``action_masks``. The Shapes ids
run in the default suite; the real ids run on the ``tiny`` backend under ``-m slow``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import prompt_gym  # noqa: F401
from prompt_gym.envs.registration import ENV_IDS

SHAPES_IDS = [i for i in ENV_IDS if "-Shapes-" in i]
REAL_IDS = [i for i in ENV_IDS if "-Shapes-" not in i]
SHAPES_CONFIGS = list(
    {(gym.spec(i).entry_point, repr(gym.spec(i).kwargs)): i for i in SHAPES_IDS}.values()
)
"""One Shapes id per configuration (``-Shapes-v1`` and ``-Shapes-Medium-v1`` are the same)."""
CASES = [pytest.param(i, {}, id=i) for i in SHAPES_CONFIGS] + [
    pytest.param(i, {"backend": "tiny"}, id=f"{i}[tiny]", marks=pytest.mark.slow) for i in REAL_IDS
]
"""Every id with default kwargs; the real ids on the ``tiny`` backend (slow)."""

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*out of date:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_sb3_check_env_passes_on_the_made_env(env_id, kwargs) -> None:
    from stable_baselines3.common.env_checker import check_env

    env = gym.make(env_id, **kwargs)
    check_env(env)
    env.close()


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_plain_sb3_ppo_tutorial_runs(env_id, kwargs) -> None:
    """Unmasked PPO samples masked actions all the time: each is a penalized no-op."""
    from stable_baselines3 import PPO

    env = gym.make(env_id, **kwargs)
    model = PPO("MultiInputPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0)
    model.learn(256)
    assert model.num_timesteps >= 256
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    env.step(action)  # a predicted action (a 0-d array) is an action
    env.close()


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_maskable_ppo_runs_and_only_takes_valid_actions(env_id, kwargs) -> None:
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.wrappers import ActionMasker

    env = gym.make(env_id, **kwargs)
    masked = ActionMasker(env, lambda e: e.unwrapped.action_masks())
    model = MaskablePPO("MultiInputPolicy", masked, n_steps=64, batch_size=32, n_epochs=1, seed=0)
    model.learn(192)
    assert model.num_timesteps >= 192
    # the env's own ``action_masks`` (what MaskablePPO looks for unwrapped) gives the same masks
    obs, _ = env.reset(seed=0)
    for _ in range(8):
        mask = env.unwrapped.action_masks()
        assert np.array_equal(mask, masked.action_masks())
        action, _ = model.predict(obs, action_masks=mask)
        assert mask[int(action)]
        obs, _, terminated, truncated, info = env.step(action)
        assert not info.get("invalid_action", False)
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()


@pytest.mark.parametrize("env_id", SHAPES_IDS)
def test_masked_logits_are_finite_on_every_observation_of_a_next_step_rollout(env_id) -> None:
    """A policy masking its logits with the observation's ``action_mask`` (cleanrl style) never
    sees all of them masked, the terminal observations under ``NEXT_STEP`` autoreset included."""
    venv = gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point")
    obs, _ = venv.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(40):
        masks = obs["action_mask"] if "action_mask" in obs else venv.unwrapped.action_masks()
        assert masks.any(axis=1).all()
        actions = rng.integers(venv.single_action_space.n, size=4)  # masked ones are penalized
        obs, *_ = venv.step(actions)
