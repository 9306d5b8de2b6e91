"""The benchmark suite: every agent on every tier, several runs, fresh-seed evaluation.

A suite is a list of :class:`Task` (an env id, the agents that play it, a learner budget). For
each task and run, every agent trains on the task's training data (learners) or searches on
each episode (baselines), plays the held-out evaluation episodes, and its final prompts are
scored on fresh image seeds (:mod:`prompt_gym.bench.protocol`). Scores are normalised per task,
random = 0 and oracle = 1:

* ImageInversion: the oracle is each target's own caption (the scene written out), scored on
  the same fresh seeds; with the ``caption-words`` prompt space it is inside the action space.
* The rewrite families: the oracle is greedy search with twice the images
  (``num_images=4`` instead of 2) on each evaluation episode, a stronger search than any
  contestant is given (an agent can exceed 1).

Per task the suite reports, for every agent, the IQM of the normalised per-episode scores with a
95% bootstrap interval stratified by run, the same on the training seeds (the score the agent saw
while building the prompt), the reward queries per episode at test time and in training, and the
diagnostics of its final prompts (distinct fraction, mean length against the oracle's, stop rate).
Aggregates over the ImageInversion tiers are stratified by tier.

Run it with ``python benchmarks/suite.py`` or ``prompt-gym bench --suite shapes`` (``--quick``
for a few minutes on 2 cores).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prompt_gym.bench.contestants import CONTESTANTS, Entry, Job, greedy_agent
from prompt_gym.bench.diagnostics import diagnostics
from prompt_gym.bench.protocol import FreshScorer, family, held_out_kwargs
from prompt_gym.bench.stats import Interval, ci_overlap, interval_estimate, normalize
from prompt_gym.progress import advance, progress


@dataclass(frozen=True)
class Task:
    """One tier of the suite.

    Attributes:
        name: Short name (``inversion-hard``).
        env_id: The registered id.
        agents: Agents in the order they run (random search after the agent whose queries it
            is matched to: greedy, or REINFORCE on a per-target task).
        budget: Training env steps of each learner (per target on a per-target task).
        episodes: Evaluation episodes per run (targets, on a per-target task).
        per_target: The ImagePrompt protocol: each episode is one fixed target.
    """

    name: str
    env_id: str
    agents: tuple[str, ...]
    budget: int
    episodes: int = 48
    per_target: bool = False

    @property
    def search_match(self) -> str:
        """The agent whose queries per episode random search is given."""
        return "reinforce" if self.per_target else "greedy"


_INVERSION = (
    "random",
    "rank",
    "greedy",
    "random-search",
    "pez",
    "reinforce",
    "ppo",
    "maskable-ppo",
)
_REWRITE = ("random", "best-fixed", "greedy", "random-search", "reinforce", "ppo", "maskable-ppo")
_PER_TARGET = ("random", "rank", "greedy", "reinforce", "random-search")

SUITES: dict[str, tuple[Task, ...]] = {
    "shapes": (
        Task("inversion-easy", "ImageInversion-Shapes-Easy-v1", _INVERSION, 20_000),
        Task("inversion-medium", "ImageInversion-Shapes-Medium-v1", _INVERSION, 30_000),
        Task("inversion-hard", "ImageInversion-Shapes-Hard-v1", _INVERSION, 40_000),
        Task(
            "inversion-hard-per-target",
            "ImageInversion-Shapes-Hard-v1",
            _PER_TARGET,
            3_000,
            episodes=8,
            per_target=True,
        ),
        Task("rewrite", "PromptRewrite-Shapes-v1", _REWRITE, 15_000),
        Task(
            "rewrite-tokens",
            "PromptRewriteTokens-Shapes-v1",
            ("random", "greedy", "lm-ppo"),
            40_000,
        ),
    ),
    "shapes-quick": (
        Task("inversion-easy", "ImageInversion-Shapes-Easy-v1", _INVERSION[:-2], 6_000, 24),
        Task("inversion-hard", "ImageInversion-Shapes-Hard-v1", _INVERSION, 8_000, 24),
        Task(
            "inversion-hard-per-target",
            "ImageInversion-Shapes-Hard-v1",
            _PER_TARGET,
            800,
            episodes=4,
            per_target=True,
        ),
        Task("rewrite", "PromptRewrite-Shapes-v1", (*_REWRITE[:-2], "maskable-ppo"), 4_000, 24),
    ),
}
"""Suite name -> tasks. ``shapes`` is the benchmark; ``shapes-quick`` runs in a few minutes."""


@dataclass
class Result:
    """One agent's run on one task, scored.

    Attributes:
        task: Task name.
        agent: Agent name.
        run: Run index.
        entry: What the agent produced.
        fresh: Fresh-seed score per episode.
        normalized: ``fresh`` normalised with the task's references.
        train_normalized: The episodes' own training-seed scores, normalised the same way.
    """

    task: str
    agent: str
    run: int
    entry: Entry
    fresh: np.ndarray
    normalized: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    train_normalized: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

    @property
    def train(self) -> np.ndarray:
        """The episodes' scores on their own (training) image seeds."""
        return np.array([f.train_score for f in self.entry.finals])


