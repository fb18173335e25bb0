"""mmed.models: the tiny offline Qwen2.5-VL, load_policy, LoRA / QLoRA configuration."""

from __future__ import annotations

import dataclasses

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from mmed.config import LoraSection
from mmed.config import TinyModelConfig, load_profile
from mmed.models import (
    QWEN_SPECIAL_TOKENS,
    REASONING_TAGS,
    build_tiny_qwen2_5_vl,
    load_policy,
    load_processor,
    lora_config,
    lora_target_modules,
    quantization_config,
    train_tokenizer,
)
from mmed.models.tiny import mrope_section, validate_tiny_config

REPO = Path(__file__).resolve().parent.parent
SMOKE = load_profile("smoke").models.tiny


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny") / "base", SMOKE)


@pytest.fixture(scope="module")
def policy(tiny_dir: Path):
    return load_policy(tiny_dir)


def _chat(question: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- tokenizer
def test_tokenizer_special_tokens_and_tags():
    tok = train_tokenizer(512)
    assert tok.convert_tokens_to_ids(list(QWEN_SPECIAL_TOKENS)) == list(range(len(QWEN_SPECIAL_TOKENS)))
    assert len(tok) == 512  # the shipped corpus fills the profiles' vocabularies
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    text = "<think>CT of the chest</think><answer>Radiologist</answer>"
    ids = tok(text)["input_ids"]
    tokens = tok.convert_ids_to_tokens(ids)
    for tag in REASONING_TAGS:  # each tag is one token
        assert tokens.count(tag) == 1
    # tags survive skip_special_tokens (they are not special); chat tokens do not
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.decode(tok("<|im_start|>user\nhi<|im_end|>")["input_ids"], skip_special_tokens=True) == "user\nhi"
    # byte-level: any text round-trips, unknown characters included
    odd = "Ödem, 5 mm — ß ✓ 肺"
    assert tok.decode(tok(odd)["input_ids"]) == odd


def test_tokenizer_is_deterministic():
    a, b = train_tokenizer(400), train_tokenizer(400)
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()


def test_chat_template_renders_image_parts_and_skips_none_text():
    tok = train_tokenizer(512)
    msgs = [{"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": "Q?", "image": None}]}]
    out = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert out == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Q?<|im_end|>\n<|im_start|>assistant\n"
    )


# ---------------------------------------------------------------------------- build
def test_validate_tiny_config_names_the_bad_field():
    with pytest.raises(ValueError, match="intermediate_size"):
        validate_tiny_config(TinyModelConfig(intermediate_size=100))
    with pytest.raises(ValueError, match="vision_hidden_size"):
        validate_tiny_config(TinyModelConfig(vision_hidden_size=96))
    with pytest.raises(ValueError, match="vocab_size"):
        validate_tiny_config(TinyModelConfig(vocab_size=200))
    with pytest.raises(ValueError, match="the tokenizer has 1"):  # corpus too small for 4096 tokens
        build_tiny_qwen2_5_vl("/nonexistent/never-written", {**SMOKE.__dict__, "vocab_size": 4096})
    with pytest.raises(ValueError, match="unknown key"):
        build_tiny_qwen2_5_vl("/nonexistent/never-written", {"hidden": 64})


def test_mrope_section_sums_to_half_head_dim():
    assert mrope_section(128) == [16, 24, 24]  # Qwen2.5-VL-7B's value
    for head_dim in (32, 64, 96):
        sec = mrope_section(head_dim)
        assert sum(sec) == head_dim // 2 and min(sec) > 0


def test_build_is_deterministic_and_saves_a_checkpoint(tiny_dir: Path, tmp_path: Path):
    names = sorted(p.name for p in tiny_dir.iterdir())
    for required in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                     "processor_config.json", "chat_template.jinja", "processing_qwen2_5_vl.py"):
        assert required in names
    again = build_tiny_qwen2_5_vl(tmp_path / "again", SMOKE)
    for f in ("model.safetensors", "tokenizer.json", "config.json"):
        assert _sha(tiny_dir / f) == _sha(again / f), f
    other_seed = build_tiny_qwen2_5_vl(tmp_path / "seed1", SMOKE, seed=1)
    assert _sha(tiny_dir / "model.safetensors") != _sha(other_seed / "model.safetensors")
    cfg = json.loads((tiny_dir / "config.json").read_text())
    assert cfg["model_type"] == "qwen2_5_vl"
    assert cfg["text_config"]["hidden_size"] == SMOKE.hidden_size
    assert cfg["vision_config"]["out_hidden_size"] == SMOKE.hidden_size
    assert cfg["image_token_id"] == QWEN_SPECIAL_TOKENS.index("<|image_pad|>")


