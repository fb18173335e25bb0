"""Reward functions of MMedAgent-RL as TRL reward functions (paper §3).

The paper's reward is R = R_format + R_accuracy with R_format ∈ {0, 0.5} and
R_accuracy ∈ {0, 1}. TRL's ``GRPOTrainer`` takes the two terms as separate
``reward_funcs`` and sums them with ``GRPOConfig.reward_weights`` (default all 1), logging
each under ``rewards/<function __name__>/mean`` — so the terms stay separate in the logs
(``rewards/format_reward/mean``, ``rewards/triage_accuracy_reward/mean``) and their sum is
the paper's R. Use :func:`reward_funcs_for` to get the pair for an agent.

Calling convention (read from ``trl/trainer/grpo_trainer.py``, ``_calculate_rewards``):
each function is called as ``fn(prompts=..., completions=..., completion_ids=...,
**columns, trainer_state=..., log_extra=..., log_metric=...)``, where every dataset
column other than ``prompt`` arrives as a keyword holding one value per completion (rows
repeated ``num_generations`` times). When prompts are conversational, ``completions`` are
lists of messages ``[{"role": "assistant", "content": "..."}]``; otherwise strings. Both
are accepted here (:func:`completion_text`).

Decisions (each tested in ``tests/test_rewards.py``):

* Format needs ``<think>`` (reasoning with a letter or digit) followed by a non-empty
  ``<answer>``, each tag once, nothing but whitespace around
  (:func:`mmed.agents.parsing.has_valid_format`). An empty answer earns nothing: a tiny
  model rewarded for ``<answer></answer>`` learned to emit empty answers (docs/architecture.md#environment-facts).
* Accuracy reads only the single answer tag (:func:`~mmed.agents.parsing.parse_specialty`,
  :func:`~mmed.agents.parsing.parse_choice`): two answer tags, several specialties or
  options, a hedge, an empty or missing tag → 0; the right name only inside ``<think>`` →
  0; case is ignored (``radiologist`` = ``Radiologist``; ``Radiology`` counts too);
  multi-line reasoning is fine; text after ``</answer>`` does not change accuracy but
  costs the format term; an answer tag without ``<think>`` can earn accuracy (1.0) but not
  format.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from mmed.agents.parsing import has_valid_format, parse_choice, parse_specialty
from mmed.data.schema import SPECIALTIES

#: R_format for a well-formed completion (paper §3).
FORMAT_REWARD: float = 0.5
#: R_accuracy for a correct answer (paper §3).
ACCURACY_REWARD: float = 1.0


def completion_text(completion: Any) -> str:
    """The text of one TRL completion.

    Accepts a string, or a conversational completion: a list of messages whose last
    ``assistant`` message holds the text as a string or as ``[{"type": "text", "text":
    ...}]`` parts (joined without separator). Raises :class:`TypeError` for anything
    else (naming the type).
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, (list, tuple)):
        for msg in reversed(completion):
            if isinstance(msg, dict) and msg.get("role") == "assistant":
                content = msg.get("content")
                if content is None:
                    return ""
                if isinstance(content, str):
                    return content
                return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        raise TypeError("conversational completion has no assistant message")
    raise TypeError(f"completion must be a str or a list of messages, got {type(completion).__name__}")


def _column(kwargs: dict[str, Any], name: str, fn: str, n: int) -> list[Any]:
    """Dataset column ``name`` from TRL's reward kwargs, one value per completion."""
    if name not in kwargs or kwargs[name] is None:
        raise ValueError(f"{fn} needs the dataset column {name!r} (passed by TRL as a keyword); got {sorted(kwargs)}")
    values = list(kwargs[name])
    if len(values) != n:
        raise ValueError(f"{fn}: column {name!r} has {len(values)} values for {n} completions")
    return values


