"""Writers of tiny benchmark copies in each benchmark's real published layout (for tests).

Nothing here is a committed blob: every fixture is generated into a temporary folder by code,
with file and field names as the real releases have them (see mmed/data/loaders.py for the
sources). Images are small JPEG/PNG files whose pixels encode an integer, so distinct ids give
distinct contents (content hashes differ) and equal ids give byte-identical files.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any, Optional

import datasets
import PIL.Image

IMG_SIZE = (12, 10)  # width, height


def image(n: int) -> PIL.Image.Image:
    """A small RGB image whose pixels encode ``n``."""
    return PIL.Image.new("RGB", IMG_SIZE, ((n * 37) % 256, (n * 91) % 256, (n * 53 + 7) % 256))


def image_bytes(n: int, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image(n).save(buf, format=fmt)
    return buf.getvalue()


def write_image(path: Path, n: int) -> Path:
    """Write image ``n`` to ``path`` (format from the suffix; ``.jpg`` -> JPEG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    path.write_bytes(image_bytes(n, fmt))
    return path


# ----------------------------------------------------------------------------------------
# VQA-RAD
# ----------------------------------------------------------------------------------------
#: image name -> image number
VQA_RAD_IMAGES = {"synpic100.jpg": 1, "synpic200.jpg": 2, "synpic300.jpg": 3}


def _rad(qid, img, q, a, at, qt, organ="HEAD", phrase="freeform"):
    return {"qid": qid, "image_name": img, "image_organ": organ, "answer": a, "answer_type": at,
            "question_type": qt, "question": q, "phrase_type": phrase}


#: MEVF trainset.json rows (the real field names)
VQA_RAD_TRAIN = [
    _rad(1, "synpic100.jpg", "Is there a fracture?", "yes", "CLOSED", "PRES"),
    _rad(2, "synpic100.jpg", "Where is the lesion?", "left lobe", "OPEN", "POS"),
    _rad(3, "synpic200.jpg", "Is this an MRI or a CT scan?", "CT", "CLOSED", "MODALITY", "CHEST"),
    _rad(4, "synpic200.jpg", "What modality is used?", "MRI", "OPEN", "MODALITY", "CHEST"),
    _rad(5, "synpic300.jpg", "How many lesions are there?", 2, "OPEN", "COUNT", "ABD"),
    _rad(6, "synpic300.jpg", "How many masses?", "3", "OPEN", "COUNT", "ABD"),
    _rad(7, "synpic300.jpg", "What is the organ?", "kidney", "OPEN", "ORGAN", "ABD"),
    _rad(8, "synpic300.jpg", "How many cysts?", "just one", "OPEN", "COUNT, PRES", "ABD"),
]
#: MEVF testset.json rows
VQA_RAD_TEST = [
    _rad(11, "synpic100.jpg", "Is there a fracture?", "No", "CLOSED", "PRES", phrase="test_freeform"),
    _rad(12, "synpic200.jpg", "Is this a T1 weighted, T2 weighted, or FLAIR image?", "FLAIR", "CLOSED ", "MODALITY",
         "CHEST", "test_para"),
    _rad(13, "synpic300.jpg", "Are there multiple or just 1 lesion?", "one", "CLOSED", "COUNT", "ABD", "test_freeform"),
    _rad(14, "synpic300.jpg", "What organ is shown?", "kidney", "OPEN", "ORGAN", "ABD", "test_freeform"),
]


def write_vqa_rad(root: Path, *, official: bool = True, mevf: bool = True, stub_images: bool = False,
                  train: Optional[list] = None, test: Optional[list] = None) -> Path:
    """VQA-RAD in the official layout and/or the MEVF layout under ``root``.

    The official json holds the MEVF train rows (phrase types freeform/para) and the test rows
    (test_*), with qids as strings for one row as in the real file. ``stub_images`` writes
    ``data_RAD/images`` as a git symlink stub (a text file with the relative path) instead of
    a folder, as in the real copy.
    """
    train = VQA_RAD_TRAIN if train is None else train
    test = VQA_RAD_TEST if test is None else test
    folder = root / "VQA_RAD Image Folder"
    for name, n in VQA_RAD_IMAGES.items():
        write_image(folder / name, n)
    if official:
        rows = [dict(r, qid=str(r["qid"]) if i == 0 else r["qid"] + 1000) for i, r in enumerate(train + test)]
        (root / "VQA_RAD Dataset Public.json").write_text(json.dumps(rows, indent=1))
    if mevf:
        d = root / "data_RAD"
        d.mkdir(parents=True, exist_ok=True)
        (d / "trainset.json").write_text(json.dumps(train))
        (d / "testset.json").write_text(json.dumps(test))
        if stub_images:
            (d / "images").write_text("../VQA_RAD Image Folder")
        else:
            for name, n in VQA_RAD_IMAGES.items():
                write_image(d / "images" / name, n)
    return root


def _image_table(rows: list[dict[str, Any]], image_cols: tuple[str, ...], extra: dict[str, Any]) -> datasets.Dataset:
    feats = {c: datasets.Image() for c in image_cols}
    feats.update({k: v for k, v in extra.items()})
    return datasets.Dataset.from_list(rows, features=datasets.Features(feats))


def write_hub_vqa(root: Path, splits: dict[str, list[tuple[int, str, str]]], shards: int = 1) -> Path:
    """Hub form (``flaviagiammarino/vqa-rad``, ``flaviagiammarino/path-vqa``): parquet files
    ``data/<split>-0000k-of-0000n.parquet`` with columns image (embedded bytes), question, answer.
    ``splits``: split -> [(image number, question, answer)]."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        table = [{"image": {"bytes": image_bytes(n, "JPEG"), "path": None}, "question": q, "answer": a} for n, q, a in rows]
        ds = _image_table(table, ("image",), {"question": datasets.Value("string"), "answer": datasets.Value("string")})
        for k in range(shards):
            ds.shard(shards, k, contiguous=True).to_parquet(str(root / "data" / f"{split}-{k:05d}-of-{shards:05d}.parquet"))
    return root


# ----------------------------------------------------------------------------------------
# SLAKE 1.0
# ----------------------------------------------------------------------------------------
def _slake(qid, img_id, q, a, at, modality, location, content, lang="en"):
    return {"img_id": img_id, "img_name": f"xmlab{img_id}/source.jpg", "question": q, "answer": a, "q_lang": lang,
            "location": location, "modality": modality, "answer_type": at, "base_type": "vqa",
            "content_type": content, "triple": ["vhead", "_", "_"], "qid": qid}


SLAKE = {
    "train": [
        _slake(1, 0, "What modality is used to take this image?", "MRI", "OPEN", "MRI", "Brain", "Modality"),
        _slake(2, 0, "Which organ is abnormal, liver or spleen?", "Liver", "CLOSED", "MRI", "Abdomen", "Organ"),
        _slake(3, 1, "Is the lung healthy?", "No", "CLOSED", "X-Ray", "Chest", "Abnormality"),
        _slake(4, 1, "Where is the abnormality?", "Left Lung", "OPEN", "X-Ray", "Chest", "Position"),
        _slake(5, 1, "Where is the heart?", "Center", "OPEN", "X-Ray", "Chest", "Position"),
        _slake(6, 1, "肺部健康吗?", "否", "CLOSED", "X-Ray", "Chest", "Abnormality", "zh"),
    ],
    "validation": [
        _slake(20, 2, "Does the picture contain kidney?", "Yes", "CLOSED", "CT", "Abdomen", "Organ"),
    ],
    "test": [
        _slake(30, 2, "Does the picture contain liver?", "Yes", "CLOSED", "CT", "Abdomen", "Organ"),
        _slake(31, 2, "Which side is the lesion on?", "Right", "CLOSED", "CT", "Abdomen", "Position"),
        _slake(32, 2, "What is the largest organ in the picture?", "Liver", "OPEN", "CT", "Abdomen", "Organ"),
        _slake(33, 2, "图中最大的器官是什么?", "肝脏", "OPEN", "CT", "Abdomen", "Organ", "zh"),
    ],
}


def write_slake(root: Path, splits: Optional[dict[str, list]] = None) -> Path:
    """SLAKE 1.0: ``{train,validation,test}.json`` + ``imgs/xmlab<id>/source.jpg``."""
    splits = SLAKE if splits is None else splits
    root.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        (root / f"{split}.json").write_text(json.dumps(rows, ensure_ascii=False))
        for r in rows:
            write_image(root / "imgs" / r["img_name"], 100 + r["img_id"])
    return root


# ----------------------------------------------------------------------------------------
# PathVQA original release
# ----------------------------------------------------------------------------------------
PATHVQA = {
    "train": [("train_0000", "What have lost their nuclei?", "neutrophils"),
              ("train_0000", "Is this a benign lesion?", "yes"),
              ("train_0001", "What is present?", "granuloma"),
              ("train_0001", "What is shown?", "fibrosis")],
    "val": [("val_0000", "Is inflammation present?", "no")],
    "test": [("test_0000", "Are the cells necrotic?", "yes"),
             ("test_0000", "What have lost their nuclei?", "neutrophils"),
             ("test_0001", "What is present?", "abscess")],
}


def write_pathvqa_original(root: Path, splits: Optional[dict[str, list]] = None) -> Path:
    """``pvqa/qas/<split>/<split>_qa.pkl`` (pickled list of {image, question, answer}) +
    ``pvqa/images/<split>/<image>.jpg``."""
    splits = PATHVQA if splits is None else splits
    d = root / "pvqa"
    for split, rows in splits.items():
        qa = [{"image": img, "question": q, "answer": a} for img, q, a in rows]
        (d / "qas" / split).mkdir(parents=True, exist_ok=True)
        (d / "qas" / split / f"{split}_qa.pkl").write_bytes(pickle.dumps(qa))
        for img, _, _ in rows:
            write_image(d / "images" / split / f"{img}.jpg", 200 + int(img.rsplit("_", 1)[1]) + 10 * len(split))
    return root


# ----------------------------------------------------------------------------------------
# OmniMedVQA open-access part
# ----------------------------------------------------------------------------------------
def _omni(qid, ds, qtype, modality, q, gt, opts, img):
    row = {"question_id": qid, "dataset": ds, "question_type": qtype, "question": q, "gt_answer": gt,
           "modality_type": modality, "image_path": f"Images/{ds}/{img}"}
    row.update({f"option_{L}": o for L, o in zip("ABCD", opts)})
    return row


OMNIMEDVQA = {
    "ACRIMA": [
        _omni("ACRIMA_0001", "ACRIMA", "Disease Diagnosis", "Fundus Photography",
              "What is the diagnosis of this fundus image?", "Glaucoma", ["Normal", "Glaucoma", "Cataract", "Myopia"],
              "Im001.png"),
        _omni("ACRIMA_0002", "ACRIMA", "Modality Recognition", "Fundus Photography",
              "What imaging modality is this?", "fundus photography.", ["CT", "Fundus photography"], "Im002.png"),
    ],
    "Chest CT Scan": [
        _omni("Chest CT Scan_0001", "Chest CT Scan", "Modality Recognition", "CT(Computed Tomography)",
              "Which modality is shown?", "CT", ["CT", "MRI", "X-ray"], "a.png"),
    ],
    "BioMediTech": [
        _omni("BioMediTech_0001", "BioMediTech", "Other Biological Attributes", "Microscopy Images",
              "What is shown?", "Retinal pigment epithelium", ["Retinal pigment epithelium", "Neurons"], "c1.png"),
        _omni("BioMediTech_0002", "BioMediTech", "Anatomy Identification", "MR (Mag-netic Resonance Imaging)",
              "Which organ?", "Brain", ["Liver", "Brain", "Heart", "Kidney"], "c2.png"),
    ],
}


def write_omnimedvqa(root: Path, files: Optional[dict[str, list]] = None) -> Path:
    """``QA_information/Open-access/<Dataset>.json`` (json lists) + ``Images/<Dataset>/...``."""
    files = OMNIMEDVQA if files is None else files
    qa = root / "QA_information" / "Open-access"
    qa.mkdir(parents=True, exist_ok=True)
    n = 300
    for name, rows in files.items():
        (qa / f"{name}.json").write_text(json.dumps(rows, indent=1))
        for r in rows:
            n += 1
            write_image(root / r["image_path"], n)
    return root


# ----------------------------------------------------------------------------------------
# MMMU (Hub parquet, one folder per subject)
# ----------------------------------------------------------------------------------------
MMMU_IMAGE_COLS = tuple(f"image_{k}" for k in range(1, 8))


def _mmmu(mid, q, options, answer, qtype, images, img_type, subfield="Pathology"):
    row = {"id": mid, "question": q, "options": repr(options), "explanation": "", "img_type": repr(img_type),
           "answer": answer, "topic_difficulty": "Medium", "question_type": qtype, "subfield": subfield}
    for k, col in enumerate(MMMU_IMAGE_COLS):
        row[col] = {"bytes": image_bytes(images[k]), "path": f"{col}.png"} if k < len(images) else None
    return row


MMMU = {
    "Clinical_Medicine": [
        _mmmu("validation_Clinical_Medicine_1", "<image 1> What is the most likely diagnosis?",
              ["Infarct", "Tumour", "Abscess", "Normal"], "B", "multiple-choice", [401], ["Body Scans: MRI, CT scans, and X-rays"]),
        _mmmu("validation_Clinical_Medicine_2", "Compare <image 1> and <image 2>. Which shows necrosis?",
              ["<image 1>", "<image 2>"], "A", "multiple-choice", [402, 403], ["Microscopic Images"]),
    ],
    "Public_Health": [
        _mmmu("validation_Public_Health_1", "<image 1> What is the odds ratio?", [], "2.5", "open", [404], ["Tables"]),
    ],
}


def write_mmmu(root: Path, subjects: Optional[dict[str, list]] = None, split: str = "validation", merged: bool = False) -> Path:
    """Hub ``MMMU/MMMU`` copy: ``<Subject>/<split>-00000-of-00001.parquet`` (or, with
    ``merged``, one ``data/<split>-00000-of-00001.parquet`` holding all subjects)."""
    subjects = MMMU if subjects is None else subjects
    text = {k: datasets.Value("string") for k in
            ("id", "question", "options", "explanation", "img_type", "answer", "topic_difficulty", "question_type", "subfield")}

    def table(rows: list) -> datasets.Dataset:
        return _image_table(rows, MMMU_IMAGE_COLS, text)

    if merged:
        (root / "data").mkdir(parents=True, exist_ok=True)
        table([r for rows in subjects.values() for r in rows]).to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
        return root
    for subject, rows in subjects.items():
        (root / subject).mkdir(parents=True, exist_ok=True)
        table(rows).to_parquet(str(root / subject / f"{split}-00000-of-00001.parquet"))
    return root


# ----------------------------------------------------------------------------------------
# triage folders (one labels.jsonl per folder)
# ----------------------------------------------------------------------------------------
def write_triage(root: Path, folders: Optional[dict[str, list[dict]]] = None) -> Path:
    """``<folder>/labels.jsonl`` with ``image`` paths relative to the folder. Each row may carry
    ``_n`` (image number, removed before writing)."""
    if folders is None:
        folders = {
            "derm": [{"image": f"images/d{i}.jpg", "modality": "dermoscopy", "specialty": "Dermatologist",
                      "diagnosis": "nevus", "_n": 500 + i} for i in range(6)],
            "fundus": [{"image": f"images/f{i}.jpg", "modality": "fundus photography", "specialty": "Ophthalmologist",
                        "_n": 600 + i} for i in range(4)],
            "histo": [{"image": f"h{i}.png", "modality": "histology (H&E, colorectal)", "_n": 700 + i} for i in range(3)],
        }
    for folder, rows in folders.items():
        lines = []
        for r in rows:
            r = dict(r)
            n = r.pop("_n", None)
            if n is not None:
                write_image(root / folder / r["image"], n)
            lines.append(json.dumps(r))
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "labels.jsonl").write_text("\n".join(lines) + "\n")
    return root
