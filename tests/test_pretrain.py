"""Pre-training of the tiny base on the synthetic set's free labels (mmed/rl/pretrain.py)."""

from __future__ import annotations

import json

import pytest
import torch

from mmed.config import load_profile
from mmed.data.synthetic import make_synthetic
from mmed.models import build_tiny_qwen2_5_vl, load_policy
from mmed.rl.pretrain import (
    AnswerCollator,
    FindingCollator,
    finding_targets,
    letter_accuracy,
    letter_token_ids,
    load_pretrain_report,
    pretrain_base,
)


def test_finding_targets_put_the_centre_and_the_area_in_the_right_token():
    # one disc of radius 10 centred at (30, 70) in a 96-pixel image, 4 x 4 merged tokens of 24 px
    t = finding_targets([[30.0, 70.0, 10.0]], 96, 4, 4)
    assert t.shape == (16, 2)
    centres, cover = t[:, 0].reshape(4, 4), t[:, 1].reshape(4, 4) / 10
    assert centres[2, 1] == 1 and centres.sum() == 1  # row 70 // 24 = 2, column 30 // 24 = 1
    area = (cover * 24 * 24).sum().item()
    assert abs(area - 3.14159 * 100) < 12  # the disc's area, in pixels, up to the pixel grid
    assert cover[0, 3] == 0
    assert torch.equal(finding_targets([], 96, 4, 4), torch.zeros(16, 2))
    with pytest.raises(ValueError, match="positive"):
        finding_targets([], 0, 4, 4)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    prof = load_profile("smoke")
    d = build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny"), prof.models.tiny, min_pixels=prof.image.min_pixels,
                              max_pixels=prof.image.max_pixels)
    model, processor = load_policy(d)
    items = list(make_synthetic(6, 0, image_size=64, split="validation"))
    return prof, d, model, processor, items


def test_answer_collator_labels_only_the_gold_letter(tiny):
    prof, _, _, processor, items = tiny
    batch = AnswerCollator(processor, prof.sampling.prompt_style)(items)
    letters = letter_token_ids(processor.tokenizer, 4)
    labels = batch["labels"]
    assert (labels[:, :-1] == -100).all()
    assert labels[:, -1].tolist() == [letters[it["answer_idx"]] for it in items]
    assert batch["input_ids"][:, -1].tolist() == labels[:, -1].tolist()
    text = processor.tokenizer.decode(batch["input_ids"][0])
    assert text.rstrip().endswith("<think>Panel: none.</think><answer>" + "ABCD"[items[0]["answer_idx"]])
    assert "(no specialist opinions)" in text


def test_finding_collator_matches_the_vision_grid(tiny):
    _, _, model, processor, items = tiny
    batch = FindingCollator(processor, model.config.vision_config.spatial_merge_size)(items)
    n_tokens = int((batch["image_grid_thw"][:, 1] * batch["image_grid_thw"][:, 2]).sum()) // 4
    assert batch["finding_targets"].shape == (n_tokens, 2)
    n_blobs = sum(len(json.loads(it["meta"])["feature"]["blobs"]) if isinstance(it["meta"], str)
                  else len(it["meta"]["feature"]["blobs"]) for it in items)
    assert batch["finding_targets"][:, 0].sum().item() == n_blobs


def test_letter_accuracy_reports_types_chance_and_answers(tiny):
    prof, _, model, processor, items = tiny
    rep = letter_accuracy(model, processor, items, prof.sampling.prompt_style)
    assert rep["n"] == 6 and 0 <= rep["accuracy"] <= 1
    assert sum(v["n"] for v in rep["by_type"].values()) == 6
    expected_chance = sum(1 / len(it["options"]) for it in items) / 6
    assert rep["chance"] == pytest.approx(expected_chance)
    assert rep["answers"]["n"] == 6 and rep["answers"]["n_invalid"] == 0


def test_pretrain_base_writes_a_loadable_model_and_its_report(tiny, tmp_path):
    prof, init, _, _, _ = tiny
    prof = load_profile("smoke")
    prof.models.pretrain.n_items = 16
    prof.models.pretrain.vision_steps = 2
    prof.models.pretrain.answer_steps = 2
    prof.models.pretrain.batch_size = 4
    prof.models.pretrain.n_validation = 8
    rep = pretrain_base(init, tmp_path / "base", prof)
    assert rep["vision"]["steps"] == 2 and rep["answers"]["steps"] == 2
    assert rep["answers"]["frozen_parameters"] > 0
    assert rep["before"]["n"] == rep["after"]["n"] == 8
    assert load_pretrain_report(tmp_path / "base") == json.loads((tmp_path / "base" / "pretrain.json").read_text())
    model, _ = load_policy(tmp_path / "base")
    before, _ = load_policy(init)
    changed = [n for (n, p), (_, q) in zip(model.named_parameters(), before.named_parameters()) if not torch.equal(p, q)]
    assert any(".visual.blocks." in n for n in changed)  # phase 1 trained the tower
    assert any("language_model" in n for n in changed)  # phase 2 the language model
    assert not (tmp_path / "base" / "trainer_vision").exists()


