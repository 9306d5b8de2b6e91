"""Worlds: the data an env draws its episodes from, declared on each backend preset.

A backend renders and scores; a *world* says what there is to render: the target images of
ImageInversion, the user prompts and the modifier bank of the rewrite envs, the token env's
default tokenizer, and how a prompt's text-encoder tokens are counted. Each
:class:`~prompt_gym.backends.registry.BackendPreset` names its world (``preset.world``) and the
backend carries it (``backend.world``), so an env asks its backend's world for data and never
branches on the backend's name.

Two worlds ship:

* :data:`SHAPES_WORLD` (:class:`ShapesWorld`): targets and prompts are generated scenes of the
  shapes world, the modifier bank is ``data/modifiers_shapes.txt``, the token env uses a
  word-level tokenizer over the world's own text, and tokens are counted as words and marks
  (the shapes renderer has no tokenizer);
* :data:`TEXT_WORLD` and :data:`TINY_WORLD` (:class:`TextWorld`): the shipped prompt lists
  (``data/targets*.txt`` rendered by the backend on first use, ``data/prompts.txt`` with every
  fifth line held out, ``data/modifiers.txt``) for real models; they differ in the token env's
  tokenizer (GPT-2's, or its offline stand-in for the ``tiny`` preset).

Worlds are frozen dataclasses (configs are data): what they derive for one backend (a rendered
target set, a target's prompt space) is memoised by the envs, not here.
"""

from __future__ import annotations

import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from prompt_gym.backends.protocols import Generator, Target

SPLITS = ("train", "test", "all")
"""The prompt splits every world offers."""
TARGET_SEED_BASE = 10_000
"""Seeds of rendered targets are ``TARGET_SEED_BASE + index``: never equal to an episode seed by design."""
WORD_TOKENIZER = "words"
"""Tokenizer name of a closed word-level vocabulary over the world's own prompts and modifiers."""
_TOKEN = re.compile(r"[A-Za-z0-9']+|[^\sA-Za-z0-9']")


def shipped_lines(name: str) -> list[str]:
    """Non-empty, non-comment lines of ``prompt_gym/data/<name>.txt``.

    Raises:
        FileNotFoundError: If no such file ships.
    """
    text = resources.files("prompt_gym.data").joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def count_words(texts: Sequence[str]) -> list[int]:
    """Words and punctuation marks of each text, plus BOS and EOS: a stand-in for CLIP's BPE.

    >>> count_words(["a red circle, vivid"])
    [7]
    """
    return [len(_TOKEN.findall(t)) + 2 for t in texts]


class TargetSet:
    """The targets of one ``(level, size, seed)`` of a world, rendered on first use.

    Holds no backend, so the envs can share it per backend without keeping the backend alive:
    :meth:`get` takes the function that renders a target that is not made yet.

    Args:
        level: The level the targets were drawn for (part of a rendered target's id).
        prompts: Each target's prompt (its caption).
        targets: The targets made already, ``None`` where one is rendered on first use.
    """

    def __init__(self, level: str, prompts: list[str], targets: list[Target | None]) -> None:
        self.level, self.prompts, self._targets = level, prompts, targets

    def __len__(self) -> int:
        return len(self._targets)

    def get(self, index: int, generate: Callable[[list[str], list[int]], np.ndarray]) -> Target:
        """Target ``index``, rendered now with ``generate(prompts, seeds)`` if it is not made yet."""
        target = self._targets[index]
        if target is None:
            prompt = self.prompts[index]
            image = generate([prompt], [TARGET_SEED_BASE + index])[0]
            crc = zlib.crc32(prompt.encode())
            target = Target(
                image=image, caption=prompt, target_id=f"{self.level}-{index}-{crc:08x}"
            )
            self._targets[index] = target
        return target


@dataclass(frozen=True)
class World(ABC):
    """Where a backend's envs get their data (see the module docstring).

    Attributes:
        name: Shown in messages and ``prompt-gym list``.
        modifiers_file: The shipped modifier bank (``data/<modifiers_file>.txt``).
        tokenizer: The token env's default tokenizer: :data:`WORD_TOKENIZER`, or a name
            :func:`prompt_gym.envs.tokenizers.load_tokenizer` resolves.
        procedural: Whether the world renders in milliseconds on a CPU, so an agent may search
            it to make its own training data (LM-PPO's SFT pairs).
    """

    name: str
    modifiers_file: str
    tokenizer: str
    procedural: bool

    @abstractmethod
    def target_set(self, generator: Generator, level: str, size: int, seed: int) -> TargetSet:
        """The targets of a level for a backend with ``generator``.

        Raises:
            ValueError: For a level the world does not have or a size below 1.
        """

    @abstractmethod
    def prompts(self, split: str) -> list[str]:
        """The user prompts of a split (``train``, ``test`` or ``all``)."""

    def modifiers(self) -> list[str]:
        """The modifier bank."""
        return shipped_lines(self.modifiers_file)

    @abstractmethod
    def count_tokens(self, generator: Generator, texts: Sequence[str]) -> list[int]:
        """Text-encoder tokens of each text, BOS and EOS included."""


