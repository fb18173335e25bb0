"""Images fitted to the processor once (mmed/models/images.py): the processor's pixel values
are the same numbers, bit for bit, whether it gets the original or the fitted image."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from mmed.config import load_profile
from mmed.data.synthetic import make_synthetic
from mmed.models import load_processor
from mmed.models import images as I
from mmed.rl.pretrain import shipped_base_entry


@pytest.fixture(scope="module")
def processor():
    # the demo's policies' processor (7-pixel patches, 56x56 .. 112x112), from its shipped base
    prof = load_profile("demo")
    return load_processor(str(shipped_base_entry(prof)), min_pixels=prof.image.min_pixels,
                          max_pixels=prof.image.max_pixels)


def _same_pixels(processor, originals, fitted):
    ip = processor.image_processor
    a, b = ip(images=originals, return_tensors="pt"), ip(images=fitted, return_tensors="pt")
    assert torch.equal(a["image_grid_thw"], b["image_grid_thw"])
    assert a["pixel_values"].shape == b["pixel_values"].shape and torch.equal(a["pixel_values"], b["pixel_values"])


def _odd_images():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (150, 230, 4), dtype=np.uint8)
    rgba[:40, :, 3] = 0  # transparent rows: composited on white by the processor
    return [
        PIL.Image.fromarray(rng.integers(0, 256, (1310, 1024, 3), dtype=np.uint8)),  # a big radiograph's size
        PIL.Image.fromarray(rng.integers(0, 256, (384, 512), dtype=np.uint8), mode="L"),  # grayscale
        PIL.Image.fromarray(rgba, mode="RGBA"),
        PIL.Image.fromarray(rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)),  # under min_pixels: enlarged
        PIL.Image.fromarray(rng.integers(0, 256, (84, 112, 3), dtype=np.uint8)),  # already the processor's size
    ]


def test_fitted_images_give_the_processor_the_same_pixel_values(processor):
    originals = _odd_images() + [it["images"][0] for it in make_synthetic(6, 0, image_size=96, split="validation")]
    fitted = [I.fit_image(im, processor.image_processor) for im in originals]
    _same_pixels(processor, originals, fitted)
    assert fitted[0].size == (98, 126) and fitted[0].mode == "RGB" and fitted[1].mode == "RGB"
    assert fitted[4] is originals[4]  # nothing to do: the same object
    # the transparent rows became white, as the processor makes them
    assert np.asarray(fitted[2]).mean() > np.asarray(originals[2].convert("RGB")).mean()


def test_fitted_real_images_give_the_same_pixel_values(processor, shared_data: Path):
    files = sorted((shared_data / "vqa_rad").rglob("*.jpg"))[:12] + sorted((shared_data / "triage").rglob("*.png"))[:6]
    files += sorted((shared_data / "triage").rglob("*.jpg"))[:6]
    assert len(files) >= 12
    originals = [PIL.Image.open(f) for f in files]
    _same_pixels(processor, originals, [I.fit_image(im, processor.image_processor) for im in originals])


def test_fitted_remembers_an_image_while_it_lives(processor):
    ip = processor.image_processor
    im = _odd_images()[0]
    calls = []

    def convert(x):
        calls.append(type(x).__name__)  # not the image itself: it must be collectable below
        return x

    first = I.fitted(im, ip, convert=convert)
    assert I.fitted(im, ip, convert=convert) is first and len(calls) == 1
    key = (id(im), I.fit_settings(ip))
    assert key in I._FITTED
    del im, first
    gc.collect()
    assert key not in I._FITTED  # dropped with the original: an id is never matched to another image
    # a dict (not weakly referable) is converted every time
    d = {"path": "x"}
    assert I.fitted(d, ip, convert=lambda x: PIL.Image.new("RGB", (20, 20))).size == (56, 56)


def test_fit_settings_and_datasets(processor):
    import datasets

    assert I.fit_settings(processor.image_processor) == (14, 3136, 12544, int(processor.image_processor.resample))
    assert I.fit_settings(None) is None and I.fit_image("unchanged", None) == "unchanged"
    rows = datasets.Dataset.from_dict({"images": [[im] for im in _odd_images()[:3]], "id": ["a", "b", "c"]})
    out = I.fit_dataset_images(rows, processor.image_processor)
    sizes = [r["images"][0].size for r in out]
    assert sizes == [I.fit_image(im, processor.image_processor).size for im in _odd_images()[:3]]
    assert all(w % 14 == 0 and h % 14 == 0 and 3136 <= w * h <= 12544 for w, h in sizes)
    assert out["id"] == ["a", "b", "c"]
    _same_pixels(processor, [r["images"][0] for r in rows], [r["images"][0] for r in out])
    assert I.fit_dataset_images(rows.remove_columns("images"), processor.image_processor).column_names == ["id"]


def test_only_the_pil_backend_is_fitted_and_unchanged_images_are_not_remembered(processor):
    import types

    ip = processor.image_processor
    # a processor that is not transformers' PIL backend (e.g. the torchvision one) resizes otherwise: left alone
    other = types.SimpleNamespace(size=ip.size, patch_size=ip.patch_size, merge_size=ip.merge_size, resample=ip.resample)
    assert I.fit_settings(other) is None and I.fit_image(_odd_images()[0], other).size == (1024, 1310)
    # an image already of the processor's size is returned as is and not kept by the cache
    im = _odd_images()[4]
    assert I.fitted(im, ip) is im and (id(im), I.fit_settings(ip)) not in I._FITTED


def _stored_formats(ds, column: str = "images") -> list[str]:
    """The file format of every stored image of ``column`` (its bytes' magic number)."""
    import datasets

    raw = ds.cast_column(column, datasets.List(datasets.Image(decode=False)))
    magic = {b"BM": "BMP", b"\x89P": "PNG"}
    return [magic.get(bytes(im["bytes"][:2]), "other") for row in raw[column] for im in row]


def test_images_are_stored_as_bmp_with_the_same_pixels(processor):
    import datasets

    originals = _odd_images()  # RGB, L, RGBA (transparent), small RGB, processor-sized RGB
    marked = [I.stored_losslessly(im) for im in originals]
    assert [m.format for m in marked] == ["BMP", "BMP", None, "BMP", "BMP"]
    assert marked[2] is originals[2]  # RGBA with transparency: left to datasets (PNG)
    assert all(im.format is None for im in originals)  # the callers' images are not marked
    assert I.stored_losslessly({"path": "x.png"}) == {"path": "x.png"}
    rows = datasets.Dataset.from_dict({"images": [[m] for m in marked]})
    assert _stored_formats(rows) == ["BMP", "BMP", "PNG", "BMP", "BMP"]
    for a, b in zip(originals, (r["images"][0] for r in rows)):
        assert a.mode == b.mode and a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))
    # fitted in a dataset: stored as BMP, the same pixel values as the originals give the processor
    out = I.fit_dataset_images(rows, processor.image_processor)
    assert _stored_formats(out) == ["BMP"] * 5
    _same_pixels(processor, originals, [r["images"][0] for r in out])


def test_training_rows_store_their_images_as_bmp():
    from mmed.rl.grpo import grpo_dataset
    from mmed.rl.sft import sft_dataset

    items = make_synthetic(4, 0, image_size=96, split="validation")
    for ds in (grpo_dataset("triage", items), sft_dataset("triage", items, ["x"] * 4, None, "compact")):
        assert _stored_formats(ds) == ["BMP"] * 4
        for it, row in zip(items, ds):
            assert np.array_equal(np.asarray(it["images"][0]), np.asarray(row["images"][0]))


def test_an_image_opened_from_a_file_is_stored_as_its_path(tmp_path):
    import datasets

    f = tmp_path / "x.png"
    PIL.Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(f)
    opened = PIL.Image.open(f)
    assert I.stored_losslessly(opened) is opened  # datasets stores the path: no bytes held in memory
    raw = datasets.Dataset.from_dict({"images": [[I.stored_losslessly(opened)]]}).cast_column(
        "images", datasets.List(datasets.Image(decode=False)))[0]["images"][0]
    assert raw["path"] == str(f) and raw["bytes"] is None
