"""GRPO set-up shared by the triage doctor and the attending physician (TRL ``GRPOTrainer``).

Nothing here is a home-made RL loop: :func:`train_grpo` builds TRL's ``GRPOConfig`` from a
profile section, a conversational dataset with images, the paper's reward functions
(:mod:`mmed.rl.rewards`: R = R_format + R_accuracy), LoRA through ``peft_config`` (or the
previous stage's adapters, for a warm start), and calls ``GRPOTrainer.train``. What it adds:

- one place that turns a profile into trainer arguments, with the CPU settings of
  docs/architecture.md#environment-facts (``use_cpu``, ``bf16=False``, no activation checkpointing) and QLoRA on GPU
  (the model is loaded in 4-bit by :func:`mmed.models.load_policy`);
- checkpoints every ``save_steps`` in ``out_dir/checkpoint-*`` and resume from the last
  one (same step, same adapter weights, same optimizer state);
- the final adapters in ``out_dir/final/`` and every logged step in
  ``out_dir/log_history.jsonl`` (TRL's metrics: ``reward``, ``reward_std``,
  ``frac_reward_zero_std`` = fraction of groups whose rewards are all equal,
  ``rewards/<fn>/mean``, ``entropy``, ``kl`` when β > 0, ``completions/mean_length``) plus
  ``format_valid`` (= ``rewards/format_reward/mean`` / 0.5);
- the same metrics as TensorBoard scalars (``train/reward``, ``train/entropy`` ...) through
  transformers' own ``report_to="tensorboard"``, in the folder the caller names
  (``runs/<id>/tensorboard/<name>``, :mod:`mmed.rl.tensorboard_logs`).

Prompts are never truncated (TRL 1.16 has no prompt truncation), so every image token
survives; ``max_completion_length`` caps completions only.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import datasets
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

from ..agents.prompts import attending_messages, triage_messages
from ..config import GRPOSection, Profile
from ..runs import write_json_atomic
from .rewards import FORMAT_REWARD, reward_funcs_for
from .tensorboard_logs import tensorboard_logging_dir

GRPO_AGENTS: tuple[str, ...] = ("triage", "attending")


def grpo_dataset(
    agent: str, items: Sequence[Any], opinions: Sequence[Sequence[Any]] | None = None, style: str = "compact",
    extra_columns: dict[str, Sequence[Any]] | None = None,
) -> datasets.Dataset:
    """Conversational GRPO rows: ``prompt`` (messages with image placeholders), ``images``,
    and the label columns the reward functions read (``specialty`` for triage;
    ``answer_idx`` and ``options`` for the attending), plus ``id`` and ``extra_columns``. The
    images are stored losslessly as BMP (:func:`mmed.models.images.stored_losslessly`).

    Args:
        opinions: for the attending, the panel's opinions on each item (required).
    Raises:
        ValueError: unknown agent, missing or mismatched opinions, or an open item for the
            attending (rewards score closed questions).
    """
    from ..models.images import stored_losslessly

    if agent not in GRPO_AGENTS:
        raise ValueError(f"agent {agent!r} not in {GRPO_AGENTS}")
    cols: dict[str, list[Any]] = {"id": [], "prompt": [], "images": []}
    if agent == "triage":
        cols["specialty"] = []
    else:
        if opinions is None or len(opinions) != len(items):
            raise ValueError("the attending's GRPO rows need one opinion list per item")
        cols["answer_idx"], cols["options"] = [], []
    for i, it in enumerate(items):
        cols["id"].append(str(it["id"]))
        cols["images"].append([stored_losslessly(im) for im in it["images"]])
        if agent == "triage":
            cols["prompt"].append(triage_messages(it, style=style))
            cols["specialty"].append(it["specialty"])
        else:
            if not it["options"]:
                raise ValueError(f"item {it['id']!r}: open question in attending GRPO (closed items only)")
            cols["prompt"].append(attending_messages(it, opinions[i], style=style))
            cols["answer_idx"].append(int(it["answer_idx"]))
            cols["options"].append(list(it["options"]))
    for k, v in (extra_columns or {}).items():
        if len(v) != len(items):
            raise ValueError(f"extra column {k!r} has {len(v)} values for {len(items)} items")
        cols[k] = list(v)
    return datasets.Dataset.from_dict(cols)


#: transformers' deprecated names of the activation (gradient) checkpointing arguments of
#: ``TrainingArguments`` → their names since the rename (transformers/training_args.py)
_CHECKPOINTING_RENAMED: dict[str, str] = {
    "gradient_checkpointing": "activation_checkpointing",
    "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs",
}


def checkpointing_key() -> str:
    """The name under which ``transformers.TrainingArguments`` (and so TRL's ``GRPOConfig``
    and ``SFTConfig``) takes activation checkpointing: ``activation_checkpointing`` in a
    transformers that has that field — where ``gradient_checkpointing`` is a deprecated
    alias that warns (FutureWarning, transformers/training_args.py) — else
    ``gradient_checkpointing``."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def current_checkpointing_names(kw: dict[str, Any]) -> dict[str, Any]:
    """``kw`` with transformers' deprecated ``gradient_checkpointing[_kwargs]`` (a profile's
    ``trl`` key, say) under their current names (:func:`checkpointing_key`), so that the
    trainer arguments warn about nothing; unchanged where transformers has only the old names."""
    if checkpointing_key() == "gradient_checkpointing":
        return kw
    return {_CHECKPOINTING_RENAMED.get(k, k): v for k, v in kw.items()}


