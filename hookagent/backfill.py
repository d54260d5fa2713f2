"""Backfill: a repository's history through the same spool and ledger as the hooks.

Streams `git log` (or `svn log --xml`) once; keeps only commits with story references; in a dry
run prints them, otherwise enqueues them in batches after asking the ledger what is already
queued or sent (a re-run, or a run after the live hooks sent some, enqueues nothing twice).
Link-only by default: state keywords inside reference brackets are neutralised (stories.neutralise:
``[fixes #12] x`` is sent as ``[#12] (fixes) x``) so years-old history cannot move a story today.
Reverts follow the configuration's ``reverts`` (reverts.apply) before they are listed or queued,
so a dry run shows them as they would be sent (``link``: no state; ``ignore``: not listed).

Order of work per batch of BATCH commits: the spool entry is written (fsynced) first, then the
ledger marks its commits queued. A kill between the two leaves commits in the spool that the
ledger does not know: the next run queues them again, and the agent, which checks the ledger
before every send, delivers each once. Nothing is ever lost, nothing reaches a story twice.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from hookagent import links, reverts as reverts_mod
from hookagent.model import Commit
from hookagent.refsyntax import Syntax, TrackerSyntax

BATCH = 1000
"""Commits per spool entry (one file, one fsync; the agent delivers an entry at a time)."""
LEDGER_BATCH = 10_000
"""Commits per ledger transaction. Idents are random keys: a transaction rewrites most pages of
the table whatever its size, so fewer, larger ones (10 entries each) keep a big backfill linear.
A kill in between leaves at most this many commits queued twice, which the agent's ledger check
before each send turns into one delivery."""


@dataclass
class Summary:
    scanned: int = 0         # commits read from the history
    referencing: int = 0     # of those, commits referencing at least one story
    stories: int = 0         # distinct stories they reference
    enqueued: int = 0        # commits put in the spool (dry run: that would be)
    skipped: int = 0         # referencing commits the ledger or the spool already had
    seconds: float = 0.0
    interrupted: bool = False

    def line(self, dry_run: bool) -> str:
        rate = self.scanned / self.seconds if self.seconds else 0
        done = "would enqueue" if dry_run else "enqueued"
        skip = "would skip" if dry_run else "skipped"
        return (f"hookagent: backfill: scanned {self.scanned} commits in {self.seconds:.1f}s ({rate:,.0f}/s);"
                f" {self.referencing} reference {self.stories} stories; {done} {self.enqueued};"
                f" {skip} {self.skipped} already queued or sent")


_STATE_JSON = {None: "null", "finished": '"finished"', "delivered": '"delivered"'}


class Stop:
    """Set by a signal handler (a flag, nothing more); the loop stops after the current batch."""

    requested = False


def git_commits(repo: str, revspecs: list[str], since: str | None, until: str | None,
                author: str | None, rules: list[dict], brackets: bool = True) -> Iterator[Commit | int]:
    """The commits `git log` lists for REVSPECs (default HEAD), newest first.

    Commits whose message cannot hold a reference (no ``#`` in its bytes; with ``brackets``, for
    Tracker's syntax, no ``[`` either) are never
    decoded: they come as an int, how many of them there were in a row, so the part of a history
    that mentions no story costs almost nothing.
    """
    from hookagent.vcs import git as vgit
    from hookagent.vcs.git import decode

    args = []
    if since:
        args.append(f"--since={since}")
    if until:
        args.append(f"--until={until}")
    if author:
        args.append(f"--author={author}")
    args += revspecs or ["HEAD"]
    args.append("--")
    commit_url = links.commit_url
    for batch in vgit.stream_log_batches(repo, args):
        plain = 0
        for sha, name, email, date, body in batch:
            if b"#" not in body or (brackets and b"[" not in body):
                plain += 1
                continue
            if plain:
                yield plain
                plain = 0
            cid = sha.decode("ascii")
            yield Commit(cid, decode(name, None), decode(body, None), email=decode(email, None),
                         date=date.decode("ascii", "replace"), url=commit_url(rules, repo, cid),
                         repo=repo, vcs="git")
        if plain:
            yield plain


def svn_commits(target: str, rev_range: str, author: str | None, rules: list[dict],
                id_style: str) -> Iterator[Commit]:
    import re
    from hookagent.vcs import svn as vsvn
    repo_uuid = vsvn.remote_uuid(target)
    who = re.compile(author) if author else None
    repo = vsvn.local_path(target) or target   # file:// URLs match repos[].path like the hooks' paths
    for rev, auth, date, msg in vsvn.stream_log(target, rev_range):
        if who and not who.search(auth):
            continue
        cid = f"{repo_uuid}@{rev}" if id_style == "uuid@rev" else str(rev)
        url = links.commit_url(rules, repo, cid, revision=str(rev)) if rules else None
        yield Commit(cid, auth, msg, ident=f"svn:{repo_uuid}@{rev}", date=date, url=url, repo=repo, vcs="svn")


class Progress:
    """Count, rate and ETA on a terminal (stderr); silent otherwise.

    ``total`` is a number, or a function returning the number once known (None until then),
    so counting the commits can run beside the backfill instead of before it.
    """

    def __init__(self, total: int | Callable[[], int | None] | None, enabled: bool, stream=None) -> None:
        self._total = total
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.monotonic()
        self.last = 0.0

    @property
    def total(self) -> int | None:
        return self._total() if callable(self._total) else self._total

    def update(self, n: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.2:
            return
        self.last = now
        rate = n / max(now - self.start, 1e-6)
        total = self.total
        if total:
            left = max(total - n, 0) / rate if rate else 0
            bar = int(30 * min(n / total, 1.0))
            text = f"\r[{'#' * bar}{'.' * (30 - bar)}] {n:,}/{total:,} commits {rate:,.0f}/s ETA {_clock(left)} "
        else:
            text = f"\r{n:,} commits {rate:,.0f}/s "
        self.stream.write(text)
        self.stream.flush()

    def done(self, n: int) -> None:
        if self.enabled:
            self.update(n, force=True)
            self.stream.write("\n")
            self.stream.flush()

    def end_line(self) -> None:
        """Leave the progress line, so that a message can follow on a line of its own."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def run(commits: Iterable[Commit | int], *, dry_run: bool, with_state: bool, out, progress: Progress,
        spool=None, ledger=None, destination: str = "", fmt: str = "jsonl",
        stop: Stop | None = None, reverts: str = reverts_mod.LINK, changes=None,
        syntax: Syntax | None = None, newest_first: bool = True) -> Summary:
    """Scan ``commits`` and enqueue or print those that reference stories. An int in ``commits``
    stands for that many commits that cannot reference a story. ``out`` is a binary stream
    (UTF-8 is written to it).

    ``newest_first``: the order ``commits`` come in (git log's; an svn range runs either way).
    They are queued to be sent oldest first.

    Without dry_run, ``spool`` and ``ledger`` are needed. In a dry run ``ledger`` may be given
    (only read) to count what would be skipped. ``reverts``: the configuration's (reverts.py).
    ``changes`` (rewrites: once): the commits' changes are claimed (changes.py, light: the same
    author, date and message), so a copy of a commit the stories heard of is not sent, and a
    later rebase of these commits sends nothing again. ``syntax``: the destination's grammar
    (refsyntax.py; Tracker's brackets by default).
    """
    import json.encoder

    grammar = syntax or TrackerSyntax()

    from hookagent import spool as spool_mod

    summary = Summary()
    stories: set[int] = set()
    batch: list[Commit] = []
    unmarked: list[str] = []        # queued in the spool, not yet in the ledger
    stop = stop or Stop()
    t0 = time.monotonic()
    in_spool = spool.commit_entries(destination) if spool is not None else set()
    entry_name = spool_mod.commit_entry_name
    # Oldest first without holding the history: entries take seqs downwards from below every
    # seq in use (negative: before the live hooks' entries, whose commits are newer; a later
    # run below an earlier one, which it resumes), and the agent sends none of them while a
    # backfill for the destination runs (spool.BackfillLock).
    order = [-time.time_ns()]
    running = None if dry_run else spool_mod.BackfillLock(spool, destination)

    def mark() -> None:
        if unmarked:
            ledger.mark_queued(destination, unmarked)
            unmarked.clear()

    def flush_batch() -> None:
        if not batch:
            return
        known = ledger.known(destination, [c.ident for c in batch]) if ledger is not None else set()
        if in_spool:
            known.update(c.ident for c in batch if entry_name(destination, c.ident) in in_spool)
        fresh = [c for c in batch if c.ident not in known]
        summary.skipped += len(batch) - len(fresh)
        summary.enqueued += len(fresh)
        batch.clear()
        if dry_run or not fresh:
            return
        if not with_state:
            neutralise = grammar.neutralise
            for c in fresh:
                c.message = neutralise(c.message)
        if changes is not None:
            telling = changes.claim(fresh, light=True)
            summary.skipped += len(fresh) - len(telling)     # copies of commits the stories heard of
            summary.enqueued -= len(fresh) - len(telling)
            fresh = telling
            if not fresh:
                return
        # Newest first (git log): the entry holds its commits oldest first, and comes before
        # the entry written before it (a seq below the last: see `order`).
        in_order = reversed(fresh) if newest_first else fresh
        entry = spool_mod.make_entry(destination, [c.to_dict() for c in in_order], source="backfill",
                                     seq=order.pop())
        order.append(entry["seq"] + (-1 if newest_first else 1))
        spool.enqueue(spool_mod.batch_entry_name(destination), entry)   # durable first,
        unmarked.extend(c.ident for c in fresh)                         # then remembered
        if len(unmarked) >= LEDGER_BATCH:
            mark()

    parse = grammar.parse
    revert = reverts_mod.apply
    enc = json.encoder.encode_basestring   # a JSON string literal, non-ASCII kept (C)
    write = out.write if out is not None else None
    jsonl = fmt == "jsonl"
    scanned = 0
    try:
        check_at = 1024
        for commit in commits:
            if commit.__class__ is int:
                scanned += commit
            else:
                scanned += 1
            if scanned >= check_at:
                check_at = scanned + 1024
                progress.update(scanned)
                if stop.requested:
                    summary.interrupted = True
                    break
            if commit.__class__ is int:
                continue
            found = parse(commit.message)
            if not found:
                continue
            message = commit.message
            if revert(commit, reverts, grammar.neutralise) is None:
                continue
            if commit.message is not message:   # a revert's keywords were neutralised
                found = parse(commit.message)
            summary.referencing += 1
            stories.update(r.id for r in found)
            if dry_run:
                if jsonl:   # json.dumps(record, ensure_ascii=False), spelled out: this runs per commit
                    url = commit.url
                    line = ('{"commit_id": ' + enc(commit.commit_id) + ', "author": ' + enc(commit.author)
                            + ', "date": ' + enc(commit.date) + ', "message": ' + enc(commit.message)
                            + ', "url": ' + ("null" if url is None else enc(url)) + ', "stories": ['
                            + ", ".join([f'{{"id": {r.id}, "state": {_STATE_JSON[r.state]}}}' for r in found])
                            + "]}")
                else:
                    ids = " ".join(f"#{r.id}" + (f" ({r.state})" if r.state else "") for r in found)
                    subject = commit.message.strip().partition("\n")[0]
                    line = f"{commit.commit_id[:12]} {commit.date[:10]} {commit.author}: {ids}  {subject}"
                write(line.encode("utf-8", "replace") + b"\n")
                if ledger is None and not in_spool:
                    summary.enqueued += 1
                    continue
            batch.append(commit)
            if len(batch) >= BATCH:
                flush_batch()
                if stop.requested:
                    summary.interrupted = True
                    break
        flush_batch()
    finally:
        if not dry_run:
            mark()   # what reached the spool is remembered, even after an error or a second Ctrl-C
        if running is not None:
            running.close()
    summary.scanned = scanned
    progress.done(scanned)
    summary.stories = len(stories)
    summary.seconds = time.monotonic() - t0
    return summary