@dataclass
class TaskReport:
    """Everything measured on one task."""

    task: Task
    results: list[Result]
    random_ref: float
    oracle_ref: float
    oracle_prompts: list[str]
    intervals: dict[str, Interval]
    train_intervals: dict[str, Interval]


def _score_run(
    task: Task, run: int, scorer: FreshScorer, logdir: Path, say: Callable[[str], None]
) -> tuple[list[Result], np.ndarray, list[str]]:
    """Every agent of ``task`` on run ``run``; and the oracle's fresh scores and prompts."""
    results: list[Result] = []
    matched: dict[str, float] = {}
    for agent in task.agents:
        job = Job(
            task.env_id,
            run,
            task.episodes,
            task.budget,
            logdir,
            per_target=task.per_target,
            search_queries=matched.get(task.search_match),
        )
        entry = CONTESTANTS[agent](job)
        spent = entry.train_queries if task.per_target else entry.test_queries
        matched[agent] = max(1.0, spent / task.episodes)
        fresh = scorer.score(entry.finals)
        results.append(Result(task.name, agent, run, entry, fresh))
        advance(unit="run")
        say(
            f"{task.name:26s} run {run} {agent:14s} fresh {fresh.mean():.4f} "
            f"train-seed {results[-1].train.mean():.4f} queries/ep "
            f"{entry.test_queries / task.episodes:8.1f} train queries {entry.train_queries:9d} "
            f"({entry.seconds:.0f} s)"
        )
    finals = results[0].entry.finals
    if family(task.env_id) == "ImageInversion":
        oracle = scorer.oracle(finals)
        prompts = [scorer.targets[f.key].caption or "" for f in finals]
    else:
        base = Job(task.env_id, run, task.episodes, 0, logdir, per_target=task.per_target)
        stronger = {**held_out_kwargs(task.env_id), "num_images": 4}
        entry = greedy_agent(base, kwargs=stronger)
        oracle, prompts = scorer.score(entry.finals), [f.prompt for f in entry.finals]
    return results, oracle, prompts


def run_task(task: Task, seeds: int, logdir: Path, say: Callable[[str], None]) -> TaskReport:
    """Play, score and summarise one task over ``seeds`` runs."""
    scorer = FreshScorer(task.env_id, held_out_kwargs(task.env_id))
    results: list[Result] = []
    oracle_scores, oracle_prompts = [], []
    for run in range(seeds):
        rows, oracle, prompts = _score_run(task, run, scorer, logdir, say)
        results += rows
        oracle_scores.append(oracle)
        oracle_prompts += prompts
    random_ref = float(np.mean([r.fresh.mean() for r in results if r.agent == "random"]))
    oracle_ref = float(np.mean(np.concatenate(oracle_scores)))
    if not oracle_ref > random_ref:
        raise ValueError(f"{task.name}: the oracle ({oracle_ref}) is not above random")
    for r in results:
        r.normalized = normalize(r.fresh, random_ref, oracle_ref)
        r.train_normalized = normalize(r.train, random_ref, oracle_ref)
    intervals, train_intervals = {}, {}
    for agent in task.agents:
        mine = [r for r in results if r.agent == agent]
        intervals[agent] = interval_estimate({str(r.run): r.normalized for r in mine})
        train_intervals[agent] = interval_estimate({str(r.run): r.train_normalized for r in mine})
    return TaskReport(
        task, results, random_ref, oracle_ref, oracle_prompts, intervals, train_intervals
    )


def separated_pairs(report: TaskReport) -> list[tuple[str, str, bool]]:
    """Pairs of agents whose fresh-seed intervals do not overlap: ``(better, worse, same order
    on the training seeds)``."""
    out = []
    agents = list(report.intervals)
    for i, a in enumerate(agents):
        for b in agents[i + 1 :]:
            ia, ib = report.intervals[a], report.intervals[b]
            if ci_overlap(ia, ib):
                continue
            hi, lo = (a, b) if ia.point > ib.point else (b, a)
            same = report.train_intervals[hi].point > report.train_intervals[lo].point
            out.append((hi, lo, same))
    return out


