"""`hookagent run`: deliver continuously, as a service. SIGTERM finishes the request in flight
and exits 0; SIGHUP is not special (restart the service to reload the config).

Under systemd (``contrib/systemd/hookagent.service``, ``Type=notify``) it tells the manager how
it is doing (systemd.py): READY=1 once the spool, the ledger and the sink are built and the loop
is about to start; STATUS= with the queue after each pass that changed it; WATCHDOG=1 with each
heartbeat of the loop (heartbeat.py), asking for a longer WatchdogSec= when the configured one is
shorter than the longest step the heartbeat allows (a request of tracker.timeout); STOPPING=1
as soon as SIGTERM comes. Where its lines go: context.log_destination (journald there).
"""
from __future__ import annotations

import argparse
import logging
import os
import time

from hookagent.commands import add_config_option


def configure(p: argparse.ArgumentParser) -> None:
    add_config_option(p)
    p.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                   help="how often to look for new entries (default 1)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="log debug lines too (and on stderr as well when the log goes to its file)")


def run(args: argparse.Namespace) -> int:
    from hookagent import context, systemd
    from hookagent.agent import heartbeat, lifetime

    notifier = systemd.Notifier()
    cfg = context.load_config(args.config)
    where = context.setup_logging(cfg, verbose=args.verbose, command="run")
    log = logging.getLogger("hookagent.agent")
    try:
        agent = lifetime.build(cfg)
    except Exception as exc:
        log.error("cannot start: %s", exc)
        notifier.send(f"STATUS=cannot start: {context.one_line(str(exc))}")
        raise
    lifetime.stop_on_signals(agent, then=notifier.stopping)
    # WATCHDOG=1 rides on the heartbeat: it is written only as the loop goes round (each pass,
    # each request, each record read, each step of a wait), so a hung request or a stopped
    # process stops it, and systemd restarts the service.
    longest = heartbeat.allowance(cfg.tracker.timeout) + heartbeat.EVERY
    asked = notifier.extend_watchdog(longest)
    agent.heartbeat.add(lambda _text: notifier.watchdog())
    log.info("agent started: spool %s, destination %s, log %s", cfg.spool_dir, cfg.tracker.destination, where)
    if asked is not None:
        log.info("WatchdogSec= is shorter than a request may take (tracker.timeout %gs + %gs):"
                 " asked systemd for %.0fs", cfg.tracker.timeout, longest - cfg.tracker.timeout, asked)
    queue = QueueStatus(agent)
    notifier.ready(queue.text() if notifier.active else "")
    try:
        agent.run_forever(poll=args.poll, after_pass=(lambda result: notifier.status(queue.text(result)))
                          if notifier.active else None)
    finally:
        agent.close()
        log.info("agent stopped")
        notifier.close()
    return 0


class QueueStatus:
    """The one line `systemctl status` shows: what was sent since the start, what waits."""

    def __init__(self, agent) -> None:
        self.agent = agent
        self.sent = 0
        self.dead = 0

    def text(self, result=None) -> str:
        from hookagent.spool import entry_for
        agent = self.agent
        if result is not None:
            self.sent += result.sent
            self.dead += result.dead
        counts = {}
        for queue in ("new", "deferred"):
            try:
                with os.scandir(agent.spool.path(queue)) as it:
                    counts[queue] = sum(1 for e in it if e.name.endswith(".json") and entry_for(e.name, agent.tag))
            except OSError:
                counts[queue] = 0
        line = f"sent {self.sent} commit(s) since start; queue: {counts['new']} due, {counts['deferred']} deferred"
        if self.dead:
            line += f"; {self.dead} entr(y/ies) dead since start"
        held = result.held if result is not None else None
        if held:
            return f"{line}; HELD: {held}"
        paused = agent.paused_until()
        if paused > time.time():
            return f"{line}; paused until {time.strftime('%H:%M:%S', time.localtime(paused))}"
        return line
