"""The C-MARL step is one function: ``python -m mmed train-attending`` and notebook 04's call
(:func:`mmed.eval.replicates.curriculum_step`) give the same metrics on the same run folder."""

from __future__ import annotations

import json
import shutil

import pytest

from mmed.cli import main
from mmed.config import load_profile
from mmed.eval.replicates import curriculum_step
from mmed.runs import Run

pytestmark = pytest.mark.usefixtures("smoke_torch_threads")

#: what differs between two calls on a finished run: their wall times
TIMES = ("seconds", "train_seconds")


def test_cli_and_notebook_call_record_the_same_metrics(smoke_attending_cold, tmp_path, capsys):
    root = tmp_path / "run"
    shutil.copytree(smoke_attending_cold, root)
    assert main(["train-attending", "--profile", "smoke", "--run-dir", str(root), "--seed", "0",
                 "--variants", "no_entropy", "--seeds", "[0]", "--seed-variants", "cmarl", "no_entropy"]) == 0
    printed = json.loads(capsys.readouterr().out)
    cli = json.loads((root / "attending" / "curriculum_step.json").read_text())
    assert printed["metrics"] == str(root / "attending" / "curriculum_step.json")
    assert printed["variants"] == cli["variants"] == ["cmarl", "no_entropy"] and printed["seeds"] == [0]
    assert printed["accuracy_all"] == {k: round(v["all"]["acc"], 3) for k, v in cli["systems"].items()}

    # notebook 04's call with its parameters (variants, seeds, seed_variants; split and items by default)
    step = curriculum_step(Run(root), load_profile("smoke"), 0, variants=["no_entropy"], seeds="[0]",
                           seed_variants=["cmarl", "no_entropy"], log=None)
    nb = step.metrics
    assert {k: v for k, v in nb.items() if k not in TIMES} == {k: v for k, v in cli.items() if k not in TIMES}
    assert list(step.results) == ["cmarl", "no_entropy"] and step.heldout_split == "test" == cli["heldout_split"]
    assert not any(r.trained for r in step.results.values())  # the command's trainings, reused
    assert set(step.seed_table["system"]) == {"start", "cmarl", "no_entropy"}
    assert "C-MARL vs C-MARL without entropy bonus" in set(step.seed_claims["claim"])
    assert nb["seed_replicates"]["variants"] == ["cmarl", "no_entropy"] and len(nb["plans"]["cmarl"]) == 3


def test_a_bad_variant_or_held_out_size_fails_before_any_training(tmp_path):
    prof = load_profile("smoke")
    run = Run.open(tmp_path / "run", profile="smoke", seed=0)
    with pytest.raises(Exception, match="nosuch"):
        curriculum_step(run, prof, 0, variants=["nosuch"], seeds=[0], seed_variants=["cmarl"], log=None)
    with pytest.raises(ValueError, match="n_heldout must be a positive"):
        curriculum_step(run, prof, 0, variants=[], seeds=[0], seed_variants=["cmarl"], n_heldout=0, log=None)
    assert not (tmp_path / "run" / "attending").exists()
