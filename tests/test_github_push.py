"""tracker.api: github-push end to end: real bare repository, installed hook, real `git push`,
`hookagent flush`, a real loopback receiver; every payload checked by a strict validator written
here from GitHub's documented push event schema (independent of the devserver's own check)."""
from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hookagent import config as config_mod
from hookagent.devserver import parse_github_push
from hookagent.errors import ConfigError
from testing.history import make_history
from testing.receiver import Recorder, decode_body
from testing.site import TOKEN, Site, bare_repo_with_hook, commit_file, git

ZERO = "0" * 40
SHA = re.compile(r"^[0-9a-f]{40}$")
URL_TEMPLATE = "https://git.example.com/team/{repo}/commit/{commit_id}"


# ---------------------------------------------------------------------- the strict validator
def _person(where: str, p: object, *, optional_username: bool = True) -> None:
    assert isinstance(p, dict), f"{where}: object expected"
    assert isinstance(p.get("name"), str) and p["name"], f"{where}.name"
    assert "email" in p and (p["email"] is None or "@" in p["email"]), f"{where}.email"
    extra = set(p) - {"name", "email", "username", "date"}
    assert not extra, f"{where}: fields GitHub does not have: {extra}"


def _commit(where: str, c: object) -> None:
    assert isinstance(c, dict), where
    need = {"id", "tree_id", "distinct", "message", "timestamp", "url", "author", "committer",
            "added", "removed", "modified"}
    assert need <= set(c), f"{where}: missing {need - set(c)}"
    assert not set(c) - need, f"{where}: fields GitHub does not have: {set(c) - need}"
    assert SHA.match(c["id"]) and SHA.match(c["tree_id"]), where
    assert c["distinct"] is True
    assert isinstance(c["message"], str) and c["message"] and not c["message"].endswith("\n")
    when = dt.datetime.fromisoformat(c["timestamp"])
    assert when.tzinfo is not None, f"{where}.timestamp has no UTC offset: {c['timestamp']}"
    assert isinstance(c["url"], str)
    _person(f"{where}.author", c["author"])
    _person(f"{where}.committer", c["committer"])
    for key in ("added", "removed", "modified"):
        assert isinstance(c[key], list) and all(isinstance(f, str) for f in c[key]), f"{where}.{key}"


def validate_push(p: dict) -> None:
    """GitHub's push event: required keys and their types (docs: webhook events, `push`)."""
    required = {"ref", "before", "after", "created", "deleted", "forced", "base_ref", "compare",
                "commits", "head_commit", "repository", "pusher"}
    assert required <= set(p), f"missing {required - set(p)}"
    assert p["ref"].startswith(("refs/heads/", "refs/tags/"))
    assert SHA.match(p["before"]) and SHA.match(p["after"])
    for key in ("created", "deleted", "forced"):
        assert isinstance(p[key], bool), key
    assert p["created"] == (p["before"] == ZERO) and p["deleted"] == (p["after"] == ZERO)
    assert p["base_ref"] is None or isinstance(p["base_ref"], str)
    assert isinstance(p["compare"], str)
    assert isinstance(p["commits"], list) and p["commits"]
    for i, c in enumerate(p["commits"]):
        _commit(f"commits[{i}]", c)
    if p["head_commit"] is not None:
        _commit("head_commit", p["head_commit"])
        assert p["head_commit"]["id"] == p["after"]
    r = p["repository"]
    assert isinstance(r["id"], int) and not isinstance(r["id"], bool)
    for key in ("name", "full_name"):
        assert isinstance(r[key], str) and r[key], f"repository.{key}"
    for key in ("url", "html_url"):   # a web address, or none: never the server's file system
        assert key not in r or r[key].startswith(("https://", "http://")), f"repository.{key}: {r[key]}"
    assert r["full_name"].endswith("/" + r["name"])
    assert isinstance(r["private"], bool) and isinstance(r["owner"], dict)
    _person("pusher", p["pusher"])
    assert p["pusher"]["name"] != "none", "a pusher the environment did not name is still named"


# ---------------------------------------------------------------------- fixtures
def make_site(tmp_path: Path, url: str, **github) -> Site:
    return Site(tmp_path, url, api="github-push", tracker={"github": github} if github else {},
                repos=[{"path": str(tmp_path / "*"), "url": URL_TEMPLATE}])


PUSH_ENV = {"GITEA_PUSHER_NAME": "grace", "GITEA_PUSHER_EMAIL": "grace@example.com"}


