"""The LAION improved aesthetic predictor: an MLP on L2-normalised CLIP image embeddings.

Architecture (``christophschuhmann/improved-aesthetic-predictor``, ``sac+logos+ava1-l14-linearMSE``),
with no activations between the linear layers, exactly as trained::

    layers = Sequential(Linear(D, 1024), Dropout(0.2), Linear(1024, 128), Dropout(0.2),
                        Linear(128, 64), Dropout(0.1), Linear(64, 16), Linear(16, 1))

so a checkpoint's keys are ``layers.{0,2,4,6,7}.{weight,bias}``. ``D`` is 768 for CLIP ViT-L/14.
The head L2-normalises its input itself: LAION trained it on unit embeddings, and unnormalised
ViT-L/14 embeddings give scores of 20-30 instead of roughly 0-10.

Weights come from a file path or a named preset (:data:`~.presets.AESTHETIC_HEADS`); a preset is
looked up in ``$PROMPT_GYM_MODEL_DIR/<name>/<filename>``, then in the Hugging Face cache. When a
sha256 is given (preset field or ``sha256=``), the file is verified before it is loaded.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

from prompt_gym.backends.real import presets
from prompt_gym.backends.real.loading import load

HIDDEN = (1024, 128, 64, 16)
DROPOUT = (0.2, 0.2, 0.1)


@functools.cache
def _head_class() -> type:
    import torch
    from torch import nn

    class AestheticHead(nn.Module):
        """``(N, D)`` CLIP image embeddings (any norm) -> ``(N,)`` aesthetic scores."""

        def __init__(self, input_dim: int = 768) -> None:
            super().__init__()
            self.input_dim = input_dim
            self.layers = nn.Sequential(
                nn.Linear(input_dim, HIDDEN[0]),
                nn.Dropout(DROPOUT[0]),
                nn.Linear(HIDDEN[0], HIDDEN[1]),
                nn.Dropout(DROPOUT[1]),
                nn.Linear(HIDDEN[1], HIDDEN[2]),
                nn.Dropout(DROPOUT[2]),
                nn.Linear(HIDDEN[2], HIDDEN[3]),
                nn.Linear(HIDDEN[3], 1),
            )

        def forward(self, embeds: torch.Tensor) -> torch.Tensor:
            unit = nn.functional.normalize(embeds.to(self.layers[0].weight.dtype), dim=-1)
            return self.layers(unit).squeeze(-1)

    return AestheticHead


def build_head(input_dim: int = 768, seed: int | None = None) -> Any:
    """A new head in eval mode; random weights drawn from ``seed`` when given (RNG restored)."""
    import torch

    if seed is None:
        return _head_class()(input_dim).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _head_class()(input_dim).eval()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_head(path: str | os.PathLike[str], sha256: str | None = None) -> Any:
    """Load a head from a ``state_dict`` file (``layers.*`` keys), checking ``sha256`` if given.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the digest differs from ``sha256`` or the keys do not match the MLP.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"aesthetic head file {path} does not exist")
    if sha256 is not None:
        actual = file_sha256(path)
        if actual != sha256.lower():
            raise ValueError(
                f"aesthetic head {path}: sha256 {actual} does not match the expected {sha256}; "
                "re-download it, or pin the file you trust with the scorer option "
                "aesthetic_sha256=DIGEST (make_backend(..., scorer_kwargs={'aesthetic_sha256': ...}))"
            )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or "layers.0.weight" not in state:
        raise ValueError(f"{path} is not an aesthetic-head state_dict (no 'layers.0.weight')")
    head = _head_class()(int(state["layers.0.weight"].shape[1]))
    try:
        head.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not match the aesthetic MLP: {err}") from err
    return head.eval()


def resolve_head(spec: str, input_dim: int, sha256: str | None = None) -> tuple[Any, str | None]:
    """Load the head named by ``spec`` (a preset, ``"tiny"``, or a file path).

    Returns:
        The head module and the sha256 of its file (``None`` for ``"tiny"``).

    Raises:
        ValueError: If the head's input dimension is not ``input_dim``, or on a digest mismatch.
        ModelNotFoundError: If a preset's file is not available offline.
    """
    if spec == presets.TINY:
        head, digest = build_head(input_dim, seed=0), None
    else:
        preset = presets.AESTHETIC_HEADS.get(spec)
        if preset is None:
            path = Path(spec).expanduser()
        else:
            sha256 = sha256 or preset.sha256
            path = Path(
                load(
                    "aesthetic head",
                    preset.name,
                    preset.repo,
                    _file_loader(preset.filename),
                    preset.name,
                )
            )
        head, digest = load_head(path, sha256), file_sha256(path)
    if head.input_dim != input_dim:
        raise ValueError(
            f"aesthetic head {spec!r} expects {head.input_dim}-d embeddings but the CLIP model "
            f"gives {input_dim}-d ones (the LAION head needs ViT-L-14)"
        )
    return head, digest


def _file_loader(filename: str) -> Any:
    """``load()`` callback: ``filename`` inside a local directory, or from the hub cache."""

    def loader(ref: str, local_files_only: bool) -> str:
        if Path(ref).is_dir():
            path = Path(ref) / filename
            if not path.is_file():
                raise FileNotFoundError(path)
            return str(path)
        from huggingface_hub import hf_hub_download

        return hf_hub_download(ref, filename, local_files_only=local_files_only)

    return loader
