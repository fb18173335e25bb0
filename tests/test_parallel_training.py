"""Independent trainings in worker processes (mmed.eval.replicates.train_curricula): the same
results as one after another, and the run manifest keeps every job's updates."""

from __future__ import annotations

import json
import shutil

import pytest

from mmed.config import load_profile
from mmed.rl import curriculum as C
from mmed.eval import replicates as R
from mmed.parallel import shutdown_pools
from mmed.runs import Run, resolve_data_root


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
    shutdown_pools()  # fresh workers: their output goes to this test's captured streams
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


def test_run_jobs_returns_results_in_job_order_and_names_a_failing_job():
    from mmed.parallel import Job, run_jobs, worker_count

    prof = load_profile("smoke")
    jobs = [Job("two to the fifth", pow, (2, 5)), Job("three squared", pow, (3, 2)), Job("seven", int, ("7",))]
    assert run_jobs(jobs, prof, workers=2, log=None) == [32, 9, 7] == run_jobs(jobs, prof, workers=1, log=None)
    with pytest.raises(RuntimeError, match=r"^reading 'x' failed: ValueError: invalid literal for int"):
        run_jobs([Job("two", pow, (2, 1)), Job("reading 'x'", int, ("x",))], prof, workers=2, log=None)
    # the pool is kept between steps (a worker's start costs seconds) and stopped after a failure
    import os

    first = set(run_jobs([Job(f"pid {i}", os.getpid) for i in range(4)], prof, workers=2, log=None))
    again = set(run_jobs([Job(f"pid {i}", os.getpid) for i in range(4)], prof, workers=2, log=None))
    assert os.getpid() not in first and again <= first and 1 <= len(first) <= 2
    with pytest.raises(RuntimeError, match="failed"):
        run_jobs([Job("two", pow, (2, 1)), Job("bad", int, ("x",))], prof, workers=2, log=None)
    assert not set(run_jobs([Job("pid", os.getpid)] * 2, prof, workers=2, log=None)) & first
    assert shutdown_pools() >= 1 and shutdown_pools() == 0
    with pytest.raises(ValueError, match="invalid literal"):  # in this process the job's own error propagates
        run_jobs([Job("reading 'x'", int, ("x",))], prof, workers=1, log=None)
    assert worker_count(prof, 3, 8) == 3 and worker_count(prof, 0, None) == 1 and worker_count(prof, 5, 2) == 2
    with pytest.raises(ValueError, match="workers must be >= 1"):
        worker_count(prof, 3, 0)


def _cold_start_files(root):
    """The trained weights (bytes) and the after-training measurement of every cold start."""
    out = {}
    for parts in (("triage", "sft"), ("attending", "sft"), ("attending", "image_only"), ("attending", "image_only_real")):
        d = root.joinpath(*parts)
        if parts[-1] == "image_only_real" and resolve_data_root(None) is None:
            continue  # trained with real data only
        rep = json.loads((d / "cold_start.json").read_text())
        weights = sorted(p for p in d.rglob("*.safetensors") if "trainer" not in p.parts)
        assert weights, f"no weights in {d}"
        out[parts] = (rep["after"], [w.read_bytes() for w in weights])
    return out


