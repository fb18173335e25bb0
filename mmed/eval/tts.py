"""Test-time scaling by majority vote (paper §5), and an adaptive budget beyond the paper.

Per item, the attending physician is sampled ``n`` times once (one batched ``generate``
with ``num_return_sequences = n``, the specialists' opinions fixed). Accuracy with a
budget of ``N ≤ n`` samples is then estimated by **subsampling**: draw ``N`` of the ``n``
samples without replacement, take the majority vote, compare with the gold answer;
average over ``n_resamples`` draws per item (a Monte-Carlo estimate of the expected
accuracy of an ``N``-sample vote), and a bootstrap over items gives the 95% interval.

Tie rule (documented, unbiased): among tied options the vote goes to the one that occurs
first in the subsample's (random) order, i.e. a uniformly random tie-break; invalid
samples do not vote; a subsample with no valid sample is wrong.

Adaptive budget (label-free difficulty): items on which the panel disagrees get more
samples, items with a unanimous panel fewer, at the same **average** number of samples
per item as the uniform budget it is compared with (:func:`adaptive_allocation`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..agents.scoring import accuracy_ci, answer_distribution, bootstrap_mean_ci
from ..rl.cold_start import build_agents
from ..runs import write_json_atomic


def vote(answers: Sequence[int | None]) -> int | None:
    """Majority of the valid answers; ties go to the first of the tied in ``answers``
    order; ``None`` when no answer is valid."""
    valid = [a for a in answers if a is not None]
    if not valid:
        return None
    counts = Counter(valid)
    best = max(counts.values())
    for a in valid:
        if counts[a] == best:
            return a
    return None  # pragma: no cover


def per_item_vote_accuracy(
    samples: Sequence[Sequence[int | None]], gold: Sequence[int], budgets: Sequence[int], n_resamples: int = 200,
    seed: int = 0,
) -> dict[int, np.ndarray]:
    """Expected majority-vote correctness of each item at each budget.

    Args:
        samples: ``samples[i]`` = the ``n`` parsed answers (option index or None) of item i.
        gold: gold option index per item.
        budgets: sample counts ``N`` (each ≤ the number of samples of every item).
        n_resamples: subsamples drawn per item and budget (N = n uses the full set once
            per random order, which matters only for ties).
    Returns:
        ``{N: array of shape (n_items,)}`` with values in [0, 1].
    Raises:
        ValueError: mismatched lengths, a budget < 1 or larger than an item's samples.
    """
    if len(samples) != len(gold):
        raise ValueError(f"{len(samples)} sample lists for {len(gold)} gold answers")
    rng = np.random.default_rng(seed)
    out: dict[int, np.ndarray] = {}
    for N in budgets:
        if N < 1:
            raise ValueError(f"budget {N} < 1")
        acc = np.zeros(len(samples))
        for i, (s, g) in enumerate(zip(samples, gold)):
            if N > len(s):
                raise ValueError(f"item {i} has {len(s)} samples, budget {N} is larger")
            hits = 0
            for _ in range(n_resamples):
                idx = rng.permutation(len(s))[:N]
                hits += vote([s[j] for j in idx]) == g
            acc[i] = hits / n_resamples
        out[int(N)] = acc
    return out


def scaling_curve(
    samples: Sequence[Sequence[int | None]], gold: Sequence[int], budgets: Sequence[int], n_resamples: int = 200,
    n_boot: int = 1000, seed: int = 0,
) -> list[dict[str, float]]:
    """Accuracy vs budget: ``[{"N", "acc", "lo", "hi", "n"}]`` (bootstrap 95% over items)."""
    per = per_item_vote_accuracy(samples, gold, budgets, n_resamples, seed)
    return [{"N": N, **_acc(bootstrap_mean_ci(v, n_boot=n_boot, seed=seed))} for N, v in per.items()]


def vote_answers(
    samples: Sequence[Sequence[int | None]], raws: Sequence[Sequence[str | None]] | None, gold: Sequence[int],
    allocation: Sequence[int], options: Sequence[Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Answer distribution of one realisation of a budget: item i's vote (:func:`vote`)
    over its first ``allocation[i]`` samples (the samples are i.i.d. draws, so the first N
    are a random subsample of N).

    Returns :func:`mmed.agents.scoring.answer_distribution` of those votes (a vote with no
    valid sample is invalid), with ``n_distinct_completions`` / ``top_completion_share``
    counted over every raw sample that took part (``raws[i][:allocation[i]]``; None
    without ``raws``) — so a sampler that writes one string whatever the item shows 1.
    Raises:
        ValueError: mismatched lengths, an allocation outside 1..len(samples[i]).
    """

    if not len(samples) == len(gold) == len(allocation) or (raws is not None and len(raws) != len(samples)):
        raise ValueError(f"vote_answers: {len(samples)} sample lists, {len(gold)} gold answers, "
                         f"{len(allocation)} allocations" + (f", {len(raws)} raw lists" if raws is not None else ""))
    votes = []
    for i, (s, n) in enumerate(zip(samples, allocation)):
        if not 1 <= int(n) <= len(s):
            raise ValueError(f"vote_answers: item {i} has {len(s)} samples, allocation {n}")
        votes.append(vote(list(s[: int(n)])))
    d = answer_distribution(votes, None, [int(g) for g in gold], options)
    if raws is not None:
        used = [r for rs, n in zip(raws, allocation) for r in list(rs)[: int(n)] if r is not None]
        if used:
            c = Counter(used)
            d["n_distinct_completions"] = len(c)
            d["top_completion_share"] = c.most_common(1)[0][1] / len(used)
    return d


