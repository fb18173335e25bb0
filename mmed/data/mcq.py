"""Closed question -> multiple choice
(docs/architecture.md#multiple-choice-from-closed-questions).

MMedAgent-RL scores closed questions as multiple choice, but VQA-RAD, SLAKE and PathVQA publish
a closed question with its gold answer only. This module fixes the options by one documented
rule; published numbers differ by exactly this choice.

The rule, applied in this order to a closed question with gold answer ``g``:

1. **yes/no** - ``g`` normalises to ``yes`` or ``no`` -> options ``("yes", "no")`` in that
   order (rule ``"yes_no"``).
2. **alternatives named in the question** - the question names alternatives joined by its
   last "or", and ``g`` names one of them -> those alternatives, in question order, with the
   question's own wording (rule ``"alternatives"``). The grammar is below. A gold answer
   names an alternative when it equals it after :func:`normalize_answer` (the matching key
   of :mod:`mmed.data.answers`: case, edge punctuation and the articles a/an/the are ignored), or - alternatives that share their
   trailing words - when it equals the part that tells them apart ("T2" names "T2 weighted"
   among "T1 weighted", "T2 weighted"). A gold answer that names none ("one" for "multiple
   or just 1 ...?") falls through to rule 3.
3. **distractors** - otherwise, the gold answer plus up to three distractors drawn from the
   *training* split's answers to questions of the same normalised question type
   (:func:`question_type_key`) (rule ``"distractors"``). Yes/no answers are never
   distractors, nor is an answer whose words contain the gold's words or are contained in them
   after normalisation ("just one" or "one" for gold "one", "left side" for gold "left"), so
   that no distractor is a rewording of the gold. When the question has an "or", the
   candidates it names (:func:`named_answers`; a phrase inside a longer named one counts
   once) are taken first and the rest drawn, so that the gold is never the only option the
   question names ("Which organ is the biggest in this image, lung, liver or heart?" with
   gold "kidney" -> kidney, lung, liver, heart). When that type has no other answer, the
   pool of all training answers is used (rule ``"distractors_any_type"``). When even that is
   empty the question cannot be made multiple choice (:func:`closed_to_mc` returns ``None``;
   loaders keep it as an open item and count it).

Grammar of rule 2 (:func:`question_alternatives`). Words are split at spaces and at commas
(SLAKE writes "in this image,liver or lung?"); articles are dropped; the last "or" joins
the last two alternatives X (before it) and Y (after it). Tried in this order, the first
form whose alternatives are distinct and include the gold wins:

a. **a comma list** of three or more items: "A, B, or C" and "A, B or C" (with or
   without a comma before "or"). The words before "or" are cut at commas; from the right,
   each segment of 1-4 words without a verb, pronoun, determiner or preposition
   (:data:`NOT_IN_ITEM`) is an item. The segment that is not is the question itself: its last
   words are the first item (as many words as the next item: "Is this a T1 weighted, T2
   weighted, or FLAIR image?" -> T1 weighted, T2 weighted, FLAIR) unless it is a
   wh-question ("Which organ is the biggest in this image, lung, liver or heart?" -> lung,
   liver, heart). Y is one word, or as many as the gold where they are the gold.
b. **X or Y**, X one word before "or" and Y one word after it ("an MRI or a CT scan" -> MRI,
   CT), widened by these rules, tried in order:

   - the gold worded as X ("the small bowel or colon", gold "small bowel" -> small bowel,
     colon) or as Y with words shared at the end ("a contrast CT or a non-contrast CT");
   - words shared at the end of both ("T1 weighted or T2 weighted" -> T1 weighted, T2
     weighted; "with contrast or without contrast"; "vascular process or a genetic
     process"); where the word before the shared words is a verb, X is the shared words
     alone ("have contrast or no contrast" -> contrast, no contrast);
   - words shared at the start of both are dropped ("in the liver or in the spleen" ->
     liver, spleen);
   - alternatives named before X without a comma ("CT MRI or X-ray"): going left from X,
     the gold's words, or an answer of the training pool for the question's type (``known``
     of :func:`question_alternatives`), each directly before the last one found ("Is this a
     CT MRI or X-ray image?" -> CT, MRI, X-ray).
c. **X or Y tail**, the gold worded as X or Y with Y's trailing words: the tail is shared
   ("left or right kidney", gold "left kidney" -> left kidney, right kidney; "left or right
   side", gold "right side"; "more or less dense") - unless Y has its own article and so has
   the phrase before "or" ("the lesion or the surrounding tissue" -> lesion, surrounding
   tissue; "a physical injury or a medical process" -> physical injury, medical process).

Placement is deterministic and layout-independent: the distractors and the gold answer's
position are drawn with ``random.Random`` seeded from ``sha1(image content hash + "\\n" +
normalised question)`` (:func:`mc_seed`), never from an item id (ids differ between the
official, MEVF and Hub layouts of VQA-RAD). Given the same training pool, a question gets the
same options in every layout; rule 1 does not depend on the pool at all, rule 2 only through
the answers of the question's type that name alternatives before X without a comma.

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

# the matching key of an answer (rules 1, 2, 3k, 4k of mmed/data/answers.py); re-exported here
from .answers import ARTICLES, WORD_EDGE_PUNCT, answer_words, normalize_answer  # noqa: F401

YES_NO: tuple[str, str] = ("yes", "no")
#: pool key holding the answers of every question type (fallback of rule 3)
ANY_TYPE = "*"
#: question-type label typos and variants seen in VQA-RAD, mapped to the canonical label
QUESTION_TYPE_FIXES = {"ATRIB": "ATTRIB", "PRSE": "PRES"}
_EDGE_PUNCT = WORD_EDGE_PUNCT


def _nfkc(text: object) -> str:
    return unicodedata.normalize("NFKC", str(text))


def display_answer(text: object) -> str:
    """Canonical display form of an answer: NFKC, lower-case, whitespace collapsed, edge
    punctuation stripped (``" Left side. "`` -> ``"left side"``)."""
    return " ".join(_nfkc(text).lower().split()).strip(_EDGE_PUNCT)


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
    words = answer_words(question)
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
#: a word and whether a comma follows it (commas separate words even without a space: SLAKE
#: writes "in this image,liver or lung?")
_WORD = re.compile(r"[^\s,]+")
#: question words: a list after a comma that follows a clause opened by one of them is the
#: whole list ("Which organ is the biggest in this image, lung, liver or heart?")
WH_WORDS = frozenset({"which", "what", "where", "who", "whose", "how"})
#: words that never occur inside a list item (verbs, pronouns, determiners, prepositions): a
#: comma-delimited segment holding one is part of the question, not an alternative
NOT_IN_ITEM = frozenset({
    "is", "are", "was", "were", "be", "been", "does", "do", "did", "can", "which", "what", "where", "who", "whose",
    "how", "this", "these", "those", "that", "there", "it", "its", "in", "on", "at", "of", "from", "into", "within",
    "than", "seen", "shown",
})
#: at most this many words in a list item
MAX_ITEM_WORDS = 4


@dataclass(frozen=True)
class _Word:
    text: str  # as in the question, edge punctuation stripped
    low: str  # lower case
    comma: bool  # a comma follows it
    det: bool = False  # an article (a/an/the) stands right before it


def _question_words(question: str) -> list[_Word]:
    """The question's words (articles dropped), each with whether a comma follows it."""
    q = _nfkc(question)
    out = []
    det = False
    for m in _WORD.finditer(q):
        raw = m.group(0)
        low = raw.casefold().strip(_EDGE_PUNCT)  # as the answer key (mmed/data/answers.py)
        if not low:
            continue
        if low in ARTICLES:
            det = True
            continue
        rest = q[m.end():].lstrip()
        out.append(_Word(raw.strip(_EDGE_PUNCT), low, rest.startswith(","), det))
        det = False
    return out


