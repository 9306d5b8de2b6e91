"""examples/cleanrl_ppo.py: a run on every id's flat twin, and (slow) a run that learns."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("tensorboard")

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "cleanrl_ppo.py"
UNIFORM_RANDOM_RETURN = 0.46
"""Mean return of uniform random actions on ImageInversion-Shapes-Easy-Flat-v1 (200 episodes)."""
RANDOM_VALID_RETURN = 0.76
"""Mean return of uniform random *valid* actions there (200 episodes, 0.761 +- 0.040)."""


def run(tmp_path: Path, steps: int, timeout: float, *flags: str) -> list[float]:
    cmd = [sys.executable, str(SCRIPT), "--total-timesteps", str(steps), "--run-dir", str(tmp_path)]
    out = subprocess.run(
        [*cmd, *flags], capture_output=True, text=True, timeout=timeout, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return [float(r) for r in re.findall(r"episodic_return=([-\d.e]+)", out.stdout)]


def flat(env_id: str) -> str:
    name, version = env_id.rsplit("-", 1)
    return f"prompt_gym:prompt_gym/{name}-Flat-{version}"


def _ids() -> tuple[list[str], list[str]]:
    import prompt_gym

    shapes = [i for i in prompt_gym.ENV_IDS if "-Shapes" in i]
    return shapes, [i for i in prompt_gym.ENV_IDS if i not in shapes]


SHAPES_IDS, REAL_IDS = _ids()


def test_smoke_run_exits_cleanly_and_logs_returns(tmp_path):
    returns = run(tmp_path, 1024, timeout=120)
    assert returns and all(np.isfinite(returns))
    assert any(Path(tmp_path).rglob("events.out.tfevents.*"))


@pytest.mark.parametrize("env_id", SHAPES_IDS)
def test_one_iteration_on_every_shapes_id_with_default_kwargs(tmp_path, env_id, monkeypatch):
    """The unmodified recipe (one rollout of 2 x 64 steps and its update) on each flat twin.

    Run in this process (``runpy``, as ``python examples/cleanrl_ppo.py`` would) so the nine
    runs share one torch import.
    """
    flags = ["--env-id", flat(env_id), "--num-envs", "2", "--num-steps", "64"]
    argv = [str(SCRIPT), "--total-timesteps", "128", "--run-dir", str(tmp_path), *flags]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(SCRIPT), run_name="__main__")
    assert any(Path(tmp_path).rglob("events.out.tfevents.*"))


@pytest.mark.slow
@pytest.mark.parametrize("env_id", REAL_IDS)
def test_one_iteration_on_every_real_id_on_the_tiny_backend(tmp_path, env_id):
    flags = ["--env-id", flat(env_id), "--num-envs", "2", "--num-steps", "16", "--backend", "tiny"]
    run(tmp_path, 32, 600, *flags)
    assert any(Path(tmp_path).rglob("events.out.tfevents.*"))


@pytest.mark.slow
def test_ppo_learns_past_the_random_valid_policy(tmp_path):
    """40,960 steps (8 envs x 64-step rollouts): returns rose 0.57 -> 0.85 in one run (5 min)."""
    returns = run(tmp_path, 40960, 1800, "--num-envs", "8", "--num-steps", "64")
    assert np.mean(returns[:300]) < RANDOM_VALID_RETURN  # it starts by choosing masked actions
    assert np.mean(returns[-500:]) > RANDOM_VALID_RETURN + 0.05
