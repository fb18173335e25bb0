"""The disagreement inspector (mmed/viz/inspector.py), driven programmatically.

Records are built with the pipeline's own record makers (tests/fixtures_predictions.py:
TriageDecision, Opinion, AttendingDecision ``.to_record()``, then
:func:`mmed.agents.stratify.stratify`), written to a
``predictions.jsonl`` with :func:`mmed.agents.pipeline.write_predictions` and read back by
the inspector. Images: synthetic refs from ``make_synthetic(7, 0)`` and one missing file.
"""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import PIL.Image
import pytest

from fixtures_predictions import sample_records, synthetic_items
from mmed.agents.pipeline import write_predictions
from mmed.viz.inspector import (
    FILTER_KEYS,
    DisagreementInspector,
    filter_records,
    image_status,
    overrule_status,
    overruled,
    render_record_html,
)
from mmed.viz.inspector import _TD


@pytest.fixture(scope="module")
def items():
    return synthetic_items()


@pytest.fixture(scope="module")
def records(items, tmp_path_factory):
    return sample_records(items, str(tmp_path_factory.mktemp("imgs") / "no_such_image.png"))


@pytest.fixture()
def pred_file(records, tmp_path):
    return write_predictions(records, tmp_path / "consult" / "synthetic_test" / "predictions.jsonl")


# ----------------------------------------------------------------------------------------
# overruling on hand-made cases
# ----------------------------------------------------------------------------------------
def _mini(panel, att, options=("a", "b", "c")):
    return {"options": list(options), "panel": [{"parsed": p, "valid": p is not None, "abstained": p is None} for p in panel],
            "attending": None if att == "none" else {"parsed": att, "valid": att is not None}}


@pytest.mark.parametrize("panel, att, want, status", [
    ([0, 0, 1], 1, True, "overruled"),
    ([0, 0, 1], 0, False, "followed"),
    ([2, 2, 2], 0, True, "overruled"),            # against a unanimous panel
    ([None, None, 2], 1, True, "overruled"),      # a lone valid answer is the panel's vote
    ([None, None, 2], 2, False, "followed"),
    ([0, None, 1], 0, None, "panel_tie"),         # 1-1 tie: no vote to overrule
    ([0, 1, 2], 2, None, "panel_tie"),            # three-way tie
    ([None, None, None], 0, None, "panel_no_valid"),
    ([0, 0, 1], None, None, "attending_invalid"),
    ([], 0, None, "no_panel"),
    ([0, 0, 1], "none", None, "no_attending"),
])
def test_overruled_hand_made(panel, att, want, status):
    rec = _mini(panel, att)
    assert overruled(rec) is want
    assert overrule_status(rec) == status


def test_overruled_open_question_is_undefined():
    rec = _mini([0, 0, 0], 1, options=())
    assert overrule_status(rec) == "open_question" and overruled(rec) is None


# ----------------------------------------------------------------------------------------
# pure filtering
# ----------------------------------------------------------------------------------------
def test_filter_records(records):
    assert filter_records(records) == list(range(7))
    assert filter_records(records, stratum="hard") == [2, 3]
    # every specialist abstained or failed: no valid opinion, so no stratum (not Hard)
    assert filter_records(records, stratum="unstratified") == [6]
    assert filter_records(records, overrule=True) == [1, 3]
    assert filter_records(records, overrule=False) == [0, 2]
    assert filter_records(records, overrule="panel_tie") == [4]
    assert filter_records(records, outcome="incorrect") == [2]
    assert filter_records(records, outcome=["incorrect", "invalid"]) == [2, 5]
    assert filter_records(records, outcome="unscored") == [6]
    assert filter_records(records, dataset="vqa_rad") == [4]
    assert filter_records(records, stratum="hard", overrule=True, outcome="correct") == [3]
    assert filter_records(records, specialty=records[2]["specialty"]) == [2]
    assert filter_records(records, triage=records[2]["triage"]["specialty"]) == [
        i for i, r in enumerate(records) if r["triage"]["specialty"] == records[2]["triage"]["specialty"]]
    with pytest.raises(ValueError, match="unknown filter 'strata'"):
        filter_records(records, strata="hard")
    with pytest.raises(ValueError, match=r"filter stratum: unknown value\(s\) \['Hard'\]"):
        filter_records(records, stratum="Hard")
    with pytest.raises(ValueError, match="filter dataset: unknown value"):
        filter_records(records, dataset="slake")


