"""Evaluation metrics: accuracy with bootstrap intervals, per dataset / stratum / domain,
paired differences, and open-question scores (docs/architecture.md#closed-first).

- Closed questions (multiple choice) are scored by accuracy, as in MMedAgent-RL
  (arXiv 2506.00555, Table 1). An invalid final output counts as wrong and is reported
  (``n_invalid``).
- Intervals are percentile bootstrap intervals (Efron & Tibshirani 1993, ch. 13): resample
  the items with replacement ``n_boot`` times (numpy, vectorised, seeded), take the
  ``(1 - confidence)/2`` and ``(1 + confidence)/2`` quantiles of the resampled statistic.
  At an accuracy of exactly 0 or 1 the interval collapses to that point (a known property
  of the percentile bootstrap).
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

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

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
# bootstrap
# ----------------------------------------------------------------------------------------
def _check_boot(n_boot: int, confidence: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` bootstrap replicates of ``values.mean()``: shape ``(n_boot,)``.

    Each replicate is the mean of ``len(values)`` draws with replacement; computed in
    chunks of at most ~2M drawn indices so memory stays bounded. ``values`` must be 1-D
    and non-empty (raises ``ValueError`` otherwise).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"bootstrap_means needs a non-empty 1-D array, got shape {values.shape}")
    n = len(values)
    out = np.empty(n_boot)
    step = max(1, 2_000_000 // n)
    for start in range(0, n_boot, step):
        m = min(step, n_boot - start)
        out[start : start + m] = values[rng.integers(0, n, size=(m, n))].mean(axis=1)
    return out


def _interval(reps: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_mean_ci(values: Sequence[float] | np.ndarray, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Mean of ``values`` with a percentile-bootstrap interval.

    Returns ``{"mean", "lo", "hi", "n"}``; for empty ``values`` the mean and bounds are
    NaN and ``n`` is 0 (an empty group is reported, not dropped).
    Raises ``ValueError`` for NaN values, a non-1-D input, ``n_boot < 1`` or a
    confidence outside (0, 1).
    """
    _check_boot(n_boot, confidence)
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {v.shape}")
    if np.isnan(v).any():
        raise ValueError("values contain NaN")
    if len(v) == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    lo, hi = _interval(bootstrap_means(v, n_boot, np.random.default_rng(seed)), confidence)
    return {"mean": float(v.mean()), "lo": lo, "hi": hi, "n": int(len(v))}


def _as_bool_array(correct: Iterable[Any] | np.ndarray, name: str = "correct") -> np.ndarray:
    a = np.asarray(correct if isinstance(correct, np.ndarray) else list(correct))
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype == bool:
        return a
    if a.size and not np.isin(a, (0, 1)).all():
        bad = a[~np.isin(a, (0, 1))][:3]
        raise ValueError(f"{name} must hold booleans or 0/1, got e.g. {bad.tolist()}")
    return a.astype(bool)


def accuracy_ci(correct: Iterable[Any] | np.ndarray, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
                *, none_if_empty: bool = False) -> dict[str, float] | None:
    """Accuracy of a 1-D boolean (or 0/1) sequence with a percentile-bootstrap interval.

    The one accuracy-with-interval helper: the tables here, the triage summaries
    (:func:`mmed.rl.triage.triage_summary`) and the curriculum reports
    (:mod:`mmed.rl.curriculum`) all call it.

    Returns ``{"acc", "lo", "hi", "n"}`` (fractions in [0, 1]); for an empty sequence NaN
    with ``n = 0``, or ``None`` when ``none_if_empty`` (a group reported as "no items").
    Same seed → same interval. ``correct`` may be any iterable (a generator is read once).
    Raises ``ValueError`` for values other than booleans/0/1, ``n_boot < 1`` or a
    confidence outside (0, 1).
    """
    a = _as_bool_array(correct)
    if none_if_empty and a.size == 0:
        _check_boot(n_boot, confidence)
        return None
    r = bootstrap_mean_ci(a.astype(float), n_boot, confidence, seed)
    return {"acc": r["mean"], "lo": r["lo"], "hi": r["hi"], "n": r["n"]}


