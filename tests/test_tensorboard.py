"""TensorBoard event files of every training: transformers' own
``report_to="tensorboard"`` writes into ``runs/<id>/tensorboard/<name>/``, read back here with
TensorBoard's event reader (``EventAccumulator``, through :func:`read_scalars`) and compared
with the values the trainings record themselves (``log_history.jsonl``, ``cold_start.json``,
``pretrain.json``).

The smoke trainings are the session fixtures of ``conftest.py`` (the cold-started attending and
its C-MARL curriculum) plus one two-step triage GRPO run in an empty working directory.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from mmed.config import load_profile
from mmed.rl import triage as T
from mmed.rl.grpo import read_log
from mmed.rl.tensorboard_logs import (
    EVENT_FILE_PREFIX,
    TENSORBOARD_ENV,
    clear_event_files,
    event_files,
    read_scalars,
    tensorboard_logging_dir,
    training_name,
)
from mmed.runs import Run

pytestmark = pytest.mark.usefixtures("smoke_torch_threads")

CMARL_STAGES = ["attending_cmarl_seed0_stage1_easy_gamma0", "attending_cmarl_seed0_stage2_medium_gamma0.01",
                "attending_cmarl_seed0_stage3_hard_gamma0.05"]


def _values(scalars: dict, tag: str) -> list[tuple[int, float]]:
    assert tag in scalars, f"{tag} not among {sorted(scalars)}"
    return scalars[tag]


def _approx(pairs: list[tuple[int, float]]):
    return [(s, pytest.approx(v, rel=1e-5, abs=1e-7)) for s, v in pairs]  # event files hold float32


# ----------------------------------------------------------------------------------------
# names, folders, the environment variable
# ----------------------------------------------------------------------------------------
def test_training_names_carry_stage_gamma_and_seed():
    assert training_name("triage_grpo", 0) == "triage_grpo_seed0"
    assert training_name("cold_start_attending", 3) == "cold_start_attending_seed3"
    assert training_name("attending_cmarl", 1, stage_index=2, stage="medium", gamma=0.01) == \
        "attending_cmarl_seed1_stage2_medium_gamma0.01"
    assert training_name("attending_adaptive_entropy", 0, stage_index=3, stage="hard", gamma=0.05, entropy_target=1.0) == \
        "attending_adaptive_entropy_seed0_stage3_hard_gamma0.05_target1"
    assert training_name("attending_cmarl", 0, stage_index=1, stage="easy", gamma=0.0) == CMARL_STAGES[0]
    with pytest.raises(ValueError, match="one folder name"):
        training_name("a/b", 0)
    with pytest.raises(ValueError, match="stage_index and stage"):
        training_name("attending_cmarl", 0, stage="easy")


def test_a_seed_replicate_writes_into_its_main_runs_tensorboard_folder(tmp_path: Path):
    main = Run.open(tmp_path / "demo", profile="smoke", seed=0)
    rep = Run.open(main.path("seeds", "seed_1"), profile="smoke", seed=1)
    assert main.tensorboard_dir("triage_grpo_seed0") == tmp_path / "demo" / "tensorboard" / "triage_grpo_seed0"
    assert rep.tensorboard_dir("triage_grpo_seed1") == tmp_path / "demo" / "tensorboard" / "triage_grpo_seed1"
    # a folder named seeds/ that is not inside a run is a run of its own
    alone = Run.open(tmp_path / "seeds" / "x", profile="smoke")
    assert alone.tensorboard_root == tmp_path / "seeds" / "x" / "tensorboard"
    with pytest.raises(ValueError, match="one folder name"):
        main.tensorboard_dir("../elsewhere")


def test_logging_dir_is_set_for_the_block_only_and_fresh_clears_old_events(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(TENSORBOARD_ENV, "/somewhere/else")
    d = tmp_path / "tb"
    d.mkdir()
    (d / f"{EVENT_FILE_PREFIX}1.host.1.0").write_bytes(b"x")
    (d / "notes.txt").write_text("kept")
    with tensorboard_logging_dir(d) as p:
        assert os.environ[TENSORBOARD_ENV] == str(d) and p == d
    assert os.environ[TENSORBOARD_ENV] == "/somewhere/else" and len(event_files(d)) == 1
    monkeypatch.delenv(TENSORBOARD_ENV)
    with pytest.raises(RuntimeError):
        with tensorboard_logging_dir(d, fresh=True):
            assert event_files(d) == []
            raise RuntimeError("trainer failed")
    assert TENSORBOARD_ENV not in os.environ
    assert (d / "notes.txt").read_text() == "kept" and clear_event_files(d) == 0
    with pytest.raises(FileNotFoundError, match="no TensorBoard event file"):
        read_scalars(d)


# ----------------------------------------------------------------------------------------
# the smoke trainings' event files
# ----------------------------------------------------------------------------------------
def test_curriculum_stages_log_reward_and_entropy_to_tensorboard(smoke_curriculum):
    root, _ = smoke_curriculum
    tb = root / "tensorboard"
    stage_dirs = sorted((root / "attending" / "cmarl").glob("stage_*"), key=lambda p: int(p.name.split("_")[1]))
    assert [d.name for d in stage_dirs] == ["stage_1_easy", "stage_2_medium", "stage_3_hard"]
    for name, sdir in zip(CMARL_STAGES, stage_dirs):
        assert len(event_files(tb / name)) == 1, name
        sc = read_scalars(tb / name)
        log = read_log(sdir / "log_history.jsonl")
        assert len(log) == 1  # one step per smoke stage
        for key in ("reward", "entropy", "reward_std", "frac_reward_zero_std"):
            assert _values(sc, f"train/{key}") == _approx([(r["step"], r[key]) for r in log]), (name, key)
        assert 0.0 <= sc["train/reward"][0][1] <= 1.5  # R_format (0/0.5) + R_accuracy (0/1)
        assert sc["train/entropy"][0][1] > 0
        assert not (sdir / "tensorboard").exists()  # the run's tensorboard/ folder, not the stage's


def test_cold_start_and_pretraining_log_their_losses(smoke_curriculum):
    root, _ = smoke_curriculum
    tb = root / "tensorboard"
    # ensure_cold_start trains the attending and its synthetic image-only reference (the real
    # one only ensure_cold_starts trains: notebook 02)
    for name, report in (("cold_start_attending_seed0", root / "attending" / "sft" / "cold_start.json"),
                         ("cold_start_attending_image_only_seed0", root / "attending" / "image_only" / "cold_start.json")):
        rep = json.loads(report.read_text())
        loss = _values(read_scalars(tb / name), "train/loss")
        assert [s for s, _ in loss] == list(range(1, rep["steps"] + 1))  # logging_steps 1
        assert (loss[0][1], loss[-1][1]) == (pytest.approx(rep["loss_first"], rel=1e-5),
                                             pytest.approx(rep["loss_last"], rel=1e-5))
    pre = json.loads((root / "models" / "base" / "pretrain.json").read_text())
    for phase in ("vision", "answers"):
        loss = _values(read_scalars(tb / f"pretrain_{phase}_seed0"), "train/loss")
        assert len(loss) == pre[phase]["steps"]  # smoke: 8 steps, logging every step
        assert (loss[0][1], loss[-1][1]) == (pytest.approx(pre[phase]["loss_first"], rel=1e-5),
                                             pytest.approx(pre[phase]["loss_last"], rel=1e-5))
    assert sorted(p.name for p in tb.iterdir()) == sorted(
        ["pretrain_vision_seed0", "pretrain_answers_seed0", "cold_start_attending_seed0",
         "cold_start_attending_image_only_seed0", *CMARL_STAGES])
    # model folders hold no event files, and nothing wrote transformers' default <output_dir>/runs/
    assert [p for p in root.rglob(EVENT_FILE_PREFIX + "*") if tb not in p.parents] == []
    assert list(root.rglob("runs")) == []


def test_triage_grpo_logs_to_the_run_and_nothing_to_the_working_directory(smoke_cold_run, tmp_path: Path, monkeypatch):
    src = smoke_cold_run.root
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv(TENSORBOARD_ENV, raising=False)
    run = Run.open(dst, profile="smoke", seed=0)
    prof = load_profile("smoke", overrides={"triage_grpo": {"max_steps": 2}})
    tr = T.train_triage(prof, run, seed=0, real_train=False)
    assert tr.result.steps == 2
    sc = read_scalars(dst / "tensorboard" / "triage_grpo_seed0")
    log = read_log(tr.out_dir / "log_history.jsonl")
    for key in ("reward", "entropy", "rewards/format_reward/mean", "rewards/triage_accuracy_reward/mean"):
        assert _values(sc, f"train/{key}") == _approx([(r["step"], r[key]) for r in log]), key
    assert [s for s, _ in sc["train/reward"]] == [1, 2]
    assert list(cwd.iterdir()) == []  # no ./runs of the working directory
    assert [p for p in dst.rglob(EVENT_FILE_PREFIX + "*") if (dst / "tensorboard") not in p.parents] == []
    assert TENSORBOARD_ENV not in os.environ
