"""`hookagent demo`: the whole path, end to end, in a temporary folder, in a few seconds.

Creates a git repository, installs the hooks with the installer, starts the local receiver with
a few stories, makes commits with and without story references (the hooks record them and start
the agent), waits for delivery and prints what the receiver shows per story. Leaves nothing
running; the folder is removed unless --keep.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

STORIES = (101, 102, 103)
COMMITS = [
    ("Torpedoes now powered [fixes #101]", "torpedo.txt"),
    ("Refactor the warp core, no story here", "warp.txt"),
    ("Shields at 80% [#102] & <more> to come", "shields.txt"),
    ("Sensors calibrated [Finishes #102 #103]", "sensors.txt"),
    ("Release the shields [delivers #102]", "release.txt"),
    ("Merge pull request #12 from crew/tidy (not a story reference)", "tidy.txt"),
]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    p.add_argument("--api", choices=("v3", "v5", "github-push", "redmine"), default="v3",
                   help="wire format to use (default v3); redmine: a real Redmine, started here when"
                        " Debian's package is installed, or yours with --redmine-url")
    p.add_argument("--redmine-url", metavar="URL", help="with --api redmine: a Redmine of yours (not started here)")
    p.add_argument("--redmine-key-file", metavar="FILE",
                   help="with --redmine-url: a file holding an admin's API key (the demo makes a project and issues)")


def _commit_all(base: str, conf: str, env: dict, commits: list[tuple[str, str]], wait: int) -> None:
    """A work tree base/repo with the hooks installed for ``conf``; one real commit per
    (message, file name), each timed; then everything delivered (a flush, the hooks' agents)."""
    repo = os.path.join(base, "repo")
    _run(["git", "init", "-q", "-b", "main", repo], env)
    out = _run([sys.executable, "-m", "hookagent", "install", repo, "--config", conf], env)
    for line in out.strip().splitlines() or ["done"]:
        _say("install: " + line)
    for message, fname in commits:
        with open(os.path.join(repo, fname), "w", encoding="utf-8") as fh:
            fh.write(message + "\n")
        _run(["git", "add", fname], env, cwd=repo)
        t0 = time.perf_counter()
        _run(["git", "commit", "-q", "-m", message], env, cwd=repo)
        _say(f"commit ({(time.perf_counter() - t0) * 1000:.0f} ms): {message.splitlines()[0]}")
    _run([sys.executable, "-m", "hookagent", "flush", "--config", conf, "--wait", str(wait), "--quiet"], env)
    _wait_for_background_agents(conf)


def run(args: argparse.Namespace) -> int:
    if args.api == "redmine":
        return run_redmine(args)
    from hookagent.devserver import DevServer

    base = tempfile.mkdtemp(prefix="hookagent-demo-")
    token = os.urandom(12).hex()
    server = DevServer(token=token, stories=STORIES)
    server.start()
    try:
        _say(f"receiver: {server.url} (stories {', '.join('#%d' % s for s in STORIES)})")
        conf = _write_config(base, server.url, token, args.api)
        env = _git_env(base)
        _commit_all(base, conf, env, COMMITS, wait=20)
        _show(server)
        _run([sys.executable, "-m", "hookagent", "status", "--config", conf], env, echo=True)
    finally:
        server.stop()
        if args.keep:
            _say(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


REDMINE_COMMITS = [
    ("Torpedoes now powered, fixes #{0}", "torpedo.txt"),
    ("Refactor the warp core, no issue here", "warp.txt"),
    ("Shields at 80% & <more> to come, refs #{1}", "shields.txt"),
    ("Sensors calibrated\n\nfixes #{1}, #{2}", "sensors.txt"),
    ("Merge pull request #12 from crew/tidy (no keyword: not a reference)", "tidy.txt"),
]


def run_redmine(args: argparse.Namespace) -> int:
    """The demo against a real Redmine: a local one (Debian's package, hookagent/localredmine.py)
    or the one --redmine-url names; a project of its own with three issues."""
    from hookagent.errors import HookagentError
    from hookagent.localredmine import Redmine, Unavailable, installed
    local = None
    if args.redmine_url:
        if not args.redmine_key_file:
            raise HookagentError("demo: --redmine-url needs --redmine-key-file, a file holding an admin's API key")
        with open(args.redmine_key_file, encoding="utf-8") as fh:
            key = fh.read().strip()
        server = Redmine.remote(args.redmine_url, key)
    else:
        why = installed()
        if why:
            raise HookagentError(f"demo --api redmine: no Redmine here: {why}; or run the demo against"
                                 " yours: --redmine-url URL --redmine-key-file FILE (an admin's API key)")
        _say("starting a local Redmine (Debian's package; about 10 s)")
        local = server = Redmine()
        try:
            server.start()
        except Unavailable as exc:
            server.stop()
            raise HookagentError(f"demo --api redmine: {exc}") from None
    base = tempfile.mkdtemp(prefix="hookagent-demo-")
    try:
        server.setup_project(f"hookagent-demo-{os.urandom(3).hex()}")
        issues = [server.new_issue(subject) for subject in ("Torpedoes", "Shields", "Sensors")]
        _say(f"Redmine: {server.url}, project {server.project}, issues {', '.join('#%d' % i for i in issues)}")
        conf = _write_config(base, server.url, server.key, "redmine")
        env = _git_env(base)
        _commit_all(base, conf, env, [(t.format(*issues), f) for t, f in REDMINE_COMMITS], wait=60)
        _say("")
        _say("What Redmine shows (GET /issues/N.json?include=journals):")
        for number in issues:
            issue = server.issue(number)
            _say(f"  issue #{number} {issue['subject']}  status: {issue['status']['name']}")
            for journal in issue.get("journals", []):
                if journal.get("notes"):
                    _say(f"    - {journal['user']['name']}: {journal['notes'].splitlines()[0]}")
        _say("")
        _run([sys.executable, "-m", "hookagent", "status", "--config", conf], env, echo=True)
    finally:
        if local is not None:
            local.stop()
        if args.keep:
            _say(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


def _say(text: str) -> None:
    print(text, flush=True)


def _write_config(base: str, url: str, token: str, api: str) -> str:
    token_file = os.path.join(base, "token")
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    import yaml
    conf = os.path.join(base, "config.yaml")
    data = {
        "spool_dir": os.path.join(base, "spool"),
        "tracker": {"url": url, "api": api, "token_file": token_file, "timeout": 5 if api != "redmine" else 30},
        "retry": {"min_backoff": 0.2, "max_backoff": 2},
        "repos": [{"path": "*", "url": "https://git.example.com/{repo}/commit/{commit_id}"}],
        "agent": {"autostart": True},
    }
    if api == "redmine":
        data["tracker"]["redmine"] = {"statuses": {"finished": "Resolved"}}
    with open(conf, "w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    return conf


def _git_env(base: str) -> dict:
    env = dict(os.environ)
    env.update({"GIT_AUTHOR_NAME": "Demo Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
                "GIT_COMMITTER_NAME": "Demo Dev", "GIT_COMMITTER_EMAIL": "dev@example.com",
                "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.path.join(base, "gitconfig"),
                "HOOKAGENT_CACHE_DIR": os.path.join(base, "cache")})
    env.pop("HOOKAGENT_CONFIG", None)
    return env


def _run(cmd: list[str], env: dict, cwd: str | None = None, echo: bool = False) -> str:
    from hookagent import process
    code, out, err = process.run(cmd, env=env, cwd=cwd, check=False)
    text = out.decode("utf-8", "replace") + err.decode("utf-8", "replace")
    if echo:
        print(text, end="")
    if code != 0:
        from hookagent.errors import HookagentError
        if not echo:
            sys.stderr.write(text)
        raise HookagentError(f"demo: `{' '.join(cmd[:4])}` failed with exit status {code}"
                             " (its output is above); run the demo again with --keep to look into the folder")
    return text


def _wait_for_background_agents(conf: str, timeout: float = 10.0) -> None:
    """The hooks started a flush of their own; wait until it let its lock go."""
    from hookagent import config
    from hookagent.agent.lifetime import flush_running
    cfg = config.load(conf)
    deadline = time.time() + timeout
    while time.time() < deadline and flush_running(cfg.spool_dir, cfg.tracker.destination):
        time.sleep(0.05)


def _show(server) -> None:
    stories = server.stories()
    _say("")
    _say("What the receiver shows:")
    for sid in sorted(stories, key=int):
        story = stories[sid]
        _say(f"  story #{story['id']}  state: {story['current_state']}")
        for c in story["comments"]:
            _say(f"    - {c['author']} {str(c['commit_id'])[:10]}: {c['message'].strip()}")
            if c.get("url"):
                _say(f"      {c['url']}")
    _say("")
