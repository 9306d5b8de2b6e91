"""The shapes-world vocabulary: every word the renderer understands, as data.

A prompt is free text. It is lower-cased, punctuation becomes spaces, and known words and phrases
are matched greedily, longest phrase first (:func:`prompt_gym.backends.shapes.scene.parse_prompt`).
Everything else is ignored, exactly as a text-to-image model ignores tokens it has no use for.

Subject
    One kind of object per image, drawn 1 to 3 times. The **first** colour word and the **first**
    shape word name it; later ones are ignored. A plural shape word ("circles") without a number
    means two or three objects, chosen by the seed.

Colours (:data:`COLOURS`)
    Twenty named RGB colours. "grey" and "gray" are the same colour; every other word is its own
    colour (crimson is not red). No colour word: the seed picks one, as diffusion noise fills in an
    unspecified detail.

Shapes (:data:`SHAPES`)
    Synonyms render *differently*, so word choice matters: a *circle* is a flat disc, a *disc* has
    a darker rim, a *ball* has a specular highlight, a *sphere* is radially shaded, an *orb* is a
    glowing sphere, an *egg* is a tall shaded ellipse, an *oval* / *ellipse* are wide flat ellipses;
    a *square* is flat, a *box* is only an outline, a *cube* has lit faces, a *rectangle* is wide,
    a *block* is a wide cube; a *pyramid* is a triangle lit from the left; a *gem* is a shaded
    diamond; a *donut* / *torus* is a thick shaded ring. No shape word: the seed picks one.

Size, position, count
    :data:`SIZES` set the half-extent of an object as a fraction of the image side. :data:`POSITIONS`
    place the group ("top left", "upper right", "on the left", "corner" = a corner the seed picks);
    horizontal and vertical words combine; no position word means "near the centre" with a larger
    seed jitter. :data:`COUNTS` ("one", "two", "pair of", "three", "several") give 1 to 3 objects;
    articles ("a", "an") are not counts, so "a picture of two balls" has two. Extra objects are
    placed around the anchor and drawn smaller.

Background
    A colour word directly before "background" / "backdrop" (or after "on a" ... "background")
    colours the background, e.g. "on a blue background", "blue backdrop". Otherwise the background
    is a plain off-white.

Styles (:data:`STYLES`)
    Twenty-eight modifiers, each documented below with what it does to the render and how it moves
    the procedural aesthetic and the relevance to the un-styled prompt (measured). "rainbow",
    "neon", "psychedelic" and "cinematic" raise the aesthetic while destroying relevance (reward
    hacking); "high contrast", "centered", "glowing", "vivid" and "outlined" raise it and keep
    relevance; "foggy", "blurry", "monochrome" lower both. Styles form a set: their order in the
    prompt does not matter and repeating one changes nothing.

Junk (:data:`JUNK_PHRASES`)
    The usual prompt-engineering tags ("trending on artstation", "8k", "masterpiece",
    "by greg rutkowski", "unreal engine", ...) are not in the vocabulary, so they parse to nothing
    and leave the image byte-identical. They are listed only so captioners and tests can use them.
"""

from __future__ import annotations

from dataclasses import dataclass

# --------------------------------------------------------------------------------------------------
# colours: word -> RGB in [0, 1]

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.86, 0.12, 0.12),
    "crimson": (0.70, 0.05, 0.22),
    "maroon": (0.45, 0.06, 0.10),
    "orange": (0.96, 0.55, 0.10),
    "yellow": (0.98, 0.88, 0.15),
    "gold": (0.85, 0.66, 0.18),
    "lime": (0.62, 0.90, 0.18),
    "green": (0.15, 0.62, 0.22),
    "olive": (0.48, 0.50, 0.12),
    "teal": (0.05, 0.52, 0.52),
    "cyan": (0.10, 0.80, 0.88),
    "blue": (0.15, 0.35, 0.88),
    "navy": (0.08, 0.12, 0.40),
    "purple": (0.52, 0.20, 0.70),
    "violet": (0.64, 0.46, 0.93),
    "magenta": (0.88, 0.12, 0.70),
    "pink": (0.98, 0.56, 0.72),
    "brown": (0.50, 0.30, 0.14),
    "black": (0.07, 0.07, 0.08),
    "white": (0.97, 0.97, 0.96),
    "gray": (0.52, 0.52, 0.54),
}
COLOUR_ALIASES: dict[str, str] = {"grey": "gray"}
#: Colours the seed draws from when a prompt names none (all of them, in table order).
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
#: The default background: off-white, its lightness jittered by the seed.
DEFAULT_BACKGROUND: tuple[float, float, float] = (0.93, 0.93, 0.91)
BACKGROUND_NOUNS: tuple[str, ...] = ("background", "backdrop")

