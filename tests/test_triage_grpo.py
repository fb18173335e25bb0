"""Triage GRPO through mmed.rl.triage: QLoRA 4-bit steps on CPU, resume from the last
checkpoint, reuse and settings guard, the evaluation helpers, the real-data split, the command,
and reward cases the issue names that tests/test_rewards.py does not hold.

Every training here is TRL's GRPOTrainer on the smoke profile's tiny model, started from a
cold start made once per module (copied into each test's run folder).
"""

from __future__ import annotations

import dataclasses

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from mmed.config import load_profile
from mmed.rl.cold_start import ensure_cold_start
from mmed.data import SPECIALTIES, TRIAGE_QUESTION
from mmed.rl import triage as T
from mmed.eval import triage as TE
from mmed.rl.grpo import read_log
from mmed.rl.rewards import format_reward, triage_accuracy_reward
from mmed.runs import Run

SMOKE = load_profile("smoke")


def smoke(**triage_grpo) -> object:
    return load_profile("smoke", overrides={"triage_grpo": triage_grpo} if triage_grpo else None)


pytestmark = pytest.mark.usefixtures("smoke_torch_threads")


@pytest.fixture(scope="module")
def cold_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smoke run holding the tiny base model and the triage cold start."""
    root = tmp_path_factory.mktemp("triage") / "cold"
    run = Run.open(root, profile="smoke", seed=0)
    rep = ensure_cold_start(run, SMOKE, "triage", 0)
    assert rep is not None and rep["after"]["format_valid"] > 0.5  # GRPO needs well-formed completions
    return root


@pytest.fixture
def run_copy(cold_run: Path, tmp_path: Path):
    def make(name: str = "run") -> Run:
        dst = tmp_path / name
        shutil.copytree(cold_run, dst)
        return Run.open(dst, profile="smoke", seed=0)

    return make


def _lora(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path / "adapter_model.safetensors")).items() if "lora_" in k}


class Interrupt(RuntimeError):
    pass


class StopAfterSave(TrainerCallback):
    """Raises right after the checkpoint of ``step`` is written (a killed process)."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Interrupt(f"stopped after saving step {self.step}")


class StartState(TrainerCallback):
    """Records the step and the LoRA weights the trainer starts from (after any resume)."""

    def __init__(self):
        self.step: int | None = None
        self.lora: dict[str, torch.Tensor] = {}
        self.n_4bit = 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        import bitsandbytes as bnb

        self.step = state.global_step
        self.lora = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
        self.n_4bit = sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())


