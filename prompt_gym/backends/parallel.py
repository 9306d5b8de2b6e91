"""The compute layer: a generator and a scorer behind one ``generate_and_score`` call.

:class:`ComputePool` is all the reward backend knows about computing: it hands over the cache
misses of a batch and gets back their scores (a :class:`~prompt_gym.backends.compute.Computed`).
With ``processes=1`` it runs :func:`~prompt_gym.backends.compute.generate_and_score` here; with
more, a batch large enough to give every process :data:`~.workers.MIN_IMAGES_PER_PROCESS`
images is split between this process and ``processes - 1`` worker processes
(:mod:`.workers`, started on first use), each running that same function, and the parts are
joined in request order: the same bits as one process. A worker that dies has its part computed
here and is restarted (bounded); one that does not answer raises (see :mod:`.workers`). This process's share adapts (:attr:`ComputePool.share`). A batch whose images are wanted is
computed here (images are not sent between processes).

The pool pickles without its worker processes; a copy starts its own when it needs them.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np

from prompt_gym.backends.compute import Computed, generate_and_score
from prompt_gym.backends.protocols import Generator, Scorer
from prompt_gym.backends.workers import TIMEOUT_S, WorkerPool, split_points

SHARE_STEP, SHARE_MIN, SHARE_MAX = 0.01, 0.1, 0.9
"""How this process's share of a shared batch adapts, and its bounds."""
WAITED_SECONDS = 20e-6
"""Waiting longer than this for the workers' replies counts as having waited."""


class ComputePool:
    """Generates and scores batches in this process and, for large ones, in worker processes.

    Args:
        generator: Text-to-image component.
        scorer: Embedding / aesthetic component.
        processes: Processes that share a large batch, this one included (``1``: this one).
        worker_timeout_s: Seconds to wait for a worker's reply before raising
            :class:`~.workers.WorkerError` (settable as ``worker_timeout_s`` before the workers
            start).

    Raises:
        ValueError: If ``processes`` is not a positive integer or ``worker_timeout_s`` is not
            a positive number.
    """

    def __init__(
        self,
        generator: Generator,
        scorer: Scorer,
        processes: int = 1,
        worker_timeout_s: float = TIMEOUT_S,
    ) -> None:
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
            raise ValueError(f"workers must be a positive integer, got {processes!r}")
        if (
            isinstance(worker_timeout_s, bool)
            or not isinstance(worker_timeout_s, int | float)
            or not 0 < worker_timeout_s < float("inf")
        ):
            raise ValueError(
                f"worker_timeout_s must be a positive number of seconds, got {worker_timeout_s!r}"
            )
        self.generator, self.scorer, self.processes = generator, scorer, processes
        self.worker_timeout_s = float(worker_timeout_s)
        self._pool: WorkerPool | None = None
        self.share = 1.0 / processes
        """This process's share of a shared batch: a step more after it waited for a worker,
        a step less when every reply was there (the caller also runs the envs, so an even
        split is rarely the fastest). Which process computes an image never changes its bits."""

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__, _pool=None)  # worker processes stay with this process

    def generate_and_score(
        self, prompts: list[str], seeds: list[int], *, aesthetic: bool, images: bool = False
    ) -> Computed:
        """Scores of every (prompt, seed), in request order.

        Args:
            prompts: The prompts.
            seeds: One seed per prompt.
            aesthetic: Whether to compute the aesthetic scores.
            images: Whether the images must come back (then everything is computed here).
        """
        points = split_points(len(prompts), self.processes, self.share)
        if images or len(points) == 2:
            return generate_and_score(self.generator, self.scorer, prompts, seeds, aesthetic)
        if self._pool is None:
            self._pool = WorkerPool(
                self.generator, self.scorer, self.processes - 1, self.worker_timeout_s
            )
        parts = [(prompts[a:b], seeds[a:b]) for a, b in pairwise(points)]
        mine, replies, waited = self._pool.map(
            parts,
            aesthetic,
            lambda p, s: generate_and_score(self.generator, self.scorer, p, s, aesthetic),
        )
        step = SHARE_STEP if waited > WAITED_SECONDS else -SHARE_STEP
        self.share = min(SHARE_MAX, max(SHARE_MIN, self.share + step))
        embeds = np.concatenate([mine.embeds, *(r[0] for r in replies)])
        flags = np.concatenate([mine.flags, *(r[2] for r in replies)])
        aes = None
        if aesthetic:
            aes = np.concatenate([mine.aesthetic, *(r[1] for r in replies)])
        by_workers = len(prompts) - points[1]
        return Computed(
            embeds, aes, flags, None, mine.seconds_generate, mine.seconds_score, by_workers
        )

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
