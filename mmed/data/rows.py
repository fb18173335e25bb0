"""Source rows -> items: the machinery the benchmark loaders share (docs/architecture.md#bad-rows).

A benchmark reader (:mod:`mmed.data.loaders`, :mod:`mmed.data.triage_images`) turns each row
of a source file into a :class:`SourceRow` (the fields as the source gives them), a
:class:`Filtered` marker (a row left out on purpose: other split, other language, ...) or a
:class:`DataError` (bad input, naming file, row index and field). :class:`ItemBuilder` then
makes validated :class:`~mmed.data.schema.Item` objects - options by the multiple-choice
rule of :mod:`mmed.data.mcq`, specialty by :mod:`mmed.data.specialty` - and counts every row
in a :class:`LoadReport`, so nothing is dropped silently.

Also here: reading JSON lists, Hub-form tables (parquet / arrow / ``save_to_disk`` folders /
``datasets.load_dataset``) without decoding their images, and git symlink stubs.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import datasets
import pyarrow as pa

from .mcq import closed_to_mc, is_yes_no
from .schema import Item, SchemaError
from .specialty import SpecialtyRules, UnknownModalityError, resolve_specialty
from .splits import image_hash

#: split names that mean the same split in different releases
SPLIT_ALIASES = {"validation": ("validation", "val", "valid"), "val": ("val", "validation", "valid")}
#: a distractor pool (``mcq.answer_pool``) or nothing
Pool = Optional[Mapping[str, Sequence[str]]]


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
        files: rows read per source file of the split (``{path: rows}``); a file with 0 rows
            among others is listed in :attr:`empty_files` and noted in the summary.
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
    files: dict[str, int] = field(default_factory=dict)

    @property
    def empty_files(self) -> list[str]:
        """Source files of the split that hold no rows (in reading order)."""
        return [f for f, n in self.files.items() if n == 0]

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
        if self.empty_files:
            parts.append(f"{len(self.empty_files)} file(s) with no rows: {', '.join(self.empty_files)}")
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
            "files": dict(self.files), "empty_files": self.empty_files,
        }


# ----------------------------------------------------------------------------------------
# a source row before conversion
# ----------------------------------------------------------------------------------------
@dataclass
class SourceRow:
    """One source row as the benchmark gives it, before the item rules are applied.

    ``answer_type`` None means "closed iff the answer is yes/no" (sources without the field);
    ``options``/``answer_idx`` are set only where the source gives options (OmniMedVQA, MMMU);
    ``images`` holds file paths or ``{"bytes", "path"}`` dicts; ``subject`` selects a
    per-subject default specialty of the rules file.
    """

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


@dataclass
class Filtered:
    """A row left out on purpose; counted in :attr:`LoadReport.filtered` under ``reason``."""

    reason: str


RowResult = Union[SourceRow, Filtered, DataError]


def get_text(row: Any, key: str, file: Any, idx: int, item_id: Optional[str] = None) -> str:
    """``row[key]`` as stripped text (numbers are accepted: VQA-RAD has integer answers).

    Raises:
        DataError: the row is not a dict, or the field is missing, null, empty or not text;
            or the row holds bytes that are not UTF-8 (an :class:`UndecodableRow`: the error
            names the field that holds them, whichever ``key`` was asked for).
    """
    if isinstance(row, UndecodableRow):
        raise DataError(file, idx, row.field, row.problem, item_id)
    if not isinstance(row, dict):
        raise DataError(file, idx, None, f"row is a {type(row).__name__}, expected a JSON object", item_id)
    if key not in row or row[key] is None:
        raise DataError(file, idx, key, "missing", item_id)
    v = row[key]
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise DataError(file, idx, key, f"expected text, got {type(v).__name__} {v!r}", item_id)
    text = str(v).strip()
    if not text:
        raise DataError(file, idx, key, "empty", item_id)
    return text


def answer_type_field(v: str, file: Any, idx: int, item_id: str, key: str = "answer_type") -> str:
    """``"closed"``/``"open"`` from a source's ``CLOSED``/``OPEN`` (case and spaces ignored).

    Raises:
        DataError: any other value.
    """
    t = v.strip().upper()
    if t not in ("CLOSED", "OPEN"):
        raise DataError(file, idx, key, f"expected CLOSED or OPEN, got {v!r}", item_id)
    return t.lower()


# ----------------------------------------------------------------------------------------
# text that is not UTF-8
# ----------------------------------------------------------------------------------------
#: the characters ``errors="surrogateescape"`` decodes an undecodable byte 0x80..0xff to
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def printable(text: str) -> str:
    """``text`` with every undecodable (surrogate-escaped) byte written as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def decode_text(raw: bytes) -> str:
    """Bytes of a text file as ``str``: UTF-8 (a leading BOM dropped); a byte that is not
    UTF-8 becomes a surrogate escape (``errors="surrogateescape"``) that
    :func:`undecodable_field` finds, so the row holding it can be named and skipped."""
    return raw.decode("utf-8-sig", errors="surrogateescape")


