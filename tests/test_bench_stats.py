"""The evaluation statistics and diagnostics against hand-computed values."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from prompt_gym.bench import (
    Interval,
    aggregate,
    ci_overlap,
    diagnostics,
    distinct_fraction,
    interval_estimate,
    iqm,
    mean_length,
    normalize,
    stop_rate,
    words,
)

# --- normalize ---------------------------------------------------------------------------------


def test_normalize_known_values():
    out = normalize([0.3, 0.5, 0.9, 0.1], random_score=0.3, oracle_score=0.7)
    np.testing.assert_allclose(out, [0.0, 0.5, 1.5, -0.5])
    assert out.dtype == np.float64


def test_normalize_oracle_below_random_still_maps_random_to_zero():
    np.testing.assert_allclose(normalize([2.0, 1.0, 0.0], 2.0, 0.0), [0.0, 0.5, 1.0])


@pytest.mark.parametrize(
    ("scores", "r", "o", "match"),
    [
        ([0.1], 0.5, 0.5, "oracle_score == random_score"),
        ([np.nan], 0.0, 1.0, "finite"),
        ([0.1], np.inf, 1.0, "finite"),
        ([0.1], 0.0, np.nan, "finite"),
    ],
)
def test_normalize_errors(scores, r, o, match):
    with pytest.raises(ValueError, match=match):
        normalize(scores, r, o)


# --- iqm ---------------------------------------------------------------------------------------


def test_iqm_eight_values_keeps_middle_four():
    assert iqm(np.arange(1, 9)) == pytest.approx(np.mean([3, 4, 5, 6]))


def test_iqm_ten_values_cuts_floor_of_a_quarter():
    # scipy trims int(0.25 * 10) = 2 from each end: the middle 6 remain.
    x = [100, -50, 3, 4, 5, 6, 7, 8, 200, -70]
    assert iqm(x) == pytest.approx(np.mean([3, 4, 5, 6, 7, 8]))


def test_iqm_seven_values_cuts_one_per_end():
    assert iqm([1, 2, 3, 4, 5, 6, 70]) == pytest.approx(np.mean([2, 3, 4, 5, 6]))


def test_iqm_small_inputs_are_plain_means():
    # int(0.25 * 3) = 0: nothing is trimmed below 4 values.
    assert iqm([1.0, 2.0, 6.0]) == pytest.approx(3.0)
    assert iqm([5.0]) == 5.0


def test_iqm_flattens_runs_by_tasks():
    table = np.array([[1, 2], [3, 4], [5, 6], [7, 8]])
    assert iqm(table) == iqm(np.arange(1, 9))


def test_iqm_empty_raises():
    with pytest.raises(ValueError, match="no values"):
        iqm([])


# --- interval_estimate -------------------------------------------------------------------------


def _noisy(n_runs: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"task{t}": rng.normal(0.2 * t, 0.3, size=n_runs) for t in range(3)}


def test_interval_contains_point_and_counts_values():
    scores = _noisy(20)
    est = interval_estimate(scores, n_resamples=500)
    assert est.low <= est.point <= est.high
    assert est.low < est.high
    assert est.n == 60
    assert est.point == pytest.approx(iqm(np.concatenate(list(scores.values()))))


def test_interval_shrinks_with_more_runs():
    small = interval_estimate(_noisy(10), n_resamples=500)
    large = interval_estimate(_noisy(200), n_resamples=500)
    assert large.high - large.low < 0.5 * (small.high - small.low)


def test_interval_is_reproducible_given_seed():
    scores = _noisy(15)
    a = interval_estimate(scores, n_resamples=300, seed=7)
    b = interval_estimate(scores, n_resamples=300, seed=7)
    c = interval_estimate(scores, n_resamples=300, seed=8)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)


def test_wider_confidence_gives_wider_interval():
    scores = _noisy(15)
    narrow = interval_estimate(scores, confidence=0.5, n_resamples=500)
    wide = interval_estimate(scores, confidence=0.99, n_resamples=500)
    assert wide.low <= narrow.low and narrow.high <= wide.high


def test_stratified_bootstrap_never_mixes_tasks():
    # Every stratified resample has exactly 4 zeros and 4 ones, so its IQM is always 0.5.
    scores = {"A": [0.0] * 4, "B": [1.0] * 4}
    est = interval_estimate(scores, n_resamples=1000)
    assert (est.point, est.low, est.high) == (0.5, 0.5, 0.5)


def test_pooled_bootstrap_would_vary():
    # The control for the test above: pooling the 8 values as one task gives a real interval.
    est = interval_estimate({"pooled": [0.0] * 4 + [1.0] * 4}, n_resamples=1000)
    assert est.low < 0.5 < est.high


def test_statistic_sees_the_concatenated_strata():
    seen: list[int] = []

    def mean_and_record(x: np.ndarray) -> float:
        seen.append(x.size)
        return float(np.mean(x))

    est = interval_estimate(
        {"a": [0.0, 1.0, 2.0], "b": [5.0, 6.0]}, mean_and_record, n_resamples=50
    )
    assert set(seen) == {5}
    assert est.point == pytest.approx(2.8)


def test_single_task_is_a_plain_bootstrap_over_runs():
    est = interval_estimate({"only": [0.0, 1.0, 2.0, 3.0, 4.0]}, np.mean, n_resamples=500)
    assert est.point == 2.0
    assert 0.0 <= est.low < 2.0 < est.high <= 4.0


def test_constant_values_give_degenerate_interval_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = interval_estimate({"a": [0.1] * 5, "b": [0.1] * 3})
    assert est == Interval(0.1, 0.1, 0.1, 8)


def test_single_run_tasks_are_allowed():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        only_singles = interval_estimate({"a": [0.2], "b": [0.8]}, np.mean)
        mixed = interval_estimate({"a": [0.0], "b": [1.0, 3.0]}, np.mean, n_resamples=200)
    assert only_singles == Interval(0.5, 0.5, 0.5, 2)
    # "a" is in every resample; "b" resamples to {1, 1}, {1, 3} or {3, 3}: means 2/3, 4/3, 2.
    assert mixed.n == 3
    assert mixed.point == pytest.approx(4 / 3)
    assert 2 / 3 - 1e-12 <= mixed.low <= mixed.high <= 2 + 1e-12


@pytest.mark.parametrize(
    ("scores", "kwargs", "match"),
    [
        ({}, {}, "at least one task"),
        ({"a": []}, {}, "no runs"),
        ({"a": [0.0, np.nan]}, {}, "non-finite"),
        ({"a": [0.0, 1.0]}, {"confidence": 1.0}, "confidence"),
        ({"a": [0.0, 1.0]}, {"n_resamples": 0}, "n_resamples"),
    ],
)
def test_interval_estimate_errors(scores, kwargs, match):
    with pytest.raises(ValueError, match=match):
        interval_estimate(scores, **kwargs)


def test_interval_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Interval(0.5, 0.4, 0.6, 3).point = 1.0  # type: ignore[misc]


# --- aggregate ---------------------------------------------------------------------------------


def _rows() -> list[dict]:
    rows = []
    for agent, offset in [("greedy", 0.0), ("ppo", 1.0)]:
        for tier in ["easy", "hard"]:
            for seed in range(3):
                rows.append(
                    {"agent": agent, "tier": tier, "seed": seed, "normalized": offset + seed}
                )
    return rows


def test_aggregate_per_agent_and_tier():
    out = aggregate(_rows(), group_by=("agent", "tier"), value="normalized", n_resamples=200)
    assert list(out) == [("greedy", "easy"), ("greedy", "hard"), ("ppo", "easy"), ("ppo", "hard")]
    assert out["greedy", "easy"].point == pytest.approx(1.0)  # iqm([0, 1, 2])
    assert out["ppo", "hard"].point == pytest.approx(2.0)
    assert all(i.n == 3 for i in out.values())


def test_aggregate_per_agent_stratified_by_tier_matches_interval_estimate():
    rows = _rows()
    out = aggregate(rows, group_by="agent", value="normalized", stratify_by="tier", seed=3)
    by_tier = {
        t: [r["normalized"] for r in rows if r["agent"] == "ppo" and r["tier"] == t]
        for t in ["easy", "hard"]
    }
    assert list(out) == ["greedy", "ppo"]
    assert out["ppo"] == interval_estimate(by_tier, seed=3)
    assert out["ppo"].n == 6


def test_aggregate_strata_stay_apart():
    rows = [{"agent": "a", "tier": t, "v": float(t)} for t in (0, 1) for _ in range(4)]
    stratified = aggregate(rows, group_by="agent", value="v", stratify_by="tier")["a"]
    pooled = aggregate(rows, group_by="agent", value="v")["a"]
    assert (stratified.low, stratified.high) == (0.5, 0.5)
    assert pooled.low < 0.5 < pooled.high


def test_aggregate_errors():
    with pytest.raises(ValueError, match="at least one row"):
        aggregate([], group_by="agent", value="normalized")
    with pytest.raises(ValueError, match=r"row 0 lacks column\(s\) \['tier'\]"):
        aggregate(
            [{"agent": "a", "normalized": 0.0}],
            group_by="agent",
            value="normalized",
            stratify_by="tier",
        )


# --- ci_overlap --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0.0, 1.0), (0.5, 1.5), True),  # partial
        ((0.0, 1.0), (0.2, 0.4), True),  # nested
        ((0.0, 1.0), (1.0, 2.0), True),  # touching ends
        ((0.0, 1.0), (1.1, 2.0), False),  # apart
        ((0.5, 0.5), (0.5, 0.5), True),  # degenerate, equal
        ((0.5, 0.5), (0.6, 0.6), False),  # degenerate, apart
    ],
)
def test_ci_overlap(a, b, expected):
    ia = Interval(sum(a) / 2, a[0], a[1], 4)
    ib = Interval(sum(b) / 2, b[0], b[1], 4)
    assert ci_overlap(ia, ib) is expected
    assert ci_overlap(ib, ia) is expected


# --- diagnostics -------------------------------------------------------------------------------


def test_words_split_on_whitespace_and_commas():
    assert words("  red circle,blue, square\tsmall\n") == [
        "red",
        "circle",
        "blue",
        "square",
        "small",
    ]
    assert words("") == []
    assert words(" , ,") == []


def test_distinct_fraction():
    assert distinct_fraction(["a", "b", "c", "d"]) == 1.0
    assert distinct_fraction(["same"] * 5) == pytest.approx(1 / 5)  # a constant policy
    assert distinct_fraction(["x", "y", "x"]) == pytest.approx(2 / 3)
    assert distinct_fraction(["a cat", "a  cat"]) == 1.0  # prompts compare as strings


def test_mean_length():
    assert mean_length(
        ["a red circle", "blue,square", "big, green  triangle, top"]
    ) == pytest.approx((3 + 2 + 4) / 3)
    assert mean_length([""]) == 0.0


def test_stop_rate():
    assert stop_rate([True, True, False, False, False]) == pytest.approx(0.4)
    assert stop_rate([False]) == 0.0
    assert stop_rate(np.array([True, True])) == 1.0


@pytest.mark.parametrize("fn", [distinct_fraction, mean_length, stop_rate])
def test_no_episodes_raises(fn):
    with pytest.raises(ValueError, match="no episodes"):
        fn([])


def test_diagnostics_bundle():
    prompts = ["red circle", "red circle", "blue square left"]
    stopped = [True, False, True]
    out = diagnostics(prompts, stopped)
    assert out == {
        "distinct_fraction": pytest.approx(2 / 3),
        "mean_length": pytest.approx(7 / 3),
        "stop_rate": pytest.approx(2 / 3),
    }
    with_oracle = diagnostics(prompts, stopped, oracle_prompts=["a red circle, top left"])
    assert with_oracle["oracle_mean_length"] == 5.0


def test_diagnostics_length_mismatch_raises():
    with pytest.raises(ValueError, match="one stopped flag per prompt"):
        diagnostics(["a", "b"], [True])
