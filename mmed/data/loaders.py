"""Benchmark loaders: each benchmark's real published layout -> items of one schema (docs/architecture.md#item-schema).

:func:`load_benchmark` reads the five benchmarks of MMedAgent-RL (paper §5: VQA-RAD, SLAKE,
PathVQA in-domain; OmniMedVQA, MMMU Health & Medicine out-of-domain) from local copies in their
published layouts, or from the Hugging Face Hub by id where one exists, and returns a
:class:`datasets.Dataset` with exactly :data:`mmed.data.schema.FEATURES`. Images stay files
(``datasets.Image`` holds the path, or the embedded bytes of parquet copies) and are decoded
only when a row is read, so loading is fast.

Layouts (``layout=None`` detects them from the files present). Where each format is
documented, and what it was checked against: VQA-RAD - the OSF release (osf.io/89kps, Lau et al.
2018) and the MEVF repository (aioz-ai/MICCAI19-MedVQA, ``data_RAD``); SLAKE - med-vqa.com/slake
and Hub ``BoKelvin/SLAKE``; PathVQA - Hub ``flaviagiammarino/path-vqa`` and the original
release of UCSD-AI4H/PathVQA as read by public loaders (``pvqa/qas/<split>/<split>_qa.pkl``,
``pvqa/images/<split>``); OmniMedVQA - Hub ``foreverbeliever/OmniMedVQA`` (``OmniMedVQA.zip``:
``QA_information/Open-access``, ``Images``), where one QA file spells ``modality_type`` as
``modality``; MMMU - the ``MMMU/MMMU`` dataset card (features id, question, options,
explanation, image_1..image_7, img_type, answer, topic_difficulty, question_type, subfield).

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
``slake``      ``official``   ``train.json``, ``validate.json``, ``test.json`` + ``imgs/``
                              (SLAKE 1.0, Liu et al. 2021: its validation split is
                              ``validate.json``; ``validation.json`` is accepted too; Hub
                              ``BoKelvin/SLAKE`` ships the same files; fields
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

Bad input: a missing image file, a malformed row, a missing or invalid field, text that is not
UTF-8 (a byte 0xff in a question: the row and field holding it are named, with the byte and
its context) raise :class:`DataError` naming the file, the row index and the field, in one
line. A file that cannot be read as a whole - a truncated or non-parquet ``.parquet``
("magic bytes not found"), an unreadable ``.arrow`` or pickle - raises a :class:`DataError`
naming the file in both modes. With ``on_error="skip"`` such
rows are skipped and listed in the :class:`LoadReport` (count and ids), and a warning says how
many. A file that is not valid JSON at all raises in both modes (there is no row to skip), and
so does a split with no rows at all (an empty JSON list, an empty parquet file: a
:class:`DataError` naming the file); an empty file among several files of a split (a parquet
shard, an OmniMedVQA QA file) is listed in :attr:`LoadReport.empty_files` and warned about.
Nothing is dropped silently: every row read is an item, a skip, or a counted filter
(:attr:`LoadReport.filtered`: other split, other ``q_lang``, open questions when
``include_open=False``).
"""

from __future__ import annotations

import ast
import os
import pickle
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import datasets

from .mcq import answer_pool, normalize_answer
from .rows import (  # noqa: F401  (DataError, LoadReport, SkippedRow: part of this module's API)
    DataError,
    Filtered,
    ItemBuilder,
    LoadReport,
    Pool,
    RowResult,
    SkippedRow,
    SourceRow,
    UndecodableRow,
    answer_type_field,
    embedded_image,
    get_text,
    is_hub_id,
    read_json_list,
    read_table,
    resolve_dir,
    split_names,
    table_files,
)
from .schema import OPTION_LETTERS, Item, items_to_dataset
from .specialty import SpecialtyRules, default_rules

