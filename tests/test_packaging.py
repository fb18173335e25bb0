"""environment.yml and pyproject.toml list the same runtime packages."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent

# Allowed differences, each with its reason. Empty today: both files list the same set.
ONLY_IN_ENVIRONMENT_YML: set[str] = {
    "pip",  # conda needs pip to install the pip: section
    "python",  # conda pins the interpreter; pyproject uses requires-python
}
ONLY_IN_PYPROJECT: set[str] = set()

REQUIRED_RUNTIME = {
    "jupyterlab", "torch", "transformers", "trl", "peft", "bitsandbytes", "datasets",
    "matplotlib", "seaborn", "ipywidgets", "openai", "papermill", "tqdm", "pandas",
}


def _norm(spec: str) -> str:
    name = re.split(r"[<>=!~\[; ]", spec.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return data, {_norm(d) for d in data["project"]["dependencies"]}


def _environment():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_norm(d) for d in dep["pip"] if not d.startswith("-")}
        else:
            names.add(_norm(dep))
    return names


def test_same_runtime_packages():
    _, py = _pyproject()
    env = _environment()
    assert env - py == ONLY_IN_ENVIRONMENT_YML
    assert py - env == ONLY_IN_PYPROJECT


def test_required_runtime_and_test_extras():
    data, py = _pyproject()
    assert REQUIRED_RUNTIME <= py
    test = {_norm(d) for d in data["project"]["optional-dependencies"]["test"]}
    assert {"pytest", "hypothesis", "ipykernel"} <= test


def test_makefile_pins_cpu_torch():
    assert "torch==2.13.0" in (REPO / "Makefile").read_text()


def test_no_test_skips_on_a_missing_hard_dependency():
    """A runtime or test dependency that fails to import is a broken install: a test must
    fail on it, never skip (``pytest.importorskip`` is for optional packages only)."""
    data, runtime = _pyproject()
    hard = runtime | {_norm(d) for d in data["project"]["optional-dependencies"]["test"]}
    call = re.compile(r"importorskip\(\s*['\"]([A-Za-z0-9_.\-]+)['\"]")
    found = [(f.name, m.group(1)) for f in sorted((REPO / "tests").glob("*.py"))
             for m in call.finditer(f.read_text()) if _norm(m.group(1).split(".")[0]) in hard]
    assert found == []
