"""Figures readable at notebook width: the limits, a panel grid that keeps to them, a check.

A notebook shows a figure at ``figure.dpi`` (matplotlib's default 100; matplotlib-inline
keeps it since 0.1.4, ``matplotlib_inline/config.py``) and cropped to its content
(``bbox_inches="tight"``), and JupyterLab's notebook column is about 900–1000 px wide: a
wider figure is scaled down to fit, and its text with it. So every figure the notebooks and
``make figures`` draw keeps

- its drawn width (the tight box, plus ``savefig.pad_inches`` on each side) within
  :data:`MAX_FIGURE_WIDTH_IN` inches, and
- every text it draws — tick labels, axis labels, titles, legends, annotations — at
  :data:`MIN_FONT_SIZE_PT` points or more.

:func:`panel_grid` lays out ``n`` panels in rows that fit the width; :func:`readability_problems`
lists what breaks either limit (``mmed.viz.grids.save`` warns with it, the tests assert none).
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.text import Text

#: widest figure, in inches, that a notebook shows at full size (1000 px at 100 dpi)
MAX_FIGURE_WIDTH_IN = 10.0
#: smallest font size, in points, of any text a figure draws
MIN_FONT_SIZE_PT = 8.0


class FigureReadabilityWarning(UserWarning):
    """A figure is wider than :data:`MAX_FIGURE_WIDTH_IN` or draws text smaller than
    :data:`MIN_FONT_SIZE_PT` (:func:`readability_problems` says which)."""


def panel_grid(
    n: int,
    panel_width: float,
    panel_height: float,
    max_width: float = MAX_FIGURE_WIDTH_IN,
    **subplots_kw: Any,
) -> tuple[Any, list[Any]]:
    """``n`` panels of ``panel_width`` × ``panel_height`` inches, as many per row as fit in
    ``max_width`` (at least one), the rows below each other; unused cells of the last row
    are hidden.

    Args:
        n: number of panels (≥ 1).
        panel_width / panel_height: inches per panel (labels included); a panel wider than
            ``max_width`` is narrowed to it.
        subplots_kw: passed to :func:`matplotlib.pyplot.subplots` (``sharey``, ...;
            ``squeeze`` is always False).
    Returns:
        ``(figure, axes)``: ``axes`` the ``n`` panels' Axes in reading order.
    Raises:
        ValueError: ``n`` < 1 or a size ≤ 0.
    """
    if n < 1 or panel_width <= 0 or panel_height <= 0 or max_width <= 0:
        raise ValueError(f"panel_grid: need n >= 1 and positive sizes, got n={n}, panel {panel_width} x {panel_height}, "
                         f"max_width {max_width}")
    panel_width = min(panel_width, max_width)
    ncols = max(1, min(n, int(max_width // panel_width)))
    nrows = math.ceil(n / ncols)
    subplots_kw["squeeze"] = False
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_width * ncols, panel_height * nrows), **subplots_kw)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def wrap_label(text: Any, width: int = 28) -> str:
    """``text`` wrapped at ``width`` characters (long category labels on an axis)."""
    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def _drawn_texts(fig: Any) -> list[Text]:
    """The texts a draw of ``fig`` shows: visible and non-empty, not on a hidden axes or axis."""
    hidden: set[int] = set()
    for ax in fig.axes:
        if not ax.get_visible():
            hidden.update(id(t) for t in ax.findobj(Text))
            continue
        for axis in (ax.xaxis, ax.yaxis):
            if not ax.axison or not axis.get_visible():
                hidden.update(id(t) for t in axis.findobj(Text))
    return [t for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and id(t) not in hidden]


def drawn_width_in(fig: Any) -> float:
    """The width, in inches, of ``fig`` as a notebook shows it: its tight bounding box
    (what ``bbox_inches="tight"`` keeps) plus ``savefig.pad_inches`` on each side."""
    fig.canvas.draw()
    bbox = fig.get_tightbbox(fig.canvas.get_renderer())
    pad = plt.rcParams["savefig.pad_inches"]
    return float(bbox.width) + 2 * float(pad if isinstance(pad, (int, float)) else 0.1)


def readability_problems(
    fig: Any, max_width: float = MAX_FIGURE_WIDTH_IN, min_font: float = MIN_FONT_SIZE_PT,
) -> list[str]:
    """What makes ``fig`` hard to read at notebook width, one sentence each; empty when
    nothing does.

    Checks the drawn width (:func:`drawn_width_in`) against ``max_width`` inches and the
    font size of every drawn text against ``min_font`` points (each size once, with an
    example of the text).
    """
    out = []
    width = drawn_width_in(fig)
    if width > max_width + 1e-6:
        out.append(f"{width:.1f} in wide (> {max_width:g} in: shrunk to fit a notebook)")
    small: dict[float, str] = {}
    for t in _drawn_texts(fig):
        size = float(t.get_fontsize())
        if size < min_font - 1e-6:
            small.setdefault(size, t.get_text().strip().splitlines()[0][:40])
    for size, example in sorted(small.items()):
        out.append(f"text at {size:g} pt (< {min_font:g} pt), e.g. {example!r}")
    return out