def _answer_cols(d: dict[str, Any]) -> dict[str, Any]:
    """The curve columns of an answer distribution."""
    return {"top_answer": d["top_answer"], "top_answer_share": d["top_answer_share"],
            "gold_top_share": d["gold_top_share"], "n_distinct_completions": d["n_distinct_completions"]}


def _acc(r: dict[str, float]) -> dict[str, float]:
    return {"acc": r["mean"], "lo": r["lo"], "hi": r["hi"], "n": r["n"]}


def panel_disagreement(panel: Sequence[dict[str, Any]]) -> float:
    """Label-free difficulty of an item from its panel: 1 − (largest share of one answer
    among the K members), invalid/abstained members counted as their own answer. 0 for a
    unanimous panel; (K−1)/K when every member differs."""
    if not panel:
        return 0.0
    keys = [op["parsed"] if op.get("valid") else f"invalid{j}" for j, op in enumerate(panel)]
    return 1.0 - Counter(keys).most_common(1)[0][1] / len(keys)


def adaptive_allocation(difficulty: Sequence[float], mean_budget: float, n_max: int, n_min: int = 1) -> np.ndarray:
    """Integer samples per item with average exactly ``mean_budget`` (when feasible), more
    where ``difficulty`` is higher.

    Every item gets ``n_min``; the rest of the total ``round(mean_budget · n_items)`` goes
    one sample at a time to the item with the highest ``difficulty / (current + 1)``
    (ties by item order), never above ``n_max``. With equal difficulties this reduces to a
    near-uniform budget.

    Raises:
        ValueError: mean_budget outside [n_min, n_max].
    """
    d = np.asarray(difficulty, dtype=float)
    if not n_min <= mean_budget <= n_max:
        raise ValueError(f"mean_budget {mean_budget} outside [{n_min}, {n_max}]")
    n = np.full(len(d), n_min, dtype=int)
    remaining = int(round(mean_budget * len(d))) - n.sum()
    w = d + 1e-6  # every item can still receive samples when all difficulties are 0
    while remaining > 0:
        score = np.where(n < n_max, w / (n + 1), -np.inf)
        i = int(np.argmax(score))
        n[i] += 1
        remaining -= 1
    return n