def test_save_reload_gives_identical_logits(tiny_dir: Path, policy):
    from transformers import Qwen2_5_VLForConditionalGeneration

    model, proc = policy
    text = proc.apply_chat_template([_chat("Is this a CT scan?")], add_generation_prompt=True, tokenize=False)
    batch = proc(text=text, images=[Image.new("RGB", (96, 96), "red")], return_tensors="pt")
    with torch.no_grad():
        a = model(**batch).logits
        torch.manual_seed(123)  # a fresh build under another global seed must not matter
        fresh = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_dir).eval()
        b = fresh(**batch).logits
    assert a.shape == (1, batch["input_ids"].shape[1], SMOKE.vocab_size)
    assert torch.equal(a, b)
    assert a.std() > 0  # not a degenerate constant model


def test_saved_folder_loads_in_a_separate_process(tiny_dir: Path):
    """A fresh interpreter that never imports mmed loads model + processor (remote-code
    processor file saved in the folder) and runs one forward pass with an image."""
    code = f"""
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor
m = AutoModelForImageTextToText.from_pretrained({str(tiny_dir)!r})
p = AutoProcessor.from_pretrained({str(tiny_dir)!r}, trust_remote_code=True)
msgs = [[{{"role": "user", "content": [{{"type": "image"}}, {{"type": "text", "text": "hi"}}]}}]]
text = p.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
b = p(text=text, images=[Image.new("RGB", (56, 56))], return_tensors="pt")
print(type(p).__name__, type(p.image_processor).__name__, tuple(m(**b).logits.shape))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_MODULES_CACHE": str(tiny_dir.parent / "hf_modules")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("Qwen2_5_VLImageOnlyProcessor Qwen2VLImageProcessorPil (1, ")
    assert last.endswith(f", {SMOKE.vocab_size})")


def test_autoprocessor_without_remote_code_after_importing_mmed(tiny_dir: Path):
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(tiny_dir)
    assert type(proc).__name__ == "Qwen2_5_VLImageOnlyProcessor"


# ---------------------------------------------------------------------------- processor
@pytest.mark.parametrize("side,tokens", [(56, 16), (84, 36), (112, 64)])
def test_image_tokens_per_image(policy, side: int, tokens: int):
    """The smoke model's patch 7, merge 2: a side of s px (multiple of 14) gives (s/7)^2
    patches, /4 tokens (Qwen2.5-VL's patch 14 would give a quarter of that)."""
    model, proc = policy
    assert SMOKE.vision_patch_size == 7 == model.config.vision_config.patch_size
    text = proc.apply_chat_template([_chat("x")], add_generation_prompt=True, tokenize=False)
    b = proc(text=text, images=[Image.new("RGB", (side, side))], return_tensors="pt")
    assert int((b["input_ids"] == model.config.image_token_id).sum()) == tokens
    assert b["pixel_values"].shape == (tokens * 4, 3 * 2 * 7 * 7)


def test_patch_14_keeps_qwen_geometry(tmp_path: Path):
    d = build_tiny_qwen2_5_vl(tmp_path / "p14", dataclasses.replace(SMOKE, vision_patch_size=14), max_pixels=112 * 112)
    model, proc = load_policy(d)
    text = proc.apply_chat_template([_chat("x")], add_generation_prompt=True, tokenize=False)
    b = proc(text=text, images=[Image.new("RGB", (112, 112))], return_tensors="pt")
    assert int((b["input_ids"] == model.config.image_token_id).sum()) == 16
    with pytest.raises(ValueError, match="vision_patch_size"):
        validate_tiny_config(dataclasses.replace(SMOKE, vision_patch_size=5))


def test_pixel_bounds_override(tiny_dir: Path):
    proc = load_processor(tiny_dir, min_pixels=56 * 56, max_pixels=56 * 56)
    b = proc(text=["<|vision_start|><|image_pad|><|vision_end|>"], images=[Image.new("RGB", (112, 112))], return_tensors="pt")
    assert b["image_grid_thw"].tolist() == [[1, 8, 8]]  # 56 px in patches of 7
    with pytest.raises(ValueError, match="min_pixels"):
        load_processor(tiny_dir, min_pixels=200 * 200, max_pixels=56 * 56)


def test_batched_left_padded_generation_matches_one_at_a_time(policy):
    model, proc = policy
    msgs = [_chat("Which specialist should see this case?"), _chat("Is there a fracture? A. yes B. no")]
    images = [Image.new("RGB", (96, 96), "red"), Image.new("RGB", (64, 80), "blue")]
    texts = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    batch = proc(text=texts, images=images, padding=True, return_tensors="pt")
    assert proc.tokenizer.padding_side == "left"
    assert batch["attention_mask"][:, -1].tolist() == [1, 1]  # right ends aligned
    assert batch["attention_mask"][:, 0].tolist().count(0) == 1  # the shorter row is padded
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=12, do_sample=False)
    n = batch["input_ids"].shape[1]
    for i in range(2):
        single = proc(text=[texts[i]], images=[images[i]], return_tensors="pt")
        with torch.no_grad():
            one = model.generate(**single, max_new_tokens=12, do_sample=False)
        assert one[0, single["input_ids"].shape[1]:].tolist() == out[i, n:].tolist()