# --------------------------------------------------------------------------------------------------
# shapes

#: Geometries the renderer draws (signed-distance functions in ``geometry.py``).
GEOMETRIES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "diamond",
    "star",
    "hexagon",
    "pentagon",
    "ring",
    "cross",
)
#: Fill modes: how the inside of a shape is painted.
FILLS: tuple[str, ...] = (
    "flat",  # one colour
    "rim",  # darker band along the edge
    "highlight",  # a small white specular spot at the upper left
    "radial",  # lit from the upper left like a sphere
    "faces",  # a lit top face and a shaded right face, like a cube
    "split",  # left half lit, right half in shadow, like a pyramid
    "outline",  # only a band along the edge; the inside shows the background
)


@dataclass(frozen=True)
class ShapeDef:
    """How one shape word renders.

    Attributes:
        geometry: One of :data:`GEOMETRIES`.
        fill: One of :data:`FILLS`.
        aspect: ``(x, y)`` stretch of the unit shape.
        ring: ``(radius, half_width)`` of the band for ring geometries.
        glow: Whether the shape glows by itself (like the ``glowing`` style).
    """

    geometry: str
    fill: str = "flat"
    aspect: tuple[float, float] = (1.0, 1.0)
    ring: tuple[float, float] = (0.74, 0.26)
    glow: bool = False


SHAPES: dict[str, ShapeDef] = {
    "circle": ShapeDef("circle"),
    "disc": ShapeDef("circle", "rim"),
    "ball": ShapeDef("circle", "highlight"),
    "sphere": ShapeDef("circle", "radial"),
    "orb": ShapeDef("circle", "radial", glow=True),
    "oval": ShapeDef("circle", aspect=(1.3, 0.8)),
    "ellipse": ShapeDef("circle", aspect=(1.45, 0.7)),
    "egg": ShapeDef("circle", "radial", aspect=(0.8, 1.08)),
    "square": ShapeDef("square"),
    "box": ShapeDef("square", "outline"),
    "cube": ShapeDef("square", "faces"),
    "rectangle": ShapeDef("square", aspect=(1.35, 0.72)),
    "block": ShapeDef("square", "faces", aspect=(1.35, 0.72)),
    "triangle": ShapeDef("triangle"),
    "pyramid": ShapeDef("triangle", "split"),
    "diamond": ShapeDef("diamond", aspect=(0.85, 1.1)),
    "gem": ShapeDef("diamond", "split", aspect=(0.85, 1.1)),
    "star": ShapeDef("star"),
    "hexagon": ShapeDef("hexagon"),
    "pentagon": ShapeDef("pentagon"),
    "ring": ShapeDef("ring"),
    "donut": ShapeDef("ring", "radial", ring=(0.64, 0.36)),
    "torus": ShapeDef("ring", "radial", ring=(0.7, 0.3), aspect=(1.2, 0.8)),
    "cross": ShapeDef("cross"),
}
SHAPE_ALIASES: dict[str, str] = {
    "disk": "disc",
    "doughnut": "donut",
    "rhombus": "diamond",
    "plus": "cross",
}
#: Shapes the seed draws from when a prompt names none (all of them, in table order).
SHAPE_NAMES: tuple[str, ...] = tuple(SHAPES)
#: Irregular plurals; regular ones just add "s" or "es".
PLURALS: dict[str, str] = {"boxes": "box", "crosses": "cross", "discs": "disc", "disks": "disc"}

