"""Image content hashes, image-disjoint splits and the leakage report (docs/architecture.md#splits).

VQA-RAD's standard (MEVF) split shares every test image with its training split, so a model
trained on MEVF train has seen every evaluation image. Literature numbers use that split; any
claim about *training* needs a split where no image sits on both sides. Images are compared
by content (sha1 of the file bytes), never by file name: the official and MEVF layouts name the
same files alike, but copies, Hub exports and re-encodings need not.

- :func:`image_hash` - sha1 of an image's bytes, cached per (path, size, mtime).
- :func:`image_disjoint_split` - a seeded split in which no image (content) is on both sides.
- :func:`leakage_report` - images and (image, question) pairs shared by two splits.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Iterator

import datasets

from .mcq import normalize_question


@lru_cache(maxsize=65536)
def _file_sha1(path: str, size: int, mtime_ns: int) -> str:  # size/mtime make the cache key safe
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha1(path: str | os.PathLike[str]) -> str:
    """sha1 hex digest of a file's bytes, cached per (resolved path, size, mtime).

    Raises:
        FileNotFoundError: naming the path.
    """
    p = os.path.realpath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {path} not found") from None
    return _file_sha1(p, st.st_size, st.st_mtime_ns)


def image_hash(image: Any) -> str:
    """Content hash (sha1 hex) of one image in any form an item holds.

    Accepts a file path (``str``/``Path``), a ``{"bytes": ..., "path": ...}`` dict (what
    ``datasets.Image(decode=False)`` yields: bytes win when present, else the path is read),
    raw ``bytes``, or a PIL image (hash of mode, size and pixel bytes - not the file bytes, so
    a decoded image hashes differently from its file; keep images undecoded to compare).

    Raises:
        FileNotFoundError: a path that does not exist (names it).
        TypeError: any other type.
    """
    if isinstance(image, (str, os.PathLike)):
        return file_sha1(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return hashlib.sha1(bytes(image)).hexdigest()
    if isinstance(image, dict):
        if image.get("bytes") is not None:
            return hashlib.sha1(bytes(image["bytes"])).hexdigest()
        if image.get("path"):
            return file_sha1(image["path"])
        raise TypeError(f"image dict has neither 'bytes' nor 'path': keys {sorted(image)}")
    try:
        import PIL.Image

        if isinstance(image, PIL.Image.Image):
            h = hashlib.sha1(f"{image.mode}:{image.size}".encode())
            h.update(image.tobytes())
            return h.hexdigest()
    except ImportError:  # pragma: no cover - pillow is a dependency
        pass
    raise TypeError(f"cannot hash image of type {type(image).__name__}")


def item_image_hashes(ds: datasets.Dataset) -> list[tuple[str, ...]]:
    """Per row, the content hashes of its images (in order). Images are not decoded: the
    ``images`` column is read as Arrow (``{"bytes", "path"}`` per image).

    Raises:
        KeyError: no ``images`` column.
    """
    if "images" not in ds.column_names:
        raise KeyError(f"dataset has no 'images' column (columns: {ds.column_names})")
    return [tuple(image_hash(im) for im in imgs) for imgs in ds.with_format("arrow")["images"].to_pylist()]


def image_disjoint_split(
    ds: datasets.Dataset, test_fraction: float = 0.2, seed: int = 0
) -> datasets.DatasetDict:
    """Split items so that no image content appears on both sides.

    Items are grouped by shared images (union-find over content hashes, so a multi-image item
    joins every group it touches); groups are shuffled with ``random.Random(seed)`` and moved
    to ``test`` until it holds at least ``round(test_fraction * len(ds))`` items. The test side
    therefore overshoots by less than one group. Row order within each side is the input order;
    the ``split`` column is rewritten to ``"train"`` / ``"test"`` and ids are kept.

    Args:
        ds: an item dataset (schema :data:`mmed.data.schema.FEATURES`).
        test_fraction: in (0, 1).
        seed: shuffle seed.
    Returns:
        ``DatasetDict(train=..., test=...)``.
    Raises:
        ValueError: ``test_fraction`` outside (0, 1) or fewer than two image groups.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    hashes = item_image_hashes(ds)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for hs in hashes:
        for h in hs[1:]:
            ra, rb = find(hs[0]), find(h)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[int]] = {}
    for i, hs in enumerate(hashes):
        groups.setdefault(find(hs[0]), []).append(i)
    if len(groups) < 2:
        raise ValueError(f"cannot split: only {len(groups)} distinct image group(s) in {len(ds)} items")
    order = sorted(groups)  # deterministic before shuffling
    random.Random(seed).shuffle(order)
    target = max(1, round(test_fraction * len(ds)))
    test_idx: list[int] = []
    for g in order:
        if len(test_idx) >= target or len(test_idx) + len(groups[g]) >= len(ds):
            break
        test_idx.extend(groups[g])
    test_set = set(test_idx)
    train_idx = [i for i in range(len(ds)) if i not in test_set]
    test_idx = sorted(test_set)

    def with_split(sub: datasets.Dataset, name: str) -> datasets.Dataset:
        cols = sub.column_names  # rewrite the column without touching (decoding) the images
        return sub.remove_columns("split").add_column("split", [name] * len(sub)).select_columns(cols)

    with _no_progress_bars():  # metadata-only steps; a bar per call is noise
        return datasets.DatasetDict(
            train=with_split(ds.select(train_idx), "train"), test=with_split(ds.select(test_idx), "test")
        )


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


