"""User prompts and modifier banks for the rewrite envs.

The shapes world generates its prompt set from its own scene generator (train and test use
different seeds and share no prompt); real ids use the shipped ``data/prompts.txt`` (every fifth
line is the test split) or a user file.
"""

from __future__ import annotations

import re
from pathlib import Path

from prompt_gym.backends import RewardBackend
from prompt_gym.envs.targets import is_shapes, shipped_prompts

SPLITS = ("train", "test", "all")
SHAPES_PROMPT_LEVELS = ("objects", "attributes", "background")
_SPLIT_SEEDS = {"train": 1, "test": 2}
_TOKEN = re.compile(r"[A-Za-z0-9']+|[^\sA-Za-z0-9']")


def _read_lines(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"prompt file {path} does not exist")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _shapes_prompts(split: str, per_level: int = 80) -> list[str]:
    from prompt_gym.backends.shapes.targets import make_targets

    def generate(seed: int) -> list[str]:
        out: list[str] = []
        for level in SHAPES_PROMPT_LEVELS:
            out += [t.caption for t in make_targets(level, per_level, seed, resolution=16)]
        return list(dict.fromkeys(out))

    if split == "all":
        return list(dict.fromkeys(generate(_SPLIT_SEEDS["train"]) + generate(_SPLIT_SEEDS["test"])))
    prompts = generate(_SPLIT_SEEDS[split])
    if split == "test":
        seen = set(generate(_SPLIT_SEEDS["train"]))
        prompts = [p for p in prompts if p not in seen]
    return prompts


def load_prompts(
    backend: RewardBackend, split: str = "train", prompts: str | Path | list[str] | None = None
) -> list[str]:
    """The user prompts an episode draws from.

    Args:
        backend: The env's backend (the shapes world generates its own prompts).
        split: ``train``, ``test`` or ``all``.
        prompts: A list of prompts or a path to a text file (one per line, ``#`` comments),
            used as given (``split`` is ignored).

    Raises:
        ValueError: For an unknown split, a missing file, or an empty prompt list.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if prompts is not None:
        out = list(prompts) if isinstance(prompts, list | tuple) else _read_lines(prompts)
        if not all(isinstance(p, str) for p in out):
            raise ValueError("every prompt must be a str")
    elif is_shapes(backend):
        out = _shapes_prompts(split)
    else:
        lines = shipped_prompts("prompts")
        if split == "all":
            out = lines
        else:
            out = [p for i, p in enumerate(lines) if (i % 5 == 4) == (split == "test")]
    if not out:
        raise ValueError("the prompt list is empty")
    return out


def load_modifiers(
    backend: RewardBackend, modifiers: str | Path | list[str] | None = None
) -> list[str]:
    """The modifier bank: a given list or file, else the shipped bank for the backend kind.

    Raises:
        ValueError: For a missing file, an empty bank, or duplicate modifiers.
    """
    if modifiers is None:
        out = shipped_prompts("modifiers_shapes" if is_shapes(backend) else "modifiers")
    elif isinstance(modifiers, list | tuple):
        out = list(modifiers)
    else:
        out = _read_lines(modifiers)
    if not out:
        raise ValueError("the modifier bank is empty")
    if len(set(out)) != len(out):
        raise ValueError("the modifier bank has duplicates")
    return out


def count_tokens(backend: RewardBackend, texts: list[str]) -> list[int]:
    """Text-encoder tokens of each text, BOS and EOS included.

    Uses the generator's own tokenizer when it has one (``count_tokens``), else counts words and
    punctuation marks (a close stand-in for CLIP's BPE on plain English).

    >>> from prompt_gym import make_backend
    >>> count_tokens(make_backend("shapes"), ["a red circle, vivid"])
    [7]
    """
    counter = getattr(backend.generator, "count_tokens", None)
    if counter is not None:
        return [int(n) for n in counter(texts)]
    return [len(_TOKEN.findall(t)) + 2 for t in texts]
