"""The shapes-world captioner: imperfect captions of a target, as BLIP would write them.

Targets with a :class:`~prompt_gym.backends.shapes.scene.SceneSpec` are described from the spec,
then degraded, independently per caption and per attribute:

* ``synonym_prob``: a word is swapped for a near word that renders *differently* (``sphere`` ->
  ``ball``, ``square`` -> ``box``, ``red`` -> ``crimson``, ``large`` -> ``huge``, ...);
* ``drop_prob``: an attribute is left out (size, position, background, count, each style; the
  colour with half and the shape with a third of that probability);
* ``wrong_colour_prob``: the colour is replaced by an unrelated one;
* ``distractor_prob``: filler is added, in front ("a picture of", "an image showing", ...) or
  behind ("8k", "trending on artstation", ...), which the renderer ignores.

With every probability 0 the caption is the canonical prompt ``spec.to_prompt()``.

Targets without a spec (a user's image) are captioned by ranking vocabulary phrases with the
scorer, like CLIP-interrogator: the colour and shape words most similar to the image, the best of
their pairs, then a background, size, position or style phrase when it raises the similarity.
The ``n`` captions walk down that ranking and are noised as above (synonyms excepted).

Captions are a pure function of (target, n, seed, configuration): each target's random stream
is keyed by its ``target_id`` (or its canonical prompt, or its image bytes), never by the batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from prompt_gym.backends.protocols import Target
from prompt_gym.backends.shapes import vocab
from prompt_gym.backends.shapes.features import check_images
from prompt_gym.backends.shapes.scene import SceneSpec, parse_prompt, plural_of

VERSION = "1"
#: Near words a noisy captioner confuses; each renders differently from the original.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "circle": ("disc", "ball", "sphere"),
    "disc": ("circle", "disk", "ball"),
    "ball": ("sphere", "circle", "orb"),
    "sphere": ("ball", "orb", "circle"),
    "orb": ("sphere", "ball"),
    "oval": ("ellipse", "egg"),
    "ellipse": ("oval", "egg"),
    "egg": ("oval", "sphere"),
    "square": ("box", "cube", "block"),
    "box": ("square", "cube"),
    "cube": ("box", "block", "square"),
    "rectangle": ("block", "square"),
    "block": ("rectangle", "cube"),
    "triangle": ("pyramid",),
    "pyramid": ("triangle",),
    "diamond": ("gem", "rhombus"),
    "gem": ("diamond",),
    "star": ("star",),
    "hexagon": ("pentagon",),
    "pentagon": ("hexagon",),
    "ring": ("donut", "circle"),
    "donut": ("ring", "torus"),
    "torus": ("donut", "ring"),
    "cross": ("plus",),
    "red": ("crimson", "maroon"),
    "crimson": ("red",),
    "maroon": ("red", "brown"),
    "orange": ("gold",),
    "yellow": ("gold",),
    "gold": ("yellow", "orange"),
    "lime": ("green",),
    "green": ("lime", "olive", "teal"),
    "olive": ("green",),
    "teal": ("cyan", "green"),
    "cyan": ("teal", "blue"),
    "blue": ("navy", "cyan"),
    "navy": ("blue",),
    "purple": ("violet", "magenta"),
    "violet": ("purple",),
    "magenta": ("pink", "purple"),
    "pink": ("magenta",),
    "brown": ("maroon", "orange"),
    "black": ("gray",),
    "white": ("gray",),
    "gray": ("grey", "white", "black"),
    "tiny": ("small",),
    "small": ("tiny", "little"),
    "little": ("small",),
    "medium": ("large",),
    "large": ("big", "huge"),
    "big": ("large", "huge"),
    "huge": ("giant", "large"),
    "giant": ("huge",),
}
_JUNK = vocab.JUNK_PHRASES


def _stable_key(target: Target) -> bytes:
    if target.target_id:
        return target.target_id.encode()
    if isinstance(target.spec, SceneSpec):
        return target.spec.to_prompt().encode()
    return hashlib.sha256(np.ascontiguousarray(target.image).tobytes()).digest()


def _rng(seed: int, target: Target, j: int) -> np.random.Generator:
    digest = hashlib.sha256(_stable_key(target) + f"|{seed}|{j}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


class ShapesCaptioner:
    """Noisy captioner of the shapes world (see the module docstring).

    Args:
        synonym_prob: Chance that a colour, shape or size word is swapped for a near word.
        drop_prob: Chance that an attribute is left out.
        distractor_prob: Chance of adding a filler prefix, and (separately) a junk suffix.
        wrong_colour_prob: Chance that the colour is replaced by an unrelated one.
        scorer: Scorer used for spec-less targets; a default ``ShapesScorer`` when ``None``.

    Raises:
        ValueError: If a probability is outside ``[0, 1]``.
    """

    def __init__(
        self,
        synonym_prob: float = 0.3,
        drop_prob: float = 0.2,
        distractor_prob: float = 0.3,
        wrong_colour_prob: float = 0.05,
        scorer: Any = None,
    ) -> None:
        probs = {
            "synonym_prob": synonym_prob,
            "drop_prob": drop_prob,
            "distractor_prob": distractor_prob,
            "wrong_colour_prob": wrong_colour_prob,
        }
        for name, value in probs.items():
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.synonym_prob = float(synonym_prob)
        self.drop_prob = float(drop_prob)
        self.distractor_prob = float(distractor_prob)
        self.wrong_colour_prob = float(wrong_colour_prob)
        self._scorer = scorer

    @property
    def scorer(self) -> Any:
        """The scorer used for spec-less targets (created on first use)."""
        if self._scorer is None:
            from prompt_gym.backends.shapes.scorer import ShapesScorer

            self._scorer = ShapesScorer()
        return self._scorer

    def config(self) -> dict[str, Any]:
        """Every parameter that changes a caption."""
        return {
            "name": "shapes",
            "version": VERSION,
            "synonym_prob": self.synonym_prob,
            "drop_prob": self.drop_prob,
            "distractor_prob": self.distractor_prob,
            "wrong_colour_prob": self.wrong_colour_prob,
        }

    def caption(self, targets: Sequence[Target], n: int, seed: int = 0) -> list[list[str]]:
        """Return ``n`` captions for each target, in target order.

        Raises:
            ValueError: If ``n`` or ``seed`` is negative or not an int, or a target is not a
                :class:`Target` with a ``uint8 (H, W, 3)`` image.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        targets = list(targets)
        for i, t in enumerate(targets):
            if not isinstance(t, Target):
                raise ValueError(f"target {i} must be a Target, got {type(t).__name__}")
        out: list[list[str]] = []
        for t in targets:
            if isinstance(t.spec, SceneSpec):
                out.append([self._noisy(t.spec, _rng(seed, t, j), True) for j in range(n)])
            else:
                out.append(self._interrogate(t, n, seed))
        return out

    # ------------------------------------------------------------------------------ from a spec

    def _noisy(self, spec: SceneSpec, rng: np.random.Generator, synonyms: bool) -> str:
        def swap(word: str | None) -> str | None:
            if word is None or not synonyms or rng.random() >= self.synonym_prob:
                return word
            options = SYNONYMS.get(word, (word,))
            return options[int(rng.integers(len(options)))]

        def keep(scale: float = 1.0) -> bool:
            return rng.random() >= self.drop_prob * scale

        colour, shape, size = swap(spec.colour), swap(spec.shape), swap(spec.size)
        if colour is not None and rng.random() < self.wrong_colour_prob:
            others = [c for c in vocab.COLOUR_NAMES if c != spec.colour]
            colour = others[int(rng.integers(len(others)))]
        count = spec.count if keep() else 1
        words: list[str] = []
        if count is not None:
            words.append(vocab.COUNT_WORDS[count])
        if size is not None and keep():
            words.append(size)
        if colour is not None and keep(0.5):
            words.append(colour)
        if shape is not None and keep(1 / 3):
            words.append(plural_of(shape) if count != 1 else shape)
        if spec.position is not None and keep():
            words.append(vocab.POSITION_PHRASES[spec.position])
        if spec.background is not None and keep():
            words.append(f"on a {spec.background} background")
        if words and words[0] == "a" and len(words) > 1 and words[1][0] in "aeiou":
            words[0] = "an"
        text = " ".join(words)
        styles = [s for s in spec.styles if keep()]
        if styles:
            text = ", ".join([text, *styles])
        if rng.random() < self.distractor_prob:
            prefix = vocab.CAPTION_PREFIXES[int(rng.integers(len(vocab.CAPTION_PREFIXES)))]
            text = f"{prefix} {text}"
        if rng.random() < self.distractor_prob:
            text = f"{text}, {_JUNK[int(rng.integers(len(_JUNK)))]}"
        return text.strip()

    # ------------------------------------------------------------------------- from the pixels

    def _interrogate(self, target: Target, n: int, seed: int) -> list[str]:
        image = check_images(np.asarray(target.image)[None])
        if n == 0:
            return []
        scorer = self.scorer
        img = scorer.embed_images(image)[0]

        def similarity(phrases: list[str]) -> np.ndarray:
            return scorer.embed_texts(phrases) @ img

        def top(phrases: list[str], k: int) -> list[str]:
            order = np.argsort(-similarity(phrases), kind="stable")
            return [phrases[i] for i in order[:k]]

        colours = top(list(vocab.COLOUR_NAMES), 3)
        shapes = top(list(vocab.SHAPE_NAMES), 3)
        subjects = top([f"{c} {s}" for c in colours for s in shapes], 9)
        best = subjects[0]
        extras = [f"{best} on a {c} background" for c in vocab.COLOUR_NAMES]
        extras += [f"{best} {vocab.POSITION_PHRASES[p]}" for p in vocab.POSITIONS if p != "corner"]
        extras += [f"{size} {best}" for size in vocab.SIZES]
        extras += [f"{best}, {style}" for style in vocab.STYLES]
        sims = similarity(extras)
        gain = sims.max() - similarity([best])[0]
        extra = extras[int(np.argmax(sims))][len(best) :] if gain > 0.005 else ""
        captions = []
        for j in range(n):
            subject = subjects[j % len(subjects)]
            text = (
                f"{extra.strip()} {subject}"
                if extra and not extra.startswith((" ", ","))
                else (subject + extra)
            )
            captions.append(self._noisy(parse_prompt(text), _rng(seed, target, j), False))
        return captions