def push(work: Path, *args: str, env: dict | None = None) -> None:
    git(work, "push", "-q", "origin", *args, env={**os.environ, **(env or PUSH_ENV)})


def flush(site: Site, *args: str) -> subprocess.CompletedProcess:
    proc = site.cli("flush", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def commits(work: Path, *messages: str) -> list[str]:
    out = []
    for m in messages:
        assert commit_file(work, m).returncode == 0
        out.append(git(work, "rev-parse", "HEAD").strip())
    return out


# ---------------------------------------------------------------------- tests
def test_a_push_becomes_one_github_push_payload_with_real_push_and_commit_facts(tmp_path, server):
    site = make_site(tmp_path, server.url)
    bare, work = bare_repo_with_hook(tmp_path, site)
    (work / "gone.txt").write_text("bye")
    (work / "kept.txt").write_text("v1")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "base, no story")
    base = git(work, "rev-parse", "HEAD").strip()
    push(work, "main")
    flush(site)
    assert server.pushes() == [], "a push without story references sends nothing"

    (work / "kept.txt").write_text("v2")
    (work / "new.txt").write_text("hello")
    git(work, "rm", "-q", "gone.txt")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "Shields up [finishes #501]\n\nLonger body & <text>.")
    first = git(work, "rev-parse", "HEAD").strip()
    no_story, last = commits(work, "tidy, no story", "Photon torpedoes [#502]")
    push(work, "main")
    flush(site)

    [p] = server.pushes()
    validate_push(p)
    assert p["ref"] == "refs/heads/main" and p["before"] == base and p["after"] == last
    assert (p["created"], p["deleted"], p["forced"]) == (False, False, False)
    assert [c["id"] for c in p["commits"]] == [first, last], "only commits that mention a story"
    c0 = p["commits"][0]
    assert c0["message"] == "Shields up [finishes #501]\n\nLonger body & <text>."
    assert c0["added"] == ["new.txt"] and c0["removed"] == ["gone.txt"] and c0["modified"] == ["kept.txt"]
    assert c0["tree_id"] == git(bare, "rev-parse", f"{first}^{{tree}}").strip()
    assert c0["author"] == {"name": "Ada Tester", "email": "ada@example.com"}
    assert c0["committer"] == {"name": "Ada Tester", "email": "ada@example.com"}
    assert c0["url"] == f"https://git.example.com/team/server/commit/{first}"
    assert c0["timestamp"] == git(bare, "log", "-1", "--format=%aI", first).strip()
    assert p["head_commit"]["id"] == last and p["head_commit"] == p["commits"][-1]
    assert p["pusher"] == {"name": "grace", "email": "grace@example.com"}
    repo = p["repository"]
    assert repo["name"] == "server" and repo["html_url"] == "https://git.example.com/team/server"
    assert repo["default_branch"] == "main"
    assert p["compare"] == f"https://git.example.com/team/server/compare/{base[:12]}...{last[:12]}"
    got = server.received()
    assert [(r["commit_id"], r["api"], r["ref"]) for r in got] == [
        (first, "github-push", "refs/heads/main"), (last, "github-push", "refs/heads/main")]
    stories = server.stories()
    assert stories[501]["current_state"] == "finished" and len(stories[502]["comments"]) == 1
    assert no_story not in {r["commit_id"] for r in got}


@pytest.mark.parametrize("fmt", ["form", "json"])
def test_max_commits_per_request_splits_a_push_and_both_formats_parse(tmp_path, fmt):
    rec = Recorder()
    try:
        site = make_site(tmp_path, rec.url, format=fmt, max_commits_per_request=3)
        bare, work = bare_repo_with_hook(tmp_path, site)
        shas = commits(work, *[f"step {i} [#{700 + i}] café ✓ 😀 &payload=x%20" for i in range(7)])
        push(work, "main")
        flush(site)
        assert [r["path"] for r in rec.requests] == ["/services/v3/github_commits"] * 3
        payloads = rec.accepted()
        assert [len(p["commits"]) for p in payloads] == [3, 3, 1]
        assert [c["id"] for p in payloads for c in p["commits"]] == shas
        assert payloads[0]["commits"][0]["message"] == "step 0 [#700] café ✓ 😀 &payload=x%20"
        for r, p in zip(rec.requests, payloads):
            validate_push(p)
            assert (p["before"], p["after"], p["created"]) == (ZERO, shas[-1], True)
            h = r["headers"]
            assert h["X-TrackerToken"] == TOKEN and TOKEN not in r["path"], "token in a header only"
            assert h["X-GitHub-Event"] == "push"
            assert h["Content-Type"] == ("application/json" if fmt == "json"
                                         else "application/x-www-form-urlencoded")
            # the devserver's parser accepts exactly these bytes too
            parse_github_push({"Content-Type": h["Content-Type"]}, r["body"])
        assert len({r["headers"]["X-GitHub-Delivery"] for r in rec.requests}) == 3
    finally:
        rec.close()


