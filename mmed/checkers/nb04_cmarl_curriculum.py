"""Checker for 04_cmarl_curriculum (see :mod:`mmed.checks` and :mod:`mmed.rl.curriculum`).

Schema and invariants of what the notebook records. Besides ranges and intervals, the
checks below hold by construction, so a violation is a bug, not an unlucky run:

- the C-MARL plan's γ never decreases along the stages (the profile's schedule), the
  ``no_entropy`` stages all have γ = 0, ``no_curriculum`` is one stage over all strata with
  γ = 0 and the same total steps; every stage trained exactly its steps;
- per system, the per-stratum item counts add up to the overall count, the same for every
  system (all are measured on the same held-out items);
- follow-the-majority is right on every Easy item and wrong on every Hard item (s = 1 /
  s = 0 mean exactly that), and contradicting a unanimous wrong yes/no panel is always right;
- each paired difference equals the difference of the two accuracies, inside its interval;
- each claim's boolean agrees with the recorded intervals, and each stage's
  ``contrarian_shift`` with its Hard/Easy deltas.
"""

from __future__ import annotations

import math
from typing import Any

from ..checks import check_interval, check_rate, check_seed_replicates, need, register_checker

STRATA = ("easy", "medium", "hard")
PANELS = (*STRATA, "all")
BASELINES = ("start", "follow_majority", "contradict_majority")


def contrarian(h: dict | None, e: dict | None) -> bool:
    """A Hard gain (interval above 0) paid for by a significant Easy loss of at least half its size."""
    return bool(h and e and h["lo"] > 0 and e["hi"] < 0 and -e["diff"] >= 0.5 * h["diff"])


def _acc_block(block: Any, name: str, p: list[str]) -> dict[str, int] | None:
    """Checks one ``{stratum: {acc, lo, hi, n}}`` block; returns the counts."""
    if not isinstance(block, dict) or set(block) != set(PANELS):
        p.append(f"{name}: needs exactly the keys {PANELS}")
        return None
    counts = {}
    for st in PANELS:
        a = block[st]
        if not isinstance(a, dict) or not isinstance(a.get("n"), int):
            p.append(f"{name}.{st}: needs acc, lo, hi and an integer n")
            return None
        counts[st] = a["n"]
        if a["n"] > 0:
            sub: list[str] = []
            check_interval(a.get("acc"), a.get("lo"), a.get("hi"), f"{name}.{st}", sub)
            p.extend(sub)
        elif not all(isinstance(a.get(k), float) and math.isnan(a[k]) for k in ("acc", "lo", "hi")):
            p.append(f"{name}.{st}: an empty stratum must record NaN accuracy")
    if sum(counts[st] for st in STRATA) != counts["all"]:
        p.append(f"{name}: stratum counts {counts} do not add up to 'all'")
    return counts


