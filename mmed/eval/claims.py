"""The paper's claims read off an ablation table (``run_ablations``' table or
``figures/ablations.csv``): the full system minus each ablated row, with the paired bootstrap
95% interval the table holds, and a verdict. Notebook 05 (:func:`mmed.eval.ablations.ablations_step`)
and the figures' results block (:mod:`mmed.viz.figures`) read them from here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: the paper's claims read off the ablation table: (claim, row compared with the full system)
CLAIM_ROWS: tuple[tuple[str, str], ...] = (
    ("C-MARL gain (vs cold-start attending)", "w/o C-MARL: cold-start attending"),
    ("curriculum gain (vs GRPO without curriculum)", "w/o C-MARL: GRPO without curriculum"),
    ("Hard stage gain (vs Easy + Medium)", "+ Easy + Medium"),
    ("triage gain (vs random specialty)", "w/o triage: random specialty"),
    ("specialists gain (vs attending alone)", "w/o specialists (attending alone)"),
)


#: the rows that differ from the full system only in the attending's weights
WEIGHT_ROWS: frozenset[str] = frozenset({"w/o C-MARL: cold-start attending", "w/o C-MARL: GRPO without curriculum",
                                         "+ Easy + Medium"})


def verdict(lo: float, hi: float, not_measurable: str | None = None) -> str:
    """Verdict of a difference with 95% interval [lo, hi] (claimed direction: > 0).

    ``not_measurable`` (why a compared system's score says nothing, see
    :func:`no_valid_answer`) wins over the interval: a system with no valid answer
    scores 0 by construction, so neither "reversed" nor "not resolved" describes it."""
    if not_measurable:
        return f"not measurable: {not_measurable}"
    return "holds here" if lo > 0 else ("reversed here" if hi < 0 else "not resolved (interval covers 0)")


def no_valid_answer(r: Any) -> str | None:
    """Whether ablation row ``r`` (an ``ablations.csv`` row) gives no measurable answer:
    ``"no_valid"`` when its ``valid_rate`` is 0; ``"all_zero"`` when the CSV predates the
    ``valid_rate`` column and the row scores 0 on every item (acc = upper bound = 0 — on
    multiple-choice questions a model answering validly does that only with vanishing
    probability, so it marks invalid output); None otherwise."""
    vr = r.get("valid_rate")
    if vr is not None and not pd.isna(vr):
        return "no_valid" if float(vr) == 0 else None
    acc, hi = r.get("acc"), r.get("hi")
    if acc is not None and hi is not None and not pd.isna(acc) and float(acc) == 0 and float(hi) == 0:
        return "all_zero"
    return None


def not_measurable(kinds: dict[str, str | None]) -> str | None:
    """Text for :func:`verdict` from ``{system: no_valid_answer(row)}``."""
    parts = []
    for kind, one, many in (("no_valid", "gives no valid answer", "give no valid answer"),
                            ("all_zero", "scores 0 on every item (valid rate not recorded)",
                             "score 0 on every item (valid rate not recorded)")):
        names = [n for n, k in kinds.items() if k == kind]
        if names:
            parts.append(f"{' and '.join(names)} {one if len(names) == 1 else many}")
    return "; ".join(parts) or None


def ablation_claims(df: pd.DataFrame) -> pd.DataFrame:
    """The paper's claims (:data:`CLAIM_ROWS`) read off an ablation table.

    Args:
        df: ``run_ablations(...)[0]`` or ``ablations.csv`` (older files without
            ``valid_rate`` are handled, see :func:`no_valid_answer`).
    Returns:
        One row per (claim, dataset), columns ``claim, dataset, row, diff, lo, hi,
        verdict``: ``diff`` = full system − row (fractions) with the paired bootstrap
        95% interval (the table's ``delta_vs_full`` sign-flipped); the verdict is
        "not measurable: ..." when either system gives no valid answer, and "not in this
        run" (diff NaN) when the row or its difference is missing, or when a row of
        :data:`WEIGHT_ROWS` runs the full system's own attending weights (a run without
        C-MARL, whose "latest" attending is the cold start: the claim would compare a model
        with itself).
    """
    out = []
    for claim, row in CLAIM_ROWS:
        for ds in dict.fromkeys(df["dataset"]):
            base = {"claim": claim, "dataset": ds, "row": row}
            r = df[(df["dataset"] == ds) & (df["system"] == row)]
            full = df[(df["dataset"] == ds) & (df["system"] == "full system")]
            if r.empty or not bool(r.iloc[0].get("available", True)) or pd.isna(r.iloc[0].get("delta_vs_full")):
                out.append({**base, "diff": np.nan, "lo": np.nan, "hi": np.nan, "verdict": "not in this run"})
                continue
            r = r.iloc[0]
            fw = full.iloc[0].get("weights") if len(full) else None
            if row in WEIGHT_ROWS and isinstance(fw, str) and fw == r.get("weights"):
                out.append({**base, "diff": np.nan, "lo": np.nan, "hi": np.nan,
                            "verdict": f"not in this run: the full system runs the same attending ({fw}): no C-MARL trained"})
                continue
            why = not_measurable({"full system": no_valid_answer(full.iloc[0]) if len(full) else None,
                                   row: no_valid_answer(r)})
            # + 0.0: no "-0.0" when the difference is exactly zero
            d, lo, hi = (-float(r[k]) + 0.0 for k in ("delta_vs_full", "delta_hi", "delta_lo"))
            out.append({**base, "diff": d, "lo": lo, "hi": hi, "verdict": verdict(lo, hi, why)})
    return pd.DataFrame(out, columns=["claim", "dataset", "row", "diff", "lo", "hi", "verdict"])