def test_a_failed_chunk_is_retried_alone_the_sent_ones_are_not_repeated(tmp_path):
    rec = Recorder(fail={2: 503})
    try:
        site = make_site(tmp_path, rec.url, max_commits_per_request=3)
        site.data["retry"] = {"min_backoff": 0.05, "max_backoff": 0.1, "max_age": 3600}
        site.write()
        bare, work = bare_repo_with_hook(tmp_path, site)
        shas = commits(work, *[f"part {i} [#{800 + i}]" for i in range(7)])
        push(work, "main")
        flush(site, "--wait", "30")
        sizes = [len(decode_body(r["headers"]["Content-Type"], r["body"])["commits"]) for r in rec.requests]
        assert sizes == [3, 3, 3, 1], "chunk 2 failed; the retry re-chunks only what was not sent"
        sent = [c["id"] for p in rec.accepted() for c in p["commits"]]
        assert sent == shas, "every commit once, in order, none repeated"
        # the retried request is the same delivery, so a de-duplicating receiver can tell
        assert rec.requests[1]["headers"]["X-GitHub-Delivery"] == rec.requests[2]["headers"]["X-GitHub-Delivery"]
        st = json.loads(site.cli("status", "--json").stdout)
        assert st["sent"] == 7 and st["dead"]["commits"] == 0
    finally:
        rec.close()


def pushed_history(tmp_path: Path, bare: Path, n: int) -> list[str]:
    """Push ``n`` new commits, each naming a story, to ``bare`` in one push; their ids, oldest first."""
    hist = tmp_path / "hist"
    make_history(hist, n, refs_every=1)
    git(hist, "push", "-q", str(bare), "main", env={**os.environ, **PUSH_ENV})
    return git(hist, "rev-list", "--reverse", "main").split()


def counted(site: Site) -> dict[str, int]:
    st = json.loads(site.cli("status", "--json").stdout)
    return {"sent": st["sent"], "pending": st["pending"]["commits"], "deferred": st["deferred"]["commits"],
            "in_flight": st["in_flight"], "dead": st["dead"]["commits"]}


def test_a_413_halves_the_request_until_it_fits_and_all_300_commits_arrive(tmp_path):
    # The receiver takes at most 40 commits per request (a body size limit), 413 above.
    rec = Recorder(answer=lambda payload: 413 if len(payload["commits"]) > 40 else 200)
    try:
        site = make_site(tmp_path, rec.url)   # max_commits_per_request: 100 (the default)
        bare, _ = bare_repo_with_hook(tmp_path, site)
        shas = pushed_history(tmp_path, bare, 300)
        flush(site)
        # 100 refused, halved: 50 refused, halved: 25 and 25 pass; the rest goes 25 at a time.
        assert rec.sizes() == [(100, 413), (50, 413)] + [(25, 200)] * 12
        assert [c["id"] for p in rec.accepted() for c in p["commits"]] == shas, "all 300, once, in order"
        for p in rec.accepted():
            validate_push(p)
        assert counted(site) == {"sent": 300, "pending": 0, "deferred": 0, "in_flight": 0, "dead": 0}
    finally:
        rec.close()


