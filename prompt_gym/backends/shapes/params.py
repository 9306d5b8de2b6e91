"""From (spec, seed) to the numbers an image is drawn with, vectorised over a batch.

What the seed decides (each a hash of the seed, see :mod:`.hashing`):

* anything the prompt leaves out: the colour (uniform over all colours), the shape (uniform over
  all shape words), 2 or 3 objects for a plural without a number, which corner for "corner";
* jitter, like diffusion noise: the group position (+-0.04 of the image side when a position word
  is given, +-0.11 otherwise), each object's position (+-0.025), the size (x0.9..1.1 when a size
  word is given, x0.8..1.2 otherwise), each colour channel (+-0.035), the background lightness;
* which phase of the stripe / dot / hatching / grain / psychedelic texture is used.

Colour styles act on the named object colour ``fg`` and background ``bg`` in this fixed order:
minimal, neon, metallic, pastel, bright, dark, soft, vivid, high contrast, cinematic; the seed's
colour jitter is added afterwards. The other styles act on pixels (:mod:`.render`).

Everything that does not depend on the seed is computed once per spec (:func:`plan`, cached) as
small tables over all shapes and all colours, so a batch resolves in a few array gathers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from prompt_gym.backends.shapes import vocab
from prompt_gym.backends.shapes.conditioning import COLOUR_JITTER, condition, hue_rotate
from prompt_gym.backends.shapes.hashing import uniforms
from prompt_gym.backends.shapes.ops import clip
from prompt_gym.backends.shapes.scene import (
    SceneKey,
    SceneSpec,
    parse_prompt,
    scene_key,
    spec_key,
)

#: Style name -> bit in :attr:`SceneParams.flags`.
STYLE_BIT: dict[str, int] = {name: 1 << i for i, name in enumerate(vocab.STYLES)}
SHADE_NONE, SHADE_RADIAL, SHADE_FACES, SHADE_SPLIT, SHADE_BANDS = range(5)
_FILL_SHADE = {"radial": SHADE_RADIAL, "faces": SHADE_FACES, "split": SHADE_SPLIT}

# uniform fields of one seed
(U_COLOUR, U_SHAPE, U_COUNT, U_CORNER, U_X, U_Y, U_SIZE, U_R, U_G, U_B, U_BG) = range(11)
(U_STRIPES, U_DOTS, U_DETAIL, U_GRAIN, U_PSY, U_RAINBOW) = range(11, 17)
U_OBJECTS = 17  # 3 objects x (x, y)
N_FIELDS = 23

_NEON = np.array([(1.0, 0.2, 0.9), (0.2, 1.0, 1.0), (0.7, 1.0, 0.1), (1.0, 0.95, 0.15)])
_NEON_BG = np.array([0.03, 0.02, 0.07])
_DARK_BG = np.array([0.07, 0.07, 0.09])
_LUMA = np.array([0.299, 0.587, 0.114])
_NEUTRAL = np.array([0.5, 0.5, 0.5])  # where a diluted colour fades to (world v3)
# object centres around the anchor, in units of the object half-extent
_OFFSETS = np.array(
    [
        [(0.0, 0.0), (0.0, 0.0), (0.0, 0.0)],
        [(0.0, 0.0), (0.0, 0.0), (0.0, 0.0)],
        [(-1.3, 0.0), (1.3, 0.0), (0.0, 0.0)],
        [(-1.3, 0.95), (1.3, 0.95), (0.0, -1.25)],
    ]
)
_COUNT_SCALE = np.array([1.0, 1.0, 0.72, 0.6])
_COUNT_MAX_HALF = np.array([1.0, 1.0, 0.2, 0.17])  # a group must fit in the frame

_COLOUR_TABLE = np.array([vocab.COLOURS[c] for c in vocab.COLOUR_NAMES])
_N_COLOURS = len(vocab.COLOUR_NAMES)
_N_SHAPES = len(vocab.SHAPE_NAMES)
_TEXTURES = ("striped", "dotted", "detailed", "grainy", "psychedelic")


@dataclass(frozen=True)
class Plan:
    """The seed-independent numbers of one spec.

    Attributes:
        shape: ``(n_shapes, 11)``: geometry, shade, rim, highlight, hollow, glow, overshade,
            aspect x, aspect y, ring radius, ring half-width, for every shape word (the spec's
            shape if it names one, else the seed picks a row).
        colour: ``(n_colours, 6)``: object RGB and background RGB after the colour styles, for
            every object colour.
        scalars: ``(10,)``: shape index (-1 = seed), colour index (-1 = seed), size (-1 = seed),
            position kind (0 none, 1 fixed, 2 corner), anchor x, anchor y, count (0 = 2 or 3 by
            seed), style flags, edge softness at 64 px (negative: scales with the resolution),
            1 if the background is the default one.
    """

    shape: np.ndarray
    colour: np.ndarray
    scalars: np.ndarray


@dataclass
class SceneParams:
    """Per-image drawing parameters of a batch; every array has the batch as its first axis.

    Colours are RGB in ``[0, 1]``; positions are fractions of the width (x) and height (y), sizes
    fractions of the shorter side.
    """

    geom: np.ndarray  # int, index into vocab.GEOMETRIES
    shade: np.ndarray  # int, SHADE_*
    rim: np.ndarray  # bool
    highlight: np.ndarray  # bool
    hollow: np.ndarray  # bool
    glow: np.ndarray  # bool
    overshade: np.ndarray  # bool: "shaded" on an already shaded shape
    aspect: np.ndarray  # (N, 2)
    ring: np.ndarray  # (N, 2) band radius and half-width
    half: np.ndarray  # (N,) half-extent of one object
    count: np.ndarray  # (N,) 1..3
    centres: np.ndarray  # (N, 3, 2)
    anchor: np.ndarray  # (N, 2) group anchor
    fg: np.ndarray  # (N, 3)
    bg: np.ndarray  # (N, 3)
    soft: np.ndarray  # (N,) edge softness in pixels
    flags: np.ndarray  # (N,) int64 style bits
    u: np.ndarray  # (N, N_FIELDS) the seed's uniforms (texture phases)

    def has(self, style: str) -> np.ndarray:
        """Boolean mask of the images that carry ``style``."""
        return (self.flags & STYLE_BIT[style]) != 0

    def take(self, index: np.ndarray | slice) -> SceneParams:
        """The parameters of the images ``index``, in that order (views for a slice)."""
        return SceneParams(*[v[index] for v in self.__dict__.values()])


_SHAPE_STYLES = frozenset({"shaded", "metallic", "flat", "glowing", "neon"})
_COLOUR_STYLES = frozenset(
    {"neon", "metallic", "pastel", "bright", "dark", "soft", "vivid", "high contrast"}
    | {"cinematic", "minimal"}
)


def _shape_table(styles: frozenset[str]) -> np.ndarray:
    """Shape rows of a spec's styles (only the styles that change a shape row matter)."""
    return _shape_rows(styles & _SHAPE_STYLES)


