"""Data layer: the item schema, benchmark loaders, the synthetic set (docs/architecture.md#layers,
docs/architecture.md#contracts)."""

from .schema import (  # noqa: F401
    ANSWER_TYPES,
    COLUMNS,
    FEATURES,
    OPTION_LETTERS,
    SPECIALTIES,
    Item,
    SchemaError,
    closed_only,
    item_field,
    item_meta,
    items_to_dataset,
    option_letter,
)
from .answers import canonical_text, exact_match, normalize_answer, token_recall  # noqa: F401
from .mcq import MultipleChoice, answer_pool, closed_to_mc, question_type_key  # noqa: F401
from .specialty import (  # noqa: F401
    SpecialtyRules,
    UnknownModalityError,
    load_specialty_rules,
    resolve_specialty,
    specialty_for_modality,
)
from .splits import LeakageReport, image_disjoint_split, image_hash, leakage_report  # noqa: F401
from .loaders import (  # noqa: F401
    KNOWN_BENCHMARKS,
    MMMU_MED_SUBJECTS,
    DataError,
    LoadReport,
    detect_layout,
    load_benchmark,
)
from .triage_images import TRIAGE_QUESTION, load_triage_images  # noqa: F401
from .synthetic import (  # noqa: F401
    SYNTHETIC_MODALITIES,
    SYNTHETIC_QUESTION_TYPES,
    SyntheticRef,
    make_synthetic,
    parse_ref,
    redraw,
    synthetic_item,
)
