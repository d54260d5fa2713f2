#!/usr/bin/env python3
"""What the svn post-commit hook adds to `svn commit` over file://.

Run by hand:  .venv/bin/python benchmarks/bench_svn_commit.py [--commits 30]

Three repositories side by side: no hook (the baseline), the hook with messages that reference a
story (`ref`: `svnlook log`, the quick test, the revision number recorded and synced), and the
hook with messages that cannot (`none`: `svnlook log` and the quick test only). Commits rotate
between them, every message holds non-ASCII text, autostart is off (the agent's reading and
delivery are not part of a commit). Prints the median and p90 of `svn commit` for each, and the
median added time and ratio against the baseline measured in the same run. svn waits for
post-commit before it answers the client, so this is what a developer feels.
Target (issue 8): <= 10 ms added.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from testing import svn as tsvn  # noqa: E402
from testing.repos import run  # noqa: E402


def setup(base: str, name: str, reader: str | None) -> tuple[tsvn.Client, str, str | None]:
    folder = os.path.join(base, name)
    os.makedirs(folder)
    repos = str(tsvn.create_repository(os.path.join(folder, "repo")))
    config = None
    if reader:
        config = os.path.join(folder, "config.yaml")
        token = os.path.join(folder, "token")
        with open(token, "w") as fh:
            fh.write("bench-token\n")
        os.chmod(token, 0o600)
        with open(config, "w") as fh:
            fh.write(f"spool_dir: {folder}/spool\ntracker: {{url: 'http://127.0.0.1:9', api: v3,"
                     f" token_file: {token}}}\nagent: {{autostart: false}}\nsvn: {{reader: {reader}}}\n")
        run([sys.executable, "-m", "hookagent", "install", "--config", config, repos])
    client = tsvn.Client(os.path.join(folder, "conf"))
    wc = str(client.checkout(tsvn.file_url(repos), os.path.join(folder, "wc")))
    client.commit(wc, "warm up [#1] é")   # the spool is made on first use
    return client, wc, config


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commits", type=int, default=30, help="commits per repository (default 30)")
    args = p.parse_args()
    if not tsvn.have_svnserve():
        print("svn, svnadmin and svnlook are needed", file=sys.stderr)
        return 2
    base = tempfile.mkdtemp(prefix="bench-svn-")
    readers = {"plain": None, "ref": "svnlook", "none": "svnlook"}
    rigs = {}
    try:
        for name, reader in readers.items():
            rigs[name] = setup(base, name, reader)
        times: dict[str, list[float]] = {name: [] for name in rigs}
        for i in range(args.commits):
            for name, (client, wc, _config) in rigs.items():
                t = time.perf_counter()
                ref = f" [#{100 + i}]" if name != "none" else ""
                client.commit(wc, f"change {i} — café 日本{ref}")
                times[name].append(time.perf_counter() - t)
        base_median = statistics.median(times["plain"])
        print(f"svn commit over file://, {args.commits} commits each")
        for name, values in times.items():
            med = statistics.median(values)
            p90 = statistics.quantiles(values, n=10)[-1]
            print(f"  {name:8s} median {med * 1000:6.1f} ms  p90 {p90 * 1000:6.1f} ms  added"
                  f" {(med - base_median) * 1000:6.1f} ms  ratio {med / base_median:4.2f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
