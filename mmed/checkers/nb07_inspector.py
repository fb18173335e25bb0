"""Checker for 07_disagreement_inspector (see :mod:`mmed.checks` and :mod:`mmed.viz.inspector`).

The notebook records the inspector's counts over every prediction record of the run.
Invariants: each partition of the records (sources, strata, outcomes, overrule statuses,
agreement levels, image statuses) has exactly the keys the inspector defines and adds up
to ``n_records``; the per-stratum table adds up to the totals; correct-after-overruling
and correct-after-following are bounded by their cases and together by the correct ones;
image placeholders equal the non-showable statuses plus decoding failures.
"""

from __future__ import annotations

from typing import Any

from ..checks import check_rate, need, register_checker
from ..viz.inspector import IMAGE_STATUSES, OUTCOMES, OVERRULE_STATUSES, STRATUM_VALUES

#: partitions of the records and the keys each must have exactly (None: any keys)
PARTITIONS: dict[str, tuple[str, ...] | None] = {
    "sources": None,
    "strata": STRATUM_VALUES,
    "outcomes": OUTCOMES,
    "overrule": OVERRULE_STATUSES,
    "agreement": None,
    "images": tuple(s for s in IMAGE_STATUSES if s != "unreadable"),
}
#: columns of one row of ``by_stratum``
ROW_KEYS = ("n", "correct", "followed", "followed_correct", "overruled", "overruled_correct", "undefined")


def _count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


@register_checker("07_disagreement_inspector")
def check_07(m: dict[str, Any]) -> list[str]:
    """Schema and invariants of the inspector's counts (module docstring)."""
    p: list[str] = []
    n = need(m, "n_records", int, p)
    if n is not None and n <= 0:
        p.append(f"n_records = {n}: the inspector had no records")
    parts: dict[str, dict[str, int]] = {}
    for name, keys in PARTITIONS.items():
        d = need(m, name, dict, p)
        if d is None:
            continue
        bad = [k for k, v in d.items() if not _count(v)]
        if bad:
            p.append(f"{name}: non-count values for {bad}")
            continue
        if keys is not None and set(d) != set(keys):
            p.append(f"{name}: keys {sorted(d)} != {sorted(keys)}")
        if n is not None and sum(d.values()) != n:
            p.append(f"{name}: counts {d} add up to {sum(d.values())}, not n_records = {n} (a record was lost)")
        parts[name] = d
    for key in ("overruled_correct", "followed_correct", "image_failures", "placeholders", "skipped"):
        v = need(m, key, int, p)
        if v is not None and v < 0:
            p.append(f"{key} = {v} is negative")
    ov, oc = parts.get("overrule", {}), parts.get("outcomes", {})
    if ov and oc and _count(m.get("overruled_correct")) and _count(m.get("followed_correct")):
        if m["overruled_correct"] > ov["overruled"]:
            p.append(f"overruled_correct = {m['overruled_correct']} > overruled = {ov['overruled']}")
        if m["followed_correct"] > ov["followed"]:
            p.append(f"followed_correct = {m['followed_correct']} > followed = {ov['followed']}")
        if m["overruled_correct"] + m["followed_correct"] > oc["correct"]:
            p.append("overruled_correct + followed_correct exceed the correct records")
    im = parts.get("images", {})
    if im and _count(m.get("placeholders")) and _count(m.get("image_failures")):
        want = sum(v for k, v in im.items() if k not in ("synthetic", "file")) + m["image_failures"]
        if m["placeholders"] != want:
            p.append(f"placeholders = {m['placeholders']} but non-showable images + failures = {want}")
        if m["image_failures"] > im.get("synthetic", 0) + im.get("file", 0):
            p.append("more decoding failures than images that could be decoded")
    rows = need(m, "by_stratum", dict, p) or {}
    if rows:
        if "all" not in rows:
            p.append("by_stratum lacks the 'all' row")
        for st, row in rows.items():
            if st not in (*STRATUM_VALUES, "all"):
                p.append(f"by_stratum: unknown stratum {st!r}")
            if not isinstance(row, dict) or any(not _count(row.get(k)) for k in ROW_KEYS):
                p.append(f"by_stratum[{st}] needs counts {ROW_KEYS}")
                continue
            if row["followed"] + row["overruled"] + row["undefined"] != row["n"]:
                p.append(f"by_stratum[{st}]: followed + overruled + undefined != n")
            if row["followed_correct"] > row["followed"] or row["overruled_correct"] > row["overruled"]:
                p.append(f"by_stratum[{st}]: more correct than cases")
            if row["correct"] > row["n"]:
                p.append(f"by_stratum[{st}]: correct > n")
            if row["n"]:
                check_rate(row.get("accuracy"), f"by_stratum[{st}].accuracy", p)
                if isinstance(row.get("accuracy"), float) and abs(row["accuracy"] - row["correct"] / row["n"]) > 1e-9:
                    p.append(f"by_stratum[{st}]: accuracy != correct / n")
        strata = parts.get("strata", {})
        for st, c in strata.items():
            have = rows.get(st, {}).get("n", 0) if isinstance(rows.get(st), dict) else 0
            if have != c:
                p.append(f"by_stratum[{st}].n = {have} but strata[{st}] = {c}")
        if isinstance(rows.get("all"), dict) and n is not None and rows["all"].get("n") != n:
            p.append(f"by_stratum[all].n = {rows['all'].get('n')} != n_records = {n}")
        if isinstance(rows.get("all"), dict) and oc and rows["all"].get("correct") != oc.get("correct"):
            p.append("by_stratum[all].correct differs from outcomes.correct")
    cases = need(m, "cases_shown", dict, p) or {}
    for name, rid in cases.items():
        if rid is not None and not isinstance(rid, str):
            p.append(f"cases_shown[{name}] must be a record id or null")
    need(m, "fallback_consultation", bool, p)
    sec = need(m, "seconds", (int, float), p)
    if sec is not None and sec < 0:
        p.append("negative run time")
    return p
