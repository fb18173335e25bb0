"""Load a policy model (any image-text-to-text model, Qwen2.5-VL first) with its processor,
optionally in 4-bit and with LoRA adapters saved in a run (docs/architecture.md#layers).

One function for every scale: the tiny offline model (a folder built by
:func:`mmed.models.build_tiny_qwen2_5_vl`) and ``Qwen/Qwen2.5-VL-7B-Instruct`` go through
the same calls (``AutoModelForImageTextToText``, ``AutoProcessor``, ``PeftModel``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
from transformers.image_utils import SizeDict
from transformers.utils import is_torchvision_available

from mmed.models.peft_utils import quantization_config, resolve_dtype
from mmed.models.processing_qwen2_5_vl import Qwen2_5_VLImageOnlyProcessor

log = logging.getLogger(__name__)

#: model types whose stock processor needs torchvision (for its video processor) and that
#: :class:`Qwen2_5_VLImageOnlyProcessor` serves when torchvision is missing.
IMAGE_ONLY_MODEL_TYPES: tuple[str, ...] = ("qwen2_5_vl",)


def load_processor(name_or_path: str | Path, min_pixels: int | None = None, max_pixels: int | None = None) -> Any:
    """Load the processor of an image-text-to-text model, ready for batched generation.

    - A folder saved with :class:`Qwen2_5_VLImageOnlyProcessor` (the tiny model) → that class.
    - A Qwen2.5-VL checkpoint where torchvision is not installed → the same class, built
      from the checkpoint's tokenizer and image processor (the stock processor would fail
      on its video processor); otherwise ``AutoProcessor``.

    Args:
        name_or_path: Hub id or local folder.
        min_pixels, max_pixels: image area bounds in pixels for Qwen2-VL-style image
            processors (``size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}``);
            None keeps the saved value.
    Returns:
        the processor, with ``processor.tokenizer.padding_side == "left"`` (generation
        appends to the right end of every row).
    Raises:
        ValueError: min_pixels > max_pixels, or pixel bounds given for a processor without
            a ``size`` of that kind.
    """
    name_or_path = str(name_or_path)
    saved_class = None
    cfg_file = Path(name_or_path) / "processor_config.json"
    if cfg_file.is_file():
        saved_class = json.loads(cfg_file.read_text()).get("processor_class")
    model_type = AutoConfig.from_pretrained(name_or_path).model_type
    if saved_class == Qwen2_5_VLImageOnlyProcessor.__name__ or (
        model_type in IMAGE_ONLY_MODEL_TYPES and not is_torchvision_available()
    ):
        processor = Qwen2_5_VLImageOnlyProcessor.from_pretrained(name_or_path)
    else:
        processor = AutoProcessor.from_pretrained(name_or_path)
    if min_pixels is not None or max_pixels is not None:
        image_processor = getattr(processor, "image_processor", None)
        size = getattr(image_processor, "size", None)
        if size is None or getattr(size, "shortest_edge", None) is None:
            raise ValueError(f"{name_or_path}: its image processor has no shortest/longest_edge size to set pixels on")
        lo = min_pixels if min_pixels is not None else size.shortest_edge
        hi = max_pixels if max_pixels is not None else size.longest_edge
        if lo > hi:
            raise ValueError(f"min_pixels ({lo}) > max_pixels ({hi})")
        image_processor.size = SizeDict(shortest_edge=lo, longest_edge=hi)
    tokenizer = getattr(processor, "tokenizer", processor)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return processor


def cpu_half_precision_note(dtype: str | torch.dtype, device: str, quantization: str | None = None) -> str | None:
    """What a half-precision dtype means on the CPU, as one line, or None when there is
    nothing to say (``float32``, or a device other than ``"cpu"``).

    ``bfloat16`` / ``float16`` with ``device="cpu"`` is allowed, not refused: it halves the
    memory of the base weights (2 bytes per parameter instead of 4), which is the one
    reason to choose it on a CPU. But three things follow that the profile does not say:
    the frozen base computes in the half dtype (fewer mantissa bits; fast only on CPUs with
    native support such as AVX512-BF16/AMX, otherwise possibly slower than float32), training
    runs without mixed precision (:func:`mmed.rl.grpo.trl_grpo_config` sets ``bf16=False``
    on CPU), and PEFT keeps LoRA adapters in float32 (``autocast_adapter_dtype``).
    :func:`load_policy` logs this line as a warning each time it loads such a model.

    Raises:
        ValueError: an unknown dtype (:func:`mmed.models.resolve_dtype`).
    """
    torch_dtype = resolve_dtype(dtype)
    if device != "cpu" or torch_dtype == torch.float32:
        return None
    name = str(torch_dtype).removeprefix("torch.")
    weights = (f"the base weights load in {name} (half the memory of float32)" if quantization is None
               else f"the base weights load in 4-bit {quantization} with {name} compute")
    return (
        f"dtype {name} on device cpu: {weights}; the frozen base computes in {name} (fewer mantissa bits; "
        f"fast only where the CPU has native {name} matmuls, e.g. AMX, else it may be slower than float32), "
        f"mixed precision is off on CPU (training arguments bf16=False, fp16=False) and LoRA adapters are float32; "
        f"set models.dtype: float32 for full precision on CPU"
    )


def load_policy(
    name_or_path: str | Path,
    adapters: str | Path | None = None,
    quantization: str | None = None,
    dtype: str | torch.dtype = "float32",
    device: str = "cpu",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    attn_implementation: str | None = None,
    trainable_adapters: bool = False,
) -> tuple[torch.nn.Module, Any]:
    """Load a policy model and its processor.

    Args:
        name_or_path: Hub id (``Qwen/Qwen2.5-VL-7B-Instruct``) or local folder (the tiny
            model in ``runs/<id>/models/base``).
        adapters: a PEFT adapter folder saved in a run (``adapter_config.json`` +
            weights), loaded with ``PeftModel.from_pretrained``; None = base model only.
        quantization: None, ``"nf4"`` or ``"fp4"`` (bitsandbytes 4-bit, see
            :func:`mmed.models.quantization_config`).
        dtype: ``"float32"`` | ``"bfloat16"`` | ``"float16"``: weight dtype, and the compute
            dtype of 4-bit layers. A half dtype on ``device="cpu"`` is logged as one
            warning line (:func:`cpu_half_precision_note`).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (accelerate's device map).
        min_pixels, max_pixels: processor image area bounds (profile ``image`` section).
        attn_implementation: passed to ``from_pretrained`` (None = transformers' default, sdpa).
        trainable_adapters: load the adapters with ``is_trainable=True`` (to continue
            training them); default False (inference).
    Returns:
        ``(model, processor)``: the model in eval mode (a ``PeftModel`` when adapters are
        given); the processor pads on the left.
    Raises:
        ValueError: unknown dtype/quantization, or an adapter folder without
            ``adapter_config.json``.
        FileNotFoundError: ``adapters`` does not exist.

    Source: transformers ``AutoModelForImageTextToText`` / ``BitsAndBytesConfig``; PEFT
    ``PeftModel.from_pretrained``.
    """
    torch_dtype = resolve_dtype(dtype)
    qconfig = quantization_config(quantization, torch_dtype)
    note = cpu_half_precision_note(torch_dtype, device, quantization)
    if note is not None:
        log.warning(note)
    device_map: Any = "auto" if device == "auto" else {"": device}
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "device_map": device_map}
    if qconfig is not None:
        kwargs["quantization_config"] = qconfig
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForImageTextToText.from_pretrained(str(name_or_path), **kwargs)
    if adapters is not None:
        adapters = Path(adapters)
        if not adapters.exists():
            raise FileNotFoundError(f"adapter folder {adapters} does not exist")
        if not (adapters / "adapter_config.json").is_file():
            raise ValueError(f"{adapters} holds no adapter_config.json (not a PEFT adapter folder)")
        model = PeftModel.from_pretrained(model, str(adapters), is_trainable=trainable_adapters)
    model.eval()
    processor = load_processor(name_or_path, min_pixels=min_pixels, max_pixels=max_pixels)
    return model, processor
