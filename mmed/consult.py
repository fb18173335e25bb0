"""The consultation step of a run, from a profile: data → cold start (when the profile has
one) → triage → panel → attending → ``consult/predictions.jsonl`` + ``consult/metrics.json``.

``python -m mmed consult`` and notebook 02 call :func:`consult`. What it is made of lives
in the layers below (docs/architecture.md#layers): the items in :mod:`mmed.data.sets` (a
data spec, :mod:`mmed.data.specs`), the agents and their cold starts in
:mod:`mmed.rl.cold_start` (:func:`~mmed.rl.cold_start.build_agents`), the consultation in
:mod:`mmed.agents.pipeline`. Everything a step needs is reused from the run when already
there (base model, cold starts, trained adapters) and computed with the same library call
otherwise.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any

from .agents.build import describe_specialists, latest_stage_dir
from .agents.pipeline import failed_calls_warning, run_consultation, summarize, write_predictions
from .config import Profile, load_profile
from .data.sets import dropped_rows_warning, load_items_with_report, load_warning
from .data.specs import SYNTHETIC, resolve_split, split_benchmark_spec
from .rl.cold_start import build_agents
from .runs import Run, write_json_atomic


def consult(
    profile: str | Profile = "demo",
    run_dir: str | Path | None = None,
    data: str = SYNTHETIC,
    split: str | None = None,
    data_root: str | Path | None = None,
    limit: int | None = None,
    include_open: bool = False,
    triage_mode: str = "model",
    fixed_specialty: str | None = None,
    decision: str = "attending",
    seed: int | None = None,
    variant: str | None = None,
    attending_stage: str = "latest",
    out_name: str | None = None,
    progress: bool = True,
    triage_stage: str = "latest",
    on_error: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the consultation on one dataset split and write its files.

    ``data`` is a :func:`mmed.data.specs.parse_data_spec` spec; the split is :func:`mmed.data.specs.resolve_split` (the
    spec's ``@<split>``, else ``split``, else ``test``). Writes
    ``<run>/consult/<out_name>/predictions.jsonl`` and ``metrics.json`` (out_name defaults
    to ``<dataset>_<split>``) and records the step in the manifest.

    The run manifest records ``triage_fallback`` (the profile's ``triage.fallback``).

    ``on_error``: ``"skip"`` / ``"raise"`` a bad row of the split; None = the profile's
    policy (:func:`mmed.data.specs.row_error_policy`, use ``eval``; default skip). Dropped rows
    are said loudly: a ``WARNING`` line on stderr before and after the run
    (:func:`mmed.data.sets.dropped_rows_warning`), and in the metrics.

    Returns:
        ``(records, metrics)``; metrics = :func:`mmed.agents.pipeline.summarize` plus the
        weights used (``weights.triage.fallback`` in model mode), timing, the dataset spec,
        ``load_report`` (:func:`mmed.data.sets.load_items_with_report`: rows filtered, skipped, kept open,
        left out; the row-error policy), ``dropped_bad_rows`` (rows of the split dropped as
        bad, 0 when none), ``warnings`` (the ``WARNING`` line, when rows were dropped) and,
        for cached backends (``local``, ``openai``), ``specialist_calls``.
    """
    prof = load_profile(profile) if isinstance(profile, str) else profile
    seed = prof.seed if seed is None else seed
    if variant is not None and variant not in prof.variants:
        raise ValueError(f"unknown variant {variant!r} for profile {prof.name!r}; known: {sorted(prof.variants)}")
    split = resolve_split(data, split)
    items, load_report = load_items_with_report(prof, data, split, data_root, include_open, limit, on_error)  # bad data fails first
    warn = load_warning(load_report)
    if warn:
        print(warn, file=sys.stderr)
    dropped_warn = dropped_rows_warning(load_report)
    if dropped_warn:
        print(dropped_warn, file=sys.stderr, flush=True)
    run = Run.open(run_dir, profile=prof.name, seed=seed)
    run.update(triage_fallback=prof.triage.fallback)
    if prof.specialists.backend == "simulated":
        run.update(simulated_panel=describe_specialists(prof)["simulated"])
    if variant is not None and attending_stage == "latest" and decision in ("attending", "attending_alone") \
            and latest_stage_dir(run, variant) is None:  # "latest" would silently fall back to the cold start
        raise FileNotFoundError(f"variant {variant!r} has no trained stages in {run.path('attending', variant)} "
                                f"(train it first: python -m mmed train-attending --variant {variant})")
    name = out_name or f"{split_benchmark_spec(data)[0].split(':')[0]}_{split}"
    out = run.path("consult", name, mkdir=True)
    t0 = time.perf_counter()
    with run.step(f"consult/{name}", data=data, split=split, n_items=len(items)):
        triage, panels, attending, info = build_agents(
            run, prof, seed, triage_mode, fixed_specialty, triage_stage=triage_stage, attending_stage=attending_stage, variant=variant,
            need_attending=decision in ("attending", "attending_alone"), data_root=data_root,
        )
        records = run_consultation(
            items, triage, panels, attending, decision=decision,
            max_concurrency=prof.specialists.openai.max_concurrency,
            tags={"profile": prof.name, "variant": variant, "seed": seed}, progress=progress,
        )
        metrics = summarize(records, n_boot=prof.eval.bootstrap_samples, seed=seed)
        if hasattr(panels.factory, "stats"):  # API and local specialists: calls, cache hits, errors, tokens, cost
            metrics["specialist_calls"] = panels.factory.stats()
        run.update(specialists=panels.describe())
        metrics.update(
            data=data, split=split, decision=decision, weights=info, load_report=load_report, seconds=round(time.perf_counter() - t0, 1),
            items_per_s=round(len(records) / max(1e-9, time.perf_counter() - t0), 2),
            dropped_bad_rows=int(load_report.get("n_skipped") or 0),
        )
        if dropped_warn:
            metrics["warnings"] = [dropped_warn]
        warn = failed_calls_warning(metrics)
        if warn:
            print(warn, file=sys.stderr)
        write_predictions(records, out / "predictions.jsonl")
        write_json_atomic(out / "metrics.json", metrics)
    run.add_artifact(f"consult/{name}", out)
    return records, metrics


