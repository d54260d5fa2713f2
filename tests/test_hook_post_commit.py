"""The git post-commit path end to end: real repository, installed hook, real commits, real receiver."""
from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hookagent.devserver import DevServer
from testing import accounts
from testing.repos import free_port
from testing.site import TOKEN, Site, background_agent_pid, commit_file, git, kill_background_agent
from testing.site import work_tree_with_hook as make_repo
from testing.wait import wait_until


def received_ids(server: DevServer) -> list[str]:
    return [r["commit_id"] for r in server.received()]


def test_commits_with_references_reach_their_stories_through_the_background_agent(tmp_path, server):
    site = Site(tmp_path, server.url, agent={"autostart": True},
                repos=[{"path": str(tmp_path / "*"), "url": "https://git.example.com/{repo}/commit/{commit_id}"}])
    repo = make_repo(tmp_path, site)
    messages = ["Torpedoes now powered [fixes #123456]", "no story here",
                "Merge pull request #12 from a/b", "Shields [#222 #333] and [delivers #444]"]
    for m in messages:
        assert commit_file(repo, m).returncode == 0
    assert wait_until(lambda: len(server.received()) == 2), server.received()
    got = {r["message"].strip(): r for r in server.received()}
    assert set(got) == {messages[0], messages[3]}
    rec = got[messages[0]]
    sha = git(repo, "rev-parse", "HEAD~3").strip()
    assert rec["commit_id"] == sha and rec["author"] == "Ada Tester"
    assert rec["url"] == f"https://git.example.com/work/commit/{sha}"
    stories = server.stories()
    assert stories[123456]["current_state"] == "finished"
    assert stories[444]["current_state"] == "delivered"
    assert stories[222]["current_state"] == "started" and len(stories[222]["comments"]) == 1
    assert wait_until(lambda: not site.queued() and not os.listdir(site.spool.path("cur")))


def test_hostile_messages_arrive_intact_as_well_formed_xml(tmp_path, server):
    site = Site(tmp_path, server.url)
    repo = make_repo(tmp_path, site)
    big = "[#7] big\n\n" + ("lorem ipsum & <tag> ]]> " * 12500).rstrip()  # ~300 KB (git strips trailing blanks)
    cases = [
        "[#1] ampersand & angle <b>bold</b> \"quotes\" 'single'",
        "[#2] CDATA end ]]> and <![CDATA[ start",
        "[#3] control \x01\x02\x1b[31m chars \x7f tab\tend",
        "[#4] emoji 🚀🔥 and 日本語 and é",
        "[#5] right-to-left שלום עולם مرحبا",
        big,
    ]
    for m in cases:
        assert commit_file(repo, m).returncode == 0
    # A latin-1 commit, declared as such by git's encoding header.
    latin = "[#6] café crème brûlée"
    assert commit_file(repo, latin.encode("latin-1"), extra_args=("-c", "i18n.commitEncoding=ISO-8859-1")).returncode == 0
    assert site.cli("flush").returncode == 0
    got = {r["message"].split("]")[0] + "]": r["message"] for r in server.received()}
    assert len(got) == 7
    def clean(s: str) -> str:   # what XML 1.0 can carry: control chars other than \t\n\r removed
        return "".join(ch for ch in s if ch in "\t\n\r" or ord(ch) >= 0x20)
    for m in cases + [latin]:
        assert got[m.split("]")[0] + "]"].rstrip("\n") == clean(m).rstrip("\n")


def background_flushes_done(site: Site) -> bool:
    """True once no background flush holds the flush lock (waits for that)."""
    return wait_until(lambda: not site.background_flush_running())


def commit_while_the_tracker_is_down(tmp_path: Path, request, message: str, min_backoff: float,
                                     max_backoff: float) -> tuple[Site, Path, int, subprocess.CompletedProcess]:
    """A work tree with the hook (autostart on) whose tracker port has nothing listening yet, and
    one commit made there: (site, repo, port, the commit). The background agent that commit
    starts is stopped at teardown if it is still there."""
    port = free_port()
    site = Site(tmp_path, f"http://127.0.0.1:{port}", agent={"autostart": True},
                retry={"min_backoff": min_backoff, "max_backoff": max_backoff})
    request.addfinalizer(lambda: kill_background_agent(site))
    repo = make_repo(tmp_path, site)
    proc = commit_file(repo, message)
    assert proc.returncode == 0
    return site, repo, port, proc


