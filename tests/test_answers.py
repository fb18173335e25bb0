"""The one answer normaliser (mmed/data/answers.py): its three forms on SLAKE / VQA-RAD /
PathVQA-style answers, table-driven, and the proof that merging the three former
normalisers changed none of their rules on ASCII text."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmed.agents.parsing import normalize, parse_choice, parse_free_text
from mmed.data import mcq
from mmed.data.answers import answer_words, canonical_text, exact_match, normalize_answer, token_recall
from mmed.eval import metrics

# (answer as published or as a model writes it, surface form, matching key, scoring key)
#   surface  = canonical_text          (the parser reads it)
#   matching = normalize_answer        (the multiple-choice rule compares gold and alternatives)
#   scoring  = normalize_answer(squad=True)  (open-question exact match / token recall)
CASES = [
    # yes/no, as the three benchmarks write them
    ("yes", "yes", "yes", "yes"),
    ("Yes", "yes", "yes", "yes"),  # SLAKE capitalises
    ("Yes.", "yes", "yes", "yes"),
    ("yes ", "yes", "yes", "yes"),  # VQA-RAD has trailing spaces
    (" NO ", "no", "no", "no"),
    ("Ｙｅｓ", "yes", "yes", "yes"),  # full-width (NFKC)
    # articles
    ("The surrounding tissue.", "the surrounding tissue", "surrounding tissue", "surrounding tissue"),
    ("the interstitium", "the interstitium", "interstitium", "interstitium"),  # PathVQA open answer
    ("A", "a", "a", ""),  # only articles: an answer for the matching key, empty for scoring
    ("the", "the", "the", ""),
    ("vitamin a", "vitamin a", "vitamin", "vitamin"),  # known limit of the article rule (as in SQuAD)
    # inner punctuation: one word for the matching key, split for scoring
    ("X-ray", "x-ray", "x-ray", "x ray"),
    ("The  Left-Lung.", "the left-lung", "left-lung", "left lung"),
    ("non-contrast CT", "non-contrast ct", "non-contrast ct", "non contrast ct"),
    ("T2 weighted", "t2 weighted", "t2 weighted", "t2 weighted"),
    ("MRI - FLAIR", "mri - flair", "mri - flair", "mri flair"),  # VQA-RAD
    ("Left Lung, Right", "left lung, right", "left lung right", "left lung right"),  # SLAKE
    ("Heart;Lung", "heart;lung", "heart;lung", "heart lung"),
    ("3.5 cm", "3.5 cm", "3.5 cm", "3 5 cm"),
    # symbols and percent
    ("<5 mm", "<5 mm", "<5 mm", "5 mm"),
    ("50%", "50", "50%", "50"),  # % is punctuation (Po) for the surface form
    # model-output noise: the parser's surface form removes it; the matching key is for
    # dataset text and keeps markdown asterisks
    ("  (A) Yes. ", "a) yes", "yes", "yes"),
    ("**YES**", "yes", "**yes**", "yes"),
    ("Straße", "strasse", "strasse", "strasse"),  # casefold
    (None, "", "", ""),
]


@pytest.mark.parametrize("text,surface,matching,scoring", CASES)
def test_the_three_forms(text, surface, matching, scoring):
    assert canonical_text(text) == surface
    assert normalize_answer(text) == matching
    assert normalize_answer(text, squad=True) == scoring
    assert set(normalize_answer(text).split()) <= set(answer_words(text))


@pytest.mark.parametrize("text,surface,matching,scoring", CASES)
def test_every_caller_uses_this_module(text, surface, matching, scoring):
    if text is not None:
        assert normalize(text) == surface  # mmed.agents.parsing
    assert mcq.normalize_answer(text) == matching  # the multiple-choice rule
    assert metrics.exact_match is exact_match and metrics.token_recall is token_recall


@pytest.mark.parametrize(
    "pred,gold,em",
    [
        ("Yes.", "yes", True),
        ("the left lung", "Left lung", True),
        ("Left-Lung", "left lung", True),
        ("x-ray", "X ray", True),
        ("T2-weighted", "t2 weighted", True),
        ("Ｙｅｓ", "yes", True),
        ("lung", "left lung", False),
        ("right lung", "left lung", False),
        (None, "yes", False),
    ],
)
def test_exact_match(pred, gold, em):
    assert exact_match(pred, gold) is em


def test_token_recall_and_empty_gold():
    assert token_recall("left lung", "right lung base") == pytest.approx(1 / 3)
    assert token_recall("Left-Lung", "left lung") == 1.0
    for gold in ("the", "A", "...", ""):
        with pytest.raises(ValueError, match="empty after normalisation"):
            exact_match("x", gold)


def test_parser_and_mcq_agree_on_yes_no():
    # the parser reads a published answer as the option it names; the MC rule calls it yes/no
    for text in ("Yes", "Yes.", "yes ", " YES "):
        assert parse_choice(f"<answer>{text}</answer>", ["yes", "no"]).index == 0
        assert mcq.is_yes_no(text)
    assert parse_free_text("<answer> Left  Lung. </answer>").value == "left lung"


# --------------------------------------------------------------------------------------
# The three normalisers as they were before they were merged (verbatim copies, ASCII
# behaviour): the merged rules must agree with each on ASCII text, where NFKC and
# casefold are the identity and lower-casing.
# --------------------------------------------------------------------------------------
_OLD_EDGE = " \t\n\r.,;:!?\"'`()[]{}"


def _old_mcq_key(text):
    words = [w.strip(_OLD_EDGE) for w in str(text).lower().split()]
    words = [w for w in words if w]
    return " ".join([w for w in words if w not in {"a", "an", "the"}] or words)


def _old_metrics_key(text):
    t = str(text).lower().translate(str.maketrans({c: " " for c in string.punctuation}))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", t).split())


def _old_parsing_normalize(text):
    import unicodedata

    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    junk = lambda ch: ch.isspace() or ch == "`" or unicodedata.category(ch)[0] == "P" or unicodedata.category(ch) == "Cf"  # noqa: E731
    start, end = 0, len(text)
    while start < end and junk(text[start]):
        start += 1
    while end > start and junk(text[end - 1]):
        end -= 1
    return text[start:end]


ANSWERISH = st.text(alphabet=string.printable, max_size=30) | st.lists(
    st.sampled_from(["a", "an", "the", "The", "Left-Lung", "x-ray", "yes.", "(A)", ",", " ", "50%", "T2", "**"]),
    max_size=6,
).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(ANSWERISH)
def test_merge_kept_every_rule_on_ascii(text):
    assert normalize_answer(text) == _old_mcq_key(text)
    assert normalize_answer(text, squad=True) == _old_metrics_key(text)
    assert canonical_text(text) == _old_parsing_normalize(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x17F), max_size=30))
def test_forms_are_idempotent(text):
    assert canonical_text(canonical_text(text)) == canonical_text(text)
    assert normalize_answer(normalize_answer(text, squad=True), squad=True) == normalize_answer(text, squad=True)
    assert normalize_answer(canonical_text(text)) == normalize_answer(normalize_answer(canonical_text(text)))
