"""Notebook 01's step: what the data are, in one call (:func:`data_step`).

The synthetic set's composition (specialties, question types, gold answers), the real
VQA-RAD layouts with the MEVF split's train/test leakage next to an image-disjoint split of
the official release, and the real triage images per specialty. Each part returns the
datasets the notebook draws and the metrics dictionary ``mmed.checkers.nb01_data`` reads.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pandas as pd

from .loaders import load_benchmark
from .mcq import YES_NO
from .schema import closed_only, item_meta
from .splits import LeakageReport, image_disjoint_split, leakage_report
from .synthetic import make_synthetic
from .triage_images import load_triage_images



def synthetic_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of synthetic items: ``n_items``, ``per_specialty``, ``question_types``
    (:func:`mmed.data.schema.item_meta`) and ``majority_answer_rate`` (the share of the most
    frequent gold answer position: what always answering that letter scores).

    Raises:
        ValueError: no rows.
    """
    if not rows:
        raise ValueError("synthetic_summary: no rows")
    return {
        "n_items": len(rows),
        "per_specialty": dict(collections.Counter(r["specialty"] for r in rows)),
        "question_types": dict(collections.Counter(item_meta(r)["question_type"] for r in rows)),
        "majority_answer_rate": collections.Counter(r["answer_idx"] for r in rows).most_common(1)[0][1] / len(rows),
    }


@dataclass
class VqaRadOverview:
    """VQA-RAD's layouts read from ``<data_root>/vqa_rad`` (:func:`vqa_rad_overview`)."""

    mevf_train: datasets.Dataset
    mevf_test: datasets.Dataset
    official: datasets.Dataset
    #: the MEVF test split's closed questions and how many of them are yes/no
    closed_test: datasets.Dataset
    n_yes_no: int
    #: MEVF train vs test (they share images), and the image-disjoint split of the official release
    leakage: LeakageReport
    disjoint_train: datasets.Dataset
    disjoint_test: datasets.Dataset
    disjoint_leakage: LeakageReport

    def counts_table(self) -> pd.DataFrame:
        """Questions and closed questions per layout (split, questions, closed)."""
        return pd.DataFrame([(name, len(ds), sum(t == "closed" for t in ds["answer_type"])) for name, ds in
                             (("MEVF train", self.mevf_train), ("MEVF test", self.mevf_test),
                              ("official (all)", self.official))], columns=["split", "questions", "closed"])

    def not_yes_no_examples(self, n: int = 6) -> pd.DataFrame:
        """The first ``n`` closed test questions that are not yes/no (question, options, gold)."""
        ex = [self.closed_test[i] for i in range(len(self.closed_test))
              if list(self.closed_test[i]["options"]) != list(YES_NO)][:n]
        return pd.DataFrame([{"question": e["question"],
                              "options": " | ".join(f"{chr(65 + k)}. {o}" for k, o in enumerate(e["options"])),
                              "gold": e["answer"]} for e in ex])

    @property
    def metrics(self) -> dict[str, Any]:
        return {
            "mevf_test": {"n_items": len(self.mevf_test), "n_closed": len(self.closed_test), "n_yes_no": self.n_yes_no},
            "mevf_train": {"n_items": len(self.mevf_train)},
            "official": {"n_items": len(self.official),
                         "n_closed": sum(t == "closed" for t in self.official["answer_type"])},
            "leakage": self.leakage.as_dict(),
            "disjoint_leakage": self.disjoint_leakage.as_dict(),
        }


