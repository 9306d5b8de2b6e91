"""Image statistics the shapes scorer is built on: a 16x16 thumbnail and a feature vector.

Every image, whatever its resolution, is first reduced to a ``16 x 16`` area-average thumbnail
(:func:`thumbnail`; smaller images are enlarged by pixel repetition). Features are computed on
the thumbnail with colours in ``[0, 1]``, using ``L = (R+G+B)/3`` and the opponent channels
``A = R - G`` and ``Y = (R+G)/2 - B``. A colour is described by non-negative soft bins
(:func:`colour_bins`): 12 hue bins (hue = angle of ``(A, Y)``, kernel ``cos(dh)**8``) weighted by
the chroma ``|(A, Y)|``, and 3 lightness bins (dark, mid, light) weighted by the lack of it, so
different colours are orthogonal rather than opposite and similar ones overlap.

=============  ====  ==============================================================================
group          dims  what it measures
=============  ====  ==============================================================================
background       15  colour bins of the background estimate (middle halves of the four edges)
object colour    16  colour bins of the mean colour of the salient pixels, and its lightness
fill              6  spread of L inside the object (shading, patterns); hue variety inside it
                     (1 - |mean (A, Y)| / mean |(A, Y)|: 0 for one colour, near 1 for rainbow);
                     fine-scale energy (Laplacian of L) inside and outside the object; direction
                     of the light inside the object (x and y offset of the L-weighted centroid
                     from the centroid, over the object's radius)
shape            10  elongation (2), normalised inertia (log), perimeter^2 / area (log), edge
                     orientation (axis vs diagonal, 2), filled centre (rings and boxes are
                     hollow), vertical skew, fourth moments (2: squares, diamonds, discs differ)
position          3  centroid x, y; salient area
layout           16  4x4 average of L
global            4  mean and standard deviation of L; standard deviations of A and Y
=============  ====  ==============================================================================

The salient pixels ("the object") are those whose RGB distance ``s`` from the background estimate
is large relative to the most distinct pixel: weight ``clip((s - 0.35 t) / (0.3 t), 0, 1)`` with
``t = max(max s, 0.25)``, so faint background variations (grain, a vignette, a gradient) stay out
of the object while faint objects on a plain background are still found. All reductions run along fixed axes of each image, so
an image's features do not depend on its batch.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from prompt_gym.backends.shapes.ops import clip, einsum

THUMB = 16
_F = np.float32
#: Feature groups: name -> slice of the raw feature vector.
GROUPS: dict[str, slice] = {
    "background": slice(0, 15),
    "object colour": slice(15, 31),
    "fill": slice(31, 37),
    "shape": slice(37, 46),
    "position": slice(46, 49),
    "layout": slice(49, 65),
    "global": slice(65, 69),
}
N_FEATURES = 69
_HUE_BINS = np.linspace(0.0, 2.0 * np.pi, 12, endpoint=False)
_LIGHT_BINS = np.array([0.1, 0.5, 0.9])


class _Scratch(threading.local):
    def __init__(self) -> None:
        self.buffers: dict[tuple[str, str], np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        size = math.prod(shape)
        key = (name, np.dtype(dtype).str)
        buf = self.buffers.get(key)
        if buf is None or buf.size < size:
            buf = self.buffers[key] = np.empty(max(size, 1), dtype=dtype)
        return buf[:size].reshape(shape)


_SCRATCH = _Scratch()


def check_images(images: np.ndarray) -> np.ndarray:
    """Return ``images`` after checking it is ``uint8 (N, H, W, 3)``.

    Raises:
        ValueError: Otherwise, saying what was received.
    """
    if not isinstance(images, np.ndarray):
        raise ValueError(f"images must be a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"images must be uint8 of shape (N, H, W, 3), got {images.dtype} {images.shape}"
        )
    if images.shape[1] < 1 or images.shape[2] < 1:
        raise ValueError(f"images must be at least 1x1 pixels, got {images.shape}")
    return images


_ROWS_PER_PRODUCT = 4096
"""Rows per matrix product in :func:`thumbnail`: small enough that BLAS stays single-threaded."""


@lru_cache(maxsize=8)
def _pixel_sums(fx: int) -> np.ndarray:
    """``float32 (fx * 3, 3)``: sums each channel over ``fx`` interleaved RGB pixels."""
    return np.tile(np.eye(3, dtype=_F), (fx, 1))


def _bins(n_in: int, n_out: int) -> np.ndarray:
    """Start index of each output bin of an area-average resize from ``n_in`` to ``n_out``."""
    return (np.arange(n_out) * n_in) // n_out


def thumbnail(images: np.ndarray) -> np.ndarray:
    """``uint8 (N, H, W, 3)`` -> ``float32 (N, 3, 16, 16)`` area-average thumbnail in ``[0, 1]``.

    >>> img = np.zeros((1, 64, 64, 3), np.uint8); img[0, :32, :, 0] = 255
    >>> t = thumbnail(img); t.shape, float(t[0, 0, :8].mean()), float(t[0, 0, 8:].mean())
    ((1, 3, 16, 16), 1.0, 0.0)
    """
    n, h, w, _ = images.shape
    if h < THUMB or w < THUMB:  # enlarge by repetition
        rows = (np.arange(max(h, THUMB)) * h) // max(h, THUMB)
        cols = (np.arange(max(w, THUMB)) * w) // max(w, THUMB)
        images = images[:, rows][:, :, cols]
        n, h, w, _ = images.shape
    out = np.empty((n, 3, THUMB, THUMB), dtype=_F)
    fy, fx = h // THUMB, w // THUMB
    if h % THUMB or w % THUMB or fy * fx > 256:
        x = images.astype(_F)
        x = np.add.reduceat(x, _bins(h, THUMB), axis=1)
        x = np.add.reduceat(x, _bins(w, THUMB), axis=2)
        counts = (
            np.diff(np.append(_bins(h, THUMB), h))[:, None]
            * np.diff(np.append(_bins(w, THUMB), w))[None, :]
        )
        out[...] = np.moveaxis(x, 3, 1) / (counts * 255.0).astype(_F)
        return out
    if fy == fx == 1:
        out[...] = np.moveaxis(images, 3, 1)
        out *= _F(1.0 / 255.0)
        return out
    x = images.reshape(n, THUMB, fy, w, 3)
    acc = _SCRATCH.get("rows", (n, THUMB, w, 3), np.uint16)
    np.copyto(acc, x[:, :, 0])
    for j in range(1, fy):
        acc += x[:, :, j]
    # the sums over fx neighbouring pixels of each channel, as a product with a 0/1 matrix:
    # exact in float32 (integers below 2**16), so the order of the additions does not matter
    cols = acc.reshape(-1, fx * 3).astype(_F)
    sums = _SCRATCH.get("sums", (cols.shape[0], 3), _F)
    for a in range(0, cols.shape[0], _ROWS_PER_PRODUCT):
        np.matmul(
            cols[a : a + _ROWS_PER_PRODUCT], _pixel_sums(fx), out=sums[a : a + _ROWS_PER_PRODUCT]
        )
    np.copyto(out, sums.reshape(n, THUMB, THUMB, 3).transpose(0, 3, 1, 2))
    out *= _F(1.0 / (255.0 * fy * fx))
    return out


def channel_sum(x: np.ndarray) -> np.ndarray:
    """``x.sum(axis=1)`` of an ``(N, 3, ...)`` array, bit for bit, without numpy's slow reduction.

    numpy adds the three channels in order, ``(x0 + x1) + x2``; so do these two additions
    (``x.mean(axis=1)`` is this divided by 3).
    """
    out = np.add(x[:, 0], x[:, 1])
    out += x[:, 2]
    return out


def border_colour(t: np.ndarray) -> np.ndarray:
    """Background estimate: mean RGB ``(N, 3)`` of the middle halves of the four image edges.

    The corners are left out so that a vignette or an object in a corner barely moves it.
    """
    s = t.shape[-1]
    a, b = s // 4, s - s // 4
    total = (
        t[:, :, 0, a:b].sum(axis=2)
        + t[:, :, -1, a:b].sum(axis=2)
        + t[:, :, a:b, 0].sum(axis=2)
        + t[:, :, a:b, -1].sum(axis=2)
    )
    return total / _F(4 * (b - a))


def saliency(t: np.ndarray, border: np.ndarray) -> np.ndarray:
    """RGB distance ``(N, S, S)`` of every thumbnail pixel from the border colour."""
    d = t - border[:, :, None, None].astype(t.dtype)
    d *= d
    return np.sqrt(channel_sum(d))


def subject_mask(sal: np.ndarray, floor: float, top: np.ndarray | None = None) -> np.ndarray:
    """``clip((s - 0.35 t) / (0.3 t), 0, 1)`` with ``t = max(max(s), floor)`` per image.

    ``top`` may give ``max(s)`` of each image when the caller has it.
    """
    n = sal.shape[0]
    top = sal.reshape(n, -1).max(axis=1) if top is None else top
    top = np.maximum(top, floor).astype(sal.dtype)[:, None, None]
    m = sal - top * sal.dtype.type(0.35)
    m /= top * sal.dtype.type(0.3)
    return clip(m, 0, 1, out=m)


@lru_cache(maxsize=4)
def _bases(s: int) -> tuple[np.ndarray, np.ndarray]:
    """Powers 0..4 of centred pixel coordinates ``(5, S)``, and 4x4 block indicators ``(4, S)``."""
    c = (np.arange(s) + 0.5) / s - 0.5
    powers = np.stack([c**a for a in range(5)]).astype(_F)
    blocks = (np.arange(s)[None, :] // (s // 4) == np.arange(4)[:, None]).astype(_F)
    return powers, blocks


def _moments(m: np.ndarray) -> np.ndarray:
    """Raw moments ``(N, 13)`` of masks ``m (N, S, S)`` over centred pixel coordinates.

    Columns: 1, x, y, x2, y2, xy, x3, y3, x4, y4, x2y, xy2, x2y2 (coordinates in [-0.5, 0.5]).
    Small contractions use ``einsum`` loops, not BLAS (whose threads stall on a busy machine).
    """
    powers, _ = _bases(m.shape[-1])
    rows = einsum("nyx,by->nbx", m, powers)  # (N, 5, S): sum over y of y**b
    sxy = einsum("nbx,ax->nba", rows[:, :3], powers).astype(np.float64)  # sum x**a y**b
    ry = rows[:, 3:].sum(axis=2).astype(np.float64)  # sum y**3, y**4
    both = np.concatenate([sxy.reshape(len(m), 15), ry], axis=1)
    return both[:, _MOMENT_COLUMNS]


# the columns of _moments in ``concatenate([sxy (b, a) flattened, ry])``: 1, x, y, x2, y2, xy,
# x3, y3, x4, y4, x2y, xy2, x2y2 (``sxy[b, a]`` is the sum of ``y**b x**a``)
_MOMENT_COLUMNS = np.array([0, 1, 5, 2, 10, 6, 3, 15, 4, 16, 7, 11, 12])


def _blocks(img: np.ndarray) -> np.ndarray:
    """``(N, S, S)`` -> ``(N, 16)`` means of a 4x4 grid of blocks."""
    n, s, _ = img.shape
    _, blocks = _bases(s)
    rows = einsum("nyx,iy->nix", img, blocks)
    cells = einsum("nix,jx->nij", rows, blocks).astype(np.float64)
    return cells.reshape(n, 16) / float((s // 4) ** 2)


def colour_bins(rgb: np.ndarray) -> np.ndarray:
    """Soft colour bins ``(N, 15)`` of colours ``rgb (N, 3)`` in ``[0, 1]`` (see the module doc).

    >>> b = colour_bins(np.array([[0.9, 0.1, 0.1], [0.5, 0.5, 0.5]]))
    >>> int(b[0].argmax()), int(b[1].argmax())  # red: hue bin 1 (30 deg); grey: "mid" bin 13
    (1, 13)
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    a = rgb[:, 0] - rgb[:, 1]
    y = 0.5 * (rgb[:, 0] + rgb[:, 1]) - rgb[:, 2]
    lum = channel_sum(rgb) / 3.0
    chroma = np.sqrt(a * a + y * y)
    hue = np.arctan2(y, a)
    kernel = np.maximum(np.cos(hue[:, None] - _HUE_BINS[None, :]), 0.0)
    kernel *= kernel
    kernel *= kernel
    kernel *= kernel  # cos**8
    kernel /= kernel.sum(axis=1, keepdims=True)
    grey = clip(1.0 - chroma / 0.3, 0.0, 1.0)
    light = np.maximum(1.0 - np.abs(lum[:, None] - _LIGHT_BINS[None, :]) / 0.4, 0.0)
    return np.concatenate([kernel * chroma[:, None], light * grey[:, None]], axis=1)


