"""The receiver's HTTP side: a threading server on a local port, its request handler, and
:class:`DevServer`, which starts and stops it and shows what it holds.

Fault injection: with ``chaos=p`` each POST fails with probability p (seeded RNG), evenly among
500, 502, 503, 429 with ``Retry-After: 1``, and a connection reset (the socket closed with
SO_LINGER 0, no answer). A failed request changes nothing and is not in ``received()``;
``requests_seen()`` counts every request, failed or not. ``delay`` sleeps before each answer.
``faults=`` narrows what chaos draws (``("503",)``), ``retry_after=`` is the Retry-After its 503s
and 429s carry (default: 429 only, 1 s). ``fail_next(n, status)`` answers the next n POSTs with
that status, whatever chaos says. ``max_in_flight()``: the most POSTs it was answering at once
(a client's concurrency, seen from the server).

Holding: ``hold(after=n)`` answers n more POSTs, then keeps each further one waiting (its body
read, nothing recorded yet) until ``release()`` or another ``hold()``; ``held()`` says how many
wait. A test can so act while a request is surely in flight (kill or stop the client then),
whatever the speed of the machine, where a ``delay`` would only make that likely.

TLS: ``tls=`` a server SSLContext (a test's own certificate) serves https.
"""
from __future__ import annotations

import copy
import hmac
import json
import logging
import random
import socket
import ssl
import struct
import threading
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from typing import Any, Iterable

from hookagent.devserver import page
from hookagent.devserver.store import Store
from hookagent.devserver.wire import (GITHUB_PATH, V3_ACTIVITIES_PATH, V3_PATH, V5_ME_PATH, V5_PATH, BadRequest,
                                      activities_xml, comments_json, comments_xml, me_json, parse_github_push,
                                      parse_v3, parse_v5)

log = logging.getLogger("hookagent.devserver")