def test_cold_starts_in_workers_equal_one_after_another(smoke_torch_threads, tmp_path, capfd, monkeypatch):
    """notebook 02's three independent cold starts (triage, attending, image-only reference)
    trained in two worker processes give the weights trained one after another here with the
    same thread count (each of 2 workers gets half the cores: MMED_CORES_PER_PROCESS; a
    different count changes the float sums' order, hence the last bits of the weights)."""
    from mmed.config import CORES_PER_PROCESS_ENV, cores_for_this_process
    from mmed.rl.cold_start import ensure_cold_starts
    from mmed.parallel import usable_cores

    prof = load_profile("smoke")
    share = max(1, usable_cores() // 2)
    with monkeypatch.context() as m:
        m.setenv(CORES_PER_PROCESS_ENV, str(share))
        assert cores_for_this_process() == share
        seq = ensure_cold_starts(Run.open(tmp_path / "seq", profile="smoke", seed=0), prof, 0, workers=1, log=None)
    capfd.readouterr()
    lines = []
    from mmed.progress import board

    done_before = len(board().finished)
    shutdown_pools()  # fresh workers: their output goes to this test's captured streams
    par = ensure_cold_starts(Run.open(tmp_path / "par", profile="smoke", seed=0), prof, 0, workers=2, log=lines.append)
    real = resolve_data_root(None) is not None  # smoke names a real cold-start pool: its own image-only reference
    # longest first (as measured in the demo): the real reference, the attending, the synthetic reference, the triage
    assert lines == [f"{4 if real else 3} cold starts in 2 worker process(es): "
                     + ("attending image-only reference (real), " if real else "")
                     + "attending cold start, attending image-only reference, triage cold start"]
    # each worker's training reported its steps to this process, which drew one bar per training
    ended = sorted(line.split(":")[0] for line in board().finished[done_before:])
    assert ended == [*(["cold_start_attending_image_only_real_seed0"] * real), "cold_start_attending_image_only_seed0",
                     "cold_start_attending_seed0", "cold_start_triage_seed0"]
    steps = {line.split(":")[0]: int(line.split(": ")[1].split(" steps")[0]) for line in board().finished[done_before:]}
    assert steps["cold_start_triage_seed0"] == par["triage"]["steps"] > 0
    assert steps["cold_start_attending_seed0"] == par["attending"]["steps"] == steps["cold_start_attending_image_only_seed0"]
    assert "Loading weights" not in "".join(capfd.readouterr())
    assert set(seq) == set(par) == {"triage", "attending"}
    assert _cold_start_files(tmp_path / "seq") == _cold_start_files(tmp_path / "par")
    # a finished run trains nothing again
    lines.clear()
    again = ensure_cold_starts(Run.open(tmp_path / "par"), prof, 0, workers=2, log=lines.append)
    assert lines == [] and again["attending"]["after"] == par["attending"]["after"]
    # meanwhile: called with the agents' reports once their cold starts are done, the image-only
    # reference possibly still training (notebook 02 consults then); the same reports after
    shutil.rmtree(tmp_path / "par" / "attending" / "image_only")
    seen = {}

    def meanwhile(reports):
        seen.update(reports)
        assert (tmp_path / "par" / "attending" / "sft" / "cold_start.json").exists()
        return "consulted"

    with_meanwhile, extra = ensure_cold_starts(Run.open(tmp_path / "par"), prof, 0, workers=2, log=lines.append,
                                               meanwhile=meanwhile)
    assert extra == "consulted" and set(seen) == {"triage", "attending"}
    assert lines == ["1 cold starts in this process, one after another: attending image-only reference"]
    assert with_meanwhile["attending"]["after"] == seen["attending"]["after"] == par["attending"]["after"]
    assert _cold_start_files(tmp_path / "seq") == _cold_start_files(tmp_path / "par")  # retrained: the same weights
    # a meanwhile that fails stops the cold starts still training: its own error, no worker left
    import multiprocessing
    import time

    shutil.rmtree(tmp_path / "par" / "attending" / "image_only")
    shutil.rmtree(tmp_path / "par" / "triage" / "sft")

    def fails(reports):
        raise ValueError("the consultation failed")

    with pytest.raises(ValueError, match="the consultation failed"):
        ensure_cold_starts(Run.open(tmp_path / "par"), prof, 0, workers=2, log=None, meanwhile=fails)
    assert (tmp_path / "par" / "triage" / "sft" / "cold_start.json").exists()  # waited for before meanwhile
    deadline = time.perf_counter() + 10
    while multiprocessing.active_children() and time.perf_counter() < deadline:
        time.sleep(0.2)
    assert multiprocessing.active_children() == []
    # a profile without cold starts calls meanwhile with no reports
    off = load_profile("smoke", overrides={"cold_start": {"enabled": False}})
    assert ensure_cold_starts(Run.open(tmp_path / "off", profile="smoke"), off, 0, meanwhile=sorted) \
        == ({"triage": None, "attending": None}, ["attending", "triage"])
    with pytest.raises(ValueError, match=r"unknown agent\(s\) \['specialist'\]"):
        ensure_cold_starts(Run.open(tmp_path / "par"), prof, 0, ("specialist",))


def test_test_time_scaling_samples_in_workers_equal_one_after_another(smoke_torch_threads, smoke_cold_run, tmp_path):
    """Each attending's test-time-scaling samples are drawn in a worker process of its own:
    the same samples and curve as in this process."""
    import dataclasses

    from mmed.data.sets import synthetic_split
    from mmed.eval.tts import run_test_time_scaling

    prof = load_profile("smoke")
    items = list(synthetic_split(prof, "test"))[:12]
    two = {"cold start": (None, "sft"), "cold start again": (None, "sft")}
    c1, s1 = run_test_time_scaling(smoke_cold_run, dataclasses.replace(prof, workers=1), {"synthetic": items}, seed=0,
                                   out_dir=tmp_path / "one", attendings=two)
    c2, s2 = run_test_time_scaling(smoke_cold_run, dataclasses.replace(prof, workers=2), {"synthetic": items}, seed=0,
                                   out_dir=tmp_path / "two", attendings=two)
    assert s1 == s2 and s1["cold start"] == s1["cold start again"]
    assert c1.equals(c2) and len(s1["cold start"]["synthetic"]) == min(12, prof.tts.n_eval_items or 12) > 0
    assert (tmp_path / "two" / "cold_start__synthetic_samples.jsonl").read_text() == \
        (tmp_path / "one" / "cold_start__synthetic_samples.jsonl").read_text()


def test_a_failing_job_is_reported_without_waiting_for_the_others():
    """A job's failure stops the step at once: a long job running beside it is killed, not
    waited for."""
    import time

    from mmed.parallel import Job, run_jobs

    prof = load_profile("smoke")
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"^bad sqrt failed: ValueError: math domain error"):
        run_jobs([Job("sleep a minute", time.sleep, (60,)), Job("bad sqrt", __import__("math").sqrt, (-1,))],
                 prof, workers=2, log=None)
    assert time.perf_counter() - t0 < 45  # the start of two workers under load, never the minute's sleep


