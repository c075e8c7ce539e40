"""Refusing outgoing traffic and name look-ups while replaying, at the socket level.

Two layers, so nothing gets around them:

- an audit hook (:func:`sys.addaudithook`) sees every ``socket.connect``/``connect_ex``,
  ``sendto`` (UDP, raw ICMP, TCP Fast Open), ``sendmsg``, ``getaddrinfo``,
  ``gethostbyname(_ex)``, ``gethostbyaddr`` and ``getnameinfo`` the interpreter makes, from
  ``socket.socket``, the C class ``_socket.socket`` or anything built on them (asyncio
  streams and datagram transports, ``loop.sock_sendto``), and refuses those aimed at a host
  that is not allowed, before anything is sent. An audit hook cannot be removed, so it is
  added once and does nothing while no block is open;
- patches of ``socket.getaddrinfo``/``gethostbyname(_ex)`` and of the event loop's
  ``getaddrinfo``/``getnameinfo``, entered in one ExitStack while any block is open: they
  check names on the caller's thread (where the test id is known), remember the addresses an
  allowed name resolves to, and answer ``*.localhost`` names with loopback instead of letting
  the C resolver ask DNS about them.

Each block's rules live in a ContextVar, so blocks nest per thread and per task and may exit
in any order; a thread that entered no block (a library's worker thread) follows the most
recent block still open. The patches are installed with the first open block and undone
with the last (a process-wide count). Loopback and the allowed hosts stay reachable.
"""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._context import current_test_id
from ._exceptions import NetworkBlockedError

if TYPE_CHECKING:
    import asyncio

    from ._recorder import Session

__all__ = ["NetworkGuard", "block_network", "network_guard_for", "parse_hosts", "patches_kept"]

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
#: Ports of name resolvers: a resolver on loopback forwards the question to the network.
_RESOLVER_PORTS = frozenset({53, 853})


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


def _is_resolver_name(name: str) -> bool:
    # Names under .localhost are loopback (RFC 6761), but glibc asks DNS about them.
    return name.endswith(".localhost")


@dataclass
class NetworkGuard:
    """What one :func:`block_network` block lets through, and what it refused."""

    allow_hosts: tuple[str, ...] = ()
    allow_loopback: bool = True
    blocked: list[str] = field(default_factory=list)
    #: False once the block has exited: a task created inside it no longer follows it.
    active: bool = field(default=True, repr=False)
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

    def allows_lookup(self, host: str) -> bool:
        """Tell whether the C resolver may be asked about ``host``: a ``*.localhost`` name
        only when allowed by name (the patched resolvers answer those themselves)."""
        name = host.strip("[]").lower().rstrip(".")
        if _is_resolver_name(name) and self.allow_loopback:
            return any(name == a or name.endswith(a[1:]) for a in self.allow_hosts if a)
        return self.allows(name)

    def remember(self, infos: Iterable[Any]) -> None:
        """Addresses an allowed name resolved to are allowed too."""
        with self._lock:
            for info in infos:
                try:
                    self._resolved.add(str(info[4][0]).lower())
                except (IndexError, TypeError):
                    continue

    def refuse(self, text: str, port: Any) -> None:
        """Record the refusal of ``text``:``port`` and raise :class:`NetworkBlockedError`."""
        shown = f"[{text}]" if ":" in text else text  # an IPv6 address
        target = f"{shown}:{port}" if port not in (None, "", 0) else shown
        with self._lock:
            self.blocked.append(target)
        raise NetworkBlockedError(blocked_message(target, text, self.allow_hosts))

    def check(self, host: Any, port: Any, *, lookup: bool = False) -> None:
        """Raise :class:`NetworkBlockedError` unless ``host`` may be reached (or, with
        ``lookup``, looked up)."""
        if not isinstance(host, str | bytes) or host in ("", b""):
            return  # a Unix socket path, or binding: nothing leaves the machine
        text = host.decode("ascii", "replace") if isinstance(host, bytes) else host
        allowed = self.allows_lookup(text) if lookup else self.allows(text)
        if (
            allowed
            and not lookup
            and _port_number(port) in _RESOLVER_PORTS
            and is_loopback(text)
            and text.lower() not in self.allow_hosts
        ):
            allowed = False  # a local resolver would forward the question to the network
        if not allowed:
            self.refuse(text, port)

    def check_address(self, address: Any) -> None:
        # AF_INET (host, port) and AF_INET6 (host, port, flow, scope); other families are local.
        if isinstance(address, tuple) and len(address) >= 2:
            self.check(address[0], address[1])


