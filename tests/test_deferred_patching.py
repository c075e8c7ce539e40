"""An HTTP library imported before the first block is patched on its first call (issue 16).

Other pytest plugins import requests, urllib3, httpx and ``http.client`` before any test runs;
importing and installing their interceptors then would cost every run, even one that makes no
HTTP call. Stand-ins on the patched methods install the interceptor on the first call instead;
these checks show that a call inside a block is still recorded and replayed, that the network
guard still refuses, and that the stand-ins are exactly what the interceptors patch. Each runs
in a fresh interpreter, so ``sys.modules`` holds only what it imported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_lazy_imports import needs, run_python

SERVER = """
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = json.dumps({"echo": json.loads(body)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
URL = f"http://127.0.0.1:{server.server_address[1]}/v1/echo"
"""


@needs("requests")
def test_a_call_through_an_already_imported_library_is_recorded_and_replayed(
    tmp_path: Path,
) -> None:
    script = (
        SERVER
        + f"""
from unittest import mock
import requests, requests.adapters
import apirecorder
from apirecorder._recording import interceptors_kept
INTERCEPTOR = "apirecorder._interceptors._requests"
folder = {str(tmp_path / "recordings")!r}
Adapter = requests.adapters.HTTPAdapter
own_send = Adapter.send
out = {{}}
with interceptors_kept():
    with apirecorder.recording("record", folder):
        out["loaded_before_the_call"] = INTERCEPTOR in sys.modules
        # A caller that keeps the method it found (as mocking libraries do) and patches
        # over it: the interceptor must still be reached, below that patch.
        kept = Adapter.send
        seen = []
        def over(self, request, **kwargs):
            seen.append(request.url)
            return kept(self, request, **kwargs)
        with mock.patch.object(Adapter, "send", over):
            out["recorded"] = requests.post(URL, json={{"n": 1}}, timeout=5).json()
        out["loaded_after_the_call"] = INTERCEPTOR in sys.modules
        out["seen_by_the_patch_above"] = len(seen)
    server.shutdown()
    server.server_close()
    with apirecorder.recording("replay", folder):
        out["replayed"] = requests.post(URL, json={{"n": 1}}, timeout=5).json()
        # Kept before the interceptor was installed, called after: still intercepted.
        out["replayed_through_kept"] = kept(
            Adapter(), requests.Request("POST", URL, json={{"n": 1}}).prepare(), timeout=5
        ).json()
        try:
            requests.post(URL, json={{"n": 2}}, timeout=5)
            out["miss"] = None
        except apirecorder.RecordingNotFoundError as exc:
            out["miss"] = type(exc).__name__
    with apirecorder.recording("replay", folder, block_network=True):
        import socket
        try:
            socket.create_connection(("203.0.113.7", 80), timeout=1)
            out["guard"] = None
        except apirecorder.NetworkBlockedError as exc:
            out["guard"] = type(exc).__name__
out["restored"] = Adapter.send is own_send
print(json.dumps(out))
"""
    )
    out = json.loads(run_python(script, tmp_path))
    assert out == {
        "loaded_before_the_call": False,
        "recorded": {"echo": {"n": 1}},
        "loaded_after_the_call": True,
        "seen_by_the_patch_above": 1,
        "replayed": {"echo": {"n": 1}},
        "replayed_through_kept": {"echo": {"n": 1}},
        "miss": "RecordingNotFoundError",
        "guard": "NetworkBlockedError",
        "restored": True,
    }
    assert len(list((tmp_path / "recordings").glob("*.json"))) == 1


@needs("requests", "urllib3", "httpx", "httpx2")
@pytest.mark.parametrize(
    ("interceptor", "libraries"),
    [
        ("_httpx", ["httpx", "httpx2"]),
        ("_requests", ["requests"]),
        ("_urllib3", ["urllib3"]),
        ("_httpclient", ["http.client"]),
    ],
)
def test_the_stand_ins_are_exactly_what_the_interceptor_patches(
    tmp_path: Path, interceptor: str, libraries: list[str]
) -> None:
    # Were an interceptor to patch one more method, a call through that method made before
    # any other would go unrecorded: the table must follow the interceptors.
    script = f"""
import importlib
from contextlib import ExitStack
import requests, urllib3, httpx, httpx2, http.client
from apirecorder._interceptors._lazy import DEFERRED
LIBRARIES = {libraries!r}
def classes():
    for name, module in list(sys.modules.items()):
        if any(name == lib or name.startswith(lib + ".") for lib in LIBRARIES):
            for value in list(vars(module).values()):
                if isinstance(value, type):
                    yield value
before = {{cls: dict(vars(cls)) for cls in classes()}}
stack = ExitStack()
importlib.import_module("apirecorder._interceptors.{interceptor}").install(stack)
patched = sorted(
    {{(cls.__module__, cls.__qualname__, name)
      for cls, attrs in before.items()
      for name, value in vars(cls).items() if attrs.get(name) is not value}}
)
stack.close()
listed = sorted(
    {{(getattr(sys.modules[path], cls).__module__, getattr(sys.modules[path], cls).__qualname__,
       attr) for lib in LIBRARIES for path, cls, attr in DEFERRED[lib]}}
)
print(json.dumps({{"patched": patched, "listed": listed}}))
"""
    out = json.loads(run_python(script, tmp_path))
    assert out["patched"], "the interceptor patched nothing"
    assert out["patched"] == out["listed"]


#: What a replay run whose tests make no call must not load: the HTTP interceptors (the
#: libraries are imported already, by a conftest here as by other plugins), the tool layer
#: and the redaction layer (loaded to write a recording or word an error).
NOT_LOADED = (
    "apirecorder._interceptors._requests",
    "apirecorder._interceptors._urllib3",
    "apirecorder._interceptors._httpclient",
    "apirecorder._tools",
    "apirecorder._redaction",
    "apirecorder._diagnostics",
)


@needs("requests")
def test_a_run_that_makes_no_call_loads_no_interceptor_tool_or_redaction_code(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_lazy_imports import SOURCE_DIR

    monkeypatch.setenv("PYTHONPATH", SOURCE_DIR)
    pytester.makeconftest(
        f"""
        import json, sys
        import requests  # as another pytest plugin would have
        NOT_LOADED = {NOT_LOADED!r}

        def pytest_sessionfinish(session):
            with open("loaded.json", "w") as handle:
                json.dump([name for name in NOT_LOADED if name in sys.modules], handle)
        """
    )
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.apirecorder(mode="replay")

        def test_one():
            assert 1 + 1 == 2

        def test_two():
            assert "a" * 2 == "aa"
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
    assert json.loads((pytester.path / "loaded.json").read_text()) == []


@needs("requests")
def test_a_call_from_another_thread_during_the_install_waits_for_the_interceptor(
    tmp_path: Path,
) -> None:
    # The install runs on the first call's thread; a second thread's call made meanwhile
    # must neither run the library's method unpatched nor patch it twice.
    script = """
import threading, types
from contextlib import ExitStack
from unittest import mock
import requests.adapters
Adapter = requests.adapters.HTTPAdapter
own_send = Adapter.send
installing, go_on = threading.Event(), threading.Event()
calls = []

def fake_send(self, request, **kwargs):
    calls.append((threading.current_thread().name, "library"))
    return "sent"

def _install(stack):
    original = Adapter.send  # what the interceptor wraps: the library's own method
    def send(self, request, **kwargs):
        calls.append((threading.current_thread().name, "intercepted"))
        return original(self, request, **kwargs)
    installing.set()
    go_on.wait(10)
    stack.enter_context(mock.patch.object(Adapter, "send", send))

probe = types.ModuleType("apirecorder._interceptors._probe")
probe.install = _install
sys.modules[probe.__name__] = probe
with mock.patch.object(Adapter, "send", fake_send):
    from apirecorder._interceptors._lazy import install_lazily
    stack = ExitStack()
    install_lazily(stack, [("_probe", "requests")])
    first = threading.Thread(target=lambda: Adapter().send(None), name="first")
    first.start()
    installing.wait(10)
    second = threading.Thread(target=lambda: Adapter().send(None), name="second")
    second.start()
    second.join(0.2)  # it must be waiting for the install, not done already
    waited = second.is_alive()
    go_on.set()
    first.join(10)
    second.join(10)
    stack.close()
    restored = Adapter.send is fake_send
print(json.dumps({"calls": sorted(calls), "waited": waited, "restored": restored}))
"""
    out = json.loads(run_python(script, tmp_path))
    assert out == {
        "calls": [
            ["first", "intercepted"],
            ["first", "library"],
            ["second", "intercepted"],
            ["second", "library"],
        ],
        "waited": True,
        "restored": True,
    }
