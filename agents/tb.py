"""What a run shows in TensorBoard: the run's writer, namespaced scalars, images, prompts, curve.

* :class:`RunLogger` is the run's one TensorBoard ``SummaryWriter`` (a context manager, so it is
  closed even when training is interrupted), with ``backend/`` stats, image grids and text;
* :func:`episode_scalars` and :func:`backend_scalars` are the ``charts/`` and ``backend/``
  scalars; :func:`log_examples` logs the greedy policy's frames and prompts;
* :func:`plot_curve` writes the learning-curve PNG; :func:`progress_bar` is the tqdm bar.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from prompt_gym.agents.episodes import (
    FINAL_INFO_KEYS,
    Episode,
    Policy,
    collect_episodes,
    episode_means,
)
from tqdm.auto import tqdm

from prompt_gym.backends import RewardBackend
from prompt_gym.envs.render import tile
from prompt_gym.progress import bar

CURVE_PNG = "learning_curve.png"
"""The learning-curve PNG of a run directory."""


class RunLogger:
    """The run's TensorBoard writer; use it as a context manager so it is always closed.

    Args:
        run_dir: Where the event files go.
        purge_step: On resume, the checkpoint's step: events logged after it by the interrupted
            run are dropped, so the curve has no doubled tail.
        args: The run's ``Args``, logged as ``text/args`` when the run starts (not on resume,
            whose first part logged them).
    """

    def __init__(
        self, run_dir: Path, purge_step: int | None = None, args: Any | None = None
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # TensorBoard reads a directory's event files in name order, and a name starts with the
        # second it was made: a resumed run's file must not share the interrupted one's second.
        stamps = [int(p.name.split(".")[3]) for p in Path(run_dir).glob("events.out.tfevents.*")]
        while stamps and time.time() < max(stamps) + 1:
            time.sleep(0.05)
        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)
        if args is not None and purge_step is None:
            self.text("text/args", args_markdown(args), 0)

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Log ``{tag: value}`` at ``step`` (non-finite values are skipped)."""
        for tag, value in values.items():
            if value is not None and math.isfinite(float(value)):
                self.writer.add_scalar(tag, float(value), step)

    def backend(self, backend: RewardBackend, step: int) -> None:
        """Log the backend's cumulative stats under ``backend/``."""
        self.scalars(backend_scalars(backend), step)

    def image(self, tag: str, frame: np.ndarray, step: int) -> None:
        """Log a ``uint8 (H, W, 3)`` image."""
        self.writer.add_image(tag, frame, step, dataformats="HWC")

    def text(self, tag: str, text: str, step: int) -> None:
        """Log markdown text."""
        self.writer.add_text(tag, text, step)

    def hparams(self, args: Any, metrics: dict[str, float], step: int) -> None:
        """One HParams entry of the run: its ``Args`` and final ``metrics`` (``hparams/`` tags).

        Written into the run's own event file (not the sub-directory ``add_hparams`` makes), so
        the HParams tab lists each run once, next to its scalars.
        """
        from torch.utils.tensorboard.summary import hparams

        values = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}
        tags = {f"hparams/{k}": v for k, v in values.items()}
        for summary in hparams(hparam_values(args), tags):
            self.writer.file_writer.add_summary(summary)
        self.scalars(tags, step)

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


def hparam_values(args: Any) -> dict[str, int | float | str | bool]:
    """An ``Args`` dataclass as HParams values: numbers, strings and bools kept, the rest (``None``,
    dicts, lists) as their JSON text.

    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class A:
    ...     lr: float = 0.1
    ...     backend: str | None = None
    ...     env_kwargs: dict = field(default_factory=lambda: {"level": "style"})
    >>> hparam_values(A())
    {'lr': 0.1, 'backend': 'null', 'env_kwargs': '{"level": "style"}'}
    """
    out: dict[str, int | float | str | bool] = {}
    for name, value in dataclasses.asdict(args).items():
        keep = isinstance(value, int | float | str | bool)
        out[name] = value if keep else json.dumps(value, sort_keys=True, default=str)
    return out


def args_markdown(args: Any) -> str:
    """A markdown table of an ``Args`` dataclass (``text/args``)."""
    rows = ["| setting | value |", "|---|---|"]
    rows += [f"| {k} | `{v!r}` |" for k, v in dataclasses.asdict(args).items()]
    return "\n".join(rows)


def backend_scalars(backend: RewardBackend) -> dict[str, float]:
    """``backend/cache_hit_rate``, ``backend/scene_reuse_rate``, ``backend/images_per_s``, ...

    ``cache_hit_rate`` counts exact ``(prompt, image seed)`` repeats answered from the memory or
    disk cache. In training each episode draws fresh image seeds, so such repeats are rare and
    the rate stays near 0 (it rises in evaluation, which replays fixed seeds). What saves work
    in training is the scene cache of the shapes world: a new prompt that renders a scene already
    drawn with that seed takes its scores without generating. ``scene_reuse_rate`` is that share
    of the cache misses, ``images_reused`` their count.
    """
    stats = backend.stats
    reused = stats.extra.get("images_reused", 0)
    return {
        "backend/cache_hit_rate": stats.cache_hit_rate,
        "backend/scene_reuse_rate": reused / max(1, stats.misses),
        "backend/images_reused": reused,
        "backend/images_per_s": stats.images_per_s,
        "backend/images_generated": stats.images_generated,
    }


