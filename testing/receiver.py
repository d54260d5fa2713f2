"""A loopback HTTP receiver that answers each request as the test scripts it, and keeps them all.

``Recorder(fail={2: 400})`` answers the second POST 400; ``Recorder(answer=rule)`` asks
``rule(payload)`` (the decoded body: a GitHub push, a v5 record) for a status, None for 200.
Every request is kept with its headers, body and the status it got, so a test counts requests
and the commits they carried. TCP_NODELAY is set (a keep-alive client would otherwise wait for
a delayed ACK); a 503 carries ``Retry-After: 0``.
"""
from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable
from urllib.parse import parse_qs


def decode_body(ctype: str, body: bytes) -> dict:
    """The JSON a request carries: a form's single ``payload`` field (github-push's default), or
    the body itself (``application/json``)."""
    if ctype.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode("ascii"), strict_parsing=True)
        assert list(form) == ["payload"] and len(form["payload"]) == 1
        return json.loads(form["payload"][0])
    assert ctype.startswith("application/json"), ctype
    return json.loads(body)


class Recorder:
    """A loopback receiver keeping every request (headers, body and the status it answered);
    fails the POSTs whose 1-based numbers are in ``fail`` with the given status, and those
    ``answer(payload)`` gives a status for."""

    def __init__(self, fail: dict[int, int] | None = None,
                 answer: Callable[[dict], int | None] | None = None) -> None:
        self.fail = dict(fail or {})
        self.answer = answer
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with rec.lock:
                    n = len(rec.requests) + 1
                    status = rec.fail.get(n, 200)
                    if status == 200 and rec.answer is not None:
                        status = rec.answer(decode_body(self.headers["Content-Type"], body)) or 200
                    rec.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                         "status": status})
                answer = b"{}" if status == 200 else json.dumps({"error": f"status {status}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def payloads(self) -> list[tuple[dict, int]]:
        """(decoded body, status answered) of each request, in arrival order."""
        with self.lock:
            kept = list(self.requests)
        return [(decode_body(r["headers"]["Content-Type"], r["body"]), r["status"]) for r in kept]

    def accepted(self) -> list[dict]:
        """The decoded bodies answered 200, in arrival order."""
        return [p for p, status in self.payloads() if status == 200]

    def sizes(self) -> list[tuple[int, int]]:
        """(commits, status) of each GitHub push request, in arrival order."""
        return [(len(p["commits"]), status) for p, status in self.payloads()]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
