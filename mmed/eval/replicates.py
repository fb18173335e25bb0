"""Seed replicates of the trained agents: the same training with other seeds.

Intervals elsewhere in this package are bootstrap intervals over *items* for one trained
model; they say nothing about how much a result moves when training is repeated. Issues 5–7
ask for seeds "where the budget allows". A replicate here re-runs GRPO (triage) or the
curriculum (attending) with another seed in its own run folder,
``runs/<id>/seeds/seed_<k>/`` (a :class:`mmed.runs.Run` with its own manifest), and the
tables put every seed side by side, plus the mean and the sample standard deviation over
seeds.

What a seed changes: TRL's seed (LoRA initialisation, sampling of the rollouts, data order)
and the simulated panel's draws (so the stratified training and held-out items differ too).
What it does not: the cold start. The main run's cold-started models are copied into the
replicate (when the main run holds them), so the spread is that of the RL stage alone — the
cold start is the same starting point for every seed, as it is for every variant of a run.
A finished replicate is reused on the next call (same rules as any run folder).
"""

from __future__ import annotations

import os
import shutil
import statistics
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..agents.scoring import paired_bootstrap_diff
from ..agents.stratify import panel_answers
from ..config import STRATA, Profile
from ..runs import Run
from ..rl.cold_start import ensure_cold_start
from .curriculum import curriculum_report, report_metrics

#: cold-start folders copied from the main run into a replicate
COLD_START_DIRS: tuple[tuple[str, ...], ...] = (
    ("models",), ("triage", "sft"), ("attending", "sft"), ("attending", "image_only"), ("attending", "image_only_real"))


def replicate_run(run: Run, profile: Profile, seed: int) -> Run:
    """The run folder of seed ``seed``'s replicate, ``<run>/seeds/seed_<seed>``, with the main
    run's cold starts (and offline base model) copied in when it holds them and the
    replicate does not. Each is copied to a temporary folder renamed into place, so two
    notebooks that open the same replicate at once (03 and 04, ``notebooks_at_once``) never
    see a half-copied folder or fail on each other's copy.

    Raises:
        ValueError: ``seed`` is not an int ≥ 0.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    sub = Run.open(run.path("seeds", f"seed_{seed}"), profile=profile.name, seed=seed)
    for parts in COLD_START_DIRS:
        src, dst = run.path(*parts), sub.path(*parts)
        if src.is_dir() and not dst.exists():
            tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}.{threading.get_ident()}")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(src, tmp)
            try:
                tmp.rename(dst)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
                if not dst.is_dir():  # not the other notebook's copy landing first: a real error
                    raise
    return sub


#: the largest seed numpy's RandomState (and hence the trainers) accept: 2**32 - 1
SEED_MAX = 2**32 - 1


def parse_seeds(seeds: Any, default: Sequence[int], main_seed: int) -> list[int]:
    """The seeds of a replicate, as notebooks take them: ``None`` → ``default`` (the profile's
    ``eval.seeds``); a list of ints; or its text form (papermill ``-p seeds "[0, 3]"`` passes
    a string). The run's own seed always comes first (added when missing): the replicate
    table reports it next to the others.

    Raises:
        ValueError: not a list of distinct ints in [0, 2**32 - 1] (numpy's and torch's seed
            range; the message names the value).
    """
    import ast

    raw = default if seeds is None else seeds
    if isinstance(raw, str):
        try:
            raw = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"seeds: cannot read {seeds!r} as a list of ints ({e})") from None
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, (list, tuple)) or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= SEED_MAX for x in raw):
        raise ValueError(f"seeds must be a list of ints in [0, {SEED_MAX}], got {seeds!r}")
    if len(set(raw)) != len(raw):
        raise ValueError(f"seeds has duplicates: {list(raw)}")
    return [main_seed, *[x for x in raw if x != main_seed]]


def _runs_by_seed(run: Run, profile: Profile, main_seed: int, seeds: Sequence[int]) -> list[tuple[int, Run]]:
    if not seeds:
        raise ValueError("seeds is empty")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds has duplicates: {list(seeds)}")
    return [(s, run if s == main_seed else replicate_run(run, profile, s)) for s in seeds]


def with_variant(profile: Profile, variant: str | None) -> Profile:
    """``profile`` (a base profile, loaded without a variant) with ``variant`` applied — as
    :func:`mmed.config.load_profile` would, but from the loaded object (so a profile given as
    an object, e.g. with overrides, keeps them).

    Raises:
        ValueError: ``profile`` already carries another variant.
        mmed.config.ProfileError: an unknown variant.
    """
    from ..config import profile_from_dict

    if profile.variant is not None:
        if profile.variant == variant:
            return profile
        raise ValueError(f"profile {profile.name!r} already carries variant {profile.variant!r}; pass the base profile")
    if variant is None:
        return profile
    raw = {k: v for k, v in profile.to_dict().items() if k != "variant"}
    return profile_from_dict(raw, f"profile {profile.name!r}", variant=variant)


def spread(values: Sequence[float]) -> dict[str, Any]:
    """``{"n", "mean", "sd", "min", "max"}`` of per-seed values (``sd`` is the sample standard
    deviation, None with fewer than two values; NaN/None values are left out and not
    counted in ``n``)."""
    xs = [float(v) for v in values if v is not None and v == v]
    return {"n": len(xs), "mean": statistics.fmean(xs) if xs else None,
            "sd": statistics.stdev(xs) if len(xs) > 1 else None,
            "min": min(xs) if xs else None, "max": max(xs) if xs else None}


# ----------------------------------------------------------------------------------------
# triage
# ----------------------------------------------------------------------------------------
def _train_triage_job(root: str, profile: Profile, seed: int, max_steps: int | None, data_root: str | None,
                      evaluate: bool = False) -> Any:
    """One seed's triage GRPO in a worker process (:func:`triage_replicates`): its steps, or
    with ``evaluate`` ``{"steps", "summary", "item_ids"}`` — the GRPO policy evaluated there
    right after training (:func:`_evaluate_triage_seed`), while the notebook's process
    evaluates its own seed."""
    from ..rl.triage import train_triage

    run = Run.open(root)
    tr = train_triage(profile, run, seed=seed, max_steps=max_steps, data_root=data_root)
    if not evaluate:
        return tr.result.steps
    summary, item_ids = _evaluate_triage_seed(run, profile, seed, tr, data_root)
    return {"steps": tr.result.steps, "summary": summary, "item_ids": item_ids}


def _item_ids(synthetic_items: Sequence[dict[str, Any]], real_items: Sequence[dict[str, Any]] | None
              ) -> dict[str, list[str]]:
    """The ids of a triage evaluation's items per source (what a worker's summary is matched on)."""
    return {"synthetic": [str(it["id"]) for it in synthetic_items], "real": [str(it["id"]) for it in real_items or []]}


def _evaluate_triage_seed(run: Run, profile: Profile, seed: int, tr: Any, data_root: str | None
                          ) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A seed's GRPO triage on the evaluation sets notebook 03 uses
    (:func:`mmed.eval.triage.triage_evaluation_sets`; the real split's seed is the profile's,
    so every seed holds out the same images), made here from the profile and the data
    folder. Returns the summary per set and the item ids of each set (the caller checks
    they are its own)."""
    from ..rl.triage import real_triage
    from . import triage as T

    test_items, real_eval, _ = T.triage_evaluation_sets(profile, real_triage(profile, data_root), tr)
    summary = T.evaluate_stages(profile, {"grpo": T.triage_sources(run, profile)["grpo"]}, test_items, real_eval,
                                seed=seed)["summary"]["grpo"]
    return summary, _item_ids(test_items, real_eval)


