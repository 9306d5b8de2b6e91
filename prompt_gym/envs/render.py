"""Frames for ``render_mode="rgb_array"``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

GAP = 2
"""Pixels of white between panels."""


def side_by_side(images: Sequence[np.ndarray]) -> np.ndarray:
    """Panels left to right on a white strip, padded to the tallest; ``uint8 (H, W, 3)``.

    >>> side_by_side([np.zeros((4, 4, 3), np.uint8), np.zeros((2, 3, 3), np.uint8)]).shape
    (4, 9, 3)
    """
    return tile(images, axis=1)


def tile(images: Sequence[np.ndarray], axis: int, gap: int = GAP) -> np.ndarray:
    """Panels along ``axis`` (1: left to right, 0: top to bottom) on white, ``gap`` apart.

    The panels are padded (on white, at the end) to the largest extent across ``axis``.

    >>> tile([np.zeros((2, 3, 3), np.uint8), np.zeros((2, 5, 3), np.uint8)], axis=0).shape
    (6, 5, 3)
    """
    across = 1 - axis
    shape = [0, 0, 3]
    shape[axis] = sum(im.shape[axis] for im in images) + gap * (len(images) - 1)
    shape[across] = max(im.shape[across] for im in images)
    frame = np.full(shape, 255, dtype=np.uint8)
    at = 0
    for im in images:
        if axis == 1:
            frame[: im.shape[0], at : at + im.shape[1]] = im
        else:
            frame[at : at + im.shape[0], : im.shape[1]] = im
        at += im.shape[axis] + gap
    return frame
