"""Checkers for 05_ablations and 06_test_time_scaling (see :mod:`mmed.checks`)."""

from __future__ import annotations

from typing import Any

from ..checks import check_interval, check_rate, need, register_checker

#: ablation rows that consult no panel, so their items have no stratum
NO_PANEL_ROWS = ("w/o specialists (attending alone)", "image only (attending cold-started on gold answers without opinions)")


def notes_05(m: dict[str, Any]) -> list[str]:
    """The notes notebook 05 recorded (``notes``): real outcomes worth seeing that are not
    failures, e.g. a full system that gives no valid answer at demo scale."""
    notes = m.get("notes") or []
    return [str(n) for n in notes] if isinstance(notes, list) else []


@register_checker("05_ablations")
def check_05(m: dict[str, Any]) -> list[str]:
    """Every dataset has the full system; available rows have n = items and valid intervals
    (overall and per stratum, when recorded); unavailable rows say why; a full system with
    no valid answer (``valid_rate`` 0) must be named in ``notes`` — which are printed, and
    are not failures; in-/out-of-domain averages (``domains``), when recorded, hold valid
    intervals and say which datasets they average."""
    p: list[str] = []
    rows = need(m, "rows", list, p) or []
    n_items = need(m, "n_items", dict, p) or {}
    notes = notes_05(m)
    if "notes" in m and not isinstance(m["notes"], list):
        p.append(f"key 'notes' has type {type(m['notes']).__name__}")
    for ds in need(m, "datasets", list, p) or []:
        full = [r for r in rows if r["dataset"] == ds and r["system"] == "full system"]
        if not full or not full[0].get("available"):
            p.append(f"{ds}: no full-system row")
        elif full[0].get("valid_rate") == 0 and not any(n.startswith(f"{ds}:") and "no valid answer" in n for n in notes):
            p.append(f"{ds}: the full system gives no valid answer but no note says so")
    for r in rows:
        where = f"{r.get('dataset')}/{r.get('system')}"
        if not r.get("available"):
            if not r.get("reason"):
                p.append(f"{where}: unavailable without a reason")
            continue
        check_interval(r.get("acc"), r.get("lo"), r.get("hi"), where, p)
        if r.get("n") != n_items.get(r.get("dataset")):
            p.append(f"{where}: n={r.get('n')} but the dataset has {n_items.get(r.get('dataset'))} items")
        if r.get("valid_rate") is not None:
            check_rate(r["valid_rate"], f"{where}.valid_rate", p)
            if r.get("acc") is not None and r["acc"] > r["valid_rate"] + 1e-9:
                p.append(f"{where}: accuracy {r['acc']} above the valid rate {r['valid_rate']}")
        strata = sum(int(r.get(f"n_{s}") or 0) for s in ("easy", "medium", "hard"))
        if r.get("system") not in NO_PANEL_ROWS and strata != r.get("n"):
            p.append(f"{where}: strata counts {strata} != n {r.get('n')}")
        for s in ("easy", "medium", "hard"):
            if r.get(f"n_{s}") and f"lo_{s}" in r:
                check_interval(r.get(f"acc_{s}"), r.get(f"lo_{s}"), r.get(f"hi_{s}"), f"{where}.{s}", p)
    for d in m.get("domains") or []:
        where = f"domains/{d.get('system')}/{d.get('domain')}"
        if not d.get("note"):
            p.append(f"{where}: no note of the datasets averaged")
        if d.get("n"):
            check_interval(d.get("acc"), d.get("lo"), d.get("hi"), where, p)
    for n in notes:
        print(f"note (05_ablations, not a failure): {n}")
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
