"""OmniMedVQA (open-access QA json) and MMMU Health & Medicine (Hub parquet) on fixtures."""

from __future__ import annotations

import json

import pytest
from fixtures_data import IMG_SIZE, MMMU, OMNIMEDVQA, _mmmu, write_mmmu, write_omnimedvqa

from mmed.data import FEATURES, item_meta, load_benchmark
from mmed.data.loaders import DataError, detect_layout


def test_omnimedvqa_given_options(tmp_path):
    root = write_omnimedvqa(tmp_path / "OmniMedVQA")
    assert detect_layout("omnimedvqa", tmp_path) == "open_access"
    ds, rep = load_benchmark("omnimedvqa", tmp_path, "test", return_report=True)
    assert ds.features == FEATURES and len(ds) == 5 and rep.mc_rules == {"given": 5}
    rows = {r["id"]: r for r in ds}
    r = rows["omnimedvqa/test/ACRIMA/ACRIMA_0001"]
    assert (r["options"], r["answer_idx"], r["answer"]) == (["Normal", "Glaucoma", "Cataract", "Myopia"], 1, "Glaucoma")
    assert (r["modality"], r["specialty"]) == ("Fundus Photography", "Ophthalmologist")
    assert r["images"][0].size == IMG_SIZE and r["image_ref"].endswith("Images/ACRIMA/Im001.png")
    assert item_meta(r)["question_type"] == "Disease Diagnosis"
    r = rows["omnimedvqa/test/ACRIMA/ACRIMA_0002"]  # two options only; gold matches after normalisation
    assert (r["options"], r["answer"]) == (["CT", "Fundus photography"], "Fundus photography")
    assert item_meta(r)["raw_answer"] == "Fundus photography"
    specs = {k.split("/")[-1]: v["specialty"] for k, v in rows.items()}
    assert specs["BioMediTech_0001"] == "Pathologist" and specs["BioMediTech_0002"] == "Radiologist"
    assert specs["Chest CT Scan_0001"] == "Radiologist"
    # the Open-access folder itself is accepted too, and subsets select QA files
    sub = load_benchmark("omnimedvqa", root / "QA_information" / "Open-access", "test", subsets=["Chest CT Scan"])
    assert list(sub["id"]) == ["omnimedvqa/test/Chest CT Scan/Chest CT Scan_0001"]
    with pytest.raises(ValueError, match=r"unknown omnimedvqa subset\(s\) \['Nope'\]"):
        load_benchmark("omnimedvqa", root, "test", subsets=["Nope"])
    with pytest.raises(ValueError, match="one split, 'test'"):
        load_benchmark("omnimedvqa", root, "train")


def test_omnimedvqa_modality_alias_and_bad_gt(tmp_path):
    rows = json.loads(json.dumps(OMNIMEDVQA["Chest CT Scan"]))
    rows[0]["modality"] = rows[0].pop("modality_type")  # one real file spells it so
    bad = dict(rows[0], question_id="x2", gt_answer="PET")
    root = write_omnimedvqa(tmp_path, {"Chest CT Scan": [rows[0], bad]})
    with pytest.raises(DataError, match=r"Chest CT Scan.json row 1 \(id 'omnimedvqa/test/Chest CT Scan/x2'\): "
                                        r"field 'gt_answer': 'PET' is none of the options"):
        load_benchmark("omnimedvqa", root, "test")
    with pytest.warns(UserWarning, match="SKIPPED 1 row"):
        ds, rep = load_benchmark("omnimedvqa", root, "test", on_error="skip", return_report=True)
    assert len(ds) == 1 and ds[0]["modality"] == "CT(Computed Tomography)"
    assert rep.skipped_ids == ["omnimedvqa/test/Chest CT Scan/x2"]


