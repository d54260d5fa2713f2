"""Turn git objects into Commits, by streaming git's own output.

Messages are decoded with the commit's declared ``encoding`` header (git's default is UTF-8),
falling back to UTF-8 and then cp1252 with replacement, so no byte sequence can stop a hook.
git runs through hookagent.process: ``git()`` for the small queries, ``stream_log_batches`` for
``git log`` over a whole history or a push. ``git_dirs`` finds a repository's git dirs without git.
"""
from __future__ import annotations

import codecs
import os
import time
from collections.abc import Generator, Iterable, Iterator

from hookagent import process
from hookagent.errors import VcsError
from hookagent.model import Commit


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


def is_null(sha: str) -> bool:
    """git's "no commit" id in a ref update: 40 zeros (SHA-1) or 64 (SHA-256)."""
    return not sha.strip("0")


def git(args: list[str], cwd: str, input: bytes | None = None) -> bytes:
    """Run `git -C cwd ARGS` (with `input` on its stdin) and return its stdout. Raises
    ProcessError (a VcsError) naming the command and git's error line when git fails."""
    return process.run(["git", "-C", cwd, *args], input=input).stdout


def git_dirs(path: str) -> tuple[str, str] | None:
    """(git dir, common dir) of a work tree or a git dir, read from the files git keeps, or None
    when a ``.git`` file is unreadable or not ``gitdir: PATH``.

    A work tree has a ``.git`` folder, or a ``.git`` file naming its git dir (linked worktrees,
    submodules, ``git init --separate-git-dir``; a relative PATH is relative to the work tree).
    A path without ``.git`` is taken as a git dir itself (a bare repository). A git dir with a
    ``commondir`` file (a linked worktree's) shares the config, refs and objects of the one it
    names (relative to the git dir); other git dirs are their own common dir.
    """
    dotgit = os.path.join(path, ".git")
    if os.path.isdir(dotgit):
        gitdir = dotgit
    elif os.path.isfile(dotgit):
        try:
            with open(dotgit, encoding="utf-8") as fh:
                text = fh.read(4096).strip()
        except (OSError, UnicodeDecodeError):
            return None
        if not text.startswith("gitdir: "):
            return None
        gitdir = os.path.join(path, text[8:].strip())
    else:
        gitdir = path
    common = gitdir
    try:
        with open(os.path.join(gitdir, "commondir"), encoding="utf-8") as fh:
            common = os.path.join(gitdir, fh.read().strip())
    except (OSError, UnicodeDecodeError):
        pass
    return os.path.normpath(gitdir), os.path.normpath(common)


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


def list_refs(repo: str) -> dict[str, str]:
    """Every ref of the repository and the object it names (one `git for-each-ref`)."""
    out = git(["for-each-ref", "--format=%(objectname) %(refname)"], repo)
    refs = {}
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        sha, _, ref = line.partition(" ")
        refs[ref] = sha
    return refs


LOG_FORMAT = "%H%x00%an%x00%ae%x00%aI%x00%B%x00"


def stream_new_commits(repo: str, tip: str, exclude: set[str]) -> Iterator[dict]:
    """Commits reachable from tip and from none of `exclude`, oldest first, as field dicts.

    One `git log`, fed its revisions on stdin (`--stdin`), so thousands of excluded tips never
    meet an argv limit. Messages come re-encoded to UTF-8 by git from each commit's declared
    encoding. Order: reverse of git's default walk (newest commit date first), i.e. parents
    before children unless committer clocks disagree. Not `--topo-order`: with a commit-graph
    file and a few hundred excluded tips it makes git walk far from the tips, so a one-commit
    push into a big history would walk most of it (benchmarks/bench_push.py measures both).
    """
    spec = "\n".join([tip] + [f"^{x}" for x in sorted(exclude) if x and not is_null(x)]) + "\n"
    # --ignore-missing: a processed ref whose commits were pruned since (a branch deleted and
    # gc-ed outside a push) must not make every later push fail with "bad object".
    for batch in stream_log_batches(repo, ["--ignore-missing", "--stdin", "--reverse"], spec.encode()):
        for record in batch:
            yield _fields(record)