def _colour_table(styles: frozenset[str], background: str | None) -> np.ndarray:
    """Colour rows of a spec's styles and background (only the colour styles matter)."""
    return _colour_rows(styles & _COLOUR_STYLES, background)


@lru_cache(maxsize=256)
def _shape_rows(styles: frozenset[str]) -> np.ndarray:
    rows = []
    for name in vocab.SHAPE_NAMES:
        d = vocab.SHAPES[name]
        shade = _FILL_SHADE.get(d.fill, SHADE_NONE)
        rim, highlight = d.fill == "rim", d.fill == "highlight"
        overshade = False
        if "shaded" in styles:
            overshade = shade != SHADE_NONE
            shade = shade if overshade else SHADE_RADIAL
        if "metallic" in styles:
            shade = SHADE_BANDS
        if "flat" in styles:
            shade, rim, highlight, overshade = SHADE_NONE, False, False, False
        glow = d.glow or "glowing" in styles or "neon" in styles
        geom = vocab.GEOMETRIES.index(d.geometry)
        hollow = d.fill == "outline"
        rows.append((geom, shade, rim, highlight, hollow, glow, overshade, *d.aspect, *d.ring))
    table = np.array(rows, dtype=np.float64)
    table.setflags(write=False)
    return table


def _luma(c: np.ndarray) -> np.ndarray:
    return (c @ _LUMA)[:, None]


def _saturate(c: np.ndarray, amount: float) -> np.ndarray:
    return clip(_luma(c) + amount * (c - _luma(c)), 0.0, 1.0)


