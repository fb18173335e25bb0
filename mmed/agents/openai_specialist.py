"""Specialists behind any OpenAI-compatible chat API (GPT-4o, vLLM, llama.cpp, Ollama,
``transformers serve``): the ``paper`` profile's panel (docs/architecture.md#profiles),
called async and cached (docs/architecture.md#async, docs/architecture.md#specialist-cache)
through the ``openai`` client (docs/architecture.md#libraries).

In MMedAgent-RL (arXiv 2506.00555 §3) the specialists are GPT-class models behind an API.
:class:`OpenAICompatibleSpecialist` asks one such model, as one member of a panel:

- **prompt**: :func:`mmed.agents.prompts.specialist_messages` (style ``"full"`` by
  default), converted by :func:`to_openai_messages` to the chat-completions format: the
  system turn as a string, the user turn as content parts with every image placeholder
  replaced by an ``image_url`` part holding a base64 ``data:`` URL
  (:func:`image_data_url`: PNG/JPEG bytes passed through when small enough, else
  re-encoded and downscaled to stay under ``max_image_bytes``);
- **transport**: ``openai.AsyncOpenAI(base_url, api_key, timeout, max_retries)`` — the
  client's own retries (HTTP 408/409/429/5xx, connection errors and timeouts, with its
  exponential backoff and ``Retry-After`` handling) and nothing around them, so a request
  is sent at most ``max_retries + 1`` times. The timeout is always finite (``None`` is
  rejected): it bounds each phase (connect, read, write, pool) of each attempt;
- **concurrency**: requests of every specialist that talks to the same endpoint share one
  :class:`asyncio.Semaphore` of ``max_concurrency`` per event loop
  (:func:`endpoint_semaphore`); a client is created per :meth:`aopine_batch` call, so
  nothing loop-bound outlives its loop (:func:`mmed.agents.specialists.run_sync` may run
  each call in a fresh loop);
- **failures**: a call that still fails (or returns no choice, or a body that is not a
  chat completion) becomes an abstention whose ``error`` is the exception's class name
  (e.g. ``"RateLimitError"``, ``"APITimeoutError"``, ``"EmptyResponseError"``); the
  run goes on, and :class:`mmed.agents.cache.SpecialistStats` counts them;
- **answers**: :func:`mmed.agents.parsing.parse_choice` on the returned text (closed
  items); open items keep their text with ``parsed=None``;
- **usage and cost**: ``usage.prompt_tokens``/``completion_tokens`` of the response go
  into the opinion; :meth:`cost_usd` prices them when both prices are configured.

The API key is read from the environment variable named by ``api_key_env`` at call time
and never stored on the object, so it cannot reach ``repr()``, :meth:`params`, the cache
or a run folder. ``api_key_env=""`` means the endpoint needs no key (most local servers).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

import openai
from openai.types.chat import ChatCompletion

from ..data.schema import item_field as _get
from .cache import open_image
from .parsing import parse_choice
from .prompts import PROMPT_STYLES, specialist_messages
from .specialists import Opinion, Specialist

log = logging.getLogger(__name__)

#: Sent as the API key when ``api_key_env`` is empty (the client requires some value).
NO_KEY_PLACEHOLDER = "no-key"
#: Smallest accepted ``max_image_bytes`` (a tiny JPEG still has a ~600-byte header).
MIN_IMAGE_BYTES = 2048
#: JPEG qualities tried, in order, before an image is downscaled.
JPEG_QUALITIES: tuple[int, ...] = (90, 80, 70, 60, 50)
#: Factor applied to both sides per downscaling step.
DOWNSCALE_STEP = 0.75


class ResponseError(RuntimeError):
    """The endpoint answered, but not with a usable chat completion."""


class EmptyResponseError(ResponseError):
    """The completion has no choice, or its first choice has no text content."""


class MalformedResponseError(ResponseError):
    """The body is not a chat completion (e.g. not JSON, or a wrong content type)."""


#: Errors that turn a call into an abstention; anything else is a programming error.
CALL_ERRORS: tuple[type[BaseException], ...] = (openai.OpenAIError, ResponseError, json.JSONDecodeError)


# ----------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------
def check_timeout(timeout_s: Any) -> float:
    """``timeout_s`` as a float after checking it is finite and > 0.

    Raises:
        ValueError: None (a missing timeout never means "wait forever"), a non-number,
            zero, negative, NaN or infinite.
    """
    if timeout_s is None:
        raise ValueError("timeout_s is None: a finite timeout in seconds is required (None would wait forever)")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)):
        raise ValueError(f"timeout_s must be a number of seconds, got {timeout_s!r}")
    if not math.isfinite(timeout_s) or timeout_s <= 0:
        raise ValueError(f"timeout_s must be finite and > 0 seconds, got {timeout_s!r}")
    return float(timeout_s)


def check_base_url(base_url: str | None) -> str | None:
    """Validate an endpoint URL (None = the client's default, ``api.openai.com``).

    Returns the URL without a trailing slash.

    Raises:
        ValueError: a scheme other than http/https, no host, or credentials in the URL
            (``user:pass@host`` — put the key in the environment variable instead, so it
            never reaches a manifest).
    """
    if base_url is None:
        return None
    parts = urlsplit(str(base_url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("base_url must not contain credentials; set the API key in the environment variable")
    return str(base_url).rstrip("/")


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_price(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (USD per 1000 tokens) or None, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------------------
# images
# ----------------------------------------------------------------------------------------
_PASS_THROUGH = {"PNG": "image/png", "JPEG": "image/jpeg"}


def _source_bytes(image: Any) -> bytes | None:
    """The encoded file bytes an item holds for ``image``, when it holds any."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if isinstance(image, Mapping) and image.get("bytes") is not None:
        return bytes(image["bytes"])
    path = image.get("path") if isinstance(image, Mapping) else image
    if isinstance(path, (str, os.PathLike)) and os.path.exists(path):
        with open(path, "rb") as f:
            return f.read()
    return None


def encode_image(image: Any, max_bytes: int) -> tuple[bytes, str]:
    """Encode one item image for the API: ``(file bytes, MIME type)`` with
    ``len(bytes) <= max_bytes``.

    Rules, in order (deterministic: the same image and cap give the same bytes):
    1. PNG or JPEG file bytes the item already holds, when within the cap, are sent as is.
    2. Otherwise the decoded image (converted to RGB, or L for greyscale) is encoded as PNG.
    3. If that is too large: JPEG at qualities :data:`JPEG_QUALITIES`; then the image is
       downscaled by :data:`DOWNSCALE_STEP` per side (Lanczos) and re-encoded as JPEG
       (quality 85) until it fits.

    Args:
        image: anything :func:`mmed.agents.cache.open_image` reads.
        max_bytes: the cap on the encoded file (before base64, which adds a third), >=
            :data:`MIN_IMAGE_BYTES`.
    Raises:
        ValueError: ``max_bytes`` below :data:`MIN_IMAGE_BYTES`, or an image that does not
            fit even at 16 px on its short side.
        plus the errors of :func:`mmed.agents.cache.open_image`.
    """
    from PIL import Image

    _check_int("max_image_bytes", max_bytes, MIN_IMAGE_BYTES)
    raw = _source_bytes(image)
    im = open_image(image)
    if raw is not None and len(raw) <= max_bytes and im.format in _PASS_THROUGH:
        return raw, _PASS_THROUGH[im.format]
    im = im.convert("L" if im.mode in ("1", "L", "I;16", "I", "F") else "RGB")

    def save(img: Any, fmt: str, **kw: Any) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        return buf.getvalue()

    data = save(im, "PNG", optimize=True)
    if len(data) <= max_bytes:
        return data, "image/png"
    for q in JPEG_QUALITIES:
        data = save(im, "JPEG", quality=q)
        if len(data) <= max_bytes:
            return data, "image/jpeg"
    while min(im.size) * DOWNSCALE_STEP >= 16:
        im = im.resize((max(1, round(im.size[0] * DOWNSCALE_STEP)), max(1, round(im.size[1] * DOWNSCALE_STEP))), Image.LANCZOS)
        data = save(im, "JPEG", quality=85)
        if len(data) <= max_bytes:
            return data, "image/jpeg"
    raise ValueError(f"image does not fit in max_image_bytes={max_bytes} even downscaled to {im.size}")


def image_data_url(image: Any, max_bytes: int) -> str:
    """``data:<mime>;base64,<...>`` of :func:`encode_image` (same arguments and errors)."""
    data, mime = encode_image(image, max_bytes)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def to_openai_messages(messages: Sequence[Mapping[str, Any]], images: Sequence[Any], max_image_bytes: int) -> list[dict[str, Any]]:
    """Chat messages of :mod:`mmed.agents.prompts` → the chat-completions format.

    A system turn becomes a plain string (what every OpenAI-compatible server accepts);
    other turns become content parts: ``{"type": "text", "text"}`` and, for each
    ``{"type": "image"}`` placeholder, ``{"type": "image_url", "image_url": {"url":
    data URL}}`` with the next image of ``images`` (in order).

    Raises:
        ValueError: the number of placeholders differs from ``len(images)``, or a content
            part of another type; errors of :func:`image_data_url`.
    """
    out: list[dict[str, Any]] = []
    n_placeholders = sum(
        1 for m in messages if not isinstance(m.get("content"), str) for p in m.get("content") or [] if p.get("type") == "image"
    )
    if n_placeholders != len(images):
        raise ValueError(f"{n_placeholders} image placeholders in the prompt for {len(images)} images")
    it = iter(images)
    for i, msg in enumerate(messages):
        content = msg.get("content") or ""
        if isinstance(content, str):
            out.append({"role": msg["role"], "content": content})
            continue
        parts: list[dict[str, Any]] = []
        for part in content:
            kind = part.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": part.get("text", "")})
            elif kind == "image":
                parts.append({"type": "image_url", "image_url": {"url": image_data_url(next(it), max_image_bytes)}})
            else:
                raise ValueError(f"message {i}: content part of unknown type {kind!r}")
        if msg["role"] == "system" and all(p["type"] == "text" for p in parts):
            out.append({"role": "system", "content": "\n".join(p["text"] for p in parts)})
        else:
            out.append({"role": msg["role"], "content": parts})
    return out


# ----------------------------------------------------------------------------------------
# concurrency: one semaphore per (event loop, endpoint)
# ----------------------------------------------------------------------------------------
_SEMAPHORES: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int], asyncio.Semaphore]]" = (
    weakref.WeakKeyDictionary()
)
_SEMAPHORES_LOCK = threading.Lock()


