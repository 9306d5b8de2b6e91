"""The suite's agents: each trains (if it learns) and plays the evaluation episodes of one run.

Every contestant is a function ``(job) -> Entry``. It may use the training data as much as it
likes, and its reward queries are counted (:class:`~prompt_gym.bench.protocol.QueryCounter`):
``train_queries`` while it trains or chooses, ``test_queries`` while it plays the evaluation
episodes (a search baseline pays all of its search there). The final prompts are scored on
fresh image seeds afterwards by the suite, on a backend of its own.

=================  ======================================================================
agent              what it does
=================  ======================================================================
random             masked uniform actions (random tokens for PromptRewriteTokens)
rank               ImageInversion: appends every candidate in rank order, never STOPs
                   ("append everything"; it needs no query to decide)
best-fixed         PromptRewrite: one modifier list for every prompt, built greedily on the
                   training prompts (the list that maximises the mean reward there)
greedy             adds the candidate that helps most on the episode's seeds, until none does
random-search      per episode, random episodes on the same reset until it has spent the
                   greedy agent's mean queries per episode; keeps the best
pez                ImageInversion: PEZ, 16 free-text tokens by gradient through the
                   backend's white-box CLIP (shapes-clip on the shapes presets); its gradient
                   steps query that model, not the generator, so only the images of its
                   found prompt count as queries
reinforce          REINFORCE (candidate-scoring policy for ImageInversion, MLP for rewrite)
ppo, maskable-ppo  Stable-Baselines3 PPO / sb3-contrib MaskablePPO
lm-ppo             PromptRewriteTokens: the Promptist LM-PPO agent (SFT warm start)
=================  ======================================================================

Per-target tasks (the ImagePrompt protocol) give every contestant one target per episode
(``options={"target_index": i}``); there REINFORCE trains a fresh learner per target, and
random search gets REINFORCE's training queries per target.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from prompt_gym.bench.protocol import (
    EVAL_RESET_SEED,
    FinalPrompt,
    QueryCounter,
    family,
    final_prompts,
    held_out_kwargs,
)
from prompt_gym.envs.core import shared_backend

RUN_STRIDE = 1000
"""Evaluation episode ``i`` of run ``r`` is episode ``RUN_STRIDE * r + i`` of the protocol."""


@dataclass(frozen=True)
class Job:
    """One contestant's run on one task.

    Attributes:
        env_id: The task's env id (training uses its defaults, evaluation its held-out data).
        run: Run index; a learner trains with seed ``run + 1``.
        episodes: Evaluation episodes (targets, for a per-target task).
        budget: Training env steps of a learner (per target, for a per-target task).
        logdir: Where learners write their run directories.
        per_target: Whether each episode is its own fixed target (the ImagePrompt protocol).
        search_queries: Random search's query budget per episode.
    """

    env_id: str
    run: int
    episodes: int
    budget: int
    logdir: Path
    per_target: bool = False
    search_queries: float | None = None

    @property
    def first_episode(self) -> int:
        """Protocol index of this run's first evaluation episode."""
        return RUN_STRIDE * self.run

    @property
    def reset_seed(self) -> int:
        """Reset seed of this run's first evaluation episode."""
        return EVAL_RESET_SEED + self.first_episode

    @property
    def eval_kwargs(self) -> dict[str, Any]:
        """Env keyword arguments of the evaluation episodes."""
        return held_out_kwargs(self.env_id)


@dataclass
class Entry:
    """What a contestant produced.

    Attributes:
        agent: Its name.
        finals: One final prompt per evaluation episode.
        train_queries: Reward queries while training or choosing (all targets of the run).
        test_queries: Reward queries while playing the evaluation episodes (all of them).
        curve: Training curve ``(env step, mean episodic return)`` (learners only).
        seconds: Wall time of the whole run.
    """

    agent: str
    finals: list[FinalPrompt]
    train_queries: int = 0
    test_queries: int = 0
    curve: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0


Policy = Callable[[dict[str, np.ndarray]], np.ndarray]


def backend_of(env_id: str) -> Any:
    """The process-wide backend the env id's envs use (its query counter is the agent's)."""
    return shared_backend(gym.spec(env_id).kwargs["backend"])


