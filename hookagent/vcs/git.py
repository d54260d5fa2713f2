"""Turn git objects into Commits, by streaming git's own output (no GitPython on this path).

Messages are decoded with the commit's declared ``encoding`` header (git's default is UTF-8),
falling back to UTF-8 and then cp1252 with replacement, so no byte sequence can stop a hook.
"""
from __future__ import annotations

import os
import subprocess

from hookagent.errors import VcsError
from hookagent.model import Commit
from hookagent.vcs.gitobj import decode, parse_raw_commit  # noqa: F401  (shared parsing)


def git(args: list[str], cwd: str, input: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, input=input, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, check=False)
    except FileNotFoundError:
        raise VcsError("git is not on PATH; install git or fix PATH for the hook") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise VcsError(f"git {' '.join(args[:2])} failed: {msg[-1] if msg else proc.returncode}")
    return proc.stdout


def read_commit(repo: str, rev: str = "HEAD") -> dict:
    sha = git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], repo).decode().strip()
    return parse_raw_commit(sha, git(["cat-file", "commit", sha], repo))


def toplevel(cwd: str) -> str:
    """The repository a hook runs in: the work tree root, or the git dir of a bare repository."""
    out = git(["rev-parse", "--is-bare-repository", "--absolute-git-dir"], cwd)
    bare, _, gitdir = out.decode("utf-8", "surrogateescape").strip().partition("\n")
    if bare.strip() == "true":
        return gitdir.strip()
    try:
        top = git(["rev-parse", "--show-toplevel"], cwd).decode("utf-8", "surrogateescape").strip()
    except VcsError:
        top = ""
    return top or gitdir.strip() or os.path.abspath(cwd)


def current_branch(repo: str) -> str | None:
    try:
        ref = git(["symbolic-ref", "-q", "HEAD"], repo).decode().strip()
    except VcsError:
        return None
    return ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else None


def to_commit(fields: dict, repo: str, branch: str | None, url: str | None) -> Commit:
    return Commit(fields["sha"], fields["author"], fields["message"], email=fields["email"],
                  date=fields["date"], url=url, repo=repo, branch=branch, vcs="git")


def list_refs(repo: str) -> dict[str, str]:
    out = git(["for-each-ref", "--format=%(objectname) %(refname)"], repo).decode("utf-8", "surrogateescape")
    refs = {}
    for line in out.splitlines():
        sha, _, ref = line.partition(" ")
        refs[ref] = sha
    return refs


LOG_FORMAT = "%H%x00%an%x00%ae%x00%aI%x00%B%x00"


def stream_new_commits(repo: str, tip: str, exclude: set[str]):
    """Commits reachable from tip and from none of `exclude`, oldest first, as field dicts.

    One `git log` process (no GitPython): messages come re-encoded to UTF-8 by git from each
    commit's declared encoding.
    """
    spec = "\n".join([tip] + [f"^{x}" for x in sorted(exclude) if x and set(x) != {"0"}]) + "\n"
    return stream_log(repo, ["--stdin", "--reverse", "--topo-order"], spec.encode())


def stream_log(repo: str, args: list[str], stdin: bytes | None = None):
    """Run `git log ARGS` with our format and yield field dicts as git produces them."""
    cmd = ["git", "log", "--encoding=UTF-8", "-z", f"--format={LOG_FORMAT}", *args]
    proc = subprocess.Popen(cmd, cwd=repo, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if stdin is not None:
        import threading
        def feed() -> None:
            try:
                proc.stdin.write(stdin)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        threading.Thread(target=feed, daemon=True).start()
    fields: list[bytes] = []
    buf = b""
    try:
        while True:
            chunk = proc.stdout.read(1 << 16)
            if not chunk:
                break
            buf += chunk
            *complete, buf = buf.split(b"\x00")
            for part in complete:
                if not fields and not part.strip(b"\n"):
                    continue  # the -z separator between commits
                fields.append(part)
                if len(fields) == 5:
                    yield _fields(fields)
                    fields = []
    finally:
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        code = proc.wait()
    if code != 0:
        msg = err.decode("utf-8", "replace").strip().splitlines()
        raise VcsError(f"git log failed: {msg[-1] if msg else code}")


def _fields(f: list[bytes]) -> dict:
    return {"sha": f[0].strip(b"\n").decode("ascii", "replace"), "author": decode(f[1], None),
            "email": decode(f[2], None), "date": f[3].decode("ascii", "replace"),
            "message": decode(f[4], None)}
