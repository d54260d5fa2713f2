"""One comment per change: a commit that replaces an earlier one does not comment again.

A *change* is what a person made once and git may copy many times: an amend, a rebase (``-i``
with reword, squash, fixup), a cherry-pick, a rebase on the server and a force push all make new
commits of the same change. For each story, the ledger keeps which changes it was told about
and by which commit (``Ledger`` table ``changes``); a story hears of a change once.

When is a commit C the same change as an earlier commit A (which told story S)?

1. *Named*: git says so. post-rewrite's ``OLD NEW`` lines after a rebase (the sh hook keeps them
   in the record: squash and fixup name several olds for one new), and ``git cherry-pick -x``'s
   ``(cherry picked from commit A)`` line.
2. *Alike*: git keeps the author's name, email and date across amend, rebase and cherry-pick, so
   they are the change's key. Two commits with the same key are the same change when A is not
   an ancestor of C (a rewrite replaces its original; a copy sits beside it; two commits made
   in the same second by a script, one after the other, are distinct) and they carry the same
   message (ignoring cherry-pick's line and trailing blanks) or, when the message changed (an
   amend that rewords), the same patch (``git patch-id --stable``).

Then, for each story S that C references:

* S never heard of the change: C claims it (a row ``S, change, owner C, state, sent 0``).
* S heard of it from a commit that was delivered: C does not tell S again, unless C asks for a
  stronger state (a reword that adds ``finishes``): then C tells S, and the state moves.
* The earlier commit is still queued: C takes its place (the newest commit is the live one).

At send time (``live``) a commit tells only the stories it owns: the message keeps only their ids
(``stories.keep_only``); a commit that owns none is not sent at all (the ledger says
``replaced``). A commit without rows (queued before this existed, svn, ``rewrites: every``) is
sent as it is.

Not on the hook path: the agent (ingest, a push) claims; the worker asks ``live`` before each send.
"""
from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hookagent import stories
from hookagent.model import DELIVERED, FINISHED, Commit

log = logging.getLogger("hookagent.agent")

SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    dest    INTEGER NOT NULL,
    story   INTEGER NOT NULL,
    ckey    TEXT NOT NULL,      -- the author's name, email and date, digested
    first   TEXT NOT NULL,      -- the commit that started the change (tells changes of one key apart)
    owner   TEXT NOT NULL,      -- the commit that tells (or told) the story
    digest  TEXT NOT NULL,      -- the owner's message, digested
    state   TEXT,               -- the state the owner asks for (None: a link)
    sent    INTEGER NOT NULL,   -- 1 once the owner was delivered
    PRIMARY KEY (dest, story, ckey, first)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS changes_owner ON changes (dest, owner);
