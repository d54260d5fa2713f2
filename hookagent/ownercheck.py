"""Installing as root for another user: check, as the repository's owner, what its hooks need.

A hook runs as whoever commits or pushes; on a server that is the account owning the repository
(``git``), not the root who installs. What root reaches, that account may not: an interpreter
behind a private home (a pyenv build in /root, mode 0700, behind a venv's symlink), a config or
token file only root may read, a spool root made. So install runs a probe as the owner (its
user id, group id and groups, set before the exec) with the interpreter the hook will run: the
kernel answers whether it starts, imports hookagent, reads the configuration and the token file,
and can write (or create) the spool. Mode bits are read only to say *why* (which folder is
closed to the owner); the probe's answer is the verdict.

The probe also answers the values the hook bakes in (spool, agent key, autostart) as the owner's
configuration lookup sees them, which is what the hook will see.

``python -I -c PROBE REQUEST`` runs the probe (``main``): it prints one JSON line.
`hookagent doctor` runs the same probe (:func:`probe_as`, asking for every problem, not the first),
as the user who will run the hook, and prints each :class:`Refusal`'s problem and fix on a line.
"""
from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from hookagent.errors import InstallError

if TYPE_CHECKING:
    from hookagent.config import Config
    from hookagent.hookfiles import Baked, Target

PROBE = "import sys; from hookagent import ownercheck; sys.exit(ownercheck.main(sys.argv[1:]))"
"""What the owner runs: an error importing hookagent ends its stderr with one plain line."""
VENV_FIX = ("install hookagent into a venv made from a Python {name} can run (e.g. /usr/bin/python3 -m venv"
            " /opt/hookagent && /opt/hookagent/bin/pip install hookagent; from a checkout, scripts/setup picks"
            " one), then install again with --python naming its bin/python")


class Refusal(InstallError):
    """What the hooks' user cannot do (``problem``) and the fix (``fix``), apart for `doctor`'s
    lines; ``str()`` is the one line install refuses with."""

    def __init__(self, problem: str, fix: str | None = None, sep: str = "; ") -> None:
        super().__init__(problem + (sep + fix if fix else ""))
        self.problem, self.fix = problem, fix


@dataclass(frozen=True)
class Owner:
    """The account the hooks will run as."""
    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str | None       # None: no entry in the password database
    home: str

    @property
    def who(self) -> str:
        return f"{self.name} (uid {self.uid})" if self.name else f"uid {self.uid}"

    @property
    def login(self) -> str:
        """How a command line names the account."""
        return self.name or str(self.uid)


def account(name: str) -> Owner:
    """The account named ``name`` (or given by its number), or InstallError saying there is none."""
    import pwd
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except KeyError:
        raise InstallError(f"no user {name!r} on this machine; name the account the hooks run as"
                           " (the repository's owner on a server, e.g. git)") from None
    return Owner(entry.pw_uid, entry.pw_gid, tuple(os.getgrouplist(entry.pw_name, entry.pw_gid)), entry.pw_name,
                 entry.pw_dir)


def me() -> Owner:
    """The account this process runs as."""
    import pwd
    uid = os.geteuid()
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return Owner(uid, os.getegid(), tuple(os.getgroups()), None, os.environ.get("HOME", "/"))
    return Owner(uid, os.getegid(), tuple(os.getgroups()), entry.pw_name, entry.pw_dir)


def owner_of(target: Target) -> Owner | None:
    """The owner of the repository (a git repository's git dir, an svn repository's folder) when
    it is not us and we can act as them (we are root); else None."""
    from hookagent import hookfiles
    path = (hookfiles.git_dir_of(target) if target.vcs == "git" else None) or target.path
    try:
        st = os.stat(path)
    except OSError:
        return None
    if os.geteuid() != 0 or st.st_uid == os.geteuid():
        return None
    import pwd
    try:
        entry = pwd.getpwuid(st.st_uid)
    except KeyError:
        return Owner(st.st_uid, st.st_gid, (st.st_gid,), None, "/")
    return Owner(st.st_uid, entry.pw_gid, tuple(os.getgrouplist(entry.pw_name, entry.pw_gid)), entry.pw_name,
                 entry.pw_dir)


