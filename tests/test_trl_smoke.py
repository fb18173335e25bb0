"""TRL's GRPOTrainer and SFTTrainer run on the tiny offline Qwen2.5-VL on CPU, with images:
LoRA, 4-bit QLoRA (bitsandbytes nf4), and the entropy bonus (docs/architecture.md#profiles,
docs/architecture.md#libraries, docs/architecture.md#environment-facts).

Working recipes (TRL 1.16, transformers 5.24), used by mmed/rl:
- GRPO dataset: ``prompt`` = list of messages whose user content holds an image
  placeholder part ``{"type": "image"}`` (no payload) and a text part; ``images`` = a list
  with one PIL image per row. TRL fills the placeholder from ``images``, applies the chat
  template itself, and never truncates prompts (no ``max_prompt_length`` in 1.16), so every
  ``<|image_pad|>`` token survives.
- SFT dataset: conversational prompt-completion (``prompt`` as above, ``completion`` =
  ``[{"role": "assistant", "content": [{"type": "text", "text": ...}]}]``) + ``images``;
  the loss covers completion tokens only (``completion_only_loss`` defaults to True for
  prompt-completion data), ``<|im_end|>`` included.
- CPU: ``use_cpu=True, bf16=False, gradient_checkpointing=False, report_to="none"``.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
import torch
from PIL import Image
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer

from mmed.config import load_profile
from mmed.models import build_tiny_qwen2_5_vl, load_policy, lora_config

SMOKE = load_profile("smoke")
COLOURS = {"red": "Radiologist", "green": "Pathologist", "blue": "Dermatologist", "yellow": "Surgeon"}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny") / "base", SMOKE.models.tiny)


def _prompt(question: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]


def vision_prompts(n: int, side: int = 56) -> datasets.Dataset:
    """GRPO-style rows: conversational prompt with an image placeholder + ``images``."""
    names = list(COLOURS)
    return datasets.Dataset.from_dict(
        {
            "prompt": [_prompt("Which specialist should see this case?") for _ in range(n)],
            "images": [[Image.new("RGB", (side, side), names[i % 4])] for i in range(n)],
            "specialty": [COLOURS[names[i % 4]] for i in range(n)],
        }
    )


def toy_reward(completions: list[list[dict]], specialty: list[str], **kwargs) -> list[float]:
    """1 when the gold specialty is named, else half the share of ASCII letters in the text
    (random completions differ in it, so groups have non-zero reward spread)."""
    out = []
    for completion, gold in zip(completions, specialty):
        text = completion[0]["content"]
        if gold.lower() in text.lower():
            out.append(1.0)
        else:
            out.append(0.5 * sum(ch.isascii() and ch.isalpha() for ch in text) / max(len(text), 1))
    return out


def cpu_grpo_config(out: Path, **overrides) -> GRPOConfig:
    """GRPOConfig for the tiny model on CPU (the smoke profile's triage GRPO sizes)."""
    g = SMOKE.triage_grpo
    kwargs = dict(
        output_dir=str(out),
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        max_steps=2,
        per_device_train_batch_size=g.per_device_train_batch_size,
        num_generations=g.num_generations,
        max_completion_length=g.max_completion_length,
        learning_rate=1e-2,
        beta=g.beta,
        loss_type=g.loss_type,
        temperature=1.0,
        seed=0,
        dataloader_num_workers=0,
    )
    kwargs.update(overrides)
    return GRPOConfig(**kwargs)


class VisionCalls:
    """Counts vision-tower forward passes and the image grids they saw."""

    def __init__(self, model: torch.nn.Module):
        tower = next(m for n, m in model.named_modules() if n.endswith("visual"))
        self.grids: list[list[int]] = []
        tower.register_forward_hook(lambda mod, args, kwargs, out: self.grids.extend(kwargs["grid_thw"].tolist()), with_kwargs=True)


def _lora_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def _run_grpo(tiny_dir: Path, tmp_path: Path, quantization: str | None):
    model, processor = load_policy(tiny_dir, quantization=quantization, min_pixels=SMOKE.image.min_pixels, max_pixels=SMOKE.image.max_pixels)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=toy_reward,
        args=cpu_grpo_config(tmp_path / "grpo"),
        train_dataset=vision_prompts(8),
        processing_class=processor,
        peft_config=lora_config(SMOKE.models.lora),
    )
    calls = VisionCalls(trainer.model)
    before = _lora_state(trainer.model)
    assert before, "no LoRA parameters"
    trainer.train()
    after = _lora_state(trainer.model)
    changed = [n for n in before if not torch.equal(before[n], after[n])]
    logs = [h for h in trainer.state.log_history if "reward" in h]
    return trainer, calls, before, changed, logs


