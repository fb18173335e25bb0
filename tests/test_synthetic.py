"""The procedural synthetic set (mmed/data/synthetic.py).

The baseline tests train numpy-only classifiers on one seed's items and test them on
another seed's: mean colour must not tell the grayscale specialties apart, colour
histograms must not tell the answers, while texture and *where* the colour is must.
Thresholds are set from the test-set size (standard error ~ sqrt(p(1-p)/n)), not from
the measured values.
"""

from __future__ import annotations

import hashlib
import io
import math

import numpy as np
import PIL.Image
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmed.data import COLUMNS, SPECIALTIES, Item, item_meta
from mmed.data.synthetic import (
    MAX_COUNT,
    QUESTION_VALUES,
    MODALITY_OF_SPECIALTY,
    SYNTHETIC_MODALITIES,
    SYNTHETIC_QUESTION_TYPES,
    SyntheticRef,
    TYPE_SLOTS,
    contrast_of,
    make_synthetic,
    noise_of,
    parse_ref,
    redraw,
    render,
    synthetic_item,
)

GRAY3 = ("Radiologist", "Oncologist", "Endocrinologist")
N_BASE = 1120  # 7 specialties x 20 full blocks of 8 types; every (specialty, type) a whole number of value blocks


# ----------------------------------------------------------------------------------------
# helpers: decoding and numpy-only baselines
# ----------------------------------------------------------------------------------------
def pixels(ds) -> np.ndarray:
    """(n, S, S, 3) uint8 of a synthetic dataset's images."""
    rows = ds.data.column("images").to_pylist()
    return np.stack([np.asarray(PIL.Image.open(io.BytesIO(r[0]["bytes"]))) for r in rows])


def png_hashes(ds) -> set[str]:
    return {hashlib.sha256(r[0]["bytes"]).hexdigest() for r in ds.data.column("images").to_pylist()}


def colour_hist(x: np.ndarray, bins: int = 16) -> np.ndarray:
    """Per-channel colour histograms, (n, 3 * bins), fractions of the pixels."""
    q = x.astype(np.int64) * bins // 256
    n_px = x.shape[1] * x.shape[2]
    return np.concatenate(
        [np.stack([np.bincount(q[i, ..., c].ravel(), minlength=bins) for i in range(len(x))]) / n_px for c in range(3)],
        axis=1,
    )


def nearest_centroid(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray) -> np.ndarray:
    classes = np.unique(ytr)
    cent = np.stack([xtr[ytr == c].mean(0) for c in classes])
    return classes[((xte[:, None, :] - cent[None]) ** 2).sum(-1).argmin(1)]


def logistic_regression(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, steps: int = 400) -> np.ndarray:
    """Multinomial logistic regression (standardised features, L2, full-batch gradient descent)."""
    classes = np.unique(ytr)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    a, b = (xtr - mu) / sd, (xte - mu) / sd
    y = (ytr[:, None] == classes[None]).astype(float)
    w, c = np.zeros((a.shape[1], len(classes))), np.zeros(len(classes))
    for _ in range(steps):
        z = a @ w + c
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - y) / len(a)
        w -= 0.5 * (a.T @ g + 1e-3 * w)
        c -= 0.5 * g.sum(0)
    return classes[(b @ w + c).argmax(1)]


def majority_rate(ytr: np.ndarray, yte: np.ndarray) -> float:
    vals, counts = np.unique(ytr, return_counts=True)
    return float((yte == vals[counts.argmax()]).mean())


def margin(n: int, p: float = 0.5, k: float = 3.0) -> float:
    """k standard errors of an accuracy near p measured on n items."""
    return k * math.sqrt(p * (1 - p) / n)


@pytest.fixture(scope="module")
def base():
    """Train items (seed 0) and test items (seed 1), decoded, with labels."""
    out = {}
    for name, seed, split in (("tr", 0, "train"), ("te", 1, "test")):
        ds = make_synthetic(N_BASE, seed, split=split)
        x = pixels(ds)
        out[name] = dict(
            ds=ds, x=x, hist=colour_hist(x), mean=x.reshape(len(x), -1, 3).mean(1),
            spec=np.array(ds["specialty"]), ans=np.array(ds["answer"]),
            qt=np.array([item_meta(r)["question_type"] for r in ds.select_columns(["meta"])]),
        )
    return out["tr"], out["te"]


