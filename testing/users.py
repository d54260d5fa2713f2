"""Real second users for tests: a group, users in it, a Python they can run, commands run as them.

Creating users needs root (groupadd, useradd): :func:`create` raises ``pytest.skip`` without it.
The users get unique names (``ha<tag><role>``) and a home made by useradd; :meth:`People.remove`
takes them away again (call it from a fixture's finalizer, so it runs when a test fails too).

pytest's tmp_path is private to root, and the test's interpreter may sit in a private home (a
version manager under /root): the users get a folder of their own to work in (``base``, open to
all) and an interpreter they can run, ``python``: a venv made from a system Python of the same
version, whose site-packages holds copies of hookagent and its dependencies. Hooks installed by
these users bake that interpreter in, as they would a real one.
"""
from __future__ import annotations

import grp
import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGES = ("hookagent", "yaml", "_yaml", "requests", "urllib3", "idna", "certifi", "charset_normalizer", "chardet")
"""What a user's interpreter needs: hookagent and what it imports (the missing ones are skipped)."""


@dataclass
class User:
    name: str
    uid: int
    gid: int
    home: Path
    groups: list[int] = field(default_factory=list)


@dataclass
class People:
    group: str
    gid: int
    base: Path
    python: str
    users: dict[str, User] = field(default_factory=dict)

    def __getitem__(self, role: str) -> User:
        return self.users[role]

    def env(self, user: User, **extra: str) -> dict[str, str]:
        """A clean environment for ``user`` (the test's own names root's private folders)."""
        env = {"HOME": str(user.home), "USER": user.name, "LOGNAME": user.name, "PATH": "/usr/bin:/bin",
               "LANG": "C.UTF-8", "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_AUTHOR_NAME": user.name, "GIT_AUTHOR_EMAIL": f"{user.name}@example.com",
               "GIT_COMMITTER_NAME": user.name, "GIT_COMMITTER_EMAIL": f"{user.name}@example.com"}
        env.update(extra)
        return env

    def run(self, role: str, cmd: list[str], *, env: dict[str, str] | None = None, check: bool = False,
            **kw) -> subprocess.CompletedProcess:
        """``cmd`` as ``role``: its uid, its primary group and its supplementary groups."""
        user = self.users[role]
        kw.setdefault("capture_output", True)
        kw.setdefault("cwd", str(user.home))
        proc = subprocess.run(cmd, user=user.uid, group=user.gid, extra_groups=user.groups,
                              env=self.env(user, **(env or {})), **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd} as {user.name} -> {proc.returncode}\n{proc.stdout!r}\n{proc.stderr!r}")
        return proc

    def hookagent(self, role: str, *args: str, **kw) -> subprocess.CompletedProcess:
        """`hookagent ARGS` as ``role``, with the users' interpreter."""
        return self.run(role, [self.python, "-m", "hookagent", *args], text=True, **kw)

    def folder(self, name: str, owner: str | None = None, mode: int = 0o755) -> Path:
        """A new folder in ``base``, owned by ``owner`` (root when None)."""
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.base))
        path.chmod(mode)
        if owner:
            os.chown(path, self.users[owner].uid, self.users[owner].gid)
        return path

    def remove(self) -> None:
        for user in self.users.values():
            subprocess.run(["userdel", "--force", "--remove", user.name], capture_output=True)
        subprocess.run(["groupdel", self.group], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def create(roles: tuple[str, ...], *, in_group: tuple[str, ...] | None = None) -> People:
    """Users for ``roles`` (all in one new group unless ``in_group`` names which), their folder and
    their interpreter. Skips the test where that cannot be done."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create users (useradd)")
    for tool in ("groupadd", "useradd", "userdel", "groupdel"):
        if not shutil.which(tool):
            pytest.skip(f"needs {tool} to create users")
    tag = os.urandom(3).hex()
    group = f"ha{tag}g"
    subprocess.run(["groupadd", group], check=True, capture_output=True)
    base = Path(tempfile.mkdtemp(prefix="hookagent-users-"))
    base.chmod(0o755)
    people = People(group, grp.getgrnam(group).gr_gid, base, "")
    try:
        for role in roles:
            name = f"ha{tag}{role}"[:32]
            members = roles if in_group is None else in_group
            cmd = ["useradd", "--create-home", "--shell", "/bin/sh", name]
            if role in members:
                cmd[1:1] = ["--groups", group]
            subprocess.run(cmd, check=True, capture_output=True)
            pw = pwd.getpwnam(name)
            people.users[role] = User(name, pw.pw_uid, pw.pw_gid, Path(pw.pw_dir),
                                      [people.gid] if role in members else [])
        people.python = _python_for(people)
    except BaseException:
        people.remove()
        raise
    return people


def _python_for(people: People) -> str:
    """An interpreter every user can run, that imports hookagent (see the module's docstring)."""
    user = next(iter(people.users.values()))
    check = [sys.executable, "-c", "import hookagent, requests, yaml"]
    if _runs(people, user, check):
        return sys.executable
    want = f"{sys.version_info.major}.{sys.version_info.minor}"
    for base in (os.path.realpath(getattr(sys, "_base_executable", sys.executable)), "/usr/bin/python3",
                 "/usr/local/bin/python3"):
        same = f"import sys; assert '%d.%d' % sys.version_info[:2] == {want!r}"
        if os.path.exists(base) and _runs(people, user, [base, "-c", same]):
            break
    else:
        pytest.skip(f"needs a Python {want} that other users can run")
    venv = people.base / "python"
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", purelib], check=True, capture_output=True,
                               text=True).stdout.strip())
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        if spec.submodule_search_locations:
            shutil.copytree(list(spec.submodule_search_locations)[0], site / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(spec.origin, site / os.path.basename(spec.origin))
    python = str(venv / "bin" / "python")
    if not _runs(people, user, [python, "-I", "-c", "import hookagent, requests, yaml"]):
        pytest.skip(f"a venv from {base} cannot import hookagent's dependencies for another user")
    return python


def _runs(people: People, user: User, cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, user=user.uid, group=user.gid, env=people.env(user), cwd="/",
                              capture_output=True, timeout=120).returncode == 0
    except OSError:
        return False

