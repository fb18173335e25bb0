"""Specialist interface, simulated panel (rates, consensus errors, determinism), panel helpers."""

from __future__ import annotations

import asyncio
import importlib.util
import random
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmed.agents.specialists import (
    PANEL_RECORD_FIELDS,
    Opinion,
    SimulatedSpecialist,
    Specialist,
    consult_panel,
    consult_routed,
    make_panel,
    run_sync,
    simulated_panel_factory,
    simulated_strata_probs,
)
from mmed.config import SimulatedPanelConfig, load_profile
from mmed.data.schema import SPECIALTIES, SchemaError, option_letter


def make_items(n: int, specialty: str = "Radiologist", n_options: int = 4, prefix: str = "it") -> list[dict]:
    """Closed items with a gold index that varies with i (dataset-row dicts)."""
    out = []
    for i in range(n):
        opts = [f"option {j}" for j in range(n_options)]
        g = (i * 7) % n_options
        out.append(
            dict(id=f"{prefix}{i}", dataset="synthetic", options=opts, answer_idx=g, answer=opts[g],
                 answer_type="closed", specialty=specialty, modality="CT", question="q?")
        )
    return out


def sim(specialty="Radiologist", idx=0, seed=0, **kw) -> SimulatedSpecialist:
    return SimulatedSpecialist(specialty, idx, seed=seed, **kw)


def correctness(panel, items) -> np.ndarray:
    """(n_items, K) boolean matrix of correct answers."""
    ops = consult_panel(panel, items)
    return np.array([[o.parsed == it["answer_idx"] for o in row] for it, row in zip(items, ops)])


# ---------------------------------------------------------------------------- Opinion
def test_opinion_rejects_inconsistent_flags_and_gives_panel_record():
    base = dict(item_id="a", specialist_id="Radiologist#1", specialty="Radiologist", backend="simulated",
                model="simulated", raw="<answer>A</answer>")
    with pytest.raises(ValueError, match="valid=True but parsed is None"):
        Opinion(**base, parsed=None, valid=True)
    with pytest.raises(ValueError, match="valid=False but parsed=1"):
        Opinion(**base, parsed=1, valid=False)
    with pytest.raises(ValueError, match="specialty 'Nurse'"):
        Opinion(**{**base, "specialty": "Nurse"}, parsed=0, valid=True)
    op = Opinion(**base, parsed=0, valid=True, simulated=True)
    rec = op.to_record()
    assert list(rec)[: len(PANEL_RECORD_FIELDS)] == list(PANEL_RECORD_FIELDS)
    assert rec["parsed"] == 0 and rec["simulated"] is True and "latency_s" not in rec
    assert Opinion.from_dict(op.to_dict()) == op


def test_identity_and_cache_key_distinguish_panel_members():
    panel = make_panel("Pathologist", 3, simulated_panel_factory(SimulatedPanelConfig(), seed=5))
    assert [sp.specialist_id for sp in panel] == ["Pathologist#1", "Pathologist#2", "Pathologist#3"]
    keys = [sp.cache_key_fields() for sp in panel]
    assert len({repr(sorted(k.items())) for k in keys}) == 3
    assert keys[0]["seed"] == 5 and keys[0]["backend"] == "simulated"
    assert keys[0]["sampling"]["own_accuracy"] == 0.85
    p = panel[0].params()
    assert p["simulated"] is True and p["specialist_id"] == "Pathologist#1"
    with pytest.raises(ValueError, match="unknown specialty"):
        SimulatedSpecialist("Nurse")
    with pytest.raises(ValueError, match="own_accuracy must be in"):
        SimulatedSpecialist("Surgeon", own_accuracy=1.5)


def test_make_panel_rejects_bad_factories():
    with pytest.raises(ValueError, match="k must be >= 1"):
        make_panel("Surgeon", 0, lambda s, i: sim(s, i))
    with pytest.raises(ValueError, match="a Radiologist as member 0 of a Surgeon panel"):
        make_panel("Surgeon", 2, lambda s, i: sim("Radiologist", i))
    with pytest.raises(ValueError, match="distinct"):
        make_panel("Surgeon", 2, lambda s, i: sim(s, 0))


# ---------------------------------------------------------------------------- rates
CFG = dict(own_accuracy=0.85, other_accuracy=0.4, consensus_error_rate=0.15, abstain_rate=0.1)


def test_empirical_rates_match_configured_ones():
    n = 2000
    own = make_items(n, "Radiologist")
    other = make_items(n, "Dermatologist", prefix="o")
    panel = [sim("Radiologist", i, seed=3, **CFG) for i in range(3)]
    ops_own = consult_panel(panel, own)
    flat = [o for row in ops_own for o in row]
    abstain = np.mean([o.abstained for o in flat])
    assert abs(abstain - 0.1) < 0.015
    q = (1 - 0.1) * (1 - 0.15)
    acc_own = correctness(panel, own).mean()
    acc_other = correctness(panel, other).mean()
    assert abs(acc_own - q * 0.85) < 0.025
    assert abs(acc_other - q * 0.4) < 0.025
    # the strata of the analytic model, own and other specialty
    for items, p in ((own, 0.85), (other, 0.4)):
        c = correctness(panel, items)
        s = c.mean(axis=1)
        want = simulated_strata_probs(p, 3, 0.15, 0.1)
        assert abs((s == 1).mean() - want["easy"]) < 0.03
        assert abs((s == 0).mean() - want["hard"]) < 0.03
    assert all(o.simulated and o.backend == "simulated" for o in flat)