# --------------------------------------------------------------------------------------------------
# size, position, count

#: Size word -> half-extent of one object as a fraction of the image side.
SIZES: dict[str, float] = {
    "tiny": 0.08,
    "small": 0.13,
    "little": 0.13,
    "medium": 0.2,
    "large": 0.28,
    "big": 0.28,
    "huge": 0.38,
    "giant": 0.4,
}
DEFAULT_SIZE: float = 0.2

#: Position words: horizontal anchor ("left"/"right"), vertical ("top"/"bottom"), or both.
HORIZONTAL: dict[str, str] = {"left": "left", "right": "right"}
VERTICAL: dict[str, str] = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom"}
CENTRE_WORDS: tuple[str, ...] = ("center", "centre", "middle")
CORNER_WORDS: tuple[str, ...] = ("corner",)
#: Canonical position name -> anchor ``(x, y)`` in image fractions (``None`` = seed-chosen corner).
POSITIONS: dict[str, tuple[float, float] | None] = {
    "center": (0.5, 0.5),
    "left": (0.28, 0.5),
    "right": (0.72, 0.5),
    "top": (0.5, 0.28),
    "bottom": (0.5, 0.72),
    "top left": (0.28, 0.28),
    "top right": (0.72, 0.28),
    "bottom left": (0.28, 0.72),
    "bottom right": (0.72, 0.72),
    "corner": None,
}
#: How :meth:`SceneSpec.to_prompt` says each position.
POSITION_PHRASES: dict[str, str] = {
    "center": "in the center",
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "top left": "in the top left",
    "top right": "in the top right",
    "bottom left": "in the bottom left",
    "bottom right": "in the bottom right",
    "corner": "in the corner",
}

#: Count words and phrases -> number of objects.
COUNTS: dict[str, int] = {
    "one": 1,
    "single": 1,
    "lone": 1,
    "two": 2,
    "pair of": 2,
    "couple of": 2,
    "twin": 2,
    "three": 3,
    "trio of": 3,
    "several": 3,
}
COUNT_WORDS: dict[int, str] = {1: "a", 2: "two", 3: "three"}

# --------------------------------------------------------------------------------------------------
# styles


@dataclass(frozen=True)
class StyleDef:
    """One style modifier.

    Attributes:
        name: Canonical name (also what ``to_prompt`` writes).
        doc: What it does to the render.
        aesthetic: Typical effect on the procedural aesthetic: ``"+"``, ``"-"``, ``"0"`` or
            ``"+/-"`` (depends on the subject).
        relevance: Typical effect on relevance to the un-styled prompt: ``"0"`` (kept), ``"-"``,
            ``"--"`` (destroyed).
        aliases: Other words or phrases that mean the same style.
    """

    name: str
    doc: str
    aesthetic: str
    relevance: str
    aliases: tuple[str, ...] = ()


