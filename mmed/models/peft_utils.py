"""LoRA and 4-bit (QLoRA) configuration from a profile: PEFT ``LoraConfig`` and
transformers' ``BitsAndBytesConfig`` — built here, never re-implemented.

QLoRA (Dettmers et al. 2023) = the frozen base model in 4-bit NF4 with double
quantisation, LoRA adapters (Hu et al. 2021) trained in the compute dtype. The paper trains
the triage doctor this way (arXiv 2506.00555 §3.1); on CPU the same objects run through
bitsandbytes' CPU kernels (docs/architecture.md#environment-facts).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from peft import LoraConfig as PeftLoraConfig
from transformers import BitsAndBytesConfig

from mmed.config import LoraSection

#: dtype names accepted by profiles (``models.dtype``) and :func:`resolve_dtype`.
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: 4-bit quantisation types of bitsandbytes accepted by :func:`quantization_config`.
QUANTIZATIONS: tuple[str, ...] = ("nf4", "fp4")
#: Path fragment of the language model inside transformers' vision-language models
#: (``model.language_model.layers.N...`` in Qwen2.5-VL, LLaVA, Gemma 3, ...).
LANGUAGE_MODEL_PATH = "language_model"


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"float32" | "bfloat16" | "float16"`` (or a ``torch.dtype`` among them) → ``torch.dtype``.

    Raises:
        ValueError: any other value, listing the accepted names.
    """
    if isinstance(dtype, torch.dtype):
        if dtype in DTYPES.values():
            return dtype
        raise ValueError(f"dtype {dtype} not supported; use one of {sorted(DTYPES)}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} not supported; use one of {sorted(DTYPES)}")
    return DTYPES[dtype]


def quantization_config(name: str | None, dtype: str | torch.dtype = "float32") -> BitsAndBytesConfig | None:
    """bitsandbytes 4-bit config for QLoRA, or None for full precision.

    Args:
        name: None (no quantisation), ``"nf4"`` (QLoRA's NormalFloat4) or ``"fp4"``.
        dtype: compute dtype of the 4-bit matmuls (``float32`` on CPU, ``bfloat16`` on GPU).
    Returns:
        ``BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=name,
        bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype,
        bnb_4bit_quant_storage=dtype)`` or None.
    Raises:
        ValueError: unknown ``name`` or ``dtype``.

    Source: transformers ``BitsAndBytesConfig``; QLoRA §3 (NF4 + double quantisation).
    """
    if name is None:
        return None
    if name not in QUANTIZATIONS:
        raise ValueError(f"quantization {name!r} not supported; use None or one of {QUANTIZATIONS}")
    compute = resolve_dtype(dtype)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=name,
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )


def lora_target_modules(profile_lora: LoraSection) -> str:
    """PEFT ``target_modules`` for a profile's LoRA section, as a full-match regex.

    - ``target_regex`` set → returned unchanged (the user's choice, e.g. to include the
      vision tower's ``attn.qkv``).
    - ``scope == "language_model"`` (default) → the named linear layers inside the language
      model only: ``.*language_model.*\\.(q_proj|k_proj|...)``. Qwen2.5-VL's vision blocks
      also have ``gate_proj``/``up_proj``/``down_proj``; a plain name list would adapt them too.
    - ``scope == "all"`` → every module whose last name is in ``target_modules``.

    Raises:
        ValueError: empty ``target_modules`` without a regex, a name that is not a plain
            module name, an unknown scope, or an invalid regex.
    """
    if profile_lora.target_regex:
        try:
            re.compile(profile_lora.target_regex)
        except re.error as e:
            raise ValueError(f"models.lora.target_regex {profile_lora.target_regex!r} is not a valid regex: {e}") from e
        return profile_lora.target_regex
    names = list(profile_lora.peft.get("target_modules") or [])
    if not names:
        raise ValueError("models.lora.target_modules is empty and no models.lora.target_regex is set")
    bad = [n for n in names if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n)]
    if bad:
        raise ValueError(f"models.lora.target_modules entries must be module names, got {bad}; use target_regex for patterns")
    alternatives = "|".join(names)
    if profile_lora.scope == "language_model":
        return rf".*{LANGUAGE_MODEL_PATH}.*\.({alternatives})"
    if profile_lora.scope == "all":
        return rf"(.*\.)?({alternatives})"
    raise ValueError(f"models.lora.scope {profile_lora.scope!r} not supported; use 'language_model' or 'all'")


def lora_config(profile_lora: LoraSection | dict[str, Any] | None = None) -> PeftLoraConfig:
    """PEFT ``LoraConfig`` (``peft/tuners/lora/config.py``) for causal-LM training from a
    profile's ``models.lora`` section.

    Args:
        profile_lora: ``profile.models.lora`` (:class:`mmed.config.LoraSection`), a dict of
            its keys as a profile writes them (``{"r": 4, "lora_alpha": 8}``: PEFT's keys plus
            ``scope``/``target_regex``), or None (defaults).
    Returns:
        ``peft.LoraConfig(bias="none", task_type="CAUSAL_LM", **<the section's PEFT keys>,
        target_modules=<regex from lora_target_modules>)``: every PEFT key of the section is
        handed over unchanged (``r``, ``lora_alpha``, ``lora_dropout``, ``use_rslora`` ...; it
        may replace ``bias``/``task_type``); pass it as ``peft_config`` to TRL's trainers or
        to ``peft.get_peft_model``.
    Raises:
        ValueError: ``r`` or ``lora_alpha`` < 1, ``lora_dropout`` outside [0, 1), or bad
            targets (see :func:`lora_target_modules`); :class:`mmed.config.ProfileError`
            for a dict key that is neither ours nor a ``peft.LoraConfig`` field.

    Source: PEFT ``LoraConfig`` (Hu et al. 2021, LoRA).
    """
    from mmed.config import profile_from_dict

    if profile_lora is None:
        profile_lora = LoraSection()
    elif isinstance(profile_lora, dict):
        profile_lora = profile_from_dict({"models": {"lora": profile_lora}}, source="lora_config()").models.lora
    keys = profile_lora.peft
    r, alpha, dropout = keys.get("r", 8), keys.get("lora_alpha", 8), keys.get("lora_dropout", 0.0)
    if r < 1 or alpha < 1:
        raise ValueError(f"models.lora: r ({r}) and lora_alpha ({alpha}) must be >= 1")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"models.lora.lora_dropout {dropout} must be in [0, 1)")
    return PeftLoraConfig(**{"bias": "none", "task_type": "CAUSAL_LM", **keys,
                             "target_modules": lora_target_modules(profile_lora)})
