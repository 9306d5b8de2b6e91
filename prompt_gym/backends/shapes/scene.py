"""Scene specs: what a prompt says about a shapes-world image, and the canonical prompt for it.

:func:`parse_prompt` turns free text into a :class:`SceneSpec`; :meth:`SceneSpec.to_prompt` writes
the canonical prompt back, and ``parse_prompt(spec.to_prompt()) == spec`` for every spec.

Parsing rules (the vocabulary is in :mod:`prompt_gym.backends.shapes.vocab`):

* lower-case; every character other than a letter or a digit is a space;
* at each word, the longest known phrase (up to three words) wins; unknown words are skipped;
* the first shape word is the subject; the first colour word is its colour, unless it stands
  right before "background" / "backdrop" / "gradient", or right after "on"
  ("on blue", "on a blue") without a shape word following it: then it colours the background;
* the first size word and the first count word win; a plural shape word without a count means
  two or three objects (``count=None``, the seed decides);
* a horizontal and a vertical position word combine ("top" + "left" = "top left");
* styles are a set, stored sorted.

>>> parse_prompt("Two huge RED spheres, top-left, on a blue background; vivid, 8k")
SceneSpec(shape='sphere', colour='red', background='blue', size='huge', position='top left', \
count=2, styles=('vivid',))
>>> parse_prompt("trending on artstation") == SceneSpec()
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from prompt_gym.backends.shapes import vocab


@dataclass(frozen=True)
class SceneSpec:
    """What a prompt specifies about a scene; ``None`` means "left to the seed".

    Attributes:
        shape: Shape word (a key of :data:`vocab.SHAPES`) or ``None``.
        colour: Object colour (a key of :data:`vocab.COLOURS`) or ``None``.
        background: Background colour or ``None`` (plain off-white).
        size: Size word (a key of :data:`vocab.SIZES`) or ``None`` (medium, more jitter).
        position: A key of :data:`vocab.POSITIONS` or ``None`` (near the centre).
        count: 1, 2 or 3 objects; ``None`` means a plural without a number (2 or 3 by seed).
        styles: Canonical style names, sorted.
    """

    shape: str | None = None
    colour: str | None = None
    background: str | None = None
    size: str | None = None
    position: str | None = None
    count: int | None = 1
    styles: tuple[str, ...] = ()

    def to_prompt(self) -> str:
        """Return the canonical prompt for this spec.

        >>> SceneSpec("box", "red", "blue", "large", "left", 2, ("glowing", "vivid")).to_prompt()
        'two large red boxes on the left on a blue background, glowing, vivid'
        """
        plural = self.count != 1
        words = [vocab.COUNT_WORDS[self.count]] if self.count is not None else []
        words += [w for w in (self.size, self.colour) if w is not None]
        if self.shape is not None:
            words.append(plural_of(self.shape) if plural else self.shape)
        if self.position is not None:
            words.append(vocab.POSITION_PHRASES[self.position])
        if self.background is not None:
            words.append(f"on a {self.background} background")
        if words and words[0] == "a" and len(words) > 1 and words[1][0] in "aeiou":
            words[0] = "an"
        text = " ".join(words)
        return ", ".join([text, *self.styles]) if self.styles else text

    def words(self) -> list[str]:
        """The content words of the canonical prompt (no articles), e.g. for captioners."""
        return [w for w in re.split(r"[ ,]+", self.to_prompt()) if w and w not in ("a", "an")]


def plural_of(shape: str) -> str:
    """Return the plural of a shape word.

    >>> plural_of("box"), plural_of("sphere"), plural_of("cross")
    ('boxes', 'spheres', 'crosses')
    """
    return shape + "es" if shape.endswith(("x", "s", "sh", "ch")) else shape + "s"


def _build_phrases() -> dict[tuple[str, ...], tuple[str, object]]:
    table: dict[tuple[str, ...], tuple[str, object]] = {}

    def add(phrase: str, kind: str, value: object) -> None:
        table[tuple(phrase.split())] = (kind, value)

    for word in vocab.COLOURS:
        add(word, "colour", word)
    for word, target in vocab.COLOUR_ALIASES.items():
        add(word, "colour", target)
    for word in vocab.SHAPES:
        add(word, "shape", (word, False))
        add(plural_of(word), "shape", (word, True))
    for word, target in vocab.SHAPE_ALIASES.items():
        add(word, "shape", (target, False))
        add(plural_of(word), "shape", (target, True))
    for word, target in vocab.PLURALS.items():
        add(word, "shape", (target, True))
    for word in vocab.SIZES:
        add(word, "size", word)
    for word, side in vocab.HORIZONTAL.items():
        add(word, "horizontal", side)
    for word, side in vocab.VERTICAL.items():
        add(word, "vertical", side)
    for word in vocab.CENTRE_WORDS:
        add(word, "centre", "center")
    for word in vocab.CORNER_WORDS:
        add(word, "corner", "corner")
    for phrase, n in vocab.COUNTS.items():
        add(phrase, "count", n)
    for word in vocab.BACKGROUND_NOUNS:
        add(word, "background_noun", word)
    add("on", "on", "on")
    for style in vocab.STYLES.values():
        for phrase in (style.name, *style.aliases):
            add(phrase, "style", style.name)
    return table


_PHRASES = _build_phrases()
_LONGEST: dict[str, int] = {}
"""First word -> number of words of the longest phrase that starts with it."""
for _phrase in _PHRASES:
    _LONGEST[_phrase[0]] = max(_LONGEST.get(_phrase[0], 0), len(_phrase))
_SKIPPABLE_AFTER_ON = ("a", "an", "the")
_SEPARATORS = str.maketrans(
    {chr(c): " " for c in range(128) if not (chr(c).isascii() and chr(c).isalnum())}
)
"""Every ASCII character other than a letter or a digit -> a space (for ASCII text)."""


def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and split it into words; punctuation separates words.

    >>> tokenize("A red-circle, on a BLUE background!")
    ['a', 'red', 'circle', 'on', 'a', 'blue', 'background']
    """
    if text.isascii():  # the same split, without the regular expression
        return text.lower().translate(_SEPARATORS).split()
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def match_phrases(text: str) -> list[tuple[str, object, int]]:
    """Return the known phrases of ``text`` as ``(kind, value, word_index)``, in order.

    Unknown words appear as ``("word", word, index)`` so that adjacency rules can see them.

    >>> [kind for kind, _, _ in match_phrases("two red balls, very shiny")]
    ['count', 'colour', 'shape', 'word', 'style']
    """
    words = tokenize(text)
    out: list[tuple[str, object, int]] = []
    i, end = 0, len(words)
    while i < end:
        word = words[i]
        longest = _LONGEST.get(word, 0)  # only phrases that start with this word can match
        if longest == 1:
            kind, value = _PHRASES[(word,)]
            out.append((kind, value, i))
            i += 1
            continue
        for n in range(min(longest, end - i), 0, -1):  # the longest phrase first
            hit = _PHRASES.get(tuple(words[i : i + n]))
            if hit is not None:
                out.append((hit[0], hit[1], i))
                i += n
                break
        else:
            out.append(("word", word, i))
            i += 1
    return out


