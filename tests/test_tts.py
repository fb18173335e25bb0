"""Test-time scaling: majority vote, subsampled curves, adaptive allocation."""

import numpy as np
import pytest

from mmed.eval.tts import adaptive_accuracy, adaptive_allocation, panel_disagreement, per_item_vote_accuracy, scaling_curve, vote


def test_vote_majority_ties_and_invalid():
    assert vote([1, 1, 0]) == 1
    assert vote([None, 2, None]) == 2
    assert vote([None, None]) is None
    assert vote([0, 1]) == 0 and vote([1, 0]) == 1  # tie -> first in order
    assert vote([2, 1, 1, 2, 3]) == 2


def test_expected_vote_accuracy_matches_binomial():
    # one item, 16 samples, 10 correct (gold 0), 6 wrong (1): P(majority of 3 correct)
    s = [[0] * 10 + [1] * 6]
    per = per_item_vote_accuracy(s, [0], [1, 3, 16], n_resamples=4000, seed=0)
    assert per[1][0] == pytest.approx(10 / 16, abs=0.03)
    # hypergeometric: P(>=2 of 3 drawn from 10 good / 6 bad without replacement)
    from math import comb
    p3 = (comb(10, 2) * comb(6, 1) + comb(10, 3)) / comb(16, 3)
    assert per[3][0] == pytest.approx(p3, abs=0.03)
    assert per[16][0] == 1.0


def test_curve_increases_for_better_than_chance_items():
    rng = np.random.default_rng(0)
    samples = [[0 if rng.random() < 0.65 else int(rng.integers(1, 4)) for _ in range(16)] for _ in range(60)]
    curve = scaling_curve(samples, [0] * 60, [1, 4, 16], n_resamples=100, n_boot=200)
    accs = [c["acc"] for c in curve]
    assert accs[0] < accs[1] < accs[2]
    assert all(c["lo"] <= c["acc"] <= c["hi"] for c in curve)


def test_panel_disagreement():
    ok = lambda p: {"parsed": p, "valid": True}
    bad = {"parsed": None, "valid": False}
    assert panel_disagreement([ok(1), ok(1), ok(1)]) == 0.0
    assert panel_disagreement([ok(1), ok(1), ok(0)]) == pytest.approx(1 / 3)
    assert panel_disagreement([ok(1), bad, bad]) == pytest.approx(2 / 3)  # invalids never agree


def test_adaptive_allocation_keeps_the_mean_and_favours_hard_items():
    d = [0, 0, 0, 0, 2 / 3, 2 / 3, 1 / 3, 1 / 3]
    n = adaptive_allocation(d, mean_budget=4, n_max=16)
    assert n.sum() == 32 and n.min() >= 1 and n.max() <= 16
    assert n[4] > n[6] > n[0]
    flat = adaptive_allocation([0.5] * 8, mean_budget=4, n_max=16)
    assert set(flat.tolist()) == {4}
    with pytest.raises(ValueError):
        adaptive_allocation(d, mean_budget=20, n_max=16)


def test_adaptive_beats_uniform_when_difficulty_predicts_need():
    # easy items: always right with 1 sample; hard items: 56% right per sample, plurality-correct
    easy = [[0] * 16 for _ in range(20)]
    hard = [[0] * 9 + [1] * 4 + [2] * 3 for _ in range(20)]
    samples, gold = easy + hard, [0] * 40
    d = [0.0] * 20 + [2 / 3] * 20
    uni = adaptive_accuracy(samples, gold, [3] * 40, n_resamples=300, n_boot=200)
    ada = adaptive_accuracy(samples, gold, adaptive_allocation(d, 3, 16), n_resamples=300, n_boot=200)
    assert ada["mean_samples"] == uni["mean_samples"] == 3
    assert ada["acc"] > uni["acc"] + 0.03


def test_budgets_above_n_samples_are_an_error_naming_them_not_dropped():
    from mmed.config import load_profile
    from mmed.eval.tts import run_test_time_scaling

    prof = load_profile("smoke")
    with pytest.raises(ValueError, match=r"budget\(s\) \[8, 16\] exceed n_samples=4"):
        run_test_time_scaling(None, prof, {}, n_samples=4, budgets=[1, 2, 4, 8, 16])
