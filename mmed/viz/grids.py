"""Image grids and count plots for the data notebooks (matplotlib)."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt


def _image(img: Any):
    from ..agents.generation import _pil

    return _pil(img)


def image_grid(
    items: Sequence[dict[str, Any]],
    group_by: str = "specialty",
    n_per_group: int = 4,
    caption: str | None = "question",
    title: str | None = None,
    cell: float = 1.8,
):
    """A grid with one row per value of ``group_by`` and up to ``n_per_group`` images each.

    Args:
        items: item dicts (schema rows) with ``images`` and the ``group_by`` field.
        caption: item field printed under each image (wrapped), or None.
        cell: inches per image.
    Returns:
        the matplotlib Figure. Raises ValueError when ``items`` is empty.
    """
    if not items:
        raise ValueError("image_grid: no items")
    groups: dict[str, list[dict]] = {}
    for it in items:
        g = groups.setdefault(str(it[group_by]), [])
        if len(g) < n_per_group:
            g.append(it)
    rows = sorted(groups)
    fig, axes = plt.subplots(len(rows), n_per_group, figsize=(cell * n_per_group, (cell + 0.5) * len(rows)), squeeze=False)
    for r, key in enumerate(rows):
        for c in range(n_per_group):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(groups[key]):
                it = groups[key][c]
                ax.imshow(_image(it["images"][0]))
                if caption:
                    text = str(it.get(caption, ""))
                    if caption == "question" and it.get("answer"):
                        text += f" → {it['answer']}"
                    ax.set_title("\n".join(textwrap.wrap(text, 26)[:3]), fontsize=6)
        axes[r][0].text(-0.1, 0.5, key, transform=axes[r][0].transAxes, ha="right", va="center", fontsize=8, rotation=0)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def count_bars(values: Sequence[Any], title: str = "", ax=None, order: Sequence[str] | None = None):
    """Horizontal bar chart of value counts; returns the Axes."""
    counts = Counter(map(str, values))
    keys = list(order) if order is not None else sorted(counts)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 0.3 * len(keys) + 1))
    ax.barh(keys, [counts.get(k, 0) for k in keys], color="#4c72b0")
    for i, k in enumerate(keys):
        ax.text(counts.get(k, 0), i, f" {counts.get(k, 0)}", va="center", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.invert_yaxis()
    return ax


def save(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save a figure (PNG) creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
