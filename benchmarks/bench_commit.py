#!/usr/bin/env python3
"""What the hooks add to `git commit` and to `git rebase`, against the same work without them.

Run by hand:  .venv/bin/python benchmarks/bench_commit.py [--commits 60] [--rebase 500]

Commits: two work trees side by side, one with `hookagent install` (post-commit, post-rewrite,
autostart on, a loopback DevServer as the tracker), one without. Commits alternate between them
(hook, plain, hook, plain, ...) and the script prints the median and p90 of `git commit` for
both and the median added time, for three kinds of message:
  none      cannot hold a reference (no `[`): the hook's quick test ends it
  ref       references a story: the hook records the raw commit (synced) and wakes the agent
  ref-down  the same with the tracker down (a closed port): the commit never waits for it
Rebase: a branch of --rebase referencing commits rebased onto a moved main, in a clone with the
hooks and one without, alternating --rounds times; the added time per rebased commit, and what
the hooks recorded (one inbox record) and the agent queued (one entry per rebased commit).

Targets (issue 8): none <= 3 ms, ref <= 6 ms, rebase <= 2.5 ms per rebased commit.

Floors, measured in the same run so the targets can be read on this machine: a work tree whose
post-commit is an empty sh script (what git pays to run any hook), and one whose post-commit runs
`git cat-file commit HEAD` and a shell `case` on it (what any hook that looks at the message pays).
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

from common import TOKEN, free_port, git_env  # noqa: E402
import common  # noqa: E402

MESSAGES = {"none": "Change {i}: tidy the torpedo bay", "ref": "Change {i} [fixes #{s}]",
            "ref-down": "Change {i} [fixes #{s}]", "empty-hook": "Change {i} [fixes #{s}]",
            "cat-file": "Change {i} [fixes #{s}]"}


def install(repo: str, conf: str, env: dict) -> None:
    subprocess.run([sys.executable, "-m", "hookagent", "install", repo, "--config", conf],
                   env=env, check=True, capture_output=True)


def commit(repo: str, i: int, message: str, env: dict) -> float:
    with open(os.path.join(repo, "f.txt"), "a") as fh:
        fh.write(f"{i}\n")
    subprocess.run(["git", "-C", repo, "add", "f.txt"], env=env, check=True)
    t0 = time.perf_counter()
    subprocess.run(["git", "-C", repo, "commit", "-q", "-m", message.format(i=i, s=100 + i % 5)],
                   env=env, check=True)
    return time.perf_counter() - t0


FLOORS = {
    "empty-hook": "#!/bin/sh\nexit 0\n",
    "cat-file": "#!/bin/sh\nraw=$(git cat-file commit HEAD && echo .)\ncase $raw in *'['*'#'[0-9]*']'*) ;; esac\nexit 0\n",
}


def floor_hook(repo: str, kind: str, env: dict) -> None:
    for hook in ("post-commit", "post-rewrite"):
        path = os.path.join(repo, ".git", "hooks", hook)
        with open(path, "w") as fh:
            fh.write(FLOORS[kind] if hook == "post-commit" or kind == "empty-hook" else FLOORS["empty-hook"])
        os.chmod(path, 0o755)


def commits(base: str, kind: str, url: str, n: int, env: dict) -> tuple[list[float], list[float]]:
    conf = common.make_site(base, kind, url)
    hooked, plain = os.path.join(base, kind, "hooked"), os.path.join(base, kind, "plain")
    for repo in (hooked, plain):
        subprocess.run(["git", "init", "-q", repo], env=env, check=True)
    if kind in FLOORS:
        floor_hook(hooked, kind, env)
    else:
        install(hooked, conf, env)
    for repo in (hooked, plain):      # warm-up: page cache, the spool made on first use
        commit(repo, 0, MESSAGES["ref"], env)
    with_hook, without = [], []
    for i in range(1, n + 1):
        with_hook.append(commit(hooked, i, MESSAGES[kind], env))
        without.append(commit(plain, i, MESSAGES[kind], env))
    return with_hook, without


def rebase(base: str, url: str, n: int, rounds: int, env: dict) -> tuple[list[float], list[float], list[float], str]:
    conf = common.make_site(base, "rebase", url, autostart=False)
    origin = os.path.join(base, "rebase", "origin")
    common.topic_history(origin, n, 50, env)
    hooked, plain = os.path.join(base, "rebase", "hooked"), os.path.join(base, "rebase", "plain")
    empty = os.path.join(base, "rebase", "empty")
    for repo in (hooked, plain, empty):
        subprocess.run(["git", "clone", "-q", origin, repo], env=env, check=True)
        subprocess.run(["git", "-C", repo, "checkout", "-q", "-b", "topic", "origin/topic"], env=env, check=True)
    install(hooked, conf, env)
    floor_hook(empty, "empty-hook", env)
    times: dict[str, list[float]] = {hooked: [], plain: [], empty: []}
    for r in range(rounds):
        for repo in (hooked, plain, empty):
            subprocess.run(["git", "-C", repo, "checkout", "-q", "-B", "main", "origin/main"], env=env, check=True)
            with open(os.path.join(repo, f"main{r}.txt"), "w") as fh:
                fh.write("m")
            subprocess.run(["git", "-C", repo, "add", "."], env=env, check=True)
            subprocess.run(["git", "-C", repo, "commit", "-q", "-m", f"main moves {r}"], env=env, check=True)
            subprocess.run(["git", "-C", repo, "checkout", "-q", "topic"], env=env, check=True)
            t0 = time.perf_counter()
            subprocess.run(["git", "-C", repo, "rebase", "-q", "main"], env=env, check=True)
            times[repo].append(time.perf_counter() - t0)
    spool = os.path.join(base, "rebase", "spool")
    records = os.listdir(os.path.join(spool, "inbox"))
    queued = subprocess.run([sys.executable, "-c", "import sys; from hookagent import config;"
                             " from hookagent.agent.ingest import Inbox; from hookagent.spool import Spool;"
                             " c = config.load(sys.argv[1]); print(Inbox(c, Spool(c.spool_dir)).ingest().queued)",
                             conf], env=env, check=True, capture_output=True, text=True).stdout.strip()
    note = f"{len(records)} inbox record(s) after {rounds} rebase(s); the agent queued {queued} entries from them"
    return times[hooked], times[plain], times[empty], note


def ms(x: float) -> str:
    return f"{x * 1000:7.2f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=60)
    ap.add_argument("--rebase", type=int, default=500, help="commits in the rebased branch")
    ap.add_argument("--rounds", type=int, default=3, help="rebases per side")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="bench-commit-")
    env = git_env(base)
    up = DevServer(token=TOKEN)
    up.start()
    rows = []
    try:
        for kind in ("empty-hook", "cat-file", "none", "ref", "ref-down"):
            url = up.url if kind != "ref-down" else f"http://127.0.0.1:{free_port()}"
            h, p = commits(base, kind, url, args.commits, env)
            rows.append((kind, h, p, [a - b for a, b in zip(h, p)]))
        rh, rp, re_, note = rebase(base, up.url, args.rebase, args.rounds, env)
    finally:
        up.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(f"git commit, {args.commits} commits per side, alternating; python {sys.version.split()[0]},"
          f" load {os.getloadavg()[0]:.2f}")
    print(f"{'hook':10} {'with hooks':>12} {'without':>12} {'added':>12} {'added p90':>12} {'target':>8}")
    targets = {"none": 0.003, "ref": 0.006, "ref-down": 0.006, "empty-hook": None, "cat-file": None}
    met = True
    for kind, h, p, added in rows:
        med = statistics.median(added)
        p90 = sorted(added)[int(0.9 * (len(added) - 1))]
        target = targets[kind]
        verdict = "floor" if target is None else ("met" if med <= target else "MISSED")
        met &= target is None or med <= target
        print(f"{kind:10} {ms(statistics.median(h)):>12} {ms(statistics.median(p)):>12} {ms(med):>12}"
              f" {ms(p90):>12} {verdict:>8}")
    per = (statistics.median(rh) - statistics.median(rp)) / args.rebase
    ok = per <= 0.0025
    met &= ok
    print(f"git rebase of {args.rebase} referencing commits, {args.rounds} per side: with hooks"
          f" {statistics.median(rh):.3f} s, without {statistics.median(rp):.3f} s, added {per * 1000:.2f} ms"
          f" per rebased commit (target 2.5 ms: {'met' if ok else 'MISSED'})")
    floor = (statistics.median(re_) - statistics.median(rp)) / args.rebase
    print(f"  floor: empty sh post-commit and post-rewrite hooks add {floor * 1000:.2f} ms per rebased commit")
    print(f"  {note}")
    print(f"all targets {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