def adaptive_accuracy(
    samples: Sequence[Sequence[int | None]], gold: Sequence[int], allocation: Sequence[int], n_resamples: int = 200,
    n_boot: int = 1000, seed: int = 0,
) -> dict[str, float]:
    """Accuracy when item i gets ``allocation[i]`` samples (subsampled vote as above);
    returns ``{"acc", "lo", "hi", "n", "mean_samples"}``."""
    rng = np.random.default_rng(seed)
    acc = np.zeros(len(samples))
    for i, (s, g, N) in enumerate(zip(samples, gold, allocation)):
        hits = 0
        for _ in range(n_resamples):
            idx = rng.permutation(len(s))[: int(N)]
            hits += vote([s[j] for j in idx]) == g
        acc[i] = hits / n_resamples
    return {**_acc(bootstrap_mean_ci(acc, n_boot=n_boot, seed=seed)), "mean_samples": float(np.mean(allocation))}


def sample_stratum_table(
    samples: dict[str, dict[str, list[dict[str, Any]]]], n_boot: int = 1000, seed: int = 0,
) -> Any:
    """Single-sample behaviour of each attending per stratum: how often one sample is
    correct and how often it is valid (the quantities majority voting amplifies).

    Args:
        samples: ``run_test_time_scaling(...)[1]``, ``{attending: {dataset: per-item
            records}}`` with ``stratum``, ``gold`` and ``samples`` (parsed option or None).
    Returns:
        DataFrame, one row per (attending, dataset, stratum) in input order, strata easy,
        medium, hard (a stratum without items is left out), columns ``attending, dataset,
        stratum, items, sample_acc, lo, hi, valid_rate``: ``sample_acc`` is the mean over
        items of each item's fraction of correct samples (an invalid sample is wrong),
        with a bootstrap 95% interval over items; ``valid_rate`` the mean fraction of
        valid samples.
    """
    import pandas as pd

    rows = []
    for att, by_ds in samples.items():
        for ds, per in by_ds.items():
            for st in ("easy", "medium", "hard"):
                its = [p for p in per if p.get("stratum") == st]
                if not its:
                    continue
                acc = [sum(x is not None and x == p["gold"] for x in p["samples"]) / len(p["samples"]) for p in its]
                valid = [sum(x is not None for x in p["samples"]) / len(p["samples"]) for p in its]
                ci = bootstrap_mean_ci(acc, n_boot=n_boot, seed=seed)
                rows.append({"attending": att, "dataset": ds, "stratum": st, "items": len(its), "sample_acc": ci["mean"],
                             "lo": ci["lo"], "hi": ci["hi"], "valid_rate": float(np.mean(valid))})
    return pd.DataFrame(rows, columns=["attending", "dataset", "stratum", "items", "sample_acc", "lo", "hi", "valid_rate"])


def budget_gains(curve: Any) -> Any:
    """Gains read off a scaling curve (``run_test_time_scaling(...)[0]``), per attending and
    dataset: the uniform curve's accuracy at its largest budget minus at its smallest
    (``uniform_gain_1_to_max``), and adaptive minus uniform accuracy at each budget B the
    adaptive policy was run at (``adaptive_minus_uniform_at_<B>``; same mean samples).

    Point differences of two estimates on the same items (no interval: the curve holds
    none for differences). Returns a DataFrame with columns ``attending, dataset,
    uniform_gain_1_to_max, adaptive_minus_uniform_at_<B>...``, one row per (attending,
    dataset) in curve order; a difference whose two points are not in the curve is NaN.
    """
    import pandas as pd

    curve = curve if "attending" in curve else curve.assign(attending="attending")
    budgets = sorted(int(b) for b in curve.loc[curve["policy"] == "adaptive", "N"].unique())
    rows = []
    for (att, ds), g in curve.groupby(["attending", "dataset"], sort=False):
        uni = g[g["policy"] == "uniform"].set_index("N")["acc"]
        ada = g[g["policy"] == "adaptive"].set_index("N")["acc"]
        row: dict[str, Any] = {"attending": att, "dataset": ds,
                               "uniform_gain_1_to_max": float(uni.loc[uni.index.max()] - uni.loc[uni.index.min()]) if len(uni) else np.nan}
        for b in budgets:
            row[f"adaptive_minus_uniform_at_{b}"] = float(ada.loc[b] - uni.loc[b]) if b in ada.index and b in uni.index else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["attending", "dataset", "uniform_gain_1_to_max", *[f"adaptive_minus_uniform_at_{b}" for b in budgets]])


