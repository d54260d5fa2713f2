"""A changed tracker.url never strands the queue: entries follow their configuration, and those
no configuration names are shown with the command that moves them (issue 9, item 1)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hookagent.devserver import DevServer
from hookagent.spool import dest_tag
from testing.site import Site, commit_file, git, work_tree_with_hook
from testing.wait import wait_until


def status(site: Site) -> dict:
    return json.loads(site.cli("status", "--json").stdout)


def agents_running(site: Site) -> list[int]:
    """Background agents of this site's configuration (the hooks start them with --config)."""
    mine = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if b"--background" in argv and os.fsencode(site.config_path) in argv:
            mine.append(int(pid))
    return mine


def held_by_a_wrong_url(tmp_path: Path, server: DevServer) -> tuple[Site, Path, list[str]]:
    """Three commits made through the installed hook while tracker.url is wrong (a 404: the
    background agent holds the queue and ends)."""
    site = Site(tmp_path, server.url + "/wrong-prefix", agent={"autostart": True})
    repo = work_tree_with_hook(tmp_path, site)
    for i in range(3):
        assert commit_file(repo, f"Change {i} [#{700 + i}]").returncode == 0
    # Each commit's hook started an agent (or found one running): all of them end on the hold.
    assert wait_until(lambda: status(site)["held"] and not agents_running(site)), status(site)
    assert status(site)["pending"]["commits"] == 3
    assert server.received() == []
    shas = git(repo, "log", "--format=%H").split()
    return site, repo, shas


def test_held_by_a_wrong_url_then_fixed_everything_is_delivered(tmp_path, server):
    site, _repo, shas = held_by_a_wrong_url(tmp_path, server)
    assert "tracker.url" in status(site)["held"]
    site.data["tracker"]["url"] = server.url          # what the hold message asks for
    site.write()
    # Before any agent ran with the new url, status does not hide the entries.
    st = status(site)
    assert [(u["entries"], u["follows"]) for u in st["unserved"]] == [(3, True)]
    assert "go to this one when an agent starts" in site.cli("status").stdout
    retry = site.cli("retry", "--held")
    assert retry.returncode == 0 and "3 entr(y/ies) queued for this configuration's earlier" in retry.stderr
    flush = site.cli("flush")
    assert flush.returncode == 0, flush.stderr
    assert sorted(r["commit_id"] for r in server.received()) == sorted(shas)
    st = status(site)
    assert st["pending"]["commits"] == 0 and st["sent"] == 3 and st["unserved"] == [] and st["held"] is None


def test_after_the_fix_the_next_commits_agent_delivers_the_old_ones_too(tmp_path, server):
    site, repo, shas = held_by_a_wrong_url(tmp_path, server)
    site.data["tracker"]["url"] = server.url
    site.write()
    assert commit_file(repo, "One more [#799]").returncode == 0
    head = git(repo, "rev-parse", "HEAD").strip()
    assert wait_until(lambda: len(server.received()) == 4), server.received()
    assert sorted(r["commit_id"] for r in server.received()) == sorted(shas + [head])
    assert wait_until(lambda: status(site)["pending"]["commits"] == 0)


def test_entries_no_configuration_names_are_reported_and_retargeted(tmp_path, server):
    spool = tmp_path / "spool"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    old = Site(tmp_path / "a", "http://127.0.0.1:9/old", spool_dir=str(spool))
    ids = old.enqueue_fake_commits(4)
    site = Site(tmp_path / "b", server.url, spool_dir=str(spool))
    # The other configuration still exists and names that destination (its agent said so):
    # its entries are its own, not this configuration's concern.
    assert old.cli("retry").returncode == 0
    assert status(site)["unserved"] == []
    # Its file is removed: nobody would ever send those four.
    old.config_path.unlink()
    tag = dest_tag("v3 http://127.0.0.1:9/old")
    st = status(site)
    assert st["unserved"] == [{"tag": tag, "destination": "v3 http://127.0.0.1:9/old", "entries": 4,
                               "follows": False}]
    text = site.cli("status").stdout
    assert f"hookagent retarget --from {tag}" in text and "UNSERVED" in text
    flush = site.cli("flush")
    assert f"retarget --from {tag}" in flush.stderr and server.received() == []
    # One of them had died at the old destination: it moves too, and stays dead until retried.
    s = site.spool
    dead_name = sorted(os.listdir(s.path("new")))[0]
    os.rename(s.path("new", dead_name), s.path("dead", dead_name))
    proc = subprocess.run([sys.executable, "-m", "hookagent", "retarget", "--config", str(site.config_path),
                           "--from", "v3 http://127.0.0.1:9/old"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "moved 4 entr(y/ies)" in proc.stderr and "3 new, 1 dead" in proc.stderr
    assert site.cli("flush").returncode == 0
    assert sorted(r["commit_id"] for r in server.received()) == ids[1:]
    assert site.cli("retry", "--dead").returncode == 0 and site.cli("flush").returncode == 0
    assert sorted(r["commit_id"] for r in server.received()) == ids
    assert status(site)["unserved"] == []


def test_a_destination_another_configuration_still_uses_keeps_its_entries(tmp_path, server):
    spool = tmp_path / "spool"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Site(tmp_path / "a", server.url, spool_dir=str(spool))
    b = Site(tmp_path / "b", server.url, spool_dir=str(spool))
    for site in (a, b):
        assert site.cli("retry").returncode == 0      # each configuration's agent noted its destination
    ids = a.enqueue_fake_commits(3)
    a.data["tracker"]["url"] = server.url + "/elsewhere"
    a.write()
    assert a.cli("retry").returncode == 0
    # b still sends to the old address: the entries stay there, and b delivers them.
    assert len(b.spool.due_names(dest_tag(b.config.tracker.destination))) == 3
    assert status(a)["unserved"] == [] and status(b)["pending"]["commits"] == 3
    assert b.cli("flush").returncode == 0
    assert sorted(r["commit_id"] for r in server.received()) == ids


def test_retarget_refuses_its_own_destination(tmp_path, server):
    site = Site(tmp_path, server.url)
    proc = subprocess.run([sys.executable, "-m", "hookagent", "retarget", "--config", str(site.config_path),
                           "--from", site.config.tracker.destination], capture_output=True, text=True)
    assert proc.returncode == 2 and "own destination" in proc.stderr
    assert proc.stderr.count("\n") == 1