def test_a_400_on_the_middle_request_kills_only_its_commits(tmp_path):
    rec = Recorder(fail={2: 400})
    try:
        site = make_site(tmp_path, rec.url)
        bare, _ = bare_repo_with_hook(tmp_path, site)
        shas = pushed_history(tmp_path, bare, 250)
        flush(site)
        assert rec.sizes() == [(100, 200), (100, 400), (50, 200)], "the third request still goes"
        assert [c["id"] for p in rec.accepted() for c in p["commits"]] == shas[:100] + shas[200:]
        assert counted(site) == {"sent": 150, "pending": 0, "deferred": 0, "in_flight": 0, "dead": 100}
        st = json.loads(site.cli("status", "--json").stdout)
        [item] = st["dead"]["items"]
        assert item["status"] == 400 and item["commits"] == shas[100:105]
        assert shas[100][:12] in item["error"] and shas[101][:12] in item["error"], item["error"]
        assert "100 commit(s)" in item["error"] and shas[99][:12] not in item["error"]
        [(name, dead)] = site.spool.entries("dead")
        assert [c["commit_id"] for c in dead["commits"]] == shas[100:200], "only the refused ones"
        assert "status 400" in dead["response"], "the server's answer is kept"
        # Re-queued by hand once the server takes them: exactly the refused 100 go, nothing twice.
        assert site.cli("retry", "--dead").returncode == 0
        flush(site)
        assert rec.sizes()[3:] == [(100, 200)]
        assert [c["id"] for c in rec.accepted()[-1]["commits"]] == shas[100:200]
        assert counted(site) == {"sent": 250, "pending": 0, "deferred": 0, "in_flight": 0, "dead": 0}
    finally:
        rec.close()


@pytest.mark.parametrize("third", [503, 401])
def test_status_counts_each_commit_once_through_a_refusal_and_a_retry_or_hold(tmp_path, third):
    # 250 commits: the first request goes, the second is refused for good, the third gets a 503
    # (retry later) or a 401 (the queue is held until a person fixes the token).
    rec = Recorder(fail={2: 400, 3: third})
    try:
        site = make_site(tmp_path, rec.url)
        site.data["retry"] = {"min_backoff": 600, "max_backoff": 900, "max_age": 3600}
        site.write()
        bare, _ = bare_repo_with_hook(tmp_path, site)
        shas = pushed_history(tmp_path, bare, 250)
        proc = site.cli("flush")   # 503: the rest deferred for 10 minutes; 401: held
        assert proc.returncode == (0 if third == 503 else 1), proc.stderr
        assert rec.sizes() == [(100, 200), (100, 400), (50, third)]
        left_in = "deferred" if third == 503 else "pending"
        assert counted(site) == {"sent": 100, "pending": 0, "deferred": 0, "in_flight": 0, "dead": 100,
                                 left_in: 50}
        [(_, left)] = site.spool.entries("deferred" if third == 503 else "new")
        assert [c["commit_id"] for c in left["commits"]] == shas[200:], "the entry keeps only what is left"
        assert site.cli("retry", *([] if third == 503 else ["--held"])).returncode == 0   # dead stay dead
        flush(site)
        assert rec.sizes()[3:] == [(50, 200)], "only the 50 not sent yet"
        assert counted(site) == {"sent": 150, "pending": 0, "deferred": 0, "in_flight": 0, "dead": 100}
    finally:
        rec.close()


def test_payload_names_no_server_path_and_a_pusher_without_user(tmp_path, server):
    # No repos[].url and no remote: no web address to give. No USER, LOGNAME or platform
    # variable in the push's environment: the repository's owner pushed (git ran the hook as them).
    site = Site(tmp_path, server.url, api="github-push")
    bare, work = bare_repo_with_hook(tmp_path, site)
    nobody = {k: v for k, v in os.environ.items() if k not in {
        "USER", "LOGNAME", "REMOTE_USER", "GL_USER", "GL_USERNAME", "GITEA_PUSHER_NAME",
        "GOGS_AUTH_USER_NAME"}}
    [sha] = commits(work, "anonymous push [#31]")
    git(work, "push", "-q", "origin", "main", env=nobody)
    flush(site)
    [p] = server.pushes()   # the devserver took it: a receiver's required fields are there
    validate_push(p)
    assert p["commits"][0]["id"] == sha
    text = json.dumps(p)
    assert "file:" not in text and str(tmp_path) not in text, "the server's file system stays private"
    assert "url" not in p["repository"] and "html_url" not in p["repository"] and p["compare"] == ""
    assert p["pusher"] == {"name": pwd.getpwuid(bare.stat().st_uid).pw_name, "email": None}


