"""Root installing into a repository another user owns (a `git` account on a server): a real second
user (useradd), repositories it owns, root running `hookagent install` (and installer.py), and
real pushes made as that user, whose hooks run as that user.

git refuses another user's repository ("dubious ownership") until root trusts it with
safe.directory: install says git's reason and fix. Once trusted, install checks as the owner
that its hooks can run the interpreter and read the config, the token file and the spool, and
refuses in one line naming what the owner cannot do and the fix.

Everything the second user must reach lives under a folder open to everyone (pytest's temporary
folders are closed to other users), removed at the end, as is the user.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from hookagent.devserver import DevServer
from testing import accounts
from testing.repos import git_bare, git_work_tree, have_svn, svn_repository
from testing.site import TOKEN, Site
from testing.wait import wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared():
    """A folder every user can enter, removed at the end of the run."""
    why = accounts.can_make_accounts()
    if why:
        pytest.skip(why)
    base = accounts.shared_folder("hookagent-owner-")
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def bea(shared):
    """The second user: owns the repositories, pushes to them."""
    account = accounts.create(shared)
    yield account
    accounts.remove(account)


@dataclass(frozen=True)
class Pythons:
    """Venvs with hookagent, all of which root can run."""
    open: Path              # every user can run it and import hookagent
    closed: Path            # in a folder only root can enter
    closed_packages: Path   # every user can run it, but its hookagent is in that folder
    private: Path           # that folder


@pytest.fixture(scope="session")
def pythons(shared) -> Pythons:
    base = accounts.system_python()
    if base is None:
        pytest.skip("needs a system python3 (3.10 or newer, with venv) that every user can run")
    private = shared / "private"
    private.mkdir()
    private.chmod(0o700)
    return Pythons(open=accounts.hookagent_venv(shared / "open", base, shared / "packages"),
                   closed=accounts.hookagent_venv(private, base, shared / "packages"),
                   closed_packages=accounts.hookagent_venv(shared / "open2", base, private / "packages"),
                   private=private)


@pytest.fixture
def place(shared) -> Path:
    """This test's own folder, open to everyone."""
    path = Path(tempfile.mkdtemp(dir=shared))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def who(account: accounts.Account) -> str:
    return f"{account.name} (uid {account.uid})"


def hookagent(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hookagent", *args], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def trusting(repo: Path) -> dict[str, str]:
    """Root's environment with `safe.directory` for repo (as `git config --global --add` would)."""
    return dict(os.environ, GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="safe.directory", GIT_CONFIG_VALUE_0=str(repo))


def owner_site(place: Path, owner: accounts.Account, url: str = "http://127.0.0.1:9", **overrides) -> Site:
    """A config (mode 0644) and a token file (0600) the owner can read, and a spool it can create."""
    state = place / "state"
    state.mkdir()
    owner.give(state)
    site = Site(place, url, spool_dir=str(state / "spool"), **overrides)
    owner.give(site.token_file)
    return site


def owned_repository(place: Path, owner: accounts.Account, vcs: str) -> Path:
    repo = svn_repository(place / "svnrepo") if vcs == "svn" else git_bare(place / "central.git")
    owner.give(repo)
    return repo


def no_hooks(repo: Path) -> bool:
    """Nothing installed: neither git's post-receive nor svn's post-commit."""
    return not any((repo / "hooks" / name).exists() for name in ("post-receive", "post-commit"))


@pytest.mark.parametrize("kind", ["bare", "work tree"])
def test_git_refusing_another_users_repository_passes_gits_reason_and_fix(place, bea, kind):
    repo = git_bare(place / "central.git") if kind == "bare" else git_work_tree(place / "work")
    bea.give(repo)
    proc = hookagent("install", str(repo))
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"hookagent: git refuses {repo}: detected dubious ownership in repository at '{repo}'")
    assert f"`git config --global --add safe.directory {repo}`" in line
    assert "not a git or svn repository" not in line
    hooks = repo / "hooks" if kind == "bare" else repo / ".git" / "hooks"
    assert not (hooks / "post-receive").exists() and not (hooks / "post-commit").exists()


needs_svn = pytest.mark.skipif(not have_svn(), reason="svn, svnadmin and svnlook are needed")


@pytest.mark.parametrize("vcs", ["git", pytest.param("svn", marks=needs_svn)])
def test_an_interpreter_the_owner_cannot_run_is_refused_naming_it_and_the_owner(place, bea, pythons, vcs):
    site = owner_site(place, bea)
    repo = owned_repository(place, bea, vcs)
    proc = hookagent("install", str(repo), "--python", str(pythons.closed), "--config", str(site.config_path),
                     env=trusting(repo))
    assert proc.returncode == 2, proc.stdout
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"hookagent: the interpreter {pythons.closed} is not executable by {who(bea)}:"
                           f" {pythons.private} is closed to it")
    assert "python3 -m venv" in line and "--python" in line
    assert no_hooks(repo)


