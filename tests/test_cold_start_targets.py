"""Grounded cold-start targets (mmed/rl/sft.py): the reasoning states what
the agent can read from its input and the answer follows from it."""

from __future__ import annotations

import pytest

from mmed.agents.parsing import has_valid_format, parse_choice, parse_specialty
from mmed.rl.sft import cold_start_targets, modality_reasoning, panel_tally, tally_reasoning


def _item(i: int, answer_idx: int, n: int = 4, modality: str = "synthetic-xray", specialty: str = "Radiologist"):
    return {"id": f"x/{i}", "options": [f"o{k}" for k in range(n)], "answer_idx": answer_idx,
            "modality": modality, "specialty": specialty}


def _op(parsed, valid=True, abstained=False):
    return {"parsed": parsed, "valid": valid, "abstained": abstained}


def test_panel_tally_counts_valid_opinions_only():
    ops = [_op(1), _op(1), _op(3), _op(None, valid=False), _op(2, abstained=True), _op(7)]
    assert panel_tally(ops, 4) == [0, 2, 0, 1]
    assert tally_reasoning([0, 2, 0, 1]) == "Panel: B 2, D 1."
    assert tally_reasoning([0, 0]) == "Panel: none."


def test_modality_reasoning_names_the_modality():
    assert modality_reasoning("synthetic-pet-oncology") == "Image: pet oncology."
    assert modality_reasoning("colour fundus_photography") == "Image: colour fundus photography."
    with pytest.raises(ValueError, match="modality"):
        modality_reasoning("  ")


def test_attending_gold_targets_state_the_tally_and_answer_gold():
    items = [_item(0, 2), _item(1, 0)]
    ops = [[_op(1), _op(1), _op(2)], [_op(0), _op(0), _op(0)]]
    targets, gold = cold_start_targets("attending", items, 1.0, seed=0, opinions=ops, target="gold")
    assert targets == ["<think>Panel: B 2, C 1.</think><answer>C</answer>",
                       "<think>Panel: A 3.</think><answer>A</answer>"]
    assert gold == [True, True]
    assert all(has_valid_format(t) for t in targets)
    assert [parse_choice(t, it["options"]).index for t, it in zip(targets, items)] == [2, 0]


def test_attending_majority_targets_follow_the_tally_ties_and_empty_go_to_gold():
    items = [_item(0, 2), _item(1, 3), _item(2, 1)]
    ops = [[_op(1), _op(1), _op(2)], [_op(0), _op(1)], []]
    targets, gold = cold_start_targets("attending", items, 1.0, seed=0, opinions=ops, target="majority")
    assert targets == ["<think>Panel: B 2, C 1.</think><answer>B</answer>",
                       "<think>Panel: A 1, B 1.</think><answer>D</answer>",
                       "<think>Panel: none.</think><answer>B</answer>"]
    assert gold == [False, True, True]


def test_label_fraction_zero_draws_seeded_random_answers_and_flags_gold():
    items = [_item(i, i % 4) for i in range(200)]
    ops = [[_op(i % 4)] * 3 for i in range(200)]
    t1, g1 = cold_start_targets("attending", items, 0.0, seed=3, opinions=ops)
    t2, _ = cold_start_targets("attending", items, 0.0, seed=3, opinions=ops)
    assert t1 == t2  # seeded
    letters = [parse_choice(t, it["options"]).index for t, it in zip(t1, items)]
    assert g1 == [idx == it["answer_idx"] for idx, it in zip(letters, items)]
    assert 0.1 < sum(g1) / len(g1) < 0.4  # random among 4 options: about a quarter gold
    assert len(set(letters)) == 4


def test_triage_targets_name_the_modality_and_the_gold_specialty():
    items = [_item(0, 0, modality="synthetic-fundus", specialty="Ophthalmologist"),
             _item(1, 0, modality="dermoscopy", specialty="Dermatologist")]
    targets, gold = cold_start_targets("triage", items, 1.0, seed=0)
    assert targets == ["<think>Image: fundus.</think><answer>Ophthalmologist</answer>",
                       "<think>Image: dermoscopy.</think><answer>Dermatologist</answer>"]
    assert gold == [True, True]
    assert parse_specialty(targets[0]).value == "Ophthalmologist"


@pytest.mark.parametrize("kwargs,match", [
    (dict(agent="nurse"), "nurse"),
    (dict(target="contrarian"), "contrarian"),
    (dict(label_fraction=1.5), "label_fraction"),
    (dict(opinions=None), "one opinion list per item"),
    (dict(opinions=[[]]), "one opinion list per item"),
])
def test_bad_arguments_are_named(kwargs, match):
    args = dict(agent="attending", items=[_item(0, 0), _item(1, 1)], label_fraction=1.0, seed=0,
                opinions=[[], []], target="gold")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        cold_start_targets(**args)


