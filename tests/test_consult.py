"""consult(): cold start + pipeline from a profile, files in the run folder (smoke scale)."""

from __future__ import annotations

import json

import pytest

from mmed.agents.build import policy_source
from mmed.config import load_profile
from mmed.consult import consult
from mmed.data.specs import parse_data_spec
from mmed.runs import Run


def test_consult_smoke_writes_predictions_metrics_and_reuses_cold_start(tmp_path):
    run_dir = tmp_path / "run"
    recs, m = consult("smoke", run_dir, data="synthetic", split="test", limit=8, progress=False)
    out = run_dir / "consult" / "synthetic_test"
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 8 == m["items"] == len(recs)
    rec = json.loads(lines[0])
    for key in ("id", "dataset", "split", "image_ref", "question", "options", "answer_idx", "answer_type", "specialty",
                "triage", "panel", "s", "stratum", "agreement", "attending", "correct", "profile", "variant", "seed"):
        assert key in rec, key
    assert len(rec["panel"]) == 3 and all(op["simulated"] for op in rec["panel"])
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["accuracy"]["n"] == 8 and saved["accuracy"]["lo"] <= saved["accuracy"]["acc"] <= saved["accuracy"]["hi"]
    assert sum(saved["strata"].values()) == 8
    assert saved["load_report"]["dataset"] == "synthetic" and saved["load_report"]["n_returned"] == 8
    assert saved["load_report"]["limit_dropped"] == saved["load_report"]["n_items"] - 8 - saved["load_report"]["open_dropped"]
    run = Run(run_dir)
    man = run.manifest
    assert man["steps"]["cold_start/triage"]["status"] == "done"
    assert man["steps"]["consult/synthetic_test"]["status"] == "done"
    assert man["simulated_panel"]["consensus_error_rate"] == load_profile("smoke").specialists.simulated.consensus_error_rate
    rep = json.loads((run_dir / "triage" / "sft" / "cold_start.json").read_text())
    assert rep["steps"] == load_profile("smoke").cold_start.max_steps and rep["before"]["n"] > 0
    assert policy_source(run, load_profile("smoke"), "triage").label == "sft"
    # a second consultation reuses the cold start (no new cold-start step run)
    mtime = (run_dir / "triage" / "sft" / "cold_start.json").stat().st_mtime
    consult("smoke", run_dir, data="synthetic", split="test", limit=4, decision="majority_vote",
            triage_mode="fixed", fixed_specialty="Radiologist", out_name="mv", progress=False)
    assert (run_dir / "triage" / "sft" / "cold_start.json").stat().st_mtime == mtime
    mv = [json.loads(x) for x in (run_dir / "consult" / "mv" / "predictions.jsonl").read_text().splitlines()]
    assert {r["triage"]["specialty"] for r in mv} == {"Radiologist"}


def test_parse_data_spec(tmp_path):
    assert parse_data_spec("synthetic", None) == ("synthetic", None, None, None)
    assert parse_data_spec("vqa_rad:mevf", tmp_path) == ("vqa_rad", str(tmp_path / "vqa_rad"), "mevf", None)
    assert parse_data_spec("vqa_rad:/x/y", None) == ("vqa_rad", "/x/y", None, None)
    # an optional @<split> on every form; a path keeps an "@" that is not followed by a bare word
    assert parse_data_spec("mmmu_med:hub@validation", tmp_path) == ("mmmu_med", str(tmp_path / "mmmu_med"), "hub", "validation")
    assert parse_data_spec("vqa_rad@train", tmp_path) == ("vqa_rad", str(tmp_path / "vqa_rad"), None, "train")
    assert parse_data_spec("vqa_rad:/x/y@test", None) == ("vqa_rad", "/x/y", None, "test")
    assert parse_data_spec("vqa_rad:/x@y/z", None) == ("vqa_rad", "/x@y/z", None, None)
    assert parse_data_spec("synthetic@validation", None) == ("synthetic", None, None, "validation")