@dataclass(frozen=True)
class ShapesWorld(World):
    """The shapes world's scenes (:mod:`prompt_gym.backends.shapes.targets`).

    Targets are rendered at the generator's resolution and world version. The prompt sets are
    the canonical captions of ``per_level`` scenes of each of :attr:`prompt_levels`, drawn with
    seed 1 (train) or 2 (test, without any train prompt).
    """

    name: str = "shapes"
    modifiers_file: str = "modifiers_shapes"
    tokenizer: str = WORD_TOKENIZER
    procedural: bool = True
    prompt_levels: tuple[str, ...] = ("objects", "attributes", "background")
    per_level: int = 80

    def target_set(self, generator: Generator, level: str, size: int, seed: int) -> TargetSet:
        from prompt_gym.backends.shapes.targets import LEVELS, make_targets

        _check_size(size)
        if level not in LEVELS:
            raise ValueError(f"unknown target level {level!r}; shapes levels: {list(LEVELS)}")
        config = generator.config()
        resolution, world = int(config.get("resolution", 64)), int(config.get("world", 2))
        targets: list[Target | None] = list(make_targets(level, size, seed, resolution, world))
        return TargetSet(level, [t.caption or "" for t in targets], targets)

    def prompts(self, split: str) -> list[str]:
        _check_split(split)
        if split == "all":
            return list(dict.fromkeys(self._generate(1) + self._generate(2)))
        prompts = self._generate(1 if split == "train" else 2)
        if split == "test":
            seen = set(self._generate(1))
            prompts = [p for p in prompts if p not in seen]
        return prompts

    def _generate(self, seed: int) -> list[str]:
        from prompt_gym.backends.shapes.targets import make_targets

        out: list[str] = []
        for level in self.prompt_levels:
            out += [t.caption for t in make_targets(level, self.per_level, seed, resolution=16)]
        return list(dict.fromkeys(out))

    def count_tokens(self, generator: Generator, texts: Sequence[str]) -> list[int]:
        return count_words(texts)


@dataclass(frozen=True)
class TextWorld(World):
    """The shipped prompt lists, for real text-to-image models.

    The levels are the shapes world's names (so every id's default ``level`` works on every
    preset); another name is a ``ValueError`` when the env is made. Targets of a level are the
    prompts of ``data/targets_<level>.txt`` when it ships, else of ``data/targets.txt`` (the
    whole list: ``size`` and ``seed`` do not apply), rendered by the
    backend with seed ``TARGET_SEED_BASE + index`` when an episode first draws them. Every fifth
    line of ``data/prompts.txt`` is the test split. Tokens are the generator's count, or the word
    count where the generator does not know it (``-1``).
    """

    name: str = "text"
    modifiers_file: str = "modifiers"
    tokenizer: str = "gpt2"
    procedural: bool = False

    def target_set(self, generator: Generator, level: str, size: int, seed: int) -> TargetSet:
        from prompt_gym.backends.shapes.targets import LEVELS

        _check_size(size)
        if level not in LEVELS:
            raise ValueError(f"unknown target level {level!r}; {self.name} levels: {list(LEVELS)}")
        try:
            prompts = shipped_lines(f"targets_{level}")
        except FileNotFoundError:
            prompts = shipped_lines("targets")
        return TargetSet(level, prompts, [None] * len(prompts))

    def prompts(self, split: str) -> list[str]:
        _check_split(split)
        lines = shipped_lines("prompts")
        if split == "all":
            return lines
        return [p for i, p in enumerate(lines) if (i % 5 == 4) == (split == "test")]

    def count_tokens(self, generator: Generator, texts: Sequence[str]) -> list[int]:
        counts = [int(n) for n in generator.count_tokens(texts)]
        if min(counts, default=0) >= 0:
            return counts
        words = count_words(texts)
        return [n if n >= 0 else w for n, w in zip(counts, words, strict=True)]


def _check_size(size: int) -> None:
    if size < 1:
        raise ValueError(f"target set size must be >= 1, got {size}")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


SHAPES_WORLD = ShapesWorld()
"""The world of the ``shapes`` and ``shapes-v3`` presets."""
TEXT_WORLD = TextWorld()
"""The world of the real presets (and of a backend built without one)."""
TINY_WORLD = TextWorld(name="text-tiny", tokenizer="tiny-gpt2")
"""The shipped data with the token env's offline tokenizer: the world of the ``tiny`` preset."""
