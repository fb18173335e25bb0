"""The specialist cache and per-run accounting (docs/architecture.md#specialist-cache).

A remote specialist costs money and time; the same opinion must never be paid for twice.
This module holds three things:

- :class:`SpecialistCache` — one on-disk cache shared by every run: an append-only JSONL
  file (``opinions.jsonl``) in a folder chosen by :func:`resolve_cache_dir` (the
  profile's ``specialists.cache_dir``, else ``$MMED_SPECIALIST_CACHE``, else
  ``~/.cache/mmed/specialists``, honouring ``$XDG_CACHE_HOME``).
- :class:`CachedSpecialist` — wraps any :class:`~mmed.agents.specialists.Specialist`
  (OpenAI-compatible, local model, simulated): opinions found in the cache are returned
  without a call; the others are asked of the wrapped backend, in one batch, and stored.
  It also records every opinion into a :class:`SpecialistStats`.
- :class:`SpecialistStats` — calls, cache hits, abstentions, errors by class, tokens and
  cost, summed over a run (``to_dict()`` goes into ``consult/.../metrics.json``).

The key (:func:`cache_key`)
---------------------------
SHA-256 of the canonical JSON of ``{"version", "specialist", "item"}`` where
``specialist`` is :meth:`Specialist.cache_key_fields` (backend, model, specialty, persona,
panel index, sampling parameters, seed, plus what the backend adds, e.g. base URL and
prompt style) and ``item`` is :func:`item_key_fields`: the SHA-256 of the prompt (the
rendered prompt text when the backend has a ``prompt_text(item)`` method, else the
question, options and answer type), the SHA-256 of every image's decoded pixels, and for
backends listed in :data:`ITEM_FIELDS_BY_BACKEND` the extra item fields their output
depends on. Two members of a panel differ in ``panel_index`` (and persona), so a panel of
K never collapses into one opinion repeated K times. Items are keyed by content, not by
id: the same image and question under two dataset layouts share one entry (a hit is
returned with the asking item's id).

What is stored, and what is not
-------------------------------
One JSON object per line: ``{"key", "created", "fields", "opinion"}`` (``fields`` is the
key material, for inspection; it never holds an API key). Opinions that carry an
``error`` (a failed call turned into an abstention) are **not** stored, so a re-run
retries them. A plain abstention or an invalid answer is an answer and is stored.

Robustness
----------
- Every line is written with one ``write()`` on a file opened with ``O_APPEND`` while
  holding an exclusive ``fcntl.flock``; two processes appending at once lose nothing.
- Reading holds a shared lock; a line that does not parse (a torn last line left by a
  killed process) is skipped and counted in :attr:`SpecialistCache.corrupt_lines`;
  before appending, a missing final newline is restored so a torn line never swallows
  the next record.
- New lines appended by another process are picked up on the next lookup (the reader
  remembers its file offset).

On platforms without ``fcntl`` (Windows) the cache relies on ``O_APPEND`` alone.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..config import user_cache_dir
from .specialists import Opinion, Specialist
from ..data.schema import item_field as _get

try:  # POSIX advisory locks; absent on Windows
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms we test
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: Environment variable naming the cache folder (overridden by an explicit ``cache_dir``).
CACHE_DIR_ENV = "MMED_SPECIALIST_CACHE"
#: File name of the cache inside its folder.
CACHE_FILE = "opinions.jsonl"
#: Bumped when the key or the record format changes (old entries are then never hit).
CACHE_VERSION = 1
#: Extra item fields that a backend's opinion depends on besides prompt and images. The
#: simulated panel draws from the item id, the gold index and gold specialty, and writes
#: the modality into its rationale, so those are part of its key.
ITEM_FIELDS_BY_BACKEND: dict[str, tuple[str, ...]] = {
    "simulated": ("id", "answer_idx", "specialty", "modality"),
}


# ----------------------------------------------------------------------------------------
# location
# ----------------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    """``$MMED_SPECIALIST_CACHE`` when set, else ``$XDG_CACHE_HOME/mmed/specialists``, else
    ``~/.cache/mmed/specialists`` (the user's cache folder). Not created here."""
    return user_cache_dir("specialists", CACHE_DIR_ENV)


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``cache_dir`` when given (``~`` expanded; a relative path resolves
    from the repository root, like every path of a profile), else :func:`default_cache_dir`.

    Raises:
        ValueError: an empty string.
    """
    if cache_dir is None:
        return default_cache_dir()
    if str(cache_dir).strip() == "":
        raise ValueError("cache_dir is an empty string; use None for the default cache folder")
    from ..runs import resolve_path

    return resolve_path(cache_dir)  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------
# hashing
# ----------------------------------------------------------------------------------------
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces (the form that is hashed).

    Raises:
        TypeError: when ``obj`` holds something JSON cannot encode.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def open_image(image: Any) -> Any:
    """A PIL image from any form an item's ``images`` entry takes (docs/architecture.md#item-schema):
    a PIL image (returned as is), a file path (``str``/``Path``), raw ``bytes``, or a
    ``{"bytes": ..., "path": ...}`` dict (``datasets.Image(decode=False)``; bytes win).

    Raises:
        FileNotFoundError: a path that does not exist (names it).
        TypeError: any other type, or a dict with neither bytes nor path.
        PIL.UnidentifiedImageError: bytes that are not an image.
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    if isinstance(image, Mapping):
        if image.get("bytes") is not None:
            return Image.open(io.BytesIO(bytes(image["bytes"])))
        if image.get("path"):
            return open_image(image["path"])
        raise TypeError(f"image dict has neither 'bytes' nor 'path': keys {sorted(image)}")
    if isinstance(image, (bytes, bytearray, memoryview)):
        return Image.open(io.BytesIO(bytes(image)))
    if isinstance(image, (str, os.PathLike)):
        if not os.path.exists(image):
            raise FileNotFoundError(f"image file {os.fspath(image)!r} not found")
        return Image.open(image)
    raise TypeError(f"cannot read an image of type {type(image).__name__}")


def image_digest(image: Any) -> str:
    """SHA-256 hex of an image's decoded content: mode, size and pixel bytes.

    Pixels, not file bytes, so an image hashes the same whether an item holds it decoded
    (PIL) or as a file/bytes. Accepts what :func:`open_image` accepts (same errors).
    """
    im = open_image(image)
    im.load()
    h = hashlib.sha256(f"{im.mode}:{im.size[0]}x{im.size[1]}:".encode())
    h.update(im.tobytes())
    return h.hexdigest()


def item_key_fields(specialist: Specialist, item: Any) -> dict[str, Any]:
    """The item's part of the cache key (module docstring).

    Returns:
        ``{"prompt_sha256": hex, "image_sha256": [hex, ...], **extra}`` where ``extra`` holds
        the fields of :data:`ITEM_FIELDS_BY_BACKEND` for the specialist's backend.
    Raises:
        KeyError: a missing item field (naming it); errors of :func:`image_digest`.
    """
    prompt_text = getattr(specialist, "prompt_text", None)
    if callable(prompt_text):
        prompt = str(prompt_text(item))
    else:
        prompt = canonical_json(
            {
                "question": _get(item, "question"),
                "options": [str(o) for o in (_get(item, "options") or [])],
                "answer_type": _get(item, "answer_type"),
            }
        )
    out: dict[str, Any] = {
        "prompt_sha256": _sha256(prompt.encode("utf-8")),
        "image_sha256": [image_digest(im) for im in _get(item, "images")],
    }
    for name in ITEM_FIELDS_BY_BACKEND.get(specialist.backend, ()):
        out[name] = _get(item, name)
    return out


def cache_key(specialist: Specialist, item: Any) -> tuple[str, dict[str, Any]]:
    """``(key, fields)``: the SHA-256 hex key of one (specialist, item) consultation and the
    JSON-able key material it hashes (module docstring).

    Raises:
        TypeError: key fields that are not JSON-serialisable; errors of :func:`item_key_fields`.
    """
    while isinstance(specialist, CachedSpecialist):  # key on the backend, not the wrapper
        specialist = specialist.inner
    fields = {
        "version": CACHE_VERSION,
        "specialist": specialist.cache_key_fields(),
        "item": item_key_fields(specialist, item),
    }
    return _sha256(canonical_json(fields).encode("utf-8")), fields


# ----------------------------------------------------------------------------------------
# the on-disk cache
# ----------------------------------------------------------------------------------------
def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class SpecialistCache:
    """Append-only JSONL cache of opinions, shared by runs and processes (module docstring).

    Args:
        cache_dir: the folder; see :func:`resolve_cache_dir` (None → the default folder).
            Created when missing.

    Attributes:
        path: the ``opinions.jsonl`` file.
        corrupt_lines: lines skipped on read because they did not parse (torn writes).
        writes: records appended by this object.

    Raises:
        OSError: the folder cannot be created.
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None):
        self.dir = resolve_cache_dir(cache_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / CACHE_FILE
        self.corrupt_lines = 0
        self.writes = 0
        self._entries: dict[str, dict[str, Any]] = {}
        self._offset = 0
        self._lock = threading.Lock()
        self._refresh()

    def __repr__(self) -> str:
        return f"SpecialistCache({str(self.path)!r}, entries={len(self._entries)})"

    def __len__(self) -> int:
        with self._lock:
            self._refresh()
            return len(self._entries)

    # -- reading ------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Read the lines appended since the last read (caller holds ``_lock`` or is init)."""
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return
        with f:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH)
            try:
                f.seek(self._offset)
                data = f.read()
            finally:
                if fcntl is not None:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        if not data:
            return
        end = data.rfind(b"\n") + 1  # an unterminated tail is a torn write: not consumed
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key = rec["key"]
                Opinion.from_dict(rec["opinion"])  # validates the stored opinion
            except (ValueError, KeyError, TypeError):
                self.corrupt_lines += 1
                continue
            self._entries.setdefault(key, rec)  # the first record of a key wins
        self._offset += end

    def get(self, key: str) -> Opinion | None:
        """The stored opinion under ``key`` (as written, ``cached`` not yet set), or None.

        Picks up lines other processes appended since the last lookup.
        """
        with self._lock:
            rec = self._entries.get(key)
            if rec is None:
                self._refresh()
                rec = self._entries.get(key)
        return None if rec is None else Opinion.from_dict(rec["opinion"])

    # -- writing ------------------------------------------------------------------------
    def put(self, key: str, opinion: Opinion, fields: Mapping[str, Any] | None = None) -> bool:
        """Append ``opinion`` under ``key``; returns False (nothing written) when the
        opinion carries an ``error`` (failed calls are retried on the next run) or when
        the key is already stored.

        Raises:
            TypeError: an opinion or fields that JSON cannot encode.
            OSError: the file cannot be written.
        """
        if opinion.error is not None:
            return False
        rec = {"key": key, "created": _now(), "fields": dict(fields or {}), "opinion": opinion.to_dict()}
        rec["opinion"]["cached"] = False
        line = (canonical_json(rec) + "\n").encode("utf-8")
        with self._lock:
            if key in self._entries:
                return False
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # terminate a torn last line first
                os.write(fd, line)
            finally:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            self._entries[key] = rec
            self.writes += 1
        return True


