"""`hookagent uninstall [PATH]`: remove hookagent's hooks and put back the ones that were there.

It looks wherever install may have put them (hookagent.layouts: the hooks folder, a dispatch
folder, GitLab's custom_hooks, `--hooks-dir DIR`, `--global`). Only files carrying hookagent's id
line are removed; a hook kept in `hookagent-chained/<name>` (or, by installs before it,
`<name>.hookagent-orig`) is put back byte for byte with its mode. In a repository gitolite
manages, ours is removed from its repo-specific hooks (hookagent.gitolite). Nothing installed is
not an error.
"""
from __future__ import annotations

import argparse

from hookagent.commands import add_config_option, add_place_options


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", default=None, metavar="PATH",
                   help="git work tree, bare git repository or svn repository (default: .)")
    add_place_options(p, "uninstall")
    add_config_option(p, help="accepted for symmetry with install; removing hooks needs no configuration")
    p.add_argument("--hooks", metavar="NAME[,NAME]",
                   help="which hooks to remove (default: every hookagent hook found)")
    p.add_argument("--team-hook", action="store_true",
                   help="take the line `install --team-hook` added out of the team's script (.husky/post-commit)")


def run(args: argparse.Namespace) -> int:
    from hookagent import gitolite, hookfiles, hookmanagers, layouts

    target = layouts.target(args.path, hooks_dir=args.hooks_dir, global_=args.global_, verb="uninstall")
    if args.team_hook:       # the line install --team-hook added to the team's script
        hookmanagers.uninstall(target, say=print)
        return 0
    hooks = hookfiles.choose_hooks(target, args.hooks) if args.hooks else None
    if not gitolite.uninstall(target, hooks, say=print):   # ours among gitolite's repo-specific hooks
        hookfiles.uninstall(target, hooks, say=print)
    return 0
