"""git post-merge end to end: a merge commit made here whose own message references a story is
recorded once; what a merge or a fast-forward brings in is not (other people's commits, recorded
where they were made, or by the server's post-receive); a squash merge records nothing.

Real work trees with the installed hooks, real merges and pulls, the devserver's comments per
story. The other people's commits are made in a second clone, which has no hooks of ours. The
agent does not start by itself: `hookagent flush` delivers what the hooks recorded, so "nothing
sent" is known once it returns. A test that checks that something is not sent ends with a merge
made here that is sent: the hook was there and ran.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hookagent.devserver import DevServer
from testing.repos import git, git_commit, git_out, rev, run, write_script
from testing.site import Site, work_tree_with_hook


@pytest.fixture
def site(tmp_path, server):
    return Site(tmp_path, server.url)


def sent(site: Site, server: DevServer) -> list[str]:
    """Deliver what the hooks recorded; the ids of every commit the tracker got so far, in order."""
    site.cli("flush", check=True)
    return [r["commit_id"] for r in server.received()]


def comments(server: DevServer, story: int) -> int:
    return len(server.stories().get(story, {}).get("comments", []))


def records(site: Site) -> list[str]:
    inbox = Path(site.data["spool_dir"]) / "inbox"
    return sorted(os.listdir(inbox)) if inbox.is_dir() else []


def work_and_other(tmp_path: Path, site: Site) -> tuple[Path, Path]:
    """Our work tree (hooks installed, one commit with no reference on main) and another
    person's clone of it (no hooks of ours)."""
    work = work_tree_with_hook(tmp_path, site)
    git_commit(work, "base")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(work), str(other))
    return work, other


def theirs(other: Path, branch: str, *messages: str, start: str = "main") -> None:
    """Commits on `branch` of the other clone (made there: nothing of ours records them)."""
    git(other, "checkout", "-q", "-B", branch, start)
    for i, message in enumerate(messages):
        git_commit(other, message, name=f"{branch}-{i}.txt")


def fetch(work: Path, other: Path, branch: str) -> None:
    git(work, "fetch", "-q", str(other), f"+{branch}:{branch}")


def merge_here(work: Path, branch: str, message: str) -> str:
    """A merge commit made here (no fast-forward); its id."""
    git(work, "merge", "-q", "--no-ff", "-m", message, branch)
    assert len(git_out(work, "rev-list", "--parents", "-1", "HEAD").split()) == 3
    return rev(work)


def test_a_local_merge_commit_with_a_reference_arrives_once_and_not_its_second_parents_commits(tmp_path, site, server):
    work, other = work_and_other(tmp_path, site)
    theirs(other, "side3", "Side work [#201]", "More side work [finishes #202]")
    fetch(work, other, "side3")
    git_commit(work, "ours, meanwhile")
    merge = merge_here(work, "side3", "Merge side3 [#107]")
    assert records(site) == [f"{site_key(site)}.git.{merge}"]
    assert sent(site, server) == [merge]
    assert comments(server, 107) == 1
    assert comments(server, 201) == comments(server, 202) == 0
    assert sent(site, server) == [merge]      # nothing more on a second pass


def test_merge_log_s_list_of_merged_commits_references_no_story(tmp_path, site, server):
    """`merge.log` lists the merged commits' subjects in the merge's message: their stories heard
    of them where they were made; only the merge's own words reference a story."""
    work, other = work_and_other(tmp_path, site)
    theirs(other, "side9", "Side work [#201]", "More [finishes #202]")
    fetch(work, other, "side9")
    git_commit(work, "ours, meanwhile")
    git(work, "-c", "merge.log=true", "merge", "-q", "--no-ff", "-m", "Merge side9 [#107]", "side9")
    assert "Side work [#201]" in git_out(work, "log", "-1", "--format=%B")
    merge = rev(work)
    assert sent(site, server) == [merge]
    assert comments(server, 107) == 1 and comments(server, 201) == comments(server, 202) == 0
    assert server.stories()[107]["current_state"] == "started"
    git(work, "checkout", "-q", "-b", "again", "HEAD~1")
    git(work, "-c", "merge.log=true", "merge", "-q", "--no-ff", "--no-edit", "side9")   # no words of its own
    assert sent(site, server) == [merge]
    assert 202 not in server.stories()


