"""OpenAICompatibleSpecialist against a loopback server that misbehaves on purpose, and the
``--specialists`` spec parser + panel factory.

Attempts are counted server-side (tests/fault_server.py); the openai client's retries are
the only retries, so a request is sent exactly ``max_retries + 1`` times when it keeps
failing with a retryable status or a timeout, and once for a body it cannot use.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fault_server import MIXED_DELAY_S, USAGE, FaultServer, answer_for  # noqa: E402

from mmed.agents.backends import (  # noqa: E402
    SpecialistFactory,
    apply_specialist_spec,
    make_specialist_factory,
    parse_specialist_spec,
)
from mmed.agents.cache import CachedSpecialist, SpecialistCache, SpecialistStats  # noqa: E402
from mmed.agents.openai_specialist import (  # noqa: E402
    MIN_IMAGE_BYTES,
    OpenAICompatibleSpecialist,
    check_base_url,
    check_timeout,
    encode_image,
    endpoint_semaphore,
    image_data_url,
    request_seed,
    to_openai_messages,
)
from mmed.agents.prompts import specialist_messages  # noqa: E402
from mmed.agents.specialists import SimulatedSpecialist, consult_panel, make_panel  # noqa: E402
from mmed.config import OpenAIConfig, SpecialistsConfig, load_profile  # noqa: E402


def make_item(n: int, n_images: int = 1, options=("yes", "no")) -> dict:
    return {
        "id": f"vqa/test/{n}",
        "question": f"Is there a lesion in item-{n}?",
        "options": list(options),
        "answer_idx": 0 if options else -1,
        "answer_type": "closed" if options else "open",
        "images": [Image.new("RGB", (32, 32), ((n * 37 + k * 11) % 256, 80, 160)) for k in range(n_images)],
        "specialty": "Radiologist",
        "modality": "CT",
    }


@pytest.fixture(scope="module")
def server():
    with FaultServer() as fs:
        yield fs


@pytest.fixture
def fs(server):
    server.reset()
    return server


def spec(fs: FaultServer, mode: str, panel_index: int = 0, **kw) -> OpenAICompatibleSpecialist:
    args = dict(model="fault-model", base_url=fs.url(mode), api_key_env="", timeout_s=5.0, max_retries=2)
    args.update(kw)
    return OpenAICompatibleSpecialist("Radiologist", panel_index, **args)


# ----------------------------------------------------------------------------------------
# faults: attempts counted server-side, failures become abstentions
# ----------------------------------------------------------------------------------------
def test_ok_parses_answers_and_records_usage(fs):
    items = [make_item(n) for n in range(4)]
    ops = spec(fs, "ok").opine_batch(items)
    assert [op.item_id for op in ops] == [it["id"] for it in items]
    assert [op.parsed for op in ops] == [0, 1, 0, 1]  # answer_for: A for even, B for odd
    assert all(op.valid and not op.abstained and op.error is None for op in ops)
    assert [op.raw for op in ops] == [answer_for(n) for n in range(4)]
    assert all(op.usage == {"prompt_tokens": USAGE["prompt_tokens"], "completion_tokens": USAGE["completion_tokens"]} for op in ops)
    assert fs.attempts_per_item("ok") == {0: 1, 1: 1, 2: 1, 3: 1}


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_always_429_gives_max_retries_plus_one_attempts_then_abstention(fs, max_retries):
    ops = spec(fs, "429", max_retries=max_retries).opine_batch([make_item(0), make_item(1)])
    assert fs.attempts_per_item("429") == {0: max_retries + 1, 1: max_retries + 1}
    assert [(op.abstained, op.valid, op.parsed, op.error, op.raw) for op in ops] == [(True, False, None, "RateLimitError", "")] * 2
    assert [op.usage for op in ops] == [{"prompt_tokens": 0, "completion_tokens": 0}] * 2


def test_500_then_success_is_retried_once(fs):
    ops = spec(fs, "500then", max_retries=2).opine_batch([make_item(2), make_item(3)])
    assert fs.attempts_per_item("500then") == {2: 2, 3: 2}
    assert [(op.parsed, op.error) for op in ops] == [(0, None), (1, None)]
    assert [h.retry_count for h in fs.hits].count("1") == 2  # the client's own retry counter


def test_500_with_no_retries_is_one_attempt_and_an_abstention(fs):
    (op,) = spec(fs, "500then", max_retries=0).opine_batch([make_item(2)])
    assert fs.attempts_per_item("500then") == {2: 1}
    assert (op.abstained, op.error) == (True, "InternalServerError")


def test_slow_server_times_out_on_every_attempt(fs):
    (op,) = spec(fs, "slow", timeout_s=0.3, max_retries=1).opine_batch([make_item(0)])
    assert fs.attempts_per_item("slow") == {0: 2}
    assert (op.abstained, op.valid, op.error) == (True, False, "APITimeoutError")
    assert 0.6 <= op.latency_s  # two attempts of >= 0.3 s each (a lower bound, not a speed claim)


@pytest.mark.parametrize(
    "mode, error, usage",
    [
        ("malformed", "JSONDecodeError", 0),
        ("notjson", "MalformedResponseError", 0),
        ("empty", "EmptyResponseError", 1),  # the server billed tokens; they are recorded
    ],
)
def test_unusable_bodies_are_not_retried(fs, mode, error, usage):
    (op,) = spec(fs, mode, max_retries=3).opine_batch([make_item(4)])
    assert fs.attempts_per_item(mode) == {4: 1}
    assert (op.abstained, op.valid, op.parsed, op.error) == (True, False, None, error)
    assert op.usage["prompt_tokens"] == USAGE["prompt_tokens"] * usage


def test_fifty_concurrent_requests_with_faults_return_fifty_results_in_order(fs):
    n = 50
    items = [make_item(i) for i in range(n)]
    stats = SpecialistStats()
    sp = CachedSpecialist(spec(fs, "mixed", max_retries=1, max_concurrency=8), cache=None, stats=stats)
    ops = sp.opine_batch(items)
    assert len(ops) == n
    assert [op.item_id for op in ops] == [it["id"] for it in items]
    attempts = fs.attempts_per_item("mixed")
    for i, op in enumerate(ops):
        kind = i % 5
        if kind == 0:  # always 429
            assert (op.error, attempts[i]) == ("RateLimitError", 2), i
        elif kind == 1:  # 500 then ok
            assert (op.error, op.parsed, attempts[i]) == (None, i % 2, 2), i
        elif kind == 2:  # empty choice list
            assert (op.error, attempts[i]) == ("EmptyResponseError", 1), i
        else:
            assert (op.error, op.parsed, attempts[i]) == (None, i % 2, 1), i
    assert fs.count("mixed") == sum(attempts.values()) == 10 * 2 + 10 * 2 + 10 + 20
    assert 2 <= fs.max_in_flight["mixed"] <= 8  # concurrent, and bounded by max_concurrency
    s = stats.to_dict()
    assert (s["opinions"], s["calls"], s["failures"], s["abstentions"]) == (50, 50, 20, 20)
    assert s["errors"] == {"EmptyResponseError": 10, "RateLimitError": 10}
    assert s["prompt_tokens"] == 40 * USAGE["prompt_tokens"]  # 30 answers + 10 empty bodies
    assert MIXED_DELAY_S > 0


def test_failures_are_retried_on_rerun_and_successes_come_from_the_cache(fs, tmp_path):
    items = [make_item(i) for i in range(10)]
    first = SpecialistStats()
    ops1 = CachedSpecialist(spec(fs, "mixed", max_retries=0), SpecialistCache(tmp_path), first).opine_batch(items)
    fs.reset()
    second = SpecialistStats()
    ops2 = CachedSpecialist(spec(fs, "mixed", max_retries=0), SpecialistCache(tmp_path), second).opine_batch(items)
    failed = [i for i in range(10) if i % 5 in (0, 1, 2)]  # with no retries, 500-then-ok fails too
    assert [i for i, op in enumerate(ops1) if op.error] == failed
    assert sorted(k for k in fs.attempts_per_item("mixed")) == failed  # only the failures are asked again
    assert (first.to_dict()["cache_writes"], second.to_dict()["cache_hits"], second.to_dict()["calls"]) == (4, 4, 6)
    assert [op.cached for op in ops2] == [i not in failed for i in range(10)]
    # failed again: the server's attempt counter was reset, and no error was cached
    assert [ops2[i].error for i in failed] == ["RateLimitError", "InternalServerError", "EmptyResponseError"] * 2


# ----------------------------------------------------------------------------------------
# what is sent
# ----------------------------------------------------------------------------------------
def test_request_body_holds_prompt_images_and_sampling(fs):
    sp = spec(fs, "ok", temperature=0.3, max_tokens=77, seed=5, panel_index=1)
    sp.opine_batch([make_item(6, n_images=2)])
    (hit,) = fs.hits
    body = hit.body
    assert body["model"] == "fault-model"
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.3, 77, request_seed(5, "Radiologist", 1))
    system, user = body["messages"]
    assert system["role"] == "system" and isinstance(system["content"], str)
    assert system["content"] == specialist_messages(make_item(6), "Radiologist", 1, "full")[0]["content"][0]["text"]
    kinds = [p["type"] for p in user["content"]]
    assert kinds == ["image_url", "image_url", "text"]
    url = user["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert img.size == (32, 32) and img.getpixel((0, 0)) == make_item(6, 2)["images"][0].getpixel((0, 0))
    assert "item-6" in user["content"][2]["text"] and "A. yes" in user["content"][2]["text"]
    assert hit.authorization == "Bearer no-key"  # api_key_env="" sends a placeholder


def test_open_items_keep_their_text_with_no_parsed_option(fs):
    (op,) = spec(fs, "ok").opine_batch([make_item(8, options=())])
    assert (op.raw, op.parsed, op.valid, op.abstained, op.error) == (answer_for(8), None, False, False, None)


def test_panel_members_send_different_prompts_and_seeds(fs):
    panel = make_panel("Radiologist", 3, lambda s, k: spec(fs, "ok", panel_index=k))
    out = consult_panel(panel, [make_item(0)])
    assert [op.specialist_id for op in out[0]] == ["Radiologist#1", "Radiologist#2", "Radiologist#3"]
    systems = {h.body["messages"][0]["content"] for h in fs.hits}
    seeds = {h.body["seed"] for h in fs.hits}
    assert len(systems) == 3 and len(seeds) == 3


def test_works_inside_a_running_event_loop(fs):
    """A Jupyter cell has a running loop: the sync entry point must still work."""

    async def cell():
        return spec(fs, "ok").opine_batch([make_item(1)])

    (op,) = asyncio.run(cell())
    assert (op.parsed, op.error) == (1, None)


def test_semaphore_is_shared_per_loop_and_endpoint():
    async def grab():
        a = endpoint_semaphore("http://x/v1", 4)
        b = endpoint_semaphore("http://x/v1", 4)
        c = endpoint_semaphore("http://y/v1", 4)
        return a, b, c

    a1, b1, c1 = asyncio.run(grab())
    a2, _, _ = asyncio.run(grab())
    assert a1 is b1 and a1 is not c1 and a1 is not a2
    with pytest.raises(RuntimeError):
        endpoint_semaphore("http://x/v1", 4)  # no running loop


# ----------------------------------------------------------------------------------------
# validation and secrets in the object
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [None, 0, -1.0, math.inf, math.nan, "60", True])
def test_timeout_must_be_finite_and_positive(bad):
    with pytest.raises(ValueError, match="timeout_s"):
        check_timeout(bad)
    with pytest.raises(ValueError, match="timeout_s"):
        OpenAICompatibleSpecialist("Radiologist", model="m", api_key_env="", timeout_s=bad)


def test_config_with_null_timeout_is_rejected():
    from mmed.config import ProfileError, profile_from_dict

    with pytest.raises(ProfileError, match="timeout_s"):
        profile_from_dict({"specialists": {"openai": {"timeout_s": None}}})


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_image_bytes": 100}, "max_image_bytes"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"prompt_style": "verbose"}, "prompt_style"),
        ({"price_per_1k_prompt": 0.01}, "both"),
        ({"price_per_1k_prompt": -1.0, "price_per_1k_completion": 1.0}, "price_per_1k_prompt"),
        ({"model": ""}, "model"),
        ({"base_url": "ftp://host/v1"}, "http"),
        ({"base_url": "http://user:sk-secret@host/v1"}, "credentials"),
    ],
)
def test_bad_arguments_raise_naming_them(kw, match):
    args = {"model": "m", "api_key_env": ""} | kw
    with pytest.raises(ValueError, match=match):
        OpenAICompatibleSpecialist("Radiologist", **args)


def test_missing_key_variable_is_named_in_the_error(monkeypatch):
    monkeypatch.delenv("MMED_TEST_ABSENT_KEY", raising=False)
    with pytest.raises(ValueError, match="MMED_TEST_ABSENT_KEY"):
        OpenAICompatibleSpecialist("Radiologist", model="m", api_key_env="MMED_TEST_ABSENT_KEY")


def test_key_never_in_repr_params_or_cache_fields(monkeypatch):
    monkeypatch.setenv("MMED_TEST_KEY", "sk-test-SECRET-1234")
    sp = OpenAICompatibleSpecialist("Radiologist", 2, model="m", base_url="http://127.0.0.1:1/v1", api_key_env="MMED_TEST_KEY")
    texts = [repr(sp), str(sp.params()), str(sp.cache_key_fields()), str(vars(sp))]
    assert all("SECRET" not in t for t in texts)
    assert sp.params()["api_key_env"] == "MMED_TEST_KEY"
    assert sp.cache_key_fields()["base_url"] == "http://127.0.0.1:1/v1"


def test_check_base_url():
    assert check_base_url(None) is None
    assert check_base_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"


def test_cost_needs_both_prices():
    sp = OpenAICompatibleSpecialist("Radiologist", model="m", api_key_env="", price_per_1k_prompt=2.5, price_per_1k_completion=10.0)
    assert sp.cost_usd({"prompt_tokens": 1000, "completion_tokens": 500}) == pytest.approx(2.5 + 5.0)
    assert OpenAICompatibleSpecialist("Radiologist", model="m", api_key_env="").cost_usd({"prompt_tokens": 9}) is None


# ----------------------------------------------------------------------------------------
# images and messages
# ----------------------------------------------------------------------------------------
def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_small_png_bytes_pass_through_unchanged():
    raw = _png_bytes(Image.new("RGB", (40, 30), (1, 2, 3)))
    assert encode_image({"bytes": raw, "path": None}, 10_000) == (raw, "image/png")
    assert encode_image(raw, 10_000) == (raw, "image/png")


def test_large_image_is_reencoded_and_downscaled_under_the_cap():
    import numpy as np

    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (600, 800, 3), dtype=np.uint8))
    data, mime = encode_image(noise, 20_000)
    assert mime == "image/jpeg" and len(data) <= 20_000
    out = Image.open(io.BytesIO(data))
    assert out.size[0] < 800 and abs(out.size[0] / out.size[1] - 800 / 600) < 0.02  # aspect kept
    assert encode_image(noise, 20_000) == (data, mime)  # deterministic


def test_rgba_and_greyscale_are_converted():
    data, mime = encode_image(Image.new("RGBA", (20, 20), (9, 9, 9, 128)), 50_000)
    assert mime == "image/png" and Image.open(io.BytesIO(data)).mode == "RGB"
    data, _ = encode_image(Image.new("L", (20, 20), 7), 50_000)
    assert Image.open(io.BytesIO(data)).mode == "L"


def test_image_cap_below_minimum_raises():
    with pytest.raises(ValueError, match="max_image_bytes"):
        encode_image(Image.new("RGB", (8, 8)), MIN_IMAGE_BYTES - 1)


def test_image_path_and_missing_path(tmp_path):
    p = tmp_path / "x.png"
    Image.new("RGB", (10, 10), (5, 6, 7)).save(p)
    assert image_data_url(str(p), 10_000).startswith("data:image/png;base64,")
    with pytest.raises(FileNotFoundError, match="nope.png"):
        image_data_url(str(tmp_path / "nope.png"), 10_000)


def test_to_openai_messages_checks_image_count():
    msgs = specialist_messages(make_item(0, n_images=2), "Radiologist", 0, "compact")
    with pytest.raises(ValueError, match="2 image placeholders"):
        to_openai_messages(msgs, [Image.new("RGB", (8, 8))], 10_000)
    out = to_openai_messages(msgs, make_item(0, n_images=2)["images"], 10_000)
    assert out[0] == {"role": "system", "content": msgs[0]["content"][0]["text"]}
    assert [p["type"] for p in out[1]["content"]] == ["image_url", "image_url", "text"]


# ----------------------------------------------------------------------------------------
# the --specialists spec and the panel factory (mmed.agents.backends)
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("simulated", {"backend": "simulated"}),
        ("openai:gpt-4o", {"backend": "openai", "openai": {"model": "gpt-4o", "base_url": None}}),
        ("openai:qwen2.5vl:7b@http://127.0.0.1:11434/v1",
         {"backend": "openai", "openai": {"model": "qwen2.5vl:7b", "base_url": "http://127.0.0.1:11434/v1"}}),
        ("openai:org/model@main@https://h.example:8443/v1/",
         {"backend": "openai", "openai": {"model": "org/model@main", "base_url": "https://h.example:8443/v1"}}),
        ("openai:/tmp/tiny model@http://127.0.0.1:8000/v1",
         {"backend": "openai", "openai": {"model": "/tmp/tiny model", "base_url": "http://127.0.0.1:8000/v1"}}),
        ("local:runs/x/models/base", {"backend": "local", "local_model": "runs/x/models/base"}),
    ],
)
def test_parse_specialist_spec(spec, expected):
    assert parse_specialist_spec(spec) == expected


@pytest.mark.parametrize(
    "spec, match",
    [
        ("", "empty"),
        ("gpt:4o", "unknown specialist backend"),
        ("openai:", "missing model"),
        ("simulated:x", "no argument"),
        ("openai:http://127.0.0.1:8000/v1", "looks like a URL"),
        ("openai:m@http://user:pw@127.0.0.1/v1", "credentials"),
        # a malformed part after '@' is named, not folded into the model name
        ("openai:gpt-4o@", "empty base URL"),
        ("openai:gpt-4o@ftp://h.example/v1", "http\\(s\\) URL"),
        ("openai:@http://127.0.0.1:8000/v1", "missing model before '@'"),
        ("openai:@", "missing model before '@'"),
    ],
)
def test_bad_specialist_spec_raises(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_specialist_spec(spec)


def test_spec_as_profile_override_keeps_other_settings():
    spec = "openai:qwen2.5vl:7b@http://127.0.0.1:11434/v1"
    prof = load_profile("paper", overrides={"specialists": parse_specialist_spec(spec)})
    assert (prof.specialists.backend, prof.specialists.openai.model) == ("openai", "qwen2.5vl:7b")
    assert prof.specialists.openai.max_image_bytes == 1_000_000  # the paper profile's value is kept
    cfg = apply_specialist_spec(load_profile("smoke").specialists, spec)
    assert (cfg.backend, cfg.panel_size, cfg.openai.base_url, cfg.openai.timeout_s) == ("openai", 3, "http://127.0.0.1:11434/v1", 60.0)


def test_factory_builds_cached_members_and_sums_stats(fs, tmp_path, monkeypatch):
    monkeypatch.setenv("MMED_TEST_KEY", "sk-test-SECRET-1234")
    oa = OpenAIConfig(model="fault-model", base_url=fs.url("ok"), api_key_env="MMED_TEST_KEY", max_retries=0,
                      price_per_1k_prompt=1.0, price_per_1k_completion=2.0)
    cfg = SpecialistsConfig(backend="openai", panel_size=2, openai=oa, cache_dir=str(tmp_path / "c"))
    f = make_specialist_factory(cfg, seed=3)
    panel = make_panel("Pathologist", 2, f)
    assert [type(sp.inner).__name__ for sp in panel] == ["OpenAICompatibleSpecialist"] * 2
    assert [sp.seed for sp in panel] == [3, 3] and panel[0].backend == "openai"
    consult_panel(panel, [make_item(0), make_item(1)])
    st = f.stats()
    assert (st["backend"], st["calls"], st["cache_writes"], st["prompt_tokens"], st["completion_tokens"]) == ("openai", 4, 4, 44, 28)
    assert st["cost_usd"] == pytest.approx((44 * 1.0 + 28 * 2.0) / 1000)
    assert st["cache_file"] == str(tmp_path / "c" / "opinions.jsonl") and st["cache_corrupt_lines"] == 0
    assert [p["specialist_id"] for p in f.params()] == ["Pathologist#1", "Pathologist#2"]


def test_factory_simulated_is_uncached_by_default_and_local_needs_a_builder(tmp_path):
    f = SpecialistFactory(SpecialistsConfig(cache_dir=str(tmp_path)), seed=0)
    sp = f("Radiologist", 1)
    assert isinstance(sp.inner, SimulatedSpecialist) and sp.cache is None
    sp.opine_batch([make_item(0)])
    assert f.stats()["calls"] == 1 and f.stats()["cache_file"] is None
    with pytest.raises(ValueError, match="local_builder"):
        make_specialist_factory(SpecialistsConfig(backend="local"), seed=0)
    built = make_specialist_factory(
        SpecialistsConfig(backend="local", cache_dir=str(tmp_path)), seed=0,
        local_builder=lambda s, k: SimulatedSpecialist(s, k),  # stands in for a local model specialist
    )("Surgeon", 0)
    assert built.cache is not None and built.specialist_id == "Surgeon#1"
