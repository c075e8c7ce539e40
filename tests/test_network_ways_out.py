"""Every way out of the machine is refused inside ``block_network()``, before anything is sent.

Targets are a TEST-NET-3 address (203.0.113.1, never routed) and ``.invalid`` names, used only
with the block on: each case asserts NetworkBlockedError, raised before a packet or a DNS
question leaves. What must keep working is shown on loopback only.
"""

from __future__ import annotations

import _socket
import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import apirecorder
from apirecorder import NetworkBlockedError

TARGET = "203.0.113.1"
NAME = "api.example.invalid"


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        yield sock


def _udp_sendto() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"x", (TARGET, 53))


def _udp6_sendto() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"x", ("2001:db8::1", 53))


def _udp_sendmsg() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendmsg([b"x"], [], 0, (TARGET, 123))


def _udp_connect() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((TARGET, 123))


def _tcp_fast_open() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.sendto(b"GET / HTTP/1.0\r\n\r\n", socket.MSG_FASTOPEN, (TARGET, 80))


def _c_socket(kind: int, method: str, *args: Any) -> Callable[[], None]:
    # The C base class, as code that imports _socket uses it: socket.socket patches miss it.
    def attempt() -> None:
        sock = _socket.socket(socket.AF_INET, kind)
        try:
            getattr(sock, method)(*args)
        finally:
            sock.close()

    return attempt


def _raw_icmp() -> None:
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except PermissionError:
        # Without CAP_NET_RAW the kernel offers unprivileged ICMP "ping" sockets instead.
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        except PermissionError:
            pytest.skip("no raw or ping socket allowed here")
    with sock:
        echo_request = b"\x08\x00\xf7\xff\x00\x00\x00\x00"
        sock.sendto(echo_request, (TARGET, 0))


def _loopback_resolver() -> None:
    # A resolver on loopback forwards the question out: DNS to 127.0.0.53 is a way out too.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"\x00" * 12, ("127.0.0.53", 53))


async def _loop_getaddrinfo() -> None:
    await asyncio.get_running_loop().getaddrinfo(NAME, 443)


async def _loop_getnameinfo() -> None:
    await asyncio.get_running_loop().getnameinfo((TARGET, 443))


async def _loop_sock_sendto() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_sendto(sock, b"x", (TARGET, 53))


async def _loop_sock_connect() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (TARGET, 443))


async def _datagram_endpoint_remote() -> None:
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=(TARGET, 53))


