"""Specialists: one interface for every backend, the simulated panel, panel helpers.

In MMedAgent-RL (arXiv 2506.00555 §3) the triage doctor routes a case to one of seven
specialties and a panel of K specialists of that specialty each gives an opinion that the
attending physician reads. This module fixes what an opinion is and how a panel is asked:

- :class:`Opinion` — one specialist's answer to one item (raw text, parsed option index,
  validity, abstention, error class, usage, latency, cache flag). :meth:`Opinion.to_record`
  gives the ``panel`` entry of ``predictions.jsonl`` (docs/architecture.md#predictions).
- :class:`Specialist` — the abstract backend. Identity = (specialty, persona index, panel
  index) → ``specialist_id`` such as ``"Radiologist#1"``. Backends implement the coroutine
  :meth:`Specialist.aopine_batch`; :meth:`Specialist.opine_batch` is the sync entry point
  that also works inside a running event loop (Jupyter). :meth:`Specialist.cache_key_fields`
  is the hook the on-disk cache (:mod:`mmed.agents.cache`) keys on, so a panel of K never collapses into one
  opinion repeated K times.
- :class:`SimulatedSpecialist` — controlled offline experiments (below).
- :func:`make_panel`, :func:`consult_panel` / :func:`aconsult_panel` (bounded concurrency,
  results in item order) and :func:`consult_routed` (each item to its own specialty's panel).

The simulated panel, and what it builds in by construction
-----------------------------------------------------------
For item ``x`` (gold option ``g``, gold specialty ``S(x)``) and a specialist of specialty
``t`` with seed ``seed``, every random draw is a stable hash (BLAKE2b) of the seed, a tag
and the keys below — never Python's ``hash()`` — so opinions are reproducible across
processes and independent of batch order:

1. abstain with probability ``abstain_rate`` (keyed by item and specialist identity);
2. otherwise, with probability ``consensus_error_rate`` the item's *consensus latent* is on
   (keyed by item id and seed only, so it is shared by every specialist of every
   specialty): the specialist answers the item's one misleading option ``w(x) != g``
   (also keyed by item id and seed) — all non-abstaining members are wrong *with the same
   answer*;
3. otherwise it is correct with probability ``own_accuracy`` when ``S(x) == t`` and
   ``other_accuracy`` elsewhere, independently of the other members; a wrong answer is a
   uniform draw among the wrong options (keyed by the specialist identity).

So ``own_accuracy``/``other_accuracy`` are accuracies *outside* the consensus error; the
marginal accuracy of one member is ``(1 - abstain_rate)(1 - consensus_error_rate) * p``.
Effects that therefore hold *by construction*, not as findings:

- a triage gain: routing an item to its gold specialty raises each member's accuracy from
  ``other_accuracy`` to ``own_accuracy``;
- the Hard stratum (s = 0) is mostly the consensus latent: with K members,
  ``P(hard) = c + (1 - c)(1 - (1 - a) p)^K`` (see :func:`simulated_strata_probs`), and on
  latent items the panel is unanimous and wrong, so "resisting a wrong consensus" can only
  come from the image and question, never from the opinions;
- agreement is informative: a unanimous panel is right unless the latent is on;
- the rationale text never depends on correctness, the latent or the gold specialty (only
  on the modality string, the persona and the chosen option), so it leaks no label.

Open questions are not simulated: such an item gets an abstention with
``error="UnsupportedItemError"`` (counted, never dropped).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, TypeVar

from ..data.schema import SPECIALTIES, SchemaError, option_letter
from ..data.schema import item_field as _field

T = TypeVar("T")

#: Keys of one ``panel`` entry in ``predictions.jsonl`` (docs/architecture.md#predictions), in order; followed by
#: the extra keys ``simulated``, ``cached`` and ``usage`` that readers may ignore.
PANEL_RECORD_FIELDS: tuple[str, ...] = (
    "specialist_id",
    "specialty",
    "backend",
    "model",
    "raw",
    "parsed",
    "valid",
    "abstained",
    "error",
)


class UnsupportedItemError(ValueError):
    """A backend cannot answer this kind of item (e.g. an open question for the simulated
    panel). Recorded as an abstention with ``error="UnsupportedItemError"``."""


# ----------------------------------------------------------------------------------------
# opinions
# ----------------------------------------------------------------------------------------
@dataclass
class Opinion:
    """One specialist's opinion on one item.

    Fields:
        item_id: the item's ``id`` (lets callers check that results are in item order).
        specialist_id: ``"<Specialty>#<panel index + 1>"``, e.g. ``"Radiologist#1"``.
        specialty: one of :data:`mmed.data.SPECIALTIES`.
        backend: ``"simulated"``, ``"openai"``, ``"local"``, ...
        model: the backend's model name (``"simulated"`` for the simulated panel).
        raw: the raw text, in the ``<think>…</think><answer>…</answer>`` format.
        parsed: 0-based option index, or ``None`` when there is no valid answer.
        valid: ``parsed is not None`` and not abstained.
        abstained: the specialist gave no answer (declined, or the call failed).
        error: class name of the error that turned the call into an abstention, or None.
        simulated: True for every opinion of the simulated panel.
        usage: ``{"prompt_tokens": int, "completion_tokens": int}`` (0 when not applicable).
        latency_s: wall-clock seconds spent producing this opinion (0 for cache hits).
        cached: True when served from the specialist cache.

    Raises:
        ValueError: when the flags are inconsistent (``valid`` without ``parsed``,
            ``parsed`` set on an invalid opinion, abstained and valid, negative ``parsed``,
            or a specialty not in :data:`SPECIALTIES`).
    """

    item_id: str
    specialist_id: str
    specialty: str
    backend: str
    model: str
    raw: str
    parsed: int | None
    valid: bool
    abstained: bool = False
    error: str | None = None
    simulated: bool = False
    usage: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0})
    latency_s: float = 0.0
    cached: bool = False

    def __post_init__(self) -> None:
        where = f"opinion of {self.specialist_id!r} on item {self.item_id!r}"
        if self.specialty not in SPECIALTIES:
            raise ValueError(f"{where}: specialty {self.specialty!r} not in {SPECIALTIES}")
        if self.valid and self.parsed is None:
            raise ValueError(f"{where}: valid=True but parsed is None")
        if not self.valid and self.parsed is not None:
            raise ValueError(f"{where}: valid=False but parsed={self.parsed}")
        if self.abstained and self.valid:
            raise ValueError(f"{where}: abstained and valid at once")
        if self.parsed is not None and (isinstance(self.parsed, bool) or self.parsed < 0):
            raise ValueError(f"{where}: parsed must be a non-negative option index, got {self.parsed!r}")

    def to_record(self) -> dict[str, Any]:
        """The ``panel`` entry of a prediction record (docs/architecture.md#predictions).

        Returns the keys of :data:`PANEL_RECORD_FIELDS` plus ``simulated``, ``cached`` and
        ``usage``. ``latency_s`` and ``item_id`` are left out (the first is not
        reproducible, the second is the enclosing record's id).
        """
        rec = {k: getattr(self, k) for k in PANEL_RECORD_FIELDS}
        rec["simulated"] = self.simulated
        rec["cached"] = self.cached
        rec["usage"] = dict(self.usage)
        return rec

    def to_dict(self) -> dict[str, Any]:
        """Every field (JSON-serialisable), e.g. for the cache; inverse of :meth:`from_dict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Opinion":
        """Rebuild from :meth:`to_dict` output. Raises ``TypeError`` on unknown keys."""
        return cls(**dict(d))


# ----------------------------------------------------------------------------------------
# sync entry points from plain Python and from Jupyter
# ----------------------------------------------------------------------------------------
def run_sync(coro: Awaitable[T]) -> T:
    """Run a coroutine to completion from synchronous code and return its result.

    With no running event loop (a script, pytest) this is :func:`asyncio.run`. Inside a
    running loop (a Jupyter cell, or sync code called from a coroutine) ``asyncio.run``
    would fail, so the coroutine runs in a fresh worker thread with its own event loop
    while the calling thread waits; the caller's context variables are copied over.
    Backends must therefore not keep loop-bound resources (an ``httpx``/``AsyncOpenAI``
    client, a semaphore) across calls: create them per call or per running loop.

    Raises:
        whatever the coroutine raises.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    ctx = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmed-run-sync") as pool:
        return pool.submit(ctx.run, asyncio.run, coro).result()


# ----------------------------------------------------------------------------------------
# the interface
# ----------------------------------------------------------------------------------------
class Specialist(ABC):
    """A specialist of one specialty; backends subclass it and implement :meth:`aopine_batch`.

    Args:
        specialty: one of :data:`mmed.data.SPECIALTIES`.
        panel_index: 0-based position in its panel; ``specialist_id`` shows it 1-based.
        persona: index of the persona (system prompt variant) it speaks with; defaults to
            ``panel_index`` so members of a panel differ.
        model: the backend's model name.
        seed: sampling seed; part of the cache key.

    Raises:
        ValueError: unknown specialty, negative panel index or persona.
    """

    #: backend name written into every opinion; subclasses override.
    backend: ClassVar[str] = "abstract"

    def __init__(self, specialty: str, panel_index: int = 0, persona: int | None = None, model: str = "", seed: int = 0):
        if specialty not in SPECIALTIES:
            raise ValueError(f"unknown specialty {specialty!r}; expected one of {SPECIALTIES}")
        if panel_index < 0:
            raise ValueError(f"panel_index must be >= 0, got {panel_index}")
        persona = panel_index if persona is None else persona
        if persona < 0:
            raise ValueError(f"persona must be >= 0, got {persona}")
        self.specialty = specialty
        self.panel_index = int(panel_index)
        self.persona = int(persona)
        self.model = model
        self.seed = int(seed)

    @property
    def specialist_id(self) -> str:
        """``"<Specialty>#<panel_index + 1>"``, e.g. ``"Radiologist#1"``."""
        return f"{self.specialty}#{self.panel_index + 1}"

    def sampling_params(self) -> dict[str, Any]:
        """Backend sampling parameters that change the opinion (temperature, max tokens ...).

        Part of :meth:`cache_key_fields`; the base class has none.
        """
        return {}

    def cache_key_fields(self) -> dict[str, Any]:
        """Everything about the specialist that the cache key must hold (docs/architecture.md#specialist-cache).

        Returns ``{"backend", "model", "specialty", "persona", "panel_index", "sampling",
        "seed"}``; the cache adds the prompt and image hashes of the item. Two members of
        one panel differ at least in ``panel_index``, so they never share a cache entry.
        """
        return {
            "backend": self.backend,
            "model": self.model,
            "specialty": self.specialty,
            "persona": self.persona,
            "panel_index": self.panel_index,
            "sampling": self.sampling_params(),
            "seed": self.seed,
        }

    def params(self) -> dict[str, Any]:
        """JSON-serialisable description saved in the run manifest (identity + settings)."""
        return {"specialist_id": self.specialist_id, **self.cache_key_fields()}

    @abstractmethod
    async def aopine_batch(self, items: Sequence[Any]) -> list[Opinion]:
        """Opinions on ``items`` (dataset rows / dicts / :class:`Item`), one per item, in order.

        A call that fails after the backend's retries must come back as an abstention
        with its error class in ``Opinion.error``; only programming errors raise.
        """

    def opine_batch(self, items: Sequence[Any]) -> list[Opinion]:
        """Sync version of :meth:`aopine_batch`; works inside Jupyter too (:func:`run_sync`)."""
        return run_sync(self.aopine_batch(list(items)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.specialist_id!r}, model={self.model!r}, persona={self.persona}, seed={self.seed})"


# ----------------------------------------------------------------------------------------
# the simulated panel
# ----------------------------------------------------------------------------------------
def _unit(*parts: Any) -> float:
    """A uniform number in [0, 1) from a stable hash of ``parts`` (BLAKE2b, 64 bits)."""
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


#: Templated findings per specialty (persona ``p`` uses entry ``p mod len``, then rotates).
_FINDINGS: dict[str, tuple[str, ...]] = {
    "Pathologist": ("the cellular architecture", "nuclear detail and staining pattern", "the tissue organisation"),
    "Radiologist": ("the density and outline of the structures", "the anatomy in this view", "the signal pattern"),
    "Surgeon": ("the exposed anatomy", "the operative field", "the tissue planes"),
    "Oncologist": ("the extent of the lesion", "the uptake pattern", "the lesion margins"),
    "Endocrinologist": ("the gland's size and texture", "the echo pattern of the gland", "the nodular pattern"),
    "Ophthalmologist": ("the optic disc and vessels", "the retinal layers", "the macula and vessels"),
    "Dermatologist": ("the pigment network", "the lesion's borders and colours", "the surface pattern"),
}
_OPENINGS: tuple[str, ...] = ("On the {modality} I see {finding}", "Looking at {finding} on the {modality}", "The {modality} shows {finding}")


def _check_rate(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"simulated panel: {name} must be in [0, 1], got {value}")
    return value


class SimulatedSpecialist(Specialist):
    """A specialist with controlled reliability, for offline experiments (module docstring).

    Args:
        specialty, panel_index, persona, seed: as :class:`Specialist`.
        own_accuracy: P(correct) on items whose gold ``specialty`` is this specialty,
            outside the consensus error and abstention.
        other_accuracy: P(correct) elsewhere (near chance).
        consensus_error_rate: P(the item's latent is on): every non-abstaining member of
            every panel then gives the same wrong option.
        abstain_rate: P(no answer), independently per member and item.

    Every opinion has ``simulated=True``, ``backend="simulated"``, ``model="simulated"``;
    its ``raw`` is ``<think>…</think>\\n<answer>L. text</answer>`` (``L`` the option
    letter, ``text`` the option text: letter + text stays unambiguous when option texts
    look like letters; an empty ``<answer></answer>`` when abstaining) and ``parsed`` is
    filled directly, never by parsing.

    Raises:
        ValueError: a rate outside [0, 1] (naming it), or an invalid identity.
    """

    backend: ClassVar[str] = "simulated"

    def __init__(
        self,
        specialty: str,
        panel_index: int = 0,
        *,
        own_accuracy: float = 0.85,
        other_accuracy: float = 0.45,
        consensus_error_rate: float = 0.15,
        abstain_rate: float = 0.0,
        persona: int | None = None,
        seed: int = 0,
    ):
        super().__init__(specialty, panel_index=panel_index, persona=persona, model="simulated", seed=seed)
        self.own_accuracy = _check_rate("own_accuracy", own_accuracy)
        self.other_accuracy = _check_rate("other_accuracy", other_accuracy)
        self.consensus_error_rate = _check_rate("consensus_error_rate", consensus_error_rate)
        self.abstain_rate = _check_rate("abstain_rate", abstain_rate)

    @classmethod
    def from_config(cls, cfg: Any, specialty: str, panel_index: int = 0, seed: int = 0) -> "SimulatedSpecialist":
        """Build from a :class:`mmed.config.SimulatedPanelConfig` (or anything with its fields)."""
        return cls(
            specialty,
            panel_index,
            own_accuracy=cfg.own_accuracy,
            other_accuracy=cfg.other_accuracy,
            consensus_error_rate=cfg.consensus_error_rate,
            abstain_rate=cfg.abstain_rate,
            seed=seed,
        )

    def sampling_params(self) -> dict[str, Any]:
        """The four reliability parameters (they play the role of sampling settings)."""
        return {
            "own_accuracy": self.own_accuracy,
            "other_accuracy": self.other_accuracy,
            "consensus_error_rate": self.consensus_error_rate,
            "abstain_rate": self.abstain_rate,
        }

    def params(self) -> dict[str, Any]:
        """Manifest entry: identity, the four rates, seed and ``simulated: True``."""
        return {**super().params(), "simulated": True}

    # -- the generative model ------------------------------------------------------------
    def _who(self) -> tuple[str, int, int]:
        return (self.specialty, self.persona, self.panel_index)

    def choose(self, item: Any) -> tuple[int | None, str | None]:
        """The simulated answer to one item: ``(option index or None, error class or None)``.

        Pure function of (seed, item id, options count, gold index, gold specialty,
        specialist identity); see the module docstring for the three steps.

        Raises:
            SchemaError: a closed item with fewer than two options, or an ``answer_idx``
                outside them (names the item id and field).
        """
        item_id = str(_field(item, "id"))
        options = list(_field(item, "options"))
        gold = int(_field(item, "answer_idx"))
        if _field(item, "answer_type") != "closed" or not options:
            return None, UnsupportedItemError.__name__
        if len(options) < 2:
            raise SchemaError(f"item {item_id!r}: closed item needs >= 2 'options', got {options!r}")
        if not 0 <= gold < len(options):
            raise SchemaError(f"item {item_id!r}: field 'answer_idx' is {gold}, options has {len(options)}")
        who = self._who()
        if _unit(self.seed, "abstain", item_id, *who) < self.abstain_rate:
            return None, None
        wrong = [i for i in range(len(options)) if i != gold]
        if _unit(self.seed, "consensus", item_id) < self.consensus_error_rate:
            return wrong[int(_unit(self.seed, "consensus-option", item_id) * len(wrong))], None
        p = self.own_accuracy if _field(item, "specialty") == self.specialty else self.other_accuracy
        if _unit(self.seed, "correct", item_id, *who) < p:
            return gold, None
        return wrong[int(_unit(self.seed, "wrong-option", item_id, *who) * len(wrong))], None

    def rationale(self, item: Any, choice: int | None) -> str:
        """The templated raw text for ``choice`` (``None`` → an abstention with empty answer)."""
        modality = str(_field(item, "modality") or "image")
        item_id = str(_field(item, "id"))
        if choice is None:
            return f"<think>The {modality} is outside what I can assess with confidence.</think>\n<answer></answer>"
        findings = _FINDINGS[self.specialty]
        finding = findings[(self.persona + int(_unit(self.seed, "finding", item_id) * len(findings))) % len(findings)]
        opening = _OPENINGS[self.persona % len(_OPENINGS)].format(modality=modality, finding=finding)
        letter = option_letter(choice)
        option = " ".join(str(list(_field(item, "options"))[choice]).split())
        return f"<think>{opening}; this points to option {letter}.</think>\n<answer>{letter}. {option}</answer>"

    def opine(self, item: Any) -> Opinion:
        """The opinion on one item (see :meth:`choose` and :meth:`rationale`)."""
        t0 = time.perf_counter()
        choice, error = self.choose(item)
        return Opinion(
            item_id=str(_field(item, "id")),
            specialist_id=self.specialist_id,
            specialty=self.specialty,
            backend=self.backend,
            model=self.model,
            raw=self.rationale(item, choice),
            parsed=choice,
            valid=choice is not None,
            abstained=choice is None,
            error=error,
            simulated=True,
            latency_s=time.perf_counter() - t0,
        )

    async def aopine_batch(self, items: Sequence[Any]) -> list[Opinion]:
        """Opinions on ``items`` in order (pure computation; no I/O)."""
        return [self.opine(it) for it in items]


def simulated_panel_factory(cfg: Any, seed: int = 0) -> Callable[[str, int], SimulatedSpecialist]:
    """A :func:`make_panel` factory building :class:`SimulatedSpecialist` from a config.

    Args:
        cfg: :class:`mmed.config.SimulatedPanelConfig` (``profile.specialists.simulated``).
        seed: the run's seed.
    """

    def factory(specialty: str, panel_index: int) -> SimulatedSpecialist:
        return SimulatedSpecialist.from_config(cfg, specialty, panel_index, seed=seed)

    return factory


def simulated_strata_probs(
    accuracy: float, k: int, consensus_error_rate: float, abstain_rate: float = 0.0
) -> dict[str, float]:
    """Expected stratum probabilities of a simulated panel of ``k`` with member accuracy
    ``accuracy`` (``own_accuracy`` or ``other_accuracy``), by the model in the module
    docstring: with ``q = (1 - abstain_rate) * accuracy``,
    ``easy = (1 - c) q^k``, ``hard = c + (1 - c)(1 - q)^k``, ``medium = 1 - easy - hard``.

    Returns ``{"easy", "medium", "hard"}`` summing to 1. Raises ``ValueError`` for ``k < 1``
    or a rate outside [0, 1].
    """
    if k < 1:
        raise ValueError(f"panel size k must be >= 1, got {k}")
    q = (1 - _check_rate("abstain_rate", abstain_rate)) * _check_rate("accuracy", accuracy)
    c = _check_rate("consensus_error_rate", consensus_error_rate)
    easy = (1 - c) * q**k
    hard = c + (1 - c) * (1 - q) ** k
    return {"easy": easy, "medium": 1.0 - easy - hard, "hard": hard}


# ----------------------------------------------------------------------------------------
# panels
# ----------------------------------------------------------------------------------------
def make_panel(specialty: str, k: int, factory: Callable[[str, int], Specialist]) -> list[Specialist]:
    """A panel of ``k`` specialists of ``specialty``: ``[factory(specialty, i) for i in range(k)]``.

    Raises:
        ValueError: ``k < 1``, unknown specialty, or a factory that returns a specialist of
            another specialty or a repeated ``specialist_id`` (a panel of K must be K
            distinct members, docs/architecture.md#specialist-cache).
    """
    if k < 1:
        raise ValueError(f"panel size k must be >= 1, got {k}")
    if specialty not in SPECIALTIES:
        raise ValueError(f"unknown specialty {specialty!r}; expected one of {SPECIALTIES}")
    panel = [factory(specialty, i) for i in range(k)]
    for i, sp in enumerate(panel):
        if not isinstance(sp, Specialist):
            raise ValueError(f"factory returned {type(sp).__name__} for member {i}, expected a Specialist")
        if sp.specialty != specialty:
            raise ValueError(f"factory returned a {sp.specialty} as member {i} of a {specialty} panel")
    ids = [sp.specialist_id for sp in panel]
    if len(set(ids)) != k:
        raise ValueError(f"panel members must be distinct, got ids {ids}")
    return panel


async def aconsult_panel(
    panel: Sequence[Specialist],
    items: Sequence[Any],
    max_concurrency: int = 4,
    chunk_size: int | None = None,
    progress: bool = False,
) -> list[list[Opinion]]:
    """Ask every member of ``panel`` about every item, concurrently; results in item order.

    Work is split into (member, chunk of ``chunk_size`` items) calls of
    :meth:`Specialist.aopine_batch`; at most ``max_concurrency`` calls are in flight
    (an :class:`asyncio.Semaphore`). A backend may bound its own requests further.

    Returns:
        ``out[i][j]`` = opinion of ``panel[j]`` on ``items[i]`` (shape ``len(items) x K``).
    Raises:
        ValueError: empty panel, ``max_concurrency < 1`` or ``chunk_size < 1``.
        RuntimeError: a backend returned the wrong number of opinions, or opinions out of
            item order (names the specialist and the item).
    """
    if not panel:
        raise ValueError("empty panel")
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
    items = list(items)
    n = len(items)
    if n == 0:
        return []
    chunk_size = n if chunk_size is None else int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    sem = asyncio.Semaphore(max_concurrency)
    starts = list(range(0, n, chunk_size))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n * len(panel), desc="specialists", unit="opinion")

    async def one(sp: Specialist, start: int) -> list[Opinion]:
        chunk = items[start : start + chunk_size]
        async with sem:
            ops = await sp.aopine_batch(chunk)
        if len(ops) != len(chunk):
            raise RuntimeError(f"{sp!r} returned {len(ops)} opinions for {len(chunk)} items")
        for it, op in zip(chunk, ops):
            if op.item_id != str(_field(it, "id")) or op.specialist_id != sp.specialist_id:
                raise RuntimeError(
                    f"{sp!r} returned opinion ({op.specialist_id!r}, item {op.item_id!r}) "
                    f"where ({sp.specialist_id!r}, item {_field(it, 'id')!r}) was expected"
                )
        if bar is not None:
            bar.update(len(ops))
        return ops

    try:
        per_member = await asyncio.gather(
            *[asyncio.gather(*[one(sp, s) for s in starts]) for sp in panel]
        )
    finally:
        if bar is not None:
            bar.close()
    columns = [[op for chunk in chunks for op in chunk] for chunks in per_member]
    return [[columns[j][i] for j in range(len(panel))] for i in range(n)]


def consult_panel(
    panel: Sequence[Specialist],
    items: Sequence[Any],
    max_concurrency: int = 4,
    chunk_size: int | None = None,
    progress: bool = False,
) -> list[list[Opinion]]:
    """Sync :func:`aconsult_panel` (works inside Jupyter, see :func:`run_sync`)."""
    return run_sync(aconsult_panel(panel, items, max_concurrency, chunk_size, progress))


async def aconsult_routed(
    items: Sequence[Any],
    specialties: Sequence[str],
    panels: Mapping[str, Sequence[Specialist]] | Callable[[str], Sequence[Specialist]],
    max_concurrency: int = 4,
    chunk_size: int | None = None,
    progress: bool = False,
) -> list[list[Opinion]]:
    """Consult each item's own panel: ``items[i]`` goes to the panel of ``specialties[i]``
    (the triage choice at evaluation, the gold specialty for training strata; docs/architecture.md#stratification).

    Items are grouped by specialty, each group is consulted with :func:`aconsult_panel`
    (groups run concurrently, each bounded by ``max_concurrency``), and the results are put
    back in item order.

    Args:
        panels: ``{specialty: panel}`` or a function ``specialty -> panel``.
    Returns:
        ``out[i]`` = the opinions of the panel of ``specialties[i]`` on ``items[i]``.
    Raises:
        ValueError: ``len(specialties) != len(items)``, or an unknown specialty (names the
            item index); KeyError when ``panels`` has no panel for a needed specialty.
    """
    items = list(items)
    if len(specialties) != len(items):
        raise ValueError(f"{len(specialties)} specialties for {len(items)} items")
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(specialties):
        if s not in SPECIALTIES:
            raise ValueError(f"item {i} ({_field(items[i], 'id')!r}): specialty {s!r} not in {SPECIALTIES}")
        groups.setdefault(s, []).append(i)
    get = panels if callable(panels) else (lambda s: panels[s])  # type: ignore[index]
    results = await asyncio.gather(
        *[
            aconsult_panel(get(s), [items[i] for i in idx], max_concurrency, chunk_size, progress)
            for s, idx in groups.items()
        ]
    )
    out: list[list[Opinion] | None] = [None] * len(items)
    for idx, res in zip(groups.values(), results):
        for i, ops in zip(idx, res):
            out[i] = ops
    return out  # type: ignore[return-value]


def consult_routed(
    items: Sequence[Any],
    specialties: Sequence[str],
    panels: Mapping[str, Sequence[Specialist]] | Callable[[str], Sequence[Specialist]],
    max_concurrency: int = 4,
    chunk_size: int | None = None,
    progress: bool = False,
) -> list[list[Opinion]]:
    """Sync :func:`aconsult_routed` (works inside Jupyter, see :func:`run_sync`)."""
    return run_sync(aconsult_routed(items, specialties, panels, max_concurrency, chunk_size, progress))
