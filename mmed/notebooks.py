"""Execute the numbered notebooks with papermill (the main job and CI): in order, or
(profile key ``notebooks_at_once``) several at once, each as soon as the notebooks it reads
from are done.

Every notebook's ``parameters`` cell declares ``profile``, ``run_dir``, ``data_root`` and
``seed`` (docs/architecture.md#notebooks-and-their-parameters); :func:`run_notebooks` passes
the same values to all of them, writes the executed copies to ``<run_dir>/notebooks/`` and
the wall time of each to ``<run_dir>/notebooks/timings.json`` (written after every notebook, so the timings of the
notebooks that finished are kept when a later one fails). Every notebook runs on one Jupyter
kernel, :data:`DEFAULT_KERNEL` unless told otherwise (``--kernel``), whatever kernel its own
metadata names; a kernel that is not installed stops the run before any notebook starts
(:class:`NotebookKernelError`, naming the notebook and the kernel). A failure raises
:class:`NotebookFailed` naming the notebook and the cell. ``python -m mmed notebooks``
(``make demo``) then runs ``check-run`` on the run folder (:func:`mmed.cli.report_check_run`:
the recorded metrics and the degenerate-agent guard) and exits non-zero when it fails.

What a kernel writes to its terminal (its stdout and stderr, which also carry the output of
the worker processes it starts) reaches the runner's through :class:`NoiseFilter`: lines
that say nothing to a user (:data:`NOISE_LINES`, :data:`NOISE_BARS`) are dropped, errors
and tracebacks never. The executed copies of the notebooks keep every output.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

# the requirement line each notebook opens with (re-exported: NotebookContext.requirements)
from .notebook_guide import NOTEBOOK_NEEDS, NotebookNeeds, notebook_needs, notebook_requirements  # noqa: F401
from .quiet import quiet_libraries  # noqa: F401  (notebooks and tests call it from here too)
from .runs import Run, repo_root, resolve_path, write_json_atomic

#: Parameters every notebook declares (docs/architecture.md#notebooks-and-their-parameters).
STANDARD_PARAMETERS: tuple[str, ...] = ("profile", "run_dir", "data_root", "seed")
#: The kernel every notebook runs on by default: Jupyter's ``python3``, which runs the Python
#: interpreter of the calling process (the project's venv; its kernelspec's ``python`` is
#: replaced by ``sys.executable``), whatever kernel a notebook's metadata names.
DEFAULT_KERNEL = "python3"


def notebooks_dir() -> Path:
    """``<repo>/notebooks``."""
    return repo_root() / "notebooks"


def list_notebooks(names: Sequence[str] | None = None) -> list[Path]:
    """The numbered notebooks (``NN_*.ipynb``) in their numbered order, optionally only those
    whose name starts with one of ``names`` (``"01"`` or ``"01_data"``; in any order).

    Raises:
        ValueError: when a requested name matches no notebook.
    """
    nbs = sorted(p for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return nbs
    out = []
    for n in names:
        hits = [p for p in nbs if p.stem == n or p.stem.startswith(n)]
        if not hits:
            raise ValueError(f"no notebook matches {n!r}; known: {[p.stem for p in nbs]}")
        out.extend(h for h in hits if h not in out)
    return sorted(out)  # in their numbered order, whatever order they were named in


def _print_flush(msg: str) -> None:
    print(msg, flush=True)


class NotebookFailed(RuntimeError):
    """A notebook raised; ``notebook``, ``cell`` (0-based index) and ``error`` say where."""

    def __init__(self, notebook: str, cell: int | None, error: str, output: Path):
        self.notebook, self.cell, self.error, self.output = notebook, cell, error, output
        where = f"cell {cell}" if cell is not None else "an unknown cell"
        super().__init__(f"notebook {notebook} failed in {where}: {error} (executed copy: {output})")


class NotebookKernelError(ValueError):
    """The kernel a notebook would run on is not installed; ``notebook``, ``kernel`` and
    ``available`` (the installed kernel names) say which. A ``ValueError``: a user error
    that ``python -m mmed`` prints as one line."""

    def __init__(self, notebook: str, kernel: str, available: Sequence[str], source: str):
        self.notebook, self.kernel, self.available = notebook, kernel, list(available)
        super().__init__(
            f"notebook {notebook}: no Jupyter kernel named {kernel!r} ({source}); installed kernels: "
            f"{', '.join(self.available) or 'none'}; pass --kernel with one of them (default {DEFAULT_KERNEL})"
        )


def check_kernels(nbs: Sequence[Path], kernel_name: str | None) -> dict[str, str]:
    """The kernel each notebook will run on (``{stem: kernel}``): ``kernel_name``, or with
    None the notebook's own ``metadata.kernelspec.name`` (papermill's rule).

    Raises:
        NotebookKernelError: the first notebook whose kernel is not installed (or that
            names none), naming the notebook and the kernel.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ksm = KernelSpecManager()
    out: dict[str, str] = {}
    checked: dict[str, bool] = {}
    for nb in nbs:
        if kernel_name:
            name, source = kernel_name, "the kernel asked for"
        else:
            with open(nb) as f:
                name = (json.load(f).get("metadata", {}).get("kernelspec") or {}).get("name") or ""
            source = "named by the notebook's kernelspec"
        if name not in checked:
            try:
                checked[name] = bool(name) and ksm.get_kernel_spec(name) is not None
            except NoSuchKernel:
                checked[name] = False
        if not checked[name]:
            raise NotebookKernelError(nb.stem, name, sorted(ksm.find_kernel_specs()), source)
        out[nb.stem] = name
    return out


