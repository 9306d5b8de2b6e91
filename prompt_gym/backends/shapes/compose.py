"""Colour composition of the images that need more than a flat fill (the renderer's general path).

Every pixel of such an image is ``out = wb * background + wf * fill + add``: two colours mixed
by per-pixel weights ``wb`` and ``wf``, plus a grey ``add`` (highlights, white dots, grain, fog).
Lighting, textures and nearly every pixel style are then operations on these three scalar fields,
row by row, and only the final mix touches the three colour channels. The fill colour is constant
per image except for ``rainbow`` (hues along the object's x axis); the background is constant
except for ``psychedelic`` bands and the ``rainbow`` arc.

Fill: lighting gives ``fill = shade * colour + white * (255 - colour)`` (a multiplier and a
mix towards white, see :func:`lighting`); ``disc`` rims
multiply by ``1 - 0.45 band``; ``striped`` and ``detailed`` darken to 45% on their pattern;
``dotted`` mixes towards white (near-black on light colours); "shaded" on an already shaded shape
multiplies by 0.75.

Pixel styles, in order: outlined (x(1 - 0.9 band) just outside the edge), glowing (mix towards the
object colour by ``0.85 clip(1 - sdf / reach)**2`` outside it, ``reach`` 0.6, or 1.0 for neon),
gradient (background x ``1 - 0.55 y``), dramatic lighting (x``clip(1.5 - 3 d, 0.15, 1.3)``, ``d``
the distance to the group anchor in image sides), vignette, foggy (``0.45 out + 0.55 * 214``),
blurry (``0.75 out + 0.125 (fill + background)``), grainy (``+ 28 noise``), monochrome (colours
to luminance), cinematic (bars of 8 over the top and bottom 12%).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from prompt_gym.backends.shapes import params
from prompt_gym.backends.shapes.crop import Grid
from prompt_gym.backends.shapes.features import channel_sum
from prompt_gym.backends.shapes.ops import clip, einsum
from prompt_gym.backends.shapes.params import SceneParams
from prompt_gym.backends.shapes.patterns import Patterns, hue_to_rgb

_F = np.float32
_LUMA = np.array([0.299, 0.587, 0.114])
_ADDING_BITS = sum(params.STYLE_BIT[s] for s in ("foggy", "grainy", "cinematic"))
_FIELD_BITS = params.STYLE_BIT["rainbow"] | params.STYLE_BIT["psychedelic"]


def scale_rows(a: np.ndarray, f: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = a * f[:, None, None]``: each row of ``a (n, H, W)`` times its factor.

    The same products as ``np.multiply`` (``einsum`` runs this faster than a broadcast), except
    that a zero product may come out as ``+0.0`` where ``np.multiply`` gives ``-0.0``; the
    colours built from it are the same, since every zero is added to and clipped before the cast.
    """
    return einsum("nhw,n->nhw", a, f, out=out)


def _two_term_einsum_is_exact() -> bool:
    """Whether ``einsum`` adds two products exactly as ``a * b + c * d`` (no fused multiply-add)."""
    rng = np.random.default_rng(0)
    w = rng.random((4, 2, 512), dtype=_F) * _F(3.0) - _F(1.0)
    f = rng.random((4, 2), dtype=_F) * _F(255.0)
    expected = w[:, 0] * f[:, 0, None] + w[:, 1] * f[:, 1, None]
    got = einsum("nkp,nk->np", w, f)
    return bool(np.array_equal(expected, got))


_EXACT_TWO_TERMS = _two_term_einsum_is_exact()


