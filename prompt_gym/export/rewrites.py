"""Exporting scored rewrites: every score of ``(x, y)`` pairs on shared seeds, as dataset rows.

The data a text reward model learns from (BeautifulPrompt's RM stage): for each pair and seed,
the aesthetic scores of ``y``'s and ``x``'s images, the relevance cosine of ``y``'s image to
``x``'s text, the preference score (PickScore or the shapes analog) of both images against
``x``, and the image-image cosine of the two images. Candidates come from the world's modifier
bank (:func:`modifier_rewrites`) or from a policy's rollouts (rows with a ``reward``, an offline
RL dataset).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from prompt_gym.backends.preference import PreferenceScorer
from prompt_gym.backends.reward_backend import RewardBackend
from prompt_gym.export.recorder import Recorder


def modifier_rewrites(
    prompts: Sequence[str], modifiers: Sequence[str], per_prompt: int, seed: int = 0
) -> list[tuple[str, str]]:
    """``(x, y)`` pairs: ``y = x`` once, then ``per_prompt`` rewrites ``x, m1, ..., mk``.

    ``k`` is uniform in ``1..4`` and the modifiers are distinct, drawn from ``modifiers``.

    >>> modifier_rewrites(["a cat"], ["vivid"], 1)
    [('a cat', 'a cat'), ('a cat', 'a cat, vivid')]
    """
    rng = np.random.default_rng(seed)
    out = []
    for x in prompts:
        out.append((x, x))
        for _ in range(per_prompt):
            k = int(rng.integers(1, min(4, len(modifiers)) + 1))
            picks = rng.choice(len(modifiers), size=k, replace=False)
            out.append((x, ", ".join([x, *(modifiers[i] for i in picks)])))
    return out


def score_rewrites(
    backend: RewardBackend,
    pairs: Sequence[tuple[str, str]],
    seeds: Sequence[int],
    preference: PreferenceScorer | None = None,
) -> list[dict[str, Any]]:
    """One dataset row per pair and seed, with every score (see the module docstring).

    All images are scored in one backend call (``aesthetic=True``, images returned for the
    preference scorer); ``pickscore`` columns are ``None`` without a preference scorer.
    """
    k, n = len(seeds), len(pairs)
    prompts = [p for x, y in pairs for p in [x] * k + [y] * k]
    result = backend.score(prompts, list(seeds) * 2 * n, aesthetic=True, return_images=True)
    texts = backend.embed_texts([x for x, _ in pairs])
    ps = None
    if preference is not None:
        sources = [x for x, _ in pairs for _ in range(2 * k)]
        ps = np.asarray(preference.preference(sources, result.images))
    rows = []
    for i, (x, y) in enumerate(pairs):
        xs, ys = slice(2 * k * i, 2 * k * i + k), slice(2 * k * i + k, 2 * k * (i + 1))
        img_x = result.image_embeds[xs].astype(np.float64)
        img_y = result.image_embeds[ys].astype(np.float64)
        rel = img_y @ texts[i].astype(np.float64)
        i2i = np.einsum("kd,kd->k", img_x, img_y)
        for j, seed in enumerate(seeds):
            rows.append(
                {
                    "kind": "rewrite",
                    "prompt": y,
                    "source": x,
                    "seed": int(seed),
                    "backend": backend.name,
                    "backend_version": backend.version,
                    "aesthetic": _num(result.aesthetic[ys][j]),
                    "source_aesthetic": _num(result.aesthetic[xs][j]),
                    "relevance": float(rel[j]),
                    "pickscore": None if ps is None else float(ps[ys][j]),
                    "source_pickscore": None if ps is None else float(ps[xs][j]),
                    "image_similarity": float(i2i[j]),
                    "valid": bool(result.valid[ys][j] and result.valid[xs][j]),
                }
            )
    return rows


def _num(value: float) -> float | None:
    """``None`` for a missing (``nan``) score, else the float."""
    return None if not np.isfinite(value) else float(value)


def export_rewrites(
    backend: RewardBackend,
    pairs: Sequence[tuple[str, str]],
    seeds: Sequence[int],
    out: Recorder,
    *,
    preference: PreferenceScorer | None = None,
    policy: str = "modifiers",
    rewards: Sequence[float] | None = None,
    chunk: int = 256,
) -> int:
    """Score ``pairs`` on ``seeds`` and append the rows to ``out``; return the rows written.

    Args:
        backend: The backend that renders and scores.
        pairs: ``(x, y)`` pairs.
        seeds: Image seeds, shared by ``x`` and ``y`` (common random numbers).
        out: The dataset recorder (flushed at the end).
        preference: The preference scorer for the ``pickscore`` columns, or ``None``.
        policy: The ``policy`` column (what wrote ``y``).
        rewards: One episode reward per pair (an offline-RL dataset), or ``None``.
        chunk: Pairs per backend call.

    Raises:
        ValueError: If ``rewards`` does not have one value per pair.
    """
    if rewards is not None and len(rewards) != len(pairs):
        raise ValueError(f"{len(rewards)} rewards for {len(pairs)} pairs")
    written = 0
    for a in range(0, len(pairs), chunk):
        rows = score_rewrites(backend, pairs[a : a + chunk], seeds, preference)
        for r, row in enumerate(rows):
            row["policy"] = policy
            if rewards is not None:
                row["reward"] = float(rewards[a + r // len(seeds)])
        out.add(rows)
        written += len(rows)
    out.flush()
    return written
