"""The evaluation protocol: fresh image seeds, held-out targets and prompts, counted queries.

An agent is evaluated by the prompts it ends its episodes with, not by the reward it saw while
building them: an agent that fits the episode's image seeds (greedy search does, on every
step) would otherwise look better than it is. The protocol:

1. **Held-out episodes.** Evaluation episodes are reset with seeds ``EVAL_RESET_SEED + i`` on
   held-out data: ImageInversion draws targets from the target set ``target_set_seed=1``
   (training uses 0), the rewrite families from the ``test`` prompt split (training uses
   ``train``). See :data:`HELD_OUT`.
2. **Fresh image seeds.** Each final prompt is rendered again on ``num_images`` (default
   :data:`EVAL_IMAGES`) seeds that no env ever draws: envs draw image seeds in ``[0, 2**31)``;
   the evaluation seeds of episode ``i`` are ``EVAL_SEED_BASE + EVAL_IMAGES * i + j``
   (:func:`eval_image_seeds`, ``EVAL_SEED_BASE = 2**31``). The list is fixed, so every agent is
   scored on the same images.
3. **Counted queries.** Every (prompt, seed) an agent asks the reward backend for, cached or
   not, is a reward query (an image a real model would be asked for). :class:`QueryCounter`
   reads the backend's request counter around training and around evaluation episodes; the
   fresh-seed scoring runs on a backend of its own and is charged to nobody.
4. **Scores.** ImageInversion: the mean cosine of the final prompt's fresh images to the target
   (``imageprompt-i2i``). The rewrite families: the env's reward config on fresh images of the
   source and the rewrite (common random numbers on the fresh seeds). Normalisation and
   aggregation are in :mod:`prompt_gym.bench.stats`.

>>> eval_image_seeds(0), eval_image_seeds(1, 2)
([2147483648, 2147483649, 2147483650, 2147483651], [2147483650, 2147483651])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from prompt_gym.backends import RewardBackend, Target
from prompt_gym.backends.factory import make_backend
from prompt_gym.envs.beautifulprompt_reward import make_judge

EVAL_SEED_BASE = 2**31
"""First evaluation image seed; envs draw their image seeds below it."""
EVAL_IMAGES = 4
"""Fresh images per evaluated prompt."""
EVAL_RESET_SEED = 10_000
"""Reset seed of evaluation episode 0 (episode ``i`` is reset with ``EVAL_RESET_SEED + i``)."""
HELD_OUT: dict[str, dict[str, Any]] = {
    "ImageInversion": {"target_set_seed": 1},
    "PromptRewrite": {"split": "test"},
    "PromptRewriteTokens": {"split": "test"},
}
"""Env keyword arguments that select each family's held-out evaluation data."""


def family(env_id: str) -> str:
    """The env family of an id.

    >>> family("ImageInversion-Shapes-Hard-v1"), family("PromptRewriteTokens-Shapes-v1")
    ('ImageInversion', 'PromptRewriteTokens')
    """
    name = env_id.split("/")[-1].split("-")[0]
    if name not in HELD_OUT:
        raise ValueError(f"{env_id!r} is not a prompt-gym env id")
    return name


def eval_image_seeds(episode: int, n: int = EVAL_IMAGES) -> list[int]:
    """The fixed fresh image seeds of evaluation episode ``episode``."""
    if episode < 0 or n < 1:
        raise ValueError(f"need episode >= 0 and n >= 1, got {episode}, {n}")
    return [EVAL_SEED_BASE + n * episode + j for j in range(n)]


