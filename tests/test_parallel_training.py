"""Independent trainings in worker processes (mmed.rl.replicates.train_curricula): the same
results as one after another, and the run manifest keeps every job's updates."""

from __future__ import annotations

import json
import shutil

import pytest

from mmed.config import load_profile
from mmed.rl import curriculum as C
from mmed.rl import replicates as R
from mmed.runs import Run


def _answers(root, seeds):
    out = {}
    for s in seeds:
        run = Run.open(root if s == 0 else root / "seeds" / f"seed_{s}")
        for man in C.load_stage_manifests(run, None):
            out[(s, man["dir"])] = [r["raw"] for r in C.heldout_predictions(run, None, man["dir"], "validation")]
    return out


def test_parallel_training_equals_sequential(smoke_attending_cold, tmp_path, capfd):
    prof = load_profile("smoke")
    a, b = tmp_path / "seq", tmp_path / "par"
    shutil.copytree(smoke_attending_cold, a)
    shutil.copytree(smoke_attending_cold, b)
    seq = R.train_curricula(Run.open(a), prof, [0, 1], 0, [None], "validation", workers=1, log=None)
    capfd.readouterr()
    par = R.train_curricula(Run.open(b), prof, [0, 1], 0, [None], "validation", workers=2, log=None)
    # the workers quiet their libraries as a notebook kernel does (their output reaches the
    # notebook and the runner's terminal): no model-loading bars, no bitsandbytes import warning
    workers_said = "".join(capfd.readouterr())
    assert "Loading weights" not in workers_said and "kernels-community" not in workers_said, workers_said[-2000:]
    assert set(seq) == set(par) == {(0, "cmarl"), (1, "cmarl")}
    sa, sb = _answers(a, [0, 1]), _answers(b, [0, 1])
    assert len(sa) == 2 * len(prof.curriculum.stages) and sa == sb  # identical held-out completions
    man = json.loads((b / "manifest.json").read_text())
    assert all(man["steps"][f"attending/cmarl/{m['dir']}"]["status"] == "done" for m in C.load_stage_manifests(Run.open(b), None))
    # every stage of both seeds, trained in two worker processes, wrote its own TensorBoard folder in the main run
    for root in (a, b):
        tb = sorted(p.name for p in (root / "tensorboard").glob("attending_cmarl_*"))
        assert tb == [f"attending_cmarl_seed{s}_stage{st.index}_{st.name}_gamma{st.entropy_coef:g}"
                      for s in (0, 1) for st in C.plan_stages(prof)]
        assert all(len(list((root / "tensorboard" / n).glob("events.out.tfevents.*"))) == 1 for n in tb)
        assert not (root / "seeds" / "seed_1" / "tensorboard").exists()


def test_a_failing_job_names_its_variant_and_seed(smoke_attending_cold, tmp_path):
    prof = load_profile("smoke")
    root = tmp_path / "bad"
    shutil.copytree(smoke_attending_cold, root)
    # a plan written for other data makes train_curriculum refuse the run folder
    bad = root / "seeds" / "seed_1" / "attending" / "cmarl"
    bad.mkdir(parents=True)
    (bad / "plan.json").write_text(json.dumps({"not": "this plan"}))
    with pytest.raises(RuntimeError, match=r"variant 'cmarl' with seed 1 .*another plan"):
        R.train_curricula(Run.open(root), prof, [0, 1], 0, [None], "validation", workers=2, log=None)
