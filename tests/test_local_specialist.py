"""Local-model specialists (``--specialists local:<model>``) go through the same panel
factory as the API backend: cached and counted, on the smoke tiny model."""

from __future__ import annotations

import json

from mmed.agents.backends import parse_specialist_spec
from mmed.agents.cache import CACHE_DIR_ENV, CachedSpecialist
from mmed.agents.local_specialist import LocalModelSpecialist, weights_fingerprint
from mmed.config import load_profile
from mmed.consult import consult

N_ITEMS = 4


def test_local_panel_is_cached_and_counted_through_consult(tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "not-this-one"))  # the profile's cache_dir wins
    over = {"specialists": parse_specialist_spec("local:tiny") | {"cache_dir": str(cache_dir)}}
    prof = load_profile("smoke", overrides=over)
    k = prof.specialists.panel_size
    kw = dict(data="synthetic", split="test", limit=N_ITEMS, triage_mode="gold", decision="majority_vote", progress=False)

    recs, m = consult(prof, tmp_path / "run", out_name="first", **kw)
    ops = [op for r in recs for op in r["panel"]]
    assert len(recs) == N_ITEMS and len(ops) == N_ITEMS * k
    assert {op["backend"] for op in ops} == {"local"} and not any(op["cached"] for op in ops)
    assert all(isinstance(op["raw"], str) and op["error"] is None for op in ops)  # the tiny model really answered
    calls = m["specialist_calls"]
    assert calls["backend"] == "local"
    assert (calls["opinions"], calls["calls"], calls["cache_hits"], calls["cache_writes"]) == (N_ITEMS * k, N_ITEMS * k, 0, N_ITEMS * k)
    assert calls["cache_file"].startswith(str(cache_dir))
    assert json.loads((tmp_path / "run" / "consult" / "first" / "metrics.json").read_text())["specialist_calls"] == calls

    # the same consultation again: every opinion from the cache, the same text, no model call
    recs2, m2 = consult(prof, tmp_path / "run", out_name="second", **kw)
    calls2 = m2["specialist_calls"]
    assert (calls2["opinions"], calls2["calls"], calls2["cache_hits"]) == (N_ITEMS * k, 0, N_ITEMS * k)
    ops2 = [op for r in recs2 for op in r["panel"]]
    assert all(op["cached"] for op in ops2)
    assert [(op["specialist_id"], op["raw"]) for op in ops2] == [(op["specialist_id"], op["raw"]) for op in ops]
    # the manifest lists the local panel members, each keyed on the weights it ran with
    members = json.loads((tmp_path / "run" / "manifest.json").read_text())["specialists"]
    assert members and all(p["backend"] == "local" and len(p["weights"]) == 64 for p in members)


def test_weights_fingerprint_follows_the_files(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"\0" * 8)
    a = weights_fingerprint(str(d))
    assert a == weights_fingerprint(str(d)) and len(a) == 64
    (d / "model.safetensors").write_bytes(b"\1" * 9)  # retrained / rebuilt in place: a new key
    assert weights_fingerprint(str(d)) != a
    assert weights_fingerprint(str(d), str(tmp_path / "adapters")) != weights_fingerprint(str(d))
    # a Hub id (not a local folder) is its own identity
    assert weights_fingerprint("Qwen/Qwen2.5-VL-7B-Instruct") != weights_fingerprint("Qwen/Qwen2.5-VL-3B-Instruct")


def test_local_specialist_key_holds_the_weights():
    class _Runner:  # LocalModelSpecialist only reads runner.model.config for its name
        model = type("M", (), {"config": type("C", (), {"_name_or_path": "/m"})()})()

    a = LocalModelSpecialist(_Runner(), "Radiologist", 0, weights="a" * 64)
    b = LocalModelSpecialist(_Runner(), "Radiologist", 0, weights="b" * 64)
    assert a.cache_key_fields()["weights"] == "a" * 64
    assert CachedSpecialist(a).cache_key_fields() != CachedSpecialist(b).cache_key_fields()