def held_out_kwargs(env_id: str, env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """``env_kwargs`` with the family's held-out data selected (see :data:`HELD_OUT`)."""
    return {**(env_kwargs or {}), **HELD_OUT[family(env_id)]}


class QueryCounter:
    """Counts the reward queries sent to one backend between :meth:`start` and :meth:`stop`.

    Args:
        backend: The backend the agent's envs use.
    """

    def __init__(self, backend: RewardBackend) -> None:
        self.backend = backend
        self._start: int | None = None

    def start(self) -> None:
        """Begin counting."""
        self._start = self.backend.stats.requests

    def stop(self) -> int:
        """The queries since :meth:`start`."""
        if self._start is None:
            raise RuntimeError("QueryCounter.stop() before start()")
        return self.backend.stats.requests - self._start


@dataclass(frozen=True)
class FinalPrompt:
    """What an evaluation episode ended with.

    Attributes:
        episode: Index of the evaluation episode (its reset seed is ``EVAL_RESET_SEED + i``).
        prompt: The final prompt.
        key: The target id (ImageInversion) or the source prompt (rewrite families).
        train_score: The env's own final value on the episode's seeds (similarity or reward).
        stopped: Whether the agent ended the episode itself (STOP or EOS).
    """

    episode: int
    prompt: str
    key: str
    train_score: float
    stopped: bool


class FreshScorer:
    """Scores final prompts on fresh image seeds, on a backend of its own.

    Args:
        env_id: The evaluated id.
        env_kwargs: The evaluation env's keyword arguments (held-out data included).
        num_images: Fresh images per prompt.
        share_backend: Score on the env's own (shared) backend instead of a new one: for a
            caller that counts no queries, and so that a real backend is not loaded twice.
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any],
        num_images: int = EVAL_IMAGES,
        share_backend: bool = False,
    ) -> None:
        env = gym.make(env_id, **env_kwargs)
        u = env.unwrapped
        self.family = family(env_id)
        self.num_images = num_images
        self.backend = u.backend if share_backend else make_backend(u.backend.name)
        if self.family == "ImageInversion":
            targets = u.target_set
            self.targets: dict[str, Target] = {
                targets[i].target_id: targets[i] for i in range(len(targets))
            }
            self._target_embeds: dict[str, np.ndarray] = {}
        else:
            models = env_kwargs.get("reward_models")
            self.judge = make_judge(self.backend, u.reward_name, num_images, None, models)
        env.close()

    def score(self, finals: Sequence[FinalPrompt]) -> np.ndarray:
        """``float64 (N,)`` fresh-seed scores of the final prompts."""
        if self.family == "ImageInversion":
            return np.array([self.similarity(f.prompt, f.key, f.episode) for f in finals])
        return np.array([self.reward(f.key, f.prompt, f.episode) for f in finals])

    def similarity(self, prompt: str, target_id: str, episode: int) -> float:
        """Mean cosine of ``prompt``'s fresh images to the target (failed images count -1)."""
        if target_id not in self._target_embeds:
            image = self.targets[target_id].image
            self._target_embeds[target_id] = self.backend.embed_images(image[None])[0]
        seeds = eval_image_seeds(episode, self.num_images)
        result = self.backend.score([prompt] * len(seeds), seeds)
        cos = result.image_embeds.astype(np.float64) @ self._target_embeds[target_id]
        return float(np.where(result.valid, cos, -1.0).mean())

    def reward(self, source: str, rewrite: str, episode: int) -> float:
        """The env's reward config for ``rewrite`` of ``source`` on fresh seeds."""
        fresh = eval_image_seeds(episode, self.num_images)
        prompts, seeds = self.judge.requests(source, rewrite, fresh)
        result = (
            self.backend.score(prompts, seeds, aesthetic=self.judge.needs_aesthetic)
            if prompts
            else None
        )
        return float(self.judge.judge(source, result, rewrite=rewrite, seeds=fresh)["reward"])

    def oracle(self, finals: Sequence[FinalPrompt]) -> np.ndarray:
        """ImageInversion's oracle: each target's own caption, scored on the same fresh seeds.

        Raises:
            ValueError: For the rewrite families (their oracle is a search; see the suite).
        """
        if self.family != "ImageInversion":
            raise ValueError("the caption oracle is defined for ImageInversion only")
        return np.array(
            [self.similarity(self.targets[f.key].caption or "", f.key, f.episode) for f in finals]
        )


def final_prompts(
    episodes: Sequence[Any], env_id: str, stop_action: int | None, first_episode: int = 0
) -> list[FinalPrompt]:
    """:class:`FinalPrompt` of each evaluation episode (``common.Episode`` objects, in order).

    Args:
        episodes: Episodes whose ``i``-th was reset with ``EVAL_RESET_SEED + first_episode + i``.
        env_id: Their env id.
        stop_action: The action that ends an episode by the agent's choice (STOP or EOS), or
            ``None`` when the agent never chooses to stop.
        first_episode: Protocol index of the first episode (it picks the fresh image seeds).
    """
    inversion = family(env_id) == "ImageInversion"
    out = []
    for i, e in enumerate(episodes, start=first_episode):
        info = e.info
        key = info["target_id"] if inversion else info["source"]
        value = info["similarity"] if inversion else info.get("reward", e.ret)
        stopped = stop_action is not None and len(e.actions) > 0 and e.actions[-1] == stop_action
        out.append(FinalPrompt(i, str(info["prompt"]), str(key), float(value), bool(stopped)))
    return out
