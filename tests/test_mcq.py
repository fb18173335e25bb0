"""The closed-question -> multiple-choice rule (mmed/data/mcq.py, docs/architecture.md#multiple-choice-from-closed-questions)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmed.data.mcq import (
    ANY_TYPE,
    answer_pool,
    closed_to_mc,
    mc_seed,
    normalize_answer,
    normalize_question,
    question_alternatives,
    question_type_key,
)

H = "0" * 40  # an image hash


def test_normalisation():
    assert normalize_answer(" The Surrounding  tissue. ") == "surrounding tissue"
    assert normalize_answer("Yes") == "yes"
    assert normalize_question("  Is the mass well circumscribed?  ") == "is the mass well circumscribed"
    assert normalize_question("Is  it ?") == normalize_question("is it")


def test_question_type_key():
    assert question_type_key("PRES, POS", "q") == "PRES"
    assert question_type_key("ATRIB", "q") == "ATTRIB"
    assert question_type_key("PRSE", "q") == "PRES"
    assert question_type_key(" Other", "q") == "OTHER"
    assert question_type_key("Modality", "q") == "MODALITY"
    assert question_type_key(None, "How many lesions are there?") == "q:how many"
    assert question_type_key("", "What is shown?") == "q:what"
    assert question_type_key(None, "Where is it?") == "q:where"


@pytest.mark.parametrize(
    "answer,idx", [("yes", 0), ("Yes", 0), ("YES.", 0), ("no", 1), (" No ", 1)]
)
def test_yes_no_always_yes_then_no(answer, idx):
    mc = closed_to_mc("Is there a mass?", answer, image_hash=H)
    assert (mc.options, mc.answer_idx, mc.rule) == (["yes", "no"], idx, "yes_no")


# The closed non-yes/no questions of VQA-RAD's MEVF test split (data README) and some of its
# training split, with the options the rule must give. The rule text is in mcq's docstring.
ALTERNATIVES = [
    ("Is this an MRI or a CT scan?", "MRI", ["MRI", "CT"], 0),
    ("Is this a CT or an MRI?", "MRI", ["CT", "MRI"], 1),
    ("Was a CT or MRI used to take the above image?", "MRI", ["CT", "MRI"], 1),
    ("Is the colon more prominent on the patient's right or left side?", "Left", ["right", "left"], 1),
    ("Is the lesion on the left or right side of the brain?", "Left", ["left", "right"], 0),
    ("Is the gastric bubble shown on the left or right side of the patient?", "Right side", ["left side", "right side"], 1),
    ("Are pleural opacities located on the left, right, or both sides of the lung?", "Both", ["left", "right", "both"], 2),
    ("Is this a T1 weighted, T2 weighted, or FLAIR image?", "FLAIR", ["T1 weighted", "T2 weighted", "FLAIR"], 2),
    ("Is there hypoinflation or hyperinflation of the lung", "Hyperinflation", ["hypoinflation", "hyperinflation"], 1),
    ("The small bubbles of air seen in the lumen are normal or abnormal?", "abnormal", ["normal", "abnormal"], 1),
    ("Is this patient male or female?", "Female", ["male", "female"], 1),
    ("Is the pathologic part of this image the small bowel or colon?", "Small bowel", ["small bowel", "colon"], 0),
    ("Is the largest cyst in the left or right kidney?", "Left kidney", ["left kidney", "right kidney"], 0),
    ("Are the lesions in the image more or less dense than surrounding tissue?", "more dense", ["more dense", "less dense"], 0),
    ("Was this image taken with or without contrast?", "With contrast", ["with contrast", "without contrast"], 0),
    ("Is this MRI with contrast or without contrast?", "with contrast", ["with contrast", "without contrast"], 0),
    ("Is this a contrast CT or a non-contrast CT?", "Non-contrast CT", ["contrast CT", "non-contrast CT"], 1),
]


@pytest.mark.parametrize("question,answer,options,idx", ALTERNATIVES)
def test_alternatives_named_in_the_question(question, answer, options, idx):
    mc = closed_to_mc(question, answer, image_hash=H, pool={"*": ["x1", "x2"]})
    assert mc.rule == "alternatives"
    assert (mc.options, mc.answer_idx) == (options, idx)
    assert normalize_answer(mc.answer) == normalize_answer(answer)


# Real SLAKE / VQA-RAD wordings the rule used to garble: question, gold, the options
# the rule must give and the gold's index. The grammar is in mcq's docstring ("Grammar").
REAL_WORDINGS = [
    # no space after a comma (SLAKE)
    ("Which is smaller in this image,liver or lung?", "Lung", ["liver", "lung"], 1),
    ("Which is the biggest in this image,lung,liver or heart?", "Heart", ["lung", "liver", "heart"], 2),
    # alternatives sharing trailing words; the gold names the part that tells them apart
    ("Is this a T1 weighted or T2 weighted MRI image?", "T2", ["T1 weighted", "T2 weighted"], 1),
    ("Is this a T1 weighted or T2 weighted MRI image?", "T1 weighted", ["T1 weighted", "T2 weighted"], 0),
    ("Do you suspect vascular process or a genetic process?", "genetic", ["vascular process", "genetic process"], 1),
    ("Does this CT have contrast or no contrast?", "contrast", ["contrast", "no contrast"], 0),
    ("Is the circular opacity found on top of the patient or within the patient?", "On top of the patient",
     ["on top of patient", "within patient"], 0),
    # a list after the question (a wh-question), no comma before "or"
    ("Which organ is the biggest in this image, lung, liver or heart?", "Liver", ["lung", "liver", "heart"], 1),
    ("Which organ is the biggest in this image, lung, liver or heart?", "lung", ["lung", "liver", "heart"], 0),
    ("Which organ is the biggest in this image, lung, liver, or heart?", "Heart", ["lung", "liver", "heart"], 2),
    # a list inside a yes/no-style question: its first item ends the question's clause
    ("Is this a CT, MRI or X-ray image?", "MRI", ["CT", "MRI", "X-ray"], 1),
    # three alternatives without commas: the gold right before "X or Y" is one of them
    ("Is this a CT MRI or X-ray image?", "CT", ["CT", "MRI", "X-ray"], 0),
    ("Which organ is the biggest in this image lung liver or heart?", "Lung", ["lung", "liver", "heart"], 0),
    # two noun phrases, each with its article: no shared words
    ("What is denser, the lesion or the surrounding tissue?", "The surrounding tissue", ["lesion", "surrounding tissue"], 1),
    ("Do you suspect a physical injury or a medical process?", "Medical process", ["physical injury", "medical process"], 1),
    ("Is the largest air collection on the patient's left or the right side?", "Right side", ["left side", "right side"], 1),
    # a preposition repeated in both alternatives
    ("Is the lesion in the liver or in the spleen?", "Spleen", ["liver", "spleen"], 1),
]


@pytest.mark.parametrize("question,answer,options,idx", REAL_WORDINGS)
def test_real_wordings(question, answer, options, idx):
    mc = closed_to_mc(question, answer, image_hash=H, pool={"*": ["x1", "x2"]})
    assert (mc.options, mc.answer_idx, mc.rule) == (options, idx, "alternatives")


MODALITY_POOL = answer_pool([("Modality", "Which modality?", a) for a in ("CT", "MRI", "X-Ray", "Ultrasound")]
                            + [("Organ", "Which organ?", a) for a in ("Lung", "Liver", "Heart", "Kidney", "Spleen", "Brain")])


@pytest.mark.parametrize("question,qtype,answer,options,idx", [
    # three alternatives without commas, the gold not first: the training answers of the
    # question's type tell that the word before "X or Y" is an alternative too
    ("Is this a CT MRI or X-ray image?", "Modality", "MRI", ["CT", "MRI", "X-ray"], 1),
    ("Is this a CT MRI or X-ray image?", "Modality", "X-Ray", ["CT", "MRI", "X-ray"], 2),
    ("Which organ is the biggest in this image lung liver or heart?", "Organ", "heart", ["lung", "liver", "heart"], 2),
    # ... but only answers of the same type: "brain" is an organ, not a modality
    ("Is this a brain CT or MRI?", "Modality", "MRI", ["CT", "MRI"], 1),
])
def test_alternatives_named_before_x_without_a_comma(question, qtype, answer, options, idx):
    mc = closed_to_mc(question, answer, image_hash=H, question_type=qtype, pool=MODALITY_POOL)
    assert (mc.options, mc.answer_idx, mc.rule) == (options, idx, "alternatives")


@pytest.mark.parametrize("h", [f"{i:040d}" for i in range(12)])
def test_unparsed_alternatives_are_distractors_so_the_gold_is_never_the_only_named_option(h):
    # the gold is none of the named organs: the named ones are the distractors, whatever the image
    mc = closed_to_mc("Which organ is the biggest in this image, lung, liver or heart?", "Kidney", image_hash=h,
                      question_type="Organ", pool=MODALITY_POOL)
    assert mc.rule == "distractors" and sorted(mc.options) == ["heart", "kidney", "liver", "lung"]
    mc = closed_to_mc("Which organ is abnormal, the liver or the spleen?", "brain", image_hash=h, question_type="Organ",
                      pool=MODALITY_POOL)
    assert {"liver", "spleen", "brain"} <= set(mc.options) and len(mc.options) == 4
    # without "or" the question names no alternatives: a plain seeded draw
    mc = closed_to_mc("What organ is next to the liver?", "kidney", image_hash=h, question_type="Organ", pool=MODALITY_POOL)
    assert mc.rule == "distractors" and len(mc.options) == 4


@pytest.mark.parametrize(
    "question,answer",
    [
        ("Are there multiple or just 1 metastatic focus?", "one"),  # gold not worded as an alternative
        ("Was oral or IV contrast used?", "Both"),
        ("What is denser, the mass or the surrounding brain tissue?", "surrounding tissue"),  # no list: no ", or"
        ("Where is the lesion?", "left lobe"),  # no "or" at all
        ("Is it this or that or?", "this"),  # "or" last
    ],
)
def test_no_alternatives(question, answer):
    assert question_alternatives(question, answer) is None


POOL = answer_pool(
    [("COUNT", "How many?", "2"), ("COUNT", "How many?", "3"), ("COUNT", "How many?", "just one"),
     ("COUNT", "How many?", "4"), ("COUNT", "How many?", "12"), ("COUNT", "How many?", "Yes"),
     ("ORGAN", "What organ?", "Kidney"), ("ORGAN", "What organ?", "kidney."), ("ORGAN", "Which organ?", "liver")]
)


def test_answer_pool():
    assert POOL["COUNT"] == ["12", "2", "3", "4", "just one"]  # yes/no left out, sorted
    assert POOL["ORGAN"] == ["kidney", "liver"]  # "Kidney" and "kidney." are one answer
    assert POOL[ANY_TYPE] == ["12", "2", "3", "4", "just one", "kidney", "liver"]


def test_distractors_same_type_no_rewording_of_gold():
    mc = closed_to_mc("Are there multiple or just 1 metastatic focus?", "one", image_hash=H, question_type="COUNT", pool=POOL)
    assert mc.rule == "distractors"
    assert len(mc.options) == 4 and mc.answer == "one"
    assert set(mc.options) - {"one"} <= {"12", "2", "3", "4"}  # "just one" rewords the gold: never drawn


def test_distractor_placement_seeded_by_image_and_question_not_by_pool_order():
    kw = dict(question_type="COUNT", pool=POOL)
    a = closed_to_mc("How many lesions?", "7", image_hash=H, **kw)
    shuffled = {k: random.Random(1).sample(v, len(v)) for k, v in POOL.items()}
    b = closed_to_mc("how many lesions ", "7", image_hash=H, question_type="COUNT", pool=shuffled)
    assert a == b  # same normalised question, same image -> same options, whatever the pool order
    seen = {tuple(closed_to_mc("How many lesions?", "7", image_hash=f"{i:040d}", **kw).options) for i in range(30)}
    positions = {closed_to_mc("How many lesions?", "7", image_hash=f"{i:040d}", **kw).answer_idx for i in range(30)}
    assert len(seen) > 5 and positions == {0, 1, 2, 3}  # the image hash moves options and gold


def test_distractors_fall_back_to_any_type_then_none():
    mc = closed_to_mc("What is the organ?", "spleen", image_hash=H, question_type="PLANE", pool=POOL)
    assert mc.rule == "distractors_any_type" and mc.answer == "spleen" and len(mc.options) == 4
    assert closed_to_mc("What is the organ?", "spleen", image_hash=H, pool=None) is None
    assert closed_to_mc("What?", "kidney", image_hash=H, pool={"*": ["kidney"]}) is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_options"):
        closed_to_mc("q", "a", image_hash=H, max_options=1)
    with pytest.raises(ValueError, match="empty gold answer"):
        closed_to_mc("q", " . ", image_hash=H)


def test_seed_depends_on_normalised_question_and_image():
    assert mc_seed(H, "Is it?") == mc_seed(H, "is it")
    assert mc_seed(H, "Is it?") != mc_seed("1" * 40, "Is it?")


words = st.text(alphabet="abcdefgh", min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(
    gold=words,
    pool=st.lists(words, max_size=12),
    qtype=st.sampled_from(["A", "B", None]),
    h=st.text(alphabet="0123456789abcdef", min_size=40, max_size=40),
    k=st.integers(2, 6),
)
def test_mc_invariants(gold, pool, qtype, h, k):
    p = answer_pool([(qtype, "What is it?", a) for a in pool])
    mc = closed_to_mc("What is it?", gold, image_hash=h, question_type=qtype, pool=p, max_options=k)
    if gold in ("yes", "no"):
        assert mc.options == ["yes", "no"]
        return
    g = set(normalize_answer(gold).split())
    candidates = {normalize_answer(a) for a in pool} - {"yes", "no"}
    candidates = {c for c in candidates if not (set(c.split()) <= g or g <= set(c.split()))}
    if not candidates:
        assert mc is None
        return
    assert mc.answer == gold and mc.options[mc.answer_idx] == gold
    assert 2 <= len(mc.options) <= k
    assert len({normalize_answer(o) for o in mc.options}) == len(mc.options)  # distinct
    assert len(mc.options) == min(k, 1 + len(candidates))
    assert mc == closed_to_mc("What is it?", gold, image_hash=h, question_type=qtype, pool=p, max_options=k)


@settings(max_examples=300, deadline=None)
@given(
    left=st.lists(st.sampled_from(["is", "the", "a", "lesion", "left", "ct", "with", "contrast", "small,", "bowel"]), min_size=1, max_size=6),
    right=st.lists(st.sampled_from(["right", "side", "mri", "an", "without", "contrast", "colon", "both,"]), min_size=1, max_size=5),
    gold=st.sampled_from(["left", "right side", "ct", "MRI", "with contrast", "small bowel", "colon", "both", "x"]),
)
def test_alternatives_never_misplace_the_gold(left, right, gold):
    question = " ".join(left) + " or " + " ".join(right) + "?"
    out = question_alternatives(question, gold)
    if out is not None:
        options, idx = out
        assert len(options) >= 2 and len({normalize_answer(o) for o in options}) == len(options)
        # the gold is the option, or the part of it that tells it apart from options that all
        # share their trailing words ("T2" names "T2 weighted" among "T1 weighted", "T2 weighted")
        keys = [normalize_answer(o).split() for o in options]
        g = normalize_answer(gold).split()
        tail = keys[idx][len(g):]
        assert keys[idx] == g or (keys[idx][: len(g)] == g and tail and all(k[-len(tail):] == tail for k in keys))
        q_words = set(normalize_question(question).replace(",", " ").split())
        assert all(set(normalize_answer(o).split()) <= q_words for o in options)  # worded in the question
