#!/usr/bin/env python3
"""Delivery at internet latency: `hookagent flush` with 1, 4 and 8 lanes against a receiver that
answers after a fixed delay, and the serial floor (N x delay).

Run by hand:  .venv/bin/python benchmarks/bench_lanes.py [--commits 300] [--stories 30]
              [--delays 20,50,100,200] [--lanes 1,4,8] [--chaos 0.2] [--chaos-delay 100]
              [--retry-after 1]

Each round queues the same N one-commit entries (as the hooks' ingest does: one entry per
commit, in commit order) over S stories, each story a link, then a finish, then a deliver, and
so on, interleaved; a fresh DevServer answers each POST after ``delay`` ms; `hookagent flush`
runs as a user runs it (a new process) with ``agent.concurrency`` set. Every round checks that
every commit arrived once and that each story's events arrived in commit order (exact), and
fails loudly otherwise. The variant with ``--chaos`` answers that share of the requests 503 with
Retry-After (every one pauses the whole destination for at least that long): nothing may be
lost, the order stays exact. Ratios: time / serial floor, and time / the 1-lane time of the same
delay (today's serial agent). Goal (issue 12): <= 0.15 of the serial time with 8 lanes at 100 ms.
"""
from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from hookagent import stories  # noqa: E402
from hookagent.devserver import DevServer  # noqa: E402
from hookagent.model import Commit  # noqa: E402
from hookagent.spool import commit_entry_name, make_entry  # noqa: E402
from testing.site import TOKEN, Site  # noqa: E402

WORDS = ("", "finishes ", "delivers ")   # link, finish, deliver


def queue(site: Site, n: int, n_stories: int) -> dict[int, list[str]]:
    dest = site.config.tracker.destination
    spool = site.spool
    want: dict[int, list[str]] = collections.defaultdict(list)
    for i in range(n):
        story, event = 1000 + i % n_stories, i // n_stories
        cid = f"{i:040x}"
        c = Commit(cid, "Ada Bench", f"[{WORDS[event % 3]}#{story}] event {event}\n\nbody {i}",
                   email="ada@example.com", date="2026-11-28T10:00:00+00:00",
                   url=f"https://git.example.com/r/commit/{cid}")
        spool.enqueue(commit_entry_name(dest, c.ident), make_entry(dest, [c.to_dict()]))
        want[story].append(cid)
    return dict(want)


def check(server: DevServer, want: dict[int, list[str]], n: int) -> None:
    got = [r["commit_id"] for r in server.received()]
    if len(got) != n or len(set(got)) != n:
        raise SystemExit(f"receiver got {len(got)} requests for {len(set(got))} of {n} commits")
    seen: dict[int, list[str]] = collections.defaultdict(list)
    for r in server.received():
        for ref in stories.parse(r["message"]):
            seen[ref.id].append(r["commit_id"])
    if dict(seen) != want:
        bad = [s for s in want if seen.get(s) != want[s]]
        raise SystemExit(f"order broken in {len(bad)} stories, e.g. #{bad[0]}")


def run(root: str, n: int, n_stories: int, delay_ms: float, lanes: int, chaos: float,
        retry_after: float) -> tuple[float, int, int]:
    """One flush; (seconds, most requests in flight at once, requests seen)."""
    d = Path(tempfile.mkdtemp(dir=root))
    kw = dict(chaos=chaos, seed=lanes, faults=("503",), retry_after=retry_after) if chaos else {}
    with DevServer(token=TOKEN, delay=delay_ms / 1000, **kw) as server:
        site = Site(d, server.url, agent={"autostart": False, "concurrency": lanes},
                    tracker={"timeout": 30}, retry={"min_backoff": 0.05, "max_backoff": 0.5, "max_age": 3600})
        want = queue(site, n, n_stories)
        cmd = [sys.executable, "-m", "hookagent", "flush", "--quiet", "--wait", "3600",
               "--config", str(site.config_path)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"flush failed ({proc.returncode}): {proc.stderr}")
        check(server, want, n)
        result = elapsed, server.max_in_flight(), server.requests_seen()
    shutil.rmtree(d, ignore_errors=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=300)
    ap.add_argument("--stories", type=int, default=30)
    ap.add_argument("--delays", default="20,50,100,200", help="ms per request, comma-separated")
    ap.add_argument("--lanes", default="1,4,8", help="agent.concurrency values, comma-separated")
    ap.add_argument("--chaos", type=float, default=0.2, help="share of requests answered 503 (0: no variant)")
    ap.add_argument("--chaos-delay", type=float, default=100, help="ms per request in the 503 variant")
    ap.add_argument("--retry-after", type=float, default=1, help="Retry-After of those 503s, seconds")
    args = ap.parse_args()
    delays = [float(x) for x in args.delays.split(",")]
    lanes = [int(x) for x in args.lanes.split(",")]
    n = args.commits
    root = tempfile.mkdtemp(prefix="bench-lanes-")
    try:
        print(f"{n} commits over {args.stories} stories (link, finish, deliver), `hookagent flush`,"
              " order checked every round")
        print(f"{'delay':>6} {'lanes':>5} {'seconds':>8} {'floor':>7} {'/floor':>7} {'/1 lane':>8}"
              f" {'in flight':>9} {'commits/s':>9}")
        for delay in delays:
            floor = n * delay / 1000
            base = None
            for c in lanes:
                t, most, _ = run(root, n, args.stories, delay, c, 0.0, 0.0)
                base = t if base is None else base
                print(f"{delay:>4.0f}ms {c:>5} {t:>8.2f} {floor:>7.2f} {t / floor:>7.2f} {t / base:>8.3f}"
                      f" {most:>9} {n / t:>9.1f}")
        if args.chaos:
            print(f"\n{args.chaos:.0%} of requests 503 with Retry-After {args.retry_after:g}s,"
                  f" {args.chaos_delay:.0f} ms per request: nothing lost, order exact")
            base = None
            for c in lanes:
                t, most, seen = run(root, n, args.stories, args.chaos_delay, c, args.chaos, args.retry_after)
                base = t if base is None else base
                print(f"{args.chaos_delay:>4.0f}ms {c:>5} {t:>8.2f}  {seen - n:>4} 503s  /1 lane {t / base:.3f}"
                      f"  in flight {most}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
