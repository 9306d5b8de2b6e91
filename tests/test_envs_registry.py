"""Registry-wide env tests: every id that runs offline, checked the same way (Gymnasium style)."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence

import prompt_gym
from prompt_gym.envs.registration import ENV_IDS, TIERS

SHAPES_IDS = [i for i in ENV_IDS if "-Shapes-" in i]
REAL_IDS = [i for i in ENV_IDS if "-Shapes-" not in i]
TINY_KWARGS = {"ImageInversion-v0": {"n_captions": 2}}
"""Cheaper settings for the tiny backend, whose random BLIP decodes every caption to full length."""
CASES = [pytest.param(i, {}, id=i) for i in SHAPES_IDS] + [
    pytest.param(i, {"backend": "tiny", **TINY_KWARGS.get(i, {})}, id=f"{i}[tiny]")
    for i in REAL_IDS
]
"""Every id that runs offline: the Shapes ids, and the real ids on the ``tiny`` backend (the real
model classes with tiny random weights). Envs made by name share one backend per process, so the
native and sync vector envs of a tiny id read each other's cache and compare exactly."""


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
    v0 = {f"{f}{v}-v0" for f in families for v in ("", "-Shapes")}
    v1 = {f"{f}-Shapes{tier}-v1" for f in families for tier in TIERS[f]}
    assert set(ENV_IDS) == v0 | v1
    tiers = {"", "-Easy", "-Medium", "-Hard"}
    assert {f"ImageInversion-Shapes{t}-v1" for t in tiers} <= set(ENV_IDS)
    assert all(gym.spec(i).kwargs["backend"] == "shapes-v3" for i in v1)
    for env_id in ENV_IDS:
        spec = gym.spec(env_id)
        assert spec.vector_entry_point is not None
        assert spec.nondeterministic == ("-Shapes-" not in env_id)


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_gymnasium_check_env_passes_without_warnings(env_id, kwargs):
    env = gym.make(env_id, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # diffusers' Euler scheduler (third-party, the tiny backend) trips a numpy 2 deprecation
        warnings.filterwarnings("ignore", message="__array__ implementation doesn't accept a copy")
        check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_sb3_check_env_passes(env_id, kwargs):
    """SB3's checker steps unmasked random actions, so it runs the mode for agents that cannot mask."""
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    sb3_check_env(gym.make(env_id, invalid_action="penalize", **kwargs).unwrapped, warn=True)


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_same_seed_gives_identical_trajectories(env_id, kwargs):
    a, b = gym.make(env_id, **kwargs), gym.make(env_id, **kwargs)
    steps = 40 if not kwargs else 8
    assert data_equivalence(rollout(a, 7, steps), rollout(b, 7, steps), exact=True)
    assert not data_equivalence(rollout(a, 7, steps), rollout(b, 8, steps), exact=True)


@pytest.mark.parametrize(("env_id", "kwargs"), CASES)
def test_pickle_round_trip_continues_identically(env_id, kwargs):
    env = gym.make(env_id, **kwargs)
    env.reset(seed=3)
    rng = np.random.default_rng(3)

    def act() -> int:
        return int(rng.choice(np.flatnonzero(env.unwrapped.action_masks())))

    _, _, terminated, truncated, _ = env.step(act())
    if terminated or truncated:
        env.reset()
    clone = pickle.loads(pickle.dumps(env))
    for _ in range(5):
        action = act()
        out_a, out_b = env.step(action), clone.step(action)
        assert data_equivalence(out_a, out_b, exact=True)
        if out_a[2] or out_a[3]:
            break


VECTOR_CASES = [
    pytest.param(*case.values, n, id=f"{case.id}-{n}")
    for case in CASES
    for n in ((1, 4) if not case.values[1] else (3,))
]


@pytest.mark.parametrize(("env_id", "kwargs", "num_envs"), VECTOR_CASES)
def test_native_vector_env_equals_sync_vector_env(env_id, kwargs, num_envs):
    native = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
    )
    sync = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="sync", vector_kwargs={}, **kwargs
    )
    assert native.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"]
    obs_n, _info_n = native.reset(seed=11)
    obs_s, _info_s = sync.reset(seed=11)
    assert data_equivalence(obs_n, obs_s, exact=True)
    rng = np.random.default_rng(0)
    for _ in range(30 if not kwargs else 5):  # the tiny backend is slow; shapes covers autoreset
        masks = native.unwrapped.action_masks()
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        out_n, out_s = native.step(actions), sync.step(actions)
        for a, b in zip(out_n[:4], out_s[:4], strict=True):
            assert data_equivalence(a, b, exact=True)
        assert out_n[4].keys() == out_s[4].keys()
        for key in out_n[4]:
            assert data_equivalence(out_n[4][key], out_s[4][key], exact=True), key


@pytest.mark.parametrize("env_id", SHAPES_IDS)
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


@pytest.mark.parametrize("env_id", SHAPES_IDS)
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


@pytest.mark.parametrize("env_id", REAL_IDS)
def test_real_ids_without_weights_fail_with_a_clear_error(env_id, monkeypatch, tmp_path):
    from prompt_gym.backends.real import ModelNotFoundError

    monkeypatch.setenv("PROMPT_GYM_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match=r"prompt-gym download .*PROMPT_GYM_MODEL_DIR"):
        gym.make(env_id)


def test_version_is_exposed():
    assert prompt_gym.__version__
