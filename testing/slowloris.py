"""A slowloris on 127.0.0.1: a server that keeps a request alive by dripping one byte at a time,
in the phase a test picks, and counts the drips until the client hangs up.

Modes (``Slowloris.mode``, read when a connection is accepted, so a test may change it between
requests):

* ``HEAD``: reads the request, then sends the status line and headers a byte at a time, never
  ending them (``HTTP/1.1 200 OK``, then ``X-Drip: 1`` lines).
* ``READ_BODY``: reads the request's head, then its body one byte at a time, at the TCP level
  (under any TLS); send a body larger than the socket buffers (:func:`body_beyond_buffers`) so
  the client is stuck sending.
* ``BODY``: reads the request, sends a whole head (``status``, a ``Content-Length`` of a megabyte),
  then the body a byte at a time.
* ``ANSWER``: answers every request at once with 200 and ``{}`` (keep-alive), and keeps its body.

Each connection gets a :class:`Drips`: how many bytes were dripped and how it ended: ``"client"``
(the client shut its side down or reset the connection), ``"stopped"`` (the server stopped) or
``"gave up"`` (after ``give_up``
drips the server closes it: a client that never gives up ends there instead of hanging the test,
and its assertion on ``end`` fails). A test asserts on progress: the client hung up before the
server gave up, i.e. after fewer than ``give_up`` drips, never on elapsed time.

Generic (no hookagent imports).
"""
from __future__ import annotations

import select
import socket
import ssl
import threading

HEAD, READ_BODY, BODY, ANSWER = "head", "read-body", "body", "answer"
_HEAD_TEXT = b"HTTP/1.1 200 OK\r\n" + b"X-Drip: 1\r\n" * 90   # 90 lines: under http.client's 100


class Drips:
    """One connection: ``count`` bytes dripped so far; ``end`` None while it lasts."""

    def __init__(self) -> None:
        self.count = 0
        self.end: str | None = None


class Slowloris:
    def __init__(self, mode: str = HEAD, *, interval: float = 0.02, give_up: int = 500,
                 status: int = 200, tls: ssl.SSLContext | None = None) -> None:
        if not 0 < give_up <= len(_HEAD_TEXT):
            raise ValueError(f"give_up must be 1 to {len(_HEAD_TEXT)} drips, got {give_up}")
        self.mode, self.interval, self.give_up, self.status = mode, interval, give_up, status
        self.tls = tls
        self.connections: list[Drips] = []
        self.bodies: list[bytes] = []          # what ANSWER received
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._listener = socket.socket()
        # A small receive buffer (set before listen, so accepted sockets get it): a body larger
        # than the client's send buffer then really waits for READ_BODY's reads.
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> "Slowloris":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        # Wake the accepting thread before the socket goes: closing a socket another thread is
        # blocked accepting on does not wake it, and when a signal (SIGCHLD) interrupts that
        # accept, CPython retries it on the same descriptor number, which by then may be a later
        # server's listening socket: seen here, this thread stole the connections of the next
        # test's DevServer, whose own accept then blocked its shutdown for good.
        try:
            self._listener.shutdown(socket.SHUT_RDWR)   # a blocked accept returns (EINVAL)
        except OSError:
            pass
        if self._thread.ident is not None:
            self._thread.join(timeout=10)
        self._listener.close()
        for conn in self._conns:      # a serving thread blocked reading ends too
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def ended(self) -> bool:
        """Every connection so far has ended (for wait_until)."""
        return all(d.end is not None for d in self.connections)

    # ------------------------------------------------------------------ the server
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return   # closed at exit
            if self._stop.is_set():
                conn.close()
                return
            self._conns.append(conn)
            drips = Drips()
            self.connections.append(drips)
            threading.Thread(target=self._serve, args=(conn, self.mode, drips), daemon=True).start()

    def _serve(self, conn: socket.socket, mode: str, drips: Drips) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            if mode == ANSWER:
                self._answer(conn)
                drips.end = "client"
                return
            body_left = _read_head(conn)
            if mode != READ_BODY:
                _read_exactly(conn, body_left)
                out = _HEAD_TEXT if mode == HEAD else (
                    f"HTTP/1.1 {self.status} Slow\r\nContent-Length: 1048576\r\n\r\n".encode())
                if mode == BODY:
                    conn.sendall(out)
                    out = b"x" * 1048576
            hangup = select.poll()   # the client shut its side down, whatever is still buffered
            hangup.register(conn.fileno(), select.POLLRDHUP)
            while drips.count < self.give_up:
                if self._stop.wait(self.interval):
                    drips.end = "stopped"
                    return
                if hangup.poll(0):
                    drips.end = "client"
                    return
                if mode == READ_BODY:
                    # At the TCP level (under any TLS): a slowloris need not understand the body.
                    try:
                        if not socket.socket.recv(conn, 1, socket.MSG_DONTWAIT):
                            drips.end = "client"
                            return
                    except BlockingIOError:
                        pass   # nothing sent since the last drip
                else:
                    at = drips.count % len(out)
                    conn.sendall(out[at:at + 1])
                drips.count += 1
            drips.end = "gave up"
        except (OSError, ValueError):
            drips.end = "client"     # reset, or the handshake failed
        finally:
            conn.close()

    def _answer(self, conn: socket.socket) -> None:
        while True:
            try:
                left = _read_head(conn)
            except ConnectionError:
                return
            self.bodies.append(_read_exactly(conn, left))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")


def _read_head(conn: socket.socket) -> int:
    """Read the request's head; how many body bytes (its Content-Length) follow it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(1)   # a byte at a time: never into the body or the next request
        if not chunk:
            raise ConnectionError("the client closed before the end of the head")
        data += chunk
    length = 0
    for line in data.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return length


def _read_exactly(conn: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = conn.recv(min(n - len(data), 65536))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def body_beyond_buffers() -> int:
    """A body size the client cannot hand to the kernel whole: twice the largest TCP send
    buffer (net.ipv4.tcp_wmem) and a megabyte more."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            largest = int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        largest = 8 * 1024 * 1024
    return 2 * largest + 1024 * 1024
