"""Benchmark: C-MARL curriculum step time at γ = 0 and γ > 0 next to a plain TRL GRPOTrainer.

Three ways to run the same GRPO optimizer steps of the attending physician, on the same
rows (the Medium stratum of the profile's stratified training set), from the same
cold-started policy and with the same TRL settings (``attending_grpo`` of the profile):

- ``plain``: ``trl.GRPOTrainer`` built directly (no step log, no checkpoints);
- ``curriculum γ=0``: :func:`mmed.rl.curriculum.train_stage` with entropy coefficient 0;
- ``curriculum γ>0``: the same with ``--gamma`` (TRL then computes entropies with gradient).

Each configuration is run ``--repeats`` times (a new trainer each time) for ``--steps``
optimizer steps; the first step of every run is reported apart (warm-up: lazy imports,
allocator) and the others make up the per-step distribution (median, IQR, min, max). A step
is timed from ``on_step_begin`` to ``on_step_end``: rollouts (generation), rewards, loss,
backward and optimizer step. Logging and the curriculum's per-``save_steps`` checkpoints
(which ``plain`` skips) come after ``on_step_end``; they are in the whole-run time, with
model loading and trainer construction.

Usage::

    python benchmarks/bench_curriculum.py --profile demo --repeats 3 --steps 5 [--gamma 0.05] [--run-dir R]

``--run-dir`` reuses a run's cold-started attending (otherwise one is made in a temporary
folder). The machine load (``os.getloadavg``) is printed before and after: timings on a
shared machine are only comparable within one invocation.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _timing import StepTimer  # noqa: E402  (benchmarks/ is sys.path[0] when a script runs)


def plain_grpo(profile, base: str, rows, out: Path, steps: int, seed: int) -> list[float]:
    """Steps of a plain TRL GRPOTrainer with the profile's attending settings."""
    from trl import GRPOTrainer
    from transformers.trainer_callback import PrinterCallback

    from mmed.models import load_policy, lora_config
    from mmed.rl.grpo import trl_grpo_config
    from mmed.rl.rewards import reward_funcs_for

    model, processor = load_policy(base, min_pixels=profile.image.min_pixels, max_pixels=profile.image.max_pixels)
    timer = StepTimer()
    args = trl_grpo_config(profile.attending_grpo, profile, out, max_steps=steps, seed=seed, save_strategy="no")
    tr = GRPOTrainer(model=model, reward_funcs=reward_funcs_for("attending"), args=args, train_dataset=rows,
                     processing_class=processor, peft_config=lora_config(profile.models.lora), callbacks=[timer])
    tr.remove_callback(PrinterCallback)
    tr.train()
    return timer.times


def curriculum_steps(profile, stage, train, base: str, out: Path, steps: int, gamma: float, seed: int) -> list[float]:
    from mmed.rl.curriculum import train_stage

    timer = StepTimer()
    train_stage(profile, stage, train, base, out, None, seed, entropy_coef=gamma, max_steps=steps, callbacks=[timer])
    return timer.times


def describe(xs: list[float]) -> str:
    if not xs:
        return "n/a"
    q = statistics.quantiles(xs, n=4) if len(xs) >= 2 else [xs[0]] * 3
    return (f"median {statistics.median(xs):6.2f} s  IQR [{q[0]:.2f}, {q[2]:.2f}]  "
            f"min {min(xs):.2f}  max {max(xs):.2f}  (n={len(xs)})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--run-dir", default=None, help="a run holding the cold-started attending (else a temp run)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per run (the first is warm-up)")
    ap.add_argument("--gamma", type=float, default=0.05, help="entropy coefficient of the γ > 0 run")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.steps < 2 or a.repeats < 1 or a.gamma <= 0:
        ap.error("need --steps >= 2, --repeats >= 1 and --gamma > 0")

    from mmed.config import apply_torch_threads, load_profile
    from mmed.rl.cold_start import ensure_cold_start
    from mmed.rl.curriculum import plan_stages, stage_rows, stratified_split
    from mmed.runs import Run

    prof = load_profile(a.profile)
    threads = apply_torch_threads(prof)
    tmp = tempfile.TemporaryDirectory(prefix="bench_cmarl_")
    run = Run.open(a.run_dir or Path(tmp.name) / "run", profile=prof.name, seed=a.seed)
    print(f"profile {prof.name}: batch {prof.attending_grpo.per_device_train_batch_size} completions, "
          f"{prof.attending_grpo.num_generations} generations, max_completion_length "
          f"{prof.attending_grpo.max_completion_length}; torch threads {threads}; load average before: {os.getloadavg()}", flush=True)
    ensure_cold_start(run, prof, "attending", a.seed)
    base = str(run.path("attending", "sft"))
    n_pool = min(prof.data.synthetic.n_train, prof.attending_grpo.n_train_items)
    train = stratified_split(prof, "train", a.seed, run, n=n_pool)
    stage = next(s for s in plan_stages(prof) if "medium" in s.strata)
    rows = stage_rows(train, stage, prof, a.seed)

    results: dict[str, dict[str, list[float]]] = {}
    configs = [("plain GRPOTrainer", None), ("curriculum γ=0", 0.0), (f"curriculum γ={a.gamma}", a.gamma)]
    for r in range(a.repeats):
        for name, gamma in configs:  # interleaved, so slow drifts of the machine hit all three alike
            out = Path(tmp.name) / f"{name.split()[0]}_{gamma}_{r}"
            t0 = time.perf_counter()
            if gamma is None:
                times = plain_grpo(prof, base, rows, out, a.steps, a.seed + r)
            else:
                times = curriculum_steps(prof, stage, train, base, out, a.steps, gamma, a.seed + r)
            total = time.perf_counter() - t0
            d = results.setdefault(name, {"first": [], "steps": [], "total": []})
            d["first"].append(times[0])
            d["steps"].extend(times[1:])
            d["total"].append(total)
            print(f"  repeat {r + 1}/{a.repeats} {name:24s} first {times[0]:.2f} s, then "
                  + " ".join(f"{t:.2f}" for t in times[1:]) + f"  (run incl. model load {total:.1f} s)", flush=True)
    print(f"\nper optimizer step after the first ({a.repeats} repeats x {a.steps - 1} steps):")
    for name, d in results.items():
        print(f"  {name:24s} {describe(d['steps'])} | first step median {statistics.median(d['first']):.2f} s"
              f" | whole run median {statistics.median(d['total']):.1f} s")
    base_med = statistics.median(results["plain GRPOTrainer"]["steps"])
    for name, d in results.items():
        print(f"  {name:24s} x{statistics.median(d['steps']) / base_med:.2f} of plain")
    print(f"load average after: {os.getloadavg()} (2 cores here; > 2 means other work shared the CPU)")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
