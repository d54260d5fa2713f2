"""hookagent in a repository a real gitolite (Debian's gitolite3) manages: set up for its own
account, pushed to through gitolite-shell (testing/gitolite.py), delivered to a real devserver.

gitolite puts its own hooks back: `gitolite setup`, and every push of gitolite-admin, link
hooks/post-receive to its multi-hook driver and delete post-receive.* in a repository that has
repo-specific hooks, so a hook written into hooks/ (and the site's hook we kept beside it) is
silently gone. install therefore puts ours among the repository's repo-specific hooks under
LOCAL_CODE, which gitolite links in itself, and refuses, with the lines to add, where the rc
does not enable them. Root installs; the hooks run as gitolite's account, with an interpreter,
a config and a spool that account can use (install checks that as the account).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hookagent import hookfiles
from hookagent.devserver import DevServer
from testing import accounts
from testing import gitolite as gitolite_mod
from testing.repos import git, git_out
from testing.site import TOKEN, Site
from testing.wait import wait_until

LOOPED = "leads back to hookagent's own hook; not running it again"


@pytest.fixture(scope="module")
def shared():
    """A folder every user can enter, with a venv every user can run hookagent with."""
    why = gitolite_mod.missing()
    if why:
        pytest.skip(why)
    base = accounts.system_python()
    if base is None:
        pytest.skip("needs a system python3 (3.10 or newer, with venv) that every user can run")
    folder = accounts.shared_folder("hookagent-gitolite-")
    accounts.hookagent_venv(folder, base)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def place(shared) -> Path:
    path = Path(tempfile.mkdtemp(dir=shared))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def gl(place):
    site = gitolite_mod.create(place)
    yield site
    gitolite_mod.remove(site)


@pytest.fixture
def server():
    with DevServer(token=TOKEN) as dev:
        yield dev


def python(shared: Path) -> Path:
    return shared / "venv" / "bin" / "python"


def config_for(place: Path, gl: gitolite_mod.Gitolite, url: str) -> Site:
    """A config and token file gitolite's account can read, a spool it makes, an agent that starts."""
    state = place / "state"
    state.mkdir()
    gl.account.give(state)
    site = Site(place, url, spool_dir=str(state / "spool"), agent={"autostart": True})
    gl.account.give(site.token_file)
    return site