MASK_FLOOR = 0.25
"""The floor of the features' subject mask (``t = max(max s, floor)``; see the module doc)."""


@dataclass(frozen=True)
class Stats:
    """What the features pass leaves for the aesthetic score (per image; nothing is copied).

    Attributes:
        thumbs: ``(N, 3, S, S)`` the thumbnails.
        rgb: ``(N, 3)`` sums of R, G and B over the pixels.
        mask: ``(N, S * S)`` the subject mask, with floor :data:`MASK_FLOOR`.
        moments: ``(N, 3)`` sums of that mask, and of it times the centred x and y coordinates.
        top: ``(N,)`` the largest saliency of each image.
        sal: ``(N, S, S)`` the saliency, to redo the mask with another floor.
    """

    thumbs: np.ndarray
    rgb: np.ndarray
    mask: np.ndarray
    moments: np.ndarray
    top: np.ndarray
    sal: np.ndarray


@lru_cache(maxsize=4)
def _ring(s: int) -> np.ndarray:
    """``float32 (s * s,)``: 1 on the border ring of an ``s x s`` image (its outermost pixels)."""
    ring = np.ones((s, s), dtype=_F)
    ring[1:-1, 1:-1] = 0.0
    return ring.ravel()


def mask_moments(m: np.ndarray) -> np.ndarray:
    """``(N, 3)`` sums of masks ``m (N, S, S)``, and of them times the centred x and y."""
    return _moments(m)[:, :3]


