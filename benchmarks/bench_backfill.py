#!/usr/bin/env python3
"""`hookagent backfill` against the `git log` it is built on, side by side.

Run by hand:  .venv/bin/python benchmarks/bench_backfill.py [--commits 200000] [--rounds 5]
                  [--refs-every 3] [--keep DIR]

A history of --commits commits is made with testing/history.py (a bare repository;
every --refs-every-th message carries a story reference in one of Tracker's forms). Then, for
--rounds rounds, three commands run one after the other, in an order that alternates from round
to round (forward, then backward), each in a fresh measuring process:

  baseline  git log --format=%H%x00%an%x00%aI%x00%B%x00      (stdout to /dev/null)
  dry       hookagent backfill REPO --dry-run --format jsonl  (stdout to /dev/null)
  enqueue   hookagent backfill REPO                           (a fresh spool each time; the
            tracker URL is a closed loopback port: nothing is delivered, as with autostart off)

Printed per command: median wall time, CPU (user+sys of the whole process tree), the peak RSS
of the hookagent process itself and the peak RSS of its process tree (which includes git log:
git keeps every commit it walked, so that part grows with the history whatever reads it). Then
the ratios against the baseline, as the median of the per-round ratios (each round measures
the three side by side). Targets (issue 5): dry <= 1.5x, enqueue <= 3x, hookagent's own RSS
<= 150 MB. Each enqueue run must report exactly the referencing commits testing/history.py wrote.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MAKE_HISTORY = os.path.join(ROOT, "testing", "history.py")   # the repository's own (stdlib only)

# Runs argv, waits, prints what it cost: a fresh process so RUSAGE_CHILDREN covers this run only.
MEASURE = r"""
import json, os, resource, subprocess, sys, time
out = open(os.devnull, "wb")
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], stdout=out, stderr=subprocess.PIPE)
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "tree_rss_kb": ru.ru_maxrss,
                  "rc": p.returncode, "stderr": p.stderr.decode("utf-8", "replace")}))
"""
# hookagent's entry point, reporting its own peak RSS (not its git child's) on stderr at exit.
HOOKAGENT = (r"import resource, sys; from hookagent.main import main; rc = main(sys.argv[1:]);"
             r" sys.stderr.write('\nSELF_RSS_KB %d\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss);"
             r" sys.exit(rc)")
LOG_FORMAT = "--format=%H%x00%an%x00%aI%x00%B%x00"


def measure(cmd: list[str], env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"measuring {cmd} failed: {proc.stderr}")
    res = json.loads(proc.stdout)
    if res["rc"] != 0:
        sys.exit(f"{' '.join(cmd)} exited {res['rc']}:\n{res['stderr']}")
    m = re.search(r"SELF_RSS_KB (\d+)", res["stderr"])
    res["self_rss_kb"] = int(m.group(1)) if m else None
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--refs-every", type=int, default=3)
    ap.add_argument("--keep", help="make (or reuse) the history in this folder and keep it")
    o = ap.parse_args()

    base = tempfile.mkdtemp(prefix="bench-backfill-")
    try:
        repo = os.path.join(o.keep or base, f"history-{o.commits}-{o.refs_every}.git")
        if not os.path.isdir(repo):
            made = subprocess.run([sys.executable, MAKE_HISTORY, repo, "--commits", str(o.commits), "--bare",
                                   "--refs-every", str(o.refs_every)], capture_output=True, text=True, check=True)
            print(f"history: {made.stdout.strip()}")
        referencing = int(subprocess.run(["git", "-C", repo, "rev-list", "--count", "--grep", r"\[[A-Za-z ]*#[0-9]",
                                          "HEAD"], capture_output=True, text=True, check=True).stdout)
        spool = os.path.join(base, "spool")
        token = os.path.join(base, "token")
        with open(token, "w") as fh:
            fh.write("bench-token\n")
        os.chmod(token, 0o600)
        config = os.path.join(base, "config.yaml")
        with open(config, "w") as fh:
            json.dump({"spool_dir": spool, "agent": {"autostart": False},
                       "tracker": {"url": "http://127.0.0.1:9", "api": "v3", "token_file": token}}, fh)
        env = dict(os.environ, PYTHONPATH=ROOT)
        cmds = {
            "baseline": ["git", "-C", repo, "log", LOG_FORMAT],
            "dry": [sys.executable, "-c", HOOKAGENT, "backfill", repo, "--dry-run", "--format", "jsonl",
                    "--config", config],
            "enqueue": [sys.executable, "-c", HOOKAGENT, "backfill", repo, "--config", config],
        }
        results: dict[str, list[dict]] = {k: [] for k in cmds}
        print(f"{o.commits} commits, {referencing} with references; {o.rounds} rounds, alternating order")
        for r in range(o.rounds):
            order = list(cmds) if r % 2 == 0 else list(reversed(cmds))
            for name in order:
                if name == "enqueue":
                    shutil.rmtree(spool, ignore_errors=True)
                res = measure(cmds[name], env)
                if name == "enqueue":
                    m = re.search(r"enqueued (\d+);", res["stderr"])
                    if not m or int(m.group(1)) != referencing:
                        sys.exit(f"enqueue run did not enqueue the {referencing} referencing commits:\n{res['stderr']}")
                results[name].append(res)
            print(f"  round {r + 1}: " + ", ".join(f"{n} {results[n][-1]['wall']:.2f}s" for n in order))

        print(f"\n{'':9} {'wall (median)':>14} {'cpu (median)':>13} {'own peak RSS':>13} {'tree peak RSS':>14}")
        for name, runs in results.items():
            own = [x["self_rss_kb"] for x in runs if x["self_rss_kb"]]
            print(f"{name:9} {statistics.median(x['wall'] for x in runs):13.2f}s"
                  f" {statistics.median(x['cpu'] for x in runs):12.2f}s"
                  f" {(max(own) / 1024 if own else 0):10.0f} MB {max(x['tree_rss_kb'] for x in runs) / 1024:11.0f} MB")
        print()
        for name, target in (("dry", 1.5), ("enqueue", 3.0)):
            ratios = [a["wall"] / b["wall"] for a, b in zip(results[name], results["baseline"])]
            cpu = [a["cpu"] / b["cpu"] for a, b in zip(results[name], results["baseline"])]
            verdict = "ok" if statistics.median(ratios) <= target else "OVER TARGET"
            print(f"{name:8} / git log: wall x{statistics.median(ratios):.2f} (per-round {min(ratios):.2f}.."
                  f"{max(ratios):.2f}; target <= {target}: {verdict}); cpu x{statistics.median(cpu):.2f}")
        own = max(x["self_rss_kb"] for n in ("dry", "enqueue") for x in results[n]) / 1024
        print(f"hookagent's own peak RSS: {own:.0f} MB (target <= 150 MB: {'ok' if own <= 150 else 'OVER'})")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