@lru_cache(maxsize=1024)
def _colour_rows(styles: frozenset[str], background: str | None) -> np.ndarray:
    """Object and background colours after the colour styles, for every object colour."""
    fg = _COLOUR_TABLE.copy()
    default = background is None or "minimal" in styles
    bg = np.tile(vocab.DEFAULT_BACKGROUND if default else vocab.COLOURS[background], (len(fg), 1))
    if "neon" in styles:  # a neon colour unrelated to the named one, on near-black
        fg = _NEON[np.arange(len(fg)) % len(_NEON)]
        bg = np.tile(_NEON_BG, (len(fg), 1))
    if "metallic" in styles:
        fg = 0.3 * fg + 0.7 * _luma(fg) + 0.08
    if "pastel" in styles:
        if default:  # pale complementary background
            bg = 0.8 + 0.17 * (1.0 - clip(fg, 0.0, 1.0))
        fg = 0.55 * fg + 0.45
    if "bright" in styles:
        fg = fg * 1.15 + 0.15
        bg = bg + 0.35 * (1.0 - bg)
    if "dark" in styles:
        fg = fg * 0.8
        bg = np.tile(_DARK_BG, (len(fg), 1)) if default else bg * 0.45
    fg, bg = clip(fg, 0.0, 1.0), clip(bg, 0.0, 1.0)
    if "soft" in styles:
        fg, bg = _saturate(fg, 0.75), _saturate(bg, 0.75)
    if "vivid" in styles:
        fg, bg = _saturate(fg, 1.5), _saturate(bg, 1.5)
    if "high contrast" in styles:
        fg = clip(0.5 + 1.45 * (fg - 0.5), 0.0, 1.0)
        bg = clip(0.5 + 1.45 * (bg - 0.5), 0.0, 1.0)
    if "cinematic" in styles:  # teal shadows, orange highlights
        grade = np.array([1.0, 0.1, -1.0])
        fg = fg + 0.25 * (_luma(fg) - 0.5) * grade
        bg = bg + 0.25 * (_luma(bg) - 0.5) * grade
    return np.concatenate([fg, bg], axis=1)


@lru_cache(maxsize=8192)
def plan(spec: SceneSpec) -> Plan:
    """The seed-independent numbers of ``spec`` (cached per spec)."""
    styles = frozenset(spec.styles)
    pos = vocab.POSITIONS.get(spec.position) if spec.position else None
    pos_kind = 0 if spec.position is None else (2 if pos is None else 1)
    bits = 0
    for style in styles:
        bits |= STYLE_BIT[style]
    count = spec.count if spec.count is not None else 0
    if "minimal" in styles:
        count = 1
        bits &= ~sum(STYLE_BIT[s] for s in _TEXTURES)
    soft = 0.85
    if "sharp" in styles:
        soft = 0.5
    if "soft" in styles:
        soft = -1.6  # negative: scales with the resolution, at least 1.6 px
    if "blurry" in styles:
        soft = -3.5
    default_bg = spec.background is None or "minimal" in styles
    scalars = (
        vocab.SHAPE_NAMES.index(spec.shape) if spec.shape else -1,
        vocab.COLOUR_NAMES.index(spec.colour) if spec.colour else -1,
        vocab.SIZES[spec.size] if spec.size else -1.0,
        pos_kind,
        pos[0] if pos else 0.5,
        pos[1] if pos else 0.5,
        count,
        bits,
        soft,
        1.0 if default_bg else 0.0,
    )
    return Plan(
        shape=_shape_table(styles),
        colour=_colour_table(styles, None if default_bg else spec.background),
        scalars=np.array(scalars, dtype=np.float64),
    )


