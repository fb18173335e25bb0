"""Cold starts and the agents of a run built on them (docs/architecture.md#base-model-and-cold-start).

:func:`ensure_cold_start` cold-starts one agent into ``runs/<id>/<agent>/sft`` (a short TRL
``SFTTrainer`` run, :func:`mmed.rl.sft.cold_start`) unless the run holds it;
:func:`ensure_cold_starts` runs the independent ones in worker processes;
:func:`ensure_image_only_attending` trains the attending's image-only reference.
:func:`build_agents` assembles the triage doctor, the panel and the attending of a run from
the weights it holds, cold-starting them first when it lacks them: the consultation
(``mmed.consult``), the triage's downstream check, the curriculum's strata and test-time
scaling all build their agents here.
"""

from __future__ import annotations

import dataclasses
import random
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

from ..agents.attending import AttendingPhysician
from ..agents.build import (
    IMAGE_ONLY_REAL_STAGE,
    IMAGE_ONLY_STAGE,
    describe_specialists,
    load_runner,
    policy_source,
    sampling_params,
    specialist_factory,
)
from ..agents.pipeline import PanelBank, as_item_list, run_consultation
from ..agents.triage import TriageDoctor
from ..config import AgentColdStart, Profile
from ..data.answers import normalize_answer
from ..data.sets import synthetic_split
from ..parallel import Job, start_jobs
from ..runs import Run, resolve_data_root, write_json_atomic
from .pretrain import base_model
from .sft import cold_start, load_cold_start_report
from .tensorboard_logs import training_name


def panel_opinions_gold(profile: Profile, items: Sequence[dict], seed: int, run: Run | None = None) -> list[list[Any]]:
    """Opinions of the panel of each item's gold specialty (training strata, cold start)."""
    bank = PanelBank(specialist_factory(profile, seed, run=run), profile.specialists.panel_size)
    recs = run_consultation(items, TriageDoctor(mode="gold"), bank, decision="none", progress=False)
    return [r["panel"] for r in recs]


