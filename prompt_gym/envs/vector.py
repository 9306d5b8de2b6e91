"""A native vector env over many cores: one backend call per step for all sub-envs."""

from __future__ import annotations

from copy import deepcopy
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from prompt_gym.backends import RewardBackend
from prompt_gym.envs.core import EnvCore, PromptEnv, resolve_backend, slice_result


class PromptVectorEnv(VectorEnv):
    """``num_envs`` copies of a :class:`PromptEnv` family, batched into one backend call per step.

    Behaves exactly like ``SyncVectorEnv`` over the single env with the same seeds (sub-env ``i``
    is seeded ``seed + i``), with ``NEXT_STEP`` autoreset: the step after an episode ends resets
    that sub-env, ignores its action and returns reward 0. Subclasses set ``env_cls``.

    Args:
        num_envs: Number of sub-envs.
        backend: Preset name or backend instance, shared by all sub-envs.
        render_mode: ``"rgb_array"`` renders every sub-env (a tuple of frames) or ``None``.
        max_episode_steps: Accepted for ``gym.make_vec``; the cores enforce their own limits, so
            it may only lower them (``None`` keeps them).
        **kwargs: Passed to each sub-env's core.
    """

    env_cls: ClassVar[type[PromptEnv]]
    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["rgb_array"],
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int,
        backend: str | RewardBackend | None = None,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.backend = resolve_backend(backend, self.env_cls.default_backend)
        self.cores: list[EnvCore] = [
            self.env_cls.core_cls(self.backend, **kwargs) for _ in range(num_envs)
        ]
        if max_episode_steps is not None:
            for core in self.cores:
                core.max_steps = min(core.max_steps, max_episode_steps)
        self.single_observation_space = self.cores[0].observation_space
        self.single_action_space = self.cores[0].action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._observations = create_empty_array(self.single_observation_space, num_envs)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._rngs: list[np.random.Generator | None] = [None] * num_envs

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset every sub-env; an int seed gives sub-env ``i`` the seed ``seed + i``."""
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, int | np.integer):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs")
        infos: dict[str, Any] = {}
        obs_list = []
        for i, (core, s) in enumerate(zip(self.cores, seeds, strict=True)):
            if s is not None or self._rngs[i] is None:
                self._rngs[i], _ = seeding.np_random(s)
            obs, info = core.reset(self._rngs[i], options)
            obs_list.append(obs)
            infos = self._add_info(infos, info, i)
        self._autoreset[:] = False
        self._observations = concatenate(
            self.single_observation_space, obs_list, self._observations
        )
        return deepcopy(self._observations), infos

    def step(
        self, actions: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env with one backend call for all their requests."""
        actions = list(gym.vector.utils.iterate(self.action_space, actions))
        outcomes = self.step_cores(actions, ~self._autoreset)
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminations = np.zeros(self.num_envs, dtype=bool)
        truncations = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        obs_list = []
        for i, outcome in enumerate(outcomes):
            if outcome is None:
                obs, info = self.cores[i].reset(self._rngs[i], None)
            else:
                obs, rewards[i], terminations[i], truncations[i], info = outcome
            obs_list.append(obs)
            infos = self._add_info(infos, info, i)
        self._autoreset = terminations | truncations
        self._observations = concatenate(
            self.single_observation_space, obs_list, self._observations
        )
        return deepcopy(self._observations), rewards, terminations, truncations, infos

    def step_cores(self, actions: list[Any], active: np.ndarray) -> list[tuple[Any, ...] | None]:
        """Step the ``active`` cores with one backend call; ``None`` for the others.

        Every action is validated before any core changes, so a bad action loses nothing.
        """
        for i, core in enumerate(self.cores):
            if active[i]:
                core.check(actions[i])
        spans: list[tuple[int, int] | None] = []
        prompts: list[str] = []
        seeds: list[int] = []
        for i, core in enumerate(self.cores):
            if not active[i]:
                spans.append(None)
                continue
            p, s = core.plan(actions[i])
            spans.append((len(prompts), len(prompts) + len(p)))
            prompts += p
            seeds += s
        result = self.backend.score(prompts, seeds) if prompts else None
        outcomes: list[tuple[Any, ...] | None] = []
        for core, span in zip(self.cores, spans, strict=True):
            if span is None:
                outcomes.append(None)
            else:
                part = slice_result(result, *span) if span[1] > span[0] else None
                outcomes.append(core.finish(part))
        return outcomes

    def reset_core(
        self, i: int, seed: int | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset sub-env ``i`` alone (re-seeding it when ``seed`` is given)."""
        if seed is not None or self._rngs[i] is None:
            self._rngs[i], _ = seeding.np_random(seed)
        return self.cores[i].reset(self._rngs[i], None)

    def action_masks(self) -> np.ndarray:
        """``bool (num_envs, n_actions)``: valid actions of each sub-env (all valid after an end)."""
        masks = np.stack([core.action_mask() for core in self.cores]).astype(bool)
        masks[self._autoreset] = True
        return masks

    def render(self) -> tuple[np.ndarray, ...] | None:
        """A frame per sub-env when ``render_mode="rgb_array"``."""
        if self.render_mode is None:
            return None
        return tuple(core.render() for core in self.cores)
