#!/usr/bin/env python3
"""A big rebase of commits the stories already heard of: what the hooks add, and what is sent.

Run by hand:  .venv/bin/python benchmarks/bench_rewrite.py [--commits 500] [--rounds 3]

A branch of --commits referencing commits (over 50 stories) is delivered once (backfill, then
flush, to a loopback DevServer). Then, --rounds times, main moves and the branch is rebased onto
it, in a clone with hookagent's hooks and in one without, alternating; after each hooked rebase
`hookagent flush` runs (the agent reads the rebase's record, decides, sends). Printed: the rebase
with and without hooks (median, ratio, added ms per rebased commit), the flush after it, and what
reached the tracker (the goal: nothing new, every story still one comment per change).
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

from hookagent.devserver import DevServer  # noqa: E402

from common import TOKEN, git_env  # noqa: E402
import common  # noqa: E402

STORIES = 50


def git(repo: str, *args: str, env: dict) -> None:
    subprocess.run(["git", "-C", repo, *args], env=env, check=True, capture_output=True)


def hookagent(conf: str, *args: str, env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hookagent", *args, "--config", conf], env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rewrites", choices=("once", "every"), default="once",
                    help="the configuration's rewrites: every shows what was sent before changes.py")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="bench-rewrite-")
    env = git_env(base)
    server = DevServer(token=TOKEN)
    server.start()
    try:
        conf = common.make_site(base, "site", server.url, autostart=False)
        with open(conf, "a") as fh:
            fh.write(f"rewrites: {args.rewrites}\n")
        src = os.path.join(base, "origin")
        common.topic_history(src, args.commits, STORIES, env)
        hooked, plain = os.path.join(base, "hooked"), os.path.join(base, "plain")
        for repo in (hooked, plain):
            subprocess.run(["git", "clone", "-q", src, repo], env=env, check=True)
            git(repo, "checkout", "-q", "-b", "topic", "origin/topic", env=env)
        subprocess.run([sys.executable, "-m", "hookagent", "backfill", hooked, "--config", conf],
                       env=env, check=True, capture_output=True)
        first = hookagent(conf, "flush", env=env)
        delivered = len(server.received())
        subprocess.run([sys.executable, "-m", "hookagent", "install", hooked, "--config", conf],
                       env=env, check=True, capture_output=True)
        times: dict[str, list[float]] = {hooked: [], plain: []}
        flushes: list[float] = []
        for r in range(args.rounds):
            for repo in (hooked, plain):
                git(repo, "checkout", "-q", "-B", "main", "origin/main" if r == 0 else "main", env=env)
                with open(os.path.join(repo, f"main{r}.txt"), "w") as fh:
                    fh.write("m")
                git(repo, "add", ".", env=env)
                git(repo, "commit", "-q", "-m", f"main moves {r}", env=env)
                git(repo, "checkout", "-q", "topic", env=env)
                t0 = time.perf_counter()
                git(repo, "rebase", "-q", "main", env=env)
                times[repo].append(time.perf_counter() - t0)
                if repo == hooked:
                    flushes.append(hookagent(conf, "flush", env=env))
        after = len(server.received())
        per_story = {sid: len(s["comments"]) for sid, s in server.stories().items()}
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    h, p = statistics.median(times[hooked]), statistics.median(times[plain])
    n = args.commits
    print(f"git rebase of {n} referencing commits ({STORIES} stories), {args.rounds} round(s) per side,"
          f" rewrites: {args.rewrites};"
          f" python {sys.version.split()[0]}, load {os.getloadavg()[0]:.2f}")
    print(f"  first delivery: {delivered} commits sent by backfill + flush in {first:.2f} s")
    print(f"  rebase with hooks {h:.3f} s, without {p:.3f} s: ratio {h / p:.2f}x,"
          f" added {(h - p) / n * 1000:.2f} ms per rebased commit")
    print(f"  flush after each rebase (read the record, decide, send): median {statistics.median(flushes):.2f} s"
          f" ({statistics.median(flushes) / n * 1000:.2f} ms per rebased commit)")
    print(f"  sent after the rebases: {after - delivered} request(s);"
          f" comments per story: {min(per_story.values())}..{max(per_story.values())}"
          f" (each story heard of {n // STORIES} changes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