def _text(words: Sequence[_Word], a: int, b: int) -> str:
    """Question words a..b-1 in their own casing."""
    return " ".join(w.text for w in words[a:b])


def _is_item(words: Sequence[_Word], a: int, b: int) -> bool:
    """Whether words a..b-1 can be a list item: 1..MAX_ITEM_WORDS words, none of NOT_IN_ITEM."""
    return 0 < b - a <= MAX_ITEM_WORDS and not any(w.low in NOT_IN_ITEM for w in words[a:b])


def _shared_tail(alts: Sequence[str]) -> int:
    """Number of trailing words all ``alts`` share (0 when one alternative would be left empty)."""
    keys = [normalize_answer(a).split() for a in alts]
    n = 0
    while all(len(k) > n + 1 for k in keys) and len({k[-1 - n] for k in keys}) == 1:
        n += 1
    return n


def _match_gold(alts: Sequence[str], gold: str) -> Optional[int]:
    """Index of the alternative the gold answer names, else None. Alternatives must be
    distinct and non-empty. The gold names an alternative when it equals it after
    :func:`normalize_answer`, or - alternatives sharing trailing words ("T1 weighted", "T2
    weighted") - when it equals the part that tells them apart ("T2")."""
    keys = [normalize_answer(a) for a in alts]
    if len(keys) < 2 or len(set(keys)) != len(keys) or "" in keys:
        return None
    if gold in keys:
        return keys.index(gold)
    tail = _shared_tail(alts)
    if tail:
        heads = [" ".join(k.split()[:-tail]) for k in keys]
        if len(set(heads)) == len(heads) and gold in heads:
            return heads.index(gold)
    return None


