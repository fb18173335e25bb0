"""The degenerate-agent guard: answer distributions of every evaluation, the
check that fails a run whose agent gives one answer on nearly every item, and the
panel-only baselines of the ablation table (follow the majority, single specialists)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mmed.checks import (DEGENERATE_KEY, answer_records, check_run, degenerate_agents, degenerate_in_metrics,
                         guard_report, guard_settings)
from mmed.cli import main
from mmed.config import ProfileError, load_profile
from mmed.eval.ablations import (answer_columns, chance_level, choose_member, follow_majority, member_accuracies,
                                 seeded_majority, single_member)
from mmed.agents.scoring import answer_distribution, degenerate_answers
from mmed.eval.metrics import answer_table
from mmed.eval.tts import vote_answers
from mmed.agents.pipeline import decision_answers, summarize

RAW_A = "<think>I weigh the image and the opinions.</think><answer>A</answer>"


# ----------------------------------------------------------------------------------------
# answer_distribution
# ----------------------------------------------------------------------------------------
def test_answer_distribution_counts_letters_texts_invalid_and_gold():
    d = answer_distribution([0, 0, 1, None, 0], ["a", "a", "b", "junk", "a"], [0, 1, 1, 0, 2],
                            [["yes", "no"], ["yes", "no"], ["yes", "no"], ["yes", "no"], ["left", "right", "both"]])
    assert d["n"] == 5 and d["n_valid"] == 4 and d["n_invalid"] == 1
    assert d["counts"] == {"A": 3, "B": 1} and list(d["counts"]) == ["A", "B"]
    assert d["top_answer"] == "A" and d["top_answer_share"] == pytest.approx(3 / 5)  # invalid stays in the denominator
    assert d["gold_counts"] == {"A": 2, "B": 2, "C": 1} and d["gold_top_answer"] == "A"
    assert d["gold_top_share"] == pytest.approx(2 / 5)
    assert d["n_distinct_completions"] == 3 and d["top_completion_share"] == pytest.approx(3 / 5)
    assert d["counts_text"] == {"yes": 2, "left": 1, "no": 1}
    assert d["gold_counts_text"] == {"no": 2, "yes": 2, "both": 1}
    json.dumps(d)  # JSON-safe


def test_answer_distribution_of_specialties_and_of_no_valid_answer():
    d = answer_distribution(["Oncologist"] * 3 + [None], None, ["Radiologist", "Radiologist", "Pathologist", "Oncologist"])
    assert d["counts"] == {"Oncologist": 3} and d["top_answer_share"] == 0.75 and d["gold_top_share"] == 0.5
    assert d["n_distinct_completions"] is None and "counts_text" not in d
    none = answer_distribution([None, None], ["x", "y"], [0, 1])
    assert none["top_answer"] is None and none["top_answer_share"] == 0.0 and none["n_distinct_completions"] == 2
    empty = answer_distribution([], [], [])
    assert empty["n"] == 0 and empty["top_answer_share"] is None and empty["gold_top_share"] is None


@pytest.mark.parametrize("args, match", [
    (([0, 1], None, [0]), "2 parsed answers but 1 gold answers"),
    (([0], ["a", "b"], [0]), "1 parsed answers but 2 raw completions"),
    (([0], None, [None]), r"gold_answers\[0\]: None"),
    (([True], None, [0]), r"parsed_answers\[0\]: True is a boolean"),
    (([-1], None, [0]), r"parsed_answers\[0\]: option index -1"),
    (([0, 2], None, [0, 0], [["a", "b"], ["a", "b"]]), r"parsed_answers\[1\]: option index 2 outside 0..1"),
    (([1.5], None, [0]), r"parsed_answers\[0\]: 1.5 \(float\)"),
])
def test_answer_distribution_errors_name_the_item_and_field(args, match):
    with pytest.raises(ValueError, match=match):
        answer_distribution(*args)


def test_degenerate_answers_needs_a_skewed_answer_on_unskewed_gold():
    assert degenerate_answers({"top_answer_share": 0.95, "gold_top_share": 0.5}) is True
    assert degenerate_answers({"top_answer_share": 0.9, "gold_top_share": 0.5}) is False  # "more than 90%"
    assert degenerate_answers({"top_answer_share": 0.97, "gold_top_share": 0.95}) is False  # the gold is as skewed
    assert degenerate_answers({"top_answer_share": 0.97, "gold_top_share": 0.9}) is True
    assert degenerate_answers({"top_answer_share": None, "gold_top_share": 0.5}) is False
    assert degenerate_answers({"top_answer_share": 0.8, "gold_top_share": 0.5}, share=0.75) is True
    with pytest.raises(ValueError, match="degenerate share"):
        degenerate_answers({}, share=1.0)


def test_answer_table_lists_each_distribution():
    t = answer_table({"a": answer_distribution([0, 0, None], None, [0, 1, 1]), "old": None})
    assert t["name"].tolist() == ["a", "old"]
    assert t.loc[0, "counts"] == "A:2 invalid:1" and t.loc[0, "top_answer_share"] == pytest.approx(2 / 3)
    assert pd.isna(t.loc[1, "top_answer_share"])


# ----------------------------------------------------------------------------------------
# records of a constant and of a varied policy
# ----------------------------------------------------------------------------------------
def _records(n: int = 20, constant: bool = True) -> list[dict]:
    """Closed 2-option prediction records, gold alternating A/B (gold top share 0.5); the
    attending answers A on every item (constant) or the gold on every item (varied)."""
    recs = []
    for i in range(n):
        gold = i % 2
        ans = 0 if constant else gold
        recs.append({"id": f"q{i}", "dataset": "synthetic", "answer_type": "closed", "options": ["yes", "no"],
                     "answer_idx": gold, "stratum": "easy", "panel": [],
                     "attending": {"raw": RAW_A if constant else f"<answer>{'AB'[ans]}</answer>", "parsed": ans, "valid": True},
                     "correct": ans == gold})
    return recs


def test_decision_answers_and_summarize_record_the_distribution():
    d = decision_answers(_records())
    assert d["counts"] == {"A": 20} and d["top_answer_share"] == 1.0 and d["gold_top_share"] == 0.5
    assert d["n_distinct_completions"] == 1 and d["counts_text"] == {"yes": 20}
    recs = [dict(r, triage={"specialty": "Radiologist", "valid": True, "fallback": False}, specialty="Radiologist")
            for r in _records(constant=False)]
    assert summarize(recs, n_boot=50)["answers"]["counts"] == {"A": 10, "B": 10}
    with pytest.raises(ValueError, match="record 0 .*'q0'.*closed records with a decision"):
        decision_answers([dict(_records()[0], attending=None)])


def _write_run(root, profile: str | None, curve_rows: list[dict]) -> None:
    """A run folder with notebook 06's metrics holding ``curve_rows``."""
    (root / "notebooks").mkdir(parents=True)
    (root / "eval").mkdir()
    (root / "notebooks" / "06_test_time_scaling.ipynb").write_text("{}")
    if profile is not None:
        (root / "manifest.json").write_text(json.dumps({"run_id": root.name, "profile": profile}))
    (root / "eval" / "notebook_06_test_time_scaling.json").write_text(json.dumps({"n_samples": 1, "curve": curve_rows}))