def test_split_of_a_data_spec(tmp_path):
    import pytest

    from mmed.data.sets import load_items
    from mmed.data.specs import resolve_split

    assert resolve_split("synthetic", None) == "test" and resolve_split("synthetic", "train") == "train"
    assert resolve_split("mmmu_med:hub@validation", None) == "validation" == resolve_split("mmmu_med@validation", "validation")
    with pytest.raises(ValueError, match="names split 'validation' but split 'test' was asked"):
        resolve_split("mmmu_med:hub@validation", "test")
    prof = load_profile("smoke")
    assert set(load_items(prof, "synthetic@validation", limit=2)["split"]) == {"validation"}
    # a split the benchmark's loader does not read: rejected naming the spec, before any file is read
    with pytest.raises(ValueError, match=r"data 'mmmu_med:hub@test'.*no split 'test' for mmmu_med:hub \(MMMU's test split has no public answers\)"):
        load_items(prof, "mmmu_med:hub@test", data_root=tmp_path)
    with pytest.raises(ValueError, match=r"data 'vqa_rad:mevf'.*no split 'validation' for vqa_rad:mevf; known: train, test"):
        load_items(prof, "vqa_rad:mevf", "validation", data_root=tmp_path)


def test_evaluation_sets_read_each_entry_on_its_own_split(tmp_path):
    from fixtures_data import MMMU, write_mmmu, write_vqa_rad

    from mmed.data.sets import evaluation_sets
    from mmed.data.splits import item_image_hashes
    from mmed.data.training import evaluation_image_hashes

    write_vqa_rad(tmp_path / "vqa_rad")
    write_mmmu(tmp_path / "mmmu_med")
    prof = load_profile("smoke", overrides={"data": {"eval_benchmarks": ["vqa_rad:mevf", "mmmu_med:hub@validation"],
                                                     "eval_limit": None}})
    sets = evaluation_sets(prof, tmp_path, include_open=True)
    assert list(sets) == ["synthetic", "vqa_rad", "mmmu_med"]
    assert set(sets["vqa_rad"]["split"]) == {"test"}  # data.eval_split
    assert set(sets["mmmu_med"]["split"]) == {"validation"}  # the entry's own split
    assert sorted(sets["mmmu_med"]["id"]) == sorted(f"mmmu_med/validation/{r['id']}" for rows in MMMU.values() for r in rows)
    # training never sees those images either: the same split is the one checked
    notes: list[str] = []
    hashes = evaluation_image_hashes(prof, tmp_path, notes)
    assert {h for hs in item_image_hashes(sets["mmmu_med"]) for h in hs} <= hashes
    assert notes == ["mmmu_med:hub@validation: evaluated on its 'validation' split (not data.eval_split 'test'); "
                     "checked that split's images"]


def test_consult_rejects_an_untrained_variant_instead_of_using_the_cold_start(tmp_path):
    import pytest

    # a variant of the profile that this run has not trained: "latest" would silently be the cold start
    with pytest.raises(FileNotFoundError, match="variant 'no_curriculum' has no trained stages"):
        consult("smoke", tmp_path / "run", data="synthetic", split="test", limit=2, variant="no_curriculum", progress=False)
    with pytest.raises(ValueError, match="unknown variant 'nosuch'"):
        consult("smoke", tmp_path / "run2", data="synthetic", limit=2, variant="nosuch", progress=False)
    assert not (tmp_path / "run2").exists()


def test_load_items_rejects_empty_limits_and_unknown_synthetic_splits():
    import pytest

    from mmed.data.sets import load_items, synthetic_split

    prof = load_profile("smoke")
    for bad in (0, -3):
        with pytest.raises(ValueError, match="limit must be a positive"):
            load_items(prof, "synthetic", "test", limit=bad)
    with pytest.raises(ValueError, match="unknown split 'tset'"):
        synthetic_split(prof, "tset")
    assert len(load_items(prof, "synthetic", "test", limit=3)) == 3


def test_configured_triage_fallback_reaches_the_triage_doctor(tmp_path):
    # the untrained tiny base model (no cold start) writes no valid <answer>: every case falls back
    prof = load_profile("smoke", overrides={"cold_start": {"enabled": False}, "triage": {"fallback": "Pathologist"}})
    recs, m = consult(prof, tmp_path / "run", data="synthetic", split="test", limit=6, decision="majority_vote",
                      progress=False)
    fell = [r for r in recs if r["triage"]["fallback"]]
    assert len(fell) >= 3 and m["triage_fallbacks"] == len(fell)
    assert {r["triage"]["specialty"] for r in fell} == {"Pathologist"}
    assert m["weights"]["triage"]["fallback"] == "Pathologist"
    saved = json.loads((tmp_path / "run" / "consult" / "synthetic_test" / "metrics.json").read_text())
    assert saved["weights"]["triage"]["fallback"] == "Pathologist"
    assert Run(tmp_path / "run").manifest["triage_fallback"] == "Pathologist"


