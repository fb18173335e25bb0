"""Image grids and count plots for the data notebooks (matplotlib), and :func:`save`."""

from __future__ import annotations

import textwrap
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt

from .layout import MAX_FIGURE_WIDTH_IN, MIN_FONT_SIZE_PT, FigureReadabilityWarning, readability_problems


def _image(img: Any):
    from ..agents.generation import _pil

    return _pil(img)


def image_grid(
    items: Sequence[dict[str, Any]],
    group_by: str = "specialty",
    n_per_group: int = 4,
    caption: str | None = "question",
    title: str | None = None,
    cell: float = 1.9,
):
    """A grid with one row per value of ``group_by`` and up to ``n_per_group`` images each.

    Args:
        items: item dicts (schema rows) with ``images`` and the ``group_by`` field.
        caption: item field printed above each image (wrapped, at most three lines; for
            ``"question"`` the gold answer on a line of its own), or None.
        cell: inches per image (narrowed so that the row labels and the images fit in
            :data:`~mmed.viz.layout.MAX_FIGURE_WIDTH_IN`).
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
    label_width = 0.09 * max(len(k) for k in rows)  # the row labels, left of the first column
    cell = min(cell, (MAX_FIGURE_WIDTH_IN - 0.3 - label_width) / n_per_group)
    wrap = max(12, int(cell * 72 / (0.68 * MIN_FONT_SIZE_PT)))  # characters per caption line
    fig, axes = plt.subplots(len(rows), n_per_group, figsize=(cell * n_per_group, (cell + 0.75) * len(rows)), squeeze=False)
    for r, key in enumerate(rows):
        for c in range(n_per_group):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(groups[key]):
                it = groups[key][c]
                ax.imshow(_image(it["images"][0]))
                if caption:
                    lines = textwrap.wrap(str(it.get(caption, "")), wrap)
                    if len(lines) > 3:
                        lines = lines[:3]
                        lines[-1] = lines[-1][: wrap - 1] + "…"
                    if caption == "question" and it.get("answer"):
                        lines.append(f"→ {it['answer']}"[:wrap])
                    ax.set_title("\n".join(lines), fontsize=MIN_FONT_SIZE_PT)
        axes[r][0].text(-0.1, 0.5, key, transform=axes[r][0].transAxes, ha="right", va="center", fontsize=MIN_FONT_SIZE_PT,
                        rotation=0)
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
        ax.text(counts.get(k, 0), i, f" {counts.get(k, 0)}", va="center", fontsize=MIN_FONT_SIZE_PT)
    ax.set_title(title)
    ax.margins(x=0.15)  # room for the counts at the bars' ends
    ax.invert_yaxis()
    return ax


def save(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save a figure (PNG, cropped to its content) creating the folder; returns the path.

    Warns (:class:`~mmed.viz.layout.FigureReadabilityWarning`, naming the file) when the
    figure is too wide for a notebook or draws text too small to read there
    (:func:`~mmed.viz.layout.readability_problems`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    problems = readability_problems(fig)
    if problems:
        warnings.warn(f"{path.name}: " + "; ".join(problems), FigureReadabilityWarning, stacklevel=2)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