#: Terminal lines of a notebook kernel that say nothing to a user, dropped by the runner:
#: ``(what, pattern)``, the pattern searched in the line (without its carriage returns).
NOISE_LINES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # ipykernel (ipykernel/kernelapp.py, init_sockets) on every start: "[IPKernelApp] WARNING |
    # Kernel is running over TCP without encryption. ..."; the kernel listens on localhost only
    ("kernel transport warning", re.compile(r"\bwithout encryption\b")),
    # ipykernel when jupyter_client interrupts a kernel before shutting it down
    # (jupyter_client/manager.py, shutdown_kernel), also after a notebook that ran to its end
    ("kernel interrupt at shutdown", re.compile(r"^\[IPKernelApp\] ERROR \| KeyboardInterrupt caught in kernel\.?\s*$")),
    # bitsandbytes' optional CPU kernel from the Hub (bitsandbytes/backends/cpu/ops.py; the
    # publisher check of kernels/_internals/hf_hub.py offline); it falls back to its own code
    ("bitsandbytes CPU kernel lookup", re.compile(r"\bkernels-community\b")),
    # the first line of a FutureWarning as ``warnings`` prints it ("<file>:<line>: FutureWarning:
    # ..."); the source line printed under it goes too. A deprecation inside a library
    # (e.g. TRL and PEFT reading transformers' ``is_gradient_checkpointing``) is nothing a user can act on.
    ("FutureWarning", re.compile(r"^\S.*:\d+: FutureWarning: ")),
)
#: transformers' own progress bars of loading and writing a model (tqdm renders: one per
#: carriage return): hundreds of them in a demo, each over in milliseconds
_BAR_NAMES = ("Loading weights", "Writing model shards")
NOISE_BARS: re.Pattern[str] = re.compile(
    r"(?:" + "|".join(_BAR_NAMES) + r"):\s*\d+%\|[^|\r\n]*\|[^\[\r\n]*\[[^\]\r\n]*\]")
#: lines never dropped, whatever they contain: tracebacks and exception lines
_ERROR_LINE = re.compile(r"^(?:Traceback \(most recent call last\)|\s+File \"|[\w.]*(?:Error|Exception|Interrupt|Exit)\b)")
#: a piece of the stream: carriage returns, text, an optional newline
_PIECE = re.compile(r"\r*[^\r\n]*\n?")


