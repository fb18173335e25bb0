"""Ablations and test-time scaling on a cold-started smoke run and on the smoke C-MARL
curriculum (rows ↔ stage checkpoints); claims, notes and domain averages; figures and the
README block from CSV files."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from mmed.checkers.nb05_06 import check_05
from mmed.config import load_profile
from mmed.data.sets import load_items
from mmed.eval.ablations import (ABLATION_ROWS, BEST_SPECIALIST_ROW, FOLLOW_MAJORITY_GOLD_ROW, FOLLOW_MAJORITY_ROW, ablation_rows,
                                 answer_columns, domain_averages, markdown_table, member_row_name, no_valid_answer_notes,
                                 run_ablations, single_member, slug, stratum_accuracy)
from mmed.agents.scoring import accuracy_ci
from mmed.eval.tts import budget_gains, run_test_time_scaling, sample_stratum_table
from mmed.viz.figures import (RESULTS_END, RESULTS_START, ablation_claims, redraw, refresh_from_run, results_markdown,
                              triage_gain_claims, update_readme)

SMOKE = load_profile("smoke")


def test_ablations_report_unavailable_rows_and_score_the_rest(smoke_cold_run):
    items = load_items(SMOKE, "synthetic", "test", limit=6)
    val = load_items(SMOKE, "synthetic", "validation", limit=5)
    k = SMOKE.specialists.panel_size
    # synthetic with validation items, a copy of the same items under another name without
    df, recs = run_ablations(smoke_cold_run, SMOKE, {"synthetic": items, "other": items}, seed=0,
                             validation_items={"synthetic": val})
    assert list(df["system"]) == [r.name for r in ablation_rows(k)] * 2
    assert {FOLLOW_MAJORITY_ROW, FOLLOW_MAJORITY_GOLD_ROW, BEST_SPECIALIST_ROW} <= set(df["system"])
    assert all("majority" in n for n in (FOLLOW_MAJORITY_ROW, FOLLOW_MAJORITY_GOLD_ROW))
    other = df[df["dataset"] == "other"]
    df = df[df["dataset"] == "synthetic"]
    avail = df[df["available"]]
    missing = df[~df["available"]]
    # a cold-started run has no curriculum stages or variants: those rows say so
    assert set(missing["system"]) == {"w/o C-MARL: GRPO without curriculum", "C-MARL without entropy bonus",
                                      "C-MARL with constant γ (γ_medium in every stage)",
                                      "C-MARL with an entropy target (γ only while entropy ≤ target)",
                                      "+ Easy", "+ Easy + Medium", "+ Easy + Medium + Hard"}
    assert all(missing["reason"].str.len() > 0)
    # without validation items the best single specialist is not chosen on the evaluated items
    best_other = other[other["system"] == BEST_SPECIALIST_ROW].iloc[0]
    assert not best_other["available"] and best_other["reason"].startswith("no validation split for other")
    # with them: the position is chosen on validation, and its row is that member's answers on the test items
    best = df[df["system"] == BEST_SPECIALIST_ROW].iloc[0]
    pos = int(best["note"].split("panel position ")[1].split(",")[0]) - 1
    assert "chosen on 5 validation items" in best["note"]
    full = recs["synthetic"]["full system"]
    assert [r["attending"]["parsed"] for r in recs["synthetic"][BEST_SPECIALIST_ROW]] == \
        [r["attending"]["parsed"] for r in single_member(full, pos)]
    for j in range(k):  # each position's own accuracy, labelled as not selected
        m = [r["correct"] for r in single_member(full, j)]
        assert df[df["system"] == member_row_name(j)].iloc[0]["acc"] == sum(m) / len(m)
    # follow the majority of the trained triage's routed panel: the panel of the full system's records
    fm = recs["synthetic"][FOLLOW_MAJORITY_ROW]
    assert [r["panel"] for r in fm] == [r["panel"] for r in full]
    assert all(r["attending"]["method"] == "follow_majority" and r["attending"]["raw"] is None for r in fm)
    gold = recs["synthetic"][FOLLOW_MAJORITY_GOLD_ROW]
    assert all(r["panel"][0]["specialty"] == r["specialty"] for r in gold)
    # the answer distribution and chance of every available row come from its records
    chance = sum(1 / len(it["options"]) for it in items) / len(items)
    for name, rs in recs["synthetic"].items():
        r = df[df["system"] == name].iloc[0]
        cols = answer_columns(rs)
        assert r["chance"] == pytest.approx(chance)
        assert (r["top_answer"], r["top_answer_share"], r["gold_top_share"], r["answer_counts"]) == \
            (cols["top_answer"], cols["top_answer_share"], cols["gold_top_share"], cols["answer_counts"])
        letters = [("ABCD"[x["attending"]["parsed"]] if x["attending"]["valid"] else None) for x in rs]
        assert r["top_answer_share"] == max(letters.count(a) for a in set(letters) - {None}) / 6
    assert (avail["n"] == 6).all() and ((avail["lo"] <= avail["acc"]) & (avail["acc"] <= avail["hi"])).all()
    # the full system is the cold-started attending here, so both rows hold identical answers
    full = recs["synthetic"]["full system"]
    cold = recs["synthetic"]["w/o C-MARL: cold-start attending"]
    assert [r["attending"]["raw"] for r in full] == [r["attending"]["raw"] for r in cold]
    row = df[df["system"] == "w/o C-MARL: cold-start attending"].iloc[0]
    assert row["delta_vs_full"] == 0.0
    # the majority-vote baseline uses no attending and the Radiologist panel
    mv = recs["synthetic"]["static MDAgents-style (Radiologist panel, majority vote)"]
    assert all(r["attending"]["method"] == "majority_vote" and r["panel"][0]["specialty"] == "Radiologist" for r in mv)
    # valid rate and per-stratum intervals come from the records
    for name, rs in recs["synthetic"].items():
        r = df[df["system"] == name].iloc[0]
        assert r["n_valid"] == sum(x["attending"]["valid"] for x in rs) and r["valid_rate"] == r["n_valid"] / 6
        assert r["acc"] <= r["valid_rate"]
        for st in ("easy", "medium", "hard"):
            sub = [x["correct"] for x in rs if x["stratum"] == st]
            assert r[f"n_{st}"] == len(sub)
            if sub:
                ci = accuracy_ci(sub, SMOKE.eval.bootstrap_samples, seed=0)
                assert (r[f"acc_{st}"], r[f"lo_{st}"], r[f"hi_{st}"]) == (ci["acc"], ci["lo"], ci["hi"])
            else:
                assert r[f"acc_{st}"] is None or pd.isna(r[f"acc_{st}"])
    out = smoke_cold_run.path("eval", "ablations")
    assert (out / "synthetic" / slug("full system") / "predictions.jsonl").is_file()
    assert "not available" in (out / "table.md").read_text()
    assert markdown_table(df).count("\n") == len(df) + 2


def test_tts_curve_shapes_and_adaptive_budget(smoke_cold_run):
    items = load_items(SMOKE, "synthetic", "test", limit=6)
    curve, samples = run_test_time_scaling(smoke_cold_run, SMOKE, {"synthetic": items}, seed=0)
    n = SMOKE.tts.n_samples
    # a cold-started run has no no_curriculum variant: only the full system is scaled, the other is listed;
    # and no C-MARL stage either, so the full system's attending is the cold start, and its label says so
    cold = "cold-start attending (no C-MARL trained; in place of 'C-MARL (full system)')"
    assert list(samples) == [cold] and set(curve["attending"]) == {cold}
    weights = json.loads((smoke_cold_run.path("eval", "tts") / "weights.json").read_text())
    assert weights[cold]["attending"]["adapters"] is None
    skipped = json.loads((smoke_cold_run.path("eval", "tts") / "skipped.json").read_text())
    assert "GRPO without curriculum" in skipped
    samples = samples[cold]
    assert all(len(p["samples"]) == n for p in samples["synthetic"])
    uni = curve[curve.policy == "uniform"]
    assert list(uni["N"]) == SMOKE.tts.budgets
    ada = curve[curve.policy == "adaptive"]
    assert (ada["mean_samples"] == ada["N"]).all()
    assert ((curve["lo"] <= curve["acc"]) & (curve["acc"] <= curve["hi"])).all()
    assert (smoke_cold_run.path("eval", "tts") / "curve.csv").is_file()
    # each budget records what its vote answered: item i votes over its first N samples
    from collections import Counter

    from mmed.eval.tts import vote

    per = samples["synthetic"]
    for _, r in curve[curve.policy == "uniform"].iterrows():
        votes = Counter(vote(p["samples"][: int(r["N"])]) for p in per)
        votes.pop(None, None)
        assert r["top_answer_share"] == (max(votes.values()) / len(per) if votes else 0.0)
    golds = Counter(p["gold"] for p in per)
    assert (curve["gold_top_share"] == max(golds.values()) / len(per)).all()
    greedy = curve[curve.policy == "greedy"].iloc[0]
    g = Counter(p["greedy"] for p in per if p["greedy"] is not None)
    assert greedy["top_answer_share"] == (max(g.values()) / len(per) if g else 0.0)


def test_tts_step_builds_the_metrics_notebook_06_records(smoke_cold_run):
    """``tts_step`` (notebook 06's one call): the scaling curve, the per-stratum table and the
    gains of the same samples, and the metrics dictionary the notebook's checker accepts."""
    from mmed.checks import CHECKERS
    from mmed.eval.metrics import json_records
    from mmed.eval.tts import TTS_NOTEBOOK, tts_step

    items = load_items(SMOKE, "synthetic", "test", limit=6)
    step = tts_step(smoke_cold_run, SMOKE, {"synthetic": items}, seed=0)
    assert step.per_stratum.equals(sample_stratum_table(step.samples, n_boot=SMOKE.eval.bootstrap_samples, seed=0))
    assert step.gains.equals(budget_gains(step.curve))
    assert step.metrics == {"real_data": False, "n_samples": SMOKE.tts.n_samples, "curve": json_records(step.curve),
                            "gains": json_records(step.gains), "per_stratum": json_records(step.per_stratum), "seed": 0}
    assert json.loads(json.dumps(step.metrics, allow_nan=False)) == step.metrics  # strict JSON
    assert CHECKERS[TTS_NOTEBOOK](step.metrics) == []


def test_ablations_step_builds_the_metrics_notebook_05_records(smoke_cold_run, tmp_path):
    """``ablations_step`` (notebook 05's one call): the table, the claims read off it, the
    notes and the domain averages, and the metrics the notebook's checker accepts."""
    from mmed.checks import CHECKERS
    from mmed.eval.ablations import ablations_step, domain_averages, no_valid_answer_notes
    from mmed.eval.claims import ablation_claims
    from mmed.eval.metrics import json_records
    from mmed.runs import Run

    root = tmp_path / "run"
    shutil.copytree(smoke_cold_run.root, root)
    items = load_items(SMOKE, "synthetic", "test", limit=6)
    step = ablations_step(Run(root), SMOKE, {"synthetic": items}, seed=0)
    assert step.claims.equals(ablation_claims(step.table)) and step.notes == no_valid_answer_notes(step.table)
    assert step.domains.equals(domain_averages(step.records, n_boot=SMOKE.eval.bootstrap_samples, seed=0))
    assert step.metrics == {"real_data": False, "datasets": ["synthetic"], "rows": json_records(step.table),
                            "n_items": {"synthetic": 6}, "claims": json_records(step.claims), "notes": step.notes,
                            "domains": json_records(step.domains), "seed": 0}
    assert set(step.table["system"]) >= {"full system", "w/o specialists (attending alone)"}
    assert CHECKERS["05_ablations"](step.metrics) == []


def _fake_figure_data(d):
    pd.DataFrame([
        {"dataset": "synthetic", "system": "full system", "available": True, "n": 10, "acc": 0.6, "lo": 0.3, "hi": 0.9},
        {"dataset": "synthetic", "system": "w/o triage: random specialty", "available": True, "n": 10, "acc": 0.4, "lo": 0.1, "hi": 0.7,
         "delta_vs_full": -0.2, "delta_lo": -0.35, "delta_hi": -0.05},
        {"dataset": "synthetic", "system": "+ Easy", "available": False, "reason": "no stage", "n": None, "acc": None, "lo": None, "hi": None},
    ]).to_csv(d / "ablations.csv", index=False)
    pd.DataFrame([
        {"dataset": "synthetic", "policy": "uniform", "N": 1, "mean_samples": 1.0, "acc": 0.5, "lo": 0.4, "hi": 0.6, "n": 10},
        {"dataset": "synthetic", "policy": "uniform", "N": 4, "mean_samples": 4.0, "acc": 0.62, "lo": 0.5, "hi": 0.7, "n": 10},
        {"dataset": "synthetic", "policy": "adaptive", "N": 4, "mean_samples": 4.0, "acc": 0.66, "lo": 0.55, "hi": 0.75, "n": 10},
    ]).to_csv(d / "test_time_scaling.csv", index=False)


def test_redraw_and_readme_block_come_from_the_csv_files(tmp_path):
    _fake_figure_data(tmp_path)
    status = redraw(tmp_path)
    assert status["ablations"] == "ok" and status["test_time_scaling"] == "ok"
    assert status["curriculum_entropy"] == "missing data file"
    assert (tmp_path / "ablations.png").stat().st_size > 1000
    md = results_markdown(tmp_path)
    assert "| full system | 60.0 [30.0, 90.0] (n=10) |" in md
    assert "| attending | synthetic | uniform | – | 50.0 [40.0, 60.0] | 62.0 [50.0, 70.0] |" in md
    assert "| attending | synthetic | adaptive |  | – | 66.0 [55.0, 75.0] |" in md
    assert "+ Easy" not in md  # unavailable rows are not in the headline table
    # claims are read off the table: full - row, with the paired interval sign-flipped
    assert "| triage gain (vs random specialty) | synthetic | +20.0 [+5.0, +35.0] | holds here |" in md
    assert "| C-MARL gain (vs cold-start attending) | synthetic | not in this run | – |" in md
    assert "test-time scaling, attending, synthetic: 50.0 % [40.0, 60.0] with 1 sample → 62.0 % [50.0, 70.0] with 4" in md
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{RESULTS_START}\nold\n{RESULTS_END}\nrest\n")
    assert update_readme(readme, tmp_path) is True
    text = readme.read_text()
    assert "\nold\n" not in text and "60.0 [30.0, 90.0]" in text and text.endswith("rest\n")
    assert update_readme(readme, tmp_path) is False
    (tmp_path / "bad.md").write_text("no markers")
    with pytest.raises(ValueError, match="lacks the results markers"):
        update_readme(tmp_path / "bad.md", tmp_path)


def test_readme_block_shows_answer_shares_and_chance_when_the_csvs_hold_them(tmp_path):
    guard = {"top_answer": "A", "top_answer_share": 1.0, "gold_top_share": 0.486, "chance": 0.464}
    pd.DataFrame([
        {"dataset": "synthetic", "system": "full system", "available": True, "n": 10, "acc": 0.5, "lo": 0.2, "hi": 0.8,
         "valid_rate": 1.0, **guard},
        {"dataset": "synthetic", "system": "follow the panel's majority (trained triage's panel, no attending)",
         "available": True, "n": 10, "acc": 0.8, "lo": 0.6, "hi": 1.0, "valid_rate": 1.0,
         **dict(guard, top_answer="B", top_answer_share=0.55)},
    ]).to_csv(tmp_path / "ablations.csv", index=False)
    pd.DataFrame([
        {"attending": "a", "dataset": "synthetic", "policy": p, "N": n, "mean_samples": float(n), "acc": 0.5, "lo": 0.4,
         "hi": 0.6, "n": 10, "top_answer": "A", "top_answer_share": 0.9, "gold_top_share": 0.5}
        for p, n in (("greedy", 1), ("uniform", 1), ("uniform", 4))
    ]).to_csv(tmp_path / "test_time_scaling.csv", index=False)
    pd.DataFrame([{"when": "GRPO", "dataset": "real", "specialty": "(all)", "acc": 0.3, "lo": 0.2, "hi": 0.4, "n": 107,
                   "top_answer": "Oncologist", "top_answer_share": 0.99, "gold_top_share": 0.3}]).to_csv(tmp_path / "triage.csv", index=False)
    md = results_markdown(tmp_path)
    assert "| full system | 50.0 [20.0, 80.0] (n=10, 100% valid; top A 100%, gold top 49%) |" in md
    assert "(n=10, 100% valid; top B 55%, gold top 49%) |" in md
    assert "Chance (mean over items of 1 / number of options): synthetic 46.4%." in md
    assert "| a | synthetic | uniform | 50.0 [40.0, 60.0] (top A 90%) | 50.0 [40.0, 60.0] (top A 90%) | " \
           "50.0 [40.0, 60.0] (top A 90%) | 50% |" in md
    assert "| real | (all) | GRPO | 107 | 30.0 [20.0, 40.0] | top Oncologist 99% | 30% |" in md
    assert "has no `top_answer_share`" not in md
    assert redraw(tmp_path)["ablations"] == "ok"


def test_readme_block_says_when_old_csvs_lack_the_answer_shares(tmp_path):
    _fake_figure_data(tmp_path)
    md = results_markdown(tmp_path)
    assert "`ablations.csv` has no `top_answer_share` / `gold_top_share` columns" in md
    assert "`test_time_scaling.csv` has no `top_answer_share`" in md


def test_export_ablations_always_carries_the_guard_columns(tmp_path):
    from mmed.viz.figures import ABLATION_GUARD_COLUMNS, export_ablations

    t = tmp_path / "eval" / "ablations"
    t.mkdir(parents=True)
    pd.DataFrame([{"dataset": "synthetic", "system": "full system", "n": 3, "acc": 0.5, "top_answer_share": 0.7}]).to_csv(
        t / "table.csv", index=False)
    df = export_ablations(tmp_path)
    assert {"top_answer_share", "valid_rate", "acc_easy", "chance", "gold_top_share"} <= set(ABLATION_GUARD_COLUMNS) <= set(df)
    assert df.loc[0, "top_answer_share"] == 0.7 and pd.isna(df.loc[0, "chance"])


def test_refresh_from_run_only_touches_what_the_run_has(tmp_path):
    from mmed.runs import Run

    fig = tmp_path / "figs"
    fig.mkdir()
    _fake_figure_data(fig)
    before = (fig / "ablations.csv").read_text()
    run = Run.open(tmp_path / "run", profile="smoke", seed=3)
    (fig / "SOURCE.json").write_text(json.dumps({"run_id": "earlier", "profile": "demo", "git_commit": "abc"}))
    status = refresh_from_run(run.root, fig)
    assert status["ablations"].startswith("kept") and (fig / "ablations.csv").read_text() == before
    # the run held none of the figures' sources: SOURCE.json still names the earlier run
    assert json.loads((fig / "SOURCE.json").read_text()) == {"run_id": "earlier", "profile": "demo", "git_commit": "abc"}
    table = run.path("eval", "ablations", mkdir=True) / "table.csv"
    pd.DataFrame([{"dataset": "vqa_rad", "system": "full system", "available": True, "n": 3, "acc": 1.0, "lo": 1.0, "hi": 1.0}]).to_csv(table, index=False)
    status = refresh_from_run(run.root, fig)
    assert status["ablations"] == "ok" and status["triage"].startswith("kept")
    # a partial refresh keeps the earlier source and names the refreshed file's run
    src = json.loads((fig / "SOURCE.json").read_text())
    assert src["run_id"] == "earlier" and set(src["refreshed_from"]) == {"ablations"}
    assert src["refreshed_from"]["ablations"]["run_id"] == "run"
    assert "Source run: `earlier`" in results_markdown(fig) and "`ablations` from run `run`" in results_markdown(fig)
    assert pd.read_csv(fig / "ablations.csv")["dataset"].tolist() == ["vqa_rad"]
    # triage.csv from notebook 03's metrics: per specialty, an (all) row, and the paired gain on GRPO's (all) row
    acc = lambda a, n: {"accuracy": {"acc": a, "lo": a - 0.1, "hi": min(1.0, a + 0.1), "n": n}}
    nb03 = {"eval": {w: {"real": {**acc(a, 10), "by_specialty": {"Pathologist": acc(a, 10), "Surgeon": {"accuracy": None}}}}
                     for w, a in (("sft", 0.3), ("grpo", 0.6))},
            "gain": {"real": {"diff": 0.3, "lo": 0.1, "hi": 0.5, "n": 10}}}
    run.path("eval").joinpath("notebook_03_triage_grpo.json").write_text(json.dumps(nb03))
    assert refresh_from_run(run.root, fig)["triage"] == "ok"
    tri = pd.read_csv(fig / "triage.csv")
    assert tri[["when", "specialty"]].values.tolist() == [["cold start", "Pathologist"], ["cold start", "(all)"],
                                                           ["GRPO", "Pathologist"], ["GRPO", "(all)"]]
    assert tri["gain"].isna().tolist() == [True, True, True, False]
    assert tri.iloc[3][["gain", "gain_lo", "gain_hi"]].tolist() == [0.3, 0.1, 0.5]
    assert "| triage GRPO gain (vs cold-start triage) | real (n=10) | +30.0 [+10.0, +50.0] | holds here |" in results_markdown(fig)
    # the answer distribution notebook 03 records (triage_summary's "answers") lands on the (all) rows
    nb03["eval"]["grpo"]["real"]["answers"] = {"top_answer": "Oncologist", "top_answer_share": 0.9, "gold_top_share": 0.4}
    run.path("eval").joinpath("notebook_03_triage_grpo.json").write_text(json.dumps(nb03))
    refresh_from_run(run.root, fig)
    tri = pd.read_csv(fig / "triage.csv")
    assert tri["top_answer_share"].tolist()[3] == 0.9 and tri["top_answer_share"].isna().tolist() == [True] * 3 + [False]


# ----------------------------------------------------------------------------------------
# ablation rows on a trained curriculum: stage checkpoints, nothing retrained
# ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ablation_rows_use_the_curriculum_stage_checkpoints_and_train_nothing(smoke_curriculum, tmp_path):
    from mmed.rl.curriculum import plan_stages
    from mmed.runs import Run

    src, res = smoke_curriculum
    root = tmp_path / "run"
    shutil.copytree(src, root)
    files = lambda: {p.relative_to(root): p.stat().st_mtime_ns for p in (root / "attending").rglob("*") if p.is_file()}
    before = files()
    names = ["full system", "w/o C-MARL: cold-start attending", "+ Easy", "+ Easy + Medium", "+ Easy + Medium + Hard"]
    rows = [r for r in ABLATION_ROWS if r.name in names]
    items = load_items(SMOKE, "synthetic", "test", limit=5)
    df, recs = run_ablations(Run(root), SMOKE, {"synthetic": items}, seed=0, rows=rows, out_dir=tmp_path / "abl")
    assert files() == before  # no new, removed or rewritten file under attending/
    w = df.set_index("system")["weights"]
    dirs = [m["dir"] for m in res.stages]
    assert dirs == [p.dir_name for p in plan_stages(SMOKE)] == ["stage_1_easy", "stage_2_medium", "stage_3_hard"]
    assert w["+ Easy"] == "cmarl/stage_1_easy"
    assert w["+ Easy + Medium"] == "cmarl/stage_2_medium"
    assert w["+ Easy + Medium + Hard"] == w["full system"] == "cmarl/stage_3_hard"
    assert w["w/o C-MARL: cold-start attending"] == "sft"
    assert df["available"].all()

    def strip(rs):
        return [{k: v for k, v in r.items() if k != "ablation"} for r in rs]

    full, last = recs["synthetic"]["full system"], recs["synthetic"]["+ Easy + Medium + Hard"]
    assert strip(full) == strip(last) and len(full) == 5
    r = df.set_index("system").loc["+ Easy + Medium + Hard"]
    assert (r["delta_vs_full"], r["delta_lo"], r["delta_hi"]) == (0.0, 0.0, 0.0)


# ----------------------------------------------------------------------------------------
# claims, notes, domain averages (pure functions on tables and records)
# ----------------------------------------------------------------------------------------
def _row(system, acc, lo, hi, valid_rate=None, delta=None, n=100, dataset="synthetic"):
    r = {"dataset": dataset, "system": system, "available": True, "n": n, "acc": acc, "lo": lo, "hi": hi}
    if valid_rate is not None:
        r["valid_rate"] = valid_rate
    if delta is not None:
        r.update(delta_vs_full=delta[0], delta_lo=delta[1], delta_hi=delta[2])
    return r


def test_claims_with_no_valid_answer_are_not_measurable():
    df = pd.DataFrame([
        _row("full system", 0.0, 0.0, 0.0, valid_rate=0.0),
        _row("w/o triage: random specialty", 0.0, 0.0, 0.0, valid_rate=0.0, delta=(0.0, 0.0, 0.0)),
        _row("w/o C-MARL: cold-start attending", 0.45, 0.35, 0.55, valid_rate=0.9, delta=(0.45, 0.35, 0.55)),
        _row("full system", 0.6, 0.5, 0.7, valid_rate=0.95, dataset="vqa_rad"),
        _row("w/o triage: random specialty", 0.5, 0.4, 0.6, valid_rate=0.9, delta=(-0.1, -0.2, -0.02), dataset="vqa_rad"),
        _row("w/o C-MARL: cold-start attending", 0.55, 0.45, 0.65, valid_rate=1.0, delta=(-0.05, -0.12, 0.03), dataset="vqa_rad"),
    ])
    c = ablation_claims(df).set_index(["claim", "dataset"])
    v = c["verdict"]
    assert v["triage gain (vs random specialty)", "synthetic"] == (
        "not measurable: full system and w/o triage: random specialty give no valid answer")
    assert v["C-MARL gain (vs cold-start attending)", "synthetic"] == "not measurable: full system gives no valid answer"
    assert c.loc[("C-MARL gain (vs cold-start attending)", "synthetic"), ["diff", "lo", "hi"]].tolist() == [-0.45, -0.55, -0.35]
    assert v["triage gain (vs random specialty)", "vqa_rad"] == "holds here"
    assert c.loc[("triage gain (vs random specialty)", "vqa_rad"), ["diff", "lo", "hi"]].tolist() == [0.1, 0.02, 0.2]
    assert v["C-MARL gain (vs cold-start attending)", "vqa_rad"] == "not resolved (interval covers 0)"
    assert v["curriculum gain (vs GRPO without curriculum)", "vqa_rad"] == "not in this run"
    # a CSV that predates valid_rate: a row scoring 0 on every item is not measurable either
    old = df.drop(columns="valid_rate")
    assert ablation_claims(old).set_index(["claim", "dataset"])["verdict"]["C-MARL gain (vs cold-start attending)", "synthetic"] == (
        "not measurable: full system scores 0 on every item (valid rate not recorded)")
    assert no_valid_answer_notes(old) == []
    assert no_valid_answer_notes(df) == [
        "synthetic: the full system gives no valid answer (0 of 100 valid); every claim against it is not measurable"]


def test_triage_gain_claim_paired_from_the_csv_or_unpaired_from_counts():
    rows = [{"when": w, "dataset": "real", "specialty": "(all)", "acc": a, "lo": a - 0.04, "hi": a + 0.04, "n": 500}
            for w, a in (("cold start", 0.25), ("GRPO", 0.32))]
    rows.append({"when": "GRPO", "dataset": "real", "specialty": "Radiologist", "acc": 0.2, "lo": 0.1, "hi": 0.3, "n": 50})
    t = triage_gain_claims(pd.DataFrame(rows)).iloc[0]
    assert t["interval"] == "unpaired" and t["diff"] == pytest.approx(0.07) and t["n"] == 500
    # the unpaired bootstrap of two binomial proportions: half-width ≈ 1.96·sqrt(Σ p(1-p)/n) ≈ 0.056
    assert t["lo"] == pytest.approx(0.07 - 0.056, abs=0.012) and t["hi"] == pytest.approx(0.07 + 0.056, abs=0.012)
    assert t["verdict"] == "holds here"
    rows[1].update(gain=0.07, gain_lo=0.04, gain_hi=0.10)
    t = triage_gain_claims(pd.DataFrame(rows)).iloc[0]
    assert (t["interval"], t["diff"], t["lo"], t["hi"], t["verdict"]) == ("paired", 0.07, 0.04, 0.10, "holds here")


def test_stratum_accuracy_and_domain_averages_on_records():
    recs = [{"stratum": "easy", "correct": c} for c in (True, True, False, True)] + [{"stratum": "hard", "correct": False}]
    s = stratum_accuracy(recs, n_boot=300, seed=1)
    ci = accuracy_ci([True, True, False, True], 300, seed=1)
    assert (s["acc_easy"], s["lo_easy"], s["hi_easy"], s["n_easy"]) == (0.75, ci["lo"], ci["hi"], 4)
    assert (s["acc_hard"], s["lo_hard"], s["hi_hard"], s["n_hard"]) == (0.0, 0.0, 0.0, 1)
    assert s["acc_medium"] is None and s["n_medium"] == 0

    def rec(ok):
        return {"dataset": "ignored", "answer_type": "closed", "correct": ok, "attending": {"valid": True}}

    records = {"synthetic": {"full system": [rec(True)] * 3},
               "vqa_rad": {"full system": [rec(True)] * 3 + [rec(False)], "other row": [rec(False)] * 4}}
    d = domain_averages(records, n_boot=200).set_index(["system", "domain"])
    ind = d.loc[("full system", "in_domain")]
    assert (ind["datasets"], ind["n"], ind["acc"], ind["micro_acc"]) == ("vqa_rad", 4, 0.75, 0.75)
    assert ind["note"] == "average over vqa_rad (1 of 3; absent: slake, pathvqa)"
    ood = d.loc[("full system", "out_of_domain")]
    assert ood["n"] == 0 and pd.isna(ood["acc"]) and ood["note"] == "none of omnimedvqa, mmmu_med evaluated"
    assert d.loc[("other row", "in_domain"), "acc"] == 0.0
    assert len(d) == 4  # the synthetic set is averaged into neither domain


def test_nb05_checker_prints_a_note_for_a_full_system_without_valid_answers(capsys):
    row = {"dataset": "synthetic", "system": "full system", "available": True, "n": 4, "acc": 0.0, "lo": 0.0, "hi": 0.0,
           "valid_rate": 0.0, "n_easy": 4, "n_medium": 0, "n_hard": 0, "acc_easy": 0.0, "lo_easy": 0.0, "hi_easy": 0.0}
    note = "synthetic: the full system gives no valid answer (0 of 4 valid); every claim against it is not measurable"
    m = {"rows": [row], "n_items": {"synthetic": 4}, "datasets": ["synthetic"], "notes": [note],
         "domains": [{"system": "full system", "domain": "in_domain", "n": 0, "acc": None, "lo": None, "hi": None,
                      "note": "none of vqa_rad, slake, pathvqa evaluated"}]}
    assert no_valid_answer_notes(pd.DataFrame([row])) == [note]
    assert check_05(m) == []  # a real outcome, not a failure ...
    assert f"note (05_ablations, not a failure): {note}" in capsys.readouterr().out  # ... but visible
    assert check_05({**m, "notes": []}) == ["synthetic: the full system gives no valid answer but no note says so"]
    bad = {**m, "rows": [{**row, "acc": 0.5, "lo": 0.2, "hi": 0.8, "valid_rate": 0.25}], "notes": []}
    assert any("above the valid rate" in p for p in check_05(bad))
    bad = {**m, "rows": [{**row, "acc_easy": 0.5}]}
    assert any("synthetic/full system.easy" in p for p in check_05(bad))


def test_tts_per_stratum_sample_accuracy_and_budget_gains():
    samples = {"A": {"synthetic": [
        {"stratum": "easy", "gold": 0, "samples": [0, 0, 1, None]},   # 2/4 correct, 3/4 valid
        {"stratum": "easy", "gold": 1, "samples": [1, 1, 1, 1]},      # 4/4, 4/4
        {"stratum": "hard", "gold": 2, "samples": [None, None, 0, 1]},  # 0/4, 2/4
    ]}}
    t = sample_stratum_table(samples, n_boot=200).set_index("stratum")
    assert list(t.index) == ["easy", "hard"]
    assert (t.loc["easy", "items"], t.loc["easy", "sample_acc"], t.loc["easy", "valid_rate"]) == (2, 0.75, 0.875)
    assert 0.5 <= t.loc["easy", "lo"] <= 0.75 <= t.loc["easy", "hi"] <= 1.0
    assert (t.loc["hard", "sample_acc"], t.loc["hard", "valid_rate"]) == (0.0, 0.5)
    curve = pd.DataFrame([
        {"attending": "A", "dataset": "synthetic", "policy": p, "N": n, "acc": a}
        for p, n, a in (("uniform", 1, 0.5), ("uniform", 2, 0.55), ("uniform", 4, 0.7), ("adaptive", 2, 0.6),
                        ("adaptive", 4, 0.65), ("greedy", 1, 0.52))
    ])
    g = budget_gains(curve).iloc[0]
    assert list(g.index) == ["attending", "dataset", "uniform_gain_1_to_max", "adaptive_minus_uniform_at_2",
                             "adaptive_minus_uniform_at_4"]
    assert g["uniform_gain_1_to_max"] == pytest.approx(0.2)
    assert g["adaptive_minus_uniform_at_2"] == pytest.approx(0.05) and g["adaptive_minus_uniform_at_4"] == pytest.approx(-0.05)


def test_a_claim_between_the_same_attending_weights_is_not_in_this_run():
    """Without C-MARL the full system's "latest" attending is the cold start: the C-MARL claim
    would compare a model with itself (an interval of exactly 0), so it is not in this run;
    a row that differs in the triage only (same weights) is still compared."""
    from mmed.eval.claims import ablation_claims

    rows = [dict(_row("full system", 0.6, 0.5, 0.7), weights="sft"),
            dict(_row("w/o C-MARL: cold-start attending", 0.6, 0.5, 0.7, delta=(0.0, 0.0, 0.0)), weights="sft"),
            dict(_row("w/o triage: random specialty", 0.4, 0.3, 0.5, delta=(-0.2, -0.3, -0.1)), weights="sft")]
    c = ablation_claims(pd.DataFrame(rows)).set_index("row")
    v = c.loc["w/o C-MARL: cold-start attending"]
    assert v["verdict"] == "not in this run: the full system runs the same attending (sft): no C-MARL trained"
    assert pd.isna(v["diff"])
    assert c.loc["w/o triage: random specialty", "verdict"] == "holds here"
    rows[0]["weights"] = "cmarl/stage_3_hard"  # C-MARL trained: compared as before
    again = ablation_claims(pd.DataFrame(rows)).set_index("row")
    assert again.loc["w/o C-MARL: cold-start attending", "verdict"] == "not resolved (interval covers 0)"
