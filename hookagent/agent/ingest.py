"""Turning the hooks' raw records (inbox/) into queue entries: the thinking the hook left out.

For each record of this configuration, oldest first: read the commit(s) it holds (the raw
objects the hook saved; the repository itself when a record is cut short or an object does not
match its id), keep those that reference a story (``refs``), add their links, and enqueue one
entry per commit under its deterministic name. The record goes only after that, so a crash in
between queues the same entries again (a no-op: same names, and the ledger before each send).
Likewise when the spool's disk refuses an entry (full, read-only): the error goes up to the
agent, which pauses, and every record stays until its entries are written.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hookagent import inbox, links, localdisk, reverts, stories
from hookagent.config import Config
from hookagent.model import Commit
from hookagent.refsyntax import syntax_for
from hookagent.spool import Spool, commit_entry_name, make_entry

log = logging.getLogger("hookagent.agent")

AUTOSQUASH = ("fixup! ", "squash! ", "amend! ")
"""Subjects `git commit --fixup/--squash` writes: commits made to disappear into their target."""

STALE = 600.0
"""Seconds after which an incomplete record is taken as left by a hook that died half-way."""


@dataclass
class Ingested:
    records: int = 0        # records read and removed
    queued: int = 0         # entries written
    errors: list[str] = field(default_factory=list)


class Inbox:
    """The inbox records of one configuration (its agent key), as the agent reads them."""

    def __init__(self, cfg: Config, spool: Spool) -> None:
        self.cfg = cfg
        self.spool = spool
        self.key = inbox.agent_key(cfg.path)
        self.keys = inbox.agent_keys(cfg.path)
        self.dest = cfg.tracker.destination
        self.syntax = syntax_for(cfg.tracker)   # the destination's grammar of references
        self.stuck: set[str] = set()   # failed in this process: not retried in a busy loop
        self.incomplete: dict[str, int] = {}   # name -> its size when read incomplete
        self.last_due = 0.0
        self.beat: Callable[[], None] = lambda: None   # the agent's heartbeat, once per record
        self.changes = None   # changes.Changes: one comment per change (rewrites: once), the agent sets it

    def pending(self) -> int:
        """Records to read now: not stuck, and not the incomplete ones unchanged since last seen
        (a hook still writing one changes it; a hook that died leaves it for STALE seconds)."""
        count = 0
        for name in self.spool.inbox_names(self.keys):
            if name in self.stuck:
                continue
            seen = self.incomplete.get(name)
            if seen is not None:
                try:
                    st = os.stat(self.spool.path("inbox", name))
                except OSError:
                    continue
                if st.st_size == seen:   # hooks only append: a record that changed has grown
                    continue
            count += 1
        return count

    def ingest(self, *, wait: bool = True) -> Ingested:
        """Read the records there are (oldest first), queue their commits parents first, then
        remove the records. One agent of the spool at a time (configurations may share the
        `default` records): a push record must be decided once, in order, against the
        processed refs. ``wait=False``: nothing read when another agent reads them now."""
        import fcntl
        fd = self.spool.open_file(self.spool.path("locks", "inbox.lock"), os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                return Ingested()
            return self._ingest()
        finally:
            os.close(fd)

    def _ingest(self) -> Ingested:
        out = Ingested()
        found: list[Found] = []
        done: list[str] = []
        for name in self.spool.inbox_names(self.keys):
            if name in self.stuck:
                continue
            self.beat()
            try:
                data, age = self.spool.read_record(name)
            except FileNotFoundError:
                continue            # another agent of this configuration took it
            except OSError as exc:
                self._stuck(name, f"cannot read inbox record {name}: {exc.strerror}", out)
                continue
            record = inbox.parse(data)
            if record is None:
                log.error("inbox record %s is not a record; moved to corrupt/", name)
                self.spool.quarantine_record(name)
                continue
            if not record.complete and age < STALE:
                self.incomplete[name] = len(data)
                continue
            self.incomplete.pop(name, None)
            try:
                found.extend(self._commits(name, record))
            except Exception as exc:   # the repository is gone or unreadable: keep the record
                if localdisk.refusal(exc, self.spool.root):
                    raise   # the spool's disk (a push's entries): the record stays, not stuck
                self._stuck(name, f"cannot read the commit(s) of inbox record {name}: {exc}", out)
                continue
            done.append(name)
        ordered = parents_first(found)
        if self.changes is not None and ordered:
            # Before the entries (a crash in between claims again: a no-op); a commit whose
            # stories all heard of its change needs no entry.
            ordered = self.changes.claim(ordered)
        for commit in ordered:
            self.beat()
            entry = make_entry(self.dest, [commit.to_dict()])
            # Due in this order: each entry's due time (its mtime) strictly after the last one's.
            self.last_due = max(time.time(), self.last_due + 0.001)
            if self.spool.enqueue(commit_entry_name(self.dest, commit.ident), entry, due=self.last_due):
                out.queued += 1
        for name in done:
            self.spool.record_done(name)
            out.records += 1
        return out

    def _stuck(self, name: str, text: str, out: Ingested) -> None:
        log.error("%s; it stays in the inbox", text)
        self.stuck.add(name)
        out.errors.append(text)

    # ------------------------------------------------------------------ reading commits
    def _commits(self, name: str, record: inbox.Record) -> list[Found]:
        if record.headers.get("hook") == "post-receive":
            if not record.complete:
                raise ValueError("the push record was cut short (its hook died writing it); run"
                                 f" hookagent backfill {record.repo} for that push")
            # A push is decided against the processed-refs snapshot, under its lock, in the
            # order the pushes were recorded; its entries are written right away.
            from hookagent.hook.git import queue_push
            from hookagent.hook.push import repository
            repo = repository(os.path.realpath(record.repo))   # the snapshot's key, as install made it
            queue_push(self.cfg, self.spool, repo, record.updates, record.environ, record=name,
                       changes=self.changes)
            return []
        if record.vcs == "svn":
            return self._svn(record)
        if record.vcs == "git":
            return self._git(name, record)
        raise ValueError(f"unknown vcs {record.vcs!r}")

    def _git(self, name: str, record: inbox.Record) -> list[Found]:
        from hookagent.vcs import git as vgit
        repo = record.repo
        objects = list(record.objects)
        if not record.complete and not objects:
            # Cut short before its first object: the record's name holds the commit id.
            sha = name.rsplit(".", 1)[-1]
            objects = [inbox.GitObject(sha, None)]
        olds: dict[str, list[str]] = {}   # post-rewrite's mapping: new -> the olds it replaces
        for old, new in record.rewritten:
            olds.setdefault(new, []).append(old)
        out, seen = [], self._dropped_by_rebase(name, record, objects, olds)
        for obj in objects:
            if obj.sha in seen:
                continue
            seen.add(obj.sha)
            raw = obj.raw if obj.verified() else vgit.git(["cat-file", "commit", obj.sha], repo)
            fields = vgit.parse_raw_commit(obj.sha, raw)
            if len(fields["parents"]) > 1:   # a merge: its own words, not merge.log's list of commits
                fields["message"] = stories.merge_log_inert(fields["message"])
            if not self.syntax.has_refs(fields["message"]):
                continue
            if self.cfg.rewrites == "once" and fields["message"].startswith(AUTOSQUASH):
                # `commit --fixup/--squash`: made to be squashed into its target by `rebase
                # --autosquash`, whose stories hear of the change from the target. Pushed as it
                # is, the server's post-receive sends it.
                log.info("not sending %s: a %s commit, made to be squashed", obj.sha[:12],
                         fields["message"].split("!")[0])
                continue
            url = links.commit_url(self.cfg.link_rules(), repo, obj.sha, record.branch)
            commit = reverts.apply(vgit.to_commit(fields, repo, record.branch, url), self.cfg.reverts,
                                   self.syntax.neutralise)
            if commit is not None:
                commit.replaces = olds.get(obj.sha, [])
                out.append(Found(commit, fields["parents"]))
        return out

    def _dropped_by_rebase(self, name: str, record: inbox.Record, objects: list[inbox.GitObject],
                           olds: dict[str, list[str]]) -> set[str]:
        """The commits of a rebase's record that the rebase itself threw away: post-commit notes
        every commit a rebase makes, and a squash or fixup makes one per step, each replaced by
        the next (only the last is in post-rewrite's mapping). A noted commit that is not in the
        mapping and not in HEAD's history (where an `edit` stop's own commits are) is one of
        those. Nothing is dropped from a record without a mapping (an older hook's)."""
        if not olds:
            return set()
        from hookagent.changes import Git
        git = self.changes.git if self.changes is not None else Git()
        head = name.rsplit(".", 1)[-1]
        return {obj.sha for obj in objects
                if obj.sha not in olds and obj.sha != head and not git.is_ancestor(record.repo, obj.sha, head)}

    def _svn(self, record: inbox.Record) -> list[Found]:
        from hookagent.hook.svn import read_commit
        rev = int(record.headers["revision"])
        commit = read_commit(self.cfg, record.repo, rev)
        if not self.syntax.has_refs(commit.message) or reverts.apply(commit, self.cfg.reverts, self.syntax.neutralise) is None:
            return []
        return [Found(commit, [f"{commit.ident.rpartition('@')[0]}@{rev - 1}"])]


@dataclass
class Found:
    """A commit read from a record, and the idents of the commits it follows (git parents; the
    previous revision of the same svn repository)."""
    commit: Commit
    after: list[str]


def parents_first(found: list[Found]) -> list[Commit]:
    """The commits in the order they were recorded, except that a commit whose parent is among
    them comes after it: records of one second can share a timestamp, a rebase's record lists
    commits in any order, and a story's events must reach it in commit order."""
    index = {f.commit.ident: i for i, f in enumerate(found)}
    out: list[Commit] = []
    state = [0] * len(found)          # 0 new, 1 being visited, 2 emitted
    for start in range(len(found)):
        stack = [start]
        while stack:
            i = stack[-1]
            if state[i] == 2:
                stack.pop()
                continue
            state[i] = 1
            waiting = [j for j in (index.get(p) for p in found[i].after)
                       if j is not None and state[j] == 0]
            if waiting:
                stack.extend(waiting)
                continue
            state[i] = 2
            out.append(found[i].commit)
            stack.pop()
    return out
