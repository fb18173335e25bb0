"""Scoring primitives (mmed/agents/scoring.py): accuracy with a percentile-bootstrap interval
and the paired difference of two systems on the same items."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmed.agents.scoring import accuracy_ci, bootstrap_mean_ci, bootstrap_means, paired_bootstrap_diff


# ---------------------------------------------------------------------------- accuracy_ci
def test_accuracy_ci_hand_case_and_containment():
    r = accuracy_ci([True, True, False, False, True])
    assert r["acc"] == pytest.approx(0.6) and r["n"] == 5
    assert accuracy_ci(iter([True, True, False, False, True])) == r  # any iterable, read once
    assert accuracy_ci([], none_if_empty=True) is None  # "no items" reported as None
    assert 0.0 <= r["lo"] <= 0.6 <= r["hi"] <= 1.0 and r["lo"] < r["hi"]
    assert accuracy_ci([1, 1, 1]) == {"acc": 1.0, "lo": 1.0, "hi": 1.0, "n": 3}
    empty = accuracy_ci([])
    assert empty["n"] == 0 and math.isnan(empty["acc"]) and math.isnan(empty["lo"])


def test_accuracy_ci_width_matches_normal_theory():
    rng = np.random.default_rng(1)
    x = rng.random(400) < 0.5
    r = accuracy_ci(x, n_boot=4000, seed=3)
    se = math.sqrt(r["acc"] * (1 - r["acc"]) / 400)
    assert r["hi"] - r["lo"] == pytest.approx(2 * 1.96 * se, rel=0.1)
    r90 = accuracy_ci(x, n_boot=4000, confidence=0.90, seed=3)
    assert r90["hi"] - r90["lo"] == pytest.approx(2 * 1.645 * se, rel=0.1)


def test_accuracy_ci_is_seeded():
    x = np.arange(60) % 3 == 0
    assert accuracy_ci(x, seed=4) == accuracy_ci(x, seed=4)
    reps4 = bootstrap_means(x, 200, np.random.default_rng(4))
    assert np.array_equal(reps4, bootstrap_means(x, 200, np.random.default_rng(4)))
    assert not np.array_equal(reps4, bootstrap_means(x, 200, np.random.default_rng(5)))
    assert reps4.shape == (200,) and set(np.round(reps4 * 60, 6)) <= set(range(61))  # means of 60 draws


def test_accuracy_ci_rejects_bad_input():
    with pytest.raises(ValueError, match="booleans or 0/1"):
        accuracy_ci([0, 1, 2])
    with pytest.raises(ValueError, match="n_boot"):
        accuracy_ci([True], n_boot=0)
    with pytest.raises(ValueError, match="confidence"):
        accuracy_ci([True], confidence=95)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_mean_ci([0.5, float("nan")])


def test_bootstrap_interval_coverage_near_nominal():
    """Over 300 simulated Bernoulli(0.7) samples of 150, the 95% interval covers 0.7 ~95%."""
    rng = np.random.default_rng(0)
    hits = 0
    for rep in range(300):
        r = accuracy_ci(rng.random(150) < 0.7, n_boot=500, seed=rep)
        hits += r["lo"] <= 0.7 <= r["hi"]
    assert 0.90 <= hits / 300 <= 0.985


# ---------------------------------------------------------------------------- paired
def test_paired_bootstrap_diff_hand_cases():
    a = [True, True, True, False]
    b = [True, False, False, False]
    r = paired_bootstrap_diff(a, b, seed=0)
    assert r["diff"] == pytest.approx(0.5) and r["acc_a"] == 0.75 and r["acc_b"] == 0.25 and r["n"] == 4
    assert r["lo"] <= 0.5 <= r["hi"] and r["lo"] >= 0.0  # b is never right where a is wrong
    same = paired_bootstrap_diff(a, a)
    assert same["diff"] == same["lo"] == same["hi"] == 0.0 and same["p_le_0"] == 1.0
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap_diff(a, b[:3])


def test_paired_interval_is_narrower_than_unpaired_for_correlated_systems():
    rng = np.random.default_rng(2)
    a = rng.random(500) < 0.6
    b = a.copy()
    flip = rng.choice(500, 40, replace=False)
    b[flip] = ~b[flip]
    paired = paired_bootstrap_diff(a, b, seed=1)
    se_unpaired = math.sqrt(a.mean() * (1 - a.mean()) / 500 + b.mean() * (1 - b.mean()) / 500)
    assert paired["hi"] - paired["lo"] < 0.5 * (2 * 1.96 * se_unpaired)
    assert paired["diff"] == pytest.approx(a.mean() - b.mean())


def test_format_diff_writes_a_paired_difference_with_its_interval():
    from mmed.agents.scoring import format_diff

    d = {"diff": 0.0714, "lo": 0.0214, "hi": 0.1214, "n": 140}
    assert format_diff(d) == "+0.071 [+0.02, +0.12]"
    assert format_diff({**d, "diff": -0.05, "lo": -0.1, "hi": 0.0}, interval_digits=3, with_n=True) == \
        "-0.050 [-0.100, +0.000] (n=140)"
    assert format_diff(None) == "n/a"