def _port_number(port: Any) -> int | None:
    if isinstance(port, int):
        return port
    if isinstance(port, str | bytes) and port.isdigit():
        return int(port)
    return None


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


# -- which block applies -------------------------------------------------------------------

#: The block of this thread or task (None: it entered none).
_CURRENT: contextvars.ContextVar[NetworkGuard | None] = contextvars.ContextVar(
    "apirecorder_network_guard", default=None
)


class _Blocks:
    """The blocks open in the process, and the patches installed while there are any.
    (One instance: a plain class, as a dataclass would compile its methods at import.)"""

    def __init__(self) -> None:
        self.open: list[NetworkGuard] = []
        self.patches: ExitStack | None = None
        #: Inside :func:`patches_kept`: the patches stay installed when the last block closes.
        self.kept = False
        self.hooked = False
        self.lock = threading.RLock()


_BLOCKS = _Blocks()


def _guard_here() -> NetworkGuard | None:
    """The block this code runs under: its own context's, else the latest one still open."""
    guard = _CURRENT.get()
    if guard is not None and guard.active:
        return guard
    opened = _BLOCKS.open
    return opened[-1] if opened else None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Called for every audit event of the interpreter: return at once unless a block is open.
    if not _BLOCKS.open or not event.startswith("socket."):
        return
    guard = _guard_here()
    if guard is None:
        return
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock, address = args
        if address is None:
            return  # sendmsg on a connected socket: its connect was checked
        family = getattr(sock, "family", None)
        if family in (socket.AF_INET, socket.AF_INET6):
            guard.check_address(address)
        elif family == getattr(socket, "AF_PACKET", object()):
            # Raw frames on an interface: only loopback's, when loopback is allowed.
            interface = address[0] if isinstance(address, tuple) and address else address
            if not (guard.allow_loopback and interface == "lo"):
                guard.refuse(str(interface), None)
    elif event == "socket.getaddrinfo":
        host, port = args[0], args[1]
        if host is not None:
            guard.check(host, port, lookup=True)
    elif event in ("socket.gethostbyname", "socket.gethostbyaddr"):
        guard.check(args[0], None, lookup=True)
    elif event == "socket.getnameinfo":
        sockaddr = args[0]
        if isinstance(sockaddr, tuple) and sockaddr:
            guard.check(sockaddr[0], sockaddr[1] if len(sockaddr) > 1 else None, lookup=True)


# -- the patched resolvers ------------------------------------------------------------------