MAX_BODY = 16 * 1024 * 1024
FAULTS = ("500", "502", "503", "429", "reset")
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 413: "Payload Too Large", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], dev: "DevServer") -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.dev = dev
        self.to_reset: set[socket.socket] = set()
        self.open_connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_activate(self) -> None:
        super().server_activate()
        # serve_forever accepts after its selector said a connection waits; if it is gone by
        # then (taken by another accepting thread, or reset), a blocking accept would wait for
        # the next one and stop() could never end. Non-blocking, that is one skipped turn.
        self.socket.setblocking(False)

    def get_request(self):  # type: ignore[override]
        try:
            conn, addr = self.socket.accept()
        except BlockingIOError:
            raise OSError("the waiting connection went before it was accepted") from None
        conn.setblocking(True)
        return conn, addr

    def process_request(self, request, client_address):  # type: ignore[override]
        with self.conn_lock:
            self.open_connections.add(request)
        with self.dev._store.lock:
            self.dev._store.connections += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[override]
        with self.conn_lock:
            self.open_connections.discard(request)
            reset = request in self.to_reset
            self.to_reset.discard(request)
        if reset:
            self.close_request(request)   # no FIN first: SO_LINGER 0 makes close() send RST
        else:
            super().shutdown_request(request)

    def handle_error(self, request, client_address):  # type: ignore[override]
        log.debug("error while serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"      # keep-alive; every answer carries Content-Length
    disable_nagle_algorithm = True     # TCP_NODELAY: no delayed-ACK stall between our two writes
    server_version = "hookagent-devserver"
    timeout = 120                      # an idle keep-alive connection is dropped after this
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
        log.debug("%s %s", self.address_string(), format % args)

    # ------------------------------------------------------------------ answers
    def _answer(self, status: int, body: bytes, content_type: str,
                headers: dict[str, str] | None = None) -> None:
        self.send_response(status, _REASONS.get(status))
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")
        self._answer(status, body, "application/json; charset=utf-8", headers)

    def _xml(self, status: int, root: ET.Element, headers: dict[str, str] | None = None) -> None:
        body = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
        self._answer(status, body, "application/xml; charset=utf-8", headers)

    def _error(self, api: str, status: int, message: str, code: str,
               headers: dict[str, str] | None = None) -> None:
        if api == "v3":
            root = ET.Element("errors")
            ET.SubElement(root, "error").text = message
            self._xml(status, root, headers)
        else:
            self._json(status, {"kind": "error", "code": code, "error": message}, headers)

    # ------------------------------------------------------------------ GET
    def do_GET(self) -> None:
        dev = self.server.dev
        dev._count_request()
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._answer(200, dev.render_html().encode("utf-8"), "text/html; charset=utf-8")
        elif path == "/api/stories":
            self._json(200, [dev.stories()[k] for k in sorted(dev.stories())])
        elif path == "/api/received":
            self._json(200, dev.received())
        elif path in (V5_ME_PATH, V3_ACTIVITIES_PATH):
            api = "v5" if path == V5_ME_PATH else "v3"
            if not self._token_ok(dev):
                self._refuse_token(api)
            elif api == "v5":
                self._json(200, me_json())
            else:
                self._xml(200, activities_xml(dev.comments(), _limit(self.path)))
        elif path in (V3_PATH, V5_PATH, GITHUB_PATH):
            self._error("v3" if path == V3_PATH else "v5", 405, f"{path} takes POST only", "method_not_allowed",
                        {"Allow": "POST"})
        else:
            self._json(404, {"kind": "error", "code": "route_not_found",
                             "error": f"no page at {path}; try /, /api/stories or /api/received"})

    do_HEAD = do_GET

    # ------------------------------------------------------------------ POST
    def do_POST(self) -> None:
        dev = self.server.dev
        dev._count_request()
        dev._in_flight(+1)
        try:
            self._post(dev)
        finally:
            dev._in_flight(-1)

    def _post(self, dev: "DevServer") -> None:
        path = self.path.split("?", 1)[0]
        api = {V3_PATH: "v3", V5_PATH: "v5", GITHUB_PATH: "github-push"}.get(path)
        body = self._read_body(api or "v5")
        if body is None:
            return
        dev._take_turn()
        if dev.delay:
            time.sleep(dev.delay)
        if api is None:
            self._json(404, {"kind": "error", "code": "route_not_found",
                             "error": f"no endpoint at {path}; POST to {V3_PATH}, {V5_PATH}"
                                      f" or {GITHUB_PATH}"})
            return
        fault = dev._scripted_fault() or dev._draw_fault()
        if fault is not None:
            self._fail(api, fault)
            return
        if not self._token_ok(dev):
            self._refuse_token(api)
            return
        if api == "github-push":
            try:
                payload = parse_github_push(self.headers, body)
            except BadRequest as exc:
                self._error(api, 400, str(exc), "invalid_parameter")
                return
            with dev._store.lock:
                dev._store.pushes.append(payload)
            created = []
            for c in payload["commits"]:
                record = {"message": c["message"], "author": c["author"]["name"], "commit_id": c["id"],
                          "url": c["url"] or None, "ref": payload["ref"]}
                created += dev._store.apply(record, api)
            self._json(200, comments_json(created, "github"))
            return
        try:
            record = parse_v3(self.headers, body) if api == "v3" else parse_v5(self.headers, body)
        except BadRequest as exc:
            self._error(api, 400, str(exc), "invalid_parameter")
            return
        created = dev._store.apply(record, api)
        if api == "v3":
            self._xml(200, comments_xml(created))
        else:
            self._json(200, comments_json(created, "hookagent-devserver"))

    def _token_ok(self, dev: "DevServer") -> bool:
        return hmac.compare_digest(self.headers.get("X-TrackerToken", "").encode("utf-8", "replace"),
                                   dev.token.encode("utf-8"))

    def _refuse_token(self, api: str) -> None:
        self._error(api, 403, "Invalid authentication credentials were presented: send the"
                    " project token in the X-TrackerToken header.", "invalid_authentication")

    def _read_body(self, api: str) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._error(api, 411, "chunked bodies are not accepted: send Content-Length",
                        "length_required", {"Connection": "close"})
            return None
        raw = self.headers.get("Content-Length")
        try:
            length = int(raw) if raw is not None else -1
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._error(api, 411, "a POST needs a valid Content-Length header", "length_required",
                        {"Connection": "close"})
            return None
        if length > MAX_BODY:
            self.close_connection = True
            self._error(api, 413, f"body larger than {MAX_BODY} bytes", "request_too_large",
                        {"Connection": "close"})
            return None
        return self.rfile.read(length)

    def _fail(self, api: str, fault: str) -> None:
        log.info("chaos: %s for %s", fault, self.path)
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with self.server.conn_lock:
                self.server.to_reset.add(self.connection)
            self.close_connection = True
            return
        status = int(fault)
        dev = self.server.dev
        headers = None
        if dev.retry_after is not None and status in (429, 503):
            headers = {"Retry-After": f"{dev.retry_after:g}"}
        elif status == 429:
            headers = {"Retry-After": "1"}
        self._error(api, status, f"injected fault ({status}): try again later", "chaos", headers)


def _limit(target: str, default: int = 10) -> int:
    """``limit`` of a request's query string (v3's activity feed), else the default."""
    from urllib.parse import parse_qs, urlsplit
    try:
        return int(parse_qs(urlsplit(target).query).get("limit", [default])[0])
    except ValueError:
        return default


class DevServer:
    """A Tracker-compatible receiver on a local port, serving from a daemon thread.

    Use as a context manager (``with DevServer(token="t") as s: s.url``) or start()/stop().
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str = "devtoken",
                 stories: Iterable[int] | None = None, *, chaos: float = 0.0,
                 seed: int | None = None, delay: float = 0.0, tls: ssl.SSLContext | None = None,
                 faults: Iterable[str] = FAULTS, retry_after: float | None = None) -> None:
        if not 0.0 <= chaos <= 1.0:
            raise ValueError(f"chaos must be a probability between 0 and 1, got {chaos}")
        if delay < 0:
            raise ValueError(f"delay must be 0 or more seconds, got {delay}")
        if not token:
            raise ValueError("token must not be empty")
        self.host = host
        self.port = port
        self.token = token
        self.chaos = chaos
        self.delay = delay
        self.faults = tuple(faults)
        if not self.faults or set(self.faults) - set(FAULTS):
            raise ValueError(f"faults must be some of {', '.join(FAULTS)}, got {faults!r}")
        self.retry_after = retry_after
        self._scripted: list[str] = []     # faults for the next POSTs (fail_next)
        self._busy = 0                     # POSTs being answered now
        self._busy_most = 0
        self.tls = tls          # a server context: https (a test's own certificate)
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._store = Store(stories)
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._gate = threading.Condition()
        self._budget: int | None = None    # POSTs still answered before the hold; None: no hold
        self._holding = 0                  # POSTs waiting at the hold now
        self._then: Callable[[], object] | None = None   # called as each starts to wait

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "DevServer":
        if self._httpd is not None:
            raise RuntimeError("this DevServer is already started")
        self._httpd = _HttpServer((self.host, self.port), self)
        if self.tls is not None:
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"devserver:{self.port}", daemon=True)
        self._thread.start()
        log.info("devserver listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections. Safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.release()   # a held request must not keep its thread (and its connection) forever
        httpd.shutdown()
        httpd.server_close()
        with httpd.conn_lock:
            conns = list(httpd.open_connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> "DevServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None and self.port == 0:
            raise RuntimeError("the DevServer has no port yet: call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls is not None else 'http'}://{host}:{self.port}"

    # ------------------------------------------------------------------ what it holds
    def stories(self) -> dict[int, dict[str, Any]]:
        """A snapshot: story id -> {"id", "name", "current_state", "comments": [...]}."""
        with self._store.lock:
            return copy.deepcopy(self._store.stories)

    # ------------------------------------------------------------------ holding requests
    def hold(self, after: int = 0, then: Callable[[], object] | None = None) -> None:
        """Answer ``after`` more POSTs, then keep each further one waiting, its body read and
        nothing recorded, until release() or the next hold(). POSTs already waiting count
        among the ``after``. ``then``: called in the server's thread as each POST starts to wait
        (a test stops or kills its client there, sure that the request is in flight)."""
        if after < 0:
            raise ValueError(f"after must be 0 or more requests, got {after}")
        with self._gate:
            self._budget = after
            self._then = then
            self._gate.notify_all()

    def release(self) -> None:
        """End the hold: waiting POSTs go on (and are recorded), new ones are answered at once."""
        with self._gate:
            self._budget = None
            self._then = None
            self._gate.notify_all()

    def held(self) -> int:
        """POSTs waiting at the hold now."""
        with self._gate:
            return self._holding

    def _take_turn(self) -> None:
        """Wait while a hold says so, then use one of the answers it still allows."""
        with self._gate:
            if self._budget is not None and self._budget <= 0:
                self._holding += 1
                try:
                    if self._then is not None:
                        try:
                            self._then()
                        except Exception:   # the test's callback: said, and the hold goes on
                            log.exception("the hold's callback failed")
                    while self._budget is not None and self._budget <= 0:
                        self._gate.wait()
                finally:
                    self._holding -= 1
            if self._budget is not None:
                self._budget -= 1

    def received(self) -> list[dict[str, Any]]:
        """Every accepted source_commit, in arrival order (duplicates included)."""
        with self._store.lock:
            return [dict(r) for r in self._store.received]

    def comments(self) -> list[dict[str, Any]]:
        """Every comment the accepted commits made, on any story, oldest first."""
        with self._store.lock:
            return [dict(c) for story in self._store.stories.values() for c in story["comments"]]

    def pushes(self) -> list[dict[str, Any]]:
        """Every accepted GitHub push payload (POST /services/v3/github_commits), in arrival order."""
        with self._store.lock:
            return copy.deepcopy(self._store.pushes)

    def requests_seen(self) -> int:
        """Every HTTP request that reached the server, including failed and refused ones."""
        with self._store.lock:
            return self._store.requests

    def connections_seen(self) -> int:
        """TCP connections accepted so far (keep-alive clients reuse one)."""
        with self._store.lock:
            return self._store.connections

    # ------------------------------------------------------------------ internals
    def _count_request(self) -> None:
        with self._store.lock:
            self._store.requests += 1

    def _draw_fault(self) -> str | None:
        if self.chaos <= 0.0:
            return None
        with self._rng_lock:
            if self._rng.random() >= self.chaos:
                return None
            return self._rng.choice(self.faults)

    def fail_next(self, count: int = 1, status: int = 503) -> None:
        """Answer the next ``count`` POSTs with ``status`` (500, 502, 503 or 429; Retry-After as
        ``retry_after`` says), then as before."""
        if str(status) not in FAULTS:
            raise ValueError(f"status must be one of {', '.join(FAULTS[:-1])}, got {status}")
        with self._rng_lock:
            self._scripted += [str(status)] * count

    def _scripted_fault(self) -> str | None:
        with self._rng_lock:
            return self._scripted.pop(0) if self._scripted else None

    def _in_flight(self, step: int) -> None:
        with self._store.lock:
            self._busy += step
            self._busy_most = max(self._busy_most, self._busy)

    def max_in_flight(self) -> int:
        """The most POSTs this server was answering at the same moment so far."""
        with self._store.lock:
            return self._busy_most

    def render_html(self) -> str:
        return page.render(self.stories(), len(self.received()))