@dataclass
class LeakageReport:
    """Overlap between a reference split ``a`` (e.g. train) and a split ``b`` (e.g. test).

    Fields (counts of distinct keys unless named ``items_*``):
        images_a, images_b: distinct image contents in each split.
        shared_images: image contents present in both.
        items_b_with_shared_image: items of ``b`` showing an image that also occurs in ``a``.
        repeated_pairs: distinct (image content, question) pairs present in both, question
            compared exactly up to case and surrounding whitespace.
        repeated_pairs_normalized: the same with :func:`mmed.data.mcq.normalize_question`
            (also ignores a trailing ``?`` and inner whitespace) - a looser, larger count.
        items_b_repeated_pair: items of ``b`` whose (exact) pair occurs in ``a``.
    """

    images_a: int
    images_b: int
    shared_images: int
    items_b_with_shared_image: int
    repeated_pairs: int
    repeated_pairs_normalized: int
    items_b_repeated_pair: int

    @property
    def shared_image_fraction_b(self) -> float:
        """Fraction of ``b``'s distinct images that also occur in ``a`` (0 when ``b`` is empty)."""
        return self.shared_images / self.images_b if self.images_b else 0.0

    def as_dict(self) -> dict[str, Any]:
        """All fields plus ``shared_image_fraction_b`` (JSON-ready)."""
        d = asdict(self)
        d["shared_image_fraction_b"] = self.shared_image_fraction_b
        return d


def _pairs(ds: datasets.Dataset, hashes: list[tuple[str, ...]]) -> tuple[list[tuple], list[tuple]]:
    exact, loose = [], []
    for hs, q in zip(hashes, ds["question"]):
        exact.append((hs, q.strip().lower()))
        loose.append((hs, normalize_question(q)))
    return exact, loose


def leakage_report(a: datasets.Dataset, b: datasets.Dataset) -> LeakageReport:
    """Count images (by content hash) and (image, question) pairs that ``b`` shares with ``a``.

    On VQA-RAD's MEVF split (a = train, b = test) this gives shared_images = 203 (all of the
    test split's images) and repeated_pairs = 14 (16 with the looser normalisation).

    Args:
        a, b: item datasets with ``images`` and ``question`` columns (images are not decoded).
    Returns:
        :class:`LeakageReport`.
    """
    ha, hb = item_image_hashes(a), item_image_hashes(b)
    imgs_a = {h for hs in ha for h in hs}
    imgs_b = {h for hs in hb for h in hs}
    ea, la = _pairs(a, ha)
    eb, lb = _pairs(b, hb)
    sa, sla = set(ea), set(la)
    return LeakageReport(
        images_a=len(imgs_a),
        images_b=len(imgs_b),
        shared_images=len(imgs_a & imgs_b),
        items_b_with_shared_image=sum(any(h in imgs_a for h in hs) for hs in hb),
        repeated_pairs=len(sa & set(eb)),
        repeated_pairs_normalized=len(sla & set(lb)),
        items_b_repeated_pair=sum(p in sa for p in eb),
    )
