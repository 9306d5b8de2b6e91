"""The shapes-world text-to-image generator: prompts and seeds in, ``uint8`` images out.

How an image is drawn (all images of a batch at once, in numpy, float32, colour planes):

1. each prompt is parsed (:func:`.scene.parse_prompt`, cached) and, with its seed, turned into
   numbers (:func:`.params.resolve`): what the prompt leaves open and all jitter come from hashes
   of the seed, so an image never depends on the rest of its batch;
2. each object's signed distance is evaluated on separable local coordinates
   (:mod:`.geometry`); the objects of an image are united (minimum distance) and the coverage is
   ``alpha = clip(0.5 - distance * pixels_per_unit / softness, 0, 1)``, i.e. anti-aliased edges
   ``softness`` pixels wide ("sharp" 0.5, default 0.85, "soft" 1.6, "blurry" 3.5 at 64 px);
3. the fill: flat colour, or the shape's lighting (``sphere`` radial, ``cube`` faces, ``pyramid``
   split, ``metallic`` bands), ``disc`` rim, ``ball`` highlight, ``rainbow`` hues, ``striped`` /
   ``dotted`` / ``detailed`` textures; a ``box`` keeps only a band along its edge;
4. the background: flat, ``gradient`` (darker towards the bottom) or ``psychedelic`` bands;
5. pixel styles in this order: outlined, glowing, dramatic lighting, vignette, foggy, blurry
   (haze), grainy, monochrome, cinematic (letterbox bars).

Steps 2-5 run on windows of the images where that saves work (:mod:`.crop`): a box around the
objects on the background colour, or tiles; the bytes are the same as a whole-image pass.

The empty prompt is a valid request: shape and colour come from the seed, on the plain
off-white background. Any resolution of at least 8 pixels works, and square or not; sizes and
positions are fractions of the image, so one (prompt, seed) draws the same scene at 32, 64 or 128
pixels.

>>> gen = ShapesGenerator(resolution=32)
>>> images = gen.generate(["a red circle", ""], [0, 1])
>>> images.shape, images.dtype.name
((2, 32, 32, 3), 'uint8')
>>> bool((gen.generate(["a red circle"], [0])[0] == images[0]).all())
True
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from prompt_gym.backends.protocols import GeneratorBase
from prompt_gym.backends.shapes import geometry, params, vocab
from prompt_gym.backends.shapes.compose import compose, lighting, runs, scale_rows
from prompt_gym.backends.shapes.conditioning import condition
from prompt_gym.backends.shapes.crop import Grid, paste, plan_windows
from prompt_gym.backends.shapes.ops import clip
from prompt_gym.backends.shapes.params import SceneParams
from prompt_gym.backends.shapes.patterns import patterns
from prompt_gym.backends.shapes.scene import SceneKey, SceneSpec, scene_key
from prompt_gym.backends.validation import check_requests, check_texts

VERSION = "1"
VERSION_V3 = "3"
"""Generator versions (part of every cache key): world 2 is version 1, world 3 version 3."""
_F = np.float32
_GEOM_FUNCS = [geometry.DEPTH[name] for name in vocab.GEOMETRIES]
_HOLLOW_BAND = _F(0.16)
_CHUNK_PIXELS = 64 * 64 * 64  # half-width of a box's edge band, local units
# styles drawn per pixel: images that carry one take the general (slower) path
_PIXEL_STYLES = (
    "rainbow",
    "striped",
    "dotted",
    "detailed",
    "gradient",
    "psychedelic",
    "outlined",
    "dramatic lighting",
    "vignette",
    "foggy",
    "blurry",
    "grainy",
    "monochrome",
    "cinematic",
)
_PIXEL_STYLE_BITS = sum(params.STYLE_BIT[s] for s in _PIXEL_STYLES)


class _Workspace(threading.local):
    """Grow-only scratch buffers, one set per thread.

    Fresh multi-megabyte arrays cost a page fault per 4 KiB on every call; reusing buffers
    makes rendering several times faster.
    """

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
        size = math.prod(shape)
        buf = self.buffers.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = self.buffers[name] = np.empty(max(size, 1), dtype=dtype)
        return buf[:size].reshape(shape)


_WS = _Workspace()


class ShapesGenerator(GeneratorBase):
    """Procedural text-to-image model of the shapes world (CPU, batched, deterministic).

    Args:
        resolution: Image side in pixels (square images), at least 8.
        world: Shapes-world version: 2 (a prompt acts only through its parsed spec) or 3 (every
            word conditions the render: :mod:`.conditioning`).

    Raises:
        ValueError: If ``resolution`` is not an integer of at least 8, or ``world`` is unknown.
    """

    def __init__(self, resolution: int = 64, world: int = 2) -> None:
        if isinstance(resolution, bool) or not isinstance(resolution, int | np.integer):
            raise ValueError(f"resolution must be an int, got {resolution!r}")
        if resolution < 8:
            raise ValueError(f"resolution must be at least 8 pixels, got {resolution}")
        if world not in params.WORLDS:
            raise ValueError(f"world must be one of {params.WORLDS}, got {world!r}")
        self.resolution = int(resolution)
        self.world = int(world)

    def config(self) -> dict[str, Any]:
        """Every parameter that changes an image (world 2 keeps its original cache keys)."""
        if self.world == 2:
            return {"name": "shapes", "version": VERSION, "resolution": self.resolution}
        return {"name": "shapes", "version": VERSION_V3, "world": 3, "resolution": self.resolution}

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
        """Render one image per (prompt, seed).

        Args:
            prompts: Free-text prompts (unknown words are ignored).
            seeds: One integer in ``[0, 2**63)`` per prompt.

        Returns:
            ``uint8 (N, resolution, resolution, 3)``; row ``i`` depends only on
            ``(prompts[i], seeds[i], resolution)``.

        Raises:
            ValueError: If a prompt is not a string, a seed is not a non-negative integer, or the
                lengths differ.
        """
        prompts, seeds = check_requests(prompts, seeds)
        return render_prompts(prompts, seeds, self.resolution, self.resolution, self.world)

    def scene_keys(self, prompts: Sequence[str]) -> list[SceneKey]:
        """What each prompt draws: prompts with equal keys render equal images for one seed.

        In world 2 an image depends on its prompt only through the parsed :class:`SceneSpec`
        (unknown words change nothing; the key is the spec as a tuple); in world 3 the key also
        holds the prompt's conditioning numbers. The reward backend generates and scores each
        (key, seed) once.

        >>> gen = ShapesGenerator()
        >>> a, b = gen.scene_keys(["a red circle", "red circle, trending on artstation"])
        >>> a == b
        True
        """
        if self.world == 2:
            return [scene_key(p) for p in check_texts(prompts)]
        return [condition(p).key() for p in check_texts(prompts)]


def world3(resolution: int = 64) -> ShapesGenerator:
    """The shapes world v3 generator (the ``shapes-v3`` preset)."""
    return ShapesGenerator(resolution, world=3)


def render_prompts(
    prompts: Sequence[str], seeds: Sequence[int], height: int, width: int, world: int = 2
) -> np.ndarray:
    """Render checked prompts (see :class:`ShapesGenerator`; no input checks here).

    Large batches are drawn in chunks of about 2**18 pixels, which keeps the scratch buffers in
    cache; every image is independent of its chunk.
    """
    n = len(prompts)
    if n == 0:
        return np.zeros((0, height, width, 3), dtype=np.uint8)
    chunk = max(1, _CHUNK_PIXELS // (height * width))
    if n > chunk:
        out = np.empty((n, height, width, 3), dtype=np.uint8)
        for a in range(0, n, chunk):
            out[a : a + chunk] = render_prompts(
                prompts[a : a + chunk], seeds[a : a + chunk], height, width, world
            )
        return out
    p = params.resolve(prompts, seeds, float(min(height, width)), world)
    out = np.empty((n, height, width, 3), dtype=np.uint8)
    source, grid = plan_windows(p, height, width)
    _render_grid(p, source, grid, out)
    return out


def _render_grid(p: SceneParams, source: np.ndarray, grid: Grid, out: np.ndarray) -> None:
    """Draw the rows of ``grid``, row ``i`` showing image ``source[i]`` of ``p``, into ``out``."""
    lit = (p.shade != params.SHADE_NONE) | p.highlight
    general = lit | p.rim | p.glow | p.overshade | ((p.flags & _PIXEL_STYLE_BITS) != 0)
    # simple rows first, then general unlit rows, then lit rows by shade kind; geometry within
    key = (general * 1000 + lit * 100 + p.shade * 16 + p.geom)[source]
    order = np.argsort(key, kind="stable")
    dest = source[order]
    n = dest.size
    n_simple = int(np.count_nonzero(~general[dest]))
    n_lit = int(np.count_nonzero(lit[dest]))
    grid = grid.take(order)
    pixels, background = _draw(p.take(dest), grid, n_simple, n - n_lit)
    if grid.full:  # back to the caller's order
        out[dest] = pixels
    else:
        paste(out, dest, grid, pixels, background, _WS.get)


def render_specs(
    specs: Sequence[SceneSpec], seeds: Sequence[int], height: int, width: int
) -> np.ndarray:
    """Render parsed specs through their canonical prompts (no input checks here)."""
    return render_prompts([s.to_prompt() for s in specs], seeds, height, width)


# ---------------------------------------------------------------------------------------- drawing


def _coords(
    p: SceneParams, rows: np.ndarray, slot: int, k: np.ndarray, grid: Grid
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled local coordinates ``us (n, 1, W)``, ``vs (n, H, 1)`` of object ``slot`` of ``rows``."""
    h, w = grid.height, grid.width
    half = p.half[rows] * min(h, w)
    kr = k[rows, 0, 0]
    sx = (kr / (half * p.aspect[rows, 0])).astype(_F)[:, None, None]
    sy = (kr / (half * p.aspect[rows, 1])).astype(_F)[:, None, None]
    cx = (p.centres[rows, slot, 0] * w).astype(_F)[:, None, None]
    cy = (p.centres[rows, slot, 1] * h).astype(_F)[:, None, None]
    return (grid.xs(rows) - cx) * sx, (grid.ys(rows) - cy) * sy