def test_a_hookagent_the_owner_cannot_import_is_refused_saying_where_it_is_closed(place, bea, pythons):
    """The interpreter runs for the owner, but hookagent sits in a folder closed to it (an editable
    install from a checkout under /root)."""
    site = owner_site(place, bea)
    repo = owned_repository(place, bea, "git")
    py = pythons.closed_packages
    proc = hookagent("install", str(repo), "--python", str(py), "--config", str(site.config_path), env=trusting(repo))
    assert proc.returncode == 2, proc.stdout
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"hookagent: the interpreter {py} cannot import hookagent when {who(bea)} runs it"
                           f" (ModuleNotFoundError: No module named 'hookagent'; {pythons.private} is closed to it)")
    assert no_hooks(repo)


@pytest.mark.parametrize("what", ["config", "token", "spool"])
def test_what_the_owner_cannot_read_or_write_is_refused_with_the_fix(place, bea, pythons, what):
    good = pythons.open
    # The owner's hooks start agents, which read the token as the owner (with agent.autostart
    # off, a service delivers and the owner needs no token: test_systemd.py).
    site = owner_site(place, bea, agent={"autostart": True})
    spool = site.data["spool_dir"]
    if what == "config":            # only root may read it
        site.config_path.chmod(0o600)
    elif what == "token":           # left to root
        os.chown(site.token_file, 0, 0)
    else:                           # made by root (an earlier run as root)
        site.spool.ensure_file(os.path.join(spool, "state", "made-by-root"))
    repo = owned_repository(place, bea, "git")
    proc = hookagent("install", str(repo), "--python", str(good), "--config", str(site.config_path), env=trusting(repo))
    assert proc.returncode == 2, proc.stdout
    (line,) = proc.stderr.splitlines()
    expected = {
        "config": (f"{who(bea)} cannot read the config {site.config_path} (Permission denied)",
                   f"chmod g+r {site.config_path}"),
        "token": (f"{who(bea)} cannot read the token file {site.token_file} (Permission denied)",
                  f"chown {bea.name} {site.token_file} && chmod 600 {site.token_file}"),
        "spool": (f"{who(bea)} cannot use the spool {spool} (spool {spool} belongs to uid 0",
                  f"give it to {bea.name}: chown -R {bea.name} {spool}"),
    }[what]
    assert line.startswith(f"hookagent: {expected[0]}") and line.endswith(expected[1]), line
    assert no_hooks(repo)


def test_root_installs_for_the_owner_and_the_owners_push_is_recorded_and_delivered(place, bea, pythons):
    """installer.py run by root with an interpreter everyone can run: the check passes, and a real
    push by the owner runs the hook as the owner, which makes the spool, records the push and
    starts the agent, which delivers."""
    good = pythons.open
    with DevServer(token=TOKEN) as server:
        site = owner_site(place, bea, server.url, agent={"autostart": True})
        spool = Path(site.data["spool_dir"])
        repo = owned_repository(place, bea, "git")
        proc = subprocess.run([str(good), str(ROOT / "installer.py"), str(repo), "--config", str(site.config_path)],
                              env=trusting(repo), capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines() == [
            f"checked as {who(bea)}, the repository's owner: it can run {good}, read {site.config_path},"
            f" read {site.token_file} and use the spool {spool}",
            f"installed post-receive in {repo / 'hooks'}"]
        assert proc.stderr == ""
        clone = bea.home / "clone"
        bea.run(["git", "init", "-q", "-b", "main", clone])
        (clone / "story.txt").write_text("shields\n")
        bea.give(clone)
        bea.run(["git", "-C", clone, "add", "story.txt"])
        bea.run(["git", "-C", clone, "commit", "-q", "-m", "Shields up [#42]"])
        sha = bea.run(["git", "-C", clone, "rev-parse", "HEAD"]).stdout.strip()
        push = bea.run(["git", "-C", clone, "push", "-q", str(repo), "HEAD:main"])
        assert "hookagent" not in push.stderr, push.stderr
        assert wait_until(lambda: [r["commit_id"] for r in server.received()] == [sha]), server.received()
        assert os.stat(spool).st_uid == bea.uid and os.stat(spool / "ledger.sqlite3").st_uid == bea.uid
        assert wait_until(lambda: not site.background_flush_running())


def test_the_hook_says_which_user_cannot_run_the_interpreter_not_that_it_is_missing(place, bea, pythons):
    """Installed with --no-owner-check: the push still succeeds, and its one line says the
    interpreter is there but closed to the pushing user, and where."""
    bad, private = pythons.closed, pythons.private
    site = owner_site(place, bea)
    spool = site.data["spool_dir"]
    repo = owned_repository(place, bea, "git")
    proc = hookagent("install", str(repo), "--python", str(bad), "--config", str(site.config_path),
                     "--no-owner-check", env=trusting(repo))
    assert proc.returncode == 0 and "checked as" not in proc.stdout, proc.stderr
    clone = bea.home / "clone-closed"
    bea.run(["git", "init", "-q", "-b", "main", clone])
    bea.run(["git", "-C", clone, "commit", "-q", "--allow-empty", "-m", "Torpedoes [#43]"])
    push = bea.run(["git", "-C", clone, "push", "-q", str(repo), "HEAD:main"])
    (line,) = push.stderr.splitlines()
    assert line.startswith(f"remote: hookagent: post-receive: could not record the commit (no spool at {spool},"
                           f" and none can be made: interpreter {bad} is not executable by {who(bea)}"
                           f" ({private} is closed to it); reinstall with hookagent install {repo})"), line
    assert "missing" not in line
