"""Evaluation of the triage doctor (paper §3.1) and notebook 03's step.

Evaluation (:func:`evaluate_triage`, :func:`triage_summary`, :func:`confusion_matrix`,
:func:`paired_gain`, :func:`downstream_accuracy`) is greedy decoding with the triage doctor
of :mod:`mmed.agents.triage`; an invalid answer counts as wrong (never as its fallback), and
accuracies carry percentile-bootstrap intervals (:func:`mmed.agents.scoring.accuracy_ci`).
Beside every evaluation set stands the majority-class baseline (:func:`majority_class`: the
one answer that is right most often on those very items, e.g. "Radiologist" on the real
held-out images) and the trained triage's paired margin over it.

The step (:func:`triage_step`) is training (:func:`mmed.rl.triage.train_triage`) +
evaluation + the downstream comparison + the seed replicate in one call, returning a
:class:`TriageStepResult` whose ``metrics`` are what notebook 03 records;
``python -m mmed train-triage`` (:func:`run_train_triage`) and notebook 03 both call it, so
the two paths evaluate the same items the same way.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..agents.parsing import has_valid_format
from ..agents.scoring import accuracy_ci, answer_distribution, paired_bootstrap_diff
from ..config import Profile
from ..data.schema import SPECIALTIES
from ..data.sets import synthetic_split
from ..rl.cold_start import build_agents
from ..rl.triage import (NO_REAL_IMAGES, RealTriageSet, TriageTraining, real_evaluation_items, real_triage,
                         train_triage, triage_out_dir)
from ..runs import Run, resolve_data_root, write_json_atomic

#: column label of invalid answers in :func:`confusion_matrix`
INVALID = "(invalid)"

def evaluate_triage(
    runner: Any,
    items: Sequence[dict[str, Any]],
    profile: Profile,
    question: str | None = None,
    seed: int = 0,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Greedy triage of every item by a policy; one record per item.

    Args:
        runner: a :class:`mmed.agents.generation.PolicyRunner` (the triage policy).
        items: schema items (``id``, ``images``, ``question``, ``specialty``).
        profile: ``sampling.max_new_tokens`` and ``sampling.prompt_style`` are used; decoding
            is greedy whatever ``sampling.temperature`` says (a measurement, not a sample).
        question: when given, replaces every item's question (e.g. ``TRIAGE_QUESTION``: the
            image-only probe).
    Returns:
        records ``{id, source, specialty, raw, parsed, format_valid, answer_valid, correct,
        image_only}``; ``correct`` is False for an invalid answer (no fallback credit).
    Raises:
        ValueError: an item whose ``specialty`` is not one of the seven.
    """
    from ..agents.generation import SamplingParams
    from ..agents.triage import TriageDoctor
    from ..data import TRIAGE_QUESTION

    rows = [dict(it, question=question) if question is not None else dict(it) for it in items]
    for it in rows:
        if it.get("specialty") not in SPECIALTIES:
            raise ValueError(f"item {it.get('id')!r} has specialty {it.get('specialty')!r}, not one of {SPECIALTIES}")
    doctor = TriageDoctor(runner, "model", seed=seed, style=profile.sampling.prompt_style,
                          sampling=SamplingParams(max_new_tokens=profile.sampling.max_new_tokens, temperature=0.0))
    decisions = doctor.route(rows, progress=progress)
    out = []
    for it, d in zip(rows, decisions):
        out.append({
            "id": str(it["id"]),
            "source": it.get("source") or it.get("dataset"),
            "specialty": it["specialty"],
            "raw": d.raw,
            "parsed": d.parsed,
            "format_valid": bool(has_valid_format(d.raw or "")),
            "answer_valid": bool(d.valid),
            "correct": bool(d.valid and d.parsed == it["specialty"]),
            "image_only": it["question"] == TRIAGE_QUESTION,
        })
    return out


