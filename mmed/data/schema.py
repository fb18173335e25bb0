"""The item schema every loader, agent and metric agrees on (docs/architecture.md#item-schema).

One medical VQA item is one row of a :class:`datasets.Dataset` with exactly the columns of
:data:`FEATURES`:

======================  ==========================================================
column                  meaning
======================  ==========================================================
``id``                  unique within the dataset (``"<dataset>/<split>/<source id>"``)
``dataset``             benchmark name (``vqa_rad``, ``slake``, ``pathvqa``,
                        ``omnimedvqa``, ``mmmu_med``, ``synthetic``, ``triage``)
``split``               ``train`` / ``test`` / ``validation`` / ...
``images``              list of images (``datasets.Image``); one image except MMMU
``image_ref``           file path of the (first) image, or for synthetic items a
                        ``synthetic://...`` reference the generator redraws from
``question``            question text
``options``             option texts, lettered A, B, C, ... in order; ``[]`` for open
``answer_idx``          index of the gold option; ``-1`` for open questions
``answer``              gold answer text (for closed items ``options[answer_idx]``)
``answer_type``         ``"closed"`` or ``"open"``
``modality``            the imaging modality as the source names it
``specialty``           one of :data:`SPECIALTIES` (the triage label)
``organ``               organ / body region when known, else ``""``
``meta``                JSON-encoded dict of source-specific fields
======================  ==========================================================

On purpose (docs/architecture.md#item-schema): ``meta`` is stored as a JSON string, not an Arrow
struct, because the benchmarks carry different extra fields and Arrow structs must have
the same keys in every row (concatenating two benchmarks would otherwise fail). Use
:func:`item_meta` (or :meth:`Item.from_row`) to get the dict back.
"""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

import datasets

#: The seven specialties of MMedAgent-RL (paper §3), in the order used for prompts,
#: confusion matrices and label indices.
SPECIALTIES: tuple[str, ...] = (
    "Pathologist",
    "Radiologist",
    "Surgeon",
    "Oncologist",
    "Endocrinologist",
    "Ophthalmologist",
    "Dermatologist",
)

#: Accepted values of ``answer_type``.
ANSWER_TYPES: tuple[str, ...] = ("closed", "open")

#: Option letters; options are lettered in order (A for ``options[0]``).
OPTION_LETTERS: str = string.ascii_uppercase

#: Column types of an item dataset.
FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "dataset": datasets.Value("string"),
        "split": datasets.Value("string"),
        "images": datasets.List(datasets.Image()),
        "image_ref": datasets.Value("string"),
        "question": datasets.Value("string"),
        "options": datasets.List(datasets.Value("string")),
        "answer_idx": datasets.Value("int32"),
        "answer": datasets.Value("string"),
        "answer_type": datasets.Value("string"),
        "modality": datasets.Value("string"),
        "specialty": datasets.Value("string"),
        "organ": datasets.Value("string"),
        "meta": datasets.Value("string"),
    }
)

COLUMNS: tuple[str, ...] = tuple(FEATURES.keys())


class SchemaError(ValueError):
    """An item violates the schema. The message names the item id and the field."""


def option_letter(idx: int) -> str:
    """Letter of option ``idx`` (0 → ``"A"``). Raises :class:`ValueError` outside 0..25."""
    if not 0 <= idx < len(OPTION_LETTERS):
        raise ValueError(f"option index {idx} out of range 0..{len(OPTION_LETTERS) - 1}")
    return OPTION_LETTERS[idx]


