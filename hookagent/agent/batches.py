"""Sending one entry as several requests, and what a refused request costs: its own commits.

A push is one entry; a sink with ``batches`` + ``send_batch`` (github-push) sends it as several
requests, the others one commit per request. Each answer is filed for the commits of its request,
never for the whole entry:

* 2xx: those commits are delivered (the caller marks them in the ledger).
* 413 (body too large): the request is halved and both halves are sent, the first first, down
  to one commit; the size that went through caps the entry's later requests. A single commit
  that still gets 413 is refused alone.
* any other refusal for good (400, 422: DEAD): only that request's commits are refused; the
  entry's other requests still go.
* retry or hold: sending stops there, as before.

The agent then files an entry that was partly delivered or refused (`Partial`, `file_refused`):
each refused request's commits go to dead/ as an entry of their own, with the server's answer
and a message naming them by short id; the entry keeps only what was neither delivered nor
refused. So `hookagent status` counts every commit once: sent (ledger), dead, or still queued.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from hookagent.errors import DEAD, DeliveryError
from hookagent.model import Commit
from hookagent.spool import Claim, Spool

log = logging.getLogger("hookagent.agent")

TOO_LARGE = 413
SHORT = 12        # digits of a commit id in messages
NAMED = 10        # commits a message names; the dead entry holds them all


@dataclass
class Refused:
    """The commits of one request the server refused for good, and its answer."""
    commits: list[Commit]
    error: DeliveryError

    def message(self) -> str:
        ids = [c.commit_id[:SHORT] for c in self.commits]
        named = ", ".join(ids[:NAMED]) + (f" and {len(ids) - NAMED} more" if len(ids) > NAMED else "")
        alone = " (too large even alone)" if self.error.status == TOO_LARGE else ""
        return f"refused {len(ids)} commit(s){alone}: {named}; {self.error}"


@dataclass
class Progress:
    """What sending one entry has done so far."""
    delivered: set[str] = field(default_factory=set)     # commit ids the server accepted
    refused: list[Refused] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)         # commit ids handed out to send
    exhausted: bool = False                              # every unsent commit was handed out

    def take(self, commits: Iterable[Commit]) -> Iterator[Commit]:
        """``commits`` (the entry's unsent ones), noting each as it is handed out."""
        for commit in commits:
            self.taken.add(commit.commit_id)
            yield commit
        self.exhausted = True

    def outcome(self, entry: dict, stop: DeliveryError | None) -> DeliveryError | None:
        """What the agent files: None when all went through; ``stop`` itself when nothing was
        delivered or refused before it (the entry as it was); else a Partial."""
        if not self.refused and (stop is None or not self.delivered):
            return stop
        refused = {c.commit_id for r in self.refused for c in r.commits}
        gone = self.delivered | refused
        kept = [raw for raw in entry["commits"] if _id(raw) not in gone
                and (_id(raw) in self.taken or not self.exhausted)]
        if not kept and not self.refused:
            return stop   # all delivered, then a bug: filed as it is (stop is not None here)
        return Partial(stop, self.refused, kept)


class Partial(DeliveryError):
    """An entry some of whose requests went through or were refused. ``refused`` go to dead/ as
    entries of their own (`file_refused`); the entry keeps ``kept`` (raw commits neither
    delivered nor refused, as the entry holds them) and is filed as ``stop`` says (retry, hold,
    internal error), or, with nothing left, buried holding the last refused request's commits."""

    def __init__(self, stop: DeliveryError | None, refused: list[Refused], kept: list[dict]) -> None:
        if stop is None or not kept:   # nothing left: the entry is the last refused request
            last = refused[-1]
            stop = DeliveryError(last.message(), DEAD, status=last.error.status, body=last.error.body)
        super().__init__(str(stop), stop.kind, retry_after=stop.retry_after, status=stop.status,
                         body=stop.body)
        self.refused = refused
        self.kept = kept


def send_all(batches: Iterable[list[Commit]], send: Callable[[list[Commit]], None],
             sent: Callable[[list[Commit]], None], beat: Callable[[], None],
             progress: Progress) -> DeliveryError | None:
    """Send each batch (``send`` raises DeliveryError), by the rules above; ``sent`` files a
    delivered one. Returns the retry or hold that stopped it, or None when every request was
    answered (delivered or refused: ``progress.refused``)."""
    planned = iter(batches)
    waiting: list[list[Commit]] = []   # halves and pieces still to send, the next one last
    limit = 0                          # after a 413: the most commits a request may carry
    while True:
        batch = waiting.pop() if waiting else next(planned, None)
        if batch is None:
            return None
        if limit and len(batch) > limit:
            waiting.extend(reversed([batch[i:i + limit] for i in range(0, len(batch), limit)]))
            continue
        beat()    # each request may take up to tracker.timeout: the allowance
        try:
            send(batch)
        except DeliveryError as exc:
            if exc.kind != DEAD:
                return exc
            if exc.status == TOO_LARGE and len(batch) > 1:
                limit = (len(batch) + 1) // 2
                log.warning("%d commit(s) up to %s are too large for one request (413); sending"
                            " them %d at a time", len(batch), batch[-1].commit_id[:SHORT], limit)
                waiting.extend([batch[limit:], batch[:limit]])
                continue
            progress.refused.append(Refused(batch, exc))
            continue
        progress.delivered.update(c.commit_id for c in batch)
        sent(batch)


def file_refused(spool: Spool, claim: Claim, error: Partial) -> int:
    """Write each refused request's commits to dead/ as an entry of its own and leave in the
    claim's entry only what is left of it: ``kept``, or with nothing left the last refused
    request's commits (the caller then buries the entry itself). Returns the entries written."""
    entry = claim.entry
    own = error.refused if error.kept else error.refused[:-1]
    for refused in own:
        part = {**entry, "commits": _raws(entry, refused.commits), "last_error": refused.message(),
                "last_status": refused.error.status, "response": (refused.error.body or "")[:2048]}
        name = part_name(claim.name, refused.commits[0])
        spool.bury_part(name, part)
        log.error("dead: %s (%s)", name, part["last_error"])
    entry["commits"] = error.kept if error.kept else _raws(entry, error.refused[-1].commits)
    return len(own)


def part_name(name: str, first: Commit) -> str:
    """The dead entry of an entry's refused request: named by the entry and the request's first
    commit (the same when it is refused again after a crash)."""
    stem = name[:-len(".json")] if name.endswith(".json") else name
    short = "".join(c if c.isalnum() else "_" for c in first.commit_id[:SHORT])
    return f"{stem}-refused-{short}.json"


def _id(raw: object) -> str | None:
    return raw.get("commit_id") if isinstance(raw, dict) else None


def _raws(entry: dict, commits: list[Commit]) -> list[dict]:
    """The entry's own records of ``commits``, in the entry's order."""
    wanted = {c.commit_id for c in commits}
    return [raw for raw in entry["commits"] if _id(raw) in wanted]
