#!/usr/bin/env python3
"""What the post-receive hook adds to `git push`, and whether every ref-bearing commit arrives once.

Run by hand:  .venv/bin/python benchmarks/bench_push.py [--commits 10000] [--rounds 3]
                  [--big 100000] [--branches 200] [--singles 12] [--commit-graph] [--skip-big]

Part 1, a big push: a history of --commits commits (testing/history.py, every third
message carries a story reference in one of Tracker's forms) is pushed into a fresh bare
repository with `hookagent install` (autostart on, a loopback DevServer as tracker) and into one
without, alternating which goes first, --rounds times. The push is timed from `git push` start to
its return: the detached `hookagent flush` the hook starts runs after that and is not counted,
but the script waits for it to finish before the next measurement (so it never competes with
one). Then `hookagent flush` is run by hand and the DevServer must hold exactly the ref-bearing
commits (counted independently with `git rev-list --grep`), each once. Target: <= 2 s added.

Part 2, a small push into a big repository: --big commits and --branches branches spread over
the history; ONE new commit is pushed, alternately onto main and onto branches deep in history,
into the hooked copy and the plain copy. The hook's first push (no snapshot of processed refs yet)
is shown apart. Target: <= 100 ms added (median). --commit-graph writes a commit-graph file in
both copies first (what `git gc` does on most servers); without it is the worst case.
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
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from hookagent.agent.lifetime import flush_running  # noqa: E402
from hookagent.devserver import DevServer  # noqa: E402

from common import TOKEN, git_env  # noqa: E402
import common  # noqa: E402
# The repository's own history maker (stdlib only: runs as a script with the benchmark's git env).
MAKE_HISTORY = [sys.executable, os.path.join(ROOT, "testing", "history.py")]
# The bracket forms it writes ([#1], [fixes #1], [Finishes #1 #2], ...): independent of stories.py.
REF_GREP = r"\[[A-Za-z ]*#[0-9]"


def run(cmd: list[str], env: dict, **kw) -> str:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


AUTOSTART = True


def make_site(base: str, name: str, url: str) -> str:
    return common.make_site(base, name, url, api="v5", autostart=AUTOSTART, min_backoff=1, max_backoff=5,
                            timeout=10)


def install(bare: str, conf: str, env: dict) -> None:
    run([sys.executable, "-m", "hookagent", "install", bare, "--config", conf], env)


def timed_push(src: str, dest: str, spec: str, env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(["git", "-C", src, "push", "-q", dest, spec], env=env, capture_output=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"git push {dest} {spec} failed: {proc.stderr.decode(errors='replace')}")
    if proc.stderr.strip():
        print(f"  push stderr: {proc.stderr.decode(errors='replace').strip()}", file=sys.stderr)
    return elapsed


def flush_idle(conf: str) -> bool:
    from hookagent import config
    cfg = config.load(conf)
    return not flush_running(cfg.spool_dir, cfg.tracker.destination)


def wait_for_background(server: DevServer, want: int, conf: str, timeout: float = 300) -> float:
    """Wait until the detached flush delivered `want` commits and let its lock go."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if len(server.received()) >= want and flush_idle(conf):
            break
        time.sleep(0.05)
    return time.time() - t0


def ms(x: float) -> str:
    return f"{x * 1000:8.1f} ms"


def summary(label: str, hook: list[float], plain: list[float], target: float) -> bool:
    added = [h - p for h, p in zip(hook, plain)]
    mh, mp, ma = statistics.median(hook), statistics.median(plain), statistics.median(added)
    print(f"{label}")
    print(f"  {'with hook (median)':>20} {'without (median)':>18} {'added (median)':>16} {'added max':>12} {'ratio':>7}")
    print(f"  {ms(mh):>20} {ms(mp):>18} {ms(ma):>16} {ms(max(added)):>12} {mh / mp:7.2f}")
    ok = ma <= target
    print(f"  target <= {target * 1000:.0f} ms added: {'met' if ok else 'NOT met'}")
    return ok


