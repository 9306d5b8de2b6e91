"""An honest evaluation protocol: normalised scores, robust aggregates, degeneracy checks.

* **Normalisation.** Each task's scores are mapped to random = 0, oracle = 1
  (:func:`normalize`), so tasks of different difficulty share one scale.
* **Aggregation.** Normalised scores are aggregated with the interquartile mean (:func:`iqm`,
  rliable's ``aggregate_iqm``) and reported with 95% stratified bootstrap confidence intervals
  (:func:`interval_estimate`, :func:`aggregate`): each task's runs are resampled independently,
  so tasks never mix. Two agents whose intervals overlap (:func:`ci_overlap`) are not ranked.
* **Diagnostics.** The fraction of distinct final prompts, their mean length and the stop rate
  (:func:`diagnostics`) expose constant policies that a score alone would hide.

The episode side of the protocol (held-out data, fresh image seeds, counted queries) is
:mod:`prompt_gym.bench.protocol`; the agents of the benchmark are :mod:`.contestants`, the suite
that runs them on every tier :mod:`.suite`, its outputs :mod:`.report`. scipy is imported lazily,
inside the functions.
"""

from prompt_gym.bench.diagnostics import (
    diagnostics,
    distinct_fraction,
    mean_length,
    stop_rate,
    words,
)
from prompt_gym.bench.stats import (
    Interval,
    aggregate,
    ci_overlap,
    interval_estimate,
    iqm,
    normalize,
)

__all__ = [
    "Interval",
    "aggregate",
    "ci_overlap",
    "diagnostics",
    "distinct_fraction",
    "interval_estimate",
    "iqm",
    "mean_length",
    "normalize",
    "stop_rate",
    "words",
]