KNOWN_BENCHMARKS: tuple[str, ...] = ("vqa_rad", "slake", "pathvqa", "omnimedvqa", "mmmu_med")
LAYOUTS: dict[str, tuple[str, ...]] = {
    "vqa_rad": ("mevf", "official", "hub"),
    "slake": ("official",),
    "pathvqa": ("hub", "original"),
    "omnimedvqa": ("open_access",),
    "mmmu_med": ("hub",),
}
#: The splits each layout's loader reads (``load_benchmark(split=...)``), per benchmark and
#: layout. MMMU's test split has no public answers, so it is not among them.
SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    "vqa_rad": {"mevf": ("train", "test"), "official": ("train", "test", "all"), "hub": ("train", "test")},
    "slake": {"official": ("train", "validation", "val", "test")},
    "pathvqa": {"hub": ("train", "validation", "val", "test"), "original": ("train", "validation", "val", "test")},
    "omnimedvqa": {"open_access": ("test", "all")},
    "mmmu_med": {"hub": ("validation", "dev")},
}
HUB_IDS: dict[str, str] = {
    "vqa_rad": "flaviagiammarino/vqa-rad",
    "slake": "BoKelvin/SLAKE",
    "pathvqa": "flaviagiammarino/path-vqa",
    "mmmu_med": "MMMU/MMMU",
}
#: MMMU's Health & Medicine subjects (docs/architecture.md#benchmarks).
MMMU_MED_SUBJECTS: tuple[str, ...] = (
    "Basic_Medical_Science",
    "Clinical_Medicine",
    "Diagnostics_and_Laboratory_Medicine",
    "Pharmacy",
    "Public_Health",
)
VQA_RAD_OFFICIAL_JSON = "VQA_RAD Dataset Public.json"
VQA_RAD_OFFICIAL_IMAGES = "VQA_RAD Image Folder"


def _pool_fn(train_answers: Pool, rows: Callable[[], list[Any]], qtype_key: Optional[str]) -> Callable[[], Pool]:
    """A lazy distractor pool: ``train_answers`` if given, else :func:`~mmed.data.mcq.answer_pool`
    of the training rows ``rows()`` (question type from field ``qtype_key``; rows holding
    bytes that are not UTF-8 left out)."""

    def make() -> Pool:
        if train_answers is not None:
            return train_answers
        return answer_pool((r.get(qtype_key) if qtype_key else None, str(r.get("question", "")), str(r.get("answer", "")))
                           for r in rows() if isinstance(r, dict) and not isinstance(r, UndecodableRow))

    return make


# ----------------------------------------------------------------------------------------
# Hub form (VQA-RAD, PathVQA)
# ----------------------------------------------------------------------------------------
def _hub_rows(name: str, source: Any, split: str, modality: str, counts: dict[str, int]) -> Iterator[RowResult]:
    """Hub form (image, question, answer): VQA-RAD and PathVQA copies (rows per file into ``counts``)."""
    for n, (file, idx, row) in enumerate(read_table(source, split, counts=counts)):
        item_id = f"{name}/{split}/{n}"  # running number: unique across parquet shards
        try:
            q = get_text(row, "question", file, idx, item_id)
            a = get_text(row, "answer", file, idx, item_id)
            img = embedded_image(row.get("image"), file, idx, "image", item_id)
        except DataError as e:
            yield e
            continue
        ref = img["path"] if img["path"] and os.path.isfile(str(img["path"])) else f"{file}#{idx}"
        yield SourceRow(file, idx, item_id, split, q, a, None, [img], ref, modality, meta={"source_row": idx})


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
) -> SourceRow:
    qid = get_text(row, "qid", file, idx)
    split = split_of_row or ("test" if str(row.get("phrase_type", "")).startswith("test") else "train")
    item_id = f"vqa_rad/{split}/{qid}"
    name = get_text(row, "image_name", file, idx, item_id)
    path = images / name
    if not image_ok(path):
        raise DataError(file, idx, "image_name", f"image file {path} not found", item_id)
    q = get_text(row, "question", file, idx, item_id)
    a = get_text(row, "answer", file, idx, item_id)
    at = answer_type_field(get_text(row, "answer_type", file, idx, item_id), file, idx, item_id)
    meta = {k: row[k] for k in ("qid", "question_type", "phrase_type", "image_name") if k in row}
    return SourceRow(str(file), idx, item_id, split, q, a, at, [str(path)], str(path), "radiology",
                organ=str(row.get("image_organ") or "").strip(), qtype=row.get("question_type"), meta=meta)


