"""The paper's ablation table (§5), on the same closed evaluation items, reusing what a run
has trained (no retraining: stage checkpoints and variants are read from the run).

Rows (:data:`ABLATION_ROWS`):

==============================================  ===========================================
row                                             what changes
==============================================  ===========================================
full system                                     trained triage + C-MARL attending (last stage)
w/o triage: random specialty                    uniform specialty per item (seeded)
w/o triage: fixed Radiologist                   always Radiologist — on VQA-RAD (all
                                                radiology) this *equals* perfect triage
w/o specialists (attending alone)               no opinions in the attending prompt
w/o C-MARL: cold-start attending                the attending before any GRPO
w/o C-MARL: GRPO without curriculum             variant ``no_curriculum`` (all strata shuffled)
C-MARL without entropy bonus                    variant ``no_entropy`` (beyond the paper)
C-MARL with constant γ                          variant ``constant_entropy`` (beyond the paper)
C-MARL with an entropy target                   variant ``adaptive_entropy`` (beyond the paper:
                                                γ gated by TRL's adaptive entropy control)
+ Easy                                          curriculum stage 1 adapters
+ Easy + Medium                                 curriculum stage 2 adapters
+ Easy + Medium + Hard                          curriculum stage 3 adapters (= full system)
static MDAgents-style baseline                  fixed Radiologist panel, majority vote, no
                                                attending
==============================================  ===========================================

A row whose weights the run does not hold is reported as unavailable (with the reason),
never silently dropped. Triage decisions are computed once per dataset and reused by every
row with the same triage; each distinct attending is loaded once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..agents.attending import AttendingPhysician
from ..agents.build import load_runner, policy_source, sampling_params, specialist_factory, variant_dir_name
from ..agents.pipeline import PanelBank, as_item_list, run_consultation, write_predictions
from ..agents.triage import TriageDecision, TriageDoctor
from ..config import Profile
from ..runs import Run, write_json_atomic
from .metrics import accuracy_ci, paired_bootstrap_diff


@dataclass(frozen=True)
class AblationRow:
    """One row: ``triage`` is ``"trained"``, ``"random"`` or ``"fixed:<Specialty>"``;
    ``attending`` is ``(variant, stage)`` for :func:`mmed.agents.build.policy_source`
    (stage ``"latest"``, ``"sft"``, or ``"#k"`` = the k-th curriculum stage) or None (no
    attending); ``decision`` as in :func:`mmed.agents.pipeline.run_consultation`."""

    name: str
    triage: str
    decision: str
    attending: tuple[str | None, str] | None


ABLATION_ROWS: tuple[AblationRow, ...] = (
    AblationRow("full system", "trained", "attending", (None, "latest")),
    AblationRow("w/o triage: random specialty", "random", "attending", (None, "latest")),
    AblationRow("w/o triage: fixed Radiologist", "fixed:Radiologist", "attending", (None, "latest")),
    AblationRow("w/o specialists (attending alone)", "trained", "attending_alone", (None, "latest")),
    AblationRow("w/o C-MARL: cold-start attending", "trained", "attending", (None, "sft")),
    AblationRow("w/o C-MARL: GRPO without curriculum", "trained", "attending", ("no_curriculum", "latest")),
    AblationRow("C-MARL without entropy bonus", "trained", "attending", ("no_entropy", "latest")),
    AblationRow("C-MARL with constant γ (γ_medium in every stage)", "trained", "attending", ("constant_entropy", "latest")),
    AblationRow("C-MARL with an entropy target (γ only while entropy ≤ target)", "trained", "attending",
                ("adaptive_entropy", "latest")),
    AblationRow("+ Easy", "trained", "attending", (None, "#1")),
    AblationRow("+ Easy + Medium", "trained", "attending", (None, "#2")),
    AblationRow("+ Easy + Medium + Hard", "trained", "attending", (None, "#3")),
    AblationRow("static MDAgents-style (Radiologist panel, majority vote)", "fixed:Radiologist", "majority_vote", None),
)


def slug(name: str) -> str:
    """File-system name of a row."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _stage_name(run: Run, variant: str | None, k: int) -> str | None:
    root = run.path("attending", variant_dir_name(variant))
    stages = sorted((p.name for p in root.glob("stage_*") if (p / "final" / "adapter_config.json").is_file()),
                    key=lambda n: int(n.split("_")[1]))
    return stages[k - 1] if 0 < k <= len(stages) else None


