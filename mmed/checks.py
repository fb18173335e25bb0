"""Metrics that notebooks record, and the checks CI runs on them (docs/architecture.md#notebooks-and-their-parameters).

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
from dataclasses import dataclass
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


def check_run(run_dir: str | os.PathLike[str], require: list[str] | None = None,
              warnings: list[str] | None = None) -> dict[str, list[str]]:
    """Check every recorded metrics file of a run, then the degenerate-agent guard.

    Args:
        require: notebook stems that must have recorded metrics (default: every notebook
            executed into ``<run>/notebooks/``).
        warnings: when a list, the guard's findings are appended to it as one-line
            messages where the run's profile says ``eval.degenerate_action: warn``.
    Returns:
        ``{stem: [problems]}`` for every checked notebook (empty lists = all fine) and, when
        any notebook was checked, ``{DEGENERATE_KEY: [...]}``: one line per evaluation
        whose agent gave one answer on more than ``eval.degenerate_share`` of its items
        while the gold answers were not that skewed (:func:`degenerate_agents`) — problems
        under ``degenerate_action: fail``, empty under ``warn`` (then in ``warnings``).
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
    if out:
        share, action, _ = guard_settings(root)
        found = [d.message() for d in degenerate_agents(root, stems=list(require), share=share)]
        out[DEGENERATE_KEY] = found if action == "fail" else []
        if action != "fail" and warnings is not None:
            warnings.extend(found)
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
    """Check ``m["seed_replicates"]`` (:mod:`mmed.eval.replicates` tables recorded by notebooks
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


# ----------------------------------------------------------------------------------------
# the degenerate-agent guard (docs/architecture.md#degenerate-agent-guard): one answer on (nearly) every item
# ----------------------------------------------------------------------------------------
#: the name under which :func:`check_run` reports degenerate agents
DEGENERATE_KEY = "answer_distributions"
#: fields that name the agent / the evaluated split in a recorded row, in order of preference
_AGENT_FIELDS = ("agent", "system", "attending")
_SPLIT_FIELDS = ("split", "dataset", "set")
_DETAIL_FIELDS = ("policy", "N", "seed", "stratum")


@dataclass
class Degenerate:
    """One evaluation whose agent gave one answer on more than ``threshold`` of its items.

    ``notebook`` is the metrics file's stem, ``path`` the JSON path of the record in it,
    ``agent``/``split`` the names it was recorded under (from its fields, else its path)."""

    notebook: str
    path: str
    agent: str
    split: str | None
    top_answer: Any
    share: float
    n: int | None
    gold_top_share: float
    threshold: float

    def message(self) -> str:
        """One line naming the agent, split, answer and share."""
        count = f" on {round(self.share * self.n)} of {self.n} items" if isinstance(self.n, int) and self.n else ""
        split = f" on {self.split}" if self.split else ""
        top = f" {self.top_answer!r}" if self.top_answer is not None else ""
        return (f"degenerate agent {self.agent!r}{split}: answer{top}{count} (share {self.share:.2f} > "
                f"{self.threshold:.2f}, gold's most frequent answer {self.gold_top_share:.2f}) "
                f"[{self.notebook}: {self.path}]")


def _path_text(parts: list[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def answer_records(m: Any, path: list[Any] | None = None) -> list[tuple[list[Any], dict[str, Any]]]:
    """Every ``(path, record)`` in a metrics object that holds an answer distribution: a
    dict with numeric ``top_answer_share`` and ``gold_top_share`` (an
    :func:`mmed.agents.scoring.answer_distribution`, or a table row carrying those columns)."""
    path = path or []
    out: list[tuple[list[Any], dict[str, Any]]] = []
    if isinstance(m, dict):
        if all(isinstance(m.get(k), (int, float)) and not isinstance(m.get(k), bool) and math.isfinite(m[k])
               for k in ("top_answer_share", "gold_top_share")):
            out.append((path, m))
        for k, v in m.items():
            if isinstance(v, (dict, list)):
                out.extend(answer_records(v, [*path, k]))
    elif isinstance(m, list):
        for i, v in enumerate(m):
            if isinstance(v, (dict, list)):
                out.extend(answer_records(v, [*path, i]))
    return out


def degenerate_in_metrics(m: dict[str, Any], notebook: str, share: float = 0.9) -> list[Degenerate]:
    """The degenerate agents among the answer distributions recorded in one notebook's
    metrics (:func:`answer_records`; :func:`mmed.agents.scoring.degenerate_answers` decides).

    Seed-replicate rows of the run's own seed (``seed_replicates.table`` rows whose ``seed``
    is the metrics' ``seed``) are skipped: the same evaluation is recorded elsewhere in the
    file; so is notebook 03's ``majority`` block (the majority-class baseline answers one
    specialty by definition). Raises ``ValueError`` for ``share`` outside (0, 1)."""
    from .agents.scoring import degenerate_answers

    out = []
    for path, rec in answer_records(m):
        if not degenerate_answers(rec, share):
            continue
        if path[:1] == ["seed_replicates"] and "seed" in m and rec.get("seed") == m.get("seed"):
            continue
        if path[:1] == ["majority"]:  # the majority-class baseline is one answer by definition
            continue
        agent = next((str(rec[k]) for k in _AGENT_FIELDS if rec.get(k) is not None), None)
        split = next((str(rec[k]) for k in _SPLIT_FIELDS if rec.get(k) is not None), None)
        details = ", ".join(f"{k}={rec[k]}" for k in _DETAIL_FIELDS if rec.get(k) is not None)
        if agent is None:  # an answer_distribution block: its path names the agent
            agent = _path_text([p for p in path if p != "answers"]) or notebook
        if details:
            agent = f"{agent} ({details})"
        n = rec.get("n")
        out.append(Degenerate(notebook, _path_text(path) or "(top level)", agent, split, rec.get("top_answer"),
                              float(rec["top_answer_share"]), int(n) if isinstance(n, (int, float)) and n == n else None,
                              float(rec["gold_top_share"]), share))
    return out


def guard_report(m: dict[str, Any], notebook: str, profile: Any) -> list[str]:
    """What the degenerate-agent guard will say about one notebook's metrics at check-run,
    for the notebook to print: one line per degenerate agent (:func:`degenerate_in_metrics`
    at the profile's ``eval.degenerate_share``) saying whether it fails the run or warns
    (``eval.degenerate_action``), or one line saying that no agent is degenerate."""
    share, action = profile.eval.degenerate_share, profile.eval.degenerate_action
    found = degenerate_in_metrics(m, notebook, share)
    if not found:
        return [f"answer guard: no agent gives one answer on more than {share:.0%} of its items"]
    verdict = "FAILS the run at check-run" if action == "fail" else "a warning at check-run (profile: warn)"
    return [f"answer guard ({verdict}): {d.message()}" for d in found]


def guard_settings(run_dir: str | os.PathLike[str]) -> tuple[float, str, str]:
    """``(share, action, source)`` of the degenerate-agent guard for a run: the profile the
    run's manifest names (``eval.degenerate_share``, ``eval.degenerate_action``), or the
    defaults (0.9, ``fail``) when the manifest names none or an unknown profile — ``source``
    says which."""
    from .config import EvalConfig, ProfileError, load_profile

    default = EvalConfig()
    man = resolve_path(run_dir) / "manifest.json"
    name = None
    if man.is_file():
        try:
            name = json.loads(man.read_text()).get("profile")
        except (json.JSONDecodeError, AttributeError):
            name = None
    if not name:
        return default.degenerate_share, default.degenerate_action, "defaults (the run names no profile)"
    try:
        prof = load_profile(name)
    except ProfileError:
        return default.degenerate_share, default.degenerate_action, f"defaults (profile {name!r} not found)"
    return prof.eval.degenerate_share, prof.eval.degenerate_action, f"profile {name!r}"


def degenerate_agents(run_dir: str | os.PathLike[str], stems: list[str] | None = None,
                      share: float | None = None) -> list[Degenerate]:
    """Degenerate agents in every recorded notebook metrics file of a run (or those of
    ``stems``), with the run's guard share (:func:`guard_settings`) unless ``share`` is
    given. Unreadable files are skipped here (:func:`check_run` reports them)."""
    root = resolve_path(run_dir)
    share = guard_settings(root)[0] if share is None else share
    files = sorted((root / "eval").glob("notebook_*.json"))
    out: list[Degenerate] = []
    for p in files:
        stem = p.stem[len("notebook_"):]
        if stem.endswith(".rejected") or (stems is not None and stem not in stems):
            continue
        try:
            m = json.loads(p.read_text())
        except json.JSONDecodeError:
            continue
        if isinstance(m, dict):
            out.extend(degenerate_in_metrics(m, stem, share))
    return out


# importing the package's checker modules registers them
def _load_checkers() -> None:
    from . import checkers  # noqa: F401


_load_checkers()
