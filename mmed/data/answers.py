"""Answer normalisation: the one place where answer text is made comparable.

Every comparison of answer texts in the package goes through this module: the parser
matching a model's answer to the options (:mod:`mmed.agents.parsing`), the closed ->
multiple-choice rule matching a gold answer to the alternatives a question names
(:mod:`mmed.data.mcq`), and the scoring of open questions (:func:`exact_match`,
:func:`token_recall`, re-exported by :mod:`mmed.eval.metrics`). It lives in ``mmed/data/``,
the lowest layer that needs it, so that agents, rl and eval import it downwards
(``docs/architecture.md#layers``).

The rules, in the order they apply. Rules 1-2 hold for every form; a form then adds its own.

1. **Unicode and case.** NFKC (full-width ``Ｙｅｓ`` -> ``Yes``, ligatures split), then
   ``str.casefold`` (``"YES"`` -> ``"yes"``). ``None`` is the empty string.
2. **Whitespace.** Runs of whitespace are one space; none at either end.

Three forms are built on them, each for one job:

:func:`canonical_text` - the *surface form* a parser reads (rules 1-2, then)
    3s. whitespace, Unicode punctuation (categories P*: ``. , ; : ! ? - _ * / % #``,
    quotes, brackets), invisible format characters (Cf, e.g. a zero-width space) and the
    backtick are stripped from the two ends of the whole text; nothing inside is touched.
    Articles are kept and inner punctuation is kept because the parser's letter grammar
    reads them (``"(A) Yes."`` -> ``"a) yes"`` is read as letter A + text *yes*); symbols
    (``< > + = ≥``, categories S*) are kept so that options ``<5 mm`` and ``>5 mm`` stay
    apart. ``%`` is punctuation (Po): ``"50%"`` -> ``"50"``.

:func:`normalize_answer` - the *matching key* of an answer (rules 1-2, then)
    3k. each word is stripped of sentence punctuation, quotes and brackets at its two ends
    (``. , ; : ! ? " ' ` ( ) [ ] { }``); a word left empty is dropped. Inner punctuation
    and hyphens, slashes, ``%`` and symbols are kept: ``x-ray``, ``t1/t2``, ``3.5``,
    ``50%``, ``<5 mm`` are one word each, as they are words of the question that names
    them (the multiple-choice rule compares the key's words with the question's words
    and shows the question's wording as options).
    4k. the articles *a*, *an*, *the* are dropped, unless the answer is nothing but
    articles (``"A"`` stays ``"a"``: an answer, not an empty one).

:func:`normalize_answer` with ``squad=True`` - the *scoring key* of open questions
    3q. every ASCII punctuation character (``string.punctuation``, hyphen and ``<``/``>``
    included) is a space, so inner punctuation splits words: ``"Left-Lung."`` ->
    ``"left lung"``.
    4q. the articles *a*, *an*, *the* are always dropped: an answer of articles alone is
    empty, and an empty gold answer cannot be scored (:func:`exact_match` raises).
    This is the normalisation of the SQuAD evaluation script (Rajpurkar et al. 2016,
    arXiv 1606.05250, ``normalize_answer`` in its ``evaluate-v1.1.py``), which open-ended
    medical VQA reports follow; keeping it keeps our open exact-match numbers comparable.

Which rule wins where the earlier three normalisers differed. Before this module the
package had three functions (``mcq.normalize_answer``, ``metrics.normalize_answer``,
``parsing.normalize``). Rules 1-2 now hold for all three: the open-question scorer gained
NFKC (it only lower-cased), the multiple-choice key gained ``casefold`` (it used
``lower``; they differ only on letters such as ``ß``) and ``None`` -> ``""`` (it gave
``"none"``). The form-specific rules were kept as they were, because each is pinned by
what depends on it: the surface form by the parser's letter grammar; the matching key by
the options the multiple-choice rule builds (splitting ``x-ray`` or ``non-contrast`` into
two words would change which distractors count as rewordings of the gold, and so the
options of real VQA-RAD/SLAKE items); the scoring key by the SQuAD convention and by the
open-question numbers already reported.

Examples::

    >>> canonical_text("  **(A) Yes.** ")
    'a) yes'
    >>> normalize_answer(" The Surrounding  tissue. ")
    'surrounding tissue'
    >>> normalize_answer("X-ray"), normalize_answer("X-ray", squad=True)
    ('x-ray', 'x ray')
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter

#: Articles dropped by the keys (rules 4k and 4q).
ARTICLES = frozenset({"a", "an", "the"})
#: Characters rule 3k strips from the two ends of each word.
WORD_EDGE_PUNCT = " \t\n\r.,;:!?\"'`()[]{}"

_ASCII_PUNCT_TO_SPACE = str.maketrans({c: " " for c in string.punctuation})
_ARTICLE_WORD = re.compile(r"\b(?:a|an|the)\b")


def _unicode_case(text: object) -> str:
    """Rule 1: NFKC + casefold; ``None`` -> ``""``."""
    if text is None:
        return ""
    return unicodedata.normalize("NFKC", str(text)).casefold()


def _is_edge_junk(ch: str) -> bool:
    """Rule 3s: whitespace, punctuation (P*), format characters (Cf) and the backtick."""
    cat = unicodedata.category(ch)
    return ch.isspace() or ch == "`" or cat[0] == "P" or cat == "Cf"


def canonical_text(text: object) -> str:
    """The surface form of an answer (rules 1, 2, 3s of the module docstring).

    ``canonical_text("  (A) Yes. ")`` -> ``"a) yes"``; ``canonical_text("**YES**")`` ->
    ``"yes"``; ``canonical_text("<5 mm")`` -> ``"<5 mm"``. Never raises.
    """
    text = " ".join(_unicode_case(text).split())
    start, end = 0, len(text)
    while start < end and _is_edge_junk(text[start]):
        start += 1
    while end > start and _is_edge_junk(text[end - 1]):
        end -= 1
    return text[start:end]


def answer_words(text: object, *, squad: bool = False) -> list[str]:
    """The words of :func:`normalize_answer` (articles included): rules 1-2 and 3k, or 3q
    with ``squad=True``."""
    t = _unicode_case(text)
    if squad:
        return t.translate(_ASCII_PUNCT_TO_SPACE).split()
    return [w for w in (w.strip(WORD_EDGE_PUNCT) for w in t.split()) if w]


def normalize_answer(text: object, *, squad: bool = False) -> str:
    """The key two answers are compared by (module docstring: rules 1, 2, 3k, 4k; with
    ``squad=True`` rules 1, 2, 3q, 4q, the open-question scoring key).

    ``"The surrounding tissue."`` -> ``"surrounding tissue"``; ``"Yes"`` -> ``"yes"``;
    ``"A"`` -> ``"a"`` (``""`` with ``squad=True``); ``"The  Left-Lung."`` ->
    ``"left-lung"`` (``"left lung"`` with ``squad=True``). Never raises.
    """
    if squad:
        # as the SQuAD script: the articles are removed from the text as whole words
        # (``\b``), after punctuation became spaces
        return " ".join(_ARTICLE_WORD.sub(" ", " ".join(answer_words(text, squad=True))).split())
    words = answer_words(text)
    return " ".join([w for w in words if w not in ARTICLES] or words)


def exact_match(pred: str | None, gold: str) -> bool:
    """Scoring key of the prediction == scoring key of the gold (``squad=True``).
    ``pred=None`` (invalid output) -> False.

    Raises ``ValueError`` when the gold answer normalises to the empty string."""
    g = normalize_answer(gold, squad=True)
    if not g:
        raise ValueError(f"gold answer {gold!r} is empty after normalisation")
    return pred is not None and normalize_answer(pred, squad=True) == g


def token_recall(pred: str | None, gold: str) -> float:
    """Fraction of the gold answer's scoring-key words found in the prediction's (multiset
    overlap / gold word count), in [0, 1]. ``pred=None`` -> 0.0.

    Raises ``ValueError`` when the gold answer normalises to the empty string."""
    gold_tokens = normalize_answer(gold, squad=True).split()
    if not gold_tokens:
        raise ValueError(f"gold answer {gold!r} is empty after normalisation")
    common = Counter(normalize_answer(pred, squad=True).split()) & Counter(gold_tokens)
    return sum(common.values()) / len(gold_tokens)
