"""A specialist backed by a local policy (any model :func:`mmed.models.load_policy` loads).

The same prompt (:func:`mmed.agents.prompts.specialist_messages`) and parser
(:func:`mmed.agents.parsing.parse_choice`) as the API-backed specialists; generation is
batched through :class:`mmed.agents.generation.PolicyRunner` and run in a worker thread so
that the panel's async entry points stay responsive.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Sequence

from .generation import PolicyRunner, SamplingParams
from .parsing import parse_choice
from .prompts import specialist_messages
from .specialists import Opinion, Specialist


class LocalModelSpecialist(Specialist):
    """A specialist whose opinions come from a local vision-language policy.

    Args:
        runner: the shared policy (several panel members may share one runner; they differ
            by persona, i.e. by prompt, and by sampling seed).
        specialty, panel_index, persona, seed: identity (see :class:`Specialist`).
        sampling: decoding settings; greedy by default, so members differ only by persona.
        style: prompt style.
        model: name recorded in opinions (default: the model's ``name_or_path``).
    """

    backend = "local"

    def __init__(
        self,
        runner: PolicyRunner,
        specialty: str,
        panel_index: int = 0,
        persona: int | None = None,
        seed: int = 0,
        sampling: SamplingParams | None = None,
        style: str = "compact",
        model: str | None = None,
    ):
        name = model or str(getattr(getattr(runner.model, "config", None), "_name_or_path", "local"))
        super().__init__(specialty, panel_index, persona, model=name, seed=seed)
        self.runner = runner
        self.sampling = sampling or SamplingParams(seed=seed)
        self.style = style

    def sampling_params(self) -> dict[str, Any]:
        s = self.sampling
        return {"temperature": s.temperature, "top_p": s.top_p, "max_new_tokens": s.max_new_tokens, "style": self.style}

    def opine_sync(self, items: Sequence[Any]) -> list[Opinion]:
        """Blocking batched opinions on ``items`` (open items are answered, parsed=None)."""
        t0 = time.perf_counter()
        msgs = [specialist_messages(it, self.specialty, self.persona, style=self.style) for it in items]
        imgs = [list(it["images"]) for it in items]
        raws = [r[0] for r in self.runner.generate(msgs, imgs, self.sampling, progress=False)]
        dt = (time.perf_counter() - t0) / max(1, len(items))
        out = []
        for it, raw in zip(items, raws):
            p = parse_choice(raw, list(it["options"] or [])) if it["options"] else None
            ok = bool(p and p.valid)
            out.append(
                Opinion(
                    item_id=str(it["id"]), specialist_id=self.specialist_id, specialty=self.specialty,
                    backend=self.backend, model=self.model, raw=raw, parsed=p.index if ok else None,
                    valid=ok, latency_s=dt,
                )
            )
        return out

    async def aopine_batch(self, items: Sequence[Any]) -> list[Opinion]:
        return await asyncio.to_thread(self.opine_sync, list(items))
