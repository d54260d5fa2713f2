"""`hookagent backfill PATH [REVSPEC ...]`: send a repository's existing history, safely.

Link-only by default (state keywords neutralised), --dry-run first, resumable (the ledger knows
what was queued or sent), never repeating what the live hooks already sent.

Output: a dry run prints its commits on stdout (JSON lines or text, UTF-8) and nothing else;
progress (on a terminal only) and the summary line go to stderr. Exit status: 0 done, 2 on a
configuration, spool or repository error, 130 when interrupted (Ctrl-C or SIGTERM: the batch in
hand is finished first; run the same command again to go on). Errors are raised, and printed by
:func:`hookagent.main.main`.
"""
from __future__ import annotations

import argparse
import os
import sys

from hookagent.commands import add_config_option

INTERRUPTED = ("backfill interrupted; what was enqueued stays enqueued: run the same command again to"
               " go on (nothing is enqueued twice)")
NOT_A_REPOSITORY = "pass a git work tree, a bare git repository, an svn repository or an svn URL"


class _Intermixed(argparse.ArgumentParser):
    """REVSPECs may come after options (`backfill PATH --dry-run main..topic`): argparse's
    intermixed parsing, for this subcommand only."""

    _inside = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._inside:
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def configure(p: argparse.ArgumentParser) -> None:
    p.__class__ = _Intermixed
    p.add_argument("path", help="git repository (work tree or bare), svn repository path, or svn URL")
    p.add_argument("revspec", nargs="*",
                   help="git: what `git log` takes (default HEAD; A..B, ^A, branch names); put"
                        " other git log options after `--`, e.g. `-- --branches=release/*`")
    p.add_argument("--all", action="store_true", help="git: every ref (as `git log --all`)")
    p.add_argument("-r", "--revision", dest="svn_range", default="1:HEAD", help="svn: revision range N:M (default 1:HEAD)")
    p.add_argument("--since", help="only commits after this date (git's date formats)")
    p.add_argument("--until", help="only commits before this date")
    p.add_argument("--author", help="only commits whose author matches this pattern")
    p.add_argument("--dry-run", action="store_true", help="print what would be sent; change nothing")
    p.add_argument("--format", choices=("text", "jsonl"), default="text", help="dry-run output format")
    p.add_argument("--with-state", action="store_true",
                   help="keep state keywords (fixes, finishes, delivers): historical commits may then move stories")
    add_config_option(p)


def run(args: argparse.Namespace) -> int:
    from hookagent import backfill, context
    from hookagent.errors import HookagentError, Interrupted, VcsError
    from hookagent.vcs import svn as vsvn

    from hookagent.refsyntax import syntax_for
    cfg = context.load_config(args.config)
    syntax = syntax_for(cfg.tracker)   # the destination's grammar of references
    rules = cfg.link_rules()
    target = args.path
    is_svn = "://" in target or vsvn.is_repository(target)
    counter = None
    if is_svn:
        if args.since or args.until:
            raise HookagentError("backfill: --since/--until apply to git; for svn use -r {DATE}:{DATE}")
        commits = backfill.svn_commits(target, args.svn_range, args.author, rules, cfg.svn_commit_id)
        total = None
    else:
        from hookagent.vcs import git as vgit
        if not os.path.isdir(target):
            raise VcsError(f"backfill: {target}: no such folder; {NOT_A_REPOSITORY}")
        try:
            repo = vgit.toplevel(os.path.abspath(target))
        except VcsError:
            raise VcsError(f"backfill: {target} is neither a git nor an svn repository;"
                           f" {NOT_A_REPOSITORY}") from None
        revspecs = (["--all"] if args.all else []) + list(args.revspec)
        if not revspecs and not _has_head(vgit, repo):
            print(f"hookagent: backfill: {target} has no commits yet (HEAD names none): nothing to send",
                  file=sys.stderr)
            return 0
        commits = backfill.git_commits(repo, revspecs, args.since, args.until, args.author, rules,
                                       brackets=syntax.name == "tracker")
        counter = _GitCount(repo, revspecs, args) if sys.stderr.isatty() else None
        total = counter.total if counter else None
    progress = backfill.Progress(total, sys.stderr.isatty())
    spool = ledger = None
    if args.dry_run:
        spool, ledger = _read_only(cfg, context)
    else:
        spool = context.open_spool(cfg)
        ledger = context.open_ledger(spool)
    stop = backfill.Stop()
    restore = _on_signals(stop)
    sys.stdout.flush()
    # Our own buffer: sys.stdout is unbuffered under PYTHONUNBUFFERED (a write per commit).
    out = os.fdopen(sys.stdout.fileno(), "wb", buffering=1 << 16, closefd=False)
    try:
        summary = backfill.run(commits, dry_run=args.dry_run, with_state=args.with_state, out=out,
                               progress=progress, spool=spool, ledger=ledger,
                               destination=cfg.tracker.destination, fmt=args.format, stop=stop,
                               reverts=cfg.reverts,
                               changes=(ledger.changes(cfg.tracker.destination, syntax)
                                        if ledger is not None and not args.dry_run and cfg.rewrites == "once"
                                        else None),
                               syntax=syntax,
                               newest_first=not is_svn or _descending(args.svn_range))
        out.flush()
    except KeyboardInterrupt:   # a second Ctrl-C: stop now
        progress.end_line()
        raise Interrupted(INTERRUPTED) from None
    except BrokenPipeError:     # `hookagent backfill --dry-run | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except VcsError as exc:
        hint = "" if is_svn else "; REVSPEC takes what `git log` takes (HEAD, A..B, branch names, --all)"
        raise VcsError(f"backfill: {exc}{hint}") from None
    finally:
        restore()
        close = getattr(commits, "close", None)
        if close is not None:
            close()
        if counter is not None:
            counter.close()
        if ledger is not None:
            ledger.close()
    print(summary.line(args.dry_run), file=sys.stderr)
    if summary.interrupted:
        raise Interrupted(INTERRUPTED)
    if not args.dry_run and summary.enqueued:
        started = ""
        if cfg.agent.autostart:   # as the hooks do: a detached background agent delivers them
            from hookagent.agent import lifetime
            try:
                lifetime.start(cfg)
                started = "a background agent started; "
            except Exception:
                pass
        print(f"hookagent: {started}the agent delivers them at its own pace (`hookagent flush`, or the"
              " running `hookagent run`); `hookagent status` shows progress", file=sys.stderr)
    if args.dry_run and not args.with_state and summary.enqueued:
        print(f"hookagent: without --with-state they are sent link-only: {syntax.example},"
              " so no story changes state", file=sys.stderr)
    return 0


