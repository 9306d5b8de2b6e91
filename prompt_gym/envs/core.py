"""The shape every env family shares: a per-episode *core* driven by a single env or a vector env.

A core owns one episode's state and logic but does no scoring itself. A step is split in two:

1. ``plan(action)`` validates the action and returns the (prompt, seed) requests it needs scored
   (possibly none, e.g. appending a modifier before the terminal reward);
2. ``finish(result)`` turns the :class:`~prompt_gym.backends.ScoreResult` for those requests into
   ``(obs, reward, terminated, truncated, info)``.

:class:`PromptEnv` calls the backend once per step for its own core; :class:`PromptVectorEnv`
gathers the requests of all its cores into one backend call. Because a core draws every random
number from its own ``np_random`` and the backend makes batching invisible, the two give the same
trajectories for the same seeds (the registry tests check it against ``SyncVectorEnv``).

Every env class lists its keyword arguments in its own ``__init__`` (``help(ImageInversionEnv)``
shows them) and builds its cores from them. Beyond the Gymnasium API, the envs offer planners
(the greedy baseline, the LM rollouts) a public batch-stepping and planning API:

* ``lookahead(candidates)`` on a single env and ``lookahead(candidates_per_env)`` on a native
  vector env value candidate action sequences without taking them, in one backend call
  (:mod:`prompt_gym.envs.lookahead`);
* ``step_some(actions, active)`` and ``reset_one(i, seed=, options=)`` on a native vector env
  step or reset chosen sub-envs only, with no autoreset step;
* ``stop_action`` (the action that ends an episode by choice) and ``elapsed_steps``;
* read-only properties over the env's data (the targets, prompts, modifiers, reward config and
  the current episode's target and seeds), listed per family in the env class docstrings
  ("Public API"), so agents and the benchmark never read a core: the cores stay private.

The data an env draws from (targets, prompts, modifiers, its tokenizer) comes from its backend's
world (:mod:`prompt_gym.backends.world`); what it derives from a backend once (target sets,
prompt spaces) is memoised per backend in :mod:`prompt_gym.envs.memo`.
"""

from __future__ import annotations

import functools
import inspect
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from prompt_gym.backends import RewardBackend, ScoreResult
from prompt_gym.backends.factory import shared_backend
from prompt_gym.checks import check_type
from prompt_gym.envs.lookahead import Lookahead, score_lookaheads

INVALID_ACTION_MODES = ("penalize", "raise")
"""What a masked action inside the action space does: a penalized no-op (default), or raise."""


def action_index(action: Any, n: int) -> int:
    """The index of an action of ``Discrete(n)``: an integer (Python, NumPy or 0-d array).

    An integral float (``2.0``) is accepted, as it always was; a bool is not an action.

    >>> action_index(np.int64(2), 3)
    2
    >>> action_index(True, 3)
    Traceback (most recent call last):
    ...
    ValueError: action must be an integer in [0, 3), got True

    Raises:
        ValueError: If ``action`` is not an integer in ``[0, n)``.
    """
    index: int | None = None
    if not isinstance(action, bool | np.bool_) and not (
        isinstance(action, np.ndarray) and action.dtype == np.bool_
    ):
        try:
            index = int(action)
            if index != action:
                index = None
        except (TypeError, ValueError, OverflowError):
            index = None
    if index is None:
        raise ValueError(f"action must be an integer in [0, {n}), got {action!r}")
    if not 0 <= index < n:
        raise ValueError(
            f"action {index} is outside the action space Discrete({n}): use an id in [0, {n})"
        )
    return index


def resolve_backend(backend: str | RewardBackend | None, default: str | None) -> RewardBackend:
    """Return a backend instance from a preset name, an instance, or the id's default.

    Raises:
        ValueError: If no backend is given and the id has no default that is installed.
    """
    if isinstance(backend, RewardBackend):
        return backend
    name = backend if backend is not None else default
    if name is None:
        raise ValueError("no backend given; pass backend='shapes' or another preset name")
    return shared_backend(name)