@cache
def stop_action(env_id: str) -> int | None:
    """The action that ends an episode by the agent's choice (STOP, or EOS)."""
    env = gym.make(env_id)
    stop = int(env.unwrapped.stop_action)  # EOS on PromptRewriteTokens
    env.close()
    return stop


def play(job: Job, episodes_fn: Callable[[int, dict[str, Any] | None], list[Any]]) -> list[Any]:
    """Evaluation episodes: ``episodes_fn(reset_seed, options)`` per target or all at once."""
    if not job.per_target:
        return episodes_fn(job.reset_seed, None)
    out = []
    for i in range(job.episodes):
        out += episodes_fn(job.reset_seed + i, {"target_index": i})
    return out


def _timed(agent: str, job: Job, body: Callable[[QueryCounter], Entry]) -> Entry:
    t0 = time.perf_counter()
    entry = body(QueryCounter(backend_of(job.env_id)))
    entry.agent, entry.seconds = agent, time.perf_counter() - t0
    return entry


def _finals(job: Job, episodes: list[Any]) -> list[FinalPrompt]:
    return final_prompts(episodes, job.env_id, stop_action(job.env_id), job.first_episode)


def evaluation_entry(
    agent: str,
    job: Job,
    evaluate: Callable[..., list[Any]],
    env_kwargs: dict[str, Any] | None = None,
) -> Entry:
    """Evaluation episodes of ``evaluate(env_id, episodes, seed, env_kwargs, options)`` (no
    training), every query counted as a test query; ``env_kwargs`` default to the job's."""
    kwargs = job.eval_kwargs if env_kwargs is None else env_kwargs

    def body(counter: QueryCounter) -> Entry:
        counter.start()
        n = 1 if job.per_target else job.episodes
        eps = play(job, lambda s, o: evaluate(job.env_id, n, s, kwargs, o))
        return Entry(agent, _finals(job, eps), test_queries=counter.stop())

    return _timed(agent, job, body)


def policy_entry(agent: str, job: Job, policy: Policy) -> Entry:
    """Evaluation episodes of a fixed policy (no training)."""
    from prompt_gym.agents.episodes import evaluate_policy

    return evaluation_entry(agent, job, functools.partial(evaluate_policy, policy))


# ------------------------------------------------------------------------------ baselines
def random_agent(job: Job) -> Entry:
    """Masked uniform actions (random tokens until EOS on PromptRewriteTokens)."""
    from prompt_gym.agents.random_agent import RandomPolicy

    if family(job.env_id) != "PromptRewriteTokens":
        return policy_entry("random", job, RandomPolicy(job.run))
    from prompt_gym.agents.lm_rollout import TokenSpace, make_venv, random_rewriter, run_rewriter

    def body(counter: QueryCounter) -> Entry:
        counter.start()
        venv = make_venv(job.env_id, min(job.episodes, 64), job.eval_kwargs)
        seeds = list(range(job.reset_seed, job.reset_seed + job.episodes))
        eps = run_rewriter(venv, random_rewriter(TokenSpace.of(venv), job.run), seeds)
        venv.close()
        return Entry("random", _finals(job, eps), test_queries=counter.stop())

    return _timed("random", job, body)


def rank_policy(obs: dict[str, np.ndarray]) -> np.ndarray:
    """The best-ranked unused candidate, STOP only when none is left ("append everything").

    >>> rank_policy({"action_mask": np.array([[0, 1, 1, 1], [0, 0, 0, 1]])}).tolist()
    [1, 3]
    """
    masks = obs["action_mask"].astype(bool)
    stop = masks.shape[1] - 1
    return np.array([np.flatnonzero(m[:stop])[0] if m[:stop].any() else stop for m in masks])


def rank_agent(job: Job) -> Entry:
    """ImageInversion: append every candidate in rank order."""
    return policy_entry("rank", job, rank_policy)


def fixed_list_policy(modifiers: list[int], n_modifiers: int) -> Policy:
    """PromptRewrite: append ``modifiers`` in order, then STOP (index ``n_modifiers``)."""

    def policy(obs: dict[str, np.ndarray]) -> np.ndarray:
        done = (obs["chosen"] < n_modifiers).sum(axis=1)
        return np.array([modifiers[k] if k < len(modifiers) else n_modifiers for k in done])

    return policy


