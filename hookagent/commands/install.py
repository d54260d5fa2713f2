"""`hookagent install [PATH]`: put hookagent's hooks into a git or svn repository.

A git work tree (or linked worktree) gets post-commit, post-rewrite and post-merge, a bare repository
post-receive, an svn repository post-commit (`--hooks` chooses others). The hook is rendered with the absolute path of
the interpreter (this one, or --python) and of the config (--config, else $HOOKAGENT_CONFIG now,
else none: the hook then looks in the default places). Where each hook goes is
hookagent.layouts': a platform's dispatch folder (Gitea, Forgejo), GitLab's custom_hooks, else
the hooks folder, where a hook already there is kept and chained. `--hooks-dir DIR` installs
into a folder of hooks many repositories run; `--global` into the folder a global or system
core.hooksPath names (refused without it); `--print` shows the hook and where, writing nothing.
Where core.hooksPath is a folder of the work tree (husky, a committed .githooks/), nothing is
written there: install refuses with the line to add to the team's script, or adds it
(--team-hook; hookagent.hookmanagers). In a repository gitolite manages, the hook goes among
its repo-specific hooks instead (hookagent.gitolite), where gitolite keeps it.
Root installing into another user's repository checks, as that user, what the hooks will need
(hookagent.ownercheck), and refuses in one line when they would fail.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

from hookagent.commands import add_config_option, add_place_options
from hookagent.errors import InstallError, warn


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", default=None, metavar="PATH",
                   help="git work tree, bare git repository or svn repository (default: .)")
    add_place_options(p, "install")
    add_config_option(p, help="configuration file the hook uses (default: $HOOKAGENT_CONFIG now, else"
                              " the hook's default lookup)")
    p.add_argument("--hooks", metavar="NAME[,NAME]",
                   help="which hooks: git post-commit,post-rewrite,post-merge,post-receive; svn"
                        " post-commit,post-revprop-change (default: post-commit,post-rewrite,post-merge for a"
                        " work tree, post-commit for svn,"
                        " post-receive for a bare repository)")
    p.add_argument("--python", metavar="INTERPRETER",
                   help=f"interpreter the hook runs hookagent with (default: this one, {sys.executable})")
    p.add_argument("--print", action="store_true", dest="print_only",
                   help="print the hook that would be written (on stdout) and where (on stderr); write nothing")
    p.add_argument("--no-owner-check", action="store_true",
                   help="root installing into another user's repository checks, as that user, that the hooks"
                        " can run the interpreter and read the config, the token file and the spool, and"
                        " refuses when they cannot; skip that (for hooks that run as another user than the"
                        " repository's owner, e.g. svn served by Apache)")
    p.add_argument("--team-hook", action="store_true",
                   help="where core.hooksPath is a folder of the work tree (husky's .husky/_, a committed"
                        " .githooks/), add one portable line running `hookagent hook post-commit` to the"
                        " team's script (.husky/post-commit) instead of refusing; commit it")


def run(args: argparse.Namespace) -> int:
    from hookagent import gitolite, hookfiles, hookmanagers, layouts, ownercheck

    target = layouts.target(args.path, hooks_dir=args.hooks_dir, global_=args.global_, verb="install")
    if args.print_only and args.team_hook:
        raise InstallError("--print writes nothing, and --team-hook writes into the team's script; give one of them")
    # husky, a committed hooks folder: refused with the line to add, or the line added (--team-hook)
    if hookmanagers.install(target, team_hook=args.team_hook, config=hookfiles.resolve_config(args.config),
                            say=print):
        return 0
    hooks = hookfiles.choose_hooks(target, args.hooks)
    # gitolite puts its own hooks back into a repository it manages: ours goes where it keeps them.
    site = gitolite.find(target, hooks)
    python = hookfiles.resolve_python(args.python)
    config = hookfiles.resolve_config(args.config)
    svnlook = None
    if target.vcs == "svn":
        found = shutil.which("svnlook")
        svnlook = os.path.abspath(found) if found else None
        if svnlook is None:
            warn("svnlook not found on PATH, and svn runs hooks with an empty environment: install"
                  " subversion's tools and install again (or set svn.reader: pysvn in the config)")
    if config and not os.path.isfile(config):
        warn(f"config {config} does not exist yet; until it does, the hook records commits in the"
             " default spool and says on each commit that it cannot read the config; create it"
             " (see config.example.yaml), then install again if it names another spool_dir")
    if config and os.path.isfile(config):
        from hookagent import config as config_mod
        try:
            config_mod.load(config)  # a bad config is refused now, not on every commit later
        except ImportError:          # `python3 installer.py` without PyYAML: baked() asks the hook's interpreter
            pass
    importable = hookfiles.can_import_hookagent(python)
    if not importable:
        better = None if args.python else hookfiles.find_python_with_hookagent()
        if better is None:
            warn(f"{python} cannot import hookagent: until it can, the hook records nothing and says"
                  " so on every commit; install hookagent for it, or install again with --python"
                  " naming the interpreter that has it (for a checkout: .venv/bin/python after"
                  " scripts/setup)")
        else:
            print(f"note: {python} cannot import hookagent; the hook will use {better}")
            python, importable = better, True
    if args.print_only:     # nothing written: no owner check (its probe may make the spool)
        settings = hookfiles.baked(config, python)
        planned = gitolite.target(site) if site is not None else target
        for item in hookfiles.plan(planned, hooks, python=python, config=config, svnlook=svnlook, settings=settings):
            print(hookfiles.where_said(item), file=sys.stderr)
            sys.stdout.write(item.text)
            if site is not None:
                print(f"note: gitolite runs it once `{site.option(item.place.hook)}` is under `repo {site.repo}` in"
                      " gitolite.conf and `gitolite setup` has linked it", file=sys.stderr)
        return 0
    owner = None if args.no_owner_check or not importable else ownercheck.owner_of(target)
    if owner is not None:   # root, for someone else: what the hooks need, checked as that user
        settings = ownercheck.check(owner, python, config, say=print)
    else:
        settings = hookfiles.baked(config, python)
    pending = None
    if site is not None:
        pending = gitolite.install(site, hooks, python=python, config=config, settings=settings, say=print)
    else:
        hookfiles.install(target, hooks, python=python, config=config, svnlook=svnlook, settings=settings,
                          say=print)
    # The repository named: its refs as they are now count as processed.
    if target.kind in ("git-worktree", "git-bare") and "post-receive" in hooks:
        from hookagent.hook.push import seed_snapshot
        note = seed_snapshot(config, target.path)
        if note:
            warn(note)
    if "post-revprop-change" in hooks:
        pre = os.path.join(target.hooks_dir, "pre-revprop-change")
        state = ("there is one; make sure it allows svn:log" if os.access(pre, os.X_OK)
                 else "there is none yet, so svn refuses every log edit")
        print(f"note: svn also needs a pre-revprop-change hook in {target.hooks_dir} that allows"
              f" svn:log edits ({state})")
    if pending:    # written, but not run yet: what is left for the user to do
        raise InstallError(pending)
    return 0
