"""Evaluation tables: accuracy with bootstrap intervals per dataset / stratum / domain, the
answer distributions side by side, and open-question scores (docs/architecture.md#closed-first).

- Closed questions (multiple choice) are scored by accuracy, as in MMedAgent-RL
  (arXiv 2506.00555, Table 1). An invalid final output counts as wrong and is reported
  (``n_invalid``).
- Intervals are the percentile bootstrap intervals of :mod:`mmed.agents.scoring`
  (``accuracy_ci``, ``paired_bootstrap_diff``, ``answer_distribution`` live there, since
  the trainings' held-out checks report with them too).
- Domains: in-domain = VQA-RAD, SLAKE, PathVQA; out-of-domain = OmniMedVQA, MMMU
  Health & Medicine (the paper's split); the synthetic set is reported on its own, never
  averaged into either. A domain's accuracy is the mean of its datasets' accuracies
  (macro, as papers average benchmarks), with the pooled (micro) accuracy beside it.
- Open questions are scored apart (exact match and token recall after SQuAD-style
  normalisation, :func:`mmed.data.answers.normalize_answer` with ``squad=True``) and never
  mixed into closed accuracy.

Records are dicts in the ``predictions.jsonl`` shape (docs/architecture.md#predictions): ``id``, ``dataset``,
``answer_type``, ``correct``, ``attending: {raw, parsed, valid}``, after
:func:`mmed.agents.stratify.stratify` also ``stratum``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..agents.scoring import accuracy_ci, bootstrap_mean_ci, bootstrap_means, check_bootstrap, percentile_interval
from ..config import STRATA
# open-question scoring, re-exported: the answer rules are in one place (mmed/data/answers.py)
from ..data.answers import exact_match, token_recall  # noqa: F401

#: In-domain benchmarks (the paper trains on their training splits).
IN_DOMAIN: tuple[str, ...] = ("vqa_rad", "slake", "pathvqa")
#: Out-of-domain benchmarks (evaluation only).
OUT_OF_DOMAIN: tuple[str, ...] = ("omnimedvqa", "mmmu_med")
#: Reported on their own, never averaged with the benchmarks.
SYNTHETIC: tuple[str, ...] = ("synthetic",)
#: Domain names returned by :func:`domain_of`, in report order.
DOMAINS: tuple[str, ...] = ("in_domain", "out_of_domain", "synthetic", "other")


def domain_of(dataset: str) -> str:
    """``"in_domain"``, ``"out_of_domain"``, ``"synthetic"`` or ``"other"`` for a dataset name."""
    if dataset in IN_DOMAIN:
        return "in_domain"
    if dataset in OUT_OF_DOMAIN:
        return "out_of_domain"
    if dataset in SYNTHETIC:
        return "synthetic"
    return "other"


# ----------------------------------------------------------------------------------------
# tables over prediction records
# ----------------------------------------------------------------------------------------
def get_path(record: Mapping[str, Any], path: str, where: str = "record") -> Any:
    """``record["a"]["b"]`` for ``path="a.b"``. Raises ``KeyError`` naming ``where`` and the path."""
    obj: Any = record
    for part in path.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            raise KeyError(f"{where}: missing field {path!r}")
        obj = obj[part]
    return obj


def _closed_frame(records: Iterable[Mapping[str, Any]], by: Sequence[str], correct_key: str, valid_key: str) -> tuple[pd.DataFrame, int]:
    """One row per closed record: the ``by`` keys, ``correct``, ``invalid``; and the number
    of open records left out."""
    rows: list[dict[str, Any]] = []
    n_open = 0
    for r, rec in enumerate(records):
        where = f"record {r} (id {rec.get('id', '?')!r})"
        if rec.get("answer_type", "closed") == "open":
            n_open += 1
            continue
        correct = get_path(rec, correct_key, where)
        valid = get_path(rec, valid_key, where)
        if not isinstance(correct, (bool, np.bool_)):
            raise ValueError(f"{where}: field {correct_key!r} must be true/false, got {correct!r}")
        if correct and not valid:
            raise ValueError(f"{where}: {correct_key!r} is true but {valid_key!r} is false")
        row = {k: rec.get(k) for k in by}
        row.update(correct=bool(correct), invalid=not bool(valid))
        rows.append(row)
    return pd.DataFrame(rows, columns=[*by, "correct", "invalid"]), n_open


def _object_keys(df: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Group-key columns as object dtype with ``None`` for a missing key (pandas would
    otherwise infer a string dtype and turn ``None`` into NaN)."""
    for k in by:
        df[k] = pd.Series([None if pd.isna(v) else v for v in df[k]], index=df.index, dtype=object)
    return df


