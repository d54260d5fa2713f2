"""A second, real user for tests that root runs: an account made with useradd, commands run as it,
folders it can reach, and an interpreter it can run with hookagent and its dependencies.

pytest's own temporary folders are closed to other users (/tmp/pytest-of-root is 0700), and so
may be the checkout and the test's interpreter (a pyenv build under /root): what the account must
reach goes under ``shared_folder()``, open to everyone and removed by the caller.
"""
from __future__ import annotations

import grp
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What `import hookagent` needs at run time (setup.cfg's install_requires and theirs).
PACKAGES = ("hookagent", "yaml", "requests", "urllib3", "idna", "charset_normalizer", "certifi")
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: Path
    groups: tuple[int, ...] = ()      # supplementary groups (create(groups=...)), set on every run

    def env(self, **extra: str) -> dict[str, str]:
        """A login-like environment for the account (no variable of the test's own)."""
        return {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name, "PATH": "/usr/bin:/bin",
                "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Bea Pusher", "GIT_AUTHOR_EMAIL": "bea@example.com",
                "GIT_COMMITTER_NAME": "Bea Pusher", "GIT_COMMITTER_EMAIL": "bea@example.com", **extra}

    def run(self, cmd: list[str], cwd: str | os.PathLike | None = None, *, check: bool = True,
            env: dict[str, str] | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run a command as this account (its ids and groups set before the exec), output as text.
        ``timeout`` only ends a broken test (a command that would wait forever)."""
        proc = subprocess.run([str(c) for c in cmd], cwd=cwd or self.home, env=env or self.env(), user=self.uid,
                              group=self.gid, extra_groups=list(self.groups), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"as {self.name}: {' '.join(map(str, cmd))} -> {proc.returncode}\n{proc.stdout}{proc.stderr}")
        return proc

    def give(self, *paths: str | os.PathLike) -> None:
        """chown -R the paths to this account."""
        for path in paths:
            subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(path)], check=True)


def can_make_accounts() -> str | None:
    """None when this process can make accounts, else why not (for pytest.skip)."""
    if os.geteuid() != 0:
        return "needs root to make a second user"
    if not shutil.which("useradd") or not shutil.which("userdel"):
        return "needs useradd and userdel"
    return None


def shared_folder(prefix: str = "hookagent-shared-") -> Path:
    """A new folder under the system's temporary folder that every user can enter (0755)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def create(base: Path, prefix: str = "hka", groups: tuple[str, ...] = ()) -> Account:
    """A new system account with its own group and a home under ``base``; also a member of
    ``groups`` (made with create_group)."""
    name = f"{prefix}{os.getpid() % 100000}{os.urandom(2).hex()}"
    home = base / name
    subprocess.run(["useradd", "--system", "--user-group", "--home-dir", str(home), "--create-home",
                    "--shell", "/bin/sh", *(["--groups", ",".join(groups)] if groups else []), name],
                   check=True, capture_output=True)
    entry = pwd.getpwnam(name)
    return Account(name, entry.pw_uid, entry.pw_gid, home, tuple(grp.getgrnam(g).gr_gid for g in groups))


def create_group(prefix: str = "hkg") -> str:
    """A new system group (for spool_group); its name."""
    name = f"{prefix}{os.getpid() % 100000}{os.urandom(2).hex()}"
    subprocess.run(["groupadd", "--system", name], check=True, capture_output=True)
    return name


def remove_group(name: str) -> None:
    subprocess.run(["groupdel", name], capture_output=True)


def processes_of(account: Account) -> list[int]:
    """The pids of the processes running as the account (read from /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == account.uid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def remove(account: Account) -> None:
    """Stop what the tests left running as the account (a lingering agent), then delete it."""
    for pid in processes_of(account):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    from testing.wait import wait_until
    wait_until(lambda: not processes_of(account), timeout=30)
    subprocess.run(["userdel", account.name], capture_output=True)


def system_python() -> str | None:
    """A system interpreter (3.10 or newer, with venv) every user can run, or None."""
    for python in SYSTEM_PYTHONS:
        if not os.access(python, os.X_OK):
            continue
        probe = subprocess.run([python, "-c", "import sys, venv; sys.exit(sys.version_info < (3, 10))"],
                               capture_output=True)
        if probe.returncode == 0 and all(os.stat(p).st_mode & 0o001 for p in _folders_and_file(python)):
            return python
    return None


def _folders_and_file(path: str) -> list[str]:
    out = []
    for p in {os.path.abspath(path), os.path.realpath(path)}:
        while True:
            out.append(p)
            parent = os.path.dirname(p)
            if parent == p:
                break
            p = parent
    return out


def hookagent_venv(folder: Path, base_python: str, packages: Path | None = None) -> Path:
    """A venv in ``folder`` made from ``base_python``, whose site-packages find hookagent (the
    checkout's) and its dependencies (those this test run uses) in copies under ``packages``
    (made when missing; share one between venvs). Returns its bin/python. The venv's modes are
    the folder's business: under a folder only root can enter, only root can run it."""
    packages = packages or folder / "packages"
    if not packages.exists():
        packages.mkdir(parents=True)
        for name in PACKAGES:
            spec = importlib.util.find_spec(name)
            assert spec and spec.submodule_search_locations, f"{name} is not a package here"
            source = ROOT / "hookagent" if name == "hookagent" else Path(list(spec.submodule_search_locations)[0])
            shutil.copytree(source, packages / name, ignore=shutil.ignore_patterns("__pycache__"))
        for p in [packages, *packages.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
    venv = folder / "venv"
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "hookagent-test.pth").write_text(f"{packages}\n")
    return python

