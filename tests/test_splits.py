"""Content hashes, image-disjoint splits and the leakage report (mmed/data/splits.py)."""

from __future__ import annotations

import hashlib
import shutil

import datasets
import pytest
from fixtures_data import image, image_bytes, write_image

from mmed.data import FEATURES, Item, items_to_dataset
from mmed.data.splits import file_sha1, image_disjoint_split, image_hash, item_image_hashes, leakage_report


def _items(paths_and_questions, split="x"):
    return items_to_dataset(
        Item(id=f"t/{i}", dataset="t", split=split, images=list(p) if isinstance(p, (list, tuple)) else [p],
             image_ref=str(p), question=q, options=[], answer_idx=-1, answer="a", answer_type="open",
             modality="CT", specialty="Radiologist")
        for i, (p, q) in enumerate(paths_and_questions)
    )


def test_image_hash_forms(tmp_path):
    p = write_image(tmp_path / "a.png", 1)
    want = hashlib.sha1(p.read_bytes()).hexdigest()
    assert image_hash(p) == image_hash(str(p)) == want
    assert image_hash(p.read_bytes()) == want
    assert image_hash({"bytes": p.read_bytes(), "path": None}) == want
    assert image_hash({"bytes": None, "path": str(p)}) == want
    assert image_hash(image(1)) == image_hash(image(1)) != image_hash(image(2))  # PIL: pixels
    with pytest.raises(FileNotFoundError, match="nope.png"):
        image_hash(tmp_path / "nope.png")
    with pytest.raises(TypeError, match="int"):
        image_hash(3)


def test_file_hash_cache_notices_a_rewrite(tmp_path):
    p = write_image(tmp_path / "a.png", 1)
    first = file_sha1(p)
    p.write_bytes(image_bytes(2) + b"\0" * 7)  # size changes -> new cache key
    assert file_sha1(p) != first == hashlib.sha1(image_bytes(1)).hexdigest()


def test_leakage_by_content_not_filename(tmp_path):
    a1 = write_image(tmp_path / "train" / "img1.png", 1)
    a2 = write_image(tmp_path / "train" / "img2.png", 2)
    b1 = tmp_path / "test" / "renamed.png"
    b1.parent.mkdir()
    shutil.copy(a1, b1)  # same content, other name
    b3 = write_image(tmp_path / "test" / "img2.png", 3)  # same name as a2, other content
    train = _items([(a1, "Is there a mass?"), (a1, "Is it normal?"), (a2, "What organ?")])
    test = _items([(b1, "is there a mass"), (b1, " IS IT NORMAL? "), (b3, "What organ?"), (b1, "Other?")])
    r = leakage_report(train, test)
    assert (r.images_a, r.images_b, r.shared_images) == (2, 2, 1)
    assert r.items_b_with_shared_image == 3
    assert r.repeated_pairs == 1  # "is it normal?" (case and outer spaces ignored)
    assert r.repeated_pairs_normalized == 2  # also "is there a mass" without "?"
    assert r.items_b_repeated_pair == 1
    assert r.shared_image_fraction_b == 0.5
    assert r.as_dict()["shared_image_fraction_b"] == 0.5


def test_image_disjoint_split(tmp_path):
    paths = [write_image(tmp_path / f"{i}.png", i) for i in range(20)]
    rows = [(paths[i % 20], f"q{j}") for i in range(20) for j in range(i % 3 + 1)]  # 1-3 questions per image
    ds = _items(rows)
    dd = image_disjoint_split(ds, test_fraction=0.25, seed=0)
    assert len(dd["train"]) + len(dd["test"]) == len(ds)
    assert len(dd["test"]) >= round(0.25 * len(ds)) and len(dd["test"]) < round(0.25 * len(ds)) + 3
    assert leakage_report(dd["train"], dd["test"]).shared_images == 0
    assert set(dd["train"]["split"]) == {"train"} and set(dd["test"]["split"]) == {"test"}
    assert dd["test"].features == FEATURES
    assert sorted([*dd["train"]["id"], *dd["test"]["id"]]) == sorted(ds["id"])
    again = image_disjoint_split(ds, test_fraction=0.25, seed=0)
    assert list(again["test"]["id"]) == list(dd["test"]["id"])
    other = image_disjoint_split(ds, test_fraction=0.25, seed=1)
    assert list(other["test"]["id"]) != list(dd["test"]["id"])


def test_multi_image_items_join_groups(tmp_path):
    p = [write_image(tmp_path / f"{i}.png", i) for i in range(6)]
    ds = _items([((p[0], p[1]), "a"), (p[1], "b"), ((p[2], p[3]), "c"), (p[3], "d"), (p[4], "e"), (p[5], "f")])
    for seed in range(10):
        dd = image_disjoint_split(ds, 0.3, seed)
        assert leakage_report(dd["train"], dd["test"]).shared_images == 0
        train_ids = set(dd["train"]["id"])
        assert ({"t/0", "t/1"} <= train_ids) or not ({"t/0", "t/1"} & train_ids)


