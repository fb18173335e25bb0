"""The clinical consultation (paper §3): triage → panel of K specialists → attending.

:func:`run_consultation` runs the whole chain on a list of items and returns one
prediction record per item in the ``predictions.jsonl`` shape of
docs/architecture.md#predictions::

    {id, dataset, split, image_ref, question, options, answer_idx, answer, answer_type,
     specialty,                              # the label
     triage: {specialty, raw, parsed, valid, fallback, mode},
     panel: [{specialist_id, specialty, backend, model, raw, parsed, valid, abstained,
              error, simulated, cached, usage}],
     s, stratum, agreement, n_abstained, n_invalid,          # mmed.agents.stratify
     attending: {raw, parsed, valid, reason, method},
     correct,                                 # closed items: attending.parsed == answer_idx
     open_exact, open_recall,                 # open items only (scored apart)
     profile, variant, seed}

The decision step is one of:

- ``"attending"`` — the attending physician reads the opinions (the method);
- ``"attending_alone"`` — the attending without opinions ("w/o specialists");
- ``"majority_vote"`` — the panel's majority, no attending (the static MDAgents-style
  baseline, with a fixed specialty from :class:`~mmed.agents.triage.TriageDoctor`);
- ``"none"`` — panel only (training strata: with gold triage this is the panel of the
  ground-truth specialty, docs/architecture.md#stratification).

Invalid outputs are never dropped: an invalid attending answer is wrong, an invalid triage
answer falls back (counted), an abstaining specialist counts as not correct in ``s``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..data.answers import exact_match, token_recall
from ..data.schema import COLUMNS
from .scoring import accuracy_ci, answer_distribution
from .stratify import majority_vote, stratify, stratum_counts
from .attending import AttendingPhysician
from .specialists import Opinion, Specialist, consult_routed, make_panel
from .triage import TriageDoctor

DECISIONS: tuple[str, ...] = ("attending", "attending_alone", "majority_vote", "none")

#: Item fields copied into every record.
RECORD_ITEM_FIELDS: tuple[str, ...] = (
    "id", "dataset", "split", "image_ref", "question", "options", "answer_idx", "answer", "answer_type", "specialty",
)


def as_item_list(items: Any) -> list[dict[str, Any]]:
    """Rows of a ``datasets.Dataset`` (images decoded once) or any iterable of item dicts."""
    if hasattr(items, "column_names") and hasattr(items, "select"):
        missing = [c for c in ("id", "images", "question", "options", "answer_idx") if c not in items.column_names]
        if missing:
            raise ValueError(f"dataset lacks item column(s) {missing}; expected the schema {COLUMNS}")
        out = []
        for i in range(len(items)):
            try:
                out.append(items[i])
            except (OSError, SyntaxError, ValueError) as e:  # PIL.UnidentifiedImageError is an OSError
                raise _decode_error(items, i, e) from None
        return out
    return [dict(it) for it in items]


def _decode_error(items: Any, i: int, err: Exception) -> ValueError:
    """A :class:`~mmed.data.rows.DataError` naming the item id and the image path(s) of row
    ``i`` whose images could not be decoded (read without decoding, through Arrow)."""
    from ..data.rows import DataError

    try:
        row = items.with_format("arrow")[i:i + 1].to_pylist()[0]
    except Exception:  # noqa: BLE001 - the message below still names the row
        row = {}
    imgs = row.get("images") or []
    paths = [str(im.get("path")) if isinstance(im, dict) else str(im) for im in imgs] or ["<unknown>"]
    src = paths[0] if len(paths) == 1 else ", ".join(paths)
    return DataError(src, i, "images", f"image cannot be decoded ({type(err).__name__}: {err})", row.get("id"))


class PanelBank:
    """Panels of K specialists per specialty, built once by a factory and reused.

    Args:
        factory: ``(specialty, panel_index) -> Specialist`` (e.g.
            :func:`mmed.agents.specialists.simulated_panel_factory`).
        k: panel size (3 by default, docs/architecture.md#stratification).
    """

    def __init__(self, factory: Callable[[str, int], Specialist], k: int = 3):
        self.factory, self.k = factory, int(k)
        self._panels: dict[str, list[Specialist]] = {}

    def __call__(self, specialty: str) -> list[Specialist]:
        if specialty not in self._panels:
            self._panels[specialty] = make_panel(specialty, self.k, self.factory)
        return self._panels[specialty]

    def describe(self) -> list[dict[str, Any]]:
        """``params()`` of every specialist built so far (for the run manifest)."""
        return [sp.params() for panel in self._panels.values() for sp in panel]


def _score(rec: dict[str, Any]) -> None:
    att = rec["attending"]
    if rec["answer_type"] == "closed":
        rec["correct"] = bool(att["valid"] and att["parsed"] == rec["answer_idx"])
    else:
        pred = att["parsed"] if att["valid"] else None
        rec["correct"] = None
        rec["open_exact"] = bool(exact_match(pred, rec["answer"]))
        rec["open_recall"] = float(token_recall(pred, rec["answer"]))


def run_consultation(
    items: Any,
    triage: TriageDoctor,
    panels: PanelBank | None,
    attending: AttendingPhysician | None = None,
    decision: str = "attending",
    max_concurrency: int = 4,
    tags: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Consult every item; return prediction records in item order (module docstring).

    Args:
        items: a schema ``datasets.Dataset`` or item dicts (closed and/or open).
        triage: routes each item (model, gold, fixed or random).
        panels: the specialists; ``None`` only with ``decision="attending_alone"``.
        attending: required for ``"attending"`` and ``"attending_alone"``.
        decision: one of :data:`DECISIONS`.
        max_concurrency: concurrent panel calls (remote backends).
        tags: extra fields for every record, e.g. ``{"profile": "demo", "variant": None,
            "seed": 0}``.
    Raises:
        ValueError: unknown decision, or a missing panel/attending it needs.
    """
    if decision not in DECISIONS:
        raise ValueError(f"decision {decision!r} not in {DECISIONS}")
    if decision in ("attending", "attending_alone") and attending is None:
        raise ValueError(f"decision {decision!r} needs an AttendingPhysician")
    if decision != "attending_alone" and panels is None:
        raise ValueError(f"decision {decision!r} needs a PanelBank")
    rows = as_item_list(items)
    if not rows:
        return []
    routes = triage.route(rows, progress=progress)
    if decision == "attending_alone":
        opinions: list[list[Opinion]] = [[] for _ in rows]
    else:
        opinions = consult_routed(rows, [r.specialty for r in routes], panels, max_concurrency=max_concurrency)
    records = []
    for it, route, ops in zip(rows, routes, opinions):
        rec = {k: it.get(k) for k in RECORD_ITEM_FIELDS}
        rec["options"] = list(rec["options"] or [])
        rec["triage"] = route.to_record()
        rec["panel"] = [op.to_record() for op in ops]
        rec.update(tags or {})
        records.append(rec)
    records = stratify(records)
    if decision in ("attending", "attending_alone"):
        decisions = attending.decide(rows, opinions, progress=progress)
        for rec, d in zip(records, decisions):
            rec["attending"] = {**d.to_record(), "method": decision}
            _score(rec)
    elif decision == "majority_vote":
        for rec, ops in zip(records, opinions):
            vote = majority_vote([op.parsed if op.valid else None for op in ops]) if rec["options"] else None
            rec["attending"] = {"raw": None, "parsed": vote, "valid": vote is not None, "reason": "ok" if vote is not None else "no_valid_vote", "method": decision}
            _score(rec)
    else:
        for rec in records:
            rec["attending"] = None
            rec["correct"] = None
    return records


def summarize(records: Sequence[dict[str, Any]], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Counts and accuracy of a consultation (the ``consult/metrics.json`` body).

    Returns a dict with ``items``, ``closed``, ``open``; ``triage_invalid``,
    ``triage_fallbacks``; ``panel_opinions``, ``abstentions``, ``panel_invalid``,
    ``panel_errors`` (by error class); ``attending_invalid``; ``strata`` counts;
    ``accuracy`` on closed items ``{acc, lo, hi, n}`` (bootstrap 95%, invalid = wrong);
    ``by_dataset`` and ``by_stratum`` accuracies; ``answers``: the distribution of the
    final answers on closed items (:func:`decision_answers`); ``open_scores`` (exact match,
    token recall) when open items were run; ``triage_accuracy`` against the specialty label.
    """

    closed = [r for r in records if r["answer_type"] == "closed"]
    opened = [r for r in records if r["answer_type"] == "open"]
    panel = [op for r in records for op in r["panel"]]
    errors: dict[str, int] = {}
    for op in panel:
        if op.get("error"):
            errors[op["error"]] = errors.get(op["error"], 0) + 1
    out: dict[str, Any] = {
        "items": len(records),
        "closed": len(closed),
        "open": len(opened),
        "triage_invalid": sum(not r["triage"]["valid"] for r in records),
        "triage_fallbacks": sum(bool(r["triage"]["fallback"]) for r in records),
        "triage_accuracy": accuracy_ci([r["triage"]["specialty"] == r["specialty"] for r in records], n_boot, seed=seed)
        if records else None,
        "panel_opinions": len(panel),
        "abstentions": sum(bool(op["abstained"]) for op in panel),
        "panel_invalid": sum((not op["valid"]) and not op["abstained"] for op in panel),
        "panel_errors": errors,
        "panel_cached": sum(bool(op.get("cached")) for op in panel),
        "strata": stratum_counts(closed),
    }
    with_att = [r for r in closed if r.get("attending") is not None]
    if with_att:
        out["attending_invalid"] = sum(not r["attending"]["valid"] for r in with_att)
        out["answers"] = decision_answers(with_att)
        out["accuracy"] = accuracy_ci([r["correct"] for r in with_att], n_boot, seed=seed)
        for key in ("dataset", "stratum"):
            groups: dict[str, list[bool]] = {}
            for r in with_att:
                groups.setdefault(str(r.get(key)), []).append(r["correct"])
            out[f"by_{key}"] = {g: accuracy_ci(v, n_boot, seed=seed) for g, v in sorted(groups.items())}
    if opened and any(r.get("attending") for r in opened):
        out["open_scores"] = {
            "n": len(opened),
            "exact_match": sum(r["open_exact"] for r in opened) / len(opened),
            "token_recall": sum(r["open_recall"] for r in opened) / len(opened),
        }
    return out


def decision_answers(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`mmed.agents.scoring.answer_distribution` of the final answers (``attending``) of
    closed prediction records: parsed option (letter) when valid, the raw completion (None
    for a majority vote, which writes no text), gold ``answer_idx``, the item's options.

    Raises:
        ValueError: an open record or one without a decision (``attending`` None), naming it.
    """

    for i, r in enumerate(records):
        if r.get("answer_type", "closed") != "closed" or r.get("attending") is None:
            raise ValueError(f"record {i} (id {r.get('id')!r}): decision_answers needs closed records with a decision")
    return answer_distribution([r["attending"]["parsed"] if r["attending"]["valid"] else None for r in records],
                               [r["attending"].get("raw") for r in records], [int(r["answer_idx"]) for r in records],
                               [list(r["options"]) for r in records])


def failed_calls_warning(metrics: dict[str, Any]) -> str | None:
    """A one-line warning when more than half of the panel's opinions failed (error,
    abstention or invalid answer) in :func:`summarize` metrics, else None."""
    n = int(metrics.get("panel_opinions") or 0)
    errors = sum((metrics.get("panel_errors") or {}).values())
    failed = int(metrics.get("abstentions") or 0) + int(metrics.get("panel_invalid") or 0)
    if n == 0 or 2 * failed <= n:
        return None
    kinds = ", ".join(f"{k}: {v}" for k, v in sorted((metrics.get("panel_errors") or {}).items())) or "none"
    unstrat = (metrics.get("strata") or {}).get("unstratified", 0)
    return (f"warning: {failed} of {n} specialist opinions failed (abstained, errored or invalid; errors by class: "
            f"{kinds}; {errors} with an error); {unstrat} closed item(s) have no valid opinion and are unstratified")


def write_predictions(records: Iterable[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write records as JSON lines (one object per item), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        for r in records:
            f.write(json.dumps(r, default=str) + "\n")
    os.replace(tmp, path)
    return path


def read_predictions(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read ``predictions.jsonl``. Raises ValueError naming the file and line of bad JSON."""
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: line {n} is not valid JSON ({e.msg})") from None
    return out
