"""The notebook runner (mmed/notebooks.py, ``python -m mmed notebooks``) on small notebooks
written here: which kernel runs them, one-line errors naming the notebook and the kernel,
and ``timings.json`` keeping every finished notebook when a later one fails.

Each test that executes starts one Jupyter kernel per notebook (a second or two each).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

import mmed.notebooks as runner
from mmed.cli import main

PARAMETERS = 'profile = "smoke"\nrun_dir = None\ndata_root = None\nseed = 0'
MISSING = "no-such-kernel-xyz"


def _write_nb(folder: Path, stem: str, kernel: str, code: str = "x = 6 * 7\nprint('answer', x)") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    params = nbformat.v4.new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    path = folder / f"{stem}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def nb_dir(tmp_path, monkeypatch):
    d = tmp_path / "notebooks"
    d.mkdir()
    monkeypatch.setattr(runner, "notebooks_dir", lambda: d)
    monkeypatch.delenv("MMED_DEBUG", raising=False)
    return d


def _timings(run: Path) -> dict:
    return json.loads((run / "notebooks" / "timings.json").read_text())


def _outputs(path: Path) -> list:
    return [o for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code" for o in c.get("outputs", [])]


def test_default_kernel_is_the_projects_not_the_notebooks_kernelspec(nb_dir, tmp_path, capsys):
    """A notebook whose kernelspec names a kernel this machine lacks runs on the project's
    kernel (``--kernel`` default ``python3``, the Python running the command)."""
    _write_nb(nb_dir, "01_elsewhere", MISSING)
    run = tmp_path / "run"
    assert main(["notebooks", "--profile", "smoke", "--run-dir", str(run), "--no-check"]) == 0
    assert any("answer 42" in "".join(o.get("text", "")) for o in _outputs(run / "notebooks" / "01_elsewhere.ipynb"))
    assert _timings(run)["01_elsewhere"]["status"] == "done"
    assert runner.DEFAULT_KERNEL == "python3"


def test_unknown_kernel_option_is_one_line_naming_notebook_and_kernel(nb_dir, tmp_path, capsys):
    _write_nb(nb_dir, "01_first", "python3")
    run = tmp_path / "run"
    assert main(["notebooks", "--profile", "smoke", "--run-dir", str(run), "--kernel", MISSING]) == 2
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith("error: ") and "01_first" in first and repr(MISSING) in first
    assert "python3" in first  # the kernels that are installed
    assert "Traceback" not in err
    assert not run.exists()  # checked before anything runs: no run folder, no output-less executed copy


def test_notebook_kernelspec_missing_stops_before_any_notebook_runs(nb_dir, tmp_path):
    """``kernel_name=None`` keeps each notebook's own kernelspec; a missing one is found
    before the first notebook starts (not after an hour of earlier notebooks)."""
    _write_nb(nb_dir, "01_fine", "python3")
    _write_nb(nb_dir, "02_odd", MISSING)
    run = tmp_path / "run"
    with pytest.raises(runner.NotebookKernelError) as e:
        runner.run_notebooks("smoke", run, kernel_name=None, log=lambda _m: None)
    assert e.value.notebook == "02_odd" and e.value.kernel == MISSING
    assert "\n" not in str(e.value) and "02_odd" in str(e.value) and MISSING in str(e.value)
    assert isinstance(e.value, ValueError)  # a user error: `python -m mmed` prints one line, exit code 2
    assert not run.exists()


def test_timings_of_finished_notebooks_survive_a_dead_kernel(nb_dir, tmp_path, capsys):
    """A failure that is not a cell error (here the kernel dies) is one line naming the
    notebook, and ``timings.json`` keeps the notebook that finished before it."""
    _write_nb(nb_dir, "01_fine", "python3")
    _write_nb(nb_dir, "02_dies", "python3", code="import os\nos._exit(3)")
    run = tmp_path / "run"
    assert main(["notebooks", "--profile", "smoke", "--run-dir", str(run), "--no-check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: notebook 02_dies failed") and len(err.strip().splitlines()) == 1
    t = _timings(run)
    assert t["01_fine"]["status"] == "done" and t["02_dies"]["status"] == "failed"
    assert "DeadKernelError" in t["02_dies"]["error"]



def test_kernel_noise_is_filtered_from_the_runner_output_and_errors_are_not(nb_dir, tmp_path, capsys):
    """What a kernel (or a worker process it starts) writes to its terminal reaches the
    runner's through mmed.notebooks.NoiseFilter: the kernel's own "TCP without encryption"
    warning and the noise lines below are dropped; other lines, and a traceback that
    mentions the same words, are kept. (Outside pytest ipykernel also copies such fd-level
    output into the executed notebook, unfiltered: ipykernel/iostream.py watches the fds
    only when PYTEST_CURRENT_TEST is unset.)"""
    noise = ("\rLoading weights:   0%|          | 0/57 [00:00<?, ?it/s]"
             "\rLoading weights: 100%|##########| 57/57 [00:00<00:00, 25261.55it/s]\n"
             "/x/site-packages/transformers/training_args.py:1541: FutureWarning: `gradient_checkpointing` is deprecated\n"
             "  warnings.warn(\n"
             "Failed to load CPU gemm_4bit_forward from kernels-community: offline\n")
    error = ("Traceback (most recent call last):\n"
             '  File "/x/ops.py", line 1, in <module>\n'
             '    get_kernel("kernels-community/quantization-bitsandbytes")\n'
             "RuntimeError: no kernels-community kernel without encryption\n")
    code = (f"import os\nos.write(2, {noise!r}.encode())\nos.write(2, b'worker says 42\\n')\n"
            f"os.write(2, {error!r}.encode())\nos.write(1, b'stdout says 43\\n')")
    _write_nb(nb_dir, "01_noisy", "python3", code=code)
    run = tmp_path / "run"
    assert main(["notebooks", "--profile", "smoke", "--run-dir", str(run), "--no-check"]) == 0
    out, err = capsys.readouterr()
    assert "stdout says 43\n" in out
    assert "worker says 42\n" + error in err
    for gone in ("without encryption. All communication", "Loading weights", "FutureWarning", "warnings.warn(",
                 "offline\n"):
        assert gone not in out + err, gone


def test_notebook_order_follows_what_each_notebook_reads():
    """At once, a notebook waits only for the notebooks whose outputs it reads
    (mmed.notebook_guide.NOTEBOOK_NEEDS): 03 and 04 only for 02, 05 for 02-04, 07 for 02 and
    05; 01, 02 and 08 for nothing. A name outside the table waits for every earlier one, and
    a notebook not being run counts as done."""
    from mmed.config import load_profile

    nbs = runner.list_notebooks()
    order = runner.notebook_order(nbs, load_profile("demo"))
    stem = {nb.stem[:2]: nb.stem for nb in nbs}
    assert [order[stem[k]] for k in ("01", "02", "08")] == [[], [], []]
    assert order[stem["03"]] == order[stem["04"]] == [stem["02"]]
    assert order[stem["05"]] == [stem["02"], stem["03"], stem["04"]]
    assert order[stem["06"]] == [stem["02"], stem["03"], stem["04"]]
    assert order[stem["07"]] == [stem["02"], stem["05"]]
    only = runner.notebook_order([nb for nb in nbs if nb.stem[:2] in ("03", "05")])
    assert only == {stem["03"]: [], stem["05"]: [stem["03"]]}
    odd = [Path("01_a.ipynb"), Path("02_b.ipynb"), Path("03_c.ipynb")]
    assert runner.notebook_order(odd) == {"01_a": [], "02_b": ["01_a"], "03_c": ["01_a", "02_b"]}


_MEET = """import pathlib, time
me, other = {me!r}, {other!r}
d = pathlib.Path(run_dir)
(d / ("started_" + me)).touch()
t0 = time.time()
while not (d / ("started_" + other)).exists() and time.time() - t0 < {wait}:
    time.sleep(0.05)
