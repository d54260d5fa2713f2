"""Per-story order: each story's events reach the tracker in commit order, across retries,
backoffs, backfill and an agent killed mid-drain (a real receiver, real hooks, real processes)."""
from __future__ import annotations

import collections
import signal
import subprocess
import sys
import time

import pytest

from hookagent import backfill as backfill_mod
from hookagent import stories
from hookagent.agent import lifetime
from hookagent.model import Commit
from hookagent.spool import commit_entry_name, make_entry
from testing.repos import git_out, git_work_tree
from testing.events import queue_stories
from testing.site import Site, commit_file, work_tree_with_hook
from testing.wait import wait_until


def ids(server) -> list[str]:
    return [r["commit_id"] for r in server.received()]


def per_story(server) -> dict[int, list[str]]:
    """Each story's commit ids in the order they first arrived (a repeat after a crash is not a
    new event)."""
    seen: dict[int, list[str]] = collections.defaultdict(list)
    for r in server.received():
        for ref in stories.parse(r["message"]):
            if r["commit_id"] not in seen[ref.id]:
                seen[ref.id].append(r["commit_id"])
    return dict(seen)


def head(repo) -> str:
    return git_out(repo, "rev-parse", "HEAD").strip()


def test_a_503_on_a_story_first_event_then_two_more_queued_in_the_backoff_arrive_in_commit_order(tmp_path, server):
    site = Site(tmp_path, server.url, retry={"min_backoff": 30, "max_backoff": 60})
    repo = work_tree_with_hook(tmp_path, site)
    assert commit_file(repo, "Start the torpedo bay [#77]").returncode == 0
    first = head(repo)
    agent = lifetime.build(site.config)
    try:
        t0 = time.time()
        server.fail_next(1, 503)
        result = agent.run_once(t0)              # the hook's record read, the 503: deferred
        assert result.deferred == 1 and ids(server) == []
        # Two more events of the story, recorded (by the real hook) and queued during the backoff.
        assert commit_file(repo, "Torpedo bay ready [finishes #77]").returncode == 0
        finish = head(repo)
        assert commit_file(repo, "Shipped [delivers #77]").returncode == 0
        deliver = head(repo)
        assert agent.run_once(t0 + 1).sent == 0    # paused: queued, nothing sent
        later = t0 + 120                            # the backoff is over
        while agent.run_once(later).entries_done:
            pass
    finally:
        agent.close()
    assert ids(server) == [first, finish, deliver]
    assert server.stories()[77]["current_state"] == "delivered"


def test_a_deferred_story_blocks_only_its_own_later_events(tmp_path, server):
    site = Site(tmp_path, server.url, retry={"min_backoff": 30, "max_backoff": 60})
    dest = site.config.tracker.destination
    spool = site.spool

    def queue(cid: str, message: str) -> None:
        c = Commit(cid, "Ada", message, date="2026-11-28T10:00:00+00:00")
        spool.enqueue(commit_entry_name(dest, cid), make_entry(dest, [c.to_dict()]))

    queue("a1", "[#1] first of story 1")
    queue("b1", "[#2] first of story 2")
    agent = lifetime.build(site.config)
    try:
        t0 = time.time()
        server.fail_next(1, 503)
        assert agent.run_once(t0).deferred == 1     # a1 deferred
        queue("a2", "[finishes #1] second of story 1")
        queue("c1", "[#3 #1] story 3, and 1 again")
        queue("b2", "[finishes #2] second of story 2")
        while agent.run_once(t0 + 120).entries_done:
            pass
    finally:
        agent.close()
    got = ids(server)
    assert sorted(got) == ["a1", "a2", "b1", "b2", "c1"]
    for before, after in (("a1", "a2"), ("a2", "c1"), ("b1", "b2")):
        assert got.index(before) < got.index(after), got


