"""Worker processes in a program read from standard input (mmed.processes)."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

from mmed.processes import can_spawn_workers

ROOT = Path(__file__).resolve().parent.parent


def test_can_spawn_workers_follows_the_main_module(monkeypatch, tmp_path):
    script = tmp_path / "script.py"
    script.write_text("")
    cases = [(types.SimpleNamespace(__spec__=None, __file__="<stdin>"), False),
             (types.SimpleNamespace(__spec__=None, __file__=str(script)), True),
             (types.SimpleNamespace(__spec__=None), True),  # interactive interpreter, python -c
             (types.SimpleNamespace(__spec__=types.SimpleNamespace(name="mmed"), __file__="<stdin>"), True)]  # python -m
    for main, expected in cases:
        monkeypatch.setitem(sys.modules, "__main__", main)
        assert can_spawn_workers() is expected, main


def test_a_program_read_from_stdin_draws_and_trains_in_this_process():
    """`python - < script`: spawn workers could not re-run its __main__, so the synthetic set
    is drawn here (identical items) and the training pool is one process."""
    program = (
        "from mmed.config import load_profile\n"
        "from mmed.data.synthetic import _n_workers, make_synthetic\n"
        "from mmed.parallel import worker_count\n"
        "ds = make_synthetic(520, 3, workers=None)\n"
        "print(_n_workers(None, 520), worker_count(load_profile('smoke'), 4, None), len(ds), ds[519]['id'])\n"
    )
    out = subprocess.run([sys.executable, "-"], input=program, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    n_draw, n_pool, n_items, last_id = out.stdout.split()[-4:]
    assert (n_draw, n_pool, n_items) == ("1", "1", "520")
    from mmed.data.synthetic import make_synthetic

    assert last_id == make_synthetic(520, 3, workers=1)[519]["id"]
