"""`hookagent retry [--dead] [--held]`: re-queue now what waits for a retry (and, on request,
what died or a held queue), clearing the destination's pause."""
from __future__ import annotations

import argparse
import sys
import time

from hookagent.commands import add_config_option
from hookagent.errors import warn


def configure(p: argparse.ArgumentParser) -> None:
    add_config_option(p)
    p.add_argument("--dead", action="store_true", help="also re-queue dead entries")
    p.add_argument("--held", action="store_true", help="release a held queue (after fixing the token or URL)")


def run(args: argparse.Namespace) -> int:
    from hookagent import context
    cfg = context.load_config(args.config)
    spool = context.open_spool(cfg)
    from hookagent import inbox, retarget
    # After fixing tracker.url (what a held queue asks for), the entries follow the new address.
    followed = retarget.follow(spool, inbox.agent_key(cfg.path), cfg.path, cfg.tracker.destination)
    if followed.total:
        print(f"hookagent: {followed.total} entr(y/ies) queued for this configuration's earlier"
              f" destination now go to {cfg.tracker.destination}", file=sys.stderr)
    now = time.time()
    moved = spool.requeue("deferred", now)
    dead = spool.requeue("dead", now) if args.dead else 0
    dest = cfg.tracker.destination
    state = spool.read_state(dest)
    was_held = state.get("held")
    state.update(paused_until=0.0, failures=0)
    if args.held:
        state.update(held=None, held_since=None)
    spool.write_state(dest, state)
    print(f"hookagent: re-queued {moved} deferred and {dead} dead entr(y/ies); destination unpaused"
          + ("; hold released" if args.held and was_held else ""), file=sys.stderr)
    if was_held and not args.held:
        warn(f"the queue is still held ({was_held}); fix that, then run `hookagent retry --held` or"
             " `hookagent flush`")
    print("hookagent: a background agent sleeping through the backoff wakes within a second;"
          " otherwise run `hookagent flush` to deliver now", file=sys.stderr)
    return 0