def trl_grpo_kwargs(
    g: GRPOSection, profile: Profile, output_dir: str | Path, *, max_steps: int | None = None,
    entropy_coef: float = 0.0, seed: int = 0, **overrides: Any,
) -> dict[str, Any]:
    """The keyword arguments of TRL's ``GRPOConfig`` (``trl/trainer/grpo_config.py``) for a
    profile's GRPO section (``triage_grpo``/``attending_grpo``), in increasing precedence:

    1. the run's settings: ``output_dir``, ``seed``/``data_seed`` = ``seed``, ``use_cpu`` and
       ``bf16`` from ``profile.device``/``models.dtype``, and the defaults of this code
       (activation checkpointing on GPU only, under :func:`checkpointing_key`'s name;
       ``report_to="tensorboard"``, step checkpoints,
       ``dataloader_num_workers=0``, ``disable_tqdm``), which a profile may replace;
    2. the section's ``trl`` keys: the :class:`mmed.config.GRPOSection` defaults, then every
       TRL key the profile sets, unchanged (the profile loader checked them against
       ``trl.GRPOConfig``'s fields and refused :data:`mmed.config.GRPO_RESERVED`) but for
       transformers' deprecated ``gradient_checkpointing[_kwargs]``, passed under their
       current names (:func:`current_checkpointing_names`);
    3. ``max_steps`` (when not None), ``entropy_coef`` (TRL's entropy bonus: loss = L − coef · H,
       H the mean per-token entropy of completion tokens; TRL reads it at construction only:
       docs/architecture.md#libraries, ``trl/trainer/grpo_trainer.py``),
       then ``overrides`` (e.g. :func:`mmed.rl.curriculum.entropy_trl_args`).
    """
    on_cpu = profile.device == "cpu"
    kw: dict[str, Any] = dict(
        output_dir=str(output_dir),
        use_cpu=on_cpu,
        bf16=(not on_cpu) and profile.models.dtype == "bfloat16",
        report_to="tensorboard",
        save_strategy="steps",
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    kw[checkpointing_key()] = not on_cpu
    kw.update(current_checkpointing_names(g.trl))
    if max_steps is not None:
        kw["max_steps"] = max_steps
    kw["entropy_coef"] = float(entropy_coef)
    kw.update(overrides)
    return kw


def trl_grpo_config(
    g: GRPOSection, profile: Profile, output_dir: str | Path, *, max_steps: int | None = None,
    entropy_coef: float = 0.0, seed: int = 0, **overrides: Any,
) -> Any:
    """TRL ``GRPOConfig`` built from :func:`trl_grpo_kwargs` (same arguments).

    Raises:
        ValueError, TypeError: what ``trl.GRPOConfig`` raises for a value it refuses (e.g. a
            batch that is not a multiple of ``num_generations``).
    """
    from trl import GRPOConfig

    return GRPOConfig(**trl_grpo_kwargs(g, profile, output_dir, max_steps=max_steps, entropy_coef=entropy_coef,
                                        seed=seed, **overrides))


class StepLog(TrainerCallback):
    """Appends every logged step to ``path`` (JSON lines) with ``format_valid`` derived from
    the format reward, and the ``stage`` tag when given (curriculum plots)."""

    def __init__(self, path: str | Path, tags: dict[str, Any] | None = None):
        self.path = Path(path)
        self.tags = dict(tags or {})

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "reward" not in logs:
            return
        rec = {"step": state.global_step, **self.tags, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}}
        fmt = logs.get("rewards/format_reward/mean")
        if fmt is not None:
            rec["format_valid"] = fmt / FORMAT_REWARD
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")


