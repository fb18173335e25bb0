"""Real benchmark files as they really are: SLAKE 1.0's
``validate.json``, the row-error policy, undecodable bytes, truncated parquet files and empty
splits. Every fixture is written into ``tmp_path``; no real data file is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_data import SLAKE, write_hub_vqa, write_slake, write_vqa_rad

from mmed.config import load_profile
from mmed.data import load_benchmark
from mmed.data.loaders import DataError, detect_layout
from mmed.data.training import training_pool


def _slake_release(root):
    """SLAKE 1.0 as released: the validation split is in ``validate.json``."""
    write_slake(root, {"train": SLAKE["train"], "validate": SLAKE["validation"], "test": SLAKE["test"]})
    assert not (root / "validation.json").exists()
    return root


# ---------------------------------------------------------------------------------------
# 1. SLAKE 1.0 names its validation file validate.json
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("split", ["validation", "val"])
def test_slake_validation_split_is_read_from_validate_json(tmp_path, split):
    root = _slake_release(tmp_path / "slake")
    assert detect_layout("slake", root, split) == "official"
    ds, rep = load_benchmark("slake", root, split, return_report=True)
    assert list(ds["id"]) == ["slake/validation/20"] and set(ds["split"]) == {"validation"}
    assert rep.n_rows == 1


def test_slake_without_any_validation_file_names_the_files_tried(tmp_path):
    root = write_slake(tmp_path / "slake", {"train": SLAKE["train"], "test": SLAKE["test"]})
    with pytest.raises(ValueError, match=r"file not found \(split .validation.: looked for validate\.json or validation\.json"):
        load_benchmark("slake", root, "validation")


def test_training_pool_with_a_slake_validation_evaluation_entry(tmp_path):
    """``slake:official@validation`` in a profile whose training pool must leave out its images."""
    _slake_release(tmp_path / "slake")
    prof = load_profile("smoke", overrides={"data": {
        "train_benchmarks": ["slake:official"], "eval_benchmarks": ["slake:official@validation"],
        "synthetic": {"n_train": 0}}})
    pool = training_pool(prof, tmp_path, seed=0, log=lambda _m: None)
    assert pool.info["eval_images"] == 1  # validate.json's one image (xmlab2) was read
    assert pool.info["by_benchmark"]["slake:official"]["read"] == 5  # the English train rows


# ---------------------------------------------------------------------------------------
# 6. an empty split is an error of the library call, naming the file
# ---------------------------------------------------------------------------------------
def test_empty_json_split_raises_naming_the_file_in_both_modes(tmp_path):
    root = write_slake(tmp_path / "slake", {"train": SLAKE["train"], "test": []})
    for mode in ("raise", "skip"):
        with pytest.raises(DataError, match=r"slake/test\.json: split 'test' has no rows at all \(an empty file\)") as e:
            load_benchmark("slake", root, "test", on_error=mode)
        assert e.value.file.endswith("test.json") and "\n" not in str(e.value)
    vqa = write_vqa_rad(tmp_path / "vqa_rad", official=False, test=[])
    with pytest.raises(DataError, match=r"data_RAD/testset\.json: split 'test' has no rows at all"):
        load_benchmark("vqa_rad", vqa, "test")


def _empty_hub_parquet(path: Path) -> Path:
    """A Hub-form parquet file (image, question, answer) with no rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"image": pa.array([], image), "question": pa.array([], pa.string()),
                             "answer": pa.array([], pa.string())}), path)
    return path


def test_empty_parquet_split_raises_and_an_empty_shard_is_reported(tmp_path):
    root = tmp_path / "pathvqa"
    _empty_hub_parquet(root / "data" / "test-00000-of-00001.parquet")
    with pytest.raises(DataError, match=r"test-00000-of-00001\.parquet: split 'test' has no rows at all"):
        load_benchmark("pathvqa", root, "test", layout="hub")
    # two shards, the second one empty: the rows of the first are read, the empty one is named
    root = write_hub_vqa(tmp_path / "pathvqa2", {"test": [(1, "Is this benign?", "yes")]})
    (root / "data" / "test-00000-of-00001.parquet").rename(root / "data" / "test-00000-of-00002.parquet")
    _empty_hub_parquet(root / "data" / "test-00001-of-00002.parquet")
    with pytest.warns(UserWarning, match=r"1 file\(s\) with no rows: .*test-00001-of-00002\.parquet"):
        ds, rep = load_benchmark("pathvqa", root, "test", layout="hub", return_report=True)
    assert len(ds) == 1 and [Path(f).name for f in rep.empty_files] == ["test-00001-of-00002.parquet"]
    assert rep.as_dict()["empty_files"] == rep.empty_files


