"""A loopback OpenAI-compatible server that misbehaves on purpose.

``FaultServer`` runs a FastAPI app with uvicorn in a background thread on 127.0.0.1 and
an OS-chosen port. The behaviour is picked by the first path segment, so one server
serves every test: ``base_url = server.url(mode)`` → ``http://127.0.0.1:<port>/<mode>/v1``.

Modes (every error response carries ``retry-after-ms: 5`` so the openai client's retries
wait 5 ms instead of its exponential backoff):

- ``ok``          a valid chat completion whose answer is read from the question (below)
- ``429``         always HTTP 429
- ``500then``     HTTP 500 on the first attempt of each request, then ``ok``
- ``slow``        sleeps ``SLOW_S`` seconds, then ``ok``
- ``malformed``   HTTP 200, ``application/json``, a body that is not JSON
- ``notjson``     HTTP 200, ``text/plain`` body
- ``empty``       a completion with ``choices: []``
- ``mixed``       per item number n (``item-<n>`` in the question): n % 5 == 0 → 429,
                  n % 5 == 1 → 500 then ok, n % 5 == 2 → empty, else ok

The answer of ``ok`` is letter ``A`` when the item number is even, ``B`` when odd, so a
test can check that opinions come back in item order. Every request is recorded
(mode, item number, body hash, retry count header, authorization header) and the
largest number of requests in flight at once per mode, so tests count attempts server-side. Attempts of one logical request are recognised by the hash of
their body (a retry resends the same body; panel members differ by persona).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

SLOW_S = 1.5
MIXED_DELAY_S = 0.02
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
_ITEM = re.compile(r"item-(\d+)")
_RETRY_FAST = {"retry-after-ms": "5"}


@dataclass
class Hit:
    """One request as the server saw it."""

    mode: str
    item: int | None
    body_sha: str
    retry_count: str | None
    authorization: str | None
    body: dict[str, Any] = field(repr=False, default_factory=dict)


def _item_number(body: dict[str, Any]) -> int | None:
    for msg in body.get("messages", []):
        content = msg.get("content")
        texts = [content] if isinstance(content, str) else [p.get("text", "") for p in content or [] if p.get("type") == "text"]
        for t in texts:
            m = _ITEM.search(t or "")
            if m:
                return int(m.group(1))
    return None


def completion(content: str, model: str = "fault-model") -> dict[str, Any]:
    """A valid chat-completion body with ``content`` and fixed :data:`USAGE`."""
    return {
        "id": "cmpl-fault",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": dict(USAGE),
    }


def answer_for(n: int | None) -> str:
    """The ``ok`` answer text for item number ``n``."""
    letter = "A" if (n or 0) % 2 == 0 else "B"
    return f"<think>looked at item {n}</think><answer>{letter}</answer>"


class FaultServer:
    """The server (module docstring). Use as a context manager or call start()/stop()."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self._seen: Counter[str] = Counter()  # attempts per (mode, body hash)
        self.in_flight: Counter[str] = Counter()  # per mode (a slow handler outlives its test)
        self.max_in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.app = self._build_app()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off"))
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "FaultServer":
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fault server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> "FaultServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- queries --------------------------------------------------------------------------
    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}/v1"

    def reset(self) -> None:
        with self._lock:
            self.hits.clear()
            self._seen.clear()
            self.max_in_flight.clear()

    def count(self, mode: str | None = None) -> int:
        with self._lock:
            return sum(1 for h in self.hits if mode is None or h.mode == mode)

    def attempts_per_item(self, mode: str) -> Counter[int | None]:
        with self._lock:
            return Counter(h.item for h in self.hits if h.mode == mode)

    # -- the app --------------------------------------------------------------------------
    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{mode}/v1/chat/completions")
        async def chat(mode: str, request: Request) -> Response:
            with self._lock:
                self.in_flight[mode] += 1
                self.max_in_flight[mode] = max(self.max_in_flight[mode], self.in_flight[mode])
            try:
                return await respond(mode, request)
            finally:
                with self._lock:
                    self.in_flight[mode] -= 1

        async def respond(mode: str, request: Request) -> Response:
            body = await request.json()
            n = _item_number(body)
            key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
            with self._lock:
                self.hits.append(
                    Hit(mode, n, key, request.headers.get("x-stainless-retry-count"),
                        request.headers.get("authorization"), body)
                )
                self._seen[f"{mode}:{key}"] += 1
                attempt = self._seen[f"{mode}:{key}"]
            behaviour = mode
            if mode == "mixed":
                behaviour = {0: "429", 1: "500then", 2: "empty"}.get((n or 0) % 5, "ok")
                await asyncio.sleep(MIXED_DELAY_S)  # let requests overlap
            if behaviour == "429":
                return JSONResponse({"error": {"message": "rate limited", "type": "rate_limit"}}, 429, headers=_RETRY_FAST)
            if behaviour == "500then" and attempt == 1:
                return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, 500, headers=_RETRY_FAST)
            if behaviour == "slow":
                await asyncio.sleep(SLOW_S)
            if behaviour == "malformed":
                return Response(b'{"id": "x", "choices": [', media_type="application/json")
            if behaviour == "notjson":
                return Response(b"<html>gateway says hi</html>", media_type="text/plain")
            if behaviour == "empty":
                body_out = completion("")
                body_out["choices"] = []
                return JSONResponse(body_out)
            return JSONResponse(completion(answer_for(n), body.get("model", "fault-model")))

        return app
