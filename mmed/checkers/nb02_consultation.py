"""Checker for 02_consultation_and_stratification (see :mod:`mmed.checks`)."""

from __future__ import annotations

from typing import Any

from ..checks import check_interval, check_rate, need, register_checker

#: the systems notebook 02 must record on the synthetic test split (and, with real data, on
#: VQA-RAD): the pipeline and the paper's baselines on the same items
STATIC_BASELINE = "static MDAgents-style (Radiologist panel, majority vote)"
SYNTHETIC_SYSTEMS = ("full pipeline", "attending alone", STATIC_BASELINE)
VQA_RAD_SYSTEMS = ("full pipeline", "attending alone", STATIC_BASELINE)
#: the cold start must make at least this fraction of held-out outputs well formed
MIN_FORMAT_AFTER = 0.5


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
    """The cold start improves each agent's format (format-valid rate after > before, and
    after >= MIN_FORMAT_AFTER); the pipeline and its baselines (attending alone, the static
    Radiologist-panel majority vote) are recorded on the synthetic test split and, with real
    data, on VQA-RAD; every system's counts add up; intervals hold; the local server's
    re-run is served from the cache."""
    p: list[str] = []
    cold = need(m, "cold_start", dict, p) or {}
    for agent in ("triage", "attending"):
        c = cold.get(agent)
        if not isinstance(c, dict) or not all(isinstance(c.get(w), dict) for w in ("before", "after")):
            p.append(f"missing cold_start.{agent} before/after")
            continue
        n0 = len(p)
        for when in ("before", "after"):
            for k in ("format_valid", "accuracy"):
                check_rate(c[when].get(k), f"cold_start.{agent}.{when}.{k}", p)
        if len(p) == n0:
            before, after = c["before"]["format_valid"], c["after"]["format_valid"]
            if not (after > before and after >= MIN_FORMAT_AFTER):
                p.append(f"cold_start.{agent}: format-valid rate {before:.3f} -> {after:.3f}; the cold start must raise it "
                         f"to >= {MIN_FORMAT_AFTER}")
    syn = need(m, "synthetic", dict, p) or {}
    for name in SYNTHETIC_SYSTEMS:
        if name not in syn:
            p.append(f"synthetic results lack {name!r}")
    for name, s in syn.items():
        _check_system(s, f"synthetic[{name}]", p)
    if len({s.get("items") for s in syn.values()}) > 1:
        p.append(f"synthetic systems were not scored on the same items (counts {sorted({s.get('items') for s in syn.values()})})")
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
        vqa = need(m, "vqa_rad", dict, p) or {}
        for name in VQA_RAD_SYSTEMS:
            if name not in vqa:
                p.append(f"vqa_rad results lack {name!r}")
        for name, s in vqa.items():
            _check_system(s, f"vqa_rad[{name}]", p)
        items = {s.get("items") for s in vqa.values()}
        if len(items) > 1:
            p.append(f"vqa_rad systems were not scored on the same items (counts {sorted(items)})")
    return p
