"""Which queued entries may go now: each story's entries in commit order, other stories free.

Every entry carries ``seq``, its place in commit order, fixed when it was queued (spool.make_entry:
the hook's records in the order they were written, parents before children in a push, a
backfill oldest first), and ``stories``, every ``#N`` of its messages (any grammar's ids). An
entry's *keys* are its stories (``#ID``) and, for github-push (``by_ref``), the refs its commits
went to in their repository (``ref:REPO REF``: a ref's pushes, and a branch's one-commit pushes
from post-commit, go in order). An entry may go only when no entry with a lower seq that shares a key is
pending (new/), deferred (deferred/) or in flight (cur/: ours, or another agent's); a dead
entry blocks nothing. Entries without ``seq`` (queued by an older version) take their
``created`` time; without ``stories``, the agent reads the ids in their messages.

The seq and the keys never change for an entry, so :class:`Index` reads each entry once per
process; a folder listing per pass says where each one is. :class:`Schedule` hands out the
entries that may go, lowest seq first, and frees the next entry of each of an entry's keys when
it is done.
"""
from __future__ import annotations

import heapq
import json
import os
from collections import deque
from dataclasses import dataclass

from hookagent.spool import BackfillLock, Spool, entry_for, story_ids


@dataclass(eq=False)
class Item:
    """A queued entry as the schedule sees it."""
    name: str
    seq: int
    keys: tuple[str, ...]
    where: str            # new, deferred or cur
    held: bool = False    # a backfill entry while a backfill of this destination still queues
    owner: str = ""       # in cur/: the claiming agent's id


def keys_of(entry: dict, by_ref: bool = False) -> tuple[str, ...]:
    """An entry's keys: its stories and, ``by_ref``, its refs."""
    commits = [c for c in entry.get("commits") or () if isinstance(c, dict)]
    ids = entry.get("stories")
    if not isinstance(ids, list):
        ids = story_ids(commits)
    keys = [f"#{i}" for i in ids]
    if by_ref:
        repo = next((c.get("repo") for c in commits if c.get("repo")), "")
        refs = entry.get("push")
        if not isinstance(refs, list):   # one commit (post-commit): its branch, as github_push says
            refs = [c.get("ref") or (f"refs/heads/{c['branch']}" if c.get("branch") else "HEAD")
                    for c in commits]
        keys += [f"ref:{repo} {r}" for r in refs if isinstance(r, str)]
    return tuple(dict.fromkeys(keys))


def seq_of(entry: dict) -> int:
    seq = entry.get("seq")
    if isinstance(seq, int):
        return seq
    try:
        return int(float(entry.get("created") or 0) * 1e9)
    except (TypeError, ValueError):
        return 0


class Index:
    """The entries of one destination in new/, deferred/ and cur/, each read once."""

    def __init__(self, spool: Spool, tag: str, destination: str, *, by_ref: bool = False) -> None:
        self.spool = spool
        self.tag = tag
        self.destination = destination
        self.by_ref = by_ref   # github-push: a ref's entries in order too
        self.known: dict[str, tuple[int, tuple[str, ...], bool]] = {}   # name -> seq, keys, backfill

    def scan(self) -> list[Item]:
        """Every entry of ours the queue holds now, by seq (ties by name)."""
        listing: dict[str, str] = {}
        owners: dict[str, str] = {}
        for queue in ("new", "cur", "deferred"):   # an entry claimed meanwhile moves to a later one
            with os.scandir(self.spool.path(queue)) as it:
                for e in it:
                    name, _, owner = e.name.partition("@") if queue == "cur" else (e.name, "", "")
                    if name.endswith(".json") and entry_for(name, self.tag) and not name.startswith("."):
                        listing.setdefault(name, queue)
                        if owner:
                            owners[name] = owner
        for gone in self.known.keys() - listing.keys():
            del self.known[gone]
        backfill = None
        items = []
        for name, where in listing.items():
            meta = self.known.get(name)
            if meta is None:
                meta = self._read(name, where)
                if meta is None:
                    continue       # sent and gone meanwhile
                self.known[name] = meta
            seq, keys, from_backfill = meta
            held = False
            if from_backfill and where == "new":
                if backfill is None:
                    backfill = BackfillLock.running(self.spool, self.destination)
                held = backfill
            items.append(Item(name, seq, keys, where, held, owners.get(name, "") if where == "cur" else ""))
        items.sort(key=lambda i: (i.seq, i.name))
        return items

    def _read(self, name: str, where: str) -> tuple[int, tuple[str, ...], bool] | None:
        paths = [self.spool.path(q, name) for q in (where, "new", "deferred") if q != "cur"]
        if where == "cur":
            try:
                with os.scandir(self.spool.path("cur")) as it:
                    paths[:0] = [e.path for e in it if e.name.partition("@")[0] == name]
            except OSError:
                pass
        for path in paths:
            try:
                entry = json.loads(self.spool.read_file(path))
            except FileNotFoundError:
                continue
            except (OSError, ValueError):
                entry = None   # unreadable or corrupt: claiming it says so (and moves it aside)
            if not isinstance(entry, dict):
                return (_mtime_seq(path), (), False)
            return (seq_of(entry), keys_of(entry, self.by_ref), entry.get("source") == "backfill")
        return None


def _mtime_seq(path: str) -> int:
    try:
        return os.stat(path, follow_symlinks=False).st_mtime_ns
    except OSError:
        return 0


class Schedule:
    """The entries that may go now, lowest seq first (see the module's docstring)."""

    def __init__(self, items: list[Item]) -> None:
        self.queues: dict[str, deque[Item]] = {}
        for item in items:                     # items come by seq
            for key in item.keys:
                self.queues.setdefault(key, deque()).append(item)
        self.ready: list[tuple[int, str, Item]] = []
        for item in items:
            self._offer(item)

    def _offer(self, item: Item) -> None:
        if item.where == "new" and not item.held and all(self.queues[k][0] is item for k in item.keys):
            heapq.heappush(self.ready, (item.seq, item.name, item))

    def pick(self) -> Item | None:
        """The next entry that may go (it then counts as in flight), or None."""
        return heapq.heappop(self.ready)[2] if self.ready else None

    def done(self, item: Item) -> None:
        """``item`` was sent, or is dead: the next entry of each of its keys may be free."""
        for key in item.keys:
            queue = self.queues[key]
            if queue and queue[0] is item:
                queue.popleft()
                if queue:
                    self._offer(queue[0])



def blocked_by(items: list[Item]) -> set[str]:
    """The agents (ids) whose claims keep an entry of new/ waiting, through its stories."""
    blockers: dict[str, set[str]] = {}   # key -> agents whose claims block it
    out: set[str] = set()
    for item in items:          # by seq
        behind = set().union(*(blockers.get(k, ()) for k in item.keys)) if item.keys else set()
        if item.where == "cur" and item.owner:
            behind.add(item.owner)
        elif item.where == "new":
            out |= behind
        for k in item.keys:
            blockers.setdefault(k, set()).update(behind)
    return out


def due(items: list[Item]) -> list[Item]:
    """The entries of new/ that wait for nothing but this agent: neither for a backfill still
    queueing nor, through their stories, for an entry in flight (another agent's claim, which
    only that agent can finish). One waiting behind a deferred entry counts: it goes when the
    pause ends."""
    blocked: set[str] = set()
    out = []
    for item in items:          # by seq
        if item.where == "cur" or item.held or blocked.intersection(item.keys):
            blocked.update(item.keys)
        elif item.where == "new":
            out.append(item)
    return out
