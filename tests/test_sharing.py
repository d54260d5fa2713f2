"""One spool shared: by configs with different trackers, by users of a group, by processes
opening the ledger at the same moment."""
from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hookagent.devserver import DevServer
from hookagent.spool import flush_lock_path
from testing import accounts
from testing.site import TOKEN, Site, commit_file, git
from testing.wait import PATIENCE, wait_until


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


# ---------------------------------------------------------------- a hostile member of the group
AUTHOR = "x; touch PWNED; #"
"""An author a hostile member hopes the victim's agent writes into a shell's rc file."""


@dataclass
class People:
    """Real users in one group (testing/accounts.py), a folder they all reach and an interpreter
    they all run."""
    group: str
    base: Path
    python: Path
    users: dict[str, accounts.Account] = field(default_factory=dict)

    def __getitem__(self, role: str) -> accounts.Account:
        return self.users[role]

    def run(self, role: str, cmd: list, *, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        return self.users[role].run(cmd, check=check, env=env, timeout=PATIENCE)

    def hookagent(self, role: str, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return self.run(role, [self.python, "-m", "hookagent", *args], check=check)

    def folder(self, prefix: str, owner: str | None = None) -> Path:
        """A new folder every user can enter, owned by ``owner`` (root when None)."""
        path = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.base))
        path.chmod(0o755)
        if owner:
            self.users[owner].give(path)
        return path


@pytest.fixture(scope="module")
def people(request) -> People:
    """Two real users in one group: the victim, whose spool is shared with spool_group, and a
    hostile member of that group."""
    why = accounts.can_make_accounts() or (None if shutil.which("groupadd") else "needs groupadd")
    python = accounts.system_python()
    if why or python is None:
        pytest.skip(why or "needs a system Python (3.10 or newer, with venv) that every user can run")
    base = accounts.shared_folder("hookagent-group-")
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    group = accounts.create_group()
    request.addfinalizer(lambda: accounts.remove_group(group))
    found = People(group, base, accounts.hookagent_venv(base / "python", python))
    for role in ("victim", "attacker"):
        found.users[role] = account = accounts.create(base, groups=(group,))
        request.addfinalizer(lambda account=account: accounts.remove(account))
    return found


def _victim_site(people: People, server, *, group: bool = True, autostart: bool = False) -> tuple[Site, Path]:
    """The victim's configuration, token and repository with the hook installed, in a folder of
    the victim's; its spool (not made yet) shared with the group, or private."""
    folder = people.folder("victim", owner="victim")
    extra = {"spool_group": people.group} if group else {}
    site = Site(folder, server.url, agent={"autostart": autostart}, **extra)
    people["victim"].give(site.token_file, site.config_path)
    repo = folder / "repo"
    people.run("victim", ["git", "init", "-q", "-b", "main", repo])
    people.hookagent("victim", "install", str(repo), "--config", str(site.config_path), check=True)
    return site, repo


def _commit(people: People, repo: Path, message: str) -> subprocess.CompletedProcess:
    """A real commit as the victim, by AUTHOR; the installed hook records it."""
    return people.run("victim", ["git", "-C", repo, "commit", "-q", "--allow-empty", "-m", message], check=False,
                      env=people["victim"].env(GIT_AUTHOR_NAME=AUTHOR))


def _committed(people: People, repo: Path, message: str) -> None:
    proc = _commit(people, repo, message)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def _fingerprint(path: Path) -> tuple | None:
    """A file's bytes, mode, owner and group (None when it does not exist, even as a link)."""
    if not os.path.lexists(path):
        return None
    st = os.lstat(path)
    return path.read_bytes(), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def _victim_file(people: People, path: Path, data: bytes, mode: int) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    people["victim"].give(path)
    return path


PLANTED = {
    # name: (what the attacker puts where, pointing at which of the victim's files)
    "flush lock -> private file": ("symlink", "flush_lock", "secret"),
    "flush lock -> a file not there yet": ("symlink", "flush_lock", "absent"),
    "agent.log -> ~/.bashrc": ("symlink", "agent.log", "bashrc"),
    "agent.log hard-linked to a private file": ("hardlink", "agent.log", "secret"),
    "pid file -> private file": ("symlink", "pid", "secret"),
    "ledger -> an empty file": ("symlink", "ledger.sqlite3", "empty"),
}


