"""PromptRewrite: make a user's prompt better by appending modifier phrases (Promptist).

User prompts and the modifier bank come from the backend's world unless given
(:mod:`prompt_gym.envs.prompt_sets`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from prompt_gym.backends import RewardBackend, ScoreResult
from prompt_gym.envs.beautifulprompt_reward import make_judge
from prompt_gym.envs.core import (
    EnvCore,
    PromptEnv,
    check_options,
    core_argument,
    core_options,
)
from prompt_gym.envs.lookahead import Lookahead, until_stop
from prompt_gym.envs.prompt_sets import count_tokens, load_modifiers, load_prompts
from prompt_gym.envs.rewrite_reward import RewriteData, RewriteJudge, judged_lookahead
from prompt_gym.envs.vector import PromptVectorEnv

MAX_CLIP_TOKENS = 77
SEPARATOR = ", "


def max_episode_steps(kwargs: Mapping[str, Any]) -> int:
    """The step limit an env made with ``kwargs`` enforces itself: ``2 * (max_modifiers + 1)``.

    Reached only with penalized actions. Registration sets an id's ``max_episode_steps`` from
    its registered ``kwargs`` with this.

    >>> max_episode_steps({}), max_episode_steps({"max_modifiers": 2})
    (10, 6)
    """
    return 2 * (int(core_argument(PromptRewriteCore, kwargs, "max_modifiers")) + 1)


class PromptRewriteCore(EnvCore):
    """Episode logic of :class:`PromptRewriteEnv` (see there for the documentation)."""

    needs_aesthetic = RewriteJudge.needs_aesthetic

    def __init__(
        self,
        backend: RewardBackend,
        *,
        prompts: str | Path | list[str] | None = None,
        split: str = "train",
        modifiers: str | Path | list[str] | None = None,
        max_modifiers: int = 4,
        reward: str = "promptist-v1",
        num_images: int = 2,
        seed_pool: int | None = 16,
        reward_models: dict[str, str] | None = None,
        invalid_action: str = "penalize",
        invalid_penalty: float = -1.0,
    ) -> None:
        super().__init__(backend, invalid_action, invalid_penalty)
        self.prompts = load_prompts(backend, split, prompts)
        self.modifiers = load_modifiers(backend, modifiers)
        if not 1 <= max_modifiers <= len(self.modifiers):
            raise ValueError(
                f"max_modifiers must be in [1, {len(self.modifiers)}], got {max_modifiers}"
            )
        self.max_modifiers = max_modifiers
        self.judge = make_judge(backend, reward, num_images, seed_pool, reward_models)
        self.max_steps = max_episode_steps({"max_modifiers": max_modifiers})
        n_mod, dim = len(self.modifiers), backend.dim
        self.stop_action = n_mod
        self.observation_space = spaces.Dict(
            {
                "source": spaces.Box(-1.0, 1.0, shape=(dim,), dtype=np.float32),
                "chosen": spaces.MultiDiscrete(np.full(max_modifiers, n_mod + 1)),
                "action_mask": spaces.MultiBinary(n_mod + 1),
            }
        )
        self.action_space = spaces.Discrete(n_mod + 1)
        self.parts: dict[str, Any] = {}

    def reset(
        self, np_random: np.random.Generator, options: dict[str, Any] | None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        options = check_options(options, ("prompt",))
        self.np_random = np_random
        index = int(np_random.integers(len(self.prompts)))
        self.source = self.prompts[index]
        if "prompt" in options:
            if not isinstance(options["prompt"], str):
                raise ValueError(f"options['prompt'] must be a str, got {options['prompt']!r}")
            self.source = options["prompt"]
            if count_tokens(self.backend, [self.source])[0] > MAX_CLIP_TOKENS:
                raise ValueError(
                    f"the prompt is over {MAX_CLIP_TOKENS} CLIP tokens: {self.source!r}"
                )
        self.seeds = self.judge.draw_seeds(np_random)
        self.source_embed = self.backend.embed_texts([self.source])[0]
        self.chosen: list[int] = []
        self.parts = {}
        self._mask = self._compute_mask()
        self.done, self.steps = False, 0
        return self._observe(), self._info()

    @property
    def prompt(self) -> str:
        """The rewrite so far: the source with the chosen modifiers appended."""
        return SEPARATOR.join([self.source, *(self.modifiers[i] for i in self.chosen)])

    def _compute_mask(self) -> np.ndarray:
        mask = np.zeros(len(self.modifiers) + 1, dtype=np.int8)
        mask[self.stop_action] = 1
        if len(self.chosen) >= self.max_modifiers:
            return mask
        free = [i for i in range(len(self.modifiers)) if i not in self.chosen]
        lengths = count_tokens(
            self.backend, [self.prompt + SEPARATOR + self.modifiers[i] for i in free]
        )
        for i, n in zip(free, lengths, strict=True):
            mask[i] = n <= MAX_CLIP_TOKENS
        return mask

    def _stop_only(self) -> np.ndarray:
        """The terminal mask: STOP alone, so a policy fed the final observation (``NEXT_STEP``
        autoreset) never sees every action masked."""
        mask = np.zeros(len(self.modifiers) + 1, dtype=np.int8)
        mask[self.stop_action] = 1
        return mask

    def action_mask(self) -> np.ndarray:
        return self._mask.copy()

    def _ends(self, action: int) -> bool:
        return action == self.stop_action or len(self.chosen) + 1 >= self.max_modifiers

    def _lookahead(self, sequences: Sequence[Sequence[int]]) -> Lookahead:
        prompt = self.prompt
        rewrites = [
            SEPARATOR.join(
                [prompt, *(self.modifiers[a] for a in until_stop(seq, self.stop_action))]
            )
            for seq in sequences
        ]
        return judged_lookahead(self.judge, self.source, self.seeds, rewrites, prompt)

    def _requests(self, action: int) -> tuple[list[str], list[int]]:
        if not self._ends(action):
            return [], []
        rewrite = (
            self.prompt
            if action == self.stop_action
            else self.prompt + SEPARATOR + self.modifiers[action]
        )
        return self.judge.requests(self.source, rewrite, self.seeds)

    def _apply(self, action: int, result: ScoreResult | None) -> tuple[float, bool, dict[str, Any]]:
        terminated = self._ends(action)
        if action != self.stop_action:
            self.chosen.append(action)
        self._mask = self._compute_mask() if not terminated else self._stop_only()
        if not terminated:
            return 0.0, False, self._info()
        self.parts = self.judge.judge(self.source, result, rewrite=self.prompt, seeds=self.seeds)
        return self.parts["reward"], True, self._info()

    def _observe(self) -> dict[str, np.ndarray]:
        chosen = np.full(self.max_modifiers, len(self.modifiers), dtype=np.int64)
        chosen[: len(self.chosen)] = self.chosen
        return {
            "source": np.clip(self.source_embed, -1, 1).astype(np.float32),
            "chosen": chosen,
            "action_mask": self._mask.copy(),
        }

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "prompt": self.prompt,
            "source": self.source,
            "num_modifiers": len(self.chosen),
        }
        info.update(self.parts)
        return info

    def render(self) -> np.ndarray:
        return self.judge.render(self.source, self.prompt, self.seeds[0])


class PromptRewriteData(RewriteData):
    """The read-only set-up of a PromptRewrite env, single or native vector."""

    @property
    def modifiers(self) -> tuple[str, ...]:
        """The modifier bank: action ``i`` appends ``modifiers[i]``."""
        return tuple(self._any_core.modifiers)

    @property
    def max_modifiers(self) -> int:
        """The most modifiers a rewrite may append."""
        return self._any_core.max_modifiers


class PromptRewriteEnv(PromptRewriteData, PromptEnv):
    """Rewrite a user prompt by appending modifier phrases (Promptist, modifier level).

    ## Description
    A user prompt ``x`` is drawn from a prompt set (the shapes world generates its own; real ids
    ship ``data/prompts.txt``; ``prompts=`` takes a list or a file). Each step appends one
    modifier phrase from a bank (``x, vivid, high contrast``); STOP ends the rewrite ``y``.
    At the end ``x`` and ``y`` are rendered on the same ``num_images`` seeds and scored.

    ## Action Space
    ``Discrete(n_modifiers + 1)``: ``i < n_modifiers`` appends modifier ``i``;
    ``n_modifiers`` is STOP. Masks forbid repeats, more than ``max_modifiers`` modifiers, and
    any modifier that would push ``y`` past 77 CLIP tokens; STOP is never masked, so no mask,
    the terminal observation's included (STOP alone there), is all zeros. As in Gymnasium's own
    envs, every action of the space is accepted: a masked one is a no-op rewarded
    ``invalid_penalty`` (``info["invalid_action"]`` is True), or raises ``ValueError`` with
    ``invalid_action="raise"``. An action outside the space (an id ``> n_modifiers``, a bool, a
    non-integral or infinite float) always raises ``ValueError``.

    ## Observation Space
    ``Dict``: ``source`` ``Box(-1, 1, (D,))`` text embedding of ``x``; ``chosen``
    ``MultiDiscrete([n_modifiers + 1] * max_modifiers)`` the appended modifiers in order, padded
    with ``n_modifiers``; ``action_mask`` ``MultiBinary(n_modifiers + 1)``.

    ## Rewards
    0 until the episode ends; then the named reward config (``reward=``, default
    ``promptist-v1``): ``R = f_aes + f_rel``, ``f_rel = mean_i min(20 cos(text(x), image_i(y))
    - 5.6, 0)`` in ``[-25.6, 0]``, ``f_aes = mean_i [aes(image_i(y)) - aes(image_i(x))]`` in
    ``[-10, 10]``; ``R`` in ``[-35.6, 10]``. ``relevance`` and ``aesthetic`` give one term
    alone. Failed images count with the floors of :mod:`prompt_gym.rewards`. A masked action
    (with the default ``invalid_action="penalize"``) is a no-op rewarded ``invalid_penalty``
    (default ``-1.0``, any finite number ``<= 0``).

    ## Starting State
    ``y = x``; the prompt and the episode's image seeds (a tuple of the fixed pool) are drawn from
    ``np_random``.

    ## Episode End
    Terminated on STOP or when ``max_modifiers`` modifiers are appended. Truncated after
    ``2 * (max_modifiers + 1)`` steps (only with penalized masked actions;
    :func:`max_episode_steps` gives the limit for a set of keyword arguments).

    ## Arguments
    ``backend``, ``prompts`` (list or file), ``split`` (``train``/``test``/``all``),
    ``modifiers`` (list or file), ``max_modifiers`` (4), ``reward`` (``promptist-v1``),
    ``num_images`` (2), ``seed_pool`` (16 fixed seed tuples shared by every env, so the images of
    ``x`` are cache hits after their first use; ``None``: fresh seeds every episode),
    ``reward_models`` (``{"aesthetic": DIR, "pickscore": DIR}``, the text reward models of
    ``reward="beautifulprompt-v1"``, which generates no image;
    :mod:`~prompt_gym.envs.beautifulprompt_reward`),
    ``invalid_action`` (what a masked action does: ``penalize``, the default, or ``raise``),
    ``invalid_penalty`` (-1.0),
    ``render_mode`` (``rgb_array``: images of ``x`` and ``y`` side by side). Reset option
    ``prompt`` sets ``x``.

    ## Info keys
    ``prompt`` (``y``), ``source`` (``x``), ``num_modifiers``; at the end also ``reward``,
    ``relevance``, ``aesthetic``, ``image_valid``, ``prompt_tokens``; ``invalid_action`` (True)
    after a penalized masked action.

    ## Public API
    Read-only, beside ``lookahead``, ``stop_action`` and ``elapsed_steps`` (see
    :class:`~prompt_gym.envs.core.PromptEnv`), on this env and its native vector env alike:
    ``prompt_set`` (the user prompts ``x`` is drawn from), ``modifiers`` (the bank, in action
    order), ``max_modifiers`` and ``reward_name`` (the ``reward=`` config).

    ## Version History
    Not versioned, as valid actions behave exactly as before: a masked action is now a penalized
    no-op by default (it raised before), an infinite float or a bool raises ``ValueError``, and
    the terminal observation's ``action_mask`` holds STOP (it was all zeros).

    * v1: the shapes world v3.
    * v0: initial release.
    """

    core_cls: ClassVar[type[EnvCore]] = PromptRewriteCore

    def __init__(
        self,
        backend: str | RewardBackend | None = None,
        *,
        prompts: str | Path | list[str] | None = None,
        split: str = "train",
        modifiers: str | Path | list[str] | None = None,
        max_modifiers: int = 4,
        reward: str = "promptist-v1",
        num_images: int = 2,
        seed_pool: int | None = 16,
        reward_models: dict[str, str] | None = None,
        invalid_action: str = "penalize",
        invalid_penalty: float = -1.0,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(backend, render_mode, core_options(PromptRewriteCore, locals()))


class PromptRewriteVectorEnv(PromptRewriteData, PromptVectorEnv):
    """Native vector env of :class:`PromptRewriteEnv`: one backend call per step.

    ``prompt_set``, ``modifiers``, ``max_modifiers`` and ``reward_name`` are public, as on
    :class:`PromptRewriteEnv`.

    Args:
        num_envs: Number of sub-envs.
        max_episode_steps: May only lower the sub-envs' own step limit (``None`` keeps it).
        backend, prompts, split, modifiers, max_modifiers, reward, num_images, seed_pool,
            reward_models, invalid_action, invalid_penalty, render_mode: As in :class:`PromptRewriteEnv`,
            for every sub-env.
    """

    env_cls: ClassVar[type[PromptEnv]] = PromptRewriteEnv

    def __init__(
        self,
        num_envs: int,
        backend: str | RewardBackend | None = None,
        *,
        prompts: str | Path | list[str] | None = None,
        split: str = "train",
        modifiers: str | Path | list[str] | None = None,
        max_modifiers: int = 4,
        reward: str = "promptist-v1",
        num_images: int = 2,
        seed_pool: int | None = 16,
        reward_models: dict[str, str] | None = None,
        invalid_action: str = "penalize",
        invalid_penalty: float = -1.0,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
    ) -> None:
        super().__init__(
            num_envs,
            backend,
            render_mode,
            max_episode_steps,
            core_options(PromptRewriteCore, locals()),
        )