def _curve_row(records: list[dict]) -> dict:
    acc = sum(r["correct"] for r in records) / len(records)
    d = decision_answers(records)
    return {"attending": "C-MARL (full system)", "dataset": "synthetic", "policy": "greedy", "N": 1, "mean_samples": 1.0,
            "acc": acc, "lo": acc, "hi": acc, "n": len(records),
            **{k: d[k] for k in ("top_answer", "top_answer_share", "gold_top_share", "n_distinct_completions")}}


def test_a_constant_policy_fails_check_run_naming_agent_split_and_share(tmp_path, capsys):
    _write_run(tmp_path / "demo_run", "demo", [_curve_row(_records(constant=True))])
    res = check_run(tmp_path / "demo_run")
    assert res["06_test_time_scaling"] == []
    (msg,) = res[DEGENERATE_KEY]
    assert "\n" not in msg
    assert msg.startswith("degenerate agent 'C-MARL (full system) (policy=greedy, N=1)' on synthetic: answer 'A' on 20 of "
                          "20 items (share 1.00 > 0.90, gold's most frequent answer 0.50)")
    assert "[06_test_time_scaling: curve[0]]" in msg
    assert main(["check-run", "--run-dir", str(tmp_path / "demo_run")]) == 1
    out = capsys.readouterr().out
    assert f"{DEGENERATE_KEY} (one answer on > 90% of items; fail, profile 'demo'): FAILED" in out and msg in out


