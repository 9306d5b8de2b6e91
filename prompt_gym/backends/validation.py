"""Boundary checks for backend requests: one clear ``ValueError``, before any work starts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_SEED = 2**63 - 1


def check_texts(texts: Sequence[str], what: str = "prompt") -> list[str]:
    """Return ``texts`` as a list after checking every item is a ``str`` of valid Unicode.

    A text that cannot be encoded as UTF-8 (a lone surrogate such as ``"\\ud800"``, e.g. from
    ``surrogateescape`` decoding) is rejected, with or without a cache.

    >>> check_texts(["a", "b"])
    ['a', 'b']
    >>> check_texts(["ok", "bad \\ud800"])
    Traceback (most recent call last):
    ...
    ValueError: prompt 1 is not valid Unicode: lone surrogate '\\ud800' at position 4; remove or replace it, e.g. prompt.encode('utf-8', 'replace').decode()
    """
    if isinstance(texts, str):
        raise ValueError(f"expected a sequence of {what}s, got a single string {texts!r}")
    texts = list(texts)
    if not all(type(text) is str for text in texts):  # the common case, checked in one pass
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(f"{what} {i} must be a str, got {type(text).__name__}: {text!r}")
    try:
        "".join(texts).encode("utf-8")  # one pass; only a lone surrogate fails
    except UnicodeEncodeError:
        for i, text in enumerate(texts):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as err:
                raise ValueError(
                    f"{what} {i} is not valid Unicode: lone surrogate {text[err.start]!r} at "
                    f"position {err.start}; remove or replace it, e.g. "
                    f"{what}.encode('utf-8', 'replace').decode()"
                ) from None
    return texts


def check_requests(prompts: Sequence[str], seeds: Sequence[int]) -> tuple[list[str], list[int]]:
    """Validate a batch of (prompt, seed) requests and return them as plain lists.

    Raises:
        ValueError: If a prompt is not a string of valid Unicode (no lone surrogates), a seed
            is not an integer in ``[0, 2**63)``, or the two sequences differ in length.

    >>> check_requests(["red circle"], [3])
    (['red circle'], [3])
    """
    prompts = check_texts(prompts)
    seeds = list(seeds)
    if len(prompts) != len(seeds):
        raise ValueError(
            f"got {len(prompts)} prompts but {len(seeds)} seeds; pass one seed per prompt"
        )
    if all(type(seed) is int for seed in seeds) and (
        not seeds or (min(seeds) >= 0 and max(seeds) <= MAX_SEED)
    ):  # the common case, checked in one pass
        return prompts, seeds
    out = []
    for i, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise ValueError(f"seed {i} must be an int, got {type(seed).__name__}: {seed!r}")
        if not 0 <= int(seed) <= MAX_SEED:
            raise ValueError(f"seed {i} must be in [0, 2**63), got {seed}")
        out.append(int(seed))
    return prompts, out
