"""The specialist cache: keys, re-runs without calls, torn lines, concurrent writers, stats."""

from __future__ import annotations

import io
import json
import multiprocessing as mp
from collections.abc import Sequence
from typing import Any

import pytest
from PIL import Image

from mmed.agents.cache import (
    CACHE_DIR_ENV,
    CACHE_FILE,
    CachedSpecialist,
    SpecialistCache,
    SpecialistStats,
    cache_key,
    default_cache_dir,
    image_digest,
    resolve_cache_dir,
)
from mmed.agents.openai_specialist import OpenAICompatibleSpecialist
from mmed.agents.specialists import Opinion, SimulatedSpecialist, Specialist, consult_panel, make_panel


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path, monkeypatch):
    """Never touch the real user cache folder from tests."""
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "env-cache"))


def make_item(n: int, colour: tuple[int, int, int] | None = None, **kw: Any) -> dict:
    item = {
        "id": f"ds/test/{n}",
        "question": f"Is there a lesion in image {n}?",
        "options": ["yes", "no", "maybe not"],
        "answer_idx": n % 3,
        "answer_type": "closed",
        "images": [Image.new("RGB", (16, 16), colour or (n * 7 % 256, 10, 20))],
        "specialty": "Radiologist",
        "modality": "CT",
    }
    item.update(kw)
    return item


class CountingSpecialist(Specialist):
    """Answers option (n + panel_index) % 3; fails with ``FlakyError`` on items in ``fail_ids``."""

    backend = "counting"

    def __init__(self, specialty: str, panel_index: int = 0, fail_ids: Sequence[str] = (), seed: int = 0):
        super().__init__(specialty, panel_index, model="count-v1", seed=seed)
        self.calls: list[str] = []
        self.fail_ids = set(fail_ids)

    async def aopine_batch(self, items):
        out = []
        for it in items:
            self.calls.append(it["id"])
            fail = it["id"] in self.fail_ids
            idx = None if fail else (int(it["id"].rsplit("/", 1)[1]) + self.panel_index) % 3
            out.append(
                Opinion(
                    item_id=it["id"], specialist_id=self.specialist_id, specialty=self.specialty,
                    backend=self.backend, model=self.model, raw="" if fail else f"<answer>{'ABC'[idx]}</answer>",
                    parsed=idx, valid=not fail, abstained=fail, error="FlakyError" if fail else None,
                    usage={"prompt_tokens": 10, "completion_tokens": 2}, latency_s=0.01,
                )
            )
        return out

    def cost_usd(self, usage):
        return usage["prompt_tokens"] * 0.001


# ----------------------------------------------------------------------------------------
# keys
# ----------------------------------------------------------------------------------------
def test_panel_members_never_share_a_key():
    item = make_item(1)
    keys = {cache_key(CountingSpecialist("Radiologist", k), item)[0] for k in range(5)}
    assert len(keys) == 5
    sims = {cache_key(SimulatedSpecialist("Radiologist", k), item)[0] for k in range(3)}
    assert len(sims) == 3


def test_key_changes_with_everything_that_changes_the_opinion():
    base = OpenAICompatibleSpecialist("Radiologist", 0, model="m", api_key_env="")
    item = make_item(1)
    k0 = cache_key(base, item)[0]
    variants = [
        OpenAICompatibleSpecialist("Radiologist", 0, model="m2", api_key_env=""),
        OpenAICompatibleSpecialist("Radiologist", 0, model="m", api_key_env="", temperature=0.1),
        OpenAICompatibleSpecialist("Radiologist", 0, model="m", api_key_env="", seed=1),
        OpenAICompatibleSpecialist("Radiologist", 0, model="m", api_key_env="", persona=3),
        OpenAICompatibleSpecialist("Radiologist", 0, model="m", api_key_env="", prompt_style="compact"),
        OpenAICompatibleSpecialist("Radiologist", 0, model="m", api_key_env="", base_url="http://127.0.0.1:9/v1"),
        OpenAICompatibleSpecialist("Radiologist", 0, model="m", api_key_env="", max_tokens=9),
        OpenAICompatibleSpecialist("Pathologist", 0, model="m", api_key_env=""),
    ]
    keys = [cache_key(v, item)[0] for v in variants]
    keys += [cache_key(base, make_item(1, colour=(1, 2, 3)))[0], cache_key(base, make_item(1, question="Other?"))[0]]
    assert len(set(keys)) == len(keys) and k0 not in keys
    # not part of the key: timeout, retries, concurrency (they do not change the answer)
    same = OpenAICompatibleSpecialist("Radiologist", 0, model="m", api_key_env="", timeout_s=5, max_retries=0, max_concurrency=1)
    assert cache_key(same, item)[0] == k0
    # content-addressed: another id (another dataset layout) with the same content hits
    assert cache_key(base, make_item(1, id="other-layout/7"))[0] == k0


def test_simulated_key_includes_the_fields_its_answer_depends_on():
    sp = SimulatedSpecialist("Radiologist", 0)
    assert cache_key(sp, make_item(1))[0] != cache_key(sp, make_item(1, id="x/9"))[0]
    assert cache_key(sp, make_item(1))[0] != cache_key(sp, make_item(1, answer_idx=2))[0]