# ----------------------------------------------------------------------------------------
# the shipped base (mmed/assets/base): the base every machine starts from
# ----------------------------------------------------------------------------------------
def _tiny_pretrain(prof):
    prof.models.pretrain.n_items = 16
    prof.models.pretrain.vision_steps = 2
    prof.models.pretrain.answer_steps = 2
    prof.models.pretrain.batch_size = 4
    prof.models.pretrain.n_validation = 8
    return prof


def test_a_shipped_base_is_copied_into_the_run_instead_of_pre_training(tiny, tmp_path, monkeypatch):
    from mmed.rl import pretrain as P

    prof, init, _, _, _ = tiny
    prof = _tiny_pretrain(load_profile("smoke"))
    ship = tmp_path / "assets"
    entry = P.ship_base(prof, init, ship, note="test")
    record = json.loads((entry / P.SHIPPED_RECORD).read_text())
    assert entry.name == P.base_cache_key(prof) == record["key"]
    assert "model.safetensors" in record["sha256"] and record["note"] == "test"
    assert any(k.startswith("tensorboard/pretrain_vision_seed0/") for k in record["sha256"])

    calls = []
    monkeypatch.setattr(P, "pretrain_base", lambda *a, **k: calls.append(a))
    out = tmp_path / "run_base"
    rep = P.cached_pretrain(init, out, prof, cache_dir=tmp_path / "cache", tensorboard_root=tmp_path / "tb",
                            shipped_dir=ship)
    assert calls == [] and rep["shipped_from"] == str(entry)
    assert (out / "model.safetensors").read_bytes() == (entry / "model.safetensors").read_bytes()
    assert not (out / P.SHIPPED_RECORD).exists() and not (out / "tensorboard").exists()
    assert (tmp_path / "tb" / "pretrain_answers_seed0").is_dir()
    assert not (tmp_path / "cache").exists()  # nothing pre-trained, nothing cached

    # a changed setting is another key: no shipped entry, so it pre-trains (here: the stub)
    prof.models.pretrain.answer_steps = 3
    assert P.shipped_base_entry(prof, ship) is None
    # shipped: false skips the shipped entry
    prof.models.pretrain.answer_steps = 2
    prof.models.pretrain.shipped = False
    assert P.shipped_base_entry(prof, ship) is None


def test_a_shipped_file_that_is_not_the_recorded_one_is_refused(tiny, tmp_path):
    from mmed.rl import pretrain as P

    _, init, _, _, _ = tiny
    prof = _tiny_pretrain(load_profile("smoke"))
    entry = P.ship_base(prof, init, tmp_path, from_entry=None)
    (entry / "model.safetensors").write_text("version https://git-lfs.github.com/spec/v1\n")  # a Git LFS pointer
    with pytest.raises(ValueError, match=r"model\.safetensors: missing or not the shipped file"):
        P.shipped_base_entry(prof, tmp_path)
    with pytest.raises(ValueError, match="not a pre-trained base of key"):
        P.ship_base(prof, init, tmp_path / "other", from_entry=tmp_path / "nowhere")


def test_the_demo_profile_has_its_shipped_base_and_its_files_are_intact():
    # the base behind figures/: changing a setting that enters the key (models.tiny, models.pretrain,
    # image, the synthetic images, the prompt style, the generator) needs `python -m mmed ship-base`
    from mmed.rl import pretrain as P

    prof = load_profile("demo")
    entry = P.shipped_base_entry(prof)
    assert entry is not None, (f"no shipped base for the demo profile's key {P.base_cache_key(prof)} in "
                               f"{P.SHIPPED_BASE_DIR}: run `python -m mmed ship-base --profile demo`")
    report = load_pretrain_report(entry)
    assert report["vision"]["steps"] == prof.models.pretrain.vision_steps
    assert report["answers"]["steps"] == prof.models.pretrain.answer_steps
    assert report["n_items"] == prof.models.pretrain.n_items


def test_a_damaged_shipped_record_is_a_one_line_error_naming_it(tmp_path):
    from mmed.rl import pretrain as P

    prof = load_profile("smoke")
    entry = tmp_path / P.base_cache_key(prof)
    entry.mkdir()
    (entry / P.SHIPPED_RECORD).write_text('{"key": "x"')
    with pytest.raises(ValueError, match=r"shipped\.json: not a readable record of a shipped base"):
        P.shipped_base_entry(prof, tmp_path)
    (entry / P.SHIPPED_RECORD).write_text('{"key": "x"}')  # no digests
    with pytest.raises(ValueError, match="not a readable record"):
        P.shipped_base_entry(prof, tmp_path)
