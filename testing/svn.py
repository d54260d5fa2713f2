"""Subversion for tests: repositories, an svnserve started with an empty environment, clients
with their own working copies, commits that retry when out of date, and log edits.

Everything here runs the real tools (svnadmin, svn, svnserve, svnlook). Commit messages go
through a file with ``--encoding UTF-8`` so the bytes stored are exactly the text given, whatever
the test's locale. Every helper raises AssertionError with the tool's output when it fails,
unless asked for the completed process.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from testing.repos import free_port, run, write_script  # noqa: F401  (free_port: used here and by tests)
from testing.wait import PATIENCE

PathLike = str | os.PathLike

USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw"}
"""svnserve accounts (test-only passwords; never a hookagent token)."""

ALLOW_LOG_EDITS = '#!/bin/sh\n[ "$4" = svn:log ] && exit 0\necho "only svn:log may change" >&2\nexit 1\n'
"""A pre-revprop-change hook that lets svn:log be edited (svn refuses every revprop edit without one)."""

OUT_OF_DATE = ("E155011", "E160028", "E170004", "E160024", "E155037", "out of date", "out-of-date")


def have_svnserve() -> bool:
    return all(shutil.which(t) for t in ("svn", "svnadmin", "svnlook", "svnserve"))


def client_env() -> dict[str, str]:
    """The svn client's environment: a UTF-8 locale, nothing of the user's svn setup."""
    return {"PATH": os.environ.get("PATH") or "/usr/bin:/bin", "LC_ALL": "C.UTF-8",
            "HOME": os.environ.get("HOME") or "/"}


def create_repository(path: PathLike, *, users: dict[str, str] | None = None,
                      anonymous_write: bool = False) -> Path:
    """`svnadmin create`, with svnserve.conf and a password file for ``users`` (default USERS)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    run(["svnadmin", "create", str(path)])
    users = USERS if users is None else users
    anon = "write" if anonymous_write else "none"
    (path / "conf" / "svnserve.conf").write_text(
        f"[general]\nanon-access = {anon}\nauth-access = write\npassword-db = passwd\nrealm = hookagent-tests\n")
    (path / "conf" / "passwd").write_text("[users]\n" + "".join(f"{u} = {p}\n" for u, p in users.items()))
    return path


def allow_log_edits(repos: PathLike) -> Path:
    return write_script(Path(repos) / "hooks" / "pre-revprop-change", ALLOW_LOG_EDITS)


def file_url(repos: PathLike) -> str:
    return Path(repos).resolve().as_uri()


def uuid(repos: PathLike) -> str:
    return run(["svnlook", "uuid", str(repos)]).stdout.decode().strip()


def youngest(repos: PathLike) -> int:
    return int(run(["svnlook", "youngest", str(repos)]).stdout.decode().strip())


def log_message(repos: PathLike, rev: int) -> str:
    """svn:log exactly as stored (propget prints the raw UTF-8 value)."""
    return run(["svnlook", "propget", "--revprop", "-r", str(rev), str(repos), "svn:log"],
               env=client_env()).stdout.decode("utf-8")


