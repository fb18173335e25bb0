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
from .metrics import IN_DOMAIN, OUT_OF_DOMAIN, accuracy_ci, domain_table, paired_bootstrap_diff


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
        ``lo``, ``hi``, ``n_valid`` and ``valid_rate`` (items whose final answer parsed),
        per-stratum ``acc_<s>``, ``lo_<s>``, ``hi_<s>``, ``n_<s>``
        (:func:`stratum_accuracy`), ``delta_vs_full`` with its paired bootstrap
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
                        doctor = TriageDoctor(triage_runner[0], "model", fallback=profile.triage.fallback, seed=seed,
                                              sampling=sp, style=style)
                        trained_routes = doctor.route(rows_items, progress=progress)
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
            nb = profile.eval.bootstrap_samples
            acc = accuracy_ci(correct, nb, seed=seed)
            n_valid = sum(bool((r.get("attending") or {}).get("valid")) for r in recs)
            entry.update(n=acc["n"], acc=acc["acc"], lo=acc["lo"], hi=acc["hi"], n_valid=n_valid,
                         valid_rate=n_valid / len(recs) if recs else None)
            entry.update(stratum_accuracy(recs, nb, seed))
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


def stratum_accuracy(records: Sequence[dict[str, Any]], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Accuracy per evaluation stratum with its bootstrap 95% interval
    (:func:`mmed.eval.metrics.accuracy_ci` over the stratum's items).

    Returns:
        ``{"acc_<s>", "lo_<s>", "hi_<s>", "n_<s>"}`` for s in easy, medium, hard; the
        accuracy and bounds are None for a stratum without items (``n_<s>`` = 0).
    """
    out: dict[str, Any] = {}
    for st in ("easy", "medium", "hard"):
        sub = [bool(r["correct"]) for r in records if r.get("stratum") == st]
        ci = accuracy_ci(sub, n_boot, seed=seed) if sub else {"acc": None, "lo": None, "hi": None}
        out.update({f"acc_{st}": ci["acc"], f"lo_{st}": ci["lo"], f"hi_{st}": ci["hi"], f"n_{st}": len(sub)})
    return out


def no_valid_answer_notes(table: pd.DataFrame) -> list[str]:
    """One note per dataset whose **full system** gives no valid final answer
    (``valid_rate`` 0): every claim measured against it is then not measurable. A real
    outcome (e.g. the Hard stage's entropy bonus breaking a tiny attending's format), so
    it is a note, not a failure. Tables without ``valid_rate`` (older runs) give none."""
    if "valid_rate" not in table:
        return []
    notes = []
    for _, r in table[(table["system"] == "full system")].iterrows():
        if bool(r.get("available", True)) and pd.notna(r["valid_rate"]) and r["valid_rate"] == 0:
            notes.append(f"{r['dataset']}: the full system gives no valid answer (0 of {int(r['n'])} valid); "
                         f"every claim against it is not measurable")
    return notes


def domain_averages(
    records: dict[str, dict[str, list[dict[str, Any]]]], n_boot: int = 1000, seed: int = 0,
) -> pd.DataFrame:
    """In-domain and out-of-domain accuracy of every ablation row
    (:func:`mmed.eval.metrics.domain_table`: macro mean over the domain's datasets with a
    stratified bootstrap 95% interval, pooled ``micro_acc`` beside it).

    Args:
        records: ``run_ablations(...)[1]``, ``{dataset label: {row name: records}}``; the
            dataset label (not the record's own field) decides the domain.
    Returns:
        One row per (system, domain) for domains ``in_domain`` and ``out_of_domain``, columns
        ``system, domain, datasets, n, acc, lo, hi, micro_acc, n_invalid, note``; ``note``
        says which of the domain's benchmarks are present (acc is NaN, n = 0, when none is).
    """
    systems = list(dict.fromkeys(name for by_row in records.values() for name in by_row))
    rows = []
    for system in systems:
        recs = [{**r, "dataset": ds} for ds, by_row in records.items() for r in by_row.get(system, [])]
        t = domain_table(recs, n_boot=n_boot, seed=seed).set_index("domain")
        for domain, names in (("in_domain", IN_DOMAIN), ("out_of_domain", OUT_OF_DOMAIN)):
            r = t.loc[domain]
            present = [d for d in names if d in str(r["datasets"]).split(",")]
            missing = [d for d in names if d not in present]
            note = (f"average over {', '.join(present)} ({len(present)} of {len(names)}"
                    + (f"; absent: {', '.join(missing)})" if missing else ")") if present
                    else f"none of {', '.join(names)} evaluated")
            rows.append({"system": system, "domain": domain, "datasets": r["datasets"], "n": int(r["n"]),
                         **{k: float(r[k]) for k in ("acc", "lo", "hi", "micro_acc")},
                         "n_invalid": int(r["n_invalid"]), "note": note})
    return pd.DataFrame(rows, columns=["system", "domain", "datasets", "n", "acc", "lo", "hi", "micro_acc", "n_invalid", "note"])


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
    """The ablation table as Markdown: accuracy [95% CI] per dataset, valid final answers
    %, Δ vs full system, and accuracy [95% CI] (n) per stratum. Tables from older runs
    (no ``valid_rate``, no per-stratum ``lo_<s>``/``hi_<s>``) print "–" there."""
    lines = ["| dataset | system | n | accuracy [95% CI] | valid % | Δ vs full [95% CI] | easy | medium | hard |",
             "|---|---|---|---|---|---|---|---|---|"]

    def pct(v: Any) -> str:
        return "–" if v is None or pd.isna(v) else f"{100 * v:.1f}"

    def stratum(r: Any, st: str) -> str:
        a, n = r.get(f"acc_{st}"), r.get(f"n_{st}")
        if a is None or pd.isna(a):
            return "–"
        ci = f" [{pct(r.get(f'lo_{st}'))}, {pct(r.get(f'hi_{st}'))}]" if pd.notna(r.get(f"lo_{st}", None)) else ""
        return f"{pct(a)}{ci}" + (f" (n={int(n)})" if n is not None and pd.notna(n) else "")

    for _, r in df.iterrows():
        if not r.get("available", True):
            lines.append(f"| {r['dataset']} | {r['system']} | – | not available: {r['reason']} | | | | | |")
            continue
        delta = "" if pd.isna(r.get("delta_vs_full")) else f"{100 * r['delta_vs_full']:+.1f} [{100 * r['delta_lo']:+.1f}, {100 * r['delta_hi']:+.1f}]"
        lines.append(
            f"| {r['dataset']} | {r['system']} | {int(r['n'])} | {pct(r['acc'])} [{pct(r['lo'])}, {pct(r['hi'])}] | "
            f"{pct(r.get('valid_rate'))} | {delta} | {stratum(r, 'easy')} | {stratum(r, 'medium')} | {stratum(r, 'hard')} |"
        )
    return "\n".join(lines) + "\n"
