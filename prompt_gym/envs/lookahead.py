"""Lookahead: what candidate action sequences would be worth, scored without taking them.

A planner (the greedy baseline, a beam search) asks an env what the states reached by some
action sequences would be worth. A core answers with a :class:`Lookahead`: the backend requests
that value each sequence and the current state, and the function that turns their scores into a
value, the same requests and numbers the env's own steps use (so the step that follows a
lookahead is a cache hit). :func:`score_lookaheads` scores the lookaheads of many cores in one
backend call; ``PromptEnv.lookahead`` and ``PromptVectorEnv.lookahead`` are the public entry
points.

What a value is, per family:

* ImageInversion: the similarity (``imageprompt-i2i``) of the prompt with the sequence's words
  appended, on the image seeds of the last step; the current value is the current similarity.
* PromptRewrite, PromptRewriteTokens: the terminal reward the rewrite would get if the episode
  ended after the sequence (modifiers, or token ids, appended); the current value is the reward
  of ending now.

A sequence ends at its first stop action (STOP, or EOS).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from prompt_gym.backends import RewardBackend, ScoreResult

Request = tuple[list[str], list[int]]
"""``(prompts, seeds)`` of one backend request group."""


@dataclass(frozen=True)
class Lookahead:
    """The unscored values of candidate sequences from one core's current state.

    Attributes:
        requests: The request that values each candidate sequence, in order.
        current: The current state's value when it is known without scoring, else ``None``.
        current_request: Otherwise the request that values the current state.
        value: ``(i, scores of request i) -> its value``, ``i`` indexing ``requests`` and
            then ``current_request``; the scores are ``None`` for an empty request (a reward
            that needs no image, such as BeautifulPrompt's text reward models).
        aesthetic: Whether the requests are scored with their aesthetic scores.
    """

    requests: list[Request]
    current: float | None
    current_request: Request | None
    value: Callable[[int, ScoreResult | None], float]
    aesthetic: bool


def until_stop(sequence: Sequence[int], stop: int) -> list[int]:
    """The actions of ``sequence`` before its first ``stop`` (a stop ends the sequence).

    >>> until_stop([3, 1, 8, 2], stop=8)
    [3, 1]
    """
    out: list[int] = []
    for action in sequence:
        if action == stop:
            break
        out.append(int(action))
    return out


def score_lookaheads(
    backend: RewardBackend, lookaheads: Sequence[Lookahead]
) -> list[tuple[np.ndarray, float]]:
    """``(candidate values, current value)`` of each lookahead, all scored in one backend call.

    The requests go in lookahead order, each lookahead's candidates then its current request.
    """
    # 1. Gather the requests and where each one's rows are
    prompts: list[str] = []
    seeds: list[int] = []
    spans: list[list[tuple[int, int]]] = []
    for look in lookaheads:
        rows = [*look.requests]
        if look.current_request is not None:
            rows.append(look.current_request)
        spans.append([])
        for ps, ss in rows:
            spans[-1].append((len(prompts), len(prompts) + len(ps)))
            prompts += ps
            seeds += ss
    # 2. Score them at once
    aesthetic = any(look.aesthetic for look in lookaheads)
    result = backend.score(prompts, seeds, aesthetic=aesthetic) if prompts else None
    # 3. Value each candidate and each current state
    out = []
    for look, rows in zip(lookaheads, spans, strict=True):
        values = np.array(
            [look.value(i, result.rows(a, b) if b > a else None) for i, (a, b) in enumerate(rows)]
        )
        if look.current_request is not None:
            current, values = float(values[-1]), values[:-1]
        else:
            current = float(look.current)
        out.append((values, current))
    return out
