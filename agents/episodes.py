"""Episodes: run a batched policy in a native vector env, evaluate it, summarise the results.

* :class:`Episode` is one finished episode (observations, actions, rewards, last info);
* :func:`collect_episodes` runs exactly one episode per sub-env of a native vector env, in
  lockstep (the NEXT_STEP autoreset step after an episode ends is handled here);
* :func:`evaluate_policy` plays evaluation episodes ``seed + i`` in batches, and
  :func:`summarize` turns episodes into the numbers ``prompt-gym eval`` prints.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

import prompt_gym  # noqa: F401  (registers the env ids)
from prompt_gym.progress import advance

Policy = Callable[[dict[str, np.ndarray]], np.ndarray]
"""A batched policy: observations of a vector env in, one action per sub-env out."""

Step = tuple[dict[str, np.ndarray], int, float]
"""One recorded step of a sub-env: the observation it acted on, its action and its reward."""

# Final-info keys averaged over episodes (and logged under charts/) when an env reports them.
FINAL_INFO_KEYS = {
    "similarity": "final_similarity",
    "relevance": "relevance",
    "aesthetic": "aesthetic",
}


@dataclasses.dataclass
class Episode:
    """One finished episode.

    Attributes:
        obs: Each observation key stacked over the episode's steps, ``(T, ...)``.
        actions: ``int64 (T,)``.
        rewards: ``float64 (T,)``.
        info: The info of the last step.
        seed: The reset seed.
        frame: The final ``render()`` frame when collected with ``render=True``.
    """

    obs: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    info: dict[str, Any]
    seed: int | None
    frame: np.ndarray | None = None

    @classmethod
    def from_steps(
        cls,
        steps: Sequence[Step],
        info: dict[str, Any],
        seed: int | None,
        frame: np.ndarray | None = None,
    ) -> Episode:
        """The episode of recorded ``(observation, action, reward)`` steps (at least one)."""
        return cls(
            obs={k: np.stack([s[0][k] for s in steps]) for k in steps[0][0]},
            actions=np.array([s[1] for s in steps], dtype=np.int64),
            rewards=np.array([s[2] for s in steps], dtype=np.float64),
            info=info,
            seed=seed,
            frame=frame,
        )

    @property
    def ret(self) -> float:
        """Undiscounted return."""
        return float(self.rewards.sum())

    @property
    def length(self) -> int:
        """Number of steps."""
        return len(self.actions)

    @property
    def prompt_length(self) -> int:
        """Tokens or modifiers chosen (steps when the env does not say)."""
        for key in ("num_tokens", "num_modifiers"):
            if key in self.info:
                return int(self.info[key])
        return self.length


def _row(infos: dict[str, Any], i: int) -> dict[str, Any]:
    """Sub-env ``i``'s entries of a vector env's batched info dict."""
    return {k: v[i] for k, v in infos.items() if not k.startswith("_") and infos[f"_{k}"][i]}


def collect_episodes(
    venv: gym.vector.VectorEnv,
    policy: Policy,
    seeds: Sequence[int | None],
    options: dict[str, Any] | None = None,
    render: bool = False,
) -> list[Episode]:
    """Run exactly one episode in each sub-env of a native vector env, all in lockstep.

    The vector env uses NEXT_STEP autoreset: the step after an episode ends is a reset step
    whose action is ignored and whose reward is 0. A sub-env whose episode is over takes no
    more part: its reset step is dropped and, until the slowest episode ends, it sends its last
    valid action (STOP, which ends its fresh episode at once) or, in an env without an
    ``action_mask``, the policy's action; none of it is recorded.

    Args:
        venv: A prompt-gym native vector env (``gym.make_vec(id, num_envs=len(seeds))``).
        policy: Batched policy; it sees every sub-env's observation each step.
        seeds: One reset seed per sub-env (``None`` continues its random stream).
        options: Reset options for every sub-env (e.g. ``{"target_index": 3}``).
        render: Keep each episode's final ``render()`` frame (needs ``render_mode``).
    """
    n = venv.num_envs
    if len(seeds) != n:
        raise ValueError(f"got {len(seeds)} seeds for {n} sub-envs")
    obs, _ = venv.reset(seed=list(seeds), options=options)
    steps: list[list[Step]] = [[] for _ in range(n)]
    finals: list[dict[str, Any] | None] = [None] * n
    frames: list[np.ndarray | None] = [None] * n
    running = np.ones(n, dtype=bool)
    while running.any():
        actions = np.asarray(policy(obs), dtype=np.int64)
        idle = ~running
        if "action_mask" in obs:
            masks = obs["action_mask"].astype(bool)[idle]
            actions[idle] = [np.flatnonzero(m)[-1] if m.any() else 0 for m in masks]
        next_obs, rewards, terminated, truncated, infos = venv.step(actions)
        done = (terminated | truncated) & running
        for i in np.flatnonzero(running):
            steps[i].append(({k: v[i] for k, v in obs.items()}, int(actions[i]), float(rewards[i])))
            if done[i]:
                finals[i] = _row(infos, i)
        if render and done.any():
            rendered = venv.render()
            for i in np.flatnonzero(done):
                frames[i] = rendered[i]
        running &= ~done
        advance(int(done.sum()))
        obs = next_obs
    return [Episode.from_steps(steps[i], finals[i], seeds[i], frames[i]) for i in range(n)]


def evaluate_policy(
    policy: Policy,
    env_id: str,
    episodes: int,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    batch: int = 32,
) -> list[Episode]:
    """Evaluation episodes of a batched policy, ``batch`` sub-envs at a time.

    Args:
        policy: The batched policy (e.g. an agent's ``load_policy(path)[0]``).
        env_id: The env id to play.
        episodes: Number of episodes; episode ``i`` is reset with seed ``seed + i``.
        seed: Reset seed of episode 0.
        env_kwargs: Env keyword arguments.
        options: Reset options of every episode.
        batch: Sub-envs of each vector env (the results do not depend on it).

    Raises:
        ValueError: If ``episodes < 1``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    out: list[Episode] = []
    for start in range(0, episodes, batch):
        seeds = list(range(seed + start, seed + min(episodes, start + batch)))
        venv = gym.make_vec(env_id, num_envs=len(seeds), **(env_kwargs or {}))
        try:
            out += collect_episodes(venv, policy, seeds, options)
        finally:
            venv.close()
    return out


def ci95(values: Iterable[float]) -> float:
    """Half-width of a normal-approximation 95% confidence interval of the mean.

    >>> ci95([1.0, 1.0])
    0.0
    """
    x = np.asarray(list(values), dtype=np.float64)
    if len(x) < 2:
        return float("nan")
    return float(1.96 * x.std(ddof=1) / math.sqrt(len(x)))


def episode_means(episodes: Sequence[Episode]) -> dict[str, float]:
    """``mean_return``, ``mean_length``, ``mean_prompt_length`` and ``mean_<score>`` of the final
    scores the episodes report (:data:`FINAL_INFO_KEYS`)."""
    out = {
        "mean_return": float(np.mean([e.ret for e in episodes])),
        "mean_length": float(np.mean([e.length for e in episodes])),
        "mean_prompt_length": float(np.mean([e.prompt_length for e in episodes])),
    }
    for key, name in FINAL_INFO_KEYS.items():
        values = [float(e.info[key]) for e in episodes if key in e.info]
        if values:
            out[f"mean_{name}"] = float(np.mean(values))
    return out


def summarize(episodes: Sequence[Episode], env_id: str, n_examples: int = 5) -> dict[str, Any]:
    """The numbers ``prompt-gym eval`` reports for a list of episodes."""
    returns = [e.ret for e in episodes]
    out: dict[str, Any] = {"env_id": env_id, "episodes": len(episodes), **episode_means(episodes)}
    out["std_return"] = float(np.std(returns))
    out["ci95"] = ci95(returns)
    keep = ("prompt", "similarity", "target_id", "source", "relevance", "aesthetic")
    out["examples"] = [
        {"seed": e.seed, "return": e.ret, **{k: _plain(e.info[k]) for k in keep if k in e.info}}
        for e in episodes[:n_examples]
    ]
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
