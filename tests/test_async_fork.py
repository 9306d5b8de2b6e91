"""``AsyncVectorEnv`` with its default ``fork`` context works on a torch backend.

The parent builds one env (Gymnasium reads the spaces from it) and so runs the tiny models,
which starts torch's OpenMP threads; a forked worker then hung on its first multi-threaded op.
The run is a subprocess with a timeout, so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")

SCRIPT = textwrap.dedent(
    """
    import gymnasium as gym
    import numpy as np
    import prompt_gym  # noqa: F401

    envs = gym.make_vec(
        "PromptRewrite-v0", num_envs=2, vectorization_mode="async", backend="tiny"
    )
    obs, _ = envs.reset(seed=0)
    for _ in range(3):
        mask = obs["action_mask"]
        actions = np.array([int(np.flatnonzero(m)[0]) for m in mask])
        obs, reward, *_ = envs.step(actions)
    envs.close()
    print("ok", np.isfinite(reward).all())
    """
)


def test_async_vector_env_default_fork_does_not_hang():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ok", "True"]
