"""Pre-training of the tiny base VLM on the synthetic set's free labels.

The paper's agents start from Qwen2.5-VL-Instruct, a vision-language model that already
reads images. The tiny offline Qwen2.5-VL starts from random weights, and trained on the
answers alone it does not learn to read the synthetic findings at all (measured
in ``benchmarks/RESULTS.md``: supervised on the answer letter only, its accuracy stays at
chance). This module gives the tiny base the skill the paper assumes, on a synthetic split
that no later step uses (``"pretrain"``: its own random stream, so it shares no image
with ``train``/``validation``/``test``), in two phases, each one run of transformers'
``Trainer``:

1. **vision** — the vision tower and its merger, with a linear head on the merged tokens
   (one per 2 x 2 patches), regress for each token the number of finding centres in it
   and the share of its area the finding covers (:func:`finding_targets`; free labels: the
   generator records every finding disc in ``meta["feature"]["blobs"]``). Dense
   supervision is what makes the tower learn the findings' shape and size.
2. **answers** — the language model (the vision tower frozen except its merger, profile
   key ``models.pretrain.freeze_vision``) learns the answer letter from image + question +
   options, with the attending's prompt without opinions and the completion prefix
   ``<think>Panel: none.</think><answer>``; the loss is on the answer letter only (labels
   masked elsewhere, transformers' causal-LM loss).

The head is dropped afterwards: ``runs/<id>/models/base`` holds an ordinary checkpoint
(same class, processor and files as an untrained tiny model) plus ``pretrain.json`` (steps,
losses, seconds, and the letter accuracy per question type on synthetic ``validation``
items before and after, with the answer distribution). Each phase's losses also go to
TensorBoard (``report_to="tensorboard"``), ``runs/<id>/tensorboard/pretrain_vision_seed<k>``
and ``pretrain_answers_seed<k>`` (:mod:`mmed.rl.tensorboard_logs`; a base reused from the
cache brings the event files of its pre-training along).

Sources: transformers ``Trainer`` (a module whose ``forward`` returns ``{"loss": ...}``;
``remove_unused_columns=False`` for a custom collator), Qwen2.5-VL's vision tower
(``model.model.visual``; its output's ``pooler_output`` holds the merged tokens in
row-major order of the (h/2, w/2) grid), and the causal-LM loss of
``Qwen2_5_VLForConditionalGeneration`` (labels = -100 are ignored).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..agents.prompts import attending_messages, templated_completion
from ..agents.scoring import answer_distribution
from ..agents.build import base_model_for, model_name_for
from ..config import Profile, user_cache_dir
from ..data.schema import item_meta
from ..models import build_tiny_qwen2_5_vl
from ..runs import Run, write_json_atomic
from .tensorboard_logs import training_name

#: the grounded reasoning of an attending with no opinions (matches mmed.rl.sft.tally_reasoning)
NO_PANEL_REASONING = "Panel: none."
#: values per merged token regressed in the vision phase: finding centres, area share x 10
N_FINDING_TARGETS = 2
_COVERAGE_SCALE = 10.0


def finding_targets(blobs: Sequence[Sequence[float]], image_size: int, grid_h: int, grid_w: int) -> torch.Tensor:
    """Per merged vision token: finding centres in it and 10 x the share of it the finding covers.

    Args:
        blobs: finding discs ``[x, y, r]`` in pixels of the original square image (x right,
            y down), as in a synthetic item's ``meta["feature"]["blobs"]``.
        image_size: side of the original image in pixels.
        grid_h, grid_w: merged-token grid (``image_grid_thw[1:] // merge``).
    Returns:
        float tensor ``(grid_h * grid_w, 2)`` in row-major token order.
    Raises:
        ValueError: a non-positive size or grid.
    """
    if image_size <= 0 or grid_h <= 0 or grid_w <= 0:
        raise ValueError(f"finding_targets: need positive sizes, got image {image_size}, grid {grid_h}x{grid_w}")
    yy, xx = np.mgrid[0:image_size, 0:image_size] + 0.5
    mask = np.zeros((image_size, image_size), bool)
    centres = np.zeros((grid_h, grid_w))
    for x, y, r in blobs:
        mask |= (xx - x) ** 2 + (yy - y) ** 2 <= r**2
        centres[min(int(y / image_size * grid_h), grid_h - 1), min(int(x / image_size * grid_w), grid_w - 1)] += 1
    rows = np.linspace(0, image_size, grid_h + 1).round().astype(int)
    cols = np.linspace(0, image_size, grid_w + 1).round().astype(int)
    cover = np.array([[mask[rows[i]:rows[i + 1], cols[j]:cols[j + 1]].mean() for j in range(grid_w)] for i in range(grid_h)])
    return torch.tensor(np.stack([centres.ravel(), _COVERAGE_SCALE * cover.ravel()], axis=1), dtype=torch.float32)


class FindingMapModel(torch.nn.Module):
    """Vision tower + a linear head on its merged tokens (the vision phase's trainable model).

    ``forward(pixel_values, image_grid_thw, finding_targets)`` returns ``{"loss": MSE}``
    between the head's ``(n_tokens, 2)`` output and the targets of :func:`finding_targets`.
    """

    def __init__(self, visual: torch.nn.Module, hidden_size: int):
        super().__init__()
        self.visual = visual
        self.head = torch.nn.Linear(hidden_size, N_FINDING_TARGETS)

    def forward(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor, finding_targets: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.visual(pixel_values, grid_thw=image_grid_thw)
        tokens = getattr(out, "pooler_output", None)
        tokens = out if tokens is None else tokens
        pred = self.head(tokens)
        return {"loss": torch.nn.functional.mse_loss(pred, finding_targets), "logits": pred}


class FindingCollator:
    """Synthetic items → ``pixel_values``, ``image_grid_thw`` and per-token ``finding_targets``.

    Each item's processed image and targets are computed once and kept (by item id): the
    vision phase visits every item many times."""

    def __init__(self, processor: Any, merge_size: int = 2):
        self.processor = processor
        self.merge = merge_size
        self._memo: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _one(self, it: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = str(it["id"])
        if key not in self._memo:
            im = _rgb(it["images"][0])
            b = self.processor.image_processor(images=[im], return_tensors="pt")
            thw = b["image_grid_thw"][0]
            blobs = item_meta(it)["feature"]["blobs"]
            t = finding_targets(blobs, im.size[0], int(thw[1]) // self.merge, int(thw[2]) // self.merge)
            self._memo[key] = (b["pixel_values"], b["image_grid_thw"], t)
        return self._memo[key]

    def __call__(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        parts = [self._one(it) for it in items]
        return {"pixel_values": torch.cat([p[0] for p in parts]), "image_grid_thw": torch.cat([p[1] for p in parts]),
                "finding_targets": torch.cat([p[2] for p in parts])}


def answer_prompt(processor: Any, item: Any, style: str) -> str:
    """The text up to the answer letter: the attending's prompt without opinions, the
    generation prompt, then ``<think>Panel: none.</think><answer>``."""
    msgs = attending_messages(item, [], style=style)
    head = processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    done = templated_completion("A", NO_PANEL_REASONING)
    return head + done[: done.index("<answer>") + len("<answer>")]


def letter_token_ids(tokenizer: Any, n: int = 4) -> list[int]:
    """Token ids of the option letters ``A``, ``B``, ... (each must be one token).

    Raises:
        ValueError: a letter that the tokenizer splits.
    """
    ids = []
    for k in range(n):
        letter = chr(ord("A") + k)
        enc = tokenizer.encode(letter, add_special_tokens=False)
        if len(enc) != 1:
            raise ValueError(f"option letter {letter!r} is {len(enc)} tokens for this tokenizer; need 1")
        ids.append(enc[0])
    return ids


class AnswerCollator:
    """Items → a causal-LM batch whose only label is the gold answer letter (last token)."""

    def __init__(self, processor: Any, style: str):
        self.processor = processor
        self.style = style
        self.letters = letter_token_ids(processor.tokenizer, 26)

    def __call__(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        letters = [self.letters[int(it["answer_idx"])] for it in items]
        texts = [answer_prompt(self.processor, it, self.style) + chr(ord("A") + int(it["answer_idx"])) for it in items]
        batch = self.processor(text=texts, images=[[_rgb(it["images"][0])] for it in items], return_tensors="pt",
                               padding=True)
        ids = batch["input_ids"]
        if ids[:, -1].tolist() != letters:  # left padding: every row ends with its letter
            raise ValueError("AnswerCollator: the answer letter is not the last token of every row "
                             "(is the processor padding on the left?)")
        labels = torch.full_like(ids, -100)
        labels[:, -1] = ids[:, -1]
        batch["labels"] = labels
        return dict(batch)


@torch.no_grad()
def letter_accuracy(model: Any, processor: Any, items: Sequence[Any], style: str, batch_size: int = 32) -> dict[str, Any]:
    """Greedy answer letter (argmax over the item's option letters, teacher-forced prompt of
    :func:`answer_prompt`) on ``items``: accuracy overall and per ``question_type``, chance
    (mean of 1 / n_options) and the letter distribution.

    Returns:
        ``{"n", "accuracy", "chance", "by_type": {type: {"n", "accuracy", "chance"}},
        "answers": mmed.agents.scoring.answer_distribution(...)}``; empty items → n 0, NaNs.
    """

    if not items:
        return {"n": 0, "accuracy": float("nan"), "chance": float("nan"), "by_type": {}, "answers": {}}
    was_training = model.training
    model.eval()
    letters = letter_token_ids(processor.tokenizer, 26)
    preds: list[int] = []
    for i in range(0, len(items), batch_size):
        chunk = items[i:i + batch_size]
        batch = processor(text=[answer_prompt(processor, it, style) for it in chunk],
                          images=[[_rgb(it["images"][0])] for it in chunk], return_tensors="pt", padding=True)
        logits = model(**batch).logits[:, -1, :]
        for it, row in zip(chunk, logits):
            k = len(it["options"])
            preds.append(int(torch.argmax(row[letters[:k]])))
    if was_training:
        model.train()
    by: dict[str, list[tuple[bool, float]]] = {}
    for it, p in zip(items, preds):
        by.setdefault(str(item_meta(it).get("question_type", "?")), []).append((p == int(it["answer_idx"]), 1 / len(it["options"])))
    flat = [x for v in by.values() for x in v]
    letter = [chr(ord("A") + p) for p in preds]
    gold = [chr(ord("A") + int(it["answer_idx"])) for it in items]
    return {
        "n": len(items),
        "accuracy": float(np.mean([c for c, _ in flat])),
        "chance": float(np.mean([ch for _, ch in flat])),
        "by_type": {t: {"n": len(v), "accuracy": float(np.mean([c for c, _ in v])), "chance": float(np.mean([ch for _, ch in v]))}
                    for t, v in sorted(by.items())},
        "answers": answer_distribution(letter, None, gold),
    }


def _rgb(img: Any) -> Any:
    from ..agents.generation import _pil

    return _pil(img)


def _trainer_args(out_dir: Path, profile: Profile, steps: int, lr: float, seed: int) -> Any:
    from transformers import TrainingArguments

    cfg = profile.models.pretrain
    return TrainingArguments(
        output_dir=str(out_dir),
        use_cpu=profile.device == "cpu",
        bf16=False,
        report_to="tensorboard",
        save_strategy="no",
        logging_steps=max(1, steps // 20),
        max_steps=steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=lr,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, steps // 10),
        weight_decay=0.0,
        seed=seed,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,
    )


def _train(model: Any, args: Any, items: Sequence[Any], collator: Any, tensorboard_dir: Path) -> list[float]:
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback

    from ..progress import progress_callbacks
    from .tensorboard_logs import tensorboard_logging_dir

    with tensorboard_logging_dir(tensorboard_dir, fresh=True):
        trainer = Trainer(model=model, args=args, train_dataset=list(items), data_collator=collator,
                          callbacks=progress_callbacks(Path(tensorboard_dir).name))
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


def pretrain_base(init_dir: str | Path, out_dir: str | Path, profile: Profile, seed: int | None = None,
                  tensorboard_root: str | Path | None = None) -> dict[str, Any]:
    """:func:`_pretrain_base` with ``models.pretrain.threads`` torch threads (restored after)."""
    from ..config import torch_threads

    with torch_threads(profile.models.pretrain.threads):
        return _pretrain_base(init_dir, out_dir, profile, seed, tensorboard_root)


def _pretrain_base(init_dir: str | Path, out_dir: str | Path, profile: Profile, seed: int | None = None,
                   tensorboard_root: str | Path | None = None) -> dict[str, Any]:
    """Pre-train the tiny base in ``init_dir`` (an untrained tiny model) into ``out_dir``.

    Args:
        init_dir: folder of :func:`mmed.models.build_tiny_qwen2_5_vl`.
        out_dir: where the pre-trained model + processor and ``pretrain.json`` go.
        profile: ``models.pretrain`` (items, steps, learning rates, batch size,
            freeze_vision), ``data.synthetic`` (image size, difficulty), ``image`` and
            ``sampling.prompt_style``.
        seed: seeds the item stream and the trainers; None = ``models.pretrain.seed``.
        tensorboard_root: the folder that gets one TensorBoard event folder per phase,
            ``pretrain_vision_seed<k>`` and ``pretrain_answers_seed<k>`` (a run's
            ``tensorboard/``); None → ``out_dir/tensorboard``.
    Returns:
        the report written to ``out_dir/pretrain.json``: items, steps, first/last losses of
        each phase, seconds, and :func:`letter_accuracy` on ``n_validation`` synthetic
        validation items before and after.
    Raises:
        ValueError: a phase with steps < 0 or no items.
    """
    from ..data.synthetic import make_synthetic
    from ..models import load_policy

    cfg = profile.models.pretrain
    seed = cfg.seed if seed is None else seed
    if cfg.n_items < 1 or cfg.vision_steps < 0 or cfg.answer_steps < 0:
        raise ValueError(f"models.pretrain: need n_items >= 1 and steps >= 0, got {cfg.n_items}, "
                         f"{cfg.vision_steps}, {cfg.answer_steps}")
    syn = profile.data.synthetic
    style = profile.sampling.prompt_style
    out_dir = Path(out_dir)
    tb_root = out_dir / "tensorboard" if tensorboard_root is None else Path(tensorboard_root)
    t0 = time.perf_counter()
    items = list(make_synthetic(cfg.n_items, seed, image_size=syn.image_size, difficulty=syn.difficulty, split="pretrain"))
    held = list(make_synthetic(cfg.n_validation, syn.seed, image_size=syn.image_size, difficulty=syn.difficulty,
                               split="validation"))
    t_data = time.perf_counter() - t0
    model, processor = load_policy(str(init_dir), min_pixels=profile.image.min_pixels, max_pixels=profile.image.max_pixels)
    before = letter_accuracy(model, processor, held, style)
    model.train()
    visual = model.model.visual
    merge = int(model.config.vision_config.spatial_merge_size)
    report: dict[str, Any] = {"n_items": len(items), "split": "pretrain", "seed": seed, "data_seconds": round(t_data, 1)}
    if cfg.vision_steps:
        t1 = time.perf_counter()
        fm = FindingMapModel(visual, model.config.text_config.hidden_size)
        losses = _train(fm, _trainer_args(out_dir / "trainer_vision", profile, cfg.vision_steps, cfg.vision_lr, seed),
                        items, FindingCollator(processor, merge), tb_root / training_name("pretrain_vision", seed))
        report["vision"] = {"steps": cfg.vision_steps, "learning_rate": cfg.vision_lr, "loss_first": losses[0] if losses else None,
                            "loss_last": losses[-1] if losses else None, "seconds": round(time.perf_counter() - t1, 1)}
    if cfg.answer_steps:
        t2 = time.perf_counter()
        frozen = 0
        if cfg.freeze_vision:
            for name, p in visual.named_parameters():
                if not name.startswith("merger."):
                    p.requires_grad_(False)
                    frozen += p.numel()
        losses = _train(model, _trainer_args(out_dir / "trainer_answers", profile, cfg.answer_steps, cfg.answer_lr, seed + 1),
                        items, AnswerCollator(processor, style), tb_root / training_name("pretrain_answers", seed))
        for p in visual.parameters():
            p.requires_grad_(True)
        report["answers"] = {"steps": cfg.answer_steps, "learning_rate": cfg.answer_lr, "frozen_parameters": frozen,
                             "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
                             "seconds": round(time.perf_counter() - t2, 1)}
    after = letter_accuracy(model, processor, held, style)
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    for sub in ("trainer_vision", "trainer_answers"):
        _rmtree(out_dir / sub)
    report.update(before=before, after=after, seconds=round(time.perf_counter() - t0, 1))
    write_json_atomic(out_dir / "pretrain.json", report)
    return report


def _rmtree(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)


#: bump when the pre-training recipe changes what a cached base holds
PRETRAIN_RECIPE_VERSION = 1
#: environment variable naming the base-model cache folder (default: the user's cache)
BASE_CACHE_ENV = "MMED_BASE_CACHE"


def default_base_cache_dir() -> Path:
    """``$MMED_BASE_CACHE`` when set, else ``$XDG_CACHE_HOME/mmed/base`` (``~/.cache/mmed/base``).
    Not created here."""
    return user_cache_dir("base", BASE_CACHE_ENV)


def base_cache_key(profile: Profile) -> str:
    """Hex key of a pre-trained tiny base: a hash of everything that fixes it (the tiny
    model's sizes and seed, ``models.pretrain`` but ``cache``, ``threads`` and ``shipped``, ``image``, the
    synthetic image size, difficulty and validation seed, the prompt style, the synthetic
    generator's version and :data:`PRETRAIN_RECIPE_VERSION`). The run's own seed is not
    part of it: like a pretrained VLM, one base serves every seed."""
    import dataclasses
    import hashlib
    import json

    from ..data.synthetic import SYNTHETIC_VERSION

    pre = {k: v for k, v in dataclasses.asdict(profile.models.pretrain).items()
           if k not in ("cache", "threads", "shipped")}
    syn = profile.data.synthetic
    key = {"tiny": dataclasses.asdict(profile.models.tiny), "pretrain": pre, "image": dataclasses.asdict(profile.image),
           "synthetic": [syn.image_size, syn.difficulty, syn.seed], "style": profile.sampling.prompt_style,
           "generator": SYNTHETIC_VERSION, "recipe": PRETRAIN_RECIPE_VERSION}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


#: the bases shipped with the package, one folder per :func:`base_cache_key`
SHIPPED_BASE_DIR = Path(__file__).resolve().parent.parent / "assets" / "base"
#: the record of a shipped base: the files' SHA-256 digests, where and how it was made
SHIPPED_RECORD = "shipped.json"


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shipped_base_entry(profile: Profile, root: str | Path | None = None) -> Path | None:
    """The base shipped with the package for ``profile``'s pre-training settings, or None.

    A shipped entry is a cache entry (``<root>/<base_cache_key(profile)>``, the files
    :func:`cached_pretrain` copies into a run) plus :data:`SHIPPED_RECORD`, which lists the
    SHA-256 of every file but itself. It is the base the committed figures were made with:
    the pre-training's weights depend on the CPU's float arithmetic (two machines give two
    bases from the same code and seed, ``benchmarks/RESULTS.md``), so a shipped base makes
    every machine start from the same one, as a downloaded pretrained VLM would.

    Args:
        root: folder of the shipped entries (None: :data:`SHIPPED_BASE_DIR`).
    Returns:
        the entry's folder; None when ``models.pretrain.shipped`` is false or no entry
        exists for the key.
    Raises:
        ValueError: the entry's files do not match its record (e.g. a Git LFS pointer or a
            truncated download in place of ``model.safetensors``), naming the file.
    """
    import json

    if not profile.models.pretrain.shipped:
        return None
    entry = Path(root if root is not None else SHIPPED_BASE_DIR) / base_cache_key(profile)
    record_path = entry / SHIPPED_RECORD
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
        digests = dict(record["sha256"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{record_path}: not a readable record of a shipped base ({type(e).__name__}: {e}); "
                         f"restore it (git checkout) or set models.pretrain.shipped: false") from None
    for rel, digest in sorted(digests.items()):
        f = entry / rel
        if not f.is_file() or _sha256(f) != digest:
            raise ValueError(f"{f}: missing or not the shipped file (sha256 differs from {record_path}); "
                             f"restore it (git checkout) or set models.pretrain.shipped: false to pre-train one")
    return entry


def ship_base(profile: Profile, init_dir: str | Path | None, root: str | Path | None = None,
              note: str = "", from_entry: str | Path | None = None) -> Path:
    """Write the base for ``profile`` as a shipped entry (:func:`shipped_base_entry`).

    The base is a fresh :func:`pretrain_base` of ``init_dir`` on this machine (never the
    cache), or, with ``from_entry``, a copy of an existing cache entry of the same key (a
    base this machine pre-trained before). The entry gets the model folder, its
    ``tensorboard/`` event folders and :data:`SHIPPED_RECORD` (SHA-256 of each file, the
    key, the machine, ``note``). An existing entry for the key is replaced.

    Args:
        init_dir: an untrained tiny model (:func:`mmed.models.build_tiny_qwen2_5_vl`);
            unused with ``from_entry``.
        root: where entries go (None: :data:`SHIPPED_BASE_DIR`).
        note: free text kept in the record (e.g. the machine and commit).
        from_entry: a cache entry folder (``$MMED_BASE_CACHE/<key>``) to ship instead of
            pre-training.
    Returns:
        the entry's folder.
    Raises:
        ValueError: ``from_entry`` is not named by this profile's key or holds no base.
    """
    import platform
    import shutil

    root = Path(root if root is not None else SHIPPED_BASE_DIR)
    entry = root / base_cache_key(profile)
    tmp = root / f".{entry.name}.tmp"
    _rmtree(tmp)
    if from_entry is not None:
        src = Path(from_entry)
        if src.name != entry.name or load_pretrain_report(src) is None or not (src / "config.json").is_file():
            raise ValueError(f"{src}: not a pre-trained base of key {entry.name} (profile {profile.name!r})")
        shutil.copytree(src, tmp)
    else:
        if init_dir is None:
            raise ValueError("ship_base needs init_dir (an untrained tiny model) or from_entry")
        pretrain_base(init_dir, tmp, profile)
    report = load_pretrain_report(tmp) or {}
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    record = {"key": entry.name, "profile": profile.name,
              "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU(s)",
              "pretrain_seconds": report.get("seconds"), "note": note,
              "sha256": {p.relative_to(tmp).as_posix(): _sha256(p) for p in files}}
    write_json_atomic(tmp / SHIPPED_RECORD, record)
    _rmtree(entry)
    tmp.rename(entry)
    return entry


def _copy_entry(entry: Path, out_dir: Path, tensorboard_root: str | Path | None) -> None:
    """Copy a cache or shipped entry into ``out_dir`` (its event folders into ``tensorboard_root``)."""
    import shutil

    _rmtree(out_dir)
    skip = {"tensorboard", SHIPPED_RECORD}
    shutil.copytree(entry, out_dir, ignore=lambda d, names: [n for n in names if n in skip] if Path(d) == entry else [])
    tb_root = out_dir / "tensorboard" if tensorboard_root is None else Path(tensorboard_root)
    for src in sorted((entry / "tensorboard").glob("*")):
        if src.is_dir():
            _rmtree(tb_root / src.name)
            shutil.copytree(src, tb_root / src.name)


def cached_pretrain(init_dir: str | Path, out_dir: str | Path, profile: Profile, cache_dir: str | Path | None = None,
                    tensorboard_root: str | Path | None = None, shipped_dir: str | Path | None = None) -> dict[str, Any]:
    """:func:`pretrain_base` through a cache shared by runs (``models.pretrain.cache``).

    A base pre-trained once for a key (:func:`base_cache_key`) is copied into ``out_dir``
    by later runs — the way a pretrained VLM is downloaded once — and ``pretrain.json``
    gets ``"cached_from"``. Without ``models.pretrain.cache`` this is :func:`pretrain_base`.
    The cache entry keeps the TensorBoard event folders of its pre-training
    (``<entry>/tensorboard/``); they are copied into ``tensorboard_root`` (a run's
    ``tensorboard/``; None → ``out_dir/tensorboard``), not into the model folder.

    First of all, with ``models.pretrain.shipped`` (the default), the base shipped with the
    package for these settings (:func:`shipped_base_entry`, ``shipped_dir`` or
    :data:`SHIPPED_BASE_DIR`) is copied instead — even over a cache entry of one's own: it
    is the base the committed figures were made with. ``pretrain.json`` then gets
    ``"shipped_from"``. Returns the report.

    Raises:
        ValueError: a shipped entry whose files do not match its record.
    """
    out_dir = Path(out_dir)
    shipped = shipped_base_entry(profile, shipped_dir)
    if shipped is not None:
        _copy_entry(shipped, out_dir, tensorboard_root)
        report = load_pretrain_report(out_dir) or {}
        report["shipped_from"] = str(shipped)
        write_json_atomic(out_dir / "pretrain.json", report)
        return report
    if profile.models.pretrain.shipped:  # asked for, but none fits these settings: say why it pre-trains
        ship_root = Path(shipped_dir if shipped_dir is not None else SHIPPED_BASE_DIR)
        print(f"no shipped base for these pre-training settings (key {base_cache_key(profile)}; shipped: "
              f"{', '.join(sorted(p.name for p in ship_root.glob('*'))) or 'none'}): the base comes from the "
              f"cache or is pre-trained on this machine", file=sys.stderr, flush=True)
    if not profile.models.pretrain.cache:
        return pretrain_base(init_dir, out_dir, profile, tensorboard_root=tensorboard_root)
    root = Path(cache_dir) if cache_dir is not None else default_base_cache_dir()
    entry = root / base_cache_key(profile)
    if load_pretrain_report(entry) is None or not (entry / "config.json").is_file():
        tmp = root / f".{entry.name}.tmp{id(out_dir)}"
        _rmtree(tmp)
        pretrain_base(init_dir, tmp, profile)  # event files into tmp/tensorboard: kept by the entry
        root.mkdir(parents=True, exist_ok=True)
        if not entry.exists():
            tmp.rename(entry)
        _rmtree(tmp)
    _copy_entry(entry, out_dir, tensorboard_root)
    report = load_pretrain_report(out_dir) or {}
    report["cached_from"] = str(entry)
    write_json_atomic(out_dir / "pretrain.json", report)
    return report


def load_pretrain_report(base_dir: str | Path) -> dict[str, Any] | None:
    """The ``pretrain.json`` of a pre-trained base folder, or None (untrained base)."""
    import json

    p = Path(base_dir) / "pretrain.json"
    return json.loads(p.read_text()) if p.is_file() else None


__all__ = [
    "AnswerCollator", "FindingCollator", "FindingMapModel", "answer_prompt", "finding_targets", "letter_accuracy",
    "letter_token_ids", "load_pretrain_report", "pretrain_base", "cached_pretrain", "base_cache_key",
    "ensure_base_model", "base_model", "shipped_base_entry", "ship_base", "SHIPPED_BASE_DIR",
]


def ensure_base_model(run: Run, profile: Profile) -> Path:
    """The tiny base model of the run, built into ``models/base`` on first use.

    Only for profiles whose models are ``"tiny"``; built from ``profile.models.tiny`` and
    ``profile.image`` (:func:`mmed.models.build_tiny_qwen2_5_vl`) so that another process (or
    ``transformers serve``) can load it. With ``models.pretrain.enabled`` the untrained model
    goes to ``models/init`` and its pre-training on the synthetic set's free labels
    (:func:`pretrain_base` through :func:`cached_pretrain`, the stand-in for the pretrained
    VLM the paper starts from) to ``models/base``.
    """
    base = run.path("models", "base")
    if (base / "config.json").is_file():
        return base
    kw = dict(min_pixels=profile.image.min_pixels, max_pixels=profile.image.max_pixels)
    if not profile.models.pretrain.enabled:
        build_tiny_qwen2_5_vl(base, profile.models.tiny, **kw)
        run.add_artifact("models/base", base)
        return base
    init = run.path("models", "init")
    if not (init / "config.json").is_file():
        build_tiny_qwen2_5_vl(init, profile.models.tiny, **kw)
        run.add_artifact("models/init", init)
    with run.step("pretrain/base"):
        report = cached_pretrain(init, base, profile, tensorboard_root=run.tensorboard_root)
    source = report.get("shipped_from") or report.get("cached_from")
    if source:
        print(f"pre-trained base: copied from {source} ({'shipped with the package' if 'shipped_from' in report else 'cache'})",
              file=sys.stderr, flush=True)
    run.add_artifact("models/base", base)
    return base


def base_model(run: Run, profile: Profile, agent: str) -> str:
    """:func:`mmed.agents.build.base_model_for` after :func:`ensure_base_model` when
    ``agent``'s model is ``"tiny"``: the base model name/path of ``agent``, built on first use.
    ``agent``: ``"triage"``, ``"attending"`` or ``"specialist"``."""
    if model_name_for(profile, agent) == "tiny":
        ensure_base_model(run, profile)
    return base_model_for(run, profile, agent)
