"""Backfill: a repository's history through the same spool and ledger as the hooks.

Streams `git log` (or `svn log --xml`) once; keeps only commits with story references; in a dry
run prints them, otherwise enqueues them in batches after asking the ledger what is already
queued or sent (a re-run, or a run after the live hooks sent some, enqueues nothing twice).
Link-only by default: state keywords inside reference brackets are neutralised (refs.neutralise)
so years-old "[fixes #12]" cannot move a story today.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from hookagent import links, refs
from hookagent.model import Commit

BATCH = 1000


@dataclass
class Summary:
    scanned: int = 0
    referencing: int = 0
    stories: int = 0
    enqueued: int = 0
    skipped: int = 0
    seconds: float = 0.0

    def line(self, dry_run: bool) -> str:
        verb = "would enqueue" if dry_run else "enqueued"
        rate = self.scanned / self.seconds if self.seconds else 0
        text = (f"backfill: scanned {self.scanned} commits in {self.seconds:.1f}s ({rate:,.0f}/s);"
                f" {self.referencing} reference {self.stories} stories; {verb} {self.enqueued}")
        if not dry_run:
            text += f"; skipped {self.skipped} already queued or sent"
        return text


def git_commits(repo: str, revspecs: list[str], since: str | None, until: str | None,
                author: str | None, rules: list[dict]) -> Iterator[Commit]:
    from hookagent.vcs import git as vgit
    args = []
    if since:
        args.append(f"--since={since}")
    if until:
        args.append(f"--until={until}")
    if author:
        args.append(f"--author={author}")
    args += revspecs or ["HEAD"]
    args.append("--")
    for f in vgit.stream_log(repo, args):
        yield _commit(f, repo, rules)


def _commit(f: dict, repo: str, rules: list[dict]) -> Commit:
    url = links.commit_url(rules, repo, f["sha"]) if rules else None
    return Commit(f["sha"], f["author"], f["message"], email=f["email"], date=f["date"], url=url,
                  repo=repo, vcs="git")


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
    """count, rate and ETA on a terminal (stderr); silent otherwise."""

    def __init__(self, total: int | None, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.start = time.monotonic()
        self.last = 0.0

    def update(self, n: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.2:
            return
        self.last = now
        rate = n / max(now - self.start, 1e-6)
        if self.total:
            left = max(self.total - n, 0) / rate if rate else 0
            bar = int(30 * min(n / self.total, 1.0))
            text = f"\r[{'#' * bar}{'.' * (30 - bar)}] {n}/{self.total} {rate:,.0f}/s ETA {left:,.0f}s "
        else:
            text = f"\r{n} commits {rate:,.0f}/s "
        sys.stderr.write(text)
        sys.stderr.flush()

    def done(self, n: int) -> None:
        if self.enabled:
            self.update(n, force=True)
            sys.stderr.write("\n")


def run(commits: Iterator[Commit], *, dry_run: bool, with_state: bool, out, progress: Progress,
        spool=None, ledger=None, destination: str = "", fmt: str = "jsonl") -> Summary:
    import json
    from hookagent import spool as spool_mod

    summary = Summary()
    stories: set[int] = set()
    batch: list[Commit] = []
    t0 = time.monotonic()

    def flush_batch() -> None:
        if not batch:
            return
        known = ledger.known(destination, [c.ident for c in batch])
        fresh = [c for c in batch if c.ident not in known]
        summary.skipped += len(batch) - len(fresh)
        if fresh:
            entry = spool_mod.make_entry(destination, [c.to_dict() for c in fresh], source="backfill")
            spool.enqueue(spool_mod.batch_entry_name(destination), entry)   # durable first,
            ledger.mark_queued(destination, [c.ident for c in fresh])        # then remembered
            summary.enqueued += len(fresh)
        batch.clear()

    has_refs = refs.has_refs
    for commit in commits:
        summary.scanned += 1
        if summary.scanned % 1024 == 0:
            progress.update(summary.scanned)
        if not has_refs(commit.message):
            continue
        found = refs.parse(commit.message)
        if not found:
            continue
        summary.referencing += 1
        stories.update(r.id for r in found)
        if dry_run:
            summary.enqueued += 1
            if fmt == "jsonl":
                out.write(json.dumps({
                    "commit_id": commit.commit_id, "author": commit.author, "date": commit.date,
                    "message": commit.message, "url": commit.url,
                    "stories": [{"id": r.id, "state": r.state} for r in found],
                }, ensure_ascii=False) + "\n")
            else:
                ids = " ".join(f"#{r.id}" + (f"({r.state})" if r.state else "") for r in found)
                subject = commit.message.strip().splitlines()[0] if commit.message.strip() else ""
                out.write(f"{commit.commit_id[:12]} {commit.date[:10]} {commit.author}: {ids}  {subject}\n")
            continue
        if not with_state:
            commit.message = refs.neutralise(commit.message)
        batch.append(commit)
        if len(batch) >= BATCH:
            flush_batch()
    if not dry_run:
        flush_batch()
    progress.done(summary.scanned)
    summary.stories = len(stories)
    summary.seconds = time.monotonic() - t0
    return summary