# ---------------------------------------------------------------------------- part 1
def big_push(base: str, env: dict, n: int, rounds: int) -> bool:
    src = os.path.join(base, "src")
    made = run([*MAKE_HISTORY, src, "--commits", str(n)], env).strip()
    expected = set(run(["git", "-C", src, "rev-list", f"--grep={REF_GREP}", "main"], env).split())
    print(f"part 1: testing/history.py says '{made}'; git rev-list --grep finds {len(expected)} ref-bearing commits")
    hook_t, plain_t, ok = [], [], True
    for r in range(rounds):
        server = DevServer(token=TOKEN).start()
        try:
            conf = make_site(base, f"site{r}", server.url)
            hooked, plain = os.path.join(base, f"hooked{r}.git"), os.path.join(base, f"plain{r}.git")
            for b in (hooked, plain):
                run(["git", "init", "-q", "--bare", b], env)
            install(hooked, conf, env)
            order = [("hook", hooked), ("plain", plain)] if r % 2 == 0 else [("plain", plain), ("hook", hooked)]
            for kind, dest in order:
                t = timed_push(src, dest, "main", env)
                (hook_t if kind == "hook" else plain_t).append(t)
                if kind == "hook" and AUTOSTART:
                    waited = wait_for_background(server, len(expected), conf)
                    print(f"  round {r}: hooked push {t:.3f} s; the detached flush then delivered "
                          f"{len(server.received())} commits in {waited:.1f} s more", file=sys.stderr)
            run([sys.executable, "-m", "hookagent", "flush", "--config", conf, "--quiet"], env)
            got = [rec["commit_id"] for rec in server.received()]
            once = len(got) == len(set(got))
            exact = set(got) == expected
            print(f"  round {r}: delivered {len(got)} records, {len(set(got))} distinct commits; "
                  f"exactly the ref-bearing ones: {exact}; each once: {once}")
            ok = ok and once and exact
        finally:
            server.stop()
    met = summary(f"part 1: git push of {n} new commits into an empty bare repository, "
                  f"{rounds} rounds alternating", hook_t, plain_t, 2.0)
    return met and ok


