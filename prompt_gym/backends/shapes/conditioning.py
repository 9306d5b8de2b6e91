"""Shapes world v3: how every word of a prompt conditions the render, like a text-to-image model.

World v2 reads a prompt as a :class:`~.scene.SceneSpec` and nothing else: unknown words, a second
colour, padding and word order change no pixel, so nothing makes a long prompt worse and prompt
search degenerates into "append every candidate". World v3 keeps the v2 spec (what the prompt
names) and adds a :class:`Conditioning`: continuous numbers the renderer applies on top
(:func:`.params.resolve`). Four properties, each with its measured size in the README
("Shapes world v3") and pinned by ``tests/test_shapes_v3.py``:

Every token matters
    A word the vocabulary does not know perturbs the render deterministically: a hash of the word
    and its place in the prompt drives a small hue rotation of the object colour, a shift of the
    group, a background tint and a size change (:data:`HUE_AMP`, :data:`SHIFT_AMP`,
    :data:`TINT_AMP`, :data:`SCALE_AMP`, each scaled by the word's strength; the totals saturate
    at :data:`HUE_LIMIT`, :data:`SHIFT_LIMIT`, :data:`TINT_LIMIT`, :data:`SCALE_LIMIT`). More
    words perturb more; stop words ("the", "of") and junk tags ("8k", "trending on artstation")
    cost similarity.

Concept dilution
    Each word has a strength, in the spirit of cross-attention weights normalised over the
    tokens: ``s(i, L) = min(1, sqrt(FREE_WORDS / L)) / (1 + POSITION_DECAY * max(0, i - FREE_WORDS))``
    for word ``i`` (0-based) of an ``L``-word prompt: a prompt of up to 16 words (every canonical
    caption) is at full strength, a longer one is diluted as a whole and its late words more. An
    attribute is rendered at its strength: the object colour mixes from mid grey towards the
    named one, the background from the plain off-white, the size from the default size, the
    position from the centre. A style whose strength falls under :data:`STYLE_FLOOR` is not drawn
    at all. Padding costs, and past 16 words early words weigh more.

Binding and order
    A colour binds to what it stands next to: its strength falls with its distance in words to
    the nearest shape word (object colours) or to "background" / "on" (background colours), by
    ``1 / (1 + BIND_DECAY * d)`` (one more word when the colour follows its noun); an unbound
    colour (no shape word in the prompt) keeps :data:`UNBOUND`. A second object (or background) colour word is not ignored: it bleeds into
    the first with weight ``BLEED * s``. So "a red sphere on a blue background" and "a blue
    sphere on a red background" differ, "red blue sphere" is purple-ish, and some words only help
    together.

Seed noise
    The seed's colour jitter is :data:`COLOUR_JITTER` (v2: 0.035); whatever a prompt leaves
    out is still drawn by the seed, so an underspecified prompt varies more across seeds.

The canonical caption stays the best prompt for its own scene: targets are rendered from their
caption through the same rules, so only a prompt with the caption's words in the caption's order
reproduces it (up to seed noise).

>>> c = condition("a red sphere")
>>> c.spec.colour, c.colour_strength
('red', 1.0)
>>> condition("a red sphere, 8k") == condition("a red sphere")
False
>>> condition("a red sphere").key() == condition("A red sphere!").key()
True
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from prompt_gym.backends.shapes import vocab
from prompt_gym.backends.shapes.hashing import uniforms
from prompt_gym.backends.shapes.scene import (
    SceneSpec,
    is_background_colour,
    match_phrases,
    parse_prompt,
    spec_key,
    tokenize,
)

FREE_WORDS = 16
"""Prompts up to this many words are not diluted (every canonical caption is shorter)."""
POSITION_DECAY = 0.03
"""Strength lost per word of position past :data:`FREE_WORDS` (early words weigh more)."""
BIND_DECAY = 0.15
"""Colour strength lost per word between a colour and the noun it binds to."""
UNBOUND = 0.7
"""Binding factor of an object colour in a prompt without a shape word."""
MAX_BIND_DISTANCE = 8
BLEED = 0.4
"""Weight of a second colour word bleeding into the first (times its strength)."""
STYLE_FLOOR = 0.4
"""A style whose strength is below this is not drawn."""
HUE_AMP = 0.5
"""Largest hue rotation of the object colour by one unknown word, in radians."""
SHIFT_AMP = 0.07
"""Largest shift of the group by one unknown word, as a fraction of the image side."""
TINT_AMP = 0.08
"""Largest background tint (per RGB channel) by one unknown word."""
SCALE_AMP = 0.12
"""Largest relative size change by one unknown word."""
HUE_LIMIT = math.pi / 2
SHIFT_LIMIT = 0.15
TINT_LIMIT = 0.15
SCALE_LIMIT = math.log(1.3)
"""Totals of the unknown-word perturbations saturate at these (``limit * tanh(x / limit)``), so
piling on words never brings a render back: hue in radians, shift and tint as above, scale as a
log factor."""
COLOUR_JITTER = 0.05
"""Half-range of the seed's per-channel colour jitter in world v3."""
N_VALUES = 14
"""Length of :meth:`Conditioning.vector`."""