PIPE_SIZE = 1 << 20
"""Bytes of git's output the pipe holds (Linux F_SETPIPE_SZ; its default unprivileged maximum):
about 7,000 commits, so git keeps walking while the reader spends a moment on a batch."""


def stream_log_batches(repo: str, args: list[str],
                       stdin: bytes | None = None) -> Generator[list[list[bytes]], None, None]:
    """Run `git log ARGS` with LOG_FORMAT; yield the commits' raw fields as git produces them,
    in lists (one list per read from git's pipe, up to a few thousand commits each).

    Each record is a sequence of five bytes objects: sha, author name, author email, author
    date (ISO 8601) and the full message, the text fields in UTF-8 as far as git could
    re-encode them (each commit's declared encoding; undeclared bytes pass through as they are:
    decode with ``decode(raw, None)``). A caller can drop a commit by looking at the bytes before
    paying for decoding (backfill does). Memory stays flat whatever the history's size. `stdin`
    is fed to git (revisions for `--stdin`) whatever its size.

    git runs in its own session, so a Ctrl-C meant for us does not kill it under our feet;
    closing the generator early stops it. Raises VcsError with git's error line when git fails,
    and when the output is not what LOG_FORMAT makes (an ARG such as -p, --stat or --graph that
    changes the output).
    """
    cmd = ["git", "log", "--encoding=UTF-8", "-z", f"--format={LOG_FORMAT}", *args]
    # GIT_FLUSH=0: git writes full buffers instead of flushing after every commit into a pipe,
    # which would wake us once per commit (benchmarks/bench_backfill.py shows the difference).
    # No hint: backfill adds what REVSPEC takes, the post-receive hook says it in its own line.
    chunks = process.stream(cmd, cwd=repo, input=stdin, env={**os.environ, "GIT_FLUSH": "0"},
                            new_session=True, read_size=PIPE_SIZE, hint="")
    try:
        cut = yield from _batches(chunks)
    finally:
        chunks.close()
    if cut:
        raise VcsError("git log stopped in the middle of a commit although it reported success;"
                       f" run `git log {' '.join(args)}` in {repo} to see what it prints")


def _batches(chunks: Iterable[bytes]) -> Generator[list[list[bytes]], None, bool]:
    """The records of `git log -z --format=LOG_FORMAT` output arriving in ``chunks``: one list
    of records (five bytes fields each) per chunk that completed any. Returns True when the
    output ended in the middle of a record. Raises VcsError when it is not that format (an
    option such as -p, --stat or --graph changed it)."""
    fields: list[bytes] = []   # the fields of a commit cut by a chunk boundary
    batch: list[list[bytes]] = []
    tail = b""
    for chunk in chunks:
        parts = (tail + chunk).split(b"\x00") if tail else chunk.split(b"\x00")
        tail = parts.pop()
        n = len(parts)
        i = 0
        if fields:
            i = 5 - len(fields)
            fields.extend(parts[:i])
            if len(fields) < 5:
                continue
            batch.append(fields)
            fields = []
        while i < n:
            if not parts[i].strip(b"\n"):
                i += 1          # the -z separator between commits
                continue
            if len(parts[i].strip(b"\n")) not in (40, 64):
                raise VcsError("git log printed something other than commits; options that change"
                               " its output (-p, --stat, --graph, ...) cannot be used here")
            j = i + 5
            if j > n:
                fields = parts[i:]
                break
            batch.append(parts[i:j])
            i = j
        if batch:
            yield batch
            batch = []
    return bool(fields or tail.strip(b"\n"))


def _fields(f: list[bytes]) -> dict:
    return {"sha": f[0].strip(b"\n").decode("ascii", "replace"), "author": decode(f[1], None),
            "email": decode(f[2], None), "date": f[3].decode("ascii", "replace"),
            "message": decode(f[4], None)}


def is_ancestor(repo: str, older: str, newer: str) -> bool | None:
    """True when ``older`` is an ancestor of ``newer`` (a fast-forward); None when git cannot tell."""
    try:   # prints `older` unless it is reachable from `newer`
        return not git(["rev-list", "-n1", older, "--not", newer], repo).strip()
    except VcsError:
        return None
