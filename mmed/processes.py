"""Whether this program can start worker processes (foundation layer: the synthetic set's
drawing processes and the worker pool of trainings, :mod:`mmed.parallel`, both ask).

Worker processes are started with ``multiprocessing``'s ``spawn`` method: a fresh
interpreter that re-runs the parent's ``__main__`` module from its file
(``multiprocessing/spawn.py``, ``get_preparation_data`` and ``_fixup_main_from_path``). A
program read from standard input (``python - < script.py``) has no such file, and its
workers die at start (``BrokenProcessPool``); there the work runs in this process instead.
"""

from __future__ import annotations

import os
import sys


def can_spawn_workers() -> bool:
    """True unless the ``__main__`` module names a file that does not exist (a program read
    from standard input: ``__file__ == "<stdin>"``). An interactive interpreter, ``python -c``,
    a Jupyter kernel, ``python -m ...`` and a script file can all spawn workers."""
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None):
        return True  # python -m: the workers import the module by name
    path = getattr(main, "__file__", None)
    return path is None or os.path.exists(path)
