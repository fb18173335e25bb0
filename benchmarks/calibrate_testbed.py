"""Calibrate the CPU testbed on the synthetic *validation* split.

For each configuration — a named overlay of a profile (default ``demo``) — in its own run
folder under ``--out-dir``: the pre-trained tiny base (shared through the base cache when
its settings match), the cold-started attending and its image-only reference, then the
C-MARL curriculum and plain GRPO (variant ``no_curriculum``), every policy measured on the
same synthetic validation items with the panel of each item's gold specialty. Prints, per
configuration and stratum, the accuracy of

    follow-majority | image only | cold start | plain GRPO | C-MARL

and C-MARL's format-valid rate, its most frequent answer's share, and the seconds each
configuration took; writes the same as JSON (``--json``). Nothing here touches a test split.

    python benchmarks/calibrate_testbed.py --configs demo gold_target          # two rows
    python benchmarks/calibrate_testbed.py --list                                # the grid

The demo profile is chosen from this table within the demo's time budget and the table is
recorded in ``benchmarks/RESULTS.md`` with the command that produced it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mmed.config import STRATA, apply_torch_threads, load_profile  # noqa: E402

#: the grid: overlays of the base profile, changed one setting at a time from "demo"
CONFIGS: dict[str, dict] = {
    "demo": {},
    "majority_target": {"cold_start": {"target": "majority"}},
    "cold_start_480": {"cold_start": {"max_steps": 480}},
    "cold_start_480_majority": {"cold_start": {"max_steps": 480, "target": "majority"}},
    "cold_start_lr_1e-3": {"cold_start": {"learning_rate": 1.0e-3, "max_steps": 120}},
    "grpo_lr_5e-4": {"attending_grpo": {"learning_rate": 5.0e-4}},
    "grpo_t0.7": {"attending_grpo": {"temperature": 0.7}},
    "grpo_t0.7_lr_1e-3": {"attending_grpo": {"temperature": 0.7, "learning_rate": 1.0e-3}},
    "grpo_t0.7_lr_5e-4": {"attending_grpo": {"temperature": 0.7, "learning_rate": 5.0e-4}},
    "grpo_steps_x2": {"curriculum": {"stages": [
        {"name": "easy", "strata": ["easy"], "max_steps": 60, "entropy_coef": 0.0},
        {"name": "medium", "strata": ["medium"], "max_steps": 60, "entropy_coef": 0.001},
        {"name": "hard", "strata": ["hard"], "max_steps": 60, "entropy_coef": 0.003}]}},
    "paper_gamma": {"curriculum": {"stages": [
        {"name": "easy", "strata": ["easy"], "max_steps": 30, "entropy_coef": 0.0},
        {"name": "medium", "strata": ["medium"], "max_steps": 30, "entropy_coef": 0.01},
        {"name": "hard", "strata": ["hard"], "max_steps": 30, "entropy_coef": 0.05}]}},
}


def stage_steps(n: int) -> dict:
    """Overlay: every curriculum stage of C-MARL ``n`` steps (the demo's γ schedule) and plain
    GRPO (``no_curriculum``) the same total, 3 n steps — the demo's time budget buys steps."""
    stages = [{"name": s, "strata": [s], "max_steps": n, "entropy_coef": g}
              for s, g in (("easy", 0.0), ("medium", 0.001), ("hard", 0.003))]
    return {"curriculum": {"stages": stages},
            "variants": {"no_curriculum": {"curriculum": {"stages": [
                {"name": "all", "strata": ["easy", "medium", "hard"], "max_steps": 3 * n, "entropy_coef": 0.0}]}}}}


CONFIGS.update({"stages_20": stage_steps(20), "stages_15": stage_steps(15), "stages_12": stage_steps(12),
                "stages_10": stage_steps(10)})
SYSTEMS = ("follow_majority", "image_only", "start", "no_curriculum", "cmarl")
HEADERS = {"follow_majority": "follow-majority", "image_only": "image only", "start": "cold start",
           "no_curriculum": "plain GRPO", "cmarl": "C-MARL"}


def calibrate(name: str, overlay: dict, base_profile: str, out_dir: Path, n_heldout: int, seed: int) -> dict:
    """Train and measure one configuration; returns its row (see the module docstring)."""
    from mmed.rl.cold_start import ensure_cold_start
    from mmed.eval.curriculum import curriculum_report
    from mmed.rl.curriculum import train_curriculum
    from mmed.runs import Run

    prof = load_profile(base_profile, overrides=overlay)
    root = out_dir / name
    shared = out_dir / "demo"
    if name != "demo" and not (set(overlay) & {"cold_start", "models", "data", "image", "specialists"}) \
            and (shared / "attending" / "sft" / "cold_start.json").is_file() and not (root / "attending").exists():
        # the same cold start as the "demo" configuration: reuse it (and its held-out records)
        for part in ("models", "attending/sft", "attending/image_only", "attending/image_only_real"):
            if (shared / part).is_dir():
                shutil.copytree(shared / part, root / part)
        for f in (shared / "attending").glob("heldout_*_validation.jsonl"):
            shutil.copy2(f, root / "attending" / f.name)
    run = Run.open(root, profile=prof.name, seed=seed)
    t0 = time.perf_counter()
    ensure_cold_start(run, prof, "attending", seed)
    t_cold = time.perf_counter() - t0
    for variant in (None, "no_curriculum"):
        p = load_profile(base_profile, variant=variant, overrides=overlay)
        train_curriculum(p, root, variant=variant, seed=seed, heldout_split="validation", n_heldout=n_heldout,
                         log=lambda m: None)
    rep = curriculum_report(run, [None, "no_curriculum"], "validation", prof.eval.bootstrap_samples, seed)
    last = rep["stages"]["cmarl"][-1]
    return {
        "config": name, "overlay": overlay, "n_items": rep["n_items"],
        "accuracy": {sys_: {st: rep["systems"][sys_][st]["acc"] for st in (*STRATA, "all")}
                     for sys_ in SYSTEMS if sys_ in rep["systems"]},
        "n_by_stratum": {st: rep["systems"]["start"][st]["n"] for st in (*STRATA, "all")},
        "cmarl_format_valid": last["format_valid_after"],
        "cmarl_top_answer_share": last["answers"].get("top_answer_share"),
        "cmarl_entropy_mean": last["train"].get("entropy_mean"),
        "seconds": round(time.perf_counter() - t0, 1), "cold_start_seconds": round(t_cold, 1),
    }


def table(rows: list[dict]) -> str:
    """Markdown table: one line per configuration and stratum."""
    head = ["config", "stratum", "n", *[HEADERS[s] for s in SYSTEMS], "C-MARL valid", "C-MARL top share", "s"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        for st in (*STRATA, "all"):
            accs = [r["accuracy"].get(s, {}).get(st) for s in SYSTEMS]
            cells = [r["config"], st, str(r["n_by_stratum"][st]),
                     *("–" if a is None or a != a else f"{100 * a:.1f}" for a in accs),
                     f"{100 * r['cmarl_format_valid']:.0f}" if st == "all" else "",
                     f"{100 * r['cmarl_top_answer_share']:.0f}" if st == "all" and r["cmarl_top_answer_share"] is not None else "",
                     f"{r['seconds']:.0f}" if st == "all" else ""]
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--configs", nargs="*", default=None, help=f"names from the grid (default: all): {list(CONFIGS)}")
    ap.add_argument("--out-dir", type=Path, default=REPO / "runs" / "calibrate")
    ap.add_argument("--n-heldout", type=int, default=280, help="synthetic validation items")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--list", action="store_true", help="print the grid and exit")
    a = ap.parse_args(argv)
    if a.list:
        print(json.dumps(CONFIGS, indent=1))
        return 0
    names = a.configs or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        ap.error(f"unknown config(s) {unknown}; known: {list(CONFIGS)}")
    apply_torch_threads(load_profile(a.profile))
    rows = []
    for n in names:
        rows.append(calibrate(n, CONFIGS[n], a.profile, a.out_dir, a.n_heldout, a.seed))
        print(f"[{n}] done in {rows[-1]['seconds']:.0f} s", flush=True)
        if a.json:
            a.json.write_text(json.dumps(rows, indent=1))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
