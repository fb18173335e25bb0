"""C-MARL curriculum (mmed.rl.curriculum): stage plans and variants, stratified training
data, shortcut baselines, a whole smoke curriculum with its files and reuse, every variant
config trained in smoke, and the entropy-coefficient gradient check in every stage
(TRL decides at construction whether the entropy bonus carries gradient, docs/architecture.md#libraries)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from mmed.agents.build import policy_source
from mmed.config import STRATA, load_profile, profile_from_dict
from mmed.agents.stratify import agreement_score
from mmed.eval.curriculum import curriculum_report, report_metrics
from mmed.rl import curriculum as C
from mmed.runs import Run

SMOKE = load_profile("smoke")
SEED = 0


# ----------------------------------------------------------------------------------------
# fixtures: one cold-started smoke run, one trained smoke curriculum (copied per test);
# built once per session in conftest.py (the ablation tests read the same curriculum)
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cold_run(smoke_attending_cold: Path) -> Path:
    assert SEED == 0  # the session fixtures use seed 0
    return smoke_attending_cold


@pytest.fixture(scope="module")
def trained(smoke_curriculum) -> tuple[Path, C.CurriculumResult]:
    return smoke_curriculum


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------------------
# plans and variants (configuration only)
# ----------------------------------------------------------------------------------------
def test_plan_stages_follows_the_profile_in_order():
    plan = C.plan_stages(SMOKE)
    cfg = SMOKE.curriculum.stages
    assert [p.name for p in plan] == [s.name for s in cfg] == ["easy", "medium", "hard"]
    assert [p.dir_name for p in plan] == ["stage_1_easy", "stage_2_medium", "stage_3_hard"]
    assert [p.entropy_coef for p in plan] == [s.entropy_coef for s in cfg]
    assert plan[0].entropy_coef == 0.0 < plan[1].entropy_coef < plan[2].entropy_coef  # γ grows with difficulty
    offsets = [sum(s.max_steps for s in cfg[:k]) for k in range(len(cfg))]
    assert [p.step_offset for p in plan] == offsets


@pytest.mark.parametrize("name", ["smoke", "demo", "paper"])
def test_every_variant_is_the_documented_ablation(name: str):
    base = load_profile(name)
    g = {s.name: s.entropy_coef for s in base.curriculum.stages}
    total = sum(s.max_steps for s in base.curriculum.stages)
    assert set(base.variants) >= {"no_curriculum", "no_entropy", "constant_entropy", "reverse", "adaptive_entropy"}
    nc = C.plan_stages(load_profile(name, variant="no_curriculum"))
    assert len(nc) == 1 and set(nc[0].strata) == set(STRATA) and nc[0].entropy_coef == 0.0
    assert nc[0].max_steps == total  # same total steps
    assert load_profile(name, variant="no_curriculum").curriculum.shuffle_strata
    ne = C.plan_stages(load_profile(name, variant="no_entropy"))
    assert [p.strata for p in ne] == [p.strata for p in C.plan_stages(base)] and {p.entropy_coef for p in ne} == {0.0}
    ce = C.plan_stages(load_profile(name, variant="constant_entropy"))
    assert {p.entropy_coef for p in ce} == {g["medium"]} and [p.name for p in ce] == ["easy", "medium", "hard"]
    rv = C.plan_stages(load_profile(name, variant="reverse"))
    assert [p.strata for p in rv] == [("hard",), ("medium",), ("easy",)]
    assert [p.entropy_coef for p in rv] == [g["hard"], g["medium"], g["easy"]]  # each stratum keeps its γ
    for variant in (None, "no_entropy", "constant_entropy", "reverse"):
        assert sum(p.max_steps for p in C.plan_stages(load_profile(name, variant=variant))) == total


def test_plan_stages_rejects_bad_stages():
    import dataclasses

    def with_stages(stages):
        return dataclasses.replace(SMOKE, curriculum=dataclasses.replace(SMOKE.curriculum, stages=stages))

    from mmed.config import StageConfig

    with pytest.raises(ValueError, match="duplicate"):
        C.plan_stages(with_stages([StageConfig("a", ["easy"], 1, 0.0), StageConfig("a", ["hard"], 1, 0.0)]))
    with pytest.raises(ValueError, match="max_steps"):
        C.plan_stages(with_stages([StageConfig("a", ["easy"], 0, 0.0)]))
    with pytest.raises(ValueError, match="entropy_coef"):
        C.plan_stages(with_stages([StageConfig("a", ["easy"], 1, -0.1)]))
    with pytest.raises(ValueError, match="strata"):
        C.plan_stages(with_stages([StageConfig("a", ["easyish"], 1, 0.0)]))
    with pytest.raises(ValueError, match="name"):
        C.plan_stages(with_stages([StageConfig("a/b", ["easy"], 1, 0.0)]))
    with pytest.raises(ValueError, match="empty"):
        C.plan_stages(with_stages([]))


# ----------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------
def test_stratified_split_uses_the_gold_panel_and_recomputes_s():
    tr = C.stratified_split(SMOKE, "train", SEED, n=24)
    assert len(tr) == 24 and sum(tr.counts().values()) == 24
    assert tr.panel == "gold"
    for it, ops, s, st in zip(tr.items, tr.opinions, tr.s, tr.strata):
        assert len(ops) == SMOKE.specialists.panel_size
        assert {op["specialty"] for op in ops} == {it["specialty"]}  # the gold specialty's panel
        assert s == agreement_score(ops, it["answer_idx"])
        assert st == ("easy" if s == 1 else "hard" if s == 0 else "medium")
    summ = tr.summary()
    assert summ["counts"] == tr.counts() and {k: len(v) for k, v in summ["ids"].items()} == tr.counts()
    assert sum(sum(d.values()) for d in summ["by_agreement"].values()) == 24
    # hard items of the simulated panel are (almost all) unanimous wrong panels
    assert all(a in ("unanimous", "majority", "split") for a in tr.agreement)
    with pytest.raises(ValueError, match="split"):
        C.stratified_split(SMOKE, "dev", SEED)
    with pytest.raises(ValueError, match="panel"):
        C.stratified_split(SMOKE, "train", SEED, n=4, panel="oracle")


def test_stage_rows_hold_only_the_stage_strata_with_opinions_in_the_prompt():
    tr = C.stratified_split(SMOKE, "train", SEED, n=24)
    plan = C.plan_stages(SMOKE)
    for st in plan:
        rows = C.stage_rows(tr, st, SMOKE, SEED)
        assert len(rows) == tr.counts()[st.strata[0]] > 0
        assert set(rows["stratum"]) == set(st.strata)
        by_id = {str(it["id"]): (it, ops) for it, ops in zip(tr.items, tr.opinions)}
        for rid, prompt, aidx in zip(rows["id"], rows["prompt"], rows["answer_idx"]):
            it, ops = by_id[rid]
            assert aidx == it["answer_idx"]
            text = prompt[-1]["content"][-1]["text"]
            assert "Opinions:" in text and text.count(ops[0]["specialty"]) >= len(ops)
    empty = C.StagePlan(9, "none", ("hard",), 1, 0.0)
    easy_only = tr.subset(tr.indices(["easy"]))
    with pytest.raises(ValueError, match="no training items"):
        C.stage_rows(easy_only, empty, SMOKE, SEED)
    nc = load_profile("smoke", variant="no_curriculum")
    mixed = C.stage_rows(tr, C.plan_stages(nc)[0], nc, SEED)
    assert sorted(mixed["id"]) == sorted(str(it["id"]) for it in tr.items)
    assert list(mixed["id"]) != [str(it["id"]) for it in tr.items]  # shuffled


def test_shortcut_baselines_contradicting_a_unanimous_wrong_yes_no_panel_is_always_right():
    def rec(i, gold, maj, n=2, stratum="hard"):
        return {"id": f"x{i}", "answer_idx": gold, "majority": maj, "n_options": n, "stratum": stratum}

    hard = [rec(i, i % 2, 1 - i % 2) for i in range(10)]  # unanimous wrong yes/no panels
    easy = [rec(10 + i, i % 2, i % 2, stratum="easy") for i in range(10)]
    b = C.shortcut_baselines(hard + easy)
    assert b["contradict_majority"] == [True] * 10 + [False] * 10
    assert b["follow_majority"] == [False] * 10 + [True] * 10
    # more options: contradicting picks a seeded other option, never the majority
    multi = [rec(i, 0, 1, n=4) for i in range(200)]
    c1 = C.shortcut_baselines(multi, seed=1)["contradict_majority"]
    assert c1 == C.shortcut_baselines(multi, seed=1)["contradict_majority"]
    assert 0.2 < sum(c1) / 200 < 0.5  # gold is one of the 3 non-majority options
    never = C.shortcut_baselines([rec(i, 1, 1, n=4) for i in range(50)])["contradict_majority"]
    assert not any(never)
    none = C.shortcut_baselines([rec(0, 0, None)])
    assert none["follow_majority"] == [False]


# ----------------------------------------------------------------------------------------
# a whole smoke curriculum
# ----------------------------------------------------------------------------------------
def _lora(final: Path) -> dict[str, torch.Tensor]:
    return load_file(str(final / "adapter_model.safetensors"))


@pytest.mark.slow
def test_smoke_curriculum_files_manifests_logs_and_reuse(trained):
    root, res = trained
    plan = C.plan_stages(SMOKE)
    vdir = root / "attending" / "cmarl"
    assert res.trained == [p.dir_name for p in plan] and Path(res.root) == vdir
    strata = json.loads((vdir / "train_strata.json").read_text())
    n_pool = min(SMOKE.data.synthetic.n_train, SMOKE.attending_grpo.n_train_items)
    assert strata["n"] == n_pool == sum(strata["counts"].values()) and strata["counts"] == res.train_counts
    prev_final, prev_after = None, None
    for p, man in zip(plan, res.stages):
        sdir = vdir / p.dir_name
        assert man == json.loads((sdir / "stage_manifest.json").read_text())
        assert man["status"] == "done" and man["steps"] == p.max_steps and man["entropy_coef"] == p.entropy_coef
        assert man["strata"] == list(p.strata) and man["n_items"] == res.train_counts[p.strata[0]]
        assert man["init_adapters"] == prev_final  # stage 1 from the cold start, then warm starts
        assert man["beta"] == 0.0 and man["reference_policy"] is None
        assert man["base_model"] == str(root / "attending" / "sft")
        assert (sdir / "final" / "adapter_config.json").is_file()
        assert (sdir / f"checkpoint-{p.max_steps}" / "trainer_state.json").is_file()
        held = man["heldout"]
        assert held["split"] == "validation"
        if prev_after is not None:
            assert held["before"] == prev_after  # before stage k = after stage k-1
        for st in (*STRATA, "all"):
            a = held["after"]["accuracy"][st]
            assert a["n"] == 0 or a["lo"] <= a["acc"] <= a["hi"]
        recs = C.heldout_predictions(Run(root), None, p.dir_name)
        assert held["after"]["accuracy"]["all"]["n"] == len(recs) == SMOKE.data.synthetic.n_eval
        assert held["after"]["accuracy"]["all"]["acc"] == pytest.approx(sum(r["correct"] for r in recs) / len(recs))
        ans = held["after"]["answers"]  # the distribution of the held-out answers
        assert ans["n"] == len(recs) and sum(ans["counts"].values()) == sum(r["valid"] for r in recs)
        assert ans["n_distinct_completions"] == len({r["raw"] for r in recs})
        log = [json.loads(x) for x in (sdir / "log_history.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log] == list(range(1, p.max_steps + 1))
        for r in log:
            assert r["stage"] == p.name and r["stage_index"] == p.index and r["gamma"] == p.entropy_coef
            for key in ("reward", "rewards/format_reward/mean", "rewards/choice_accuracy_reward/mean", "entropy",
                        "completions/mean_length", "frac_reward_zero_std", "format_valid"):
                assert key in r, key
            assert 0.0 <= r["format_valid"] <= 1.0
            # TRL logs its entropy_coef only when the bonus is on, i.e. exactly when γ > 0
            assert r.get("entropy_coef") == (p.entropy_coef if p.entropy_coef > 0 else None)
        prev_final, prev_after = str(sdir / "final"), held["after"]
    # every stage moved the adapters
    w = [_lora(vdir / p.dir_name / "final") for p in plan]
    for a, b in zip(w, w[1:]):
        assert any(not torch.equal(a[k], b[k]) for k in a)
    steps = [r["curriculum_step"] for r in C.curriculum_log(Run(root), None)]
    assert steps == list(range(1, sum(p.max_steps for p in plan) + 1))
    run = Run(root)
    assert policy_source(run, SMOKE, "attending").adapters == str(vdir / plan[-1].dir_name / "final")
    assert run.manifest["steps"][f"attending/cmarl/{plan[0].dir_name}"]["status"] == "done"


@pytest.mark.slow
def test_rerun_reuses_finished_stages_and_a_changed_plan_is_refused(trained, tmp_path: Path):
    src, _ = trained
    root = _copy(src, tmp_path / "run")
    vdir = root / "attending" / "cmarl"
    stamp = {p: p.stat().st_mtime_ns for p in vdir.rglob("*") if p.is_file()}
    res = C.train_curriculum("smoke", root, seed=SEED, log=lambda m: None)
    assert res.trained == []
    assert {p: p.stat().st_mtime_ns for p in vdir.rglob("*") if p.is_file()} == stamp
    with pytest.raises(ValueError, match="another plan"):
        C.train_curriculum(load_profile("smoke", overrides={"attending_grpo": {"learning_rate": 1e-3}}), root, seed=SEED,
                           log=lambda m: None)
    with pytest.raises(ValueError, match="another plan"):
        C.train_curriculum("smoke", root, seed=SEED + 1, log=lambda m: None)


@pytest.mark.slow
def test_every_variant_trains_in_smoke(trained, tmp_path: Path):
    """CI runs every variant config: 1 step per stage (no_curriculum: the same total)."""
    src, cmarl = trained
    root = _copy(src, tmp_path / "run")
    for variant in ("no_curriculum", "no_entropy", "constant_entropy", "reverse", "adaptive_entropy"):
        prof = load_profile("smoke", variant=variant)
        res = C.train_curriculum(prof, root, seed=SEED, n_heldout=6, log=lambda m: None)
        plan = C.plan_stages(prof)
        assert Path(res.root) == root / "attending" / variant
        assert [m["dir"] for m in res.stages] == [p.dir_name for p in plan]
        # adaptive_entropy's Easy stage (γ = 0, no target) is no_entropy's, trained just before: copied
        copied = {m["dir"]: m["copied_from"] for m in res.stages if m.get("copied_from")}
        assert copied == ({"stage_1_easy": "no_entropy/stage_1_easy"} if variant == "adaptive_entropy" else {})
        assert res.trained == [p.dir_name for p in plan if p.dir_name not in copied]
        assert [m["init_adapters"] for m in res.stages] == [None] + [str(Path(res.root) / p.dir_name / "final") for p in plan[:-1]]
        for p, man in zip(plan, res.stages):
            assert man["steps"] == p.max_steps and man["entropy_coef"] == p.entropy_coef
            assert man["n_items"] == sum(cmarl.train_counts[s] for s in p.strata)
            log = C.read_log(Path(res.root) / p.dir_name / "log_history.jsonl")
            assert len(log) == p.max_steps and {r.get("entropy_coef") for r in log} == {p.entropy_coef or None}
            assert {r.get("entropy_target") for r in log} == {p.entropy_target} and man.get("entropy_target") == p.entropy_target
        assert policy_source(Run(root), prof, "attending", variant=variant).label == f"{variant}/{plan[-1].dir_name}"
    # the curriculum's own folder was left alone
    assert json.loads((root / "attending" / "cmarl" / "plan.json").read_text())["variant"] is None


def _adapter_tensors(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "adapter_model.safetensors"))


def test_a_stage_identical_to_a_finished_one_is_copied_and_training_it_gives_the_same_adapters(trained, tmp_path: Path):
    src, cmarl = trained
    root = _copy(src, tmp_path / "run")
    logs: list[str] = []
    res = C.train_curriculum(load_profile("smoke", variant="no_entropy"), root, seed=SEED, log=logs.append)
    easy, medium = res.stages[0], res.stages[1]
    assert easy["copied_from"] == "cmarl/stage_1_easy" and "copied_from" not in medium
    assert res.trained == ["stage_2_medium", "stage_3_hard"]
    assert any("stage_1_easy: the same training as cmarl/stage_1_easy" in m for m in logs)
    ne, cm = root / "attending" / "no_entropy" / "stage_1_easy", root / "attending" / "cmarl" / "stage_1_easy"
    assert not list(ne.glob("checkpoint-*")) and list(cm.glob("checkpoint-*"))
    assert (ne / "final" / "adapter_model.safetensors").read_bytes() == (cm / "final" / "adapter_model.safetensors").read_bytes()
    assert {r["variant"] for r in C.read_log(ne / "log_history.jsonl")} == {"no_entropy"}
    assert json.loads((ne / "result.json").read_text())["final"] == str(ne / "final")
    assert easy["variant"] == "no_entropy" and easy["stage_key"] == cmarl.stages[0]["stage_key"]
    assert (root / "tensorboard" / C.stage_tensorboard_name("no_entropy", C.plan_stages(SMOKE)[0], SEED)).is_dir()
    # the medium stage starts from the copy: its own folder's Easy adapters
    assert medium["init_adapters"] == str(ne / "final")
    # the medium stages differ in γ (0.01 vs 0): other keys, other trainings
    assert medium["stage_key"] != cmarl.stages[1]["stage_key"]

    # training the Easy stage again, as no_entropy would, gives the copied adapters exactly
    train = C.stratified_split(SMOKE, "train", SEED, Run(root), n=min(SMOKE.data.synthetic.n_train,
                                                                          SMOKE.attending_grpo.n_train_items))
    again = C.train_stage(load_profile("smoke", variant="no_entropy"), C.plan_stages(SMOKE)[0], train,
                          str(root / "attending" / "sft"), tmp_path / "again", None, SEED)
    a, b = _adapter_tensors(Path(again.final)), _adapter_tensors(ne / "final")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    # a stage whose key is another (another seed's plan) is trained, not copied
    keys = C.stage_keys(SMOKE, {"seed": 1})
    assert keys[0] != C.stage_keys(SMOKE, {"seed": 0})[0]
    assert C.stage_keys(load_profile("smoke", variant="no_entropy"), {"seed": 0})[0] == C.stage_keys(SMOKE, {"seed": 0})[0]
    assert C.stage_keys(load_profile("smoke", variant="constant_entropy"), {"seed": 0})[0] != C.stage_keys(SMOKE, {"seed": 0})[0]


# ----------------------------------------------------------------------------------------
# entropy coefficient: built into each stage's trainer (docs/architecture.md#libraries)
# ----------------------------------------------------------------------------------------
class GradProbe(TrainerCallback):
    """Copies the LoRA gradients of the first optimizer step (after clipping)."""

    def __init__(self):
        self.grads: dict[str, torch.Tensor] | None = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if self.grads is None:
            self.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _stage_grads(trained_root: Path, out: Path, stage: C.StagePlan, train: C.StratifiedSet, gamma: float | None):
    """First-step gradients of ``stage`` built exactly as the curriculum builds it (its
    warm start, rows, settings), optionally with another γ."""
    plan = C.plan_stages(SMOKE)
    init = None if stage.index == 1 else str(trained_root / "attending" / "cmarl" / plan[stage.index - 2].dir_name / "final")
    probe = GradProbe()
    C.train_stage(SMOKE, stage, train, str(trained_root / "attending" / "sft"), out, init, SEED,
                  entropy_coef=gamma, max_steps=1, callbacks=[probe])
    assert probe.grads
    return probe.grads


def _max_diff(a, b) -> float:
    assert set(a) == set(b)
    return max((a[n] - b[n]).abs().max().item() for n in a)


@pytest.mark.slow
def test_entropy_coef_changes_the_gradient_in_every_stage_exactly_when_gamma_is_positive(trained, tmp_path: Path):
    root, _ = trained
    n_pool = min(SMOKE.data.synthetic.n_train, SMOKE.attending_grpo.n_train_items)
    train = C.stratified_split(SMOKE, "train", SEED, n=n_pool)
    for stage in C.plan_stages(SMOKE):
        as_built = _stage_grads(root, tmp_path / f"{stage.dir_name}_a", stage, train, None)
        again = _stage_grads(root, tmp_path / f"{stage.dir_name}_b", stage, train, None)
        no_bonus = _stage_grads(root, tmp_path / f"{stage.dir_name}_0", stage, train, 0.0)
        assert _max_diff(as_built, again) == 0.0  # control: same seed, same rollouts, same gradient
        scale = max(v.abs().max().item() for v in as_built.values())
        if stage.entropy_coef > 0:
            assert _max_diff(as_built, no_bonus) > 1e-4 * scale > 0, stage
        else:
            assert _max_diff(as_built, no_bonus) == 0.0, stage
            # and the batch does respond to an entropy bonus when one is built in
            probe = _stage_grads(root, tmp_path / f"{stage.dir_name}_p", stage, train, 0.05)
            assert _max_diff(probe, no_bonus) > 0.0


class StepGrads(TrainerCallback):
    """Copies the LoRA gradients of every optimizer step."""

    def __init__(self):
        self.grads: list[dict[str, torch.Tensor]] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads.append({n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None})


@pytest.mark.slow
def test_entropy_target_gates_the_bonus_on_the_previous_steps_entropy(trained, tmp_path: Path):
    """A stage with an ``entropy_target`` (TRL adaptive entropy control, coefficient pinned to
    γ): no bonus on its first step (no previous entropy yet); from step 2 on, the bonus is
    there exactly when the previous step's entropy was <= the target."""
    import dataclasses

    root, _ = trained
    n_pool = min(SMOKE.data.synthetic.n_train, SMOKE.attending_grpo.n_train_items)
    train = C.stratified_split(SMOKE, "train", SEED, n=n_pool)
    stage = C.plan_stages(SMOKE)[0]  # the Easy stage: a fresh LoRA on the cold start
    grads = {}
    for name, gamma, target in (("none", 0.0, None), ("open", 0.05, 1e6), ("shut", 0.05, 1e-6)):
        probe = StepGrads()
        C.train_stage(SMOKE, dataclasses.replace(stage, entropy_coef=gamma, entropy_target=target), train,
                      str(root / "attending" / "sft"), tmp_path / name, None, SEED, max_steps=2, callbacks=[probe])
        assert len(probe.grads) == 2
        grads[name] = probe.grads
        if target is not None:
            log = [json.loads(x) for x in (tmp_path / name / "log_history.jsonl").read_text().splitlines()]
            assert [r["entropy_target"] for r in log] == [target, target] and all(r["entropy"] < 1e6 for r in log)
    scale = max(v.abs().max().item() for v in grads["none"][0].values())
    assert _max_diff(grads["open"][0], grads["none"][0]) == 0.0  # step 1: the gate has no entropy yet
    assert _max_diff(grads["shut"][0], grads["none"][0]) == 0.0
    assert _max_diff(grads["open"][1], grads["none"][1]) > 1e-4 * scale > 0  # entropy <= 1e6: bonus on
    assert _max_diff(grads["shut"][1], grads["none"][1]) == 0.0  # entropy > 1e-6: bonus off


