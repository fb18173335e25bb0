"""Figures readable at notebook width (mmed/viz/layout.py): the README's figures drawn from
the committed CSV files and the data notebook's grids from synthetic items (the figure and
font sizes the notebooks set themselves: tests/test_notebooks_static.py)."""

from __future__ import annotations

import re
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from mmed.runs import repo_root  # noqa: E402
from mmed.viz.figures import FIGURES, ablation_figure  # noqa: E402
from mmed.viz.grids import count_bars, image_grid, save  # noqa: E402
from mmed.viz.layout import (MAX_FIGURE_WIDTH_IN, MIN_FONT_SIZE_PT, FigureReadabilityWarning, drawn_width_in,  # noqa: E402
                             panel_grid, readability_problems)

FIG_DIR = repo_root() / "figures"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_the_limits_are_those_of_a_notebook_column():
    # JupyterLab's column is ~900-1000 px; matplotlib shows a figure at figure.dpi = 100
    assert MAX_FIGURE_WIDTH_IN == 10.0 and MIN_FONT_SIZE_PT == 8.0
    assert plt.rcParams["figure.dpi"] == 100


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_readme_figures_from_the_committed_csv_are_readable(name):
    stem, _, draw = FIGURES[name]
    fig = draw(pd.read_csv(FIG_DIR / f"{stem}.csv"))
    assert readability_problems(fig) == []
    assert drawn_width_in(fig) <= MAX_FIGURE_WIDTH_IN


def test_ablation_rows_keep_their_labels_across_datasets():
    """A system that one dataset lacks (the best single specialist on VQA-RAD: no validation
    split) must not shift the other systems' rows: every point sits on its own system's row,
    the first system on top."""
    df = pd.read_csv(FIG_DIR / "ablations.csv")
    df = df[df["available"].astype(bool)]
    counts = df.groupby("dataset")["system"].nunique()
    assert counts.nunique() > 1, "the committed table no longer has datasets with different rows"
    fig = ablation_figure(df)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    labels = [t.get_text().replace("\n", " ") for t in axes[0].get_yticklabels()]
    for ax in axes:
        d = df[df["dataset"] == ax.get_title()]
        xs, ys = ax.containers[0].lines[0].get_data()
        assert [labels[int(y)] for y in ys] == list(d["system"])
        assert list(xs) == pytest.approx(list(d["acc"]))
    assert axes[0].get_ylim()[0] > axes[0].get_ylim()[1]  # inverted: row 0 (full system) on top
    assert labels[0] == "full system"


def test_data_notebook_grids_are_readable():
    from mmed.data.synthetic import make_synthetic

    syn = make_synthetic(28, 0, image_size=64, split="train")
    rows = [syn[i] for i in range(len(syn))]
    fig = image_grid(rows, group_by="modality", n_per_group=4, title="Synthetic items per modality")
    assert readability_problems(fig) == []
    fig, axes = panel_grid(3, 3.3, 3.0)
    count_bars([r["specialty"] for r in rows], "specialty", axes[0])
    count_bars([r["answer"] for r in rows], "gold answer", axes[1])
    count_bars([r["modality"] for r in rows], "modality", axes[2])
    fig.tight_layout()
    assert readability_problems(fig) == []


def test_panel_grid_wraps_rows_to_the_width():
    fig, axes = panel_grid(3, 4.6, 3.0, sharey=True)
    assert len(axes) == 3 and fig.get_size_inches().tolist() == [9.2, 6.0]  # 2 per row, 2 rows
    assert sum(ax.get_visible() for ax in fig.axes) == 3  # the fourth cell is hidden
    fig, axes = panel_grid(1, 14.0, 3.0)
    assert fig.get_size_inches().tolist() == [MAX_FIGURE_WIDTH_IN, 3.0]
    fig, axes = panel_grid(4, 2.5, 2.0)
    assert fig.get_size_inches().tolist() == [10.0, 2.0]
    with pytest.raises(ValueError, match="n >= 1"):
        panel_grid(0, 3.0, 3.0)


def test_readability_problems_names_width_and_small_text():
    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 3))
    a.plot([0, 1], label="a line")
    a.legend(fontsize=6.5)
    b.text(0.5, 0.5, "tiny note", fontsize=7)
    b.axis("off")
    b.set_xlabel("hidden with its axes", fontsize=5)  # not drawn: not reported
    problems = readability_problems(fig)
    assert re.fullmatch(r"1\d\.\d in wide \(> 10 in: shrunk to fit a notebook\)", problems[0]), problems[0]
    assert problems[1:] == ["text at 6.5 pt (< 8 pt), e.g. 'a line'", "text at 7 pt (< 8 pt), e.g. 'tiny note'"]
    fine, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1], label="ok")
    ax.legend(fontsize=MIN_FONT_SIZE_PT)
    assert readability_problems(fine) == []


def test_save_warns_naming_the_file(tmp_path):
    fig, ax = plt.subplots(figsize=(14, 3))
    ax.plot([0, 1])
    with pytest.warns(FigureReadabilityWarning, match=r"wide\.png: 1\d\.\d in wide"):
        save(fig, tmp_path / "wide.png")
    assert (tmp_path / "wide.png").is_file()
    fig, ax = plt.subplots(figsize=(6, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FigureReadabilityWarning)
        save(fig, tmp_path / "fine.png")