# ---------------------------------------------------------------------------- LoRA / QLoRA
def test_lora_targets_language_model_only(tiny_dir: Path):
    from peft import get_peft_model
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    peft_model = get_peft_model(model, lora_config(load_profile("smoke").models.lora))
    adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in peft_model.named_parameters() if ".lora_A" in n}
    assert adapted and all(".language_model." in n for n in adapted)
    # 7 projections per decoder layer
    assert len(adapted) == 7 * SMOKE.num_hidden_layers
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_lora_scope_all_and_regex_reach_the_vision_tower():
    all_scope = lora_target_modules(LoraSection(scope="all", peft={"target_modules": ["gate_proj"]}))
    import re

    assert re.fullmatch(all_scope, "model.visual.blocks.0.mlp.gate_proj")
    lm = lora_target_modules(LoraSection(peft={"target_modules": ["gate_proj"]}))
    assert not re.fullmatch(lm, "model.visual.blocks.0.mlp.gate_proj")
    assert re.fullmatch(lm, "model.language_model.layers.3.mlp.gate_proj")
    assert lora_target_modules(LoraSection(target_regex=r".*attn\.qkv")) == r".*attn\.qkv"
    with pytest.raises(ValueError, match="target_modules entries"):
        lora_target_modules(LoraSection(peft={"target_modules": ["q_proj|k_proj"]}))
    with pytest.raises(ValueError, match="not a valid regex"):
        lora_target_modules(LoraSection(target_regex="(unclosed"))
    cfg = lora_config({"r": 4, "lora_alpha": 8, "lora_dropout": 0.05})
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.task_type) == (4, 8, 0.05, "CAUSAL_LM")
    with pytest.raises(ValueError, match="dropout"):
        lora_config({"lora_dropout": 1.5})


def test_quantization_config_values():
    assert quantization_config(None) is None
    q = quantization_config("nf4", "bfloat16")
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype == torch.bfloat16
    with pytest.raises(ValueError, match="int8"):
        quantization_config("int8")
    with pytest.raises(ValueError, match="float64"):
        quantization_config("nf4", "float64")


def test_load_policy_nf4_generates_on_cpu(tiny_dir: Path):
    import bitsandbytes as bnb

    model, proc = load_policy(tiny_dir, quantization="nf4")
    n4 = sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    assert n4 >= 7 * SMOKE.num_hidden_layers
    assert not isinstance(model.lm_head, bnb.nn.Linear4bit)  # transformers keeps the output layer
    texts = proc.apply_chat_template([_chat("a"), _chat("a longer question here")], add_generation_prompt=True, tokenize=False)
    b = proc(text=texts, images=[Image.new("RGB", (56, 56))] * 2, padding=True, return_tensors="pt")
    full, _ = load_policy(tiny_dir)
    with torch.no_grad():
        out = model.generate(**b, max_new_tokens=6, min_new_tokens=6, do_sample=False)
        q_logits, f_logits = model(**b).logits, full(**b).logits
    assert out.shape == (2, b["input_ids"].shape[1] + 6)
    # 4-bit weights perturb the logits but keep them close to the float model's
    assert torch.isfinite(q_logits).all() and not torch.equal(q_logits, f_logits)
    corr = torch.corrcoef(torch.stack([q_logits.flatten(), f_logits.flatten()]))[0, 1]
    assert corr > 0.9, corr


