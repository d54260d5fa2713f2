"""Story events queued straight into a spool, as the agent's ingest queues them (one entry per
commit, in commit order), for the order and lanes tests."""
from __future__ import annotations

from hookagent.model import Commit
from hookagent.spool import commit_entry_name, make_entry

WORDS = ("", "finishes ", "delivers ")   # a link, then a finish, then a deliver, and so on


def queue_stories(site, stories: int, events: int, first: int = 0,
                  before: dict[int, list[str]] | None = None) -> dict[int, list[str]]:
    """Events ``first``..``first+events-1`` of stories 1..``stories``, interleaved, one entry each;
    each story's commit ids in commit order (after ``before``'s, when given)."""
    dest = site.config.tracker.destination
    spool = site.spool
    order = {s: list((before or {}).get(s, [])) for s in range(1, stories + 1)}
    for e in range(first, first + events):
        for s in range(1, stories + 1):
            cid = f"s{s:03d}e{e:04d}"
            c = Commit(cid, "Ada", f"[{WORDS[e % 3]}#{s}] event {e}", date="2026-11-28T10:00:00+00:00")
            spool.enqueue(commit_entry_name(dest, cid), make_entry(dest, [c.to_dict()]))
            order[s].append(cid)
    return order
