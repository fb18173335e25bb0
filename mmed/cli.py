"""Command line: ``python -m mmed <command> ...`` (docs/architecture.md#command-line).

Commands (each takes ``--profile`` and ``--run-dir``; the notebooks call the same
functions):

- ``notebooks``       run the numbered notebooks with papermill (in order, or independent ones at once), then ``check-run``
- ``check-run``       check the metrics files notebooks recorded in a run (CI), and the
  degenerate-agent guard (one answer on nearly every item; :func:`mmed.checks.degenerate_agents`)

:mod:`mmed.cli_commands` registers the others through :data:`COMMANDS`: ``consult``,
``consult-step``, ``train-triage``, ``train-attending``, ``ablations``, ``test-time-scaling``,
``inspect`` and ``figures``, each the step a notebook makes (docs/architecture.md), and
``ship-base`` (writes a profile's pre-trained tiny base to ``mmed/assets/base``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

#: name → (add_arguments(parser), run(args) -> exit code)
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]] = {}


def command(name: str, help: str):
    """Decorator registering ``run(args)``; the function's ``add_arguments`` attribute adds flags."""

    def deco(fn):
        COMMANDS[name] = (lambda p: getattr(fn, "add_arguments", lambda _p: None)(p), fn, help)
        return fn

    return deco


def add_common(p: argparse.ArgumentParser, profile_default: str = "demo") -> None:
    """``--profile``, ``--run-dir``, ``--data-root``, ``--seed``."""
    p.add_argument("--profile", default=profile_default, help="smoke | demo | paper | path to a YAML profile")
    p.add_argument("--run-dir", default=None, help="run folder (relative paths from the repository root)")
    p.add_argument("--data-root", default=None, help="real data folder (default ../shared/data when present)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: the profile's)")


def _positive_int(text: str) -> int:
    """argparse type: an int >= 1 (else argparse's usage error, with this message)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}")
    return n


def _notebooks_args(p: argparse.ArgumentParser) -> None:
    from .notebooks import DEFAULT_KERNEL

    add_common(p)
    p.add_argument("--only", nargs="*", default=None, help="notebook prefixes to run, e.g. 01 03")
    p.add_argument("--kernel", default=DEFAULT_KERNEL,
                   help=f"Jupyter kernel every notebook runs on, whatever kernel its metadata names "
                        f"(default {DEFAULT_KERNEL}: the Python running this command, i.e. the project's venv); "
                        "'' = each notebook's own kernelspec")
    p.add_argument("--at-once", type=_positive_int, default=None, metavar="N",
                   help="notebooks run at once, each when the notebooks it reads from are done (default: the "
                        "profile's notebooks_at_once; 1 = one after another)")
    p.add_argument("--no-check", action="store_true",
                   help="do not run check-run on the run folder after the notebooks (it runs by default, so that "
                        "`make demo` fails on invalid metrics or a degenerate agent)")


@command("notebooks", "run the numbered notebooks with papermill (in order; with notebooks_at_once > 1 each as "
                      "soon as the notebooks it reads from are done), then check-run on the run folder")
def _notebooks(args: argparse.Namespace) -> int:
    from .notebooks import NotebookFailed, resolve_notebook_run_dir, run_notebooks

    try:  # NotebookKernelError (a kernel that is not installed) is a ValueError: main prints it as one line
        run_notebooks(args.profile, args.run_dir, args.data_root, args.seed, names=args.only,
                      kernel_name=args.kernel or None, at_once=args.at_once)
    except NotebookFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the runner has interrupted the kernels and recorded them
        print("interrupted: the running notebooks are recorded as such in <run_dir>/notebooks/timings.json",
              file=sys.stderr)
        return 130
    if args.no_check:
        return 0
    run_dir = resolve_notebook_run_dir(args.run_dir, args.profile)
    print(f"check-run --run-dir {run_dir}", flush=True)
    code = report_check_run(str(run_dir))
    if code:
        print(f"error: check-run failed on {run_dir} (see the lines above)", file=sys.stderr)
    return code


_notebooks.add_arguments = _notebooks_args


def _check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", required=True)


@command("check-run", "check the metrics files notebooks recorded in a run")
def _check_run(args: argparse.Namespace) -> int:
    return report_check_run(args.run_dir)


def report_check_run(run_dir: str, log: Callable[[str], None] = print) -> int:
    """Run :func:`mmed.checks.check_run` on ``run_dir`` and print one line per notebook
    (``ok`` / ``FAILED`` and its problems), the degenerate-agent guard's line (with its
    share and action from the run's profile) and any guard warnings; returns the exit code
    (0 all fine, 1 a problem or no notebook in the run)."""
    from .checks import DEGENERATE_KEY, check_run, guard_settings

    warnings: list[str] = []
    results = check_run(run_dir, warnings=warnings)
    bad = 0
    for stem, problems in results.items():
        if stem == DEGENERATE_KEY:
            share, action, source = guard_settings(run_dir)
            state = "FAILED" if problems else ("ok" if not warnings else f"{len(warnings)} warning(s)")
            log(f"{stem} (one answer on > {share:.0%} of items; {action}, {source}): {state}")
        else:
            log(f"{stem}: {'ok' if not problems else 'FAILED'}")
        for pr in problems:
            log(f"    - {pr}")
        bad += bool(problems)
    for w in warnings:
        log(f"    warning (not a failure under this profile): {w}")
    if not results:
        print("no notebooks found in the run", file=sys.stderr)
        return 1
    return 1 if bad else 0


_check_run.add_arguments = _check_args


def _register_optional() -> None:
    """Import modules that register more commands (they exist as the project grows)."""
    import importlib

    for mod in ("mmed.cli_commands",):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


def build_parser() -> argparse.ArgumentParser:
    _register_optional()
    parser = argparse.ArgumentParser(prog="python -m mmed", description="MMedAgent-RL reference implementation")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add, _, help_) in sorted(COMMANDS.items()):
        add(sub.add_parser(name, help=help_))
    return parser


#: exit code of a command stopped by a user error (bad option, profile, data, run folder)
USER_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code.

    A user error — a ``ValueError`` (``ProfileError``, ``DataError`` ...), a missing file or
    an invalid YAML file — is printed as one ``error: ...`` line naming what is wrong, with
    exit code :data:`USER_ERROR`; ``MMED_DEBUG=1`` re-raises it with its traceback.
    """
    import logging
    import os

    import yaml

    # bitsandbytes warns on import that an optional CPU kernel package cannot be fetched
    # (offline); its fallback is correct (mmed.quiet.quiet_libraries, the same for kernels)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    logging.getLogger("kernels").setLevel(logging.ERROR)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except (ValueError, FileNotFoundError, NotADirectoryError, yaml.YAMLError) as e:
        if os.environ.get("MMED_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        print("(set MMED_DEBUG=1 to see the traceback)", file=sys.stderr)
        return USER_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
