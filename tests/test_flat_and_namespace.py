"""Flat ``-Flat`` twins, the ``prompt_gym/`` namespace and every spec's ``max_episode_steps``."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import prompt_gym
from prompt_gym.envs.registration import ENV_IDS, FAMILIES, max_episode_steps

SHAPES_IDS = [i for i in ENV_IDS if "-Shapes-" in i]


def family_of(env_id: str) -> str:
    return next(f for f in sorted(FAMILIES, key=len, reverse=True) if env_id.startswith(f + "-"))


def test_every_id_has_namespaced_and_flat_twins():
    assert len(prompt_gym.NAMESPACED_IDS) == len(ENV_IDS)
    assert len(prompt_gym.FLAT_IDS) == 2 * len(ENV_IDS)
    for env_id in ENV_IDS:
        name, version = env_id.rsplit("-", 1)
        for twin in (
            f"prompt_gym/{env_id}",
            f"{name}-Flat-{version}",
            f"prompt_gym/{name}-Flat-{version}",
        ):
            assert gym.spec(twin).kwargs == gym.spec(env_id).kwargs
            assert gym.spec(twin).max_episode_steps == gym.spec(env_id).max_episode_steps


@pytest.mark.parametrize("env_id", SHAPES_IDS)
def test_max_episode_steps_is_the_envs_own_limit_and_never_exceeded(env_id):
    env = gym.make(env_id)
    limit = gym.spec(env_id).max_episode_steps
    assert (
        limit
        == env.unwrapped.core.max_steps
        == max_episode_steps(family_of(env_id), gym.spec(env_id).kwargs)
    )
    env.action_space.seed(0)
    for seed in range(5):
        env.reset(seed=seed)
        terminated = truncated = False
        steps = 0
        while not (terminated or truncated):
            mask = env.unwrapped.action_masks().astype(np.int8)
            _, _, terminated, truncated, _ = env.step(env.action_space.sample(mask=mask))
            steps += 1
            assert steps <= limit


def test_real_ids_share_the_shapes_ids_limits():
    for env_id in ENV_IDS:
        if "-Shapes-" not in env_id:
            name, version = env_id.rsplit("-", 1)
            shapes = gym.spec(f"{name}-Shapes-{version}").max_episode_steps
            assert gym.spec(env_id).max_episode_steps == shapes


@pytest.mark.parametrize("env_id", SHAPES_IDS)
def test_flat_observation_layout(env_id):
    name, version = env_id.rsplit("-", 1)
    flat = gym.make(f"prompt_gym/{name}-Flat-{version}")
    plain = gym.make(env_id)
    obs, _ = flat.reset(seed=3)
    dict_obs, _ = plain.reset(seed=3)
    assert isinstance(flat.observation_space, gym.spaces.Box)
    assert flat.observation_space.contains(obs)
    np.testing.assert_array_equal(obs, gym.spaces.flatten(plain.observation_space, dict_obs))
    mask_slice = flat.get_wrapper_attr("mask_slice")
    if "action_mask" in plain.observation_space.spaces:
        assert mask_slice == slice(0, int(flat.action_space.n))
        np.testing.assert_array_equal(obs[mask_slice], dict_obs["action_mask"])
    else:
        assert mask_slice is None


def test_flat_make_vec_is_native_and_matches_single_envs():
    env_id = "prompt_gym/ImageInversion-Shapes-Easy-Flat-v1"
    native = gym.make_vec(env_id, num_envs=3)
    sync = gym.make_vec(env_id, num_envs=3, vectorization_mode="sync")
    assert type(native.unwrapped).__name__ == "ImageInversionVectorEnv"
    assert native.mask_slice == slice(0, 9)
    a, _ = native.reset(seed=7)
    b, _ = sync.reset(seed=7)
    np.testing.assert_array_equal(a, b)
    for _ in range(12):
        actions = np.array([np.flatnonzero(o[native.mask_slice])[0] for o in a])
        a, ra, ta, tra, _ = native.step(actions)
        b, rb, tb, trb, _ = sync.step(actions)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(ra, rb)
        np.testing.assert_array_equal(ta | tra, tb | trb)


def test_namespaced_id_makes_without_importing_the_package():
    code = (
        "import sys, gymnasium as gym\n"
        "assert 'prompt_gym' not in sys.modules\n"
        "env = gym.make('prompt_gym:prompt_gym/ImageInversion-Shapes-v1')\n"
        "env.reset(seed=0)\n"
        "print(env.spec.id, env.spec.max_episode_steps)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["prompt_gym/ImageInversion-Shapes-v1", "26"]