def undecodable_field(value: Any, where: str = "") -> Optional[tuple[str, str]]:
    """``(field, problem)`` for the first string in ``value`` (a row: dict / list / str,
    searched depth first, keys too) holding a byte that was not UTF-8, else ``None``.
    ``field`` is the top-level key (``"question"``; nested: ``"triple[1]"``); ``problem``
    is one line: ``"not valid UTF-8: byte 0xff in 'Which side\\xff is ...'"``."""
    if isinstance(value, str):
        m = _ESCAPED_BYTE.search(value)
        if m is None:
            return None
        start = max(0, m.start() - 40)
        snippet = printable(value[start : m.start() + 40]).replace("\n", "\\n").replace("\r", "\\r")
        return where, f"not valid UTF-8: byte 0x{ord(m.group(0)) - 0xDC00:02x} in '{'...' if start else ''}{snippet}'"
    if isinstance(value, dict):
        for k, v in value.items():
            key = printable(str(k))
            name = f"{where}.{key}" if where else key
            found = undecodable_field(str(k), name) or undecodable_field(v, name)
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = undecodable_field(v, f"{where}[{i}]")
            if found:
                return found
    return None


class UndecodableRow(dict):
    """A JSON row holding bytes that are not UTF-8. :func:`get_text` raises a
    :class:`DataError` naming ``field`` for it (so the loaders skip or raise per
    ``on_error``); the distractor pool leaves it out; a filter (split, language) still reads
    its other fields with ``row.get``."""

    def __init__(self, row: dict, field: str, problem: str):
        super().__init__(row)
        self.field, self.problem = field, problem


def read_json(path: Path) -> Any:
    """Parse a JSON file (UTF-8; undecodable bytes kept as surrogate escapes, see
    :func:`decode_text`). Raises :class:`DataError` naming the file (and line/column)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(path, None, None, "file not found") from None
    try:
        return json.loads(decode_text(raw))
    except json.JSONDecodeError as e:
        raise DataError(path, None, None, f"not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from None


def read_json_list(path: Path) -> list[Any]:
    """A JSON file holding a list of rows. A row holding bytes that are not UTF-8 comes back
    as an :class:`UndecodableRow` (named and skipped or raised per row, not for the whole
    file). Raises :class:`DataError` when the file is not a JSON list."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(path, None, None, f"expected a JSON list of rows, got {type(data).__name__}")
    for i, row in enumerate(data):
        bad = undecodable_field(row)
        if bad is not None:
            data[i] = UndecodableRow(row if isinstance(row, dict) else {}, bad[0] or "(row)", bad[1])
    return data


def resolve_dir(path: Path, notes: list[str]) -> Path:
    """A folder, or a git symlink stub: a small text file holding the relative folder path."""
    if path.is_dir():
        return path
    if path.is_file() and path.stat().st_size < 4096:
        target = (path.parent / path.read_text(encoding="utf-8").strip()).resolve()
        if target.is_dir():
            notes.append(f"{path} is a symlink stub -> {target}")
            return target
    raise DataError(path, None, None, "image folder not found (neither a folder nor a symlink stub to one)")


def is_hub_id(source: Any) -> bool:
    """``owner/name`` that is not an existing local path."""
    s = str(source)
    return not os.path.exists(s) and re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", s) is not None


# ----------------------------------------------------------------------------------------
# tables: parquet / arrow / save_to_disk folders / the Hub
# ----------------------------------------------------------------------------------------
def undecoded_rows(ds: datasets.Dataset) -> list[dict[str, Any]]:
    """Rows as plain dicts read through Arrow: image cells stay ``{"bytes", "path"}``."""
    return ds.with_format("arrow")[:].to_pylist() if len(ds) else []


def split_names(split: str) -> tuple[str, ...]:
    """``split`` and the names other releases give it (``validation`` / ``val`` / ``valid``)."""
    return SPLIT_ALIASES.get(split, (split,))


def table_files(root: Path, split: str) -> list[Path]:
    """Parquet/arrow files of ``split`` under ``root`` (or one folder down), sorted; [] if none."""
    for name in split_names(split):
        for pattern in (f"{name}-*.parquet", f"{name}.parquet", f"{name}/*.parquet", f"{name}-*.arrow", f"{name}.arrow"):
            files = sorted(root.glob(pattern)) or sorted(root.glob(f"*/{pattern}"))
            if files:
                return files
    return []


