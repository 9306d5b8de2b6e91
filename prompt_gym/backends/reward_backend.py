"""The reward backend: dedupe -> memory cache -> disk cache -> compute -> store, in request order.

Every env talks to a :class:`RewardBackend`. It owns a generator, a scorer and a captioner
(checked against :mod:`prompt_gym.backends.protocols` when it is built; it calls nothing else)
and the world data of its preset (``world``: target sets, prompt sets, modifiers, tokenizer).
``score(prompts, seeds, *, aesthetic=False)`` makes three promises:

* **Batching is invisible.** Each request gets exactly what ``score([prompt], [seed])`` would;
  identical requests inside one call are computed once.
* **Caching is invisible.** A cached result equals a recomputed one bit for bit. Results are
  content-addressed by the backend preset, its version, every generation and scoring parameter,
  the prompt and the seed. Memory first, then disk (``cache_dir``), then compute. Each entry is
  a frozen :class:`~prompt_gym.backends.records.ScoreRecord`. A generator may say which prompts
  draw the same scene (``scene_keys``, e.g. the shapes world, where unknown words change
  nothing): a miss whose (scene, seed) was already generated, in this call or earlier (kept
  like the memory cache), reuses that image's scores instead of rendering it again.
* **Failures are reported, never scored silently.** A generated image that was non-finite or is
  all black comes back with ``valid=False`` (and the reason) so the reward function can apply its
  documented floor.

Aesthetic scores are computed only when asked for (``aesthetic=True``; the rewrite envs ask,
ImageInversion does not). A result scored without them raises
:class:`~prompt_gym.backends.results.AestheticNotRequestedError` when its ``aesthetic`` is read;
a scorer without an aesthetic (``has_aesthetic`` false) gives ``nan`` when asked. A cache entry
stored without its aesthetic, asked for one, is a miss: it is computed again and stored with it.

Computing is the job of a :class:`~prompt_gym.backends.protocols.Compute` (``self.compute``):
one ``generate_and_score`` call per batch of misses. By default it is a
:class:`~prompt_gym.backends.parallel.ComputePool`, shared with worker processes when
``workers > 1``; a served backend (:mod:`prompt_gym.backends.served`) passes ``compute=`` to
send the misses to a Ray Serve service instead. A backend built by :func:`~prompt_gym.backends.factory.make_backend` carries the
factory's :class:`~prompt_gym.backends.factory.BackendSpec` (``spec``) and pickles as it: a copy
is rebuilt from the preset with empty caches.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from prompt_gym.backends.cache import DiskCache, MemoryLRU
from prompt_gym.backends.compute import Computed
from prompt_gym.backends.parallel import ComputePool
from prompt_gym.backends.protocols import (
    Captioner,
    Compute,
    Generator,
    Scorer,
    Target,
    check_components,
)
from prompt_gym.backends.records import (
    FLAG_BLACK,
    FLAG_NONFINITE,
    ScoreRecord,
    decode,
    encode,
)
from prompt_gym.backends.results import BackendStats, ScoreResult
from prompt_gym.backends.validation import check_requests, check_texts
from prompt_gym.backends.workers import TIMEOUT_S
from prompt_gym.backends.world import TEXT_WORLD, World
from prompt_gym.export.recorder import Recorder

Request = tuple[str, int]


class _Rows:
    """The scores of a call's distinct requests, filled stage by stage (internal).

    ``aes`` is ``None`` when the call does not ask for aesthetic scores, else ``nan`` until
    filled (and ``nan`` where the scorer has none).
    """

    def __init__(self, m: int, dim: int, aesthetic: bool) -> None:
        self.embeds = np.empty((m, dim), dtype=np.float32)
        self.aes = np.full(m, np.nan, dtype=np.float32) if aesthetic else None
        self.flags = np.empty(m, dtype=np.int32)
        self.tokens = np.empty(m, dtype=np.int32)
        self.hit = np.zeros(m, dtype=bool)

    def fill(self, j: int, record: ScoreRecord, tokens: bool = True) -> None:
        """Row ``j`` from a record (its token count too, unless ``tokens`` is false)."""
        self.embeds[j] = record.embed
        self.flags[j] = record.flags
        if tokens:
            self.tokens[j] = record.tokens
        if self.aes is not None and record.aesthetic is not None:
            self.aes[j] = record.aesthetic

    def take(self, rows: list[int], other: _Rows) -> None:
        """Rows ``rows`` from ``other`` (all of them, as they are, when it covers every row)."""
        if len(rows) == len(self.hit):  # every request was a miss
            self.embeds, self.flags, self.tokens = other.embeds, other.flags, other.tokens
            if self.aes is not None and other.aes is not None:
                self.aes = other.aes
            return
        self.embeds[rows], self.flags[rows], self.tokens[rows] = (
            other.embeds,
            other.flags,
            other.tokens,
        )
        if self.aes is not None and other.aes is not None:
            self.aes[rows] = other.aes

    def records(self) -> list[ScoreRecord]:
        """One record per row."""
        n = len(self.flags)
        aes = [None] * n if self.aes is None else self.aes.tolist()
        flags, tokens = self.flags.tolist(), self.tokens.tolist()
        return list(map(ScoreRecord, list(self.embeds), aes, flags, tokens))


class RewardBackend:
    """Batched, cached scoring of prompts for all envs of a process.

    Args:
        generator: Text-to-image component (:class:`~prompt_gym.backends.protocols.Generator`).
        scorer: Embedding / aesthetic component (:class:`~prompt_gym.backends.protocols.Scorer`).
        captioner: Captioning component (used to build ImageInversion prompt spaces).
        name: Backend preset name (part of every cache key).
        version: Preset version (part of every cache key).
        cache_dir: Directory of the on-disk cache shared across runs and processes; ``None``
            keeps results in memory only.
        memory_cache_size: Entries of the in-memory LRU (``0`` disables it).
        keep_images: Size of an in-memory LRU of generated images, for rendering and logging;
            ``0`` (the default) keeps none.
        workers: Processes that generate and score large batches of misses, this one included
            (:mod:`prompt_gym.backends.parallel`); ``1`` (the default) computes here only.
            Results are the same bits either way.
        worker_timeout_s: Seconds to wait for a worker's reply before raising
            :class:`~prompt_gym.backends.workers.WorkerError` naming its pid (default 300).
        world: The world data of the preset (target sets, prompt sets, modifiers, tokenizer),
            as :func:`~prompt_gym.backends.factory.make_backend` passes it; ``None`` (a backend
            built directly from components) gets the shipped text data,
            :data:`~prompt_gym.backends.world.TEXT_WORLD`.
        record: A :class:`~prompt_gym.export.recorder.Recorder` that gets one row per request
            of every :meth:`score` call, cache hits included (``cache_hit`` says which), in the
            store stage; ``None`` (the default) records nothing.
        compute: What generates and scores the cache misses
            (:class:`~prompt_gym.backends.protocols.Compute`); ``None`` (the default) builds a
            :class:`~prompt_gym.backends.parallel.ComputePool` of the components and ``workers``.

    Raises:
        ValueError: If ``workers`` is not a positive integer (or not ``1`` with a ``compute``),
            or a component or the compute does not implement its protocol.
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
        worker_timeout_s: float = TIMEOUT_S,
        world: World | None = None,
        record: Recorder | None = None,
        compute: Compute | None = None,
    ) -> None:
        check_components(generator, scorer, captioner)
        if compute is None:
            compute = ComputePool(generator, scorer, workers, worker_timeout_s)
        elif not isinstance(compute, Compute) or workers != 1:
            raise ValueError(
                f"compute must implement the Compute protocol and comes instead of workers "
                f"(workers=1), got {type(compute).__name__} with workers={workers!r}"
            )
        self.compute: Compute = compute
        self.workers = workers
        self.generator, self.scorer, self.captioner = generator, scorer, captioner
        self.name, self.version = name, version
        self.cache_dir = cache_dir
        self.world: World = TEXT_WORLD if world is None else world
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
        self._memory = MemoryLRU(memory_cache_size)  # request -> ScoreRecord
        self._texts = MemoryLRU(memory_cache_size)
        self._images = MemoryLRU(keep_images)
        self._scenes = MemoryLRU(memory_cache_size)  # (scene key, seed) -> ScoreRecord
        self._disk = DiskCache(cache_dir, name="scores") if cache_dir else None
        self.has_aesthetic = bool(scorer.has_aesthetic)
        self.stats = BackendStats()
        self.recorder = record
        self.spec: Callable[[], RewardBackend] | None = None
        """How to build this backend again (set by ``make_backend``); pickling uses it."""

    def __reduce_ex__(self, protocol: Any) -> Any:
        if self.spec is None:  # a backend of custom components pickles as its state
            return super().__reduce_ex__(protocol)
        return (self.spec, ())

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
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        *,
        aesthetic: bool = False,
        return_images: bool = False,
    ) -> ScoreResult:
        """Score each (prompt, seed) request; see the module docstring for the guarantees.

        Args:
            prompts: One prompt per request.
            seeds: One image seed per request.
            aesthetic: Also compute the aesthetic scores (``result.aesthetic``).
            return_images: Also return the generated images (``result.images``).

        Raises:
            ValueError: On a non-string prompt or one that is not valid Unicode (a lone
                surrogate), a negative or non-integer seed, or mismatched lengths; raised
                before any work starts.
            CacheError: If the disk cache cannot be read or written (locked past its timeout,
                disk full, an I/O error); the file is kept. A damaged file is not an error: it
                is moved aside with a warning and the values are recomputed.
            WorkerError: If the components raise in a worker process, or a worker does not
                answer within ``worker_timeout_s`` (a worker that dies is not an error: its
                part is computed here).
        """
        # 1. Check inputs
        prompts, seeds = check_requests(prompts, seeds)
        start = time.perf_counter()
        need_aesthetic = aesthetic and self.has_aesthetic  # an entry without one is a miss
        # 2. Dedupe: one row per distinct (prompt, seed)
        requests, inverse = _dedupe(prompts, seeds)
        rows = _Rows(len(requests), self.dim, aesthetic)
        # 3. Memory cache
        missing = self._look_up_memory(requests, rows, need_aesthetic)
        # 4. Disk cache
        if missing and self._disk is not None:
            missing = self._look_up_disk(requests, missing, rows, need_aesthetic)
        # 5. Compute misses
        fresh: dict[int, np.ndarray] = {}
        if missing:
            asked = [requests[j] for j in missing]
            keep = return_images or bool(self._images.capacity)
            computed, images = self._compute_misses(asked, need_aesthetic, keep)
            rows.take(missing, computed)
            # 6. Store
            self._store(asked, computed, images)
            fresh = {missing[i]: image for i, image in images.items()} if return_images else {}
        # 6b. Record every request, cache hits included
        if self.recorder is not None:
            self._record(prompts, seeds, rows, inverse)
        # 7. Assemble
        images_out = self._images_for(requests, fresh)[inverse] if return_images else None
        self.stats.requests += len(prompts)
        self.stats.unique_requests += len(requests)
        self.stats.misses += len(missing)
        self.stats.seconds_total += time.perf_counter() - start
        return _assemble(rows, inverse, images_out)

    def _look_up_memory(self, requests: list[Request], rows: _Rows, need: bool) -> list[int]:
        """Fill the rows the memory cache has; return the others."""
        if not self._memory.capacity:
            return list(range(len(requests)))
        missing = []
        for j, record in enumerate(self._memory.get_many(requests)):
            if record is None or (need and record.aesthetic is None):
                missing.append(j)
            else:
                rows.fill(j, record)
        rows.hit[:] = True
        rows.hit[missing] = False
        self.stats.memory_hits += len(requests) - len(missing)
        return missing

    def _look_up_disk(
        self, requests: list[Request], missing: list[int], rows: _Rows, need: bool
    ) -> list[int]:
        """Fill the rows of ``missing`` the disk cache has; return the others."""
        assert self._disk is not None
        before = self._disk.corrupt_reads
        values = self._disk.get_many([self.cache_key(*requests[j]) for j in missing])
        self.stats.corrupt_entries += self._disk.corrupt_reads - before
        still = []
        for j, value in zip(missing, values, strict=True):
            record = None
            if value is not None:
                try:
                    record = decode(value, self.dim)
                except ValueError:
                    self.stats.corrupt_entries += 1
            if record is None or (need and record.aesthetic is None):
                still.append(j)
                continue
            rows.fill(j, record)
            rows.hit[j] = True
            self._memory.put(requests[j], record)
            self.stats.disk_hits += 1
        return still

    def _compute_misses(
        self, requests: list[Request], need: bool, images_needed: bool
    ) -> tuple[_Rows, dict[int, np.ndarray]]:
        """Scores of cache misses and, if ``images_needed``, their images (by row).

        The token counts are asked for after the images are scored, so a served generator
        (:mod:`prompt_gym.backends.served`) knows them from the compute's reply.
        """
        out, images = self._make_and_score(requests, need, images_needed)
        prompts = [p for p, _ in requests]
        out.tokens = np.asarray(self.generator.count_tokens(prompts)).astype(np.int32)
        return out, images

    def _make_and_score(
        self, requests: list[Request], need: bool, images_needed: bool
    ) -> tuple[_Rows, dict[int, np.ndarray]]:
        """Scores of cache misses (token counts aside) and, if ``images_needed``, their images.

        With the generator's ``scene_keys``, each distinct (scene, seed) is generated once: a
        request that draws the scene of an earlier one (in this batch, or scored before and still
        remembered) takes its scores; only the prompt's token count is its own.
        """
        prompts = [p for p, _ in requests]
        seeds = [s for _, s in requests]
        out = _Rows(len(requests), self.dim, need)
        keys = self.generator.scene_keys(prompts)
        if keys is None:
            make, position = list(range(len(prompts))), list(range(len(prompts)))
        else:
            make, position = self._plan_scenes(list(zip(keys, seeds, strict=True)), out, need)
        if not make:
            return out, {}
        made = ([prompts[i] for i in make], [seeds[i] for i in make])
        done = self._generate_and_score(*made, need, images_needed)
        _scatter(done, position, len(make), out)
        if keys is not None and self._scenes.capacity:  # one record per image, in make's order
            scenes = [(keys[i], seeds[i]) for i in make]
            aes = [None] * len(make) if done.aesthetic is None else done.aesthetic.tolist()
            records = map(
                ScoreRecord, list(done.embeds), aes, done.flags.tolist(), [-1] * len(make)
            )
            self._scenes.put_many(zip(scenes, records, strict=False))
        if done.images is None or not images_needed:
            return out, {}
        return out, {i: done.images[pos] for i, pos in enumerate(position) if pos >= 0}

    def _plan_scenes(
        self, scenes: list[tuple[Hashable, int]], out: _Rows, need: bool
    ) -> tuple[list[int], list[int]]:
        """Which requests make an image, and each request's image among them (``-1``: none).

        A request whose (scene, seed) is remembered with every score it needs takes them (into
        ``out``) and makes nothing; the first request of any other (scene, seed) makes it.
        """
        n = len(scenes)
        remembered = self._scenes.get_many(scenes) if self._scenes.capacity else [None] * n
        slot: dict[tuple[Hashable, int], int] = {}  # scene -> position among the images to make
        make: list[int] = []
        position = [-1] * n
        for i, (scene, record) in enumerate(zip(scenes, remembered, strict=True)):
            pos = slot.get(scene)
            if pos is None:
                if record is not None and not (need and record.aesthetic is None):
                    out.fill(i, record, tokens=False)
                    continue
                pos = slot[scene] = len(make)
                make.append(i)
            position[i] = pos
        self.stats.count("images_reused", n - len(make))
        return make, position

    def _generate_and_score(
        self, prompts: list[str], seeds: list[int], need: bool, images: bool
    ) -> Computed:
        """One call of the compute layer, counted in the stats."""
        done = self.compute.generate_and_score(prompts, seeds, aesthetic=need, images=images)
        self.stats.images_generated += len(prompts)
        self.stats.seconds_generate += done.seconds_generate
        self.stats.seconds_score += done.seconds_score
        if done.by_workers:
            self.stats.count("images_by_workers", done.by_workers)
        return done

    def _store(
        self, requests: list[Request], computed: _Rows, images: dict[int, np.ndarray]
    ) -> None:
        """Put freshly computed results into the memory, disk and image caches."""
        if self._memory.capacity or self._disk is not None:
            records = computed.records()
            self._memory.put_many(zip(requests, records, strict=True))
            if self._disk is not None:
                self._disk.put_many(
                    (self.cache_key(*request), encode(record))
                    for request, record in zip(requests, records, strict=True)
                )
        if self._images.capacity:
            for i, image in images.items():
                self._images.put(requests[i], image)

    def _record(
        self, prompts: list[str], seeds: list[int], rows: _Rows, inverse: np.ndarray
    ) -> None:
        """Hand one row per request to the recorder (see ``record``)."""
        assert self.recorder is not None
        aes = None if rows.aes is None else rows.aes[inverse]
        valid = ((rows.flags & (FLAG_NONFINITE | FLAG_BLACK)) == 0)[inverse]
        self.recorder.add_requests(
            self.name, self.version, prompts, seeds, aes, valid, rows.hit[inverse]
        )

    def _images_for(self, requests: list[Request], fresh: dict[int, np.ndarray]) -> np.ndarray:
        """The images of ``requests``: fresh ones, kept ones, or generated again."""
        out: list[np.ndarray | None] = [fresh.get(j) for j in range(len(requests))]
        for j, request in enumerate(requests):
            if out[j] is None:
                out[j] = self._images.get(request)
        todo = [j for j, image in enumerate(out) if image is None]
        if todo:
            images, _ = self.generator.generate_checked(
                [requests[j][0] for j in todo], [requests[j][1] for j in todo]
            )
            for j, image in zip(todo, np.asarray(images), strict=True):
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
        """Close the disk cache connection, stop the worker processes, flush the recorder."""
        if self.recorder is not None:
            self.recorder.flush()
        if self._disk is not None:
            self._disk.close()
        self.compute.close()


