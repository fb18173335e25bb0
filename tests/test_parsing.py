"""Answer parsing: the documented rules, adversarial cases and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from mmed.agents.parsing import (
    REASONS,
    extract_answer,
    has_valid_format,
    normalize,
    parse_choice,
    parse_free_text,
    parse_specialty,
)
from mmed.agents.prompts import choice_answer_text, templated_completion
from mmed.data.schema import OPTION_LETTERS, SPECIALTIES

YN = ["yes", "no"]
ABCD = ["CT", "MRI", "X-ray", "ultrasound"]


def wrap(answer: str, think: str = "looking at the image") -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


# ---------------------------------------------------------------------------- choices
@pytest.mark.parametrize(
    "answer, options, index",
    [
        ("A", YN, 0),
        ("B", YN, 1),
        ("b", YN, 1),
        ("(A)", YN, 0),
        ("[B]", YN, 1),
        ("A.", YN, 0),
        ("B:", YN, 1),
        ("A) yes", YN, 0),
        ("(B) no", YN, 1),
        ("A. yes", YN, 0),
        ("A - yes", YN, 0),
        ("Option A", YN, 0),
        ("option (b)", YN, 1),
        ("Answer: B", YN, 1),
        ("The answer is A", YN, 0),
        ("yes", YN, 0),
        ("No.", YN, 1),
        ('"YES"', YN, 0),
        ("**no**", YN, 1),
        ("  \n D \n ", ABCD, 3),
        ("x-ray", ABCD, 2),
        ("C. X-ray", ABCD, 2),
        ("mri", ABCD, 1),
        # option text that contains a connective is still one option
        ("MRI or CT", ["MRI or CT", "PET"], 0),
        # roman numerals: "I" is a text match (letter I is out of range, so no conflict)
        ("I", ["I", "II", "III"], 0),
        ("II", ["I", "II", "III"], 1),
        # letter-like option texts resolved by letter + text
        ("A. B", ["B", "A"], 0),
        ("B. A", ["B", "A"], 1),
        # symbols are kept, so these do not collide
        ("<5 mm", ["<5 mm", ">5 mm"], 0),
        (">5 mm", ["<5 mm", ">5 mm"], 1),
    ],
)
def test_parse_choice_valid(answer: str, options: list[str], index: int) -> None:
    p = parse_choice(wrap(answer), options)
    assert (p.valid, p.index, p.letter, p.value, p.reason) == (True, index, OPTION_LETTERS[index], options[index], "ok")
    assert p.content == answer


@pytest.mark.parametrize(
    "text, options, reason",
    [
        (wrap("A or B"), YN, "multiple_answers"),
        (wrap("A and C"), ABCD, "multiple_answers"),
        (wrap("A, B"), YN, "multiple_answers"),
        (wrap("A/B"), YN, "multiple_answers"),
        (wrap("yes or no"), YN, "multiple_answers"),
        (wrap("CT and MRI"), ABCD, "multiple_answers"),
        (wrap("A or possibly B"), YN, "multiple_answers"),
        (wrap("maybe A"), YN, "hedge"),
        (wrap("probably yes"), YN, "hedge"),
        (wrap("not sure"), YN, "hedge"),
        (wrap("A. no"), YN, "letter_text_mismatch"),
        (wrap("E"), ABCD, "letter_out_of_range"),
        (wrap("C"), YN, "letter_out_of_range"),
        (wrap("Apple"), YN, "no_match"),
        (wrap("Absolutely"), YN, "no_match"),
        (wrap("yes indeed"), YN, "no_match"),
        (wrap(""), YN, "empty_answer"),
        (wrap("   \n "), YN, "empty_answer"),
        (wrap("..."), YN, "empty_answer"),
        ("<think>A is right</think>", YN, "missing_answer_tag"),
        ("The answer is A.", YN, "missing_answer_tag"),
        ("", YN, "missing_answer_tag"),
        ("<think>x</think><answer>A</answer><answer>B</answer>", YN, "multiple_answer_tags"),
        ("<think>x</think><answer>A</answer><answer>A</answer>", YN, "multiple_answer_tags"),
        ("<answer><answer>A</answer>", YN, "multiple_answer_tags"),
        ("<think>x</think><answer>A", YN, "unbalanced_answer_tags"),
        ("<think>x</think>A</answer>", YN, "unbalanced_answer_tags"),
        ("</answer>A<answer>", YN, "unbalanced_answer_tags"),
        ("<think>I'd say <answer>A</answer></think>", YN, "answer_inside_think"),
        # letter vs text conflict: letter A = "B", text "A" = option B
        (wrap("A"), ["B", "A"], "ambiguous"),
        (wrap("(A)"), ["B", "A"], "ambiguous"),
        # duplicate option texts can only be chosen by letter
        (wrap("yes"), ["yes", "Yes."], "ambiguous"),
    ],
)
def test_parse_choice_invalid(text: str, options: list[str], reason: str) -> None:
    p = parse_choice(text, options)
    assert (p.valid, p.index, p.letter, p.value, p.reason) == (False, None, None, None, reason)
    assert p.reason in REASONS


def test_letter_outside_answer_never_counts() -> None:
    # the gold letter appears in the reasoning and after the answer; the tag says B
    text = "<think>A looks likely\nbut\nno</think><answer>B</answer> A"
    assert parse_choice(text, YN).index == 1
    # capital letters inside words of the answer are not letters
    assert not parse_choice(wrap("Bilateral Atelectasis"), YN).valid


def test_text_after_answer_is_ignored_by_parser_but_not_by_format() -> None:
    text = wrap("A") + "\nActually B."
    p = parse_choice(text, YN)
    assert p.valid and p.index == 0
    assert not has_valid_format(text)
    assert has_valid_format(wrap("A") + "\n  ")


def test_tags_are_case_insensitive_and_think_is_optional_for_parsing() -> None:
    assert parse_choice("<THINK>x</THINK><Answer>b</ANSWER>", YN).index == 1
    assert parse_choice("<answer>A</answer>", YN).index == 0
    assert parse_choice("< answer >A</ answer >", YN).reason == "missing_answer_tag"


def test_duplicate_options_choosable_by_letter() -> None:
    assert parse_choice(wrap("B"), ["yes", "Yes."]).index == 1


def test_parse_choice_bad_arguments() -> None:
    with pytest.raises(ValueError, match="open question"):
        parse_choice(wrap("A"), [])
    with pytest.raises(ValueError, match="at most 26"):
        parse_choice(wrap("A"), [str(i) for i in range(27)])
    with pytest.raises(TypeError, match="str"):
        parse_choice(None, YN)  # type: ignore[arg-type]


def test_twenty_six_options_letter_z() -> None:
    options = [f"opt{i}" for i in range(26)]
    assert parse_choice(wrap("Z"), options).index == 25
    assert parse_choice(wrap("opt25"), options).index == 25


# -------------------------------------------------------------------------- specialty
@pytest.mark.parametrize(
    "answer, name",
    [
        ("Radiologist", "Radiologist"),
        ("radiologist", "Radiologist"),
        ("RADIOLOGIST.", "Radiologist"),
        ("  Pathologist\n", "Pathologist"),
        ("a Dermatologist", "Dermatologist"),
        ("an Oncologist", "Oncologist"),
        ("The Surgeon", "Surgeon"),
        ("Radiology", "Radiologist"),
        ("surgery", "Surgeon"),
        ("Ophthalmology", "Ophthalmologist"),
        ("Endocrinologist", "Endocrinologist"),
    ],
)
def test_parse_specialty_valid(answer: str, name: str) -> None:
    p = parse_specialty(wrap(answer))
    assert (p.valid, p.value, p.index, p.letter) == (True, name, SPECIALTIES.index(name), None)


@pytest.mark.parametrize(
    "text, reason",
    [
        (wrap("Radiologist, Pathologist"), "multiple_answers"),
        (wrap("Radiologist or Surgeon"), "multiple_answers"),
        (wrap("Radiology and Pathology"), "multiple_answers"),
        (wrap("Pathologist Radiologist Surgeon Oncologist Endocrinologist Ophthalmologist Dermatologist"), "multiple_answers"),
        (wrap("maybe Radiologist"), "hedge"),
        (wrap("Radiologists"), "no_match"),
        (wrap("Cardiologist"), "no_match"),
        (wrap("Radiologist is best"), "no_match"),
        (wrap(""), "empty_answer"),
        ("<think>CT scan, so Radiologist</think><answer></answer>", "empty_answer"),
        ("<think>CT scan, so Radiologist</think>", "missing_answer_tag"),
        ("Radiologist", "missing_answer_tag"),
        ("<think>x</think><answer>Radiologist</answer><answer>Radiologist</answer>", "multiple_answer_tags"),
    ],
)
def test_parse_specialty_invalid(text: str, reason: str) -> None:
    p = parse_specialty(text)
    assert (p.valid, p.index, p.value, p.reason) == (False, None, None, reason)


def test_right_name_only_inside_think_does_not_count() -> None:
    p = parse_specialty("<think>Radiologist would be right</think><answer>Pathologist</answer>")
    assert p.value == "Pathologist"


def test_parse_specialty_custom_set_and_errors() -> None:
    assert parse_specialty(wrap("Cardiologist"), ["Cardiologist", "Radiologist"]).index == 0
    # aliases only apply to specialties in the candidate set
    assert not parse_specialty(wrap("Surgery"), ["Cardiologist", "Radiologist"]).valid
    with pytest.raises(ValueError, match="empty"):
        parse_specialty(wrap("x"), [])
    with pytest.raises(ValueError, match="already taken"):
        parse_specialty(wrap("x"), ["Radiologist", "radiologist"])


# -------------------------------------------------------------------------- format
@pytest.mark.parametrize(
    "text, ok",
    [
        ("<think>CT of the chest</think><answer>Radiologist</answer>", True),
        ("\n<think>line one\nline two\n</think>\n\n<answer> B </answer>\n", True),
        ("<THINK>x</THINK><ANSWER>A</ANSWER>", True),
        ("<answer>Radiologist</answer>", False),  # no think
        ("<think>x</think>", False),  # no answer
        ("<think></think><answer>A</answer>", False),  # empty reasoning
        ("<think>x</think><answer></answer>", False),  # empty answer
        ("<think>x</think><answer>  </answer>", False),
        ("<think>x</think><answer>.</answer>", False),  # punctuation only
        ("<think>...</think><answer>A</answer>", False),
        ("<answer>A</answer><think>x</think>", False),  # wrong order
        ("<think>x</think><answer>A</answer> trailing", False),
        ("preamble <think>x</think><answer>A</answer>", False),
        ("<think>x</think> between <answer>A</answer>", False),
        ("<think>x</think><answer>A</answer><answer>A</answer>", False),
        ("<think>x</think><think>y</think><answer>A</answer>", False),
        ("<think>x<answer>A</answer></think><answer>A</answer>", False),
        ("<think>x</think><answer>A</answer></answer>", False),
    ],
)
def test_has_valid_format(text: str, ok: bool) -> None:
    assert has_valid_format(text) is ok


# -------------------------------------------------------------------------- free text
def test_parse_free_text() -> None:
    p = parse_free_text("<think>x</think><answer> Left  Lung. </answer>")
    assert (p.valid, p.value, p.index, p.letter) == (True, "left lung", None, None)
    assert parse_free_text("<answer> .. </answer>").reason == "empty_answer"
    assert parse_free_text("left lung").reason == "missing_answer_tag"


def test_normalize_and_extract() -> None:
    assert normalize("  (A) Yes. ") == "a) yes"
    assert normalize("**YES**") == "yes"
    assert normalize("Ｙｅｓ\u200b") == "yes"  # NFKC full-width, zero-width space stripped
    assert normalize("<5 mm") == "<5 mm"
    assert extract_answer("a<answer> x </answer>b") == (" x ", "ok")


# -------------------------------------------------------------------------- properties
TAGGY = st.sampled_from(["<answer>", "</answer>", "<think>", "</think>", "<ANSWER>", "<answer", "answer>", "\n", "A", "(B)", " or "])
WEIRD_TEXT = st.lists(st.one_of(st.text(max_size=12), TAGGY), max_size=12).map("".join)
OPTION = st.text(min_size=1, max_size=15).filter(lambda s: "<" not in s and ">" not in s and normalize(s) != "")
OPTIONS = st.lists(OPTION, min_size=2, max_size=6, unique_by=normalize)


@settings(max_examples=400, deadline=None)
@given(text=WEIRD_TEXT, options=st.lists(st.text(max_size=8), min_size=1, max_size=26))
@example(text="<think><answer></think></answer>", options=["a"])
@example(text="\u0130\u212a<answer>\u212a</answer>", options=["k", "x"])
def test_parsers_never_raise(text: str, options: list[str]) -> None:
    for p in (parse_choice(text, options), parse_specialty(text), parse_free_text(text)):
        assert p.reason in REASONS
        assert p.valid == (p.reason == "ok")
        assert p.valid or (p.index is None and p.letter is None and p.value is None)
    has_valid_format(text)
    c = parse_choice(text, options)
    if c.valid:
        assert 0 <= c.index < len(options) and c.letter == OPTION_LETTERS[c.index]


def _single_option_forms(options: list[str]) -> set[str]:
    """Normalised strings that legitimately name one option (text, letter + text)."""
    forms = set()
    for i, o in enumerate(options):
        forms |= {normalize(o), normalize(f"{OPTION_LETTERS[i]}. {o}"), normalize(f"{OPTION_LETTERS[i]} {o}")}
    return forms


@settings(max_examples=400, deadline=None)
@given(
    options=OPTIONS,
    data=st.data(),
    joiner=st.sampled_from([" or ", " and ", ", ", " / ", " or possibly ", "\n", " ", " maybe "]),
    as_letter=st.tuples(st.booleans(), st.booleans()),
    think=st.text(max_size=20).filter(lambda s: "answer>" not in s.lower()),
)
def test_two_different_options_never_valid(options, data, joiner, as_letter, think) -> None:
    i, j = data.draw(st.lists(st.integers(0, len(options) - 1), min_size=2, max_size=2, unique=True))
    a = OPTION_LETTERS[i] if as_letter[0] else options[i]
    b = OPTION_LETTERS[j] if as_letter[1] else options[j]
    answer = a + joiner + b
    # a string that is itself one option's own text is that option, not two answers
    assume(normalize(answer) not in _single_option_forms(options))
    assert not parse_choice(f"<think>{think}</think><answer>{answer}</answer>", options).valid
    # two answer tags, even each valid alone
    two_tags = f"<think>{think}</think><answer>{a}</answer><answer>{b}</answer>"
    assert not parse_choice(two_tags, options).valid


@settings(max_examples=300, deadline=None)
@given(options=OPTIONS, data=st.data(), reasoning=st.text(min_size=1, max_size=40), with_text=st.booleans())
def test_templated_completion_round_trip(options, data, reasoning, with_text) -> None:
    idx = data.draw(st.integers(0, len(options) - 1))
    assume(any(ch.isalnum() for ch in reasoning) and "<" not in reasoning)
    if not with_text:
        # a bare letter conflicts with letter-like option texts (documented: ambiguous)
        assume(all(normalize(o) not in {c.lower() for c in OPTION_LETTERS} for o in options))
    text = templated_completion(choice_answer_text(idx, options, with_text=with_text), reasoning=reasoning)
    assert has_valid_format(text)
    p = parse_choice(text, options)
    assert (p.valid, p.index, p.value) == (True, idx, options[idx])


@settings(max_examples=100, deadline=None)
@given(idx=st.integers(0, len(SPECIALTIES) - 1), reasoning=st.text(min_size=1, max_size=40))
def test_specialty_round_trip(idx, reasoning) -> None:
    assume(any(ch.isalnum() for ch in reasoning) and "<" not in reasoning)
    text = templated_completion(SPECIALTIES[idx], reasoning=reasoning)
    assert has_valid_format(text) and parse_specialty(text).index == idx