#: notebook 02's systems on the synthetic test split: name -> :func:`consult` keywords. The
#: baselines of the paper's tables: the attending alone (no specialists), a static
#: MDAgents-style pipeline (one fixed specialty's panel for every case, majority vote, no
#: triage, no attending) and the oracle (the gold specialty's panel, majority vote: perfect
#: routing read from the label, not a system one could run)
SYNTHETIC_SYSTEMS: dict[str, dict[str, Any]] = {
    "full pipeline": {},
    "attending alone": {"decision": "attending_alone", "out_name": "synthetic_test_attending_alone"},
    "static MDAgents-style (Radiologist panel, majority vote)": {
        "triage_mode": "fixed", "fixed_specialty": "Radiologist", "decision": "majority_vote",
        "out_name": "synthetic_test_majority_radiologist"},
    "oracle: gold-specialty panel, majority vote": {
        "triage_mode": "gold", "decision": "majority_vote", "out_name": "synthetic_test_majority"},
}
#: the same on VQA-RAD's MEVF test split (all radiology: the fixed Radiologist panel is the
#: gold specialty's, so no separate oracle)
VQA_RAD_SYSTEMS: dict[str, dict[str, Any]] = {
    "full pipeline": {},
    "attending alone": {"decision": "attending_alone", "out_name": "vqa_rad_test_attending_alone"},
    "static MDAgents-style (Radiologist panel, majority vote)": {
        "triage_mode": "fixed", "fixed_specialty": "Radiologist", "decision": "majority_vote",
        "out_name": "vqa_rad_test_majority"},
}
#: the real benchmark of the step (its closed questions)
VQA_RAD_SPEC = "vqa_rad:mevf"
#: the keys of each system's metrics the step records
SYSTEM_METRIC_KEYS = ("accuracy", "strata", "items", "attending_invalid", "triage_fallbacks", "answers")


