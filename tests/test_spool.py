"""The spool protocol: every claim/ack/defer/release/bury/recover path, on a real folder."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hookagent.errors import SpoolError
from hookagent.spool import AgentLock, Spool, batch_entry_name, commit_entry_name, make_entry
from testing.wait import PATIENCE

DEST = "v3 http://127.0.0.1:1"


def entry(*ids: str) -> dict:
    return make_entry(DEST, [{"commit_id": i, "author": "a", "message": f"[#1] {i}"} for i in ids])


@pytest.fixture
def spool(tmp_path) -> Spool:
    return Spool(str(tmp_path / "spool"))


def test_layout_and_modes(spool):
    for q in ("tmp", "new", "cur", "deferred", "dead", "corrupt", "locks", "state"):
        st = os.stat(spool.path(q))
        assert stat.S_IMODE(st.st_mode) == 0o700
    name = commit_entry_name(DEST, "abc")
    spool.enqueue(name, entry("abc"))
    assert stat.S_IMODE(os.stat(spool.path("new", name)).st_mode) == 0o600
    assert os.listdir(spool.path("tmp")) == []


def test_enqueue_is_idempotent_per_destination_and_commit(spool):
    name = commit_entry_name(DEST, "abc")
    assert spool.enqueue(name, entry("abc"))
    assert not spool.enqueue(name, entry("abc"))
    assert spool.enqueue(commit_entry_name("v5 http://other", "abc"), entry("abc"))
    assert len(spool.due_names()) == 2


def test_claim_is_exclusive_and_ack_deletes(spool):
    name = commit_entry_name(DEST, "abc")
    spool.enqueue(name, entry("abc"))
    with AgentLock(spool) as a, AgentLock(spool) as b:
        c = spool.claim(name, a.id)
        assert c is not None and c.entry["commits"][0]["commit_id"] == "abc"
        assert spool.claim(name, b.id) is None
        spool.ack(c)
    assert spool.due_names() == [] and os.listdir(spool.path("cur")) == []


def test_defer_uses_mtime_as_due_time_and_promotes_when_due(spool):
    name = commit_entry_name(DEST, "abc")
    spool.enqueue(name, entry("abc"))
    now = time.time()
    with AgentLock(spool) as a:
        c = spool.claim(name, a.id)
        c.entry["attempts"] = 1
        spool.defer(c, now + 100)
    assert spool.due_names() == []
    assert abs(spool.next_due() - (now + 100)) < 1
    assert spool.promote_due(now + 50) == 0
    assert spool.promote_due(now + 101) == 1
    with AgentLock(spool) as a:
        assert spool.claim(name, a.id).entry["attempts"] == 1


def test_release_keeps_the_entry_unchanged(spool):
    name = commit_entry_name(DEST, "abc")
    spool.enqueue(name, entry("abc"))
    with open(spool.path("new", name), "rb") as fh:
        before = fh.read()
    with AgentLock(spool) as a:
        spool.release(spool.claim(name, a.id))
    with open(spool.path("new", name), "rb") as fh:
        assert fh.read() == before


def test_bury_and_requeue_dead(spool):
    name = commit_entry_name(DEST, "abc")
    spool.enqueue(name, entry("abc"))
    with AgentLock(spool) as a:
        c = spool.claim(name, a.id)
        c.entry["last_error"] = "HTTP 422"
        spool.bury(c)
    assert spool.count("dead") == 1 and spool.due_names() == []
    assert not spool.enqueue(name, entry("abc")), "a dead commit is not queued again by a hook"
    assert spool.requeue("dead") == 1
    assert spool.due_names() == [name] and spool.count("dead") == 0


def test_corrupt_entry_is_quarantined_not_a_crash(spool):
    with open(spool.path("new", "c-bad.json"), "wb") as fh:
        fh.write(b"{not json")
    with AgentLock(spool) as a:
        assert spool.claim("c-bad.json", a.id) is None
    assert spool.due_names() == [] and spool.count("corrupt") == 1


def test_claims_of_a_killed_agent_are_recovered_and_live_ones_are_not(spool):
    names = [commit_entry_name(DEST, f"c{i}") for i in range(3)]
    for i, n in enumerate(names):
        spool.enqueue(n, entry(f"c{i}"))
    # A real separate process claims two entries, then dies by SIGKILL holding them.
    code = (
        "import os, sys; from hookagent.spool import Spool, AgentLock\n"
        f"s = Spool({spool.root!r}); a = AgentLock(s)\n"
        f"s.claim({names[0]!r}, a.id); s.claim({names[1]!r}, a.id)\n"
        "print('claimed', flush=True); os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True)
    assert "claimed" in proc.stdout and proc.returncode == -9
    with AgentLock(spool) as live:
        spool.claim(names[2], live.id)
        assert len(os.listdir(spool.path("cur"))) == 3
        assert spool.recover_stale() == 2
        assert sorted(spool.due_names()) == sorted(names[:2])
        assert len(os.listdir(spool.path("cur"))) == 1, "the live agent keeps its claim"


def test_refuses_symlink_world_writable_and_foreign_spools(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(SpoolError, match="symlink"):
        Spool(str(link))
    real.chmod(0o777)
    with pytest.raises(SpoolError, match="world-writable"):
        Spool(str(real))


@pytest.mark.skipif(os.geteuid() != 0 or not os.access("/usr/bin/python3", os.X_OK),
                    reason="needs root, and a system python a stranger can run")
def test_refuses_a_spool_owned_by_a_stranger():
    import shutil
    import tempfile
    base = tempfile.mkdtemp(prefix="hookagent-stranger-")   # pytest's tmp_path is 0700 to others
    try:
        os.chmod(base, 0o755)
        pkg = os.path.join(base, "pkg")
        shutil.copytree(os.path.join(os.path.dirname(os.path.dirname(__file__)), "hookagent"),
                        os.path.join(pkg, "hookagent"))   # the checkout may sit under a private home
        d = os.path.join(base, "theirs")
        os.mkdir(d, 0o700)
        os.chown(d, 12345, 12345)
        code = ("import os; os.setgid(54321); os.setuid(54321)\n"
                "from hookagent.spool import Spool\n"
                f"try:\n Spool({d!r})\nexcept Exception as e: print(type(e).__name__, e)\n")
        proc = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True, cwd="/",
                              env={"PYTHONPATH": pkg, "PATH": "/usr/bin:/bin"})
        assert "SpoolError" in proc.stdout and "belongs to uid 12345" in proc.stdout, proc.stderr
    finally:
        shutil.rmtree(base)


def test_group_shared_spool_is_setgid_and_group_writable(tmp_path):
    import grp
    group = grp.getgrgid(os.getgid()).gr_name
    s = Spool(str(tmp_path / "g"), group)
    st = os.stat(s.root)
    assert stat.S_IMODE(st.st_mode) == 0o2770
    name = batch_entry_name(DEST)
    s.enqueue(name, entry("a", "b"))
    assert stat.S_IMODE(os.stat(s.path("new", name)).st_mode) == 0o660


def test_many_concurrent_writers_and_claimers_lose_nothing(spool, tmp_path):
    """8 writer processes and 3 claimer processes at once: every entry claimed exactly once."""
    writer = (
        "import sys; from hookagent.spool import *\n"
        f"s = Spool({spool.root!r})\n"
        "w = int(sys.argv[1])\n"
        "for i in range(50):\n"
        f"    s.enqueue(commit_entry_name({DEST!r}, f'w{{w}}-{{i}}'), make_entry({DEST!r}, [{{'commit_id': f'w{{w}}-{{i}}'}}]))\n"
    )
    # Claimers stop once the writers are done (the test says so with a file) and nothing is left,
    # not after a spell of idleness: slow writers on a busy machine are not finished writers.
    done = str(tmp_path / "writers-done")
    claimer = (
        "import os, time; from hookagent.spool import *\n"
        f"s = Spool({spool.root!r}); a = AgentLock(s); got = []\n"
        "while True:\n"
        f"    finished = os.path.exists({done!r})   # looked at first: all written before the look below\n"
        "    names = s.due_names()\n"
        "    for n in names:\n"
        "        c = s.claim(n, a.id)\n"
        "        if c: got.append(c.entry['commits'][0]['commit_id']); s.ack(c)\n"
        "    if finished and not names:\n"
        "        break\n"
        "    time.sleep(0.02)\n"
        "print('\\n'.join(got))\n"
    )
    claimers = [subprocess.Popen([sys.executable, "-c", claimer], stdout=subprocess.PIPE, text=True)
                for _ in range(3)]
    writers = [subprocess.Popen([sys.executable, "-c", writer, str(w)]) for w in range(8)]
    try:
        for w in writers:
            assert w.wait() == 0
    finally:
        Path(done).touch()
    got: list[str] = []
    for c in claimers:
        out, _ = c.communicate(timeout=PATIENCE)
        got += [line for line in out.splitlines() if line]
    assert sorted(got) == sorted(f"w{w}-{i}" for w in range(8) for i in range(50))
    assert os.listdir(spool.path("tmp")) == []


def test_the_folders_made_above_a_new_spool_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        Spool(str(tmp_path / "a" / "b" / "spool"))
    finally:
        os.umask(old)
    for folder in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "spool"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_a_read_only_spool_is_one_line_and_exit_2_and_status_still_shows_what_it_reads(tmp_path, request):
    from testing.site import Site
    site = Site(tmp_path, "http://127.0.0.1:9")
    spool_dir = Path(site.data["spool_dir"])
    spool_dir.mkdir(mode=0o700)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs",
                                            str(spool_dir)], capture_output=True).returncode != 0:
        pytest.skip("needs root and tmpfs to make a read-only file system")
    request.addfinalizer(lambda: subprocess.run(["umount", str(spool_dir)], check=False))
    site.enqueue_fake_commits(2)
    assert site.cli("status").returncode == 0          # the ledger exists
    subprocess.run(["mount", "-o", "remount,ro", str(spool_dir)], check=True)
    for command in ("status", "flush"):
        proc = site.cli(command)
        lines = proc.stderr.splitlines()
        assert proc.returncode == 2 and len(lines) == 1, (command, proc.stderr)
        assert lines[0].startswith(f"hookagent: cannot write the spool {spool_dir}") and "Traceback" not in proc.stderr
    assert "pending:      2 commit(s)" in site.cli("status").stdout


# ---------------------------------------------------------------- a hostile place: links and owners
def _fingerprint(path: Path) -> tuple:
    st = os.lstat(path)
    return path.read_bytes(), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_nlink


def test_no_file_of_the_spool_is_opened_through_a_symlink(tmp_path):
    """A name someone put in the spool first, as a symlink to another file (there, or not yet
    there): creating, writing, truncating, reading and checking all refuse it, in one line naming
    it; the other file is untouched and never made."""
    from hookagent.agent.lifetime import FlushLock, PidFile, agent_running, pid_path
    from hookagent.spool import flush_lock_path
    spool = Spool(str(tmp_path / "spool"), None)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    victim.chmod(0o640)
    before = _fingerprint(victim)
    lock = Path(flush_lock_path(spool.root, DEST))
    pid = Path(pid_path(spool.root, "k"))
    log = Path(spool.root) / "agent.log"
    for link in (lock, pid, log, Path(spool.path("state", "config-k.ok"))):
        link.symlink_to(victim)
    with pytest.raises(SpoolError, match=r"flush-.*\.lock is a symlink \(to .*victim.txt\); refusing it: remove it"):
        FlushLock(spool, DEST)
    PidFile(spool, "k").write()       # a hint for hooks only: refused, logged, no exception
    assert not agent_running(spool.root, "k")
    with pytest.raises(SpoolError, match="is a symlink"):
        spool.ensure_file(spool.path("state", "config-k.ok"))
    with pytest.raises(SpoolError, match="agent.log is a symlink"):
        from hookagent.spool import open_log
        open_log(str(log), spool.root, None)
    with pytest.raises(SpoolError):
        spool.read_file(str(pid))
    assert _fingerprint(victim) == before
    absent = tmp_path / "made-through-the-link"
    for link in (lock, pid, log):
        link.unlink()
        link.symlink_to(absent)      # dangling: O_CREAT alone would make the file it names
    with pytest.raises(SpoolError, match="is a symlink"):
        FlushLock(spool, DEST)
    PidFile(spool, "k").write()
    with pytest.raises(SpoolError):
        open_log(str(log), spool.root, None)
    assert not absent.exists() and not os.path.lexists(absent)


def test_a_file_linked_from_elsewhere_is_never_written_nor_truncated(tmp_path):
    """A hard link to someone's file (what a group member can make where the kernel lets anyone
    link others' files, fs.protected_hardlinks=0): refused before a byte of it is truncated."""
    from hookagent.agent.lifetime import FlushLock, PidFile, pid_path
    from hookagent.spool import flush_lock_path
    spool = Spool(str(tmp_path / "spool"), None)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    os.link(victim, flush_lock_path(spool.root, DEST))
    os.link(victim, pid_path(spool.root, "k"))
    before = _fingerprint(victim)
    with pytest.raises(SpoolError, match="has 3 hard links"):
        FlushLock(spool, DEST)
    PidFile(spool, "k").write()      # O_TRUNC: done only after the checks
    assert _fingerprint(victim) == before