def _list_items(words: Sequence[_Word], i: int, gold: list[str]) -> Optional[list[tuple[int, int]]]:
    """Spans of a comma list ending in "... or Y" (the "or" at ``i``), or None.

    The words before "or" are cut at commas into segments; from the right, every segment
    that can be an item (:func:`_is_item`) is one (the segment between the last comma and
    "or" too, when there is no comma before "or"). The first segment that cannot be an item
    is the question itself; its last words are the first item (as many words as the next
    item) unless the question is a wh-question ("Which organ is the biggest in this image,
    lung, liver or heart?": the list follows the question) or those words cannot be an item.
    Y is the word after "or", or as many words as the gold answer where they are the gold.
    """
    ends = [k for k in range(i) if words[k].comma]
    if not ends:
        return None
    bounds = [0] + [k + 1 for k in ends]
    segs = [(a, b) for a, b in zip(bounds, bounds[1:] + [i]) if b > a]
    items: list[tuple[int, int]] = []
    stem: Optional[tuple[int, int]] = None
    for a, b in reversed(segs):
        if stem is None and _is_item(words, a, b) and not (a == 0 and words[0].low in WH_WORDS):
            items.insert(0, (a, b))
        elif stem is None:
            stem = (a, b)
    if not items:
        return None
    if stem is not None:
        a, b = stem
        width = items[0][1] - items[0][0]
        wh = any(w.low in WH_WORDS for w in words[a:b])
        if not wh and b - width > a and _is_item(words, b - width, b):
            items.insert(0, (b - width, b))
    ys = i + 1
    n = len(gold)
    y = (ys, ys + n) if n > 1 and [w.low for w in words[ys : ys + n]] == gold else (ys, ys + 1)
    # two alternatives are "X or Y", which the simple form reads (with its shared-word rules)
    return items + [y] if len(items) >= 2 else None