def test_entropy_target_in_profiles_and_trl_args():
    from mmed.config import ProfileError, StageConfig

    assert C.entropy_trl_args(0.01, None) == {"entropy_coef": 0.01}
    assert C.entropy_trl_args(0.05, 1.0) == {"entropy_coef": 0.05, "use_adaptive_entropy": True, "entropy_target": 1.0,
                                             "entropy_coef_min": 0.05, "entropy_coef_max": 0.05}
    for gamma, target in ((0.0, 1.0), (0.05, 0.0), (-0.1, None)):
        with pytest.raises(ValueError):
            C.entropy_trl_args(gamma, target)
    for name in ("smoke", "demo", "paper"):
        base = C.plan_stages(load_profile(name))
        ad = C.plan_stages(load_profile(name, variant="adaptive_entropy"))
        # the curriculum's stages and γ, regulated where γ > 0; no target in the paper's own schedule
        assert [(p.name, p.entropy_coef) for p in ad] == [(p.name, p.entropy_coef) for p in base]
        assert [p.entropy_target is not None for p in ad] == [p.entropy_coef > 0 for p in ad]
        assert all(p.entropy_target is None and "entropy_target" not in p.to_dict() for p in base)
    bad = {"curriculum": {"stages": [{"name": "easy", "strata": ["easy"], "max_steps": 1, "entropy_coef": 0.0,
                                      "entropy_target": 0.5}]}}
    with pytest.raises(ProfileError, match="entropy_target"):
        profile_from_dict(bad, "bad.yaml")
    assert StageConfig().entropy_target is None


