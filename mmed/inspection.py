"""Notebook 07's step: the disagreement inspector over a run's predictions, in one call
(:func:`inspection_step`; ``python -m mmed inspect`` makes the same one and writes a page
that needs no Jupyter).

The inspector (:class:`mmed.viz.inspector.DisagreementInspector`) reads every
``predictions.jsonl`` of the run; the step opens the teaching cases of :data:`TEACHING_CASES`
(where the attending overruled its panel, and whether it was right) in the main consultation's
records, and builds the metrics the notebook records (``mmed.checkers.nb07_inspector``).
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Profile
from .consult import consult
from .runs import Run, resolve_path
from .viz.inspector import DisagreementInspector, find_predictions

#: the cases notebook 07 opens first: title -> inspector filters (:meth:`DisagreementInspector.first`)
TEACHING_CASES: dict[str, dict[str, Any]] = {
    "overruled the panel and was right": {"overrule": "overruled", "outcome": "correct"},
    "overruled the panel and was wrong": {"overrule": "overruled", "outcome": ["incorrect", "invalid"]},
    "followed a wrong panel": {"overrule": "followed", "outcome": "incorrect"},
    "first Hard case": {"stratum": "hard"},
}
#: the source the teaching cases are picked from when the run has it (notebook 02's consultation)
MAIN_SOURCE = "consult/synthetic_test"


@dataclass
class InspectionStepResult:
    """What :func:`inspection_step` opened (notebook 07 shows it; ``inspect`` writes it)."""

    inspector: DisagreementInspector
    #: whether the run had no predictions and a small consultation was run first
    fallback_consultation: bool
    #: the predictions the teaching cases come from
    source: str
    #: ``{title: record index in inspector.records, or None when no record matches}``
    cases: dict[str, int | None]
    #: what notebook 07 records: :meth:`DisagreementInspector.metrics` plus
    #: ``fallback_consultation``, ``cases_shown`` (``{title: record id or None}``) and ``seconds``
    metrics: dict[str, Any]

    def case_html(self, title: str) -> str:
        """One teaching case as HTML (or a line saying none matched in :attr:`source`).

        Raises:
            KeyError: a title not in :attr:`cases`.
        """
        i = self.cases[title]
        if i is None:
            return f"<p><b>{html.escape(title)}</b>: no such case in <code>{html.escape(self.source)}</code>.</p>"
        return self.inspector.record_html(i, title=f"{title} ({self.source})")

    def page_html(self) -> str:
        """A standalone HTML page: the summary and every teaching case (images inline). A
        first line says what the summary pools: every source it read, majority-vote
        baselines included (they follow the panel by construction), while the cases come
        from :attr:`source` alone."""
        sources = self.inspector.counts()["source"]
        scope = (f"<p>The summary counts all {len(sources)} source(s) read ({html.escape(', '.join(sources))}), "
                 "majority-vote baselines included: they follow the panel by construction. The cases below come "
                 f"from <code>{html.escape(self.source)}</code>; <code>--predictions {html.escape(self.source)}</code> "
                 "limits the summary to it.</p>")
        body = "".join([scope, self.inspector.summary_html(), *(self.case_html(t) for t in self.cases)])
        return ("<!doctype html><html><head><meta charset='utf-8'><title>Disagreement inspector</title></head>"
                f"<body>{body}</body></html>")


def inspection_step(
    run: Run, profile: Profile, seed: int, predictions: str | None = None, fallback_limit: int = 16,
    log: Any = print, data_root: str | Path | None = None,
) -> InspectionStepResult:
    """Open the run's predictions in the disagreement inspector and pick the teaching cases.

    Args:
        predictions: None → every ``predictions.jsonl`` of the run
            (:func:`mmed.viz.inspector.find_predictions`); a ``.jsonl`` file (absolute, or
            relative to the run folder, else to the repository root); or a source name such as
            ``"consult/synthetic_test"`` (or its last part).
        fallback_limit: when the run has no predictions at all (and ``predictions`` is None),
            a consultation of this many synthetic test items is run first (:func:`mmed.consult.consult`).
        log: the line saying so (None: silent).
        data_root: the real-data folder that consultation's cold starts read (None →
            ``../shared/data`` when present).
    Returns:
        an :class:`InspectionStepResult`.
    Raises:
        FileNotFoundError: a ``predictions`` file that does not exist; a run without
            predictions and a ``predictions`` source name; an explicit ``data_root`` that does not exist.
        ValueError: an unknown source name (those found are listed), ``fallback_limit`` < 1.
    """
    t0 = time.perf_counter()
    log = log or (lambda m: None)
    if fallback_limit < 1:
        raise ValueError(f"fallback_limit must be >= 1, got {fallback_limit}")
    fallback = False
    if predictions is None and not find_predictions(run.root):
        log(f"The run has no predictions yet (notebooks 02-06 write them); running a small consultation of "
            f"{fallback_limit} synthetic test items first.")
        consult(profile, run.root, data="synthetic", split="test", limit=fallback_limit, seed=seed, progress=False,
                data_root=data_root)
        fallback = True
    file = _predictions_file(run, predictions) if predictions is not None else None
    if predictions is None:
        ins = DisagreementInspector.from_run(run.root)
    elif file is not None:
        ins = DisagreementInspector(file)
    else:
        ins = DisagreementInspector.from_run(run.root, names=[predictions])
    sources = ins.counts()["source"]
    source = MAIN_SOURCE if MAIN_SOURCE in sources else next(iter(sources))
    cases = {title: ins.first(source=source, **flt) for title, flt in TEACHING_CASES.items()}
    metrics = ins.metrics()
    metrics.update(fallback_consultation=fallback,
                   cases_shown={t: None if i is None else ins.records[i]["id"] for t, i in cases.items()},
                   seconds=round(time.perf_counter() - t0, 1))
    return InspectionStepResult(ins, fallback, source, cases, metrics)


def _predictions_file(run: Run, predictions: str) -> Path | None:
    """``predictions`` as an existing file (absolute, relative to the run, else to the
    repository root), None when it names a source; a ``.jsonl`` path that exists nowhere
    raises ``FileNotFoundError``."""
    p = Path(predictions)
    for cand in ([p] if p.is_absolute() else [run.root / p, resolve_path(p)]):
        if cand.is_file():
            return cand
    if p.suffix == ".jsonl":
        raise FileNotFoundError(f"predictions file {predictions} not found (absolute, under the run {run.root}, "
                                f"or under the repository root)")
    return None


def write_page(step: InspectionStepResult, path: str | Path) -> Path:
    """Write :meth:`InspectionStepResult.page_html` to ``path`` (parents made); returns it.

    Raises:
        ValueError: ``path`` is a folder, or a parent of it is a file (one line naming it).
    """
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"--html {out} is a folder: give a file name, e.g. {out / 'inspector.html'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(step.page_html(), encoding="utf-8")
    except (FileExistsError, NotADirectoryError) as e:
        raise ValueError(f"cannot write the page to {out}: a parent folder is a file ({e.filename})") from None
    return out
