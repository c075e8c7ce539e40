"""A client library is patched when the code under test imports it, never imported to patch it.

Each check runs in a fresh interpreter (``sys.executable -c``), so ``sys.modules`` holds only
what that interpreter imported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import apirecorder

#: The client libraries a suite that uses none of them must not find imported (issue 16).
CLIENT_LIBRARIES = (
    "openai",
    "anthropic",
    "ollama",
    "mcp",
    "google.genai",
    "aiohttp",
    "requests",
    "urllib3",
    "botocore",
)

#: So the interpreters started here import this apirecorder, wherever it is checked out.
SOURCE_DIR = str(Path(apirecorder.__file__).resolve().parent.parent)


def run_python(script: str, cwd: Path) -> str:
    """Run ``script`` in a new interpreter; its stdout, after checking it succeeded."""
    script = PRELUDE + textwrap.dedent(script)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([SOURCE_DIR, os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def needs(*libraries: str) -> pytest.MarkDecorator:
    missing = [name for name in libraries if importlib.util.find_spec(name) is None]
    return pytest.mark.skipif(bool(missing), reason=f"not installed: {', '.join(missing)}")


PRELUDE = f"""
import json, sys
LIBRARIES = {CLIENT_LIBRARIES!r}
def imported():
    return [name for name in LIBRARIES if name in sys.modules]
"""


def test_import_apirecorder_imports_no_client_library(tmp_path: Path) -> None:
    out = run_python("import apirecorder\nprint(json.dumps(imported()))", tmp_path)
    assert json.loads(out) == []


def test_installing_lazily_imports_no_library(tmp_path: Path) -> None:
    script = """
    from contextlib import ExitStack
    from apirecorder._interceptors import INTERCEPTORS
    from apirecorder._interceptors._lazy import install_lazily
    with ExitStack() as stack:
        install_lazily(stack, INTERCEPTORS)
        print(json.dumps(imported()))
    """
    assert json.loads(run_python(script, tmp_path)) == []


def test_replay_block_that_uses_no_sdk_imports_no_client_library(tmp_path: Path) -> None:
    script = f"""
    import apirecorder
    before = set(imported())
    with apirecorder.recording("replay", {str(tmp_path)!r}):
        pass
    print(json.dumps(sorted(set(imported()) - before)))
    """
    assert json.loads(run_python(script, tmp_path)) == []


def test_plugin_replay_test_that_uses_no_sdk_imports_no_client_library(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([SOURCE_DIR, os.environ.get("PYTHONPATH", "")])
    )
    # Taken when the conftest is imported: after pytest and its plugins (apirecorder's
    # among them) have started, before any test runs.
    pytester.makeconftest(
        f"""
        import json, sys
        LIBRARIES = {CLIENT_LIBRARIES!r}
        BEFORE = {{name for name in LIBRARIES if name in sys.modules}}

        def pytest_sessionfinish(session):
            new = [name for name in LIBRARIES if name in sys.modules and name not in BEFORE]
            with open("imported.json", "w") as handle:
                json.dump(new, handle)
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.apirecorder(mode="replay")
        def test_no_api_call():
            assert 1 + 1 == 2
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    assert json.loads((pytester.path / "imported.json").read_text()) == []


CHAT_SERVER = """
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

COMPLETION = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "hello"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}).encode()

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(COMPLETION)))
        self.end_headers()
        self.wfile.write(COMPLETION)

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
URL = f"http://127.0.0.1:{server.server_address[1]}/v1"
"""


@needs("openai")
def test_openai_imported_after_the_stack_opened_is_recorded_then_restored(
    tmp_path: Path,
) -> None:
    script = (
        CHAT_SERVER
        + f"""
from contextlib import ExitStack
from unittest import mock
import apirecorder
import apirecorder._interceptors as interceptors
from apirecorder._interceptors._lazy import install_lazily

# The recorder's own install must not be what patches openai here.
with mock.patch.object(interceptors, "install_all", lambda stack: None):
    stack = ExitStack()
    install_lazily(stack, [("_openai", "openai")])
    assert "openai" not in sys.modules
    import openai
    from openai.resources.chat.completions import Completions
    patched = Completions.create
    # functools.wraps copies the name and module; the code says whose wrapper it is.
    assert patched.__code__.co_filename.endswith("_openai.py"), patched.__code__.co_filename
    client = openai.OpenAI(base_url=URL, api_key="sk-test", max_retries=0)
    with apirecorder.recording("record", {str(tmp_path / "recordings")!r}):
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}]
        )
    stack.close()
print(json.dumps({{
    "reply": reply.choices[0].message.content,
    "restored": Completions.create is patched.__wrapped__,
}}))
"""
    )
    out = json.loads(run_python(script, tmp_path))
    assert out == {"reply": "hello", "restored": True}
    (written,) = (tmp_path / "recordings").glob("*.json")
    assert (
        json.loads(written.read_text())["response"]["body"]["__data__"]["choices"][0]["message"][
            "content"
        ]
        == "hello"
    )


