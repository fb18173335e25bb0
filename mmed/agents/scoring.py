"""Scoring an agent's answers: accuracy with a bootstrap interval, the paired difference of
two systems on the same items, and the distribution of the answers (the degenerate-agent
guard, docs/architecture.md#degenerate-agent-guard).

The primitives every layer that answers items reports with: the consultation's summary
(:func:`mmed.agents.pipeline.summarize`), the trainings' held-out checks (cold start,
pre-training, triage GRPO, curriculum stages) and the evaluation tables of
:mod:`mmed.eval.metrics`.

- Intervals are percentile bootstrap intervals (Efron & Tibshirani 1993, ch. 13): resample
  the items with replacement ``n_boot`` times (numpy, vectorised, seeded), take the
  ``(1 - confidence)/2`` and ``(1 + confidence)/2`` quantiles of the resampled statistic.
  At an accuracy of exactly 0 or 1 the interval collapses to that point (a known property
  of the percentile bootstrap).
- An invalid final output counts as wrong; an answer distribution counts it apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..data.schema import option_letter


# ----------------------------------------------------------------------------------------
# bootstrap
# ----------------------------------------------------------------------------------------
def check_bootstrap(n_boot: int, confidence: float) -> None:
    """Raise ``ValueError`` unless ``n_boot`` is a positive integer and ``confidence`` is in (0, 1)."""
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


def percentile_interval(reps: np.ndarray, confidence: float) -> tuple[float, float]:
    """``(lo, hi)``: the ``(1 - confidence)/2`` and ``(1 + confidence)/2`` quantiles of the
    bootstrap replicates ``reps`` (Efron & Tibshirani 1993, ch. 13)."""
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
    check_bootstrap(n_boot, confidence)
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {v.shape}")
    if np.isnan(v).any():
        raise ValueError("values contain NaN")
    if len(v) == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    lo, hi = percentile_interval(bootstrap_means(v, n_boot, np.random.default_rng(seed)), confidence)
    return {"mean": float(v.mean()), "lo": lo, "hi": hi, "n": int(len(v))}


def as_bool_array(correct: Iterable[Any] | np.ndarray, name: str = "correct") -> np.ndarray:
    """``correct`` (booleans or 0/1, any iterable) as a 1-D boolean array. Raises
    ``ValueError`` naming ``name`` for another shape or other values."""
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
    (:func:`mmed.eval.triage.triage_summary`) and the curriculum reports
    (:mod:`mmed.rl.curriculum`) all call it.

    Returns ``{"acc", "lo", "hi", "n"}`` (fractions in [0, 1]); for an empty sequence NaN
    with ``n = 0``, or ``None`` when ``none_if_empty`` (a group reported as "no items").
    Same seed → same interval. ``correct`` may be any iterable (a generator is read once).
    Raises ``ValueError`` for values other than booleans/0/1, ``n_boot < 1`` or a
    confidence outside (0, 1).
    """
    a = as_bool_array(correct)
    if none_if_empty and a.size == 0:
        check_bootstrap(n_boot, confidence)
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
    a = as_bool_array(correct_a, "correct_a")
    b = as_bool_array(correct_b, "correct_b")
    if len(a) != len(b):
        raise ValueError(f"paired_bootstrap_diff: {len(a)} vs {len(b)} items (must be the same items)")
    if len(a) == 0:
        raise ValueError("paired_bootstrap_diff: no items")
    check_bootstrap(n_boot, confidence)
    d = a.astype(float) - b.astype(float)
    reps = bootstrap_means(d, n_boot, np.random.default_rng(seed))
    lo, hi = percentile_interval(reps, confidence)
    return {
        "diff": float(d.mean()),
        "lo": lo,
        "hi": hi,
        "n": int(len(d)),
        "acc_a": float(a.mean()),
        "acc_b": float(b.mean()),
        "p_le_0": float((reps <= 0).mean()),
    }


def format_diff(d: dict[str, Any] | None, interval_digits: int = 2, with_n: bool = False) -> str:
    """A :func:`paired_bootstrap_diff` result as text: ``"+0.071 [+0.02, +0.12]"`` (the
    difference to 3 decimals, the interval to ``interval_digits``; ``with_n`` appends
    ``" (n=140)"``); ``"n/a"`` for None (no items to compare)."""
    if d is None:
        return "n/a"
    text = f"{d['diff']:+.3f} [{d['lo']:+.{interval_digits}f}, {d['hi']:+.{interval_digits}f}]"
    return f"{text} (n={d['n']})" if with_n else text


# ----------------------------------------------------------------------------------------
# answer distributions: guards against a degenerate (input-independent) agent (docs/architecture.md#degenerate-agent-guard)
# ----------------------------------------------------------------------------------------
#: share above which one answer on (nearly) every item marks a degenerate agent, unless
#: the gold answers on the same items are at least as skewed (profile ``eval.degenerate_share``)
DEGENERATE_SHARE = 0.9


def _answer_key(a: Any, i: int, field: str, n_options: int | None = None) -> str:
    """The counted key of one answer: an option index → its letter (``0`` → ``"A"``), a
    string (a specialty, free text) → itself. Raises ``ValueError`` naming item ``i``."""
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
