"""Sinks against a real loopback HTTP server: bodies (golden XML), headers, and what every answer
means for the queue (RETRY / HOLD / DEAD)."""
from __future__ import annotations

import io
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest

from hookagent import __version__
from hookagent.errors import DEAD, HOLD, RETRY, ConfigError, DeliveryError
from hookagent.model import Commit
from hookagent.sinks import make_sink
from hookagent.xmltext import clean_text, xml_text
from testing import slowloris, tls
from testing.slowloris import Drips, Slowloris, body_beyond_buffers
from testing.wait import PATIENCE, wait_until

TOKEN = "c0ffee5ecret70ken4b1d"
GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("HOOKAGENT_UPDATE_GOLDEN") == "1"


# ---------------------------------------------------------------------- a tiny receiver
class Reply:
    def __init__(self, status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


class Received:
    def __init__(self, method: str, path: str, headers, body: bytes) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body


class Receiver:
    """A threaded HTTP/1.1 server on 127.0.0.1 that records what it gets and answers with
    ``responder(request)``. Counts accepted connections."""

    def __init__(self, responder: Callable[[Received], Reply] | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.responder = responder or (lambda req: Reply(200, b"<ok/>"))
        self.requests: list[Received] = []
        self.connections = 0
        self.release = threading.Event()   # set at stop: unblocks slow responders
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                req = Received("POST", self.path, self.headers, self.rfile.read(length))
                receiver.requests.append(req)
                reply = receiver.responder(req)
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if reply.status not in (204, 304):
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if reply.status not in (204, 304):
                    self.wfile.write(reply.body)

            do_GET = do_POST

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def get_request(self):
                conn, addr = super().get_request()
                receiver.connections += 1
                return conn, addr

            def handle_error(self, request, client_address) -> None:
                pass   # a client that gave up (timeout test) is not an error here

        self.server = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def sinks():
    made = []

    def make(api: str, url: str, token: str | None = TOKEN, **kw):
        s = make_sink(api, url, token, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def _error(sink, commit) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        sink.send(commit)
    return info.value


# ---------------------------------------------------------------------- commits and their text
SHA = "1f0c6a1e2d3b4c5d6e7f8091a2b3c4d5e6f70819"
HOSTILE = ("Fix <b>&amp;</b> \"quotes\" 'single' ]]> <![CDATA[x]]>"
           " \x00\x01\x1b\x7f \ud800\udfff \ufffe\uffff tab\there\r\nCRLF\rCR [#42]")
LATIN1 = b"Caf\xe9 na\xefve \xa9 \x85NEL \xa0nbsp [#7]".decode("latin-1")

COMMITS = {
    "plain": Commit(SHA, "Ada Tester", "Torpedoes now powered [fixes #123456]\n\nThe old ones leaked.\n",
                    url=f"https://git.example.com/ship/commit/{SHA}"),
    "hostile": Commit("r123", "O'Brien & <Sons> \x0c", HOSTILE, url="https://example.com/c?a=1&b=<2>"),
    "emoji_rtl": Commit("abc123", "Ζωή Ψ 😀", "🚀 Ship it [finishes #99] — שלום עולם مرحبا \u200f!\n"
                        "👩‍👩‍👧 family, 🇳🇱 flag, \U0010fffd private"),
    "latin1": Commit("deadbeef", "Jos\xe9 M\xfcller", LATIN1, url=""),
}

# What the tracker must read back, written out by hand (not computed by the code under test).
HOSTILE_V3 = ("Fix <b>&amp;</b> \"quotes\" 'single' ]]> <![CDATA[x]]>"
              " \x7f   tab\there\nCRLF\nCR [#42]")
HOSTILE_V5 = ("Fix <b>&amp;</b> \"quotes\" 'single' ]]> <![CDATA[x]]>"
              " \x7f   tab\there\r\nCRLF\rCR [#42]")
EXPECTED = {   # name -> (message v3, message v5, author, commit_id, url or None)
    "plain": (COMMITS["plain"].message, COMMITS["plain"].message, "Ada Tester", SHA, COMMITS["plain"].url),
    "hostile": (HOSTILE_V3, HOSTILE_V5, "O'Brien & <Sons> ", "r123", "https://example.com/c?a=1&b=<2>"),
    "emoji_rtl": (COMMITS["emoji_rtl"].message, COMMITS["emoji_rtl"].message, "Ζωή Ψ 😀", "abc123", None),
    "latin1": (LATIN1, LATIN1, "José Müller", "deadbeef", None),
}


def _golden(name: str, data: bytes) -> bytes:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.write_bytes(data)
    assert path.exists(), f"missing golden file {path}; create it with HOOKAGENT_UPDATE_GOLDEN=1 and review it"
    return path.read_bytes()


# ---------------------------------------------------------------------- bodies
@pytest.mark.parametrize("name", sorted(COMMITS))
def test_v3_body_matches_the_golden_file_byte_for_byte(name, sinks):
    body = sinks("v3", "http://127.0.0.1:9").render(COMMITS[name])
    assert body == _golden(f"v3_{name}.xml", body)


@pytest.mark.parametrize("name", sorted(COMMITS))
def test_v5_body_matches_the_golden_file_byte_for_byte(name, sinks):
    body = sinks("v5", "http://127.0.0.1:9").render(COMMITS[name])
    assert body == _golden(f"v5_{name}.json", body)


def test_v3_golden_files_start_with_an_utf8_declaration_and_escape_what_xml_needs():
    hostile = (GOLDEN / "v3_hostile.xml").read_bytes()
    assert hostile.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<source_commit>")
    assert b"]]&gt;" in hostile and b"&amp;amp;" in hostile and b"&lt;b&gt;" in hostile
    assert b"\x00" not in hostile and b"\x1b" not in hostile and b"\r" not in hostile


@pytest.mark.parametrize("name", sorted(COMMITS))
def test_v3_tracker_reads_back_the_original_text_minus_illegal_characters(name, receiver, sinks):
    sinks("v3", receiver.url).send(COMMITS[name])
    [req] = receiver.requests
    root = ET.fromstring(req.body)
    message, _, author, commit_id, url = EXPECTED[name]
    assert root.tag == "source_commit"
    assert root.findtext("message") == message
    assert root.findtext("author") == author
    assert root.findtext("commit_id") == commit_id
    assert root.findtext("url") == url   # None: the element is left out


@pytest.mark.parametrize("name", sorted(COMMITS))
def test_v5_tracker_reads_back_the_original_text_minus_illegal_characters(name, receiver, sinks):
    sinks("v5", receiver.url).send(COMMITS[name])
    [req] = receiver.requests
    _, message, author, commit_id, url = EXPECTED[name]
    expected = {"message": message, "author": author, "commit_id": commit_id}
    if url is not None:
        expected["url"] = url
    assert json.loads(req.body.decode("utf-8")) == {"source_commit": expected}


@pytest.mark.parametrize("api", ["v3", "v5"])
def test_a_one_megabyte_message_arrives_whole(api, receiver, sinks):
    message = ("Big [#1] & <stuff> ]]> " + "x" * 1000 + "\n") * 1024
    sinks(api, receiver.url).send(Commit("big", "Ada", message))
    [req] = receiver.requests
    if api == "v3":
        got = ET.fromstring(req.body).findtext("message")
    else:
        got = json.loads(req.body)["source_commit"]["message"]
    assert got == message and len(req.body) > 1_000_000


@pytest.mark.parametrize("api,path,ctype", [
    ("v3", "/services/v3/source_commits", "application/xml"),
    ("v5", "/services/v5/source_commits", "application/json"),
])
@pytest.mark.parametrize("suffix", ["", "/", "/tracker", "/tracker/"])
def test_request_line_and_headers(api, path, ctype, suffix, receiver, sinks):
    sink = sinks(api, receiver.url + suffix)
    assert sink.content_type == ctype
    sink.send(COMMITS["plain"])
    [req] = receiver.requests
    assert req.method == "POST"
    assert req.path == suffix.rstrip("/") + path
    assert req.headers["X-TrackerToken"] == TOKEN
    assert req.headers["Content-Type"] == ctype
    assert req.headers["User-Agent"] == f"hookagent/{__version__}"
    assert req.body == sink.render(COMMITS["plain"])


# ---------------------------------------------------------------------- answers
STATUS_TABLE = [
    (200, None), (201, None), (204, None),
    (301, HOLD), (302, HOLD), (307, HOLD), (308, HOLD),
    (400, DEAD), (401, HOLD), (403, HOLD), (404, HOLD), (408, RETRY), (409, DEAD), (413, DEAD),
    (422, DEAD), (425, RETRY), (429, RETRY),
    (500, RETRY), (502, RETRY), (503, RETRY), (504, RETRY),
]


@pytest.mark.parametrize("api", ["v3", "v5"])
@pytest.mark.parametrize("status,kind", STATUS_TABLE)
def test_each_status_maps_to_the_right_kind(api, status, kind, sinks):
    headers = {"Location": "http://127.0.0.1:9/elsewhere"} if 300 <= status < 400 else {}
    with Receiver(lambda req: Reply(status, b"answer text", headers)) as r:
        sink = sinks(api, r.url)
        if kind is None:
            sink.send(COMMITS["plain"])
            return
        err = _error(sink, COMMITS["plain"])
    assert err.kind == kind and err.status == status
    assert "\n" not in str(err)
    assert str(status) in str(err)


@pytest.mark.parametrize("status,words", [
    (401, ["refused the token", "tracker.token_file", "hookagent retry --held"]),
    (403, ["refused the token", "tracker.token_file", "hookagent retry --held"]),
    (404, ["does not exist", "tracker.url", "tracker.api"]),
    (302, ["http://127.0.0.1:9/elsewhere", "tracker.url", "never followed"]),
    (422, ["rejected", "dead/", "hookagent retry --dead", "answer text"]),
    (503, ["retry"]),
])
def test_messages_say_what_to_do(status, words, sinks):
    headers = {"Location": "http://127.0.0.1:9/elsewhere"} if status == 302 else {}
    with Receiver(lambda req: Reply(status, b"answer text", headers)) as r:
        err = _error(sinks("v3", r.url), COMMITS["plain"])
    for word in words:
        assert word in str(err)


def test_a_dead_entry_keeps_the_status_and_the_first_2kb_of_the_answer(sinks):
    answer = ("<errors><error>Story 99 not found</error></errors>" + "z" * 5000).encode()
    with Receiver(lambda req: Reply(422, answer)) as r:
        err = _error(sinks("v3", r.url), COMMITS["plain"])
    assert err.kind == DEAD and err.status == 422
    assert err.body == answer[:2048].decode()
    assert "Story 99 not found" in str(err) and len(str(err)) < 600


def _http_date(dt: datetime) -> str:
    return format_datetime(dt, usegmt=True)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds(status, sinks):
    with Receiver(lambda req: Reply(status, b"", {"Retry-After": "120"})) as r:
        err = _error(sinks("v5", r.url), COMMITS["plain"])
    assert err.kind == RETRY and err.retry_after == 120


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_as_an_http_date(status, sinks):
    when = datetime.now(timezone.utc) + timedelta(hours=2)
    with Receiver(lambda req: Reply(status, b"", {"Retry-After": _http_date(when)})) as r:
        err = _error(sinks("v3", r.url), COMMITS["plain"])
    assert err.kind == RETRY
    assert 3600 < err.retry_after <= 7200   # two hours, give or take how long the test took


@pytest.mark.parametrize("value", [None, "whenever", ""])
def test_missing_or_unreadable_retry_after_is_none(value, sinks):
    headers = {} if value is None else {"Retry-After": value}
    with Receiver(lambda req: Reply(429, b"", headers)) as r:
        err = _error(sinks("v3", r.url), COMMITS["plain"])
    assert err.kind == RETRY and err.retry_after is None


def _refusing_port() -> socket.socket:
    """A bound socket that never listens: connecting to it is refused (while it stays open)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


@pytest.mark.parametrize("api", ["v3", "v5"])
def test_connection_refused_is_retried(api, sinks):
    with _refusing_port() as s:
        err = _error(sinks(api, f"http://127.0.0.1:{s.getsockname()[1]}"), COMMITS["plain"])
    assert err.kind == RETRY and err.status is None
    assert "refused" in str(err).lower() and "\n" not in str(err)


def test_read_timeout_is_retried(sinks):
    holder: list[Receiver] = []
    arrived = threading.Event()

    def slow(req: Received) -> Reply:
        arrived.set()
        holder[0].release.wait(30)   # far longer than the client waits; released at teardown
        return Reply(200)
    with Receiver(slow) as r:
        holder.append(r)
        err = _error(sinks("v3", r.url, timeout=0.3), COMMITS["plain"])
        # It did arrive; the answer did not. The server thread may get to it after the client
        # gave up (a busy machine): wait for it rather than look at once.
        assert arrived.wait(PATIENCE) and len(r.requests) == 1
    assert err.kind == RETRY and "tracker.timeout" in str(err)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed_and_the_token_does_not_travel(status, sinks):
    with Receiver() as target:
        where = target.url + "/services/v3/source_commits"
        with Receiver(lambda req: Reply(status, b"moved", {"Location": where})) as r:
            err = _error(sinks("v3", r.url), COMMITS["plain"])
            assert len(r.requests) == 1
        assert target.requests == [] and target.connections == 0
    assert err.kind == HOLD and where in str(err)


def test_the_token_never_appears_in_errors_or_reprs(sinks):
    def echo(req: Received) -> Reply:
        token = req.headers["X-TrackerToken"]
        return Reply(int(req.path.split("/")[1]), f"you sent X-TrackerToken: {token}".encode(),
                     {"Location": f"http://127.0.0.1:9/?token={token}"})
    errors: list[DeliveryError] = []
    with Receiver(echo) as r:
        for status in (302, 400, 401, 404, 422, 429, 500):
            sink = sinks("v3", f"{r.url}/{status}")
            errors.append(_error(sink, COMMITS["hostile"]))
            assert TOKEN not in repr(sink)
    with _refusing_port() as s:
        errors.append(_error(sinks("v5", f"http://127.0.0.1:{s.getsockname()[1]}"), COMMITS["plain"]))
    assert [e.status for e in errors] == [302, 400, 401, 404, 422, 429, 500, None]
    for e in errors:
        assert TOKEN not in str(e) and TOKEN not in repr(e) and TOKEN not in (e.body or "")
        assert TOKEN not in repr(e.args)
    assert "[token]" in errors[1].body   # the echo was there, and was scrubbed


def test_credentials_in_the_url_are_not_shown(sinks):
    with Receiver(lambda req: Reply(500)) as r:
        url = r.url.replace("http://", "http://alice:hunter2@")
        err = _error(sinks("v3", url), COMMITS["plain"])
    assert "hunter2" not in str(err) and f"127.0.0.1:{r.port}" in str(err)


@pytest.mark.parametrize("api", ["v3", "v5"])
def test_one_connection_serves_many_sends(api, receiver, sinks):
    sink = sinks(api, receiver.url)
    for i in range(6):
        sink.send(Commit(f"c{i}", "Ada", f"commit {i} [#1]"))
    assert len(receiver.requests) == 6 and receiver.connections == 1


def test_the_connection_survives_error_answers(sinks):
    answers = iter([Reply(500, b"oops"), Reply(422, b"no"), Reply(201, b"{}"), Reply(429), Reply(200)])
    with Receiver(lambda req: next(answers)) as r:
        sink = sinks("v5", r.url)
        kinds = []
        for i in range(5):
            try:
                sink.send(Commit(f"c{i}", "Ada", "m"))
                kinds.append(None)
            except DeliveryError as exc:
                kinds.append(exc.kind)
    assert kinds == [RETRY, DEAD, None, RETRY, None]
    assert r.connections == 1


def test_a_huge_answer_is_not_read_whole_and_the_next_send_still_works(sinks):
    answers = iter([Reply(500, b"e" * 5_000_000), Reply(200)])
    with Receiver(lambda req: next(answers)) as r:
        sink = sinks("v3", r.url)
        err = _error(sink, COMMITS["plain"])
        sink.send(COMMITS["plain"])
    assert err.kind == RETRY and len(err.body) == 2048
    assert len(r.requests) == 2


# ---------------------------------------------------------------------- TLS
@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    why = tls.can_make_certificates()
    if why:
        pytest.skip(why)
    return tls.self_signed(tmp_path_factory.mktemp("tls"))


def _tls(certificate) -> ssl.SSLContext:
    return tls.server_context(certificate)


def test_an_untrusted_certificate_holds_the_queue(certificate, sinks):
    with Receiver(tls=_tls(certificate)) as r:
        err = _error(sinks("v3", r.url), COMMITS["plain"])
        assert r.requests == []
    assert err.kind == HOLD and "tracker.ca_bundle" in str(err) and "\n" not in str(err)
    assert TOKEN not in str(err)


def test_a_ca_bundle_makes_the_certificate_trusted(certificate, sinks):
    with Receiver(tls=_tls(certificate)) as r:
        sinks("v5", r.url, verify=certificate[0]).send(COMMITS["plain"])
        [req] = r.requests
    assert req.headers["X-TrackerToken"] == TOKEN


def test_requests_ca_bundle_from_the_environment_is_honoured(certificate, sinks, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])
    with Receiver(tls=_tls(certificate)) as r:
        sinks("v3", r.url).send(COMMITS["plain"])
        assert len(r.requests) == 1


def test_a_missing_ca_bundle_in_the_environment_holds_the_queue_instead_of_killing_the_entry(
        certificate, sinks, monkeypatch, tmp_path):
    """A local TLS setup that does not hold (REQUESTS_CA_BUNDLE naming a file that is gone) is a
    hold, never dead/. (A missing tracker.ca_bundle is refused when the sink is made: a config
    error, which holds the queue too.)"""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "gone.pem"))
    with Receiver(tls=_tls(certificate)) as r:
        err = _error(sinks("v3", r.url), COMMITS["plain"])
        assert r.requests == []
    assert err.kind == HOLD and "gone.pem" in str(err) and "retry --held" in str(err), str(err)
    assert TOKEN not in str(err)


# ---------------------------------------------------------------------- factory
def test_unknown_api_names_the_key_and_the_choices():
    with pytest.raises(ConfigError) as info:
        make_sink("v4", "https://www.pivotaltracker.com", TOKEN)
    assert "tracker.api" in str(info.value)
    assert all(choice in str(info.value) for choice in ("v3", "v5", "stdout"))


@pytest.mark.parametrize("url,token,kw,key", [
    ("https://www.pivotaltracker.com", None, {}, "tracker.token_file"),
    ("https://www.pivotaltracker.com", "", {}, "tracker.token_file"),
    ("https://www.pivotaltracker.com", TOKEN + "\n", {}, "tracker.token_file"),
    ("https://www.pivotaltracker.com", "to ken" + TOKEN, {}, "tracker.token_file"),
    ("https://www.pivotaltracker.com", TOKEN + "\u20ac", {}, "tracker.token_file"),
    ("ftp://example.com", TOKEN, {}, "tracker.url"),
    ("https://", TOKEN, {}, "tracker.url"),
    ("https://www.pivotaltracker.com", TOKEN, {"timeout": 0}, "tracker.timeout"),
    ("https://www.pivotaltracker.com", TOKEN, {"verify": "/nonexistent/ca.pem"}, "tracker.ca_bundle"),
])
@pytest.mark.parametrize("api", ["v3", "v5"])
def test_bad_settings_are_config_errors_naming_the_key(api, url, token, kw, key):
    with pytest.raises(ConfigError) as info:
        make_sink(api, url, token, **kw)
    assert key in str(info.value)
    assert TOKEN not in str(info.value)


def test_the_sinks_package_does_not_import_requests():
    code = ("import sys, hookagent.sinks; assert 'requests' not in sys.modules, 'imported';"
            " hookagent.sinks.make_sink('stdout', '', None); assert 'requests' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_sink_names():
    assert make_sink("v3", "https://h", TOKEN).name == "v3"
    assert make_sink("v5", "https://h", TOKEN).name == "v5"
    assert make_sink("stdout", "", None).name == "stdout"


# ---------------------------------------------------------------------- stdout
def test_stdout_writes_one_json_line_per_commit():
    out = io.StringIO()
    sink = make_sink("stdout", "", None, stream=out)
    for name in sorted(COMMITS):
        sink.send(COMMITS[name])
    sink.close()
    lines = out.getvalue().split("\n")[:-1]   # not splitlines(): U+0085 is data here
    assert len(lines) == len(COMMITS)
    records = [json.loads(line)["source_commit"] for line in lines]
    for name, record in zip(sorted(COMMITS), records):
        assert record["message"] == EXPECTED[name][1] and record["commit_id"] == EXPECTED[name][3]
    assert out.getvalue().encode("utf-8") == b"".join(sink.render(COMMITS[n]) for n in sorted(COMMITS))


def test_stdout_defaults_to_sys_stdout(capsys):
    make_sink("stdout", "", None).send(COMMITS["plain"])
    assert json.loads(capsys.readouterr().out)["source_commit"]["commit_id"] == SHA


def test_stdout_survives_a_stream_that_cannot_encode_the_text():
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    make_sink("stdout", "", None, stream=stream).send(COMMITS["emoji_rtl"])
    line = raw.getvalue().decode("ascii")
    assert json.loads(line)["source_commit"]["message"] == EXPECTED["emoji_rtl"][1]


def test_stdout_on_a_closed_stream_is_a_retry_not_a_silent_loss():
    stream = io.StringIO()
    stream.close()
    err = _error(make_sink("stdout", "", None, stream=stream), COMMITS["plain"])
    assert err.kind == RETRY


# ---------------------------------------------------------------------- XML 1.0 text
@pytest.mark.parametrize("text,expected", [
    ("", ""),
    (None, ""),
    ("a\tb\nc\rd", "a\tb\nc\rd"),
    ("".join(map(chr, range(0x20))), "\t\n\r"),
    ("\x7f\x80\x85\x9f", "\x7f\x80\x85\x9f"),      # legal in XML 1.0
    ("\ud7ff\ud800\udbff\udc00\udfff\ue000", "\ud7ff\ue000"),
    ("\ufffd\ufffe\uffff\U00010000\U0010ffff", "\ufffd\U00010000\U0010ffff"),
    ("&<>\"' ]]>", "&<>\"' ]]>"),                  # escaping is the serialiser's job
])
def test_clean_text(text, expected):
    assert clean_text(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("a\r\nb\rc\nd\r\n\r\n", "a\nb\nc\nd\n\n"),
    ("x\x00\r\x00\ny", "x\ny"),
])
def test_xml_text_normalises_line_ends_like_a_parser_would(text, expected):
    assert xml_text(text) == expected


def test_proxy_variables_are_honoured_and_no_proxy_bypasses(monkeypatch, receiver, sinks):
    """HTTP_PROXY sends the request through the proxy (absolute URI on the request line);
    NO_PROXY for the tracker's host goes direct (here: a name that cannot resolve)."""
    monkeypatch.setenv("HTTP_PROXY", receiver.url)
    sink = sinks("v3", "http://tracker.invalid")
    sink.send(COMMITS["plain"])
    assert receiver.requests[-1].path == "http://tracker.invalid/services/v3/source_commits"
    assert receiver.requests[-1].headers["X-TrackerToken"] == TOKEN
    monkeypatch.setenv("NO_PROXY", "tracker.invalid")
    direct = sinks("v3", "http://tracker.invalid")
    err = _error(direct, COMMITS["plain"])
    assert err.kind == RETRY and len(receiver.requests) == 1


@pytest.mark.parametrize("text, secret, expected", [
    ("check the network, proxy settings or tracker.url", "x", "check the network, proxy settings or tracker.url"),
    ("the token would go with them", "tok", "the token would go with them"),
    ("Invalid token abc123XYZ presented", "abc123XYZ", "Invalid token [token] presented"),
    ("GET /x?token=abc123XYZ&y=1", "abc123XYZ", "GET /x?token=[token]&y=1"),
    ('{"token": "abc123XYZ"}', "abc123XYZ", '{"token": "[token]"}'),
    ("abc123XYZ", "abc123XYZ", "[token]"),
    ("no secret", "", "no secret"),
])
def test_the_token_is_redacted_where_it_stands_never_inside_other_words(text, secret, expected):
    from hookagent.sinks.http import scrub
    assert scrub(text, secret) == expected


# ---------------------------------------------------------------------- the whole-request deadline
# A slowloris drips one byte every 0.02 s and gives up after GIVE_UP drips (20 s: ten times the
# deadline of 2 s). The assertions are on progress: the client hung up before the server gave up.
GIVE_UP = 1000


@pytest.fixture
def certificate_of(request):
    """The TLS certificate, made only by a test that asks (openssl may be missing)."""
    return lambda: request.getfixturevalue("certificate")


@pytest.fixture
def slow_sink(sinks, certificate_of):
    """A v3 sink with tracker.timeout 2 for a Slowloris (trusting its certificate)."""
    def make(slow: Slowloris):
        return sinks("v3", slow.url, timeout=2, **({"verify": certificate_of()[0]} if slow.tls else {}))
    return make


def _slowloris(mode: str, tls: bool, certificate_of, **kw) -> Slowloris:
    return Slowloris(mode, give_up=GIVE_UP, tls=_tls(certificate_of()) if tls else None, **kw)


def _hung_up_by_the_client(slow: Slowloris) -> Drips:
    assert wait_until(slow.ended)
    [drips] = slow.connections
    assert (drips.end, drips.count < GIVE_UP) == ("client", True), (
        f"the client still held the connection after {drips.count} drips ({drips.end})")
    return drips


def _a_timeout_then_a_fresh_connection(slow: Slowloris, sink, err: DeliveryError) -> None:
    assert err.kind == RETRY and err.status is None
    assert "did not answer within 2s" in str(err) and "tracker.timeout" in str(err), str(err)
    # The connection that was cut off is not reused: the next request connects afresh.
    slow.mode = slowloris.ANSWER
    sink.send(COMMITS["plain"])
    assert len(slow.connections) == 2 and len(slow.bodies) == 1


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("mode,status", [(slowloris.HEAD, 200), (slowloris.BODY, 503)], ids=["head", "body"])
def test_a_server_dripping_its_answer_is_cut_off_at_tracker_timeout_and_retried(
        mode, status, tls, slow_sink, certificate_of):
    """tracker.timeout bounds the whole request: a byte dripped before each read times out (the
    per-read timeout requests gives) cannot keep it alive, nor can a "200 OK" whose headers
    never end."""
    with _slowloris(mode, tls, certificate_of, status=status) as slow:
        sink = slow_sink(slow)
        err = _error(sink, COMMITS["plain"])
        _hung_up_by_the_client(slow)
        _a_timeout_then_a_fresh_connection(slow, sink, err)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_server_reading_the_body_a_byte_at_a_time_is_cut_off_and_reset(tls, slow_sink, certificate_of):
    """Sending the body was bounded before (one send call, one timeout), but a connection given
    up was closed gently: the kernel kept the unsent body and went on feeding the server. Now the
    deadline resets the connection, and says it timed out (not "cannot reach")."""
    with _slowloris(slowloris.READ_BODY, tls, certificate_of) as slow:
        sink = slow_sink(slow)
        with pytest.raises(DeliveryError) as info:
            sink.post(b"x" * body_beyond_buffers())   # more than the kernel takes at once
        _hung_up_by_the_client(slow)
        _a_timeout_then_a_fresh_connection(slow, sink, info.value)


def test_a_2xx_whose_answer_drips_is_delivered_when_the_deadline_cuts_the_text(slow_sink):
    """A whole head said accepted: only the confirmation text is lost, as when the connection
    drops then."""
    with Slowloris(slowloris.BODY, status=200, give_up=GIVE_UP) as slow:
        slow_sink(slow).send(COMMITS["plain"])
        drips = _hung_up_by_the_client(slow)
    assert drips.count > 0, "the answer's body had started"