def test_refused_token_holds_and_a_422_goes_dead_like_the_other_sinks(tmp_path, server):
    site = make_site(tmp_path, server.url)
    bare, work = bare_repo_with_hook(tmp_path, site)
    commits(work, "held [#901]")
    push(work, "main")
    site.set_token("not-the-token")
    proc = site.cli("flush")
    assert proc.returncode == 1 and "held" in proc.stderr and "not-the-token" not in proc.stderr
    st = json.loads(site.cli("status", "--json").stdout)
    assert st["held"] and "token" in st["held"] and st["pending"]["commits"] == 1
    site.set_token(TOKEN)
    flush(site)
    assert [r["message"] for r in server.received()] == ["held [#901]"]

    rec = Recorder(fail={1: 422})
    try:
        (tmp_path / "b").mkdir()
        site2 = make_site(tmp_path / "b", rec.url)
        bare2, work2 = bare_repo_with_hook(tmp_path / "b", site2)
        commits(work2, "refused [#902]")
        push(work2, "main")
        flush(site2)
        st = json.loads(site2.cli("status", "--json").stdout)
        assert st["dead"]["commits"] == 1 and st["dead"]["items"][0]["status"] == 422
    finally:
        rec.close()


def test_force_push_multi_ref_push_and_tags(tmp_path, server):
    site = make_site(tmp_path, server.url)
    site.data["tags"] = True
    site.write()
    bare, work = bare_repo_with_hook(tmp_path, site)
    keep, old = commits(work, "keep [#1]", "old tip [#2]")
    push(work, "main")
    git(work, "reset", "-q", "--hard", "HEAD~1")
    [new] = commits(work, "rewritten [#3]")
    push(work, "-f", "main")
    git(work, "checkout", "-q", "-b", "topic")
    [topic] = commits(work, "topic work [#4]")
    git(work, "checkout", "-q", "--detach", "main")
    [tagged] = commits(work, "release notes [#5]")
    git(work, "tag", "v1")
    push(work, "topic", "v1", env={"GL_USERNAME": "linus"})
    flush(site)
    pushes = server.pushes()
    for p in pushes:
        validate_push(p)
    by_ids = {tuple(c["id"] for c in p["commits"]): p for p in pushes}
    assert set(by_ids) == {(keep, old), (new,), (topic,), (tagged,)}
    forced = by_ids[(new,)]
    assert forced["forced"] is True and forced["before"] == old and forced["after"] == new
    assert by_ids[(keep, old)]["forced"] is False
    t = by_ids[(topic,)]
    assert t["ref"] == "refs/heads/topic" and t["created"] is True and t["pusher"]["name"] == "linus"
    assert t["pusher"]["email"] is None
    v = by_ids[(tagged,)]
    assert v["ref"] == "refs/tags/v1" and v["after"] == tagged and v["head_commit"]["id"] == tagged