def endpoint_semaphore(endpoint: str, limit: int) -> asyncio.Semaphore:
    """The semaphore bounding requests to ``endpoint`` in the running event loop.

    Every specialist of every panel that calls the same endpoint with the same ``limit``
    shares it, so at most ``limit`` requests to that endpoint are in flight per loop. A
    new loop (e.g. :func:`mmed.agents.specialists.run_sync` in a Jupyter cell) gets a
    new semaphore; a loop's semaphores are forgotten when the loop is garbage-collected.

    Raises:
        RuntimeError: no running event loop.
    """
    loop = asyncio.get_running_loop()
    with _SEMAPHORES_LOCK:
        per_loop = _SEMAPHORES.setdefault(loop, {})
        sem = per_loop.get((endpoint, limit))
        if sem is None:
            sem = per_loop[(endpoint, limit)] = asyncio.Semaphore(limit)
    return sem


# ----------------------------------------------------------------------------------------
# the specialist
# ----------------------------------------------------------------------------------------


def request_seed(seed: int, specialty: str, panel_index: int) -> int:
    """The ``seed`` sent with each request: a stable 31-bit hash (BLAKE2b) of the run
    seed, the specialty and the panel index, so panel members sample differently even
    when their personas coincide, and a re-run samples the same."""
    h = hashlib.blake2b(f"{seed}\x1f{specialty}\x1f{panel_index}".encode(), digest_size=4).digest()
    return int.from_bytes(h, "big") & 0x7FFFFFFF


