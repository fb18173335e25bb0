"""Live progress of every training: one tqdm bar per training, with step i/N, the ETA and
the latest reward and entropy — whether it trains in this process or in a worker process.

Every trainer this package builds (the tiny base's pre-training, the cold starts, triage
GRPO, each curriculum stage) gets a :class:`TrainingProgress` callback
(:func:`progress_callbacks`), a ``transformers.TrainerCallback`` that reports the trainer's
own step counter and logged metrics (``transformers/trainer_callback.py``) as small
:class:`ProgressEvent` records. Where they go:

* in this process: to the process's :class:`BarBoard`, which draws them with ``tqdm``;
* in a worker process of :func:`mmed.parallel.run_jobs`: into a queue the parent's
  :class:`BarBoard` reads, so the parent draws one bar per training, never interleaved
  worker lines.

A :class:`BarBoard` draws text bars on the terminal of this process — for a notebook kernel
the terminal it was started from (``sys.stderr.fileno()``: ipykernel hands back its copy of
the original stream, so the bars reach ``make demo``'s terminal, not the notebook's stderr
output) — and, inside a Jupyter kernel, also ``tqdm.notebook`` widget bars in the running
cell. ``MMED_PROGRESS=0`` in the environment turns every bar off (the tests do).

The trainers' own ``disable_tqdm`` stays True: transformers' ``ProgressCallback`` writes every
logged dictionary as a line (``logging_steps=1``), which is what drowned the log.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback

#: the environment variable that sets the progress output: "0" (or false/no/off) none;
#: unset or "1" live bars when the terminal is interactive (a tty), else only the line each
#: finished training leaves (a log stays readable); "bars" live bars always (the notebook
#: runner sets it for its kernels when its own terminal is interactive: theirs is a pipe)
PROGRESS_ENV = "MMED_PROGRESS"
#: the environment variable with the terminal line of the first bar (0: the cursor's line);
#: the notebook runner sets 1 for its kernels, whose bars then sit under its own cell bar
POSITION_ENV = "MMED_PROGRESS_POSITION"
#: the logged metrics shown beside a bar, in order (the trainer's log keys)
POSTFIX_KEYS: tuple[str, ...] = ("reward", "entropy", "loss")

_QUEUE: Any = None  # a worker's queue to its parent's BarBoard (set by the pool's initializer)
_BOARD: "BarBoard | None" = None  # this process's board, made on first use


def progress_enabled() -> bool:
    """Whether trainings report progress at all: ``$MMED_PROGRESS`` unset or not one of
    0/false/no/off."""
    return os.environ.get(PROGRESS_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def live_bars(stream: Any) -> bool:
    """Whether to draw live bars on ``stream``: ``$MMED_PROGRESS`` is ``bars``, or the stream
    is a terminal (``isatty``) and progress is on."""
    mode = os.environ.get(PROGRESS_ENV, "1").strip().lower()
    if mode == "bars":
        return True
    try:
        return progress_enabled() and bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@dataclass(frozen=True)
class ProgressEvent:
    """One report of a training.

    Attributes:
        name: the training's name (its TensorBoard run name, e.g.
            ``attending_cmarl_seed1_stage2_medium_gamma0.001``).
        kind: ``"begin"``, ``"step"`` or ``"end"``.
        step: the trainer's ``state.global_step``.
        total: ``state.max_steps``.
        postfix: the latest logged values shown beside the bar (:data:`POSTFIX_KEYS`).
    """

    name: str
    kind: str
    step: int
    total: int
    postfix: dict[str, float] = field(default_factory=dict)


class TrainingProgress(TrainerCallback):
    """A ``transformers.TrainerCallback`` that reports a training's steps and its latest
    reward/entropy/loss as :class:`ProgressEvent` records (see the module docstring for where
    they go). Hooks: ``on_train_begin``, ``on_log``, ``on_step_end``, ``on_train_end``
    (``transformers/trainer_callback.py``).

    Args:
        name: the training's name shown on its bar.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.postfix: dict[str, float] = {}

    def _send(self, kind: str, state: Any) -> None:
        report(ProgressEvent(self.name, kind, int(state.global_step), int(state.max_steps or 0), dict(self.postfix)))

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102 (transformers' hook)
        self._send("begin", state)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        for k in POSTFIX_KEYS:
            v = (logs or {}).get(k)
            if isinstance(v, (int, float)):
                self.postfix[k] = float(v)

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        self._send("step", state)

    def on_train_end(self, args, state, control, **kwargs):  # noqa: D102
        self._send("end", state)


def progress_callbacks(name: str) -> list[TrainerCallback]:
    """The callbacks a trainer of this package adds for its live bar: ``[TrainingProgress(name)]``,
    or ``[]`` when bars are off (:func:`progress_enabled`)."""
    return [TrainingProgress(name)] if progress_enabled() else []


def report(event: ProgressEvent) -> None:
    """Send ``event`` to the parent's board (in a worker process) or draw it here."""
    if _QUEUE is not None:
        _QUEUE.put(event)
    else:
        board().handle(event)


def board() -> "BarBoard":
    """This process's :class:`BarBoard` (made on first use)."""
    global _BOARD
    if _BOARD is None:
        _BOARD = BarBoard()
    return _BOARD


def set_worker_queue(queue: Any) -> None:
    """In a worker process: send every event into ``queue`` (the parent's
    :meth:`BarBoard.listen` reads it). Called by :mod:`mmed.parallel`'s pool initializer."""
    global _QUEUE
    _QUEUE = queue


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def _fmt(postfix: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in postfix.items())


class BarBoard:
    """Draws one ``tqdm`` bar per running training from :class:`ProgressEvent` records: on
    the terminal (positions 0, 1, ... for trainings that run at once) and, in a Jupyter
    kernel, as widget bars in the cell; a finished training leaves one line,
    ``<name>: <steps> steps in <seconds> s (<postfix>)``.

    Args:
        terminal: the text stream of the terminal bars; None → this process's terminal
            (see the module docstring); False → no terminal output.
        live: draw live bars on it (None: :func:`live_bars`); without them it gets only
            the line each finished training leaves.
        widgets: draw ``tqdm.notebook`` bars; None → when running in a Jupyter kernel.
    """

    def __init__(self, terminal: Any = None, widgets: bool | None = None, live: bool | None = None) -> None:
        self._terminal = terminal
        self._live = live
        self._widgets = _in_kernel() if widgets is None else widgets
        self._bars: dict[str, list[Any]] = {}
        self._slots: dict[str, int] = {}
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()
        self.finished: list[str] = []  #: the lines of finished trainings, in order

    def _stream(self) -> Any:
        if self._terminal is None:
            try:
                self._terminal = open(sys.stderr.fileno(), "w", closefd=False, buffering=1)
            except (AttributeError, OSError, ValueError):  # no file descriptor (a captured stream)
                self._terminal = sys.stderr
        return self._terminal

    def _open(self, ev: ProgressEvent) -> list[Any]:
        from tqdm import tqdm

        slot = min(set(range(len(self._slots) + 1)) - set(self._slots.values()))
        self._slots[ev.name] = slot
        self._started[ev.name] = time.perf_counter()
        bars = []
        if self._terminal is not False and (self._live if self._live is not None else live_bars(self._stream())):
            first = int(os.environ.get(POSITION_ENV, "0") or 0)
            bars.append(tqdm(total=ev.total or None, desc=ev.name, position=first + slot, leave=False, file=self._stream(),
                             dynamic_ncols=True, mininterval=0.5, unit="step"))
        if self._widgets:
            from tqdm.notebook import tqdm as nb_tqdm

            bars.append(nb_tqdm(total=ev.total or None, desc=ev.name, leave=True, unit="step"))
        for b in bars:
            b.update(ev.step)
        return bars

    def handle(self, ev: ProgressEvent) -> None:
        """Draw one event (thread-safe). A ``step`` or ``end`` of a training not begun opens its bar."""
        with self._lock:
            bars = self._bars.get(ev.name)
            if bars is None:
                if ev.kind == "end" and ev.name in self._started:
                    return
                bars = self._bars[ev.name] = self._open(ev)
            for b in bars:
                if ev.total and b.total != ev.total:
                    b.total = ev.total
                if ev.postfix:
                    b.set_postfix_str(_fmt(ev.postfix), refresh=False)
                if ev.step > b.n:
                    b.update(ev.step - b.n)  # redraws at most every ``mininterval`` seconds
            if ev.kind == "end":
                secs = time.perf_counter() - self._started[ev.name]
                line = f"{ev.name}: {ev.step} step{'' if ev.step == 1 else 's'} in {secs:.0f} s" + (f" ({_fmt(ev.postfix)})" if ev.postfix else "")
                for b in bars:
                    b.close()
                del self._bars[ev.name], self._slots[ev.name]
                self.finished.append(line)
                if self._terminal is not False:
                    from tqdm import tqdm

                    tqdm.write(line, file=self._stream())

    def listen(self, queue: Any) -> threading.Thread:
        """Draw the events of worker processes from ``queue`` in a daemon thread until a
        ``None`` arrives; returns the thread (join it after putting ``None``)."""

        def loop() -> None:
            while True:
                try:
                    ev = queue.get()
                except (EOFError, OSError, ValueError):  # the queue was closed (interpreter exit)
                    return
                if ev is None:
                    return
                self.handle(ev)

        t = threading.Thread(target=loop, name="mmed-progress", daemon=True)
        t.start()
        return t
