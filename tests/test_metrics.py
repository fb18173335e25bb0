"""Evaluation tables per dataset/stratum/domain and open-question scores (the intervals they
carry: tests/test_scoring.py)."""

from __future__ import annotations

import math

import pytest

from mmed.data.answers import normalize_answer
from mmed.eval.metrics import (
    accuracy_table,
    domain_of,
    domain_table,
    exact_match,
    json_records,
    open_table,
    token_recall,
)


# ---------------------------------------------------------------------------- tables
def rec(i, dataset, stratum, correct, valid=True, answer_type="closed"):
    return {"id": f"{dataset}-{i}", "dataset": dataset, "stratum": stratum, "answer_type": answer_type,
            "correct": correct, "attending": {"raw": "", "parsed": 0 if valid else None, "valid": valid}}


RECORDS = [
    rec(0, "vqa_rad", "easy", True), rec(1, "vqa_rad", "easy", True), rec(2, "vqa_rad", "easy", False),
    rec(3, "vqa_rad", "hard", False, valid=False), rec(4, "vqa_rad", "medium", True),
    rec(5, "slake", "easy", True), rec(6, "slake", "hard", False), rec(7, "slake", "hard", False), rec(8, "slake", None, True),
    rec(9, "synthetic", "easy", True), rec(10, "synthetic", "hard", False, valid=False),
    rec(11, "triage", "easy", True),
    {"id": "open-0", "dataset": "vqa_rad", "answer_type": "open", "answer": "left lung", "stratum": None,
     "correct": None, "attending": {"raw": "", "parsed": "the left lung", "valid": True}},
]


def test_accuracy_table_per_dataset_and_stratum():
    t = accuracy_table(RECORDS, n_boot=200)
    assert t.attrs["n_open_skipped"] == 1
    rows = {(r.dataset, r.stratum): r for r in t.itertuples()}
    assert len(t) == 9  # every (dataset, stratum) group, the None stratum included
    vr_easy = rows[("vqa_rad", "easy")]
    assert (vr_easy.n, vr_easy.n_correct, vr_easy.n_invalid) == (3, 2, 0) and vr_easy.acc == pytest.approx(2 / 3)
    vr_hard = rows[("vqa_rad", "hard")]
    assert (vr_hard.n, vr_hard.acc, vr_hard.n_invalid) == (1, 0.0, 1)
    assert rows[("slake", None)].n == 1
    assert list(t[t.dataset == "vqa_rad"].stratum) == ["easy", "medium", "hard"]
    assert (t.lo <= t.acc).all() and (t.acc <= t.hi).all()
    overall = accuracy_table(RECORDS, by=[], n_boot=200)
    assert overall.loc[0, "n"] == 12 and overall.loc[0, "acc"] == pytest.approx(7 / 12)
    assert overall.loc[0, "n_invalid"] == 2


def test_accuracy_table_names_bad_records():
    with pytest.raises(ValueError, match=r"'x-0'.*'correct' is true but 'attending.valid' is false"):
        accuracy_table([rec(0, "x", "easy", True, valid=False)])
    with pytest.raises(KeyError, match=r"'x-1'.*'attending.valid'"):
        accuracy_table([{"id": "x-1", "dataset": "x", "correct": True}])
    with pytest.raises(ValueError, match="must be true/false"):
        accuracy_table([rec(2, "x", "easy", 1)])


def test_domain_table_macro_and_micro():
    t = domain_table(RECORDS, n_boot=300).set_index("domain")
    ind = t.loc["in_domain"]
    # vqa_rad 3/5, slake 2/4 → macro 0.55; pooled 5/9
    assert ind.datasets == "slake,vqa_rad" and ind.n == 9 and ind.n_invalid == 1
    assert ind.acc == pytest.approx((3 / 5 + 2 / 4) / 2) and ind.micro_acc == pytest.approx(5 / 9)
    assert ind.lo <= ind.acc <= ind.hi
    assert t.loc["out_of_domain"].n == 0 and math.isnan(t.loc["out_of_domain"].acc)
    assert t.loc["synthetic"].acc == 0.5 and t.loc["other"].datasets == "triage"
    assert [domain_of(d) for d in ("pathvqa", "mmmu_med", "synthetic", "triage")] == [
        "in_domain", "out_of_domain", "synthetic", "other"]


def test_json_records_are_strict_json():
    import json

    t = domain_table(RECORDS, n_boot=50)
    recs = json_records(t)
    ood = next(r for r in recs if r["domain"] == "out_of_domain")
    assert ood["acc"] is None and ood["n"] == 0 and type(ood["n"]) is int
    ind = next(r for r in recs if r["domain"] == "in_domain")
    assert ind["acc"] == pytest.approx(0.55) and type(ind["acc"]) is float
    json.dumps(recs, allow_nan=False)  # NaN would raise


# ---------------------------------------------------------------------------- open questions
def test_open_question_scores():
    # the scoring key of open questions (SQuAD normalisation; mmed/data/answers.py)
    assert normalize_answer("The  Left-Lung.", squad=True) == "left lung"
    assert exact_match("Left-Lung.", "the left lung")
    assert exact_match("the left lung", "Left lung") and not exact_match("left", "left lung")
    assert not exact_match(None, "yes")
    assert token_recall("left lung", "right lung base") == pytest.approx(1 / 3)
    assert token_recall("lung lung", "lung lung lung") == pytest.approx(2 / 3)
    assert token_recall(None, "x ray") == 0.0
    with pytest.raises(ValueError, match="empty after normalisation"):
        token_recall("a", "the")


def test_open_table_is_apart_from_closed():
    recs = [
        RECORDS[-1],
        {"id": "open-1", "dataset": "vqa_rad", "answer_type": "open", "answer": "right kidney",
         "attending": {"parsed": "kidney", "valid": True}},
        {"id": "open-2", "dataset": "vqa_rad", "answer_type": "open", "answer": "CT",
         "attending": {"parsed": None, "valid": False}},
        RECORDS[0],
    ]
    t = open_table(recs, n_boot=200)
    assert t.attrs["n_closed_skipped"] == 1 and len(t) == 1
    row = t.iloc[0]
    assert row.n == 3 and row.n_invalid == 1
    assert row.exact_match == pytest.approx(1 / 3) and row.token_recall == pytest.approx((1 + 0.5 + 0) / 3)
    assert row.em_lo <= row.exact_match <= row.em_hi
