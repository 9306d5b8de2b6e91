"""Fixed per-resolution fields the styles paint with, built once per ``(H, W)`` and cached.

All are defined in image fractions, so a style looks the same at every resolution. Banks hold a few
phases; the seed picks one, as it would pick the texture of a real sample.

* ``stripes``: diagonal bands, period 1/6.4 of the image side (4 phases), 1 on a band, 0 off it.
* ``dots``: a polka-dot grid, period 1/7 of the side, dot radius 0.3 period (4 phases).
* ``detail``: thin hatching lines, period 1/14 of the side (2 phases).
* ``grain``: uniform noise in ``[-1, 1]`` (8 fields, from a fixed generator).
* ``vignette``: ``1 - 0.35 * clip((r**2 - 0.45) / 0.55, 0, 1)``, ``r`` the distance from the centre
  over half the diagonal: 1 up to the middle of the edges, 0.65 in the corners.
* ``psychedelic``: rainbow bands, RGB in ``[0, 1]`` (4 phases), shape ``(4, 3, H, W)``.
* ``arc`` / ``arc_mask``: a rainbow arc centred below the image (radii 0.55 to 0.85 of the side),
  its colours ``(3, H, W)`` and coverage ``(H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from prompt_gym.backends.shapes.ops import clip


def hue_to_rgb(hue: np.ndarray) -> np.ndarray:
    """Fully saturated RGB for hues in ``[0, 1)`` (wrapping), stacked on a new first axis.

    >>> hue_to_rgb(np.array([0.0, 1 / 3, 2 / 3])).round(3).T.tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    h6 = (np.asarray(hue) % 1.0) * 6.0
    r = clip(np.abs(h6 - 3.0) - 1.0, 0.0, 1.0)
    g = clip(2.0 - np.abs(h6 - 2.0), 0.0, 1.0)
    b = clip(2.0 - np.abs(h6 - 4.0), 0.0, 1.0)
    return np.stack([r, g, b])


@dataclass(frozen=True)
class Patterns:
    """The cached fields for one resolution (see the module docstring)."""

    stripes: np.ndarray
    dots: np.ndarray
    detail: np.ndarray
    grain: np.ndarray
    vignette: np.ndarray
    psychedelic: np.ndarray
    arc: np.ndarray
    arc_mask: np.ndarray


@lru_cache(maxsize=16)
def patterns(height: int, width: int) -> Patterns:
    """Build (once) the pattern fields for an ``height x width`` image."""
    side = float(min(height, width))
    y = ((np.arange(height) + 0.5) / side)[:, None]
    x = ((np.arange(width) + 0.5) / side)[None, :]
    aa = side / 64.0  # keep edges about one pixel wide at any resolution

    def band(value: np.ndarray, sharp: float) -> np.ndarray:
        return clip(value * sharp * aa + 0.5, 0.0, 1.0)

    phases4 = np.arange(4)[:, None, None] / 4.0
    diag = (x + y) * 6.4
    stripes = band(np.sin(2 * np.pi * (diag + phases4)), 2.5)
    period = 1.0 / 7.0
    dx = (x / period + phases4) % 1.0 - 0.5
    dy = (y / period + phases4 * 0.5) % 1.0 - 0.5
    dots = band(0.3 - np.sqrt(dx * dx + dy * dy), 6.0)
    phases2 = np.arange(2)[:, None, None] / 2.0
    detail = band(np.cos(2 * np.pi * ((x - y) * 14.0 + phases2)) - 0.75, 4.0)
    grain = np.random.default_rng(20240607).uniform(-1.0, 1.0, size=(8, height, width))
    cy, cx = (height / side) / 2, (width / side) / 2
    r2 = ((x - cx) ** 2 + (y - cy) ** 2) / (cx * cx + cy * cy)
    vignette = 1.0 - 0.25 * clip((r2 - 0.45) / 0.55, 0.0, 1.0)
    hue = (x * 0.9 + y * 1.7)[None] * 2.0 + phases4
    psychedelic = np.moveaxis(hue_to_rgb(hue), 0, 1) * 0.9 + 0.05
    radius = np.sqrt((x - cx) ** 2 + (y - (height / side) * 1.05) ** 2)
    arc = hue_to_rgb((radius - 0.55) / 0.3 * 0.8) * 0.9 + 0.05
    arc_mask = clip(np.minimum(radius - 0.55, 0.85 - radius) * side * 0.8, 0.0, 1.0)
    f32 = np.float32
    return Patterns(
        stripes=stripes.astype(f32),
        dots=dots.astype(f32),
        detail=detail.astype(f32),
        grain=grain.astype(f32),
        vignette=np.broadcast_to(vignette, (height, width)).astype(f32),
        psychedelic=np.ascontiguousarray(psychedelic, dtype=f32),
        arc=np.broadcast_to(arc, (3, height, width)).astype(f32),
        arc_mask=np.broadcast_to(arc_mask, (height, width)).astype(f32),
    )