def triage_summary(records: Sequence[dict[str, Any]], n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Accuracy and format-valid rate of :func:`evaluate_triage` records, overall and per specialty.

    Returns:
        ``{"n", "accuracy", "format_valid", "answer_valid", "by_specialty", "without_items",
        "answers"}`` (``answers``: :func:`mmed.agents.scoring.answer_distribution` of the parsed
        specialties, invalid answers counted apart);
        each rate is ``{acc, lo, hi, n}`` (bootstrap interval at ``confidence``);
        ``by_specialty`` lists all seven specialties, those without items with ``n = 0``
        and ``None`` rates (reported, not dropped), also named in ``without_items``.
    Raises:
        ValueError: no records.
    """
    if not records:
        raise ValueError("triage_summary: no records")

    out: dict[str, Any] = {"n": len(records)}
    for key in ("correct", "format_valid", "answer_valid"):
        out["accuracy" if key == "correct" else key] = accuracy_ci([r[key] for r in records], n_boot, confidence, seed,
                                                                   none_if_empty=True)
    by = {}
    for s in SPECIALTIES:
        rs = [r for r in records if r["specialty"] == s]
        by[s] = {
            "n": len(rs),
            "accuracy": accuracy_ci([r["correct"] for r in rs], n_boot, confidence, seed, none_if_empty=True),
            "format_valid": accuracy_ci([r["format_valid"] for r in rs], n_boot, confidence, seed, none_if_empty=True),
        }
    out["by_specialty"] = by
    out["without_items"] = [s for s in SPECIALTIES if by[s]["n"] == 0]
    # docs/architecture.md#degenerate-agent-guard: which specialties the policy answered, next to the gold ones

    out["answers"] = answer_distribution([r["parsed"] if r["answer_valid"] else None for r in records],
                                         [r["raw"] for r in records], [r["specialty"] for r in records])
    return out


def confusion_matrix(records: Sequence[dict[str, Any]], specialties: Sequence[str] = SPECIALTIES) -> Any:
    """Counts of (label, answer): a ``pandas.DataFrame`` with one row per label specialty
    (7) and one column per answered specialty (7) plus :data:`INVALID` for answers the
    parser rejected. Row sums are the items per label; the diagonal sum is the number
    correct.

    Raises:
        ValueError: a record whose label or parsed answer is not in ``specialties``.
    """
    import pandas as pd

    cols = list(specialties) + [INVALID]
    m = pd.DataFrame(0, index=list(specialties), columns=cols, dtype=int)
    for r in records:
        if r["specialty"] not in specialties:
            raise ValueError(f"record {r.get('id')!r}: label {r['specialty']!r} not in {list(specialties)}")
        col = r["parsed"] if r["answer_valid"] else INVALID
        if col not in cols:
            raise ValueError(f"record {r.get('id')!r}: answer {col!r} not in {cols}")
        m.loc[r["specialty"], col] += 1
    m.index.name, m.columns.name = "label", "answer"
    return m


def paired_gain(after: Sequence[dict[str, Any]], before: Sequence[dict[str, Any]], n_boot: int = 1000,
                confidence: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Accuracy gain ``after − before`` on the same items with a paired bootstrap interval
    (:func:`mmed.agents.scoring.paired_bootstrap_diff`).

    Raises:
        ValueError: the two record lists are not over the same item ids in the same order.
    """

    ids_a, ids_b = [r["id"] for r in after], [r["id"] for r in before]
    if ids_a != ids_b:
        raise ValueError("paired_gain: the record lists cover different items (or a different order)")
    return paired_bootstrap_diff([r["correct"] for r in after], [r["correct"] for r in before], n_boot, confidence, seed)


def confusion_record(matrix: Any) -> dict[str, Any]:
    """A :func:`confusion_matrix` as JSON: ``{"labels", "columns", "matrix"}`` (lists, ints)."""
    return {"labels": [str(i) for i in matrix.index], "columns": [str(c) for c in matrix.columns],
            "matrix": [[int(v) for v in row] for row in matrix.values.tolist()]}


def triage_accuracy_table(summary: dict[str, dict[str, Any]]) -> Any:
    """``evaluate_stages(...)["summary"]`` as a ``pandas.DataFrame``: one row per (stage,
    set) with ``n``, ``accuracy`` and its ``lo``/``hi``, ``format_valid``, ``answer_valid``.

    A reshaping of summaries already computed (their intervals come from
    :func:`mmed.agents.scoring.accuracy_ci`), not a second accuracy table: the accuracy of
    prediction records grouped by fields is :func:`mmed.eval.metrics.accuracy_table`."""
    import pandas as pd

    rows = []
    for stage, sets in summary.items():
        for name, s in sets.items():
            rows.append({"stage": stage, "set": name, "n": s["n"], "accuracy": s["accuracy"]["acc"],
                         "lo": s["accuracy"]["lo"], "hi": s["accuracy"]["hi"],
                         "format_valid": s["format_valid"]["acc"], "answer_valid": s["answer_valid"]["acc"]})
    return pd.DataFrame(rows).set_index(["set", "stage"]).sort_index()


def per_specialty_table(summary: dict[str, dict[str, Any]], set_name: str) -> Any:
    """Per-specialty accuracy of every stage on one evaluation set: a long
    ``pandas.DataFrame`` (specialty, stage, n, accuracy, lo, hi); specialties without items
    have ``n = 0`` and NaN rates."""
    import pandas as pd

    nan = float("nan")
    rows = []
    for stage, sets in summary.items():
        for spec, b in sets[set_name]["by_specialty"].items():
            a = b["accuracy"] or {}
            rows.append({"specialty": spec, "stage": stage, "n": b["n"], "accuracy": a.get("acc", nan),
                         "lo": a.get("lo", nan), "hi": a.get("hi", nan)})
    return pd.DataFrame(rows)


def training_curves(log: Sequence[dict[str, Any]]) -> Any:
    """The per-step GRPO log as a ``pandas.DataFrame`` with the columns the notebook plots:
    ``step``, ``reward``, ``reward_std``, ``format_reward`` (mean R_format, 0..0.5),
    ``accuracy_reward`` (mean R_accuracy, 0..1), ``format_valid``, ``frac_reward_zero_std``,
    ``completion_length`` (mean tokens), ``entropy``.

    Raises:
        ValueError: an empty log, or records without the reward keys TRL logs.
    """
    import pandas as pd

    if not log:
        raise ValueError("training_curves: empty log")
    names = {
        "reward": "reward", "reward_std": "reward_std", "rewards/format_reward/mean": "format_reward",
        "rewards/triage_accuracy_reward/mean": "accuracy_reward", "format_valid": "format_valid",
        "frac_reward_zero_std": "frac_reward_zero_std", "completions/mean_length": "completion_length",
        "entropy": "entropy",
    }
    missing = [k for k in names if k not in log[0]]
    if missing:
        raise ValueError(f"training_curves: log records lack {missing}")
    return pd.DataFrame([{"step": r["step"], **{v: r[k] for k, v in names.items()}} for r in log])


def training_summary(log: Sequence[dict[str, Any]], window: int = 5) -> dict[str, Any]:
    """Means over the first and the last ``window`` GRPO steps (reward, its two terms,
    format-valid rate), the zero-spread fraction (mean and last window) and the mean
    completion length, from :func:`training_curves`."""
    df = training_curves(log)
    w = max(1, min(window, len(df) // 2 or 1))
    first, last = df.head(w), df.tail(w)
    out: dict[str, Any] = {"steps_logged": int(len(df)), "window": int(w)}
    for col in ("reward", "format_reward", "accuracy_reward", "format_valid", "frac_reward_zero_std"):
        out[f"{col}_first"] = float(first[col].mean())
        out[f"{col}_last"] = float(last[col].mean())
    out["frac_reward_zero_std_mean"] = float(df["frac_reward_zero_std"].mean())
    out["completion_length_mean"] = float(df["completion_length"].mean())
    return out


# ----------------------------------------------------------------------------------------
# before / after: the cold start against GRPO on the same items
# ----------------------------------------------------------------------------------------
#: evaluation sets of :func:`evaluate_stages`
EVAL_SETS: tuple[str, ...] = ("synthetic", "synthetic_image_only", "real")


def triage_sources(run: Run, profile: Profile) -> dict[str, Any]:
    """``{"sft": PolicySource, "grpo": PolicySource}``: the cold start (or the base model when
    the profile has none, labelled ``"base"``) and its GRPO adapters in ``triage_out_dir``.

    Raises:
        FileNotFoundError: the run holds no finished GRPO adapters there.
    """
    from ..agents.build import PolicySource, policy_source
    from ..rl.pretrain import base_model

    base_model(run, profile, "triage")
    before = policy_source(run, profile, "triage", "sft" if profile.cold_start.enabled else "base")
    final = triage_out_dir(run) / "final"
    if not (final / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{final} holds no GRPO adapters: run train_triage first")
    return {"sft": before, "grpo": PolicySource(before.base, str(final), "grpo")}


def majority_class(items: Sequence[dict[str, Any]]) -> str:
    """The most frequent ``specialty`` of ``items`` (ties: the first in
    :data:`~mmed.data.schema.SPECIALTIES` order): the one constant answer that is right most
    often on these items — the majority-class baseline. It is chosen on the evaluated items
    themselves, so no constant policy scores higher there.

    Raises:
        ValueError: no items.
    """
    if not items:
        raise ValueError("majority_class: no items")
    c = Counter(it["specialty"] for it in items)
    return max(SPECIALTIES, key=lambda s: (c.get(s, 0), -SPECIALTIES.index(s)))


def constant_records(items: Sequence[dict[str, Any]], answer: str) -> list[dict[str, Any]]:
    """:func:`evaluate_triage`-style records of a policy that answers ``answer`` on every
    item without generating (``raw`` is None; format- and answer-valid by definition).

    Raises:
        ValueError: ``answer`` is not one of the seven specialties.
    """
    if answer not in SPECIALTIES:
        raise ValueError(f"constant answer {answer!r} is not one of {SPECIALTIES}")
    return [{"id": str(it["id"]), "source": it.get("source") or it.get("dataset"), "specialty": it["specialty"],
             "raw": None, "parsed": answer, "format_valid": True, "answer_valid": True,
             "correct": it["specialty"] == answer, "image_only": True} for it in items]


def answer_counts(records: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How often each answer was given: ``{specialty: n}`` for the seven specialties (zeros
    included) and :data:`INVALID` for answers the parser rejected; the counts sum to
    ``len(records)``."""
    c = Counter(r["parsed"] if r["answer_valid"] else INVALID for r in records)
    return {k: int(c.get(k, 0)) for k in [*SPECIALTIES, INVALID]}


def evaluate_stages(
    profile: Profile,
    sources: dict[str, Any],
    synthetic_items: Sequence[dict[str, Any]],
    real_items: Sequence[dict[str, Any]] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Greedy triage by each policy of ``sources`` on the synthetic held-out items (as asked,
    and image-only: every question replaced by ``TRIAGE_QUESTION``) and on real items.

    Args:
        sources: ``{stage: PolicySource}``, e.g. :func:`triage_sources`; the gains compare
            ``"grpo"`` with ``"sft"`` when both are there.
        synthetic_items: synthetic test items (never trained on); empty → no synthetic sets.
        real_items: real images (:func:`load_real_triage`), or None/empty: no ``real`` set.
    Returns:
        ``{"records": {stage: {set: records}}, "summary": {stage: {set: triage_summary}},
        "gain": {set: paired_gain(grpo, sft)}, "answers": {stage: {set: answer_counts}},
        "majority": {set: {"answer", "summary", "vs_grpo"}}, "sets": [...]}`` with sets
        from :data:`EVAL_SETS`; ``majority`` is the majority-class baseline of each set
        (:func:`majority_class`, summarised like a policy) and ``vs_grpo`` the paired GRPO −
        baseline difference (when a ``"grpo"`` stage is there).
    """
    from ..agents.build import load_runner
    from ..data import TRIAGE_QUESTION

    sets: dict[str, tuple[Sequence[dict], str | None]] = {}
    if synthetic_items:  # none in a profile without a synthetic test split (paper)
        sets["synthetic"] = (synthetic_items, None)
        sets["synthetic_image_only"] = (synthetic_items, TRIAGE_QUESTION)
    if real_items:
        sets["real"] = (real_items, None)
    n_boot, conf = profile.eval.bootstrap_samples, profile.eval.confidence
    records: dict[str, dict[str, list]] = {}
    summary: dict[str, dict[str, Any]] = {}
    for stage, src in sources.items():
        runner = load_runner(profile, src, f"triage ({stage})")
        records[stage] = {name: evaluate_triage(runner, its, profile, question=q, seed=seed) for name, (its, q) in sets.items()}
        summary[stage] = {name: triage_summary(r, n_boot, conf, seed) for name, r in records[stage].items()}
    gain = {}
    if "grpo" in records and "sft" in records:
        gain = {name: paired_gain(records["grpo"][name], records["sft"][name], n_boot, conf, seed) for name in sets}
    majority = {}
    for name, (its, _) in sets.items():
        answer = majority_class(its)
        const = constant_records(its, answer)
        majority[name] = {"answer": answer, "summary": triage_summary(const, n_boot, conf, seed)}
        if "grpo" in records:
            majority[name]["vs_grpo"] = paired_gain(records["grpo"][name], const, n_boot, conf, seed)
    answers = {stage: {name: answer_counts(r) for name, r in sets_.items()} for stage, sets_ in records.items()}
    return {"records": records, "summary": summary, "gain": gain, "answers": answers, "majority": majority,
            "sets": list(sets)}


# ----------------------------------------------------------------------------------------
# downstream: the whole pipeline with different triage doctors
# ----------------------------------------------------------------------------------------
#: decisions compared by :func:`downstream_accuracy`
DOWNSTREAM_DECISIONS: tuple[str, ...] = ("attending", "majority_vote")


def downstream_accuracy(
    run: Run,
    profile: Profile,
    items: Any,
    seed: int = 0,
    sources: dict[str, Any] | None = None,
    decisions: Sequence[str] = DOWNSTREAM_DECISIONS,
    progress: bool = False,
) -> dict[str, Any]:
    """Whole-pipeline accuracy (triage → panel → decision) on ``items`` with each triage.

    The triage doctors are the policies of ``sources`` (default :func:`triage_sources`:
    ``grpo`` and ``sft``) plus ``"gold"`` (the labelled specialty). The panel and the
    attending (the run's latest) are built once and shared, so the systems differ only by
    their triage. ``decisions``: ``"attending"`` (the paper's pipeline) and
    ``"majority_vote"`` (the routed panel's vote, no attending: how the routing changes what
    the attending is given, even when the attending itself ignores the opinions).

    Returns:
        ``{"systems": {stage: {"triage_accuracy", "triage_invalid", "weights",
        "accuracy": {decision: {acc, lo, hi, n}}}}, "paired": {decision: {"<a>_vs_<b>":
        paired difference}}, "records": {stage: {decision: prediction records}}}``; pairs
        are grpo_vs_sft, grpo_vs_gold and sft_vs_gold (those whose systems exist).
    Raises:
        ValueError: an unknown decision.
    """
    from ..agents.build import load_runner, sampling_params
    from ..agents.pipeline import run_consultation, summarize
    from ..agents.triage import TriageDoctor

    bad = [d for d in decisions if d not in DOWNSTREAM_DECISIONS]
    if bad:
        raise ValueError(f"unknown decision(s) {bad}; use {DOWNSTREAM_DECISIONS}")
    sources = triage_sources(run, profile) if sources is None else sources
    _, panels, attending, info = build_agents(run, profile, seed, triage_mode="gold", need_attending="attending" in decisions)
    n_boot = profile.eval.bootstrap_samples
    systems: dict[str, Any] = {}
    records: dict[str, dict[str, list[dict]]] = {}
    for stage in [*sources, "gold"]:
        if stage == "gold":
            triage, weights = TriageDoctor(mode="gold"), {"mode": "gold"}
        else:
            triage = TriageDoctor(load_runner(profile, sources[stage], "triage"), "model", seed=seed,
                                  fallback=profile.triage.fallback,
                                  sampling=sampling_params(profile, seed), style=profile.sampling.prompt_style)
            weights = dataclasses.asdict(sources[stage]) | {"fallback": profile.triage.fallback}
        records[stage], acc = {}, {}
        for decision in decisions:
            recs = run_consultation(items, triage, panels, attending, decision=decision,
                                    tags={"profile": profile.name, "seed": seed, "triage_stage": stage}, progress=progress)
            m = summarize(recs, n_boot=n_boot, seed=seed)
            records[stage][decision], acc[decision] = recs, m["accuracy"]
        systems[stage] = {"accuracy": acc, "triage_accuracy": m["triage_accuracy"], "triage_invalid": m["triage_invalid"],
                          "weights": weights}
    paired: dict[str, dict[str, Any]] = {}
    for decision in decisions:
        paired[decision] = {}
        for a, b in (("grpo", "sft"), ("grpo", "gold"), ("sft", "gold")):
            if a in records and b in records:
                ca = [r["correct"] for r in records[a][decision] if r["answer_type"] == "closed"]
                cb = [r["correct"] for r in records[b][decision] if r["answer_type"] == "closed"]
                paired[decision][f"{a}_vs_{b}"] = paired_bootstrap_diff(ca, cb, n_boot, seed=seed)
    return {"systems": systems, "paired": paired, "records": records, "attending": info.get("attending")}


# ----------------------------------------------------------------------------------------
# the step: train, then measure (one entry point for `python -m mmed train-triage` and notebook 03)
# ----------------------------------------------------------------------------------------
#: the notebook whose checker (:mod:`mmed.checkers.nb03_triage_grpo`) reads
#: :attr:`TriageStepResult.metrics`
STEP_NOTEBOOK = "03_triage_grpo"
#: the file :func:`triage_step` writes into :func:`triage_out_dir`
EVAL_FILE = "eval.json"


def downstream_record(down: dict[str, Any], n_items: int, profile: Profile) -> dict[str, Any]:
    """The downstream block of the step's metrics: :func:`downstream_accuracy`'s ``systems``
    (without their ``weights``) and ``paired``, plus ``n_items`` (the synthetic test items
    run through the pipeline), ``greedy_triage`` (the profile samples at temperature 0, so
    the pipeline's triage accuracy is the evaluated one, up to fallbacks) and ``items``."""
    systems = {k: {kk: vv for kk, vv in v.items() if kk != "weights"} for k, v in down["systems"].items()}
    return {"systems": systems, "paired": down["paired"], "n_items": int(n_items),
            "greedy_triage": profile.sampling.temperature == 0, "items": "synthetic test"}


@dataclass
class TriageStepResult:
    """What :func:`triage_step` did and measured; the CLI prints :meth:`report`, notebook 03
    shows the parts and records :attr:`metrics`.

    Attributes:
        run / profile / seed: the run folder, the profile and the run's seed.
        training: the :class:`TriageTraining` (``training.result.log``: per-step GRPO log).
        real: the real triage images (:func:`real_triage`), or None without real data.
        real_eval: the real images evaluated (:func:`real_evaluation_items`: never an image
            the training saw), or None without real data.
        real_notes: what was read, held out or left out, in words.
        test_items: the synthetic test items evaluated (empty when the profile has no
            synthetic test split, ``data.synthetic.n_eval`` = 0).
        evaluation: :func:`evaluate_stages` of the cold start (``sft``) and GRPO (``grpo``).
        confusion: ``{set: confusion_matrix}`` of the GRPO triage on ``synthetic`` and (with
            real data) ``real`` (``pandas.DataFrame``, 7 × 8).
        downstream: :func:`downstream_accuracy` on ``test_items``, or None (not asked for,
            or no synthetic test items).
        seeds: the seeds of the replicate (the run's first), or None when skipped.
        seed_table: :func:`mmed.eval.replicates.triage_replicates`' table, or None when skipped.
        seed_note: why the replicate was skipped, or None.
        metrics: the dictionary :func:`mmed.checks.record_notebook_metrics` records for
            :data:`STEP_NOTEBOOK` (plain JSON types; keys as its checker documents).
        eval_file: ``<triage_out_dir>/eval.json``, written by the step.
    """

    run: Run
    profile: Profile
    seed: int
    training: TriageTraining
    real: RealTriageSet | None
    real_eval: list[dict[str, Any]] | None
    real_notes: list[str]
    test_items: list[dict[str, Any]]
    evaluation: dict[str, Any]
    confusion: dict[str, Any]
    downstream: dict[str, Any] | None
    seeds: list[int] | None
    seed_table: Any
    seed_note: str | None
    metrics: dict[str, Any]
    eval_file: Path

    @property
    def cold_start(self) -> dict[str, Any] | None:
        """The cold-start report (:func:`mmed.rl.cold_start.ensure_cold_start`), None without one."""
        return self.training.cold_start

    def report(self) -> dict[str, Any]:
        """The compact report ``python -m mmed train-triage`` prints: steps, time, the mean
        zero-spread fraction, accuracies with intervals (rounded to 4 places) per stage and
        set, the gains, the majority-class baselines with GRPO's margin, GRPO's answer
        counts and where the full record is (``eval_file``)."""
        m = self.metrics
        tr = self.training

        def acc(d: dict[str, Any] | None) -> dict[str, Any] | None:
            return None if d is None else {k: round(d[k], 4) for k in ("acc", "lo", "hi")} | {"n": d["n"]}

        return {
            "out_dir": str(tr.out_dir),
            "steps": tr.result.steps,
            "seconds": tr.result.seconds,
            "frac_reward_zero_std_mean": round(m["training"]["frac_reward_zero_std_mean"], 4),
            "accuracy": {stage: {name: acc(s["accuracy"]) for name, s in sets.items()} for stage, sets in m["eval"].items()},
            "gain": {name: {k: round(g[k], 4) for k in ("diff", "lo", "hi")} for name, g in m["gain"].items()},
            "majority_class": {name: {"answer": b["answer"], **acc(b["summary"]["accuracy"]),
                                      "grpo_minus_majority": {k: round(b["vs_grpo"][k], 4) for k in ("diff", "lo", "hi")}}
                               for name, b in m["majority"].items() if "vs_grpo" in b},
            "answers_grpo": m["answers"].get("grpo"),
            "downstream": None if self.downstream is None else {
                stage: {d: acc(a) for d, a in s["accuracy"].items()} for stage, s in m["downstream"]["systems"].items()},
            "seeds": self.seeds,
            "real_train": tr.real_train,
            "real_without_images": list(NO_REAL_IMAGES) if self.real is not None else None,
            "eval_file": str(self.eval_file),
        }


def triage_evaluation_sets(profile: Profile, real: RealTriageSet | None, tr: TriageTraining
                           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, list[str]]:
    """The items a trained triage is evaluated on (notebook 03, and each other seed in its
    worker): the synthetic test items (none when ``data.synthetic.n_eval`` is 0) and the
    real images :func:`mmed.rl.triage.real_evaluation_items` keeps for the training ``tr``
    (its held-out part after a training on real images, minus every image it saw).

    Returns:
        ``(synthetic items, real items or None, notes on the real ones)``.
    """
    from ..agents.pipeline import as_item_list

    real_eval, notes = real_evaluation_items(real, tr.real_train, tr.trained_image_hashes)
    test_items = as_item_list(synthetic_split(profile, "test")) if profile.data.synthetic.n_eval > 0 else []
    return test_items, real_eval, notes


def triage_step(
    run: Run,
    profile: Profile,
    seed: int | None = None,
    data_root: str | Path | None = None,
    real_train: bool | None = None,
    max_steps: int | None = None,
    seeds: Any = None,
    downstream: bool = True,
    callbacks: Sequence[Any] = (),
    log: Any = print,
) -> TriageStepResult:
    """The triage step, trained and measured: what ``python -m mmed train-triage`` and
    notebook 03 both call.

    1. :func:`train_triage` (the run's cold start is reused or made first; a finished
       training with the same settings is reused);
    2. the evaluation items: the synthetic ``test`` split (when ``data.synthetic.n_eval`` >
       0) and, with real data, :func:`real_evaluation_items` — the held-out part after a
       training on real images, else all of them, minus every image the training saw;
    3. :func:`evaluate_stages` of the cold start and GRPO on them, the GRPO confusion
       matrices, :func:`downstream_accuracy` on the synthetic test items (``downstream``);
    4. the seed replicate (:func:`mmed.eval.replicates.triage_replicates`): GRPO again with
       every other seed of ``seeds``, from this run's cold start (the run's own seed is the
       training above, not evaluated again); those trainings start in worker processes
       during step 1, once it has made the cold start and accepted the folder's settings
       (:func:`mmed.eval.replicates.start_triage_replicates`), so that they share the cores
       with it, and are evaluated here. Skipped, with ``seed_note`` saying why, when
       ``real_train`` differs from the profile's ``triage.real_train`` (the replicates
       follow the profile).
    5. writes ``<triage_out_dir>/eval.json``: :attr:`TriageStepResult.metrics` under
       ``"metrics"`` beside the summary keys the command always wrote (``profile``, ``seed``,
       ``real_train``, ``real_data`` (the data root or None), ``real_notes``,
       ``real_eval_part``, ``training`` (with the data description), ``summary``, ``gain``,
       ``answers``, ``majority``).

    Args:
        run: the run folder (``Run.open``).
        profile: the profile.
        seed: None → the profile's seed.
        data_root: real-data folder (None → ``../shared/data`` when present).
        real_train: None → the profile's ``triage.real_train``; see :func:`train_triage`.
        max_steps: None → ``triage_grpo.max_steps``; else an int >= 1.
        seeds: the replicate's seeds as :func:`mmed.eval.replicates.parse_seeds` takes them
            (None → the profile's ``eval.seeds``; a list of ints or its text form). ``[seed]``
            alone trains nothing more.
        downstream: run the whole pipeline with each triage (``metrics["downstream"]`` is
            None otherwise, which notebook 03's checker rejects).
        callbacks: extra ``transformers.TrainerCallback`` objects for the main training.
        log: progress messages of the replicate (None: silent).
    Returns:
        a :class:`TriageStepResult`; ``metrics`` holds ``seconds`` (this call's wall time),
        the one value that differs between two calls on a finished run.
    Raises:
        ValueError: the run's triage folder holds a training made with other settings;
            ``real_train=True`` without real data; invalid ``seeds`` or ``max_steps``.
        FileNotFoundError: an explicit ``data_root`` that does not exist.
    """
    import time

    from . import replicates as R

    t0 = time.perf_counter()
    seed = profile.seed if seed is None else int(seed)
    seed_list = R.parse_seeds(seeds, profile.eval.seeds, seed)  # bad seeds fail before any training
    root = resolve_data_root(data_root)
    real = real_triage(profile, root)
    seed_table, seed_note = None, None
    if real_train is not None and bool(real_train) != profile.triage.real_train:
        seed_note = (f"seed replicates follow the profile's triage.real_train ({profile.triage.real_train}): "
                     f"skipped with real_train={real_train}")
        seed_list = None
    started = None  # the other seeds' trainings; None: one seed only, or no replicate (seed_note)

    def start_replicates() -> None:
        # the other seeds train in worker processes while this process trains the run's own,
        # started once train_triage has made the cold start (the replicates copy it) and
        # accepted the folder's settings (a refused run starts nothing)
        nonlocal started
        if seed_list is not None and len(seed_list) > 1:
            started = R.start_triage_replicates(run, profile, seed_list, seed, max_steps, root, log=log)

    try:
        tr = train_triage(profile, run, seed=seed, data_root=root, real_train=real_train, max_steps=max_steps,
                          callbacks=callbacks, real=real, on_checked=start_replicates)
    except BaseException:
        if started is not None:
            started.cancel()
        raise
    test_items, real_eval, notes = triage_evaluation_sets(profile, real, tr)
    ev = evaluate_stages(profile, triage_sources(run, profile), test_items, real_eval, seed=seed)
    cms = {name: confusion_matrix(ev["records"]["grpo"][name]) for name in ev["sets"] if name != "synthetic_image_only"}
    down = downstream_accuracy(run, profile, test_items, seed=seed) if downstream and test_items else None
    if seed_list is not None:
        seed_table = R.triage_replicates(run, profile, seed_list, seed, test_items, real_eval, max_steps=max_steps,
                                         main_summary=ev["summary"]["grpo"], real=real, data_root=root, log=log,
                                         started=started)
    res, cs = tr.result, tr.cold_start
    train_sum = training_summary(res.log)
    metrics = {
        "profile": profile.name,
        "seed": seed,
        "real_data": real_eval is not None,
        "real_train": tr.real_train,
        "real": None if real is None else {
            "counts": real.counts(), "eval_part": "heldout" if tr.real_train else "all",
            "n_eval": len(real_eval), "split_seed": real.split_seed, "overlap": real.overlap(),
            "trained_eval_overlap": sum(bool(set(it["image_hashes"]) & tr.trained_image_hashes) for it in real_eval),
            "training": tr.data.get("real"), "without_images": list(NO_REAL_IMAGES), "notes": notes},
        "cold_start": None if cs is None else {"steps": cs["steps"], "after": cs["after"],
                                               "training_data": cs.get("training_data")},
        "training": {**train_sum, "steps": res.steps, "seconds": res.seconds,
                     "seconds_per_step": res.seconds / max(res.steps, 1), "n_train": tr.data["n"],
                     "image_only": tr.data["image_only"], "max_completion_length": profile.triage_grpo.max_completion_length,
                     "resumed_from": res.resumed_from},
        "eval": ev["summary"],
        "gain": ev["gain"],
        "majority": {name: {k: b[k] for k in ("answer", "summary", "vs_grpo") if k in b} for name, b in ev["majority"].items()},
        "answers": ev["answers"],
        "confusion": confusion_record(cms["synthetic"]) if "synthetic" in cms else None,
        "confusion_real": confusion_record(cms["real"]) if "real" in cms else None,
        "downstream": None if down is None else downstream_record(down, len(test_items), profile),
        "seed_replicates": None if seed_table is None else {"seeds": seed_list, "table": R.table_records(seed_table)},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    metrics = json.loads(json.dumps(metrics, default=str))  # plain JSON types, as the recorded file reads back
    body = {
        "profile": profile.name, "seed": seed, "real_train": tr.real_train,
        "real_data": str(root) if root is not None else None,
        "real_notes": notes,
        "real_eval_part": ("heldout" if tr.real_train else "all") if real is not None else None,
        "training": {**train_sum, "steps": res.steps, "seconds": res.seconds, "data": tr.data},
        "summary": metrics["eval"], "gain": metrics["gain"], "answers": metrics["answers"],
        "majority": metrics["majority"],
        "metrics": metrics,
    }
    eval_file = write_json_atomic(tr.out_dir / EVAL_FILE, body)
    return TriageStepResult(run, profile, seed, tr, real, real_eval, notes, test_items, ev, cms, down, seed_list,
                            seed_table, seed_note, metrics, Path(eval_file))


def run_train_triage(
    profile: Profile,
    run_dir: str | Path | None,
    seed: int | None = None,
    data_root: str | Path | None = None,
    real_train: bool | None = None,
    max_steps: int | None = None,
    seeds: Any = None,
    downstream: bool = True,
) -> dict[str, Any]:
    """``python -m mmed train-triage``: opens the run folder and calls :func:`triage_step`
    (the call notebook 03 makes, with the same arguments); returns its
    :meth:`TriageStepResult.report`. The full record is ``<triage_out_dir>/eval.json``;
    progress messages go to stderr (stdout carries the report).

    One difference of default: ``seeds=None`` here means the run's seed only (the command
    trains one policy; other seeds train when asked, e.g. ``--seeds "[0, 1, 2]"``), where
    notebook 03's ``seeds=None`` means the profile's ``eval.seeds``.

    Raises:
        as :func:`triage_step`.
    """
    import sys

    seed = profile.seed if seed is None else int(seed)
    run = Run.open(run_dir, profile=profile.name, seed=seed)
    return triage_step(run, profile, seed=seed, data_root=data_root, real_train=real_train, max_steps=max_steps,
                       seeds=[seed] if seeds is None else seeds, downstream=downstream,
                       log=lambda msg: print(msg, file=sys.stderr)).report()