# ----------------------------------------------------------------------------------------
# schema, determinism, redraw, disjointness
# ----------------------------------------------------------------------------------------
def test_items_follow_the_schema():
    ds = make_synthetic(56, 0, image_size=80, difficulty=0.2, split="train")
    assert ds.column_names == list(COLUMNS) and len(ds) == 56
    for row in ds:
        item = Item.from_row(row).validate()
        assert item.dataset == "synthetic" and item.split == "train" and item.answer_type == "closed"
        assert item.specialty in SPECIALTIES and item.modality == MODALITY_OF_SPECIALTY[item.specialty]
        assert item.modality.startswith("synthetic-") and item.organ
        assert item.image_ref.startswith("synthetic://v2/")
        assert len(item.images) == 1 and item.images[0].size == (80, 80) and item.images[0].mode == "RGB"
        assert item.id == f"synthetic/train/0/{item.meta['index']}"
        meta = item.meta
        assert meta["question_type"] in SYNTHETIC_QUESTION_TYPES and meta["difficulty"] == 0.2
        assert meta["feature"]["value"] == item.answer
        # options: the type's values in their fixed order (v2), so a letter means one value
        assert item.options == list(QUESTION_VALUES[meta["question_type"]])
        assert item.options[item.answer_idx] == item.answer
        if meta["question_type"] == "count":
            assert item.options == [str(i) for i in range(1, MAX_COUNT + 1)]


def test_feature_is_drawn_as_the_answer_says():
    ds = make_synthetic(112, 5, image_size=96)
    for row in ds:
        meta = item_meta(row)
        qt, val, blobs = meta["question_type"], row["answer"], meta["feature"]["blobs"]
        if qt == "presence":
            assert len(blobs) == (1 if val == "yes" else 0)
        elif qt == "count":
            assert len(blobs) == int(val)
            for (x1, y1, r1), (x2, y2, r2) in ((p, q) for i, p in enumerate(blobs) for q in blobs[i + 1 :]):
                assert math.hypot(x1 - x2, y1 - y2) > r1 + r2  # separate, so countable
        elif qt == "side":
            (x, _, r), = blobs
            assert (x + r < 48) if val == "left" else (x - r > 48)
        else:  # the drawn radius lies in the value's band (bands do not overlap)
            (_, _, r), = blobs
            lo, hi = {"tiny": (0.034, 0.042), "small": (0.050, 0.058), "medium": (0.066, 0.074),
                      "large": (0.084, 0.094)}[val]
            assert lo * 96 - 0.01 <= r <= hi * 96 + 0.01, (val, r)


def test_deterministic_by_seed_and_prefix_stable():
    a = make_synthetic(30, 3, image_size=64)
    b = make_synthetic(30, 3, image_size=64)
    assert a.data.column("images").to_pylist() == b.data.column("images").to_pylist()  # byte-identical PNGs
    for col in COLUMNS:
        if col != "images":
            assert a[col] == b[col]
    head = make_synthetic(12, 3, image_size=64)
    assert head["image_ref"] == a["image_ref"][:12] and png_hashes(head) <= png_hashes(a)
    c = make_synthetic(30, 4, image_size=64)
    assert not png_hashes(a) & png_hashes(c)


def test_redraw_reproduces_every_image():
    ds = make_synthetic(21, 9, image_size=72, difficulty=0.7, split="eval")
    x = pixels(ds)
    for i, row in enumerate(ds):
        assert np.array_equal(np.asarray(redraw(row["image_ref"])), x[i])
        again = synthetic_item(row["image_ref"])
        assert again.to_row() == {**row, "images": again.images}
        assert again.images[0]["bytes"] == ds.data.column("images")[i].as_py()[0]["bytes"]


def test_train_and_eval_sets_share_no_image():
    train = make_synthetic(140, 0, split="train")
    test = make_synthetic(140, 0, split="test")  # same seed: the split name keys the stream
    more = make_synthetic(140, 0, split="train", index_offset=140)
    assert len(png_hashes(train)) == 140
    assert not png_hashes(train) & png_hashes(test)
    assert not png_hashes(train) & png_hashes(more)
    assert not set(train["id"]) & set(more["id"])


