"""Benchmark: two independent curriculum trainings one after another vs in two worker processes.

The trainings are what notebook 04 runs for two seeds: the C-MARL curriculum (every stage of
the profile) of seeds 0 and 1 from the same cold-started attending, through
:func:`mmed.eval.replicates.train_curricula` — ``workers=1`` (in this process, one after
another, with the profile's torch threads) and ``workers=2`` (:func:`mmed.parallel.run_jobs`:
two ``spawn`` worker processes, each with the profile's torch threads and its share of the
cores). Each repeat trains into fresh copies of the cold-started run folder, so no training
is reused; the wall time includes model loading. The worker pool is kept between steps of a
process (:func:`mmed.parallel.run_jobs`), so the first parallel repeat also pays the
workers' start (a fresh interpreter importing torch, transformers and TRL), printed apart;
the medians are over all repeats.

Usage::

    python benchmarks/bench_parallel.py --profile smoke [--repeats 3] [--run-dir R]

``--run-dir`` reuses a run's cold-started attending (otherwise one is made in a temporary
folder first, not timed). Prints the machine load (``os.getloadavg``) before and after, the
seconds of every repeat, the medians, and as its last line ``speedup <sequential median /
parallel median>``. Run it on an otherwise idle machine: on a shared one the ratio says
little.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", default=None, help="a run whose attending is cold-started (copied, never changed)")
    a = ap.parse_args()
    if a.repeats < 1:
        ap.error("--repeats must be >= 1")

    os.environ.setdefault("MMED_PROGRESS", "0")  # no bars in the timed output
    from mmed.config import apply_torch_threads, load_profile
    from mmed.rl.cold_start import ensure_cold_start
    from mmed.quiet import quiet_libraries
    from mmed.parallel import usable_cores
    from mmed.eval.replicates import train_curricula
    from mmed.runs import Run

    quiet_libraries()
    prof = load_profile(a.profile)
    apply_torch_threads(prof)
    tmp = Path(tempfile.mkdtemp(prefix="bench_parallel_"))
    try:
        cold = Path(a.run_dir) if a.run_dir else tmp / "cold"
        if a.run_dir is None:
            ensure_cold_start(Run.open(cold, profile=prof.name, seed=a.seed), prof, "attending", a.seed)
        seeds = [a.seed, a.seed + 1]
        print(f"profile {prof.name}: C-MARL curricula of seeds {seeds} ({len(prof.curriculum.stages)} stages), "
              f"{usable_cores()} usable cores, torch threads {prof.torch_threads}")
        print(f"load before: {os.getloadavg()}")
        times: dict[int, list[float]] = {1: [], 2: []}
        for r in range(a.repeats):
            for workers in (1, 2):
                root = tmp / f"r{r}_w{workers}"
                shutil.copytree(cold, root, ignore=shutil.ignore_patterns("seeds", "cmarl"))
                t0 = time.perf_counter()
                train_curricula(Run.open(root), prof, seeds, a.seed, [None], "validation", workers=workers, log=None)
                times[workers].append(time.perf_counter() - t0)
                note = " (includes starting the worker pool)" if (r, workers) == (0, 2) else ""
                print(f"repeat {r}: workers={workers} {times[workers][-1]:.1f} s{note}", flush=True)
                shutil.rmtree(root)
        print(f"load after: {os.getloadavg()}")
        seq, par = statistics.median(times[1]), statistics.median(times[2])
        print(f"sequential median {seq:.1f} s, parallel median {par:.1f} s ({a.repeats} repeats)")
        print(f"speedup {seq / par:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
