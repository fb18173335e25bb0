"""Figures: drawn from small CSV files, so that they can be redrawn without retraining.

Each README figure lives in ``figures/`` beside the CSV it is drawn from (docs/architecture.md#figures):

==========================  ==================================================  =================
figure                      data file (columns)                                 source in a run
==========================  ==================================================  =================
``ablations.png``           ``ablations.csv`` (dataset, system, n, acc, lo,     ``eval/ablations/table.csv``
                            hi, valid_rate, acc/lo/hi/n per stratum,
                            top_answer, top_answer_share, gold_top_share,
                            chance, delta_vs_full ...; older files lack
                            valid_rate, the answer distribution, chance
                            and the stratum intervals)
``test_time_scaling.png``   ``test_time_scaling.csv`` (attending, dataset,      ``eval/tts/curve.csv``
                            policy, N, acc, lo, hi, n, mean_samples,
                            top_answer, top_answer_share, gold_top_share)
``curriculum_entropy.png``  ``curriculum_entropy.csv`` (variant, stage,          ``attending/<variant>/stage_*/log_history.jsonl``
                            stage_index, gamma, step, global_step, entropy,
                            reward, format_valid)
``triage.png``              ``triage.csv`` (when, dataset, specialty, acc, lo,   ``eval/notebook_03_triage_grpo.json``
                            hi, n; gain, gain_lo, gain_hi on the GRPO
                            ``(all)`` rows: paired GRPO − cold start;
                            top_answer, top_answer_share, gold_top_share
                            on the ``(all)`` rows; on the real data also
                            ``when`` = "majority class" rows, the constant
                            answer right most often on the same images)
==========================  ==================================================  =================

``python -m mmed figures`` (``make figures``) redraws every PNG from its CSV and rewrites
the README's results block from the CSVs; ``--run-dir R`` (``make figures RUN=R``) first
refreshes the CSVs from a run — only when asked. Notebooks draw the same figures from the
run into ``runs/<id>/figures/``; nothing writes ``figures/`` unless told to.

Every accuracy comes with the share of the agent's most frequent answer
(``top_answer_share``) and of the most frequent gold answer on the same items
(``gold_top_share``), so that a constant answer cannot pass for a result (docs/architecture.md#degenerate-agent-guard). CSV
files written before these columns existed are redrawn as they are; the README block then
says that they lack them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..eval.claims import CLAIM_ROWS, ablation_claims, no_valid_answer  # noqa: F401 - re-exported
from ..eval.claims import verdict as claim_verdict
from .grids import save
from .layout import MAX_FIGURE_WIDTH_IN, MIN_FONT_SIZE_PT, panel_grid, wrap_label

PALETTE = {"easy": "#55a868", "medium": "#dd8452", "hard": "#c44e52", "all": "#4c72b0"}


# ----------------------------------------------------------------------------------------
# drawing
# ----------------------------------------------------------------------------------------
def ablation_figure(df: pd.DataFrame):
    """Accuracy with 95% intervals per ablation row, one panel per dataset (two per row,
    within :data:`~mmed.viz.layout.MAX_FIGURE_WIDTH_IN`).

    Every panel has one row per system of any dataset, in the table's order (a system a
    dataset lacks leaves its row empty there), so the shared row labels name the same system
    in every panel; the labels are wrapped.
    """
    df = df[df["available"].astype(bool)] if "available" in df else df
    datasets = list(dict.fromkeys(df["dataset"]))
    systems = list(dict.fromkeys(df["system"]))
    fig, axes = panel_grid(len(datasets), MAX_FIGURE_WIDTH_IN / min(2, len(datasets)), 0.42 * len(systems) + 1.4,
                           sharey=True)
    for ax, ds in zip(axes, datasets):
        d = df[df["dataset"] == ds]
        y = np.array([systems.index(s) for s in d["system"]])
        ax.errorbar(d["acc"], y, xerr=[d["acc"] - d["lo"], d["hi"] - d["acc"]], fmt="o", color="#4c72b0", capsize=3)
        full = d[d["system"] == "full system"]
        if len(full):
            ax.axvline(float(full["acc"].iloc[0]), color="#999", ls="--", lw=1)
        if "top_answer_share" in d:  # the share of the most frequent answer, at the right edge
            tops = d["top_answer"] if "top_answer" in d else pd.Series([None] * len(d), index=d.index)
            for yi, ta, sh in zip(y, tops, d["top_answer_share"]):
                if pd.notna(sh):
                    ax.text(1.02, yi, f"{ta if pd.notna(ta) else '–'} {100 * sh:.0f}%", va="center", fontsize=MIN_FONT_SIZE_PT,
                            color="#c44e52" if sh > 0.9 else "#555", transform=ax.get_yaxis_transform())
        chance = "chance" in d and d["chance"].notna().any()
        if chance:
            ax.axvline(float(d["chance"].dropna().iloc[0]), color="#c44e52", ls=":", lw=1)
        ax.set_xlim(0, 1)
        ax.set_xlabel("accuracy (95% CI)" + ("\ndotted: chance" if chance else "") + "; right: top answer")
        ax.set_title(ds)
    axes[0].set_yticks(range(len(systems)), [wrap_label(s, 40) for s in systems], fontsize=MIN_FONT_SIZE_PT)
    axes[0].set_ylim(len(systems) - 0.5, -0.5)  # first system on top
    fig.tight_layout()
    return fig


def tts_figure(df: pd.DataFrame):
    """Majority-vote accuracy vs samples per item (log2 axis) with intervals, one panel per
    dataset (two per row), one colour per attending (solid: uniform budget; dashed squares:
    adaptive)."""
    df = df[df["policy"] != "greedy"]
    if "attending" not in df:
        df = df.assign(attending="attending")
    datasets = list(dict.fromkeys(df["dataset"]))
    fig, axes = panel_grid(len(datasets), MAX_FIGURE_WIDTH_IN / 2, 3.8)
    colours = dict(zip(dict.fromkeys(df["attending"]), ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]))
    for ax, ds in zip(axes, datasets):
        d = df[df["dataset"] == ds]
        for (att, pol), g in d.groupby(["attending", "policy"], sort=False):
            g = g.sort_values("mean_samples")
            style = dict(marker="o") if pol == "uniform" else dict(marker="s", ls="--")
            ax.plot(g["mean_samples"], g["acc"], color=colours[att], label=f"{att} · {pol}", **style)
            ax.fill_between(g["mean_samples"], g["lo"], g["hi"], color=colours[att], alpha=0.12)
        ax.set_xscale("log", base=2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("samples per item (mean)")
        ax.set_ylabel("majority-vote accuracy (95% CI)")
        ax.set_title(ds)
        ax.legend(fontsize=MIN_FONT_SIZE_PT, loc="lower right")
    fig.tight_layout()
    return fig


def entropy_figure(df: pd.DataFrame, variants: list[str] | None = None):
    """Per-step policy entropy coloured by curriculum stage, one panel per variant (two per
    row), with the format-valid rate on a twin axis when logged."""
    variants = variants or list(dict.fromkeys(df["variant"]))
    fig, axes = panel_grid(len(variants), MAX_FIGURE_WIDTH_IN / 2, 3.4, sharey=True)
    for ax, v in zip(axes, variants):
        d = df[df["variant"] == v]
        for stage, g in d.groupby("stage", sort=False):
            colour = PALETTE.get(str(stage).split("_")[-1], PALETTE["all"])
            gamma = g["gamma"].iloc[0] if "gamma" in g else None
            ax.plot(g["global_step"], g["entropy"], ".-", color=colour, label=f"{stage} (γ={gamma:g})" if gamma is not None else stage)
        ax.set_xlabel("global step")
        ax.set_ylabel("mean token entropy (nats)")
        ax.set_title(v)
        ax.legend(fontsize=MIN_FONT_SIZE_PT)
        if "format_valid" in d and d["format_valid"].notna().any():
            ax2 = ax.twinx()
            ax2.plot(d["global_step"], d["format_valid"], color="#888", lw=0.8, alpha=0.7)
            ax2.set_ylim(0, 1.05)
            ax2.set_ylabel("format-valid rate", color="#888")
    fig.tight_layout()
    return fig


def triage_figure(df: pd.DataFrame):
    """Triage accuracy per specialty after the cold start and after GRPO (with intervals),
    one panel per dataset (two per row)."""
    datasets = list(dict.fromkeys(df["dataset"]))
    fig, axes = panel_grid(len(datasets), MAX_FIGURE_WIDTH_IN / 2, 3.6)
    for ax, ds in zip(axes, datasets):
        d = df[df["dataset"] == ds]
        specs = list(dict.fromkeys(d["specialty"]))
        whens = list(dict.fromkeys(d["when"]))
        w = 0.8 / max(1, len(whens))
        for k, when in enumerate(whens):
            g = d[d["when"] == when].set_index("specialty").reindex(specs)
            x = np.arange(len(specs)) + k * w
            ax.bar(x, g["acc"], width=w, label=when, yerr=[g["acc"] - g["lo"], g["hi"] - g["acc"]], capsize=2)
        ax.set_xticks(np.arange(len(specs)) + w * (len(whens) - 1) / 2, specs, rotation=30, ha="right",
                      fontsize=MIN_FONT_SIZE_PT)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("triage accuracy (95% CI)")
        ax.set_title(ds)
        ax.legend(fontsize=MIN_FONT_SIZE_PT)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------
# exporting the data files from a run
# ----------------------------------------------------------------------------------------
#: columns ``ablations.csv`` always carries when refreshed from a run (NaN where an older
#: run's table lacks them)
ABLATION_GUARD_COLUMNS: tuple[str, ...] = ("valid_rate", "acc_easy", "top_answer", "top_answer_share",
                                           "gold_top_share", "chance")


def export_ablations(run_dir: Path) -> pd.DataFrame:
    """``eval/ablations/table.csv`` of a run (notebook 05), with every column of
    :data:`ABLATION_GUARD_COLUMNS` (added empty when an older run's table lacks it)."""
    df = pd.read_csv(run_dir / "eval" / "ablations" / "table.csv")
    for c in ABLATION_GUARD_COLUMNS:
        if c not in df:
            df[c] = np.nan
    return df


def export_tts(run_dir: Path) -> pd.DataFrame:
    """``eval/tts/curve.csv`` of a run (notebook 06)."""
    return pd.read_csv(run_dir / "eval" / "tts" / "curve.csv")


def export_curriculum(run_dir: Path) -> pd.DataFrame:
    """Every logged GRPO step of every curriculum variant in the run, with a global step."""
    rows = []
    root = run_dir / "attending"
    for vdir in sorted(p for p in root.glob("*") if p.is_dir() and p.name != "sft"):
        offset = 0
        for sdir in sorted(vdir.glob("stage_*"), key=lambda p: int(p.name.split("_")[1])):
            log = sdir / "log_history.jsonl"
            if not log.is_file():
                continue
            recs = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
            man = json.loads((sdir / "stage_manifest.json").read_text()) if (sdir / "stage_manifest.json").is_file() else {}
            gamma = man.get("entropy_coef", man.get("gamma", recs[0].get("gamma") if recs else None))
            for r in recs:
                rows.append({"variant": vdir.name, "stage": sdir.name, "stage_index": int(sdir.name.split("_")[1]),
                             "gamma": gamma, "step": r["step"], "global_step": offset + r["step"],
                             "entropy": r.get("entropy"), "reward": r.get("reward"), "format_valid": r.get("format_valid"),
                             "frac_reward_zero_std": r.get("frac_reward_zero_std")})
            offset += max((r["step"] for r in recs), default=0)
    if not rows:
        raise FileNotFoundError(f"no curriculum logs under {root}")
    return pd.DataFrame(rows)


#: ``when`` of the majority-class baseline rows of ``triage.csv``
MAJORITY_CLASS = "majority class"


def export_triage(run_dir: Path) -> pd.DataFrame:
    """Triage accuracy per specialty after the cold start (``sft``) and after GRPO, on the
    synthetic test split and on the real images, from notebook 03's metrics
    (``eval.<when>.<dataset>.by_specialty``) plus an ``(all)`` row per set; the GRPO
    ``(all)`` row also holds notebook 03's paired gain (``gain``, ``gain_lo``, ``gain_hi``);
    each ``(all)`` row the answer distribution's ``top_answer``, ``top_answer_share`` and
    ``gold_top_share`` when notebook 03 recorded it (``eval.<when>.<dataset>.answers``).
    On the real images, rows with ``when`` = "majority class" give the majority-class
    baseline on the same images (``majority.real``: the one specialty answered every time;
    older metrics files without it give no such rows); its ``(all)`` row's ``gain``,
    ``gain_lo``, ``gain_hi`` are the paired GRPO − majority-class difference."""
    m = json.loads((run_dir / "eval" / "notebook_03_triage_grpo.json").read_text())
    gains = m.get("gain") or {}
    evals = dict(m.get("eval") or {})
    maj = (m.get("majority") or {}).get("real")
    if maj:
        evals["majority"] = {"real": maj["summary"]}
    rows = []
    for when, label in (("sft", "cold start"), ("grpo", "GRPO"), ("majority", MAJORITY_CLASS)):
        for ds, d in (evals.get(when) or {}).items():
            if ds not in ("synthetic", "real"):
                continue
            per = dict(d.get("by_specialty") or {})
            per["(all)"] = {"accuracy": d["accuracy"]}
            for spec, v in per.items():
                a = (v or {}).get("accuracy")
                if a and a.get("n"):  # specialties without images are listed with no accuracy
                    row = {"when": label, "dataset": ds, "specialty": spec, "acc": a["acc"], "lo": a["lo"], "hi": a["hi"], "n": a["n"]}
                    g = gains.get(ds) if when == "grpo" else (maj or {}).get("vs_grpo") if when == "majority" else None
                    if spec == "(all)" and g:  # paired GRPO − cold start (or − majority class) on the same images
                        row.update(gain=g["diff"], gain_lo=g["lo"], gain_hi=g["hi"])
                    ans = d.get("answers") if spec == "(all)" else None
                    if ans:
                        row.update({k: ans.get(k) for k in ("top_answer", "top_answer_share", "gold_top_share")})
                    rows.append(row)
    if not rows:
        raise KeyError("notebook 03 metrics hold no per-specialty evaluation")
    return pd.DataFrame(rows)


FigureSpec = tuple[str, Callable[[Path], pd.DataFrame], Callable[[pd.DataFrame], Any]]
#: name → (data file stem, export from run, draw)
def export_seed_claims(run_dir: Path) -> pd.DataFrame:
    """Notebook 04's claims over seeds (``seed_replicates.claims``: claim, seed — an int or
    ``"pooled"`` —, stratum, diff, lo, hi, n, holds; :func:`mmed.eval.replicates.curriculum_claims`).

    Raises:
        KeyError: the metrics hold no claims over seeds (an older notebook 04).
    """
    m = json.loads((run_dir / "eval" / "notebook_04_cmarl_curriculum.json").read_text())
    claims = (m.get("seed_replicates") or {}).get("claims")
    if not claims:
        raise KeyError("seed_replicates.claims")
    return pd.DataFrame(claims)


def seed_claims_figure(df: pd.DataFrame):
    """Forest plot: each claim's paired difference (points) per seed and pooled, 95% intervals."""
    claims = list(dict.fromkeys(df["claim"]))
    fig, ax = plt.subplots(figsize=(8.5, 0.55 * len(claims) + 1.2))
    seeds = [s for s in dict.fromkeys(df["seed"].astype(str)) if s != "pooled"] + ["pooled"]
    for k, s in enumerate(seeds):
        g = df[df["seed"].astype(str) == s]
        y = [claims.index(c) + 0.18 * (k - (len(seeds) - 1) / 2) for c in g["claim"]]
        ax.errorbar(100 * g["diff"], y, xerr=[100 * (g["diff"] - g["lo"]), 100 * (g["hi"] - g["diff"])],
                    fmt="D" if s == "pooled" else "o", ms=6 if s == "pooled" else 4, capsize=2,
                    color="black" if s == "pooled" else f"C{k}", label=f"seed {s}" if s != "pooled" else "pooled")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(range(len(claims)), [f"{c} ({st})" for c, st in dict.fromkeys(zip(df["claim"], df["stratum"]))])
    ax.invert_yaxis()
    ax.set_xlabel("difference, accuracy points (paired 95% interval)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


FIGURES: dict[str, FigureSpec] = {
    "ablations": ("ablations", export_ablations, ablation_figure),
    "test_time_scaling": ("test_time_scaling", export_tts, tts_figure),
    "curriculum_entropy": ("curriculum_entropy", export_curriculum, entropy_figure),
    "triage": ("triage", export_triage, triage_figure),
    "seed_claims": ("seed_claims", export_seed_claims, seed_claims_figure),
}


def refresh_from_run(run_dir: str | Path, fig_dir: str | Path) -> dict[str, str]:
    """Rewrite the CSV files in ``fig_dir`` from a run; returns ``{name: "ok" | reason}``
    (a figure whose source the run lacks is left as it is and reported).

    ``SOURCE.json`` names the run every CSV comes from: rewritten to this run when it
    refreshed them all; when it refreshed only some, it keeps the previous source and lists
    the refreshed ones under ``"refreshed_from"`` (so the README never credits one run with
    another's numbers); untouched when it refreshed none.
    """
    run_dir, fig_dir = Path(run_dir), Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    status = {}
    for name, (stem, export, _) in FIGURES.items():
        try:
            df = export(run_dir)
        except (FileNotFoundError, KeyError) as e:
            status[name] = f"kept (run lacks it: {e})"
            continue
        df.to_csv(fig_dir / f"{stem}.csv", index=False)
        status[name] = "ok"
    done = [n for n, st in status.items() if st == "ok"]
    src_path = fig_dir / "SOURCE.json"
    if len(done) == len(status):
        src_path.write_text(json.dumps(_source(run_dir), indent=2) + "\n")
    elif done:
        prev = json.loads(src_path.read_text()) if src_path.is_file() else {}
        refreshed = dict(prev.get("refreshed_from") or {})
        refreshed.update({n: _source(run_dir) for n in done})
        src_path.write_text(json.dumps({**prev, "refreshed_from": refreshed}, indent=2) + "\n")
    return status


def _source(run_dir: Path) -> dict[str, Any]:
    man = json.loads((run_dir / "manifest.json").read_text()) if (run_dir / "manifest.json").is_file() else {}
    return {k: man.get(k) for k in ("run_id", "profile", "git_commit", "seeds", "hardware", "created", "updated")}


def redraw(fig_dir: str | Path) -> dict[str, str]:
    """Redraw every figure whose CSV is in ``fig_dir``; returns ``{name: "ok" | reason}``."""
    fig_dir = Path(fig_dir)
    status = {}
    for name, (stem, _, draw) in FIGURES.items():
        csv = fig_dir / f"{stem}.csv"
        if not csv.is_file():
            status[name] = "missing data file"
            continue
        fig = draw(pd.read_csv(csv))
        save(fig, fig_dir / f"{stem}.png")  # warns when the figure would be hard to read in a notebook
        plt.close(fig)
        status[name] = "ok"
    return status


# ----------------------------------------------------------------------------------------
# the README's results block, generated from the data files (never typed)
# ----------------------------------------------------------------------------------------
RESULTS_START = "<!-- results:start (generated by `make figures` from figures/*.csv; do not edit) -->"
RESULTS_END = "<!-- results:end -->"


def _ci(r: Any) -> str:
    return f"{100 * r['acc']:.1f} [{100 * r['lo']:.1f}, {100 * r['hi']:.1f}]"


def _num(r: Any, key: str) -> float | None:
    v = r.get(key) if hasattr(r, "get") else None
    return None if v is None or pd.isna(v) else float(v)


def _top(r: Any) -> str:
    """``"top A 100%"`` from a row's ``top_answer``/``top_answer_share`` ("" when not recorded)."""
    share = _num(r, "top_answer_share")
    if share is None:
        return ""
    ans = r.get("top_answer")
    return f"top {'–' if ans is None or pd.isna(ans) else ans} {100 * share:.0f}%"


#: what the README says when a CSV predates the answer-distribution columns
_NO_GUARD = ("`{name}` has no `top_answer_share` / `gold_top_share` columns (written before the answer-distribution "
             "guard): refresh it from a run (`make figures RUN=runs/<id>`) to see them.")


def results_markdown(fig_dir: str | Path) -> str:
    """Markdown tables of the headline numbers from the CSV files in ``fig_dir``."""
    fig_dir = Path(fig_dir)
    out = []
    src = fig_dir / "SOURCE.json"
    if src.is_file():
        s = json.loads(src.read_text())
        out.append(f"Source run: `{s.get('run_id')}` (profile `{s.get('profile')}`, the run's own seed(s) {s.get('seeds')} — seed replicates in the seed table, "
                   f"commit `{str(s.get('git_commit'))[:12]}`, {(s.get('hardware') or {}).get('cpu_count')} CPU cores)"
                   + "".join(f"; `{n}` from run `{r.get('run_id')}` (commit `{str(r.get('git_commit'))[:12]}`)"
                             for n, r in (s.get("refreshed_from") or {}).items()) + ".\n")
    abl = fig_dir / "ablations.csv"
    if abl.is_file():
        df = pd.read_csv(abl)
        df = df[df["available"].astype(bool)] if "available" in df else df
        datasets = list(dict.fromkeys(df["dataset"]))
        out.append("**Ablations** — closed-question accuracy %, bootstrap 95% CI (`figures/ablations.png`):\n")
        out.append("| system | " + " | ".join(datasets) + " |")
        out.append("|---|" + "---|" * len(datasets))
        for system in dict.fromkeys(df["system"]):
            cells = []
            for ds in datasets:
                r = df[(df["dataset"] == ds) & (df["system"] == system)]
                if not len(r):
                    cells.append("–")
                    continue
                vr = r.iloc[0].get("valid_rate")
                valid = "" if vr is None or pd.isna(vr) else f", {100 * vr:.0f}% valid"
                top, gold = _top(r.iloc[0]), _num(r.iloc[0], "gold_top_share")
                guard = (f"; {top}" if top else "") + (f", gold top {100 * gold:.0f}%" if top and gold is not None else "")
                cells.append(_ci(r.iloc[0]) + f" (n={int(r.iloc[0]['n'])}{valid}{guard})")
            out.append(f"| {system} | " + " | ".join(cells) + " |")
        out.append("")
        if "top_answer_share" in df and df["top_answer_share"].notna().any():
            out.append("*top X p%*: the system's most frequent answer and its share of the items; *gold top*: the share of "
                       "the most frequent gold answer on the same items (what always giving it would score).")
            if "chance" in df and df["chance"].notna().any():
                ch = {ds: df.loc[(df["dataset"] == ds) & df["chance"].notna(), "chance"] for ds in datasets}
                out.append("Chance (mean over items of 1 / number of options): "
                           + ", ".join(f"{ds} {100 * float(c.iloc[0]):.1f}%" for ds, c in ch.items() if len(c)) + ".")
        else:
            out.append(_NO_GUARD.format(name="ablations.csv"))
        out.append("")
    tts = fig_dir / "test_time_scaling.csv"
    if tts.is_file():
        df = pd.read_csv(tts)
        out.append("**Test-time scaling** — majority vote over sampled attending answers, accuracy % [95% CI] per "
                   "samples per item (`figures/test_time_scaling.png`; *adaptive* = more samples where the panel "
                   "disagrees, same mean):\n")
        if "attending" not in df:
            df = df.assign(attending="attending")
        budgets = sorted(int(n) for n in df.loc[df["policy"] != "greedy", "N"].unique())
        guard = "top_answer_share" in df and df["top_answer_share"].notna().any()

        def cell(r: Any) -> str:
            return _ci(r) + (f" ({_top(r)})" if guard and _top(r) else "")

        out.append("| attending | dataset | policy | greedy | " + " | ".join(f"N={b}" for b in budgets)
                   + (" | gold top |" if guard else " |"))
        out.append("|---|---|---|---|" + "---|" * len(budgets) + ("---|" if guard else ""))
        for (att, ds), g in df.groupby(["attending", "dataset"], sort=False):
            greedy = g[g["policy"] == "greedy"]
            gtxt = cell(greedy.iloc[0]) if len(greedy) else "–"
            gold = g["gold_top_share"].dropna() if guard and "gold_top_share" in g else pd.Series(dtype=float)
            for pol in ("uniform", "adaptive"):
                h = g[g["policy"] == pol].set_index("N")
                if h.empty:
                    continue
                cells = [cell(h.loc[b]) if b in h.index else "–" for b in budgets]
                out.append(f"| {att} | {ds} | {pol} | {gtxt if pol == 'uniform' else ''} | " + " | ".join(cells)
                           + (f" | {100 * float(gold.iloc[0]):.0f}% |" if guard and len(gold) else (" | – |" if guard else " |")))
        out.append("")
        if guard:
            out.append("*top X p%*: the most frequent answer of the vote (one realisation: each item votes over its first "
                       "N samples) and its share of the items; *gold top*: the most frequent gold answer's share.")
        else:
            out.append(_NO_GUARD.format(name="test_time_scaling.csv"))
        out.append("")
    tri = fig_dir / "triage.csv"
    if tri.is_file():
        df = pd.read_csv(tri)
        out.append("**Triage** — accuracy % per specialty [95% CI] (`figures/triage.png`):\n")
        guard = "top_answer_share" in df and df["top_answer_share"].notna().any()
        out.append("| dataset | specialty | when | n | accuracy |" + (" top answer | gold top |" if guard else ""))
        out.append("|---|---|---|---|---|" + ("---|---|" if guard else ""))
        for _, r in df.iterrows():
            extra = ""
            if guard:
                gold = _num(r, "gold_top_share")
                extra = f" {_top(r) or '–'} | {'–' if gold is None else f'{100 * gold:.0f}%'} |"
            out.append(f"| {r['dataset']} | {r['specialty']} | {r['when']} | {int(r['n'])} | {_ci(r)} |" + extra)
        out.append("")
        if not guard:
            out.append(_NO_GUARD.format(name="triage.csv"))
            out.append("")
    sc = fig_dir / "seed_claims.csv"
    if sc.is_file():
        df = pd.read_csv(sc)
        n_seeds = df.loc[df["seed"].astype(str) != "pooled", "seed"].nunique()
        out.append(f"**The attending's claims over {n_seeds} seeds** (notebook 04, synthetic held-out items; "
                   "accuracy points, paired 95% CI; *pooled* = all seeds' items together; `figures/seed_claims.png`):\n")
        seeds = [s for s in dict.fromkeys(df["seed"].astype(str)) if s != "pooled"]
        out.append("| claim | stratum | " + " | ".join(f"seed {s}" for s in seeds) + " | pooled | verdict (pooled) |")
        out.append("|---|---|" + "---|" * (len(seeds) + 2))
        for (claim, st), g in df.groupby(["claim", "stratum"], sort=False):
            cell = {str(r["seed"]): f"{100 * r['diff']:+.1f} [{100 * r['lo']:+.1f}, {100 * r['hi']:+.1f}]" for _, r in g.iterrows()}
            p = g[g["seed"].astype(str) == "pooled"]
            verdict = "–" if p.empty else claim_verdict(float(p["lo"].iloc[0]), float(p["hi"].iloc[0]))
            out.append(f"| {claim} | {st} | " + " | ".join(cell.get(s, "–") for s in seeds)
                       + f" | {cell.get('pooled', '–')} | {verdict} |")
        out.append("")
    out.extend(claims_markdown(fig_dir))
    return "\n".join(out) if out else "(no results yet: run `make figures RUN=runs/<id>` after the main job)\n"


#: the claim lines read off ``triage.csv``
TRIAGE_CLAIM = "triage GRPO gain (vs cold-start triage)"
TRIAGE_MAJORITY_CLAIM = "triage GRPO vs majority class (always the most frequent specialty)"


def triage_gain_claims(df: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Triage accuracy after GRPO minus after the cold start, per dataset, from ``triage.csv``.

    When the ``(all)`` GRPO row holds ``gain``, ``gain_lo``, ``gain_hi`` (written by
    :func:`export_triage` from notebook 03's paired bootstrap over the same images), those
    are used. Older CSVs hold only each stage's accuracy and n: the interval is then an
    **unpaired** percentile bootstrap of the difference, each side resampled from its own
    counts (``round(acc·n)`` correct of n) — wider than the paired one when the two
    policies' errors are positively correlated.

    A dataset with a "majority class" ``(all)`` row that holds ``gain`` (GRPO − majority
    class, paired) adds a :data:`TRIAGE_MAJORITY_CLAIM` row.

    Returns:
        One row per dataset (and claim), columns ``claim, dataset, n, diff, lo, hi,
        interval, verdict`` (``interval`` = ``"paired"`` or ``"unpaired"``); datasets
        lacking either ``(all)`` row are left out.
    """
    out = []
    rng = np.random.default_rng(seed)
    for ds in dict.fromkeys(df["dataset"]):
        d = df[(df["dataset"] == ds) & (df["specialty"] == "(all)")]
        g, c = d[d["when"] == "GRPO"], d[d["when"] == "cold start"]
        if g.empty or c.empty:
            continue
        g, c = g.iloc[0], c.iloc[0]
        if "gain" in df and pd.notna(g.get("gain")):
            diff, lo, hi, kind = float(g["gain"]), float(g["gain_lo"]), float(g["gain_hi"]), "paired"
        else:
            ng, nc = int(g["n"]), int(c["n"])
            reps = (rng.binomial(ng, round(g["acc"] * ng) / ng, n_boot) / ng
                    - rng.binomial(nc, round(c["acc"] * nc) / nc, n_boot) / nc)
            diff, kind = float(g["acc"] - c["acc"]), "unpaired"
            lo, hi = (float(x) for x in np.quantile(reps, [0.025, 0.975]))
        out.append({"claim": TRIAGE_CLAIM, "dataset": ds, "n": int(g["n"]), "diff": diff, "lo": lo, "hi": hi,
                    "interval": kind, "verdict": claim_verdict(lo, hi)})
        mj = d[d["when"] == MAJORITY_CLASS]
        if len(mj) and "gain" in df and pd.notna(mj.iloc[0].get("gain")):
            r = mj.iloc[0]
            out.append({"claim": TRIAGE_MAJORITY_CLAIM, "dataset": ds, "n": int(r["n"]), "diff": float(r["gain"]),
                        "lo": float(r["gain_lo"]), "hi": float(r["gain_hi"]), "interval": "paired",
                        "verdict": claim_verdict(float(r["gain_lo"]), float(r["gain_hi"]))})
    return pd.DataFrame(out, columns=["claim", "dataset", "n", "diff", "lo", "hi", "interval", "verdict"])


def _pts(d: float, lo: float, hi: float) -> str:
    return f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def claims_markdown(fig_dir: str | Path) -> list[str]:
    """One line per paper claim: full system minus the ablated row (paired bootstrap 95%
    interval, from ``ablations.csv``, :func:`ablation_claims`), the triage GRPO gain
    (``triage.csv``, :func:`triage_gain_claims`), and the test-time scaling gain
    (``test_time_scaling.csv``)."""
    fig_dir = Path(fig_dir)
    out: list[str] = []
    abl, tri = fig_dir / "ablations.csv", fig_dir / "triage.csv"
    claims = ablation_claims(pd.read_csv(abl)) if abl.is_file() else pd.DataFrame()
    triage = triage_gain_claims(pd.read_csv(tri)) if tri.is_file() else pd.DataFrame()
    if len(claims) or len(triage):
        out.append("**The paper's claims, measured here** (accuracy points, 95% CI; ablation claims: full system − "
                   "ablated row, paired bootstrap over items; a claim whose system gives no valid answer is not "
                   "measurable):\n")
        out.append("| claim | dataset | difference | verdict |")
        out.append("|---|---|---|---|")
        for _, c in claims.iterrows():
            if pd.isna(c["diff"]):
                out.append(f"| {c['claim']} | {c['dataset']} | not in this run | – |")
            else:
                out.append(f"| {c['claim']} | {c['dataset']} | {_pts(c['diff'], c['lo'], c['hi'])} | {c['verdict']} |")
        for _, c in triage.iterrows():
            mark = "" if c["interval"] == "paired" else "†"
            out.append(f"| {c['claim']}{mark} | {c['dataset']} (n={c['n']}) | {_pts(c['diff'], c['lo'], c['hi'])} | "
                       f"{c['verdict']} |")
        out.append("")
        if len(triage):
            out.append("Triage: GRPO − cold start (and GRPO − the majority class, where listed) on the same images "
                       "(`figures/triage.csv`); "
                       + ("† the CSV holds no paired difference, so the interval is an unpaired bootstrap from each "
                          "stage's accuracy and n (wider than the paired one when the two policies err on the same images)."
                          if (triage["interval"] == "unpaired").any() else "paired bootstrap over images."))
            out.append("")
    tts = fig_dir / "test_time_scaling.csv"
    if tts.is_file():
        df = pd.read_csv(tts)
        if "attending" not in df:
            df = df.assign(attending="attending")
        for att in dict.fromkeys(df["attending"]):
            for ds in dict.fromkeys(df["dataset"]):
                u = df[(df["attending"] == att) & (df["dataset"] == ds) & (df["policy"] == "uniform")].sort_values("N")
                if len(u) >= 2:
                    a, b = u.iloc[0], u.iloc[-1]
                    zero = bool((u["acc"] == 0).all() and (u["hi"] == 0).all())
                    out.append(f"- test-time scaling, {att}, {ds}: {100 * a['acc']:.1f} % [{100 * a['lo']:.1f}, {100 * a['hi']:.1f}] "
                               f"with 1 sample → {100 * b['acc']:.1f} % [{100 * b['lo']:.1f}, {100 * b['hi']:.1f}] with "
                               f"{int(b['N'])} (majority vote; intervals over items, not paired)"
                               + (" — not measurable: it scores 0 on every item at every budget." if zero else "."))
        out.append("")
    return out


def update_readme(readme: str | Path, fig_dir: str | Path) -> bool:
    """Replace the README's results block with :func:`results_markdown`; True when changed.

    Raises:
        ValueError: the README lacks the start/end markers.
    """
    readme = Path(readme)
    text = readme.read_text()
    if RESULTS_START not in text or RESULTS_END not in text:
        raise ValueError(f"{readme} lacks the results markers {RESULTS_START!r} ... {RESULTS_END!r}")
    head, rest = text.split(RESULTS_START, 1)
    _, tail = rest.split(RESULTS_END, 1)
    new = f"{head}{RESULTS_START}\n{results_markdown(fig_dir)}\n{RESULTS_END}{tail}"
    if new != text:
        readme.write_text(new)
        return True
    return False
