"""The real training pool: ``data.train_benchmarks`` minus every evaluation image (docs/architecture.md#splits).

:func:`training_pool` is the real GRPO data of both agents (the triage doctor's
:func:`mmed.rl.triage.training_items`, the attending's :func:`mmed.rl.curriculum.stratified_split`):

1. every ``data.train_benchmarks`` entry (``name:layout``) is read from
   ``<data_root>/<name>``, split ``train`` (:func:`mmed.data.load_benchmark`; VQA-RAD
   ``train`` = the MEVF split);
2. open questions are dropped (:func:`mmed.data.closed_only`; a closed question the
   multiple-choice rule could not convert is an open item and is dropped with them);
3. every remaining item that shows an image whose *content* (sha1 of the bytes,
   :func:`mmed.data.image_hash`) also occurs in the evaluation split (the entry's own
   ``@<split>``, else ``data.eval_split``) of any ``data.eval_benchmarks`` entry — open
   questions' images included — is removed. VQA-RAD's MEVF train split shows all 203 MEVF
   test images: nothing may train on an evaluation image;
4. the rest is split image-disjointly (:func:`mmed.data.image_disjoint_split`, seeded) into
   ``train`` and ``validation`` (``data.train_validation_fraction`` of the items);
5. ``train`` is capped at ``cap`` items (the agent's ``n_train_items``) by a seeded sample
   that keeps source order; ``validation`` is never capped here.

Every item read is accounted for in :attr:`TrainingPool.info` (per benchmark: read, open
dropped, removed for an evaluation image, kept) and in one log line per benchmark — nothing
is lost silently. Bad rows (a missing field, an empty answer, a missing image, text that is
not UTF-8) follow the profile's row-error policy (:func:`mmed.data.specs.row_error_policy`;
default for the training pool: skip): a skipped row is counted per benchmark
(``skipped_bad_rows``), its reason listed in ``info["skipped"]`` and named in the log line;
under ``raise`` the first bad row stops the pool with its file, row and field. Images are compared by content only: a re-encoded copy of an evaluation
image (e.g. a Hub export of another benchmark's files) is not recognised.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import datasets

from .loaders import load_benchmark
from .schema import closed_only
from .specs import benchmark_spec_problem, parse_benchmark_spec, row_error_policy
from .splits import image_disjoint_split, item_image_hashes


@dataclass
class TrainingPool:
    """The real training pool of a profile (:func:`training_pool`).

    Attributes:
        train: items to train on (schema :data:`mmed.data.FEATURES`, images not decoded),
            ``split`` column ``"train"``; at most ``cap`` items.
        validation: image-disjoint held-out items, ``split`` column ``"validation"``.
        info: JSON-ready description: ``train_benchmarks``, ``eval_benchmarks``,
            ``eval_split``, ``eval_images`` (distinct evaluation image contents checked),
            ``by_benchmark`` ({spec: {read, open_dropped, removed_eval_image, kept}, plus
            ``skipped_bad_rows`` where rows were skipped}), the totals ``read``,
            ``open_dropped``, ``removed_eval_image``, ``kept``, ``skipped_bad_rows``,
            ``skipped`` ({spec: [the skipped rows' one-line reasons]}), ``on_error``
            ({spec: policy}), then
            ``validation_fraction``, ``seed``, ``n_validation``, ``n_train_before_cap``,
            ``cap``, ``n_train``, and ``notes`` (sentences).
        train_hashes: per ``train`` row, its images' content hashes (for callers that must
            keep these images out of another evaluation).
    """

    train: datasets.Dataset
    validation: datasets.Dataset
    info: dict[str, Any]
    train_hashes: list[tuple[str, ...]] = field(default_factory=list, repr=False)

    def split(self, name: str) -> datasets.Dataset:
        """``"train"`` or ``"validation"``; raises ``ValueError`` for any other name."""
        if name not in ("train", "validation"):
            raise ValueError(f"the training pool has splits 'train' and 'validation', not {name!r}")
        return self.train if name == "train" else self.validation

    def plan_record(self) -> dict[str, Any]:
        """What a training plan records about its real data (no paths: a moved data folder
        with the same content gives the same record)."""
        keys = ("train_benchmarks", "eval_benchmarks", "eval_split", "validation_fraction", "seed", "by_benchmark",
                "removed_eval_image", "open_dropped", "n_train", "n_validation", "cap")
        rec = {k: self.info[k] for k in keys}
        if self.info.get("skipped_bad_rows"):  # only then: a clean pool's record is as before
            rec["skipped_bad_rows"] = self.info["skipped_bad_rows"]
        return rec


def _relabel(ds: datasets.Dataset, split: str) -> datasets.Dataset:
    cols = ds.column_names  # rewrite the column without touching (decoding) the images
    return ds.remove_columns("split").add_column("split", [split] * len(ds)).select_columns(cols)


def _benchmark_dir(root: Path, spec: str, key: str) -> tuple[str, str | None, str | None, Path]:
    """``(name, layout, split, folder)`` of a ``data.<key>`` entry
    (:func:`mmed.data.specs.parse_benchmark_spec`); errors name the entry."""

    problem = benchmark_spec_problem(spec)
    if problem:
        raise ValueError(f"data.{key} entry {spec!r}: {problem}")
    name, layout, split = parse_benchmark_spec(spec)
    src = root / name
    if not src.is_dir():
        raise FileNotFoundError(f"data.{key} entry {spec!r}: folder {src} does not exist under the data root {root}")
    return name, layout, split, src


def evaluation_image_hashes(
    profile: Any, data_root: str | Path, notes: list[str] | None = None, on_error: str | None = None,
) -> set[str]:
    """Content hashes of every image in the evaluation split of every
    ``data.eval_benchmarks`` entry — its own ``@<split>``, else ``data.eval_split`` (the
    split :func:`mmed.data.sets.evaluation_sets` evaluates) — open questions included, read
    from ``data_root``. An entry's own split is said in ``notes``, and so are bad rows
    skipped under the entry's row-error policy (:func:`mmed.data.specs.row_error_policy`, use
    ``eval``; ``on_error`` overrides it): a skipped row is not evaluated, its image not checked.

    Raises:
        FileNotFoundError: a benchmark folder missing under ``data_root`` (names the entry):
            training data cannot be checked against an evaluation set that is not there.
        ValueError / DataError: a bad entry or bad files (from :func:`mmed.data.load_benchmark`),
            a bad row under the policy ``raise``.
    """

    root = Path(data_root)
    out: set[str] = set()
    for spec in profile.data.eval_benchmarks:
        name, layout, own_split, src = _benchmark_dir(root, spec, "eval_benchmarks")
        split = own_split or profile.data.eval_split
        if split != profile.data.eval_split and notes is not None:
            notes.append(f"{spec}: evaluated on its {split!r} split (not data.eval_split {profile.data.eval_split!r}); "
                         f"checked that split's images")
        policy, _ = row_error_policy(profile.data, spec, "eval", on_error)
        ds, rep = load_benchmark(name, src, split, layout=layout, include_open=True, on_error=policy, return_report=True)
        if rep.n_skipped and notes is not None:
            notes.append(f"{spec} {split}: {rep.n_skipped} bad row(s) skipped (on_error=skip), not evaluated and their "
                         f"images not checked: {'; '.join(s.reason for s in rep.skipped[:3])}"
                         + (f" (+{rep.n_skipped - 3} more)" if rep.n_skipped > 3 else ""))
        out.update(h for hs in item_image_hashes(ds) for h in hs)
    return out


def training_pool(
    profile: Any,
    data_root: str | Path,
    *,
    cap: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    on_error: str | None = None,
) -> TrainingPool:
    """The profile's real training pool (see the module docstring for each step).

    Args:
        profile: a :class:`mmed.config.Profile` with a non-empty ``data.train_benchmarks``.
        data_root: the real-data folder holding ``<name>/`` for every train and evaluation
            benchmark (an existing folder).
        cap: at most this many ``train`` items (the agent's ``n_train_items``; None = all),
            a seeded sample in source order.
        seed: seeds the image-disjoint split and the cap.
        log: one line per benchmark and one summary line (default ``print``).
        on_error: ``"skip"`` / ``"raise"`` for every benchmark read (train entries and the
            evaluation-image check); None = the profile's policy per entry
            (:func:`mmed.data.specs.row_error_policy`: ``data.on_error_by_entry``,
            ``data.on_error``, else skip).
    Returns:
        a :class:`TrainingPool`.
    Raises:
        ValueError: empty ``data.train_benchmarks``, ``cap`` < 1, a bad entry, no item left
            after the removals, fewer than two distinct images left (no validation split),
            or a bad ``on_error``.
        DataError: a bad row under the policy ``raise`` (names file, row, field); a file that
            cannot be read or a split with no rows, under either policy.
        FileNotFoundError: a train or evaluation benchmark folder missing under ``data_root``.
    """

    log = log or (lambda m: print(m, flush=True))
    specs = list(profile.data.train_benchmarks)
    if not specs:
        raise ValueError(f"profile {profile.name!r}: data.train_benchmarks is empty (no real training data)")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ValueError(f"cap must be a positive number of items or None, got {cap!r}")
    root = Path(data_root)
    notes: list[str] = []
    eval_hashes = evaluation_image_hashes(profile, root, notes, on_error)
    parts, by_bench, skipped, policies = [], {}, {}, {}
    for spec in specs:
        name, layout, _, src = _benchmark_dir(root, spec, "train_benchmarks")
        policy, _ = row_error_policy(profile.data, spec, "train", on_error)
        policies[spec] = policy
        ds, rep = load_benchmark(name, src, "train", layout=layout, include_open=True, on_error=policy, return_report=True)
        closed = closed_only(ds)
        hashes = item_image_hashes(closed)
        keep = [i for i, hs in enumerate(hashes) if not any(h in eval_hashes for h in hs)]
        row = {"read": len(ds), "open_dropped": len(ds) - len(closed), "removed_eval_image": len(closed) - len(keep),
               "kept": len(keep)}
        if rep.n_skipped:
            row["skipped_bad_rows"] = rep.n_skipped
            skipped[spec] = [s.reason for s in rep.skipped]
        by_bench[spec] = row
        bad = (f", {rep.n_skipped} bad row(s) skipped (on_error=skip; first: {rep.skipped[0].reason})"
               if rep.n_skipped else "")
        log(f"training pool: {spec} train: {row['read']} items{bad}, {row['open_dropped']} open dropped, "
            f"{row['removed_eval_image']} removed (image in an evaluation split), {row['kept']} kept")
        parts.append(closed.select(keep))
    total = {k: sum(r.get(k, 0) for r in by_bench.values())
             for k in ("read", "open_dropped", "removed_eval_image", "kept", "skipped_bad_rows")}
    if total["kept"] == 0:
        raise ValueError(f"no training items left in {specs} after dropping {total['open_dropped']} open questions and "
                         f"removing {total['removed_eval_image']} items showing an evaluation image"
                         + (f" ({total['skipped_bad_rows']} bad rows skipped)" if total["skipped_bad_rows"] else ""))
    pool = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    frac = profile.data.train_validation_fraction
    dd = image_disjoint_split(pool, test_fraction=frac, seed=seed)
    train, validation = dd["train"], _relabel(dd["test"], "validation")
    n_before = len(train)
    if cap is not None and n_before > cap:
        keep = sorted(random.Random(f"{seed}:train_pool_cap").sample(range(n_before), cap))
        train = train.select(keep)
        notes.append(f"train capped at {cap} of {n_before} items (seeded sample)")
    train_hashes = item_image_hashes(train)
    info = {
        "train_benchmarks": specs, "eval_benchmarks": list(profile.data.eval_benchmarks),
        "eval_split": profile.data.eval_split, "eval_images": len(eval_hashes), "by_benchmark": by_bench, **total,
        "validation_fraction": frac, "seed": int(seed), "n_validation": len(validation), "n_train_before_cap": n_before,
        "cap": cap, "n_train": len(train), "skipped": skipped, "on_error": policies, "notes": notes,
    }
    log(f"training pool: {total['kept']} items kept of {total['read']} read ({total['open_dropped']} open dropped, "
        f"{total['removed_eval_image']} removed for an evaluation image"
        + (f"; {total['skipped_bad_rows']} bad row(s) skipped, not read" if total["skipped_bad_rows"] else "")
        + f") -> {len(train)} train"
        + (f" (capped from {n_before})" if n_before != len(train) else "") + f" + {len(validation)} validation, image-disjoint")
    return TrainingPool(train, validation, info, train_hashes)
