"""Execute the numbered notebooks in order with papermill (the main job and CI).

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
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

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
    """The numbered notebooks (``NN_*.ipynb``) in order, optionally only those whose name
    starts with one of ``names`` (``"01"`` or ``"01_data"``).

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
    return out


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


@dataclass
class NotebookResult:
    name: str
    seconds: float
    output: Path
    budget_min: float | None


def run_notebooks(
    profile: str = "demo",
    run_dir: str | os.PathLike[str] | None = None,
    data_root: str | None = None,
    seed: int | None = None,
    names: Sequence[str] | None = None,
    extra_parameters: dict[str, Any] | None = None,
    kernel_name: str | None = DEFAULT_KERNEL,
    log=None,
) -> list[NotebookResult]:
    """Run the notebooks in order with papermill, all into one run folder.

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
    Returns:
        one :class:`NotebookResult` per notebook, in order.
    Raises:
        NotebookKernelError: a notebook's kernel is not installed (found before any
            notebook runs or the run folder is opened).
        NotebookFailed: naming the notebook and cell of the first failure; ``timings.json``
            then holds every notebook that finished and the failed one (``status``
            ``failed``, ``error``).
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .config import load_profile

    log = log or _print_flush
    prof = load_profile(profile)
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
    results: list[NotebookResult] = []
    total0 = time.perf_counter()
    for i, nb in enumerate(nbs, 1):
        out = out_dir / nb.name
        budget = prof.budgets_min.get(nb.stem[:2])
        log(f"[{i}/{len(nbs)}] {nb.stem} (profile {profile}, budget {budget} min) ...")
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(
                str(nb),
                str(out),
                parameters=params,
                cwd=str(nb.parent),
                kernel_name=kernels[nb.stem],
                progress_bar=False,
                log_output=False,
            )
        except BaseException as e:  # noqa: BLE001 — recorded, then raised again (as NotebookFailed when an error)
            dt = time.perf_counter() - t0
            if isinstance(e, PapermillExecutionError):
                cell, error = e.cell_index, f"{e.ename}: {e.evalue}"
            else:  # the kernel died or did not start, a timeout, an interruption ...
                cell, error = None, f"{type(e).__name__}: {e}"
            error = " ".join(error.split()) or type(e).__name__  # one line
            status = "failed" if isinstance(e, Exception) else "interrupted"
            timings[nb.stem] = {"seconds": round(dt, 1), "status": status, "budget_min": budget,
                                "kernel": kernels[nb.stem], "error": error}
            write_json_atomic(timings_path, timings)
            if not isinstance(e, Exception):
                raise
            raise NotebookFailed(nb.stem, cell, error, out) from (None if cell is not None else e)
        dt = time.perf_counter() - t0
        over = budget is not None and dt > budget * 60
        timings[nb.stem] = {"seconds": round(dt, 1), "status": "done", "budget_min": budget, "over_budget": over,
                            "kernel": kernels[nb.stem]}
        write_json_atomic(timings_path, timings)
        run.add_artifact(f"notebook:{nb.stem}", out)
        msg = f"    done in {dt:.1f} s" + (f"  (OVER the {budget} min budget)" if over else "")
        log(msg)
        results.append(NotebookResult(nb.stem, dt, out, budget))
    log(f"all {len(nbs)} notebooks done in {time.perf_counter() - total0:.1f} s; executed copies in {out_dir}")
    return results


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


def quiet_libraries() -> None:
    """Keep notebook outputs readable: transformers/datasets progress bars and info logs
    off, the library deprecation warnings that do not concern the reader silenced."""
    import logging
    import warnings

    import datasets
    import transformers

    # bitsandbytes warns on import that an optional CPU kernel package is missing; the
    # fallback it uses instead is correct, and 4-bit is only used in the QLoRA test.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")


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