# ----------------------------------------------------------------------------------------
# the inspector from a file
# ----------------------------------------------------------------------------------------
def test_inspector_filters_and_navigation(pred_file, records):
    ins = DisagreementInspector(pred_file)
    assert ins.n_matching == 7 and ins.current_record["id"] == records[0]["id"]
    assert ins.current_record["_source"] == str(pred_file) and ins.current_record["_line"] == 1

    assert ins.set_filter(stratum=["hard", "unstratified"]) == 3  # record 6: no valid opinion, no stratum
    ids = [records[i]["id"] for i in (2, 3, 6)]
    assert ins.current_record["id"] == ids[0]
    assert ins.next()["id"] == ids[1]
    assert ins.next()["id"] == ids[2]
    assert ins.next()["id"] == ids[2]          # stays on the last
    assert ins.prev()["id"] == ids[1]
    assert ins.prev()["id"] == ids[0]
    assert ins.prev()["id"] == ids[0]          # stays on the first

    assert ins.set_filter(overrule=True) == 1  # (hard or unstratified) AND overruled
    assert ins.current_record["id"] == records[3]["id"]
    assert ins.set_filter(stratum=None) == 2   # clearing one filter keeps the other
    assert [ins.records[i]["id"] for i in ins.matches] == [records[1]["id"], records[3]["id"]]
    assert ins.set_filter(outcome="invalid") == 0
    assert ins.current_record is None and "no record matches" in ins.current_html()
    assert ins.clear_filters() == 7
    with pytest.raises(ValueError, match="unknown filter"):
        ins.set_filter(color="red")


def test_inspector_html_shows_opinions_and_gold(pred_file, records):
    ins = DisagreementInspector(pred_file)
    ins.set_filter(overrule="overruled", stratum="medium")
    rec = ins.current_record
    assert rec["id"] == records[1]["id"]
    html = ins.current_html()
    for op in rec["panel"]:
        assert op["specialist_id"] in html
        assert re.search(r"<think>(.*?)</think>", op["raw"]).group(1) in html  # rationale from raw
    assert f"I weigh the panel, case {rec['id']}" in html                  # attending's <think>
    assert html.count("✓ gold") == 1
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    gold_row = next(r for r in rows if "✓ gold" in r)
    gold_letter = "ABCD"[rec["answer_idx"]]
    assert f"<b>{gold_letter}</b>" in gold_row and f">{rec['options'][rec['answer_idx']]}<" in gold_row
    assert "◆ attending" in gold_row                                        # the attending chose the gold
    wrong = rec["panel"][0]["parsed"]                                      # the wrong majority
    assert "2 (panel vote)" in next(r for r in rows if f"<td {_TD}><b>{'ABCD'[wrong]}</b>" in r)
    assert html.count("✗ wrong") == 2 and html.count("✓ right") == 1
    assert "overruled" in html and "medium" in html


def test_inspector_images_synthetic_and_missing(pred_file, records, items):
    ins = DisagreementInspector(pred_file)
    sm = ins.summary()
    assert sm["images"]["synthetic"] == 6 and sm["images"]["missing"] == 1
    assert sm["placeholders"] == 1
    # the synthetic image is redrawn pixel-identical to the dataset's
    html = ins.record_html(0)
    b64 = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    shown = np.asarray(PIL.Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))
    orig = np.asarray(items[0]["images"][0].convert("RGB"))  # the dataset decodes its PNG
    assert np.array_equal(shown, orig)
    # the missing file gets a placeholder that says why
    ins.set_filter(dataset="vqa_rad")
    html = ins.current_html()
    assert "image not available (missing)" in html and "no_such_image.png" in html and "<img" not in html