def triage_replicates(
    run: Run,
    profile: Profile,
    seeds: Sequence[int],
    main_seed: int,
    synthetic_items: Sequence[dict[str, Any]],
    real_items: Sequence[dict[str, Any]] | None = None,
    max_steps: int | None = None,
    main_summary: dict[str, Any] | None = None,
    log: Callable[[str], None] | None = print,
    real: Any = None,
    data_root: str | Path | None = None,
    workers: int | None = None,
    started: Any = None,
) -> Any:
    """Triage GRPO once per seed; greedy accuracy of each GRPO policy per evaluation set.

    The main seed's training is the run's own (``triage/grpo``, trained by notebook 03 or
    ``train-triage``; trained here when missing); the other seeds train in
    :func:`replicate_run` folders, with the profile's ``triage.real_train``: the real
    images (``real``, or read from ``../shared/data`` when present) are split with the
    profile's fixed ``triage.real_split_seed``, so every seed holds out the same images.

    Args:
        seeds: the seeds (main seed included or not), e.g. ``profile.eval.seeds``.
        main_seed: the run's own seed.
        synthetic_items: synthetic test items (never trained on).
        real_items: real images to evaluate on, or None.
        max_steps: as :func:`mmed.rl.triage.train_triage` (None: the profile's).
        main_summary: the main seed's GRPO evaluation on the same items when the caller
            already has it (``evaluate_stages(...)["summary"]["grpo"]``, as notebook 03
            does): used as is instead of evaluating that policy again.
        real: the already loaded :func:`mmed.rl.triage.load_real_triage` result the main
            training used (saves reloading; None → read as the training does).
        data_root: the real-data folder the trainings read (None → ``../shared/data`` when
            present), as :func:`mmed.rl.triage.train_triage` takes it.
        workers: the other seeds' GRPO trainings run first in parallel worker processes
            (:func:`mmed.parallel.run_jobs`; None → the profile's ``workers``); each then
            evaluates here. 1 trains them in this process.
        started: the other seeds' trainings as :func:`start_triage_replicates` started them
            (notebook 03 starts them before training the run's own seed, so that both cores
            work); None starts them here and waits.
    Returns:
        a ``pandas.DataFrame``, one row per (seed, set): ``seed, set, n, accuracy, lo, hi,
        format_valid, top_answer, top_answer_share, gold_top_share, run`` (the shares of the
        most frequent answer and gold answer, from :func:`mmed.eval.triage.triage_summary`'s
        ``answers``; ``set`` as in :func:`mmed.eval.triage.evaluate_stages`:
        ``synthetic``, ``synthetic_image_only``, ``real``; ``run`` the folder that holds
        the seed's training).
    Raises:
        ValueError: empty or duplicate seeds.
    """
    import pandas as pd

    from ..rl.triage import train_triage
    from . import triage as T

    rows = []
    runs = _runs_by_seed(run, profile, main_seed, seeds)
    if started is None:
        started = start_triage_replicates(run, profile, seeds, main_seed, max_steps, data_root, workers, log, beside=False)
    # a worker that evaluated its seed on the same items as here hands its summary over
    done = {job.args[2]: res for job, res in zip(started.jobs, started.results()) if isinstance(res, dict)}
    own_ids = _item_ids(synthetic_items, real_items)
    for s, r in runs:
        tr = train_triage(profile, r, seed=s, max_steps=max_steps, real=real, data_root=data_root)  # reused when trained
        if log:
            log(f"triage seed {s}: {tr.result.steps} GRPO steps in {r.root}")
        if s == main_seed and main_summary is not None:
            summary = main_summary
        elif s in done and done[s]["item_ids"] == own_ids:
            summary = done[s]["summary"]
        else:
            grpo = T.triage_sources(r, profile)["grpo"]
            summary = T.evaluate_stages(profile, {"grpo": grpo}, synthetic_items, real_items, seed=s)["summary"]["grpo"]
        for name, summ in summary.items():
            a = summ["accuracy"]
            rows.append({"seed": s, "set": name, "n": summ["n"], "accuracy": a["acc"], "lo": a["lo"], "hi": a["hi"],
                         "format_valid": summ["format_valid"]["acc"], **_shares(summ.get("answers")), "run": str(r.root)})
    return pd.DataFrame(rows)


