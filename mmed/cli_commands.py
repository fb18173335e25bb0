"""The pipeline's commands for ``python -m mmed`` (registered into :mod:`mmed.cli`).

Each command is a thin wrapper around one library function that the notebooks call too.
Add a command with ``@command(name, help)`` and give the function an ``add_arguments``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .cli import add_common, command

ON_ERROR_HELP = ("what a bad row of the data (a missing field, an empty answer, a missing image, text that is not "
                 "UTF-8) does: skip = leave it out, count it and report it; raise = stop with one line naming file, row "
                 "and field. Default: the profile's data.on_error_by_entry / data.on_error, else skip")


def _add_on_error(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--on-error", choices=["skip", "raise"], default=None, help=f"{ON_ERROR_HELP} ({what})")


def _on_error_overrides(args: argparse.Namespace) -> dict | None:
    """``--on-error`` as a profile overlay for commands that read the profile's benchmarks:
    it replaces ``data.on_error`` and every ``data.on_error_by_entry`` setting."""
    if getattr(args, "on_error", None) is None:
        return None
    return {"data": {"on_error": args.on_error, "on_error_by_entry": {}}}


def _consult_args(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("--data", default="synthetic",
                   help="synthetic | <benchmark> (from --data-root) | <benchmark>:<layout> | <benchmark>:<path>, "
                        "each optionally @<split>, e.g. vqa_rad:../shared/data/vqa_rad or mmmu_med:hub@validation")
    p.add_argument("--split", default=None, help="split to read (default: the --data spec's @<split>, else test)")
    p.add_argument("--limit", type=int, default=None, help="first N items only")
    p.add_argument("--include-open", action="store_true", help="also run open questions (scored apart)")
    p.add_argument("--triage", default="model", choices=["model", "gold", "fixed", "random"])
    p.add_argument("--fixed-specialty", default=None)
    p.add_argument("--triage-fallback", default=None,
                   help="where an invalid triage answer goes: random or a specialty (default: the profile's triage.fallback)")
    p.add_argument("--decision", default="attending", choices=["attending", "attending_alone", "majority_vote", "none"])
    p.add_argument("--variant", default=None, help="curriculum variant whose attending adapters to use")
    p.add_argument("--attending-stage", default="latest")
    p.add_argument("--specialists", default=None,
                   help="override the profile's specialists, e.g. openai:<model>@<base_url> or simulated")
    p.add_argument("--out-name", default=None, help="sub-folder of consult/ (default <dataset>_<split>)")
    _add_on_error(p, "the --data split; dropped rows are counted in metrics.json and printed as a WARNING line")


@command("consult", "run triage -> specialists -> attending on a dataset split; writes consult/<name>/")
def _consult(args: argparse.Namespace) -> int:
    from .config import load_profile
    from .consult import consult

    if args.triage == "fixed" and not args.fixed_specialty:
        from .data.schema import SPECIALTIES

        raise ValueError(f"--triage fixed needs --fixed-specialty, one of {', '.join(SPECIALTIES)}")
    overrides = {}
    if args.specialists is not None:  # an empty spec is an error, not "use the profile's"
        from .agents.backends import parse_specialist_spec

        overrides = {"specialists": parse_specialist_spec(args.specialists)}
    if args.triage_fallback is not None:  # validated with the profile (ProfileError naming triage.fallback)
        overrides["triage"] = {"fallback": args.triage_fallback}
    prof = load_profile(args.profile, overrides=overrides or None)
    _, m = consult(
        prof, args.run_dir, data=args.data, split=args.split, data_root=args.data_root, limit=args.limit,
        include_open=args.include_open, triage_mode=args.triage, fixed_specialty=args.fixed_specialty,
        decision=args.decision, seed=args.seed, variant=args.variant, attending_stage=args.attending_stage,
        out_name=args.out_name, on_error=args.on_error,
    )
    keys = ("items", "closed", "open", "triage_invalid", "triage_fallbacks", "abstentions", "panel_invalid",
            "panel_cached", "attending_invalid", "strata", "accuracy", "open_scores", "seconds")
    summary = {k: m[k] for k in keys if k in m}
    if "specialist_calls" in m:  # cached backends (openai, local): what this consultation spent
        summary["specialist_calls"] = {k: m["specialist_calls"].get(k) for k in (
            "backend", "opinions", "calls", "cache_hits", "failures", "errors", "prompt_tokens", "completion_tokens",
            "cost_usd")}
    if m.get("dropped_bad_rows"):  # said loudly: in the summary, and as the last line
        summary = {"dropped_bad_rows": m["dropped_bad_rows"], **summary}
    print(json.dumps(summary, indent=2))
    for w in m.get("warnings", []):
        print(w, file=sys.stderr)
    return 0


_consult.add_arguments = _consult_args


def _train_attending_args(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("--variants", nargs="*", default=[], metavar="VARIANT",
                   help="profile variants trained next to C-MARL with the run's seed (notebook 04's variants "
                        "parameter), e.g. no_curriculum no_entropy; default: none")
    p.add_argument("--seeds", default=None,
                   help="seeds of the replicate, e.g. '[0, 1, 2]': the --seed-variants again with each other seed "
                        "from the run's cold start (notebook 04's seeds parameter); default: the run's seed only")
    p.add_argument("--seed-variants", nargs="*", default=["cmarl"], metavar="VARIANT",
                   help="variants retrained with every seed ('cmarl' is C-MARL itself; notebook 04's seed_variants); "
                        "default: cmarl")
    p.add_argument("--variant", default=None,
                   help="train this one curriculum variant alone (no_curriculum | no_entropy | constant_entropy | "
                        "reverse | adaptive_entropy; 'cmarl': C-MARL), without the step's report: the building block "
                        "mmed.rl.curriculum.train_curriculum")
    p.add_argument("--heldout-split", default=None, choices=["validation", "test"],
                   help="split whose per-stratum accuracy is measured before and after every stage; default as "
                        "notebook 04 (so both can train in one run folder): validation when the profile trains on "
                        "data.train_benchmarks (synthetic validation + the real pool's validation part), else test "
                        "(synthetic test)")
    p.add_argument("--n-heldout", type=int, default=None,
                   help="held-out items: synthetic (default: the profile's n_eval) and at most this many real ones "
                        "(default: all of the pool's validation part)")
    _add_on_error(p, "every benchmark of data.train_benchmarks and data.eval_benchmarks; overrides the profile's "
                     "data.on_error and data.on_error_by_entry")


@command("train-attending", "C-MARL: curriculum GRPO of the attending physician, trained and measured "
                            "(mmed.eval.replicates.curriculum_step, the call notebook 04 makes; resumes, skips finished stages)")
def _train_attending(args: argparse.Namespace) -> int:
    from .config import apply_torch_threads, load_profile
    from .rl.curriculum import default_heldout_split, train_curriculum
    from .eval.replicates import check_curriculum_step, curriculum_step
    from .runs import Run

    # --data-root: where data.train_benchmarks (and the evaluation benchmarks whose images are
    # kept out of training) are read; without train_benchmarks the curriculum is synthetic only
    if args.variant is not None:  # one variant alone
        variant = None if args.variant == "cmarl" else args.variant
        prof = load_profile(args.profile, variant=variant, overrides=_on_error_overrides(args))
        apply_torch_threads(prof)
        res = train_curriculum(prof, args.run_dir, seed=args.seed,
                               heldout_split=args.heldout_split or default_heldout_split(prof),
                               n_heldout=args.n_heldout, data_root=args.data_root)
        print(json.dumps({"root": res.root, "trained": res.trained, "train_counts": res.train_counts,
                          "seconds": res.seconds,
                          "stages": [{k: m.get(k) for k in ("dir", "steps", "entropy_coef", "n_items", "resumed_from")}
                                     | {"heldout_after": {s: round(a["acc"], 3) if a["n"] else None
                                                          for s, a in m["heldout"]["after"]["accuracy"].items()}}
                                     for m in res.stages]}, indent=2))
        return 0
    prof = load_profile(args.profile, overrides=_on_error_overrides(args))
    apply_torch_threads(prof)
    seed = prof.seed if args.seed is None else args.seed
    check_curriculum_step(prof, args.variants, args.seed_variants, args.heldout_split, args.n_heldout)  # before the folder
    run = Run.open(args.run_dir, profile=prof.name, seed=seed)
    step = curriculum_step(run, prof, seed, variants=args.variants, seeds=args.seeds if args.seeds is not None else [seed],
                           seed_variants=args.seed_variants, heldout_split=args.heldout_split, n_heldout=args.n_heldout,
                           data_root=args.data_root, log=lambda m: print(m, file=sys.stderr, flush=True))
    m = step.metrics
    print(json.dumps({"run": str(run.root), "metrics": str(run.path("attending", "curriculum_step.json")),
                      "seeds": step.seeds, "variants": m["variants"], "heldout_split": m["heldout_split"],
                      "accuracy_all": {k: round(v["all"]["acc"], 3) for k, v in m["systems"].items()},
                      "claims": m["claims"], "train_seconds": m["train_seconds"], "seconds": m["seconds"]}, indent=2))
    return 0


_train_attending.add_arguments = _train_attending_args


def _figures_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", default=None, help="first refresh figures/*.csv from this run (only when given)")
    p.add_argument("--fig-dir", default="figures", help="folder of the README figures (default figures/)")
    p.add_argument("--no-readme", action="store_true", help="do not rewrite the README's results block")
    p.add_argument("--allow-profile", action="append", default=[], metavar="PROFILE",
                   help="also accept a run of this profile for the repository's figures/ (default: only "
                        f"{', '.join(sorted(RESULT_PROFILES))}; a smoke run's numbers are not results)")


#: the profiles whose runs may refresh the repository's figures/ and README results
RESULT_PROFILES = frozenset({"demo", "paper"})


def check_results_profile(run: Path, fig_dir: Path, allowed: Sequence[str] = ()) -> None:
    """Refuse to refresh the repository's ``figures/`` (hence the README results) from a run
    of a profile outside :data:`RESULT_PROFILES` and ``allowed``: a ``smoke`` run's tiny
    trainings would silently replace the committed results. Another ``fig_dir`` is always
    accepted. Raises ``ValueError`` (one line naming the run and its profile)."""
    from .runs import repo_root

    if fig_dir.resolve() != (repo_root() / "figures").resolve():
        return
    profile = json.loads((run / "manifest.json").read_text()).get("profile")
    if profile not in RESULT_PROFILES | set(allowed):
        raise ValueError(f"{run}: a '{profile}' run does not refresh the repository's figures/ and README results "
                         f"(only {', '.join(sorted(RESULT_PROFILES))}); pass --fig-dir elsewhere or "
                         f"--allow-profile {profile}")


@command("figures", "redraw figures/ from their CSV files (and refresh those from a run with --run-dir)")
def _figures(args: argparse.Namespace) -> int:
    from .runs import repo_root, resolve_path
    from .viz.figures import redraw, refresh_from_run, update_readme

    fig_dir = resolve_path(args.fig_dir)
    if args.run_dir:
        run = resolve_path(args.run_dir)
        if not (run / "manifest.json").is_file():
            raise ValueError(f"{run} is not a run folder (no manifest.json)")
        check_results_profile(run, fig_dir, args.allow_profile)
        for name, st in refresh_from_run(run, fig_dir).items():
            print(f"data   {name:<20} {st}")
    for name, st in redraw(fig_dir).items():
        print(f"figure {name:<20} {st}")
    if args.no_readme:
        pass
    elif fig_dir.resolve() != (repo_root() / "figures").resolve():
        print(f"README results block not touched (it is generated from figures/, not {fig_dir})")
    else:
        changed = update_readme(repo_root() / "README.md", fig_dir)
        print("README results block", "updated" if changed else "unchanged")
    return 0


_figures.add_arguments = _figures_args


def _train_triage_args(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("--real-train", action=argparse.BooleanOptionalAction, default=None,
                   help="also train the cold start and GRPO on the train part of the real triage images (split by "
                        "image; never an evaluation image) and evaluate on the held-out part; default: the profile's "
                        "triage.real_train")
    p.add_argument("--max-steps", type=int, default=None, help="override the profile's triage_grpo.max_steps")
    p.add_argument("--seeds", default=None,
                   help="seeds of the replicate, e.g. '[0, 1, 2]': GRPO again with each other seed from the run's "
                        "cold start (notebook 03's seeds parameter); default: the run's seed only (no further training)")
    p.add_argument("--no-downstream", dest="downstream", action="store_false",
                   help="skip the whole-pipeline comparison of the triage doctors (notebook 03 runs it)")
    _add_on_error(p, "every benchmark of data.train_benchmarks and data.eval_benchmarks; overrides the profile's "
                     "data.on_error and data.on_error_by_entry")


@command("train-triage", "GRPO of the triage doctor from the run's cold start; evaluates cold start vs GRPO "
                         "(mmed.eval.triage.triage_step, the call notebook 03 makes)")
def _train_triage(args: argparse.Namespace) -> int:
    from .config import apply_torch_threads, load_profile
    from .eval.triage import run_train_triage

    if args.max_steps is not None and args.max_steps < 1:
        raise ValueError(f"--max-steps must be >= 1, got {args.max_steps}")
    prof = load_profile(args.profile, overrides=_on_error_overrides(args))
    apply_torch_threads(prof)
    report = run_train_triage(prof, args.run_dir, seed=args.seed, data_root=args.data_root,
                              real_train=args.real_train, max_steps=args.max_steps, seeds=args.seeds,
                              downstream=args.downstream)
    print(json.dumps(report, indent=2))
    return 0


_train_triage.add_arguments = _train_triage_args


def _consult_step_args(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("--limit", type=int, default=None,
                   help="at most this many VQA-RAD items (default: the profile's data.eval_limit)")


@command("consult-step", "notebook 02's step: the cold starts, then the pipeline and its baselines on the synthetic "
                         "test split and VQA-RAD (mmed.consult.consultation_step); writes consult/consultation_step.json")
def _consult_step(args: argparse.Namespace) -> int:
    from .config import apply_torch_threads, load_profile
    from .consult import consultation_step
    from .runs import Run, resolve_data_root

    prof = load_profile(args.profile)
    apply_torch_threads(prof)
    seed = prof.seed if args.seed is None else args.seed
    if args.limit is not None and args.limit < 1:  # before the run folder is made
        raise ValueError(f"--limit must be a positive number of items, got {args.limit}")
    resolve_data_root(args.data_root)  # a --data-root that does not exist fails before the run folder is made
    run = Run.open(args.run_dir, profile=prof.name, seed=seed)
    step = consultation_step(run, prof, seed, data_root=args.data_root, limit=args.limit,
                             log=lambda m: print(m, file=sys.stderr, flush=True))
    m = step.metrics
    print(json.dumps({"run": str(run.root), "metrics": str(run.path("consult", "consultation_step.json")),
                      "real_data": m["real_data"],
                      "accuracy": {ds: {k: round(v["accuracy"]["acc"], 3) for k, v in m[ds].items()}
                                   for ds in ("synthetic", "vqa_rad") if ds in m},
                      "seconds": m["seconds"]}, indent=2))
    return 0


_consult_step.add_arguments = _consult_step_args


def _eval_step_args(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("--limit", type=int, default=None,
                   help="at most this many items of each real benchmark (default: the profile's data.eval_limit)")
    _add_on_error(p, "every benchmark of data.eval_benchmarks")


def _evaluation_step_inputs(args: argparse.Namespace):
    """The profile, run, seed, data root and evaluation sets of ``ablations`` and
    ``test-time-scaling`` (as notebooks 05 and 06 draw them)."""
    from .config import apply_torch_threads, load_profile
    from .data.sets import evaluation_sets
    from .runs import Run, resolve_data_root

    prof = load_profile(args.profile)
    apply_torch_threads(prof)
    seed = prof.seed if args.seed is None else args.seed
    root = resolve_data_root(args.data_root)
    evalsets = evaluation_sets(prof, root, limit=args.limit, on_error=args.on_error)
    return prof, Run.open(args.run_dir, profile=prof.name, seed=seed), seed, root, evalsets


@command("ablations", "notebook 05's step: every ablation row on the synthetic test split and the profile's "
                      "benchmarks, the paper's claims and the domain averages (mmed.eval.ablations.ablations_step); "
                      "writes eval/ablations/")
def _ablations(args: argparse.Namespace) -> int:
    from .eval.ablations import STEP_FILE, ablations_step

    prof, run, seed, _, evalsets = _evaluation_step_inputs(args)
    step = ablations_step(run, prof, evalsets, seed=seed)
    t = step.table[step.table["available"]]
    missing = step.table[~step.table["available"]]
    print(json.dumps({"run": str(run.root), "metrics": str(run.path("eval", "ablations", STEP_FILE)),
                      "n_items": step.metrics["n_items"],
                      "accuracy": {ds: {r["system"]: round(float(r["acc"]), 3) for _, r in g.iterrows()}
                                   for ds, g in t.groupby("dataset", sort=False)},
                      "not_measured": {ds: {r["system"]: r.get("reason") for _, r in g.iterrows()}
                                       for ds, g in missing.groupby("dataset", sort=False)},
                      "claims": [f"{c['claim']} ({c['dataset']}): {c['verdict']}" for _, c in step.claims.iterrows()],
                      "notes": step.notes}, indent=2))
    return 0


_ablations.add_arguments = _eval_step_args


@command("test-time-scaling", "notebook 06's step: majority vote over N sampled attending answers, uniform and "
                              "adaptive budgets (mmed.eval.tts.tts_step); writes eval/tts/")
def _test_time_scaling(args: argparse.Namespace) -> int:
    from .eval.tts import STEP_FILE, tts_step

    prof, run, seed, root, evalsets = _evaluation_step_inputs(args)
    step = tts_step(run, prof, evalsets, seed=seed, real_data=root is not None)
    print(json.dumps({"run": str(run.root), "metrics": str(run.path("eval", "tts", STEP_FILE)),
                      "n_samples": step.metrics["n_samples"],
                      "curve": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()
                                 if k in ("dataset", "attending", "policy", "N", "acc")}
                                for r in step.metrics["curve"]]}, indent=2))
    return 0


_test_time_scaling.add_arguments = _eval_step_args


def _inspect_args(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("--predictions", default=None,
                   help="a predictions.jsonl path or a source such as consult/synthetic_test (default: every "
                        "predictions file of the run)")
    p.add_argument("--fallback-limit", type=int, default=16,
                   help="synthetic test items consulted first when the run has no predictions yet")
    p.add_argument("--html", default=None,
                   help="where the page goes: the summary and the teaching cases, images inline (default: "
                        "<run>/eval/inspector.html)")


@command("inspect", "notebook 07's step without Jupyter: the disagreement inspector over the run's predictions, its "
                    "summary and teaching cases written as one HTML page (mmed.inspection.inspection_step)")
def _inspect(args: argparse.Namespace) -> int:
    from .config import load_profile
    from .inspection import inspection_step, write_page
    from .runs import Run

    prof = load_profile(args.profile)
    seed = prof.seed if args.seed is None else args.seed
    run = Run.open(args.run_dir, profile=prof.name, seed=seed)
    step = inspection_step(run, prof, seed, predictions=args.predictions, fallback_limit=args.fallback_limit,
                           log=lambda m: print(m, file=sys.stderr, flush=True), data_root=args.data_root)
    page = write_page(step, args.html or run.path("eval", "inspector.html"))
    m = step.metrics
    print(json.dumps({"run": str(run.root), "page": str(page), "n_records": m["n_records"], "sources": m["sources"],
                      "overrule": m["overrule"], "overruled_correct": m["overruled_correct"],
                      "followed_correct": m["followed_correct"], "cases_shown": m["cases_shown"],
                      "fallback_consultation": m["fallback_consultation"]}, indent=2))
    return 0


_inspect.add_arguments = _inspect_args


def _ship_base_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="demo", help="smoke | demo | paper | path to a YAML profile")
    p.add_argument("--from-entry", default=None,
                   help="ship this cache entry ($MMED_BASE_CACHE/<key>, a base this machine pre-trained) "
                        "instead of pre-training a new one")
    p.add_argument("--out", default=None, help="folder of the shipped entries (default: mmed/assets/base)")
    p.add_argument("--note", default="", help="free text kept in the entry's shipped.json (machine, commit)")


@command("ship-base", "pre-train the tiny base of a profile on this machine and write it to mmed/assets/base "
                      "(the base every run of that profile then starts from)")
def _ship_base(args: argparse.Namespace) -> int:
    import tempfile

    from .config import load_profile
    from .models import build_tiny_qwen2_5_vl
    from .rl.pretrain import ship_base

    prof = load_profile(args.profile)
    if not prof.models.pretrain.enabled:
        raise ValueError(f"profile {prof.name!r} does not pre-train its base (models.pretrain.enabled: false)")
    with tempfile.TemporaryDirectory(prefix="mmed-init-") as tmp:
        init = None
        if args.from_entry is None:
            init = build_tiny_qwen2_5_vl(Path(tmp) / "init", prof.models.tiny, min_pixels=prof.image.min_pixels,
                                         max_pixels=prof.image.max_pixels)
        entry = ship_base(prof, init, args.out, note=args.note, from_entry=args.from_entry)
    print(f"shipped base of profile {prof.name!r}: {entry}")
    return 0


_ship_base.add_arguments = _ship_base_args
