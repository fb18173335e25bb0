"""Kill and resume: ``python -m mmed train-attending`` is SIGKILLed in the
middle of stage 2; running again skips stage 1 (untouched on disk), resumes stage 2 from its
last checkpoint and ends every stage at its configured global step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mmed.config import PROFILES_DIR, load_profile
from mmed.rl.cold_start import ensure_cold_start
from mmed.rl import curriculum as C
from mmed.rl.grpo import last_checkpoint, read_log
from mmed.runs import Run, repo_root

SEED = 0
#: stage 2 is long enough to be killed in its middle (a checkpoint every step)
STEPS = {"easy": 1, "medium": 3, "hard": 1}
N_HELDOUT = 6  # held-out items measured before/after each stage (few: speed)


def _profile_file(tmp: Path) -> Path:
    raw = yaml.safe_load((PROFILES_DIR / "smoke.yaml").read_text())
    raw["attending_grpo"]["save_steps"] = 1
    for st in raw["curriculum"]["stages"]:
        st["max_steps"] = STEPS[st["name"]]
    path = tmp / "smoke_resume.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _wait_for(pred, proc: subprocess.Popen, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while not pred():
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"train-attending exited ({proc.returncode}) before {what}:\n{out[-3000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def _stamps(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_sigkill_in_stage_2_then_rerun_resumes_it_and_skips_stage_1(tmp_path: Path):
    prof_path = _profile_file(tmp_path)
    prof = load_profile(prof_path)
    run_dir = tmp_path / "run"
    ensure_cold_start(Run.open(run_dir, profile=prof.name, seed=SEED), prof, "attending", SEED)  # in-process: faster
    vdir = run_dir / "attending" / "cmarl"
    s1, s2, s3 = (vdir / p.dir_name for p in C.plan_stages(prof))

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "mmed", "train-attending", "--profile", str(prof_path), "--run-dir", str(run_dir),
           "--seed", str(SEED), "--n-heldout", str(N_HELDOUT)]
    proc = subprocess.Popen(cmd, cwd=repo_root(), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(lambda: last_checkpoint(s2) is not None, proc, 300, "a stage-2 checkpoint")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    ck = last_checkpoint(s2)
    ck_step = int(ck.name.split("-")[1])
    assert not (s2 / "final").exists() and ck_step < STEPS["medium"], "killed too late: stage 2 had finished"
    assert json.loads((s1 / "stage_manifest.json").read_text())["status"] == "done"
    assert json.loads((s2 / "stage_manifest.json").read_text())["status"] == "running"
    assert not s3.exists()
    stage1 = _stamps(s1)

    res = C.train_curriculum(prof, run_dir, seed=SEED, heldout_split="test", n_heldout=N_HELDOUT,  # the CLI default
                             log=lambda m: None)

    assert res.trained == [s2.name, s3.name]  # stage 1 reused, not retrained
    assert _stamps(s1) == stage1  # not a byte of stage 1 rewritten
    man2 = json.loads((s2 / "stage_manifest.json").read_text())
    result2 = json.loads((s2 / "result.json").read_text())
    assert result2["resumed_from"] == man2["resumed_from"] == str(ck)
    assert man2["restarts"] == 1 and man2["status"] == "done"
    assert man2["init_adapters"] == str(s1 / "final")
    for d, name in ((s1, "easy"), (s2, "medium"), (s3, "hard")):
        state = json.loads((d / f"checkpoint-{STEPS[name]}" / "trainer_state.json").read_text())
        assert state["global_step"] == STEPS[name] == state["max_steps"]
        assert json.loads((d / "stage_manifest.json").read_text())["steps"] == STEPS[name]
    # every stage-2 step logged once: the steps after the checkpoint were trained again, not duplicated
    assert [r["step"] for r in read_log(s2 / "log_history.jsonl")] == list(range(1, STEPS["medium"] + 1))
    assert res.stages[1]["heldout"]["before"] == res.stages[0]["heldout"]["after"]
