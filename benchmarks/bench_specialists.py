"""Benchmark of the specialist stage against a real OpenAI-compatible server.

Prints, in one run:

1. the specialist stage's first pass (empty cache) vs its cached re-run (a new factory and
   cache object on the same folder, as a second process would): wall time, requests that
   reached the server (its access log) and calls counted by the stats; targets: 0
   requests on the re-run, >= 50x faster;
2. throughput (opinions/s) with the cache off at endpoint concurrency 1, 4 and 8, with
   repeats (median, min, max).

By default it builds the tiny offline Qwen2.5-VL (smoke profile) and serves it with
``transformers serve`` on loopback (:class:`mmed.agents.serve_local.LocalServer`);
``--base-url`` and ``--model`` point it at a server you run (vLLM, llama.cpp, Ollama),
with the key in ``--api-key-env``.

    python benchmarks/bench_specialists.py
    python benchmarks/bench_specialists.py --items 32 --repeats 5
    python benchmarks/bench_specialists.py --base-url http://127.0.0.1:8000/v1 \\
        --model Qwen/Qwen2.5-VL-7B-Instruct --api-key-env OPENAI_API_KEY

Timings depend on the machine's load; report them with the machine's state.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mmed.agents.backends import make_specialist_factory  # noqa: E402
from mmed.agents.cache import SpecialistCache  # noqa: E402
from mmed.agents.serve_local import LocalServer, build_tiny_model_for_serving  # noqa: E402
from mmed.agents.specialists import consult_panel, make_panel  # noqa: E402
from mmed.config import OpenAIConfig, SpecialistsConfig  # noqa: E402


def make_items(n: int) -> list[dict]:
    """``n`` closed items with distinct 64x64 images (distinct cache keys)."""
    return [
        {
            "id": f"bench/{i}", "question": f"Is there an abnormality in image {i}?", "options": ["yes", "no"],
            "answer_idx": i % 2, "answer_type": "closed", "specialty": "Radiologist", "modality": "CT",
            "images": [Image.new("RGB", (64, 64), ((37 * i) % 256, (11 * i) % 256, 128))],
        }
        for i in range(n)
    ]


def stage(cfg: SpecialistsConfig, items: list[dict], k: int, cache) -> tuple[float, dict]:
    """Run one panel of ``k`` over ``items``; returns (seconds, stats)."""
    factory = make_specialist_factory(cfg, seed=0, cache=cache)
    panel = make_panel("Radiologist", k, factory)
    t0 = time.perf_counter()
    out = consult_panel(panel, items, max_concurrency=k)
    dt = time.perf_counter() - t0
    assert len(out) == len(items) and all(len(row) == k for row in out)
    return dt, factory.stats()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=16)
    ap.add_argument("--panel", type=int, default=3, help="panel size K")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--base-url", default=None, help="an existing server; default: start transformers serve")
    ap.add_argument("--model", default=None, help="model name at --base-url (default: the tiny model folder)")
    ap.add_argument("--api-key-env", default="", help="variable holding the key ('' = none)")
    ap.add_argument("--profile", default="smoke", help="profile of the tiny model")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-specialists-"))
    server = None
    if args.base_url is None:
        t0 = time.perf_counter()
        model = str(build_tiny_model_for_serving(work / "tiny", args.profile))
        server = LocalServer(model, log_path=work / "serve.log").start()
        base_url = server.base_url
        print(f"started transformers serve for the tiny model ({args.profile}) in {time.perf_counter() - t0:.1f} s at {base_url}")
    else:
        if not args.model:
            ap.error("--model is required with --base-url")
        model, base_url = args.model, args.base_url
    try:
        oa = OpenAIConfig(model=model, base_url=base_url, api_key_env=args.api_key_env, timeout_s=300.0, max_retries=0,
                          max_concurrency=max(args.concurrency), temperature=0.0, max_tokens=args.max_tokens)
        cfg = SpecialistsConfig(backend="openai", panel_size=args.panel, openai=oa, cache_dir=str(work / "cache"))
        items = make_items(args.items)
        n_op = args.items * args.panel
        req = (lambda: server.request_count()) if server is not None else (lambda: None)

        # 1. first pass vs cached re-run -------------------------------------------------
        r0 = req()
        t_first, s_first = stage(cfg, items, args.panel, SpecialistCache(cfg.cache_dir))
        r1 = req()
        t_again, s_again = stage(cfg, items, args.panel, SpecialistCache(cfg.cache_dir))
        r2 = req()
        srv = (lambda a, b: "n/a" if a is None else str(b - a))
        print(f"\nspecialist stage: {args.items} items x panel of {args.panel} = {n_op} opinions, "
              f"max_tokens={args.max_tokens}, endpoint concurrency {oa.max_concurrency}")
        print(f"{'':28s}{'first pass':>14s}{'cached re-run':>16s}")
        print(f"{'wall time (s)':28s}{t_first:14.3f}{t_again:16.4f}")
        print(f"{'requests seen by server':28s}{srv(r0, r1):>14s}{srv(r1, r2):>16s}")
        print(f"{'calls (stats)':28s}{s_first['calls']:14d}{s_again['calls']:16d}")
        print(f"{'cache hits (stats)':28s}{s_first['cache_hits']:14d}{s_again['cache_hits']:16d}")
        print(f"{'failures':28s}{s_first['failures']:14d}{s_again['failures']:16d}")
        print(f"{'tokens prompt/completion':28s}{s_first['prompt_tokens']:>8d}/{s_first['completion_tokens']:<5d}"
              f"{s_again['prompt_tokens']:>10d}/{s_again['completion_tokens']:<5d}")
        speedup = t_first / max(t_again, 1e-9)
        print(f"speed-up of the re-run: {speedup:.0f}x (target >= 50x); re-run calls: {s_again['calls']} (target 0)")

        # 2. throughput by concurrency (cache off) --------------------------------------
        print(f"\nthroughput, cache off, {n_op} opinions per repeat, {args.repeats} repeats")
        print(f"{'concurrency':>12s}{'median op/s':>13s}{'min':>8s}{'max':>8s}{'failures':>10s}")
        for c in args.concurrency:
            cfg_c = dataclasses.replace(cfg, openai=dataclasses.replace(oa, max_concurrency=c))
            rates, fails = [], 0
            for _ in range(args.repeats):
                dt, st = stage(cfg_c, items, args.panel, False)
                rates.append(n_op / dt)
                fails += st["failures"]
            print(f"{c:12d}{statistics.median(rates):13.2f}{min(rates):8.2f}{max(rates):8.2f}{fails:10d}")
    finally:
        if server is not None:
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
