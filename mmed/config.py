"""Profiles: the three scales of docs/architecture.md#profiles as configuration, never as branches of logic.

A profile is a YAML file in ``mmed/profiles/`` (``smoke.yaml``, ``demo.yaml``,
``paper.yaml``) loaded into the typed dataclasses below. Unknown keys are rejected with
an error that names the file and the dotted key. A profile may hold named ``variants``:
each is an overlay (nested dict of keys) applied on top of the base profile by
:func:`load_profile(name, variant=...)` — the curriculum's ablation variants live there.

Training keys are the libraries' own: a key of ``triage_grpo`` / ``attending_grpo`` that is
not ours is a field of ``trl.GRPOConfig``, one of ``cold_start`` a field of ``trl.SFTConfig``,
one of ``models.lora`` a field of ``peft.LoraConfig``; each is checked against that class's
dataclass fields (:func:`library_fields`) and handed to it unchanged (:class:`PassThrough`),
so a new TRL or PEFT option needs no code. Our own keys (curriculum stages, γ schedule, data,
specialists, ``n_train_items`` ...) are our dataclasses' fields, named apart from theirs.

Every later part reads its settings from here (``profile.triage_grpo.num_generations``,
``profile.curriculum.stages`` ...), so the tiny CPU model and Qwen2.5-VL-7B go through
the same code with different numbers.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import functools
import importlib
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Optional, Union

import yaml

from .runs import user_cache_dir  # noqa: F401 - re-exported: mmed.config.user_cache_dir
from .data.schema import SPECIALTIES
from .data.specs import (
    ON_ERROR_CHOICES,
    benchmark_spec_problem,
    first_split,
    parse_benchmark_spec,
    split_problem,
)

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


class ProfileError(ValueError):
    """A profile file is invalid; the message names the file and the key."""


# ----------------------------------------------------------------------------------------
# sections
# ----------------------------------------------------------------------------------------
@dataclass
class SyntheticConfig:
    """The procedural synthetic set (``mmed.data.make_synthetic``)."""

    n_train: int = 700
    n_eval: int = 140
    image_size: int = 96  #: pixels per side (64..112)
    difficulty: float = 0.5  #: 0 = high contrast, no noise; 1 = faint and noisy
    seed: int = 0


@dataclass
class DataConfig:
    """Which data a profile uses. Real data is added when ``data_root`` is present.

    Benchmark entries (``eval_benchmarks``, ``train_benchmarks``) are
    ``"<name>[:<layout>][@<split>]"`` (:func:`mmed.data.specs.parse_benchmark_spec`): ``name`` one of
    :data:`mmed.data.KNOWN_BENCHMARKS` read from ``<data_root>/<name>``, ``layout`` one of
    that benchmark's layouts (:data:`mmed.data.loaders.LAYOUTS`; omitted = detected from
    the files), ``split`` (evaluation entries only) the split to evaluate instead of
    ``eval_split`` — e.g. ``"mmmu_med:hub@validation"``: MMMU's test split has no public
    answers. Rejected when the profile loads (:class:`ProfileError` naming the key): an
    unknown benchmark, layout or split, an evaluation entry whose split (its own, else
    ``eval_split``) its loader does not read, a training entry with a split suffix or
    without a ``train`` split (OmniMedVQA, MMMU).
    """

    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    #: evaluation benchmark(s) read from ``data_root`` when present: ``name:layout[@split]``
    eval_benchmarks: list[str] = field(default_factory=lambda: ["vqa_rad:mevf"])
    #: real training benchmark(s), split ``train``, read from ``data_root`` when present:
    #: ``name:layout``. Both agents' GRPO data (:func:`mmed.data.training.training_pool`):
    #: closed questions only, minus every item showing an image of an evaluation split
    #: (``eval_benchmarks`` on ``eval_split``). Empty = synthetic training data only.
    train_benchmarks: list[str] = field(default_factory=list)
    #: real benchmark(s) (``name:layout``, split ``train``) whose training pool — built as for
    #: ``train_benchmarks``, no evaluation image — the attending's *cold start* draws
    #: ``cold_start.real_share`` of its items from; empty = ``train_benchmarks``. Lets a profile
    #: cold-start on real items while its GRPO stays on the synthetic set (``demo``)
    cold_start_benchmarks: list[str] = field(default_factory=list)
    #: fraction (0..1, exclusive) of the real training pool held out, image-disjointly, as
    #: its ``validation`` split (the curriculum's held-out items)
    train_validation_fraction: float = 0.1
    #: split of every ``eval_benchmarks`` entry that names none (``@<split>``)
    eval_split: str = "test"
    #: cap on evaluation items per benchmark (None = all)
    eval_limit: Optional[int] = None
    include_open: bool = False
    #: fraction of real triage images held out for evaluation
    triage_heldout_fraction: float = 0.5
    #: row-error policy for the entries of ``eval_benchmarks`` and ``train_benchmarks`` (the
    #: training pool, evaluations, ``consult``; :func:`mmed.data.specs.row_error_policy`):
    #: ``skip`` (leave a bad row out - a missing field, an empty answer, a missing image, text
    #: that is not UTF-8 - count it and report it) or ``raise`` (stop with one line naming
    #: file, row and field); null = the default of each use (:data:`mmed.data.specs.ON_ERROR_DEFAULTS`: the
    #: training pool and evaluations skip; an evaluation that drops rows says so in its
    #: metrics and summary). The command line's ``--on-error`` overrides it.
    on_error: Optional[str] = None
    #: per-entry policy: ``{key: skip | raise}``, a key being an entry of ``eval_benchmarks`` /
    #: ``train_benchmarks`` as written (``"slake:official"``) or a benchmark name
    #: (``"slake"``: its entries in both lists); an exact entry wins over a name, both over
    #: ``on_error``
    on_error_by_entry: dict[str, str] = field(default_factory=dict)


@dataclass
class ImageConfig:
    """Image resolution handed to the processor (Qwen2.5-VL ``min_pixels``/``max_pixels``)."""

    min_pixels: int = 56 * 56
    max_pixels: int = 112 * 112


@dataclass
class TinyModelConfig:
    """Size of the offline tiny Qwen2.5-VL (all hidden sizes multiples of 64, docs/architecture.md#environment-facts)."""

    hidden_size: int = 128
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    vision_depth: int = 2
    vision_hidden_size: int = 64
    vision_intermediate_size: int = 128
    vision_num_heads: int = 2
    #: vision patch side in pixels (Qwen2.5-VL: 14); 7 gives a 96-pixel image 12 x 12 patches
    vision_patch_size: int = 14
    vocab_size: int = 1024
    seed: int = 0


@dataclass(frozen=True)
class PassThrough:
    """How a profile section hands its library keys on, unchanged (:func:`library_fields`).

    A section class that carries ``PASSTHROUGH`` takes two kinds of keys, written side by
    side in the YAML: its own (its dataclass fields, ours) and any init field of the library
    class ``target`` (e.g. ``"trl.GRPOConfig"``), which are collected in the field ``attr``
    (``trl``/``peft``) on top of that field's defaults and handed to the class as they are.
    ``reserved``: ``(key, where its value comes from)`` for the library keys the code sets
    itself (the run folder, the seed ...); a profile that sets one is refused.
    """

    attr: str
    target: str
    reserved: tuple[tuple[str, str], ...] = ()


class PassThroughSection:
    """Mixin of the profile sections with a :class:`PassThrough` (``GRPOSection``,
    ``ColdStartSection``, ``LoraSection``): a library key reads as an attribute
    (``profile.triage_grpo.num_generations`` is ``profile.triage_grpo.trl["num_generations"]``),
    and :meth:`to_dict` gives the section as the profile writes it (one flat mapping)."""

    PASSTHROUGH: ClassVar[PassThrough]

    def __getattr__(self, name: str) -> Any:
        # only reached when normal lookup fails; "_"-names (copy, pickle) never look inside
        if name.startswith("_"):
            raise AttributeError(name)
        mapping = self.__dict__.get(self.PASSTHROUGH.attr)
        if mapping is not None and name in mapping:
            return mapping[name]
        raise AttributeError(f"{type(self).__name__} has no key {name!r} (a {self.PASSTHROUGH.target} key that the "
                             f"profile does not set takes that class's default)")

    def __setattr__(self, name: str, value: Any) -> None:
        # an attribute beside the mapping would shadow the value handed to the library
        if name.startswith("_") or name in {f.name for f in dataclasses.fields(self)}:
            object.__setattr__(self, name, value)
            return
        raise AttributeError(f"{type(self).__name__}.{name}: not our key; a {self.PASSTHROUGH.target} key is set "
                             f"in .{self.PASSTHROUGH.attr}[{name!r}]")

    def to_dict(self) -> dict[str, Any]:
        """The section as one flat mapping: the library keys (defaults + the profile's), then
        our own keys, as a profile writes them (``load_profile`` reads it back)."""
        return _plain(self)


@dataclass
class LoraSection(PassThroughSection):
    """LoRA (and QLoRA) settings: ``models.lora``.

    Every key other than ``scope`` and ``target_regex`` is a field of ``peft.LoraConfig``
    (``peft/tuners/lora/config.py``: ``r``, ``lora_alpha``, ``lora_dropout``, ``bias``,
    ``use_rslora`` ...), handed to it unchanged by :func:`mmed.models.lora_config` on top
    of the defaults in ``peft`` below. ``target_modules`` is a list of module names that
    ``scope`` turns into PEFT's full-match regex (:func:`mmed.models.lora_target_modules`).
    """

    PASSTHROUGH: ClassVar[PassThrough] = PassThrough("peft", "peft.LoraConfig")

    #: which part of the model gets adapters: "language_model" (target_modules inside the
    #: language model only, not the vision tower) or "all" (every module of those names)
    scope: str = "language_model"
    #: a PEFT full-match regex over module paths; when set it replaces target_modules/scope
    target_regex: Optional[str] = None
    #: ``peft.LoraConfig`` keys: these defaults, then the profile's
    peft: dict[str, Any] = field(default_factory=lambda: {
        "r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    })


@dataclass
class PretrainConfig:
    """Pre-training of the tiny base on the synthetic set's free labels (``mmed.rl.pretrain``):
    the stand-in for the pretrained VLM the paper starts from. Tiny models only."""

    enabled: bool = False
    n_items: int = 3000  #: synthetic ``pretrain``-split items (a stream no other step uses)
    vision_steps: int = 2000  #: phase 1: vision tower + merger on per-token finding maps
    answer_steps: int = 900  #: phase 2: answer letter from image + question (no opinions)
    batch_size: int = 16
    vision_lr: float = 2e-3
    answer_lr: float = 1e-3
    freeze_vision: bool = True  #: phase 2 trains the merger and the language model only
    n_validation: int = 280  #: synthetic validation items measured before and after
    seed: int = 0
    #: reuse a base pre-trained with the same settings by any run (``$MMED_BASE_CACHE``,
    #: default ``~/.cache/mmed/base``), as a pretrained VLM is downloaded once
    cache: bool = True
    #: torch CPU threads while pre-training (None: the machine's cores; it runs alone)
    threads: Optional[int] = None
    #: use the base shipped with the package for these settings (``mmed/assets/base/<key>``,
    #: ``mmed.rl.pretrain.shipped_base_entry``) before the cache or a pre-training of one's
    #: own; false: the cache, else pre-train on this machine (its CPU arithmetic gives another base)
    shipped: bool = True


@dataclass
class ModelsConfig:
    """Policy models. ``"tiny"`` means the offline tiny Qwen2.5-VL built into the run."""

    triage: str = "tiny"
    attending: str = "tiny"
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    #: None (full precision + LoRA) or "nf4" (QLoRA: 4-bit NF4, double quant)
    quantization: Optional[str] = None
    #: compute dtype for 4-bit layers and model weights: float32 | bfloat16 | float16 (a half dtype
    #: on device cpu is logged at load time: mmed.models.cpu_half_precision_note, README "Profiles")
    dtype: str = "float32"
    lora: LoraSection = field(default_factory=LoraSection)
    attn_implementation: Optional[str] = None


@dataclass
class SimulatedPanelConfig:
    """The simulated specialist panel (controlled reliability)."""

    own_accuracy: float = 0.85  #: P(correct) on its own specialty's items
    other_accuracy: float = 0.45  #: P(correct) elsewhere (near chance on 2-4 options)
    consensus_error_rate: float = 0.15  #: P(the whole panel is wrong together)
    abstain_rate: float = 0.0


@dataclass
class OpenAIConfig:
    """An OpenAI-compatible specialist endpoint (GPT-4o, vLLM, llama.cpp, Ollama ...)."""

    model: str = "gpt-4o"
    base_url: Optional[str] = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    max_retries: int = 3
    max_concurrency: int = 8
    max_image_bytes: int = 512_000
    temperature: float = 0.7
    max_tokens: int = 512
    price_per_1k_prompt: Optional[float] = None
    price_per_1k_completion: Optional[float] = None
    #: prompt style of :mod:`mmed.agents.prompts` sent to the endpoint: "full" or "compact"
    prompt_style: str = "full"


@dataclass
class SpecialistsConfig:
    """The specialist panel: backend, size and per-backend settings."""

    backend: str = "simulated"  #: simulated | openai | local
    panel_size: int = 3
    simulated: SimulatedPanelConfig = field(default_factory=SimulatedPanelConfig)
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    #: for backend "local": a model path or Hub id loaded with ``load_policy``
    local_model: Optional[str] = None
    #: cache folder (None = the user's cache folder, ``~/.cache/mmed/specialists``)
    cache_dir: Optional[str] = None


@dataclass
class SamplingConfig:
    """Generation settings for the agents at inference."""

    temperature: float = 0.0  #: 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 48
    batch_size: int = 16
    #: prompt style of :mod:`mmed.agents.prompts`: "compact" (tiny models) or "full"
    prompt_style: str = "full"


@dataclass
class TriageConfig:
    """The triage doctor at inference (:class:`mmed.agents.triage.TriageDoctor`, paper §3)."""

    #: where a case goes when the policy's answer holds no valid specialty (counted as
    #: ``triage_fallbacks``): "random" (a uniform specialty seeded by the item id) or one
    #: of the seven specialties (:data:`mmed.data.schema.SPECIALTIES`), e.g. "Radiologist"
    fallback: str = "random"
    #: when real data is present, the triage cold start and triage GRPO also train on the
    #: real triage images' ``train`` part (:func:`mmed.rl.triage.load_real_triage`: split by
    #: image; no image of an evaluation split); the evaluation then covers the held-out part
    real_train: bool = False
    #: how the real training images are sampled: "none" (each image once) or "specialty"
    #: (each specialty's images repeated, seeded, up to ``real_balance_target`` items)
    real_balance: str = "none"
    #: with ``real_balance: specialty``: items per specialty (None = the largest specialty's
    #: image count); a specialty with more images keeps them all (never subsampled)
    real_balance_target: Optional[int] = None
    #: at most this share (0..1) of the triage cold start's ``cold_start.n_items`` items are
    #: real (a seeded sample of the real training items when they are more; the rest synthetic)
    real_cold_start_share: float = 0.5
    #: seed of the real images' train / held-out split; fixed per profile, not the training
    #: seed, so that every seed replicate holds out the same images
    real_split_seed: int = 0
    #: the question a real VQA-RAD image is asked in triage training and evaluation: "own"
    #: (one of that image's own VQA-RAD questions, a seeded draw per item and per training
    #: copy — what the pipeline asks the triage doctor on VQA-RAD) or "generic"
    #: (:data:`mmed.data.TRIAGE_QUESTION`). The other real images have no question of their
    #: own and always get the generic one.
    real_questions: str = "own"


@dataclass
class AgentColdStart:
    """Per-agent overrides of the cold start (None keeps the ``cold_start`` value)."""

    max_steps: Optional[int] = None
    learning_rate: Optional[float] = None
    label_fraction: Optional[float] = None


@dataclass
class ImageOnlyReal:
    """The image-only reference of the real datasets (``cold_start.image_only_real``;
    :func:`mmed.rl.cold_start.ensure_image_only_attending`): gold answers, no opinions."""

    #: at most this share of its ``cold_start.n_items`` items are the real cold-start pool's
    #: ``train`` items, the rest synthetic (as ``cold_start.real_share`` does for the attending); in (0, 1]
    real_share: float = 1.0
    #: draw its real items with as many gold "yes" as "no" answers within each organ
    #: (:func:`mmed.rl.cold_start.balance_yes_no`): no organ-wise answer prior to learn where
    #: the finding itself cannot be read. Off in every profile: measured on validation, it did
    #: not keep the reference off one letter (benchmarks/RESULTS.md, "image-only references")
    balance_yes_no: bool = False
    #: its steps / learning rate where they differ from the cold start's (None keeps them)
    max_steps: Optional[int] = None
    learning_rate: Optional[float] = None


#: ``trl.SFTConfig`` keys the cold start sets itself (:func:`mmed.rl.sft.cold_start`)
SFT_RESERVED: tuple[tuple[str, str], ...] = (
    ("output_dir", "the run folder"),
    ("seed", "the run's seed"),
    ("use_cpu", "the profile's 'device'"),
    ("max_length", "always None: truncation would cut image tokens"),
)


@dataclass
class ColdStartSection(PassThroughSection):
    """Short SFT warm-up teaching the output format (smoke/demo only; docs/architecture.md#base-model-and-cold-start): ``cold_start``.

    Every key not defined below is a field of ``trl.SFTConfig`` (``trl/trainer/sft_config.py``
    and the ``transformers.TrainingArguments`` it extends: ``max_steps``, ``learning_rate``,
    ``per_device_train_batch_size``, ``lr_scheduler_type``, ``weight_decay`` ...), handed to
    it unchanged on top of the defaults in ``trl`` below and of the cold start's own settings
    (:func:`mmed.rl.sft.cold_start`); :data:`SFT_RESERVED` are refused.
    """

    PASSTHROUGH: ClassVar[PassThrough] = PassThrough("trl", "trl.SFTConfig", SFT_RESERVED)

    enabled: bool = True
    n_items: int = 64
    #: fraction of cold-start targets whose answer is ``target``'s (the rest are uniformly
    #: drawn valid answers)
    label_fraction: float = 1.0
    #: the attending's target answer: "gold" or "majority" (follow the panel's tally; ties and
    #: empty panels -> gold); see mmed.rl.sft.cold_start_targets
    target: str = "gold"
    #: also train the attending's image-only references (no opinions, gold targets): on the
    #: synthetic ``train`` items (runs/<id>/attending/image_only) and, with real data, on the real
    #: cold-start pool (runs/<id>/attending/image_only_real): the "image only" row of the
    #: ablation table for the synthetic and the real datasets
    image_only: bool = False
    #: the attending: this share of its cold-start items (a seeded choice) is shown without
    #: opinions (prompt "(no specialist opinions)", reasoning ``Panel: none.``, gold answer), so
    #: that the attending alone (the "w/o specialists" ablation) reads the image and the question
    #: instead of meeting an empty panel it never saw in training; 0 = every item with its panel
    no_panel_fraction: float = 0.0
    #: the attending, when ``data.cold_start_benchmarks`` (else ``data.train_benchmarks``) is
    #: set and real data is present: at most this share of its ``n_items`` cold-start items are
    #: that training pool's ``train`` items (:func:`mmed.data.training.training_pool`: no
    #: evaluation image; a seeded sample when there are more), the rest synthetic; 0 = synthetic only
    real_share: float = 0.0
    #: torch CPU threads while cold-starting (None: the machine's cores; it runs alone)
    threads: Optional[int] = None
    #: the triage doctor's own steps / learning rate / label fraction where they differ: its
    #: 7-way modality task saturates in fewer steps than the attending's (GRPO then sees groups
    #: with equal rewards only)
    triage: AgentColdStart = field(default_factory=AgentColdStart)
    #: the attending's own steps / learning rate / label fraction where they differ (its
    #: image-only references keep the section's values: they are chosen for them)
    attending: AgentColdStart = field(default_factory=AgentColdStart)
    #: the image-only reference of the real datasets (``attending/image_only_real``, trained when
    #: ``image_only`` is set and real data is present): its share of real items, its own steps /
    #: learning rate where they differ
    image_only_real: ImageOnlyReal = field(default_factory=ImageOnlyReal)
    #: ``trl.SFTConfig`` keys: these defaults, then the profile's
    trl: dict[str, Any] = field(default_factory=lambda: {
        "max_steps": 20, "learning_rate": 1e-3, "per_device_train_batch_size": 8,
    })


#: ``trl.GRPOConfig`` keys the GRPO training sets itself (:func:`mmed.rl.grpo.trl_grpo_kwargs`)
GRPO_RESERVED: tuple[tuple[str, str], ...] = (
    ("output_dir", "the run folder"),
    ("seed", "the run's seed (--seed, eval.seeds)"),
    ("data_seed", "the run's seed (--seed, eval.seeds)"),
    ("use_cpu", "the profile's 'device'"),
    ("bf16", "the profile's 'device' and 'models.dtype'"),
    ("entropy_coef", "the curriculum stage's 'entropy_coef' (curriculum.stages[i].entropy_coef; 0 for the triage doctor)"),
)


@dataclass
class GRPOSection(PassThroughSection):
    """One agent's GRPO training: ``triage_grpo`` / ``attending_grpo``.

    Every key not defined below is a field of ``trl.GRPOConfig`` (``trl/trainer/grpo_config.py``
    and the ``transformers.TrainingArguments`` it extends: ``num_generations``,
    ``temperature``, ``beta``, ``loss_type``, ``top_k``, ``mask_truncated_completions`` ...),
    handed to it unchanged on top of the defaults in ``trl`` below and of the CPU/GPU settings
    of :func:`mmed.rl.grpo.trl_grpo_kwargs`; :data:`GRPO_RESERVED` are refused.
    """

    PASSTHROUGH: ClassVar[PassThrough] = PassThrough("trl", "trl.GRPOConfig", GRPO_RESERVED)

    #: training prompts drawn for this agent (synthetic items; the cap of the real pool too)
    n_train_items: int = 256
    #: this agent's LoRA scope, overriding ``models.lora.scope`` (None = use models.lora):
    #: "language_model" or "all" (vision tower too)
    lora_scope: Optional[str] = None
    #: triage only (0 in ``attending_grpo``): fraction of training prompts whose question is
    #: replaced by the generic triage question (``mmed.data.TRIAGE_QUESTION``), so the policy
    #: must read the image and not only the question's wording
    image_only_fraction: float = 0.0
    #: ``trl.GRPOConfig`` keys: these defaults, then the profile's
    trl: dict[str, Any] = field(default_factory=lambda: {
        "max_steps": 20, "learning_rate": 5e-4, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
        "num_generations": 4, "max_completion_length": 48, "temperature": 1.0, "beta": 0.0, "loss_type": "dapo",
        "logging_steps": 1, "save_steps": 10,
    })


@dataclass
class StageConfig:
    """One curriculum stage: which stratum, how many steps, which entropy coefficient γ.

    ``entropy_target`` (nats, optional) turns the stage's fixed bonus into a regulated one:
    TRL's adaptive entropy control (``use_adaptive_entropy``, Skywork-OR1) applies γ only
    while the mean per-token completion entropy of the last optimizer step is at or below
    the target, so the bonus cannot push the policy towards uniform. None = the paper's
    fixed γ (loss = L − γ·H at every step).
    """

    name: str = "easy"
    strata: list[str] = field(default_factory=lambda: ["easy"])  #: easy | medium | hard
    max_steps: int = 10
    entropy_coef: float = 0.0
    entropy_target: Optional[float] = None


@dataclass
class CurriculumConfig:
    """C-MARL curriculum (paper §4): stages in order, each warm-started from the last."""

    stages: list[StageConfig] = field(
        default_factory=lambda: [
            StageConfig("easy", ["easy"], 10, 0.0),
            StageConfig("medium", ["medium"], 10, 0.01),
            StageConfig("hard", ["hard"], 10, 0.05),
        ]
    )
    shuffle_strata: bool = False  #: True = one mixed stage (the "no curriculum" variant)
    #: which panel defines training strata: "gold" specialty or "triage" choice
    strata_panel: str = "gold"


@dataclass
class TTSConfig:
    """Test-time scaling by majority vote (paper §5)."""

    n_samples: int = 16
    budgets: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    temperature: float = 1.0
    n_eval_items: Optional[int] = None


@dataclass
class EvalConfig:
    """Evaluation settings."""

    bootstrap_samples: int = 1000
    confidence: float = 0.95
    #: training seeds of the seed replicates (:mod:`mmed.eval.replicates`, notebooks 03/04): the
    #: run's own seed trains in the run folder, every other one in ``runs/<id>/seeds/seed_<k>/``
    seeds: list[int] = field(default_factory=lambda: [0])
    #: the degenerate-agent guard (:func:`mmed.checks.degenerate_agents`, ``check-run``): an agent that gives one
    #: answer on more than this share of an evaluation's items, while the gold answers on the
    #: same items are not that skewed (their most frequent answer's share <= it), is degenerate
    degenerate_share: float = 0.9
    #: what ``check-run`` (CI, and the end of ``python -m mmed notebooks``) does with a
    #: degenerate agent: ``fail`` the run, or ``warn`` (print it, naming agent, split, share)
    degenerate_action: str = "fail"


@dataclass
class Profile:
    """A whole profile (docs/architecture.md#profiles). Build with :func:`load_profile`."""

    name: str = "custom"
    description: str = ""
    seed: int = 0
    device: str = "cpu"  #: cpu | cuda | auto
    #: torch CPU threads (``torch.set_num_threads``, see :func:`apply_torch_threads`); None
    #: = torch's default. Tiny models run fastest on 1 (thread sync costs more than it saves)
    torch_threads: Optional[int] = None
    #: worker processes for independent trainings (:mod:`mmed.parallel`: the cold starts,
    #: the triage seeds, the curricula, the test-time-scaling samples): None = the
    #: machine's usable cores; 1 = one after another in the calling process
    workers: Optional[int] = None
    #: notebooks ``python -m mmed notebooks`` runs at once: each starts as soon as the notebooks
    #: whose outputs it reads are done (:data:`mmed.notebook_guide.NOTEBOOK_NEEDS`), so that
    #: e.g. 03 and 04 (both read only 02) share the cores; 1 = one after another, in order
    notebooks_at_once: int = 1
    data: DataConfig = field(default_factory=DataConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    specialists: SpecialistsConfig = field(default_factory=SpecialistsConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    triage: TriageConfig = field(default_factory=TriageConfig)
    cold_start: ColdStartSection = field(default_factory=ColdStartSection)
    triage_grpo: GRPOSection = field(default_factory=GRPOSection)
    attending_grpo: GRPOSection = field(default_factory=GRPOSection)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    tts: TTSConfig = field(default_factory=TTSConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    #: wall-clock budget per notebook in minutes (documentation + CI checks), keyed by the
    #: notebook's two-digit prefix; the runner reports a notebook over it, and each notebook's
    #: requirement line states it (mmed.notebook_guide.notebook_requirements)
    budgets_min: dict[str, float] = field(default_factory=dict)
    #: the machine ``budgets_min`` are set for (e.g. "2 CPU cores"), said beside the budget
    budgets_hardware: Optional[str] = None
    #: named overlays (nested dicts of keys), applied by ``load_profile(..., variant=)``
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the variant applied to this object (None for the base profile)
    variant: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, as a profile file writes it (manifests; :func:`profile_from_dict`
        reads it back): every section with library keys is one flat mapping
        (:meth:`PassThroughSection.to_dict`)."""
        return _plain(self)


# ----------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------
def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _build(tp: Any, value: Any, where: str, source: str) -> Any:
    """Convert ``value`` to type ``tp`` recursively; raise ProfileError naming ``where``."""
    tp, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise ProfileError(f"{source}: key '{where}' must not be null")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ProfileError(f"{source}: key '{where}' must be a mapping, got {type(value).__name__}")
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        passthrough: PassThrough | None = getattr(tp, "PASSTHROUGH", None)
        if passthrough is not None:
            names.discard(passthrough.attr)
            library = {k: v for k, v in value.items() if k not in names}
            value = {k: v for k, v in value.items() if k in names}
        unknown = sorted(set(value) - names)
        if unknown:
            raise ProfileError(
                f"{source}: unknown key(s) {', '.join(repr(f'{where}.{u}'.lstrip('.')) for u in unknown)}; "
                f"known keys here: {sorted(names)}{_did_you_mean(unknown, names)}"
            )
        kwargs = {k: _build(hints[k], v, f"{where}.{k}".lstrip("."), source) for k, v in value.items()}
        if passthrough is not None:
            kwargs[passthrough.attr] = {**getattr(tp(), passthrough.attr),
                                        **_library_keys(passthrough, library, names, where, source)}
        return tp(**kwargs)
    origin = typing.get_origin(tp)
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ProfileError(f"{source}: key '{where}' must be a list, got {type(value).__name__}")
        return [_build(inner, v, f"{where}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ProfileError(f"{source}: key '{where}' must be a mapping, got {type(value).__name__}")
        _, vt = typing.get_args(tp)
        return {k: _build(vt, v, f"{where}.{k}", source) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProfileError(f"{source}: key '{where}' must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProfileError(f"{source}: key '{where}' must be an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ProfileError(f"{source}: key '{where}' must be true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ProfileError(f"{source}: key '{where}' must be a string, got {value!r}")
        return value
    raise ProfileError(f"{source}: unsupported type {tp} at '{where}'")  # pragma: no cover


#: where :func:`library_fields` keeps the field lists it read (``$MMED_FIELDS_CACHE``, else
#: ``$XDG_CACHE_HOME/mmed/fields``, ``~/.cache/mmed/fields``)
FIELDS_CACHE_ENV = "MMED_FIELDS_CACHE"
_LIBRARIES = ("trl", "transformers", "peft")


def fields_cache_dir() -> Path:
    """``$MMED_FIELDS_CACHE`` when set, else ``$XDG_CACHE_HOME/mmed/fields`` (``~/.cache/mmed/fields``).
    Not created here."""
    return user_cache_dir("fields", FIELDS_CACHE_ENV)


@functools.lru_cache(maxsize=None)
def library_fields(target: str) -> dict[str, tuple[str | None, bool]]:
    """The init fields of a library configuration dataclass — the keys a profile section may
    pass through to it (:class:`PassThrough`) — as ``{name: (type, nullable)}``: ``type`` is
    ``"int"``, ``"float"``, ``"bool"`` or ``"str"`` for a field annotated with one of those
    (or with ``X | None``; ``nullable`` then says whether None is allowed), None for any other
    annotation (the library checks such values itself when the configuration is built).

    Args:
        target: ``"<module>.<class>"``: ``"trl.GRPOConfig"`` (``trl/trainer/grpo_config.py``),
            ``"trl.SFTConfig"`` (``trl/trainer/sft_config.py``), both extending
            ``transformers.TrainingArguments`` (``transformers/training_args.py``), or
            ``"peft.LoraConfig"`` (``peft/tuners/lora/config.py``).

    Reading them imports the class, which imports transformers' training arguments: about
    11 s on a 2-core CPU, against 2 s for a whole profile load without it. So the list is kept
    in :func:`fields_cache_dir` under the installed versions of trl, transformers and peft,
    and read from there while those versions stay (an unreadable cache file is rebuilt).

    Raises:
        ImportError, AttributeError: no such module or class; TypeError: not a dataclass.
    """
    from importlib import metadata

    versions = []
    for lib in _LIBRARIES:
        try:
            versions.append(f"{lib}-{metadata.version(lib)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{lib}-none")
    path = fields_cache_dir() / f"{target}--{'--'.join(versions)}.json"
    try:
        cached = json.loads(path.read_text())
        return {k: (v[0], bool(v[1])) for k, v in cached.items()}
    except (OSError, ValueError, TypeError, IndexError, AttributeError):
        pass
    fields = _read_library_fields(target)
    try:  # best effort: a read-only cache folder only costs the import next time
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(fields, indent=0, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass
    return fields


def _read_library_fields(target: str) -> dict[str, tuple[str | None, bool]]:
    """:func:`library_fields` without the cache: imports ``target`` and reads its fields."""
    module, _, name = target.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    out = {}
    for f in dataclasses.fields(cls):
        if f.init:
            simple = _simple_type(f.type)
            out[f.name] = (simple[0].__name__, simple[1]) if simple else (None, True)
    return out


def _did_you_mean(unknown: list[str], known: Any) -> str:
    close = {u: difflib.get_close_matches(u, list(known), n=1) for u in unknown}
    hints = [f"{u!r} -> {c[0]!r}" for u, c in close.items() if c]
    return f"; did you mean {', '.join(hints)}?" if hints else ""


def _simple_type(annotation: Any) -> tuple[Any, bool] | None:
    """``(int|float|bool|str, optional)`` for a library field annotated with one of those
    (or ``X | None``, ``Optional[X]``; also as a string under postponed annotations), else
    None (the library checks such values itself when the configuration is built)."""
    simple = {"int": int, "float": float, "bool": bool, "str": str}
    if isinstance(annotation, str):
        text = annotation.replace(" ", "")
        if text.startswith("Optional[") and text.endswith("]"):
            text = text[len("Optional["):-1] + "|None"
        parts = text.split("|")
        rest = [p for p in parts if p != "None"]
        if len(rest) == 1 and rest[0] in simple:
            return simple[rest[0]], len(rest) < len(parts)
        return None
    tp, optional = _strip_optional(annotation)
    return (tp, optional) if tp in (int, float, bool, str) else None


def _library_keys(pt: PassThrough, keys: dict[str, Any], ours: set[str], where: str, source: str) -> dict[str, Any]:
    """The keys of a section that are not ours, checked against ``pt.target``'s fields:
    returned unchanged (a number stays the int or float the YAML wrote)."""
    if not keys:
        return {}
    fields = library_fields(pt.target)
    reserved = dict(pt.reserved)
    dotted = lambda k: f"{where}.{k}".lstrip(".")  # noqa: E731
    unknown = sorted(k for k in keys if k not in fields)
    if unknown:
        raise ProfileError(
            f"{source}: unknown key(s) {', '.join(repr(dotted(u)) for u in unknown)}: neither our key here "
            f"({sorted(ours)}) nor a field of {pt.target}{_did_you_mean(unknown, [*ours, *fields])}"
        )
    for k, v in keys.items():
        if k in reserved:
            raise ProfileError(f"{source}: key '{dotted(k)}' is set by the code, not by a profile: {reserved[k]}")
        type_name, optional = fields[k]
        if type_name is None:
            continue
        tp = {"int": int, "float": float, "bool": bool, "str": str}[type_name]
        if v is None:
            if not optional:
                raise ProfileError(f"{source}: key '{dotted(k)}' must not be null ({pt.target}.{k})")
        elif tp is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ProfileError(f"{source}: key '{dotted(k)}' must be a number ({pt.target}.{k}), got {v!r}")
        elif tp is int:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ProfileError(f"{source}: key '{dotted(k)}' must be an integer ({pt.target}.{k}), got {v!r}")
        elif not isinstance(v, tp):
            raise ProfileError(f"{source}: key '{dotted(k)}' must be a {tp.__name__} ({pt.target}.{k}), got {v!r}")
    return dict(keys)


def _plain(obj: Any) -> Any:
    """Dataclasses → plain dicts, a section with library keys flattened (its ``trl``/``peft``
    mapping first, then our keys), as a profile file writes it."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        pt = getattr(obj, "PASSTHROUGH", None)
        if pt is not None:
            out = {**out.pop(pt.attr), **out}
        return out
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return copy.deepcopy(obj)


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``overlay`` into a copy of ``base`` (lists are replaced)."""
    out = copy.deepcopy(base)
    for k, v in overlay.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


_VALID = {
    "device": ("cpu", "cuda", "auto"),
    "models.quantization": (None, "nf4", "fp4"),
    "models.dtype": ("float32", "bfloat16", "float16"),
    "models.lora.scope": ("language_model", "all"),
    "specialists.backend": ("simulated", "openai", "local"),
    "specialists.openai.prompt_style": ("compact", "full"),
    "curriculum.strata_panel": ("gold", "triage"),
    "cold_start.target": ("gold", "majority"),
    "eval.degenerate_action": ("fail", "warn"),
    "triage.real_balance": ("none", "specialty"),
    "triage.real_questions": ("own", "generic"),
}
STRATA: tuple[str, ...] = ("easy", "medium", "hard")


def _check(profile: Profile, source: str) -> None:
    def get(dotted: str) -> Any:
        obj: Any = profile
        for part in dotted.split("."):
            obj = getattr(obj, part)
        return obj

    for key, allowed in _VALID.items():
        if get(key) not in allowed:
            raise ProfileError(f"{source}: key '{key}' is {get(key)!r}, expected one of {allowed}")
    for i, st in enumerate(profile.curriculum.stages):
        bad = [s for s in st.strata if s not in STRATA]
        if bad or not st.strata:
            raise ProfileError(f"{source}: key 'curriculum.stages[{i}].strata' has {st.strata!r}, expected {STRATA}")
        if st.entropy_coef < 0:
            raise ProfileError(f"{source}: key 'curriculum.stages[{i}].entropy_coef' must be >= 0")
        if st.entropy_target is not None and not (st.entropy_target > 0 and st.entropy_coef > 0):
            raise ProfileError(f"{source}: key 'curriculum.stages[{i}].entropy_target' needs a target > 0 "
                               f"and entropy_coef > 0 (got target {st.entropy_target}, γ {st.entropy_coef})")
    if profile.triage.fallback != "random" and profile.triage.fallback not in SPECIALTIES:
        raise ProfileError(f"{source}: key 'triage.fallback' is {profile.triage.fallback!r}, "
                           f"expected 'random' or one of {SPECIALTIES}")
    if profile.triage.real_balance_target is not None and profile.triage.real_balance_target < 1:
        raise ProfileError(f"{source}: key 'triage.real_balance_target' must be >= 1 or null")
    if not 0.0 <= profile.cold_start.no_panel_fraction <= 1.0:
        raise ProfileError(f"{source}: key 'cold_start.no_panel_fraction' must be in [0, 1], "
                           f"got {profile.cold_start.no_panel_fraction}")
    if not 0.0 < profile.cold_start.image_only_real.real_share <= 1.0:
        raise ProfileError(f"{source}: key 'cold_start.image_only_real.real_share' must be in (0, 1], "
                           f"got {profile.cold_start.image_only_real.real_share}")
    if not 0.0 <= profile.cold_start.real_share <= 1.0:
        raise ProfileError(f"{source}: key 'cold_start.real_share' must be in [0, 1], got {profile.cold_start.real_share}")
    if not 0.0 <= profile.triage.real_cold_start_share <= 1.0:
        raise ProfileError(f"{source}: key 'triage.real_cold_start_share' must be in [0, 1], "
                           f"got {profile.triage.real_cold_start_share}")
    if profile.specialists.panel_size < 1:
        raise ProfileError(f"{source}: key 'specialists.panel_size' must be >= 1")
    if profile.specialists.openai.timeout_s is None or profile.specialists.openai.timeout_s <= 0:
        raise ProfileError(f"{source}: key 'specialists.openai.timeout_s' must be a positive number")
    for name in ("triage_grpo", "attending_grpo"):
        g: GRPOSection = getattr(profile, name)
        n_gen = g.trl.get("num_generations")
        if isinstance(n_gen, bool) or not isinstance(n_gen, int) or n_gen < 2:
            raise ProfileError(f"{source}: key '{name}.num_generations' must be >= 2 (GRPO needs a group)")
        batch = g.trl.get("per_device_train_batch_size", 8) * g.trl.get("gradient_accumulation_steps", 1)
        if batch % n_gen:
            raise ProfileError(
                f"{source}: '{name}.per_device_train_batch_size' x gradient_accumulation_steps must be "
                f"a multiple of num_generations ({n_gen})"
            )
        if g.lora_scope not in (None, "language_model", "all"):
            raise ProfileError(f"{source}: key '{name}.lora_scope' is {g.lora_scope!r}, expected None, 'language_model' or 'all'")
        if not 0.0 <= g.image_only_fraction <= 1.0:
            raise ProfileError(f"{source}: key '{name}.image_only_fraction' must be in [0, 1]")
    if profile.attending_grpo.image_only_fraction != 0.0:
        raise ProfileError(f"{source}: key 'attending_grpo.image_only_fraction' is for the triage doctor only; set it to 0")
    seeds = profile.eval.seeds
    if not seeds or len(set(seeds)) != len(seeds) or any(isinstance(x, bool) or x < 0 for x in seeds):
        raise ProfileError(f"{source}: key 'eval.seeds' must be a non-empty list of distinct ints >= 0, got {seeds!r}")
    if not 0.0 < profile.eval.degenerate_share < 1.0:
        raise ProfileError(f"{source}: key 'eval.degenerate_share' must be in (0, 1), got {profile.eval.degenerate_share!r}")
    if profile.workers is not None and profile.workers < 1:
        raise ProfileError(f"{source}: key 'workers' must be >= 1 or null")
    if isinstance(profile.notebooks_at_once, bool) or not isinstance(profile.notebooks_at_once, int) \
            or profile.notebooks_at_once < 1:
        raise ProfileError(f"{source}: key 'notebooks_at_once' must be an int >= 1, got {profile.notebooks_at_once!r}")
    if profile.torch_threads is not None and profile.torch_threads < 1:
        raise ProfileError(f"{source}: key 'torch_threads' must be >= 1 or null")
    for key in ("eval_benchmarks", "train_benchmarks", "cold_start_benchmarks"):
        specs = getattr(profile.data, key)
        for i, spec in enumerate(specs):
            problem = benchmark_spec_problem(spec) if isinstance(spec, str) else "not a string"
            if not problem:
                name, layout, split = parse_benchmark_spec(spec)
                if key != "eval_benchmarks" and split is not None:
                    problem = "training entries are read on their 'train' split; drop the '@<split>' suffix"
                elif key != "eval_benchmarks":
                    problem = split_problem(name, layout, "train")
                elif split is None and split_problem(name, layout, profile.data.eval_split):
                    problem = (f"it is read on data.eval_split, but {split_problem(name, layout, profile.data.eval_split)}; "
                               f"name the split in the entry, e.g. {spec + '@' + first_split(name, layout)!r}")
            if problem:
                raise ProfileError(f"{source}: key 'data.{key}[{i}]' is {spec!r}: {problem}")
        names = [parse_benchmark_spec(spec)[0] for spec in specs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ProfileError(f"{source}: key 'data.{key}' names {dup} more than once (one layout per benchmark)")
    if profile.data.on_error not in (None, *ON_ERROR_CHOICES):
        raise ProfileError(f"{source}: key 'data.on_error' is {profile.data.on_error!r}, expected one of "
                           f"{(None, *ON_ERROR_CHOICES)}")
    entries = [*profile.data.eval_benchmarks, *profile.data.train_benchmarks, *profile.data.cold_start_benchmarks]
    for key, value in profile.data.on_error_by_entry.items():
        if value not in ON_ERROR_CHOICES:
            raise ProfileError(f"{source}: key 'data.on_error_by_entry.{key}' is {value!r}, expected one of {ON_ERROR_CHOICES}")
        if key not in entries and key not in {parse_benchmark_spec(e)[0] for e in entries}:
            raise ProfileError(f"{source}: key 'data.on_error_by_entry.{key}' names no entry of data.eval_benchmarks "
                               f"or data.train_benchmarks (entries: {entries})")
    if not 0.0 < profile.data.train_validation_fraction < 1.0:
        raise ProfileError(f"{source}: key 'data.train_validation_fraction' must be in (0, 1), "
                           f"got {profile.data.train_validation_fraction}")


def profile_from_dict(raw: dict[str, Any], source: str = "<dict>", variant: str | None = None) -> Profile:
    """Build and validate a :class:`Profile` from a dict, optionally applying a variant.

    Raises:
        ProfileError: unknown key, wrong type, invalid value, or unknown variant (the
            message names ``source`` and the key).
    """
    raw = dict(raw or {})
    if variant is not None:
        variants = raw.get("variants") or {}
        if variant not in variants:
            raise ProfileError(f"{source}: unknown variant {variant!r}; known: {sorted(variants)}")
        overlay = variants[variant] or {}
        if "variants" in overlay:
            raise ProfileError(f"{source}: variant {variant!r} must not define 'variants'")
        raw = deep_merge(raw, overlay)
        raw["variant"] = variant
    profile = _build(Profile, raw, "", source)
    # the profile as loaded first (a mistake in the base is named as the base's), then every
    # variant's keys too, so a typo in an unused variant is caught early
    _check(profile, source if variant is None else f"{source} (variant {variant!r})")
    for vname, overlay in (raw.get("variants") or {}).items():
        if not isinstance(overlay, dict):
            raise ProfileError(f"{source}: variant {vname!r} must be a mapping")
        probe = deep_merge({k: v for k, v in raw.items() if k != "variants"}, overlay)
        _check(_build(Profile, probe, "", f"{source} (variant {vname!r})"), f"{source} (variant {vname!r})")
    return profile


def available_profiles() -> list[str]:
    """Names of the profiles shipped in ``mmed/profiles``."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_profile(name_or_path: str | Path, variant: str | None = None, overrides: dict[str, Any] | None = None) -> Profile:
    """Load a profile by name (``smoke``/``demo``/``paper``) or YAML path.

    Args:
        name_or_path: a shipped profile name or a path to a YAML file.
        variant: a key of the profile's ``variants`` to overlay, or None.
        overrides: a nested dict of keys applied last (e.g. from a notebook parameter).
    Raises:
        ProfileError: unknown profile name (lists the known ones), unknown key, bad value.
    """
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml"):
        p = PROFILES_DIR / f"{name_or_path}.yaml"
        if not p.exists():
            raise ProfileError(f"unknown profile {str(name_or_path)!r}; known: {available_profiles()}")
    elif not p.exists():
        raise ProfileError(f"profile file {str(p)!r} does not exist")
    with open(p) as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ProfileError(f"{p}: top level must be a mapping")
    if overrides:
        raw = deep_merge(raw, overrides)
    return profile_from_dict(raw, source=str(p), variant=variant)


def apply_torch_threads(profile: Profile) -> int:
    """Set torch's CPU thread count from ``profile.torch_threads`` (None: leave torch's
    default). Returns the thread count now in effect. Process-wide: call it once at the
    start of a notebook, command or benchmark."""
    import torch

    if profile.torch_threads is not None:
        torch.set_num_threads(profile.torch_threads)
    return torch.get_num_threads()



#: set by :mod:`mmed.parallel` in each worker process: the cores that worker may use (the
#: usable cores divided among the workers), what :func:`torch_threads` (None) gives a block
CORES_PER_PROCESS_ENV = "MMED_CORES_PER_PROCESS"


def cores_for_this_process() -> int:
    """The CPU cores a thread-hungry block of this process may use: ``$MMED_CORES_PER_PROCESS``
    in a worker process of :mod:`mmed.parallel` (its share of the cores), else the cores this
    process may run on (``os.sched_getaffinity``; ``os.cpu_count`` elsewhere)."""
    import os

    share = os.environ.get(CORES_PER_PROCESS_ENV)
    if share:
        return max(1, int(share))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def torch_threads(n: Optional[int]) -> Iterator[int]:
    """Run a block with ``n`` torch CPU threads (None: :func:`cores_for_this_process` — the
    machine's cores, or a worker process's share of them), then restore the previous count.
    For steps that scale with threads — the tiny base's pre-training and the cold starts
    (measured 1.5x faster on 2 cores than on 1, ``benchmarks/RESULTS.md``) — while GRPO
    trainings keep the profile's ``torch_threads``. Two workers that each took every core
    would run 4 threads on 2 cores, several times slower than one after another.

    Raises:
        ValueError: ``n`` < 1.
    """
    import torch

    if n is not None and n < 1:
        raise ValueError(f"torch_threads: need n >= 1 or None, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n or cores_for_this_process())
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