class _Lost(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(exc)


async def _datagram_transport_sendto() -> None:
    loop = asyncio.get_running_loop()
    # The transport reports a failed send to its protocol, not to the caller of sendto.
    loop.set_exception_handler(lambda _loop, _context: None)
    transport, protocol = await loop.create_datagram_endpoint(_Lost, local_addr=("127.0.0.1", 0))
    transport.sendto(b"x", (TARGET, 53))
    # A refused send closes the transport at once; the timeout only keeps a failure from hanging.
    exc = await asyncio.wait_for(protocol.lost, timeout=30)
    transport.close()
    assert exc is not None
    raise exc


WAYS_OUT: dict[str, tuple[Callable[[], Any], str]] = {
    "gethostbyname": (lambda: socket.gethostbyname(NAME), NAME),
    "gethostbyname_ex": (lambda: socket.gethostbyname_ex(NAME), NAME),
    "gethostbyaddr": (lambda: socket.gethostbyaddr(TARGET), TARGET),
    "getnameinfo": (lambda: socket.getnameinfo((TARGET, 443), 0), f"{TARGET}:443"),
    "getaddrinfo": (lambda: socket.getaddrinfo(NAME, 443), f"{NAME}:443"),
    "_socket.getaddrinfo": (lambda: _socket.getaddrinfo(NAME, 443), f"{NAME}:443"),
    "_socket.gethostbyname": (lambda: _socket.gethostbyname(NAME), NAME),
    "_socket.gethostbyaddr": (lambda: _socket.gethostbyaddr(TARGET), TARGET),
    "*.localhost through the C resolver": (
        lambda: _socket.getaddrinfo("api.localhost", 80),
        "api.localhost:80",
    ),
    "loop.getaddrinfo": (lambda: asyncio.run(_loop_getaddrinfo()), f"{NAME}:443"),
    "loop.getnameinfo": (lambda: asyncio.run(_loop_getnameinfo()), f"{TARGET}:443"),
    "UDP sendto": (_udp_sendto, f"{TARGET}:53"),
    "UDP sendto IPv6": (_udp6_sendto, "[2001:db8::1]:53"),
    "UDP sendmsg": (_udp_sendmsg, f"{TARGET}:123"),
    "UDP connect": (_udp_connect, f"{TARGET}:123"),
    "TCP Fast Open": (_tcp_fast_open, f"{TARGET}:80"),
    "_socket.socket.connect": (
        _c_socket(socket.SOCK_STREAM, "connect", (TARGET, 443)),
        f"{TARGET}:443",
    ),
    "_socket.socket.connect_ex": (
        _c_socket(socket.SOCK_STREAM, "connect_ex", (TARGET, 443)),
        f"{TARGET}:443",
    ),
    "_socket.socket.sendto": (
        _c_socket(socket.SOCK_DGRAM, "sendto", b"x", (TARGET, 53)),
        f"{TARGET}:53",
    ),
    "raw ICMP": (_raw_icmp, TARGET),
    "a resolver on loopback": (_loopback_resolver, "127.0.0.53:53"),
    "loop.sock_sendto": (lambda: asyncio.run(_loop_sock_sendto()), f"{TARGET}:53"),
    "loop.sock_connect": (lambda: asyncio.run(_loop_sock_connect()), f"{TARGET}:443"),
    "datagram endpoint, remote_addr": (
        lambda: asyncio.run(_datagram_endpoint_remote()),
        f"{TARGET}:53",
    ),
    "datagram transport sendto": (
        lambda: asyncio.run(_datagram_transport_sendto()),
        f"{TARGET}:53",
    ),
}


@pytest.mark.parametrize("name", WAYS_OUT)
def test_every_way_out_is_refused_before_it_leaves(name: str) -> None:
    attempt, target = WAYS_OUT[name]
    with apirecorder.block_network() as guard, pytest.raises(NetworkBlockedError) as err:
        attempt()
    assert f" to {target}" in str(err.value).splitlines()[0]
    assert target in guard.blocked


# -- what keeps working -----------------------------------------------------------------------


def test_loopback_datagrams_still_flow(udp: socket.socket) -> None:
    udp.bind(("127.0.0.1", 0))
    with (
        apirecorder.block_network(),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        sender.sendto(b"ping", udp.getsockname())
        sender.sendmsg([b"pong"], [], 0, udp.getsockname())
    assert udp.recv(16) == b"ping"
    assert udp.recv(16) == b"pong"


def test_an_allowed_address_still_flows(udp: socket.socket) -> None:
    udp.bind(("127.0.0.1", 0))
    with apirecorder.block_network(["127.0.0.1"], allow_loopback=False) as guard:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"ok", udp.getsockname())
        with pytest.raises(NetworkBlockedError):
            socket.getaddrinfo("::1", 80)
    assert udp.recv(16) == b"ok"
    assert guard.blocked == ["::1:80"] or guard.blocked == ["[::1]:80"]


@pytest.mark.parametrize(
    "lookup",
    [
        lambda: socket.getaddrinfo("api.localhost", 80, socket.AF_INET)[0][4][0],
        lambda: socket.gethostbyname("api.localhost"),
        lambda: socket.gethostbyname_ex("app.api.localhost")[2][0],
        lambda: socket.gethostbyname("localhost"),
        lambda: socket.gethostbyaddr("127.0.0.1")[2][0],
    ],
    ids=["getaddrinfo", "gethostbyname", "gethostbyname_ex", "localhost", "gethostbyaddr"],
)
def test_localhost_names_answer_loopback_without_asking_dns(lookup: Callable[[], str]) -> None:
    with apirecorder.block_network() as guard:
        assert lookup().startswith("127.")
    assert guard.blocked == []


async def _resolve_localhost() -> str:
    infos = await asyncio.get_running_loop().getaddrinfo("api.localhost", 80, family=socket.AF_INET)
    return str(infos[0][4][0])


def test_the_event_loop_resolves_localhost_names_too() -> None:
    with apirecorder.block_network():
        assert asyncio.run(_resolve_localhost()).startswith("127.")


# -- blocks that overlap --------------------------------------------------------------------


def _closed_loopback_port() -> tuple[str, int]:
    # A port nothing listens on: a connection is refused by the kernel, on loopback only.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()


def _outcome(address: tuple[str, int]) -> str:
    try:
        with socket.create_connection(address, timeout=5):
            return "connected"
    except NetworkBlockedError:
        return "blocked"
    except ConnectionRefusedError:
        return "open"


def test_two_threads_whose_blocks_exit_out_of_order() -> None:
    address = _closed_loopback_port()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, str] = {}

    def first() -> None:
        with apirecorder.block_network(allow_loopback=False):
            first_in.set()
            second_in.wait()
        first_out.set()

    def second() -> None:
        first_in.wait()
        with apirecorder.block_network(allow_loopback=False):
            second_in.set()
            first_out.wait()
            # The first block is gone; this one must still hold.
            seen["inside the second"] = _outcome(address)
        seen["after both"] = _outcome(address)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"inside the second": "blocked", "after both": "open"}
    assert _outcome(address) == "open"


def test_two_tasks_whose_blocks_exit_out_of_order() -> None:
    address = _closed_loopback_port()
    seen: dict[str, str] = {}

    async def main() -> None:
        first_in, second_in, first_out = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def first() -> None:
            with apirecorder.block_network(allow_loopback=False):
                first_in.set()
                await second_in.wait()
            first_out.set()
            seen["first task after its block"] = _outcome(address)

        async def second() -> None:
            await first_in.wait()
            with apirecorder.block_network(allow_loopback=False):
                second_in.set()
                await first_out.wait()
                seen["inside the second"] = _outcome(address)

        await asyncio.gather(first(), second())

    asyncio.run(main())
    # The first task has no block of its own after its block, but a block is still open in
    # the process, and code with no block follows the latest one (it may be a worker thread).
    assert seen == {"first task after its block": "blocked", "inside the second": "blocked"}
    assert _outcome(address) == "open"


def test_nested_blocks_restore_the_outer_rules() -> None:
    address = _closed_loopback_port()
    with apirecorder.block_network(allow_loopback=False):
        with apirecorder.block_network():
            assert _outcome(address) == "open"
        assert _outcome(address) == "blocked"
    assert _outcome(address) == "open"


def test_a_worker_thread_follows_the_open_block() -> None:
    address = _closed_loopback_port()
    seen: list[str] = []
    with apirecorder.block_network(allow_loopback=False):
        # A thread starts with an empty context: it follows the block that is open.
        worker = threading.Thread(target=lambda: seen.append(_outcome(address)))
        worker.start()
        worker.join()
    assert seen == ["blocked"]
