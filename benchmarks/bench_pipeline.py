"""Batched vs one-at-a-time consultation throughput, side by side in one run.

The whole pipeline (triage -> simulated panel -> attending) on the same synthetic items,
once with the profile's generation batch size and once with batch size 1, repeated; prints
items/s (median, min, max) and the ratio of medians. Target: batched >= 3x.

    python benchmarks/bench_pipeline.py [--profile demo] [--items 64] [--repeats 3]

Uses the tiny base model (random weights, so every completion runs to max_new_tokens on
both sides — the comparison is of the generation loop, not of the answers). Run it on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from mmed.agents.attending import AttendingPhysician
from mmed.agents.build import load_runner, PolicySource, sampling_params, specialist_factory
from mmed.agents.pipeline import PanelBank, as_item_list, run_consultation
from mmed.agents.triage import TriageDoctor
from mmed.config import load_profile
from mmed.data.sets import synthetic_split
from mmed.models import build_tiny_qwen2_5_vl


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--items", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    prof = load_profile(args.profile)
    items = as_item_list(synthetic_split(prof, "test", n=args.items))
    with tempfile.TemporaryDirectory() as tmp:
        base = build_tiny_qwen2_5_vl(tmp + "/base", prof.models.tiny)
        runner = load_runner(prof, PolicySource(str(base), None, "base"), "policy")
        sp = sampling_params(prof)
        style = prof.sampling.prompt_style
        panels = PanelBank(specialist_factory(prof, 0), prof.specialists.panel_size)
        results: dict[str, list[float]] = {}
        for label, bs in (("batched", prof.sampling.batch_size), ("one-at-a-time", 1)):
            runner.batch_size = bs
            triage = TriageDoctor(runner, "model", sampling=sp, style=style)
            attending = AttendingPhysician(runner, sp, style=style)
            run_consultation(items[:4], triage, panels, attending, progress=False)  # warm-up
            rates = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                run_consultation(items, triage, panels, attending, progress=False)
                rates.append(len(items) / (time.perf_counter() - t0))
            results[f"{label} (batch {bs})"] = rates
    print(f"profile={args.profile} items={args.items} repeats={args.repeats} max_new_tokens={prof.sampling.max_new_tokens}")
    for k, v in results.items():
        print(f"{k:<26} items/s median {statistics.median(v):7.2f}   min {min(v):7.2f}   max {max(v):7.2f}")
    a, b = (statistics.median(v) for v in results.values())
    print(f"ratio batched / one-at-a-time (medians): {a / b:.1f}x  (target >= 3x)")


if __name__ == "__main__":
    main()
