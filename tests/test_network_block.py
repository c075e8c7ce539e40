"""Blocking the network during replay, at the socket level.

Addresses from the documentation ranges (192.0.2.0/24, 2001:db8::/32) and ``.invalid``
names are never reachable, so a test that expects a refusal cannot pass by luck, and one
that expects a connection attempt sees a plain ``OSError`` instead of ``NetworkBlockedError``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import httpx2
import openai
import pytest
import requests

import apirecorder
from apirecorder import NetworkBlockedError
from apirecorder._network import patches_kept
from tests.upstream import Upstream

pytest_plugins = ["pytester"]

UNROUTABLE = "192.0.2.1"


def _attempt() -> str:
    """Try an unroutable address: "blocked" by the guard, or "attempted" for real."""
    try:
        socket.create_connection((UNROUTABLE, 9), timeout=0.05)
    except NetworkBlockedError:
        return "blocked"
    except OSError:
        return "attempted"
    return "connected"


def test_the_message_names_the_host_and_how_to_record_exactly() -> None:
    with (
        apirecorder.test_context("tests/test_chat.py::test_saturn"),
        apirecorder.block_network(),
        pytest.raises(NetworkBlockedError) as err,
    ):
        socket.create_connection(("api.openai.com", 443))
    assert str(err.value) == (
        "apirecorder blocked a network connection to api.openai.com:443: the network is "
        "blocked during replay (allowed: loopback).\n"
        "A replayed call never opens a connection, so this call has no recording or goes "
        "around the recorder.\n"
        "To record it, run: pytest tests/test_chat.py::test_saturn "
        "--apirecorder-mode=record-if-missing\n"
        "To let this host through, use --apirecorder-allow-hosts=api.openai.com "
        '(allow_hosts=["api.openai.com"] in code).'
    )


def test_the_message_lists_the_allowed_hosts_and_brackets_ipv6() -> None:
    with (
        apirecorder.block_network(["example.com", "*.internal"]),
        pytest.raises(NetworkBlockedError) as err,
    ):
        socket.create_connection(("2001:db8::1", 80))
    first_line = str(err.value).splitlines()[0]
    assert first_line == (
        "apirecorder blocked a network connection to [2001:db8::1]:80: the network is "
        "blocked during replay (allowed: loopback, example.com, *.internal)."
    )


async def _asyncio_open() -> None:
    await asyncio.open_connection("api.example.invalid", 443)


async def _asyncio_open_ip() -> None:
    await asyncio.open_connection(UNROUTABLE, 443)


async def _httpx_async() -> None:
    async with httpx.AsyncClient() as client:
        await client.get("https://api.example.invalid/v1/models")


async def _httpx2_async() -> None:
    async with httpx2.AsyncClient() as client:
        await client.get("https://api.example.invalid/v1/models")


async def _aiohttp() -> None:
    async with aiohttp.ClientSession() as session:
        await session.get(f"http://{UNROUTABLE}/")


def _raw_connect() -> None:
    with socket.socket() as sock:
        sock.connect((UNROUTABLE, 443))


def _raw_connect_ex() -> None:
    with socket.socket() as sock:
        sock.connect_ex((UNROUTABLE, 443))


def _ipv6_connect() -> None:
    with socket.socket(socket.AF_INET6) as sock:
        sock.connect(("2001:db8::1", 443, 0, 0))


ENTRY_POINTS: dict[str, tuple[Callable[[], Any], str]] = {
    "socket.connect": (_raw_connect, f"{UNROUTABLE}:443"),
    "socket.connect_ex": (_raw_connect_ex, f"{UNROUTABLE}:443"),
    "socket.connect IPv6": (_ipv6_connect, "[2001:db8::1]:443"),
    "create_connection": (
        lambda: socket.create_connection(("api.example.invalid", 443)),
        "api.example.invalid:443",
    ),
    "getaddrinfo": (
        lambda: socket.getaddrinfo("api.example.invalid", 443),
        "api.example.invalid:443",
    ),
    "urllib": (
        lambda: urllib.request.urlopen("http://api.example.invalid/"),
        "api.example.invalid:80",
    ),
    "requests": (lambda: requests.get(f"http://{UNROUTABLE}:8080/"), f"{UNROUTABLE}:8080"),
    "httpx": (lambda: httpx.get("https://api.example.invalid/"), "api.example.invalid:443"),
    "httpx2": (lambda: httpx2.get("https://api.example.invalid/"), "api.example.invalid:443"),
    "asyncio": (lambda: asyncio.run(_asyncio_open()), "api.example.invalid:443"),
    "asyncio, an address": (lambda: asyncio.run(_asyncio_open_ip()), f"{UNROUTABLE}:443"),
    "httpx async": (lambda: asyncio.run(_httpx_async()), "api.example.invalid:443"),
    "httpx2 async": (lambda: asyncio.run(_httpx2_async()), "api.example.invalid:443"),
    "aiohttp": (lambda: asyncio.run(_aiohttp()), f"{UNROUTABLE}:80"),
}


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_every_way_out_is_refused(name: str) -> None:
    attempt, target = ENTRY_POINTS[name]
    with apirecorder.block_network() as guard, pytest.raises(NetworkBlockedError) as err:
        attempt()
    assert f"connection to {target}:" in str(err.value)
    assert guard.blocked[0] == target


def test_patches_are_undone_after_the_block() -> None:
    originals = (socket.socket.connect, socket.create_connection, socket.getaddrinfo)
    with pytest.raises(NetworkBlockedError), apirecorder.block_network():
        socket.create_connection((UNROUTABLE, 9))
    assert (socket.socket.connect, socket.create_connection, socket.getaddrinfo) == originals
    assert "connect" not in vars(socket.socket)
    assert _attempt() == "attempted"


def test_kept_patches_stay_between_blocks_and_pass_lookups_through() -> None:
    originals = (socket.getaddrinfo, socket.gethostbyname)
    with patches_kept():  # as the pytest plugin keeps them, one block per test
        with pytest.raises(NetworkBlockedError), apirecorder.block_network():
            socket.getaddrinfo("api.example.com", 443)
        kept = socket.getaddrinfo
        assert kept is not originals[0]
        assert socket.getaddrinfo("localhost", 80)  # no block open: not refused
        with pytest.raises(NetworkBlockedError), apirecorder.block_network():
            socket.getaddrinfo("api.example.com", 443)
        assert socket.getaddrinfo is kept
    assert (socket.getaddrinfo, socket.gethostbyname) == originals


def test_loopback_stays_reachable(upstream: Upstream) -> None:
    with apirecorder.block_network() as guard:
        assert httpx.get(f"{upstream.url}/misc/json").json()["message"] == "hello"
        assert requests.get(f"http://localhost:{upstream.port}/misc/text").ok
    assert guard.blocked == []


def test_loopback_can_be_blocked_too(upstream: Upstream) -> None:
    with (
        apirecorder.block_network(allow_loopback=False),
        pytest.raises(NetworkBlockedError, match=f"connection to 127.0.0.1:{upstream.port}"),
    ):
        httpx.get(f"{upstream.url}/misc/json")


def test_an_allowed_name_lets_its_addresses_through(upstream: Upstream) -> None:
    with apirecorder.block_network(["localhost"], allow_loopback=False) as guard:
        assert requests.get(f"http://localhost:{upstream.port}/misc/text").ok
        with pytest.raises(NetworkBlockedError):
            requests.get(f"http://{UNROUTABLE}:{upstream.port}/misc/text", timeout=0.1)
    assert guard.blocked == [f"{UNROUTABLE}:{upstream.port}"]


@pytest.mark.parametrize("allowed", [UNROUTABLE, f"{UNROUTABLE},other.example", "*.0.2.1"])
def test_allowed_hosts_are_attempted_for_real(allowed: str) -> None:
    with apirecorder.block_network(allowed):
        assert _attempt() == "attempted"


# -- through recording() --------------------------------------------------------------


def _chat(url: str) -> Any:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    return client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )


def test_replay_with_the_network_blocked(upstream: Upstream, tmp_path: Path) -> None:
    with apirecorder.test_context("t.py::t"), apirecorder.recording("record", tmp_path):
        live = _chat(upstream.url)
    url = upstream.url
    upstream.stop()
    with (
        apirecorder.test_context("t.py::t"),
        apirecorder.recording(
            "replay", tmp_path, block_network=True, ignore_hosts=["api.example.invalid"]
        ),
    ):
        # A recorded call never opens a socket...
        assert _chat(url).choices[0].message.content == live.choices[0].message.content
        # ...and a call that goes around the recordings is refused.
        with pytest.raises(NetworkBlockedError, match=r"run: pytest t\.py::t --apirecorder-mode"):
            httpx.get("https://api.example.invalid/v1/models")


@pytest.mark.parametrize("mode", ["record", "record-if-missing", "live"])
def test_block_network_only_applies_to_replay(mode: str, tmp_path: Path) -> None:
    with apirecorder.recording(mode, tmp_path, block_network=True):
        assert _attempt() == "attempted"
    with apirecorder.recording("replay", tmp_path, block_network=True):
        assert _attempt() == "blocked"


def test_allow_hosts_option_of_recording(tmp_path: Path) -> None:
    with apirecorder.recording("replay", tmp_path, block_network=True, allow_hosts=[UNROUTABLE]):
        assert _attempt() == "attempted"


# -- the pytest plugin ----------------------------------------------------------------

PLUGIN_TEST = """
import json
import socket
import pytest
from apirecorder import NetworkBlockedError

