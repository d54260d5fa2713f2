"""`hookagent flush`: deliver everything that is due now, then exit.

On a terminal, a long drain (LONG commits or more queued) shows a progress bar on stderr:
commits sent of those queued, the rate, the time left.

Exit status: 0 when nothing due is left (entries deferred to a later time do not count, they are
listed on stderr); 1 when something due could not be sent now (queue held, destination paused,
or interrupted); 2 on a configuration or spool error.
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
import time

from hookagent.commands import add_config_option
from hookagent.errors import SpoolError

LONG = 50
"""Commits queued from which a flush on a terminal shows its progress."""


def configure(p: argparse.ArgumentParser) -> None:
    add_config_option(p)
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="keep going through backoffs until everything is sent or SECONDS have passed")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing unless something is wrong")
    p.add_argument("--verbose", "-v", action="store_true", help="also log each delivery to stderr")
    p.add_argument("--background", action="store_true",
                   help="(used by hooks) exit at once when another flush is already running; otherwise"
                        " stay, sleeping through backoffs, until nothing waits for a retry")


def run(args: argparse.Namespace) -> int:
    from hookagent import context
    from hookagent.agent import lifetime

    if args.background:
        lifetime.detach()
    cfg = context.load_config(args.config)
    agent = lifetime.build(cfg)      # a spool that cannot be used is one line, before any log warning
    context.setup_logging(cfg, verbose=args.verbose)
    lifetime.stop_on_signals(agent)
    progress = None
    if sys.stderr.isatty() and not (args.quiet or args.background):
        progress = DrainProgress(agent)
    try:
        try:
            totals = lifetime.flush(agent, wait=args.wait, background=args.background)
        except SpoolError as exc:   # a background flush's stderr goes nowhere: the log says it too
            logging.getLogger("hookagent.agent").error("%s", exc)
            raise
        finally:
            if progress is not None:
                progress.stop()
        if totals is None:
            return 0     # another background flush serves this destination
        return _report(agent, totals, args.quiet)
    finally:
        agent.close()


class DrainProgress:
    """The progress bar of a drain: what was queued is counted before the flush starts, then a
    thread of its own draws what the ledger says was sent since (the lanes report nothing).
    Nothing at all unless LONG commits or more are queued."""

    def __init__(self, agent, stream=None) -> None:
        from hookagent.ledger import Ledger
        self.agent = agent
        self.stream = stream if stream is not None else sys.stderr
        self.done = threading.Event()
        self.thread: threading.Thread | None = None
        try:
            self.ledger = Ledger(agent._ledger.path)   # the drawing thread's own connection
        except Exception:   # a progress bar never stops a flush
            return
        try:
            self.before = self.ledger.count(agent.dest, "sent")
            self.total = self._queued()
        except Exception:
            self.total = 0
        if self.total < LONG:
            self.ledger.close()
            return
        self.thread = threading.Thread(target=self._draw, name="hookagent-progress", daemon=True)
        self.thread.start()

    def _queued(self) -> int:
        """Commits queued for this destination now (and inbox records not read yet, one each)."""
        from hookagent.spool import entry_for
        spool, n = self.agent.spool, 0
        for queue in ("new", "deferred", "cur"):
            for name, entry in spool.entries(queue):
                if entry_for(name, self.agent.tag) and isinstance(entry, dict):
                    n += len(entry.get("commits") or ())
        return n + len(spool.inbox_names(self.agent.inbox.keys))

    def _sent(self) -> int:
        return self.ledger.count(self.agent.dest, "sent") - self.before

    def _draw(self) -> None:
        from hookagent.backfill import Progress
        bar = Progress(self.total, True, self.stream)
        try:
            while not self.done.wait(0.2):
                bar.update(self._sent())
            bar.done(self._sent())
        except Exception:   # a progress bar never stops a flush
            pass
        finally:
            self.ledger.close()

    def stop(self) -> None:
        if self.thread is not None:
            self.done.set()
            self.thread.join()


def _report(agent, totals, quiet: bool) -> int:
    from hookagent import retarget
    result = totals.last
    now = time.time()
    due = agent.due_now(now) + len(agent.unreadable)   # an unreadable entry is due and not sent
    deferred = agent.spool.count("deferred")
    if not quiet or due or result.held:
        line = (f"hookagent: sent {totals.sent} commit(s); {due} due and not sent;"
                f" {deferred} deferred; {totals.dead} dead this run")
        if totals.skipped:
            line += f"; {totals.skipped} skipped (already sent)"
        print(line, file=sys.stderr)
    followed = agent.followed
    if followed is not None and followed.total and not quiet:
        print(f"hookagent: tracker.url or tracker.api changed: {followed.total} entr(y/ies) queued for the"
              f" earlier destination now go to {agent.dest}", file=sys.stderr)
    strays = retarget.strays(agent.spool, agent.dest, agent.inbox.key)
    for tag, (dest, n, _ours) in strays.items():
        print(f"hookagent: {n} entr(y/ies) queued for {dest}, which no configuration of this spool names"
              f" now; run `hookagent retarget --from {tag}` to send them to {agent.dest}", file=sys.stderr)
    if agent.unreadable:
        print(f"hookagent: {len(agent.unreadable)} entr(y/ies) could not be read and were left in place;"
              " see the log or run with -v", file=sys.stderr)
    if agent.inbox.stuck:
        print(f"hookagent: {len(agent.inbox.stuck)} inbox record(s) could not be read and were left in"
              " place; see the log or run with -v", file=sys.stderr)
    for stuck in agent.stuck():
        print(f"hookagent: agent {stuck.pid} has made no progress for {stuck.silent_for:.0f}s (stopped or"
              f" hung); what it claimed stays in cur/ until it dies: run `{stuck.command}` as its user",
              file=sys.stderr)
    if result.held:
        print(f"hookagent: queue held: {result.held}", file=sys.stderr)
    elif result.errors:
        print(f"hookagent: last error: {result.errors[-1]}", file=sys.stderr)
    if deferred and not quiet:
        nd = agent.next_due()
        if nd:
            print(f"hookagent: next retry in {max(0.0, nd - now):.0f}s", file=sys.stderr)
    return 1 if (due or result.held or result.stopped) else 0
