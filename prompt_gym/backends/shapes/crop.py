"""Windows: draw each image only where its pixels can differ from its flat background.

Most of an image is background. When nothing of an image's styles reaches beyond its objects
(no gradient, vignette, grain, fog, haze, bars, spotlight, bands or arc), every pixel outside a
box around the objects is exactly the background colour. So a batch is drawn in windows of one
common size: an image whose box fits gets one window placed over it (the rest of the image is
filled with its background colour); every other image is covered by tiles of that size. The
pixels of a window are computed with the same float32 operations on the same pixel coordinates
as in a whole-image pass, so the bytes are identical either way (``tests/test_shapes_windows.py``).

The box is conservative. An object's pixels are those where ``depth = 0.5 - k * sdf > t``; with
``t = 0`` for the coverage, ``-2a`` for an ``outlined`` line and ``0.5 - k * reach`` for a glow,
that is ``sdf < delta``. For every geometry, ``sdf < delta`` implies
``max(|u|, |v|) <= E + C * delta`` in local units (:data:`EXTENT`, checked by a test); the box
adds a quarter of a softness unit and one pixel to that. A star's distance template is clamped
at its border (distance 0.449 there), so a star whose ``delta`` reaches it is tiled.

>>> g = Grid.whole(4, 6)
>>> g.xs(np.arange(2)).shape, g.full
((1, 1, 6), True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from prompt_gym.backends.shapes import params, vocab
from prompt_gym.backends.shapes.ops import clip
from prompt_gym.backends.shapes.params import SceneParams

_F = np.float32
#: Geometry -> ``(E, C)``: ``sdf < delta`` implies ``max(|u|, |v|) <= E + C * delta``.
EXTENT: dict[str, tuple[float, float]] = {
    "circle": (1.0, 1.0),
    "square": (1.0, 1.0),
    "triangle": (1.2, 2.1),
    "diamond": (1.0, 1.5),
    "star": (1.12, 1.0),
    "hexagon": (1.0, 1.2),
    "pentagon": (1.18, 1.5),
    "ring": (1.0, 1.0),  # with E = band radius + half-width per image
    "cross": (1.0, 1.0),
}
STAR_MAX_DELTA = 0.4
"""Largest ``delta`` a windowed star may have (its template's border distance is 0.449)."""
#: Styles that paint beyond the objects: images that carry one are tiled.
WHOLE_STYLES = (
    "gradient",
    "dramatic lighting",
    "vignette",
    "foggy",
    "blurry",
    "grainy",
    "cinematic",
    "psychedelic",
    "rainbow",
)
WHOLE_BITS = sum(params.STYLE_BIT[s] for s in WHOLE_STYLES)
_E = np.array([EXTENT[g][0] for g in vocab.GEOMETRIES])
_C = np.array([EXTENT[g][1] for g in vocab.GEOMETRIES])
_RING = vocab.GEOMETRIES.index("ring")
_STAR = vocab.GEOMETRIES.index("star")
_MARGIN_PX = 1
_WINDOW_COST_PX = 256  # the fixed cost of one more window, in pixels drawn
_GRID_COST_PX = 8192  # the fixed cost of drawing a batch in windows at all (planning, pasting)


@dataclass(frozen=True)
class Grid:
    """Where the images of a batch are drawn: per-image windows of one size inside the image.

    Attributes:
        height: Image height in pixels (``width`` likewise).
        rows: Window height (``cols``: window width); the whole image when ``top`` is ``None``.
        top: ``int64 (n,)`` first image row of each window, or ``None`` (``left`` likewise).
        tiled: ``bool (n,)``: the window is one tile of an image covered by tiles (rather than
            a box around the objects, on the background colour); ``None``: no tiles.
    """

    height: int
    width: int
    rows: int
    cols: int
    top: np.ndarray | None = None
    left: np.ndarray | None = None
    tiled: np.ndarray | None = None

    @classmethod
    def whole(cls, height: int, width: int) -> Grid:
        """The grid of whole images."""
        return cls(height, width, height, width)

    @property
    def full(self) -> bool:
        """Whether the windows are the whole images."""
        return self.top is None

    def take(self, index: np.ndarray | slice) -> Grid:
        """The grid of the images ``index``, in that order."""
        if self.top is None or self.left is None:
            return self
        tiled = None if self.tiled is None else self.tiled[index]
        return Grid(
            self.height, self.width, self.rows, self.cols, self.top[index], self.left[index], tiled
        )

    def xs(self, rows: np.ndarray) -> np.ndarray:
        """Pixel-centre x coordinates, ``(len(rows), 1, cols)`` (or ``(1, 1, W)`` when full)."""
        if self.left is None:
            return (np.arange(self.width, dtype=_F) + _F(0.5))[None, None, :]
        x = self.left[rows, None, None] + np.arange(self.cols)[None, None, :]
        return x.astype(_F) + _F(0.5)

    def ys(self, rows: np.ndarray) -> np.ndarray:
        """Pixel-centre y coordinates, ``(len(rows), rows, 1)`` (or ``(1, H, 1)`` when full)."""
        if self.top is None:
            return (np.arange(self.height, dtype=_F) + _F(0.5))[None, :, None]
        y = self.top[rows, None, None] + np.arange(self.rows)[None, :, None]
        return y.astype(_F) + _F(0.5)

    def lines(self, rows: np.ndarray) -> np.ndarray:
        """Image row of every window row, ``int64 (len(rows), rows, 1)``."""
        top = np.zeros(len(rows), np.int64) if self.top is None else self.top[rows]
        return top[:, None, None] + np.arange(self.rows)[:, None]

    def crop(self, bank: np.ndarray, which: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Fields ``bank[which[i]]`` of a ``(phases, ..., H, W)`` bank in the windows of ``rows``."""
        if self.top is None or self.left is None:
            return bank[which]
        r, c = self.rows, self.cols
        out = np.empty((len(rows), *bank.shape[1:-2], r, c), dtype=bank.dtype)
        tops, lefts = self.top[rows].tolist(), self.left[rows].tolist()
        for i, (phase, y, x) in enumerate(zip(which.tolist(), tops, lefts, strict=True)):
            out[i] = bank[phase, ..., y : y + r, x : x + c]  # a slice each: faster than a gather
        return out

    def field(self, field: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """A fixed ``(..., H, W)`` field: itself when full, else its windows ``(n, ..., rows, cols)``."""
        if self.full:
            return field
        return self.crop(field[None], np.zeros(len(rows), np.int64), rows)


def windowable(p: SceneParams, side: float) -> tuple[np.ndarray, np.ndarray]:
    """Which images may be drawn in a window, and the reach ``delta`` (local units) of each."""
    k = p.half * side * np.minimum(p.aspect[:, 0], p.aspect[:, 1]) / p.soft
    delta = 0.5 / k
    outlined = p.has("outlined")
    a = 0.9 * side / 64 / p.soft
    delta = np.where(outlined, (0.5 + 2 * a) / k, delta)
    reach = np.where(p.has("neon"), 1.0, 0.6)
    delta = np.where(p.glow, np.maximum(delta, reach), delta)
    delta = delta + 0.25 / k
    ok = (p.flags & WHOLE_BITS) == 0
    ok &= ~((p.geom == _STAR) & (delta >= STAR_MAX_DELTA))
    return ok, delta


def boxes(p: SceneParams, delta: np.ndarray, height: int, width: int) -> np.ndarray:
    """``int64 (n, 4)`` boxes ``(top, left, bottom, right)`` (exclusive) around every image's objects."""
    side = min(height, width)
    extent = np.where(p.geom == _RING, p.ring[:, 0] + p.ring[:, 1], _E[p.geom]) + _C[p.geom] * delta
    reach = (p.half * side * extent)[:, None] * p.aspect[:, ::-1]  # (n, 2): y, x
    centre = p.centres[:, :, ::-1] * (height, width)  # (n, 3, 2): y, x of every object slot
    used = (np.arange(3) < p.count[:, None])[:, :, None]
    centre = np.where(used, centre, centre[:, :1])  # unused slots sit on the first object
    c0, c1, c2 = centre[:, 0], centre[:, 1], centre[:, 2]
    lo = np.minimum(np.minimum(c0, c1), c2) - reach
    hi = np.maximum(np.maximum(c0, c1), c2) + reach
    box = np.concatenate([np.floor(lo) - _MARGIN_PX, np.ceil(hi) + _MARGIN_PX], axis=1)
    return clip(box, 0, (height, width, height, width)).astype(np.int64)


def plan_windows(p: SceneParams, height: int, width: int) -> tuple[np.ndarray, Grid]:
    """Choose how to draw a batch: whole images, or windows of one size.

    With windows, an image whose box fits is drawn in one window around its objects; every other
    image is covered by tiles of the window size (overlapping at the far edges). The size is the
    one that draws the fewest pixels (plus a fixed cost per window), among the box sizes of the
    windowable images taken smallest first; windows are used when that saves more than their
    fixed cost.

    Returns:
        ``(source, grid)``: the image each grid row draws, and the grid.
    """
    n = p.geom.shape[0]
    whole = np.arange(n), Grid.whole(height, width)
    if n * height * width < 2 * _GRID_COST_PX:  # too few pixels to save that much
        return whole
    ok, delta = windowable(p, float(min(height, width)))
    if not ok.any():
        return whole
    box = boxes(p, delta, height, width)
    size = box[:, 2:] - box[:, :2]  # (n, 2): rows, cols
    cand = np.flatnonzero(ok)
    larger = np.maximum(size[cand, 0] / height, size[cand, 1] / width)  # box side / image side
    rank = cand[np.argsort(larger, kind="stable")]
    dims = np.maximum.accumulate(size[rank], axis=0)  # window that fits the first k + 1
    rows, cols = dims[:, 0], dims[:, 1]
    fitting = np.arange(1, rank.size + 1)
    tiles = (-(-height // rows)) * (-(-width // cols))
    cost = (fitting + (n - fitting) * tiles) * (rows * cols + _WINDOW_COST_PX)
    best = int(np.argmin(cost))
    if cost[best] + _GRID_COST_PX >= n * (height * width + _WINDOW_COST_PX):
        return whole
    r, c = int(rows[best]), int(cols[best])
    inside = np.sort(rank[: best + 1])
    top, left = np.minimum(box[inside, :2], (height - r, width - c)).T
    if best + 1 == n:
        return inside, Grid(height, width, r, c, top, left)
    fit = np.zeros(n, dtype=bool)
    fit[inside] = True
    rest = np.flatnonzero(~fit)
    ty = np.minimum(np.arange(-(-height // r)) * r, height - r)
    tx = np.minimum(np.arange(-(-width // c)) * c, width - c)
    per = ty.size * tx.size
    tile_top = np.broadcast_to(ty[:, None], (ty.size, tx.size)).ravel()
    tile_left = np.broadcast_to(tx[None, :], (ty.size, tx.size)).ravel()
    source = np.concatenate([inside, np.repeat(rest, per)])
    top = np.concatenate([top, np.broadcast_to(tile_top, (rest.size, per)).ravel()])
    left = np.concatenate([left, np.broadcast_to(tile_left, (rest.size, per)).ravel()])
    tiled = np.arange(source.size) >= inside.size
    return source, Grid(height, width, r, c, top, left, tiled)


def paste(
    out: np.ndarray,
    dest: np.ndarray,
    grid: Grid,
    pixels: np.ndarray,
    background: np.ndarray,
    scratch: Callable[[str, tuple[int, ...], type], np.ndarray],
) -> None:
    """Write windowed images into rows ``dest`` of ``out (N, H, W, 3)``.

    An image drawn in a box around its objects is first filled with its background colour;
    then every window is copied in.

    Args:
        out: Destination images.
        dest: Row of ``out`` of each windowed image.
        grid: The windows.
        pixels: ``uint8 (n, rows, cols, 3)`` window contents.
        background: ``float32 (n, 3)`` background colours as mixed, in ``[0, 255]``.
        scratch: ``scratch(name, shape, dtype)`` returns a reusable buffer.
    """
    assert grid.top is not None and grid.left is not None
    n, r, c = len(dest), grid.rows, grid.cols
    boxed = np.arange(n) if grid.tiled is None else np.flatnonzero(~grid.tiled)
    if boxed.size:
        line = scratch("paste_line", (boxed.size, 1, grid.width * 3), np.uint8)
        line.reshape(boxed.size, grid.width, 3)[...] = clip(background[boxed], 0, 255).astype(
            np.uint8
        )[:, None, :]
        out.reshape(out.shape[0], grid.height, -1)[dest[boxed]] = line
    for i, (row, y, x) in enumerate(
        zip(dest.tolist(), grid.top.tolist(), grid.left.tolist(), strict=True)
    ):
        out[row, y : y + r, x : x + c] = pixels[i]