class NoiseFilter:
    """Drops :data:`NOISE_LINES` and :data:`NOISE_BARS` from a stream of terminal text.

    ``feed(text)`` returns what to show now, ``flush()`` what is left at the end. The text
    is cut into lines and, before each carriage return, into progress-bar redraws; a redraw
    is shown as soon as it arrives (so another bar stays live), a line once it ends. A
    traceback is kept whole (from ``Traceback (most recent call last):`` to its exception
    line), and so is any line that looks like an error (``  File "..."``, ``SomeError:
    ...``); the indented source line ``warnings`` prints under a dropped warning goes with
    it; a newline that only ends dropped text goes too.
    """

    def __init__(self) -> None:
        self._pending = ""
        self._after_warning = False  # the last piece was a dropped warning's first line
        self._line_dropped = False  # the current terminal line holds only dropped text
        self._in_traceback = False  # inside a traceback: every line is kept up to the exception line

    def feed(self, text: str) -> str:
        """Take ``text``; return the part of the stream that is complete and kept."""
        self._pending += text
        pieces = [p for p in _PIECE.findall(self._pending) if p]
        self._pending = ""
        out = []
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            if last and not piece.endswith("\n") and self._unfinished(piece):
                self._pending = piece  # a line, or the start of a noise bar, still being written
                break
            out.append(self._piece(piece))
        return "".join(out)

    @staticmethod
    def _unfinished(piece: str) -> bool:
        """Whether an unterminated last piece must wait for more text: a line (no carriage
        return in front), or a redraw that is empty, may still become a :data:`NOISE_BARS`
        render or is one with other text being written after it. Any other redraw is shown
        at once (a live progress bar)."""
        body = piece.lstrip("\r")
        if body == piece or not body:
            return True
        return any(name.startswith(body) or (body.startswith(name) and not NOISE_BARS.fullmatch(body))
                   for name in _BAR_NAMES)

    def flush(self) -> str:
        """The kept part of what is still pending (the stream ended)."""
        rest, self._pending = self._pending, ""
        return self._piece(rest) if rest else ""

    def _piece(self, piece: str) -> str:
        body = piece.lstrip("\r")
        lead = piece[: len(piece) - len(body)]
        nl = "\n" if body.endswith("\n") else ""
        body = body[: len(body) - len(nl)]
        stripped = NOISE_BARS.sub("", body)
        if stripped != body:  # a bar redraw, maybe with other text written after it
            body, lead = stripped, ""
            if not body.strip():
                return self._drop(nl)
        if not body:
            if self._line_dropped:  # the newline that ends a dropped bar or line
                return self._drop(nl)
            return self._keep(lead + nl, body)
        if body.startswith("Traceback (most recent call last)"):
            self._in_traceback = True
        elif self._in_traceback and not body[:1].isspace():
            self._in_traceback = False  # the exception line ends the traceback
            return self._keep(lead + body + nl, body)
        if self._in_traceback or _ERROR_LINE.search(body):
            return self._keep(lead + body + nl, body)
        if self._after_warning and body.startswith("  "):
            self._after_warning = False
            return self._drop(nl)
        for what, pattern in NOISE_LINES:
            if pattern.search(body):
                out = self._drop(nl)
                self._after_warning = what == "FutureWarning"
                return out
        return self._keep(lead + body + nl, body)

    def _drop(self, nl: str) -> str:
        self._after_warning = False
        self._line_dropped = not nl
        return ""

    def _keep(self, text: str, body: str) -> str:
        self._after_warning = False
        self._line_dropped = False
        return text


