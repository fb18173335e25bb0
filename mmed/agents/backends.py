"""Choosing the specialist backend: the ``--specialists`` spec and the panel factory (with the
specialist cache and the per-run accounting of :mod:`mmed.agents.cache`).

- :func:`parse_specialist_spec` turns a command-line spec into overrides of a profile's
  ``specialists`` section::

      simulated                              the simulated panel
      openai:gpt-4o                          OpenAI's API (key in $OPENAI_API_KEY)
      openai:<model>@<base_url>              any OpenAI-compatible server, e.g.
      openai:llama3.2-vision@http://127.0.0.1:11434/v1        (Ollama)
      openai:Qwen/Qwen2.5-VL-7B-Instruct@http://127.0.0.1:8000/v1   (vLLM)
      local:<model path or Hub id>           a local policy (mmed.agents.local_specialist)

  Use it as ``load_profile(name, overrides={"specialists": parse_specialist_spec(spec)})``
  or :func:`apply_specialist_spec`.
- :func:`make_specialist_factory` returns a :class:`SpecialistFactory`, the
  ``(specialty, panel_index) -> Specialist`` callable that
  :func:`mmed.agents.specialists.make_panel` and the pipeline's panel bank take. Every
  specialist it builds is wrapped in :class:`mmed.agents.cache.CachedSpecialist`, so the
  run's calls, cache hits, errors, tokens and cost are summed in one
  :class:`~mmed.agents.cache.SpecialistStats` (``factory.stats()`` → ``metrics.json``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from ..config import SpecialistsConfig
from .cache import CachedSpecialist, SpecialistCache, SpecialistStats
from .openai_specialist import OpenAICompatibleSpecialist, check_base_url
from .specialists import SimulatedSpecialist, Specialist

#: Backends a spec may name (the profile key ``specialists.backend``).
SPEC_BACKENDS: tuple[str, ...] = ("simulated", "openai", "local")

# model = anything up to the last "@" that is followed by an http(s) URL (model names may
# hold ":" as in Ollama's "llama3.2-vision:11b", or "@" as in "org/model@revision")
_OPENAI_SPEC = re.compile(r"^(?P<model>.+?)(?:@(?P<url>https?://\S+))?$")


def parse_specialist_spec(spec: str) -> dict[str, Any]:
    """Overrides of a profile's ``specialists`` section from a spec (module docstring).

    Returns:
        ``{"backend": "simulated"}``, ``{"backend": "openai", "openai": {"model": ...,
        "base_url": ... or None}}`` or ``{"backend": "local", "local_model": ...}``.
    Raises:
        ValueError: an empty spec, an unknown backend, a missing model, or a base URL that
            :func:`mmed.agents.openai_specialist.check_base_url` rejects (credentials in
            the URL, a scheme other than http/https); the message quotes the grammar.
    """
    grammar = "expected 'simulated', 'openai:<model>[@<base_url>]' or 'local:<model path or Hub id>'"
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty specialist spec; {grammar}")
    spec = spec.strip()
    backend, sep, rest = spec.partition(":")
    if backend not in SPEC_BACKENDS:
        raise ValueError(f"unknown specialist backend {backend!r} in {spec!r}; {grammar}")
    if backend == "simulated":
        if rest:
            raise ValueError(f"'simulated' takes no argument, got {spec!r}")
        return {"backend": "simulated"}
    if not rest.strip():
        raise ValueError(f"missing model in {spec!r}; {grammar}")
    if backend == "local":
        return {"backend": "local", "local_model": rest.strip()}
    m = _OPENAI_SPEC.match(rest.strip())
    if m is None or not m.group("model").strip():  # pragma: no cover - the regex matches any non-empty text
        raise ValueError(f"cannot read {spec!r}; {grammar}")
    model = m.group("model").strip()
    if m.group("url") is None and "@" in model:  # "<model>@<something that is not an http(s) URL>"
        head, _, tail = model.rpartition("@")
        if not head.strip():
            raise ValueError(f"missing model before '@' in {spec!r}; {grammar}")
        if not tail.strip():
            raise ValueError(f"empty base URL after '@' in {spec!r}; {grammar}")
        if "://" in tail:
            check_base_url(tail)  # raises naming the URL: a scheme other than http/https, or no host
    if "://" in model:
        raise ValueError(f"the model name {model!r} looks like a URL; {grammar}")
    return {"backend": "openai", "openai": {"model": model, "base_url": check_base_url(m.group("url"))}}


def apply_specialist_spec(cfg: SpecialistsConfig, spec: str) -> SpecialistsConfig:
    """A copy of ``cfg`` (``profile.specialists``) with the spec's overrides applied; the
    other settings (panel size, timeouts, prices, cache folder ...) are kept.

    Raises:
        ValueError: see :func:`parse_specialist_spec`.
    """
    over = parse_specialist_spec(spec)
    changes: dict[str, Any] = {"backend": over["backend"]}
    if "openai" in over:
        changes["openai"] = dataclasses.replace(cfg.openai, **over["openai"])
    if "local_model" in over:
        changes["local_model"] = over["local_model"]
    return dataclasses.replace(cfg, **changes)


class SpecialistFactory:
    """``(specialty, panel_index) -> Specialist`` for a profile's ``specialists`` section.

    Args:
        cfg: :class:`mmed.config.SpecialistsConfig`.
        seed: the run's seed (every specialist's ``seed``).
        cache: True → a :class:`SpecialistCache` in ``cfg.cache_dir`` (else
            ``$MMED_SPECIALIST_CACHE``, else ``~/.cache/mmed/specialists``), opened at the
            first specialist that uses it; False → no cache; or a cache object to share.
        stats: the accounting to add to (a new :class:`SpecialistStats` when None).
        local_builder: for ``backend: local``, ``(specialty, panel_index) -> Specialist``
            (e.g. a :class:`mmed.agents.local_specialist.LocalModelSpecialist` on a loaded
            runner); its specialists get the same cache and accounting.
        cache_simulated: also cache the simulated panel (off by default: it is a pure
            function, recomputing is faster than reading the cache).

    Raises (on call):
        ValueError: ``backend: local`` without ``local_builder``, an unknown backend, or
            what the backend's constructor raises (e.g. the key variable is not set).
    """

    def __init__(
        self,
        cfg: SpecialistsConfig,
        seed: int,
        cache: SpecialistCache | bool = True,
        stats: SpecialistStats | None = None,
        local_builder: Callable[[str, int], Specialist] | None = None,
        cache_simulated: bool = False,
    ):
        if cfg.backend not in SPEC_BACKENDS:
            raise ValueError(f"unknown specialist backend {cfg.backend!r}; expected one of {SPEC_BACKENDS}")
        if cfg.backend == "local" and local_builder is None:
            raise ValueError(
                "backend 'local' needs local_builder=(specialty, panel_index) -> Specialist "
                "(mmed.agents.build.specialist_factory builds the local policy runner)"
            )
        self.cfg = cfg
        self.seed = int(seed)
        self._cache_arg = cache
        self._cache: SpecialistCache | None = cache if isinstance(cache, SpecialistCache) else None
        self.accounting = stats if stats is not None else SpecialistStats()
        self.local_builder = local_builder
        self.cache_simulated = cache_simulated
        self.built: list[CachedSpecialist] = []

    @property
    def cache(self) -> SpecialistCache | None:
        """The cache in use (opened on first use), or None when caching is off."""
        if self._cache is None and self._cache_arg is True:
            self._cache = SpecialistCache(self.cfg.cache_dir)
        return self._cache

    def _inner(self, specialty: str, panel_index: int) -> Specialist:
        b = self.cfg.backend
        if b == "simulated":
            return SimulatedSpecialist.from_config(self.cfg.simulated, specialty, panel_index, seed=self.seed)
        if b == "openai":
            return OpenAICompatibleSpecialist.from_config(self.cfg.openai, specialty, panel_index, seed=self.seed)
        return self.local_builder(specialty, panel_index)  # type: ignore[misc]

    def __call__(self, specialty: str, panel_index: int) -> CachedSpecialist:
        """Member ``panel_index`` of the ``specialty`` panel, behind the cache."""
        inner = self._inner(specialty, panel_index)
        use_cache = self.cfg.backend != "simulated" or self.cache_simulated
        sp = CachedSpecialist(inner, self.cache if use_cache else None, self.accounting)
        self.built.append(sp)
        return sp

    def stats(self) -> dict[str, Any]:
        """The run's accounting (:meth:`SpecialistStats.to_dict`) plus ``backend``,
        ``cache_file`` (or None) and ``cache_corrupt_lines`` (torn lines skipped)."""
        out = {"backend": self.cfg.backend, **self.accounting.to_dict()}
        c = self._cache
        out["cache_file"] = None if c is None else str(c.path)
        out["cache_corrupt_lines"] = 0 if c is None else c.corrupt_lines
        return out

    def params(self) -> list[dict[str, Any]]:
        """``params()`` of every specialist built so far (for the run manifest)."""
        return [sp.params() for sp in self.built]


def make_specialist_factory(
    cfg: SpecialistsConfig,
    seed: int,
    cache: SpecialistCache | bool = True,
    stats: SpecialistStats | None = None,
    local_builder: Callable[[str, int], Specialist] | None = None,
) -> SpecialistFactory:
    """The panel factory of a profile's ``specialists`` section (see :class:`SpecialistFactory`).

    ``cache=True`` honours ``cfg.cache_dir`` and ``$MMED_SPECIALIST_CACHE``
    (:func:`mmed.agents.cache.resolve_cache_dir`).
    """
    return SpecialistFactory(cfg, seed, cache=cache, stats=stats, local_builder=local_builder)