def test_specialty_subset_and_grayscale_palette():
    ds = make_synthetic(30, 1, specialties=GRAY3, image_size=64)
    assert {s: ds["specialty"].count(s) for s in GRAY3} == {s: 10 for s in GRAY3}
    x = pixels(ds).astype(int)
    assert np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 1], x[..., 2])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n=-1, seed=0), "n must be"),
        (dict(n=2, seed=0, image_size=50), "image_size"),
        (dict(n=2, seed=0, image_size=128), "image_size"),
        (dict(n=2, seed=0, difficulty=1.5), "difficulty"),
        (dict(n=2, seed=-3), "seed"),
        (dict(n=2, seed=0, specialties=["Cardiologist"]), "Cardiologist"),
        (dict(n=2, seed=0, specialties=["Surgeon", "Surgeon"]), "repeats"),
        (dict(n=2, seed=0, split="a/b"), "split"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic(**kwargs)


@pytest.mark.parametrize(
    "ref,match",
    [
        ("file:///x.png", "scheme"),
        ("synthetic://v9/synthetic-xray/side/left?seed=0&split=t&index=0&size=96&difficulty=0.5", "version"),
        ("synthetic://v1/synthetic-xray/side/left?seed=0&split=t&index=0&size=96&difficulty=0.5", "version"),
        ("synthetic://v2/synthetic-xray/side?seed=0&split=t&index=0&size=96&difficulty=0.5", "path"),
        ("synthetic://v2/synthetic-mri/side/left?seed=0&split=t&index=0&size=96&difficulty=0.5", "synthetic-mri"),
        ("synthetic://v2/synthetic-xray/side/up?seed=0&split=t&index=0&size=96&difficulty=0.5", "'up'"),
        ("synthetic://v2/synthetic-xray/count/9?seed=0&split=t&index=0&size=96&difficulty=0.5", "'9'"),
        ("synthetic://v2/synthetic-xray/count/5?seed=0&split=t&index=0&size=96&difficulty=0.5", "'5'"),
        ("synthetic://v2/synthetic-xray/size/huge?seed=0&split=t&index=0&size=96&difficulty=0.5", "'huge'"),
        ("synthetic://v2/synthetic-xray/side/left?seed=0&split=t&size=96&difficulty=0.5", "'index'"),
        ("synthetic://v2/synthetic-xray/side/left?seed=x&split=t&index=0&size=96&difficulty=0.5", "'seed'"),
    ],
)
def test_bad_refs_are_named(ref, match):
    with pytest.raises(ValueError, match=match):
        parse_ref(ref)


_values = {q: list(v) for q, v in QUESTION_VALUES.items()}


@settings(max_examples=25, deadline=None)
@given(
    modality=st.sampled_from(sorted(SYNTHETIC_MODALITIES)),
    qv=st.sampled_from([(q, v) for q, vs in _values.items() for v in vs]),
    seed=st.integers(0, 2**31),
    index=st.integers(0, 10**6),
    size=st.integers(64, 112),
    difficulty=st.floats(0, 1),
)
def test_any_ref_renders_and_round_trips(modality, qv, seed, index, size, difficulty):
    ref = SyntheticRef(modality, qv[0], qv[1], seed, "train", index, size, difficulty)
    assert parse_ref(str(ref)) == ref
    px, feature = render(ref)
    assert px.shape == (size, size, 3) and px.dtype == np.uint8
    n_blobs = {"presence": int(qv[1] == "yes"), "count": int(qv[1]) if qv[0] == "count" else 1}.get(qv[0], 1)
    assert len(feature["blobs"]) == n_blobs
    assert feature["contrast"] == round(contrast_of(difficulty), 4)
    assert feature["noise"] == round(noise_of(difficulty), 4)
    item = synthetic_item(ref).validate()  # any ref, not only planned ones, makes a valid item
    assert item.answer == qv[1] and item.image_ref == str(ref)


# ----------------------------------------------------------------------------------------
# balance and difficulty
# ----------------------------------------------------------------------------------------
def test_balance_of_specialties_types_and_answers(base):
    tr, _ = base
    n = len(tr["spec"])
    assert {s: int((tr["spec"] == s).sum()) for s in SPECIALTIES} == {s: n // 7 for s in SPECIALTIES}
    per_spec = n // 7
    for s in SPECIALTIES:  # blocks of 8: size 4, count 2, presence 1, side 1
        assert {q: int(((tr["spec"] == s) & (tr["qt"] == q)).sum()) for q in SYNTHETIC_QUESTION_TYPES} == {
            q: per_spec * TYPE_SLOTS.count(q) // len(TYPE_SLOTS) for q in SYNTHETIC_QUESTION_TYPES
        }
    four = np.isin(tr["qt"], ["size", "count"]).mean()
    assert four == 0.75  # three quarters of the questions have four options
    for q, values in QUESTION_VALUES.items():  # every value equally often in full blocks
        vals, counts = np.unique(tr["ans"][tr["qt"] == q], return_counts=True)
        assert set(vals) == set(values) and counts.min() == counts.max(), (q, vals, counts)
    letters = np.bincount(np.array(tr["ds"]["answer_idx"]))
    assert letters.max() / n < 0.35  # no letter is right a third of the time


def _contrast(x: np.ndarray, blob) -> float:
    """|mean inside the blob - mean of a ring around it| on the gray image (0..255)."""
    g = x.astype(float).mean(-1)
    cx, cy, r = blob
    yy, xx = np.mgrid[: g.shape[0], : g.shape[1]] + 0.5
    d = np.hypot(xx - cx, yy - cy)
    return abs(g[d < 0.7 * r].mean() - g[(d > r + 1.5) & (d < r + 4)].mean())


def test_higher_difficulty_lowers_contrast_and_adds_noise():
    measured = {}
    for d in (0.1, 0.9):
        cs, hf = [], []
        for i, m in enumerate(sorted(SYNTHETIC_MODALITIES)):
            for k in range(4):
                ref = SyntheticRef(m, "size", "large", 2, "train", 10 * i + k, 96, d)
                px, feat = render(ref)
                cs.append(_contrast(px, feat["blobs"][0]))
                g = px.astype(float).mean(-1)
                hf.append(np.abs(np.diff(g, axis=1)).mean())
        measured[d] = (np.mean(cs), np.mean(hf))
    (c_easy, hf_easy), (c_hard, hf_hard) = measured[0.1], measured[0.9]
    assert c_hard < 0.75 * c_easy  # contrast falls (the pixel noise is zero-mean)
    assert hf_hard > 1.5 * hf_easy  # and the noise rises


# ----------------------------------------------------------------------------------------
# baselines: seeing, not colour lookup
# ----------------------------------------------------------------------------------------
def test_mean_colour_cannot_tell_the_grayscale_specialties(base):
    tr, te = base
    a, b = np.isin(tr["spec"], GRAY3), np.isin(te["spec"], GRAY3)
    acc = (nearest_centroid(tr["mean"][a], tr["spec"][a], te["mean"][b]) == te["spec"][b]).mean()
    assert acc < 0.5, acc  # chance is 1/3
    acc_lr = (logistic_regression(tr["mean"][a], tr["spec"][a], te["mean"][b]) == te["spec"][b]).mean()
    assert acc_lr < 0.5, acc_lr


def test_texture_tells_the_grayscale_specialties(base):
    """Positive control: modality is learnable from texture and shape (gradients, black
    corners, ...) even where mean colour fails."""
    tr, te = base

    def texture(x):
        g = x.mean(-1) / 255
        return np.stack([np.abs(np.diff(g, axis=2)).mean((1, 2)), np.abs(np.diff(g, axis=1)).mean((1, 2)),
                         (g < 0.05).mean((1, 2)), g[:, :12, :12].mean((1, 2)), g.std((1, 2))], axis=1)

    a, b = np.isin(tr["spec"], GRAY3), np.isin(te["spec"], GRAY3)
    acc = (nearest_centroid(texture(tr["x"][a]), tr["spec"][a], texture(te["x"][b])) == te["spec"][b]).mean()
    assert acc > 0.8, acc


@pytest.mark.parametrize("qt", SYNTHETIC_QUESTION_TYPES)
def test_colour_histograms_do_not_tell_the_answer(base, qt):
    tr, te = base
    a, b = tr["qt"] == qt, te["qt"] == qt
    maj = majority_rate(tr["ans"][a], te["ans"][b])
    tol = margin(int(b.sum()), maj)
    for clf in (nearest_centroid, logistic_regression):
        acc = (clf(tr["hist"][a], tr["ans"][a], te["hist"][b]) == te["ans"][b]).mean()
        assert acc < maj + tol, (qt, clf.__name__, acc, maj)
    # the same classifier fitted within each modality (it knows the modality, as a VLM does)
    hits = tot = hits_maj = 0
    for s in SPECIALTIES:
        a2, b2 = a & (tr["spec"] == s), b & (te["spec"] == s)
        hits += (logistic_regression(tr["hist"][a2], tr["ans"][a2], te["hist"][b2]) == te["ans"][b2]).sum()
        hits_maj += majority_rate(tr["ans"][a2], te["ans"][b2]) * b2.sum()
        tot += b2.sum()
    assert hits / tot < hits_maj / tot + margin(tot, 0.5, 3.5), (qt, hits / tot, hits_maj / tot)


@pytest.mark.parametrize("modality", sorted(SYNTHETIC_MODALITIES))
def test_the_finding_stands_out_locally(modality):
    """Answerable in principle: at the default difficulty the finding differs from the
    ring around it by more than twice the per-pixel noise (median over items), in every
    modality — so the answer is in the image, locally, though not in its colour histogram."""
    cs = []
    for i in range(12):
        px, feat = render(SyntheticRef(modality, "side", "right", 4, "train", i, 96, 0.5))
        cs.append(_contrast(px, feat["blobs"][0]))
    assert np.median(cs) > 2 * noise_of(0.5) * 255, cs