def _pump(stream: Any, name: str) -> threading.Thread:
    """A thread copying a kernel's ``stream`` (binary pipe) through :class:`NoiseFilter` to
    this process's ``sys.<name>`` (``stdout`` or ``stderr``) until the kernel closes it."""

    def write(text: str) -> None:
        if text:
            out = getattr(sys, name)
            out.write(text)
            out.flush()

    def run() -> None:
        filt = NoiseFilter()
        decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        try:
            while data := stream.read1(65536):
                write(filt.feed(decode(data)))
            write(filt.feed(decode(b"", final=True)) + filt.flush())
        finally:
            stream.close()

    t = threading.Thread(target=run, name=f"kernel-{name}-filter", daemon=True)
    t.start()
    return t


def filtered_kernel_manager(position: int = 1, kernels: list | None = None) -> type:
    """jupyter_client's ``AsyncKernelManager`` (what nbclient uses) with the kernel's stdout
    and stderr piped through :class:`NoiseFilter` to this process's; papermill passes it to
    nbclient as ``kernel_manager_class``. Kernels a provisioner other than the local one
    starts keep their own streams. The kernel's training bars (:mod:`mmed.progress`) start
    on the terminal line ``position`` (``$MMED_PROGRESS_POSITION`` in its environment; 1:
    the line under papermill's cell bar); each local kernel's process is appended to
    ``kernels`` (when given: :func:`run_notebooks` interrupts them on Ctrl-C), and are live when this process's stderr is a terminal
    (``$MMED_PROGRESS`` = ``bars``)."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning import LocalProvisioner

    class FilteredKernelManager(AsyncKernelManager):
        _pumps: list[threading.Thread] = []

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            import subprocess

            from .progress import POSITION_ENV, PROGRESS_ENV, live_bars

            local = isinstance(self.provisioner, LocalProvisioner)
            if local:
                kw.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                env = {**(kw.get("env") or os.environ), POSITION_ENV: str(position)}
                if live_bars(sys.stderr):  # the kernel's terminal is our pipe: draw if ours is a terminal
                    env[PROGRESS_ENV] = "bars"
                kw["env"] = env
            await super()._async_launch_kernel(kernel_cmd, **kw)
            if local:
                proc = self.provisioner.process
                self._pumps = [_pump(proc.stdout, "stdout"), _pump(proc.stderr, "stderr")]
                if kernels is not None:
                    kernels.append(proc)

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            import asyncio

            await super()._async_cleanup_resources(restart=restart)
            loop = asyncio.get_running_loop()
            for t in self._pumps:  # the kernel has exited: let its last lines through first
                await loop.run_in_executor(None, t.join, 5.0)

    return FilteredKernelManager


@dataclass
class NotebookResult:
    name: str
    seconds: float
    output: Path
    budget_min: float | None


def notebook_order(nbs: Sequence[Path], profile: Any = None) -> dict[str, list[str]]:
    """For each notebook of ``nbs`` (in their order), the stems of the notebooks among
    ``nbs`` it must wait for: those whose outputs it reads (the ``reads`` of
    :data:`mmed.notebook_guide.NOTEBOOK_NEEDS` that apply to ``profile``, a loaded
    :class:`mmed.config.Profile`: with ``curriculum.strata_panel: triage`` notebook 04 also
    reads 03's trained triage; None: every read); a notebook not in that table (another
    name than the numbered notebook of its prefix) waits for every notebook before it.
    Notebooks not in ``nbs`` are taken as done (a run that resumes with ``--only``)."""
    stems = [nb.stem for nb in nbs]
    by_prefix = {st[:2]: st for st in stems}
    after: dict[str, list[str]] = {}
    for i, st in enumerate(stems):
        try:
            needs = notebook_needs(st)
        except ValueError:
            after[st] = stems[:i]
            continue
        after[st] = [by_prefix[r.notebook] for r in needs.reads
                     if r.notebook in by_prefix and by_prefix[r.notebook] != st and (profile is None or r.applies(profile))]
    return after


def _band_lines(profile: Any) -> int:
    """Terminal lines a running notebook's bars take: papermill's cell bar, one bar per
    training its kernel runs at once (the profile's ``workers``, else the usable cores) and
    one for a training in the kernel's own process."""
    from .parallel import usable_cores

    return 2 + (getattr(profile, "workers", None) or usable_cores())


def _warn_missing_reads(nbs: Sequence[Path], full: dict[str, list[str]], timings: dict[str, Any], log: Any) -> None:
    """Say, before anything runs, which notebook reads the outputs of one that neither runs now
    nor finished in this run folder before (``timings.json``): it will train what it lacks
    itself or report those parts as unavailable (:data:`mmed.notebook_guide.NOTEBOOK_NEEDS`)."""
    running = {nb.stem for nb in nbs}
    for nb in nbs:
        missing = [r for r in full.get(nb.stem, []) if r not in running and (timings.get(r) or {}).get("status") != "done"]
        if missing:
            log(f"note: {nb.stem} reads the outputs of {', '.join(missing)}, which this run folder has not finished: "
                "it trains what it lacks or reports it unavailable")


def run_notebooks(
    profile: str = "demo",
    run_dir: str | os.PathLike[str] | None = None,
    data_root: str | None = None,
    seed: int | None = None,
    names: Sequence[str] | None = None,
    extra_parameters: dict[str, Any] | None = None,
    kernel_name: str | None = DEFAULT_KERNEL,
    log=None,
    at_once: int | None = None,
) -> list[NotebookResult]:
    """Run the notebooks with papermill, all into one run folder: one after another in
    their order, or — ``at_once`` > 1 — up to that many at once, each (in order) as soon as
    the notebooks it reads from are done (:func:`notebook_order`): 01, 02 and 08 read
    nothing, 03 and 04 only 02, 05 and 06 02–04, 07 02 and 05. Each notebook runs in its own
    kernel process either way; a thread of this process drives each
    (``concurrent.futures.ThreadPoolExecutor``), and with a terminal each running notebook
    draws its bars on its own band of lines. A failure is said when it happens; no notebook
    starts after it, those running finish. Ctrl-C interrupts every running kernel (SIGINT,
    as Jupyter's interrupt), records those notebooks as ``interrupted`` and raises
    ``KeyboardInterrupt``. A notebook that reads a notebook neither run now nor finished in
    the run folder before is named first.

    Args:
        profile: profile name passed to every notebook.
        run_dir: run folder (relative to the repository root); None → ``runs/<profile>``.
        data_root: real-data folder, or None for the default (``../shared/data`` when present).
        seed: seed passed to every notebook (None → the profile's seed).
        names: subset of notebooks (prefixes such as ``"01"``); default all.
        extra_parameters: more parameters for every notebook (must be declared there).
        kernel_name: the Jupyter kernel every notebook runs on (default
            :data:`DEFAULT_KERNEL`); None = each notebook's own kernelspec.
        log: where progress lines go (default: print).
        at_once: notebooks run at once (None → the profile's ``notebooks_at_once``).
    Returns:
        one :class:`NotebookResult` per notebook, in order.
    Raises:
        NotebookKernelError: a notebook's kernel is not installed (found before any
            notebook runs or the run folder is opened).
        NotebookFailed: naming the notebook and cell of the first failure (no notebook
            starts after it; those running finish); ``timings.json`` then holds every
            notebook that finished and the failed one (``status`` ``failed``, ``error``).
        ValueError: ``at_once`` < 1.
    """
    import concurrent.futures as cf

    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .config import load_profile

    log = log or _print_flush
    prof = load_profile(profile)
    at_once = prof.notebooks_at_once if at_once is None else at_once
    if at_once < 1:
        raise ValueError(f"at_once must be >= 1, got {at_once}")
    nbs = list_notebooks(names)
    kernels = check_kernels(nbs, kernel_name)
    if run_dir is None:
        run_dir = Path("runs") / profile
    run = Run.open(run_dir, profile=prof.name, seed=seed if seed is not None else prof.seed)
    out_dir = run.path("notebooks", mkdir=True)
    params = {
        "profile": profile,
        "run_dir": str(run.root),
        "data_root": data_root,
        "seed": seed if seed is not None else prof.seed,
        **(extra_parameters or {}),
    }
    timings_path = out_dir / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    lock = threading.Lock()  # timings, the free bar bands, the log
    total0 = time.perf_counter()
    from .progress import live_bars

    show = live_bars(sys.stderr)  # papermill's cell bar, on an interactive terminal only
    if show and at_once > 1 and log is _print_flush:  # another notebook's bar may sit on the cursor's line
        log = lambda msg: _print_flush("\r\x1b[2K" + msg)  # noqa: E731
    index = {nb.stem: i for i, nb in enumerate(nbs, 1)}
    bands = list(range(min(at_once, len(nbs)) or 1))
    band_lines = _band_lines(prof)
    kernel_procs: list[Any] = []  # every local kernel started (interrupted on Ctrl-C)
    interrupting = threading.Event()

    def execute(nb: Path) -> NotebookResult:
        out = out_dir / nb.name
        budget = prof.budgets_min.get(nb.stem[:2])
        with lock:
            band = bands.pop(0)
            log(f"[{index[nb.stem]}/{len(nbs)}] {nb.stem} (profile {profile}, budget {budget} min) ...")
        first = band * band_lines
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(
                str(nb),
                str(out),
                parameters=params,
                cwd=str(nb.parent),
                kernel_name=kernels[nb.stem],
                # papermill's own bar: which cell of which notebook is running
                progress_bar={"desc": f"{nb.stem}", "position": first, "leave": False, "file": sys.stderr,
                              "mininterval": 1.0} if show else False,
                log_output=False,
                kernel_manager_class=filtered_kernel_manager(first + 1, kernel_procs),
            )
        except BaseException as e:  # noqa: BLE001 — recorded, then raised again (as NotebookFailed when an error)
            dt = time.perf_counter() - t0
            if isinstance(e, PapermillExecutionError):
                cell, error = e.cell_index, f"{e.ename}: {e.evalue}"
            else:  # the kernel died or did not start, a timeout, an interruption ...
                cell, error = None, f"{type(e).__name__}: {e}"
            error = " ".join(error.split()) or type(e).__name__  # one line
            status = "interrupted" if interrupting.is_set() or not isinstance(e, Exception) else "failed"
            with lock:
                timings[nb.stem] = {"seconds": round(dt, 1), "status": status, "budget_min": budget,
                                    "kernel": kernels[nb.stem], "error": error}
                write_json_atomic(timings_path, timings)
                bands.append(band)
                if status == "failed":  # said now, not when the notebooks beside it finish
                    log(f"    {nb.stem} FAILED after {dt:.1f} s" + (f" in cell {cell}" if cell is not None else "")
                        + f": {error}")
            if not isinstance(e, Exception):
                raise
            raise NotebookFailed(nb.stem, cell, error, out) from (None if cell is not None else e)
        dt = time.perf_counter() - t0
        over = budget is not None and dt > budget * 60
        with lock:
            timings[nb.stem] = {"seconds": round(dt, 1), "status": "done", "budget_min": budget, "over_budget": over,
                                "kernel": kernels[nb.stem]}
            write_json_atomic(timings_path, timings)
            bands.append(band)
            bands.sort()
            log(f"    {nb.stem} done in {dt:.1f} s" + (f"  (OVER the {budget} min budget)" if over else ""))
        run.add_artifact(f"notebook:{nb.stem}", out)
        return NotebookResult(nb.stem, dt, out, budget)

    def interrupt_kernels() -> None:
        """Ctrl-C reached this process (the main thread): SIGINT to every kernel still running,
        as Jupyter's interrupt does, so that its cell stops, papermill records the notebook and
        shuts the kernel (and its worker processes) down."""
        import signal

        interrupting.set()
        for proc in list(kernel_procs):
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGINT)
                except OSError:
                    pass

    after = notebook_order(nbs, prof)  # with one at a time the reads point back: the numbered order
    _warn_missing_reads(nbs, notebook_order(list_notebooks(), prof), timings, log)
    waiting = list(nbs)
    done: dict[str, NotebookResult] = {}
    failure: BaseException | None = None
    pool = cf.ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="notebook")
    running: dict[cf.Future, str] = {}
    try:
        while waiting or running:
            if failure is None:
                for nb in [n for n in waiting if all(a in done for a in after[n.stem])]:
                    if len(running) >= at_once:
                        break
                    waiting.remove(nb)
                    running[pool.submit(execute, nb)] = nb.stem
            if not running:
                break
            finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                stem = running.pop(fut)
                try:
                    done[stem] = fut.result()
                except BaseException as e:  # noqa: BLE001 — the first failure is raised once the others finish
                    failure = failure or e
    except KeyboardInterrupt:
        interrupt_kernels()
        try:  # papermill records each interrupted notebook and shuts its kernel down
            cf.wait(running, timeout=60)
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            pass
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if failure is not None:
        raise failure
    if waiting:  # a notebook whose reads can never be done (a read of a later notebook)
        raise ValueError(f"notebooks {[nb.stem for nb in waiting]} wait for notebooks that never ran: {after}")
    log(f"all {len(nbs)} notebooks done in {time.perf_counter() - total0:.1f} s; executed copies in {out_dir}")
    return [done[nb.stem] for nb in nbs]


