"""The consultation step of a run, from a profile: data → cold start (when the profile has
one) → triage → panel → attending → ``consult/predictions.jsonl`` + ``consult/metrics.json``.

``python -m mmed consult`` and notebook 02 call :func:`consult`; later steps (ablations,
test-time scaling) call :func:`build_agents` and :func:`load_items` with other settings.
Everything a step needs is reused from the run when already there (base model, cold
starts, trained adapters) and computed with the same library call otherwise.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import datasets

from .agents.attending import AttendingPhysician
from .agents.build import (
    base_model_for,
    describe_specialists,
    latest_stage_dir,
    load_runner,
    policy_source,
    sampling_params,
    specialist_factory,
)
from .agents.pipeline import (
    PanelBank,
    as_item_list,
    failed_calls_warning,
    run_consultation,
    summarize,
    write_predictions,
)
from .agents.triage import TriageDoctor
from .config import Profile, load_profile
from .runs import Run, resolve_data_root, resolve_path, write_json_atomic

#: dataset names readable from ``data_root/<name>`` (see :func:`mmed.data.load_benchmark`)
SYNTHETIC = "synthetic"
#: the splits of a profile's synthetic set (image-disjoint by construction)
SYNTHETIC_SPLITS = ("train", "validation", "test")


def parse_data_spec(spec: str, data_root: Path | None) -> tuple[str, str | None, str | None, str | None]:
    """A data spec → ``(name, source path, layout, split)``.

    Accepted: ``"synthetic"``, ``"<name>"``, ``"<name>:<layout>"`` or ``"<name>:<path>"``
    (a relative path resolves from the repository root, like ``--run-dir``; a Hub id
    stays as given),
    each optionally followed by ``"@<split>"`` (read by
    :func:`mmed.config.split_benchmark_spec`, e.g. ``"mmmu_med:hub@validation"``; split None
    when absent). A bare name or a layout reads ``data_root/<name>``.

    Raises:
        ValueError: a benchmark without a path when there is no data root; a spec ending in ``@``.
    """
    from .config import split_benchmark_spec
    from .data.loaders import LAYOUTS

    base, split = split_benchmark_spec(spec)
    if base == SYNTHETIC:
        return SYNTHETIC, None, None, split
    name, _, rest = base.partition(":")
    layout = None
    source = None
    if rest and rest in LAYOUTS.get(name, ()):
        layout = rest
    elif rest:
        from .data.rows import is_hub_id

        # a relative path resolves from the repository root, as --run-dir and --data-root do
        # (a Hub id such as "MMMU/MMMU" stays as given unless such a folder exists there)
        local = resolve_path(rest)
        source = rest if is_hub_id(rest) and not local.exists() else str(local)
    if source is None:
        if data_root is None:
            raise ValueError(f"data {spec!r}: no path given and no data root (pass --data-root or {name}:<path>)")
        source = str(data_root / name)
    return name, source, layout, split


def resolve_split(data: str, split: str | None) -> str:
    """The split a consultation of ``data`` reads: the spec's ``@<split>``, else ``split``,
    else ``"test"``.

    Raises:
        ValueError: the spec names one split and ``split`` another (naming both).
    """
    from .config import split_benchmark_spec

    _, own = split_benchmark_spec(data)
    if own is not None and split is not None and split != own:
        raise ValueError(f"data {data!r} names split {own!r} but split {split!r} was asked; give one of them")
    return own or split or "test"


def synthetic_split(profile: Profile, split: str, n: int | None = None, seed: int | None = None) -> datasets.Dataset:
    """The profile's synthetic items of one split (``train`` / ``validation`` / ``test``);
    splits are image-disjoint by construction (the split is part of the random key).

    Raises:
        ValueError: a split other than :data:`SYNTHETIC_SPLITS` (any other name would
            silently make a new set of items).
    """
    from .data.synthetic import make_synthetic

    if split not in SYNTHETIC_SPLITS:
        raise ValueError(f"synthetic: unknown split {split!r}; known: {', '.join(SYNTHETIC_SPLITS)}")

    s = profile.data.synthetic
    if n is None:
        n = s.n_train if split == "train" else s.n_eval
    return make_synthetic(n, s.seed if seed is None else seed, image_size=s.image_size, difficulty=s.difficulty, split=split)


def load_items(
    profile: Profile,
    data: str = SYNTHETIC,
    split: str | None = None,
    data_root: str | Path | None = None,
    include_open: bool = False,
    limit: int | None = None,
    on_error: str | None = None,
) -> datasets.Dataset:
    """Evaluation (or training) items of a profile: the synthetic set or a benchmark.

    ``data`` is a :func:`parse_data_spec` spec; the split read is :func:`resolve_split`
    (the spec's ``@<split>``, else ``split``, else ``test``). Closed questions only unless
    ``include_open`` (docs/architecture.md#closed-first); the first ``limit`` items when given (a
    deterministic slice, not a sample). :func:`load_items_with_report` also says what the
    loader filtered, skipped or kept open.

    ``on_error``: ``"skip"`` / ``"raise"`` a bad row; None = the profile's policy for this
    spec (:func:`mmed.config.row_error_policy`, use ``eval``: ``data.on_error_by_entry``,
    ``data.on_error``, else skip - counted in the report and warned about on stderr).

    Raises:
        ValueError: ``limit`` below 1 (it would evaluate nothing), an unknown dataset,
            layout or split (naming the spec), a spec split that contradicts ``split``, a
            split with no rows at all (naming the file), a bad ``on_error``.
        DataError: a bad row under the policy ``raise`` (names file, row, field).
    """
    return load_items_with_report(profile, data, split, data_root, include_open, limit, on_error)[0]


def load_items_with_report(
    profile: Profile,
    data: str = SYNTHETIC,
    split: str | None = None,
    data_root: str | Path | None = None,
    include_open: bool = False,
    limit: int | None = None,
    on_error: str | None = None,
) -> tuple[datasets.Dataset, dict[str, Any]]:
    """:func:`load_items` and its load report: the loader's
    :meth:`~mmed.data.rows.LoadReport.as_dict` (benchmarks; ``{"dataset": "synthetic"}``
    otherwise) plus ``open_dropped`` (items left out as not closed, among them closed
    questions kept open for want of options), ``limit_dropped``, ``n_returned`` and, for
    benchmarks, ``on_error`` (the row-error policy used) and ``on_error_source`` (where it
    was set: :func:`mmed.config.row_error_policy`)."""
    from .config import row_error_policy
    from .data import closed_only, load_benchmark

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive number of items (or None for all), got {limit!r}")

    split = resolve_split(data, split)
    root = resolve_data_root(data_root) if data_root is not None else resolve_data_root(None)
    name, source, layout, _ = parse_data_spec(data, root)
    if name == SYNTHETIC:
        ds = synthetic_split(profile, split)
        report: dict[str, Any] = {"dataset": SYNTHETIC, "split": split, "n_items": len(ds)}
    else:
        from .config import split_problem
        from .data.loaders import LAYOUTS

        problem = split_problem(name, layout, split) if name in LAYOUTS else None  # unknown names: the loader says
        if problem:
            raise ValueError(f"data {data!r}: {problem}")
        policy, policy_source = row_error_policy(profile.data, data, "eval", on_error)
        # a split with no rows at all raises in the loader, naming its file
        ds, rep = load_benchmark(name, source, split, layout=layout, include_open=include_open, on_error=policy,
                                 return_report=True)
        report = rep.as_dict() | {"on_error": policy, "on_error_source": policy_source}
    n = len(ds)
    if not include_open:
        ds = closed_only(ds)
    report["open_dropped"] = n - len(ds)
    n = len(ds)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    report["limit_dropped"] = n - len(ds)
    report["n_returned"] = len(ds)
    return ds, report


def dropped_rows_warning(report: dict[str, Any]) -> str | None:
    """One loud line when a load dropped bad rows (``on_error="skip"``), else None: how
    many of how many rows, the first reasons (file, row, field) and how to stop instead."""
    n = report.get("n_skipped") or 0
    if not n:
        return None
    reasons = [s["reason"] for s in report.get("skipped", [])[:3]]
    more = f" (+{n - len(reasons)} more)" if n > len(reasons) else ""
    return (f"WARNING: {report.get('dataset')} split {report.get('split')!r}: {n} bad row(s) of {report.get('n_rows')} "
            f"DROPPED (on_error=skip, {report.get('on_error_source', 'the caller')}): the results cover "
            f"{report.get('n_returned', report.get('n_items'))} items. {'; '.join(reasons)}{more}. "
            "Pass --on-error raise (or set data.on_error: raise) to stop on a bad row instead.")


def load_warning(report: dict[str, Any]) -> str | None:
    """One line when a load dropped or converted items (filtered, skipped, kept open,
    left out as open), else None."""
    parts = []
    if report.get("n_skipped"):
        parts.append(f"{report['n_skipped']} row(s) skipped as bad")
    # open questions left out by a closed-only load are expected; closed ones without options are said below
    filt = {k: v for k, v in (report.get("filtered") or {}).items()
            if k not in ("open question", "closed question without options")}
    if filt:
        parts.append("filtered " + ", ".join(f"{k}: {v}" for k, v in sorted(filt.items())))
    if report.get("closed_as_open"):
        parts.append(f"{report['closed_as_open']} closed question(s) had no options (kept open, so left out "
                     "of a closed-only run)")
    if report.get("open_dropped"):
        parts.append(f"{report['open_dropped']} open item(s) left out (closed questions only)")
    if not parts:
        return None
    rows = f"{report['n_rows']} rows -> " if "n_rows" in report else ""
    return (f"warning: {report.get('dataset')} split {report.get('split')!r}: {rows}{report.get('n_returned')} items; "
            + "; ".join(parts) + " (see load_report in metrics.json)")


def evaluation_sets(
    profile: Profile, data_root: str | Path | None = None, limit: int | None = None, include_open: bool = False,
    on_error: str | None = None, reports: dict[str, dict[str, Any]] | None = None,
) -> dict[str, datasets.Dataset]:
    """The profile's evaluation sets: the synthetic test split (when ``data.synthetic.n_eval``
    > 0) and, when a data root exists, every ``data.eval_benchmarks`` entry
    (``<name>[:<layout>][@<split>]`` read from ``<data_root>/<name>``, see
    :func:`mmed.config.parse_benchmark_spec`) on its own split, else ``data.eval_split``.

    Keys are dataset names (``synthetic``, ``vqa_rad``, ...). ``limit`` (None → the
    profile's ``data.eval_limit``) caps real benchmarks only. Bad rows follow each entry's
    row-error policy (``on_error`` overrides it; :func:`load_items`); an entry that drops
    rows prints a ``WARNING`` line (:func:`dropped_rows_warning`) on stderr. ``reports``,
    when given, receives every set's load report (:func:`load_items_with_report`) by key.

    Raises:
        ValueError: a bad entry (naming it); FileNotFoundError / DataError from the loaders.
    """
    from .config import parse_benchmark_spec

    out: dict[str, datasets.Dataset] = {}
    reports = {} if reports is None else reports
    if profile.data.synthetic.n_eval > 0:
        out[SYNTHETIC], reports[SYNTHETIC] = load_items_with_report(profile, SYNTHETIC, "test", include_open=include_open)
    root = resolve_data_root(data_root) if data_root is not None else resolve_data_root(None)
    if root is not None:
        cap = profile.data.eval_limit if limit is None else limit
        for spec in profile.data.eval_benchmarks:
            name, _, own_split = parse_benchmark_spec(spec)
            out[name], reports[name] = load_items_with_report(profile, spec, own_split or profile.data.eval_split,
                                                              data_root=root, include_open=include_open, limit=cap,
                                                              on_error=on_error)
            warn = dropped_rows_warning(reports[name])
            if warn:
                print(warn, file=sys.stderr, flush=True)
    return out


def panel_opinions_gold(profile: Profile, items: Sequence[dict], seed: int, run: Run | None = None) -> list[list[Any]]:
    """Opinions of the panel of each item's gold specialty (training strata, cold start)."""
    bank = PanelBank(specialist_factory(profile, seed, run=run), profile.specialists.panel_size)
    recs = run_consultation(items, TriageDoctor(mode="gold"), bank, decision="none", progress=False)
    return [r["panel"] for r in recs]


def without_panel(opinions: Sequence[Sequence[Any]], fraction: float, seed: int) -> list[list[Any]]:
    """``opinions`` with exactly ``round(fraction * n)`` of the ``n`` panels (a choice seeded
    by ``seed``) replaced by empty lists: the attending's cold-start items shown without
    opinions (``cold_start.no_panel_fraction``). The others are kept as given.

    Raises:
        ValueError: ``fraction`` outside [0, 1].
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"no-panel fraction must be in [0, 1], got {fraction}")
    n = len(opinions)
    drop = set(random.Random(f"no_panel:{seed}").sample(range(n), round(fraction * n)))
    return [[] if i in drop else list(ops) for i, ops in enumerate(opinions)]


def attending_cold_start_items(
    profile: Profile, synthetic: Sequence[dict], seed: int, data_root: str | Path | None = None,
) -> tuple[list[dict], dict[str, Any] | None]:
    """The attending's cold-start items: ``cold_start.n_items`` in all, of which at most
    ``cold_start.real_share`` are the real training pool's ``train`` items
    (:func:`mmed.rl.curriculum.attending_pool` of ``data.cold_start_benchmarks``, else
    ``data.train_benchmarks``: minus every evaluation image; a seeded sample when there are
    more) and the rest the first synthetic ones, in a seeded shuffled order. Without
    ``real_share``, those benchmarks or a data root: the synthetic items as given and None.

    Returns:
        ``(items, info)``; info = ``{"n", "n_synthetic", "n_real", "n_real_available",
        "benchmarks"}`` or None (synthetic only).
    """
    import dataclasses

    share = profile.cold_start.real_share
    benchmarks = list(profile.data.cold_start_benchmarks or profile.data.train_benchmarks)
    if share <= 0 or not benchmarks:
        return list(synthetic), None
    from .rl.curriculum import attending_pool

    pool = attending_pool(dataclasses.replace(profile, data=dataclasses.replace(profile.data, train_benchmarks=benchmarks)),
                          data_root, seed, log=lambda m: print(m, file=sys.stderr, flush=True))  # stdout: a command's JSON
    if pool is None:
        return list(synthetic), None
    n = profile.cold_start.n_items
    real = as_item_list(pool.train)
    k = min(len(real), int(share * n))
    real = random.Random(f"attending_cold_start_real:{seed}").sample(real, k)
    items = list(synthetic[: n - k]) + real
    random.Random(f"attending_cold_start_items:{seed}").shuffle(items)
    return items, {"n": len(items), "n_synthetic": len(items) - k, "n_real": k, "n_real_available": len(pool.train),
                   "benchmarks": benchmarks}


def ensure_cold_start(
    run: Run, profile: Profile, agent: str, seed: int, data_root: str | Path | None = None, real: Any = None,
    with_image_only: bool = True,
) -> dict[str, Any] | None:
    """Cold-start ``agent`` into ``runs/<id>/<agent>/sft`` unless the run already holds it.

    Uses the profile's synthetic ``train`` split (first ``cold_start.n_items``) and 64
    ``validation`` items to measure before/after. The triage doctor with
    ``triage.real_train`` also trains on the real triage images' train part when real data
    is present (:func:`mmed.rl.triage.cold_start_items`; ``real`` an already loaded
    :func:`mmed.rl.triage.load_real_triage` result, else read from ``data_root``, None →
    ``../shared/data`` when present); the report's ``training_data`` says what it trained
    on. The attending's items may mix in the real training pool
    (:func:`attending_cold_start_items`, ``cold_start.real_share``) and a share of them are
    shown without opinions (:func:`without_panel`, ``cold_start.no_panel_fraction``).
    For the attending it also trains, when ``cold_start.image_only`` is set and
    ``with_image_only``, the image-only reference ``attending/image_only``
    (:func:`ensure_image_only_attending`; :func:`ensure_cold_starts` trains it in a worker of
    its own). Returns the report of ``<agent>/sft``, or None when the profile disables the
    cold start.
    """
    from .rl.sft import cold_start, load_cold_start_report
    from .rl.tensorboard_logs import training_name

    if not profile.cold_start.enabled:
        return None
    out = run.path(agent, "sft")
    rep = load_cold_start_report(out)
    built = None  # the attending's (train, held) items, reused by the image-only reference
    if rep is None:
        base = base_model_for(run, profile, agent)
        train = as_item_list(synthetic_split(profile, "train", n=profile.cold_start.n_items))
        data_info = None
        if agent == "triage":
            from .rl.triage import cold_start_items

            train, data_info = cold_start_items(profile, train, seed, data_root=data_root, real=real)
        else:
            train, data_info = attending_cold_start_items(profile, train, seed, data_root)
        held = as_item_list(synthetic_split(profile, "validation", n=min(64, max(8, profile.data.synthetic.n_eval))))
        built = (train, held)
        tr_ops = panel_opinions_gold(profile, train, seed, run) if agent == "attending" else None
        if tr_ops is not None:
            tr_ops = without_panel(tr_ops, profile.cold_start.no_panel_fraction, seed)
        he_ops = panel_opinions_gold(profile, held, seed, run) if agent == "attending" else None
        with run.step(f"cold_start/{agent}"):
            rep = cold_start(agent, base, train, held, profile, out, tr_ops, he_ops, seed=seed,
                             tensorboard_dir=run.tensorboard_dir(training_name(f"cold_start_{agent}", seed)))
        if data_info is not None:
            rep = {**rep, "training_data": data_info}
            write_json_atomic(out / "cold_start.json", rep)
        run.add_artifact(f"{agent}/sft", out)
    if agent == "attending" and profile.cold_start.image_only and with_image_only:
        ensure_image_only_attending(run, profile, seed, data_root, items=built if agent == "attending" else None)
    return rep


def _cold_start_job(root: str, profile: Profile, agent: str, seed: int, data_root: str | None) -> None:
    """One cold start in a worker process (:func:`ensure_cold_starts`)."""
    run = Run.open(root)
    if agent == "attending_image_only":
        ensure_image_only_attending(run, profile, seed, data_root)
    else:
        ensure_cold_start(run, profile, agent, seed, data_root, with_image_only=False)


def ensure_cold_starts(
    run: Run, profile: Profile, seed: int, agents: Sequence[str] = ("triage", "attending"),
    data_root: str | Path | None = None, workers: int | None = None, log: Any = print,
) -> dict[str, dict[str, Any] | None]:
    """Every cold start of ``agents`` — and the attending's image-only reference when
    ``cold_start.image_only`` is set — made at once, in parallel worker processes
    (:func:`mmed.parallel.run_jobs`), unless the run already holds them: the trainings are
    independent (each reads the same base model and draws its own seeded items), so the
    results are those of :func:`ensure_cold_start` one after another. The base model is made
    (or read from its cache) first, here. Longest training first: the attending's, its
    image-only reference, then the triage's.

    Args:
        agents: a subset of ``("triage", "attending")``, or one of them as a string.
        data_root: real-data folder (None → ``../shared/data`` when present).
        workers: processes (None → the profile's ``workers``, else the usable cores); 1 trains
            here, one after another.
        log: the one line naming the jobs (None: silent).
    Returns:
        ``{agent: report}`` as :func:`ensure_cold_start` returns it.
    Raises:
        ValueError: an unknown agent.
        RuntimeError: a worker's training failed (the message names it).
    """
    from .parallel import Job, run_jobs
    from .rl.sft import load_cold_start_report

    agents = (agents,) if isinstance(agents, str) else tuple(agents)
    bad = [a for a in agents if a not in ("triage", "attending")]
    if bad:
        raise ValueError(f"unknown agent(s) {bad}: expected 'triage' and/or 'attending'")
    if not profile.cold_start.enabled:
        return {a: None for a in agents}
    for agent in agents:
        base_model_for(run, profile, agent)  # the pretrained base, made once, before the workers read it
    root = resolve_data_root(data_root)
    missing = []
    if "attending" in agents:
        missing.append(("attending", run.path("attending", "sft")))
        if profile.cold_start.image_only:
            missing.append(("attending_image_only", run.path("attending", "image_only")))
    if "triage" in agents:
        missing.append(("triage", run.path("triage", "sft")))
    labels = {"triage": "triage cold start", "attending": "attending cold start",
              "attending_image_only": "attending image-only reference"}
    jobs = [Job(labels[a], _cold_start_job, (str(run.root), profile, a, seed, None if root is None else str(root)))
            for a, out in missing if load_cold_start_report(out) is None]
    run_jobs(jobs, profile, workers, log=log, what="cold starts")
    return {a: ensure_cold_start(run, profile, a, seed, root) for a in agents}


def ensure_image_only_attending(
    run: Run, profile: Profile, seed: int, data_root: str | Path | None = None,
    items: tuple[list[dict], list[dict]] | None = None,
) -> dict[str, Any]:
    """The attending's image-only reference in ``runs/<id>/attending/image_only`` (trained
    unless the run holds it): :func:`mmed.rl.sft.cold_start` of the base model on the
    attending's cold-start items (:func:`attending_cold_start_items`: synthetic ``train``
    items, plus the real share when the profile has one) with *empty* panels (prompt "(no
    specialist opinions)", reasoning ``Panel: none.``) and gold targets — the "image only" row of the
    ablation table: what the attending can read from the image alone. ``items``: the
    ``(train, held-out)`` items the attending's cold start just built for ``seed`` (saves
    reading the real pool and drawing the synthetic set again); None builds them. Returns its report."""
    import dataclasses

    from .rl.sft import cold_start, load_cold_start_report
    from .rl.tensorboard_logs import training_name

    out = run.path("attending", "image_only")
    rep = load_cold_start_report(out)
    if rep is not None:
        return rep
    prof = dataclasses.replace(profile, cold_start=dataclasses.replace(profile.cold_start, target="gold", label_fraction=1.0))
    base = base_model_for(run, profile, "attending")
    if items is None:
        train, _ = attending_cold_start_items(
            profile, as_item_list(synthetic_split(profile, "train", n=profile.cold_start.n_items)), seed, data_root)
        held = as_item_list(synthetic_split(profile, "validation", n=min(64, max(8, profile.data.synthetic.n_eval))))
    else:
        train, held = items
    with run.step("cold_start/attending_image_only"):
        rep = cold_start("attending", base, train, held, prof, out, [[] for _ in train], [[] for _ in held], seed=seed,
                         tensorboard_dir=run.tensorboard_dir(training_name("cold_start_attending_image_only", seed)))
    run.add_artifact("attending/image_only", out)
    return rep


def build_agents(
    run: Run,
    profile: Profile,
    seed: int,
    triage_mode: str = "model",
    fixed_specialty: str | None = None,
    triage_stage: str = "latest",
    attending_stage: str = "latest",
    variant: str | None = None,
    need_attending: bool = True,
) -> tuple[TriageDoctor, PanelBank, AttendingPhysician | None, dict[str, Any]]:
    """Triage doctor, panel bank and attending for a run, with what they are made of.

    Cold starts are run first when the profile has them and the run lacks them. In
    ``"model"`` mode an invalid triage answer goes to ``profile.triage.fallback``.
    Returns ``(triage, panels, attending, info)`` where ``info`` names the weights used
    (and, in ``"model"`` mode, the triage fallback).
    """
    info: dict[str, Any] = {"specialists": describe_specialists(profile)}
    style = profile.sampling.prompt_style
    sp = sampling_params(profile, seed)
    if triage_mode == "model":
        ensure_cold_start(run, profile, "triage", seed)
        src = policy_source(run, profile, "triage", triage_stage)
        info["triage"] = asdict(src) | {"fallback": profile.triage.fallback}
        triage = TriageDoctor(load_runner(profile, src, "triage"), "model", fallback=profile.triage.fallback, seed=seed,
                              sampling=sp, style=style)
    else:
        info["triage"] = {"mode": triage_mode, "fixed_specialty": fixed_specialty}
        triage = TriageDoctor(mode=triage_mode, fixed_specialty=fixed_specialty, seed=seed)
    attending = None
    if need_attending:
        ensure_cold_start(run, profile, "attending", seed)
        src = policy_source(run, profile, "attending", attending_stage, variant=variant)
        info["attending"] = asdict(src)
        attending = AttendingPhysician(load_runner(profile, src, "attending"), sp, style=style)
    panels = PanelBank(specialist_factory(profile, seed, run=run), profile.specialists.panel_size)
    return triage, panels, attending, info


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

    ``data`` is a :func:`parse_data_spec` spec; the split is :func:`resolve_split` (the
    spec's ``@<split>``, else ``split``, else ``test``). Writes
    ``<run>/consult/<out_name>/predictions.jsonl`` and ``metrics.json`` (out_name defaults
    to ``<dataset>_<split>``) and records the step in the manifest.

    The run manifest records ``triage_fallback`` (the profile's ``triage.fallback``).

    ``on_error``: ``"skip"`` / ``"raise"`` a bad row of the split; None = the profile's
    policy (:func:`mmed.config.row_error_policy`, use ``eval``; default skip). Dropped rows
    are said loudly: a ``WARNING`` line on stderr before and after the run
    (:func:`dropped_rows_warning`), and in the metrics.

    Returns:
        ``(records, metrics)``; metrics = :func:`mmed.agents.pipeline.summarize` plus the
        weights used (``weights.triage.fallback`` in model mode), timing, the dataset spec,
        ``load_report`` (:func:`load_items_with_report`: rows filtered, skipped, kept open,
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
    from .config import split_benchmark_spec

    name = out_name or f"{split_benchmark_spec(data)[0].split(':')[0]}_{split}"
    out = run.path("consult", name, mkdir=True)
    t0 = time.perf_counter()
    with run.step(f"consult/{name}", data=data, split=split, n_items=len(items)):
        triage, panels, attending, info = build_agents(
            run, prof, seed, triage_mode, fixed_specialty, triage_stage=triage_stage, attending_stage=attending_stage, variant=variant,
            need_attending=decision in ("attending", "attending_alone"),
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