def run_ablations(
    run: Run,
    profile: Profile,
    datasets_items: dict[str, Any],
    seed: int = 0,
    rows: Sequence[AblationRow] = ABLATION_ROWS,
    out_dir: str | Path | None = None,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict[str, dict[str, list[dict[str, Any]]]]]:
    """Evaluate every row on every dataset.

    Args:
        datasets_items: ``{dataset label: items}`` (schema datasets or item dicts; closed).
        out_dir: where per-row predictions go (default ``<run>/eval/ablations``).
    Returns:
        ``(table, records)``: one table row per (dataset, ablation row) with ``n``, ``acc``,
        ``lo``, ``hi``, per-stratum accuracies, ``delta_vs_full`` with its paired bootstrap
        interval, ``weights`` and ``available`` (False + ``reason`` when the run lacks the
        weights); ``records[dataset][row name]`` are the prediction records.
    """
    out_dir = Path(out_dir) if out_dir else run.path("eval", "ablations")
    sp = sampling_params(profile, seed)
    style = profile.sampling.prompt_style
    panels = PanelBank(specialist_factory(profile, seed, run=run), profile.specialists.panel_size)
    triage_runner = None
    attendings: dict[tuple[str, str | None], AttendingPhysician] = {}
    table: list[dict[str, Any]] = []
    all_records: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for ds_name, items in datasets_items.items():
        rows_items = as_item_list(items)
        trained_routes: list[TriageDecision] | None = None
        all_records[ds_name] = {}
        full_correct = None
        for row in rows:
            entry: dict[str, Any] = {"dataset": ds_name, "system": row.name, "available": True, "reason": ""}
            try:
                # the attending weights of this row
                attending = None
                if row.attending is not None:
                    variant, stage = row.attending
                    if stage.startswith("#"):
                        name = _stage_name(run, variant, int(stage[1:]))
                        if name is None:
                            raise FileNotFoundError(f"no curriculum stage {stage[1:]} in attending/{variant_dir_name(variant)}")
                        stage = name
                    src = policy_source(run, profile, "attending", stage, variant=variant)
                    if variant is not None and src.adapters is None:
                        raise FileNotFoundError(f"variant {variant!r} has no trained stages in this run")
                    key = (src.base, src.adapters)
                    if key not in attendings:
                        attendings[key] = AttendingPhysician(load_runner(profile, src, "attending"), sp, style=style)
                    attending = attendings[key]
                    entry["weights"] = src.label
                # the triage of this row
                if row.triage == "trained":
                    if trained_routes is None:
                        if triage_runner is None:
                            src_t = policy_source(run, profile, "triage", "latest")
                            triage_runner = (load_runner(profile, src_t, "triage"), src_t.label)
                        trained_routes = TriageDoctor(triage_runner[0], "model", seed=seed, sampling=sp, style=style).route(rows_items, progress=progress)
                    triage = _Precomputed(trained_routes)
                    entry["triage"] = triage_runner[1]
                elif row.triage == "random":
                    triage = TriageDoctor(mode="random", seed=seed)
                    entry["triage"] = "random"
                else:
                    triage = TriageDoctor(mode="fixed", fixed_specialty=row.triage.split(":", 1)[1])
                    entry["triage"] = row.triage
                recs = run_consultation(rows_items, triage, panels, attending, decision=row.decision,
                                        tags={"profile": profile.name, "seed": seed, "ablation": row.name}, progress=progress)
            except FileNotFoundError as e:
                entry.update(available=False, reason=str(e))
                table.append(entry)
                continue
            all_records[ds_name][row.name] = recs
            write_predictions(recs, out_dir / ds_name / slug(row.name) / "predictions.jsonl")
            correct = [bool(r["correct"]) for r in recs]
            acc = accuracy_ci(correct, profile.eval.bootstrap_samples, seed=seed)
            entry.update(n=acc["n"], acc=acc["acc"], lo=acc["lo"], hi=acc["hi"])
            for st in ("easy", "medium", "hard"):
                sub = [r["correct"] for r in recs if r.get("stratum") == st]
                entry[f"acc_{st}"] = sum(sub) / len(sub) if sub else None
                entry[f"n_{st}"] = len(sub)
            if row.name == "full system":
                full_correct = correct
            if full_correct is not None and row.name != "full system":
                d = paired_bootstrap_diff(correct, full_correct, n_boot=profile.eval.bootstrap_samples, seed=seed)
                entry.update(delta_vs_full=d["diff"], delta_lo=d["lo"], delta_hi=d["hi"])
            table.append(entry)
    df = pd.DataFrame(table)
    out_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(out_dir / "table.csv", index=False)
    (out_dir / "table.md").write_text(markdown_table(df))
    write_json_atomic(out_dir / "table.json", table)
    return df, all_records


class _Precomputed(TriageDoctor):
    """A triage doctor that returns decisions computed earlier (same items, same order)."""

    def __init__(self, routes: Sequence[TriageDecision]):
        super().__init__(mode="gold")
        self.routes = list(routes)

    def route(self, items, progress: bool = True):
        if len(items) != len(self.routes):
            raise ValueError(f"{len(self.routes)} precomputed routes for {len(items)} items")
        return list(self.routes)


def markdown_table(df: pd.DataFrame) -> str:
    """The ablation table as Markdown: accuracy [95% CI] per dataset, Δ vs full system."""
    lines = ["| dataset | system | n | accuracy [95% CI] | Δ vs full [95% CI] | easy | medium | hard |",
             "|---|---|---|---|---|---|---|---|"]
    pct = lambda v: "–" if v is None or pd.isna(v) else f"{100 * v:.1f}"
    for _, r in df.iterrows():
        if not r.get("available", True):
            lines.append(f"| {r['dataset']} | {r['system']} | – | not available: {r['reason']} | | | | |")
            continue
        delta = "" if pd.isna(r.get("delta_vs_full")) else f"{100 * r['delta_vs_full']:+.1f} [{100 * r['delta_lo']:+.1f}, {100 * r['delta_hi']:+.1f}]"
        lines.append(
            f"| {r['dataset']} | {r['system']} | {int(r['n'])} | {pct(r['acc'])} [{pct(r['lo'])}, {pct(r['hi'])}] | {delta} | "
            f"{pct(r.get('acc_easy'))} | {pct(r.get('acc_medium'))} | {pct(r.get('acc_hard'))} |"
        )
    return "\n".join(lines) + "\n"
