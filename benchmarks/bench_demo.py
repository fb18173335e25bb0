"""Benchmark: a clean-clone ``make demo`` — wall time, CPU time, and how busy the cores were.

Goal (issue 14): a fresh clone's ``make demo`` (venv included, three seeds) in at most
15 minutes on 2 CPU cores.

What it does: ``git clone`` of this repository (its committed HEAD, nothing uncommitted) into
a temporary folder (or ``--keep DIR``); empty caches there (``MMED_BASE_CACHE``,
``MMED_SYNTHETIC_CACHE``, ``UV_CACHE_DIR``: a first run on a machine); the real data this
checkout sees (``mmed.runs.default_data_root``: ``../shared/data`` or ``MMED_DATA_ROOT``),
passed to the clone as ``MMED_DATA_ROOT`` (a clone elsewhere has no ``../shared`` beside it)
and printed; ``make demo PROFILE=<profile>`` in the clone, its output in ``<tmp>/make.log``. Every second it reads, from ``/proc`` (Linux), the CPU
time (user + system) of every process under ``make``. At the end it prints the wall time;
the CPU time of all of them (``resource.getrusage(RUSAGE_CHILDREN)``: exact) and how busy
the cores were on average; the CPU time per kind of process (the venv's installers, the
notebook runner, the notebooks' kernels, worker processes, others: from the samples, so a
process's last second may be missing); the runner's ``done in`` lines; the 20-s windows in
which fewer than 3/4 of the cores were busy; with ``--compare-figures``, whether the run's
``figures/*.csv`` (``python -m mmed figures``) are byte for byte the clone's committed ones
(meaningful for the demo profile only); and, as its last line, ``seconds <wall>``. The
temporary folder (clone, venv, caches: ~2 GB) is removed at the end, also when ``make``
fails (then the end of its log is printed); ``--keep`` keeps the clone and removes the rest.

Usage::

    python benchmarks/bench_demo.py                       # the demo profile (~13-15 min on 2 cores)
    python benchmarks/bench_demo.py --compare-figures     # ... and compare the figures' CSVs
    python benchmarks/bench_demo.py --profile smoke       # the wiring only (~3 min)
    python benchmarks/bench_demo.py --keep /tmp/demo      # keep the clone (and its run) there

Run it on an otherwise idle machine: anything else running takes the cores it measures. The
load average before and after is printed.
"""

from __future__ import annotations

import argparse
import collections
import filecmp
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_processes() -> dict[int, tuple[int, float, str]]:
    """``{pid: (parent pid, CPU seconds so far, command line)}`` of every process now
    (``/proc/<pid>/stat`` fields 14–15, utime + stime in clock ticks)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            fields = stat[stat.rfind(")") + 2:].split()
            cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        out[int(name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, cmd.strip())
    return out


def descendants(procs: dict[int, tuple[int, float, str]], root: int) -> set[int]:
    """``root`` and every process below it."""
    children = collections.defaultdict(list)
    for pid, (ppid, _, _) in procs.items():
        children[ppid].append(pid)
    seen, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in procs and pid not in seen:
            seen.add(pid)
            todo.extend(children[pid])
    return seen


def kind(cmd: str) -> str:
    """The kind of a process of ``make demo``, from its command line."""
    if "ipykernel" in cmd:
        return "notebook kernels"
    if "multiprocessing" in cmd:
        return "worker processes"
    if "mmed notebooks" in cmd:
        return "notebook runner"
    if " pip " in f" {cmd} " or "uv pip" in cmd or "compileall" in cmd or " -m venv" in cmd:
        return "venv install"
    return "other"


class Sampler(threading.Thread):
    """Samples :func:`read_processes` under ``root`` every ``period`` s until :meth:`stop`."""

    def __init__(self, root: int, period: float = 1.0):
        super().__init__(daemon=True)
        self.root, self.period = root, period
        self.samples: list[tuple[float, dict[int, tuple[float, str]]]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            procs = read_processes()
            under = descendants(procs, self.root)
            self.samples.append((time.time(), {p: (procs[p][1], procs[p][2]) for p in under}))
            self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def per_kind(self) -> dict[str, float]:
        """CPU seconds per :func:`kind`, from each process's last sample."""
        last: dict[int, tuple[float, str]] = {}
        for _, procs in self.samples:
            for pid, (cpu, cmd) in procs.items():
                last[pid] = (cpu, cmd if len(cmd) >= len(last.get(pid, (0, ""))[1]) else last[pid][1])
        out: dict[str, float] = collections.defaultdict(float)
        for cpu, cmd in last.values():
            out[kind(cmd)] += cpu
        return dict(out)

    def busy_windows(self, width: float = 20.0) -> list[tuple[float, float, float]]:
        """``(start s, end s, cores busy)`` per ``width``-second window."""
        rows, t0 = [], self.samples[0][0] if self.samples else 0.0
        for (ta, a), (tb, b) in zip(self.samples, self.samples[1:]):
            used = sum(cpu - a[p][0] if p in a else cpu for p, (cpu, _) in b.items())
            rows.append((ta - t0, tb - ta, used))
        out, i = [], 0
        while i < len(rows):
            w = [rows[i]]
            while i + len(w) < len(rows) and sum(r[1] for r in w) < width:
                w.append(rows[i + len(w)])
            span = sum(r[1] for r in w)
            out.append((w[0][0], w[0][0] + span, sum(r[2] for r in w) / span if span else 0.0))
            i += len(w)
        return out


