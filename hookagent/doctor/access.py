"""What the hook's user must be able to do: run the interpreter baked into our hook (which must
import hookagent), read the configuration and the token file, use the spool. The verdict is
ownercheck's probe, run as that user; mode bits only say why, and what is too open."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any

from hookagent import ownercheck
from hookagent.config import Config
from hookagent.doctor.base import Result, Who, fail, ok, warn
from hookagent.ownercheck import Refusal


@dataclass
class Probe:
    """What ownercheck's probe answered as the user (None: it could not run)."""
    python: str
    answer: dict[str, Any] | None = None
    refusal: Refusal | None = None

    @property
    def complete(self) -> bool:
        """Whether it got past the configuration (so it read the token file and the spool too)."""
        return self.answer is not None and not self.fails("config")

    def fails(self, what: str) -> list[dict[str, Any]]:
        if self.answer is None:
            return []
        found = self.answer.get("fails")
        if found is None:
            found = [self.answer] if "fail" in self.answer else []
        return [f for f in found if f.get("fail", "").split("-")[0] == what]


def probe(python: str, config: str | None, who: Who) -> Probe:
    try:
        return Probe(python, ownercheck.probe_as(who.owner, python, config, every=True))
    except Refusal as exc:
        return Probe(python, refusal=exc)


def check_interpreter(python: str, baked: bool, result: Probe, repo: str, who: Who) -> Result:
    whence = "baked into the hook" if baked else "doctor's own: no hook of ours names one"
    if not os.path.exists(python):
        return fail("interpreter", f"{python}, the interpreter {whence}, is missing: the hook can neither check"
                                   " the configuration nor start an agent",
                    f"hookagent install {repo} --python INTERPRETER (one that has hookagent; for a checkout,"
                    " .venv/bin/python after scripts/setup)")
    if result.refusal is not None:
        return fail("interpreter", result.refusal.problem, result.refusal.fix)
    return ok("interpreter", f"{python} ({whence}) starts as {who} and imports hookagent")


def check_config(result: Probe, who: Who, path: str | None) -> Result:
    if path and not os.path.exists(path):
        return fail("config", f"{path} does not exist: the hooks record into the default spool, and no agent can"
                              " deliver until it does",
                    f"create it (see config.example.yaml), readable by {who.owner.login}")
    if result.answer is None:
        return warn("config", f"not checked as {who}: no interpreter that {who.owner.login} can run imports hookagent",
                    "fix the interpreter first")
    for failure in result.fails("config"):
        refused = ownercheck.refusal(failure, who.owner)
        return fail("config", refused.problem, refused.fix or "fix the configuration")
    path = result.answer.get("config")
    if not path:
        return warn("config", f"no configuration file: {who}'s hooks and agent use the defaults, which send nowhere",
                    "write one (see config.example.yaml) and install again with --config")
    return ok("config", f"{path} is read by {who}")


def _mode(st: os.stat_result) -> str:
    return f"{stat.S_IMODE(st.st_mode):04o}"


