"""What a :class:`~prompt_gym.backends.reward_backend.RewardBackend` call returns, and its counters."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class AestheticNotRequestedError(ValueError):
    """The aesthetic scores of a result that was scored without them were read."""


@dataclass
class ScoreResult:
    """Scores for a batch of (prompt, seed) requests, in request order.

    Attributes:
        image_embeds: ``float32 (N, D)`` unit embeddings of the generated images.
        aesthetic_scores: ``float32 (N,)`` aesthetic scores when the call asked for them
            (``nan`` where the scorer has none), else ``None``; read them as :attr:`aesthetic`.
        valid: ``bool (N,)``; ``False`` where the image was non-finite or all black.
        nonfinite: ``bool (N,)``; the generator produced NaN/inf (the image was zeroed).
        black: ``bool (N,)``; the image is all black (e.g. a safety filter or a NaN VAE).
        prompt_tokens: ``int32 (N,)`` text-encoder tokens incl. BOS/EOS, ``-1`` if unknown.
        cache_hit: ``bool (N,)``; the result came from the memory or disk cache.
        images: ``uint8 (N, H, W, 3)`` when requested with ``return_images=True``, else ``None``.
    """

    image_embeds: np.ndarray
    aesthetic_scores: np.ndarray | None
    valid: np.ndarray
    nonfinite: np.ndarray
    black: np.ndarray
    prompt_tokens: np.ndarray
    cache_hit: np.ndarray
    images: np.ndarray | None = None

    @property
    def aesthetic(self) -> np.ndarray:
        """``float32 (N,)`` aesthetic scores.

        Raises:
            AestheticNotRequestedError: If the call did not ask for them (``aesthetic=True``).
        """
        if self.aesthetic_scores is None:
            raise AestheticNotRequestedError(
                "these scores were computed without their aesthetic scores; "
                "call RewardBackend.score(..., aesthetic=True) to get them"
            )
        return self.aesthetic_scores

    def rows(self, start: int, stop: int) -> ScoreResult:
        """Rows ``start:stop`` of the result."""
        s = slice(start, stop)
        aes = None if self.aesthetic_scores is None else self.aesthetic_scores[s]
        images = None if self.images is None else self.images[s]
        return ScoreResult(
            self.image_embeds[s],
            aes,
            self.valid[s],
            self.nonfinite[s],
            self.black[s],
            self.prompt_tokens[s],
            self.cache_hit[s],
            images,
        )


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

    def count(self, name: str, n: int) -> None:
        """Add ``n`` to the extra counter ``name``."""
        self.extra[name] = self.extra.get(name, 0) + n
