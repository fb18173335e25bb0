"""Checker for 08_curriculum_theory (see :mod:`mmed.checks` and :mod:`mmed.theory`).

Schema and invariants of what the notebook records. Besides counts and ranges, these
invariants are mathematical facts under the reconstructed Theorem 4.1's assumptions, so a
violation means a bug, not an unlucky run: GD with step 1/L on a strongly convex, smooth
loss never needs more steps than the bound; on a quadratic it converges for η < 2/L and
diverges for η > 2/L; the SGD noise floor formula matches the measured floor; SGD on a
quadratic needs at least as many steps as GD (its expected error is GD's plus a
non-negative noise term; 5% slack for the mean over a finite number of chains); SGD
reaches ε at every stage whose floor is ≤ ε/2 and never at a stage whose floor is ≥ 2ε
(a curriculum stops at the first such stage).

One claim of the notebook's prose is checked as well, since a run that contradicts it must
not pass silently: with one κ at every stage, the SGD curriculum's cost grows with the
theorem's sum Σ_j log(d_j²/ε) in every seed (fitted slope > 0, and below κ, the bound's
slope).
"""

from __future__ import annotations

import math
from typing import Any

from ..checks import need, register_checker

#: statuses a descent can end with (:class:`mmed.theory.Descent`)
STATUSES = ("reached", "max_steps", "diverged", "stalled")
#: recorded curriculum-vs-direct cases and whether each path must be monotone
CASES = {"monotone": True, "monotone_constant_kappa": True, "detour": False}
#: SGD steps may undercut GD steps by this factor (the stopping rule uses the mean over
#: finitely many chains, which fluctuates below its expectation)
SGD_GD_SLACK = 0.95
#: floors at or below this fraction of ε must be reached; at or above its inverse, never
FLOOR_SAFE = 0.5


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _check_spread(m: dict[str, Any], key: str, n: int | None, p: list[str]) -> list[float] | None:
    """A ``{"values", "mean", "std", "min", "max"}`` record whose summaries match its values."""
    sp = need(m, key, dict, p)
    if sp is None:
        return None
    vals = sp.get("values")
    if not isinstance(vals, list) or not vals or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals):
        p.append(f"{key}.values must be a non-empty list of finite numbers")
        return None
    if n is not None and len(vals) != n:
        p.append(f"{key}: {len(vals)} values for {n} seeds")
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    for name, want in (("mean", mean), ("std", std), ("min", min(vals)), ("max", max(vals))):
        got = sp.get(name)
        if not isinstance(got, (int, float)) or not _close(float(got), want):
            p.append(f"{key}.{name} = {got!r} does not match its values ({want:.6g})")
    return vals


def _check_sgd_paths(m: dict[str, Any], p: list[str]) -> None:
    pre = "sgd_paths"
    n = need(m, f"{pre}.n_seeds", int, p)
    if n is not None and n < 3:
        p.append(f"{pre}.n_seeds = {n}: a spread needs at least 3 seeds")
    slopes = _check_spread(m, f"{pre}.slope", n, p)
    _check_spread(m, f"{pre}.gd_slope", n, p)
    for key in ("pearson", "gd_pearson"):
        for r in _check_spread(m, f"{pre}.{key}", n, p) or []:
            if not -1 - 1e-9 <= r <= 1 + 1e-9:
                p.append(f"{pre}.{key}: {r} is not a correlation")
    per = need(m, f"{pre}.n_per_seed", list, p)
    n_rec = need(m, f"{pre}.n_records", int, p)
    n_cfg = need(m, f"{pre}.n_configs", int, p)
    ratio = need(m, f"{pre}.floor_ratio", (int, float), p)
    if None not in (per, n_rec, n_cfg):
        if any(not isinstance(k, int) or k < 3 or k > n_cfg for k in per):
            p.append(f"{pre}.n_per_seed = {per}: each fit needs 3..n_configs = {n_cfg} points")
        elif sum(per) > n_rec:
            p.append(f"{pre}: {sum(per)} fitted points but only {n_rec} records")
        elif ratio is not None and ratio <= FLOOR_SAFE and (sum(per) != n_rec or n_rec != n_cfg * len(per)):
            p.append(f"{pre}: with every floor <= {ratio:g}·eps all {n_rec} runs (n_configs x seeds = "
                     f"{n_cfg} x {len(per)}) must reach eps, but {sum(per)} entered the fits")
    lo = need(m, f"{pre}.sgd_over_gd_min", (int, float), p)
    hi = need(m, f"{pre}.sgd_over_gd_max", (int, float), p)
    if None not in (lo, hi) and not SGD_GD_SLACK <= lo <= hi:
        p.append(f"{pre}: SGD/GD step ratios [{lo}, {hi}]: SGD needed fewer steps than GD (or min > max)")
    kappas = need(m, f"{pre}.kappas", list, p)
    if slopes is not None and kappas:
        for v in slopes:
            if not 0 < v < max(kappas):
                p.append(f"{pre}: a seed's slope {v:.3g} is not in (0, kappa = {max(kappas):g}): the cost does not "
                         f"grow with the theorem's sum as the bound predicts")


