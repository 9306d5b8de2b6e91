"""The procedural aesthetic score of the shapes world, on a 0..10 scale.

Computed on the 16x16 area-average thumbnail (:func:`.features.thumbnail`), RGB in ``[0, 1]``,
statistics over its 256 pixels (population standard deviations):

* colourfulness (Hasler and Suesstrunk, 2003), with ``rg = R - G`` and ``yb = (R + G)/2 - B``:
  ``C = sqrt(std(rg)**2 + std(yb)**2) + 0.3 * sqrt(mean(rg)**2 + mean(yb)**2)``;
* contrast: ``K = std(0.299 R + 0.587 G + 0.114 B)``;
* composition ``Q = (q_pos + q_border + q_size) / 3`` from the subject mask
  ``m = clip((s - 0.35 t) / (0.3 t), 0, 1)``, ``t = max(max(s), 0.15)``, where
  ``s = |rgb - border colour| / sqrt(3)`` and the border colour is the mean of the middle halves
  of the four edges (background variations much fainter than the subject, such as grain or a
  vignette, stay out of the mask; ``Q = 0`` for a uniform image):

  - ``q_pos = clip(1 - d / 0.25, 0, 1)``, ``d`` the distance from the mask's centroid to the
    nearest of the centre and the four rule-of-thirds points (coordinates in ``[0, 1]``);
  - ``q_border = clip(1 - 4 * mean(m on the border ring), 0, 1)``: a subject that touches the
    border is penalised;
  - ``q_size = clip(1 - |a - 0.25| / 0.25, 0, 1)`` with ``a = mean(m)``: best when the subject
    covers a quarter of the frame.

The score is ``10 * sigmoid(W0 + WC * min(C, C_MAX) + WK * K + WQ * Q)`` with the fixed weights
below; colourfulness beyond ``C_MAX`` (garish) earns nothing more.

Measured on 64x64 renders (mean over 64 seeds): "a red circle" 4.9; + "vivid" +0.7, + "high
contrast" +0.9, + "glowing" +0.5, + "centered" +0.2; + "foggy" -1.9, + "blurry" -0.8;
+ "rainbow" +1.1, + "cinematic" +1.1, + "neon" +0.3, + "psychedelic" +0.2 (the last four also
destroy relevance, and gain much more on dull subjects: up to +3 on a gray cube; see ``vocab``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from prompt_gym.backends.shapes.features import (
    border_colour,
    check_images,
    saliency,
    subject_mask,
    thumbnail,
)
from prompt_gym.backends.shapes.ops import clip, einsum

W0, WC, WK, WQ = -2.25, 2.5, 4.0, 1.0
C_MAX = 0.55
_OPPONENT = np.array([[1.0, -1.0, 0.0], [0.5, 0.5, -1.0], [0.299, 0.587, 0.114]])
_POINTS = np.array([(0.5, 0.5), (1 / 3, 1 / 3), (2 / 3, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 2 / 3)])


@lru_cache(maxsize=4)
def _grid(s: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in ``[0, 1]`` of an ``s x s`` image (x, y), flattened."""
    c = ((np.arange(s) + 0.5) / s).astype(np.float32)
    return np.tile(c, s), np.repeat(c, s)


def components(
    t: np.ndarray, border: np.ndarray | None = None, sal: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The terms of the score for thumbnails ``t (N, 3, S, S)`` in ``[0, 1]``.

    ``border`` and ``sal`` (:func:`.features.border_colour`, :func:`.features.saliency` of ``t``)
    may be passed when the caller already has them; they are not modified.

    Returns:
        ``float64 (N,)`` arrays ``colourfulness``, ``contrast``, ``composition``, ``q_pos``,
        ``q_border``, ``q_size``.
    """
    n, _, s, _ = t.shape
    flat = t.reshape(n, 3, s * s)
    # statistics of linear combinations of R, G, B from the channel means and second moments
    mean_rgb = flat.mean(axis=2, dtype=np.float64)
    second = einsum("nip,njp->nij", flat, flat).astype(np.float64) / (s * s)
    cov = second - mean_rgb[:, :, None] * mean_rgb[:, None, :]
    mean = einsum("ni,ci->nc", mean_rgb, _OPPONENT)  # (N, 3): rg, yb, luminance
    var = einsum("ci,nij,cj->nc", _OPPONENT, cov, _OPPONENT)
    std = np.sqrt(np.maximum(var, 0.0))
    colourfulness = np.hypot(std[:, 0], std[:, 1]) + 0.3 * np.hypot(mean[:, 0], mean[:, 1])
    contrast = std[:, 2]

    if sal is None:
        sal = saliency(t, border_colour(t) if border is None else border)
        sal *= np.float32(1 / np.sqrt(3.0))
    else:
        sal = sal * np.float32(1 / np.sqrt(3.0))
    subject = subject_mask(sal, 0.15)
    flat_m = subject.reshape(n, -1)
    total = flat_m.sum(axis=1, dtype=np.float64)
    blank = total < 1e-9
    safe = np.where(blank, 1.0, total)
    gx, gy = _grid(s)
    cx = einsum("np,p->n", flat_m, gx).astype(np.float64) / safe
    cy = einsum("np,p->n", flat_m, gy).astype(np.float64) / safe
    d = np.sqrt((cx[:, None] - _POINTS[:, 0]) ** 2 + (cy[:, None] - _POINTS[:, 1]) ** 2).min(axis=1)
    q_pos = clip(1.0 - d / 0.25, 0.0, 1.0)
    ring = (
        subject[:, 0, :].sum(axis=1)
        + subject[:, -1, :].sum(axis=1)
        + subject[:, 1:-1, 0].sum(axis=1)
        + subject[:, 1:-1, -1].sum(axis=1)
    ) / (4 * s - 4)
    q_border = clip(1.0 - 4.0 * ring, 0.0, 1.0)
    q_size = clip(1.0 - np.abs(total / (s * s) - 0.25) / 0.25, 0.0, 1.0)
    composition = np.where(blank, 0.0, (q_pos + q_border + q_size) / 3.0)
    return {
        "colourfulness": colourfulness,
        "contrast": contrast,
        "composition": composition,
        "q_pos": np.where(blank, 0.0, q_pos),
        "q_border": np.where(blank, 0.0, q_border),
        "q_size": np.where(blank, 0.0, q_size),
    }


def score_thumbnails(
    t: np.ndarray, border: np.ndarray | None = None, sal: np.ndarray | None = None
) -> np.ndarray:
    """Aesthetic scores ``float32 (N,)`` in ``[0, 10]`` of thumbnails ``t`` (see :func:`components`)."""
    c = components(t, border, sal)
    z = W0 + WC * np.minimum(c["colourfulness"], C_MAX) + WK * c["contrast"]
    z = z + WQ * c["composition"]
    return (10.0 / (1.0 + np.exp(-z))).astype(np.float32)


def aesthetic(images: np.ndarray) -> np.ndarray:
    """Aesthetic scores ``float32 (N,)`` in ``[0, 10]`` of ``uint8 (N, H, W, 3)`` images.

    >>> round(float(aesthetic(np.zeros((1, 16, 16, 3), np.uint8))[0]), 4)  # 10 * sigmoid(W0)
    0.9535
    """
    images = check_images(images)
    if images.shape[0] == 0:
        return np.zeros(0, np.float32)
    return score_thumbnails(thumbnail(images))


__all__ = ["C_MAX", "W0", "WC", "WK", "WQ", "aesthetic", "components", "score_thumbnails"]
