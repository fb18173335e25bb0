"""Real training data (mmed.data.training, data.train_benchmarks): the pool never holds an
evaluation image, every item read is accounted for, train/validation are image-disjoint, and
both trainers (the attending's stratified split, the triage doctor's items) use it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmed.config import ProfileError, load_profile
from mmed.data import closed_only, load_benchmark
from mmed.data.splits import item_image_hashes
from mmed.data.training import training_pool
from mmed.rl import curriculum as C
from mmed.rl import triage as T

#: VQA-RAD MEVF train, measured on ../shared/data/vqa_rad: 3,064 items = 1,241 open +
#: 1,823 closed, of which 1,120 show one of the 203 MEVF test images
MEVF_TRAIN, MEVF_OPEN, MEVF_REMOVED, MEVF_KEPT = 3064, 1241, 1120, 703
OVERLAY = {"data": {"train_benchmarks": ["vqa_rad:mevf"], "synthetic": {"n_train": 0}}}


def _quiet(_: str) -> None:
    pass


def real_smoke(**extra) -> "object":
    """smoke, trained on VQA-RAD MEVF train instead of the synthetic set."""
    from mmed.config import deep_merge

    return load_profile("smoke", overrides=deep_merge(OVERLAY, extra))


def _hashes(ds) -> set[str]:
    return {h for hs in item_image_hashes(ds) for h in hs}


def test_profile_keys_are_validated():
    assert load_profile("smoke").data.train_benchmarks == [] and load_profile("demo").data.train_benchmarks == []
    assert load_profile("paper").data.train_benchmarks == ["vqa_rad:mevf", "slake:official", "pathvqa:hub"]
    with pytest.raises(ProfileError, match=r"smoke\.yaml.*'data\.train_benchmarks\[0\]'.*unknown benchmark 'vqarad'"):
        load_profile("smoke", overrides={"data": {"train_benchmarks": ["vqarad:mevf"]}})
    with pytest.raises(ProfileError, match=r"'data\.train_benchmarks\[0\]'.*unknown layout 'osf' for vqa_rad"):
        load_profile("smoke", overrides={"data": {"train_benchmarks": ["vqa_rad:osf"]}})
    with pytest.raises(ProfileError, match=r"'data\.train_benchmarks' names \['vqa_rad'\] more than once"):
        load_profile("smoke", overrides={"data": {"train_benchmarks": ["vqa_rad:mevf", "vqa_rad:official"]}})
    with pytest.raises(ProfileError, match="train_validation_fraction"):
        load_profile("smoke", overrides={"data": {"train_validation_fraction": 1.0}})


def test_pool_holds_no_evaluation_image_and_counts_every_item(shared_data: Path):
    prof = real_smoke()
    lines: list[str] = []
    pool = training_pool(prof, shared_data, seed=0, log=lines.append)
    info = pool.info
    row = info["by_benchmark"]["vqa_rad:mevf"]
    assert row == {"read": MEVF_TRAIN, "open_dropped": MEVF_OPEN, "removed_eval_image": MEVF_REMOVED, "kept": MEVF_KEPT}
    assert row["removed_eval_image"] + row["kept"] + row["open_dropped"] == MEVF_TRAIN
    assert info["eval_images"] == 203 and info["removed_eval_image"] == MEVF_REMOVED
    assert any(f"{MEVF_REMOVED} removed" in ln for ln in lines)  # reported, not silently lost
    assert len(pool.train) + len(pool.validation) == MEVF_KEPT == info["n_train"] + info["n_validation"]
    test = load_benchmark("vqa_rad", shared_data / "vqa_rad", "test", layout="mevf", include_open=True)
    test_h = _hashes(test)
    assert len(test_h) == 203
    assert not (_hashes(pool.train) | _hashes(pool.validation)) & test_h  # nothing trains on an evaluation image
    assert not _hashes(pool.train) & _hashes(pool.validation)  # image-disjoint
    assert set(pool.train["answer_type"]) == set(pool.validation["answer_type"]) == {"closed"}
    assert set(pool.train["split"]) == {"train"} and set(pool.validation["split"]) == {"validation"}
    assert len(pool.validation) == pytest.approx(0.1 * MEVF_KEPT, abs=10)
    # independently: the closed MEVF train items whose images are not test images
    closed = closed_only(load_benchmark("vqa_rad", shared_data / "vqa_rad", "train", layout="mevf"))
    expected = {i for i, hs in zip(closed["id"], item_image_hashes(closed)) if not set(hs) & test_h}
    assert set(pool.train["id"]) | set(pool.validation["id"]) == expected
    # the cap: a seeded sample of train, validation untouched
    a = training_pool(prof, shared_data, cap=16, seed=0, log=_quiet)
    b = training_pool(prof, shared_data, cap=16, seed=0, log=_quiet)
    assert a.train["id"] == b.train["id"] and len(a.train) == 16 and set(a.train["id"]) <= set(pool.train["id"])
    assert a.validation["id"] == pool.validation["id"] and a.info["n_train_before_cap"] == len(pool.train)


def test_pool_errors_name_the_entry(shared_data: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="train_benchmarks is empty"):
        training_pool(load_profile("smoke"), shared_data)
    (tmp_path / "vqa_rad").symlink_to(shared_data / "vqa_rad")
    prof = real_smoke(data={"train_benchmarks": ["vqa_rad:mevf", "slake:official"]})
    with pytest.raises(FileNotFoundError, match=r"data\.train_benchmarks entry 'slake:official'.*slake"):
        training_pool(prof, tmp_path, log=_quiet)
    prof = real_smoke(data={"eval_benchmarks": ["vqa_rad:mevf", "pathvqa:hub"]})
    with pytest.raises(FileNotFoundError, match=r"data\.eval_benchmarks entry 'pathvqa:hub'"):
        training_pool(prof, tmp_path, log=_quiet)


def test_stratified_split_and_triage_items_use_the_pool(shared_data: Path):
    prof = real_smoke()
    train = C.stratified_split(prof, "train", 0, data_root=shared_data, log=_quiet)
    cap = prof.attending_grpo.n_train_items
    assert len(train) == cap and all(it["dataset"] == "vqa_rad" and it["split"] == "train" for it in train.items)
    assert sum(train.counts().values()) == cap and all(len(ops) == prof.specialists.panel_size for ops in train.opinions)
    assert set(train.strata) <= {"easy", "medium", "hard"} and len(set(train.strata)) > 1
    held = C.stratified_split(prof, "validation", 0, data_root=shared_data, log=_quiet, n_real=5)
    syn = [it for it in held.items if it["dataset"] == "synthetic"]
    real = [it for it in held.items if it["dataset"] == "vqa_rad"]
    assert len(syn) == prof.data.synthetic.n_eval and len(real) == 5
    assert not {it["id"] for it in real} & {it["id"] for it in train.items}
    # no real items in "test": the evaluation benchmarks are evaluated, never trained or validated on
    assert all(it["dataset"] == "synthetic" for it in C.stratified_split(prof, "test", 0, n=4, data_root=shared_data).items)
    items, info = T.training_items(prof, 0, data_root=shared_data, log=_quiet)
    n_triage = prof.triage_grpo.n_train_items
    assert info["by_source"] == {"vqa_rad:mevf": n_triage} and info["by_specialty"]["Radiologist"] == n_triage
    assert info["train_pool"]["removed_eval_image"] == MEVF_REMOVED
    assert all(it["specialty"] == "Radiologist" and it["image_hashes"] and not it["image_only"] for it in items)
    # smoke itself is unchanged: synthetic only, no train_pool key
    _, info0 = T.training_items(load_profile("smoke"), 0, data_root=shared_data)
    assert set(info0["by_source"]) == {"synthetic"} and "train_pool" not in info0


def test_no_items_says_why(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MMED_DATA_ROOT", "")  # no data root
    with pytest.raises(ValueError, match=r"no train items.*n_train is 0.*no data root for data\.train_benchmarks"):
        C.stratified_split(real_smoke(), "train", 0)
    with pytest.raises(ValueError, match="no triage training items"):
        T.training_items(real_smoke(), 0)


def test_paper_profile_has_training_items_with_a_data_root(shared_data: Path, monkeypatch: pytest.MonkeyPatch):
    # the shipped paper profile reads five benchmarks; this data root holds VQA-RAD only
    paper = load_profile("paper")
    with pytest.raises(FileNotFoundError, match=r"data\.eval_benchmarks entry 'slake:official'"):
        C.stratified_split(paper, "train", 0, data_root=shared_data, log=_quiet)
    monkeypatch.setenv("MMED_DATA_ROOT", "")
    with pytest.raises(ValueError, match="no train items.*no data root"):
        C.stratified_split(paper, "train", 0)
    # the paper profile on the benchmark present here, with the simulated panel (no network)
    prof = load_profile("paper", overrides={
        "data": {"train_benchmarks": ["vqa_rad:mevf"], "eval_benchmarks": ["vqa_rad:mevf"]},
        "specialists": {"backend": "simulated"}})
    train = C.stratified_split(prof, "train", 0, data_root=shared_data, log=_quiet)
    held = C.stratified_split(prof, "validation", 0, data_root=shared_data, log=_quiet)
    assert prof.data.synthetic.n_train == 0 and len(train) + len(held) == MEVF_KEPT
    assert {it["dataset"] for it in train.items + held.items} == {"vqa_rad"}


def test_curriculum_trains_on_real_items_and_records_them(shared_data: Path, tmp_path: Path):
    from mmed.runs import Run

    root = tmp_path / "run"
    one = {"cold_start": {"enabled": False},  # the mechanism only: one step from the tiny base model
           "curriculum": {"stages": [{"name": "all", "strata": ["easy", "medium", "hard"], "max_steps": 1,
                                      "entropy_coef": 0.0}]}}
    prof = real_smoke(**one)
    res = C.train_curriculum(prof, root, seed=0, n_heldout=4, log=_quiet, data_root=shared_data)
    (man,) = res.stages
    assert man["steps"] == 1 and man["n_items"] == prof.attending_grpo.n_train_items == sum(res.train_counts.values())
    plan = json.loads((Path(res.root) / "plan.json").read_text())
    assert plan["train_data"]["train_benchmarks"] == ["vqa_rad:mevf"]
    assert plan["train_data"]["removed_eval_image"] == MEVF_REMOVED and plan["train_data"]["n_train"] == man["n_items"]
    strata = json.loads((Path(res.root) / "train_strata.json").read_text())
    assert all(i.startswith("vqa_rad/train/") for ids in strata["ids"].values() for i in ids)
    held = C.heldout_predictions(Run(root), None, man["dir"])
    assert len(held) == 4 + 4  # synthetic n_heldout + at most n_heldout real validation items
    # the same run folder with other training data is refused
    with pytest.raises(ValueError, match=r"another plan.*train_data"):
        C.train_curriculum(real_smoke(**one, attending_grpo={"n_train_items": 8}), root, seed=0, n_heldout=4,
                           log=_quiet, data_root=shared_data)


def test_attending_cold_start_mixes_a_share_of_the_pool(shared_data: Path):
    from mmed.agents.pipeline import as_item_list
    from mmed.data.sets import synthetic_split
    from mmed.rl.cold_start import attending_cold_start_items

    prof = load_profile("smoke", overrides={"data": {"train_benchmarks": ["vqa_rad:mevf"]},
                                            "cold_start": {"n_items": 16, "real_share": 0.25}})
    syn = as_item_list(synthetic_split(prof, "train", n=16))
    items, info = attending_cold_start_items(prof, syn, 0, data_root=shared_data)
    real = [it for it in items if it["dataset"] == "vqa_rad"]
    assert (len(items), len(real), info["n_real"], info["n_synthetic"]) == (16, 4, 4, 12)
    assert [it["id"] for it in items if it["dataset"] == "synthetic"] != [it["id"] for it in syn[:12]]  # shuffled
    assert {it["id"] for it in items if it["dataset"] == "synthetic"} == {it["id"] for it in syn[:12]}
    test = load_benchmark("vqa_rad", shared_data / "vqa_rad", "test", layout="mevf", include_open=True)
    from mmed.data import image_hash

    assert not {image_hash(it["image_ref"]) for it in real} & _hashes(test)  # never an evaluation image
    again, _ = attending_cold_start_items(prof, syn, 0, data_root=shared_data)
    assert [it["id"] for it in again] == [it["id"] for it in items]  # seeded
    # data.cold_start_benchmarks: the same pool for the cold start only (GRPO stays synthetic)
    own = load_profile("smoke", overrides={"data": {"cold_start_benchmarks": ["vqa_rad:mevf"]},
                                           "cold_start": {"n_items": 16, "real_share": 0.25}})
    assert [it["id"] for it in attending_cold_start_items(own, syn, 0, data_root=shared_data)[0]] == [it["id"] for it in items]
    with pytest.raises(ProfileError, match=r"data.cold_start_benchmarks\[0\]"):
        load_profile("smoke", overrides={"data": {"cold_start_benchmarks": ["vqa_rad:mevf@test"]}})
    # without the share or without a benchmark: synthetic as given
    none = {"data": {"cold_start_benchmarks": []}}
    for p in (load_profile("smoke", overrides={"cold_start": {"real_share": 0.0}}),  # no share
              load_profile("smoke", overrides=none)):                             # no benchmark
        assert attending_cold_start_items(p, syn, 0, data_root=shared_data) == (syn, None)


def _mc(i: int, options: list[str], gold: int, organ: str | None = "CHEST") -> dict:
    return {"id": f"x{i}", "options": options, "answer_idx": gold, "organ": organ}


def test_balance_yes_no_keeps_as_many_no_as_yes_within_each_organ():
    from mmed.rl.cold_start import balance_yes_no, gold_text

    items = ([_mc(i, ["yes", "no"], 0) for i in range(7)] + [_mc(10 + i, ["Yes.", "No"], 1) for i in range(3)]
             + [_mc(20, ["CT", "MRI"], 1)]                                                       # chest: 7 yes, 3 no
             + [_mc(30 + i, ["yes", "no"], 1, "ABD") for i in range(4)] + [_mc(40, ["yes", "no"], 0, "ABD")]
             + [_mc(50, ["yes", "no"], 0, None), _mc(51, ["yes", "no"], 1, None)])               # no organ: one group
    kept, counts = balance_yes_no(items, seed=0)
    assert {k: counts[k] for k in ("yes", "no", "other", "dropped")} == {"yes": 9, "no": 8, "other": 1, "dropped": 7}
    assert counts["groups"] == {"": {"yes": 1, "no": 1, "other": 0}, "ABD": {"yes": 1, "no": 4, "other": 0},
                                "CHEST": {"yes": 7, "no": 3, "other": 1}}
    for organ in ("CHEST", "ABD", None):
        golds = [gold_text(it) for it in kept if it["organ"] == organ]
        assert golds.count("yes") == golds.count("no") > 0, organ
    assert {"x20", "x10", "x11", "x12", "x40", "x50", "x51"} <= {it["id"] for it in kept}  # the fewer answer, the others
    assert [it["id"] for it in kept] == [it["id"] for it in items if it in kept]  # input order
    assert [it["id"] for it in balance_yes_no(items, seed=0)[0]] == [it["id"] for it in kept]  # seeded
    one = balance_yes_no(items, seed=0, by="")[1]  # one group: 9 yes / 8 no overall
    assert (one["dropped"], list(one["groups"])) == (1, [""])
    with pytest.raises(ValueError, match="item 'x1': field 'answer_idx' is 2, outside its 2 options"):
        balance_yes_no([_mc(1, ["yes", "no"], 2)], 0)


def test_real_image_only_reference_balances_yes_no_within_each_organ(shared_data: Path):
    from mmed.rl.cold_start import gold_text, image_only_items

    over = {"data": {"cold_start_benchmarks": ["vqa_rad:mevf"]}, "attending_grpo": {"n_train_items": 400}}
    plain = image_only_items(load_profile("smoke", overrides={**over, "cold_start": {"n_items": 700}}), 0, shared_data, "real")
    bal = load_profile("smoke", overrides={**over, "cold_start": {"n_items": 700, "image_only_real": {"balance_yes_no": True}}})
    train, _, info = image_only_items(bal, 0, shared_data, "real")

    def yes_no(items, organ):
        golds = [gold_text(it) for it in items if it["dataset"] == "vqa_rad" and it["organ"] == organ]
        return golds.count("yes"), golds.count("no")

    y, n = yes_no(plain[0], "CHEST")
    assert n > 1.5 * y  # VQA-RAD's chest questions lean "no" in training (its test split does not)
    for organ in ("CHEST", "HEAD", "ABD"):
        y, n = yes_no(train, organ)
        assert y == n > 0, organ
    c = info["yes_no_balance"]
    assert c["dropped"] > 0 and info["n_real"] == c["yes"] + c["no"] + c["other"] - c["dropped"]
    assert len(train) == 700 and info["n_synthetic"] == 700 - info["n_real"]
    assert "yes_no_balance" not in plain[2]


def test_image_only_references_train_on_one_source_each(shared_data: Path, tmp_path: Path):
    """The synthetic reference reads the synthetic train items only, the real one the real
    cold-start pool only (never an evaluation image; its held-out items are the pool's
    validation part, image-disjoint from its train part); the ablation table picks the
    reference by the evaluated items' source."""
    from mmed.agents.build import IMAGE_ONLY_REAL_STAGE, IMAGE_ONLY_STAGE
    from mmed.data import image_hash
    from mmed.eval.ablations import IMAGE_ONLY_NOTES, image_only_stage
    from mmed.rl.cold_start import ensure_image_only_attending, image_only_items
    from mmed.runs import Run

    prof = load_profile("smoke", overrides={"data": {"cold_start_benchmarks": ["vqa_rad:mevf"]},
                                            "cold_start": {"n_items": 12, "real_share": 0.25}})
    train, held, info = image_only_items(prof, 0, shared_data, "synthetic")
    assert len(train) == 12 and {it["dataset"] for it in train + held} == {"synthetic"} and info["source"] == "synthetic"
    train, held, info = image_only_items(prof, 0, shared_data, "real")  # cold_start.image_only_real.real_share 1
    assert (len(train), info["n_real"], info["benchmarks"]) == (12, 12, ["vqa_rad:mevf"])
    assert {it["dataset"] for it in train + held} == {"vqa_rad"} and 0 < len(held) <= 64
    assert all(it["id"].startswith("vqa_rad/train/") for it in train + held)
    test = load_benchmark("vqa_rad", shared_data / "vqa_rad", "test", layout="mevf", include_open=True)
    train_h = {image_hash(it["image_ref"]) for it in train}
    assert not train_h & _hashes(test) and not train_h & {image_hash(it["image_ref"]) for it in held}
    assert [it["id"] for it in image_only_items(prof, 0, shared_data, "real")[0]] == [it["id"] for it in train]  # seeded
    half = load_profile("smoke", overrides={"data": {"cold_start_benchmarks": ["vqa_rad:mevf"]},
                                            "cold_start": {"n_items": 12, "image_only_real": {"real_share": 0.5}}})
    mixed, held_h, info = image_only_items(half, 0, shared_data, "real")
    assert (info["n_real"], info["n_synthetic"]) == (6, 6) and [it["dataset"] for it in mixed].count("vqa_rad") == 6
    assert {it["dataset"] for it in held_h} == {"vqa_rad"}  # measured on real validation items
    with pytest.raises(ValueError, match="unknown image-only source 'both'"):
        image_only_items(prof, 0, shared_data, "both")
    # no real pool: no real reference (and nothing trained)
    none = load_profile("smoke", overrides={"data": {"cold_start_benchmarks": []}})
    run = Run.open(tmp_path / "run", profile="smoke", seed=0)
    assert image_only_items(none, 0, shared_data, "real") is None
    assert ensure_image_only_attending(run, none, 0, shared_data, source="real") is None
    assert not run.path("attending", IMAGE_ONLY_REAL_STAGE).exists()
    # the ablation row's weights follow the items
    assert image_only_stage([{"dataset": "synthetic"}] * 3) == IMAGE_ONLY_STAGE
    assert image_only_stage([{"dataset": "synthetic"}, {"dataset": "vqa_rad"}]) == IMAGE_ONLY_REAL_STAGE
    assert "real cold-start pool" in IMAGE_ONLY_NOTES[IMAGE_ONLY_REAL_STAGE]
    for bad in (0.0, 1.5):
        with pytest.raises(ProfileError, match=r"image_only_real.real_share' must be in \(0, 1\]"):
            load_profile("smoke", overrides={"cold_start": {"image_only_real": {"real_share": bad}}})
    assert load_profile("demo").cold_start.image_only_real.real_share == 0.58