def _user_name(uid: int) -> str:
    import pwd
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def check_spool(cfg: Config, result: Probe, who: Who, baked_spool: str | None, repo: str) -> Result:
    root = os.path.abspath(cfg.spool_dir)
    if baked_spool and os.path.abspath(baked_spool) != root:
        return warn("spool", f"the hook was installed with the spool {baked_spool}, and the configuration now names"
                             f" {root}: each record goes through Python to the new one",
                    f"hookagent install {repo}")
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        for failure in result.fails("spool"):
            refused = ownercheck.refusal(failure, who.owner)
            return fail("spool", refused.problem, refused.fix)
        return ok("spool", f"{root} does not exist yet; {who} can make it (the hook's first record does)")
    except OSError as exc:
        return fail("spool", f"cannot look at {root} ({exc.strerror})", "check the folders on its way")
    if stat.S_ISLNK(st.st_mode):
        return fail("spool", f"{root} is a symlink (to {os.readlink(root)}): the hook and the agent refuse it",
                    "point spool_dir at the real folder")
    if not stat.S_ISDIR(st.st_mode):
        return fail("spool", f"{root} is not a folder", "fix spool_dir")
    if st.st_mode & stat.S_IWOTH:
        return fail("spool", f"{root} is world-writable (mode {_mode(st)}): the hook and the agent refuse it",
                    f"chmod o-rwx {root}")
    gid = _group_id(cfg.spool_group)
    shared = gid is not None and st.st_gid == gid and (gid == who.owner.gid or gid in who.owner.groups)
    if st.st_uid != who.owner.uid and not shared:
        share = (f" (nor shared with {who.owner.login} through spool_group {cfg.spool_group}: chgrp -R"
                 f" {cfg.spool_group} {root} and make {who.owner.login} a member)" if cfg.spool_group else "")
        return fail("spool", f"{root} belongs to {_user_name(st.st_uid)}, not to {who}{share}",
                    f"chown -R {who.owner.login} {root}, or use a spool_dir of {who.owner.login}'s own")
    for failure in result.fails("spool"):
        refused = ownercheck.refusal(failure, who.owner)
        return fail("spool", refused.problem, refused.fix)
    if cfg.spool_group and gid is not None and st.st_gid != gid:
        return warn("spool", f"{root} is not in the group {cfg.spool_group} that spool_group names",
                    f"chgrp -R {cfg.spool_group} {root} && chmod -R g+rwX {root}")
    if not cfg.spool_group and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return warn("spool", f"{root} is open to its group or others (mode {_mode(st)}): they can read the commit"
                             " messages in it", f"chmod 700 {root}")
    return ok("spool", f"{root} belongs to {_user_name(st.st_uid)}, mode {_mode(st)}")


def _group_id(name: str | None) -> int | None:
    if not name:
        return None
    import grp
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def check_token(cfg: Config, result: Probe, who: Who) -> Result:
    t = cfg.tracker
    if t.api == "stdout":
        return ok("token", "none needed (tracker.api is stdout)")
    if t.token_env:
        if who.mine and not os.environ.get(t.token_env, "").strip():
            return warn("token", f"tracker.token_env names ${t.token_env}, which is empty or unset here",
                        f"export {t.token_env} in the environment the agent runs in")
        return ok("token", f"read from ${t.token_env} in the agent's environment")
    if not cfg.agent.autostart and (t.token_file or t.token_credential):
        # The hooks only record; the agent that delivers (a service) reads the token as its user.
        via = (f"the systemd credential {t.token_credential} (tracker.token_credential)" if t.token_credential
               else t.token_file)
        return ok("token", f"{via}, read by the agent that delivers (`hookagent run`), not by {who}:"
                           " agent.autostart is off")
    if not t.token_file:
        if t.token_credential:
            return fail("token", f"only the systemd credential {t.token_credential} (tracker.token_credential):"
                                 " the agents the hooks start (agent.autostart) have none",
                        "set agent.autostart: false where the service delivers (then install again), or name a"
                        " file the hooks' user can read in tracker.token_file")
        if t.token:
            return warn("token", "written in the configuration file", "move it to a file of mode 0600 named by"
                                                                     " tracker.token_file")
        return fail("token", "no API token configured: the tracker refuses every commit",
                    "put the token in a file (mode 0600) and name it in tracker.token_file")
    path = t.token_file
    try:
        st = os.stat(path)
    except OSError as exc:
        return fail("token", f"{path} cannot be read ({exc.strerror})",
                    f"create it (mode 0600, owned by {who.owner.login}) with the API token on one line")
    for failure in result.fails("token"):
        refused = ownercheck.refusal(failure, who.owner)
        return fail("token", refused.problem, refused.fix)
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        fix = f"chmod 600 {path}" if st.st_uid == who.owner.uid else f"chown {who.owner.login} {path} && chmod 600 {path}"
        return warn("token", f"{path} is readable by its group or others (mode {_mode(st)})", fix)
    read = f", read by {who}" if result.complete else ""
    return ok("token", f"{path}, mode {_mode(st)}{read}")
