"""Notebook 07's step (:func:`mmed.inspection.inspection_step`) and ``python -m mmed inspect``:
the same records, cases and metrics; the page holds the summary and the cases."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mmed.checks import CHECKERS
from mmed.cli import main
from mmed.config import load_profile
from mmed.inspection import MAIN_SOURCE, TEACHING_CASES, inspection_step
from mmed.runs import Run

pytestmark = pytest.mark.usefixtures("smoke_torch_threads")
SMOKE = load_profile("smoke")


def test_inspect_command_and_notebook_call_agree(smoke_cold_run, tmp_path: Path, capsys):
    root = tmp_path / "run"
    shutil.copytree(smoke_cold_run.root, root)
    for made_by_other_tests in ("consult", "eval"):  # the session's run folder may hold their predictions
        shutil.rmtree(root / made_by_other_tests, ignore_errors=True)
    # no predictions yet: the step consults first, then opens what that wrote
    step = inspection_step(Run(root), SMOKE, 0, fallback_limit=6, log=None)
    assert step.fallback_consultation is True and step.source == MAIN_SOURCE
    assert step.metrics["n_records"] == 6 == len(step.inspector.records)
    assert list(step.cases) == list(TEACHING_CASES)
    for title, i in step.cases.items():
        if i is not None:
            assert step.metrics["cases_shown"][title] == step.inspector.records[i]["id"]
            assert step.inspector.records[i]["_source"] == MAIN_SOURCE
    hard = step.cases["first Hard case"]
    assert (hard is None) == (step.metrics["strata"].get("hard", 0) == 0)
    assert CHECKERS["07_disagreement_inspector"](step.metrics) == []

    page = tmp_path / "page.html"
    assert main(["inspect", "--profile", "smoke", "--run-dir", str(root), "--seed", "0", "--html", str(page)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["fallback_consultation"] is False  # the predictions are there now
    assert printed["cases_shown"] == step.metrics["cases_shown"] and printed["n_records"] == 6
    text = page.read_text()
    assert text.startswith("<!doctype html>") and "Disagreement inspector: 6 records" in text
    assert all(t in text for t in TEACHING_CASES)
    assert "The summary counts all 1 source(s) read (consult/synthetic_test)" in text  # what the summary pools
    with pytest.raises(ValueError, match="no predictions named 'nosuch'.*consult/synthetic_test"):
        inspection_step(Run(root), SMOKE, 0, predictions="nosuch", log=None)


def test_a_named_source_in_a_run_without_predictions_is_not_consulted_for(smoke_cold_run, tmp_path: Path):
    root = tmp_path / "run"
    shutil.copytree(smoke_cold_run.root, root)
    for made_by_other_tests in ("consult", "eval"):
        shutil.rmtree(root / made_by_other_tests, ignore_errors=True)
    with pytest.raises(FileNotFoundError, match="no consult/\\*/predictions.jsonl"):
        inspection_step(Run(root), SMOKE, 0, predictions="synthetic_test", log=None)
    assert not (root / "consult").exists()


def test_page_and_predictions_paths_fail_with_one_clear_line(tmp_path: Path):
    from types import SimpleNamespace

    from mmed.inspection import _predictions_file, write_page

    step = SimpleNamespace(page_html=lambda: "<!doctype html><p>x</p>")
    assert write_page(step, tmp_path / "a" / "b.html").read_text() == "<!doctype html><p>x</p>"  # parents made
    with pytest.raises(ValueError, match="is a folder: give a file name"):
        write_page(step, tmp_path)
    (tmp_path / "afile").write_text("")
    with pytest.raises(ValueError, match="a parent folder is a file"):
        write_page(step, tmp_path / "afile" / "p.html")
    run = Run.open(tmp_path / "run", profile="smoke", seed=0)
    f = run.path("consult", "x", mkdir=True) / "predictions.jsonl"
    f.write_text("")
    assert _predictions_file(run, "consult/x/predictions.jsonl") == f  # relative to the run folder
    assert _predictions_file(run, str(f)) == f and _predictions_file(run, "consult/x") is None  # a source name
    with pytest.raises(FileNotFoundError, match="predictions file nosuch/predictions.jsonl not found"):
        _predictions_file(run, "nosuch/predictions.jsonl")


def test_case_text_of_a_majority_vote_and_an_open_question():
    from mmed.consult import case_text

    rec = {"stratum": "easy", "id": "q1", "question": "Is there a mass?", "options": ["yes", "no"], "answer": "yes",
           "triage": {"specialty": "Radiologist", "valid": True}, "specialty": "Radiologist",
           "panel": [{"specialist_id": "Radiologist#1", "valid": True, "parsed": 0}], "attending": None}
    text = case_text(rec)
    assert text.splitlines()[-1] == "   attending: None -> correct=None" and "Radiologist#1" in text
