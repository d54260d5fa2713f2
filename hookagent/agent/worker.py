"""The agent: claims due entries, delivers them through a sink, and files the outcome.

``run_once(now)`` does one pass and returns what happened; ``run_forever()`` is a thin loop over it.
``now`` is injected so tests can step the loop. One bad entry never stops the loop. Each pass
first turns the hooks' inbox records of this configuration into entries (ingest.py), then sends
the entries order.py lets go: each story's entries in commit order (``seq``), an entry waiting
while an earlier one of its stories is queued, deferred or in flight.

Outcomes: 2xx -> ledger + ack; retryable -> entry deferred with attempts+1 and the
whole destination paused (one shared backoff); misconfiguration (401/403/404/redirect/TLS) -> the
queue is held, the entry goes back untouched; permanent (400/413/422) -> dead/, answer kept:
only the refused request's commits, a 413 first halved down to one commit (batches.py).

The spool's own disk refusing a write (full, over quota, read-only: localdisk.py) is none of
these: it is never the entry's fault, so the entry goes back where it was (a rename, which needs
no free block, or left claimed and put back by the next pass), the agent logs one line, pauses
as for a busy server and tries again, so the queue drains by itself once there is room. What it
could not write meanwhile it keeps in memory: the destination's state (``read_state``) and the
commits the server accepted that the ledger could not record (sent again only if this agent
ends before the ledger has them).
"""
from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from hookagent import backoff, localdisk
from hookagent.config import Config
from hookagent.errors import DEAD, HOLD, DeliveryError, SpoolError
from hookagent.ledger import Ledger
from hookagent.agent import heartbeat, order
from hookagent.agent import batches
from hookagent.agent.ingest import Inbox
from hookagent.model import Commit
from hookagent.spool import AgentLock, Claim, Spool, dest_tag

log = logging.getLogger("hookagent.agent")

DISK_MAX_PAUSE = 60.0
"""The longest wait between two tries of a disk that refused a write, whatever retry.max_backoff
says: room comes back when a person makes it, and the queue should move within a minute."""


@dataclass
class Pass:
    """What one run_once did, and why it stopped."""
    sent: int = 0            # commits the server accepted
    skipped: int = 0         # commits the ledger already knew as sent
    entries_done: int = 0
    ingested: int = 0        # inbox records turned into entries
    deferred: int = 0
    dead: int = 0
    held: str | None = None
    paused_until: float = 0.0
    stopped: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass
class DiskPause:
    """The spool's own disk refused a write: why (one line), how many tries in a row, and until
    when the agent waits before the next one."""
    problem: str | None = None
    failures: int = 0
    until: float = 0.0