@register_checker("04_cmarl_curriculum")
def check_04_cmarl_curriculum(m: dict[str, Any]) -> list[str]:
    """04_cmarl_curriculum: plans, per-stratum accuracies, baselines, paired differences, claims."""
    p: list[str] = []
    names = need(m, "variants", list, p) or []
    if names and names[0] != "cmarl":
        p.append(f"variants must start with 'cmarl', got {names}")
    n_items = need(m, "n_heldout", int, p)
    counts = need(m, "train_counts", dict, p) or {}
    if set(counts) != set(STRATA) or any(not isinstance(v, int) or v < 0 for v in counts.values()):
        p.append(f"train_counts must give an integer >= 0 per stratum, got {counts}")

    plans = need(m, "plans", dict, p) or {}
    for n in names:
        stages = plans.get(n)
        if not isinstance(stages, list) or not stages:
            p.append(f"plans.{n} missing or empty")
            continue
        for s in stages:
            if s.get("steps") != s.get("max_steps"):
                p.append(f"plans.{n}.{s.get('dir')}: trained {s.get('steps')} steps, configured {s.get('max_steps')}")
            if s.get("n_items") != sum(counts.get(x, 0) for x in s.get("strata", [])):
                p.append(f"plans.{n}.{s.get('dir')}: n_items {s.get('n_items')} is not the training count of {s.get('strata')}")
        gammas = [s.get("entropy_coef") for s in stages]
        if n == "cmarl" and any(b < a for a, b in zip(gammas, gammas[1:])):
            p.append(f"plans.cmarl: γ decreases along the stages {gammas}")
        if n == "no_entropy" and any(g != 0 for g in gammas):
            p.append(f"plans.no_entropy: γ must be 0 in every stage, got {gammas}")
        if n == "no_curriculum":
            if len(stages) != 1 or set(stages[0].get("strata", [])) != set(STRATA) or gammas != [0.0]:
                p.append("plans.no_curriculum must be one stage over all strata with γ = 0")
            total = sum(s.get("max_steps", 0) for s in plans.get("cmarl", []))
            if stages[0].get("max_steps") != total:
                p.append(f"plans.no_curriculum: {stages[0].get('max_steps')} steps, C-MARL has {total} in all")

    systems = need(m, "systems", dict, p) or {}
    ref = None
    for name in (*BASELINES, *names):
        if name not in systems:
            p.append(f"systems.{name} missing")
            continue
        c = _acc_block(systems[name], f"systems.{name}", p)
        if c is None:
            continue
        if ref is None:
            ref = c
            if n_items is not None and c["all"] != n_items:
                p.append(f"systems.{name}: {c['all']} items, n_heldout = {n_items}")
        elif c != ref:
            p.append(f"systems.{name}: measured on other items ({c} vs {ref})")
    fm = systems.get("follow_majority", {})
    if fm.get("easy", {}).get("n") and fm["easy"]["acc"] != 1.0:
        p.append(f"follow_majority on Easy must be 1.0 (s = 1), got {fm['easy']['acc']}")
    if fm.get("hard", {}).get("n") and fm["hard"]["acc"] != 0.0:
        p.append(f"follow_majority on Hard must be 0.0 (s = 0), got {fm['hard']['acc']}")
    yn = need(m, "contradict_hard_yes_no", dict, p) or {}
    if yn.get("n"):
        if yn.get("acc") != 1.0:
            p.append(f"contradicting a unanimous wrong yes/no panel must always be right, got {yn.get('acc')}")

    stages = need(m, "stages", dict, p) or {}
    for n in names:
        for s in stages.get(n, []):
            _acc_block(s.get("after"), f"stages.{n}.{s.get('dir')}.after", p)
            check_rate(s.get("format_valid_after"), f"stages.{n}.{s.get('dir')}.format_valid_after", p)
            delta = s.get("delta") or {}
            for st in PANELS:
                d = delta.get(st)
                if d is not None and not d["lo"] - 1e-9 <= d["diff"] <= d["hi"] + 1e-9:
                    p.append(f"stages.{n}.{s.get('dir')}.delta.{st}: diff outside its interval")
            if s.get("contrarian_shift") != contrarian(delta.get("hard"), delta.get("easy")):
                p.append(f"stages.{n}.{s.get('dir')}: contrarian_shift disagrees with its Hard/Easy deltas")
            t = s.get("train", {})
            if not t.get("n_logged") or t.get("n_logged") != s.get("steps"):
                p.append(f"stages.{n}.{s.get('dir')}: {t.get('n_logged')} logged steps for {s.get('steps')} trained")
            for k in ("format_valid_mean", "format_valid_min", "accuracy_reward_mean", "frac_reward_zero_std_mean"):
                check_rate(t.get(k), f"stages.{n}.{s.get('dir')}.train.{k}", p)
            ent = t.get("entropy_mean")
            if not isinstance(ent, (int, float)) or not ent >= 0:
                p.append(f"stages.{n}.{s.get('dir')}: entropy_mean {ent!r} is not >= 0")

    paired = need(m, "paired", dict, p) or {}
    for other in ("start", "follow_majority", "contradict_majority", *names[1:]):
        key = f"cmarl-{other}"
        block = paired.get(key)
        if not isinstance(block, dict):
            p.append(f"paired.{key} missing")
            continue
        for st in PANELS:
            d = block.get(st)
            if d is None:
                if (ref or {}).get(st):
                    p.append(f"paired.{key}.{st} missing for a non-empty stratum")
                continue
            a, b = systems.get("cmarl", {}).get(st, {}), systems.get(other, {}).get(st, {})
            if a and b and not math.isclose(d["diff"], a["acc"] - b["acc"], abs_tol=1e-9):
                p.append(f"paired.{key}.{st}: diff {d['diff']} is not {a['acc']} - {b['acc']}")
            if not d["lo"] - 1e-9 <= d["diff"] <= d["hi"] + 1e-9:
                p.append(f"paired.{key}.{st}: diff outside its interval")

    claims = need(m, "claims", dict, p) or {}
    def lo(k, st):
        return (paired.get(k, {}).get(st) or {}).get("lo")

    def hi(k, st):
        return (paired.get(k, {}).get(st) or {}).get("hi")

    expect = {
        "cmarl_beats_no_curriculum": ("no_curriculum" in names, lambda: lo("cmarl-no_curriculum", "all") > 0),
        "cmarl_beats_no_entropy": ("no_entropy" in names, lambda: lo("cmarl-no_entropy", "all") > 0),
        "beats_follow_majority": (True, lambda: lo("cmarl-follow_majority", "all") > 0),
        "hard_improves_over_start": (bool((ref or {}).get("hard")), lambda: lo("cmarl-start", "hard") > 0),
        "easy_drops_from_start": (bool((ref or {}).get("easy")), lambda: hi("cmarl-start", "easy") < 0),
    }
    for k, (applies, rule) in expect.items():
        if k not in claims or not isinstance(claims[k], bool):
            p.append(f"claims.{k} missing or not a boolean")
        elif applies and claims[k] != rule():
            p.append(f"claims.{k} = {claims[k]} disagrees with the recorded paired interval")
    for k in ("learned_contrarian", "format_kept_under_max_gamma"):
        if not isinstance(claims.get(k), bool):
            p.append(f"claims.{k} missing or not a boolean")
    shifts = [bool(s.get("contrarian_shift")) for s in stages.get("cmarl", [])]
    final = contrarian(paired.get("cmarl-start", {}).get("hard"), paired.get("cmarl-start", {}).get("easy"))
    if isinstance(claims.get("learned_contrarian"), bool) and claims["learned_contrarian"] != (final or any(shifts)):
        p.append(f"claims.learned_contrarian = {claims['learned_contrarian']} disagrees with the recorded Hard/Easy deltas")
    for k in ("train_seconds", "seconds"):
        v = need(m, k, (int, float), p)
        if v is not None and v < 0:
            p.append(f"{k} is negative")
    check_seed_replicates(m, ("system", "stratum"), p, m.get("seed"))
    return p