def _by_saved_name(live: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Live LoRA parameters keyed as PEFT saves them (without the adapter name ``default``)."""
    return {n.replace(".default.", "."): v for n, v in live.items()}


# ----------------------------------------------------------------------------------------
# training through train_triage
# ----------------------------------------------------------------------------------------
def test_qlora_nf4_grpo_steps_on_cpu(run_copy):
    """A few QLoRA (4-bit NF4 base, LoRA adapters) GRPO steps of the tiny model on CPU,
    through the triage code path; the adapters move and the log has a learning signal."""
    prof = load_profile("smoke", overrides={"models": {"quantization": "nf4"}, "triage_grpo": {"max_steps": 2}})
    run = run_copy()
    start = StartState()
    tr = T.train_triage(prof, run, seed=0, callbacks=[start])
    assert start.n_4bit >= 7 * prof.models.tiny.num_hidden_layers  # the base really is 4-bit
    assert tr.result.steps == 2 and tr.out_dir == run.path("triage", "grpo")
    lora = _lora(tr.final)
    assert lora and any("visual" in k for k in lora)  # lora_scope "all": the vision tower is adapted too
    assert any(v.abs().max() > 0 for k, v in lora.items() if "lora_B" in k)  # B starts at 0: it moved
    log = read_log(tr.out_dir / "log_history.jsonl")
    assert [r["step"] for r in log] == [1, 2]
    for r in log:
        assert 0 <= r["frac_reward_zero_std"] <= 1 and 0 <= r["format_valid"] <= 1
        assert r["reward"] == pytest.approx(r["rewards/format_reward/mean"] + r["rewards/triage_accuracy_reward/mean"])
    assert min(r["frac_reward_zero_std"] for r in log) < 1  # some group had rewards that differ
    settings = json.loads((tr.out_dir / "train_settings.json").read_text())
    assert settings["quantization"] == "nf4" and settings["max_steps"] == 2
    # the real images without questions of their own ask the generic question (VQA-RAD ones their own)
    items = (tr.data["real"] or {}).get("items", {})
    n_real = sum(n for spec, n in items.items() if spec != "Radiologist")
    assert prof.triage.real_questions == "own"
    assert tr.data["image_only"] == round(prof.triage_grpo.image_only_fraction * prof.triage_grpo.n_train_items) + n_real
    assert set(tr.data["by_specialty"]) == set(SPECIALTIES) and all(tr.data["by_specialty"].values())


def test_resume_continues_at_the_same_step_with_the_same_adapters(run_copy):
    """Kill after the step-2 checkpoint, train again: it resumes at step 2 from exactly the
    checkpoint's adapters and ends where an uninterrupted run ends."""
    prof = smoke(max_steps=4, save_steps=2)
    full = T.train_triage(prof, run_copy("full"), seed=0)
    run = run_copy("cut")
    with pytest.raises(Interrupt):
        T.train_triage(prof, run, seed=0, callbacks=[StopAfterSave(2)])
    out = run.path("triage", "grpo")
    assert not (out / "final").exists() and (out / "checkpoint-2").is_dir()
    ck = _lora(out / "checkpoint-2")
    start = StartState()
    tr = T.train_triage(prof, run, seed=0, callbacks=[start])
    assert tr.result.resumed_from.endswith("checkpoint-2")
    assert start.step == 2 and tr.result.steps == 4
    live = _by_saved_name(start.lora)
    assert live.keys() == ck.keys() and all(torch.equal(ck[k], live[k]) for k in ck)
    assert [r["step"] for r in read_log(out / "log_history.jsonl")] == [1, 2, 3, 4]
    a, b = _lora(full.final), _lora(tr.final)
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # same end point as without the cut
    assert not all(torch.equal(ck[k], b[k]) for k in ck)  # and steps 3-4 did train


def test_finished_training_is_reused_and_other_settings_are_refused(run_copy):
    run = run_copy()
    prof = smoke(max_steps=1)
    first = T.train_triage(prof, run, seed=0)
    stamp = (first.final / "adapter_model.safetensors").stat().st_mtime_ns
    again = T.train_triage(prof, run, seed=0)
    assert again.result.steps == 1 and (again.final / "adapter_model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="max_steps"):
        T.train_triage(prof, run, seed=0, max_steps=3)
    with pytest.raises(ValueError, match="seed"):
        T.train_triage(prof, run, seed=1)
    with pytest.raises(ValueError, match="real_train=True needs real data"):
        T.training_items(prof, 0, real=None, real_train=True)


def test_train_triage_command_writes_eval(run_copy, monkeypatch, capsys):
    from mmed.cli import main

    monkeypatch.setenv("MMED_DATA_ROOT", "")  # synthetic only
    run = run_copy()
    assert main(["train-triage", "--profile", "smoke", "--run-dir", str(run.root), "--max-steps", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"] == 1 and report["real_without_images"] is None
    ev = json.loads((run.path("triage", "grpo") / "eval.json").read_text())
    assert ev["real_data"] is None and set(ev["summary"]) == {"sft", "grpo"}
    for stage in ("sft", "grpo"):
        assert set(ev["summary"][stage]) == {"synthetic", "synthetic_image_only"}
        s = ev["summary"][stage]["synthetic"]
        assert s["n"] == SMOKE.data.synthetic.n_eval == sum(v["n"] for v in s["by_specialty"].values())
        assert report["accuracy"][stage]["synthetic"]["acc"] == pytest.approx(s["accuracy"]["acc"], abs=1e-4)
    g = ev["gain"]["synthetic"]
    assert g["diff"] == pytest.approx(ev["summary"]["grpo"]["synthetic"]["accuracy"]["acc"]
                                      - ev["summary"]["sft"]["synthetic"]["accuracy"]["acc"])
    assert Run(run.root).step_done("triage/grpo")
    assert ev["metrics"]["seed_replicates"]["seeds"] == [0] == report["seeds"]  # the command: the run's seed only
    assert not run.path("seeds").exists()


def test_cli_and_notebook_call_produce_the_same_metrics(run_copy, monkeypatch, capsys):
    """``train-triage`` and notebook 03's call (``TE.triage_step`` with the notebook's parameters,
    resolved by ``notebook_context``) on the same smoke run folder give the same metrics
    (all but ``seconds``, the wall time of each call), the metrics the notebook's checker
    reads; the command's report is read from them."""
    from mmed.checks import CHECKERS
    from mmed.cli import main
    from mmed.notebooks import notebook_context

    monkeypatch.setenv("MMED_DATA_ROOT", "")  # synthetic only
    run = run_copy()
    assert main(["train-triage", "--profile", "smoke", "--run-dir", str(run.root), "--max-steps", "1", "--seeds", "[0]"]) == 0
    report = json.loads(capsys.readouterr().out)
    cli = json.loads((run.path("triage", "grpo") / TE.EVAL_FILE).read_text())["metrics"]

    # notebook 03 with parameters profile="smoke", run_dir=<the run>, max_steps=1, seeds="[0]"
    ctx = notebook_context("smoke", str(run.root), None, None)
    step = TE.triage_step(ctx.run, ctx.profile, seed=ctx.seed, data_root=ctx.data_root, real_train=None,
                         max_steps=1, seeds="[0]")
    nb = dict(step.metrics)
    assert cli.pop("seconds") >= 0 and nb.pop("seconds") >= 0
    assert json.dumps(cli, sort_keys=True) == json.dumps(nb, sort_keys=True)
    assert json.loads((step.eval_file).read_text())["metrics"]["eval"] == cli["eval"]  # the call rewrote the same record

    # what both recorded: the whole step, in the form the notebook's checker reads
    assert nb["training"]["steps"] == 1 and nb["real_data"] is False and nb["real"] is None
    assert set(nb["eval"]) == {"sft", "grpo"} and set(nb["eval"]["grpo"]) == {"synthetic", "synthetic_image_only"}
    assert set(nb["downstream"]["systems"]) == {"sft", "grpo", "gold"} and nb["downstream"]["n_items"] == len(step.test_items)
    assert nb["seed_replicates"]["seeds"] == [0] and {r["set"] for r in nb["seed_replicates"]["table"]} == set(nb["eval"]["grpo"])
    assert TE.confusion_record(step.confusion["synthetic"]) == nb["confusion"] and nb["confusion_real"] is None
    problems = CHECKERS[TE.STEP_NOTEBOOK](step.metrics)
    assert [q for q in problems if "no learning signal" not in q] == []  # one GRPO step may have none
    for stage in ("sft", "grpo"):
        assert report["accuracy"][stage]["synthetic"]["acc"] == pytest.approx(nb["eval"][stage]["synthetic"]["accuracy"]["acc"], abs=1e-4)
    assert report["seeds"] == [0] and report["downstream"]["gold"]["majority_vote"]["n"] == nb["downstream"]["n_items"]


def test_triage_step_refuses_bad_seeds_before_training(run_copy):
    run = run_copy()
    with pytest.raises(ValueError, match="seeds"):
        TE.triage_step(run, SMOKE, seed=0, max_steps=1, seeds="[0, 0]")
    assert not run.path("triage", "grpo").exists()


# ----------------------------------------------------------------------------------------
# evaluation helpers
# ----------------------------------------------------------------------------------------
def _rec(i, label, parsed, fmt=True):
    return {"id": str(i), "source": "synthetic", "specialty": label, "raw": "", "parsed": parsed, "format_valid": fmt,
            "answer_valid": parsed is not None, "correct": parsed == label, "image_only": False}


def test_summary_confusion_and_gain_on_known_records():
    recs = [_rec(0, "Radiologist", "Radiologist"), _rec(1, "Radiologist", "Pathologist"),
            _rec(2, "Radiologist", None, fmt=False), _rec(3, "Surgeon", "Surgeon")]
    s = TE.triage_summary(recs, n_boot=200)
    assert s["n"] == 4 and s["accuracy"]["acc"] == 0.5 and s["format_valid"]["acc"] == 0.75
    assert s["answer_valid"]["acc"] == 0.75
    assert s["by_specialty"]["Radiologist"]["n"] == 3
    assert s["by_specialty"]["Radiologist"]["accuracy"]["acc"] == pytest.approx(1 / 3)
    assert s["by_specialty"]["Pathologist"] == {"n": 0, "accuracy": None, "format_valid": None}
    assert set(s["without_items"]) == set(SPECIALTIES) - {"Radiologist", "Surgeon"}
    for block in (s["accuracy"], s["by_specialty"]["Radiologist"]["accuracy"]):
        assert block["lo"] <= block["acc"] <= block["hi"]
    cm = TE.confusion_matrix(recs)
    assert cm.shape == (7, 8) and list(cm.columns)[-1] == TE.INVALID
    assert cm.loc["Radiologist"].tolist() == [1, 1, 0, 0, 0, 0, 0, 1]
    assert int(cm.values.sum()) == 4 and int(cm.values.diagonal().sum()) == 2
    after = [_rec(i, r["specialty"], r["specialty"]) for i, r in enumerate(recs)]
    g = TE.paired_gain(after, recs, n_boot=200)
    assert g["diff"] == 0.5 and g["acc_a"] == 1.0 and g["acc_b"] == 0.5
    with pytest.raises(ValueError, match="different items"):
        TE.paired_gain(after[:3], recs[:2])
    with pytest.raises(ValueError, match="not in"):
        TE.confusion_matrix([_rec(0, "Nurse", None)])
    with pytest.raises(ValueError, match="no records"):
        TE.triage_summary([])


def test_image_only_choice_is_exact_and_seeded():
    items = [{"id": str(i), "question": f"q{i}?", "specialty": "Surgeon"} for i in range(10)]
    a = T.image_only(items, 0.3, seed=0)
    assert sum(it["image_only"] for it in a) == 3
    assert all((it["question"] == TRIAGE_QUESTION) == it["image_only"] for it in a)
    assert [it["question"] for it in a] == [it["question"] for it in T.image_only(items, 0.3, seed=0)]
    assert [it["question"] for it in a] != [it["question"] for it in T.image_only(items, 0.3, seed=5)]
    assert items[0]["question"] == "q0?"  # inputs untouched
    assert not any(it["image_only"] for it in T.image_only(items, 0.0, 0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        T.image_only(items, 1.5, 0)


def test_training_curves_need_trl_keys():
    with pytest.raises(ValueError, match="lack"):
        TE.training_curves([{"step": 1, "reward": 0.5}])
    with pytest.raises(ValueError, match="empty"):
        TE.training_curves([])


def test_evaluate_triage_records_match_the_raw_completions(cold_run):
    from mmed.agents.build import load_runner, policy_source
    from mmed.agents.parsing import has_valid_format, parse_specialty
    from mmed.agents.pipeline import as_item_list
    from mmed.data.sets import synthetic_split

    run = Run(cold_run)
    runner = load_runner(SMOKE, policy_source(run, SMOKE, "triage", "sft"), "triage")
    items = as_item_list(synthetic_split(SMOKE, "test", n=8))
    recs = TE.evaluate_triage(runner, items, SMOKE, question=TRIAGE_QUESTION)
    assert [r["id"] for r in recs] == [it["id"] for it in items]
    for r, it in zip(recs, items):
        p = parse_specialty(r["raw"])
        assert r["format_valid"] == has_valid_format(r["raw"]) and r["answer_valid"] == p.valid
        assert r["correct"] == (p.valid and p.value == it["specialty"]) and r["image_only"]
    with pytest.raises(ValueError, match="not one of"):
        TE.evaluate_triage(runner, [dict(items[0], specialty="Nurse")], SMOKE)


# ----------------------------------------------------------------------------------------
# real data: every image once, split by image, evaluation images never trained on
# ----------------------------------------------------------------------------------------
def test_real_triage_split_by_image(shared_data: Path):
    from mmed.data import image_hash, load_benchmark

    real = T.load_real_triage(shared_data, SMOKE, seed=0)
    counts = real.counts()
    # the data README: 253 labelled triage images + VQA-RAD's 314 unique MEVF images
    assert sum(counts["all"].values()) == 253 + 314 == len({it["id"] for it in real.all})
    assert counts["all"]["Radiologist"] == 314
    assert all(counts["all"][s] == 0 for s in T.NO_REAL_IMAGES)
    assert all(it["options"] == list(SPECIALTIES) for it in real.all)
    # real_questions "own": a VQA-RAD image asks one of its own VQA-RAD questions (a test image
    # a test question: what the pipeline asks the triage doctor); the other images the generic one
    assert SMOKE.triage.real_questions == "own"
    assert all(it["question"] == TRIAGE_QUESTION and it["image_only"] for it in real.all if it["dataset"] != "vqa_rad")
    rad = [it for it in real.all if it["dataset"] == "vqa_rad"]
    assert all(it["question"] in it["own_questions"] and not it["image_only"] for it in rad)
    test_q = {" ".join(q.split()) for q in load_benchmark("vqa_rad", shared_data / "vqa_rad", "test", layout="mevf",
                                                           include_open=True)["question"]}
    in_test = [it for it in rad if it["meta"]["mevf_test_image"]]
    assert len(in_test) == 203 and all(set(it["own_questions"]) <= test_q for it in in_test)
    assert len({it["question"] for it in rad}) > 150  # many different questions, not one template
    generic = T.load_real_triage(shared_data, dataclasses.replace(SMOKE, triage=dataclasses.replace(
        SMOKE.triage, real_questions="generic")), seed=0, limit_per_specialty=3)
    assert all(it["question"] == TRIAGE_QUESTION and it["image_only"] for it in generic.all)
    train_h = {image_hash(it["image_ref"]) for it in real.train}
    held_h = {image_hash(it["image_ref"]) for it in real.heldout}
    assert not train_h & held_h
    test_refs = set(load_benchmark("vqa_rad", shared_data / "vqa_rad", "test", layout="mevf", include_open=True)["image_ref"])
    assert len(test_refs) == 203
    assert not {image_hash(r) for r in test_refs} & train_h  # no evaluation image is trained on
    side = T.real_image_max_side(SMOKE)
    assert all(max(it["images"][0].size) <= side for it in real.all)
    items, info = T.training_items(SMOKE, 0, real, real_train=True)
    assert info["by_source"]["synthetic"] == SMOKE.triage_grpo.n_train_items
    assert info["by_source"].get("vqa_rad", 0) + info["by_source"].get("triage_images", 0) == info["real"]["n_items"]
    assert info["real"]["n_images"] == len(real.train)
    # balancing copies of a VQA-RAD image each draw their own question (seeded by the copy's id)
    copies = [it for it in items if it.get("source") == "vqa_rad"]
    assert all(it["question"] in it["own_questions"] for it in copies)
    small = T.load_real_triage(shared_data, SMOKE, seed=0, limit_per_specialty=3)
    assert all(n <= 3 for n in small.counts()["heldout"].values())
    assert any("no real images for" in n for n in real.notes)


def test_real_triage_without_data_root():
    assert T.load_real_triage(None, SMOKE) is None


def test_real_triage_empty_root_raises(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="neither"):
        T.load_real_triage(tmp_path, SMOKE)


# ----------------------------------------------------------------------------------------
# reward cases named by the issue beyond tests/test_rewards.py
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "completion, r_format, r_acc",
    [
        ("<THINK>CT</THINK><ANSWER>Radiologist</ANSWER>", 0.5, 1.0),  # tags in upper case count
        ("<think>CT</think><answer>   </answer>", 0.0, 0.0),  # whitespace-only answer is empty
        ("<think>CT</think><answer>.</answer>", 0.0, 0.0),  # punctuation-only answer is empty
        ("<think>CT</think><answer>Radiologist", 0.0, 0.0),  # unclosed answer tag
        ("<think>CT<answer>Radiologist</answer></think>", 0.0, 0.0),  # answer nested in think
        ("<answer>Radiologist</answer><think>CT</think>", 0.0, 1.0),  # wrong order: no format
        ("<think>CT</think>\n\n<answer>\nRadiologist\n</answer>\n", 0.5, 1.0),  # whitespace around tags
        ("<think>CT</think><answer>Radiologists</answer>", 0.5, 0.0),  # not a specialty name
    ],
)
def test_more_adversarial_triage_rewards(completion, r_format, r_acc):
    assert format_reward(None, [completion]) == [r_format]
    assert triage_accuracy_reward(None, [[{"role": "assistant", "content": completion}]], specialty=["Radiologist"]) == [r_acc]


def test_a_refused_triage_folder_starts_no_other_seed(smoke_cold_run, tmp_path):
    """triage_step starts the other seeds' trainings only once train_triage has accepted the
    run's folder: a folder made with other settings is refused before any replicate trains."""
    import json
    import shutil

    from mmed.config import load_profile
    from mmed.eval.triage import triage_step
    from mmed.runs import Run

    root = tmp_path / "run"
    shutil.copytree(smoke_cold_run.root, root)
    (root / "triage" / "grpo").mkdir(parents=True)
    (root / "triage" / "grpo" / "train_settings.json").write_text(json.dumps({"max_steps": 12345}))
    with pytest.raises(ValueError, match="other settings"):
        triage_step(Run.open(root), load_profile("smoke"), seed=0, max_steps=1, seeds=[0, 1], downstream=False, log=None)
    assert not (root / "seeds" / "seed_1" / "triage" / "grpo").exists()
