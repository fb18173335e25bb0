"""The triage doctor on real images: the real split and what trains on it,
balanced sampling, the cold start's mix, the majority-class baseline, the notebook 03 checker's
new fields and the figures' "majority class" rows.

Counts asserted against ../shared/data are the data README's: 200 dermoscopy, 42 fundus (40 DRIVE
+ 2 scikit-image), 11 pathology (9 NCT-CRC + 2 scikit-image), 314 unique VQA-RAD images of which
203 are MEVF test images (all of them also in MEVF train).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from mmed.checks import CHECKERS
from mmed.config import ProfileError, load_profile
from mmed.data import SPECIALTIES
from mmed.rl import triage as T
from mmed.eval import triage as TE

DEMO = load_profile("demo")
SMOKE = load_profile("smoke")
#: the real split of ../shared/data with the profiles' real_split_seed 0 and held-out fraction 0.5
TRAIN = {"Pathologist": 5, "Radiologist": 55, "Ophthalmologist": 21, "Dermatologist": 100}
HELDOUT = {"Pathologist": 6, "Radiologist": 259, "Ophthalmologist": 21, "Dermatologist": 100}


def _full(counts: dict[str, int]) -> dict[str, int]:
    return {s: counts.get(s, 0) for s in SPECIALTIES}


@pytest.fixture(scope="module")
def real(shared_data: Path) -> T.RealTriageSet:
    return T.real_triage(DEMO, shared_data)


@pytest.fixture(scope="module")
def mevf_test_hashes(shared_data: Path) -> set[str]:
    from mmed.data import image_hash, load_benchmark

    refs = set(load_benchmark("vqa_rad", shared_data / "vqa_rad", "test", layout="mevf", include_open=True)["image_ref"])
    return {image_hash(r) for r in refs}


# ----------------------------------------------------------------------------------------
# the split: counts, no held-out or evaluation image trains, the same split for every seed
# ----------------------------------------------------------------------------------------
def test_profiles_train_the_triage_on_real_images():
    assert DEMO.triage.real_train and SMOKE.triage.real_train
    assert DEMO.triage.real_split_seed == SMOKE.triage.real_split_seed == 0
    assert not load_profile("paper").triage.real_train
    with pytest.raises(ProfileError, match="triage.real_balance"):
        load_profile("smoke", overrides={"triage": {"real_balance": "oversample"}})
    with pytest.raises(ProfileError, match="triage.real_cold_start_share"):
        load_profile("smoke", overrides={"triage": {"real_cold_start_share": 1.5}})


def test_real_split_counts(real: T.RealTriageSet, mevf_test_hashes: set[str]):
    c = real.counts()
    assert c["train"] == _full(TRAIN) and c["heldout"] == _full(HELDOUT)
    assert c["all"] == _full({"Pathologist": 11, "Radiologist": 314, "Ophthalmologist": 42, "Dermatologist": 200})
    assert real.overlap() == 0 and real.split_seed == 0
    assert len(mevf_test_hashes) == 203
    held = {h for it in real.heldout for h in it["image_hashes"]}
    assert mevf_test_hashes <= held  # every attending evaluation image is held out
    # the majority class of the held-out part and its share: what the trained triage must beat
    assert TE.majority_class(real.heldout) == "Radiologist"
    assert 259 / 386 == pytest.approx(0.671, abs=1e-3)


@pytest.mark.parametrize("balance", ["none", "specialty"])
def test_no_heldout_or_evaluation_image_trains(real: T.RealTriageSet, mevf_test_hashes: set[str], balance: str):
    prof = load_profile("demo", overrides={"triage": {"real_balance": balance, "real_balance_target": None}})
    held = {h for it in real.heldout for h in it["image_hashes"]}
    items, info = T.training_items(prof, 1, real, real_train=True)
    cs_items, cs_info = T.cold_start_items(prof, [], 0, real=real)
    for its in (items, cs_items):
        trained = {h for it in its for h in it.get("image_hashes", ())}
        assert trained and not trained & held and not trained & mevf_test_hashes
    assert info["real"]["images"] == _full(TRAIN)
    n_real = sum(it["source"] != "synthetic" for it in items)
    assert n_real == info["real"]["n_items"] == (181 if balance == "none" else 4 * 100)
    assert info["by_source"]["synthetic"] == prof.triage_grpo.n_train_items
    evaluated, notes = T.real_evaluation_items(real, True, frozenset(h for it in items for h in it.get("image_hashes", ())))
    assert len(evaluated) == len(real.heldout) == 386 and "0 real images left out" not in " ".join(notes)


def test_split_does_not_depend_on_the_training_seed(shared_data: Path, real: T.RealTriageSet):
    other = T.load_real_triage(shared_data, load_profile("demo", overrides={"seed": 3}))
    assert [it["id"] for it in other.heldout] == [it["id"] for it in real.heldout]
    moved = T.load_real_triage(shared_data, DEMO, seed=5)
    assert [it["id"] for it in moved.heldout] != [it["id"] for it in real.heldout]  # the seed is the split's


def test_real_evaluation_items_leave_out_trained_images(real: T.RealTriageSet):
    items, notes = T.real_evaluation_items(real, False)
    assert len(items) == 567 and "all of the real images: 567" in notes[-1]
    trained = frozenset(real.heldout[0]["image_hashes"])
    items, notes = T.real_evaluation_items(real, True, trained)
    assert len(items) == 385 and notes[-1] == "1 real images left out of the evaluation: trained on"
    assert T.real_evaluation_items(None, True) == (None, ["no real data: synthetic only"])


# ----------------------------------------------------------------------------------------
# balanced sampling and the cold start's mix
# ----------------------------------------------------------------------------------------
def test_specialty_balance_repeats_minorities_up_to_the_largest(real: T.RealTriageSet):
    prof = load_profile("demo", overrides={"triage": {"real_balance": "specialty", "real_balance_target": None}})
    items, info = T.real_training_items(prof, real, seed=0)
    assert info["items"] == _full({s: 100 for s in TRAIN}) and info["images"] == _full(TRAIN)
    assert len({it["id"] for it in items}) == len(items) == 400  # copies have their own ids
    per_image = Counter(it["image_hashes"][0] for it in items if it["specialty"] == "Pathologist")
    assert sorted(per_image.values()) == [20] * 5  # 5 images x 20 = 100
    rad = Counter(it["image_hashes"][0] for it in items if it["specialty"] == "Radiologist")
    assert len(rad) == 55 and set(rad.values()) == {1, 2} and sum(rad.values()) == 100  # 45 images twice
    assert items == T.real_training_items(prof, real, seed=0)[0]
    plain, info = T.real_training_items(load_profile("demo", overrides={"triage": {"real_balance": "none"}}), real, seed=0)
    assert info["items"] == info["images"] == _full(TRAIN) and len(plain) == 181


def test_real_training_items_refuse_an_image_in_both_parts(real: T.RealTriageSet):
    bad = T.RealTriageSet(real.train, real.heldout + [real.train[0]])
    with pytest.raises(ValueError, match="also in the held-out part"):
        T.real_training_items(DEMO, bad)


def test_cold_start_items_mix(real: T.RealTriageSet):
    syn = [{"id": f"s{i}", "specialty": "Surgeon", "source": "synthetic"} for i in range(700)]
    items, info = T.cold_start_items(DEMO, syn, 0, real=real)
    assert len(items) == DEMO.cold_start.n_items == 700
    n_all = T.real_training_items(DEMO, real, 0)[1]["n_items"]
    n_real = min(n_all, int(DEMO.triage.real_cold_start_share * 700))
    assert info["n_real"] == n_real and info["n_synthetic"] == 700 - n_real and info["n_real_left_out"] == n_all - n_real
    assert sum(it["id"].startswith("s") for it in items) == 700 - n_real
    capped = load_profile("demo", overrides={"triage": {"real_balance": "specialty", "real_balance_target": None,
                                                        "real_cold_start_share": 0.25}})
    items, info = T.cold_start_items(capped, syn, 0, real=real)
    assert (info["n_real"], info["n_real_left_out"], len(items)) == (175, 225, 700)
    assert "225 of 400 real items left out" in info["note"]
    off = load_profile("demo", overrides={"triage": {"real_train": False}})
    items, info = T.cold_start_items(off, syn, 0, real=real)
    assert items == syn and info["n_real"] == 0 and "real_train is off" in info["note"]


def test_validation_split_is_by_image_and_inside_the_train_part(real: T.RealTriageSet):
    tune = real.validation_split(0.3, seed=0)
    assert tune.counts()["heldout"] == _full({"Pathologist": 2, "Radiologist": 17, "Ophthalmologist": 6, "Dermatologist": 30})
    assert {it["id"] for it in tune.all} == {it["id"] for it in real.train} and tune.overlap() == 0
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        real.validation_split(1.0)


# ----------------------------------------------------------------------------------------
# the majority-class baseline
# ----------------------------------------------------------------------------------------
def test_majority_class_and_constant_records():
    items = [{"id": str(i), "specialty": s} for i, s in enumerate(["Dermatologist"] * 2 + ["Radiologist"] * 3 + ["Pathologist"])]
    assert TE.majority_class(items) == "Radiologist"
    assert TE.majority_class(items[:2] + items[5:]) == "Dermatologist"
    assert TE.majority_class(items[1:3]) == "Radiologist"  # a tie goes to the first of SPECIALTIES
    recs = TE.constant_records(items, "Radiologist")
    s = TE.triage_summary(recs, n_boot=100)
    assert s["accuracy"]["acc"] == 0.5 and s["by_specialty"]["Radiologist"]["accuracy"]["acc"] == 1.0
    assert s["by_specialty"]["Dermatologist"]["accuracy"]["acc"] == 0.0
    assert TE.answer_counts(recs) == {**_full({"Radiologist": 6}), TE.INVALID: 0}
    with pytest.raises(ValueError, match="not one of"):
        TE.constant_records(items, "Nurse")
    with pytest.raises(ValueError, match="no items"):
        TE.majority_class([])


# ----------------------------------------------------------------------------------------
# the notebook 03 checker: a record built with the library's own functions, then broken
# ----------------------------------------------------------------------------------------
def _recs(labels: list[str], answers: list[str | None], source: str) -> list[dict]:
    return [{"id": f"{source}{i}", "source": source, "specialty": lab, "raw": "", "parsed": a, "format_valid": a is not None,
             "answer_valid": a is not None, "correct": a == lab, "image_only": True} for i, (lab, a) in enumerate(zip(labels, answers))]


def _nb03_record() -> dict:
    syn_labels = [s for s in SPECIALTIES for _ in range(2)]
    real_labels = ["Radiologist"] * 6 + ["Dermatologist"] * 3 + ["Pathologist"]
    answers = {
        "sft": {"synthetic": syn_labels[:10] + ["Surgeon"] * 4, "real": ["Oncologist"] * 5 + ["Radiologist"] + ["Dermatologist"] * 3 + [None]},
        "grpo": {"synthetic": syn_labels, "real": ["Radiologist"] * 6 + ["Dermatologist"] * 2 + ["Radiologist", "Pathologist"]},
    }
    answers["sft"]["synthetic_image_only"] = answers["sft"]["synthetic"]
    answers["grpo"]["synthetic_image_only"] = answers["grpo"]["synthetic"]
    labels = {"synthetic": syn_labels, "synthetic_image_only": syn_labels, "real": real_labels}
    recs = {st: {s: _recs(labels[s], a, s) for s, a in sets.items()} for st, sets in answers.items()}
    ev = {st: {s: TE.triage_summary(r, n_boot=50) for s, r in sets.items()} for st, sets in recs.items()}
    majority = {}
    for s, labs in labels.items():
        items = [{"id": r["id"], "specialty": r["specialty"]} for r in recs["grpo"][s]]
        ans = TE.majority_class(items)
        const = TE.constant_records(items, ans)
        majority[s] = {"answer": ans, "summary": TE.triage_summary(const, n_boot=50), "vs_grpo": TE.paired_gain(recs["grpo"][s], const, 50)}
    down = {st: {"accuracy": {d: {"acc": 0.5, "lo": 0.4, "hi": 0.6, "n": 14} for d in ("attending", "majority_vote")},
                 "triage_accuracy": {"acc": 1.0 if st == "gold" else 0.7, "lo": 0.6, "hi": 1.0, "n": 14}, "triage_invalid": 0}
            for st in ("sft", "grpo", "gold")}
    train = _full({"Radiologist": 2, "Dermatologist": 3, "Pathologist": 1})
    held = _full({"Radiologist": 6, "Dermatologist": 3, "Pathologist": 1})
    return {
        "profile": "smoke", "seed": 0, "real_data": True, "real_train": True,
        "real": {"counts": {"train": train, "heldout": held, "all": {k: train[k] + held[k] for k in SPECIALTIES}},
                 "eval_part": "heldout", "n_eval": 10, "split_seed": 0, "overlap": 0, "trained_eval_overlap": 0,
                 "training": {"balance": "none", "images": train, "items": dict(train), "n_images": 6, "n_items": 6},
                 "without_images": list(T.NO_REAL_IMAGES), "notes": []},
        "cold_start": {"steps": 10, "after": {}, "training_data": {"n_real": 6, "n_synthetic": 42}},
        "training": {"steps": 4, "steps_logged": 4, "frac_reward_zero_std_mean": 0.2, "format_valid_first": 0.9,
                     "format_valid_last": 1.0, "accuracy_reward_first": 0.3, "accuracy_reward_last": 0.6,
                     "completion_length_mean": 12.0, "max_completion_length": 24, "seconds_per_step": 0.5},
        "eval": ev,
        "gain": {s: TE.paired_gain(recs["grpo"][s], recs["sft"][s], 50) for s in labels},
        "majority": majority,
        "answers": {st: {s: TE.answer_counts(r) for s, r in sets.items()} for st, sets in recs.items()},
        "confusion": TE.confusion_record(TE.confusion_matrix(recs["grpo"]["synthetic"])),
        "confusion_real": TE.confusion_record(TE.confusion_matrix(recs["grpo"]["real"])),
        "downstream": {"systems": down, "paired": {}, "n_items": 14, "greedy_triage": False},
        "seed_replicates": None, "seconds": 10.0,
    }


def test_checker_03_accepts_a_record_of_the_library_functions():
    m = _nb03_record()
    assert CHECKERS["03_triage_grpo"](m) == []
    assert m["majority"]["real"]["answer"] == "Radiologist" and m["majority"]["real"]["summary"]["accuracy"]["acc"] == 0.6
    assert m["majority"]["real"]["vs_grpo"]["diff"] == pytest.approx(0.9 - 0.6)


BROKEN = {
    "majority missing": lambda m: m.pop("majority"),
    "majority answer not a specialty": lambda m: m["majority"]["real"].update(answer="Nurse"),
    "majority answer not the most frequent": lambda m: m["majority"]["real"].update(answer="Dermatologist"),
    "majority accuracy": lambda m: m["majority"]["real"]["summary"]["accuracy"].update(acc=0.7, hi=0.8),
    "majority other items": lambda m: m["majority"]["real"]["summary"].update(n=9),
    "majority per specialty": lambda m: m["majority"]["real"]["summary"]["by_specialty"]["Dermatologist"]["accuracy"].update(acc=0.5, hi=0.6),
    "vs_grpo diff": lambda m: m["majority"]["real"]["vs_grpo"].update(diff=0.5),
    "vs_grpo missing": lambda m: m["majority"]["synthetic"].pop("vs_grpo"),
    "answers missing": lambda m: m["answers"]["grpo"].pop("real"),
    "answers sum": lambda m: m["answers"]["grpo"]["real"].update(Radiologist=8),
    "answers invalid": lambda m: m["answers"]["sft"]["real"].update({TE.INVALID: 0, "Pathologist": 1}),
    "answers vs confusion": lambda m: m["answers"]["grpo"]["real"].update(Radiologist=6, Surgeon=1),
    "split overlap": lambda m: m["real"].update(overlap=1),
    "trained image evaluated": lambda m: m["real"].update(trained_eval_overlap=2),
    "counts do not add up": lambda m: m["real"]["counts"]["train"].update(Radiologist=3),
    "n_eval": lambda m: m["real"].update(n_eval=11),
    "eval part": lambda m: m["real"].update(eval_part="all"),
    "training images not the train part": lambda m: m["real"]["training"]["images"].update(Radiologist=1),
    "training items miss a specialty": lambda m: m["real"]["training"]["items"].update(Pathologist=0),
    "cold start without real images": lambda m: m["cold_start"]["training_data"].update(n_real=0),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_checker_03_flags_each_broken_new_field(name: str):
    m = copy.deepcopy(_nb03_record())
    BROKEN[name](m)
    assert CHECKERS["03_triage_grpo"](m), name


def test_checker_03_without_real_training():
    m = _nb03_record()
    m.update(real_train=False)
    problems = CHECKERS["03_triage_grpo"](m)
    assert problems == ["real.eval_part = 'heldout', expected 'all' with real_train = False"]
    m["real"].update(eval_part="all")
    assert CHECKERS["03_triage_grpo"](m) == []


# ----------------------------------------------------------------------------------------
# figures/triage.csv: the majority-class rows and the README line
# ----------------------------------------------------------------------------------------
def test_triage_csv_holds_the_majority_class_rows(tmp_path: Path):
    from mmed.runs import Run
    from mmed.viz.figures import MAJORITY_CLASS, export_triage, results_markdown, triage_figure

    m = _nb03_record()
    run = Run.open(tmp_path / "run", profile="smoke", seed=0)
    run.path("eval", mkdir=True).joinpath("notebook_03_triage_grpo.json").write_text(json.dumps(m))
    df = export_triage(run.root)
    maj = df[df["when"] == MAJORITY_CLASS]
    assert set(maj["dataset"]) == {"real"}
    assert maj.set_index("specialty")["acc"].to_dict() == {"Pathologist": 0.0, "Radiologist": 1.0, "Dermatologist": 0.0, "(all)": 0.6}
    assert maj.set_index("specialty")["n"].to_dict() == {"Pathologist": 1, "Radiologist": 6, "Dermatologist": 3, "(all)": 10}
    row = maj[maj["specialty"] == "(all)"].iloc[0]
    assert row["gain"] == pytest.approx(0.3) and row["gain_lo"] <= row["gain"] <= row["gain_hi"]
    grpo_all = df[(df["when"] == "GRPO") & (df["dataset"] == "real") & (df["specialty"] == "(all)")].iloc[0]
    assert grpo_all["acc"] - row["acc"] == pytest.approx(row["gain"])
    fig = tmp_path / "figures"
    fig.mkdir()
    df.to_csv(fig / "triage.csv", index=False)
    text = results_markdown(fig)
    assert "| real | (all) | majority class | 10 | 60.0" in text
    assert "| triage GRPO vs majority class (always the most frequent specialty) | real (n=10) | +30.0" in text
    triage_figure(pd.read_csv(fig / "triage.csv"))


def test_specialty_balance_to_a_target_never_subsamples(real: T.RealTriageSet):
    prof = load_profile("demo", overrides={"triage": {"real_balance": "specialty", "real_balance_target": 55}})
    items, info = T.real_training_items(prof, real, seed=0)
    assert info["target"] == 55 and info["images"] == _full(TRAIN)
    assert info["items"] == _full({"Pathologist": 55, "Radiologist": 55, "Ophthalmologist": 55, "Dermatologist": 100})
    assert {it["image_hashes"][0] for it in items} == {it["image_hashes"][0] for it in real.train}  # every image trains
    with pytest.raises(ProfileError, match="real_balance_target"):
        load_profile("demo", overrides={"triage": {"real_balance_target": 0}})


# ----------------------------------------------------------------------------------------
# the command (one code path with notebook 03): trains on the train part, evaluates the rest
# ----------------------------------------------------------------------------------------
def test_train_triage_command_trains_on_real_and_evaluates_the_heldout_part(shared_data, tmp_path, monkeypatch, capsys):
    from mmed.cli import main

    monkeypatch.setenv("MMED_DATA_ROOT", str(shared_data))
    run_dir = tmp_path / "run"
    assert main(["train-triage", "--profile", "smoke", "--run-dir", str(run_dir), "--max-steps", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["real_train"] is True
    ev = json.loads((run_dir / "triage" / "grpo" / "eval.json").read_text())
    real = T.real_triage(SMOKE, shared_data)  # smoke: at most data.eval_limit images per specialty in each part
    assert ev["real_eval_part"] == "heldout" and ev["summary"]["grpo"]["real"]["n"] == len(real.heldout)
    settings = json.loads((run_dir / "triage" / "grpo" / "train_settings.json").read_text())
    assert settings["real_train"] and settings["data"]["real"]["images"] == real.counts()["train"]
    cold = json.loads((run_dir / "triage" / "sft" / "cold_start.json").read_text())["training_data"]
    assert cold["n_real"] == min(cold["real"]["n_items"], int(SMOKE.triage.real_cold_start_share * SMOKE.cold_start.n_items))
    maj = ev["majority"]["real"]
    assert maj["answer"] == TE.majority_class(real.heldout)
    assert maj["vs_grpo"]["diff"] == pytest.approx(ev["summary"]["grpo"]["real"]["accuracy"]["acc"] - maj["summary"]["accuracy"]["acc"])
    assert report["majority_class"]["real"]["answer"] == maj["answer"]
    assert sum(ev["answers"]["grpo"]["real"].values()) == len(real.heldout)
    assert "0 real images left out" not in " ".join(ev["real_notes"])
    # the same folder with --no-real-train is another training: refused, naming what differs
    assert main(["train-triage", "--profile", "smoke", "--run-dir", str(run_dir), "--max-steps", "1", "--no-real-train"]) != 0
    out = capsys.readouterr()
    assert "other settings (data, real_train)" in out.out + out.err


def test_triage_accuracy_table_reshapes_the_summaries():
    """rl.triage.triage_accuracy_table: one row per (set, stage) of summaries whose rates
    come from mmed.agents.scoring.accuracy_ci; a specialty without items has rate None."""
    items = [{"id": str(i), "specialty": s} for i, s in enumerate(["Dermatologist"] * 2 + ["Radiologist"] * 3)]
    summary = {st: {"heldout": TE.triage_summary(TE.constant_records(items, ans), n_boot=50)}
               for st, ans in (("sft", "Dermatologist"), ("grpo", "Radiologist"))}
    t = TE.triage_accuracy_table(summary)
    assert list(t.index) == [("heldout", "grpo"), ("heldout", "sft")]
    assert t.loc[("heldout", "grpo"), "accuracy"] == pytest.approx(0.6) and t.loc[("heldout", "sft"), "n"] == 5
    assert summary["sft"]["heldout"]["by_specialty"]["Surgeon"]["accuracy"] is None