def best_fixed_agent(job: Job, choose_episodes: int = 32) -> Entry:
    """PromptRewrite: the modifier list that maximises the mean reward on the training prompts.

    Built greedily (best first modifier, then the best second given the first, ...), each list
    valued by ``choose_episodes`` training episodes; those queries are its training queries.
    """
    from prompt_gym.agents.episodes import evaluate_policy

    env = gym.make(job.env_id)
    n_mod, max_mod = len(env.unwrapped.modifiers), env.unwrapped.max_modifiers
    env.close()

    def body(counter: QueryCounter) -> Entry:
        counter.start()
        chosen: list[int] = []
        for _ in range(max_mod):
            values = {}
            for m in (m for m in range(n_mod) if m not in chosen):
                policy = fixed_list_policy([*chosen, m], n_mod)
                eps = evaluate_policy(policy, job.env_id, choose_episodes, job.run * RUN_STRIDE)
                values[m] = float(np.mean([e.ret for e in eps]))
            chosen.append(max(values, key=values.__getitem__))
        train_queries = counter.stop()
        entry = policy_entry("best-fixed", job, fixed_list_policy(chosen, n_mod))
        entry.train_queries = train_queries
        return entry

    return _timed("best-fixed", job, body)


def greedy_agent(job: Job, kwargs: dict[str, Any] | None = None) -> Entry:
    """Greedy search on each episode's own seeds (``kwargs``: other evaluation env kwargs)."""
    from prompt_gym.agents import greedy

    return evaluation_entry("greedy", job, greedy.evaluate, kwargs)


PEZ_STEPS = 300
"""PEZ's 3000 steps scaled to shapes-clip (64-d, 245 tokens: its cosine plateaus within ~200)."""


def pez_agent(job: Job, steps: int = PEZ_STEPS) -> Entry:
    """PEZ on each evaluation episode's target (16 tokens, as PEZ found best)."""
    from prompt_gym.agents import pez

    return evaluation_entry("pez", job, functools.partial(pez.evaluate, steps=steps))


def random_search_agent(job: Job, max_batch: int = 64) -> Entry:
    """Random episodes on each evaluation reset until ``job.search_queries`` are spent; the best.

    Every random episode of an evaluation episode is reset with that episode's seed (the same
    target or source prompt, the same image seeds), so the best one is chosen on the episode's
    own reward, as greedy chooses. Episodes run in batches sized from the cost seen so far, so
    the spend ends within one episode's cost of the budget (the count reported is the spend).
    """
    from prompt_gym.agents.episodes import collect_episodes
    from prompt_gym.agents.random_agent import RandomPolicy

    if job.search_queries is None:
        raise ValueError("random search needs job.search_queries")

    def body(counter: QueryCounter) -> Entry:
        counter.start()
        policy, finals = RandomPolicy(job.run), []
        venvs: dict[int, gym.vector.VectorEnv] = {}
        for i in range(job.episodes):
            options = {"target_index": i} if job.per_target else None
            episode = QueryCounter(counter.backend)
            episode.start()
            best, spent, played = None, 0, 0
            while best is None or spent < job.search_queries:
                k = _batch_size(job.search_queries - spent, spent, played, max_batch)
                if k not in venvs:
                    venvs[k] = gym.make_vec(
                        job.env_id,
                        num_envs=k,
                        vectorization_mode="vector_entry_point",
                        **job.eval_kwargs,
                    )
                eps = collect_episodes(venvs[k], policy, [job.reset_seed + i] * k, options)
                played, spent = played + k, episode.stop()
                top = max(eps, key=lambda e: _value(job, e))
                best = top if best is None or _value(job, top) > _value(job, best) else best
            finals.append(best)
        for venv in venvs.values():
            venv.close()
        return Entry("random-search", _finals(job, finals), test_queries=counter.stop())

    return _timed("random-search", job, body)


def _batch_size(remaining: float, spent: int, played: int, most: int) -> int:
    """Random episodes to play next: the remaining budget at the cost seen so far, at most
    twice what was played (one at first), rounded down: the spend ends within one episode of
    the budget.

    >>> _batch_size(120, 0, 0, 64), _batch_size(120, 9, 1, 64), _batch_size(100, 50, 10, 64)
    (1, 2, 20)
    """
    if played == 0 or spent == 0:
        return min(most, max(1, 2 * played))
    return int(min(most, 2 * played, max(1, np.floor(remaining * played / spent))))