@pytest.mark.apirecorder{marker}
def test_connect():
    try:
        socket.create_connection(("192.0.2.1", 9), timeout=0.05)
    except NetworkBlockedError as exc:
        print("OUTCOME", json.dumps(["blocked", str(exc)]))
    except OSError:
        print("OUTCOME", json.dumps(["attempted", ""]))

def test_unmarked():
    try:
        socket.create_connection(("192.0.2.1", 9), timeout=0.05)
    except NetworkBlockedError:
        print("OUTCOME", json.dumps(["unmarked blocked", ""]))
    except OSError:
        print("OUTCOME", json.dumps(["unmarked attempted", ""]))
"""


@pytest.fixture(scope="module", autouse=True)
def _import_interceptors_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Import the interceptors before pytester snapshots sys.modules (see test_pytest_plugin)."""
    with apirecorder.recording("live", tmp_path_factory.mktemp("warm")):
        pass


def _outcomes(
    pytester: pytest.Pytester, *args: str, marker: str = "", ini: str = ""
) -> list[list[str]]:
    pytester.makepyfile(test_net=PLUGIN_TEST.format(marker=marker))
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest("-p", "no:hypothesispytest", "-s", *args)
    result.assert_outcomes(passed=2)
    return [
        json.loads(line.split("OUTCOME ", 1)[1]) for line in result.outlines if "OUTCOME " in line
    ]