def _load_vqa_rad(ld: ItemBuilder, source: Any, split: str, train_answers: Pool) -> list[Item]:
    if ld.layout == "hub":  # no answer_type: closed questions are the yes/no ones, no pool needed
        return ld.build(_hub_rows("vqa_rad", source, split, "radiology", ld.report.files), None)
    dirs = _vqa_rad_dirs(Path(source))
    if ld.layout == "mevf":
        d = dirs["mevf"]
        if split not in ("train", "test"):
            raise ValueError(f"vqa_rad layout 'mevf' has splits 'train' and 'test', not {split!r}")
        images = resolve_dir(d / "images", ld.report.notes)
        f = d / f"{split}set.json"
        rows = ld.source_rows(f, read_json_list(f))
        pool = _pool_fn(train_answers, lambda: rows if split == "train" else read_json_list(d / "trainset.json"),
                        "question_type")

        def gen() -> Iterator[RowResult]:
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
    rows = ld.source_rows(f, read_json_list(f))
    images = resolve_dir(d / VQA_RAD_OFFICIAL_IMAGES, ld.report.notes)
    is_test = [isinstance(r, dict) and str(r.get("phrase_type", "")).startswith("test") for r in rows]
    pool = _pool_fn(train_answers, lambda: [r for r, t in zip(rows, is_test) if not t], "question_type")

    def gen_official() -> Iterator[RowResult]:
        for i, (row, t) in enumerate(zip(rows, is_test)):
            if split != "all" and isinstance(row, dict) and t != (split == "test"):
                yield Filtered("other split")
                continue
            try:
                yield _vqa_rad_row(row, f, i, None, images, ld.image_ok)
            except DataError as e:
                yield e

    return ld.build(gen_official(), pool)


# --- SLAKE -------------------------------------------------------------------------------
def _slake_dir(source: Path) -> Optional[Path]:
    for d in (source, source / "Slake1.0", source / "Slake"):
        if any((d / name).is_file() for names in SLAKE_FILES.values() for name in names):
            return d
    return None


#: the file names of each SLAKE split, tried in this order: the SLAKE 1.0 release names its
#: validation file ``validate.json``; ``validation.json`` is accepted too (renamed copies)
SLAKE_FILES: dict[str, tuple[str, ...]] = {
    "train": ("train.json",),
    "validation": ("validate.json", "validation.json"),
    "val": ("validate.json", "validation.json"),
    "test": ("test.json",),
}


def _slake_file(d: Path, split: str) -> Path:
    """The json file of a SLAKE split (:data:`SLAKE_FILES`); a missing one is a
    :class:`DataError` naming every file name tried."""
    names = SLAKE_FILES[split]
    for name in names:
        if (d / name).is_file():
            return d / name
    raise DataError(d / names[0], None, None, f"file not found (split {split!r}: looked for {' or '.join(names)} in {d})")