print("met", (d / ("started_" + other)).exists())
"""


def _met(path: Path) -> str:
    return "".join(o.get("text", "") for o in _outputs(path)).strip()


def test_independent_notebooks_run_at_once(nb_dir, tmp_path):
    """With two at once, 01 and 08 (neither reads the other) run side by side: each waits for
    the other to have started, which one after another could not give; at once = 1 keeps
    the order (the first gives up waiting)."""
    _write_nb(nb_dir, "01_data", "python3", code=_MEET.format(me="01", other="08", wait=60))
    _write_nb(nb_dir, "08_curriculum_theory", "python3", code=_MEET.format(me="08", other="01", wait=60))
    run = tmp_path / "run"
    res = runner.run_notebooks("smoke", run, at_once=2, log=lambda _m: None)
    assert [r.name for r in res] == ["01_data", "08_curriculum_theory"]
    assert [_met(run / "notebooks" / f"{r.name}.ipynb") for r in res] == ["met True", "met True"]
    assert all(v["status"] == "done" for v in _timings(run).values())

    _write_nb(nb_dir, "01_data", "python3", code=_MEET.format(me="01", other="08", wait=1))
    seq = tmp_path / "seq"
    runner.run_notebooks("smoke", seq, at_once=1, log=lambda _m: None)
    assert _met(seq / "notebooks" / "01_data.ipynb") == "met False"  # 08 had not started
    assert _met(seq / "notebooks" / "08_curriculum_theory.ipynb") == "met True"


def test_a_failure_at_once_lets_the_other_finish_and_starts_nothing_after_it(nb_dir, tmp_path, capsys):
    """02 fails while 01 runs beside it: 01 finishes and is recorded, 03 (which reads 02)
    never starts, and the error names 02."""
    _write_nb(nb_dir, "01_data", "python3", code="import time\ntime.sleep(3)\nprint('fine')")
    _write_nb(nb_dir, "02_consultation_and_stratification", "python3", code="raise ValueError('broken on purpose')")
    _write_nb(nb_dir, "03_triage_grpo", "python3")
    run = tmp_path / "run"
    assert main(["notebooks", "--profile", "smoke", "--run-dir", str(run), "--no-check", "--at-once", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: notebook 02_consultation_and_stratification failed") and "broken on purpose" in err
    t = _timings(run)
    assert t["01_data"]["status"] == "done" and t["02_consultation_and_stratification"]["status"] == "failed"
    assert "03_triage_grpo" not in t and not (run / "notebooks" / "03_triage_grpo.ipynb").exists()


def test_notebook_04_waits_for_03_when_the_trained_triage_routes_its_strata():
    """``curriculum.strata_panel: triage`` stratifies with the run's trained triage (03's):
    04 then waits for 03 as well; with the gold panel (the demo's) only for 02."""
    from mmed.config import load_profile

    nbs = runner.list_notebooks()
    stem = {nb.stem[:2]: nb.stem for nb in nbs}
    gold = runner.notebook_order(nbs, load_profile("demo"))
    triage = runner.notebook_order(nbs, load_profile("demo", overrides={"curriculum": {"strata_panel": "triage"}}))
    assert gold[stem["04"]] == [stem["02"]]
    assert triage[stem["04"]] == [stem["02"], stem["03"]]


def test_only_runs_in_numbered_order_and_names_a_read_that_never_ran(nb_dir, tmp_path):
    """``--only 03 01`` runs 01 first (the numbered order), and a notebook reading one that
    neither runs now nor finished in the run folder is named before anything runs."""
    _write_nb(nb_dir, "01_data", "python3")
    _write_nb(nb_dir, "02_consultation_and_stratification", "python3")
    _write_nb(nb_dir, "03_triage_grpo", "python3")
    lines: list[str] = []
    res = runner.run_notebooks("smoke", tmp_path / "run", names=["03", "01"], at_once=1, log=lines.append)
    assert [r.name for r in res] == ["01_data", "03_triage_grpo"]
    assert lines[0].startswith("note: 03_triage_grpo reads the outputs of 02_consultation_and_stratification")
    lines.clear()
    runner.run_notebooks("smoke", tmp_path / "run", names=["02", "03"], at_once=2, log=lines.append)
    assert not any(m.startswith("note:") for m in lines)


_SLEEPER = "import time\nfor _ in range(600):\n    time.sleep(0.1)\nprint('not interrupted')"


def test_ctrl_c_interrupts_the_notebooks_running_at_once(tmp_path):
    """SIGINT to ``python -m mmed notebooks`` while two notebooks run at once: both kernels
    are interrupted within seconds, ``timings.json`` says ``interrupted`` for both, nothing
    starts after them, and the command exits non-zero."""
    import os
    import signal
    import subprocess
    import sys
    import time

    nbs = tmp_path / "nbs"
    nbs.mkdir()
    for stem in ("01_data", "08_curriculum_theory"):
        _write_nb(nbs, stem, "python3", code=_SLEEPER)
    _write_nb(nbs, "09_after", "python3")
    code = ("import sys, pathlib, mmed.notebooks as r\n"
            f"r.notebooks_dir = lambda: pathlib.Path({str(nbs)!r})\n"
            "from mmed.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    run = tmp_path / "run"
    env = {**os.environ, "MMED_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-c", code, "notebooks", "--profile", "smoke", "--run-dir", str(run),
                             "--no-check", "--at-once", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:  # both kernels started: their executed copies are being written
        if len(list((run / "notebooks").glob("0*.ipynb"))) == 2:
            break
        time.sleep(0.2)
    time.sleep(3)
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=90)
    assert time.time() - t0 < 45, out
    assert proc.returncode == 130 and "interrupted:" in out and "Traceback" not in out, out
    t = _timings(run)
    assert {k: v["status"] for k, v in t.items()} == {"01_data": "interrupted", "08_curriculum_theory": "interrupted"}, out
    assert "not interrupted" not in out and not (run / "notebooks" / "09_after.ipynb").exists()
