"""Images fitted to a policy's processor once, instead of at every step.

Qwen2-VL's image processor resizes every image it is given to a size of its choosing
(``smart_resize``: sides multiples of ``patch_size * merge_size``, the area within
``[shortest_edge, longest_edge]`` pixels) before it cuts patches. A VQA-RAD radiograph of
1024 x 1310 pixels that the demo shows at 112 x 84 is decoded and resized again for every
batch it enters: every GRPO step (each prompt repeated for every generation), every cold-start
batch, every evaluation row. :func:`fit_image` makes that resize once, with the image
processor's own steps (``convert_to_rgb``, ``smart_resize``, PIL's resize with the
processor's ``resample``), so that the processor, given the fitted image, computes the same
size, its resize to that size is PIL's identity (PIL returns a copy when the size is
unchanged) and its ``pixel_values`` are the same numbers bit for bit
(``tests/test_images.py`` compares them on real images). Only the policy's inputs are
fitted: what a specialist behind an API sees is left alone.

Sources: transformers ``models/qwen2_vl/image_processing_pil_qwen2_vl.py`` (``smart_resize``,
``resize``), ``image_transforms.py`` (``convert_to_rgb``, ``resize``), Pillow's
``Image.resize``.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable


def fit_settings(image_processor: Any) -> tuple[int, int, int, int] | None:
    """``(factor, min_pixels, max_pixels, resample)`` of a Qwen2-VL image processor of
    transformers' PIL backend (``PilBackend``: it resizes with PIL, as :func:`fit_image`
    does), or None for any other processor — the torchvision one resizes with torchvision's
    antialiased kernels, so its images are left as they are.

    ``factor`` = ``patch_size * merge_size``; the pixels are its ``size`` dict's
    ``shortest_edge`` / ``longest_edge``."""
    try:
        from transformers.image_processing_backends import PilBackend
    except ImportError:  # a transformers without image backends: fit nothing
        return None
    if not isinstance(image_processor, PilBackend):
        return None
    size = getattr(image_processor, "size", None)
    patch, merge = getattr(image_processor, "patch_size", None), getattr(image_processor, "merge_size", None)
    lo = getattr(size, "shortest_edge", None) if size is not None else None
    hi = getattr(size, "longest_edge", None) if size is not None else None
    if isinstance(size, dict):
        lo, hi = size.get("shortest_edge"), size.get("longest_edge")
    resample = getattr(image_processor, "resample", None)
    if not (patch and merge and lo and hi) or resample is None or not getattr(image_processor, "do_resize", True):
        return None
    return int(patch) * int(merge), int(lo), int(hi), int(resample)


def fit_image(image: Any, image_processor: Any) -> Any:
    """The PIL image ``image_processor`` would make of ``image`` before cutting patches.

    Args:
        image: a PIL image (any mode: converted as the processor converts it, RGBA
            composited on white).
        image_processor: a Qwen2-VL image processor (``processor.image_processor``).
    Returns:
        an RGB PIL image of the processor's size for it (``image`` itself when it is RGB
        and already of that size, or when :func:`fit_settings` is None).
    """
    settings = fit_settings(image_processor)
    if settings is None:
        return image
    from transformers.image_transforms import convert_to_rgb
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    factor, lo, hi, resample = settings
    if getattr(image_processor, "do_convert_rgb", True) and (image.mode != "RGB" or "transparency" in image.info):
        import PIL.Image

        image = PIL.Image.fromarray(convert_to_rgb(image, return_numpy=True))
    w, h = image.size
    rh, rw = smart_resize(h, w, factor=factor, min_pixels=lo, max_pixels=hi)
    return image if (rw, rh) == (w, h) else image.resize((rw, rh), resample=resample)


#: fitted images by (id of the original, settings): the original is held weakly and the
#: entry dropped when it is collected, so an id is never matched to another image
_FITTED: dict[tuple[int, tuple[int, int, int, int]], tuple[Any, Any]] = {}


def fitted(image: Any, image_processor: Any, convert: Callable[[Any], Any] | None = None) -> Any:
    """:func:`fit_image` of ``convert(image)`` (``image`` when None), remembered for as long
    as ``image`` (the same object) lives.

    An evaluation shows the same decoded items to many systems (ablation rows, stages,
    seeds); each fits an image once. Objects that cannot be referenced weakly (a dict, a
    path) are converted and fitted every time."""
    settings = fit_settings(image_processor)
    if settings is None:
        return convert(image) if convert is not None else image
    key = (id(image), settings)
    hit = _FITTED.get(key)
    if hit is not None and hit[0]() is image:
        return hit[1]
    out = fit_image(convert(image) if convert is not None else image, image_processor)
    if out is image:  # nothing to fit: remembering it would hold the image it holds weakly
        return out
    try:
        ref = weakref.ref(image, lambda _r, key=key, cache=_FITTED: cache.pop(key, None))
    except TypeError:
        return out
    _FITTED[key] = (ref, out)
    return out


#: image modes that a BMP file holds and gives back unchanged (PIL's ``BmpImagePlugin``:
#: "RGB" as 24-bit, "L" as 8-bit with a grey palette, read back as "L")
_BMP_MODES: frozenset[str] = frozenset({"RGB", "L"})


def stored_losslessly(image: Any) -> Any:
    """``image`` as a ``datasets.Image`` column stores it fastest: a copy marked as BMP.

    ``datasets`` stores a PIL image opened from a file as that file's path, and any other
    (in-memory) one re-saved in its own ``format`` when PIL can read that format back (JPEG:
    lossy), else as PNG (modes 1, L, LA, RGB, RGBA) or TIFF (``datasets/features/image.py``:
    ``encode_pil_image``, ``image_to_bytes``). PNG compresses: ~1.3 ms to encode a 98 x 98 RGB
    image and ~5.7 ms a 224 x 224 one, against ~0.02–0.05 ms as BMP (uncompressed), and a
    training's dataset is encoded twice (its rows, then :func:`fit_dataset_images`); decoding
    is ~10x faster too. BMP is lossless: the decoded pixels are the same
    (``tests/test_images.py``); it keeps no ICC profile (the processor reads none). The copy
    leaves ``image`` (shared with evaluations) as it is.

    Args:
        image: anything a ``datasets.Image`` column takes. Marked: an in-memory PIL image in
            mode "RGB" or "L" without ``transparency``. Returned unchanged: a PIL image with
            a file behind it (``filename``: ``datasets`` stores the path, which costs no
            memory), other modes (stored as ``datasets`` would) and non-images (dicts of
            bytes or paths).
    Returns:
        a PIL image with ``format == "BMP"`` (same size, mode and pixels), or ``image``.
    """
    import PIL.Image

    if (not isinstance(image, PIL.Image.Image) or getattr(image, "filename", "") or image.mode not in _BMP_MODES
            or "transparency" in image.info):
        return image
    out = image.copy()
    out.format = "BMP"
    return out


def fit_dataset_images(rows: Any, image_processor: Any, column: str = "images") -> Any:
    """A ``datasets.Dataset`` whose ``column`` (a list of images per row) is fitted with
    :func:`fit_image`: done once per training instead of in every batch, and stored
    losslessly as BMP (:func:`stored_losslessly`). Unchanged when the column is missing or
    :func:`fit_settings` is None.

    Source: ``datasets.Dataset.map`` (in memory: no cache files)."""
    if column not in getattr(rows, "column_names", []) or fit_settings(image_processor) is None:
        return rows
    return rows.map(lambda r: {column: [stored_losslessly(fit_image(im, image_processor)) for im in r[column]]},
                    keep_in_memory=True, desc="fitting images to the processor")


__all__ = ["fit_dataset_images", "fit_image", "fit_settings", "fitted", "stored_losslessly"]
