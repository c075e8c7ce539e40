"""The child process of the hostile matrix and the fuzz: many cases, one process, a line each.

``python -m tests.replay_child CLIENT URL MANIFEST OUT LIMIT_BYTES TIMEOUT_S`` replays every
case folder the manifest lists through one client (a name of ``replay_clients.SCENARIOS``, or
``cli:<command>`` for an ``apirecorder`` command; an entry may name its own), each under
``signal.alarm`` and with a faulthandler watchdog behind it, the whole process under
``RLIMIT_AS``. Before a case it writes ``{"case": ..., "started": true}``; after it, the
outcome. A case that kills the process (or hangs past the watchdog) is the last one started
without an outcome: the parent names it and starts a new child after it.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import json
import os
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.hostile_values import CANARY_MODULE

ROOT = Path(__file__).resolve().parents[1]


class CaseTimeout(BaseException):
    """The case ran past its alarm (a BaseException, so no ``except Exception`` swallows it)."""


def _alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout


def _client_errors(client: str) -> tuple[type[BaseException], ...]:
    # The errors a client raises for a recorded error answer (a status, or a transport error
    # met midway): a faithful replay of a file that records one.
    if client.startswith(("openai", "reference:")):
        import openai

        return (openai.APIError,)
    if client == "anthropic":
        import anthropic

        return (anthropic.APIError,)
    if client == "ollama":
        import ollama

        return (ollama.ResponseError,)
    if client == "genai":
        from google.genai import errors

        return (errors.APIError,)
    if client == "tool":
        return (Exception,)  # a tool's recorded exception is rebuilt as its own class
    if client == "mcp":
        from mcp.shared.exceptions import MCPError

        return (MCPError,)  # a recorded protocol error
    import aiohttp
    import httpx
    import httpx2
    import requests
    import urllib3

    return (
        httpx.HTTPError,
        httpx2.HTTPError,
        requests.RequestException,
        aiohttp.ClientError,
        urllib3.exceptions.HTTPError,
    )


def _peak_mb() -> float:
    # VmHWM, not ru_maxrss: the latter carries over the parent's peak across exec.
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _replay(client: str, url: str) -> Callable[[Path], dict[str, Any]]:
    import apirecorder
    from apirecorder import ApiRecorderError
    from apirecorder._exceptions import is_interrupting
    from tests.replay_clients import WrongObject, scenario_for

    scenario, test_id = scenario_for(client)
    replayed_errors = _client_errors(client)

    def run(folder: Path) -> dict[str, Any]:
        try:
            with (
                apirecorder.recording("replay", folder, block_network=True),
                apirecorder.test_context(test_id),
            ):
                scenario(url)
        except ApiRecorderError as exc:
            return {"outcome": "recorder", "type": type(exc).__name__, "message": str(exc)}
        except WrongObject as exc:
            return {"outcome": "wrong object", "message": str(exc)}
        except replayed_errors as exc:
            if is_interrupting(exc):
                return {"outcome": "recorder", "type": type(exc).__name__, "message": str(exc)}
            return {"outcome": "client error", "type": _name(exc), "message": str(exc)[:500]}
        return {"outcome": "ok"}

    return run


def _cli(command: str) -> Callable[..., dict[str, Any]]:
    from apirecorder._cli import main
    from tests.replay_clients import TEST_ID

    def argv(folder: Path) -> list[str]:
        files = [p for p in folder.iterdir() if p.name != "base.json"]
        file = str(files[0]) if files else str(folder / "missing.json")
        base = str(folder.parent / "base.json")
        return {
            "show": ["show", file],
            "diff": ["diff", base, file],
            "rekey": ["rekey", TEST_ID, "tests/new.py::t", str(folder)],
            "explain": [
                "explain",
                "--dir",
                str(folder),
                "--test-id",
                TEST_ID,
                "--endpoint",
                "/v1/chat/completions",
                str(folder.parent / "request.json"),
            ],
            "scan": ["scan", "--no-env", str(folder)],
        }.get(command, [command, str(folder)])

    def run(folder: Path, args: list[str] | None = None) -> dict[str, Any]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(args if args is not None else argv(folder))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
        output = out.getvalue() + err.getvalue()
        if len(output) > 8000:  # the start names the files, the end says what went wrong
            output = f"{output[:4000]}\n[...]\n{output[-4000:]}"
        return {"outcome": "exit", "code": code, "output": output}

    return run


def _prune() -> Callable[[Path], dict[str, Any]]:
    """``apirecorder prune --yes`` after a run in which the case's test no longer exists.

    The ledger is the one the plugin writes at the end of a run (``find_unused`` over the
    searched folder, ``ledger_data``): another test of the same file ran and passed, one was
    deselected (so the run is not complete and shared recordings stay), the case's test is
    gone, so the intact recording of it is "unused" and deleted. A file that is not readable
    as a recording of that test must be left where it is.
    """
    from apirecorder import ApiRecorderError
    from apirecorder._diagnostics import recording_test_id
    from apirecorder._ledger import RunFacts, find_unused, ledger_data
    from apirecorder._storage import load_recording
    from tests.replay_clients import TEST_ID

    other = TEST_ID.replace("::scenario", "::another_test")

    def readable(path: Path) -> bool:
        try:
            return recording_test_id(load_recording(path)) == TEST_ID
        except ApiRecorderError:
            return False

    def run(folder: Path) -> dict[str, Any]:
        (path,) = [p for p in folder.iterdir() if p.name != "base.json"]
        was_readable = readable(path)
        facts = RunFacts(
            selected={other},
            deselected={TEST_ID.replace("::scenario", "::deselected")},
            outcomes={other: "passed"},
            folders={str(folder)},
            modes={"replay"},
        )
        ledger = folder.parent / f"ledger-{folder.name}.json"
        ledger.write_text(json.dumps(ledger_data(facts, ROOT, find_unused(facts, ROOT))))
        line = _cli("prune")(folder, ["prune", "--yes", "--ledger", str(ledger)])
        return {**line, "readable": was_readable, "deleted": not os.path.lexists(path)}

    return run


def _serve(source: str, url: str) -> Callable[[Path], dict[str, Any]]:
    """Each case folder served by one ``apirecorder serve`` (in this process, its storage
    folder set per case) to an HTTP client; after each case the server must still answer."""
    import threading

    from apirecorder._cli._server import ServeConfig, make_server
    from tests.replay_clients import SERVE_CLIENTS

    log = io.StringIO()
    config = ServeConfig(mode="replay", upstreams={"openai": url, "http": url}, log=log)
    server = make_server("127.0.0.1", 0, config)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ask = SERVE_CLIENTS[source]

    def run(folder: Path) -> dict[str, Any]:
        config.storage_dir = folder
        log.seek(0)
        log.truncate()
        line = ask(server.url)
        line["alive"] = SERVE_CLIENTS["health"](server.url)["outcome"] == "ok"
        line["log"] = log.getvalue()[-2000:]
        return line

    return run


def _name(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def main(argv: list[str]) -> int:
    client, url, manifest, out_path, limit, timeout = argv
    resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))
    signal.signal(signal.SIGALRM, _alarm)
    runners: dict[str, Callable[[Path], dict[str, Any]]] = {}

    def runner(name: str) -> Callable[[Path], dict[str, Any]]:
        if name not in runners:
            if name == "cli:prune":
                runners[name] = _prune()
            elif name.startswith("cli:"):
                runners[name] = _cli(name.removeprefix("cli:"))
            elif name.startswith("serve:"):
                runners[name] = _serve(name.removeprefix("serve:"), url)
            else:
                runners[name] = _replay(name, url)
        return runners[name]

    # Each entry is (case, folder) for this child's client, or (case, folder, client).
    cases = json.loads(Path(manifest).read_text("utf-8"))
    with open(out_path, "a", encoding="utf-8") as out:

        def emit(line: dict[str, Any]) -> None:
            out.write(json.dumps(line) + "\n")
            out.flush()

        for case, folder, *other in cases:
            run = runner(other[0] if other else client)
            emit({"case": case, "started": True})
            # The watchdog ends the process if a case hangs where no signal handler runs
            # (inside one C call); the alarm ends a case cleanly everywhere else.
            faulthandler.dump_traceback_later(int(timeout) * 2 + 5, exit=True)
            signal.alarm(int(timeout))
            start = time.perf_counter()
            try:
                line = run(Path(folder))
            except CaseTimeout:
                line = {"outcome": "timeout"}
            except BaseException as exc:  # every other outcome is the bug the matrix looks for
                tail = traceback.format_exception(exc)[-6:]
                line = {"outcome": "raised", "type": _name(exc), "message": "".join(tail)[-3000:]}
            finally:
                signal.alarm(0)
                faulthandler.cancel_dump_traceback_later()
            line.update(
                case=case,
                seconds=round(time.perf_counter() - start, 3),
                peak_mb=round(_peak_mb()),
                imported_canary=CANARY_MODULE in sys.modules,
            )
            emit(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