def _local_name(host: Any) -> Any:
    """``*.localhost`` as ``localhost`` (RFC 6761), which the hosts file answers."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if isinstance(host, str) and _is_resolver_name(host.lower().rstrip(".")):
        return "localhost"
    return host


def _guarded_getaddrinfo(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        guard = _guard_here()
        if guard is None or host is None:
            return original(host, port, *args, **kwargs)
        guard.check(host, port)
        infos = original(_local_name(host), port, *args, **kwargs)
        guard.remember(infos)
        return infos

    return getaddrinfo


def _guarded_gethostbyname(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def gethostbyname(host: Any) -> Any:
        guard = _guard_here()
        if guard is None:
            return original(host)
        guard.check(host, None)
        return original(_local_name(host))

    return gethostbyname


def _guarded_loop_getaddrinfo(original: Callable[..., Any]) -> Callable[..., Any]:
    # Checked on the loop's thread, where the test id is known; the look-up then runs in the
    # executor in a copy of this context, so it follows this task's block.
    @functools.wraps(original)
    async def getaddrinfo(
        self: asyncio.AbstractEventLoop,
        host: Any,
        port: Any,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> Any:
        guard = _guard_here()
        if guard is not None and host is not None:
            guard.check(host, port)
        context = contextvars.copy_context()
        lookup = functools.partial(
            context.run, socket.getaddrinfo, host, port, family, type, proto, flags
        )
        return await self.run_in_executor(None, lookup)

    return getaddrinfo


def _guarded_loop_getnameinfo(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def getnameinfo(self: asyncio.AbstractEventLoop, sockaddr: Any, flags: int = 0) -> Any:
        guard = _guard_here()
        if guard is not None and isinstance(sockaddr, tuple) and sockaddr:
            guard.check(sockaddr[0], sockaddr[1] if len(sockaddr) > 1 else None, lookup=True)
        context = contextvars.copy_context()
        lookup = functools.partial(context.run, socket.getnameinfo, sockaddr, flags)
        return await self.run_in_executor(None, lookup)

    return getnameinfo


def _install() -> ExitStack:
    # Imported when the first guard opens, not with the package: asyncio alone costs about
    # 20 ms of start-up, and unittest.mock imports it too.
    import asyncio
    from unittest import mock

    stack = ExitStack()
    for name in ("getaddrinfo",):
        stack.enter_context(
            mock.patch.object(socket, name, _guarded_getaddrinfo(getattr(socket, name)))
        )
    for name in ("gethostbyname", "gethostbyname_ex"):
        stack.enter_context(
            mock.patch.object(socket, name, _guarded_gethostbyname(getattr(socket, name)))
        )
    loop_cls = asyncio.BaseEventLoop
    stack.enter_context(
        mock.patch.object(loop_cls, "getaddrinfo", _guarded_loop_getaddrinfo(loop_cls.getaddrinfo))
    )
    stack.enter_context(
        mock.patch.object(loop_cls, "getnameinfo", _guarded_loop_getnameinfo(loop_cls.getnameinfo))
    )
    return stack


def _open(guard: NetworkGuard) -> None:
    with _BLOCKS.lock:
        if not _BLOCKS.hooked:
            sys.addaudithook(_audit)
            _BLOCKS.hooked = True
        if _BLOCKS.patches is None:
            _BLOCKS.patches = _install()
        _BLOCKS.open.append(guard)


def _close(guard: NetworkGuard) -> None:
    with _BLOCKS.lock:
        guard.active = False
        _BLOCKS.open.remove(guard)
        _uninstall_if_idle()


def _uninstall_if_idle() -> None:
    if not _BLOCKS.open and not _BLOCKS.kept and _BLOCKS.patches is not None:
        patches, _BLOCKS.patches = _BLOCKS.patches, None
        patches.close()


@contextmanager
def patches_kept() -> Iterator[None]:
    """Leave the resolver patches installed between blocks inside this one.

    The pytest plugin opens a block per test: installing and removing the patches each time
    cost more than the rest of the block. With no block open they pass every look-up through.
    """
    with _BLOCKS.lock:
        already, _BLOCKS.kept = _BLOCKS.kept, True
    try:
        yield
    finally:
        with _BLOCKS.lock:
            _BLOCKS.kept = already
            _uninstall_if_idle()


@contextmanager
def block_network(
    allow_hosts: str | Iterable[str] | None = (), *, allow_loopback: bool = True
) -> Iterator[NetworkGuard]:
    """Refuse every outgoing connection, datagram and name look-up inside the block except
    to loopback and ``allow_hosts``.

    A refusal raises :class:`~apirecorder.NetworkBlockedError`. ``allow_hosts`` takes names,
    addresses and ``*.example.com`` suffixes. Blocks nest per thread and per task.
    """
    guard = NetworkGuard(allow_hosts=parse_hosts(allow_hosts), allow_loopback=allow_loopback)
    token = _CURRENT.set(guard)
    _open(guard)
    try:
        yield guard
    finally:
        _close(guard)
        try:
            _CURRENT.reset(token)
        except ValueError:
            # Exited in another context than it was entered in: that context keeps no block.
            _CURRENT.set(None)


def network_guard_for(
    mode: str, options: Mapping[str, Any]
) -> AbstractContextManager[NetworkGuard | None]:
    """The guard a ``recording()`` block asks for with ``block_network=True`` (replay only:
    recording needs the network)."""
    if mode != "replay" or not options.get("block_network"):
        return _NO_GUARD
    return block_network(options.get("allow_hosts"))


#: What a block without ``block_network`` enters (every test's, mostly): one nullcontext,
#: which holds no state, for all of them.
_NO_GUARD: AbstractContextManager[None] = nullcontext()


def session_guard(session: Session) -> AbstractContextManager[NetworkGuard | None]:
    """:func:`network_guard_for` of an active session."""
    # A StrEnum compares equal to its value: no str() of the mode for every block.
    return network_guard_for(session.mode, session.options)
