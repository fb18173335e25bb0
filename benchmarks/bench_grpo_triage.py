"""Benchmark: seconds per GRPO step and peak memory of the triage doctor's training
(:func:`mmed.rl.triage.train_triage`) for the ``smoke`` and ``demo`` set-ups.

Goal: a demo GRPO step (``triage_grpo`` of ``demo.yaml``: a batch of 64 completions = 8 prompts x
8 completions, up to 40 tokens each) in about a second on 2 CPU cores, so that notebook 03's training fits its
5-minute budget with room for evaluation; peak memory well under 2 GiB.

Each repeat is a fresh child process (``--child``) that copies a run holding the cold start,
trains ``--steps`` GRPO steps through ``train_triage`` (checkpoints as the profile says) and
reports the wall time of every optimizer step (callback ``on_step_begin`` → ``on_step_end``:
rollout generation, rewards, loss, backward, optimizer) and its own peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``: the whole process — Python, torch, the model
and the images — measured after imports and again after training). The first step of each
repeat is reported apart (warm-up); the others make the per-step distribution (median, IQR,
min, max over all repeats). ``--threads 1 2`` compares torch CPU thread counts (default: the
profile's ``torch_threads``).

Usage::

    python benchmarks/bench_grpo_triage.py                      # smoke and demo, 3 repeats x 6 steps
    python benchmarks/bench_grpo_triage.py --profiles demo --repeats 5 --steps 8 --threads 1 2
    python benchmarks/bench_grpo_triage.py --out bench_triage.json

Timings on a shared machine are only comparable within one invocation: the load average
(``os.getloadavg``) is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _maxrss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS)
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 / (1024 if sys.platform == "darwin" else 1)


def child(profile_name: str, cold_run: str, work: str, steps: int, threads: int | None, seed: int) -> dict:
    """One repeat: copy the cold run, train ``steps`` GRPO steps, return times and memory."""
    import torch
    from _timing import StepTimer  # benchmarks/ is sys.path[0] when a script runs

    from mmed.config import apply_torch_threads, load_profile
    from mmed.rl.triage import train_triage
    from mmed.runs import Run

    prof = load_profile(profile_name)
    apply_torch_threads(prof)
    if threads is not None:
        torch.set_num_threads(threads)
    rss0 = _maxrss_mib()
    dst = Path(work) / "run"
    shutil.copytree(cold_run, dst)
    timer = StepTimer()
    t0 = time.perf_counter()
    tr = train_triage(prof, Run.open(dst, profile=prof.name, seed=seed), seed=seed, max_steps=steps, callbacks=[timer])
    total = time.perf_counter() - t0
    return {"step_times": timer.times, "total_s": total, "steps": tr.result.steps, "threads": torch.get_num_threads(),
            "rss_after_imports_mib": rss0, "peak_rss_mib": _maxrss_mib(),
            "zero_std_mean": sum(r["frac_reward_zero_std"] for r in tr.result.log) / max(len(tr.result.log), 1)}


def make_cold_run(profile_name: str, root: Path, seed: int) -> Path:
    """A run folder holding the base model and the triage cold start of ``profile_name``."""
    from mmed.config import apply_torch_threads, load_profile
    from mmed.rl.cold_start import ensure_cold_start
    from mmed.runs import Run

    prof = load_profile(profile_name)
    apply_torch_threads(prof)
    run = Run.open(root, profile=prof.name, seed=seed)
    ensure_cold_start(run, prof, "triage", seed)
    return run.root


def _stats(xs: list[float]) -> dict:
    if not xs:
        return {"n": 0}
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return {"n": len(xs), "median": statistics.median(xs), "q1": q[0], "q3": q[2], "min": min(xs), "max": max(xs)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", nargs="+", default=["smoke", "demo"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6, help="GRPO steps per repeat (the first is warm-up)")
    ap.add_argument("--threads", type=int, nargs="*", default=None, help="torch thread counts to compare")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", default=None, help="a run holding the profile's triage cold start (one profile only)")
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    ap.add_argument("--child", nargs=5, metavar=("PROFILE", "COLD_RUN", "WORK", "STEPS", "THREADS"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        p, cold, work, steps, threads = a.child
        print("RESULT " + json.dumps(child(p, cold, work, int(steps), None if threads == "-" else int(threads), a.seed)))
        return 0
    if a.run_dir and len(a.profiles) != 1:
        ap.error("--run-dir goes with exactly one profile")
    print(f"cpus {os.cpu_count()}, load average before {os.getloadavg()}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-triage-") as tmp:
        for name in a.profiles:
            t0 = time.perf_counter()
            cold = Path(a.run_dir) if a.run_dir else make_cold_run(name, Path(tmp) / f"cold-{name}", a.seed)
            print(f"[{name}] cold run ready in {time.perf_counter() - t0:.1f} s ({cold})", flush=True)
            for threads in a.threads or [None]:
                key = f"{name}/threads={threads if threads is not None else 'profile'}"
                reps = []
                for r in range(a.repeats):
                    work = Path(tmp) / f"{name}-{threads}-{r}"
                    work.mkdir()
                    out = subprocess.run(
                        [sys.executable, __file__, "--seed", str(a.seed), "--child", name, str(cold), str(work),
                         str(a.steps), "-" if threads is None else str(threads)],
                        capture_output=True, text=True, check=False,
                    )
                    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
                    if out.returncode != 0 or not line:
                        print(out.stderr[-3000:], file=sys.stderr)
                        raise SystemExit(f"repeat {r} of {key} failed (exit {out.returncode})")
                    reps.append(json.loads(line[0][7:]))
                    shutil.rmtree(work, ignore_errors=True)
                later = [t for rep in reps for t in rep["step_times"][1:]]
                first = [rep["step_times"][0] for rep in reps if rep["step_times"]]
                peaks = [rep["peak_rss_mib"] for rep in reps]
                results[key] = {
                    "threads": reps[0]["threads"], "repeats": len(reps), "steps": a.steps,
                    "s_per_step": _stats(later), "first_step_s": _stats(first), "peak_rss_mib": _stats(peaks),
                    "rss_after_imports_mib": _stats([rep["rss_after_imports_mib"] for rep in reps]),
                    "zero_std_mean": statistics.mean(rep["zero_std_mean"] for rep in reps),
                }
                s, m = results[key]["s_per_step"], results[key]["peak_rss_mib"]
                print(f"{key:24s} threads={reps[0]['threads']}  s/step median {s['median']:.3f} "
                      f"(IQR {s['q1']:.3f}-{s['q3']:.3f}, min {s['min']:.3f}, max {s['max']:.3f}, n={s['n']}); "
                      f"first step {results[key]['first_step_s']['median']:.2f} s; "
                      f"peak RSS median {m['median']:.0f} MiB (min {m['min']:.0f}, max {m['max']:.0f}); "
                      f"zero-std groups {results[key]['zero_std_mean']:.2f}", flush=True)
    print(f"load average after {os.getloadavg()}")
    if a.out:
        Path(a.out).write_text(json.dumps({"cpus": os.cpu_count(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
