"""The agent on a spool whose disk refuses writes (full, read-only): nothing lost, nothing buried,
no agent lost, and the queue drains by itself once the disk takes writes again.

Real parts only: a tmpfs of a few MB holds the spool, the ledger and the log; commits go
through installed hooks and a background agent they start; the receiver is a real server
(DevServer). Root only (mount): skipped otherwise.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import time

import pytest

from testing.mounts import SmallDisk
from testing.site import (Site, background_agent_pid, bare_repo_with_hook, commit_file, git,
                          kill_background_agent, work_tree_with_hook)
from testing.wait import wait_until

FULL = "its file system is full"
READ_ONLY = "its file system is read-only"


@pytest.fixture
def disk(tmp_path, request) -> SmallDisk:
    return SmallDisk(tmp_path / "small", request)


def site_on(disk: SmallDisk, tmp_path, server, request, **overrides) -> Site:
    """A site whose spool (with its ledger and the agent's log) is on the small disk; a
    background agent a hook started is stopped at teardown, before the disk goes."""
    site = Site(tmp_path, server.url, spool_dir=str(disk.path / "spool"), **overrides)
    request.addfinalizer(lambda: kill_background_agent(site))
    return site


def names(site: Site, queue: str) -> list[str]:
    return sorted(os.listdir(site.spool.path(queue)))


def messages(server) -> list[str]:
    return sorted(r["message"].strip() for r in server.received())


def test_a_full_disk_pauses_the_background_agent_which_delivers_everything_once_there_is_room(
        tmp_path, request, server, disk):
    site = site_on(disk, tmp_path, server, request, agent={"autostart": True})
    repo = work_tree_with_hook(tmp_path, site)
    server.hold()     # the first request waits: the agent is busy with it while the disk fills
    assert commit_file(repo, "First [#1]").returncode == 0
    assert wait_until(lambda: server.held() == 1), "the hook's background agent sends the commit"
    pid = background_agent_pid(site)
    assert commit_file(repo, "Second [#2]").returncode == 0
    assert len(site.spool.inbox_names()) == 1, "a record the busy agent has not read yet"
    [first] = [n.partition("@")[0] for n in names(site, "cur")]   # NAME@AGENT while claimed

    disk.fill()
    server.chaos = 1.0   # from now on every answer is a retryable failure (5xx, 429, reset)
    server.release()     # ... so the agent must defer the entry: a new file, on a full disk
    assert wait_until(lambda: names(site, "new") == [first] or not site.background_flush_running())
    assert site.background_flush_running() and background_agent_pid(site) == pid, \
        "the agent outlives the full disk"
    assert names(site, "cur") == [] and names(site, "deferred") == [] and names(site, "dead") == []
    assert len(site.spool.inbox_names()) == 1, "a record stays in the inbox until its entry is written"
    status = site.cli("status")
    assert status.returncode == 2 and status.stderr.count("\n") == 1 and FULL in status.stderr, status.stderr
    assert "in flight:    0 commit(s)" in status.stdout and "pending:      1 commit(s)" in status.stdout

    disk.free()            # room again: no commit, no flush by hand
    server.chaos = 0.0
    assert wait_until(lambda: messages(server) == ["First [#1]", "Second [#2]"]), server.received()
    assert wait_until(lambda: not site.spool.inbox_names() and names(site, "new") == names(site, "cur") == [])
    assert names(site, "deferred") == [] and names(site, "dead") == []
    assert background_agent_pid(site) == pid, "the agent that waited out the full disk delivered"
    assert json.loads(site.cli("status", "--json").stdout)["sent"] == 2
    log = (disk.path / "spool" / "agent.log").read_text()
    assert log.count(FULL) == 1, "one line for the full disk, not one per try"


def test_an_accepted_commit_the_ledger_cannot_record_is_kept_and_not_sent_twice(tmp_path, request, server, disk):
    """The tracker answered 2xx but SQLite cannot write its ledger ("database or disk is full").
    The entry is kept (never buried); the agent remembers the answer, records it once there is
    room and drops the entry without sending it again. (Only an agent that ended before the
    ledger could record the answer would send it again: the ledger never knew.)"""
    site = site_on(disk, tmp_path, server, request, agent={"autostart": True})
    repo = work_tree_with_hook(tmp_path, site)
    server.hold()
    assert commit_file(repo, "Only [#1]").returncode == 0
    assert wait_until(lambda: server.held() == 1)
    pid = background_agent_pid(site)
    [entry] = [n.partition("@")[0] for n in names(site, "cur")]
    ledger = disk.path / "spool" / "ledger.sqlite3"
    with contextlib.closing(sqlite3.connect(ledger)) as db:   # empty its write-ahead log: the
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()   # next write needs a block
    assert busy == 0 and os.path.getsize(f"{ledger}-wal") == 0

    disk.fill()
    server.release()     # 200: the tracker has it; the ledger cannot say so
    assert wait_until(lambda: len(server.received()) == 1)
    assert wait_until(lambda: names(site, "new") == [entry] or not site.background_flush_running())
    assert site.background_flush_running() and background_agent_pid(site) == pid
    assert names(site, "dead") == [], "an entry is never buried because our disk is full"

    disk.free()
    assert wait_until(lambda: names(site, "new") == names(site, "cur") == [])
    assert names(site, "dead") == [] and names(site, "deferred") == []
    assert server.requests_seen() == 1 and len(server.received()) == 1, "not sent a second time"
    assert json.loads(site.cli("status", "--json").stdout)["sent"] == 1


@pytest.mark.parametrize("moment", ["backoff", "in flight"])
def test_a_spool_made_read_only_under_the_running_agent(tmp_path, request, server, disk, moment):
    """Read-only while the agent sleeps through a backoff (the next pass cannot claim) or while
    its request is in flight (it cannot file the answer, nor even put the entry back: the entry
    stays claimed by the live agent, which puts it back once the spool is writable again)."""
    site = site_on(disk, tmp_path, server, request, agent={"autostart": True})
    repo = work_tree_with_hook(tmp_path, site)
    if moment == "backoff":
        server.chaos = 1.0   # the tracker fails: the background agent stays, retrying
    else:
        server.hold()
    assert commit_file(repo, "While read-only [#1]").returncode == 0
    dest = site.config.tracker.destination
    if moment == "backoff":
        assert wait_until(lambda: (site.spool.read_state(dest).get("failures") or 0) >= 1)
    else:
        assert wait_until(lambda: server.held() == 1)
    pid = background_agent_pid(site)

    disk.read_only()
    if moment == "in flight":
        server.chaos = 1.0
        server.release()    # a retryable failure the agent cannot file: deferred/ is read-only
    log = disk.path / "spool" / "agent.log"     # opened before: it can still be written
    assert wait_until(lambda: READ_ONLY in log.read_text() or not site.background_flush_running())
    assert site.background_flush_running() and background_agent_pid(site) == pid, \
        "the agent outlives the read-only spool"
    status = site.cli("status", "--json", cwd=str(tmp_path))   # its own process: nothing left open there
    assert status.returncode == 2 and READ_ONLY in status.stderr, status.stderr
    st = json.loads(status.stdout)
    assert st["pending"]["commits"] + st["deferred"]["commits"] + st["in_flight"] == 1 and st["dead"]["commits"] == 0
    assert st["in_flight"] == (1 if moment == "in flight" else 0), "claimed by the agent, which is alive"

    disk.writable()
    server.chaos = 0.0
    assert wait_until(lambda: messages(server) == ["While read-only [#1]"]), server.received()
    assert wait_until(lambda: names(site, "new") == names(site, "cur") == names(site, "deferred") == [])
    assert names(site, "dead") == [] and background_agent_pid(site) == pid
    assert log.read_text().count(READ_ONLY) == 1


def test_records_wait_in_the_inbox_while_the_disk_is_full_and_are_queued_when_there_is_room(
        tmp_path, request, server, disk):
    """A commit's record and a push's record: neither can become an entry on a full disk. Both
    stay in the inbox (a push record is not set aside as unreadable), the agent pauses, and the
    next pass after the pause queues and delivers them."""
    from hookagent.agent import lifetime
    site = site_on(disk, tmp_path, server, request)
    (tmp_path / "local").mkdir()
    repo = work_tree_with_hook(tmp_path / "local", site)
    assert commit_file(repo, "Local [#1]").returncode == 0
    _, work = bare_repo_with_hook(tmp_path, site)
    assert commit_file(work, "Pushed [#2]").returncode == 0
    git(work, "push", "-q", "origin", "main")
    assert len(site.spool.inbox_names()) == 2

    agent = lifetime.build(site.config)
    try:
        disk.fill()
        result = agent.run_once(time.time())
        assert result.paused_until and FULL in result.errors[-1], result
        assert len(site.spool.inbox_names()) == 2 and names(site, "new") == []
        disk.free()
        result = agent.run_once(result.paused_until)   # the pause is over
        assert result.ingested == 2 and result.sent == 2, result
    finally:
        agent.close()
    assert messages(server) == ["Local [#1]", "Pushed [#2]"]
    assert site.spool.inbox_names() == [] and names(site, "new") == names(site, "dead") == []


def test_a_log_the_disk_refuses_costs_one_warning_and_stops_nothing(tmp_path, request, server, disk):
    """The log on a full disk: the commits still go, and the refused log lines cost one warning
    on stderr, not a traceback for each."""
    site = Site(tmp_path, server.url, agent={"log_file": str(disk.path / "agent.log")})
    site.enqueue_fake_commits(3)
    disk.fill()
    proc = site.cli("flush", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert len(server.received()) == 3 and json.loads(site.cli("status", "--json").stdout)["sent"] == 3
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hookagent: warning: cannot write log {disk.path}"), lines


@pytest.mark.parametrize("exc, says", [
    (OSError(errno.ENOSPC, "No space left on device", "/s/tmp/x"), FULL),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "over the disk quota"),
    (OSError(errno.EROFS, "Read-only file system"), READ_ONLY),
    (sqlite3.OperationalError("database or disk is full"), FULL),
    (sqlite3.OperationalError("attempt to write a readonly database"), READ_ONLY),
    (OSError(errno.EACCES, "Permission denied"), None),
    (FileNotFoundError(errno.ENOENT, "No such file or directory"), None),
    (sqlite3.OperationalError("no such table: commits"), None),
    (sqlite3.OperationalError("disk I/O error"), None),    # and the file system has room: not ours
    (ValueError("a bug"), None),
])
def test_the_disk_refusing_a_write_is_told_from_every_other_error(tmp_path, exc, says):
    """What localdisk.refusal tells apart: the agent's own disk (pause, keep the entry) from
    anything else (a bug or a permission: the existing paths, dead/ for an internal error)."""
    from hookagent import localdisk
    text = localdisk.refusal(exc, str(tmp_path))
    if says is None:
        assert text is None
    else:
        assert text.startswith(f"cannot write the spool {tmp_path} (") and says in text and "\n" not in text