def compare_figures(clone: Path, profile: str, py: Path) -> list[str]:
    """``same <file>`` / ``DIFF <file>`` / ``missing <file>`` for every ``figures/*.csv`` the
    clone holds (the committed ones) against the run's (``python -m mmed figures --run-dir
    <run> --fig-dir <clone>/bench-figures``); the figures command's own output when it fails."""
    # absolute(), not resolve(): a venv's python is a symlink to the base interpreter, whose
    # resolved path would run outside the venv
    clone, py = clone.absolute(), py.absolute()
    fig_dir = clone / "bench-figures"
    done = subprocess.run([str(py), "-m", "mmed", "figures", "--run-dir", str(clone / "runs" / profile),
                           "--fig-dir", str(fig_dir)], cwd=clone, capture_output=True, text=True)
    if done.returncode != 0:
        return [f"python -m mmed figures failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-2000:]}"]
    lines = []
    for f in sorted((clone / "figures").glob("*.csv")):
        g = fig_dir / f.name
        lines.append(f"{'missing' if not g.exists() else 'same' if filecmp.cmp(f, g, shallow=False) else 'DIFF'} "
                     f"figures/{f.name}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="demo", help="PROFILE of make demo (default: demo)")
    ap.add_argument("--keep", default=None, help="clone into this folder (must not exist) and keep it")
    ap.add_argument("--compare-figures", action="store_true", help="compare the run's figures/*.csv with the committed ones")
    ap.add_argument("--period", type=float, default=1.0, help="seconds between CPU samples (>= 0.1)")
    a = ap.parse_args(argv)
    if a.period < 0.1:
        ap.error(f"--period must be >= 0.1 s, got {a.period}")
    if not Path("/proc/self/stat").exists():
        ap.error("needs Linux's /proc to sample the processes' CPU time")
    if a.keep and Path(a.keep).exists():
        ap.error(f"--keep {a.keep}: the folder exists; give a new one")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    sys.path.insert(0, str(ROOT))
    from mmed.parallel import usable_cores
    from mmed.runs import default_data_root

    data_root = default_data_root()
    cores = usable_cores()
    tmp = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    clone = Path(a.keep).absolute() if a.keep else tmp / "clone"
    print(f"commit {commit}, profile {a.profile}, usable cores {cores}, load average before {os.getloadavg()}; "
          f"real data: {data_root or 'none (synthetic only)'}", flush=True)
    try:
        return _measure(a, commit, tmp, clone, data_root, cores)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _measure(a: argparse.Namespace, commit: str, tmp: Path, clone: Path, data_root: Path | None, cores: int) -> int:
    """The clone, ``make demo`` and the report of :func:`main` (``tmp``: removed by the caller)."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = dict(os.environ)
    env["MMED_DATA_ROOT"] = str(data_root) if data_root is not None else ""
    for var in ("MMED_BASE_CACHE", "MMED_SYNTHETIC_CACHE", "UV_CACHE_DIR"):
        (tmp / var).mkdir()
        env[var] = str(tmp / var)
    env.pop("VIRTUAL_ENV", None)
    log = tmp / "make.log"
    print(f"make demo PROFILE={a.profile} in {clone} (output: {log}) ...", flush=True)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(["make", "demo", f"PROFILE={a.profile}"], cwd=clone, env=env, stdout=fh,
                                stderr=subprocess.STDOUT)
        sampler = Sampler(proc.pid, a.period)
        sampler.start()
        rc = proc.wait()
    wall = time.perf_counter() - t0
    sampler.stop()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    text = log.read_text(errors="replace")
    print("\n".join(line.strip() for line in text.splitlines()
                    if " done in " in line or line.startswith("all ") or line.endswith(": ok") or "FAIL" in line))
    if rc != 0:
        print(f"make demo failed (exit {rc}); the end of its log:\n{text[-3000:]}")
        return rc
    print(f"wall {wall:.1f} s ({wall / 60:.1f} min); CPU {cpu:.0f} core-seconds: {cpu / wall:.2f} of {cores} cores busy "
          f"on average ({100 * cpu / wall / cores:.0f}%)")
    print("CPU by kind of process (core-seconds, sampled): " + json.dumps({k: round(v) for k, v in sorted(sampler.per_kind().items())}))
    idle = [(s, e, b) for s, e, b in sampler.busy_windows() if b < 0.75 * cores]
    print(f"20-s windows under {0.75 * cores:g} cores busy: "
          + (", ".join(f"{s:.0f}-{e:.0f} s {b:.2f}" for s, e, b in idle) or "none"))
    if a.compare_figures:
        print("\n".join(compare_figures(clone, a.profile, clone / ".venv" / "bin" / "python")))
    print(f"load average after {os.getloadavg()}")
    print(f"seconds {wall:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
