"""What a batch's cache misses computed, and the aesthetic scores it still owes (internal).

Used by :class:`~prompt_gym.backends.reward_backend.RewardBackend`: :class:`Misses` carries the
results of a batch of misses in request order; :class:`PendingAesthetic` computes, when a
result's ``aesthetic`` is first read, the scores that were deferred.

An in-memory record is a list ``[embed, aesthetic, flags, ...]``. One stored before its aesthetic
score is known holds ``None`` there; the batch that stored it keeps the list (:data:`Unfinished`)
and writes the score into it, in place, once computed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from prompt_gym.backends.reward_backend import RewardBackend

Unfinished = list[tuple[list[Any], int]]
"""Cached records without their aesthetic score, each with the row whose score completes it."""


class Misses:
    """Results of a batch of cache misses, in request order.

    ``aes`` holds the known aesthetic scores; rows ``batch_rows`` take theirs from the deferred
    scores ``batch()[batch_index]`` of the images made, rows ``again`` must be scored again;
    ``unfinished`` are the remembered scene records that take the score of a row once known.
    """

    def __init__(self, n: int, dim: int, tokens: np.ndarray) -> None:
        self.embeds = np.empty((n, dim), dtype=np.float32)
        self.aes = np.empty(n, dtype=np.float32)
        self.flags = np.empty(n, dtype=np.int32)
        self.tokens = tokens
        self.images: dict[int, np.ndarray] = {}
        self.batch: Callable[[], np.ndarray] | None = None
        self.batch_rows: list[int] = []
        self.batch_index: list[int] = []
        self.again: list[int] = []
        self.unfinished: Unfinished = []

    def take_aesthetic(
        self, aes: np.ndarray | Callable[[], np.ndarray], rows: np.ndarray, index: np.ndarray
    ) -> None:
        """Rows ``rows`` get ``aes[index]``, now or (deferred scores) when first read."""
        if callable(aes):
            self.batch, self.batch_rows, self.batch_index = aes, rows.tolist(), index.tolist()
        elif len(rows) == len(self.aes) and (index == rows).all():
            self.aes = aes
        else:
            self.aes[rows] = aes[index]


class PendingAesthetic:
    """How to compute the aesthetic scores a batch does not know yet, and where they go.

    Rows made in this call take them from the scorer's deferred scores of their batch; rows whose
    cached record has none (made earlier, never read) are generated and scored again. Once known,
    the scores are written into the ``unfinished`` in-memory records.
    """

    def __init__(self, backend: RewardBackend, requests: list[tuple[str, int]]) -> None:
        self.backend, self.requests = backend, requests
        self.batch_rows: list[int] = []
        self.batch_index: list[int] = []
        self.batch: Callable[[], np.ndarray] | None = None
        self.again: list[int] = []
        self.unfinished: Unfinished = []

    def resolve(self, aes: np.ndarray) -> np.ndarray:
        """Fill ``aes`` (per unique request) and complete the unfinished records."""
        t0 = time.perf_counter()
        if self.batch is not None and self.batch_rows:
            aes[self.batch_rows] = self.batch()[self.batch_index]
        if self.again:
            again = [self.requests[j] for j in self.again]
            images, _ = self.backend._generate([p for p, _ in again], [s for _, s in again])
            aes[self.again] = np.asarray(self.backend.scorer.aesthetic(images), dtype=np.float32)
            self.backend.stats.images_generated += len(again)
            self.unfinished += self.backend._scene_records(again, self.again)
        if self.unfinished:
            scores = aes.tolist()
            for record, row in self.unfinished:
                record[1] = scores[row]
        self.backend.stats.seconds_score += time.perf_counter() - t0
        return aes