def test_a_fast_forward_onto_commits_that_reference_stories_sends_nothing(tmp_path, site, server):
    work, other = work_and_other(tmp_path, site)
    theirs(other, "main", "Theirs [#301]", "Theirs too [finishes #302]")
    git(work, "fetch", "-q", str(other), "+main:upstream")
    git(work, "merge", "-q", "upstream")
    assert rev(work) == rev(other)            # a fast-forward
    assert records(site) == []
    assert sent(site, server) == []
    control = merge_made_here_afterwards(work, other)
    assert sent(site, server) == [control]


def test_a_fast_forward_onto_someone_elses_merge_of_our_head_sends_nothing(tmp_path, site, server):
    """Their merge commit's first parent is our HEAD before the merge (ORIG_HEAD): only HEAD's
    reflog ("merge upstream: Fast-forward") tells it from a merge made here."""
    work, other = work_and_other(tmp_path, site)
    theirs(other, "side", "Their side [#401]")
    git(other, "checkout", "-q", "main")
    git(other, "merge", "-q", "--no-ff", "-m", "Merge side [#402]", "side")
    git(work, "fetch", "-q", str(other), "+main:upstream")
    before = rev(work)
    git(work, "merge", "-q", "upstream")
    assert rev(work) == rev(other) and rev(work, "HEAD^1") == before == rev(work, "ORIG_HEAD")
    assert records(site) == []
    assert sent(site, server) == []
    control = merge_made_here_afterwards(work, other)
    assert sent(site, server) == [control]
    assert comments(server, 401) == comments(server, 402) == 0


def test_a_squash_merge_records_nothing_and_its_commit_is_post_commits(tmp_path, site, server):
    work, other = work_and_other(tmp_path, site)
    theirs(other, "side", "Their side [#501]")
    fetch(work, other, "side")
    before = rev(work)
    git(work, "merge", "-q", "--squash", "side")
    assert rev(work) == before and records(site) == []
    git(work, "commit", "-q", "-m", "Squashed side [#502]")
    squashed = rev(work)
    assert sent(site, server) == [squashed]       # post-commit's
    control = merge_made_here_afterwards(work, other)
    assert sent(site, server) == [squashed, control]
    assert comments(server, 501) == 0 and comments(server, 502) == 1


def test_a_merge_stopped_on_conflicts_and_finished_by_git_commit_arrives_once(tmp_path, site, server):
    work, other = work_and_other(tmp_path, site)
    theirs(other, "side", "Their change of shared.txt")
    (other / "shared.txt").write_text("theirs\n")
    git(other, "add", "shared.txt")
    git(other, "commit", "-q", "-m", "Theirs in shared.txt [#601]")
    fetch(work, other, "side")
    (work / "shared.txt").write_text("ours\n")
    git(work, "add", "shared.txt")
    git(work, "commit", "-q", "-m", "Ours in shared.txt")
    stopped = git(work, "merge", "-q", "-m", "Merge side [#602]", "side", check=False)
    assert stopped.returncode == 1 and b"CONFLICT" in stopped.stdout + stopped.stderr
    assert records(site) == []
    (work / "shared.txt").write_text("both\n")
    git(work, "add", "shared.txt")
    git(work, "commit", "-q", "--no-edit")
    merge = rev(work)
    assert git_out(work, "log", "-1", "--format=%s") == "Merge side [#602]"
    assert len(records(site)) == 1
    assert sent(site, server) == [merge]
    control = merge_made_here_afterwards(work, other)
    assert sent(site, server) == [merge, control]
    assert comments(server, 602) == 1 and comments(server, 601) == 0


def test_git_pull_records_the_merge_commit_it_makes_and_not_a_fast_forward(tmp_path, site, server):
    work, other = work_and_other(tmp_path, site)
    theirs(other, "main", "Theirs first [#701]")
    pulled = git(work, "pull", "-q", "--no-rebase", str(other), "main")
    assert rev(work) == rev(other) and records(site) == [], pulled.stderr    # a fast-forward
    theirs(other, "main", "Theirs again [#702]")
    git_commit(work, "ours, meanwhile")
    # The merge message, as the user writes it in the editor `git pull --edit` opens.
    editor = write_script(tmp_path / "editor", "#!/bin/sh\nprintf 'Merge upstream work [#703]\\n' >\"$1\"\n")
    env = dict(os.environ, GIT_EDITOR=str(editor))
    git(work, "pull", "-q", "--no-rebase", "--edit", str(other), "main", env=env)
    merge = rev(work)
    assert rev(work, "HEAD^2") == rev(other)
    assert sent(site, server) == [merge]
    assert comments(server, 703) == 1 and comments(server, 701) == comments(server, 702) == 0


