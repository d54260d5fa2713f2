"""Lanes: agent.concurrency requests in flight at once, never more, each story still in commit
order, crash-safe (a real receiver that counts the POSTs it answers at once, real processes)."""
from __future__ import annotations

import collections
import random
import signal
import subprocess
import sys

import pytest

from hookagent import config as config_mod
from hookagent import stories
from hookagent.devserver import DevServer
from hookagent.errors import ConfigError
from hookagent.model import Commit
from hookagent.spool import commit_entry_name, make_entry
from testing.events import queue_stories
from testing.site import TOKEN, Site
from testing.terminal import stderr_on_a_terminal
from testing.wait import wait_until


def per_story(server) -> dict[int, list[str]]:
    """Each story's commit ids in the order they first arrived."""
    seen: dict[int, list[str]] = collections.defaultdict(list)
    for r in server.received():
        for ref in stories.parse(r["message"]):
            if r["commit_id"] not in seen[ref.id]:
                seen[ref.id].append(r["commit_id"])
    return dict(seen)


def flush_cmd(site: Site, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hookagent", "flush", "--quiet", *extra, "--config", str(site.config_path)]


@pytest.mark.parametrize("text", ["agent: {concurrency: 0}", "agent: {concurrency: 33}",
                                  "agent: {concurrency: true}"])
def test_concurrency_outside_1_to_32_is_refused_in_one_line(text):
    with pytest.raises(ConfigError, match=r"^agent\.concurrency: .* not between 1 and 32; .*default 4"):
        config_mod.parse(text)
    assert config_mod.parse("{}").agent.concurrency == 4
    assert config_mod.parse("agent: {concurrency: 32}").agent.concurrency == 32


def test_requests_in_flight_reach_the_setting_and_never_exceed_it(tmp_path):
    with DevServer(token=TOKEN) as server:
        site = Site(tmp_path, server.url, tracker={"timeout": 600}, agent={"concurrency": 3})
        want = queue_stories(site, 12, 4)
        server.hold(after=0)     # every request waits: the lanes fill up, and stay full
        proc = subprocess.Popen(flush_cmd(site), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert wait_until(lambda: server.held() >= 3 or proc.poll() is not None)
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert server.held() == 3
            server.release()
            _, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert server.max_in_flight() == 3
        assert per_story(server) == want
        assert len(server.received()) == 48


def test_each_story_in_commit_order_with_4_lanes_and_503s_with_retry_after(tmp_path):
    # 20% of the requests answered 503 with Retry-After: each pauses the whole destination,
    # its entry deferred; the entries of its story behind it wait, and go after it.
    with DevServer(token=TOKEN, chaos=0.2, seed=12, faults=("503",), retry_after=0) as server:
        site = Site(tmp_path, server.url, agent={"concurrency": 4},
                    retry={"min_backoff": 0.01, "max_backoff": 0.05, "max_age": 3600})
        want = queue_stories(site, 30, 6)
        proc = site.cli("flush", "--wait", "600")
        assert proc.returncode == 0, proc.stderr
        assert per_story(server) == want
        got = [r["commit_id"] for r in server.received()]
        assert len(got) == len(set(got)) == 180, "each commit once"
        assert server.max_in_flight() <= 4
        assert server.requests_seen() > 180, "the 503s really happened"
        assert site.spool.count("dead") == 0 and site.spool.count("deferred") == 0


@pytest.mark.slow
def test_kill_9_during_a_concurrent_drain_loses_nothing_and_duplicates_at_most_the_in_flight(tmp_path):
    lanes = 4
    with DevServer(token=TOKEN) as server:
        # A held request waits as long as the test needs: the agent must not time it out.
        site = Site(tmp_path, server.url, tracker={"timeout": 600}, agent={"concurrency": lanes})
        want = queue_stories(site, 30, 20)
        rng = random.Random(7)
        in_flight = 0
        # Killed by progress: each round the server answers a random number of requests, then
        # holds every further one; the agent dies once all its lanes wait on a held request
        # (8 rounds of at most 60 answers cannot drain 600 entries).
        for n in range(8):
            server.hold(after=rng.randint(0, 60))
            err = tmp_path / f"flush-{n}.err"
            with open(err, "w") as err_file:
                proc = subprocess.Popen(flush_cmd(site), stdout=subprocess.DEVNULL, stderr=err_file)
                try:
                    assert wait_until(lambda: server.held() >= lanes or proc.poll() is not None)
                    assert proc.poll() is None, f"the flush ended before its lanes were held: {err.read_text()}"
                    in_flight += server.held()
                finally:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
            # The requests held for the dead agent go on now (the server records them: the
            # duplicates this kill may cause); the next round starts with nothing held.
            server.release()
            assert wait_until(lambda: server.held() == 0)
        final = site.cli("flush", timeout=300)
        assert final.returncode == 0, final.stderr
        got = [r["commit_id"] for r in server.received()]
        counts = collections.Counter(got)
        assert set(counts) == {c for ids in want.values() for c in ids}, "nothing lost"
        dups = sum(c - 1 for c in counts.values())
        assert in_flight == 8 * lanes
        assert dups <= in_flight, f"{dups} duplicates for {in_flight} requests in flight at the kills"
        assert per_story(server) == want
        assert server.max_in_flight() <= lanes
        assert site.spool.count("cur") == 0


def test_status_shows_the_lanes_in_use_and_the_throughput(tmp_path):
    import json
    import time

    from hookagent import context
    from hookagent.commands import status
    with DevServer(token=TOKEN) as server:
        site = Site(tmp_path, server.url, tracker={"timeout": 600}, agent={"concurrency": 3})
        queue_stories(site, 5, 2)
        server.hold(after=0)
        proc = subprocess.Popen(flush_cmd(site), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert wait_until(lambda: server.held() >= 3 or proc.poll() is not None)
            st = json.loads(site.cli("status", "--json", check=True).stdout)
            assert st["lanes"] == {"in_use": 3, "of": 3}
            assert "lanes:        3 of 3 in use" in site.cli("status", check=True).stdout
            server.release()
            _, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
    assert json.loads(site.cli("status", "--json").stdout)["lanes"] == {"in_use": 0, "of": 3}
    # Throughput from the ledger's send times: 120 within the last minute, 300 more within five.
    (tmp_path / "rate").mkdir()
    site = Site(tmp_path / "rate", server.url, agent={"concurrency": 3})
    spool = site.spool
    ledger = context.open_ledger(spool)
    dest = site.config.tracker.destination
    t = time.time()
    try:
        for i in range(470):
            ledger.mark_sent(dest, f"x{i}", now=t - (30 if i < 120 else 200 if i < 420 else 400))
    finally:
        ledger.close()
    st = status.collect(site.config, now=t)
    assert st["throughput"] == {"last_minute": 120, "last_5_minutes": 84.0}
    assert "throughput:" in site.cli("status", check=True).stdout


def test_a_long_flush_on_a_terminal_shows_a_progress_bar_and_a_short_one_does_not(tmp_path):
    import re

    def on_a_terminal(site: Site) -> str:
        status, _, tty = stderr_on_a_terminal(
            [sys.executable, "-m", "hookagent", "flush", "--config", str(site.config_path)])
        assert status == 0, tty
        return tty.decode()

    with DevServer(token=TOKEN) as server:
        (tmp_path / "long").mkdir()
        long_site = Site(tmp_path / "long", server.url)
        n = 60    # flush.LONG is 50: a long drain
        queue_stories(long_site, 10, n // 10)
        tty = on_a_terminal(long_site)
        assert re.search(rf"\r\[#{{30}}\] {n}/{n} commits [\d,]+/s ETA 0:00 \r?\n", tty), tty
        (tmp_path / "short").mkdir()
        short_site = Site(tmp_path / "short", server.url)
        queue_stories(short_site, 2, 2)
        tty = on_a_terminal(short_site)
        assert "commits/s" not in tty and "[#" not in tty, tty
        assert "sent 4 commit(s)" in tty


def test_a_flush_waits_for_another_agents_request_of_the_same_story(tmp_path):
    # Two agents: the second must neither overtake the first's request of a story nor end while
    # that story's next event waits for it (it would be left unsent, both agents gone).
    from hookagent.agent import lifetime
    with DevServer(token=TOKEN) as server:
        site = Site(tmp_path, server.url, tracker={"timeout": 600})
        dest = site.config.tracker.destination

        def queue(cid: str, message: str) -> None:
            c = Commit(cid, "Ada", message, date="2026-11-28T10:00:00+00:00")
            site.spool.enqueue(commit_entry_name(dest, cid), make_entry(dest, [c.to_dict()]))

        queue("e1", "[#5] first")
        server.hold(after=0)
        first = subprocess.Popen(flush_cmd(site), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert wait_until(lambda: server.held() == 1 or first.poll() is not None)
            queue("e2", "[finishes #5] second")
            first.send_signal(signal.SIGTERM)     # it ends after its request: e2 is not its
            agent = lifetime.build(site.config)
            try:
                assert agent.run_once().entries_done == 0, "e2 waits behind e1, in flight elsewhere"
                assert agent.waiting_on_others()
                server.release()
                lifetime.flush(agent)
            finally:
                agent.close()
        finally:
            server.release()
            first.wait()
        assert [r["commit_id"] for r in server.received()] == ["e1", "e2"]
