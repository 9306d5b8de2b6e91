"""The BeautifulPrompt judges of the rewrite envs, and :func:`make_judge`, which picks a judge.

* :class:`TextRMJudge` (``beautifulprompt-v1``): the reward comes from two text reward models
  (:mod:`prompt_gym.reward_models`), ``R(x, y) - R(x, x)`` with
  ``R = 0.3 AES_rm(y) + 0.7 PS_rm(x, y)``; its requests are empty, so the env calls no
  generator and no scorer (``backend.stats.images_generated`` stays 0).
* :class:`PreferenceJudge` (``beautifulprompt-images-v1``): the same mix from the true
  scorers (the backend's aesthetic and its preset's preference scorer, PickScore or the shapes
  analog), for evaluation: ``mean_i [R_i(y) - R_i(x)]`` on shared seeds.

Both are :class:`~prompt_gym.envs.judge.Judge` s, as
:class:`~prompt_gym.envs.rewrite_reward.RewriteJudge` is, and draw their seeds as it does (the
same pool), so an episode of one reward config sees the same prompt and seeds as under another.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from prompt_gym.backends import RewardBackend, ScoreResult
from prompt_gym.envs.judge import Judge
from prompt_gym.envs.render import side_by_side
from prompt_gym.envs.rewrite_reward import RewriteJudge, seed_pool_of
from prompt_gym.rewards import beautifulprompt_images_v1, beautifulprompt_v1

TEXT_REWARD = "beautifulprompt-v1"
IMAGES_REWARD = "beautifulprompt-images-v1"
RM_KEYS = ("aesthetic", "pickscore")


@functools.cache
def _load_rm(path: str) -> Any:
    """A reward-model directory, loaded once per process."""
    from prompt_gym.reward_models.model import TextRewardModel

    return TextRewardModel.load(path)


class TextRMJudge:
    """``beautifulprompt-v1``: the reward from text reward models, no image generated.

    Args:
        backend: The env's backend (used only by :meth:`render`).
        reward_models: ``{"aesthetic": DIR, "pickscore": DIR}``, reward-model directories
            written by ``prompt-gym train-rm`` (loaded once per process per directory).
        num_images: Seeds per episode (drawn as the image judges do; only :meth:`render` uses them).
        seed_pool: As :class:`~prompt_gym.envs.rewrite_reward.RewriteJudge`.

    Raises:
        ValueError: If ``reward_models`` lacks a key or a model's target is not its key.
    """

    needs_aesthetic: bool = False
    reward_name = TEXT_REWARD
    draw_seeds = RewriteJudge.draw_seeds

    def __init__(
        self,
        backend: RewardBackend,
        reward_models: Mapping[str, str],
        num_images: int = 2,
        seed_pool: int | None = 16,
    ) -> None:
        self.pool = seed_pool_of(num_images, seed_pool)
        if sorted(reward_models) != sorted(RM_KEYS):
            raise ValueError(
                f"reward_models must map exactly {list(RM_KEYS)} to reward-model directories "
                f"(`prompt-gym train-rm --target ...`), got keys {sorted(reward_models)}"
            )
        self.num_images = num_images
        self.backend = backend
        self.models = {k: _load_rm(str(reward_models[k])) for k in RM_KEYS}
        for key, rm in self.models.items():
            if rm.target != key:
                raise ValueError(f"reward_models[{key!r}] was trained for {rm.target!r}")
        self._memo: dict[tuple[str, str], float] = {}

    def requests(self, source: str, rewrite: str, seeds: list[int]) -> tuple[list[str], list[int]]:
        """None: the text reward needs no image."""
        return [], []

    def _predict(self, key: str, text: str) -> float:
        if (key, text) not in self._memo:
            self._memo[key, text] = float(self.models[key].predict([text])[0])
        return self._memo[key, text]

    def judge(
        self,
        source: str,
        result: ScoreResult | None = None,
        *,
        rewrite: str | None = None,
        seeds: list[int] | None = None,
    ) -> dict[str, Any]:
        """``R(x, y) - R(x, x)`` and its parts (``result`` and ``seeds`` are not used).

        Raises:
            ValueError: Without ``rewrite``.
        """
        if rewrite is None:
            raise ValueError("the text reward needs the rewrite: judge(source, rewrite=y)")
        from prompt_gym.reward_models.data import rm_text

        parts = beautifulprompt_v1(
            self._predict("aesthetic", rm_text("aesthetic", source, rewrite)),
            self._predict("pickscore", rm_text("pickscore", source, rewrite)),
            self._predict("aesthetic", rm_text("aesthetic", source, source)),
            self._predict("pickscore", rm_text("pickscore", source, source)),
        )
        parts.update(image_valid=True, prompt_tokens=0)
        return parts

    def render(self, source: str, rewrite: str, seed: int) -> np.ndarray:
        """The images of ``x`` and ``y`` on the first seed, side by side (renders them)."""
        return side_by_side(list(self.backend.generate([source, rewrite], [seed, seed])))


class PreferenceJudge(RewriteJudge):
    """``beautifulprompt-images-v1``: the BeautifulPrompt mix from the true image scores.

    The preference scorer is the backend preset's (built on first use); the images are the
    backend's (``backend.generate``: from its image LRU when ``keep_images`` is set, else
    rendered again; the shapes world renders in milliseconds).
    """

    def __init__(
        self, backend: RewardBackend, num_images: int = 2, seed_pool: int | None = 16
    ) -> None:
        super().__init__(backend, "aesthetic", num_images, seed_pool)
        self.reward_name = IMAGES_REWARD
        self._preference: Any = None

    @property
    def preference(self) -> Any:
        """The backend preset's preference scorer."""
        if self._preference is None:
            from prompt_gym.backends.preference import load_preference

            self._preference = load_preference(self.backend)
        return self._preference

    def judge(
        self,
        source: str,
        result: ScoreResult | None = None,
        *,
        rewrite: str | None = None,
        seeds: list[int] | None = None,
    ) -> dict[str, Any]:
        """The images reward and its parts.

        Raises:
            ValueError: Without ``rewrite``, ``seeds`` or a result.
        """
        if rewrite is None or seeds is None or result is None:
            raise ValueError("the images reward needs judge(source, result, rewrite=y, seeds=s)")
        k = len(seeds)
        prompts, all_seeds = self.requests(source, rewrite, seeds)
        images = self.backend.generate(prompts, all_seeds)
        ps = self.preference.preference([source] * 2 * k, images)
        parts = beautifulprompt_images_v1(
            result.aesthetic[k:],
            ps[k:],
            result.aesthetic[:k],
            ps[:k],
            result.valid[k:],
            result.valid[:k],
        )
        parts.update(
            image_valid=bool(result.valid.all()), prompt_tokens=int(result.prompt_tokens[k:].max())
        )
        return parts


def make_judge(
    backend: RewardBackend,
    reward: str,
    num_images: int,
    seed_pool: int | None,
    reward_models: Mapping[str, str] | None = None,
) -> Judge:
    """The judge of reward config ``reward``: text RMs, the true BeautifulPrompt mix, or Promptist's.

    Raises:
        ValueError: If ``reward_models`` is given for a reward that does not use them, or
            missing for ``beautifulprompt-v1``.
    """
    if reward == TEXT_REWARD:
        if reward_models is None:
            raise ValueError(
                "reward='beautifulprompt-v1' needs reward_models={'aesthetic': DIR, "
                "'pickscore': DIR} (train them with `prompt-gym train-rm`)"
            )
        return TextRMJudge(backend, reward_models, num_images, seed_pool)
    if reward_models is not None:
        raise ValueError(
            f"reward_models is only used by reward='beautifulprompt-v1', not {reward!r}"
        )
    if reward == IMAGES_REWARD:
        return PreferenceJudge(backend, num_images, seed_pool)
    return RewriteJudge(backend, reward, num_images, seed_pool)
