"""What the tiny base's pre-training buys: answer-letter accuracy on synthetic *validation*
items per question type, and seconds, for variants of ``models.pretrain``.

Each variant is a named overlay of the profile's ``models.pretrain`` keys; the base is
built from scratch (no cache) into ``--out-dir/<name>``. Goal: the
default recipe reads the image well above chance, and the ablations show which phase
matters (``answers_only``: no vision phase — the answer letter alone as supervision).

    python benchmarks/bench_pretrain.py --variants default answers_only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mmed.config import apply_torch_threads, load_profile  # noqa: E402

VARIANTS: dict[str, dict] = {
    "default": {},
    "answers_only": {"vision_steps": 0},
    "vision_unfrozen": {"freeze_vision": False},
    "answers_x2": {"answer_steps": 1800},
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--out-dir", type=Path, default=REPO / "runs" / "bench_pretrain")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    from mmed.models import build_tiny_qwen2_5_vl
    from mmed.rl.pretrain import pretrain_base

    rows = []
    for name in a.variants:
        prof = load_profile(a.profile, overrides={"models": {"pretrain": {**VARIANTS[name], "enabled": True}}})
        apply_torch_threads(prof)
        init = build_tiny_qwen2_5_vl(a.out_dir / name / "init", prof.models.tiny, min_pixels=prof.image.min_pixels,
                                     max_pixels=prof.image.max_pixels)
        rep = pretrain_base(init, a.out_dir / name / "base", prof)
        after = rep["after"]
        rows.append({"variant": name, "overlay": VARIANTS[name], "accuracy": after["accuracy"], "chance": after["chance"],
                     "by_type": {t: v["accuracy"] for t, v in after["by_type"].items()},
                     "top_answer_share": after["answers"]["top_answer_share"], "seconds": rep["seconds"],
                     "load": os.getloadavg()[0]})
        print(json.dumps(rows[-1]), flush=True)
    types = sorted({t for r in rows for t in r["by_type"]})
    print("| variant | accuracy | chance | " + " | ".join(types) + " | top answer share | s |")
    print("|" + "---|" * (5 + len(types)))
    for r in rows:
        print(f"| {r['variant']} | {100 * r['accuracy']:.1f} | {100 * r['chance']:.1f} | "
              + " | ".join(f"{100 * r['by_type'].get(t, float('nan')):.1f}" for t in types)
              + f" | {100 * r['top_answer_share']:.0f}% | {r['seconds']:.0f} |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