class Agent:
    def __init__(self, cfg: Config, spool: Spool, ledger: Ledger, sink, *,
                 rng: random.Random | None = None) -> None:
        self.cfg = cfg
        self.spool = spool
        self._lane = threading.local()    # a lane's own ledger connection (lanes.py)
        self._beating = threading.Lock()
        self.ledger = ledger
        self.sink = sink
        self.rng = rng or random.Random()
        self.dest = cfg.tracker.destination
        if hasattr(sink, "attach"):   # a sink that keeps progress within a commit (sinks/redmine.py)
            sink.attach(ledger, self.dest)
        self.tag = dest_tag(self.dest)   # only this destination's entries are ours to send
        self.lock = AgentLock(spool)
        self.inbox = Inbox(cfg, spool)
        # One comment per change (changes.py): claimed at queue time, filtered before each send.
        self.changes = (ledger.changes(self.dest, self.inbox.syntax) if cfg.rewrites == "once"
                        else None)
        self.inbox.changes = self.changes
        # which entries may go (order.py); github-push: per ref too
        self.order = order.Index(spool, self.tag, self.dest, by_ref=cfg.tracker.api == "github-push")
        self.stopping = False
        self.unreadable: set[str] = set()
        self.followed = None   # retarget.Moved: what came along from earlier destinations (build)
        self.disk = DiskPause()
        self.unsaved: dict | None = None       # the destination's state the disk refused
        self.unrecorded: set[str] = set()      # accepted by the server, not in the ledger yet
        # Our heartbeat (heartbeat.py), in our lock file; lifetime adds the flush lock and the
        # pid file of a background agent.
        self.heartbeat = heartbeat.Heartbeat(heartbeat.allowance(cfg.tracker.timeout))
        self.heartbeat.add(self._beat_lock)
        self.inbox.beat = self.beat
        self.beat()

    @property
    def ledger(self) -> Ledger:
        """The ledger; in a lane, that lane's own connection to it."""
        return getattr(self._lane, "ledger", None) or self._ledger

    @ledger.setter
    def ledger(self, ledger: Ledger) -> None:
        self._ledger = ledger

    @property
    def changes(self):
        """changes.Changes (rewrites: once) or None; in a lane, on that lane's ledger connection."""
        lane = getattr(self._lane, "changes", None)
        return lane if lane is not None else self._changes

    @changes.setter
    def changes(self, changes) -> None:
        self._changes = changes

    def lanes(self) -> int:
        """How many requests this agent keeps in flight: agent.concurrency, for a sink that
        can send from several threads (HTTP); one otherwise."""
        return self.cfg.agent.concurrency if getattr(self.sink, "concurrent", False) else 1

    def lane_begins(self) -> None:
        """In a lane's thread, before its first entry: a connection of its own to the ledger
        (SQLite's connections are not shared between threads; WAL lets them write in turn)."""
        path = getattr(self._ledger, "path", None)
        if path and getattr(self._ledger, "writable", False):
            self._lane.ledger = Ledger(path)
            if self._changes is not None:
                self._lane.changes = self._lane.ledger.changes(self.dest, self._changes.grammar)

    def lane_ends(self) -> None:
        ledger = getattr(self._lane, "ledger", None)
        self._lane.ledger = self._lane.changes = None
        if ledger is not None:
            ledger.close()
        release = getattr(self.sink, "release_session", None)
        if release is not None:
            release()

    def beat(self) -> None:
        """Say that we make progress (cheap: it writes every heartbeat.EVERY seconds at most)."""
        with self._beating:
            self.heartbeat.beat()

    def _beat_lock(self, text: bytes) -> None:
        if self.lock.fd >= 0:
            heartbeat.rewrite(self.lock.fd, text)

    def close(self) -> None:
        self.lock.close()

    # ------------------------------------------------------------------ one pass
    def run_once(self, now: float | None = None, *, probe_held: bool = True) -> Pass:
        """Deliver what is due. A held destination is probed with one entry when probe_held."""
        now = time.time() if now is None else now
        result = Pass()
        self.beat()
        if self.disk.until > now:     # the spool's disk refused a write: wait as for a busy server
            result.paused_until = self.disk.until
            result.errors.append(self.disk.problem or "")
            return result
        try:
            self._pass(now, result, probe_held)
        except (OSError, sqlite3.Error) as exc:
            problem = localdisk.refusal(exc, self.spool.root)
            if problem is None:
                raise
            self._disk_refused(problem, now, result)
            return result
        if self.disk.problem:
            log.info("the spool %s takes writes again; the queue goes on", self.spool.root)
            self.disk = DiskPause()
        return result

    def _pass(self, now: float, result: Pass, probe_held: bool) -> None:
        result.ingested = self._ingest()
        if self.unsaved is not None:
            self._save_state(self.unsaved)   # what the disk refused last time
        self.spool.return_claims(self.lock.id)
        self.spool.recover_stale()
        self.spool.promote_due(now, self.tag)
        state = self.read_state()
        if state.get("held") and not probe_held:
            result.held = state["held"]
            return
        if state.get("paused_until", 0) > now:
            result.paused_until = state["paused_until"]
            return
        schedule = order.Schedule(self.order.scan())
        lanes = self.lanes()
        if lanes > 1:
            from hookagent.agent.lanes import Lanes
            Lanes(self, schedule, state, now, result, lanes).run()
            return
        while (item := schedule.pick()) is not None:
            if item.name in self.unreadable:
                continue
            if self.stopping:
                result.stopped = True
                break
            if self._send(item, schedule, state, now, result):
                break

    def _send(self, item: order.Item, schedule: order.Schedule, state: dict, now: float,
              result: Pass, guard: AbstractContextManager = nullcontext()) -> bool:
        """Claim, deliver and file one entry the schedule gave. True when the pass must stop
        (destination paused or held). An entry another agent took meanwhile goes on blocking
        its stories for this pass; a sent or dead one frees the next of each. ``guard``: held
        while the schedule and the destination's state change (the lanes' lock)."""
        name = item.name
        self.beat()
        try:
            claim = self.spool.claim(name, self.lock.id)
        except SpoolError as exc:   # an entry we may not read: left in place, the rest go on
            log.error("%s", exc)
            result.errors.append(str(exc))
            self.unreadable.add(name)   # not due for this process: no busy loop over it
            return False
        if claim is None:
            return False
        try:
            error = self._deliver(claim, result)
            with guard:
                if error is None:
                    result.entries_done += 1
                    schedule.done(item)
                    # (not when another lane's failure paused the destination in this pass)
                    if (state.get("failures") or state.get("held") or state.get("paused_until")) \
                            and float(state.get("paused_until") or 0) <= now:
                        state.update(failures=0, paused_until=0.0, held=None, held_since=None,
                                     last_success_at=now)
                        self._save_state(state)
                        log.info("destination %s answers again; queue resumed", self.dest)
                    return False
                stop = self._file_failure(claim, error, state, now, result)
                if error.kind == DEAD:
                    schedule.done(item)
        except BaseException:
            self._put_back(claim)    # whatever stopped us, the entry is not left claimed
            raise
        return stop

    def ingest(self, *, wait: bool = True) -> int:
        """Turn this configuration's inbox records into entries; how many records were read.
        When the spool's disk refuses the entries, the records stay and the agent pauses.
        ``wait=False``: none when another agent reads the inbox now (it may be stuck)."""
        try:
            return self._ingest(wait=wait)
        except (OSError, sqlite3.Error) as exc:
            problem = localdisk.refusal(exc, self.spool.root)
            if problem is None:
                raise
            self._disk_refused(problem, time.time(), Pass())
            return 0

    def _ingest(self, *, wait: bool = True) -> int:
        try:
            return self.inbox.ingest(wait=wait).records
        except OSError as exc:   # a spool problem: the records stay, the queue still goes
            if localdisk.refusal(exc, self.spool.root):
                raise
            log.error("cannot read the inbox: %s", exc)
            return 0

    # ------------------------------------------------------------------ the disk refusing writes
    def _disk_refused(self, problem: str, now: float, result: Pass) -> None:
        """Pause after the spool's disk refused a write: one line in the log when the reason is
        new, and a backoff as for a busy server (at most DISK_MAX_PAUSE)."""
        r = self.cfg.retry
        cap = min(r.max_backoff, DISK_MAX_PAUSE)
        delay = backoff.next_delay(self.disk.failures, min(r.min_backoff, cap), cap, rng=self.rng)
        # One line per kind of refusal (full, read-only, quota), not per file that met it: the
        # ledger and an entry on the same full disk say the same thing to whoever reads the log.
        if self.disk.problem is None or problem.partition("): ")[2] != self.disk.problem.partition("): ")[2]:
            log.error("%s", problem)
        self.disk = DiskPause(problem, self.disk.failures + 1, now + delay)
        result.paused_until = max(result.paused_until, self.disk.until)
        result.errors.append(problem)

    def _put_back(self, claim: Claim) -> None:
        """An entry whose outcome could not be filed goes back to new/ unchanged, by a rename
        (no free block needed). Where even that is refused (read-only), it stays claimed by this
        agent and the next pass puts it back (Spool.return_claims); once filed, it is gone."""
        try:
            self.spool.release(claim)
        except OSError:
            pass

    def read_state(self) -> dict:
        """The destination's state: the state file's, or the newer one the disk refused."""
        return dict(self.unsaved) if self.unsaved is not None else self.spool.read_state(self.dest)

    def _save_state(self, state: dict) -> None:
        """Write the destination's state. When the disk refuses, keep it for read_state and the
        next pass, and raise."""
        try:
            self.spool.write_state(self.dest, state)
        except OSError as exc:
            if localdisk.refusal(exc, self.spool.root) is not None:
                self.unsaved = dict(state)
            raise
        self.unsaved = None

    def paused_until(self) -> float:
        """Until when this agent waits: the destination's pause or the disk's, the later one."""
        return max(float(self.read_state().get("paused_until") or 0), self.disk.until)

    def _unsent(self, entry: dict, result: Pass):
        """The entry's commits the ledger does not know as sent, checked one by one as they are
        taken (so a commit another agent sent a moment ago is skipped)."""
        for raw in entry["commits"]:
            try:
                commit = Commit.from_dict(raw)
            except (KeyError, TypeError) as exc:
                raise DeliveryError(f"malformed commit in entry ({exc!r}); inspect it in dead/", DEAD) from None
            if commit.ident in self.unrecorded:   # accepted before, when the ledger could not say so
                self._record([commit])
                result.sent += 1
                continue
            if self.ledger.is_sent(self.dest, commit.ident):
                result.skipped += 1
                continue
            if self.changes is not None:
                live = self.changes.live(commit)
                if live is None:   # later commits of its change told its stories (changes.py)
                    self.ledger.mark_replaced(self.dest, commit.ident)
                    log.info("not sending %s: its stories heard of its change from another commit",
                             commit.commit_id[:12])
                    continue
                commit = live
            yield commit

    def _deliver(self, claim: Claim, result: Pass) -> DeliveryError | None:
        """Send what the entry holds that was not sent yet; ack it when all went through. A sink
        with ``batches`` + ``send_batch`` takes several commits per request; each commit is
        marked in the ledger once the request carrying it succeeded, so a retry sends only
        what is left. A refused request costs only its own commits (batches.py): the error
        returned is then a ``batches.Partial`` saying what to bury and what is left."""
        entry = claim.entry
        progress = batches.Progress()

        def sent(batch: list[Commit]) -> None:
            self._record(batch)
            result.sent += len(batch)
            if len(batch) == 1:
                log.info("sent %s by %s", batch[0].commit_id[:12], batch[0].author)
            else:
                log.info("sent %d commit(s) up to %s", len(batch), batch[-1].commit_id[:12])

        try:
            unsent = progress.take(self._unsent(entry, result))
            if hasattr(self.sink, "send_batch"):
                planned = self.sink.batches(entry, list(unsent))
                send = lambda batch: self.sink.send_batch(entry, batch)  # noqa: E731
            else:
                planned = ([commit] for commit in unsent)
                send = lambda batch: self.sink.send(batch[0])  # noqa: E731
            stop = batches.send_all(planned, send, sent, self.beat, progress)
        except DeliveryError as exc:
            stop = exc
        except Exception as exc:  # a bug must not stop the queue; the entry is kept in dead/
            if localdisk.refusal(exc, self.spool.root):
                raise   # our disk, not the entry: run_once pauses, the entry goes back
            log.error("internal error sending %s: %s", claim.name, traceback.format_exc())
            stop = DeliveryError(f"internal error: {exc!r}; please report it, then run"
                                 " `hookagent retry --dead`", DEAD)
        error = progress.outcome(entry, stop)
        if error is None:
            self.spool.ack(claim)
        return error

    def _record(self, commits: list[Commit]) -> None:
        """Mark commits the server accepted as sent. Until the ledger has them this agent
        remembers them, so an entry put back because the disk refused the ledger's write is
        not sent again when it comes round (only if this agent ends first)."""
        self.unrecorded.update(c.ident for c in commits)
        for commit in commits:
            self.ledger.mark_sent(self.dest, commit.ident)
            self.unrecorded.discard(commit.ident)
        if self.changes is not None:
            self.changes.sent(c.ident for c in commits)

    def _file_failure(self, claim: Claim, error: DeliveryError, state: dict, now: float,
                      result: Pass) -> bool:
        """File a failed entry. True when the pass must stop (destination paused or held). A
        write the disk refuses raises; the caller puts the entry back."""
        entry = claim.entry
        if isinstance(error, batches.Partial):   # its refused requests first, each on its own
            result.dead += batches.file_refused(self.spool, claim, error)
        text = str(error)
        state.update(last_error=text, last_error_at=now)
        result.errors.append(text)
        if error.kind == HOLD:
            if isinstance(error, batches.Partial):
                self.spool.put_back(claim)   # what is left of it
            else:
                self.spool.release(claim)
            state.update(held=text, held_since=state.get("held_since") or now)
            self._save_state(state)
            result.held = text
            log.error("queue held: %s", text)
            return True
        entry["last_error"] = text
        entry["last_status"] = error.status
        if error.kind == DEAD:
            entry["response"] = (error.body or "")[:2048]
            self.spool.bury(claim)
            result.dead += 1
            log.error("dead: %s (%s)", claim.name, text)
            self._save_state(state)
            return False
        # RETRY: back off the whole destination, and this entry with it. The pause holds even
        # when the disk refuses the entry or the state (kept in memory until written).
        failures = int(state.get("failures") or 0)
        r = self.cfg.retry
        already = float(state.get("paused_until") or 0) - now
        if already > 0:   # another lane of this pass paused the destination: the same pause
            delay, failures = already, max(failures - 1, 0)
        else:
            delay = backoff.next_delay(failures, r.min_backoff, r.max_backoff, error.retry_after, self.rng)
        entry["attempts"] = int(entry.get("attempts") or 0) + 1
        entry["due"] = now + delay
        state.update(failures=failures + 1, paused_until=now + delay, held=None)
        result.paused_until = now + delay
        self.unsaved = dict(state)
        if now - float(entry.get("created") or now) > r.max_age:
            cause = text.split("; hookagent will retry")[0]
            entry["last_error"] = (f"gave up after {entry['attempts']} attempts, older than retry.max_age:"
                                   f" {cause}; fix that, then run `hookagent retry --dead`")
            self.spool.bury(claim)
            result.dead += 1
            log.error("dead after max_age: %s (%s)", claim.name, text)
        else:
            self.spool.defer(claim, now + delay)
            result.deferred += 1
            log.warning("deferred %s for %.1fs (attempt %d): %s", claim.name, delay, entry["attempts"], text)
        self._save_state(state)
        return True

    # ------------------------------------------------------------------ the loop
    def run_forever(self, poll: float = 1.0, sleep=time.sleep, clock=time.time,
                    after_pass: Callable[[Pass], None] | None = None) -> None:
        """Deliver until ``stopping`` is set (by a signal handler). Re-probes a held queue
        every retry.max_backoff seconds. ``after_pass`` sees each pass's result (`hookagent
        run` tells systemd the queue's state)."""
        last_probe = 0.0
        while not self.stopping:
            now = clock()
            probe = now - last_probe >= self.cfg.retry.max_backoff
            if probe:
                last_probe = now
            try:
                result = self.run_once(now, probe_held=probe)
            except OSError as exc:
                log.error("spool error: %s; retrying in %.0fs", exc, max(poll, 5))
                result = Pass(paused_until=now + max(poll, 5))
            if after_pass is not None:
                after_pass(result)
            wake = now + poll
            if result.paused_until:
                wake = max(wake, min(result.paused_until, now + 60))
            nd = self.spool.next_due(self.tag)
            if nd is not None and not result.paused_until:
                wake = min(wake, max(nd, now + 0.05))
            while not self.stopping and clock() < wake:
                self.beat()
                sleep(min(0.2, max(0.0, wake - clock())))

    def stuck(self) -> list[heartbeat.Stuck]:
        """Other agents of this spool past their heartbeat's deadline (stopped, hung)."""
        from hookagent.spool import flush_lock_path
        return [s for s in heartbeat.stuck_agents(self.spool.path("locks"),
                                                  flush_lock_path(self.spool.root, self.dest))
                if s.pid != os.getpid()]

    def waiting_on_others(self) -> bool:
        """Whether an entry waits, through its stories, behind an entry another agent is sending
        now (not one that is stuck: that one's claim stays until it dies), or may go already
        (that agent was done before we looked). Its turn comes once that agent has filed the
        outcome: a flush waits for it instead of ending."""
        items = self.order.scan()
        if any(i.name not in self.unreadable for _, _, i in order.Schedule(items).ready):
            return True
        others = order.blocked_by(items) - {self.lock.id}
        if not others:
            return False
        stuck = {i for s in self.stuck() for i in s.agent_ids}
        return bool(others - stuck)

    def next_due(self) -> float | None:
        """When this destination's first deferred entry is due."""
        return self.spool.next_due(self.tag)

    def due_now(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        n = len([i for i in order.due(self.order.scan()) if i.name not in self.unreadable])
        nd = self.next_due()
        return n + (1 if nd is not None and nd <= now else 0) + self.inbox.pending()