def test_consensus_errors_coincide_across_members_and_specialties():
    """With otherwise perfect members every error is the latent: all wrong, same option."""
    items = make_items(2000, "Radiologist")
    kw = dict(own_accuracy=1.0, other_accuracy=1.0, consensus_error_rate=0.2)
    rad = [sim("Radiologist", i, seed=1, **kw) for i in range(3)]
    path = [sim("Pathologist", i, seed=1, **kw) for i in range(2)]
    ops = [a + b for a, b in zip(consult_panel(rad, items), consult_panel(path, items))]
    wrong_items = 0
    for it, row in zip(items, ops):
        answers = {o.parsed for o in row}
        if it["answer_idx"] in answers:
            assert answers == {it["answer_idx"]}
        else:
            wrong_items += 1
            assert len(answers) == 1  # the same wrong option for all five members
    assert abs(wrong_items / 2000 - 0.2) < 0.025
    # the misleading options are spread over the wrong options, not always the same one
    offsets = {(row[0].parsed - it["answer_idx"]) % 4 for it, row in zip(items, ops) if row[0].parsed != it["answer_idx"]}
    assert offsets == {1, 2, 3}


def test_independent_errors_outside_the_latent():
    items = make_items(3000, "Radiologist")
    panel = [sim("Radiologist", i, seed=0, own_accuracy=0.6, consensus_error_rate=0.0) for i in range(2)]
    c = correctness(panel, items)
    p0, p1, both = c[:, 0].mean(), c[:, 1].mean(), (c[:, 0] & c[:, 1]).mean()
    assert abs(p0 - 0.6) < 0.03 and abs(p1 - 0.6) < 0.03
    assert abs(both - p0 * p1) < 0.025


# ---------------------------------------------------------------------------- determinism
def test_deterministic_by_seed_and_independent_of_batch_order():
    items = make_items(300)
    a = [sim(seed=7, idx=i, **CFG) for i in range(3)]
    b = [sim(seed=7, idx=i, **CFG) for i in range(3)]
    ra = [[o.to_record() for o in row] for row in consult_panel(a, items)]
    rb = [[o.to_record() for o in row] for row in consult_panel(b, items)]
    assert ra == rb
    shuffled = items[:]
    random.Random(0).shuffle(shuffled)
    by_id = {it["id"]: row for it, row in zip(shuffled, consult_panel(b, shuffled, chunk_size=7))}
    assert [[o.to_record() for o in by_id[it["id"]]] for it in items] == ra


def test_different_seeds_are_independent():
    items = make_items(3000)
    kw = dict(own_accuracy=0.7, consensus_error_rate=0.1)
    c0 = correctness([sim(seed=0, **kw)], items)[:, 0]
    c1 = correctness([sim(seed=1, **kw)], items)[:, 0]
    assert (c0 != c1).any()
    assert abs((c0 & c1).mean() - c0.mean() * c1.mean()) < 0.025


def test_rationale_depends_on_choice_not_on_correctness():
    items = make_items(1)
    g0 = dict(items[0], answer_idx=0, answer="option 0")
    g1 = dict(items[0], answer_idx=1, answer="option 1")
    sp = sim()
    assert sp.rationale(g0, 1) == sp.rationale(g1, 1)
    assert sp.rationale(g0, 1).endswith("<answer>B. option 1</answer>")


@settings(max_examples=60, deadline=None)
@given(n_opt=st.integers(2, 6), gold=st.integers(0, 5), spec=st.sampled_from(SPECIALTIES),
       seed=st.integers(0, 10**6), abstain=st.floats(0, 1))
def test_every_opinion_is_consistent(n_opt, gold, spec, seed, abstain):
    gold = gold % n_opt
    opts = [f"o{j}" for j in range(n_opt)]
    item = dict(id=f"h{seed}", options=opts, answer_idx=gold, answer_type="closed", specialty=spec, modality="MRI")
    op = sim("Oncologist", seed=seed, abstain_rate=abstain).opine(item)
    assert op.valid != op.abstained
    if op.valid:
        assert 0 <= op.parsed < n_opt
        assert re.search(r"<answer>([A-Z])\. (.*)</answer>", op.raw).groups() == (option_letter(op.parsed), opts[op.parsed])
    else:
        assert "<answer></answer>" in op.raw


