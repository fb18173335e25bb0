"""Real modality-labelled images for the triage doctor (docs/architecture.md#profiles,
#specialties; ``../shared/data/triage``).

Layout: any number of folders under ``root``, each with a ``labels.jsonl`` whose rows name an
``image`` path relative to that folder, a ``modality`` and usually a ``specialty``; other fields
(diagnosis, source file, licence, ...) go to ``meta``. The specialty given in a row wins; else
the keyword rules of :mod:`mmed.data.specialty` decide from ``modality``.

Each image becomes one closed item in the schema: ``dataset="triage"``, the question
:data:`TRIAGE_QUESTION`, options = the seven :data:`~mmed.data.schema.SPECIALTIES` in their
fixed order, answer = the specialty. This is the triage task of MMedAgent-RL (paper §3.1): pick
the specialty whose panel should see the case.

The split is seeded, stratified by specialty and image-disjoint: within each specialty the rows
are grouped by image content (sha1 of the file; the real ISIC folder holds two byte-identical
files), the groups (sorted) are shuffled with ``random.Random(f"{seed}:{specialty}")``, and
groups go to ``heldout`` until it holds ``floor(heldout_fraction * n + 0.5)`` rows or more;
the rest is ``train``. Duplicate contents are reported in the :class:`LoadReport` notes.
"""

from __future__ import annotations

import json
import math
import random
import warnings
from pathlib import Path
from typing import Any, Optional

import datasets

from .rows import DataError, LoadReport, SkippedRow, decode_text, printable, undecodable_field
from .schema import SPECIALTIES, Item, SchemaError, items_to_dataset
from .specialty import SpecialtyRules, UnknownModalityError, default_rules, resolve_specialty
from .splits import image_hash

TRIAGE_QUESTION = "Which specialist should examine this medical image?"
LABELS_FILE = "labels.jsonl"


def _read_labels(path: Path, root: Path, rules: SpecialtyRules, report: LoadReport, on_error: str) -> list[Item]:
    items: list[Item] = []
    folder = path.parent
    rel_folder = folder.relative_to(root).as_posix() or "."

    def fail(err: DataError) -> None:
        if on_error == "raise":
            raise err
        report.skipped.append(SkippedRow(err.file, err.row, err.item_id, err.field, str(err)))

    # bytes that are not UTF-8 are kept as surrogate escapes and name their line and field
    lines = decode_text(path.read_bytes()).split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        report.n_rows += 1
        try:
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(path, i, None, f"malformed JSON line: {printable(e.msg)} (column {e.colno})") from None
            if not isinstance(row, dict):
                raise DataError(path, i, None, f"row is a {type(row).__name__}, expected a JSON object")
            bad = undecodable_field(row)
            if bad is not None:
                raise DataError(path, i, bad[0], bad[1])
            image = row.get("image")
            if not isinstance(image, str) or not image.strip():
                raise DataError(path, i, "image", "missing")
            item_id = f"triage/{rel_folder}/{Path(image).with_suffix('').as_posix()}"
            img_path = folder / image
            if not img_path.is_file():
                raise DataError(path, i, "image", f"image file {img_path} not found", item_id)
            modality = row.get("modality")
            if not isinstance(modality, str) or not modality.strip():
                raise DataError(path, i, "modality", "missing", item_id)
            try:
                specialty, source = resolve_specialty(modality, row.get("specialty"), rules)
            except UnknownModalityError as e:
                raise DataError(path, i, "modality", str(e), item_id) from None
            except ValueError as e:
                raise DataError(path, i, "specialty", str(e), item_id) from None
            meta = {k: v for k, v in row.items() if k not in ("image", "modality", "specialty")}
            meta.update(folder=rel_folder, specialty_source=source)
            item = Item(id=item_id, dataset="triage", split="", images=[str(img_path)], image_ref=str(img_path),
                        question=TRIAGE_QUESTION, options=list(SPECIALTIES), answer_idx=SPECIALTIES.index(specialty),
                        answer=specialty, answer_type="closed", modality=modality, specialty=specialty, meta=meta)
            item.validate()
        except DataError as e:
            fail(e)
            continue
        except SchemaError as e:
            fail(DataError(path, i, None, str(e)))
            continue
        report.specialty_sources[source] += 1
        items.append(item)
    return items


def load_triage_images(
    root: str | Path,
    heldout_fraction: float = 0.5,
    seed: int = 0,
    *,
    on_error: str = "raise",
    rules: Optional[SpecialtyRules] = None,
    return_report: bool = False,
) -> Any:
    """Read every ``labels.jsonl`` under ``root`` and split train / held-out by specialty.

    Args:
        root: folder holding one sub-folder per source (``../shared/data/triage``).
        heldout_fraction: in [0, 1]; per specialty, ``floor(f * n + 0.5)`` items are held out.
        seed: split seed.
        on_error: ``"raise"`` or ``"skip"`` (skips are counted in the report and warned about).
        rules: specialty rules for rows without a ``specialty`` (default: packaged rules).
        return_report: also return a :class:`~mmed.data.loaders.LoadReport`.
    Returns:
        ``datasets.DatasetDict(train=..., heldout=...)`` in the item schema (``split`` column
        ``"train"`` / ``"heldout"``), or ``(dataset_dict, report)``.
    Raises:
        ValueError: ``heldout_fraction`` outside [0, 1], bad ``on_error``, or no
            ``labels.jsonl`` under ``root``.
        DataError: bad row under ``on_error="raise"`` (names file, line index, field),
            among them a line holding bytes that are not UTF-8 (skipped and counted under
            ``on_error="skip"``).
    """
    if not 0.0 <= heldout_fraction <= 1.0:
        raise ValueError(f"heldout_fraction must be in [0, 1], got {heldout_fraction}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    root = Path(root)
    files = sorted(root.rglob(LABELS_FILE))
    if not files:
        raise ValueError(f"no {LABELS_FILE} under {root}")
    report = LoadReport("triage", "labels_jsonl", str(root), "train+heldout")
    rules = rules or default_rules()
    items = [it for f in files for it in _read_labels(f, root, rules, report, on_error)]
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise DataError(root, None, "image", f"two rows name the same image id {it.id!r}", it.id)
        seen.add(it.id)
    by_spec: dict[str, dict[str, list[str]]] = {}  # specialty -> image hash -> ids
    for it in items:
        by_spec.setdefault(it.specialty, {}).setdefault(image_hash(it.images[0]), []).append(it.id)
    heldout_ids: set[str] = set()
    for spec, groups in sorted(by_spec.items()):
        dupes = [ids for ids in groups.values() if len(ids) > 1]
        if dupes:
            report.notes.append(f"{spec}: {len(dupes)} image content(s) shared by several rows, kept on one side: {dupes}")
        order = sorted(groups.values())
        random.Random(f"{seed}:{spec}").shuffle(order)
        target = math.floor(heldout_fraction * sum(len(g) for g in order) + 0.5)
        n = 0
        for ids in order:
            if n >= target:
                break
            heldout_ids.update(ids)
            n += len(ids)
    parts: dict[str, list[Item]] = {"train": [], "heldout": []}
    for it in items:
        it.split = "heldout" if it.id in heldout_ids else "train"
        parts[it.split].append(it)
    report.n_items = len(items)
    if report.skipped:
        warnings.warn(report.summary(), UserWarning, stacklevel=2)
    dd = datasets.DatasetDict({k: items_to_dataset(v, validate=False) for k, v in parts.items()})
    return (dd, report) if return_report else dd
