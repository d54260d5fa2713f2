"""Paths are bytes on Linux: a repository whose path is not UTF-8 installs, records and delivers
(issue 9, item 11)."""
from __future__ import annotations

import os
import subprocess
import sys

from testing.site import Site
from testing.wait import wait_until

ODD = b"caf\xe9-\xff"   # Latin-1 and a byte no encoding maps: git takes it, UTF-8 does not


def git(*args: bytes | str, cwd: bytes | None = None, input: bytes | None = None) -> bytes:
    proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def install(path: bytes, site: Site) -> None:
    proc = subprocess.run([sys.executable, "-m", "hookagent", "install", path, "--config", str(site.config_path)],
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert b"Traceback" not in proc.stderr


def commit(work: bytes, message: str) -> bytes:
    name = os.urandom(4).hex().encode()
    with open(os.path.join(work, name), "wb") as fh:
        fh.write(name)
    git("add", name, cwd=work)
    proc = subprocess.run(["git", "commit", "-q", "-F", "-"], cwd=work, input=message.encode(), capture_output=True)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    return git("rev-parse", "HEAD", cwd=work).strip()


def test_a_work_tree_and_a_bare_repository_under_a_non_utf8_path(tmp_path, server):
    site = Site(tmp_path, server.url, agent={"autostart": True},
                repos=[{"path": str(tmp_path) + "/*", "url": "https://git.example.com/{repo}/commit/{commit_id}"}])
    root = os.path.join(os.fsencode(tmp_path), ODD)
    os.mkdir(root)
    work, bare = os.path.join(root, b"work"), os.path.join(root, b"srv.git")
    git("init", "-q", "-b", "main", work)
    git("init", "-q", "--bare", "-b", "main", bare)
    install(work, site)
    install(bare, site)
    local = commit(work, "Local change [#501]")
    assert wait_until(lambda: len(server.received()) == 1), server.received()
    got = server.received()[0]
    assert got["commit_id"] == local.decode()
    # The link names the repository as its path does, undecodable bytes and all (escaped).
    assert got["url"].endswith(f"/commit/{local.decode()}") and "work" in got["url"]
    # A push into the bare repository from a clone without our hook: recorded by post-receive,
    # decided and sent by the agent.
    plain = os.path.join(root, b"plain")
    git("clone", "-q", bare, plain)
    git("checkout", "-q", "-b", "main", cwd=plain)
    pushed = commit(plain, "Pushed change [finishes #502]")
    proc = subprocess.run(["git", "push", "-q", "origin", "main"], cwd=plain, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert b"hookagent" not in proc.stderr, proc.stderr
    assert wait_until(lambda: len(server.received()) == 2), server.received()
    assert server.received()[1]["commit_id"] == pushed.decode()
    assert server.stories()[502]["current_state"] == "finished"
    assert wait_until(lambda: not site.queued())
    log = open(os.path.join(site.data["spool_dir"], "agent.log"), "rb").read()
    assert b"Traceback" not in log and b"internal error" not in log
    # Uninstall finds its hooks there too and leaves nothing of ours.
    for path in (work, bare):
        proc = subprocess.run([sys.executable, "-m", "hookagent", "uninstall", path], capture_output=True)
        assert proc.returncode == 0, proc.stderr
    assert not os.path.exists(os.path.join(bare, b"hooks", b"post-receive"))