def aggregate_tiers(reports: list[TaskReport]) -> dict[str, Interval]:
    """Per agent, the IQM over every ImageInversion tier (not per-target), stratified by tier."""
    tiers = [
        r for r in reports if family(r.task.env_id) == "ImageInversion" and not r.task.per_target
    ]
    if not tiers:
        return {}
    common = set.intersection(*(set(r.task.agents) for r in tiers))
    out = {}
    for agent in [a for a in tiers[0].task.agents if a in common]:
        by_tier = {
            r.task.name: np.concatenate([x.normalized for x in r.results if x.agent == agent])
            for r in tiers
        }
        out[agent] = interval_estimate(by_tier)
    return out


def edit(task: Task, prompt: str, key: str) -> str:
    """What the agent wrote: the whole prompt (ImageInversion) or what follows the source.

    >>> edit(SUITES["shapes"][4], "a red circle, vivid, glowing", "a red circle")
    ', vivid, glowing'
    """
    if family(task.env_id) == "ImageInversion" or not prompt.startswith(key):
        return prompt
    return prompt[len(key) :]


def summary_rows(report: TaskReport) -> list[dict[str, Any]]:
    """One row per agent of a task: the figures of the README table."""
    rows = []
    n = report.task.episodes
    for agent in report.task.agents:
        mine = [r for r in report.results if r.agent == agent]
        finals = [f for r in mine for f in r.entry.finals]
        diag = diagnostics(
            [edit(report.task, f.prompt, f.key) for f in finals],
            [f.stopped for f in finals],
            [
                edit(report.task, p, f.key)
                for p, f in zip(report.oracle_prompts, finals, strict=True)
            ],
        )
        iv, tv = report.intervals[agent], report.train_intervals[agent]
        rows.append(
            {
                "task": report.task.name,
                "env_id": report.task.env_id,
                "agent": agent,
                "iqm": iv.point,
                "normalized_mean": float(np.mean([r.normalized.mean() for r in mine])),
                "ci_low": iv.low,
                "ci_high": iv.high,
                "train_seed_iqm": tv.point,
                "fresh_mean": float(np.mean([r.fresh.mean() for r in mine])),
                "train_seed_mean": float(np.mean([r.train.mean() for r in mine])),
                "test_queries_per_episode": float(np.mean([r.entry.test_queries for r in mine]))
                / n,
                "train_queries": float(np.mean([r.entry.train_queries for r in mine])),
                **diag,
                "seconds": float(np.mean([r.entry.seconds for r in mine])),
                "runs": len(mine),
            }
        )
    return rows


def run_suite(
    name: str,
    out: Path,
    seeds: int = 3,
    tasks: list[str] | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run suite ``name`` and write its outputs under ``out``.

    Args:
        name: A key of :data:`SUITES`.
        out: Output folder: ``results.csv`` (a row per agent, task and run), ``summary.json``,
            ``suite.md`` (the README table), ``aggregate.png`` and ``curves.png``.
        seeds: Runs per agent and task (at least 3 for the benchmark's intervals).
        tasks: Only these task names (default: all).
        say: Where progress lines go.

    Raises:
        ValueError: On an unknown suite or task name, or ``seeds < 1``.
    """
    from prompt_gym.bench import report as render

    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; known: {sorted(SUITES)}")
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    chosen = [t for t in SUITES[name] if tasks is None or t.name in tasks]
    unknown = set(tasks or ()) - {t.name for t in SUITES[name]}
    if unknown:
        raise ValueError(f"unknown tasks {sorted(unknown)} in suite {name!r}")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    runs = seeds * sum(len(t.agents) for t in chosen)
    with (
        tempfile.TemporaryDirectory(prefix="prompt-gym-suite-") as logdir,
        progress(runs, f"bench {name}", unit="run"),
    ):
        reports = [run_task(t, seeds, Path(logdir), say) for t in chosen]
    summary = {
        "suite": name,
        "seeds": seeds,
        "seconds": time.perf_counter() - t0,
        "tasks": [
            {
                "task": r.task.name,
                "env_id": r.task.env_id,
                "random_ref": r.random_ref,
                "oracle_ref": r.oracle_ref,
                "agents": summary_rows(r),
                "separated": [list(p) for p in separated_pairs(r)],
            }
            for r in reports
        ],
        "aggregate_inversion": {
            a: dataclasses.asdict(i) for a, i in aggregate_tiers(reports).items()
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    render.write_results_csv(reports, out / "results.csv")
    (out / "suite.md").write_text(render.markdown(summary))
    render.plot_aggregate(summary, out / "aggregate.png")
    render.plot_curves(reports, out / "curves.png")
    say(f"suite {name}: {summary['seconds']:.0f} s; outputs in {out}")
    return summary