def start_triage_replicates(
    run: Run,
    profile: Profile,
    seeds: Sequence[int],
    main_seed: int,
    max_steps: int | None = None,
    data_root: str | Path | None = None,
    workers: int | None = None,
    log: Callable[[str], None] | None = print,
    beside: bool = True,
    evaluate: bool = True,
) -> Any:
    """Start the triage GRPO trainings of every seed of ``seeds`` but ``main_seed`` in worker
    processes (:func:`mmed.parallel.start_jobs`; each in its :func:`replicate_run` folder, a
    finished one reused) and return at once: :func:`triage_replicates` (``started=``) waits for
    them. Arguments as :func:`triage_replicates`; ``beside``: this process trains the run's
    own seed meanwhile (:func:`mmed.parallel.start_jobs`); ``evaluate``: each worker also
    evaluates its seed's GRPO policy on notebook 03's evaluation sets right after training
    (the same numbers as evaluating it here, on the same items and thread count; while this
    process evaluates its own seed), and :func:`triage_replicates` uses those summaries when
    the items are its own. Returns the :class:`mmed.parallel.StartedJobs`.

    Raises:
        ValueError: empty or duplicate seeds.
    """
    from ..parallel import Job, start_jobs

    root = None if data_root is None else str(data_root)
    return start_jobs([Job(f"triage GRPO with seed {s} in {r.root}", _train_triage_job,
                           (str(r.root), profile, s, max_steps, root, evaluate))
                       for s, r in _runs_by_seed(run, profile, main_seed, seeds) if s != main_seed],
                      profile, workers, log=log, what="triage GRPO trainings", beside=beside)


def _shares(answers: dict[str, Any] | None) -> dict[str, Any]:
    """``top_answer``, ``top_answer_share`` and ``gold_top_share`` of an
    :func:`mmed.agents.scoring.answer_distribution` (None each when not recorded)."""
    a = answers or {}
    return {"top_answer": a.get("top_answer"), "top_answer_share": a.get("top_answer_share"),
            "gold_top_share": a.get("gold_top_share")}


def table_records(table: Any) -> list[dict[str, Any]]:
    """A replicate table as JSON-safe records (NaN → None), for notebook metrics files."""
    import json

    return json.loads(table.to_json(orient="records"))


