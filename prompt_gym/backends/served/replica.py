"""What one replica of a served backend does, without Ray: :class:`ReplicaCore`.

A replica holds one in-process :class:`~prompt_gym.backends.reward_backend.RewardBackend`
(its generator, scorer, captioner, memory cache and, on a node-local disk, its SQLite cache).
:meth:`ReplicaCore.score_many` takes the requests ``@serve.batch`` merged from many callers
(each a :class:`ScoreRequest`: one caller's batch of cache misses), scores them with *one*
``backend.score`` call per kind of request (so the backend dedupes across callers, reuses
scenes and fills its memory cache), and splits the result back into one :class:`ScoreReply`
per request. Every method takes the replica's lock: the backend and its components are not
thread-safe, and Serve runs them off its event loop.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from prompt_gym.backends.protocols import Target
from prompt_gym.backends.records import FLAG_BLACK, FLAG_NONFINITE
from prompt_gym.backends.reward_backend import RewardBackend
from prompt_gym.backends.world import World


class ScoreRequest(NamedTuple):
    """One caller's batch of cache misses (what ``Compute.generate_and_score`` gets)."""

    prompts: list[str]
    seeds: list[int]
    aesthetic: bool
    images: bool


class ScoreReply(NamedTuple):
    """The scores of one :class:`ScoreRequest`, and how it was batched on the replica.

    Attributes:
        embeds: ``float32 (N, D)`` image embeddings.
        aesthetic: ``float32 (N,)`` when asked for, else ``None``.
        flags: ``int32 (N,)`` failure flags (:mod:`prompt_gym.backends.records`).
        tokens: ``int32 (N,)`` text-encoder tokens of each prompt.
        images: ``uint8 (N, H, W, 3)`` when asked for, else ``None``.
        seconds_generate: This request's share of the batch's generation time.
        seconds_score: This request's share of the batch's scoring time.
        batch_requests: Requests (from any callers) merged into the replica batch.
        batch_rows: Rows of that merged batch.
        batch_unique: Distinct (prompt, seed) rows of it, after dedupe across callers.
        replica: ``host:pid`` of the replica.
    """

    embeds: np.ndarray
    aesthetic: np.ndarray | None
    flags: np.ndarray
    tokens: np.ndarray
    images: np.ndarray | None
    seconds_generate: float
    seconds_score: float
    batch_requests: int
    batch_rows: int
    batch_unique: int
    replica: str


class ServiceInfo(NamedTuple):
    """What a caller needs to mirror the replica's backend (its cache namespace included)."""

    name: str
    version: str
    generator_config: dict[str, Any]
    scorer_config: dict[str, Any]
    dim: int
    has_aesthetic: bool
    world: World
    max_batch_size: int


def request_rows(requests: Sequence[ScoreRequest]) -> int:
    """Rows of a list of requests: the size ``@serve.batch`` caps at ``max_batch_size``.

    >>> request_rows([ScoreRequest(["a", "b"], [0, 1], False, False)])
    2
    """
    return sum(len(r.prompts) for r in requests)


