"""Bad actions in the native vector envs and the token env: one clear error, nothing lost."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import prompt_gym  # noqa: F401


def test_vector_env_rejects_a_masked_action_before_any_core_changes() -> None:
    """A bad action in one sub-env raises, and the vector env then goes on exactly as if the
    bad step had never been tried (compared with a twin that never saw it)."""
    twins = [gym.make_vec("ImageInversion-Shapes-v0", num_envs=3) for _ in range(2)]
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
    assert twins[0].unwrapped.backend.stats.misses == misses  # nothing was rendered
    out_a, out_b = twins[0].step(good), twins[1].step(good)
    for a, b in zip(out_a[:4], out_b[:4], strict=True):
        if isinstance(a, dict):
            for key in a:
                np.testing.assert_array_equal(a[key], b[key])
        else:
            np.testing.assert_array_equal(a, b)
    assert list(out_a[4]["prompt"]) == list(out_b[4]["prompt"])


def test_token_env_rejects_out_of_range_and_non_integer_tokens() -> None:
    env = gym.make("PromptRewriteTokens-Shapes-v0")
    env.reset(seed=0)
    n = env.action_space.n
    for action in (n, -1):
        with pytest.raises(ValueError, match=f"action {action} is not allowed") as err:
            env.step(action)
        assert f"of {n} (ids 0..{n - 1}" in str(err.value) and len(str(err.value)) < 200
    with pytest.raises(ValueError, match="action must be an integer"):
        env.step(1.5)
    env.step(0)  # nothing was lost: a valid token still works
