"""Prediction records in the exact pipeline shape, for tests of the disagreement inspector.

Records are built with the pipeline's own record makers (TriageDecision, Opinion,
AttendingDecision ``.to_record()``, then :func:`mmed.agents.stratify.stratify`) from items of
``make_synthetic(7, 0)``; :func:`sample_records` gives the seven cases tests/test_inspector.py
and tests/test_browser_inspector.py use (one per overrule situation).
"""

from __future__ import annotations

from mmed.agents.attending import AttendingDecision
from mmed.agents.specialists import Opinion
from mmed.agents.triage import TriageDecision
from mmed.data.synthetic import make_synthetic
from mmed.agents.stratify import stratify

SPEC_RAW = "<think>{why}; this points to option {L}.</think>\n<answer>{L}. {opt}</answer>"


def opinion(item, j, choice, abstain=False, error=None):
    spec = item["specialty"]
    if abstain:
        return Opinion(item["id"], f"{spec}#{j + 1}", spec, "simulated", "simulated",
                       "<think>outside what I can assess.</think>\n<answer></answer>", None, False, True, error)
    L = "ABCD"[choice]
    raw = SPEC_RAW.format(why=f"{spec} #{j + 1} sees sign {choice}", L=L, opt=item["options"][choice])
    return Opinion(item["id"], f"{spec}#{j + 1}", spec, "simulated", "simulated", raw, choice, True)


def prediction_record(item, panel_choices, att_choice, *, image_ref=None, dataset=None, att_raw=None, triage_to=None):
    """A record in the exact pipeline shape: panel_choices -> opinions ('abstain' abstains),
    att_choice -> the attending's option (None -> invalid; 'none' -> no attending)."""
    rec = {k: item[k] for k in ("id", "dataset", "split", "image_ref", "question", "options", "answer_idx", "answer",
                                "answer_type", "specialty")}
    if image_ref is not None:
        rec["image_ref"] = image_ref
    if dataset is not None:
        rec["dataset"] = dataset
    to = triage_to or item["specialty"]
    rec["triage"] = TriageDecision(to, f"<think>modality</think><answer>{to}</answer>", to, True, False, "model").to_record()
    rec["panel"] = [
        opinion(item, j, 0, abstain=True, error="TimeoutError" if c == "error" else None).to_record()
        if c in ("abstain", "error") else opinion(item, j, c).to_record()
        for j, c in enumerate(panel_choices)
    ]
    rec.update(profile="smoke", variant=None, seed=0)
    rec = stratify([rec])[0]
    if att_choice == "none":
        rec["attending"], rec["correct"] = None, None
        return rec
    if att_choice is None:
        d = AttendingDecision(att_raw or "<think>unsure</think>", None, False, "no_answer_tag")
    else:
        d = AttendingDecision(att_raw or f"<think>I weigh the panel, case {item['id']}</think><answer>{'ABCD'[att_choice]}</answer>",
                              att_choice, True, "ok")
    rec["attending"] = {**d.to_record(), "method": "attending"}
    rec["correct"] = bool(d.valid and d.parsed == rec["answer_idx"])
    return rec


def synthetic_items(image_size: int = 64) -> list[dict]:
    """The seven items of ``make_synthetic(7, 0, split="test")``."""
    ds = make_synthetic(7, 0, image_size=image_size, split="test")
    return [ds[i] for i in range(len(ds))]


def sample_records(items: list[dict], image_ref_4: str) -> list[dict]:
    """Seven records over ``items`` (one per situation, commented below); record 4 gets
    ``image_ref_4`` as its image (a missing file in tests/test_inspector.py)."""
    g = [it["answer_idx"] for it in items]
    w = [1 - a if len(it["options"]) == 2 else (a + 1) % len(it["options"]) for it, a in zip(items, g)]
    return [
        # 0: easy, attending follows the right panel -> correct, followed
        prediction_record(items[0], [g[0]] * 3, g[0]),
        # 1: medium (1 of 3 right), attending overrules the wrong majority -> correct
        prediction_record(items[1], [w[1], g[1], w[1]], g[1]),
        # 2: hard, unanimous wrong, attending follows -> incorrect, followed
        prediction_record(items[2], [w[2]] * 3, w[2], triage_to="Surgeon" if items[2]["specialty"] != "Surgeon" else "Oncologist"),
        # 3: hard, unanimous wrong, attending overrules -> correct
        prediction_record(items[3], [w[3]] * 3, g[3]),
        # 4: missing image file, another dataset; panel tie (one abstains, two disagree)
        prediction_record(items[4], [g[4], "abstain", w[4]], g[4], image_ref=image_ref_4, dataset="vqa_rad"),
        # 5: attending invalid (medium panel)
        prediction_record(items[5], [g[5], w[5], g[5]], None),
        # 6: no attending decision (decision="none"); every specialist abstained or failed
        prediction_record(items[6], ["abstain", "error", "abstain"], "none"),
    ]