# ----------------------------------------------------------------------------------------
# attending (C-MARL and its variants)
# ----------------------------------------------------------------------------------------
def curriculum_replicates(
    run: Run,
    profile: Profile,
    seeds: Sequence[int],
    main_seed: int,
    variants: Sequence[str | None] = (None, "no_curriculum"),
    heldout_split: str = "test",
    n_heldout: int | None = None,
    log: Callable[[str], None] | None = print,
    data_root: str | Path | None = None,
) -> Any:
    """The curriculum (and ``variants``) once per seed; held-out accuracy of each variant's
    final stage per stratum, its format-valid rate, and the paired difference between the
    first variant and each other one.

    The main seed's curricula are the run's own (trained here when missing); other seeds
    train in :func:`replicate_run` folders with
    :func:`mmed.rl.curriculum.train_curriculum` and are read back with
    :func:`mmed.eval.curriculum.curriculum_report`.

    Args:
        variants: None = C-MARL itself, then profile variant names; the first is compared
            with the others.
        heldout_split / n_heldout / data_root: as :func:`mmed.rl.curriculum.train_curriculum`.
    Returns:
        a ``pandas.DataFrame``, one row per (seed, system, stratum) with stratum in
        ``easy, medium, hard, all``: ``seed, system, stratum, n, accuracy, lo, hi,
        format_valid`` (of the final stage, all strata; None for ``start``),
        ``top_answer, top_answer_share, gold_top_share`` (of the held-out answers over all
        strata, on the ``all`` rows only; None on the others), and for the
        non-first variants ``diff_vs_first, diff_lo, diff_hi`` (first minus this system,
        paired over the same held-out items; None otherwise). ``system`` is ``start`` (the
        cold-started attending) or the variant's label (``cmarl`` for None).
    Raises:
        ValueError: empty or duplicate seeds, or no variants.
    """
    import pandas as pd

    from ..rl import curriculum as C

    if not variants:
        raise ValueError("variants is empty")
    labels = [C.variant_label(v) for v in variants]
    rows = []
    for s, r in _runs_by_seed(run, profile, main_seed, seeds):
        for v in variants:
            C.train_curriculum(with_variant(profile, v), r.root, seed=s, heldout_split=heldout_split, n_heldout=n_heldout,
                               log=(lambda m: None), data_root=data_root)
        rep = curriculum_report(r, list(variants), heldout_split, profile.eval.bootstrap_samples, s)
        if log:
            log(f"curriculum seed {s}: " + ", ".join(f"{n} {rep['systems'][n]['all']['acc']:.3f}" for n in labels)
                + f" (held-out {heldout_split}, n={rep['n_items']}) in {r.root}")
        for name in ("start", *labels):
            fv = None if name == "start" else rep["stages"][name][-1]["format_valid_after"]
            d = rep["paired"].get(f"{labels[0]}-{name}") if name != labels[0] and name != "start" else None
            ans = rep["answers"]["start"] if name == "start" else rep["stages"][name][-1].get("answers")
            for st in (*STRATA, "all"):
                a = rep["systems"][name][st]
                dd = d[st] if d else None
                rows.append({"seed": s, "system": name, "stratum": st, "n": a.get("n"), "accuracy": a["acc"],
                             "lo": a["lo"], "hi": a["hi"], "format_valid": fv,
                             **(_shares(ans) if st == "all" else _shares(None)),
                             "diff_vs_first": dd["diff"] if dd else None, "diff_lo": dd["lo"] if dd else None,
                             "diff_hi": dd["hi"] if dd else None})
    return pd.DataFrame(rows)


def _train_job(root: str, profile: Profile, variant: str | None, seed: int, heldout_split: str, n_heldout: int | None,
               data_root: str | None = None) -> Any:
    """One curriculum training in a worker process (:func:`train_curricula`)."""
    from ..rl import curriculum as C

    return C.train_curriculum(profile, root, variant=variant, seed=seed, heldout_split=heldout_split, n_heldout=n_heldout,
                              log=lambda m: None, data_root=data_root)


