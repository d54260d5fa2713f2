"""The local receiver over real HTTP: both APIs, tokens, strict parsing, chaos, keep-alive, CLI."""
from __future__ import annotations

import collections
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET

import pytest
import requests

from hookagent.devserver import FAULTS, V3_PATH, V5_PATH, DevServer
from hookagent.main import main
from testing.wait import PATIENCE, wait_until

TOKEN = "s3cret-dev-token"


@pytest.fixture
def server():
    with DevServer(token=TOKEN) as s:
        yield s


def v3_body(message: str | None = "Hello [#1]", author: str | None = "Ada", commit_id: str | None = "abc123",
            url: str | None = "https://git.example.com/c/abc123", root: str = "source_commit") -> bytes:
    el = ET.Element(root)
    for tag, value in (("message", message), ("author", author), ("commit_id", commit_id), ("url", url)):
        if value is not None:
            ET.SubElement(el, tag).text = value
    return ET.tostring(el, encoding="UTF-8", xml_declaration=True)


def v5_body(**fields) -> bytes:
    record = {"message": "Hello [#1]", "author": "Ada", "commit_id": "abc123",
              "url": "https://git.example.com/c/abc123"}
    record.update(fields)
    return json.dumps({"source_commit": {k: v for k, v in record.items() if v is not ...}}).encode()


def post(server, api: str, body: bytes, token: str | None = TOKEN, content_type: str | None = None,
         session=requests, timeout: float = 10) -> requests.Response:
    headers = {"Content-Type": content_type or ("application/xml" if api == "v3" else "application/json")}
    if token is not None:
        headers["X-TrackerToken"] = token
    return session.post(server.url + (V3_PATH if api == "v3" else V5_PATH), data=body, headers=headers,
                        timeout=timeout)


# ---------------------------------------------------------------------- accepted and applied
def test_v3_commit_is_recorded_and_finishes_its_story(server):
    r = post(server, "v3", v3_body("Torpedoes & <shields> [fixes #123456]"))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/xml")
    answer = ET.fromstring(r.content)
    assert answer.tag == "comments" and [c.findtext("story_id") for c in answer] == ["123456"]
    (rec,) = server.received()
    assert rec["message"] == "Torpedoes & <shields> [fixes #123456]"
    assert (rec["author"], rec["commit_id"], rec["url"], rec["api"]) == (
        "Ada", "abc123", "https://git.example.com/c/abc123", "v3")
    story = server.stories()[123456]
    assert story["current_state"] == "finished"
    (comment,) = story["comments"]
    assert comment["commit_id"] == "abc123" and comment["author"] == "Ada"
    assert comment["message"] == rec["message"] and "Ada" in comment["text"]


def test_v5_commit_is_recorded_and_delivers_every_story_of_the_group(server):
    r = post(server, "v5", v5_body(message="Release [delivers #7, #8] and [#9]", url=...))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    answer = r.json()
    assert [c["story_id"] for c in answer] == [7, 8, 9] and all(c["kind"] == "comment" for c in answer)
    assert answer[0]["commit_identifier"] == "abc123"
    stories = server.stories()
    assert [stories[i]["current_state"] for i in (7, 8, 9)] == ["delivered", "delivered", "started"]
    assert server.received()[0]["url"] is None, "url may be left out"


def test_states_only_move_forward_and_each_commit_adds_a_comment(server):
    for i, message in enumerate(["[delivers #5]", "[fixes #5]", "[#5]"]):
        assert post(server, "v5", v5_body(message=message, commit_id=f"c{i}")).status_code == 200
    story = server.stories()[5]
    assert story["current_state"] == "delivered"
    assert [c["commit_id"] for c in story["comments"]] == ["c0", "c1", "c2"]


def test_with_a_story_list_other_references_are_ignored_but_accepted():
    with DevServer(token=TOKEN, stories=[101, 102]) as s:
        r = post(s, "v3", v3_body("[fixes #101 #999]"))
        assert r.status_code == 200
        stories = s.stories()
        assert set(stories) == {101, 102}
        assert stories[101]["current_state"] == "finished" and stories[102]["comments"] == []
        assert len(s.received()) == 1


def test_commits_without_references_are_recorded_and_touch_no_story(server):
    assert post(server, "v5", v5_body(message="Merge pull request #12 from a/b")).status_code == 200
    assert len(server.received()) == 1 and server.stories() == {}


