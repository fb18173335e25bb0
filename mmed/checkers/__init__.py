"""Checkers for the metrics each notebook records, one module per notebook.

Importing this package imports every submodule, each of which registers its checker with
:func:`mmed.checks.register_checker`. Add ``nbNN_<name>.py`` for a new notebook.
"""

import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")