@pytest.mark.skipif(importlib.util.find_spec("mmed.agents.parsing") is None, reason="mmed.agents.parsing not written yet")
def test_raw_text_parses_to_the_same_index():
    from mmed.agents.parsing import parse_choice

    items = make_items(200) + [  # yes/no, letter-like option texts, five options
        dict(it, options=opts, answer_idx=i % len(opts), answer=opts[i % len(opts)])
        for opts in (["yes", "no"], ["B", "A"], ["C", "D", "A", "B", "left or right"])
        for i, it in enumerate(make_items(40, prefix="".join(opts)))
    ]
    for it, op in zip(items, sim(abstain_rate=0.2).opine_batch(items)):
        res = parse_choice(op.raw, it["options"])
        assert (res.valid, res.index) == (op.valid, op.parsed), (op.raw, res)


def test_open_items_become_counted_abstentions_and_bad_items_raise():
    op = sim().opine(dict(id="open1", options=[], answer_idx=-1, answer_type="open", specialty="Radiologist", modality="CT"))
    assert op.abstained and not op.valid and op.error == "UnsupportedItemError"
    bad = dict(make_items(1)[0], answer_idx=9)
    with pytest.raises(SchemaError, match=r"'it0'.*answer_idx"):
        sim().opine(bad)
    with pytest.raises(SchemaError, match="missing field 'specialty'"):
        sim().opine({k: v for k, v in make_items(1)[0].items() if k != "specialty"})


def test_from_profile_config():
    cfg = load_profile("demo").specialists.simulated
    sp = SimulatedSpecialist.from_config(cfg, "Dermatologist", 2, seed=9)
    assert sp.specialist_id == "Dermatologist#3" and sp.seed == 9
    assert sp.sampling_params() == {"own_accuracy": cfg.own_accuracy, "other_accuracy": cfg.other_accuracy,
                                    "consensus_error_rate": cfg.consensus_error_rate, "abstain_rate": cfg.abstain_rate}


def test_strata_probs_formula():
    p = simulated_strata_probs(0.5, 2, 0.2)
    assert p["easy"] == pytest.approx(0.8 * 0.25) and p["hard"] == pytest.approx(0.2 + 0.8 * 0.25)
    assert sum(p.values()) == pytest.approx(1.0)


# ---------------------------------------------------------------------------- async / panels
class SlowEcho(Specialist):
    """Answers option 0 after a random sleep; records how many calls run at once."""

    backend = "test"
    in_flight = 0
    peak = 0

    async def aopine_batch(self, items):
        SlowEcho.in_flight += 1
        SlowEcho.peak = max(SlowEcho.peak, SlowEcho.in_flight)
        await asyncio.sleep(random.random() * 0.01)
        SlowEcho.in_flight -= 1
        return [Opinion(str(it["id"]), self.specialist_id, self.specialty, self.backend, "m", "<answer>A</answer>", 0, True)
                for it in items]


def test_consult_panel_bounds_concurrency_and_keeps_item_order():
    items = make_items(50)
    panel = make_panel("Surgeon", 3, lambda s, i: SlowEcho(s, i))
    SlowEcho.peak = 0
    out = consult_panel(panel, items, max_concurrency=2, chunk_size=4)
    assert SlowEcho.peak == 2
    assert len(out) == 50 and all(len(row) == 3 for row in out)
    assert [row[0].item_id for row in out] == [it["id"] for it in items]
    assert [o.specialist_id for o in out[10]] == ["Surgeon#1", "Surgeon#2", "Surgeon#3"]


def test_sync_entry_points_work_inside_a_running_loop():
    items = make_items(5)
    sp = sim()

    async def notebook_cell():
        return sp.opine_batch(items), consult_panel([sp], items)

    ops, table = asyncio.run(notebook_cell())
    assert [o.to_record() for o in ops] == [row[0].to_record() for row in table]
    assert run_sync(sp.aopine_batch(items))[0].to_record() == ops[0].to_record()


def test_backend_returning_wrong_order_is_caught():
    class Reversed(SimulatedSpecialist):
        async def aopine_batch(self, items):
            return [self.opine(it) for it in reversed(items)]

    with pytest.raises(RuntimeError, match="where"):
        consult_panel([Reversed("Radiologist")], make_items(3))


def test_consult_routed_uses_each_items_panel():
    items = make_items(6)
    routes = ["Radiologist", "Dermatologist", "Radiologist", "Surgeon", "Dermatologist", "Radiologist"]
    factory = simulated_panel_factory(SimulatedPanelConfig(), seed=2)
    panels = {s: make_panel(s, 2, factory) for s in set(routes)}
    out = consult_routed(items, routes, panels)
    assert [row[0].specialty for row in out] == routes
    assert [row[1].item_id for row in out] == [it["id"] for it in items]
    direct = consult_panel(panels["Radiologist"], [items[2]])[0]
    assert [o.to_record() for o in out[2]] == [o.to_record() for o in direct]
    with pytest.raises(ValueError, match="specialty 'Nurse'"):
        consult_routed(items[:1], ["Nurse"], panels)
