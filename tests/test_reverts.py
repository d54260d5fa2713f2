"""Reverts never move a story (issue 11, item 2): real `git revert`s through the installed
post-commit hook and the background agent, a push through post-receive, backfill's dry run, and
the configuration's `reverts: link | ignore`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hookagent import config, reverts
from hookagent.devserver import DevServer
from hookagent.model import Commit
from testing.site import TOKEN, Site, commit_file, git, kill_background_agent, work_tree_with_hook
from testing.wait import wait_until

RISKY = "Risky change [finishes #7777]"
OFF = ("-c", "core.hooksPath=/dev/null")   # a commit no hook sees


@pytest.fixture
def server():
    with DevServer(token=TOKEN, stories=[7777, 7778]) as s:
        yield s


def plain_repo(path: Path) -> Path:
    git(path.parent, "init", "-q", "-b", "main", str(path))
    return path


def head_message(repo: Path) -> str:
    return git(repo, "log", "-1", "--format=%B")


def story(server: DevServer, sid: int) -> tuple[str, list[str]]:
    s = server.stories()[sid]
    return s["current_state"], [c["message"].strip() for c in s["comments"]]


# ---------------------------------------------------------------------- what counts as a revert
def test_what_git_revert_writes_is_a_revert_and_nothing_else_is(tmp_path):
    repo = plain_repo(tmp_path / "repo")
    assert commit_file(repo, "base").returncode == 0
    assert commit_file(repo, RISKY).returncode == 0
    risky = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "revert", "--no-edit", "HEAD")
    revert = head_message(repo)
    assert revert.startswith(f'Revert "{RISKY}"') and f"This reverts commit {risky}." in revert
    git(repo, "revert", "--no-edit", "HEAD")
    revert_of_revert = head_message(repo)                    # git before 2.43: Revert "Revert "...""
    git(repo, "checkout", "-q", "-b", "side", "HEAD~3")
    assert commit_file(repo, "side work [delivers #7778]", name="side.txt").returncode == 0
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "--no-edit", "-m", "Merge side [delivers #7778]", "side")
    git(repo, "revert", "--no-edit", "-m", "1", "HEAD")
    merge_revert = head_message(repo)                        # "This reverts commit X, reversing"
    assert ", reversing" in merge_revert
    reapply = f'Reapply "{RISKY}"\n\nThis reverts commit {"ab" * 20}.\n'   # git 2.43 and later
    for message in (revert, revert_of_revert, merge_revert, reapply,
                    f'Revert "{RISKY}"\n\nThis reverts commit {"c" * 64}.'):   # sha256 ids
        assert reverts.is_revert(message), message
    for message in (RISKY, f'Revert "{RISKY}"', f'Revert "{RISKY}"\n\nwe changed our minds',
                    f"Revert {RISKY}\n\nThis reverts commit {risky}.",
                    f"{RISKY}\n\nThis reverts commit {risky}.", f'Revert "{RISKY}"\n\nThis reverts commit xyz.',
                    f'Revert "{RISKY}"\n\nSee: This reverts commit {risky}.'):
        assert not reverts.is_revert(message), message


@pytest.mark.parametrize("policy, expected", [
    ("link", 'Revert "Risky change [#7777] (finishes)"\n\nThis reverts commit 0123456789abcdef.'),
    ("ignore", None),
])
def test_apply_neutralises_or_drops_a_revert_and_leaves_other_commits_alone(policy, expected):
    revert = Commit("r1", "Ada", f'Revert "{RISKY}"\n\nThis reverts commit 0123456789abcdef.')
    got = reverts.apply(revert, policy)
    assert (got and got.message) == expected
    plain = Commit("c1", "Ada", RISKY)
    assert reverts.apply(plain, policy) is plain and plain.message == RISKY


def test_the_configuration_says_link_by_default_and_takes_ignore():
    assert config.parse("", "/x/c.yaml").reverts == "link"
    assert config.parse("reverts: ignore", "/x/c.yaml").reverts == "ignore"


# ---------------------------------------------------------------------- post-commit, end to end
def test_git_revert_through_post_commit_links_the_story_and_keeps_its_state(tmp_path, server, request):
    site = Site(tmp_path, server.url, agent={"autostart": True})
    request.addfinalizer(lambda: kill_background_agent(site))
    repo = work_tree_with_hook(tmp_path, site)
    assert commit_file(repo, "base").returncode == 0
    assert commit_file(repo, RISKY, extra_args=OFF).returncode == 0   # made before the hook was there
    risky = git(repo, "rev-parse", "HEAD").strip()

    git(repo, "revert", "--no-edit", "HEAD")                       # the real thing, hook and all
    assert wait_until(lambda: len(server.received()) == 1), server.received()
    state, comments = story(server, 7777)
    assert state == "started"
    assert comments == [f'Revert "Risky change [#7777] (finishes)"\n\nThis reverts commit {risky}.']

    git(repo, "revert", "--no-edit", "HEAD")                       # the revert reverted
    # What git 2.43 and later write for that (this git writes Revert "Revert ..."), as a commit.
    assert commit_file(repo, f'Reapply "{RISKY}"\n\nThis reverts commit {risky}.').returncode == 0
    assert wait_until(lambda: len(server.received()) == 3), server.received()
    state, comments = story(server, 7777)
    assert state == "started" and len(comments) == 3
    # git before 2.43 writes Revert "Revert ...""; 2.43 and later Reapply "..."
    assert comments[1].startswith(('Revert "Revert "Risky change [#7777] (finishes)""',
                                   'Reapply "Risky change [#7777] (finishes)"'))
    assert comments[2].startswith('Reapply "Risky change [#7777] (finishes)"')

    assert commit_file(repo, "Risky change again [finishes #7777]").returncode == 0   # not a revert
    assert wait_until(lambda: len(server.received()) == 4), server.received()
    assert story(server, 7777)[0] == "finished"
    assert wait_until(lambda: not site.queued())


# ---------------------------------------------------------------------- post-receive
def bare_with_history(tmp_path: Path, site: Site) -> tuple[Path, Path]:
    """A bare repository holding `base` and RISKY, pushed before post-receive was installed; a
    clone to push from."""
    bare, work = tmp_path / "server.git", tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", "main")
    assert commit_file(work, "base").returncode == 0
    assert commit_file(work, RISKY).returncode == 0
    git(work, "push", "-q", "origin", "main")
    proc = subprocess.run([sys.executable, "-m", "hookagent", "install", str(bare), "--config",
                           str(site.config_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return bare, work


@pytest.mark.parametrize("policy", ["link", "ignore"])
def test_a_pushed_revert_never_moves_a_story(tmp_path, server, policy):
    site = Site(tmp_path, server.url, reverts=policy)
    bare, work = bare_with_history(tmp_path, site)
    risky = git(work, "rev-parse", "HEAD").strip()
    git(work, "revert", "--no-edit", "HEAD")
    assert commit_file(work, "Other work [#7778]").returncode == 0
    git(work, "push", "-q", "origin", "main")
    assert site.cli("flush").returncode == 0
    sent = [r["message"].strip() for r in server.received()]
    assert sent[-1] == "Other work [#7778]", "the push was delivered"
    state, comments = story(server, 7777)
    assert state == "started"
    if policy == "link":
        assert sent == comments + ["Other work [#7778]"]
        assert comments == [f'Revert "Risky change [#7777] (finishes)"\n\nThis reverts commit {risky}.']
    else:
        assert sent == ["Other work [#7778]"] and comments == []


# ---------------------------------------------------------------------- backfill
@pytest.mark.parametrize("policy", ["link", "ignore"])
def test_backfill_dry_run_shows_reverts_as_they_would_be_sent(tmp_path, policy):
    site = Site(tmp_path, "http://127.0.0.1:9", reverts=policy)
    repo = plain_repo(tmp_path / "repo")
    assert commit_file(repo, RISKY).returncode == 0
    risky = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "revert", "--no-edit", "HEAD")
    proc = site.cli("backfill", str(repo), "--dry-run", "--format", "jsonl", "--with-state")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    original = {"message": RISKY + "\n", "stories": [{"id": 7777, "state": "finished"}]}
    revert = {"message": f'Revert "Risky change [#7777] (finishes)"\n\nThis reverts commit {risky}.\n',
              "stories": [{"id": 7777, "state": None}]}
    got = [{k: r[k] for k in ("message", "stories")} for r in records]
    assert got == ([revert, original] if policy == "link" else [original])
