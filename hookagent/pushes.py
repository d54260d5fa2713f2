"""Which commits a push made new (git-multimail's idea, made exact under concurrent pushes).

A commit is *new* when it is reachable from the value a push gave a watched ref and was not
reachable from any watched ref value that an earlier hook run already processed, nor from the
old values of the refs this push moved. Watched refs are the branches matching ``branches``
(globs, default all) and, when ``tags`` is on, tags.

"Already processed" is a snapshot kept in the spool (state/refs-<repo>.json) and updated under a
per-repository lock, not the live refs: when two pushes land at the same time, each hook sees
the other's ref already moved, and excluding live refs would then send a shared commit by
neither. With the snapshot, the first hook to take the lock sends it and the second excludes it.
Without a snapshot (first push after install) the live refs are used, as git-multimail does.

Consequences: a new branch at an existing commit adds nothing; a force push adds only the
rewritten commits; a deletion adds nothing; a topic branch outside ``branches`` adds nothing
until it is merged into a watched branch, and then its commits are new exactly once.
"""
from __future__ import annotations

import fnmatch
import json
import os
import zlib

ZERO = "0" * 40


class RefUpdate:
    __slots__ = ("old", "new", "ref")

    def __init__(self, old: str, new: str, ref: str) -> None:
        self.old, self.new, self.ref = old, new, ref

    @property
    def deleted(self) -> bool:
        return set(self.new) == {"0"}

    @property
    def created(self) -> bool:
        return set(self.old) == {"0"}

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
        return any(fnmatch.fnmatchcase(name, pat) for pat in branches or ["*"])
    return tags and ref.startswith("refs/tags/")


class Snapshot:
    """The watched ref values already processed, per repository, stored in the spool."""

    def __init__(self, spool, repo: str) -> None:
        tag = f"{zlib.crc32(repo.encode()):08x}"
        self.spool = spool
        self.repo = repo
        self.name = f"refs-{tag}.json"
        self.lock_path = spool.path("locks", f"repo-{tag}.lock")
        self._fd = -1

    def __enter__(self) -> "Snapshot":
        import fcntl
        self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, self.spool.file_mode)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)   # closing releases the flock

    def load(self) -> dict[str, str] | None:
        try:
            with open(self.spool.path("state", self.name), encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("repo") != self.repo:
            return None
        return dict(data.get("refs") or {})

    def save(self, refs: dict[str, str]) -> None:
        self.spool._write("state", self.name, {"repo": self.repo, "refs": refs})
