"""A real gitolite (Debian's gitolite3) for tests: its own account (useradd), set up with `gitolite
setup -pk` and an admin key made by ssh-keygen, and pushes through gitolite-shell without sshd.

sshd would run gitolite-shell as the account, as the forced command of the admin's key, with
SSH_ORIGINAL_COMMAND set to what the client asked for (``git-receive-pack 'proj'``). Here git's
ssh command is a small script that does the same (setpriv to the account, a clean environment),
so a push goes through gitolite's access check, its update hook and the repository's hooks as on
a server. Every push runs under testing.repos.bounded (a loop in a hook fails the test).

The account's home is under the base folder given (open to everyone); gitolite makes its own
folders private (UMASK 0077). ``remove`` deletes the account and stops what it left running.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from testing import accounts
from testing.repos import bounded, git, run, write_script
from testing.wait import PATIENCE

ADMIN = "admin"
TOOLS = ("gitolite", "ssh-keygen", "setpriv")

SSH = """#!/bin/sh
# git's ssh (GIT_SSH_VARIANT=simple: HOST COMMAND): gitolite-shell as {name}, as sshd runs the
# forced command of {admin}'s key.
for command; do :; done
exec setpriv --reuid={uid} --regid={gid} --init-groups env -i HOME={home} USER={name} LOGNAME={name} \\
    PATH=/usr/bin:/bin SSH_CONNECTION="127.0.0.1 40000 127.0.0.1 22" SSH_ORIGINAL_COMMAND="$command" \\
    {shell} {admin}
"""


def missing() -> str | None:
    """Why a gitolite cannot be set up here (for pytest.skip), or None."""
    why = accounts.can_make_accounts()
    if why:
        return why
    absent = [tool for tool in TOOLS if not shutil.which(tool)]
    if absent:
        return f"needs {', '.join(absent)} (Debian: apt-get install gitolite3; scripts/setup --test does)"
    return None


@dataclass(frozen=True)
class Gitolite:
    account: accounts.Account
    ssh: Path            # git's ssh command
    admin: Path          # root's clone of gitolite-admin

    @property
    def home(self) -> Path:
        return self.account.home

    @property
    def local_code(self) -> Path:
        """LOCAL_CODE, once enable_local_code has set it."""
        return self.home / "local"

    def repository(self, name: str) -> Path:
        return self.home / "repositories" / f"{name}.git"

    def gitolite(self, *args: str) -> subprocess.CompletedProcess:
        """`gitolite ARGS` as its account, checked."""
        return self.account.run(["gitolite", *args], timeout=PATIENCE)

    def enable_local_code(self) -> None:
        """Uncomment, in ~/.gitolite.rc, LOCAL_CODE ($HOME/local) and the repo-specific-hooks feature
        (both are there, commented out), as the gitolite documentation says."""
        rc = self.home / ".gitolite.rc"
        text = rc.read_text()
        for line in ('LOCAL_CODE                =>  "$ENV{HOME}/local",', "'repo-specific-hooks',"):
            assert f"# {line}" in text, line
            text = text.replace(f"# {line}", line, 1)
        rc.write_text(text)
        (self.local_code / "hooks" / "repo-specific").mkdir(parents=True)
        (self.local_code / "hooks" / "common").mkdir()
        self.account.give(self.local_code)

    def local_hook(self, relative: str, text: str) -> Path:
        """An executable file under LOCAL_CODE, the account's."""
        path = write_script(self.local_code / relative, text)
        self.account.give(path)
        return path

    def env(self) -> dict[str, str]:
        """The environment of a client whose ssh reaches this gitolite."""
        return dict(os.environ, GIT_SSH_COMMAND=str(self.ssh), GIT_SSH_VARIANT="simple")

    def configure(self, text: str) -> None:
        """Add lines to gitolite.conf and push gitolite-admin, as its admin does (gitolite compiles
        it, creating repositories and linking their repo-specific hooks)."""
        conf = self.admin / "conf" / "gitolite.conf"
        conf.write_text(conf.read_text() + text)
        git(self.admin, "commit", "-q", "-am", "conf")
        proc = bounded(["git", "-C", str(self.admin), "push", "-q", "origin", "HEAD:master"], env=self.env())
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")

    def push(self, work: Path, repo: str, ref: str = "main") -> subprocess.CompletedProcess:
        """`git push` of work's ref to the repository through gitolite-shell, to its end (bounded)."""
        return bounded(["git", "-C", str(work), "push", "-q", f"gitolite:{repo}", ref], env=self.env())


def create(base: Path) -> Gitolite:
    """A new account with gitolite set up in its home (admin key made here), and root's clone of
    gitolite-admin. The caller removes it (remove)."""
    account = accounts.create(base, prefix="hkgl")
    try:
        key = base / f"{account.name}-admin"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", ADMIN, "-f", str(key)])
        pub = account.home / f"{ADMIN}.pub"
        shutil.copy(f"{key}.pub", pub)
        account.give(pub)
        account.run(["gitolite", "setup", "-pk", str(pub)], timeout=PATIENCE)
        bindir = account.run(["gitolite", "query-rc", "GL_BINDIR"]).stdout.strip()
        ssh = write_script(base / f"{account.name}-ssh", SSH.format(
            name=account.name, uid=account.uid, gid=account.gid, home=account.home, admin=ADMIN,
            shell=os.path.join(bindir, "gitolite-shell")))
        site = Gitolite(account, ssh, base / f"{account.name}-admin-clone")
        proc = bounded(["git", "clone", "-q", "gitolite:gitolite-admin", str(site.admin)], env=site.env())
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        return site
    except BaseException:
        accounts.remove(account)
        raise


def remove(site: Gitolite) -> None:
    accounts.remove(site.account)
