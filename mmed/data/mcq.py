"""Closed question -> multiple choice (DESIGN §4 "Multiple choice from closed questions").

MMedAgent-RL scores closed questions as multiple choice, but VQA-RAD, SLAKE and PathVQA publish
a closed question with its gold answer only. This module fixes the options by one documented
rule; published numbers differ by exactly this choice.

The rule, applied in this order to a closed question with gold answer ``g``:

1. **yes/no** - ``g`` normalises to ``yes`` or ``no`` -> options ``("yes", "no")`` in that
   order (rule ``"yes_no"``).
2. **alternatives named in the question** - the question has the form "... X or Y ...?" or
   "... X, Y, or Z ...?" (a comma right before the last "or" makes it a list), and ``g``
   matches one alternative after normalisation (:func:`normalize_answer`: case, edge
   punctuation and the articles a/an/the are ignored) -> those alternatives, in question order,
   with the question's own wording (rule ``"alternatives"``). An alternative is the word next
   to "or" (list items: the text between commas; the first list item as many words as the
   second); a longer gold answer extends it when it is worded in the question:
   "small bowel" in "the small bowel or colon?", "right side" in "left or right side?"
   (the other alternative gets the shared trailing word: "left side"), "left kidney" in
   "left or right kidney?", "with contrast" in "with contrast or without contrast?".
   A gold answer not worded as an alternative ("one" for "multiple or just 1 ...?") falls
   through to rule 3.
3. **distractors** - otherwise, the gold answer plus up to three distractors drawn from the
   *training* split's answers to questions of the same normalised question type
   (:func:`question_type_key`) (rule ``"distractors"``). Yes/no answers are never
   distractors, nor is an answer whose words contain the gold's words or are contained in them
   after normalisation ("just one" or "one" for gold "one", "left side" for gold "left"), so
   that no distractor is a rewording of the gold. When that type has no other answer, the pool of all
   training answers is used (rule ``"distractors_any_type"``). When even that is empty the
   question cannot be made multiple choice (:func:`closed_to_mc` returns ``None``; loaders keep
   it as an open item and count it).

Placement is deterministic and layout-independent: the distractors and the gold answer's
position are drawn with ``random.Random`` seeded from ``sha1(image content hash + "\\n" +
normalised question)`` (:func:`mc_seed`), never from an item id (ids differ between the
official, MEVF and Hub layouts of VQA-RAD). Given the same training pool, a question gets the
same options in every layout; rules 1 and 2 do not depend on the pool at all.

Option texts for rules 1 and 3 are shown in a canonical form (:func:`display_answer`:
lower-case, edge punctuation stripped) so that the gold option never stands out by its
casing; rule 2 uses the question's own words for every option for the same reason. The
gold answer as published stays in the item's ``meta["raw_answer"]``.
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

ARTICLES = frozenset({"a", "an", "the"})
YES_NO: tuple[str, str] = ("yes", "no")
#: pool key holding the answers of every question type (fallback of rule 3)
ANY_TYPE = "*"
#: question-type label typos and variants seen in VQA-RAD, mapped to the canonical label
QUESTION_TYPE_FIXES = {"ATRIB": "ATTRIB", "PRSE": "PRES"}
_EDGE_PUNCT = " \t\n\r.,;:!?\"'`()[]{}"


def _nfkc(text: object) -> str:
    return unicodedata.normalize("NFKC", str(text))


def display_answer(text: object) -> str:
    """Canonical display form of an answer: NFKC, lower-case, whitespace collapsed, edge
    punctuation stripped (``" Left side. "`` -> ``"left side"``)."""
    return " ".join(_nfkc(text).lower().split()).strip(_EDGE_PUNCT)


def _tokens(text: object) -> list[str]:
    """Lower-case words with edge punctuation stripped; empty words dropped."""
    out = []
    for w in _nfkc(text).lower().split():
        w = w.strip(_EDGE_PUNCT)
        if w:
            out.append(w)
    return out


def normalize_answer(text: object) -> str:
    """Matching key of an answer: :func:`display_answer` words without the articles a/an/the
    (unless the answer is nothing but articles: ``"A"`` stays ``"a"``).

    ``"The surrounding tissue."`` -> ``"surrounding tissue"``; ``"Yes"`` -> ``"yes"``.
    """
    words = _tokens(text)
    return " ".join([w for w in words if w not in ARTICLES] or words)


def normalize_question(question: object) -> str:
    """Question key used for seeding and leakage: NFKC, lower-case, whitespace collapsed,
    trailing ``?``/``.``/``!`` and surrounding spaces removed."""
    return " ".join(_nfkc(question).lower().split()).rstrip(" ?.!")


def is_yes_no(answer: object) -> bool:
    """Whether an answer normalises to ``yes`` or ``no``."""
    return normalize_answer(answer) in YES_NO


def question_type_key(question_type: Optional[str], question: str) -> str:
    """Normalised question type, the grouping of rule 3's distractor pool.

    With a source label (VQA-RAD ``question_type``, SLAKE ``content_type``): upper-case, the
    first label of a mixed one (``"PRES, POS"`` -> ``"PRES"``), known typos fixed
    (``ATRIB`` -> ``ATTRIB``, ``PRSE`` -> ``PRES``). Without one (PathVQA, the Hub forms): the
    question's lead words, ``"q:how many"``, ``"q:what"``, ``"q:where"``, ...
    """
    if question_type is not None and str(question_type).strip():
        first = str(question_type).split(",")[0].strip().upper()
        return QUESTION_TYPE_FIXES.get(first, first)
    words = _tokens(question)
    if not words:
        return "q:"
    lead = words[0]
    if lead in {"how", "what", "which"} and len(words) > 1 and words[1] in {"many", "much", "kind", "type", "part", "organ"}:
        lead = f"{lead} {words[1]}"
    return f"q:{lead}"


def answer_pool(records: Iterable[tuple[Optional[str], str, str]]) -> dict[str, list[str]]:
    """Distractor pool of rule 3 from training ``(question_type, question, answer)`` records.

    Returns ``{question type key: sorted distinct display answers}`` plus ``ANY_TYPE`` ("*")
    over all types. Yes/no and empty answers are left out; answers equal after
    :func:`normalize_answer` are kept once (the first display form in sorted order).
    """
    by_type: dict[str, dict[str, str]] = {}
    for qtype, question, answer in records:
        key = normalize_answer(answer)
        if not key or key in YES_NO:
            continue
        disp = display_answer(answer)
        for k in (question_type_key(qtype, question), ANY_TYPE):
            table = by_type.setdefault(k, {})
            if key not in table or disp < table[key]:
                table[key] = disp
    return {k: sorted(v.values(), key=lambda d: (normalize_answer(d), d)) for k, v in sorted(by_type.items())}


def mc_seed(image_hash: str, question: str) -> int:
    """Seed of rule 3's draw: ``sha1(image_hash + "\\n" + normalize_question(question))``, as int."""
    digest = hashlib.sha1(f"{image_hash}\n{normalize_question(question)}".encode("utf-8")).hexdigest()
    return int(digest[:16], 16)


