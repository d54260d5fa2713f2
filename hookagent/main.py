"""The command line: an argparse tree and dispatch, nothing else.

Each subcommand lives in ``hookagent/commands/<verb>.py`` with two functions:
``configure(parser)`` adds its arguments and ``run(args) -> int`` does the work.
Command modules import heavy packages (requests, yaml, git) inside ``run`` only, because the
``hook`` command shares this entry point and runs inside every commit.
"""
from __future__ import annotations

import sys
TYPE_CHECKING = False  # typing costs the hook ~2.5 ms to import

from hookagent.errors import HookagentError

if TYPE_CHECKING:
    import argparse

COMMANDS: dict[str, str] = {
    "install": "install hookagent's hooks into a git or svn repository",
    "uninstall": "remove hookagent's hooks and put back what was there",
    "hook": "(called by the installed hooks) record commits into the spool",
    "flush": "deliver everything that is due now, then exit",
    "run": "deliver continuously (a long-running agent)",
    "status": "show what is pending, deferred, held, dead and sent",
    "retry": "re-queue deferred, dead or held entries now",
    "backfill": "send a repository's existing history",
    "devserver": "run a local Tracker-compatible receiver",
    "demo": "show the whole path working in a temporary folder",
}


def _module(verb: str):
    import importlib
    return importlib.import_module(f"hookagent.commands.{verb}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    import argparse

    from hookagent import __version__
    parser = argparse.ArgumentParser(prog="hookagent", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hookagent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for verb, help_text in COMMANDS.items():
        if only is not None and verb != only:
            sub.add_parser(verb, help=help_text, add_help=False)
            continue
        try:
            mod = _module(verb)
        except ModuleNotFoundError:
            continue  # not built yet
        p = sub.add_parser(verb, help=help_text, description=help_text)
        mod.configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Only the chosen command's module is imported: `hook` must not pay for the others.
    verb = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(only=verb)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(_module(args.command).run(args) or 0)
    except HookagentError as exc:
        print(f"hookagent: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hookagent: interrupted", file=sys.stderr)
        return 130
