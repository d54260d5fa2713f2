"""Make a git repository with a synthetic history, fast, for tests and benchmarks.

    python -m testing.history DIR --commits N [--refs-every K] [--bare] [--branch main] [--seed S]

Commits are written with `git fast-import`, so a million commits take seconds.
Every K-th commit message carries a Tracker story reference in one of the
documented forms ([#id], [fixes #id], [Finishes #id #id], [delivers #id]);
the others carry none.  Each commit touches one small file.  Prints the
number of commits and how many carry a reference.

The team's make-history tool, kept in the repository so the tests and benchmarks need
nothing beside it; the same arguments make the same history (same commit ids).
Standard library only, so it also runs as a plain script (python testing/history.py).
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys

FORMS = ["[#{a}]", "[fixes #{a}]", "[Finishes #{a} #{b}]", "[delivers #{a}]", "[completed #{a}, #{b}]"]


def make_history(dir: str | os.PathLike, commits: int, refs_every: int = 3, bare: bool = False,
                 branch: str = "main", seed: int = 7) -> int:
    """`git init` ``dir`` and write ``commits`` commits on ``branch``; returns how many carry a
    story reference (every ``refs_every``-th). Raises CalledProcessError when git fails."""
    if commits < 0 or refs_every < 1:
        raise ValueError(f"need commits >= 0 and refs_every >= 1, got {commits} and {refs_every}")
    rng = random.Random(seed)
    path = os.fspath(dir)
    subprocess.run(["git", "init", "-q", "-b", branch, *(["--bare"] if bare else []), path], check=True)
    fi = subprocess.Popen(["git", "-C", path, "fast-import", "--quiet"], stdin=subprocess.PIPE)
    assert fi.stdin is not None
    w = fi.stdin.write
    with_refs = 0
    t0 = 1_600_000_000
    try:
        for i in range(1, commits + 1):
            subject = "Change %d: adjust module %d" % (i, rng.randrange(1000))
            if i % refs_every == 0:
                form = FORMS[i // refs_every % len(FORMS)]
                a, b = 100_000_000 + i, 200_000_000 + i
                subject += " " + form.format(a=a, b=b)
                with_refs += 1
            msg = (subject + "\n\nBody line for commit %d.\n" % i).encode()
            blob = ("content %d\n" % i).encode()
            author = ("Dev %d <dev%d@example.com> %d +0000" % (i % 17, i % 17, t0 + i * 60)).encode()
            w(b"commit refs/heads/%s\n" % branch.encode())
            w(b"author %s\ncommitter %s\n" % (author, author))
            w(b"data %d\n%s\n" % (len(msg), msg))
            w(b"M 644 inline f%d.txt\ndata %d\n%s\n" % (i % 50, len(blob), blob))
    finally:
        fi.stdin.close()
        code = fi.wait()
    if code != 0:
        raise subprocess.CalledProcessError(code, ["git", "fast-import"])
    if not bare and commits:
        subprocess.run(["git", "-C", path, "checkout", "-q", branch], check=True)
    return with_refs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m testing.history", description=__doc__.splitlines()[0])
    p.add_argument("dir")
    p.add_argument("--commits", type=int, required=True)
    p.add_argument("--refs-every", type=int, default=3)
    p.add_argument("--bare", action="store_true")
    p.add_argument("--branch", default="main")
    p.add_argument("--seed", type=int, default=7)
    o = p.parse_args(argv)
    try:
        with_refs = make_history(o.dir, o.commits, refs_every=o.refs_every, bare=o.bare, branch=o.branch,
                                 seed=o.seed)
    except subprocess.CalledProcessError as exc:
        print(f"{p.prog}: {' '.join(exc.cmd)} failed ({exc.returncode})", file=sys.stderr)
        return 1
    except ValueError as exc:
        p.error(str(exc))
    print("%d commits, %d with story references" % (o.commits, with_refs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
