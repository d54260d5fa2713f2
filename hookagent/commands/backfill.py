"""`hookagent backfill PATH [REVSPEC ...]`: send a repository's existing history, safely.

Link-only by default (state keywords neutralised), --dry-run first, resumable (the ledger knows
what was queued or sent), never repeating what the live hooks already sent.
"""
from __future__ import annotations

import argparse
import os
import sys


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="git repository (work tree or bare), svn repository path, or svn URL")
    p.add_argument("revspec", nargs="*", help="git: what `git log` takes (default HEAD; --all, A..B, branches)")
    p.add_argument("--all", action="store_true", help="git: every ref (as `git log --all`)")
    p.add_argument("-r", "--revision", dest="svn_range", default="1:HEAD", help="svn: revision range N:M (default 1:HEAD)")
    p.add_argument("--since", help="only commits after this date (git's date formats)")
    p.add_argument("--until", help="only commits before this date")
    p.add_argument("--author", help="only commits whose author matches this pattern")
    p.add_argument("--dry-run", action="store_true", help="print what would be sent; change nothing")
    p.add_argument("--format", choices=("text", "jsonl"), default="text", help="dry-run output format")
    p.add_argument("--with-state", action="store_true",
                   help="keep state keywords (fixes, finishes, delivers): historical commits may then move stories")
    p.add_argument("--config", help="configuration file")


def run(args: argparse.Namespace) -> int:
    from hookagent import backfill, context
    from hookagent.vcs import svn as vsvn

    cfg = context.load_config(args.config)
    rules = [{"path": r.path, "url": r.url} for r in cfg.repos]
    target = args.path
    is_svn = "://" in target or vsvn.is_repository(target)
    if is_svn:
        if args.since or args.until:
            print("hookagent: backfill: --since/--until apply to git; for svn use -r {DATE}:{DATE}", file=sys.stderr)
            return 2
        commits = backfill.svn_commits(target, args.svn_range, args.author, rules, cfg.svn_commit_id)
        total = None
    else:
        from hookagent.vcs import git as vgit
        repo = vgit.toplevel(os.path.abspath(target))
        if args.all:
            args.revspec = ["--all", *args.revspec]
        commits = backfill.git_commits(repo, args.revspec, args.since, args.until, args.author, rules)
        total = _git_count(repo, args) if sys.stderr.isatty() else None
    progress = backfill.Progress(total, sys.stderr.isatty())
    spool = ledger = None
    if not args.dry_run:
        spool = context.open_spool(cfg)
        ledger = context.open_ledger(spool)
    try:
        summary = backfill.run(commits, dry_run=args.dry_run, with_state=args.with_state, out=sys.stdout,
                               progress=progress, spool=spool, ledger=ledger,
                               destination=cfg.tracker.destination, fmt=args.format)
    except KeyboardInterrupt:
        print("\nhookagent: backfill interrupted; what was enqueued stays enqueued, run it again to go on",
              file=sys.stderr)
        return 130
    finally:
        if ledger is not None:
            ledger.close()
    sys.stdout.flush()
    print(summary.line(args.dry_run), file=sys.stderr)
    if not args.dry_run and summary.enqueued:
        print("hookagent: the agent delivers them at its own pace (`hookagent flush`, or the running"
              " `hookagent run`); `hookagent status` shows progress", file=sys.stderr)
    return 0


def _git_count(repo: str, args: argparse.Namespace) -> int | None:
    from hookagent.vcs import git as vgit
    extra = [f"--since={args.since}"] if args.since else []
    extra += [f"--until={args.until}"] if args.until else []
    extra += [f"--author={args.author}"] if args.author else []
    try:
        return int(vgit.git(["rev-list", "--count", *extra, *(args.revspec or ["HEAD"]), "--"], repo))
    except Exception:
        return None
