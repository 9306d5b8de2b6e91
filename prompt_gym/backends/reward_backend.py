"""The reward backend: dedupe -> cache -> one batched generate -> score, in request order.

Every env talks to a :class:`RewardBackend`; it owns a generator, a scorer and a captioner (see
:mod:`prompt_gym.backends.protocols`) and makes three promises:

* **Batching is invisible.** ``score(prompts, seeds)`` returns, for each request, exactly what
  ``score([prompt], [seed])`` would; identical requests inside one call are generated once.
* **Caching is invisible.** A cached result equals a recomputed one bit for bit. Results are
  content-addressed by the backend preset, its version, every generation and scoring parameter,
  the prompt and the seed. Memory first, then disk (``cache_dir``), then compute.
* **Failures are reported, never scored silently.** A generated image that was non-finite or is
  all black comes back with ``valid=False`` (and the reason) so the reward function can apply its
  documented floor.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prompt_gym.backends.cache import DiskCache, MemoryLRU
from prompt_gym.backends.protocols import Captioner, Generator, Scorer, Target
from prompt_gym.backends.validation import check_requests, check_texts

BLACK_MAX_LEVEL = 1
"""An image whose every pixel channel is at most this value counts as all black."""

_FLAG_NONFINITE, _FLAG_BLACK = 1, 2


@dataclass
class ScoreResult:
    """Scores for a batch of (prompt, seed) requests, in request order.

    Attributes:
        image_embeds: ``float32 (N, D)`` unit embeddings of the generated images.
        aesthetic: ``float32 (N,)`` aesthetic scores (``nan`` when the scorer has none).
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


def _encode(embed: np.ndarray, aesthetic: float, flags: int, tokens: int) -> bytes:
    head = np.array([flags, tokens], dtype="<i4").tobytes()
    return head + np.asarray([aesthetic], dtype="<f4").tobytes() + embed.astype("<f4").tobytes()


def _decode(value: bytes, dim: int) -> tuple[np.ndarray, float, int, int]:
    if len(value) != 12 + 4 * dim:
        raise ValueError("cache entry has the wrong size")
    flags, tokens = np.frombuffer(value, dtype="<i4", count=2)
    aes = float(np.frombuffer(value, dtype="<f4", count=1, offset=8)[0])
    embed = np.frombuffer(value, dtype="<f4", offset=12).astype(np.float32)
    return embed, aes, int(flags), int(tokens)