def failures(site: Site) -> int:
    """Failed attempts in a row the destination's state records."""
    return int(site.spool.read_state(site.config.tracker.destination).get("failures") or 0)


def first_attempt_failed(site: Site) -> bool:
    return wait_until(lambda: failures(site) >= 1)


@pytest.mark.slow
def test_server_down_then_back_the_background_agent_delivers_without_anyone(tmp_path, request):
    """The tracker is down at commit time: the commit succeeds at once and silently, the
    background agent keeps the entry, retries with backoff, and delivers once the tracker is
    back, with no flush run by anyone; then it exits."""
    site, _, port, proc = commit_while_the_tracker_is_down(tmp_path, request, "Change [fixes #1]", 0.3, 0.6)
    assert proc.stderr == b"", "the hook itself never touches the network"

    def status() -> dict:
        return json.loads(site.cli("status", "--json").stdout)
    assert wait_until(lambda: failures(site) >= 2), "it retries on its own"
    st = status()
    assert st["pending"]["commits"] + st["deferred"]["commits"] + st["in_flight"] == 1
    assert f"127.0.0.1:{port}" in st["destination"]
    # Stays through a backoff: one more failed retry later, the same agent still holds the lock.
    pid, seen = background_agent_pid(site), failures(site)
    assert wait_until(lambda: failures(site) > seen)
    assert site.background_flush_running() and background_agent_pid(site) == pid, \
        "the background agent stays while a retry waits"
    with DevServer(token=TOKEN, port=port) as server:
        assert wait_until(lambda: len(server.received()) == 1)
        assert background_flushes_done(site), "and exits once the queue is empty"
    st = status()
    assert st["sent"] == 1 and st["deferred"]["commits"] == 0 and st["pending"]["commits"] == 0


def test_a_stopped_background_agent_does_not_strand_commits_in_a_pause(tmp_path, request):
    """The background agent sleeping through a backoff is stopped (a shutdown); the tracker
    comes back; the next commit, still inside the pause, starts a new agent, which delivers
    both commits when the pause ends (ended here by `hookagent retry`: a pause that ends on
    its own is the test above)."""
    import signal
    # A 5-minute pause: the commit below surely falls inside it, however long stopping takes.
    site, repo, port, _ = commit_while_the_tracker_is_down(tmp_path, request, "Offline [#1]", 300, 600)
    assert first_attempt_failed(site)
    pid = background_agent_pid(site)
    assert pid
    os.kill(pid, signal.SIGTERM)
    assert background_flushes_done(site)
    with DevServer(token=TOKEN, port=port) as server:
        assert site.spool.read_state(site.config.tracker.destination)["paused_until"] > time.time()
        assert commit_file(repo, "Back online [#2]").returncode == 0
        assert wait_until(lambda: site.background_flush_running() and background_agent_pid(site) not in (0, pid)), \
            "the commit started a new background agent, pause or not"
        assert site.cli("retry").returncode == 0
        assert wait_until(lambda: len(server.received()) == 2), server.received()
        assert sorted(r["message"].strip() for r in server.received()) == ["Back online [#2]", "Offline [#1]"]


