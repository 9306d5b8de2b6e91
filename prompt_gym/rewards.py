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


# ------------------------------------------------------------------ BeautifulPrompt
BP_AES_WEIGHT, BP_PS_WEIGHT = 0.3, 0.7
"""BeautifulPrompt's mix ``R = 0.3 AES + 0.7 PS``."""
BEAUTIFULPROMPT_CONFIGS = ("beautifulprompt-v1", "beautifulprompt-images-v1")
"""The BeautifulPrompt configs (their judges: :mod:`prompt_gym.envs.beautifulprompt_reward`).

* ``beautifulprompt-v1`` (text only, for training): ``R(x, y) = 0.3 AES_rm(y) + 0.7 PS_rm(x, y)``
  from the two text reward models (:mod:`prompt_gym.reward_models`), and the reward is
  ``R(x, y) - R(x, x)``: the plain prompt is the reference. No image is generated.
* ``beautifulprompt-images-v1`` (for evaluation): the same mix from the true scorers,
  ``R_i(y) = 0.3 aes(image_i(y)) + 0.7 PS(x, image_i(y))`` and the reward
  ``mean_i [R_i(y) - R_i(x)]`` (the images of ``x`` and ``y`` share seed ``i``).

Both are unbounded in principle (range ``(-inf, inf)``); on the shapes world the images reward
lies in ``[-7.2, 7.2]`` (aesthetic in ``[0, 10]``, the preference analog in ``[16, 22]``).
Running reward scaling and the clip at 10 are the agent's (LM-PPO's ``reward_scaling`` and
``reward_clip``), as in BeautifulPrompt's trlx trainer."""


def beautifulprompt_mix(aesthetic: np.ndarray, pickscore: np.ndarray) -> np.ndarray:
    """``0.3 * aesthetic + 0.7 * pickscore``, elementwise.

    >>> beautifulprompt_mix(np.array([5.0]), np.array([20.0])).tolist()
    [15.5]
    """
    aes, ps = np.asarray(aesthetic, np.float64), np.asarray(pickscore, np.float64)
    return BP_AES_WEIGHT * aes + BP_PS_WEIGHT * ps


def beautifulprompt_v1(
    aes_rm_y: float, ps_rm_xy: float, aes_rm_x: float, ps_rm_xx: float
) -> dict[str, float]:
    """``beautifulprompt-v1``: ``R(x, y) - R(x, x)`` from the reward models' predictions.

    >>> beautifulprompt_v1(6.0, 21.0, 5.0, 20.0)["reward"]
    1.0
    """
    r_y = float(beautifulprompt_mix(aes_rm_y, ps_rm_xy))
    r_x = float(beautifulprompt_mix(aes_rm_x, ps_rm_xx))
    return {
        "reward": r_y - r_x,
        "proxy_reward_y": r_y,
        "proxy_reward_ref": r_x,
        "aesthetic_rm": float(aes_rm_y),
        "pickscore_rm": float(ps_rm_xy),
    }


def beautifulprompt_images_v1(
    aes_y: np.ndarray,
    ps_y: np.ndarray,
    aes_x: np.ndarray,
    ps_x: np.ndarray,
    valid_y: np.ndarray,
    valid_x: np.ndarray,
) -> dict[str, float]:
    """``beautifulprompt-images-v1``: ``mean_i [R_i(y) - R_i(x)]`` from the true scores.

    A failed image counts with the aesthetic floor ``0`` and a preference of ``0``.

    >>> ones = np.ones(2, dtype=bool)
    >>> r = beautifulprompt_images_v1(np.array([6.0, 7.0]), np.array([21.0, 21.0]),
    ...     np.array([5.0, 5.0]), np.array([20.0, 20.0]), ones, ones)["reward"]
    >>> round(r, 6)
    1.15
    """
    aes_y, ps_y = np.where(valid_y, aes_y, FLOOR_AESTHETIC), np.where(valid_y, ps_y, 0.0)
    aes_x, ps_x = np.where(valid_x, aes_x, FLOOR_AESTHETIC), np.where(valid_x, ps_x, 0.0)
    r_y, r_x = beautifulprompt_mix(aes_y, ps_y), beautifulprompt_mix(aes_x, ps_x)
    return {
        "reward": float(np.mean(r_y - r_x)),
        "true_reward_y": float(np.mean(r_y)),
        "true_reward_ref": float(np.mean(r_x)),
        "aesthetic": float(np.mean(aes_y.astype(np.float64) - aes_x.astype(np.float64))),
        "pickscore": float(np.mean(ps_y)),
    }
