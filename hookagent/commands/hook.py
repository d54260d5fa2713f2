"""`hookagent hook NAME -- ARGS`: what the installed hooks run for post-receive and svn's
post-revprop-change (and what hooks of older versions ran for each commit); `hookagent hook
post-commit` from PATH is the line team hook tools run (husky's .husky/post-commit, the
pre-commit hook in .pre-commit-hooks.yaml: see hookagent.hookmanagers). Never fails a commit."""
from __future__ import annotations

import argparse

from hookagent.commands import add_config_option
from hookagent.hook.run import HOOKS


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", choices=HOOKS, help="which hook is running")
    add_config_option(p, help="configuration file (baked in at install)")
    p.add_argument("--vcs", choices=("git", "svn"),
                   help="which system runs the hook (rendered in; hooks of the previous version did not"
                        " pass it: then an svn post-commit is told by its arguments, REPOS REV)")
    p.add_argument("--prepare", action="store_true",
                   help="make the spool given by --spool and check that the configuration names it")
    p.add_argument("--spool", help="with --prepare: the spool the hook was installed with")
    p.add_argument("args", nargs="*", help="the hook's own arguments")


def run(args: argparse.Namespace) -> int:
    from hookagent.hook import run as hook_run
    if args.prepare:
        return hook_run.prepare(args.name, args.config, args.spool or "", args.args, args.vcs or "git")
    return hook_run.run(args.name, args.config, args.args, vcs=args.vcs)