def _simple_spans(words: Sequence[_Word], i: int, gold: list[str]) -> Optional[tuple[list[tuple[int, int]], bool]]:
    """``(spans of X and Y, whether X may be extended to the left)`` of "X or Y" (no list)
    around the "or" at ``i``, or None (then :func:`_tail_alternatives` decides); the cases
    in order are those of the module docstring's grammar, rule 2."""
    low = [w.low for w in words]
    xe, ys = i, i + 1
    n = len(gold)
    # words shared at the end of both alternatives: "T1 weighted or T2 weighted"
    s = next((s for s in (3, 2, 1) if xe - s - 1 >= 0 and ys + 1 + s <= len(low)
              and low[xe - s : xe] == low[ys + 1 : ys + 1 + s] and low[xe - s - 1] != low[ys]), 0)
    if n >= 2 and xe - n >= 0 and low[xe - n : xe] == gold:  # the gold worded as X: "small bowel or colon"
        return [(xe - n, xe), (ys, ys + 1 + s if s < n else ys + 1)], s == 0
    if n >= 2 and low[ys : ys + n] == gold:  # the gold worded as Y: "contrast CT or non-contrast CT"
        if s:
            return [(xe - s - 1, xe), (ys, ys + n)], False
        return None  # "left or right side": the shared-tail form
    if s:
        if low[xe - s : xe] == gold or low[xe - s - 1] in NOT_IN_ITEM:  # "have contrast or no contrast"
            return [(xe - s, xe), (ys, ys + 1 + s)], False
        return [(xe - s - 1, xe), (ys, ys + 1 + s)], False
    # words shared at the start of both alternatives: "in the liver or in the spleen" -> liver, spleen
    q = next((q for q in (2, 1) if xe - 1 - q >= 0 and ys + q < len(low)
              and low[xe - 1 - q : xe - 1] == low[ys : ys + q] and low[xe - 1] != low[ys + q]), 0)
    if q:
        return [(xe - 1, xe), (ys + q, ys + q + 1)], False
    return [(xe - 1, xe), (ys, ys + 1)], True


def _tail_alternatives(words: Sequence[_Word], i: int, gold: list[str]) -> Optional[tuple[list[str], int]]:
    """"X or Y tail" where the gold is worded "X tail" or "Y tail": the tail is shared,
    ``["X tail", "Y tail"]`` ("left or right kidney", gold "left kidney"; "more or less
    dense", gold "more dense"; "left or right side", gold "right side")."""
    low = [w.low for w in words]
    xe, ys, n = i, i + 1, len(gold)
    if n < 2 or ys + n > len(low):
        return None
    tail = _text(words, ys + 1, ys + n)
    if low[ys : ys + n] == gold:
        if words[ys].det:  # "the lesion or the surrounding tissue": two noun phrases, each with its article
            a = xe - 1
            while not words[a].det and a > 0 and xe - a < MAX_ITEM_WORDS and not words[a - 1].comma \
                    and words[a - 1].low not in NOT_IN_ITEM and not words[a - 1].low.endswith("'s"):
                a -= 1
            if words[a].det:
                return [_text(words, a, xe), _text(words, ys, ys + n)], 1
        return [f"{words[xe - 1].text} {tail}", _text(words, ys, ys + n)], 1
    if low[xe - 1] == gold[0] and low[ys + 1 : ys + n] == gold[1:]:
        return [f"{words[xe - 1].text} {tail}", _text(words, ys, ys + n)], 0
    return None


def _extend_left(words: Sequence[_Word], start: int, gold: list[str], known: frozenset[str]) -> list[tuple[int, int]]:
    """Alternatives named before X without a comma ("CT MRI or X-ray"): going left from
    ``start`` (X's first word), the gold answer's words, or an answer in ``known`` (the
    training answers of the question's type, normalised; longest first, up to 3 words),
    each directly before the last one found. Spans in question order."""
    out: list[tuple[int, int]] = []
    low = [w.low for w in words]
    p = start
    while p > 0 and not words[p - 1].comma:
        for k in (3, 2, 1):
            a = p - k
            if a < 0 or any(w.comma for w in words[a : p - 1]) or any(w.low in NOT_IN_ITEM for w in words[a:p]):
                continue
            phrase = low[a:p]
            if phrase == gold or " ".join(phrase) in known:
                out.insert(0, (a, p))
                p = a
                break
        else:
            break
    return out


