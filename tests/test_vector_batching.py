"""The native vector env batches observations and infos exactly as Gymnasium would."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import concatenate, create_empty_array

import prompt_gym  # noqa: F401  (registers the ids)


def gymnasium_infos(venv, infos: list[dict]) -> dict:
    out: dict = {}
    for i, info in enumerate(infos):
        out = gym.vector.VectorEnv._add_info(venv, out, info, i)
    return out


def assert_same_infos(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key in a:
        if isinstance(a[key], dict):
            assert_same_infos(a[key], b[key])
            continue
        assert a[key].dtype == b[key].dtype, key
        assert a[key].tolist() == b[key].tolist(), key


def test_infos_batch_like_add_info() -> None:
    venv = gym.make_vec("ImageInversion-Shapes-v0", num_envs=3).unwrapped
    cases = [
        [{"prompt": "a", "similarity": 0.5, "n": 1, "ok": True}] * 3,
        [{"prompt": "a", "x": 1}, {"prompt": "b", "x": 2.5}, {"prompt": "c", "x": 3}],  # mixed
        [{"prompt": "a"}, {"prompt": "b", "invalid_action": True}, {"prompt": "c"}],  # missing
        [{"v": np.float32(1.5)}, {"v": np.float32(2.0)}, {"v": np.float32(0.0)}],
        [{"arr": np.zeros(2)}, {"arr": np.ones(2)}, {"arr": np.ones(2)}],
        [{"d": {"e": 1}}, {"d": {"e": 2}}, {"d": {"e": 3}}],
        [{"o": None}, {"o": (1, 2)}, {"o": "s"}],
    ]
    for infos in cases:
        assert_same_infos(venv._batch_infos(infos), gymnasium_infos(venv, infos))


def test_observations_batch_like_concatenate() -> None:
    venv = gym.make_vec("ImageInversion-Shapes-v0", num_envs=4).unwrapped
    venv.reset(seed=0)
    parts = [core.observation_parts() for core in venv.cores]
    space = venv.single_observation_space
    observed = [core._observe() for core in venv.cores]
    expected = concatenate(space, observed, create_empty_array(space, 4))
    got = venv._batch_obs(parts)
    for key in space:
        assert got[key].dtype == expected[key].dtype
        np.testing.assert_array_equal(got[key], expected[key])
    got["current"][:] = 7  # a returned batch is the caller's: the cores are untouched
    assert not (venv.cores[0].observation_parts()["current"] == 7).any()


def test_vector_steps_equal_single_env_steps_with_penalized_actions() -> None:
    kwargs = {"invalid_action": "penalize", "num_images": 2, "n_tokens": 4}
    venv = gym.make_vec("ImageInversion-Shapes-v0", num_envs=3, **kwargs)
    envs = [gym.make("ImageInversion-Shapes-v0", **kwargs) for _ in range(3)]
    obs, _ = venv.reset(seed=5)
    singles = [env.reset(seed=5 + i)[0] for i, env in enumerate(envs)]
    rng = np.random.default_rng(0)
    done = np.zeros(3, bool)
    for _ in range(25):
        actions = rng.integers(0, 5, size=3)
        obs, rewards, term, trunc, infos = venv.step(actions)
        for i, env in enumerate(envs):
            if done[i]:
                singles[i], info = env.reset()
                assert rewards[i] == 0.0
            else:
                singles[i], reward, t, tr, info = env.step(int(actions[i]))
                assert rewards[i] == reward and term[i] == t and trunc[i] == tr
                assert infos["prompt"][i] == info["prompt"]
                assert bool(infos.get("_invalid_action", np.zeros(3, bool))[i]) == (
                    "invalid_action" in info
                )
            for key in obs:
                np.testing.assert_array_equal(obs[key][i], singles[i][key])
        done = term | trunc


def test_batched_measures_equal_each_cores_own() -> None:
    from prompt_gym.backends import ScoreResult
    from prompt_gym.envs.image_inversion import measure_rows

    venv = gym.make_vec("ImageInversion-Shapes-v0", num_envs=1).unwrapped
    venv.reset(seed=0)
    core = venv.cores[0]
    rng = np.random.default_rng(3)
    r, d = 50, venv.backend.dim
    embeds = rng.standard_normal((r, d)).astype(np.float32)
    embeds /= np.linalg.norm(embeds, axis=1, keepdims=True)
    valid = rng.random(r) > 0.2
    targets = rng.standard_normal((r, d))
    similarity, current = measure_rows(embeds, valid, targets)
    for i in range(r):
        core._target64 = targets[i]
        one = ScoreResult(
            embeds[i : i + 1],
            np.zeros(1, np.float32),
            valid[i : i + 1],
            ~valid[i : i + 1],
            np.zeros(1, bool),
            np.zeros(1, np.int32),
            np.zeros(1, bool),
        )
        sim, cur, ok = core._measure(one)
        assert sim == similarity[i] and ok == valid[i]
        np.testing.assert_array_equal(cur, current[i])
