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