def test_image_digest_is_the_same_for_pil_bytes_and_path(tmp_path):
    img = Image.new("RGB", (9, 7), (4, 5, 6))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    (tmp_path / "a.png").write_bytes(buf.getvalue())
    d = image_digest(img)
    assert d == image_digest(buf.getvalue()) == image_digest({"bytes": buf.getvalue(), "path": None})
    assert d == image_digest(str(tmp_path / "a.png")) == image_digest({"bytes": None, "path": str(tmp_path / "a.png")})
    assert d != image_digest(Image.new("RGB", (9, 7), (4, 5, 7)))
    with pytest.raises(TypeError):
        image_digest(3)
    with pytest.raises(FileNotFoundError):
        image_digest(str(tmp_path / "missing.png"))


def test_key_fields_hold_no_unserialisable_or_secret_values(monkeypatch):
    monkeypatch.setenv("MMED_TEST_KEY", "sk-test-SECRET-1234")
    sp = OpenAICompatibleSpecialist("Radiologist", 0, model="m", api_key_env="MMED_TEST_KEY")
    key, fields = cache_key(sp, make_item(2))
    assert len(key) == 64 and "SECRET" not in json.dumps(fields)
    assert set(fields["item"]) == {"prompt_sha256", "image_sha256"}


# ----------------------------------------------------------------------------------------
# the wrapper: re-runs make no calls, failures are retried
# ----------------------------------------------------------------------------------------
def test_rerun_makes_no_calls_and_returns_the_same_opinions(tmp_path):
    items = [make_item(n) for n in range(6)]
    inner1 = [CountingSpecialist("Radiologist", k) for k in range(3)]
    stats1 = SpecialistStats()
    panel1 = make_panel("Radiologist", 3, lambda s, k: CachedSpecialist(inner1[k], SpecialistCache(tmp_path), stats1))
    first = consult_panel(panel1, items)
    assert [len(sp.calls) for sp in inner1] == [6, 6, 6]

    inner2 = [CountingSpecialist("Radiologist", k) for k in range(3)]
    stats2 = SpecialistStats()
    cache2 = SpecialistCache(tmp_path)  # a new process would open the file like this
    panel2 = make_panel("Radiologist", 3, lambda s, k: CachedSpecialist(inner2[k], cache2, stats2))
    second = consult_panel(panel2, items)
    assert [len(sp.calls) for sp in inner2] == [0, 0, 0]
    for row1, row2 in zip(first, second):
        assert [o.to_record() | {"cached": None} for o in row1] == [o.to_record() | {"cached": None} for o in row2]
        assert [o.cached for o in row2] == [True] * 3 and [o.cached for o in row1] == [False] * 3
        assert [o.parsed for o in row2] == [(int(row2[0].item_id.rsplit("/", 1)[1]) + k) % 3 for k in range(3)]
    s1, s2 = stats1.to_dict(), stats2.to_dict()
    assert (s1["calls"], s1["cache_hits"], s1["cache_writes"], s1["prompt_tokens"]) == (18, 0, 18, 180)
    assert s1["cost_usd"] == pytest.approx(18 * 0.01)
    assert (s2["calls"], s2["cache_hits"], s2["cache_writes"], s2["prompt_tokens"], s2["cost_usd"]) == (0, 18, 0, 0, None)
    assert len(cache2) == 18


def test_hit_carries_the_asking_items_id(tmp_path):
    cache = SpecialistCache(tmp_path)
    CachedSpecialist(CountingSpecialist("Radiologist"), cache).opine_batch([make_item(4)])
    inner = CountingSpecialist("Radiologist")
    (op,) = CachedSpecialist(inner, cache).opine_batch([make_item(4, id="other/4")])
    assert (op.item_id, op.cached, op.latency_s, inner.calls) == ("other/4", True, 0.0, [])


def test_failures_are_not_cached_and_are_retried(tmp_path):
    items = [make_item(n) for n in range(4)]
    stats = SpecialistStats()
    flaky = CountingSpecialist("Radiologist", fail_ids={"ds/test/1", "ds/test/3"})
    ops = CachedSpecialist(flaky, SpecialistCache(tmp_path), stats).opine_batch(items)
    assert [op.error for op in ops] == [None, "FlakyError", None, "FlakyError"]
    s = stats.to_dict()
    assert (s["failures"], s["abstentions"], s["errors"], s["cache_writes"], s["cost_usd"]) == (
        2, 2, {"FlakyError": 2}, 2, pytest.approx(0.02))
    healed = CountingSpecialist("Radiologist")
    ops2 = CachedSpecialist(healed, SpecialistCache(tmp_path)).opine_batch(items)
    assert healed.calls == ["ds/test/1", "ds/test/3"]  # only the failures are asked again
    assert [op.error for op in ops2] == [None] * 4 and [op.cached for op in ops2] == [True, False, True, False]


