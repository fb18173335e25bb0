"""Figures: drawn from small CSV files, so that they can be redrawn without retraining.

Each README figure lives in ``figures/`` beside the CSV it is drawn from (DESIGN §4):

==========================  ==================================================  =================
figure                      data file (columns)                                 source in a run
==========================  ==================================================  =================
``ablations.png``           ``ablations.csv`` (dataset, system, n, acc, lo,     ``eval/ablations/table.csv``
                            hi, acc_easy/medium/hard, delta_vs_full ...)
``test_time_scaling.png``   ``test_time_scaling.csv`` (attending, dataset,      ``eval/tts/curve.csv``
                            policy, N, acc, lo, hi, n, mean_samples)
``curriculum_entropy.png``  ``curriculum_entropy.csv`` (variant, stage,          ``attending/<variant>/stage_*/log_history.jsonl``
                            stage_index, gamma, step, global_step, entropy,
                            reward, format_valid)
``triage.png``              ``triage.csv`` (when, dataset, specialty, acc, lo,   ``eval/notebook_03_triage_grpo.json``
                            hi, n)
==========================  ==================================================  =================

``python -m mmed figures`` (``make figures``) redraws every PNG from its CSV and rewrites
the README's results block from the CSVs; ``--run-dir R`` (``make figures RUN=R``) first
refreshes the CSVs from a run — only when asked. Notebooks draw the same figures from the
run into ``runs/<id>/figures/``; nothing writes ``figures/`` unless told to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

PALETTE = {"easy": "#55a868", "medium": "#dd8452", "hard": "#c44e52", "all": "#4c72b0"}


# ----------------------------------------------------------------------------------------
# drawing
# ----------------------------------------------------------------------------------------
def ablation_figure(df: pd.DataFrame):
    """Accuracy with 95% intervals per ablation row, one panel per dataset."""
    df = df[df["available"].astype(bool)] if "available" in df else df
    datasets = list(dict.fromkeys(df["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.5 * len(datasets), 0.42 * df["system"].nunique() + 1.5),
                             squeeze=False, sharey=True)
    for ax, ds in zip(axes[0], datasets):
        d = df[df["dataset"] == ds]
        y = np.arange(len(d))
        ax.errorbar(d["acc"], y, xerr=[d["acc"] - d["lo"], d["hi"] - d["acc"]], fmt="o", color="#4c72b0", capsize=3)
        full = d[d["system"] == "full system"]
        if len(full):
            ax.axvline(float(full["acc"].iloc[0]), color="#999", ls="--", lw=1)
        ax.set_yticks(y, d["system"])
        ax.set_xlim(0, 1)
        ax.set_xlabel("closed-question accuracy (95% CI)")
        ax.set_title(ds)
        ax.invert_yaxis()
    fig.tight_layout()
    return fig


def tts_figure(df: pd.DataFrame):
    """Majority-vote accuracy vs samples per item (log2 axis) with intervals, one panel per
    dataset, one colour per attending (solid: uniform budget; dashed squares: adaptive)."""
    df = df[df["policy"] != "greedy"]
    if "attending" not in df:
        df = df.assign(attending="attending")
    datasets = list(dict.fromkeys(df["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 3.8), squeeze=False)
    colours = dict(zip(dict.fromkeys(df["attending"]), ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]))
    for ax, ds in zip(axes[0], datasets):
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
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def entropy_figure(df: pd.DataFrame, variants: list[str] | None = None):
    """Per-step policy entropy coloured by curriculum stage, one panel per variant, with
    the format-valid rate on a twin axis when logged."""
    variants = variants or list(dict.fromkeys(df["variant"]))
    ncol = min(2, len(variants))
    nrow = -(-len(variants) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6 * ncol, 3.4 * nrow), squeeze=False, sharey=True)
    for ax in axes.flat[len(variants):]:
        ax.axis("off")
    for ax, v in zip(axes.flat, variants):
        d = df[df["variant"] == v]
        for stage, g in d.groupby("stage", sort=False):
            colour = PALETTE.get(str(stage).split("_")[-1], PALETTE["all"])
            gamma = g["gamma"].iloc[0] if "gamma" in g else None
            ax.plot(g["global_step"], g["entropy"], ".-", color=colour, label=f"{stage} (γ={gamma:g})" if gamma is not None else stage)
        ax.set_xlabel("global step")
        ax.set_ylabel("mean token entropy (nats)")
        ax.set_title(v)
        ax.legend(fontsize=7)
        if "format_valid" in d and d["format_valid"].notna().any():
            ax2 = ax.twinx()
            ax2.plot(d["global_step"], d["format_valid"], color="#888", lw=0.8, alpha=0.7)
            ax2.set_ylim(0, 1.05)
            ax2.set_ylabel("format-valid rate", color="#888")
    fig.tight_layout()
    return fig


def triage_figure(df: pd.DataFrame):
    """Triage accuracy per specialty after the cold start and after GRPO (with intervals)."""
    datasets = list(dict.fromkeys(df["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 3.4), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        d = df[df["dataset"] == ds]
        specs = list(dict.fromkeys(d["specialty"]))
        whens = list(dict.fromkeys(d["when"]))
        w = 0.8 / max(1, len(whens))
        for k, when in enumerate(whens):
            g = d[d["when"] == when].set_index("specialty").reindex(specs)
            x = np.arange(len(specs)) + k * w
            ax.bar(x, g["acc"], width=w, label=when, yerr=[g["acc"] - g["lo"], g["hi"] - g["acc"]], capsize=2)
        ax.set_xticks(np.arange(len(specs)) + w * (len(whens) - 1) / 2, specs, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("triage accuracy (95% CI)")
        ax.set_title(ds)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------
# exporting the data files from a run
# ----------------------------------------------------------------------------------------
def export_ablations(run_dir: Path) -> pd.DataFrame:
    """``eval/ablations/table.csv`` of a run (notebook 05)."""
    return pd.read_csv(run_dir / "eval" / "ablations" / "table.csv")


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


def export_triage(run_dir: Path) -> pd.DataFrame:
    """Triage accuracy per specialty after the cold start (``sft``) and after GRPO, on the
    synthetic test split and on the real images, from notebook 03's metrics
    (``eval.<when>.<dataset>.by_specialty``) plus an ``(all)`` row per set."""
    m = json.loads((run_dir / "eval" / "notebook_03_triage_grpo.json").read_text())
    rows = []
    for when, label in (("sft", "cold start"), ("grpo", "GRPO")):
        for ds, d in (m.get("eval", {}).get(when) or {}).items():
            if ds not in ("synthetic", "real"):
                continue
            per = dict(d.get("by_specialty") or {})
            per["(all)"] = {"accuracy": d["accuracy"]}
            for spec, v in per.items():
                a = (v or {}).get("accuracy")
                if a and a.get("n"):  # specialties without images are listed with no accuracy
                    rows.append({"when": label, "dataset": ds, "specialty": spec, "acc": a["acc"], "lo": a["lo"], "hi": a["hi"], "n": a["n"]})
    if not rows:
        raise KeyError("notebook 03 metrics hold no per-specialty evaluation")
    return pd.DataFrame(rows)


FigureSpec = tuple[str, Callable[[Path], pd.DataFrame], Callable[[pd.DataFrame], Any]]
#: name → (data file stem, export from run, draw)
FIGURES: dict[str, FigureSpec] = {
    "ablations": ("ablations", export_ablations, ablation_figure),
    "test_time_scaling": ("test_time_scaling", export_tts, tts_figure),
    "curriculum_entropy": ("curriculum_entropy", export_curriculum, entropy_figure),
    "triage": ("triage", export_triage, triage_figure),
}


def refresh_from_run(run_dir: str | Path, fig_dir: str | Path) -> dict[str, str]:
    """Rewrite the CSV files in ``fig_dir`` from a run; returns ``{name: "ok" | reason}``
    (a figure whose source the run lacks is left as it is and reported)."""
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
    (fig_dir / "SOURCE.json").write_text(json.dumps(_source(run_dir), indent=2) + "\n")
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
        fig.savefig(fig_dir / f"{stem}.png", dpi=110, bbox_inches="tight")
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


def results_markdown(fig_dir: str | Path) -> str:
    """Markdown tables of the headline numbers from the CSV files in ``fig_dir``."""
    fig_dir = Path(fig_dir)
    out = []
    src = fig_dir / "SOURCE.json"
    if src.is_file():
        s = json.loads(src.read_text())
        out.append(f"Source run: `{s.get('run_id')}` (profile `{s.get('profile')}`, seeds {s.get('seeds')}, "
                   f"commit `{str(s.get('git_commit'))[:12]}`, {s.get('hardware', {}).get('cpu_count')} CPU cores).\n")
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
                cells.append(_ci(r.iloc[0]) + f" (n={int(r.iloc[0]['n'])})" if len(r) else "–")
            out.append(f"| {system} | " + " | ".join(cells) + " |")
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
        out.append("| attending | dataset | policy | greedy | " + " | ".join(f"N={b}" for b in budgets) + " |")
        out.append("|---|---|---|---|" + "---|" * len(budgets))
        for (att, ds), g in df.groupby(["attending", "dataset"], sort=False):
            greedy = g[g["policy"] == "greedy"]
            gtxt = _ci(greedy.iloc[0]) if len(greedy) else "–"
            for pol in ("uniform", "adaptive"):
                h = g[g["policy"] == pol].set_index("N")
                if h.empty:
                    continue
                cells = [_ci(h.loc[b]) if b in h.index else "–" for b in budgets]
                out.append(f"| {att} | {ds} | {pol} | {gtxt if pol == 'uniform' else ''} | " + " | ".join(cells) + " |")
        out.append("")
    tri = fig_dir / "triage.csv"
    if tri.is_file():
        df = pd.read_csv(tri)
        out.append("**Triage** — accuracy % per specialty [95% CI] (`figures/triage.png`):\n")
        out.append("| dataset | specialty | when | n | accuracy |")
        out.append("|---|---|---|---|---|")
        for _, r in df.iterrows():
            out.append(f"| {r['dataset']} | {r['specialty']} | {r['when']} | {int(r['n'])} | {_ci(r)} |")
        out.append("")
    out.extend(claims_markdown(fig_dir))
    return "\n".join(out) if out else "(no results yet: run `make figures RUN=runs/<id>` after the main job)\n"


#: the paper's claims read off the ablation table: (claim, row compared with the full system)
CLAIM_ROWS: tuple[tuple[str, str], ...] = (
    ("C-MARL gain (vs cold-start attending)", "w/o C-MARL: cold-start attending"),
    ("curriculum gain (vs GRPO without curriculum)", "w/o C-MARL: GRPO without curriculum"),
    ("Hard stage gain (vs Easy + Medium)", "+ Easy + Medium"),
    ("triage gain (vs random specialty)", "w/o triage: random specialty"),
    ("specialists gain (vs attending alone)", "w/o specialists (attending alone)"),
)


def _verdict(lo: float, hi: float) -> str:
    return "holds here" if lo > 0 else ("reversed here" if hi < 0 else "not resolved (interval covers 0)")


def claims_markdown(fig_dir: str | Path) -> list[str]:
    """One line per paper claim: full system minus the ablated row (paired bootstrap 95%
    interval, from ``ablations.csv``), and the test-time scaling gain (``test_time_scaling.csv``)."""
    fig_dir = Path(fig_dir)
    out: list[str] = []
    abl = fig_dir / "ablations.csv"
    if abl.is_file():
        df = pd.read_csv(abl)
        out.append("**The paper's claims, measured here** (full system − ablated row, accuracy points, paired "
                   "bootstrap 95% CI):\n")
        out.append("| claim | dataset | difference | verdict |")
        out.append("|---|---|---|---|")
        for claim, row in CLAIM_ROWS:
            for ds in dict.fromkeys(df["dataset"]):
                r = df[(df["dataset"] == ds) & (df["system"] == row)]
                if r.empty or not bool(r.iloc[0].get("available", True)) or pd.isna(r.iloc[0].get("delta_vs_full")):
                    out.append(f"| {claim} | {ds} | not in this run | – |")
                    continue
                r = r.iloc[0]
                d, lo, hi = -r["delta_vs_full"], -r["delta_hi"], -r["delta_lo"]
                out.append(f"| {claim} | {ds} | {100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] | {_verdict(lo, hi)} |")
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
                    out.append(f"- test-time scaling, {att}, {ds}: {100 * a['acc']:.1f} % [{100 * a['lo']:.1f}, {100 * a['hi']:.1f}] "
                               f"with 1 sample → {100 * b['acc']:.1f} % [{100 * b['lo']:.1f}, {100 * b['hi']:.1f}] with "
                               f"{int(b['N'])} (majority vote; intervals over items, not paired).")
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