# ----------------------------------------------------------------------------------------
# rule 2: alternatives named in the question
# ----------------------------------------------------------------------------------------
_WORD = re.compile(r"\S+")


def _question_words(question: str) -> list[tuple[str, str, bool]]:
    """(original word with edge punctuation stripped, lower-case form, followed-by-comma)."""
    out = []
    for m in _WORD.finditer(_nfkc(question)):
        raw = m.group(0)
        low = raw.lower().strip(_EDGE_PUNCT)
        if not low or low in ARTICLES:
            continue
        out.append((raw.strip(_EDGE_PUNCT), low, raw.rstrip(" ?.!").endswith(",")))
    return out


def question_alternatives(question: str, answer: str) -> Optional[tuple[list[str], int]]:
    """Rule 2: ``(alternatives in question order, index of the gold)`` or ``None``.

    ``None`` when the question names no alternatives ("or" missing), when they repeat, or when
    ``answer`` matches none of them after :func:`normalize_answer` (see the module docstring
    for how alternatives are delimited and extended by a longer gold answer).
    """
    words = _question_words(question)
    low = [w[1] for w in words]
    if "or" not in low:
        return None
    i = len(low) - 1 - low[::-1].index("or")
    if i == 0 or i == len(low) - 1:
        return None
    g = normalize_answer(answer).split()
    if not g:
        return None
    n = len(g)

    def text(a: int, b: int) -> str:  # question words a..b-1 in their own casing
        return " ".join(w[0] for w in words[a:b])

    ys = i + 1  # first word of the last alternative
    if words[i - 1][2]:  # "X, Y, or Z": a list
        seg_ends = [k for k in range(i) if words[k][2]]  # words followed by a comma
        if len(seg_ends) < 2:
            return None
        middles = [(seg_ends[j] + 1, seg_ends[j + 1] + 1) for j in range(len(seg_ends) - 1)]
        width = middles[0][1] - middles[0][0]
        first = (max(0, seg_ends[0] + 1 - width), seg_ends[0] + 1)
        spans = [first, *middles, (ys, ys + 1)]
        alts = [text(a, b) for a, b in spans]
    else:
        xe = i  # X ends before "or"
        spans = [(xe - 1, xe), (ys, ys + 1)]
        if low[xe - 1 : xe] == g:
            pass  # exact one-word gold: keep the core words
        elif n >= 2 and low[ys : ys + n] == g:  # "right side" in "left or right side"
            if low[xe - 1] == g[-1] and xe - n >= 0:  # "contrast ct or non-contrast ct"
                spans = [(xe - n, xe), (ys, ys + n)]
            else:
                return _with_tail(words, xe, ys, n, gold_idx=1)
        elif n >= 2 and xe - n >= 0 and low[xe - n : xe] == g:  # "small bowel" in "small bowel or colon"
            y_end = ys + n
            if y_end <= len(low) and low[y_end - 1] == g[-1]:  # "with contrast or without contrast"
                spans = [(xe - n, xe), (ys, y_end)]
            else:
                spans = [(xe - n, xe), (ys, ys + 1)]
        elif n >= 2 and low[xe - 1] == g[0] and low[ys + 1 : ys + n] == g[1:] and ys + n <= len(low):
            return _with_tail(words, xe, ys, n, gold_idx=0)  # "left kidney" in "left or right kidney"
        alts = [text(a, b) for a, b in spans]
    keys = [normalize_answer(a) for a in alts]
    if len(set(keys)) != len(keys) or "" in keys:
        return None
    gold = " ".join(g)
    return (alts, keys.index(gold)) if gold in keys else None