def test_a_varied_policy_passes_check_run(tmp_path, capsys):
    _write_run(tmp_path / "run", "demo", [_curve_row(_records(constant=False))])
    assert check_run(tmp_path / "run") == {"06_test_time_scaling": [], DEGENERATE_KEY: []}
    assert main(["check-run", "--run-dir", str(tmp_path / "run")]) == 0
    assert f"{DEGENERATE_KEY} (one answer on > 90% of items; fail, profile 'demo'): ok" in capsys.readouterr().out


def test_smoke_profile_warns_instead_of_failing_and_defaults_fail(tmp_path, capsys):
    _write_run(tmp_path / "smoke_run", "smoke", [_curve_row(_records(constant=True))])
    warnings: list[str] = []
    res = check_run(tmp_path / "smoke_run", warnings=warnings)
    assert res[DEGENERATE_KEY] == [] and len(warnings) == 1 and "'C-MARL (full system)" in warnings[0]
    assert main(["check-run", "--run-dir", str(tmp_path / "smoke_run")]) == 0
    out = capsys.readouterr().out
    assert "1 warning(s)" in out and "warning (not a failure under this profile): degenerate agent" in out
    # a run whose manifest names no profile gets the defaults: fail at 0.9
    _write_run(tmp_path / "bare", None, [_curve_row(_records(constant=True))])
    assert guard_settings(tmp_path / "bare") == (0.9, "fail", "defaults (the run names no profile)")
    assert len(check_run(tmp_path / "bare")[DEGENERATE_KEY]) == 1


def test_guard_finds_distributions_anywhere_and_skips_the_main_seed_replicate():
    const = answer_distribution([0] * 10, [RAW_A] * 10, [0, 1] * 5)
    varied = answer_distribution([0, 1] * 5, None, [0, 1] * 5)
    m = {"seed": 0, "cold_start": {"attending": {"after": {"answers": const}}, "triage": {"after": {"answers": varied}}},
         "seed_replicates": {"table": [{"seed": 0, "system": "cmarl", "top_answer_share": 1.0, "gold_top_share": 0.5},
                                       {"seed": 1, "system": "cmarl", "top_answer_share": 1.0, "gold_top_share": 0.5}]}}
    assert [p for p, _ in answer_records(m)] == [["cold_start", "attending", "after", "answers"],
                                                 ["cold_start", "triage", "after", "answers"],
                                                 ["seed_replicates", "table", 0], ["seed_replicates", "table", 1]]
    found = degenerate_in_metrics(m, "02_x")
    assert [(d.agent, d.path) for d in found] == [("cold_start.attending.after", "cold_start.attending.after.answers"),
                                                  ("cmarl (seed=1)", "seed_replicates.table[1]")]
    assert found[0].message().startswith("degenerate agent 'cold_start.attending.after': answer 'A' on 10 of 10 items")
    prof = load_profile("demo")
    assert guard_report(m, "02_x", prof)[0].startswith("answer guard (FAILS the run at check-run): degenerate agent")
    assert guard_report({"a": varied}, "02_x", prof) == ["answer guard: no agent gives one answer on more than 90% of its items"]


