"""Checker for 03_triage_grpo (see :mod:`mmed.checks` and :mod:`mmed.rl.triage`).

Schema and invariants of what the notebook records:

- ``eval[stage][set]`` (stages ``sft`` and ``grpo``; sets ``synthetic``,
  ``synthetic_image_only`` and, with real data, ``real``) are :func:`mmed.rl.triage.triage_summary`
  outputs: rates in [0, 1] inside their intervals, per-specialty counts adding up to ``n``,
  every specialty present on the synthetic set, and Surgeon / Oncologist / Endocrinologist
  reported as having no real images;
- ``gain[set].diff`` is exactly the GRPO accuracy minus the cold-start accuracy;
- the confusion matrices agree with the summaries (row sums = items per label, diagonal =
  correct answers, the invalid column = rejected answers);
- GRPO had a learning signal: the mean fraction of groups whose rewards are all equal is
  below 0.5, and logged steps = trained steps;
- downstream: gold triage is always right; with greedy decoding the pipeline's triage
  accuracy is the evaluated accuracy, up to the invalid answers a fallback may have rescued.
"""

from __future__ import annotations

import math
from typing import Any

from ..checks import check_interval, check_rate, check_seed_replicates, need, register_checker
from ..data.schema import SPECIALTIES

STAGES = ("sft", "grpo")
SETS = ("synthetic", "synthetic_image_only")
NO_REAL = ("Surgeon", "Oncologist", "Endocrinologist")
DECISIONS = ("attending", "majority_vote")
#: GRPO "has signal" when, on average, fewer than this fraction of groups had equal rewards
MAX_ZERO_STD = 0.5


def _ci(d: Any, name: str, p: list[str]) -> float | None:
    if not isinstance(d, dict) or not all(k in d for k in ("acc", "lo", "hi", "n")):
        p.append(f"{name} is not an interval {{acc, lo, hi, n}}")
        return None
    q: list[str] = []
    check_interval(d["acc"], d["lo"], d["hi"], name, q)
    p.extend(q)
    return None if q else float(d["acc"])


def _summary(s: Any, name: str, p: list[str]) -> None:
    if not isinstance(s, dict):
        p.append(f"{name} missing")
        return
    n = need(s, "n", int, p)
    for key in ("accuracy", "format_valid", "answer_valid"):
        _ci(s.get(key), f"{name}.{key}", p)
    by = need(s, "by_specialty", dict, p) or {}
    if set(by) != set(SPECIALTIES):
        p.append(f"{name}.by_specialty lists {sorted(by)}, expected the seven specialties")
        return
    total = 0
    for spec, b in by.items():
        k = b.get("n") if isinstance(b, dict) else None
        if not isinstance(k, int) or k < 0:
            p.append(f"{name}.by_specialty.{spec}.n is not a count")
            continue
        total += k
        for key in ("accuracy", "format_valid"):
            if k == 0 and b.get(key) is not None:
                p.append(f"{name}.by_specialty.{spec}.{key} given for a specialty without items")
            if k > 0:
                _ci(b.get(key), f"{name}.by_specialty.{spec}.{key}", p)
    if n is not None and total != n:
        p.append(f"{name}: per-specialty counts sum to {total}, not n = {n}")
    without = {s for s, b in by.items() if isinstance(b, dict) and b.get("n") == 0}
    if set(s.get("without_items") or []) != without:
        p.append(f"{name}.without_items = {s.get('without_items')} but specialties with n = 0 are {sorted(without)}")


def _confusion(c: Any, s: Any, name: str, p: list[str]) -> None:
    if not isinstance(c, dict) or not isinstance(s, dict):
        p.append(f"{name} missing")
        return
    labels, cols, mat = c.get("labels"), c.get("columns"), c.get("matrix")
    if labels != list(SPECIALTIES) or not isinstance(cols, list) or cols[:7] != list(SPECIALTIES) or len(cols) != 8:
        p.append(f"{name}: labels must be the seven specialties and columns those plus the invalid column")
        return
    if not isinstance(mat, list) or len(mat) != 7 or any(not isinstance(r, list) or len(r) != 8 for r in mat):
        p.append(f"{name}: matrix must be 7 x 8")
        return
    if any(not isinstance(v, int) or v < 0 for r in mat for v in r):
        p.append(f"{name}: matrix entries must be counts")
        return
    by = s.get("by_specialty") or {}
    for spec, row in zip(SPECIALTIES, mat):
        if sum(row) != (by.get(spec) or {}).get("n"):
            p.append(f"{name}: row {spec} sums to {sum(row)}, not its {by.get(spec, {}).get('n')} items")
    n = s.get("n")
    if isinstance(n, int) and n > 0:
        diag = sum(mat[i][i] for i in range(7))
        acc = (s.get("accuracy") or {}).get("acc")
        if isinstance(acc, (int, float)) and abs(diag / n - acc) > 1e-9:
            p.append(f"{name}: diagonal {diag}/{n} differs from the accuracy {acc}")
        invalid = sum(r[7] for r in mat)
        av = (s.get("answer_valid") or {}).get("acc")
        if isinstance(av, (int, float)) and abs((n - invalid) / n - av) > 1e-9:
            p.append(f"{name}: invalid column {invalid} differs from the answer-valid rate {av}")


