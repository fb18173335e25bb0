"""mmed.eval.theory (the reconstructed Theorem 4.1) and the 08_curriculum_theory checker."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmed.checks import CHECKERS
from mmed.eval import theory as th


# ----------------------------------------------------------------------------------------
# the bound, on hand examples
# ----------------------------------------------------------------------------------------
def test_gd_steps_bound_hand_values():
    # kappa log(e^2/eps) = 10 * log(1 / e^-2) = 20 exactly
    assert th.gd_steps_bound(1.0, 10.0, math.exp(-2)) == 20
    # 3 * log(4 / 0.01) = 17.97... -> 18
    assert th.gd_steps_bound(2.0, 3.0, 0.01) == 18
    # already within eps: nothing to do
    assert th.gd_steps_bound(0.05, 100.0, 0.01) == 0
    with pytest.raises(ValueError):
        th.gd_steps_bound(1.0, 0.5, 0.01)
    with pytest.raises(ValueError):
        th.gd_steps_bound(1.0, 2.0, 0.0)


def test_curriculum_bound_hand_example():
    theta0 = np.zeros(2)
    optima = np.array([[3.0, 4.0], [3.0, 5.0]])  # hops 5 and 1
    b = th.curriculum_bound(theta0, optima, [2.0, 3.0], eps=0.01)
    np.testing.assert_allclose(b.hops, [5.0, 1.0])
    # stage 1 starts exactly at theta0: ceil(2 log(25 / 0.01)) = ceil(15.65) = 16
    # stage 2 starts within sqrt(eps) = 0.1 of theta*_1: ceil(3 log(1.1^2 / 0.01)) = ceil(14.39) = 15
    assert b.stage_steps.tolist() == [16, 15]
    assert b.total == 31
    assert b.log_sum == pytest.approx(math.log(25.0) + math.log(1.0))
    # J = 1 is the direct bound: ceil(3 log(34 / 0.01))
    direct = th.curriculum_bound(theta0, optima[-1:], [3.0], eps=0.01)
    assert direct.total == math.ceil(3 * math.log(34 / 0.01))


def test_curriculum_bound_rejects_bad_input():
    with pytest.raises(ValueError, match="kappas"):
        th.curriculum_bound(np.zeros(2), np.ones((3, 2)), [1.0, 2.0], 0.1)
    with pytest.raises(ValueError, match="eps"):
        th.curriculum_bound(np.zeros(2), np.ones((1, 2)), [1.0], -1.0)
    with pytest.raises(ValueError, match="dimension"):
        th.curriculum_bound(np.zeros(3), np.ones((1, 2)), [1.0], 0.1)


# ----------------------------------------------------------------------------------------
# GD on quadratics: measured steps against the exact rate and the bound
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kappa", [4.0, 25.0, 100.0])
def test_gd_on_slowest_direction_matches_exact_rate_and_bound(kappa):
    d, eps, e0 = 5, 1e-6, 3.0
    stage = th.quadratic_stages(np.zeros((1, d)), [kappa], seed=1)[0]
    w, v = np.linalg.eigh(stage.hessian)
    start = e0 * v[:, 0]  # all the error on the slowest eigenvector (lambda = mu = 1)
    res = th.descend(stage, start, eps)
    # error along the slow direction shrinks by exactly (1 - 1/kappa) per step
    exact = math.ceil(math.log(e0**2 / eps) / (-2 * math.log(1 - 1 / kappa)))
    assert res.reached and abs(res.steps - exact) <= 1
    bound = th.gd_steps_bound(e0, kappa, eps)
    # bound / exact -> -2 kappa log(1 - 1/kappa) = 2 + 1/kappa + ... (2.30 at kappa = 4)
    assert res.steps <= bound <= 2.4 * res.steps


def test_quadratic_stage_values():
    h = np.array([[2.0, 0.0], [0.0, 8.0]])
    s = th.QuadraticStage(hessian=h, opt=np.array([1.0, -1.0]))
    assert (s.mu, s.L) == (2.0, 8.0)
    assert s.loss(np.array([2.0, 0.0])) == pytest.approx(0.5 * (2 * 1 + 8 * 1))
    np.testing.assert_allclose(s.grad(np.array([2.0, 0.0])), [2.0, 8.0])
    np.testing.assert_allclose(s.grad(np.array([[2.0, 0.0], [1.0, -1.0]])), [[2.0, 8.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="positive definite"):
        th.QuadraticStage(hessian=np.diag([1.0, -1.0]), opt=np.zeros(2))
    with pytest.raises(ValueError, match="symmetric"):
        th.QuadraticStage(hessian=np.array([[1.0, 1.0], [0.0, 1.0]]), opt=np.zeros(2))


def test_quadratic_stages_have_requested_condition_numbers():
    stages = th.quadratic_stages(np.ones((3, 4)), [1.0, 7.0, 50.0], seed=3)
    np.testing.assert_allclose(th.stage_kappas(stages), [1.0, 7.0, 50.0])
    np.testing.assert_allclose([s.mu for s in stages], 1.0)


# ----------------------------------------------------------------------------------------
# curriculum vs direct
# ----------------------------------------------------------------------------------------
MONOTONE = th.PathConfig(4, "front", kappa_first=2.0, kappa_last=100.0)
MONOTONE_FLAT_KAPPA = th.PathConfig(4, "front", kappa_first=100.0, kappa_last=100.0)
DETOUR = th.PathConfig(4, "uniform", overshoot=1.0, kappa_first=2.0, kappa_last=100.0)


def test_curriculum_wins_on_monotone_path_with_easier_early_stages():
    r = th.measure(MONOTONE)
    assert r["monotone"]
    assert 0 < r["curriculum_steps"] < r["direct_steps"]
    assert r["curriculum_beats_direct"]
    assert sum(r["stage_steps"]) == r["curriculum_steps"]
    assert r["curriculum_steps"] <= r["bound"] and r["direct_steps"] <= r["direct_bound"]


def test_curriculum_loses_with_equal_conditioning_even_when_monotone():
    r = th.measure(MONOTONE_FLAT_KAPPA)
    assert r["monotone"] and r["curriculum_steps"] > r["direct_steps"]


def test_curriculum_loses_on_detour():
    r = th.measure(DETOUR)
    assert not r["monotone"]
    assert r["curriculum_steps"] > r["direct_steps"]
    # the last hop mirrors theta0 -> target, so the last stage alone costs about as much as direct
    assert abs(r["stage_steps"][-1] - r["direct_steps"]) <= 2


def test_budget_comparison_monotone_vs_detour():
    budget = [100, 300]
    theta0, stages = th.build_problem(MONOTONE)
    mono = th.budget_comparison(stages, theta0, budget, 1e-4)
    assert np.all(mono["curriculum"] < mono["direct"])
    theta0, stages = th.build_problem(DETOUR)
    det = th.budget_comparison(stages, theta0, [400], 1e-4)
    assert det["curriculum"][0] > det["direct"][0]
    # direct errors do not depend on the path: the final stage is the same problem
    np.testing.assert_allclose(th.budget_comparison(stages, theta0, budget, 1e-4)["direct"], mono["direct"])


def test_split_budget():
    assert th.split_budget(10, [1, 1, 2]) == [3, 2, 5] or th.split_budget(10, [1, 1, 2]) == [2, 3, 5]
    assert sum(th.split_budget(7, [0.3, 0.3, 0.4])) == 7
    assert th.split_budget(4, [0, 0]) == [2, 2]
    with pytest.raises(ValueError):
        th.split_budget(5, [-1, 2])


@settings(max_examples=25, deadline=None)
@given(
    n_stages=st.integers(1, 4),
    spacing=st.sampled_from(th.SPACINGS),
    bend=st.floats(0.0, 2.0),
    overshoot=st.sampled_from([0.0, 0.5, 1.0]),
    kappa_first=st.floats(1.0, 30.0),
    kappa_last=st.floats(1.0, 30.0),
    seed=st.integers(0, 1000),
)
def test_bound_holds_for_any_convex_quadratic_path(n_stages, spacing, bend, overshoot, kappa_first, kappa_last, seed):
    if n_stages == 1:
        overshoot = 0.0
    cfg = th.PathConfig(n_stages, spacing, bend, overshoot, kappa_first, kappa_last)
    r = th.measure(cfg, dim=4, distance=5.0, eps=1e-3, seed=seed)
    assert 0 <= r["curriculum_steps"] <= r["bound"]
    assert 0 <= r["direct_steps"] <= r["direct_bound"]


def test_logistic_stages_satisfy_the_assumptions_and_the_bound():
    cfg = th.PathConfig(3, "uniform", bend=0.5, kappa_first=5.0, kappa_last=20.0, family="logistic")
    theta0, stages = th.build_problem(cfg, dim=3, distance=2.0, seed=4)
    for s in stages:
        assert np.linalg.norm(s.grad(s.opt)) < 1e-10
        # gradient matches central finite differences
        x = s.opt + np.array([0.3, -0.2, 0.1])
        fd = [(s.loss(x + h) - s.loss(x - h)) / 2e-6 for h in 1e-6 * np.eye(3)]
        np.testing.assert_allclose(s.grad(x), fd, rtol=1e-5, atol=1e-8)
        # Hessian at x lies within [mu, L]
        p = th._sigmoid(s.X @ x)
        hess = (s.X.T * (p * (1 - p))) @ s.X / len(s.y) + s.lam * np.eye(3)
        eig = np.linalg.eigvalsh(hess)
        assert s.mu - 1e-12 <= eig[0] and eig[-1] <= s.L + 1e-12
    np.testing.assert_allclose(th.stage_kappas(stages), th.kappa_schedule(3, 5.0, 20.0), rtol=1e-9)
    r = th.measure(cfg, dim=3, distance=2.0, seed=4)
    assert 0 < r["curriculum_steps"] <= r["bound"]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        th.LogisticStage(X=np.ones((2, 2)), y=np.array([0.0, 2.0]), lam=1.0)


# ----------------------------------------------------------------------------------------
# paths
# ----------------------------------------------------------------------------------------
def test_path_positions_and_shapes():
    np.testing.assert_allclose(th.path_positions(4), [0.25, 0.5, 0.75, 1.0])
    front = th.path_positions(3, "front")  # hops 1, 0.5, 0.25 of 1.75
    np.testing.assert_allclose(front, [1 / 1.75, 1.5 / 1.75, 1.0])
    np.testing.assert_allclose(th.path_positions(3, "back"), [0.25 / 1.75, 0.75 / 1.75, 1.0])
    with pytest.raises(ValueError, match="spacing"):
        th.path_positions(3, "zigzag")


def test_make_path_geometry():
    theta0, target = np.zeros(3), np.array([2.0, 0.0, 0.0])
    straight = th.make_path(theta0, target, 4)
    np.testing.assert_allclose(straight[:, 0], [0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(straight[:, 1:], 0.0)
    bent = th.make_path(theta0, target, 2, bend=0.5)
    # the midpoint is pushed sideways by bend * |delta| * sin(pi/2) = 1, orthogonal to delta
    assert bent[0, 0] == pytest.approx(1.0) and np.linalg.norm(bent[0, 1:]) == pytest.approx(1.0)
    np.testing.assert_array_equal(bent[-1], target)
    over = th.make_path(theta0, target, 3, overshoot=1.0)
    np.testing.assert_allclose(over[:, 0], [2.0, 4.0, 2.0])
    assert th.is_monotone(theta0, straight) and th.is_monotone(theta0, th.make_path(theta0, target, 4, bend=0.3))
    assert not th.is_monotone(theta0, over)
    assert not th.is_monotone(theta0, th.make_path(theta0, target, 4, bend=1.5))
    with pytest.raises(ValueError, match="coincide"):
        th.make_path(theta0, theta0, 3)
    with pytest.raises(ValueError, match="overshoot"):
        th.make_path(theta0, target, 1, overshoot=0.5)


# ----------------------------------------------------------------------------------------
# where the assumptions stop holding
# ----------------------------------------------------------------------------------------
def test_sgd_noise_floor_formula_matches_simulation():
    stage = th.quadratic_stages(np.zeros((1, 4)), [10.0], seed=0)[0]
    lr, sigma = 1 / stage.L, 0.05
    floor = th.sgd_noise_floor(stage.eigenvalues, lr, sigma)
    # hand value: sum_i lr sigma^2 / (lambda_i (2 - lr lambda_i))
    lam = np.geomspace(1, 10, 4)
    assert floor == pytest.approx(float(np.sum(lr * sigma**2 / (lam * (2 - lr * lam)))))
    trace = th.sgd_error_trace(stage, stage.opt + 0.1, lr=lr, noise_std=sigma, n_steps=400, n_chains=400, seed=1)
    assert trace[150:].mean() == pytest.approx(floor, rel=0.1)
    with pytest.raises(ValueError, match="2/L"):
        th.sgd_noise_floor(stage.eigenvalues, 2.0 / stage.L, sigma)


def test_sgd_reaches_eps_only_below_its_noise_floor():
    theta0, stages = th.build_problem(th.PathConfig(1, kappa_first=10.0, kappa_last=10.0), dim=4, distance=3.0)
    s, eps = stages[0], 1e-3
    unit = th.sgd_noise_floor(s.eigenvalues, 1 / s.L, 1.0)
    low = th.run_direct(stages, theta0, eps, noise_std=math.sqrt(0.1 * eps / unit), n_chains=32, max_steps_per_stage=2000)
    high = th.run_direct(stages, theta0, eps, noise_std=math.sqrt(20 * eps / unit), n_chains=32, max_steps_per_stage=2000)
    assert low.reached and low.total_steps < 2000
    assert high.status == "max_steps"


@pytest.mark.parametrize("scale,status", [(1.0, "reached"), (1.9, "reached"), (2.05, "diverged"), (3.0, "diverged")])
def test_step_size_beyond_two_over_L_diverges(scale, status):
    theta0, stages = th.build_problem(th.PathConfig(1, kappa_first=5.0, kappa_last=5.0), dim=4, distance=3.0)
    assert th.run_direct(stages, theta0, 1e-4, lr_scale=scale, max_steps_per_stage=20_000).status == status


def test_double_well_minima_gradient_and_basins():
    s = th.DoubleWellStage(0.1, dim=2)
    mins = s.minima()
    assert len(mins) == 2
    for x in mins:
        assert x**3 - x - 0.1 == pytest.approx(0.0, abs=1e-9)
    assert s.opt[0] == pytest.approx(max(mins)) and s.opt[0] > 1  # deeper well on the side of the tilt
    assert len(th.DoubleWellStage(0.8).minima()) == 1
    x = np.array([0.3, -0.7])
    fd = [(s.loss(x + h) - s.loss(x - h)) / 2e-6 for h in 1e-6 * np.eye(2)]
    np.testing.assert_allclose(s.grad(x), fd, rtol=1e-6)

    def wells(tilts):
        return [th.DoubleWellStage(c, 2) for c in tilts]

    bad, good = np.array([-1.5, 1.0]), np.array([0.2, 1.0])
    assert th.run_direct(wells([0.1]), bad, 1e-4).status == "stalled"  # wrong well
    assert th.run_curriculum(wells([0.8, 0.4, 0.1]), bad, 1e-4).reached  # carried into the right well
    assert th.run_direct(wells([0.1]), good, 1e-4).reached
    detour = th.run_curriculum(wells([-0.8, -0.4, 0.1]), good, 1e-4)
    assert detour.status == "stalled" and detour.theta[0] == pytest.approx(min(mins), abs=1e-6)


def test_descend_rejects_bad_input():
    stage = th.quadratic_stages(np.zeros((1, 2)), [2.0])[0]
    with pytest.raises(ValueError, match="eps"):
        th.descend(stage, np.ones(2), 0.0)
    with pytest.raises(ValueError, match="rng"):
        th.descend(stage, np.ones(2), 1e-3, noise_std=0.1)
    with pytest.raises(ValueError, match="start"):
        th.descend(stage, np.ones(3), 1e-3)
    with pytest.raises(ValueError, match="stage"):
        th.run_curriculum([], np.ones(2), 1e-3)


# ----------------------------------------------------------------------------------------
# statistics and the sweep summary
# ----------------------------------------------------------------------------------------
def test_correlations_against_numpy_and_ranks():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=30), rng.normal(size=30)
    assert th.pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert th.spearman(x, np.exp(3 * x)) == pytest.approx(1.0)  # monotone transform
    assert th.spearman([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1.0)  # ties
    assert th.fit_line([0, 1, 2], [1, 3, 5]) == pytest.approx((2.0, 1.0))
    with pytest.raises(ValueError, match="constant"):
        th.pearson([1, 1, 1], [1, 2, 3])


def test_sweep_summary_on_a_small_grid():
    grid = th.sweep_grid(n_stages=(1, 2, 4), spacings=("uniform", "front"), bends=(0.0, 0.5), kappas=(10.0,), rising_from=None)
    recs = th.sweep(grid, dim=5, distance=5.0, eps=1e-4)
    assert len(recs) == 1 + 2 * 2 * 2  # J = 1 has no spacing/bend variants
    s = th.correlation_summary(recs)
    assert s["n"] == len(recs) and s["bound_violations"] == 0
    assert 0 < s["ratio_min"] <= s["ratio_max"] <= 1
    # one kappa, 5 dimensions: bent paths cost up to 2x more at a similar bound (their hops
    # carry more weight on the slow eigen-directions), so the correlation is clear but loose
    assert s["pearson"] > 0.6 and s["spearman"] > 0.6
    assert set(s["within_kappa_pearson"]) == {"10"} and s["within_kappa_pearson"]["10"] > 0.6


# ----------------------------------------------------------------------------------------
# the notebook's checker
# ----------------------------------------------------------------------------------------
def _valid_metrics() -> dict:
    case = {"curriculum_steps": 10, "direct_steps": 12, "bound": 30, "direct_bound": 40, "monotone": True,
            "curriculum_beats_direct": True, "stage_steps": [4, 6]}
    summ = {"n": 3, "pearson": 0.9, "spearman": 0.8, "slope": 0.4, "intercept": 1.0, "bound_violations": 0,
            "ratio_min": 0.2, "ratio_max": 0.5, "within_kappa_pearson": {"10": 0.95}}
    return {
        "n_configs": 5, "n_quadratic": 3, "n_logistic": 2,
        "quadratic": summ, "logistic": {**summ, "n": 2},
        "cases": {"monotone": case, "monotone_constant_kappa": {**case, "curriculum_steps": 20, "stage_steps": [10, 10],
                                                                 "curriculum_beats_direct": False},
                  "detour": {**case, "monotone": False, "curriculum_steps": 20, "stage_steps": [8, 12],
                             "curriculum_beats_direct": False}},
        "budget": {"monotone": {"budgets": [1, 2], "direct": [1.0, 0.5], "curriculum": [0.9, 0.1]}},
        "sgd": {"eps": 1e-4, "floor_below": 1e-5, "floor_above": 1e-3, "empirical_floor_below": 1.05e-5,
                "empirical_floor_above": 0.95e-3, "status_below": "reached", "status_above": "max_steps"},
        "step_size": {"lr_scales": [1.0, 2.1], "statuses": ["reached", "diverged"]},
        "nonconvex": {"direct_bad_start": {"status": "stalled", "steps": 100}},
        "seconds": 3.2,
    }


def test_checker_accepts_valid_and_flags_each_broken_invariant():
    check = CHECKERS["08_curriculum_theory"]
    assert check(_valid_metrics()) == []
    broken = {
        "count": lambda m: m.update(n_configs=6),
        "violation": lambda m: m["quadratic"].update(bound_violations=2),
        "correlation": lambda m: m["logistic"].update(pearson=1.5),
        "stage sum": lambda m: m["cases"]["monotone"].update(stage_steps=[1, 2]),
        "beats flag": lambda m: m["cases"]["detour"].update(curriculum_beats_direct=True),
        "over bound": lambda m: m["cases"]["monotone"].update(bound=5),
        "detour monotone": lambda m: m["cases"]["detour"].update(monotone=True),
        "sgd design": lambda m: m["sgd"].update(floor_above=1e-6),
        "sgd floor": lambda m: m["sgd"].update(empirical_floor_above=3e-3),
        "step size": lambda m: m["step_size"].update(statuses=["reached", "reached"]),
        "status": lambda m: m["nonconvex"]["direct_bad_start"].update(status="exploded"),
        "missing": lambda m: m.pop("cases"),
    }
    for name, breaker in broken.items():
        m = copy.deepcopy(_valid_metrics())
        breaker(m)
        assert check(m), f"checker missed: {name}"
