"""The inbox: what the hooks record, raw, for the agent to read (the record format).

A hook writes one file per record into ``spool_dir/inbox/``, named ``KEY.KIND.ID`` (KEY: the
agent key of the configuration the hook was installed with, see :func:`agent_key`). A record is
a few ``name value`` header lines, a blank line, a body, and the end line::

    hookagent-inbox 1
    hook post-commit
    vcs git
    key 5f3a09c1
    repo /srv/work/tree
    head ref: refs/heads/main

    <sha> commit <size>
    <size bytes: the raw commit object, as `git cat-file --batch` prints it>
    hookagent-end

The git body is ``git cat-file --batch`` output (one or more objects; ``<sha> missing`` for one
git could not find); a push record's body is the `OLD NEW REF` lines git gave post-receive, and
its ``env.NAME`` headers keep who pushed; an svn record has no body, its ``revision`` header
names the revision (it never changes). A rebase's record (``hook post-rewrite``) also has one
``rewritten OLD NEW`` header line per commit the rebase replaced (squash: several olds, one new). The sh hook (resources/hook-tmpl) writes records; this module reads them, and
writes the same format where Python records (old hooks, tests).

A record is complete only when its objects add up and the end line closes it: a hook may still
be writing it, or may have died half-way. The agent leaves an incomplete record alone while it
is young, and after that reads what the header names from the repository itself.
"""
from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass, field

MAGIC = b"hookagent-inbox 1\n"
END = b"hookagent-end\n"
DEFAULT_KEY = "default"


def agent_key(config_path: str | None) -> str:
    """Which configuration a record (and a background agent) belongs to: a digest of the config
    file's absolute path as named (not its target: a symlink swapped by config management keeps
    the key), or ``default`` without one. Baked into the hook at install."""
    return path_key(config_path) if config_path else DEFAULT_KEY


def agent_keys(config_path: str | None) -> tuple[str, ...]:
    """The records an agent of this configuration reads: its own key's, and `default`'s where the
    configuration sits in a default place (hooks installed while no config file existed)."""
    from hookagent.paths import default_config_paths
    key = agent_key(config_path)
    if key != DEFAULT_KEY and os.path.abspath(config_path or "") in map(os.path.abspath, default_config_paths()):
        return (key, DEFAULT_KEY)
    return (key,)


def path_key(path: str) -> str:
    """A short digest of a path (absolute, as named): a configuration's agent key; a
    repository's key in svn record names and in its processed-refs snapshot's name, which the
    sh hook tests for by the key baked into it (RKEY)."""
    return f"{zlib.crc32(os.fsencode(os.path.abspath(path))):08x}"



@dataclass
class GitObject:
    sha: str
    raw: bytes | None            # None: git said it was missing when the hook asked

    def verified(self) -> bool:
        """True when ``raw`` is the commit ``sha`` names (the shell drops NUL bytes, for one)."""
        if self.raw is None:
            return False
        algo = {40: "sha1", 64: "sha256"}.get(len(self.sha))
        if algo is None:
            return False
        return hashlib.new(algo, b"commit %d\0" % len(self.raw) + self.raw).hexdigest() == self.sha


@dataclass
class Record:
    headers: dict[str, str]
    objects: list[GitObject] = field(default_factory=list)
    complete: bool = True
    updates: str = ""            # a push: its `OLD NEW REF` lines, as git gave them
    rewritten: list[tuple[str, str]] = field(default_factory=list)   # post-rewrite's OLD NEW pairs

    @property
    def environ(self) -> dict[str, str]:
        """The push's environment the hook kept (``env.NAME value`` headers: who pushed)."""
        return {k[4:]: v for k, v in self.headers.items() if k.startswith("env.")}

    @property
    def vcs(self) -> str:
        return self.headers.get("vcs", "")

    @property
    def repo(self) -> str:
        return self.headers.get("repo", "")

    @property
    def branch(self) -> str | None:
        head = self.headers.get("head", "")
        return head[len("ref: refs/heads/"):] if head.startswith("ref: refs/heads/") else None


def parse(data: bytes) -> Record | None:
    """The record in ``data``; ``complete`` False when it is cut short. None when not a record."""
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):      # empty, or cut short in its first line
            return Record({}, complete=False)
        return None
    head, sep, body = data.partition(b"\n\n")
    headers: dict[str, str] = {}
    rewritten: list[tuple[str, str]] = []
    for line in head.split(b"\n")[1:]:
        name, _, value = line.partition(b" ")
        if name == b"rewritten":      # one line per pair: `rewritten OLD NEW`
            old, _, new = value.decode("ascii", "replace").partition(" ")
            rewritten.append((old, new.split(" ")[0]))
            continue
        headers[name.decode("ascii", "replace")] = os.fsdecode(value)
    record = Record(headers, rewritten=rewritten)
    if not sep:
        record.complete = False
        return record
    if headers.get("hook") == "post-receive":
        record.complete = body.endswith(END) and (body == END or body.endswith(b"\n" + END))
        record.updates = os.fsdecode(body[:-len(END)] if record.complete else body)
        return record
    pos = 0
    while True:
        if body[pos:] == END:
            return record
        nl = body.find(b"\n", pos)
        if nl < 0:
            break
        parts = body[pos:nl].split(b" ")
        if len(parts) == 2 and parts[1] == b"missing":
            record.objects.append(GitObject(parts[0].decode("ascii", "replace"), None))
            pos = nl + 1
            continue
        if len(parts) != 3 or not parts[2].isdigit():
            break
        size = int(parts[2])
        start, stop = nl + 1, nl + 1 + size
        if body[stop:stop + 1] != b"\n":
            break
        record.objects.append(GitObject(parts[0].decode("ascii", "replace"), body[start:stop]))
        pos = stop + 1
    record.complete = False
    return record


def encode(headers: dict[str, str], objects: list[tuple[str, bytes]] = ()) -> bytes:
    """A record, byte for byte as the sh hook writes it."""
    out = [MAGIC]
    for name, value in headers.items():
        out.append(name.encode("ascii") + b" " + os.fsencode(value) + b"\n")
    out.append(b"\n")
    for sha, raw in objects:
        out.append(b"%s commit %d\n" % (sha.encode("ascii"), len(raw)) + raw + b"\n")
    out.append(END)
    return b"".join(out)
