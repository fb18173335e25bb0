"""Metrics that notebooks record, and the checks CI runs on them (DESIGN §4).

Each notebook ends by calling :func:`record_notebook_metrics`, which writes
``<run>/eval/notebook_<stem>.json``. ``python -m mmed check-run --run-dir R`` (run by
``.ci/run`` after the notebooks) loads every such file and applies the checker registered
for that notebook in :data:`CHECKERS`: schema (required keys, types) and invariants
(counts add up, rates in [0, 1], intervals contain their estimate). This is where the
values a notebook computed are asserted.

A checker is a function ``(metrics: dict) -> list[str]`` returning problems (empty = ok).
Later notebooks register theirs with :func:`register_checker`.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable

from .runs import Run, resolve_path, write_json_atomic

Checker = Callable[[dict[str, Any]], list[str]]
CHECKERS: dict[str, Checker] = {}


def register_checker(stem: str) -> Callable[[Checker], Checker]:
    """Decorator: register the checker for notebook ``stem`` (e.g. ``"01_data"``)."""

    def deco(fn: Checker) -> Checker:
        CHECKERS[stem] = fn
        return fn

    return deco


def metrics_path(run_dir: str | os.PathLike[str], stem: str) -> Path:
    """``<run>/eval/notebook_<stem>.json``."""
    return resolve_path(run_dir) / "eval" / f"notebook_{stem}.json"


def record_notebook_metrics(run_dir: str | os.PathLike[str], stem: str, metrics: dict[str, Any]) -> Path:
    """Run the notebook's checker on the metrics it computed, then write them to
    ``runs/<id>/eval/notebook_<stem>.json``.

    Metrics that fail their checker never replace the run's metrics file (a rejected
    re-run leaves an earlier good record in place); they are written beside it as
    ``notebook_<stem>.rejected.json`` for inspection.

    Raises:
        ValueError: listing every problem the notebook's checker found.
    """
    problems = CHECKERS.get(stem, lambda m: [])(metrics)
    target = metrics_path(run_dir, stem)
    if problems:
        rejected = write_json_atomic(target.with_name(target.stem + ".rejected.json"), metrics)
        raise ValueError(f"notebook {stem} recorded invalid metrics (kept apart in {rejected}): " + "; ".join(problems))
    path = write_json_atomic(target, metrics)
    Run(resolve_path(run_dir)).add_artifact(f"metrics:{stem}", path)
    return path


def check_run(run_dir: str | os.PathLike[str], require: list[str] | None = None) -> dict[str, list[str]]:
    """Check every recorded metrics file of a run.

    Args:
        require: notebook stems that must have recorded metrics (default: every notebook
            executed into ``<run>/notebooks/``).
    Returns:
        ``{stem: [problems]}`` for every checked notebook (empty lists = all fine).
    Raises:
        FileNotFoundError: ``run_dir`` does not exist; NotADirectoryError: it is a file.
    """
    root = resolve_path(run_dir)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"run folder {root} is not a folder (it is a file); pass the run's folder")
    if not root.is_dir():
        raise FileNotFoundError(f"run folder {root} does not exist")
    if require is None:
        require = sorted(p.stem for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    out: dict[str, list[str]] = {}
    for stem in require:
        p = metrics_path(root, stem)
        if not p.exists():
            out[stem] = [f"no metrics file {p}"]
            continue
        try:
            m = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            out[stem] = [f"{p}: invalid JSON ({e})"]
            continue
        checker = CHECKERS.get(stem)
        out[stem] = run_checker(checker, m, str(p)) if checker else [f"no checker registered for {stem}"]
    return out


def run_checker(checker: Checker, m: Any, where: str) -> list[str]:
    """``checker(m)``, with malformed metrics reported as a problem instead of a crash: a
    file whose top level is not an object, or one that makes the checker fail (a row
    without a key it indexes, a value of the wrong type)."""
    if not isinstance(m, dict):
        return [f"{where}: top level is a {type(m).__name__}, expected an object"]
    try:
        return checker(m)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as e:
        return [f"{where}: malformed metrics ({type(e).__name__}: {e})"]


# ----------------------------------------------------------------------------------------
# helpers for checkers
# ----------------------------------------------------------------------------------------
def need(m: dict[str, Any], key: str, types: type | tuple[type, ...], problems: list[str]) -> Any:
    """Fetch dotted ``key`` from ``m``; append a problem if missing or of the wrong type."""
    cur: Any = m
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            problems.append(f"missing key {key!r}")
            return None
        cur = cur[part]
    allowed = types if isinstance(types, tuple) else (types,)
    if not isinstance(cur, allowed) or (isinstance(cur, bool) and bool not in allowed):
        problems.append(f"key {key!r} has type {type(cur).__name__}")
        return None
    return cur


def check_rate(x: Any, name: str, problems: list[str]) -> None:
    """``x`` must be a finite number in [0, 1]."""
    if not isinstance(x, (int, float)) or not math.isfinite(x) or not 0 <= x <= 1:
        problems.append(f"{name} = {x!r} is not a rate in [0, 1]")


def check_interval(est: Any, lo: Any, hi: Any, name: str, problems: list[str]) -> None:
    """``lo <= est <= hi``, all rates."""
    for v, n in ((est, name), (lo, name + ".lo"), (hi, name + ".hi")):
        check_rate(v, n, problems)
    if not problems and not lo - 1e-9 <= est <= hi + 1e-9:
        problems.append(f"{name}: estimate {est} outside its interval [{lo}, {hi}]")


def check_seed_replicates(m: dict[str, Any], key_cols: tuple[str, ...], problems: list[str], main_seed: Any = None) -> None:
    """Check ``m["seed_replicates"]`` (:mod:`mmed.rl.replicates` tables recorded by notebooks
    03/04) when present and not None: ``seeds`` a non-empty list of distinct ints holding
    ``main_seed`` when given; ``table`` a list of rows, every seed present with the same set
    of ``key_cols`` values (e.g. ``("set",)`` or ``("system", "stratum")``), each row's
    ``accuracy`` a rate inside its ``[lo, hi]`` interval."""
    rep = m.get("seed_replicates")
    if rep is None:
        return
    if not isinstance(rep, dict):
        problems.append("seed_replicates must be an object or null")
        return
    seeds, table = rep.get("seeds"), rep.get("table")
    if not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(x, int) for x in seeds):
        problems.append(f"seed_replicates.seeds must be distinct ints, got {seeds!r}")
        return
    if main_seed is not None and main_seed not in seeds:
        problems.append(f"seed_replicates.seeds {seeds} lacks the run's seed {main_seed}")
    if not isinstance(table, list) or not table:
        problems.append("seed_replicates.table must be a non-empty list of rows")
        return
    keys: dict[Any, set] = {}
    for i, r in enumerate(table):
        if not isinstance(r, dict) or r.get("seed") not in seeds:
            problems.append(f"seed_replicates.table[{i}]: seed {r.get('seed') if isinstance(r, dict) else r!r} not in {seeds}")
            continue
        keys.setdefault(r["seed"], set()).add(tuple(r.get(k) for k in key_cols))
        check_interval(r.get("accuracy"), r.get("lo"), r.get("hi"), f"seed_replicates.table[{i}].accuracy", problems)
    if set(keys) != set(seeds):
        problems.append(f"seed_replicates.table has rows for seeds {sorted(keys)}, expected {seeds}")
    elif len({frozenset(v) for v in keys.values()}) != 1:
        problems.append(f"seed_replicates.table: seeds differ in their {key_cols} rows")


# importing the package's checker modules registers them
def _load_checkers() -> None:
    from . import checkers  # noqa: F401


_load_checkers()