def _with_tail(words: list[tuple[str, str, bool]], xe: int, ys: int, n: int, gold_idx: int) -> tuple[list[str], int]:
    """Shared trailing words: "X or Y tail" -> ["X tail", "Y tail"] (the tail in Y's wording)."""
    tail = " ".join(w[0] for w in words[ys + 1 : ys + n])
    return [f"{words[xe - 1][0]} {tail}", " ".join(w[0] for w in words[ys : ys + n])], gold_idx


# ----------------------------------------------------------------------------------------
# the whole rule
# ----------------------------------------------------------------------------------------
def _distinct(candidate: str, gold_key: str) -> bool:
    """A usable distractor: not yes/no, and its words neither contain nor lie in the gold's."""
    c, g = set(normalize_answer(candidate).split()), set(gold_key.split())
    return bool(c) and normalize_answer(candidate) not in YES_NO and not (c <= g or g <= c)


@dataclass(frozen=True)
class MultipleChoice:
    """Options for one closed question: ``options[answer_idx]`` is the gold; ``rule`` is one of
    ``"yes_no"``, ``"alternatives"``, ``"distractors"``, ``"distractors_any_type"``."""

    options: list[str]
    answer_idx: int
    rule: str

    @property
    def answer(self) -> str:
        """The gold option's text."""
        return self.options[self.answer_idx]


def closed_to_mc(
    question: str,
    answer: str,
    *,
    image_hash: str,
    question_type: Optional[str] = None,
    pool: Optional[Mapping[str, Sequence[str]]] = None,
    max_options: int = 4,
) -> Optional[MultipleChoice]:
    """Apply the rule of the module docstring to one closed question.

    Args:
        question: question text.
        answer: the gold answer as published.
        image_hash: content hash of the item's image (:func:`mmed.data.splits.image_hash`);
            with the question it seeds rule 3.
        question_type: the source's question-type label, if any (see :func:`question_type_key`).
        pool: the training split's :func:`answer_pool`; ``None`` = no distractors available.
        max_options: at most this many options in rule 3 (gold + ``max_options - 1``), >= 2.
    Returns:
        :class:`MultipleChoice`, or ``None`` when rule 3 has no distractor at all.
    Raises:
        ValueError: ``max_options < 2`` or an empty ``answer``.
    """
    if max_options < 2:
        raise ValueError(f"max_options must be >= 2, got {max_options}")
    gold_key = normalize_answer(answer)
    if not gold_key:
        raise ValueError(f"empty gold answer {answer!r} for question {question!r}")
    if gold_key in YES_NO:
        return MultipleChoice(list(YES_NO), YES_NO.index(gold_key), "yes_no")
    alt = question_alternatives(question, answer)
    if alt is not None:
        return MultipleChoice(alt[0], alt[1], "alternatives")
    if not pool:
        return None
    rule = "distractors"
    candidates = [a for a in pool.get(question_type_key(question_type, question), ()) if _distinct(a, gold_key)]
    if not candidates:
        rule = "distractors_any_type"
        candidates = [a for a in pool.get(ANY_TYPE, ()) if _distinct(a, gold_key)]
    if not candidates:
        return None
    rng = random.Random(mc_seed(image_hash, question))
    chosen = rng.sample(sorted(candidates), min(max_options - 1, len(candidates)))
    pos = rng.randrange(len(chosen) + 1)
    options = chosen[:pos] + [display_answer(answer)] + chosen[pos:]
    return MultipleChoice(options, pos, rule)
