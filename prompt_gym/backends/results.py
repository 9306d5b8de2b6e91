"""What a :class:`~prompt_gym.backends.reward_backend.RewardBackend` call returns, and its counters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ScoreResult:
    """Scores for a batch of (prompt, seed) requests, in request order.

    Attributes:
        image_embeds: ``float32 (N, D)`` unit embeddings of the generated images.
        aesthetic: ``float32 (N,)`` aesthetic scores (``nan`` when the scorer has none); in a
            :class:`LazyScoreResult`, computed when first read.
        valid: ``bool (N,)``; ``False`` where the image was non-finite or all black.
        nonfinite: ``bool (N,)``; the generator produced NaN/inf (the image was zeroed).
        black: ``bool (N,)``; the image is all black (e.g. a safety filter or a NaN VAE).
        prompt_tokens: ``int32 (N,)`` text-encoder tokens incl. BOS/EOS, ``-1`` if unknown.
        cache_hit: ``bool (N,)``; the result came from the memory or disk cache.
        images: ``uint8 (N, H, W, 3)`` when requested with ``return_images=True``, else ``None``.
    """

    image_embeds: np.ndarray
    aesthetic: np.ndarray
    valid: np.ndarray
    nonfinite: np.ndarray
    black: np.ndarray
    prompt_tokens: np.ndarray
    cache_hit: np.ndarray
    images: np.ndarray | None = None

    def rows(self, start: int, stop: int) -> ScoreResult:
        """Rows ``start:stop`` of the result."""
        s = slice(start, stop)
        return ScoreResult(self.image_embeds[s], self.aesthetic[s], *self._rest(s))

    def _rest(self, s: slice) -> tuple[Any, ...]:
        """Rows ``s`` of the fields after ``aesthetic``, in field order."""
        images = None if self.images is None else self.images[s]
        return (
            self.valid[s],
            self.nonfinite[s],
            self.black[s],
            self.prompt_tokens[s],
            self.cache_hit[s],
            images,
        )


class LazyScoreResult(ScoreResult):
    """A :class:`ScoreResult` whose ``aesthetic`` is computed when it is first read.

    The backend returns one when no aesthetic score of the batch is known yet (an env that reads
    only embeddings never pays for them); reading ``aesthetic`` gives exactly the scores an eager
    result would hold. Pickling resolves them first.
    """

    def __init__(
        self, *args: Any, aesthetic_source: Callable[[], np.ndarray] | None = None, **fields: Any
    ) -> None:
        self._source, self._aesthetic = aesthetic_source, None
        super().__init__(*args, **fields)

    @property  # type: ignore[override]
    def aesthetic(self) -> np.ndarray:
        """``float32 (N,)`` aesthetic scores, computed on first use."""
        if self._aesthetic is None:
            assert self._source is not None
            self._aesthetic, self._source = self._source(), None
        return self._aesthetic

    @aesthetic.setter
    def aesthetic(self, value: np.ndarray | None) -> None:
        if value is not None:
            self._aesthetic, self._source = value, None

    def rows(self, start: int, stop: int) -> ScoreResult:
        if self._aesthetic is not None:
            return super().rows(start, stop)
        s = slice(start, stop)
        return LazyScoreResult(
            self.image_embeds[s], None, *self._rest(s), aesthetic_source=lambda: self.aesthetic[s]
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__, _aesthetic=self.aesthetic)
        state["_source"] = None
        return state


@dataclass
class BackendStats:
    """Counters for logging (``backend/`` TensorBoard tags). All cumulative."""

    requests: int = 0
    unique_requests: int = 0
    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    images_generated: int = 0
    corrupt_entries: int = 0
    seconds_generate: float = 0.0
    seconds_score: float = 0.0
    seconds_total: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def cache_hit_rate(self) -> float:
        """Fraction of unique requests answered from a cache (0 when nothing was asked)."""
        hits = self.memory_hits + self.disk_hits
        return hits / max(1, hits + self.misses)

    @property
    def images_per_s(self) -> float:
        """Images generated and scored per second of backend compute time."""
        busy = self.seconds_generate + self.seconds_score
        return self.images_generated / busy if busy > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        """Flat numbers, including the derived rates."""
        out = {k: v for k, v in self.__dict__.items() if k != "extra"}
        out.update(cache_hit_rate=self.cache_hit_rate, images_per_s=self.images_per_s)
        out.update(self.extra)
        return out
