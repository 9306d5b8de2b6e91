"""examples/cleanrl_ppo.py: a smoke run, and (slow) a run that beats the random policy."""

from __future__ import annotations

import re
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


def run(tmp_path: Path, steps: int, timeout: float) -> list[float]:
    cmd = [sys.executable, str(SCRIPT), "--total-timesteps", str(steps), "--run-dir", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    return [float(r) for r in re.findall(r"episodic_return=([-\d.e]+)", out.stdout)]


def test_smoke_run_exits_cleanly_and_logs_returns(tmp_path):
    returns = run(tmp_path, 1024, timeout=120)
    assert returns and all(np.isfinite(returns))
    assert any(Path(tmp_path).rglob("events.out.tfevents.*"))


@pytest.mark.slow
def test_ppo_beats_the_uniform_random_policy(tmp_path):
    returns = run(tmp_path, 40960, timeout=1800)
    assert np.mean(returns[-50:]) > UNIFORM_RANDOM_RETURN + 0.1
