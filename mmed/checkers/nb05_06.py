"""Checkers for 05_ablations and 06_test_time_scaling (see :mod:`mmed.checks`)."""

from __future__ import annotations

from typing import Any

from ..checks import check_interval, need, register_checker


@register_checker("05_ablations")
def check_05(m: dict[str, Any]) -> list[str]:
    """Every dataset has the full system; available rows have n = items and valid intervals;
    unavailable rows say why."""
    p: list[str] = []
    rows = need(m, "rows", list, p) or []
    n_items = need(m, "n_items", dict, p) or {}
    for ds in need(m, "datasets", list, p) or []:
        full = [r for r in rows if r["dataset"] == ds and r["system"] == "full system"]
        if not full or not full[0].get("available"):
            p.append(f"{ds}: no full-system row")
    for r in rows:
        where = f"{r.get('dataset')}/{r.get('system')}"
        if not r.get("available"):
            if not r.get("reason"):
                p.append(f"{where}: unavailable without a reason")
            continue
        check_interval(r.get("acc"), r.get("lo"), r.get("hi"), where, p)
        if r.get("n") != n_items.get(r.get("dataset")):
            p.append(f"{where}: n={r.get('n')} but the dataset has {n_items.get(r.get('dataset'))} items")
        strata = sum(int(r.get(f"n_{s}") or 0) for s in ("easy", "medium", "hard"))
        if r.get("system") != "w/o specialists (attending alone)" and strata != r.get("n"):
            p.append(f"{where}: strata counts {strata} != n {r.get('n')}")
    return p


@register_checker("06_test_time_scaling")
def check_06(m: dict[str, Any]) -> list[str]:
    """Budgets never exceed the samples drawn; adaptive rows keep the uniform mean budget;
    intervals hold; N = n_samples uses every sample."""
    p: list[str] = []
    n_samples = need(m, "n_samples", int, p)
    curve = need(m, "curve", list, p) or []
    if not curve:
        p.append("empty curve")
    for r in curve:
        where = f"{r.get('dataset')}/{r.get('policy')}/N={r.get('N')}"
        check_interval(r.get("acc"), r.get("lo"), r.get("hi"), where, p)
        if n_samples is not None and r.get("N", 0) > n_samples:
            p.append(f"{where}: budget above the {n_samples} samples drawn")
        if r.get("policy") == "adaptive" and abs(r.get("mean_samples", 0) - r.get("N", 0)) > 0.5 / max(1, r.get("n", 1)) + 1e-9:
            p.append(f"{where}: adaptive mean budget {r.get('mean_samples')} != {r.get('N')}")
    return p