def test_degenerate_agents_reads_every_metrics_file_of_a_run(tmp_path):
    _write_run(tmp_path / "run", "demo", [_curve_row(_records(constant=True))])
    (tmp_path / "run" / "eval" / "notebook_05_ablations.json").write_text(json.dumps(
        {"rows": [{"dataset": "vqa_rad", "system": "full system", "n": 4, "top_answer": "B", "top_answer_share": 1.0,
                   "gold_top_share": 0.75}]}))
    (tmp_path / "run" / "eval" / "notebook_05_ablations.rejected.json").write_text(json.dumps({"rows": []}))
    found = degenerate_agents(tmp_path / "run")
    assert [(d.notebook, d.agent, d.split) for d in found] == [("05_ablations", "full system", "vqa_rad"),
                                                              ("06_test_time_scaling", "C-MARL (full system) (policy=greedy, N=1)", "synthetic")]
    assert [d.threshold for d in degenerate_agents(tmp_path / "run", share=0.99)] == [0.99, 0.99]  # 1.0 > 0.99 still
    # at 0.7 the VQA-RAD gold (0.75 one answer) counts as skewed: only the synthetic row is degenerate
    assert [d.notebook for d in degenerate_agents(tmp_path / "run", share=0.7)] == ["06_test_time_scaling"]
    assert degenerate_agents(tmp_path / "run", stems=["05_ablations"])[0].agent == "full system"


def test_profile_keys_of_the_guard_are_validated():
    assert load_profile("demo").eval.degenerate_action == "fail" and load_profile("smoke").eval.degenerate_action == "warn"
    with pytest.raises(ProfileError, match="key 'eval.degenerate_action' is 'ignore'"):
        load_profile("smoke", overrides={"eval": {"degenerate_action": "ignore"}})
    with pytest.raises(ProfileError, match="key 'eval.degenerate_share' must be in"):
        load_profile("smoke", overrides={"eval": {"degenerate_share": 1.5}})


# ----------------------------------------------------------------------------------------
# panel-only baselines
# ----------------------------------------------------------------------------------------
def _op(parsed):
    return {"parsed": parsed, "valid": parsed is not None}


def _panel_records() -> list[dict]:
    """Three items, gold B, B, A; members: (B, B, A), (A, None, B) a 1-1 tie, (A, A, B)."""
    panels = [[_op(1), _op(1), _op(0)], [_op(0), _op(None), _op(1)], [_op(0), _op(0), _op(1)]]
    return [{"id": f"i{k}", "answer_idx": g, "options": ["yes", "no"], "panel": p, "attending": None, "correct": None}
            for k, (g, p) in enumerate(zip([1, 1, 0], panels))]


def test_seeded_majority_breaks_ties_by_seed_and_item_only():
    assert seeded_majority([1, 1, 0], 0, "x") == 1 and seeded_majority([None, None], 0, "x") is None
    assert seeded_majority([2, None, -1], 0, "x") == 2
    draws = {seeded_majority([0, 1], s, "item") for s in range(40)}
    assert draws == {0, 1}  # a tie is not always the first member's answer
    assert all(seeded_majority([0, 1], s, "item") == seeded_majority([1, 0], s, "item") for s in range(10))  # order-free


def test_follow_majority_and_single_members_on_records():
    recs = _panel_records()
    fm = follow_majority(recs, seed=0)
    assert [r["attending"]["parsed"] for r in fm][::2] == [1, 0] and fm[1]["attending"]["parsed"] in (0, 1)
    assert fm[0]["correct"] and fm[2]["correct"] and fm[0]["attending"]["method"] == "follow_majority"
    assert recs[0]["attending"] is None  # inputs untouched
    m2 = single_member(recs, 1)
    assert [r["attending"]["parsed"] for r in m2] == [1, None, 0] and [r["correct"] for r in m2] == [True, False, True]
    assert m2[1]["attending"]["reason"] == "member_invalid" and not m2[1]["attending"]["valid"]
    assert member_accuracies(recs, 3) == [pytest.approx(2 / 3), pytest.approx(2 / 3), pytest.approx(1 / 3)]
    assert choose_member(member_accuracies(recs, 3)) == 0 and choose_member([0.1, 0.5, 0.5]) == 1  # ties: lowest
    assert single_member(recs, 5)[0]["attending"]["valid"] is False
    cols = answer_columns(m2)
    assert cols["top_answer"] in ("A", "B") and cols["top_answer_share"] == pytest.approx(1 / 3)
    assert cols["gold_top_share"] == pytest.approx(2 / 3) and cols["n_distinct_completions"] is None
    assert json.loads(cols["answer_counts"]) == {"A": 1, "B": 1, "invalid": 1}