def question_alternatives(
    question: str, answer: str, known: Optional[Iterable[str]] = None
) -> Optional[tuple[list[str], int]]:
    """Rule 2: ``(alternatives in question order, index of the gold)`` or ``None``.

    ``None`` when the question names no alternatives ("or" missing, or first or last), when
    they repeat, or when ``answer`` names none of them (see the module docstring, "Grammar",
    for how alternatives are delimited). ``known``: answers (any wording; compared after
    :func:`normalize_answer`) that count as alternatives when they stand directly before X
    without a comma ("CT MRI or X-ray" with ``known`` holding "ct"); the gold answer always
    does.
    """
    words = _question_words(question)
    low = [w.low for w in words]
    if "or" not in low:
        return None
    i = len(low) - 1 - low[::-1].index("or")
    if i == 0 or i == len(low) - 1:
        return None
    g = normalize_answer(answer).split()
    if not g:
        return None
    gold = " ".join(g)
    known_keys = frozenset(normalize_answer(k) for k in (known or ())) - {"", *YES_NO}
    spans = _list_items(words, i, g)
    if spans is not None:
        alts = [_text(words, a, b) for a, b in spans]
        idx = _match_gold(alts, gold)
        if idx is not None:
            return alts, idx
    simple = _simple_spans(words, i, g)
    if simple is not None:
        spans, extend = simple
        if extend:
            spans = _extend_left(words, spans[0][0], g, known_keys) + spans
        alts = [_text(words, a, b) for a, b in spans]
        idx = _match_gold(alts, gold)
        if idx is not None:
            return alts, idx
    tail = _tail_alternatives(words, i, g)
    if tail is not None and _match_gold(tail[0], gold) == tail[1]:
        return tail
    return None


def named_answers(question: str, answers: Iterable[str]) -> list[str]:
    """The ``answers`` worded in ``question`` (their :func:`normalize_answer` words occur
    there as a phrase), in the order they first occur, each once."""
    qwords = [w.low for w in _question_words(question)]
    found: dict[str, tuple[int, str]] = {}
    for a in answers:
        key = normalize_answer(a).split()
        if not key or " ".join(key) in found:
            continue
        pos = next((j for j in range(len(qwords) - len(key) + 1) if qwords[j : j + len(key)] == key), None)
        if pos is not None:
            found[" ".join(key)] = (pos, a)
    # a phrase inside a longer one named there is the same alternative ("non-contrast" in
    # "non-contrast ct"): keep the longer
    keys = list(found)
    keep = [k for k in keys if not any(k != o and set(k.split()) <= set(o.split()) for o in keys)]
    return [a for _, a in sorted((found[k] for k in keep), key=lambda t: (t[0], t[1]))]


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
    same_type = pool.get(question_type_key(question_type, question), ()) if pool else ()
    alt = question_alternatives(question, answer, known=same_type)
    if alt is not None:
        return MultipleChoice(alt[0], alt[1], "alternatives")
    if not pool:
        return None
    rule = "distractors"
    candidates = [a for a in same_type if _distinct(a, gold_key)]
    if not candidates:
        rule = "distractors_any_type"
        candidates = [a for a in pool.get(ANY_TYPE, ()) if _distinct(a, gold_key)]
    if not candidates:
        return None
    rng = random.Random(mc_seed(image_hash, question))
    # the answers the question names come first, so that the gold is never the only option
    # the question names ("lung, liver or heart" where the rule could not parse the list)
    named = named_answers(question, candidates) if "or" in normalize_question(question).replace(",", " ").split() else []
    named = sorted(named[: max_options - 1])
    rest = sorted(a for a in candidates if a not in set(named))
    chosen = named + rng.sample(rest, min(max_options - 1 - len(named), len(rest)))
    if named:
        rng.shuffle(chosen)
    pos = rng.randrange(len(chosen) + 1)
    options = chosen[:pos] + [display_answer(answer)] + chosen[pos:]
    return MultipleChoice(options, pos, rule)