@dataclass(frozen=True)
class Conditioning:
    """What a prompt does to a v3 render beyond its spec.

    Attributes:
        spec: The v2 spec, less the styles diluted under :data:`STYLE_FLOOR`.
        colour_strength: Strength of the object colour (1 when no colour is named).
        background_strength: Strength of the background colour (1 when none is named).
        size_strength: Strength of the size word (1 when none is named).
        position_strength: Strength of the position words (1 when none is named).
        fg_shift: RGB added to the object colour (bleeding colours).
        bg_shift: RGB added to the background (bleeding colours and unknown-word tints).
        hue: Rotation of the object colour about the grey axis, radians.
        offset: ``(x, y)`` shift of the group, fractions of the image.
        scale: Size multiplier.
    """

    spec: SceneSpec
    colour_strength: float = 1.0
    background_strength: float = 1.0
    size_strength: float = 1.0
    position_strength: float = 1.0
    fg_shift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    bg_shift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    hue: float = 0.0
    offset: tuple[float, float] = (0.0, 0.0)
    scale: float = 1.0

    def vector(self) -> tuple[float, ...]:
        """The numbers the renderer applies, in a fixed order (:data:`N_VALUES` of them)."""
        return (
            self.colour_strength,
            self.background_strength,
            self.size_strength,
            self.position_strength,
            *self.fg_shift,
            *self.bg_shift,
            self.hue,
            self.scale,
            *self.offset,
        )

    def key(self) -> tuple[object, ...]:
        """Equal keys render equal images for one seed (the spec's fields and every number)."""
        return (*spec_key(self.spec), *self.vector())


def strength(index: int, n_words: int) -> float:
    """Strength of word ``index`` (0-based) of an ``n_words``-word prompt.

    >>> strength(0, 3), strength(10, 16), round(strength(0, 64), 3), round(strength(26, 64), 3)
    (1.0, 1.0, 0.5, 0.385)
    """
    length = min(1.0, math.sqrt(FREE_WORDS / max(n_words, 1)))
    return length / (1.0 + POSITION_DECAY * max(0, index - FREE_WORDS))


def _binding(index: int, anchors: list[int], unbound: float) -> float:
    """``1 / (1 + BIND_DECAY * d)``, ``d`` the distance to the nearest anchor (see the module).

    An attribute binds best right before its noun: ``d`` is the number of words between them,
    plus one when the attribute comes after the noun.

    >>> _binding(1, [2], 0.7), round(_binding(3, [2], 0.7), 3), _binding(1, [], 0.7)
    (1.0, 0.87, 0.7)
    """
    if not anchors:
        return unbound
    d = min(a - index - 1 if a > index else index - a for a in anchors)
    return 1.0 / (1.0 + BIND_DECAY * min(d, MAX_BIND_DISTANCE))


@lru_cache(maxsize=65536)
def _word_noise(word: str, index: int) -> tuple[float, ...]:
    """Eight uniforms in ``[0, 1)`` from a hash of ``word`` and its index in the prompt."""
    key = f"{word}|{index}".encode("utf-8", "surrogatepass")
    return tuple(uniforms([zlib.crc32(key)], 8)[0].tolist())