class RewardBackend:
    """Batched, cached scoring of prompts for all envs of a process.

    Args:
        generator: Text-to-image component.
        scorer: Embedding / aesthetic component.
        captioner: Captioning component (used to build ImageInversion prompt spaces).
        name: Backend preset name (part of every cache key).
        version: Preset version (part of every cache key).
        cache_dir: Directory of the on-disk cache shared across runs and processes; ``None``
            keeps results in memory only.
        memory_cache_size: Entries of the in-memory LRU (``0`` disables it).
        keep_images: Size of an in-memory LRU of generated images, for rendering and logging;
            ``0`` (the default) keeps none.
    """

    def __init__(
        self,
        generator: Generator,
        scorer: Scorer,
        captioner: Captioner,
        *,
        name: str = "custom",
        version: str = "1",
        cache_dir: str | None = None,
        memory_cache_size: int = 200_000,
        keep_images: int = 0,
    ) -> None:
        self.generator, self.scorer, self.captioner = generator, scorer, captioner
        self.name, self.version = name, version
        self.cache_dir = cache_dir
        self.namespace = json.dumps(
            {
                "backend": name,
                "version": version,
                "generator": generator.config(),
                "scorer": scorer.config(),
            },
            sort_keys=True,
            default=str,
        )
        self._prefix = hashlib.sha256(self.namespace.encode()).digest()
        self._memory = MemoryLRU(memory_cache_size)
        self._texts = MemoryLRU(memory_cache_size)
        self._images = MemoryLRU(keep_images)
        self._disk = DiskCache(cache_dir, name="scores") if cache_dir else None
        self.has_aesthetic = bool(getattr(scorer, "has_aesthetic", True))
        self.stats = BackendStats()
        self.shared: dict[Any, Any] = {}
        """Memo for data derived from this backend that envs share (e.g. target sets)."""
        self._factory_args: tuple[str, dict[str, Any]] | None = None

    # ------------------------------------------------------------------ pickling
    def __reduce__(self) -> tuple[Any, ...]:
        if self._factory_args is None:
            return object.__reduce__(self)
        from prompt_gym.backends.factory import make_backend

        name, kwargs = self._factory_args
        return (_rebuild, (make_backend, name, kwargs))

    # ------------------------------------------------------------------ keys
    def cache_key(self, prompt: str, seed: int) -> bytes:
        """Digest of (backend namespace, prompt, seed): the content address of a result."""
        return hashlib.sha256(self._prefix + seed.to_bytes(8, "little") + prompt.encode()).digest()

    @property
    def dim(self) -> int:
        """Embedding dimension of the scorer."""
        return int(self.scorer.dim)

    # ------------------------------------------------------------------ scoring
    def score(
        self, prompts: Sequence[str], seeds: Sequence[int], *, return_images: bool = False
    ) -> ScoreResult:
        """Score each (prompt, seed) request; see the module docstring for the guarantees.

        Raises:
            ValueError: On a non-string prompt, a negative or non-integer seed, or mismatched
                lengths; raised before any work starts.
        """
        prompts, seeds = check_requests(prompts, seeds)
        start = time.perf_counter()
        unique: dict[tuple[str, int], int] = {}
        inverse = np.empty(len(prompts), dtype=np.int64)
        for i, request in enumerate(zip(prompts, seeds, strict=True)):
            inverse[i] = unique.setdefault(request, len(unique))
        requests = list(unique)
        records: list[tuple[np.ndarray, float, int, int] | None] = [None] * len(requests)
        hit = np.zeros(len(requests), dtype=bool)

        for j, request in enumerate(requests):
            records[j] = self._memory.get(request)
        self.stats.memory_hits += sum(r is not None for r in records)

        missing = [j for j, r in enumerate(records) if r is None]
        if missing and self._disk is not None:
            keys = [self.cache_key(*requests[j]) for j in missing]
            before = self._disk.corrupt_reads
            values = self._disk.get_many(keys)
            self.stats.corrupt_entries += self._disk.corrupt_reads - before
            for j, value in zip(missing, values, strict=True):
                if value is None:
                    continue
                try:
                    records[j] = _decode(value, self.dim)
                except ValueError:
                    self.stats.corrupt_entries += 1
                    continue
                self._memory.put(requests[j], records[j])
                self.stats.disk_hits += 1
            missing = [j for j in missing if records[j] is None]
        hit[:] = [r is not None for r in records]

        fresh_images: dict[int, np.ndarray] = {}
        if missing:
            computed, images = self._compute([requests[j] for j in missing])
            writes = []
            for j, record, image in zip(missing, computed, images, strict=True):
                records[j] = record
                fresh_images[j] = image
                self._memory.put(requests[j], record)
                self._images.put(requests[j], image)
                if self._disk is not None:
                    writes.append((self.cache_key(*requests[j]), _encode(*record)))
            if self._disk is not None:
                self._disk.put_many(writes)
            self.stats.misses += len(missing)

        embeds = np.stack([r[0] for r in records]).astype(np.float32, copy=False)
        aes = np.array([r[1] for r in records], dtype=np.float32)
        flags = np.array([r[2] for r in records], dtype=np.int32)
        tokens = np.array([r[3] for r in records], dtype=np.int32)
        nonfinite = (flags & _FLAG_NONFINITE) > 0
        black = (flags & _FLAG_BLACK) > 0
        images = None
        if return_images:
            images = self._images_for(requests, fresh_images)[inverse]
        self.stats.requests += len(prompts)
        self.stats.unique_requests += len(requests)
        self.stats.seconds_total += time.perf_counter() - start
        return ScoreResult(
            image_embeds=embeds[inverse],
            aesthetic=aes[inverse],
            valid=~(nonfinite | black)[inverse],
            nonfinite=nonfinite[inverse],
            black=black[inverse],
            prompt_tokens=tokens[inverse],
            cache_hit=hit[inverse],
            images=images,
        )

    def _generate(self, prompts: list[str], seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
        checked = getattr(self.generator, "generate_checked", None)
        if checked is not None:
            images, nonfinite = checked(prompts, seeds)
        else:
            images = self.generator.generate(prompts, seeds)
            nonfinite = np.zeros(len(prompts), dtype=bool)
        return np.asarray(images), np.asarray(nonfinite, dtype=bool)

    def _compute(
        self, requests: list[tuple[str, int]]
    ) -> tuple[list[tuple[np.ndarray, float, int, int]], np.ndarray]:
        prompts = [p for p, _ in requests]
        seeds = [s for _, s in requests]
        t0 = time.perf_counter()
        images, nonfinite = self._generate(prompts, seeds)
        t1 = time.perf_counter()
        embeds = np.asarray(self.scorer.embed_images(images), dtype=np.float32)
        if self.has_aesthetic:
            aes = np.asarray(self.scorer.aesthetic(images), dtype=np.float32)
        else:
            aes = np.full(len(prompts), np.nan, dtype=np.float32)
        t2 = time.perf_counter()
        count_tokens = getattr(self.generator, "count_tokens", None)
        tokens = np.asarray(count_tokens(prompts)) if count_tokens else np.full(len(prompts), -1)
        black = images.reshape(len(images), -1).max(axis=1) <= BLACK_MAX_LEVEL
        flags = np.where(nonfinite, _FLAG_NONFINITE, 0) | np.where(black, _FLAG_BLACK, 0)
        self.stats.images_generated += len(prompts)
        self.stats.seconds_generate += t1 - t0
        self.stats.seconds_score += t2 - t1
        records = [
            (embeds[i], float(aes[i]), int(flags[i]), int(tokens[i])) for i in range(len(prompts))
        ]
        return records, images

    def _images_for(
        self, requests: list[tuple[str, int]], fresh: dict[int, np.ndarray]
    ) -> np.ndarray:
        out: list[np.ndarray | None] = [fresh.get(j) for j in range(len(requests))]
        for j, request in enumerate(requests):
            if out[j] is None:
                out[j] = self._images.get(request)
        todo = [j for j, image in enumerate(out) if image is None]
        if todo:
            images, _ = self._generate(
                [requests[j][0] for j in todo], [requests[j][1] for j in todo]
            )
            for j, image in zip(todo, images, strict=True):
                out[j] = image
                self._images.put(requests[j], image)
        return np.stack(out)

    # ------------------------------------------------------------------ pass-throughs
    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
        """Generated images for the requests (from the image LRU when kept), ``uint8 (N,H,W,3)``."""
        prompts, seeds = check_requests(prompts, seeds)
        return self._images_for(list(zip(prompts, seeds, strict=True)), {})

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Cached text embeddings, ``float32 (N, D)``; each distinct text is embedded once."""
        texts = check_texts(texts, what="text")
        todo = sorted({t for t in texts if self._texts.get(t) is None})
        if todo:
            embeds = np.asarray(self.scorer.embed_texts(todo), dtype=np.float32)
            for text, embed in zip(todo, embeds, strict=True):
                self._texts.put(text, embed)
        out = [self._texts.get(t) for t in texts]
        if any(e is None for e in out):  # LRU smaller than the batch: embed directly
            return np.asarray(self.scorer.embed_texts(texts), dtype=np.float32)
        return np.stack(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        """Unit embeddings of given images (e.g. targets), ``float32 (N, D)``."""
        return np.asarray(self.scorer.embed_images(images), dtype=np.float32)

    def aesthetic(self, images: np.ndarray) -> np.ndarray:
        """Aesthetic scores of given images, ``float32 (N,)``."""
        return np.asarray(self.scorer.aesthetic(images), dtype=np.float32)

    def caption(self, targets: Sequence[Target], n: int, seed: int = 0) -> list[list[str]]:
        """``n`` captions per target from the captioner."""
        return self.captioner.caption(targets, n, seed)

    def clear_memory(self) -> None:
        """Drop the in-memory caches (the disk cache is kept)."""
        self._memory.clear()
        self._texts.clear()
        self._images.clear()

    def close(self) -> None:
        """Close the disk cache connection."""
        if self._disk is not None:
            self._disk.close()


def _rebuild(factory: Any, name: str, kwargs: dict[str, Any]) -> RewardBackend:
    return factory(name, **kwargs)