def _check_sgd_case(s: Any, pre: str, p: list[str]) -> None:
    if not isinstance(s, dict):
        p.append(f"{pre} must be a dict")
        return
    cur, dire = s.get("curriculum_steps"), s.get("direct_steps")
    gcur, gdir = s.get("gd_curriculum_steps"), s.get("gd_direct_steps")
    stats, failed = s.get("statuses"), s.get("failed_stages")
    n = s.get("n")
    lists = (cur, dire, gcur, gdir, stats, failed)
    if not isinstance(n, int) or n < 1 or any(not isinstance(x, list) or len(x) != n for x in lists):
        p.append(f"{pre}: needs n >= 1 and {n!r} entries in every per-seed list")
        return
    ratio, first = s.get("floor_ratio"), s.get("first_stage_above_eps")
    dfl = s.get("direct_floor_over_eps")
    if not isinstance(ratio, (int, float)) or not isinstance(first, int) or not isinstance(dfl, (int, float)):
        p.append(f"{pre}: floor_ratio, first_stage_above_eps and direct_floor_over_eps are required")
        return
    if s.get("reached_curriculum") != sum(c >= 0 for c in cur) or s.get("reached_direct") != sum(d >= 0 for d in dire):
        p.append(f"{pre}: reached counts do not match the step lists")
    if s.get("wins") != sum(c >= 0 and d >= 0 and c < d for c, d in zip(cur, dire)):
        p.append(f"{pre}: wins = {s.get('wins')!r} does not match the step lists")
    diffs = [c - d for c, d in zip(cur, dire) if c >= 0 and d >= 0]
    d = s.get("diff")
    if (d is None) != (not diffs) or (diffs and (not isinstance(d, dict) or not isinstance(d.get("mean"), (int, float))
                                                 or not _close(d["mean"], sum(diffs) / len(diffs)))):
        p.append(f"{pre}: diff does not summarise curriculum - direct over the seeds where both reached eps")
    for st, c, f in zip(stats, cur, failed):
        if st not in STATUSES or (st == "reached") != (c >= 0) or (f == 0) != (c >= 0):
            p.append(f"{pre}: status {st!r}, steps {c} and failed stage {f} disagree")
            break
    for a, g, what in ((cur, gcur, "curriculum"), (dire, gdir, "direct")):
        if any(x >= 0 and y >= 0 and x < SGD_GD_SLACK * y for x, y in zip(a, g)):
            p.append(f"{pre}: SGD {what} needed fewer steps than GD ({a} vs {g})")
    if dfl > ratio + 1e-9:
        p.append(f"{pre}: the direct floor ({dfl:g} eps) exceeds the highest stage floor ({ratio:g} eps)")
    if ratio <= FLOOR_SAFE:
        if first != 0 or any(c < 0 for c in cur) or any(x < 0 for x in dire):
            p.append(f"{pre}: every floor <= {ratio:g}·eps, yet a run did not reach eps (curriculum {cur}, direct {dire})")
    elif ratio >= 1 / FLOOR_SAFE:
        if first < 1 or any(f != first for f in failed) or any(st != "max_steps" for st in stats):
            p.append(f"{pre}: stage {first} has floor >= {1 / FLOOR_SAFE:g}·eps, but the curricula ended "
                     f"{stats} at stages {failed}")
    if dfl <= FLOOR_SAFE and any(x < 0 for x in dire):
        p.append(f"{pre}: direct floor {dfl:.3g}·eps, yet direct SGD did not reach eps")
    if dfl >= 1 / FLOOR_SAFE and any(x >= 0 for x in dire):
        p.append(f"{pre}: direct floor {dfl:.3g}·eps, yet direct SGD reached eps")