def train_curricula(
    run: Run, profile: Profile, seeds: Sequence[int], main_seed: int, variants: Sequence[str | None],
    heldout_split: str = "test", n_heldout: int | None = None, workers: int | None = None,
    log: Callable[[str], None] | None = print, data_root: str | Path | None = None,
) -> dict[tuple[int, str], Any]:
    """Train every (seed, variant) curriculum — the run's own seed in the run, the others in
    :func:`replicate_run` folders — in parallel worker processes.

    The attending's cold start is made first in the run (the replicates copy it); then each
    job is one :func:`mmed.rl.curriculum.train_curriculum` call, run by
    :func:`mmed.parallel.run_jobs` (``concurrent.futures.ProcessPoolExecutor``, ``spawn``;
    each worker quiets its libraries as a notebook's kernel does and sets the profile's torch
    threads). Jobs of one run folder share its manifest, which :class:`mmed.runs.Run` updates
    under a file lock. A finished training is reused as always; results equal the sequential
    ones for the same seeds (a test compares them). A curriculum whose first stage is the
    same training as another's of its seed (:func:`mmed.rl.curriculum.stage_keys`) is queued
    after the first curriculum of the seed ``ceil(workers / 2)`` places later (the last seeds':
    at the end), so that it finds that stage finished and copies it instead of training it
    again, and the workers' last jobs end together (2 workers, seeds 0, 1, 2 × C-MARL, plain
    GRPO, no entropy: C-MARL 0, plain 0, C-MARL 1, no entropy 0, plain 1, C-MARL 2, no entropy
    1, plain 2, no entropy 2; a copying curriculum that starts earlier trains that stage
    itself, with the same result).

    Args:
        workers: processes; None → the profile's ``workers`` (None there → the machine's
            cores); at most the number of jobs; 1 trains in this process, one after another.
        data_root: real-data folder for ``data.train_benchmarks`` (None → ``../shared/data``
            when present), as :func:`mmed.rl.curriculum.train_curriculum`.
    Returns:
        ``{(seed, variant label): CurriculumResult}``.
    Raises:
        RuntimeError: a job failed — naming its seed and variant, with the worker's error.
    """
    import math

    from ..parallel import Job, run_jobs, worker_count
    from ..rl import curriculum as C

    ensure_cold_start(run, with_variant(profile, None), "attending", main_seed, data_root)
    # a curriculum whose first stage is another's of the same seed (no_entropy's Easy is C-MARL's)
    # copies that stage when it finds it finished (mmed.rl.curriculum.stage_keys): it is queued
    # k = ceil(workers / 2) seeds later, after that seed's first curriculum, by when the stage it
    # copies is done, and the shorter copying curricula are not all left to the end, where the
    # last one would train alone on one core
    by_seed, seen = [], set()
    for s, r in _runs_by_seed(run, profile, main_seed, seeds):
        own, copying = [], []
        for v in variants:
            key = (s, C.stage_keys(with_variant(profile, v), {"seed": s})[0])
            (copying if key in seen else own).append((s, r, v))
            seen.add(key)
        by_seed.append((own, copying))
    n_jobs = sum(len(own) + len(copying) for own, copying in by_seed)
    k = max(1, math.ceil(worker_count(profile, n_jobs, workers) / 2))
    order = []
    for i, (own, _) in enumerate(by_seed):
        order += own[:1] + (by_seed[i - k][1] if i >= k else []) + own[1:]
    for _, copying in by_seed[max(0, len(by_seed) - k):]:
        order += copying
    jobs = [Job(f"curriculum training of variant {C.variant_label(v)!r} with seed {s} in {r.root}", _train_job,
                (str(r.root), with_variant(profile, v), v, s, heldout_split, n_heldout,
                 None if data_root is None else str(data_root)))
            for s, r, v in order]
    results = run_jobs(jobs, profile, workers, log=log,
                       what=f"curricula ({len(seeds)} seed(s) x {[C.variant_label(v) for v in variants]})")
    return {(job.args[3], C.variant_label(job.args[2])): res for job, res in zip(jobs, results)}


def seed_summary(table: Any, by: Sequence[str], value: str = "accuracy") -> Any:
    """Mean, sample standard deviation, min and max of ``value`` over seeds, per group.

    Args:
        table: a replicate table (:func:`triage_replicates`, :func:`curriculum_replicates`).
        by: the grouping columns, e.g. ``["set"]`` or ``["system", "stratum"]``.
    Returns:
        a ``pandas.DataFrame`` indexed by ``by`` with ``n_seeds, mean, sd, min, max``
        (``sd`` NaN with one seed).
    Raises:
        KeyError: a column of ``by`` or ``value`` is missing.
    """
    import pandas as pd

    missing = [c for c in (*by, value, "seed") if c not in table.columns]
    if missing:
        raise KeyError(f"replicate table has no column(s) {missing} (columns: {list(table.columns)})")
    out = {}
    for key, g in table.groupby(list(by), sort=False):
        sp = spread(list(g[value]))
        if len(by) == 1 and isinstance(key, tuple):
            key = key[0]
        out[key] = {"n_seeds": sp["n"], "mean": sp["mean"], "sd": sp["sd"] if sp["sd"] is not None else float("nan"),
                    "min": sp["min"], "max": sp["max"]}
    df = pd.DataFrame.from_dict(out, orient="index")
    df.index = pd.MultiIndex.from_tuples(df.index, names=list(by)) if len(by) > 1 else pd.Index(df.index, name=by[0])
    return df