@lru_cache(maxsize=65536)
def condition(text: str) -> Conditioning:
    """The v3 conditioning of a prompt (cached per string).

    Args:
        text: Any prompt.

    Raises:
        ValueError: If ``text`` is not a string.
    """
    spec = parse_prompt(text)  # checks the type
    items = match_phrases(text)
    n_words = len(tokenize(text))
    shapes = [i for kind, _, i in items if kind == "shape"]
    grounds = [i for kind, _, i in items if kind in ("background_noun", "on")]
    object_colours: list[tuple[str, float]] = []
    background_colours: list[tuple[str, float]] = []
    style_strength: dict[str, float] = {}
    size_s = position_s = None
    hue, dx, dy, scale = 0.0, 0.0, 0.0, 1.0
    tint = [0.0, 0.0, 0.0]
    for j, (kind, value, i) in enumerate(items):
        s = strength(i, n_words)
        if kind == "colour":
            if is_background_colour(items, j):
                background_colours.append((value, s * _binding(i, grounds, 1.0)))
            else:
                object_colours.append((value, s * _binding(i, shapes, UNBOUND)))
        elif kind == "style":
            style_strength[value] = max(style_strength.get(value, 0.0), s)
        elif kind == "size" and size_s is None:
            size_s = s
        elif kind in ("horizontal", "vertical", "centre", "corner") and position_s is None:
            position_s = s
        elif kind == "word":
            u = _word_noise(value, i)
            amp = s * (0.5 + 0.5 * u[7])
            hue += (2.0 * u[0] - 1.0) * HUE_AMP * amp
            dx += (2.0 * u[1] - 1.0) * SHIFT_AMP * amp
            dy += (2.0 * u[2] - 1.0) * SHIFT_AMP * amp
            tint = [t + (2.0 * x - 1.0) * TINT_AMP * amp for t, x in zip(tint, u[3:6], strict=True)]
            scale *= 1.0 + (2.0 * u[6] - 1.0) * SCALE_AMP * amp
    styles = tuple(name for name in spec.styles if style_strength.get(name, 1.0) >= STYLE_FLOOR)
    fg_shift, colour_s = _bleed(object_colours)
    bg_shift, background_s = _bleed(background_colours)
    return Conditioning(
        spec=replace(spec, styles=styles) if styles != spec.styles else spec,
        colour_strength=colour_s,
        background_strength=background_s,
        size_strength=1.0 if size_s is None or spec.size is None else size_s,
        position_strength=1.0 if position_s is None or spec.position is None else position_s,
        fg_shift=_rounded(fg_shift),
        bg_shift=_rounded(
            [b + _squash(t, TINT_LIMIT) for b, t in zip(bg_shift, tint, strict=True)]
        ),
        hue=_squash(hue, HUE_LIMIT),
        offset=(_squash(dx, SHIFT_LIMIT), _squash(dy, SHIFT_LIMIT)),
        scale=round(math.exp(_squash(math.log(scale), SCALE_LIMIT)), 12),
    )


def _squash(x: float, limit: float) -> float:
    """``limit * tanh(x / limit)``, rounded (about ``x`` when small, never past ``limit``)."""
    return round(limit * math.tanh(x / limit), 12)


def _bleed(colours: list[tuple[str, float]]) -> tuple[list[float], float]:
    """RGB shift of the later colours bleeding into the first, and the first one's strength."""
    if not colours:
        return [0.0, 0.0, 0.0], 1.0
    first_name, first_s = colours[0]
    first = vocab.COLOURS[first_name]
    shift = [0.0, 0.0, 0.0]
    for name, s in colours[1:]:
        if name != first_name:
            other = vocab.COLOURS[name]
            shift = [v + BLEED * s * (o - f) for v, o, f in zip(shift, other, first, strict=True)]
    return shift, round(first_s, 12)


def _rounded(v: list[float]) -> tuple[float, float, float]:
    """Rounded so that equal sums reached in another order give equal keys."""
    return (round(v[0], 12), round(v[1], 12), round(v[2], 12))


def hue_rotate(rgb: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate colours ``(N, 3)`` about the grey axis by ``angle (N,)`` radians (Rodrigues).

    >>> out = hue_rotate(np.array([[0.5, 0.5, 0.5]]), np.array([1.0]))
    >>> bool(np.allclose(out, 0.5))
    True
    """
    k = 1.0 / math.sqrt(3.0)
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    cross = k * np.stack(
        [rgb[:, 2] - rgb[:, 1], rgb[:, 0] - rgb[:, 2], rgb[:, 1] - rgb[:, 0]], axis=1
    )
    dot = (k * rgb.sum(axis=1))[:, None] * k
    return rgb * cos + cross * sin + dot * (1.0 - cos)
