"""Generate and score one batch: the free function every process runs.

:func:`generate_and_score` is what a batch of cache misses costs: one batched
``generate_checked`` call, one batched embedding (with the aesthetic when asked, in one pass
where the scorer can) and the failure flags. The calling process runs it on its part of a batch
and every worker process (:mod:`.workers`) on its own, so which process computes an image never
changes its bits.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from prompt_gym.backends.protocols import Generator, Scorer
from prompt_gym.backends.records import FLAG_BLACK, FLAG_NONFINITE

BLACK_MAX_LEVEL = 1
"""An image whose every pixel channel is at most this value counts as all black."""


class Computed(NamedTuple):
    """Scores of a freshly generated batch, in request order.

    Attributes:
        embeds: ``float32 (N, D)`` image embeddings.
        aesthetic: ``float32 (N,)`` aesthetic scores when asked for, else ``None``.
        flags: ``int32 (N,)`` failure flags (:mod:`.records`).
        images: ``uint8 (N, H, W, 3)``, or ``None`` where other processes made them.
        seconds_generate: Time this process spent generating.
        seconds_score: Time this process spent scoring.
        by_workers: Images of the batch that worker processes made.
    """

    embeds: np.ndarray
    aesthetic: np.ndarray | None
    flags: np.ndarray
    images: np.ndarray | None
    seconds_generate: float = 0.0
    seconds_score: float = 0.0
    by_workers: int = 0


def failure_flags(images: np.ndarray, nonfinite: np.ndarray) -> np.ndarray:
    """``int32 (N,)``: :data:`FLAG_NONFINITE` where flagged, :data:`FLAG_BLACK` where all black."""
    black = images.reshape(len(images), -1).max(axis=1) <= BLACK_MAX_LEVEL
    flags = np.where(nonfinite, FLAG_NONFINITE, 0) | np.where(black, FLAG_BLACK, 0)
    return flags.astype(np.int32)


def generate_and_score(
    generator: Generator,
    scorer: Scorer,
    prompts: Sequence[str],
    seeds: Sequence[int],
    aesthetic: bool,
) -> Computed:
    """Generate one image per (prompt, seed) and score it.

    Args:
        generator: Makes the images (``generate_checked``).
        scorer: Embeds them (``embed_images``, or ``embed_images_with_aesthetic``).
        prompts: The prompts.
        seeds: One seed per prompt.
        aesthetic: Whether to compute the aesthetic scores (the scorer must have them).
    """
    t0 = time.perf_counter()
    images, nonfinite = generator.generate_checked(prompts, seeds)
    images, nonfinite = np.asarray(images), np.asarray(nonfinite, dtype=bool)
    t1 = time.perf_counter()
    aes = None
    if aesthetic:
        embeds, aes = scorer.embed_images_with_aesthetic(images)
        aes = np.asarray(aes, dtype=np.float32)
    else:
        embeds = scorer.embed_images(images)
    t2 = time.perf_counter()
    embeds = np.asarray(embeds, dtype=np.float32)
    return Computed(embeds, aes, failure_flags(images, nonfinite), images, t1 - t0, t2 - t1)
