"""The item sets of a profile: its synthetic splits, a benchmark split named by a data spec
(:mod:`mmed.data.specs`), and the evaluation sets every evaluation step reads.

``profile`` is a :class:`mmed.config.Profile` (its ``data`` section); a load says what it
dropped (:func:`load_items_with_report`, :func:`load_warning`, :func:`dropped_rows_warning`:
docs/architecture.md#bad-rows).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Iterator

import datasets

from ..runs import resolve_data_root, user_cache_dir
from .loaders import LAYOUTS, load_benchmark
from .schema import closed_only
from .specs import SYNTHETIC, parse_benchmark_spec, parse_data_spec, resolve_split, row_error_policy, split_problem
from .synthetic import make_synthetic

#: the splits of a profile's synthetic set (image-disjoint by construction)
SYNTHETIC_SPLITS = ("train", "validation", "test")


def synthetic_split(profile: Any, split: str, n: int | None = None, seed: int | None = None) -> datasets.Dataset:
    """The profile's synthetic items of one split (``train`` / ``validation`` / ``test``);
    splits are image-disjoint by construction (the split is part of the random key).

    Raises:
        ValueError: a split other than :data:`SYNTHETIC_SPLITS` (any other name would
            silently make a new set of items).
    """
    if split not in SYNTHETIC_SPLITS:
        raise ValueError(f"synthetic: unknown split {split!r}; known: {', '.join(SYNTHETIC_SPLITS)}")

    s = profile.data.synthetic
    if n is None:
        n = s.n_train if split == "train" else s.n_eval
    return cached_synthetic(n, s.seed if seed is None else seed, image_size=s.image_size, difficulty=s.difficulty,
                            split=split)


#: environment variable naming the synthetic-set cache folder (default ``~/.cache/mmed/synthetic``)
SYNTHETIC_CACHE_ENV = "MMED_SYNTHETIC_CACHE"


def synthetic_cache_key(n: int, seed: int, image_size: int, difficulty: float, split: str) -> str:
    """Hex key of a synthetic set: its arguments, the SHA-256 of the generator's source files
    (``mmed/data/synthetic.py`` and the schema it fills, ``mmed/data/schema.py``) and the
    versions of the libraries that draw and store it (numpy, Pillow, datasets): a change of
    the drawing code is a new key, version bump or not."""
    import hashlib
    import json

    import numpy
    import PIL

    from . import schema, synthetic

    code = hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in (synthetic, schema))).hexdigest()
    args = {"n": int(n), "seed": int(seed), "image_size": int(image_size), "difficulty": float(difficulty),
            "split": split, "code": code, "datasets": datasets.__version__, "numpy": numpy.__version__,
            "pillow": PIL.__version__}
    return hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:20]


#: sets this process has read or drawn, by key (a ``datasets.Dataset`` is immutable: shared)
_SYNTHETIC_SETS: dict[str, datasets.Dataset] = {}


@contextlib.contextmanager
def _drawing_lock(root: Path, key: str) -> Iterator[None]:
    """An exclusive lock on ``root/.<key>.lock`` (``fcntl.flock``; none where there is no
    ``fcntl`` or the folder cannot be written): two processes that miss the same cache entry
    at once — notebooks 01 and 02 and 02's workers start together — draw it once."""
    try:
        import fcntl

        root.mkdir(parents=True, exist_ok=True)
        f = open(root / f".{key}.lock", "w")
    except (ImportError, OSError):
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def cached_synthetic(n: int, seed: int, *, image_size: int = 96, difficulty: float = 0.5,
                     split: str = "train") -> datasets.Dataset:
    """:func:`mmed.data.synthetic.make_synthetic` drawn once per machine: the set is saved
    (``datasets.Dataset.save_to_disk``) under ``$MMED_SYNTHETIC_CACHE`` (default
    ``~/.cache/mmed/synthetic``) as ``<synthetic_cache_key>/`` and read back
    (``datasets.load_from_disk``, memory-mapped Arrow: the same rows and PNG bytes) by every
    later call of any process — the notebooks, their worker processes and each curriculum's
    held-out report drew the same items dozens of times. Writes go to a temporary folder
    renamed into place, so concurrent processes never read half a set, and a process that
    misses an entry another one is drawing waits for it (a lock file per entry) instead of
    drawing it again; the set is read into
    memory (no cache file of a later ``map`` lands beside the entry). A folder that cannot
    be written is warned about and the set kept in memory. Each entry is a few MB; delete
    the folder to reclaim them. Arguments as ``make_synthetic``'s. Raises what it raises."""
    import shutil

    key = synthetic_cache_key(n, seed, image_size, difficulty, split)
    if key in _SYNTHETIC_SETS:
        return _SYNTHETIC_SETS[key]
    root = user_cache_dir("synthetic", SYNTHETIC_CACHE_ENV)
    entry = root / key
    with _drawing_lock(root, key):  # a process drawing the same set: wait for it, then read its copy
        if not (entry / "dataset_info.json").is_file():
            ds = make_synthetic(n, seed, image_size=image_size, difficulty=difficulty, split=split)
            tmp = root / f".{key}.tmp{os.getpid()}"
            try:
                shutil.rmtree(tmp, ignore_errors=True)
                ds.save_to_disk(str(tmp))
            except OSError as e:  # a cache folder that cannot be written: draw every time, say so once
                print(f"warning: synthetic-set cache {root} not writable ({type(e).__name__}: {e}); the set is "
                      f"drawn in memory (set ${SYNTHETIC_CACHE_ENV} to a writable folder)", file=sys.stderr)
                _SYNTHETIC_SETS[key] = ds
                return ds
            try:
                tmp.rename(entry)
            except OSError:  # another process saved it first (no lock here): same key, same items
                shutil.rmtree(tmp, ignore_errors=True)
    # in memory: later .map / .select calls then write no cache files beside the shared entry
    ds = datasets.load_from_disk(str(entry), keep_in_memory=True)
    _SYNTHETIC_SETS[key] = ds
    return ds