def read_table(
    source: Any, split: str, columns: Optional[list[str]] = None, config: Optional[str] = None,
    counts: Optional[dict[str, int]] = None,
) -> list[tuple[str, int, dict[str, Any]]]:
    """Rows ``(file, row index, row)`` of one split of a Hub-form table (images undecoded).

    ``source``: a Hub id (``datasets.load_dataset``), a ``save_to_disk`` folder, or a folder
    with ``<split>-*.parquet`` / ``<split>.parquet`` / ``<split>/*.parquet`` / ``.arrow`` files
    (also one level down, e.g. ``data/``). ``counts``, when given, receives the number of
    rows of every file read (``{file: rows}``, empty files included).
    """
    counts = {} if counts is None else counts
    if is_hub_id(source):
        try:
            ds = datasets.load_dataset(str(source), config, split=split)
        except Exception as e:  # offline, unknown id, unknown split: say which
            raise DataError(source, None, None, f"could not load split {split!r} from the Hub ({type(e).__name__}: {e})") from None
        if columns:
            ds = ds.select_columns([c for c in columns if c in ds.column_names])
        counts[f"hub:{source}"] = counts.get(f"hub:{source}", 0) + len(ds)
        return [(f"hub:{source}", i, r) for i, r in enumerate(undecoded_rows(ds))]
    root = Path(source)
    if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
        try:
            loaded = datasets.load_from_disk(str(root))
        except (OSError, ValueError, KeyError, pa.ArrowException) as e:
            raise DataError(root, None, None, f"not a readable save_to_disk folder ({_one_line(e)})") from None
        if isinstance(loaded, datasets.DatasetDict):
            names = [n for n in split_names(split) if n in loaded]
            if not names:
                raise DataError(root, None, None, f"no split {split!r}; splits present: {sorted(loaded)}")
            loaded = loaded[names[0]]
        if columns:
            loaded = loaded.select_columns([c for c in columns if c in loaded.column_names])
        counts[str(root)] = len(loaded)
        return [(str(root), i, r) for i, r in enumerate(undecoded_rows(loaded))]
    files = table_files(root, split)
    if not files:
        raise DataError(root, None, None, f"no {split!r} table found (looked for {split}-*.parquet, {split}.parquet, "
                        f"{split}/*.parquet, *.arrow, dataset_dict.json, also one folder down)")
    out: list[tuple[str, int, dict[str, Any]]] = []
    for f in files:
        if f.suffix == ".parquet":
            import pyarrow.parquet as pq

            try:
                schema_names = pq.read_schema(f).names
                cols = [c for c in columns if c in schema_names] if columns else None
                rows = pq.read_table(f, columns=cols).to_pylist()
            except (OSError, pa.ArrowException) as e:  # truncated, not parquet: "magic bytes not found"
                raise DataError(f, None, None, f"not a readable parquet file ({_one_line(e)})") from None
        else:
            try:
                ds = datasets.Dataset.from_file(str(f))
                rows = undecoded_rows(ds.select_columns(columns) if columns else ds)
            except (OSError, ValueError, pa.ArrowException) as e:
                raise DataError(f, None, None, f"not a readable arrow file ({_one_line(e)})") from None
        counts[str(f)] = len(rows)
        out.extend((str(f), i, r) for i, r in enumerate(rows))
    return out


def _one_line(e: BaseException) -> str:
    """An exception as one line: ``"<type>: <message with whitespace collapsed>"``."""
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


def embedded_image(value: Any, file: str, idx: int, key: str, item_id: str) -> dict[str, Any]:
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


