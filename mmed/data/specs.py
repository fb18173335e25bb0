"""Data specs: the one place the names of benchmark entries and ``--data`` specs are read.

- A profile's benchmark entry (``data.eval_benchmarks``, ``data.train_benchmarks``,
  ``data.cold_start_benchmarks``) is ``"<name>[:<layout>][@<split>]"``
  (:func:`parse_benchmark_spec`), checked against the loaders' :data:`mmed.data.loaders.LAYOUTS`
  and :data:`mmed.data.loaders.SPLITS`; :mod:`mmed.config` rejects a bad one when a profile loads.
- A ``--data`` spec (``consult``, :func:`mmed.data.sets.load_items`) is ``"synthetic"``,
  ``"<name>"``, ``"<name>:<layout>"`` or ``"<name>:<path>"``, each optionally followed by
  ``"@<split>"`` (:func:`parse_data_spec`, :func:`resolve_split`).
- The row-error policy of an entry (``skip``/``raise`` a bad row): :func:`row_error_policy`
  (docs/architecture.md#bad-rows).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..runs import resolve_path
from .loaders import LAYOUTS, SPLITS
from .rows import is_hub_id

#: the data spec of the profile's synthetic set (:func:`mmed.data.sets.synthetic_split`)
SYNTHETIC = "synthetic"

_SPLIT_WORD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

#: row-error policies (``data.on_error``, ``--on-error``, ``load_benchmark(on_error=...)``)
ON_ERROR_CHOICES: tuple[str, ...] = ("skip", "raise")
#: the policy of each use when neither the command line, the entry nor ``data.on_error``
#: names one: ``train`` - the real training pool (:func:`mmed.data.training.training_pool`)
#: skips, counts and reports a bad row (one broken row of SLAKE's train.json must not stop
#: a training run); ``eval`` - an evaluation split (``consult``, ``evaluation_sets``, the
#: training pool's evaluation-image check) skips too, and says so loudly: the count and the
#: rows go into ``metrics.json`` (``dropped_bad_rows``, ``load_report.skipped``) and into a
#: ``WARNING`` line printed with the summary. The library call
#: :func:`mmed.data.load_benchmark` itself raises unless told to skip.
ON_ERROR_DEFAULTS: dict[str, str] = {"train": "skip", "eval": "skip"}


def row_error_policy(data: Any, entry: str | None, use: str, override: str | None = None) -> tuple[str, str]:
    """``(policy, where it comes from)`` for reading benchmark ``entry`` (a benchmark entry
    or ``--data`` spec; None for none) in ``use`` (``"train"`` or ``"eval"``).

    Precedence: ``override`` (the command line's ``--on-error``, a function argument) >
    ``data.on_error_by_entry[entry]`` (the entry as written) > ``data.on_error_by_entry[name]``
    (its benchmark name) > ``data.on_error`` > :data:`ON_ERROR_DEFAULTS` ``[use]``. The
    second value says which (``"--on-error"``, ``"data.on_error_by_entry['slake']"``,
    ``"data.on_error"``, ``"default for eval"``).

    Raises:
        ValueError: ``use`` not ``train``/``eval``, or an ``override`` not in
            :data:`ON_ERROR_CHOICES`.
    """
    if use not in ON_ERROR_DEFAULTS:
        raise ValueError(f"use must be one of {sorted(ON_ERROR_DEFAULTS)}, got {use!r}")
    if override is not None:
        if override not in ON_ERROR_CHOICES:
            raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {override!r}")
        return override, "--on-error"
    by_entry = data.on_error_by_entry or {}
    if entry is not None:
        base = split_benchmark_spec(entry)[0] if isinstance(entry, str) and entry.strip() else str(entry)
        for key in (entry, base, base.partition(":")[0]):
            if key in by_entry:
                return by_entry[key], f"data.on_error_by_entry[{key!r}]"
    if data.on_error is not None:
        return data.on_error, "data.on_error"
    return ON_ERROR_DEFAULTS[use], f"default for {use}"


def split_benchmark_spec(spec: str) -> tuple[str, str | None]:
    """``"<spec>@<split>"`` → ``("<spec>", "<split>")``; a spec without a split suffix →
    ``(spec, None)``. The one place the ``@<split>`` suffix of a benchmark or ``--data`` spec
    is read: the text after the last ``@`` is a split when it is a bare word (letters, digits,
    ``_``), so a path such as ``vqa_rad:/data/a@b/vqa`` keeps its ``@``.

    Raises:
        ValueError: a spec that is not a non-empty string, or that ends in ``@``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty benchmark spec {spec!r}")
    head, at, tail = spec.rpartition("@")
    if not at:
        return spec, None
    if not tail:
        raise ValueError(f"benchmark spec {spec!r} ends in '@'; expected <name>[:<layout>][@<split>]")
    if head and _SPLIT_WORD.match(tail):
        return head, tail
    return spec, None


def first_split(name: str, layout: str | None) -> str:
    """The split an evaluation of ``name`` (in ``layout``, else its first layout) reads by
    default: ``test``, else ``validation``, else its first split."""
    by_layout = SPLITS[name]
    splits = by_layout[layout] if layout else next(iter(by_layout.values()))
    return next((s for s in ("test", "validation") if s in splits), splits[0])


def split_problem(name: str, layout: str | None, split: str) -> str | None:
    """What is wrong with reading ``split`` of benchmark ``name`` (in ``layout``, or in any
    of its layouts when None; :data:`mmed.data.loaders.SPLITS`), or None when it is read."""
    by_layout = SPLITS[name]
    known = by_layout[layout] if layout else tuple(dict.fromkeys(s for ss in by_layout.values() for s in ss))
    if split in known:
        return None
    why = " (MMMU's test split has no public answers)" if name == "mmmu_med" and split == "test" else ""
    where = f"{name}:{layout}" if layout else name
    return f"no split {split!r} for {where}{why}; known: {', '.join(known)}"


def parse_benchmark_spec(spec: str) -> tuple[str, str | None, str | None]:
    """A ``data.eval_benchmarks`` / ``data.train_benchmarks`` entry
    ``"<name>[:<layout>][@<split>]"`` → ``(name, layout or None, split or None)``.

    ``name`` is one of :data:`mmed.data.KNOWN_BENCHMARKS` (read from ``<data_root>/<name>``),
    ``layout`` one of its :data:`mmed.data.loaders.LAYOUTS` (omitted = detected from the
    files), ``split`` one that layout's loader reads (:data:`mmed.data.loaders.SPLITS`;
    omitted = ``data.eval_split`` for evaluation entries, ``train`` for training entries),
    e.g. ``"vqa_rad:mevf"``, ``"mmmu_med:hub@validation"``.

    Raises:
        ValueError: an unknown benchmark, layout or split (the message quotes the entry).
    """
    base, split = split_benchmark_spec(spec)
    name, sep, layout = base.partition(":")
    problem = benchmark_spec_problem(spec)
    if problem:
        raise ValueError(f"benchmark spec {spec!r}: {problem}")
    return name, (layout if sep else None), split


def benchmark_spec_problem(spec: str) -> str | None:
    """What is wrong with a ``data.eval_benchmarks`` / ``data.train_benchmarks`` entry
    (``"<name>[:<layout>][@<split>]"``, see :func:`parse_benchmark_spec`), or None when it
    is valid."""
    try:
        base, split = split_benchmark_spec(spec)
    except ValueError as e:
        return str(e)
    name, sep, layout = base.partition(":")
    if name not in LAYOUTS:
        return f"unknown benchmark {name!r}; known: {', '.join(LAYOUTS)}"
    if sep and layout not in LAYOUTS[name]:
        return f"unknown layout {layout!r} for {name}; known: {', '.join(LAYOUTS[name])}"
    if split is not None:
        return split_problem(name, layout if sep else None, split)
    return None


def parse_data_spec(spec: str, data_root: Path | None) -> tuple[str, str | None, str | None, str | None]:
    """A data spec → ``(name, source path, layout, split)``.

    Accepted: ``"synthetic"``, ``"<name>"``, ``"<name>:<layout>"`` or ``"<name>:<path>"``
    (a relative path resolves from the repository root, like ``--run-dir``; a Hub id
    stays as given),
    each optionally followed by ``"@<split>"`` (read by
    :func:`split_benchmark_spec`, e.g. ``"mmmu_med:hub@validation"``; split None
    when absent). A bare name or a layout reads ``data_root/<name>``.

    Raises:
        ValueError: a benchmark without a path when there is no data root; a spec ending in ``@``.
    """
    base, split = split_benchmark_spec(spec)
    if base == SYNTHETIC:
        return SYNTHETIC, None, None, split
    name, _, rest = base.partition(":")
    layout = None
    source = None
    if rest and rest in LAYOUTS.get(name, ()):
        layout = rest
    elif rest:
        # a relative path resolves from the repository root, as --run-dir and --data-root do
        # (a Hub id such as "MMMU/MMMU" stays as given unless such a folder exists there)
        local = resolve_path(rest)
        source = rest if is_hub_id(rest) and not local.exists() else str(local)
    if source is None:
        if data_root is None:
            raise ValueError(f"data {spec!r}: no path given and no data root (pass --data-root or {name}:<path>)")
        source = str(data_root / name)
    return name, source, layout, split


def resolve_split(data: str, split: str | None) -> str:
    """The split a consultation of ``data`` reads: the spec's ``@<split>``, else ``split``,
    else ``"test"``.

    Raises:
        ValueError: the spec names one split and ``split`` another (naming both).
    """
    _, own = split_benchmark_spec(data)
    if own is not None and split is not None and split != own:
        raise ValueError(f"data {data!r} names split {own!r} but split {split!r} was asked; give one of them")
    return own or split or "test"