def test_a_relative_data_path_resolves_from_the_repository_root_not_the_cwd(tmp_path, monkeypatch):
    from mmed.runs import repo_root

    monkeypatch.chdir(tmp_path)
    name, source, layout, split = parse_data_spec("vqa_rad:../shared/data/vqa_rad@test", None)
    assert source == str(repo_root() / ".." / "shared" / "data" / "vqa_rad") and layout is None and split == "test"
    # absolute paths and Hub ids stay as given
    assert parse_data_spec("vqa_rad:/x/y", None)[1] == "/x/y"
    assert parse_data_spec("mmmu_med:MMMU/MMMU", None)[1] == "MMMU/MMMU"


def test_load_items_reports_what_the_loader_dropped_and_rejects_an_empty_split(tmp_path):
    import pytest
    from fixtures_data import VQA_RAD_TEST, _rad, write_vqa_rad

    from mmed.data.sets import load_items, load_items_with_report, load_warning

    prof = load_profile("smoke")
    # no training rows: no distractor pool, so the closed "What is abnormal?" is kept open
    test = [VQA_RAD_TEST[0], _rad(15, "synpic200.jpg", "What is abnormal?", "mass", "CLOSED", "ABN", phrase="test_freeform"),
            VQA_RAD_TEST[3]]
    root = write_vqa_rad(tmp_path / "vqa_rad", official=False, train=[], test=test)
    ds, rep = load_items_with_report(prof, f"vqa_rad:{root}@test")
    assert list(ds["id"]) == ["vqa_rad/test/11"]
    assert rep["n_rows"] == 3 and rep["n_items"] == 1 and rep["n_returned"] == 1 and rep["closed_as_open"] == 1
    assert rep["filtered"] == {"open question": 1, "closed question without options": 1}
    w = load_warning(rep)
    assert w.startswith("warning: vqa_rad split 'test': 3 rows -> 1 items;") and "1 closed question(s) had no options" in w
    # with open items: the kept-open one comes back open, then a closed-only slice leaves it out
    ds, rep = load_items_with_report(prof, f"vqa_rad:{root}@test", include_open=True, limit=1)
    assert rep["n_items"] == 3 and rep["open_dropped"] == 0 and rep["limit_dropped"] == 2 and rep["n_returned"] == 1
    # nothing dropped: no warning
    assert load_warning({"dataset": "synthetic", "split": "test", "n_items": 8, "open_dropped": 0, "n_returned": 8}) is None
    # an empty split file is an error naming it, not 0 items
    (root / "data_RAD" / "testset.json").write_text("[]")
    with pytest.raises(ValueError, match=r"data_RAD/testset.json: split 'test' has no rows at all"):
        load_items(prof, f"vqa_rad:{root}@test")


def test_a_consultation_without_models_builds_no_base_model(tmp_path):
    """Gold triage, a panel-only decision and simulated specialists load no model: no tiny base
    is built or pre-trained for it (mmed.rl.cold_start.build_agents builds what it loads)."""
    recs, m = consult(load_profile("smoke"), tmp_path / "run", data="synthetic", split="test", limit=4,
                      triage_mode="gold", decision="majority_vote", progress=False)
    assert len(recs) == 4 and all(r["attending"]["method"] == "majority_vote" for r in recs)
    assert not (tmp_path / "run" / "models").exists()


def test_policy_source_reads_the_base_only_where_it_is_needed(smoke_attending_cold, tmp_path):
    """A cold-started model is a full model: resolving it needs no models/base; the base
    itself, missing, is a FileNotFoundError naming what builds it."""
    import shutil

    from mmed.agents.build import base_model_for
    from mmed.rl.pretrain import base_model

    root = tmp_path / "run"
    shutil.copytree(smoke_attending_cold, root, ignore=shutil.ignore_patterns("models"))
    run, prof = Run(root), load_profile("smoke")
    src = policy_source(run, prof, "attending", "sft")
    assert (src.base, src.adapters, src.label) == (str(root / "attending" / "sft"), None, "sft")
    assert policy_source(run, prof, "attending", "image_only").base == str(root / "attending" / "image_only")
    for call in (lambda: base_model_for(run, prof, "attending"), lambda: policy_source(run, prof, "attending", "base")):
        with pytest.raises(FileNotFoundError, match=r"models/base holds no base model: mmed.rl.pretrain.ensure_base_model"):
            call()
    assert base_model(run, prof, "triage") == str(root / "models" / "base")  # built (from the cache) on first use
    assert (root / "models" / "base" / "config.json").is_file() and base_model_for(run, prof, "attending") == str(root / "models" / "base")
