"""`hookagent hook NAME -- ARGS`: what the installed hooks run. Never fails, never waits.

Records the commits into the spool and starts a detached `hookagent flush`. Anything that goes
wrong becomes one line on stderr and exit status 0: a post hook cannot undo a commit or a push,
and a tracker being down must never be a developer's problem at commit time.
Imports stay light here (no yaml, requests or git modules): this runs inside every commit.
"""
from __future__ import annotations

import os
from types import SimpleNamespace
TYPE_CHECKING = False  # typing costs the hook ~2.5 ms to import

if TYPE_CHECKING:
    import argparse
import sys

HOOKS = ("post-commit", "post-receive", "post-revprop-change")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", choices=HOOKS, help="which hook is running")
    p.add_argument("--config", help="configuration file (baked in at install)")
    p.add_argument("args", nargs="*", help="the hook's own arguments")


def run(args: argparse.Namespace) -> int:
    try:
        from hookagent import hookconf
        view = hookconf.load(args.config)
        if args.name == "post-commit" and args.args:   # svn: REPOS REV [TXN]
            from hookagent.hooksvn import post_commit as handler
        elif args.name == "post-revprop-change":
            from hookagent.hooksvn import post_revprop_change as handler
        elif args.name == "post-receive":
            from hookagent.hookgit import post_receive as handler
        else:
            from hookagent.hookgit import post_commit as handler
        queued = handler(view, args.args)
    except OSError as exc:  # full disk, read-only spool, permissions
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"hookagent: {args.name}: could not record the commit: {exc.strerror}{where};"
              " the commit itself is fine; once fixed, `hookagent backfill` sends what was missed",
              file=sys.stderr)
    except Exception as exc:  # the hook path never fails a commit
        print(f"hookagent: {args.name}: could not record the commit: {_one_line(exc)};"
              " the commit itself is fine; once fixed, `hookagent backfill` sends what was missed",
              file=sys.stderr)
    else:
        if not (queued and view.get("autostart", True)):
            return 0
        try:
            start_agent(view)
            return 0
        except Exception as exc:   # recorded; only the delivery waits
            print(f"hookagent: {args.name}: recorded, but could not start the agent"
                  f" ({_one_line(exc)}); run `hookagent flush` to deliver", file=sys.stderr)
    # svn shows post-commit's stderr to the client only when the hook exits non-zero (as a warning
    # after "Committed revision N."); the rendered hook turns this status into exit 1 for svn.
    # Not for post-revprop-change: svn would make `svn propset` itself fail (the edit stands).
    return REPORTED if args.name == "post-commit" and args.args else 0


REPORTED = 3
"""Exit status of an svn post-commit run that printed its one line about a problem (hook-tmpl)."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def parse(argv: list[str]) -> SimpleNamespace | None:
    """The hook's arguments without argparse (its import and parser cost ~15 ms per commit):
    ``[--config CFG] NAME [--config CFG] [--] ARGS...``. None when they do not fit."""
    config, name, rest = None, None, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest.extend(argv[i + 1:])
            break
        if a == "--config" and i + 1 < len(argv):
            config = argv[i + 1]
            i += 2
            continue
        if a.startswith("--config="):
            config = a[len("--config="):]
        elif a.startswith("-"):
            return None
        elif name is None:
            name = a
        else:
            rest.append(a)
        i += 1
    if name not in HOOKS:
        return None
    return SimpleNamespace(command="hook", name=name, config=config, args=rest)


def flush_running(spool_dir: str, destination: str) -> bool:
    """True when a background flush for ``destination`` holds its lock. It re-checks the queue
    after letting the lock go (commands/flush.py), and our entry is already written: it will
    pick it up. While the tracker is down it stays, sleeping through the backoff."""
    import fcntl
    from hookagent.spool import flush_lock_path
    try:
        fd = os.open(flush_lock_path(spool_dir, destination), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def start_agent(view: dict) -> None:
    """Start `hookagent flush --background` detached: new session, stdin from /dev/null, stdout
    and stderr to the agent log, no other descriptor of git's inherited. posix_spawn, because
    importing subprocess alone costs the hook several milliseconds."""
    if view.get("spool_dir") and flush_running(view["spool_dir"], view.get("destination") or ""):
        return
    cmd = [sys.executable, "-I", "-m", "hookagent", "flush", "--background", "--quiet"]
    if view.get("config_path"):
        cmd += ["--config", view["config_path"]]
    from hookagent.spool import open_log
    try:
        log = open_log(view["log_file"], view["spool_dir"], view.get("spool_group"))
    except (OSError, KeyError):
        log = os.open(os.devnull, os.O_WRONLY)
    try:
        _no_inherited_fds(keep=log)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}   # not this repo's
        os.posix_spawn(sys.executable, cmd, env, setsid=True, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, log, 1),
            (os.POSIX_SPAWN_DUP2, log, 2),
        ])
    finally:
        os.close(log)


def _no_inherited_fds(keep: int) -> None:
    """Mark every descriptor above 2 close-on-exec, so the detached agent holds none of git's
    pipes (git, or an ssh session, would wait for them to close)."""
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 256))
    for fd in fds:
        if fd > 2 and fd != keep:
            try:
                if os.get_inheritable(fd):
                    os.set_inheritable(fd, False)
            except OSError:
                pass
