"""Where real weights come from, the one error when they are missing, and the per-process cache.

Lookup order for a preset ``NAME`` (or a hub id ``org/model``, whose directory key is
``org--model``):

1. ``$PROMPT_GYM_MODEL_DIR/NAME`` if that directory exists (loaded with ``local_files_only=True``);
2. the Hugging Face cache (``$HF_HUB_CACHE``), with ``local_files_only=True`` when offline
   (``HF_HUB_OFFLINE=1``); online, ``from_pretrained`` downloads what is missing.

A model that cannot be found raises :class:`ModelNotFoundError` naming the preset, the places
looked in and the fix. Loaded models are shared by every component asking for the same resolved
configuration (:func:`shared`), so ``check_env`` and ``make_vec`` load each model once per process.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prompt_gym.backends.real.forking import install_fork_guard

T = TypeVar("T")

MODEL_DIR_ENV = "PROMPT_GYM_MODEL_DIR"
DTYPES = ("fp32", "bf16", "fp16")


class ModelNotFoundError(FileNotFoundError):
    """Weights of a real-model preset are neither in ``$PROMPT_GYM_MODEL_DIR`` nor in the HF cache."""


def is_offline() -> bool:
    """Whether the Hugging Face hub must not be contacted (``HF_HUB_OFFLINE`` set truthy)."""
    value = os.environ.get("HF_HUB_OFFLINE", "")
    if value.strip().lower() in {"1", "on", "yes", "true"}:
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hf_cache_dir() -> str:
    """The Hugging Face hub cache directory in use."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def dir_key(name: str) -> str:
    """Directory name of a preset or hub id under ``$PROMPT_GYM_MODEL_DIR``.

    >>> dir_key("sd-turbo"), dir_key("stabilityai/sd-turbo")
    ('sd-turbo', 'stabilityai--sd-turbo')
    """
    return name.replace("/", "--")


def model_dir(name: str) -> Path | None:
    """``$PROMPT_GYM_MODEL_DIR/<dir_key(name)>`` if it is an existing directory."""
    root = os.environ.get(MODEL_DIR_ENV)
    if not root:
        return None
    path = Path(root).expanduser() / dir_key(name)
    return path if path.is_dir() else None


def source_tag(name: str) -> str | None:
    """The local directory that would serve ``name`` (part of shared-model keys), if any."""
    local = model_dir(name)
    return str(local) if local is not None else None


def looks_like_path(model: str) -> bool:
    """Whether ``model`` names a local directory rather than a hub id.

    >>> looks_like_path("/tmp/x"), looks_like_path("./x"), looks_like_path("org/model")
    (True, True, False)
    """
    return model.startswith(("/", ".", "~")) or os.path.isdir(model) or model.count("/") > 1


def missing_model_message(kind: str, name: str, repo: str, download_name: str | None) -> str:
    """The text of :class:`ModelNotFoundError` (tests compare it exactly)."""
    if looks_like_path(repo):
        return (
            f"{kind} model directory {repo} does not exist or holds no loadable model.\n"
            f"  fix: pass a directory written by save_pretrained(), a preset name, or a hub id; "
            f'or use the Shapes env ids (e.g. ImageInversion-Shapes-v0, backend="shapes"), '
            f"which need no weights."
        )
    key = dir_key(name)
    root = os.environ.get(MODEL_DIR_ENV)
    local = (
        f"${MODEL_DIR_ENV}/{key} = {Path(root).expanduser() / key} (not found)"
        if root
        else f"${MODEL_DIR_ENV} (not set)"
    )
    mode = "offline, HF_HUB_OFFLINE=1" if is_offline() else "online"
    get = f"`prompt-gym download {download_name}`" if download_name else f"`hf download {repo}`"
    return (
        f"{kind} model {name!r} ({repo}) is not available on this machine.\n"
        f"  looked in: {local}; the Hugging Face cache {hf_cache_dir()} ({mode})\n"
        f"  fix: run {get} on a connected machine and copy its Hugging Face cache here, "
        f"or set {MODEL_DIR_ENV} to a directory holding {key}/, "
        f'or use the Shapes env ids (e.g. ImageInversion-Shapes-v0, backend="shapes"), '
        f"which need no weights."
    )


@dataclass(frozen=True)
class Source:
    """What to pass to ``from_pretrained``: a directory or hub id, and ``local_files_only``."""

    ref: str
    local_files_only: bool


def locate(name: str, repo: str) -> Source:
    """Resolve preset ``name`` (hub id or directory ``repo``) to a :class:`Source`.

    ``$PROMPT_GYM_MODEL_DIR/<name>`` wins; a local directory is loaded as is; a hub id goes to the
    Hugging Face cache (offline when ``HF_HUB_OFFLINE`` is set).
    """
    local = model_dir(name)
    if local is not None:
        return Source(str(local), True)
    if looks_like_path(repo):
        return Source(str(Path(repo).expanduser()), True)
    return Source(repo, is_offline())


def load(
    kind: str,
    name: str,
    repo: str,
    loader: Callable[[str, bool], T],
    download_name: str | None = None,
) -> T:
    """Call ``loader(ref, local_files_only)`` on the located source.

    Raises:
        ModelNotFoundError: When the files are missing (the loader raised ``OSError``, which is
            what ``from_pretrained`` and ``hf_hub_download`` raise for absent files), or when a
            local directory does not exist.
    """
    source = locate(name, repo)
    if source.local_files_only and looks_like_path(source.ref) and not Path(source.ref).exists():
        raise ModelNotFoundError(missing_model_message(kind, name, repo, download_name))
    try:
        return loader(source.ref, source.local_files_only)
    except OSError as err:
        error = err
    raise ModelNotFoundError(missing_model_message(kind, name, repo, download_name)) from error


_SHARED: dict[Hashable, Any] = {}
_SHARED_LOCK = threading.RLock()


def shared(key: Hashable, build: Callable[[], T]) -> T:
    """Return this process's object for ``key``, calling ``build()`` the first time.

    Every model is loaded here, so this is where the fork guard is installed
    (:func:`~prompt_gym.backends.real.forking.install_fork_guard`).
    """
    install_fork_guard()
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = build()
        return _SHARED[key]


def clear_shared() -> None:
    """Forget every shared model (they are freed once no component holds them)."""
    with _SHARED_LOCK:
        _SHARED.clear()


def resolve_device(device: str | None) -> str:
    """``device``, or ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    if device is not None:
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str | None, device: str) -> str:
    """``dtype``, or ``"bf16"`` on CUDA and ``"fp32"`` elsewhere.

    >>> resolve_dtype(None, "cpu"), resolve_dtype("fp16", "cuda")
    ('fp32', 'fp16')

    Raises:
        ValueError: For a name not in ``("fp32", "bf16", "fp16")``.
    """
    if dtype is None:
        return "bf16" if device.startswith("cuda") else "fp32"
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return dtype


def torch_dtype(name: str) -> Any:
    """The ``torch.dtype`` for ``"fp32" | "bf16" | "fp16"``."""
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def warn_if_cpu(name: str, device: str) -> None:
    """Warn that a real (non-tiny) model runs on CPU: correct, but seconds per image."""
    if not device.startswith("cuda"):
        warnings.warn(
            f"{name!r} runs on {device}: expect seconds per image. Use a CUDA machine for real "
            f"models, or the 'tiny'/'shapes' backends for CPU work.",
            RuntimeWarning,
            stacklevel=3,
        )
