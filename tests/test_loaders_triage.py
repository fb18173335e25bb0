"""Real modality-labelled triage images: labels.jsonl folders -> train / held-out items."""

from __future__ import annotations

import collections
import shutil

import pytest
from fixtures_data import IMG_SIZE, write_triage

from mmed.data import FEATURES, SPECIALTIES, item_meta, load_triage_images
from mmed.data.loaders import DataError
from mmed.data.splits import leakage_report


def test_fixture_split_is_stratified_and_seeded(tmp_path):
    root = write_triage(tmp_path)
    dd, rep = load_triage_images(root, heldout_fraction=0.5, seed=0, return_report=True)
    assert set(dd) == {"train", "heldout"} and dd["train"].features == FEATURES
    count = {k: collections.Counter(dd[k]["specialty"]) for k in dd}
    # per specialty floor(0.5 * n + 0.5) held out: 6 -> 3, 4 -> 2, 3 -> 2
    assert count["heldout"] == {"Dermatologist": 3, "Ophthalmologist": 2, "Pathologist": 2}
    assert count["train"] == {"Dermatologist": 3, "Ophthalmologist": 2, "Pathologist": 1}
    assert set(dd["train"]["split"]) == {"train"} and set(dd["heldout"]["split"]) == {"heldout"}
    r = dd["train"][0]
    assert r["options"] == list(SPECIALTIES) and r["options"][r["answer_idx"]] == r["answer"] == r["specialty"]
    assert r["dataset"] == "triage" and r["answer_type"] == "closed" and r["images"][0].size == IMG_SIZE
    histo = [x for k in dd for x in dd[k] if x["modality"].startswith("histology")]
    assert {item_meta(x)["specialty_source"] for x in histo} == {"rule"}  # no specialty field: rules
    assert rep.specialty_sources == {"data": 10, "rule": 3} and rep.n_items == 13
    same = load_triage_images(root, 0.5, seed=0)
    assert list(same["heldout"]["id"]) == list(dd["heldout"]["id"])
    assert any(list(load_triage_images(root, 0.5, seed=s)["heldout"]["id"]) != list(dd["heldout"]["id"]) for s in range(1, 5))
    assert len(load_triage_images(root, 0.0)["heldout"]) == 0
    assert len(load_triage_images(root, 1.0)["train"]) == 0


def test_identical_images_never_straddle_the_split(tmp_path):
    root = write_triage(tmp_path)
    shutil.copy(root / "derm" / "images" / "d0.jpg", root / "derm" / "images" / "copy.jpg")
    with open(root / "derm" / "labels.jsonl", "a") as f:
        f.write('{"image": "images/copy.jpg", "modality": "dermoscopy", "specialty": "Dermatologist"}\n')
    for seed in range(8):
        dd, rep = load_triage_images(root, 0.5, seed, return_report=True)
        assert leakage_report(dd["train"], dd["heldout"]).shared_images == 0
    assert any("shared by several rows" in n for n in rep.notes)


def test_bad_rows_name_file_line_and_field(tmp_path):
    root = write_triage(tmp_path)
    labels = root / "fundus" / "labels.jsonl"
    lines = labels.read_text().splitlines()
    lines[1] = '{"image": "images/f1.jpg", "modality": '  # malformed
    lines[2] = '{"image": "images/missing.jpg", "modality": "fundus photography"}'
    lines[3] = '{"image": "images/f3.jpg", "modality": "ECG trace"}'  # no rule, no specialty
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"fundus/labels.jsonl row 1: malformed JSON line"):
        load_triage_images(root)
    with pytest.warns(UserWarning, match=r"SKIPPED 3 row"):
        dd, rep = load_triage_images(root, return_report=True, on_error="skip")
    assert [(s.row, s.field) for s in rep.skipped] == [(1, None), (2, "image"), (3, "modality")]
    assert "missing.jpg not found" in rep.skipped[1].reason
    assert "no specialty rule matches modality 'ECG trace'" in rep.skipped[2].reason
    assert len(dd["train"]) + len(dd["heldout"]) == 10 == rep.n_items
    with pytest.raises(ValueError, match="no labels.jsonl under"):
        load_triage_images(tmp_path / "derm" / "images")
    with pytest.raises(ValueError, match="heldout_fraction"):
        load_triage_images(root, 1.5)


def test_real_triage_images(triage_root):
    dd, rep = load_triage_images(triage_root, heldout_fraction=0.5, seed=0, return_report=True)
    total = collections.Counter([*dd["train"]["specialty"], *dd["heldout"]["specialty"]])
    assert total == {"Dermatologist": 200, "Ophthalmologist": 42, "Pathologist": 11}
    assert collections.Counter(dd["heldout"]["specialty"]) == {"Dermatologist": 100, "Ophthalmologist": 21, "Pathologist": 6}
    assert rep.n_skipped == 0 and rep.specialty_sources == {"data": 253}
    assert leakage_report(dd["train"], dd["heldout"]).shared_images == 0  # two ISIC files are byte-identical
    assert any("ISIC_0000279" in n and "ISIC_0000280" in n for n in rep.notes)
