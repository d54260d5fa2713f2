"""A hookagent "site" for tests: a config file, a spool, a token file and a running receiver."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from hookagent import config as config_mod
from hookagent.model import Commit
from hookagent.spool import Spool, commit_entry_name, make_entry

TOKEN = "t0k3n-for-tests"


class Site:
    def __init__(self, root: Path, url: str, api: str = "v3", token: str = TOKEN, **overrides) -> None:
        self.root = root
        self.token_file = root / "token"
        self.token_file.write_text(token + "\n")
        self.token_file.chmod(0o600)
        self.config_path = root / "config.yaml"
        self.data = {
            "spool_dir": str(root / "spool"),
            "tracker": {"url": url, "api": api, "token_file": str(self.token_file), "timeout": 5},
            "retry": {"min_backoff": 0.05, "max_backoff": 0.5, "max_age": 3600},
            "agent": {"autostart": False},
        }
        for key, value in overrides.items():
            if isinstance(value, dict):
                self.data.setdefault(key, {}).update(value)
            else:
                self.data[key] = value
        self.write()

    def write(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.data))

    def set_token(self, token: str) -> None:
        self.token_file.write_text(token + "\n")

    @property
    def config(self) -> config_mod.Config:
        return config_mod.load(str(self.config_path))

    @property
    def spool(self) -> Spool:
        """The spool as the agent opens it: with spool_group, what tests put in it is the group's."""
        return Spool(self.data["spool_dir"], self.data.get("spool_group"))

    def prepared(self) -> Spool:
        """The spool as the hook's first use leaves it (see prepare_as_the_hook)."""
        return prepare_as_the_hook(self.config_path, self.data["spool_dir"])

    def ingest(self) -> int:
        """What an agent does first: turn the hooks' inbox records into entries. Returns how many
        entries it queued (for tests whose agent does not start by itself)."""
        from hookagent.agent.ingest import Inbox
        return Inbox(self.config, self.spool).ingest().queued

    def queued(self) -> list[str]:
        """The entry names due now, after the inbox is read."""
        self.ingest()
        return self.spool.due_names()

    def background_flush_running(self) -> bool:
        """Whether a background flush (one a hook started) holds this destination's flush lock now."""
        from hookagent.agent.lifetime import flush_running
        return flush_running(self.data["spool_dir"], self.config.tracker.destination)

    def cli(self, *args: str, check: bool = False, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        """`hookagent ARGS --config THIS`: status, retry and flush in this process (main() with
        its output captured); a new process where the test needs one of its own (an environment,
        stdin, a detached background flush) and for the commands that write to the stdout file
        descriptor itself (backfill)."""
        cmd = [sys.executable, "-m", "hookagent", args[0], "--config", str(self.config_path), *args[1:]]
        if not kw and "--background" not in args and args[0] in ("status", "retry", "flush"):
            return self._in_process(cmd, check)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def _in_process(self, cmd: list[str], check: bool) -> subprocess.CompletedProcess:
        import contextlib
        import io
        import signal

        from hookagent.main import main
        out, err = io.StringIO(), io.StringIO()
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(cmd[3:])
                except SystemExit as exc:       # argparse's usage errors and --help
                    code = exc.code if isinstance(exc.code, int) else 2
        finally:
            for s, h in handlers.items():
                signal.signal(s, h)
        proc = subprocess.CompletedProcess(cmd, code, out.getvalue(), err.getvalue())
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def enqueue_fake_commits(self, n: int, prefix: str = "c", story: int = 101) -> list[str]:
        """Put n one-commit entries straight into the spool (fast; for agent-side tests)."""
        dest = self.config.tracker.destination
        spool = self.spool
        ids = []
        for i in range(n):
            cid = f"{prefix}{i:06d}"
            c = Commit(cid, "Ada Tester", f"Work item {i} [#{story}]", date="2026-11-28T10:00:00+00:00")
            spool.enqueue(commit_entry_name(dest, cid), make_entry(dest, [c.to_dict()]))
            ids.append(cid)
        return ids


def prepare_as_the_hook(config: str | Path, spool_dir: str | Path) -> Spool:
    """Make the spool, and its stamp that says the configuration names it, as the installed
    hook's first use does through Python (tests whose interpreter is a fake need it made)."""
    from hookagent.hook.run import prepare
    assert prepare("post-commit", str(config), str(spool_dir), [], "git") == 0
    return Spool(str(spool_dir))


def git(repo: str | Path, *args: str, input: str | None = None, env: dict | None = None) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, input=input,
                          env=env)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout + proc.stderr


def commit_file(repo: str | Path, message: str | bytes, name: str | None = None, env: dict | None = None,
                extra_args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Make a real commit (hooks fire) and return the completed `git commit`."""
    repo = Path(repo)
    name = name or f"f{len(list(repo.iterdir()))}.txt"
    (repo / name).write_text(os.urandom(4).hex())
    git(repo, "add", name)
    data = message if isinstance(message, bytes) else message.encode("utf-8")
    return subprocess.run(["git", "-C", str(repo), *extra_args, "commit", "-q", "-F", "-"], input=data,
                          capture_output=True, env=env)


def bare_repo_with_hook(root: Path, site: Site) -> tuple[Path, Path]:
    """A bare repository root/server.git with hookagent's post-receive installed for ``site``,
    and a clone root/work on branch main to push from."""
    bare = root / "server.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    proc = subprocess.run([sys.executable, "-m", "hookagent", "install", str(bare), "--config",
                           str(site.config_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    work = root / "work"
    git(root, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", "main")
    return bare, work


def work_tree_with_hook(root: Path, site: Site) -> Path:
    """A git work tree root/work (no commit yet) with hookagent's hooks installed for ``site``."""
    repo = root / "work"
    git(root, "init", "-q", "-b", "main", str(repo))
    proc = subprocess.run([sys.executable, "-m", "hookagent", "install", str(repo), "--config",
                           str(site.config_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return repo


def background_agent_pid(site: Site) -> int:
    """The pid the background flush of ``site``'s destination noted in its lock (0: none): the
    first line (the second is its heartbeat)."""
    from hookagent.spool import flush_lock_path
    try:
        return int((Path(flush_lock_path(site.data["spool_dir"], site.config.tracker.destination))
                    .read_text().split() or ["0"])[0])
    except (OSError, ValueError):
        return 0


def kill_background_agent(site: Site) -> None:
    """Teardown: stop a background agent a failed test may have left sleeping."""
    import signal
    pid = background_agent_pid(site)
    if pid and site.background_flush_running():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
