"""The repository explains itself: docs/architecture.md exists, the README links it, every
section of that page cited in the code (``docs/architecture.md#<anchor>``) is one of its
headings, and no comment cites a page outside the repository or an issue number."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "architecture.md"
CITE = re.compile(r"docs/architecture\.md#([A-Za-z0-9_-]+)")
OUTSIDE = re.compile(r"DESIGN §|issue [0-9]")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation other than ``-``/``_``
    dropped, spaces -> ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors() -> set[str]:
    return {_anchor(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", PAGE.read_text(encoding="utf-8"), re.M)}


def _sources(*folders: str) -> list[Path]:
    out = []
    for folder in folders:
        for p in sorted((ROOT / folder).rglob("*")):
            if p.is_file() and p.suffix in {".py", ".ipynb", ".yaml", ".md"} and ".ipynb_checkpoints" not in p.parts:
                out.append(p)
    return out


def test_page_exists_and_readme_links_it():
    assert PAGE.is_file()
    assert "](docs/architecture.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert {"layers", "profiles", "one-consultation", "one-training-step", "the-run-folder"} <= _anchors()


def test_every_cited_section_exists():
    anchors = _anchors()
    cited = {}
    for p in [*_sources("mmed", "tests", "notebooks", "benchmarks", "docs"), ROOT / "README.md"]:
        for m in CITE.finditer(p.read_text(encoding="utf-8")):
            cited.setdefault(m.group(1), []).append(p.relative_to(ROOT).as_posix())
    assert cited, "no code cites docs/architecture.md"
    missing = {a: files for a, files in cited.items() if a not in anchors}
    assert not missing, f"cited sections missing from docs/architecture.md: {missing}"


def test_no_reference_outside_the_repository():
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in _sources("mmed", "notebooks")
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if OUTSIDE.search(line)]
    assert not hits, f"'DESIGN §' or 'issue N' references: {hits}"