@dataclass
class Item:
    """One medical VQA item (docs/architecture.md#item-schema). See the module docstring for the fields.

    ``images`` holds whatever :class:`datasets.Image` accepts: a file path, a PIL image,
    or a ``{"path": ..., "bytes": ...}`` dict. ``meta`` is a plain dict here and is
    JSON-encoded in the dataset. Call :meth:`validate` to check the invariants.
    """

    id: str
    dataset: str
    split: str
    images: list[Any]
    image_ref: str
    question: str
    options: list[str]
    answer_idx: int
    answer: str
    answer_type: str
    modality: str
    specialty: str
    organ: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> "Item":
        """Check the schema invariants; return ``self``.

        Raises:
            SchemaError: naming the item id and the offending field, when ``answer_type``
                is not ``closed``/``open``, a closed item has fewer than two options or an
                ``answer_idx`` outside them or an ``answer`` that is not
                ``options[answer_idx]``, an open item has options or ``answer_idx != -1``,
                ``specialty`` is not one of :data:`SPECIALTIES`, or ``images`` is empty.
        """
        where = f"item {self.id!r} (dataset {self.dataset!r})"
        if self.answer_type not in ANSWER_TYPES:
            raise SchemaError(f"{where}: field 'answer_type' is {self.answer_type!r}, expected one of {ANSWER_TYPES}")
        if self.specialty not in SPECIALTIES:
            raise SchemaError(f"{where}: field 'specialty' is {self.specialty!r}, expected one of {SPECIALTIES}")
        if not self.images:
            raise SchemaError(f"{where}: field 'images' is empty")
        if not isinstance(self.question, str) or not self.question.strip():
            raise SchemaError(f"{where}: field 'question' is empty")
        if self.answer_type == "closed":
            if len(self.options) < 2:
                raise SchemaError(f"{where}: closed item needs >= 2 'options', got {self.options!r}")
            if len(self.options) > len(OPTION_LETTERS):
                raise SchemaError(f"{where}: too many 'options' ({len(self.options)})")
            if not 0 <= self.answer_idx < len(self.options):
                raise SchemaError(f"{where}: field 'answer_idx' is {self.answer_idx}, options has {len(self.options)}")
            if self.options[self.answer_idx] != self.answer:
                raise SchemaError(
                    f"{where}: field 'answer' {self.answer!r} != options[answer_idx] "
                    f"{self.options[self.answer_idx]!r}"
                )
        else:
            if self.options or self.answer_idx != -1:
                raise SchemaError(f"{where}: open item must have options=[] and answer_idx=-1")
        return self

    def to_row(self) -> dict[str, Any]:
        """The dataset row: all fields, ``meta`` JSON-encoded (keys sorted)."""
        row = asdict(self)
        row["images"] = list(self.images)  # asdict would deep-copy PIL images needlessly
        row["meta"] = json.dumps(self.meta, sort_keys=True, default=str)
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Item":
        """Inverse of :meth:`to_row` for a dataset row (``meta`` decoded)."""
        kwargs = {k: row[k] for k in COLUMNS}
        kwargs["meta"] = item_meta(row)
        kwargs["options"] = list(kwargs["options"])
        kwargs["images"] = list(kwargs["images"])
        return cls(**kwargs)


def item_field(item: Any, name: str, where: str | None = None) -> Any:
    """``item[name]`` for a dataset row / dict, ``item.name`` for an :class:`Item` (or any
    object with attributes, e.g. an opinion record).

    Raises:
        SchemaError: naming the missing field and ``where`` (default ``item <id>``).
    """
    if isinstance(item, Mapping):
        found, value = name in item, item.get(name)
        ident = item.get("id", "?")
    else:
        found, value = hasattr(item, name), getattr(item, name, None)
        ident = getattr(item, "id", "?")
    if not found:
        raise SchemaError(f"{where or f'item {ident!r}'}: missing field {name!r}")
    return value


def item_meta(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``meta`` dict of a dataset row (decodes the JSON string; accepts a dict)."""
    meta = row.get("meta", "")
    if isinstance(meta, dict):
        return dict(meta)
    return json.loads(meta) if meta else {}


def items_to_dataset(items: Iterable[Item], validate: bool = True) -> datasets.Dataset:
    """Build a :class:`datasets.Dataset` with :data:`FEATURES` from :class:`Item` objects.

    Args:
        items: the items; each is validated first unless ``validate=False``.
    Raises:
        SchemaError: from :meth:`Item.validate`; also when two items share an ``id``.
    """
    rows: dict[str, list[Any]] = {k: [] for k in COLUMNS}
    seen: set[str] = set()
    for item in items:
        if validate:
            item.validate()
        if item.id in seen:
            raise SchemaError(f"duplicate item id {item.id!r}")
        seen.add(item.id)
        for k, v in item.to_row().items():
            rows[k].append(v)
    return datasets.Dataset.from_dict(rows, features=FEATURES)


def closed_only(ds: datasets.Dataset) -> datasets.Dataset:
    """Rows with ``answer_type == "closed"`` (the paper scores closed questions only)."""
    idx = [i for i, t in enumerate(ds["answer_type"]) if t == "closed"]
    return ds.select(idx)