# ---------------------------------------------------------------------------------------
# 3. undecodable bytes and truncated parquet files: one line naming file (and row)
# ---------------------------------------------------------------------------------------
def _put_byte(path: Path, text: str, byte: bytes = b"\xff") -> None:
    """Replace the first ``text`` in ``path`` by ``text`` followed by a raw (non-UTF-8) byte."""
    raw = path.read_bytes()
    assert text.encode() in raw
    path.write_bytes(raw.replace(text.encode(), text.encode() + byte, 1))


def test_undecodable_byte_in_a_slake_question_names_file_row_and_field(tmp_path):
    root = write_slake(tmp_path / "slake")
    _put_byte(root / "test.json", "Which side is the lesion")  # row 1 of test.json
    with pytest.raises(DataError) as e:
        load_benchmark("slake", root, "test")
    msg = str(e.value)
    assert msg.startswith(f"{root / 'test.json'} row 1: field 'question': not valid UTF-8: byte 0xff ")
    assert "Which side is the lesion\\xff" in msg and "\n" not in msg
    assert (e.value.row, e.value.field) == (1, "question")
    with pytest.warns(UserWarning, match=r"SKIPPED 1 row"):
        ds, rep = load_benchmark("slake", root, "test", on_error="skip", return_report=True)
    assert list(ds["id"]) == ["slake/test/30", "slake/test/32"]  # row 1 counted, not fatal
    assert rep.n_skipped == 1 and rep.skipped[0].row == 1 and rep.skipped[0].field == "question"
    assert rep.n_rows == rep.n_items + rep.n_skipped + sum(rep.filtered.values()) == 4


def test_undecodable_byte_in_the_training_file_keeps_it_out_of_the_distractor_pool(tmp_path):
    root = write_slake(tmp_path / "slake")
    _put_byte(root / "train.json", "Center")  # an answer of the training split: a distractor candidate
    ds = load_benchmark("slake", root, "test")  # the pool is read, the bad row left out of it
    opts = {o for r in ds for o in r["options"]}
    assert "right" in opts and not any("\udcff" in o or "center" in o for o in opts)
    with pytest.raises(DataError, match=r"train\.json row 4: field 'answer': not valid UTF-8: byte 0xff"):
        load_benchmark("slake", root, "train")


def test_undecodable_byte_outside_a_string_is_invalid_json_naming_the_file(tmp_path):
    root = write_slake(tmp_path / "slake")
    raw = (root / "test.json").read_bytes()
    (root / "test.json").write_bytes(raw[:1] + b"\xff" + raw[1:])
    for mode in ("raise", "skip"):
        with pytest.raises(DataError, match=r"test\.json: not valid JSON \(line 1, column 2\)"):
            load_benchmark("slake", root, "test", on_error=mode)


def test_undecodable_byte_in_triage_labels_names_file_and_line(tmp_path):
    from fixtures_data import write_triage

    from mmed.data import load_triage_images

    root = write_triage(tmp_path / "triage")
    labels = root / "fundus" / "labels.jsonl"
    _put_byte(labels, "images/f2")  # line 2: the image path
    with pytest.raises(DataError) as e:
        load_triage_images(root)
    msg = str(e.value)
    assert msg.startswith(f"{labels} row 2: field 'image': not valid UTF-8: byte 0xff ") and "\n" not in msg
    with pytest.warns(UserWarning, match=r"SKIPPED 1 row"):
        dd, rep = load_triage_images(root, on_error="skip", return_report=True)
    assert rep.n_skipped == 1 and rep.n_items == 12 and rep.skipped[0].row == 2
    assert sum(len(v) for v in dd.values()) == 12


@pytest.mark.parametrize("cut", [0.5, 0.0])
def test_truncated_parquet_names_the_file(tmp_path, cut):
    root = write_hub_vqa(tmp_path / "pathvqa", {"test": [(1, "Is this benign?", "yes"), (2, "What is shown?", "a")]})
    f = root / "data" / "test-00000-of-00001.parquet"
    raw = f.read_bytes()
    f.write_bytes(raw[: int(len(raw) * cut)])
    for mode in ("raise", "skip"):
        with pytest.raises(DataError) as e:
            load_benchmark("pathvqa", root, "test", layout="hub", on_error=mode)
        msg = str(e.value)
        assert msg.startswith(f"{f}: not a readable parquet file (") and "\n" not in msg


# ---------------------------------------------------------------------------------------
# 2. the row-error policy: CLI, profile (global and per entry), defaults per use
# ---------------------------------------------------------------------------------------
def _slake_with_an_empty_answer(root: Path) -> Path:
    """SLAKE whose train.json has a closed question with an empty answer (as the real one does),
    at row 6 (0-based), and whose validation split is in validate.json."""
    from fixtures_data import _slake

    bad = _slake(7, 1, "Does the picture contain liver?", "", "CLOSED", "X-Ray", "Chest", "Organ")
    write_slake(root, {"train": [*SLAKE["train"], bad], "validate": SLAKE["validation"], "test": SLAKE["test"]})
    return root


