"""Real benchmark files as they really are (issue 12, items 1-3 and 6): SLAKE 1.0's
``validate.json``, the row-error policy, undecodable bytes, truncated parquet files and empty
splits. Every fixture is written into ``tmp_path``; no real data file is read."""

from __future__ import annotations

import pytest
from fixtures_data import SLAKE, write_slake

from mmed.config import load_profile
from mmed.data import load_benchmark
from mmed.data.loaders import detect_layout
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
