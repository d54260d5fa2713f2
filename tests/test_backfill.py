"""`hookagent backfill` on git: real repositories, the real CLI, a real loopback receiver.

What it drives: revision ranges, date and author filters, merges, non-UTF-8 messages, the dry
run's JSON lines (exact schema, nothing else on stdout), link-only versus --with-state as the
receiver gets them, re-runs that enqueue nothing, commits the live post-commit hook already
sent or queued, interrupted runs (SIGKILL, SIGINT) resumed without duplicates, the progress
bar, the summary line, and the ledger underneath.
"""
from __future__ import annotations

import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from hookagent import backfill as backfill_mod
from hookagent import stories as grammar
from hookagent.devserver import DevServer
from hookagent.ledger import Ledger
from testing.gitgate import GitGate
from testing.repos import git, git_out, git_work_tree, rev, run
from testing.site import TOKEN, Site
from testing.terminal import stderr_on_a_terminal
from testing.wait import PATIENCE, wait_until

SUMMARY = re.compile(r"^hookagent: backfill: scanned (\d+) commits in [\d.]+s \([\d,]+/s\);"
                     r" (\d+) reference (\d+) stories; (enqueued|would enqueue) (\d+);"
                     r" (skipped|would skip) (\d+) already queued or sent$", re.M)


# ---------------------------------------------------------------------- helpers
def commit(repo: Path, message: str | bytes, *, author: tuple[str, str] | None = None,
           date: str | None = None, config: tuple[str, ...] = (), name: str = "file.txt") -> str:
    """A real `git commit` (hooks fire) changing one file; returns the new sha."""
    env = dict(os.environ)
    if author:
        env.update(GIT_AUTHOR_NAME=author[0], GIT_AUTHOR_EMAIL=author[1])
    if date:
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    with open(repo / name, "a", encoding="utf-8") as fh:
        fh.write(os.urandom(4).hex() + "\n")
    git(repo, "add", name)
    data = message if isinstance(message, bytes) else message.encode("utf-8")
    run(["git", "-C", str(repo), *config, "commit", "-q", "-F", "-"], input=data, env=env)
    return rev(repo)


def fast_history(path: Path, n: int, every: int = 1) -> Path:
    """A git repository of n commits made with `git fast-import` (seconds for thousands);
    every `every`-th message references story 1000000+i with a keyword."""
    run(["git", "init", "-q", "-b", "main", str(path)])
    lines = []
    for i in range(1, n + 1):
        msg = f"Change {i}" + (f" [fixes #{1_000_000 + i}]" if i % every == 0 else "") + "\n"
        data = msg.encode()
        lines.append(b"commit refs/heads/main\n")
        lines.append(b"committer Dev <dev@example.com> %d +0000\n" % (1_600_000_000 + i))
        lines.append(b"data %d\n%s\n" % (len(data), data))
    run(["git", "-C", str(path), "fast-import", "--quiet"], input=b"".join(lines))
    return path


def summary(stderr: str) -> dict:
    m = SUMMARY.search(stderr)
    assert m, f"no summary line on stderr:\n{stderr}"
    return {"scanned": int(m[1]), "referencing": int(m[2]), "stories": int(m[3]),
            "enqueued": int(m[5]), "skipped": int(m[7])}


