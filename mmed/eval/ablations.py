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
image only                                      the image-reading reference: the base cold-
                                                started on gold answers without opinions, on
                                                the synthetic items for the synthetic set and
                                                on the real pool for a real one
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
                                                attending (ties: the lowest-indexed member's
                                                answer, :func:`mmed.agents.stratify.majority_vote`)
follow the panel's majority (trained triage)    the trained triage's routed panel, majority of
                                                its valid opinions, no attending; ties broken
                                                by :func:`seeded_majority` (uniform among the
                                                tied options, seeded by seed and item id)
follow the panel's majority (gold specialty)    the same vote with the panel of each item's
                                                gold specialty (oracle routing, read from the
                                                label: not a system one could run)
best single specialist                          one member of the trained triage's panel: the
                                                panel position with the best accuracy on the
                                                *validation* items (never chosen on the
                                                evaluated items); unavailable (with the
                                                reason) without a validation split
panel member k alone                            each position's own accuracy on the evaluated
                                                items (reported, not selected)
==============================================  ===========================================

Every available row also records the distribution of its final answers
(:func:`answer_columns`: ``top_answer``, ``top_answer_share``, ``gold_top_share`` on the same
items, ``n_distinct_completions``, ``answer_counts``, ``tally_faithful``: the share of
completions whose reasoning states the panel actually shown, :func:`tally_faithfulness`) and
the dataset's chance level
(``chance`` = mean over items of 1 / number of options), so that an agent giving one answer
on every item cannot hide behind its accuracy (docs/architecture.md#degenerate-agent-guard).

A row whose weights the run does not hold is reported as unavailable (with the reason),
never silently dropped. Triage decisions are computed once per dataset and reused by every
row with the same triage; each distinct attending is loaded once.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..agents.attending import AttendingPhysician
from ..agents.build import (
    IMAGE_ONLY_REAL_STAGE,
    IMAGE_ONLY_STAGE,
    load_runner,
    policy_source,
    sampling_params,
    specialist_factory,
    variant_dir_name,
)
from ..agents.pipeline import PanelBank, as_item_list, run_consultation, write_predictions
from ..agents.scoring import accuracy_ci, answer_distribution, paired_bootstrap_diff
from ..agents.triage import TriageDecision, TriageDoctor
from ..config import Profile
from ..data.sets import load_items
from ..rl.pretrain import base_model
from ..runs import Run, write_json_atomic
from .claims import ablation_claims
from .metrics import IN_DOMAIN, OUT_OF_DOMAIN, domain_table, json_records


@dataclass(frozen=True)
class AblationRow:
    """One row: ``triage`` is ``"trained"``, ``"random"``, ``"gold"`` (oracle routing) or
    ``"fixed:<Specialty>"``; ``attending`` is ``(variant, stage)`` for
    :func:`mmed.agents.build.policy_source` (stage ``"latest"``, ``"sft"``, or ``"#k"`` = the
    k-th curriculum stage) or None (no attending); ``decision`` as in
    :func:`mmed.agents.pipeline.run_consultation`, or one of the panel-only baselines of
    :data:`PANEL_DECISIONS`: ``"follow_majority"`` (:func:`follow_majority`),
    ``"member:<k>"`` (panel position k, 0-based, :func:`single_member`) or
    ``"best_member"`` (the position chosen on validation items)."""

    name: str
    triage: str
    decision: str
    attending: tuple[str | None, str] | None


#: names of the baseline rows (their names contain "majority" / "single specialist")
FOLLOW_MAJORITY_ROW = "follow the panel's majority (trained triage's panel, no attending)"
FOLLOW_MAJORITY_GOLD_ROW = "follow the panel's majority (gold specialty's panel: oracle routing)"
BEST_SPECIALIST_ROW = "best single specialist (panel position chosen on validation)"
IMAGE_ONLY_ROW = "image only (attending cold-started on gold answers without opinions)"

ABLATION_ROWS: tuple[AblationRow, ...] = (
    AblationRow("full system", "trained", "attending", (None, "latest")),
    AblationRow("w/o triage: random specialty", "random", "attending", (None, "latest")),
    AblationRow("w/o triage: fixed Radiologist", "fixed:Radiologist", "attending", (None, "latest")),
    AblationRow("w/o specialists (attending alone)", "trained", "attending_alone", (None, "latest")),
    AblationRow("w/o C-MARL: cold-start attending", "trained", "attending", (None, "sft")),
    AblationRow(IMAGE_ONLY_ROW, "trained", "attending_alone", (None, "image_only")),
    AblationRow("w/o C-MARL: GRPO without curriculum", "trained", "attending", ("no_curriculum", "latest")),
    AblationRow("C-MARL without entropy bonus", "trained", "attending", ("no_entropy", "latest")),
    AblationRow("C-MARL with constant γ (γ_medium in every stage)", "trained", "attending", ("constant_entropy", "latest")),
    AblationRow("C-MARL with an entropy target (γ only while entropy ≤ target)", "trained", "attending",
                ("adaptive_entropy", "latest")),
    AblationRow("+ Easy", "trained", "attending", (None, "#1")),
    AblationRow("+ Easy + Medium", "trained", "attending", (None, "#2")),
    AblationRow("+ Easy + Medium + Hard", "trained", "attending", (None, "#3")),
    AblationRow("static MDAgents-style (Radiologist panel, majority vote)", "fixed:Radiologist", "majority_vote", None),
    AblationRow(FOLLOW_MAJORITY_ROW, "trained", "follow_majority", None),
    AblationRow(FOLLOW_MAJORITY_GOLD_ROW, "gold", "follow_majority", None),
    AblationRow(BEST_SPECIALIST_ROW, "trained", "best_member", None),
)


IMAGE_ONLY_NOTES = {IMAGE_ONLY_STAGE: "trained on the synthetic train items (attending/image_only)",
                    IMAGE_ONLY_REAL_STAGE: "trained on the real cold-start pool's train items, no evaluation image "
                                           "(attending/image_only_real)"}


def image_only_stage(items: Sequence[dict[str, Any]]) -> str:
    """Which image-only reference answers ``items``: ``"image_only"`` (trained on synthetic
    items) when every item is synthetic, else ``"image_only_real"`` (trained on the real
    cold-start pool; :func:`mmed.rl.cold_start.ensure_image_only_attending`)."""
    return IMAGE_ONLY_STAGE if all(it.get("dataset") == "synthetic" for it in items) else IMAGE_ONLY_REAL_STAGE


def member_row_name(k: int) -> str:
    """Name of the row of panel position ``k`` (0-based; shown 1-based)."""
    return f"panel member {k + 1} alone (trained triage's panel; reported, not selected)"


def ablation_rows(panel_size: int) -> tuple[AblationRow, ...]:
    """:data:`ABLATION_ROWS` plus one ``panel member k alone`` row per panel position.

    Raises:
        ValueError: ``panel_size`` < 1.
    """
    if panel_size < 1:
        raise ValueError(f"panel_size must be >= 1, got {panel_size}")
    return ABLATION_ROWS + tuple(AblationRow(member_row_name(k), "trained", f"member:{k}", None) for k in range(panel_size))


# ----------------------------------------------------------------------------------------
# panel-only baselines: follow the majority, one member alone
# ----------------------------------------------------------------------------------------
def seeded_majority(answers: Sequence[int | None], seed: int, item_id: str) -> int | None:
    """The most frequent valid answer (option index) of a panel; a tie between the most
    frequent answers goes to one of them drawn uniformly with ``random.Random`` seeded by
    ``f"{seed}:{item_id}:majority-tie"`` (reproducible, and favouring neither a panel
    position nor an option letter). ``None`` and negative values (invalid or abstained
    opinions) do not vote; ``None`` when no opinion is valid."""
    valid = [int(a) for a in answers if a is not None and not isinstance(a, bool) and int(a) >= 0]
    if not valid:
        return None
    counts: dict[int, int] = {}
    for a in valid:
        counts[a] = counts.get(a, 0) + 1
    best = max(counts.values())
    tied = sorted(a for a, c in counts.items() if c == best)
    return tied[0] if len(tied) == 1 else random.Random(f"{seed}:{item_id}:majority-tie").choice(tied)


def _panel_decision(rec: dict[str, Any], parsed: int | None, method: str, reason: str) -> dict[str, Any]:
    out = dict(rec)
    out["attending"] = {"raw": None, "parsed": parsed, "valid": parsed is not None,
                        "reason": "ok" if parsed is not None else reason, "method": method}
    out["correct"] = bool(parsed is not None and parsed == rec["answer_idx"])
    return out


def follow_majority(records: Sequence[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Panel-only records (``run_consultation(..., decision="none")``) decided by the
    panel's majority (:func:`seeded_majority` over the valid opinions); the decision goes
    in ``attending`` (``raw`` None, ``method`` ``"follow_majority"``) and ``correct`` is
    set. A record without a valid opinion is invalid (``reason`` ``"no_valid_vote"``) and
    wrong. Returns new records; the inputs are not changed."""
    out = []
    for r in records:
        vote = seeded_majority([op["parsed"] if op.get("valid") else None for op in r["panel"]], seed, str(r["id"]))
        out.append(_panel_decision(r, vote, "follow_majority", "no_valid_vote"))
    return out


def single_member(records: Sequence[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """Panel-only records decided by panel position ``k`` alone (0-based): its parsed
    option when valid, else an invalid (wrong) answer (``reason`` ``"member_invalid"``, also
    when the panel has fewer than ``k + 1`` members). Returns new records."""
    out = []
    for r in records:
        op = r["panel"][k] if k < len(r["panel"]) else None
        parsed = op["parsed"] if op is not None and op.get("valid") else None
        out.append(_panel_decision(r, parsed, f"member:{k}", "member_invalid"))
    return out


def member_accuracies(records: Sequence[dict[str, Any]], panel_size: int) -> list[float]:
    """Accuracy of each panel position (0..``panel_size``-1) over panel-only records (an
    invalid, abstained or missing opinion is wrong). Raises ``ValueError`` on no records."""
    if not records:
        raise ValueError("member_accuracies: no records")
    return [sum(r["correct"] for r in single_member(records, k)) / len(records) for k in range(panel_size)]


def choose_member(validation_accuracies: Sequence[float]) -> int:
    """The panel position with the highest validation accuracy; ties go to the lowest
    position (documented, deterministic). Raises ``ValueError`` for an empty list."""
    if not validation_accuracies:
        raise ValueError("choose_member: no accuracies")
    best = max(validation_accuracies)
    return next(k for k, a in enumerate(validation_accuracies) if a == best)


#: the panel-only decisions :func:`run_ablations` computes itself (no attending)
PANEL_DECISIONS: tuple[str, ...] = ("follow_majority", "best_member")


def answer_columns(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Answer-distribution columns of one row's closed prediction records
    (:func:`mmed.agents.scoring.answer_distribution` of the final answers, as option letters):
    ``top_answer``, ``top_answer_share`` (share of all items, invalid ones included),
    ``gold_top_answer``, ``gold_top_share`` (the most frequent gold answer's share on the
    same items), ``n_distinct_completions`` (distinct raw completions; None for decisions
    without text, such as a vote), ``answer_counts`` (JSON ``{letter: count}``, with
    ``"invalid"`` counted apart when any) and ``tally_faithful`` (:func:`tally_faithfulness`)."""
    d = answer_distribution([r["attending"]["parsed"] if r["attending"]["valid"] else None for r in records],
                            [r["attending"].get("raw") for r in records], [int(r["answer_idx"]) for r in records],
                            [list(r["options"]) for r in records])
    counts = dict(d["counts"], **({"invalid": d["n_invalid"]} if d["n_invalid"] else {}))
    return {"top_answer": d["top_answer"], "top_answer_share": d["top_answer_share"],
            "gold_top_answer": d["gold_top_answer"], "gold_top_share": d["gold_top_share"],
            "n_distinct_completions": d["n_distinct_completions"], "answer_counts": json.dumps(counts),
            "tally_faithful": tally_faithfulness(records)}


def tally_faithfulness(records: Sequence[dict[str, Any]]) -> float | None:
    """Share (0..1) of the attending's completions whose ``<think>`` states the panel it was
    shown exactly as the cold start taught (:func:`mmed.rl.sft.tally_reasoning` of
    :func:`mmed.rl.sft.panel_tally`; ``"Panel: none."`` for an empty panel) — whether the
    reasoning reads the opinions or is a template (e.g. ``"Panel: B 3."`` on every item).

    ``records``: closed prediction records (``panel``, ``options``, ``attending.raw``).
    Returns None when no record carries a completion (a majority vote writes none); a
    completion without a well-formed ``<think>`` block counts as unfaithful.
    """
    from ..agents.parsing import think_text
    from ..rl.sft import panel_tally, tally_reasoning

    scored = [r for r in records if (r.get("attending") or {}).get("raw") is not None]
    if not scored:
        return None
    ok = 0
    for r in scored:
        said = think_text(r["attending"]["raw"])
        ok += said is not None and " ".join(said.split()) == tally_reasoning(panel_tally(r.get("panel") or [], len(r["options"])))
    return ok / len(scored)


def chance_level(items: Sequence[dict[str, Any]]) -> float | None:
    """Expected accuracy of a uniform random valid answer: mean over items of
    1 / number of options (None without items). Raises ``ValueError`` naming an item
    without options."""
    if not items:
        return None
    for it in items:
        if not it.get("options"):
            raise ValueError(f"item {it.get('id')!r}: no options (chance needs closed items)")
    return sum(1.0 / len(it["options"]) for it in items) / len(items)


def validation_sets(profile: Profile) -> dict[str, Any]:
    """Validation items on which :func:`run_ablations` chooses the best single specialist:
    the synthetic ``validation`` split (``data.synthetic.n_eval`` items, image-disjoint from
    test) when the profile has synthetic items; benchmarks get none (the evaluated splits
    here — VQA-RAD MEVF test, ... — come with no validation split of their own), so their
    "best single specialist" row is unavailable and each position is reported instead."""

    return {"synthetic": load_items(profile, "synthetic", "validation")} if profile.data.synthetic.n_eval > 0 else {}


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
    rows: Sequence[AblationRow] | None = None,
    out_dir: str | Path | None = None,
    progress: bool = False,
    validation_items: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, dict[str, list[dict[str, Any]]]]]:
    """Evaluate every row on every dataset.

    Args:
        datasets_items: ``{dataset label: items}`` (schema datasets or item dicts; closed).
        rows: default :func:`ablation_rows` of the profile's panel size.
        out_dir: where per-row predictions go (default ``<run>/eval/ablations``).
        validation_items: ``{dataset label: validation items}`` (e.g.
            :func:`validation_sets`): where the best single specialist's panel position is
            chosen for that dataset (routed by the same trained triage); a dataset without
            them gets that row as unavailable, with the reason.
    Returns:
        ``(table, records)``: one table row per (dataset, ablation row) with ``n``, ``acc``,
        ``lo``, ``hi``, ``n_valid`` and ``valid_rate`` (items whose final answer parsed),
        per-stratum ``acc_<s>``, ``lo_<s>``, ``hi_<s>``, ``n_<s>``
        (:func:`stratum_accuracy`), the answer distribution (:func:`answer_columns`),
        ``chance`` (:func:`chance_level`), ``delta_vs_full`` with its paired bootstrap
        interval, ``weights``, ``note`` (how a baseline was chosen) and ``available``
        (False + ``reason`` when the run lacks the weights or the data);
        ``records[dataset][row name]`` are the prediction records.
    """
    out_dir = Path(out_dir) if out_dir else run.path("eval", "ablations")
    for agent in ("triage", "attending", "specialist"):
        base_model(run, profile, agent)  # the base models (the tiny one built on first use)
    rows = ablation_rows(profile.specialists.panel_size) if rows is None else rows
    validation_items = validation_items or {}
    sp = sampling_params(profile, seed)
    style = profile.sampling.prompt_style
    panels = PanelBank(specialist_factory(profile, seed, run=run), profile.specialists.panel_size)
    triage_runner = None
    attendings: dict[tuple[str, str | None], AttendingPhysician] = {}
    table: list[dict[str, Any]] = []
    all_records: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def trained_doctor() -> tuple[TriageDoctor, str]:
        nonlocal triage_runner
        if triage_runner is None:
            src_t = policy_source(run, profile, "triage", "latest")
            triage_runner = (load_runner(profile, src_t, "triage"), src_t.label)
        return (TriageDoctor(triage_runner[0], "model", fallback=profile.triage.fallback, seed=seed, sampling=sp, style=style),
                triage_runner[1])

    for ds_name, items in datasets_items.items():
        rows_items = as_item_list(items)
        chance = chance_level(rows_items)
        trained_routes: list[TriageDecision] | None = None
        panel_only: dict[str, list[dict[str, Any]]] = {}  # triage kind -> panel-only records
        best_member: tuple[int, str] | None = None
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
                    if stage == IMAGE_ONLY_STAGE:
                        stage = image_only_stage(rows_items)
                        entry["note"] = IMAGE_ONLY_NOTES[stage]
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
                        doctor, _ = trained_doctor()
                        trained_routes = doctor.route(rows_items, progress=progress)
                    triage = _Precomputed(trained_routes)
                    entry["triage"] = triage_runner[1]
                elif row.triage == "random":
                    triage = TriageDoctor(mode="random", seed=seed)
                    entry["triage"] = "random"
                elif row.triage == "gold":
                    triage = TriageDoctor(mode="gold")
                    entry["triage"] = "gold (oracle)"
                else:
                    triage = TriageDoctor(mode="fixed", fixed_specialty=row.triage.split(":", 1)[1])
                    entry["triage"] = row.triage
                tags = {"profile": profile.name, "seed": seed, "ablation": row.name}
                if row.decision in PANEL_DECISIONS or row.decision.startswith("member:"):
                    if row.triage not in panel_only:
                        panel_only[row.triage] = run_consultation(rows_items, triage, panels, None, decision="none",
                                                                  tags=tags, progress=progress)
                    base = [dict(r, ablation=row.name) for r in panel_only[row.triage]]
                    if row.decision == "follow_majority":
                        recs = follow_majority(base, seed)
                        entry["note"] = "majority of the valid opinions; ties: uniform draw seeded by seed and item id"
                    elif row.decision == "best_member":
                        if best_member is None:
                            best_member = _choose_on_validation(ds_name, validation_items, trained_doctor, panels,
                                                                profile.specialists.panel_size, progress)
                        recs = single_member(base, best_member[0])
                        entry["note"] = best_member[1]
                    else:
                        k = int(row.decision.split(":", 1)[1])
                        recs = single_member(base, k)
                        entry["note"] = f"panel position {k + 1} on the evaluated items (not a selection)"
                else:
                    recs = run_consultation(rows_items, triage, panels, attending, decision=row.decision, tags=tags,
                                            progress=progress)
            except (FileNotFoundError, _Unavailable) as e:
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
                         valid_rate=n_valid / len(recs) if recs else None, chance=chance)
            entry.update(stratum_accuracy(recs, nb, seed))
            if recs:
                entry.update(answer_columns(recs))
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