def test_snapshots_are_copies(server):
    post(server, "v5", v5_body())
    server.stories()[1]["current_state"] = "accepted"
    server.received()[0]["message"] = "changed"
    assert server.stories()[1]["current_state"] == "started"
    assert server.received()[0]["message"] == "Hello [#1]"


# ---------------------------------------------------------------------- refused
@pytest.mark.parametrize("api", ["v3", "v5"])
@pytest.mark.parametrize("token", [None, "wrong", "", TOKEN + "x"])
def test_missing_or_wrong_token_is_403_and_not_recorded(server, api, token):
    body = v3_body("[fixes #1]") if api == "v3" else v5_body(message="[fixes #1]")
    r = post(server, api, body, token=token)
    assert r.status_code == 403
    if api == "v3":
        assert ET.fromstring(r.content).tag == "errors"
    else:
        assert r.json()["code"] == "invalid_authentication" and r.json()["kind"] == "error"
    assert server.received() == [] and server.stories() == {}
    assert server.requests_seen() == 1


BAD_V3 = {
    "malformed": b"<source_commit><message>x</message>",
    "not-xml": b"hello",
    "wrong-root": v3_body(root="commit"),
    "no-message": v3_body(message=None),
    "empty-message": v3_body(message=""),
    "blank-message": v3_body(message="  \n "),
    "no-commit-id": v3_body(commit_id=None),
    "unknown-element": b"<source_commit><message>[#1]</message><commit_id>a</commit_id><date>x</date></source_commit>",
    "repeated-element": b"<source_commit><message>[#1]</message><message>b</message><commit_id>a</commit_id></source_commit>",
    "nested-element": b"<source_commit><message><b>[#1]</b></message><commit_id>a</commit_id></source_commit>",
    "doctype": (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
                b"<source_commit><message>&lol; [#1]</message><commit_id>a</commit_id></source_commit>"),
}
BAD_V5 = {
    "malformed": b'{"source_commit": {',
    "not-utf8": '{"source_commit": {"message": "caf\u00e9 [#1]", "commit_id": "a"}}'.encode("latin-1"),
    "array": b"[]",
    "wrong-root": json.dumps({"commit": {"message": "[#1]", "commit_id": "a"}}).encode(),
    "extra-root-key": json.dumps({"source_commit": {"message": "[#1]", "commit_id": "a"}, "x": 1}).encode(),
    "inner-not-object": json.dumps({"source_commit": "[#1]"}).encode(),
    "no-message": v5_body(message=...),
    "empty-message": v5_body(message=""),
    "no-commit-id": v5_body(commit_id=...),
    "number-commit-id": v5_body(commit_id=12),
    "unknown-field": v5_body(date="2026-01-01"),
}


@pytest.mark.parametrize("case", sorted(BAD_V3))
def test_bad_v3_bodies_are_400_with_a_reason(server, case):
    r = post(server, "v3", BAD_V3[case])
    assert r.status_code == 400, r.text
    error = ET.fromstring(r.content).findtext("error")
    assert error and len(error) > 10
    assert server.received() == [] and server.stories() == {}


@pytest.mark.parametrize("case", sorted(BAD_V5))
def test_bad_v5_bodies_are_400_with_a_reason(server, case):
    r = post(server, "v5", BAD_V5[case])
    assert r.status_code == 400, r.text
    assert r.json()["kind"] == "error" and len(r.json()["error"]) > 10
    assert server.received() == [] and server.stories() == {}


@pytest.mark.parametrize("api,content_type", [("v3", "application/json"), ("v3", "text/plain"),
                                              ("v5", "application/xml"),
                                              ("v5", "application/x-www-form-urlencoded")])
def test_wrong_content_type_is_400(server, api, content_type):
    body = v3_body() if api == "v3" else v5_body()
    r = post(server, api, body, content_type=content_type)
    assert r.status_code == 400 and "Content-Type" in r.text
    assert server.received() == []


def test_content_type_parameters_and_text_xml_are_accepted(server):
    assert post(server, "v3", v3_body(), content_type="text/xml; charset=utf-8").status_code == 200
    assert post(server, "v5", v5_body(), content_type="Application/JSON; charset=UTF-8").status_code == 200
    assert len(server.received()) == 2