def test_unreadable_and_embedded_images_are_counted(records, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    data = tmp_path / "data.parquet"
    data.write_bytes(b"x")
    recs = [dict(records[0], image_ref=str(bad)), dict(records[1], image_ref=f"{data}#12"),
            dict(records[2], image_ref="synthetic://v1/nope/size/small?seed=0"), dict(records[3], image_ref=None),
            dict(records[4], image_ref="rel/img.png")]
    assert image_status("rel/img.png", image_root=tmp_path)[0] == "missing"
    (tmp_path / "rel").mkdir()
    PIL.Image.new("RGB", (300, 200), "red").save(tmp_path / "rel" / "img.png")
    ins = DisagreementInspector(recs, image_root=tmp_path)
    assert dict(ins.images) == {"file": 2, "embedded": 1, "bad_ref": 1, "none": 1}
    assert ins.summary()["image_failures"] == 0
    html = ins.record_html(0)
    assert "image not available (unreadable)" in html
    assert ins.summary()["image_failures"] == 1 and ins.summary()["placeholders"] == 4
    big = ins.record_html(4)                    # relative path resolved under image_root; shrunk to 256 px
    b64 = re.search(r'base64,([^"]+)"', big).group(1)
    assert PIL.Image.open(io.BytesIO(base64.b64decode(b64))).size == (256, 171)


def test_summary_counts_add_up(pred_file, records):
    ins = DisagreementInspector(pred_file)
    sm = ins.summary()
    assert sm["n_records"] == 7 and set(sm["counts"]) == set(FILTER_KEYS)
    for key, counts in sm["counts"].items():
        assert sum(counts.values()) == 7, key
    assert sm["counts"]["stratum"] == {"easy": 1, "medium": 3, "hard": 2, "unstratified": 1}
    assert sm["counts"]["outcome"] == {"correct": 4, "incorrect": 1, "invalid": 1, "unscored": 1}
    assert sum(r["correct"] is True for r in records) == 4
    assert sm["counts"]["overrule"] == {"overruled": 2, "followed": 2, "panel_tie": 1, "panel_no_valid": 0,
                                        "attending_invalid": 1, "no_panel": 0, "no_attending": 1, "open_question": 0}
    assert sm["overruled_correct"] == 2 and sm["followed_correct"] == 1
    assert sm["counts"]["dataset"] == {"synthetic": 6, "vqa_rad": 1}
    table = ins.overrule_table()
    assert list(table.index) == ["easy", "medium", "hard", "unstratified", "all"]  # record 6 has no stratum
    assert table.loc["unstratified", "n"] == 1
    assert table.loc["all", "n"] == 7 and table.loc["hard", "overruled_correct"] == 1
    assert table.loc["medium", "undefined"] == 2 and table.loc["all", "accuracy"] == pytest.approx(4 / 7)
    text = ins.summary_html()
    assert "7 records" in text and "overruled: 2" in text and "missing: 1" in text and "Skipped lines:</b> 0" in text


def test_bad_lines_raise_or_are_counted(records, tmp_path):
    path = tmp_path / "predictions.jsonl"
    bad = dict(records[1])
    del bad["panel"]
    lines = [json.dumps(records[0]), json.dumps(bad), "{not json", json.dumps(dict(records[2], answer_idx="0"))]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"predictions.jsonl: line 2: field 'panel' is missing"):
        DisagreementInspector(path)
    ins = DisagreementInspector(path, on_error="skip")
    assert ins.n_matching == 1
    sk = ins.summary()["skipped"]
    assert [s["line"] for s in sk] == [2, 3, 4]
    assert "not valid JSON" in sk[1]["reason"] and "field 'answer_idx' must be int" in sk[2]["reason"]
    assert "Skipped lines: 3" in ins.summary_html()
    out_of_range = dict(records[0], panel=[dict(records[0]["panel"][0], parsed=5)])
    with pytest.raises(ValueError, match=r"record 0 .*panel\[0\].parsed' = 5"):
        DisagreementInspector([out_of_range])
    with pytest.raises(ValueError, match="no records"):
        DisagreementInspector([])


