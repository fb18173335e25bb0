"""Policy models: load any image-text-to-text model + processor (plus a run's LoRA
adapters), build the tiny offline Qwen2.5-VL, and configure LoRA / QLoRA (docs/architecture.md#layers).

Importing this package registers :class:`Qwen2_5_VLImageOnlyProcessor` with
``AutoProcessor``, so ``AutoProcessor.from_pretrained(<tiny model folder>)`` works in this
process without ``trust_remote_code``.
"""

from __future__ import annotations

from transformers import AutoProcessor, Qwen2_5_VLConfig

from mmed.models.loading import cpu_half_precision_note, load_policy, load_processor
from mmed.models.peft_utils import lora_config, lora_target_modules, quantization_config, resolve_dtype
from mmed.models.processing_qwen2_5_vl import Qwen2_5_VLImageOnlyProcessor
from mmed.models.tiny import (
    QWEN2_5_VL_CHAT_TEMPLATE,
    QWEN_SPECIAL_TOKENS,
    REASONING_TAGS,
    build_processor,
    build_tiny_qwen2_5_vl,
    train_tokenizer,
)

# Lets AutoProcessor resolve the class by the name saved in processor_config.json. Stock
# Qwen2.5-VL checkpoints name "Qwen2_5_VLProcessor" there and are unaffected.
AutoProcessor.register(Qwen2_5_VLConfig, Qwen2_5_VLImageOnlyProcessor, exist_ok=True)

__all__ = [
    "QWEN2_5_VL_CHAT_TEMPLATE",
    "QWEN_SPECIAL_TOKENS",
    "REASONING_TAGS",
    "Qwen2_5_VLImageOnlyProcessor",
    "build_processor",
    "build_tiny_qwen2_5_vl",
    "cpu_half_precision_note",
    "load_policy",
    "load_processor",
    "lora_config",
    "lora_target_modules",
    "quantization_config",
    "resolve_dtype",
    "train_tokenizer",
]
