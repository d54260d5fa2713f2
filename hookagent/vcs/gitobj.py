"""Reading a git repository's files directly, for the post-commit hook's fast path.

``git commit`` runs post-commit with the work tree root as the current directory (``GIT_DIR`` set
for linked worktrees) and the new commit still a loose object. Reading HEAD, the branch ref and
that object with the standard library costs well under a millisecond, against three ``git``
processes (and the ``subprocess`` import) otherwise. Anything unusual — reftable, a packed
object, alternate object directories, a repository format we do not know — returns None and the
caller falls back to ``git`` itself, so this is an optimisation, never a second source of truth.

Stdlib only: this module is on the hook path. It also owns the raw commit parsing shared with
``vcs.git``.
"""
from __future__ import annotations

import codecs
import os
import time
import zlib

from hookagent.model import Commit


class Head:
    """What post-commit needs: the work tree, HEAD's branch and its commit's fields."""
    __slots__ = ("toplevel", "branch", "fields")

    def __init__(self, toplevel: str, branch: str | None, fields: dict) -> None:
        self.toplevel, self.branch, self.fields = toplevel, branch, fields


def decode(raw: bytes, declared: str | None) -> str:
    """Text of a commit field: its declared encoding, else UTF-8, else cp1252 (never raises)."""
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


def iso_date(epoch: str, tz: str) -> str:
    """git's ``1700000000 +0130`` as ISO 8601 with offset, like ``git log --format=%aI``."""
    try:
        sign = -1 if tz.startswith("-") else 1
        hours, minutes = int(tz[1:3]), int(tz[3:5])
        offset = sign * (hours * 3600 + minutes * 60)
        t = time.gmtime(int(epoch) + offset)
    except (ValueError, IndexError, OverflowError, OSError):
        return ""
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            f"{'-' if sign < 0 else '+'}{hours:02d}:{minutes:02d}")


def parse_raw_commit(sha: str, raw: bytes) -> dict:
    """Fields of a raw commit object (the bytes ``git cat-file commit`` prints)."""
    head, _, body = raw.partition(b"\n\n")
    fields: dict[str, bytes] = {}
    parents: list[str] = []
    for line in head.split(b"\n"):
        if line.startswith(b" "):
            continue  # continuation of a multi-line header (gpgsig, mergetag)
        key, _, value = line.partition(b" ")
        if key == b"parent":
            parents.append(value.decode("ascii", "replace"))
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
        "date": iso_date(parts[0].decode(), parts[1].decode()) if len(parts) == 2 else "",
        "message": decode(body, enc),
        "parents": parents,
    }


def to_commit(fields: dict, repo: str, branch: str | None, url: str | None) -> Commit:
    """The Commit for parsed fields (parse_raw_commit's, or vcs.git's log records)."""
    return Commit(fields["sha"], fields["author"], fields["message"], email=fields["email"],
                  date=fields["date"], url=url, repo=repo, branch=branch, vcs="git")


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(4096).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def is_null(sha: str) -> bool:
    """git's "no commit" id in a ref update: 40 zeros (SHA-1) or 64 (SHA-256)."""
    return not sha.strip("0")


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def resolve_ref(gitdir: str, commondir: str, ref: str) -> str | None:
    """A ref's object id from its loose file or packed-refs; None when unsure."""
    for _ in range(5):   # symbolic refs may chain
        base = gitdir if not ref.startswith("refs/") else commondir
        text = _read_text(os.path.join(base, *ref.split("/")))
        if text is None and ref.startswith("refs/"):
            text = _packed_ref(commondir, ref)
        if text is None:
            return None
        if text.startswith("ref: "):
            ref = text[5:].strip()
            continue
        return text if _is_sha(text) else None
    return None


def _packed_ref(commondir: str, ref: str) -> str | None:
    try:
        with open(os.path.join(commondir, "packed-refs"), "rb") as fh:
            for line in fh:
                if line[:1] in (b"#", b"^"):
                    continue
                sha, _, name = line.rstrip(b"\n").partition(b" ")
                if name.decode("utf-8", "surrogateescape") == ref:
                    return sha.decode("ascii", "replace")
    except OSError:
        pass
    return None


def read_loose(commondir: str, sha: str) -> bytes | None:
    """The body of a loose commit object, or None (packed, missing, not a commit)."""
    try:
        with open(os.path.join(commondir, "objects", sha[:2], sha[2:]), "rb") as fh:
            data = zlib.decompress(fh.read())
    except (OSError, zlib.error):
        return None
    header, _, body = data.partition(b"\0")
    kind, _, size = header.partition(b" ")
    if kind != b"commit" or not size.isdigit() or int(size) != len(body):
        return None
    return body


def _plain_repo(gitdir: str, commondir: str) -> bool:
    """True when nothing in the repository's setup could make our direct reads wrong."""
    if os.environ.get("GIT_OBJECT_DIRECTORY") or os.environ.get("GIT_COMMON_DIR"):
        return False
    config = _read_text(os.path.join(commondir, "config")) or ""
    # reftable, sha256 and other extensions, or a format we do not know: let git read it.
    return "[extensions" not in config.lower() and "refstorage" not in config.lower()


def head(cwd: str) -> Head | None:
    """HEAD of the work tree at ``cwd`` (as a post-commit hook sees it), or None to fall back."""
    gitdir = os.environ.get("GIT_DIR") or os.path.join(cwd, ".git")
    gitdir = os.path.join(cwd, gitdir)
    if os.path.isfile(gitdir):   # a `.git` file: "gitdir: <path>"
        text = _read_text(gitdir)
        if not text or not text.startswith("gitdir: "):
            return None
        gitdir = os.path.join(cwd, text[8:].strip())
    if not os.path.isdir(gitdir):
        return None
    gitdir = os.path.abspath(gitdir)
    common = _read_text(os.path.join(gitdir, "commondir"))
    commondir = os.path.normpath(os.path.join(gitdir, common)) if common else gitdir
    if not _plain_repo(gitdir, commondir):
        return None
    text = _read_text(os.path.join(gitdir, "HEAD"))
    if text is None:
        return None
    branch = None
    if text.startswith("ref: "):
        ref = text[5:].strip()
        branch = ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else None
        sha = resolve_ref(gitdir, commondir, ref)
    else:
        sha = text if _is_sha(text) else None
    if sha is None:
        return None
    body = read_loose(commondir, sha)
    if body is None:
        return None
    return Head(os.path.abspath(cwd), branch, parse_raw_commit(sha, body))
