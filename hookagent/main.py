"""The command line: an argparse tree, dispatch, and the one error handler.

Each subcommand lives in ``hookagent/commands/<verb>.py`` with two functions:
``configure(parser)`` adds its arguments and ``run(args) -> int`` does the work.
Only the chosen command's module is imported, and command modules import heavy packages
(requests, yaml) inside ``run``: `hookagent --help` and `hookagent hook` stay quick.

Exit codes are decided here (pre-commit's ``error_handler.py`` is the model): a command returns
its own status (0, or 1 for "not everything could be done"), a :class:`HookagentError` is one
line ``hookagent: <message>`` and its ``exit_code`` (EXIT_ERROR, or 130 when interrupted), Ctrl-C
anywhere else is EXIT_INTERRUPTED, and any other exception is a bug: one line naming the crash
log, which gets the traceback, and EXIT_CRASH.
"""
from __future__ import annotations

import argparse
import sys

from hookagent.errors import HookagentError

EXIT_ERROR = 2          # configuration, spool, repository or install error (HookagentError)
EXIT_CRASH = 3          # an unexpected exception: a bug; the traceback is in crash_log_path()
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)
CRASH_LOG = "hookagent-crash.log"

COMMANDS: dict[str, str] = {
    "install": "install hookagent's hooks into a git or svn repository",
    "uninstall": "remove hookagent's hooks and put back what was there",
    "hook": "(called by the installed hooks) record commits into the spool",
    "flush": "deliver everything that is due now, then exit",
    "run": "deliver continuously (a long-running agent)",
    "status": "show what is pending, deferred, held, dead and sent",
    "doctor": "check, as the hooks' user, everything delivery needs, one line each with the fix",
    "retry": "re-queue deferred, dead or held entries now",
    "retarget": "send entries queued for another destination to this configuration's",
    "backfill": "send a repository's existing history",
    "devserver": "run a local Tracker-compatible receiver",
    "demo": "show the whole path working in a temporary folder",
}


def _module(verb: str):
    import importlib
    return importlib.import_module(f"hookagent.commands.{verb}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    from hookagent import __doc__ as hookagent_doc, __version__
    parser = argparse.ArgumentParser(prog="hookagent", description=hookagent_doc)
    parser.add_argument("--version", action="version", version=f"hookagent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for verb, help_text in COMMANDS.items():
        if only is not None and verb != only:
            sub.add_parser(verb, help=help_text, add_help=False)
            continue
        p = sub.add_parser(verb, help=help_text, description=help_text)
        _module(verb).configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Only the chosen command's module is imported: `hook` must not pay for the others.
    verb = argv[0] if argv and argv[0] in COMMANDS else None
    try:
        parser = build_parser(only=verb)
        args = parser.parse_args(argv)   # usage errors: argparse's own message and exit 2
        if not args.command:
            parser.print_help()
            return EXIT_ERROR
        return int(_module(args.command).run(args) or 0)
    except HookagentError as exc:
        print(f"hookagent: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("hookagent: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _crashed(exc, verb)


def crash_log_path() -> str:
    import os

    from hookagent.paths import cache_dir
    return os.path.join(cache_dir(), CRASH_LOG)


def _crashed(exc: Exception, command: str | None) -> int:
    """One line on stderr; the traceback appended to the crash log (or, failing that, to stderr)."""
    import os
    import time
    import traceback

    from hookagent import __version__
    what = _one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if len(what) > 300:
        what = what[:299] + "\u2026"
    path = crash_log_path()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    # The command's name, never its arguments: they may hold a token (devserver --token).
    record = (f"=== {stamp} hookagent {__version__}, Python {sys.version.split()[0]},"
              f" pid {os.getpid()}, command {command or '-'}\n{traceback.format_exc()}\n")
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(record)
    except OSError as err:
        print(f"hookagent: unexpected error ({what}); this is a bug in hookagent, and the traceback"
              f" could not be written to {path} ({err.strerror or err}), so here it is:", file=sys.stderr)
        sys.stderr.write(record)
        return EXIT_CRASH
    print(f"hookagent: unexpected error ({what}); this is a bug in hookagent: the traceback is in"
          f" {path} (please include it in a report)", file=sys.stderr)
    return EXIT_CRASH


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
