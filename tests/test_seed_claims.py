"""Claims over seeds (mmed/eval/replicates.py: held_out_correctness, curriculum_claims)."""

from __future__ import annotations

import shutil

from mmed.config import load_profile
from mmed.rl import curriculum as C
from mmed.eval import replicates as R
from mmed.runs import Run


def test_claims_per_seed_and_pooled_from_the_run_files(smoke_curriculum, tmp_path):
    root, _ = smoke_curriculum
    work = tmp_path / "run"
    shutil.copytree(root, work)
    run = Run.open(work)
    prof = load_profile("smoke")
    h = R.held_out_correctness(run, prof, 0, [None], "validation")
    start = C.heldout_predictions(run, None, None, "validation")
    n = len(start)
    assert set(h["systems"]) >= {"start", "cmarl", "follow_majority", "cmarl@before_hard"}
    assert all(len(v) == n for v in h["systems"].values())
    # follow-majority is recomputed from the records' majority answers
    assert h["systems"]["follow_majority"] == [r["majority"] == r["answer_idx"] for r in start]
    assert h["systems"]["start"] == [r["correct"] for r in start]
    # best single specialist: a panel position chosen on the other split's items
    assert h["best_member"] in range(prof.specialists.panel_size)
    k = h["best_member"]
    assert h["systems"]["best_member"] == [r["panel_answers"][k] == r["answer_idx"] for r in start]

    claims = R.curriculum_claims(run, prof, [0], 0, [None], "validation")
    got = set(claims.claim)
    assert {"C-MARL vs cold start", "C-MARL vs follow the panel's majority", "C-MARL vs best single specialist",
            "Hard stage: change on Hard items", "Hard stage: change on Easy items"} <= got
    assert "C-MARL vs plain GRPO (no curriculum)" not in got  # not trained here: left out, not invented
    row = claims[(claims.claim == "C-MARL vs cold start") & (claims.seed == 0)].iloc[0]
    acc = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert abs(row["diff"] - (acc(h["systems"]["cmarl"]) - acc(h["systems"]["start"]))) < 1e-9
    assert row["lo"] <= row["diff"] <= row["hi"] and row["n"] == n
    pooled = claims[(claims.claim == "C-MARL vs cold start") & (claims.seed == "pooled")].iloc[0]
    assert pooled["diff"] == row["diff"] and pooled["n"] == n  # one seed: pooled = that seed
    hard = claims[(claims.claim == "Hard stage: change on Hard items") & (claims.seed == 0)].iloc[0]
    assert hard["n"] == sum(r["stratum"] == "hard" for r in start)
    lines = R.claim_sentences(claims)
    assert len(lines) == len(got) and all("pooled over 1 seeds" in s for s in lines)


def test_seed_claims_csv_goes_into_the_readme_block_and_a_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from mmed.viz.figures import FIGURES, results_markdown, seed_claims_figure

    rows = [{"claim": "C-MARL vs plain GRPO (no curriculum)", "seed": s, "stratum": "all", "diff": d, "lo": d - 0.05,
             "hi": d + 0.05, "n": 140, "holds": d - 0.05 > 0} for s, d in ((0, 0.02), (1, -0.01), (2, 0.0), ("pooled", 0.004))]
    rows.append({"claim": "C-MARL vs follow the panel's majority", "seed": "pooled", "stratum": "all", "diff": -0.2,
                 "lo": -0.25, "hi": -0.15, "n": 420, "holds": False})
    pd.DataFrame(rows).to_csv(tmp_path / "seed_claims.csv", index=False)
    md = results_markdown(tmp_path)
    assert "claims over 3 seeds" in md
    assert "| C-MARL vs plain GRPO (no curriculum) | all | +2.0 [-3.0, +7.0] | -1.0 [-6.0, +4.0] | +0.0 [-5.0, +5.0] | " \
           "+0.4 [-4.6, +5.4] | not resolved (interval covers 0) |" in md
    assert "| C-MARL vs follow the panel's majority | all | – | – | – | -20.0 [-25.0, -15.0] | reversed here |" in md
    fig = seed_claims_figure(pd.read_csv(tmp_path / "seed_claims.csv"))
    assert len(fig.axes[0].get_yticklabels()) == 2
    assert "seed_claims" in FIGURES
