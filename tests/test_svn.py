"""Subversion end to end: real repositories, real working copies, real `svn commit` over file://
and over svn:// (an svnserve started with an empty environment), the installed hooks, a real
`hookagent flush` and a loopback DevServer. Both revision readers (svnlook, pysvn) run every
hook scenario; pysvn is skipped only when it cannot be imported.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hookagent import inbox
from hookagent.devserver import DevServer
from hookagent.vcs import svn as vsvn
from testing import fakepython
from testing import svn as tsvn
from testing.repos import write_script
from testing.site import Site
from testing.wait import wait_until

pytestmark = pytest.mark.skipif(not tsvn.have_svnserve(), reason="svn, svnadmin, svnlook and svnserve are needed")

READERS = ["svnlook", pytest.param("pysvn", marks=pytest.mark.skipif(
    not vsvn.pysvn_available(), reason="pysvn cannot be imported (Debian's python3-svn; scripts/setup bridges it)"))]
TRANSPORTS = ["file", "svn"]

NON_ASCII = [
    "Café crème brûlée [#101]",
    "日本語のコミット [fixes #102]\n\n本文の行。\nsecond line é",
    "Rocket 🚀 and fire 🔥 [#103 #104]",
    "Ümläüts, ß and 😀 without any story",
    "Mixed: naïve façade — “quotes” [delivers #105]\n",
    "Ampersand & <angle> ]]> [#106]",
]


@dataclass
class Rig:
    """One svn repository with hookagent installed, reached over file:// or svn://."""

    tmp: Path
    site: Site
    server: DevServer
    repos: Path
    transport: str
    svnserve: tsvn.SvnServe | None = None
    clients: list[tsvn.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.svnserve.url(self.repos) if self.svnserve else tsvn.file_url(self.repos)

    def client(self, user: str = "alice") -> tsvn.Client:
        n = len(self.clients)
        conf = self.tmp / f"svnconf-{n}"
        if self.transport == "svn":
            c = tsvn.Client(conf, user, tsvn.USERS[user])
        else:
            c = tsvn.Client(conf)
        self.clients.append(c)
        return c

    def checkout(self, client: tsvn.Client, name: str | None = None) -> Path:
        return client.checkout(self.url, self.tmp / (name or f"wc-{len(self.clients)}-{os.urandom(2).hex()}"))

    def author(self, user: str = "alice") -> str:
        if self.transport == "svn":
            return user
        import pwd
        return pwd.getpwuid(os.getuid()).pw_name   # file:// commits record the local user

    def flush(self) -> list[dict]:
        """`hookagent flush`; returns what the receiver got during it."""
        before = len(self.server.received())
        proc = self.site.cli("flush")
        assert proc.returncode == 0, proc.stderr
        return self.server.received()[before:]


def make_rig(tmp: Path, server: DevServer, transport: str, reader: str = "svnlook",
             hooks: str = "post-commit", **config) -> Rig:
    site = Site(tmp, server.url, svn={"reader": reader, **config.pop("svn", {})}, **config)
    repos = tmp / "svnroot" / "project"
    if not (repos / "format").exists():
        tsvn.create_repository(repos)
    proc = site.cli("install", str(repos), "--hooks", hooks)
    assert proc.returncode == 0, proc.stderr
    rig = Rig(tmp, site, server, repos, transport)
    if transport == "svn":
        rig.svnserve = tsvn.SvnServe(tmp / "svnroot").start()
    return rig


@pytest.fixture
def rigs(tmp_path):
    """Stops svnserve."""
    made: list[Rig] = []
    yield made
    for rig in made:
        if rig.svnserve:
            rig.svnserve.stop()


@pytest.fixture
def rig_factory(tmp_path, server, rigs):
    def make(transport: str, reader: str = "svnlook", sub: str = "", **kw) -> Rig:
        tmp = tmp_path / sub if sub else tmp_path
        tmp.mkdir(exist_ok=True)
        rig = make_rig(tmp, server, transport, reader, **kw)
        rigs.append(rig)
        return rig
    return make


# --- hooks run in an empty environment --------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_hooks_really_run_with_an_empty_environment(rig_factory, transport, tmp_path):
    rig = rig_factory(transport)
    if rig.svnserve:
        assert rig.svnserve.environ() == {}          # the server itself has nothing
    dump = tmp_path / "start-commit.env"
    (rig.repos / "hooks" / "start-commit").write_text(f"#!/bin/sh\nenv > {dump}\nexit 0\n")
    (rig.repos / "hooks" / "start-commit").chmod(0o755)
    c = rig.client()
    wc = rig.checkout(c)
    c.commit(wc, "Probe [#1]")
    env = dict(line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line)
    assert set(env) <= {"PWD"}, env                 # sh adds PWD itself; no HOME, PATH, LANG
    received = rig.flush()
    assert [(r["commit_id"], r["message"]) for r in received] == [("1", "Probe [#1]")]


def test_install_bakes_in_absolute_paths_and_a_utf8_locale(rig_factory):
    rig = rig_factory("file", hooks="post-commit,post-revprop-change")
    text = (rig.repos / "hooks" / "post-commit").read_text()
    assert f"PY={sys.executable}\n" in text or f"PY='{sys.executable}'\n" in text
    assert f"CFG={rig.site.config_path}\n" in text or f"CFG='{rig.site.config_path}'\n" in text
    assert f"SVNLOOK={vsvn.svnlook_path()}\n" in text
    assert "LC_ALL=C.UTF-8" in text and "HAS_STDIN=no" in text
    assert "HAS_STDIN=yes" in (rig.repos / "hooks" / "post-revprop-change").read_text()


# --- non-ASCII messages -------------------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("reader", READERS)
def test_non_ascii_messages_arrive_intact(rig_factory, transport, reader):
    rig = rig_factory(transport, reader)
    c = rig.client()
    wc = rig.checkout(c)
    for m in NON_ASCII:
        c.commit(wc, m)
    stored = {rev: tsvn.log_message(rig.repos, rev) for rev in range(1, len(NON_ASCII) + 1)}
    assert list(stored.values()) == NON_ASCII           # svn kept the exact text
    received = rig.flush()
    want = {str(rev): m for rev, m in stored.items() if "[#" in m or "[fixes" in m or "[delivers" in m}
    assert {r["commit_id"]: r["message"] for r in received} == want
    assert len(received) == len(want) == 5
    assert {r["author"] for r in received} == {rig.author()}
    assert not any("\\u" in r["message"] or "{U+" in r["message"] for r in received)   # no escapes
    stories = rig.server.stories()
    assert stories[102]["current_state"] == "finished" and stories[105]["current_state"] == "delivered"
    assert rig.flush() == []                              # nothing is sent twice


# --- concurrency --------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("reader", READERS)
def test_twenty_commits_from_four_concurrent_clients_each_arrive_once(rig_factory, transport, reader):
    rig = rig_factory(transport, reader)
    users = list(tsvn.USERS)
    clients = [rig.client(users[i]) for i in range(4)]
    setup = rig.client()
    setup.commit(rig.checkout(setup, "wc-setup"), "Add the shared file", "shared.txt")   # r1, no story
    wcs = [rig.checkout(c, f"wc-client{i}") for i, c in enumerate(clients)]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(i: int) -> None:
        try:
            start.wait()
            for j in range(5):
                # Everyone rewrites the same file: a commit is refused as out of date whenever
                # another client got in first, and the helper updates and tries again.
                clients[i].commit(wcs[i], f"client {i} commit {j} é [#{1000 + 10 * i + j}]", "shared.txt",
                                  content=f"client {i} commit {j}\n")
        except BaseException as exc:   # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert tsvn.youngest(rig.repos) == 21
    received = rig.flush()
    assert sorted(int(r["commit_id"]) for r in received) == list(range(2, 22))
    by_rev = {int(r["commit_id"]): r for r in received}
    for rev in range(2, 22):
        assert by_rev[rev]["message"] == tsvn.log_message(rig.repos, rev)
    expected = {f"client {i} commit {j} é [#{1000 + 10 * i + j}]" for i in range(4) for j in range(5)}
    assert {r["message"] for r in received} == expected
    if transport == "svn":
        assert {r["author"] for r in received} == set(users)
    assert rig.flush() == []
    print(f"out-of-date retries: {sum(c.retries for c in clients)}")


# --- edited log messages ------------------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("reader", READERS)
def test_an_edited_log_message_sends_only_the_references_it_added_and_never_twice(rig_factory, transport,
                                                                                 reader):
    rig = rig_factory(transport, reader, hooks="post-commit,post-revprop-change")
    tsvn.allow_log_edits(rig.repos)
    c = rig.client()
    wc = rig.checkout(c)
    c.commit(wc, "Shields up [#7] ✨")
    c.commit(wc, "Tidy, no story yet é")
    assert [r["commit_id"] for r in rig.flush()] == ["1"]

    c.set_log(rig.url, 1, "Shields up [#7 #8] ✨")                 # adds #8
    got = rig.flush()
    assert [(r["commit_id"], r["message"]) for r in got] == [("1", "Shields up [#8] ✨")]
    assert len(rig.server.stories()[7]["comments"]) == 1            # #7 was not told again

    c.set_log(rig.url, 1, "Shields up [#7 #8] ✨")                 # the same edit again
    c.set_log(rig.url, 1, "Shields up [#7 #8] ✨ (typo fixed)")    # an edit adding none
    assert rig.flush() == []
    c.set_log(rig.url, 1, "Shields up [#7] ✨")                    # #8 taken out...
    c.set_log(rig.url, 1, "Shields up [#7 #8] ✨")                 # ...and put back: already sent
    assert rig.flush() == []

    c.set_log(rig.url, 2, "Tidy, no story yet é [fixes #9]")       # a revision sent nothing before
    got = rig.flush()
    assert [(r["commit_id"], r["message"]) for r in got] == [("2", "Tidy, no story yet é [fixes #9]")]
    assert rig.server.stories()[9]["current_state"] == "finished"
    assert tsvn.log_message(rig.repos, 2) == "Tidy, no story yet é [fixes #9]"
    assert rig.flush() == []


def test_post_revprop_change_is_only_installed_on_request_and_says_what_svn_also_needs(tmp_path, server, rigs):
    site = Site(tmp_path, server.url)
    repos = tsvn.create_repository(tmp_path / "project")
    proc = site.cli("install", str(repos))
    assert proc.returncode == 0 and not (repos / "hooks" / "post-revprop-change").exists()
    proc = site.cli("install", str(repos), "--hooks", "post-commit,post-revprop-change")
    assert (repos / "hooks" / "post-revprop-change").exists()
    assert "pre-revprop-change" in proc.stdout and "svn:log" in proc.stdout


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_hook_starts_a_background_flush_that_delivers_without_holding_svn(rig_factory, transport, tmp_path):
    rig = rig_factory(transport, agent={"autostart": True, "log_file": str(tmp_path / "agent.log")})
    c = rig.client()
    wc = rig.checkout(c)
    proc = c.commit(wc, "Delivered in the background ⚡ [#81]")
    assert proc.returncode == 0           # svn returned: the detached flush holds none of its pipes
    wait_until(lambda: rig.server.received())   # the background agent is niced: slow on a busy machine
    assert [(r["commit_id"], r["message"]) for r in rig.server.received()] == [
        ("1", "Delivered in the background ⚡ [#81]")]


# --- commit ids and links -----------------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("reader", READERS)
def test_uuid_at_rev_commit_ids_and_revision_url_template(rig_factory, transport, reader, tmp_path):
    rig = rig_factory(transport, reader, svn={"commit_id": "uuid@rev"}, repos=[
        {"path": str(tmp_path / "svnroot" / "*"), "url": "https://svn.example.com/{repo}/?r={revision}&id={commit_id}"}])
    c = rig.client()
    wc = rig.checkout(c)
    c.commit(wc, "First [#11]")
    c.commit(wc, "Second [#12]")
    uuid = tsvn.uuid(rig.repos)
    got = sorted(rig.flush(), key=lambda r: r["commit_id"])
    assert [(r["commit_id"], r["url"]) for r in got] == [
        (f"{uuid}@{rev}", f"https://svn.example.com/project/?r={rev}&id={uuid}@{rev}") for rev in (1, 2)]


# --- a broken configuration never blocks a commit -----------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_broken_config_lets_the_commit_succeed_with_one_line_on_stderr(rig_factory, transport):
    rig = rig_factory(transport)
    rig.site.config_path.write_text("tracker: [this is not yaml\n")
    c = rig.client()
    wc = rig.checkout(c)
    proc = c.commit(wc, "Still committed [#21]", quiet=False)
    assert proc.returncode == 0
    assert tsvn.youngest(rig.repos) == 1 and tsvn.log_message(rig.repos, 1) == "Still committed [#21]"
    # svn 1.14 prints a failed post hook's stderr as a warning on its own stdout, after the commit.
    out = proc.stdout.decode()
    lines = [line for line in (out + proc.stderr.decode()).splitlines() if "hookagent" in line]
    assert len(lines) == 1, out
    assert lines[0].startswith("hookagent: post-commit: ")
    assert str(rig.site.config_path) in lines[0] and "not valid YAML" in lines[0]
    assert "the commit itself is fine" in lines[0]
    assert "Warning: post-commit hook failed (exit code 1) with output:\n" + lines[0] + "\n" in out
    assert "Committed revision 1." in proc.stdout.decode()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_broken_config_never_fails_a_log_edit(rig_factory, transport):
    rig = rig_factory(transport, hooks="post-commit,post-revprop-change")
    tsvn.allow_log_edits(rig.repos)
    c = rig.client()
    wc = rig.checkout(c)
    c.commit(wc, "Before [#51]")
    good = rig.site.config_path.read_text()
    rig.site.config_path.write_text("tracker: [this is not yaml\n")
    proc = c.set_log(rig.url, 1, "Before [#51 #52]", check=False)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr   # svn would fail propset on exit 1
    assert tsvn.log_message(rig.repos, 1) == "Before [#51 #52]"
    rig.site.config_path.write_text(good)
    assert [r["commit_id"] for r in rig.flush()] == ["1"]             # the commit, from post-commit


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_existing_post_commit_is_kept_still_runs_and_is_restored(rig_factory, transport, tmp_path):
    marker = tmp_path / "theirs.log"
    theirs = f'#!/bin/sh\necho "theirs $1 $2" >> {marker}\nexit 0\n'
    repos = tsvn.create_repository(tmp_path / "svnroot" / "project")
    write_script(repos / "hooks" / "post-commit", theirs)
    rig = rig_factory(transport)                      # installs over the existing repository
    assert (rig.repos / "hooks" / "hookagent-chained" / "post-commit").read_text() == theirs
    good = rig.site.config_path.read_text()
    c = rig.client()
    wc = rig.checkout(c)
    # Ours reports a problem on its first record: Python makes the spool then, and needs the
    # (broken) configuration for it; later records are written by sh alone.
    rig.site.config_path.write_text("tracker: [this is not yaml\n")
    proc = c.commit(wc, "Chained, broken config [#61]", quiet=False)
    assert proc.returncode == 0 and "Committed revision 1." in proc.stdout.decode()
    assert sum("hookagent" in line for line in proc.stdout.decode().splitlines()) == 1
    rig.site.config_path.write_text(good)
    proc = c.commit(wc, "Chained [#62]", quiet=False)
    assert proc.returncode == 0 and "Committed revision 2." in proc.stdout.decode()
    assert "hookagent" not in proc.stdout.decode() + proc.stderr.decode()
    assert [line.split()[2] for line in marker.read_text().splitlines()] == ["1", "2"]   # theirs ran both times
    assert [r["commit_id"] for r in rig.flush()] == ["2"]       # 1 was not recorded: backfill's job
    proc = rig.site.cli("uninstall", str(rig.repos))
    assert proc.returncode == 0, proc.stderr
    assert (rig.repos / "hooks" / "post-commit").read_text() == theirs


def test_an_unusable_spool_is_one_warning_and_backfill_sends_what_was_missed(rig_factory, tmp_path):
    rig = rig_factory("svn")
    (tmp_path / "not-a-folder").write_text("a file where the spool should be\n")
    good_spool = rig.site.data["spool_dir"]
    rig.site.data["spool_dir"] = str(tmp_path / "not-a-folder" / "spool")
    rig.site.write()
    c = rig.client()
    wc = rig.checkout(c)
    proc = c.commit(wc, "Recorded later [#91] ü", quiet=False)
    assert proc.returncode == 0 and "Committed revision 1." in proc.stdout.decode()
    lines = [line for line in proc.stdout.decode().splitlines() if "hookagent" in line]
    assert len(lines) == 1 and "could not record the commit" in lines[0] and "hookagent backfill" in lines[0]
    rig.site.data["spool_dir"] = good_spool
    rig.site.write()
    proc = rig.site.cli("backfill", rig.url, "--with-state")      # svnserve wants a password
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"run `svn info {rig.url}` once to store them, or backfill the repository's path" in proc.stderr
    proc = rig.site.cli("backfill", str(rig.repos), "--with-state")
    assert proc.returncode == 0, proc.stderr
    assert [(r["commit_id"], r["message"]) for r in rig.flush()] == [("1", "Recorded later [#91] ü")]


# --- the readers agree --------------------------------------------------------------------------

@pytest.mark.skipif(not vsvn.pysvn_available(), reason="pysvn cannot be imported")
def test_svnlook_and_pysvn_read_the_same_commit(rig_factory):
    rig = rig_factory("svn")
    tsvn.allow_log_edits(rig.repos)
    c = rig.client()
    wc = rig.checkout(c)
    messages = NON_ASCII + ["", "trailing newlines\n\n\n", "  leading spaces [#5]", "tab\tand\nCR-free"]
    for m in messages:
        c.commit(wc, m)
    anon = tsvn.Client(rig.tmp / "anonconf")
    (rig.repos / "conf" / "svnserve.conf").write_text(
        "[general]\nanon-access = write\nauth-access = write\npassword-db = passwd\n")
    wc2 = anon.checkout(rig.url, rig.tmp / "anon-wc")
    anon.commit(wc2, "anonymous [#6]")
    c.svn("propdel", "-q", "--revprop", "-r", "1", "svn:log", rig.url)
    youngest = tsvn.youngest(rig.repos)
    for rev in range(1, youngest + 1):
        a = vsvn.read_revision(str(rig.repos), rev, reader="svnlook")
        b = vsvn.read_revision(str(rig.repos), rev, reader="pysvn")
        assert a.to_dict() == b.to_dict(), rev
        assert a.commit_id == str(rev) and a.date.endswith("+00:00")
    assert vsvn.read_revision(str(rig.repos), 1).message == ""           # log deleted
    assert vsvn.read_revision(str(rig.repos), 2).message == NON_ASCII[1]
    last = vsvn.read_revision(str(rig.repos), youngest)
    assert last.author == "" and last.message == "anonymous [#6]"
    assert vsvn.read_revision(str(rig.repos), len(NON_ASCII) + 2).message == "trailing newlines\n\n\n"


def test_reader_auto_and_repository_paths_with_spaces_and_non_ascii(tmp_path):
    repos = tsvn.create_repository(tmp_path / "a repo é")
    c = tsvn.Client(tmp_path / "conf")
    wc = c.checkout(tsvn.file_url(repos), tmp_path / "wc")
    c.commit(wc, "Spaces [#3] ü")
    readers = ["svnlook", "auto"] + (["pysvn"] if vsvn.pysvn_available() else [])
    for reader in readers:
        commit = vsvn.read_revision(str(repos), 1, reader=reader)
        assert (commit.commit_id, commit.message) == ("1", "Spaces [#3] ü"), reader
    assert vsvn.uuid(str(repos)) == tsvn.uuid(repos)


def test_reader_errors_name_svnlook_and_an_unset_property_reads_as_empty(tmp_path):
    repos = tsvn.create_repository(tmp_path / "project")
    c = tsvn.Client(tmp_path / "conf")
    wc = c.checkout(tsvn.file_url(repos), tmp_path / "wc")
    c.commit(wc, "One [#1]")
    with pytest.raises(vsvn.VcsError, match=r"^svnlook propget failed: .*No such revision 7"):
        vsvn.read_revision(str(repos), 7)
    with pytest.raises(vsvn.VcsError, match=r"^svnlook propget failed: "):
        vsvn.read_revision(str(tmp_path / "not-a-repository"), 1)
    tsvn.write_script(repos / "hooks" / "pre-revprop-change", "#!/bin/sh\nexit 0\n")
    c.svn("propdel", "-q", "--revprop", "-r", "1", "svn:author", tsvn.file_url(repos))
    commit = vsvn.read_revision(str(repos), 1)
    assert (commit.author, commit.message) == ("", "One [#1]")


@pytest.mark.parametrize("raw, want", [
    ("2026-11-28T07:22:14.225148Z", "2026-11-28T07:22:14+00:00"),
    ("2026-11-28T07:22:14Z", "2026-11-28T07:22:14+00:00"),
    (" 2001-01-01T00:00:00.000000Z\n", "2001-01-01T00:00:00+00:00"),
    ("", ""),
    ("yesterday", "yesterday"),
])
def test_svn_dates_become_iso_8601_with_an_offset(raw, want):
    assert vsvn.iso_date(raw) == want


def test_pysvn_reader_falls_back_to_svnlook_where_pysvn_is_missing(tmp_path):
    repos = tsvn.create_repository(tmp_path / "project")
    c = tsvn.Client(tmp_path / "conf")
    c.commit(c.checkout(tsvn.file_url(repos), tmp_path / "wc"), "Fallback ü [#4]")
    code = ("import sys; sys.modules['pysvn'] = None\n"     # an interpreter without pysvn
            "from hookagent.vcs import svn\n"
            "assert not svn.pysvn_available() and svn.choose_reader('pysvn') == 'svnlook'\n"
            "c = svn.read_revision(sys.argv[1], 1, reader='pysvn'); print(c.commit_id, c.message)")
    proc = subprocess.run([sys.executable, "-c", code, str(repos)], capture_output=True, cwd=str(Path(__file__).parent.parent))
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode("utf-8") == "1 Fallback ü [#4]\n"


@pytest.mark.parametrize("policy", ["link", "ignore"])
def test_a_revert_committed_through_git_svn_never_moves_a_story(rig_factory, policy):
    """`git revert` then `git svn dcommit`: the revision's log is git's revert message. The
    configuration's `reverts` applies to svn commits and to log edits as to git's."""
    rig = rig_factory("file", hooks="post-commit,post-revprop-change", reverts=policy)
    tsvn.write_script(rig.repos / "hooks" / "pre-revprop-change", "#!/bin/sh\nexit 0\n")
    c = rig.client()
    wc = rig.checkout(c)
    revert = f'Revert "Risky change [finishes #7777]"\n\nThis reverts commit {"ab" * 20}.'
    c.commit(wc, revert)
    c.commit(wc, "Other work [#7778]", name="other.txt")
    sent = [r["message"] for r in rig.flush()]
    c.set_log(rig.url, 1, revert + "\n\nSee also [delivers #7779]")      # a log edit adds a story
    edit = [r["message"] for r in rig.flush()]
    stories = rig.server.stories()
    assert all(s["current_state"] == "started" for s in stories.values()), stories
    if policy == "link":
        assert sorted(sent) == sorted([f'Revert "Risky change [#7777] (finishes)"\n\nThis reverts commit {"ab" * 20}.',
                                       "Other work [#7778]"])   # two stories: in any order (lanes)
        assert edit == [f'Revert "Risky change (#7777) (finishes)"\n\nThis reverts commit {"ab" * 20}.\n\n'
                        "See also [#7779] (delivers)"]
        assert sorted(stories) == [7777, 7778, 7779]
    else:
        assert sent == ["Other work [#7778]"] and edit == []


@pytest.mark.slow
def test_revprop_edits_of_other_properties_or_many_added_ids_send_the_right_thing(rig_factory):
    rig = rig_factory("file", hooks="post-commit,post-revprop-change")
    tsvn.write_script(rig.repos / "hooks" / "pre-revprop-change", "#!/bin/sh\nexit 0\n")   # allows everything
    c = rig.client()
    wc = rig.checkout(c)
    c.commit(wc, "Base [#70]")
    assert len(rig.flush()) == 1
    c.svn("propset", "-q", "--revprop", "-r", "1", "svn:author", "mallory [#71]", rig.url)
    c.svn("propset", "-q", "--revprop", "-r", "1", "note", "[#72]", rig.url)
    assert rig.flush() == []                                         # only svn:log edits count
    many = " ".join(f"#{900000 + i}" for i in range(40))
    c.set_log(rig.url, 1, f"Base [#70] and [{many}]")
    got = rig.flush()                                                # one record per added story
    assert [r["commit_id"] for r in got] == ["1"] * 40
    assert sorted(r["message"] for r in got) == sorted(f"Base (#70) and [#{900000 + i}]" for i in range(40))
    fewer = " ".join(f"#{900000 + i}" for i in range(39))
    c.set_log(rig.url, 1, f"Base [#70] and [{fewer}]")
    c.set_log(rig.url, 1, f"Base [#70] and [{many}]")                # 39 stay, the 40th comes back
    assert rig.flush() == []
    c.set_log(rig.url, 1, f"Base [#70] and [{many} #1] [#2]")
    assert sorted(r["message"] for r in rig.flush()) == [f"Base (#70) and ({many} #1) [#2]",
                                                         f"Base (#70) and [#1] (#2)"]


# --- backfill -----------------------------------------------------------------------------------

def _backfill(site: Site, target: str, *args: str) -> list[dict]:
    proc = site.cli("backfill", target, *args, "--dry-run", "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.parametrize("how", ["path", "file-url", "svn-url"])
def test_backfill_dry_run_ranges_and_non_ascii(tmp_path, server, rigs, how):
    site = Site(tmp_path, server.url, repos=[
        {"path": str(tmp_path / "svnroot" / "*"), "url": "https://svn.example.com/{repo}/r{revision}"},
        {"path": "svn://127.0.0.1:*/*", "url": "https://svn.example.com/{repo}/r{revision}"}])
    repos = tsvn.create_repository(tmp_path / "svnroot" / "project")
    c = tsvn.Client(tmp_path / "conf")
    wc = c.checkout(tsvn.file_url(repos), tmp_path / "wc")
    for m in NON_ASCII:                               # no hook installed: history made before hookagent
        c.commit(wc, m)
    serve = None
    if how == "path":
        target = str(repos)
    elif how == "file-url":
        target = tsvn.file_url(repos)
    else:
        serve = tsvn.SvnServe(tmp_path / "svnroot").start()
        (repos / "conf" / "svnserve.conf").write_text("[general]\nanon-access = read\n")
        target = serve.url(repos)
    try:
        everything = _backfill(site, target)
        assert [r["commit_id"] for r in everything] == ["1", "2", "3", "5", "6"]
        assert [r["message"] for r in everything] == [m for m in NON_ASCII if m != NON_ASCII[3]]
        assert everything[1]["stories"] == [{"id": 102, "state": "finished"}]
        assert everything[2]["url"] == "https://svn.example.com/project/r3"
        assert [r["commit_id"] for r in _backfill(site, target, "-r", "2:4")] == ["2", "3"]
        assert [r["commit_id"] for r in _backfill(site, target, "-r", "5:2")] == ["5", "3", "2"]
        assert [r["commit_id"] for r in _backfill(site, target, "-r", "HEAD")] == ["6"]
        assert _backfill(site, target, "-r", "4:4") == []
        proc = site.cli("backfill", target, "-r", "9:12", "--dry-run")
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith("hookagent: ") and "svn log -r 9:12 " in proc.stderr
        assert "No such revision 12" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        if serve:
            serve.stop()


def test_backfill_of_an_empty_repository_finds_nothing_and_author_and_uuid_filters_apply(tmp_path, server):
    site = Site(tmp_path, server.url, svn={"commit_id": "uuid@rev"})
    repos = tsvn.create_repository(tmp_path / "project")
    assert _backfill(site, str(repos)) == []
    c = tsvn.Client(tmp_path / "conf")
    wc = c.checkout(tsvn.file_url(repos), tmp_path / "wc")
    c.commit(wc, "One [#1] ü")
    c.commit(wc, "Two [#2]")
    uuid = tsvn.uuid(repos)
    assert [r["commit_id"] for r in _backfill(site, tsvn.file_url(repos))] == [f"{uuid}@1", f"{uuid}@2"]
    assert _backfill(site, str(repos), "--author", "^nobody-at-all$") == []
    assert len(_backfill(site, str(repos), "--author", ".")) == 2


def test_backfill_after_live_hooks_sends_only_what_they_missed_link_only(rig_factory):
    rig = rig_factory("file")
    c = rig.client()
    wc = rig.checkout(c)
    c.commit(wc, "Live [fixes #31]")
    assert [r["commit_id"] for r in rig.flush()] == ["1"]
    (rig.repos / "hooks" / "post-commit").rename(rig.repos / "hooks" / "post-commit.off")
    c.commit(wc, "Missed while the hook was off [finishes #32] 日本")
    proc = rig.site.cli("backfill", str(rig.repos))
    assert proc.returncode == 0, proc.stderr
    assert "enqueued 1" in proc.stderr and "skipped 1" in proc.stderr
    got = rig.flush()
    assert [(r["commit_id"], r["message"]) for r in got] == [("2", "Missed while the hook was off [#32] (finishes) 日本")]
    assert rig.server.stories()[32]["current_state"] != "finished"


# --- the hook path stays light ------------------------------------------------------------------

def test_an_svn_commit_starts_python_only_when_its_log_may_reference_a_story(tmp_path, server):
    """svn post-commit is sh: a log without a reference leaves no record and starts no Python at
    all; one with a reference leaves exactly one record, and Python runs only as the agent."""
    log = tmp_path / "python.log"
    py = fakepython.make(tmp_path / "bin" / "python", log)
    site = Site(tmp_path, server.url, agent={"autostart": True})
    spool = site.prepared()                             # made: the first record needs no Python either
    repos = tsvn.create_repository(tmp_path / "svnroot" / "project")
    proc = site.cli("install", str(repos), "--python", str(py))
    assert proc.returncode == 0, proc.stderr
    c = tsvn.Client(tmp_path / "conf")
    wc = c.checkout(tsvn.file_url(repos), tmp_path / "wc")
    for message in ("Tidy, no story é", "Merge pull request #12 from x/y", "fixes #12, no brackets", ""):
        proc = c.commit(wc, message, quiet=False)
        assert proc.returncode == 0 and "hookagent" not in proc.stdout.decode() + proc.stderr.decode()
    assert fakepython.wait(log, 0, which=fakepython.hook_started, settle=1.0) == []
    assert spool.inbox_names() == []

    c.commit(wc, "Shields up [#41] ✨")
    rev = tsvn.youngest(repos)
    key = inbox.agent_key(str(site.config_path))
    assert spool.inbox_names() == [f"{key}.svn.{inbox.path_key(str(repos))}.{rev}"]
    (agent,) = fakepython.wait(log)
    assert agent["argv"] == [*fakepython.AGENT, "--config", str(site.config_path)]
    assert fakepython.hook_started(log) == [agent]
    # What the agent makes of it: the revision, read again, queued once.
    assert site.ingest() == 1 and spool.inbox_names() == []
    (name,) = spool.due_names()
    (entry,) = [e for n, e in spool.entries("new") if n == name]
    assert [(r["commit_id"], r["message"]) for r in entry["commits"]] == [(str(rev), "Shields up [#41] ✨")]
