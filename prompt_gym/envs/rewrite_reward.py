"""The terminal reward both rewrite envs share: render x and y on the same seeds, then score."""

from __future__ import annotations

from typing import Any

import numpy as np

from prompt_gym.backends import RewardBackend, ScoreResult
from prompt_gym.envs.render import side_by_side
from prompt_gym.rewards import RewriteScores, rewrite_reward


class RewriteJudge:
    """Scores a rewrite ``y`` of a user prompt ``x`` with a named reward config.

    The images of ``x`` and ``y`` use the same seeds (common random numbers), so the aesthetic
    difference is not noise; the ``x`` side is a cache hit after its first use.

    Args:
        backend: The env's backend.
        reward: A name from :data:`prompt_gym.rewards.REWARD_CONFIGS`.
        num_images: Seeds per episode.
    """

    def __init__(self, backend: RewardBackend, reward: str, num_images: int) -> None:
        if num_images < 1:
            raise ValueError(f"num_images must be >= 1, got {num_images}")
        if not backend.has_aesthetic and reward != "relevance":
            raise ValueError(
                f"reward {reward!r} needs an aesthetic score but backend {backend.name!r} has none; "
                "use a scorer with an aesthetic head or reward='relevance'"
            )
        self.backend, self.reward_name, self.num_images = backend, reward, num_images
        self.reward_fn = rewrite_reward(reward)

    def draw_seeds(self, np_random: np.random.Generator) -> list[int]:
        """The episode's shared image seeds."""
        return [int(s) for s in np_random.integers(0, 2**31, size=self.num_images)]

    def requests(self, source: str, rewrite: str, seeds: list[int]) -> tuple[list[str], list[int]]:
        """``x`` then ``y``, each on every seed."""
        k = len(seeds)
        return [source] * k + [rewrite] * k, list(seeds) * 2

    def judge(self, source: str, result: ScoreResult) -> dict[str, Any]:
        """Reward and its parts from the scores of :meth:`requests`."""
        k = len(result.valid) // 2
        scores = RewriteScores(
            text_x=self.backend.embed_texts([source])[0],
            image_y=result.image_embeds[k:],
            aes_x=result.aesthetic[:k],
            aes_y=result.aesthetic[k:],
            valid_x=result.valid[:k],
            valid_y=result.valid[k:],
        )
        parts = self.reward_fn(scores)
        parts.update(
            image_valid=bool(result.valid.all()),
            prompt_tokens=int(result.prompt_tokens[k:].max()),
        )
        return parts

    def render(self, source: str, rewrite: str, seed: int) -> np.ndarray:
        """The images of ``x`` and ``y`` on the first seed, side by side."""
        return side_by_side(list(self.backend.generate([source, rewrite], [seed, seed])))
