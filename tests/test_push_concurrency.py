"""post-receive under load: concurrent pushes, two agents, a git daemon, big pushes, many refs.

Everything is real: `git push` from real clones into a bare repository with the installed hook,
`hookagent run` processes delivering to a loopback DevServer. The promise checked everywhere:
every commit whose message references a story arrives exactly once, and nothing else arrives.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hookagent.devserver import DevServer
from testing.history import make_history
from testing.repos import free_port
from testing.site import Site, git
from testing.wait import PATIENCE, wait_until

REF_GREP = r"\[[A-Za-z ]*#[0-9]"   # make_history's forms ([#1], [fixes #1], ...), independent of stories.py


def install(site: Site, bare: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "hookagent", "install", str(bare), "--config",
                           str(site.config_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def make_bare(tmp_path: Path, site: Site) -> Path:
    bare = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    install(site, bare)
    return bare


def new_commit(repo: Path, message: str, parent: str | None = None) -> str:
    """A commit object on top of parent (default HEAD), made without touching the work tree."""
    parent = parent or git(repo, "rev-parse", "HEAD").strip()
    tree = git(repo, "rev-parse", f"{parent}^{{tree}}").strip()
    return git(repo, "commit-tree", tree, "-p", parent, "-m", message).strip()


def delivered(server: DevServer) -> list[str]:
    return [r["commit_id"] for r in server.received()]


def ref_bearing(repo: Path, *revs: str) -> set[str]:
    return set(git(repo, "rev-list", f"--grep={REF_GREP}", *revs).split())


def assert_exactly_once(server: DevServer, expected: set[str]) -> None:
    got = delivered(server)
    dupes = sorted({c for c in got if got.count(c) > 1})
    assert not dupes, f"delivered more than once: {dupes[:5]}"
    assert set(got) == expected, (f"missing {len(expected - set(got))}, unexpected {len(set(got) - expected)}")


def eight_clones(tmp_path: Path, bare: Path) -> list[Path]:
    """8 clones of bare, each with 30 new commits on `work`; clones 0-3 build on the same 5
    shared commits (3 with references), so four concurrent pushes bring those at once."""
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(bare), str(seed))
    (seed / "f").write_text("base\n")
    git(seed, "add", "f")
    git(seed, "commit", "-q", "-m", "base [#1]")
    git(seed, "push", "-q", "origin", "HEAD:refs/heads/main")
    base = git(seed, "rev-parse", "HEAD").strip()
    shared = base
    for i in range(5):
        shared = new_commit(seed, f"shared {i} [#{10 + i}]" if i % 2 == 0 else f"shared {i}, no ref", shared)
    clones = []
    for n in range(8):
        clone = tmp_path / f"clone{n}"
        git(tmp_path, "clone", "-q", str(bare), str(clone))
        if n < 4:
            git(clone, "fetch", "-q", str(seed), shared)
        tip = shared if n < 4 else base
        for i in range(30):
            msg = f"clone {n} change {i} [fixes #{1000 + n * 100 + i}]" if i % 3 else f"clone {n} change {i}"
            tip = new_commit(clone, msg, tip)
        git(clone, "update-ref", "refs/heads/work", tip)
        clones.append(clone)
    return clones


def push_all_at_once(clones: list[Path]) -> None:
    pushes = [subprocess.Popen(["git", "-C", str(c), "push", "-q", "origin", f"work:refs/heads/topic{n}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
              for n, c in enumerate(clones)]
    for p in pushes:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        assert b"hookagent" not in err, err.decode()     # the hook said nothing: no failure


def all_ref_bearing(bare: Path) -> set[str]:
    expected = ref_bearing(bare, *[f"refs/heads/topic{n}" for n in range(8)], "refs/heads/main")
    assert len(expected) == 1 + 3 + 8 * 20
    return expected


def all_pushed_ref_bearing(bare: Path) -> set[str]:
    """What the eight pushes brought (main's base commit excluded)."""
    return ref_bearing(bare, *[f"refs/heads/topic{n}" for n in range(8)], "^refs/heads/main")


@pytest.mark.slow
@pytest.mark.parametrize("history", ["pushed through the hook", "there before install"])
def test_eight_concurrent_pushes_queue_each_new_commit_once(tmp_path, server, history):
    """The hook side alone: no agent runs, so the spool shows exactly what the hooks queued.

    "there before install": main exists before `hookagent install`, so the eight concurrent pushes
    are the first the hook sees. Install records the refs as processed; without that, the first
    hook to run would list live refs that the other pushes already moved, and exclude commits
    that no hook then sends."""
    site = Site(tmp_path, server.url, api="v5")
    if history == "pushed through the hook":
        bare = make_bare(tmp_path, site)
        clones = eight_clones(tmp_path, bare)
    else:
        bare = tmp_path / "server.git"
        git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
        clones = eight_clones(tmp_path, bare)
        site.spool   # the spool exists (install seeds the snapshot only into an existing spool)
        install(site, bare)
        assert [n for n in os.listdir(site.spool.path("state")) if n.startswith("refs-")]
    push_all_at_once(clones)
    site.ingest()   # what the agent does first: decide the pushes the hooks recorded
    queued = [c["commit_id"] for _, e in site.spool.entries("new") for c in e["commits"]]
    expected = all_ref_bearing(bare) if history == "pushed through the hook" else all_pushed_ref_bearing(bare)
    assert sorted(queued) == sorted(expected), "each ref-bearing commit queued once"
    flushes = [subprocess.Popen([sys.executable, "-m", "hookagent", "flush", "--config", str(site.config_path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for f in flushes:
        _, err = f.communicate(timeout=120)
        assert f.returncode == 0, err.decode()
    assert_exactly_once(server, expected)


@pytest.mark.slow
def test_eight_concurrent_pushes_and_two_agents_deliver_each_commit_once(tmp_path, server):
    site = Site(tmp_path, server.url, api="v5")
    bare = make_bare(tmp_path, site)
    clones = eight_clones(tmp_path, bare)
    agents = [subprocess.Popen([sys.executable, "-m", "hookagent", "run", "--config", str(site.config_path),
                                "--poll", "0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
              for _ in range(2)]
    try:
        push_all_at_once(clones)
        expected = all_ref_bearing(bare)
        assert wait_until(lambda: len(set(delivered(server))) >= len(expected)), len(delivered(server))
    finally:
        for a in agents:
            a.send_signal(signal.SIGTERM)
        for a in agents:
            _, err = a.communicate(timeout=PATIENCE)
            assert a.returncode == 0, err.decode()
    assert site.cli("flush").returncode == 0
    assert_exactly_once(server, expected)
    assert not site.spool.due_names() and not os.listdir(site.spool.path("cur"))


@pytest.fixture
def daemon(tmp_path):
    """A `git daemon` serving tmp_path with pushes allowed; yields its git:// base URL."""
    def listening(port: int) -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=PATIENCE).close()
            return True
        except OSError:
            return False

    for _ in range(5):   # another process may take the port between probe and bind: the daemon exits
        port = free_port()
        proc = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
                                 "--listen=127.0.0.1", f"--port={port}", f"--base-path={tmp_path}", str(tmp_path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Until it listens or gives up, not for a fixed time: a slow start is still a start.
        if wait_until(lambda: proc.poll() is not None or listening(port)) and proc.poll() is None:
            break
        if proc.poll() is None:
            proc.kill()   # alive and deaf for minutes: give up on it
            proc.wait()
    else:
        pytest.fail(f"git daemon would not start: {proc.stderr.read().decode()}")
    try:
        yield f"git://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_push_over_git_daemon_runs_the_hook_under_the_server(tmp_path, server, daemon):
    site = Site(tmp_path, server.url)
    bare = make_bare(tmp_path, site)
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    (work / "f").write_text("x\n")
    git(work, "add", "f")
    git(work, "commit", "-q", "-m", "over the daemon [#42]")
    first = git(work, "rev-parse", "HEAD").strip()
    git(work, "commit", "-q", "--allow-empty", "-m", "no story")
    git(work, "commit", "-q", "--allow-empty", "-m", "second [finishes #43]")
    out = git(work, "push", f"{daemon}/server.git", "main")
    assert "hookagent:" not in out, out
    assert git(bare, "rev-parse", "main").strip() == git(work, "rev-parse", "HEAD").strip()
    assert site.cli("flush").returncode == 0
    assert_exactly_once(server, {first, git(work, "rev-parse", "HEAD").strip()})
    assert server.stories()[43]["current_state"] == "finished"


def test_a_few_thousand_commit_push_delivers_each_referenced_commit_once(tmp_path, server):
    site = Site(tmp_path, server.url, api="v5")
    bare = make_bare(tmp_path, site)
    src = tmp_path / "src"
    with_refs = make_history(src, 3000)
    expected = ref_bearing(src, "main")
    assert with_refs == len(expected) == 1000
    git(src, "push", "-q", str(bare), "main")
    site.ingest()
    spool = site.spool
    queued = [c["commit_id"] for _, e in spool.entries("new") for c in e["commits"]]
    assert len(spool.due_names()) == 1, "3000 commits, 1000 with references: one batch entry"
    assert sorted(queued) == sorted(expected)
    assert site.cli("flush", timeout=300).returncode == 0
    assert_exactly_once(server, expected)
    got = {r["commit_id"]: r for r in server.received()}
    sample = sorted(expected)[0]
    assert got[sample]["message"].strip() == git(src, "log", "-1", "--format=%B", sample).strip()
    # Pushing the same history to another branch adds nothing.
    git(src, "push", "-q", str(bare), "main:refs/heads/copy")
    assert site.cli("flush").returncode == 0
    assert len(delivered(server)) == len(expected)


@pytest.mark.slow
def test_many_refs_beyond_the_argv_limit_do_not_break_the_hook(tmp_path):
    """60,000 branches at distinct commits: their tips (2.5 MB of hex) go to git on stdin."""
    site = Site(tmp_path, "http://127.0.0.1:9")
    bare = tmp_path / "server.git"
    make_history(bare, 60000, refs_every=1_000_000, bare=True)
    shas = git(bare, "rev-list", "main").split()
    lines = sorted(f"{sha} refs/heads/b{i:05d}\n" for i, sha in enumerate(shas) if i)
    lines = sorted(lines, key=lambda line: line.split()[1])
    (bare / "packed-refs").write_text("# pack-refs with: peeled fully-peeled sorted \n" + "".join(lines))
    assert len("".join(f"^{s} " for s in shas)) > 2 * 1024 * 1024   # more than ARG_MAX here
    install(site, bare)
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", "--no-checkout", str(bare), str(work))
    old = new_commit(work, "story work [#77]", shas[30000])    # on top of a branch deep down
    new = new_commit(work, "more [#78]", old)
    out = git(work, "push", "origin", f"{new}:refs/heads/b00000", "-f")
    assert "hookagent:" not in out, out
    site.ingest()   # what the agent does first: decide the pushes the hooks recorded
    queued = [c["commit_id"] for _, e in site.spool.entries("new") for c in e["commits"]]
    assert sorted(queued) == sorted([old, new])
