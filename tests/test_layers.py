"""Layers that only point down (docs/architecture.md#layers).

Every module under ``mmed/`` is parsed with ``ast`` (nothing is imported); every import it
makes — at the head or inside a function, absolute or relative — is resolved to the module
it names, and no module may import from a layer after its own in :data:`mmed.LAYERS`. The
table of docs/architecture.md lists the same layers in the same order.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from mmed import LAYERS, OUTSIDE_LAYERS

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "architecture.md"

#: Imports against the order that are still there, as ``(importer, imported)`` module
#: names; docs/architecture.md#layers names each under "Known exceptions". Empty it as
#: they go: the test fails on a new one and on one that is gone but still listed.
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()


def module_name(path: Path, root: Path = ROOT) -> str:
    """``mmed/rl/triage.py`` → ``mmed.rl.triage``; ``mmed/data/__init__.py`` → ``mmed.data``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(root: Path = ROOT) -> dict[str, Path]:
    """``{module name: file}`` of every module under ``root/mmed`` (not ``mmed/assets/``: package
    data, e.g. the processor file inside a shipped model folder, never imported as a module)."""
    return {module_name(p, root): p for p in sorted((root / "mmed").rglob("*.py"))
            if p.relative_to(root / "mmed").parts[0] != "assets"}


def imported_modules(path: Path, name: str, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """``(module, line)`` of every ``mmed`` module that the file ``path`` (module ``name``)
    imports, anywhere in it: ``import a.b``, ``from a import b`` (``b`` a module → ``a.b``,
    else ``a``), ``from .x import y`` and ``from .. import y`` resolved from the file's
    package. A name that is not a module file resolves to the nearest package that is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def nearest(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
        for t in targets:
            if t == "mmed" or t.startswith("mmed."):
                mod = nearest(t)
                if mod is not None:
                    out.append((mod, node.lineno))
    return out


def layer_of(path: Path, root: Path = ROOT) -> int | None:
    """Index in :data:`mmed.LAYERS` of the layer holding ``path``; None outside every layer.

    Raises:
        AssertionError: a module in no layer and not in :data:`mmed.OUTSIDE_LAYERS`, or in two.
    """
    rel = path.relative_to(root).as_posix()
    if rel in OUTSIDE_LAYERS:
        return None
    hits = [i for i, (_, paths) in enumerate(LAYERS) for p in paths if rel == p or (p.endswith("/") and rel.startswith(p))]
    assert len(hits) == 1, f"{rel}: in {len(hits)} layers of mmed.LAYERS (expected one, or list it in OUTSIDE_LAYERS)"
    return hits[0]


def violations(root: Path = ROOT) -> list[tuple[str, str, str]]:
    """``(where, importer, imported)`` for every import of a module from a later layer;
    ``where`` is ``file:line importer [layer] -> imported [layer]``."""
    modules = package_modules(root)
    out = []
    for name, path in modules.items():
        own = layer_of(path, root)
        if own is None:
            continue
        for target, line in imported_modules(path, name, modules):
            theirs = layer_of(modules[target], root)
            if theirs is not None and theirs > own:
                out.append((f"{path.relative_to(root).as_posix()}:{line} {name} [{LAYERS[own][0]}] -> "
                            f"{target} [{LAYERS[theirs][0]}]", name, target))
    return out


def _doc_table() -> list[tuple[str, ...]]:
    """The first column of the table under ``## Layers``: the backquoted paths of each row."""
    text = PAGE.read_text(encoding="utf-8")
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [tuple(re.findall(r"`([^`]+)`", row.split("|")[1])) for row in rows]


def test_the_architecture_page_lists_the_layers_of_the_library_in_order():
    assert _doc_table() == [paths for _, paths in LAYERS]


def test_every_module_is_in_one_layer_or_outside_them_all():
    modules = package_modules()
    assert len(modules) > 50
    for path in modules.values():
        layer_of(path)  # raises naming the module
    for rel in OUTSIDE_LAYERS:
        assert (ROOT / rel).is_file(), rel


def test_modules_outside_the_layers_import_nothing_from_mmed():
    modules = package_modules()
    for rel in OUTSIDE_LAYERS:
        path = ROOT / rel
        assert imported_modules(path, module_name(path), modules) == [], rel


def test_the_import_walker_sees_every_form_of_import(tmp_path):
    pkg = tmp_path / "mmed"
    for rel in ("__init__.py", "config.py", "data/__init__.py", "data/schema.py", "rl/__init__.py",
                "rl/triage.py", "eval/__init__.py", "eval/metrics.py", "consult.py"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text("")
    (pkg / "rl" / "triage.py").write_text(
        "import os\n"
        "from ..config import Profile\n"              # relative, a name in a module
        "from ..eval import metrics\n"                # relative, a module of a package
        "import mmed.data.schema as S\n"              # absolute
        "def f():\n"
        "    from mmed.consult import load_items\n"  # inside a function
        "    from .. import data\n"                   # a package
        "    from mmed import __version__\n")         # the package itself
    modules = package_modules(tmp_path)
    got = imported_modules(pkg / "rl" / "triage.py", "mmed.rl.triage", modules)
    assert got == [("mmed.config", 2), ("mmed.eval.metrics", 3), ("mmed.data.schema", 4), ("mmed.consult", 6),
                   ("mmed.data", 7), ("mmed", 8)]


def test_no_module_imports_from_a_later_layer():
    found = violations()
    pairs = {(a, b) for _, a, b in found}
    new = [w for w, a, b in found if (a, b) not in KNOWN_EXCEPTIONS]
    assert not new, "imports from a later layer (docs/architecture.md#layers):\n" + "\n".join(sorted(new))
    gone = sorted(KNOWN_EXCEPTIONS - pairs)
    assert not gone, f"no longer there, remove from KNOWN_EXCEPTIONS and the page's known exceptions: {gone}"


def test_the_architecture_page_names_the_known_exceptions():
    """The page's layer section names every known exception, or says there is none."""
    section = PAGE.read_text(encoding="utf-8").split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    if not KNOWN_EXCEPTIONS:
        assert "Known exceptions to the order: none" in section
    for pair in sorted(KNOWN_EXCEPTIONS):
        for name in pair:
            assert f"`{name.replace('.', '/')}.py`" in section or f"`{name}`" in section, name
