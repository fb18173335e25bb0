"""The disagreement inspector as a person sees it: notebook 07 in JupyterLab, in a real browser.

A kernel-side test cannot see a widget front-end that fails (the ipywidgets lab extension
missing, a model-version mismatch, an image that never loads); this one looks. It starts
JupyterLab on loopback with a token, in a throw-away settings folder (the news pop-up off:
``@jupyterlab/apputils-extension:notification`` ``fetchNews: "false"``; no autosave, so
the run's executed copy is left as papermill wrote it; no notebook windowing, so every cell
is in the page), opens the executed ``notebooks/07_disagreement_inspector.ipynb`` of a
smoke run in headless Chromium (Debian's ``chromium`` package, driven by Playwright with
that executable), clears the outputs, runs every cell (Run → Run All Cells), and checks
what is on the screen against :class:`mmed.viz.inspector.DisagreementInspector` built here
on the same run: the case list (position ``k / n · id``, next and previous), the case's
image loaded (natural width > 0), each specialist's opinion and the attending's answer, that
choosing a stratum and an attending-vs-panel value shows the expected case, and that every
dropdown and toggle shows its current choice (none blank) with the labels and counts the
kernel gives, every dropdown wide enough for its longest label. The inspector is saved as a screenshot to
``<run>/browser/07_inspector.png``.

The run: ``$MMED_BROWSER_RUN_DIR`` when set (``.ci/run`` sets it to the CI smoke run of all
notebooks, ``runs/ci-smoke``); otherwise a minimal smoke run built here: the seven records
of tests/fixtures_predictions.py (one with an image file) and notebook 07 executed into it
by :func:`mmed.notebooks.run_notebooks`.

Chromium missing: skipped, except with ``CI=true`` where it fails (``.ci/run`` installs it).
Any widget that does not render fails the test.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from fixtures_predictions import sample_records, synthetic_items
from mmed.agents.pipeline import write_predictions
from mmed.runs import resolve_path
from mmed.viz.inspector import ALL, FILTER_KEYS, TOGGLE_KEYS, DisagreementInspector

pytestmark = pytest.mark.browser
IN_CI = os.environ.get("CI", "").lower() == "true"

NOTEBOOK = "07_disagreement_inspector.ipynb"
RUN_ENV = "MMED_BROWSER_RUN_DIR"
#: Seconds: JupyterLab's server to answer, the page to load, every cell to run, a widget to update.
SERVER_S, PAGE_S, RUN_ALL_S, WIDGET_S = 90, 120, 300, 30


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium (``$CHROMIUM`` overrides); skipped when absent, failed under CI
    (asked first, before a run is built or JupyterLab started)."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        path = name and shutil.which(name)
        if path:
            return path
    msg = "no chromium executable (Debian package 'chromium'; .ci/run installs it)"
    if IN_CI:
        pytest.fail(f"CI=true but {msg}")
    pytest.skip(msg)


# ----------------------------------------------------------------------------------------
# the run and the server
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """The smoke run whose executed notebook 07 is opened (module docstring)."""
    given = os.environ.get(RUN_ENV)
    if given:
        root = resolve_path(given)
        if not (root / "notebooks" / NOTEBOOK).is_file():
            pytest.fail(f"{RUN_ENV}={given}: no executed notebooks/{NOTEBOOK} in {root}")
        return root
    from mmed.notebooks import run_notebooks

    root = tmp_path_factory.mktemp("browser_run") / "run"
    items = synthetic_items()
    image = root / "images" / "case4.png"
    image.parent.mkdir(parents=True)
    items[4]["images"][0].save(image)                                  # one case with an image file
    write_predictions(sample_records(items, str(image)), root / "consult" / "synthetic_test" / "predictions.jsonl")
    run_notebooks("smoke", root, names=["07"], log=lambda _msg: None)
    return root


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(run_dir, tmp_path_factory):
    """JupyterLab serving ``run_dir`` on 127.0.0.1 with a random token; stopped afterwards."""
    home = tmp_path_factory.mktemp("jupyterlab")
    settings = home / "settings"
    _write_json(settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False})
    _write_json(settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings", {"autosave": False})
    _write_json(settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
                {"windowingMode": "none"})
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={run_dir}",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={home / 'workspaces'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "IPYTHONDIR": str(home / "ipython")}
    log_path = home / "jupyterlab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=run_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within {SERVER_S} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        yield SimpleNamespace(url=url, token=token, log=log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------------------------------
# what the page shows
# ----------------------------------------------------------------------------------------
def _answer(rec: dict, parsed, valid) -> str | None:
    """The answer text the case view shows (``mmed.viz.inspector._answer_text``)."""
    if not valid:
        return None
    opts = rec.get("options") or []
    return f"{chr(ord('A') + parsed)}. {opts[parsed]}" if opts else str(parsed)


def _expected_label(exp: DisagreementInspector, key: str) -> str:
    cur = exp.filters[key]
    value = ALL if cur is None else cur[0] if len(cur) == 1 else cur
    return next(lab for lab, v in exp.options(key) if v == value)


_SELECT_STATE = """s => {
  const cs = getComputedStyle(s);
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = cs.font;
  const labels = Array.from(s.options).map(o => o.text.replace(/\u00a0/g, ' '));   // ipywidgets shows spaces as nbsp
  return {index: s.selectedIndex, shown: s.selectedIndex >= 0 ? labels[s.selectedIndex] : '',
          labels: labels, widest: Math.max(...labels.map(t => ctx.measureText(t).width)),
          room: s.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight)};
}"""


def _eventually(check, *args) -> None:
    """``check(*args)`` until it passes (the front-end applies a kernel update a moment
    after the previous one), failing with its last error after ``WIDGET_S`` seconds."""
    deadline = time.monotonic() + WIDGET_S
    while True:
        try:
            return check(*args)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _check_controls(ins, exp: DisagreementInspector) -> None:
    """Every filter control shows the kernel's current choice, with the kernel's labels."""
    for key in FILTER_KEYS:
        want_labels = [lab for lab, _ in exp.options(key)]
        want = _expected_label(exp, key)
        ctrl = ins.locator(f".mmed-filter-{key}")
        if key in TOGGLE_KEYS:
            buttons = ctrl.locator("button")
            assert [t.replace("\xa0", " ").strip() for t in buttons.all_inner_texts()] == want_labels, key
            active = ctrl.locator("button.mod-active")
            assert active.count() == 1, f"{key}: {active.count()} toggle buttons highlighted, not 1"
            assert active.inner_text().replace("\xa0", " ").strip() == want, key
        else:
            st = ctrl.locator("select").evaluate(_SELECT_STATE)
            assert st["index"] >= 0 and st["shown"].strip(), f"{key}: the dropdown shows no choice ({st})"
            assert st["shown"] == want and st["labels"] == want_labels, (key, st)
            assert st["widest"] <= st["room"], f"{key}: the longest label needs {st['widest']:.0f} px, " \
                                               f"the dropdown has {st['room']:.0f} px"
    cut = ins.locator(".widget-label").evaluate_all(
        "els => els.filter(e => e.offsetParent && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)")
    assert cut == [], f"descriptions cut off: {cut}"


def _check_case(page, ins, exp: DisagreementInspector) -> None:
    """The position line, the case view (opinions, attending) for the kernel's current case."""
    from playwright.sync_api import expect

    rec = exp.current_record
    expect(ins.locator(".mmed-position")).to_have_text(f"{exp.position + 1} / {exp.n_matching} · {rec['id']}",
                                                      timeout=WIDGET_S * 1000)
    view = ins.locator(".mmed-view")
    expect(view).to_contain_text(rec["id"], timeout=WIDGET_S * 1000)
    text = view.inner_text()
    for op in rec["panel"]:
        assert op["specialist_id"] in text, op["specialist_id"]
        ans = _answer(rec, op["parsed"], op.get("valid"))
        assert ans is None or ans in text, ans
    att = rec.get("attending")
    assert "Attending" in text
    if att is not None and att.get("valid"):
        row = view.locator("table").last.inner_text()            # the attending's table is the last one
        assert _answer(rec, att["parsed"], True) in row, row
    _eventually(_check_controls, ins, exp)