# ----------------------------------------------------------------------------------------
# accounting
# ----------------------------------------------------------------------------------------
class SpecialistStats:
    """Counters summed over a run's specialist stage (thread-safe).

    ``to_dict()`` gives::

        {"opinions": int,            # opinions returned (calls + cache hits)
         "calls": int,               # opinions the backend had to produce (cache misses)
         "cache_hits": int, "cache_writes": int,
         "abstentions": int,         # abstained opinions, failures included
         "failures": int,            # opinions with an error (failed after retries)
         "errors": {class name: count},
         "invalid": int,             # answered but no valid option (not abstained)
         "prompt_tokens": int, "completion_tokens": int,   # of the calls made
         "cost_usd": float | None,   # of the calls made; None when no prices are set
         "call_seconds": float}      # summed latency of the calls made

    Cached opinions count in ``opinions``, ``cache_hits``, ``abstentions`` and
    ``invalid`` but add no tokens, cost or seconds (nothing was spent on them).
    """

    _INT_FIELDS: ClassVar[tuple[str, ...]] = (
        "opinions", "calls", "cache_hits", "cache_writes", "abstentions", "failures", "invalid",
        "prompt_tokens", "completion_tokens",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter({k: 0 for k in self._INT_FIELDS})
        self.errors: Counter[str] = Counter()
        self.cost_usd: float | None = None
        self.call_seconds = 0.0

    def record(self, opinion: Opinion, cached: bool, cost_usd: float | None = None, written: bool = False) -> None:
        """Count one returned opinion (``cached``: served from the cache; ``cost_usd`` of
        its call when known; ``written``: it was stored in the cache)."""
        with self._lock:
            c = self.counts
            c["opinions"] += 1
            c["cache_hits" if cached else "calls"] += 1
            c["cache_writes"] += int(written)
            c["abstentions"] += int(opinion.abstained)
            c["invalid"] += int(not opinion.valid and not opinion.abstained)
            if opinion.error is not None:
                c["failures"] += 1
                self.errors[opinion.error] += 1
            if not cached:
                c["prompt_tokens"] += int(opinion.usage.get("prompt_tokens", 0))
                c["completion_tokens"] += int(opinion.usage.get("completion_tokens", 0))
                self.call_seconds += float(opinion.latency_s)
                if cost_usd is not None:
                    self.cost_usd = (self.cost_usd or 0.0) + float(cost_usd)

    def to_dict(self) -> dict[str, Any]:
        """The counters as a JSON-able dict (class docstring)."""
        with self._lock:
            out: dict[str, Any] = {k: int(self.counts[k]) for k in self._INT_FIELDS}
            out["errors"] = dict(sorted(self.errors.items()))
            out["cost_usd"] = None if self.cost_usd is None else round(self.cost_usd, 6)
            out["call_seconds"] = round(self.call_seconds, 3)
        return out


# ----------------------------------------------------------------------------------------
# the wrapper
# ----------------------------------------------------------------------------------------
class CachedSpecialist(Specialist):
    """Any specialist behind the cache, with accounting.

    Args:
        inner: the specialist that produces opinions on a cache miss.
        cache: a :class:`SpecialistCache`, or None for accounting only (no cache).
        stats: where opinions are counted (a new :class:`SpecialistStats` when None).

    Identity (specialty, panel index, persona, model, seed), backend, sampling parameters
    and cache key fields are the inner specialist's, so the wrapper is a drop-in panel
    member. A backend may define ``cost_usd(usage) -> float | None``; the wrapper then
    adds the cost of each call to the stats.
    """

    def __init__(self, inner: Specialist, cache: SpecialistCache | None = None, stats: SpecialistStats | None = None):
        if not isinstance(inner, Specialist):
            raise TypeError(f"inner must be a Specialist, got {type(inner).__name__}")
        super().__init__(inner.specialty, inner.panel_index, inner.persona, model=inner.model, seed=inner.seed)
        self.inner = inner
        self.backend = inner.backend  # type: ignore[misc]  # instance value shadows the ClassVar
        self.cache = cache
        self.stats = stats if stats is not None else SpecialistStats()

    def sampling_params(self) -> dict[str, Any]:
        """The inner specialist's."""
        return self.inner.sampling_params()

    def cache_key_fields(self) -> dict[str, Any]:
        """The inner specialist's."""
        return self.inner.cache_key_fields()

    def params(self) -> dict[str, Any]:
        """The inner specialist's manifest entry plus ``cache`` (file path or None)."""
        return {**self.inner.params(), "cache": None if self.cache is None else str(self.cache.path)}

    def __repr__(self) -> str:
        return f"CachedSpecialist({self.inner!r}, cache={None if self.cache is None else str(self.cache.path)!r})"

    async def aopine_batch(self, items: Sequence[Any]) -> list[Opinion]:
        """Opinions on ``items`` in order: cache hits first looked up, the misses asked of
        the inner specialist in one batch, successful answers stored.

        Raises:
            RuntimeError: the inner specialist returned the wrong number of opinions.
        """
        items = list(items)
        out: list[Opinion | None] = [None] * len(items)
        misses: list[int] = []
        keys: list[tuple[str, dict[str, Any]] | None] = [None] * len(items)
        for i, it in enumerate(items):
            if self.cache is None:
                misses.append(i)
                continue
            keys[i] = cache_key(self.inner, it)
            hit = self.cache.get(keys[i][0])
            if hit is None:
                misses.append(i)
                continue
            hit.item_id = str(_get(it, "id"))
            hit.cached = True
            hit.latency_s = 0.0
            self.stats.record(hit, cached=True)
            out[i] = hit
        if misses:
            fresh = await self.inner.aopine_batch([items[i] for i in misses])
            if len(fresh) != len(misses):
                raise RuntimeError(f"{self.inner!r} returned {len(fresh)} opinions for {len(misses)} items")
            cost_of = getattr(self.inner, "cost_usd", None)
            for i, op in zip(misses, fresh):
                written = False
                if self.cache is not None and keys[i] is not None:
                    key, fields = keys[i]  # type: ignore[misc]
                    written = self.cache.put(key, op, fields)
                cost = cost_of(op.usage) if callable(cost_of) and op.error is None else None
                self.stats.record(op, cached=False, cost_usd=cost, written=written)
                out[i] = op
        return out  # type: ignore[return-value]
