"""Notebook 02's step is one function: ``python -m mmed consult-step`` and the notebook's call
(:func:`mmed.consult.consultation_step`) give the same metrics on the same run folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mmed.checks import record_notebook_metrics
from mmed.cli import main
from mmed.config import load_profile
from mmed.consult import SYNTHETIC_SYSTEMS, VQA_RAD_SYSTEMS, case_text, consultation_step
from mmed.runs import Run

pytestmark = pytest.mark.usefixtures("smoke_torch_threads")


def test_cli_and_notebook_call_record_the_same_metrics(smoke_cold_run, shared_data: Path, tmp_path, capsys):
    root = tmp_path / "run"
    shutil.copytree(smoke_cold_run.root, root)
    argv = ["consult-step", "--profile", "smoke", "--run-dir", str(root), "--seed", "0",
            "--data-root", str(shared_data), "--limit", "6"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    cli = json.loads((root / "consult" / "consultation_step.json").read_text())
    assert printed["metrics"] == str(root / "consult" / "consultation_step.json") and printed["real_data"] is True
    assert set(cli["synthetic"]) == set(SYNTHETIC_SYSTEMS) and set(cli["vqa_rad"]) == set(VQA_RAD_SYSTEMS)  # keys sorted in the file
    assert printed["accuracy"]["vqa_rad"] == {k: round(v["accuracy"]["acc"], 3) for k, v in cli["vqa_rad"].items()}
    assert {v["items"] for v in cli["vqa_rad"].values()} == {6}
    assert cli["seed"] == 0 and cli["cold_start"]["triage"]["steps"] >= 1 and "pretrain" in cli  # the smoke base is the pre-trained tiny model

    # notebook 02's call with its parameters (eval_limit; the run's cold starts reused)
    step = consultation_step(Run(root), load_profile("smoke"), 0, data_root=shared_data, limit=6, log=None)
    strip = lambda m: {k: v for k, v in m.items() if k != "seconds"}  # noqa: E731 - the two calls' wall times
    assert strip(step.metrics) == strip(cli)
    assert record_notebook_metrics(root, "02_consultation_and_stratification", step.metrics).exists()  # its checker passes
    # the tables the notebook shows, from the same result
    syn = step.system_table("synthetic")
    assert list(syn["system"]) == list(SYNTHETIC_SYSTEMS)
    assert syn["accuracy"].tolist() == [m["accuracy"]["acc"] for _, m in step.synthetic.values()]
    assert set(step.cold_start_table()["agent"]) == {"triage", "attending"} and len(step.cold_start_table()) == 4
    assert set(step.pretrain_table()["when"]) == {"before", "after"}
    with pytest.raises(ValueError, match="dataset must be 'synthetic' or 'vqa_rad'"):
        step.system_table("slake")
    rec = step.synthetic["full pipeline"][0][0]
    text = case_text(rec)
    assert text.startswith(f"[{rec['stratum']}] {rec['id']}") and repr(rec["attending"]["raw"]) in text
    assert len(text.splitlines()) == 3 + len(rec["panel"])


def test_without_real_data_the_step_is_synthetic_only(smoke_cold_run, tmp_path, monkeypatch):
    import mmed.runs

    root = tmp_path / "run"
    shutil.copytree(smoke_cold_run.root, root)
    monkeypatch.setattr(mmed.runs, "resolve_data_root", lambda data_root=None: None)
    step = consultation_step(Run(root), load_profile("smoke"), 0, log=None)
    assert step.vqa_rad is None and step.metrics["real_data"] is False and "vqa_rad" not in step.metrics
    assert step.system_table("vqa_rad").empty
    assert record_notebook_metrics(root, "02_consultation_and_stratification", step.metrics).exists()


def test_consult_step_refuses_a_bad_limit_or_data_root_before_making_the_run(tmp_path, capsys):
    for extra, message in ((["--limit", "0"], "--limit must be a positive number of items, got 0"),
                           (["--data-root", str(tmp_path / "nosuch")], "nosuch")):
        assert main(["consult-step", "--profile", "smoke", "--run-dir", str(tmp_path / "run"), *extra]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "run").exists()


def test_the_step_without_cold_starts(tmp_path, monkeypatch):
    """A profile that disables the cold starts (as `paper` does) consults its base agents:
    the reports are None and the step still records its metrics."""
    import mmed.runs

    monkeypatch.setattr(mmed.runs, "resolve_data_root", lambda data_root=None: None)
    prof = load_profile("smoke", overrides={"cold_start": {"enabled": False}})
    step = consultation_step(Run.open(tmp_path / "run", profile="smoke"), prof, 0, log=None)
    assert step.cold_starts == {"triage": None, "attending": None}
    assert set(step.synthetic) == set(SYNTHETIC_SYSTEMS) and step.vqa_rad is None
    assert not (tmp_path / "run" / "attending" / "sft").exists()
    assert json.loads((tmp_path / "run" / "consult" / "consultation_step.json").read_text())["seed"] == 0