def _profile(**data):
    return load_profile("smoke", overrides={"data": {"synthetic": {"n_train": 0}, **data}})


def test_row_error_policy_precedence_and_profile_validation():
    from mmed.config import ProfileError
    from mmed.data.specs import ON_ERROR_DEFAULTS, row_error_policy

    assert ON_ERROR_DEFAULTS == {"train": "skip", "eval": "skip"}
    d = _profile().data
    assert row_error_policy(d, "slake:official", "train") == ("skip", "default for train")
    assert row_error_policy(d, "slake:official", "eval") == ("skip", "default for eval")
    d = _profile(on_error="raise", train_benchmarks=["slake:official", "vqa_rad:mevf"],
                 eval_benchmarks=["vqa_rad:mevf", "slake:official@validation"],
                 on_error_by_entry={"slake": "skip", "vqa_rad:mevf": "skip", "slake:official@validation": "raise"}).data
    assert row_error_policy(d, "pathvqa:hub", "eval") == ("raise", "data.on_error")
    assert row_error_policy(d, "slake:official", "train") == ("skip", "data.on_error_by_entry['slake']")
    assert row_error_policy(d, "slake:/some/path@train", "eval") == ("skip", "data.on_error_by_entry['slake']")
    assert row_error_policy(d, "slake:official@validation", "eval") == (
        "raise", "data.on_error_by_entry['slake:official@validation']")  # the entry as written wins over its name
    assert row_error_policy(d, "vqa_rad:mevf", "eval") == ("skip", "data.on_error_by_entry['vqa_rad:mevf']")
    assert row_error_policy(d, "vqa_rad:mevf", "eval", "raise") == ("raise", "--on-error")  # the command line wins
    with pytest.raises(ValueError, match="on_error must be one of"):
        row_error_policy(d, None, "eval", "ignore")
    with pytest.raises(ProfileError, match=r"key 'data\.on_error' is 'ignore'"):
        _profile(on_error="ignore")
    with pytest.raises(ProfileError, match=r"key 'data\.on_error_by_entry\.vqa_rad' is 'warn'"):
        _profile(on_error_by_entry={"vqa_rad": "warn"})
    with pytest.raises(ProfileError, match=r"'data\.on_error_by_entry\.slake' names no entry"):
        _profile(on_error_by_entry={"slake": "raise"})  # smoke reads vqa_rad only: a typo would be silent


def test_training_pool_skips_counts_and_reports_a_bad_row_by_default(tmp_path):
    _slake_with_an_empty_answer(tmp_path / "slake")
    prof = _profile(train_benchmarks=["slake:official"], eval_benchmarks=["slake:official@validation"])
    lines: list[str] = []
    with pytest.warns(UserWarning, match="SKIPPED 1 row"):
        pool = training_pool(prof, tmp_path, seed=0, log=lines.append)
    row = pool.info["by_benchmark"]["slake:official"]
    assert row["skipped_bad_rows"] == 1 and row["read"] == 5  # the 5 good English rows are items
    assert pool.info["skipped_bad_rows"] == 1 and pool.info["on_error"] == {"slake:official": "skip"}
    (reason,) = pool.info["skipped"]["slake:official"]
    assert reason.startswith(f"{tmp_path / 'slake' / 'train.json'} row 6 (id 'slake/train/7'): field 'answer': empty")
    assert pool.plan_record()["skipped_bad_rows"] == 1  # a training plan records it
    assert any("1 bad row(s) skipped (on_error=skip; first: " in ln and "field 'answer': empty" in ln for ln in lines)
    assert any("1 bad row(s) skipped, not read" in ln for ln in lines)  # the summary line too


@pytest.mark.parametrize("data", [{"on_error": "raise"}, {"on_error_by_entry": {"slake:official": "raise"}},
                                  {"on_error_by_entry": {"slake": "raise"}}])
def test_training_pool_raises_under_the_profiles_raise_policy(tmp_path, data):
    _slake_with_an_empty_answer(tmp_path / "slake")
    prof = _profile(train_benchmarks=["slake:official"], eval_benchmarks=["slake:official@validation"], **data)
    with pytest.raises(DataError, match=r"train\.json row 6 \(id 'slake/train/7'\): field 'answer': empty"):
        training_pool(prof, tmp_path, seed=0, log=lambda _m: None)
    # the argument (the command line's --on-error) overrides the profile
    with pytest.warns(UserWarning, match="SKIPPED 1 row"):
        pool = training_pool(prof, tmp_path, seed=0, log=lambda _m: None, on_error="skip")
    assert pool.info["skipped_bad_rows"] == 1