class EnvCore(ABC):
    """One episode's state and rules, without I/O. Subclasses define the spaces and the rules.

    Attributes:
        observation_space: The single-env observation space.
        action_space: The single-env action space.
    """

    observation_space: gym.spaces.Space
    action_space: gym.spaces.Space
    needs_aesthetic: bool = False
    """Whether the requests of :meth:`plan` are scored with their aesthetic scores."""
    stop_action: int
    """The action that ends the episode by the agent's choice (STOP, or EOS)."""

    def __init__(self, backend: RewardBackend, invalid_action: str, invalid_penalty: float) -> None:
        if invalid_action not in INVALID_ACTION_MODES:
            raise ValueError(
                f"invalid_action must be one of {INVALID_ACTION_MODES}, got {invalid_action!r}"
            )
        real = isinstance(invalid_penalty, int | float | np.integer | np.floating)
        if isinstance(invalid_penalty, bool) or not real or not -np.inf < invalid_penalty <= 0:
            raise ValueError(
                f"invalid_penalty must be a finite number <= 0, got {invalid_penalty!r}"
            )
        self.backend = backend
        self.invalid_action = invalid_action
        self.invalid_penalty = float(invalid_penalty)
        self.np_random: np.random.Generator | None = None
        self.done = True
        self.steps = 0
        self._pending: int | None = None
        self._penalized = False

    # -- the two halves of a step ------------------------------------------------------------
    def plan(self, action: Any) -> tuple[list[str], list[int]]:
        """Validate ``action`` and return the requests to score for it (maybe none)."""
        return self.plan_checked(self.check(action))

    def plan_checked(self, index: int | None) -> tuple[list[str], list[int]]:
        """:meth:`plan` for an action :meth:`check` has returned ``index`` for."""
        self._pending, self._penalized = index, index is None
        if index is None:
            return [], []
        return self._requests(index)

    def finish(
        self, result: ScoreResult | None
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply the planned action given the scores of its requests."""
        reward, terminated, truncated, info = self.advance(result)
        return self._observe(), reward, terminated, truncated, info

    def advance(self, result: ScoreResult | None) -> tuple[float, bool, bool, dict[str, Any]]:
        """:meth:`finish` without the observation: ``(reward, terminated, truncated, info)``."""
        self.steps += 1
        if self._penalized:
            reward, terminated, info = self.invalid_penalty, False, self._info()
            info["invalid_action"] = True
        else:
            reward, terminated, info = self._apply(self._pending, result)
        truncated = not terminated and self.steps >= self.max_steps
        self.done = terminated or truncated
        return float(reward), bool(terminated), bool(truncated), info

    def needs_result(self) -> bool:
        """Whether :meth:`advance` needs the scores of the planned requests.

        A vector env that gave the core what it needs from them in another way passes ``None``.
        """
        return True

    def begin(
        self, np_random: np.random.Generator, options: dict[str, Any] | None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """:meth:`reset` for a vector env: the observation may be :meth:`observation_parts`."""
        return self.reset(np_random, options)

    def observation_parts(self) -> dict[str, np.ndarray]:
        """The current observation, possibly sharing memory with the core: read, do not keep.

        A vector env copies these into its batch at once; cores override it to skip the copies
        :meth:`_observe` makes.
        """
        return self._observe()

    def check(self, action: Any) -> int | None:
        """Validate ``action`` without changing state: its index, or ``None`` if penalized.

        An action inside the action space that the mask forbids is penalized (a no-op rewarded
        ``invalid_penalty``) with ``invalid_action="penalize"``, the default, and raises with
        ``invalid_action="raise"``; an action outside the action space always raises.

        Raises:
            RuntimeError: If the episode is over and ``reset()`` was not called.
            ValueError: If the action is not an integer (a bool, a non-integral or infinite
                float), is outside the action space, or is masked while
                ``invalid_action="raise"``.
        """
        if self.done:
            raise RuntimeError("the episode is over: call reset() before step()")
        index = action_index(action, int(self.action_space.n))
        mask = self.action_mask_parts()
        if mask[index]:
            return index
        if self.invalid_action == "penalize":
            return None
        raise ValueError(
            f"action {index} is not allowed now (masked); {describe_mask(mask)}; "
            "invalid_action='penalize' makes a masked action a no-op rewarded invalid_penalty"
        )

    # -- what a family defines ---------------------------------------------------------------
    max_steps: int
    """Step cap (reached only by penalized invalid actions); gives ``truncated=True``."""

    @abstractmethod
    def reset(
        self, np_random: np.random.Generator, options: dict[str, Any] | None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode drawing all randomness from ``np_random``."""

    @abstractmethod
    def action_mask(self) -> np.ndarray:
        """``int8`` array over the action space: 1 where an action is valid now."""

    def action_masks(self) -> np.ndarray:
        """The mask as ``bool`` (the name MaskablePPO looks for)."""
        return self.action_mask().astype(bool)

    def action_mask_parts(self) -> np.ndarray:
        """:meth:`action_mask`, possibly sharing memory with the core: read, do not keep."""
        return self.action_mask()

    def lookahead(self, sequences: Sequence[Sequence[int]]) -> Lookahead:
        """What each action sequence from the current state would be worth, unscored.

        Changes nothing and draws no random number. The actions must be in the action space;
        they are not checked against the mask (see :mod:`prompt_gym.envs.lookahead` for what a
        value is).

        Raises:
            RuntimeError: If the episode is over.
            ValueError: For an action outside the action space.
        """
        if self.done:
            raise RuntimeError("the episode is over: call reset() before lookahead()")
        n = int(self.action_space.n)
        for seq in sequences:
            try:
                for a in seq:
                    action_index(a, n)
            except ValueError:
                raise ValueError(
                    f"lookahead actions must be integers in [0, {n}), got {list(seq)!r}"
                ) from None
        return self._lookahead(sequences)

    @abstractmethod
    def _lookahead(self, sequences: Sequence[Sequence[int]]) -> Lookahead:
        """:meth:`lookahead` for checked sequences."""

    @abstractmethod
    def _requests(self, action: int) -> tuple[list[str], list[int]]:
        """The (prompts, seeds) a valid action needs scored."""

    @abstractmethod
    def _apply(self, action: int, result: ScoreResult | None) -> tuple[float, bool, dict[str, Any]]:
        """Update the state; return ``(reward, terminated, info)``."""

    @abstractmethod
    def _observe(self) -> dict[str, np.ndarray]:
        """A fresh observation of the current state."""

    @abstractmethod
    def _info(self) -> dict[str, Any]:
        """The info dict of the current state."""

    @abstractmethod
    def render(self) -> np.ndarray:
        """An ``rgb_array`` frame of the current state."""


def check_options(options: dict[str, Any] | None, known: Sequence[str]) -> dict[str, Any]:
    """Return ``options`` as a dict after rejecting keys the env does not know."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ValueError(f"options must be a dict or None, got {type(options).__name__}")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown reset options {unknown}; this env accepts {sorted(known)}")
    return options


def core_options(core_cls: type[EnvCore], arguments: dict[str, Any]) -> dict[str, Any]:
    """The keyword-only arguments of ``core_cls`` picked from an env ``__init__``'s ``locals()``.

    An env class lists its arguments in its own ``__init__`` (so ``help()`` shows them) and
    passes ``core_options(Core, locals())`` on, so the list is not written out a second time.

    Each value is checked against the core's type hint when the env is made
    (:func:`prompt_gym.checks.check_type`: an ``int`` argument takes no float, string or bool),
    so a mistyped kwarg fails with its name instead of deep inside the env.

    Raises:
        TypeError: If ``arguments`` lacks one of the core's keyword-only arguments.
        ValueError: If a value does not have its argument's type.
    """
    hints = _keyword_hints(core_cls)
    missing = [n for n in hints if n not in arguments]
    if missing:
        raise TypeError(f"{core_cls.__name__} needs the arguments {missing}")
    return {n: check_type(n, arguments[n], hint, text_floats=False) for n, hint in hints.items()}


@functools.cache
def _keyword_hints(core_cls: type[EnvCore]) -> dict[str, Any]:
    """The keyword-only arguments of ``core_cls`` and their resolved type hints, in order."""
    hints = typing.get_type_hints(core_cls.__init__)
    return {
        p.name: hints.get(p.name, Any)
        for p in inspect.signature(core_cls).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def core_argument(core_cls: type[EnvCore], kwargs: Mapping[str, Any], name: str) -> Any:
    """``kwargs[name]``, else the default of ``core_cls``'s keyword argument ``name``.

    For a family's ``max_episode_steps(kwargs)``, which reads an id's registered kwargs.
    """
    if name in kwargs:
        return kwargs[name]
    return inspect.signature(core_cls).parameters[name].default


class PromptEnv(gym.Env):
    """A single env over one :class:`EnvCore`; subclasses set ``core_cls`` and document the env.

    A subclass's ``__init__`` lists the family's keyword arguments and passes them on as
    ``core_options``, the keyword arguments of its core.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 4}
    core_cls: ClassVar[type[EnvCore]]
    default_backend: ClassVar[str | None] = "shapes"

    def __init__(
        self,
        backend: str | RewardBackend | None,
        render_mode: str | None,
        core_options: dict[str, Any],
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None")
        self.render_mode = render_mode
        self.backend = resolve_backend(backend, self.default_backend)
        self.core = self.core_cls(self.backend, **core_options)
        self.observation_space = self.core.observation_space
        self.action_space = self.core.action_space

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode; see the class docstring."""
        super().reset(seed=seed)
        return self.core.reset(self.np_random, options)

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Take one action; see the class docstring."""
        prompts, seeds = self.core.plan(action)
        aesthetic = self.core.needs_aesthetic
        result = self.backend.score(prompts, seeds, aesthetic=aesthetic) if prompts else None
        return self.core.finish(result)

    def action_masks(self) -> np.ndarray:
        """Valid actions now, as ``bool`` (the name MaskablePPO looks for)."""
        return self.core.action_mask().astype(bool)

    @property
    def stop_action(self) -> int:
        """The action that ends the episode by the agent's choice (STOP, or EOS)."""
        return self.core.stop_action

    @property
    def _any_core(self) -> EnvCore:
        """A core holding the env's set-up (its data and options); the family's public
        read-only properties delegate to it, on a single env and a native vector env alike."""
        return self.core

    @property
    def elapsed_steps(self) -> int:
        """Steps taken in the current episode (0 right after ``reset``)."""
        return self.core.steps

    def lookahead(self, candidates: Sequence[Sequence[int]]) -> tuple[np.ndarray, float]:
        """Value candidate action sequences from the current state, without taking any.

        One backend call scores every candidate with the requests and numbers the env's own
        steps use, so a step that follows is a cache hit; the env's state and its random
        numbers are untouched. See :mod:`prompt_gym.envs.lookahead` for what a value is.

        Args:
            candidates: Action sequences (a single action is a sequence of one).

        Returns:
            ``(values, current)``: ``float (len(candidates),)`` values and the current state's.
        """
        (out,) = score_lookaheads(self.backend, [self.core.lookahead(candidates)])
        return out

    def render(self) -> np.ndarray | None:
        """The current frame when ``render_mode="rgb_array"``, else ``None``."""
        if self.render_mode is None:
            return None
        return self.core.render()


def slice_result(result: ScoreResult, start: int, stop: int) -> ScoreResult:
    """Rows ``start:stop`` of a batched result (aesthetic scores stay deferred if they are)."""
    return result.rows(start, stop)


def describe_mask(mask: np.ndarray, limit: int = 64) -> str:
    """The allowed actions and the mask, in full when short, summarised when long.

    A token env's mask has one entry per vocabulary id (50,257 for GPT-2): its error names the
    range and the count of allowed ids instead of printing them all.

    >>> describe_mask(np.array([1, 0, 1], dtype=np.int8))
    'allowed actions: [0, 2] (action_mask=[1, 0, 1])'
    >>> describe_mask(np.ones(50_257, dtype=np.int8))
    'allowed actions: 50257 of 50257 (ids 0..50256; action_mask of length 50257)'
    """
    allowed = np.flatnonzero(mask)
    if len(mask) <= limit:
        return f"allowed actions: {allowed.tolist()} (action_mask={mask.astype(int).tolist()})"
    span = f"ids {allowed[0]}..{allowed[-1]}" if allowed.size else "none"
    return f"allowed actions: {allowed.size} of {len(mask)} ({span}; action_mask of length {len(mask)})"