def vqa_rad_overview(root: str | Path, seed: int = 0, disjoint_test_fraction: float = 0.2) -> VqaRadOverview:
    """Read VQA-RAD's MEVF train/test and official layouts from ``root`` (``<data_root>/vqa_rad``),
    measure the MEVF split's leakage (:func:`mmed.data.splits.leakage_report`) and split the
    official release image-disjointly (:func:`mmed.data.splits.image_disjoint_split`,
    ``disjoint_test_fraction`` of the images, seeded).

    Raises:
        FileNotFoundError / mmed.data.rows.DataError: what :func:`mmed.data.loaders.load_benchmark` raises.
    """
    root = Path(root)
    mevf_test = load_benchmark("vqa_rad", root, "test", layout="mevf")
    mevf_train = load_benchmark("vqa_rad", root, "train", layout="mevf")
    official = load_benchmark("vqa_rad", root, "all", layout="official")
    closed_test = closed_only(mevf_test)
    dd = image_disjoint_split(official, test_fraction=disjoint_test_fraction, seed=seed)
    return VqaRadOverview(
        mevf_train=mevf_train, mevf_test=mevf_test, official=official, closed_test=closed_test,
        n_yes_no=sum(list(o) == list(YES_NO) for o in closed_test["options"]),
        leakage=leakage_report(mevf_train, mevf_test), disjoint_train=dd["train"], disjoint_test=dd["test"],
        disjoint_leakage=leakage_report(dd["train"], dd["test"]))


@dataclass
class TriageImagesOverview:
    """The real triage images (:func:`mmed.data.triage_images.load_triage_images`)."""

    train: datasets.Dataset
    heldout: datasets.Dataset

    def split_table(self) -> pd.DataFrame:
        """Images per specialty (rows) and split (columns ``heldout``, ``train``)."""
        return pd.crosstab(pd.Series(list(self.train["specialty"]) + list(self.heldout["specialty"]), name="specialty"),
                           pd.Series(["train"] * len(self.train) + ["heldout"] * len(self.heldout), name="split"))

    @property
    def per_specialty(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.split_table().sum(axis=1).items()}

    @property
    def metrics(self) -> dict[str, Any]:
        return {"train": len(self.train), "heldout": len(self.heldout), "per_specialty": self.per_specialty}


@dataclass
class DataStepResult:
    """What :func:`data_step` read and counted (notebook 01 shows it)."""

    #: the synthetic items drawn (rows) and how long drawing them took (s)
    synthetic_rows: list[dict[str, Any]]
    synthetic_seconds: float
    #: the real parts, None without a data root
    vqa_rad: VqaRadOverview | None
    triage: TriageImagesOverview | None
    #: what notebook 01 records: ``real_data``, ``synthetic``, and with real data ``vqa_rad``, ``triage_images``
    metrics: dict[str, Any]


def data_step(profile: Any, data_root: str | Path | None, seed: int, n_synthetic: int) -> DataStepResult:
    """Notebook 01's step: ``n_synthetic`` synthetic ``train`` items drawn with the profile's
    image size and difficulty (:func:`mmed.data.synthetic.make_synthetic`) and counted
    (:func:`synthetic_summary`); with a data root, VQA-RAD (:func:`vqa_rad_overview`) and the
    real triage images (``<data_root>/triage``, held-out share ``data.triage_heldout_fraction``).

    Args:
        profile: a :class:`mmed.config.Profile`.
        data_root: the resolved real-data folder, or None (synthetic only).
        n_synthetic: items to draw (>= 1).
    Returns:
        a :class:`DataStepResult` (the synthetic rows and seconds, the real parts or None, the metrics).
    Raises:
        ValueError: ``n_synthetic`` < 1, or a data root without ``vqa_rad/`` or ``triage/``
            (the loaders name the folder).
    """
    if n_synthetic < 1:
        raise ValueError(f"n_synthetic must be >= 1, got {n_synthetic}")
    cfg = profile.data.synthetic
    t0 = time.perf_counter()
    syn = make_synthetic(n_synthetic, seed, image_size=cfg.image_size, difficulty=cfg.difficulty, split="train")
    seconds = time.perf_counter() - t0
    rows = [syn[i] for i in range(len(syn))]
    metrics: dict[str, Any] = {"real_data": data_root is not None, "synthetic": synthetic_summary(rows)}
    vqa = triage = None
    if data_root is not None:
        root = Path(data_root)
        vqa = vqa_rad_overview(root / "vqa_rad", seed)
        t = load_triage_images(root / "triage", heldout_fraction=profile.data.triage_heldout_fraction, seed=seed)
        triage = TriageImagesOverview(t["train"], t["heldout"])
        metrics.update(vqa_rad=vqa.metrics, triage_images=triage.metrics)
    return DataStepResult(rows, seconds, vqa, triage, metrics)
