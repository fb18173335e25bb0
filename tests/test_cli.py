import pytest

from mmed.cli import build_parser, main


def test_commands_have_their_flags():
    parser = build_parser()
    args = parser.parse_args(["notebooks", "--profile", "smoke", "--run-dir", "runs/x", "--only", "01", "08"])
    assert args.profile == "smoke" and args.run_dir == "runs/x" and args.only == ["01", "08"]
    args = parser.parse_args(["check-run", "--run-dir", "runs/x"])
    assert args.run_dir == "runs/x"


def test_check_run_on_empty_run_fails(tmp_path, capsys):
    assert main(["check-run", "--run-dir", str(tmp_path)]) == 1


def test_unknown_command_exits():
    with pytest.raises(SystemExit):
        main(["nope"])


# ----------------------------------------------------------------------------------------
# user errors: one "error: ..." line naming what is wrong, exit code 2, no traceback
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, match",
    [
        (["consult", "--profile", "nosuch"], "unknown profile 'nosuch'"),
        (["train-attending", "--profile", "smoke", "--variant", "nosuch"], "unknown variant 'nosuch'"),
        (["consult", "--profile", "smoke", "--specialists", "openai:gpt-4o@ftp://h/v1"], "ftp://h/v1"),
        (["consult", "--profile", "smoke", "--specialists", ""], "empty specialist spec"),
        (["consult", "--profile", "smoke", "--triage", "fixed"], "--triage fixed needs --fixed-specialty"),
        (["consult", "--profile", "smoke", "--limit", "0"], "limit must be a positive"),
        (["consult", "--profile", "smoke", "--split", "nosuch"], "synthetic: unknown split 'nosuch'"),
        (["consult", "--profile", "smoke", "--variant", "nosuch"], "unknown variant 'nosuch'"),
        (["consult", "--profile", "smoke", "--data", "nosuch:/x"], "unknown dataset 'nosuch'"),
        (["train-triage", "--profile", "smoke", "--max-steps", "-1"], "--max-steps must be >= 1"),
        (["train-triage", "--profile", "smoke", "--max-steps", "0"], "--max-steps must be >= 1"),
        (["train-attending", "--profile", "smoke", "--n-heldout", "0"], "n_heldout must be a positive"),
        (["consult", "--profile", "smoke", "--triage-fallback", "Nurse"], "key 'triage.fallback' is 'Nurse'"),
    ],
)
def test_user_errors_are_one_line(argv, match, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MMED_DEBUG", raising=False)
    assert main([*argv, "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and match in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing was started, no empty run folder left


def test_mmed_debug_reraises(monkeypatch):
    monkeypatch.setenv("MMED_DEBUG", "1")
    with pytest.raises(ValueError, match="unknown profile"):
        main(["consult", "--profile", "nosuch"])


def test_check_run_missing_folder_is_a_user_error(tmp_path, capsys):
    assert main(["check-run", "--run-dir", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_check_run_reports_malformed_metrics_instead_of_crashing(tmp_path, capsys):
    import json

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "eval").mkdir()
    for stem in ("05_ablations", "06_test_time_scaling"):
        (tmp_path / "notebooks" / f"{stem}.ipynb").write_text("{}")
    # a row without "dataset" (the 05 checker indexes it) and a non-object top level
    (tmp_path / "eval" / "notebook_05_ablations.json").write_text(json.dumps(
        {"datasets": ["synthetic"], "n_items": {"synthetic": 1}, "rows": [{"system": "full system", "available": True}]}))
    (tmp_path / "eval" / "notebook_06_test_time_scaling.json").write_text("[1, 2]")
    assert main(["check-run", "--run-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "05_ablations: FAILED" in out and "malformed metrics (KeyError" in out
    assert "06_test_time_scaling: FAILED" in out and "top level is a list" in out


def test_consult_data_spec_split_is_checked_before_a_run_starts(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MMED_DEBUG", raising=False)
    argv = ["consult", "--profile", "smoke", "--data-root", str(tmp_path), "--run-dir", str(tmp_path / "run")]
    assert main([*argv, "--data", "mmmu_med:hub@test"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data 'mmmu_med:hub@test': no split 'test' for mmmu_med:hub") and "Traceback" not in err
    assert main([*argv, "--data", "mmmu_med:hub@validation", "--split", "test"]) == 2
    assert "names split 'validation' but split 'test' was asked" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_rejected_metrics_never_replace_a_good_record(tmp_path):
    import json

    from mmed.checks import CHECKERS, record_notebook_metrics

    good = {"seed": 0, "seed_replicates": None}
    bad = {"seed": 0, "seed_replicates": {"seeds": [3], "table": [{"seed": 3, "set": "s", "accuracy": 0.5, "lo": 0.4, "hi": 0.6}]}}
    CHECKERS["zz_test"] = lambda m: [] if m["seed_replicates"] is None else ["seed_replicates.seeds [3] lacks the run's seed 0"]
    try:
        path = record_notebook_metrics(tmp_path, "zz_test", good)
        with pytest.raises(ValueError, match="lacks the run's seed 0"):
            record_notebook_metrics(tmp_path, "zz_test", bad)
        assert json.loads(path.read_text()) == good  # the earlier good record is untouched
        assert json.loads((tmp_path / "eval" / "notebook_zz_test.rejected.json").read_text()) == bad
    finally:
        del CHECKERS["zz_test"]


def test_a_mistake_in_the_base_profile_is_named_as_the_base(tmp_path):
    import yaml

    from mmed.config import ProfileError, load_profile

    from pathlib import Path

    import mmed

    raw = yaml.safe_load((Path(mmed.__file__).parent / "profiles" / "smoke.yaml").read_text())
    raw["specialists"]["panel_size"] = 0
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ProfileError) as e:
        load_profile(str(p))
    assert "panel_size" in str(e.value) and "variant" not in str(e.value)


# ----------------------------------------------------------------------------------------
# figures: a smoke run never replaces the committed results
# ----------------------------------------------------------------------------------------
def _fake_run(tmp_path, profile):
    import json

    run = tmp_path / f"run_{profile}"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"run_id": run.name, "profile": profile}))
    return run


def test_figures_refuses_a_smoke_run_for_the_repository_figures(tmp_path, capsys):
    from mmed.runs import repo_root

    before = {p.name: p.read_bytes() for p in (repo_root() / "figures").glob("*.csv")}
    readme = (repo_root() / "README.md").read_bytes()
    run = _fake_run(tmp_path, "smoke")
    assert main(["figures", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[0]
    assert "'smoke' run does not refresh the repository's figures/" in err and str(run) in err
    assert {p.name: p.read_bytes() for p in (repo_root() / "figures").glob("*.csv")} == before
    assert (repo_root() / "README.md").read_bytes() == readme


def test_figures_accepts_a_smoke_run_elsewhere_and_leaves_the_readme(tmp_path, capsys):
    from mmed.cli_commands import check_results_profile
    from mmed.runs import repo_root

    run = _fake_run(tmp_path, "smoke")
    check_results_profile(run, tmp_path / "figs")  # another folder: accepted
    check_results_profile(run, repo_root() / "figures", allowed=["smoke"])  # explicitly allowed
    check_results_profile(_fake_run(tmp_path, "demo"), repo_root() / "figures")
    readme = (repo_root() / "README.md").read_bytes()
    assert main(["figures", "--fig-dir", str(tmp_path / "figs")]) == 0
    assert "README results block not touched" in capsys.readouterr().out
    assert (repo_root() / "README.md").read_bytes() == readme


def test_figures_on_a_folder_that_is_no_run_is_a_user_error(tmp_path, capsys):
    assert main(["figures", "--run-dir", str(tmp_path)]) == 2
    assert "is not a run folder (no manifest.json)" in capsys.readouterr().err


def test_ship_base_refuses_a_folder_that_is_not_a_base_of_the_profile(tmp_path, capsys):
    assert main(["ship-base", "--profile", "smoke", "--from-entry", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path / "assets")]) == 2
    err = capsys.readouterr().err
    assert "nowhere: not a pre-trained base of key" in err and "'smoke'" in err
    assert not (tmp_path / "assets").exists() or not any((tmp_path / "assets").iterdir())
