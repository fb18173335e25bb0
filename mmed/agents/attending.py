"""The attending physician (paper §3): read the image, the question and the specialists'
opinions, give the final answer.

:class:`AttendingPhysician` wraps a policy; :meth:`decide` gives one (greedy by default)
answer per item, :meth:`sample` draws ``n`` answers per item in one batched
``generate`` call with ``num_return_sequences = n`` (test-time scaling, paper §5).
With ``opinions=[]`` it answers alone (the "w/o specialists" ablation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from .generation import PolicyRunner, SamplingParams
from .parsing import parse_choice, parse_free_text
from .prompts import attending_messages


@dataclass
class AttendingDecision:
    """The attending's answer to one item.

    Attributes:
        raw: the completion text.
        parsed: the option index for closed items, the normalised free text for open ones;
            ``None`` when invalid.
        valid: whether ``raw`` held exactly one well-formed answer.
        reason: the parser's reason (``"ok"`` or why it is invalid).
    """

    raw: str | None
    parsed: int | str | None
    valid: bool
    reason: str = "ok"

    def to_record(self) -> dict[str, Any]:
        """The ``attending`` field of a ``predictions.jsonl`` record (docs/architecture.md#predictions)."""
        return asdict(self)


def parse_attending(raw: str, item: Any) -> AttendingDecision:
    """Parse a completion against an item: ``parse_choice`` for closed items (options),
    ``parse_free_text`` for open ones."""
    options = list(item["options"] or [])
    if options:
        p = parse_choice(raw, options)
        return AttendingDecision(raw, p.index if p.valid else None, p.valid, p.reason)
    p = parse_free_text(raw)
    return AttendingDecision(raw, p.value if p.valid else None, p.valid, p.reason)


class AttendingPhysician:
    """The attending policy.

    Args:
        runner: the policy (tiny Qwen2.5-VL or Qwen2.5-VL-7B, LoRA adapters applied).
        sampling: decoding settings for :meth:`decide` (greedy by default).
        style: prompt style (``"compact"`` for tiny models).
        max_rationale_chars: rationale characters quoted per opinion (None: the style's).
    """

    def __init__(
        self,
        runner: PolicyRunner,
        sampling: SamplingParams | None = None,
        style: str = "compact",
        max_rationale_chars: int | None = None,
    ):
        self.runner = runner
        self.sampling = sampling or SamplingParams()
        self.style = style
        self.max_rationale_chars = max_rationale_chars

    def messages(self, item: Any, opinions: Sequence[Any]) -> list[dict]:
        """The chat prompt for one item and its panel's opinions."""
        return attending_messages(item, opinions, style=self.style, max_rationale_chars=self.max_rationale_chars)

    def decide(self, items: Sequence[Any], opinions: Sequence[Sequence[Any]], progress: bool = True) -> list[AttendingDecision]:
        """One decision per item. ``opinions[i]`` are the opinions on ``items[i]`` (may be empty).

        Raises:
            ValueError: ``len(opinions) != len(items)``.
        """
        return [d[0] for d in self._run(items, opinions, self.sampling, progress)]

    def sample(
        self, items: Sequence[Any], opinions: Sequence[Sequence[Any]], n: int, temperature: float = 1.0,
        top_p: float = 1.0, seed: int = 0, progress: bool = True,
    ) -> list[list[AttendingDecision]]:
        """``n`` sampled decisions per item (``num_return_sequences = n``, temperature > 0)."""
        sp = SamplingParams(
            max_new_tokens=self.sampling.max_new_tokens, temperature=temperature, top_p=top_p, num_return_sequences=n, seed=seed
        )
        return self._run(items, opinions, sp, progress)

    def _run(self, items, opinions, sampling, progress) -> list[list[AttendingDecision]]:
        if len(opinions) != len(items):
            raise ValueError(f"{len(opinions)} opinion lists for {len(items)} items")
        msgs = [self.messages(it, ops) for it, ops in zip(items, opinions)]
        imgs = [list(it["images"]) for it in items]
        raws = self.runner.generate(msgs, imgs, sampling, progress=progress)
        return [[parse_attending(r, it) for r in rs] for it, rs in zip(items, raws)]
