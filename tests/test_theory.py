"""mmed.theory (the reconstructed Theorem 4.1) and the 08_curriculum_theory checker."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmed.checks import CHECKERS
from mmed import theory as th


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
# the notebook's experiments: noise calibration, step sizes, double wells
# ----------------------------------------------------------------------------------------
def _diag_stage(eigs, opt=None):
    eigs = np.asarray(eigs, dtype=float)
    return th.QuadraticStage(hessian=np.diag(eigs), opt=np.zeros(len(eigs)) if opt is None else np.asarray(opt, float))


def test_noise_std_for_floor_hand_value():
    # eigenvalues 1 and 4, step 1/4: floor(sigma = 1) = 0.25/(1 * 1.75) + 0.25/(4 * 1) = 1/7 + 1/16
    unit = 1 / 7 + 1 / 16
    assert th.sgd_noise_floor([1.0, 4.0], 0.25, 1.0) == pytest.approx(unit)
    assert th.noise_std_for_floor([1.0, 4.0], 0.25, 0.1 * unit) == pytest.approx(math.sqrt(0.1))
    with pytest.raises(ValueError, match="floor"):
        th.noise_std_for_floor([1.0, 4.0], 0.25, 0.0)


def test_calibrate_noise_puts_the_highest_stage_floor_at_the_ratio():
    easy, hard = _diag_stage([1.0, 2.0]), _diag_stage([1.0, 100.0])  # steps 1/2 and 1/100
    unit_easy = 0.5 / (1 * 1.5) + 0.5 / (2 * 1.0)  # 7/12
    unit_hard = 0.01 / (1 * 1.99) + 0.01 / (100 * 1.0)
    sigma = th.calibrate_noise([easy, hard], 1e-3, 0.5)
    assert sigma == pytest.approx(math.sqrt(0.5e-3 / unit_easy))
    floors = th.stage_noise_floors([easy, hard], sigma)
    np.testing.assert_allclose(floors, [0.5e-3, 0.5e-3 * unit_hard / unit_easy])
    # one sigma, two floors: the well-conditioned stage (large step) sits ~114x higher
    assert floors[0] / floors[1] == pytest.approx(unit_easy / unit_hard) and floors[0] / floors[1] > 100
    logistic = th.logistic_stages(np.ones((1, 2)), [5.0])[0]
    with pytest.raises(ValueError, match="quadratic"):
        th.calibrate_noise([logistic], 1e-3, 0.5)
    with pytest.raises(ValueError, match="floor_ratio"):
        th.calibrate_noise([easy], 1e-3, -1.0)


def test_noise_floor_experiment_below_and_above_eps():
    theta0, stages = th.build_problem(th.PathConfig(1, kappa_first=10.0, kappa_last=10.0), dim=4, distance=3.0)
    eps = 1e-3
    res = th.noise_floor_experiment(stages[0], theta0, eps, {"below": 0.1, "above": 20.0}, n_chains=32, max_steps=2000)
    assert set(res) == {"below", "above"}
    assert res["below"]["floor"] == pytest.approx(0.1 * eps) and res["above"]["floor"] == pytest.approx(20 * eps)
    assert res["below"]["status"] == "reached" and 0 < res["below"]["steps"] < 2000
    assert res["above"]["status"] == "max_steps" and res["above"]["steps"] == 2000
    for r in res.values():
        assert r["trace"].shape == (601,)
        assert r["trace"][0] == pytest.approx(9.0)  # starts at distance 3
        assert r["empirical_floor"] == pytest.approx(r["floor"], rel=0.25)
    # sigma^2 scales with the floor: 200x the floor, sqrt(200)x the noise
    assert res["above"]["noise_std"] / res["below"]["noise_std"] == pytest.approx(math.sqrt(200))


def test_step_size_experiment_statuses_and_traces():
    theta0, stages = th.build_problem(th.PathConfig(1, kappa_first=5.0, kappa_last=5.0), dim=4, distance=3.0)
    res = th.step_size_experiment(stages[0], theta0, 1e-4, (1.0, 1.9, 2.1), n_trace=50)
    assert res["lr_scales"] == [1.0, 1.9, 2.1]
    assert res["statuses"] == ["reached", "reached", "diverged"]
    assert res["steps"][0] == th.run_direct(stages, theta0, 1e-4).total_steps
    for tr in res["traces"]:
        assert tr[0] == pytest.approx(9.0) and len(tr) <= 51
    assert res["traces"][2][-1] > res["traces"][2][0]  # the diverging run grows
    with pytest.raises(ValueError, match="scale"):
        th.step_size_experiment(stages[0], theta0, 1e-4, (0.0,))


def test_double_well_experiment_default_runs():
    res = th.double_well_experiment(1e-4)
    assert set(res) == set(th.DOUBLE_WELL_RUNS)
    assert {k: r["status"] for k, r in res.items()} == {
        "direct_bad_start": "stalled",
        "curriculum_bad_start": "reached",
        "direct_good_start": "reached",
        "detour_good_start": "stalled",
    }
    shallow = min(th.DoubleWellStage(0.1).minima())
    assert res["detour_good_start"]["well_coordinate"][-1] == pytest.approx(shallow, abs=1e-6)
    assert res["curriculum_bad_start"]["well_coordinate"][-1] == pytest.approx(th.DoubleWellStage(0.1).opt[0], abs=1e-2)
    for r in res.values():
        assert len(r["well_coordinate"]) == r["steps"] + 1
        assert 0 < r["bound_if_convex"] < 10_000  # finite: the bound would promise convergence


# ----------------------------------------------------------------------------------------
# SGD with and without a curriculum
# ----------------------------------------------------------------------------------------
def test_sgd_measure_below_and_above_the_floor():
    below = th.sgd_measure(MONOTONE, floor_ratio=0.5, dim=6, distance=5.0, eps=1e-3, seed=2, n_chains=8)
    assert max(below["stage_floors"]) == pytest.approx(0.5e-3)
    assert below["stage_floors"][0] == max(below["stage_floors"])  # kappa = 2 stage, step 1/2
    assert below["direct_floor"] == below["stage_floors"][-1] < 0.01e-3
    assert below["first_stage_above_eps"] == 0 and below["failed_stage"] == 0
    assert below["curriculum_status"] == below["direct_status"] == "reached"
    assert below["curriculum_steps"] >= 0.95 * below["gd_curriculum_steps"]
    assert below["direct_steps"] >= 0.95 * below["gd_direct_steps"]
    assert below["curriculum_beats_direct"] == (below["curriculum_steps"] < below["direct_steps"])
    gd = th.measure(MONOTONE, dim=6, distance=5.0, eps=1e-3, seed=2)
    assert (below["gd_curriculum_steps"], below["gd_direct_steps"]) == (gd["curriculum_steps"], gd["direct_steps"])
    assert below["log_sum_eps"] == pytest.approx(gd["log_sum_eps"])

    above = th.sgd_measure(MONOTONE, floor_ratio=3.0, dim=6, distance=5.0, eps=1e-3, seed=2, n_chains=8,
                           max_steps_per_stage=800)
    assert above["first_stage_above_eps"] == 1
    assert above["curriculum_status"] == "max_steps" and above["failed_stage"] == 1 and above["curriculum_steps"] == -1
    assert above["direct_status"] == "reached"  # the last stage's floor is far below eps
    with pytest.raises(ValueError, match="quadratic"):
        th.sgd_measure(th.PathConfig(2, family="logistic", kappa_first=5.0, kappa_last=5.0), floor_ratio=0.5)


def _fake_record(seed, x, steps, gd_steps, cfg=MONOTONE, ratio=0.5, direct=100):
    rec = {f: getattr(cfg, f) for f in ("n_stages", "spacing", "bend", "overshoot", "kappa_first", "kappa_last", "family")}
    rec.update(seed=seed, eps=1e-4, floor_ratio=ratio, log_sum_eps=x, curriculum_steps=steps, gd_curriculum_steps=gd_steps,
               direct_steps=direct, gd_direct_steps=direct, curriculum_status="reached" if steps >= 0 else "max_steps",
               direct_status="reached", failed_stage=0 if steps >= 0 else 1, first_stage_above_eps=0,
               stage_floors=[ratio * 1e-4, 1e-6], direct_floor=1e-6,
               curriculum_beats_direct=bool(0 <= steps < direct))
    return rec


def test_sgd_slope_summary_on_exact_lines():
    recs = [_fake_record(s, x, int(2 * x + 1) + s, int(2 * x + 1)) for s in (0, 1) for x in (1.0, 2.0, 4.0)]
    recs.append(_fake_record(1, 9.0, -1, 19))  # did not reach: left out of the fit
    s = th.sgd_slope_summary(recs)
    assert s["n_seeds"] == 2 and s["n_per_seed"] == [3, 3]
    assert s["slope"]["values"] == pytest.approx([2.0, 2.0]) and s["slope"]["std"] == pytest.approx(0.0)
    assert s["gd_slope"]["mean"] == pytest.approx(2.0) and s["pearson"]["min"] == pytest.approx(1.0)
    assert s["sgd_over_gd_min"] == pytest.approx(1.0) and s["sgd_over_gd_max"] == pytest.approx(4 / 3)  # seed 1, x = 1
    assert s["kappas"] == [100.0]
    with pytest.raises(ValueError, match="2 seeds"):
        th.sgd_slope_summary(recs[:3])
    with pytest.raises(ValueError, match="log_sum"):
        th.sgd_slope_summary(recs, x="bound")


def test_sgd_slope_summary_on_a_small_sweep():
    grid = th.sweep_grid(n_stages=(1, 2, 4), spacings=("uniform", "front"), bends=(0.0, 0.5), kappas=(10.0,), rising_from=None)
    recs = th.sgd_sweep(grid, [0, 1, 2], [0.5], dim=5, distance=5.0, eps=1e-4, n_chains=8)
    assert len(recs) == len(grid) * 3 and all(r["curriculum_steps"] >= 0 for r in recs)
    s = th.sgd_slope_summary(recs)
    assert s["n_seeds"] == 3 and s["n_per_seed"] == [len(grid)] * 3
    # cost grows with the theorem's sum in every seed, with a slope below the bound's (kappa = 10);
    # as for GD on this grid, bent paths in 5 dimensions loosen the fit (seed 0: Pearson 0.77)
    assert all(0 < v < 10 for v in s["slope"]["values"]) and s["pearson"]["min"] > 0.6
    # noise at half of eps barely changes the relation: SGD tracks the GD runs of the same problems
    np.testing.assert_allclose(s["pearson"]["values"], s["gd_pearson"]["values"], atol=0.05)
    assert all(g <= v < 1.3 * g for v, g in zip(s["slope"]["values"], s["gd_slope"]["values"]))
    assert s["sgd_over_gd_min"] >= 0.95 and s["sgd_over_gd_max"] < 1.5


def test_sgd_case_summary_counts():
    recs = [_fake_record(0, 5.0, 80, 78), _fake_record(1, 5.0, 130, 120), _fake_record(2, 5.0, -1, 90)]
    s = th.sgd_case_summary(recs)
    assert (s["n"], s["reached_curriculum"], s["reached_direct"], s["wins"]) == (3, 2, 3, 1)
    assert s["diff"]["values"] == [-20.0, 30.0] and s["diff"]["mean"] == pytest.approx(5.0)
    assert s["failed_stages"] == [0, 0, 1] and s["statuses"][2] == "max_steps"
    assert s["direct_floor_over_eps"] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="one config"):
        th.sgd_case_summary(recs + [_fake_record(0, 5.0, 80, 78, ratio=3.0)])
    with pytest.raises(ValueError, match="no records"):
        th.sgd_case_summary([])


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
        "sgd_paths": {"n_seeds": 3, "slope": _spread([3.0, 4.0, 5.0]), "gd_slope": _spread([2.5, 3.5, 4.5]),
                      "pearson": _spread([0.9, 0.95, 0.99]), "gd_pearson": _spread([0.9, 0.95, 0.99]),
                      "n_per_seed": [4, 4, 4], "n_records": 12, "n_configs": 4, "floor_ratio": 0.5,
                      "sgd_over_gd_min": 1.01, "sgd_over_gd_max": 1.1, "kappas": [10.0]},
        "sgd_cases": {name: {"0.5": _sgd_case(0.5), "3": _sgd_case(3.0)} for name in th_cases},
        "seconds": 3.2,
    }


th_cases = ("monotone", "monotone_constant_kappa", "detour")


def _spread(v):
    mean = sum(v) / len(v)
    return {"values": v, "mean": mean, "std": math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1)),
            "min": min(v), "max": max(v)}


def _sgd_case(ratio):
    ok = ratio < 1
    cur = [90, 100, 110] if ok else [-1, -1, -1]
    return {"n": 3, "floor_ratio": ratio, "reached_curriculum": 3 if ok else 0, "reached_direct": 3, "wins": 3 if ok else 0,
            "curriculum_steps": cur, "direct_steps": [120, 130, 140], "gd_curriculum_steps": [90, 99, 108],
            "gd_direct_steps": [120, 130, 139], "diff": _spread([-30.0, -30.0, -30.0]) if ok else None,
            "statuses": ["reached"] * 3 if ok else ["max_steps"] * 3, "direct_statuses": ["reached"] * 3,
            "failed_stages": [0, 0, 0] if ok else [1, 1, 1], "first_stage_above_eps": 0 if ok else 1,
            "direct_floor_over_eps": 0.01 * ratio}


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
        "slope mean": lambda m: m["sgd_paths"]["slope"].update(mean=9.0),
        "slope sign": lambda m: m["sgd_paths"].update(slope=_spread([-1.0, 2.0, 3.0])),
        "slope above kappa": lambda m: m["sgd_paths"].update(slope=_spread([3.0, 4.0, 12.0])),
        "slope seeds": lambda m: m["sgd_paths"].update(slope=_spread([3.0, 4.0])),
        "too few seeds": lambda m: m["sgd_paths"].update(n_seeds=2),
        "sgd faster than gd": lambda m: m["sgd_paths"].update(sgd_over_gd_min=0.8),
        "unreached below floor": lambda m: m["sgd_paths"].update(n_per_seed=[4, 4, 3]),
        "sgd case missing": lambda m: m["sgd_cases"].pop("detour"),
        "sgd wins": lambda m: m["sgd_cases"]["monotone"]["0.5"].update(wins=1),
        "sgd diff": lambda m: m["sgd_cases"]["monotone"]["0.5"]["diff"].update(mean=-10.0),
        "sgd below gd": lambda m: m["sgd_cases"]["detour"]["0.5"].update(gd_curriculum_steps=[90, 99, 200]),
        "reached above floor": lambda m: m["sgd_cases"]["detour"]["3"].update(
            curriculum_steps=[-1, -1, 100], gd_curriculum_steps=[1, 1, 100], reached_curriculum=1,
            statuses=["max_steps", "max_steps", "reached"], failed_stages=[1, 1, 0]),
        "failed at wrong stage": lambda m: m["sgd_cases"]["monotone"]["3"].update(failed_stages=[1, 2, 1]),
        "unreached below safe floor": lambda m: m["sgd_cases"]["monotone"]["0.5"].update(
            curriculum_steps=[90, 100, -1], reached_curriculum=2, wins=2, diff=_spread([-30.0, -30.0]),
            statuses=["reached", "reached", "max_steps"], failed_stages=[0, 0, 2]),
        "direct floor above max": lambda m: m["sgd_cases"]["monotone"]["0.5"].update(direct_floor_over_eps=0.9),
        "status mismatch": lambda m: m["sgd_cases"]["monotone"]["0.5"].update(statuses=["reached", "stalled", "reached"]),
    }
    for name, breaker in broken.items():
        m = copy.deepcopy(_valid_metrics())
        breaker(m)
        assert check(m), f"checker missed: {name}"


def test_study_metrics_are_what_the_checker_reads():
    """Notebook 08's metrics are built by the library (th.study_metrics, th.case_metrics,
    th.assumption_metrics) from the study's parts, with the keys and types it records."""
    cfg = th.PathConfig(3, "front", kappa_first=2.0, kappa_last=10.0)
    rec = th.measure(cfg, dim=4, distance=5.0, eps=1e-3, seed=0)
    case = th.case_metrics(rec)
    assert set(case) == {*th.CASE_METRIC_KEYS, "stage_steps"} and all(type(s) is int for s in case["stage_steps"])
    assert sum(case["stage_steps"]) == case["curriculum_steps"] == rec["curriculum_steps"]
    floor = {"below": {"floor": 1e-5, "empirical_floor": 1.1e-5, "status": "reached", "steps": 40, "trace": [1.0]}}
    steps = {"lr_scales": [1.0, 2.1], "statuses": ["converged", "diverged"], "steps": [30, 5], "traces": [[1.0], [2.0]]}
    nc = {"good": {"tilts": [0.1], "status": "reached", "steps": 12, "bound_if_convex": 20, "well_coordinate": [0.0]}}
    a = th.assumption_metrics(floor, steps, nc, 1e-3)
    assert a == {"sgd": {"eps": 1e-3, "floor_below": 1e-5, "empirical_floor_below": 1.1e-5, "status_below": "reached",
                         "steps_below": 40},
                 "step_size": {"lr_scales": [1.0, 2.1], "statuses": ["converged", "diverged"], "steps": [30, 5]},
                 "nonconvex": {"good": {"tilts": [0.1], "status": "reached", "steps": 12, "bound_if_convex": 20}}}
    recs = th.sweep(th.sweep_grid(n_stages=(1, 2), bends=(0.0,), kappas=(10.0,), rising_from=2.0), dim=4, distance=5.0,
                    eps=1e-3, seed=0)
    m = th.study_metrics(records_quadratic=recs, records_logistic=recs, cases={"monotone": rec},
                         budgets={"monotone": {"budgets": [10, 20], "direct": [1.0, 0.5]}}, assumptions=a,
                         sgd_records=[{}] * 3, n_sgd_configs=1, sgd_slope={"slope": 1.0}, sgd_cases={},
                         parameters={"floor_ratios": [0.5, 3.0], "sgd_chains": 4}, seconds=1.234)
    assert (m["n_configs"], m["n_quadratic"], m["n_logistic"], m["seconds"]) == (2 * len(recs), len(recs), len(recs), 1.23)
    assert m["quadratic"] == th.correlation_summary(recs) and m["cases"] == {"monotone": case}
    assert m["sgd_paths"] == {"slope": 1.0, "floor_ratio": 0.5, "n_records": 3, "n_configs": 1, "n_chains": 4}
    assert m["budget"]["monotone"] == {"budgets": [10.0, 20.0], "direct": [1.0, 0.5]} and m["sgd"] == a["sgd"]
