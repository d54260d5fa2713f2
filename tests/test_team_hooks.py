"""Team hook tools, the real ones: husky 9 (from npm) and pre-commit (from PyPI) run hookagent
from PATH; install writes no machine-local hook into a hooks folder the team commits
(hookagent.hookmanagers, hook/run.py, .pre-commit-hooks.yaml)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hookagent import inbox
from hookagent.devserver import DevServer
from testing import teamtools
from testing.repos import git, git_out, git_work_tree
from testing.site import TOKEN, Site, commit_file, kill_background_agent
from testing.wait import wait_until

LINE = "command -v hookagent >/dev/null 2>&1 && hookagent hook post-commit || true"


@pytest.fixture(scope="session")
def node_modules(tmp_path_factory) -> Path:
    try:
        return teamtools.install_husky(tmp_path_factory.mktemp("npm") / "project")
    except teamtools.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def server():
    with DevServer(token=TOKEN) as s:
        yield s


@pytest.fixture
def site(tmp_path, server, request) -> Site:
    root = tmp_path / "site"
    root.mkdir()
    s = Site(root, server.url, agent={"autostart": True})
    request.addfinalizer(lambda: kill_background_agent(s))
    return s


def hookagent(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hookagent", *args], cwd=cwd, env=env, capture_output=True,
                          text=True)


def developer_env(tmp_path: Path, site: Site) -> dict[str, str]:
    """A developer's environment: hookagent on PATH, their configuration in HOOKAGENT_CONFIG."""
    return dict(os.environ, PATH=teamtools.path_with_hookagent(tmp_path / "bin"),
                HOOKAGENT_CONFIG=str(site.config_path))


def path_of(folder: Path, *tools: str) -> Path:
    """A PATH folder holding only these tools (a developer without hookagent, wherever it is
    installed on this machine)."""
    folder.mkdir()
    for tool in tools:
        (folder / tool).symlink_to(shutil.which(tool))
    return folder


def snapshot(folder: Path) -> dict[str, tuple[bytes | str, int]]:
    """Every file under folder: its bytes (a symlink: its target) and mode."""
    out = {}
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(folder))] = (os.readlink(p) if p.is_symlink() else p.read_bytes(),
                                               p.lstat().st_mode)
    return out


def team_post_commit(repo: Path, log: Path) -> str:
    """The team's own .husky/post-commit: a line that notes each run in log."""
    text = f'echo "team post-commit $(git rev-parse HEAD)" >> {log}\n'
    (repo / ".husky" / "post-commit").write_text(text)
    return text


def delivered(server: DevServer) -> list[str]:
    return [r["commit_id"] for r in server.received()]


# --- hookagent hook post-commit from PATH --------------------------------------------------------

def test_hook_post_commit_from_path_records_byte_for_byte_as_the_sh_hook_and_reads_no_config_without_a_reference(
        tmp_path):
    """What a hook manager's line runs: the record is the installed sh hook's, byte for byte;
    a commit that cannot hold a reference ends at the same quick test (no configuration read:
    a broken one says nothing), one that can says in one line, and neither fails."""
    site = Site(tmp_path, "http://127.0.0.1:9")
    repo = git_work_tree(tmp_path / "work")
    proc = hookagent("install", str(repo), "--config", str(site.config_path))
    assert proc.returncode == 0, proc.stderr
    assert commit_file(repo, "Recorded twice [#9]\n\nbody é").returncode == 0
    head = git_out(repo, "rev-parse", "HEAD")
    record = Path(site.spool.path("inbox")) / f"{inbox.agent_key(str(site.config_path))}.git.{head}"
    by_sh = record.read_bytes()
    record.unlink()
    env = developer_env(tmp_path, site)
    proc = subprocess.run(["hookagent", "hook", "post-commit"], cwd=repo, env=env, capture_output=True)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    assert record.read_bytes() == by_sh

    site.config_path.write_text("tracker: [not, a, mapping\n")
    off = ("-c", "core.hooksPath=/dev/null")
    assert commit_file(repo, "No story here", extra_args=off).returncode == 0
    proc = subprocess.run(["hookagent", "hook", "post-commit"], cwd=repo, env=env, capture_output=True)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    assert commit_file(repo, "A story [#10]", extra_args=off).returncode == 0
    proc = subprocess.run(["hookagent", "hook", "post-commit"], cwd=repo, env=env, capture_output=True)
    assert proc.returncode == 0 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert b"could not record the commit" in proc.stderr


@pytest.mark.parametrize("message", ["plain", "[#1]", "x [fixes #12] y", "#1 [x]", "[x] #1", "[ ] #1 [x]",
                                     "[#x1]", "a\n[\n#\n7\n]", "[#]1]", "[[#9", "Merge pull request #12 from a/b"])
def test_the_quick_test_of_hook_post_commit_is_the_sh_hooks_case_pattern(message):
    """`hookagent hook post-commit` ends where the sh hook's `case` does (run by the real sh)."""
    from hookagent.hook.run import may_reference
    sh = subprocess.run(["sh", "-c", "case $1 in *'['*'#'[0-9]*']'*) exit 0 ;; esac; exit 1", "sh", message])
    assert may_reference(message.encode()) is (sh.returncode == 0)
