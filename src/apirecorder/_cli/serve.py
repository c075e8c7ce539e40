"""``apirecorder serve``: answer the providers' APIs over HTTP from recordings, for any client."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import ipaddress
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from .. import recording
from .._modes import Mode
from .._recording import interceptors_kept
from ._server import DEFAULT_UPSTREAMS, ServeConfig, make_server

__all__ = ["URL_LINE_PREFIX", "ServerHandle", "register", "run", "serve_process"]

#: The machine-readable line printed once the server listens: ``APIRECORDER_SERVE_URL=<url>``.
URL_LINE_PREFIX = "APIRECORDER_SERVE_URL="

DESCRIPTION = """\
Serve the providers' HTTP APIs from recordings, so that a program in any language (the npm
openai package, a Go binary, a container) replays the same recordings as the Python tests.
OpenAI-compatible paths (chat completions, completions, embeddings, models, Responses) and
Ollama's chat, generate and embed are answered through the Python SDKs' own recorders, so a
request hashes as the same call from the Python SDK would; Anthropic, Gemini and anything
else are recorded as raw HTTP.

The test id comes from the X-Apirecorder-Test-Id header, or from a path prefix for clients
that cannot set headers: http://HOST:PORT/t/<url-encoded test id>/v1/chat/completions.
A replay miss answers 404 with the explanation in the error message, and is logged here.
"""
EPILOG = "Exit codes: 0 stopped by SIGINT or SIGTERM, 2 usage error."


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="answer the providers' HTTP APIs from recordings, for any language",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--mode",
        choices=[m.value for m in Mode if m is not Mode.LIVE],
        default=Mode.REPLAY.value,
        help="replay (default), record, or record-if-missing",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="one folder for every recording (default: next to each test file, as pytest does)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)"
    )
    parser.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="NAME=URL",
        help=f"where record mode sends NAME's calls ({', '.join(DEFAULT_UPSTREAMS)}, http); "
        f"repeatable; also {UPSTREAM_ENV_PREFIX}<NAME>=URL in the environment",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow binding an address other than loopback (recordings become readable there)",
    )
    parser.add_argument(
        "--max-body",
        type=int,
        default=32 * 1024 * 1024,
        metavar="BYTES",
        help="largest request body taken (default 32 MiB)",
    )
    parser.set_defaults(handler=run)


#: ``APIRECORDER_UPSTREAM_OPENAI=URL`` and the like set an upstream as ``--upstream`` does.
UPSTREAM_ENV_PREFIX = "APIRECORDER_UPSTREAM_"


def _upstreams(values: list[str]) -> dict[str, str]:
    upstreams = dict(DEFAULT_UPSTREAMS)
    for name, url in os.environ.items():
        if name.startswith(UPSTREAM_ENV_PREFIX) and url:
            upstreams[name[len(UPSTREAM_ENV_PREFIX) :].lower()] = url
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise SystemExit(
                f"apirecorder serve: --upstream {value!r}: expected NAME=URL, "
                "for example openai=http://127.0.0.1:8000"
            )
        upstreams[name.strip().lower()] = url.strip()
    return upstreams


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warm_up(config: ServeConfig) -> None:
    """Import the clients the server calls through, before it says it listens.

    The first request would otherwise pay for importing the SDKs (seconds, not milliseconds).
    """
    for library in ("openai", "ollama", "httpx"):
        if importlib.util.find_spec(library) is not None:
            importlib.import_module(library)
    with recording(config.mode, config.storage_dir, root=config.root):
        pass


def run(args: argparse.Namespace) -> int:
    if not _is_loopback(args.host) and not args.allow_remote:
        print(
            f"apirecorder serve: refusing to bind {args.host}, which is not a loopback address: "
            "anyone who reaches it reads your recordings. Pass --allow-remote to bind it anyway.",
            file=sys.stderr,
        )
        return 2
    try:
        upstreams = _upstreams(args.upstream)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    config = ServeConfig(
        mode=args.mode, storage_dir=args.dir, upstreams=upstreams, max_body=args.max_body
    )
    try:
        server = make_server(args.host, args.port, config)
    except OSError as exc:
        print(
            f"apirecorder serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 2
    _warm_up(config)

    def stop(signum: int, frame: Any) -> None:
        # shutdown() waits for serve_forever to return, so it cannot run in this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    # Before the URL is printed: a harness may stop the server as soon as it has read it.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    where = str(args.dir) if args.dir else "next to each test file"
    print(f"apirecorder serve: {args.mode} on {server.url} (recordings: {where})", flush=True)
    print(f"{URL_LINE_PREFIX}{server.url}", flush=True)
    try:
        with interceptors_kept():
            server.serve_forever(poll_interval=0.1)
            # A request still being answered writes its recording when it ends: let it.
            if not server.wait_idle(timeout=60.0):
                print("apirecorder serve: stopped with requests still open", file=sys.stderr)
    finally:
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("apirecorder serve: stopped", flush=True)
    return 0


@contextlib.contextmanager
def serve_process(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    startup_timeout: float = 60.0,
) -> Iterator[ServerHandle]:
    """Run ``apirecorder serve --port 0 ARGS`` in a subprocess; yield its URL; stop it after.

    Its log (misses included) goes to this process's stderr. Stopping sends SIGTERM and waits.
    """
    command = [sys.executable, "-m", "apirecorder._cli", "serve", "--port", "0", *args]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(env) if env is not None else None,
        cwd=cwd,
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def read(stream: IO[str]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, args=(process.stdout,), daemon=True).start()
    try:
        url = _wait_for_url(lines, process, startup_timeout)
        yield ServerHandle(url, process.pid)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_url(
    lines: queue.Queue[str | None], process: subprocess.Popen[str], timeout: float
) -> str:
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"apirecorder serve did not start in {timeout:.0f} s") from None
        if line is None:
            code = process.wait()
            raise RuntimeError(f"apirecorder serve exited with {code}: {''.join(seen)}")
        if line.startswith(URL_LINE_PREFIX):
            return line[len(URL_LINE_PREFIX) :].strip()
        seen.append(line)


class ServerHandle(str):
    """A running ``apirecorder serve``: the string is its URL; ``pid`` is its process."""

    pid: int

    def __new__(cls, url: str, pid: int = 0) -> ServerHandle:
        handle = super().__new__(cls, url)
        handle.pid = pid
        return handle

    @property
    def url(self) -> str:
        return str(self)

    def base_url(self, test_id: str, suffix: str = "/v1") -> str:
        """``<url>/t/<url-encoded test id><suffix>``, for clients that cannot set headers."""
        return f"{self}/t/{quote(test_id, safe='')}{suffix}"
