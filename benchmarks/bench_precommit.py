#!/usr/bin/env python3
"""What recording a commit costs through team hook tools, against our own hook and a plain commit.

Run by hand:  .venv/bin/python benchmarks/bench_precommit.py [--commits 30]

Work trees side by side, one per way of running hookagent at post-commit, and one without hooks
(the baseline, measured in the same run). Commits go round-robin over them (plain, sh, path,
husky, pre-commit, plain, ...) so a busy moment costs every way alike:
  plain       no hook
  sh          `hookagent install`: our sh hook (absolute paths, no Python for a commit)
  path        .git/hooks/post-commit is the team line, `hookagent hook post-commit` from PATH
              (Python for every commit; what a hook manager's script runs)
  husky       husky 9's dispatcher (.husky/_/h) running that line from .husky/post-commit
              (skipped when npm cannot install husky)
  pre-commit  this checkout's .pre-commit-hooks.yaml through `pre-commit install` (pre-commit
              in Python, then hookagent in pre-commit's environment)
for two kinds of message: `none` cannot hold a reference (every way ends at a quick test), `ref`
names a story (the commit is recorded, synced). The agent is not started (autostart off): the
figures are the commit's own wait. Printed: median and p90 of `git commit` per way, and the
median added to a plain commit, in ms and as a ratio to the plain commit.
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
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from testing import teamtools  # noqa: E402

from common import git_env  # noqa: E402
import common  # noqa: E402

LINE = "command -v hookagent >/dev/null 2>&1 && hookagent hook post-commit || true"
MESSAGES = {"none": "Change {i}: tidy the torpedo bay", "ref": "Change {i} [fixes #{s}]"}


def run(cmd: list[str], cwd: str, env: dict) -> None:
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)


def commit(repo: str, i: int, message: str, env: dict) -> float:
    with open(os.path.join(repo, "f.txt"), "a") as fh:
        fh.write(f"{repo} {i}\n")      # each work tree's commits its own (equal commits share a record)
    run(["git", "add", "f.txt"], repo, env)
    t0 = time.perf_counter()
    run(["git", "commit", "-q", "-m", message.format(i=i, s=100 + i % 5)], repo, env)
    return time.perf_counter() - t0


def setup(base: str, env: dict, conf: str) -> dict[str, str]:
    """The work trees, by way; each with one commit made."""
    trees: dict[str, str] = {}
    for way in ("plain", "sh", "path"):
        trees[way] = os.path.join(base, way)
        run(["git", "init", "-q", trees[way]], base, env)
    run([sys.executable, "-m", "hookagent", "install", trees["sh"], "--config", conf], base, env)
    hook = os.path.join(trees["path"], ".git", "hooks", "post-commit")
    with open(hook, "w") as fh:
        fh.write(f"#!/bin/sh\n{LINE}\n")
    os.chmod(hook, 0o755)
    try:
        modules = teamtools.install_husky(Path(base) / "npm")
        trees["husky"] = str(teamtools.husky_work_tree(Path(base) / "husky", modules))
        with open(os.path.join(trees["husky"], ".husky", "post-commit"), "w") as fh:
            fh.write(LINE + "\n")
    except teamtools.Unavailable as exc:
        print(f"husky skipped: {exc}")
    source, rev = teamtools.committed_checkout(Path(base))
    trees["pre-commit"] = os.path.join(base, "pre-commit")
    run(["git", "init", "-q", trees["pre-commit"]], base, env)
    with open(os.path.join(trees["pre-commit"], ".pre-commit-config.yaml"), "w") as fh:
        fh.write(f"repos:\n  - repo: {source}\n    rev: {rev}\n    hooks:\n      - id: hookagent\n")
    run([sys.executable, "-m", "pre_commit", "install", "--hook-type", "post-commit", "--install-hooks"],
        trees["pre-commit"], env)
    run(["git", "add", ".pre-commit-config.yaml"], trees["pre-commit"], env)
    for repo in trees.values():      # warm-up: page cache, the spool made on first use
        commit(repo, 0, MESSAGES["ref"], env)
    return trees


def ms(x: float) -> str:
    return f"{x * 1000:8.1f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=30, help="commits per way and kind of message")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="bench-precommit-")
    env = git_env(base)
    conf = common.make_site(base, "site", "http://127.0.0.1:9", autostart=False)
    env.update(HOOKAGENT_CONFIG=conf, PRE_COMMIT_HOME=os.path.join(base, "pre-commit-home"),
               PATH=teamtools.path_with_hookagent(Path(base) / "bin"))
    os.environ.update(env)      # for the helpers that run npm, npx and git with ours
    times: dict[tuple[str, str], list[float]] = {}
    try:
        trees = setup(base, env, conf)
        for kind, message in MESSAGES.items():
            for i in range(1, args.commits + 1):
                for way, repo in trees.items():
                    times.setdefault((kind, way), []).append(commit(repo, i, message, env))
        spool = os.path.join(base, "site", "spool", "inbox")
        recorded = len(os.listdir(spool)) if os.path.isdir(spool) else 0   # 4 ways x (commits + 1)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(f"git commit at post-commit, {args.commits} commits per way and message, round-robin; python"
          f" {sys.version.split()[0]}, load {os.getloadavg()[0]:.2f}; {recorded} records written")
    print(f"{'message':8} {'way':11} {'median':>11} {'p90':>11} {'added':>11} {'x plain':>8}")
    for kind in MESSAGES:
        plain = statistics.median(times[(kind, "plain")])
        for way in trees:
            t = sorted(times[(kind, way)])
            med = statistics.median(t)
            p90 = t[int(0.9 * (len(t) - 1))]
            print(f"{kind:8} {way:11} {ms(med)} {ms(p90)} {ms(med - plain)} {med / plain:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
