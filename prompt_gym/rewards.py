"""Reward shaping: pure functions from scores to rewards. The formulas are the contract.

Named, versioned configs (see :data:`REWARD_CONFIGS`):

* ``imageprompt-i2i`` (ImagePrompt): the mean over ``num_images`` seeds of
  ``cos(embed(image(prompt)), embed(target))``. Range ``[-1, 1]``.
* ``promptist-v1`` (Promptist): ``R = f_aes + f_rel`` with
  ``f_rel = mean_i min(20 * cos(text(x), image_i(y)) - 5.6, 0)`` (range ``[-25.6, 0]``) and
  ``f_aes = mean_i [aes(image_i(y)) - aes(image_i(x))]`` (range ``[-10, 10]``), where image
  ``i`` of ``x`` and of ``y`` share seed ``i``. Range of ``R``: ``[-35.6, 10]``.
  The KL penalty belongs to the agent, not to the env.
* ``relevance``: ``f_rel`` alone; ``aesthetic``: ``f_aes`` alone (ablations).

Failed images (non-finite or all black, ``valid=False``) are never scored: such an image
counts with the floor cosine ``-1`` and its aesthetic with the floor ``0``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FLOOR_COSINE = -1.0
"""Cosine assigned to an image that failed (non-finite or all black)."""
FLOOR_AESTHETIC = 0.0
"""Aesthetic score assigned to an image that failed."""
REL_SCALE, REL_SHIFT = 20.0, 5.6
"""Promptist's relevance hinge ``min(20 * cos - 5.6, 0)``."""


def cosine_to(
    embeds: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """Cosine of each unit row of ``embeds`` to the unit vector ``target``; failed rows get the floor.

    >>> cosine_to(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1.0, 0.0])).tolist()
    [1.0, 0.0]
    >>> cosine_to(np.array([[1.0, 0.0]]), np.array([1.0, 0.0]), np.array([False])).tolist()
    [-1.0]
    """
    cos = np.asarray(embeds, dtype=np.float64) @ np.asarray(target, dtype=np.float64)
    return floor_failed(cos, valid)


def floor_failed(cos: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """``cos`` with the rows that are not ``valid`` set to :data:`FLOOR_COSINE`.

    >>> floor_failed(np.array([0.5, 0.7]), np.array([True, False])).tolist()
    [0.5, -1.0]
    """
    if valid is not None and not np.asarray(valid).all():
        cos = np.where(valid, cos, FLOOR_COSINE)
    return cos


def image_similarity(
    embeds: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None
) -> float:
    """``imageprompt-i2i``: mean cosine of the generated images to the target image.

    >>> image_similarity(np.array([[1.0, 0.0], [0.6, 0.8]]), np.array([1.0, 0.0]))
    0.8
    """
    cos = cosine_to(embeds, target, valid)
    return float(cos[0]) if cos.shape == (1,) else float(np.mean(cos))  # the mean of one is it


def image_similarity_rows(
    embeds: np.ndarray, targets: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """:func:`image_similarity` of one image per row: ``embeds (R, D)`` against ``targets (R, D)``.

    Row ``r`` equals ``image_similarity(embeds[r:r + 1], targets[r], valid[r:r + 1])`` exactly
    (the same dot product per row, without a Python loop).

    >>> image_similarity_rows(np.array([[1.0, 0.0], [0.6, 0.8]]), np.array([[1.0, 0.0]] * 2)).tolist()
    [1.0, 0.6]
    """
    cos = np.vecdot(np.asarray(embeds, dtype=np.float64), np.asarray(targets, dtype=np.float64))
    return floor_failed(cos, valid)


@dataclass(frozen=True)
class RewriteScores:
    """What a rewrite reward needs, for ``k`` shared seeds.

    Attributes:
        text_x: ``(D,)`` unit text embedding of the user's prompt ``x``.
        image_y: ``(k, D)`` unit embeddings of the images of the rewrite ``y``.
        aes_x: ``(k,)`` aesthetic scores of the images of ``x``.
        aes_y: ``(k,)`` aesthetic scores of the images of ``y``.
        valid_x: ``(k,)`` which images of ``x`` are valid.
        valid_y: ``(k,)`` which images of ``y`` are valid.
    """

    text_x: np.ndarray
    image_y: np.ndarray
    aes_x: np.ndarray
    aes_y: np.ndarray
    valid_x: np.ndarray
    valid_y: np.ndarray


def relevance(s: RewriteScores) -> float:
    """Promptist's ``f_rel = mean_i min(20 * cos(text(x), image_i(y)) - 5.6, 0)``, in ``[-25.6, 0]``."""
    cos = cosine_to(s.image_y, s.text_x, s.valid_y)
    return float(np.mean(np.minimum(REL_SCALE * cos - REL_SHIFT, 0.0)))


def aesthetic_gain(s: RewriteScores) -> float:
    """Promptist's ``f_aes = mean_i [aes(image_i(y)) - aes(image_i(x))]``, in ``[-10, 10]``."""
    aes_y = np.where(s.valid_y, s.aes_y, FLOOR_AESTHETIC)
    aes_x = np.where(s.valid_x, s.aes_x, FLOOR_AESTHETIC)
    return float(np.mean(aes_y.astype(np.float64) - aes_x.astype(np.float64)))


def promptist_v1(s: RewriteScores) -> dict[str, float]:
    """``promptist-v1``: ``reward = f_aes + f_rel``; returns the reward and its parts."""
    rel, aes = relevance(s), aesthetic_gain(s)
    return {"reward": aes + rel, "relevance": rel, "aesthetic": aes}


def relevance_only(s: RewriteScores) -> dict[str, float]:
    """``relevance``: the relevance term alone (range ``[-25.6, 0]``)."""
    rel, aes = relevance(s), aesthetic_gain(s)
    return {"reward": rel, "relevance": rel, "aesthetic": aes}


def aesthetic_only(s: RewriteScores) -> dict[str, float]:
    """``aesthetic``: the aesthetic term alone (range ``[-10, 10]``)."""
    rel, aes = relevance(s), aesthetic_gain(s)
    return {"reward": aes, "relevance": rel, "aesthetic": aes}


REWARD_CONFIGS: dict[str, Callable[[RewriteScores], dict[str, float]]] = {
    "promptist-v1": promptist_v1,
    "relevance": relevance_only,
    "aesthetic": aesthetic_only,
}
"""Rewrite reward configs by name. ImageInversion uses ``imageprompt-i2i`` (:func:`image_similarity`)."""

REWARD_RANGES: dict[str, tuple[float, float]] = {
    "imageprompt-i2i": (-1.0, 1.0),
    "promptist-v1": (-35.6, 10.0),
    "relevance": (-25.6, 0.0),
    "aesthetic": (-10.0, 10.0),
}


def rewrite_reward(name: str) -> Callable[[RewriteScores], dict[str, float]]:
    """Look up a rewrite reward config by name.

    Raises:
        ValueError: For an unknown name; the message lists the known ones.
    """
    if name not in REWARD_CONFIGS:
        raise ValueError(f"unknown reward config {name!r}; known: {sorted(REWARD_CONFIGS)}")
    return REWARD_CONFIGS[name]