def test_a_file_another_agent_is_placing_is_opened_once_its_second_link_goes(tmp_path, monkeypatch):
    """Spool._make_aside links a new shared file (a lock, the ledger) into place from tmp/, then
    removes its tmp/ name: another process opening it in between saw two links and refused it
    (seen once: "ledger.sqlite3 has 2 hard links" with eight concurrent pushes). The twin here goes
    the first time the opener waits, so the test does not race the clock."""
    import hookagent.spool as spool_mod
    spool = Spool(str(tmp_path / "spool"), None)
    placed = spool.path("locks", "shared.lock")
    twin = spool.path("tmp", ".shared.lock.123.abcd")
    with open(twin, "wb"):
        pass
    os.link(twin, placed)
    real_pause = spool_mod._pause
    waited = []

    def pause(seconds):
        if os.path.exists(twin):
            os.unlink(twin)           # the placing process removes its tmp/ name
        waited.append(seconds)
        real_pause(seconds)

    monkeypatch.setattr(spool_mod, "_pause", pause)
    fd = spool.open(placed, os.O_RDWR)
    os.close(fd)
    assert waited and os.stat(placed).st_nlink == 1


def test_a_queue_folder_replaced_by_a_symlink_is_refused(tmp_path):
    """locks/ swapped for a symlink to another folder: the spool refuses it, by name, and no file
    is made or opened in the folder it points to."""
    from hookagent.spool import flush_lock_path
    spool = Spool(str(tmp_path / "spool"), None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.rmdir(spool.path("locks"))
    os.symlink(elsewhere, spool.path("locks"))
    with pytest.raises(SpoolError, match=r"locks is a symlink, not a folder of the spool; refusing it: remove it"):
        Spool(spool.root, None)
    with pytest.raises(SpoolError, match="locks is a symlink"):
        spool.open_file(flush_lock_path(spool.root, DEST), os.O_RDWR)
    assert os.listdir(elsewhere) == []


def test_an_entry_that_is_a_symlink_is_left_in_place_and_named(tmp_path):
    """An entry in new/ that is a symlink (to a file of the agent's user that happens to be
    JSON): not read, left where it is, one line naming it."""
    spool = Spool(str(tmp_path / "spool"), None)
    target = tmp_path / "mine.json"
    target.write_text('{"commits": [], "created": 0}')
    name = commit_entry_name(DEST, "planted")
    os.symlink(target, spool.path("new", name))
    with pytest.raises(SpoolError, match=f"cannot read spool entry {name}: it is a symlink .*; remove .*new/{name}"):
        spool.claim(name, "agent")
    assert os.path.islink(spool.path("new", name)) and os.listdir(spool.path("cur")) == []


def test_the_ledger_is_not_opened_through_a_symlink(tmp_path):
    """SQLite follows a symlink at the database's name (not at -wal and -shm): the ledger checks
    what SQLite opened before its first write."""
    from hookagent.ledger import Ledger
    victim = tmp_path / "victim.db"
    victim.write_bytes(b"")        # an empty file is a database to SQLite: it would write its pages
    link = tmp_path / "ledger.sqlite3"
    link.symlink_to(victim)
    with pytest.raises(SpoolError, match="ledger.sqlite3 is a symlink to .*victim.db"):
        Ledger(str(link))
    assert victim.read_bytes() == b"" and not (tmp_path / "victim.db-wal").exists()
