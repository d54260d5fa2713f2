"""`hookagent hook NAME -- ARGS`: what the installed hooks run. Never fails, never waits.

Records the commits into the spool and starts a detached `hookagent flush`. Anything that goes
wrong becomes one line on stderr and exit status 0: a post hook cannot undo a commit or a push,
and a tracker being down must never be a developer's problem at commit time.
Imports stay light here (no yaml, requests or git modules): this runs inside every commit.
"""
from __future__ import annotations

import argparse
import os
import subprocess
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
        if queued and view.get("autostart", True):
            start_agent(view)
    except OSError as exc:  # full disk, read-only spool, permissions
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"hookagent: {args.name}: could not record the commit: {exc.strerror}{where};"
              " the commit itself is fine; once fixed, `hookagent backfill` sends what was missed",
              file=sys.stderr)
    except Exception as exc:  # the hook path never fails a commit
        print(f"hookagent: {args.name}: {_one_line(exc)}; the commit itself is fine"
              " (run `hookagent status` to see the queue)", file=sys.stderr)
    return 0


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def start_agent(view: dict) -> None:
    """Start `hookagent flush --background` detached: new session, no stdio tied to git."""
    cmd = [sys.executable, "-I", "-m", "hookagent", "flush", "--background", "--quiet"]
    if view.get("config_path"):
        cmd += ["--config", view["config_path"]]
    try:
        log = os.open(view.get("log_file") or os.devnull, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError:
        log = os.open(os.devnull, os.O_WRONLY)
    try:
        subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True,
                         start_new_session=True, cwd="/")
    finally:
        os.close(log)
