"""A local Tracker-compatible receiver for the demo, the tests and users trying hookagent.

Endpoints (the paths of Pivotal Tracker's source_commits API):

* ``POST /services/v3/source_commits``: ``Content-Type: application/xml`` (or ``text/xml``), body
  ``<source_commit><message/><author/><commit_id/><url/></source_commit>``; 200 with an XML
  ``<comments>`` document listing the comments created.
* ``POST /services/v5/source_commits``: ``Content-Type: application/json``, body
  ``{"source_commit": {"message", "author", "commit_id", "url"}}``; 200 with a JSON array of the
  comments created (Tracker's v5 comment resources, abridged).
* ``POST /services/v3/github_commits``: GitHub's push webhook payload (``tracker.api:
  github-push``), as a form field (``application/x-www-form-urlencoded``, exactly one field
  ``payload=<JSON>``) or as the body (``application/json``). Checked strictly against the fields
  GitHub documents for a push event (:func:`parse_github_push`); each commit in ``commits`` is
  then recorded like one source_commit (``api: "github-push"``, plus its ``ref``). 200 with a JSON
  array of the comments created. ``pushes()`` keeps every accepted payload.
* ``GET /`` an HTML page of the stories; ``GET /api/stories`` and ``GET /api/received`` JSON.

Every POST needs the ``X-TrackerToken`` header: missing or wrong is 403 (v3: an XML ``<errors>``
document; v5 and github_commits: Tracker's JSON error, ``{"kind": "error", "code": "invalid_authentication", ...}``).
Parsing is strict, so a sink's mistakes show: wrong content type, malformed or non-UTF-8 body,
a DTD, a wrong root, unknown or repeated fields, a field that is not text, an empty ``message``
or ``commit_id`` are all 400 with a body saying what was wrong. ``author`` and ``url`` may be
left out. Unknown paths are 404. The GET pages need no token: this is a local tool.

Stories: with ``stories=None`` any story id a commit references is created on first sight;
with a list only those exist, and references to others are ignored (still 200, as Tracker
does). A commit adds one comment to each story it references; "finished"/"delivered" keywords
(``hookagent.refs``) move the story forward (started < finished < delivered, never back).

Fault injection: with ``chaos=p`` each POST fails with probability p (seeded RNG), evenly among
500, 502, 503, 429 with ``Retry-After: 1``, and a connection reset (the socket closed with
SO_LINGER 0, no answer). A failed request changes nothing and is not in ``received()``;
``requests_seen()`` counts every request, failed or not. ``delay`` sleeps before each answer.

Holding: ``hold(after=n)`` answers n more POSTs, then keeps each further one waiting (its body
read, nothing recorded yet) until ``release()`` or another ``hold()``; ``held()`` says how many
wait. A test can so act while a request is surely in flight (kill or stop the client then),
whatever the speed of the machine, where a ``delay`` would only make that likely.

Standard library only (no requests), so it starts fast and runs anywhere.
"""
from __future__ import annotations

import copy
import datetime as _dt
import hmac
import html
import json
import logging
import random
import socket
import struct
import threading
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable

from hookagent import refs
from hookagent.model import DELIVERED, FINISHED

log = logging.getLogger("hookagent.devserver")

V3_PATH = "/services/v3/source_commits"
V5_PATH = "/services/v5/source_commits"
GITHUB_PATH = "/services/v3/github_commits"
FIELDS = ("message", "author", "commit_id", "url")
REQUIRED = ("message", "commit_id")
MAX_BODY = 16 * 1024 * 1024
FAULTS = ("500", "502", "503", "429", "reset")
_STATE_ORDER = {"started": 0, FINISHED: 1, DELIVERED: 2}
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            411: "Length Required", 413: "Payload Too Large", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class BadRequest(Exception):
    """The body cannot be accepted; the message says what was wrong (sent back with a 400)."""


class _Store:
    """Stories, accepted commits and counters, behind one lock."""

    def __init__(self, stories: Iterable[int] | None) -> None:
        self.lock = threading.Lock()
        self.auto_create = stories is None
        self.stories: dict[int, dict[str, Any]] = {}
        for sid in stories or ():
            self.stories[int(sid)] = _new_story(int(sid))
        self.received: list[dict[str, Any]] = []
        self.pushes: list[dict[str, Any]] = []
        self.requests = 0
        self.connections = 0
        self.next_comment_id = 1

    def apply(self, record: dict[str, Any], api: str) -> list[dict[str, Any]]:
        """Record one accepted source_commit; return the comments it created."""
        found = refs.parse(record["message"])
        created = []
        now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self.lock:
            self.received.append(dict(record, api=api))
            for ref in found:
                story = self.stories.get(ref.id)
                if story is None:
                    if not self.auto_create:
                        continue
                    story = self.stories[ref.id] = _new_story(ref.id)
                head = f"Commit by {record['author']}" if record["author"] else "Commit"
                text = "\n".join(filter(None, [head, record["url"]])) + "\n\n" + record["message"]
                comment = {"id": self.next_comment_id, "story_id": ref.id, "text": text,
                           "author": record["author"], "commit_id": record["commit_id"],
                           "url": record["url"], "message": record["message"], "created_at": now}
                self.next_comment_id += 1
                story["comments"].append(comment)
                if ref.state and _STATE_ORDER[ref.state] > _STATE_ORDER[story["current_state"]]:
                    story["current_state"] = ref.state
                created.append(dict(comment))
        return created


