"""Answer parsing for every agent: strict, documented, never a lucky match
(docs/architecture.md#answers-parsing-and-normalisation).

Every agent answers as ``<think>reasoning</think><answer>final answer</answer>`` (the
DeepSeek-R1 / MMedAgent-RL output format, paper §3). This module turns that text into a
:class:`ParsedAnswer`. The rules, decided once and used by the pipeline, the metrics and
the GRPO rewards alike:

Tags
    * Tags are matched case-insensitively (``<ANSWER>`` = ``<answer>``) and exactly
      (``< answer >`` or ``<answer id=1>`` is no tag).
    * The text must hold **exactly one** ``<answer>`` and **exactly one** ``</answer>``,
      the opening one first. Two answer tags are invalid *even when they agree*
      (reason ``multiple_answer_tags``); a missing, unclosed or reversed tag is invalid
      (``missing_answer_tag`` / ``unbalanced_answer_tags``).
    * An answer tag inside a (balanced) ``<think>…</think>`` block is not an answer
      (``answer_inside_think``).
    * Nothing outside the answer tag is ever read: a letter or specialty name in the
      reasoning never counts.
    * Text **after** ``</answer>`` is ignored by the ``parse_*`` functions: the answer is
      committed when its tag closes, and a later revision outside the tag is not an
      answer (a second ``<answer>`` tag there makes the whole text invalid, above).
      :func:`has_valid_format` is stricter and allows only whitespace after it, so the
      format reward still penalises trailing text.
    * ``<think>`` is *not* required to parse an answer (the accuracy reward and the
      format reward are separate terms, paper §3: R = R_format + R_accuracy).
    * An answer whose content is empty or only whitespace is invalid (``empty_answer``).

Content (compared after :func:`normalize`, the surface form of ``mmed/data/answers.py``:
Unicode NFKC, case-folded, runs of whitespace collapsed, punctuation/quotes/brackets
stripped from both ends; articles and inner punctuation kept, because the letter forms
below read them)
    * A choice is valid when the content is *exactly* one option, written as its letter
      (``A``, ``(A)``, ``A.``, ``A:``, ``a``, ``Option A``, ``answer: A``, ``The answer is
      A``), as its letter followed by its own text (``A. yes``, ``A) yes``, ``(A) yes``),
      or as its text alone (``yes``, ``Yes.``, ``"YES"``).
    * Anything else is invalid: two options (``A or B``, ``A and C``, ``A, B``, ``yes or
      no``), a hedge (``maybe A``, ``A or possibly B``, ``not sure``), a letter followed
      by another option's text (``A. no`` when A is *yes*: ``letter_text_mismatch``), a
      letter beyond the options (``E`` of four: ``letter_out_of_range``), a letter inside
      a word (``Apple`` is not ``A``). The reasons ``multiple_answers`` / ``hedge`` /
      ``no_match`` are diagnostics only; validity never depends on guessing intent.
    * Letter-like option texts: when the content reads as one option by letter and as
      another by text (options ``["B", "A"]``, answer ``A``), it is ``ambiguous`` and
      invalid; ``A. B`` (letter + text) resolves it. Options that normalise to the same
      text can only be chosen by letter.
    * A specialty is valid when the content is exactly one specialty name, optionally
      with an article (``a Radiologist``), or its discipline (``Radiology`` counts for
      *Radiologist*, ``Surgery`` for *Surgeon*: :data:`SPECIALTY_ALIASES`); case and
      surrounding punctuation ignored. Several specialties are invalid.

Examples::

    >>> parse_choice("<think>bright lesion\\nso yes</think><answer>A</answer>", ["yes", "no"]).index
    0
    >>> parse_choice("<answer>(B) no</answer>", ["yes", "no"]).letter
    'B'
    >>> parse_choice("<answer>A or B</answer>", ["yes", "no"]).valid
    False
    >>> parse_specialty("<think>CT scan</think><answer>radiology.</answer>").value
    'Radiologist'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

from mmed.data.answers import canonical_text
from mmed.data.schema import OPTION_LETTERS, SPECIALTIES

#: Discipline names accepted for each specialty (case-insensitive), besides the name
#: itself: a model that answers "Radiology" means the Radiologist. Specialties outside
#: this table are matched by their name only.
SPECIALTY_ALIASES: dict[str, tuple[str, ...]] = {
    "Pathologist": ("pathology",),
    "Radiologist": ("radiology",),
    "Surgeon": ("surgery",),
    "Oncologist": ("oncology",),
    "Endocrinologist": ("endocrinology",),
    "Ophthalmologist": ("ophthalmology",),
    "Dermatologist": ("dermatology",),
}

#: Reason codes of :class:`ParsedAnswer` (``"ok"`` for a valid answer).
REASONS: tuple[str, ...] = (
    "ok",
    "missing_answer_tag",
    "multiple_answer_tags",
    "unbalanced_answer_tags",
    "answer_inside_think",
    "empty_answer",
    "multiple_answers",
    "hedge",
    "ambiguous",
    "letter_out_of_range",
    "letter_text_mismatch",
    "no_match",
)

_FLAGS = re.IGNORECASE | re.ASCII
_OPEN_ANSWER = re.compile(r"<answer>", _FLAGS)
_CLOSE_ANSWER = re.compile(r"</answer>", _FLAGS)
_OPEN_THINK = re.compile(r"<think>", _FLAGS)
_CLOSE_THINK = re.compile(r"</think>", _FLAGS)
_FORMAT = re.compile(r"\s*<think>(?P<think>.*)</think>\s*<answer>(?P<answer>.*)</answer>\s*", _FLAGS | re.DOTALL)

# Letter forms, applied to the content with whitespace collapsed and surrounding
# punctuation stripped ("(A)." -> "A"): optional prefix ("option", "answer:", "the
# answer is"), an optional opening bracket, ONE ASCII letter that is not the start of a
# word, an optional closing bracket / separator, then the rest (must be that option's text).
_LETTER = re.compile(
    r"(?:(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)(?:\s+is)?\s*[:\-]?\s*)?"
    r"[(\[]?(?P<letter>[a-z])[)\]]?"
    r"(?:(?:\s*[.:)\-]\s*|\s+)(?P<rest>.*))?",
    _FLAGS | re.DOTALL,
)
_ARTICLE = re.compile(r"(?:an?|the)\s+(?P<rest>.+)", _FLAGS | re.DOTALL)
_HEDGES = re.compile(
    r"\b(?:maybe|perhaps|possibly|probably|likely|unlikely|unsure|uncertain|not\s+sure|"
    r"could\s+be|might|either|or)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedAnswer:
    """The parsed final answer of one completion.

    Attributes:
        valid: True when the text holds exactly one well-formed answer that names exactly
            one candidate (module docstring).
        index: option index (``0`` = A) for :func:`parse_choice`, index into the
            specialties for :func:`parse_specialty`, ``None`` for free text or when
            invalid.
        letter: option letter (``"A"``..) for a valid choice, else ``None``.
        reason: ``"ok"`` or one of :data:`REASONS` saying why it is invalid.
        value: the canonical answer: the option text, the specialty name, or the
            normalised free text; ``None`` when invalid.
        content: the raw text inside the answer tag (``None`` when no single tag was
            found), for logging.
    """

    valid: bool
    index: Optional[int]
    letter: Optional[str]
    reason: str
    value: Optional[str] = None
    content: Optional[str] = None


#: The surface form of an answer (:func:`mmed.data.answers.canonical_text`, rules 1, 2, 3s):
#: NFKC, case-folded, whitespace collapsed, punctuation/format characters/backtick stripped
#: from both ends. ``normalize("  (A) Yes. ")`` -> ``"a) yes"``.
normalize = canonical_text


def extract_answer(text: str) -> tuple[Optional[str], str]:
    """The raw content of the single ``<answer>…</answer>`` of ``text``.

    Returns:
        ``(content, "ok")`` when there is exactly one opening and one closing answer tag,
        in that order, not inside a balanced ``<think>`` block; else ``(None, reason)``
        with reason ``missing_answer_tag`` / ``multiple_answer_tags`` /
        ``unbalanced_answer_tags`` / ``answer_inside_think``. Content may be empty (the
        caller decides). Never raises on a ``str``.
    """
    opens = list(_OPEN_ANSWER.finditer(text))
    closes = list(_CLOSE_ANSWER.finditer(text))
    if not opens and not closes:
        return None, "missing_answer_tag"
    if len(opens) > 1 or len(closes) > 1:
        return None, "multiple_answer_tags"
    if len(opens) != 1 or len(closes) != 1 or opens[0].end() > closes[0].start():
        return None, "unbalanced_answer_tags"
    start, end = opens[0].end(), closes[0].start()
    think_open = list(_OPEN_THINK.finditer(text))
    think_close = list(_CLOSE_THINK.finditer(text))
    if len(think_open) == 1 and len(think_close) == 1:
        t0, t1 = think_open[0].end(), think_close[0].start()
        if t0 <= opens[0].start() and closes[0].end() <= t1:
            return None, "answer_inside_think"
    return text[start:end], "ok"


def has_valid_format(text: str) -> bool:
    """The paper's format check (R_format, §3): ``<think>R</think><answer>A</answer>``.

    True when the text is, apart from surrounding whitespace, exactly one ``<think>``
    block followed by exactly one ``<answer>`` block (only whitespace between and after
    them; each tag exactly once; tags case-insensitive), where both the reasoning and the
    answer contain at least one letter or digit. An empty or punctuation-only answer
    fails: a tiny model rewarded for ``<answer></answer>`` learned to emit empty answers
    for the bonus alone (docs/architecture.md#environment-facts). Multi-line reasoning is fine. The answer's *content*
    is not checked against the options here (that is the accuracy term's job).

    >>> has_valid_format("<think>CT of the chest</think>\\n<answer>Radiologist</answer>")
    True
    >>> has_valid_format("<answer>Radiologist</answer>")
    False
    """
    for pattern in (_OPEN_THINK, _CLOSE_THINK, _OPEN_ANSWER, _CLOSE_ANSWER):
        if len(pattern.findall(text)) != 1:
            return False
    m = _FORMAT.fullmatch(text)
    if m is None:
        return False
    return _has_alnum(m.group("think")) and _has_alnum(m.group("answer"))


def think_text(text: str) -> Optional[str]:
    """The reasoning of a well-formed completion (:func:`has_valid_format`): the content of
    its ``<think>`` block, stripped; None when the completion is not well formed.

    >>> think_text("<think>Panel: B 2, C 1.</think><answer>B</answer>")
    'Panel: B 2, C 1.'
    >>> think_text("<answer>B</answer>") is None
    True
    """
    if not has_valid_format(text):
        return None
    return _FORMAT.fullmatch(text).group("think").strip()


def _has_alnum(s: str) -> bool:
    return any(ch.isalnum() for ch in s)


def _invalid(reason: str, content: Optional[str] = None) -> ParsedAnswer:
    return ParsedAnswer(False, None, None, reason, None, content)


def _diagnose(norm: str, candidates: dict[str, int]) -> str:
    """Why content matching no candidate is invalid (a diagnostic only).

    ``candidates`` maps normalised candidate texts (option texts, letters, specialty names
    and aliases) to the index they stand for. Returns ``multiple_answers`` when two
    different indices are named as whole words, else ``hedge`` when a hedge word
    (maybe, possibly, or, not sure, ...) occurs, else ``no_match``.
    """
    named = {i for c, i in candidates.items() if c and re.search(r"(?<!\w)" + re.escape(c) + r"(?!\w)", norm)}
    if len(named) > 1:
        return "multiple_answers"
    if _HEDGES.search(norm):
        return "hedge"
    return "no_match"


def parse_choice(text: str, options: Sequence[str]) -> ParsedAnswer:
    """Parse a multiple-choice answer (rules in the module docstring).

    Args:
        text: the model's completion (any string; never raises on it).
        options: the option texts, lettered A, B, ... in order (docs/architecture.md#item-schema); 1..26 of them.
    Returns:
        :class:`ParsedAnswer` with ``index``/``letter``/``value`` of the chosen option
        when valid.
    Raises:
        ValueError: when ``options`` is empty (an open question: use
            :func:`parse_free_text`) or has more than 26 entries.
        TypeError: when ``text`` is not a ``str``.

    >>> parse_choice("<answer>Option B</answer>", ["yes", "no"]).value
    'no'
    >>> parse_choice("<answer>A</answer>", ["B", "A"]).reason  # letter A vs text "A"
    'ambiguous'
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_choice: text must be a str, got {type(text).__name__}")
    options = list(options)
    if not options:
        raise ValueError("parse_choice: options is empty (an open question); use parse_free_text")
    if len(options) > len(OPTION_LETTERS):
        raise ValueError(f"parse_choice: {len(options)} options, at most {len(OPTION_LETTERS)} can be lettered")
    content, reason = extract_answer(text)
    if content is None:
        return _invalid(reason)
    norm = normalize(content)
    if not norm:
        return _invalid("empty_answer", content)
    norm_options = [normalize(o) for o in options]
    hits = {i for i, o in enumerate(norm_options) if o and o == norm}
    letter_reason = ""
    m = _LETTER.fullmatch(norm)
    if m is not None:
        idx = OPTION_LETTERS.index(m.group("letter").upper())
        rest = normalize(m.group("rest") or "")
        if idx >= len(options):
            letter_reason = "letter_out_of_range"
        elif rest and rest != norm_options[idx]:
            # "A. no" when A is "yes": a contradiction, reported as such when the rest is
            # another option's text; otherwise ("A or B") the diagnosis below decides
            letter_reason = "letter_text_mismatch" if rest in norm_options else "no_match"
        else:
            hits.add(idx)
    if len(hits) == 1:
        (idx,) = hits
        return ParsedAnswer(True, idx, OPTION_LETTERS[idx], "ok", options[idx], content)
    if len(hits) > 1:
        return _invalid("ambiguous", content)
    keyed = {o: i for i, o in enumerate(norm_options)}
    keyed.update({OPTION_LETTERS[i].lower(): i for i in range(len(options))})
    why = _diagnose(norm, keyed)
    if letter_reason == "letter_text_mismatch" or (why == "no_match" and letter_reason):
        why = letter_reason
    return _invalid(why, content)


def parse_specialty(text: str, specialties: Sequence[str] = SPECIALTIES) -> ParsedAnswer:
    """Parse the triage doctor's specialty (rules in the module docstring).

    Accepted content (case-insensitive, surrounding punctuation ignored): a specialty name
    (``Radiologist``), with an article (``a radiologist``, ``the Radiologist``), or its
    discipline from :data:`SPECIALTY_ALIASES` (``Radiology``). Several specialties
    (``Radiologist or Pathologist``, ``Radiologist, Surgeon``), a hedge, an empty or a
    missing tag → invalid; a name only inside ``<think>`` never counts.

    Args:
        text: the completion (any string).
        specialties: candidate names (default the paper's seven, :data:`SPECIALTIES`).
    Returns:
        :class:`ParsedAnswer` with ``index`` into ``specialties`` and ``value`` the name.
    Raises:
        ValueError: when ``specialties`` is empty or two of them (or their aliases)
            normalise to the same text.
        TypeError: when ``text`` is not a ``str``.

    >>> parse_specialty("<think>fundus photo</think><answer>Ophthalmologist</answer>").index
    5
    >>> parse_specialty("<answer>Radiologist, Surgeon</answer>").reason
    'multiple_answers'
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_specialty: text must be a str, got {type(text).__name__}")
    table = _specialty_table(tuple(specialties))
    content, reason = extract_answer(text)
    if content is None:
        return _invalid(reason)
    norm = normalize(content)
    if not norm:
        return _invalid("empty_answer", content)
    m = _ARTICLE.fullmatch(norm)
    for key in (norm, normalize(m.group("rest")) if m else None):
        if key is not None and key in table:
            idx = table[key]
            return ParsedAnswer(True, idx, None, "ok", specialties[idx], content)
    return _invalid(_diagnose(norm, table), content)


_TABLES: dict[tuple[str, ...], dict[str, int]] = {}


def _specialty_table(specialties: tuple[str, ...]) -> dict[str, int]:
    """normalised name or alias → index; cached per specialty tuple."""
    if specialties in _TABLES:
        return _TABLES[specialties]
    if not specialties:
        raise ValueError("parse_specialty: specialties is empty")
    table: dict[str, int] = {}
    for i, name in enumerate(specialties):
        for key in (name, *SPECIALTY_ALIASES.get(name, ())):
            k = normalize(key)
            if not k or (k in table and table[k] != i):
                raise ValueError(f"parse_specialty: specialty {name!r} normalises to {k!r}, empty or already taken")
            table[k] = i
    _TABLES[specialties] = table
    return table


def parse_free_text(text: str) -> ParsedAnswer:
    """Parse an open-question answer: the single answer tag's content, normalised.

    Same tag rules as :func:`parse_choice`; ``value`` is :func:`normalize` of the content
    (``"<answer> Left  Lung. </answer>"`` → ``"left lung"``); ``index``/``letter`` are
    ``None``. Empty or punctuation-only content → invalid (``empty_answer``). Open
    questions are scored apart by exact match and token recall (docs/architecture.md#closed-first).

    Raises:
        TypeError: when ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_free_text: text must be a str, got {type(text).__name__}")
    content, reason = extract_answer(text)
    if content is None:
        return _invalid(reason)
    norm = normalize(content)
    if not norm:
        return _invalid("empty_answer", content)
    return ParsedAnswer(True, None, None, "ok", norm, content)
