"""The agent against a real loopback receiver: outcomes, backoff, hold, dead, crash safety."""
from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys

import pytest

from hookagent.devserver import DevServer
from testing import slowloris
from testing.site import TOKEN, Site
from testing.wait import PATIENCE, wait_until


def received_ids(server) -> list[str]:
    return [r["commit_id"] for r in server.received()]


@pytest.mark.parametrize("api", ["v3", "v5"])
def test_flush_delivers_everything_once_and_empties_the_spool(tmp_path, server, api):
    site = Site(tmp_path, server.url, api=api)
    ids = site.enqueue_fake_commits(25)
    proc = site.cli("flush")
    assert proc.returncode == 0, proc.stderr
    assert sorted(received_ids(server)) == ids
    assert site.spool.due_names() == [] and os.listdir(site.spool.path("cur")) == []
    status = json.loads(site.cli("status", "--json", check=True).stdout)
    assert status["sent"] == 25 and status["pending"]["commits"] == 0
    # The ledger remembers: the same commits queued again are acknowledged without a request.
    seen = server.requests_seen()
    site.enqueue_fake_commits(25)
    assert site.cli("flush").returncode == 0
    assert server.requests_seen() == seen and len(server.received()) == 25


def test_server_down_backs_off_the_whole_destination(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now: connection refused
    site = Site(tmp_path, f"http://127.0.0.1:{port}", retry={"min_backoff": 30, "max_backoff": 60})
    site.enqueue_fake_commits(10)
    proc = site.cli("flush")
    assert proc.returncode == 1, "entries remain due while the destination is paused"
    st = json.loads(site.cli("status", "--json").stdout)
    # One attempt, not ten: the first failure pauses the destination.
    assert st["deferred"]["commits"] == 1 and st["pending"]["commits"] == 9
    assert st["paused_until"] and st["consecutive_failures"] == 1
    assert "refused" in st["last_error"].lower() or "connect" in st["last_error"].lower()
    # A second flush during the pause makes no attempt at all.
    site.cli("flush")
    st2 = json.loads(site.cli("status", "--json").stdout)
    assert st2["consecutive_failures"] == 1 and st2["deferred"]["commits"] == 1


@pytest.mark.slow
def test_chaos_server_30_percent_failures_everything_arrives_nothing_dead(tmp_path):
    with DevServer(token=TOKEN, chaos=0.3, seed=4) as server:
        site = Site(tmp_path, server.url, retry={"min_backoff": 0.02, "max_backoff": 0.1})
        ids = site.enqueue_fake_commits(120)
        proc = site.cli("flush", "--wait", "150", timeout=200)
        assert proc.returncode == 0, proc.stderr
        got = received_ids(server)
        assert sorted(set(got)) == ids
        assert len(got) == len(ids), "the receiver records only answered requests: no duplicates"
        assert server.requests_seen() > len(ids), "the chaos really failed some requests"
        st = json.loads(site.cli("status", "--json").stdout)
        assert st["dead"]["commits"] == 0 and st["sent"] == 120


def test_wrong_token_holds_the_queue_and_resumes_after_the_fix(tmp_path, server):
    site = Site(tmp_path, server.url)
    site.set_token("wrong-token")
    ids = site.enqueue_fake_commits(5)
    proc = site.cli("flush")
    assert proc.returncode == 1 and "held" in proc.stderr
    assert "wrong-token" not in proc.stderr
    st = json.loads(site.cli("status", "--json").stdout)
    assert st["held"] and st["pending"]["commits"] == 5 and st["deferred"]["commits"] == 0
    assert st["dead"]["commits"] == 0
    text = site.cli("status").stdout
    assert "HELD" in text and "token" in text
    site.set_token(TOKEN)
    assert site.cli("flush").returncode == 0
    assert sorted(received_ids(server)) == ids
    assert json.loads(site.cli("status", "--json").stdout)["held"] is None
    log = (tmp_path / "spool" / "agent.log").read_text()
    assert "wrong-token" not in log and TOKEN not in log


def test_missing_token_file_holds_instead_of_dropping(tmp_path, server):
    site = Site(tmp_path, server.url)
    site.token_file.unlink()
    site.enqueue_fake_commits(2)
    proc = site.cli("flush")
    assert proc.returncode == 2 and "token_file" in proc.stderr
    st = json.loads(site.cli("status", "--json").stdout)
    assert st["held"] and "token_file" in st["held"] and st["pending"]["commits"] == 2
    text = site.cli("status")
    assert text.returncode == 0 and "HELD" in text.stdout and "Traceback" not in text.stderr


def test_rejected_entry_goes_dead_with_the_answer_kept_and_can_be_requeued(tmp_path, server):
    site = Site(tmp_path, server.url)
    site.enqueue_fake_commits(3)
    # An entry the receiver must refuse (no message): 400 -> dead; the others still go through.
    spool = site.spool
    from hookagent.spool import commit_entry_name, make_entry
    dest = site.config.tracker.destination
    bad = make_entry(dest, [{"commit_id": "bad1", "author": "x", "message": ""}])
    name = commit_entry_name(dest, "bad1")
    spool.enqueue(name, bad)
    proc = site.cli("flush")
    assert proc.returncode == 0, proc.stderr
    assert len(server.received()) == 3
    st = json.loads(site.cli("status", "--json").stdout)
    assert st["dead"]["commits"] == 1
    item = st["dead"]["items"][0]
    assert item["status"] == 400 and item["commits"] == ["bad1"]
    dead_entry = json.loads((tmp_path / "spool" / "dead" / name).read_text())
    assert dead_entry["response"], "the server's answer is kept"
    assert site.cli("retry", "--dead").returncode == 0
    assert json.loads(site.cli("status", "--json").stdout)["pending"]["commits"] == 1


def test_redirect_is_never_followed_and_holds_the_queue(tmp_path):
    import http.server
    import threading

    hits = collections.Counter()

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            hits[self.path] += 1
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.2:9/steal")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        site = Site(tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}")
        site.enqueue_fake_commits(2)
        proc = site.cli("flush")
        assert proc.returncode == 1
        st = json.loads(site.cli("status", "--json").stdout)
        assert st["held"] and "redirect" in st["held"].lower()
        assert st["pending"]["commits"] == 2 and sum(hits.values()) == 1
    finally:
        httpd.shutdown()


