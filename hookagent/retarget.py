"""Entries follow their configuration when its destination changes.

A queued entry is named for its destination (``c-<tag>-...``: see spool.py), and an agent sends
only its own destination's entries. When a person fixes ``tracker.url`` (a held queue says to),
the configuration's destination changes, and without this module what was queued for the old one
would wait in the spool for good, sent by nobody and counted by nobody.

So each agent keeps a small record per configuration, ``state/config-<key>.json``: the config
file, its destination now, and the destinations it had before. An agent that starts with a new
destination moves the entries of its old ones (new/, deferred/ and dead/ alike, each keeping its
place in the order) to the new one, unless another configuration that still exists names that
old destination now: those entries are then that configuration's to send.

Entries that no configuration names (a removed configuration, entries from before these records)
are never silent: ``status`` and ``flush`` count them, and ``hookagent retarget --from`` moves
them to a configuration's destination.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass, field

from hookagent.spool import Spool, dest_tag

log = logging.getLogger("hookagent.agent")

QUEUES = ("new", "deferred", "dead")    # cur/: claimed by a running agent, never moved under it
KEEP_PREVIOUS = 20
_TAG = re.compile(r"^[cb]-([0-9a-f]{8})-")


@dataclass
class Moved:
    """What a move did: entries moved per queue; entries already queued for the new destination
    (dropped: the same commit is there); entries left because an agent holds them."""
    moved: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    in_flight: int = 0

    @property
    def total(self) -> int:
        return sum(self.moved.values())


def entry_tag(name: str) -> str | None:
    m = _TAG.match(name)
    return m.group(1) if m else None


# ---------------------------------------------------------------------- the per-configuration record
def _record_path(spool: Spool, key: str) -> str:
    return spool.path("state", f"config-{key}.json")


def _read(spool: Spool, path: str) -> dict | None:
    try:
        data = json.loads(spool.read_file(path))
        return data if isinstance(data, dict) and isinstance(data.get("destination"), str) else None
    except (OSError, ValueError):
        return None


def remember(spool: Spool, key: str, config_path: str | None, destination: str) -> list[str]:
    """Note this configuration's destination; its earlier destinations, newest first."""
    path = _record_path(spool, key)
    record = _read(spool, path) or {}
    previous = [d for d in record.get("previous", []) if isinstance(d, str) and d != destination]
    old = record.get("destination")
    if old == destination and record.get("config") == config_path:
        return previous
    if isinstance(old, str) and old != destination:
        previous = [old] + [d for d in previous if d != old]
    record = {"config": config_path, "destination": destination, "previous": previous[:KEEP_PREVIOUS],
              "at": time.time()}
    spool.write_state_file(os.path.basename(path), json.dumps(record, sort_keys=True).encode())
    return previous


def named_destinations(spool: Spool, *, except_key: str | None = None) -> set[str]:
    """The destinations the configurations that use this spool name now (as their agents last
    saw them), leaving out a configuration whose file is gone."""
    out: set[str] = set()
    try:
        names = os.listdir(spool.path("state"))
    except OSError:
        return out
    for name in names:
        if not (name.startswith("config-") and name.endswith(".json")):
            continue
        if except_key is not None and name == f"config-{except_key}.json":
            continue
        record = _read(spool, spool.path("state", name))
        if record is None:
            continue
        config = record.get("config")
        if isinstance(config, str) and not os.path.exists(config):
            continue
        out.add(record["destination"])
    return out


# ---------------------------------------------------------------------- moving entries
def follow(spool: Spool, key: str, config_path: str | None, destination: str) -> Moved:
    """What an agent does as it starts: note its destination, and bring along the entries of its
    earlier destinations that no other configuration serves."""
    moved = Moved()
    previous = remember(spool, key, config_path, destination)
    if not previous:
        return moved
    others = named_destinations(spool, except_key=key)
    for old in previous:
        if old in others or old == destination:
            continue
        result = move(spool, dest_tag(old), destination)
        if result.total or result.duplicates:
            log.info("destination changed from %s to %s: %d queued entr(y/ies) follow it%s", old,
                     destination, result.total,
                     f" ({result.duplicates} already queued there)" if result.duplicates else "")
        moved.duplicates += result.duplicates
        moved.in_flight += result.in_flight
        for q, n in result.moved.items():
            moved.moved[q] = moved.moved.get(q, 0) + n
    return moved


def move(spool: Spool, from_tag: str, destination: str) -> Moved:
    """Move every entry of destination ``from_tag`` to ``destination``: same queue, same due
    time (its place in the order), the destination inside it rewritten."""
    to_tag = dest_tag(destination)
    result = Moved()
    if from_tag == to_tag:
        return result
    for queue in (*QUEUES, "cur"):
        for name in _names(spool, queue):
            if entry_tag(name) != from_tag:
                continue
            if queue == "cur":
                result.in_flight += 1
                continue
            new_name = name[:2] + to_tag + name[10:]
            outcome = spool.retag(queue, name, new_name, destination)
            if outcome == "moved":
                result.moved[queue] = result.moved.get(queue, 0) + 1
            elif outcome == "duplicate":
                result.duplicates += 1
    return result


def strays(spool: Spool, destination: str, key: str) -> dict[str, tuple[str, int, bool]]:
    """Entries queued for destinations that no configuration names now, the caller's (``key``)
    by its ``destination`` now: tag -> (that destination as the entries say it, how many, whether
    they were this configuration's: those follow it when its next agent starts)."""
    named = {dest_tag(d) for d in named_destinations(spool, except_key=key)} | {dest_tag(destination)}
    mine = _read(spool, _record_path(spool, key)) or {}
    ours = {dest_tag(d) for d in [mine.get("destination"), *mine.get("previous", [])] if isinstance(d, str)}
    out: dict[str, tuple[str, int, bool]] = {}
    for queue in (*QUEUES, "cur"):
        for name in _names(spool, queue):
            tag = entry_tag(name)
            if tag is None or tag in named:
                continue
            dest, n, _ = out.get(tag, ("", 0, False))
            if not dest:
                dest = _entry_destination(spool, spool.path(queue, name)) or tag
            out[tag] = (dest, n + 1, tag in ours)
    return out


def _names(spool: Spool, queue: str) -> list[str]:
    try:
        return sorted(os.listdir(spool.path(queue)))
    except FileNotFoundError:
        return []


def _entry_destination(spool: Spool, path: str) -> str | None:
    try:
        dest = json.loads(spool.read_file(path)).get("dest")
        return dest if isinstance(dest, str) else None
    except (OSError, ValueError, AttributeError):
        return None
