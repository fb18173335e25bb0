"""Bad input: every error names the file, the row index and the field; skips are reported."""

from __future__ import annotations

import json

import pytest
from fixtures_data import VQA_RAD_TEST, write_vqa_rad

from mmed.data import KNOWN_BENCHMARKS, load_benchmark
from mmed.data.loaders import DataError, detect_layout


def _mevf(tmp_path, test_rows):
    root = write_vqa_rad(tmp_path, official=False, test=test_rows)
    return root, root / "data_RAD" / "testset.json"


def test_unknown_dataset_lists_known_names(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'vqa-rad'; known: vqa_rad, slake, pathvqa, omnimedvqa, mmmu_med"):
        load_benchmark("vqa-rad", tmp_path, "test")
    with pytest.raises(ValueError, match="unknown dataset 'x'; known: " + ", ".join(KNOWN_BENCHMARKS)):
        detect_layout("x", tmp_path)


def test_missing_source(tmp_path):
    with pytest.raises(ValueError, match=r"source .*nowhere does not exist"):
        load_benchmark("slake", tmp_path / "nowhere", "test")


def test_missing_image_file(tmp_path):
    rows = [dict(VQA_RAD_TEST[0]), dict(VQA_RAD_TEST[1], image_name="synpic999.jpg")]
    root, f = _mevf(tmp_path, rows)
    with pytest.raises(DataError) as e:
        load_benchmark("vqa_rad", root, "test")
    msg = str(e.value)
    assert msg.startswith(f"{f} row 1 (id 'vqa_rad/test/12'): field 'image_name': image file ")
    assert "synpic999.jpg not found" in msg
    assert (e.value.file, e.value.row, e.value.field, e.value.item_id) == (str(f), 1, "image_name", "vqa_rad/test/12")


def test_missing_field(tmp_path):
    row = dict(VQA_RAD_TEST[2])
    del row["question"]
    root, f = _mevf(tmp_path, [VQA_RAD_TEST[0], VQA_RAD_TEST[1], row])
    with pytest.raises(DataError, match=r"testset.json row 2 \(id 'vqa_rad/test/13'\): field 'question': missing"):
        load_benchmark("vqa_rad", root, "test")


def test_missing_id_field_and_bad_values(tmp_path):
    no_qid = {k: v for k, v in VQA_RAD_TEST[0].items() if k != "qid"}
    bad_type = dict(VQA_RAD_TEST[1], answer_type="MAYBE")
    empty_answer = dict(VQA_RAD_TEST[2], answer="  ")
    root, f = _mevf(tmp_path, [no_qid, bad_type, empty_answer])
    with pytest.raises(DataError, match=r"testset.json row 0: field 'qid': missing"):
        load_benchmark("vqa_rad", root, "test")
    with pytest.warns(UserWarning, match="SKIPPED 3 row"):
        ds, rep = load_benchmark("vqa_rad", root, "test", on_error="skip", return_report=True)
    assert len(ds) == 0
    assert [(s.row, s.field) for s in rep.skipped] == [(0, "qid"), (1, "answer_type"), (2, "answer")]
    assert "expected CLOSED or OPEN, got 'MAYBE'" in rep.skipped[1].reason
    assert rep.skipped[2].reason.endswith("field 'answer': empty")


def test_malformed_json_row(tmp_path):
    root, f = _mevf(tmp_path, [VQA_RAD_TEST[0], ["not", "an", "object"], VQA_RAD_TEST[3]])
    with pytest.raises(DataError, match=r"testset.json row 1: row is a list, expected a JSON object"):
        load_benchmark("vqa_rad", root, "test")
    with pytest.warns(UserWarning, match="SKIPPED 1 row"):
        ds, rep = load_benchmark("vqa_rad", root, "test", on_error="skip", return_report=True)
    assert list(ds["id"]) == ["vqa_rad/test/11", "vqa_rad/test/14"]
    assert rep.skipped_ids == [f"{f}#1"]  # no id could be read: file#row
    assert rep.n_rows == rep.n_items + rep.n_skipped + sum(rep.filtered.values()) == 3


def test_malformed_json_file_raises_in_both_modes(tmp_path):
    root, f = _mevf(tmp_path, VQA_RAD_TEST)
    f.write_text('[{"qid": 1,\n  "question": "x"\n  "answer": 1}]')
    for mode in ("raise", "skip"):
        with pytest.raises(DataError, match=r"testset.json: not valid JSON \(line 3, column 3\)"):
            load_benchmark("vqa_rad", root, "test", on_error=mode)
    f.write_text(json.dumps({"rows": []}))
    with pytest.raises(DataError, match="expected a JSON list of rows, got dict"):
        load_benchmark("vqa_rad", root, "test")


def test_skip_reports_how_many_and_which(tmp_path):
    rows = [dict(VQA_RAD_TEST[0]), dict(VQA_RAD_TEST[1], image_name="gone.jpg"), dict(VQA_RAD_TEST[2], image_name="gone.jpg"),
            dict(VQA_RAD_TEST[3])]
    root, f = _mevf(tmp_path, rows)
    with pytest.warns(UserWarning, match=r"4 rows read -> 2 items.*SKIPPED 2 row\(s\)"):
        ds, rep = load_benchmark("vqa_rad", root, "test", on_error="skip", return_report=True)
    assert list(ds["id"]) == ["vqa_rad/test/11", "vqa_rad/test/14"]
    assert rep.n_skipped == 2 and rep.skipped_ids == ["vqa_rad/test/12", "vqa_rad/test/13"]
    d = rep.as_dict()
    assert d["n_skipped"] == 2 and d["skipped"][0]["field"] == "image_name" and d["n_items"] == 2
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip'"):
        load_benchmark("vqa_rad", root, "test", on_error="ignore")


def test_duplicate_ids_are_errors(tmp_path):
    root, f = _mevf(tmp_path, [VQA_RAD_TEST[0], dict(VQA_RAD_TEST[1], qid=11)])
    with pytest.raises(DataError, match=r"row 1 \(id 'vqa_rad/test/11'\): field 'id': duplicate item id"):
        load_benchmark("vqa_rad", root, "test")


def test_a_skipped_duplicate_is_not_counted_in_the_rule_and_specialty_counts(tmp_path):
    """Skipped duplicate ids used to be counted in mc_rules/specialty_sources ("yes_no: 2" with 1 item)."""
    root, f = _mevf(tmp_path, [VQA_RAD_TEST[0], dict(VQA_RAD_TEST[0], qid=11)])
    with pytest.warns(UserWarning, match="SKIPPED 1 row"):
        ds, rep = load_benchmark("vqa_rad", root, "test", on_error="skip", return_report=True)
    assert len(ds) == 1 and rep.n_items == 1 and rep.n_skipped == 1 and rep.skipped_ids == ["vqa_rad/test/11"]
    assert dict(rep.mc_rules) == {"yes_no": 1}
    assert sum(rep.specialty_sources.values()) == 1
    assert "multiple choice by yes_no: 1" in rep.summary()