# aesthetic / relevance: measured at 64 px, 16 seeds, on six subjects (red circle, blue square,
# two black triangles, yellow star on green, white ball on navy, gray cube): "+" / "-" when the
# aesthetic moves that way for all six, "+/-" when it depends on the subject; relevance to the
# un-styled prompt "0" (kept, mean change > -0.03), "-" (> -0.12) or "--" (destroyed).
_STYLE_LIST: tuple[StyleDef, ...] = (
    StyleDef(
        "vivid", "saturates object and background colours", "+/-", "0", ("vibrant", "saturated")
    ),
    StyleDef("high contrast", "pushes every colour away from mid grey", "+", "0", ("contrasty",)),
    StyleDef("centered", "moves the group to the exact centre", "+", "0", ("centred",)),
    StyleDef("vignette", "darkens the image corners by up to 25%", "0", "0"),
    StyleDef("sharp", "crisp half-pixel edges", "0", "0", ("crisp", "sharp focus")),
    StyleDef(
        "shaded",
        "sphere-like lighting on a flat shape; on an already shaded shape it darkens it",
        "+/-",
        "-",
        ("3d", "three dimensional"),
    ),
    StyleDef(
        "flat",
        "removes lighting, rims and highlights from the fill",
        "0",
        "0",
        ("flat colors", "flat colours"),
    ),
    StyleDef("outlined", "a dark outline around the object", "+/-", "0", ("outline",)),
    StyleDef("bright", "lightens object and background", "-", "-", ("light",)),
    StyleDef(
        "dark",
        "near-black background, darker object: good on bright colours",
        "+/-",
        "--",
        ("moody",),
    ),
    StyleDef("pastel", "mixes colours with white; pale complementary background", "+/-", "-"),
    StyleDef("soft", "softer edges and slightly muted colours", "+/-", "0", ("soft lighting",)),
    StyleDef("glowing", "a halo of the object colour", "+", "0", ("glow", "luminous")),
    StyleDef("striped", "diagonal darker stripes across the object", "+/-", "-", ("stripes",)),
    StyleDef("dotted", "white polka dots on the object", "-", "--", ("polka dot", "spotted")),
    StyleDef(
        "detailed",
        "fine dark hatching on the object",
        "+/-",
        "0",
        ("intricate", "highly detailed"),
    ),
    StyleDef("metallic", "grey, banded reflective sheen", "-", "0", ("chrome", "shiny")),
    StyleDef(
        "minimal",
        "one object only, no textures, plain background",
        "+/-",
        "-",
        ("minimalist", "simple"),
    ),
    StyleDef(
        "gradient", "background darkens towards the bottom", "+/-", "--", ("gradient background",)
    ),
    StyleDef(
        "rainbow",
        "the object is painted in rainbow hues over a rainbow arc (colour is lost)",
        "+",
        "--",
        ("colorful", "colourful", "multicolored"),
    ),
    StyleDef("neon", "a neon recolouring of the object, glowing on black", "+", "--"),
    StyleDef("psychedelic", "rainbow bands fill the background", "+", "--", ("trippy",)),
    StyleDef(
        "dramatic lighting",
        "a dark scene with a spotlight on the subject",
        "+/-",
        "--",
        ("dramatic", "cinematic lighting"),
    ),
    StyleDef("cinematic", "letterbox bars and a teal-orange grade", "+", "--"),
    StyleDef("foggy", "washes everything towards light grey", "-", "-", ("fog", "misty", "hazy")),
    StyleDef("blurry", "blurred edges and hazy colours", "-", "0", ("blurred", "out of focus")),
    StyleDef("grainy", "film grain over the whole image", "0", "0", ("noisy", "film grain")),
    StyleDef(
        "monochrome",
        "black and white",
        "-",
        "-",
        ("black and white", "grayscale", "greyscale"),
    ),
)
#: Canonical style name -> definition, in the fixed order styles are applied.
STYLES: dict[str, StyleDef] = {s.name: s for s in _STYLE_LIST}
#: Style names ordered for canonical prompts (alphabetical).
STYLE_ORDER: tuple[str, ...] = tuple(sorted(STYLES))

# --------------------------------------------------------------------------------------------------
# words that mean nothing here

#: Prompt-engineering tags with no effect in the shapes world (they are simply not in the vocabulary).
JUNK_PHRASES: tuple[str, ...] = (
    "trending on artstation",
    "8k",
    "4k",
    "hd",
    "masterpiece",
    "best quality",
    "by greg rutkowski",
    "by artgerm",
    "by alphonse mucha",
    "unreal engine",
    "octane render",
    "concept art",
    "digital painting",
    "award winning",
    "photorealistic",
    "studio quality",
)
#: Filler a noisy captioner puts in front of a caption.
CAPTION_PREFIXES: tuple[str, ...] = (
    "a picture of",
    "an image showing",
    "a photo of",
    "there is",
    "a drawing of",
    "a close up of",
)
