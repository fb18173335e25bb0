"""Checker for 03_triage_grpo (see :mod:`mmed.checks` and :mod:`mmed.rl.triage`).

Schema and invariants of what the notebook records:

- ``eval[stage][set]`` (stages ``sft`` and ``grpo``; sets ``synthetic``,
  ``synthetic_image_only`` and, with real data, ``real``) are :func:`mmed.eval.triage.triage_summary`
  outputs: rates in [0, 1] inside their intervals, per-specialty counts adding up to ``n``,
  every specialty present on the synthetic set, and Surgeon / Oncologist / Endocrinologist
  reported as having no real images;
- ``gain[set].diff`` is exactly the GRPO accuracy minus the cold-start accuracy;
- the confusion matrices agree with the summaries (row sums = items per label, diagonal =
  correct answers, the invalid column = rejected answers);
- GRPO had a learning signal: the mean fraction of groups whose rewards are all equal is
  below 0.5, and logged steps = trained steps;
- downstream: gold triage is always right; with greedy decoding the pipeline's triage
  accuracy is the evaluated accuracy, up to the invalid answers a fallback may have rescued;
- the majority-class baseline of every set (``majority[set]``): its answer is a specialty
  that no other specialty outnumbers on those items, its summary covers the same items as the
  evaluation (same ``n`` and per-specialty counts), its accuracy is that specialty's share
  (1 on its own specialty, 0 on the others), and ``vs_grpo.diff`` is exactly the GRPO
  accuracy minus it;
- the answer counts (``answers[stage][set]``): the seven specialties plus ``(invalid)``,
  summing to ``n``, the invalid count agreeing with the answer-valid rate, and (GRPO, real)
  agreeing with the real confusion matrix's columns;
- the real images (``real``, with real data): per specialty train + held-out = all; no image
  in both parts; no evaluated image trained on; ``n_eval`` = the real set's ``n`` — the
  held-out part after a training on real images (``real_train``), all of them otherwise;
  with ``real_train`` the training data's real images are the train part, the cold start
  trained on real images (``cold_start.training_data.n_real`` > 0) and the training items
  cover every specialty of the train part.
"""

from __future__ import annotations

import math
from typing import Any

from ..checks import check_interval, check_rate, check_seed_replicates, need, register_checker
from ..data.schema import SPECIALTIES

STAGES = ("sft", "grpo")
INVALID = "(invalid)"
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
    _majority(m, ev, sets, p)
    _answers(m, ev, sets, p)
    if real:
        _real(m, ev, p)
    return p


def _close(a: Any, b: Any) -> bool:
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= 1e-9


def _majority(m: dict[str, Any], ev: dict[str, Any], sets: tuple[str, ...], p: list[str]) -> None:
    maj = need(m, "majority", dict, p) or {}
    for s in sets:
        b = maj.get(s)
        name = f"majority.{s}"
        if not isinstance(b, dict):
            p.append(f"{name} missing")
            continue
        answer, summ = b.get("answer"), b.get("summary")
        if answer not in SPECIALTIES:
            p.append(f"{name}.answer = {answer!r} is not a specialty")
            continue
        q: list[str] = []
        _summary(summ, f"{name}.summary", q)
        p.extend(q)
        if q:
            continue
        grpo = (ev.get("grpo") or {}).get(s) or {}
        by, n = summ["by_specialty"], summ["n"]
        if n != grpo.get("n") or any(by[k]["n"] != ((grpo.get("by_specialty") or {}).get(k) or {}).get("n") for k in SPECIALTIES):
            p.append(f"{name}: covers other items than eval.grpo.{s} (n {n} vs {grpo.get('n')})")
        top = max(by[k]["n"] for k in SPECIALTIES)
        if by[answer]["n"] != top:
            p.append(f"{name}: answer {answer} has {by[answer]['n']} items, another specialty has {top}")
        if not _close(summ["accuracy"]["acc"], by[answer]["n"] / n if n else float("nan")):
            p.append(f"{name}: accuracy {summ['accuracy']['acc']} is not {answer}'s share {by[answer]['n']}/{n}")
        for k in SPECIALTIES:
            a = (by[k].get("accuracy") or {}).get("acc")
            if by[k]["n"] and not _close(a, 1.0 if k == answer else 0.0):
                p.append(f"{name}.by_specialty.{k}: accuracy {a}, a constant {answer} scores {1.0 if k == answer else 0.0}")
        v = b.get("vs_grpo")
        ga = (grpo.get("accuracy") or {}).get("acc")
        if not isinstance(v, dict) or not all(k in v for k in ("diff", "lo", "hi")):
            p.append(f"{name}.vs_grpo missing")
        elif not _close(v["diff"], (ga if isinstance(ga, (int, float)) else float("nan")) - summ["accuracy"]["acc"]):
            p.append(f"{name}.vs_grpo.diff = {v['diff']} is not GRPO {ga} - majority {summ['accuracy']['acc']}")
        elif not v["lo"] - 1e-9 <= v["diff"] <= v["hi"] + 1e-9:
            p.append(f"{name}.vs_grpo: {v['diff']} outside [{v['lo']}, {v['hi']}]")