def test_from_run_finds_and_tags_sources(records, tmp_path):
    write_predictions(records[:4], tmp_path / "consult" / "synthetic_test" / "predictions.jsonl")
    write_predictions(records[4:], tmp_path / "eval" / "ablations" / "no_triage" / "predictions.jsonl")
    ins = DisagreementInspector.from_run(tmp_path)
    assert ins.counts()["source"] == {"consult/synthetic_test": 4, "eval/ablations/no_triage": 3}
    assert ins.set_filter(source="eval/ablations/no_triage") == 3
    assert ins.current_record["id"] == records[4]["id"] and ins.current_record["_line"] == 1
    only = DisagreementInspector.from_run(tmp_path, names=["no_triage"])
    assert only.n_matching == 3
    with pytest.raises(ValueError, match="no predictions named 'nope'"):
        DisagreementInspector.from_run(tmp_path, names=["nope"])
    with pytest.raises(FileNotFoundError, match="no consult"):
        DisagreementInspector.from_run(tmp_path / "empty_run")


def test_widgets_follow_the_programmatic_api_and_back(pred_file, records):
    ins = DisagreementInspector(pred_file)
    box = ins.widget
    assert box is ins.widget and "application/vnd.jupyter.widget-view+json" in ins._repr_mimebundle_()
    assert ins.slider.max == 7 and records[0]["id"] in ins.position_html.value
    ins.set_filter(stratum=["hard", "unstratified"])
    assert ins.controls["stratum"].value == ("hard", "unstratified") and ins.slider.max == 3 and ins.slider.value == 1
    assert ins.prev_button.disabled and not ins.next_button.disabled
    ins.next_button.click()
    assert ins.current_record["id"] == records[3]["id"] and ins.slider.value == 2
    assert records[3]["id"] in ins.view.value
    ins.slider.value = 3
    assert ins.current_record["id"] == records[6]["id"] and ins.next_button.disabled
    # a user choosing in the dropdown is the same as set_filter
    ins.controls["stratum"].value = "all"
    assert ins.filters["stratum"] is None and ins.n_matching == 7
    ins.controls["overrule"].value = "overruled"
    assert ins.filters["overrule"] == ("overruled",) and ins.n_matching == 2
    assert ins.current_record["id"] == records[1]["id"] and "1 / 2" in ins.position_html.value
    labels = [lab for lab, _ in ins.controls["overrule"].options]
    assert "overruled (2)" in labels and "panel_tie (1)" in labels
    ins.set_filter(outcome=["correct", "incorrect"])   # several values: an extra option
    assert ins.controls["outcome"].value == ("correct", "incorrect")
    ins.set_filter(outcome="invalid")
    assert ins.n_matching == 0 and ins.slider.disabled and "0 / 0" in ins.position_html.value


def test_render_escapes_record_text(records):
    rec = dict(records[0], question="Is <b>this</b> & that a nodule?")
    html = render_record_html(rec, include_image=False)
    assert "Is &lt;b&gt;this&lt;/b&gt; &amp; that" in html and "<img" not in html and "image not available" not in html


def test_metrics_pass_the_notebook_checker_and_tampering_fails(pred_file):
    from mmed.checkers.nb07_inspector import check_07

    m = DisagreementInspector(pred_file).metrics()
    m.update(fallback_consultation=False, cases_shown={"first hard": "synthetic/test/0/2", "none found": None},
             seconds=0.5)
    assert m["by_stratum"]["all"] == {"n": 7, "correct": 4, "accuracy": pytest.approx(4 / 7), "followed": 2,
                                      "followed_correct": 1, "overruled": 2, "overruled_correct": 2, "undefined": 3}
    assert check_07(m) == []
    json.dumps(m)  # recordable as JSON
    lost = json.loads(json.dumps(m))
    lost["strata"]["hard"] -= 1
    assert any("add up to 6, not n_records = 7" in q for q in check_07(lost))
    worse = json.loads(json.dumps(m))
    worse["overruled_correct"] = 3
    assert any("overruled_correct = 3 > overruled = 2" in q for q in check_07(worse))
    hidden = json.loads(json.dumps(m))
    hidden["placeholders"] = 0
    assert any("placeholders = 0" in q for q in check_07(hidden))