def _load_slake(ld: ItemBuilder, source: Any, split: str, train_answers: Pool, q_lang: Optional[str]) -> list[Item]:
    d = _slake_dir(Path(source))
    if split not in SLAKE_FILES:
        raise ValueError(f"slake splits are {sorted(SLAKE_FILES)}, not {split!r}")
    images = resolve_dir(d / "imgs", ld.report.notes)
    split_name = "validation" if split == "val" else split

    def lang_ok(r: Any) -> bool:
        return q_lang in (None, "all") or (isinstance(r, dict) and r.get("q_lang") == q_lang)

    f = _slake_file(d, split)
    rows = ld.source_rows(f, read_json_list(f))
    pool = _pool_fn(train_answers, lambda: [r for r in (rows if split == "train" else read_json_list(d / "train.json"))
                                            if lang_ok(r)], "content_type")

    def gen() -> Iterator[RowResult]:
        for i, row in enumerate(rows):
            try:
                if isinstance(row, dict) and not lang_ok(row):
                    yield Filtered(f"q_lang={row.get('q_lang')}")
                    continue
                qid = get_text(row, "qid", f, i)
                item_id = f"slake/{split_name}/{qid}"
                name = get_text(row, "img_name", f, i, item_id)
                path = images / name
                if not ld.image_ok(path):
                    raise DataError(f, i, "img_name", f"image file {path} not found", item_id)
                q = get_text(row, "question", f, i, item_id)
                a = get_text(row, "answer", f, i, item_id)
                at = answer_type_field(get_text(row, "answer_type", f, i, item_id), f, i, item_id)
                modality = get_text(row, "modality", f, i, item_id)
                meta = {k: row[k] for k in ("qid", "img_id", "img_name", "q_lang", "content_type", "base_type") if k in row}
                yield SourceRow(str(f), i, item_id, split_name, q, a, at, [str(path)], str(path), modality,
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
    for s in split_names(split):
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


def _load_pathvqa(ld: ItemBuilder, source: Any, split: str) -> list[Item]:
    # no answer_type in either form: closed questions are the yes/no ones, no pool needed
    if ld.layout == "hub":
        return ld.build(_hub_rows("pathvqa", source, split, "pathology", ld.report.files), None)
    d = _pvqa_dir(Path(source))
    f = _pvqa_qa_file(d, split)
    img_split = f.stem[: -len("_qa")]
    rows = ld.source_rows(f, _read_pvqa(f))
    split_name = "validation" if img_split == "val" else img_split

    def gen() -> Iterator[RowResult]:
        for i, row in enumerate(rows):
            try:
                image = get_text(row, "image", f, i)
                item_id = f"pathvqa/{split_name}/{i}"
                path = next((p for p in (d / "images" / img_split / f"{image}{ext}" for ext in (".jpg", ".png", ""))
                             if ld.image_ok(p)), None)
                if path is None:
                    raise DataError(f, i, "image", f"image file {d / 'images' / img_split / image}.jpg not found", item_id)
                q = get_text(row, "question", f, i, item_id)
                a = get_text(row, "answer", f, i, item_id)
                yield SourceRow(str(f), i, item_id, split_name, q, a, None, [str(path)], str(path), "pathology",
                           meta={"image": image})
            except DataError as e:
                yield e

    return ld.build(gen(), None)


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


def _load_omnimedvqa(ld: ItemBuilder, source: Any, split: str, subsets: Optional[Sequence[str]]) -> list[Item]:
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

    def gen() -> Iterator[RowResult]:
        for f in files:
            rows = ld.source_rows(f, read_json_list(f))
            for i, row in enumerate(rows):
                try:
                    qid = get_text(row, "question_id", f, i)
                    item_id = f"omnimedvqa/test/{f.stem}/{qid}"
                    rel = get_text(row, "image_path", f, i, item_id)
                    path = root / rel
                    if not ld.image_ok(path):
                        raise DataError(f, i, "image_path", f"image file {path} not found", item_id)
                    q = get_text(row, "question", f, i, item_id)
                    gt = get_text(row, "gt_answer", f, i, item_id)
                    # one real file spells the field "modality"; accept that alias
                    key = "modality" if "modality_type" not in row and "modality" in row else "modality_type"
                    modality = get_text(row, key, f, i, item_id)
                    options = [str(row[k]).strip() for k in (f"option_{L}" for L in "ABCDEFGH")
                               if row.get(k) is not None and str(row[k]).strip()]
                    if len(options) < 2:
                        raise DataError(f, i, "option_A", f"needs at least two of option_A..option_D, got {options}", item_id)
                    idx = options.index(gt) if gt in options else next(
                        (j for j, o in enumerate(options) if normalize_answer(o) == normalize_answer(gt)), -1)
                    if idx < 0:
                        raise DataError(f, i, "gt_answer", f"{gt!r} is none of the options {options}", item_id)
                    meta = {k: row[k] for k in ("question_id", "dataset", "question_type", "image_path") if k in row}
                    yield SourceRow(str(f), i, item_id, "test", q, options[idx], "closed", [str(path)], str(path), modality,
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
    source: Any, split: str, subjects: Sequence[str], explicit: bool, notes: list[str], counts: dict[str, int]
) -> Iterator[tuple[Optional[str], str, int, dict]]:
    """(subject or None = from id, file, row index, row) over the requested subjects.

    A local copy with one folder per subject may hold only some subjects: without an explicit
    ``subjects`` the ones present are read (the missing ones are noted in the report); named
    subjects that are missing are an error.
    """
    if is_hub_id(source):
        for s in subjects:
            for file, idx, row in read_table(source, split, config=s, counts=counts):
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
            for file, idx, row in read_table(root / s, split, counts=counts):
                yield s, file, idx, row
        return
    for file, idx, row in read_table(root, split, counts=counts):  # merged copy: subject from the id
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


def _load_mmmu(ld: ItemBuilder, source: Any, split: str, subjects: Optional[Sequence[str]]) -> list[Item]:
    if split == "test":
        raise ValueError("mmmu_med: MMMU's test split has no public answers; use split='validation' (or 'dev')")
    if split not in ("validation", "dev"):
        raise ValueError(f"mmmu_med splits are 'validation' and 'dev', not {split!r}")
    explicit = subjects is not None
    subjects = tuple(subjects) if subjects is not None else MMMU_MED_SUBJECTS
    unknown = sorted(set(subjects) - set(MMMU_MED_SUBJECTS))
    if unknown:
        raise ValueError(f"unknown MMMU Health & Medicine subject(s) {unknown}; known: {list(MMMU_MED_SUBJECTS)}")

    def gen() -> Iterator[RowResult]:
        for subject, file, idx, row in _mmmu_tables(source, split, subjects, explicit, ld.report.notes, ld.report.files):
            try:
                mid = get_text(row, "id", file, idx)
                subj = subject or _subject_of(mid, MMMU_MED_SUBJECTS)
                if subj not in subjects:
                    yield Filtered("other subject")
                    continue
                item_id = f"mmmu_med/{split}/{mid}"
                q = get_text(row, "question", file, idx, item_id)
                qtype = get_text(row, "question_type", file, idx, item_id)
                a = get_text(row, "answer", file, idx, item_id)
                images = [embedded_image(row[f"image_{k}"], file, idx, f"image_{k}", item_id)
                          for k in range(1, 8) if row.get(f"image_{k}") is not None]
                if not images:
                    raise DataError(file, idx, "image_1", "no image (image_1..image_7 all empty)", item_id)
                img_type = row.get("img_type")
                modality = "; ".join(_parse_list_literal(img_type, file, idx, "img_type", item_id)) if img_type else ""
                meta = {"mmmu_id": mid, "subject": subj, "n_images": len(images),
                        **{k: row[k] for k in ("subfield", "topic_difficulty", "question_type") if row.get(k) is not None}}
                ref = f"{file}#{mid}/image_1"
                if qtype == "multiple-choice":
                    options = _parse_list_literal(get_text(row, "options", file, idx, item_id), file, idx, "options", item_id)
                    letter = a.strip().upper()
                    if len(letter) != 1 or letter not in OPTION_LETTERS[: len(options)]:
                        raise DataError(file, idx, "answer", f"{a!r} is not a letter within the {len(options)} options", item_id)
                    j = OPTION_LETTERS.index(letter)
                    meta["answer_letter"] = letter
                    yield SourceRow(file, idx, item_id, split, q, options[j], "closed", images, ref, modality,
                               options=options, answer_idx=j, subject=subj, meta=meta)
                elif qtype == "open":
                    yield SourceRow(file, idx, item_id, split, q, a, "open", images, ref, modality, subject=subj, meta=meta)
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
    (the literature's split, docs/architecture.md#splits), ``official`` for ``all``.

    Raises:
        ValueError: unknown ``name`` (listing the known ones), or no known layout's files
            under ``source`` (listing what each layout expects).
    """
    if name not in LAYOUTS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(KNOWN_BENCHMARKS)}")
    if is_hub_id(source):
        if "hub" not in LAYOUTS[name]:
            where = f" (Hub {HUB_IDS[name]!r} holds the same files: download them, unzip imgs.zip)" if name in HUB_IDS else ""
            raise ValueError(f"{name}: {source!r} is not a local folder and {name} is read from local files only{where}")
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
        if table_files(root, "train") or table_files(root, "test") or (root / "dataset_dict.json").is_file():
            return "hub"
        expected = f"'{VQA_RAD_OFFICIAL_JSON}' (official), data_RAD/trainset.json (mevf), or {{train,test}}-*.parquet (hub)"
    elif name == "slake":
        if _slake_dir(root) is not None:
            return "official"
        expected = "train.json / validate.json (or validation.json) / test.json + imgs/"
    elif name == "pathvqa":
        if _pvqa_dir(root) is not None:
            return "original"
        if any(table_files(root, s) for s in ("train", "validation", "test")) or (root / "dataset_dict.json").is_file():
            return "hub"
        expected = "pvqa/qas/<split>/<split>_qa.pkl (original) or <split>-*.parquet (hub)"
    elif name == "omnimedvqa":
        if _omni_dirs(root) is not None:
            return "open_access"
        expected = "QA_information/Open-access/*.json"
    else:  # mmmu_med
        if any((root / s).is_dir() for s in MMMU_MED_SUBJECTS) or table_files(root, "validation") or table_files(root, "dev"):
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
            default: built, when first needed, from the same layout's training split
            (VQA-RAD json layouts, SLAKE; the other sources never need one). Pass the same
            pool to two layouts to get identical options for every question.
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
        DataError: bad input under ``on_error="raise"`` (names file, row, field); in either
            mode a whole file that is not valid JSON, and a split with no rows at all (an
            empty JSON list or parquet file; names the file).
    Warns:
        UserWarning: rows skipped under ``on_error="skip"``, or an empty file among the
            split's files (the :meth:`LoadReport.summary` line).
    """
    if name not in LAYOUTS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(KNOWN_BENCHMARKS)}")
    if layout is None:
        layout = detect_layout(name, source, split)
    elif layout not in LAYOUTS[name]:
        raise ValueError(f"unknown layout {layout!r} for {name}; known: {', '.join(LAYOUTS[name])}")
    ld = ItemBuilder(name, layout, source, split, on_error, rules or default_rules(), include_open, max_options)
    if layout != "hub" and not is_hub_id(source) and not Path(source).exists():
        raise ValueError(f"{name}: source {source} does not exist")
    if name == "vqa_rad":
        if layout != "hub" and layout not in _vqa_rad_dirs(Path(source)):
            raise ValueError(f"vqa_rad: layout {layout!r} files not found under {source}")
        items = _load_vqa_rad(ld, source, split, train_answers)
    elif name == "slake":
        if _slake_dir(Path(source)) is None:
            raise ValueError(f"slake: no train.json/validate.json/test.json under {source}")
        items = _load_slake(ld, source, split, train_answers, q_lang)
    elif name == "pathvqa":
        if layout == "original" and _pvqa_dir(Path(source)) is None:
            raise ValueError(f"pathvqa: no pvqa/qas folder under {source}")
        items = _load_pathvqa(ld, source, split)
    elif name == "omnimedvqa":
        if _omni_dirs(Path(source)) is None:
            raise ValueError(f"omnimedvqa: no QA_information/Open-access under {source}")
        items = _load_omnimedvqa(ld, source, split, subsets)
    else:
        items = _load_mmmu(ld, source, split, subsets)
    ld.check_not_empty()  # raises when the split has no rows at all; notes empty files among others
    if ld.report.skipped or ld.report.empty_files:
        warnings.warn(ld.report.summary(), UserWarning, stacklevel=2)
    ds = items_to_dataset(items, validate=False)  # validated one by one above
    return (ds, ld.report) if return_report else ds