class SvnServe:
    """``env -i svnserve -d --foreground`` on a free loopback port, serving ``root``.

    Started through ``env -i`` *and* with an empty environment given to the process, so hooks run
    as they would under a service manager: with nothing inherited (svn then clears it again for
    hooks anyway). ``environ()`` reads the server's real environment from /proc.
    """

    def __init__(self, root: PathLike) -> None:
        self.root = Path(root).resolve()
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log = Path(tempfile.mkstemp(prefix="svnserve-", suffix=".log")[1])

    def start(self) -> "SvnServe":
        svnserve = shutil.which("svnserve")
        env_cmd = shutil.which("env") or "/usr/bin/env"
        assert svnserve, "svnserve not found"
        last = ""
        for _attempt in range(10):           # another process may take the port between probe and bind
            self.port = free_port()
            self.proc = subprocess.Popen(
                [env_cmd, "-i", svnserve, "-d", "--foreground", "--listen-host", "127.0.0.1",
                 "--listen-port", str(self.port), "-r", str(self.root), "--log-file", str(self.log)],
                env={}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + PATIENCE   # listening is the progress; the deadline only ends a hang
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    last = self.proc.stderr.read().decode(errors="replace")
                    break
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return self
                except OSError:
                    time.sleep(0.02)
            else:
                self.stop()
                raise AssertionError(f"svnserve did not listen on 127.0.0.1:{self.port}")
        raise AssertionError(f"svnserve would not start: {last}")

    def url(self, repos: PathLike) -> str:
        rel = Path(repos).resolve().relative_to(self.root)
        return f"svn://127.0.0.1:{self.port}/{rel.as_posix()}"

    def environ(self) -> dict[str, str]:
        """The running server's environment (from /proc/PID/environ)."""
        assert self.proc is not None
        raw = Path(f"/proc/{self.proc.pid}/environ").read_bytes()
        return dict(item.decode().split("=", 1) for item in raw.split(b"\0") if item)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()   # this process only, by its id
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()
        try:
            self.log.unlink()
        except OSError:
            pass

    def __enter__(self) -> "SvnServe":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Client:
    """One svn user with a private config dir (never ~/.subversion) and no cached credentials."""

    def __init__(self, config_dir: PathLike, username: str | None = None, password: str | None = None) -> None:
        self.config_dir = Path(config_dir)
        self.username = username
        self.password = password
        self.retries = 0   # out-of-date commits that were updated and tried again

    def svn(self, *args: str, cwd: PathLike | None = None, check: bool = True) -> subprocess.CompletedProcess:
        cmd = ["svn", "--non-interactive", "--no-auth-cache", "--config-dir", str(self.config_dir)]
        if self.username:
            cmd += ["--username", self.username, "--password", self.password or ""]
        return run([*cmd, *args], cwd=cwd, env=client_env(), check=check)

    def checkout(self, url: str, path: PathLike) -> Path:
        self.svn("checkout", "-q", url, str(path))
        return Path(path)

    def commit(self, wc: PathLike, message: str, name: str = "file.txt", *, content: str | None = None,
               check: bool = True, retries: int = 20, quiet: bool = True) -> subprocess.CompletedProcess:
        """Change ``name`` in the working copy and commit it; when the server says the working copy
        is out of date, revert, update (their version wins), change the file again and retry.
        ``quiet=False`` drops ``-q``, which also hides the warning svn prints for a failed post hook."""
        wc = Path(wc)
        msgfile = Path(tempfile.mkstemp(prefix="svnmsg-", dir=self.config_dir.parent)[1])
        msgfile.write_bytes(message.encode("utf-8"))
        try:
            for _attempt in range(retries + 1):
                self._change(wc, name, content)
                proc = self.svn("commit", *(["-q"] if quiet else []), "--encoding", "UTF-8", "-F", str(msgfile),
                                str(wc), check=False)
                if proc.returncode == 0 or not any(m in proc.stderr.decode(errors="replace") for m in OUT_OF_DATE):
                    break
                self.retries += 1
                # Their version wins: drop ours, update, and change the file again on top.
                self.svn("revert", "-q", "-R", str(wc))
                self.svn("update", "-q", str(wc))
        finally:
            msgfile.unlink()
        if check and proc.returncode != 0:
            raise AssertionError(f"svn commit failed: {proc.stderr.decode(errors='replace')}")
        return proc

    def _change(self, wc: Path, name: str, content: str | None) -> None:
        target = wc / name
        new = not target.exists()
        if content is None:
            with open(target, "a", encoding="utf-8") as fh:
                fh.write(os.urandom(4).hex() + "\n")
        else:
            target.write_text(content + os.urandom(4).hex() + "\n", encoding="utf-8")
        if new:
            self.svn("add", "-q", str(target))

    def set_log(self, url: str, rev: int, message: str, check: bool = True) -> subprocess.CompletedProcess:
        """`svn propset --revprop -r REV svn:log` (fires pre- and post-revprop-change)."""
        msgfile = Path(tempfile.mkstemp(prefix="svnlog-", dir=self.config_dir.parent)[1])
        msgfile.write_bytes(message.encode("utf-8"))
        try:
            return self.svn("propset", "-q", "--revprop", "-r", str(rev), "svn:log", "--encoding", "UTF-8",
                            "-F", str(msgfile), url, check=check)
        finally:
            msgfile.unlink()

