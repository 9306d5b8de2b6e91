"""Checkpoints load with ``torch.load(weights_only=True)``: a planted pickle cannot run code.

Each attack plants a file whose unpickling would write a marker file, first shown to be live
(plain ``pickle.loads`` does write it), then hands it to ``prompt-gym eval --checkpoint`` and
``prompt-gym train --resume``: the marker must stay absent and the error be one line, exit 2.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import pickle
import random
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from prompt_gym.agents import sb3_ppo
from prompt_gym.agents.checkpoints import (
    check_plain,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
    write_checkpoint,
)
from prompt_gym.agents.lm_ppo import ppo as lm_ppo
from prompt_gym.agents.runs import (
    make_args,
    read_run_info,
    rng_states,
    seed_everything,
    set_rng_states,
)

from prompt_gym.cli import main

ENV = "ImageInversion-Shapes-v0"
LM_ENV = "PromptRewriteTokens-Shapes-v0"
FAST = {"examples_every": 100, "save_every": 1, "eval_episodes": 4}
LATEST = "step_999999999"
"""A planted checkpoint's name: later than any real one, so a run directory resolves to it."""


class Payload:
    """Unpickling this writes ``marker``: what a crafted checkpoint could do with a shell."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def payload_bytes(marker: Path) -> bytes:
    """A pickle that runs code on load; checked to be live (it does write ``marker``)."""
    data = pickle.dumps({"agent": Payload(marker), "args": {}})
    pickle.loads(data)
    assert marker.exists(), "the payload should work against a plain unpickler"
    marker.unlink()
    return data


def plant(path: Path, marker: Path, kind: str) -> Path:
    """Write a code-running checkpoint at ``path``: a raw pickle or a ``torch.save`` zip."""
    if kind == "pickle":
        path.write_bytes(payload_bytes(marker))
    else:
        payload_bytes(marker)
        torch.save({"agent": Payload(marker), "args": {}}, path)
    return path


def train(tmp_path: Path, capsys, env: str, agent: str, steps: int, **config) -> Path:
    """A short run from the CLI; its run directory."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / f"{agent}.yaml"
    cfg.write_text(json.dumps({**FAST, **config}))  # JSON is YAML
    logdir = tmp_path / f"runs-{agent}"
    argv = ["train", "--env", env, "--agent", agent, "--num-envs", "4", "--seed", "3",
            "--total-timesteps", str(steps), "--config", str(cfg), "--logdir", str(logdir)]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    (run_dir,) = logdir.iterdir()
    return run_dir


def fails_in_one_line(capsys, argv: list[str], *phrases: str) -> str:
    """Run the CLI: exit 2 and a single ``prompt-gym ...: error: ...`` line on stderr."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"prompt-gym {argv[0]}: error: "), err
    for phrase in phrases:
        assert phrase in lines[0], err
    return lines[0]


def commands(run_dir: Path, planted: Path) -> list[list[str]]:
    """Every way a planted file gets loaded: eval of the file, eval of the run, resume."""
    eval_ = ["eval", "--episodes", "2", "--checkpoint"]
    return [[*eval_, str(planted)], [*eval_, str(run_dir)], ["train", "--resume", str(run_dir)]]


def same(a, b) -> bool:
    """Exact equality of nested containers of tensors, keeping types (``1 != 1.0`` here)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.fixture(scope="module")
def reinforce_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("reinforce")
    cfg = tmp / "cfg.yaml"
    cfg.write_text(json.dumps(FAST))
    argv = ["train", "--env", ENV, "--agent", "reinforce", "--num-envs", "4", "--seed", "3",
            "--total-timesteps", "64", "--config", str(cfg), "--logdir", str(tmp / "runs")]  # fmt: skip
    assert main(argv) == 0
    (run_dir,) = (tmp / "runs").iterdir()
    return run_dir


@pytest.fixture
def run_copy(reinforce_run, tmp_path) -> Path:
    """A fresh copy of the REINFORCE run, to plant files in."""
    return Path(shutil.copytree(reinforce_run, tmp_path / reinforce_run.name))