def _descending(rev_range: str) -> bool:
    """Whether an svn range N:M lists newest first (HEAD:1, 20:10)."""
    start, _, end = rev_range.upper().partition(":")
    if start.isdigit() and end.isdigit():
        return int(start) > int(end)
    return start == "HEAD" and end not in ("", "HEAD")


def _has_head(vgit, repo: str) -> bool:
    from hookagent.errors import VcsError
    try:
        vgit.git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], repo)
        return True
    except VcsError:
        return False


def _read_only(cfg, context):
    """The spool and ledger as they are, for a dry run to count what it would skip; (None, None)
    when there are none yet (a dry run creates nothing)."""
    from hookagent.errors import HookagentError
    from hookagent.ledger import Ledger
    from hookagent.spool import Spool
    try:
        spool = Spool(cfg.spool_dir, cfg.spool_group, create=False)
    except (OSError, HookagentError):
        return None, None
    path = context.ledger_path(spool)
    if not os.path.exists(path):
        return spool, None
    try:
        return spool, Ledger(path, spool.file_mode)
    except Exception:   # unreadable: the dry run still lists the commits
        return spool, None


def _on_signals(stop):
    """Ctrl-C or SIGTERM: ask the loop to stop after its batch (a second Ctrl-C stops at once).
    Returns a function putting the previous handlers back."""
    import signal

    def handler(signum, frame) -> None:
        stop.requested = True
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)

    saved = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for s, h in saved.items():
            signal.signal(s, h)
    return restore


class _GitCount:
    """`git rev-list --count` beside the backfill (a terminal's progress bar needs a total)."""

    def __init__(self, repo: str, revspecs: list[str], args: argparse.Namespace) -> None:
        from hookagent import process
        from hookagent.errors import ProcessError
        extra = [f"--since={args.since}"] if args.since else []
        extra += [f"--until={args.until}"] if args.until else []
        extra += [f"--author={args.author}"] if args.author else []
        self._value: int | None = None
        self.proc: process.Process | None
        try:   # its own session, as git log's: a first Ctrl-C only ends the backfill's batch
            self.proc = process.Process(["git", "rev-list", "--count", *extra, *(revspecs or ["HEAD"]), "--"],
                                        cwd=repo, new_session=True)
        except ProcessError:
            self.proc = None

    def total(self) -> int | None:
        if self._value is None and self.proc is not None and self.proc.poll() is not None:
            try:
                self._value = int(self.proc.finish(check=False).stdout or 0) or None
            except ValueError:
                pass
            self.close()
        return self._value

    def close(self) -> None:
        if self.proc is not None:
            self.proc.close()
            self.proc = None
