"""The terminal reward both rewrite envs share (render x and y on the same seeds, then score),
their lookahead (:func:`judged_lookahead`), and the read-only set-up they both make public
(:class:`RewriteData`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from prompt_gym.backends import RewardBackend, ScoreResult
from prompt_gym.envs.judge import Judge
from prompt_gym.envs.lookahead import Lookahead
from prompt_gym.envs.render import side_by_side
from prompt_gym.rewards import RewriteScores, rewrite_reward

POOL_SEED = 20_230_101
"""Seed of the generator of the fixed seed tuples (one pool for every env and process)."""


def seed_tuples(size: int, num_images: int) -> np.ndarray:
    """The fixed pool: ``int64 (size, num_images)`` image seeds in ``[0, 2**31)``.

    A pool extends a smaller one with the same ``num_images`` (its first rows are the same).

    >>> seed_tuples(3, 2).shape, bool((seed_tuples(3, 2) == seed_tuples(5, 2)[:3]).all())
    ((3, 2), True)
    """
    rng = np.random.default_rng([POOL_SEED, num_images])
    return rng.integers(0, 2**31, size=(size, num_images))


def seed_pool_of(num_images: int, seed_pool: int | None) -> np.ndarray | None:
    """The episode seed pool of a judge (:func:`seed_tuples`), or ``None`` for fresh seeds.

    Raises:
        ValueError: If ``num_images`` is under 1 or ``seed_pool`` is neither ``None`` nor >= 1.
    """
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    if seed_pool is not None and (isinstance(seed_pool, bool) or seed_pool < 1):
        raise ValueError(f"seed_pool must be None or >= 1, got {seed_pool!r}")
    return None if seed_pool is None else seed_tuples(seed_pool, num_images)


def judged_lookahead(
    judge: Judge, source: str, seeds: list[int], rewrites: Sequence[str], current: str
) -> Lookahead:
    """A rewrite env's lookahead: each of ``rewrites`` (and ``current``, the rewrite so far)
    valued as the terminal reward ``judge`` gives it on the episode's ``seeds``."""
    texts = [*rewrites, current]
    return Lookahead(
        [judge.requests(source, y, seeds) for y in rewrites],
        None,
        judge.requests(source, current, seeds),
        lambda i, r: judge.judge(source, r, rewrite=texts[i], seeds=seeds)["reward"],
        judge.needs_aesthetic,
    )


class RewriteJudge:
    """Scores a rewrite ``y`` of a user prompt ``x`` with a named reward config.

    The images of ``x`` and ``y`` use the same seeds (common random numbers), so the aesthetic
    difference is not noise. An episode's seeds are one of ``seed_pool`` fixed tuples of
    ``num_images`` seeds (the same pool in every env and process, picked with the env's
    ``np_random``), so the images of ``x`` on a tuple are generated once and are cache hits in
    every later episode of that prompt on that tuple. With the 232 shapes training prompts and
    the default 16 tuples (3,712 distinct ``x`` sides), the share of episodes whose ``x`` side is
    a hit was measured at 12% over episodes 0-1,000, 34% over 1,000-2,000 and 73% over
    4,000-5,000. ``seed_pool=None`` draws fresh seeds every episode instead (``x`` is then
    re-rendered each time, 0% hits).

    Args:
        backend: The env's backend.
        reward: A name from :data:`prompt_gym.rewards.REWARD_CONFIGS`.
        num_images: Seeds per episode.
        seed_pool: Number of fixed seed tuples, or ``None`` for fresh seeds every episode.
    """

    needs_aesthetic: bool = True
    """Score :meth:`requests` with ``aesthetic=True``: every reward config reports the aesthetic
    term ``f_aes`` among its parts (``relevance`` too, for the record; ``nan`` where the scorer
    has no aesthetic)."""

    def __init__(
        self, backend: RewardBackend, reward: str, num_images: int, seed_pool: int | None = 16
    ) -> None:
        self.pool = seed_pool_of(num_images, seed_pool)
        if not backend.has_aesthetic and reward != "relevance":
            raise ValueError(
                f"reward {reward!r} needs an aesthetic score but backend {backend.name!r} has none; "
                "use a scorer with an aesthetic head or reward='relevance'"
            )
        self.backend, self.reward_name, self.num_images = backend, reward, num_images
        self.reward_fn = rewrite_reward(reward)

    def draw_seeds(self, np_random: np.random.Generator) -> list[int]:
        """The episode's shared image seeds: a tuple of the pool, or fresh ones."""
        if self.pool is None:
            return [int(s) for s in np_random.integers(0, 2**31, size=self.num_images)]
        return [int(s) for s in self.pool[int(np_random.integers(len(self.pool)))]]

    def requests(self, source: str, rewrite: str, seeds: list[int]) -> tuple[list[str], list[int]]:
        """``x`` then ``y``, each on every seed."""
        k = len(seeds)
        return [source] * k + [rewrite] * k, list(seeds) * 2

    def judge(
        self,
        source: str,
        result: ScoreResult | None,
        *,
        rewrite: str | None = None,
        seeds: list[int] | None = None,
    ) -> dict[str, Any]:
        """Reward and its parts from the scores of :meth:`requests` (``rewrite`` and ``seeds``
        are for the judges that need them, :mod:`prompt_gym.envs.beautifulprompt_reward`).

        Raises:
            ValueError: Without a result (its requests are never empty).
        """
        if result is None:
            raise ValueError(f"reward {self.reward_name!r} needs the scores of its requests")
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


class RewriteData:
    """The read-only set-up of a rewrite env, single or native vector (every sub-env's)."""

    _any_core: Any

    @property
    def prompt_set(self) -> tuple[str, ...]:
        """The user prompts an episode draws ``x`` from (its split's, or the ones given)."""
        return tuple(self._any_core.prompts)

    @property
    def reward_name(self) -> str:
        """The reward config's name (a key of :data:`prompt_gym.rewards.REWARD_CONFIGS`)."""
        return self._any_core.judge.reward_name
