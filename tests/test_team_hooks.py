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
from testing.site import Site, commit_file, kill_background_agent
from testing.wait import wait_until

LINE = "command -v hookagent >/dev/null 2>&1 && hookagent hook post-commit || true"


@pytest.fixture(scope="session")
def node_modules(tmp_path_factory) -> Path:
    try:
        return teamtools.install_husky(tmp_path_factory.mktemp("npm") / "project")
    except teamtools.Unavailable as exc:
        pytest.skip(str(exc))


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


# --- husky ---------------------------------------------------------------------------------------

def test_install_refuses_husky_in_one_line_and_the_line_it_gives_records_through_husky(
        tmp_path, node_modules, site, server):
    """husky's dispatcher finds the team's .husky/NAME by `basename $0`, and `npx husky` writes
    .husky/_ again: install writes nothing there and says which line to add; added by hand as
    said, a real commit goes through husky's `h`, the team's own line still runs, and commits
    are still recorded after `npx husky` rewrote .husky/_."""
    repo = teamtools.husky_work_tree(tmp_path / "work", node_modules)
    log = tmp_path / "team.log"
    team = team_post_commit(repo, log)
    before = snapshot(repo / ".husky")
    proc = hookagent("install", str(repo), "--config", str(site.config_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert str(repo / ".husky" / "post-commit") in proc.stderr and LINE in proc.stderr
    assert "husky" in proc.stderr and "--team-hook" in proc.stderr
    assert snapshot(repo / ".husky") == before, "install wrote into the team's folder"

    # The advice, followed to the letter; then install has nothing left to say but that.
    (repo / ".husky" / "post-commit").write_text(team + LINE + "\n")
    env = developer_env(tmp_path, site)
    proc = hookagent("install", str(repo), env=env)
    assert proc.returncode == 0 and "already runs `hookagent hook post-commit`" in proc.stdout, proc.stderr
    assert (repo / ".husky" / "post-commit").read_text() == team + LINE + "\n"
    proc = commit_file(repo, "Through husky [#101]", env=env)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    first = git_out(repo, "rev-parse", "HEAD")
    assert wait_until(lambda: delivered(server) == [first]), server.received()
    assert log.read_text() == f"team post-commit {first}\n"

    teamtools.npx_husky(repo)          # what every `npm install` runs
    assert commit_file(repo, "After npx husky [#102]", env=env).returncode == 0
    second = git_out(repo, "rev-parse", "HEAD")
    assert wait_until(lambda: delivered(server) == [first, second]), server.received()
    assert len(log.read_text().splitlines()) == 2
    assert server.stories()[102]["comments"]


def test_install_team_hook_adds_the_line_once_and_uninstall_team_hook_takes_it_out(
        tmp_path, node_modules, site, server):
    """--team-hook puts the line into .husky/post-commit before the team's lines (the rest byte
    for byte), once; nothing machine-local is written; uninstall --team-hook gives the file back."""
    repo = teamtools.husky_work_tree(tmp_path / "work", node_modules)
    log = tmp_path / "team.log"
    team = team_post_commit(repo, log)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "team hook")
    log.unlink()
    hooks_before = snapshot(repo / ".husky" / "_")
    for _ in range(2):
        proc = hookagent("install", str(repo), "--team-hook", "--config", str(site.config_path),
                         env=developer_env(tmp_path, site))
        assert proc.returncode == 0, proc.stderr
        assert (repo / ".husky" / "post-commit").read_text() == LINE + "\n" + team
    assert "already runs" in proc.stdout
    assert snapshot(repo / ".husky" / "_") == hooks_before
    assert git_out(repo, "status", "--porcelain") == "M .husky/post-commit"

    env = developer_env(tmp_path, site)
    assert commit_file(repo, "Added by install [#201]", env=env).returncode == 0
    first = git_out(repo, "rev-parse", "HEAD")
    teamtools.npx_husky(repo)
    assert commit_file(repo, "After npx husky [#202]", env=env).returncode == 0
    second = git_out(repo, "rev-parse", "HEAD")
    assert wait_until(lambda: delivered(server) == [first, second]), server.received()
    assert len(log.read_text().splitlines()) == 2, "the team's line ran for both commits"

    # A developer without hookagent: the line does nothing, the commit and the team's line stand.
    bare_env = dict(os.environ, PATH=str(path_of(tmp_path / "bare-bin", "git", "sh", "env", "basename", "dirname")))
    proc = commit_file(repo, "No hookagent here [#203]", env=bare_env)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    assert len(log.read_text().splitlines()) == 3

    proc = hookagent("uninstall", str(repo), "--team-hook")
    assert proc.returncode == 0 and "removed" in proc.stdout, proc.stderr
    assert (repo / ".husky" / "post-commit").read_text() == team


# --- a hooks folder the team commits ------------------------------------------------------------

def test_a_committed_hooks_folder_is_refused_and_team_hook_adds_the_line_after_its_shebang(tmp_path):
    """core.hooksPath=.githooks, committed: install leaves it byte for byte and says which line
    to add; --team-hook adds it after the `#!` line (mode kept) and a real commit records through
    it; a script that is not sh is left alone."""
    site = Site(tmp_path, "http://127.0.0.1:9")
    repo = git_work_tree(tmp_path / "work")
    hooks = repo / ".githooks"
    hooks.mkdir()
    team = f"#!/usr/bin/env bash\necho team >> {tmp_path / 'team.log'}\n"
    (hooks / "post-commit").write_text(team)
    (hooks / "post-commit").chmod(0o755)
    (hooks / "pre-push").write_text("#!/usr/bin/env python3\nprint('theirs')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "team hooks")
    git(repo, "config", "core.hooksPath", ".githooks")
    before = snapshot(hooks)

    proc = hookagent("install", str(repo), "--config", str(site.config_path))
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stdout + proc.stderr
    assert str(hooks / "post-commit") in proc.stderr and LINE in proc.stderr
    assert snapshot(hooks) == before and git_out(repo, "status", "--porcelain") == ""

    env = developer_env(tmp_path, site)
    proc = hookagent("install", str(repo), "--team-hook", env=env)
    assert proc.returncode == 0, proc.stderr
    assert (hooks / "post-commit").read_text() == f"#!/usr/bin/env bash\n{LINE}\necho team >> {tmp_path / 'team.log'}\n"
    assert (hooks / "post-commit").stat().st_mode & 0o777 == 0o755
    assert commit_file(repo, "Through the team's hook [#7]", env=env).returncode == 0
    head = git_out(repo, "rev-parse", "HEAD")
    assert f"{inbox.agent_key(str(site.config_path))}.git.{head}" in os.listdir(site.spool.path("inbox"))
    assert (tmp_path / "team.log").read_text() == "team\n"

    python_hook = hooks / "post-commit"
    python_hook.write_text("#!/usr/bin/env python3\nprint('theirs')\n")
    proc = hookagent("install", str(repo), "--team-hook", env=env)
    assert proc.returncode == 2 and "python3 script" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert python_hook.read_text() == "#!/usr/bin/env python3\nprint('theirs')\n"


def test_which_hooks_folders_are_a_managers(tmp_path):
    """husky 9 (.husky/_ with its `h`: the script is .husky/post-commit), husky 4-8 (.husky with
    _/husky.sh), any other folder of the work tree; the git dir's hooks and a folder outside
    the work tree stay install's usual places."""
    from hookagent import hookmanagers
    w = tmp_path / "w"
    (w / ".husky" / "_").mkdir(parents=True)
    (w / ".husky" / "_" / "h").write_text("")
    (w / "old" / "_").mkdir(parents=True)
    (w / "old" / "_" / "husky.sh").write_text("")
    git_dir = str(w / ".git")
    assert hookmanagers.detect(str(w), str(w / ".husky" / "_"), git_dir) == hookmanagers.Managed(
        "husky", str(w / ".husky" / "_"), str(w / ".husky" / "post-commit"))
    assert hookmanagers.detect(str(w), str(w / "old"), git_dir) == hookmanagers.Managed(
        "husky", str(w / "old"), str(w / "old" / "post-commit"))
    assert hookmanagers.detect(str(w), str(w / ".githooks"), git_dir) == hookmanagers.Managed(
        "", str(w / ".githooks"), str(w / ".githooks" / "post-commit"))
    assert hookmanagers.detect(str(w), str(w / ".git" / "hooks"), git_dir) is None
    assert hookmanagers.detect(str(w), str(tmp_path / "shared-hooks"), git_dir) is None


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


# --- pre-commit ------------------------------------------------------------------------------------

def pre_commit(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env, capture_output=True,
                          text=True)


@pytest.mark.slow
def test_pre_commit_try_repo_runs_the_shipped_manifest_and_records_the_commit(tmp_path, server):
    """`pre-commit try-repo` on this checkout (its .pre-commit-hooks.yaml; hookagent installed
    into pre-commit's own environment) as the post-commit stage of a real commit. try-repo
    removes that environment when it ends, and an agent started from it would lose its files
    mid-start: autostart is off here, and `hookagent flush` delivers the record."""
    site = Site(tmp_path, server.url)
    repo = git_work_tree(tmp_path / "work")
    assert commit_file(repo, "Tried through pre-commit [#301]").returncode == 0
    env = dict(developer_env(tmp_path, site), PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"))
    proc = pre_commit("try-repo", str(teamtools.ROOT), "hookagent", "--hook-stage", "post-commit",
                      cwd=repo, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Passed" in proc.stdout
    head = git_out(repo, "rev-parse", "HEAD")
    assert os.listdir(site.spool.path("inbox")) == [f"{inbox.agent_key(str(site.config_path))}.git.{head}"]
    assert site.cli("flush").returncode == 0
    assert delivered(server) == [head]


@pytest.mark.slow
def test_pre_commit_installed_post_commit_hook_records_a_real_commit(tmp_path, site, server):
    """A team's .pre-commit-config.yaml naming this repository's hook, `pre-commit install`
    for post-commit, and real commits: the one naming a story reaches the tracker."""
    source, rev = teamtools.committed_checkout(tmp_path)
    repo = git_work_tree(tmp_path / "work")
    (repo / ".pre-commit-config.yaml").write_text(
        "default_install_hook_types: [pre-commit, post-commit]\n"
        f"repos:\n  - repo: {source}\n    rev: {rev}\n    hooks:\n      - id: hookagent\n")
    env = dict(developer_env(tmp_path, site), PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"))
    proc = pre_commit("install", "--install-hooks", cwd=repo, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (repo / ".git" / "hooks" / "post-commit").is_file()
    git(repo, "add", ".pre-commit-config.yaml")
    for message in ("Through pre-commit [#401]", "no story"):
        proc = commit_file(repo, message, env=env)
        assert proc.returncode == 0, proc.stderr
    story_commit = git_out(repo, "rev-parse", "HEAD~1")
    assert wait_until(lambda: delivered(server) == [story_commit]), server.received()
