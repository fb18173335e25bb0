"""Cold start: a short supervised warm-up that teaches a tiny agent the output format.

The tiny offline Qwen2.5-VL starts from random weights and cannot produce
``<think>…</think><answer>…</answer>`` at all, so GRPO would see only zero rewards. A few
steps of TRL's ``SFTTrainer`` on templated completions fix the format (``smoke``/``demo``
only; the ``paper`` profile starts from Qwen2.5-VL-Instruct and disables the cold start).

What the targets teach. An earlier cold start trained on one fixed
reasoning string and, for half the items, a random valid answer; the tiny attending's best
fit to that was a constant ("A" on every item), and GRPO never left it. The targets are now
*grounded*: the reasoning states what the agent can read from its input — the modality
for the triage doctor, the panel's letters and how many gave each for the attending — and
the answer follows from it (``cold_start.target``: ``"gold"``, or ``"majority"`` = follow
the stated tally), so the output depends on the input. ``cold_start.label_fraction`` of
the targets carry that answer, the rest a uniformly drawn valid one; the steps, the target
and the fraction are chosen on validation items by ``benchmarks/calibrate_testbed.py``
(``benchmarks/RESULTS.md``). Format-valid rate and accuracy are measured before and after
on held-out items (never on an evaluation split), with the answer distribution
(:func:`mmed.agents.scoring.answer_distribution`).

The training loss (and TRL's other SFT metrics) also go to TensorBoard, ``train/loss`` in the
folder the caller names (``runs/<id>/tensorboard/cold_start_<agent>_seed<k>``,
:mod:`mmed.rl.tensorboard_logs`).

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
from ..agents.scoring import answer_distribution
from ..config import Profile
from ..data.schema import SPECIALTIES, option_letter
from ..runs import write_json_atomic

COLD_START_AGENTS: tuple[str, ...] = ("triage", "attending")

#: what a cold-start target's answer is (``cold_start.target``): ``"gold"`` — the item's gold
#: answer; ``"majority"`` — the attending follows the panel's most frequent valid answer
#: (ties and an empty panel: the gold answer), i.e. the answer that follows from the stated
#: tally. The triage doctor always targets the gold specialty (its tally is the modality).
COLD_START_TARGETS: tuple[str, ...] = ("gold", "majority")


def panel_tally(opinions: Sequence[Any], n_options: int) -> list[int]:
    """How many valid, non-abstaining opinions chose each option: a list of ``n_options`` counts.

    ``opinions``: dicts or objects with ``parsed`` (option index), ``valid`` and
    ``abstained`` (the ``panel`` records of ``predictions.jsonl``). Invalid, abstaining or
    out-of-range opinions are not counted.
    """
    from ..data.schema import item_field

    counts = [0] * n_options
    for k, op in enumerate(opinions):
        where = f"opinion {k + 1}"
        parsed = item_field(op, "parsed", where)
        if item_field(op, "valid", where) and not item_field(op, "abstained", where) \
                and isinstance(parsed, int) and not isinstance(parsed, bool) and 0 <= parsed < n_options:
            counts[parsed] += 1
    return counts


def tally_reasoning(counts: Sequence[int]) -> str:
    """The attending's grounded reasoning: the panel's letters and how many gave each.

    ``[2, 1, 0, 0]`` → ``"Panel: A 2, B 1."``; no valid opinion → ``"Panel: none."``
    (letters in option order, options nobody chose left out).
    """
    parts = [f"{option_letter(i)} {c}" for i, c in enumerate(counts) if c > 0]
    return "Panel: " + (", ".join(parts) if parts else "none") + "."


def modality_reasoning(modality: str) -> str:
    """The triage doctor's grounded reasoning: the imaging modality it recognises.

    ``"synthetic-pet-oncology"`` → ``"Image: pet oncology."``; ``"dermoscopy"`` →
    ``"Image: dermoscopy."`` (the ``synthetic-`` prefix dropped, dashes and underscores
    read as spaces, lower case).

    Raises:
        ValueError: an empty modality.
    """
    text = str(modality or "").strip().lower()
    if text.startswith("synthetic-"):
        text = text[len("synthetic-"):]
    text = " ".join(text.replace("-", " ").replace("_", " ").split())
    if not any(ch.isalnum() for ch in text):
        raise ValueError(f"modality_reasoning: modality {modality!r} has no letter or digit")
    return f"Image: {text}."


def cold_start_targets(
    agent: str, items: Sequence[Any], label_fraction: float, seed: int,
    opinions: Sequence[Sequence[Any]] | None = None, target: str = "gold",
) -> tuple[list[str], list[bool]]:
    """Grounded target completions ``<think>what the agent sees</think><answer>…</answer>``,
    and whether each answer is the gold one.

    The reasoning states what the agent can read from its input: for the
    triage doctor the modality (:func:`modality_reasoning`), for the attending the panel's
    letters and counts (:func:`tally_reasoning`). The answer is, with probability
    ``label_fraction``, the one ``target`` names (``"gold"``: the gold answer;
    ``"majority"``: the attending follows the tally, ties and empty panels → gold), else a
    uniformly drawn valid answer (which may coincide by chance). Seeded.

    Args:
        agent: ``"triage"`` or ``"attending"``.
        items: closed items (schema of docs/architecture.md#item-schema) with ``modality``/``specialty`` (triage)
            or ``options``/``answer_idx`` (attending).
        label_fraction: in [0, 1].
        seed: seeds the draws.
        opinions: the attending's panel per item (required for the attending; may be empty
            lists — the "image only" attending, whose reasoning is then ``"Panel: none."``).
        target: one of :data:`COLD_START_TARGETS`.
    Returns:
        ``(targets, gold)``: one completion string per item, and whether its answer is gold.
    Raises:
        ValueError: unknown agent or target, label_fraction outside [0, 1], opinions missing
            or of the wrong length for the attending, or an open item for the attending.
    """
    if agent not in COLD_START_AGENTS:
        raise ValueError(f"agent {agent!r} not in {COLD_START_AGENTS}")
    if target not in COLD_START_TARGETS:
        raise ValueError(f"cold-start target {target!r} not in {COLD_START_TARGETS}")
    if not 0.0 <= label_fraction <= 1.0:
        raise ValueError(f"label_fraction must be in [0, 1], got {label_fraction}")
    if agent == "attending" and (opinions is None or len(opinions) != len(items)):
        got = "none" if opinions is None else len(opinions)
        raise ValueError(f"the attending's cold-start targets need one opinion list per item ({len(items)} items, got {got})")
    rng = random.Random(seed)
    targets, gold = [], []
    for i, it in enumerate(items):
        use_label = rng.random() < label_fraction
        if agent == "triage":
            ans = it["specialty"] if use_label else rng.choice(SPECIALTIES)
            text, reasoning, is_gold = ans, modality_reasoning(it["modality"]), ans == it["specialty"]
        else:
            opts = list(it["options"] or [])
            if not opts:
                raise ValueError(f"item {it['id']!r}: open question in the attending cold start (closed items only)")
            counts = panel_tally(opinions[i], len(opts))
            idx = int(it["answer_idx"])
            if target == "majority" and max(counts) > 0 and counts.count(max(counts)) == 1:
                idx = counts.index(max(counts))
            if not use_label:
                idx = rng.randrange(len(opts))
            text, reasoning, is_gold = choice_answer_text(idx, opts, with_text=False), tally_reasoning(counts), idx == it["answer_idx"]
        targets.append(templated_completion(text, reasoning))
        gold.append(is_gold)
    return targets, gold


def agent_cold_start(profile: Profile, agent: str) -> Any:
    """The ``cold_start`` settings for ``agent`` (a :class:`mmed.config.ColdStartSection`):
    the profile's, with the non-None keys of ``cold_start.triage`` applied for the triage
    doctor and of ``cold_start.attending`` for the attending (``max_steps``/``learning_rate``
    to the section's ``trl.SFTConfig`` keys, ``label_fraction`` to ours). The attending's
    image-only references clear ``cold_start.attending`` first
    (:func:`mmed.rl.cold_start.ensure_image_only_attending`): they keep the section's values.

    Raises:
        ValueError: ``agent`` is neither ``"triage"`` nor ``"attending"``.
    """
    import dataclasses

    if agent not in ("triage", "attending"):
        raise ValueError(f"unknown agent {agent!r}: expected 'triage' or 'attending'")
    cfg = profile.cold_start
    over = {k: v for k, v in dataclasses.asdict(getattr(cfg, agent)).items() if v is not None}
    if not over:
        return cfg
    trl_keys = {k: over.pop(k) for k in ("max_steps", "learning_rate") if k in over}
    return dataclasses.replace(cfg, trl={**cfg.trl, **trl_keys}, **over)


def agent_messages(agent: str, item: Any, opinions: Sequence[Any] | None, style: str) -> list[dict]:
    """The prompt an agent sees (same builders as inference)."""
    if agent == "triage":
        return triage_messages(item, style=style)
    return attending_messages(item, opinions or [], style=style)


def sft_dataset(
    agent: str, items: Sequence[Any], targets: Sequence[str], opinions: Sequence[Sequence[Any]] | None, style: str
) -> datasets.Dataset:
    """Conversational prompt-completion rows with ``images`` for TRL's ``SFTTrainer`` (the
    images stored losslessly as BMP: :func:`mmed.models.images.stored_losslessly`)."""
    from ..models.images import stored_losslessly

    if opinions is not None and len(opinions) != len(items):
        raise ValueError(f"{len(opinions)} opinion lists for {len(items)} items")
    return datasets.Dataset.from_dict(
        {
            "prompt": [agent_messages(agent, it, opinions[i] if opinions else None, style) for i, it in enumerate(items)],
            "completion": [[{"role": "assistant", "content": [{"type": "text", "text": t}]}] for t in targets],
            "images": [[stored_losslessly(im) for im in it["images"]] for it in items],
        }
    )


def format_and_accuracy(
    agent: str, runner: PolicyRunner, items: Sequence[Any], opinions: Sequence[Sequence[Any]] | None, style: str,
    max_new_tokens: int,
) -> dict[str, float]:
    """Greedy completions on ``items``: ``format_valid`` (has_valid_format), ``answer_valid``
    (parser accepted the answer) and ``accuracy`` (invalid = wrong); rates in [0, 1]; and
    ``answers``, the distribution of the parsed answers and distinct completions
    (:func:`mmed.agents.scoring.answer_distribution`)."""
    if not items:
        return {"n": 0, "format_valid": float("nan"), "answer_valid": float("nan"), "accuracy": float("nan")}
    msgs = [agent_messages(agent, it, opinions[i] if opinions else None, style) for i, it in enumerate(items)]
    raws = [r[0] for r in runner.generate(msgs, [list(it["images"]) for it in items], SamplingParams(max_new_tokens=max_new_tokens), progress=False)]
    fmt = ans = acc = 0
    parsed = []  # docs/architecture.md#degenerate-agent-guard: what the agent answered, for answer_distribution below
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
    """:func:`mmed.agents.scoring.answer_distribution` of a cold-start evaluation (the
    degenerate-agent guard, docs/architecture.md#degenerate-agent-guard): specialties for the
    triage doctor, option letters for the attending."""

    if agent == "triage":
        return answer_distribution(parsed, raws, [it["specialty"] for it in items])
    return answer_distribution(parsed, raws, [int(it["answer_idx"]) for it in items], [list(it["options"]) for it in items])



def sft_kwargs(cfg: Any, profile: Profile, output_dir: str | Path, seed: int) -> dict[str, Any]:
    """The keyword arguments of TRL's ``SFTConfig`` (``trl/trainer/sft_config.py``) for one
    agent's cold start (``cfg`` from :func:`agent_cold_start`), in increasing precedence:
    this code's settings (``bf16=False``, no activation checkpointing — under
    :func:`mmed.rl.grpo.checkpointing_key`'s name, so transformers warns about nothing —,
    ``report_to="tensorboard"``, no checkpoints, ``logging_steps=1``, a constant learning rate,
    ``dataloader_num_workers=0``, ``disable_tqdm``), which a profile may replace; the
    section's ``trl`` keys (the :class:`mmed.config.ColdStartSection` defaults, then the
    profile's, unchanged but for :func:`mmed.rl.grpo.current_checkpointing_names`); and the
    run's: ``output_dir``, ``seed``, ``use_cpu`` from ``profile.device`` and ``max_length=None``
    (never truncate: it would cut image tokens) — :data:`mmed.config.SFT_RESERVED`, which a
    profile cannot set.
    """
    from .grpo import checkpointing_key, current_checkpointing_names

    return {
        "bf16": False, checkpointing_key(): False, "report_to": "tensorboard", "save_strategy": "no", "logging_steps": 1,
        "lr_scheduler_type": "constant", "dataloader_num_workers": 0, "disable_tqdm": True,
        **current_checkpointing_names(cfg.trl),
        "output_dir": str(output_dir), "use_cpu": profile.device == "cpu", "max_length": None, "seed": seed,
    }

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
    tensorboard_dir: str | Path | None = None,
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
        tensorboard_dir: the folder of the training's TensorBoard event files (with
            ``report_to`` holding ``tensorboard``, the default); old event files there are
            removed first. None → ``out_dir/tensorboard``.
    Returns:
        the report (also written to ``out_dir/cold_start.json``): steps, items, share of
        gold targets, training loss first/last, ``before`` and ``after`` metrics (with the
        held-out panels), for an attending trained partly without opinions
        (``cold_start.no_panel_fraction`` > 0) also ``after_no_panel`` (the same items with
        empty panels: the attending alone; not when the held-out panels are empty already,
        as for the image-only references), seconds.
    Raises:
        ValueError: bad agent, too few items.
    """
    from ..config import torch_threads

    with torch_threads(profile.cold_start.threads):
        return _cold_start(agent, base_model, train_items, heldout_items, profile, out_dir, train_opinions, heldout_opinions, seed,
                           tensorboard_dir)


