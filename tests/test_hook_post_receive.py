"""post-receive on a bare repository: every new commit once, whatever the shape of the push."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hookagent.spool import Spool
from testing.site import Site, bare_repo_with_hook, commit_file, git


def queued(site: Site) -> list[str]:
    """Commit ids (subjects) in the spool's new/ queue, in entry order, once the agent's first
    step has read the hooks' records."""
    site.ingest()
    spool = Spool(site.data["spool_dir"])
    out = []
    for name in spool.due_names():
        for _, entry in [e for e in spool.entries("new") if e[0] == name]:
            out += [c["message"].splitlines()[0] for c in entry["commits"]]
    return out


@pytest.fixture
def setup(tmp_path):
    site = Site(tmp_path, "http://127.0.0.1:9")
    bare, work = bare_repo_with_hook(tmp_path, site)
    return site, bare, work


def commits(work: Path, *subjects: str) -> None:
    for s in subjects:
        assert commit_file(work, s).returncode == 0


def push(work: Path, *args: str) -> str:
    return git(work, "push", "-q", "origin", *args)


def test_push_of_n_commits_on_one_branch(setup):
    site, bare, work = setup
    commits(work, "one [#1]", "two, no ref", "three [fixes #3]")
    push(work, "main")
    assert queued(site) == ["one [#1]", "three [fixes #3]"]


def test_new_branch_at_existing_commit_adds_nothing_then_only_new_ones(setup):
    site, bare, work = setup
    commits(work, "base [#1]")
    push(work, "main")
    before = queued(site)
    git(work, "branch", "topic")
    push(work, "topic")
    assert queued(site) == before
    git(work, "checkout", "-q", "topic")
    commits(work, "t1 [#2]", "t2 [#3]")
    push(work, "topic")
    assert queued(site) == before + ["t1 [#2]", "t2 [#3]"]


def test_same_commits_on_more_branches_later_add_nothing(setup):
    site, bare, work = setup
    commits(work, "a [#1]", "b [#2]")
    push(work, "main")
    push(work, "main:refs/heads/second")
    push(work, "main:refs/heads/third")
    assert queued(site) == ["a [#1]", "b [#2]"]


def test_several_refs_in_one_push_sharing_commits_count_once(setup):
    site, bare, work = setup
    commits(work, "shared [#1]")
    git(work, "branch", "other")
    commits(work, "main only [#2]")
    push(work, "main", "other", "main:refs/heads/third")
    assert sorted(queued(site)) == ["main only [#2]", "shared [#1]"]


def test_force_push_sends_only_rewritten_commits_never_discarded_ones(setup):
    site, bare, work = setup
    commits(work, "keep [#1]", "old tip [#2]")
    push(work, "main")
    git(work, "reset", "-q", "--hard", "HEAD~1")
    commits(work, "rewritten tip [#3]")
    push(work, "-f", "main")
    q = queued(site)
    assert q == ["keep [#1]", "old tip [#2]", "rewritten tip [#3]"]
    git(work, "reset", "-q", "--hard", "HEAD~1")
    push(work, "-f", "main")            # a rewind: nothing new
    assert queued(site) == q


def test_deleting_branches_and_tags_adds_nothing(setup):
    site, bare, work = setup
    commits(work, "a [#1]")
    push(work, "main", "main:refs/heads/gone")
    git(work, "tag", "v1")
    push(work, "v1")
    q = queued(site)
    push(work, ":refs/heads/gone", ":refs/tags/v1")
    assert queued(site) == q == ["a [#1]"]


def test_tags_do_not_count_by_default_and_do_when_configured(setup, tmp_path):
    site, bare, work = setup
    commits(work, "base [#1]")
    push(work, "main")
    git(work, "checkout", "-q", "--detach")
    commits(work, "only tagged [#2]")
    git(work, "tag", "v1")
    push(work, "v1")
    assert queued(site) == ["base [#1]"]
    site.data["tags"] = True
    site.write()
    commits(work, "tagged later [#3]")
    git(work, "tag", "v2")
    push(work, "v2")
    assert queued(site) == ["base [#1]", "only tagged [#2]", "tagged later [#3]"]


def test_branch_filter_sends_topic_commits_once_when_merged_into_main(setup):
    site, bare, work = setup
    site.data["branches"] = ["main", "release/*"]
    site.write()
    commits(work, "base [#1]")
    push(work, "main")
    git(work, "checkout", "-q", "-b", "topic")
    commits(work, "topic work [#2]")
    push(work, "topic")
    assert queued(site) == ["base [#1]"], "outside the filter: remembered, not sent"
    git(work, "checkout", "-q", "main")
    git(work, "merge", "-q", "--no-ff", "-m", "Merge topic", "topic")
    push(work, "main")
    assert queued(site) == ["base [#1]", "topic work [#2]"]
    push(work, "main:refs/heads/release/1.0")
    assert queued(site) == ["base [#1]", "topic work [#2]"], "once, even on a second matching branch"


def test_push_with_a_foreign_post_receive_still_gives_it_the_same_stdin(tmp_path):
    site = Site(tmp_path, "http://127.0.0.1:9")
    bare = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seen = tmp_path / "seen"
    hook = bare / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\ncat > {seen}\n")
    hook.chmod(0o755)
    subprocess.run([sys.executable, "-m", "hookagent", "install", str(bare), "--config",
                    str(site.config_path)], check=True, capture_output=True)
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", "main")
    commits(work, "x [#1]")
    push(work, "main")
    sha = git(work, "rev-parse", "HEAD").strip()
    assert seen.read_text() == f"{'0' * 40} {sha} refs/heads/main\n"
    assert queued(site) == ["x [#1]"]


def test_a_processed_branch_deleted_and_pruned_on_the_server_does_not_break_later_pushes(setup):
    """A branch removed outside a push (on the server, by a hosting UI) and garbage-collected
    stays in the snapshot of processed refs; git must not choke on its missing commits."""
    site, bare, work = setup
    commits(work, "base [#1]")
    push(work, "main")
    git(work, "checkout", "-q", "-b", "doomed")
    commits(work, "doomed work [#2]")
    push(work, "doomed")
    site.ingest()                      # the agent decided that push (it runs within seconds)
    git(bare, "update-ref", "-d", "refs/heads/doomed")            # not a push: no hook runs
    git(bare, "reflog", "expire", "--expire=now", "--all")
    git(bare, "gc", "-q", "--prune=now")
    git(work, "checkout", "-q", "main")
    commits(work, "after the prune [#3]")
    out = push(work, "main")
    assert "hookagent" not in out, out
    assert queued(site) == ["base [#1]", "doomed work [#2]", "after the prune [#3]"]