def test_a_tracker_dripping_its_answer_defers_the_entry_until_it_answers(tmp_path):
    """A server that drips its answer a byte at a time held the agent for as long as it dripped
    (each byte came before the read timeout). tracker.timeout bounds the whole request now: the
    agent hangs up, the entry is deferred (not dead, not lost), and is delivered once the same
    address answers."""
    give_up = 1000   # drips (0.02 s each) before the server closes: ten times the deadline
    with slowloris.Slowloris(slowloris.HEAD, give_up=give_up) as slow:
        site = Site(tmp_path, slow.url, tracker={"timeout": 2})
        [cid] = site.enqueue_fake_commits(1)
        proc = site.cli("flush")
        assert proc.returncode == 1 and "1 deferred" in proc.stderr, proc.stderr
        assert wait_until(slow.ended)
        assert [(d.end, d.count < give_up) for d in slow.connections] == [("client", True)], (
            f"the agent held the connection for {slow.connections[0].count} drips")
        st = json.loads(site.cli("status", "--json").stdout)
        assert (st["deferred"]["commits"], st["dead"]["commits"], st["sent"]) == (1, 0, 0)
        assert "did not answer within 2s" in st["last_error"], st["last_error"]
        slow.mode = slowloris.ANSWER
        proc = site.cli("flush", "--wait", str(PATIENCE))
        assert proc.returncode == 0, proc.stderr
        [body] = slow.bodies
        assert f"<commit_id>{cid}</commit_id>" in body.decode()
        st = json.loads(site.cli("status", "--json").stdout)
        assert (st["deferred"]["commits"], st["dead"]["commits"], st["sent"]) == (0, 0, 1)