def test_backfill_arrives_oldest_first(tmp_path, server, monkeypatch):
    site = Site(tmp_path, server.url)
    repo = git_work_tree(tmp_path / "hist")
    for i in range(10):   # story 5 on every commit, story 6 on every third
        extra = " [#6]" if i % 3 == 0 else ""
        assert commit_file(repo, f"Step {i} [#5]{extra}").returncode == 0
    oldest_first = git_out(repo, "rev-list", "--reverse", "HEAD").split()[-10:]
    monkeypatch.setattr(backfill_mod, "BATCH", 4)    # three entries: written newest first
    spool = site.spool
    from hookagent import context
    ledger = context.open_ledger(spool)
    try:
        summary = backfill_mod.run(backfill_mod.git_commits(str(repo), [], None, None, None, []),
                                   dry_run=False, with_state=False, out=None,
                                   progress=backfill_mod.Progress(None, False), spool=spool, ledger=ledger,
                                   destination=site.config.tracker.destination)
    finally:
        ledger.close()
    assert summary.enqueued == 10
    assert site.cli("flush").returncode == 0
    assert ids(server) == oldest_first
    assert per_story(server)[6] == oldest_first[::3]


def test_a_backfill_still_queueing_holds_its_entries(tmp_path, server):
    from hookagent.spool import BackfillLock
    site = Site(tmp_path, server.url)
    dest = site.config.tracker.destination
    spool = site.spool
    running = BackfillLock(spool, dest)
    try:
        c = Commit("old1", "Ada", "[#8] old", date="2020-01-01T00:00:00+00:00")
        spool.enqueue("b-" + commit_entry_name(dest, "x")[2:],
                      make_entry(dest, [c.to_dict()], source="backfill", seq=-5))
        live = Commit("new1", "Ada", "[#9] new", date="2026-01-01T00:00:00+00:00")
        spool.enqueue(commit_entry_name(dest, "new1"), make_entry(dest, [live.to_dict()]))
        proc = site.cli("flush")
        assert ids(server) == ["new1"], proc.stderr    # story 9 is not the backfill's: it goes
    finally:
        running.close()
    assert site.cli("flush").returncode == 0
    assert ids(server) == ["new1", "old1"]


@pytest.mark.slow
def test_an_agent_killed_and_restarted_keeps_each_story_in_order(tmp_path, server):
    # A short real backoff: the first entry of story 1 is deferred (its due time after the
    # entries queued next), then the agent dies mid-drain, twice, and a new one finishes.
    site = Site(tmp_path, server.url, tracker={"timeout": 600},
                retry={"min_backoff": 2, "max_backoff": 2})
    want = queue_stories(site, 1, 1)
    server.fail_next(1, 503)
    site.cli("flush")
    assert site.spool.count("deferred") == 1           # deferred: the destination pauses
    more = queue_stories(site, 3, 20, first=1, before=want)
    cmd = [sys.executable, "-m", "hookagent", "flush", "--quiet", "--wait", "60", "--config", str(site.config_path)]
    kills = 0
    for after in (7, 13):
        server.hold(after=after)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            assert wait_until(lambda: server.held() or proc.poll() is not None)
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stderr.close()
        kills += 1
        server.release()
        assert wait_until(lambda: server.held() == 0)
    final = site.cli("flush", "--wait", "60")
    assert final.returncode == 0, final.stderr
    assert per_story(server) == more
    counts = collections.Counter(ids(server))
    # at most the requests in flight when each agent died: one per lane
    assert sum(c - 1 for c in counts.values()) <= kills * site.config.agent.concurrency


def test_github_push_sends_a_refs_pushes_in_order_after_a_503(tmp_path, server):
    # Two pushes to main, of different stories: the second, pushed while the first waits for
    # its retry, goes after it (a push's keys are its stories and its refs).
    from testing.site import bare_repo_with_hook, git
    site = Site(tmp_path, server.url, api="github-push", retry={"min_backoff": 30, "max_backoff": 60})
    bare, work = bare_repo_with_hook(tmp_path, site)
    assert commit_file(work, "Phasers [#11]").returncode == 0
    one = head(work)
    git(work, "push", "-q", "origin", "main")
    agent = lifetime.build(site.config)
    try:
        t0 = time.time()
        server.fail_next(1, 503)
        assert agent.run_once(t0).deferred == 1
        assert commit_file(work, "Shields [#12]").returncode == 0
        two = head(work)
        git(work, "push", "-q", "origin", "main")
        assert agent.run_once(t0 + 1).sent == 0      # paused: the second push queued
        while agent.run_once(t0 + 120).entries_done:
            pass
    finally:
        agent.close()
    assert [[c["id"] for c in p["commits"]] for p in server.pushes()] == [[one], [two]]