@dataclass
class ConsultationStepResult:
    """What :func:`consultation_step` made and measured (notebook 02 shows it; the command
    prints a summary of ``metrics``)."""

    #: ``{"triage" | "attending": cold-start report}`` (:func:`mmed.rl.cold_start.ensure_cold_starts`)
    cold_starts: dict[str, dict[str, Any] | None]
    #: ``{system: (records, metrics)}`` of :func:`consult` on the synthetic test split, :data:`SYNTHETIC_SYSTEMS` order
    synthetic: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]]
    #: the same on VQA-RAD (:data:`VQA_RAD_SYSTEMS`), or None without real data
    vqa_rad: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] | None
    #: the pre-trained base's report (:func:`mmed.rl.pretrain.load_pretrain_report`), None
    #: where the profile's base is a pretrained VLM
    pretrain: dict[str, Any] | None
    #: what notebook 02 records (:func:`consultation_step_metrics`), also written to
    #: ``consult/consultation_step.json``
    metrics: dict[str, Any]

    def pretrain_table(self) -> Any:
        """The base's answer-letter accuracy per question type, before / after pre-training,
        next to chance (``pandas.DataFrame``: when, question type, n, accuracy, chance);
        None without pre-training."""
        import pandas as pd

        if not self.pretrain:
            return None
        return pd.DataFrame([{"when": w, "question type": t, "n": v["n"], "accuracy": v["accuracy"], "chance": v["chance"]}
                             for w in ("before", "after")
                             for t, v in {**self.pretrain[w]["by_type"], "(all)": self.pretrain[w]}.items()])

    def cold_start_table(self) -> Any:
        """Each cold start's held-out items before / after (``pandas.DataFrame``: agent, when,
        n, format_valid, answer_valid, accuracy)."""
        import pandas as pd

        return pd.DataFrame([{"agent": a, "when": w, **{k: rep[w][k] for k in ("n", "format_valid", "answer_valid", "accuracy")}}
                             for a, rep in self.cold_starts.items() if rep is not None for w in ("before", "after")])

    def system_table(self, dataset: str = "synthetic") -> Any:
        """Accuracy of every system on ``dataset`` (``"synthetic"`` or ``"vqa_rad"``) with its
        95% bootstrap interval, invalid attending answers and triage fallbacks
        (``pandas.DataFrame``; empty for ``"vqa_rad"`` without real data).

        Raises:
            ValueError: another ``dataset``.
        """
        import pandas as pd

        if dataset not in ("synthetic", "vqa_rad"):
            raise ValueError(f"dataset must be 'synthetic' or 'vqa_rad', got {dataset!r}")
        runs = getattr(self, dataset) or {}
        return pd.DataFrame([{"system": name, "n": m["accuracy"]["n"], "accuracy": m["accuracy"]["acc"],
                              "95% CI": f"[{m['accuracy']['lo']:.3f}, {m['accuracy']['hi']:.3f}]",
                              "attending invalid": m.get("attending_invalid"), "triage fallbacks": m["triage_fallbacks"]}
                             for name, (_, m) in runs.items()])


def case_text(record: dict[str, Any]) -> str:
    """One consultation record (a line of ``predictions.jsonl``) as a few lines of text: the
    stratum, question, options and gold answer; the triage's choice against the label; each
    specialist's answer; the attending's raw completion (``None`` for a majority vote, which
    has no attending) and whether it was right (``None`` for an open question, scored apart).

    Returns:
        ``3 + len(record["panel"])`` lines joined by newlines.
    Raises:
        KeyError: a record without ``stratum``, ``triage``, ``panel`` or ``attending``.
    """
    lines = [f"[{record['stratum']}] {record['id']}  Q: {record['question']}  options: {record['options']}  "
             f"gold: {record['answer']}",
             f"   triage -> {record['triage']['specialty']} (label {record['specialty']}, valid={record['triage']['valid']})"]
    for op in record["panel"]:
        lines.append(f"   {op['specialist_id']:<20} {record['options'][op['parsed']] if op['valid'] else 'invalid'}")
    attending = record["attending"] or {}
    lines.append(f"   attending: {attending.get('raw')!r} -> correct={record.get('correct')}")
    return "\n".join(lines)


