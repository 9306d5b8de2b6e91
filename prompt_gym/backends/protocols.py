"""Every method the reward backend calls on a component, declared, with shared defaults.

A backend is three components, all batched (a list in, an array of the same length out) and
deterministic given (input, seed, config):

* a :class:`Generator` (text-to-image model): ``generate``, and three methods the backend also
  calls, whose defaults live in :class:`GeneratorBase`:

  - ``generate_checked(prompts, seeds) -> (images, nonfinite)``: the images and which of them
    were not finite (default: :meth:`~Generator.generate`, none flagged);
  - ``scene_keys(prompts) -> list | None``: prompts with equal keys draw the same image for one
    seed, so the backend renders and scores each (key, seed) once (default ``None``: every
    prompt its own image, no reuse);
  - ``count_tokens(prompts) -> int (N,)``: text-encoder tokens incl. BOS/EOS (default ``-1``,
    unknown);

* a :class:`Scorer` (vision-language model): ``embed_images``, ``embed_texts``, ``aesthetic``,
  and, from :class:`ScorerBase`:

  - ``has_aesthetic``: whether ``aesthetic`` exists (default ``True``); a backend asked for
    the aesthetic scores of a scorer without one gives ``nan``;
  - ``embed_images_with_aesthetic(images) -> (embeds, aesthetic)``: both from one pass of the
    image tower where the scorer can (default: the two calls);

* a :class:`Captioner`: ``caption``.

Computing the cache misses of a batch is one more seam, :class:`Compute`
(``generate_and_score(prompts, seeds, *, aesthetic, images) -> Computed`` and ``close()``):
:class:`~prompt_gym.backends.parallel.ComputePool` (this process and its worker processes) by
default, a Ray Serve service (:mod:`prompt_gym.backends.served`) when the backend is served.

:class:`~prompt_gym.backends.reward_backend.RewardBackend` checks its components against these
protocols when it is built and calls nothing else, so a component states what it offers by
subclassing the base class and overriding what it does better. No method is probed for.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from prompt_gym.backends.compute import Computed


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

    def generate_checked(
        self, prompts: Sequence[str], seeds: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`generate`, and ``bool (N,)``: the images that were not finite (zeroed)."""
        ...

    def scene_keys(self, prompts: Sequence[str]) -> list[Hashable] | None:
        """One key per prompt (equal keys draw equal images for a seed), or ``None``."""
        ...

    def count_tokens(self, prompts: Sequence[str]) -> np.ndarray:
        """``int (N,)`` text-encoder tokens per prompt incl. BOS/EOS, ``-1`` if unknown."""
        ...


@runtime_checkable
class Scorer(Protocol):
    """Vision-language scorer: unit embeddings of images and texts, and an aesthetic score."""

    dim: int

    @property
    def has_aesthetic(self) -> bool:
        """Whether :meth:`aesthetic` is available."""
        ...

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

    def embed_images_with_aesthetic(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`embed_images` and :meth:`aesthetic` of the same images."""
        ...


@runtime_checkable
class Captioner(Protocol):
    """Image captioner: ``n`` captions per target, deterministic given ``seed``."""

    def caption(self, targets: Sequence[Target], n: int, seed: int = 0) -> list[list[str]]:
        """Return ``n`` captions for each target, in target order."""
        ...


@runtime_checkable
class Compute(Protocol):
    """Generates and scores a batch of cache misses: what a reward backend computes with."""

    def generate_and_score(
        self, prompts: list[str], seeds: list[int], *, aesthetic: bool, images: bool = False
    ) -> Computed:
        """Scores (and, with ``images``, the images) of every (prompt, seed), in request order."""
        ...

    def close(self) -> None:
        """Release what the compute holds (worker processes, connections)."""
        ...


class GeneratorBase:
    """Defaults of the optional :class:`Generator` methods; subclasses implement the rest.

    A subclass must define ``config`` and ``generate``; it overrides ``generate_checked`` when
    it can detect non-finite images, ``scene_keys`` when different prompts draw the same image,
    ``count_tokens`` when it has a tokenizer.
    """

    def config(self) -> dict[str, Any]:
        """Every parameter that changes an image."""
        raise NotImplementedError

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
        """Render one image per (prompt, seed)."""
        raise NotImplementedError

    def generate_checked(
        self, prompts: Sequence[str], seeds: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`generate`, with no image flagged as non-finite."""
        return np.asarray(self.generate(prompts, seeds)), np.zeros(len(prompts), dtype=bool)

    def scene_keys(self, prompts: Sequence[str]) -> list[Hashable] | None:
        """``None``: every prompt draws its own image."""
        return None

    def count_tokens(self, prompts: Sequence[str]) -> np.ndarray:
        """``-1`` per prompt: the token count is unknown."""
        return np.full(len(prompts), -1, dtype=np.int32)


class ScorerBase:
    """Defaults of the optional :class:`Scorer` members; subclasses implement the rest.

    A subclass must set ``dim`` and define ``config``, ``embed_images``, ``embed_texts`` and
    ``aesthetic``; it overrides ``has_aesthetic`` when the aesthetic is optional and
    ``embed_images_with_aesthetic`` when both come from one pass.
    """

    dim: int

    @property
    def has_aesthetic(self) -> bool:
        """``True``: :meth:`aesthetic` is available."""
        return True

    def config(self) -> dict[str, Any]:
        """Every parameter that changes a score."""
        raise NotImplementedError

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        """``uint8 (N, H, W, 3)`` -> ``float32 (N, dim)`` unit vectors."""
        raise NotImplementedError

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``N`` strings -> ``float32 (N, dim)`` unit vectors."""
        raise NotImplementedError

    def aesthetic(self, images: np.ndarray) -> np.ndarray:
        """``uint8 (N, H, W, 3)`` -> ``float32 (N,)`` aesthetic scores."""
        raise NotImplementedError

    def embed_images_with_aesthetic(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`embed_images` then :meth:`aesthetic` (two passes)."""
        return self.embed_images(images), self.aesthetic(images)


def check_components(generator: Any, scorer: Any, captioner: Any) -> None:
    """Raise one ``ValueError`` naming what a component lacks of its protocol.

    Raises:
        ValueError: If a component does not satisfy :class:`Generator`, :class:`Scorer` or
            :class:`Captioner` (subclass :class:`GeneratorBase` / :class:`ScorerBase` for the
            defaults).
    """
    for what, component, protocol, base in (
        ("generator", generator, Generator, "GeneratorBase"),
        ("scorer", scorer, Scorer, "ScorerBase"),
        ("captioner", captioner, Captioner, None),
    ):
        if not isinstance(component, protocol):
            hint = f"; subclass prompt_gym.backends.protocols.{base} for defaults" if base else ""
            raise ValueError(
                f"the {what} {type(component).__name__} does not implement the "
                f"{protocol.__name__} protocol{hint}"
            )
