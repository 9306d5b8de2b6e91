"""Checkpoints that load safely: plain state written with ``torch.save``, read ``weights_only``.

A checkpoint is a dict of tensors and plain Python values (:func:`check_plain` says exactly
which); :func:`save_checkpoint` writes it atomically under ``<run_dir>/checkpoints/`` and keeps
the newest few, :func:`find_checkpoint` resolves a run directory to its latest one, and
:func:`load_checkpoint` reads it with ``torch.load(weights_only=True)``, so a checkpoint from
someone else cannot run code. Every failure is one line.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np  # noqa: F401  (used by the doctest of check_plain)
import torch

CHECKPOINTS = "checkpoints"
"""The folder of a run directory that holds its checkpoints."""
_CKPT = re.compile(r"step_(\d+)\.(pt|zip)$")


def checkpoint_path(run_dir: Path, step: int, ext: str = "pt") -> Path:
    """``<run_dir>/checkpoints/step_<step>.<ext>``."""
    return Path(run_dir) / CHECKPOINTS / f"step_{step:09d}.{ext}"


def save_checkpoint(state: dict[str, Any], path: Path, keep: int = 3) -> Path:
    """Write ``state`` (see :func:`write_checkpoint`); keep the newest ``keep`` checkpoints."""
    write_checkpoint(state, path)
    prune_checkpoints(path.parent, keep, path.suffix)
    return path


def write_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """Write ``state`` with ``torch.save`` atomically, checked first by :func:`check_plain`.

    Raises:
        TypeError: If ``state`` holds anything :func:`load_checkpoint` would refuse.
    """
    check_plain(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


_PLAIN = (str, int, float, bool, type(None))


def check_plain(value: Any, where: str = "checkpoint") -> None:
    """Check that ``value`` is what ``torch.load(weights_only=True)`` reads back as it was.

    That is tensors, ``str``, ``int``, ``float``, ``bool``, ``None``, and lists, tuples and
    dicts (with ``str`` or ``int`` keys) of them. NumPy values are not (``np.float64`` is a
    ``float`` subclass, but it pickles as a NumPy global): convert them with ``.item()`` or
    ``.tolist()`` before saving.

    Raises:
        TypeError: Naming the first value that is not plain and where it is.

    >>> check_plain({"step": 3, "curve": [(1, 0.5)], "w": torch.zeros(2)})
    >>> check_plain({"x": np.float64(1.0)})
    Traceback (most recent call last):
    ...
    TypeError: checkpoint['x'] is a float64, which torch.load(weights_only=True) refuses; save plain types
    """
    if isinstance(value, torch.Tensor) or type(value) in _PLAIN:
        return
    if type(value) in (dict, OrderedDict):
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}")
            check_plain(item, f"{where}[{key!r}]")
        return
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where} is a {type(value).__name__}, which torch.load(weights_only=True) refuses; "
        "save plain types"
    )


def prune_checkpoints(folder: Path, keep: int, ext: str) -> None:
    """Delete all but the newest ``keep`` checkpoints with extension ``ext``."""
    old = sorted(p for p in folder.glob(f"step_*{ext}") if _CKPT.search(p.name))[:-keep]
    for p in old:
        p.unlink()
        p.with_suffix(".state.pt").unlink(missing_ok=True)


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file as given, or the latest one of a run directory.

    Raises:
        FileNotFoundError: If there is no such file or the run has no checkpoint yet.
    """
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint or run directory at {path}")
    found = sorted(p for p in (path / CHECKPOINTS).glob("step_*") if _CKPT.search(p.name))
    if not found:
        raise FileNotFoundError(f"run directory {path} has no checkpoint in {CHECKPOINTS}/ yet")
    return found[-1]


def load_checkpoint(path: Path, keys: Sequence[str] = ()) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, safely: nothing in it can run.

    It loads with ``torch.load(weights_only=True)``, which reads back tensors and plain
    containers and refuses a pickle that would import or call anything, so a checkpoint from
    someone else cannot run code.

    Args:
        path: The checkpoint file.
        keys: Keys the checkpoint must have (those its agent reads).

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If the file is not such a checkpoint (another kind of file, a truncated
            one, a pickle of other objects, a dict without ``keys``), in one line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        with warnings.catch_warnings():  # a plain pickle's protocol warning adds nothing here
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a bad file; all mean the same
        raise ValueError(
            f"{path} is not a prompt-gym checkpoint that loads safely ({load_failure(err)})"
        ) from err
    if not isinstance(state, dict):
        raise ValueError(
            f"{path} is not a prompt-gym checkpoint (it holds a {type(state).__name__}, not a dict)"
        )
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"{path} is not a checkpoint of this agent (it has no {missing})")
    return state


def load_failure(err: Exception) -> str:
    """One line on why ``torch.load(weights_only=True)`` failed (torch's own message is long)."""
    text = str(err)
    refused = re.search(r"GLOBAL ([\w.]+)", text)
    if refused:
        return f"it would load {refused[1]}, and checkpoints load with weights_only=True"
    if isinstance(err, pickle.UnpicklingError):
        return "not a torch file of tensors and plain containers"
    if isinstance(err, EOFError) or "zip archive" in text:
        return "empty, truncated or not a torch file"
    return text.splitlines()[0] if text.strip() else type(err).__name__


def require_checkpoint(checkpoint: str | Path | None, agent: str) -> Path:
    """The checkpoint file an agent's ``evaluate`` was given (a run directory resolves to its latest).

    Raises:
        ValueError: If there is none: a trainable agent evaluates a trained policy.
        FileNotFoundError: See :func:`find_checkpoint`.
    """
    if checkpoint is None:
        raise ValueError(f"{agent} evaluates a trained policy: pass checkpoint=RUN_DIR_OR_FILE")
    return find_checkpoint(checkpoint)


def reject_checkpoint(checkpoint: str | Path | None, agent: str) -> None:
    """Check that a baseline's ``evaluate`` was given no checkpoint.

    Raises:
        ValueError: If it was: a baseline has nothing trained to load.
    """
    if checkpoint is not None:
        raise ValueError(f"{agent} is a baseline with nothing trained: it takes no checkpoint")