# ----------------------------------------------------------------------------------------
# a static view of the selected case beside the widget
# ----------------------------------------------------------------------------------------
def test_static_view_of_the_selected_case_reads_without_a_kernel(pred_file, records):
    from html import escape

    ins = DisagreementInspector(pred_file)
    ins.set_filter(overrule="overruled", stratum="medium")
    rec = ins.current_record
    view = ins.static_html()
    assert ins._widget is None                                             # no widget (nor kernel) needed
    assert "case 1 of 1 matching (7 records)" in view and "stratum = medium" in view and "overrule = overruled" in view
    assert escape(rec["question"]) in view
    b64 = re.search(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', view).group(1)
    assert PIL.Image.open(io.BytesIO(base64.b64decode(b64))).size[0] > 0
    rows = re.findall(r"<tr>(.*?)</tr>", view)
    for op in rec["panel"]:                                               # each specialist: specialty and answer
        row = next(r for r in rows if op["specialist_id"] in r)
        answer = f"{'ABCD'[op['parsed']]}. {rec['options'][op['parsed']]}"
        assert f">{escape(op['specialty'])}<" in row and escape(answer) in row
    gold = f"{'ABCD'[rec['answer_idx']]}. {rec['options'][rec['answer_idx']]}"
    assert f"<b>{escape(gold)}</b>" in view                                # the attending's answer (it chose the gold)
    assert "✓ gold" in next(r for r in rows if f">{escape(rec['options'][rec['answer_idx']])}<" in r)
    assert f"<b>Label:</b> {escape(gold)}" in view
    ins.set_filter(outcome="invalid", stratum="easy")                      # nothing matches: says so
    assert "no case (7 records, none matching)" in ins.static_html() and "no record matches" in ins.static_html()


def test_show_displays_the_widget_and_the_static_view(pred_file, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    ins = DisagreementInspector(pred_file)
    ins.show()
    assert shown[0] is ins.widget
    assert isinstance(shown[1], IPython.display.HTML) and shown[1].data == ins.static_html()


def test_notebook_07_keeps_a_static_view_beside_the_widget():
    """The browser cell of notebook 07 displays the widget with :meth:`show` (widget plus
    static view), so its executed copy shows the selected case without a kernel."""
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parent.parent / "notebooks" / "07_disagreement_inspector.ipynb").read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    browser = [c for c in code if re.search(r"display\(ins\)|\bins\.widget\b|\bins\.show\(\)", c)]
    assert browser and all("ins.show()" in c and "display(ins)" not in c for c in browser), browser


# ----------------------------------------------------------------------------------------
# what a person sees in the controls (issue 15): a choice always shown, counts for the
# current filters, names as in the run, no dead choices, the position said once
# ----------------------------------------------------------------------------------------
def _choice(ctrl) -> str:
    """The label a control shows for its value (ipywidgets: ``value`` None = nothing shown)."""
    return dict(zip(ctrl._options_values, ctrl._options_labels))[ctrl.value] if ctrl.index is not None else ""


def test_every_control_shows_its_choice_and_all_is_not_none(pred_file):
    from mmed.viz.inspector import ALL

    ins = DisagreementInspector(pred_file)
    ins.widget
    for key, c in ins.controls.items():
        assert all(v is not None for v in c._options_values), key
        assert c.value == ALL == "all" and c.index == 0 and _choice(c) == "all (7)", key
    ins.set_filter(stratum="hard")
    assert ins.controls["stratum"].value == "hard" and _choice(ins.controls["stratum"]) == "hard (2)"
    assert ins.controls["outcome"].value == "all" and _choice(ins.controls["outcome"]) == "all (2)"
    ins.set_filter(stratum=None)                     # clearing from code: the control shows "all"
    assert ins.controls["stratum"].value == "all" and ins.controls["stratum"].index == 0
    ins.set_filter(outcome="correct")
    ins.controls["outcome"].value = "all"            # a user choosing "all" clears the filter
    assert ins.filters["outcome"] is None and ins.n_matching == 7
    assert ins.set_filter(dataset="all") == 7 and ins.filters["dataset"] is None


def test_counts_on_the_choices_are_for_the_other_filters(pred_file):
    ins = DisagreementInspector(pred_file)
    assert ins.option_counts("stratum") == {"easy": 1, "medium": 3, "hard": 2, "unstratified": 1}
    assert ins.set_filter(overrule="overruled") == 2                 # records 1 (medium) and 3 (hard)
    assert ins.option_counts("stratum") == {"easy": 0, "medium": 1, "hard": 1, "unstratified": 0}
    assert ins.option_counts("outcome") == {"correct": 2, "incorrect": 0, "invalid": 0, "unscored": 0}
    # the overrule filter's own choices count under the other filters only (none here)
    assert ins.option_counts("overrule")["followed"] == 2 and ins.option_counts("overrule")["overruled"] == 2
    ins.widget
    assert [lab for lab, _ in ins.controls["stratum"].options] == ["all (2)", "medium (1)", "hard (1)"]
    assert [lab for lab, _ in ins.controls["outcome"].options] == ["all (2)", "correct (2)"]
    # every choice offered shows at least one case (except the active one, which may not)
    for key, c in ins.controls.items():
        for label, value in c.options:
            n = int(re.search(r"\((\d+)\)$", label).group(1))
            assert ins.first(**{**{k: v for k, v in ins.filters.items() if k != key}, key: value}) is not None, label
            assert n == len(filter_records(ins.records, **{**ins.filters, key: value})), (key, label)
    with pytest.raises(ValueError, match="unknown filter 'colour'"):
        ins.option_counts("colour")


def test_no_choice_that_can_never_match_unless_selected(pred_file, records, tmp_path):
    ins = DisagreementInspector(records[:6])                          # every record has an attending
    assert ins.counts()["outcome"]["unscored"] == 0
    ins.widget
    assert "unscored" not in ins.controls["outcome"]._options_values
    assert not any(lab.endswith("(0)") for c in ins.controls.values() for lab in c._options_labels)
    assert ins.set_filter(outcome="unscored") == 0                   # chosen from code: shown as the selection
    assert ins.controls["outcome"].value == "unscored" and _choice(ins.controls["outcome"]) == "unscored (0)"


def test_labels_are_the_names_of_the_run(records, tmp_path):
    write_predictions(records[:4], tmp_path / "consult" / "synthetic_test_majority_radiologist" / "predictions.jsonl")
    write_predictions(records[4:], tmp_path / "eval" / "ablations" / "no_triage" / "predictions.jsonl")
    ins = DisagreementInspector.from_run(tmp_path)
    ins.widget
    assert [lab for lab, _ in ins.controls["source"].options] == [
        "all (7)", "consult/synthetic_test_majority_radiologist (4)", "eval/ablations/no_triage (3)"]
    assert "vqa_rad (1)" in ins.controls["dataset"]._options_labels
    assert "panel_tie (1)" in ins.controls["overrule"]._options_labels
    ins.controls["source"].value = "eval/ablations/no_triage"
    assert ins.n_matching == 3
    # each dropdown is given room for its longest label (the browser test measures the rendering)
    for key, c in ins.controls.items():
        if key in ("stratum", "outcome"):
            continue
        assert c.style.description_width == "80px"
        room = int(re.fullmatch(r"calc\(80px \+ (\d+)ch\)", c.layout.width).group(1))
        assert room >= max(len(lab) for lab in c._options_labels) + 4, (key, c.layout.width)
    assert int(re.search(r"(\d+)ch", ins.controls["source"].layout.width).group(1)) >= 52


def test_the_position_is_said_once(pred_file, records):
    ins = DisagreementInspector(pred_file)
    ins.widget
    ins.next()
    assert not ins.slider.readout
    shown = ins.position_html.value + ins.view.value
    assert shown.count("2 / 7") == 1 and "case 2 of 7" not in shown and f"<code>{records[1]['id']}</code>" in shown
    static = ins.static_html()
    assert static.count("case 2 of 7") == 1 and "2 / 7" not in static
