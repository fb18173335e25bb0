"""benchmarks/bench_demo.py's accounting helpers (the clean-clone demo's timing itself is a
benchmark, not a test): which processes are under ``make``, what kind each is, and how busy
the cores were per window."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads Linux's /proc")

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_demo.py"
_spec = importlib.util.spec_from_file_location("bench_demo", _PATH)
bench_demo = importlib.util.module_from_spec(_spec)
sys.modules["bench_demo"] = bench_demo
_spec.loader.exec_module(bench_demo)


def test_descendants_and_kinds():
    procs = {1: (0, 0.0, "init"), 10: (1, 5.0, "make demo PROFILE=demo"),
             11: (10, 30.0, ".venv/bin/uv pip install --python .venv/bin/python -e ."),
             12: (10, 15.0, ".venv/bin/python -m mmed notebooks --profile demo --run-dir runs/demo"),
             13: (12, 40.0, ".venv/bin/python -m ipykernel_launcher -f /tmp/k.json"),
             14: (13, 200.0, ".venv/bin/python -B -c from multiprocessing.spawn import spawn_main; spawn_main()"),
             20: (1, 9.0, "something else")}
    assert bench_demo.descendants(procs, 10) == {10, 11, 12, 13, 14}
    assert bench_demo.descendants(procs, 99) == set()
    assert [bench_demo.kind(procs[p][2]) for p in (10, 11, 12, 13, 14)] == [
        "other", "venv install", "notebook runner", "notebook kernels", "worker processes"]


def test_this_process_is_read_from_proc():
    me = bench_demo.read_processes()[os.getpid()]
    assert me[0] == os.getppid() and me[1] > 0 and ("pytest" in me[2] or "python" in me[2])


def test_per_kind_and_busy_windows_from_samples():
    s = bench_demo.Sampler(root=0)
    kernel, worker = "python -m ipykernel_launcher -f k.json", "python -c from multiprocessing.spawn import spawn_main"
    # 40 s: a kernel using one core throughout, a worker using one core for the first 20 s only
    for t in range(41):
        procs = {1: (float(t), kernel)}
        if t <= 20:
            procs[2] = (float(t), worker)
        s.samples.append((1000.0 + t, procs))
    assert s.per_kind() == {"notebook kernels": 40.0, "worker processes": 20.0}
    windows = s.busy_windows(width=20.0)
    assert [(round(a), round(b)) for a, b, _ in windows] == [(0, 20), (20, 40)]
    assert [round(busy, 2) for *_, busy in windows] == [2.0, 1.0]


def test_compare_figures_runs_the_clones_venv_python_and_compares_its_committed_csvs(tmp_path, monkeypatch):
    # the clone's .venv/bin/python is a symlink (as a venv's is): it must be run by that path, not the
    # file it points to (outside the venv, without the venv's packages)
    clone = tmp_path / "clone"
    (clone / "figures").mkdir(parents=True)
    (clone / "figures" / "a.csv").write_text("x\n1\n")
    (clone / "figures" / "b.csv").write_text("x\n2\n")
    real = tmp_path / "elsewhere" / "python"
    real.parent.mkdir()
    real.write_text('#!/bin/bash\ncase "$0" in */.venv/bin/python) ;; *) echo "not the venv: $0" >&2; exit 3;; esac\n'
                    'out="${@: -1}"; mkdir -p "$out"; printf "x\\n1\\n" > "$out/a.csv"; printf "x\\n9\\n" > "$out/b.csv"\n')
    real.chmod(0o755)
    (clone / ".venv" / "bin").mkdir(parents=True)
    (clone / ".venv" / "bin" / "python").symlink_to(real)
    monkeypatch.chdir(tmp_path)  # relative paths, as --keep may give
    assert bench_demo.compare_figures(Path("clone"), "demo", Path("clone/.venv/bin/python")) == [
        "same figures/a.csv", "DIFF figures/b.csv"]
    (clone / ".venv" / "bin" / "python").unlink()
    (clone / ".venv" / "bin" / "python").symlink_to(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        bench_demo.compare_figures(clone, "demo", clone / ".venv" / "bin" / "python")
