"""The API key never reaches a run folder, the cache, the logs or the console.

A consultation runs against a loopback server with a recognisable fake key, with debug
logging of openai/httpx/mmed written into the run folder and failing calls included; then
every file under the run folder and the cache folder, and everything printed, is scanned.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fault_server import FaultServer  # noqa: E402

from mmed.agents.backends import make_specialist_factory  # noqa: E402
from mmed.agents.cache import CACHE_DIR_ENV  # noqa: E402
from mmed.agents.pipeline import PanelBank, run_consultation, summarize, write_predictions  # noqa: E402
from mmed.agents.triage import TriageDoctor  # noqa: E402
from mmed.config import OpenAIConfig, SpecialistsConfig  # noqa: E402
from mmed.data.schema import Item  # noqa: E402
from mmed.runs import Run, write_json_atomic  # noqa: E402

SECRET = "sk-test-SECRET-1234"
KEY_ENV = "MMED_TEST_SPECIALIST_KEY"


def rows(n: int) -> list[dict]:
    return [
        Item(
            id=f"sec/test/{i}", dataset="sec", split="test", images=[Image.new("RGB", (24, 24), (i, 2 * i, 3))],
            image_ref=f"{i}.png", question=f"Is item-{i} normal?", options=["yes", "no"], answer_idx=0,
            answer="yes", answer_type="closed", modality="CT", specialty="Radiologist",
        ).to_row()
        for i in range(n)
    ]


def test_key_is_used_but_never_written(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv(KEY_ENV, SECRET)
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    run = Run.open(tmp_path / "runs" / "secret-run", profile="smoke", seed=0)
    log_file = run.path("logs", mkdir=True) / "consult.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    loggers = [logging.getLogger(n) for n in ("", "openai", "httpx", "httpx2", "httpcore", "mmed")]
    old_levels = [lg.level for lg in loggers]
    logging.getLogger().addHandler(handler)
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    try:
        with FaultServer() as fs:
            oa = OpenAIConfig(model="fault-model", base_url=fs.url("mixed"), api_key_env=KEY_ENV, timeout_s=5.0,
                              max_retries=1, price_per_1k_prompt=1.0, price_per_1k_completion=2.0)
            cfg = SpecialistsConfig(backend="openai", panel_size=3, openai=oa)
            factory = make_specialist_factory(cfg, seed=0)
            bank = PanelBank(factory, 3)
            recs = run_consultation(rows(10), TriageDoctor(mode="gold"), bank, decision="majority_vote", progress=False)
            auth = {h.authorization for h in fs.hits}
        out = run.path("consult", "sec_test", mkdir=True)
        write_predictions(recs, out / "predictions.jsonl")
        metrics = summarize(recs, n_boot=50) | {"specialists": factory.stats()}
        write_json_atomic(out / "metrics.json", metrics)
        run.update(specialists=bank.describe(), specialists_config=dataclasses.asdict(cfg))
        print(repr(bank("Radiologist")), factory.params(), json.dumps(metrics, default=str))
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        for lg, lvl in zip(loggers, old_levels):
            lg.setLevel(lvl)

    # the key really was sent, and failures happened (error paths were logged too)
    assert auth == {f"Bearer {SECRET}"}
    stats = metrics["specialists"]
    assert stats["failures"] > 0 and stats["calls"] == 30 and stats["cost_usd"] > 0
    assert log_file.stat().st_size > 0

    written = [p for base in (run.root, tmp_path / "cache") for p in base.rglob("*") if p.is_file()]
    names = {p.name for p in written}
    assert {"manifest.json", "predictions.jsonl", "metrics.json", "consult.log", "opinions.jsonl"} <= names
    leaks = [str(p) for p in written if SECRET.encode() in p.read_bytes() or b"SECRET-1234" in p.read_bytes()]
    assert leaks == []
    printed = capfd.readouterr()
    assert SECRET not in printed.out and SECRET not in printed.err
    assert KEY_ENV in (run.root / "manifest.json").read_text()  # the variable's name is recorded, not its value


def test_missing_key_fails_before_any_call(monkeypatch, tmp_path):
    monkeypatch.delenv(KEY_ENV, raising=False)
    cfg = SpecialistsConfig(backend="openai", openai=OpenAIConfig(model="m", base_url="http://127.0.0.1:9/v1", api_key_env=KEY_ENV))
    factory = make_specialist_factory(cfg, seed=0, cache=False)
    with pytest.raises(ValueError, match=KEY_ENV):
        factory("Radiologist", 0)


def test_cli_consult_with_api_specialists_caches_counts_and_never_writes_the_key(tmp_path, monkeypatch, capfd):
    """``python -m mmed consult --specialists openai:<model>@<url>`` end to end, twice on one
    cache: the first pass calls the server for every opinion, the second makes no call; the
    summary prints the calls; the key is sent but written nowhere."""
    from mmed.cli import main
    from mmed.config import load_profile

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)  # the smoke profile's specialists.openai.api_key_env
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("MMED_DEBUG", raising=False)
    assert load_profile("smoke").specialists.openai.api_key_env == "OPENAI_API_KEY"
    n_items, k = 5, load_profile("smoke").specialists.panel_size
    run_dir = tmp_path / "runs" / "api"
    summaries = []
    with FaultServer() as fs:
        for name in ("first", "second"):
            argv = ["consult", "--profile", "smoke", "--run-dir", str(run_dir), "--specialists", f"openai:m@{fs.url('ok')}",
                    "--data", "synthetic", "--limit", str(n_items), "--triage", "gold", "--decision", "majority_vote",
                    "--out-name", name]
            assert main(argv) == 0
            printed = capfd.readouterr()
            summaries.append(json.loads(printed.out[printed.out.index("{"):]))
            assert SECRET not in printed.out and SECRET not in printed.err
            if name == "first":
                assert fs.count("ok") == n_items * k
        assert fs.count("ok") == n_items * k  # the second pass sent nothing
        assert {h.authorization for h in fs.hits} == {f"Bearer {SECRET}"}  # the key really was used

    first, second = (json.loads((run_dir / "consult" / n / "metrics.json").read_text())["specialist_calls"]
                     for n in ("first", "second"))
    assert first["backend"] == "openai"
    assert (first["opinions"], first["calls"], first["cache_hits"], first["failures"]) == (n_items * k, n_items * k, 0, 0)
    assert (second["opinions"], second["calls"], second["cache_hits"]) == (n_items * k, 0, n_items * k)
    assert first["prompt_tokens"] > 0 and second["prompt_tokens"] == 0
    # the command's summary prints the accounting
    for printed, saved in zip(summaries, (first, second)):
        assert {kk: printed["specialist_calls"][kk] for kk in ("calls", "cache_hits", "failures", "errors")} == \
               {kk: saved[kk] for kk in ("calls", "cache_hits", "failures", "errors")}

    written = [p for base in (run_dir, tmp_path / "cache") for p in base.rglob("*") if p.is_file()]
    assert {"manifest.json", "predictions.jsonl", "metrics.json", "opinions.jsonl"} <= {p.name for p in written}
    assert [str(p) for p in written if b"SECRET-1234" in p.read_bytes()] == []
    saved = json.loads((run_dir / "consult" / "first" / "metrics.json").read_text())
    assert saved["weights"]["specialists"]["openai"]["api_key_env"] == "OPENAI_API_KEY"  # the name, not the value
