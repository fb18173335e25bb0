"""Batched generation for vision-language policies (the triage doctor, the attending,
local-model specialists).

One :class:`PolicyRunner` wraps a ``(model, processor)`` pair from
:func:`mmed.models.load_policy` and turns chat messages with images into completions,
batch by batch: ``processor.apply_chat_template`` → ``processor(text=..., images=...,
padding=True)`` with left padding → ``model.generate`` (transformers). The same object
serves the tiny offline Qwen2.5-VL and Qwen2.5-VL-7B; only the profile's sampling
settings differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from ..models.images import fitted


@dataclass
class SamplingParams:
    """Decoding settings. ``temperature == 0`` means greedy decoding.

    Attributes:
        max_new_tokens: cap on generated tokens per completion.
        temperature: softmax temperature (0 → greedy, ``do_sample=False``).
        top_p: nucleus sampling mass in (0, 1].
        num_return_sequences: completions per prompt (test-time scaling samples 16).
        seed: torch seed set before each batch when sampling (reproducible draws).
    """

    max_new_tokens: int = 48
    temperature: float = 0.0
    top_p: float = 1.0
    num_return_sequences: int = 1
    seed: int | None = 0

    def to_generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``model.generate``."""
        kw: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "num_return_sequences": self.num_return_sequences}
        if self.temperature and self.temperature > 0:
            kw.update(do_sample=True, temperature=self.temperature, top_p=self.top_p)
        else:
            if self.num_return_sequences > 1:
                raise ValueError("num_return_sequences > 1 needs temperature > 0 (greedy decoding repeats itself)")
            kw.update(do_sample=False)
        return kw


def _pil(img: Any):
    """A PIL RGB image from a PIL image, a ``datasets.Image`` dict or a path."""
    import PIL.Image

    if isinstance(img, PIL.Image.Image):
        return img.convert("RGB") if img.mode != "RGB" else img
    if isinstance(img, dict):
        if img.get("bytes"):
            import io

            return PIL.Image.open(io.BytesIO(img["bytes"])).convert("RGB")
        if img.get("path"):
            return PIL.Image.open(img["path"]).convert("RGB")
    if isinstance(img, str):
        return PIL.Image.open(img).convert("RGB")
    raise TypeError(f"cannot turn {type(img).__name__} into an image")


class PolicyRunner:
    """Batched chat generation with images for one policy.

    Args:
        model: a transformers image-text-to-text model (optionally PEFT-wrapped).
        processor: its processor (tokenizer + image processor); padding side is set to
            ``"left"`` here, as decoder-only batched generation requires.
        batch_size: prompts per ``generate`` call.
        name: label for progress bars and logs.
    """

    def __init__(self, model: Any, processor: Any, batch_size: int = 16, name: str = "policy"):
        self.model = model
        self.processor = processor
        self.batch_size = max(1, int(batch_size))
        self.name = name
        tok = getattr(processor, "tokenizer", processor)
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def image_processor(self) -> Any:
        """The processor's image processor (None for a text-only processor)."""
        return getattr(self.processor, "image_processor", None)

    def encode(self, messages: Sequence[list[dict]], images: Sequence[Sequence[Any]]) -> dict[str, torch.Tensor]:
        """Tokenise a batch of chats with their images (left-padded tensors on the model's device).

        Args:
            messages: one chat per prompt (list of role/content dicts; image content parts
                ``{"type": "image"}`` mark where each image goes, in order).
            images: per prompt, the images for its image parts (same count).
        Raises:
            ValueError: when a prompt's image parts and images differ in number.
        """
        texts = []
        flat: list[Any] = []
        for i, (msgs, imgs) in enumerate(zip(messages, images, strict=True)):
            n_parts = sum(
                1 for m in msgs for p in (m["content"] if isinstance(m["content"], list) else []) if p.get("type") == "image"
            )
            if n_parts != len(imgs):
                raise ValueError(f"prompt {i}: {n_parts} image parts but {len(imgs)} images")
            texts.append(self.processor.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))
            # each image as the processor will resize it, once per image object (mmed.models.images)
            flat.extend(fitted(im, self.image_processor, convert=_pil) for im in imgs)
        enc = self.processor(text=texts, images=flat or None, padding=True, return_tensors="pt")
        return enc.to(self.model.device)

    @torch.inference_mode()
    def generate(
        self,
        messages: Sequence[list[dict]],
        images: Sequence[Sequence[Any]],
        sampling: SamplingParams | None = None,
        progress: bool = True,
    ) -> list[list[str]]:
        """Generate completions for every prompt, ``batch_size`` prompts at a time.

        Returns:
            ``out[i]`` = the ``sampling.num_return_sequences`` completions (decoded text,
            special tokens removed) of prompt ``i``, in input order.
        """
        sampling = sampling or SamplingParams()
        kw = sampling.to_generate_kwargs()
        tok = self.tokenizer
        kw.setdefault("pad_token_id", tok.pad_token_id)
        eos = [t for t in {tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")} if isinstance(t, int) and t >= 0]
        kw.setdefault("eos_token_id", eos or None)
        was_training = self.model.training
        self.model.eval()
        out: list[list[str]] = []
        starts = range(0, len(messages), self.batch_size)
        bar = tqdm(starts, desc=f"{self.name} generate", disable=not progress or len(messages) <= self.batch_size, leave=False)
        try:
            for b in bar:
                enc = self.encode(messages[b : b + self.batch_size], images[b : b + self.batch_size])
                if sampling.seed is not None and kw.get("do_sample"):
                    torch.manual_seed(sampling.seed + b)
                gen = self.model.generate(**enc, **kw)
                new = gen[:, enc["input_ids"].shape[1] :]
                texts = tok.batch_decode(new, skip_special_tokens=True)
                r = sampling.num_return_sequences
                out.extend(texts[j * r : (j + 1) * r] for j in range(len(texts) // r))
        finally:
            if was_training:
                self.model.train()
        return out

    def generate_one_by_one(
        self, messages: Sequence[list[dict]], images: Sequence[Sequence[Any]], sampling: SamplingParams | None = None
    ) -> list[list[str]]:
        """Same as :meth:`generate` with batch size 1 (the benchmark's baseline)."""
        bs, self.batch_size = self.batch_size, 1
        try:
            return self.generate(messages, images, sampling, progress=False)
        finally:
            self.batch_size = bs
