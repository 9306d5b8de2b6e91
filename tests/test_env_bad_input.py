"""Bad and masked actions, single and native vector envs: one clear error, or a penalized no-op.

An action inside the action space that the mask forbids is a no-op rewarded ``invalid_penalty``
by default (``invalid_action="raise"`` is the strict option); an action outside the space (out of
range, a bool, a non-integral or infinite float) always raises ``ValueError``, before anything
changes. No observation's mask, the terminal one's included, is all zeros.
"""

from __future__ import annotations

import importlib

import gymnasium as gym
import numpy as np
import pytest

import prompt_gym  # noqa: F401
from prompt_gym.envs.registration import ENV_IDS, FAMILIES

SHAPES_IDS = [i for i in ENV_IDS if "-Shapes-" in i]
V0_IDS = [f"{family}-Shapes-v0" for family in FAMILIES]
MASKED_IDS = ["ImageInversion-Shapes-v0", "PromptRewrite-Shapes-v0"]
"""The families whose masks forbid actions (every token id is valid in PromptRewriteTokens)."""
NOT_ACTIONS = [float("inf"), float("-inf"), float("nan"), True, np.bool_(False), 1.5, "1", None]


def assert_same(a, b) -> None:
    """Equal step outputs (observations, rewards, flags), key by key."""
    for x, y in zip(a, b, strict=True):
        if isinstance(x, dict):
            assert x.keys() == y.keys()
            for key in x:
                if isinstance(x[key], np.ndarray):
                    np.testing.assert_array_equal(x[key], y[key])
        else:
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("env_id", V0_IDS)
@pytest.mark.parametrize("action", NOT_ACTIONS, ids=repr)
def test_a_non_integer_action_raises_value_error_and_loses_nothing(env_id, action) -> None:
    env, twin = gym.make(env_id), gym.make(env_id)
    env.reset(seed=0)
    twin.reset(seed=0)
    with pytest.raises(ValueError, match="action must be an integer in"):
        env.step(action)
    assert env.unwrapped.elapsed_steps == 0
    assert_same(env.step(env.unwrapped.stop_action)[:4], twin.step(twin.unwrapped.stop_action)[:4])


@pytest.mark.parametrize("env_id", V0_IDS)
def test_an_action_outside_the_space_raises_in_either_mode(env_id) -> None:
    for mode in ("penalize", "raise"):
        env = gym.make(env_id, invalid_action=mode)
        env.reset(seed=0)
        n = int(env.action_space.n)
        for action in (n, -1, np.int64(n + 3), 2**70):
            with pytest.raises(ValueError, match=f"is outside the action space Discrete\\({n}\\)"):
                env.step(action)
        env.step(np.int64(0))  # NumPy integers and integral floats are actions
        env.reset(seed=0)
        env.step(0.0)


@pytest.mark.parametrize("env_id", MASKED_IDS)
def test_a_masked_action_is_a_penalized_no_op_by_default(env_id) -> None:
    env, twin = gym.make(env_id, invalid_penalty=-0.25), gym.make(env_id)
    obs, _ = env.reset(seed=3)
    twin.reset(seed=3)
    env.step(0)
    obs, *_ = twin.step(0)  # action 0 is now masked (no repeats)
    assert obs["action_mask"][0] == 0
    backend = env.unwrapped.backend
    misses = backend.stats.misses
    after, reward, terminated, truncated, info = env.step(0)
    assert (reward, terminated, truncated, info["invalid_action"]) == (-0.25, False, False, True)
    assert backend.stats.misses == misses  # nothing was rendered
    for key in obs:
        np.testing.assert_array_equal(after[key], obs[key])  # the state is unchanged
    assert env.unwrapped.elapsed_steps == 2  # but the step counts toward the limit
    stop = env.unwrapped.stop_action
    assert env.step(stop)[1] == twin.step(stop)[1]  # and the episode goes on as the twin's


@pytest.mark.parametrize("env_id", MASKED_IDS)
def test_a_masked_action_raises_with_invalid_action_raise(env_id) -> None:
    env = gym.make(env_id, invalid_action="raise")
    env.reset(seed=3)
    env.step(0)
    with pytest.raises(
        ValueError, match=r"action 0 is not allowed now .*invalid_action='penalize'"
    ):
        env.step(0)
    assert env.unwrapped.elapsed_steps == 1