# ----------------------------------------------------------------------------------------
# notebook 04's report and its checker
# ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_report_metrics_pass_the_checker_and_a_wrong_claim_is_caught(trained):
    import copy
    import math

    from mmed.checkers.nb04_cmarl_curriculum import check_04_cmarl_curriculum

    root, res = trained
    rep = curriculum_report(Run(root), [None], "validation", n_boot=200, seed=SEED)
    n = SMOKE.data.synthetic.n_eval
    assert rep["n_items"] == n and rep["main"] == "cmarl"
    start = C.heldout_predictions(Run(root), None, None)
    final = C.heldout_predictions(Run(root), None, res.stages[-1]["dir"])
    for st in (*STRATA, "all"):
        sel = [i for i, r in enumerate(start) if st == "all" or r["stratum"] == st]
        assert rep["systems"]["start"][st]["n"] == len(sel)
        if sel:
            acc = sum(final[i]["correct"] for i in sel) / len(sel)
            assert rep["systems"]["cmarl"][st]["acc"] == pytest.approx(acc)
            d = rep["paired"]["cmarl-start"][st]
            assert d["diff"] == pytest.approx(acc - sum(start[i]["correct"] for i in sel) / len(sel))
        else:
            assert math.isnan(rep["systems"]["cmarl"][st]["acc"])
    # follow-the-majority is exact on Easy (s = 1) and on Hard (s = 0)
    assert rep["systems"]["follow_majority"]["easy"]["acc"] == 1.0
    if rep["systems"]["follow_majority"]["hard"]["n"]:
        assert rep["systems"]["follow_majority"]["hard"]["acc"] == 0.0
    assert rep["claims"]["hard_improves_over_start"] == (rep["paired"]["cmarl-start"]["hard"]["lo"] > 0)
    # answer distributions: the start, the follow-majority shortcut, every stage
    from collections import Counter

    letters = lambda xs: Counter("ABCDEFGH"[x] for x in xs if x is not None)
    assert rep["answers"]["start"]["counts"] == letters(r["parsed"] if r["valid"] else None for r in start)
    assert rep["answers"]["follow_majority"]["counts"] == letters(r["majority"] for r in start)
    assert rep["stages"]["cmarl"][-1]["answers"]["counts"] == letters(r["parsed"] if r["valid"] else None for r in final)
    assert rep["answers"]["start"]["gold_top_share"] == max(Counter(r["answer_idx"] for r in start).values()) / n
    m = report_metrics(rep, {"cmarl": res}, SMOKE, SEED, 1.0, 2.0)
    assert m["answers"] == json.loads(json.dumps(rep["answers"]))
    assert check_04_cmarl_curriculum(m) == []
    bad = copy.deepcopy(m)
    bad["claims"]["beats_follow_majority"] = not bad["claims"]["beats_follow_majority"]
    assert any("beats_follow_majority" in p for p in check_04_cmarl_curriculum(bad))
    bad = copy.deepcopy(m)
    bad["plans"]["cmarl"][0]["steps"] -= 1
    assert any("trained" in p for p in check_04_cmarl_curriculum(bad))
    bad = copy.deepcopy(m)
    bad["systems"]["follow_majority"]["easy"]["acc"] = 0.9
    assert check_04_cmarl_curriculum(bad)
    with pytest.raises(FileNotFoundError):
        curriculum_report(Run(root), [None, "reverse"], "validation", n_boot=50)


