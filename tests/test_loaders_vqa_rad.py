"""VQA-RAD in its three layouts: fixtures in the real formats, then counts on the real copy."""

from __future__ import annotations

import collections

import datasets
import pytest
from fixtures_data import IMG_SIZE, write_hub_vqa, write_vqa_rad

from mmed.data import FEATURES, item_meta, load_benchmark
from mmed.data.loaders import detect_layout
from mmed.data.mcq import answer_pool
from mmed.data.splits import leakage_report


def _by_id(ds):
    return {r["id"]: r for r in ds}


def test_mevf_fixture(tmp_path):
    root = write_vqa_rad(tmp_path, stub_images=True)
    test, rep = load_benchmark("vqa_rad", root, "test", return_report=True)
    assert test.features == FEATURES
    assert list(test["id"]) == ["vqa_rad/test/11", "vqa_rad/test/12", "vqa_rad/test/13", "vqa_rad/test/14"]
    rows = _by_id(test)
    r = rows["vqa_rad/test/11"]
    assert (r["options"], r["answer_idx"], r["answer"], r["answer_type"]) == (["yes", "no"], 1, "no", "closed")
    assert (r["modality"], r["specialty"], r["organ"], r["split"]) == ("radiology", "Radiologist", "HEAD", "test")
    assert r["images"][0].size == IMG_SIZE  # decoded lazily from the file on access
    assert r["image_ref"].endswith("VQA_RAD Image Folder/synpic100.jpg")  # through the symlink stub
    assert item_meta(r)["raw_answer"] == "No" and item_meta(r)["mc_rule"] == "yes_no"
    r = rows["vqa_rad/test/12"]  # "CLOSED " with a trailing space in the source
    assert (r["options"], r["answer_idx"]) == (["T1 weighted", "T2 weighted", "FLAIR"], 2)
    r = rows["vqa_rad/test/13"]  # "one" is not worded as an alternative -> distractors of type COUNT
    assert item_meta(r)["mc_rule"] == "distractors"
    assert sorted(r["options"]) == ["2", "3", "one"] and r["answer"] == "one"  # "just one" rewords the gold
    r = rows["vqa_rad/test/14"]
    assert (r["options"], r["answer_idx"], r["answer"], r["answer_type"]) == ([], -1, "kidney", "open")
    assert rep.n_rows == 4 and rep.n_items == 4 and rep.n_skipped == 0
    assert rep.mc_rules == {"yes_no": 1, "alternatives": 1, "distractors": 1}
    assert any("symlink stub" in n for n in rep.notes)
    train = load_benchmark("vqa_rad", root, "train")
    assert len(train) == 8 and set(train["split"]) == {"train"}
    assert _by_id(train)["vqa_rad/train/5"]["answer"] == "2"  # an integer answer in the json


def test_include_open_false_counts_what_it_leaves_out(tmp_path):
    root = write_vqa_rad(tmp_path)
    ds, rep = load_benchmark("vqa_rad", root, "test", include_open=False, return_report=True)
    assert set(ds["answer_type"]) == {"closed"} and len(ds) == 3
    assert rep.filtered == {"open question": 1}
    assert rep.n_rows == rep.n_items + rep.n_skipped + sum(rep.filtered.values())


def test_official_layout_and_its_own_split(tmp_path):
    root = write_vqa_rad(tmp_path)
    test, rep = load_benchmark("vqa_rad", root, "test", layout="official", return_report=True)
    assert len(test) == 4 and rep.filtered == {"other split": 8} and rep.n_rows == 12
    assert len(load_benchmark("vqa_rad", root, "train", layout="official")) == 8
    every = load_benchmark("vqa_rad", root, "all")  # 'all' -> official layout
    assert len(every) == 12
    assert collections.Counter(every["split"]) == {"train": 8, "test": 4}
    assert "vqa_rad/train/1" in set(every["id"])  # the one string qid


def test_same_question_same_options_in_every_layout(tmp_path):
    root = write_vqa_rad(tmp_path)
    mevf = load_benchmark("vqa_rad", root, "test", layout="mevf")
    official = load_benchmark("vqa_rad", root, "test", layout="official")
    key = lambda r: (r["image_ref"].rsplit("/", 1)[1], r["question"])  # noqa: E731
    a = {key(r): (r["options"], r["answer_idx"]) for r in mevf}
    b = {key(r): (r["options"], r["answer_idx"]) for r in official}
    assert a == b and len(a) == 4
    assert set(mevf["id"]).isdisjoint({"x"}) and list(mevf["id"]) != list(official["id"])  # ids differ


def test_hub_form_parquet(tmp_path):
    root = write_hub_vqa(tmp_path, {"train": [(1, "Is it a CT?", "yes"), (2, "What organ?", "lung")],
                                    "test": [(1, "Is it a CT?", "No"), (3, "Where?", "left"), (2, "Is it a CT or an MRI?", "MRI")]},
                         shards=2)
    assert detect_layout("vqa_rad", root, "test") == "hub"
    ds, rep = load_benchmark("vqa_rad", root, "test", return_report=True)
    assert list(ds["id"]) == ["vqa_rad/test/0", "vqa_rad/test/1", "vqa_rad/test/2"]  # unique across shards
    assert list(ds["answer_type"]) == ["closed", "open", "open"]  # no answer_type: closed iff yes/no
    assert ds[0]["options"] == ["yes", "no"] and ds[0]["answer_idx"] == 1
    assert ds[0]["images"][0].size == IMG_SIZE  # embedded bytes
    assert ds[0]["image_ref"].endswith("test-00000-of-00002.parquet#0")
    assert rep.mc_rules == {"yes_no": 1}


