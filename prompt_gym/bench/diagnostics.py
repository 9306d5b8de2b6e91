"""Diagnostics of an agent's final prompts that expose degenerate policies.

A score alone cannot tell a policy that adapts to each episode from one that always writes
the same prompt (or always runs to the token limit). These numbers can:

* :func:`distinct_fraction`: distinct final prompts per episode; a constant policy has ``1 / N``.
* :func:`mean_length`: words per final prompt, to compare with the oracle's.
* :func:`stop_rate`: the fraction of episodes the agent ended itself (STOP or EOS) instead of
  running into the token limit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD_SEP = re.compile(r"[\s,]+")


def _check_nonempty(items: Sequence[object], what: str) -> None:
    if len(items) == 0:
        raise ValueError(f"{what} of no episodes is undefined; pass at least one episode")


def words(prompt: str) -> list[str]:
    """A prompt's words: split on whitespace and commas, empty pieces dropped.

    >>> words("a red circle, blue square,,  small")
    ['a', 'red', 'circle', 'blue', 'square', 'small']
    """
    return [w for w in _WORD_SEP.split(prompt) if w]


def distinct_fraction(prompts: Sequence[str]) -> float:
    """Number of distinct final prompts divided by the number of episodes.

    Raises:
        ValueError: If there are no episodes.

    >>> distinct_fraction(["a cat", "a cat", "a dog", "a cat"])
    0.5
    """
    _check_nonempty(prompts, "distinct_fraction")
    return len(set(prompts)) / len(prompts)


def mean_length(prompts: Sequence[str]) -> float:
    """Mean number of :func:`words` per prompt.

    Raises:
        ValueError: If there are no episodes.

    >>> mean_length(["a red circle", "square,blue", ""])
    1.6666666666666667
    """
    _check_nonempty(prompts, "mean_length")
    return sum(len(words(p)) for p in prompts) / len(prompts)


def stop_rate(stopped: Sequence[bool]) -> float:
    """Fraction of episodes that ended by the agent's STOP action, not by the token limit.

    Raises:
        ValueError: If there are no episodes.

    >>> stop_rate([True, False, True, True])
    0.75
    """
    _check_nonempty(stopped, "stop_rate")
    return sum(bool(s) for s in stopped) / len(stopped)


def diagnostics(
    prompts: Sequence[str],
    stopped: Sequence[bool],
    oracle_prompts: Sequence[str] | None = None,
) -> dict[str, float]:
    """All diagnostics of one set of evaluation episodes.

    Args:
        prompts: The final prompt of each episode.
        stopped: Whether each episode ended by the agent's STOP action.
        oracle_prompts: The oracle's prompts on the same episodes, if any.

    Returns:
        ``distinct_fraction``, ``mean_length`` and ``stop_rate``, plus ``oracle_mean_length``
        when ``oracle_prompts`` is given.

    Raises:
        ValueError: If there are no episodes or ``stopped`` does not have one entry per prompt.

    >>> diagnostics(["a cat", "a cat"], [False, False], oracle_prompts=["a black cat", "a dog"])
    {'distinct_fraction': 0.5, 'mean_length': 2.0, 'stop_rate': 0.0, 'oracle_mean_length': 2.5}
    """
    if len(stopped) != len(prompts):
        raise ValueError(
            f"need one stopped flag per prompt, got {len(stopped)} flags for {len(prompts)} prompts"
        )
    out = {
        "distinct_fraction": distinct_fraction(prompts),
        "mean_length": mean_length(prompts),
        "stop_rate": stop_rate(stopped),
    }
    if oracle_prompts is not None:
        out["oracle_mean_length"] = mean_length(oracle_prompts)
    return out