def agent_lora(profile: Profile, section: GRPOSection) -> Any:
    """The LoRA settings of one agent: ``profile.models.lora`` with the GRPO section's
    ``lora_scope`` (when set) in place of ``models.lora.scope``."""
    import dataclasses

    lora = profile.models.lora
    return lora if section.lora_scope is None else dataclasses.replace(lora, scope=section.lora_scope)


def last_checkpoint(out_dir: str | Path) -> Path | None:
    """The highest ``checkpoint-<step>`` folder under ``out_dir`` holding a trainer state."""
    cks = [p for p in Path(out_dir).glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(cks, key=lambda p: int(p.name.split("-")[1])) if cks else None


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The step records written by :class:`StepLog` (empty when none); a torn last line
    (killed process) is ignored."""
    p = Path(path)
    if not p.is_file():
        return []
    out = []
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


@dataclass
class GRPOResult:
    """What :func:`train_grpo` did. ``final`` is the adapter folder."""

    out_dir: str
    final: str
    steps: int
    resumed_from: str | None
    seconds: float
    entropy_coef: float
    n_train: int
    log: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("log")
        vals = [r for r in self.log if "reward" in r]
        if vals:
            d["reward_first"] = vals[0]["reward"]
            d["reward_last"] = vals[-1]["reward"]
            d["frac_reward_zero_std_mean"] = sum(r.get("frac_reward_zero_std", math.nan) for r in vals) / len(vals)
        return d


def train_grpo(
    agent: str,
    base_model: str,
    train_dataset: datasets.Dataset,
    profile: Profile,
    out_dir: str | Path,
    *,
    init_adapters: str | Path | None = None,
    max_steps: int | None = None,
    entropy_coef: float = 0.0,
    seed: int = 0,
    reward_funcs: Sequence[Callable[..., list[float]]] | None = None,
    log_tags: dict[str, Any] | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    resume: bool = True,
    trl_overrides: dict[str, Any] | None = None,
    tensorboard_dir: str | Path | None = None,
) -> GRPOResult:
    """Train one agent with TRL's ``GRPOTrainer`` and save its LoRA adapters.

    Args:
        agent: ``"triage"`` or ``"attending"`` (chooses the reward functions and the
            profile section ``triage_grpo``/``attending_grpo``).
        base_model: the policy's base (a cold-started tiny model folder, or a Hub id).
        train_dataset: rows from :func:`grpo_dataset`.
        out_dir: checkpoints, ``final/`` adapters, ``log_history.jsonl``, ``result.json``.
        init_adapters: adapters to continue from (a curriculum's previous stage); None →
            fresh LoRA from ``profile.models.lora`` (scope: the section's ``lora_scope``
            when set, :func:`agent_lora`).
        max_steps: overrides the profile section's ``max_steps`` (an int >= 1; ValueError otherwise).
        entropy_coef: TRL's entropy bonus coefficient γ (0 = none).
        reward_funcs: default :func:`mmed.rl.rewards.reward_funcs_for(agent)`.
        resume: continue from the last checkpoint in ``out_dir`` when there is one.
        trl_overrides: further TRL ``GRPOConfig`` arguments (e.g. the adaptive entropy
            control of :func:`mmed.rl.curriculum.entropy_trl_args`).
        tensorboard_dir: the folder of this training's TensorBoard event files (with the
            profile's ``report_to`` holding ``tensorboard``, the default); None →
            ``out_dir/tensorboard``. A fresh start (no checkpoint) removes old event files
            there; a resume adds one.
    Returns:
        a :class:`GRPOResult`; when ``out_dir/final`` already exists, the saved result is
        returned without training (a finished step is reused, docs/architecture.md#one-training-step).
    """
    from trl import GRPOTrainer

    from ..models import load_policy, lora_config
    from ..models.images import fit_dataset_images

    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        # transformers reads max_steps <= 0 as "train by epochs": never what an override means here
        raise ValueError(f"max_steps must be an int >= 1 (or None for the profile's), got {max_steps!r}")
    out_dir = Path(out_dir)
    final = out_dir / "final"
    if (final / "adapter_config.json").is_file() and (out_dir / "result.json").is_file():
        saved = json.loads((out_dir / "result.json").read_text())
        return GRPOResult(**{**saved, "log": read_log(out_dir / "log_history.jsonl")})
    section = profile.triage_grpo if agent == "triage" else profile.attending_grpo
    t0 = time.perf_counter()
    device = "cuda" if profile.device == "cuda" else ("auto" if profile.device == "auto" else "cpu")
    model, processor = load_policy(
        base_model, adapters=init_adapters, quantization=profile.models.quantization, dtype=profile.models.dtype,
        device=device, min_pixels=profile.image.min_pixels, max_pixels=profile.image.max_pixels,
        attn_implementation=profile.models.attn_implementation, trainable_adapters=init_adapters is not None,
    )
    # every image resized once to what the processor makes of it, not at every step: the same pixels
    train_dataset = fit_dataset_images(train_dataset, getattr(processor, "image_processor", None))
    args = trl_grpo_config(section, profile, out_dir, max_steps=max_steps, entropy_coef=entropy_coef, seed=seed,
                           **(trl_overrides or {}))
    resume_from = last_checkpoint(out_dir) if resume else None
    if resume_from is None and (out_dir / "log_history.jsonl").exists():
        (out_dir / "log_history.jsonl").unlink()  # a fresh start: drop a log with no checkpoint behind it
    tb_dir = out_dir / "tensorboard" if tensorboard_dir is None else Path(tensorboard_dir)
    from ..progress import progress_callbacks

    with tensorboard_logging_dir(tb_dir, fresh=resume_from is None):
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=list(reward_funcs or reward_funcs_for(agent)),
            args=args,
            train_dataset=train_dataset,
            processing_class=processor,
            peft_config=None if init_adapters is not None else lora_config(agent_lora(profile, section)),
            callbacks=[StepLog(out_dir / "log_history.jsonl", log_tags), *callbacks,
                       *progress_callbacks(tb_dir.name if tensorboard_dir is not None else f"{agent} GRPO")],
        )
    trainer.remove_callback(PrinterCallback)  # metrics go to log_history.jsonl, not stdout
    if resume_from is not None:
        # drop log lines past the checkpoint: those steps are trained again
        step0 = int(resume_from.name.split("-")[1])
        kept = [r for r in read_log(out_dir / "log_history.jsonl") if r["step"] <= step0]
        (out_dir / "log_history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    trainer.model.save_pretrained(final)
    processor.save_pretrained(final)
    result = GRPOResult(
        out_dir=str(out_dir), final=str(final), steps=trainer.state.global_step,
        resumed_from=str(resume_from) if resume_from else None, seconds=round(time.perf_counter() - t0, 1),
        entropy_coef=float(entropy_coef), n_train=len(train_dataset), log=read_log(out_dir / "log_history.jsonl"),
    )
    write_json_atomic(out_dir / "result.json", {k: v for k, v in asdict(result).items() if k != "log"})
    return result