def test_started_jobs_run_while_this_process_works_and_can_be_cancelled(tmp_path):
    """start_jobs returns at once: with workers the jobs run meanwhile; with one worker they
    run here only when their results are asked for; cancel() stops running workers."""
    import time
    from pathlib import Path

    from mmed.parallel import Job, start_jobs

    prof = load_profile("smoke")
    marks = [tmp_path / "a.txt", tmp_path / "b.txt"]
    started = start_jobs([Job(f"write {m.name}", Path(m).write_text, (m.name,)) for m in marks], prof, workers=1, log=None)
    assert not any(m.exists() for m in marks)  # one worker: nothing has run yet
    assert started.results() == [5, 5] and [m.read_text() for m in marks] == ["a.txt", "b.txt"]
    assert started.results() == [5, 5]  # computed once

    t0 = time.perf_counter()
    started = start_jobs([Job("sleep 2 s", time.sleep, (2,)), Job("two to the tenth", pow, (2, 10))], prof, workers=2, log=None)
    returned_after = time.perf_counter() - t0
    assert started.results() == [None, 1024]
    assert returned_after < 2  # handed over, not waited for (the sleep alone takes 2 s)

    import multiprocessing

    t0 = time.perf_counter()
    started = start_jobs([Job("sleep a minute", time.sleep, (60,)), Job("sleep a minute too", time.sleep, (60,))],
                         prof, workers=2, log=None)
    time.sleep(1)
    started.cancel()
    assert time.perf_counter() - t0 < 45
    assert shutdown_pools() == 0  # the cancelled pool is gone; the next step starts a fresh one
    deadline = time.perf_counter() + 10
    while multiprocessing.active_children() and time.perf_counter() < deadline:
        time.sleep(0.2)
    assert multiprocessing.active_children() == []  # its workers were terminated, not left sleeping

    # beside a training here, one job still goes to a worker process; the log says where jobs run
    lines = []
    started = start_jobs([Job("pid", __import__("os").getpid)], prof, workers=2, log=lines.append, beside=True)
    assert started.results()[0] != __import__("os").getpid()
    assert lines == ["1 trainings in 1 worker process(es): pid"]
    lines.clear()
    assert start_jobs([Job("pid", __import__("os").getpid)], prof, workers=1, log=lines.append, beside=True).results() \
        == [__import__("os").getpid()]
    assert lines == ["1 trainings in this process, one after another: pid"]
    shutdown_pools()


