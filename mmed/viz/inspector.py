"""The disagreement inspector: an ipywidgets browser over a run's ``predictions.jsonl``.

What it is for. In MMedAgent-RL the attending physician reads the
opinions of a panel of K specialists and gives the final answer. C-MARL trains it to
*exploit* a reliable panel (Easy: every specialist right), to *explore* when the panel
disagrees (Medium) and to *resist* a wrong consensus (Hard: every specialist wrong). The
interesting cases are where the attending and the panel part ways; this module lets one
filter the prediction records down to them and read each case in full.

Pure logic (no widgets, testable without a browser):

- :func:`load_predictions` / :func:`find_predictions` — read one or more
  ``predictions.jsonl`` files (the record shape of :mod:`mmed.agents.pipeline`), check
  each record (:func:`check_record`) and tag it with its source (``_source``: the file's
  folder relative to the run, e.g. ``consult/synthetic_test``) and line (``_line``).
- :func:`record_facets` — the values a record is filtered by (:data:`FILTER_KEYS`);
  :func:`filter_records` — indices of the records that match filters.
- :func:`overrule_status` / :func:`overruled` — did the attending overrule the panel?
- :func:`record_image` — the case's image from ``image_ref`` (a file, or
  :func:`mmed.data.synthetic.redraw` for ``synthetic://`` refs), or why it cannot be shown.
- :func:`render_record_html` — one case as self-contained HTML (image inlined as PNG).

:class:`DisagreementInspector` holds the records, the filters and a position, with a
programmatic API (:meth:`~DisagreementInspector.set_filter`, ``n_matching``,
``current_record``, :meth:`~DisagreementInspector.next`, :meth:`~DisagreementInspector.prev`,
:meth:`~DisagreementInspector.summary`, :meth:`~DisagreementInspector.summary_html`) and an
ipywidgets 8 view (``.widget``; displaying the inspector displays it). Each filter control
offers :data:`ALL` (``"all"``, never ``None``, which ipywidgets shows as no selection) and
the values as the run names them, each with the number of cases it would show under the
other filters (:meth:`~DisagreementInspector.options`).
:meth:`~DisagreementInspector.show` displays the widget together with
:meth:`~DisagreementInspector.static_html`, a static view of the selected case, so that an
executed notebook (and its HTML export) shows the case without a live kernel.

Definitions
-----------
**Outcome** (:data:`OUTCOMES`, a partition of the records):
``correct`` — the attending's valid answer is the gold option (``record["correct"] is
True``); ``invalid`` — the attending gave no parseable answer (scored as wrong by
:func:`mmed.agents.pipeline.summarize`; shown apart here); ``incorrect`` — a valid answer
that is not the gold one; ``unscored`` — no attending (``decision="none"``) or an open
question (``correct is None``).

**Overruling** (:data:`OVERRULE_STATUSES`). The panel's vote is
:func:`mmed.agents.stratify.majority_vote` over the members' valid answers (abstentions and
invalid answers are ignored) with ``tie_rule="abstain"``: a tie between the most frequent
answers is *no* panel vote, since following or overruling a tie is not defined. The vote
is a plurality of the *valid* answers — a lone valid answer among abstentions is the
panel's vote. Checked in this order, the first that applies:

- ``open_question`` — the item has no options;
- ``no_attending`` — the record has no attending decision;
- ``no_panel`` — the panel is empty (the "attending alone" ablation);
- ``attending_invalid`` — the attending gave no valid answer;
- ``panel_no_valid`` — no panel member gave a valid answer;
- ``panel_tie`` — the most frequent valid answers are tied;
- ``overruled`` — the attending's answer differs from the panel's vote;
- ``followed`` — it equals the panel's vote.

:func:`overruled` is ``True`` / ``False`` for the last two and ``None`` otherwise.

**Stratum** — the record's ``stratum`` (``easy``/``medium``/``hard``, docs/architecture.md#stratification), or
``unstratified`` when it has none (open questions, empty panels).

**Images** (:data:`IMAGE_STATUSES`): ``synthetic`` (redrawn from the ref), ``file`` (a
readable path), ``missing`` (a path that does not exist), ``embedded`` (``<data
file>#<row>`` refs of images stored inside a data file, which the inspector does not
open), ``bad_ref`` (a ``synthetic://`` ref that does not parse), ``none`` (no
``image_ref``) and, found only when the image is drawn, ``unreadable`` (the file or ref
exists but could not be decoded). Every status but the first two shows a placeholder; all
are counted in :meth:`DisagreementInspector.summary`. Relative paths resolve against
``image_root`` when given, else the repository root (docs/architecture.md#the-run-folder).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..agents.stratify import AGREEMENT_LEVELS, majority_vote

#: Filters, in the order the widget shows them. ``specialty`` is the item's label,
#: ``triage`` the specialty the triage doctor sent the case to (after any fallback).
FILTER_KEYS: tuple[str, ...] = ("source", "dataset", "stratum", "specialty", "triage", "outcome", "overrule", "agreement")
#: Values of the ``stratum`` filter.
STRATUM_VALUES: tuple[str, ...] = ("easy", "medium", "hard", "unstratified")
#: Values of the ``outcome`` filter (module docstring).
OUTCOMES: tuple[str, ...] = ("correct", "incorrect", "invalid", "unscored")
#: Values of the ``overrule`` filter (module docstring: definitions and the order of the checks).
OVERRULE_STATUSES: tuple[str, ...] = (
    "overruled", "followed", "panel_tie", "panel_no_valid", "attending_invalid", "no_panel", "no_attending",
    "open_question",
)
#: Image statuses (module docstring); the first two show the image.
IMAGE_STATUSES: tuple[str, ...] = ("synthetic", "file", "missing", "embedded", "bad_ref", "none", "unreadable")
#: Values the ``agreement`` filter accepts (``unknown``: a record without ``agreement``).
AGREEMENT_VALUES: tuple[str, ...] = (*AGREEMENT_LEVELS, "unknown")
#: ``on_error`` values of :func:`load_predictions`.
ON_ERROR: tuple[str, ...] = ("raise", "skip")
#: Source tag of records given directly (not read from a file).
DIRECT_SOURCE = "records"
#: The "any value" choice of every filter control (and accepted by :func:`normalize_filters`
#: like ``None``). ipywidgets treats a ``None`` value as "nothing selected" (a blank
#: dropdown, no toggle button highlighted), so the controls use this string instead; a
#: record value equal to it cannot be filtered on.
ALL = "all"
#: Filters shown as toggle buttons (the others are dropdowns); width of every control's
#: description (CSS length).
TOGGLE_KEYS, DESCRIPTION_WIDTH = ("stratum", "outcome"), "80px"
#: Longest side of an inlined image, pixels (larger images are shrunk; smaller ones are
#: shown enlarged to :data:`DISPLAY_PX` with nearest-neighbour scaling).
MAX_IMAGE_PX, DISPLAY_PX = 256, 224


def _letter(i: int) -> str:
    return chr(ord("A") + i) if 0 <= i < 26 else f"#{i}"


# ----------------------------------------------------------------------------------------
# reading and checking records
# ----------------------------------------------------------------------------------------
@dataclass
class Skipped:
    """A line of a predictions file that could not be used (``on_error="skip"``)."""

    source: str
    line: int
    reason: str


def check_record(rec: Any, where: str) -> None:
    """Check that a prediction record has what the inspector shows.

    Required: ``id`` (str), ``question`` (str), ``options`` (list), ``answer_idx`` (int),
    ``panel`` (list of mappings with ``parsed`` and ``valid``), ``triage`` (mapping with
    ``specialty``). ``attending`` may be missing or ``None`` (no attending); when present
    it needs ``parsed`` and ``valid``. A valid answer (panel or attending) of a closed
    item must be an option index. Unknown fields are ignored.

    Raises:
        ValueError: ``"<where>: field '<name>' ..."`` for the first problem found.
    """
    if not isinstance(rec, Mapping):
        raise ValueError(f"{where}: a record must be a JSON object, got {type(rec).__name__}")
    for key, typ in (("id", str), ("question", str), ("options", list), ("answer_idx", int), ("panel", list),
                     ("triage", Mapping)):
        if key not in rec:
            raise ValueError(f"{where}: field {key!r} is missing")
        if not isinstance(rec[key], typ) or (typ is int and isinstance(rec[key], bool)):
            raise ValueError(f"{where}: field {key!r} must be {typ.__name__}, got {type(rec[key]).__name__}")
    n_opt = len(rec["options"])
    if "specialty" not in rec["triage"]:
        raise ValueError(f"{where}: field 'triage.specialty' is missing")

    def _answer(d: Mapping, name: str) -> None:
        for key in ("parsed", "valid"):
            if key not in d:
                raise ValueError(f"{where}: field '{name}.{key}' is missing")
        if d["valid"] and n_opt:
            p = d["parsed"]
            if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p < n_opt:
                raise ValueError(f"{where}: field '{name}.parsed' = {p!r} is not an index of the {n_opt} options")

    for j, op in enumerate(rec["panel"]):
        if not isinstance(op, Mapping):
            raise ValueError(f"{where}: field 'panel[{j}]' must be an object, got {type(op).__name__}")
        _answer(op, f"panel[{j}]")
    att = rec.get("attending")
    if att is not None:
        if not isinstance(att, Mapping):
            raise ValueError(f"{where}: field 'attending' must be an object or null, got {type(att).__name__}")
        _answer(att, "attending")


def load_predictions(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Mapping[str, str | os.PathLike[str]],
    on_error: str = "raise",
) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """Read ``predictions.jsonl`` files into checked, source-tagged records.

    Args:
        paths: one path, a list of paths (each tagged with its own path as source), or
            ``{source: path}`` (as :func:`find_predictions` returns).
        on_error: ``"raise"`` — a line that is not JSON or a record that fails
            :func:`check_record` raises; ``"skip"`` — such lines are left out and returned
            as :class:`Skipped` entries (counted and shown by the inspector, never lost).
    Returns:
        ``(records, skipped)``; each record is a copy with ``_source`` and ``_line`` added.
    Raises:
        ValueError: unknown ``on_error``; with ``"raise"``, ``"<file>: line <n>: ..."``
            naming the bad line and field.
        FileNotFoundError: a path that does not exist.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error {on_error!r} not in {ON_ERROR}")
    if isinstance(paths, (str, os.PathLike)):
        items = [(str(paths), Path(paths))]
    elif isinstance(paths, Mapping):
        items = [(str(k), Path(v)) for k, v in paths.items()]
    else:
        items = [(str(p), Path(p)) for p in paths]
    records: list[dict[str, Any]] = []
    skipped: list[Skipped] = []
    for source, path in items:
        if not path.is_file():
            raise FileNotFoundError(f"predictions file not found: {path}")
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path}: line {n}"
                try:
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{where}: not valid JSON ({e.msg})") from None
                    check_record(rec, where)
                except ValueError as e:
                    if on_error == "raise":
                        raise
                    skipped.append(Skipped(source, n, str(e)))
                    continue
                records.append({**rec, "_source": source, "_line": n})
    return records, skipped