#: the claims compared over seeds: (claim, system A, system B), each A − B on the same
#: held-out items; systems as in :func:`held_out_correctness`
SEED_CLAIMS: tuple[tuple[str, str, str], ...] = (
    ("C-MARL vs cold start", "cmarl", "start"),
    ("C-MARL vs plain GRPO (no curriculum)", "cmarl", "no_curriculum"),
    ("C-MARL vs C-MARL without entropy bonus", "cmarl", "no_entropy"),
    ("C-MARL vs follow the panel's majority", "cmarl", "follow_majority"),
    ("C-MARL vs best single specialist", "cmarl", "best_member"),
    ("C-MARL vs image only", "cmarl", "image_only"),
    ("plain GRPO vs follow the panel's majority", "no_curriculum", "follow_majority"),
)
#: the Hard stage's own effect: (claim, stratum) of C-MARL's last stage minus the stage before it
HARD_STAGE_CLAIMS: tuple[tuple[str, str], ...] = (
    ("Hard stage: change on Hard items", "hard"),
    ("Hard stage: change on Easy items", "easy"),
)


def held_out_correctness(run: Run, profile: Profile, seed: int, variants: Sequence[str | None], split: str) -> dict[str, Any]:
    """Per-item correctness of every system on one seed's held-out items, read from the run.

    Systems: ``start`` (cold start), each variant's label (``cmarl`` for None; its last
    stage), ``follow_majority`` (the panel's plurality answer), ``image_only`` (when the run
    holds the image-only reference's records), ``best_member`` (the panel position with the
    best accuracy on the seed's synthetic items of the *other* split — ``validation`` when
    ``split`` is ``test``, else ``train`` — never chosen on the items scored; needs records
    with ``panel_answers``), and ``cmarl@before_hard`` (C-MARL's stage before its last).

    Returns:
        ``{"strata": [...], "systems": {name: [bool, ...]}, "best_member": k or None}``
        aligned by item.
    Raises:
        FileNotFoundError: a variant not trained on ``split`` in ``run``.
    """
    from ..rl import curriculum as C

    start = C.heldout_predictions(run, None, None, split)
    ids = [r["id"] for r in start]
    systems: dict[str, list[bool]] = {"start": [bool(r["correct"]) for r in start],
                                      "follow_majority": [r["majority"] is not None and r["majority"] == r["answer_idx"] for r in start]}
    for v in variants:
        mans = C.load_stage_manifests(run, v)
        if not mans:
            raise FileNotFoundError(f"variant {C.variant_label(v)!r} has no trained stages in {run.root}")
        recs = C.heldout_predictions(run, v, mans[-1]["dir"], split)
        if [r["id"] for r in recs] != ids:
            raise ValueError(f"{C.variant_label(v)}: held-out items differ from the cold start's in {run.root}")
        systems[C.variant_label(v)] = [bool(r["correct"]) for r in recs]
        if v is None and len(mans) > 1:
            before = C.heldout_predictions(run, v, mans[-2]["dir"], split)
            systems["cmarl@before_hard"] = [bool(r["correct"]) for r in before]
    img = C.read_jsonl(run.path("attending", f"heldout_image_only_{split}.jsonl"))
    if img is not None and [r["id"] for r in img] == ids:
        systems["image_only"] = [bool(r["correct"]) for r in img]
    best = None
    if all("panel_answers" in r for r in start):
        other = "validation" if split == "test" else "train"
        sel = C.stratified_split(profile, other, seed, run, n=profile.data.synthetic.n_eval)

        k_max = max((len(o) for o in sel.opinions), default=0)
        acc = [sum(1 for it, o in zip(sel.items, sel.opinions) if k < len(o) and panel_answers(o)[k] == it["answer_idx"])
               for k in range(k_max)]
        if acc:
            best = max(range(len(acc)), key=lambda k: (acc[k], -k))
            systems["best_member"] = [len(r["panel_answers"]) > best and r["panel_answers"][best] == r["answer_idx"]
                                      for r in start]
    return {"strata": [r["stratum"] for r in start], "systems": systems, "best_member": best}


