"""Start ``transformers serve`` on loopback for a local model (tests, benchmark, notebooks).

``transformers serve`` (transformers >= 5, with fastapi and uvicorn installed) is an
OpenAI-compatible server (``/v1/chat/completions`` with ``image_url`` parts, ``/health``)
that runs offline for a local model folder (docs/architecture.md#environment-facts). :class:`LocalServer` launches it
as a subprocess of the current interpreter::

    python -m transformers.cli.transformers serve <model folder> --host 127.0.0.1 \\
        --port <port> --device cpu --trust-remote-code

waits until ``GET /health`` answers, and stops it on :meth:`LocalServer.close` (or at the
end of a ``with`` block). ``--trust-remote-code`` lets the server load the tiny model's
image-only processor from the ``processing_qwen2_5_vl.py`` that
:func:`mmed.models.build_tiny_qwen2_5_vl` saves beside the weights (no other code is
needed in the server process). The model name to send in requests is the folder path.

Command line (foreground, Ctrl-C to stop)::

    python -m mmed.agents.serve_local --tiny runs/tiny-server      # build + serve the tiny model
    python -m mmed.agents.serve_local --model path/to/model --port 8000
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Sequence

from ..data.sets import load_items
from .backends import apply_specialist_spec, make_specialist_factory
from .cache import SpecialistCache
from .pipeline import as_item_list
from .specialists import consult_panel, make_panel


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (bind to port 0, read, close).

    Another process may take it before the server binds; :class:`LocalServer` then fails
    with the server's log in the error.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


#: seconds :meth:`LocalServer.wait_healthy` waits at least, however long ago the server was launched
HEALTH_GRACE_S: float = 10.0


class LocalServer:
    """``transformers serve`` for one model folder, on loopback, as a subprocess.

    Args:
        model: a local model folder (or a Hub id when the Hub is reachable); it is also
            the ``model`` name clients must send.
        host: listen address (loopback by default; never expose a test server).
        port: listen port; None → :func:`free_port`.
        device: ``"cpu"``, ``"cuda"``, ``"auto"`` ...
        trust_remote_code: pass ``--trust-remote-code`` (needed for the tiny model's
            processor class, which is saved beside its weights).
        startup_timeout_s: seconds from the launch to wait for ``/health`` (finite, > 0).
        log_path: file receiving the server's stdout and stderr (None → a temp file).
        extra_args: more ``transformers serve`` flags, e.g. ``["--continuous-batching"]``.
        offline: set ``HF_HUB_OFFLINE=1`` in the server's environment.

    Raises (on :meth:`start`):
        FileNotFoundError: ``model`` looks like a path and does not exist.
        RuntimeError: the server exited or did not answer ``/health`` in time (the message
            holds the tail of its log).
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int | None = None,
        device: str = "cpu",
        trust_remote_code: bool = True,
        startup_timeout_s: float = 180.0,
        log_path: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        offline: bool = True,
    ):
        if not startup_timeout_s or startup_timeout_s <= 0:
            raise ValueError(f"startup_timeout_s must be > 0, got {startup_timeout_s!r}")
        self.model = str(model)
        self.host = host
        self.port = int(port) if port is not None else free_port(host)
        self.device = device
        self.trust_remote_code = trust_remote_code
        self.startup_timeout_s = float(startup_timeout_s)
        self.log_path = Path(log_path) if log_path is not None else Path(tempfile.mkstemp(prefix="mmed-serve-", suffix=".log")[1])
        self.extra_args = list(extra_args)
        self.offline = offline
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>/v1`` (the ``base_url`` of the openai client)."""
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        """The command line that starts the server."""
        cmd = [sys.executable, "-m", "transformers.cli.transformers", "serve", self.model,
               "--host", self.host, "--port", str(self.port), "--device", self.device]
        if self.trust_remote_code:
            cmd.append("--trust-remote-code")
        return cmd + self.extra_args

    def log_tail(self, n_chars: int = 4000) -> str:
        """The last ``n_chars`` characters of the server log."""
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except FileNotFoundError:
            return ""

    def request_count(self) -> int:
        """Chat-completion requests the server has logged so far (uvicorn access log)."""
        return self.log_tail(n_chars=10**9).count('"POST /v1/chat/completions HTTP/1.1"')

    def healthy(self) -> bool:
        """Whether ``GET /health`` answers 200 now."""
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.port}/health", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self) -> "LocalServer":
        """Launch the server and wait until it is healthy (class docstring for errors)."""
        return self.launch().wait_healthy()

    def launch(self) -> "LocalServer":
        """Start the server process and return at once (:meth:`wait_healthy` waits for it):
        its start (imports, model load: ~10 s of one core for the tiny model) can overlap
        other work. Raises FileNotFoundError as :meth:`start`, and RuntimeError when this
        server's process is already running (a second one would be left behind)."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"transformers serve of {self.model!r} is already running (pid {self.process.pid}); "
                               f"close() it first")
        looks_like_path = os.sep in self.model or self.model.startswith(".")
        if looks_like_path and not os.path.exists(self.model):
            raise FileNotFoundError(f"model folder {self.model!r} does not exist")
        env = dict(os.environ)
        env.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")
        if self.offline:
            env["HF_HUB_OFFLINE"] = "1"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        finally:
            log.close()
        self._launched_at = time.monotonic()
        return self

    def wait_healthy(self) -> "LocalServer":
        """Wait until the launched server answers ``/health``: until ``startup_timeout_s``
        after its launch, and at least :data:`HEALTH_GRACE_S` from this call (a server
        launched long before, e.g. before minutes of consultations, still gets its checks).
        Raises RuntimeError (the class docstring's) when it exited, was not launched, or did
        not answer in time (the server is stopped then)."""
        if self.process is None:
            raise RuntimeError(f"transformers serve of {self.model!r} was not launched (LocalServer.launch)")
        deadline = max(getattr(self, "_launched_at", time.monotonic()) + self.startup_timeout_s,
                       time.monotonic() + HEALTH_GRACE_S)
        while not self.healthy():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"transformers serve exited with code {self.process.returncode}; log {self.log_path}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(
                    f"transformers serve did not answer /health within {self.startup_timeout_s:g} s of its launch; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.25)
        return self

    def close(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s). Safe to call twice."""
        p, self.process = self.process, None
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.process is not None and self.process.poll() is None else "stopped"
        return f"LocalServer({self.model!r}, base_url={self.base_url!r}, {state})"


def build_tiny_model_for_serving(out_dir: str | os.PathLike[str], profile: str = "smoke") -> Path:
    """Build the tiny offline Qwen2.5-VL of ``profile`` (``models.tiny`` and ``image``
    sections) into ``out_dir`` unless it already holds one; returns the folder.

    Raises:
        ProfileError: an unknown profile.
    """
    from ..config import load_profile
    from ..models import build_tiny_qwen2_5_vl

    out = Path(out_dir)
    if (out / "config.json").exists() and (out / "model.safetensors").exists():
        return out
    prof = load_profile(profile)
    return build_tiny_qwen2_5_vl(out, prof.models.tiny, min_pixels=prof.image.min_pixels, max_pixels=prof.image.max_pixels)


def panel_check_server(run: Any) -> LocalServer:
    """The (not yet launched) :class:`LocalServer` of :func:`cached_panel_check`: the tiny
    offline model built into ``<run>/models/serve-tiny`` (once), its log in
    ``<run>/consult/serve.log``. Launch it early (:meth:`LocalServer.launch`) to overlap its
    start with other work, then pass it to :func:`cached_panel_check`."""
    model_dir = build_tiny_model_for_serving(run.path("models", "serve-tiny"), profile="smoke")
    return LocalServer(str(model_dir), log_path=str(run.path("consult", mkdir=True) / "serve.log"))


def cached_panel_check(run: Any, profile: Any, seed: int, n_items: int = 2, log: Any = print,
                       server: LocalServer | None = None) -> dict[str, Any]:
    """Notebook 02's "specialists on a real server" section: a Radiologist panel whose
    specialists are an OpenAI-compatible server (``transformers serve`` of the tiny offline
    model on loopback, :class:`LocalServer`), asked twice about ``n_items`` synthetic test
    items through :func:`mmed.agents.backends.make_specialist_factory` with the on-disk
    :class:`mmed.agents.cache.SpecialistCache` (``<run>/consult/specialist-cache``): the
    second pass must be served from the cache, with no request reaching the server. The
    tiny model's answers are random text (invalid opinions): the check is of the path, not
    of the answers.

    Args:
        run: a :class:`mmed.runs.Run` (the served model goes to ``models/serve-tiny``, the
            server log to ``consult/serve.log``).
        profile: a :class:`mmed.config.Profile` (its ``specialists`` section, with this backend).
        log: one line per pass and one opinion (None: silent).
        server: :func:`panel_check_server`'s server, launched or not (None: made here);
            stopped at the end either way.
    Returns:
        ``{"passes": {"first pass" | "re-run": factory stats (calls, cache_hits, errors, ...)},
        "server_requests": requests the server saw}``.
    Raises:
        RuntimeError: the server did not start (its log's tail in the message).
    """
    log = log or (lambda m: None)
    server = server if server is not None else panel_check_server(run)
    try:
        if server.process is None:
            server.launch()
        server.wait_healthy()
        cfg = apply_specialist_spec(profile.specialists, f"openai:{server.model}@{server.base_url}")
        cfg = dataclasses.replace(cfg, cache_dir=str(run.path("consult", "specialist-cache")),
                                  openai=dataclasses.replace(cfg.openai, api_key_env="", max_tokens=16))
        items = as_item_list(load_items(profile, "synthetic", "test", limit=n_items))
        passes = {}
        for attempt in ("first pass", "re-run"):
            factory = make_specialist_factory(cfg, seed=seed, cache=SpecialistCache(cfg.cache_dir))
            opinions = consult_panel(make_panel("Radiologist", cfg.panel_size, factory), items)
            st = passes[attempt] = factory.stats()
            log(f"{attempt}: {st['calls']} calls, {st['cache_hits']} cache hits, errors {st['errors']}, "
                f"requests seen by the server so far: {server.request_count()}")
        log(f"an opinion (random tiny model): {opinions[0][0].raw[:80]!r} valid: {opinions[0][0].valid}")
        return {"passes": passes, "server_requests": server.request_count()}
    finally:
        server.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mmed.agents.serve_local``: serve a model in the foreground until Ctrl-C."""
    ap = argparse.ArgumentParser(prog="python -m mmed.agents.serve_local", description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="a model folder (or Hub id) to serve")
    src.add_argument("--tiny", metavar="DIR", help="build the tiny offline model into DIR (if missing) and serve it")
    ap.add_argument("--profile", default="smoke", help="profile whose tiny model size is used with --tiny")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    model = str(build_tiny_model_for_serving(args.tiny, args.profile)) if args.tiny else args.model
    server = LocalServer(model, host=args.host, port=args.port, device=args.device, log_path=None)
    with server:
        print(f"serving {model!r} at {server.base_url} (model name: {model!r}); log: {server.log_path}; Ctrl-C to stop")
        try:
            while server.process is not None and server.process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