def notebook_parameters_cell(path: str | os.PathLike[str]) -> tuple[int, str] | None:
    """The (index, source) of the cell tagged ``parameters`` in a notebook, or None."""
    with open(path) as f:
        nb = json.load(f)
    for i, cell in enumerate(nb.get("cells", [])):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            src = cell.get("source", "")
            return i, "".join(src) if isinstance(src, list) else src
    return None


def resolve_notebook_run_dir(run_dir: str | None, profile: str) -> Path:
    """Notebook helper: ``run_dir`` parameter → absolute path (None → ``runs/<profile>``)."""
    return resolve_path(run_dir if run_dir is not None else Path("runs") / profile)


@dataclass
class NotebookContext:
    """What a notebook's first code cell needs: the profile, the run and the data root."""

    profile: Any
    run: Run
    data_root: Path | None
    seed: int

    @property
    def real_data(self) -> bool:
        return self.data_root is not None

    def describe(self) -> str:
        data = f"real data from {self.data_root}" if self.data_root else "synthetic data only (no data_root found)"
        return f"profile={self.profile.name} seed={self.seed} run_dir={self.run.root} | {data}"

    def requirements(self, notebook: str) -> str:
        """The Markdown line a notebook opens with — what it needs and how long it takes —
        for this context's profile and data root (:func:`notebook_requirements`).

        Raises:
            ValueError: an unknown notebook.
        """
        return notebook_requirements(self.profile, notebook, self.data_root)


def notebook_context(
    profile: str, run_dir: str | None, data_root: str | None, seed: int | None, variant: str | None = None
) -> NotebookContext:
    """Resolve a notebook's standard parameters (docs/architecture.md#notebooks-and-their-parameters).

    ``run_dir=None`` → ``runs/<profile>``; ``data_root=None`` → ``../shared/data`` when
    present, else synthetic only; ``seed=None`` → the profile's seed. Relative paths
    resolve from the repository root.

    Raises:
        ProfileError: unknown profile; FileNotFoundError: an explicit data_root is missing.
    """
    from .config import load_profile
    from .runs import resolve_data_root

    from .config import apply_torch_threads

    quiet_libraries()
    prof = load_profile(profile, variant=variant)
    apply_torch_threads(prof)
    seed = prof.seed if seed is None else int(seed)
    run = Run.open(resolve_notebook_run_dir(run_dir, prof.name), profile=prof.name, seed=seed)
    return NotebookContext(prof, run, resolve_data_root(data_root), seed)