CREATE TABLE IF NOT EXISTS copies (   -- every commit seen of a change, the owner's too
    dest    INTEGER NOT NULL,
    story   INTEGER NOT NULL,
    ckey    TEXT NOT NULL,
    first   TEXT NOT NULL,
    ident   TEXT NOT NULL,
    digest  TEXT NOT NULL,
    PRIMARY KEY (dest, story, ckey, first, ident)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS copies_ident ON copies (dest, ident);
"""

_RANK = {None: 0, FINISHED: 1, DELIVERED: 2}
_PICKED = re.compile(r"^\(cherry picked from commit ([0-9a-f]{40}|[0-9a-f]{64})\)\s*$", re.MULTILINE)


def key(commit: Commit) -> str | None:
    """The change's key: the author's name, email and date (what git keeps across rewrites);
    None where there is no such thing (svn, a commit without a date)."""
    if commit.vcs != "git" or not commit.date:
        return None
    text = f"{commit.author}\0{commit.email}\0{commit.date}"
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def digest(message: str) -> str:
    """The message, digested the same for a commit and its cherry-picked copy."""
    text = "\n".join(line.rstrip() for line in _PICKED.sub("", message).strip().splitlines())
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def named_sources(commit: Commit) -> list[str]:
    """The commits git says this one replaces: post-rewrite's olds, cherry-pick -x's source."""
    return [*commit.replaces, *_PICKED.findall(commit.message)]


@dataclass
class Row:
    story: int
    ckey: str
    first: str
    owner: str
    digest: str
    state: str | None
    sent: bool


class Git:
    """What `alike` asks the repository: ancestry and patch ids (one git run each, only when two
    commits share a key). A commit git does not have (gc-ed, another repository's) is no
    ancestor, and its patch is unknown."""

    def __init__(self) -> None:
        self._patch: dict[tuple[str, str], str | None] = {}
        self._ancestor: dict[tuple[str, str, str], bool] = {}   # commit ids never change

    def is_ancestor(self, repo: str, older: str, newer: str) -> bool:
        key = (repo, older, newer)
        if key not in self._ancestor:
            from hookagent.vcs import git as vgit
            self._ancestor[key] = vgit.is_ancestor(repo, older, newer) is True
        return self._ancestor[key]

    def patch_id(self, repo: str, sha: str) -> str | None:
        if (repo, sha) not in self._patch:
            self._patch[(repo, sha)] = self._compute(repo, sha)
        return self._patch[(repo, sha)]

    def _compute(self, repo: str, sha: str) -> str | None:
        from hookagent import process
        try:
            diff = process.run(["git", "diff-tree", "-p", "--root", sha], cwd=repo, check=False)
            if diff.returncode != 0 or not diff.stdout.strip():
                return None
            pid = process.run(["git", "patch-id", "--stable"], cwd=repo, input=diff.stdout, check=False)
        except OSError:
            return None
        out = pid.stdout.split()
        return out[0].decode("ascii", "replace") if pid.returncode == 0 and out else None


class Changes:
    """The changes each story heard of, for one destination, in the ledger's database."""

    def __init__(self, db: sqlite3.Connection, dest_id: Callable[[bool], int | None],
                 git: Git | None = None, grammar=None) -> None:
        self.db = db
        self._dest_id = dest_id
        self.git = git or Git()
        self.grammar = grammar or stories   # the destination's (refsyntax.py): parse, keep_only

    # ------------------------------------------------------------------ queueing
    def claim(self, commits: Iterable[Commit], *, light: bool = False) -> list[Commit]:
        """Record, for each commit about to be queued (in commit order), the stories it is to
        tell (see the module docstring), and return those that tell any: the others need no
        entry (ownership only ever moves to a later commit). One transaction. ``light`` (backfill: thousands of
        commits, no git run each): alike means the same key and the same message only."""
        did = self._dest_id(True)
        commits = list(commits)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for commit in commits:
                self._claim(did, commit, light)
            telling = [c for c in commits if c.change is None or self._owns(did, c.ident)]
            if len(telling) < len(commits):   # the ledger's word for them (Ledger.mark_replaced)
                keep = {id(c) for c in telling}
                self.db.executemany("INSERT OR IGNORE INTO commits (dest, ident, state, at) VALUES (?, ?, 'replaced', ?)",
                                    ((did, c.ident, time.time()) for c in commits if id(c) not in keep))
        return telling

    def _owns(self, did: int, ident: str) -> bool:
        return self.db.execute("SELECT 1 FROM changes WHERE dest=? AND owner=? LIMIT 1", (did, ident)).fetchone() is not None

    def _claim(self, did: int, commit: Commit, light: bool = False) -> None:
        ckey = key(commit)
        if ckey is None:
            return
        refs = self.grammar.parse(commit.message)
        if not refs:
            return
        commit.change = ckey                  # live() filters it at send time
        mine = digest(commit.message)
        sources = set(named_sources(commit))
        named = self._rows_with_copies(did, sources) if sources else []
        for ref in refs:
            same = next((r for r in named if r.story == ref.id), None)
            if same is not None:
                self._merge(did, ref.id, ckey, commit.ident, same)
            else:
                same = self._alike(did, commit, ckey, mine, ref.id, light)
            if same is None:
                self.db.execute("INSERT OR IGNORE INTO changes VALUES (?,?,?,?,?,?,?,0)",
                                (did, ref.id, ckey, commit.ident, commit.ident, mine, ref.state))
                self._copy(did, ref.id, ckey, commit.ident, commit.ident, mine)
                continue
            self._copy(did, ref.id, same.ckey, same.first, commit.ident, mine)
            if same.owner == commit.ident:
                continue                      # read again (a crash before the record went)
            if same.sent and _RANK[ref.state] <= _RANK[same.state]:
                log.info("%s is the same change as %s, which story %d heard of; not telling it again",
                         commit.commit_id[:12], same.owner[:12], ref.id)
                continue
            # The live commit takes the change over: queued earlier one, or a stronger state.
            self.db.execute("UPDATE changes SET owner=?, digest=?, state=?, sent=0"
                            " WHERE dest=? AND story=? AND ckey=? AND first=?",
                            (commit.ident, mine, ref.state, did, ref.id, same.ckey, same.first))

    def _merge(self, did: int, story: int, ckey: str, ident: str, same: Row) -> None:
        """A commit git names as a copy of ``same``'s change (an amend's record comes after the
        commit's own, which claimed a change of its own): that change goes, unless it was sent."""
        if (same.ckey, same.first) == (ckey, ident):
            return
        row = self.db.execute("SELECT sent FROM changes WHERE dest=? AND story=? AND ckey=? AND first=?",
                              (did, story, ckey, ident)).fetchone()
        if row is not None and not row[0]:
            for table in ("changes", "copies"):
                self.db.execute(f"DELETE FROM {table} WHERE dest=? AND story=? AND ckey=? AND first=?",
                                (did, story, ckey, ident))

    def _copy(self, did: int, story: int, ckey: str, first: str, ident: str, mine: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO copies VALUES (?,?,?,?,?,?)", (did, story, ckey, first, ident, mine))

    _SELECT = "SELECT c.story, c.ckey, c.first, c.owner, c.digest, c.state, c.sent FROM changes c"

    def _rows_with_copies(self, did: int, idents: set[str]) -> list[Row]:
        """The changes these commits are copies of."""
        out: list[Row] = []
        for ident in idents:
            out.extend(Row(*r[:6], bool(r[6])) for r in self.db.execute(
                self._SELECT + " JOIN copies k ON k.dest=c.dest AND k.story=c.story AND k.ckey=c.ckey"
                " AND k.first=c.first WHERE c.dest=? AND k.ident=?", (did, ident)))
        return out

    def _alike(self, did: int, commit: Commit, ckey: str, mine: str, story: int,
               light: bool = False) -> Row | None:
        """The change of this key, for this story, that the commit is a copy of (see the module
        docstring), judged against every copy seen of it."""
        rows = [Row(*r[:6], bool(r[6])) for r in self.db.execute(
            self._SELECT + " WHERE c.dest=? AND c.story=? AND c.ckey=?", (did, story, ckey))]
        repo = "" if light else commit.repo
        for row in rows:
            copies = self.db.execute("SELECT ident, digest FROM copies WHERE dest=? AND story=? AND ckey=?"
                                     " AND first=?", (did, story, ckey, row.first)).fetchall()
            if any(ident == commit.ident for ident, _ in copies):
                return row
            if repo and any(self.git.is_ancestor(repo, ident, commit.ident) for ident, _ in copies):
                continue                      # made before it, one after the other: distinct
            if any(d == mine for _, d in copies):
                return row
            if repo:
                patch = self.git.patch_id(repo, commit.ident)
                if patch is not None and any(self.git.patch_id(repo, ident) == patch for ident, _ in copies):
                    return row
        return None

    # ------------------------------------------------------------------ sending
    def live(self, commit: Commit) -> Commit | None:
        """The commit as it is to be sent: unchanged when it owns every story it references, or
        was not claimed for this destination (queued before changes were kept, svn, ``rewrites:
        every``, moved here from another destination); its message
        keeping only the stories it owns; None when it owns none."""
        did = self._dest_id(False)
        if commit.change is None or did is None:
            return commit
        owned = {r[0] for r in self.db.execute("SELECT story FROM changes WHERE dest=? AND owner=?",
                                               (did, commit.ident))}
        if not owned:
            seen = self.db.execute("SELECT 1 FROM copies WHERE dest=? AND ident=? LIMIT 1",
                                   (did, commit.ident)).fetchone()
            # Claimed for another destination (entries that followed their configuration to a new
            # tracker, retarget.py): this one never heard of it.
            return None if seen else commit
        if all(r.id in owned for r in self.grammar.parse(commit.message)):
            return commit
        copy = Commit.from_dict(commit.to_dict())
        copy.message = self.grammar.keep_only(commit.message, owned)
        return copy

    def sent(self, idents: Iterable[str]) -> None:
        """The server accepted these commits: the changes they own were heard of."""
        did = self._dest_id(False)
        if did is None:
            return
        self.db.executemany("UPDATE changes SET sent=1 WHERE dest=? AND owner=?",
                            ((did, i) for i in idents))
