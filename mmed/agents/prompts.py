"""Prompts of the three agents as chat messages (paper §3; docs/architecture.md#one-consultation).

Every builder returns messages in the conversational format that Qwen2.5-VL's chat
template and TRL's ``GRPOTrainer`` / ``SFTTrainer`` accept::

    [{"role": "system", "content": [{"type": "text", "text": ...}]},
     {"role": "user", "content": [{"type": "image"}, ..., {"type": "text", "text": ...}]}]

with one ``{"type": "image"}`` placeholder per image of the item, in the order of
``item["images"]``; the images themselves travel beside the messages (TRL fills the
placeholders from the dataset's ``images`` column; the processor takes ``images=``).

Two styles, chosen by configuration, one code path:

* ``"compact"`` — a few dozen tokens of instructions, for the tiny offline models of the
  ``smoke``/``demo`` profiles (contexts of a few hundred tokens);
* ``"full"`` — explicit role, task and output instructions, for Qwen2.5-VL-7B and the
  OpenAI-compatible specialists of the ``paper`` profile.

Every prompt asks for the output format that :mod:`mmed.agents.parsing` checks:
reasoning in ``<think>…</think>``, then the final answer alone in ``<answer>…</answer>``.
Open questions (no options) ask for a short free-text answer.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional, Sequence

from mmed.data.schema import OPTION_LETTERS, SPECIALTIES, item_field, option_letter

from .parsing import parse_free_text

#: Accepted values of the ``style`` argument.
PROMPT_STYLES: tuple[str, ...] = ("compact", "full")

#: Personas of the specialists, several per specialty so that a panel of K members of one
#: specialty differs (the specialist cache keys on the persona index, docs/architecture.md#specialist-cache). Index
#: ``persona_idx % len(PERSONAS[specialty])``.
PERSONAS: dict[str, tuple[str, ...]] = {
    "Pathologist": (
        "a surgical pathologist who reads H&E slides every day",
        "a cytopathologist careful about cell morphology",
        "a molecular pathologist who also interprets immunohistochemistry",
        "a senior pathologist who double-checks subtle findings",
    ),
    "Radiologist": (
        "a neuroradiologist experienced in CT and MRI of the head",
        "a body radiologist who reads chest and abdominal imaging",
        "an emergency radiologist who reads X-rays systematically",
        "a senior radiologist who double-checks subtle findings",
    ),
    "Surgeon": (
        "a general surgeon experienced in laparoscopy",
        "a gastrointestinal surgeon who reads endoscopy images",
        "a trauma surgeon who decides quickly from the surgical field",
        "a senior surgeon who double-checks subtle findings",
    ),
    "Oncologist": (
        "a medical oncologist who stages tumours on PET-CT",
        "a radiation oncologist who delineates lesions on scans",
        "a surgical oncologist focused on tumour margins",
        "a senior oncologist who double-checks subtle findings",
    ),
    "Endocrinologist": (
        "an endocrinologist who reads thyroid ultrasound",
        "an endocrinologist focused on adrenal and pituitary imaging",
        "a diabetologist experienced in metabolic complications",
        "a senior endocrinologist who double-checks subtle findings",
    ),
    "Ophthalmologist": (
        "a retina specialist who reads fundus photographs and OCT",
        "a glaucoma specialist who inspects the optic disc",
        "a paediatric ophthalmologist who screens for retinopathy",
        "a senior ophthalmologist who double-checks subtle findings",
    ),
    "Dermatologist": (
        "a dermatologist experienced in dermoscopy of pigmented lesions",
        "a dermato-oncologist who screens for melanoma",
        "a general dermatologist who reads clinical skin photographs",
        "a senior dermatologist who double-checks subtle findings",
    ),
}

_TAG = re.compile(r"</?\s*(?:think|answer)\s*>", re.IGNORECASE)
_THINK = re.compile(r"<think>(.*?)</think>", re.IGNORECASE | re.DOTALL)

#: Rationale characters quoted per opinion in the attending prompt, per style.
RATIONALE_CHARS: dict[str, int] = {"compact": 0, "full": 300}


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------
def _item_parts(item: Any) -> tuple[str, list[str], int]:
    """(question, options, number of images) of an item row/dict/``Item``, validated."""
    where = f"item {_field_or(item, 'id', '?')!r}"
    question = item_field(item, "question", where)
    options = list(item_field(item, "options", where) or [])
    images = item_field(item, "images", where)
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"{where}: field 'question' is empty")
    if images is None or len(images) == 0:
        raise ValueError(f"{where}: field 'images' is empty; every prompt shows the item's image(s)")
    if len(options) > len(OPTION_LETTERS):
        raise ValueError(f"{where}: field 'options' has {len(options)} entries, at most {len(OPTION_LETTERS)}")
    return question.strip(), [str(o) for o in options], len(images)


def _field_or(obj: Any, name: str, default: Any) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _check_style(style: str) -> None:
    if style not in PROMPT_STYLES:
        raise ValueError(f"prompt style {style!r} is not one of {PROMPT_STYLES}")


def _messages(system: str, user: str, n_images: int) -> list[dict[str, Any]]:
    """System + user turn; ``n_images`` image placeholders precede the user text."""
    return [
        {"role": "system", "content": [{"type": "text", "text": system}]},
        {"role": "user", "content": [*({"type": "image"} for _ in range(n_images)), {"type": "text", "text": user}]},
    ]


def format_options(options: Sequence[str]) -> str:
    """Lettered options, one per line: ``["yes", "no"]`` → ``"A. yes\\nB. no"`` (docs/architecture.md#item-schema)."""
    return "\n".join(f"{option_letter(i)}. {o}" for i, o in enumerate(options))


def choice_answer_text(index: int, options: Sequence[str], with_text: bool = True) -> str:
    """The answer-tag content naming option ``index``: ``"A. yes"`` (or ``"A"``).

    The letter + text form is what :func:`templated_completion` targets use: it parses
    back to ``index`` even when option texts look like letters (``parse_choice`` docs).

    Raises:
        ValueError: when ``index`` is outside ``options``.
    """
    if not 0 <= index < len(options):
        raise ValueError(f"option index {index} outside the {len(options)} options")
    return f"{option_letter(index)}. {options[index]}" if with_text else option_letter(index)


def specialist_persona(specialty: str, persona_idx: int = 0) -> str:
    """Persona text of panel member ``persona_idx`` of ``specialty`` (wraps around).

    Raises:
        ValueError: for a specialty without personas (not in :data:`PERSONAS`) or a
            negative ``persona_idx``.
    """
    if specialty not in PERSONAS:
        raise ValueError(f"no personas for specialty {specialty!r}; known: {tuple(PERSONAS)}")
    if persona_idx < 0:
        raise ValueError(f"persona_idx must be >= 0, got {persona_idx}")
    personas = PERSONAS[specialty]
    return personas[persona_idx % len(personas)]


def opinion_rationale(raw: str, max_chars: int) -> str:
    """The first ``<think>`` content of ``raw``, whitespace collapsed, cut to ``max_chars``.

    Returns ``""`` when ``max_chars <= 0`` or there is no ``<think>`` block; a cut
    rationale ends with ``"…"``.
    """
    if max_chars <= 0 or not isinstance(raw, str):
        return ""
    m = _THINK.search(raw)
    if m is None:
        return ""
    text = " ".join(m.group(1).split())
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


# ----------------------------------------------------------------------------------------
# the three agents
# ----------------------------------------------------------------------------------------
def triage_messages(item: Any, specialties: Sequence[str] = SPECIALTIES, style: str = "full") -> list[dict[str, Any]]:
    """Prompt of the triage doctor (paper §3): which specialty should see this case?

    Args:
        item: a dataset row, dict or :class:`mmed.data.schema.Item` with ``question``,
            ``options`` and ``images`` (docs/architecture.md#item-schema).
        specialties: the candidate specialties, listed in this order.
        style: ``"compact"`` or ``"full"`` (module docstring).
    Returns:
        system + user messages, the user turn holding one image placeholder per image.
        The expected completion is ``<think>…</think><answer>Specialty</answer>``, parsed
        by :func:`mmed.agents.parsing.parse_specialty`.
    Raises:
        ValueError: an empty question or no images (message names the item id), an
            unknown style, or empty ``specialties``.
    """
    _check_style(style)
    if not specialties:
        raise ValueError("triage_messages: specialties is empty")
    question, _, n_images = _item_parts(item)
    names = ", ".join(specialties)
    if style == "compact":
        system = "You are a triage doctor."
        user = f"{question}\nWhich specialist: {names}?\n<think>why</think><answer>specialist</answer>"
    else:
        system = (
            "You are the triage doctor of a hospital. You look at a medical image and the question "
            "asked about it, and you decide which specialist should answer."
        )
        user = (
            f"Question: {question}\n"
            f"Which specialist should answer this question about the image? Choose exactly one of: {names}.\n"
            "First reason briefly about the imaging modality inside <think></think>, then give only the "
            "specialist's name inside <answer></answer>."
        )
    return _messages(system, user, n_images)


def specialist_messages(item: Any, specialty: str, persona_idx: int = 0, style: str = "full") -> list[dict[str, Any]]:
    """Prompt of one specialist of the panel (paper §3): answer the question.

    Args:
        item: the item (see :func:`triage_messages`). Closed items list their options as
            ``A. yes`` lines and ask for the letter; open items ask for a short answer.
        specialty: the panel's specialty (a key of :data:`PERSONAS`).
        persona_idx: panel position; selects the persona (wraps around after
            ``len(PERSONAS[specialty])``), so a panel of K members differs.
        style: ``"compact"`` or ``"full"``.
    Returns:
        system + user messages; completion parsed by
        :func:`mmed.agents.parsing.parse_choice` (closed) or ``parse_free_text`` (open).
    Raises:
        ValueError: bad item fields (naming the item id), unknown specialty or style.
    """
    _check_style(style)
    persona = specialist_persona(specialty, persona_idx)
    question, options, n_images = _item_parts(item)
    if style == "compact":
        system = f"You are {persona}."
        if options:
            user = f"{question}\n{format_options(options)}\n<think>why</think><answer>letter</answer>"
        else:
            user = f"{question}\n<think>why</think><answer>short answer</answer>"
    else:
        system = f"You are {persona}. You are one of several {specialty}s consulted on this case."
        if options:
            user = (
                f"Question: {question}\nOptions:\n{format_options(options)}\n"
                "Examine the image, reason step by step inside <think></think>, then give only the letter "
                "of your answer inside <answer></answer>."
            )
        else:
            user = (
                f"Question: {question}\n"
                "Examine the image, reason step by step inside <think></think>, then give only a short "
                "answer (a few words) inside <answer></answer>."
            )
    return _messages(system, user, n_images)


def _describe_opinion(op: Any, k: int, options: Sequence[str], max_chars: int) -> str:
    """One line of the attending prompt: ``"2. Radiologist: B. no (because ...)"``."""
    where = f"opinion {k}"
    specialty = item_field(op, "specialty", where)
    parsed = item_field(op, "parsed", where)
    valid = bool(item_field(op, "valid", where))
    abstained = bool(item_field(op, "abstained", where))
    raw = item_field(op, "raw", where) or ""
    if abstained:
        answer = "abstained"
    elif not valid:
        answer = "no valid answer"
    elif options:
        if not isinstance(parsed, int) or isinstance(parsed, bool) or not 0 <= parsed < len(options):
            raise ValueError(f"{where}: valid opinion has parsed={parsed!r}, expected an index into {len(options)} options")
        answer = f"{option_letter(parsed)}. {options[parsed]}"
    else:
        answer = parse_free_text(raw).value or "no valid answer"
    line = f"{k}. {specialty}: {answer}"
    why = opinion_rationale(raw, max_chars) if valid and not abstained else ""
    return f"{line} (because {why})" if why else line


def attending_messages(
    item: Any,
    opinions: Sequence[Any],
    style: str = "full",
    max_rationale_chars: Optional[int] = None,
) -> list[dict[str, Any]]:
    """Prompt of the attending physician (paper §3): integrate the panel, answer.

    Args:
        item: the item (see :func:`triage_messages`).
        opinions: the panel's opinions, dicts or objects (e.g. ``mmed.agents.specialists
            .Opinion``) with ``specialty``, ``parsed`` (option index or None), ``valid``,
            ``abstained`` and ``raw`` (the specialist's text, whose ``<think>`` content is
            quoted as its rationale). Each becomes one numbered line: specialty, answer
            letter + text (or "abstained" / "no valid answer"), short rationale. May be
            empty (the "w/o specialists" ablation): the prompt then says so.
        style: ``"compact"`` or ``"full"``.
        max_rationale_chars: rationale characters quoted per opinion; None → the style's
            default (:data:`RATIONALE_CHARS`: none in compact, 300 in full).
    Returns:
        system + user messages; completion parsed like a specialist's.
    Raises:
        ValueError: bad item fields, an opinion missing a field (naming its number), a
            valid opinion whose ``parsed`` is not an option index, or an unknown style.
    """
    _check_style(style)
    question, options, n_images = _item_parts(item)
    max_chars = RATIONALE_CHARS[style] if max_rationale_chars is None else max_rationale_chars
    lines = [_describe_opinion(op, k, options, max_chars) for k, op in enumerate(opinions, start=1)]
    panel = "\n".join(lines) if lines else "(no specialist opinions)"
    if style == "compact":
        system = "You are the attending physician."
        ask = "<think>why</think><answer>letter</answer>" if options else "<think>why</think><answer>short answer</answer>"
        opts = f"\n{format_options(options)}" if options else ""
        user = f"{question}{opts}\nOpinions:\n{panel}\n{ask}"
    else:
        system = (
            "You are the attending physician. Specialists have examined the case; you make the final "
            "decision. Their opinions may be wrong, even when they agree: check them against the image."
        )
        opts = f"Options:\n{format_options(options)}\n" if options else ""
        final = "only the letter of the final answer" if options else "only a short final answer (a few words)"
        user = (
            f"Question: {question}\n{opts}Specialist opinions:\n{panel}\n"
            f"Weigh the opinions against the image inside <think></think>, then give {final} inside "
            "<answer></answer>."
        )
    return _messages(system, user, n_images)


# ----------------------------------------------------------------------------------------
# logging and cold-start targets
# ----------------------------------------------------------------------------------------
def render_prompt_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """Plain text of chat messages for logs: ``[role]`` headers, ``<image>`` per image part.

    Accepts string contents or lists of ``{"type": "text"|"image", ...}`` parts.

    Raises:
        ValueError: a message without ``role``, or a content part of another type.
    """
    out: list[str] = []
    for i, msg in enumerate(messages):
        if "role" not in msg:
            raise ValueError(f"message {i} has no 'role'")
        out.append(f"[{msg['role']}]")
        content = msg.get("content", "")
        if isinstance(content, str):
            out.append(content)
            continue
        for part in content:
            kind = part.get("type")
            if kind == "text":
                out.append(part.get("text", ""))
            elif kind == "image":
                out.append("<image>")
            else:
                raise ValueError(f"message {i}: content part of unknown type {kind!r}")
    return "\n".join(out)


def templated_completion(answer_text: str, reasoning: str = "I look at the image and the question.") -> str:
    """A well-formed target ``<think>reasoning</think><answer>answer_text</answer>``.

    Used for the cold-start SFT targets (:mod:`mmed.rl.sft`); the result satisfies
    :func:`mmed.agents.parsing.has_valid_format`, and ``parse_choice`` /
    ``parse_specialty`` read ``answer_text`` back (use :func:`choice_answer_text` for
    choices). Both parts are stripped of surrounding whitespace.

    Raises:
        ValueError: when either part has no letter or digit, or contains a
            ``<think>``/``<answer>`` tag (it would break the format).
    """
    answer_text, reasoning = answer_text.strip(), reasoning.strip()
    for name, part in (("answer_text", answer_text), ("reasoning", reasoning)):
        if not any(ch.isalnum() for ch in part):
            raise ValueError(f"templated_completion: {name} {part!r} has no letter or digit")
        if _TAG.search(part):
            raise ValueError(f"templated_completion: {name} {part!r} contains a think/answer tag")
    return f"<think>{reasoning}</think><answer>{answer_text}</answer>"