def trusting(repo: Path) -> dict[str, str]:
    """Root's environment with `safe.directory` for the account's repository."""
    return {**os.environ, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": str(repo)}


def install(repo: Path, shared: Path, site: Site) -> subprocess.CompletedProcess:
    """`hookagent install` run by root."""
    return subprocess.run([sys.executable, "-m", "hookagent", "install", str(repo), "--python", str(python(shared)),
                           "--config", str(site.config_path)], env=trusting(repo), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def work_tree(place: Path, message: str) -> tuple[Path, str]:
    work = place / "work"
    git(place, "init", "-q", "-b", "main", str(work))
    git(work, "commit", "-q", "--allow-empty", "-m", message)
    return work, git_out(work, "rev-parse", "HEAD")


DEPLOY = "#!/bin/sh\n# the site's own repo-specific hook\n{{ echo deploy; cat; }} >>{log}\n"


def test_without_local_code_install_refuses_with_the_lines_to_add_to_the_rc(shared, place, gl):
    gl.configure("\nrepo proj\n    RW+     =   admin\n")
    site = config_for(place, gl, "http://127.0.0.1:9")
    repo = gl.repository("proj")
    proc = install(repo, shared, site)
    assert proc.returncode == 2, proc.stdout
    assert proc.stderr == (
        f"hookagent: gitolite manages {repo} and puts back its own hooks there at every `gitolite setup` and admin"
        " push; hookagent's hook goes in its repo-specific hooks, under LOCAL_CODE, which"
        f" {gl.home}/.gitolite.rc does not enable: add `LOCAL_CODE => \"$ENV{{HOME}}/local\",` and"
        " `'repo-specific-hooks',` there (the feature in ENABLE; the default rc has them, commented out),"
        " then install again\n")
    assert not (repo / "hooks" / "post-receive").exists()


def test_installed_among_gitolites_repo_specific_hooks_it_survives_setup_and_a_push_is_delivered(
        shared, place, gl, server):
    """The admin names hookagent's hook in gitolite.conf beside the site's deploy hook; root
    installs; `gitolite setup --hooks-only` and `gitolite setup` run (as admins do); a push
    through gitolite-shell runs the deploy hook once and is recorded and delivered."""
    gl.enable_local_code()
    deploy_log = place / "deploy.log"
    deploy_log.touch()
    deploy_log.chmod(0o666)
    gl.local_hook("hooks/repo-specific/deploy", DEPLOY.format(log=deploy_log))
    gl.configure("\nrepo proj\n    RW+     =   admin\n    option hook.post-receive = deploy\n"
                 "    option hook.post-receive.hookagent = hookagent/proj/post-receive\n")
    site = config_for(place, gl, server.url)
    repo = gl.repository("proj")
    proc = install(repo, shared, site)
    assert proc.returncode == 0, proc.stderr

    gl.gitolite("setup", "--hooks-only")
    gl.gitolite("setup")
    work, sha = work_tree(place, "Shields up [#42]")
    push = gl.push(work, "proj")
    assert push.returncode == 0 and b"hookagent" not in push.stderr, push.stderr
    assert deploy_log.read_text() == f"deploy\n{'0' * 40} {sha} refs/heads/main\n"
    assert wait_until(lambda: [r["commit_id"] for r in server.received()] == [sha]), server.received()

    ours = gl.local_code / "hooks" / "repo-specific" / "hookagent" / "proj" / "post-receive"
    assert proc.stdout.splitlines()[1:] == [
        f"installed post-receive in {ours.parent}",
        f"gitolite runs it for proj: ran `gitolite setup` as {gl.account.name}, which linked it as"
        f" {repo}/hooks/post-receive.h01-hookagent_proj_post-receive"]
    assert ours.stat().st_uid == gl.account.uid


def test_installed_before_gitolite_conf_names_it_install_says_the_line_and_the_admin_push_links_it(
        shared, place, gl):
    gl.enable_local_code()
    gl.configure("\nrepo proj\n    RW+     =   admin\n")
    site = config_for(place, gl, "http://127.0.0.1:9")
    repo = gl.repository("proj")
    proc = install(repo, shared, site)
    assert proc.returncode == 2, proc.stdout
    assert proc.stderr == (
        "hookagent: gitolite runs the hooks of proj that gitolite.conf names, and it does not name hookagent's yet:"
        " add `option hook.post-receive.hookagent = hookagent/proj/post-receive` under `repo proj` in"
        " conf/gitolite.conf of the gitolite-admin repository and push it; gitolite then links the hook into"
        f" {repo}/hooks\n")
    ours = gl.local_code / "hooks" / "repo-specific" / "hookagent" / "proj" / "post-receive"
    assert hookfiles.is_ours(str(ours))
    gl.configure("    option hook.post-receive.hookagent = hookagent/proj/post-receive\n")
    linked = repo / "hooks" / "post-receive.h00-hookagent_proj_post-receive"
    assert linked.is_symlink() and linked.resolve() == ours

    proc = subprocess.run([sys.executable, "-m", "hookagent", "uninstall", str(repo)], env=trusting(repo),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        f"removed post-receive from {ours.parent}; gitolite's driver now skips its link in {repo}/hooks: remove"
        " `option hook.post-receive.hookagent = hookagent/proj/post-receive` from gitolite.conf too (gitolite"
        " warns about it at every compile until then)\n")
    assert not ours.exists() and not ours.parent.exists()


def test_install_print_says_where_gitolite_keeps_ours_and_writes_nothing(shared, place, gl):
    gl.enable_local_code()
    gl.configure("\nrepo proj\n    RW+     =   admin\n")
    site = config_for(place, gl, "http://127.0.0.1:9")
    repo = gl.repository("proj")
    before = sorted(os.listdir(repo / "hooks"))
    proc = subprocess.run([sys.executable, "-m", "hookagent", "install", str(repo), "--print", "--python",
                           str(python(shared)), "--config", str(site.config_path)], env=trusting(repo),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    ours = gl.local_code / "hooks" / "repo-specific" / "hookagent" / "proj" / "post-receive"
    lines = proc.stderr.splitlines()
    assert f"post-receive would be written to {ours}" in lines, lines
    assert ("note: gitolite runs it once `option hook.post-receive.hookagent = hookagent/proj/post-receive` is under"
            " `repo proj` in gitolite.conf and `gitolite setup` has linked it") in lines, lines
    assert proc.stdout.startswith("#!/bin/sh\n") and hookfiles.ID_PREFIX in proc.stdout
    assert not ours.exists() and sorted(os.listdir(repo / "hooks")) == before


def test_a_common_hook_that_is_ours_and_chained_after_ours_ends_the_push_through_gitolite(
        shared, place, gl, server):
    """The old layout in a gitolite repository: a site's common post-receive (linked in by
    gitolite) was kept as post-receive.hookagent-orig; the admin then copied ours over that
    common hook to keep it across `gitolite setup`. Both names now lead to ours: our part runs
    once, one line says so, the push ends."""
    gl.enable_local_code()
    gl.local_hook("hooks/common/post-receive", "#!/bin/sh\n# the site's notifier\ncat >/dev/null\n")
    gl.configure("\nrepo proj\n    RW+     =   admin\n")
    repo = gl.repository("proj")
    hooks = repo / "hooks"
    gl.gitolite("setup", "--hooks-only")
    common = gl.local_code / "hooks" / "common" / "post-receive"
    assert (hooks / "post-receive").resolve() == common
    site = config_for(place, gl, server.url)
    (hooks / "post-receive").rename(hooks / "post-receive.hookagent-orig")
    settings = hookfiles.baked(str(site.config_path), str(python(shared)))
    common.write_text(hookfiles.render("post-receive", python=str(python(shared)), config=str(site.config_path),
                                       repo=str(repo), vcs="git", settings=settings))
    gl.gitolite("setup", "--hooks-only")
    assert (hooks / "post-receive").resolve() == (hooks / "post-receive.hookagent-orig").resolve() == common

    work, sha = work_tree(place, "Red alert [#43]")
    push = gl.push(work, "proj")
    assert push.returncode == 0, push.stderr
    lines = [line.removeprefix("remote: ").rstrip() for line in push.stderr.decode().splitlines() if "hookagent" in line]
    assert lines == [f"hookagent: post-receive: hooks/post-receive.hookagent-orig {LOOPED} (hookagent's part ran"
                     " once; remove it, see hookagent doctor)"]
    assert wait_until(lambda: [r["commit_id"] for r in server.received()] == [sha]), server.received()


def test_a_common_post_receive_that_takes_the_drivers_place_is_refused_naming_it(shared, place, gl):
    """gitolite links LOCAL_CODE/hooks/common/post-receive over its driver at every setup: no
    repo-specific post-receive runs there, ours neither; install says so instead of succeeding."""
    gl.enable_local_code()
    common = gl.local_hook("hooks/common/post-receive", "#!/bin/sh\n# the site's notifier\ncat >/dev/null\n")
    gl.configure("\nrepo proj\n    RW+     =   admin\n"
                 "    option hook.post-receive.hookagent = hookagent/proj/post-receive\n")
    site = config_for(place, gl, "http://127.0.0.1:9")
    repo = gl.repository("proj")
    proc = install(repo, shared, site)
    assert proc.returncode == 2, proc.stdout
    assert proc.stderr == (
        f"hookagent: gitolite's post-receive in {repo}/hooks is not its multi-hook driver (it is {common}), so"
        " repo-specific hooks do not run there; a LOCAL_CODE/hooks/common/post-receive takes their place: move it"
        " into repo-specific hooks too, then install again\n")