def test_hub_id_goes_through_load_dataset(tmp_path, monkeypatch):
    local = write_hub_vqa(tmp_path, {"train": [(1, "Is it?", "yes")], "test": [(2, "Is it?", "no")]})
    calls = []
    real_load_dataset = datasets.load_dataset

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return real_load_dataset("parquet", data_files=str(local / "data" / f"{split}-00000-of-00001.parquet"), split="train")

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = load_benchmark("vqa_rad", "flaviagiammarino/vqa-rad", "test")
    assert calls == [("flaviagiammarino/vqa-rad", None, "test")]  # yes/no only: no training split needed
    assert ds[0]["answer"] == "no" and ds[0]["images"][0].size == IMG_SIZE


def test_layout_detection(tmp_path):
    both = write_vqa_rad(tmp_path / "both")
    assert detect_layout("vqa_rad", both, "test") == "mevf"  # the literature's split
    assert detect_layout("vqa_rad", both, "all") == "official"
    assert detect_layout("vqa_rad", both / "data_RAD", "train") == "mevf"
    only = write_vqa_rad(tmp_path / "official", mevf=False)
    assert detect_layout("vqa_rad", only, "test") == "official"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no known layout .* expected 'VQA_RAD Dataset Public.json'"):
        detect_layout("vqa_rad", tmp_path / "empty")
    with pytest.raises(ValueError, match="'mevf' has splits 'train' and 'test', not 'all'"):
        load_benchmark("vqa_rad", both, "all", layout="mevf")
    with pytest.raises(ValueError, match="unknown layout 'kaggle' for vqa_rad; known: mevf, official, hub"):
        load_benchmark("vqa_rad", both, "test", layout="kaggle")


# ---------------------------------------------------------------------------------------
# the real copy in ../shared/data/vqa_rad (skipped without it, failed under CI=true)
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(vqa_rad_root):
    out = {}
    for split in ("train", "test"):
        out[split], out[f"{split}_report"] = load_benchmark("vqa_rad", vqa_rad_root, split, return_report=True)
    out["all"] = load_benchmark("vqa_rad", vqa_rad_root, "all")
    return out


def test_real_mevf_counts(real):
    test, train = real["test"], real["train"]
    assert len(test) == 451 and len(train) == 3064
    closed = [r for r in test.select_columns(["answer_type", "options", "meta"]) if r["answer_type"] == "closed"]
    assert len(closed) == 272
    assert sum(r["options"] == ["yes", "no"] for r in closed) == 251
    assert real["test_report"].mc_rules == {"yes_no": 251, "alternatives": 20, "distractors": 1}
    assert real["test_report"].n_skipped == 0 and real["test_report"].closed_as_open == 0
    assert set(test["specialty"]) == {"Radiologist"} and set(test["modality"]) == {"radiology"}
    assert set(test["organ"]) == {"HEAD", "CHEST", "ABD"}


def test_real_official_counts(real, vqa_rad_root):
    every = real["all"]
    assert len(every) == 2248
    assert collections.Counter(every["answer_type"])["closed"] == 1299
    assert collections.Counter(every["split"]) == {"train": 1797, "test": 451}
    assert len(load_benchmark("vqa_rad", vqa_rad_root, "test", layout="official")) == 451


def test_real_mevf_leakage(real):
    r = leakage_report(real["train"], real["test"])
    assert r.images_b == 203 and r.shared_images == 203  # every test image is in train
    assert r.repeated_pairs == 14 and r.items_b_repeated_pair == 14
    assert r.repeated_pairs_normalized == 16  # two more differ from train only by a "?"
    assert r.images_a == 314


def test_real_options_identical_across_layouts(real, vqa_rad_root):
    """The official test split holds the same 451 questions; with the same distractor pool
    every closed question gets the same options as in the MEVF layout."""
    pool = answer_pool((item_meta(r).get("question_type"), r["question"], item_meta(r)["raw_answer"])
                       for r in real["train"].select_columns(["question", "meta"]))
    official = load_benchmark("vqa_rad", vqa_rad_root, "test", layout="official", train_answers=pool)
    key = lambda r: (r["image_ref"].rsplit("/", 1)[1], r["question"], item_meta(r)["raw_answer"])  # noqa: E731
    cols = ["image_ref", "question", "meta", "options", "answer_idx"]
    a = collections.Counter((key(r), tuple(r["options"]), r["answer_idx"]) for r in real["test"].select_columns(cols))
    b = collections.Counter((key(r), tuple(r["options"]), r["answer_idx"]) for r in official.select_columns(cols))
    assert a == b and sum(n for k, n in a.items() if k[1]) == 272  # all 272 closed questions


def test_without_training_split_closed_questions_needing_distractors_stay_open(tmp_path):
    root = write_vqa_rad(tmp_path, official=False)
    (root / "data_RAD" / "trainset.json").unlink()
    ds, rep = load_benchmark("vqa_rad", root, "test", return_report=True)
    r = _by_id(ds)["vqa_rad/test/13"]  # the one that needs distractors
    assert (r["answer_type"], r["options"], r["answer"]) == ("open", [], "one")
    assert item_meta(r)["source_answer_type"] == "closed"
    assert rep.closed_as_open == 1 and any("no distractor pool" in n and "trainset.json" in n for n in rep.notes)
    assert rep.mc_rules == {"yes_no": 1, "alternatives": 1}  # these need no pool
    closed, rep = load_benchmark("vqa_rad", root, "test", include_open=False, return_report=True)
    assert len(closed) == 2 and rep.filtered == {"open question": 1, "closed question without options": 1}
    assert rep.n_rows == rep.n_items + rep.n_skipped + sum(rep.filtered.values())