def _sort_key(col: pd.Series) -> pd.Series:
    if col.name == "stratum":
        order = {s: i for i, s in enumerate(STRATA)}
        return col.map(lambda v: order.get(v, len(order)))
    return col.map(lambda v: (v is None, str(v)))


def accuracy_table(
    records: Iterable[Mapping[str, Any]],
    by: Sequence[str] = ("dataset", "stratum"),
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    correct_key: str = "correct",
    valid_key: str = "attending.valid",
) -> pd.DataFrame:
    """Closed-question accuracy with bootstrap intervals, one row per group of ``by``.

    Args:
        records: prediction records; open questions (``answer_type == "open"``) are left
            out and counted in ``df.attrs["n_open_skipped"]`` (score them with
            :func:`open_table`).
        by: grouping fields (``[]`` → one overall row). A missing or ``None`` value is a
            group of its own (``None``), never dropped. Strata sort easy, medium, hard.
        correct_key, valid_key: dotted paths of the final answer's correctness and
            validity (``"attending.valid"``; a baseline names its own).
    Returns:
        DataFrame with columns ``*by, n, n_correct, acc, lo, hi, n_invalid``.
    Raises:
        KeyError: a record lacks ``correct_key``/``valid_key`` (names the record).
        ValueError: ``correct`` not boolean, or correct while invalid (names the record).
    """
    by = list(by)
    frame, n_open = _closed_frame(records, by, correct_key, valid_key)
    groups = [((), frame)] if not by else frame.groupby(by, dropna=False, sort=False)
    rows = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        ci = accuracy_ci(g["correct"].to_numpy(), n_boot, confidence, seed)
        rows.append(
            {
                **{k: (None if pd.isna(v) else v) for k, v in zip(by, key)},
                "n": ci["n"],
                "n_correct": int(g["correct"].sum()),
                "acc": ci["acc"],
                "lo": ci["lo"],
                "hi": ci["hi"],
                "n_invalid": int(g["invalid"].sum()),
            }
        )
    out = pd.DataFrame(rows, columns=[*by, "n", "n_correct", "acc", "lo", "hi", "n_invalid"])
    if by and len(out):
        out = out.sort_values(by, key=_sort_key, kind="stable").reset_index(drop=True)
    out = _object_keys(out, by)
    out.attrs["n_open_skipped"] = n_open
    return out


def domain_table(
    records: Iterable[Mapping[str, Any]],
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    correct_key: str = "correct",
    valid_key: str = "attending.valid",
) -> pd.DataFrame:
    """In-domain / out-of-domain / synthetic (/ other) accuracy of closed questions.

    ``acc`` is the macro mean of the domain's per-dataset accuracies; its interval
    bootstraps each dataset independently (a stratified bootstrap) and averages the
    replicates. ``micro_acc`` pools the items. The first three domains always get a row
    (``n = 0`` and NaN when absent); ``other`` only when such datasets occur.

    Returns:
        DataFrame with columns ``domain, datasets, n, acc, lo, hi, micro_acc, n_invalid``
        (``datasets`` a comma-separated sorted list). Raises as :func:`accuracy_table`.
    """
    check_bootstrap(n_boot, confidence)
    frame, _ = _closed_frame(records, ["dataset"], correct_key, valid_key)
    rng = np.random.default_rng(seed)
    rows = []
    for domain in DOMAINS:
        names = sorted({d for d in frame["dataset"] if domain_of(d) == domain})
        if not names and domain == "other":
            continue
        sub = frame[frame["dataset"].isin(names)]
        row = {"domain": domain, "datasets": ",".join(names), "n": int(len(sub)), "n_invalid": int(sub["invalid"].sum())}
        if not names:
            row.update(acc=float("nan"), lo=float("nan"), hi=float("nan"), micro_acc=float("nan"))
        else:
            per = [sub.loc[sub["dataset"] == d, "correct"].to_numpy(dtype=float) for d in names]
            reps = np.mean([bootstrap_means(v, n_boot, rng) for v in per], axis=0)
            lo, hi = percentile_interval(reps, confidence)
            row.update(acc=float(np.mean([v.mean() for v in per])), lo=lo, hi=hi, micro_acc=float(sub["correct"].mean()))
        rows.append(row)
    return pd.DataFrame(rows, columns=["domain", "datasets", "n", "acc", "lo", "hi", "micro_acc", "n_invalid"])