@pytest.mark.parametrize("scenario", ["bad-config", "missing-config", "read-only-spool", "spool-is-symlink"])
def test_the_commit_never_fails_and_says_one_line(tmp_path, scenario, request):
    site = Site(tmp_path, "http://127.0.0.1:9", agent={"autostart": True})
    repo = make_repo(tmp_path, site)
    spool_dir = Path(site.data["spool_dir"])
    if scenario == "bad-config":
        site.config_path.write_text("tracker: {api: [unclosed\n")
    elif scenario == "missing-config":
        site.config_path.unlink()
    elif scenario == "read-only-spool":
        site.spool
        if os.geteuid() == 0:   # root writes into read-only folders: make a read-only file system
            spool_dir.rename(tmp_path / "spool-contents")
            spool_dir.mkdir(mode=0o700)
            if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(spool_dir)],
                              capture_output=True).returncode != 0:
                pytest.skip("needs mount to make a read-only spool as root")
            request.addfinalizer(lambda: subprocess.run(["umount", str(spool_dir)], check=False))
            site.spool
            subprocess.run(["mount", "-o", "remount,ro", str(spool_dir)], check=True)
        else:
            (spool_dir / "tmp").chmod(0o500)
    elif scenario == "spool-is-symlink":
        real = tmp_path / "real-spool"
        real.mkdir(mode=0o700)
        spool_dir.symlink_to(real)
    proc = commit_file(repo, "Change [fixes #1]")
    assert proc.returncode == 0
    assert git(repo, "log", "-1", "--format=%s").strip() == "Change [fixes #1]"
    lines = [ln for ln in proc.stderr.decode().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("hookagent: post-commit:"), lines


def test_full_disk_is_reported_and_the_commit_succeeds(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and tmpfs to make a really full disk")
    try:
        site = Site(tmp_path, "http://127.0.0.1:9", spool_dir=str(mnt / "spool"))
        repo = make_repo(tmp_path, site)
        site.spool
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:                                      # fill the file system to the last block
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        proc = commit_file(repo, "Change [fixes #1]")
        assert proc.returncode == 0
        err = proc.stderr.decode().strip().splitlines()
        assert len(err) == 1 and "No space left on device" in err[0], err
        assert os.listdir(mnt / "spool" / "tmp") == [], "no half-written entry is left behind"
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_foreign_hook_still_runs_after_ours(tmp_path, server):
    site = Site(tmp_path, server.url)
    repo = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    marker = tmp_path / "marker"
    hook = repo / ".git" / "hooks" / "post-commit"
    hook.write_text(f"#!/bin/sh\necho ran >> {marker}\nexit 0\n")
    hook.chmod(0o755)
    subprocess.run([sys.executable, "-m", "hookagent", "install", str(repo), "--config",
                    str(site.config_path)], check=True, capture_output=True)
    assert commit_file(repo, "With story [#9]").returncode == 0
    assert marker.read_text() == "ran\n"
    assert len(site.queued()) == 1


def test_retry_wakes_the_background_agent_sleeping_through_a_long_backoff(tmp_path, request):
    site, _, port, _ = commit_while_the_tracker_is_down(tmp_path, request, "While down [#1]", 300, 600)
    assert first_attempt_failed(site)
    assert site.background_flush_running(), "it sleeps through the 5-minute backoff"
    with DevServer(token=TOKEN, port=port) as server:
        assert site.cli("retry").returncode == 0
        assert wait_until(lambda: len(server.received()) == 1), "retry woke it: no flush by hand"
        assert background_flushes_done(site)


# ---------------------------------------------------------------------- a stuck agent
def stop_when_held(server: DevServer, request, pid_of) -> list[int]:
    """Hold the server's next request and SIGSTOP its sender as the request starts to wait (in the
    server's thread: the request is surely in flight, its claim in cur/). Returns the list the
    stopped pid goes to; a finalizer kills it (SIGKILL, then SIGCONT) whatever the test did."""
    stopped: list[int] = []

    def stop() -> None:
        pid = pid_of()
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)

    def end() -> None:
        for pid in stopped:
            for sig in (signal.SIGKILL, signal.SIGCONT):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
    request.addfinalizer(end)
    server.hold(then=stop)
    return stopped


def status_json(site: Site) -> dict:
    proc = site.cli("status", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def reported_stuck(site: Site, pid: int) -> bool:
    """Wait until `hookagent status` names ``pid`` as stuck (past its heartbeat's deadline)."""
    return wait_until(lambda: any(a["pid"] == pid for a in status_json(site).get("stuck", [])),
                      interval=0.2)


def gone(pid: int) -> bool:
    from hookagent.agent.heartbeat import process_state
    return process_state(pid) in (None, "Z", "X")


def claimed_by(site: Site, pid: int) -> list[str]:
    return [n for n in os.listdir(site.spool.path("cur")) if n.rpartition("@")[2].startswith(f"{pid}-")]


def agents_of(site: Site) -> list[int]:
    """The live hookagent processes run with ``site``'s configuration."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"hookagent" in cmdline and str(site.config_path).encode() in cmdline:
            pids.append(int(entry))
    return sorted(pids)


def agent_log(site: Site) -> str:
    try:
        return Path(site.config.log_file).read_text()
    except OSError:
        return ""


@pytest.mark.slow
def test_a_stopped_background_agent_is_killed_and_replaced_by_the_next_commits_agent(tmp_path, request):
    """A background agent stopped (SIGSTOP) with a request in flight holds the flush lock and the
    pid file: every commit after it would start no agent. Once it is past its heartbeat's deadline
    (tracker.timeout 1 s + heartbeat.MARGIN), the next commit's agent kills it and takes over:
    everything arrives, what was recorded meanwhile and the commit it had in flight (at most once
    more), without a flush by hand."""
    with DevServer(token=TOKEN) as server:
        site = Site(tmp_path, server.url, agent={"autostart": True}, tracker={"timeout": 1})
        request.addfinalizer(lambda: kill_background_agent(site))
        stopped = stop_when_held(server, request, lambda: background_agent_pid(site))
        repo = make_repo(tmp_path, site)
        assert commit_file(repo, "In flight [#1]").returncode == 0
        assert wait_until(lambda: stopped and server.held() == 1)
        pid = stopped[0]
        assert len(claimed_by(site, pid)) == 1, "its request is in flight, its entry claimed"
        # Its request is answered now (it never reads the answer): the in-flight commit's first
        # delivery; later requests are answered at once.
        server.release()
        assert commit_file(repo, "While it is stopped [#2]").returncode == 0
        assert reported_stuck(site, pid), "status names the stopped agent once past its deadline"
        for i in range(3, 6):
            assert commit_file(repo, f"After its deadline [#{i}]").returncode == 0
        ids = git(repo, "log", "--format=%H").split()
        assert len(ids) == 5
        assert wait_until(lambda: set(received_ids(server)) == set(ids)), \
            f"delivered without a flush by hand: {len(set(received_ids(server)))} of 5"
        assert wait_until(lambda: gone(pid)), "the stopped agent was killed"
        assert f"agent {pid} had made no progress" in agent_log(site)
        counts = collections.Counter(received_ids(server))
        assert counts[ids[-1]] <= 2 and all(counts[c] == 1 for c in ids[:-1]), counts
        assert background_flushes_done(site)
        st = status_json(site)
        assert st["stuck"] == [] and st["in_flight"] == 0 and st["pending"]["commits"] == 0
        assert st["deferred"]["commits"] == 0 and st["dead"]["commits"] == 0


@pytest.mark.slow
def test_a_stopped_service_agent_is_named_by_status_with_what_it_holds(tmp_path, request):
    """`hookagent run` (a service, no flush lock) stopped with a request in flight: status says
    which agent, for how long, what to run, and that its claim stays in flight until it dies;
    a flush by hand delivers the other stories' events (its story's next events wait behind the
    claim: per-story order); once it is killed, the next flush sends its claim and the rest."""
    with DevServer(token=TOKEN) as server:
        site = Site(tmp_path, server.url, tracker={"timeout": 1})
        ids = site.enqueue_fake_commits(3)
        proc = subprocess.Popen([sys.executable, "-m", "hookagent", "run", "--config", str(site.config_path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        request.addfinalizer(lambda: (proc.kill(), proc.wait()))
        stopped = stop_when_held(server, request, lambda: proc.pid)
        assert wait_until(lambda: stopped and server.held() == 1)
        server.release()
        assert reported_stuck(site, proc.pid)
        st = status_json(site)
        [agent] = st["stuck"]
        assert agent["in_flight_entries"] == 1 and not agent["serving"]
        assert agent["command"] == f"kill -9 {proc.pid}"
        text = site.cli("status").stdout
        assert f"agent {proc.pid} has made no progress" in text and f"`kill -9 {proc.pid}`" in text
        assert "stay in cur/ until it dies" in text
        other = site.enqueue_fake_commits(1, prefix="d", story=102)
        flushed = site.cli("flush")
        assert flushed.returncode == 0 and f"agent {proc.pid} has made no progress" in flushed.stderr
        assert sorted(set(received_ids(server))) == [ids[0], *other], \
            "the flush by hand sent another story's event; story 101's wait behind the claim"
        assert len(claimed_by(site, proc.pid)) == 1, "the claim of a live agent is left to it"
        proc.kill()
        proc.wait()
        assert site.cli("flush").returncode == 0
        counts = collections.Counter(received_ids(server))
        assert set(counts) == set(ids + other) and max(counts.values()) <= 2, counts
        assert [i for i in received_ids(server) if i in ids[1:]] == ids[1:], "story 101 in commit order"
        assert os.listdir(site.spool.path("cur")) == [] and status_json(site)["stuck"] == []


@pytest.fixture
def stranger(request):
    """Another real user, member of a group made for a shared spool, and an interpreter with
    hookagent it can run: (the account, the group, its python, a folder everyone can enter)."""
    why = accounts.can_make_accounts()
    base_python = accounts.system_python()
    if why or not base_python:
        pytest.skip(why or "needs a system python (3.10 or newer, with venv) another user can run")
    shared = accounts.shared_folder("hookagent-stuck-")
    request.addfinalizer(lambda: shutil.rmtree(shared, ignore_errors=True))
    group = accounts.create_group()
    request.addfinalizer(lambda: accounts.remove_group(group))
    account = accounts.create(shared, groups=(group,))
    request.addfinalizer(lambda: accounts.remove(account))
    return account, group, accounts.hookagent_venv(shared / "python", base_python), shared


@pytest.mark.slow
def test_a_stopped_agent_of_another_user_is_named_by_status_and_a_flush_by_hand_delivers(tmp_path, request,
                                                                                        stranger):
    """On a group-shared spool, another user's background agent is stopped (SIGSTOP) with a
    request in flight. Our commits' agents cannot stop it: they queue what the hooks recorded and
    leave (no spinning, the stopped agent untouched); status names it and the command to run; a
    flush by hand delivers all but its claim, which stays in flight until it dies and is then
    sent (at most once more)."""
    account, group, python, shared = stranger
    with DevServer(token=TOKEN) as server:
        (shared / "site").mkdir()
        site = Site(shared / "site", server.url, spool_group=group, agent={"autostart": True},
                    tracker={"timeout": 1})
        account.give(site.token_file)          # theirs to read; root reads it all the same
        request.addfinalizer(lambda: kill_background_agent(site))
        site.prepared()
        ids = site.enqueue_fake_commits(1, prefix="theirs")
        theirs = subprocess.Popen([str(python), "-I", "-m", "hookagent", "flush", "--background", "--quiet",
                                   "--config", str(site.config_path)],
                                  user=account.uid, group=account.gid, extra_groups=list(account.groups),
                                  env=account.env(), cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
        request.addfinalizer(lambda: (theirs.kill(), theirs.wait()))
        stopped = stop_when_held(server, request, lambda: theirs.pid)
        assert wait_until(lambda: stopped and server.held() == 1 or theirs.poll() is not None)
        assert theirs.poll() is None, theirs.stderr.read()
        assert background_agent_pid(site) == theirs.pid and len(claimed_by(site, theirs.pid)) == 1
        server.release()
        repo = make_repo(tmp_path, site)
        assert commit_file(repo, "While it is stopped [#2]").returncode == 0
        assert reported_stuck(site, theirs.pid)
        assert commit_file(repo, "After its deadline [#3]").returncode == 0
        assert wait_until(lambda: f"cannot be stopped from here (it belongs to uid {account.uid}" in agent_log(site)), \
            "our commit's agent found it and left it alone"
        assert wait_until(lambda: not os.listdir(site.spool.path("inbox"))), "and queued what the hooks recorded"
        assert wait_until(lambda: agents_of(site) == [theirs.pid]), "ours ended: no spinning"
        from hookagent.agent.heartbeat import process_state
        assert process_state(theirs.pid) == "T", "the stopped agent is left alone"
        text = site.cli("status").stdout
        assert f"STUCK:        agent {theirs.pid} has made no progress for" in text, text
        assert f"run `kill -9 {theirs.pid}` (as its user) or `hookagent flush`" in text
        assert "stay in cur/ until it dies" in text
        flushed = site.cli("flush")
        assert flushed.returncode == 0, flushed.stderr
        ours = git(repo, "log", "--format=%H").split()
        assert set(received_ids(server)) == set(ids + ours), "the flush by hand delivered ours"
        assert len(claimed_by(site, theirs.pid)) == 1, "its claim stays while it lives"
        os.kill(theirs.pid, signal.SIGKILL)
        theirs.wait()
        assert site.cli("flush").returncode == 0
        counts = collections.Counter(received_ids(server))
        assert set(counts) == set(ids + ours) and counts[ids[0]] <= 2, counts
        assert all(counts[c] == 1 for c in ours), counts
        assert os.listdir(site.spool.path("cur")) == [] and status_json(site)["stuck"] == []
