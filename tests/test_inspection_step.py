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