@pytest.mark.slow
def test_kill_9_while_draining_loses_nothing_and_duplicates_at_most_the_in_flight(tmp_path):
    with DevServer(token=TOKEN) as server:
        # A held request waits as long as the test needs: the agent must not time it out.
        site = Site(tmp_path, server.url, tracker={"timeout": 600})
        ids = site.enqueue_fake_commits(2000)
        rng = random.Random(11)
        kills = 0
        cmd = [sys.executable, "-m", "hookagent", "flush", "--quiet", "--config", str(site.config_path)]
        # Killed by progress, not after a time: each round the server answers a random number of
        # requests, then holds the next one, so the agent is mid-drain when it dies (8 rounds of
        # at most 150 answers cannot drain 2000 entries), however fast the machine.
        for n in range(8):
            server.hold(after=rng.randint(0, 150))
            err = tmp_path / f"flush-{n}.err"
            with open(err, "w") as err_file:
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_file)
                try:
                    assert wait_until(lambda: server.held() or proc.poll() is not None)
                    assert proc.poll() is None, f"the flush ended before a request was held: {err.read_text()}"
                    if rng.random() < 0.5:
                        # Let the held request be answered and hold the next: the kill then lands
                        # anywhere between reading an answer and sending the next request.
                        server.hold(after=1)
                finally:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
            kills += 1
            # The request held for the dead agent goes on now (the server records it: the one
            # duplicate this kill may cause); the next round starts with nothing held.
            server.release()
            assert wait_until(lambda: server.held() == 0)
        final = site.cli("flush", timeout=300)
        assert final.returncode == 0, final.stderr
        got = received_ids(server)
        counts = collections.Counter(got)
        assert set(counts) == set(ids), f"lost: {len(set(ids) - set(counts))}"
        dups = sum(c - 1 for c in counts.values())
        assert kills >= 3, "the test must really kill agents mid-drain"
        assert dups <= kills, f"{dups} duplicates for {kills} kills"
        assert os.listdir(site.spool.path("cur")) == []


def test_run_stops_on_sigterm_after_the_request_in_flight(tmp_path):
    with DevServer(token=TOKEN) as server:
        site = Site(tmp_path, server.url, tracker={"timeout": 600})
        site.enqueue_fake_commits(3)
        server.hold()   # the first request stays in flight until the agent has been told to stop
        proc = subprocess.Popen([sys.executable, "-m", "hookagent", "run", "--config", str(site.config_path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert wait_until(lambda: server.held() == 1 or proc.poll() is not None)
            assert proc.poll() is None, "the agent ended before its first request"
            # The signal is pending before the answer leaves: the handler runs first.
            proc.send_signal(signal.SIGTERM)
        except BaseException:
            proc.kill()   # `run` would go on forever
            raise
        finally:
            server.release()
        out, err = proc.communicate(timeout=PATIENCE)
        assert proc.returncode == 0, err
        assert len(server.received()) == 1, "the request in flight was finished, no new one started"
        st = json.loads(site.cli("status", "--json").stdout)
        assert st["sent"] == 1 and st["pending"]["commits"] == 2 and st["in_flight"] == 0


def test_an_entry_the_agent_cannot_read_is_left_in_place_and_the_rest_is_delivered(tmp_path, server):
    """An entry the agent may not open (here: a folder where a file should be; for a user, a file
    root wrote) stays where it is, is reported, and does not stop or spin the queue."""
    from hookagent.spool import commit_entry_name
    site = Site(tmp_path, server.url, agent={"autostart": False})
    site.enqueue_fake_commits(2)
    name = commit_entry_name(site.config.tracker.destination, "zz-unreadable")
    (tmp_path / "spool" / "new" / name).mkdir()
    proc = site.cli("flush", timeout=60)
    assert len(server.received()) == 2
    assert proc.returncode == 1 and "could not be read" in proc.stderr, proc.stderr
    assert "cannot read spool entry" in (tmp_path / "spool" / "agent.log").read_text()
    assert (tmp_path / "spool" / "new" / name).is_dir(), "left in place, not quarantined"
    assert os.listdir(tmp_path / "spool" / "corrupt") == []
    background = site.cli("flush", "--background", timeout=60)   # lingers, then exits: no busy loop
    assert background.returncode == 1
