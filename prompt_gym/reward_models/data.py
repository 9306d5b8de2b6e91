"""Reward-model examples from a score dataset: texts and their mean true scores."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

TARGETS = ("aesthetic", "pickscore")
"""What a text reward model predicts: ``aesthetic`` from ``y``; ``pickscore`` from ``(x, y)``."""


def rm_text(target: str, source: str, prompt: str) -> str:
    """The reward model's input text (BeautifulPrompt's formats).

    >>> rm_text("aesthetic", "a cat", "a cat, vivid")
    'a cat, vivid'
    >>> rm_text("pickscore", "a cat", "a cat, vivid")
    'Input: a cat\\nOutput: a cat, vivid'
    """
    check_target(target)
    return prompt if target == "aesthetic" else f"Input: {source}\nOutput: {prompt}"


def check_target(target: str) -> None:
    """Raise ``ValueError`` unless ``target`` is one of :data:`TARGETS`."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")


def rm_examples(
    rows: Iterable[dict[str, Any]], target: str
) -> tuple[list[str], np.ndarray, list[str]]:
    """One example per distinct ``(source, prompt)`` of the ``"rewrite"`` rows.

    The label is the mean over the pair's valid images (seeds) of the target column, as
    BeautifulPrompt averages PickScore over 8 seeds. Rows without the column are skipped.

    Returns:
        ``(texts, labels, sources)``: the inputs (:func:`rm_text`), ``float64`` labels, and each
        example's source prompt (for a split by source).

    Raises:
        ValueError: For an unknown target, or when no row has the target score.
    """
    check_target(target)
    sums: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        if row.get("kind") != "rewrite" or row.get(target) is None or not row.get("valid", True):
            continue
        sums.setdefault((row["source"], row["prompt"]), []).append(float(row[target]))
    if not sums:
        raise ValueError(
            f"the dataset has no 'rewrite' rows with a {target!r} score; export one with "
            "`prompt-gym export` (PickScore needs a backend with a preference scorer)"
        )
    keys = sorted(sums)
    texts = [rm_text(target, s, p) for s, p in keys]
    labels = np.array([np.mean(sums[k]) for k in keys], dtype=np.float64)
    return texts, labels, [s for s, _ in keys]


def split_by_source(sources: list[str], holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out example indices, splitting the *source prompts* (no source in both).

    >>> tr, te = split_by_source(["a", "a", "b", "c"], 0.34, 0)
    >>> sorted([*tr.tolist(), *te.tolist()]), len(te) > 0
    ([0, 1, 2, 3], True)
    """
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be in (0, 1), got {holdout}")
    unique = sorted(set(sources))
    if len(unique) < 2:
        raise ValueError("a held-out split needs examples of at least two source prompts")
    order = np.random.default_rng(seed).permutation(len(unique))
    n_test = min(len(unique) - 1, max(1, round(holdout * len(unique))))
    test = {unique[i] for i in order[:n_test]}
    is_test = np.array([s in test for s in sources])
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)
