"""SLAKE 1.0 (official json + imgs/) and PathVQA (original pickles, Hub parquet) on fixtures."""

from __future__ import annotations

import pickle

import pytest
from fixtures_data import IMG_SIZE, write_hub_vqa, write_pathvqa_original, write_slake

from mmed.data import FEATURES, item_meta, load_benchmark
from mmed.data.loaders import DataError, detect_layout


def test_slake_english_default(tmp_path):
    root = write_slake(tmp_path / "Slake1.0")
    test, rep = load_benchmark("slake", tmp_path, "test", return_report=True)  # finds Slake1.0/
    assert test.features == FEATURES
    assert list(test["id"]) == ["slake/test/30", "slake/test/31", "slake/test/32"]
    assert rep.filtered == {"q_lang=zh": 1} and rep.n_rows == 4
    r = test[0]
    assert (r["options"], r["answer_idx"], r["answer"]) == (["yes", "no"], 0, "yes")
    assert (r["modality"], r["specialty"], r["organ"]) == ("CT", "Radiologist", "Abdomen")
    assert r["images"][0].size == IMG_SIZE and r["image_ref"].endswith("imgs/xmlab2/source.jpg")
    assert item_meta(r)["content_type"] == "Organ" and item_meta(r)["q_lang"] == "en"
    # "Which side is the lesion on?" -> Right: distractors from training answers of content type Position
    r = test[1]
    assert item_meta(r)["mc_rule"] == "distractors"
    assert sorted(r["options"]) == ["center", "left lung", "right"] and r["answer"] == "right"
    assert (test[2]["answer_type"], test[2]["answer"]) == ("open", "Liver")


def test_slake_alternatives_language_and_splits(tmp_path):
    root = write_slake(tmp_path)
    train = load_benchmark("slake", root, "train")
    r = {x["id"]: x for x in train}["slake/train/2"]  # "Which organ is abnormal, liver or spleen?"
    assert (r["options"], r["answer_idx"], item_meta(r)["mc_rule"]) == (["liver", "spleen"], 0, "alternatives")
    assert {x["specialty"] for x in train} == {"Radiologist"}  # MRI and X-Ray by the rules
    zh, rep = load_benchmark("slake", root, "test", q_lang="zh", return_report=True)
    assert list(zh["question"]) == ["图中最大的器官是什么?"] and rep.filtered == {"q_lang=en": 3}
    assert len(load_benchmark("slake", root, "test", q_lang=None)) == 4
    val = load_benchmark("slake", root, "val")  # alias of validation
    assert list(val["id"]) == ["slake/validation/20"] and val[0]["split"] == "validation"
    with pytest.raises(ValueError, match="slake splits are"):
        load_benchmark("slake", root, "dev")


def test_pathvqa_original_release(tmp_path):
    root = write_pathvqa_original(tmp_path)
    assert detect_layout("pathvqa", root) == "original"
    test, rep = load_benchmark("pathvqa", root, "test", return_report=True)
    assert list(test["id"]) == ["pathvqa/test/0", "pathvqa/test/1", "pathvqa/test/2"]
    assert list(test["answer_type"]) == ["closed", "open", "open"]  # yes/no are the closed questions
    assert test[0]["options"] == ["yes", "no"] and test[0]["answer_idx"] == 0
    assert set(test["specialty"]) == {"Pathologist"} and set(test["modality"]) == {"pathology"}
    assert test[0]["image_ref"].endswith("pvqa/images/test/test_0000.jpg") and test[0]["images"][0].size == IMG_SIZE
    assert rep.mc_rules == {"yes_no": 1}
    val = load_benchmark("pathvqa", root / "pvqa", "validation")  # val/ on disk, "validation" in the schema
    assert list(val["split"]) == ["validation"] and val[0]["answer"] == "no"
    closed_only = load_benchmark("pathvqa", root, "train", include_open=False)
    assert list(closed_only["question"]) == ["Is this a benign lesion?"]


class Evil:  # a pickle that would run code when loaded
    def __reduce__(self):
        return (print, ("pwned",))


def test_pathvqa_pickle_with_code_is_refused(tmp_path):
    root = write_pathvqa_original(tmp_path)
    f = root / "pvqa" / "qas" / "test" / "test_qa.pkl"
    f.write_bytes(pickle.dumps([{"image": "test_0000", "question": "q", "answer": Evil()}]))
    with pytest.raises(DataError, match=r"test_qa.pkl: not a readable pickle.*refusing to load global builtins.print"):
        load_benchmark("pathvqa", root, "test")


def test_pathvqa_hub_form(tmp_path):
    root = write_hub_vqa(tmp_path, {"train": [(1, "Is it?", "yes"), (2, "What is present?", "granuloma")],
                                    "validation": [(3, "Is it?", "no")],
                                    "test": [(4, "What is present?", "abscess"), (5, "Are they necrotic?", "Yes")]})
    assert detect_layout("pathvqa", root) == "hub"
    test = load_benchmark("pathvqa", root, "test")
    assert list(test["answer_type"]) == ["open", "closed"] and test[1]["answer"] == "yes"
    assert set(test["specialty"]) == {"Pathologist"}
    assert list(load_benchmark("pathvqa", root, "validation")["answer"]) == ["no"]


def test_pathvqa_save_to_disk_copy(tmp_path):
    import datasets as hf
    from fixtures_data import image_bytes

    feats = hf.Features({"image": hf.Image(), "question": hf.Value("string"), "answer": hf.Value("string")})
    rows = {"image": [{"bytes": image_bytes(9), "path": None}], "question": ["Is it?"], "answer": ["no"]}
    hf.DatasetDict(test=hf.Dataset.from_dict(rows, features=feats)).save_to_disk(str(tmp_path / "copy"))
    assert detect_layout("pathvqa", tmp_path / "copy") == "hub"
    ds = load_benchmark("pathvqa", tmp_path / "copy", "test")
    assert ds[0]["options"] == ["yes", "no"] and ds[0]["answer_idx"] == 1 and ds[0]["images"][0].size == IMG_SIZE
    with pytest.raises(DataError, match=r"no split 'train'; splits present: \['test'\]"):
        load_benchmark("pathvqa", tmp_path / "copy", "train")


def test_slake_hub_id_is_explained():
    with pytest.raises(ValueError, match="read from local files only .*BoKelvin/SLAKE.*unzip imgs.zip"):
        load_benchmark("slake", "BoKelvin/SLAKE", "test")