def _check_sgd_cases(m: dict[str, Any], p: list[str]) -> None:
    cases = need(m, "sgd_cases", dict, p)
    if cases is None:
        return
    for name in CASES:
        by_ratio = cases.get(name)
        if not isinstance(by_ratio, dict) or not by_ratio:
            p.append(f"sgd_cases.{name} missing")
            continue
        for r, s in by_ratio.items():
            _check_sgd_case(s, f"sgd_cases.{name}[{r}]", p)


def _check_summary(m: dict[str, Any], fam: str, n_family: int | None, p: list[str]) -> None:
    n = need(m, f"{fam}.n", int, p)
    if n is not None and n_family is not None and not 2 <= n <= n_family:
        p.append(f"{fam}.n = {n} not in [2, n_{fam} = {n_family}]")
    for key in ("pearson", "spearman"):
        r = need(m, f"{fam}.{key}", float, p)
        if r is not None and not (math.isfinite(r) and -1 - 1e-9 <= r <= 1 + 1e-9):
            p.append(f"{fam}.{key} = {r} is not a correlation")
    for key in ("slope", "intercept"):
        v = need(m, f"{fam}.{key}", (int, float), p)
        if v is not None and not math.isfinite(v):
            p.append(f"{fam}.{key} is not finite")
    viol = need(m, f"{fam}.bound_violations", int, p)
    if viol is not None and viol != 0:
        p.append(f"{fam}: {viol} configurations needed more GD steps than the bound allows")
    lo = need(m, f"{fam}.ratio_min", (int, float), p)
    hi = need(m, f"{fam}.ratio_max", (int, float), p)
    if lo is not None and hi is not None and not 0 <= lo <= hi <= 1 + 1e-9:
        p.append(f"{fam}: measured/bound ratios [{lo}, {hi}] not within [0, 1]")
    within = need(m, f"{fam}.within_kappa_pearson", dict, p)
    for k, r in (within or {}).items():
        if not isinstance(r, (int, float)) or not -1 - 1e-9 <= r <= 1 + 1e-9:
            p.append(f"{fam}.within_kappa_pearson[{k}] = {r!r} is not a correlation")


def _check_case(m: dict[str, Any], name: str, monotone: bool, p: list[str]) -> None:
    pre = f"cases.{name}"
    cur = need(m, f"{pre}.curriculum_steps", int, p)
    dire = need(m, f"{pre}.direct_steps", int, p)
    stages = need(m, f"{pre}.stage_steps", list, p)
    bound = need(m, f"{pre}.bound", int, p)
    dbound = need(m, f"{pre}.direct_bound", int, p)
    mono = need(m, f"{pre}.monotone", bool, p)
    beats = need(m, f"{pre}.curriculum_beats_direct", bool, p)
    if None in (cur, dire, stages, bound, dbound, mono, beats):
        return
    if cur < 0 or dire < 0:
        p.append(f"{pre}: a convex GD run did not reach eps (curriculum {cur}, direct {dire})")
        return
    if sum(stages) != cur:
        p.append(f"{pre}: stage_steps sum to {sum(stages)}, not curriculum_steps = {cur}")
    if cur > bound or dire > dbound:
        p.append(f"{pre}: measured steps exceed the bound (curriculum {cur} > {bound} or direct {dire} > {dbound})")
    if beats != (cur < dire):
        p.append(f"{pre}: curriculum_beats_direct = {beats} but steps are {cur} vs {dire}")
    if mono != monotone:
        p.append(f"{pre}: path monotone = {mono}, expected {monotone}")