def _allowed(st: os.stat_result, owner: Owner, usr: int, grp: int, oth: int) -> bool:
    if st.st_uid == owner.uid:
        return bool(st.st_mode & usr)
    if st.st_gid == owner.gid or st.st_gid in owner.groups:
        return bool(st.st_mode & grp)
    return bool(st.st_mode & oth)


BITS = {"r": (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH), "x": (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)}


def blocked_at(path: str, owner: Owner, want: str) -> tuple[str, bool] | None:
    """Where the mode bits stop ``owner`` on the way to ``path`` (symlinks followed): (the first
    folder it cannot search, True), or (the file, False) when it lacks ``want`` ("r" or "x") on
    the file itself; None when the bits allow it (an ACL or a mount option may still say no)."""
    todo = os.path.abspath(path)
    for _ in range(40):                   # a symlink chain: a venv's python, then python3, then the base
        folder = "/"
        for part in todo.split("/")[1:-1]:
            folder = os.path.join(folder, part)
            try:
                st = os.stat(folder)
            except OSError:
                return None
            if not _allowed(st, owner, *BITS["x"]):
                return folder, True
        if not os.path.islink(todo):
            break
        todo = os.path.normpath(os.path.join(os.path.dirname(todo), os.readlink(todo)))
    try:
        st = os.stat(todo)
    except OSError:
        return None
    return None if _allowed(st, owner, *BITS[want]) else (todo, False)