@pytest.mark.parametrize("env_id", MASKED_IDS)
def test_penalized_actions_truncate_at_the_families_step_limit(env_id) -> None:
    family = env_id.split("-")[0]
    module = importlib.import_module(FAMILIES[family][0])
    limit = module.max_episode_steps(gym.spec(env_id).kwargs)
    env = gym.make(env_id, max_episode_steps=-1)  # the env's own limit, no TimeLimit
    env.reset(seed=0)
    env.step(0)
    for step in range(2, limit + 1):
        _, _, terminated, truncated, info = env.step(0)
        assert info["invalid_action"] and not terminated
        assert truncated == (step == limit)


@pytest.mark.parametrize("env_id", SHAPES_IDS)
def test_max_episode_steps_is_the_envs_own_limit(env_id) -> None:
    """The function registration sets ``spec.max_episode_steps`` with gives each id's limit."""
    family = env_id.split("-")[0]
    module = importlib.import_module(FAMILIES[family][0])
    spec = gym.spec(env_id)
    limit = module.max_episode_steps(spec.kwargs)
    assert limit == gym.make(env_id).unwrapped.core.max_steps
    assert spec.max_episode_steps in (None, limit)


@pytest.mark.parametrize("env_id", SHAPES_IDS)
@pytest.mark.parametrize("ending", ["stop", "limit"])
def test_no_mask_is_all_zeros_at_the_end_of_an_episode(env_id, ending) -> None:
    """Under ``NEXT_STEP`` autoreset the terminal observation is fed to the policy: its mask
    must leave an action (STOP) valid, or masked logits are all ``-inf``. Checked for episodes
    ended by STOP and by the length limit, on single and native vector envs."""
    env = gym.make(env_id)
    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    stop = env.unwrapped.stop_action

    def pick(mask: np.ndarray) -> int:
        mask = mask.copy()
        mask[stop] = False
        return stop if ending == "stop" or not mask.any() else int(np.flatnonzero(mask)[0])

    obs, _ = env.reset(seed=1)
    terminated = False
    while not terminated:
        obs, _, terminated, _, _ = env.step(pick(env.unwrapped.action_masks()))
        assert env.unwrapped.action_masks()[stop]
        if "action_mask" in obs:
            assert obs["action_mask"][stop] == 1
    venv.reset(seed=1)
    ended = np.zeros(2, dtype=bool)
    while not ended.all():
        actions = np.array([pick(m) for m in venv.unwrapped.action_masks()])
        vobs, _, vterm, _, _ = venv.step(actions)
        ended |= vterm
        assert venv.unwrapped.action_masks()[:, stop].all()
        if "action_mask" in vobs:
            assert vobs["action_mask"][:, stop].all()


@pytest.mark.parametrize("env_id", V0_IDS)
def test_vector_env_rejects_the_wrong_number_of_actions(env_id) -> None:
    venv = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    stop = venv.unwrapped.stop_action
    for actions in (np.full(2, stop), np.full(4, stop), [], stop):
        with pytest.raises(ValueError, match="one action per sub-env \\(3\\)"):
            venv.step(actions)
        with pytest.raises(ValueError, match="one action per sub-env \\(3\\)"):
            venv.unwrapped.step_some(actions, np.ones(3, dtype=bool))
    venv.step(np.full(3, stop))  # nothing was lost


def test_vector_env_rejects_a_masked_action_before_any_core_changes() -> None:
    """With ``invalid_action="raise"`` a masked action in one sub-env raises, and the vector env
    then goes on exactly as if the bad step had never been tried (compared with a twin)."""
    twins = [
        gym.make_vec("ImageInversion-Shapes-v0", num_envs=3, invalid_action="raise")
        for _ in range(2)
    ]
    for venv in twins:
        venv.reset(seed=0)
    first = np.argmax(twins[0].unwrapped.action_masks(), axis=1)
    for venv in twins:
        venv.step(first)  # token first[i] is now chosen, so masked, in every sub-env
    good = np.argmax(twins[0].unwrapped.action_masks(), axis=1)
    bad = good.copy()
    bad[2] = first[2]
    misses = twins[0].unwrapped.backend.stats.misses
    with pytest.raises(ValueError, match=f"action {first[2]} is not allowed"):
        twins[0].step(bad)
    bad[2] = 99
    with pytest.raises(ValueError, match="action 99 is outside the action space"):
        twins[0].step(bad)
    assert twins[0].unwrapped.backend.stats.misses == misses  # nothing was rendered
    out_a, out_b = twins[0].step(good), twins[1].step(good)
    assert_same(out_a[:4], out_b[:4])
    assert list(out_a[4]["prompt"]) == list(out_b[4]["prompt"])


