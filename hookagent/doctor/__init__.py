"""`hookagent doctor`'s checks: will what a commit or a push records reach the tracker?

Each check is a small function returning a :class:`Result` (ok, warn or fail; one line; the fix),
judged as the user who will run the hook (``--user`` for root, else the repository's owner when
root runs it, else whoever runs doctor). In order:

- ``hooks`` (one line per hook, named after it): the file git really runs for this repository
  (``git rev-parse --git-path hooks``, so core.hooksPath and its origin count), whether it is ours,
  executable, or reaches ours through a dispatcher: a ``NAME.d/`` folder (Gitea, Forgejo),
  GitLab's ``custom_hooks/``, gitolite's multi-hook driver (``NAME.*``), husky's ``.husky/_``;
  and whether the hook ours chains (``hookagent-chained/NAME``, or ``NAME.hookagent-orig``) leads
  back to ours (it would run itself without end);
- ``interpreter`` and ``config``: the interpreter baked into our hook starts as that user, imports
  hookagent, reads the configuration (ownercheck's probe, run as that user);
- ``spool``: there (or makeable), a real folder, the user's (or shared through spool_group), not
  world-writable, usable by the user;
- ``token``: configured, readable by the user, not readable by group or others;
- ``tracker``: one authenticated request that changes nothing (``HttpSink.probe``: v5 GET /me,
  v3 GET /activities?limit=1, github-push a HEAD of the endpoint), judged by sinks/http.py's
  rules; the token is never shown;
- ``agent``: one runs (pid file or lock, heartbeat within its deadline), or the hook can start one;
- ``queue``: held, paused, dead entries, what waits, in one line (``hookagent status`` says more).

Nothing here writes: no spool is made, no file of the user's is touched (a spool root made
would be root's). A check that cannot be made says why as a warning.

One module per part: base.py (Result, the user), hooks.py, access.py (interpreter, config, spool,
token), delivery.py (tracker, agent, queue); :func:`run` puts them in order.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Generator, Iterator

from hookagent import hookfiles
from hookagent.doctor.access import Probe, check_config, check_interpreter, check_spool, check_token, probe
from hookagent.doctor.base import FAIL, OK, WARN, Result, Who, user_for, warn
from hookagent.doctor.delivery import check_agent, check_queue, check_tracker
from hookagent.doctor.hooks import check_hook, hook_names, hook_values, place_of
from hookagent.hookfiles import is_ours

__all__ = ["FAIL", "OK", "WARN", "Result", "run"]


def run(path: str, user: str | None = None, config: str | None = None) -> Iterator[Result]:
    """Every check, in order, as its result is known. Raises HookagentError (exit 2) when PATH is
    no repository, --user names nobody, or the configuration does not load."""
    from hookagent import config as config_mod, inbox
    target = hookfiles.detect(path)
    who = user_for(target, user)
    values = yield from _hooks(target, who)
    baked_config = values.get("CFG") or None
    config_path = os.path.abspath(config) if config else baked_config
    if config and baked_config and os.path.abspath(baked_config) != config_path:
        yield warn("hooks", f"the hook was installed with the configuration {baked_config}; checking {config_path}"
                            " as asked", f"hookagent install {target.path} --config {config_path}, if that is the one")
    python = values.get("PY") or sys.executable
    result = probe(python, config_path, who) if os.path.exists(python) else Probe(python)
    yield check_interpreter(python, bool(values.get("PY")), result, target.path, who)
    interpreter_ok = result.answer is not None
    if result.answer is None and os.path.abspath(python) != os.path.abspath(sys.executable):
        result = probe(sys.executable, config_path, who)   # the rest, as that user, with this interpreter
    yield check_config(result, who, config_path)
    config_path = config_path or (result.answer or {}).get("config") or (config_mod.find_config(None) if who.mine else None)
    if config_path and not os.access(config_path, os.R_OK):
        return     # missing, or not ours to read either: the config line said so
    cfg = config_mod.load(config_path)     # ConfigError: exit 2, after the lines so far
    if cfg.path is None and result.answer and result.answer.get("spool"):
        cfg = dataclasses.replace(cfg, spool_dir=str(result.answer["spool"]))   # the user's default spool
    yield check_spool(cfg, result, who, values.get("SPOOL"), target.path)
    if values and values.get("SYNTAX", "tracker") != cfg.tracker.syntax:
        yield warn("hooks", f"the hook was installed for tracker.syntax {values.get('SYNTAX', 'tracker')}, and the"
                            f" configuration now says {cfg.tracker.syntax}: its quick test may drop commits"
                            " that reference issues", f"hookagent install {target.path} (again)")
    yield check_token(cfg, result, who)
    yield check_tracker(cfg)
    key = values.get("KEY") or inbox.agent_key(cfg.path)
    autostart = values.get("AUTOSTART", "yes" if cfg.agent.autostart else "no") == "yes"
    yield check_agent(cfg, key, autostart, interpreter_ok, who)
    yield check_queue(cfg, key)


def _hooks(target: hookfiles.Target, who: Who) -> Generator[Result, None, dict[str, str]]:
    """A line per hook; returns the values baked into ours (those git runs first, else any of ours)."""
    place = place_of(target)
    ours: list[str] = []
    for name, required in hook_names(target):
        result, found = check_hook(target, place, name, who, required)
        yield result
        if found:
            ours.append(found)
    if not ours:
        ours = [p for name, _ in hook_names(target) for p in (os.path.join(place.hooks_dir, name),
                os.path.join(place.default_dir, name)) if is_ours(p)][:1]
    values = hook_values(ours[0]) if ours else {}
    baked = ("PY", "CFG", "SPOOL")
    differ = [p for p in ours[1:] if [hook_values(p).get(k) for k in baked] != [values.get(k) for k in baked]]
    if differ:
        yield warn("hooks", f"{differ[0]} was installed with another interpreter, configuration or spool than"
                            f" {ours[0]}", f"hookagent install {target.path}")
    return values
