"""Reward functions: values on adversarial completions and TRL's real calling convention."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from trl import GRPOTrainer
from trl.trainer.utils import get_callable_name

from mmed.agents.prompts import choice_answer_text, templated_completion, triage_messages
from mmed.rl.rewards import (
    ACCURACY_REWARD,
    FORMAT_REWARD,
    choice_accuracy_reward,
    completion_text,
    format_reward,
    reward_funcs_for,
    total_reward,
    triage_accuracy_reward,
)

# (completion, label Radiologist) -> (R_format, R_accuracy); each line is one documented decision
TRIAGE_CASES = [
    ("<think>CT of the head</think><answer>Radiologist</answer>", 0.5, 1.0),  # well-formed, right
    ("<think>CT of the head</think><answer>Pathologist</answer>", 0.5, 0.0),  # well-formed, wrong
    ("<think>a CT\nof the\nhead</think>\n<answer>Radiologist</answer>", 0.5, 1.0),  # multi-line reasoning
    ("<think>CT</think><answer>radiologist</answer>", 0.5, 1.0),  # case ignored
    ("<think>CT</think><answer>RADIOLOGY</answer>", 0.5, 1.0),  # discipline counts
    ("<think>CT</think><answer>Radiologist</answer><answer>Radiologist</answer>", 0.0, 0.0),  # tags twice
    ("<think>CT</think><answer>Pathologist</answer><answer>Radiologist</answer>", 0.0, 0.0),
    ("<think>CT</think><answer>Radiologist, Pathologist</answer>", 0.5, 0.0),  # several listed
    ("<think>CT</think><answer>Radiologist or Surgeon</answer>", 0.5, 0.0),
    ("<think>Radiologist</think><answer>Pathologist</answer>", 0.5, 0.0),  # right name only in think
    ("<think>so: Radiologist</think><answer></answer>", 0.0, 0.0),  # empty answer
    ("<think>so: Radiologist</think>", 0.0, 0.0),  # no answer tag
    ("Radiologist", 0.0, 0.0),  # no tags
    ("<answer>Radiologist</answer>", 0.0, 1.0),  # answer tag without think: accuracy only
    ("<think>CT</think><answer>Radiologist</answer> I am sure.", 0.0, 1.0),  # text after </answer>
    ("<think>CT</think><answer>maybe Radiologist</answer>", 0.5, 0.0),  # hedge
    ("<think></think><answer>Radiologist</answer>", 0.0, 1.0),  # empty reasoning
]


def conversational(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize("completion, r_format, r_acc", TRIAGE_CASES)
@pytest.mark.parametrize("wrap", [str, conversational], ids=["string", "conversational"])
def test_triage_rewards_adversarial(completion, r_format, r_acc, wrap) -> None:
    c = [wrap(completion)]
    assert format_reward(prompts=None, completions=c) == [r_format]
    assert triage_accuracy_reward(prompts=None, completions=c, specialty=["Radiologist"]) == [r_acc]
    assert total_reward("triage", c, specialty=["Radiologist"]) == [r_format + r_acc]


CHOICE_CASES = [
    ("<think>no air</think><answer>B</answer>", 0.5, 1.0),
    ("<think>no air</think><answer>(b)</answer>", 0.5, 1.0),
    ("<think>no air</think><answer>B. no</answer>", 0.5, 1.0),
    ("<think>no air</think><answer>No</answer>", 0.5, 1.0),
    ("<think>no air</think><answer>A</answer>", 0.5, 0.0),
    ("<think>no air</think><answer>A. no</answer>", 0.5, 0.0),  # letter and text contradict
    ("<think>no air</think><answer>A or B</answer>", 0.5, 0.0),
    ("<think>no air</think><answer>B</answer><answer>B</answer>", 0.0, 0.0),
    ("<think>the answer is B</think><answer></answer>", 0.0, 0.0),
    ("<think>Both possible</think><answer>Bilateral</answer>", 0.5, 0.0),  # B inside a word
    ("B", 0.0, 0.0),
]


@pytest.mark.parametrize("completion, r_format, r_acc", CHOICE_CASES)
def test_choice_rewards_adversarial(completion, r_format, r_acc) -> None:
    kw = {"answer_idx": [1], "options": [["yes", "no"]]}
    assert format_reward(None, [completion]) == [r_format]
    assert choice_accuracy_reward(None, [conversational(completion)], **kw) == [r_acc]


def test_reward_constants_and_range() -> None:
    assert (FORMAT_REWARD, ACCURACY_REWARD) == (0.5, 1.0)
    comps = [c for c, _, _ in TRIAGE_CASES]
    totals = total_reward("triage", comps, specialty=["Radiologist"] * len(comps))
    assert set(totals) == {0.0, 0.5, 1.0, 1.5}


def test_rewards_on_templated_cold_start_targets() -> None:
    options = ["CT", "MRI", "X-ray"]
    comps = [templated_completion(choice_answer_text(i, options)) for i in range(3)]
    got = total_reward("attending", comps, answer_idx=[2, 2, 2], options=[options] * 3)
    assert got == [0.5, 0.5, 1.5]


def test_completion_text_forms() -> None:
    assert completion_text("x") == "x"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]) == "ab"
    assert completion_text([{"role": "assistant", "content": None}]) == ""
    with pytest.raises(TypeError, match="no assistant"):
        completion_text([{"role": "user", "content": "x"}])
    with pytest.raises(TypeError, match="int"):
        completion_text(3)


def test_reward_errors_name_column_and_row() -> None:
    with pytest.raises(ValueError, match="'specialty'"):
        triage_accuracy_reward(None, ["x"])
    with pytest.raises(ValueError, match="2 values for 1 completions"):
        triage_accuracy_reward(None, ["x"], specialty=["Radiologist", "Surgeon"])
    with pytest.raises(ValueError, match="row 1 .*'Cardiologist'"):
        triage_accuracy_reward(None, ["x", "y"], specialty=["Radiologist", "Cardiologist"])
    with pytest.raises(ValueError, match="row 0 .*closed"):
        choice_accuracy_reward(None, ["x"], answer_idx=[-1], options=[[]])
    with pytest.raises(ValueError, match="'options'"):
        choice_accuracy_reward(None, ["x"], answer_idx=[0])
    with pytest.raises(ValueError, match="unknown agent"):
        reward_funcs_for("nurse")


def test_custom_specialty_set() -> None:
    c = ["<think>ECG</think><answer>Cardiologist</answer>"]
    assert triage_accuracy_reward(None, c, specialty=["Cardiologist"], specialties=["Cardiologist", "Radiologist"]) == [1.0]


def test_trl_names_and_real_calculate_rewards() -> None:
    """Run TRL's own ``GRPOTrainer._calculate_rewards`` on our functions.

    The trainer instance is a stub holding only the attributes that method reads (TRL
    1.16), so this checks the real calling convention: conversational completions, dataset
    columns repeated per generation as keywords, extra keywords (``trainer_state``,
    ``log_extra``, ``completion_ids``) tolerated, one float per completion.
    """
    funcs = reward_funcs_for("triage")
    names = [get_callable_name(f) for f in funcs]
    assert names == ["format_reward", "triage_accuracy_reward"]
    item = {"id": "s/1", "question": "Which organ?", "options": [], "images": [object()], "specialty": "Dermatologist"}
    prompt = triage_messages(item, style="compact")
    texts = ["<think>skin</think><answer>Dermatologist</answer>", "<think>skin</think><answer>Radiologist</answer>",
             "<answer>dermatology</answer>", "<think>x</think><answer></answer>"]
    inputs = [{"prompt": prompt, "specialty": "Dermatologist", "answer_idx": -1, "images": item["images"]}] * len(texts)
    stub = SimpleNamespace(
        accelerator=SimpleNamespace(device=torch.device("cpu"), is_main_process=True),
        reward_funcs=funcs, reward_processing_classes=[None, None], reward_func_names=names,
        state=SimpleNamespace(global_step=0), args=SimpleNamespace(report_to=[]),
        _log_completion_extra=lambda *a, **k: None, _log_metric=lambda *a, **k: None, environments=None,
    )
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    out = GRPOTrainer._calculate_rewards(stub, inputs, [prompt] * len(texts), completions, [[1]] * len(texts))
    assert out.tolist() == [[0.5, 1.0], [0.5, 0.0], [0.0, 1.0], [0.0, 0.0]]
