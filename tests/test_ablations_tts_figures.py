"""Ablations and test-time scaling on a cold-started smoke run; figures from CSV files."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from mmed.config import load_profile
from mmed.consult import load_items
from mmed.eval.ablations import ABLATION_ROWS, markdown_table, run_ablations, slug
from mmed.eval.tts import run_test_time_scaling
from mmed.viz.figures import RESULTS_END, RESULTS_START, redraw, refresh_from_run, results_markdown, update_readme

SMOKE = load_profile("smoke")


def test_ablations_report_unavailable_rows_and_score_the_rest(smoke_cold_run):
    items = load_items(SMOKE, "synthetic", "test", limit=6)
    df, recs = run_ablations(smoke_cold_run, SMOKE, {"synthetic": items}, seed=0)
    assert list(df["system"]) == [r.name for r in ABLATION_ROWS]
    avail = df[df["available"]]
    missing = df[~df["available"]]
    # a cold-started run has no curriculum stages or variants: those rows say so
    assert set(missing["system"]) == {"w/o C-MARL: GRPO without curriculum", "C-MARL without entropy bonus",
                                      "C-MARL with constant γ (γ_medium in every stage)",
                                      "C-MARL with an entropy target (γ only while entropy ≤ target)",
                                      "+ Easy", "+ Easy + Medium", "+ Easy + Medium + Hard"}
    assert all(missing["reason"].str.len() > 0)
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
    out = smoke_cold_run.path("eval", "ablations")
    assert (out / "synthetic" / slug("full system") / "predictions.jsonl").is_file()
    assert "not available" in (out / "table.md").read_text()
    assert markdown_table(df).count("\n") == len(df) + 2


def test_tts_curve_shapes_and_adaptive_budget(smoke_cold_run):
    items = load_items(SMOKE, "synthetic", "test", limit=6)
    curve, samples = run_test_time_scaling(smoke_cold_run, SMOKE, {"synthetic": items}, seed=0)
    n = SMOKE.tts.n_samples
    # a cold-started run has no no_curriculum variant: only the full system is scaled, the other is listed
    assert list(samples) == ["C-MARL (full system)"] and set(curve["attending"]) == {"C-MARL (full system)"}
    skipped = json.loads((smoke_cold_run.path("eval", "tts") / "skipped.json").read_text())
    assert "GRPO without curriculum" in skipped
    samples = samples["C-MARL (full system)"]
    assert all(len(p["samples"]) == n for p in samples["synthetic"])
    uni = curve[curve.policy == "uniform"]
    assert list(uni["N"]) == SMOKE.tts.budgets
    ada = curve[curve.policy == "adaptive"]
    assert (ada["mean_samples"] == ada["N"]).all()
    assert ((curve["lo"] <= curve["acc"]) & (curve["acc"] <= curve["hi"])).all()
    assert (smoke_cold_run.path("eval", "tts") / "curve.csv").is_file()


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


def test_refresh_from_run_only_touches_what_the_run_has(tmp_path):
    from mmed.runs import Run

    fig = tmp_path / "figs"
    fig.mkdir()
    _fake_figure_data(fig)
    before = (fig / "ablations.csv").read_text()
    run = Run.open(tmp_path / "run", profile="smoke", seed=3)
    status = refresh_from_run(run.root, fig)
    assert status["ablations"].startswith("kept") and (fig / "ablations.csv").read_text() == before
    assert json.loads((fig / "SOURCE.json").read_text())["profile"] == "smoke"
    table = run.path("eval", "ablations", mkdir=True) / "table.csv"
    pd.DataFrame([{"dataset": "vqa_rad", "system": "full system", "available": True, "n": 3, "acc": 1.0, "lo": 1.0, "hi": 1.0}]).to_csv(table, index=False)
    status = refresh_from_run(run.root, fig)
    assert status["ablations"] == "ok"
    assert pd.read_csv(fig / "ablations.csv")["dataset"].tolist() == ["vqa_rad"]