def _dedupe(prompts: list[str], seeds: list[int]) -> tuple[list[Request], np.ndarray]:
    """The distinct requests in first-seen order, and each request's index among them."""
    unique: dict[Request, int] = {}
    inverse = np.fromiter(
        (unique.setdefault(r, len(unique)) for r in zip(prompts, seeds, strict=True)),
        dtype=np.intp,
        count=len(prompts),
    )
    return list(unique), inverse


def _scatter(done: Computed, position: list[int], made: int, out: _Rows) -> None:
    """Rows of ``out`` whose ``position`` is an image made take its scores."""
    if made == len(position):  # every row made its own image, in order
        out.embeds, out.flags = done.embeds, done.flags
        if done.aesthetic is not None:
            out.aes = done.aesthetic
        return
    where = np.array(position, dtype=np.intp)
    drawn = np.flatnonzero(where >= 0)
    out.embeds[drawn], out.flags[drawn] = done.embeds[where[drawn]], done.flags[where[drawn]]
    if done.aesthetic is not None and out.aes is not None:
        out.aes[drawn] = done.aesthetic[where[drawn]]


def _assemble(rows: _Rows, inverse: np.ndarray, images: np.ndarray | None) -> ScoreResult:
    """The result in request order (duplicates expanded)."""
    nonfinite = (rows.flags & FLAG_NONFINITE) > 0
    black = (rows.flags & FLAG_BLACK) > 0
    return ScoreResult(
        rows.embeds[inverse],
        None if rows.aes is None else rows.aes[inverse],
        ~(nonfinite | black)[inverse],
        nonfinite[inverse],
        black[inverse],
        rows.tokens[inverse],
        rows.hit[inverse],
        images,
    )
