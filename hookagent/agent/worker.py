"""The agent: claims due entries, delivers them through a sink, and files the outcome.

``run_once(now)`` does one pass and returns what happened; ``run_forever()`` is a thin loop over it.
``now`` is injected so tests can step the loop. One bad entry never stops the loop. Each pass
first turns the hooks' inbox records of this configuration into entries (ingest.py).

Outcomes: 2xx -> ledger + ack; retryable -> entry deferred with attempts+1 and the
whole destination paused (one shared backoff); misconfiguration (401/403/404/redirect/TLS) -> the
queue is held, the entry goes back untouched; permanent (400/413/422) -> dead/, answer kept.
"""
from __future__ import annotations

import logging
import random
import time
import traceback
from dataclasses import dataclass, field

from hookagent import backoff
from hookagent.config import Config
from hookagent.errors import DEAD, HOLD, DeliveryError, SpoolError
from hookagent.ledger import Ledger
from hookagent.agent.ingest import Inbox
from hookagent.model import Commit
from hookagent.spool import AgentLock, Claim, Spool, dest_tag

log = logging.getLogger("hookagent.agent")


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


class Agent:
    def __init__(self, cfg: Config, spool: Spool, ledger: Ledger, sink, *,
                 rng: random.Random | None = None) -> None:
        self.cfg = cfg
        self.spool = spool
        self.ledger = ledger
        self.sink = sink
        self.rng = rng or random.Random()
        self.dest = cfg.tracker.destination
        self.tag = dest_tag(self.dest)   # only this destination's entries are ours to send
        self.lock = AgentLock(spool)
        self.inbox = Inbox(cfg, spool)
        self.stopping = False
        self.unreadable: set[str] = set()
        self.followed = None   # retarget.Moved: what came along from earlier destinations (build)

    def close(self) -> None:
        self.lock.close()

    # ------------------------------------------------------------------ one pass
    def run_once(self, now: float | None = None, *, probe_held: bool = True) -> Pass:
        """Deliver what is due. A held destination is probed with one entry when probe_held."""
        now = time.time() if now is None else now
        result = Pass()
        result.ingested = self.ingest()
        self.spool.recover_stale()
        self.spool.promote_due(now, self.tag)
        state = self.spool.read_state(self.dest)
        if state.get("held") and not probe_held:
            result.held = state["held"]
            return result
        if state.get("paused_until", 0) > now:
            result.paused_until = state["paused_until"]
            return result
        for name in self.spool.due_names(self.tag):
            if name in self.unreadable:
                continue
            if self.stopping:
                result.stopped = True
                break
            try:
                claim = self.spool.claim(name, self.lock.id)
            except SpoolError as exc:   # an entry we may not read: left in place, the rest go on
                log.error("%s", exc)
                result.errors.append(str(exc))
                self.unreadable.add(name)   # not due for this process: no busy loop over it
                continue
            if claim is None:
                continue
            error = self._deliver(claim, result)
            if error is None:
                result.entries_done += 1
                if state.get("failures") or state.get("held") or state.get("paused_until"):
                    state.update(failures=0, paused_until=0.0, held=None, held_since=None,
                                 last_success_at=now)
                    self.spool.write_state(self.dest, state)
                    log.info("destination %s answers again; queue resumed", self.dest)
                continue
            if self._file_failure(claim, error, state, now, result):
                break
        return result

    def ingest(self) -> int:
        """Turn this configuration's inbox records into entries; how many records were read."""
        try:
            return self.inbox.ingest().records
        except OSError as exc:   # a spool problem: the records stay, the queue still goes
            log.error("cannot read the inbox: %s", exc)
            return 0

    def _unsent(self, entry: dict, result: Pass):
        """The entry's commits the ledger does not know as sent, checked one by one as they are
        taken (so a commit another agent sent a moment ago is skipped)."""
        for raw in entry["commits"]:
            try:
                commit = Commit.from_dict(raw)
            except (KeyError, TypeError) as exc:
                raise DeliveryError(f"malformed commit in entry ({exc!r}); inspect it in dead/", DEAD) from None
            if self.ledger.is_sent(self.dest, commit.ident):
                result.skipped += 1
                continue
            yield commit

    def _deliver(self, claim: Claim, result: Pass) -> DeliveryError | None:
        """Send what the entry holds that was not sent yet; ack it when all went through. A sink
        with ``batches`` + ``send_batch`` takes several commits per request; each commit is
        marked in the ledger once the request carrying it succeeded, so a retry sends only
        what is left."""
        entry = claim.entry
        try:
            if hasattr(self.sink, "send_batch"):
                batches = self.sink.batches(entry, list(self._unsent(entry, result)))
                send = lambda batch: self.sink.send_batch(entry, batch)  # noqa: E731
            else:
                batches = ([commit] for commit in self._unsent(entry, result))
                send = lambda batch: self.sink.send(batch[0])  # noqa: E731
            for batch in batches:
                send(batch)
                for commit in batch:
                    self.ledger.mark_sent(self.dest, commit.ident)
                result.sent += len(batch)
                if len(batch) == 1:
                    log.info("sent %s by %s", batch[0].commit_id[:12], batch[0].author)
                else:
                    log.info("sent %d commit(s) up to %s", len(batch), batch[-1].commit_id[:12])
        except DeliveryError as exc:
            return exc
        except Exception as exc:  # a bug must not stop the queue; the entry is kept in dead/
            log.error("internal error sending %s: %s", claim.name, traceback.format_exc())
            return DeliveryError(f"internal error: {exc!r}; please report it, then run"
                                 " `hookagent retry --dead`", DEAD)
        self.spool.ack(claim)
        return None

    def _file_failure(self, claim: Claim, error: DeliveryError, state: dict, now: float,
                      result: Pass) -> bool:
        """File a failed entry. True when the pass must stop (destination paused or held)."""
        entry = claim.entry
        text = str(error)
        state.update(last_error=text, last_error_at=now)
        result.errors.append(text)
        if error.kind == HOLD:
            self.spool.release(claim)
            state.update(held=text, held_since=state.get("held_since") or now)
            self.spool.write_state(self.dest, state)
            result.held = text
            log.error("queue held: %s", text)
            return True
        entry["last_error"] = text
        entry["last_status"] = error.status
        if error.kind == DEAD:
            entry["response"] = (error.body or "")[:2048]
            self.spool.bury(claim)
            self.spool.write_state(self.dest, state)
            result.dead += 1
            log.error("dead: %s (%s)", claim.name, text)
            return False
        # RETRY: back off the whole destination, and this entry with it.
        failures = int(state.get("failures") or 0)
        r = self.cfg.retry
        delay = backoff.next_delay(failures, r.min_backoff, r.max_backoff, error.retry_after, self.rng)
        entry["attempts"] = int(entry.get("attempts") or 0) + 1
        entry["due"] = now + delay
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
        state.update(failures=failures + 1, paused_until=now + delay, held=None)
        self.spool.write_state(self.dest, state)
        result.paused_until = now + delay
        return True

    # ------------------------------------------------------------------ the loop
    def run_forever(self, poll: float = 1.0, sleep=time.sleep, clock=time.time) -> None:
        """Deliver until ``stopping`` is set (by a signal handler). Re-probes a held queue
        every retry.max_backoff seconds."""
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
            wake = now + poll
            if result.paused_until:
                wake = max(wake, min(result.paused_until, now + 60))
            nd = self.spool.next_due(self.tag)
            if nd is not None and not result.paused_until:
                wake = min(wake, max(nd, now + 0.05))
            while not self.stopping and clock() < wake:
                sleep(min(0.2, max(0.0, wake - clock())))

    def next_due(self) -> float | None:
        """When this destination's first deferred entry is due."""
        return self.spool.next_due(self.tag)

    def due_now(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        n = len([n for n in self.spool.due_names(self.tag) if n not in self.unreadable])
        nd = self.next_due()
        return n + (1 if nd is not None and nd <= now else 0) + self.inbox.pending()