class ReplicaCore:
    """One replica's backend behind a lock, and the merge/split of batched requests.

    Args:
        backend: The replica's in-process backend.
        max_batch_size: Most rows in one merged batch (reported to callers, who split larger
            batches of misses into requests of at most this many rows).
    """

    def __init__(self, backend: RewardBackend, max_batch_size: int) -> None:
        self.backend, self.max_batch_size = backend, max_batch_size
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.Lock()
        self.counters = {"batches": 0, "requests": 0, "rows": 0, "unique_rows": 0}

    def info(self) -> ServiceInfo:
        """The backend's name, version, component configs, dimension and world."""
        b = self.backend
        return ServiceInfo(
            b.name,
            b.version,
            b.generator.config(),
            b.scorer.config(),
            b.dim,
            b.has_aesthetic,
            b.world,
            self.max_batch_size,
        )

    def score_many(self, requests: list[ScoreRequest]) -> list[ScoreReply]:
        """Score a merged batch: one ``backend.score`` per (aesthetic, images) kind, split back."""
        kinds: dict[tuple[bool, bool], list[int]] = {}
        for i, request in enumerate(requests):
            kinds.setdefault((bool(request.aesthetic), bool(request.images)), []).append(i)
        parts: dict[int, tuple[Any, slice, float, float]] = {}
        unique = 0
        with self._lock:
            stats = self.backend.stats
            for (aesthetic, images), members in kinds.items():
                prompts = [p for i in members for p in requests[i].prompts]
                seeds = [s for i in members for s in requests[i].seeds]
                before = (stats.seconds_generate, stats.seconds_score, stats.unique_requests)
                result = self.backend.score(
                    prompts, seeds, aesthetic=aesthetic, return_images=images
                )
                t_gen = stats.seconds_generate - before[0]
                t_score = stats.seconds_score - before[1]
                unique += stats.unique_requests - before[2]
                start = 0
                for i in members:
                    n = len(requests[i].prompts)
                    share = n / max(1, len(prompts))
                    parts[i] = (result, slice(start, start + n), t_gen * share, t_score * share)
                    start += n
        rows = request_rows(requests)
        for key, n in (("batches", 1), ("requests", len(requests)), ("rows", rows)):
            self.counters[key] += n
        self.counters["unique_rows"] += unique
        return [self._reply(*parts[i], len(requests), rows, unique) for i in range(len(requests))]

    def _reply(
        self, result: Any, rows: slice, t_gen: float, t_score: float, k: int, n: int, u: int
    ) -> ScoreReply:
        """Rows ``rows`` of a merged result as one request's reply."""
        flags = np.where(result.nonfinite[rows], FLAG_NONFINITE, 0) | np.where(
            result.black[rows], FLAG_BLACK, 0
        )
        aes = None if result.aesthetic_scores is None else result.aesthetic_scores[rows]
        images = None if result.images is None else result.images[rows]
        return ScoreReply(
            result.image_embeds[rows],
            aes,
            flags.astype(np.int32),
            result.prompt_tokens[rows],
            images,
            t_gen,
            t_score,
            k,
            n,
            u,
            self.replica,
        )

    # ------------------------------------------------------------------ component calls
    def generate_checked(
        self, prompts: list[str], seeds: list[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The generator's images and non-finite flags."""
        with self._lock:
            images, nonfinite = self.backend.generator.generate_checked(prompts, seeds)
        return np.asarray(images), np.asarray(nonfinite, dtype=bool)

    def count_tokens(self, prompts: list[str]) -> np.ndarray:
        """The generator's token counts."""
        with self._lock:
            return np.asarray(self.backend.generator.count_tokens(prompts)).astype(np.int32)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Text embeddings (from the replica's text cache where it has them)."""
        with self._lock:
            return self.backend.embed_texts(texts)

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        """The scorer's image embeddings."""
        with self._lock:
            return np.asarray(self.backend.scorer.embed_images(images), dtype=np.float32)

    def aesthetic(self, images: np.ndarray) -> np.ndarray:
        """The scorer's aesthetic scores."""
        with self._lock:
            return np.asarray(self.backend.scorer.aesthetic(images), dtype=np.float32)

    def embed_images_with_aesthetic(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The scorer's embeddings and aesthetic scores, from one pass where it can."""
        with self._lock:
            embeds, aes = self.backend.scorer.embed_images_with_aesthetic(images)
        return np.asarray(embeds, dtype=np.float32), np.asarray(aes, dtype=np.float32)

    def caption(self, targets: list[Target], n: int, seed: int) -> list[list[str]]:
        """``n`` captions per target."""
        with self._lock:
            return self.backend.caption(targets, n, seed)

    def stats(self) -> dict[str, Any]:
        """This replica's batch counters and its backend's stats."""
        with self._lock:
            return {"replica": self.replica, **self.counters, **self.backend.stats.as_dict()}