def test_chance_level_is_the_mean_inverse_option_count():
    assert chance_level([{"options": ["a", "b"]}, {"options": ["a", "b", "c", "d"]}]) == pytest.approx(0.375)
    assert chance_level([]) is None
    with pytest.raises(ValueError, match="item 'q': no options"):
        chance_level([{"id": "q", "options": []}])


def test_vote_answers_per_budget_votes_over_the_first_samples():
    samples = [[0, 0, 1, 1], [1, None, 1, 0], [None, None, None, 0]]
    raws = [["a", "a", "b", "b"], ["b", "x", "b", "a"], ["x", "x", "x", "a"]]
    gold = [0, 1, 1]
    one = vote_answers(samples, raws, gold, [1, 1, 1])
    assert one["counts"] == {"A": 1, "B": 1} and one["n_invalid"] == 1 and one["n_distinct_completions"] == 3
    four = vote_answers(samples, raws, gold, [4, 4, 4])
    assert four["counts"] == {"A": 2, "B": 1} and four["top_answer_share"] == pytest.approx(2 / 3)
    assert four["n_distinct_completions"] == 3 and four["top_completion_share"] == pytest.approx(4 / 12)
    assert four["gold_top_share"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="item 0 has 4 samples, allocation 5"):
        vote_answers(samples, raws, gold, [5, 1, 1])


def test_the_majority_class_baseline_is_not_a_degenerate_agent():
    const = answer_distribution(["Radiologist"] * 10, None, ["Radiologist"] * 6 + ["Dermatologist"] * 4)
    m = {"seed": 0, "majority": {"real": {"answer": "Radiologist", "summary": {"answers": const}}},
         "eval": {"grpo": {"real": {"answers": const}}}}
    found = degenerate_in_metrics(m, "03_triage_grpo", 0.9)
    assert [d.path for d in found] == ["eval.grpo.real.answers"]  # the trained agent, not the baseline


def test_tally_faithfulness_reads_the_think_block_against_the_panel():
    from mmed.eval.ablations import tally_faithfulness

    def rec(panel, raw):
        return {"options": ["x", "y", "z"], "panel": [{"parsed": p, "valid": p is not None, "abstained": False} for p in panel],
                "attending": {"raw": raw}}

    recs = [
        rec([1, 1, 0], "<think>Panel: A 1, B 2.</think><answer>B</answer>"),   # states the panel it saw
        rec([2, 2, 2], "<think>Panel: C 3.</think><answer>C</answer>"),
        rec([0, 1, None], "<think>Panel: B 3.</think><answer>B</answer>"),     # a template, not this panel
        rec([], "<think>Panel: none.</think><answer>A</answer>"),             # the attending alone
        rec([1, 1, 1], "Panel: B 3. B"),                                       # not well formed
    ]
    assert tally_faithfulness(recs) == pytest.approx(3 / 5)
    assert tally_faithfulness([rec([1], None)]) is None  # a vote writes no completion
    for r, gold in zip(recs, [1, 2, 1, 0, 1]):  # as prediction records: parsed answer and gold
        r["attending"].update(parsed=1, valid=True)
        r["answer_idx"] = gold
    assert answer_columns(recs)["tally_faithful"] == pytest.approx(3 / 5)
