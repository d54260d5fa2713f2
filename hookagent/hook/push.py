"""Which commits a push made new (git-multimail's idea, made exact under concurrent pushes).

A commit is *new* when it is reachable from the value a push gave a watched ref and was not
reachable from any watched ref value that an earlier hook run already processed, nor from the
old values of the refs this push moved. Watched refs are the branches matching ``branches``
(globs, default all) and, when ``tags`` is on, tags.

"Already processed" is a snapshot kept in the spool (state/refs-<repo>.json) and updated under a
per-repository lock, not the live refs: when two pushes land at the same time, each hook sees
the other's ref already moved, and excluding live refs would then send a shared commit by
neither. With the snapshot, the first hook to take the lock sends it and the second excludes it.
`hookagent install` seeds the snapshot with the refs as they are (seed_snapshot). Without one
(an older install, or a spool that did not exist yet) the first push uses the live refs, as
git-multimail does; pushes landing at that very moment can then lose shared commits.
A ref the push moved always counts by its old value, never by what the snapshot holds for it:
that may be this push's own new value (listed live by a hook that ran first), and hooks of two
pushes to one ref may run out of order.

The snapshot is a small text file (``hookagent-refs 1``, the repository path in hex, then one
``SHA REFNAME`` line per ref: ref names cannot hold spaces or newlines).

Consequences: a new branch at an existing commit adds nothing; a force push adds only the
rewritten commits; a deletion adds nothing; a topic branch outside ``branches`` adds nothing
until it is merged into a watched branch, and then its commits are new exactly once.
"""
from __future__ import annotations

import os

from fnmatch import fnmatchcase as match

from hookagent.inbox import path_key
from hookagent.vcs.git import is_null


class RefUpdate:
    __slots__ = ("old", "new", "ref")

    def __init__(self, old: str, new: str, ref: str) -> None:
        self.old, self.new, self.ref = old, new, ref

    @property
    def deleted(self) -> bool:
        return is_null(self.new)

    @property
    def created(self) -> bool:
        return is_null(self.old)

    @property
    def branch(self) -> str | None:
        return self.ref[len("refs/heads/"):] if self.ref.startswith("refs/heads/") else None

    def __repr__(self) -> str:
        return f"RefUpdate({self.old[:8]}..{self.new[:8]} {self.ref})"


def parse_updates(text: str) -> list[RefUpdate]:
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.append(RefUpdate(*parts))
    return out


def watched(ref: str, branches: list[str], tags: bool) -> bool:
    if ref.startswith("refs/heads/"):
        name = ref[len("refs/heads/"):]
        return any(match(name, pat) for pat in branches or ["*"])
    return tags and ref.startswith("refs/tags/")


class Snapshot:
    """The watched ref values already processed, per repository, stored in the spool."""

    def __init__(self, spool, repo: str) -> None:
        tag = path_key(repo)   # the sh hook looks for refs-RKEY.txt
        self.spool = spool
        self.repo = repo
        self.name = f"refs-{tag}.txt"
        self.lock_path = spool.path("locks", f"repo-{tag}.lock")
        self._fd = -1

    def __enter__(self) -> "Snapshot":
        import fcntl
        self._fd = self.spool.open_file(self.lock_path, os.O_RDWR)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)   # closing releases the flock

    def load(self) -> dict[str, str] | None:
        """The refs processed so far, or None when there is no usable snapshot."""
        try:
            data = self.spool.read_file(self.spool.path("state", self.name))
        except OSError:    # missing, or refused (a symlink someone put there): save() replaces it
            return None
        lines = data.decode("utf-8", "surrogateescape").split("\n")
        if len(lines) < 3 or lines[0] != MAGIC or lines[1] != _hex(self.repo) or lines[-1] != "":
            return None     # not ours, another repository's (crc clash), or cut short
        refs = {}
        for line in lines[2:-1]:
            sha, sep, ref = line.partition(" ")
            if not sep or not ref:
                return None
            refs[ref] = sha
        return refs

    def save(self, refs: dict[str, str]) -> None:
        """Write the snapshot atomically, as the spool writes an entry."""
        lines = [MAGIC, _hex(self.repo)] + [f"{sha} {ref}" for ref, sha in sorted(refs.items())]
        data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
        self.spool._write("state", self.name, data)   # tmp, fsync, rename, fsync the folder


MAGIC = "hookagent-refs 1"


def _hex(path: str) -> str:
    return os.fsencode(path).hex()


def repository(cwd: str) -> str:
    """The repository a push hook runs in, as the snapshot's key: git runs push hooks in the git
    dir, so that is the cwd; anything else asks git."""
    if (os.path.isfile(os.path.join(cwd, "HEAD")) and os.path.isdir(os.path.join(cwd, "objects"))
            and os.path.isdir(os.path.join(cwd, "refs"))):
        return os.path.abspath(cwd)
    from hookagent.vcs import git as vgit
    return vgit.toplevel(cwd)


def seed_snapshot(config: str | None, path: str) -> str | None:
    """At install: record the watched refs of the repository at `path` as already processed.

    Without a snapshot the first hook run falls back to the live refs, and when several pushes
    land at once right after install, the first hook to run sees refs the others moved but have
    not processed yet, and excludes their commits (tests/test_push_concurrency.py). Seeding at
    install closes that window. Done only when the spool already exists and belongs to us, so an
    install run as another user (root) never creates a spool the hook could not write to.
    Returns a note for the user when it could not seed, else None.
    """
    try:
        from hookagent import config as config_mod, spool as spool_mod
        from hookagent.vcs import git as vgit
        cfg = config_mod.load(config)
        root = cfg.spool_dir
        try:
            if os.stat(root).st_uid != os.getuid():
                return None
        except OSError:
            return None
        spool = spool_mod.Spool(root, cfg.spool_group)
        gitdir = vgit.git(["rev-parse", "--absolute-git-dir"], path).decode("utf-8", "surrogateescape").strip()
        repo = repository(gitdir)          # what the hook computes: pushes run it in the git dir
        branches, tags = list(cfg.branches), cfg.tags
        with Snapshot(spool, repo) as snap:
            if snap.load() is None:
                snap.save({ref: sha for ref, sha in vgit.list_refs(repo).items() if watched(ref, branches, tags)})
    except Exception as exc:   # the hook still works: its first push then reads the live refs
        return (f"could not record the refs of {path} as processed ({exc}); the first push reads"
                " the live refs instead, fine unless several pushes land at that very moment")
    return None


def seed_at_hook(spool, repo: str, branches: list[str], tags: bool, updates_text: str) -> None:
    """At a push's hook time, when the repository has no snapshot yet (the spool did not exist at
    install): the watched refs as they were before this push, as processed. The agent decides
    the push later, when other pushes may have moved the live refs; this is what it must start
    from. A ref this push moved counts by its old value; one it created, not at all."""
    from hookagent.vcs import git as vgit
    with Snapshot(spool, repo) as snap:
        if snap.load() is not None:
            return
        seen = {ref: sha for ref, sha in vgit.list_refs(repo).items() if watched(ref, branches, tags)}
        for u in parse_updates(updates_text):
            if u.created:
                seen.pop(u.ref, None)
            elif watched(u.ref, branches, tags):
                seen[u.ref] = u.old
        snap.save(seen)
