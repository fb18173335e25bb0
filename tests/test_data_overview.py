"""Notebook 01's step (:func:`mmed.data.overview.data_step`): the counts it records are the
data's (the shared data's README gives VQA-RAD's), and the notebook's checker accepts them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmed.checks import CHECKERS
from mmed.config import load_profile
from mmed.data.overview import data_step, synthetic_summary

SMOKE = load_profile("smoke")


def test_data_step_counts_vqa_rad_and_the_triage_images(shared_data: Path):
    step = data_step(SMOKE, shared_data, 0, 28)
    m = step.metrics
    assert m["real_data"] is True and m["synthetic"]["n_items"] == 28 == len(step.synthetic_rows)
    # ../shared/data/README.md: MEVF 3,064 train / 451 test, 272 closed test questions of which 251 yes/no;
    # the official release 2,248 QA pairs, 1,299 closed; MEVF train and test share all 203 test images
    assert m["vqa_rad"]["mevf_test"] == {"n_items": 451, "n_closed": 272, "n_yes_no": 251}
    assert m["vqa_rad"]["mevf_train"] == {"n_items": 3064}
    assert m["vqa_rad"]["official"] == {"n_items": 2248, "n_closed": 1299}
    assert m["vqa_rad"]["leakage"]["shared_images"] == 203 and m["vqa_rad"]["disjoint_leakage"]["shared_images"] == 0
    v = step.vqa_rad
    assert v.counts_table()["questions"].tolist() == [3064, 451, 2248]
    ex = v.not_yes_no_examples(6)
    assert len(ex) == 6 and not ex["options"].str.fullmatch("A. yes | B. no").any()
    # triage images: 200 dermoscopy + 40 + 4 (2 fundus) fundus + 9 + 2 histology (README table)
    t = m["triage_images"]
    assert t["per_specialty"] == {"Dermatologist": 200, "Ophthalmologist": 42, "Pathologist": 11}
    assert t["train"] + t["heldout"] == 253 and t["heldout"] > 0
    assert step.triage.split_table().to_numpy().sum() == 253
    assert CHECKERS["01_data"](m) == []


def test_data_step_without_real_data_and_its_errors():
    step = data_step(SMOKE, None, 0, 14)
    assert step.vqa_rad is None and step.triage is None and step.metrics["real_data"] is False
    assert set(step.metrics) == {"real_data", "synthetic"}
    s = synthetic_summary(step.synthetic_rows)
    assert sum(s["per_specialty"].values()) == sum(s["question_types"].values()) == 14
    top = max(sum(r["answer_idx"] == k for r in step.synthetic_rows) for k in range(4))
    assert s["majority_answer_rate"] == top / 14
    with pytest.raises(ValueError, match="n_synthetic must be >= 1, got 0"):
        data_step(SMOKE, None, 0, 0)
    with pytest.raises(ValueError, match="no rows"):
        synthetic_summary([])