def _new_story(sid: int) -> dict[str, Any]:
    return {"id": sid, "name": f"Story #{sid}", "current_state": "started", "comments": []}


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
        else:
            self._json(404, {"kind": "error", "code": "route_not_found",
                             "error": f"no page at {path}; try /, /api/stories or /api/received"})

    do_HEAD = do_GET

    # ------------------------------------------------------------------ POST
    def do_POST(self) -> None:
        dev = self.server.dev
        dev._count_request()
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
        fault = dev._draw_fault()
        if fault is not None:
            self._fail(api, fault)
            return
        if not hmac.compare_digest(self.headers.get("X-TrackerToken", "").encode("utf-8", "replace"),
                                   dev.token.encode("utf-8")):
            self._error(api, 403, "Invalid authentication credentials were presented: send the"
                        " project token in the X-TrackerToken header.", "invalid_authentication")
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
            self._json(200, _comments_json(created, "github"))
            return
        try:
            record = parse_v3(self.headers, body) if api == "v3" else parse_v5(self.headers, body)
        except BadRequest as exc:
            self._error(api, 400, str(exc), "invalid_parameter")
            return
        created = dev._store.apply(record, api)
        if api == "v3":
            root = ET.Element("comments", {"type": "array", "count": str(len(created))})
            for c in created:
                el = ET.SubElement(root, "comment")
                for key in ("id", "story_id", "text", "author", "commit_id", "created_at"):
                    ET.SubElement(el, key).text = str(c[key])
            self._xml(200, root)
        else:
            self._json(200, _comments_json(created, "hookagent-devserver"))

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
        headers = {"Retry-After": "1"} if status == 429 else None
        self._error(api, status, f"injected fault ({status}): try again later", "chaos", headers)


# ---------------------------------------------------------------------- body parsing
def _media_type(headers) -> str:
    return (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


def parse_v3(headers, body: bytes) -> dict[str, Any]:
    """The source_commit record in a v3 XML body; BadRequest says what is wrong."""
    ctype = _media_type(headers)
    if ctype not in ("application/xml", "text/xml"):
        raise BadRequest(f"Content-Type must be application/xml for v3, got {ctype or 'none'!r}")
    if b"<!DOCTYPE" in body.upper():
        raise BadRequest("document type declarations (DTDs) are not accepted; send the bare"
                         " <source_commit> element")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise BadRequest(f"malformed XML: {exc}; build the body with an XML library") from None
    if root.tag != "source_commit":
        raise BadRequest(f"the root element must be <source_commit>, got <{root.tag}>")
    record: dict[str, Any] = {}
    for child in root:
        if child.tag not in FIELDS:
            raise BadRequest(f"unknown element <{child.tag}> in <source_commit>; expected"
                             f" {', '.join(FIELDS)}")
        if child.tag in record:
            raise BadRequest(f"<{child.tag}> given twice")
        if len(child):
            raise BadRequest(f"<{child.tag}> must hold text, not elements")
        record[child.tag] = child.text or ""
    return _complete(record)


def parse_v5(headers, body: bytes) -> dict[str, Any]:
    """The source_commit record in a v5 JSON body; BadRequest says what is wrong."""
    ctype = _media_type(headers)
    if ctype != "application/json":
        raise BadRequest(f"Content-Type must be application/json for v5, got {ctype or 'none'!r}")
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 ({exc}); encode JSON as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}; build the body with a JSON library") from None
    if not isinstance(data, dict) or set(data) != {"source_commit"}:
        raise BadRequest('the body must be an object with one key, "source_commit"')
    inner = data["source_commit"]
    if not isinstance(inner, dict):
        raise BadRequest('"source_commit" must be an object')
    record: dict[str, Any] = {}
    for key, value in inner.items():
        if key not in FIELDS:
            raise BadRequest(f"unknown field {key!r} in source_commit; expected {', '.join(FIELDS)}")
        if value is None and key in ("author", "url"):
            continue
        if not isinstance(value, str):
            raise BadRequest(f"source_commit.{key} must be a string")
        record[key] = value
    return _complete(record)