class OpenAICompatibleSpecialist(Specialist):
    """One specialist served by an OpenAI-compatible chat-completions endpoint.

    Args:
        specialty: one of :data:`mmed.data.SPECIALTIES`.
        panel_index: 0-based position in the panel (persona defaults to it).
        model: the model name the endpoint knows (``"gpt-4o"``, a vLLM/Ollama model name,
            or the folder path ``transformers serve`` was started with).
        base_url: the endpoint, e.g. ``"http://127.0.0.1:8000/v1"``; None = OpenAI.
        api_key_env: environment variable holding the key, read at each call; ``""`` for
            endpoints that need none.
        timeout_s: seconds, finite and > 0: the limit on each phase of each attempt.
        max_retries: retries of the openai client (attempts = ``max_retries + 1``), >= 0.
        max_concurrency: requests in flight to this endpoint per event loop, >= 1.
        max_image_bytes: cap on each encoded image (before base64), >=
            :data:`MIN_IMAGE_BYTES`.
        temperature: sampling temperature (>= 0).
        max_tokens: completion token cap (>= 1).
        prompt_style: ``"full"`` (default) or ``"compact"``.
        price_per_1k_prompt, price_per_1k_completion: USD per 1000 tokens; both or neither.
        persona: persona index (default: ``panel_index``).
        seed: the run's seed (request seed: :func:`request_seed`).

    Raises:
        ValueError: any invalid argument (named), or ``api_key_env`` naming a variable
            that is not set (the message names the variable, never a value).
    """

    backend: ClassVar[str] = "openai"

    def __init__(
        self,
        specialty: str,
        panel_index: int = 0,
        *,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
        max_retries: int = 3,
        max_concurrency: int = 8,
        max_image_bytes: int = 512_000,
        temperature: float = 0.7,
        max_tokens: int = 512,
        prompt_style: str = "full",
        price_per_1k_prompt: float | None = None,
        price_per_1k_completion: float | None = None,
        persona: int | None = None,
        seed: int = 0,
    ):
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        super().__init__(specialty, panel_index=panel_index, persona=persona, model=model, seed=seed)
        self.base_url = check_base_url(base_url)
        if not isinstance(api_key_env, str):
            raise ValueError(f"api_key_env must be the name of an environment variable (or ''), got {api_key_env!r}")
        self.api_key_env = api_key_env
        if api_key_env and not os.environ.get(api_key_env):
            raise ValueError(
                f"environment variable {api_key_env!r} (specialists.openai.api_key_env) is not set; "
                "set it to your API key, or set api_key_env to '' for an endpoint that needs no key"
            )
        self.timeout_s = check_timeout(timeout_s)
        self.max_retries = _check_int("max_retries", max_retries, 0)
        self.max_concurrency = _check_int("max_concurrency", max_concurrency, 1)
        self.max_image_bytes = _check_int("max_image_bytes", max_image_bytes, MIN_IMAGE_BYTES)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature < math.inf:
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        self.temperature = float(temperature)
        self.max_tokens = _check_int("max_tokens", max_tokens, 1)
        if prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt_style {prompt_style!r} is not one of {PROMPT_STYLES}")
        self.prompt_style = prompt_style
        self.price_per_1k_prompt = _check_price("price_per_1k_prompt", price_per_1k_prompt)
        self.price_per_1k_completion = _check_price("price_per_1k_completion", price_per_1k_completion)
        if (self.price_per_1k_prompt is None) != (self.price_per_1k_completion is None):
            raise ValueError("set both price_per_1k_prompt and price_per_1k_completion, or neither")

    @classmethod
    def from_config(cls, cfg: Any, specialty: str, panel_index: int = 0, seed: int = 0) -> "OpenAICompatibleSpecialist":
        """Build from a :class:`mmed.config.OpenAIConfig` (``profile.specialists.openai``)."""
        return cls(
            specialty,
            panel_index,
            model=cfg.model,
            base_url=cfg.base_url,
            api_key_env=cfg.api_key_env,
            timeout_s=cfg.timeout_s,
            max_retries=cfg.max_retries,
            max_concurrency=cfg.max_concurrency,
            max_image_bytes=cfg.max_image_bytes,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            prompt_style=getattr(cfg, "prompt_style", "full"),
            price_per_1k_prompt=cfg.price_per_1k_prompt,
            price_per_1k_completion=cfg.price_per_1k_completion,
            seed=seed,
        )

    # -- identity -----------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """The endpoint URL, or ``"default"`` for the client's default (OpenAI)."""
        return self.base_url or "default"

    def sampling_params(self) -> dict[str, Any]:
        """``{"temperature", "max_tokens", "request_seed"}``: what changes the answer."""
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "request_seed": request_seed(self.seed, self.specialty, self.panel_index),
        }

    def cache_key_fields(self) -> dict[str, Any]:
        """The base fields plus ``base_url``, ``prompt_style`` and ``max_image_bytes`` (the
        endpoint and what is sent to it). Never the key or its value."""
        return {
            **super().cache_key_fields(),
            "base_url": self.endpoint,
            "prompt_style": self.prompt_style,
            "max_image_bytes": self.max_image_bytes,
        }

    def params(self) -> dict[str, Any]:
        """Manifest entry: key fields plus timeout, retries, concurrency, prices and the
        *name* of the key variable."""
        return {
            **super().params(),
            "api_key_env": self.api_key_env,
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
            "max_concurrency": self.max_concurrency,
            "price_per_1k_prompt": self.price_per_1k_prompt,
            "price_per_1k_completion": self.price_per_1k_completion,
        }

    def __repr__(self) -> str:
        return (
            f"OpenAICompatibleSpecialist({self.specialist_id!r}, model={self.model!r}, base_url={self.endpoint!r}, "
            f"persona={self.persona}, seed={self.seed})"
        )

    # -- prompts and prices ---------------------------------------------------------------
    def messages(self, item: Any) -> list[dict[str, Any]]:
        """The prompt of :func:`mmed.agents.prompts.specialist_messages` for ``item`` (with
        image placeholders), in this specialist's persona and style."""
        return specialist_messages(item, self.specialty, self.persona, style=self.prompt_style)

    def prompt_text(self, item: Any) -> str:
        """The exact prompt text sent (images as ``<image>``); hashed by the cache key."""
        from .prompts import render_prompt_text

        return render_prompt_text(self.messages(item))

    def cost_usd(self, usage: Mapping[str, int]) -> float | None:
        """USD for ``usage`` (``prompt_tokens``, ``completion_tokens``) at the configured
        prices per 1000 tokens; None when no prices are configured."""
        if self.price_per_1k_prompt is None or self.price_per_1k_completion is None:
            return None
        return (
            usage.get("prompt_tokens", 0) * self.price_per_1k_prompt
            + usage.get("completion_tokens", 0) * self.price_per_1k_completion
        ) / 1000.0

    # -- calls ----------------------------------------------------------------------------
    def _client(self) -> openai.AsyncOpenAI:
        key = os.environ.get(self.api_key_env) if self.api_key_env else NO_KEY_PLACEHOLDER
        if not key:
            raise ValueError(f"environment variable {self.api_key_env!r} is not set")
        return openai.AsyncOpenAI(
            base_url=self.base_url, api_key=key, timeout=self.timeout_s, max_retries=self.max_retries
        )

    def _opinion(self, item: Any, raw: str, usage: dict[str, int], latency: float, error: str | None) -> Opinion:
        options = [str(o) for o in (_get(item, "options") or [])]
        parsed = parse_choice(raw, options) if (options and error is None) else None
        ok = bool(parsed is not None and parsed.valid)
        return Opinion(
            item_id=str(_get(item, "id")),
            specialist_id=self.specialist_id,
            specialty=self.specialty,
            backend=self.backend,
            model=self.model,
            raw=raw,
            parsed=parsed.index if ok else None,  # type: ignore[union-attr]
            valid=ok,
            abstained=error is not None,
            error=error,
            usage=usage,
            latency_s=latency,
        )

    async def _ask(self, client: openai.AsyncOpenAI, item: Any, sem: asyncio.Semaphore) -> Opinion:
        """One request (with the client's retries); a failure becomes an abstention."""
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        async with sem:  # images are encoded inside, so at most max_concurrency are held at once
            messages = to_openai_messages(self.messages(item), list(_get(item, "images")), self.max_image_bytes)
            t0 = time.perf_counter()
            try:
                resp = await client.chat.completions.create(
                    model=self.model,
                    messages=messages,  # type: ignore[arg-type]
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                    seed=request_seed(self.seed, self.specialty, self.panel_index),
                )
                usage = completion_usage(resp)
                raw = completion_text(resp)
            except CALL_ERRORS as exc:
                latency = time.perf_counter() - t0
                status = getattr(exc, "status_code", None)
                log.warning(
                    "specialist %s on item %r: call failed (max_retries=%d), recorded as an abstention: %s%s",
                    self.specialist_id, str(_get(item, "id")), self.max_retries, type(exc).__name__,
                    f" (HTTP {status})" if status is not None else "",
                )
                return self._opinion(item, "", usage, latency, type(exc).__name__)
        return self._opinion(item, raw, usage, time.perf_counter() - t0, None)

    async def aopine_batch(self, items: Sequence[Any]) -> list[Opinion]:
        """Opinions on ``items``, one request each, concurrently (bounded by
        :func:`endpoint_semaphore`); results in item order. Failed calls come back as
        abstentions with ``error`` set; bad items (no images, missing fields) raise."""
        items = list(items)
        if not items:
            return []
        sem = endpoint_semaphore(self.endpoint, self.max_concurrency)
        async with self._client() as client:
            return list(await asyncio.gather(*[self._ask(client, it, sem) for it in items]))


def completion_text(resp: Any) -> str:
    """The text of the first choice of a chat completion.

    Raises:
        MalformedResponseError: ``resp`` is not a :class:`ChatCompletion` (the client
            returns the body as a string when the content type is not JSON), or its
            choices are not a list.
        EmptyResponseError: no choice, or a first choice without text content.
    """
    if not isinstance(resp, ChatCompletion):
        raise MalformedResponseError(f"expected a chat completion, got {type(resp).__name__}")
    choices = resp.choices
    if not isinstance(choices, list):
        raise MalformedResponseError(f"'choices' is {type(choices).__name__}, expected a list")
    if not choices:
        raise EmptyResponseError("the completion has no choice")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if not isinstance(content, str):
        raise EmptyResponseError("the first choice has no text content")
    return content


def completion_usage(resp: Any) -> dict[str, int]:
    """``{"prompt_tokens", "completion_tokens"}`` of a chat completion (0 when the server
    reports no usage, or ``resp`` is not a completion)."""
    usage = getattr(resp, "usage", None) if isinstance(resp, ChatCompletion) else None
    return {
        "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
        "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
    }