@register_checker("03_triage_grpo")
def check_03_triage_grpo(m: dict[str, Any]) -> list[str]:
    """03_triage_grpo: evaluation summaries, gains, confusion, training signal, downstream."""
    p: list[str] = []
    real = need(m, "real_data", bool, p)
    sets = SETS + (("real",) if real else ())
    ev = need(m, "eval", dict, p) or {}
    for stage in STAGES:
        for s in sets:
            _summary((ev.get(stage) or {}).get(s), f"eval.{stage}.{s}", p)
        for s in SETS:
            w = ((ev.get(stage) or {}).get(s) or {}).get("without_items")
            if w:
                p.append(f"eval.{stage}.{s}: the synthetic set has no items for {w}")
        if real:
            w = set(((ev.get(stage) or {}).get("real") or {}).get("without_items") or [])
            if not set(NO_REAL) <= w:
                p.append(f"eval.{stage}.real: {sorted(set(NO_REAL) - w)} reported with real images")
    gain = need(m, "gain", dict, p) or {}
    for s in sets:
        g = gain.get(s)
        a = ((ev.get("grpo") or {}).get(s) or {}).get("accuracy") or {}
        b = ((ev.get("sft") or {}).get(s) or {}).get("accuracy") or {}
        if not isinstance(g, dict) or not all(k in g for k in ("diff", "lo", "hi", "n")):
            p.append(f"gain.{s} missing")
            continue
        if not g["lo"] - 1e-9 <= g["diff"] <= g["hi"] + 1e-9:
            p.append(f"gain.{s}: {g['diff']} outside [{g['lo']}, {g['hi']}]")
        if isinstance(a.get("acc"), (int, float)) and isinstance(b.get("acc"), (int, float)):
            if abs(g["diff"] - (a["acc"] - b["acc"])) > 1e-9:
                p.append(f"gain.{s}.diff = {g['diff']} is not grpo - sft = {a['acc'] - b['acc']}")
    _confusion(m.get("confusion"), (ev.get("grpo") or {}).get("synthetic"), "confusion", p)
    if real:
        _confusion(m.get("confusion_real"), (ev.get("grpo") or {}).get("real"), "confusion_real", p)

    steps = need(m, "training.steps", int, p)
    logged = need(m, "training.steps_logged", int, p)
    if steps is not None and logged is not None and (steps < 1 or logged != steps):
        p.append(f"training: {logged} logged steps for {steps} trained steps")
    z = need(m, "training.frac_reward_zero_std_mean", (int, float), p)
    if z is not None:
        check_rate(z, "training.frac_reward_zero_std_mean", p)
        if z >= MAX_ZERO_STD:
            p.append(f"training: {z:.2f} of GRPO groups had equal rewards on average (no learning signal)")
    for key in ("format_valid_first", "format_valid_last", "accuracy_reward_first", "accuracy_reward_last"):
        v = need(m, f"training.{key}", (int, float), p)
        if v is not None:
            check_rate(v, f"training.{key}", p)
    length = need(m, "training.completion_length_mean", (int, float), p)
    cap = need(m, "training.max_completion_length", int, p)
    if length is not None and cap is not None and not 0 < length <= cap:
        p.append(f"training: mean completion length {length} not in (0, {cap}]")
    sps = need(m, "training.seconds_per_step", (int, float), p)
    if sps is not None and not (math.isfinite(sps) and sps > 0):
        p.append("training.seconds_per_step must be positive")

    ds = need(m, "downstream.systems", dict, p) or {}
    n_items = need(m, "downstream.n_items", int, p)
    greedy = need(m, "downstream.greedy_triage", bool, p)
    if set(ds) != {"sft", "grpo", "gold"}:
        p.append(f"downstream.systems = {sorted(ds)}, expected sft, grpo and gold")
    for stage, sysm in ds.items():
        for d in DECISIONS:
            a = _ci((sysm.get("accuracy") or {}).get(d), f"downstream.{stage}.accuracy.{d}", p)
            if a is not None and n_items is not None and sysm["accuracy"][d]["n"] != n_items:
                p.append(f"downstream.{stage}.{d}: {sysm['accuracy'][d]['n']} items, expected {n_items}")
        t = _ci(sysm.get("triage_accuracy"), f"downstream.{stage}.triage_accuracy", p)
        if stage == "gold" and t is not None and t != 1.0:
            p.append(f"downstream: gold triage accuracy is {t}, must be 1")
        syn = ((ev.get(stage) or {}).get("synthetic") or {}).get("accuracy") or {}
        inv = sysm.get("triage_invalid")
        if greedy and stage in STAGES and t is not None and isinstance(syn.get("acc"), float) and isinstance(inv, int) and n_items:
            if not syn["acc"] - 1e-9 <= t <= syn["acc"] + inv / n_items + 1e-9:
                p.append(f"downstream.{stage}: pipeline triage accuracy {t} vs evaluated {syn['acc']} "
                         f"(+ at most {inv} fallbacks)")
    for d, pairs in (need(m, "downstream.paired", dict, p) or {}).items():
        for name, g in pairs.items():
            if abs(g["diff"] - (g["acc_a"] - g["acc_b"])) > 1e-9:
                p.append(f"downstream.paired.{d}.{name}: diff is not acc_a - acc_b")
    sec = need(m, "seconds", (int, float), p)
    if sec is not None and sec < 0:
        p.append("negative run time")
    check_seed_replicates(m, ("set",), p, m.get("seed"))
    return p