def test_vector_env_penalizes_a_masked_action_as_the_single_env_does() -> None:
    env_id = "PromptRewrite-Shapes-v0"
    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    singles = [gym.make(env_id) for _ in range(2)]
    venv.reset(seed=5)
    for i, env in enumerate(singles):
        env.reset(seed=5 + i)
    penalized = []
    for actions in ([0, 1], [0, 2], [3, 3]):  # the second step repeats 0 in sub-env 0
        vout = venv.step(np.array(actions))
        for i, env in enumerate(singles):
            obs, reward, terminated, truncated, info = env.step(actions[i])
            assert (vout[1][i], vout[2][i], vout[3][i]) == (reward, terminated, truncated)
            for key in obs:
                np.testing.assert_array_equal(vout[0][key][i], obs[key])
            penalized.append(info.get("invalid_action", False))
    assert penalized == [False, False, True, False, False, False]


def test_token_env_rejects_out_of_range_and_non_integer_tokens() -> None:
    env = gym.make("PromptRewriteTokens-Shapes-v0")
    env.reset(seed=0)
    n = env.action_space.n
    for action in (n, -1):
        with pytest.raises(ValueError, match=f"action {action} is outside") as err:
            env.step(action)
        assert f"[0, {n})" in str(err.value) and len(str(err.value)) < 200
    with pytest.raises(ValueError, match="action must be an integer"):
        env.step(1.5)
    env.step(0)  # nothing was lost: a valid token still works


def test_sb3_vec_env_rejects_the_wrong_number_of_actions() -> None:
    from prompt_gym.envs.sb3 import SB3VecEnv

    venv = SB3VecEnv("PromptRewrite-Shapes-v0", num_envs=2)
    venv.reset()
    stop = venv.venv.stop_action
    for actions in (np.full(3, stop), np.int64(stop)):
        with pytest.raises(ValueError, match="one action per sub-env \\(2\\)"):
            venv.step(actions)
    venv.step(np.full(2, stop))  # nothing was lost


@pytest.mark.parametrize(
    ("env_id", "kwargs", "name"),
    [
        ("ImageInversion-Shapes-v0", {"target_index": 1.5}, "target_index"),
        ("ImageInversion-Shapes-v0", {"num_images": 2.0}, "num_images"),
        ("ImageInversion-Shapes-v0", {"n_captions": "3"}, "n_captions"),
        ("ImageInversion-Shapes-v1", {"n_tokens": True}, "n_tokens"),
        ("PromptRewrite-Shapes-v0", {"max_modifiers": "4"}, "max_modifiers"),
        ("PromptRewriteTokens-Shapes-v0", {"max_new_tokens": 7.5}, "max_new_tokens"),
    ],
)
def test_mistyped_kwargs_are_rejected_at_make_time_with_their_name(env_id, kwargs, name):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        gym.make(env_id, **kwargs)
    with pytest.raises(ValueError, match=f"^{name} must be"):
        gym.make_vec(env_id, num_envs=2, **kwargs)


def test_numbers_of_the_right_kind_still_work():
    env = gym.make("ImageInversion-Shapes-v0", invalid_penalty=-1, n_tokens=np.int64(6).item())
    env.reset(seed=0)
    assert env.unwrapped.action_space.n == 7


@pytest.mark.parametrize("backend", ["shapes", "tiny"])
def test_an_unknown_level_is_rejected_at_make_time_on_every_world(backend):
    with pytest.raises(ValueError, match=r"unknown target level 'stlye'.*'style'"):
        gym.make("ImageInversion-v0", backend=backend, level="stlye")
