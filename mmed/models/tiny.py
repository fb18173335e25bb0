"""The tiny offline Qwen2.5-VL: a randomly initialised ``Qwen2_5_VLForConditionalGeneration``
small enough for CPU tests and the demo, built without the Hub (docs/architecture.md#profiles,
docs/architecture.md#environment-facts).

Three pieces, each made with the library that owns it:

- **tokenizer** — a byte-level BPE trained with ``tokenizers`` on the corpus this package
  ships (:data:`CORPUS_PATH`), with Qwen2's pre-tokenizer regex, NFC normaliser and
  byte-level decoder, the Qwen chat special tokens (:data:`QWEN_SPECIAL_TOKENS`) and the
  reasoning/answer tags (:data:`REASONING_TAGS`, ordinary added tokens so that decoding
  with ``skip_special_tokens=True`` keeps them); wrapped as transformers'
  ``Qwen2Tokenizer`` (a fast, ``tokenizers``-backed tokenizer). Training is deterministic.
- **processor** — ``Qwen2VLImageProcessorPil`` (no torchvision) inside
  :class:`~mmed.models.processing_qwen2_5_vl.Qwen2_5_VLImageOnlyProcessor`, with the
  Qwen2.5-VL chat template (:data:`QWEN2_5_VL_CHAT_TEMPLATE`).
- **model** — ``Qwen2_5_VLConfig`` with the sizes of a :class:`mmed.config.TinyModelConfig`
  (every hidden size a multiple of 64: bitsandbytes' CPU 4-bit kernels fail on other input
  sizes), weights drawn under ``torch.manual_seed(seed)``.

The saved folder is a normal transformers checkpoint: ``AutoModelForImageTextToText`` loads
the model in any process; ``AutoProcessor`` loads the processor in a process that imported
``mmed.models``, or anywhere with ``trust_remote_code=True`` (the processor's source file is
saved beside it), which is also how ``transformers serve --trust-remote-code`` serves it.
The model is random: it writes gibberish until the cold-start SFT (``mmed/rl``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
from tokenizers.models import BPE
from transformers import (
    GenerationConfig,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2Tokenizer,
    Qwen2VLImageProcessorPil,
)
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

from mmed.config import TinyModelConfig
from mmed.models.processing_qwen2_5_vl import Qwen2_5_VLImageOnlyProcessor

#: The text file the tokenizer is trained on (shipped as package data).
CORPUS_PATH: Path = Path(__file__).resolve().parent / "tokenizer_corpus.txt"

#: Qwen2.5-VL's special tokens, in Qwen's id order (ids here start at 0).
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: Reasoning / answer tags (paper §3 output format), single tokens for the tiny model.
REASONING_TAGS: tuple[str, ...] = ("<think>", "</think>", "<answer>", "</answer>")

#: Qwen2.5-VL-Instruct's chat template, with one change: a content part's kind is read from
#: its ``type`` key first (``datasets`` stores content parts as structs, so a text part may
#: carry an ``image: None`` key and the official ``'image' in content`` test would misfire).
QWEN2_5_VL_CHAT_TEMPLATE: str = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if 'type' in content and content['type'] %}{% set kind = content['type'] %}"
    "{% elif 'image' in content or 'image_url' in content %}{% set kind = 'image' %}"
    "{% elif 'video' in content %}{% set kind = 'video' %}{% else %}{% set kind = 'text' %}{% endif %}"
    "{% if kind == 'image' or kind == 'image_url' %}{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif kind == 'video' %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif content['text'] is not none %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: Vision patch geometry of Qwen2.5-VL (the real model's values; a tiny model may set a
#: smaller patch with ``TinyModelConfig.vision_patch_size``).
PATCH_SIZE = 14
MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
#: Longest prompt + completion the tiny model is configured for (tokens).
MAX_POSITIONS = 4096


def _as_tiny_config(size: TinyModelConfig | dict[str, Any] | None) -> TinyModelConfig:
    if size is None:
        return TinyModelConfig()
    if isinstance(size, TinyModelConfig):
        return size
    if isinstance(size, dict):
        known = {f.name for f in dataclasses.fields(TinyModelConfig)}
        unknown = sorted(set(size) - known)
        if unknown:
            raise ValueError(f"tiny model size: unknown key(s) {unknown}; known keys: {sorted(known)}")
        return TinyModelConfig(**size)
    raise TypeError(f"size must be a TinyModelConfig, a dict or None, got {type(size).__name__}")


def validate_tiny_config(size: TinyModelConfig) -> None:
    """Check the sizes of a tiny Qwen2.5-VL before building it.

    Raises:
        ValueError: naming the field, when a hidden size is not a positive multiple of 64
            (bitsandbytes CPU 4-bit generation needs it, docs/architecture.md#environment-facts), heads do not divide the
            hidden size, the text head dimension is not a multiple of 8 (multimodal RoPE
            splits half of it in three sections), or the vocabulary cannot hold the special
            tokens and the 256 byte symbols.
    """
    for name in ("hidden_size", "intermediate_size", "vision_hidden_size", "vision_intermediate_size"):
        v = getattr(size, name)
        if v <= 0 or v % 64:
            raise ValueError(f"tiny model size: '{name}' = {v} must be a positive multiple of 64 (bitsandbytes CPU 4-bit)")
    for name in ("num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vision_depth", "vision_num_heads"):
        if getattr(size, name) < 1:
            raise ValueError(f"tiny model size: '{name}' must be >= 1, got {getattr(size, name)}")
    if size.hidden_size % size.num_attention_heads:
        raise ValueError(f"tiny model size: hidden_size {size.hidden_size} not divisible by num_attention_heads {size.num_attention_heads}")
    if size.num_attention_heads % size.num_key_value_heads:
        raise ValueError("tiny model size: num_attention_heads must be a multiple of num_key_value_heads")
    if (size.hidden_size // size.num_attention_heads) % 8:
        raise ValueError("tiny model size: text head dimension (hidden_size / num_attention_heads) must be a multiple of 8")
    if size.vision_hidden_size % size.vision_num_heads or (size.vision_hidden_size // size.vision_num_heads) % 4:
        raise ValueError("tiny model size: vision head dimension must be an integer multiple of 4")
    if size.vision_patch_size < 2 or 112 % (size.vision_patch_size * MERGE_SIZE):
        raise ValueError(f"tiny model size: 'vision_patch_size' = {size.vision_patch_size} must be >= 2 and "
                         f"{MERGE_SIZE} x it must divide the 112-pixel attention window (e.g. 7, 14, 28)")
    floor = 256 + len(QWEN_SPECIAL_TOKENS) + len(REASONING_TAGS)
    if size.vocab_size < floor:
        raise ValueError(f"tiny model size: 'vocab_size' = {size.vocab_size} must be >= {floor} (bytes + special tokens)")


def mrope_section(head_dim: int) -> list[int]:
    """Split of the rotary half-dimension into (temporal, height, width) sections.

    Qwen2.5-VL's multimodal RoPE (M-RoPE) uses ``[16, 24, 24]`` for head_dim 128, i.e. the
    proportions 2:3:3 of ``head_dim // 2``; this keeps those proportions for any head_dim
    that is a multiple of 8. Returns three ints summing to ``head_dim // 2``.
    """
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def train_tokenizer(vocab_size: int, corpus: str | Path | None = None) -> Qwen2Tokenizer:
    """Train the tiny model's byte-level BPE tokenizer (deterministic).

    Args:
        vocab_size: total vocabulary size including the special tokens and reasoning tags
            (the BPE stops earlier when the corpus offers no more merges — about 1,600
            tokens for the shipped corpus — and ``len(tokenizer)`` is then smaller).
        corpus: a UTF-8 text file; default :data:`CORPUS_PATH`.
    Returns:
        a ``Qwen2Tokenizer`` (fast) with ids ``0..13`` for :data:`QWEN_SPECIAL_TOKENS`,
        eos ``<|im_end|>``, pad ``<|endoftext|>``, the Qwen2.5-VL chat template, and
        :data:`REASONING_TAGS` as the last ids.
    Raises:
        FileNotFoundError: the corpus file is missing.

    Source: ``tokenizers`` BpeTrainer; pre-tokenizer/normaliser/decoder as transformers'
    ``Qwen2Tokenizer``.
    """
    corpus = Path(corpus) if corpus is not None else CORPUS_PATH
    if not corpus.is_file():
        raise FileNotFoundError(f"tokenizer corpus {corpus} not found")
    bpe = Tokenizer(BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(REASONING_TAGS),
        min_frequency=1,
        special_tokens=list(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train([str(corpus)], trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tok = Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=[t for t in QWEN_SPECIAL_TOKENS if t not in ("<|endoftext|>", "<|im_end|>")],
        model_max_length=MAX_POSITIONS,
        chat_template=QWEN2_5_VL_CHAT_TEMPLATE,
    )
    tok.add_tokens(list(REASONING_TAGS))
    ids = tok.convert_tokens_to_ids(list(QWEN_SPECIAL_TOKENS))
    if ids != list(range(len(QWEN_SPECIAL_TOKENS))):  # pragma: no cover - guards a tokenizers behaviour change
        raise RuntimeError(f"special token ids moved: {dict(zip(QWEN_SPECIAL_TOKENS, ids))}")
    return tok


def build_processor(
    tokenizer: Qwen2Tokenizer, min_pixels: int = 56 * 56, max_pixels: int = 112 * 112, patch_size: int = PATCH_SIZE
) -> Qwen2_5_VLImageOnlyProcessor:
    """The tiny model's processor: PIL-only Qwen2-VL image processor + ``tokenizer``.

    Args:
        tokenizer: from :func:`train_tokenizer`.
        min_pixels, max_pixels: image area bounds in pixels (Qwen2-VL ``smart_resize``
            rounds each side to a multiple of patch x merge = 28 within them).
        patch_size: vision patch side in pixels (must match the model's
            ``vision_config.patch_size``).
    Raises:
        ValueError: when ``min_pixels > max_pixels`` or ``max_pixels < (patch x merge)²``.
    """
    unit = patch_size * MERGE_SIZE
    if min_pixels > max_pixels or max_pixels < unit**2:
        raise ValueError(f"need {unit ** 2} <= min_pixels <= max_pixels, got {min_pixels}, {max_pixels}")
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        patch_size=patch_size,
        merge_size=MERGE_SIZE,
        temporal_patch_size=TEMPORAL_PATCH_SIZE,
    )
    return Qwen2_5_VLImageOnlyProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=QWEN2_5_VL_CHAT_TEMPLATE)


def tiny_qwen2_5_vl_config(size: TinyModelConfig, tokenizer: Qwen2Tokenizer) -> Qwen2_5_VLConfig:
    """``Qwen2_5_VLConfig`` for the sizes in ``size`` and the token ids of ``tokenizer``.

    Vision tower: patch ``size.vision_patch_size`` (14 as Qwen2.5-VL, or smaller so that a
    <= 112-pixel image gives more tokens), spatial merge 2, temporal patch 2, window 112 px, full attention
    in the last block (as Qwen2.5-VL); its merger projects to the text hidden size. Text
    model: M-RoPE sections from :func:`mrope_section`, rope theta 1e6, untied embeddings.
    Raises:
        ValueError: from :func:`validate_tiny_config`, or when ``len(tokenizer)`` differs
            from ``size.vocab_size`` (every embedding row must be a real token).
    """
    validate_tiny_config(size)
    if len(tokenizer) != size.vocab_size:
        raise ValueError(
            f"tiny model size: 'vocab_size' = {size.vocab_size} but the tokenizer has {len(tokenizer)} tokens "
            f"(the shipped corpus yields at most about that many; lower vocab_size or extend {CORPUS_PATH.name})"
        )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    head_dim = size.hidden_size // size.num_attention_heads
    text_config = dict(
        vocab_size=size.vocab_size,
        hidden_size=size.hidden_size,
        intermediate_size=size.intermediate_size,
        num_hidden_layers=size.num_hidden_layers,
        num_attention_heads=size.num_attention_heads,
        num_key_value_heads=size.num_key_value_heads,
        max_position_embeddings=MAX_POSITIONS,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": mrope_section(head_dim)},
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    vision_config = dict(
        depth=size.vision_depth,
        hidden_size=size.vision_hidden_size,
        intermediate_size=size.vision_intermediate_size,
        num_heads=size.vision_num_heads,
        out_hidden_size=size.hidden_size,
        patch_size=size.vision_patch_size,
        spatial_merge_size=MERGE_SIZE,
        temporal_patch_size=TEMPORAL_PATCH_SIZE,
        window_size=112,
        fullatt_block_indexes=[size.vision_depth - 1],
    )
    return Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def build_tiny_qwen2_5_vl(
    out_dir: str | Path,
    size: TinyModelConfig | dict[str, Any] | None = None,
    seed: int | None = None,
    min_pixels: int = 56 * 56,
    max_pixels: int = 112 * 112,
) -> Path:
    """Build the tiny offline Qwen2.5-VL and save model + processor to ``out_dir``.

    Args:
        out_dir: folder to write (created; existing files of the same names are replaced).
        size: a :class:`mmed.config.TinyModelConfig` (``profile.models.tiny``), a dict of its
            fields, or None for the defaults.
        seed: weight-initialisation seed; None uses ``size.seed``.
        min_pixels, max_pixels: the saved processor's image area bounds (a profile's
            ``image`` section; :func:`mmed.models.load_policy` can override them).
    Returns:
        ``Path(out_dir)``, holding ``config.json``, ``generation_config.json``,
        ``model.safetensors``, the tokenizer files, ``processor_config.json``,
        ``chat_template.jinja`` and ``processing_qwen2_5_vl.py``.
    Raises:
        ValueError / TypeError: bad sizes (see :func:`validate_tiny_config`).

    Deterministic: the same size and seed give byte-identical tokenizer files and
    identical weights (weights are drawn on CPU in float32 under ``torch.manual_seed``).
    """
    size = _as_tiny_config(size)
    seed = size.seed if seed is None else seed
    tokenizer = train_tokenizer(size.vocab_size)
    config = tiny_qwen2_5_vl_config(size, tokenizer)
    processor = build_processor(tokenizer, min_pixels=min_pixels, max_pixels=max_pixels, patch_size=size.vision_patch_size)

    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=config.text_config.bos_token_id,
        eos_token_id=[config.text_config.eos_token_id, config.text_config.pad_token_id],
        pad_token_id=config.text_config.pad_token_id,
        do_sample=False,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