@pytest.mark.parametrize("case", list(PLANTED))
def test_a_group_member_cannot_make_the_victims_agent_write_through_a_planted_file(people, case):
    """A hostile member of spool_group puts a name in the shared spool before the victim's agent
    makes it: a symlink to one of the victim's files (or to one not there yet), or a hard link
    (which a member can make only where fs.protected_hardlinks=0; root makes it here). The
    victim's agent, started as the hook starts it, never truncates, writes, chmods or makes that
    file: it delivers all the same, or says in one line which file it refused, and delivers once
    the victim removed it."""
    from hookagent.agent.lifetime import pid_path
    from hookagent.inbox import agent_key
    kind, where, which = PLANTED[case]
    with DevServer(token=TOKEN) as server:
        site, repo = _victim_site(people, server)
        _committed(people, repo, "Guard the door [#101]")
        spool = Path(site.data["spool_dir"])
        assert os.listdir(spool / "inbox"), "the hook recorded the commit"
        folder = site.root
        targets = {
            "secret": _victim_file(people, folder / "secret.txt", b"the victim's own words\n", 0o600),
            "empty": _victim_file(people, folder / "notes.db", b"", 0o600),
            "bashrc": _victim_file(people, people["victim"].home / ".bashrc", b"alias ll='ls -l'\n", 0o644),
            "absent": folder / "made-by-the-agent",
        }
        places = {"flush_lock": Path(flush_lock_path(str(spool), site.config.tracker.destination)),
                  "pid": Path(pid_path(str(spool), agent_key(str(site.config_path)))),
                  "agent.log": spool / "agent.log", "ledger.sqlite3": spool / "ledger.sqlite3"}
        target, place = targets[which], places[where]
        if kind == "symlink":
            people.run("attacker", ["ln", "-s", target, place])
        else:
            os.link(target, place)
        before = {name: _fingerprint(path) for name, path in targets.items()}

        proc = people.hookagent("victim", "flush", "--background", "--config", str(site.config_path))
        assert {name: _fingerprint(path) for name, path in targets.items()} == before
        assert "Traceback" not in proc.stderr
        if proc.returncode == 0:       # the agent went on without that file
            assert len(server.received()) == 1
            said = proc.stderr + (spool / "agent.log").read_text(errors="replace") * (where != "agent.log")
            assert f"{place} " in said and ("symlink" in said or "hard links" in said), said
        else:
            lines = proc.stderr.splitlines()
            assert proc.returncode == 2 and lines[-1].startswith(f"hookagent: {place} is a symlink"), proc.stderr
            assert "refusing it: remove it" in lines[-1]
            assert server.received() == []
            people.run("victim", ["rm", place])     # what the line says to do
            again = people.hookagent("victim", "flush", "--background", "--config", str(site.config_path))
            assert again.returncode == 0 and len(server.received()) == 1, again.stderr
        assert {name: _fingerprint(path) for name, path in targets.items()} == before


def test_a_fifo_for_the_agents_pid_file_never_stalls_the_commit(people):
    """The sh hook reads the agent's pid file to decide whether to start one. A member who
    replaces it with a FIFO would keep every commit of every user waiting on that read: the hook
    reads only a regular file, starts the agent, and the agent says in the log which file it
    refused and delivers."""
    from hookagent.agent.lifetime import pid_path
    from hookagent.inbox import agent_key
    with DevServer(token=TOKEN) as server:
        site, repo = _victim_site(people, server, autostart=True)
        people.hookagent("victim", "flush", "--config", str(site.config_path), check=True)   # makes the spool
        pid = pid_path(site.data["spool_dir"], agent_key(str(site.config_path)))
        people.run("attacker", ["mkfifo", pid])
        _committed(people, repo, "Keep it moving [#102]")     # returns: nothing waits on the FIFO
        assert wait_until(lambda: len(server.received()) == 1)
        assert wait_until(lambda: not site.background_flush_running())
        log = (Path(site.data["spool_dir"]) / "agent.log").read_text()
        assert f"{pid} is not a regular file; refusing it: remove it" in log


