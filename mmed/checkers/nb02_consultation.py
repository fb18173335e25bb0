"""Checker for 02_consultation_and_stratification (see :mod:`mmed.checks`)."""

from __future__ import annotations

from typing import Any

from ..checks import check_interval, check_rate, need, register_checker


def _check_system(m: dict[str, Any], where: str, p: list[str]) -> None:
    acc = m.get("accuracy") or {}
    check_interval(acc.get("acc"), acc.get("lo"), acc.get("hi"), f"{where}.accuracy", p)
    strata = m.get("strata") or {}
    if sum(strata.values()) != m.get("items"):
        p.append(f"{where}: strata {strata} do not add up to items={m.get('items')}")
    if acc.get("n") != m.get("items"):
        p.append(f"{where}: accuracy.n={acc.get('n')} but items={m.get('items')} (an item was lost)")
    inv = m.get("attending_invalid", 0) or 0
    if not 0 <= inv <= m.get("items", 0):
        p.append(f"{where}: attending_invalid={inv} out of range")


@register_checker("02_consultation_and_stratification")
def check_02(m: dict[str, Any]) -> list[str]:
    """Cold start improves the format; every system's counts add up; intervals hold."""
    p: list[str] = []
    cold = need(m, "cold_start", dict, p) or {}
    for agent in ("triage", "attending"):
        c = cold.get(agent)
        if c is None:
            p.append(f"missing cold_start.{agent}")
            continue
        for when in ("before", "after"):
            for k in ("format_valid", "accuracy"):
                check_rate(c[when][k], f"cold_start.{agent}.{when}.{k}", p)
    syn = need(m, "synthetic", dict, p) or {}
    if "full pipeline" not in syn:
        p.append("synthetic results lack the full pipeline")
    for name, s in syn.items():
        _check_system(s, f"synthetic[{name}]", p)
    ls = m.get("local_server")
    if ls is not None:
        first, again = ls["passes"]["first pass"], ls["passes"]["re-run"]
        if first["calls"] < 1:
            p.append("local server: the first pass made no calls")
        if again["calls"] != 0 or again["cache_hits"] != first["calls"]:
            p.append(f"local server: the re-run made {again['calls']} calls and {again['cache_hits']} cache hits "
                     f"(expected 0 and {first['calls']})")
        if ls["server_requests"] < first["calls"]:
            p.append("local server: fewer requests reached the server than calls were made")
    if need(m, "real_data", bool, p):
        for name, s in (need(m, "vqa_rad", dict, p) or {}).items():
            _check_system(s, f"vqa_rad[{name}]", p)
    return p