def _complete(record: dict[str, Any]) -> dict[str, Any]:
    for key in REQUIRED:
        if not (record.get(key) or "").strip():
            raise BadRequest(f"source_commit.{key} is missing or empty; it is required")
    return {"message": record["message"], "author": record.get("author") or "",
            "commit_id": record["commit_id"], "url": record.get("url") or None}


_HEX = frozenset("0123456789abcdef")


def _is_sha(value: Any) -> bool:
    return isinstance(value, str) and len(value) in (40, 64) and set(value) <= _HEX


def _iso_with_offset(value: Any) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        when = _dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return False
    return when.tzinfo is not None


def _check_person(where: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be an object with name and email")
    if not isinstance(value.get("name"), str):
        raise BadRequest(f"{where}.name is missing or not a string")
    if "email" not in value or not (value["email"] is None or isinstance(value["email"], str)):
        raise BadRequest(f"{where}.email is missing, or neither a string nor null")
    if "username" in value and not isinstance(value["username"], str):
        raise BadRequest(f"{where}.username must be a string when given")


def _check_push_commit(where: str, c: Any) -> None:
    if not isinstance(c, dict):
        raise BadRequest(f"{where} must be an object")
    if not _is_sha(c.get("id")):
        raise BadRequest(f"{where}.id must be a full lowercase hex commit id")
    if "tree_id" in c and not _is_sha(c["tree_id"]):
        raise BadRequest(f"{where}.tree_id must be a full lowercase hex tree id")
    if not isinstance(c.get("distinct"), bool):
        raise BadRequest(f"{where}.distinct is missing or not true/false")
    if not isinstance(c.get("message"), str) or not c["message"].strip():
        raise BadRequest(f"{where}.message is missing or empty")
    if not _iso_with_offset(c.get("timestamp")):
        raise BadRequest(f"{where}.timestamp must be ISO 8601 with a UTC offset, got {c.get('timestamp')!r}")
    if not isinstance(c.get("url"), str):
        raise BadRequest(f"{where}.url is missing or not a string")
    _check_person(f"{where}.author", c.get("author"))
    _check_person(f"{where}.committer", c.get("committer"))
    for key in ("added", "removed", "modified"):
        files = c.get(key)
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise BadRequest(f"{where}.{key} must be a list of paths")


def parse_github_push(headers, body: bytes) -> dict[str, Any]:
    """A GitHub push event payload (form ``payload=`` or JSON body); BadRequest says what is wrong.

    Required, as GitHub documents the push event: ref, before, after (hex ids), created, deleted,
    forced (booleans), compare (string), commits (each: id, distinct, message, timestamp with
    offset, url, author and committer {name, email}, added/removed/modified), head_commit (a commit
    or null), repository {name, full_name, url}, pusher {name, email}. Unknown fields are allowed
    (GitHub adds fields over time and receivers ignore them).
    """
    ctype = _media_type(headers)
    if ctype == "application/x-www-form-urlencoded":
        from urllib.parse import parse_qs
        try:
            form = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=True,
                            encoding="utf-8", errors="strict")
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"malformed form body ({exc}); send payload=<url-encoded JSON>") from None
        if set(form) != {"payload"} or len(form["payload"]) != 1:
            raise BadRequest("the form must have exactly one field, payload, holding the JSON")
        text = form["payload"][0]
    elif ctype == "application/json":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"the body is not UTF-8 ({exc}); encode JSON as UTF-8") from None
    else:
        raise BadRequest("Content-Type must be application/x-www-form-urlencoded (payload=<JSON>) or"
                         f" application/json for a GitHub push payload, got {ctype or 'none'!r}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}; build the payload with a JSON library") from None
    if not isinstance(data, dict):
        raise BadRequest("the payload must be a JSON object")
    if not isinstance(data.get("ref"), str) or not data["ref"]:
        raise BadRequest("ref is missing or not a string (a full ref like refs/heads/main)")
    for key in ("before", "after"):
        if not _is_sha(data.get(key)):
            raise BadRequest(f"{key} must be a full lowercase hex commit id (40 zeros for none)")
    for key in ("created", "deleted", "forced"):
        if not isinstance(data.get(key), bool):
            raise BadRequest(f"{key} is missing or not true/false")
    if not isinstance(data.get("compare"), str):
        raise BadRequest("compare is missing or not a string")
    commits = data.get("commits")
    if not isinstance(commits, list):
        raise BadRequest("commits is missing or not a list")
    for i, c in enumerate(commits):
        _check_push_commit(f"commits[{i}]", c)
    if "head_commit" not in data:
        raise BadRequest("head_commit is missing (null is allowed)")
    if data["head_commit"] is not None:
        _check_push_commit("head_commit", data["head_commit"])
    repo = data.get("repository")
    if not isinstance(repo, dict):
        raise BadRequest("repository is missing or not an object")
    for key in ("name", "full_name", "url"):
        if not isinstance(repo.get(key), str) or not repo[key]:
            raise BadRequest(f"repository.{key} is missing or not a non-empty string")
    _check_person("pusher", data.get("pusher"))
    return data


