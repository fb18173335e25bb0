import json
import subprocess
import sys

import pytest

from mmed.runs import Run, resolve_path


def test_manifest_records_environment_and_steps(tmp_path):
    run = Run.open(tmp_path / "r1", profile="smoke", seed=3)
    m = run.manifest
    assert m["profile"] == "smoke" and m["seeds"] == [3]
    assert m["packages"]["torch"] is not None and m["packages"]["trl"] is not None
    assert m["hardware"]["cpu_count"] >= 1
    with run.step("consult", n_items=5):
        assert run.manifest["steps"]["consult"]["status"] == "running"
    assert run.step_done("consult")
    with pytest.raises(RuntimeError):
        with run.step("train"):
            raise RuntimeError("boom")
    s = run.manifest["steps"]["train"]
    assert s["status"] == "failed" and "boom" in s["error"]
    run.add_artifact("predictions", run.path("consult", mkdir=True) / "predictions.jsonl")
    assert run.manifest["artifacts"]["predictions"] == "consult/predictions.jsonl"


def test_reopen_keeps_manifest_and_rejects_other_profile(tmp_path):
    Run.open(tmp_path / "r", profile="demo", variant="no_entropy", seed=0)
    run = Run.open(tmp_path / "r", profile="demo", variant="reverse", seed=1)
    m = run.manifest
    assert m["variants"] == ["no_entropy", "reverse"] and m["seeds"] == [0, 1]
    with pytest.raises(ValueError, match="profile 'demo', not 'smoke'"):
        Run.open(tmp_path / "r", profile="smoke")


def test_relative_paths_resolve_from_repo_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = resolve_path("runs/x")
    assert p.is_absolute() and p.parent.name == "runs" and (p.parent.parent / "pyproject.toml").exists()


def test_manifest_is_valid_json_after_every_write(tmp_path):
    run = Run.open(tmp_path / "r", profile="smoke")
    for i in range(5):
        run.update(counter=i)
        assert json.loads(run.manifest_path.read_text())["counter"] == i


def test_broken_run_folders_are_one_line_value_errors_naming_the_file(tmp_path, capsys):
    from mmed.cli import main

    f = tmp_path / "a_file"
    f.write_text("x")
    with pytest.raises(ValueError, match=f"run folder {f} is a file, not a folder"):
        Run.open(f, profile="demo")
    with pytest.raises(ValueError, match="cannot be made"):  # a file on the way
        Run.open(f / "run", profile="demo")
    # a manifest holding a JSON list
    lst = tmp_path / "lst"
    lst.mkdir()
    (lst / "manifest.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"lst/manifest.json: a run manifest must be a JSON object, got a list"):
        Run.open(lst, profile="demo")
    # a truncated manifest
    run = Run.open(tmp_path / "trunc", profile="demo")
    text = run.manifest_path.read_text()
    run.manifest_path.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"trunc/manifest.json: not valid JSON"):
        Run.open(tmp_path / "trunc", profile="demo")
    # check-run on a file: one error line saying it is not a folder
    assert main(["check-run", "--run-dir", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"error: run folder {f} is not a folder" in err and "Traceback" not in err