def mix_rows(weights: np.ndarray, colours: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = weights[:, 0] * colours[:, 0] + weights[:, 1] * colours[:, 1]``, row by row.

    ``weights`` is ``(n, 2, H, W)``, ``colours`` ``(n, 2)``. One ``einsum`` where it computes
    exactly that (checked once at import), else the two products and the sum.
    """
    if _EXACT_TWO_TERMS:
        return einsum("nkhw,nk->nhw", weights, colours, out=out)
    scale_rows(weights[:, 0], colours[:, 0], out)
    out += einsum("nhw,n->nhw", weights[:, 1], colours[:, 1])
    return out


def runs(keys: np.ndarray) -> list[tuple[int, int, int]]:
    """``(key, start, stop)`` of the runs of equal values in ``keys``.

    >>> runs(np.array([3, 3, 1, 1, 1, 2]))
    [(3, 0, 2), (1, 2, 5), (2, 5, 6)]
    """
    values = keys.tolist()  # a Python loop: batches are short, and numpy calls cost more
    out, start = [], 0
    for i in range(1, len(values)):
        if values[i] != values[i - 1]:
            out.append((values[start], start, i))
            start = i
    if values:
        out.append((values[start], start, len(values)))
    return out


def lighting(
    p: SceneParams,
    rows: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    k: np.ndarray,
    shade: np.ndarray,
    white: np.ndarray,
) -> None:
    """Lighting of one object of ``rows``: a multiplier ``shade`` and a mix-to-white ``white``.

    In local units: ``radial`` (sphere) ``1.15 - 0.6 d`` clipped to ``[0.3, 1.15]``, ``d`` the
    distance from the light at (-0.4, -0.4), plus a soft specular ``0.6 clip(1 - d/0.55, 0, 1)**2``;
    ``faces`` (cube) +25% on the top face and -30% on the right face; ``split`` (pyramid) left half
    x1.12, right half x0.7; ``bands`` (metallic) ``0.78 + 0.42 cos(2.6 pi v)**2``; the ``ball``
    highlight is a sharp white spot of radius 0.22 at (-0.38, -0.4).
    """
    for kind, a, b in runs(p.shade[rows]):
        uu, vv, o, wt = u[a:b], v[a:b], shade[a:b], white[a:b]
        if kind == params.SHADE_RADIAL:
            np.add((uu + _F(0.4)) ** 2, (vv + _F(0.4)) ** 2, out=o)
            np.sqrt(o, out=o)
            np.multiply(o, _F(-1 / 0.55), out=wt)
            wt += _F(1.0)
            clip(wt, _F(0.0), _F(1.0), out=wt)
            wt *= wt
            wt *= _F(0.6)
            np.multiply(o, _F(-0.6), out=o)
            o += _F(1.15)
            clip(o, _F(0.3), _F(1.15), out=o)
            continue
        wt[...] = _F(0.0)
        if kind == params.SHADE_FACES:
            top = clip((-vv - _F(0.35)) * _F(8.0), 0, 1) * _F(0.25)
            right = clip((uu - _F(0.4)) * _F(8.0), 0, 1) * _F(-0.3)
            np.add(top + _F(1.0), right, out=o)
        elif kind == params.SHADE_SPLIT:
            o[...] = _F(1.12) - _F(0.42) * clip(uu * _F(6.0) + _F(0.5), 0, 1)
        elif kind == params.SHADE_BANDS:
            o[...] = _F(0.78) + _F(0.42) * np.cos(vv * _F(2.6 * np.pi)) ** 2
        else:
            o[...] = _F(1.0)
    hl = p.highlight[rows].nonzero()[0]
    if hl.size:
        dist = np.sqrt((u[hl] + _F(0.38)) ** 2 + (v[hl] + _F(0.4)) ** 2)
        spot = clip((_F(0.22) - dist) * k[hl] + _F(0.5), 0, 1) * _F(0.9)
        white[hl] = np.maximum(white[hl], spot)


@dataclass(slots=True)
class _Planes:
    """The scalar fields of :func:`compose`: ``out = wb * background + wf * fill + add``."""

    weights: np.ndarray  # (n, 2, H, W): wb and wf side by side, for mix_rows
    wb: np.ndarray
    wf: np.ndarray
    add: np.ndarray
    has_add: bool  # whether any row's ``add`` may be non-zero


def compose(
    q: SceneParams,
    alpha: np.ndarray,
    depth: np.ndarray,
    k: np.ndarray,
    u: np.ndarray,
    lit: int,
    shade: np.ndarray | None,
    white: np.ndarray | None,
    pat: Patterns,
    grid: Grid,
    scratch: Callable[[str, tuple[int, ...]], np.ndarray],
    out: np.ndarray,
) -> np.ndarray:
    """Compose the rows ``q`` into the colour planes ``out`` (``uint8 (n, 3, rows, cols)``).

    Args:
        q: Parameters of the rows; rows ``lit:`` have lighting fields ``shade`` and ``white``.
        alpha: Coverage ``(n, H, W)``; ``depth`` and ``k`` as in :mod:`.geometry`.
        u: Local x coordinates ``(n, 1, W)`` of each row's first object.
        lit: First row with lighting fields.
        shade: Lighting multiplier of rows ``lit:``; ``white`` their mix towards white.
        pat: Texture fields of this resolution.
        grid: Where the rows are drawn: whole images or windows of them.
        scratch: ``scratch(name, shape)`` returns a reusable float32 buffer.
        out: Destination.

    Returns:
        Each row's background colour as mixed, ``float32 (n, 3)``.
    """
    n = alpha.shape[0]
    fg = (q.fg * 255.0).astype(_F)
    bg = (q.bg * 255.0).astype(_F)
    present = int(np.bitwise_or.reduce(q.flags)) if n else 0  # every style bit of the rows

    # 1. Base weights: coverage, and the lighting of the lit rows' fill
    planes = _base_planes(alpha, lit, shade, white, scratch)
    # 2. Fill styles: overshading, disc rims, textures
    _fill_styles(q, alpha, depth, k, pat, grid, present, planes)
    # 3. Pixel styles on the weights, then monochrome colours
    planes.has_add |= bool(present & _ADDING_BITS)
    _edge_styles(q, alpha, depth, k, grid, present, planes)
    _scene_styles(q, pat, grid, present, planes)
    _cinematic(q, grid, present, planes)
    if present & params.STYLE_BIT["monochrome"]:  # rainbow / psychedelic rows: see step 5
        mono = q.has("monochrome")
        fg[mono] = (fg[mono] * _LUMA).sum(axis=1, keepdims=True)
        bg[mono] = (bg[mono] * _LUMA).sum(axis=1, keepdims=True)
    # 4. Mix the colours of every row as if both were flat
    _mix_flat(planes, fg, bg, scratch, out)
    # 5. Redo the rows whose colours are fields (rainbow, psychedelic)
    if present & _FIELD_BITS:
        _mix_fields(q, fg, bg, u, pat, grid, planes, out)
    return bg


_NO_ROWS = np.zeros(0, dtype=np.intp)


def _rows(q: SceneParams, present: int, style: str) -> np.ndarray:
    """Indices of the rows with ``style`` (no search when no row of the batch has it)."""
    if not present & params.STYLE_BIT[style]:
        return _NO_ROWS
    return q.has(style).nonzero()[0]


def _base_planes(
    alpha: np.ndarray,
    lit: int,
    shade: np.ndarray | None,
    white: np.ndarray | None,
    scratch: Callable[[str, tuple[int, ...]], np.ndarray],
) -> _Planes:
    """Weights before any style: fill ``shade * colour + white * (255 - colour)`` on rows ``lit:``."""
    n, h, w = alpha.shape  # the drawn window (the whole image when the grid is full)
    weights = scratch("weights", (n, 2, h, w))
    wb, wf = weights[:, 0], weights[:, 1]
    add = scratch("add", (n, h, w))
    np.subtract(_F(1.0), alpha, out=wb)
    lit_fill = shade is not None and white is not None and lit < n
    unlit = lit if lit_fill else n  # rows lit: onwards get their fill weights below
    np.copyto(wf[:unlit], alpha[:unlit])
    add[:unlit] = _F(0.0)
    if lit_fill:
        s = slice(lit, n)
        np.multiply(alpha[s], shade, out=wf[s])
        np.multiply(white, alpha[s], out=add[s])
        wf[s] -= add[s]
        add[s] *= _F(255.0)
    return _Planes(weights, wb, wf, add, lit_fill)


def _fill_styles(
    q: SceneParams,
    alpha: np.ndarray,
    depth: np.ndarray,
    k: np.ndarray,
    pat: Patterns,
    grid: Grid,
    present: int,
    planes: _Planes,
) -> None:
    """Overshading (x0.75), disc rims, and the striped / detailed / dotted textures of the fill."""
    wf, add = planes.wf, planes.add
    idx = q.overshade.nonzero()[0]
    if idx.size:
        wf[idx] *= _F(0.75)
    idx = q.rim.nonzero()[0]
    if idx.size:  # a darker band just inside the edge
        band = clip(_F(1.0) + _F(0.15) * k[idx] - depth[idx], 0, 1)
        wf[idx] *= _F(1.0) - _F(0.45) * band
    for style, bank, field in (
        ("striped", pat.stripes, params.U_STRIPES),
        ("detailed", pat.detail, params.U_DETAIL),
        ("dotted", pat.dots, params.U_DOTS),
    ):
        idx = _rows(q, present, style)
        if idx.size == 0:
            continue
        weight = grid.crop(bank, (q.u[idx, field] * bank.shape[0]).astype(np.int64), idx)
        if style != "dotted":  # a darker shade of the fill
            wf[idx] *= _F(1.0) - _F(0.55) * weight
            continue
        planes.has_add = True  # white dots, or near-black ones on light colours
        light = channel_sum(q.fg[idx] * _LUMA) > 0.65
        accent = np.where(light, 25.0, 250.0).astype(_F)[:, None, None]
        dots = weight * alpha[idx]
        wf[idx] *= _F(1.0) - weight
        add[idx] += dots * accent


def _edge_styles(
    q: SceneParams,
    alpha: np.ndarray,
    depth: np.ndarray,
    k: np.ndarray,
    grid: Grid,
    present: int,
    planes: _Planes,
) -> None:
    """The styles around the object's edge: ``outlined`` and the glow (``glowing``, neon)."""
    wb, wf, add = planes.wb, planes.wf, planes.add
    idx = _rows(q, present, "outlined")
    if idx.size:  # a dark line just outside the edge, 0.9 px wide at 64 px
        side = min(grid.height, grid.width)
        a = (_F(0.9 * side / 64) / q.soft[idx].astype(_F))[:, None, None]
        f = _F(1.0) - _F(0.9) * clip(_F(0.5) + a - np.abs(_F(0.5) - depth[idx] - a), 0, 1)
        wf[idx] *= f
        wb[idx] *= f
        add[idx] *= f
    idx = q.glow.nonzero()[0]
    if idx.size:  # a halo of the object colour, outside the object; wider for neon
        reach = np.where(q.has("neon")[idx], 1.0, 0.6).astype(_F)[:, None, None]
        g = (_F(0.5) - depth[idx]) / k[idx]  # the signed distance
        g /= reach
        np.subtract(_F(1.0), g, out=g)
        clip(g, _F(0.0), _F(1.0), out=g)
        g *= g
        g *= _F(0.85) - _F(0.85) * alpha[idx]
        keep = _F(1.0) - g
        wf[idx] = wf[idx] * keep + g
        wb[idx] *= keep
        add[idx] *= keep


def _scene_styles(q: SceneParams, pat: Patterns, grid: Grid, present: int, planes: _Planes) -> None:
    """The whole-image styles: gradient, dramatic lighting, vignette, foggy, blurry, grainy."""
    wb, wf, add = planes.wb, planes.wf, planes.add
    height, width = grid.height, grid.width
    side = min(height, width)
    idx = _rows(q, present, "gradient")
    if idx.size:
        wb[idx] *= _F(1.0) - _F(0.55) * grid.ys(idx) / _F(height)
    idx = _rows(q, present, "dramatic lighting")
    if idx.size:  # dark scene, spotlight on the group
        xs = grid.xs(idx) / _F(side)
        ys = grid.ys(idx) / _F(side)
        ax = (q.anchor[idx, 0] * width / side).astype(_F)[:, None, None]
        ay = (q.anchor[idx, 1] * height / side).astype(_F)[:, None, None]
        dist = np.sqrt((xs - ax) ** 2 + (ys - ay) ** 2)
        light = clip(_F(1.5) - _F(3.0) * dist, _F(0.15), _F(1.3))
        _scale(idx, light, wf, wb, add)
    idx = _rows(q, present, "vignette")
    if idx.size:
        _scale(idx, grid.field(pat.vignette, idx), wf, wb, add)
    idx = _rows(q, present, "foggy")
    if idx.size:
        _scale(idx, _F(0.45), wf, wb, add)
        add[idx] += _F(0.55 * 0.84 * 255)
    idx = _rows(q, present, "blurry")
    if idx.size:  # haze towards the average of the two colours
        _scale(idx, _F(0.75), wf, wb, add)
        wf[idx] += _F(0.125)
        wb[idx] += _F(0.125)
    idx = _rows(q, present, "grainy")
    if idx.size:
        which = (q.u[idx, params.U_GRAIN] * pat.grain.shape[0]).astype(np.int64)
        add[idx] += grid.crop(pat.grain, which, idx) * _F(28.0)


def _cinematic(q: SceneParams, grid: Grid, present: int, planes: _Planes) -> None:
    """``cinematic``: bars of grey 8 over the top and bottom 12% of the image."""
    idx = _rows(q, present, "cinematic")
    if not idx.size:
        return
    wb, wf, add = planes.wb, planes.wf, planes.add
    height = grid.height
    bar = max(1, round(0.12 * height))
    if grid.full:
        h = wf.shape[1]
        for band in (slice(0, bar), slice(h - bar, h)):
            wf[idx, band] = _F(0.0)
            wb[idx, band] = _F(0.0)
            add[idx, band] = _F(8.0)
    else:
        y = grid.lines(idx)
        bars = (y < bar) | (y >= height - bar)
        for field, value in ((wf, 0.0), (wb, 0.0), (add, 8.0)):
            field[idx] = np.where(bars, _F(value), field[idx])


def _mix_flat(
    planes: _Planes,
    fg: np.ndarray,
    bg: np.ndarray,
    scratch: Callable[[str, tuple[int, ...]], np.ndarray],
    out: np.ndarray,
) -> None:
    """``out = wb * bg + wf * fg + add`` per channel, clipped, with flat colours on every row."""
    n, h, w = planes.add.shape
    mix = scratch("mix", (n, h, w))
    colours = np.empty((n, 3, 2), dtype=_F)  # background and fill of each channel
    colours[:, :, 0], colours[:, :, 1] = bg, fg
    for c in range(3):
        mix_rows(planes.weights, colours[:, c], mix)
        if planes.has_add:
            mix += planes.add
        clip(mix, _F(0.0), _F(255.0), out=out[:, c], casting="unsafe")


def _mix_fields(
    q: SceneParams,
    fg: np.ndarray,
    bg: np.ndarray,
    u: np.ndarray,
    pat: Patterns,
    grid: Grid,
    planes: _Planes,
    out: np.ndarray,
) -> None:
    """Redo the mix of the rainbow and psychedelic rows, whose colours vary over the image."""
    _, h, w = planes.add.shape
    fields = np.flatnonzero(q.has("rainbow") | q.has("psychedelic"))
    r = q.take(fields)
    fgf = np.broadcast_to(fg[fields, :, None, None], (fields.size, 3, 1, w)).copy()
    bgf = np.broadcast_to(bg[fields, :, None, None], (fields.size, 3, h, w)).copy()
    idx = np.flatnonzero(r.has("rainbow"))
    if idx.size:  # hues along the object's x axis, and an arc behind the object
        hue = _F(0.5) * u[fields[idx]] + r.u[idx, params.U_RAINBOW, None, None].astype(_F)
        fgf[idx] = np.moveaxis(hue_to_rgb(hue), 0, 1).astype(_F) * _F(235.0) + _F(10.0)
        arc = grid.field(pat.arc, fields[idx])
        arc_mask = grid.field(pat.arc_mask, fields[idx])
        if not grid.full:
            arc_mask = arc_mask[:, None]
        bgf[idx] += arc_mask * (arc * _F(255.0) - bgf[idx])
    idx = np.flatnonzero(r.has("psychedelic"))
    if idx.size:
        phase = (r.u[idx, params.U_PSY] * pat.psychedelic.shape[0]).astype(np.int64)
        bgf[idx] = grid.crop(pat.psychedelic, phase, fields[idx]) * _F(255.0)
    idx = np.flatnonzero(r.has("monochrome"))
    if idx.size:
        fgf[idx] = (np.moveaxis(fgf[idx], 1, -1) * _LUMA).sum(axis=-1)[:, None]
        bgf[idx] = (np.moveaxis(bgf[idx], 1, -1) * _LUMA).sum(axis=-1)[:, None]
    wb, wf, add = planes.wb, planes.wf, planes.add
    for c in range(3):
        mixed = wb[fields] * bgf[:, c] + wf[fields] * fgf[:, c]
        if planes.has_add:
            mixed += add[fields]
        out[fields, c] = clip(mixed, _F(0.0), _F(255.0))


def _scale(idx: np.ndarray, f: np.ndarray | np.float32, *fields: np.ndarray) -> None:
    """Multiply rows ``idx`` of every field by ``f``."""
    for field in fields:
        field[idx] *= f