def test_load_policy_with_adapters_and_errors(tiny_dir: Path, tmp_path: Path):
    from peft import PeftModel, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    peft_model = get_peft_model(base, lora_config({"r": 4, "lora_alpha": 8}))
    with torch.no_grad():  # make the adapter non-zero so it changes the output
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.fill_(0.05)
    peft_model.save_pretrained(tmp_path / "adapter")
    model, proc = load_policy(tiny_dir, adapters=tmp_path / "adapter")
    plain, _ = load_policy(tiny_dir)
    assert isinstance(model, PeftModel)
    b = proc(text=["<|vision_start|><|image_pad|><|vision_end|>hi"], images=[Image.new("RGB", (56, 56))], return_tensors="pt")
    with torch.no_grad():
        assert not torch.allclose(model(**b).logits, plain(**b).logits)
        assert torch.allclose(model(**b).logits, peft_model.eval()(**b).logits, atol=1e-5)
    with pytest.raises(FileNotFoundError):
        load_policy(tiny_dir, adapters=tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="adapter_config.json"):
        load_policy(tiny_dir, adapters=tmp_path / "empty")
    with pytest.raises(ValueError, match="quantization"):
        load_policy(tiny_dir, quantization="int3")


def test_stock_qwen_processor_layout_loads_without_torchvision(tiny_dir: Path, tmp_path: Path):
    """A checkpoint saved with the stock Qwen2_5_VLProcessor (video section included) is
    served by the image-only processor when torchvision is missing; videos are refused."""
    import shutil

    from transformers.utils import is_torchvision_available

    if is_torchvision_available():
        pytest.skip("torchvision installed: the stock processor is used")
    stock = tmp_path / "stock"
    shutil.copytree(tiny_dir, stock)
    (stock / "processing_qwen2_5_vl.py").unlink()
    cfg = json.loads((stock / "processor_config.json").read_text())
    cfg.pop("auto_map")
    cfg["image_processor"].pop("auto_map", None)
    cfg["processor_class"] = "Qwen2_5_VLProcessor"
    cfg["video_processor"] = {"video_processor_type": "Qwen2VLVideoProcessor", "merge_size": 2}
    (stock / "processor_config.json").write_text(json.dumps(cfg))
    proc = load_processor(stock, max_pixels=56 * 56)
    assert type(proc).__name__ == "Qwen2_5_VLImageOnlyProcessor"
    b = proc(text=["<|vision_start|><|image_pad|><|vision_end|>"], images=[Image.new("RGB", (112, 112))], return_tensors="pt")
    assert b["image_grid_thw"].tolist() == [[1, 8, 8]]  # 56 px in patches of 7
    with pytest.raises(ValueError, match="videos"):
        proc(text=["<|vision_start|><|video_pad|><|vision_end|>"], videos=[[Image.new("RGB", (56, 56))] * 2])


# ---------------------------------------------------------------------------- half precision on CPU
@pytest.mark.parametrize("dtype, torch_dtype", [("bfloat16", torch.bfloat16), ("float16", torch.float16)])
def test_half_precision_on_cpu_is_stated_in_one_log_line(tiny_dir: Path, caplog, dtype, torch_dtype):
    """dtype bfloat16 / float16 with device cpu: one warning line at load time says what
    happens, and what it says is what happens."""
    import logging

    from peft import get_peft_model

    from mmed.rl.grpo import trl_grpo_config

    with caplog.at_level(logging.INFO, logger="mmed.models.loading"):
        model, _ = load_policy(tiny_dir, dtype=dtype, device="cpu")
    lines = [r for r in caplog.records if r.name == "mmed.models.loading"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    msg = lines[0].getMessage()
    assert "\n" not in msg and f"dtype {dtype} on device cpu" in msg
    assert f"base weights load in {dtype}" in msg and "mixed precision is off" in msg
    assert "LoRA adapters are float32" in msg and "models.dtype: float32" in msg
    # the line's claims: base weights in the half dtype, LoRA in float32, no mixed precision
    assert {p.dtype for p in model.parameters()} == {torch_dtype}
    peft_model = get_peft_model(model, lora_config(load_profile("smoke").models.lora))
    assert {p.dtype for n, p in peft_model.named_parameters() if "lora_" in n} == {torch.float32}
    prof = load_profile("smoke", overrides={"models": {"dtype": dtype}})
    args = trl_grpo_config(prof.attending_grpo, prof, tiny_dir.parent / "grpo_args", max_steps=1)
    assert prof.device == "cpu" and not args.bf16 and not args.fp16


def test_float32_on_cpu_loads_without_a_word(tiny_dir: Path, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="mmed.models.loading"):
        load_policy(tiny_dir, dtype="float32", device="cpu")
    assert not [r for r in caplog.records if r.name == "mmed.models.loading"]
