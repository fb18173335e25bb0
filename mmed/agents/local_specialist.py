"""A specialist backed by a local policy (any model :func:`mmed.models.load_policy` loads).

The same prompt (:func:`mmed.agents.prompts.specialist_messages`) and parser
(:func:`mmed.agents.parsing.parse_choice`) as the API-backed specialists; generation is
batched through :class:`mmed.agents.generation.PolicyRunner` and run in a worker thread so
that the panel's async entry points stay responsive.

:func:`mmed.agents.build.specialist_factory` builds them through
:func:`mmed.agents.backends.make_specialist_factory`, so a local panel is cached and counted
like an API panel. Its cache key holds :func:`weights_fingerprint` of the weights it runs
with, so a model rebuilt or retrained in place never answers from another model's cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path
from typing import Any, Sequence

from .generation import PolicyRunner, SamplingParams
from .parsing import parse_choice
from .prompts import specialist_messages
from .specialists import Opinion, Specialist


#: files up to this size are fingerprinted by content, larger ones by (size, mtime)
_HASH_CONTENT_BYTES = 1 << 20


def weights_fingerprint(*sources: str | os.PathLike[str] | None) -> str:
    """SHA-256 hex identity of the weights of a local policy, for the cache key.

    Args:
        sources: the base model and any adapters (``PolicySource.base``, ``.adapters``);
            None entries are skipped. A local folder or file counts by its files' relative
            names and contents (files over 1 MiB, i.e. the weights, by size and
            modification time, so that a 7B checkpoint is not read); anything else (a Hub
            id) counts by its name only, so pin Hub revisions yourself.
    Returns:
        64 hex digits; the same files give the same value, a rebuilt or retrained model
        (new weight files) a new one.
    """
    h = hashlib.sha256()
    for src in sources:
        if src is None:
            continue
        p = Path(src)
        h.update(f"source\x1f{os.fspath(src)}\x1e".encode())
        if not p.exists():  # a Hub id
            continue
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
        for f in files:
            st = f.stat()
            rel = f.name if f == p else f.relative_to(p).as_posix()
            if st.st_size <= _HASH_CONTENT_BYTES:
                digest = hashlib.sha256(f.read_bytes()).hexdigest()
            else:
                digest = f"{st.st_size}:{st.st_mtime_ns}"
            h.update(f"{rel}\x1f{digest}\x1e".encode())
    return h.hexdigest()


class LocalModelSpecialist(Specialist):
    """A specialist whose opinions come from a local vision-language policy.

    Args:
        runner: the shared policy (several panel members may share one runner; they differ
            by persona, i.e. by prompt, and by sampling seed).
        specialty, panel_index, persona, seed: identity (see :class:`Specialist`).
        sampling: decoding settings; greedy by default, so members differ only by persona.
        style: prompt style.
        model: name recorded in opinions (default: the model's ``name_or_path``).
        weights: :func:`weights_fingerprint` of the weights the runner holds; added to
            :meth:`cache_key_fields` as ``weights`` (None: the key holds the model name only).
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
        weights: str | None = None,
    ):
        name = model or str(getattr(getattr(runner.model, "config", None), "_name_or_path", "local"))
        super().__init__(specialty, panel_index, persona, model=name, seed=seed)
        self.runner = runner
        self.sampling = sampling or SamplingParams(seed=seed)
        self.style = style
        self.weights = weights

    def cache_key_fields(self) -> dict[str, Any]:
        """:meth:`Specialist.cache_key_fields` plus ``weights`` when known."""
        out = super().cache_key_fields()
        if self.weights is not None:
            out["weights"] = self.weights
        return out

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
