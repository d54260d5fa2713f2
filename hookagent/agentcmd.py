"""What `flush` and `run` share: building an Agent from the config, and its signal handling."""
from __future__ import annotations

import signal

from hookagent import context
from hookagent.agent import Agent
from hookagent.config import Config
from hookagent.errors import ConfigError, HOLD


def build(cfg: Config) -> Agent:
    spool = context.open_spool(cfg)
    ledger = context.open_ledger(spool)
    try:
        sink = context.make_sink(cfg)
    except ConfigError as exc:
        # No usable token: hold the queue (nothing is dropped) and say why in `status`.
        state = spool.read_state(cfg.tracker.destination)
        if state.get("held") != str(exc):
            import time
            state.update(held=str(exc), held_since=time.time(), last_error=str(exc),
                         last_error_at=time.time())
            spool.write_state(cfg.tracker.destination, state)
        raise
    return Agent(cfg, spool, ledger, sink)


def stop_on_signals(agent: Agent) -> None:
    """SIGTERM/SIGINT only set a flag: the request in flight finishes, then the loop ends."""
    def handler(signum, frame):  # noqa: ARG001
        agent.stopping = True
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


__all__ = ["build", "stop_on_signals", "HOLD"]