def curriculum_claims(
    run: Run, profile: Profile, seeds: Sequence[int], main_seed: int,
    variants: Sequence[str | None] = (None, "no_curriculum", "no_entropy"), split: str = "test",
) -> Any:
    """Every claim of :data:`SEED_CLAIMS` and :data:`HARD_STAGE_CLAIMS`, per seed and pooled
    over seeds, with paired bootstrap intervals, whatever the result.

    Reads the runs trained by :func:`curriculum_replicates` (call it first). Per seed, the
    difference is over that seed's held-out items; ``seed = "pooled"`` concatenates the
    items of all seeds (each item paired with itself) — an interval over items and seeds'
    draws together, not a between-seed interval; the per-seed rows show the spread.
    A claim missing a system (e.g. no image-only reference) is left out.

    Returns:
        a ``pandas.DataFrame`` with ``claim, seed, stratum, diff, lo, hi, n, holds``
        (``holds``: the interval's lower end is above 0; for "change on Easy items" read
        the sign: a loss is a negative interval).
    """
    import pandas as pd


    rows, pooled = [], {}
    nb = profile.eval.bootstrap_samples
    for s, r in _runs_by_seed(run, profile, main_seed, seeds):
        h = held_out_correctness(r, with_variant(profile, None), s, variants, split)
        sysd, strata = h["systems"], h["strata"]
        todo = [(c, a, b, "all") for c, a, b in SEED_CLAIMS if a in sysd and b in sysd]
        if "cmarl@before_hard" in sysd:
            todo += [(c, "cmarl", "cmarl@before_hard", st) for c, st in HARD_STAGE_CLAIMS]
        for claim, a, b, st in todo:
            xa = [x for x, t in zip(sysd[a], strata) if st == "all" or t == st]
            xb = [x for x, t in zip(sysd[b], strata) if st == "all" or t == st]
            if not xa:
                continue
            d = paired_bootstrap_diff(xa, xb, nb, seed=s)
            rows.append({"claim": claim, "seed": s, "stratum": st, "diff": d["diff"], "lo": d["lo"], "hi": d["hi"],
                         "n": d["n"], "holds": d["lo"] > 0})
            pa, pb = pooled.setdefault((claim, st), ([], []))
            pa.extend(xa)
            pb.extend(xb)
    for (claim, st), (xa, xb) in pooled.items():
        d = paired_bootstrap_diff(xa, xb, nb, seed=main_seed)
        rows.append({"claim": claim, "seed": "pooled", "stratum": st, "diff": d["diff"], "lo": d["lo"], "hi": d["hi"],
                     "n": d["n"], "holds": d["lo"] > 0})
    return pd.DataFrame(rows)


def claim_sentences(claims: Any) -> list[str]:
    """One sentence per claim from a :func:`curriculum_claims` table: the pooled difference
    with its interval and how many seeds' intervals lie above 0 / below 0 (points)."""
    out = []
    for claim, g in claims.groupby("claim", sort=False):
        p = g[g.seed == "pooled"]
        per = g[g.seed != "pooled"]
        if p.empty:
            continue
        p = p.iloc[0]
        up, down = int((per.lo > 0).sum()), int((per.hi < 0).sum())
        verdict = ("holds" if p.lo > 0 else "reversed" if p.hi < 0 else "not resolved")
        out.append(f"{claim} ({p.stratum}): {100 * p['diff']:+.1f} points [{100 * p.lo:+.1f}, {100 * p.hi:+.1f}] pooled over "
                   f"{len(per)} seeds ({int(p.n)} items) — {verdict}; above 0 on {up} seed(s), below 0 on {down}")
    return out


def curriculum_replicate_record(seeds: Sequence[int], variants: Sequence[str | None], table: Any, claims: Any) -> dict[str, Any]:
    """The seed replicate as notebook 04 records it (``metrics["seed_replicates"]``, checked by
    :func:`mmed.checks.check_seed_replicates`): ``{"seeds", "variants", "table", "claims"}``
    with ``variants`` as :func:`mmed.rl.curriculum.variant_label` names them (None →
    ``"cmarl"``) and the tables of :func:`curriculum_replicates` and
    :func:`curriculum_claims` as JSON records (:func:`table_records`)."""
    from ..rl import curriculum as C

    return {"seeds": [int(s) for s in seeds], "variants": [C.variant_label(v) for v in variants],
            "table": table_records(table), "claims": table_records(claims)}


@dataclass
class CurriculumStepResult:
    """What :func:`curriculum_step` trained and measured (notebook 04 shows it; the command
    prints ``metrics``)."""

    #: ``{variant label: CurriculumResult}`` of the run's own seed, ``"cmarl"`` first
    results: dict[str, Any]
    #: :func:`mmed.eval.curriculum.curriculum_report` of those variants on the held-out split
    report: dict[str, Any]
    #: the seeds (the run's own first) and the variants retrained with each
    seeds: list[int]
    seed_variants: list[str | None]
    #: :func:`curriculum_replicates` and :func:`curriculum_claims` tables (``pandas.DataFrame``)
    seed_table: Any
    seed_claims: Any
    heldout_split: str
    train_seconds: float
    #: what notebook 04 records (:func:`mmed.eval.curriculum.report_metrics`, with the seed
    #: replicate); ``seconds`` and ``train_seconds`` are this call's wall times
    metrics: dict[str, Any]


