"""Run folders and their manifest (docs/architecture.md#the-run-folder).

A run is a folder ``runs/<run-id>/`` that every step of the pipeline writes into::

    runs/<run-id>/
      manifest.json            # git commit, package versions, profile/variant, seeds,
                               # hardware, start/end times, artifact paths, steps
      models/base/             # the tiny base model (loadable by another process)
      consult/                 # predictions.jsonl, metrics.json
      triage/sft/  triage/grpo/
      attending/sft/  attending/<variant>/stage_<k>_<stratum>/
      eval/  figures/  notebooks/
      tensorboard/<training>/  # TensorBoard event files of every training (report_to="tensorboard")

:class:`Run` is the one helper every step uses to find those paths and to record what it
did in the manifest. Relative paths resolve from the repository root
(:func:`repo_root`), never from a notebook's folder.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

#: Packages whose versions go into every manifest.
TRACKED_PACKAGES: tuple[str, ...] = (
    "torch",
    "transformers",
    "trl",
    "peft",
    "bitsandbytes",
    "datasets",
    "accelerate",
    "tokenizers",
    "openai",
    "numpy",
    "pillow",
)

#: Sub-folders of a run (docs/architecture.md#the-run-folder).
RUN_SUBDIRS: tuple[str, ...] = ("models", "consult", "triage", "attending", "eval", "figures", "notebooks")

#: the run's folder of TensorBoard event files, one sub-folder per training (:meth:`Run.tensorboard_dir`)
TENSORBOARD_SUBDIR = "tensorboard"


def user_cache_dir(name: str, env: str) -> Path:
    """A cache folder of this project: ``$<env>`` when set (``~`` expanded), else
    ``$XDG_CACHE_HOME/mmed/<name>``, else ``~/.cache/mmed/<name>`` (the XDG base-directory
    rule). Not created here. Used by the specialist cache, the pre-trained base, the
    synthetic sets and the library field lists."""
    value = os.environ.get(env)
    if value:
        return Path(value).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")).expanduser() / "mmed" / name


def repo_root() -> Path:
    """The repository root: the folder that holds ``pyproject.toml`` above this package.

    Falls back to the current working directory for an installed (non-editable) package.
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


def resolve_path(path: str | os.PathLike[str] | None) -> Path | None:
    """Resolve ``path`` against :func:`repo_root` when relative; ``None`` stays ``None``."""
    if path is None:
        return None
    p = Path(path).expanduser()
    return p if p.is_absolute() else (repo_root() / p)


def default_data_root() -> Path | None:
    """``../shared/data`` beside the repository when it exists, else ``None`` (synthetic only).

    The environment variable ``MMED_DATA_ROOT`` overrides it (an empty value means none).
    """
    env = os.environ.get("MMED_DATA_ROOT")
    if env is not None:
        return resolve_path(env) if env else None
    cand = (repo_root() / ".." / "shared" / "data").resolve()
    return cand if cand.is_dir() else None


def resolve_data_root(data_root: str | os.PathLike[str] | None) -> Path | None:
    """The notebook/CLI ``data_root`` parameter: ``None`` → :func:`default_data_root`.

    Raises:
        FileNotFoundError: when an explicit ``data_root`` does not exist.
    """
    if data_root is None:
        return default_data_root()
    p = resolve_path(data_root)
    if not p.is_dir():
        raise FileNotFoundError(f"data_root {str(p)!r} does not exist or is not a folder")
    return p


def new_run_id(prefix: str = "run") -> str:
    """A sortable run id such as ``demo-20261130-142501``."""
    return f"{prefix}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=False
        )
        commit = out.stdout.strip()
        if not commit:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (``None`` when not installed)."""
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def hardware_info() -> dict[str, Any]:
    """CPU count, platform, python and (when torch has one) the CUDA device names."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "cuda_devices": [],
    }
    try:
        import torch

        if torch.cuda.is_available():
            info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return info


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    os.replace(tmp, path)
    return path


