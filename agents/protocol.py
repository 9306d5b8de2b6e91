"""The agent protocol: what ``prompt-gym train`` / ``eval`` (and the benchmark) call on an agent.

Every agent is a module. Each one offers :class:`Agent`'s ``evaluate``, with one signature:
evaluation episodes ``seed + i`` of ``env_id``, returned as
:class:`~prompt_gym.agents.episodes.Episode` lists that
:func:`~prompt_gym.agents.episodes.summarize` reads. A baseline (random, greedy, PEZ) has nothing
to train and takes no checkpoint; a trainable agent (REINFORCE, the SB3 PPOs, LM-PPO) also offers
:class:`TrainableAgent`'s hooks and evaluates the policy of the checkpoint it is given.

:mod:`prompt_gym.agents_registry` names the agents and dispatches through these two protocols;
``tests/test_agent_protocol.py`` checks that every registered module conforms.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from prompt_gym.agents.checkpoints import require_checkpoint
from prompt_gym.agents.episodes import Episode, Policy, evaluate_policy


class Agent(Protocol):
    """What every agent module offers."""

    def evaluate(
        self,
        env_id: str,
        episodes: int,
        seed: int = 0,
        env_kwargs: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        *,
        checkpoint: str | Path | None = None,
    ) -> list[Episode]:
        """Evaluation episodes: episode ``i`` is reset with seed ``seed + i``.

        Args:
            env_id: The env id to play.
            episodes: Number of episodes (>= 1).
            seed: Reset seed of episode 0.
            env_kwargs: Env keyword arguments (``backend``, ``split``, ...).
            options: Reset options of every episode (e.g. ``{"target_index": 3}``).
            checkpoint: A trainable agent's checkpoint file or run directory (required there);
                a baseline takes none.

        Raises:
            ValueError: On bad input, a missing checkpoint, or an env the agent cannot play.
        """
        ...


class TrainableAgent(Agent, Protocol):
    """What a trainable agent module offers besides :meth:`Agent.evaluate`.

    ``Args`` is its settings dataclass (a one-line doc per field); ``--config FILE.yaml`` and the
    ``train`` flags fill it through :func:`~prompt_gym.agents.runs.make_args`.
    """

    Args: type[Any]
    """The settings dataclass: its fields include ``env_id``, ``seed``, ``total_timesteps``."""

    def env_kwargs(self, args: Any) -> dict[str, Any]:
        """Keyword arguments of every env of a run with settings ``args``."""
        ...

    def reset_options(self, args: Any) -> dict[str, Any] | None:
        """Reset options of every episode of a run with settings ``args`` (``None``: none)."""
        ...

    def train(self, args: Any, resume: str | Path | None = None) -> dict[str, Any]:
        """Train with settings ``args`` in a fresh run directory, or continue the run ``resume``.

        Returns:
            The run's summary: ``run_dir``, ``checkpoint``, ``curve_png``, ``global_step``,
            ``seconds``, ``final_return`` (mean training return over the last tenth of updates),
            ``eval`` and ``random_eval`` (:func:`~prompt_gym.agents.episodes.summarize` of the
            trained and the random policy on the same episodes), ``best_prompt`` and ``curve``
            (``(step, return, seconds)`` rows); an agent may add keys (LM-PPO: ``sft_eval``,
            ``eval_split``, ``sft``).
        """
        ...

    def load_policy(self, path: str | Path) -> tuple[Policy, Any]:
        """The greedy batched policy of a checkpoint file, and its run's ``Args``."""
        ...


def checkpoint_evaluate(
    load_policy: Callable[[str | Path], tuple[Policy, Any]], agent: str
) -> Callable[..., list[Episode]]:
    """:meth:`Agent.evaluate` of a trainable agent whose episodes its batched policy plays.

    Args:
        load_policy: The agent's :meth:`TrainableAgent.load_policy`.
        agent: The agent's name, for the error without a checkpoint.
    """

    def evaluate(
        env_id: str,
        episodes: int,
        seed: int = 0,
        env_kwargs: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        *,
        checkpoint: str | Path | None = None,
    ) -> list[Episode]:
        policy, _ = load_policy(require_checkpoint(checkpoint, agent))
        return evaluate_policy(policy, env_id, episodes, seed, env_kwargs, options)

    evaluate.__doc__ = (
        f"Greedy evaluation episodes of a {agent} checkpoint's policy (a run directory or "
        "checkpoint file; see :meth:`prompt_gym.agents.protocol.Agent.evaluate`)."
    )
    return evaluate