def check_curriculum_step(profile: Profile, variants: Sequence[str], seed_variants: Sequence[str],
                          heldout_split: str | None, n_heldout: int | None) -> str:
    """The checks :func:`curriculum_step` makes before any training (the command makes them
    before it opens a run folder): every variant name is one of the profile's (``"cmarl"``:
    C-MARL itself), the held-out split and size are valid. Returns the held-out split (None →
    :func:`mmed.rl.curriculum.default_heldout_split`).

    Raises:
        mmed.config.ProfileError: an unknown variant; ValueError: a bad split or ``n_heldout``.
    """
    from ..rl import curriculum as C

    split = heldout_split or C.default_heldout_split(profile)
    C.check_heldout(split, n_heldout)
    for v in dict.fromkeys([*variants, *seed_variants]):
        with_variant(profile, None if v == "cmarl" else v)
    return split


def curriculum_step(
    run: Run,
    profile: Profile,
    seed: int | None = None,
    variants: Sequence[str] = ("no_curriculum", "no_entropy"),
    seeds: Any = None,
    seed_variants: Sequence[str] = ("cmarl", "no_curriculum", "no_entropy"),
    heldout_split: str | None = None,
    n_heldout: int | None = None,
    data_root: str | Path | None = None,
    workers: int | None = None,
    log: Callable[[str], None] | None = print,
) -> CurriculumStepResult:
    """The C-MARL step, trained and measured: what ``python -m mmed train-attending`` and
    notebook 04 both call.

    1. :func:`train_curricula`: C-MARL and ``variants`` with the run's seed, and
       ``seed_variants`` with every other seed of ``seeds``, in worker processes (finished
       trainings are reused);
    2. :func:`mmed.eval.curriculum.curriculum_report` of C-MARL and ``variants`` on the
       held-out split (per stratum, per stage, the shortcut baselines, the claims);
    3. :func:`curriculum_replicates` and :func:`curriculum_claims` over the seeds;
    4. :func:`mmed.eval.curriculum.report_metrics` with the seed replicate
       (:func:`curriculum_replicate_record`), written to
       ``runs/<id>/attending/curriculum_step.json``.

    Args:
        seed: None → the profile's seed.
        variants: profile variant names trained next to C-MARL with the run's seed.
        seeds: as :func:`parse_seeds` takes them (None → the profile's ``eval.seeds``).
        seed_variants: variant names retrained with every seed; ``"cmarl"`` is C-MARL itself.
        heldout_split: ``"validation"`` or ``"test"``; None →
            :func:`mmed.rl.curriculum.default_heldout_split`.
        n_heldout: held-out items (None: the profile's ``data.synthetic.n_eval``).
        data_root: real-data folder for ``data.train_benchmarks`` (None → ``../shared/data``
            when present).
        workers: processes of :func:`train_curricula`.
        log: progress lines (None: silent).
    Raises:
        ValueError: an unknown variant (:func:`with_variant`), invalid ``seeds``, or a run
            folder holding a training made with other settings.
        RuntimeError: a worker's training failed (named).
    """
    import time

    from ..runs import write_json_atomic
    from ..rl import curriculum as C

    t0 = time.perf_counter()
    seed = profile.seed if seed is None else int(seed)
    split = check_curriculum_step(profile, variants, seed_variants, heldout_split, n_heldout)
    seeds = parse_seeds(seeds, profile.eval.seeds, seed)
    systems: list[str | None] = [None, *[v for v in variants if v != "cmarl"]]
    seed_systems: list[str | None] = [None if v == "cmarl" else v for v in seed_variants]
    train_curricula(run, profile, seeds, seed, list(dict.fromkeys([*systems, *seed_systems])), split, n_heldout,
                    workers=workers, log=log, data_root=data_root)
    results = {C.variant_label(v): C.train_curriculum(with_variant(profile, v), run.root, seed=seed, heldout_split=split,
                                                      n_heldout=n_heldout, log=lambda m: None, data_root=data_root)
               for v in systems}  # finished: read back
    train_seconds = time.perf_counter() - t0
    report = curriculum_report(run, systems, split, profile.eval.bootstrap_samples, seed)
    table = curriculum_replicates(run, profile, seeds, seed, seed_systems, split, n_heldout, log=log, data_root=data_root)
    claims = curriculum_claims(run, profile, seeds, seed, seed_systems, split)
    metrics = report_metrics(report, results, profile, seed, train_seconds, time.perf_counter() - t0,
                               seed_replicates=curriculum_replicate_record(seeds, seed_systems, table, claims))
    write_json_atomic(run.path("attending", "curriculum_step.json"), metrics)
    return CurriculumStepResult(results, report, seeds, seed_systems, table, claims, split, round(train_seconds, 1), metrics)