def ring_sums(m: np.ndarray) -> np.ndarray:
    """``(N,)`` sums of masks ``m (N, S * S)`` over the border ring (the outermost pixels)."""
    return einsum("np,p->n", m, _ring(math.isqrt(m.shape[1]))).astype(np.float64)


def features(t: np.ndarray) -> np.ndarray:
    """Raw features ``float64 (N, 69)`` of thumbnails ``t (N, 3, S, S)`` (see the module table)."""
    return features_and_stats(t)[0]


def features_and_stats(t: np.ndarray) -> tuple[np.ndarray, Stats]:
    """:func:`features` and the :class:`Stats` of the aesthetic score, from one pass."""
    n, _, s, _ = t.shape
    npx = s * s
    x = t.reshape(n, 3, npx)
    # 1. Background estimate and subject mask
    border = border_colour(t)
    sal = saliency(t, border)
    top = sal.reshape(n, npx).max(axis=1)
    m = subject_mask(sal, MASK_FLOOR, top).reshape(n, npx)

    # 2. Plain and mask-weighted sums of the per-pixel channels
    lum, chans = _channels(x, s)
    plain = chans.sum(axis=2).astype(np.float64)  # (N, 8)
    chans *= m[:, None, :]
    weighted = chans.sum(axis=2).astype(np.float64)  # (N, 8)

    # 3. Moments of the mask and of the light inside it; the layout
    mom = _moments(m.reshape(n, s, s))
    lit = _light_sums(m, lum, s)
    layout = _blocks(lum.reshape(n, s, s))

    # 4. Object colour and fill
    mass = mom[:, 0] + 1e-3
    area = mass / npx
    obj_rgb = weighted[:, :3] / mass[:, None]
    obj_rgb = np.where((mom[:, 0] > 0.5)[:, None], obj_rgb, border)
    obj_lum = channel_sum(obj_rgb) / 3.0
    fill = _fill_features(weighted, plain, obj_rgb, obj_lum, mass, s)

    # 5. Shape: central moments, the light's direction and the mask's edges
    c = _central_moments(mom, mass)
    inertia = c.mu20 + c.mu02 + 1e-6
    light = _light_direction(lit, c, inertia)
    shape = _shape_features(c, inertia, area, mass, m.reshape(n, s, s))

    # 6. Assemble
    glob = _global_features(plain, npx)
    bins = colour_bins(np.concatenate([border, obj_rgb]))
    stats = Stats(t, plain[:, :3], m, mom[:, :3], top, sal)
    raw = np.concatenate(
        [
            bins[:n],
            bins[n:],
            obj_lum[:, None],
            fill,
            light,
            shape,
            np.stack([c.cx + 0.5, c.cy + 0.5, area], axis=1),
            layout,
            glob,
        ],
        axis=1,
    )
    return raw, stats


