#!/usr/bin/env python3
"""Delivery to a real Redmine: `hookagent flush` draining N spooled commits vs a raw requests loop
of the same PUTs, in one run against one local Redmine (hookagent/localredmine.py: Debian's
package, webrick, SQLite; needs root, and scripts/install-redmine).

Run by hand:  .venv/bin/python benchmarks/bench_redmine.py [--commits 50] [--issues 10]

Each commit references one issue (``refs #N``, round robin). The baseline is a plain
`requests.Session().put` loop of the bodies the sink renders, with the same key header, checking
each status; it keeps no spool and no ledger. Ours is the real thing: entries in a spool, then
`hookagent flush` as a user runs it (a new process: interpreter start, config, the sink's start
check of the key's user, claims by rename, a ledger mark per issue and per commit, deletes after
each 2xx). Both sides' notes are read back afterwards and counted. Prints the seconds and the
ratio throughput(ours) / throughput(raw).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import requests  # noqa: E402

from hookagent.localredmine import Redmine, installed  # noqa: E402
from hookagent.model import Commit  # noqa: E402
from hookagent.spool import commit_entry_name, make_entry  # noqa: E402
from testing.site import Site  # noqa: E402


def commits(n: int, issues: list[int], tag: str) -> list[Commit]:
    return [Commit(f"{tag}{i:039x}", "Ada Bench", f"Work item {i}\n\nrefs #{issues[i % len(issues)]}",
                   email="ada@example.com", date="2026-12-01T10:00:00+00:00",
                   url=f"https://git.example.com/r/commit/{tag}{i:039x}") for i in range(n)]


def raw_loop(redmine: Redmine, sink, batch: list[Commit]) -> float:
    puts = [(ref.id, json.dumps(sink.body(c, ref)).encode()) for c in batch for ref in sink.syntax.parse(c.message)]
    headers = {"X-Redmine-API-Key": redmine.key, "Content-Type": "application/json"}
    session = requests.Session()
    t0 = time.perf_counter()
    for issue, body in puts:
        r = session.put(f"{redmine.url}/issues/{issue}.json", data=body, headers=headers, timeout=60)
        if not 200 <= r.status_code < 300:
            raise SystemExit(f"raw loop: Redmine answered {r.status_code}")
    elapsed = time.perf_counter() - t0
    session.close()
    return elapsed


def ours(redmine: Redmine, base: Path, batch: list[Commit]) -> float:
    site = Site(base, redmine.url, token=redmine.key, tracker={"api": "redmine", "timeout": 60})
    dest = site.config.tracker.destination
    spool = site.spool
    for c in batch:
        spool.enqueue(commit_entry_name(dest, c.ident), make_entry(dest, [c.to_dict()]))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hookagent", "flush", "--config", str(site.config_path)],
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"hookagent flush: {proc.returncode}: {proc.stderr}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=50)
    ap.add_argument("--issues", type=int, default=10)
    args = ap.parse_args()
    why = installed()
    if why:
        raise SystemExit(f"bench_redmine: {why}")
    base = Path(tempfile.mkdtemp(prefix="hookagent-bench-redmine-"))
    redmine = Redmine()
    try:
        t0 = time.perf_counter()
        redmine.start()
        redmine.setup_project()
        issues = [redmine.new_issue(f"bench {i}") for i in range(args.issues)]
        print(f"Redmine {redmine.url} started with {len(issues)} issues in {time.perf_counter() - t0:.1f}s")
        from hookagent.refsyntax import RedmineSyntax
        from hookagent.sinks.redmine import RedmineSink
        sink = RedmineSink(redmine.url, redmine.key, syntax=RedmineSyntax())
        raw = raw_loop(redmine, sink, commits(args.commits, issues, "a"))
        sink.close()
        mine = ours(redmine, base, commits(args.commits, issues, "b"))
        notes = sum(len(redmine.notes(i)) for i in issues)
        assert notes == 2 * args.commits, f"{notes} notes, expected {2 * args.commits}"
        n = args.commits
        print(f"raw requests loop: {n} PUTs in {raw:.2f}s ({n / raw:.1f}/s)")
        print(f"hookagent flush:   {n} commits in {mine:.2f}s ({n / mine:.1f}/s, process start included)")
        print(f"ratio (ours/raw throughput): {raw / mine:.2f}; notes read back: {notes}")
    finally:
        redmine.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