def load_items(
    profile: Any,
    data: str = SYNTHETIC,
    split: str | None = None,
    data_root: str | Path | None = None,
    include_open: bool = False,
    limit: int | None = None,
    on_error: str | None = None,
) -> datasets.Dataset:
    """Evaluation (or training) items of a profile: the synthetic set or a benchmark.

    ``data`` is a :func:`mmed.data.specs.parse_data_spec` spec; the split read is :func:`mmed.data.specs.resolve_split`
    (the spec's ``@<split>``, else ``split``, else ``test``). Closed questions only unless
    ``include_open`` (docs/architecture.md#closed-first); the first ``limit`` items when given (a
    deterministic slice, not a sample). :func:`load_items_with_report` also says what the
    loader filtered, skipped or kept open.

    ``on_error``: ``"skip"`` / ``"raise"`` a bad row; None = the profile's policy for this
    spec (:func:`mmed.data.specs.row_error_policy`, use ``eval``: ``data.on_error_by_entry``,
    ``data.on_error``, else skip - counted in the report and warned about on stderr).

    Raises:
        ValueError: ``limit`` below 1 (it would evaluate nothing), an unknown dataset,
            layout or split (naming the spec), a spec split that contradicts ``split``, a
            split with no rows at all (naming the file), a bad ``on_error``.
        DataError: a bad row under the policy ``raise`` (names file, row, field).
    """
    return load_items_with_report(profile, data, split, data_root, include_open, limit, on_error)[0]