def episode_scalars(episodes: Sequence[Episode]) -> dict[str, float]:
    """``charts/`` means over finished episodes: return, length, prompt length, final scores."""
    means = episode_means(episodes)
    out = {
        "charts/episodic_return": means["mean_return"],
        "charts/episode_length": means["mean_length"],
        "charts/prompt_length": means["mean_prompt_length"],
    }
    for name in FINAL_INFO_KEYS.values():
        if f"mean_{name}" in means:
            out[f"charts/{name}"] = means[f"mean_{name}"]
    return out


def top_prompts(
    best: list[dict[str, Any]], episodes: Sequence[Episode], k: int = 5
) -> list[dict[str, Any]]:
    """The ``k`` best ``{return, prompt, target}`` records of ``best`` and ``episodes``."""
    new = [
        {
            "return": e.ret,
            "prompt": str(e.info.get("prompt", "")),
            "target": str(e.info.get("target_id", e.info.get("source", ""))),
        }
        for e in episodes
    ]
    return sorted(best + new, key=lambda b: -b["return"])[:k]


def log_examples(
    logger: RunLogger,
    env_id: str,
    env_kwargs: dict[str, Any],
    policy: Policy,
    state: dict[str, Any],
    options: dict[str, Any] | None = None,
    n: int = 4,
    seed: int = 123_456,
) -> None:
    """Log the greedy policy's final frames (target | generated, a row per episode) and prompts.

    Also logs ``text/best_prompts``, the best prompts seen in training (``state["best"]``).
    """
    step = state["global_step"]
    venv = gym.make_vec(env_id, num_envs=n, render_mode="rgb_array", **env_kwargs)
    try:
        episodes = collect_episodes(
            venv, policy, [seed + i for i in range(n)], options, render=True
        )
    finally:
        venv.close()
    logger.image("images/target_vs_generated", tile([e.frame for e in episodes], axis=0), step)
    logger.text("text/example_prompts", prompts_markdown(top_prompts([], episodes, k=n)), step)
    logger.text("text/best_prompts", prompts_markdown(state["best"]), step)


def prompts_markdown(records: Sequence[dict[str, Any]]) -> str:
    """A markdown table of ``{return, prompt, target}`` records."""
    rows = ["| return | prompt | target / source |", "|---|---|---|"]
    rows += [f"| {r['return']:.4f} | {r['prompt']} | {r['target']} |" for r in records]
    return "\n".join(rows)


def progress_bar(total: int, initial: int = 0, desc: str = "train") -> tqdm:
    """A tqdm bar over environment steps (:func:`prompt_gym.progress.bar`)."""
    return bar(total, desc, "step", initial)


def plot_curve(
    points: Sequence[tuple[int, float]],
    path: Path,
    title: str,
    baseline: float | None = None,
    evals: Sequence[tuple[int, float, float]] = (),
    best: float | None = None,
    baseline_label: str = "random agent (eval)",
) -> Path:
    """Write the learning-curve PNG of :func:`curve_figure` to ``path``; return ``path``."""
    import matplotlib.pyplot as plt

    fig = curve_figure(points, title, baseline, evals, best, baseline_label)
    fig.savefig(path)
    plt.close(fig)
    return path


def curve_figure(
    points: Sequence[tuple[int, float]],
    title: str,
    baseline: float | None = None,
    evals: Sequence[tuple[int, float, float]] = (),
    best: float | None = None,
    baseline_label: str = "random agent (eval)",
) -> Any:
    """A matplotlib figure of mean episodic return against environment steps (Agg backend).

    Args:
        points: ``(step, batch mean return, ...)`` rows of the training curve.
        title: Its title.
        baseline: A reference return drawn as a dashed line (the random agent's by default).
        evals: ``(step, mean return, 95% CI half-width)`` of evaluation runs, drawn as points
            with error bars.
        best: The best-achievable return (:func:`~prompt_gym.agents.runs.caption_oracle`),
            drawn as a dotted line; ``None`` where the env knows none.
        baseline_label: The legend entry of ``baseline``.

    Every line and point drawn has a legend entry.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if points:
        x, y = np.array([p[:2] for p in points], dtype=np.float64).T
        ax.plot(x, y, alpha=0.35, color="C0", label="batch mean")
        k = max(1, len(y) // 20)
        smooth = np.convolve(y, np.ones(k) / k, mode="valid")
        ax.plot(x[k - 1 :], smooth, color="C0", label=f"moving mean ({k})")
    if baseline is not None:
        ax.axhline(baseline, color="gray", ls="--", label=baseline_label)
    if best is not None:
        ax.axhline(best, color="C2", ls=":", label="best achievable (target caption, eval)")
    for i, (step, value, ci) in enumerate(evals):
        ax.errorbar(
            [step],
            [value],
            yerr=[0.0 if np.isnan(ci) else ci],
            fmt="o",
            color="C3",
            capsize=3,
            label="greedy policy (eval, 95% CI)" if i == 0 else None,
        )
    ax.set(xlabel="environment steps", ylabel="episodic return", title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig
