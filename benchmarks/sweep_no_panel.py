"""Sweep the share of the attending's cold-start items shown without opinions
(``cold_start.no_panel_fraction``) — on validation items only.

Why: an attending cold-started with a panel on every item has never seen an empty panel; the
"w/o specialists (attending alone)" ablation then asks it anyway, and on VQA-RAD it answered
one letter on most items. Training a share of the items without opinions (reasoning
``Panel: none.``, gold answer) teaches it to answer from the image and the question alone;
the sweep measures what that costs the panel-reading attending.

For each fraction, in its own run folder under ``--work`` (the profile's tiny base, cached
as for every run): the attending's cold start exactly as ``make demo`` makes it
(:func:`mmed.rl.cold_start.ensure_cold_start`), then greedy answers on

- the synthetic **validation** split (``--n`` items): with the gold specialty's panel (accuracy
  per stratum and overall) and without opinions (accuracy, share of the most frequent answer,
  chance = mean 1/#options);
- with real data, the real training pool's image-disjoint **validation** part of
  ``--benchmark`` (:func:`mmed.data.training.training_pool`; never an evaluation image), with
  and without opinions.

Follow-the-panel's-majority on the same items is printed beside (the shortcut to beat).

Usage::

    python benchmarks/sweep_no_panel.py                          # fractions 0 0.1 0.25 0.5
    python benchmarks/sweep_no_panel.py --fractions 0 0.25 --json sweep.json
    python benchmarks/sweep_no_panel.py --image-only-real --overlay \
        '{"cold_start": {"image_only_real": {"balance_yes_no": true}}}'   # the real image-only reference
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mmed.config import STRATA, apply_torch_threads, load_profile  # noqa: E402


def answer_sets(prof, run, items, seed: int, stage: str = "sft") -> dict:
    """Greedy answers of the run's cold-started attending (``stage``: ``"sft"``, or an
    image-only reference's folder) with and without opinions."""
    from mmed.agents.build import load_runner, policy_source
    from mmed.rl.cold_start import panel_opinions_gold
    from mmed.agents.stratify import agreement_score, majority_vote, panel_answers, stratum
    from mmed.rl.sft import format_and_accuracy

    ops = panel_opinions_gold(prof, items, seed, run)
    runner = load_runner(prof, policy_source(run, prof, "attending", stage), "attending (cold start)")
    style, max_new = prof.sampling.prompt_style, prof.sampling.max_new_tokens
    out = {"n": len(items), "chance": sum(1 / len(it["options"]) for it in items) / len(items)}
    strata = [stratum(agreement_score(o, int(it["answer_idx"]))) for o, it in zip(ops, items)]
    for name, panels in (("panel", ops), ("no_panel", [[] for _ in items])):
        m = format_and_accuracy("attending", runner, items, panels, style, max_new)
        out[name] = {"accuracy": m["accuracy"], "answer_valid": m["answer_valid"],
                     "top_answer_share": m["answers"]["top_answer_share"], "top_answer": m["answers"]["top_answer"]}
    # per stratum with the panel: one more pass keeps format_and_accuracy's contract simple
    per = {}
    for st in STRATA:
        idx = [i for i, s in enumerate(strata) if s == st]
        if idx:
            m = format_and_accuracy("attending", runner, [items[i] for i in idx], [ops[i] for i in idx], style, max_new)
            per[st] = {"n": len(idx), "accuracy": m["accuracy"]}
    out["panel"]["by_stratum"] = per
    follow = [majority_vote(panel_answers(o)) == int(it["answer_idx"]) for o, it in zip(ops, items)]
    out["follow_majority"] = sum(follow) / len(follow)
    return out


def run_fraction(fraction: float, args: argparse.Namespace) -> dict:
    from mmed.agents.pipeline import as_item_list
    from mmed.data.sets import synthetic_split
    from mmed.rl.cold_start import ensure_cold_start
    from mmed.runs import Run, resolve_data_root

    overlay = json.loads(args.overlay) if args.overlay else {}
    over = {**overlay, "cold_start": {**overlay.get("cold_start", {}), "no_panel_fraction": fraction, "image_only": False}}
    prof = load_profile(args.profile, overrides=over)
    apply_torch_threads(prof)
    name = "image_only_real" if args.image_only_real else f"no_panel_{fraction:g}"
    run = Run.open(Path(args.work) / f"{args.name}{name}", profile=prof.name, seed=args.seed)
    t0 = time.perf_counter()
    if args.image_only_real:  # the demo's recipe of the real datasets' image-only reference
        from mmed.agents.build import IMAGE_ONLY_REAL_STAGE
        from mmed.rl.cold_start import ensure_image_only_attending

        stage = IMAGE_ONLY_REAL_STAGE
        rep = ensure_image_only_attending(run, prof, args.seed, args.data_root, source="real")
    else:
        stage = "sft"
        rep = ensure_cold_start(run, prof, "attending", args.seed, args.data_root)
    row = {"no_panel_fraction": 1.0 if args.image_only_real else fraction, "stage": stage,
           "seconds_cold_start": round(time.perf_counter() - t0, 1), "loss_last": rep.get("loss_last"),
           "training_data": rep.get("training_data")}
    syn = as_item_list(synthetic_split(prof, "validation", n=args.n))
    row["synthetic_validation"] = answer_sets(prof, run, syn, args.seed, stage)
    root = resolve_data_root(args.data_root)
    if root is not None:
        from mmed.data.training import training_pool

        pprof = dataclasses.replace(prof, data=dataclasses.replace(prof.data, train_benchmarks=[args.benchmark]))
        pool = training_pool(pprof, root, cap=1, seed=args.seed, log=lambda m: None)
        val = as_item_list(pool.validation)
        row["real_validation"] = answer_sets(prof, run, val, args.seed, stage)
        row["real_validation"]["benchmark"] = args.benchmark
        # the same items with as many gold "yes" as "no" within each organ: accuracy there is
        # not helped by an organ's answer prior (VQA-RAD's test split is balanced that way)
        from mmed.rl.cold_start import balance_yes_no

        row["real_validation_balanced"] = answer_sets(prof, run, balance_yes_no(val, args.seed)[0], args.seed, stage)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.0, 0.1, 0.25, 0.5])
    ap.add_argument("--n", type=int, default=140, help="synthetic validation items")
    ap.add_argument("--benchmark", default="vqa_rad:mevf", help="real pool whose validation part is measured")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="runs/sweep-no-panel")
    ap.add_argument("--json", default=None)
    ap.add_argument("--overlay", default=None, help="a JSON profile overlay applied to every fraction "
                    "(e.g. real pool items in the cold start: "
                    "'{\"data\": {\"train_benchmarks\": [\"vqa_rad:mevf\"]}, \"cold_start\": {\"real_share\": 0.25}}')")
    ap.add_argument("--name", default="", help="prefix of the run folders (one per overlay)")
    ap.add_argument("--image-only-real", action="store_true",
                    help="train and measure the real datasets' image-only reference as the demo makes it "
                         "(mmed.rl.cold_start.ensure_image_only_attending, cold_start.image_only_real); "
                         "--fractions is then ignored (one row)")
    args = ap.parse_args(argv)
    if args.image_only_real:
        args.fractions = [1.0]
    rows = []
    print("fraction | synthetic val: panel acc (easy/medium/hard) | follow-majority | no panel acc (top share, chance) "
          "| real val: panel acc | follow-majority | no panel acc (top share) | the same, yes/no balanced per organ | s")
    for f in args.fractions:
        r = run_fraction(f, args)
        rows.append(r)
        s = r["synthetic_validation"]
        st = "/".join(f"{s['panel']['by_stratum'].get(k, {}).get('accuracy', float('nan')):.2f}" for k in STRATA)
        line = (f"{f:g} | {s['panel']['accuracy']:.3f} ({st}) | {s['follow_majority']:.3f} | "
                f"{s['no_panel']['accuracy']:.3f} ({s['no_panel']['top_answer']} {s['no_panel']['top_answer_share']:.2f}, "
                f"{s['chance']:.2f})")
        if "real_validation" in r:
            q = r["real_validation"]
            line += (f" | {q['panel']['accuracy']:.3f} | {q['follow_majority']:.3f} | {q['no_panel']['accuracy']:.3f} "
                     f"({q['no_panel']['top_answer']} {q['no_panel']['top_answer_share']:.2f}; n {q['n']})")
            b = r["real_validation_balanced"]["no_panel"]
            line += f" | balanced: {b['accuracy']:.3f} ({b['top_answer']} {b['top_answer_share']:.2f}; n {r['real_validation_balanced']['n']})"
        print(line + f" | {r['seconds_cold_start']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