# --------------------------------------------------------------------------------- attacks
@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_planted_pickle_runs_nothing_under_eval_or_resume(run_copy, tmp_path, capsys, kind):
    marker = tmp_path / "MARKER"
    planted = plant(run_copy / "checkpoints" / f"{LATEST}.pt", marker, kind)
    for argv in commands(run_copy, planted):
        line = fails_in_one_line(capsys, argv, f"{LATEST}.pt", "loads safely")
        if kind == "torch.save":  # the refused global is named, not executed
            assert "it would load exec" in line
        assert not marker.exists(), argv


@pytest.mark.parametrize("kind", ["png", "truncated", "empty", "tensor", "foreign dict"])
def test_files_that_are_not_checkpoints_fail_in_one_line(run_copy, capsys, kind):
    real = sorted((run_copy / "checkpoints").glob("step_*.pt"))[-1].read_bytes()
    planted = run_copy / "checkpoints" / f"{LATEST}.pt"
    if kind == "png":
        planted = run_copy / "some.png"
        planted.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    elif kind == "truncated":
        planted.write_bytes(real[: len(real) // 2])
    elif kind == "empty":
        planted.write_bytes(b"")
    elif kind == "tensor":
        torch.save(torch.zeros(3), planted)
    else:
        torch.save({"agent": "reinforce", "weights": torch.zeros(3)}, planted)
    for argv in commands(run_copy, planted)[: 1 if kind == "png" else 3]:
        fails_in_one_line(capsys, argv, planted.name)


def test_sb3_zip_data_is_never_unpickled(tmp_path, capsys):
    """An SB3 zip cloudpickles its ``data``; SB3's own ``load`` would run it, prompt-gym does not."""
    from sb3_contrib import MaskablePPO

    run_dir = train(tmp_path, capsys, ENV, "maskable-ppo", 256)
    marker = tmp_path / "MARKER"
    zip_path = sorted((run_dir / "checkpoints").glob("step_*.zip"))[-1]
    with zipfile.ZipFile(zip_path) as z:
        entries = {name: z.read(name) for name in z.namelist()}
    data = json.loads(entries["data"])
    data["observation_space"] = {":serialized:": base64.b64encode(payload_bytes(marker)).decode()}
    entries["data"] = json.dumps(data).encode()
    planted = zip_path.with_name(f"{LATEST}.zip")
    with zipfile.ZipFile(planted, "w") as z:
        for name, content in entries.items():
            z.writestr(name, content)
    shutil.copy(zip_path.with_suffix(".state.pt"), planted.with_suffix(".state.pt"))

    with contextlib.suppress(Exception):  # the payload's result is no space: SB3 fails after it
        MaskablePPO.load(planted, device="cpu")
    assert marker.exists(), "SB3's own load unpickles the zip's data"
    marker.unlink()

    # prompt-gym reads only the weights: eval and resume work, and run nothing
    assert main(["eval", "--episodes", "2", "--checkpoint", str(planted)]) == 0
    assert main(["train", "--resume", str(run_dir), "--total-timesteps", "512"]) == 0
    capsys.readouterr()
    assert not marker.exists()

    # a code-running .state.pt beside it, or weights entry, is refused in one line
    plant(planted.with_suffix(".state.pt"), marker, "torch.save")
    for argv in commands(run_dir, planted):
        fails_in_one_line(capsys, argv, f"{LATEST}.state.pt", "loads safely")
    shutil.copy(zip_path.with_suffix(".state.pt"), planted.with_suffix(".state.pt"))
    with zipfile.ZipFile(planted, "w") as z:
        for name, content in entries.items():
            z.writestr(name, payload_bytes(marker) if name == "policy.pth" else content)
    for argv in commands(run_dir, planted):
        fails_in_one_line(capsys, argv, f"{LATEST}.zip", "not an SB3 checkpoint")
    assert not marker.exists()


def test_lm_ppo_checkpoints_and_sft_files_run_nothing(tmp_path, capsys):
    run_dir = train(tmp_path, capsys, LM_ENV, "lm-ppo", 20, sft_steps=5)
    real = sorted((run_dir / "checkpoints").glob("step_*.pt"))[-1]
    marker = tmp_path / "MARKER"
    for kind in ("pickle", "torch.save"):
        planted = plant(run_dir / "checkpoints" / f"{LATEST}.pt", marker, kind)
        for argv in commands(run_dir, planted):
            fails_in_one_line(capsys, argv, f"{LATEST}.pt", "loads safely")
        with pytest.raises(ValueError, match="loads safely"):
            lm_ppo.load_model(run_dir)
        planted.unlink()

        # the run's SFT model (the reference, resumed from) and an --sft-init file
        plant(run_dir / lm_ppo.SFT_FILE, marker, kind)
        fails_in_one_line(capsys, ["train", "--resume", str(run_dir)], "sft.pt", "loads safely")
        with pytest.raises(ValueError, match="loads safely"):
            lm_ppo.load_model(real, which="sft")
        args = make_args(
            lm_ppo.Args, read_run_info(run_dir)["args"], sft_init=str(run_dir / "sft.pt")
        )
        with pytest.raises(ValueError, match="loads safely"):
            lm_ppo.train(dataclasses.replace(args, logdir=str(tmp_path / "again")))
    assert not marker.exists()


# --------------------------------------------------------------------------------- round trips
def test_save_then_load_round_trips_every_kind_of_state_exactly(tmp_path):
    seed_everything(7, threads=1)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.8, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    random.gauss(0, 1), np.random.standard_normal()  # cached gaussians are part of the state
    state = {
        "agent": "reinforce",
        "args": {"lr": 1e-3, "betas": (0.8, 0.9), "env_kwargs": {"backend": None}, "n": 3},
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "state": {"global_step": 12, "curve": [(4, -0.5, 0.1)], "best": [{"prompt": "a"}]},
        "rng": rng_states(),
    }
    path = save_checkpoint(state, checkpoint_path(tmp_path, 12))
    loaded = load_checkpoint(path)
    assert same(loaded, state)

    draws = (random.random(), random.gauss(0, 1), np.random.rand(), torch.rand(1).item())
    set_rng_states(loaded["rng"])
    assert (random.random(), random.gauss(0, 1), np.random.rand(), torch.rand(1).item()) == draws


@pytest.mark.parametrize("agent", ["reinforce", "maskable-ppo", "lm-ppo"])
def test_each_agents_checkpoint_is_plain_and_round_trips(tmp_path, capsys, agent, reinforce_run):
    if agent == "reinforce":
        run_dir = reinforce_run
    elif agent == "maskable-ppo":
        run_dir = train(tmp_path, capsys, ENV, agent, 256)
    else:
        run_dir = train(tmp_path, capsys, LM_ENV, agent, 20, sft_steps=5)
    files = [p for p in (run_dir / "checkpoints").iterdir() if p.suffix == ".pt"]
    files += list(run_dir.glob("sft.pt"))
    assert files
    for path in files:
        state = load_checkpoint(path)
        check_plain(state)
        again = write_checkpoint(state, tmp_path / "again.pt")
        assert same(load_checkpoint(again), state)


def test_lm_ppo_resume_reproduces_the_curve(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def curve(run_dir: Path) -> list[tuple[int, float]]:
        acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
        acc.Reload()
        return [(e.step, e.value) for e in acc.Scalars("charts/episodic_return")]

    full = train(tmp_path / "a", capsys, LM_ENV, "lm-ppo", 200, sft_steps=5)
    cut = train(tmp_path / "b", capsys, LM_ENV, "lm-ppo", 1, sft_steps=5)
    assert len(curve(cut)) == 1 < len(curve(full))
    assert main(["train", "--resume", str(cut), "--total-timesteps", "200"]) == 0
    capsys.readouterr()
    assert curve(cut) == curve(full)


def test_unsafe_state_fails_when_saved_not_when_loaded(tmp_path):
    path = checkpoint_path(tmp_path, 1)
    for bad, where in (
        ({"x": np.float64(1.0)}, "checkpoint['x'] is a float64"),
        ({"rng": np.random.get_state()}, "checkpoint['rng'][1] is a ndarray"),
        ({"run": tmp_path}, "checkpoint['run'] is a PosixPath"),
        ({sb3_ppo.Args: 1}, "has a key"),
    ):
        with pytest.raises(TypeError, match=where.replace("[", r"\[").replace("]", r"\]")):
            save_checkpoint(bad, path)
    assert not path.parent.exists()
