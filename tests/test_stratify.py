"""Stratification (s, strata, agreement) and majority vote (docs/architecture.md#stratification)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmed.agents.specialists import Opinion
from mmed.agents.stratify import (
    agreement,
    agreement_score,
    majority_vote,
    panel_answers,
    stratify,
    stratum,
    stratum_counts,
)


def member(parsed, abstained=False):
    """A panel record: ``parsed`` an index, ``None`` (invalid) or with abstained=True."""
    return {"specialist_id": "Radiologist#1", "parsed": parsed, "valid": parsed is not None, "abstained": abstained}


ABST = member(None, abstained=True)
INVALID = member(None)


def test_agreement_score_hand_cases():
    assert agreement_score([member(0), member(0), member(1)], 0) == pytest.approx(2 / 3)
    assert agreement_score([member(1), member(1), member(1)], 1) == 1.0
    assert agreement_score([member(1), ABST, INVALID], 1) == pytest.approx(1 / 3)
    assert agreement_score([ABST, ABST], 0) == 0.0
    with pytest.raises(ValueError, match="empty panel"):
        agreement_score([], 0)
    with pytest.raises(ValueError, match="answer_idx"):
        agreement_score([member(0)], -1)
    with pytest.raises(ValueError, match=r"panel\[0\].*'parsed' and 'valid'"):
        agreement_score([{"valid": True}], 0)


def test_agreement_score_accepts_opinions():
    ops = [
        Opinion("i", f"Surgeon#{j + 1}", "Surgeon", "simulated", "simulated", "", p, p is not None, abstained=p is None)
        for j, p in enumerate([2, 2, None, 0])
    ]
    assert agreement_score(ops, 2) == 0.5
    assert panel_answers(ops) == [2, 2, None, 0]


def test_stratum_boundaries():
    assert stratum(1.0) == "easy" and stratum(0.0) == "hard"
    assert stratum(1 / 3) == "medium" and stratum(0.999) == "medium" and stratum(1e-9) == "medium"
    for bad in (-0.1, 1.01, float("nan")):
        with pytest.raises(ValueError, match="s must be in"):
            stratum(bad)


def test_agreement_levels():
    assert agreement([member(1)] * 3) == "unanimous"
    assert agreement([member(1), member(1), ABST]) == "majority"  # 2 > 3/2
    assert agreement([member(1), member(0), ABST]) == "split"
    assert agreement([member(1), member(1), member(0), member(0)]) == "split"  # 2 is not > 4/2
    assert agreement([member(1), ABST, INVALID]) == "split"
    assert agreement([ABST, INVALID]) == "none"
    assert agreement([]) == "none"


def test_majority_vote_and_tie_rules():
    assert majority_vote([2, None, 2, 1]) == 2
    assert majority_vote([1, 0, 0, 1], tie_rule="first") == 1
    assert majority_vote([1, 0, 0, 1], tie_rule="lowest") == 0
    assert majority_vote([1, 0, 0, 1], tie_rule="abstain") is None
    assert majority_vote([3, 3, 0, 0, 0, -1, -1, -1, -1]) == 0  # negatives are invalid, ignored
    assert majority_vote([None, None]) is None and majority_vote([]) is None
    with pytest.raises(ValueError, match="tie_rule"):
        majority_vote([1], tie_rule="random")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(0, 3)), max_size=12), st.sampled_from(["first", "lowest"]))
def test_majority_vote_returns_a_most_frequent_answer(answers, rule):
    got = majority_vote(answers, rule)
    valid = [a for a in answers if a is not None]
    if not valid:
        assert got is None
    else:
        counts = Counter(valid)
        assert counts[got] == max(counts.values())


def record(i, gold, panel, **kw):
    return {"id": f"r{i}", "dataset": "vqa_rad", "answer_idx": gold, "options": ["yes", "no", "maybe"],
            "answer_type": "closed", "panel": panel, **kw}


def test_stratify_adds_fields_and_keeps_every_record():
    recs = [
        record(0, 0, [member(0)] * 3),
        record(1, 1, [member(1), member(0), ABST]),
        record(2, 2, [member(0), member(0), INVALID]),
        record(3, -1, [member(None, abstained=True)] * 3, answer_type="open", options=[]),
        record(4, 0, []),  # "without specialists" ablation
    ]
    before = [dict(r) for r in recs]
    out = stratify(recs)
    assert recs == before  # input untouched
    assert [r["s"] for r in out] == [1.0, pytest.approx(1 / 3), 0.0, None, None]
    assert [r["stratum"] for r in out] == ["easy", "medium", "hard", None, None]
    assert [r["agreement"] for r in out] == ["unanimous", "split", "majority", "none", "none"]
    assert [r["n_abstained"] for r in out] == [0, 1, 0, 3, 0]
    assert [r["n_invalid"] for r in out] == [0, 0, 1, 0, 0]
    assert stratum_counts(out) == {"easy": 1, "medium": 1, "hard": 1, "unstratified": 2}


def test_stratify_names_the_bad_record():
    with pytest.raises(ValueError, match=r"record 0 \(id 'r0'\): missing field 'panel'"):
        stratify([{"id": "r0", "answer_idx": 0}])
    with pytest.raises(ValueError, match=r"'r5'.*panel\[1\]: parsed=7 but the item has 3 options"):
        stratify([record(5, 0, [member(0), member(7)])])
    with pytest.raises(ValueError, match="unknown stratum"):
        stratum_counts([{"id": "x", "stratum": "trivial"}])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0, 1, 2, "abst", "inv"]), min_size=1, max_size=7), st.integers(0, 2))
def test_stratify_invariants(kinds, gold):
    panel = [ABST if k == "abst" else INVALID if k == "inv" else member(k) for k in kinds]
    r = stratify([record(0, gold, panel)])[0]
    n_correct = sum(k == gold for k in kinds)
    assert r["n_abstained"] == kinds.count("abst") and r["n_invalid"] == kinds.count("inv")
    if all(k in ("abst", "inv") for k in kinds):  # no valid opinion at all: unstratified, not Hard
        assert r["s"] is None and r["stratum"] is None
        return
    assert r["s"] * len(kinds) == pytest.approx(n_correct)
    assert r["stratum"] == ("easy" if n_correct == len(kinds) else "hard" if n_correct == 0 else "medium")
    if r["agreement"] == "unanimous":
        assert r["stratum"] in ("easy", "hard")


def test_a_total_specialist_outage_is_unstratified_not_hard():
    """Every opinion an error/abstention: no stratum (counted unstratified); one valid
    wrong opinion among failures keeps the item Hard (abstentions count as not correct)."""
    error = {"specialist_id": "Radiologist#1", "parsed": None, "valid": False, "abstained": True, "error": "RateLimitError"}
    out = stratify([
        record(0, 0, [error, error, error]),
        record(1, 0, [ABST, INVALID, INVALID]),
        record(2, 0, [error, error, member(1)]),
        record(3, 0, [error, member(0), ABST]),
    ])
    assert [r["s"] for r in out] == [None, None, 0.0, pytest.approx(1 / 3)]
    assert [r["stratum"] for r in out] == [None, None, "hard", "medium"]
    assert [r["n_abstained"] for r in out] == [3, 1, 2, 2]
    assert stratum_counts(out) == {"easy": 0, "medium": 1, "hard": 1, "unstratified": 2}


def test_consult_warns_when_most_specialist_calls_failed():
    from mmed.agents.pipeline import failed_calls_warning

    m = {"panel_opinions": 9, "abstentions": 5, "panel_invalid": 0, "panel_errors": {"APITimeoutError": 5},
         "strata": {"easy": 0, "medium": 1, "hard": 0, "unstratified": 2}}
    w = failed_calls_warning(m)
    assert w.startswith("warning: 5 of 9 specialist opinions failed") and "APITimeoutError: 5" in w
    assert "2 closed item(s) have no valid opinion" in w
    assert failed_calls_warning(dict(m, abstentions=4, panel_errors={"APITimeoutError": 4})) is None  # not more than half
    assert failed_calls_warning({"panel_opinions": 0}) is None
