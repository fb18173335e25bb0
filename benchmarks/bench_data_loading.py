"""Time the real-data loaders (speed goal: the MEVF split loads in a few seconds on 2 cores).

Usage: python benchmarks/bench_data_loading.py [DATA_ROOT]   (default ../shared/data)

Prints seconds per step; images are never decoded (they stay file paths in the dataset).
Timings only - nothing here asserts a speed; tests assert values, not time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mmed.data import image_disjoint_split, leakage_report, load_benchmark, load_triage_images


def timed(label: str, fn):
    t0 = time.perf_counter()
    out = fn()
    print(f"{label:<46} {time.perf_counter() - t0:6.2f} s")
    return out


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    rad = root / "vqa_rad"
    if not rad.is_dir():
        sys.exit(f"no VQA-RAD copy under {root}")
    test = timed("vqa_rad mevf test (451 items)", lambda: load_benchmark("vqa_rad", rad, "test"))
    train = timed("vqa_rad mevf train (3,064 items)", lambda: load_benchmark("vqa_rad", rad, "train"))
    timed("vqa_rad official all (2,248 items)", lambda: load_benchmark("vqa_rad", rad, "all"))
    timed("leakage_report(mevf train, test)", lambda: leakage_report(train, test))
    timed("image_disjoint_split(mevf train, 0.2)", lambda: image_disjoint_split(train, 0.2, 0))
    if (root / "triage").is_dir():
        timed("load_triage_images (253 images)", lambda: load_triage_images(root / "triage"))


if __name__ == "__main__":
    main()
