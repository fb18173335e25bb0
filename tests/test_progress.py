"""Live training bars (mmed.progress): what a trainer's callback reports and what the board
draws from it, in this process and from worker processes."""

from __future__ import annotations

import io
from types import SimpleNamespace

from mmed import progress as P


def _state(step, total=6):
    return SimpleNamespace(global_step=step, max_steps=total)


def test_callback_reports_steps_and_the_latest_reward_and_entropy(monkeypatch):
    seen = []
    monkeypatch.setattr(P, "report", seen.append)
    cb = P.TrainingProgress("attending_cmarl_seed0_stage1_easy_gamma0")
    cb.on_train_begin(None, _state(0), None)
    cb.on_log(None, _state(1), None, logs={"reward": 0.25, "entropy": 1.5, "loss": 0.1, "learning_rate": 1e-3})
    cb.on_step_end(None, _state(1), None)
    cb.on_log(None, _state(2), None, logs={"reward": 0.75})
    cb.on_step_end(None, _state(2), None)
    cb.on_train_end(None, _state(2), None)
    assert [(e.kind, e.step, e.total) for e in seen] == [("begin", 0, 6), ("step", 1, 6), ("step", 2, 6), ("end", 2, 6)]
    assert seen[1].postfix == {"reward": 0.25, "entropy": 1.5, "loss": 0.1}
    assert seen[2].postfix == {"reward": 0.75, "entropy": 1.5, "loss": 0.1}  # the latest of each


def test_board_draws_one_bar_per_training_and_a_line_when_it_ends():
    term = io.StringIO()
    board = P.BarBoard(terminal=term, widgets=False, live=True)
    for name in ("a", "b"):
        board.handle(P.ProgressEvent(name, "begin", 0, 4))
    assert sorted(board._slots.values()) == [0, 1]  # two trainings at once: two bar lines
    board.handle(P.ProgressEvent("a", "step", 3, 4, {"reward": 0.5}))
    bar = board._bars["a"][0]
    bar.refresh()
    assert bar.n == 3 and "reward=0.5" in term.getvalue() and "3/4" in term.getvalue()
    board.handle(P.ProgressEvent("a", "end", 4, 4, {"reward": 0.5}))
    assert list(board._bars) == ["b"] and board.finished[0].startswith("a: 4 steps in ")
    assert board.finished[0].endswith("(reward=0.5)") and board.finished[0] in term.getvalue()
    board.handle(P.ProgressEvent("c", "begin", 0, 2))
    assert board._slots == {"b": 1, "c": 0}  # a freed line is reused


def test_progress_can_be_switched_off(monkeypatch):
    monkeypatch.setenv(P.PROGRESS_ENV, "0")
    assert not P.progress_enabled() and P.progress_callbacks("x") == []
    monkeypatch.setenv(P.PROGRESS_ENV, "1")
    assert [type(c) for c in P.progress_callbacks("x")] == [P.TrainingProgress]


def test_a_log_gets_only_the_finished_lines(monkeypatch):
    """Not a terminal (CI, a log file): no redraws, one line per finished training."""
    monkeypatch.delenv(P.PROGRESS_ENV, raising=False)
    log = io.StringIO()
    assert not P.live_bars(log)
    board = P.BarBoard(terminal=log, widgets=False)
    board.handle(P.ProgressEvent("cold_start_triage_seed0", "begin", 0, 3))
    board.handle(P.ProgressEvent("cold_start_triage_seed0", "step", 2, 3, {"loss": 1.25}))
    board.handle(P.ProgressEvent("cold_start_triage_seed0", "end", 3, 3, {"loss": 1.0}))
    text = log.getvalue()
    assert "\r" not in text and text.count("\n") == 1
    assert text.startswith("cold_start_triage_seed0: 3 steps in ") and text.endswith(" s (loss=1)\n")
    monkeypatch.setenv(P.PROGRESS_ENV, "bars")
    assert P.live_bars(log)
