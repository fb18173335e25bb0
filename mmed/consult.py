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
