"""The 02_consultation_and_stratification checker: accepts a valid record, flags each broken invariant."""

from __future__ import annotations

import copy

from mmed.checkers.nb02_consultation import STATIC_BASELINE
from mmed.checks import CHECKERS


def _system(acc: float, n: int = 40) -> dict:
    return {"accuracy": {"acc": acc, "lo": acc - 0.1, "hi": acc + 0.1, "n": n},
            "strata": {"easy": 20, "medium": 12, "hard": n - 32}, "items": n, "attending_invalid": 2,
            "triage_fallbacks": 0}


def _valid() -> dict:
    cold = {"before": {"format_valid": 0.0, "accuracy": 0.0}, "after": {"format_valid": 1.0, "accuracy": 0.4}, "steps": 16}
    systems = {"full pipeline": _system(0.5), "attending alone": _system(0.45), STATIC_BASELINE: _system(0.4),
               "oracle: gold-specialty panel, majority vote": _system(0.8)}
    return {
        "real_data": True,
        "cold_start": {"triage": copy.deepcopy(cold), "attending": copy.deepcopy(cold)},
        "synthetic": systems,
        "vqa_rad": {k: _system(0.5, n=30) for k in ("full pipeline", "attending alone", STATIC_BASELINE)},
        "local_server": {"passes": {"first pass": {"calls": 6, "cache_hits": 0}, "re-run": {"calls": 0, "cache_hits": 6}},
                         "server_requests": 6},
    }


def test_checker_02_accepts_valid_and_flags_each_broken_invariant():
    check = CHECKERS["02_consultation_and_stratification"]
    assert check(_valid()) == []
    no_real = _valid()
    no_real.update(real_data=False)
    no_real.pop("vqa_rad")
    assert check(no_real) == []
    broken = {
        "format not improved": lambda m: m["cold_start"]["attending"]["after"].update(format_valid=0.0),
        "format too low": lambda m: m["cold_start"]["triage"]["after"].update(format_valid=0.3),
        "format rate": lambda m: m["cold_start"]["triage"]["before"].update(format_valid=1.5),
        "cold start missing": lambda m: m["cold_start"].pop("triage"),
        "no static baseline": lambda m: m["synthetic"].pop(STATIC_BASELINE),
        "no attending alone": lambda m: m["synthetic"].pop("attending alone"),
        "no vqa attending alone": lambda m: m["vqa_rad"].pop("attending alone"),
        "no vqa static baseline": lambda m: m["vqa_rad"].pop(STATIC_BASELINE),
        "strata": lambda m: m["synthetic"]["full pipeline"].update(strata={"easy": 1}),
        "lost item": lambda m: m["vqa_rad"]["attending alone"]["accuracy"].update(n=29),
        "other items": lambda m: m["synthetic"][STATIC_BASELINE].update(
            items=39, strata={"easy": 20, "medium": 12, "hard": 7},
            accuracy={"acc": 0.4, "lo": 0.3, "hi": 0.5, "n": 39}),
        "interval": lambda m: m["synthetic"]["full pipeline"]["accuracy"].update(lo=0.7),
        "cache": lambda m: m["local_server"]["passes"]["re-run"].update(calls=3),
    }
    for name, breaker in broken.items():
        m = copy.deepcopy(_valid())
        breaker(m)
        assert check(m), f"checker missed: {name}"
