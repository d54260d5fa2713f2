"""`hookagent flush`: deliver everything that is due now, then exit.

Exit status: 0 when nothing due is left (entries deferred to a later time do not count, they are
listed on stderr); 1 when something due could not be sent now (queue held, destination paused,
or interrupted); 2 on a configuration or spool error.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="configuration file (default: $HOOKAGENT_CONFIG, ~/.config/hookagent/config.yaml, /etc/hookagent/config.yaml)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="keep going through backoffs until everything is sent or SECONDS have passed")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing unless something is wrong")
    p.add_argument("--verbose", "-v", action="store_true", help="also log each delivery to stderr")
    p.add_argument("--background", action="store_true",
                   help="(used by hooks) exit at once when another flush is already running; otherwise"
                        " stay, sleeping through backoffs, until nothing waits for a retry")


def run(args: argparse.Namespace) -> int:
    from hookagent import agentcmd, context

    if args.background:
        os.chdir("/")          # hold no work tree or mount busy
        try:
            os.nice(10)        # started by a commit or a push: let the developer's work go first
        except OSError:
            pass
    cfg = context.load_config(args.config)
    context.setup_logging(cfg, verbose=args.verbose)
    spool = context.open_spool(cfg)
    # The lock only spares the tracker a crowd of background flushes (one per commit);
    # correctness comes from claims, so a flush run by hand never waits for it.
    from hookagent.spool import flush_lock_path
    lock = _FlushLock(spool.open_file(flush_lock_path(spool.root, cfg.tracker.destination), os.O_RDWR))
    if args.background and not lock.try_acquire():
        return 0
    lock.note_owner()
    try:
        agent = agentcmd.build(cfg)
    except Exception:
        lock.release()
        raise
    agentcmd.stop_on_signals(agent)
    deadline = time.time() + args.wait
    totals = {"sent": 0, "skipped": 0, "deferred": 0, "dead": 0}
    try:
        while True:
            result = agent.run_once(time.time(), probe_held=True)
            for k in totals:
                totals[k] += getattr(result, k)
            if agent.stopping or result.held:
                break
            if result.entries_done or result.dead or result.skipped:
                continue  # progress: go round until a pass finds nothing more
            now = time.time()
            wake = result.paused_until or agent.next_due()
            if args.wait and wake and now < deadline:
                time.sleep(max(0.01, min(wake - now, deadline - now, 1.0)))
                continue
            if args.background and wake:
                # Started by a hook, nobody else may come: stay while something waits for a
                # retry (the tracker is down or slow), sleep until it is due, try again. Hooks
                # see the lock held and start no other. Exits when the queue is empty or held.
                _sleep_until(agent, wake)
                continue
            if args.background:
                # A burst of commits (a rebase, a script) is served by this process: hooks see
                # the lock held and start no other. Linger a moment for the next one.
                if _linger(agent, LINGER):
                    continue
                # Something queued after our last look while a rival flush gave up on the lock?
                lock.release()
                if agent.due_now() and lock.try_acquire():
                    lock.note_owner()
                    continue
            break
    finally:
        lock.release()
        agent.close()
    return _report(agent, result, totals, args.quiet)


LINGER = 1.0
"""Seconds a background flush waits for more work before it exits."""


def _sleep_until(agent, when: float) -> None:
    """Sleep until ``when`` (a due time), waking for a signal, or early when someone lifted the
    pause (`hookagent retry`) and something is due."""
    while not agent.stopping and time.time() < when:
        time.sleep(min(0.5, max(0.01, when - time.time())))
        state = agent.spool.read_state(agent.dest)
        if float(state.get("paused_until") or 0) <= time.time() and agent.due_now():
            return


def _linger(agent, seconds: float) -> bool:
    """Wait up to ``seconds`` for an entry to become due; True when one did."""
    end = time.time() + seconds
    while time.time() < end and not agent.stopping:
        if agent.due_now():
            return True
        time.sleep(0.05)
    return False


def _report(agent, result, totals: dict, quiet: bool) -> int:
    now = time.time()
    due = agent.due_now(now) + len(agent.unreadable)   # an unreadable entry is due and not sent
    deferred = agent.spool.count("deferred")
    if not quiet or due or result.held:
        line = (f"hookagent: sent {totals['sent']} commit(s); {due} due and not sent;"
                f" {deferred} deferred; {totals['dead']} dead this run")
        if totals["skipped"]:
            line += f"; {totals['skipped']} skipped (already sent)"
        print(line, file=sys.stderr)
    if agent.unreadable:
        print(f"hookagent: {len(agent.unreadable)} entr(y/ies) could not be read and were left in place;"
              " see the log or run with -v", file=sys.stderr)
    if result.held:
        print(f"hookagent: queue held: {result.held}", file=sys.stderr)
    elif result.errors:
        print(f"hookagent: last error: {result.errors[-1]}", file=sys.stderr)
    if deferred and not quiet:
        nd = agent.next_due()
        if nd:
            print(f"hookagent: next retry in {max(0.0, nd - now):.0f}s", file=sys.stderr)
    return 1 if (due or result.held or result.stopped) else 0


class _FlushLock:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.held = False

    def try_acquire(self) -> bool:
        import fcntl
        if self.held:
            return True
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self.held = True
        return True

    def acquire(self) -> None:
        import fcntl
        if not self.held:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            self.held = True

    def note_owner(self) -> None:
        """Write our pid into the lock file, for `hookagent status` and for people."""
        if self.held:
            try:
                os.ftruncate(self.fd, 0)
                os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
            except OSError:
                pass

    def release(self) -> None:
        import fcntl
        if self.held:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            self.held = False