@dataclass
class Run:
    """A run folder and its ``manifest.json``.

    Create or reopen with :meth:`Run.open`; every step calls :meth:`start_step` /
    :meth:`end_step` (or the :meth:`step` context manager) and :meth:`add_artifact`.
    The manifest is rewritten atomically after every change, so a killed process leaves a
    readable manifest.

    Attributes:
        root: absolute path of ``runs/<run-id>``.
    """

    root: Path

    @classmethod
    def open(
        cls,
        run_dir: str | os.PathLike[str] | None = None,
        profile: str | None = None,
        variant: str | None = None,
        seed: int | None = None,
    ) -> "Run":
        """Open ``run_dir`` (created if missing; relative paths from the repository root).

        ``run_dir=None`` creates ``runs/<profile>-<timestamp>``. A new manifest records the
        git commit, package versions, hardware and start time; an existing one is kept and
        its ``profile`` must match.

        Raises:
            ValueError: when the run already records a different profile; ``run_dir`` is a
                file; its manifest is not a JSON object (naming the file).
        """
        if run_dir is None:
            run_dir = Path("runs") / new_run_id(profile or "run")
        root = resolve_path(run_dir)
        if root.exists() and not root.is_dir():
            raise ValueError(f"run folder {root} is a file, not a folder; pass another --run-dir")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as e:  # a file somewhere on the path
            raise ValueError(f"run folder {root} cannot be made: {e}") from None
        run = cls(root=root)
        with run._modify() as m:
            if not m:
                m.update({
                    "run_id": root.name,
                    "created": _now(),
                    "git_commit": _git_commit(repo_root()),
                    "packages": package_versions(),
                    "hardware": hardware_info(),
                    "profile": profile,
                    "variants": [],
                    "seeds": [],
                    "steps": {},
                    "artifacts": {},
                })
            elif profile is not None and m.get("profile") not in (None, profile):
                raise ValueError(
                    f"run {str(root)!r} was made with profile {m.get('profile')!r}, not {profile!r}; "
                    "use another --run-dir"
                )
            if profile is not None:
                m["profile"] = profile
            if variant is not None and variant not in m.setdefault("variants", []):
                m["variants"].append(variant)
            if seed is not None and seed not in m.setdefault("seeds", []):
                m["seeds"].append(seed)
        return run

    # -- paths ---------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest as a dict (``{}`` when none was written yet).

        Raises:
            ValueError: the file is not valid JSON or not a JSON object (naming the file).
        """
        if not self.manifest_path.exists():
            return {}
        try:
            with open(self.manifest_path) as f:
                m = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{self.manifest_path}: not valid JSON ({e}); the run manifest is damaged "
                             "(restore it or use another --run-dir)") from None
        if not isinstance(m, dict):
            raise ValueError(f"{self.manifest_path}: a run manifest must be a JSON object, "
                             f"got a {type(m).__name__} (restore it or use another --run-dir)")
        return m

    def path(self, *parts: str, mkdir: bool = False) -> Path:
        """``root / parts``; with ``mkdir=True`` the folder is created."""
        p = self.root.joinpath(*parts)
        if mkdir:
            p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def main_root(self) -> Path:
        """The run this one belongs to: for a seed replicate (``<main>/seeds/seed_<k>``, a run
        of its own, :func:`mmed.eval.replicates.replicate_run`) the main run's root, else ``root``."""
        parent = self.root.parent
        if parent.name == "seeds" and (parent.parent / "manifest.json").is_file():
            return parent.parent
        return self.root

    @property
    def tensorboard_root(self) -> Path:
        """``<main run>/tensorboard``: the folder ``tensorboard --logdir`` is given (:meth:`tensorboard_dir`)."""
        return self.main_root / TENSORBOARD_SUBDIR

    def tensorboard_dir(self, name: str) -> Path:
        """Where the TensorBoard event files of the training ``name`` go:
        ``<main run>/tensorboard/<name>`` (not created here).

        A seed replicate writes into its main run's folder (:attr:`main_root`), so that
        ``tensorboard --logdir runs/<id>/tensorboard`` shows every training of the run, each
        seed beside the others; ``name`` therefore carries the seed (e.g.
        ``triage_grpo_seed1``, :mod:`mmed.rl.tensorboard_logs`).

        Raises:
            ValueError: ``name`` is empty or not one folder name (holds a ``/``, or is ``.``/``..``).
        """
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise ValueError(f"tensorboard run name must be one folder name, got {name!r}")
        return self.tensorboard_root / name

    # -- manifest updates --------------------------------------------------------------
    def _write(self, m: dict[str, Any]) -> None:
        m["updated"] = _now()
        write_json_atomic(self.manifest_path, m)

    @contextlib.contextmanager
    def _modify(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write of the manifest under an exclusive file lock
        (``manifest.json.lock``, ``fcntl.flock``), so that trainings of one run running in
        parallel worker processes never lose each other's updates."""
        lock = self.root / "manifest.json.lock"
        with open(lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                m = self.manifest
                yield m
                self._write(m)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def update(self, **fields: Any) -> None:
        """Set top-level manifest fields (e.g. ``simulated_panel={...}``)."""
        with self._modify() as m:
            m.update(fields)

    def add_artifact(self, name: str, path: str | os.PathLike[str]) -> None:
        """Record an artifact path (stored relative to the run root when inside it)."""
        p = Path(path).resolve()
        try:
            rel = str(p.relative_to(self.root.resolve()))
        except ValueError:
            rel = str(p)
        with self._modify() as m:
            m.setdefault("artifacts", {})[name] = rel

    def start_step(self, name: str, **info: Any) -> None:
        """Record that step ``name`` started (time and any ``info``)."""
        with self._modify() as m:
            m.setdefault("steps", {})[name] = {"start": _now(), "end": None, "status": "running", **info}

    def end_step(self, name: str, status: str = "done", **info: Any) -> None:
        """Record that step ``name`` ended with ``status`` (``done``/``failed``/``skipped``)."""
        with self._modify() as m:
            step = m.setdefault("steps", {}).setdefault(name, {"start": None})
            step.update({"end": _now(), "status": status, **info})

    def step_done(self, name: str) -> bool:
        """Whether step ``name`` finished with status ``done``."""
        return self.manifest.get("steps", {}).get(name, {}).get("status") == "done"

    def step(self, name: str, **info: Any):
        """Context manager: :meth:`start_step`, then :meth:`end_step` (``failed`` on error)."""
        run = self

        class _Step:
            def __enter__(self_inner):
                run.start_step(name, **info)
                return run

            def __exit__(self_inner, exc_type, exc, tb):
                if exc_type is None:
                    run.end_step(name, "done")
                else:
                    run.end_step(name, "failed", error=f"{exc_type.__name__}: {exc}")
                return False

        return _Step()
