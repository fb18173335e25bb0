"""``make_synthetic`` draws the same items as before it was sped up (worker processes).

The hashes below were computed with the generator as it was before the drawing was
vectorised / moved to worker processes (commit 750cdcc, numpy 2.4, x86-64): for each item,
sha256 over the decoded pixels (shape and raw RGB bytes) and every other column (JSON,
sorted keys). Pixels, not PNG bytes, are hashed: the PNG encoder's zlib is Pillow's
business, not the generator's (``test_redraw_reproduces_every_image`` ties the stored PNG
to :func:`mmed.data.synthetic.render`). A mismatch means the generator draws other images
or other fields for the same arguments — a new generator version, not a speed-up.
"""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import PIL.Image
import pytest

from mmed.data.synthetic import make_synthetic

#: (make_synthetic keyword arguments, {item position: first 32 hex digits of its hash})
CASES: list[tuple[dict, dict[int, str]]] = [
    (dict(n=14, seed=0), {
        0: "181edbe46b638033d16443187cf53284",
        1: "ff978ccd21ee60785b436bead00424e5",
        2: "ffcbcf92aa6622d9b6e334cfcacca3b7",
        3: "b12ff2990f432b1a514fabc549935106",
        4: "6e621024e0e4b6de8c5af869a0161d88",
        5: "471c561d0861525b3ecede701759596c",
        6: "c88b7ec4eb00416a1e5a5494f033dd59",
        7: "ce2330aed948a6eff7bc60bce7867c50",
        8: "b08037a2fadfd30f7ad13f66ed745c95",
        9: "251fb512db4b154bf81776324ffb1788",
        10: "3c978c0ff9226c859b555071c45ac1bc",
        11: "eb0e7e591b2561389bfa8cc01cf2df4d",
        12: "a37bb492710bb545e9730fafec88ad42",
        13: "07a5230710c2d7403ed64730652479ab",
    }),
    (dict(n=7, seed=7, image_size=72, difficulty=0.9, split="test", index_offset=50), {
        0: "68d37812f9afb4baf126e290b88346d6",
        1: "734da7de82734835137201cf978d00df",
        2: "1e70299c4338292fa38ac7b8760a4794",
        3: "caacc142e239bdfc34cf68fcb00dbee6",
        4: "2ec0ce5ff1638a6747622fa972a47693",
        5: "c215d4ee5b3b41f0d4f568b00047eb24",
        6: "b3091251ad8457381e1f9f022ed598ad",
    }),
    (dict(n=6, seed=3, image_size=112, difficulty=0.0,
          specialties=("Oncologist", "Endocrinologist", "Ophthalmologist")), {
        0: "489b53cbace9cec6e88c32c759c6d6cd",
        1: "6999fb7c9152ff8f9e67c5b4d41f7581",
        2: "17db8788788e75fa19f26f3fe73c3e5f",
        3: "0c8703cab43fb1ff1884138b60d06113",
        4: "72ead23a9655d3386af481880a3c6e83",
        5: "f179bb074b01938ec8f8fc18053016b0",
    }),
    (dict(n=3, seed=0, index_offset=19), {
        0: "02a0cb67795652482aa8f81663858269",
        1: "ae4825d78cbb234fd82a91838db51065",
        2: "debd5cf4ada6f38693c30144beace80b",
    }),  # two presence "no" items (no finding)
]


def item_hash(row: dict) -> str:
    """sha256 (first 32 hex digits) of one stored row: decoded pixels + the other columns."""
    px = np.asarray(PIL.Image.open(io.BytesIO(row["images"][0]["bytes"])).convert("RGB"))
    h = hashlib.sha256()
    h.update(repr(px.shape).encode())
    h.update(px.tobytes())
    h.update(json.dumps({k: v for k, v in row.items() if k != "images"}, sort_keys=True).encode())
    return h.hexdigest()[:32]


@pytest.mark.parametrize("kwargs,expected", CASES, ids=["default", "test-split-offset", "gray-112", "no-finding"])
def test_items_are_identical_to_the_reference_generator(kwargs, expected):
    ds = make_synthetic(**kwargs)
    rows = ds.data.to_pylist()
    got = {i: item_hash(r) for i, r in enumerate(rows)}
    assert got == expected


def test_a_worker_process_draws_the_same_items(monkeypatch):
    """Items drawn in a ``spawn`` worker process (a fresh interpreter) hash as above, and
    :func:`make_synthetic`'s process split puts every chunk back in index order."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    import mmed.data.synthetic as S

    kwargs, expected = CASES[0]
    refs = [S.parse_ref(r) for r in make_synthetic(**kwargs, workers=1)["image_ref"]]
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        drawn = pool.submit(S._draw_rows, refs).result()
    assert {i: item_hash(r) for i, r in enumerate(drawn)} == expected
    monkeypatch.setattr(S, "_CHUNK_ITEMS", 3)  # five chunks, shared by this process and one worker
    rows = make_synthetic(**kwargs, workers=2).data.to_pylist()
    assert {i: item_hash(r) for i, r in enumerate(rows)} == expected


def test_number_of_drawing_processes(monkeypatch):
    import multiprocessing
    import os

    import mmed.data.synthetic as S

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)  # two usable cores
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert S._n_workers(None, 2000) == 2  # two cores, 1,000 items each
    assert S._n_workers(None, 499) == 1  # under 250 each would not pay for starting a worker
    assert S._n_workers(3, 2) == 2 and S._n_workers(1, 2000) == 1
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    assert S._n_workers(None, 2000) == 1  # inside a worker process: the cores are taken
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            make_synthetic(3, 0, workers=bad)
