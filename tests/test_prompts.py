"""Prompts: structure (TRL/Qwen2.5-VL conversational format), content, styles, errors."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from PIL import Image
from trl.data_utils import is_conversational, prepare_multimodal_messages

from mmed.agents.parsing import has_valid_format, parse_choice, parse_specialty
from mmed.agents.prompts import (
    PERSONAS,
    PROMPT_STYLES,
    attending_messages,
    choice_answer_text,
    format_options,
    opinion_rationale,
    render_prompt_text,
    specialist_messages,
    specialist_persona,
    templated_completion,
    triage_messages,
)
from mmed.data.schema import SPECIALTIES, Item, items_to_dataset

QUESTION = "Is there a pneumothorax in the left lung?"


def make_item(n_images: int = 1, options=("yes", "no"), answer_idx: int = 0, **kw) -> Item:
    imgs = [Image.new("RGB", (8, 8), (i * 40, 0, 0)) for i in range(n_images)]
    closed = bool(options)
    return Item(
        id=kw.get("id", "vqa_rad/test/1"),
        dataset="vqa_rad",
        split="test",
        images=imgs,
        image_ref="img.jpg",
        question=kw.get("question", QUESTION),
        options=list(options),
        answer_idx=answer_idx if closed else -1,
        answer=options[answer_idx] if closed else "left lung",
        answer_type="closed" if closed else "open",
        modality="X-ray",
        specialty="Radiologist",
    )


def user_parts(messages):
    assert [m["role"] for m in messages] == ["system", "user"]
    return messages[1]["content"]


def user_text(messages) -> str:
    parts = user_parts(messages)
    assert parts[-1]["type"] == "text"
    return parts[-1]["text"]


@dataclass
class Op:
    specialty: str
    parsed: int | None
    valid: bool
    abstained: bool
    raw: str


OPINIONS = [
    {"specialty": "Radiologist", "parsed": 1, "valid": True, "abstained": False,
     "raw": "<think>no air\nin the pleural space</think><answer>B</answer>"},
    Op("Radiologist", None, False, False, "<think>unclear</think><answer>A or B</answer>"),
    Op("Radiologist", None, False, True, ""),
]


# ----------------------------------------------------------------------------- triage
@pytest.mark.parametrize("style", PROMPT_STYLES)
@pytest.mark.parametrize("n_images", [1, 3])
def test_triage_messages_structure(style: str, n_images: int) -> None:
    msgs = triage_messages(make_item(n_images), style=style)
    parts = user_parts(msgs)
    assert [p["type"] for p in parts] == ["image"] * n_images + ["text"]
    assert msgs[0]["content"][0]["type"] == "text" and msgs[0]["content"][0]["text"]
    text = user_text(msgs)
    assert QUESTION in text
    positions = [text.index(s) for s in SPECIALTIES]
    assert positions == sorted(positions)  # all seven, in order
    assert "<think>" in text and "<answer>" in text
    assert is_conversational({"prompt": msgs})


def test_triage_accepts_item_dict_and_dataset_row() -> None:
    item = make_item()
    ds = items_to_dataset([item])
    expected = triage_messages(item)
    assert triage_messages(item.to_row()) == expected
    assert triage_messages(ds[0]) == expected


def test_compact_is_shorter_than_full() -> None:
    item = make_item()
    for build in (lambda s: triage_messages(item, style=s), lambda s: specialist_messages(item, "Radiologist", style=s),
                  lambda s: attending_messages(item, OPINIONS, style=s)):
        compact, full = render_prompt_text(build("compact")), render_prompt_text(build("full"))
        assert len(compact) < 0.75 * len(full)
    # the compact triage prompt: instructions are a couple hundred characters besides the question
    assert len(render_prompt_text(triage_messages(item, style="compact"))) - len(QUESTION) < 220


def test_prompt_errors_name_the_item() -> None:
    with pytest.raises(ValueError, match="vqa_rad/test/9.*question"):
        triage_messages({"id": "vqa_rad/test/9", "question": "  ", "options": [], "images": [1]})
    with pytest.raises(ValueError, match="vqa_rad/test/9.*images"):
        specialist_messages({"id": "vqa_rad/test/9", "question": "q?", "options": [], "images": []}, "Radiologist")
    with pytest.raises(ValueError, match="missing field 'images'"):
        triage_messages({"id": "x", "question": "q?", "options": []})
    with pytest.raises(ValueError, match="style"):
        triage_messages(make_item(), style="verbose")
    with pytest.raises(ValueError, match="specialties is empty"):
        triage_messages(make_item(), specialties=[])


# ----------------------------------------------------------------------------- specialists
@pytest.mark.parametrize("style", PROMPT_STYLES)
def test_specialist_messages_closed(style: str) -> None:
    item = make_item(options=("CT", "MRI", "X-ray"))
    msgs = specialist_messages(item, "Radiologist", persona_idx=2, style=style)
    text = user_text(msgs)
    assert "A. CT\nB. MRI\nC. X-ray" in text and QUESTION in text
    assert PERSONAS["Radiologist"][2] in msgs[0]["content"][0]["text"]
    assert [p["type"] for p in user_parts(msgs)] == ["image", "text"]


def test_specialist_messages_open_question_has_no_letters() -> None:
    text = user_text(specialist_messages(make_item(options=()), "Radiologist"))
    assert "A." not in text and "short answer" in text


@pytest.mark.parametrize("specialty", SPECIALTIES)
def test_panel_personas_differ(specialty: str) -> None:
    item = make_item()
    systems = [specialist_messages(item, specialty, k)[0]["content"][0]["text"] for k in range(3)]
    assert len(set(systems)) == 3
    n = len(PERSONAS[specialty])
    assert specialist_persona(specialty, n) == specialist_persona(specialty, 0)  # wraps around


def test_specialist_errors() -> None:
    with pytest.raises(ValueError, match="Cardiologist"):
        specialist_messages(make_item(), "Cardiologist")
    with pytest.raises(ValueError, match=">= 0"):
        specialist_persona("Radiologist", -1)


# ----------------------------------------------------------------------------- attending
def test_attending_full_lists_each_opinion() -> None:
    msgs = attending_messages(make_item(), OPINIONS, style="full")
    text = user_text(msgs)
    assert "A. yes\nB. no" in text
    assert "1. Radiologist: B. no (because no air in the pleural space)" in text
    assert "2. Radiologist: no valid answer\n" in text
    assert "3. Radiologist: abstained\n" in text
    assert "<think>" in text and "<answer>" in text


def test_attending_compact_drops_rationale_and_limit_is_configurable() -> None:
    compact = user_text(attending_messages(make_item(), OPINIONS, style="compact"))
    assert "1. Radiologist: B. no\n" in compact and "because" not in compact
    cut = user_text(attending_messages(make_item(), OPINIONS, style="compact", max_rationale_chars=6))
    assert "1. Radiologist: B. no (because no ai…)" in cut


def test_attending_open_question_and_empty_panel() -> None:
    op = {"specialty": "Radiologist", "parsed": None, "valid": True, "abstained": False,
          "raw": "<think>x</think><answer>Left Lung</answer>"}
    text = user_text(attending_messages(make_item(options=()), [op]))
    assert "1. Radiologist: left lung" in text
    assert "(no specialist opinions)" in user_text(attending_messages(make_item(), []))


def test_attending_errors() -> None:
    bad = dict(OPINIONS[0], parsed=5)
    with pytest.raises(ValueError, match="opinion 1.*parsed=5"):
        attending_messages(make_item(), [bad])
    missing = {k: v for k, v in OPINIONS[0].items() if k != "raw"}
    with pytest.raises(ValueError, match="opinion 2: missing field 'raw'"):
        attending_messages(make_item(), [OPINIONS[0], missing])


def test_opinion_rationale() -> None:
    assert opinion_rationale("<think> a\n\n b </think><answer>A</answer>", 100) == "a b"
    assert opinion_rationale("no tags", 100) == ""
    assert opinion_rationale("<think>abcdef</think>", 0) == ""
    assert opinion_rationale("<think>abcdef</think>", 4) == "abc…"


# ----------------------------------------------------------------------------- TRL + logging
def test_messages_fill_with_images_in_trl() -> None:
    item = make_item(n_images=2)
    filled = prepare_multimodal_messages(triage_messages(item), images=item.images)
    imgs = [p["image"] for p in filled[1]["content"] if p["type"] == "image"]
    assert imgs == item.images


def test_render_prompt_text() -> None:
    text = render_prompt_text(triage_messages(make_item(n_images=2)))
    assert text.startswith("[system]\n") and text.count("<image>") == 2 and "\n[user]\n" in text
    assert render_prompt_text([{"role": "assistant", "content": "hi"}]) == "[assistant]\nhi"
    with pytest.raises(ValueError, match="unknown type 'video'"):
        render_prompt_text([{"role": "user", "content": [{"type": "video"}]}])


# ----------------------------------------------------------------------------- cold-start targets
def test_templated_completion() -> None:
    options = ["yes", "no"]
    text = templated_completion(choice_answer_text(1, options), reasoning=" no air\nseen ")
    assert text == "<think>no air\nseen</think><answer>B. no</answer>"
    assert has_valid_format(text) and parse_choice(text, options).index == 1
    assert parse_specialty(templated_completion("Dermatologist")).value == "Dermatologist"
    assert choice_answer_text(0, options, with_text=False) == "A"
    assert format_options(options) == "A. yes\nB. no"
    with pytest.raises(ValueError, match="answer_text"):
        templated_completion("  ")
    with pytest.raises(ValueError, match="reasoning.*tag"):
        templated_completion("A", reasoning="x</think>")
    with pytest.raises(ValueError, match="outside"):
        choice_answer_text(2, options)


@pytest.mark.parametrize("name", ["smoke", "demo", "paper"])
def test_profiles_choose_a_known_prompt_style(name: str) -> None:
    from mmed.config import load_profile

    style = load_profile(name).sampling.prompt_style
    assert style in PROMPT_STYLES
    triage_messages(make_item(), style=style)
