"""Stratification of cases by the specialist panel's correctness (C-MARL; docs/architecture.md#stratification).

MMedAgent-RL (arXiv 2506.00555, §4) stratifies every training case by
``s = (panel answers that are correct) / K``, K the panel size:

- **easy**: ``s == 1`` (every specialist right),
- **medium**: ``0 < s < 1``,
- **hard**: ``s == 0`` (every specialist wrong).

An abstention or invalid answer counts as not correct and is recorded apart
(``n_abstained``, ``n_invalid``); a panel with no valid answer at all (a total outage)
is left unstratified (``s`` and ``stratum`` None), not Hard. Agreement — do the panel's valid answers coincide? — is
recorded apart from ``s`` (:func:`agreement`): a unanimous wrong panel is Hard *and*
unanimous, the case C-MARL's large entropy coefficient targets.

A panel member is an :class:`mmed.agents.specialists.Opinion` or its ``panel`` record
(a mapping with at least ``parsed``, ``valid`` and optionally ``abstained``). Everything
here is a pure function; :func:`majority_vote` is shared by the static MDAgents-style
baseline and test-time scaling.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..config import STRATA  # ("easy", "medium", "hard"), curriculum order (arXiv 2506.00555 §4)

#: Values of :func:`agreement`.
AGREEMENT_LEVELS: tuple[str, ...] = ("unanimous", "majority", "split", "none")
#: Accepted ``tie_rule`` values of :func:`majority_vote`.
TIE_RULES: tuple[str, ...] = ("first", "lowest", "abstain")


def _member(op: Any, where: str) -> tuple[int | None, bool, bool]:
    """``(parsed, valid, abstained)`` of one panel member (Opinion or record mapping)."""
    if isinstance(op, Mapping):
        if "parsed" not in op or "valid" not in op:
            raise ValueError(f"{where}: panel entry needs 'parsed' and 'valid', has {sorted(op)}")
        parsed, valid, abstained = op["parsed"], op["valid"], op.get("abstained", False)
    else:
        try:
            parsed, valid, abstained = op.parsed, op.valid, op.abstained
        except AttributeError as e:
            raise ValueError(f"{where}: not an opinion or panel record: {op!r}") from e
    valid, abstained = bool(valid), bool(abstained)
    if valid and (parsed is None or isinstance(parsed, bool) or not isinstance(parsed, int) or parsed < 0):
        raise ValueError(f"{where}: valid entry with parsed={parsed!r} (expected an option index >= 0)")
    if valid and abstained:
        raise ValueError(f"{where}: entry is both valid and abstained")
    return (parsed if valid else None), valid, abstained


def panel_answers(panel: Sequence[Any], where: str = "panel") -> list[int | None]:
    """The panel's answers in member order: the option index, or ``None`` when the member
    abstained or was invalid. Raises ``ValueError`` naming ``where`` on a malformed entry."""
    return [_member(op, f"{where}[{j}]")[0] for j, op in enumerate(panel)]


def agreement_score(panel: Sequence[Any], answer_idx: int) -> float:
    """``s`` = (members whose valid answer equals ``answer_idx``) / K, in [0, 1].

    Args:
        panel: the K opinions (``Opinion`` or panel records), K >= 1.
        answer_idx: the gold option index (closed questions only).
    Raises:
        ValueError: empty panel, ``answer_idx < 0`` (open question), malformed entry.
    """
    if len(panel) == 0:
        raise ValueError("agreement_score: empty panel (s is undefined without specialists)")
    if isinstance(answer_idx, bool) or int(answer_idx) < 0:
        raise ValueError(f"agreement_score: answer_idx must be a gold option index >= 0, got {answer_idx!r}")
    answers = panel_answers(panel)
    return sum(a == answer_idx for a in answers) / len(answers)


def stratum(s: float) -> str:
    """``"easy"`` for ``s == 1``, ``"hard"`` for ``s == 0``, ``"medium"`` in between.

    Raises ``ValueError`` when ``s`` is not in [0, 1] (or NaN).
    """
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"stratum: s must be in [0, 1], got {s!r}")
    return "easy" if s == 1.0 else "hard" if s == 0.0 else "medium"


def agreement(panel: Sequence[Any]) -> str:
    """Do the panel's valid answers coincide? One of :data:`AGREEMENT_LEVELS`:

    - ``"unanimous"``: all K members gave a valid answer and it is the same one;
    - ``"majority"``: otherwise, one answer is held by more than K/2 members;
    - ``"split"``: at least one valid answer, but no strict majority of K;
    - ``"none"``: no valid answer (all abstained or invalid), or an empty panel.

    The denominator is K, not the number of valid answers, so abstentions weaken
    agreement. Independent of the gold answer (available at inference).
    """
    answers = [a for a in panel_answers(panel) if a is not None]
    if not answers:
        return "none"
    top = Counter(answers).most_common(1)[0][1]
    if top == len(panel):
        return "unanimous"
    return "majority" if top > len(panel) / 2 else "split"


def majority_vote(answers: Iterable[int | None], tie_rule: str = "first") -> int | None:
    """The most frequent valid answer (plurality vote), as in MDAgents-style static panels
    and self-consistency test-time scaling.

    Args:
        answers: option indices; ``None`` and negative values (invalid/abstained) are
            ignored.
        tie_rule: how to break a tie between the most frequent answers —
            ``"first"``: the tied answer that occurs first in ``answers`` (for a panel,
            the lowest-indexed member; for samples, the earliest sample);
            ``"lowest"``: the lowest option index;
            ``"abstain"``: return ``None``.
    Returns:
        an option index, or ``None`` when no answer is valid (or on a tie with
        ``tie_rule="abstain"``).
    Raises:
        ValueError: unknown ``tie_rule``.
    """
    if tie_rule not in TIE_RULES:
        raise ValueError(f"majority_vote: tie_rule {tie_rule!r} not in {TIE_RULES}")
    valid = [int(a) for a in answers if a is not None and not isinstance(a, bool) and int(a) >= 0]
    if not valid:
        return None
    counts = Counter(valid)  # insertion order = order of first occurrence
    top = max(counts.values())
    tied = [a for a, c in counts.items() if c == top]
    if len(tied) == 1:
        return tied[0]
    if tie_rule == "first":
        return tied[0]
    if tie_rule == "lowest":
        return min(tied)
    return None


def stratify(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Add ``s``, ``stratum``, ``agreement``, ``n_abstained``, ``n_invalid`` to prediction
    records (the ``predictions.jsonl`` shape of docs/architecture.md#predictions).

    Each record needs ``id``, ``answer_idx`` and ``panel`` (a list of panel entries). A
    record is returned as a new dict (input untouched) with:

    - ``s``: :func:`agreement_score`; ``None`` for an open question (``answer_idx < 0`` or
      ``answer_type == "open"``) or an empty panel (the "without specialists" ablation),
      or a panel with no valid opinion at all (every member abstained, errored or was
      invalid: a specialist outage says nothing about difficulty, so it is not Hard), and
      then ``stratum`` is ``None`` too — such records are kept, never dropped, and
      :func:`stratum_counts` reports them as ``"unstratified"``. A panel with at least one
      valid opinion is stratified, its abstentions counting as not correct;
    - ``stratum``: :func:`stratum` of ``s``;
    - ``agreement``: :func:`agreement` (also for open questions);
    - ``n_abstained``: members that abstained; ``n_invalid``: members with no valid answer
      that did not abstain.

    Raises:
        ValueError: a record without ``panel``/``answer_idx``, a malformed panel entry, or a
            valid answer outside the record's ``options`` (names the record index and id).
    """
    out: list[dict[str, Any]] = []
    for r, rec in enumerate(records):
        where = f"record {r} (id {rec.get('id', '?')!r})"
        for key in ("panel", "answer_idx"):
            if key not in rec:
                raise ValueError(f"{where}: missing field {key!r}")
        panel = rec["panel"]
        members = [_member(op, f"{where} panel[{j}]") for j, op in enumerate(panel)]
        n_opts = len(rec.get("options") or [])
        for j, (parsed, _, _) in enumerate(members):
            if parsed is not None and n_opts and parsed >= n_opts:
                raise ValueError(f"{where} panel[{j}]: parsed={parsed} but the item has {n_opts} options")
        gold = rec["answer_idx"]
        is_open = rec.get("answer_type") == "open" or gold is None or int(gold) < 0
        new = dict(rec)
        no_opinion = bool(panel) and not any(v for _, v, _ in members)  # a total outage: every call failed
        new["s"] = None if (is_open or not panel or no_opinion) else agreement_score(panel, int(gold))
        new["stratum"] = None if new["s"] is None else stratum(new["s"])
        new["agreement"] = agreement(panel)
        new["n_abstained"] = sum(ab for _, _, ab in members)
        new["n_invalid"] = sum((not v) and (not ab) for _, v, ab in members)
        out.append(new)
    return out


def stratum_counts(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``{"easy", "medium", "hard", "unstratified"}`` counts of stratified records
    (``stratum`` missing or ``None`` → ``"unstratified"``). Raises ``ValueError`` on an
    unknown stratum value."""
    counts = {k: 0 for k in (*STRATA, "unstratified")}
    for r, rec in enumerate(records):
        st = rec.get("stratum")
        key = "unstratified" if st is None else st
        if key not in counts:
            raise ValueError(f"record {r} (id {rec.get('id', '?')!r}): unknown stratum {st!r}")
        counts[key] += 1
    return counts