def backfill(site: Site, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    proc = site.cli("backfill", *args)
    if ok:
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def jsonl(proc: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines()]


def story_ids(proc: subprocess.CompletedProcess) -> set[int]:
    return {s["id"] for rec in jsonl(proc) for s in rec["stories"]}


@pytest.fixture
def site(tmp_path, server):
    return Site(tmp_path, server.url)


# ---------------------------------------------------------------------- dry run output
def test_dry_run_jsonl_has_the_exact_schema_and_nothing_else_on_stdout(tmp_path, site):
    repo = git_work_tree(tmp_path / "repo")
    messages = {
        "a": "Torpedoes [fixes #123456]\n\nLonger body\nwith lines & <tags>",
        "b": "no story here",
        "c": "Merge pull request #12 from a/b",
        "d": "Shields [#2, delivers #3] and [#4]",
        "e": "[WIP] not a reference #5",
        "f": "Emoji 🚀 日本語 [Finishes #7]",
        "g": 'Quotes "q" \\ back\\slash\ttab \x01\x1f </script> [#8]',
    }
    shas = {k: commit(repo, m) for k, m in messages.items()}
    proc = backfill(site, str(repo), "--dry-run", "--format", "jsonl")
    records = jsonl(proc)
    assert proc.stdout.endswith("\n") and len(proc.stdout.splitlines()) == len(records) == 4
    for line, rec in zip(proc.stdout.splitlines(), records):
        assert line == json.dumps(rec, ensure_ascii=False), "exactly what json.dumps writes"
        assert list(rec) == ["commit_id", "author", "date", "message", "url", "stories"]
        assert re.fullmatch(r"[0-9a-f]{40}", rec["commit_id"])
        assert rec["author"] == "Ada Tester" and rec["url"] is None
        assert datetime.fromisoformat(rec["date"]).tzinfo is not None
        assert rec["date"] == git_out(repo, "log", "-1", "--format=%aI", rec["commit_id"])
        for story in rec["stories"]:
            assert list(story) == ["id", "state"] and isinstance(story["id"], int)
    by_id = {rec["commit_id"]: rec for rec in records}
    assert [rec["commit_id"] for rec in records] == [shas["g"], shas["f"], shas["d"], shas["a"]], "git log order"
    assert by_id[shas["g"]]["message"].rstrip("\n") == messages["g"]
    assert by_id[shas["a"]]["message"].rstrip("\n") == messages["a"]
    assert by_id[shas["a"]]["stories"] == [{"id": 123456, "state": "finished"}]
    assert by_id[shas["d"]]["stories"] == [{"id": 2, "state": "delivered"}, {"id": 3, "state": "delivered"},
                                           {"id": 4, "state": None}]
    assert by_id[shas["f"]]["stories"] == [{"id": 7, "state": "finished"}]
    assert by_id[shas["f"]]["message"].startswith("Emoji 🚀 日本語")
    s = summary(proc.stderr)
    assert s == {"scanned": 8, "referencing": 4, "stories": 6, "enqueued": 4, "skipped": 0}
    assert "would enqueue 4" in proc.stderr
    assert not Path(site.data["spool_dir"]).exists(), "a dry run creates nothing"


def test_dry_run_text_format_and_links_from_repos_rules(tmp_path, server):
    repo = git_work_tree(tmp_path / "repo")
    site = Site(tmp_path, server.url, repos=[{"path": str(tmp_path / "*"),
                                              "url": "https://git.example.com/{repo}/commit/{commit_id}"}])
    sha = commit(repo, "Engines [delivers #42]\n\nbody")
    text = backfill(site, str(repo), "--dry-run")
    assert text.stdout == f"{sha[:12]} {git_out(repo, 'log', '-1', '--format=%as')} Ada Tester: #42 (delivered)" \
                          f"  Engines [delivers #42]\n"
    rec, = jsonl(backfill(site, str(repo), "--dry-run", "--format", "jsonl"))
    assert rec["url"] == f"https://git.example.com/repo/commit/{sha}"


def test_dry_run_output_cut_short_by_a_closed_pipe_is_not_an_error(tmp_path, site):
    repo = fast_history(tmp_path / "big", 3000)
    cmd = [sys.executable, "-m", "hookagent", "backfill", "--config", str(site.config_path), str(repo),
           "--dry-run", "--format", "jsonl"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = p.stdout.readline()
    p.stdout.close()       # like `| head -1`
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 0, err
    assert json.loads(first)["stories"] == [{"id": 1_003_000, "state": "finished"}]
    assert "Traceback" not in err and "Broken pipe" not in err


# ---------------------------------------------------------------------- what is selected
def test_revision_ranges_branch_names_all_and_log_options(tmp_path, site):
    repo = git_work_tree(tmp_path / "repo")
    commit(repo, "one [#1]")
    base = commit(repo, "two [#2]")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, "feature work [#10]")
    commit(repo, "more feature work [#11]")
    git(repo, "checkout", "-q", "main")
    commit(repo, "three [#3]")
    git(repo, "checkout", "-q", "--orphan", "lonely")
    commit(repo, "unrelated root [#20]")
    git(repo, "checkout", "-q", "main")

    def ids(*revs: str) -> set[int]:
        return story_ids(backfill(site, str(repo), "--dry-run", "--format", "jsonl", *revs))

    assert ids() == {1, 2, 3}                                    # HEAD by default
    assert ids("feature") == {1, 2, 10, 11}                      # a branch name
    assert ids("main..feature") == {10, 11}                      # A..B
    assert ids("feature", "^main") == {10, 11}
    assert ids(f"{base}..main") == {3}
    assert ids("main", "lonely") == {1, 2, 3, 20}                # several
    assert ids("--all") == {1, 2, 3, 10, 11, 20}                 # every ref
    assert ids("--", "--branches=feat*") == {1, 2, 10, 11}       # other git log options after --
    # A subdirectory of the work tree is the same repository.
    (repo / "sub").mkdir()
    assert story_ids(backfill(site, str(repo / "sub"), "--dry-run", "--format", "jsonl")) == {1, 2, 3}

    bad = backfill(site, str(repo), "--dry-run", "no-such-branch", ok=False)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "no-such-branch" in bad.stderr and "REVSPEC takes what `git log` takes" in bad.stderr
    patch = backfill(site, str(repo), "--dry-run", "--", "-p", ok=False)
    assert patch.returncode == 2 and "cannot be used here" in patch.stderr
    missing = backfill(site, str(tmp_path / "nowhere"), "--dry-run", ok=False)
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    run(["git", "init", "-q", str(tmp_path / "empty")])
    empty = backfill(site, str(tmp_path / "empty"), "--dry-run")
    assert empty.stdout == "" and "no commits yet" in empty.stderr
    (tmp_path / "plain").mkdir()
    plain = backfill(site, str(tmp_path / "plain"), "--dry-run", ok=False)
    assert plain.returncode == 2 and "neither a git nor an svn repository" in plain.stderr


def test_since_until_and_author_filters(tmp_path, site):
    repo = git_work_tree(tmp_path / "repo")
    commit(repo, "old [#1]", date="2019-03-01T12:00:00+00:00")
    commit(repo, "spring [#2]", date="2020-04-01T12:00:00+00:00", author=("Grace Hopper", "grace@navy.mil"))
    commit(repo, "summer [#3]", date="2020-07-01T12:00:00+00:00")
    commit(repo, "new [#4]", date="2021-01-05T12:00:00+00:00", author=("Grace Hopper", "grace@navy.mil"))

    def ids(*args: str) -> set[int]:
        return story_ids(backfill(site, str(repo), "--dry-run", "--format", "jsonl", *args))

    assert ids("--since", "2020-01-01") == {2, 3, 4}
    assert ids("--until", "2020-06-01") == {1, 2}
    assert ids("--since", "2020-01-01", "--until", "2020-12-31") == {2, 3}
    assert ids("--author", "Grace") == {2, 4}
    assert ids("--author", "navy\\.mil", "--until", "2020-12-31") == {2}
    recs = jsonl(backfill(site, str(repo), "--dry-run", "--format", "jsonl", "--author", "Grace"))
    assert {r["author"] for r in recs} == {"Grace Hopper"}
    assert [r["date"] for r in recs] == ["2021-01-05T12:00:00+00:00", "2020-04-01T12:00:00+00:00"]


def test_merges_each_commit_once_and_the_merge_commit_itself(tmp_path, site, server):
    repo = git_work_tree(tmp_path / "repo")
    commit(repo, "before [#1]")
    git(repo, "checkout", "-q", "-b", "topic")
    topic = commit(repo, "topic work [fixes #5]", name="topic.txt")
    git(repo, "checkout", "-q", "main")
    main_only = commit(repo, "main work [#6]", name="main.txt")
    git(repo, "merge", "-q", "--no-ff", "topic", "-m", "Merge topic [#7]")
    merge = rev(repo)
    recs = jsonl(backfill(site, str(repo), "--dry-run", "--format", "jsonl"))
    assert sorted(r["commit_id"] for r in recs) == sorted([rev(repo, "HEAD~1~1"), topic, main_only, merge])
    assert len({r["commit_id"] for r in recs}) == len(recs) == 4
    assert summary(backfill(site, str(repo)).stderr)["enqueued"] == 4
    assert site.cli("flush").returncode == 0
    got = sorted(r["commit_id"] for r in server.received())
    assert got == sorted([rev(repo, "HEAD~1~1"), topic, main_only, merge])


def test_latin1_messages_declared_or_not_arrive_as_text(tmp_path, site, server):
    repo = git_work_tree(tmp_path / "repo")
    declared_latin1 = "Café crème [fixes #8] naïve, Zoë"
    commit(repo, declared_latin1.encode("latin-1"), config=("-c", "i18n.commitEncoding=ISO-8859-1"))
    assert b"\nencoding ISO-8859-1\n" in git(repo, "cat-file", "commit", "HEAD").stdout
    commit(repo, b"Raw bytes [#9] r\xe9sum\xe9")          # no encoding header, not UTF-8
    recs = {r["stories"][0]["id"]: r for r in jsonl(backfill(site, str(repo), "--dry-run", "--format", "jsonl"))}
    assert recs[8]["message"].rstrip("\n") == declared_latin1
    assert recs[9]["message"].rstrip("\n") == "Raw bytes [#9] résumé"   # undeclared, not UTF-8: cp1252
    backfill(site, str(repo), "--with-state")
    assert site.cli("flush").returncode == 0
    got = {r["message"].rstrip("\n") for r in server.received()}
    assert got == {declared_latin1, "Raw bytes [#9] résumé"}


# ---------------------------------------------------------------------- enqueueing
def test_link_only_by_default_states_do_not_move_and_a_second_run_enqueues_nothing(tmp_path):
    with DevServer(token=TOKEN, stories=[1, 2, 3, 4]) as server:
        site = Site(tmp_path, server.url, api="v5")
        repo = git_work_tree(tmp_path / "repo")
        msgs = ["Torpedoes [fixes #1]", "Shields [#2, delivers #3]", "Hull [#4]", "no story"]
        for m in msgs:
            commit(repo, m)
        first = backfill(site, str(repo))
        assert summary(first.stderr) == {"scanned": 5, "referencing": 3, "stories": 4, "enqueued": 3, "skipped": 0}
        assert "hookagent flush" in first.stderr
        again = backfill(site, str(repo))
        assert summary(again.stderr)["enqueued"] == 0 and summary(again.stderr)["skipped"] == 3
        assert site.cli("flush").returncode == 0
        got = sorted(r["message"].rstrip("\n") for r in server.received())
        assert got == sorted(["Torpedoes [#1] (fixes)", "Shields [#2, #3] (delivers)", "Hull [#4]"])
        assert got == sorted(grammar.neutralise(m) for m in msgs[:3])
        stories = server.stories()
        assert {sid: s["current_state"] for sid, s in stories.items()} == {1: "started", 2: "started",
                                                                            3: "started", 4: "started"}
        assert all(len(s["comments"]) == 1 for s in stories.values())
        # Once sent, a third run (and a dry run) still find nothing new.
        third = backfill(site, str(repo))
        assert summary(third.stderr)["enqueued"] == 0 and summary(third.stderr)["skipped"] == 3
        dry = backfill(site, str(repo), "--dry-run", "--format", "jsonl")
        assert len(jsonl(dry)) == 3, "the dry run lists every referencing commit"
        assert "would enqueue 0; would skip 3" in dry.stderr
        assert site.cli("flush").returncode == 0
        assert len(server.received()) == 3


def test_with_state_sends_the_keywords_and_moves_the_stories(tmp_path):
    with DevServer(token=TOKEN, stories=[1, 2, 3]) as server:
        site = Site(tmp_path, server.url)
        repo = git_work_tree(tmp_path / "repo")
        msgs = ["Torpedoes [fixes #1]", "Shields [delivers #2]", "Hull [#3]"]
        for m in msgs:
            commit(repo, m)
        backfill(site, str(repo), "--with-state")
        assert site.cli("flush").returncode == 0
        assert sorted(r["message"].rstrip("\n") for r in server.received()) == sorted(msgs)
        states = {sid: s["current_state"] for sid, s in server.stories().items()}
        assert states == {1: "finished", 2: "delivered", 3: "started"}


def test_commits_the_live_post_commit_hook_sent_or_queued_are_skipped(tmp_path, site, server):
    repo = git_work_tree(tmp_path / "repo")
    before = [commit(repo, "before install [fixes #1]"), commit(repo, "also before [#2]")]
    proc = subprocess.run([sys.executable, "-m", "hookagent", "install", str(repo), "--config",
                           str(site.config_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    sent_by_hook = commit(repo, "live [fixes #3]")
    assert site.cli("flush").returncode == 0
    assert [r["commit_id"] for r in server.received()] == [sent_by_hook]
    queued_by_hook = commit(repo, "live, not flushed yet [delivers #4]")   # autostart is off
    assert len(site.queued()) == 1
    out = backfill(site, str(repo))
    assert summary(out.stderr) == {"scanned": 5, "referencing": 4, "stories": 4, "enqueued": 2, "skipped": 2}
    assert site.cli("flush").returncode == 0
    got = {r["commit_id"]: r["message"].rstrip("\n") for r in server.received()}
    assert len(server.received()) == 4 == len(got)
    assert got == {before[0]: "before install [#1] (fixes)", before[1]: "also before [#2]",
                   sent_by_hook: "live [fixes #3]", queued_by_hook: "live, not flushed yet [delivers #4]"}
    assert server.stories()[3]["current_state"] == "finished"
    assert server.stories()[4]["current_state"] == "delivered"
    assert server.stories()[1]["current_state"] == "started"


def _backfill_process(site: Site, repo: Path, gate: GitGate, request: pytest.FixtureRequest) -> subprocess.Popen:
    """A backfill of ``repo`` reading its history through ``gate``: it stops half-way through
    the history until the test opens the gate, so it is surely interrupted mid-way. A test that
    fails before it opens the gate leaves neither process behind."""
    cmd = [sys.executable, "-m", "hookagent", "backfill", "--config", str(site.config_path), str(repo)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=gate.env(),
                            start_new_session=True)

    def cleanup() -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    request.addfinalizer(cleanup)
    return proc


def _wait_for_entries(site: Site, proc: subprocess.Popen, n: int) -> int:
    new = Path(site.data["spool_dir"]) / "new"

    def written() -> bool:
        return new.is_dir() and len([f for f in os.listdir(new) if f.endswith(".json")]) >= n
    if not wait_until(lambda: written() or proc.poll() is not None, interval=0.002) or not written():
        raise AssertionError(f"backfill ended (or hung) before writing {n} entries: {proc.poll()}")
    return n


def _all_delivered_once(site: Site, server: DevServer, repo: Path, total: int) -> None:
    assert site.cli("flush", timeout=300).returncode == 0
    got = [r["commit_id"] for r in server.received()]
    assert len(got) == len(set(got)) == total, f"{len(got)} received, {len(set(got))} distinct"
    assert set(got) == set(git_out(repo, "rev-list", "HEAD").split())


@pytest.mark.slow
def test_a_killed_run_resumes_and_nothing_reaches_the_server_twice(tmp_path, site, server, request):
    total = 8000
    repo = fast_history(tmp_path / "hist", total)
    gate = GitGate(tmp_path / "gate")   # never opened: the history's second half never comes
    proc = _backfill_process(site, repo, gate, request)
    _wait_for_entries(site, proc, 2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=PATIENCE)
    entries = len(os.listdir(Path(site.data["spool_dir"]) / "new"))
    assert 2 <= entries < total // backfill_mod.BATCH, "killed mid-way"
    again = backfill(site, str(repo))
    s = summary(again.stderr)
    assert s["scanned"] == total and s["enqueued"] + s["skipped"] == total
    third = summary(backfill(site, str(repo)).stderr)
    assert third["enqueued"] == 0 and third["skipped"] == total, "a third run has nothing left"
    _all_delivered_once(site, server, repo, total)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_stops_cleanly_and_the_next_one_continues(tmp_path, site, server, sig, request):
    total = 8000
    repo = fast_history(tmp_path / "hist", total)
    gate = GitGate(tmp_path / "gate")
    proc = _backfill_process(site, repo, gate, request)
    _wait_for_entries(site, proc, 1)
    proc.send_signal(sig)
    gate.open()   # the rest of the history comes after the signal: the backfill stops within a batch
    out, err = proc.communicate(timeout=PATIENCE)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again" in err and "Traceback" not in err
    first = summary(err)
    assert 0 < first["enqueued"] < total and first["scanned"] < total
    # What the interrupted run enqueued is in the ledger: the next run skips exactly that.
    again = summary(backfill(site, str(repo)).stderr)
    assert again["skipped"] == first["enqueued"] and again["enqueued"] == total - first["enqueued"]
    _all_delivered_once(site, server, repo, total)


# ---------------------------------------------------------------------- terminal and ledger
def test_progress_on_a_terminal_and_silence_elsewhere(tmp_path, site):
    repo = fast_history(tmp_path / "hist", 3000, every=3)
    cmd = [sys.executable, "-m", "hookagent", "backfill", "--config", str(site.config_path), str(repo),
           "--dry-run", "--format", "jsonl"]
    status, out, tty = stderr_on_a_terminal(cmd, timeout=60)
    assert status == 0
    tty = tty.decode()
    assert "\r" in tty and re.search(r"3,000(/3,000)? commits [\d,]+/s", tty), tty
    assert len(out.splitlines()) == 1000, "stdout still carries only the records"
    plain = backfill(site, str(repo), "--dry-run", "--format", "jsonl")
    assert "\r" not in plain.stderr and "/s ETA" not in plain.stderr
    assert plain.stderr.splitlines()[0].startswith("hookagent: backfill: scanned 3000 commits")


def test_progress_shows_count_rate_and_eta_once_the_total_is_known():
    stream = io.StringIO()
    known: list[int | None] = [None]
    p = backfill_mod.Progress(lambda: known[0], True, stream=stream)
    p.update(1000, force=True)
    assert re.search(r"\r1,000 commits [\d,]+/s $", stream.getvalue())
    known[0] = 4000
    p.update(2000, force=True)
    assert re.search(r"\r\[#{15}\.{15}\] 2,000/4,000 commits [\d,]+/s ETA \d+:\d\d $", stream.getvalue())
    p.done(4000)
    assert stream.getvalue().endswith(" \n") and "4,000/4,000" in stream.getvalue()
    silent = io.StringIO()
    backfill_mod.Progress(10, False, stream=silent).done(10)
    assert silent.getvalue() == ""


def test_ledger_remembers_per_destination_and_migrates_a_version_1_file(tmp_path):
    path = str(tmp_path / "ledger.sqlite3")
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE ledger (dest TEXT NOT NULL, ident TEXT NOT NULL, state TEXT NOT NULL,"
                     " at REAL NOT NULL, PRIMARY KEY (dest, ident)) WITHOUT ROWID;"
                     "INSERT INTO ledger VALUES ('v3 http://a', 'c1', 'sent', 1.0);"
                     "INSERT INTO ledger VALUES ('v3 http://a', 'c2', 'queued', 1.0);"
                     "INSERT INTO ledger VALUES ('v5 http://b', 'c1', 'queued', 1.0);")
    db.commit()
    db.close()
    led = Ledger(path)
    try:
        assert led.is_sent("v3 http://a", "c1") and not led.is_sent("v3 http://a", "c2")
        assert not led.is_sent("v5 http://b", "c1") and not led.is_sent("v9 nowhere", "c1")
        assert led.known("v3 http://a", ["c1", "c2", "c3"]) == {"c1", "c2"}
        assert led.known("v9 nowhere", ["c1"]) == set()
        led.mark_queued("v3 http://a", ["c1", "c3"])        # a sent commit stays sent
        assert led.is_sent("v3 http://a", "c1") and led.count("v3 http://a", "queued") == 2
        led.mark_sent("v5 http://b", "c1")
        assert led.count("v5 http://b", "sent") == 1 and led.count(None, "sent") == 2
        many = [f"{i:040x}" for i in range(1234)]
        led.mark_queued("v5 http://b", many)
        assert led.known("v5 http://b", many + ["zz"]) == set(many)
    finally:
        led.close()
    again = Ledger(path)      # reopened: the migrated file is the current version, data intact
    try:
        assert again.db.execute("PRAGMA user_version").fetchone()[0] == 3
        tables = {r[0] for r in again.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"dests", "commits", "changes", "copies"} <= tables
        assert again.count("v5 http://b", "queued") == 1234 and again.is_sent("v5 http://b", "c1")
    finally:
        again.close()