def test_mmmu_subject_folders(tmp_path):
    root = write_mmmu(tmp_path)
    assert detect_layout("mmmu_med", root) == "hub"
    ds, rep = load_benchmark("mmmu_med", root, "validation", return_report=True)
    assert ds.features == FEATURES and len(ds) == 3
    rows = {r["id"]: r for r in ds}
    r = rows["mmmu_med/validation/validation_Clinical_Medicine_1"]
    assert (r["options"], r["answer_idx"], r["answer"]) == (["Infarct", "Tumour", "Abscess", "Normal"], 1, "Tumour")
    assert r["question"].startswith("<image 1>")  # placeholders kept for the prompt builder
    assert (r["specialty"], item_meta(r)["specialty_source"]) == ("Radiologist", "rule")
    assert item_meta(r)["answer_letter"] == "B" and item_meta(r)["subject"] == "Clinical_Medicine"
    r = rows["mmmu_med/validation/validation_Clinical_Medicine_2"]  # two images
    assert [im.size for im in r["images"]] == [IMG_SIZE, IMG_SIZE] and item_meta(r)["n_images"] == 2
    assert r["images"][0].getpixel((0, 0)) != r["images"][1].getpixel((0, 0))
    assert (r["modality"], r["specialty"]) == ("Microscopic Images", "Pathologist")
    r = rows["mmmu_med/validation/validation_Public_Health_1"]  # open; img_type "Tables" -> subject default
    assert (r["answer_type"], r["options"], r["answer_idx"], r["answer"]) == ("open", [], -1, "2.5")
    assert (r["specialty"], item_meta(r)["specialty_source"]) == ("Endocrinologist", "default")
    assert rep.specialty_sources == {"rule": 2, "default": 1}
    assert any("not present" in n and "Pharmacy" in n for n in rep.notes)
    with pytest.raises(DataError, match=r"subject folder\(s\) \['Pharmacy'\] not found"):
        load_benchmark("mmmu_med", root, "validation", subsets=["Clinical_Medicine", "Pharmacy"])
    closed = load_benchmark("mmmu_med", root, "validation", include_open=False)
    assert len(closed) == 2


def test_mmmu_merged_copy_and_splits(tmp_path):
    root = write_mmmu(tmp_path, merged=True)
    ds, rep = load_benchmark("mmmu_med", root, "validation", subsets=["Public_Health"], return_report=True)
    assert list(ds["id"]) == ["mmmu_med/validation/validation_Public_Health_1"]
    assert rep.filtered == {"other subject": 2}
    with pytest.raises(ValueError, match="test split has no public answers"):
        load_benchmark("mmmu_med", root, "test")
    with pytest.raises(ValueError, match=r"unknown MMMU Health & Medicine subject\(s\) \['Art'\]"):
        load_benchmark("mmmu_med", root, "validation", subsets=["Art"])


def test_mmmu_bad_rows(tmp_path):
    rows = [
        _mmmu("validation_Pharmacy_1", "q?", ["a", "b"], "C", "multiple-choice", [1], ["Chemical Structures"]),
        _mmmu("validation_Pharmacy_2", "q?", "not a list", "A", "multiple-choice", [2], ["Tables"]),
        _mmmu("validation_Pharmacy_3", "q?", ["a", "b"], "A", "multiple-choice", [], ["Tables"]),
        _mmmu("validation_Pharmacy_4", "q?", ["a", "b"], "A", "multiple-choice", [4], ["Chemical Structures"]),
    ]
    rows[1]["options"] = "not a list"
    root = write_mmmu(tmp_path, {"Pharmacy": rows})
    with pytest.raises(DataError, match=r"row 0 \(id 'mmmu_med/validation/validation_Pharmacy_1'\): field 'answer': "
                                        r"'C' is not a letter within the 2 options"):
        load_benchmark("mmmu_med", root, "validation")
    with pytest.warns(UserWarning, match="SKIPPED 3 row"):
        ds, rep = load_benchmark("mmmu_med", root, "validation", on_error="skip", return_report=True)
    assert list(ds["id"]) == ["mmmu_med/validation/validation_Pharmacy_4"]
    assert [s.field for s in rep.skipped] == ["answer", "options", "image_1"]
    assert rep.n_skipped == 3 and rep.n_rows == 4


def test_mmmu_hub_id_reads_each_subject_config(tmp_path, monkeypatch):
    import datasets as hf

    local = write_mmmu(tmp_path)
    calls = []
    real_load_dataset = hf.load_dataset

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        files = sorted((local / name).glob(f"{split}-*.parquet")) if (local / name).is_dir() else []
        if not files:
            raise FileNotFoundError(f"no config {name}")
        return real_load_dataset("parquet", data_files=[str(f) for f in files], split="train")

    monkeypatch.setattr(hf, "load_dataset", fake_load_dataset)
    ds = load_benchmark("mmmu_med", "MMMU/MMMU", "validation", subsets=["Clinical_Medicine"])
    assert calls == [("MMMU/MMMU", "Clinical_Medicine", "validation")]
    assert len(ds) == 2 and [len(x) for x in ds["images"]] == [1, 2]
    with pytest.raises(DataError, match=r"MMMU/MMMU: could not load split 'validation' from the Hub \(FileNotFoundError: no config Pharmacy\)"):
        load_benchmark("mmmu_med", "MMMU/MMMU", "validation", subsets=["Pharmacy"])