# ---------------------------------------------------------------------- the server
def _comments_json(created: list[dict[str, Any]], commit_type: str) -> list[dict[str, Any]]:
    """The comments a v5 or github_commits request created, as Tracker's JSON answer lists them."""
    return [{"kind": "comment", "id": c["id"], "story_id": c["story_id"], "text": c["text"],
             "commit_identifier": c["commit_id"], "commit_type": commit_type, "created_at": c["created_at"]}
            for c in created]


class DevServer:
    """A Tracker-compatible receiver on a local port, serving from a daemon thread.

    Use as a context manager (``with DevServer(token="t") as s: s.url``) or start()/stop().
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str = "devtoken",
                 stories: Iterable[int] | None = None, *, chaos: float = 0.0,
                 seed: int | None = None, delay: float = 0.0) -> None:
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
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._store = _Store(stories)
        self._gate = threading.Condition()
        self._budget: int | None = None    # POSTs still answered before the hold; None: no hold
        self._holding = 0                  # POSTs waiting at the hold now
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "DevServer":
        if self._httpd is not None:
            raise RuntimeError("this DevServer is already started")
        self._httpd = _HttpServer((self.host, self.port), self)
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
        return f"http://{host}:{self.port}"

    # ------------------------------------------------------------------ what it holds
    def stories(self) -> dict[int, dict[str, Any]]:
        """A snapshot: story id -> {"id", "name", "current_state", "comments": [...]}."""
        with self._store.lock:
            return copy.deepcopy(self._store.stories)

    def received(self) -> list[dict[str, Any]]:
        """Every accepted source_commit, in arrival order (duplicates included)."""
        with self._store.lock:
            return [dict(r) for r in self._store.received]

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

    # ------------------------------------------------------------------ holding requests
    def hold(self, after: int = 0) -> None:
        """Answer ``after`` more POSTs, then keep each further one waiting, its body read and
        nothing recorded, until release() or the next hold(). POSTs already waiting count
        among the ``after``."""
        if after < 0:
            raise ValueError(f"after must be 0 or more requests, got {after}")
        with self._gate:
            self._budget = after
            self._gate.notify_all()

    def release(self) -> None:
        """End the hold: waiting POSTs go on (and are recorded), new ones are answered at once."""
        with self._gate:
            self._budget = None
            self._gate.notify_all()

    def held(self) -> int:
        """POSTs waiting at the hold now."""
        with self._gate:
            return self._holding

    # ------------------------------------------------------------------ internals
    def _take_turn(self) -> None:
        """Wait while a hold says so, then use one of the answers it still allows."""
        with self._gate:
            if self._budget is not None and self._budget <= 0:
                self._holding += 1
                try:
                    while self._budget is not None and self._budget <= 0:
                        self._gate.wait()
                finally:
                    self._holding -= 1
            if self._budget is not None:
                self._budget -= 1

    def _count_request(self) -> None:
        with self._store.lock:
            self._store.requests += 1

    def _draw_fault(self) -> str | None:
        if self.chaos <= 0.0:
            return None
        with self._rng_lock:
            if self._rng.random() >= self.chaos:
                return None
            return self._rng.choice(FAULTS)

    def render_html(self) -> str:
        stories = self.stories()
        e = html.escape
        parts = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8">',
                 "<title>hookagent devserver</title></head><body>",
                 f"<h1>hookagent devserver</h1><p>{len(stories)} stories, "
                 f"{len(self.received())} commits received.</p>"]
        for sid in sorted(stories):
            story = stories[sid]
            parts.append(f"<h2>{e(story['name'])} <small>({e(story['current_state'])})</small></h2><ul>")
            for c in story["comments"]:
                link = (f' <a href="{e(c["url"])}">{e(c["url"])}</a>'
                        if c["url"] and c["url"].lower().startswith(("http://", "https://")) else "")
                parts.append(f"<li><b>{e(c['author'])}</b> <code>{e(str(c['commit_id']))}</code>"
                             f"{link}<pre>{e(c['message'])}</pre></li>")
            parts.append("</ul>")
        parts.append("</body></html>")
        return "\n".join(parts)