def paired_bootstrap_diff(
    correct_a: Sequence[Any] | np.ndarray,
    correct_b: Sequence[Any] | np.ndarray,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Accuracy difference ``acc(a) - acc(b)`` of two systems scored on the same items,
    with a paired percentile-bootstrap interval (the items are resampled jointly, so the
    interval reflects per-item correlation between the systems).

    Args:
        correct_a, correct_b: boolean arrays aligned by item (same length, same order).
    Returns:
        ``{"diff", "lo", "hi", "n", "acc_a", "acc_b"}``; ``p_le_0`` is the bootstrap
        fraction of replicates with difference ``<= 0`` (a one-sided bootstrap p-value for
        "a is better than b").
    Raises:
        ValueError: arrays of different lengths, empty arrays, or non-boolean values.
    """
    a = _as_bool_array(correct_a, "correct_a")
    b = _as_bool_array(correct_b, "correct_b")
    if len(a) != len(b):
        raise ValueError(f"paired_bootstrap_diff: {len(a)} vs {len(b)} items (must be the same items)")
    if len(a) == 0:
        raise ValueError("paired_bootstrap_diff: no items")
    _check_boot(n_boot, confidence)
    d = a.astype(float) - b.astype(float)
    reps = bootstrap_means(d, n_boot, np.random.default_rng(seed))
    lo, hi = _interval(reps, confidence)
    return {
        "diff": float(d.mean()),
        "lo": lo,
        "hi": hi,
        "n": int(len(d)),
        "acc_a": float(a.mean()),
        "acc_b": float(b.mean()),
        "p_le_0": float((reps <= 0).mean()),
    }


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
    _check_boot(n_boot, confidence)
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
            lo, hi = _interval(reps, confidence)
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


# ----------------------------------------------------------------------------------------
# answer distributions: guards against a degenerate (input-independent) agent (docs/architecture.md#degenerate-agent-guard)
# ----------------------------------------------------------------------------------------
#: share above which one answer on (nearly) every item marks a degenerate agent, unless
#: the gold answers on the same items are at least as skewed (profile ``eval.degenerate_share``)
DEGENERATE_SHARE = 0.9


def _answer_key(a: Any, i: int, field: str, n_options: int | None = None) -> str:
    """The counted key of one answer: an option index → its letter (``0`` → ``"A"``), a
    string (a specialty, free text) → itself. Raises ``ValueError`` naming item ``i``."""
    from ..data.schema import option_letter

    if isinstance(a, (bool, np.bool_)):
        raise ValueError(f"{field}[{i}]: {a!r} is a boolean, expected an option index or an answer string")
    if isinstance(a, (int, np.integer)):
        if a < 0 or (n_options is not None and a >= n_options):
            raise ValueError(f"{field}[{i}]: option index {int(a)} outside 0..{(n_options or 26) - 1}")
        return option_letter(int(a))
    if isinstance(a, str):
        return a
    raise ValueError(f"{field}[{i}]: {a!r} ({type(a).__name__}) is not an option index or an answer string")


def _ranked(c: Counter) -> dict[str, int]:
    """Counts as a dict, most frequent first, ties by key (stable JSON)."""
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def answer_distribution(
    parsed_answers: Sequence[Any],
    raw_completions: Sequence[str | None] | None,
    gold_answers: Sequence[Any],
    options: Sequence[Sequence[str]] | None = None,
) -> dict[str, Any]:
    """What an agent answered over a set of items, next to what the gold answers are.

    An agent whose answer does not depend on its input (the same letter on every item) can
    score near the share of the most frequent gold answer; accuracy alone hides that. This
    records the distribution of the parsed answers so every evaluation shows it.

    Args:
        parsed_answers: one per item: the parsed answer — an option index (multiple choice;
            counted as its letter, ``0`` → ``"A"``) or a string (e.g. a specialty) — or
            ``None`` for an invalid (unparsed) output, counted apart in ``n_invalid``.
        raw_completions: one per item: the raw completion text, or ``None`` where no text
            exists (e.g. a vote over opinions); ``None`` altogether when no raw text exists.
        gold_answers: one per item: the gold answer, of the same kind as the parsed ones
            (an option index or a string; never ``None``).
        options: one option list per item (multiple choice); when given, answers are also
            counted by option text (``counts_text``, ``gold_counts_text``) and an option
            index outside its item's options is an error.
    Returns:
        A JSON-safe dict: ``n`` (items), ``n_valid``, ``n_invalid``; ``counts`` (answer →
        count over valid answers, most frequent first); ``top_answer`` (None when no answer
        is valid) and ``top_answer_share`` = its count / ``n`` (invalid items stay in the
        denominator, so an agent with no valid answer has share 0 — its ``valid_rate`` shows
        that); ``gold_counts``, ``gold_top_answer`` and ``gold_top_share`` (the share of the
        most frequent gold answer on the same items: what always giving that answer
        scores); ``n_distinct_completions`` (distinct raw strings; None without raw text)
        and ``top_completion_share``; with ``options`` also ``counts_text`` and
        ``gold_counts_text``. For ``n = 0`` the shares are None and the counts empty.
        Ties for the top answer go to the first key in (count descending, key) order.
    Raises:
        ValueError: sequences of different lengths; a gold answer that is ``None``; an
            answer that is neither an option index nor a string, a negative index, or an
            index outside its item's options (each names the item and the field).

    Example: ``answer_distribution([0, 0, 1, None], raws, [0, 1, 1, 0])`` gives
    ``counts == {"A": 2, "B": 1}``, ``top_answer_share == 0.5``, ``gold_top_share == 0.5``.
    """
    n = len(parsed_answers)
    if len(gold_answers) != n:
        raise ValueError(f"answer_distribution: {n} parsed answers but {len(gold_answers)} gold answers")
    if raw_completions is not None and len(raw_completions) != n:
        raise ValueError(f"answer_distribution: {n} parsed answers but {len(raw_completions)} raw completions")
    if options is not None and len(options) != n:
        raise ValueError(f"answer_distribution: {n} parsed answers but {len(options)} option lists")
    counts: Counter = Counter()
    gold_counts: Counter = Counter()
    text_counts: Counter = Counter()
    gold_text_counts: Counter = Counter()
    n_invalid = 0
    for i, (a, g) in enumerate(zip(parsed_answers, gold_answers)):
        opts = list(options[i]) if options is not None else None
        k_opts = len(opts) if opts is not None else None
        if g is None:
            raise ValueError(f"gold_answers[{i}]: None (every item needs a gold answer)")
        gold_counts[_answer_key(g, i, "gold_answers", k_opts)] += 1
        if opts is not None and isinstance(g, (int, np.integer)):
            gold_text_counts[str(opts[int(g)])] += 1
        if a is None:
            n_invalid += 1
            continue
        counts[_answer_key(a, i, "parsed_answers", k_opts)] += 1
        if opts is not None and isinstance(a, (int, np.integer)):
            text_counts[str(opts[int(a)])] += 1
    ranked, gold_ranked = _ranked(counts), _ranked(gold_counts)
    top = next(iter(ranked), None)
    gold_top = next(iter(gold_ranked), None)
    out: dict[str, Any] = {
        "n": n, "n_valid": n - n_invalid, "n_invalid": n_invalid, "counts": ranked,
        "top_answer": top, "top_answer_share": (ranked[top] / n if top is not None else 0.0) if n else None,
        "gold_counts": gold_ranked, "gold_top_answer": gold_top,
        "gold_top_share": gold_ranked[gold_top] / n if n else None,
        "n_distinct_completions": None, "top_completion_share": None,
    }
    raws = [r for r in (raw_completions or []) if r is not None]
    if raws:
        rc = Counter(raws)
        out["n_distinct_completions"] = len(rc)
        out["top_completion_share"] = rc.most_common(1)[0][1] / n
    if options is not None:
        out["counts_text"] = _ranked(text_counts)
        out["gold_counts_text"] = _ranked(gold_text_counts)
    return out


def degenerate_answers(dist: Mapping[str, Any], share: float = DEGENERATE_SHARE) -> bool:
    """Whether an :func:`answer_distribution` (or any mapping with ``top_answer_share`` and
    ``gold_top_share``) shows a degenerate agent: one answer on more than ``share`` of the
    items while the gold answers on the same items are not that skewed
    (``gold_top_share <= share``). False when either share is missing (None/NaN).

    Raises:
        ValueError: ``share`` outside (0, 1).
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"degenerate share must be in (0, 1), got {share!r}")
    top, gold = dist.get("top_answer_share"), dist.get("gold_top_share")
    if top is None or gold is None or pd.isna(top) or pd.isna(gold):
        return False
    return float(top) > share and float(gold) <= share


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
