"""The triage doctor trained with GRPO (paper §3.1): its data and its training.

Training (:func:`train_triage`) is TRL's ``GRPOTrainer`` through :func:`mmed.rl.grpo.train_grpo`
with the paper's reward R = R_format (0 / 0.5) + R_accuracy (0 / 1, parsed specialty ==
label; :mod:`mmed.rl.rewards`). It starts from the run's cold-started triage policy
(``runs/<id>/triage/sft``, made by :func:`mmed.rl.cold_start.ensure_cold_start` when the run lacks
it) and writes ``runs/<id>/triage/grpo/`` (``checkpoint-*``, ``final/`` LoRA adapters,
``log_history.jsonl`` with one record per GRPO step, ``result.json``, ``train_settings.json``).

Data:

- **Synthetic** (always): the first ``triage_grpo.n_train_items`` items of the profile's
  synthetic ``train`` split, all seven specialties. A seeded ``triage_grpo.image_only_fraction``
  of them have their question replaced by the generic :data:`mmed.data.TRIAGE_QUESTION`:
  the synthetic questions name the finding ("Is there a polyp ...?" → Surgeon), so a policy
  could route from the wording alone; image-only prompts make it read the image (real
  images come with the generic question). Where the real images train (``demo``), they
  teach reading the image and the fraction is 0: generic synthetic prompts made the synthetic
  grayscale PET compete with real radiographs (``benchmarks/RESULTS.md``).
- **Real** (:func:`load_real_triage`, when a data root is present): every image of
  ``<root>/triage`` (Dermatologist, Ophthalmologist, Pathologist) and every unique image of
  VQA-RAD (MEVF train ∪ test; Radiologist), each as one item: with ``triage.real_questions:
  own`` a VQA-RAD image asks one of its own VQA-RAD questions (as the pipeline does; a draw per
  training copy), the other real images the generic question.
  Surgeon, Oncologist and Endocrinologist have no real images. Images are split by content
  hash into ``train`` / ``heldout`` with the profile's fixed ``triage.real_split_seed`` (the
  same split for every training seed); all VQA-RAD MEVF test images (the attending's
  evaluation images; every one of them also occurs in MEVF train) are always held out.
  With ``triage.real_train`` (the ``demo`` and ``smoke`` profiles) or ``real_train=True``
  the ``train`` part joins the cold start's and GRPO's data (:func:`real_training_items`,
  sampled as ``triage.real_balance`` says) and only ``heldout`` is evaluated; without it
  nothing real is trained on and all real images are evaluated (synthetic → real transfer).
  Either way the output is ``runs/<id>/triage/grpo/``; its ``train_settings.json`` records
  which.

Evaluation and the step (training + evaluation + the downstream comparison + the seed
replicate, notebook 03's one call) are in :mod:`mmed.eval.triage`.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..config import Profile
from ..data.schema import SPECIALTIES
from ..data.sets import synthetic_split
from ..runs import Run, resolve_data_root, write_json_atomic
from .cold_start import ensure_cold_start

#: specialties for which ``../shared/data`` holds no real image (README of the data)
NO_REAL_IMAGES: tuple[str, ...] = ("Surgeon", "Oncologist", "Endocrinologist")
#: ``source`` of items in the evaluation records
SOURCES: tuple[str, ...] = ("synthetic", "triage_images", "vqa_rad")


# ----------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------
def image_only(items: Sequence[dict[str, Any]], fraction: float, seed: int) -> list[dict[str, Any]]:
    """Copies of ``items`` where exactly ``round(fraction * n)`` of them (a seeded choice)
    have ``question`` replaced by :data:`mmed.data.TRIAGE_QUESTION`; each copy gets
    ``image_only`` (bool). Items already asking that question count as image-only.

    Raises:
        ValueError: ``fraction`` outside [0, 1].
    """
    from ..data import TRIAGE_QUESTION

    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"image_only fraction must be in [0, 1], got {fraction}")
    n = len(items)
    chosen = set(random.Random(f"image_only:{seed}").sample(range(n), round(fraction * n))) if n else set()
    out = []
    for i, it in enumerate(items):
        d = dict(it)
        if i in chosen:
            d["question"] = TRIAGE_QUESTION
        d["image_only"] = d["question"] == TRIAGE_QUESTION
        out.append(d)
    return out


def _open_image(path: str, max_side: int | None) -> Any:
    import PIL.Image

    with PIL.Image.open(path) as im:
        im = im.convert("RGB")
        if max_side is not None and max(im.size) > max_side:
            im.thumbnail((max_side, max_side), PIL.Image.BICUBIC)
        im.load()
    return im


def real_image_max_side(profile: Profile) -> int:
    """Real images are shrunk once, on load, to at most this side (pixels): twice the side
    of the largest image the processor keeps (``sqrt(image.max_pixels)``), so the
    processor's own resize still decides what the model sees, while 1 000-pixel
    radiographs do not fill the memory."""
    return int(2 * math.ceil(math.sqrt(profile.image.max_pixels)))


@dataclass
class RealTriageSet:
    """Real modality-labelled images as triage items (:func:`load_real_triage`).

    Attributes:
        train: items a ``real_train`` run may train on (never an evaluation image).
        heldout: items never trained on (all VQA-RAD MEVF test images are here).
        notes: what was read, de-duplicated or missing, in words.
        split_seed: the seed of the train / held-out split.

    Every item carries ``image_hashes`` (its image's content hash, a one-element list).
    """

    train: list[dict[str, Any]]
    heldout: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    split_seed: int = 0

    @property
    def all(self) -> list[dict[str, Any]]:
        """``train + heldout``: every real image once."""
        return self.train + self.heldout

    def counts(self) -> dict[str, dict[str, int]]:
        """``{part: {specialty: n}}`` for ``train``, ``heldout`` and ``all`` (all seven
        specialties listed, zeros included)."""
        out = {}
        for name, part in (("train", self.train), ("heldout", self.heldout), ("all", self.all)):
            c = Counter(it["specialty"] for it in part)
            out[name] = {s: c.get(s, 0) for s in SPECIALTIES}
        return out

    def overlap(self) -> int:
        """Number of image contents found in both ``train`` and ``heldout`` (0 by construction)."""
        return len({h for it in self.train for h in it["image_hashes"]} & {h for it in self.heldout for h in it["image_hashes"]})

    def validation_split(self, fraction: float, seed: int = 0) -> "RealTriageSet":
        """A tuning split of ``train``: ``train`` → fit part (``train``) + validation part
        (``heldout``), per specialty, by image, seeded; the real held-out part is not in it.
        Per specialty ``floor(fraction * n + 0.5)`` image contents (byte-identical files
        together) go to validation, at least one when the specialty has two or more (a
        specialty with one keeps it for fitting).

        Raises:
            ValueError: ``fraction`` outside (0, 1).
        """
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
        fit: list[dict[str, Any]] = []
        val: list[dict[str, Any]] = []
        for spec in SPECIALTIES:
            by_image: dict[str, list[dict[str, Any]]] = {}  # byte-identical files stay on one side
            for it in sorted((it for it in self.train if it["specialty"] == spec), key=lambda it: it["id"]):
                by_image.setdefault(it["image_hashes"][0], []).append(it)
            groups = list(by_image.values())
            random.Random(f"validation:{seed}:{spec}").shuffle(groups)
            k = math.floor(fraction * len(groups) + 0.5)
            k = max(k, 1) if len(groups) >= 2 else 0
            val.extend(it for g in groups[:k] for it in g)
            fit.extend(it for g in groups[k:] for it in g)
        note = (f"tuning split of the real train part: {len(fit)} fit + {len(val)} validation images "
                f"(fraction {fraction}, seed {seed}); the held-out part ({len(self.heldout)} images) is not used")
        return RealTriageSet(fit, val, [*self.notes, note], self.split_seed)


def _triage_item(id_: str, dataset: str, path: str, specialty: str, modality: str, organ: str, image: Any, meta: dict) -> dict:
    from ..data import TRIAGE_QUESTION

    return {
        "id": id_, "dataset": dataset, "split": "", "images": [image], "image_ref": path, "question": TRIAGE_QUESTION,
        "options": list(SPECIALTIES), "answer_idx": SPECIALTIES.index(specialty), "answer": specialty,
        "answer_type": "closed", "modality": modality, "specialty": specialty, "organ": organ, "meta": meta,
        "image_only": True,
    }


def ask_own_question(item: dict[str, Any], seed: int) -> dict[str, Any]:
    """Set ``item["question"]`` to one of its ``own_questions`` (a draw seeded by ``seed``
    and the item id, so every training copy ``<id>#k`` gets its own draw) and
    ``image_only`` accordingly; an item without own questions keeps its question. Returns
    the item (changed in place). ``triage.real_questions: own`` (:class:`mmed.config.TriageConfig`)."""
    own = item.get("own_questions") or []
    if own:
        item["question"] = random.Random(f"{seed}:question:{item['id']}").choice(own)
        item["image_only"] = False
    return item


def _sample_per_specialty(items: list[dict], k: int | None, seed: int) -> list[dict]:
    if k is None:
        return items
    by: dict[str, list[dict]] = {}
    for it in items:
        by.setdefault(it["specialty"], []).append(it)
    out = []
    for spec in SPECIALTIES:
        group = sorted(by.get(spec, []), key=lambda it: it["id"])
        random.Random(f"{seed}:limit:{spec}").shuffle(group)
        out.extend(group[:k])
    return out


def load_real_triage(
    data_root: str | Path | None,
    profile: Profile,
    seed: int | None = None,
    limit_per_specialty: int | None = None,
) -> RealTriageSet | None:
    """Every real image under ``data_root`` as a triage item, split train / held-out by image.

    Sources: ``<root>/triage`` (:func:`mmed.data.load_triage_images`, its own seeded,
    stratified, image-disjoint split with ``profile.data.triage_heldout_fraction``) and
    ``<root>/vqa_rad`` in the MEVF layout (train ∪ test, one item per unique image content,
    Radiologist). VQA-RAD images of the MEVF test split are always held out (the pipeline
    evaluates on them); the others are split with the same fraction, seeded, by content hash.
    Items ask :data:`mmed.data.TRIAGE_QUESTION`, except VQA-RAD images under
    ``triage.real_questions: own``: each asks one of its own VQA-RAD questions
    (:func:`ask_own_question`; a test image its test questions, any other image its train
    questions; all kept in ``own_questions``) — the question the pipeline will put to the
    triage doctor. Images are PIL images shrunk to :func:`real_image_max_side`.

    Args:
        data_root: the real-data folder; None → no real data (returns None).
        seed: the split seed; None → ``profile.triage.real_split_seed`` (what training and
            evaluation use, so that every training seed holds out the same images).
        limit_per_specialty: keep at most this many items per specialty in each part (a
            seeded sample; the ``smoke`` profile's ``data.eval_limit``); None = all.
    Returns:
        a :class:`RealTriageSet`, or None without a data root.
    Raises:
        FileNotFoundError: a data root that holds neither ``triage/`` nor ``vqa_rad/``.
        ValueError: an image content found in both parts (a split bug, never expected).
    """
    from ..data import image_hash, load_benchmark, load_triage_images

    if data_root is None:
        return None
    seed = profile.triage.real_split_seed if seed is None else int(seed)
    root = Path(data_root)
    frac = profile.data.triage_heldout_fraction
    max_side = real_image_max_side(profile)
    train: list[dict] = []
    heldout: list[dict] = []
    notes: list[str] = []
    found = False
    hashes: dict[str, str] = {}  # item id -> content hash
    if (root / "triage").is_dir():
        found = True
        dd, report = load_triage_images(root / "triage", heldout_fraction=frac, seed=seed, return_report=True)
        notes.extend(report.notes)
        for part, dest in (("train", train), ("heldout", heldout)):
            ds = dd[part]
            for row in ds.remove_columns("images"):
                path = row["image_ref"]
                it = _triage_item(row["id"], "triage_images", path, row["specialty"], row["modality"], row["organ"],
                                  None, {"folder": json.loads(row["meta"]).get("folder"), "part": part})
                hashes[it["id"]] = image_hash(path)
                it["image_hashes"] = [hashes[it["id"]]]
                dest.append(it)
        notes.append(f"triage/: {len(dd['train'])} train + {len(dd['heldout'])} held-out images "
                     f"(held-out fraction {frac}, seed {seed})")
    else:
        notes.append(f"no triage/ folder under {root}: no real Dermatologist/Ophthalmologist/Pathologist images")
    if (root / "vqa_rad").is_dir():
        found = True
        by_hash: dict[str, dict[str, Any]] = {}
        for split in ("test", "train"):  # test first: an image in test is an evaluation image
            ds = load_benchmark("vqa_rad", root / "vqa_rad", split, layout="mevf", include_open=True)
            for row in ds.remove_columns("images"):
                path = row["image_ref"]
                h = image_hash(path)
                rec = by_hash.setdefault(h, {"path": path, "organ": row["organ"], "modality": row["modality"], "in_test": False,
                                             "names": set(), "questions": {"test": set(), "train": set()}})
                rec["names"].add(Path(path).name)
                rec["in_test"] |= split == "test"
                rec["questions"][split].add(" ".join(str(row["question"]).split()))
        in_test = sorted(h for h, r in by_hash.items() if r["in_test"])
        others = sorted(h for h, r in by_hash.items() if not r["in_test"])
        random.Random(f"{seed}:vqa_rad").shuffle(others)
        n_held = math.floor(frac * len(others) + 0.5)
        held = set(in_test) | set(others[:n_held])
        for h in sorted(by_hash, key=lambda h: by_hash[h]["path"]):
            r = by_hash[h]
            part = "heldout" if h in held else "train"
            it = _triage_item(f"triage/vqa_rad/{Path(r['path']).stem}", "vqa_rad", r["path"], "Radiologist", r["modality"],
                              r["organ"], None,
                              {"mevf_test_image": r["in_test"], "file_names": sorted(r["names"]), "part": part})
            # a test image is asked its test questions (what the pipeline asks), the others their train ones
            it["own_questions"] = sorted(r["questions"]["test" if r["in_test"] else "train"] - {""})
            if profile.triage.real_questions == "own":
                ask_own_question(it, seed)
            hashes[it["id"]] = h
            it["image_hashes"] = [h]
            (heldout if part == "heldout" else train).append(it)
        dupes = sum(len(r["names"]) > 1 for r in by_hash.values())
        notes.append(
            f"vqa_rad/ (MEVF): {len(by_hash)} unique images, {len(in_test)} in the test split (always held out); "
            f"of the other {len(others)}, {n_held} held out" + (f"; {dupes} contents under several file names" if dupes else "")
        )
    else:
        notes.append(f"no vqa_rad/ folder under {root}: no real Radiologist images")
    if not found:
        raise FileNotFoundError(f"data root {root} holds neither triage/ nor vqa_rad/")
    both = {hashes[it["id"]] for it in train} & {hashes[it["id"]] for it in heldout}
    if both:
        raise ValueError(f"{len(both)} real image content(s) are in both the train and the held-out part")
    if limit_per_specialty is not None:
        train = _sample_per_specialty(train, limit_per_specialty, seed)
        heldout = _sample_per_specialty(heldout, limit_per_specialty, seed)
        notes.append(f"limited to at most {limit_per_specialty} images per specialty in each part (seeded sample)")
    for it in train + heldout:  # opened once the limit has chosen (decoding is most of the time)
        it["images"] = [_open_image(it["image_ref"], max_side)]
    notes.append("no real images for " + ", ".join(NO_REAL_IMAGES))
    return RealTriageSet(train, heldout, notes, seed)


def real_eval_limit(profile: Profile) -> int | None:
    """Images per specialty in the real evaluation: the profile's ``data.eval_limit``."""
    return profile.data.eval_limit


def real_triage(profile: Profile, data_root: str | Path | None = None) -> RealTriageSet | None:
    """The real triage images as the profile's training and evaluation use them (one call
    for the CLI, the notebook and the cold start): :func:`load_real_triage` of
    ``data_root`` (None → ``../shared/data`` when present) with the profile's split seed and
    at most ``data.eval_limit`` images per specialty in each part. None without real data.

    Raises:
        FileNotFoundError: an explicit ``data_root`` that does not exist, or one holding
            neither ``triage/`` nor ``vqa_rad/``.
    """
    return load_real_triage(resolve_data_root(data_root), profile, None, real_eval_limit(profile))


#: accepted values of ``triage.real_balance``
REAL_BALANCE: tuple[str, ...] = ("none", "specialty")


def wants_real_train(profile: Profile, real_train: bool | None = None) -> bool:
    """Whether a triage training should use the real training images: ``real_train`` when
    given (CLI flag, notebook parameter), else the profile's ``triage.real_train``. Whether
    it can (a data root is present) is the caller's question."""
    return profile.triage.real_train if real_train is None else bool(real_train)


def real_training_items(profile: Profile, real: RealTriageSet, seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The real training items of the triage doctor: ``real.train``, sampled as
    ``profile.triage.real_balance`` says.

    ``"none"``: each image once. ``"specialty"``: each specialty's images are repeated
    (whole copies, then a seeded sample without replacement for the remainder) until the
    specialty holds ``triage.real_balance_target`` items (None: as many as the largest
    specialty has images); a specialty with more images keeps each once, and specialties
    without images stay absent. Copies get ids ``<id>#<k>``; every item gets ``source``
    (its dataset: ``triage_images`` or ``vqa_rad``) and keeps its ``image_hashes``.

    Returns:
        ``(items, info)``, info = ``{"balance", "target", "images": {specialty: n},
        "items": {specialty: n}, "n_images", "n_items"}`` (all seven specialties listed;
        ``target`` None without balancing).
    Raises:
        ValueError: an unknown ``real_balance``; an item of ``real.train`` whose image is
            also in ``real.heldout`` (names the item).
    """
    balance = profile.triage.real_balance
    if balance not in REAL_BALANCE:
        raise ValueError(f"triage.real_balance is {balance!r}, expected one of {REAL_BALANCE}")
    held = {h for it in real.heldout for h in it["image_hashes"]}
    by: dict[str, list[dict[str, Any]]] = {}
    for it in real.train:
        if set(it["image_hashes"]) & held:
            raise ValueError(f"real triage item {it['id']!r}: its image is also in the held-out part")
        by.setdefault(it["specialty"], []).append(dict(it, source=it["dataset"]))
    target = profile.triage.real_balance_target or max((len(v) for v in by.values()), default=0)
    items: list[dict[str, Any]] = []
    for spec in SPECIALTIES:
        group = by.get(spec, [])
        if balance == "none" or len(group) >= target or not group:
            items.extend(group)
            continue
        whole, rest = divmod(target, len(group))
        extra = random.Random(f"real_balance:{seed}:{spec}").sample(group, rest)
        copies = [g for _ in range(whole) for g in group] + extra
        seen: Counter = Counter()
        for it in copies:
            k = seen[it["id"]]
            seen[it["id"]] += 1
            if k == 0:
                items.append(it)
            else:
                copy = dict(it, id=f"{it['id']}#{k}")
                items.append(ask_own_question(copy, seed) if profile.triage.real_questions == "own" else copy)
    n_img = {s: len(by.get(s, [])) for s in SPECIALTIES}
    n_items = {s: sum(it["specialty"] == s for it in items) for s in SPECIALTIES}
    info = {"balance": balance, "target": target if balance == "specialty" else None, "images": n_img,
            "items": n_items, "n_images": sum(n_img.values()), "n_items": len(items)}
    return items, info


def cold_start_items(
    profile: Profile, synthetic: Sequence[dict[str, Any]], seed: int = 0, data_root: str | Path | None = None,
    real: RealTriageSet | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The triage cold start's training items: ``cold_start.n_items`` items in all, the real
    training items (:func:`real_training_items`; at most ``triage.real_cold_start_share``
    of ``n_items``, a seeded sample when there are more, the rest counted in
    ``n_real_left_out``) plus the first synthetic ones, in a seeded shuffled order — when
    ``triage.real_train`` is set and real data is present; else the synthetic items as given.

    Args:
        synthetic: synthetic ``train`` items (at least ``cold_start.n_items`` of them for a
            full cold start).
        data_root / real: the real data (``real`` already loaded, else read from
            ``data_root``; None → ``../shared/data`` when present).
    Returns:
        ``(items, info)``; info = ``{"real_train", "n", "n_synthetic", "n_real",
        "n_real_left_out", "real", "note"}`` (``real`` is :func:`real_training_items`'
        info, or None).
    Raises:
        FileNotFoundError: an explicit ``data_root`` that does not exist.
    """
    n = profile.cold_start.n_items
    on = bool(profile.triage.real_train)
    if on and real is None:
        real = real_triage(profile, data_root)
    if not on or real is None:
        k = min(n, len(synthetic))
        note = "synthetic only: " + ("triage.real_train is off" if not on else "no real data")
        return list(synthetic), {"real_train": on, "n": k, "n_synthetic": k, "n_real": 0, "n_real_left_out": 0,
                                 "real": None, "note": note}
    extra, rinfo = real_training_items(profile, real, seed)
    cap = math.floor(profile.triage.real_cold_start_share * n)
    left_out = max(0, len(extra) - cap)
    if left_out:
        extra = random.Random(f"cold_start_real:{seed}").sample(extra, cap)
    items = list(synthetic[: n - len(extra)]) + extra
    random.Random(f"cold_start_items:{seed}").shuffle(items)
    note = "synthetic + the real images' train part" + (
        f" ({left_out} of {len(extra) + left_out} real items left out: at most triage.real_cold_start_share "
        f"= {profile.triage.real_cold_start_share} of cold_start.n_items)" if left_out else "")
    return items, {"real_train": on, "n": len(items), "n_synthetic": len(items) - len(extra), "n_real": len(extra),
                   "n_real_left_out": left_out, "real": rinfo, "note": note}


def real_evaluation_items(
    real: RealTriageSet | None, real_train: bool, trained_image_hashes: frozenset[str] | set[str] = frozenset(),
) -> tuple[list[dict[str, Any]] | None, list[str]]:
    """The real images a triage is evaluated on: ``real.heldout`` after a training on real
    images, else all of them — minus any image the training saw (``trained_image_hashes``:
    the real train part, the ``data.train_benchmarks`` pool), counted in the notes.

    Returns:
        ``(items, notes)``; items is None without real data.
    """
    if real is None:
        return None, ["no real data: synthetic only"]
    items = real.heldout if real_train else real.all
    notes = list(real.notes)
    notes.append(f"evaluated on {'the held-out part' if real_train else 'all'} of the real images: {len(items)} images")
    kept = [it for it in items if not set(it["image_hashes"]) & trained_image_hashes]
    if len(kept) != len(items):
        notes.append(f"{len(items) - len(kept)} real images left out of the evaluation: trained on")
    return kept, notes


def training_items(
    profile: Profile, seed: int, real: RealTriageSet | None = None, real_train: bool = False,
    data_root: str | Path | None = None, pool: Any = None, log: Any = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The GRPO training items of the triage doctor and a description of them.

    Synthetic ``train`` items (first ``triage_grpo.n_train_items``; none when
    ``data.synthetic.n_train`` is 0) with a seeded ``triage_grpo.image_only_fraction`` asked
    the generic question, plus ``real.train`` when ``real_train`` (:func:`real_training_items`:
    sampled as ``triage.real_balance`` says), plus — when
    ``data.train_benchmarks`` is set and a data root resolves — the real training pool's
    ``train`` items (:func:`mmed.data.training.training_pool`, at most
    ``triage_grpo.n_train_items``, no evaluation image), with their own questions and the
    ``specialty`` the loaders give them (:mod:`mmed.data.specialty` rules); their
    ``source`` is the ``train_benchmarks`` entry (e.g. ``"vqa_rad:mevf"``).

    Args:
        data_root: real-data folder for ``data.train_benchmarks`` (None → ``../shared/data``
            when present); unused without ``train_benchmarks`` or when ``pool`` is given.
        pool: an already built :class:`mmed.data.training.TrainingPool`.
        log: the pool's messages (default ``print``).
    Returns:
        ``(items, info)``, info = counts per source and specialty, image-only count,
        ``real`` (:func:`real_training_items`' info; None without ``real_train``) and with
        ``train_benchmarks`` also ``train_pool`` (the pool's counts, or a note that no data
        root was found). Real and pool items carry ``image_hashes`` (their content hashes).
    Raises:
        ValueError: ``real_train`` without real data; no training item at all.
        FileNotFoundError: an explicit ``data_root`` that does not exist, or a benchmark
            folder missing under it.
    """
    from ..agents.pipeline import as_item_list

    g = profile.triage_grpo
    syn = (as_item_list(synthetic_split(profile, "train", n=g.n_train_items))
           if profile.data.synthetic.n_train > 0 else [])
    syn = image_only(syn, g.image_only_fraction, seed)
    for it in syn:
        it["source"] = "synthetic"
    items = list(syn)
    real_info = None
    if real_train:
        if real is None:
            raise ValueError("real_train=True needs real data: pass a data root holding triage/ and/or vqa_rad/")
        extra, real_info = real_training_items(profile, real, seed)
        items += extra
    pool_info: dict[str, Any] | None = None
    if profile.data.train_benchmarks:
        if pool is None:
            from ..data.training import training_pool

            root = resolve_data_root(data_root)
            if root is not None:
                pool = training_pool(profile, root, cap=g.n_train_items, seed=seed, log=log)
        if pool is None:
            pool_info = {"train_benchmarks": list(profile.data.train_benchmarks), "status": "no data root: not read"}
        else:
            pool_info = pool.plan_record()
            source = {spec.partition(":")[0]: spec for spec in profile.data.train_benchmarks}
            for it, hs in zip(image_only(as_item_list(pool.train), 0.0, seed), pool.train_hashes):
                items.append(dict(it, source=source[it["dataset"]], image_hashes=list(hs)))
    if not items:
        raise ValueError(f"no triage training items (profile {profile.name}): data.synthetic.n_train is 0 and "
                         + (f"no data root for data.train_benchmarks {profile.data.train_benchmarks}"
                            if profile.data.train_benchmarks else "data.train_benchmarks is empty"))
    info = {
        "n": len(items),
        "by_source": dict(Counter(it["source"] for it in items)),
        "by_specialty": {s: sum(it["specialty"] == s for it in items) for s in SPECIALTIES},
        "image_only": sum(bool(it["image_only"]) for it in items),
        "image_only_fraction_synthetic": g.image_only_fraction,
        "real_train": bool(real_train),
        "real": real_info,
    }
    if pool_info is not None:  # without train_benchmarks: the info older runs recorded
        info["train_pool"] = pool_info
    return items, info


# ----------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------
def triage_out_dir(run: Run) -> Path:
    """``runs/<id>/triage/grpo``: the run's triage GRPO, with or without real images (its
    ``train_settings.json`` says which)."""
    return run.path("triage", "grpo")


@dataclass
class TriageTraining:
    """What :func:`train_triage` did.

    Attributes:
        out_dir: the GRPO folder; ``final`` its adapters; ``base`` the policy they sit on.
        result: :class:`mmed.rl.grpo.GRPOResult` (steps, seconds, per-step ``log``).
        data: :func:`training_items` info; ``settings``: what ``train_settings.json`` holds.
        cold_start: the cold-start report (None when the profile has no cold start).
        trained_image_hashes: content hashes of the real images trained on (the real
            triage images' train part, the ``data.train_benchmarks`` pool; empty without):
            a real triage evaluation leaves them out (:func:`real_evaluation_items`).
        real_train: whether the real triage images' train part was trained on.
        real: the real images (:func:`load_real_triage`) read for the training, or None.
    """

    out_dir: Path
    final: Path
    base: str
    result: Any
    data: dict[str, Any]
    settings: dict[str, Any]
    cold_start: dict[str, Any] | None
    trained_image_hashes: frozenset[str] = frozenset()
    real_train: bool = False
    real: RealTriageSet | None = None


def _settings(profile: Profile, seed: int, real_train: bool, max_steps: int | None, base: str, data: dict) -> dict[str, Any]:
    from .grpo import agent_lora

    g = profile.triage_grpo
    return {
        "profile": profile.name,
        "variant": profile.variant,
        "seed": int(seed),
        "real_train": bool(real_train),
        "max_steps": int(g.max_steps if max_steps is None else max_steps),
        "triage_grpo": g.to_dict(),
        "lora": agent_lora(profile, g).to_dict(),
        "quantization": profile.models.quantization,
        "base": base,
        "data": data,
    }


def train_triage(
    profile: Profile,
    run: Run,
    seed: int | None = None,
    data_root: str | Path | None = None,
    real_train: bool | None = None,
    max_steps: int | None = None,
    resume: bool = True,
    callbacks: Sequence[Any] = (),
    real: RealTriageSet | None = None,
    on_checked: Callable[[], Any] | None = None,
) -> TriageTraining:
    """Train the triage doctor with GRPO (TRL) from the run's cold start.

    Args:
        profile: the profile (``triage_grpo`` section, ``models``, ``cold_start``, ``image``).
        run: the run folder; its cold start is reused or made
            (:func:`mmed.rl.cold_start.ensure_cold_start`).
        seed: seeds the image-only choice, the real items' balancing and the trainer (None →
            profile's); the real split is ``triage.real_split_seed``'s.
        data_root: real-data folder for the real images and ``data.train_benchmarks`` (None →
            ``../shared/data`` when present).
        real_train: also train on the train part of the real images; None → the profile's
            ``triage.real_train``, which trains on them when real data is present and
            trains on synthetic data alone (noted in ``data``) when none is. The cold start
            (shared by the run) follows the profile's ``triage.real_train``.
        max_steps: overrides ``triage_grpo.max_steps``.
        resume: continue from the last checkpoint of an interrupted run with the same settings.
        callbacks: extra ``transformers.TrainerCallback`` objects (tests, progress).
        real: an already loaded :func:`load_real_triage` result (saves reloading).
        on_checked: called once the cold start exists and the folder's settings are checked,
            before the training (notebook 03 starts the other seeds' trainings there, so that
            a refused run starts none).
    Returns:
        a :class:`TriageTraining`. A finished training in the same folder with the same
        settings is reused without training (docs/architecture.md#one-training-step).
    Raises:
        ValueError: the folder holds a training made with other settings (the message
            names them: use another run folder or delete it); ``real_train=True`` without data.
    """
    from ..agents.build import policy_source
    from .grpo import grpo_dataset, train_grpo
    from .pretrain import base_model
    from .tensorboard_logs import training_name

    seed = profile.seed if seed is None else int(seed)
    want = wants_real_train(profile, real_train)
    if (want or profile.triage.real_train) and real is None:
        real = real_triage(profile, data_root)
    if real_train and real is None:
        raise ValueError("real_train=True needs real data: pass a data root holding triage/ and/or vqa_rad/")
    use_real = want and real is not None
    cs = ensure_cold_start(run, profile, "triage", seed, data_root=data_root, real=real)
    base_model(run, profile, "triage")  # built here when the profile has no cold start
    src = policy_source(run, profile, "triage", "sft" if cs is not None else "base")
    items, data = training_items(profile, seed, real, use_real, data_root=data_root)
    if want and not use_real:
        data["real_note"] = "triage.real_train is set but no real data was found: synthetic training only"
    out = triage_out_dir(run)
    settings = _settings(profile, seed, use_real, max_steps, src.base, data)
    saved_path = out / "train_settings.json"
    if saved_path.is_file():
        saved = json.loads(saved_path.read_text())
        if saved != json.loads(json.dumps(settings)):
            diff = sorted(k for k in set(saved) | set(settings) if saved.get(k) != json.loads(json.dumps(settings.get(k))))
            raise ValueError(
                f"{out} holds a triage GRPO run made with other settings ({', '.join(diff)}); "
                "use another --run-dir or delete that folder"
            )
    write_json_atomic(saved_path, settings)
    if on_checked is not None:
        on_checked()
    ds = grpo_dataset("triage", items, style=profile.sampling.prompt_style,
                      extra_columns={"source": [it["source"] for it in items],
                                     "image_only": [bool(it["image_only"]) for it in items]})
    step = "triage/grpo"
    with run.step(step, n_train=len(items), real_train=use_real):
        res = train_grpo("triage", src.base, ds, profile, out, max_steps=max_steps, seed=seed,
                         log_tags={"agent": "triage"}, callbacks=callbacks, resume=resume,
                         tensorboard_dir=run.tensorboard_dir(training_name("triage_grpo", seed)))
    run.add_artifact(step, out)
    trained = frozenset(h for it in items for h in it.get("image_hashes", ()))
    return TriageTraining(out, Path(res.final), src.base, res, data, settings, cs, trained, use_real, real)
