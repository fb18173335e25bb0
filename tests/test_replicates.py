"""Seed replicates (mmed.eval.replicates): other seeds train in runs/<id>/seeds/seed_<k>/ from
the main run's cold start, and the tables put the seeds side by side."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mmed.agents.pipeline import as_item_list
from mmed.config import STRATA, load_profile
from mmed.data.sets import synthetic_split
from mmed.eval import replicates as R
from mmed.runs import Run

SMOKE = load_profile("smoke")


pytestmark = pytest.mark.usefixtures("smoke_torch_threads")


@pytest.fixture
def run(smoke_cold_run: Run, tmp_path: Path) -> Run:
    dst = tmp_path / "run"
    shutil.copytree(smoke_cold_run.root, dst)
    return Run.open(dst, profile="smoke", seed=0)


def _same_files(a: Path, b: Path) -> bool:
    fa = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    return fa == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) and all(
        (a / f).read_bytes() == (b / f).read_bytes() for f in fa)


def test_replicate_run_copies_the_cold_starts_once(run: Run):
    sub = R.replicate_run(run, SMOKE, 3)
    assert sub.root == run.root / "seeds" / "seed_3"
    assert sub.manifest["seeds"] == [3] and sub.manifest["profile"] == "smoke"
    for parts in R.COLD_START_DIRS:
        assert _same_files(run.path(*parts), sub.path(*parts)), parts
    marker = sub.path("attending", "sft", "marker.txt")
    marker.write_text("kept")
    R.replicate_run(run, SMOKE, 3)  # reopening does not copy over what the replicate holds
    assert marker.read_text() == "kept"
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="seed"):
            R.replicate_run(run, SMOKE, bad)


def test_with_variant_applies_the_profiles_own_overlay():
    from mmed.config import ProfileError
    from mmed.rl.curriculum import plan_stages

    assert R.with_variant(SMOKE, None) is SMOKE
    nc = R.with_variant(SMOKE, "no_curriculum")
    assert nc.variant == "no_curriculum" and plan_stages(nc) == plan_stages(load_profile("smoke", variant="no_curriculum"))
    assert R.with_variant(nc, "no_curriculum") is nc
    with pytest.raises(ValueError, match="already carries"):
        R.with_variant(nc, "no_entropy")
    with pytest.raises(ProfileError, match="unknown variant 'nosuch'"):
        R.with_variant(SMOKE, "nosuch")


def test_eval_seeds_are_validated():
    from mmed.config import ProfileError, profile_from_dict

    assert load_profile("demo").eval.seeds == [0, 1, 2]
    for bad in ([], [0, 0], [-1]):
        with pytest.raises(ProfileError, match="eval.seeds"):
            profile_from_dict({"eval": {"seeds": bad}}, "bad.yaml")


def test_parse_seeds_accepts_lists_and_their_text_and_puts_the_run_seed_first():
    assert R.parse_seeds(None, [0, 1], 0) == [0, 1]
    assert R.parse_seeds("[0, 3]", [0, 1], 0) == [0, 3]
    assert R.parse_seeds([3], [0, 1], 0) == [0, 3]  # the run's own seed is always there, first
    assert R.parse_seeds(2, [0], 5) == [5, 2]
    assert R.parse_seeds([2**32 - 1], [0], 0) == [0, 2**32 - 1]
    for bad, msg in (("[0, 0]", "duplicates"), ("abc", "cannot read"), ([1.5], "ints"), (["1"], "ints"), ([-1], "ints"), ([0, 2**64], "ints in")):
        with pytest.raises(ValueError, match=msg):
            R.parse_seeds(bad, [0], 0)


def test_spread_and_seed_summary():
    sp = R.spread([0.5, 0.7, float("nan"), None])
    assert sp["n"] == 2 and sp["mean"] == pytest.approx(0.6) and sp["sd"] == pytest.approx(math.sqrt(0.02))
    assert R.spread([0.4]) == {"n": 1, "mean": 0.4, "sd": None, "min": 0.4, "max": 0.4}
    t = pd.DataFrame({"seed": [0, 1, 0, 1], "set": ["a", "a", "b", "b"], "accuracy": [0.5, 0.7, 0.2, 0.2]})
    s = R.seed_summary(t, ["set"])
    assert list(s.index) == ["a", "b"] and list(s["n_seeds"]) == [2, 2]
    assert s.loc["a", "mean"] == pytest.approx(0.6) and s.loc["b", "sd"] == 0.0
    with pytest.raises(KeyError, match="stratum"):
        R.seed_summary(t, ["stratum"])


@pytest.mark.slow
def test_triage_replicates_train_each_seed_in_its_own_folder(run: Run):
    items = as_item_list(synthetic_split(SMOKE, "test"))[:8]
    with pytest.raises(ValueError, match="duplicates"):
        R.triage_replicates(run, SMOKE, [0, 0], 0, items, log=None)
    t = R.triage_replicates(run, SMOKE, [0, 1], 0, items, log=None)
    assert list(t["seed"]) == [0, 0, 1, 1] and list(t["set"]) == ["synthetic", "synthetic_image_only"] * 2
    assert (t["n"] == 8).all() and ((t["lo"] <= t["accuracy"]) & (t["accuracy"] <= t["hi"])).all()
    assert list(t["run"]) == [str(run.root)] * 2 + [str(run.root / "seeds" / "seed_1")] * 2
    # the seed is the trainer's seed; the cold start is the main run's
    s0 = json.loads((run.path("triage", "grpo") / "train_settings.json").read_text())
    s1 = json.loads((run.path("seeds", "seed_1", "triage", "grpo") / "train_settings.json").read_text())
    assert s0["seed"] == 0 and s1["seed"] == 1
    assert _same_files(run.path("triage", "sft"), run.path("seeds", "seed_1", "triage", "sft"))
    a0 = run.path("triage", "grpo", "final", "adapter_model.safetensors").read_bytes()
    a1 = run.path("seeds", "seed_1", "triage", "grpo", "final", "adapter_model.safetensors").read_bytes()
    assert a0 != a1
    # the main seed's evaluation, when the caller has it, is used as is (not recomputed)
    from mmed.eval import triage as T

    main = T.evaluate_stages(SMOKE, {"grpo": T.triage_sources(run, SMOKE)["grpo"]}, items, None, seed=0)["summary"]["grpo"]
    pd.testing.assert_frame_equal(R.triage_replicates(run, SMOKE, [0, 1], 0, items, main_summary=main, log=None), t)
    # a worker evaluates its seed right after training, on the sets notebook 03 evaluates (the synthetic test
    # items, the real held-out images): the same summary as evaluating here; the table uses it when the
    # items are the caller's, and evaluates here when they are not (the 8 items above)
    job = R._train_triage_job(str(run.path("seeds", "seed_1")), SMOKE, 1, None, None, evaluate=True)
    full = as_item_list(synthetic_split(SMOKE, "test"))
    assert job["item_ids"]["synthetic"] == [str(it["id"]) for it in full]
    real_ids = job["item_ids"]["real"]
    real_items = None
    if real_ids:
        from mmed.rl.triage import real_triage

        by_id = {str(it["id"]): it for it in real_triage(SMOKE).all}
        real_items = [by_id[i] for i in real_ids]
    here = T.evaluate_stages(SMOKE, {"grpo": T.triage_sources(Run.open(run.path("seeds", "seed_1")), SMOKE)["grpo"]},
                             full, real_items, seed=1)["summary"]["grpo"]
    assert json.dumps(job["summary"], sort_keys=True) == json.dumps(here, sort_keys=True)

    class Started:  # a finished worker whose summary is recognisable
        jobs = [type("J", (), {"args": (None, None, 1)})()]

        def results(self):
            return [{"steps": 1, "summary": {"synthetic": dict(here["synthetic"], n=-1)}, "item_ids": job["item_ids"]}]

    used = R.triage_replicates(run, SMOKE, [0, 1], 0, full, real_items, main_summary=main, log=None, started=Started())
    assert list(used[used["seed"] == 1]["n"]) == [-1]
    other = R.triage_replicates(run, SMOKE, [0, 1], 0, full[:8], real_items, main_summary=main, log=None, started=Started())
    assert list(other[other["seed"] == 1]["n"]) == [8, 8] + ([len(real_items)] if real_items else [])  # evaluated here
    # a second call trains nothing and gives the same table
    mtime = run.path("seeds", "seed_1", "triage", "grpo", "final", "adapter_model.safetensors").stat().st_mtime_ns
    again = R.triage_replicates(run, SMOKE, [0, 1], 0, items, log=None)
    pd.testing.assert_frame_equal(t, again)
    assert run.path("seeds", "seed_1", "triage", "grpo", "final", "adapter_model.safetensors").stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_curriculum_replicates_table(run: Run):
    t = R.curriculum_replicates(run, SMOKE, [0, 1], 0, variants=(None, "no_curriculum"), heldout_split="validation",
                                n_heldout=6, log=None)
    assert set(t["seed"]) == {0, 1} and set(t["system"]) == {"start", "cmarl", "no_curriculum"}
    assert len(t) == 2 * 3 * (len(STRATA) + 1)
    for (seed, system), g in t.groupby(["seed", "system"]):
        assert list(g["stratum"]) == [*STRATA, "all"]
        allrow = g[g["stratum"] == "all"].iloc[0]
        assert allrow["n"] == 6 == g[g["stratum"] != "all"]["n"].sum()
        assert (allrow["format_valid"] is None) == (system == "start") or math.isnan(allrow["format_valid"])
        has_diff = system == "no_curriculum"
        assert g["diff_vs_first"].notna().any() == has_diff
    for seed in (0, 1):
        g = t[(t["seed"] == seed) & (t["stratum"] == "all")].set_index("system")
        assert g.loc["no_curriculum", "diff_vs_first"] == pytest.approx(g.loc["cmarl", "accuracy"] - g.loc["no_curriculum", "accuracy"])
    assert (run.path("seeds", "seed_1", "attending", "cmarl", "stage_3_hard", "final") / "adapter_config.json").is_file()
    assert not run.path("seeds", "seed_0").exists()  # the main seed is the run itself
    s = R.seed_summary(t, ["system", "stratum"])
    assert s.loc[("cmarl", "all"), "n_seeds"] == 2


def test_seed_replicate_checker_catches_missing_seeds_and_bad_intervals():
    from mmed.checks import check_seed_replicates

    row = lambda seed, st, acc: {"seed": seed, "set": st, "accuracy": acc, "lo": acc - 0.1, "hi": acc + 0.1}  # noqa: E731
    good = {"seed_replicates": {"seeds": [0, 1], "table": [row(0, "synthetic", 0.5), row(1, "synthetic", 0.6)]}}
    p: list[str] = []
    check_seed_replicates(good, ("set",), p, 0)
    assert p == []
    for bad, msg in (
        ({"seeds": [0, 1], "table": [row(0, "synthetic", 0.5)]}, "expected [0, 1]"),
        ({"seeds": [0, 1], "table": [row(0, "synthetic", 0.5), row(1, "real", 0.5)]}, "differ"),
        ({"seeds": [0, 0], "table": []}, "distinct"),
        ({"seeds": [1], "table": [row(1, "synthetic", 0.5)]}, "lacks the run's seed 0"),
        ({"seeds": [0], "table": [{**row(0, "synthetic", 0.5), "lo": 0.7}]}, "outside its interval"),
    ):
        p = []
        check_seed_replicates({"seed_replicates": bad}, ("set",), p, 0)
        assert any(msg in x for x in p), (bad, p)
    p = []
    check_seed_replicates({"seed_replicates": None}, ("set",), p, 0)
    assert p == []


def test_default_heldout_split_follows_the_training_data():
    from mmed.rl.curriculum import default_heldout_split

    assert default_heldout_split(load_profile("demo")) == "test"  # synthetic test (validation tuned the demo)
    assert default_heldout_split(load_profile("paper")) == "validation"  # the real pool has only a validation part


def test_curriculum_replicate_record_is_what_notebook_04_records():
    """The seed replicate's record (built in the library, not in notebook 04): variants named
    as the reports name them, tables as strict-JSON records."""
    from mmed.rl import curriculum as C

    table = pd.DataFrame([{"seed": 0, "system": "cmarl", "stratum": "all", "accuracy": 0.5, "lo": 0.2, "hi": 0.8,
                           "diff_vs_first": float("nan")}])
    claims = pd.DataFrame([{"claim": "cmarl_beats_no_curriculum", "seed": "pooled", "diff": 0.1, "lo": -0.1, "hi": 0.3}])
    rec = R.curriculum_replicate_record([0, 1], [None, "no_curriculum"], table, claims)
    assert rec == {"seeds": [0, 1], "variants": ["cmarl", "no_curriculum"], "table": R.table_records(table),
                   "claims": R.table_records(claims)}
    assert rec["table"][0]["diff_vs_first"] is None and json.loads(json.dumps(rec, allow_nan=False)) == rec
    assert [C.variant_label(v) for v in (None, "no_entropy")] == ["cmarl", "no_entropy"]