# ----------------------------------------------------------------------------------------
# rows -> items
# ----------------------------------------------------------------------------------------
class ItemBuilder:
    """Turns the rows of one load into items and counts every row in a :class:`LoadReport`.

    Args:
        name, layout, source, split: what is loaded (for the report).
        on_error: ``"raise"`` a :class:`DataError` or ``"skip"`` the row (recorded).
        rules: specialty rules; their ``defaults`` apply per benchmark ``name``.
        include_open: keep open questions (else they are counted as filtered).
        max_options: at most this many options when distractors are drawn.
    Raises:
        ValueError: ``on_error`` not ``"raise"``/``"skip"``.
    """

    def __init__(self, name: str, layout: str, source: Any, split: str, on_error: str, rules: SpecialtyRules,
                 include_open: bool, max_options: int):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.name, self.layout, self.split = name, layout, split
        self.on_error, self.rules, self.include_open, self.max_options = on_error, rules, include_open, max_options
        self.report = LoadReport(name, layout, str(source), split)
        self._exists: dict[str, bool] = {}
        self._pool_fn: Optional[Callable[[], Pool]] = None
        self._pool: Pool = None
        self._pool_built = False

    def image_ok(self, path: Path) -> bool:
        """Whether an image file exists (cached per path)."""
        key = str(path)
        if key not in self._exists:
            self._exists[key] = os.path.isfile(key)
        return self._exists[key]

    def source_rows(self, file: Any, rows: list[Any]) -> list[Any]:
        """Record that ``rows`` were read from ``file`` (:attr:`LoadReport.files`); returns them."""
        self.report.files[str(file)] = self.report.files.get(str(file), 0) + len(rows)
        return rows

    def check_not_empty(self) -> None:
        """After a load: a split with no rows at all is an error naming its file(s) (in both
        ``on_error`` modes: there is no row to skip). A file with no rows among others is
        listed in :attr:`LoadReport.empty_files` (and in the summary the loader warns with).

        Raises:
            DataError: no source file of the split holds a row.
        """
        r = self.report
        if r.n_rows == 0:
            where = ", ".join(r.files) or r.source
            what = "an empty file" if len(r.files) == 1 else "every file is empty" if r.files else "no file found"
            raise DataError(where, None, None, f"split {r.split!r} has no rows at all ({what}); 0 items would be returned")

    def fail(self, err: DataError) -> None:
        """Raise ``err`` or record it as a skip, per ``on_error``."""
        if self.on_error == "raise":
            raise err
        self.report.skipped.append(SkippedRow(err.file, err.row, err.item_id, err.field, str(err)))

    def pool(self) -> Pool:
        """The distractor pool, built on first use (most loads never need it). A training split
        that cannot be read leaves no pool: noted in the report; the questions that needed it
        are kept open and counted."""
        if not self._pool_built:
            self._pool_built = True
            try:
                self._pool = self._pool_fn() if self._pool_fn is not None else None
            except DataError as e:
                self.report.notes.append(f"no distractor pool, training split unreadable: {e}")
        return self._pool

    def build(self, rows: Iterable[RowResult], pool: Optional[Callable[[], Pool]]) -> list[Item]:
        """Convert rows to validated items; count every row (item, skip or filter).

        Args:
            rows: :class:`SourceRow` / :class:`Filtered` / :class:`DataError` per source row.
            pool: called at most once, when a closed question first needs distractors.
        Raises:
            DataError: under ``on_error="raise"``, for the first bad row (also: duplicate ids).
        """
        self._pool_fn = pool
        items: list[Item] = []
        seen: set[str] = set()
        for r in rows:
            self.report.n_rows += 1
            if isinstance(r, Filtered):
                self.report.filtered[r.reason] += 1
                continue
            if isinstance(r, DataError):
                self.fail(r)
                continue
            try:
                item = self._item(r)
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
            # counted here, after the duplicate check, so the counts add up to the items returned
            if item.answer_type == "closed":
                self.report.mc_rules[item.meta["mc_rule"]] += 1
            self.report.specialty_sources[item.meta["specialty_source"]] += 1
        self.report.n_items = len(items)
        return items

    def _item(self, r: SourceRow) -> Optional[Item]:
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
        options: list[str] = []
        answer_idx, answer = -1, r.answer
        if answer_type == "closed":
            if r.options is not None:
                options, answer_idx, rule = list(r.options), int(r.answer_idx), "given"
            else:
                try:
                    h = image_hash(r.images[0])
                except FileNotFoundError as e:
                    raise DataError(r.file, r.row, "image", str(e), r.item_id) from None
                mc = closed_to_mc(r.question, r.answer, image_hash=h, question_type=r.qtype, pool=self.pool(),
                                  max_options=self.max_options)
                if mc is None:  # no options can be made: keep it, open, and count it
                    self.report.closed_as_open += 1
                    if not self.include_open:
                        self.report.filtered["closed question without options"] += 1
                        return None
                    answer_type = "open"
                    meta["source_answer_type"] = "closed"
                else:
                    options, answer_idx, rule = mc.options, mc.answer_idx, mc.rule
            if answer_type == "closed":
                answer = options[answer_idx]
                meta["mc_rule"] = rule
        item = Item(id=r.item_id, dataset=self.name, split=r.split, images=r.images, image_ref=r.image_ref,
                    question=r.question, options=options, answer_idx=answer_idx, answer=answer,
                    answer_type=answer_type, modality=r.modality, specialty=specialty, organ=r.organ, meta=meta)
        try:
            item.validate()
        except SchemaError as e:
            raise DataError(r.file, r.row, None, str(e), r.item_id) from None
        return item
