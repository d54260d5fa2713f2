"""`hookagent status [--json]`: pending, deferred, in flight, held, dead, sent; ages; last error;
the lanes in use and the throughput (commits per minute, from the ledger's send times); agents
that have stopped making progress (stuck: heartbeat.py) and the command to run."""
from __future__ import annotations

import argparse
import json
import time

from hookagent.commands import add_config_option


def configure(p: argparse.ArgumentParser) -> None:
    add_config_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def collect(cfg, now: float | None = None) -> dict:
    from hookagent import context, localdisk
    now = time.time() if now is None else now
    spool = context.open_spool(cfg)
    ledger = context.open_ledger(spool, read_only_ok=True)
    disk = localdisk.check(spool.root)   # full or read-only now: nothing moves until it is not
    dest = cfg.tracker.destination

    from hookagent.spool import dest_tag, entry_for
    tag = dest_tag(dest)   # this configuration's destination only: a spool may serve several

    def commits(queue: str) -> tuple[int, int, list]:
        entries = [(name, e) for name, e in spool.entries(queue) if entry_for(name, tag)]
        n = sum(len(e.get("commits", [])) for _, e in entries if isinstance(e, dict))
        return len(entries), n, entries

    new_n, new_c, new_e = commits("new")
    def_n, def_c, def_e = commits("deferred")
    dead_n, dead_c, dead_e = commits("dead")
    cur_n, cur_c, cur_e = commits("cur")
    created = [float(e.get("created") or now) for _, e in new_e + def_e if isinstance(e, dict)]
    state = spool.read_state(dest)
    from hookagent import inbox
    records = spool.inbox_names()
    mine = spool.inbox_names(inbox.agent_keys(cfg.path))
    from hookagent import retarget
    elsewhere = [{"tag": t, "destination": d, "entries": n, "follows": ours}
                 for t, (d, n, ours) in retarget.strays(spool, dest, inbox.agent_key(cfg.path)).items()]
    dead_list = [{"entry": name, "commits": [c.get("commit_id") for c in e.get("commits", [])][:5],
                  "error": e.get("last_error"), "status": e.get("last_status")}
                 for name, e in dead_e if isinstance(e, dict)]
    out = {
        "spool_dir": spool.root,
        "destination": dest,
        "recorded": len(mine),                       # inbox records an agent has not read yet
        "recorded_other": len(records) - len(mine),  # ... of hooks installed with another config
        "pending": {"entries": new_n, "commits": new_c},
        "deferred": {"entries": def_n, "commits": def_c, "next_due": spool.next_due(tag)},
        "in_flight": cur_c,
        "in_flight_entries": cur_n,
        "dead": {"entries": dead_n, "commits": dead_c, "items": dead_list[:20]},
        "corrupt": spool.count("corrupt"),
        "unserved": elsewhere,   # entries for destinations no configuration names now
        "held": state.get("held"),
        "held_since": state.get("held_since"),
        "paused_until": state.get("paused_until") if (state.get("paused_until") or 0) > now else None,
        "consecutive_failures": state.get("failures", 0),
        "last_error": state.get("last_error"),
        "last_error_at": state.get("last_error_at"),
        "sent": ledger.count(dest, "sent"),
        # copies of commits their stories heard of (amend, rebase, cherry-pick): not sent (changes.py)
        "replaced": ledger.count(dest, "replaced"),
        # Requests in flight now (an entry claimed per lane) of agent.concurrency.
        "lanes": {"in_use": cur_n, "of": cfg.agent.concurrency},
        # Commits per minute the tracker accepted over the last minute and the last 5 minutes.
        "throughput": {"last_minute": ledger.sent_since(dest, now - 60),
                       "last_5_minutes": round(ledger.sent_since(dest, now - 300) / 5, 1)},
        "oldest_pending_age": (now - min(created)) if created else None,   # queued or deferred
        "disk": disk,
        "problem": disk or (None if ledger.writable else (f"cannot write the spool {spool.root}; make it writable"
                                                          " (a read-only or full file system?), or point spool_dir"
                                                          " at a folder that is: nothing is delivered meanwhile")),
    }
    out["stuck"] = _stuck(spool, dest, [name for name, _ in cur_e])
    ledger.close()
    return out


def _stuck(spool, dest: str, claimed: list[str]) -> list[dict]:
    """Agents past their heartbeat's deadline (stopped, hung), with what they hold of ours."""
    from hookagent.agent import heartbeat
    from hookagent.spool import flush_lock_path
    out = []
    for s in heartbeat.stuck_agents(spool.path("locks"), flush_lock_path(spool.root, dest)):
        mine = [name for name in claimed if name.rpartition("@")[2] in s.agent_ids]
        out.append({"pid": s.pid, "silent_for": s.silent_for, "serving": s.serving,
                    "in_flight_entries": len(mine), "command": s.command})
    return out


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60}m"
    if s >= 60:
        return f"{s // 60}m{s % 60}s"
    return f"{s}s"


def run(args: argparse.Namespace) -> int:
    from hookagent import context
    cfg = context.load_config(args.config)
    now = time.time()
    st = collect(cfg, now)
    if args.json:
        print(json.dumps(st, indent=2, sort_keys=True))
        return _problem(st)
    print(f"spool:        {st['spool_dir']}")
    print(f"destination:  {st['destination']}")
    if st["recorded"]:
        print(f"recorded:     {st['recorded']} hook record(s) not read by an agent yet (hookagent flush reads them)")
    if st["recorded_other"]:
        print(f"other:        {st['recorded_other']} hook record(s) of hooks installed with another configuration;"
              " run hookagent flush --config with that file, or install those hooks again with this one")
    print(f"pending:      {st['pending']['commits']} commit(s) in {st['pending']['entries']} entr(y/ies)")
    nd = st["deferred"]["next_due"]
    nd_text = f", next retry in {_ago(max(0.0, nd - now))}" if nd else ""
    print(f"deferred:     {st['deferred']['commits']} commit(s){nd_text}")
    if st["oldest_pending_age"] is not None:
        print(f"oldest:       queued {_ago(st['oldest_pending_age'])} ago, not sent yet")
    print(f"in flight:    {st['in_flight']} commit(s)")
    lanes, rate = st["lanes"], st["throughput"]
    print(f"lanes:        {lanes['in_use']} of {lanes['of']} in use (agent.concurrency)")
    if rate["last_minute"] or rate["last_5_minutes"]:
        print(f"throughput:   {rate['last_minute']} commits/min over the last minute,"
              f" {rate['last_5_minutes']:g}/min over the last 5 minutes")
    for agent in st["stuck"]:
        print(f"STUCK:        agent {agent['pid']} has made no progress for {_ago(agent['silent_for'])}"
              f" (stopped or hung): run `{agent['command']}` (as its user) or `hookagent flush`")
        if agent["serving"]:
            print("              it holds the delivery of new commits: the next commit's agent replaces it"
                  " if it is of the same user")
        if agent["in_flight_entries"]:
            print(f"              it claimed {agent['in_flight_entries']} entr(y/ies) in flight: they stay"
                  " in cur/ until it dies, then the next agent sends them")
    print(f"dead:         {st['dead']['commits']} commit(s)" + ("  (hookagent retry --dead re-queues)" if st['dead']['entries'] else ""))
    for item in st["unserved"]:
        if item["follows"]:
            print(f"moving:       {item['entries']} entr(y/ies) queued for this configuration's earlier"
                  f" destination {item['destination']} go to this one when an agent starts"
                  " (hookagent flush, or the next commit)")
        else:
            print(f"UNSERVED:     {item['entries']} entr(y/ies) queued for {item['destination']}, which no"
                  f" configuration of this spool names now: run `hookagent retarget --from {item['tag']}`"
                  " to send them to this destination")
    if st["corrupt"]:
        print(f"corrupt:      {st['corrupt']} file(s) in {st['spool_dir']}/corrupt")
    print(f"sent:         {st['sent']} commit(s)")
    if st["replaced"]:
        print(f"not sent:     {st['replaced']} copied commit(s) (amend, rebase, cherry-pick) whose stories"
              " had heard of their change (rewrites: once)")
    if st["held"]:
        print(f"HELD:         {st['held']}")
    elif st["paused_until"]:
        print(f"paused:       {_ago(st['paused_until'] - now)} more after {st['consecutive_failures']} failure(s)")
    if st["last_error"]:
        when = f" ({_ago(now - st['last_error_at'])} ago)" if st.get("last_error_at") else ""
        print(f"last error:   {st['last_error']}{when}")
    for item in st["dead"]["items"]:
        print(f"  dead {item['entry']}: {item['error']}")
    return _problem(st)


def _problem(st: dict) -> int:
    """What status could read is shown; a spool it cannot write is the one line and exit 2."""
    if st.get("problem"):
        from hookagent.errors import SpoolError
        raise SpoolError(st["problem"])
    return 0
