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
    height = max(im.shape[0] for im in images)
    width = sum(im.shape[1] for im in images) + GAP * (len(images) - 1)
    frame = np.full((height, width, 3), 255, dtype=np.uint8)
    x = 0
    for im in images:
        frame[: im.shape[0], x : x + im.shape[1]] = im
        x += im.shape[1] + GAP
    return frame
