"""`hookagent doctor [PATH]`: check, as the user who will run the hook, everything a commit or a
push needs to reach the tracker, one line per check with the fix (hookagent/doctor.py).

Exit status: 0 when nothing would stop delivery (warnings allowed), 1 when something would (a
FAIL line), 2 when PATH is no repository, --user names nobody or the configuration does not load.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from hookagent.commands import add_config_option


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", default=".", metavar="PATH",
                   help="git work tree, bare git repository or svn repository (default: .)")
    add_config_option(p, help="configuration file to check (default: the one baked into the installed hook,"
                              " else the hook's default lookup)")
    p.add_argument("--user", metavar="NAME",
                   help="check as this user, who runs the hooks (root only; default: the repository's owner"
                        " when run as root, else you)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from hookagent import doctor
    results = []
    for result in doctor.run(args.path, user=args.user, config=args.config):
        results.append(result)
        if not args.json:
            print(result.line(), flush=True)
    failed = any(r.level == doctor.FAIL for r in results)
    if args.json:
        json.dump({"path": os.path.abspath(args.path), "ok": not failed, "checks": [r.as_dict() for r in results]}, sys.stdout,
                  indent=2)
        print()
    return 1 if failed else 0