#: the attendings notebook 06 scales by default: label -> (curriculum variant, stage)
DEFAULT_TTS_ATTENDINGS: dict[str, tuple[str | None, str]] = {
    "C-MARL (full system)": (None, "latest"),
    "GRPO without curriculum": ("no_curriculum", "latest"),
}


def _sample_attending(
    root: str, profile: Any, seed: int, variant: str | None, stage: str, its_by_ds: dict[str, list[dict[str, Any]]],
    n_samples: int, temperature: float, progress: bool,
) -> tuple[dict[str, Any], dict[str, tuple[list[dict[str, Any]], list[list[str]], list[Any]]]]:
    """One attending's test-time-scaling samples (:func:`run_test_time_scaling`, in a worker
    process): ``(info, {dataset: (per-item records, raw completions, greedy answers)})``;
    no samples when ``variant`` is not trained in the run (``info`` says so)."""
    from ..agents.pipeline import decision_answers, run_consultation
    from ..runs import Run

    run = Run.open(root)
    triage, panels, attending, info = build_agents(run, profile, seed, attending_stage=stage, variant=variant)
    if variant is not None and info["attending"]["adapters"] is None:
        return info, {}
    out = {}
    for ds_name, its in its_by_ds.items():
        recs = run_consultation(its, triage, panels, attending, decision="attending", progress=progress)
        drawn = attending.sample(its, [r["panel"] for r in recs], n_samples, temperature=temperature, seed=seed, progress=progress)
        per = [
            {"id": r["id"], "stratum": r["stratum"], "gold": int(it["answer_idx"]), "disagreement": panel_disagreement(r["panel"]),
             "samples": [d.parsed if d.valid else None for d in ds], "greedy": r["attending"]["parsed"],
             "greedy_correct": r["correct"]}
            for r, it, ds in zip(recs, its, drawn)
        ]
        out[ds_name] = (per, [[d.raw for d in ds] for ds in drawn], decision_answers(recs))
    return info, out