PROBE = """
import types
from contextlib import ExitStack

# A stand-in interceptor: it notes what it was installed for, and patches one attribute of
# the library so that undo can be seen.
calls = []
probe = types.ModuleType("apirecorder._interceptors._probe")
def _install(stack):
    import threading
    for name in WATCHED:
        module = sys.modules.get(name)
        if module is not None and not getattr(module, "__probe__", False):
            calls.append((name, threading.current_thread().name))
            stack.enter_context(mock.patch.object(module, "__probe__", True, create=True))
probe.install = _install
from unittest import mock
sys.modules[probe.__name__] = probe
from apirecorder._interceptors._lazy import install_lazily
"""


@needs("google.genai", "mcp")
def test_a_dotted_library_and_a_submodule_import_install_once_the_package_ran(
    tmp_path: Path,
) -> None:
    script = (
        "WATCHED = ('google.genai', 'mcp')\n"
        + PROBE
        + """
stack = ExitStack()
install_lazily(stack, [("_probe", "google.genai"), ("_probe", "mcp")])
import google  # the namespace package alone is not the library
first = list(calls)
import mcp.types  # a submodule: the package's __init__ runs first, then the install
after_mcp = list(calls)
from google.genai import types as genai_types
import google.genai
print(json.dumps({
    "first": first,
    "after_mcp": [name for name, _ in after_mcp],
    "all": [name for name, _ in calls],
    "genai_complete": hasattr(google.genai, "Client"),
}))
stack.close()
assert not hasattr(sys.modules["mcp"], "__probe__")
"""
    )
    out = json.loads(run_python(script, tmp_path))
    assert out == {
        "first": [],
        "after_mcp": ["mcp"],
        "all": ["mcp", "google.genai"],
        "genai_complete": True,
    }


@needs("requests", "openai", "httpx", "httpx2")
def test_two_threads_importing_at_once_each_library_patched_once(tmp_path: Path) -> None:
    script = (
        "WATCHED = ('requests', 'openai')\n"
        + PROBE
        + """
import threading
stack = ExitStack()
install_lazily(stack, [("_probe", "requests"), ("_probe", "openai"), ("_httpx", "httpx"),
                       ("_httpx", "httpx2")])
barrier = threading.Barrier(4)
def load(name):
    barrier.wait()
    __import__(name)
threads = [threading.Thread(target=load, args=(name,), name=name)
           for name in ("requests", "openai", "httpx", "httpx2")]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(60)
assert not any(thread.is_alive() for thread in threads), "an import hangs"
import httpx, httpx2
patched = {name: getattr(sys.modules[name].HTTPTransport.handle_request, "__wrapped__", None)
           for name in ("httpx", "httpx2")}
twice = [name for name, inner in patched.items() if hasattr(inner, "__wrapped__")]
print(json.dumps({"calls": sorted(name for name, _ in calls),
                  "http_layer": sorted(name for name, inner in patched.items() if inner),
                  "patched_twice": twice}))
stack.close()
assert not any(hasattr(sys.modules[name].HTTPTransport.handle_request, "__wrapped__")
               for name in ("httpx", "httpx2"))
"""
    )
    out = json.loads(run_python(script, tmp_path))
    assert out == {
        "calls": ["openai", "requests"],
        "http_layer": ["httpx", "httpx2"],
        "patched_twice": [],
    }


@needs("requests")
def test_reload_and_sys_modules_snapshots_keep_working(tmp_path: Path) -> None:
    script = (
        "WATCHED = ('requests',)\n"
        + PROBE
        + """
import importlib
saved_meta_path = list(sys.meta_path)
stack = ExitStack()
install_lazily(stack, [("_probe", "requests")])
# What pytester does around an in-process run: sys.modules put back as it was, so a library
# first imported inside the run is imported afresh after it, and must be patched again.
saved_modules = dict(sys.modules)
import requests
first = requests
sys.modules.clear()
sys.modules.update(saved_modules)
import requests
again = requests is not first and requests.__probe__ is True
# reload runs the library's own loader, never the hook's wrapper.
loader = type(requests.__loader__).__name__
importlib.reload(requests)
reloaded = requests.__spec__.loader is requests.__loader__ and loader == "SourceFileLoader"
# pytester also puts sys.meta_path back; closing after that must still undo everything.
sys.meta_path[:] = saved_meta_path
stack.close()
print(json.dumps({
    "installs": len(calls),
    "again": again,
    "reloaded": reloaded,
    "restored": not getattr(first, "__probe__", False)
                and not getattr(requests, "__probe__", False),
}))
"""
    )
    out = json.loads(run_python(script, tmp_path))
    assert out == {"installs": 2, "again": True, "reloaded": True, "restored": True}
