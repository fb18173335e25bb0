"""Cold start: a short supervised warm-up that teaches a tiny agent the output format.

The tiny offline Qwen2.5-VL starts from random weights and cannot produce
``<think>…</think><answer>…</answer>`` at all, so GRPO would see only zero rewards. A few
steps of TRL's ``SFTTrainer`` on templated completions fix the format (``smoke``/``demo``
only; the ``paper`` profile starts from Qwen2.5-VL-Instruct and disables the cold start).

It teaches the format, not the task (DESIGN §6: a full SFT saturates a tiny model and
leaves GRPO nothing to learn): few steps (``cold_start.max_steps``), few items
(``cold_start.n_items``), and only a fraction ``cold_start.label_fraction`` of the targets
carry the gold answer — the rest carry a uniformly drawn *valid* answer, so the targets
teach "answer one option/specialty in the right tags" without fully teaching which one.
Format-valid rate and accuracy are measured before and after on held-out items (never on
an evaluation split).

Source: TRL ``SFTTrainer`` with conversational prompt-completion data + ``images``
(completion-only loss), as exercised in ``tests/test_trl_smoke.py``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Sequence

import datasets

from ..agents.generation import PolicyRunner, SamplingParams
from ..agents.parsing import has_valid_format, parse_choice, parse_specialty
from ..agents.prompts import attending_messages, choice_answer_text, templated_completion, triage_messages
from ..config import Profile
from ..data.schema import SPECIALTIES
from ..runs import write_json_atomic

COLD_START_AGENTS: tuple[str, ...] = ("triage", "attending")

#: short, label-free reasoning used in every cold-start target (format, not content)
REASONING = {
    "triage": "I look at the image type.",
    "attending": "I weigh the image and the opinions.",
}


def cold_start_targets(agent: str, items: Sequence[Any], label_fraction: float, seed: int) -> tuple[list[str], list[bool]]:
    """Templated target completions, and whether each carries the gold answer.

    For each item, with probability ``label_fraction`` the answer is the gold one
    (specialty for triage, option for the attending), otherwise a uniformly drawn valid
    answer (which may coincide with the gold by chance). Seeded.

    Raises:
        ValueError: unknown agent, label_fraction outside [0, 1], or an open item for the
            attending (cold start uses closed items).
    """
    if agent not in COLD_START_AGENTS:
        raise ValueError(f"agent {agent!r} not in {COLD_START_AGENTS}")
    if not 0.0 <= label_fraction <= 1.0:
        raise ValueError(f"label_fraction must be in [0, 1], got {label_fraction}")
    rng = random.Random(seed)
    targets, gold = [], []
    for it in items:
        use_gold = rng.random() < label_fraction
        if agent == "triage":
            ans = it["specialty"] if use_gold else rng.choice(SPECIALTIES)
            text = ans
        else:
            opts = list(it["options"] or [])
            if not opts:
                raise ValueError(f"item {it['id']!r}: open question in the attending cold start (closed items only)")
            idx = it["answer_idx"] if use_gold else rng.randrange(len(opts))
            text = choice_answer_text(idx, opts, with_text=False)
        targets.append(templated_completion(text, REASONING[agent]))
        gold.append(use_gold)
    return targets, gold


def agent_messages(agent: str, item: Any, opinions: Sequence[Any] | None, style: str) -> list[dict]:
    """The prompt an agent sees (same builders as inference)."""
    if agent == "triage":
        return triage_messages(item, style=style)
    return attending_messages(item, opinions or [], style=style)


def sft_dataset(
    agent: str, items: Sequence[Any], targets: Sequence[str], opinions: Sequence[Sequence[Any]] | None, style: str
) -> datasets.Dataset:
    """Conversational prompt-completion rows with ``images`` for TRL's ``SFTTrainer``."""
    if opinions is not None and len(opinions) != len(items):
        raise ValueError(f"{len(opinions)} opinion lists for {len(items)} items")
    return datasets.Dataset.from_dict(
        {
            "prompt": [agent_messages(agent, it, opinions[i] if opinions else None, style) for i, it in enumerate(items)],
            "completion": [[{"role": "assistant", "content": [{"type": "text", "text": t}]}] for t in targets],
            "images": [list(it["images"]) for it in items],
        }
    )