def test_a_clean_pool_records_the_plan_it_always_did(tmp_path):
    _slake_release(tmp_path / "slake")
    prof = _profile(train_benchmarks=["slake:official"], eval_benchmarks=["slake:official@validation"])
    pool = training_pool(prof, tmp_path, seed=0, log=lambda _m: None)
    assert "skipped_bad_rows" not in pool.plan_record() and "skipped_bad_rows" not in pool.info["by_benchmark"]["slake:official"]


def test_an_evaluation_that_drops_a_row_says_so_in_metrics_and_summary(tmp_path, capsys):
    from mmed.consult import consult
    from mmed.data.sets import load_items_with_report

    root = _slake_with_an_empty_answer(tmp_path / "slake")
    prof = _profile()
    spec = f"slake:{root}@train"
    with pytest.raises(DataError, match=r"train\.json row 6 \(id 'slake/train/7'\): field 'answer': empty"):
        load_items_with_report(prof, spec, on_error="raise")
    with pytest.warns(UserWarning, match="SKIPPED 1 row"):
        _, m = consult(prof, tmp_path / "run", data=spec, triage_mode="gold", decision="majority_vote", progress=False)
    assert m["dropped_bad_rows"] == 1 and m["load_report"]["n_skipped"] == 1
    assert m["load_report"]["on_error"] == "skip" and m["load_report"]["on_error_source"] == "default for eval"
    (w,) = m["warnings"]
    assert w.startswith("WARNING: slake split 'train': 1 bad row(s) of 7 DROPPED (on_error=skip, default for eval)")
    assert "field 'answer': empty" in w and "--on-error raise" in w
    assert w in capsys.readouterr().err
    saved = json.loads((tmp_path / "run" / "consult" / "slake_train" / "metrics.json").read_text())
    assert saved["dropped_bad_rows"] == 1 and saved["warnings"] == [w]
    # nothing dropped: the count is there, 0, and no warning
    _, m = consult(prof, tmp_path / "run", data=f"slake:{root}@test", triage_mode="gold", decision="majority_vote",
                   progress=False)
    assert m["dropped_bad_rows"] == 0 and "warnings" not in m


def test_cli_on_error(tmp_path, capsys, monkeypatch):
    from mmed.cli import main

    monkeypatch.delenv("MMED_DEBUG", raising=False)
    root = _slake_with_an_empty_answer(tmp_path / "slake")
    argv = ["consult", "--profile", "smoke", "--data", f"slake:{root}@train", "--triage", "gold",
            "--decision", "majority_vote", "--run-dir", str(tmp_path / "run")]
    assert main([*argv, "--on-error", "raise"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {root / 'train.json'} row 6 (id 'slake/train/7'): field 'answer': empty")
    assert len(err.splitlines()) == 2 and "Traceback" not in err  # the error line and the MMED_DEBUG hint
    with pytest.warns(UserWarning, match="SKIPPED 1 row"):
        assert main([*argv, "--on-error", "skip"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["dropped_bad_rows"] == 1  # in the printed summary
    assert err.rstrip().splitlines()[-1].startswith("WARNING: slake split 'train': 1 bad row(s) of 7 DROPPED "
                                                   "(on_error=skip, --on-error)")
    with pytest.raises(SystemExit):
        main([*argv, "--on-error", "ignore"])
    from mmed.cli import build_parser

    for cmd in ("train-attending", "train-triage"):
        assert build_parser().parse_args([cmd, "--on-error", "raise"]).on_error == "raise"


def test_evaluation_sets_warn_about_dropped_rows_and_return_the_reports(tmp_path, capsys):
    from mmed.data.sets import evaluation_sets

    root = _slake_with_an_empty_answer(tmp_path / "slake")
    (root / "test.json").write_bytes((root / "train.json").read_bytes())  # evaluate on the split with the bad row
    prof = _profile(eval_benchmarks=["slake:official"], eval_limit=None)
    reports: dict = {}
    with pytest.warns(UserWarning, match="SKIPPED 1 row"):
        sets = evaluation_sets(prof, tmp_path, reports=reports)
    assert reports["slake"]["n_skipped"] == 1 and len(sets["slake"]) == reports["slake"]["n_returned"]
    assert "WARNING: slake split 'test': 1 bad row(s) of 7 DROPPED" in capsys.readouterr().err
    prof = _profile(eval_benchmarks=["slake:official"], on_error_by_entry={"slake:official": "raise"})
    with pytest.raises(DataError, match=r"test\.json row 6 .*field 'answer': empty"):
        evaluation_sets(prof, tmp_path)
