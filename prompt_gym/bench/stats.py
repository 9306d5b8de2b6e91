"""Normalised scores, the interquartile mean and stratified bootstrap confidence intervals.

The estimators follow rliable (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical
Precipice"), written on scipy instead of importing rliable:

* :func:`normalize` maps a task's raw scores to ``(s - random) / (oracle - random)``.
* :func:`iqm` is rliable's ``metrics.aggregate_iqm``: ``scipy.stats.trim_mean(x, 0.25)`` over
  all runs x tasks flattened into one array.
* :func:`interval_estimate` is rliable's ``library.get_interval_estimates`` with a percentile
  stratified bootstrap: each task's runs are resampled with replacement independently of the
  other tasks (``scipy.stats.bootstrap`` with one sample per task, ``paired=False``).
* :func:`aggregate` groups a table of rows and estimates one interval per group.

scipy is imported inside the functions so that ``import prompt_gym`` stays light.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Statistic = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap confidence interval.

    Attributes:
        point: The statistic on all values.
        low: Lower end of the confidence interval.
        high: Upper end of the confidence interval.
        n: Number of values (runs summed over tasks) the estimate is computed from.
    """

    point: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.point:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n})"


def normalize(
    scores: Sequence[float] | np.ndarray, random_score: float, oracle_score: float
) -> np.ndarray:
    """Scores on the scale random = 0, oracle = 1: ``(s - random) / (oracle - random)``.

    Args:
        scores: Raw scores of one task.
        random_score: The random policy's score on that task.
        oracle_score: The oracle's score on that task.

    Returns:
        ``float64`` array of the shape of ``scores``.

    Raises:
        ValueError: If ``oracle_score == random_score`` or any input is not finite.

    >>> normalize([1.0, 2.0, 5.0], random_score=1.0, oracle_score=5.0).tolist()
    [0.0, 0.25, 1.0]
    """
    s = np.asarray(scores, dtype=np.float64)
    if not (np.all(np.isfinite(s)) and math.isfinite(random_score) and math.isfinite(oracle_score)):
        raise ValueError(
            f"normalize needs finite scores and references, got scores={s.tolist()}, "
            f"random_score={random_score}, oracle_score={oracle_score}"
        )
    if oracle_score == random_score:
        raise ValueError(
            f"oracle_score == random_score == {oracle_score}: the task does not separate the "
            "oracle from random, so normalised scores are undefined; drop the task or fix its "
            "references"
        )
    return (s - random_score) / (oracle_score - random_score)


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean of the values left after trimming 25% from each end.

    Exactly rliable's ``aggregate_iqm``: ``scipy.stats.trim_mean(x, 0.25, axis=None)`` over the
    flattened values. scipy cuts ``int(0.25 * n)`` values (rounded down) from each end of the
    sorted values, so 8 values keep the middle 4 and 10 values keep the middle 6.

    Args:
        values: Any array of values (flattened; e.g. runs x tasks).

    Raises:
        ValueError: If there are no values.

    >>> iqm([1, 2, 3, 4, 5, 6, 7, 8])  # mean(3, 4, 5, 6)
    4.5
    >>> iqm([0, 1, 2, 3, 4, 5, 6, 7, 8, 100])  # int(2.5) = 2 cut per end: mean(2, ..., 7)
    4.5
    """
    from scipy.stats import trim_mean

    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("iqm of no values")
    return float(trim_mean(x, 0.25))


def interval_estimate(
    scores_by_task: Mapping[str, Sequence[float] | np.ndarray],
    statistic: Statistic = iqm,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """The statistic over all tasks' runs with a stratified percentile bootstrap interval.

    Each task's runs are resampled with replacement independently (stratified by task, as in
    rliable), the resamples are concatenated and ``statistic`` is applied to the result. With one
    task this is the plain bootstrap over runs. A task with a single run is allowed: resampling
    it always gives that run, so it enters every resample unchanged. When all values are equal
    the interval is that value (``low == high == point``).

    Args:
        scores_by_task: Each task's (normalised) scores, one per run.
        statistic: Maps a flat array of values to a float; :func:`iqm` by default.
        confidence: Confidence level of the interval, in ``(0, 1)``.
        n_resamples: Bootstrap resamples.
        seed: Seed of the bootstrap's generator (same seed, same interval).

    Returns:
        The :class:`Interval`; ``n`` is the number of values over all tasks.

    Raises:
        ValueError: On no tasks, a task without runs, non-finite scores, ``confidence`` outside
            ``(0, 1)`` or ``n_resamples < 1``.

    >>> interval_estimate({"a": [0.0] * 4, "b": [1.0] * 4})  # strata are never mixed
    Interval(point=0.5, low=0.5, high=0.5, n=8)
    """
    # 1. Check inputs.
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not scores_by_task:
        raise ValueError("interval_estimate needs at least one task")
    samples = {task: np.asarray(s, dtype=np.float64).ravel() for task, s in scores_by_task.items()}
    for task, x in samples.items():
        if x.size == 0:
            raise ValueError(f"task {task!r} has no runs")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"task {task!r} has non-finite scores: {x.tolist()}")

    # 2. Point estimate; a constant table has a degenerate interval.
    everything = np.concatenate(list(samples.values()))
    point = float(statistic(everything))
    if np.ptp(everything) == 0.0 or all(x.size == 1 for x in samples.values()):
        return Interval(point, point, point, everything.size)

    # 3. Stratified bootstrap: single-run tasks are constant under resampling.
    fixed = [x for x in samples.values() if x.size == 1]
    resampled = [x for x in samples.values() if x.size > 1]

    def on_resample(*xs: np.ndarray) -> float:
        return float(statistic(np.concatenate([*xs, *fixed])))

    low, high = _percentile_bootstrap(resampled, on_resample, confidence, n_resamples, seed)
    return Interval(point, low, high, everything.size)


def _percentile_bootstrap(
    samples: list[np.ndarray],
    statistic: Callable[..., float],
    confidence: float,
    n_resamples: int,
    seed: int,
) -> tuple[float, float]:
    """``scipy.stats.bootstrap`` on independent samples; ``(low, high)`` of the percentile CI."""
    from scipy.stats import bootstrap

    # scipy >= 1.15 takes ``rng``; older versions only ``random_state``.
    rng_arg = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"
    result = bootstrap(
        samples,
        statistic,
        method="percentile",
        vectorized=False,
        paired=False,
        confidence_level=confidence,
        n_resamples=n_resamples,
        **{rng_arg: np.random.default_rng(seed)},
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def aggregate(
    table: Sequence[Mapping[str, Any]],
    *,
    group_by: str | Sequence[str],
    value: str,
    stratify_by: str | None = None,
    statistic: Statistic = iqm,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[Any, Interval]:
    """One :func:`interval_estimate` per group of rows.

    Rows with equal ``group_by`` columns form a group; within a group, rows with equal
    ``stratify_by`` column form a stratum (a task) of the stratified bootstrap, or the whole group
    is one stratum when ``stratify_by`` is ``None``. For example, with rows of
    ``{"agent", "tier", "seed", "episode", "normalized"}``:

    * per (agent, tier) over seeds x episodes: ``group_by=("agent", "tier")``;
    * per agent over tiers, stratified by tier: ``group_by="agent", stratify_by="tier"``.

    Args:
        table: The rows.
        group_by: Column (key = its value) or columns (key = tuple of their values) of a group.
        value: Column of the (normalised) score.
        stratify_by: Column of the strata, or ``None`` for one stratum per group.
        statistic: As in :func:`interval_estimate`.
        confidence: As in :func:`interval_estimate`.
        n_resamples: As in :func:`interval_estimate`.
        seed: As in :func:`interval_estimate` (the same for every group).

    Returns:
        ``{group key: Interval}`` in order of first appearance in ``table``.

    Raises:
        ValueError: On an empty table or a row missing a named column.

    >>> rows = [{"agent": "a", "tier": t, "normalized": v} for t, v in [(1, 0.0), (2, 1.0)]]
    >>> aggregate(rows, group_by="agent", value="normalized", stratify_by="tier")
    {'a': Interval(point=0.5, low=0.5, high=0.5, n=2)}
    """
    if not table:
        raise ValueError("aggregate needs at least one row")
    columns = [group_by] if isinstance(group_by, str) else list(group_by)
    needed = [*columns, value, *([stratify_by] if stratify_by is not None else [])]
    groups: dict[Any, dict[Any, list[float]]] = {}
    for i, row in enumerate(table):
        missing = [c for c in needed if c not in row]
        if missing:
            raise ValueError(f"row {i} lacks column(s) {missing}; it has {sorted(row)}")
        key = row[group_by] if isinstance(group_by, str) else tuple(row[c] for c in columns)
        stratum = None if stratify_by is None else row[stratify_by]
        groups.setdefault(key, {}).setdefault(stratum, []).append(float(row[value]))
    return {
        key: interval_estimate(
            {repr(s): v for s, v in strata.items()},
            statistic,
            confidence=confidence,
            n_resamples=n_resamples,
            seed=seed,
        )
        for key, strata in groups.items()
    }


def ci_overlap(a: Interval, b: Interval) -> bool:
    """Whether two confidence intervals share a point (touching ends count as overlap).

    >>> ci_overlap(Interval(0.5, 0.4, 0.6, 8), Interval(0.65, 0.6, 0.7, 8))
    True
    >>> ci_overlap(Interval(0.5, 0.4, 0.6, 8), Interval(0.8, 0.7, 0.9, 8))
    False
    """
    return a.low <= b.high and b.low <= a.high
