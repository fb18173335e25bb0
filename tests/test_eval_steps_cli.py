"""Notebooks 05 and 06 and their commands are one function each: ``python -m mmed ablations``
and ``python -m mmed test-time-scaling`` write the metrics the notebooks' calls
(:func:`mmed.eval.ablations.ablations_step`, :func:`mmed.eval.tts.tts_step`) build, on the same
run folder and evaluation sets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mmed.checks import CHECKERS
from mmed.cli import main
from mmed.config import load_profile
from mmed.data.sets import evaluation_sets
from mmed.eval.ablations import ablations_step
from mmed.eval.tts import TTS_NOTEBOOK, tts_step
from mmed.runs import Run

pytestmark = pytest.mark.usefixtures("smoke_torch_threads")
SMOKE = load_profile("smoke")


@pytest.fixture()
def run_copy(smoke_cold_run, tmp_path) -> Path:
    root = tmp_path / "run"
    shutil.copytree(smoke_cold_run.root, root)
    return root


def _cli(argv: list[str], capsys) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_ablations_command_and_notebook_call_record_the_same_metrics(run_copy: Path, shared_data: Path, capsys):
    args = ["--profile", "smoke", "--run-dir", str(run_copy), "--seed", "0", "--data-root", str(shared_data), "--limit", "4"]
    printed = _cli(["ablations", *args], capsys)
    written = json.loads((run_copy / "eval" / "ablations" / "step.json").read_text())
    assert printed["metrics"] == str(run_copy / "eval" / "ablations" / "step.json")
    assert printed["n_items"] == written["n_items"] == {"synthetic": SMOKE.data.synthetic.n_eval, "vqa_rad": 4}
    full = next(r for r in written["rows"] if r["dataset"] == "vqa_rad" and r["system"] == "full system")
    assert printed["accuracy"]["vqa_rad"]["full system"] == round(full["acc"], 3)
    assert len(printed["claims"]) == len(written["claims"])
    # rows the run cannot measure (no curriculum trained here) are named with their reason
    assert "+ Easy" in printed["not_measured"]["synthetic"] and printed["not_measured"]["synthetic"]["+ Easy"]
    assert not set(printed["not_measured"]["synthetic"]) & set(printed["accuracy"]["synthetic"])
    step = ablations_step(Run(run_copy), SMOKE, evaluation_sets(SMOKE, shared_data, limit=4), seed=0)
    assert step.metrics == written
    assert CHECKERS["05_ablations"](written) == []


def test_test_time_scaling_command_and_notebook_call_record_the_same_metrics(run_copy: Path, shared_data: Path, capsys):
    args = ["--profile", "smoke", "--run-dir", str(run_copy), "--seed", "0", "--data-root", str(shared_data), "--limit", "4"]
    printed = _cli(["test-time-scaling", *args], capsys)
    written = json.loads((run_copy / "eval" / "tts" / "step.json").read_text())
    assert printed["n_samples"] == written["n_samples"] == SMOKE.tts.n_samples and written["real_data"] is True
    assert len(printed["curve"]) == len(written["curve"]) > 0
    step = tts_step(Run(run_copy), SMOKE, evaluation_sets(SMOKE, shared_data, limit=4), seed=0, real_data=True)
    assert step.metrics == written
    assert CHECKERS[TTS_NOTEBOOK](written) == []