def test_waiting_for_some_jobs_leaves_the_others_running(tmp_path):
    """StartedJobs.wait: the results of the jobs asked for once they are done, while the others
    go on (notebook 02 consults beside the image-only reference); without workers those jobs
    run here then, each once; a bad index is named."""
    import time
    from pathlib import Path

    from mmed.parallel import Job, start_jobs

    prof = load_profile("smoke")
    t0 = time.perf_counter()
    started = start_jobs([Job("sleep a minute", time.sleep, (60,)), Job("two to the tenth", pow, (2, 10))], prof,
                         workers=2, log=None)
    assert started.wait([1]) == [1024]
    assert time.perf_counter() - t0 < 45  # the workers' start under load, never the minute's sleep
    started.cancel()
    started = start_jobs([Job("sleep 1 s", time.sleep, (1,)), Job("two to the tenth", pow, (2, 10))], prof, workers=2,
                         log=None)
    assert started.wait([1]) == [1024] and started.results() == [None, 1024]
    marks = [tmp_path / "a.txt", tmp_path / "b.txt"]
    here = start_jobs([Job(f"write {m.name}", Path(m).write_text, (m.name,)) for m in marks], prof, workers=1, log=None)
    assert here.wait([1]) == [5] and not marks[0].exists() and marks[1].read_text() == "b.txt"
    marks[1].unlink()
    assert here.results() == [5, 5] and marks[0].exists() and not marks[1].exists()  # b ran once
    with pytest.raises(IndexError, match=r"job index\(es\) \[2\] outside the 2 jobs"):
        here.wait([2])
    # a job that fails while this waits for another one is reported then, not after the other
    t0 = time.perf_counter()
    started = start_jobs([Job("bad sqrt", __import__("math").sqrt, (-1,)), Job("sleep a minute", time.sleep, (60,))],
                         prof, workers=2, log=None)
    with pytest.raises(RuntimeError, match=r"^bad sqrt failed: ValueError"):
        started.wait([1])
    assert time.perf_counter() - t0 < 45
    # cancelled jobs have no results (not a worker's error about the pool they were killed with)
    started = start_jobs([Job("sleep a minute", time.sleep, (60,))] * 2, prof, workers=2, log=None)
    started.cancel()
    with pytest.raises(RuntimeError, match=r"^these 2 jobs were cancelled"):
        started.results()
    shutdown_pools()


def test_a_curriculum_that_can_copy_another_ones_first_stage_is_queued_a_seed_later(smoke_attending_cold, tmp_path,
                                                                                      monkeypatch):
    import mmed.parallel as P

    root = tmp_path / "run"
    shutil.copytree(smoke_attending_cold, root)
    queued = []
    monkeypatch.setattr(P, "run_jobs", lambda jobs, *a, **k: queued.extend(jobs) or [None] * len(jobs))
    R.train_curricula(Run.open(root), load_profile("smoke"), [0, 1, 2], 0, [None, "no_entropy", "no_curriculum"],
                      "validation", workers=2, log=None)
    # no_entropy's Easy stage (γ = 0) is C-MARL's: it waits for the next seed's C-MARL to be queued
    # (the last seed's: to the end), so that two workers find its C-MARL Easy stage finished
    assert [(j.args[3], j.args[2]) for j in queued] == [
        (0, None), (0, "no_curriculum"), (1, None), (0, "no_entropy"), (1, "no_curriculum"),
        (2, None), (1, "no_entropy"), (2, "no_curriculum"), (2, "no_entropy")]
    queued.clear()
    R.train_curricula(Run.open(root), load_profile("smoke"), [0], 0, [None, "no_entropy"], "validation", workers=2,
                      log=None)
    assert [(j.args[3], j.args[2]) for j in queued] == [(0, None), (0, "no_entropy")]
    # 4 workers: two seeds later (no_entropy 0 would otherwise start beside C-MARL 0 and train its Easy stage)
    queued.clear()
    R.train_curricula(Run.open(root), load_profile("smoke"), [0, 1, 2], 0, [None, "no_entropy", "no_curriculum"],
                      "validation", workers=4, log=None)
    assert [(j.args[3], j.args[2]) for j in queued] == [
        (0, None), (0, "no_curriculum"), (1, None), (1, "no_curriculum"), (2, None), (0, "no_entropy"),
        (2, "no_curriculum"), (1, "no_entropy"), (2, "no_entropy")]


def test_a_consultation_does_not_train_the_image_only_reference(smoke_cold_run, tmp_path, monkeypatch):
    # no consultation reads it: notebook 02 trains it with the cold starts (ensure_cold_starts), so that a
    # consultation beside that training never trains it a second time into the same folder
    import mmed.rl.cold_start as CS

    root = tmp_path / "run"
    shutil.copytree(smoke_cold_run.root, root)
    shutil.rmtree(root / "attending" / CS.IMAGE_ONLY_STAGE, ignore_errors=True)
    monkeypatch.setattr(CS, "ensure_image_only_attending", lambda *a, **k: pytest.fail("image-only reference trained"))
    triage, panels, attending, info = CS.build_agents(Run.open(root), load_profile("smoke"), 0)
    assert attending is not None and "attending" in info
