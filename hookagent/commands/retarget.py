"""`hookagent retarget --from DESTINATION`: send entries queued for another destination to this
configuration's.

An agent moves its own configuration's entries when ``tracker.url`` or ``tracker.api`` changes
(retarget.py). This command is for the rest, which `status` and `flush` point at: entries of a
configuration that was removed, or that were queued before the agent kept track of destinations.
"""
from __future__ import annotations

import argparse
import re
import sys

from hookagent.commands import add_config_option
from hookagent.errors import ConfigError


def configure(p: argparse.ArgumentParser) -> None:
    add_config_option(p)
    p.add_argument("--from", dest="source", required=True, metavar="DESTINATION",
                   help="the destination the entries were queued for, as `hookagent status` shows it"
                        " (\"API URL\", e.g. \"v5 http://old.example\") or its 8-digit tag")


def run(args: argparse.Namespace) -> int:
    from hookagent import context, retarget
    from hookagent.spool import dest_tag
    cfg = context.load_config(args.config)
    spool = context.open_spool(cfg)
    dest = cfg.tracker.destination
    source = args.source.strip()
    tag = source if re.fullmatch(r"[0-9a-f]{8}", source) else dest_tag(source)
    if tag == dest_tag(dest):
        raise ConfigError(f"{source} is this configuration's own destination ({dest}); name the"
                          " destination the entries were queued for, as `hookagent status` lists it")
    moved = retarget.move(spool, tag, dest)
    parts = ", ".join(f"{n} {q}" for q, n in moved.moved.items()) or "none"
    print(f"hookagent: moved {moved.total} entr(y/ies) to {dest} ({parts})"
          + (f"; {moved.duplicates} were queued there already and were dropped" if moved.duplicates else ""),
          file=sys.stderr)
    if moved.in_flight:
        print(f"hookagent: {moved.in_flight} entr(y/ies) of {source} are claimed by a running agent;"
              " run this again when it has ended", file=sys.stderr)
        return 1
    if moved.total:
        print("hookagent: run `hookagent flush` to deliver them now (`hookagent retry --dead` for"
              " dead ones)", file=sys.stderr)
    return 0
