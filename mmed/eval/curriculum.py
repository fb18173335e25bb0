"""The comparison notebook 04 records: the C-MARL report (paper §4).

:func:`curriculum_report` reads the held-out predictions every curriculum variant wrote
after each stage (:func:`mmed.rl.curriculum.train_curriculum`) and compares them with paired
bootstrap intervals: per stage and stratum the change from the stage before, the final
systems against each other, against the cold start, the shortcuts (follow / contradict the
panel's majority) and the image-only reference; :data:`CLAIMS` are decided from those
intervals; :func:`report_metrics` is the dictionary the notebook records
(``mmed.checkers.nb04_cmarl_curriculum``). :func:`mmed.eval.replicates.curriculum_step` (notebook
04 and ``python -m mmed train-attending``) calls them.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from ..agents.scoring import accuracy_ci, format_diff, paired_bootstrap_diff
from ..config import STRATA, Profile
from ..rl.curriculum import (CurriculumResult, accuracy_by_stratum, heldout_answers, heldout_predictions, load_stage_manifests,
                             read_jsonl, shortcut_baselines, variant_label)
from ..rl.grpo import read_log
from ..runs import Run

#: the claims :func:`curriculum_report` decides, each from paired bootstrap intervals
CLAIMS: tuple[str, ...] = (
    "cmarl_beats_no_curriculum", "cmarl_beats_no_entropy", "hard_improves_over_start", "easy_drops_from_start",
    "learned_contrarian", "beats_follow_majority", "format_kept_under_max_gamma",
)


def _stage_training_summary(log: Sequence[dict[str, Any]]) -> dict[str, Any]:
    def mean(key: str) -> float | None:
        vals = [r[key] for r in log if isinstance(r.get(key), (int, float))]
        return sum(vals) / len(vals) if vals else None

    fv = [r["format_valid"] for r in log if "format_valid" in r]
    return {"n_logged": len(log), "reward_mean": mean("reward"), "accuracy_reward_mean": mean("rewards/choice_accuracy_reward/mean"),
            "format_valid_mean": mean("format_valid"), "format_valid_min": min(fv) if fv else None,
            "entropy_mean": mean("entropy"), "frac_reward_zero_std_mean": mean("frac_reward_zero_std"),
            "completion_length_mean": mean("completions/mean_length"), "kl_mean": mean("kl")}


def curriculum_report(
    run: Run, variants: Sequence[str | None], split: str = "validation", n_boot: int = 1000, seed: int = 0,
    min_margin: float = 0.0,
) -> dict[str, Any]:
    """Everything notebook 04 shows and records about trained curricula, from the run's files.

    Args:
        variants: the variants trained in ``run`` (None = the C-MARL curriculum itself);
            the first is the one the claims are about.
        split: the held-out split they were measured on.
        min_margin: a claim "A beats B" needs the paired interval's lower end above this.
    Returns:
        ``systems``: per system (``start``, each variant's final stage, ``image_only`` — the
        image-only reference on the same items without opinions, when the run holds it —
        and the shortcut baselines ``follow_majority``/``contradict_majority``), accuracy per stratum and
        overall with bootstrap intervals; ``stages``: per variant, each stage's γ, steps,
        items, held-out accuracy after it, the distribution of its held-out answers
        (``answers``, :func:`heldout_answers`; the last stage's is the variant's final one)
        and its training-log summary; ``answers``: the same for the starting policy
        (``start``) and the follow-the-majority shortcut; ``paired``: paired
        bootstrap differences (first variant minus each other system) per stratum;
        ``contradict_hard_yes_no``: accuracy of contradicting the majority on 2-option Hard
        items with a valid majority (1.0 by construction); ``claims``: the booleans of
        :data:`CLAIMS` and a sentence of evidence for each.
    Raises:
        FileNotFoundError: a variant was not trained (or not measured on ``split``);
        ValueError: systems measured on different items.
    """

    if not variants:
        raise ValueError("curriculum_report needs at least one variant")
    start = heldout_predictions(run, None, None, split)
    ids = [r["id"] for r in start]
    systems: dict[str, list[dict[str, Any]]] = {"start": start}
    stages: dict[str, list[dict[str, Any]]] = {}
    from ..agents.build import variant_dir_name

    for v in variants:
        mans = load_stage_manifests(run, v)
        if not mans or any(m.get("status") != "done" for m in mans):
            raise FileNotFoundError(f"variant {variant_label(v)!r} has no finished curriculum in {run.root}")
        if mans[0]["heldout"]["split"] != split:
            raise FileNotFoundError(f"variant {variant_label(v)!r} was measured on {mans[0]['heldout']['split']!r}, not {split!r}")
        rows = []
        prev = start
        for m in mans:
            recs = heldout_predictions(run, v, m["dir"], split)
            if [r["id"] for r in recs] != ids:
                raise ValueError(f"{variant_label(v)}/{m['dir']}: held-out items differ from the starting policy's")
            log = read_log(run.path("attending", variant_dir_name(v), m["dir"], "log_history.jsonl"))
            delta = _paired_by_stratum(recs, prev, n_boot, seed)
            rows.append({k: m[k] for k in ("dir", "name", "strata", "entropy_coef", "steps", "n_items", "step_offset")}
                        | {"after": accuracy_by_stratum(recs, "correct", n_boot, seed),
                           "answers": heldout_answers(recs),
                           "format_valid_after": sum(r["format_valid"] for r in recs) / len(recs),
                           "delta": delta, "contrarian_shift": _contrarian(delta),
                           "train": _stage_training_summary(log)})
            prev = recs
        stages[variant_label(v)] = rows
        systems[variant_label(v)] = heldout_predictions(run, v, mans[-1]["dir"], split)
    image_only = read_jsonl(run.path("attending", f"heldout_image_only_{split}.jsonl"))
    if image_only is not None and [r["id"] for r in image_only] == ids:
        systems["image_only"] = image_only
    base = shortcut_baselines(start, seed)
    correct = {name: [bool(r["correct"]) for r in recs] for name, recs in systems.items()}
    correct.update(base)
    strata_of = [r["stratum"] for r in start]

    def sub(xs: Sequence[bool], st: str) -> list[bool]:
        return [x for x, s in zip(xs, strata_of) if st == "all" or s == st]

    acc = {name: {st: accuracy_ci(sub(c, st), n_boot, seed=seed) for st in (*STRATA, "all")} for name, c in correct.items()}
    main = variant_label(variants[0])
    paired = {}
    for other in correct:
        if other == main:
            continue
        paired[f"{main}-{other}"] = {
            st: (paired_bootstrap_diff(sub(correct[main], st), sub(correct[other], st), n_boot, seed=seed)
                 if sub(correct[main], st) else None)
            for st in (*STRATA, "all")
        }
    labels = [variant_label(v) for v in variants]
    for i, a in enumerate(labels):
        for b in labels[i + 1:] + ["start"]:
            key = f"{a}-{b}"
            if key not in paired:
                paired[key] = {st: (paired_bootstrap_diff(sub(correct[a], st), sub(correct[b], st), n_boot, seed=seed)
                                    if sub(correct[a], st) else None) for st in (*STRATA, "all")}
    yn_hard = [c for c, r in zip(base["contradict_majority"], start)
               if r["stratum"] == "hard" and r["n_options"] == 2 and r["majority"] is not None]
    start_fv = sum(r["format_valid"] for r in start) / len(start)
    claims, evidence = _claims(main, paired, stages[main], start_fv, min_margin)
    answers = {"start": heldout_answers(start), "follow_majority": heldout_answers(start, "majority")}
    if "image_only" in systems:
        answers["image_only"] = heldout_answers(systems["image_only"])
    return {"split": split, "n_items": len(ids), "variants": [variant_label(v) for v in variants], "main": main,
            "systems": acc, "stages": stages, "paired": paired, "answers": answers,
            "contradict_hard_yes_no": {"acc": (sum(yn_hard) / len(yn_hard)) if yn_hard else None, "n": len(yn_hard)},
            "claims": claims, "evidence": evidence}


def _paired_by_stratum(after: Sequence[dict[str, Any]], before: Sequence[dict[str, Any]], n_boot: int, seed: int) -> dict[str, Any]:
    """Paired bootstrap ``acc(after) - acc(before)`` per stratum and overall (None for an
    empty stratum); records aligned by item."""

    out: dict[str, Any] = {}
    for st in (*STRATA, "all"):
        idx = [i for i, r in enumerate(before) if st == "all" or r["stratum"] == st]
        out[st] = (paired_bootstrap_diff([after[i]["correct"] for i in idx], [before[i]["correct"] for i in idx], n_boot, seed=seed)
                   if idx else None)
    return out


def _contrarian(delta: dict[str, Any]) -> bool:
    """A Hard gain paid for by an Easy loss: Hard improved (interval above 0) while Easy
    fell significantly (interval below 0) by at least half the Hard gain."""
    h, e = delta.get("hard"), delta.get("easy")
    return bool(h is not None and e is not None and h["lo"] > 0 and e["hi"] < 0 and -e["diff"] >= 0.5 * h["diff"])


def _claims(main: str, paired: dict[str, Any], stages: Sequence[dict[str, Any]], start_format: float, margin: float) -> tuple[dict[str, bool], dict[str, str]]:
    def d(other: str, st: str) -> dict[str, Any] | None:
        return paired.get(f"{main}-{other}", {}).get(st)

    def fmt(x: dict[str, Any] | None) -> str:
        return format_diff(x, interval_digits=3, with_n=True)

    def above(x) -> bool:
        return x is not None and x["lo"] > margin

    def below(x) -> bool:
        return x is not None and x["hi"] < -margin

    claims, ev = {}, {}
    for key, other in (("cmarl_beats_no_curriculum", "no_curriculum"), ("cmarl_beats_no_entropy", "no_entropy"),
                       ("beats_follow_majority", "follow_majority")):
        x = d(other, "all")
        claims[key] = above(x)
        ev[key] = f"{main} - {other}, all strata: {fmt(x)}" if x is not None else f"{other} not compared"
    hard, easy = d("start", "hard"), d("start", "easy")
    claims["hard_improves_over_start"] = above(hard)
    ev["hard_improves_over_start"] = f"{main} - start on Hard: {fmt(hard)}"
    claims["easy_drops_from_start"] = below(easy)
    ev["easy_drops_from_start"] = f"{main} - start on Easy: {fmt(easy)}"
    shifts = [s["dir"] for s in stages if s["contrarian_shift"]]
    claims["learned_contrarian"] = _contrarian({"hard": hard, "easy": easy}) or bool(shifts)
    ev["learned_contrarian"] = ("a Hard gain paid for by an Easy loss (Hard up, Easy significantly down by at least "
                                f"half as much), final vs start: Hard {fmt(hard)}, Easy {fmt(easy)}; stages with such a "
                                f"shift: {shifts or 'none'}")
    gmax = max(stages, key=lambda s: s["entropy_coef"])
    k = stages.index(gmax)
    before = stages[k - 1]["format_valid_after"] if k > 0 else start_format
    claims["format_kept_under_max_gamma"] = bool(gmax["format_valid_after"] >= before - 0.05)
    ev["format_kept_under_max_gamma"] = (f"held-out format-valid rate before/after the largest-γ stage {gmax['dir']} "
                                         f"(γ={gmax['entropy_coef']}): {before:.3f} → "
                                         f"{gmax['format_valid_after']:.3f}; training format-valid min "
                                         f"{gmax['train']['format_valid_min']}")
    return claims, ev


def report_metrics(report: dict[str, Any], results: dict[str, CurriculumResult], profile: Profile, seed: int,
                   train_seconds: float, seconds: float, seed_replicates: dict[str, Any] | None = None) -> dict[str, Any]:
    """The metrics notebook 04 records (``mmed.checkers.nb04_cmarl_curriculum`` checks them):
    the :func:`curriculum_report` blocks plus the plans as trained, the training counts and
    timings. ``results`` maps variant folder names (``"cmarl"`` first) to the
    :class:`CurriculumResult` of each; ``seed_replicates`` (the seed replicate's record,
    :func:`mmed.eval.replicates.curriculum_replicate_record`) is added under that key when
    given; plain JSON types only.

    Raises:
        ValueError: ``results`` names other variants than the report.
    """
    if list(results) != report["variants"]:
        raise ValueError(f"results {list(results)} do not match the report's variants {report['variants']}")
    first = results[report["main"]]
    return json.loads(json.dumps({
        "profile": profile.name, "seed": seed, "heldout_split": report["split"], "n_heldout": report["n_items"],
        "variants": report["variants"], "train_counts": first.train_counts,
        "plans": {n: [{k: m[k] for k in ("dir", "strata", "steps", "entropy_coef", "n_items", "max_steps")} for m in r.stages]
                  for n, r in results.items()},
        **{k: report[k] for k in ("systems", "stages", "paired", "answers", "contradict_hard_yes_no", "claims", "evidence")},
        "train_seconds": round(float(train_seconds), 1), "seconds": round(float(seconds), 1),
        **({"seed_replicates": seed_replicates} if seed_replicates is not None else {}),
    }))