def _value(job: Job, episode: Any) -> float:
    if family(job.env_id) == "ImageInversion":
        return float(episode.info["similarity"])
    return float(episode.ret)


# ------------------------------------------------------------------------------ learners
def _learner(agent: str, job: Job, target_index: int | None = None) -> tuple[Any, Any, Any]:
    """Train a learner; return its module, its args and the training summary."""
    from prompt_gym.agents import reinforce, sb3_ppo
    from prompt_gym.agents.lm_ppo import ppo as lm_ppo

    shared = {
        "env_id": job.env_id,
        "seed": job.run + 1,
        "total_timesteps": job.budget,
        "logdir": str(job.logdir),
        "eval_episodes": 1,  # the run's own end-of-run evaluation (a few queries)
        "save_every": 10**9,
        "examples_every": 10**9,
    }
    if agent == "reinforce":
        inversion = family(job.env_id) == "ImageInversion"
        policy = "candidates" if inversion and target_index is None else "mlp"
        kwargs = dict(job.eval_kwargs) if target_index is not None else {}
        args = reinforce.Args(policy=policy, target_index=target_index, env_kwargs=kwargs, **shared)
        return reinforce, args, reinforce.train(args)
    if agent == "lm-ppo":
        args = lm_ppo.Args(**shared)
        return lm_ppo, args, lm_ppo.train(args)
    args = sb3_ppo.Args(algo=agent, **shared)
    return sb3_ppo, args, sb3_ppo.train(args)


def learner_agent(agent: str, job: Job) -> Entry:
    """Train on the training data, then play the held-out evaluation episodes."""

    def body(counter: QueryCounter) -> Entry:
        counter.start()
        module, args, summary = _learner(agent, job)
        train_queries = counter.stop()
        curve = [(int(s), float(r)) for s, r, *_ in summary["curve"]]
        counter.start()
        kwargs = held_out_kwargs(job.env_id, module.env_kwargs(args))
        eps = module.evaluate(
            job.env_id, job.episodes, job.reset_seed, kwargs, checkpoint=summary["checkpoint"]
        )
        return Entry(agent, _finals(job, eps), train_queries, counter.stop(), curve)

    return _timed(agent, job, body)


def per_target_reinforce(job: Job) -> Entry:
    """The ImagePrompt protocol: a fresh REINFORCE learner per target, its greedy episode."""
    from prompt_gym.agents import reinforce

    def body(counter: QueryCounter) -> Entry:
        finals, train_queries, test_queries, curves = [], 0, 0, []
        for i in range(job.episodes):
            counter.start()
            _, args, summary = _learner("reinforce", job, target_index=i)
            train_queries += counter.stop()
            curves.append(summary["curve"])
            counter.start()
            kwargs = held_out_kwargs(job.env_id, reinforce.env_kwargs(args))
            finals += reinforce.evaluate(
                job.env_id,
                1,
                job.reset_seed + i,
                kwargs,
                {"target_index": i},
                checkpoint=summary["checkpoint"],
            )
            test_queries += counter.stop()
        curve = _mean_curve(curves)
        return Entry("reinforce", _finals(job, finals), train_queries, test_queries, curve)

    return _timed("reinforce", job, body)


def _mean_curve(curves: list[list[Any]]) -> list[tuple[int, float]]:
    """Pointwise mean of curves (truncated to the shortest)."""
    n = min(len(c) for c in curves)
    return [(int(curves[0][k][0]), float(np.mean([c[k][1] for c in curves]))) for k in range(n)]


CONTESTANTS: dict[str, Callable[[Job], Entry]] = {
    "random": random_agent,
    "rank": rank_agent,
    "best-fixed": best_fixed_agent,
    "greedy": greedy_agent,
    "random-search": random_search_agent,
    "pez": pez_agent,
    "reinforce": lambda job: (
        per_target_reinforce(job) if job.per_target else learner_agent("reinforce", job)
    ),
    "ppo": lambda job: learner_agent("ppo", job),
    "maskable-ppo": lambda job: learner_agent("maskable-ppo", job),
    "lm-ppo": lambda job: learner_agent("lm-ppo", job),
}
"""Agent name -> contestant."""
