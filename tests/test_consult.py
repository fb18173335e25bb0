"""consult(): cold start + pipeline from a profile, files in the run folder (smoke scale)."""

from __future__ import annotations

import json

from mmed.agents.build import policy_source
from mmed.config import load_profile
from mmed.consult import consult, parse_data_spec
from mmed.runs import Run


def test_consult_smoke_writes_predictions_metrics_and_reuses_cold_start(tmp_path):
    run_dir = tmp_path / "run"
    recs, m = consult("smoke", run_dir, data="synthetic", split="test", limit=8, progress=False)
    out = run_dir / "consult" / "synthetic_test"
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 8 == m["items"] == len(recs)
    rec = json.loads(lines[0])
    for key in ("id", "dataset", "split", "image_ref", "question", "options", "answer_idx", "answer_type", "specialty",
                "triage", "panel", "s", "stratum", "agreement", "attending", "correct", "profile", "variant", "seed"):
        assert key in rec, key
    assert len(rec["panel"]) == 3 and all(op["simulated"] for op in rec["panel"])
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["accuracy"]["n"] == 8 and saved["accuracy"]["lo"] <= saved["accuracy"]["acc"] <= saved["accuracy"]["hi"]
    assert sum(saved["strata"].values()) == 8
    run = Run(run_dir)
    man = run.manifest
    assert man["steps"]["cold_start/triage"]["status"] == "done"
    assert man["steps"]["consult/synthetic_test"]["status"] == "done"
    assert man["simulated_panel"]["consensus_error_rate"] == load_profile("smoke").specialists.simulated.consensus_error_rate
    rep = json.loads((run_dir / "triage" / "sft" / "cold_start.json").read_text())
    assert rep["steps"] == load_profile("smoke").cold_start.max_steps and rep["before"]["n"] > 0
    assert policy_source(run, load_profile("smoke"), "triage").label == "sft"
    # a second consultation reuses the cold start (no new cold-start step run)
    mtime = (run_dir / "triage" / "sft" / "cold_start.json").stat().st_mtime
    consult("smoke", run_dir, data="synthetic", split="test", limit=4, decision="majority_vote",
            triage_mode="fixed", fixed_specialty="Radiologist", out_name="mv", progress=False)
    assert (run_dir / "triage" / "sft" / "cold_start.json").stat().st_mtime == mtime
    mv = [json.loads(x) for x in (run_dir / "consult" / "mv" / "predictions.jsonl").read_text().splitlines()]
    assert {r["triage"]["specialty"] for r in mv} == {"Radiologist"}


def test_parse_data_spec(tmp_path):
    assert parse_data_spec("synthetic", None) == ("synthetic", None, None)
    assert parse_data_spec("vqa_rad:mevf", tmp_path) == ("vqa_rad", str(tmp_path / "vqa_rad"), "mevf")
    assert parse_data_spec("vqa_rad:/x/y", None) == ("vqa_rad", "/x/y", None)


def test_consult_rejects_an_untrained_variant_instead_of_using_the_cold_start(tmp_path):
    import pytest

    # a variant of the profile that this run has not trained: "latest" would silently be the cold start
    with pytest.raises(FileNotFoundError, match="variant 'no_curriculum' has no trained stages"):
        consult("smoke", tmp_path / "run", data="synthetic", split="test", limit=2, variant="no_curriculum", progress=False)
    with pytest.raises(ValueError, match="unknown variant 'nosuch'"):
        consult("smoke", tmp_path / "run2", data="synthetic", limit=2, variant="nosuch", progress=False)
    assert not (tmp_path / "run2").exists()


def test_load_items_rejects_empty_limits_and_unknown_synthetic_splits():
    import pytest

    from mmed.consult import load_items, synthetic_split

    prof = load_profile("smoke")
    for bad in (0, -3):
        with pytest.raises(ValueError, match="limit must be a positive"):
            load_items(prof, "synthetic", "test", limit=bad)
    with pytest.raises(ValueError, match="unknown split 'tset'"):
        synthetic_split(prof, "tset")
    assert len(load_items(prof, "synthetic", "test", limit=3)) == 3


def test_configured_triage_fallback_reaches_the_triage_doctor(tmp_path):
    # the untrained tiny base model (no cold start) writes no valid <answer>: every case falls back
    prof = load_profile("smoke", overrides={"cold_start": {"enabled": False}, "triage": {"fallback": "Pathologist"}})
    recs, m = consult(prof, tmp_path / "run", data="synthetic", split="test", limit=6, decision="majority_vote",
                      progress=False)
    fell = [r for r in recs if r["triage"]["fallback"]]
    assert len(fell) >= 3 and m["triage_fallbacks"] == len(fell)
    assert {r["triage"]["specialty"] for r in fell} == {"Pathologist"}
    assert m["weights"]["triage"]["fallback"] == "Pathologist"
    saved = json.loads((tmp_path / "run" / "consult" / "synthetic_test" / "metrics.json").read_text())
    assert saved["weights"]["triage"]["fallback"] == "Pathologist"
    assert Run(tmp_path / "run").manifest["triage_fallback"] == "Pathologist"
