"""One deadline for a whole HTTP request: connect, send the body, the answer's headers and the
part of its body we read.

Socket timeouts bound each single recv or send, so a server that drips a byte before each one
runs out (a slowloris, or a proxy that stalls) holds a request, and the agent, for as long as it
likes. Here one watchdog thread per process keeps the deadlines of the requests in flight; when
one passes, it shuts that request's socket down (``shutdown(SHUT_RDWR)``, and a close that resets
it): the blocked call returns at once, urllib3 drops the connection, and the sink files a timeout.

How it knows the socket: the session's adapter makes its pools with connection classes that hand
the current request (a thread-local :class:`Deadline`, set by :func:`running`) a duplicate of
their socket, when they connect (the plain TCP socket, before any TLS handshake takes it over)
and when a kept-alive connection starts another request. A duplicate is ours to close, so the
watchdog never shuts down a file descriptor the request thread already closed and reused; the
duplicates are closed when the request ends. A connection whose socket was shut down is marked
spent and closed when the pool next hands it out, never reused.

Not covered: name resolution (getaddrinfo cannot be interrupted; the system resolver's own
timeouts bound it, and a connection made after the deadline is shut down at once), and SOCKS
proxies (their connection classes are urllib3's; socket timeouts still bound each step).
"""
from __future__ import annotations

import contextlib
import math
import os
import socket
import struct
import threading
import time
from typing import Any, Iterator

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class Deadline:
    """One request's deadline, and the sockets to shut down when it passes."""

    __slots__ = ("at", "expired", "_socks", "_conns")

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.expired = False          # set by the watchdog, under its lock
        self._socks: list[socket.socket] = []   # duplicates: ours to close
        self._conns: list[Any] = []             # connections to mark spent

    def left(self) -> float:
        return self.at - time.monotonic()


class _Watchdog:
    """The process's one watchdog thread: sleeps until the earliest armed deadline, then shuts
    the sockets of every passed one down. Arming a request wakes it only when that request's
    deadline comes before the wake-up it already has (the first request after an idle time), so
    a steady stream of requests costs a lock and a set insertion each, no thread switch."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._armed: set[Deadline] = set()
        self._wake_at = math.inf      # when the thread wakes next (inf: only when notified)
        self._thread: threading.Thread | None = None

    def arm(self, deadline: Deadline) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hookagent-deadline", daemon=True)
                self._thread.start()
            self._armed.add(deadline)
            if deadline.at < self._wake_at:
                self._cond.notify()

    def disarm(self, deadline: Deadline) -> None:
        """Forget ``deadline`` and close its duplicates (``deadline.expired`` stays as it is)."""
        with self._cond:
            self._armed.discard(deadline)
            socks, deadline._socks, deadline._conns = deadline._socks, [], []
        for sock in socks:
            sock.close()

    def watch(self, deadline: Deadline, sock: Any, conn: Any) -> None:
        """Shut ``sock`` (a connection's socket, any wrapper with a file descriptor) down when
        ``deadline`` passes; at once when it has."""
        try:
            fd = os.dup(sock.fileno())
        except OSError:
            return   # already closed: nothing left to wait on
        try:
            dup = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)
            return
        with self._cond:
            if not deadline.expired:
                deadline._socks.append(dup)
                deadline._conns.append(conn)
                return
        conn._hookagent_spent = True
        _shut(dup)
        dup.close()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for deadline in [d for d in self._armed if d.at <= now]:
                    self._armed.discard(deadline)
                    deadline.expired = True
                    for conn in deadline._conns:
                        conn._hookagent_spent = True
                    for sock in deadline._socks:
                        _shut(sock)
                self._wake_at = min((d.at for d in self._armed), default=math.inf)
                self._cond.wait(None if self._wake_at == math.inf else self._wake_at - now)


def _shut(sock: socket.socket) -> None:
    """Wake whatever waits on ``sock`` and make its close an abort: a reset, the unsent part of a
    body dropped (a graceful close would leave it queued in the kernel for a server that reads a
    byte at a time, and that server would never hear we left)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _ABORT)
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass   # the peer closed first, or it never connected


_ABORT = struct.pack("ii", 1, 0)   # SO_LINGER on, 0 s: close resets
_WATCHDOG = _Watchdog()
_active = threading.local()


def _reset_after_fork() -> None:
    global _WATCHDOG, _active
    _WATCHDOG, _active = _Watchdog(), threading.local()   # the thread and its lock stayed behind


os.register_at_fork(after_in_child=_reset_after_fork)


@contextlib.contextmanager
def running(seconds: float) -> Iterator[Deadline]:
    """The body runs one request (on a session with :class:`DeadlineAdapter` mounted) that must
    end within ``seconds``; afterwards ``deadline.expired`` says whether it was cut off."""
    deadline = Deadline(seconds)
    _WATCHDOG.arm(deadline)
    _active.deadline = deadline
    try:
        yield deadline
    finally:
        _active.deadline = None
        _WATCHDOG.disarm(deadline)


def _current() -> Deadline | None:
    return getattr(_active, "deadline", None)


# ---------------------------------------------------------------------- urllib3's side
class _Watched:
    """Mixed into urllib3's connection classes: hand the current request the socket."""

    _hookagent_spent = False

    def _new_conn(self) -> socket.socket:
        deadline = _current()
        if deadline is not None and isinstance(self.timeout, (int, float)):   # type: ignore[attr-defined]
            # Connecting gets what is left of the deadline, not a fresh timeout.
            self.timeout = min(self.timeout, max(deadline.left(), 0.001))   # type: ignore[attr-defined]
        sock = super()._new_conn()   # type: ignore[misc]
        if deadline is not None:
            _WATCHDOG.watch(deadline, sock, self)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> Any:
        deadline = _current()
        sock = self.sock   # type: ignore[attr-defined]
        if deadline is not None and sock is not None:   # a kept-alive connection: no _new_conn
            _WATCHDOG.watch(deadline, sock, self)
        return super().request(*args, **kwargs)   # type: ignore[misc]


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _Spent:
    """Mixed into urllib3's pools: a connection whose socket the watchdog shut down is closed
    when it is handed out again (the next request connects afresh), never reused."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)   # type: ignore[misc]
        if conn is not None and conn._hookagent_spent:
            conn.close()
            conn._hookagent_spent = False
        return conn


class _HTTPConnectionPool(_Spent, HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(_Spent, HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter with pools whose connections :func:`running` can cut off."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager
