"""Delivery: the tracker answers and takes the token (one request that changes nothing), an agent
runs or can start, and the queue is not held."""
from __future__ import annotations

import contextlib
import io
import os
import re
import time

from hookagent.config import Config
from hookagent.doctor.base import Result, Who, fail, ok, warn
from hookagent.errors import ConfigError, DeliveryError, SpoolError


def check_tracker(cfg: Config) -> Result:
    t = cfg.tracker
    if t.api == "stdout":
        return ok("tracker", "tracker.api is stdout: commits are printed, there is nothing to reach")
    from hookagent import context
    try:
        with contextlib.redirect_stderr(io.StringIO()):   # the token line said it already
            sink = context.make_sink(cfg)
    except ConfigError as exc:
        return warn("tracker", f"not checked: {str(exc).split(';')[0]}", "see the token line")
    extra = ""
    try:
        asked, status = sink.probe()
        if hasattr(sink, "check"):   # redmine: the key's user and the configured statuses
            try:
                sink.check()
            except DeliveryError as exc:
                return fail("tracker", str(exc).split("; fix the configuration")[0],
                            "name statuses Redmine has in tracker.redmine.statuses")
            extra = "; " + sink.checked()
    except DeliveryError as exc:
        return _tracker_refused(exc, cfg, sink.probe_method)
    finally:
        sink.close()
    if sink.probe_method == "HEAD":
        how = " (it takes POSTs only)" if status == 405 else ""
        return ok("tracker", f"{asked} answered {status}{how}: the tracker is there; the token is checked by the"
                             " first delivery")
    return ok("tracker", f"{asked} answered {status}: the tracker is there and takes the token{extra}")


def _tracker_refused(exc: DeliveryError, cfg: Config, method: str) -> Result:
    t = cfg.tracker
    said = re.split(r"; |: (?:check|fix|set) ", str(exc), maxsplit=1)[0]   # what happened, not the queue's advice
    token = t.token_file or (f"${t.token_env}" if t.token_env else "tracker.token")
    if exc.status == 404 and method == "HEAD":
        return warn("tracker", f"{said}: some receivers answer so to anything but a POST",
                    f"if deliveries are held with a 404, check tracker.url ({t.url})")
    if exc.status in (401, 403):
        return fail("tracker", said, f"put the right API token in {token} (Tracker: Profile, API token)")
    if exc.status == 404:
        return fail("tracker", said, f"check tracker.url ({t.url}: the base URL, like https://www.pivotaltracker.com)"
                                     f" and tracker.api ({t.api})")
    if exc.status is not None and 300 <= exc.status < 400:
        return fail("tracker", said, "set tracker.url to the address that answers directly")
    if exc.status is not None and exc.status >= 400:
        return warn("tracker", f"{said} (status {exc.status})", "hookagent status shows what deliveries get")
    if "TLS" in said:
        return fail("tracker", said, "fix the server's certificate, or point tracker.ca_bundle at the CA that signed it")
    if "did not" in said:
        return fail("tracker", said, "check the network and proxy settings; raise tracker.timeout if the tracker is slow")
    return fail("tracker", said, f"check that the tracker at {t.url} is up and reachable from here (network, proxy,"
                                 " tracker.url)")


# ---------------------------------------------------------------------- the agent and the queue
def check_agent(cfg: Config, key: str, autostart: bool, interpreter_ok: bool, who: Who) -> Result:
    from hookagent.agent import heartbeat, lifetime
    from hookagent.spool import flush_lock_path
    root = cfg.spool_dir
    if not os.path.isdir(root):
        return _no_agent(autostart, interpreter_ok, who)
    now = heartbeat.uptime()
    for stuck in heartbeat.stuck_agents(os.path.join(root, "locks"), flush_lock_path(root, cfg.tracker.destination)):
        if stuck.serving:
            return warn("agent", f"agent {stuck.pid} has made no progress for {stuck.silent_for:.0f}s (stopped or"
                                 " hung) and holds the delivery", f"{stuck.command} as its user (the next commit's"
                                                                  " agent does it when they are the same user)")
    beat = heartbeat.read(lifetime.pid_path(root, key))
    if beat is not None and heartbeat.is_hookagent(beat.pid) and not beat.overdue(now):
        return ok("agent", f"running (pid {beat.pid}, started by a hook)")
    running = _live_agents(os.path.join(root, "locks"), now)
    if running:
        return ok("agent", f"running in this spool (pid {', '.join(map(str, running))})")
    return _no_agent(autostart, interpreter_ok, who)


def _live_agents(locks: str, now: float | None) -> list[int]:
    from hookagent.agent import heartbeat
    try:
        names = sorted(os.listdir(locks))
    except OSError:
        return []
    pids = []
    for name in names:
        if heartbeat.AGENT_LOCK.fullmatch(name):
            beat = heartbeat.read(os.path.join(locks, name))
            if beat is not None and heartbeat.is_hookagent(beat.pid) and not beat.overdue(now):
                pids.append(beat.pid)
    return sorted(set(pids))


def _no_agent(autostart: bool, interpreter_ok: bool, who: Who) -> Result:
    if not autostart:
        return fail("agent", "none runs, and agent.autostart is off: nothing delivers what the hooks record",
                    f"run `hookagent run` as {who.owner.login} as a service, or set agent.autostart: true and install"
                    " again")
    if not interpreter_ok:
        return fail("agent", "none runs, and the hook cannot start one: its interpreter does not work",
                    "see the interpreter line")
    return ok("agent", "none runs now; the hook starts one when it records a commit (agent.autostart)")


def check_queue(cfg: Config, key: str) -> Result:
    from hookagent import inbox, localdisk
    from hookagent.spool import Spool, dest_tag, entry_for
    root = cfg.spool_dir
    if not os.path.isdir(root):
        return ok("queue", "empty (no spool yet)")
    try:
        spool = Spool(root, cfg.spool_group, create=False)
        tag = dest_tag(cfg.tracker.destination)
        counts = {q: sum(1 for n in os.listdir(spool.path(q)) if entry_for(n, tag))
                  for q in ("new", "deferred", "cur", "dead") if os.path.isdir(spool.path(q))}
        records = len(spool.inbox_names(inbox.agent_keys(cfg.path) + ((key,) if key else ()))) \
            if os.path.isdir(spool.path("inbox")) else 0
        state = spool.read_state(cfg.tracker.destination) if os.path.isdir(spool.path("state")) else {}
    except (OSError, SpoolError) as exc:
        return warn("queue", f"not read: {exc}", "hookagent status, as the spool's owner")
    summary = (f"{records} recorded, {counts.get('new', 0)} pending, {counts.get('deferred', 0)} deferred,"
               f" {counts.get('cur', 0)} in flight, {counts.get('dead', 0)} dead")
    disk = localdisk.check(root)
    if disk:
        what, _, fix = disk.partition("; ")
        return fail("queue", f"{what} ({summary})", fix.split(". ")[0])
    if state.get("held"):
        return fail("queue", f"held: {state['held']} ({summary})",
                    "fix what it says, then hookagent retry --held")
    paused = float(state.get("paused_until") or 0)
    if paused > time.time():
        return warn("queue", f"paused for {paused - time.time():.0f}s more after {state.get('failures', 0)} failure(s),"
                             f" last: {state.get('last_error')} ({summary})", "hookagent status; hookagent retry")
    if counts.get("dead"):
        return warn("queue", f"{summary}: the tracker refused {counts['dead']} entr(y/ies) for good",
                    "hookagent status shows why; hookagent retry --dead sends them again")
    return ok("queue", f"{summary}; not held (hookagent status says more)")