def _cold_start(
    agent: str, base_model: str, train_items: Sequence[Any], heldout_items: Sequence[Any], profile: Profile,
    out_dir: str | Path, train_opinions: Sequence[Sequence[Any]] | None, heldout_opinions: Sequence[Sequence[Any]] | None,
    seed: int, tensorboard_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The body of :func:`cold_start` (run under its thread count)."""
    import time

    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from ..models import load_policy
    from ..models.images import fit_dataset_images
    from .tensorboard_logs import tensorboard_logging_dir

    cfg = agent_cold_start(profile, agent)
    style = profile.sampling.prompt_style
    n = min(cfg.n_items, len(train_items))
    if n < 1:
        raise ValueError("cold start needs at least one training item")
    items = list(train_items[:n])
    ops = list(train_opinions[:n]) if train_opinions is not None else None
    targets, gold = cold_start_targets(agent, items, cfg.label_fraction, seed, ops, cfg.target)
    ds = sft_dataset(agent, items, targets, ops, style)
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    model, processor = load_policy(base_model, min_pixels=profile.image.min_pixels, max_pixels=profile.image.max_pixels)
    ds = fit_dataset_images(ds, processor.image_processor)  # resized once, not in every batch: same pixels
    runner = PolicyRunner(model, processor, batch_size=profile.sampling.batch_size, name=f"{agent} cold start")
    max_new = profile.sampling.max_new_tokens
    before = format_and_accuracy(agent, runner, heldout_items, heldout_opinions, style, max_new)
    args = SFTConfig(**sft_kwargs(cfg, profile, out_dir / "trainer", seed))
    from ..progress import progress_callbacks

    name = Path(tensorboard_dir).name if tensorboard_dir is not None else f"{agent} cold start"
    with tensorboard_logging_dir(out_dir / "tensorboard" if tensorboard_dir is None else tensorboard_dir, fresh=True):
        trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=processor,
                             callbacks=progress_callbacks(name))
    trainer.remove_callback(PrinterCallback)  # logs go to trainer.state.log_history, not stdout
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    trained = trainer.model
    trained.eval()
    runner = PolicyRunner(trained, processor, batch_size=profile.sampling.batch_size, name=f"{agent} cold start")
    after = format_and_accuracy(agent, runner, heldout_items, heldout_opinions, style, max_new)
    after_no_panel = None
    if agent == "attending" and cfg.no_panel_fraction > 0 and any(heldout_opinions or []):  # the attending alone
        after_no_panel = format_and_accuracy(agent, runner, heldout_items, [[] for _ in heldout_items], style, max_new)
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
        **({"after_no_panel": after_no_panel} if after_no_panel is not None else {}),
        "no_panel_fraction": cfg.no_panel_fraction if agent == "attending" else 0.0,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    write_json_atomic(out_dir / "cold_start.json", report)
    return report


def load_cold_start_report(out_dir: str | Path) -> dict[str, Any] | None:
    """The saved report of a finished cold start, or None."""
    p = Path(out_dir) / "cold_start.json"
    return json.loads(p.read_text()) if p.is_file() and (Path(out_dir) / "config.json").is_file() else None
