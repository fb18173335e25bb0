"""Build the agents of a profile inside a run folder (one code path for every scale).

Where a run keeps its models (docs/architecture.md#the-run-folder)::

    runs/<id>/models/base/                         tiny base model (profile model "tiny")
    runs/<id>/triage/sft/                          cold-started triage policy (full model)
    runs/<id>/triage/grpo/final/                   triage LoRA adapters after GRPO
    runs/<id>/attending/sft/                       cold-started attending policy
    runs/<id>/attending/image_only/                image-only reference (cold start without opinions, synthetic items)
    runs/<id>/attending/image_only_real/           image-only reference of the real datasets (real pool items)
    runs/<id>/attending/<variant>/stage_<k>_<name>/final/   C-MARL stage adapters

:func:`policy_source` resolves which base model and which adapters an agent uses: the
latest the run holds unless told otherwise, so a consultation with ``--run-dir`` of a
training run uses that run's trained agents. A model name other than ``"tiny"`` (e.g.
``Qwen/Qwen2.5-VL-7B-Instruct``) is loaded by Hub id or path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import Profile
from ..runs import Run
from .generation import PolicyRunner, SamplingParams
from .specialists import Specialist, simulated_panel_factory

AGENTS: tuple[str, ...] = ("triage", "attending", "specialist")
#: the attending's image-reading reference (``runs/<id>/attending/image_only/``): the
#: pre-trained base cold-started on gold answers with image and question only (no opinions)
IMAGE_ONLY_STAGE = "image_only"
#: the same reference trained on the real cold-start pool (``runs/<id>/attending/image_only_real/``):
#: the "image only" row of the real datasets
IMAGE_ONLY_REAL_STAGE = "image_only_real"
#: run sub-folder of a variant's curriculum stages when the profile has no variant applied
DEFAULT_VARIANT_DIR = "cmarl"


def variant_dir_name(variant: str | None) -> str:
    """Folder name under ``attending/`` for a curriculum variant (None → ``"cmarl"``)."""
    return variant or DEFAULT_VARIANT_DIR


def _is_adapter(p: Path) -> bool:
    return (p / "adapter_config.json").is_file()


def _is_model(p: Path) -> bool:
    return (p / "config.json").is_file()


def model_name_for(profile: Profile, agent: str) -> str:
    """The profile's model of ``agent`` (``"triage"``, ``"attending"`` or ``"specialist"``: the
    local specialist model when set, else the attending's): a Hub id, a path, or ``"tiny"``."""
    name = profile.models.triage if agent == "triage" else profile.models.attending
    if agent == "specialist" and profile.specialists.local_model:
        name = profile.specialists.local_model
    return name


def base_model_for(run: Run, profile: Profile, agent: str) -> str:
    """The base model name/path of ``agent`` before any training in this run: the profile's
    model (Hub id or path), or for ``"tiny"`` the run's ``models/base``, which
    :func:`mmed.rl.pretrain.ensure_base_model` builds (and pre-trains) — training is the rl
    layer's; :func:`mmed.rl.pretrain.base_model` is this function after making sure of it.

    Raises:
        FileNotFoundError: a ``"tiny"`` agent and the run holds no ``models/base`` yet.
    """
    name = model_name_for(profile, agent)
    if name != "tiny":
        return name
    base = run.path("models", "base")
    if not _is_model(base):
        raise FileNotFoundError(f"{base} holds no base model: mmed.rl.pretrain.ensure_base_model(run, profile) builds it")
    return str(base)


def latest_stage_dir(run: Run, variant: str | None) -> Path | None:
    """The last finished curriculum stage folder (with ``final/`` adapters), or None."""
    root = run.path("attending", variant_dir_name(variant))
    if not root.is_dir():
        return None
    stages = sorted((p for p in root.glob("stage_*") if _is_adapter(p / "final")), key=lambda p: int(p.name.split("_")[1]))
    return stages[-1] if stages else None


@dataclass
class PolicySource:
    """Which weights an agent runs with: a base model and optional LoRA adapters."""

    base: str
    adapters: str | None
    label: str  #: "base" | "sft" | "grpo" | "<variant>/<stage>" — for logs and tables


def policy_source(run: Run, profile: Profile, agent: str, stage: str = "latest", variant: str | None = None) -> PolicySource:
    """Resolve the weights of ``agent`` in ``run``.

    Args:
        agent: ``"triage"`` or ``"attending"`` (``"specialist"``: the base model).
        stage: ``"latest"`` (what the run holds: adapters > cold start > base), ``"base"``,
            ``"sft"``, ``"grpo"`` (triage), ``"image_only"`` / ``"image_only_real"``
            (attending: the image-only reference trained on synthetic / real items, a full
            model), or a curriculum stage folder name such as
            ``"stage_1_easy"`` (attending, in ``variant``'s folder).
        variant: curriculum variant for the attending (None = the profile's own curriculum).
    Raises:
        ValueError: unknown agent/stage; FileNotFoundError: the requested stage is not in the
            run, or the tiny base model it builds on is not (:func:`base_model_for`).
    """
    if agent not in AGENTS:
        raise ValueError(f"agent {agent!r} not in {AGENTS}")
    if agent == "specialist" or stage == "base":
        return PolicySource(base_model_for(run, profile, agent), None, "base")
    if agent == "attending" and stage in (IMAGE_ONLY_STAGE, IMAGE_ONLY_REAL_STAGE):  # full models, no opinions
        d = run.path("attending", stage)
        if not _is_model(d):
            raise FileNotFoundError(f"{d} holds no image-only attending (mmed.rl.cold_start.ensure_cold_starts trains it)")
        return PolicySource(str(d), None, stage)
    sft = run.path(agent, "sft")
    if _is_model(sft):  # a full model: the base is read only when there is no cold start
        base, label = str(sft), "sft"
    elif stage == "sft":
        raise FileNotFoundError(f"{sft} holds no cold-started model")
    else:
        base, label = base_model_for(run, profile, agent), "base"
    if stage == "sft":
        return PolicySource(base, None, "sft")
    if agent == "triage":
        final = run.path("triage", "grpo", "final")
        if stage == "grpo" and not _is_adapter(final):
            raise FileNotFoundError(f"{final} holds no GRPO adapters")
        if stage in ("grpo", "latest") and _is_adapter(final):
            return PolicySource(base, str(final), "grpo")
        if stage not in ("latest",):
            raise ValueError(f"unknown triage stage {stage!r}; use latest, base, sft or grpo")
        return PolicySource(base, None, label)
    if stage == "latest":
        last = latest_stage_dir(run, variant)
        if last is not None:
            return PolicySource(base, str(last / "final"), f"{variant_dir_name(variant)}/{last.name}")
        return PolicySource(base, None, label)
    d = run.path("attending", variant_dir_name(variant), stage, "final")
    if not _is_adapter(d):
        raise FileNotFoundError(f"{d} holds no stage adapters")
    return PolicySource(base, str(d), f"{variant_dir_name(variant)}/{stage}")


