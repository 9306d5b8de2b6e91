"""The three batched protocols every backend implements, and the target record envs use.

A list in, an array of the same length out; deterministic given (input, seed, config).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Target:
    """An image to invert, with what is known about it.

    Attributes:
        image: ``uint8`` array of shape ``(H, W, 3)``.
        spec: The scene description that produced the image, when it is known (the shapes
            world sets it; a user-supplied photo has none).
        caption: A reference caption, when one is known.
        target_id: A stable identifier, used in logs and cache keys.
    """

    image: np.ndarray
    spec: Any = None
    caption: str | None = None
    target_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@runtime_checkable
class Generator(Protocol):
    """Text-to-image model: prompts and seeds in, ``uint8`` images ``(N, H, W, 3)`` out."""

    def config(self) -> dict[str, Any]:
        """Every parameter that changes an image (name, version, resolution, steps, ...)."""
        ...

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
        """Render one image per (prompt, seed); the same pair gives the same image in any batch."""
        ...


@runtime_checkable
class Scorer(Protocol):
    """Vision-language scorer: unit embeddings of images and texts, and an aesthetic score."""

    dim: int

    def config(self) -> dict[str, Any]:
        """Every parameter that changes a score (name, version, weights, ...)."""
        ...

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        """``uint8 (N, H, W, 3)`` -> ``float32 (N, dim)`` unit vectors."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``N`` strings -> ``float32 (N, dim)`` unit vectors."""
        ...

    def aesthetic(self, images: np.ndarray) -> np.ndarray:
        """``uint8 (N, H, W, 3)`` -> ``float32 (N,)`` aesthetic scores on a 0..10 scale."""
        ...


@runtime_checkable
class Captioner(Protocol):
    """Image captioner: ``n`` captions per target, deterministic given ``seed``."""

    def config(self) -> dict[str, Any]:
        """Every parameter that changes a caption."""
        ...

    def caption(self, targets: Sequence[Target], n: int, seed: int = 0) -> list[list[str]]:
        """Return ``n`` captions for each target, in target order."""
        ...
