"""A Qwen2.5-VL processor for images only: no video processor, so no torchvision.

transformers' ``Qwen2_5_VLProcessor`` always builds a video processor, and every video
processor in transformers 5 needs torchvision, which does not import beside the CPU build
of torch used here (docs/architecture.md#environment-facts). This subclass keeps everything of the stock processor that
concerns text and images — the ``<|image_pad|>`` expansion (one placeholder per 2x2 merged
patch group), ``mm_token_type_ids``, the chat template — and drops the video processor.
Passing ``videos=`` raises a ``ValueError``.

This file imports only ``transformers`` on purpose: ``save_pretrained`` copies it into the
model folder and writes ``auto_map`` into ``processor_config.json`` (transformers'
custom-code mechanism), so another process that has not imported ``mmed`` loads the
processor with ``AutoProcessor.from_pretrained(path, trust_remote_code=True)`` — and
``transformers serve --trust-remote-code`` serves the folder. A process that imported
``mmed.models`` needs no ``trust_remote_code``: the class is registered with AutoProcessor.
"""

from __future__ import annotations

from typing import Any

from transformers import Qwen2_5_VLProcessor


class Qwen2_5_VLImageOnlyProcessor(Qwen2_5_VLProcessor):
    """``Qwen2_5_VLProcessor`` without a video processor (image + text inputs only).

    Args:
        image_processor: a Qwen2-VL image processor (``Qwen2VLImageProcessorPil`` here, or
            the torchvision ``Qwen2VLImageProcessor`` where torchvision is installed).
        tokenizer: a Qwen2 tokenizer holding ``<|image_pad|>`` and ``<|video_pad|>``.
        chat_template: a Jinja chat template (Qwen style: ``<|vision_start|><|image_pad|>
            <|vision_end|>`` for each image content part).
        **kwargs: other keys found in a saved ``processor_config.json`` (e.g. a stock
            checkpoint's ``video_processor`` section) are ignored.

    Source: transformers ``models/qwen2_5_vl/processing_qwen2_5_vl.py`` (subclassed).
    """

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None, **kwargs: Any):
        super().__init__(image_processor=image_processor, tokenizer=tokenizer, video_processor=None, chat_template=chat_template)

    @classmethod
    def get_attributes(cls) -> list[str]:
        """Sub-processors saved and loaded with this processor: image processor and tokenizer."""
        return ["image_processor", "tokenizer"]

    def __call__(self, images: Any = None, text: Any = None, videos: Any = None, **kwargs: Any) -> Any:
        """Tokenize ``text`` and preprocess ``images`` as ``Qwen2_5_VLProcessor`` does.

        Raises:
            ValueError: when ``videos`` is given (this processor has no video processor).
        """
        if videos is not None:
            raise ValueError("Qwen2_5_VLImageOnlyProcessor handles images only; videos are not supported")
        return super().__call__(images=images, text=text, **kwargs)


# save_pretrained copies this file beside the processor and writes ``auto_map`` for it.
Qwen2_5_VLImageOnlyProcessor.register_for_auto_class("AutoProcessor")