def json_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """``df`` as a list of row dicts that strict JSON accepts: NaN/NaT/None → ``None``,
    numpy scalars → Python numbers (``df.where(pd.notna(df), None)`` keeps NaN in float
    columns under pandas ≥ 3, which ``json.dump`` writes as the non-standard ``NaN``)."""
    out = []
    for row in df.astype(object).to_dict(orient="records"):
        out.append({k: (None if v is None or (not isinstance(v, (list, tuple, dict, str)) and pd.isna(v))
                        else v.item() if isinstance(v, np.generic) else v) for k, v in row.items()})
    return out


# ----------------------------------------------------------------------------------------
# open questions
# ----------------------------------------------------------------------------------------
# The scoring key and the two scores (exact_match, token_recall) live with the other
# answer rules in mmed/data/answers.py (normalize_answer(..., squad=True): the SQuAD
# normalisation, Rajpurkar et al. 2016); imported at the head of this module.


def open_table(
    records: Iterable[Mapping[str, Any]],
    by: Sequence[str] = ("dataset",),
    pred_key: str = "attending.parsed",
    gold_key: str = "answer",
    valid_key: str = "attending.valid",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Open-question scores, apart from closed accuracy: one row per group of ``by``.

    Only records with ``answer_type == "open"`` are scored (closed ones are counted in
    ``df.attrs["n_closed_skipped"]``). An invalid output (``valid_key`` false, or a
    ``None`` prediction) scores 0 on both metrics and is counted in ``n_invalid``.

    Returns:
        DataFrame with ``*by, n, exact_match, em_lo, em_hi, token_recall, recall_lo,
        recall_hi, n_invalid``.
    Raises:
        KeyError: a record lacks ``pred_key``, ``gold_key`` or ``valid_key``.
        ValueError: a gold answer that is empty after normalisation (names the record).
    """
    by = list(by)
    rows: list[dict[str, Any]] = []
    n_closed = 0
    for r, rec in enumerate(records):
        where = f"record {r} (id {rec.get('id', '?')!r})"
        if rec.get("answer_type") != "open":
            n_closed += 1
            continue
        valid = bool(get_path(rec, valid_key, where))
        pred = get_path(rec, pred_key, where) if valid else None
        gold = get_path(rec, gold_key, where)
        try:
            em, rc = exact_match(pred, gold), token_recall(pred, gold)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from e
        rows.append({**{k: rec.get(k) for k in by}, "em": float(em), "recall": rc, "invalid": pred is None})
    frame = pd.DataFrame(rows, columns=[*by, "em", "recall", "invalid"])
    groups = [((), frame)] if not by else frame.groupby(by, dropna=False, sort=True)
    out_rows = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        em = bootstrap_mean_ci(g["em"].to_numpy(), n_boot, confidence, seed)
        rc = bootstrap_mean_ci(g["recall"].to_numpy(), n_boot, confidence, seed)
        out_rows.append(
            {
                **{k: (None if pd.isna(v) else v) for k, v in zip(by, key)},
                "n": em["n"],
                "exact_match": em["mean"],
                "em_lo": em["lo"],
                "em_hi": em["hi"],
                "token_recall": rc["mean"],
                "recall_lo": rc["lo"],
                "recall_hi": rc["hi"],
                "n_invalid": int(g["invalid"].sum()),
            }
        )
    cols = [*by, "n", "exact_match", "em_lo", "em_hi", "token_recall", "recall_lo", "recall_hi", "n_invalid"]
    out = _object_keys(pd.DataFrame(out_rows, columns=cols), by)
    out.attrs["n_closed_skipped"] = n_closed
    return out


def answer_table(distributions: Mapping[str, Mapping[str, Any] | None]) -> pd.DataFrame:
    """Answer distributions side by side, one row per evaluation (for notebooks).

    Args:
        distributions: ``{name: answer_distribution(...)}``; a None value (not recorded,
            e.g. an older run's cached report) gives a row of NaN with ``n`` None.
    Returns:
        DataFrame with columns ``name, n, n_invalid, top_answer, top_answer_share,
        gold_top_answer, gold_top_share, n_distinct_completions, counts`` (``counts`` as
        ``"A:140"`` text, most frequent first, ``invalid:<k>`` last when any).
    """
    cols = ["name", "n", "n_invalid", "top_answer", "top_answer_share", "gold_top_answer", "gold_top_share",
            "n_distinct_completions", "counts"]
    rows = []
    for name, d in distributions.items():
        if d is None:
            rows.append({"name": name})
            continue
        counts = " ".join(f"{k}:{v}" for k, v in d["counts"].items()) + (f" invalid:{d['n_invalid']}" if d["n_invalid"] else "")
        rows.append({"name": name, **{k: d.get(k) for k in cols[1:-1]}, "counts": counts.strip()})
    return pd.DataFrame(rows, columns=cols)
