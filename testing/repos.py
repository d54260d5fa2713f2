"""Real repositories in a folder, for tests: git work trees, bare repositories, linked worktrees,
svn repositories and checkouts, and real commits and pushes that fire whatever hooks are installed.

Generic on purpose (no hookagent imports): any test can use it. Every helper raises AssertionError
with the tool's stderr when the tool fails, unless asked for the completed process.
"""
from __future__ import annotations

import os
import socket
import shutil
import subprocess
from pathlib import Path

PathLike = str | os.PathLike


def run(cmd: list[str], cwd: PathLike | None = None, *, input: bytes | str | None = None,
        env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command, capturing bytes; on check, fail with its output."""
    data = input.encode("utf-8") if isinstance(input, str) else input
    proc = subprocess.run(cmd, cwd=cwd, input=data, env=env, capture_output=True,
                          stdin=None if data is not None else subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} -> {proc.returncode}\n"
                             f"{proc.stdout.decode(errors='replace')}{proc.stderr.decode(errors='replace')}")
    return proc


def bounded(cmd: list[str], cwd: PathLike | None = None, *, input: bytes | None = None,
            env: dict[str, str] | None = None, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run a command to its end (bytes captured, not checked), in a process group of its own, for
    at most ``timeout`` seconds: a hook that runs itself forever must fail the test, not hang the
    suite. Past it, every process of the group is killed (again, until none is left: a loop forks
    while it is being killed) and AssertionError says how many there were. The timeout only ends
    a broken test; a passing one returns as soon as the command ends."""
    proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env, start_new_session=True,
                            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        killed = kill_group(proc.pid)
        out, err = proc.communicate()
        raise AssertionError(f"{' '.join(map(str, cmd))} did not end within {timeout:.0f} s; killed its process"
                             f" group ({killed} processes)\n{err.decode(errors='replace')[-2000:]}") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def kill_group(pgid: int) -> int:
    """SIGKILL every live process of a process group until none is left; how many there were."""
    import signal
    seen: set[int] = set()
    while True:
        live = [pid for pid, group, state in _processes() if group == pgid and state != "Z"]
        if not live:
            return len(seen)
        seen.update(live)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _processes() -> list[tuple[int, int, str]]:
    """(pid, process group, state) of every process, from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            out.append((int(entry), int(fields[2]), fields[0].decode()))
    return out


def git(repo: PathLike, *args: str, **kw) -> subprocess.CompletedProcess:
    return run(["git", "-C", str(repo), *args], **kw)


def git_out(repo: PathLike, *args: str) -> str:
    return git(repo, *args).stdout.decode().strip()


def git_work_tree(path: PathLike, branch: str = "main") -> Path:
    """`git init` a non-bare repository with one commit made before any hook is installed."""
    path = Path(path)
    run(["git", "init", "-q", "-b", branch, str(path)])
    (path / "README").write_text("hello\n")
    git(path, "add", "README")
    git(path, "commit", "-q", "--no-verify", "-m", "initial")
    return path


def git_bare(path: PathLike, branch: str = "main") -> Path:
    path = Path(path)
    run(["git", "init", "-q", "--bare", "-b", branch, str(path)])
    return path


def git_linked_worktree(repo: PathLike, path: PathLike, branch: str = "linked") -> Path:
    """`git worktree add -b BRANCH PATH` from repo (which needs a commit)."""
    git(repo, "worktree", "add", "-q", "-b", branch, str(path))
    return Path(path)


def git_commit(repo: PathLike, message: str = "change", name: str | None = None, *,
               env: dict[str, str] | None = None, git_cmd: str = "git",
               check: bool = True) -> subprocess.CompletedProcess:
    """Change a file and `git commit` it for real (hooks fire). Returns the completed commit."""
    repo = Path(repo)
    name = name or "file.txt"
    with open(repo / name, "a", encoding="utf-8") as fh:
        fh.write(os.urandom(4).hex() + "\n")
    run([git_cmd, "-C", str(repo), "add", name], env=env)
    return run([git_cmd, "-C", str(repo), "commit", "-q", "-F", "-"], input=message, env=env, check=check)


def git_push(repo: PathLike, remote: PathLike, *refspecs: str, check: bool = True) -> subprocess.CompletedProcess:
    return git(repo, "push", "-q", str(remote), *(refspecs or ("HEAD",)), check=check)


def rev(repo: PathLike, what: str = "HEAD") -> str:
    return git_out(repo, "rev-parse", what)


def have_svn() -> bool:
    return all(shutil.which(t) for t in ("svn", "svnadmin", "svnlook"))


def svn_repository(path: PathLike) -> Path:
    """`svnadmin create` (FSFS)."""
    path = Path(path)
    run(["svnadmin", "create", str(path)])
    return path


def svn_url(repos: PathLike) -> str:
    return Path(repos).resolve().as_uri()


def svn(*args: str, config_dir: PathLike, cwd: PathLike | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    """The svn client, non-interactive, with a private config dir (never the user's ~/.subversion)."""
    return run(["svn", "--non-interactive", "--config-dir", str(config_dir), *args], cwd=cwd, check=check)


def svn_checkout(repos: PathLike, path: PathLike, config_dir: PathLike) -> Path:
    svn("checkout", "-q", svn_url(repos), str(path), config_dir=config_dir)
    return Path(path)


def svn_commit(wc: PathLike, message: str, config_dir: PathLike, name: str = "file.txt",
               check: bool = True) -> subprocess.CompletedProcess:
    """Add or change a file in a checkout and commit it over file:// (svn runs the repository's hooks)."""
    wc = Path(wc)
    target = wc / name
    new = not target.exists()
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(os.urandom(4).hex() + "\n")
    if new:
        svn("add", "-q", str(target), config_dir=config_dir)
    return svn("commit", "-q", "-m", message, str(wc), config_dir=config_dir, check=check)


def write_script(path: PathLike, text: str, mode: int = 0o755) -> Path:
    """Write an executable script (bytes kept exactly as given)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    path.chmod(mode)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a server a test starts later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