class PlanTable:
    """The plans of recently seen scenes, stacked so a batch gathers them in one indexing step.

    One row per distinct spec, found through the prompt string: a prompt is parsed once, and
    prompts that parse to the same spec share a row (``key`` and ``spec`` say how a prompt is
    read: world v2's parse by default, world v3's conditioned spec for :data:`PLANS_V3`). When a batch would overflow ``capacity``
    rows (or ``PROMPTS_PER_ROW`` times as many prompts), the table is cleared first; capacity
    grows to fit any batch.
    """

    PROMPTS_PER_ROW = 8

    def __init__(
        self,
        capacity: int = 4096,
        key: Callable[[str], SceneKey] = scene_key,
        spec: Callable[[str], SceneSpec] = parse_prompt,
    ) -> None:
        self._lock = threading.Lock()
        self._key, self._spec = key, spec
        self._alloc(capacity)

    def _alloc(self, capacity: int) -> None:
        self.capacity = capacity
        self.ids: dict[str, int] = {}  # prompt -> row
        self.rows: dict[SceneKey, int] = {}  # spec (as its key) -> row
        self.shape = np.empty((capacity, _N_SHAPES, 11))
        self.colour = np.empty((capacity, _N_COLOURS, 6))
        self.scalars = np.empty((capacity, 10))

    def gather(
        self, prompts: Sequence[str], u: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Plan rows of ``prompts``, with the seed's pick where a prompt leaves shape or colour open.

        Returns:
            ``(scalars (N, 10), shape row (N, 11), colour row (N, 6), shape index, colour index)``.
        """
        with self._lock:
            batch = list(dict.fromkeys(prompts))
            new = [p for p in batch if p not in self.ids]
            keys = [self._key(p) for p in new]
            fresh = {k: p for k, p in zip(keys, new, strict=True) if k not in self.rows}
            too_many = len(self.ids) + len(new) > self.PROMPTS_PER_ROW * self.capacity
            if too_many or len(self.rows) + len(fresh) > self.capacity:
                self._alloc(max(self.capacity, 2 * len(batch)))
                new, keys = batch, [self._key(p) for p in batch]
                fresh = dict(zip(keys, new, strict=True))
            for key, prompt in fresh.items():
                i = len(self.rows)
                pl = plan(self._spec(prompt))
                self.shape[i], self.colour[i], self.scalars[i] = pl.shape, pl.colour, pl.scalars
                self.rows[key] = i
            for prompt, key in zip(new, keys, strict=True):
                self.ids[prompt] = self.rows[key]
            ids = np.fromiter((self.ids[p] for p in prompts), dtype=np.intp, count=len(prompts))
            st = self.scalars[ids]
            shape = st[:, 0].astype(np.int64)
            shape = np.where(shape < 0, (u[:, U_SHAPE] * _N_SHAPES).astype(np.int64), shape)
            colour = st[:, 1].astype(np.int64)
            colour = np.where(colour < 0, (u[:, U_COLOUR] * _N_COLOURS).astype(np.int64), colour)
            return st, self.shape[ids, shape], self.colour[ids, colour], shape, colour


def spec_v3(prompt: str) -> SceneSpec:
    """The spec world v3 draws for ``prompt`` (its diluted styles removed)."""
    return condition(prompt).spec


@lru_cache(maxsize=65536)
def spec_key_v3(prompt: str) -> SceneKey:
    """:func:`spec_v3` as a tuple of its fields (the plan row of a v3 prompt)."""
    return spec_key(condition(prompt).spec)


PLANS = PlanTable()
PLANS_V3 = PlanTable(key=spec_key_v3, spec=spec_v3)
WORLDS = (2, 3)
"""Shapes-world versions :func:`resolve` draws: 2 (a prompt is its spec) and 3 (every word counts)."""


def resolve(
    prompts: Sequence[str], seeds: Sequence[int], side: float, world: int = 2
) -> SceneParams:
    """Draw the per-image parameters of a batch.

    Args:
        prompts: One prompt per image.
        seeds: One non-negative seed per image.
        side: The shorter image side in pixels (edge softness scales with it).
        world: 2, or 3 to apply each prompt's :class:`~.conditioning.Conditioning`.
    """
    n = len(prompts)
    u = uniforms(seeds, N_FIELDS)
    table = PLANS if world == 2 else PLANS_V3
    st, sh, col, _, _ = table.gather(prompts, u)
    cond = None if world == 2 else np.array([condition(p).vector() for p in prompts])
    if cond is None:
        fg = clip(col[:, :3] + 0.07 * (u[:, U_R : U_B + 1] - 0.5), 0.0, 1.0)
        bg = clip(col[:, 3:] * (0.98 + 0.04 * u[:, [U_BG]]), 0.0, 1.0)
    else:
        fg, bg = _conditioned_colours(col, cond, u)

    count = st[:, 6].astype(np.int64)
    count = np.where(count == 0, 2 + (u[:, U_COUNT] < 0.5), count)
    half = _half_extents(st, cond, u, count)
    flags = st[:, 7].astype(np.int64)
    anchor = _anchors(st, cond, u, flags)
    jitter = 0.05 * (u[:, U_OBJECTS : U_OBJECTS + 6].reshape(n, 3, 2) - 0.5)
    centres = clip(anchor[:, None, :] + _OFFSETS[count] * half[:, None, None] + jitter, 0.04, 0.96)

    soft = st[:, 8]
    soft = np.where(soft < 0, np.maximum(-soft, -soft * side / 64.0), soft)
    return SceneParams(
        geom=sh[:, 0].astype(np.int64),
        shade=sh[:, 1].astype(np.int64),
        rim=sh[:, 2] > 0,
        highlight=sh[:, 3] > 0,
        hollow=sh[:, 4] > 0,
        glow=sh[:, 5] > 0,
        overshade=sh[:, 6] > 0,
        aspect=sh[:, 7:9],
        ring=sh[:, 9:11],
        half=half,
        count=count,
        centres=centres,
        anchor=anchor,
        fg=fg,
        bg=bg,
        soft=soft,
        flags=flags,
        u=u,
    )


def _half_extents(
    st: np.ndarray, cond: np.ndarray | None, u: np.ndarray, count: np.ndarray
) -> np.ndarray:
    """Object half-extents: the size word (diluted in world 3), the seed's jitter, the count."""
    size = st[:, 2]
    if cond is not None:  # a diluted size word moves towards the default size
        size = np.where(
            size < 0, size, vocab.DEFAULT_SIZE + cond[:, 2] * (size - vocab.DEFAULT_SIZE)
        )
    size_jitter = np.where(size < 0, 0.4, 0.2) * (u[:, U_SIZE] - 0.5)
    half = np.where(size < 0, vocab.DEFAULT_SIZE, size) * (1.0 + size_jitter) * _COUNT_SCALE[count]
    if cond is not None:
        half = half * cond[:, 11]
    return np.minimum(half, _COUNT_MAX_HALF[count])


def _anchors(
    st: np.ndarray, cond: np.ndarray | None, u: np.ndarray, flags: np.ndarray
) -> np.ndarray:
    """Where each image's objects gather: the position word, corners and centring, jitter."""
    pos_kind = st[:, 3]
    corner = (u[:, U_CORNER] * 4).astype(np.int64)
    anchor = st[:, 4:6].copy()
    is_corner = pos_kind == 2
    anchor[is_corner, 0] = np.where(corner[is_corner] % 2 == 0, 0.26, 0.74)
    anchor[is_corner, 1] = np.where(corner[is_corner] < 2, 0.26, 0.74)
    amp = np.where(pos_kind == 0, 0.11, 0.04)
    if cond is not None:  # a diluted position word: nearer the centre
        anchor = 0.5 + cond[:, 3, None] * (anchor - 0.5)
    centered = (flags & STYLE_BIT["centered"]) != 0
    anchor[centered] = 0.5
    amp[centered] = 0.01
    anchor += 2.0 * amp[:, None] * (u[:, U_X : U_Y + 1] - 0.5)
    if cond is not None:
        anchor += cond[:, 12:14]
    return anchor


def _conditioned_colours(
    col: np.ndarray, cond: np.ndarray, u: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """World v3's object and background colours: strengths (a weak colour fades to mid grey),
    bleeding, hue and tint, then the seed's jitter."""
    fg = _NEUTRAL + cond[:, 0, None] * (col[:, :3] - _NEUTRAL) + cond[:, 4:7]
    fg = hue_rotate(fg, cond[:, 10])
    fg = clip(fg + 2.0 * COLOUR_JITTER * (u[:, U_R : U_B + 1] - 0.5), 0.0, 1.0)
    plain = np.asarray(vocab.DEFAULT_BACKGROUND)
    bg = plain + cond[:, 1, None] * (col[:, 3:] - plain) + cond[:, 7:10]
    bg = clip(bg * (0.98 + 0.04 * u[:, [U_BG]]), 0.0, 1.0)
    return fg, bg
