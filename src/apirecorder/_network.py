"""Refusing outgoing connections while replaying, at the socket level.

:func:`block_network` patches ``socket.socket.connect``/``connect_ex``,
``socket.create_connection``, ``socket.getaddrinfo`` and the event loop's ``getaddrinfo``
(asyncio connects through ``sock.connect`` too), so every client library is covered
whatever it is built on. Loopback and the allowed hosts stay reachable. A replayed call
never opens a socket, so the guard only fires on code that goes around the recordings.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from unittest import mock

from ._context import current_test_id
from ._exceptions import NetworkBlockedError

if TYPE_CHECKING:
    from ._recorder import Session

__all__ = ["NetworkGuard", "block_network", "network_guard_for", "parse_hosts"]

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def parse_hosts(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Host names from a comma-separated string or a list of them, lower-cased."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    hosts: list[str] = []
    for item in items:
        hosts.extend(part.strip().lower() for part in str(item).split(",") if part.strip())
    return tuple(dict.fromkeys(hosts))


def is_loopback(host: str) -> bool:
    """Loopback names and addresses, and the unspecified address (which reaches this host)."""
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


@dataclass
class NetworkGuard:
    """What one :func:`block_network` block lets through, and what it refused."""

    allow_hosts: tuple[str, ...] = ()
    allow_loopback: bool = True
    blocked: list[str] = field(default_factory=list)
    _resolved: set[str] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def allows(self, host: str) -> bool:
        """Tell whether a connection to ``host`` (a name or an address) may go out."""
        name = host.strip("[]").lower().rstrip(".")
        if self.allow_loopback and is_loopback(name):
            return True
        for allowed in self.allow_hosts:
            if name == allowed or (allowed.startswith("*.") and name.endswith(allowed[1:])):
                return True
        with self._lock:
            return name in self._resolved

    def remember(self, infos: Iterable[Any]) -> None:
        """Addresses an allowed name resolved to are allowed too."""
        with self._lock:
            for info in infos:
                try:
                    self._resolved.add(str(info[4][0]).lower())
                except (IndexError, TypeError):
                    continue

    def check(self, host: Any, port: Any) -> None:
        """Raise :class:`NetworkBlockedError` unless ``host`` may be reached."""
        if not isinstance(host, str | bytes) or host in ("", b""):
            return  # a Unix socket path, or binding: nothing leaves the machine
        text = host.decode("ascii", "replace") if isinstance(host, bytes) else host
        if self.allows(text):
            return
        shown = f"[{text}]" if ":" in text else text  # an IPv6 address
        target = f"{shown}:{port}" if port not in (None, "", 0) else shown
        with self._lock:
            self.blocked.append(target)
        raise NetworkBlockedError(blocked_message(target, text, self.allow_hosts))

    def check_address(self, address: Any) -> None:
        # AF_INET (host, port) and AF_INET6 (host, port, flow, scope); other families are local.
        if isinstance(address, tuple) and len(address) >= 2:
            self.check(address[0], address[1])


def blocked_message(target: str, host: str, allow_hosts: Iterable[str]) -> str:
    """The message of a refused connection: what was refused, and the two ways forward."""
    from ._recorder import record_command  # the recorder imports this module

    allowed = ", ".join(("loopback", *allow_hosts))
    return (
        f"apirecorder blocked a network connection to {target}: the network is blocked "
        f"during replay (allowed: {allowed}).\n"
        "A replayed call never opens a connection, so this call has no recording or goes "
        "around the recorder.\n"
        f"To record it, run: {record_command(current_test_id())}\n"
        f"To let this host through, use --apirecorder-allow-hosts={host} "
        f'(allow_hosts=["{host}"] in code).'
    )


def _guarded_connect(guard: NetworkGuard, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def connect(self: socket.socket, address: Any, *args: Any, **kwargs: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            guard.check_address(address)
        return original(self, address, *args, **kwargs)

    return connect


def _guarded_create_connection(
    guard: NetworkGuard, original: Callable[..., Any]
) -> Callable[..., Any]:
    @functools.wraps(original)
    def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
        guard.check_address(address)
        return original(address, *args, **kwargs)

    return create_connection


def _guarded_getaddrinfo(guard: NetworkGuard, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None:
            guard.check(host, port)
        infos = original(host, port, *args, **kwargs)
        if host is not None:
            guard.remember(infos)
        return infos

    return getaddrinfo


def _guarded_loop_getaddrinfo(
    guard: NetworkGuard, original: Callable[..., Any]
) -> Callable[..., Any]:
    # Checked on the loop's thread, where the test id is known; the worker thread that
    # runs socket.getaddrinfo has no context.
    @functools.wraps(original)
    async def getaddrinfo(self: Any, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None:
            guard.check(host, port)
        return await original(self, host, port, *args, **kwargs)

    return getaddrinfo


@contextmanager
def block_network(
    allow_hosts: str | Iterable[str] | None = (), *, allow_loopback: bool = True
) -> Iterator[NetworkGuard]:
    """Refuse every outgoing connection inside the block except loopback and ``allow_hosts``.

    A refused connection raises :class:`~apirecorder.NetworkBlockedError`. ``allow_hosts``
    takes names, addresses and ``*.example.com`` suffixes.
    """
    guard = NetworkGuard(allow_hosts=parse_hosts(allow_hosts), allow_loopback=allow_loopback)
    with ExitStack() as stack:
        for name in ("connect", "connect_ex"):
            original = getattr(socket.socket, name)
            stack.enter_context(
                mock.patch.object(socket.socket, name, _guarded_connect(guard, original))
            )
        stack.enter_context(
            mock.patch.object(
                socket,
                "create_connection",
                _guarded_create_connection(guard, socket.create_connection),
            )
        )
        stack.enter_context(
            mock.patch.object(
                socket, "getaddrinfo", _guarded_getaddrinfo(guard, socket.getaddrinfo)
            )
        )
        loop_cls = asyncio.BaseEventLoop
        stack.enter_context(
            mock.patch.object(
                loop_cls,
                "getaddrinfo",
                _guarded_loop_getaddrinfo(guard, loop_cls.getaddrinfo),
            )
        )
        yield guard


def network_guard_for(
    mode: str, options: Mapping[str, Any]
) -> AbstractContextManager[NetworkGuard | None]:
    """The guard a ``recording()`` block asks for with ``block_network=True`` (replay only:
    recording needs the network)."""
    if mode != "replay" or not options.get("block_network"):
        return nullcontext()
    return block_network(options.get("allow_hosts"))


def session_guard(session: Session) -> AbstractContextManager[NetworkGuard | None]:
    """:func:`network_guard_for` of an active session."""
    return network_guard_for(str(session.mode), session.options)