def test_an_inbox_swapped_for_a_symlink_is_refused_and_the_commit_stands(people):
    """A member replaces inbox/ with a symlink to a folder of theirs: the victim's hook writes
    nothing through it, says so in one line, and the commit stands."""
    with DevServer(token=TOKEN) as server:
        site, repo = _victim_site(people, server)
        _committed(people, repo, "First [#105]")
        inbox = Path(site.data["spool_dir"]) / "inbox"
        theirs = people.folder("attacker", owner="attacker")
        people.run("attacker", ["mv", inbox, theirs / "the-real-inbox"])
        people.run("attacker", ["ln", "-s", theirs, inbox])
        proc = _commit(people, repo, "Second [#105]")
        assert proc.returncode == 0
        assert proc.stderr.startswith(f"hookagent: post-commit: could not record the commit: {inbox} is a symlink")
        assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
        assert os.listdir(theirs) == ["the-real-inbox"]


def test_commit_data_cannot_forge_lines_in_the_agents_log(tmp_path):
    """Whatever an entry's author holds (a member can write any entry; git lets an author hold an
    escape sequence), agent.log keeps one line per record: newlines and control characters are
    written as escapes."""
    import re

    from hookagent.model import Commit
    from hookagent.spool import commit_entry_name, make_entry
    forged = "x\n2026-01-01T00:00:00+0000 1 INFO sent deadbeef by admin\x1b[2J\x1b]0;owned\x07\u2028"
    with DevServer(token=TOKEN) as server:
        site = Site(tmp_path, server.url)
        dest = site.config.tracker.destination
        c = Commit("f0rged0", forged, "Work [#101]", date="2026-11-28T10:00:00+00:00")
        site.spool.enqueue(commit_entry_name(dest, c.commit_id), make_entry(dest, [c.to_dict()]))
        assert site.cli("flush").returncode == 0
        assert len(server.received()) == 1
    text = (tmp_path / "spool" / "agent.log").read_text()
    lines = text.splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \d+ [A-Z]+ ", line) for line in lines), text
    assert not any("sent deadbeef by admin" in line and line.startswith("2026-01-01") for line in lines)
    assert "x\\n2026-01-01T00:00:00+0000 1 INFO sent deadbeef by admin\\x1b[2J\\x1b]0;owned\\x07\\u2028" in text
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f\u2028]", text)


def test_root_running_the_agent_on_a_users_spool_leaves_every_file_to_that_user(people):
    """Root runs a hook's agent on a user's private spool (a commit made with sudo, a service):
    what it creates there (agent.log, the ledger, locks, a folder the spool lacked) belongs to
    the user, so the user's own agents go on writing them; and a symlink the user put where root
    writes (a classic way to make root chown a file of root's) is refused, in one line."""
    with DevServer(token=TOKEN) as server:
        site, repo = _victim_site(people, server, group=False)
        _committed(people, repo, "Root passes by [#103]")
        spool = Path(site.data["spool_dir"])
        victim = people["victim"]
        vault = people.folder("root") / "root-only"
        vault.write_bytes(b"root's own secret\n")
        vault.chmod(0o600)
        before = _fingerprint(vault)
        lock = flush_lock_path(str(spool), site.config.tracker.destination)
        people.run("victim", ["ln", "-s", vault, lock])
        people.run("victim", ["rmdir", spool / "corrupt"])   # root will make it again

        as_root = [sys.executable, "-m", "hookagent", "flush", "--background", "--config", str(site.config_path)]
        proc = subprocess.run(as_root, capture_output=True, text=True, timeout=PATIENCE)
        assert proc.returncode == 2 and proc.stderr.splitlines()[-1].startswith(f"hookagent: {lock} is a symlink"), \
            proc.stderr
        assert _fingerprint(vault) == before
        people.run("victim", ["rm", lock])
        proc = subprocess.run(as_root, capture_output=True, text=True, timeout=PATIENCE)
        assert proc.returncode == 0 and len(server.received()) == 1, proc.stderr
        assert _fingerprint(vault) == before

        foreign = []
        for root, dirs, files in os.walk(spool):
            for name in dirs + files:
                st = os.lstat(os.path.join(root, name))
                if (st.st_uid, st.st_gid) != (victim.uid, victim.gid):
                    foreign.append((os.path.join(root, name), st.st_uid, st.st_gid))
        assert foreign == [] and (spool / "agent.log").exists() and (spool / "corrupt").is_dir()

        log_size = (spool / "agent.log").stat().st_size
        _committed(people, repo, "The user again [#104]")
        proc = people.hookagent("victim", "flush", "--config", str(site.config_path))
        assert proc.returncode == 0 and "cannot write log" not in proc.stderr, proc.stderr
        assert len(server.received()) == 2
        assert (spool / "agent.log").stat().st_size > log_size, "the user's agent writes the log root made"
