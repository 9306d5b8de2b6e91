"""The seam between a rewrite env and its reward: the :class:`Judge` protocol.

A rewrite env core (PromptRewrite, PromptRewriteTokens) never looks at which reward config it
runs. It asks its judge for the episode's image seeds, for the backend requests that value a
rewrite, for the reward and its parts once those requests are scored, and for a picture of an
episode. The judges are :class:`~prompt_gym.envs.rewrite_reward.RewriteJudge` (the Promptist
configs), and :class:`~prompt_gym.envs.beautifulprompt_reward.TextRMJudge` and
:class:`~prompt_gym.envs.beautifulprompt_reward.PreferenceJudge` (BeautifulPrompt's);
:func:`~prompt_gym.envs.beautifulprompt_reward.make_judge` picks one by name.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from prompt_gym.backends import ScoreResult


@runtime_checkable
class Judge(Protocol):
    """Values a rewrite ``y`` of a user prompt ``x`` under one reward config.

    Attributes:
        reward_name: The reward config's name (``info["reward_name"]``, the envs' ``reward=``).
        needs_aesthetic: Whether :meth:`requests` must be scored with ``aesthetic=True``.
    """

    reward_name: str
    needs_aesthetic: bool

    def draw_seeds(self, np_random: np.random.Generator) -> list[int]:
        """The image seeds of a new episode, drawn with the env's generator."""
        ...

    def requests(self, source: str, rewrite: str, seeds: list[int]) -> tuple[list[str], list[int]]:
        """``(prompts, seeds)`` the backend must score to value ``rewrite`` (may be empty)."""
        ...

    def judge(
        self,
        source: str,
        result: ScoreResult | None,
        *,
        rewrite: str | None = None,
        seeds: list[int] | None = None,
    ) -> dict[str, Any]:
        """The reward (``"reward"``) and its parts, from the scores of :meth:`requests`
        (``None`` when they were empty) of ``rewrite`` on ``seeds``."""
        ...

    def render(self, source: str, rewrite: str, seed: int) -> np.ndarray:
        """``uint8 (H, W, 3)``: the images of ``x`` and ``y`` on ``seed``, for ``render()``."""
        ...