@register_checker("08_curriculum_theory")
def check_08_curriculum_theory(m: dict[str, Any]) -> list[str]:
    """08_curriculum_theory: sweep counts, correlations, bound violations (must be 0), the
    three curriculum-vs-direct cases (GD, and SGD over seeds), budget curves, SGD floor,
    SGD cost against the theorem's sum (slopes per seed), step sizes, non-convex runs."""
    p: list[str] = []
    n = need(m, "n_configs", int, p)
    nq = need(m, "n_quadratic", int, p)
    nl = need(m, "n_logistic", int, p)
    if None not in (n, nq, nl) and (n != nq + nl or nq < 2):
        p.append(f"n_configs = {n} is not n_quadratic + n_logistic = {nq} + {nl} (with n_quadratic >= 2)")
    _check_summary(m, "quadratic", nq, p)
    if nl:
        _check_summary(m, "logistic", nl, p)
    for name, mono in CASES.items():
        _check_case(m, name, mono, p)

    budget = need(m, "budget", dict, p) or {}
    for name, curves in budget.items():
        lens = {k: len(v) for k, v in curves.items()} if isinstance(curves, dict) else {}
        if set(lens) != {"budgets", "direct", "curriculum"} or len(set(lens.values())) != 1:
            p.append(f"budget.{name} must hold equal-length budgets/direct/curriculum lists")
        elif any(not (isinstance(x, (int, float)) and x >= 0) for k in ("direct", "curriculum") for x in curves[k]):
            p.append(f"budget.{name}: squared errors must be numbers >= 0")

    eps = need(m, "sgd.eps", float, p)
    lo = need(m, "sgd.floor_below", float, p)
    hi = need(m, "sgd.floor_above", float, p)
    if None not in (eps, lo, hi) and not lo < eps < hi:
        p.append(f"SGD design: need floor_below < eps < floor_above, got {lo}, {eps}, {hi}")
    for tag in ("below", "above"):
        st = need(m, f"sgd.status_{tag}", str, p)
        if st is not None and st not in STATUSES:
            p.append(f"sgd.status_{tag} = {st!r} unknown")
        fl = m.get("sgd", {}).get(f"floor_{tag}")
        emp = need(m, f"sgd.empirical_floor_{tag}", float, p)
        if isinstance(fl, float) and emp is not None and not 0.75 * fl <= emp <= 1.25 * fl:
            p.append(f"sgd: measured floor {emp:.3g} differs from the predicted {fl:.3g} by more than 25%")

    scales = need(m, "step_size.lr_scales", list, p)
    stats = need(m, "step_size.statuses", list, p)
    if scales is not None and stats is not None:
        if len(scales) != len(stats):
            p.append("step_size: lr_scales and statuses differ in length")
        for s, st in zip(scales, stats):
            want = "reached" if s < 2 else "diverged"
            if st != want:
                p.append(f"step_size: GD with eta = {s}/L on a quadratic ended {st!r}, expected {want!r}")

    _check_sgd_paths(m, p)
    _check_sgd_cases(m, p)

    nonconvex = need(m, "nonconvex", dict, p) or {}
    for name, r in nonconvex.items():
        if not isinstance(r, dict) or r.get("status") not in STATUSES or not isinstance(r.get("steps"), int):
            p.append(f"nonconvex.{name} needs a known status and an integer step count")
    sec = need(m, "seconds", (int, float), p)
    if sec is not None and sec < 0:
        p.append("negative run time")
    return p
