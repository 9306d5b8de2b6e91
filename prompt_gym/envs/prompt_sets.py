"""User prompts and modifier banks of the rewrite envs, from the backend's world or the user.

The world (:mod:`prompt_gym.backends.world`) ships the defaults: the shapes world generates its
prompt sets from its own scene generator (train and test use different seeds and share no
prompt), the text world of the real presets reads ``data/prompts.txt`` (every fifth line is the
test split). A user list or file replaces them.
"""

from __future__ import annotations

from pathlib import Path

from prompt_gym.backends import RewardBackend
from prompt_gym.backends.world import SPLITS


def _read_lines(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"prompt file {path} does not exist")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def load_prompts(
    backend: RewardBackend, split: str = "train", prompts: str | Path | list[str] | None = None
) -> list[str]:
    """The user prompts an episode draws from.

    Args:
        backend: The env's backend (its world ships the default prompt sets).
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
    else:
        out = backend.world.prompts(split)
    if not out:
        raise ValueError("the prompt list is empty")
    return out


def load_modifiers(
    backend: RewardBackend, modifiers: str | Path | list[str] | None = None
) -> list[str]:
    """The modifier bank: a given list or file, else the bank of the backend's world.

    Raises:
        ValueError: For a missing file, an empty bank, or duplicate modifiers.
    """
    if modifiers is None:
        out = backend.world.modifiers()
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
    """Text-encoder tokens of each text, BOS and EOS included, as the backend's world counts them.

    The shapes world counts words and punctuation marks (a close stand-in for CLIP's BPE on
    plain English); a real world asks the generator's tokenizer.

    >>> from prompt_gym import make_backend
    >>> count_tokens(make_backend("shapes"), ["a red circle, vivid"])
    [7]
    """
    return backend.world.count_tokens(backend.generator, texts)