def test_unknown_paths_are_404(server):
    assert requests.get(server.url + "/nope", timeout=10).status_code == 404
    r = requests.post(server.url + "/services/v4/source_commits", data=v5_body(),
                      headers={"X-TrackerToken": TOKEN, "Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 404 and server.received() == []


# ---------------------------------------------------------------------- read-only endpoints (hookagent doctor)
def test_v5_me_answers_the_tokens_user_and_refuses_a_wrong_token(server):
    r = requests.get(server.url + "/services/v5/me", headers={"X-TrackerToken": TOKEN}, timeout=10)
    assert r.status_code == 200 and r.json()["kind"] == "me"
    assert TOKEN not in r.text
    r = requests.get(server.url + "/services/v5/me", headers={"X-TrackerToken": "wrong"}, timeout=10)
    assert r.status_code == 403 and r.json()["code"] == "invalid_authentication"
    assert requests.head(server.url + "/services/v5/me", timeout=10).status_code == 403


def test_v3_activities_lists_the_newest_comments_up_to_limit(server):
    for n in (1, 2, 3):
        assert post(server, "v3", v3_body(f"Step {n} [#7]", commit_id=f"c{n}")).status_code == 200
    r = requests.get(server.url + "/services/v3/activities?limit=2", headers={"X-TrackerToken": TOKEN}, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/xml")
    feed = ET.fromstring(r.content)
    assert feed.tag == "activities" and feed.get("type") == "array"
    assert [a.findtext("event_type") for a in feed] == ["note_create", "note_create"]
    assert ["Step 3" in a.findtext("description") for a in feed] == [True, False]
    assert [a.findtext("stories/story/id") for a in feed] == ["7", "7"]
    r = requests.get(server.url + "/services/v3/activities?limit=1", headers={"X-TrackerToken": "wrong"}, timeout=10)
    assert r.status_code == 403 and ET.fromstring(r.content).tag == "errors"


@pytest.mark.parametrize("path", [V3_PATH, V5_PATH, "/services/v3/github_commits"])
def test_a_get_or_head_of_a_post_endpoint_is_405_allowing_post(server, path):
    for method in (requests.get, requests.head):
        r = method(server.url + path, headers={"X-TrackerToken": TOKEN}, timeout=10)
        assert r.status_code == 405 and r.headers["Allow"] == "POST"
    assert server.received() == []


def test_chunked_body_without_length_is_refused(server):
    r = requests.post(server.url + V5_PATH, data=iter([v5_body()]), timeout=10,
                      headers={"X-TrackerToken": TOKEN, "Content-Type": "application/json"})
    assert r.status_code == 411 and server.received() == []


# ---------------------------------------------------------------------- pages
def test_html_page_escapes_everything(server):
    post(server, "v5", v5_body(message="[fixes #1] <script>alert(1)</script>", author="<b>Eve</b>",
                               url="javascript:alert(2)"))
    r = requests.get(server.url + "/", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "<script>" not in r.text and "<b>Eve" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text and "&lt;b&gt;Eve" in r.text
    assert 'href="javascript' not in r.text, "only http(s) links are made clickable"
    assert "finished" in r.text


def test_json_pages_list_stories_and_received(server):
    post(server, "v3", v3_body("[#3] and [delivers #2]"))
    stories = requests.get(server.url + "/api/stories", timeout=10).json()
    assert [(s["id"], s["current_state"]) for s in stories] == [(2, "delivered"), (3, "started")]
    received = requests.get(server.url + "/api/received?x=1", timeout=10).json()
    assert [r["commit_id"] for r in received] == ["abc123"]


# ---------------------------------------------------------------------- chaos
def test_chaos_produces_every_fault_and_records_only_answered_requests():
    with DevServer(token=TOKEN, chaos=0.6, seed=3) as s:
        outcomes: collections.Counter = collections.Counter()
        with requests.Session() as session:
            for i in range(250):
                try:
                    r = post(s, "v5", v5_body(commit_id=f"c{i}", message=f"[fixes #{i + 1}]"), session=session)
                except requests.ConnectionError:
                    outcomes["reset"] += 1
                    continue
                outcomes[str(r.status_code)] += 1
                if r.status_code == 429:
                    assert r.headers["Retry-After"] == "1"
                if r.status_code != 200:
                    assert r.json()["kind"] == "error"
        assert set(outcomes) == {"200", *FAULTS}, outcomes
        assert all(outcomes[k] >= 5 for k in FAULTS), outcomes
        assert len(s.received()) == outcomes["200"] == len(s.stories())
        assert all(st["current_state"] == "finished" for st in s.stories().values())
        assert s.requests_seen() == 250


def test_chaos_is_repeatable_with_a_seed():
    def run() -> list[int]:
        with DevServer(token=TOKEN, chaos=0.5, seed=42) as s:
            codes = []
            for i in range(40):
                try:
                    codes.append(post(s, "v5", v5_body(commit_id=f"c{i}")).status_code)
                except requests.ConnectionError:
                    codes.append(0)
            return codes
    first = run()
    assert first == run() and len(set(first)) > 2


def test_a_reset_is_a_real_tcp_reset():
    with DevServer(token=TOKEN, chaos=1.0, seed=0) as s:
        host, port = s.url.rsplit("/", 1)[1].split(":")
        kinds = set()
        for _ in range(40):
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                body = v5_body()
                sock.sendall(b"POST " + V5_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Type: application/json\r\nX-TrackerToken: " + TOKEN.encode() +
                             b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    kinds.add("reset")
                    continue
                kinds.add(data.split(b" ", 2)[1].decode())
        assert kinds == {"500", "502", "503", "429", "reset"}
        assert s.received() == []


# ---------------------------------------------------------------------- speed and concurrency
def test_keep_alive_one_connection_for_a_session(server):
    with requests.Session() as session:
        for i in range(50):
            r = post(server, "v3" if i % 2 else "v5", v5_body(commit_id=f"c{i}") if i % 2 == 0
                     else v3_body(commit_id=f"c{i}"), session=session)
            assert r.status_code == 200 and "Content-Length" in r.headers
            assert r.headers.get("Connection", "").lower() != "close"
        assert session.get(server.url + "/api/stories", timeout=10).status_code == 200
    assert server.connections_seen() == 1
    assert len(server.received()) == 50 and server.requests_seen() == 51


def test_errors_keep_the_connection_alive_too(server):
    with requests.Session() as session:
        assert post(server, "v5", v5_body(), token="wrong", session=session).status_code == 403
        assert post(server, "v5", b"{", session=session).status_code == 400
        assert session.get(server.url + "/missing", timeout=10).status_code == 404
        assert post(server, "v5", v5_body(), session=session).status_code == 200
    assert server.connections_seen() == 1


def test_concurrent_clients_are_all_recorded(server):
    def client(n: int) -> None:
        with requests.Session() as session:
            for i in range(25):
                assert post(server, "v5", v5_body(commit_id=f"t{n}-{i}", message="[#1]"),
                            session=session).status_code == 200
    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(server.received()) == 200 and len({r["commit_id"] for r in server.received()}) == 200
    assert len(server.stories()[1]["comments"]) == 200


def test_stop_drops_kept_alive_connections():
    s = DevServer(token=TOKEN).start()
    session = requests.Session()
    try:
        assert post(s, "v5", v5_body(), session=session).status_code == 200
        s.stop()
        with pytest.raises(requests.ConnectionError):
            post(s, "v5", v5_body(), session=session)
        assert len(s.received()) == 1
    finally:
        session.close()
        s.stop()


def test_hold_keeps_requests_waiting_unrecorded_until_released(server):
    """hold(after=n): n answers, then each request waits, read but not recorded, until release."""
    def slow_post(i: int) -> int:   # the hold, not the client, decides when it ends
        return post(server, "v5", v5_body(commit_id=f"h{i}"), timeout=PATIENCE).status_code
    server.hold(after=1)
    assert slow_post(0) == 200
    answers: list[int] = []
    waiting = threading.Thread(target=lambda: answers.append(slow_post(1)))
    waiting.start()
    try:
        assert wait_until(lambda: server.held() == 1)
        assert [r["commit_id"] for r in server.received()] == ["h0"] and server.requests_seen() == 2
        assert answers == []
    finally:
        server.release()
    waiting.join(PATIENCE)
    assert answers == [200] and server.held() == 0
    assert slow_post(2) == 200
    assert [r["commit_id"] for r in server.received()] == ["h0", "h1", "h2"]


def test_hold_calls_then_as_each_request_starts_to_wait(server):
    """hold(then=f): f runs in the server's thread once per request that starts to wait, while
    the request waits (a test stops its client there, sure the request is in flight)."""
    seen: list[int] = []
    server.hold(after=1, then=lambda: seen.append(server.held()))
    answers: list[int] = []
    clients = [threading.Thread(target=lambda i=i: answers.append(
        post(server, "v5", v5_body(commit_id=f"t{i}"), timeout=PATIENCE).status_code)) for i in range(3)]
    for c in clients:
        c.start()
    try:
        assert wait_until(lambda: server.held() == 2)
        assert seen == [1, 2], "called as each one started to wait, while it waits"
        assert len(server.received()) == 1
    finally:
        server.release()
    for c in clients:
        c.join(PATIENCE)
    assert answers == [200, 200, 200] and len(seen) == 2


def test_stop_lets_a_held_request_go():
    """stop() ends the hold: the request's thread finishes (answered, or its connection dropped)."""
    s = DevServer(token=TOKEN).start()
    s.hold()
    outcome: list[object] = []

    def client() -> None:
        try:
            outcome.append(post(s, "v5", v5_body(), timeout=PATIENCE).status_code)
        except requests.ConnectionError as exc:
            outcome.append(exc)
    t = threading.Thread(target=client)
    t.start()
    try:
        assert wait_until(lambda: s.held() == 1)
    finally:
        s.stop()
    t.join(PATIENCE)
    assert not t.is_alive() and outcome
    assert wait_until(lambda: s.held() == 0), "the handler left the hold (the client may be told first)"


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        DevServer(chaos=1.5)
    with pytest.raises(ValueError):
        DevServer(delay=-1)
    with pytest.raises(ValueError):
        DevServer().hold(after=-1)
    with pytest.raises(RuntimeError):
        DevServer().url


# ---------------------------------------------------------------------- the command
def start_cli(*args: str, env_token: str | None = None) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ)
    env.pop("HOOKAGENT_DEVSERVER_TOKEN", None)
    if env_token:
        env["HOOKAGENT_DEVSERVER_TOKEN"] = env_token
    proc = subprocess.Popen([sys.executable, "-m", "hookagent", "devserver", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    return proc, line


def stop_cli(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return out, err


def test_cli_prints_its_url_serves_and_exits_0_on_sigterm():
    proc, line = start_cli(env_token="from-env-token")
    try:
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        assert "HOOKAGENT_DEVSERVER_TOKEN" in line and "from-env-token" not in line
        url = match.group(0)
        r = requests.post(url + V5_PATH, data=v5_body(message="[fixes #5]"), timeout=10,
                          headers={"X-TrackerToken": "from-env-token", "Content-Type": "application/json"})
        assert r.status_code == 200
        assert requests.get(url + "/api/stories", timeout=10).json()[0]["current_state"] == "finished"
        r = requests.post(url + V5_PATH, data=v5_body(), timeout=10,
                          headers={"X-TrackerToken": "devtoken", "Content-Type": "application/json"})
        assert r.status_code == 403, "the default token is not accepted when another was given"
    finally:
        out, _ = stop_cli(proc)
    assert "stopped" in out


def test_cli_flags_token_and_story_list():
    proc, line = start_cli("--token", "flag-token", "--stories", "101,102", env_token="ignored")
    try:
        assert "--token" in line and "101,102" in line
        url = re.search(r"http://\S+?(?=;)", line).group(0)
        r = requests.post(url + V3_PATH, data=v3_body("[delivers #101 #5]"), timeout=10,
                          headers={"X-TrackerToken": "flag-token", "Content-Type": "application/xml"})
        assert r.status_code == 200
        stories = requests.get(url + "/api/stories", timeout=10).json()
        assert [(s["id"], s["current_state"]) for s in stories] == [(101, "delivered"), (102, "started")]
    finally:
        stop_cli(proc)


def test_cli_sigint_also_exits_0():
    proc, line = start_cli()
    assert "devtoken" in line
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_cli_port_in_use_says_what_to_do(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["devserver", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hookagent: cannot listen on") and err.count("\n") == 1
    assert "--port" in err and str(port) in err


@pytest.mark.parametrize("args", [["--stories", "a,b"], ["--chaos", "2"], ["--chaos", "nan"],
                                  ["--delay", "-1"], ["--delay", "nan"], ["--delay", "inf"],
                                  ["--delay", "soon"], ["--port", "70000"]])
def test_cli_rejects_bad_flags(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(["devserver", *args])
    assert info.value.code == 2 and "expected" in capsys.readouterr().err