def format_and_accuracy(
    agent: str, runner: PolicyRunner, items: Sequence[Any], opinions: Sequence[Sequence[Any]] | None, style: str,
    max_new_tokens: int,
) -> dict[str, float]:
    """Greedy completions on ``items``: ``format_valid`` (has_valid_format), ``answer_valid``
    (parser accepted the answer) and ``accuracy`` (invalid = wrong); rates in [0, 1]; and
    ``answers``, the distribution of the parsed answers and distinct completions
    (:func:`mmed.eval.metrics.answer_distribution`)."""
    if not items:
        return {"n": 0, "format_valid": float("nan"), "answer_valid": float("nan"), "accuracy": float("nan")}
    msgs = [agent_messages(agent, it, opinions[i] if opinions else None, style) for i, it in enumerate(items)]
    raws = [r[0] for r in runner.generate(msgs, [list(it["images"]) for it in items], SamplingParams(max_new_tokens=max_new_tokens), progress=False)]
    fmt = ans = acc = 0
    parsed = []  # issue 11 guard: what the agent answered, for answer_distribution below
    for it, raw in zip(items, raws):
        fmt += has_valid_format(raw)
        if agent == "triage":
            p = parse_specialty(raw)
            ok = p.valid and p.value == it["specialty"]
            parsed.append(p.value if p.valid else None)
        else:
            p = parse_choice(raw, list(it["options"]))
            ok = p.valid and p.index == it["answer_idx"]
            parsed.append(p.index if p.valid else None)
        ans += p.valid
        acc += ok
    n = len(items)
    return {"n": n, "format_valid": fmt / n, "answer_valid": ans / n, "accuracy": acc / n,
            "answers": _answers(agent, items, parsed, raws)}


def _answers(agent: str, items: Sequence[Any], parsed: Sequence[Any], raws: Sequence[str]) -> dict[str, Any]:
    """:func:`mmed.eval.metrics.answer_distribution` of a cold-start evaluation (issue 11's
    degenerate-agent guard): specialties for the triage doctor, option letters for the attending."""
    from ..eval.metrics import answer_distribution

    if agent == "triage":
        return answer_distribution(parsed, raws, [it["specialty"] for it in items])
    return answer_distribution(parsed, raws, [int(it["answer_idx"]) for it in items], [list(it["options"]) for it in items])


def cold_start(
    agent: str,
    base_model: str,
    train_items: Sequence[Any],
    heldout_items: Sequence[Any],
    profile: Profile,
    out_dir: str | Path,
    train_opinions: Sequence[Sequence[Any]] | None = None,
    heldout_opinions: Sequence[Sequence[Any]] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the cold-start SFT of one agent and save the full model + processor to ``out_dir``.

    Args:
        agent: ``"triage"`` or ``"attending"``.
        base_model: folder of the tiny base model (``runs/<id>/models/base``).
        train_items: training-split items (the first ``cold_start.n_items`` are used).
        heldout_items: items to measure format-valid rate and accuracy before and after
            (never the evaluation split).
        train_opinions / heldout_opinions: the attending's panel opinions per item.
        seed: seeds target drawing and the trainer.
    Returns:
        the report (also written to ``out_dir/cold_start.json``): steps, items, share of
        gold targets, training loss first/last, ``before`` and ``after`` metrics, seconds.
    Raises:
        ValueError: bad agent, too few items.
    """
    import time

    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from ..models import load_policy

    cfg = profile.cold_start
    style = profile.sampling.prompt_style
    n = min(cfg.n_items, len(train_items))
    if n < 1:
        raise ValueError("cold start needs at least one training item")
    items = list(train_items[:n])
    ops = list(train_opinions[:n]) if train_opinions is not None else None
    targets, gold = cold_start_targets(agent, items, cfg.label_fraction, seed)
    ds = sft_dataset(agent, items, targets, ops, style)
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    model, processor = load_policy(base_model, min_pixels=profile.image.min_pixels, max_pixels=profile.image.max_pixels)
    runner = PolicyRunner(model, processor, batch_size=profile.sampling.batch_size, name=f"{agent} cold start")
    max_new = profile.sampling.max_new_tokens
    before = format_and_accuracy(agent, runner, heldout_items, heldout_opinions, style, max_new)
    args = SFTConfig(
        output_dir=str(out_dir / "trainer"),
        use_cpu=profile.device == "cpu",
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="constant",
        max_length=None,  # never truncate: it would cut image tokens
        seed=seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=processor)
    trainer.remove_callback(PrinterCallback)  # logs go to trainer.state.log_history, not stdout
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    trained = trainer.model
    trained.eval()
    runner = PolicyRunner(trained, processor, batch_size=profile.sampling.batch_size, name=f"{agent} cold start")
    after = format_and_accuracy(agent, runner, heldout_items, heldout_opinions, style, max_new)
    out_dir.mkdir(parents=True, exist_ok=True)
    trained.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    report = {
        "agent": agent,
        "steps": trainer.state.global_step,
        "n_items": n,
        "gold_target_fraction": sum(gold) / n,
        "label_fraction": cfg.label_fraction,
        "learning_rate": cfg.learning_rate,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "before": before,
        "after": after,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    write_json_atomic(out_dir / "cold_start.json", report)
    return report


def load_cold_start_report(out_dir: str | Path) -> dict[str, Any] | None:
    """The saved report of a finished cold start, or None."""
    p = Path(out_dir) / "cold_start.json"
    return json.loads(p.read_text()) if p.is_file() and (Path(out_dir) / "config.json").is_file() else None