def _pick(exp: DisagreementInspector, key: str):
    """A choice of ``key`` (not "all") whose first case differs from the current one."""
    now = exp.current_index
    for label, value in exp.options(key):
        if value != ALL and exp.first(**{**{k: v for k, v in exp.filters.items() if v is not None}, key: value}) != now:
            return label, value
    pytest.fail(f"the run has no {key} choice that shows another case; options {exp.options(key)}")


def test_notebook_07_in_jupyterlab_shows_the_inspector(chromium, run_dir, lab):
    from playwright.sync_api import sync_playwright

    exp = DisagreementInspector.from_run(run_dir)
    shots = run_dir / "browser"
    shots.mkdir(exist_ok=True)
    console: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        try:
            page.goto(f"{lab.url}/lab/tree/notebooks/{NOTEBOOK}?token={lab.token}", timeout=PAGE_S * 1000)
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=PAGE_S * 1000)
            # as a person would, wait until the status bar says the kernel is ready ("No Kernel |
            # Initializing", "... | Connecting", then "... | Idle"): run earlier, JupyterLab shows the
            # widget as its text repr
            page.locator("#jp-main-statusbar", has_text=re.compile(r"\(ipykernel\)\s*\|\s*Idle")).wait_for(
                timeout=PAGE_S * 1000)
            for menu, item in (("Edit", "Clear Outputs of All Cells"), ("Run", "Run All Cells")):
                page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
                page.locator(".lm-Menu .lm-Menu-itemLabel", has_text=re.compile(f"^{item}$")).click()
            outputs = page.locator(".jp-NotebookPanel .jp-OutputArea-output")
            deadline = time.monotonic() + RUN_ALL_S
            while not outputs.filter(has_text="metrics recorded in").count():
                failed = outputs.filter(has_text="Traceback")
                if failed.count():
                    pytest.fail(f"a cell of notebook 07 failed in JupyterLab:\n{failed.first.inner_text()[-3000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"notebook 07 did not finish within {RUN_ALL_S} s in JupyterLab")
                time.sleep(1)

            ins = page.locator(".mmed-inspector")
            try:
                ins.wait_for(state="visible", timeout=WIDGET_S * 1000)
            except Exception:  # noqa: BLE001 — say what is shown instead of the widget
                cell = page.locator(".jp-Cell", has_text="ins.show()").first.locator(".jp-OutputArea").inner_text()
                pytest.fail(f"the inspector widget did not render; the cell shows: {cell[:800]!r}; "
                            f"browser errors: {console[:10]}")
            # the case list and the selected case, with its image
            _check_case(page, ins, exp)
            assert exp.image(exp.current_index).shown, "the run's first case has no image to show"
            img = ins.locator(".mmed-view img.mmed-img")
            img.wait_for(timeout=WIDGET_S * 1000)
            page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle(),
                                   timeout=WIDGET_S * 1000)
            assert img.evaluate("el => el.naturalWidth") > 0
            ins.screenshot(path=str(shots / "07_inspector.png"))
            # the next case of the list, and back
            ins.locator("button.mmed-next").click()
            exp.next()
            _check_case(page, ins, exp)
            ins.locator("button.mmed-prev").click()
            exp.prev()
            _check_case(page, ins, exp)

            # a stratum chosen by a person: the case shown changes to the kernel's first match
            label, value = _pick(exp, "stratum")
            ins.locator(".mmed-filter-stratum button", has_text=re.compile(f"^{re.escape(label)}$")).click()
            exp.set_filter(stratum=value)
            _check_case(page, ins, exp)
            # an attending-vs-panel value from the dropdown, then "all" again on both
            label, value = _pick(exp, "overrule")
            ins.locator(".mmed-filter-overrule select").select_option(label=label)
            exp.set_filter(overrule=value)
            _check_case(page, ins, exp)
            ins.locator(".mmed-filter-overrule select").select_option(
                label=next(lab for lab, v in exp.options("overrule") if v == ALL))
            exp.set_filter(overrule=ALL)
            _check_case(page, ins, exp)
            ins.locator(".mmed-filter-stratum button").first.click()   # "all (n)"
            exp.set_filter(stratum=ALL)
            _check_case(page, ins, exp)
        except BaseException:
            page.screenshot(path=str(shots / "07_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