def run_test_time_scaling(
    run: Any,
    profile: Any,
    datasets_items: dict[str, Any],
    seed: int = 0,
    n_samples: int | None = None,
    budgets: Sequence[int] | None = None,
    temperature: float | None = None,
    out_dir: Any = None,
    progress: bool = False,
    attendings: dict[str, tuple[str | None, str]] | None = None,
) -> tuple[Any, dict[str, dict[str, list[dict[str, Any]]]]]:
    """Sample the run's attending(s) ``n_samples`` times per item and build the curves.

    The triage (the run's latest) and the panel's opinions are computed once per item and
    held fixed; each attending is sampled in one batched ``generate`` with
    ``num_return_sequences = n_samples`` at ``temperature`` (profile ``tts``). For every
    attending and dataset: the uniform curve over ``budgets``, the greedy answer, and for
    each budget B > 1 the adaptive allocation by panel disagreement at the same mean B.

    Args:
        attendings: ``{label: (variant, stage)}`` (see
            :func:`mmed.agents.build.policy_source`); default
            :data:`DEFAULT_TTS_ATTENDINGS`. An attending the run does not hold (a variant
            not trained) is skipped and listed in ``<out_dir>/skipped.json`` — the paper's
            full system is always required.
    Returns:
        ``(curve, samples)``: a DataFrame with columns attending, dataset, policy
        (``uniform`` / ``adaptive`` / ``greedy``), N, mean_samples, acc, lo, hi, n, and the
        answer distribution of the budget (:func:`vote_answers`: one realisation, item i
        voting over its first N samples; the greedy row: the greedy answers):
        top_answer, top_answer_share, gold_top_share, n_distinct_completions — also
        written to ``<out_dir>/curve.csv`` — and ``samples[attending][dataset]`` = per-item
        records (id, stratum, gold, disagreement, samples, greedy), written to
        ``<out_dir>/<attending slug>__<dataset>_samples.jsonl``.
    Raises:
        FileNotFoundError: the first attending (the full system) is not in the run.
        ValueError: a budget larger than ``n_samples`` (naming them; checked before any
            sampling, never dropped silently).
    """
    import json
    import re
    from pathlib import Path

    import pandas as pd

    from ..agents.pipeline import as_item_list
    from ..parallel import Job, run_jobs

    cfg = profile.tts
    n_samples = n_samples or cfg.n_samples
    budgets = list(budgets or cfg.budgets)
    too_big = [b for b in budgets if b > n_samples]
    if too_big:
        raise ValueError(f"test-time scaling: budget(s) {too_big} exceed n_samples={n_samples} (a budget of N needs N "
                         f"samples per item); lower tts.budgets or raise tts.n_samples")
    temperature = cfg.temperature if temperature is None else temperature
    attendings = dict(attendings or DEFAULT_TTS_ATTENDINGS)
    out_dir = Path(out_dir) if out_dir else run.path("eval", "tts")
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = profile.eval.bootstrap_samples
    rows: list[dict[str, Any]] = []
    all_samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
    skipped: dict[str, str] = {}
    weights: dict[str, Any] = {}
    its_by_ds = {ds: as_item_list(items)[: cfg.n_eval_items] if cfg.n_eval_items is not None else as_item_list(items)
                 for ds, items in datasets_items.items()}
    # each attending is sampled in a worker process of its own (independent: the same seeded
    # triage, panel and sampling in each; the same records as one after another). The cold
    # starts they all build on are made here first, once: two workers would train them at
    # the same time into the same folders
    from ..rl.cold_start import ensure_cold_starts

    ensure_cold_starts(run, profile, seed, log=None)
    jobs = [Job(f"test-time scaling samples of attending {label!r}", _sample_attending,
                (str(run.root), profile, seed, variant, stage, its_by_ds, n_samples, temperature, progress))
            for label, (variant, stage) in attendings.items()]
    drawn_by = dict(zip(attendings, run_jobs(jobs, profile, log=None)))
    for k, (label, (variant, stage)) in enumerate(attendings.items()):
        info, by_ds = drawn_by[label]
        if variant is not None and info["attending"]["adapters"] is None:
            if k == 0:
                raise FileNotFoundError(f"attending {label!r}: variant {variant!r} is not trained in this run")
            skipped[label] = f"variant {variant!r} is not trained in this run"
            continue
        if variant is None and stage == "latest" and info["attending"]["adapters"] is None:
            # no C-MARL stage in this run: "latest" is the cold start, and the label says so
            label = f"cold-start attending (no C-MARL trained; in place of {label!r})"
        weights[label] = info
        slug = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
        all_samples[label] = {}
        for ds_name, its in its_by_ds.items():
            per, raws, greedy_answers = by_ds[ds_name]
            samples = [p["samples"] for p in per]
            gold = [int(it["answer_idx"]) for it in its]
            opts = [list(it["options"]) for it in its]
            all_samples[label][ds_name] = per
            with open(out_dir / f"{slug}__{ds_name}_samples.jsonl", "w") as f:
                for p in per:
                    f.write(json.dumps(p) + "\n")
            base = {"attending": label, "dataset": ds_name}
            for c in scaling_curve(samples, gold, budgets, n_boot=nb, seed=seed):
                ans = vote_answers(samples, raws, gold, [c["N"]] * len(samples), opts)
                rows.append({**base, "policy": "uniform", "N": c["N"], "mean_samples": float(c["N"]), **{q: c[q] for q in ("acc", "lo", "hi", "n")},
                             **_answer_cols(ans)})
            dis = [p["disagreement"] for p in per]
            for b in budgets:
                if b <= 1:
                    continue
                alloc = adaptive_allocation(dis, b, n_samples)
                a = adaptive_accuracy(samples, gold, alloc, n_boot=nb, seed=seed)
                ans = vote_answers(samples, raws, gold, alloc, opts)
                rows.append({**base, "policy": "adaptive", "N": b, "mean_samples": a["mean_samples"], **{q: a[q] for q in ("acc", "lo", "hi", "n")},
                             **_answer_cols(ans)})
            g = accuracy_ci([bool(p["greedy_correct"]) for p in per], nb, seed=seed)
            rows.append({**base, "policy": "greedy", "N": 1, "mean_samples": 1.0, **{q: g[q] for q in ("acc", "lo", "hi", "n")},
                         **_answer_cols(greedy_answers)})
    curve = pd.DataFrame(rows)
    curve.to_csv(out_dir / "curve.csv", index=False)
    (out_dir / "weights.json").write_text(json.dumps(weights, indent=2, default=str))
    (out_dir / "skipped.json").write_text(json.dumps(skipped, indent=2))
    return curve, all_samples


