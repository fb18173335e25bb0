"""Time ``make_synthetic`` (speed goal: ``make_synthetic(2000)`` < 5 s on 2 cores, issue 14).

Usage:
    python benchmarks/bench_synthetic.py --n 2000 --repeats 3     # the goal's measurement
    python benchmarks/bench_synthetic.py --n 500 --repeats 3 --image-size 112 --workers 1
    python benchmarks/bench_synthetic.py --breakdown              # + where one process's time goes

Prints, for ``make_synthetic(n, seed, workers=...)`` over ``--repeats`` seeds: wall and
CPU seconds of this process (median, min, max; the worker processes' CPU is not in it),
every call starting its worker processes afresh, as in a notebook; with ``--breakdown``
one single-process breakdown of where the time goes (drawing the pixels, encoding,
building the dataset) and the storage comparison — PNG bytes encoded here (zlib level 1,
what ``make_synthetic`` stores) vs PIL images handed to ``datasets`` (which encodes them
as PNG at its default level). The load average is printed before and after: on a shared
machine, report it with the numbers. The last line is ``seconds <median wall>``. Timings
only — nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

import PIL.Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mmed.data.schema import items_to_dataset  # noqa: E402
from mmed.data.synthetic import _n_workers, _png, make_synthetic, parse_ref, render, synthetic_item  # noqa: E402


def summary(xs: list[float]) -> str:
    """``median (min .. max)`` of seconds."""
    return f"median {statistics.median(xs):6.2f} s  (min {min(xs):6.2f}, max {max(xs):6.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--difficulty", type=float, default=0.5)
    ap.add_argument("--workers", type=int, default=None,
                    help="drawing processes, this one included (default: make_synthetic's own choice)")
    ap.add_argument("--breakdown", action="store_true", help="also time the stages in one process")
    args = ap.parse_args()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"cores: {os.cpu_count()} (usable {usable})  load average before: {os.getloadavg()}")

    make_synthetic(14, 0, image_size=args.image_size, workers=1)  # warm-up: imports, caches
    walls, cpus = [], []
    for seed in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        ds = make_synthetic(args.n, seed, image_size=args.image_size, difficulty=args.difficulty, workers=args.workers)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        assert len(ds) == args.n
    procs = _n_workers(args.workers, args.n)
    print(f"make_synthetic({args.n}, image_size={args.image_size}) x {args.repeats} seeds, {procs} drawing process(es)")
    print(f"  wall {summary(walls)}   = {1000 * statistics.median(walls) / args.n:.2f} ms/item")
    print(f"  cpu  {summary(cpus)}   (this process only)")
    if args.breakdown:
        breakdown(ds, args.n)
    print(f"load average after: {os.getloadavg()}")
    print(f"seconds {statistics.median(walls):.2f}")


def breakdown(ds, n: int) -> None:
    """Time drawing, PNG encoding and the dataset build of ``ds``'s items in this process."""
    refs = [parse_ref(r) for r in ds["image_ref"]]
    t0 = time.perf_counter()
    arrays = [render(r)[0] for r in refs]
    t_render = time.perf_counter() - t0
    t0 = time.perf_counter()
    pngs = [_png(a) for a in arrays]
    t_png = time.perf_counter() - t0
    base = [dataclasses.replace(synthetic_item(r), images=[]) for r in refs]  # text fields (re-renders; untimed)
    t0 = time.perf_counter()
    items_to_dataset([dataclasses.replace(it, images=[{"bytes": b, "path": None}]) for it, b in zip(base, pngs)])
    t_ds_bytes = time.perf_counter() - t0
    t0 = time.perf_counter()
    items_to_dataset([dataclasses.replace(it, images=[PIL.Image.fromarray(a)]) for it, a in zip(base, arrays)])
    t_ds_pil = time.perf_counter() - t0
    size_png = sum(len(b) for b in pngs) / len(pngs)
    print(f"breakdown for {n} items (one pass, one process):")
    print(f"  draw pixels (render)            {t_render:6.2f} s")
    print(f"  PNG bytes, zlib level 1         {t_png:6.2f} s   ({size_png / 1024:.1f} KiB/image)")
    print(f"  dataset from PNG bytes          {t_ds_bytes:6.2f} s   (PNG bytes + dataset: {t_png + t_ds_bytes:.2f} s)")
    print(f"  dataset from PIL images         {t_ds_pil:6.2f} s   (datasets encodes PNG at its default level)")


if __name__ == "__main__":
    main()
