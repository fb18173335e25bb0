"""Benchmark loaders: each benchmark's real published layout -> items of one schema (DESIGN §3-4).

:func:`load_benchmark` reads the five benchmarks of MMedAgent-RL (paper §5: VQA-RAD, SLAKE,
PathVQA in-domain; OmniMedVQA, MMMU Health & Medicine out-of-domain) from local copies in their
published layouts, or from the Hugging Face Hub by id where one exists, and returns a
:class:`datasets.Dataset` with exactly :data:`mmed.data.schema.FEATURES`. Images stay files
(``datasets.Image`` holds the path, or the embedded bytes of parquet copies) and are decoded
only when a row is read, so loading is fast.

Layouts (``layout=None`` detects them from the files present; formats confirmed against public
loaders and dataset cards, cited per layout):

=============  =============  ===============================================================
benchmark      layout         files under ``source``
=============  =============  ===============================================================
``vqa_rad``    ``mevf``       ``data_RAD/{trainset,testset}.json`` + ``data_RAD/images/``
                              (fields qid, image_name, image_organ, question, answer,
                              answer_type, question_type, phrase_type; the MEVF split of
                              Nguyen et al. 2019 used by most Med-VQA papers). ``images`` may
                              be a git symlink stub (a text file holding the relative path).
``vqa_rad``    ``official``   ``VQA_RAD Dataset Public.json`` + ``VQA_RAD Image Folder/``
                              (OSF osf.io/89kps; its own test split = ``phrase_type``
                              test_freeform/test_para; ``split="all"`` reads every row).
``vqa_rad``    ``hub``        a local copy of Hub ``flaviagiammarino/vqa-rad`` (parquet
                              ``data/{train,test}-*.parquet``, a ``save_to_disk`` folder or
                              ``*.arrow``; columns image, question, answer) or the Hub id.
``slake``      ``official``   ``{train,validation,test}.json`` + ``imgs/`` (SLAKE 1.0, Liu et
                              al. 2021; Hub ``BoKelvin/SLAKE`` ships the same files; fields
                              qid, img_name, question, answer, q_lang, answer_type OPEN/CLOSED,
                              modality, location, content_type, base_type).
``pathvqa``    ``hub``        a local copy of Hub ``flaviagiammarino/path-vqa`` (image,
                              question, answer; splits train/validation/test) or the Hub id.
``pathvqa``    ``original``   the original release ``pvqa/qas/{train,val,test}/<split>_qa.pkl``
                              (a pickled list of dicts image/question/answer; read with a
                              restricted unpickler that admits builtin types only) +
                              ``pvqa/images/<split>/<image>.jpg``.
``omnimedvqa`` ``open_access`` ``QA_information/Open-access/<Dataset>.json`` (lists of rows
                              question_id, dataset, question_type, question, gt_answer,
                              option_A..option_D, modality_type, image_path) + ``Images/``;
                              ``image_path`` is relative to the folder holding
                              ``QA_information``. One split: ``"test"``.
``mmmu_med``   ``hub``        a local copy of Hub ``MMMU/MMMU`` (``<Subject>/<split>-*.parquet``
                              or merged ``<split>-*.parquet``; columns id, question, options (a
                              string repr of a list), answer (a letter), image_1..image_7,
                              img_type, question_type multiple-choice/open, subfield) or the
                              Hub id. Subjects: :data:`MMMU_MED_SUBJECTS`; split
                              ``"validation"`` (or ``"dev"``) - the test split has no answers.
=============  =============  ===============================================================

Answer type: where the source says (VQA-RAD's and SLAKE's ``answer_type``, MMMU's
``question_type``, OmniMedVQA: always closed) it is used; the Hub forms and PathVQA carry no
answer type, so a yes/no answer is closed and any other answer open (the usual convention for
these copies). Closed questions without given options become multiple choice by the rule of
:mod:`mmed.data.mcq`, its distractor pool drawn from the *training* split of the same layout
(or ``train_answers``). A closed question for which no options can be made is kept as an open
item and counted in :attr:`LoadReport.closed_as_open`.

Specialty: a ``specialty`` field in the data wins; else the keyword rules of
:mod:`mmed.data.specialty`; else (MMMU only) the documented per-subject default of the rules
file; else the row fails with an error naming the modality. VQA-RAD images are all radiology
(modality ``"radiology"`` -> Radiologist); PathVQA's are ``"pathology"`` -> Pathologist.

Bad input: a missing image file, a malformed row, a missing or invalid field raise
:class:`DataError` naming the file, the row index and the field. With ``on_error="skip"`` such
rows are skipped and listed in the :class:`LoadReport` (count and ids), and a warning says how
many. A file that is not valid JSON at all raises in both modes (there is no row to skip).
Nothing is dropped silently: every row read is an item, a skip, or a counted filter
(:attr:`LoadReport.filtered`: other split, other ``q_lang``, open questions when
``include_open=False``).
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, Union

import datasets

from .mcq import answer_pool, closed_to_mc, is_yes_no, normalize_answer
from .schema import OPTION_LETTERS, Item, SchemaError, items_to_dataset
from .specialty import SpecialtyRules, UnknownModalityError, default_rules, resolve_specialty
from .splits import image_hash

KNOWN_BENCHMARKS: tuple[str, ...] = ("vqa_rad", "slake", "pathvqa", "omnimedvqa", "mmmu_med")
LAYOUTS: dict[str, tuple[str, ...]] = {
    "vqa_rad": ("mevf", "official", "hub"),
    "slake": ("official",),
    "pathvqa": ("hub", "original"),
    "omnimedvqa": ("open_access",),
    "mmmu_med": ("hub",),
}
HUB_IDS: dict[str, str] = {
    "vqa_rad": "flaviagiammarino/vqa-rad",
    "slake": "BoKelvin/SLAKE",
    "pathvqa": "flaviagiammarino/path-vqa",
    "mmmu_med": "MMMU/MMMU",
}
#: MMMU's Health & Medicine subjects (DESIGN §1).
MMMU_MED_SUBJECTS: tuple[str, ...] = (
    "Basic_Medical_Science",
    "Clinical_Medicine",
    "Diagnostics_and_Laboratory_Medicine",
    "Pharmacy",
    "Public_Health",
)
VQA_RAD_OFFICIAL_JSON = "VQA_RAD Dataset Public.json"
VQA_RAD_OFFICIAL_IMAGES = "VQA_RAD Image Folder"
_SPLIT_ALIASES = {"validation": ("validation", "val", "valid"), "val": ("val", "validation", "valid")}


# ----------------------------------------------------------------------------------------
# errors and the report
# ----------------------------------------------------------------------------------------
class DataError(ValueError):
    """Bad input. The message names the file, the row index (0-based), the item id when known
    and the field; the same are attributes ``file``, ``row``, ``item_id``, ``field``."""

    def __init__(self, file: Any, row: Optional[int], field: Optional[str], message: str, item_id: Optional[str] = None):
        self.file, self.row, self.field, self.item_id = str(file), row, field, item_id
        where = str(file)
        if row is not None:
            where += f" row {row}"
        if item_id is not None:
            where += f" (id {item_id!r})"
        super().__init__(f"{where}: field {field!r}: {message}" if field else f"{where}: {message}")


@dataclass
class SkippedRow:
    """One row skipped under ``on_error="skip"``: where, which field, why."""

    file: str
    row: Optional[int]
    item_id: Optional[str]
    field: Optional[str]
    reason: str


@dataclass
class LoadReport:
    """What a load did with every row it read (returned by ``load_benchmark(...,
    return_report=True)``).

    Invariant: ``n_rows == n_items + n_skipped + sum(filtered.values())``.

    Attributes:
        n_rows: rows read from the source files.
        n_items: items returned.
        skipped: rows skipped under ``on_error="skip"`` (see :class:`SkippedRow`).
        filtered: rows left out on purpose, by reason (``"other split"``, ``"q_lang=zh"``,
            ``"open question"``, ``"other subject"``).
        mc_rules: closed items by the multiple-choice rule that made their options
            (``given``, ``yes_no``, ``alternatives``, ``distractors``, ``distractors_any_type``).
        closed_as_open: closed questions kept as open items because no options could be made.
        specialty_sources: items by where their specialty came from (data/rule/default).
        notes: remarks about the source (e.g. a resolved symlink stub).
    """

    dataset: str
    layout: str
    source: str
    split: str
    n_rows: int = 0
    n_items: int = 0
    skipped: list[SkippedRow] = field(default_factory=list)
    filtered: Counter = field(default_factory=Counter)
    mc_rules: Counter = field(default_factory=Counter)
    closed_as_open: int = 0
    specialty_sources: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def n_skipped(self) -> int:
        """Number of skipped rows."""
        return len(self.skipped)

    @property
    def skipped_ids(self) -> list[str]:
        """Ids (or ``file#row``) of the skipped rows, in reading order."""
        return [s.item_id or f"{s.file}#{s.row}" for s in self.skipped]

    def summary(self) -> str:
        """One paragraph: counts, filters, rules, skips with their first ids and reasons."""
        parts = [
            f"{self.dataset} ({self.layout}, split {self.split!r}) from {self.source}: "
            f"{self.n_rows} rows read -> {self.n_items} items"
        ]
        if self.filtered:
            parts.append("filtered " + ", ".join(f"{k}: {v}" for k, v in sorted(self.filtered.items())))
        if self.mc_rules:
            parts.append("multiple choice by " + ", ".join(f"{k}: {v}" for k, v in sorted(self.mc_rules.items())))
        if self.closed_as_open:
            parts.append(f"{self.closed_as_open} closed question(s) kept open (no options could be made)")
        if self.skipped:
            first = "; ".join(s.reason for s in self.skipped[:5])
            more = f" (+{self.n_skipped - 5} more)" if self.n_skipped > 5 else ""
            parts.append(f"SKIPPED {self.n_skipped} row(s): {first}{more}")
        parts.extend(self.notes)
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all counts (skipped rows as dicts)."""
        return {
            "dataset": self.dataset, "layout": self.layout, "source": self.source, "split": self.split,
            "n_rows": self.n_rows, "n_items": self.n_items, "n_skipped": self.n_skipped,
            "skipped": [s.__dict__ for s in self.skipped], "filtered": dict(self.filtered),
            "mc_rules": dict(self.mc_rules), "closed_as_open": self.closed_as_open,
            "specialty_sources": dict(self.specialty_sources), "notes": list(self.notes),
        }


# ----------------------------------------------------------------------------------------
# a source row before conversion
# ----------------------------------------------------------------------------------------
@dataclass
class _Raw:
    file: str
    row: int
    item_id: str
    split: str
    question: str
    answer: str
    answer_type: Optional[str]  # "closed" / "open"; None -> closed iff yes/no
    images: list[Any]  # file paths (str) or {"bytes", "path"} dicts
    image_ref: str
    modality: str
    organ: str = ""
    specialty: Optional[str] = None  # given with the data
    qtype: Optional[str] = None
    options: Optional[list[str]] = None  # given options (OmniMedVQA, MMMU)
    answer_idx: Optional[int] = None
    subject: str = "*"
    meta: dict[str, Any] = field(default_factory=dict)


_RowOrError = Union[_Raw, DataError]


def _get(row: Any, key: str, file: Any, idx: int, item_id: Optional[str] = None, *, kind: type | tuple = str) -> Any:
    """``row[key]`` checked for presence and type; numbers are accepted where text is asked."""
    if not isinstance(row, dict):
        raise DataError(file, idx, None, f"row is a {type(row).__name__}, expected a JSON object", item_id)
    if key not in row or row[key] is None:
        raise DataError(file, idx, key, "missing", item_id)
    v = row[key]
    if kind is str:
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise DataError(file, idx, key, f"expected text, got {type(v).__name__} {v!r}", item_id)
        v = str(v).strip()
        if not v:
            raise DataError(file, idx, key, "empty", item_id)
        return v
    if not isinstance(v, kind):
        raise DataError(file, idx, key, f"expected {kind}, got {type(v).__name__}", item_id)
    return v


def _answer_type(v: str, file: Any, idx: int, item_id: str, key: str = "answer_type") -> str:
    t = v.strip().upper()
    if t not in ("CLOSED", "OPEN"):
        raise DataError(file, idx, key, f"expected CLOSED or OPEN, got {v!r}", item_id)
    return t.lower()


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(path, None, None, "file not found") from None
    except json.JSONDecodeError as e:
        raise DataError(path, None, None, f"not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from None


def _read_json_list(path: Path) -> list[Any]:
    data = _read_json(path)
    if not isinstance(data, list):
        raise DataError(path, None, None, f"expected a JSON list of rows, got {type(data).__name__}")
    return data


def _resolve_dir(path: Path, notes: list[str]) -> Path:
    """A folder, or a git symlink stub: a small text file holding the relative folder path."""
    if path.is_dir():
        return path
    if path.is_file() and path.stat().st_size < 4096:
        target = (path.parent / path.read_text(encoding="utf-8").strip()).resolve()
        if target.is_dir():
            notes.append(f"{path} is a symlink stub -> {target}")
            return target
    raise DataError(path, None, None, "image folder not found (neither a folder nor a symlink stub to one)")


def _is_hub_id(source: Any) -> bool:
    s = str(source)
    return not os.path.exists(s) and re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", s) is not None


# ----------------------------------------------------------------------------------------
# tables: parquet / arrow / save_to_disk folders / the Hub
# ----------------------------------------------------------------------------------------
def _undecoded_rows(ds: datasets.Dataset) -> list[dict[str, Any]]:
    """Rows as plain dicts read through Arrow: image cells stay ``{"bytes", "path"}``."""
    return ds.with_format("arrow")[:].to_pylist() if len(ds) else []


def _split_names(split: str) -> tuple[str, ...]:
    return _SPLIT_ALIASES.get(split, (split,))


def _table_files(root: Path, split: str) -> list[Path]:
    for name in _split_names(split):
        for pattern in (f"{name}-*.parquet", f"{name}.parquet", f"{name}/*.parquet", f"{name}-*.arrow", f"{name}.arrow"):
            files = sorted(root.glob(pattern)) or sorted(root.glob(f"*/{pattern}"))
            if files:
                return files
    return []


def _read_table(
    source: Any, split: str, columns: Optional[list[str]] = None, config: Optional[str] = None
) -> list[tuple[str, int, dict[str, Any]]]:
    """Rows ``(file, row index, row)`` of one split of a Hub-form table (images undecoded).

    ``source``: a Hub id (``datasets.load_dataset``), a ``save_to_disk`` folder, or a folder
    with ``<split>-*.parquet`` / ``<split>.parquet`` / ``<split>/*.parquet`` / ``.arrow`` files
    (also one level down, e.g. ``data/``).
    """
    if _is_hub_id(source):
        try:
            ds = datasets.load_dataset(str(source), config, split=split)
        except Exception as e:  # offline, unknown id, unknown split: say which
            raise DataError(source, None, None, f"could not load split {split!r} from the Hub ({type(e).__name__}: {e})") from None
        if columns:
            ds = ds.select_columns([c for c in columns if c in ds.column_names])
        return [(f"hub:{source}", i, r) for i, r in enumerate(_undecoded_rows(ds))]
    root = Path(source)
    if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
        loaded = datasets.load_from_disk(str(root))
        if isinstance(loaded, datasets.DatasetDict):
            names = [n for n in _split_names(split) if n in loaded]
            if not names:
                raise DataError(root, None, None, f"no split {split!r}; splits present: {sorted(loaded)}")
            loaded = loaded[names[0]]
        if columns:
            loaded = loaded.select_columns([c for c in columns if c in loaded.column_names])
        return [(str(root), i, r) for i, r in enumerate(_undecoded_rows(loaded))]
    files = _table_files(root, split)
    if not files:
        raise DataError(root, None, None, f"no {split!r} table found (looked for {split}-*.parquet, {split}.parquet, "
                        f"{split}/*.parquet, *.arrow, dataset_dict.json, also one folder down)")
    out: list[tuple[str, int, dict[str, Any]]] = []
    for f in files:
        if f.suffix == ".parquet":
            import pyarrow.parquet as pq

            schema_names = pq.read_schema(f).names
            cols = [c for c in columns if c in schema_names] if columns else None
            rows = pq.read_table(f, columns=cols).to_pylist()
        else:
            ds = datasets.Dataset.from_file(str(f))
            rows = _undecoded_rows(ds.select_columns(columns) if columns else ds)
        out.extend((str(f), i, r) for i, r in enumerate(rows))
    return out


def _embedded_image(value: Any, file: str, idx: int, key: str, item_id: str) -> dict[str, Any]:
    """An image cell of a table as ``{"bytes", "path"}``; a missing/empty cell is an error."""
    if isinstance(value, dict) and (value.get("bytes") is not None or value.get("path")):
        if value.get("bytes") is None and not os.path.isfile(str(value["path"])):
            raise DataError(file, idx, key, f"image file {value['path']} not found", item_id)
        return {"bytes": value.get("bytes"), "path": value.get("path")}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value), "path": None}
    if isinstance(value, str) and os.path.isfile(value):
        return {"bytes": None, "path": value}
    raise DataError(file, idx, key, f"missing or unreadable image cell ({type(value).__name__})", item_id)


def _hub_rows(name: str, source: Any, split: str, modality: str) -> Iterator[_RowOrError]:
    """Hub form (image, question, answer): VQA-RAD and PathVQA copies."""
    for n, (file, idx, row) in enumerate(_read_table(source, split)):
        item_id = f"{name}/{split}/{n}"  # running number: unique across parquet shards
        try:
            q = _get(row, "question", file, idx, item_id)
            a = _get(row, "answer", file, idx, item_id)
            img = _embedded_image(row.get("image"), file, idx, "image", item_id)
        except DataError as e:
            yield e
            continue
        ref = img["path"] if img["path"] and os.path.isfile(str(img["path"])) else f"{file}#{idx}"
        yield _Raw(file, idx, item_id, split, q, a, None, [img], ref, modality, meta={"source_row": idx})


# ----------------------------------------------------------------------------------------
# VQA-RAD
# ----------------------------------------------------------------------------------------
def _vqa_rad_dirs(source: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if (source / VQA_RAD_OFFICIAL_JSON).is_file():
        found["official"] = source
    for d in (source / "data_RAD", source):
        if (d / "trainset.json").is_file() or (d / "testset.json").is_file():
            found["mevf"] = d
            break
    return found


def _vqa_rad_row(
    row: Any, file: Path, idx: int, split_of_row: Optional[str], images: Path, image_ok: Callable[[Path], bool]
) -> _Raw:
    qid = _get(row, "qid", file, idx)
    split = split_of_row or ("test" if str(row.get("phrase_type", "")).startswith("test") else "train")
    item_id = f"vqa_rad/{split}/{qid}"
    name = _get(row, "image_name", file, idx, item_id)
    path = images / name
    if not image_ok(path):
        raise DataError(file, idx, "image_name", f"image file {path} not found", item_id)
    q = _get(row, "question", file, idx, item_id)
    a = _get(row, "answer", file, idx, item_id)
    at = _answer_type(_get(row, "answer_type", file, idx, item_id), file, idx, item_id)
    meta = {k: row[k] for k in ("qid", "question_type", "phrase_type", "image_name") if k in row}
    return _Raw(str(file), idx, item_id, split, q, a, at, [str(path)], str(path), "radiology",
                organ=str(row.get("image_organ") or "").strip(), qtype=row.get("question_type"), meta=meta)


# ----------------------------------------------------------------------------------------
# the loader
# ----------------------------------------------------------------------------------------
class _Load:
    """State of one :func:`load_benchmark` call: report, error policy, image existence cache."""

    def __init__(self, name: str, layout: str, source: Any, split: str, on_error: str, rules: SpecialtyRules,
                 include_open: bool, max_options: int):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.name, self.layout, self.split = name, layout, split
        self.on_error, self.rules, self.include_open, self.max_options = on_error, rules, include_open, max_options
        self.report = LoadReport(name, layout, str(source), split)
        self._exists: dict[str, bool] = {}

    def image_ok(self, path: Path) -> bool:
        """Whether an image file exists (cached per path)."""
        key = str(path)
        if key not in self._exists:
            self._exists[key] = os.path.isfile(key)
        return self._exists[key]

    def fail(self, err: DataError) -> None:
        """Raise ``err`` or record it as a skip, per ``on_error``."""
        if self.on_error == "raise":
            raise err
        self.report.skipped.append(SkippedRow(err.file, err.row, err.item_id, err.field, str(err)))

    def build(self, rows: Iterable[_RowOrError], pool: Optional[Mapping[str, Sequence[str]]]) -> list[Item]:
        """Convert raw rows to validated items (multiple choice, specialty); count everything."""
        items: list[Item] = []
        seen: set[str] = set()
        for r in rows:
            self.report.n_rows += 1
            if isinstance(r, DataError):
                self.fail(r)
                continue
            if r.split == "__filtered__":
                self.report.filtered[r.meta["reason"]] += 1
                continue
            try:
                item = self._item(r, pool)
            except DataError as e:
                self.fail(e)
                continue
            if item is None:
                continue
            if item.id in seen:
                self.fail(DataError(r.file, r.row, "id", "duplicate item id", item.id))
                continue
            seen.add(item.id)
            items.append(item)
        self.report.n_items = len(items)
        return items

    def _item(self, r: _Raw, pool: Optional[Mapping[str, Sequence[str]]]) -> Optional[Item]:
        answer_type = r.answer_type or ("closed" if is_yes_no(r.answer) else "open")
        if answer_type == "open" and not self.include_open:
            self.report.filtered["open question"] += 1
            return None
        try:
            specialty, source = resolve_specialty(r.modality, r.specialty, self.rules)
        except UnknownModalityError as e:
            default = self.rules.default_for(self.name, r.subject)
            if default is None:
                raise DataError(r.file, r.row, "modality", str(e), r.item_id) from None
            specialty, source = default, "default"
        except ValueError as e:
            raise DataError(r.file, r.row, "specialty", str(e), r.item_id) from None
        meta = dict(r.meta, raw_answer=r.answer, specialty_source=source)
        options, answer_idx, answer = [], -1, r.answer
        if answer_type == "closed":
            if r.options is not None:
                options, answer_idx, rule = r.options, int(r.answer_idx), "given"
            else:
                try:
                    h = image_hash(r.images[0])
                except FileNotFoundError as e:
                    raise DataError(r.file, r.row, "image", str(e), r.item_id) from None
                mc = closed_to_mc(r.question, r.answer, image_hash=h, question_type=r.qtype, pool=pool,
                                  max_options=self.max_options)
                if mc is None:
                    answer_type, rule = "open", ""
                    meta["source_answer_type"] = "closed"
                    self.report.closed_as_open += 1
                else:
                    options, answer_idx, rule = mc.options, mc.answer_idx, mc.rule
            if answer_type == "closed":
                answer = options[answer_idx]
                meta["mc_rule"] = rule
                self.report.mc_rules[rule] += 1
        item = Item(id=r.item_id, dataset=self.name, split=r.split, images=r.images, image_ref=r.image_ref,
                    question=r.question, options=list(options), answer_idx=answer_idx, answer=answer,
                    answer_type=answer_type, modality=r.modality, specialty=specialty, organ=r.organ, meta=meta)
        try:
            item.validate()
        except SchemaError as e:
            raise DataError(r.file, r.row, None, str(e), r.item_id) from None
        self.report.specialty_sources[source] += 1
        return item


def _filtered(file: str, idx: int, reason: str) -> _Raw:
    return _Raw(file, idx, "", "__filtered__", "", "", None, [], "", "", meta={"reason": reason})


def _pool_or(train_answers: Optional[Mapping[str, Sequence[str]]], make: Callable[[], Iterable[tuple]]) -> Mapping[str, Sequence[str]]:
    return train_answers if train_answers is not None else answer_pool(make())


# --- VQA-RAD -----------------------------------------------------------------------------
def _load_vqa_rad(ld: _Load, source: Any, split: str, train_answers: Any) -> list[Item]:
    if ld.layout == "hub":
        src = source
        pool = _pool_or(train_answers, lambda: [(None, r.get("question", ""), r.get("answer", ""))
                                                for _, _, r in _read_table(src, "train", ["question", "answer"])])
        return ld.build(_hub_rows("vqa_rad", src, split, "radiology"), pool)
    dirs = _vqa_rad_dirs(Path(source))
    if ld.layout == "mevf":
        d = dirs["mevf"]
        if split not in ("train", "test"):
            raise ValueError(f"vqa_rad layout 'mevf' has splits 'train' and 'test', not {split!r}")
        images = _resolve_dir(d / "images", ld.report.notes)
        train_rows = _read_json_list(d / "trainset.json")
        pool = _pool_or(train_answers, lambda: [(r.get("question_type"), str(r.get("question", "")), str(r.get("answer", "")))
                                                for r in train_rows if isinstance(r, dict)])
        f = d / f"{split}set.json"
        rows = train_rows if split == "train" else _read_json_list(f)

        def gen() -> Iterator[_RowOrError]:
            for i, row in enumerate(rows):
                try:
                    yield _vqa_rad_row(row, f, i, split, images, ld.image_ok)
                except DataError as e:
                    yield e

        return ld.build(gen(), pool)
    # official
    d = dirs["official"]
    if split not in ("train", "test", "all"):
        raise ValueError(f"vqa_rad layout 'official' has splits 'train', 'test' (phrase_type test_*) and 'all', not {split!r}")
    f = d / VQA_RAD_OFFICIAL_JSON
    rows = _read_json_list(f)
    images = _resolve_dir(d / VQA_RAD_OFFICIAL_IMAGES, ld.report.notes)
    is_test = [isinstance(r, dict) and str(r.get("phrase_type", "")).startswith("test") for r in rows]
    pool = _pool_or(train_answers, lambda: [(r.get("question_type"), str(r.get("question", "")), str(r.get("answer", "")))
                                            for r, t in zip(rows, is_test) if isinstance(r, dict) and not t])

    def gen_official() -> Iterator[_RowOrError]:
        for i, (row, t) in enumerate(zip(rows, is_test)):
            if split != "all" and isinstance(row, dict) and t != (split == "test"):
                yield _filtered(str(f), i, "other split")
                continue
            try:
                yield _vqa_rad_row(row, f, i, None, images, ld.image_ok)
            except DataError as e:
                yield e

    return ld.build(gen_official(), pool)


# --- SLAKE -------------------------------------------------------------------------------
def _slake_dir(source: Path) -> Optional[Path]:
    for d in (source, source / "Slake1.0", source / "Slake"):
        if (d / "train.json").is_file() or (d / "test.json").is_file():
            return d
    return None


def _load_slake(ld: _Load, source: Any, split: str, train_answers: Any, q_lang: Optional[str]) -> list[Item]:
    d = _slake_dir(Path(source))
    files = {"train": "train.json", "validation": "validation.json", "val": "validation.json", "test": "test.json"}
    if split not in files:
        raise ValueError(f"slake splits are {sorted(files)}, not {split!r}")
    images = _resolve_dir(d / "imgs", ld.report.notes)
    split_name = "validation" if split == "val" else split

    def lang_ok(r: Any) -> bool:
        return q_lang in (None, "all") or (isinstance(r, dict) and r.get("q_lang") == q_lang)

    train_rows = _read_json_list(d / "train.json") if (d / "train.json").is_file() else []
    pool = _pool_or(train_answers, lambda: [(r.get("content_type"), str(r.get("question", "")), str(r.get("answer", "")))
                                            for r in train_rows if isinstance(r, dict) and lang_ok(r)])
    f = d / files[split]
    rows = train_rows if split == "train" and train_rows else _read_json_list(f)

    def gen() -> Iterator[_RowOrError]:
        for i, row in enumerate(rows):
            try:
                if isinstance(row, dict) and not lang_ok(row):
                    yield _filtered(str(f), i, f"q_lang={row.get('q_lang')}")
                    continue
                qid = _get(row, "qid", f, i)
                item_id = f"slake/{split_name}/{qid}"
                name = _get(row, "img_name", f, i, item_id)
                path = images / name
                if not ld.image_ok(path):
                    raise DataError(f, i, "img_name", f"image file {path} not found", item_id)
                q = _get(row, "question", f, i, item_id)
                a = _get(row, "answer", f, i, item_id)
                at = _answer_type(_get(row, "answer_type", f, i, item_id), f, i, item_id)
                modality = _get(row, "modality", f, i, item_id)
                meta = {k: row[k] for k in ("qid", "img_id", "img_name", "q_lang", "content_type", "base_type") if k in row}
                yield _Raw(str(f), i, item_id, split_name, q, a, at, [str(path)], str(path), modality,
                           organ=str(row.get("location") or ""), specialty=row.get("specialty"),
                           qtype=row.get("content_type"), meta=meta)
            except DataError as e:
                yield e

    return ld.build(gen(), pool)


# --- PathVQA -----------------------------------------------------------------------------
class _BuiltinsOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global: lists/dicts/strings/numbers load, code cannot run."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} (only builtin data types are allowed)")


def _pvqa_dir(source: Path) -> Optional[Path]:
    for d in (source / "pvqa", source):
        if (d / "qas").is_dir():
            return d
    return None


def _pvqa_qa_file(d: Path, split: str) -> Path:
    for s in _split_names(split):
        for f in (d / "qas" / s / f"{s}_qa.pkl", d / "qas" / f"{s}_qa.pkl"):
            if f.is_file():
                return f
    raise DataError(d / "qas", None, None, f"no {split}_qa.pkl for split {split!r} (looked in qas/<split>/ and qas/)")


def _read_pvqa(f: Path) -> list[Any]:
    try:
        with open(f, "rb") as fh:
            data = _BuiltinsOnlyUnpickler(fh).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise DataError(f, None, None, f"not a readable pickle of builtin rows: {e}") from None
    if not isinstance(data, list):
        raise DataError(f, None, None, f"expected a pickled list of rows, got {type(data).__name__}")
    return data


def _load_pathvqa(ld: _Load, source: Any, split: str, train_answers: Any) -> list[Item]:
    if ld.layout == "hub":
        pool = _pool_or(train_answers, lambda: [(None, r.get("question", ""), r.get("answer", ""))
                                                for _, _, r in _read_table(source, "train", ["question", "answer"])])
        return ld.build(_hub_rows("pathvqa", source, split, "pathology"), pool)
    d = _pvqa_dir(Path(source))
    f = _pvqa_qa_file(d, split)
    img_split = f.stem[: -len("_qa")]
    rows = _read_pvqa(f)
    pool = _pool_or(train_answers, lambda: [(None, str(r.get("question", "")), str(r.get("answer", "")))
                                            for r in _read_pvqa(_pvqa_qa_file(d, "train")) if isinstance(r, dict)])
    split_name = "validation" if img_split == "val" else img_split

    def gen() -> Iterator[_RowOrError]:
        for i, row in enumerate(rows):
            try:
                image = _get(row, "image", f, i)
                item_id = f"pathvqa/{split_name}/{i}"
                path = next((p for p in (d / "images" / img_split / f"{image}{ext}" for ext in (".jpg", ".png", ""))
                             if ld.image_ok(p)), None)
                if path is None:
                    raise DataError(f, i, "image", f"image file {d / 'images' / img_split / image}.jpg not found", item_id)
                q = _get(row, "question", f, i, item_id)
                a = _get(row, "answer", f, i, item_id)
                yield _Raw(str(f), i, item_id, split_name, q, a, None, [str(path)], str(path), "pathology",
                           meta={"image": image})
            except DataError as e:
                yield e

    return ld.build(gen(), pool)


# --- OmniMedVQA --------------------------------------------------------------------------
def _omni_dirs(source: Path) -> Optional[tuple[Path, Path]]:
    """(folder of QA json files, image root that image_path is relative to)."""
    for root in (source, source / "OmniMedVQA"):
        qa = root / "QA_information" / "Open-access"
        if qa.is_dir():
            return qa, root
    if source.name == "Open-access" and source.is_dir():
        return source, source.parent.parent
    return None


def _load_omnimedvqa(ld: _Load, source: Any, split: str, subsets: Optional[Sequence[str]]) -> list[Item]:
    if split not in ("test", "all"):
        raise ValueError(f"omnimedvqa is an evaluation set with one split, 'test' (or 'all'), not {split!r}")
    qa_dir, root = _omni_dirs(Path(source))
    files = sorted(qa_dir.glob("*.json"))
    if subsets is not None:
        known = {f.stem for f in files}
        unknown = sorted(set(subsets) - known)
        if unknown:
            raise ValueError(f"unknown omnimedvqa subset(s) {unknown}; present in {qa_dir}: {sorted(known)}")
        files = [f for f in files if f.stem in set(subsets)]

    def gen() -> Iterator[_RowOrError]:
        for f in files:
            rows = _read_json_list(f)
            for i, row in enumerate(rows):
                try:
                    qid = _get(row, "question_id", f, i)
                    item_id = f"omnimedvqa/test/{f.stem}/{qid}"
                    rel = _get(row, "image_path", f, i, item_id)
                    path = root / rel
                    if not ld.image_ok(path):
                        raise DataError(f, i, "image_path", f"image file {path} not found", item_id)
                    q = _get(row, "question", f, i, item_id)
                    gt = _get(row, "gt_answer", f, i, item_id)
                    # one real file spells the field "modality"; accept that alias
                    key = "modality" if "modality_type" not in row and "modality" in row else "modality_type"
                    modality = _get(row, key, f, i, item_id)
                    options = [str(row[k]).strip() for k in (f"option_{L}" for L in "ABCDEFGH")
                               if row.get(k) is not None and str(row[k]).strip()]
                    if len(options) < 2:
                        raise DataError(f, i, "option_A", f"needs at least two of option_A..option_D, got {options}", item_id)
                    idx = options.index(gt) if gt in options else next(
                        (j for j, o in enumerate(options) if normalize_answer(o) == normalize_answer(gt)), -1)
                    if idx < 0:
                        raise DataError(f, i, "gt_answer", f"{gt!r} is none of the options {options}", item_id)
                    meta = {k: row[k] for k in ("question_id", "dataset", "question_type", "image_path") if k in row}
                    yield _Raw(str(f), i, item_id, "test", q, options[idx], "closed", [str(path)], str(path), modality,
                               specialty=row.get("specialty"), options=options, answer_idx=idx, meta=meta)
                except DataError as e:
                    yield e

    return ld.build(gen(), None)


# --- MMMU (Health & Medicine) -------------------------------------------------------------
def _subject_of(mmmu_id: str, subjects: Sequence[str]) -> Optional[str]:
    for s in sorted(subjects, key=len, reverse=True):
        if f"_{s}_" in f"_{mmmu_id}_":
            return s
    return None


def _mmmu_tables(
    source: Any, split: str, subjects: Sequence[str], explicit: bool, notes: list[str]
) -> Iterator[tuple[Optional[str], str, int, dict]]:
    """(subject or None = from id, file, row index, row) over the requested subjects.

    A local copy with one folder per subject may hold only some subjects: without an explicit
    ``subjects`` the ones present are read (the missing ones are noted in the report); named
    subjects that are missing are an error.
    """
    if _is_hub_id(source):
        for s in subjects:
            for file, idx, row in _read_table(source, split, config=s):
                yield s, file, idx, row
        return
    root = Path(source)
    present = [s for s in subjects if (root / s).is_dir()]
    if present:
        missing = [s for s in subjects if s not in present]
        if missing and explicit:
            raise DataError(root, None, None, f"subject folder(s) {missing} not found")
        if missing:
            notes.append(f"subject folder(s) not present, not read: {missing}")
        for s in present:
            for file, idx, row in _read_table(root / s, split):
                yield s, file, idx, row
        return
    for file, idx, row in _read_table(root, split):  # merged copy: subject from the id
        yield None, file, idx, row


def _parse_list_literal(text: Any, file: str, idx: int, key: str, item_id: str) -> list[str]:
    if isinstance(text, list):
        return [str(x) for x in text]
    try:
        v = ast.literal_eval(str(text))
    except (ValueError, SyntaxError):
        raise DataError(file, idx, key, f"not a list literal: {str(text)[:80]!r}", item_id) from None
    if not isinstance(v, list):
        raise DataError(file, idx, key, f"expected a list, got {type(v).__name__}", item_id)
    return [str(x) for x in v]


def _load_mmmu(ld: _Load, source: Any, split: str, subjects: Optional[Sequence[str]]) -> list[Item]:
    if split == "test":
        raise ValueError("mmmu_med: MMMU's test split has no public answers; use split='validation' (or 'dev')")
    if split not in ("validation", "dev"):
        raise ValueError(f"mmmu_med splits are 'validation' and 'dev', not {split!r}")
    explicit = subjects is not None
    subjects = tuple(subjects) if subjects is not None else MMMU_MED_SUBJECTS
    unknown = sorted(set(subjects) - set(MMMU_MED_SUBJECTS))
    if unknown:
        raise ValueError(f"unknown MMMU Health & Medicine subject(s) {unknown}; known: {list(MMMU_MED_SUBJECTS)}")

    def gen() -> Iterator[_RowOrError]:
        for subject, file, idx, row in _mmmu_tables(source, split, subjects, explicit, ld.report.notes):
            try:
                mid = _get(row, "id", file, idx)
                subj = subject or _subject_of(mid, MMMU_MED_SUBJECTS)
                if subj not in subjects:
                    yield _filtered(file, idx, "other subject")
                    continue
                item_id = f"mmmu_med/{split}/{mid}"
                q = _get(row, "question", file, idx, item_id)
                qtype = _get(row, "question_type", file, idx, item_id)
                a = _get(row, "answer", file, idx, item_id)
                images = [_embedded_image(row[f"image_{k}"], file, idx, f"image_{k}", item_id)
                          for k in range(1, 8) if row.get(f"image_{k}") is not None]
                if not images:
                    raise DataError(file, idx, "image_1", "no image (image_1..image_7 all empty)", item_id)
                img_type = row.get("img_type")
                modality = "; ".join(_parse_list_literal(img_type, file, idx, "img_type", item_id)) if img_type else ""
                meta = {"mmmu_id": mid, "subject": subj, "n_images": len(images),
                        **{k: row[k] for k in ("subfield", "topic_difficulty", "question_type") if row.get(k) is not None}}
                ref = f"{file}#{mid}/image_1"
                if qtype == "multiple-choice":
                    options = _parse_list_literal(_get(row, "options", file, idx, item_id), file, idx, "options", item_id)
                    letter = a.strip().upper()
                    if len(letter) != 1 or letter not in OPTION_LETTERS[: len(options)]:
                        raise DataError(file, idx, "answer", f"{a!r} is not a letter within the {len(options)} options", item_id)
                    j = OPTION_LETTERS.index(letter)
                    meta["answer_letter"] = letter
                    yield _Raw(file, idx, item_id, split, q, options[j], "closed", images, ref, modality,
                               options=options, answer_idx=j, subject=subj, meta=meta)
                elif qtype == "open":
                    yield _Raw(file, idx, item_id, split, q, a, "open", images, ref, modality, subject=subj, meta=meta)
                else:
                    raise DataError(file, idx, "question_type", f"expected 'multiple-choice' or 'open', got {qtype!r}", item_id)
            except DataError as e:
                yield e

    return ld.build(gen(), None)


# ----------------------------------------------------------------------------------------
# layout detection and the public entry point
# ----------------------------------------------------------------------------------------
def detect_layout(name: str, source: Any, split: str = "test") -> str:
    """The layout of ``source`` for benchmark ``name`` (see the module docstring's table).

    VQA-RAD with both the official and the MEVF files present: ``mevf`` for ``train``/``test``
    (the literature's split, DESIGN §4), ``official`` for ``all``.

    Raises:
        ValueError: unknown ``name`` (listing the known ones), or no known layout's files
            under ``source`` (listing what each layout expects).
    """
    if name not in LAYOUTS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(KNOWN_BENCHMARKS)}")
    if _is_hub_id(source):
        if name not in HUB_IDS or "hub" not in LAYOUTS[name]:
            raise ValueError(f"{name}: {source!r} is not a local path and {name} has no Hub layout here")
        return "hub"
    root = Path(source)
    if not root.exists():
        raise ValueError(f"{name}: source {root} does not exist (and is not a Hub id like {HUB_IDS.get(name, 'owner/name')!r})")
    if name == "vqa_rad":
        found = _vqa_rad_dirs(root)
        if "mevf" in found and (split in ("train", "test") or "official" not in found):
            return "mevf"
        if "official" in found:
            return "official"
        if _table_files(root, "train") or _table_files(root, "test") or (root / "dataset_dict.json").is_file():
            return "hub"
        expected = f"'{VQA_RAD_OFFICIAL_JSON}' (official), data_RAD/trainset.json (mevf), or {{train,test}}-*.parquet (hub)"
    elif name == "slake":
        if _slake_dir(root) is not None:
            return "official"
        expected = "train.json / validation.json / test.json + imgs/"
    elif name == "pathvqa":
        if _pvqa_dir(root) is not None:
            return "original"
        if any(_table_files(root, s) for s in ("train", "validation", "test")) or (root / "dataset_dict.json").is_file():
            return "hub"
        expected = "pvqa/qas/<split>/<split>_qa.pkl (original) or <split>-*.parquet (hub)"
    elif name == "omnimedvqa":
        if _omni_dirs(root) is not None:
            return "open_access"
        expected = "QA_information/Open-access/*.json"
    else:  # mmmu_med
        if any((root / s).is_dir() for s in MMMU_MED_SUBJECTS) or _table_files(root, "validation") or _table_files(root, "dev"):
            return "hub"
        expected = "<Subject>/validation-*.parquet or validation-*.parquet"
    raise ValueError(f"{name}: no known layout under {root}; expected {expected}")


def load_benchmark(
    name: str,
    source: str | os.PathLike[str],
    split: str = "test",
    *,
    layout: Optional[str] = None,
    q_lang: Optional[str] = "en",
    on_error: str = "raise",
    include_open: bool = True,
    train_answers: Optional[Mapping[str, Sequence[str]]] = None,
    subsets: Optional[Sequence[str]] = None,
    rules: Optional[SpecialtyRules] = None,
    max_options: int = 4,
    return_report: bool = False,
) -> Union[datasets.Dataset, tuple[datasets.Dataset, LoadReport]]:
    """Load one benchmark split into the item schema (see the module docstring for layouts).

    Args:
        name: one of :data:`KNOWN_BENCHMARKS`.
        source: the benchmark's folder (its published layout), or a Hub id for the Hub forms
            (``flaviagiammarino/vqa-rad``, ``flaviagiammarino/path-vqa``, ``MMMU/MMMU``).
        split: ``train``/``test`` (VQA-RAD: the MEVF split; official layout also ``all``),
            ``validation`` (SLAKE, PathVQA, MMMU), ``test`` (OmniMedVQA).
        layout: force a layout of :data:`LAYOUTS`; ``None`` detects it (:func:`detect_layout`).
        q_lang: SLAKE question language (``"en"``, ``"zh"``, or ``None``/``"all"``); other
            rows are counted as filtered. Ignored by the other benchmarks.
        on_error: ``"raise"`` (default) or ``"skip"`` bad rows (counted, ids in the report,
            and a ``UserWarning``).
        include_open: keep open questions (``False``: they are counted as filtered).
        train_answers: distractor pool for the multiple-choice rule (``mcq.answer_pool``);
            default: built from the same layout's training split.
        subsets: the parts to read: MMMU subjects (default :data:`MMMU_MED_SUBJECTS`) or
            OmniMedVQA QA-file stems, i.e. source datasets (default all). Others ignore it.
        rules: specialty rules (default the packaged ``specialty_rules.yaml``).
        max_options: at most this many options when distractors are drawn.
        return_report: also return the :class:`LoadReport`.
    Returns:
        ``datasets.Dataset`` with :data:`mmed.data.schema.FEATURES`, rows in source order
        (or ``(dataset, report)``).
    Raises:
        ValueError: unknown dataset name (listing the known ones), layout or split.
        DataError: bad input under ``on_error="raise"`` (names file, row, field); a whole
            file that is not valid JSON in either mode.
    """
    if name not in LAYOUTS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(KNOWN_BENCHMARKS)}")
    if layout is None:
        layout = detect_layout(name, source, split)
    elif layout not in LAYOUTS[name]:
        raise ValueError(f"unknown layout {layout!r} for {name}; known: {', '.join(LAYOUTS[name])}")
    ld = _Load(name, layout, source, split, on_error, rules or default_rules(), include_open, max_options)
    if layout != "hub" and not _is_hub_id(source) and not Path(source).exists():
        raise ValueError(f"{name}: source {source} does not exist")
    if name == "vqa_rad":
        if layout != "hub" and layout not in _vqa_rad_dirs(Path(source)):
            raise ValueError(f"vqa_rad: layout {layout!r} files not found under {source}")
        items = _load_vqa_rad(ld, source, split, train_answers)
    elif name == "slake":
        if _slake_dir(Path(source)) is None:
            raise ValueError(f"slake: no train.json/validation.json/test.json under {source}")
        items = _load_slake(ld, source, split, train_answers, q_lang)
    elif name == "pathvqa":
        if layout == "original" and _pvqa_dir(Path(source)) is None:
            raise ValueError(f"pathvqa: no pvqa/qas folder under {source}")
        items = _load_pathvqa(ld, source, split, train_answers)
    elif name == "omnimedvqa":
        if _omni_dirs(Path(source)) is None:
            raise ValueError(f"omnimedvqa: no QA_information/Open-access under {source}")
        items = _load_omnimedvqa(ld, source, split, subsets)
    else:
        items = _load_mmmu(ld, source, split, subsets)
    if ld.report.skipped:
        warnings.warn(ld.report.summary(), UserWarning, stacklevel=2)
    ds = items_to_dataset(items, validate=False)  # validated one by one above
    return (ds, ld.report) if return_report else ds
