"""Data layer: the item schema, benchmark loaders, the synthetic set (DESIGN §3, §4)."""

from .schema import (  # noqa: F401
    ANSWER_TYPES,
    COLUMNS,
    FEATURES,
    OPTION_LETTERS,
    SPECIALTIES,
    Item,
    SchemaError,
    closed_only,
    item_meta,
    items_to_dataset,
    option_letter,
)