def test_split_errors(tmp_path):
    p = write_image(tmp_path / "a.png", 1)
    ds = _items([(p, "a"), (p, "b")])
    with pytest.raises(ValueError, match="only 1 distinct image group"):
        image_disjoint_split(ds, 0.5, 0)
    with pytest.raises(ValueError, match="test_fraction"):
        image_disjoint_split(ds, 1.0, 0)
    with pytest.raises(KeyError, match="no 'images' column"):
        item_image_hashes(datasets.Dataset.from_dict({"x": [1]}))


def test_images_are_not_decoded_for_hashing(tmp_path, monkeypatch):
    import PIL.Image

    p = write_image(tmp_path / "a.png", 1)
    ds = _items([(p, "a")])

    def boom(*a, **k):
        raise AssertionError("image decoded")

    monkeypatch.setattr(PIL.Image, "open", boom)
    assert item_image_hashes(ds) == [(hashlib.sha1(p.read_bytes()).hexdigest(),)]


def test_a_cached_synthetic_set_is_the_drawn_one_and_is_drawn_once(tmp_path, monkeypatch):
    import mmed.data.sets as S
    from mmed.data.synthetic import make_synthetic

    monkeypatch.setenv(S.SYNTHETIC_CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(S, "_SYNTHETIC_SETS", {})
    first = S.cached_synthetic(12, 3, image_size=64, difficulty=0.5, split="validation")
    fresh = make_synthetic(12, 3, image_size=64, difficulty=0.5, split="validation")
    key = S.synthetic_cache_key(12, 3, 64, 0.5, "validation")
    assert (tmp_path / key / "dataset_info.json").is_file() and not list(tmp_path.glob(".*tmp*"))
    assert first.features == fresh.features and first.to_dict() == fresh.to_dict()  # every field, the PNG bytes too
    # another process (a fresh memo) reads the entry instead of drawing
    monkeypatch.setattr(S, "_SYNTHETIC_SETS", {})
    monkeypatch.setattr(S, "make_synthetic", lambda *a, **k: pytest.fail("drawn again"))
    again = S.cached_synthetic(12, 3, image_size=64, difficulty=0.5, split="validation")
    assert again.to_dict() == fresh.to_dict() and S.cached_synthetic(12, 3, image_size=64, split="validation") is again
    # a mapped copy writes nothing beside the shared entry
    files = sorted(p.name for p in (tmp_path / key).iterdir())
    again.map(lambda r: {"question": r["question"] + "?"})
    again.select([3, 1])
    assert sorted(p.name for p in (tmp_path / key).iterdir()) == files
    # other arguments, another key
    assert S.synthetic_cache_key(12, 3, 64, 0.5, "test") != key != S.synthetic_cache_key(13, 3, 64, 0.5, "validation")


def test_two_callers_missing_the_same_synthetic_set_at_once_draw_it_once(tmp_path, monkeypatch):
    """Notebooks 01 and 02 (and 02's workers) start together on a fresh cache: the second
    caller waits on the entry's lock while the first draws, then reads the first's copy."""
    import threading
    import time

    import mmed.data.sets as S
    from mmed.data.synthetic import make_synthetic

    monkeypatch.setenv(S.SYNTHETIC_CACHE_ENV, str(tmp_path))
    draws = []

    def slow_draw(*a, **k):
        draws.append(threading.get_ident())
        time.sleep(0.5)  # long enough for the other caller to arrive
        return make_synthetic(*a, **k)

    monkeypatch.setattr(S, "make_synthetic", slow_draw)
    results = {}

    def call(name):
        S._SYNTHETIC_SETS.pop(S.synthetic_cache_key(6, 2, 64, 0.5, "test"), None)  # each like a fresh process
        results[name] = S.cached_synthetic(6, 2, image_size=64, split="test").to_dict()

    monkeypatch.setattr(S, "_SYNTHETIC_SETS", {})
    threads = [threading.Thread(target=call, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join()
    assert len(draws) == 1
    assert results["a"] == results["b"] == make_synthetic(6, 2, image_size=64, split="test").to_dict()


def test_an_unwritable_synthetic_cache_is_warned_about_and_the_set_drawn(tmp_path, monkeypatch, capsys):
    import mmed.data.sets as S

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(S.SYNTHETIC_CACHE_ENV, str(blocker / "cache"))
    monkeypatch.setattr(S, "_SYNTHETIC_SETS", {})
    ds = S.cached_synthetic(4, 0, image_size=64, split="test")
    assert len(ds) == 4 and "synthetic-set cache" in capsys.readouterr().err
