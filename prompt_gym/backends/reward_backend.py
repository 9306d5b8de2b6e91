"""The reward backend: dedupe -> cache -> one batched generate -> score, in request order.

Every env talks to a :class:`RewardBackend`; it owns a generator, a scorer and a captioner (see
:mod:`prompt_gym.backends.protocols`) and makes three promises:

* **Batching is invisible.** ``score(prompts, seeds)`` returns, for each request, exactly what
  ``score([prompt], [seed])`` would; identical requests inside one call are generated once.
* **Caching is invisible.** A cached result equals a recomputed one bit for bit. Results are
  content-addressed by the backend preset, its version, every generation and scoring parameter,
  the prompt and the seed. Memory first, then disk (``cache_dir``), then compute. A generator may
  also say which prompts draw the same scene (``scene_keys(prompts)``, e.g. the shapes world,
  where unknown words change nothing): a miss whose (scene, seed) was already generated, in this
  call or earlier (kept like the memory cache), reuses that image's scores instead of rendering
  it again. Aesthetic scores may be computed when a result's ``aesthetic`` is first read
  (:class:`LazyScoreResult`; never with a disk cache, which stores every score at once): the
  values are the same.
* **Failures are reported, never scored silently.** A generated image that was non-finite or is
  all black comes back with ``valid=False`` (and the reason) so the reward function can apply its
  documented floor.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from prompt_gym.backends.cache import DiskCache, MemoryLRU
from prompt_gym.backends.misses import Misses, PendingAesthetic, Unfinished
from prompt_gym.backends.protocols import Captioner, Generator, Scorer, Target
from prompt_gym.backends.results import BackendStats, LazyScoreResult, ScoreResult
from prompt_gym.backends.validation import check_requests, check_texts
from prompt_gym.backends.workers import Computed, WorkerPool, split_points

BLACK_MAX_LEVEL = 1
"""An image whose every pixel channel is at most this value counts as all black."""

_FLAG_NONFINITE, _FLAG_BLACK = 1, 2


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
        workers: Processes that generate and score large batches of misses, this one included
            (:mod:`prompt_gym.backends.workers`); ``1`` (the default) computes here only.
            Results are the same bits either way.

    Raises:
        ValueError: If ``workers`` is not a positive integer.
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
        workers: int = 1,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.workers = workers
        self._pool: WorkerPool | None = None
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
        self._scenes = MemoryLRU(memory_cache_size)  # (scene key, seed) -> scores
        self._disk = DiskCache(cache_dir, name="scores") if cache_dir else None
        self.has_aesthetic = bool(getattr(scorer, "has_aesthetic", True))
        self.stats = BackendStats()
        self.shared: dict[Any, Any] = {}
        """Memo for data derived from this backend that envs share (e.g. target sets)."""
        self._factory_args: tuple[str, dict[str, Any]] | None = None

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"] = None  # worker processes stay with this process
        return state

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
        inverse = np.fromiter(
            (unique.setdefault(r, len(unique)) for r in zip(prompts, seeds, strict=True)),
            dtype=np.intp,
            count=len(prompts),
        )
        requests = list(unique)
        m = len(requests)
        embeds = np.empty((m, self.dim), dtype=np.float32)
        aes = np.empty(m, dtype=np.float32)
        flags = np.empty(m, dtype=np.int32)
        tokens = np.empty(m, dtype=np.int32)
        hit = np.zeros(m, dtype=bool)
        pending = PendingAesthetic(self, requests)

        def fill(j: int, record: list[Any]) -> None:
            embeds[j], a, flags[j], tokens[j] = record
            if a is None:  # scored earlier without its aesthetic, which nobody read
                pending.again.append(j)
                pending.unfinished.append((record, j))
            else:
                aes[j] = a
            hit[j] = True

        missing = list(range(m))
        if self._memory.capacity:
            for j, record in enumerate(self._memory.get_many(requests)):
                if record is not None:
                    fill(j, record)
            self.stats.memory_hits += int(np.count_nonzero(hit))
            missing = np.flatnonzero(~hit).tolist()
        if missing and self._disk is not None:
            keys = [self.cache_key(*requests[j]) for j in missing]
            before = self._disk.corrupt_reads
            values = self._disk.get_many(keys)
            self.stats.corrupt_entries += self._disk.corrupt_reads - before
            for j, value in zip(missing, values, strict=True):
                if value is None:
                    continue
                try:
                    record = _decode(value, self.dim)
                except ValueError:
                    self.stats.corrupt_entries += 1
                    continue
                fill(j, record)
                self._memory.put(requests[j], record)
                self.stats.disk_hits += 1
            missing = [j for j in missing if not hit[j]]

        fresh_images: dict[int, np.ndarray] = {}
        if missing:
            images_needed = return_images or bool(self._images.capacity)
            miss = self._compute_misses([requests[j] for j in missing], images_needed)
            computed = (miss.embeds, miss.aes, miss.flags, miss.tokens)
            if len(missing) == m:  # every request is new: take the batch arrays as they are
                embeds, aes, flags, tokens = computed
            else:
                for column, values in zip((embeds, aes, flags, tokens), computed, strict=True):
                    column[missing] = values
            pending.batch = miss.batch
            pending.batch_rows = [missing[i] for i in miss.batch_rows]
            pending.batch_index = miss.batch_index
            pending.again += [missing[i] for i in miss.again]
            known = np.ones(len(missing), dtype=bool)
            known[miss.batch_rows + miss.again] = False
            stored = self._store([requests[j] for j in missing], computed, known, miss.images)
            unfinished = miss.unfinished + stored  # rows among the misses
            if len(missing) < m:
                unfinished = [(record, missing[i]) for record, i in unfinished]
            pending.unfinished += unfinished
            if return_images:
                fresh_images = {missing[i]: image for i, image in miss.images.items()}
            self.stats.misses += len(missing)

        nonfinite = (flags & _FLAG_NONFINITE) > 0
        black = (flags & _FLAG_BLACK) > 0
        images = None
        if return_images:
            images = self._images_for(requests, fresh_images)[inverse]
        self.stats.requests += len(prompts)
        self.stats.unique_requests += m
        self.stats.seconds_total += time.perf_counter() - start
        fields = (
            embeds[inverse],
            None,
            ~(nonfinite | black)[inverse],
            nonfinite[inverse],
            black[inverse],
            tokens[inverse],
            hit[inverse],
            images,
        )
        if not (pending.batch_rows or pending.again):
            return ScoreResult(fields[0], aes[inverse], *fields[2:])
        return LazyScoreResult(
            *fields,
            aesthetic_source=lambda: pending.resolve(aes)[inverse],
        )

    def _scene_records(self, requests: list[tuple[str, int]], rows: list[int]) -> Unfinished:
        """The remembered scene records of ``requests`` that still lack an aesthetic score.

        For requests scored again (their batch's scores were never read): the record of the scene
        each draws may be unfinished too, and takes the same score. Returned with the ``rows``.
        """
        scene_keys = getattr(self.generator, "scene_keys", None)
        if scene_keys is None or not self._scenes.capacity:
            return []
        keys = scene_keys([prompt for prompt, _ in requests])
        found = [
            (self._scenes.peek((key, seed)), row)
            for key, (_, seed), row in zip(keys, requests, rows, strict=True)
        ]
        return [(record, row) for record, row in found if record is not None and record[1] is None]

    def _store(
        self,
        requests: list[tuple[str, int]],
        computed: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        known: np.ndarray,
        images: dict[int, np.ndarray],
    ) -> Unfinished:
        """Put freshly computed results into the memory, image and disk caches.

        ``known`` marks the rows whose aesthetic score is known; the others are stored without
        it (``None``) until it is read (only without a disk cache, which always stores it).

        Returns:
            The in-memory records stored without their aesthetic score, with their rows.
        """
        embeds, aes, flags, tokens = computed
        unfinished: Unfinished = []
        if self._memory.capacity or self._disk is not None:
            records = [
                [embed, a if ok else None, f, t]
                for embed, a, ok, f, t in zip(
                    list(embeds),
                    aes.tolist(),
                    known.tolist(),
                    flags.tolist(),
                    tokens.tolist(),
                    strict=True,
                )
            ]
            self._memory.put_many(zip(requests, records, strict=True))
            if self._memory.capacity:
                unfinished = [(r, i) for i, r in enumerate(records) if r[1] is None]
            if self._disk is not None:
                self._disk.put_many(
                    (self.cache_key(*request), _encode(*record))
                    for request, record in zip(requests, records, strict=True)
                )
        if self._images.capacity:
            for i, image in images.items():
                self._images.put(requests[i], image)
        return unfinished

    def _generate(self, prompts: list[str], seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
        checked = getattr(self.generator, "generate_checked", None)
        if checked is not None:
            images, nonfinite = checked(prompts, seeds)
        else:
            images = self.generator.generate(prompts, seeds)
            nonfinite = np.zeros(len(prompts), dtype=bool)
        return np.asarray(images), np.asarray(nonfinite, dtype=bool)

    def _embed_and_aesthetic(
        self, images: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | Callable[[], np.ndarray]]:
        """Embeddings and aesthetic scores of generated images (one pass when the scorer can).

        Without a disk cache (which stores every score at once), a scorer with
        ``embed_deferring_aesthetic`` gives the aesthetic scores as a function, computed when a
        caller first reads them.
        """
        if self.has_aesthetic and self._disk is None:
            deferring = getattr(self.scorer, "embed_deferring_aesthetic", None)
            if deferring is not None:
                embeds, later = deferring(images)
                return np.asarray(embeds, dtype=np.float32), later
        both = getattr(self.scorer, "embed_and_aesthetic", None)
        if self.has_aesthetic and both is not None:
            embeds, aes = both(images)
        else:
            embeds = self.scorer.embed_images(images)
            if self.has_aesthetic:
                aes = self.scorer.aesthetic(images)
            else:
                aes = np.full(len(images), np.nan, dtype=np.float32)
        return np.asarray(embeds, dtype=np.float32), np.asarray(aes, dtype=np.float32)

    def _compute(
        self, prompts: list[str], seeds: list[int], images_needed: bool = True
    ) -> tuple[Computed, np.ndarray | None]:
        """Generate and score: ``(embeds, aesthetic (maybe deferred), flags)`` and the images.

        With ``workers > 1`` and no images needed, a large batch is shared with the worker
        processes and the images are ``None``.
        """
        if not images_needed and len(split_points(len(prompts), self.workers)) > 2:
            if self._pool is None:
                self._pool = WorkerPool(
                    self.generator, self.scorer, self.has_aesthetic, self.workers - 1
                )
            computed, remote = self._pool.compute(
                prompts, seeds, lambda p, s: self._compute_here(p, s)[0]
            )
            self.stats.images_generated += remote
            self.stats.extra["images_by_workers"] = (
                self.stats.extra.get("images_by_workers", 0) + remote
            )
            return computed, None
        return self._compute_here(prompts, seeds)

    def _compute_here(self, prompts: list[str], seeds: list[int]) -> tuple[Computed, np.ndarray]:
        """:meth:`_compute` in this process."""
        t0 = time.perf_counter()
        images, nonfinite = self._generate(prompts, seeds)
        t1 = time.perf_counter()
        embeds, aes = self._embed_and_aesthetic(images)
        t2 = time.perf_counter()
        black = images.reshape(len(images), -1).max(axis=1) <= BLACK_MAX_LEVEL
        flags = np.where(nonfinite, _FLAG_NONFINITE, 0) | np.where(black, _FLAG_BLACK, 0)
        self.stats.images_generated += len(prompts)
        self.stats.seconds_generate += t1 - t0
        self.stats.seconds_score += t2 - t1
        return (embeds, aes, flags.astype(np.int32)), images

    def _compute_misses(
        self, requests: list[tuple[str, int]], images_needed: bool = True
    ) -> Misses:
        """Results of cache misses (a :class:`Misses`), with the images if ``images_needed``.

        With the generator's ``scene_keys``, each distinct (scene, seed) is generated once: a
        request that draws the scene of an earlier one (in this batch, or scored before and still
        remembered) takes its scores; only the prompt's token count is its own.
        """
        prompts = [p for p, _ in requests]
        seeds = [s for _, s in requests]
        n = len(requests)
        count_tokens = getattr(self.generator, "count_tokens", None)
        tokens = np.asarray(count_tokens(prompts)) if count_tokens else np.full(n, -1)
        out = Misses(n, self.dim, tokens.astype(np.int32))
        scene_keys = getattr(self.generator, "scene_keys", None)
        if scene_keys is None:
            (embeds, aes, flags), made = self._compute(prompts, seeds, images_needed)
            out.embeds, out.flags = embeds, flags
            out.images = dict(enumerate(made)) if made is not None and images_needed else {}
            out.take_aesthetic(aes, np.arange(n), np.arange(n))
            return out
        keys = list(zip(scene_keys(prompts), seeds, strict=True))
        slot: dict[Any, int] = {}  # scene key -> position among the images to make
        make: list[int] = []  # the request that makes each of them
        position = [-1] * n  # request -> that position; -1: remembered
        remembered = self._scenes.get_many(keys) if self._scenes.capacity else [None] * n
        for i, (key, record) in enumerate(zip(keys, remembered, strict=True)):
            pos = slot.get(key)
            if pos is None:
                if record is not None:
                    out.embeds[i], a, out.flags[i] = record
                    if a is None:
                        out.again.append(i)
                        out.unfinished.append((record, i))
                    else:
                        out.aes[i] = a
                    continue
                pos = slot[key] = len(make)
                make.append(i)
            position[i] = pos
        extra = self.stats.extra
        extra["images_reused"] = extra.get("images_reused", 0) + n - len(make)
        if not make:
            return out
        (e, a, f), made = self._compute(
            [prompts[i] for i in make], [seeds[i] for i in make], images_needed
        )
        where = np.array(position, dtype=np.intp)
        drawn = np.flatnonzero(where >= 0)
        if len(make) == n:  # every request draws a new scene
            out.embeds, out.flags = e, f
        else:
            out.embeds[drawn], out.flags[drawn] = e[where[drawn]], f[where[drawn]]
        out.take_aesthetic(a, drawn, where[drawn])
        if self._scenes.capacity:  # one record per image made, in make's order (as slot's)
            scores = [None] * len(make) if callable(a) else a.tolist()
            records = [[x, y, z] for x, y, z in zip(list(e), scores, f.tolist(), strict=True)]
            self._scenes.put_many(zip(slot, records, strict=True))
            if callable(a):
                out.unfinished += list(zip(records, make, strict=True))
        if made is not None and images_needed:
            out.images = {i: made[pos] for i, pos in enumerate(position) if pos >= 0}
        return out

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
        self._scenes.clear()
        self._texts.clear()
        self._images.clear()

    def close(self) -> None:
        """Close the disk cache connection and stop the worker processes."""
        if self._disk is not None:
            self._disk.close()
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _rebuild(factory: Any, name: str, kwargs: dict[str, Any]) -> RewardBackend:
    return factory(name, **kwargs)