def test_wrapper_keeps_identity_and_params(tmp_path):
    inner = SimulatedSpecialist("Dermatologist", 2, seed=4)
    w = CachedSpecialist(inner, SpecialistCache(tmp_path))
    assert (w.specialist_id, w.backend, w.model, w.seed, w.persona) == ("Dermatologist#3", "simulated", "simulated", 4, 2)
    assert w.cache_key_fields() == inner.cache_key_fields()
    assert w.params()["cache"] == str(tmp_path / CACHE_FILE)
    with pytest.raises(TypeError):
        CachedSpecialist("not a specialist")  # type: ignore[arg-type]


def test_simulated_panel_through_the_cache_matches_uncached(tmp_path):
    items = [make_item(n) for n in range(8)]
    plain = consult_panel(make_panel("Radiologist", 3, lambda s, k: SimulatedSpecialist(s, k, seed=1)), items)
    cache = SpecialistCache(tmp_path)
    for _ in range(2):
        cached = consult_panel(
            make_panel("Radiologist", 3, lambda s, k: CachedSpecialist(SimulatedSpecialist(s, k, seed=1), cache)), items
        )
        assert [[o.parsed for o in row] for row in cached] == [[o.parsed for o in row] for row in plain]
    assert len(cache) == 24


# ----------------------------------------------------------------------------------------
# the file: torn lines, concurrent writers, location
# ----------------------------------------------------------------------------------------
def _opinion(i: int, raw_len: int = 40) -> Opinion:
    return Opinion(
        item_id=f"i{i}", specialist_id="Radiologist#1", specialty="Radiologist", backend="x", model="m",
        raw="x" * raw_len, parsed=None, valid=False,
    )


def test_torn_last_line_is_ignored_and_never_swallows_the_next_record(tmp_path):
    c = SpecialistCache(tmp_path)
    c.put("k1", _opinion(1))
    c.put("k2", _opinion(2))
    with open(c.path, "ab") as f:  # a process killed mid-write
        f.write(b'{"key": "k3", "opinion": {"item_id": "i3", "spec')
    reader = SpecialistCache(tmp_path)
    assert len(reader) == 2 and reader.get("k3") is None and reader.get("k1").item_id == "i1"
    writer = SpecialistCache(tmp_path)
    assert writer.put("k4", _opinion(4))
    after = SpecialistCache(tmp_path)
    assert {k: after.get(k) is not None for k in ("k1", "k2", "k3", "k4")} == {"k1": True, "k2": True, "k3": False, "k4": True}
    assert after.corrupt_lines == 1
    assert c.path.read_bytes().count(b"\n") == 4  # the torn line was terminated, not merged


def test_errors_are_not_written_and_duplicates_are_skipped(tmp_path):
    c = SpecialistCache(tmp_path)
    failed = _opinion(1)
    failed.abstained, failed.error = True, "APITimeoutError"
    assert c.put("k1", failed) is False and not c.path.exists()
    assert c.put("k2", _opinion(2)) is True and c.put("k2", _opinion(3)) is False
    assert len(c) == 1 and c.get("k2").item_id == "i2"


def test_other_processes_lines_are_seen_on_the_next_lookup(tmp_path):
    a, b = SpecialistCache(tmp_path), SpecialistCache(tmp_path)
    assert b.get("k") is None
    a.put("k", _opinion(7))
    assert b.get("k").item_id == "i7"


def _writer(cache_dir: str, worker: int, n: int, start) -> None:  # runs in a child process
    start.wait()
    c = SpecialistCache(cache_dir)
    for i in range(n):
        c.put(f"w{worker}-{i}", _opinion(worker * 100_000 + i, raw_len=9000))  # lines > PIPE_BUF


def test_concurrent_writers_lose_nothing(tmp_path):
    ctx = mp.get_context("fork")
    start = ctx.Event()
    n_workers, n = 4, 150
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, n, start)) for w in range(n_workers)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    c = SpecialistCache(tmp_path)
    assert len(c) == n_workers * n and c.corrupt_lines == 0
    lines = c.path.read_bytes().splitlines()
    assert len(lines) == n_workers * n and all(json.loads(line)["opinion"]["raw"] == "x" * 9000 for line in lines)


def test_cache_location_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "from-env"))
    assert default_cache_dir() == tmp_path / "from-env"
    assert resolve_cache_dir(None) == tmp_path / "from-env"
    assert resolve_cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv(CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "mmed" / "specialists"
    with pytest.raises(ValueError, match="empty"):
        resolve_cache_dir("")


def test_stats_count_cached_invalid_and_abstained():
    s = SpecialistStats()
    s.record(_opinion(1), cached=True)
    s.record(_opinion(2), cached=False, cost_usd=0.5, written=True)
    ab = _opinion(3)
    ab.abstained = True
    s.record(ab, cached=False)
    d = s.to_dict()
    assert (d["opinions"], d["calls"], d["cache_hits"], d["cache_writes"], d["invalid"], d["abstentions"]) == (3, 2, 1, 1, 2, 1)
    assert (d["failures"], d["errors"], d["cost_usd"]) == (0, {}, 0.5)