def load_runner(profile: Profile, source: PolicySource, name: str) -> PolicyRunner:
    """Load a policy (:func:`mmed.models.load_policy`) and wrap it for batched generation."""
    from ..models import load_policy

    device = "cuda" if profile.device == "cuda" else ("auto" if profile.device == "auto" else "cpu")
    model, processor = load_policy(
        source.base,
        adapters=source.adapters,
        quantization=profile.models.quantization,
        dtype=profile.models.dtype,
        device=device,
        min_pixels=profile.image.min_pixels,
        max_pixels=profile.image.max_pixels,
        attn_implementation=profile.models.attn_implementation,
    )
    return PolicyRunner(model, processor, batch_size=profile.sampling.batch_size, name=name)


def sampling_params(profile: Profile, seed: int = 0) -> SamplingParams:
    """The profile's inference decoding settings."""
    s = profile.sampling
    return SamplingParams(max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p, seed=seed)


def specialist_factory(
    profile: Profile, seed: int, run: Run | None = None, runner: PolicyRunner | None = None,
    weights: str | None = None,
) -> Callable[[str, int], Specialist]:
    """``(specialty, panel_index) -> Specialist`` for the profile's backend.

    ``simulated`` → :class:`~mmed.agents.specialists.SimulatedSpecialist` (uncached: a pure
    function); ``local`` and ``openai`` → a :class:`mmed.agents.backends.SpecialistFactory`,
    whose specialists sit behind the specialist cache (``specialists.cache_dir``, else
    ``$MMED_SPECIALIST_CACHE``, else ``~/.cache/mmed/specialists``) and are counted in its
    ``stats()`` (``metrics.json`` ``specialist_calls``). ``local`` members are
    :class:`~mmed.agents.local_specialist.LocalModelSpecialist` on ``runner``, loaded from
    ``specialists.local_model`` (``"tiny"``: the run's base model) when None; ``openai``
    members are :class:`~mmed.agents.openai_specialist.OpenAICompatibleSpecialist`.

    Args:
        weights: with ``runner``, :func:`~mmed.agents.local_specialist.weights_fingerprint`
            of its weights (cache identity); None → the fingerprint of the runner's
            ``name_or_path``. Computed from the loaded source when ``runner`` is None.
    Raises:
        ValueError: an unknown backend; ``local`` without ``run`` or ``runner``.
    """
    cfg = profile.specialists
    if cfg.backend == "simulated":
        return simulated_panel_factory(cfg.simulated, seed=seed)
    from . import backends  # the panel factory with the cache and the accounting (mmed/agents/cache.py)

    if cfg.backend == "local":
        from .local_specialist import LocalModelSpecialist, weights_fingerprint

        if runner is None:
            if run is None:
                raise ValueError("backend 'local' needs a run (for the base model) or a runner")
            src = policy_source(run, profile, "specialist")
            runner = load_runner(profile, src, "specialist")
            weights = weights_fingerprint(src.base, src.adapters)
        elif weights is None:
            weights = weights_fingerprint(str(getattr(getattr(runner.model, "config", None), "_name_or_path", "local")))
        sp = sampling_params(profile, seed)
        style = profile.sampling.prompt_style

        def local_builder(specialty: str, k: int) -> Specialist:
            return LocalModelSpecialist(runner, specialty, k, seed=seed, sampling=sp, style=style, weights=weights)

        return backends.make_specialist_factory(cfg, seed=seed, local_builder=local_builder)
    if cfg.backend == "openai":
        return backends.make_specialist_factory(cfg, seed=seed)
    raise ValueError(f"unknown specialist backend {cfg.backend!r}")


def describe_specialists(profile: Profile) -> dict[str, Any]:
    """What the run manifest records about the panel (simulated parameters included)."""
    cfg = profile.specialists
    out: dict[str, Any] = {"backend": cfg.backend, "panel_size": cfg.panel_size}
    if cfg.backend == "simulated":
        from dataclasses import asdict

        out["simulated"] = {**asdict(cfg.simulated), "note": "simulated panel: every opinion is marked simulated"}
    elif cfg.backend == "local":
        out["local_model"] = cfg.local_model
    elif cfg.backend == "openai":
        out["openai"] = {k: v for k, v in vars(cfg.openai).items() if k != "api_key_env"} | {"api_key_env": cfg.openai.api_key_env}
    return out
