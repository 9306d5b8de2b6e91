"""The suite's outputs: the per-run CSV, the README table, the aggregate and learning-curve plots."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from prompt_gym.bench.diagnostics import diagnostics

CSV_FIELDS = (
    "task",
    "env_id",
    "agent",
    "run",
    "fresh_mean",
    "train_seed_mean",
    "normalized_mean",
    "train_normalized_mean",
    "test_queries_per_episode",
    "train_queries",
    "distinct_fraction",
    "mean_length",
    "stop_rate",
    "seconds",
    "example_prompt",
)


def write_results_csv(reports: list[Any], path: Path) -> None:
    """A row per (task, agent, run)."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for rep in reports:
            for r in rep.results:
                finals = r.entry.finals
                diag = diagnostics([x.prompt for x in finals], [x.stopped for x in finals])
                writer.writerow(
                    {
                        "task": rep.task.name,
                        "env_id": rep.task.env_id,
                        "agent": r.agent,
                        "run": r.run,
                        "fresh_mean": f"{r.fresh.mean():.5f}",
                        "train_seed_mean": f"{r.train.mean():.5f}",
                        "normalized_mean": f"{r.normalized.mean():.4f}",
                        "train_normalized_mean": f"{r.train_normalized.mean():.4f}",
                        "test_queries_per_episode": f"{r.entry.test_queries / len(finals):.1f}",
                        "train_queries": r.entry.train_queries,
                        "distinct_fraction": f"{diag['distinct_fraction']:.3f}",
                        "mean_length": f"{diag['mean_length']:.2f}",
                        "stop_rate": f"{diag['stop_rate']:.3f}",
                        "seconds": f"{r.entry.seconds:.1f}",
                        "example_prompt": finals[0].prompt,
                    }
                )


def markdown(summary: dict[str, Any]) -> str:
    """The README table: one block per task, a row per agent."""
    lines = [
        f"Suite `{summary['suite']}`, {summary['seeds']} runs per agent, "
        f"{summary['seconds'] / 60:.1f} min. Normalised score: random = 0, oracle = 1; IQM of the "
        "per-episode scores on fresh image seeds with a 95% bootstrap CI stratified by run; "
        "`train-seed`: the same on the seeds the agent built its prompt on. Distinct prompts and "
        "lengths (in words) count what the agent wrote (for a rewrite: what follows the source).",
        "",
        "| task | agent | fresh IQM [95% CI] | fresh mean | train-seed IQM | queries/episode "
        "| training queries | distinct | length (oracle) | stop rate |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for task in summary["tasks"]:
        for row in task["agents"]:
            lines.append(
                f"| {task['task']} | {row['agent']} | {row['iqm']:.3f} [{row['ci_low']:.3f}, "
                f"{row['ci_high']:.3f}] | {row['normalized_mean']:.3f} | {row['train_seed_iqm']:.3f} | "
                f"{row['test_queries_per_episode']:.0f} | {row['train_queries']:,.0f} | "
                f"{row['distinct_fraction']:.2f} | {row['mean_length']:.1f} "
                f"({row.get('oracle_mean_length', float('nan')):.1f}) | {row['stop_rate']:.2f} |"
            )
    lines += [
        "",
        "References (raw scores): "
        + "; ".join(
            f"{t['task']} random {t['random_ref']:.4f}, oracle {t['oracle_ref']:.4f}"
            for t in summary["tasks"]
        ),
    ]
    if summary["aggregate_inversion"]:
        lines += [
            "",
            "ImageInversion tiers aggregated (IQM, CI stratified by tier): "
            + "; ".join(
                f"{a} {v['point']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"
                for a, v in summary["aggregate_inversion"].items()
            ),
        ]
    return "\n".join(lines) + "\n"


def plot_aggregate(summary: dict[str, Any], path: Path) -> None:
    """One panel per task: each agent's fresh-seed IQM with its 95% CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = summary["tasks"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        rows = task["agents"]
        y = np.arange(len(rows))
        point = np.array([r["iqm"] for r in rows])
        err = np.array([[r["iqm"] - r["ci_low"], r["ci_high"] - r["iqm"]] for r in rows]).T
        ax.barh(y, point, xerr=err, color="tab:blue", alpha=0.7, capsize=3)
        ax.set_yticks(y, [r["agent"] for r in rows], fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="k", lw=0.5)
        ax.axvline(1, color="tab:green", lw=0.8, ls="--")
        ax.set_title(task["task"], fontsize=9)
        ax.set_xlabel("normalised score (IQM)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(reports: list[Any], path: Path) -> None:
    """One panel per task with learners: mean training return over runs, baselines as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [r for r in reports if any(x.entry.curve for x in r.results)]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
    for ax, rep in zip(axes[0], panels, strict=True):
        for agent in rep.task.agents:
            mine = [x for x in rep.results if x.agent == agent]
            curves = [np.array(x.entry.curve, dtype=float) for x in mine if x.entry.curve]
            if curves:
                grid = np.linspace(0, min(c[-1, 0] for c in curves), 50)
                ys = np.array([np.interp(grid, c[:, 0], c[:, 1]) for c in curves])
                ax.plot(grid, ys.mean(axis=0), label=agent)
                ax.fill_between(grid, ys.min(axis=0), ys.max(axis=0), alpha=0.15)
            elif agent in ("greedy", "rank", "best-fixed"):
                level = float(np.mean([x.train.mean() for x in mine]))
                ax.axhline(level, ls="--", lw=0.8, label=f"{agent} (train seeds)")
        ax.set_title(rep.task.name, fontsize=9)
        ax.set_xlabel("env steps", fontsize=8)
        ax.set_ylabel("training episodic return", fontsize=8)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