def test_grpo_lora_two_steps_with_images(tiny_dir: Path, tmp_path: Path):
    trainer, calls, before, changed, logs = _run_grpo(tiny_dir, tmp_path, quantization=None)
    assert trainer.state.global_step == 2
    assert len(logs) == 2
    # every rollout and every loss forward ran the vision tower on the 56x56 images (4x4 patches)
    assert calls.grids and all(g == [1, 8, 8] for g in calls.grids)  # 56 px in patches of 7
    # LoRA B matrices start at zero, so step 1 moves B only; step 2 moves A too
    assert any("lora_B" in n for n in changed) and any("lora_A" in n for n in changed)
    assert len(changed) == len(before)
    assert all(0.0 <= h["reward"] <= 1.0 for h in logs)
    assert any(h["frac_reward_zero_std"] < 1.0 for h in logs)  # some group had a learning signal
    assert all(h["completions/max_length"] <= SMOKE.triage_grpo.max_completion_length for h in logs)


def test_grpo_qlora_nf4_two_steps(tiny_dir: Path, tmp_path: Path):
    import bitsandbytes as bnb

    trainer, calls, before, changed, logs = _run_grpo(tiny_dir, tmp_path, quantization="nf4")
    n4 = sum(isinstance(m, bnb.nn.Linear4bit) for m in trainer.model.modules())
    assert n4 >= 7 * SMOKE.models.tiny.num_hidden_layers  # base layers really are 4-bit
    assert trainer.state.global_step == 2 and len(logs) == 2
    assert calls.grids
    assert len(changed) == len(before)
    # the frozen 4-bit weights are not trainable
    assert all(not p.requires_grad for n, p in trainer.model.named_parameters() if "lora_" not in n)


def test_sft_prompt_completion_with_images_reduces_loss(tiny_dir: Path, tmp_path: Path):
    model, processor = load_policy(tiny_dir, min_pixels=SMOKE.image.min_pixels, max_pixels=SMOKE.image.max_pixels)
    rows = vision_prompts(32)
    rows = rows.add_column(
        "completion",
        [[{"role": "assistant", "content": [{"type": "text", "text": f"<think>colour</think><answer>{s}</answer>"}]}] for s in rows["specialty"]],
    )
    args = SFTConfig(
        output_dir=str(tmp_path / "sft"),
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        max_steps=20,
        per_device_train_batch_size=8,
        learning_rate=2e-2,
        max_length=None,
        seed=0,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=processor, peft_config=lora_config(SMOKE.models.lora))
    batch = trainer.data_collator([rows[0], rows[1]])
    image_token = model.config.image_token_id
    assert int((batch["input_ids"] == image_token).sum()) == 2 * 16  # 56x56 in patches of 7 -> 16 tokens each, none truncated
    supervised = batch["labels"][0][batch["labels"][0] != -100]
    assert processor.tokenizer.decode(supervised) == "<think>colour</think><answer>Radiologist</answer><|im_end|>\n"
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 20
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first - 0.3, losses


class GradCapture(TrainerCallback):
    """Keeps a copy of the LoRA gradients seen before the first optimizer step."""

    def __init__(self):
        self.grads: dict[str, torch.Tensor] | None = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if self.grads is None:
            self.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _first_step_grads(tiny_dir: Path, out: Path, coef_at_init: float, coef_after_init: float | None = None):
    model, processor = load_policy(tiny_dir, min_pixels=SMOKE.image.min_pixels, max_pixels=SMOKE.image.max_pixels)
    capture = GradCapture()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=toy_reward,
        args=cpu_grpo_config(out, max_steps=1, entropy_coef=coef_at_init, max_grad_norm=0.0),
        train_dataset=vision_prompts(4),
        processing_class=processor,
        peft_config=lora_config(SMOKE.models.lora),
        callbacks=[capture],
    )
    if coef_after_init is not None:
        trainer.entropy_coef = coef_after_init
    trainer.train()
    assert capture.grads
    return capture.grads


def test_entropy_coef_changes_the_gradient_only_when_set_at_construction(tiny_dir: Path, tmp_path: Path):
    """TRL decides at construction whether the entropy bonus is on
    (``trl/trainer/grpo_trainer.py``, docs/architecture.md#libraries). The same seed
    gives the same rollouts, so gradients differ only through the entropy term."""
    g0 = _first_step_grads(tiny_dir, tmp_path / "a", 0.0)
    g0_again = _first_step_grads(tiny_dir, tmp_path / "b", 0.0)
    g_ent = _first_step_grads(tiny_dir, tmp_path / "c", 0.5)
    g_late = _first_step_grads(tiny_dir, tmp_path / "d", 0.0, coef_after_init=0.5)
    assert set(g0) == set(g_ent) and g0
    # control: the runs are deterministic
    assert all(torch.equal(g0[n], g0_again[n]) for n in g0)
    # entropy_coef > 0 at construction changes the gradient
    scale = max(v.abs().max().item() for v in g0.values())
    assert scale > 0  # the policy term alone gives a gradient (rewards differ within groups)
    diff = max((g_ent[n] - g0[n]).abs().max().item() for n in g0)
    assert diff > 1e-3 * scale, (diff, scale)
    # setting it on an already-built trainer does nothing: the pitfall the curriculum must avoid
    assert all(torch.equal(g0[n], g_late[n]) for n in g0)