def test_open_item_is_refused_for_the_attending():
    with pytest.raises(ValueError, match="open question"):
        cold_start_targets("attending", [{"id": "o", "options": [], "answer_idx": -1}], 1.0, 0, opinions=[[]])


def test_triage_overrides_apply_to_the_triage_cold_start_only():
    from mmed.config import load_profile
    from mmed.rl.sft import agent_cold_start

    prof = load_profile("smoke", overrides={"cold_start": {"max_steps": 50, "learning_rate": 1e-3,
                                                           "triage": {"max_steps": 7, "label_fraction": 0.5}}})
    tri, att = agent_cold_start(prof, "triage"), agent_cold_start(prof, "attending")
    assert (tri.max_steps, tri.learning_rate, tri.label_fraction) == (7, 1e-3, 0.5)
    assert (att.max_steps, att.learning_rate) == (50, 1e-3)
    assert att.label_fraction == prof.cold_start.label_fraction


def test_attending_overrides_apply_to_the_attending_cold_start_only():
    from mmed.config import load_profile
    from mmed.rl.sft import agent_cold_start

    prof = load_profile("smoke", overrides={"cold_start": {"max_steps": 50, "learning_rate": 3e-4,
                                                           "attending": {"learning_rate": 6e-4}}})
    tri, att = agent_cold_start(prof, "triage"), agent_cold_start(prof, "attending")
    assert (att.max_steps, att.learning_rate) == (50, 6e-4)
    assert (tri.max_steps, tri.learning_rate) == (50, 3e-4)
    with pytest.raises(ValueError, match="unknown agent 'surgeon'"):
        agent_cold_start(prof, "surgeon")


def test_image_only_references_keep_the_sections_learning_rate(tmp_path, monkeypatch):
    """cold_start.attending is the attending's: the image-only reference trains with the
    section's learning rate (what ensure_image_only_attending hands to cold_start)."""
    from mmed.config import load_profile
    from mmed.rl import cold_start as CS
    from mmed.rl.sft import agent_cold_start
    from mmed.runs import Run

    prof = load_profile("smoke", overrides={"cold_start": {"learning_rate": 3e-4, "attending": {"learning_rate": 6e-4}}})
    seen = {}

    def fake_cold_start(agent, base, train, held, p, out, *a, **k):
        seen["cfg"] = agent_cold_start(p, agent)
        raise RuntimeError("stop here")

    monkeypatch.setattr(CS, "cold_start", fake_cold_start)
    monkeypatch.setattr(CS, "base_model", lambda run, profile, agent: "base")
    monkeypatch.setattr(CS, "image_only_items", lambda *a, **k: ([{"id": "x"}], [], {}))
    with pytest.raises(RuntimeError, match="stop here"):
        CS.ensure_image_only_attending(Run.open(tmp_path / "run", profile="smoke", seed=0), prof, 0)
    assert seen["cfg"].learning_rate == 3e-4


def test_without_panel_empties_a_seeded_share_of_the_panels():
    from mmed.rl.cold_start import without_panel

    ops = [[_op(i % 3), _op(1)] for i in range(40)]
    out = without_panel(ops, 0.25, seed=3)
    empty = [i for i, o in enumerate(out) if o == []]
    assert len(empty) == 10
    assert all(out[i] == ops[i] for i in range(40) if i not in empty)  # the others untouched
    assert [i for i, o in enumerate(without_panel(ops, 0.25, seed=3)) if o == []] == empty  # seeded
    assert [i for i, o in enumerate(without_panel(ops, 0.25, seed=4)) if o == []] != empty
    assert without_panel(ops, 0.0, 0) == ops and all(o == [] for o in without_panel(ops, 1.0, 0))
    with pytest.raises(ValueError, match="no-panel fraction"):
        without_panel(ops, 1.5, 0)


def test_no_panel_items_get_the_empty_tally_and_gold_answers():
    from mmed.rl.cold_start import without_panel

    items = [_item(i, i % 4) for i in range(8)]
    ops = without_panel([[_op((i + 1) % 4)] * 3 for i in range(8)], 0.5, seed=0)
    targets, gold = cold_start_targets("attending", items, 1.0, 0, opinions=ops, target="majority")
    for it, o, t, g in zip(items, ops, targets, gold):
        if o == []:  # the attending alone: nothing to follow, the gold answer from the image
            assert "Panel: none." in t and g and parse_choice(t, it["options"]).index == it["answer_idx"]
        else:
            assert "Panel: none." not in t and not g  # majority target: follows the (wrong) panel


def test_no_panel_fraction_is_validated():
    from mmed.config import ProfileError, load_profile

    assert load_profile("smoke").cold_start.no_panel_fraction >= 0.0
    with pytest.raises(ProfileError, match="cold_start.no_panel_fraction"):
        load_profile("smoke", overrides={"cold_start": {"no_panel_fraction": 1.2}})