def load_items_with_report(
    profile: Any,
    data: str = SYNTHETIC,
    split: str | None = None,
    data_root: str | Path | None = None,
    include_open: bool = False,
    limit: int | None = None,
    on_error: str | None = None,
) -> tuple[datasets.Dataset, dict[str, Any]]:
    """:func:`load_items` and its load report: the loader's
    :meth:`~mmed.data.rows.LoadReport.as_dict` (benchmarks; ``{"dataset": "synthetic"}``
    otherwise) plus ``open_dropped`` (items left out as not closed, among them closed
    questions kept open for want of options), ``limit_dropped``, ``n_returned`` and, for
    benchmarks, ``on_error`` (the row-error policy used) and ``on_error_source`` (where it
    was set: :func:`mmed.data.specs.row_error_policy`)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive number of items (or None for all), got {limit!r}")

    split = resolve_split(data, split)
    root = resolve_data_root(data_root) if data_root is not None else resolve_data_root(None)
    name, source, layout, _ = parse_data_spec(data, root)
    if name == SYNTHETIC:
        ds = synthetic_split(profile, split)
        report: dict[str, Any] = {"dataset": SYNTHETIC, "split": split, "n_items": len(ds)}
    else:
        problem = split_problem(name, layout, split) if name in LAYOUTS else None  # unknown names: the loader says
        if problem:
            raise ValueError(f"data {data!r}: {problem}")
        policy, policy_source = row_error_policy(profile.data, data, "eval", on_error)
        # a split with no rows at all raises in the loader, naming its file
        ds, rep = load_benchmark(name, source, split, layout=layout, include_open=include_open, on_error=policy,
                                 return_report=True)
        report = rep.as_dict() | {"on_error": policy, "on_error_source": policy_source}
    n = len(ds)
    if not include_open:
        ds = closed_only(ds)
    report["open_dropped"] = n - len(ds)
    n = len(ds)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    report["limit_dropped"] = n - len(ds)
    report["n_returned"] = len(ds)
    return ds, report


def dropped_rows_warning(report: dict[str, Any]) -> str | None:
    """One loud line when a load dropped bad rows (``on_error="skip"``), else None: how
    many of how many rows, the first reasons (file, row, field) and how to stop instead."""
    n = report.get("n_skipped") or 0
    if not n:
        return None
    reasons = [s["reason"] for s in report.get("skipped", [])[:3]]
    more = f" (+{n - len(reasons)} more)" if n > len(reasons) else ""
    return (f"WARNING: {report.get('dataset')} split {report.get('split')!r}: {n} bad row(s) of {report.get('n_rows')} "
            f"DROPPED (on_error=skip, {report.get('on_error_source', 'the caller')}): the results cover "
            f"{report.get('n_returned', report.get('n_items'))} items. {'; '.join(reasons)}{more}. "
            "Pass --on-error raise (or set data.on_error: raise) to stop on a bad row instead.")


def load_warning(report: dict[str, Any]) -> str | None:
    """One line when a load dropped or converted items (filtered, skipped, kept open,
    left out as open), else None."""
    parts = []
    if report.get("n_skipped"):
        parts.append(f"{report['n_skipped']} row(s) skipped as bad")
    # open questions left out by a closed-only load are expected; closed ones without options are said below
    filt = {k: v for k, v in (report.get("filtered") or {}).items()
            if k not in ("open question", "closed question without options")}
    if filt:
        parts.append("filtered " + ", ".join(f"{k}: {v}" for k, v in sorted(filt.items())))
    if report.get("closed_as_open"):
        parts.append(f"{report['closed_as_open']} closed question(s) had no options (kept open, so left out "
                     "of a closed-only run)")
    if report.get("open_dropped"):
        parts.append(f"{report['open_dropped']} open item(s) left out (closed questions only)")
    if not parts:
        return None
    rows = f"{report['n_rows']} rows -> " if "n_rows" in report else ""
    return (f"warning: {report.get('dataset')} split {report.get('split')!r}: {rows}{report.get('n_returned')} items; "
            + "; ".join(parts) + " (see load_report in metrics.json)")


def evaluation_sets(
    profile: Any, data_root: str | Path | None = None, limit: int | None = None, include_open: bool = False,
    on_error: str | None = None, reports: dict[str, dict[str, Any]] | None = None,
) -> dict[str, datasets.Dataset]:
    """The profile's evaluation sets: the synthetic test split (when ``data.synthetic.n_eval``
    > 0) and, when a data root exists, every ``data.eval_benchmarks`` entry
    (``<name>[:<layout>][@<split>]`` read from ``<data_root>/<name>``, see
    :func:`mmed.data.specs.parse_benchmark_spec`) on its own split, else ``data.eval_split``.

    Keys are dataset names (``synthetic``, ``vqa_rad``, ...). ``limit`` (None → the
    profile's ``data.eval_limit``) caps real benchmarks only. Bad rows follow each entry's
    row-error policy (``on_error`` overrides it; :func:`load_items`); an entry that drops
    rows prints a ``WARNING`` line (:func:`dropped_rows_warning`) on stderr. ``reports``,
    when given, receives every set's load report (:func:`load_items_with_report`) by key.

    Raises:
        ValueError: a bad entry (naming it); FileNotFoundError / DataError from the loaders.
    """
    out: dict[str, datasets.Dataset] = {}
    reports = {} if reports is None else reports
    if profile.data.synthetic.n_eval > 0:
        out[SYNTHETIC], reports[SYNTHETIC] = load_items_with_report(profile, SYNTHETIC, "test", include_open=include_open)
    root = resolve_data_root(data_root) if data_root is not None else resolve_data_root(None)
    if root is not None:
        cap = profile.data.eval_limit if limit is None else limit
        for spec in profile.data.eval_benchmarks:
            name, _, own_split = parse_benchmark_spec(spec)
            out[name], reports[name] = load_items_with_report(profile, spec, own_split or profile.data.eval_split,
                                                              data_root=root, include_open=include_open, limit=cap,
                                                              on_error=on_error)
            warn = dropped_rows_warning(reports[name])
            if warn:
                print(warn, file=sys.stderr, flush=True)
    return out