def test_plugin_option_blocks_marked_tests_in_replay(pytester: pytest.Pytester) -> None:
    (marked, unmarked) = _outcomes(pytester, "--apirecorder-block-network")
    assert marked[0] == "blocked"
    assert marked[1].splitlines()[0] == (
        "apirecorder blocked a network connection to 192.0.2.1:9: the network is blocked "
        "during replay (allowed: loopback)."
    )
    assert (
        "To record it, run: pytest test_net.py::test_connect --apirecorder-mode=record-if-missing"
        in marked[1]
    )
    assert unmarked == ["unmarked attempted", ""]


def test_plugin_allow_hosts_option(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(
        pytester, "--apirecorder-block-network", "--apirecorder-allow-hosts=a.example,192.0.2.1"
    )
    assert outcomes[0] == ["attempted", ""]


def test_plugin_does_not_block_when_recording(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(pytester, "--apirecorder-block-network", "--apirecorder-mode=record")
    assert outcomes[0] == ["attempted", ""]


def test_plugin_does_not_block_without_the_option(pytester: pytest.Pytester) -> None:
    assert _outcomes(pytester)[0] == ["attempted", ""]


def test_plugin_ini_keys(pytester: pytest.Pytester) -> None:
    outcomes = _outcomes(pytester, ini="apirecorder_block_network = true")
    assert outcomes[0][0] == "blocked"
    outcomes = _outcomes(
        pytester,
        ini="apirecorder_block_network = true\napirecorder_allow_hosts =\n    192.0.2.1",
    )
    assert outcomes[0] == ["attempted", ""]


def test_plugin_marker_option(pytester: pytest.Pytester) -> None:
    assert _outcomes(pytester, marker="(block_network=True)")[0][0] == "blocked"
    outcomes = _outcomes(
        pytester, "--apirecorder-block-network", marker='(allow_hosts=["192.0.2.1"])'
    )
    assert outcomes[0] == ["attempted", ""]
