"""Every committed notebook: one `parameters` cell with the standard parameters, no outputs.

(Notebooks are executed once per CI run by .ci/run with papermill, not again here.)
"""

import ast
import json
import re
from pathlib import Path

import pytest

from mmed.notebooks import STANDARD_PARAMETERS, list_notebooks

NOTEBOOKS = list_notebooks()


def test_there_are_notebooks():
    assert NOTEBOOKS, "no numbered notebooks in notebooks/"
    assert NOTEBOOKS[0].name == "01_data.ipynb"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_and_no_outputs(nb_path: Path):
    nb = json.loads(nb_path.read_text())
    param_cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(param_cells) == 1, f"{nb_path.name}: {len(param_cells)} parameters cells"
    src = "".join(param_cells[0]["source"])
    assigned = {
        t.id for node in ast.parse(src).body if isinstance(node, (ast.Assign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)
    }
    missing = set(STANDARD_PARAMETERS) - assigned
    assert not missing, f"{nb_path.name}: parameters cell lacks {sorted(missing)}"
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] == "code":
            assert c.get("outputs", []) == [], f"{nb_path.name}: cell {i} has outputs"
            assert c.get("execution_count") is None, f"{nb_path.name}: cell {i} has an execution count"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_valid_nbformat_with_cell_ids(nb_path: Path):
    """nbformat 4.5 cells carry a unique ``id`` (nbformat warns now and will refuse later)."""
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    nbformat.validate(nb)
    ids = [c.get("id") for c in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids), nb_path.name


def _code_trees(nb_path: Path) -> list[ast.Module]:
    nb = json.loads(nb_path.read_text())
    return [ast.parse("".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_use_only_public_library_names(nb_path: Path):
    """A notebook calls the library's public functions: no ``module._name`` attribute and no
    ``from mmed... import _name`` (a private helper a notebook needs belongs in the API)."""
    private = []
    for tree in _code_trees(nb_path):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                private.append(node.attr)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mmed"):
                private += [a.name for a in node.names if a.name.startswith("_")]
    assert not private, f"{nb_path.name} uses private names {private}"


def test_triage_notebook_is_one_library_call():
    """Notebook 03 runs its step through :func:`mmed.eval.triage.triage_step` (the function
    ``python -m mmed train-triage`` calls), records the metrics that call built, and defines
    no function of its own."""
    nb_path = next(p for p in NOTEBOOKS if p.stem == "03_triage_grpo")
    calls, defs = [], []
    for tree in _code_trees(nb_path):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                calls.append(node.func.attr)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                defs.append(getattr(node, "name", "lambda"))
    assert calls.count("triage_step") == 1 and not defs, (calls, defs)
    for name in ("train_triage", "evaluate_stages", "downstream_accuracy", "triage_replicates", "real_evaluation_items"):
        assert name not in calls, f"notebook 03 calls {name} itself: the step does"
    src = nb_path.read_text()
    assert "record_notebook_metrics(ctx.run.root, T.STEP_NOTEBOOK, metrics)" in src and "metrics = step.metrics" in src


#: the function definitions a notebook may hold: figure savers that prefix the notebook's name
PLOT_HELPERS = {"save"}
#: notebooks whose step is one library call that builds the metrics they record
STEP_CALLS = {"01_data": "data_step", "02_consultation_and_stratification": "consultation_step", "03_triage_grpo": "triage_step",
              "04_cmarl_curriculum": "curriculum_step", "05_ablations": "ablations_step",
              "06_test_time_scaling": "tts_step", "07_disagreement_inspector": "inspection_step"}


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_defines_no_function_but_a_figure_saver(nb_path: Path):
    """Logic lives in ``mmed/``: a notebook defines no function (lambdas included) other than
    a trivial figure saver (:data:`PLOT_HELPERS`), whose body is one call."""
    defs = []
    for tree in _code_trees(nb_path):
        for node in ast.walk(tree):
            if isinstance(node, ast.Lambda):
                defs.append("lambda")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.name not in PLOT_HELPERS or len(node.body) != 1:
                    defs.append(node.name)
    assert not defs, f"{nb_path.name} defines {defs}: move them into mmed/"


@pytest.mark.parametrize("stem", sorted(STEP_CALLS))
def test_step_notebook_records_what_its_step_built(stem: str):
    """Notebooks 01-07 make their step with one library call (the one their command makes)
    and record that call's metrics unchanged: no metrics dictionary is assembled in a cell."""
    nb_path = next(p for p in NOTEBOOKS if p.stem == stem)
    calls, metric_writes = [], []
    for tree in _code_trees(nb_path):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                calls.append(getattr(node.func, "attr", getattr(node.func, "id", None)))
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) \
                    and isinstance(node.value, ast.Name) and node.value.id == "metrics":
                metric_writes.append(ast.unparse(node))
    assert calls.count(STEP_CALLS[stem]) == 1, calls
    assert not metric_writes, f"{stem} assembles metrics in a cell: {metric_writes}"
    assert "metrics = step.metrics" in nb_path.read_text()


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_opens_with_its_requirement_line(nb_path: Path):
    """Right after resolving its context, each notebook displays what it needs and how long
    it takes, computed from the profile (:meth:`NotebookContext.requirements` with its own
    name; mmed/notebook_guide.py), before anything else it prints."""
    nb = json.loads(nb_path.read_text())
    cells = nb["cells"]
    params = next(i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    context = next(c for c in cells[params + 1:] if c["cell_type"] == "code")
    lines = "".join(context["source"]).splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("ctx = notebook_context("))
    assert lines[i + 1].startswith(f'display(Markdown(ctx.requirements("{nb_path.stem}")))'), lines[i + 1]
    assert re.search(r"^from IPython\.display import .*\bMarkdown\b", "\n".join(lines[:i]), re.M), nb_path.name


def _calls(nb_path: Path):
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, ast.Call):
                    yield node


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_figure_and_font_sizes(nb_path: Path):
    """What a notebook sets itself: a ``figsize`` is a literal no wider than the limit (a
    figure with a variable number of panels comes from ``panel_grid``), a literal
    ``fontsize`` is at least the minimum, and figures are saved through
    ``mmed.viz.grids.save`` (which checks them; mmed/viz/layout.py)."""
    from mmed.viz.layout import MAX_FIGURE_WIDTH_IN, MIN_FONT_SIZE_PT

    for call in _calls(nb_path):
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        for kw in call.keywords:
            if kw.arg == "figsize":
                assert isinstance(kw.value, ast.Tuple) and isinstance(kw.value.elts[0], ast.Constant), (
                    f"{nb_path.name}: figsize={ast.unparse(kw.value)} is computed: use mmed.viz.layout.panel_grid")
                assert kw.value.elts[0].value <= MAX_FIGURE_WIDTH_IN, f"{nb_path.name}: figsize={ast.unparse(kw.value)}"
            if kw.arg in ("fontsize", "labelsize") and isinstance(kw.value, ast.Constant):
                assert isinstance(kw.value.value, str) or kw.value.value >= MIN_FONT_SIZE_PT, (
                    f"{nb_path.name}: {ast.unparse(call)[:80]}")
        assert name != "savefig", f"{nb_path.name}: fig.savefig: use mmed.viz.grids.save (it checks readability)"
