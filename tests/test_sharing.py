"""One spool shared: by configs with different trackers, by users of a group, by processes
opening the ledger at the same moment."""
from __future__ import annotations

import grp
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hookagent.devserver import DevServer
from hookagent.spool import flush_lock_path
from testing.site import TOKEN, Site, commit_file, git
from testing.wait import wait_until


def test_two_configs_sharing_a_spool_each_send_only_their_own_commits(tmp_path):
    """Two configs (two trackers, two tokens) on one spool: a flush of one never sends, nor
    acknowledges, the other's entries."""
    spool_dir = str(tmp_path / "spool")
    with DevServer(token=TOKEN) as a_server, DevServer(token="other-token") as b_server:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        a = Site(tmp_path / "a", a_server.url, spool_dir=spool_dir)
        b = Site(tmp_path / "b", b_server.url, api="v5", token="other-token", spool_dir=spool_dir)
        b.enqueue_fake_commits(3, prefix="b")
        a.enqueue_fake_commits(2, prefix="a")
        import json
        assert json.loads(a.cli("status", "--json").stdout)["pending"]["commits"] == 2
        assert json.loads(b.cli("status", "--json").stdout)["pending"]["commits"] == 3
        assert a.cli("flush").returncode == 0
        assert sorted(r["commit_id"] for r in a_server.received()) == ["a000000", "a000001"]
        assert b_server.received() == []
        assert b.cli("flush").returncode == 0
        assert sorted(r["commit_id"] for r in b_server.received()) == ["b000000", "b000001", "b000002"]
        assert len(a_server.received()) == 2
    assert flush_lock_path(spool_dir, a.config.tracker.destination) != \
        flush_lock_path(spool_dir, b.config.tracker.destination), "one background agent per destination"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give files to another group")
def test_with_spool_group_every_file_the_tools_create_is_group_writable(tmp_path):
    """A group-shared spool must stay usable by every member: each file hooks, agents, locks,
    the ledger and the log create is in the group and group-writable, whatever the umask."""
    group = grp.getgrgid(1).gr_name          # 'daemon' on Debian: any group that is not ours
    spool_dir = tmp_path / "spool"
    with DevServer(token=TOKEN) as server:
        site = Site(tmp_path, server.url, spool_group=group, agent={"autostart": True})
        bare = tmp_path / "server.git"
        git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
        for target in (bare, tmp_path / "work"):
            if target.name == "work":
                git(tmp_path, "clone", "-q", str(bare), str(target))
            proc = subprocess.run([sys.executable, "-m", "hookagent", "install", str(target), "--config",
                                   str(site.config_path)], capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
        old = os.umask(0o022)
        try:
            assert commit_file(tmp_path / "work", "Shared [#1]").returncode == 0
            git(tmp_path / "work", "push", "-q", "origin", "HEAD:main")
            site.enqueue_fake_commits(2)
            assert site.cli("flush").returncode == 0
            # The hooks' background agent may still be sending what it claimed (flush leaves
            # claimed entries alone), or still be writing its files: wait until it is done.
            assert wait_until(lambda: not site.background_flush_running())
        finally:
            os.umask(old)
        assert len({r["commit_id"] for r in server.received()}) == 3
    gid = grp.getgrnam(group).gr_gid
    seen = []
    for root, dirs, files in os.walk(spool_dir):
        for name in dirs:
            st = os.stat(os.path.join(root, name))
            assert st.st_gid == gid and stat.S_IMODE(st.st_mode) == 0o2770, (root, name, oct(st.st_mode))
        for name in files:
            st = os.stat(os.path.join(root, name))
            seen.append(name)
            assert st.st_gid == gid and stat.S_IMODE(st.st_mode) & 0o660 == 0o660, (root, name, oct(st.st_mode))
    for expected in ("ledger.sqlite3", "agent.log"):
        assert expected in seen
    assert any(n.startswith("flush-") for n in seen) and any(n.startswith("repo-") for n in seen)


def test_many_processes_opening_a_new_ledger_at_once_all_succeed(tmp_path):
    """SQLite refuses the switch to WAL at once ("database is locked") while another process
    makes the same switch on a new database: the ledger waits and tries again."""
    code = ("import sys; from hookagent.ledger import Ledger;"
            " l = Ledger(sys.argv[1]); l.mark_sent('d', sys.argv[2]); print(l.is_sent('d', sys.argv[2]))")
    for trial in range(8):
        path = str(tmp_path / f"ledger-{trial}.sqlite3")
        procs = [subprocess.Popen([sys.executable, "-c", code, path, f"c{i}"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for i in range(5)]
        results = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
        assert all(rc == 0 and out.strip() == "True" for out, err, rc in results), results
