"""`hookagent run`: deliver continuously, as a service. SIGTERM finishes the request in flight
and exits 0; SIGHUP is not special (restart the service to reload the config)."""
from __future__ import annotations

import argparse
import logging

from hookagent.commands import add_config_option


def configure(p: argparse.ArgumentParser) -> None:
    add_config_option(p)
    p.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                   help="how often to look for new entries (default 1)")
    p.add_argument("--verbose", "-v", action="store_true", help="also log to stderr")


def run(args: argparse.Namespace) -> int:
    from hookagent import context
    from hookagent.agent import lifetime

    cfg = context.load_config(args.config)
    context.setup_logging(cfg, verbose=args.verbose, to_stderr=True)
    log = logging.getLogger("hookagent.agent")
    try:
        agent = lifetime.build(cfg)
    except Exception as exc:
        log.error("cannot start: %s", exc)
        raise
    lifetime.stop_on_signals(agent)
    log.info("agent started: spool %s, destination %s", cfg.spool_dir, cfg.tracker.destination)
    try:
        agent.run_forever(poll=args.poll)
    finally:
        agent.close()
        log.info("agent stopped")
    return 0
