"""C-MARL: curriculum GRPO for the attending physician (MMedAgent-RL, arXiv 2506.00555 v3, §4).

Every training case is stratified by ``s`` = fraction of the specialist panel that answered
correctly (:mod:`mmed.agents.stratify`): **easy** (s = 1), **medium** (0 < s < 1), **hard**
(s = 0). GRPO then runs stage by stage — by default Easy → Medium → Hard — with an entropy
bonus whose coefficient γ grows with difficulty (γ_easy ≈ 0: exploit reliable opinions;
γ_medium > 0: explore when they conflict; γ_hard ≫ γ_medium: resist a wrong consensus).

What this module does, and where each piece comes from:

- **Training data** (:func:`stratified_split`): the profile's synthetic ``train`` items
  (at most ``attending_grpo.n_train_items``; none when ``data.synthetic.n_train`` is 0)
  plus, when ``data.train_benchmarks`` is set and a data root resolves, the real training
  pool's ``train`` items (:func:`mmed.data.training.training_pool`: those benchmarks'
  train splits, closed questions, minus every item showing an evaluation image, at most
  ``attending_grpo.n_train_items``), each with the opinions of the panel of its
  *gold* specialty (``curriculum.strata_panel = "gold"``, docs/architecture.md#stratification; ``"triage"`` routes
  with the run's triage model instead); the attending's prompt contains those opinions
  (:func:`mmed.agents.prompts.attending_messages`). Held-out items (``validation``: the
  synthetic ones plus the pool's image-disjoint validation split; or synthetic ``test``)
  are stratified the same way. With an API panel the opinions come from the specialist
  cache when a ``consult`` run already asked for them.
- **One new TRL ``GRPOTrainer`` per stage** (:func:`train_stage` → :func:`mmed.rl.grpo.
  train_grpo`), on that stage's strata, with that stage's ``max_steps`` and entropy
  coefficient γ (TRL's ``entropy_coef``: loss = L − γ·H, H the mean per-token entropy of
  completion tokens). A new trainer per stage means a fresh optimizer and a fresh
  learning-rate schedule, and — the point of docs/architecture.md#libraries — TRL decides at construction
  whether the entropy term carries gradient, so γ must be known when the trainer is built.
  Stage 1 starts from the run's cold-started attending (fresh LoRA); stage k > 1 continues
  the LoRA adapters of stage k − 1 (``init_adapters``). β (KL) is the profile's
  ``attending_grpo.beta`` (0 in smoke/demo); when β > 0 the stage manifest records the
  reference policy — TRL's, i.e. the stage's starting policy (a frozen copy of the
  warm-start adapters, or the adapter-free model for a fresh LoRA).
- **Files** (docs/architecture.md#the-run-folder)::

      runs/<id>/attending/heldout_start_<split>.jsonl   held-out answers of the starting
                                                          (cold-started) policy, all variants
      runs/<id>/attending/<variant or "cmarl">/
        plan.json                      the stages (name, strata, steps, γ), β, seed, data
                                       (``train_data``: real benchmarks and counts)
        train_strata.json              stratified training set: counts per stratum, ...
        stage_<k>_<name>/
          checkpoint-*/                TRL/transformers checkpoints (every save_steps)
          final/                       the stage's LoRA adapters (+ processor)
          log_history.jsonl            one line per logged step, tagged with the stage
          result.json                  mmed.rl.grpo.GRPOResult
          heldout_<split>.jsonl        per-item held-out answers after the stage
          stage_manifest.json          stratum, n items, steps, γ, start/end, init
                                       adapters, held-out accuracy per stratum before/after

- **Resume**: a stage whose manifest says ``done`` is skipped; an unfinished stage resumes
  from its last checkpoint (same global step, adapters, optimizer and scheduler state —
  transformers' ``resume_from_checkpoint``), so a killed process loses at most
  ``save_steps`` steps and never retrains a finished stage.
- **Shared stages**: a stage whose training is the same as a finished stage of another
  variant in the same run folder — the same starting policy, earlier stages, rows, γ,
  steps, seed and settings (:func:`stage_keys`) — is copied from it instead of trained
  (``copied_from`` in its manifest): ``no_entropy``'s Easy stage is C-MARL's (γ = 0 in both).
  Training it again gives the same adapters (a test compares them); copying saves its time.
- **Variants** (profile ``variants``, docs/architecture.md#profiles) need no code of their own: a variant is
  another list of stages (``no_curriculum``: one stage on all strata, shuffled, γ = 0;
  ``no_entropy``; ``constant_entropy``; ``reverse``). The Easy-only and Easy+Medium models of
  the paper's ablation are this curriculum's ``stage_1`` and ``stage_2`` adapters.
- **Shortcut baselines** (:func:`shortcut_baselines`): *follow the panel's majority* and
  *contradict it*. On a yes/no Hard item (a unanimous wrong panel), contradicting is always
  right, so a Hard gain bought with an equal Easy loss is a learned contrarian, not the
  claimed behaviour.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..agents.scoring import accuracy_ci, answer_distribution
from ..agents.stratify import majority_vote, panel_answers, stratify
from ..config import STRATA, Profile, StageConfig, load_profile
from ..data.sets import synthetic_split
from ..runs import Run, write_json_atomic
from .cold_start import build_agents, ensure_cold_start, panel_opinions_gold
from .grpo import GRPOResult, grpo_dataset, read_log, train_grpo

if TYPE_CHECKING:
    from ..data.training import TrainingPool

#: held-out splits that may measure a stage: validation (synthetic + the real pool's) or test (synthetic)
HELDOUT_SPLITS: tuple[str, ...] = ("validation", "test")


def default_heldout_split(profile: Profile) -> str:
    """The held-out split the command line and notebook 04 measure stages on when none is
    given: ``"validation"`` when the profile trains on real benchmarks
    (``data.train_benchmarks``: their pool has only a validation part, and the paper
    profile has no synthetic test split), else ``"test"`` (the synthetic test split; the
    validation split was used to tune the demo)."""
    return "validation" if profile.data.train_benchmarks else "test"
#: the shortcut baselines of :func:`shortcut_baselines`
SHORTCUTS: tuple[str, ...] = ("follow_majority", "contradict_majority")
PLAN_FILE = "plan.json"
STRATA_FILE = "train_strata.json"
STAGE_MANIFEST = "stage_manifest.json"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# ----------------------------------------------------------------------------------------
# stratified items
# ----------------------------------------------------------------------------------------
@dataclass
class StratifiedSet:
    """Items with their panel's opinions and their stratum (one entry per item, aligned).

    Attributes:
        split: ``"train"``, ``"validation"`` or ``"test"``.
        items: item dicts (docs/architecture.md#item-schema; images decoded).
        opinions: per item, the K panel records (``predictions.jsonl`` ``panel`` entries).
        strata: per item, ``"easy"`` | ``"medium"`` | ``"hard"``.
        s: per item, the fraction of the panel that was right (in [0, 1]).
        agreement: per item, :func:`mmed.agents.stratify.agreement` of the panel.
        panel: ``"gold"`` or ``"triage"`` — whose panel stratified the items.
    """

    split: str
    items: list[dict[str, Any]]
    opinions: list[list[dict[str, Any]]]
    strata: list[str]
    s: list[float]
    agreement: list[str]
    panel: str = "gold"

    def __post_init__(self) -> None:
        n = len(self.items)
        for name in ("opinions", "strata", "s", "agreement"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"StratifiedSet: {name} has {len(getattr(self, name))} entries for {n} items")
        bad = sorted({st for st in self.strata if st not in STRATA})
        if bad:
            raise ValueError(f"StratifiedSet: unknown strata {bad}; expected {STRATA}")

    def __len__(self) -> int:
        return len(self.items)

    def indices(self, strata: Sequence[str]) -> list[int]:
        """Positions of the items whose stratum is in ``strata`` (in item order).

        Raises ``ValueError`` for a name not in :data:`mmed.config.STRATA`."""
        bad = [x for x in strata if x not in STRATA]
        if bad:
            raise ValueError(f"unknown strata {bad}; expected {STRATA}")
        return [i for i, st in enumerate(self.strata) if st in strata]

    def subset(self, idx: Sequence[int]) -> "StratifiedSet":
        """The items at positions ``idx`` (in that order)."""
        pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
        return StratifiedSet(self.split, pick(self.items), pick(self.opinions), pick(self.strata), pick(self.s),
                             pick(self.agreement), self.panel)

    def counts(self) -> dict[str, int]:
        """Items per stratum, every stratum present (0 when empty)."""
        return {st: sum(x == st for x in self.strata) for st in STRATA}

    def summary(self) -> dict[str, Any]:
        """What ``train_strata.json`` holds: counts per stratum, per (stratum, agreement) and
        per (stratum, number of options), the mean s, the panel used and the item ids."""
        by_agree: dict[str, dict[str, int]] = {st: {} for st in STRATA}
        by_opts: dict[str, dict[str, int]] = {st: {} for st in STRATA}
        for it, st, ag in zip(self.items, self.strata, self.agreement):
            by_agree[st][ag] = by_agree[st].get(ag, 0) + 1
            k = str(len(it["options"]))
            by_opts[st][k] = by_opts[st].get(k, 0) + 1
        return {
            "split": self.split,
            "panel": self.panel,
            "n": len(self),
            "counts": self.counts(),
            "by_agreement": by_agree,
            "by_n_options": by_opts,
            "mean_s": (sum(self.s) / len(self.s)) if self.s else None,
            "ids": {st: [str(it["id"]) for it, x in zip(self.items, self.strata) if x == st] for st in STRATA},
        }


def attending_pool(profile: Profile, data_root: str | Path | None, seed: int,
                   log: Callable[[str], None] | None = None) -> "TrainingPool | None":
    """The attending's real training pool (:func:`mmed.data.training.training_pool`, ``train``
    capped at ``attending_grpo.n_train_items``), or None when ``data.train_benchmarks`` is
    empty or no data root resolves (:func:`mmed.runs.resolve_data_root`: an explicit
    ``data_root`` that does not exist raises ``FileNotFoundError``)."""
    from ..data.training import training_pool
    from ..runs import resolve_data_root

    if not profile.data.train_benchmarks:
        return None
    root = resolve_data_root(data_root)
    if root is None:
        return None
    return training_pool(profile, root, cap=profile.attending_grpo.n_train_items, seed=seed, log=log)


def stratified_split(
    profile: Profile, split: str, seed: int, run: Run | None = None, n: int | None = None, panel: str | None = None,
    data_root: str | Path | None = None, *, pool: "TrainingPool | None" = None, n_real: int | None = None,
    log: Callable[[str], None] | None = None,
) -> StratifiedSet:
    """The training (or held-out) items of ``split`` with their panel's opinions and strata.

    Items: the profile's synthetic items of ``split`` when it has any
    (``data.synthetic.n_train`` > 0 for ``train``, ``n_eval`` > 0 for ``validation`` /
    ``test``), **plus**, for ``train`` and ``validation``, the real training pool's items of
    that split (:func:`mmed.data.training.training_pool`: ``data.train_benchmarks``' train
    splits, closed questions, minus every evaluation image, split image-disjointly; ``train``
    capped at ``attending_grpo.n_train_items``) when ``data.train_benchmarks`` is non-empty
    and a data root resolves. Synthetic items come first, then real ones in source order.

    Args:
        split: ``"train"``, ``"validation"`` or ``"test"`` (image-disjoint by construction).
        seed: seeds the panel (the simulated panel's draws are keyed by it) and the pool's
            split and cap.
        run: the run (needed for ``panel="triage"`` and non-simulated backends).
        n: number of synthetic items (default: the profile's ``n_train`` / ``n_eval``);
            ignored when the profile has no synthetic items for ``split``.
        panel: ``"gold"`` (panel of the gold specialty; training strata, docs/architecture.md#stratification) or
            ``"triage"`` (panel chosen by the run's triage model); default
            ``profile.curriculum.strata_panel``.
        data_root: real-data folder (None → ``../shared/data`` when present,
            :func:`mmed.runs.resolve_data_root`); only read when ``data.train_benchmarks``
            is non-empty.
        pool: an already built training pool (saves rebuilding it; ``data_root`` is then unused).
        n_real: at most this many real items (a seeded sample in source order; None = all).
        log: the pool's messages (default ``print``).
    Raises:
        ValueError: unknown split/panel, no item at all (the message says why: synthetic
            count 0, no data root for ``train_benchmarks``), an open item (closed questions
            only), or an item that could not be stratified (e.g. an empty panel) — none is
            dropped silently.
        FileNotFoundError: an explicit ``data_root`` that does not exist, or a benchmark
            folder missing under it.
    """
    from ..agents.pipeline import as_item_list, run_consultation

    if split not in ("train", *HELDOUT_SPLITS):
        raise ValueError(f"split {split!r} not in {('train', *HELDOUT_SPLITS)}")
    panel = panel or profile.curriculum.strata_panel
    key = "n_train" if split == "train" else "n_eval"
    n_syn = getattr(profile.data.synthetic, key)
    items = as_item_list(synthetic_split(profile, split, n=n)) if n_syn > 0 else []
    why = [f"{len(items)} synthetic" if n_syn > 0 else f"data.synthetic.{key} is 0"]
    if split != "test" and profile.data.train_benchmarks:
        if pool is None:
            pool = attending_pool(profile, data_root, seed, log)
        if pool is None:
            why.append(f"no data root for data.train_benchmarks {profile.data.train_benchmarks}")
        else:
            real = pool.split(split)
            if n_real is not None and len(real) > n_real:
                real = real.select(sorted(random.Random(f"{seed}:n_real:{split}").sample(range(len(real)), n_real)))
            items += as_item_list(real)
            why.append(f"{len(real)} real")
    if not items:
        raise ValueError(f"no {split} items (profile {profile.name}, n={n}): {'; '.join(why)}")
    open_ids = [it["id"] for it in items if not it["options"]]
    if open_ids:
        raise ValueError(f"{len(open_ids)} open items in the {split} split (closed questions only), e.g. {open_ids[:3]}")
    if panel == "gold":
        opinions = panel_opinions_gold(profile, items, seed, run)
    elif panel == "triage":
        if run is None:
            raise ValueError("panel='triage' needs the run (its triage model routes the items)")
        triage, panels, _, _ = build_agents(run, profile, seed, triage_mode="model", need_attending=False)
        opinions = [r["panel"] for r in run_consultation(items, triage, panels, decision="none", progress=False)]
    else:
        raise ValueError(f"panel {panel!r} not in ('gold', 'triage')")
    recs = stratify(
        [{"id": it["id"], "answer_idx": it["answer_idx"], "options": it["options"], "answer_type": it.get("answer_type"),
          "panel": ops} for it, ops in zip(items, opinions)]
    )
    unstrat = [r["id"] for r in recs if r["stratum"] is None]
    if unstrat:
        raise ValueError(f"{len(unstrat)} {split} items could not be stratified (no valid specialist opinion: an empty panel or every call failed), e.g. {unstrat[:3]}")
    return StratifiedSet(split, items, [list(o) for o in opinions], [r["stratum"] for r in recs],
                         [float(r["s"]) for r in recs], [r["agreement"] for r in recs], panel)


# ----------------------------------------------------------------------------------------
# stages
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StagePlan:
    """One curriculum stage as it will be trained.

    Attributes:
        index: 1-based position in the curriculum.
        name: the profile's stage name (``easy``, ``medium``, ``hard``, ``all``, ...).
        strata: strata whose items the stage trains on.
        max_steps: optimizer steps of the stage (its own ``GRPOTrainer``'s ``max_steps``).
        entropy_coef: γ, TRL's ``entropy_coef`` for this stage (≥ 0).
        step_offset: optimizer steps of all earlier stages (for curriculum-wide step axes).
        entropy_target: None = fixed γ at every step (the paper); a value in nats = γ
            applied only while the last step's mean completion entropy is ≤ the target
            (TRL's adaptive entropy control, see :func:`entropy_trl_args`).
    """

    index: int
    name: str
    strata: tuple[str, ...]
    max_steps: int
    entropy_coef: float
    step_offset: int = 0
    entropy_target: float | None = None

    @property
    def dir_name(self) -> str:
        """``stage_<k>_<name>`` (what :func:`mmed.agents.build.latest_stage_dir` sorts on)."""
        return f"stage_{self.index}_{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for plans and manifests (``entropy_target`` only when set, so plans of
        runs made before it existed still match)."""
        d = {**dataclasses.asdict(self), "strata": list(self.strata), "dir": self.dir_name}
        if d["entropy_target"] is None:
            del d["entropy_target"]
        return d


def entropy_trl_args(gamma: float, entropy_target: float | None) -> dict[str, Any]:
    """TRL ``GRPOConfig`` arguments of a stage's entropy bonus.

    Fixed γ (``entropy_target`` None): ``{"entropy_coef": γ}`` — loss = L − γ·H every step.
    Regulated: TRL's adaptive entropy control (``use_adaptive_entropy``, from Skywork-OR1,
    arXiv 2505.22312) with the coefficient pinned to γ (``entropy_coef_min = max = γ``), so
    the only adaptive part is TRL's gate: γ is applied on a step only when the mean
    per-token completion entropy of the previous optimizer step was ≤ ``entropy_target``
    (nats). The first step of a stage has no previous entropy and gets no bonus.

    Raises:
        ValueError: γ < 0, or a target that is not > 0, or a target with γ = 0.
    """
    if gamma < 0:
        raise ValueError(f"entropy_coef must be >= 0, got {gamma}")
    if entropy_target is None:
        return {"entropy_coef": float(gamma)}
    if not entropy_target > 0 or gamma <= 0:
        raise ValueError(f"an entropy_target needs a target > 0 and entropy_coef > 0, got {entropy_target} and {gamma}")
    return {"entropy_coef": float(gamma), "use_adaptive_entropy": True, "entropy_target": float(entropy_target),
            "entropy_coef_min": float(gamma), "entropy_coef_max": float(gamma)}


def plan_stages(profile: Profile) -> list[StagePlan]:
    """The profile's curriculum as :class:`StagePlan` objects, in training order.

    Raises:
        ValueError: no stages, duplicate stage names, a name that is not a simple folder
            name, ``max_steps < 1``, γ < 0, or an unknown stratum.
    """
    stages: list[StageConfig] = list(profile.curriculum.stages)
    if not stages:
        raise ValueError(f"profile {profile.name!r}: curriculum.stages is empty")
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"profile {profile.name!r}: duplicate curriculum stage names {names}")
    out, offset = [], 0
    for k, st in enumerate(stages, start=1):
        if not st.name or not st.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"curriculum.stages[{k - 1}].name {st.name!r} must be letters, digits, '-' or '_'")
        if st.max_steps < 1:
            raise ValueError(f"curriculum.stages[{k - 1}] ({st.name}): max_steps must be >= 1, got {st.max_steps}")
        if st.entropy_coef < 0:
            raise ValueError(f"curriculum.stages[{k - 1}] ({st.name}): entropy_coef must be >= 0, got {st.entropy_coef}")
        bad = [x for x in st.strata if x not in STRATA]
        if bad or not st.strata:
            raise ValueError(f"curriculum.stages[{k - 1}] ({st.name}): strata {st.strata!r}, expected a subset of {STRATA}")
        target = None if st.entropy_target is None else float(st.entropy_target)
        entropy_trl_args(float(st.entropy_coef), target)  # raises on a target without γ
        out.append(StagePlan(k, st.name, tuple(st.strata), int(st.max_steps), float(st.entropy_coef), offset, target))
        offset += int(st.max_steps)
    return out


def variant_dir(run: Run, profile: Profile) -> Path:
    """``runs/<id>/attending/<variant or "cmarl">`` for the variant applied to ``profile``."""
    from ..agents.build import variant_dir_name

    return run.path("attending", variant_dir_name(profile.variant))


def stage_rows(train: StratifiedSet, stage: StagePlan, profile: Profile, seed: int) -> "Any":
    """The stage's GRPO rows (:func:`mmed.rl.grpo.grpo_dataset`): the training items of its
    strata, with ``stratum`` and ``s`` columns; shuffled (seeded) when
    ``curriculum.shuffle_strata`` (TRL's sampler reshuffles every epoch anyway).

    Raises:
        ValueError: the stage's strata hold no training item.
    """
    idx = train.indices(stage.strata)
    if not idx:
        raise ValueError(f"stage {stage.dir_name}: no training items in strata {list(stage.strata)} "
                         f"(training counts {train.counts()})")
    if profile.curriculum.shuffle_strata:
        random.Random(seed).shuffle(idx)
    sub = train.subset(idx)
    return grpo_dataset("attending", sub.items, sub.opinions, style=profile.sampling.prompt_style,
                        extra_columns={"stratum": sub.strata, "s": sub.s})


def reference_policy(profile: Profile, stage: StagePlan, init_adapters: str | None) -> str | None:
    """What TRL uses as the KL reference in this stage (None when β = 0: no reference).

    TRL 1.16 with a PEFT model: a fresh LoRA → the model with adapters disabled (= the
    starting policy, since LoRA B starts at 0); warm-start adapters → a frozen copy of them
    (adapter ``"ref"``), i.e. the policy the stage starts from, not the cold start.
    """
    if profile.attending_grpo.beta == 0:
        return None
    if init_adapters is None:
        return "the stage's starting policy: the attending base/cold-start model with LoRA disabled"
    return f"the stage's starting policy: a frozen copy ('ref' adapter) of {init_adapters}"


def train_stage(
    profile: Profile,
    stage: StagePlan,
    train: StratifiedSet,
    base_model: str,
    out_dir: str | Path,
    init_adapters: str | None,
    seed: int,
    *,
    entropy_coef: float | None = None,
    max_steps: int | None = None,
    callbacks: Sequence[Any] = (),
    variant: str | None = None,
    tensorboard_dir: str | Path | None = None,
) -> GRPOResult:
    """Train one stage with a new TRL ``GRPOTrainer`` (via :func:`mmed.rl.grpo.train_grpo`).

    Args:
        stage: the stage (strata, steps, γ).
        train: the stratified training set.
        base_model: the attending's base (the cold-started model folder, or a Hub id).
        out_dir: the stage folder (checkpoints, ``final/``, ``log_history.jsonl``).
        init_adapters: the previous stage's ``final/`` adapters; None → fresh LoRA.
        entropy_coef: overrides the stage's γ (tests and benchmarks only).
        max_steps: overrides the stage's ``max_steps`` (tests and benchmarks only).
        callbacks: extra ``TrainerCallback`` objects (e.g. a gradient probe).
        tensorboard_dir: the stage's TensorBoard event folder (:func:`stage_tensorboard_name`
            under ``runs/<id>/tensorboard``); None → ``out_dir/tensorboard``.
    Returns:
        the :class:`~mmed.rl.grpo.GRPOResult` (resumes from the last checkpoint in
        ``out_dir``; returns the saved result when the stage is already finished there).
    """
    gamma = stage.entropy_coef if entropy_coef is None else float(entropy_coef)
    target = stage.entropy_target if gamma > 0 else None
    tags = {"variant": variant, "stage": stage.name, "stage_index": stage.index, "gamma": gamma,
            "step_offset": stage.step_offset}
    if target is not None:
        tags["entropy_target"] = target
    trl_args = entropy_trl_args(gamma, target)
    return train_grpo(
        "attending", base_model, stage_rows(train, stage, profile, seed), profile, out_dir,
        init_adapters=init_adapters, max_steps=stage.max_steps if max_steps is None else max_steps,
        entropy_coef=trl_args.pop("entropy_coef"), seed=seed, log_tags=tags, callbacks=callbacks,
        trl_overrides=trl_args, tensorboard_dir=tensorboard_dir,
    )


def stage_tensorboard_name(variant: str | None, stage: StagePlan, seed: int) -> str:
    """The TensorBoard run name of one curriculum stage: the attending, the variant's folder
    name (``cmarl`` for C-MARL), the seed, the stage's position and name, its γ and, when
    regulated, its entropy target — e.g. ``attending_cmarl_seed0_stage3_hard_gamma0.05``
    (:func:`mmed.rl.tensorboard_logs.training_name`)."""
    from ..agents.build import variant_dir_name
    from .tensorboard_logs import training_name

    return training_name(f"attending_{variant_dir_name(variant)}", seed, stage_index=stage.index, stage=stage.name,
                         gamma=stage.entropy_coef, entropy_target=stage.entropy_target)


# ----------------------------------------------------------------------------------------
# held-out evaluation and shortcut baselines
# ----------------------------------------------------------------------------------------
def heldout_records(profile: Profile, base_model: str, adapters: str | None, heldout: StratifiedSet, seed: int = 0) -> list[dict[str, Any]]:
    """Greedy answers of the attending (``base_model`` + ``adapters``) on the held-out set.

    Uses :class:`mmed.agents.attending.AttendingPhysician` on a
    :class:`mmed.agents.generation.PolicyRunner` with the profile's prompt style and
    ``sampling.max_new_tokens``, temperature 0 (greedy, whatever the profile samples at).
    Returns one record per item: ``id, stratum, s, agreement, answer_idx, n_options,
    majority`` (the panel's plurality answer or None), ``panel_answers`` (each member's
    parsed answer, None when invalid or abstaining), ``raw, parsed, valid, format_valid,
    correct`` (invalid = wrong).
    """
    from ..agents.attending import AttendingPhysician
    from ..agents.build import PolicySource, load_runner
    from ..agents.generation import SamplingParams
    from ..agents.parsing import has_valid_format

    runner = load_runner(profile, PolicySource(base_model, adapters, "heldout"), "attending")
    att = AttendingPhysician(runner, SamplingParams(max_new_tokens=profile.sampling.max_new_tokens, temperature=0.0, seed=seed),
                             style=profile.sampling.prompt_style)
    decisions = att.decide(heldout.items, heldout.opinions, progress=False)
    out = []
    for it, ops, st, s, ag, d in zip(heldout.items, heldout.opinions, heldout.strata, heldout.s, heldout.agreement, decisions):
        out.append({
            "id": str(it["id"]), "stratum": st, "s": s, "agreement": ag, "answer_idx": int(it["answer_idx"]),
            "n_options": len(it["options"]), "majority": majority_vote(panel_answers(ops)),
            "panel_answers": panel_answers(ops),
            "raw": d.raw, "parsed": d.parsed, "valid": bool(d.valid), "format_valid": bool(has_valid_format(d.raw or "")),
            "correct": bool(d.valid and d.parsed == it["answer_idx"]),
        })
    return out


def accuracy_by_stratum(records: Sequence[dict[str, Any]], key: str = "correct", n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """``{stratum: {acc, lo, hi, n}}`` for every stratum plus ``"all"``, percentile-bootstrap
    95% intervals (:func:`mmed.agents.scoring.accuracy_ci`); an empty stratum gets NaN, n = 0.
    ``key`` names the boolean field scored (``"correct"``, ``"format_valid"``, ...)."""

    out = {st: accuracy_ci([bool(r[key]) for r in records if r["stratum"] == st], n_boot, seed=seed) for st in STRATA}
    out["all"] = accuracy_ci([bool(r[key]) for r in records], n_boot, seed=seed)
    return out


def shortcut_baselines(records: Sequence[dict[str, Any]], seed: int = 0) -> dict[str, list[bool]]:
    """Per-item correctness of the two shortcut policies, aligned with ``records``.

    - ``follow_majority``: answer the panel's plurality answer (``majority``; ties → the
      lowest-indexed member's answer, as :func:`mmed.agents.stratify.majority_vote`); no valid
      opinion → wrong.
    - ``contradict_majority``: answer an option other than the majority — the other option on
      yes/no items, a seeded uniform draw among the others when there are more; no valid
      opinion → a seeded uniform draw among all options.

    Records are those of :func:`heldout_records` (``id``, ``answer_idx``, ``n_options``,
    ``majority``). On a 2-option Hard item (every member wrong) contradicting is always right.
    """
    follow, contra = [], []
    for r in records:
        n, gold, maj = int(r["n_options"]), int(r["answer_idx"]), r["majority"]
        rng = random.Random(f"{seed}:{r['id']}:contradict")
        follow.append(maj is not None and maj == gold)
        pool = [o for o in range(n) if o != maj] if maj is not None else list(range(n))
        contra.append(rng.choice(pool) == gold)
    return {"follow_majority": follow, "contradict_majority": contra}


def _write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> None:
    # a temporary name of this process's own: curricula trained in parallel workers on one run
    # write the same shared file (the cold start's held-out answers), and one rename must not
    # take the other's temporary file away
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    tmp.replace(path)


def read_jsonl(path: Path) -> list[dict[str, Any]] | None:
    """The records of a JSON-lines file (blank lines skipped), or None when it does not exist."""
    if not path.is_file():
        return None
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def heldout_answers(records: Sequence[dict[str, Any]], key: str | None = None) -> dict[str, Any]:
    """:func:`mmed.agents.scoring.answer_distribution` of :func:`heldout_records` (option
    letters, invalid counted apart, distinct raw completions), or with ``key`` of another
    per-record answer field holding an option index or None (``"majority"``: the panel's
    plurality answer, no raw text)."""

    if key is None:
        return answer_distribution([r["parsed"] if r["valid"] else None for r in records], [r["raw"] for r in records],
                                   [int(r["answer_idx"]) for r in records])
    return answer_distribution([r[key] for r in records], None, [int(r["answer_idx"]) for r in records])


def _heldout_summary(records: Sequence[dict[str, Any]], profile: Profile, seed: int) -> dict[str, Any]:
    nb = profile.eval.bootstrap_samples
    return {"accuracy": accuracy_by_stratum(records, "correct", nb, seed),
            "format_valid": sum(r["format_valid"] for r in records) / max(1, len(records)),
            "answer_valid": sum(r["valid"] for r in records) / max(1, len(records)), "n": len(records),
            "answers": heldout_answers(records)}


def _cached_heldout(path: Path, profile: Profile, base: str, adapters: str | None, heldout: StratifiedSet, seed: int) -> list[dict[str, Any]]:
    recs = read_jsonl(path)
    if recs is not None and [r["id"] for r in recs] == [str(it["id"]) for it in heldout.items]:
        return recs
    recs = heldout_records(profile, base, adapters, heldout, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_jsonl(path, recs)
    return recs


#: profile keys that change no training (where a run is reported, how many workers train it)
_NOT_TRAINING_KEYS = ("name", "description", "variant", "variants", "workers", "notebooks_at_once", "budgets_min", "budgets_hardware")


def stage_keys(profile: Profile, plan: dict[str, Any] | None = None) -> list[str]:
    """One key per stage of ``profile``'s curriculum: equal keys, equal trainings.

    Stage ``k``'s key hashes everything its GRPO training depends on: the profile (every
    section but :data:`_NOT_TRAINING_KEYS` and the curriculum's stage list), the stages up
    to and including ``k`` (so the policy it starts from is the same), and ``plan`` — the
    run's :func:`_plan_record` with its ``base_model`` (seed, training data, held-out
    items), minus the variant's name. Two variants whose first stages agree (C-MARL and
    ``no_entropy``: γ = 0 in Easy) get the same first key.

    Returns:
        hex digests (20 characters), one per stage of :func:`plan_stages`.
    """
    import hashlib

    prof = {k: v for k, v in profile.to_dict().items() if k not in _NOT_TRAINING_KEYS}
    prof["curriculum"] = {k: v for k, v in prof.get("curriculum", {}).items() if k != "stages"}
    plan = {k: v for k, v in (plan or {}).items() if k not in ("variant", "stages")}
    stages = [st.to_dict() for st in plan_stages(profile)]
    keys = []
    for k in range(len(stages)):
        blob = json.dumps({"profile": prof, "plan": plan, "stages": stages[:k + 1]}, sort_keys=True, default=str)
        keys.append(hashlib.sha256(blob.encode()).hexdigest()[:20])
    return keys


def _copy_shared_stage(root: Path, sdir: Path, key: str, vname: str, variant: str | None, init: str | None,
                       tensorboard_dir: Callable[[str | None], Path]) -> dict[str, Any] | None:
    """Copy the finished stage of another variant folder of this run whose manifest holds
    ``key`` (:func:`stage_keys`) into ``sdir``, minus its checkpoints; rewrite the variant
    tags of its log and manifest and the paths of its result; copy its TensorBoard events
    (``tensorboard_dir(variant)`` names the folder of a variant). Returns the new manifest,
    or None when no such stage exists."""
    import shutil

    for other in sorted(p for p in root.parent.iterdir() if p.is_dir() and p != root):
        src = other / sdir.name
        man = _read_json(src / STAGE_MANIFEST)
        if not man or man.get("stage_key") != key or man.get("status") != "done":
            continue
        if not (src / "final" / "adapter_config.json").is_file():
            continue
        tmp = sdir.with_name(f".{sdir.name}.copy")
        if tmp.exists():
            shutil.rmtree(tmp)
        shutil.copytree(src, tmp, ignore=lambda d, names: [n for n in names if n.startswith("checkpoint-")]
                        if Path(d) == src else [])
        lines = read_log(tmp / "log_history.jsonl")
        with open(tmp / "log_history.jsonl", "w") as f:
            for rec in lines:
                f.write(json.dumps({**rec, "variant": variant} if "variant" in rec else rec) + "\n")
        res = _read_json(tmp / "result.json") or {}
        res.update(out_dir=str(sdir), final=str(sdir / "final"))
        write_json_atomic(tmp / "result.json", res)
        source_variant = man.get("variant")
        # start/end: the copy's; train_seconds: the copied training's (done once, for both)
        man.update(variant=variant, variant_dir=vname, init_adapters=init, copied_from=f"{other.name}/{sdir.name}",
                   start=_now(), end=_now(), restarts=0)
        write_json_atomic(tmp / STAGE_MANIFEST, man)
        if sdir.exists():
            shutil.rmtree(sdir)
        tmp.rename(sdir)
        tb_src, tb_dst = tensorboard_dir(source_variant), tensorboard_dir(variant)
        if tb_src.is_dir() and tb_src != tb_dst:
            if tb_dst.exists():
                shutil.rmtree(tb_dst)
            shutil.copytree(tb_src, tb_dst)
        return man
    return None


# ----------------------------------------------------------------------------------------
# the curriculum
# ----------------------------------------------------------------------------------------
@dataclass
class CurriculumResult:
    """What :func:`train_curriculum` did.

    Attributes:
        variant: the profile variant (None = the curriculum itself).
        root: ``runs/<id>/attending/<variant or "cmarl">``.
        stages: the stage manifests, in order (see the module docstring).
        train_counts: training items per stratum.
        heldout_split: the split measured before/after each stage.
        trained: stage folder names trained (or resumed) by this call; the others were reused.
        seconds: wall time of this call.
    """

    variant: str | None
    root: str
    stages: list[dict[str, Any]]
    train_counts: dict[str, int]
    heldout_split: str
    trained: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final_adapters(self) -> str:
        """``final/`` adapters of the last stage."""
        return str(Path(self.root) / self.stages[-1]["dir"] / "final")


def _plan_record(profile: Profile, stages: Sequence[StagePlan], seed: int, heldout_split: str, n_train: int,
                 n_heldout: int | None, pool: "TrainingPool | None" = None) -> dict[str, Any]:
    """What ``plan.json`` holds; a resumed run whose record differs is refused. ``n_train`` /
    ``n_heldout``: synthetic items. With ``data.train_benchmarks`` set, ``train_data`` records
    the real data (benchmarks, counts, or ``"no data root"``); without, the record is the one
    older runs wrote (no such key)."""
    g = profile.attending_grpo
    rec = {
        "variant": profile.variant, "seed": seed, "stages": [s.to_dict() for s in stages],
        "shuffle_strata": profile.curriculum.shuffle_strata, "strata_panel": profile.curriculum.strata_panel,
        "heldout_split": heldout_split, "n_heldout": n_heldout, "n_train_pool": n_train,
        "grpo": {k: getattr(g, k) for k in ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps",
                                            "num_generations", "max_completion_length", "temperature", "beta", "loss_type")},
    }
    if profile.data.train_benchmarks:
        rec["train_data"] = pool.plan_record() if pool is not None else {
            "train_benchmarks": list(profile.data.train_benchmarks), "status": "no data root: not read"}
    return rec


def check_heldout(heldout_split: str, n_heldout: int | None) -> None:
    """Refuse a held-out split other than :data:`HELDOUT_SPLITS` or an ``n_heldout`` that is
    not a positive int (None: the profile's), with a ``ValueError`` naming the value."""
    if heldout_split not in HELDOUT_SPLITS:
        raise ValueError(f"heldout_split {heldout_split!r} not in {HELDOUT_SPLITS}")
    if n_heldout is not None and (isinstance(n_heldout, bool) or not isinstance(n_heldout, int) or n_heldout < 1):
        raise ValueError(f"n_heldout must be a positive number of items (or None for the profile's), got {n_heldout!r}")


def train_curriculum(
    profile: str | Profile,
    run_dir: str | Path | None,
    variant: str | None = None,
    seed: int | None = None,
    heldout_split: str = "validation",
    n_heldout: int | None = None,
    log: Callable[[str], None] | None = None,
    data_root: str | Path | None = None,
) -> CurriculumResult:
    """Train the attending physician with C-MARL (or one of its variants) in a run.

    Args:
        profile: a profile name/path or a loaded :class:`~mmed.config.Profile`; with a name,
            ``variant`` is applied with :func:`mmed.config.load_profile`. A loaded profile
            keeps the variant it was loaded with (``variant`` must then be None or equal).
        run_dir: the run folder (created when missing; relative to the repository root).
        seed: trainer/data seed (default: the profile's); also seeds the simulated panel.
        heldout_split: ``"validation"`` (default) or ``"test"``: the items whose per-stratum
            accuracy is measured before and after every stage.
        n_heldout: number of held-out items: synthetic ones (default: the profile's
            ``n_eval``) and, separately, at most this many of the real pool's validation
            items (default: all of them).
        log: progress messages (default ``print``).
        data_root: real-data folder for ``data.train_benchmarks`` (None → ``../shared/data``
            when present). Training items are the synthetic ``train`` items (at most
            ``min(n_train, attending_grpo.n_train_items)``) plus the real pool's ``train``
            items (at most ``attending_grpo.n_train_items``); see :func:`stratified_split`.
    Returns:
        a :class:`CurriculumResult`.
    Raises:
        ValueError: bad split, variant mismatch, an empty stage, no training items, or a run
            whose variant folder was trained with a different plan (stages, γ, GRPO settings,
            seed or training data) — use another run folder rather than mixing two plans.
        FileNotFoundError: an explicit ``data_root`` that does not exist, or a train or
            evaluation benchmark folder missing under the data root.
    """
    from ..agents.build import describe_specialists, variant_dir_name
    from .pretrain import base_model

    log = log or (lambda m: print(m, flush=True))
    check_heldout(heldout_split, n_heldout)
    if isinstance(profile, Profile):
        if variant is not None and variant != profile.variant:
            raise ValueError(f"profile was loaded with variant {profile.variant!r}, not {variant!r}")
        prof = profile
    else:
        prof = load_profile(profile, variant=variant)
    seed = prof.seed if seed is None else int(seed)
    t0 = time.perf_counter()
    run = Run.open(run_dir, profile=prof.name, variant=prof.variant, seed=seed)
    if prof.specialists.backend == "simulated":
        run.update(simulated_panel=describe_specialists(prof)["simulated"])
    stages = plan_stages(prof)
    root = variant_dir(run, prof)
    root.mkdir(parents=True, exist_ok=True)
    vname = variant_dir_name(prof.variant)

    # the policy every curriculum starts from: the run's cold-started attending
    ensure_cold_start(run, prof, "attending", seed, data_root)
    sft = run.path("attending", "sft")
    base = str(sft) if (sft / "config.json").is_file() else base_model(run, prof, "attending")

    n_pool = min(prof.data.synthetic.n_train, prof.attending_grpo.n_train_items)
    n_held = prof.data.synthetic.n_eval if n_heldout is None else int(n_heldout)
    pool = attending_pool(prof, data_root, seed, log)  # None without train_benchmarks or a data root
    if prof.data.train_benchmarks and pool is None:
        log(f"[{vname}] note: no data root, data.train_benchmarks {prof.data.train_benchmarks} not read")
    plan = _plan_record(prof, stages, seed, heldout_split, n_pool, n_held, pool)
    # relative to the run when inside it, so a copied or moved run folder keeps its plan
    plan["base_model"] = str(Path(base).relative_to(run.root)) if Path(base).is_relative_to(run.root) else base
    saved = _read_json(root / PLAN_FILE)
    if saved is not None and saved != plan:
        diff = sorted(k for k in set(saved) | set(plan) if saved.get(k) != plan.get(k))
        raise ValueError(f"{root} was trained with another plan (differs in {diff}); use another --run-dir "
                         f"or delete {root}")

    train = stratified_split(prof, "train", seed, run, n=n_pool, data_root=data_root, pool=pool)
    held = stratified_split(prof, heldout_split, seed, run, n=n_held, data_root=data_root, pool=pool, n_real=n_heldout)
    if saved is None:  # only once the data are known to be usable: a failed start leaves no plan behind
        write_json_atomic(root / PLAN_FILE, plan)
    keys = stage_keys(prof, plan)
    summary = json.loads(json.dumps(train.summary()))
    if _read_json(root / STRATA_FILE) != summary:
        write_json_atomic(root / STRATA_FILE, summary)
    log(f"[{vname}] training strata {train.counts()} | held-out ({heldout_split}) strata {held.counts()}")

    # the starting policy is the same for every variant of a run: its held-out answers are shared
    start_recs = _cached_heldout(run.path("attending", f"heldout_start_{heldout_split}.jsonl"), prof, base, None, held, seed)
    before = _heldout_summary(start_recs, prof, seed)
    image_only = run.path("attending", "image_only")
    if (image_only / "config.json").is_file():  # the image-reading reference, on the same items without opinions
        no_panel = dataclasses.replace(held, opinions=[[] for _ in held.items])
        _cached_heldout(run.path("attending", f"heldout_image_only_{heldout_split}.jsonl"), prof, str(image_only), None,
                        no_panel, seed)
    init: str | None = None
    manifests, trained = [], []
    for st in stages:
        sdir = root / st.dir_name
        man_path = sdir / STAGE_MANIFEST
        man = _read_json(man_path) or {}
        final = sdir / "final"
        if man.get("status") == "done" and (final / "adapter_config.json").is_file():
            log(f"[{vname}] {st.dir_name}: done, reused")
            manifests.append(man)
            before = man["heldout"]["after"]
            init = str(final)
            continue
        copied = _copy_shared_stage(root, sdir, keys[st.index - 1], vname, prof.variant, init,
                                    lambda v, st=st: run.tensorboard_dir(stage_tensorboard_name(v, st, seed)))
        if copied is not None:
            log(f"[{vname}] {st.dir_name}: the same training as {copied['copied_from']} (same starting policy, rows, "
                f"steps, gamma, seed and settings): copied, not retrained")
            run.add_artifact(f"attending/{vname}/{st.dir_name}", sdir)
            manifests.append(copied)
            before = copied["heldout"]["after"]
            init = str(final)
            continue
        rows_counts = {x: c for x, c in train.counts().items() if x in st.strata}
        man = {
            **st.to_dict(), "variant": prof.variant, "variant_dir": vname, "seed": seed,
            "n_items": sum(rows_counts.values()), "n_items_by_stratum": rows_counts,
            "beta": prof.attending_grpo.beta, "reference_policy": reference_policy(prof, st, init),
            "optimizer": "fresh (new GRPOTrainer: new AdamW state and learning-rate schedule)",
            "base_model": base, "init_adapters": init, "stage_key": keys[st.index - 1],
            "start": man.get("start") or _now(), "end": None,
            "restarts": int(man.get("restarts", -1)) + 1, "status": "running",
        }
        sdir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(man_path, man)
        log(f"[{vname}] {st.dir_name}: {man['n_items']} items {rows_counts}, {st.max_steps} steps, gamma={st.entropy_coef}"
            + (f" (applied while entropy <= {st.entropy_target} nats)" if st.entropy_target is not None else "")
            + (f" (restart {man['restarts']})" if man["restarts"] else ""))
        step_info = {"gamma": st.entropy_coef, "steps": st.max_steps}
        if st.entropy_target is not None:
            step_info["entropy_target"] = st.entropy_target
        with run.step(f"attending/{vname}/{st.dir_name}", **step_info):
            res = train_stage(prof, st, train, base, sdir, init, seed, variant=prof.variant,
                              tensorboard_dir=run.tensorboard_dir(stage_tensorboard_name(prof.variant, st, seed)))
            after_recs = _cached_heldout(sdir / f"heldout_{heldout_split}.jsonl", prof, base, res.final, held, seed)
        after = _heldout_summary(after_recs, prof, seed)
        log_lines = read_log(sdir / "log_history.jsonl")
        man.update(
            steps=res.steps, resumed_from=res.resumed_from, train_seconds=res.seconds, end=_now(), status="done",
            heldout={"split": heldout_split, "before": before, "after": after},
            train_log={"n_logged": len(log_lines), **({
                "reward_first": log_lines[0]["reward"], "reward_last": log_lines[-1]["reward"],
                "format_valid_min": min(r.get("format_valid", float("nan")) for r in log_lines),
            } if log_lines else {})},
        )
        write_json_atomic(man_path, man)
        run.add_artifact(f"attending/{vname}/{st.dir_name}", sdir)
        manifests.append(man)
        trained.append(st.dir_name)
        a = after["accuracy"]
        log(f"[{vname}] {st.dir_name}: {res.steps} steps in {res.seconds:.0f} s; held-out acc "
            + ", ".join(f"{k} {before['accuracy'][k]['acc']:.2f}->{a[k]['acc']:.2f}" for k in (*STRATA, "all")))
        before = after
        init = res.final
    return CurriculumResult(prof.variant, str(root), manifests, train.counts(), heldout_split, trained,
                            round(time.perf_counter() - t0, 1))


# ----------------------------------------------------------------------------------------
# reading a trained curriculum (notebook 04, evaluation)
# ----------------------------------------------------------------------------------------
def load_stage_manifests(run: Run, variant: str | None) -> list[dict[str, Any]]:
    """The stage manifests of a variant's curriculum in the run, in stage order (finished or
    not); empty when it was never trained."""
    from ..agents.build import variant_dir_name

    root = run.path("attending", variant_dir_name(variant))
    dirs = sorted((p for p in root.glob("stage_*") if (p / STAGE_MANIFEST).is_file()), key=lambda p: int(p.name.split("_")[1]))
    return [json.loads((p / STAGE_MANIFEST).read_text()) for p in dirs]


def curriculum_log(run: Run, variant: str | None) -> list[dict[str, Any]]:
    """Every logged GRPO step of a variant, stages in order, each record with
    ``curriculum_step = step_offset + step`` (one axis across stages)."""
    from ..agents.build import variant_dir_name

    out = []
    for man in load_stage_manifests(run, variant):
        for r in read_log(run.path("attending", variant_dir_name(variant), man["dir"], "log_history.jsonl")):
            out.append({**r, "curriculum_step": int(r.get("step_offset", man["step_offset"])) + int(r["step"])})
    return out


def heldout_predictions(run: Run, variant: str | None, stage: str | None, split: str = "validation") -> list[dict[str, Any]]:
    """Per-item held-out records saved by :func:`train_curriculum`: after stage folder
    ``stage`` (e.g. ``"stage_2_medium"``), or of the starting policy when ``stage`` is None.

    Raises:
        FileNotFoundError: the run holds no such file.
    """
    from ..agents.build import variant_dir_name

    root = run.path("attending", variant_dir_name(variant))
    path = run.path("attending", f"heldout_start_{split}.jsonl") if stage is None else root / stage / f"heldout_{split}.jsonl"
    recs = read_jsonl(path)
    if recs is None:
        raise FileNotFoundError(f"{path} does not exist (train the curriculum with heldout_split={split!r} first)")
    return recs


def variant_label(variant: str | None) -> str:
    """The name a curriculum variant goes by in reports, tables and metrics: its folder name
    under ``attending/`` (:func:`mmed.agents.build.variant_dir_name`; None → ``"cmarl"``,
    C-MARL itself). Notebook 04's ``variants`` lists and the seed replicate use it."""
    from ..agents.build import variant_dir_name

    return variant_dir_name(variant)