def test_a_foreign_post_merge_is_chained_runs_after_ours_and_uninstall_puts_it_back(tmp_path, site, server):
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    log = tmp_path / "foreign.log"
    foreign = f"#!/bin/sh\necho \"post-merge $1 chained=${{HOOKAGENT_CHAINED:-}}\" >>{log}\n"
    write_script(work / ".git" / "hooks" / "post-merge", foreign)
    installed = run([sys.executable, "-m", "hookagent", "install", str(work), "--config", str(site.config_path)])
    hooks = work / ".git" / "hooks"
    assert "installed post-merge" in installed.stdout.decode()
    assert (hooks / "hookagent-chained" / "post-merge").read_text() == foreign
    git_commit(work, "base")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(work), str(other))
    theirs(other, "side", "Their side [#801]")
    fetch(work, other, "side")
    git_commit(work, "ours, meanwhile")
    merge = merge_here(work, "side", "Merge side [#802]")
    key = site_key(site)
    assert log.read_text() == f"post-merge 0 chained=post-merge {key} 0\n"
    assert sent(site, server) == [merge]
    gone = run([sys.executable, "-m", "hookagent", "uninstall", str(work)]).stdout.decode()
    assert f"removed post-merge from {hooks} (put back your hook from hookagent-chained/post-merge)" in gone
    assert (hooks / "post-merge").read_text() == foreign
    assert not (hooks / "hookagent-chained").exists()


def test_a_chained_post_merge_that_is_a_copy_of_ours_runs_our_part_once(tmp_path, site):
    work, other = work_and_other(tmp_path, site)
    hooks = work / ".git" / "hooks"
    (hooks / "hookagent-chained").mkdir()
    (hooks / "hookagent-chained" / "post-merge").write_bytes((hooks / "post-merge").read_bytes())
    (hooks / "hookagent-chained" / "post-merge").chmod(0o755)
    theirs(other, "side", "Their side")
    fetch(work, other, "side")
    git_commit(work, "ours, meanwhile")
    proc = subprocess.run(["git", "-C", str(work), "merge", "-q", "--no-ff", "-m", "Merge side [#901]", "side"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert records(site) == [f"{site_key(site)}.git.{rev(work)}"]
    lines = [line for line in proc.stderr.splitlines() if "hookagent" in line]
    assert len(lines) == 1 and "leads back to hookagent's own hook" in lines[0], lines


def test_the_python_post_merge_decides_as_the_sh_hook(tmp_path, site):
    """`hookagent hook post-merge` (the sh hook's fallbacks, a hook manager's line from PATH)."""
    work = tmp_path / "plain"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    git_commit(work, "base")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(work), str(other))
    theirs(other, "side", "Their side [#1001]")
    git(other, "checkout", "-q", "main")
    git(other, "merge", "-q", "--no-ff", "-m", "Merge side [#1002]", "side")
    git(work, "fetch", "-q", str(other), "+main:upstream", "+side:side")

    def hook(flag: str) -> None:
        run([sys.executable, "-m", "hookagent", "hook", "--vcs", "git", "--config", str(site.config_path),
             "post-merge", "--", flag], cwd=work)

    git(work, "merge", "-q", "upstream")          # a fast-forward onto their merge
    hook("0")
    assert records(site) == []
    git(work, "reset", "-q", "--hard", "HEAD^1")
    git(work, "merge", "-q", "--squash", "side")
    hook("1")
    git(work, "reset", "-q", "--hard")
    merge = merge_here(work, "side", "Merge side [#1003]")
    hook("0")
    assert records(site) == [f"{site_key(site)}.git.{merge}"]


# --- helpers that need the tests' setup ---------------------------------------------------------

def site_key(site: Site) -> str:
    from hookagent import inbox
    return inbox.agent_key(str(site.config_path))


def merge_made_here_afterwards(work: Path, other: Path) -> str:
    """The control: a merge commit made here with a reference (sent: the hook is there and runs)."""
    theirs(other, "later", "Their later work", start="main")
    git(work, "fetch", "-q", str(other), "+later:later")
    git_commit(work, "ours, later", name="ours-later.txt")
    return merge_here(work, "later", "Merge later [#999]")
