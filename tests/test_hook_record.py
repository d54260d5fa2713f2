"""The sh hook records, the agent reads: real commits in real repositories of every layout, the
inbox records they leave, and what the agent makes of them (hook-tmpl, inbox.py, agent/ingest.py).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hookagent import inbox
from testing.site import Site, commit_file, git


def install(site: Site, repo: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "hookagent", "install", str(repo), "--config",
                           str(site.config_path), *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def records(site: Site) -> list[str]:
    try:
        return sorted(os.listdir(site.spool.path("inbox")))
    except FileNotFoundError:
        return []


def queued_commits(site: Site) -> list[dict]:
    site.ingest()
    out = []
    for name in site.spool.due_names():
        (entry,) = [e for n, e in site.spool.entries("new") if n == name]
        out.extend(entry["commits"])
    return out


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path, "http://127.0.0.1:9")


def new_repo(tmp_path: Path, name: str = "work", *init: str) -> Path:
    repo = tmp_path / name
    git(tmp_path, "init", "-q", "-b", "main", *init, str(repo))
    return repo


def counting_python(tmp_path: Path) -> tuple[Path, Path]:
    """An interpreter that notes each start (its argv) in a log, then is the real one."""
    starts = tmp_path / "starts.log"
    wrapper = tmp_path / "bin" / "python"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {starts}\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, starts


def agent_starts(starts: Path) -> list[str]:
    """The agents started, once any start still on its way (the hook starts them in the
    background) has had its moment to note itself."""
    from testing import fakepython
    read = lambda log: [ln for ln in (log.read_text().splitlines() if log.exists() else [])  # noqa: E731
                        if "flush --background" in ln]
    return fakepython.wait(starts, 0, which=read)


def test_a_commit_without_a_reference_leaves_no_record_and_starts_no_agent(tmp_path):
    site = Site(tmp_path, "http://127.0.0.1:9", agent={"autostart": True})
    repo = new_repo(tmp_path)
    wrapper, starts = counting_python(tmp_path)
    install(site, repo, "--python", str(wrapper))
    for message in ("Plain change", "Merge pull request #12 from x/y", "fixes #12, no brackets",
                    "[WIP] #12 later"):
        proc = commit_file(repo, message)
        assert proc.returncode == 0 and proc.stderr == b""
    spool = Path(site.data["spool_dir"])
    assert not (spool / "inbox").exists() or os.listdir(spool / "inbox") == []
    assert agent_starts(starts) == [], "no agent was started"


@pytest.mark.parametrize("layout", ["plain", "packed-refs", "detached", "separate-git-dir", "worktree",
                                    "sha256", "latin1"])
def test_the_hook_records_head_as_git_reads_it_in_every_layout(tmp_path, site, layout):
    repo = new_repo(tmp_path, "work", *(["--object-format=sha256"] if layout == "sha256" else []))
    where, branch = repo, "main"
    if layout == "separate-git-dir":
        repo = tmp_path / "sep"
        git(tmp_path, "init", "-q", "-b", "main", "--separate-git-dir", str(tmp_path / "sep.git"), str(repo))
        where = repo
    install(site, repo)
    assert commit_file(repo, "base [#1]").returncode == 0
    env, extra = None, ()
    if layout == "packed-refs":
        # A commit writes its branch as a loose ref again: commit with the hooks off, pack the
        # refs, then run the installed hook as git would, where HEAD's ref is only in packed-refs.
        extra = ("-c", "core.hooksPath=/dev/null")
    elif layout == "detached":
        git(repo, "checkout", "-q", "--detach")
        branch = None
    elif layout == "worktree":
        where = tmp_path / "wt"
        git(repo, "worktree", "add", "-q", "-b", "topic", str(where))
        branch = "topic"
    elif layout == "latin1":
        env = dict(os.environ, GIT_AUTHOR_DATE="2026-03-01T10:20:30-0930", GIT_AUTHOR_NAME="Zoë")
        extra = ("-c", "i18n.commitEncoding=ISO-8859-1")
    message = "café [#6]" if layout == "latin1" else "second\n\nbody with é and 🚀 [fixes #2]\n"
    data = message.encode("latin-1") if layout == "latin1" else message
    proc = commit_file(where, data, env=env, extra_args=extra)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    if layout == "packed-refs":
        git(repo, "pack-refs", "--all")
        assert not (repo / ".git" / "refs" / "heads" / "main").exists()
        proc = subprocess.run([str(repo / ".git" / "hooks" / "post-commit")], cwd=repo, capture_output=True)
        assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    head = git(where, "rev-parse", "HEAD").strip()
    assert f"{inbox.agent_key(str(site.config_path))}.git.{head}" in records(site)
    commits = {c["commit_id"]: c for c in queued_commits(site)}
    assert records(site) == [], "the agent took every record"
    got = commits[head]
    assert got["message"].strip() == message.strip()
    assert got["branch"] == branch
    assert got["repo"] == str(where)
    if layout == "latin1":
        assert got["date"] == "2026-03-01T10:20:30-09:30"


def test_a_rebase_is_recorded_once_at_the_end_with_every_commit_it_made(tmp_path, site):
    repo = new_repo(tmp_path)
    install(site, repo)
    commit_file(repo, "base", name="base.txt")
    git(repo, "checkout", "-q", "-b", "topic")
    for i in range(1, 6):
        commit_file(repo, f"topic {i} [#{i}]", name=f"topic{i}.txt")
    commit_file(repo, "topic plain, no reference", name="plain.txt")
    git(repo, "checkout", "-q", "main")
    commit_file(repo, "main moves on", name="main.txt")
    git(repo, "checkout", "-q", "topic")
    site.ingest()
    before = set(site.spool.due_names())
    assert len(before) == 5
    proc = subprocess.run(["git", "-C", str(repo), "rebase", "-q", "main"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    recs = records(site)
    assert len(recs) == 1 and ".rewrite." in recs[0], recs
    new = git(repo, "log", "--format=%H", "main..topic").split()
    assert len(new) == 6
    commits = queued_commits(site)
    rebased = {c["commit_id"] for c in commits} & set(new)
    assert len(rebased) == 5, "each rebased commit with a reference, once"
    assert all(c["branch"] == "topic" for c in commits if c["commit_id"] in rebased)


def test_a_group_the_quick_test_lets_through_is_dropped_by_the_agent(tmp_path, site):
    """The hook's test is cheap (`[`, then `#` and a digit, then `]`): the agent applies the
    grammar, so `[see] #12 [later]` (no group holds the id) is recorded by the hook and dropped
    by the agent."""
    repo = new_repo(tmp_path)
    install(site, repo)
    commit_file(repo, "[see] #12 [later]")
    assert len(records(site)) == 1
    assert queued_commits(site) == [] and records(site) == []


def test_a_commit_made_during_an_interactive_rebase_stop_is_recorded(tmp_path, site):
    repo = new_repo(tmp_path)
    install(site, repo)
    commit_file(repo, "base", name="base.txt")
    commit_file(repo, "one [#1]", name="one.txt")
    env = dict(os.environ, GIT_SEQUENCE_EDITOR="sed -i -e 's/^pick/edit/'")
    proc = subprocess.run(["git", "-C", str(repo), "rebase", "-q", "-i", "HEAD~1"], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    commit_file(repo, "added while stopped [#9]", name="stopped.txt")
    proc = subprocess.run(["git", "-C", str(repo), "rebase", "--continue"], capture_output=True, text=True,
                          env=dict(os.environ, GIT_EDITOR="true"))
    assert proc.returncode == 0, proc.stderr
    messages = [c["message"].strip() for c in queued_commits(site)]
    assert "added while stopped [#9]" in messages


def test_an_amend_is_recorded_by_post_commit(tmp_path, site):
    repo = new_repo(tmp_path)
    install(site, repo)
    commit_file(repo, "first [#1]")
    git(repo, "commit", "-q", "--amend", "-m", "first, amended [#1]")
    head = git(repo, "rev-parse", "HEAD").strip()
    assert head in {c["commit_id"] for c in queued_commits(site)}


def _record(site: Site, repo: Path, sha: str, raw: bytes) -> str:
    key = inbox.agent_key(str(site.config_path))
    name = f"{key}.git.{sha}"
    headers = {"hook": "post-commit", "vcs": "git", "key": key, "repo": str(repo), "head": "ref: refs/heads/main"}
    site.spool.write_record(name, inbox.encode(headers, [(sha, raw)]))
    return name


def test_a_record_cut_short_waits_then_is_read_from_the_repository(tmp_path, site):
    repo = new_repo(tmp_path)
    commit_file(repo, "made before install [#4]")
    sha = git(repo, "rev-parse", "HEAD").strip()
    raw = subprocess.run(["git", "-C", str(repo), "cat-file", "commit", sha], capture_output=True).stdout
    name = _record(site, repo, sha, raw)
    path = Path(site.spool.path("inbox", name))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])      # the hook died half-way through its write
    assert site.ingest() == 0 and records(site) == [name], "young: a hook may still be writing it"
    old = time.time() - 3600
    os.utime(path, (old, old))
    commits = queued_commits(site)
    assert [c["commit_id"] for c in commits] == [sha]
    assert commits[0]["message"].strip() == "made before install [#4]"
    assert records(site) == []


def test_a_raw_commit_that_does_not_match_its_id_is_read_from_git(tmp_path, site):
    """The shell drops NUL bytes: a raw commit that does not hash to its id is not trusted."""
    repo = new_repo(tmp_path)
    commit_file(repo, "the real message [#5]")
    sha = git(repo, "rev-parse", "HEAD").strip()
    raw = subprocess.run(["git", "-C", str(repo), "cat-file", "commit", sha], capture_output=True).stdout
    _record(site, repo, sha, raw.replace(b"the real", b"a forged"))
    (commit,) = queued_commits(site)
    assert commit["message"].strip() == "the real message [#5]"


def test_a_record_whose_repository_is_gone_stays_and_is_reported(tmp_path, site):
    repo = new_repo(tmp_path)
    commit_file(repo, "doomed [#6]")
    sha = git(repo, "rev-parse", "HEAD").strip()
    name = _record(site, repo, sha, b"not the commit")
    subprocess.run(["rm", "-rf", str(repo)], check=True)
    assert site.ingest() == 0
    assert records(site) == [name], "kept: nothing is dropped silently"
    proc = site.cli("status")
    assert "1 hook record(s) not read by an agent yet" in proc.stdout


def test_a_hook_installed_by_the_previous_version_still_records(tmp_path, site):
    """Hooks of id 1 ran `hookagent hook post-commit` for each commit; until they are installed
    again, that command records into the inbox as the sh hook does."""
    repo = new_repo(tmp_path)
    commit_file(repo, "old hook [#7]")
    proc = subprocess.run([sys.executable, "-I", "-c", "import sys; from hookagent.main import main; sys.exit(main())",
                           "hook", "--config", str(site.config_path), "post-commit", "--"],
                          cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    (commit,) = queued_commits(site)
    assert commit["commit_id"] == git(repo, "rev-parse", "HEAD").strip() and commit["branch"] == "main"


def test_records_of_one_instant_are_queued_parents_first(tmp_path, site):
    """Records written within the file system's timestamp granularity sort by name, i.e. by
    commit id: the agent queues parents before children whatever that order is."""
    repo = new_repo(tmp_path)
    shas = []
    for i in range(6):
        commit_file(repo, f"step {i} [#{i}]", name=f"s{i}.txt")
        shas.append(git(repo, "rev-parse", "HEAD").strip())
    when = time.time() - 5
    for sha in reversed(shas):
        raw = subprocess.run(["git", "-C", str(repo), "cat-file", "commit", sha], capture_output=True).stdout
        name = _record(site, repo, sha, raw)
        os.utime(site.spool.path("inbox", name), (when, when))
    site.ingest()
    order = []
    for name in site.spool.due_names():
        (entry,) = [e for n, e in site.spool.entries("new") if n == name]
        order.append(entry["commits"][0]["commit_id"])
    assert order == shas


def test_a_config_that_changed_or_went_is_checked_again_and_said(tmp_path):
    """The sh hook does not read the configuration: after the file changed it asks Python once
    whether it still names the spool (a stamp remembers the answer); a configuration that is
    gone or broken is one line on each commit, and the commit is still recorded."""
    site = Site(tmp_path, "http://127.0.0.1:9")
    repo = new_repo(tmp_path)
    install(site, repo)
    assert commit_file(repo, "first [#1]").stderr == b""
    stamp = Path(site.spool.path("state")) / f"config-{inbox.agent_key(str(site.config_path))}.ok"
    assert stamp.exists()
    site.data["retry"]["min_backoff"] = 0.1      # an edit that keeps the spool
    site.write()
    os.utime(site.config_path, (time.time() + 2, time.time() + 2))
    assert commit_file(repo, "second [#2]").stderr == b""
    assert stamp.stat().st_mtime_ns == site.config_path.stat().st_mtime_ns
    site.config_path.write_text("tracker: {api: [broken\n")
    os.utime(site.config_path, (time.time() + 4, time.time() + 4))
    proc = commit_file(repo, "third [#3]")
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hookagent: post-commit: could not record the commit: "), lines
    saved = site.config_path.with_suffix(".broken")
    site.config_path.rename(saved)
    proc = commit_file(repo, "fourth [#4]")
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and "cannot read config" in lines[0], lines
    site.write()
    assert len(records(site)) == 4, "each commit is recorded all the same"
    assert len(queued_commits(site)) == 4


def test_commits_while_the_agent_runs_start_no_other(tmp_path):
    """The hook reads the agent's pid file and /proc/PID/cmdline (no process): while the agent
    of this configuration runs (here: sleeping through a long backoff, the tracker down), the
    commits that follow start no other."""
    from testing.repos import free_port
    site = Site(tmp_path, f"http://127.0.0.1:{free_port()}", agent={"autostart": True},
                retry={"min_backoff": 300, "max_backoff": 600})
    wrapper, starts = counting_python(tmp_path)
    repo = new_repo(tmp_path)
    install(site, repo, "--python", str(wrapper))
    commit_file(repo, "first [#1]")
    pidfile = Path(site.spool.path("locks")) / f"agent-{inbox.agent_key(str(site.config_path))}.pid"
    from testing.wait import wait_until
    assert wait_until(lambda: pidfile.exists() and site.spool.count("deferred") == 1)
    pid = int(pidfile.read_text().split()[0])
    try:
        for i in range(2, 6):
            assert commit_file(repo, f"more [#{i}]").stderr == b""
        agents = agent_starts(starts)
        assert len(agents) == 1, agents
        assert len(records(site)) == 4, "recorded; the agent reads them once the backoff ends"
    finally:
        os.kill(pid, 15)


def test_an_empty_record_is_a_hook_still_writing_not_a_corrupt_one(tmp_path, site):
    """The hook creates its record, then writes it: the agent may see it empty in between."""
    spool = site.spool
    name = f"{inbox.agent_key(str(site.config_path))}.git.{'a' * 40}"
    Path(spool.path("inbox", name)).write_bytes(b"")
    assert site.ingest() == 0
    assert records(site) == [name] and os.listdir(spool.path("corrupt")) == []


def test_a_spool_made_before_the_hook_ran_is_still_checked_against_the_config(tmp_path):
    """A spool made by another command (or an older hook) has no stamp: the first commit asks
    Python, which finds the configuration now names another spool and records the commit there."""
    site = Site(tmp_path, "http://127.0.0.1:9")
    repo = new_repo(tmp_path)
    install(site, repo)
    assert site.cli("status").returncode == 0            # makes the spool, no stamp
    old = Path(site.data["spool_dir"])
    site.data["spool_dir"] = str(tmp_path / "moved-spool")
    site.write()
    proc = commit_file(repo, "after the move [#8]")
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and f"recorded in {tmp_path / 'moved-spool'}" in lines[0], lines
    assert os.listdir(old / "inbox") == []
    assert len(os.listdir(tmp_path / "moved-spool" / "inbox")) == 1