@lru_cache(maxsize=65536)
def parse_prompt(text: str) -> SceneSpec:
    """Parse a free-text prompt into a :class:`SceneSpec` (cached per string).

    Args:
        text: Any prompt; unknown words are ignored.

    Returns:
        The spec; an empty or all-junk prompt gives ``SceneSpec()`` (everything left to the seed).

    Raises:
        ValueError: If ``text`` is not a string.

    >>> parse_prompt("a glowing orb in the upper right corner on black").background
    'black'
    """
    if not isinstance(text, str):
        raise ValueError(f"prompt must be a str, got {type(text).__name__}: {text!r}")
    items = match_phrases(text)
    shape = colour = background = size = horizontal = vertical = None
    count: int | None = None
    plural = centre = corner = False
    styles: set[str] = set()
    for j, (kind, value, _) in enumerate(items):
        if kind == "colour":
            if is_background_colour(items, j):
                background = background or value
            else:
                colour = colour or value
        elif kind == "shape":
            if shape is None:
                shape, plural = value
        elif kind == "size":
            size = size or value
        elif kind == "count":
            count = value if count is None else count
        elif kind == "horizontal":
            horizontal = horizontal or value
        elif kind == "vertical":
            vertical = vertical or value
        elif kind == "centre":
            centre = True
        elif kind == "corner":
            corner = True
        elif kind == "style":
            styles.add(value)
    if horizontal or vertical:
        position = " ".join(p for p in (vertical, horizontal) if p)
    elif corner:
        position = "corner"
    elif centre:
        position = "center"
    else:
        position = None
    if count is None and not plural:
        count = 1
    return SceneSpec(shape, colour, background, size, position, count, tuple(sorted(styles)))


SceneKey = tuple[object, ...]
"""A spec's fields as a plain tuple: equal keys, equal specs (and cheap to hash)."""


@lru_cache(maxsize=65536)
def scene_key(text: str) -> SceneKey:
    """The :class:`SceneSpec` of ``text`` as a tuple of its fields (cached per string).

    >>> scene_key("a red circle") == scene_key("red circle, 8k")
    True
    """
    return spec_key(parse_prompt(text))


def spec_key(spec: SceneSpec) -> SceneKey:
    """A spec's fields as a plain tuple (see :data:`SceneKey`)."""
    return (
        spec.shape,
        spec.colour,
        spec.background,
        spec.size,
        spec.position,
        spec.count,
        spec.styles,
    )


def is_background_colour(items: list[tuple[str, object, int]], j: int) -> bool:
    """Whether the colour at ``items[j]`` names the background (see the module rules)."""
    nxt = items[j + 1] if j + 1 < len(items) else None
    if nxt is not None and nxt[0] == "background_noun":
        return True
    if nxt is not None and nxt[:2] == ("style", "gradient"):
        return True
    k = j - 1
    while k >= 0 and items[k][0] == "word" and items[k][1] in _SKIPPABLE_AFTER_ON:
        k -= 1
    after_on = k >= 0 and items[k][0] == "on"
    return after_on and (nxt is None or nxt[0] != "shape")
