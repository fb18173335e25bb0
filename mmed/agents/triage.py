"""The triage doctor (paper §3): route a case to one of the seven specialties.

:class:`TriageDoctor` has four modes, one class for every experiment:

- ``"model"`` — a vision-language policy reads the image + question and answers a
  specialty inside ``<answer>``; an invalid answer is replaced by the configured
  ``fallback`` (a specialty name or ``"random"``) and counted (``fallback=True``);
- ``"gold"`` — the item's labelled specialty (perfect triage; also how training strata are
  built, docs/architecture.md#stratification);
- ``"fixed"`` — one specialty for every item (the "w/o triage" ablation and the static
  MDAgents-style baseline; on VQA-RAD a fixed Radiologist equals perfect triage);
- ``"random"`` — a uniform specialty per item, seeded by item id (the other "w/o triage").
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from ..data.schema import SPECIALTIES
from .generation import PolicyRunner, SamplingParams
from .parsing import parse_specialty
from .prompts import triage_messages

TRIAGE_MODES: tuple[str, ...] = ("model", "gold", "fixed", "random")


@dataclass
class TriageDecision:
    """The triage of one item.

    Attributes:
        specialty: the specialty the case is sent to (after any fallback).
        raw: the policy's completion (``None`` outside ``"model"`` mode).
        parsed: the specialty parsed from ``raw`` (``None`` when invalid or not a model).
        valid: whether ``raw`` held exactly one specialty in a well-formed ``<answer>``
            (always True for gold/fixed/random).
        fallback: True when ``raw`` was invalid and ``specialty`` is the fallback.
        mode: one of :data:`TRIAGE_MODES`.
    """

    specialty: str
    raw: str | None
    parsed: str | None
    valid: bool
    fallback: bool
    mode: str

    def to_record(self) -> dict[str, Any]:
        """The ``triage`` field of a ``predictions.jsonl`` record (docs/architecture.md#predictions)."""
        return asdict(self)


def _seeded_choice(seed: int, key: str, choices: Sequence[str]) -> str:
    h = hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8).digest()
    return choices[int.from_bytes(h, "big") % len(choices)]


class TriageDoctor:
    """Routes items to specialties.

    Args:
        runner: the policy (required in ``"model"`` mode, ignored otherwise).
        mode: one of :data:`TRIAGE_MODES`.
        fixed_specialty: the specialty for ``"fixed"`` mode.
        fallback: a specialty, or ``"random"``, used when the policy's answer is invalid.
        seed: seed of ``"random"`` mode and of a random fallback (per item id).
        sampling: decoding settings (greedy by default).
        style: prompt style (``"compact"`` for tiny models, ``"full"`` otherwise).
    Raises:
        ValueError: unknown mode, a missing runner in model mode, an unknown specialty.
    """

    def __init__(
        self,
        runner: PolicyRunner | None = None,
        mode: str = "model",
        fixed_specialty: str | None = None,
        fallback: str = "random",
        seed: int = 0,
        sampling: SamplingParams | None = None,
        style: str = "compact",
    ):
        if mode not in TRIAGE_MODES:
            raise ValueError(f"triage mode {mode!r} not in {TRIAGE_MODES}")
        if mode == "model" and runner is None:
            raise ValueError("triage mode 'model' needs a PolicyRunner")
        if mode == "fixed" and fixed_specialty not in SPECIALTIES:
            raise ValueError(f"fixed_specialty {fixed_specialty!r} not in {SPECIALTIES}")
        if fallback != "random" and fallback not in SPECIALTIES:
            raise ValueError(f"fallback {fallback!r} must be 'random' or one of {SPECIALTIES}")
        self.runner, self.mode, self.fixed_specialty = runner, mode, fixed_specialty
        self.fallback, self.seed = fallback, int(seed)
        self.sampling = sampling or SamplingParams()
        self.style = style

    def describe(self) -> dict[str, Any]:
        """Settings for the run manifest."""
        return {"mode": self.mode, "fixed_specialty": self.fixed_specialty, "fallback": self.fallback, "seed": self.seed}

    def _fallback(self, item_id: str) -> str:
        if self.fallback == "random":
            return _seeded_choice(self.seed, f"fallback/{item_id}", SPECIALTIES)
        return self.fallback

    def route(self, items: Sequence[Any], progress: bool = True) -> list[TriageDecision]:
        """One :class:`TriageDecision` per item, in order.

        Items are dataset rows/dicts with the schema fields (``id``, ``images``,
        ``question``; ``specialty`` in gold mode).

        Raises:
            KeyError: gold mode on an item without ``specialty``.
        """
        if self.mode == "gold":
            return [TriageDecision(it["specialty"], None, None, True, False, "gold") for it in items]
        if self.mode == "fixed":
            return [TriageDecision(self.fixed_specialty, None, None, True, False, "fixed") for _ in items]
        if self.mode == "random":
            return [
                TriageDecision(_seeded_choice(self.seed, f"random/{it['id']}", SPECIALTIES), None, None, True, False, "random")
                for it in items
            ]
        msgs = [triage_messages(it, style=self.style) for it in items]
        imgs = [list(it["images"]) for it in items]
        raws = [r[0] for r in self.runner.generate(msgs, imgs, self.sampling, progress=progress)]
        out = []
        for it, raw in zip(items, raws):
            p = parse_specialty(raw)
            if p.valid:
                out.append(TriageDecision(p.value, raw, p.value, True, False, "model"))
            else:
                out.append(TriageDecision(self._fallback(str(it["id"])), raw, None, False, True, "model"))
        return out
