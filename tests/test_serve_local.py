"""A real OpenAI-compatible server on loopback: ``transformers serve`` with the tiny model.

The tiny Qwen2.5-VL is random, so its answers are gibberish (invalid); what is checked is
the plumbing: image + text requests through the consultation pipeline, usage recorded,
opinions in order, and a re-run served from the cache with no request reaching the server
(counted in the server's own access log).
"""

from __future__ import annotations

import dataclasses

import pytest
from PIL import Image

from mmed.agents.backends import apply_specialist_spec, make_specialist_factory
from mmed.agents.cache import CACHE_DIR_ENV, SpecialistCache
from mmed.agents.pipeline import PanelBank, run_consultation
from mmed.agents.serve_local import LocalServer, build_tiny_model_for_serving, free_port
from mmed.agents.triage import TriageDoctor
from mmed.config import SpecialistsConfig
from mmed.data.schema import Item

pytestmark = pytest.mark.slow  # ~15-25 s on 2 cores: model build, server start, 15 generations

MAX_TOKENS = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    model = build_tiny_model_for_serving(root / "tiny", profile="smoke")
    with LocalServer(str(model), log_path=root / "serve.log") as srv:
        yield srv


def rows(n: int) -> list[dict]:
    specialties = ["Radiologist", "Pathologist"]
    out = []
    for i in range(n):
        item = Item(
            id=f"loop/test/{i}", dataset="loop", split="test",
            images=[Image.new("RGB", (64, 64), ((40 * i) % 256, 90, 200 - 10 * i))], image_ref=f"img{i}.png",
            question=f"Is there an abnormality in image {i}?", options=["yes", "no"], answer_idx=i % 2,
            answer=["yes", "no"][i % 2], answer_type="closed", modality="CT", specialty=specialties[i % 2],
        ).validate()
        out.append(item.to_row())
    return out


def cfg_for(srv: LocalServer, cache_dir) -> SpecialistsConfig:
    cfg = apply_specialist_spec(SpecialistsConfig(panel_size=3, cache_dir=str(cache_dir)), f"openai:{srv.model}@{srv.base_url}")
    oa = dataclasses.replace(cfg.openai, api_key_env="", max_tokens=MAX_TOKENS, temperature=0.0, timeout_s=120.0, max_retries=1)
    return dataclasses.replace(cfg, openai=oa)


def test_panel_end_to_end_then_cached_rerun_without_requests(server, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "not-used"))
    items = rows(4)
    cfg = cfg_for(server, tmp_path / "cache")

    before = server.request_count()
    f1 = make_specialist_factory(cfg, seed=0)
    rec1 = run_consultation(items, TriageDoctor(mode="gold"), PanelBank(f1, 3), decision="majority_vote", progress=False)
    assert server.request_count() - before == 4 * 3

    assert [r["id"] for r in rec1] == [it["id"] for it in items]
    for r, it in zip(rec1, items):
        assert [p["specialist_id"] for p in r["panel"]] == [f"{it['specialty']}#{k}" for k in (1, 2, 3)]
        for p in r["panel"]:
            assert (p["backend"], p["model"], p["error"], p["abstained"], p["cached"]) == ("openai", server.model, None, False, False)
            assert isinstance(p["raw"], str)
            assert p["usage"]["prompt_tokens"] > 20 and 1 <= p["usage"]["completion_tokens"] <= MAX_TOKENS
    s1 = f1.stats()
    assert (s1["calls"], s1["cache_hits"], s1["cache_writes"], s1["failures"], s1["errors"]) == (12, 0, 12, 0, {})
    assert s1["prompt_tokens"] == sum(p["usage"]["prompt_tokens"] for r in rec1 for p in r["panel"])
    assert s1["cache_file"] == str(tmp_path / "cache" / "opinions.jsonl")

    # a re-run (a new factory and a new cache object, as in another process): no request
    before = server.request_count()
    f2 = make_specialist_factory(cfg, seed=0)
    rec2 = run_consultation(items, TriageDoctor(mode="gold"), PanelBank(f2, 3), decision="majority_vote", progress=False)
    assert server.request_count() == before
    s2 = f2.stats()
    assert (s2["calls"], s2["cache_hits"], s2["prompt_tokens"]) == (0, 12, 0)
    for r1, r2 in zip(rec1, rec2):
        assert [p["raw"] for p in r2["panel"]] == [p["raw"] for p in r1["panel"]]
        assert all(p["cached"] for p in r2["panel"])

    # another seed is another consultation: asked again
    f3 = make_specialist_factory(cfg, seed=1, cache=SpecialistCache(tmp_path / "cache"))
    run_consultation(items[:1], TriageDoctor(mode="gold"), PanelBank(f3, 3), decision="none", progress=False)
    assert f3.stats()["calls"] == 3 and server.request_count() == before + 3


def test_server_reports_itself_and_fails_clearly_on_a_missing_model(server, tmp_path):
    assert server.healthy() and server.base_url.startswith("http://127.0.0.1:")
    assert "running" in repr(server)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LocalServer(str(tmp_path / "no-such-model"), port=free_port()).start()


def test_a_server_launched_early_is_waited_for_checked_and_stopped(tmp_path):
    # notebook 02 launches the server before its consultations (its start overlaps them) and
    # checks the cached panel path afterwards (mmed.consult.consultation_step)
    from mmed.agents.serve_local import cached_panel_check, panel_check_server
    from mmed.config import load_profile
    from mmed.runs import Run

    prof = load_profile("smoke")
    run = Run.open(tmp_path / "run", profile="smoke", seed=0)
    srv = panel_check_server(run)
    assert srv.process is None and srv.log_path == run.path("consult", "serve.log")
    with pytest.raises(RuntimeError, match="was not launched"):
        srv.wait_healthy()
    assert srv.launch() is srv and srv.process is not None and srv.process.poll() is None
    first = srv.process
    with pytest.raises(RuntimeError, match="already running"):
        srv.launch()  # a second process would be left behind
    assert srv.process is first
    out = cached_panel_check(run, prof, 0, log=None, server=srv)
    calls = 2 * prof.specialists.panel_size  # 2 items, one opinion per panel member
    assert out["passes"]["first pass"]["calls"] == calls and out["passes"]["first pass"]["cache_hits"] == 0
    assert out["passes"]["re-run"]["calls"] == 0 and out["passes"]["re-run"]["cache_hits"] == calls
    assert out["server_requests"] == calls
    assert srv.process is None  # stopped by the check
