"""The random baseline: a valid action drawn uniformly per step (``--agent random``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from prompt_gym.agents.checkpoints import reject_checkpoint
from prompt_gym.agents.episodes import Episode, evaluate_policy

from prompt_gym.throughput import random_valid_actions

AGENT = "random"


class RandomPolicy:
    """Masked uniform: a valid action drawn uniformly per sub-env, from a seeded generator.

    Args:
        seed: Seed of its generator.
        n_actions: Size of the ``Discrete`` action space, needed only for envs without an
            ``action_mask`` observation (then every action counts as valid).
    """

    def __init__(self, seed: int = 0, n_actions: int | None = None) -> None:
        self.rng, self.n_actions = np.random.default_rng(seed), n_actions

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if "action_mask" not in obs:
            if self.n_actions is None:
                raise ValueError("this env has no action_mask: give RandomPolicy n_actions")
            n = len(next(iter(obs.values())))
            return self.rng.integers(self.n_actions, size=n)
        masks = obs["action_mask"].astype(bool)
        masks[~masks.any(axis=1)] = True  # a finished episode's action is ignored
        return random_valid_actions(masks, self.rng)


def evaluate(
    env_id: str,
    episodes: int,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    *,
    checkpoint: str | Path | None = None,
) -> list[Episode]:
    """Evaluation episodes of :class:`RandomPolicy` seeded ``seed`` (see :class:`~prompt_gym.agents.protocol.Agent`).

    Raises:
        ValueError: If given a ``checkpoint``: the random agent has nothing trained.
    """
    reject_checkpoint(checkpoint, AGENT)
    env = gym.make(env_id, **(env_kwargs or {}))
    n_actions = int(env.action_space.n)
    env.close()
    return evaluate_policy(
        RandomPolicy(seed, n_actions), env_id, episodes, seed, env_kwargs, options
    )