@pytest.mark.slow
def test_qlora_warm_start_with_kl_uses_the_stage_start_as_reference(cold_run: Path, tmp_path: Path):
    """nf4 QLoRA + β > 0: every stage logs KL, and the KL reference of a warm-started stage
    is its own starting policy (KL exactly 0 at its first step), as the manifest says."""
    root = _copy(cold_run, tmp_path / "run")
    prof = load_profile("smoke", overrides={
        "models": {"quantization": "nf4"}, "attending_grpo": {"beta": 0.04},
        "curriculum": {"stages": [{"name": "easy", "strata": ["easy"], "max_steps": 2, "entropy_coef": 0.0},
                                  {"name": "hard", "strata": ["hard"], "max_steps": 2, "entropy_coef": 0.05}]}})
    res = C.train_curriculum(prof, root, seed=SEED, n_heldout=4, log=lambda m: None)
    s1, s2 = res.stages
    assert s1["reference_policy"].endswith("LoRA disabled") and s2["init_adapters"] in s2["reference_policy"]
    assert s1["beta"] == s2["beta"] == 0.04 and [s1["steps"], s2["steps"]] == [2, 2]
    logs = [C.read_log(Path(res.root) / s["dir"] / "log_history.jsonl") for s in (s1, s2)]
    assert all("kl" in r for log in logs for r in log)
    assert logs[1][0]["kl"] == 0.0  # the frozen 'ref' copy of stage 1's adapters
    assert logs[0][1]["kl"] > 0.0 or logs[1][1]["kl"] > 0.0  # and the policy does move away from it
