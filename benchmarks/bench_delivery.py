#!/usr/bin/env python3
"""Delivery throughput: `hookagent flush` draining N spooled commits vs a raw requests loop.

Run by hand:  .venv/bin/python benchmarks/bench_delivery.py [--entries 2000] [--rounds 3] [--api v3]

Both sides post the same bodies (rendered by the sink) to the same kind of loopback receiver (a
fresh DevServer per run, so both see an empty story store). The baseline is a plain
`requests.Session().post` loop with the same headers, checking each status; it does no spool,
ledger or fsync work. Ours is the real thing: entries in a spool, then `hookagent flush` as a
user runs it (a new process: interpreter start, config, claims by rename, ledger commits,
deletes after each 2xx), and, to separate the process start, the same agent run in-process.
Runs alternate baseline / ours; the ratio is throughput(ours) / throughput(raw), medians.
Target (issue 2): >= 0.7.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import requests  # noqa: E402

from hookagent import sinks  # noqa: E402
from hookagent.devserver import DevServer  # noqa: E402
from testing.site import TOKEN, Site  # noqa: E402


def commits(n: int):
    from hookagent.model import Commit
    return [Commit(f"{i:040x}", "Ada Bench", f"Work item {i} [#{100 + i % 50}]\n\nbody line {i}",
                   email="ada@example.com", date="2026-11-28T10:00:00+00:00",
                   url=f"https://git.example.com/r/commit/{i:040x}") for i in range(n)]


def raw_loop(n: int, api: str) -> float:
    with DevServer(token=TOKEN) as server:
        sink = sinks.make_sink(api, server.url, TOKEN)
        bodies = [sink.render(c) for c in commits(n)]
        sink.close()
        path = "/services/v3/source_commits" if api == "v3" else "/services/v5/source_commits"
        ctype = "application/xml" if api == "v3" else "application/json"
        headers = {"X-TrackerToken": TOKEN, "Content-Type": ctype}
        session = requests.Session()
        t0 = time.perf_counter()
        for body in bodies:
            r = session.post(server.url + path, data=body, headers=headers, timeout=30)
            if not 200 <= r.status_code < 300:
                raise SystemExit(f"raw loop: server answered {r.status_code}")
        elapsed = time.perf_counter() - t0
        session.close()
        assert len(server.received()) == n
    return elapsed


def ours(n: int, api: str, root: str, in_process: bool) -> float:
    from hookagent.model import Commit  # noqa: F401
    from hookagent.spool import commit_entry_name, make_entry
    d = tempfile.mkdtemp(dir=root)
    with DevServer(token=TOKEN) as server:
        site = Site(__import__("pathlib").Path(d), server.url, api=api)
        dest = site.config.tracker.destination
        spool = site.spool
        for c in commits(n):
            spool.enqueue(commit_entry_name(dest, c.ident), make_entry(dest, [c.to_dict()]))
        t0 = time.perf_counter()
        if in_process:
            from hookagent.agent import lifetime
            agent = lifetime.build(site.config)
            while agent.run_once().entries_done:
                pass
            agent.close()
        else:
            proc = subprocess.run([sys.executable, "-m", "hookagent", "flush", "--quiet", "--config",
                                   str(site.config_path)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"flush failed: {proc.stderr}")
        elapsed = time.perf_counter() - t0
        got = len(server.received())
        if got != n:
            raise SystemExit(f"ours: receiver got {got} of {n}")
    shutil.rmtree(d, ignore_errors=True)
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--api", choices=("v3", "v5"), default="v3")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="bench-delivery-")
    raw, cli, inproc = [], [], []
    try:
        for _ in range(args.rounds):
            raw.append(raw_loop(args.entries, args.api))
            cli.append(ours(args.entries, args.api, root, in_process=False))
            inproc.append(ours(args.entries, args.api, root, in_process=True))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = args.entries
    r, c, i = statistics.median(raw), statistics.median(cli), statistics.median(inproc)
    print(f"{n} commits, api {args.api}, {args.rounds} rounds alternating, medians")
    print(f"{'raw requests.Session loop':32} {r:7.2f} s {n / r:8.0f} commits/s  ratio 1.00")
    print(f"{'hookagent flush (new process)':32} {c:7.2f} s {n / c:8.0f} commits/s  ratio {r / c:.2f}")
    print(f"{'agent in-process (run_once)':32} {i:7.2f} s {n / i:8.0f} commits/s  ratio {r / i:.2f}")
    print(f"target >= 0.7 of the raw loop: {'met' if r / c >= 0.7 else 'NOT met'} (flush as users run it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