def test_post_commit_is_a_one_commit_push_onto_its_parent(tmp_path, server):
    site = make_site(tmp_path, server.url, format="json")
    repo = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    proc = subprocess.run([sys.executable, "-m", "hookagent", "install", str(repo), "--config",
                           str(site.config_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    root, plain, second = commits(repo, "root [#11]", "no story", "second [delivers #12]")
    flush(site)
    pushes = server.pushes()
    assert len(pushes) == 2
    for p in pushes:
        validate_push(p)
    a, b = pushes
    assert (a["ref"], a["before"], a["after"], a["created"]) == ("refs/heads/main", ZERO, root, True)
    assert (b["before"], b["after"], b["created"]) == (plain, second, False)
    assert [c["id"] for c in b["commits"]] == [second] and b["head_commit"]["id"] == second
    assert b["pusher"] == {"name": "Ada Tester", "email": "ada@example.com"}, "the committer pushed it"
    assert b["repository"]["name"] == "work"
    assert server.stories()[12]["current_state"] == "delivered"


def test_a_commit_git_no_longer_has_is_still_sent_from_the_spool(tmp_path, server):
    site = make_site(tmp_path, server.url)
    bare, work = bare_repo_with_hook(tmp_path, site)
    sha, tip = commits(work, "soon unreadable [#21]", "tip, no story")
    push(work, "main")
    site.ingest()        # the agent decided the push (what it made new needs the repository)
    # The repository moves away before the agent sends: the payload is built from the spool alone.
    bare.rename(tmp_path / "moved.git")
    flush(site)
    [p] = server.pushes()
    c = p["commits"][0]
    assert c["id"] == sha and "tree_id" not in c and c["added"] == [] and c["committer"] == c["author"]
    assert p["after"] == tip and p["head_commit"] is None, "git cannot tell what the tip was"
    assert p["repository"]["html_url"] == "https://git.example.com/team/server"


def test_devserver_rejects_what_github_would_never_send(server):
    import requests
    good = {"ref": "refs/heads/main", "before": ZERO, "after": "a" * 40, "created": True,
            "deleted": False, "forced": False, "base_ref": None, "compare": "",
            "commits": [{"id": "a" * 40, "tree_id": "b" * 40, "distinct": True, "message": "m [#1]",
                         "timestamp": "2026-11-28T10:00:00+01:00", "url": "",
                         "author": {"name": "A", "email": "a@x"}, "committer": {"name": "A", "email": None},
                         "added": [], "removed": [], "modified": []}],
            "head_commit": None, "repository": {"name": "r", "full_name": "o/r", "url": "file:///r"},
            "pusher": {"name": "p", "email": None}}
    url = server.url + "/services/v3/github_commits"
    h = {"X-TrackerToken": TOKEN}

    def post(payload, **kw):
        return requests.post(url, data={"payload": json.dumps(payload)}, headers=h, **kw)

    assert post(good).status_code == 200
    assert requests.post(url, json=good, headers=h).status_code == 200
    no_address = {**good, "repository": {"name": "r", "full_name": "o/r"}}
    assert post(no_address).status_code == 200, "a repository without a web address has no url"
    assert requests.post(url, json=good, headers={"X-TrackerToken": "x"}).status_code == 403
    for breaks in ({"before": "abc"}, {"forced": "no"}, {"ref": None}, {"commits": {}},
                   {"repository": {"name": "r"}}, {"repository": {"name": "r", "full_name": "o/r", "url": ""}},
                   {"pusher": {"email": None}}):
        bad = {**good, **breaks}
        r = post(bad)
        assert r.status_code == 400, breaks
    for key, value in (("timestamp", "2026-11-28T10:00:00"), ("id", "ABC"), ("added", "x"),
                       ("author", {"name": "A"}), ("distinct", None)):
        bad = json.loads(json.dumps(good))
        bad["commits"][0][key] = value
        assert post(bad).status_code == 400, key
    missing = {k: v for k, v in good.items() if k != "head_commit"}
    assert post(missing).status_code == 400
    two = requests.post(url, data="payload=%7B%7D&payload=%7B%7D", headers={
        **h, "Content-Type": "application/x-www-form-urlencoded"})
    assert two.status_code == 400
    assert requests.post(url, data=b"<xml/>", headers={**h, "Content-Type": "application/xml"}).status_code == 400
    assert len(server.received()) == 3


def test_config_keys_are_validated_with_their_path(tmp_path):
    base = "tracker:\n  api: github-push\n  url: http://127.0.0.1:9\n"
    cfg = config_mod.parse(base)
    assert (cfg.tracker.github.format, cfg.tracker.github.max_commits_per_request) == ("form", 100)
    cfg = config_mod.parse(base + "  github:\n    format: json\n    max_commits_per_request: 7\n")
    assert (cfg.tracker.github.format, cfg.tracker.github.max_commits_per_request) == ("json", 7)
    for bad, where in (("format: xml", "tracker.github.format"), ("max_commits_per_request: 0",
                       "tracker.github.max_commits_per_request"), ("max_commits_per_request: true",
                       "tracker.github.max_commits_per_request"), ("max_commits_per_request: 5000",
                       "tracker.github.max_commits_per_request"), ("max_commits_per_request: many",
                       "tracker.github.max_commits_per_request")):
        with pytest.raises(ConfigError, match=re.escape(where)):
            config_mod.parse(base + f"  github:\n    {bad}\n")


def test_batches_keep_refs_apart_and_bodies_bounded():
    from hookagent.model import Commit
    from hookagent.sinks.github_push import BODY_BUDGET, GithubPushSink

    sink = GithubPushSink("http://127.0.0.1:9", TOKEN, max_commits=3)
    try:
        def c(i, ref, size=10):
            return Commit(f"{i:040x}", "A", "m" * size, repo="/r.git", ref=ref)
        plan = [c(1, "refs/heads/a"), c(2, "refs/heads/a"), c(3, "refs/heads/b"), c(4, "refs/heads/b"),
                c(5, "refs/heads/b"), c(6, "refs/heads/b"), c(7, "refs/heads/a")]
        got = [[int(x.commit_id, 16) for x in b] for b in sink.batches({}, plan)]
        assert got == [[1, 2], [3, 4, 5], [6], [7]]
        big = [c(i, "refs/heads/a", BODY_BUDGET // 2) for i in range(4)]
        assert [len(b) for b in sink.batches({}, big)] == [1, 1, 1, 1]
    finally:
        sink.close()