def _channels(x: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """``L`` and the channels ``(N, 8, S * S)``: R, G, B, L**2, chroma, |lap L|, A**2, Y**2."""
    n, _, npx = x.shape
    lum = channel_sum(x)
    lum *= _F(1 / 3)
    opp_a = x[:, 0] - x[:, 1]
    opp_y = x[:, 0] + x[:, 1]
    opp_y *= _F(0.5)
    opp_y -= x[:, 2]
    chans = np.empty((n, 8, npx), dtype=_F)
    chans[:, :3] = x
    np.multiply(lum, lum, out=chans[:, 3])
    np.multiply(opp_a, opp_a, out=chans[:, 6])
    np.multiply(opp_y, opp_y, out=chans[:, 7])
    np.add(chans[:, 6], chans[:, 7], out=chans[:, 4])  # chroma = sqrt(A**2 + Y**2)
    np.sqrt(chans[:, 4], out=chans[:, 4])
    _abs_laplacian(lum, s, chans[:, 5])
    return lum, chans


def _abs_laplacian(lum: np.ndarray, s: int, lap: np.ndarray) -> None:
    """``lap (N, S * S)`` = |Laplacian of ``lum``| inside the one-pixel frame, 0 on the frame."""
    # on the flat pixel axis: pixels s + 1 to npx - s - 2; the frame pixels among them are
    # zeroed after
    n, npx = lum.shape
    a, b = s + 1, npx - s - 1
    np.multiply(lum[:, a:b], _F(4.0), out=lap[:, a:b])
    for shift in (-s, s, -1, 1):  # above, below, left, right
        lap[:, a:b] -= lum[:, a + shift : b + shift]
    np.abs(lap[:, a:b], out=lap[:, a:b])
    lap[:, :a] = 0.0
    lap[:, b:] = 0.0
    frame = lap.reshape(n, s, s)
    frame[:, :, 0] = 0.0
    frame[:, :, -1] = 0.0


def _light_sums(
    m: np.ndarray, lum: np.ndarray, s: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sum x, sum y, sum + 1e-3)`` of ``m * lum`` over centred coordinates, ``float64 (N,)``."""
    n = m.shape[0]
    powers, _ = _bases(s)
    lit = einsum("nyx,by->nbx", (m * lum).reshape(n, s, s), powers[:2])
    lit_x = einsum("nx,x->n", lit[:, 0], powers[1]).astype(np.float64)
    lit_y = lit[:, 1].sum(axis=1).astype(np.float64)
    lit_mass = lit[:, 0].sum(axis=1).astype(np.float64) + 1e-3
    return lit_x, lit_y, lit_mass


def _fill_features(
    weighted: np.ndarray,
    plain: np.ndarray,
    obj_rgb: np.ndarray,
    obj_lum: np.ndarray,
    mass: np.ndarray,
    s: int,
) -> np.ndarray:
    """The fill group's spread of L, hue variety and Laplacian in and out, ``(N, 4)``."""
    obj_a = obj_rgb[:, 0] - obj_rgb[:, 1]
    obj_y = 0.5 * (obj_rgb[:, 0] + obj_rgb[:, 1]) - obj_rgb[:, 2]
    spread = np.sqrt(np.maximum(weighted[:, 3] / mass - obj_lum**2, 0.0))
    variety = 1.0 - np.sqrt(obj_a**2 + obj_y**2) / (weighted[:, 4] / mass + 0.02)
    inner = (s - 2) ** 2
    lap_in = weighted[:, 5] / mass
    lap_out = (plain[:, 5] - weighted[:, 5]) / (inner - mass + 1.0)
    return np.stack([spread, variety, lap_in, lap_out], axis=1)


class _Central(NamedTuple):
    """The mask's centroid and central moments (``mu_ab``: x to the a, y to the b)."""

    cx: np.ndarray
    cy: np.ndarray
    mu20: np.ndarray
    mu02: np.ndarray
    mu11: np.ndarray
    mu03: np.ndarray
    mu40: np.ndarray
    mu04: np.ndarray
    mu22: np.ndarray


def _central_moments(mom: np.ndarray, mass: np.ndarray) -> _Central:
    """Centroid and central moments from the raw moments ``mom (N, 13)`` of :func:`_moments`."""
    e = mom / mass[:, None]
    cx, cy = e[:, 1], e[:, 2]
    mu20 = e[:, 3] - cx**2
    mu02 = e[:, 4] - cy**2
    mu11 = e[:, 5] - cx * cy
    mu03 = e[:, 7] - 3 * cy * e[:, 4] + 2 * cy**3
    mu40 = e[:, 8] - 4 * cx * e[:, 6] + 6 * cx**2 * e[:, 3] - 3 * cx**4
    mu04 = e[:, 9] - 4 * cy * e[:, 7] + 6 * cy**2 * e[:, 4] - 3 * cy**4
    mu22 = (
        e[:, 12]
        - 2 * cy * e[:, 10]
        - 2 * cx * e[:, 11]
        + cy**2 * e[:, 3]
        + cx**2 * e[:, 4]
        + 4 * cx * cy * e[:, 5]
        - 3 * cx**2 * cy**2
    )
    return _Central(cx, cy, mu20, mu02, mu11, mu03, mu40, mu04, mu22)


def _light_direction(
    lit: tuple[np.ndarray, np.ndarray, np.ndarray], c: _Central, inertia: np.ndarray
) -> np.ndarray:
    """``(N, 2)`` offset of the light's centroid from the mask's, over the object's radius."""
    lit_x, lit_y, lit_mass = lit
    radius = np.sqrt(inertia)
    return np.stack(
        [(lit_x / lit_mass - c.cx) / radius, (lit_y / lit_mass - c.cy) / radius], axis=1
    )


def _edge_sums(m2: np.ndarray) -> np.ndarray:
    """``float64 (N, 4)`` sums of |differences| of neighbouring mask pixels ``m2 (N, S, S)``."""
    # right, down, down-right, down-left, at the pixels (y, x < S - 1)
    n, s, _ = m2.shape
    edges = np.empty((n, 4, s - 1, s - 1), dtype=_F)
    top_left, top_right = m2[:, :-1, :-1], m2[:, :-1, 1:]
    np.subtract(top_right, top_left, out=edges[:, 0])
    np.subtract(m2[:, 1:, :-1], top_left, out=edges[:, 1])
    np.subtract(m2[:, 1:, 1:], top_left, out=edges[:, 2])
    np.subtract(m2[:, 1:, :-1], top_right, out=edges[:, 3])
    np.abs(edges, out=edges)
    return edges.reshape(n, 4, -1).sum(axis=2, dtype=np.float64)


def _shape_features(
    c: _Central, inertia: np.ndarray, area: np.ndarray, mass: np.ndarray, m2: np.ndarray
) -> np.ndarray:
    """The shape group ``(N, 9)`` from the central moments and the edges of masks ``m2``."""
    s = m2.shape[-1]
    ed = _edge_sums(m2)
    axis_edges = ed[:, 0] + ed[:, 1] + 1e-3
    return np.stack(
        [
            (c.mu20 - c.mu02) / inertia,
            2 * c.mu11 / inertia,
            np.log(inertia / (area + 1e-3)),
            np.log(axis_edges**2 / mass / s),
            (ed[:, 2] + ed[:, 3]) / axis_edges,
            (ed[:, 0] - ed[:, 1]) / axis_edges,
            c.mu03 / inertia**1.5,
            (c.mu40 + c.mu04) / inertia**2,
            c.mu22 / inertia**2,
        ],
        axis=1,
    )


def _global_features(plain: np.ndarray, npx: int) -> np.ndarray:
    """The global group ``(N, 4)``: mean and spread of L, spreads of A and Y."""
    mean_l = (plain[:, 0] + plain[:, 1] + plain[:, 2]) / (3 * npx)
    mean_a = (plain[:, 0] - plain[:, 1]) / npx
    mean_y = (0.5 * (plain[:, 0] + plain[:, 1]) - plain[:, 2]) / npx
    return np.stack(
        [
            mean_l,
            np.sqrt(np.maximum(plain[:, 3] / npx - mean_l**2, 0.0)),
            np.sqrt(np.maximum(plain[:, 6] / npx - mean_a**2, 0.0)),
            np.sqrt(np.maximum(plain[:, 7] / npx - mean_y**2, 0.0)),
        ],
        axis=1,
    )