def _depth(
    p: SceneParams, rows: np.ndarray, us: np.ndarray, vs: np.ndarray, k: np.ndarray, out: np.ndarray
) -> None:
    """Depth ``0.5 - k * sdf`` of one object slot of ``rows`` into ``out``.

    Rows are drawn one geometry at a time; when the geometries are fragmented (rows are sorted
    for the colour stage), they are gathered per geometry and scattered back.
    """
    ring = p.ring[rows].astype(_F)
    kr = k[rows]
    geom = p.geom[rows]
    pieces = runs(geom)
    if len(pieces) <= len(_GEOM_FUNCS):
        for g, a, b in pieces:
            _GEOM_FUNCS[g](us[a:b], vs[a:b], kr[a:b], ring[a:b], out[a:b])
        return
    order = np.argsort(geom, kind="stable")
    tmp = _WS.get("depth_sorted", out.shape)
    us, vs, kr, ring = us[order], vs[order], kr[order], ring[order]
    for g, a, b in runs(geom[order]):
        _GEOM_FUNCS[g](us[a:b], vs[a:b], kr[a:b], ring[a:b], tmp[a:b])
    out[order] = tmp


def _draw(p: SceneParams, grid: Grid, n_simple: int, n_unlit: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw the sorted batch on ``grid`` into windows ``uint8 (N, rows, cols, 3)``.

    Rows ``:n_simple`` are flat fills on flat backgrounds; rows ``n_unlit:`` carry lighting.
    Returns the windows (a reused buffer) and each image's background colour ``float32 (N, 3)``
    in ``[0, 255]``, as mixed (what every pixel away from the objects shows).
    """
    n = p.fg.shape[0]
    side = min(grid.height, grid.width)
    # k converts local units (object half-extents) into edge-softness units
    narrow = np.minimum(p.aspect[:, 0], p.aspect[:, 1])
    k = (p.half * side * narrow / p.soft).astype(_F)[:, None, None]
    # 1. depth of the union of the objects, and the lighting of the nearest one
    depth, us0, shade, white = _depth_and_lighting(p, grid, n_unlit, k)
    # 2. coverage
    alpha = _alpha(p, depth, k, grid)
    # 3. colour: flat fills here, everything else in compose
    pixels = _WS.get("pixels", (n, grid.rows, grid.cols, 3), np.uint8)
    planes = pixels.transpose(0, 3, 1, 2)  # colour planes, written one channel at a time
    background = np.empty((n, 3), dtype=_F)
    if n_simple:
        background[:n_simple] = _flat_fill(p, alpha, n_simple, planes)
    if n_simple < n:
        s = slice(n_simple, n)
        q = p.take(s)
        background[s] = compose(
            q,
            alpha[s],
            depth[s],
            k[s],
            us0[s] / k[s],
            n_unlit - n_simple,
            shade,
            white,
            patterns(grid.height, grid.width),
            grid.take(s),
            _WS.get,
            planes[s],
        )
    return pixels, background


def _depth_and_lighting(
    p: SceneParams, grid: Grid, n_unlit: int, k: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Depth of every image's objects (their union: the maximum), the first object's ``u``
    coordinates, and the shade and white planes of the nearest object of rows ``n_unlit:``."""
    n = p.fg.shape[0]
    h, w = grid.rows, grid.cols
    depth = _WS.get("depth", (n, h, w))
    every = np.arange(n)
    us0, vs0 = _coords(p, every, 0, k, grid)
    _depth(p, every, us0, vs0, k, depth)
    lit_rows = np.arange(n_unlit, n)
    shade = white = None
    if lit_rows.size:
        shade = _WS.get("shade", (lit_rows.size, h, w))
        white = _WS.get("white", (lit_rows.size, h, w))
        kl = k[lit_rows]
        lighting(p, lit_rows, us0[lit_rows] / kl, vs0[lit_rows] / kl, kl, shade, white)
    for slot in (1, 2):  # further objects: union (max depth), lighting of the nearest object
        rows = (p.count > slot).nonzero()[0]
        if rows.size == 0:
            continue
        us, vs = _coords(p, rows, slot, k, grid)
        d = _WS.get("depth2", (rows.size, h, w))
        _depth(p, rows, us, vs, k, d)
        closer = d > depth[rows]
        depth[rows] = np.where(closer, d, depth[rows])
        sel = rows >= n_unlit
        if shade is not None and white is not None and sel.any():
            sub = rows[sel]
            ks = k[sub]
            s2 = _WS.get("shade2", (sub.size, h, w))
            w2 = _WS.get("white2", (sub.size, h, w))
            lighting(p, sub, us[sel] / ks, vs[sel] / ks, ks, s2, w2)
            near, local = closer[sel], sub - n_unlit
            shade[local] = np.where(near, s2, shade[local])
            white[local] = np.where(near, w2, white[local])
    return depth, us0, shade, white


def _alpha(p: SceneParams, depth: np.ndarray, k: np.ndarray, grid: Grid) -> np.ndarray:
    """Coverage ``clip(depth, 0, 1)``; a box keeps only a band along the inside of its edge."""
    alpha = _WS.get("alpha", (p.fg.shape[0], grid.rows, grid.cols))
    clip(depth, _F(0.0), _F(1.0), out=alpha)
    hollow = p.hollow.nonzero()[0]
    if hollow.size:
        tk = _HOLLOW_BAND * k[hollow]
        band = np.abs(_F(0.5) + tk - depth[hollow])
        alpha[hollow] = clip(_F(0.5) + tk - band, 0, 1)
    return alpha


def _flat_fill(p: SceneParams, alpha: np.ndarray, n_simple: int, planes: np.ndarray) -> np.ndarray:
    """Rows ``:n_simple``: bg + alpha (fg - bg), truncated to uint8; returns their bg colours."""
    s = slice(0, n_simple)
    fg = (p.fg[s] * 255.0).astype(_F)
    bg = (p.bg[s] * 255.0).astype(_F)
    tmp = _WS.get("tmp", (n_simple, alpha.shape[1], alpha.shape[2]))
    for c in range(3):
        scale_rows(alpha[s], fg[:, c] - bg[:, c], tmp)
        np.add(tmp, bg[:, c, None, None], out=planes[s, c], casting="unsafe")
    return bg