# ---------------------------------------------------------------------------- part 2
def small_pushes(base: str, env: dict, n: int, branches: int, singles: int, graph: bool) -> bool:
    server_repo = os.path.join(base, "big.git")
    t0 = time.time()
    made = run([*MAKE_HISTORY, server_repo, "--bare", "--commits", str(n)], env).strip()
    shas = run(["git", "-C", server_repo, "rev-list", "--reverse", "main"], env).split()
    step = max(1, len(shas) // (branches + 1))
    lines = [f"create refs/heads/b{i:03d} {shas[(i + 1) * step - 1]}\n" for i in range(branches)]
    run(["git", "-C", server_repo, "update-ref", "--stdin"], env, input="".join(lines))
    hooked, plain = os.path.join(base, "big-hooked.git"), os.path.join(base, "big-plain.git")
    for dest in (hooked, plain):
        shutil.copytree(server_repo, dest, symlinks=True)
        if graph:
            run(["git", "-C", dest, "commit-graph", "write", "--reachable"], env)
    client = os.path.join(base, "client.git")
    run(["git", "clone", "-q", "--bare", server_repo, client], env)
    server = DevServer(token=TOKEN).start()
    conf = make_site(base, "bigsite", server.url)
    install(hooked, conf, env)
    print(f"part 2: '{made}', {branches} branches, commit-graph: {'yes' if graph else 'no'} "
          f"(setup {time.time() - t0:.1f} s)")
    tips = {f"b{i:03d}": shas[(i + 1) * step - 1] for i in range(branches)}
    tips["main"] = shas[-1]
    tree = run(["git", "-C", client, "rev-parse", "main^{tree}"], env).strip()
    delivered = 0

    def one(i: int, branch: str) -> tuple[float, float]:
        nonlocal delivered
        sha = run(["git", "-C", client, "commit-tree", tree, "-p", tips[branch], "-m",
                   f"Small change {i} [#{900000 + i}]"], env).strip()
        tips[branch] = sha
        spec = f"{sha}:refs/heads/{branch}"
        times = {}
        for kind, dest in ([("hook", hooked), ("plain", plain)] if i % 2 else [("plain", plain), ("hook", hooked)]):
            times[kind] = timed_push(client, dest, spec, env)
            if kind == "hook" and AUTOSTART:
                delivered += 1
                wait_for_background(server, delivered, conf, timeout=60)
        return times["hook"], times["plain"]

    try:
        names = sorted(t for t in tips if t not in ("main", "b000", "b001"))
        first_h, first_p = one(0, "b000")
        print(f"  first push after install (no snapshot: the spool did not exist at install): "
              f"with hook {ms(first_h)}, without {ms(first_p)}, added {ms(first_h - first_p)}")
        state = os.path.join(os.path.dirname(conf), "spool", "state")
        for name in os.listdir(state):
            if name.startswith("refs-"):
                os.unlink(os.path.join(state, name))
        nosnap_h, nosnap_p = one(1000, "b001")
        print(f"  a push without snapshot (Python keeps the refs as they were before it): "
              f"with hook {ms(nosnap_h)}, without {ms(nosnap_p)}, added {ms(nosnap_h - nosnap_p)}")
        deep = shas[len(shas) // 2 + 7]          # no ref points here: git must walk to prove it old
        tips["deep"] = deep
        deep_h, deep_p = one(1001, "deep")
        print(f"  (information, no target) a new branch made of one commit on top of a commit half-way"
              f" down the history: with hook {ms(deep_h)}, without {ms(deep_p)}, added {ms(deep_h - deep_p)}")
        hook_t, plain_t = [], []
        for i in range(1, singles + 1):
            branch = "main" if i % 2 else names[(i * 37) % len(names)]
            h, p = one(i, branch)
            hook_t.append(h)
            plain_t.append(p)
        log_order(plain, client, tree, tips, env)
        run([sys.executable, "-m", "hookagent", "flush", "--config", conf, "--quiet"], env)
        got = [rec["commit_id"] for rec in server.received()]
        exact = len(got) == len(set(got)) == singles + 3
        print(f"  delivered {len(got)} records for {singles + 3} one-commit pushes, each once: {exact}")
    finally:
        server.stop()
    met = summary(f"part 2: git push of ONE commit into {n} commits / {branches} branches, "
                  f"{singles} pushes alternating (main and old branches)", hook_t, plain_t, 0.1)
    return met and exact


def log_order(repo: str, client: str, tree: str, tips: dict, env: dict) -> None:
    """The hook's `git log` for a one-commit push, with and without --topo-order (which it
    dropped): same repository, same excluded tips, 7 runs each, medians."""
    parent = tips["main"]
    sha = run(["git", "-C", client, "commit-tree", tree, "-p", parent, "-m", "probe [#1]"], env).strip()
    run(["git", "-C", client, "push", "-q", repo, f"{sha}:refs/bench/probe"], env)
    spec = "\n".join([sha] + [f"^{t}" for t in sorted(set(tips.values()))]) + "\n"
    out = {}
    for label, extra in (("--reverse", []), ("--topo-order --reverse", ["--topo-order"])):
        ts = []
        for _ in range(7):
            t0 = time.perf_counter()
            run(["git", "-C", repo, "log", "--format=%H", "--stdin", "--reverse", *extra], env, input=spec)
            ts.append(time.perf_counter() - t0)
        out[label] = statistics.median(ts)
    run(["git", "-C", repo, "update-ref", "-d", "refs/bench/probe"], env)
    print(f"  git log NEW --stdin with {len(set(tips.values()))} excluded tips: --reverse {ms(out['--reverse'])},"
          f" --topo-order --reverse {ms(out['--topo-order --reverse'])}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--big", type=int, default=100000)
    ap.add_argument("--branches", type=int, default=200)
    ap.add_argument("--singles", type=int, default=12)
    ap.add_argument("--commit-graph", action="store_true")
    ap.add_argument("--skip-big", action="store_true", help="part 1 only")
    ap.add_argument("--skip-many", action="store_true", help="part 2 only")
    ap.add_argument("--no-autostart", action="store_true",
                    help="hooks start no flush (the script flushes by hand): shows what the detached"
                         " flush's CPU costs a push on a busy machine")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    global AUTOSTART
    AUTOSTART = not args.no_autostart
    base = tempfile.mkdtemp(prefix="bench-push-")
    env = git_env(base)
    print(f"python {sys.version.split()[0]}, {run(['git', '--version'], env).strip()}, work dir {base}")
    ok = True
    try:
        if not args.skip_many:
            ok = big_push(base, env, args.commits, args.rounds) and ok
        if not args.skip_big:
            ok = small_pushes(base, env, args.big, args.branches, args.singles, args.commit_graph) and ok
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print("all targets and delivery checks met" if ok else "SOME TARGET OR CHECK NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
