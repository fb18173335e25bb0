"""Checker for 08_curriculum_theory (see :mod:`mmed.checks` and :mod:`mmed.eval.theory`).

Schema and invariants of what the notebook records. Besides counts and ranges, three
invariants are mathematical facts under the reconstructed Theorem 4.1's assumptions, so a
violation means a bug, not an unlucky run: GD with step 1/L on a strongly convex, smooth
loss never needs more steps than the bound; on a quadratic it converges for η < 2/L and
diverges for η > 2/L; and the SGD noise floor formula matches the measured floor.
"""

from __future__ import annotations

import math
from typing import Any

from ..checks import need, register_checker

#: statuses a descent can end with (:class:`mmed.eval.theory.Descent`)
STATUSES = ("reached", "max_steps", "diverged", "stalled")
#: recorded curriculum-vs-direct cases and whether each path must be monotone
CASES = {"monotone": True, "monotone_constant_kappa": True, "detour": False}


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
    three curriculum-vs-direct cases, budget curves, SGD floor, step sizes, non-convex runs."""
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

    nonconvex = need(m, "nonconvex", dict, p) or {}
    for name, r in nonconvex.items():
        if not isinstance(r, dict) or r.get("status") not in STATUSES or not isinstance(r.get("steps"), int):
            p.append(f"nonconvex.{name} needs a known status and an integer step count")
    sec = need(m, "seconds", (int, float), p)
    if sec is not None and sec < 0:
        p.append("negative run time")
    return p
