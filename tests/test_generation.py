"""Batched generation with the tiny Qwen2.5-VL: left padding gives the same greedy text as
one prompt at a time; sampling returns num_return_sequences per prompt."""

from __future__ import annotations

import PIL.Image
import pytest

from mmed.agents.generation import PolicyRunner, SamplingParams
from mmed.agents.prompts import triage_messages
from mmed.config import load_profile
from mmed.models import build_tiny_qwen2_5_vl, load_policy

SMOKE = load_profile("smoke")


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    d = build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny") / "base", SMOKE.models.tiny)
    model, proc = load_policy(d, min_pixels=SMOKE.image.min_pixels, max_pixels=SMOKE.image.max_pixels)
    return PolicyRunner(model, proc, batch_size=4)


def _batch(n):
    items, imgs = [], []
    for i in range(n):
        im = PIL.Image.new("RGB", (56, 56), (30 * i % 255, 80, 200 - 20 * i))
        # questions of different lengths force real left padding
        it = dict(id=str(i), question="Is there a lesion" + " here" * i + "?", options=["yes", "no"], images=[im])
        items.append(triage_messages(it, style="compact"))
        imgs.append([im])
    return items, imgs


def test_batched_equals_one_by_one_greedy(runner):
    msgs, imgs = _batch(6)
    sp = SamplingParams(max_new_tokens=8)
    batched = runner.generate(msgs, imgs, sp, progress=False)
    single = runner.generate_one_by_one(msgs, imgs, sp)
    assert batched == single
    assert len(batched) == 6 and all(len(x) == 1 for x in batched)
    enc = runner.encode(msgs[:2], imgs[:2])
    assert enc["attention_mask"][0, 0] == 0 or enc["attention_mask"][1, 0] == 0  # left-padded


def test_sampling_returns_n_per_prompt_and_is_seeded(runner):
    msgs, imgs = _batch(3)
    sp = SamplingParams(max_new_tokens=6, temperature=1.0, num_return_sequences=4, seed=1)
    a = runner.generate(msgs, imgs, sp, progress=False)
    b = runner.generate(msgs, imgs, sp, progress=False)
    assert [len(x) for x in a] == [4, 4, 4]
    assert a == b
    assert len({t for x in a for t in x}) > 1


def test_bad_inputs(runner):
    msgs, imgs = _batch(2)
    with pytest.raises(ValueError, match="prompt 0: 1 image parts but 0 images"):
        runner.encode(msgs[:1], [[]])
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(num_return_sequences=2).to_generate_kwargs()