def format_reward(prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **kwargs: Any) -> list[float]:
    """R_format: :data:`FORMAT_REWARD` (0.5) per well-formed completion, else 0.0.

    Well-formed = :func:`mmed.agents.parsing.has_valid_format` (``<think>`` reasoning then
    a non-empty ``<answer>``, each once, in that order, only whitespace around).
    Returns one float per completion.
    """
    return [FORMAT_REWARD if has_valid_format(completion_text(c)) else 0.0 for c in completions]


def triage_accuracy_reward(
    prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **kwargs: Any
) -> list[float]:
    """R_accuracy of the triage doctor: 1.0 when the parsed specialty is the label.

    Reads the ``specialty`` column (docs/architecture.md#item-schema) from ``kwargs``; an optional
    ``specialties`` keyword (a sequence of names, not a column) overrides the candidate
    set (default :data:`SPECIALTIES`). Parsing: :func:`mmed.agents.parsing.parse_specialty`.

    Raises:
        ValueError: the ``specialty`` column is missing or of the wrong length, or a row's
            label is not a candidate specialty (naming the row).
    """
    specialties = tuple(kwargs.get("specialties") or SPECIALTIES)
    labels = _column(kwargs, "specialty", "triage_accuracy_reward", len(completions))
    rewards = []
    for row, (c, label) in enumerate(zip(completions, labels)):
        if label not in specialties:
            raise ValueError(f"triage_accuracy_reward: row {row} has specialty label {label!r}, not one of {specialties}")
        parsed = parse_specialty(completion_text(c), specialties)
        rewards.append(ACCURACY_REWARD if parsed.valid and parsed.value == label else 0.0)
    return rewards


def choice_accuracy_reward(
    prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **kwargs: Any
) -> list[float]:
    """R_accuracy of a multiple-choice agent (attending physician, specialists).

    1.0 when :func:`mmed.agents.parsing.parse_choice` of the completion over the row's
    ``options`` column gives the row's ``answer_idx``, else 0.0.

    Raises:
        ValueError: a column is missing or of the wrong length, or a row is an open
            question (``answer_idx`` −1 / no options) or has ``answer_idx`` outside its
            options (naming the row): this reward scores closed questions only.
    """
    n = len(completions)
    gold = _column(kwargs, "answer_idx", "choice_accuracy_reward", n)
    options = _column(kwargs, "options", "choice_accuracy_reward", n)
    rewards = []
    for row, (c, idx, opts) in enumerate(zip(completions, gold, options)):
        if not opts or not 0 <= int(idx) < len(opts):
            raise ValueError(
                f"choice_accuracy_reward: row {row} has answer_idx={idx} with {len(opts or [])} options; "
                "only closed questions can be scored"
            )
        parsed = parse_choice(completion_text(c), list(opts))
        rewards.append(ACCURACY_REWARD if parsed.valid and parsed.index == int(idx) else 0.0)
    return rewards


def reward_funcs_for(agent: str) -> list[Callable[..., list[float]]]:
    """The paper's reward terms for ``agent``, to pass as ``GRPOTrainer(reward_funcs=...)``.

    ``"triage"`` → ``[format_reward, triage_accuracy_reward]``; ``"attending"`` (and
    ``"specialist"``) → ``[format_reward, choice_accuracy_reward]``. With TRL's default
    ``reward_weights`` (all 1) the summed reward is R = R_format + R_accuracy ∈ {0, 0.5,
    1, 1.5}.

    Raises:
        ValueError: for another agent name.
    """
    table = {
        "triage": [format_reward, triage_accuracy_reward],
        "attending": [format_reward, choice_accuracy_reward],
        "specialist": [format_reward, choice_accuracy_reward],
    }
    if agent not in table:
        raise ValueError(f"unknown agent {agent!r}; expected one of {tuple(table)}")
    return list(table[agent])


def total_reward(agent: str, completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """R = R_format + R_accuracy per completion, outside TRL (evaluation, logging, tests).

    Same keyword columns as the reward functions of :func:`reward_funcs_for` ``(agent)``.
    """
    terms = [fn(prompts=None, completions=completions, **kwargs) for fn in reward_funcs_for(agent)]
    return [sum(vals) for vals in zip(*terms)]
