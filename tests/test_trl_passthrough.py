"""Profile sections pass TRL's and PEFT's own keys through (mmed.config.PassThrough).

A key of ``triage_grpo``/``attending_grpo`` that is not ours is a ``trl.GRPOConfig`` field,
one of ``cold_start`` a ``trl.SFTConfig`` field, one of ``models.lora`` a ``peft.LoraConfig``
field: checked against the class, handed over unchanged. The guards at the end pin the
values the shipped profiles hand to TRL and PEFT to those of the field-by-field mapping
this replaced (written out literally here), so the refactor changes no run.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from peft import LoraConfig as PeftLoraConfig
from trl import GRPOConfig, SFTConfig

from mmed.config import (
    GRPO_RESERVED,
    SFT_RESERVED,
    ColdStartSection,
    GRPOSection,
    LoraSection,
    ProfileError,
    _read_library_fields,
    library_fields,
    load_profile,
    profile_from_dict,
)
from mmed.models import lora_config
from mmed.rl.grpo import agent_lora, trl_grpo_config, trl_grpo_kwargs
from mmed.rl.sft import agent_cold_start, sft_kwargs

MMED = Path(__file__).resolve().parents[1] / "mmed"
SECTIONS = [(GRPOSection, "trl.GRPOConfig"), (ColdStartSection, "trl.SFTConfig"), (LoraSection, "peft.LoraConfig")]


def _names_in_code(word: str) -> list[str]:
    """Files of ``mmed/`` whose code names ``word``: as a name, attribute, keyword argument or
    a whole string (a dict key); prose in docstrings and comments does not count."""
    hits = []
    for p in MMED.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            name = (node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute)
                    else node.arg if isinstance(node, ast.keyword)
                    else node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None)
            if name == word:
                hits.append(f"{p}:{node.lineno}")
    return hits


# ----------------------------------------------------------------------------------------
# pass-through
# ----------------------------------------------------------------------------------------
def test_a_trl_option_no_code_names_reaches_grpo_config(tmp_path: Path):
    opts = {"top_k": 7, "mask_truncated_completions": True, "epsilon_high": 0.28, "repetition_penalty": 1.05}
    for key in opts:  # no code of ours names them: they reach TRL by the pass-through alone
        assert _names_in_code(key) == [], key
    prof = load_profile("smoke", overrides={"attending_grpo": opts})
    assert prof.attending_grpo.trl["top_k"] == 7 and prof.attending_grpo.top_k == 7
    args = trl_grpo_config(prof.attending_grpo, prof, tmp_path / "grpo", max_steps=1)
    assert isinstance(args, GRPOConfig)
    assert (args.top_k, args.mask_truncated_completions, args.epsilon_high, args.repetition_penalty) == (7, True, 0.28, 1.05)
    # the other agent's section and the profile's own numbers are untouched
    assert "top_k" not in prof.triage_grpo.trl
    assert (args.num_generations, args.max_completion_length) == (2, 24)


def test_a_trl_option_in_a_profile_file_reaches_trl(tmp_path: Path):
    raw = yaml.safe_load((MMED / "profiles" / "smoke.yaml").read_text())
    raw["triage_grpo"]["top_k"] = 11
    raw["cold_start"]["weight_decay"] = 0.01
    raw["models"]["lora"]["use_rslora"] = True
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw))
    prof = load_profile(path)
    assert trl_grpo_config(prof.triage_grpo, prof, tmp_path / "g", max_steps=1).top_k == 11
    assert SFTConfig(**sft_kwargs(agent_cold_start(prof, "triage"), prof, tmp_path / "s", 0)).weight_decay == 0.01
    assert lora_config(prof.models.lora).use_rslora is True


def test_a_peft_option_passes_through():
    prof = load_profile("smoke", overrides={"models": {"lora": {"lora_dropout": 0.1, "use_rslora": True, "bias": "lora_only"}}})
    cfg = lora_config(prof.models.lora)
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.use_rslora, cfg.bias) == (4, 8, 0.1, True, "lora_only")
    assert cfg.task_type == "CAUSAL_LM"
    # a GRPO section's lora_scope keeps the PEFT keys
    tri = agent_lora(prof, prof.triage_grpo)
    assert tri.scope == "all" and tri.peft == prof.models.lora.peft


def test_an_sft_option_passes_through_and_the_triage_overrides_apply():
    prof = load_profile("smoke", overrides={"cold_start": {"weight_decay": 0.01, "triage": {"max_steps": 5, "label_fraction": 0.5}}})
    tri, att = agent_cold_start(prof, "triage"), agent_cold_start(prof, "attending")
    assert (tri.max_steps, tri.label_fraction, tri.learning_rate) == (5, 0.5, 3.0e-3)
    assert (att.max_steps, att.label_fraction) == (48, 1.0)
    kw = sft_kwargs(tri, prof, "out", 3)
    assert (kw["weight_decay"], kw["max_steps"], kw["seed"], kw["max_length"]) == (0.01, 5, 3, None)


def test_report_to_defaults_to_tensorboard_and_a_profile_may_turn_it_off(tmp_path: Path):
    prof = load_profile("smoke")
    assert trl_grpo_config(prof.attending_grpo, prof, tmp_path / "g", max_steps=1).report_to == ["tensorboard"]
    assert SFTConfig(**sft_kwargs(agent_cold_start(prof, "triage"), prof, tmp_path / "s", 0)).report_to == ["tensorboard"]
    off = load_profile("smoke", overrides={"attending_grpo": {"report_to": "none"}, "cold_start": {"report_to": "none"}})
    assert trl_grpo_config(off.attending_grpo, off, tmp_path / "g", max_steps=1).report_to == []
    assert trl_grpo_config(off.triage_grpo, off, tmp_path / "g", max_steps=1).report_to == ["tensorboard"]
    assert SFTConfig(**sft_kwargs(agent_cold_start(off, "attending"), off, tmp_path / "s", 0)).report_to == []


# ----------------------------------------------------------------------------------------
# refusals: one line naming file and key
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("section, key, target, hint", [
    ({"attending_grpo": {"top_kk": 5}}, "attending_grpo.top_kk", "trl.GRPOConfig", "top_k"),
    ({"triage_grpo": {"warmup_ratio": 0.1}}, "triage_grpo.warmup_ratio", "trl.GRPOConfig", None),
    ({"cold_start": {"batch_size": 8}}, "cold_start.batch_size", "trl.SFTConfig", None),
    ({"models": {"lora": {"alpha": 16}}}, "models.lora.alpha", "peft.LoraConfig", "lora_alpha"),
    ({"models": {"lora": {"dropout": 0.1}}}, "models.lora.dropout", "peft.LoraConfig", "lora_dropout"),
])
def test_an_unknown_key_fails_naming_file_and_key(section, key, target, hint):
    with pytest.raises(ProfileError) as e:
        load_profile("demo", overrides=section)
    msg = str(e.value)
    assert "\n" not in msg
    assert re.search(rf"demo\.yaml: unknown key\(s\) '{re.escape(key)}'", msg), msg
    assert f"nor a field of {target}" in msg
    if hint:
        assert f"-> '{hint}'" in msg


def test_an_unknown_key_in_a_file_names_that_file(tmp_path: Path):
    path = tmp_path / "typo.yaml"
    path.write_text("attending_grpo: {mask_truncated_completion: true}\n")
    with pytest.raises(ProfileError, match=rf"{re.escape(str(path))}: unknown key\(s\) "
                                           r"'attending_grpo\.mask_truncated_completion'.*'mask_truncated_completions'"):
        load_profile(path)


def test_an_unknown_key_in_a_variant_names_the_variant():
    with pytest.raises(ProfileError, match=r"variant 'v'.*'attending_grpo\.tmperature'"):
        profile_from_dict({"variants": {"v": {"attending_grpo": {"tmperature": 0.5}}}})


@pytest.mark.parametrize("section, key", [("attending_grpo", k) for k, _ in GRPO_RESERVED]
                         + [("cold_start", k) for k, _ in SFT_RESERVED])
def test_keys_the_code_sets_are_refused(section, key):
    with pytest.raises(ProfileError, match=rf"key '{section}\.{key}' is set by the code, not by a profile: "):
        profile_from_dict({section: {key: 1}}, source="p.yaml")


def test_wrong_types_of_library_keys_are_refused():
    for value, words in (("many", "must be an integer"), (2.5, "must be an integer"), (True, "must be an integer")):
        with pytest.raises(ProfileError, match=rf"p\.yaml: key 'attending_grpo\.top_k' {words} \(trl\.GRPOConfig\.top_k\)"):
            profile_from_dict({"attending_grpo": {"top_k": value}}, source="p.yaml")
    with pytest.raises(ProfileError, match=r"'attending_grpo\.mask_truncated_completions' must be a bool"):
        profile_from_dict({"attending_grpo": {"mask_truncated_completions": 1}})
    with pytest.raises(ProfileError, match=r"'attending_grpo\.temperature' must be a number"):
        profile_from_dict({"attending_grpo": {"temperature": "hot"}})
    with pytest.raises(ProfileError, match=r"'models\.lora\.r' must be an integer \(peft\.LoraConfig\.r\)"):
        profile_from_dict({"models": {"lora": {"r": "8"}}})
    with pytest.raises(ProfileError, match=r"'attending_grpo\.beta' must not be null"):
        profile_from_dict({"attending_grpo": {"beta": None}})
    # an int where TRL declares a float is a number: kept as written
    assert profile_from_dict({"attending_grpo": {"beta": 0}}).attending_grpo.trl["beta"] == 0
    assert profile_from_dict({"attending_grpo": {"max_completion_length": None}}).attending_grpo.trl["max_completion_length"] is None


def test_our_keys_and_defaults_fit_the_libraries():
    for cls, target in SECTIONS:
        fields = library_fields(target)
        ours = {f.name for f in dataclasses.fields(cls)}
        assert not ours & set(fields), (cls.__name__, ours & set(fields))  # our names never shadow theirs
        defaults = getattr(cls(), cls.PASSTHROUGH.attr)
        assert set(defaults) <= set(fields), set(defaults) - set(fields)
        assert not set(defaults) & {k for k, _ in cls.PASSTHROUGH.reserved}
    from mmed import config

    for name in ("GRPOConfig", "SFTConfig", "LoraConfig"):  # no shadow of their classes under their names
        assert not hasattr(config, name)


def test_field_lists_are_cached_per_library_version(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MMED_FIELDS_CACHE", str(tmp_path))
    for _, target in SECTIONS:
        fields = library_fields.__wrapped__(target)
        assert fields == _read_library_fields(target)
        (path,) = tmp_path.glob(f"{target}--trl-*--transformers-*--peft-*.json")
        assert library_fields.__wrapped__(target) == fields  # read back from the file
        path.write_text("{not json")  # a broken file is rebuilt
        assert library_fields.__wrapped__(target) == fields
    assert library_fields.__wrapped__("trl.GRPOConfig")["top_k"] == ("int", False)
    assert library_fields.__wrapped__("trl.GRPOConfig")["max_completion_length"] == ("int", True)
    assert library_fields.__wrapped__("peft.LoraConfig")["lora_dropout"] == ("float", False)
    assert library_fields.__wrapped__("trl.GRPOConfig")["reward_weights"] == (None, True)  # a list: TRL checks it


def test_with_the_cache_a_profile_loads_without_importing_trl(tmp_path: Path, monkeypatch):
    # the import of TRL's configuration (transformers' training arguments) takes ~11 s on a
    # 2-core CPU; commands that only read a profile must not pay it each time
    monkeypatch.setenv("MMED_FIELDS_CACHE", str(tmp_path))
    for _, target in SECTIONS:
        library_fields.__wrapped__(target)
    code = ("import sys, mmed.config as c; p = c.load_profile('demo', overrides={'attending_grpo': {'top_k': 3}}); "
            "print(p.attending_grpo.top_k, 'transformers.training_args' in sys.modules, 'trl.trainer.grpo_config' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "MMED_FIELDS_CACHE": str(tmp_path)})
    assert out.stdout.split() == ["3", "False", "False"], out.stderr[-2000:]


def test_library_keys_read_as_attributes_and_are_set_in_the_mapping():
    g = GRPOSection()
    assert g.num_generations == g.trl["num_generations"] == 4
    with pytest.raises(AttributeError, match="top_k"):
        g.top_k  # noqa: B018
    with pytest.raises(AttributeError, match=r"GRPOSection\.top_k: not our key.*\.trl\['top_k'\]"):
        g.top_k = 3
    g.n_train_items = 5  # ours: an ordinary field
    assert g.n_train_items == 5


@pytest.mark.parametrize("name", ["smoke", "demo", "paper"])
def test_to_dict_round_trips_every_profile_and_variant(name):
    base = load_profile(name)
    for variant in (None, *base.variants):
        prof = load_profile(name, variant=variant)
        raw = prof.to_dict()
        assert "trl" not in raw["attending_grpo"] and "peft" not in raw["models"]["lora"]
        assert profile_from_dict({k: v for k, v in raw.items() if k != "variant"}, variant=variant) == prof


# ----------------------------------------------------------------------------------------
# guards: the shipped profiles hand TRL and PEFT the values of the mapping this replaced
# ----------------------------------------------------------------------------------------
_GRPO_DEFAULTS = dict(max_steps=20, learning_rate=5e-4, per_device_train_batch_size=8, gradient_accumulation_steps=1,
                      num_generations=4, max_completion_length=48, temperature=1.0, beta=0.0, loss_type="dapo",
                      logging_steps=1, save_steps=10)
#: each shipped profile's GRPO sections, as the former typed section read them (defaults above)
_GRPO = {
    ("smoke", "triage"): dict(max_steps=4, per_device_train_batch_size=8, num_generations=4, max_completion_length=24,
                              save_steps=2, learning_rate=5.0e-3),
    ("smoke", "attending"): dict(max_steps=2, per_device_train_batch_size=4, num_generations=2, max_completion_length=24,
                                 save_steps=1),
    ("demo", "triage"): dict(max_steps=40, per_device_train_batch_size=64, num_generations=8, max_completion_length=40,
                             learning_rate=1.0e-3, temperature=1.0),
    ("demo", "attending"): dict(max_steps=45, per_device_train_batch_size=32, num_generations=4, max_completion_length=40,
                                learning_rate=5.0e-4, temperature=0.7, save_steps=10),
    ("paper", "triage"): dict(max_steps=500, learning_rate=1.0e-5, per_device_train_batch_size=8, gradient_accumulation_steps=2,
                              num_generations=8, max_completion_length=512, beta=0.04, loss_type="grpo", save_steps=50),
}
_GRPO[("paper", "attending")] = _GRPO[("paper", "triage")]
_OURS = {("smoke", "triage"): dict(n_train_items=16, lora_scope="all", image_only_fraction=0.5),
         ("smoke", "attending"): dict(n_train_items=16, lora_scope=None, image_only_fraction=0.0),
         ("demo", "triage"): dict(n_train_items=400, lora_scope="all", image_only_fraction=0.0),
         ("demo", "attending"): dict(n_train_items=400, lora_scope=None, image_only_fraction=0.0),
         ("paper", "triage"): dict(n_train_items=100000, lora_scope=None, image_only_fraction=0.0),
         ("paper", "attending"): dict(n_train_items=100000, lora_scope=None, image_only_fraction=0.0)}


def _former_grpo_kwargs(name: str, agent: str, out: str, max_steps=None, entropy_coef=0.0, seed=0) -> dict:
    """What the former field-by-field ``trl_grpo_config`` passed to ``trl.GRPOConfig``, with
    ``gradient_checkpointing`` under transformers' current name ``activation_checkpointing``
    (the former name warns a FutureWarning: transformers/training_args.py)."""
    g = {**_GRPO_DEFAULTS, **_GRPO[(name, agent)]}
    on_cpu = name != "paper"
    # report_to: "none" in the former mapping; "tensorboard" now (every training writes TensorBoard event files)
    return dict(output_dir=out, use_cpu=on_cpu, bf16=not on_cpu, activation_checkpointing=not on_cpu, report_to="tensorboard",
                logging_steps=g["logging_steps"], save_strategy="steps", save_steps=g["save_steps"],
                max_steps=g["max_steps"] if max_steps is None else max_steps,
                per_device_train_batch_size=g["per_device_train_batch_size"],
                gradient_accumulation_steps=g["gradient_accumulation_steps"], num_generations=g["num_generations"],
                max_completion_length=g["max_completion_length"], learning_rate=g["learning_rate"],
                temperature=g["temperature"], beta=g["beta"], loss_type=g["loss_type"], entropy_coef=float(entropy_coef),
                seed=seed, data_seed=seed, dataloader_num_workers=0, disable_tqdm=True)


@pytest.mark.parametrize("name, agent", sorted(_GRPO))
def test_grpo_kwargs_are_those_of_the_former_mapping(name, agent, tmp_path: Path):
    prof = load_profile(name)
    g = prof.triage_grpo if agent == "triage" else prof.attending_grpo
    out = str(tmp_path / "g")
    assert trl_grpo_kwargs(g, prof, out) == _former_grpo_kwargs(name, agent, out)
    got = trl_grpo_kwargs(g, prof, out, max_steps=3, entropy_coef=0.01, seed=2, use_adaptive_entropy=True)
    assert got == {**_former_grpo_kwargs(name, agent, out, max_steps=3, entropy_coef=0.01, seed=2), "use_adaptive_entropy": True}
    # what triage's train_settings.json records for the section: the former record, so
    # triage run folders made before stay reusable
    assert g.to_dict() == {**_GRPO_DEFAULTS, **_GRPO[(name, agent)], **_OURS[(name, agent)]}


@pytest.mark.parametrize("agent", ["triage", "attending"])
def test_demo_grpo_config_equals_the_former_one_field_by_field(agent, tmp_path: Path):
    prof = load_profile("demo")
    g = prof.triage_grpo if agent == "triage" else prof.attending_grpo
    out = str(tmp_path / "g")
    new = trl_grpo_config(g, prof, out, seed=1).to_dict()
    old = GRPOConfig(**_former_grpo_kwargs("demo", agent, out, seed=1)).to_dict()
    assert set(new) == set(old)
    assert {k: new[k] for k in new if new[k] != old[k]} == {}


_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
_TARGETS_ALL = r"(.*\.)?(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
_LORA = {"smoke": (4, 8, 0.0), "demo": (8, 16, 0.0), "paper": (64, 128, 0.05)}


@pytest.mark.parametrize("name", sorted(_LORA))
def test_lora_config_equals_the_former_one(name):
    prof = load_profile(name)
    r, alpha, dropout = _LORA[name]
    for section, targets in ((prof.attending_grpo, _TARGETS),
                             (prof.triage_grpo, _TARGETS_ALL if prof.triage_grpo.lora_scope == "all" else _TARGETS)):
        old = PeftLoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none",
                             task_type="CAUSAL_LM")
        assert lora_config(agent_lora(prof, section)).to_dict() == old.to_dict()


@pytest.mark.parametrize("name, agent, steps, lr, batch", [
    ("smoke", "triage", 48, 3.0e-3, 8), ("smoke", "attending", 48, 3.0e-3, 8),
    ("demo", "triage", 480, 3.0e-4, 8), ("demo", "attending", 720, 6.0e-4, 8),  # cold_start.attending
])
def test_sft_kwargs_are_those_of_the_former_call(name, agent, steps, lr, batch):
    prof = load_profile(name)
    # report_to: "none" in the former call; "tensorboard" now
    former = dict(output_dir="o/trainer", use_cpu=True, bf16=False, activation_checkpointing=False, report_to="tensorboard",
                  save_strategy="no", logging_steps=1, max_steps=steps, per_device_train_batch_size=batch, learning_rate=lr,
                  lr_scheduler_type="constant", max_length=None, seed=5, dataloader_num_workers=0, disable_tqdm=True)
    assert sft_kwargs(agent_cold_start(prof, agent), prof, "o/trainer", 5) == former


# ----------------------------------------------------------------------------------------
# no deprecated trainer arguments (they printed a FutureWarning in every training's output)
# ----------------------------------------------------------------------------------------
def _future_warnings(build) -> list[str]:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build()
    return [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]


@pytest.mark.parametrize("name", ["smoke", "demo"])
def test_trainer_arguments_use_no_deprecated_name(name, tmp_path: Path):
    """Our GRPOConfig / SFTConfig arguments warn nothing (the former ``gradient_checkpointing``
    warned in every training: "`gradient_checkpointing` is deprecated and will be removed
    in v6"); checkpointing is off on CPU, on with the paper profile's GPU."""
    prof = load_profile(name)
    grpo, sft = [], []
    assert _future_warnings(lambda: grpo.append(trl_grpo_config(prof.attending_grpo, prof, tmp_path / "g"))) == []
    assert _future_warnings(lambda: sft.append(SFTConfig(**sft_kwargs(agent_cold_start(prof, "triage"), prof,
                                                                        tmp_path / "s", 0)))) == []
    assert grpo[0].activation_checkpointing is False and sft[0].activation_checkpointing is False
    paper = load_profile("paper")  # bf16 on a GPU: its GRPOConfig cannot be built on this CPU
    kw = trl_grpo_kwargs(paper.triage_grpo, paper, tmp_path / "p")
    assert kw["activation_checkpointing"] is True and "gradient_checkpointing" not in kw


def test_a_profile_key_with_the_deprecated_name_reaches_trl_under_the_current_one(tmp_path: Path):
    prof = load_profile("smoke", overrides={"triage_grpo": {"gradient_checkpointing": True,
                                                            "gradient_checkpointing_kwargs": {"use_reentrant": False}},
                                            "cold_start": {"gradient_checkpointing": True}})
    kw = trl_grpo_kwargs(prof.triage_grpo, prof, tmp_path / "g")
    assert kw["activation_checkpointing"] is True and kw["activation_checkpointing_kwargs"] == {"use_reentrant": False}
    assert "gradient_checkpointing" not in kw and "gradient_checkpointing_kwargs" not in kw
    skw = sft_kwargs(agent_cold_start(prof, "triage"), prof, tmp_path / "s", 0)
    assert skw["activation_checkpointing"] is True and "gradient_checkpointing" not in skw