def _probe_env(owner: Owner) -> dict[str, str]:
    """The environment of a hook run by the owner: its home, no XDG folders or HOOKAGENT_CONFIG of ours."""
    env = {"PATH": os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin", "HOME": owner.home}
    if owner.name:
        env.update(USER=owner.name, LOGNAME=owner.name)
    for var in ("LANG", "LC_ALL", "LC_CTYPE"):
        if var in os.environ:
            env[var] = os.environ[var]
    return env


def probe_as(owner: Owner, python: str, config: str | None, *, every: bool = False) -> dict[str, Any]:
    """The probe's answer, run as ``owner`` (as ourselves, in our environment, when that is us)
    with ``python``: the values to bake in, or ``fail`` and what failed (the first problem; with
    ``every``, also ``fails``: every problem found after the configuration was read). Raises
    :class:`Refusal` when the interpreter cannot start as ``owner`` or cannot import hookagent."""
    from hookagent import process
    from hookagent.errors import ProcessError
    request = json.dumps({"config": config, "config_exists": bool(config and os.path.exists(config)),
                          "every": every})
    mine = owner.uid == os.geteuid()
    ids = None if mine else process.Identity(owner.uid, owner.gid, owner.groups)
    try:
        result = process.run([python, "-I", "-c", PROBE, request], cwd="/", env=None if mine else _probe_env(owner),
                             check=False, timeout=60, user=ids)
    except ProcessError as exc:
        if isinstance(exc.__cause__, OSError) and exc.__cause__.errno == errno.EACCES:   # the exec, as the owner
            raise _not_executable(python, owner) from None
        raise Refusal(f"the interpreter {python} cannot run as {owner.who}: {exc}") from None
    lines = result.stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        answer: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise _cannot_import(python, owner, result.stderr) from None
    return answer


def check(owner: Owner, python: str, config: str | None, say: Callable[[str], None] = print) -> Baked:
    """Run the probe as ``owner`` with ``python``. Raises InstallError naming, in one line, what the
    owner cannot do and the fix; else says what was checked and returns the values to bake in, as
    the owner sees them."""
    from hookagent.errors import warn
    from hookagent.hookfiles import Baked
    answer = probe_as(owner, python, config)
    if "fail" in answer:
        raise refusal(answer, owner)
    token = answer.get("token_shared")
    if token:
        fix = f"chmod 600 {token}" if answer.get("token_owned") else f"chown {owner.login} {token} && chmod 600 {token}"
        warn(f"tracker.token_file: {token} is readable by group or others; the agent reads it as"
             f" {owner.who}: run {fix}")
    read = [p for p in (answer.get("config"), answer.get("token")) if p]
    say(f"checked as {owner.who}, the repository's owner: it can run {python}"
        f"{''.join(f', read {p}' for p in read)} and use the spool {answer['spool']}")
    return Baked(str(answer["spool"]), str(answer["key"]), bool(answer["autostart"]))


def _links(python: str) -> str:
    real = os.path.realpath(python)
    return f" (it links to {real})" if real != os.path.abspath(python) else ""


def _not_executable(python: str, owner: Owner) -> Refusal:
    head = f"the interpreter {python} is not executable by {owner.who}"
    fix = VENV_FIX.format(name=owner.login)
    blocked = blocked_at(python, owner, "x")
    if blocked and blocked[1]:
        return Refusal(f"{head}: {blocked[0]} is closed to it{_links(python)}", fix)
    if blocked:
        return Refusal(f"{head}{_links(python)}", f"run chmod o+x {blocked[0]}, or {fix}", ": ")
    return Refusal(f"{head}{_links(python)}", fix)


def _cannot_import(python: str, owner: Owner, stderr: bytes) -> Refusal:
    """The probe printed no answer: hookagent (or one of its parts) does not import for the owner."""
    from hookagent import process
    last = (stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
    why = ""
    try:
        where = process.run([python, "-I", "-c", "import hookagent; print(hookagent.__file__)"], cwd="/",
                            check=False, timeout=60).stdout.decode("utf-8", "replace").strip()
    except Exception:
        where = ""
    if where:
        blocked = blocked_at(where, owner, "r")
        if blocked:
            why = f"; {blocked[0]} is closed to it" if blocked[1] else f"; it cannot read {blocked[0]}"
    return Refusal(f"the interpreter {python} cannot import hookagent when {owner.who} runs it ({last}{why})",
                   f"install hookagent where {owner.login} can read it (not an editable install from a private"
                   f" folder), or {VENV_FIX.format(name=owner.login)}")


def _group(owner: Owner) -> str:
    import grp
    try:
        return grp.getgrgid(owner.gid).gr_name
    except KeyError:
        return str(owner.gid)


def _closed(path: str, owner: Owner) -> str | None:
    """The folder on the way to path that is closed to owner, if the mode bits tell one."""
    blocked = blocked_at(path, owner, "r")
    return blocked[0] if blocked and blocked[1] else None


def refusal(answer: dict[str, Any], owner: Owner) -> Refusal:
    """What a ``fail`` of the probe's answer means for ``owner``, and the fix."""
    what, path = answer["fail"], answer.get("path") or ""
    error = str(answer.get("error") or "")
    name = owner.login
    if what == "token" or (what == "config" and answer.get("errno") == "EACCES"):
        closed = _closed(path, owner)
        where = f"; {closed} is closed to it" if closed else ""
        if what == "config":
            head = f"{owner.who} cannot read the config {path} ({error}{where}); the hooks and the agent read it as {name}"
            fix = f"chgrp {_group(owner)} {path} && chmod g+r {path}"
        else:
            head = f"{owner.who} cannot read the token file {path} ({error}{where}); the agent reads it as {name}"
            fix = f"chown {name} {path} && chmod 600 {path}"
        if closed:
            return Refusal(head, f"move it to a folder {name} can enter, then {fix}", ": ")
        return Refusal(head, fix, ": ")
    if what == "config":
        return Refusal(f"as {owner.who}, the configuration is refused: {error}")
    if what == "spool-create":
        mode = "2770" if answer.get("group") else "700"
        group = f" -g {answer['group']}" if answer.get("group") else ""
        return Refusal(f"{owner.who} cannot create the spool {path}: {answer.get('at')} is not writable by it",
                       f"create it for {name}: install -d -o {name}{group} -m {mode} {path}")
    if what == "spool":
        fix = (f"chgrp -R {answer['group']} {path} && chmod -R g+rwX {path}, and make {name} a member of"
               f" {answer['group']}" if answer.get("group") else f"give it to {name}: chown -R {name} {path}")
        return Refusal(f"{owner.who} cannot use the spool {path} ({error})", fix)
    return Refusal(f"as {owner.who}, the check of what the hooks need failed: {error}")


# --- the probe, run as the owner -----------------------------------------------------------------

def probe(config: str | None, config_exists: bool, every: bool = False) -> dict[str, Any]:
    """What the owner's hook and agent will meet, as one JSON-able answer: the first problem, or
    with ``every`` the answer and ``fails``, every problem found once the configuration is read."""
    from hookagent import config as config_mod, inbox
    from hookagent.errors import ConfigError
    if config and not config_exists:         # not written yet (install warned): the defaults until then
        cfg = config_mod.Config()
    else:
        path = config_mod.find_config(config)
        if path:
            try:
                open(path, "rb").close()
            except OSError as exc:
                return {"fail": "config", "path": path, "errno": errno.errorcode.get(exc.errno or 0),
                        "error": exc.strerror}
        try:
            cfg = config_mod.load(config)
        except ConfigError as exc:
            return {"fail": "config", "path": path, "error": str(exc)}
    answer: dict[str, Any] = {"spool": cfg.spool_dir, "key": inbox.agent_key(cfg.path or config),
                              "autostart": cfg.agent.autostart, "config": cfg.path}
    fails = []
    token = cfg.tracker.token_file
    # The hook's user reads the token only in the agents its hooks start: with agent.autostart
    # off, a service (`hookagent run`, its own user, the token as its credential) delivers.
    if token and not cfg.tracker.token_env and cfg.agent.autostart:
        try:
            with open(token, "rb") as fh:
                st = os.fstat(fh.fileno())
        except OSError as exc:
            fails.append({"fail": "token", "path": token, "error": exc.strerror})
        else:
            if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                answer.update(token_shared=token, token_owned=st.st_uid == os.getuid())
            answer["token"] = token
    spool = _spool_problem(cfg)
    if spool:
        fails.append(spool)
    if fails and not every:
        return fails[0]
    return {**answer, "fails": fails}


def _spool_problem(cfg: Config) -> dict[str, Any] | None:
    """Can this user use the spool (or create it, as the hook's first record does)?"""
    from hookagent.errors import SpoolError
    from hookagent.spool import QUEUES, Spool
    root = os.path.abspath(cfg.spool_dir)
    failure = {"fail": "spool", "path": root, "group": cfg.spool_group}
    try:
        os.lstat(root)
    except FileNotFoundError:
        folder = os.path.dirname(root)
        while True:
            try:
                os.stat(folder)
                break
            except FileNotFoundError:
                folder = os.path.dirname(folder)
            except OSError:
                return {**failure, "fail": "spool-create", "at": folder}
        if not os.access(folder, os.W_OK | os.X_OK):
            return {**failure, "fail": "spool-create", "at": folder}
        return None
    except OSError as exc:
        return {**failure, "error": exc.strerror}
    try:
        Spool(root, cfg.spool_group, create=False)
    except SpoolError as exc:
        return {**failure, "error": str(exc).split(";")[0]}
    for folder in (root, *(os.path.join(root, q) for q in QUEUES)):
        if os.path.isdir(folder) and not os.access(folder, os.W_OK | os.X_OK):
            return {**failure, "error": f"{folder} is not writable by it"}
    for name in (os.path.join(root, "ledger.sqlite3"), cfg.log_file):
        if os.path.exists(name) and not os.access(name, os.R_OK | os.W_OK):
            return {**failure, "error": f"{name} is not writable by it"}
    return None


def main(argv: list[str]) -> int:
    request = json.loads(argv[0])
    try:
        answer = probe(request.get("config"), bool(request.get("config_exists")), bool(request.get("every")))
    except Exception as exc:   # reported by install in one line
        answer = {"fail": "probe", "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(answer))
    return 0

