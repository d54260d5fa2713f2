"""Turn git objects into Commits, by streaming git's own output (no GitPython on this path).

Messages are decoded with the commit's declared ``encoding`` header (git's default is UTF-8),
falling back to UTF-8 and then cp1252 with replacement, so no byte sequence can stop a hook.
"""
from __future__ import annotations

import codecs
import os
import subprocess
from datetime import datetime, timedelta, timezone

from hookagent.errors import VcsError
from hookagent.model import Commit


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


def decode(raw: bytes, declared: str | None) -> str:
    if declared:
        try:
            codecs.lookup(declared)
            return raw.decode(declared)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def _iso(epoch: str, tz: str) -> str:
    try:
        sign = -1 if tz.startswith("-") else 1
        offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])) * sign
        return datetime.fromtimestamp(int(epoch), timezone(offset)).isoformat()
    except (ValueError, IndexError):
        return ""


def parse_raw_commit(sha: str, raw: bytes) -> dict:
    """Fields of a raw commit object (``git cat-file commit``)."""
    head, _, body = raw.partition(b"\n\n")
    fields: dict[str, bytes] = {}
    for line in head.split(b"\n"):
        if line.startswith(b" "):
            continue  # continuation of a multi-line header (gpgsig, mergetag)
        key, _, value = line.partition(b" ")
        fields.setdefault(key.decode("ascii", "replace"), value)
    enc = fields.get("encoding", b"").decode("ascii", "replace") or None
    author = fields.get("author", b"")
    name_email, _, when = author.rpartition(b">")
    name, _, email = name_email.partition(b"<")
    parts = when.split()
    return {
        "sha": sha,
        "author": decode(name.strip(), enc),
        "email": decode(email.strip(), enc),
        "date": _iso(parts[0].decode(), parts[1].decode()) if len(parts) == 2 else "",
        "message": decode(body, enc),
        "parents": [v.decode() for k, v in ((ln.partition(b" ")[0], ln.partition(b" ")[2])
                                            for ln in head.split(b"\n")) if k == b"parent"],
    }


def read_commit(repo: str, rev: str = "HEAD") -> dict:
    sha = git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], repo).decode().strip()
    return parse_raw_commit(sha, git(["cat-file", "commit", sha], repo))


def toplevel(cwd: str) -> str:
    """The repository a hook runs in: the work tree root, or the git dir of a bare repository."""
    out = git(["rev-parse", "--is-bare-repository", "--show-toplevel", "--absolute-git-dir"], cwd)
    lines = out.decode("utf-8", "surrogateescape").splitlines()
    if lines and lines[0] == "true":
        return lines[-1]
    return lines[1] if len(lines) > 2 else os.path.abspath(cwd)


def current_branch(repo: str) -> str | None:
    try:
        ref = git(["symbolic-ref", "-q", "HEAD"], repo).decode().strip()
    except VcsError:
        return None
    return ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else None


def to_commit(fields: dict, repo: str, branch: str | None, url: str | None) -> Commit:
    return Commit(fields["sha"], fields["author"], fields["message"], email=fields["email"],
                  date=fields["date"], url=url, repo=repo, branch=branch, vcs="git")
