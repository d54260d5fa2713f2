"""Lanes: one pass's entries sent by ``agent.concurrency`` threads at once.

Each lane is a thread with its own keep-alive session (sinks/http.py) and its own SQLite
connection to the ledger (a connection is not shared between threads). The lanes share one
:class:`~hookagent.agent.order.Schedule`: a lane takes the next entry that may go (no earlier
entry of its stories queued, deferred or in flight), claims it, delivers it with
``Agent._deliver`` (the ledger checked before each send, each commit marked as its request
succeeds) and files the outcome under the pass's lock. A retryable answer (429, 503, no answer)
pauses the whole destination: no lane takes another entry, those in flight finish and are filed,
and a second failure in the same pass takes the same pause. A kill at any moment leaves at most
one request per lane sent and not marked: duplicates are at most the requests in flight.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from hookagent.agent.order import Item, Schedule

if TYPE_CHECKING:
    from hookagent.agent.worker import Agent, Pass


class Lanes:
    def __init__(self, agent: "Agent", schedule: Schedule, state: dict, now: float, result: "Pass",
                 count: int) -> None:
        self.agent = agent
        self.schedule = schedule
        self.state = state
        self.now = now
        self.result = result
        self.count = count
        self.cond = threading.Condition()
        self.busy = 0            # entries in flight
        self.stop = False        # the destination paused or held, or a lane failed
        self.failure: BaseException | None = None
        self.results: list["Pass"] = []

    def run(self) -> None:
        """Send until nothing may go, the destination pauses, or the agent stops; the lanes'
        results are added to the pass's. An error a lane met (the spool's disk refusing a
        write) is raised here once every lane has ended, its entry put back."""
        threads = [threading.Thread(target=self._lane, name=f"hookagent-lane-{i}", daemon=True)
                   for i in range(self.count)]
        for t in threads:
            t.start()
        for t in threads:
            # Only the lanes beat (before each request, which tracker.timeout bounds): a lane
            # that hangs makes the agent look stuck, as a serial agent would.
            t.join()
        for r in self.results:
            _add(self.result, r)
        if self.failure is not None:
            raise self.failure

    def _next(self) -> Item | None:
        """The next entry for a lane (then in flight), or None when the lane should end."""
        with self.cond:
            while True:
                if self.stop:
                    return None
                if self.agent.stopping:
                    self.result.stopped = True
                    return None
                item = self.schedule.pick()
                if item is not None:
                    if item.name in self.agent.unreadable:
                        continue
                    self.busy += 1
                    return item
                if self.busy == 0:
                    return None      # nothing may go, and nothing in flight could free one
                self.cond.wait()

    def _lane(self) -> None:
        from hookagent.agent.worker import Pass
        own = Pass()
        try:
            self.agent.lane_begins()
            while (item := self._next()) is not None:
                stop = False
                try:
                    stop = self.agent._send(item, self.schedule, self.state, self.now, own, self.cond)
                finally:
                    with self.cond:      # (one step: no lane takes an entry in between)
                        self.busy -= 1
                        self.stop = self.stop or stop
                        self.cond.notify_all()
        except BaseException as exc:    # noqa: BLE001 (handed to the pass's thread)
            with self.cond:
                self.failure = self.failure or exc
                self.stop = True
                self.cond.notify_all()
        finally:
            self.agent.lane_ends()
            with self.cond:
                self.results.append(own)


def _add(total: "Pass", part: "Pass") -> None:
    total.sent += part.sent
    total.skipped += part.skipped
    total.entries_done += part.entries_done
    total.deferred += part.deferred
    total.dead += part.dead
    total.held = total.held or part.held
    total.paused_until = max(total.paused_until, part.paused_until)
    total.stopped = total.stopped or part.stopped
    total.errors.extend(part.errors)
