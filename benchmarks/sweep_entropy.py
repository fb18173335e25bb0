"""Sweep C-MARL's Hard-stage entropy coefficient γ_hard on the synthetic *validation*
split.

The curriculum's first two stages (Easy γ = 0, Medium γ_medium) are trained once in a
reference run folder; every γ_hard value then trains its own Hard stage from those
adapters, in a copy of that folder (``--out-dir/gamma_<value>``), with TRL's
``entropy_coef`` = γ_hard (loss = L − γ·H, H the mean per-token entropy of the completion
tokens). Printed per value: held-out accuracy per stratum after the Hard stage, the
format-valid rate and the share of the most frequent answer on the held-out items, and the
Hard stage's entropy trajectory (first, max, last logged step; nats) and format-valid rate
of its sampled completions; ``--json`` writes the same with the full trajectories.

    python benchmarks/sweep_entropy.py                       # γ_hard in 0 1e-3 3e-3 1e-2 3e-2
    python benchmarks/sweep_entropy.py --gammas 0 0.003 --gamma-medium 0.001
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mmed.config import STRATA, apply_torch_threads, load_profile  # noqa: E402


def stages_overlay(profile_name: str, gamma_medium: float, gamma_hard: float) -> dict:
    """The profile's curriculum stages with γ_medium and γ_hard replaced (Easy keeps its γ)."""
    stages = copy.deepcopy([s.__dict__ for s in load_profile(profile_name).curriculum.stages])
    for s in stages:
        if s["name"] == "medium":
            s["entropy_coef"] = gamma_medium
        if s["name"] == "hard":
            s["entropy_coef"] = gamma_hard
    return {"curriculum": {"stages": stages}}


def _copy_without_hard(src: Path, dst: Path) -> None:
    def ignore(folder: str, names: list[str]) -> list[str]:
        f = Path(folder)
        skip = [n for n in names if f.name == "cmarl" and (n.startswith("stage_3") or n == "plan.json")]
        return skip + [n for n in names if n.startswith("checkpoint-")]

    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=ignore)


def sweep(profile_name: str, gammas: list[float], gamma_medium: float, out_dir: Path, n_heldout: int, seed: int) -> list[dict]:
    from mmed.eval.curriculum import curriculum_report
    from mmed.rl.curriculum import curriculum_log, train_curriculum
    from mmed.runs import Run

    ref = out_dir / "reference"
    prof = load_profile(profile_name, overrides=stages_overlay(profile_name, gamma_medium, gammas[0]))
    train_curriculum(prof, ref, seed=seed, heldout_split="validation", n_heldout=n_heldout, log=lambda m: None)
    rows = []
    for g in gammas:
        d = out_dir / f"gamma_{g:g}"
        if not (d / "attending" / "cmarl" / "plan.json").is_file():
            _copy_without_hard(ref, d)
        p = load_profile(profile_name, overrides=stages_overlay(profile_name, gamma_medium, g))
        train_curriculum(p, d, seed=seed, heldout_split="validation", n_heldout=n_heldout, log=lambda m: None)
        run = Run.open(d)
        rep = curriculum_report(run, [None], "validation", p.eval.bootstrap_samples, seed)
        hard = rep["stages"]["cmarl"][-1]
        log = [r for r in curriculum_log(run, None) if r.get("stage") == hard["name"]]
        ent = [r["entropy"] for r in log if isinstance(r.get("entropy"), (int, float))]
        fv = [r["format_valid"] for r in log if isinstance(r.get("format_valid"), (int, float))]
        rows.append({
            "gamma_hard": g, "gamma_medium": gamma_medium, "n_items": rep["n_items"],
            "accuracy": {st: hard["after"][st]["acc"] for st in (*STRATA, "all")},
            "accuracy_before_hard": {st: rep["stages"]["cmarl"][-2]["after"][st]["acc"] for st in (*STRATA, "all")},
            "heldout_format_valid": hard["format_valid_after"],
            "heldout_top_answer_share": hard["answers"].get("top_answer_share"),
            "entropy": ent, "train_format_valid": fv,
        })
        print(f"[gamma_hard={g:g}] all {rows[-1]['accuracy']['all']:.3f} hard {rows[-1]['accuracy']['hard']:.3f} "
              f"valid {rows[-1]['heldout_format_valid']:.2f}", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    head = ["γ_hard", *[f"acc {st}" for st in (*STRATA, "all")], "held-out valid", "top answer share",
            "entropy first / max / last (nats)", "sampled valid min"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        e = r["entropy"]
        out.append("| " + " | ".join([
            f"{r['gamma_hard']:g}", *(f"{100 * r['accuracy'][st]:.1f}" for st in (*STRATA, "all")),
            f"{100 * r['heldout_format_valid']:.0f}%",
            f"{100 * r['heldout_top_answer_share']:.0f}%" if r["heldout_top_answer_share"] is not None else "–",
            f"{e[0]:.2f} / {max(e):.2f} / {e[-1]:.2f}" if e else "–",
            f"{min(r['train_format_valid']):.2f}" if r["train_format_valid"] else "–"]) + " |")
    before = rows[0]["accuracy_before_hard"] if rows else {}
    if before:
        out.append("| before Hard | " + " | ".join(f"{100 * before[st]:.1f}" for st in (*STRATA, "all")) + " | | | | |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--gammas", type=float, nargs="+", default=[0.0, 1e-3, 3e-3, 1e-2, 3e-2])
    ap.add_argument("--gamma-medium", type=float, default=None, help="default: the profile's Medium γ")
    ap.add_argument("--out-dir", type=Path, default=REPO / "runs" / "sweep_entropy")
    ap.add_argument("--n-heldout", type=int, default=280)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    prof = load_profile(a.profile)
    gm = a.gamma_medium if a.gamma_medium is not None else next(
        (s.entropy_coef for s in prof.curriculum.stages if s.name == "medium"), 0.0)
    apply_torch_threads(prof)
    rows = sweep(a.profile, a.gammas, gm, a.out_dir, a.n_heldout, a.seed)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