def _answers(m: dict[str, Any], ev: dict[str, Any], sets: tuple[str, ...], p: list[str]) -> None:
    ans = need(m, "answers", dict, p) or {}
    for stage in STAGES:
        for s in sets:
            c = (ans.get(stage) or {}).get(s)
            name = f"answers.{stage}.{s}"
            summ = (ev.get(stage) or {}).get(s) or {}
            if not isinstance(c, dict) or set(c) != {*SPECIALTIES, INVALID}:
                p.append(f"{name} must count the seven specialties and {INVALID}")
                continue
            if any(not isinstance(v, int) or v < 0 for v in c.values()):
                p.append(f"{name}: counts must be ints >= 0")
                continue
            n = summ.get("n")
            if sum(c.values()) != n:
                p.append(f"{name}: counts sum to {sum(c.values())}, not n = {n}")
            av = (summ.get("answer_valid") or {}).get("acc")
            if isinstance(n, int) and n and isinstance(av, (int, float)) and abs((n - c[INVALID]) / n - av) > 1e-9:
                p.append(f"{name}: {c[INVALID]} invalid answers disagree with the answer-valid rate {av}")
    cm = m.get("confusion_real")
    c = (ans.get("grpo") or {}).get("real")
    if isinstance(cm, dict) and isinstance(c, dict) and isinstance(cm.get("matrix"), list) and cm.get("columns"):
        cols = [sum(r[j] for r in cm["matrix"]) for j in range(len(cm["columns"]))]
        if dict(zip(cm["columns"], cols)) != {k: c.get(k) for k in cm["columns"]}:
            p.append("answers.grpo.real disagree with the real confusion matrix's column sums")


def _real(m: dict[str, Any], ev: dict[str, Any], p: list[str]) -> None:
    r = need(m, "real", dict, p)
    if r is None:
        return
    counts = r.get("counts") or {}
    parts = [counts.get(k) for k in ("train", "heldout", "all")]
    if not all(isinstance(x, dict) and set(x) == set(SPECIALTIES) for x in parts):
        p.append("real.counts must list the seven specialties for train, heldout and all")
        return
    train, held, every = parts
    for k in SPECIALTIES:
        if train[k] + held[k] != every[k]:
            p.append(f"real.counts.{k}: train {train[k]} + held-out {held[k]} != all {every[k]}")
    if r.get("overlap") != 0:
        p.append(f"real: {r.get('overlap')} image contents in both the train and the held-out part")
    if r.get("trained_eval_overlap") != 0:
        p.append(f"real: {r.get('trained_eval_overlap')} evaluated real images were trained on")
    rt = need(m, "real_train", bool, p)
    n_real = ((ev.get("grpo") or {}).get("real") or {}).get("n")
    if r.get("n_eval") != n_real:
        p.append(f"real.n_eval = {r.get('n_eval')} but the real set has n = {n_real}")
    part = "heldout" if rt else "all"
    if r.get("eval_part") != part:
        p.append(f"real.eval_part = {r.get('eval_part')!r}, expected {part!r} with real_train = {rt}")
    if isinstance(r.get("n_eval"), int) and r["n_eval"] > sum((held if rt else every).values()):
        p.append(f"real.n_eval = {r['n_eval']} exceeds the {part} part's {sum((held if rt else every).values())} images")
    if not rt:
        return
    tr = r.get("training")
    if not isinstance(tr, dict) or tr.get("images") != train:
        p.append(f"real.training.images = {None if not isinstance(tr, dict) else tr.get('images')} is not the train part {train}")
    else:
        items = tr.get("items") or {}
        if any((items.get(k) or 0) < (1 if train[k] else 0) or (not train[k] and items.get(k)) for k in SPECIALTIES):
            p.append(f"real.training.items {items} must cover exactly the specialties of the train part")
    cs = (m.get("cold_start") or {}).get("training_data") if isinstance(m.get("cold_start"), dict) else None
    if m.get("cold_start") is not None and not (isinstance(cs, dict) and isinstance(cs.get("n_real"), int) and cs["n_real"] > 0):
        p.append("cold_start.training_data: the cold start trained on no real image although real_train is set")
