"""Registry-wide env tests: every id that runs offline, checked the same way (Gymnasium style)."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence

import prompt_gym
from prompt_gym.envs.registration import ENV_IDS

OFFLINE_IDS = [i for i in ENV_IDS if "-Shapes-" in i]
"""Ids that run here: the shapes world (the tiny backend runs the same classes, see test_real_*)."""


def rollout(env: gym.Env, seed: int, steps: int = 40) -> list:
    """Observations, rewards and flags of a seeded rollout driven by masked random actions."""
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    trace = [obs]
    for _ in range(steps):
        mask = env.unwrapped.action_masks().astype(np.int8)
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample(mask=mask))
        trace += [obs, reward, terminated, truncated, info.get("prompt")]
        if terminated or truncated:
            obs, info = env.reset()
            trace.append(obs)
    return trace


def test_all_families_are_registered():
    families = {"ImageInversion", "PromptRewrite", "PromptRewriteTokens"}
    assert set(ENV_IDS) == {f"{f}{v}-v0" for f in families for v in ("", "-Shapes")}
    for env_id in ENV_IDS:
        spec = gym.spec(env_id)
        assert spec.vector_entry_point is not None
        assert spec.nondeterministic == ("-Shapes-" not in env_id)


@pytest.mark.parametrize("env_id", OFFLINE_IDS)
def test_gymnasium_check_env_passes_without_warnings(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", OFFLINE_IDS)
def test_sb3_check_env_passes(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    sb3_check_env(gym.make(env_id).unwrapped, warn=True)


@pytest.mark.parametrize("env_id", OFFLINE_IDS)
def test_same_seed_gives_identical_trajectories(env_id):
    a, b = gym.make(env_id), gym.make(env_id)
    assert data_equivalence(rollout(a, 7), rollout(b, 7), exact=True)
    assert not data_equivalence(rollout(a, 7), rollout(gym.make(env_id), 8), exact=True)


@pytest.mark.parametrize("env_id", OFFLINE_IDS)
def test_pickle_round_trip_continues_identically(env_id):
    env = gym.make(env_id)
    env.reset(seed=3)
    env.step(int(np.flatnonzero(env.unwrapped.action_masks())[0]))
    clone = pickle.loads(pickle.dumps(env))
    for _ in range(3):
        action = int(np.flatnonzero(env.unwrapped.action_masks())[-1 if _ == 2 else 0])
        out_a, out_b = env.step(action), clone.step(action)
        assert data_equivalence(out_a, out_b, exact=True)
        if out_a[2] or out_a[3]:
            break


@pytest.mark.parametrize("env_id", OFFLINE_IDS)
@pytest.mark.parametrize("num_envs", [1, 4])
def test_native_vector_env_equals_sync_vector_env(env_id, num_envs):
    native = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    sync = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync")
    assert native.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"]
    obs_n, _info_n = native.reset(seed=11)
    obs_s, _info_s = sync.reset(seed=11)
    assert data_equivalence(obs_n, obs_s, exact=True)
    rng = np.random.default_rng(0)
    for _ in range(30):
        masks = native.unwrapped.action_masks()
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        out_n, out_s = native.step(actions), sync.step(actions)
        for a, b in zip(out_n[:4], out_s[:4], strict=True):
            assert data_equivalence(a, b, exact=True)
        assert out_n[4].keys() == out_s[4].keys()
        for key in out_n[4]:
            assert data_equivalence(out_n[4][key], out_s[4][key], exact=True), key


@pytest.mark.parametrize("env_id", OFFLINE_IDS)
def test_record_episode_statistics_works_on_single_and_vector(env_id):
    env = gym.wrappers.RecordEpisodeStatistics(gym.make(env_id))
    env.reset(seed=0)
    done, info = False, {}
    while not done:
        action = int(np.flatnonzero(env.unwrapped.action_masks())[-1])
        _, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    assert "episode" in info
    venv = gym.wrappers.vector.RecordEpisodeStatistics(gym.make_vec(env_id, num_envs=2))
    venv.reset(seed=0)
    for _ in range(80):
        masks = venv.unwrapped.action_masks()
        _, _, _, _, info = venv.step(np.array([np.flatnonzero(m)[-1] for m in masks]))
        if "episode" in info:
            break
    assert "episode" in info


@pytest.mark.parametrize("env_id", OFFLINE_IDS)
def test_env_docstring_has_the_gymnasium_sections(env_id):
    doc = gym.spec(env_id).entry_point
    module, _, name = doc.partition(":")
    cls = getattr(__import__(module, fromlist=[name]), name)
    for section in (
        "Description",
        "Action Space",
        "Observation Space",
        "Rewards",
        "Starting State",
        "Episode End",
        "Arguments",
        "Info keys",
        "Version History",
    ):
        assert f"## {section}" in cls.__doc__, section


def test_make_with_package_prefix_imports_the_package(tmp_path):
    import subprocess
    import sys

    code = "import gymnasium as gym; env = gym.make('prompt_gym:ImageInversion-Shapes-v0'); env.reset(seed=0); print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_import_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, prompt_gym, gymnasium as gym; gym.make('ImageInversion-Shapes-v0'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("env_id", [i for i in ENV_IDS if "-Shapes-" not in i])
def test_real_ids_without_weights_fail_with_a_clear_error(env_id, monkeypatch, tmp_path):
    monkeypatch.setenv("PROMPT_GYM_MODEL_DIR", str(tmp_path))
    with pytest.raises((ValueError, FileNotFoundError, RuntimeError), match="sd-turbo"):
        gym.make(env_id)


def test_version_is_exposed():
    assert prompt_gym.__version__
