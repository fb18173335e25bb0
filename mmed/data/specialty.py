"""Modality -> specialty map: documented keyword rules in a data file (docs/architecture.md#specialties).

The triage doctor of MMedAgent-RL (paper §3) is trained to pick the specialty whose panel should
see a case; its ground truth is the image's modality label. Real modality strings ("CT(Computed
Tomography)", "MR (Mag-netic Resonance Imaging)", "histology (H&E, colorectal)", "fundus
photography") are normalised to one of :data:`mmed.data.schema.SPECIALTIES` by the keyword rules
in ``specialty_rules.yaml`` next to this file (read its header for the matching rule and the
judgment calls). A user extends the map by writing another YAML file in the same format and
passing it to :func:`load_specialty_rules` - no code change.

Precedence, as docs/architecture.md#specialties says: a ``specialty`` given with the data wins over the rules
(:func:`resolve_specialty`); an unmatched modality raises :class:`UnknownModalityError` naming
it; synthetic items carry their own labels and are never mapped here.

Precedence among the rules (:meth:`SpecialtyRules.explain`), explicit and in two steps:

1. **most specific first** - every keyword of every rule is searched in the normalised
   modality; a match that lies inside a longer match is dropped, whichever rules they belong
   to. A phrase names a more specific technique than a word inside it: "virtual
   colonoscopy" (a CT examination, Radiologist) beats "colonoscopy" (Surgeon), "fluorescein
   angiography" (Ophthalmologist) beats "angiography" (Radiologist);
2. **then rule order** - of the matches left, the first rule wins (user rule files first, in
   the order given, then the packaged file top to bottom; within a rule, the first keyword
   listed). Matches that do not overlap are decided here: "thyroid ultrasound" ->
   Endocrinologist, "PET (oncology staging)" -> Oncologist, "thyroid cytology" ->
   Pathologist, because those rules come before the generic imaging rule.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from .schema import SPECIALTIES

DEFAULT_RULES_PATH = Path(__file__).resolve().parent / "specialty_rules.yaml"


class UnknownModalityError(ValueError):
    """No rule maps a modality string to a specialty. The message names the modality."""


class SpecialtyRulesError(ValueError):
    """A rules file is malformed. The message names the file and the rule index / key."""


def normalize_modality(modality: str) -> str:
    """Lower-case, NFKC, ``_`` -> space, whitespace collapsed (the form the keywords match)."""
    text = unicodedata.normalize("NFKC", str(modality)).lower().replace("_", " ")
    return " ".join(text.split())


def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    # whole word/phrase: not preceded or followed by a letter or digit
    return re.compile(r"(?<![a-z0-9])" + re.escape(normalize_modality(keyword)) + r"(?![a-z0-9])")


@dataclass(frozen=True)
class SpecialtyRule:
    """One rule: any of ``keywords`` in a modality string -> ``specialty``; ``source`` = file."""

    specialty: str
    keywords: tuple[str, ...]
    source: str = ""
    patterns: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)

    def match(self, normalized_modality: str) -> Optional[str]:
        """The first keyword found in an already-normalised modality string, else ``None``."""
        for kw, pat in zip(self.keywords, self.patterns):
            if pat.search(normalized_modality):
                return kw
        return None

    def matches(self, normalized_modality: str) -> list[tuple[int, int, int, str]]:
        """Every occurrence of every keyword: ``(start, end, keyword index, keyword)``."""
        return [(m.start(), m.end(), k, kw) for k, (kw, pat) in enumerate(zip(self.keywords, self.patterns))
                for m in pat.finditer(normalized_modality)]


@dataclass(frozen=True)
class SpecialtyRules:
    """Ordered keyword rules plus per-benchmark defaults for unmatched items. The most
    specific match wins, then the first rule (see the module docstring, "Precedence").

    ``defaults`` maps benchmark name -> {subject or ``"*"`` -> specialty}; only loaders use it
    (see :meth:`default_for`), :meth:`specialty_for` never falls back silently.
    """

    rules: tuple[SpecialtyRule, ...]
    defaults: Mapping[str, Mapping[str, str]]
    sources: tuple[str, ...]
    #: decisions by normalised modality (a benchmark repeats a few modality strings many times)
    _decided: dict[str, Optional[tuple[str, str]]] = field(default_factory=dict, compare=False, repr=False)

    def specialty_for(self, modality: str) -> str:
        """Specialty of a modality string.

        Raises:
            UnknownModalityError: naming the modality (and the rule files tried) when no
                keyword matches, or when ``modality`` is empty.
        """
        norm = normalize_modality(modality or "")
        decided = self._decide(norm) if norm else None
        if decided is not None:
            return decided[0]
        raise UnknownModalityError(
            f"no specialty rule matches modality {modality!r} (normalised {norm!r}); rules tried from "
            f"{', '.join(self.sources)}. Add a keyword to a rules file and pass it to "
            "mmed.data.load_specialty_rules(path), or give a 'specialty' field with the data."
        )

    def explain(self, modality: str) -> tuple[str, str]:
        """``(specialty, keyword)`` that decided ``modality``; raises like :meth:`specialty_for`."""
        norm = normalize_modality(modality or "")
        decided = self._decide(norm) if norm else None
        if decided is not None:
            return decided
        self.specialty_for(modality)  # raises
        raise AssertionError("unreachable")

    def _decide(self, norm: str) -> Optional[tuple[str, str]]:
        """``(specialty, keyword)`` by the two-step precedence of the module docstring, or
        ``None`` when no keyword occurs in the normalised modality ``norm``."""
        if norm not in self._decided:
            self._decided[norm] = self._decide_uncached(norm)
        return self._decided[norm]

    def _decide_uncached(self, norm: str) -> Optional[tuple[str, str]]:
        found = [(start, end, r, k, kw) for r, rule in enumerate(self.rules) for start, end, k, kw in rule.matches(norm)]
        # 1. most specific first: drop a match lying inside a longer one
        specific = [m for m in found
                    if not any(o[0] <= m[0] and m[1] <= o[1] and o[1] - o[0] > m[1] - m[0] for o in found)]
        if not specific:
            return None
        # 2. then rule order, then keyword order within the rule
        _, _, r, _, kw = min(specific, key=lambda m: (m[2], m[3]))
        return self.rules[r].specialty, kw

    def default_for(self, dataset: str, subject: str = "*") -> Optional[str]:
        """The documented fallback specialty for ``dataset``/``subject`` (or ``"*"``), else None."""
        table = self.defaults.get(dataset, {})
        return table.get(subject) or table.get("*")


def _canonical_specialty(value: Any, where: str) -> str:
    """Map a specialty label to its canonical spelling in SPECIALTIES (case-insensitive)."""
    if isinstance(value, str):
        for s in SPECIALTIES:
            if value.strip().lower() == s.lower():
                return s
    raise SpecialtyRulesError(f"{where}: specialty {value!r} is not one of {SPECIALTIES}")


def _parse_rules_file(path: Path) -> tuple[list[SpecialtyRule], dict[str, dict[str, str]]]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecialtyRulesError(f"specialty rules file {path} not found") from None
    except yaml.YAMLError as e:
        raise SpecialtyRulesError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("rules", []), list):
        raise SpecialtyRulesError(f"{path}: expected a mapping with a 'rules' list")
    unknown = set(raw) - {"rules", "defaults"}
    if unknown:
        raise SpecialtyRulesError(f"{path}: unknown top-level key(s) {sorted(unknown)}; allowed: rules, defaults")
    rules: list[SpecialtyRule] = []
    for i, r in enumerate(raw.get("rules") or []):
        where = f"{path}: rules[{i}]"
        if not isinstance(r, dict) or set(r) - {"specialty", "keywords"} or "specialty" not in r:
            raise SpecialtyRulesError(f"{where}: expected keys 'specialty' and 'keywords', got {r!r}")
        kws = r.get("keywords")
        if not isinstance(kws, list) or not kws or not all(isinstance(k, str) and k.strip() for k in kws):
            raise SpecialtyRulesError(f"{where}: field 'keywords' must be a non-empty list of strings")
        spec = _canonical_specialty(r["specialty"], where)
        kw = tuple(normalize_modality(k) for k in kws)
        rules.append(SpecialtyRule(spec, kw, str(path), tuple(_keyword_pattern(k) for k in kw)))
    defaults: dict[str, dict[str, str]] = {}
    for ds, table in (raw.get("defaults") or {}).items():
        if not isinstance(table, dict):
            raise SpecialtyRulesError(f"{path}: defaults.{ds} must map subject -> specialty")
        defaults[str(ds)] = {str(k): _canonical_specialty(v, f"{path}: defaults.{ds}.{k}") for k, v in table.items()}
    return rules, defaults


def load_specialty_rules(*extra_paths: str | Path, include_default: bool = True) -> SpecialtyRules:
    """Read keyword rules from YAML files (format: ``specialty_rules.yaml``).

    Args:
        extra_paths: user rule files; their rules come first in the rule order, in the order
            given (a longer, more specific keyword of a later file still wins over a keyword
            inside it, see the module docstring), and their ``defaults`` override the
            packaged ones.
        include_default: also use the packaged ``specialty_rules.yaml`` (tried last).
    Returns:
        :class:`SpecialtyRules`.
    Raises:
        SpecialtyRulesError: naming the file and rule index when a file is missing, not YAML,
            has unknown keys, or names a specialty outside :data:`SPECIALTIES`.
    """
    paths = [Path(p) for p in extra_paths] + ([DEFAULT_RULES_PATH] if include_default else [])
    if not paths:
        raise SpecialtyRulesError("no rules file given and include_default=False")
    rules: list[SpecialtyRule] = []
    defaults: dict[str, dict[str, str]] = {}
    for p in paths:
        r, d = _parse_rules_file(p)
        rules.extend(r)
        for ds, table in d.items():
            merged = dict(table)
            merged.update(defaults.get(ds, {}))  # earlier (user) files win
            defaults[ds] = merged
    return SpecialtyRules(tuple(rules), defaults, tuple(str(p) for p in paths))


@lru_cache(maxsize=1)
def default_rules() -> SpecialtyRules:
    """The packaged rules (parsed once)."""
    return load_specialty_rules()


def specialty_for_modality(modality: str, rules: SpecialtyRules | None = None) -> str:
    """Specialty of a modality string by the keyword rules (docs/architecture.md#specialties).

    Examples: ``"CT"`` / ``"MRI"`` / ``"X-Ray"`` / ``"ultrasound"`` / ``"PET"`` /
    ``"radiology"`` -> Radiologist; ``"histology (H&E)"`` / ``"IHC"`` / ``"microscopy"`` ->
    Pathologist; ``"fundus photography"`` / ``"OCT"`` -> Ophthalmologist; ``"dermoscopy"`` ->
    Dermatologist; ``"endoscopy"`` / ``"laparoscopy"`` -> Surgeon; ``"thyroid ultrasound"`` ->
    Endocrinologist; ``"PET (oncology staging)"`` -> Oncologist; ``"Virtual Colonoscopy"`` /
    ``"T2 FLAIR"`` / ``"DWI"`` / ``"bone scintigraphy"`` / ``"Doppler"`` -> Radiologist.

    Args:
        modality: the modality as the source names it.
        rules: rules from :func:`load_specialty_rules`; default the packaged file.
    Raises:
        UnknownModalityError: naming the modality when no rule matches.
    """
    return (rules or default_rules()).specialty_for(modality)


def resolve_specialty(
    modality: str, given: Any = None, rules: SpecialtyRules | None = None
) -> tuple[str, str]:
    """``(specialty, source)``: the data's own ``given`` label wins, else the rules.

    ``source`` is ``"data"`` or ``"rule"``.

    Raises:
        SpecialtyRulesError: when ``given`` is set but is not one of :data:`SPECIALTIES`.
        UnknownModalityError: when ``given`` is empty and no rule matches ``modality``.
    """
    if given is not None and str(given).strip():
        return _canonical_specialty(given, "field 'specialty'"), "data"
    return specialty_for_modality(modality, rules), "rule"
