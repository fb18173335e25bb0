"""The consultation pipeline: triage → panel → attending, records, summary, files."""

from __future__ import annotations

import json

import PIL.Image
import pytest

from mmed.agents.attending import AttendingPhysician
from mmed.agents.pipeline import PanelBank, read_predictions, run_consultation, summarize, write_predictions
from mmed.agents.specialists import SimulatedSpecialist, simulated_panel_factory
from mmed.agents.triage import TriageDoctor
from mmed.config import SimulatedPanelConfig


class ScriptedRunner:
    """Stands in for PolicyRunner: returns scripted completions, records what it was asked."""

    def __init__(self, texts):
        self.texts = list(texts)
        self.calls = []

    def generate(self, messages, images, sampling=None, progress=True):
        self.calls.append((messages, images, sampling))
        n = sampling.num_return_sequences if sampling else 1
        return [[self.texts[i % len(self.texts)]] * n for i in range(len(messages))]


def _items(n=6):
    img = PIL.Image.new("RGB", (32, 32), (90, 90, 90))
    return [
        dict(id=f"t/{i}", dataset="synthetic", split="test", image_ref=f"r{i}", images=[img], question="Is there a lesion?",
             options=["yes", "no"], answer_idx=i % 2, answer=["yes", "no"][i % 2], answer_type="closed",
             modality="synthetic-xray", specialty="Radiologist", organ="", meta="{}")
        for i in range(n)
    ]


def _bank(c=0.0, own=1.0):
    return PanelBank(simulated_panel_factory(SimulatedPanelConfig(own_accuracy=own, other_accuracy=0.0, consensus_error_rate=c), seed=0), k=3)


def test_perfect_panel_majority_vote_is_always_right():
    recs = run_consultation(_items(), TriageDoctor(mode="gold"), _bank(), decision="majority_vote", progress=False)
    assert [r["correct"] for r in recs] == [True] * 6
    assert all(r["stratum"] == "easy" and r["s"] == 1.0 and len(r["panel"]) == 3 for r in recs)
    assert {r["attending"]["method"] for r in recs} == {"majority_vote"}


def test_wrong_specialty_panel_is_always_wrong_and_hard():
    # other_accuracy = 0: routed to the wrong specialty, every member answers wrong
    recs = run_consultation(_items(), TriageDoctor(mode="fixed", fixed_specialty="Dermatologist"), _bank(), decision="majority_vote", progress=False)
    assert [r["correct"] for r in recs] == [False] * 6
    assert all(r["stratum"] == "hard" for r in recs)
    assert all(op["specialty"] == "Dermatologist" for r in recs for op in r["panel"])


def test_attending_reads_opinions_and_is_scored():
    runner = ScriptedRunner(["<think>x</think><answer>A</answer>", "<think>x</think><answer>B</answer>", "garbage"])
    att = AttendingPhysician(runner, style="compact")
    recs = run_consultation(_items(), TriageDoctor(mode="gold"), _bank(), att, tags={"profile": "t", "seed": 1}, progress=False)
    # item i has gold i%2; answers cycle A, B, invalid
    assert [r["attending"]["parsed"] for r in recs] == [0, 1, None, 0, 1, None]
    assert [r["correct"] for r in recs] == [True, True, False, False, False, False]
    assert recs[2]["attending"]["valid"] is False and recs[2]["attending"]["reason"] != "ok"
    prompt_text = json.dumps(runner.calls[0][0][0])
    assert "Radiologist" in prompt_text  # the opinions are in the attending prompt
    assert recs[0]["profile"] == "t" and recs[0]["seed"] == 1
    m = summarize(recs, n_boot=200)
    assert m["items"] == 6 and m["attending_invalid"] == 2 and m["accuracy"]["acc"] == pytest.approx(2 / 6)
    assert m["panel_opinions"] == 18 and m["strata"]["easy"] == 6


def test_attending_alone_sees_no_opinions():
    runner = ScriptedRunner(["<think>x</think><answer>A</answer>"])
    recs = run_consultation(_items(2), TriageDoctor(mode="gold"), None, AttendingPhysician(runner), decision="attending_alone", progress=False)
    assert all(r["panel"] == [] and r["s"] is None for r in recs)
    assert "(no specialist opinions)" in json.dumps(runner.calls[0][0][0])


def test_model_triage_fallback_is_counted():
    runner = ScriptedRunner(["<think>t</think><answer>Pathologist</answer>", "<think>t</think><answer>Pathologist or Surgeon</answer>"])
    triage = TriageDoctor(runner, mode="model", fallback="Radiologist")
    recs = run_consultation(_items(4), triage, _bank(), decision="majority_vote", progress=False)
    assert [r["triage"]["specialty"] for r in recs] == ["Pathologist", "Radiologist", "Pathologist", "Radiologist"]
    assert [r["triage"]["fallback"] for r in recs] == [False, True, False, True]
    m = summarize(recs, n_boot=100)
    assert m["triage_fallbacks"] == 2 and m["triage_invalid"] == 2
    assert m["triage_accuracy"]["acc"] == pytest.approx(0.5)


def test_random_triage_is_seeded():
    a = [d.specialty for d in TriageDoctor(mode="random", seed=3).route(_items(20))]
    b = [d.specialty for d in TriageDoctor(mode="random", seed=3).route(_items(20))]
    c = [d.specialty for d in TriageDoctor(mode="random", seed=4).route(_items(20))]
    assert a == b and a != c and len(set(a)) > 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="needs an AttendingPhysician"):
        run_consultation(_items(), TriageDoctor(mode="gold"), _bank(), None, decision="attending")
    with pytest.raises(ValueError, match="decision"):
        run_consultation(_items(), TriageDoctor(mode="gold"), _bank(), decision="vote")
    with pytest.raises(ValueError, match="fixed_specialty"):
        TriageDoctor(mode="fixed", fixed_specialty="Cardiologist")
    with pytest.raises(ValueError, match="PolicyRunner"):
        TriageDoctor(mode="model")


def test_predictions_roundtrip_and_bad_line(tmp_path):
    recs = run_consultation(_items(3), TriageDoctor(mode="gold"), _bank(), decision="majority_vote", progress=False)
    p = write_predictions(recs, tmp_path / "p.jsonl")
    assert read_predictions(p) == json.loads(json.dumps(recs))
    with open(p, "a") as f:
        f.write("{not json\n")
    with pytest.raises(ValueError, match=r"p.jsonl: line 4"):
        read_predictions(p)


def test_an_undecodable_image_is_a_data_error_naming_the_item_and_the_file(tmp_path):
    """A zeroed JPEG: one ValueError naming the item id and the image path, not a PIL traceback."""
    from fixtures_data import write_vqa_rad

    from mmed.agents.pipeline import as_item_list
    from mmed.data import load_benchmark
    from mmed.data.rows import DataError

    root = write_vqa_rad(tmp_path / "vqa_rad", official=False)
    bad = root / "data_RAD" / "images" / "synpic200.jpg"
    bad.write_bytes(b"\0" * bad.stat().st_size)
    ds = load_benchmark("vqa_rad", root, "test", layout="mevf")
    with pytest.raises(DataError) as ei:
        as_item_list(ds)
    assert isinstance(ei.value, ValueError)
    assert ei.value.item_id == "vqa_rad/test/12"
    assert ei.value.file == str(bad)
    assert "vqa_rad/test/12" in str(ei.value) and str(bad) in str(ei.value) and "cannot be decoded" in str(ei.value)