def find_predictions(run_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Every ``consult/*/predictions.jsonl`` and ``eval/**/predictions.jsonl`` of a run.

    Returns:
        ``{source: path}`` in sorted order, the source being the file's folder relative
        to the run (``"consult/synthetic_test"``, ``"eval/ablations/full"``); empty when
        the run has none. Relative ``run_dir`` resolves from the repository root.
    """
    from ..runs import resolve_path

    root = resolve_path(run_dir)
    files = sorted(root.glob("consult/*/predictions.jsonl")) + sorted(root.glob("eval/**/predictions.jsonl"))
    return {f.parent.relative_to(root).as_posix(): f for f in files}


# ----------------------------------------------------------------------------------------
# facets: what a record is filtered by
# ----------------------------------------------------------------------------------------
def _panel_vote(rec: Mapping[str, Any]) -> int | None:
    return majority_vote([op["parsed"] if op.get("valid") else None for op in rec.get("panel") or []],
                         tie_rule="abstain")


def overrule_status(rec: Mapping[str, Any]) -> str:
    """One of :data:`OVERRULE_STATUSES` (the rules and their order: module docstring)."""
    if not rec.get("options"):
        return "open_question"
    att = rec.get("attending")
    if att is None:
        return "no_attending"
    panel = rec.get("panel") or []
    if not panel:
        return "no_panel"
    if not att.get("valid"):
        return "attending_invalid"
    if not any(op.get("valid") for op in panel):
        return "panel_no_valid"
    vote = _panel_vote(rec)
    if vote is None:
        return "panel_tie"
    return "followed" if att["parsed"] == vote else "overruled"


def overruled(rec: Mapping[str, Any]) -> bool | None:
    """``True`` when the attending's valid answer differs from the panel's majority vote,
    ``False`` when it equals it, ``None`` when that is undefined (no attending, attending
    invalid, empty panel, no valid panel answer, a tied panel, an open question)."""
    st = overrule_status(rec)
    return True if st == "overruled" else False if st == "followed" else None


def outcome(rec: Mapping[str, Any]) -> str:
    """One of :data:`OUTCOMES` (module docstring)."""
    att = rec.get("attending")
    if att is None or not rec.get("options"):  # no attending, or an open question (scored apart)
        return "unscored"
    if rec.get("correct") is True:
        return "correct"
    if not att.get("valid"):
        return "invalid"
    return "incorrect" if rec.get("correct") is False else "unscored"


def record_facets(rec: Mapping[str, Any]) -> dict[str, str]:
    """``{filter key: value}`` of one record for every key of :data:`FILTER_KEYS`."""
    st = rec.get("stratum")
    return {
        "source": str(rec.get("_source", DIRECT_SOURCE)),
        "dataset": str(rec.get("dataset")),
        "stratum": "unstratified" if st is None else str(st),
        "specialty": str(rec.get("specialty")),
        "triage": str((rec.get("triage") or {}).get("specialty")),
        "outcome": outcome(rec),
        "overrule": overrule_status(rec),
        "agreement": str(rec.get("agreement") or "unknown"),
    }


def _fixed_values(key: str) -> tuple[str, ...]:
    from ..data.schema import SPECIALTIES

    return {
        "stratum": STRATUM_VALUES, "outcome": OUTCOMES, "overrule": OVERRULE_STATUSES,
        "agreement": AGREEMENT_VALUES, "specialty": SPECIALTIES, "triage": SPECIALTIES,
    }.get(key, ())


def normalize_filters(filters: Mapping[str, Any], facets: Sequence[Mapping[str, str]]) -> dict[str, tuple[str, ...] | None]:
    """Check filters and bring each to ``None`` (any value) or a tuple of accepted values.

    A filter value is ``None`` or :data:`ALL` (``"all"``: any value), one value, or a
    list/tuple/set of values (any of them matches). ``overrule`` also takes ``True`` (= ``"overruled"``) and ``False``
    (= ``"followed"``). Accepted values of a key: its fixed vocabulary
    (:data:`STRATUM_VALUES`, :data:`OUTCOMES`, :data:`OVERRULE_STATUSES`,
    :data:`AGREEMENT_VALUES`, the seven specialties) plus every value present in the
    records.

    Raises:
        ValueError: an unknown key (naming :data:`FILTER_KEYS`) or value (naming the
            accepted ones) — so a typo never silently matches nothing.
    """
    out: dict[str, tuple[str, ...] | None] = {}
    for key, val in filters.items():
        if key not in FILTER_KEYS:
            raise ValueError(f"unknown filter {key!r}; filters are {FILTER_KEYS}")
        if val is None or (isinstance(val, str) and val == ALL):
            out[key] = None
            continue
        vals = list(val) if isinstance(val, (list, tuple, set, frozenset)) else [val]
        if key == "overrule":
            vals = ["overruled" if v is True else "followed" if v is False else v for v in vals]
        accepted = list(_fixed_values(key)) + sorted({f[key] for f in facets} - set(_fixed_values(key)))
        bad = [v for v in vals if not isinstance(v, str) or v not in accepted]
        if bad:
            raise ValueError(f"filter {key}: unknown value(s) {bad}; accepted: {accepted}")
        out[key] = tuple(sorted(set(vals), key=accepted.index))
    return out


def _match(facets: Mapping[str, str], filters: Mapping[str, tuple[str, ...] | None]) -> bool:
    return all(v is None or facets[k] in v for k, v in filters.items())


def filter_records(records: Sequence[Mapping[str, Any]], **filters: Any) -> list[int]:
    """Indices (in order) of the records matching every filter (``None`` = any value).

    Keys: :data:`FILTER_KEYS`; values as :func:`normalize_filters`. Example:
    ``filter_records(recs, stratum="hard", overrule=True)`` — Hard cases where the
    attending overruled the panel.

    Raises:
        ValueError: an unknown filter key or value.
    """
    facets = [record_facets(r) for r in records]
    norm = normalize_filters(filters, facets)
    return [i for i, f in enumerate(facets) if _match(f, norm)]


# ----------------------------------------------------------------------------------------
# images
# ----------------------------------------------------------------------------------------
@dataclass
class RecordImage:
    """The image of a case, or why there is none.

    Attributes:
        status: one of :data:`IMAGE_STATUSES`.
        detail: the path or ref, and for failures the reason.
        image: the PIL image when ``status`` is ``"synthetic"`` or ``"file"``, else None.
    """

    status: str
    detail: str
    image: Any = None

    @property
    def shown(self) -> bool:
        return self.image is not None


def _resolve(ref: str, image_root: str | os.PathLike[str] | None) -> Path:
    from ..runs import resolve_path

    p = Path(ref).expanduser()
    if p.is_absolute():
        return p
    return Path(image_root) / p if image_root is not None else resolve_path(p)


def image_status(ref: Any, image_root: str | os.PathLike[str] | None = None) -> tuple[str, str]:
    """Cheap classification of an ``image_ref`` without decoding it: ``(status, detail)``
    with status ``synthetic`` / ``file`` / ``missing`` / ``embedded`` / ``bad_ref`` /
    ``none`` (module docstring)."""
    if not ref:
        return "none", "the record has no image_ref"
    ref = str(ref)
    if ref.startswith("synthetic://"):
        from ..data.synthetic import parse_ref

        try:
            parse_ref(ref)
        except ValueError as e:
            return "bad_ref", str(e)
        return "synthetic", ref
    path = _resolve(ref, image_root)
    if path.is_file():
        return "file", str(path)
    if "#" in ref:
        data_file = _resolve(ref.split("#", 1)[0], image_root)
        if data_file.is_file():
            return "embedded", f"{ref} (image stored inside {data_file}; not opened by the inspector)"
    return "missing", f"no such file: {path}"


def record_image(rec: Mapping[str, Any], image_root: str | os.PathLike[str] | None = None) -> RecordImage:
    """The case's image: :func:`mmed.data.synthetic.redraw` for ``synthetic://`` refs, the
    file for paths; otherwise (or when decoding fails: ``unreadable``) a
    :class:`RecordImage` without image that says why. Never raises for a bad image."""
    status, detail = image_status(rec.get("image_ref"), image_root)
    try:
        if status == "synthetic":
            from ..data.synthetic import redraw

            return RecordImage(status, detail, redraw(detail))
        if status == "file":
            from ..agents.generation import _pil

            return RecordImage(status, detail, _pil(detail))
    except Exception as e:  # noqa: BLE001 — any decoding failure becomes a counted placeholder
        return RecordImage("unreadable", f"{detail}: {type(e).__name__}: {e}")
    return RecordImage(status, detail)


def _image_html(img: RecordImage) -> str:
    if img.image is None:
        return (
            f'<div class="mmed-noimg" style="width:{DISPLAY_PX}px;min-height:{DISPLAY_PX // 2}px;border:1px dashed #999;'
            f'color:#555;padding:6px;font-size:11px;background:#f4f4f4">image not available '
            f"({html.escape(img.status)}): {html.escape(img.detail)}</div>"
        )
    im = img.image
    if max(im.size) > MAX_IMAGE_PX:
        im = im.copy()
        im.thumbnail((MAX_IMAGE_PX, MAX_IMAGE_PX))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    b64 = base64.b64encode(buf.getvalue()).decode("ascii")
    w = DISPLAY_PX if max(im.size) <= DISPLAY_PX else im.size[0]
    return (f'<img class="mmed-img" alt="{html.escape(img.status)} image" src="data:image/png;base64,{b64}" '
            f'style="width:{w}px;image-rendering:pixelated;border:1px solid #ccc"/>')


# ----------------------------------------------------------------------------------------
# one case as HTML
# ----------------------------------------------------------------------------------------
def think_text(raw: Any) -> str:
    """The first ``<think>`` block of ``raw``, whitespace collapsed (``""`` when none)."""
    from ..agents.prompts import opinion_rationale

    return opinion_rationale(raw, 10**9) if isinstance(raw, str) else ""


def _esc(x: Any) -> str:
    return html.escape("—" if x is None else str(x))


def _answer_text(parsed: Any, valid: bool, options: Sequence[str]) -> str:
    if not valid:
        return "—"
    if options and isinstance(parsed, int) and 0 <= parsed < len(options):
        return f"{_letter(parsed)}. {options[parsed]}"
    return str(parsed)


def _opinion_status(op: Mapping[str, Any]) -> str:
    if op.get("error"):
        return f"error: {op['error']}"
    if op.get("abstained"):
        return "abstained"
    return "valid" if op.get("valid") else "invalid"


_TD = 'style="border:1px solid #ddd;padding:2px 6px;vertical-align:top;text-align:left"'


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th {_TD}>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td {_TD}>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table style="border-collapse:collapse;font-size:12px;margin:4px 0">{"<tr>" + head + "</tr>"}{body}</table>'


def render_record_html(
    rec: Mapping[str, Any],
    image_root: str | os.PathLike[str] | None = None,
    image: RecordImage | None = None,
    include_image: bool = True,
    title: str | None = None,
) -> str:
    """One case as self-contained HTML: header (id, source, dataset, stratum, s,
    agreement, outcome, overrule status), the image (inlined PNG, or a placeholder that
    names why), the question, the lettered options (gold marked ``✓ gold``, the panel's
    votes per option, the attending's pick marked ``◆``), the triage decision (specialty,
    label, raw, parsed, valid, fallback, mode), each specialist's opinion (id, specialty,
    backend/model, answer, valid/abstained/invalid/error, right/wrong, ``<think>``
    rationale), the attending (``<think>`` reasoning, answer, validity, method, raw) and
    the label with the outcome. All record text is HTML-escaped.

    Args:
        rec: a prediction record (checked by :func:`check_record` when loaded from file).
        image_root: where relative image paths resolve (default: the repository root).
        image: an already loaded :class:`RecordImage` (the inspector caches them);
            default: :func:`record_image`.
        include_image: False leaves the image out (no placeholder).
        title: optional heading line above the case.
    """
    options = list(rec.get("options") or [])
    gold = rec.get("answer_idx")
    att = rec.get("attending")
    panel = list(rec.get("panel") or [])
    facets = record_facets(rec)
    status = facets["overrule"]
    vote = _panel_vote(rec) if options and panel else None
    s = rec.get("s")
    out = ['<div class="mmed-case" style="font-family:sans-serif;font-size:13px;line-height:1.35">']
    if title:
        out.append(f"<h4 style='margin:4px 0'>{_esc(title)}</h4>")
    badge = {"correct": "#2e7d32", "incorrect": "#c62828", "invalid": "#ef6c00", "unscored": "#555"}[facets["outcome"]]
    out.append(
        f"<div><b>{_esc(rec.get('id'))}</b> · source <code>{_esc(facets['source'])}</code> · "
        f"{_esc(rec.get('dataset'))}/{_esc(rec.get('split'))} · stratum <b>{_esc(facets['stratum'])}</b>"
        f" (s = {'—' if s is None else f'{s:.2f}'}) · agreement {_esc(facets['agreement'])} · "
        f"<span style='color:{badge}'><b>{_esc(facets['outcome'])}</b></span> · attending vs panel: "
        f"<b>{_esc(status.replace('_', ' '))}</b></div>"
    )
    out.append('<div style="display:flex;gap:12px;align-items:flex-start;margin-top:4px">')
    if include_image:
        img = image if image is not None else record_image(rec, image_root)
        out.append(f"<div>{_image_html(img)}</div>")
    out.append("<div>")
    out.append(f"<div><b>Question:</b> {_esc(rec.get('question'))}</div>")
    if options:
        votes = Counter(op["parsed"] for op in panel if op.get("valid"))
        att_pick = att["parsed"] if att is not None and att.get("valid") else None
        rows = []
        for i, o in enumerate(options):
            rows.append([
                f"<b>{_letter(i)}</b>", _esc(o),
                "<b style='color:#2e7d32'>✓ gold</b>" if i == gold else "",
                str(votes.get(i, 0)) + (" (panel vote)" if i == vote else ""),
                "◆ attending" if i == att_pick else "",
            ])
        out.append(_table(["", "option", "label", "panel votes", "attending"], rows))
    else:
        out.append(f"<div>open question · gold answer: <b>{_esc(rec.get('answer'))}</b></div>")
    out.append("</div></div>")

    tri = rec.get("triage") or {}
    routed = "= label" if tri.get("specialty") == rec.get("specialty") else "≠ label"
    out.append("<div style='margin-top:6px'><b>Triage</b></div>")
    out.append(_table(
        ["sent to", "label", "parsed", "valid", "fallback", "mode", "raw"],
        [[f"{_esc(tri.get('specialty'))} ({routed})", _esc(rec.get("specialty")), _esc(tri.get("parsed")),
          _esc(tri.get("valid")), _esc(tri.get("fallback")), _esc(tri.get("mode")),
          f"<code>{_esc(tri.get('raw'))}</code>"]],
    ))
    out.append(f"<div style='margin-top:6px'><b>Panel</b> ({len(panel)} specialist{'s' if len(panel) != 1 else ''}"
               f"; vote: {_esc(_answer_text(vote, vote is not None, options)) if vote is not None else 'none'})</div>")
    if panel:
        rows = []
        for op in panel:
            right = ("✓ right" if op.get("parsed") == gold else "✗ wrong") if op.get("valid") and options else ""
            why = think_text(op.get("raw"))
            rationale = _esc(why) if why else f"(no &lt;think&gt; block) <code>{_esc(op.get('raw'))}</code>"
            rows.append([
                f"<code>{_esc(op.get('specialist_id'))}</code>", _esc(op.get("specialty")),
                f"{_esc(op.get('backend'))}/{_esc(op.get('model'))}",
                _esc(_answer_text(op.get("parsed"), bool(op.get("valid")), options)),
                _esc(_opinion_status(op)), right,
                rationale,
            ])
        out.append(_table(["specialist", "specialty", "backend/model", "answer", "status", "", "rationale"], rows))
    else:
        out.append("<div>no specialists (attending alone)</div>")
    out.append("<div style='margin-top:6px'><b>Attending</b></div>")
    if att is None:
        out.append("<div>no attending decision in this record</div>")
    else:
        reasoning = think_text(att.get("raw"))
        out.append(_table(
            ["reasoning (&lt;think&gt;)", "answer", "valid", "parse", "method", "raw"],
            [[_esc(reasoning) if reasoning else "<i>none</i>",
              f"<b>{_esc(_answer_text(att.get('parsed'), bool(att.get('valid')), options))}</b>",
              _esc(att.get("valid")), _esc(att.get("reason")), _esc(att.get("method")),
              f"<code>{_esc(att.get('raw'))}</code>"]],
        ))
    label = _answer_text(gold, True, options) if options else rec.get("answer")
    out.append(f"<div style='margin-top:6px'><b>Label:</b> {_esc(label)} · <b>correct:</b> {_esc(rec.get('correct'))}"
               f" · <b>outcome:</b> {_esc(facets['outcome'])}</div>")
    out.append("</div>")
    return "".join(out)


# ----------------------------------------------------------------------------------------
# the inspector
# ----------------------------------------------------------------------------------------
def _is_record_list(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and all(isinstance(r, Mapping) for r in x) and len(x) > 0


class DisagreementInspector:
    """Browse prediction records by filter; programmatic API plus an ipywidgets view.

    Args:
        records: a list of prediction records (source ``"records"`` unless they carry
            ``_source``), one path to a ``predictions.jsonl``, a list of paths, or
            ``{source: path}``.
        image_root: where relative image paths resolve (default: the repository root).
        on_error: for files — ``"raise"`` (default) or ``"skip"`` bad lines, which are
            then counted in :meth:`summary` (see :func:`load_predictions`).
    Raises:
        ValueError: no records at all, a bad record (naming file, line and field), or a
            record list mixed with other things.
        FileNotFoundError: a path that does not exist.

    Attributes:
        records: the records (with ``_source``); ``facets``: their :func:`record_facets`;
        skipped: :class:`Skipped` lines; filters: the active filters (key → tuple or None);
        matches: indices of the matching records; position: index into ``matches``.
        Once :attr:`widget` is built: ``controls`` (filter key → Dropdown/ToggleButtons,
        choices from :meth:`options`; the "any value" choice is :data:`ALL`),
        ``slider`` (1-based case number, no readout), ``prev_button``, ``next_button``,
        ``position_html`` (the one place the position is shown: ``k / n · id``) and
        ``view`` (the case's HTML) — changing a control is the same as :meth:`set_filter`.
    """

    def __init__(
        self,
        records: Any,
        image_root: str | os.PathLike[str] | None = None,
        on_error: str = "raise",
    ):
        self.skipped: list[Skipped] = []
        if isinstance(records, Mapping) and "panel" in records:
            raise ValueError("DisagreementInspector: got one record; pass a list of records")
        if _is_record_list(records):
            recs = []
            for i, r in enumerate(records):
                check_record(r, f"record {i} (id {r.get('id', '?')!r})")
                recs.append({**r, "_source": r.get("_source", DIRECT_SOURCE)})
        elif isinstance(records, (str, os.PathLike, Mapping)) or (
            isinstance(records, (list, tuple)) and records and all(isinstance(p, (str, os.PathLike)) for p in records)
        ):
            recs, self.skipped = load_predictions(records, on_error=on_error)
        elif isinstance(records, (list, tuple)) and not records:
            raise ValueError("DisagreementInspector: no records given")
        else:
            raise ValueError("DisagreementInspector: give prediction records (dicts), a predictions.jsonl path, "
                             "a list of paths or {source: path}")
        if not recs:
            raise ValueError(f"DisagreementInspector: no usable records ({len(self.skipped)} lines skipped)")
        self.records: list[dict[str, Any]] = recs
        self.image_root = image_root
        self.facets = [record_facets(r) for r in recs]
        self.images = Counter(image_status(r.get("image_ref"), image_root)[0] for r in recs)
        self.image_failures: dict[int, str] = {}  # record index -> detail, found when drawn
        self._image_cache: dict[int, RecordImage] = {}
        self._counts_all: dict[str, dict[str, int]] | None = None
        self.filters: dict[str, tuple[str, ...] | None] = {k: None for k in FILTER_KEYS}
        self.matches: list[int] = list(range(len(recs)))
        self.position = 0
        self._widget = None
        self._syncing = False

    # -- construction from a run -----------------------------------------------------
    @classmethod
    def from_run(
        cls,
        run_dir: str | os.PathLike[str],
        names: Sequence[str] | None = None,
        image_root: str | os.PathLike[str] | None = None,
        on_error: str = "raise",
    ) -> "DisagreementInspector":
        """All predictions of a run (:func:`find_predictions`), each record tagged with its
        source; ``names`` keeps only the sources named (the full source such as
        ``"consult/synthetic_test"`` or its last part ``"synthetic_test"``).

        Raises:
            FileNotFoundError: the run has no predictions file.
            ValueError: a name that matches no source (listing those found).
        """
        found = find_predictions(run_dir)
        if not found:
            raise FileNotFoundError(f"no consult/*/predictions.jsonl or eval/**/predictions.jsonl under {run_dir}")
        if names:
            chosen = {}
            for n in names:
                hits = {s: p for s, p in found.items() if s == n or s.rsplit("/", 1)[-1] == n}
                if not hits:
                    raise ValueError(f"no predictions named {n!r} in {run_dir}; found {list(found)}")
                chosen.update(hits)
            found = chosen
        return cls(found, image_root=image_root, on_error=on_error)

    # -- filters and navigation ------------------------------------------------------
    def set_filter(self, **filters: Any) -> int:
        """Change some filters (``key=None`` or ``key="all"`` clears one; others stay);
        go to the first match. Returns :attr:`n_matching`. Raises ValueError on an unknown key or value
        (:func:`normalize_filters`)."""
        norm = normalize_filters(filters, self.facets)
        self.filters.update(norm)
        self.matches = [i for i, f in enumerate(self.facets) if _match(f, self.filters)]
        self.position = 0
        self._refresh(sync_filters=True)
        return self.n_matching

    def clear_filters(self) -> int:
        """Remove every filter; returns :attr:`n_matching` (all records)."""
        return self.set_filter(**{k: None for k in FILTER_KEYS})

    @property
    def n_matching(self) -> int:
        return len(self.matches)

    @property
    def current_index(self) -> int | None:
        """Index into :attr:`records` of the case shown, ``None`` when nothing matches."""
        return self.matches[self.position] if self.matches else None

    @property
    def current_record(self) -> dict[str, Any] | None:
        i = self.current_index
        return None if i is None else self.records[i]

    def go(self, position: int) -> dict[str, Any] | None:
        """Show the ``position``-th match (0-based, clamped to the matches)."""
        self.position = min(max(int(position), 0), max(self.n_matching - 1, 0))
        self._refresh()
        return self.current_record

    def next(self) -> dict[str, Any] | None:
        """The next match (stays on the last one); returns the current record."""
        return self.go(self.position + 1)

    def prev(self) -> dict[str, Any] | None:
        """The previous match (stays on the first one); returns the current record."""
        return self.go(self.position - 1)

    # -- rendering -------------------------------------------------------------------
    def image(self, index: int) -> RecordImage:
        """The (cached) :class:`RecordImage` of record ``index``; failures to decode are
        added to :attr:`image_failures`."""
        if index not in self._image_cache:
            img = record_image(self.records[index], self.image_root)
            if img.status == "unreadable":
                self.image_failures[index] = img.detail
            self._image_cache[index] = img
        return self._image_cache[index]

    def record_html(self, index: int, title: str | None = None) -> str:
        """:func:`render_record_html` of record ``index`` with the cached image."""
        return render_record_html(self.records[index], self.image_root, image=self.image(index), title=title)

    def current_html(self) -> str:
        """The HTML of the case shown (a note when nothing matches). It does not repeat
        the case's position: the widget's position line (``k / n · id``) and the caption
        of :meth:`static_html` say it, once each."""
        i = self.current_index
        if i is None:
            active = {k: v for k, v in self.filters.items() if v is not None}
            return f"<div><i>no record matches the filters {html.escape(str(active))}</i></div>"
        return self.record_html(i)

    def static_html(self) -> str:
        """A static HTML view of the case the widget shows, for readers without a live
        kernel (an executed notebook, its HTML export): a caption (which case of how many
        matches, the active filters, and that the view is a snapshot taken when the cell
        ran), then :func:`render_record_html` of the case — the image inlined as a base64
        PNG ``<img>`` (or a placeholder naming why), the question, the lettered options
        with the gold marked, each specialist's opinion with its specialty, and the
        attending's answer. Builds no widget."""
        active = {k: list(v) for k, v in self.filters.items() if v is not None}
        where = ", ".join(f"{k} = {' | '.join(v)}" for k, v in active.items()) or "none"
        rec = self.current_record
        shown = (f"case {self.position + 1} of {self.n_matching} matching ({len(self.records)} records)"
                 if rec is not None else f"no case ({len(self.records)} records, none matching)")
        caption = (
            '<div class="mmed-static-caption" style="font-family:sans-serif;font-size:12px;color:#444;'
            'border-left:3px solid #1565c0;padding:2px 8px;margin:6px 0">'
            f"<b>Static view</b> of the case selected when this cell ran: {html.escape(shown)}; filters: "
            f"{html.escape(where)}. It reads without a kernel; the browser above needs a live one.</div>"
        )
        return f'<div class="mmed-static-view">{caption}{self.current_html()}</div>'

    def show(self) -> None:
        """Display the widget and, below it, :meth:`static_html` (the notebook's browser
        cell): a live kernel shows both, an executed copy without a kernel still shows the
        selected case."""
        from IPython.display import HTML, display

        display(self.widget)
        display(HTML(self.static_html()))

    def first(self, **filters: Any) -> int | None:
        """Index of the first record matching ``filters`` (independent of the inspector's
        own filters), or None."""
        norm = normalize_filters(filters, self.facets)
        return next((i for i, f in enumerate(self.facets) if _match(f, norm)), None)

    # -- summaries -------------------------------------------------------------------
    def counts(self, matching_only: bool = False) -> dict[str, dict[str, int]]:
        """``{filter key: {value: count}}``; fixed vocabularies list every value (zeros
        included), the others the values present."""
        if not matching_only and getattr(self, "_counts_all", None) is not None:
            return {k: dict(v) for k, v in self._counts_all.items()}
        idx = self.matches if matching_only else range(len(self.records))
        out: dict[str, dict[str, int]] = {}
        for key in FILTER_KEYS:
            c = Counter(self.facets[i][key] for i in idx)
            fixed = [v for v in _fixed_values(key) if key not in ("specialty", "triage") or c.get(v)]
            keys = fixed + sorted(set(c) - set(fixed))
            out[key] = {v: c.get(v, 0) for v in keys}
        if not matching_only:
            self._counts_all = {k: dict(v) for k, v in out.items()}
        return out

    def option_counts(self, key: str) -> dict[str, int]:
        """Per value of filter ``key``, the number of records that match every *other*
        active filter and have that value — how many cases choosing the value shows (the
        counts on the widget's choices; their sum is the count of its "all" choice).

        Values: those of :meth:`counts` that at least one record has (a value no record
        has can never match and is left out), in :meth:`counts`' order; a value may count
        0 here when the other filters exclude it.

        Raises:
            ValueError: ``key`` not in :data:`FILTER_KEYS`.
        """
        if key not in FILTER_KEYS:
            raise ValueError(f"unknown filter {key!r}; filters are {FILTER_KEYS}")
        others = {k: v for k, v in self.filters.items() if k != key}
        c = Counter(f[key] for f in self.facets if _match(f, others))
        return {v: c.get(v, 0) for v, n in self.counts()[key].items() if n}

    def overrule_table(self):
        """A pandas DataFrame, one row per stratum (``unstratified`` only when present)
        and ``all``: ``n``, ``correct``, ``accuracy`` (correct / n, invalid counting as
        wrong), ``followed``, ``followed_correct``, ``overruled``, ``overruled_correct``
        and ``undefined`` (any other overrule status)."""
        import pandas as pd

        rows = []
        for st in (*STRATUM_VALUES, "all"):
            idx = [i for i, f in enumerate(self.facets) if st == "all" or f["stratum"] == st]
            fs = [self.facets[i] for i in idx]
            if not fs and st == "unstratified":
                continue
            n = len(fs)
            rows.append({
                "stratum": st, "n": n,
                "correct": sum(f["outcome"] == "correct" for f in fs),
                "accuracy": (sum(f["outcome"] == "correct" for f in fs) / n) if n else float("nan"),
                "followed": sum(f["overrule"] == "followed" for f in fs),
                "followed_correct": sum(f["overrule"] == "followed" and f["outcome"] == "correct" for f in fs),
                "overruled": sum(f["overrule"] == "overruled" for f in fs),
                "overruled_correct": sum(f["overrule"] == "overruled" and f["outcome"] == "correct" for f in fs),
                "undefined": sum(f["overrule"] not in ("followed", "overruled") for f in fs),
            })
        return pd.DataFrame(rows).set_index("stratum")

    def summary(self) -> dict[str, Any]:
        """Counts (JSON-ready): ``n_records``, ``n_matching``, ``filters`` (active ones),
        ``counts`` (:meth:`counts` over all records), ``images`` (per
        :data:`IMAGE_STATUSES`, from the cheap check), ``image_failures`` (decoding
        failures found so far), ``placeholders`` (records whose image cannot be shown),
        ``skipped`` (bad lines left out with ``on_error="skip"``), and
        ``overruled_correct`` / ``followed_correct``."""
        fs = self.facets
        return {
            "n_records": len(self.records),
            "n_matching": self.n_matching,
            "filters": {k: list(v) for k, v in self.filters.items() if v is not None},
            "counts": self.counts(),
            "images": {s: self.images.get(s, 0) for s in IMAGE_STATUSES if s != "unreadable"},
            "image_failures": len(self.image_failures),
            "placeholders": sum(v for s, v in self.images.items() if s not in ("synthetic", "file"))
            + len(self.image_failures),
            "skipped": [{"source": s.source, "line": s.line, "reason": s.reason} for s in self.skipped],
            "overruled_correct": sum(f["overrule"] == "overruled" and f["outcome"] == "correct" for f in fs),
            "followed_correct": sum(f["overrule"] == "followed" and f["outcome"] == "correct" for f in fs),
        }

    def metrics(self) -> dict[str, Any]:
        """The counts notebook 07 records (checked by :mod:`mmed.checkers.nb07_inspector`):
        ``n_records``; the partitions ``sources``, ``strata``, ``outcomes``, ``overrule``,
        ``agreement``, ``images``; ``overruled_correct``, ``followed_correct``,
        ``image_failures``, ``placeholders``, ``skipped`` (count) and ``by_stratum``
        (:meth:`overrule_table` as ``{stratum: {column: value}}``)."""
        sm = self.summary()
        c = sm["counts"]
        table = self.overrule_table()
        by = {st: {k: (int(v) if k != "accuracy" else float(v)) for k, v in row.items()}
              for st, row in table.to_dict(orient="index").items()}
        return {
            "n_records": sm["n_records"], "sources": c["source"], "strata": c["stratum"], "outcomes": c["outcome"],
            "overrule": c["overrule"], "agreement": c["agreement"], "images": sm["images"],
            "overruled_correct": sm["overruled_correct"], "followed_correct": sm["followed_correct"],
            "image_failures": sm["image_failures"], "placeholders": sm["placeholders"],
            "skipped": len(sm["skipped"]), "by_stratum": by,
        }

    def summary_html(self) -> str:
        """A readable HTML summary (kept by an executed notebook without a live kernel):
        sources, counts per filter value, the overrule table per stratum, images and
        skipped lines, and the definitions used."""
        sm = self.summary()
        parts = [
            '<div class="mmed-summary" style="font-family:sans-serif;font-size:13px">',
            f"<h4 style='margin:4px 0'>Disagreement inspector: {sm['n_records']} records"
            f" from {len(sm['counts']['source'])} source(s)</h4>",
        ]
        rows = [[f"<b>{k}</b>", ", ".join(f"{html.escape(v)}: {n}" for v, n in c.items())]
                for k, c in sm["counts"].items()]
        parts.append(_table(["filter", "records per value"], rows))
        parts.append("<div><b>Attending vs panel, per stratum</b> (panel vote = plurality of valid answers, "
                     "a tie is no vote)</div>")
        parts.append(self.overrule_table().to_html(float_format=lambda x: f"{x:.3f}", border=0))
        img = ", ".join(f"{s}: {n}" for s, n in sm["images"].items() if n)
        parts.append(f"<div><b>Images:</b> {html.escape(img)}; shown as a placeholder: {sm['placeholders']}"
                     f" (decoding failures so far: {sm['image_failures']})</div>")
        if self.skipped:
            items = "".join(f"<li>{html.escape(s.source)} line {s.line}: {html.escape(s.reason)}</li>"
                            for s in self.skipped)
            parts.append(f"<div><b>Skipped lines: {len(self.skipped)}</b><ul>{items}</ul></div>")
        else:
            parts.append("<div><b>Skipped lines:</b> 0</div>")
        parts.append("</div>")
        return "".join(parts)

    # -- widgets ---------------------------------------------------------------------
    @property
    def widget(self):
        """The ipywidgets view (built on first use): filter dropdowns/toggle buttons
        (choices and counts: :meth:`options`; dropdowns sized to their longest label),
        previous/next buttons, an index slider, the position line, the case's HTML and
        the summary. CSS classes name the parts for a browser (tests/test_browser_inspector.py):
        ``mmed-inspector`` (the whole), ``mmed-filter-<key>``, ``mmed-prev``, ``mmed-next``,
        ``mmed-position``, ``mmed-view``."""
        if self._widget is None:
            self._widget = self._build_widget()
        return self._widget

    def options(self, key: str) -> list[tuple[str, Any]]:
        """The ``(label, value)`` choices of filter ``key``'s control: first
        ``("all (<n>)", ALL)``, then each value of :meth:`option_counts` as
        ``"<value> (<n>)"`` — the value exactly as :meth:`set_filter` takes it (source
        names as the run's folders) and the count of cases choosing it shows under the
        other filters; a value that would show no case is left out unless it is the
        active filter — and, when the active filter is a value no record has or several
        values, that selection too. No choice has the value ``None``.

        Raises:
            ValueError: ``key`` not in :data:`FILTER_KEYS`.
        """
        counts = self.option_counts(key)
        cur = self.filters[key]
        opts: list[tuple[str, Any]] = [(f"{ALL} ({sum(counts.values())})", ALL)]
        opts += [(f"{v} ({n})", v) for v, n in counts.items() if n or cur == (v,)]
        if cur is not None and len(cur) > 1:
            opts.append((f"{' | '.join(cur)} ({sum(counts.get(v, 0) for v in cur)})", cur))
        elif cur is not None and cur[0] not in counts:  # a valid value no record has: the current selection
            opts.append((f"{cur[0]} (0)", cur[0]))
        return opts

    def _filter_value(self, key: str) -> Any:
        cur = self.filters[key]
        return ALL if cur is None else cur[0] if len(cur) == 1 else cur

    def _dropdown_width(self, key: str, labels: Iterable[str] = ()) -> str:
        """CSS width of a dropdown: the description plus room for its longest label (the
        labels with counts over all records, which the filtered ones never exceed, and
        ``labels``)."""
        longest = max([len(f"{ALL} ({len(self.records)})")] + [len(f"{v} ({n})") for v, n in self.counts()[key].items()]
                      + [len(x) for x in labels])
        return f"calc({DESCRIPTION_WIDTH} + {math.ceil(longest * 1.15) + 4}ch)"

    def _build_widget(self):
        import ipywidgets as w

        self.controls: dict[str, Any] = {}
        for key in FILTER_KEYS:
            opts = self.options(key)
            if key in TOGGLE_KEYS:
                # ipywidgets lays ToggleButtons out as a block (description above the buttons);
                # a flex row puts the description beside them, as for the dropdowns
                c = w.ToggleButtons(options=opts, value=self._filter_value(key), description=key,
                                    style={"button_width": "auto", "description_width": DESCRIPTION_WIDTH},
                                    layout=w.Layout(display="flex", flex_flow="row", align_items="center"))
            else:
                c = w.Dropdown(options=opts, value=self._filter_value(key), description=key,
                               style={"description_width": DESCRIPTION_WIDTH},
                               layout=w.Layout(width=self._dropdown_width(key, [lab for lab, _ in opts])))
            c.add_class(f"mmed-filter-{key}")
            c.observe(self._on_control, names="value")
            self.controls[key] = c
        self.prev_button = w.Button(description="◀ previous", layout=w.Layout(width="110px"))
        self.next_button = w.Button(description="next ▶", layout=w.Layout(width="110px"))
        # no readout: the position is said once, by position_html ("k / n · id")
        self.slider = w.IntSlider(min=1, max=max(1, self.n_matching), value=1, description="case", readout=False,
                                  continuous_update=False, style={"description_width": DESCRIPTION_WIDTH},
                                  layout=w.Layout(width="420px"))
        self.position_html = w.HTML().add_class("mmed-position")
        self.view = w.HTML().add_class("mmed-view")
        self.prev_button.add_class("mmed-prev")
        self.next_button.add_class("mmed-next")
        self.prev_button.on_click(lambda _: self.prev())
        self.next_button.on_click(lambda _: self.next())
        self.slider.observe(self._on_slider, names="value")
        summary = w.Accordion(children=[w.HTML(self.summary_html())], titles=("summary",))
        summary.selected_index = None
        c = self.controls
        box = w.VBox([
            w.HBox([c["source"], c["dataset"]]),
            w.HBox([c["stratum"]]), w.HBox([c["outcome"]]),
            w.HBox([c["overrule"], c["agreement"]]),
            w.HBox([c["specialty"], c["triage"]]),
            w.HBox([self.prev_button, self.slider, self.next_button, self.position_html]),
            self.view, summary,
        ])
        box.add_class("mmed-inspector")
        self._widget = box
        self._refresh()
        return box

    def _on_control(self, change) -> None:
        if self._syncing:
            return
        key = next(k for k, c in self.controls.items() if c is change["owner"])
        self.set_filter(**{key: change["new"]})

    def _on_slider(self, change) -> None:
        if self._syncing:
            return
        self.go(change["new"] - 1)

    def _refresh(self, sync_filters: bool = False) -> None:
        """Bring the widgets (when built) in line with the filters and position."""
        if self._widget is None:
            return
        self._syncing = True
        try:
            if sync_filters:
                for key, c in self.controls.items():
                    opts = self.options(key)
                    c.options = opts
                    c.value = self._filter_value(key)
                    if key not in TOGGLE_KEYS:
                        c.layout.width = self._dropdown_width(key, [lab for lab, _ in opts])
            n = self.n_matching
            self.slider.max = max(1, n)
            self.slider.value = self.position + 1
            self.slider.disabled = n <= 1
            self.prev_button.disabled = n == 0 or self.position == 0
            self.next_button.disabled = n == 0 or self.position >= n - 1
            rec = self.current_record
            self.position_html.value = (f"<b>{self.position + 1} / {n}</b> · <code>{html.escape(rec['id'])}</code>"
                                 if rec is not None else "<b>0 / 0</b>")
            self.view.value = self.current_html()
        finally:
            self._syncing = False

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)