def without_panel(opinions: Sequence[Sequence[Any]], fraction: float, seed: int) -> list[list[Any]]:
    """``opinions`` with exactly ``round(fraction * n)`` of the ``n`` panels (a choice seeded
    by ``seed``) replaced by empty lists: the attending's cold-start items shown without
    opinions (``cold_start.no_panel_fraction``). The others are kept as given.

    Raises:
        ValueError: ``fraction`` outside [0, 1].
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"no-panel fraction must be in [0, 1], got {fraction}")
    n = len(opinions)
    drop = set(random.Random(f"no_panel:{seed}").sample(range(n), round(fraction * n)))
    return [[] if i in drop else list(ops) for i, ops in enumerate(opinions)]


def real_cold_start_pool(profile: Profile, data_root: str | Path | None, seed: int) -> Any:
    """The real training pool the attending's cold starts draw from
    (:func:`mmed.rl.curriculum.attending_pool` of ``data.cold_start_benchmarks``, else
    ``data.train_benchmarks``: their ``train`` splits minus every evaluation image, split
    image-disjointly into ``train`` / ``validation``), or None without those benchmarks or a
    data root. Its one line per benchmark goes to stderr (stdout: a command's JSON)."""
    benchmarks = list(profile.data.cold_start_benchmarks or profile.data.train_benchmarks)
    if not benchmarks:
        return None
    from .curriculum import attending_pool  # here: mmed.rl.curriculum imports this module

    return attending_pool(dataclasses.replace(profile, data=dataclasses.replace(profile.data, train_benchmarks=benchmarks)),
                          data_root, seed, log=lambda m: print(m, file=sys.stderr, flush=True))


def gold_text(item: dict) -> str:
    """An item's gold answer in its matching form (:func:`mmed.data.answers.normalize_answer`
    of ``options[answer_idx]``: ``"Yes."`` -> ``"yes"``).

    Raises:
        ValueError: ``answer_idx`` outside ``options`` (the message names the item id).
    """
    options, idx = item["options"], item["answer_idx"]
    if not 0 <= idx < len(options):
        raise ValueError(f"item {item.get('id')!r}: field 'answer_idx' is {idx}, outside its {len(options)} options")
    return normalize_answer(options[idx])


def balance_yes_no(items: Sequence[dict], seed: int, by: str = "organ") -> tuple[list[dict], dict[str, Any]]:
    """The items with as many gold "yes" as gold "no" answers within each group of the item
    field ``by`` (items without it form one group): in each group a seeded sample of the
    more frequent of the two answers, of the other's size, is kept; every item whose gold
    answer is neither yes nor no stays. Order: the input's, less the dropped items.

    Why: an agent that cannot read a finding answers from what it can read. VQA-RAD's closed
    training questions lean "no" on chest images (91 of 133 in the demo's pool) and "yes" on
    abdominal ones (70 of 103), while its test split is balanced within each organ, and the
    organ is visible at a glance. Balanced within each organ, no such prior is left to learn
    (the principle of balanced VQA data: Goyal et al., "Making the V in VQA Matter", CVPR 2017,
    arXiv 1612.00837). Measured for the image-only reference of the real datasets
    (``cold_start.image_only_real.balance_yes_no``, benchmarks/RESULTS.md, "image-only
    references"): it did not keep the reference off one letter (A on 93% of the validation
    items on one seed of three), so the demo leaves it off.

    Args:
        items: item dicts with ``options`` and ``answer_idx`` (:data:`mmed.data.schema.COLUMNS`).
        seed: seeds the samples.
        by: the grouping field (``"organ"``; ``""`` = one group).
    Returns:
        ``(kept, counts)``; counts = ``{"yes", "no", "other", "dropped", "groups": {group:
        {"yes", "no", "other"}}}`` before the sample (``dropped``: the items left out).
    Raises:
        ValueError: an item whose ``answer_idx`` is outside its options.
    """
    groups: dict[str, dict[str, list[int]]] = {}
    for i, it in enumerate(items):
        g = gold_text(it)
        key = str(it.get(by) or "") if by else ""
        groups.setdefault(key, {"yes": [], "no": [], "other": []})[g if g in ("yes", "no") else "other"].append(i)
    dropped: set[int] = set()
    for key, idx in sorted(groups.items()):
        more, fewer = (idx["yes"], idx["no"]) if len(idx["yes"]) >= len(idx["no"]) else (idx["no"], idx["yes"])
        keep = set(random.Random(f"balance_yes_no:{seed}:{key}").sample(more, len(fewer)))
        dropped |= set(more) - keep
    counts = {k: sum(len(v[k]) for v in groups.values()) for k in ("yes", "no", "other")}
    counts.update(dropped=len(dropped), groups={k: {a: len(v[a]) for a in v} for k, v in sorted(groups.items())})
    return [it for i, it in enumerate(items) if i not in dropped], counts


def attending_cold_start_items(
    profile: Profile, synthetic: Sequence[dict], seed: int, data_root: str | Path | None = None, pool: Any = None,
    balance: bool = False,
) -> tuple[list[dict], dict[str, Any] | None]:
    """The attending's cold-start items: ``cold_start.n_items`` in all, of which at most
    ``cold_start.real_share`` are the real training pool's ``train`` items
    (:func:`real_cold_start_pool`; a seeded sample when there are more) and the rest the
    first synthetic ones, in a seeded shuffled order. Without ``real_share``, those
    benchmarks or a data root: the synthetic items as given and None. ``pool``: that pool when
    the caller has read it. ``balance``: draw the real items from :func:`balance_yes_no` of
    the pool's (as many gold "yes" as "no" within each organ; the image-only reference of the
    real datasets, ``cold_start.image_only_real.balance_yes_no``).

    Returns:
        ``(items, info)``; info = ``{"n", "n_synthetic", "n_real", "n_real_available",
        "benchmarks"}`` (with ``balance``: also ``"yes_no_balance"``, :func:`balance_yes_no`'s
        counts, and ``n_real_available`` counts the balanced pool) or None (synthetic only).
    """
    share = profile.cold_start.real_share
    if share > 0 and pool is None:
        pool = real_cold_start_pool(profile, data_root, seed)
    if share <= 0 or pool is None:
        return list(synthetic), None
    n = profile.cold_start.n_items
    real = as_item_list(pool.train)
    extra: dict[str, Any] = {}
    if balance:
        real, extra["yes_no_balance"] = balance_yes_no(real, seed)
    available = len(real)
    k = min(available, int(share * n))
    real = random.Random(f"attending_cold_start_real:{seed}").sample(real, k)
    items = list(synthetic[: n - k]) + real
    random.Random(f"attending_cold_start_items:{seed}").shuffle(items)
    return items, {"n": len(items), "n_synthetic": len(items) - k, "n_real": k, "n_real_available": available,
                   "benchmarks": list(profile.data.cold_start_benchmarks or profile.data.train_benchmarks), **extra}


def ensure_cold_start(
    run: Run, profile: Profile, agent: str, seed: int, data_root: str | Path | None = None, real: Any = None,
    with_image_only: bool = True,
) -> dict[str, Any] | None:
    """Cold-start ``agent`` into ``runs/<id>/<agent>/sft`` unless the run already holds it.

    Uses the profile's synthetic ``train`` split (first ``cold_start.n_items``) and 64
    ``validation`` items to measure before/after. The triage doctor with
    ``triage.real_train`` also trains on the real triage images' train part when real data
    is present (:func:`mmed.rl.triage.cold_start_items`; ``real`` an already loaded
    :func:`mmed.rl.triage.load_real_triage` result, else read from ``data_root``, None →
    ``../shared/data`` when present); the report's ``training_data`` says what it trained
    on. The attending's items may mix in the real training pool
    (:func:`attending_cold_start_items`, ``cold_start.real_share``) and a share of them are
    shown without opinions (:func:`without_panel`, ``cold_start.no_panel_fraction``).
    For the attending it also trains, when ``cold_start.image_only`` is set and
    ``with_image_only``, the image-only reference ``attending/image_only``
    (:func:`ensure_image_only_attending`; :func:`ensure_cold_starts` trains it in a worker of
    its own). Returns the report of ``<agent>/sft``, or None when the profile disables the
    cold start.
    """
    if not profile.cold_start.enabled:
        return None
    out = run.path(agent, "sft")
    rep = load_cold_start_report(out)
    built = None  # the attending's (train, held) items, reused by the image-only reference
    if rep is None:
        base = base_model(run, profile, agent)
        train = as_item_list(synthetic_split(profile, "train", n=profile.cold_start.n_items))
        data_info = None
        if agent == "triage":
            from .triage import cold_start_items  # here: mmed.rl.triage imports this module

            train, data_info = cold_start_items(profile, train, seed, data_root=data_root, real=real)
        else:
            train, data_info = attending_cold_start_items(profile, train, seed, data_root)
        held = as_item_list(synthetic_split(profile, "validation", n=min(64, max(8, profile.data.synthetic.n_eval))))
        built = (train, held)
        tr_ops = panel_opinions_gold(profile, train, seed, run) if agent == "attending" else None
        if tr_ops is not None:
            tr_ops = without_panel(tr_ops, profile.cold_start.no_panel_fraction, seed)
        he_ops = panel_opinions_gold(profile, held, seed, run) if agent == "attending" else None
        with run.step(f"cold_start/{agent}"):
            rep = cold_start(agent, base, train, held, profile, out, tr_ops, he_ops, seed=seed,
                             tensorboard_dir=run.tensorboard_dir(training_name(f"cold_start_{agent}", seed)))
        if data_info is not None:
            rep = {**rep, "training_data": data_info}
            write_json_atomic(out / "cold_start.json", rep)
        run.add_artifact(f"{agent}/sft", out)
    if agent == "attending" and profile.cold_start.image_only and with_image_only:
        # the synthetic reference (the curriculum's "C-MARL vs image only" claim reads it); the
        # real one only where an evaluation uses it (ensure_cold_starts: notebook 02)
        held = built[1] if built is not None else None
        ensure_image_only_attending(run, profile, seed, data_root, heldout=held)
    return rep


def _cold_start_job(root: str, profile: Profile, agent: str, seed: int, data_root: str | None) -> None:
    """One cold start in a worker process (:func:`ensure_cold_starts`)."""
    run = Run.open(root)
    if agent == "attending_image_only":
        ensure_image_only_attending(run, profile, seed, data_root)
    elif agent == "attending_image_only_real":
        ensure_image_only_attending(run, profile, seed, data_root, source="real")
    else:
        ensure_cold_start(run, profile, agent, seed, data_root, with_image_only=False)


def ensure_cold_starts(
    run: Run, profile: Profile, seed: int, agents: Sequence[str] = ("triage", "attending"),
    data_root: str | Path | None = None, workers: int | None = None, log: Any = print,
    meanwhile: Callable[[dict[str, dict[str, Any] | None]], Any] | None = None,
) -> dict[str, dict[str, Any] | None] | tuple[dict[str, dict[str, Any] | None], Any]:
    """Every cold start of ``agents`` — and the attending's image-only references when
    ``cold_start.image_only`` is set (the real one with real data) — made at once, in parallel worker processes
    (:func:`mmed.parallel.start_jobs`), unless the run already holds them: the trainings are
    independent (each reads the same base model and draws its own seeded items), so the
    results are those of :func:`ensure_cold_start` one after another. The base model is made
    (or read from its cache) first, here. Longest training first: the real image-only
    reference, the attending's, the synthetic image-only reference, then the triage's.

    Args:
        agents: a subset of ``("triage", "attending")``, or one of them as a string.
        data_root: real-data folder (None → ``../shared/data`` when present).
        workers: processes (None → the profile's ``workers``, else the usable cores); 1 trains
            here, one after another.
        log: the one line naming the jobs (None: silent).
        meanwhile: called here with ``{agent: report}`` as soon as the cold starts of
            ``agents`` are done (reports None when the profile disables cold starts), while
            the image-only references may still train in their workers (notebook 02 consults
            meanwhile: on 2 cores the synthetic reference trains ~30 s past the others,
            benchmarks/RESULTS.md); a failure of it stops them. A reference that fails while
            it runs is reported when it returns.
    Returns:
        ``{agent: report}`` as :func:`ensure_cold_start` returns it; with ``meanwhile``,
        ``({agent: report}, what meanwhile returned)``.
    Raises:
        ValueError: an unknown agent.
        RuntimeError: a worker's training failed (the message names it).
    """
    agents = (agents,) if isinstance(agents, str) else tuple(agents)
    bad = [a for a in agents if a not in ("triage", "attending")]
    if bad:
        raise ValueError(f"unknown agent(s) {bad}: expected 'triage' and/or 'attending'")
    if not profile.cold_start.enabled:
        none: dict[str, dict[str, Any] | None] = {a: None for a in agents}
        return none if meanwhile is None else (none, meanwhile(none))
    for agent in agents:
        base_model(run, profile, agent)  # the pretrained base, made once, before the workers read it
    root = resolve_data_root(data_root)
    missing = []
    if "attending" in agents:
        missing.append(("attending", run.path("attending", "sft")))
        if profile.cold_start.image_only:
            missing.append(("attending_image_only", run.path("attending", IMAGE_ONLY_STAGE)))
            if root is not None and (profile.data.cold_start_benchmarks or profile.data.train_benchmarks):
                missing.append(("attending_image_only_real", run.path("attending", IMAGE_ONLY_REAL_STAGE)))
    if "triage" in agents:
        missing.append(("triage", run.path("triage", "sft")))
    # longest first, so that the two workers finish close together (the clean-clone demo of
    # benchmarks/RESULTS.md, 2 cores: the real image-only reference 152 s, the attending 134 s,
    # the synthetic reference 110 s, the triage 74 s)
    order = ("attending_image_only_real", "attending", "attending_image_only", "triage")
    missing.sort(key=lambda a_out: order.index(a_out[0]))
    labels = {"triage": "triage cold start", "attending": "attending cold start",
              "attending_image_only": "attending image-only reference",
              "attending_image_only_real": "attending image-only reference (real)"}
    todo = [a for a, out in missing if load_cold_start_report(out) is None]
    jobs = [Job(labels[a], _cold_start_job, (str(run.root), profile, a, seed, None if root is None else str(root)))
            for a in todo]
    started = start_jobs(jobs, profile, workers, log=log, what="cold starts")
    try:
        started.wait([i for i, a in enumerate(todo) if a in agents])
        # the reports only: the image-only references are jobs of their own (still running or done)
        reports = {a: ensure_cold_start(run, profile, a, seed, root, with_image_only=False) for a in agents}
        extra = meanwhile(reports) if meanwhile is not None else None
    except BaseException:
        started.cancel()
        raise
    started.results()
    return reports if meanwhile is None else (reports, extra)


#: where a run keeps the image-only reference of each source (``runs/<id>/attending/<folder>``)
IMAGE_ONLY_DIRS = {"synthetic": IMAGE_ONLY_STAGE, "real": IMAGE_ONLY_REAL_STAGE}


def image_only_items(
    profile: Profile, seed: int, data_root: str | Path | None = None, source: str = "synthetic",
) -> tuple[list[dict], list[dict], dict[str, Any]] | None:
    """The training and held-out items of an image-only reference.

    ``"synthetic"``: the first ``cold_start.n_items`` synthetic ``train`` items and 64
    synthetic ``validation`` items (the attending's own cold-start held-out set).
    ``"real"``: :func:`attending_cold_start_items` with ``cold_start.image_only_real.real_share``
    (the real cold-start pool's ``train`` items, :func:`real_cold_start_pool`, with as many gold
    "yes" as "no" within each organ when ``cold_start.image_only_real.balance_yes_no`` is set,
    filled up with synthetic ones to ``cold_start.n_items``) and the pool's image-disjoint ``validation``
    items (at most 64); None without that pool.

    Returns:
        ``(train, held, info)``; info = ``{"source", "n", "n_real", "n_synthetic", "benchmarks"}``
        (and ``"yes_no_balance"`` when balanced).
    Raises:
        ValueError: an unknown ``source``.
    """
    if source not in IMAGE_ONLY_DIRS:
        raise ValueError(f"unknown image-only source {source!r}: expected one of {sorted(IMAGE_ONLY_DIRS)}")
    if source == "synthetic":
        train = as_item_list(synthetic_split(profile, "train", n=profile.cold_start.n_items))
        held = as_item_list(synthetic_split(profile, "validation", n=min(64, max(8, profile.data.synthetic.n_eval))))
        return train, held, {"source": source, "n": len(train), "n_real": 0, "n_synthetic": len(train), "benchmarks": []}
    pool = real_cold_start_pool(profile, data_root, seed)
    if pool is None:
        return None
    cs = profile.cold_start
    mixed = dataclasses.replace(profile, cold_start=dataclasses.replace(cs, real_share=cs.image_only_real.real_share))
    syn = as_item_list(synthetic_split(profile, "train", n=cs.n_items))
    train, info = attending_cold_start_items(mixed, syn, seed, data_root, pool=pool, balance=cs.image_only_real.balance_yes_no)
    held = as_item_list(pool.validation)[:64]
    return train, held, {"source": source, **{k: info[k] for k in ("n", "n_real", "n_synthetic", "benchmarks", "yes_no_balance")
                                              if k in info}}


def ensure_image_only_attending(
    run: Run, profile: Profile, seed: int, data_root: str | Path | None = None, heldout: list[dict] | None = None,
    source: str = "synthetic",
) -> dict[str, Any] | None:
    """An image-only reference of the attending (trained unless the run holds it): what it
    can read from the image and the question alone, the "image only" row of the ablation
    table. :func:`mmed.rl.sft.cold_start` of the base model with *empty* panels (prompt
    "(no specialist opinions)", reasoning ``Panel: none.``) and gold targets, on the items of
    one source (:func:`image_only_items`): ``"synthetic"`` → ``attending/image_only`` (the
    synthetic rows), ``"real"`` → ``attending/image_only_real`` (the real datasets' rows;
    ``cold_start.image_only_real`` sets its share of real items and overrides its steps /
    learning rate). Two references because one on the attending's items read neither well:
    on the real pool's validation items it answered one letter on most seeds, and more real
    items cost synthetic image reading (benchmarks/RESULTS.md, "image-only references").

    Args:
        heldout: the synthetic held-out items when the caller has drawn them (saves drawing
            them again); ignored for ``"real"``.
    Returns:
        its cold-start report (with ``training_data``), or None for ``"real"`` without a real pool.
    Raises:
        ValueError: an unknown ``source``.
    """
    if source not in IMAGE_ONLY_DIRS:
        raise ValueError(f"unknown image-only source {source!r}: expected one of {sorted(IMAGE_ONLY_DIRS)}")
    out = run.path("attending", IMAGE_ONLY_DIRS[source])
    rep = load_cold_start_report(out)
    if rep is not None:
        return rep
    built = image_only_items(profile, seed, data_root, source)
    if built is None:
        return None
    train, held, info = built
    if heldout is not None and source == "synthetic":
        held = heldout
    cs = profile.cold_start
    trl = dict(cs.trl)
    if source == "real":
        trl.update({k: v for k, v in (("max_steps", cs.image_only_real.max_steps),
                                       ("learning_rate", cs.image_only_real.learning_rate)) if v is not None})
    # the attending's own overrides (cold_start.attending) are not the reference's
    prof = dataclasses.replace(profile, cold_start=dataclasses.replace(cs, target="gold", label_fraction=1.0,
                                                                       no_panel_fraction=1.0, trl=trl,
                                                                       attending=AgentColdStart()))
    base = base_model(run, profile, "attending")
    name = "attending_image_only" + ("_real" if source == "real" else "")
    with run.step(f"cold_start/{name}"):
        rep = cold_start("attending", base, train, held, prof, out, [[] for _ in train], [[] for _ in held], seed=seed,
                         tensorboard_dir=run.tensorboard_dir(training_name(f"cold_start_{name}", seed)))
    rep = {**rep, "training_data": info}
    write_json_atomic(out / "cold_start.json", rep)
    run.add_artifact(f"attending/{IMAGE_ONLY_DIRS[source]}", out)
    return rep


def build_agents(
    run: Run,
    profile: Profile,
    seed: int,
    triage_mode: str = "model",
    fixed_specialty: str | None = None,
    triage_stage: str = "latest",
    attending_stage: str = "latest",
    variant: str | None = None,
    need_attending: bool = True,
    data_root: str | Path | None = None,
) -> tuple[TriageDoctor, PanelBank, AttendingPhysician | None, dict[str, Any]]:
    """Triage doctor, panel bank and attending for a run, with what they are made of.

    Cold starts are run first when the profile has them and the run lacks them (their real
    items from ``data_root``: None → ``../shared/data`` when present). In
    ``"model"`` mode an invalid triage answer goes to ``profile.triage.fallback``.
    Returns ``(triage, panels, attending, info)`` where ``info`` names the weights used
    (and, in ``"model"`` mode, the triage fallback).
    """
    # the base models this call loads (the tiny one built on first use); none for a consultation
    # without models (gold or fixed triage, a panel-only decision, simulated specialists)
    needed = (["triage"] * (triage_mode == "model") + ["attending"] * need_attending
              + ["specialist"] * (profile.specialists.backend == "local"))
    for agent in needed:
        base_model(run, profile, agent)
    info: dict[str, Any] = {"specialists": describe_specialists(profile)}
    style = profile.sampling.prompt_style
    sp = sampling_params(profile, seed)
    if triage_mode == "model":
        ensure_cold_start(run, profile, "triage", seed, data_root)
        src = policy_source(run, profile, "triage", triage_stage)
        info["triage"] = asdict(src) | {"fallback": profile.triage.fallback}
        triage = TriageDoctor(load_runner(profile, src, "triage"), "model", fallback=profile.triage.fallback, seed=seed,
                              sampling=sp, style=style)
    else:
        info["triage"] = {"mode": triage_mode, "fixed_specialty": fixed_specialty}
        triage = TriageDoctor(mode=triage_mode, fixed_specialty=fixed_specialty, seed=seed)
    attending = None
    if need_attending:
        # not the image-only reference: no consultation reads it (notebook 02 trains it with the
        # cold starts, ensure_cold_starts; the curriculum with the attending's, ensure_cold_start)
        ensure_cold_start(run, profile, "attending", seed, data_root, with_image_only=False)
        src = policy_source(run, profile, "attending", attending_stage, variant=variant)
        info["attending"] = asdict(src)
        attending = AttendingPhysician(load_runner(profile, src, "attending"), sp, style=style)
    panels = PanelBank(specialist_factory(profile, seed, run=run), profile.specialists.panel_size)
    return triage, panels, attending, info