class _Unavailable(Exception):
    """A row the run cannot provide for a reason other than missing weights (no data)."""


def _choose_on_validation(ds_name: str, validation_items: dict[str, Any], trained_doctor: Any, panels: PanelBank,
                          panel_size: int, progress: bool) -> tuple[int, str]:
    """``(position, note)``: the panel position with the best accuracy on ``ds_name``'s
    validation items, routed by the trained triage (:func:`choose_member`). Raises
    :class:`_Unavailable` (the row's reason) when there are no validation items."""
    val = validation_items.get(ds_name)
    val_items = as_item_list(val) if val is not None else []
    if not val_items:
        raise _Unavailable(f"no validation split for {ds_name}: choosing the best member on the evaluated items would "
                           f"be optimistic; see the 'panel member k alone' rows for each position's accuracy")
    doctor, _ = trained_doctor()
    recs = run_consultation(val_items, doctor, panels, None, decision="none", progress=progress)
    accs = member_accuracies(recs, panel_size)
    k = choose_member(accs)
    return k, (f"panel position {k + 1}, chosen on {len(val_items)} validation items (accuracy per position "
               + ", ".join(f"{i + 1}: {a:.3f}" for i, a in enumerate(accs)) + "; ties to the lowest position)")


def stratum_accuracy(records: Sequence[dict[str, Any]], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Accuracy per evaluation stratum with its bootstrap 95% interval
    (:func:`mmed.agents.scoring.accuracy_ci` over the stratum's items).

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
    %, the most frequent answer and its share % (``top answer``), the most frequent gold
    answer's share % on the same items (``gold top``), chance %, Δ vs full system, and
    accuracy [95% CI] (n) per stratum. Tables from older runs (no ``valid_rate``, no
    answer distribution, no per-stratum ``lo_<s>``/``hi_<s>``) print "–" there."""
    lines = ["| dataset | system | n | accuracy [95% CI] | valid % | top answer | gold top % | chance % | "
             "Δ vs full [95% CI] | easy | medium | hard |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def pct(v: Any) -> str:
        return "–" if v is None or pd.isna(v) else f"{100 * v:.1f}"

    def stratum(r: Any, st: str) -> str:
        a, n = r.get(f"acc_{st}"), r.get(f"n_{st}")
        if a is None or pd.isna(a):
            return "–"
        ci = f" [{pct(r.get(f'lo_{st}'))}, {pct(r.get(f'hi_{st}'))}]" if pd.notna(r.get(f"lo_{st}", None)) else ""
        return f"{pct(a)}{ci}" + (f" (n={int(n)})" if n is not None and pd.notna(n) else "")

    def top(r: Any) -> str:
        share = r.get("top_answer_share")
        if share is None or pd.isna(share):
            return "–"
        ans = r.get("top_answer")
        return f"{'–' if ans is None or pd.isna(ans) else ans} {pct(share)}"

    for _, r in df.iterrows():
        if not r.get("available", True):
            lines.append(f"| {r['dataset']} | {r['system']} | – | not available: {r['reason']} | | | | | | | | |")
            continue
        delta = "" if pd.isna(r.get("delta_vs_full")) else f"{100 * r['delta_vs_full']:+.1f} [{100 * r['delta_lo']:+.1f}, {100 * r['delta_hi']:+.1f}]"
        lines.append(
            f"| {r['dataset']} | {r['system']} | {int(r['n'])} | {pct(r['acc'])} [{pct(r['lo'])}, {pct(r['hi'])}] | "
            f"{pct(r.get('valid_rate'))} | {top(r)} | {pct(r.get('gold_top_share'))} | {pct(r.get('chance'))} | {delta} | "
            f"{stratum(r, 'easy')} | {stratum(r, 'medium')} | {stratum(r, 'hard')} |"
        )
    return "\n".join(lines) + "\n"


@dataclass
class AblationsStepResult:
    """What :func:`ablations_step` measured (notebook 05 shows it)."""

    #: :func:`run_ablations`' table and records
    table: pd.DataFrame
    records: dict[str, dict[str, list[dict[str, Any]]]]
    #: :func:`mmed.eval.claims.ablation_claims` of the table
    claims: pd.DataFrame
    #: :func:`no_valid_answer_notes` of the table
    notes: list[str]
    #: :func:`domain_averages` of the records
    domains: pd.DataFrame
    #: what notebook 05 records (``mmed.checkers.nb05_06``)
    metrics: dict[str, Any]


#: the step's metrics in ``<run>/eval/ablations/`` (:func:`ablations_step`)
STEP_FILE = "step.json"


def ablations_step(run: Run, profile: Profile, evalsets: dict[str, Any], seed: int = 0) -> AblationsStepResult:
    """Notebook 05's step: every ablation row on every evaluation set (:func:`run_ablations`;
    the best single specialist's panel position chosen on :func:`validation_sets`, never on
    the evaluated items), the paper's claims read off the table
    (:func:`mmed.eval.claims.ablation_claims`), the notes on systems without a valid answer
    and the in-/out-of-domain averages (:func:`domain_averages`), with the metrics the
    notebook records: ``real_data``, ``datasets``, ``rows``, ``n_items``, ``claims``,
    ``notes``, ``domains``, ``seed`` (also written to ``<run>/eval/ablations/step.json``).
    ``python -m mmed ablations`` and notebook 05 call it.

    Args:
        evalsets: ``{dataset label: closed items}`` (:func:`mmed.data.sets.evaluation_sets`).
    Returns:
        an :class:`AblationsStepResult` (table, records, claims, notes, domains, metrics).
    Raises:
        what :func:`run_ablations` raises (a missing base model, unreadable items).
    """
    table, records = run_ablations(run, profile, evalsets, seed=seed, validation_items=validation_sets(profile))
    claims = ablation_claims(table)
    notes = no_valid_answer_notes(table)
    domains = domain_averages(records, n_boot=profile.eval.bootstrap_samples, seed=seed)
    metrics = {"real_data": any(k != "synthetic" for k in evalsets), "datasets": list(evalsets),
               "rows": json_records(table), "n_items": {k: len(v) for k, v in evalsets.items()},
               "claims": json_records(claims), "notes": notes, "domains": json_records(domains), "seed": seed}
    write_json_atomic(run.path("eval", "ablations", mkdir=True) / STEP_FILE, metrics)
    return AblationsStepResult(table, records, claims, notes, domains, metrics)
