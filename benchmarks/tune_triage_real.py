"""Tuning the triage doctor's training on real images — on a validation part of the real
*train* images, never on the held-out part.

For each named configuration (a profile overlay), in its own run folder under ``--work``:
the tiny base model, the triage cold start and triage GRPO exactly as notebook 03 makes them
(:func:`mmed.rl.cold_start.ensure_cold_start`, :func:`mmed.rl.triage.train_triage`), but with the real
images' ``train`` part split again (:meth:`mmed.rl.triage.RealTriageSet.validation_split`,
by image, per specialty) into a *fit* part (trained on) and a *validation* part (evaluated).
The real held-out part is neither trained on nor evaluated here.

Printed per configuration, on the validation images (greedy, after the cold start and
after GRPO): accuracy; the majority-class baseline on them; balanced (macro) accuracy over the
specialties with images; the **held-out-weighted** accuracy — per-specialty validation
accuracies weighted by each specialty's share of the real held-out part (its label counts
only, no prediction on it): what the "(all)" held-out accuracy would be at these
per-specialty rates, since the validation part has far fewer radiographs (every MEVF test
image is held out); the answer counts; accuracy on 64 synthetic *validation* items (never the
test split); the share of the validation radiographs routed to the Radiologist when asked
up to three of their own VQA-RAD questions (what the pipeline asks on VQA-RAD, whatever
``triage.real_questions`` trained with); seconds. A configuration whose run folder already holds its training is reused.

Usage::

    python benchmarks/tune_triage_real.py                        # the built-in grid, demo profile
    python benchmarks/tune_triage_real.py --configs real real_balanced
    python benchmarks/tune_triage_real.py --config mine='{"triage": {"real_balance": "specialty"}, "triage_grpo": {"max_steps": 80}}'
    python benchmarks/tune_triage_real.py --out tune.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: the built-in grid: name -> profile overlay
CONFIGS: dict[str, dict] = {
    "synthetic_only": {"triage": {"real_train": False}},
    "real": {"triage": {"real_train": True, "real_balance": "none"}},
    "real_balanced": {"triage": {"real_train": True, "real_balance": "specialty"}},
}


def evaluate_config(name: str, overlay: dict, args: argparse.Namespace) -> dict:
    """Cold start + GRPO of one configuration on the fit part; measures on the validation part."""
    from mmed.agents.pipeline import as_item_list
    from mmed.config import apply_torch_threads, load_profile
    from mmed.data.sets import synthetic_split
    from mmed.rl.cold_start import ensure_cold_start
    from mmed.data.schema import SPECIALTIES
    from mmed.rl import triage as T
    from mmed.eval import triage as TE
    from mmed.runs import Run

    prof = load_profile(args.profile, overrides=overlay)
    apply_torch_threads(prof)
    real = T.real_triage(prof, args.data_root)
    if real is None:
        raise SystemExit("tune_triage_real: no real data (pass --data-root or put it at ../shared/data)")
    tune = real.validation_split(args.val_fraction, args.split_seed)
    held_counts = real.counts()["heldout"]
    run = Run.open(Path(args.work) / name, profile=prof.name, seed=args.seed)
    t0 = time.perf_counter()
    cs = ensure_cold_start(run, prof, "triage", args.seed, real=tune)
    t1 = time.perf_counter()
    tr = T.train_triage(prof, run, seed=args.seed, real=tune)
    t2 = time.perf_counter()
    if tune.overlap() or any(set(it["image_hashes"]) & tr.trained_image_hashes for it in tune.heldout):
        raise RuntimeError(f"{name}: a validation image was trained on")
    syn = as_item_list(synthetic_split(prof, "validation", n=64))
    ev = TE.evaluate_stages(prof, TE.triage_sources(run, prof), syn, tune.heldout, seed=args.seed)
    t3 = time.perf_counter()
    out = {"config": name, "overlay": overlay, "fit": tune.counts()["train"], "validation": tune.counts()["heldout"],
           "cold_start_items": (cs or {}).get("training_data"), "training_data": {k: v for k, v in tr.data.items() if k != "train_pool"},
           "seconds": {"cold_start": round(t1 - t0, 1), "grpo": round(t2 - t1, 1), "eval": round(t3 - t2, 1)},
           "frac_reward_zero_std_mean": TE.training_summary(tr.result.log)["frac_reward_zero_std_mean"]}
    with_images = [s for s in SPECIALTIES if held_counts[s] > 0]
    w = {s: held_counts[s] / sum(held_counts.values()) for s in with_images}
    for stage in ("sft", "grpo"):
        r = ev["summary"][stage]["real"]
        per = {s: (r["by_specialty"][s]["accuracy"] or {}).get("acc") for s in with_images}
        out[stage] = {
            "val_acc": r["accuracy"]["acc"],
            "val_macro": sum(per.values()) / len(per),
            "val_heldout_weighted": sum(w[s] * per[s] for s in with_images),
            "per_specialty": per,
            "answers": ev["answers"][stage]["real"],
            "synthetic_val_acc": ev["summary"][stage]["synthetic"]["accuracy"]["acc"],
            "synthetic_val_image_only_acc": ev["summary"][stage]["synthetic_image_only"]["accuracy"]["acc"],
        }
    # the question the pipeline asks: every validation radiograph with up to three of its own
    # VQA-RAD questions (whatever triage.real_questions trained with): share routed to the Radiologist
    from mmed.agents.build import load_runner

    probe = [dict(it, question=q, id=f"{it['id']}?{k}") for it in tune.heldout if it["dataset"] == "vqa_rad"
             for k, q in enumerate(it.get("own_questions", [])[:3])]
    for stage, src in TE.triage_sources(run, prof).items():
        if probe and stage in out:
            recs = TE.evaluate_triage(load_runner(prof, src, f"triage ({stage})"), probe, prof, seed=args.seed)
            out[stage]["val_radiograph_own_questions"] = sum(r["correct"] for r in recs) / len(recs)
    out["n_radiograph_probe"] = len(probe)
    m = ev["majority"]["real"]
    out["majority_val"] = {"answer": m["answer"], "acc": m["summary"]["accuracy"]["acc"]}
    heldout_major = max(with_images, key=lambda s: held_counts[s])
    out["majority_heldout_weighted"] = {"answer": heldout_major, "acc": w[heldout_major]}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--configs", nargs="*", default=None, help=f"built-in configurations to run (default: all of {list(CONFIGS)})")
    ap.add_argument("--config", action="append", default=[], metavar="NAME=JSON",
                    help="an extra configuration: a name and a JSON profile overlay")
    ap.add_argument("--work", default="runs/tune-triage-real", help="one run folder per configuration below this")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-fraction", type=float, default=0.3, help="share of each specialty's real train images held for validation")
    ap.add_argument("--split-seed", type=int, default=0, help="seed of the fit / validation split")
    ap.add_argument("--out", default=None, help="also write the results as JSON")
    args = ap.parse_args(argv)
    todo = {k: CONFIGS[k] for k in (args.configs if args.configs is not None else CONFIGS)}
    for spec in args.config:
        name, _, js = spec.partition("=")
        if not name or not js:
            raise SystemExit(f"--config {spec!r}: expected NAME=JSON")
        todo[name] = json.loads(js)
    results = []
    for name, overlay in todo.items():
        r = evaluate_config(name, overlay, args)
        results.append(r)
        g, c = r["grpo"], r["sft"]
        print(f"{name:<16} val acc cold {c['val_acc']:.3f} -> GRPO {g['val_acc']:.3f} (majority "
              f"{r['majority_val']['answer']} {r['majority_val']['acc']:.3f}) | held-out-weighted cold "
              f"{c['val_heldout_weighted']:.3f} -> GRPO {g['val_heldout_weighted']:.3f} (majority "
              f"{r['majority_heldout_weighted']['acc']:.3f}) | macro {g['val_macro']:.3f} | synthetic val "
              f"{c['synthetic_val_acc']:.3f} -> {g['synthetic_val_acc']:.3f} | radiographs with own questions "
              f"({r['n_radiograph_probe']}) cold {c.get('val_radiograph_own_questions', float('nan')):.3f} -> GRPO "
              f"{g.get('val_radiograph_own_questions', float('nan')):.3f} | s {r['seconds']}", flush=True)
        print(f"{'':<16} per specialty (GRPO): {{{', '.join(f'{k}: {v:.2f}' for k, v in g['per_specialty'].items())}}}"
              f" | answers (GRPO): {{{', '.join(f'{k}: {v}' for k, v in g['answers'].items() if v)}}}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