# ----------------------------------------------------------------------------------------
# the step notebook 06 shows
# ----------------------------------------------------------------------------------------
#: the notebook whose checker (:mod:`mmed.checkers.nb05_06`) reads :attr:`TTSStepResult.metrics`
TTS_NOTEBOOK = "06_test_time_scaling"


@dataclass
class TTSStepResult:
    """What :func:`tts_step` measured.

    Attributes:
        curve / samples: :func:`run_test_time_scaling`'s two results.
        per_stratum: :func:`sample_stratum_table` of ``samples``.
        gains: :func:`budget_gains` of ``curve``.
        metrics: the dictionary notebook 06 records (:func:`mmed.checks.record_notebook_metrics`
            with :data:`TTS_NOTEBOOK`): ``real_data``, ``n_samples`` (the profile's
            ``tts.n_samples``), ``curve``, ``gains`` and ``per_stratum`` as JSON records.
    """

    curve: Any
    samples: dict[str, dict[str, list[dict[str, Any]]]]
    per_stratum: Any
    gains: Any
    metrics: dict[str, Any]


#: the step's metrics in ``<run>/eval/tts/`` (:func:`tts_step`)
STEP_FILE = "step.json"


def tts_step(
    run: Any,
    profile: Any,
    datasets_items: dict[str, Any],
    seed: int = 0,
    real_data: bool = False,
    attendings: dict[str, tuple[str | None, str]] | None = None,
    progress: bool = False,
) -> TTSStepResult:
    """Test-time scaling as notebook 06 runs it: :func:`run_test_time_scaling` with the
    profile's ``tts`` settings, the single-sample behaviour per stratum
    (:func:`sample_stratum_table`, the profile's ``eval.bootstrap_samples``) and the budget
    gains (:func:`budget_gains`), with the metrics the notebook records (also written to
    ``<run>/eval/tts/step.json``). ``python -m mmed test-time-scaling`` and notebook 06 call it.

    Args:
        run / profile / seed / attendings / progress: as :func:`run_test_time_scaling`.
        datasets_items: ``{dataset: items}``, e.g. :func:`mmed.data.sets.evaluation_sets`.
        real_data: whether a real-data folder was present (recorded as ``real_data``).
    Returns:
        a :class:`TTSStepResult` (curve, samples, per-stratum table, gains, metrics).
    Raises:
        as :func:`run_test_time_scaling`.
    """
    from .metrics import json_records

    curve, samples = run_test_time_scaling(run, profile, datasets_items, seed=seed, attendings=attendings,
                                           progress=progress)
    per_stratum = sample_stratum_table(samples, n_boot=profile.eval.bootstrap_samples, seed=seed)
    gains = budget_gains(curve)
    metrics = {"real_data": bool(real_data), "n_samples": profile.tts.n_samples, "curve": json_records(curve),
               "gains": json_records(gains), "per_stratum": json_records(per_stratum), "seed": seed}
    write_json_atomic(run.path("eval", "tts", mkdir=True) / STEP_FILE, metrics)
    return TTSStepResult(curve, samples, per_stratum, gains, metrics)
