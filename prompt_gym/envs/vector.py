"""A native vector env over many cores: one backend call per step for all sub-envs.

Besides the Gymnasium ``VectorEnv`` API, :class:`PromptVectorEnv` offers planners and replaying
agents (the greedy baseline, the LM rollouts) a public batch API: :meth:`~PromptVectorEnv.step_some`
and :meth:`~PromptVectorEnv.reset_one` drive chosen sub-envs with no autoreset step, and
:meth:`~PromptVectorEnv.lookahead` values candidate action sequences of many sub-envs in one
backend call (:mod:`prompt_gym.envs.lookahead`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from prompt_gym.backends import RewardBackend, ScoreResult
from prompt_gym.envs.core import EnvCore, PromptEnv, resolve_backend, slice_result
from prompt_gym.envs.lookahead import score_lookaheads


class PromptVectorEnv(VectorEnv):
    """``num_envs`` copies of a :class:`PromptEnv` family, batched into one backend call per step.

    Behaves exactly like ``SyncVectorEnv`` over the single env with the same seeds (sub-env ``i``
    is seeded ``seed + i``), with ``NEXT_STEP`` autoreset: the step after an episode ends resets
    that sub-env, ignores its action and returns reward 0. Subclasses set ``env_cls`` and list
    the family's keyword arguments in their ``__init__``.

    Args:
        num_envs: Number of sub-envs.
        backend: Preset name or backend instance, shared by all sub-envs.
        render_mode: ``"rgb_array"`` renders every sub-env (a tuple of frames) or ``None``.
        max_episode_steps: Accepted for ``gym.make_vec``; the cores enforce their own limits, so
            it may only lower them (``None`` keeps them).
        core_options: The keyword arguments of each sub-env's core (the single env's).
    """

    env_cls: ClassVar[type[PromptEnv]]
    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["rgb_array"],
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int,
        backend: str | RewardBackend | None,
        render_mode: str | None,
        max_episode_steps: int | None,
        core_options: dict[str, Any],
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.backend = resolve_backend(backend, self.env_cls.default_backend)
        self.cores: list[EnvCore] = [
            self.env_cls.core_cls(self.backend, **core_options) for _ in range(num_envs)
        ]
        if max_episode_steps is not None:
            for core in self.cores:
                core.max_steps = min(core.max_steps, max_episode_steps)
        self.single_observation_space = self.cores[0].observation_space
        self.single_action_space = self.cores[0].action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._observations = create_empty_array(self.single_observation_space, num_envs)
        self._flat_keys = _flat_keys(self.single_observation_space)
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
        obs_list, info_list = [], []
        for i, (core, s) in enumerate(zip(self.cores, seeds, strict=True)):
            if s is not None or self._rngs[i] is None:
                self._rngs[i], _ = seeding.np_random(s)
            obs, info = core.begin(self._rngs[i], options)
            obs_list.append(obs)
            info_list.append(info)
        self._autoreset[:] = False
        return self._batch_obs(obs_list), self._batch_infos(info_list)

    def step(
        self, actions: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env with one backend call for all their requests.

        A sub-env whose episode ended on the previous step is reset instead and its action
        ignored (``NEXT_STEP`` autoreset). Every action is validated before any sub-env changes.

        Raises:
            ValueError: If there is not one action per sub-env, or for an action outside the
                action space (or masked, with ``invalid_action="raise"``).
        """
        actions = self._one_per_env(actions)
        outcomes = self._step(actions, ~self._autoreset)
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminations = np.zeros(self.num_envs, dtype=bool)
        truncations = np.zeros(self.num_envs, dtype=bool)
        obs_list, info_list = [], []
        for i, outcome in enumerate(outcomes):
            core = self.cores[i]
            if outcome is None:
                obs, info = core.begin(self._rngs[i], None)
            else:
                rewards[i], terminations[i], truncations[i], info = outcome
                obs = core.observation_parts()
            obs_list.append(obs)
            info_list.append(info)
        self._autoreset = terminations | truncations
        obs = self._batch_obs(obs_list)
        return obs, rewards, terminations, truncations, self._batch_infos(info_list)

    def step_some(
        self, actions: Sequence[Any], active: np.ndarray
    ) -> list[tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]] | None]:
        """Step the ``active`` sub-envs with one backend call; the others are left as they are.

        Unlike :meth:`step` there is no autoreset step: a sub-env whose episode ends stays
        ended until :meth:`reset_one` (or :meth:`reset`) starts the next. Every action is
        validated before any sub-env changes, so a bad action loses nothing.

        Args:
            actions: One action per sub-env (those of inactive sub-envs are ignored).
            active: ``bool (num_envs,)``: the sub-envs to step.

        Returns:
            Per sub-env ``(obs, reward, terminated, truncated, info)`` with a fresh observation,
            or ``None`` for an inactive one.

        Raises:
            RuntimeError: If an active sub-env's episode is over.
            ValueError: For an invalid action (as :meth:`step`).
        """
        outcomes = self._step(self._one_per_env(actions), active)
        out: list[tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]] | None] = []
        for i, (core, outcome) in enumerate(zip(self.cores, outcomes, strict=True)):
            if outcome is None:
                out.append(None)
                continue
            self._autoreset[i] = outcome[1] or outcome[2]
            out.append((core._observe(), *outcome))
        return out

    def reset_one(
        self, i: int, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset sub-env ``i`` alone: re-seeded with ``seed`` when given, as :meth:`reset` does.

        Returns:
            Its fresh ``(obs, info)``.
        """
        if seed is not None or self._rngs[i] is None:
            self._rngs[i], _ = seeding.np_random(seed)
        self._autoreset[i] = False
        return self.cores[i].reset(self._rngs[i], options)

    @property
    def stop_action(self) -> int:
        """The action that ends an episode by the agent's choice (STOP, or EOS)."""
        return self.cores[0].stop_action

    @property
    def _any_core(self) -> EnvCore:
        """A core holding the set-up every sub-env shares (see ``PromptEnv._any_core``)."""
        return self.cores[0]

    def lookahead(
        self, candidates: Sequence[Sequence[Sequence[int]] | None]
    ) -> list[tuple[np.ndarray, float] | None]:
        """Value candidate action sequences of many sub-envs at once, without taking any.

        :meth:`PromptEnv.lookahead` for every sub-env ``i`` with ``candidates[i]`` given, all
        scored in one backend call; no sub-env changes.

        Args:
            candidates: Per sub-env its candidate action sequences, or ``None`` to skip it.

        Returns:
            Per sub-env ``(values, current)`` as :meth:`PromptEnv.lookahead`, or ``None``.
        """
        if len(candidates) != self.num_envs:
            raise ValueError(f"got candidates for {len(candidates)} of {self.num_envs} sub-envs")
        asked = [i for i, c in enumerate(candidates) if c is not None]
        looks = [self.cores[i].lookahead(candidates[i]) for i in asked]
        out: list[tuple[np.ndarray, float] | None] = [None] * self.num_envs
        for i, values in zip(asked, score_lookaheads(self.backend, looks), strict=True):
            out[i] = values
        return out

    def _one_per_env(self, actions: Any) -> list[Any]:
        """``actions`` as a list of one action per sub-env.

        Raises:
            ValueError: If ``actions`` is not a sequence of ``num_envs`` actions.
        """
        try:
            out = list(actions)
        except TypeError:
            out = None
        if out is None or len(out) != self.num_envs:
            got = f"{len(out)} actions" if out is not None else repr(actions)
            raise ValueError(f"step needs one action per sub-env ({self.num_envs}), got {got}")
        return out

    def _step(
        self, actions: list[Any], active: np.ndarray
    ) -> list[tuple[float, bool, bool, dict[str, Any]] | None]:
        """:meth:`step_some` without the observations (see :meth:`EnvCore.advance`)."""
        live, spans, result = self._plan_and_score(actions, active)
        return self._advance_cores(live, spans, result)

    def _plan_and_score(
        self, actions: list[Any], active: np.ndarray
    ) -> tuple[list[int], list[tuple[int, int]], ScoreResult | None]:
        """Check and plan the actions of the ``active`` cores, then score all their requests."""
        live = np.flatnonzero(active).tolist()
        checked = [self.cores[i].check(actions[i]) for i in live]
        spans: list[tuple[int, int]] = []
        prompts: list[str] = []
        seeds: list[int] = []
        for i, index in zip(live, checked, strict=True):
            p, s = self.cores[i].plan_checked(index)
            spans.append((len(prompts), len(prompts) + len(p)))
            prompts += p
            seeds += s
        aesthetic = any(self.cores[i].needs_aesthetic for i in live)
        result = self.backend.score(prompts, seeds, aesthetic=aesthetic) if prompts else None
        return live, spans, result

    def _advance_cores(
        self, live: list[int], spans: list[tuple[int, int]], result: ScoreResult | None
    ) -> list[tuple[float, bool, bool, dict[str, Any]] | None]:
        """Advance the cores ``live``, core ``live[k]`` with the rows ``spans[k]`` of ``result``."""
        outcomes: list[tuple[float, bool, bool, dict[str, Any]] | None] = [None] * self.num_envs
        for i, (a, b) in zip(live, spans, strict=True):
            core = self.cores[i]
            if b > a and result is not None and core.needs_result():
                outcomes[i] = core.advance(slice_result(result, a, b))
            else:
                outcomes[i] = core.advance(None)
        return outcomes

    def _batch_obs(self, obs_list: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Stack per-env observations into fresh batch arrays (kept as the last observation).

        The same as Gymnasium's ``concatenate`` into new arrays; a ``Dict`` of fixed-shape
        arrays is copied one key at a time with a single ``np.concatenate``.
        """
        space, n = self.single_observation_space, self.num_envs
        out: dict[str, np.ndarray] | None = {} if self._flat_keys else None
        for key, shape, dtype in self._flat_keys:
            items = [obs[key] for obs in obs_list]
            if {getattr(a, "shape", None) for a in items} != {shape}:
                out = None
                break
            array = np.empty((n, *shape), dtype=dtype)
            np.concatenate(items, axis=0, out=array.reshape(n * shape[0], *shape[1:]))
            out[key] = array
        if out is None:
            out = concatenate(space, obs_list, create_empty_array(space, n))
        self._observations = out
        return out

    def _batch_infos(self, info_list: list[dict[str, Any]]) -> dict[str, Any]:
        """The infos of all sub-envs, batched exactly as ``VectorEnv._add_info`` would.

        Scalar and string values that every sub-env reports with the same type are batched one
        key at a time; anything else goes through ``_add_info`` env by env.
        """
        keys = tuple(info_list[0]) if info_list else ()
        if {tuple(info) for info in info_list} != {keys}:
            return self._add_infos(info_list)
        out: dict[str, Any] = {}
        for key in keys:
            values = [info[key] for info in info_list]
            kind = type(values[0])
            if key == "final_obs" or {type(v) for v in values} != {kind}:
                return self._add_infos(info_list)
            if kind in (int, float, bool) or issubclass(kind, np.number):
                array = np.array(values, dtype=kind)
            elif kind is str:
                array = np.empty(self.num_envs, dtype=object)
                array[:] = values
            else:
                return self._add_infos(info_list)
            out[key], out[f"_{key}"] = array, np.ones(self.num_envs, dtype=np.bool_)
        return out

    def _add_infos(self, info_list: list[dict[str, Any]]) -> dict[str, Any]:
        infos: dict[str, Any] = {}
        for i, info in enumerate(info_list):
            infos = self._add_info(infos, info, i)
        return infos

    def action_masks(self) -> np.ndarray:
        """``bool (num_envs, n_actions)``: valid actions of each sub-env (all valid after an end)."""
        masks = np.stack([core.action_mask_parts() for core in self.cores]).astype(bool)
        masks[self._autoreset] = True
        return masks

    def render(self) -> tuple[np.ndarray, ...] | None:
        """A frame per sub-env when ``render_mode="rgb_array"``."""
        if self.render_mode is None:
            return None
        return tuple(core.render() for core in self.cores)


def _flat_keys(space: gym.Space) -> list[tuple[str, tuple[int, ...], np.dtype]]:
    """``(key, shape, dtype)`` of a ``Dict`` of fixed-shape array spaces (at least 1-D), else ``[]``."""
    fixed = (gym.spaces.Box, gym.spaces.MultiBinary, gym.spaces.MultiDiscrete)
    if not isinstance(space, gym.spaces.Dict):
        return []
    if not all(isinstance(sub, fixed) and len(sub.shape) >= 1 for sub in space.values()):
        return []
    return [(key, tuple(sub.shape), sub.dtype) for key, sub in space.items()]