def system_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The part of one :func:`consult` metrics dictionary the step records
    (:data:`SYSTEM_METRIC_KEYS`; ``attending_invalid`` 0 for a majority vote, which has none)."""
    return {k: (metrics.get(k, 0) if k == "attending_invalid" else metrics.get(k)) for k in SYSTEM_METRIC_KEYS}


def consultation_step_metrics(
    cold_starts: dict[str, dict[str, Any] | None], synthetic: dict[str, tuple[list, dict]],
    vqa_rad: dict[str, tuple[list, dict]] | None, pretrain: dict[str, Any] | None,
) -> dict[str, Any]:
    """Notebook 02's metrics (what ``mmed.checkers.nb02_consultation`` reads):
    ``real_data``, ``pretrain`` (before / after: ``n``, ``accuracy``, ``chance``, ``by_type``;
    only with a pre-trained tiny base), ``cold_start`` (per agent: ``before``, ``after``,
    ``steps``), ``synthetic`` and ``vqa_rad`` (per system: :func:`system_metrics`; the latter only with real data)."""
    out: dict[str, Any] = {"real_data": vqa_rad is not None}
    if pretrain:
        out["pretrain"] = {w: {k: pretrain[w][k] for k in ("n", "accuracy", "chance", "by_type")} for w in ("before", "after")}
    out["cold_start"] = {a: {"before": r["before"], "after": r["after"], "steps": r["steps"]}
                         for a, r in cold_starts.items() if r is not None}
    out["synthetic"] = {k: system_metrics(m) for k, (_, m) in synthetic.items()}
    if vqa_rad is not None:
        out["vqa_rad"] = {k: system_metrics(m) for k, (_, m) in vqa_rad.items()}
    return out


def consultation_step(
    run: Run, profile: Profile, seed: int, data_root: str | Path | None = None, limit: int | None = None,
    local_server: bool = False, log: Any = print,
) -> ConsultationStepResult:
    """Notebook 02's step, the method before any reinforcement learning (paper §3): the
    pre-trained base (tiny models), the cold starts of the triage doctor and the attending
    (:func:`mmed.rl.cold_start.ensure_cold_starts`, and the image-only references), then
    :func:`consult` of every system of :data:`SYNTHETIC_SYSTEMS` on the synthetic test split
    and, with real data, of :data:`VQA_RAD_SYSTEMS` on VQA-RAD's MEVF test split. Everything
    the run already holds is reused. Writes ``consult/consultation_step.json`` (the metrics).
    ``python -m mmed consult-step`` and notebook 02 call it.

    Args:
        data_root: real-data folder (None → ``../shared/data`` when present,
            :func:`mmed.runs.resolve_data_root`); without one, synthetic only.
        limit: at most this many VQA-RAD items (None → ``data.eval_limit``).
        local_server: also check the specialists' OpenAI-compatible path against a local
            server (:func:`mmed.agents.serve_local.cached_panel_check`; metrics key ``local_server``).
        log: the cold starts' one line and the local server's lines (None: silent).
    Returns:
        a :class:`ConsultationStepResult`.
    Raises:
        ValueError: ``limit`` < 1 (before anything runs).
        FileNotFoundError: an explicit ``data_root`` that does not exist.
        RuntimeError: a cold start failed in its worker (the message names it).
    """
    from .rl.cold_start import ensure_cold_starts
    from .rl.pretrain import ensure_base_model, load_pretrain_report
    from .runs import resolve_data_root

    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise ValueError(f"--limit must be a positive number of items, got {limit}")
    t0 = time.perf_counter()
    root = resolve_data_root(data_root)  # an explicit folder that does not exist fails here, before any training
    pretrain = load_pretrain_report(ensure_base_model(run, profile)) if profile.models.attending == "tiny" else None

    def systems(_cold: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
        """Every system on the test splits (and the local server's check): run as soon as the
        agents' cold starts are done, while the image-only references may still train (no
        consultation reads them). The local server is launched first: its start (~10 s of
        one core) overlaps the consultations."""
        from .agents.serve_local import cached_panel_check, panel_check_server

        served = panel_check_server(run).launch() if local_server else None
        try:
            synthetic = {name: consult(profile, run.root, data=SYNTHETIC, split="test", seed=seed, progress=False, **kw)
                         for name, kw in SYNTHETIC_SYSTEMS.items()}
            vqa_rad = None
            if root is not None:
                lim = limit if limit is not None else profile.data.eval_limit
                vqa_rad = {name: consult(profile, run.root, data=VQA_RAD_SPEC, split="test", data_root=root, limit=lim,
                                         seed=seed, progress=False, **kw)
                           for name, kw in VQA_RAD_SYSTEMS.items()}
            server = cached_panel_check(run, profile, seed, log=log, server=served) if served is not None else None
        finally:
            if served is not None:
                served.close()  # the check stops it too; close() twice is safe
        return synthetic, vqa_rad, server

    cold, (synthetic, vqa_rad, server) = ensure_cold_starts(run, profile, seed, ("triage", "attending"), data_root=root,
                                                            log=log, meanwhile=systems)
    metrics = consultation_step_metrics(cold, synthetic, vqa_rad, pretrain)
    metrics["seed"] = seed
    if server is not None:
        metrics["local_server"] = server
    metrics["seconds"] = round(time.perf_counter() - t0, 1)
    write_json_atomic(run.path("consult", mkdir=True) / "consultation_step.json", metrics)
    return ConsultationStepResult(cold, synthetic, vqa_rad, pretrain, metrics)
