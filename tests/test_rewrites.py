"""One comment per change (changes.py): amends, rebases, cherry-picks and force pushes make new
commits of the same change; each story hears of a change once. Real git, installed hooks, the
devserver's comments per story."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from hookagent.devserver import DevServer
from testing.site import TOKEN, Site, bare_repo_with_hook, commit_file, git
from testing.site import work_tree_with_hook as make_repo


def comments(server: DevServer) -> dict[int, list[str]]:
    """story id -> the commit ids of its comments, in order."""
    return {sid: [c["commit_id"] for c in s["comments"]] for sid, s in server.stories().items()}


def flush(site: Site) -> None:
    proc = site.cli("flush")
    assert proc.returncode == 0, proc.stderr
    assert not site.queued()


def commit(repo: Path, message: str, env: dict | None = None) -> None:
    """A real commit (hooks fire) of a file of its own, so branches never conflict."""
    proc = commit_file(repo, message, name=f"{os.urandom(6).hex()}.txt", env=env)
    assert proc.returncode == 0, proc.stderr


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def amend(repo: Path, message: str | None = None, *, change_file: bool = False) -> None:
    if change_file:
        (repo / "amended.txt").write_text(os.urandom(4).hex())
        git(repo, "add", "amended.txt")
    args = ["commit", "-q", "--amend"] + (["-m", message] if message is not None else ["--no-edit"])
    git(repo, *args)


def test_an_amend_tells_each_story_once_and_a_story_it_adds_once(tmp_path, server):
    site = Site(tmp_path, server.url)
    repo = make_repo(tmp_path, site)
    commit(repo, "Shields [#1]")
    flush(site)
    amend(repo, change_file=True)                        # same message, another patch
    flush(site)
    amend(repo, "Shields up [#1] [#2]")                  # reworded, same patch, adds story 2
    flush(site)
    got = comments(server)
    assert len(got[1]) == 1 and got[2] == [head(repo)], got
    assert len(server.received()) == 2


def test_an_amend_that_changes_message_and_patch_is_still_the_same_change(tmp_path, server):
    """post-rewrite's OLD NEW pair after an amend names the change when nothing else is alike."""
    site = Site(tmp_path, server.url)
    repo = make_repo(tmp_path, site)
    commit(repo, "Deflector [#91]")
    flush(site)
    amend(repo, "Deflector dish, rewired [#91]", change_file=True)
    amend(repo, "Deflector dish, rewired twice [#91] [#92]", change_file=True)   # both still queued
    flush(site)
    assert {sid: len(v) for sid, v in comments(server).items()} == {91: 1, 92: 1}
    assert comments(server)[92] == [head(repo)]


def test_an_amend_of_a_commit_still_queued_sends_only_the_live_commit(tmp_path, server):
    site = Site(tmp_path, server.url)
    repo = make_repo(tmp_path, site)
    commit(repo, "Hull [#31]")
    site.set_token("wrong")                              # the tracker refuses: the queue holds
    site.cli("flush")
    assert len(site.spool.due_names()) == 1 and not server.received()
    amend(repo, "Hull plating [#31]")
    site.set_token(TOKEN)
    flush(site)
    assert comments(server) == {31: [head(repo)]}


@pytest.mark.parametrize("n", [20, 50])
def test_a_rebase_sends_nothing_again(tmp_path, server, n):
    site = Site(tmp_path, server.url)
    repo = make_repo(tmp_path, site)
    commit(repo, "base")
    git(repo, "checkout", "-q", "-b", "feature")
    for i in range(n):                                   # one author, mostly the same second
        commit(repo, f"Step {i} [#{100 + i % 7}]")
    flush(site)
    before = len(server.received())
    assert before == n
    git(repo, "checkout", "-q", "main")
    commit(repo, "upstream moved")
    git(repo, "checkout", "-q", "feature")
    git(repo, "rebase", "-q", "main")
    assert git(repo, "rev-list", "--count", "main..feature").strip() == str(n)
    flush(site)
    assert len(server.received()) == before
    got = comments(server)
    assert sum(len(v) for v in got.values()) == n and set(got) == {100 + k for k in range(7)}
    status = json.loads(site.cli("status", "--json").stdout)
    assert (status["sent"], status["replaced"]) == (n, n)


EDITOR = r"""
import sys
path = sys.argv[1]
text = open(path).read()
if "# This is a combination" in text:
    pass                                                 # squash: keep both messages
elif text.startswith("Two [#12]"):
    text = "Two, reworded [#12] [#42]\n"
open(path, "w").write(text)
"""


def test_rebase_interactive_reword_squash_drop_one_comment_per_change(tmp_path, server):
    site = Site(tmp_path, server.url)
    repo = make_repo(tmp_path, site)
    commit(repo, "base")
    for message in ["One [#11]", "Two [#12]", "Three [#13]", "Four [#14]"]:
        commit(repo, message)
    flush(site)
    assert len(server.received()) == 4
    editor = tmp_path / "editor.py"
    editor.write_text(EDITOR)
    todo = tmp_path / "todo.py"   # pick, reword, squash, drop
    todo.write_text("import sys\np = sys.argv[1]\nlines = open(p).read().splitlines()\n"
                    "out = []\nfor l in lines:\n"
                    "    if 'Two [#12]' in l: l = 'reword' + l[4:]\n"
                    "    elif 'Three [#13]' in l: l = 'squash' + l[4:]\n"
                    "    elif 'Four [#14]' in l: l = 'drop' + l[4:]\n"
                    "    out.append(l)\nopen(p, 'w').write('\\n'.join(out) + '\\n')\n")
    env = {**os.environ, "GIT_SEQUENCE_EDITOR": f"{sys.executable} {todo}",
           "GIT_EDITOR": f"{sys.executable} {editor}"}
    proc = subprocess.run(["git", "-C", str(repo), "rebase", "-q", "-i", "HEAD~4"], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Two, reworded" in git(repo, "log", "-1", "--format=%B")
    flush(site)
    got = comments(server)
    assert {sid: len(v) for sid, v in got.items()} == {11: 1, 12: 1, 13: 1, 14: 1, 42: 1}, got
    assert got[42] == [head(repo)]


def test_a_cherry_pick_onto_another_branch_tells_no_story_again(tmp_path, server):
    site = Site(tmp_path, server.url)
    repo = make_repo(tmp_path, site)
    commit(repo, "base")
    git(repo, "branch", "release")
    commit(repo, "Fix the reactor [finishes #21]")
    commit(repo, "Fix the hatch [#22]")
    flush(site)
    fix, hatch = git(repo, "rev-parse", "HEAD~1", "HEAD").split()
    git(repo, "checkout", "-q", "release")
    git(repo, "cherry-pick", fix)
    git(repo, "cherry-pick", "-x", hatch)
    flush(site)
    got = comments(server)
    assert got == {21: [fix], 22: [hatch]}, got
    assert server.stories()[21]["current_state"] == "finished"


def test_a_force_push_of_a_rebased_branch_tells_no_story_again(tmp_path, server):
    site = Site(tmp_path, server.url)
    bare, work = bare_repo_with_hook(tmp_path, site)
    commit(work, "base")
    git(work, "push", "-q", "origin", "main")
    for i in range(5):
        commit(work, f"Part {i} [#{60 + i}]")
    git(work, "push", "-q", "origin", "main")
    flush(site)
    assert len(server.received()) == 5
    base = git(work, "rev-parse", "HEAD~5").strip()
    git(work, "checkout", "-q", "-b", "upstream", base)
    commit(work, "someone else's commit")
    git(work, "checkout", "-q", "main")
    git(work, "rebase", "-q", "upstream")
    git(work, "push", "-q", "-f", "origin", "main")
    flush(site)
    assert len(server.received()) == 5
    assert {sid: len(v) for sid, v in comments(server).items()} == {60 + i: 1 for i in range(5)}


def test_commits_of_one_author_and_second_are_distinct_changes(tmp_path, server):
    """A script's commits share the author's date to the second: one after the other, or on two
    branches with other messages and patches, they are distinct changes."""
    site = Site(tmp_path, server.url)
    repo = make_repo(tmp_path, site)
    commit(repo, "base")
    same = {**os.environ, "GIT_AUTHOR_DATE": "1700000000 +0000", "GIT_COMMITTER_DATE": "1700000000 +0000"}
    commit(repo, "First [#71]", env=same)
    commit(repo, "Second [#71]", env=same)
    git(repo, "checkout", "-q", "-b", "other", "HEAD~2")
    commit(repo, "Third [#71]", env=same)
    flush(site)
    assert len(comments(server)[71]) == 3


def test_a_reword_that_asks_for_a_state_tells_the_story_again(tmp_path, server):
    site = Site(tmp_path, server.url)
    repo = make_repo(tmp_path, site)
    commit(repo, "Engines [#51]")
    flush(site)
    amend(repo, "Engines [finishes #51]")
    flush(site)
    amend(repo, "Engines, again [fixes #51]")             # no stronger state: not again
    flush(site)
    assert len(comments(server)[51]) == 2
    assert server.stories()[51]["current_state"] == "finished"


def test_rewrites_every_sends_each_new_commit(tmp_path, server):
    site = Site(tmp_path, server.url, rewrites="every")
    repo = make_repo(tmp_path, site)
    commit(repo, "Shields [#1]")
    flush(site)
    amend(repo, change_file=True)
    flush(site)
    assert Counter(len(v) for v in comments(server).values()) == Counter({2: 1})


def test_a_commit_naming_several_stories_is_sent_to_those_that_did_not_hear_of_it(tmp_path, server):
    """A copy that adds a story is sent with only that story in its message."""
    site = Site(tmp_path, server.url)
    repo = make_repo(tmp_path, site)
    commit(repo, "Sensors [#81]")
    flush(site)
    amend(repo, "Sensors [#81] [#82]")
    flush(site)
    last = server.received()[-1]
    assert "#82" in last["message"] and "[#81]" not in last["message"]
    assert {sid: len(v) for sid, v in comments(server).items()} == {81: 1, 82: 1}


def test_a_backfilled_history_rebased_later_is_not_sent_again(tmp_path, server):
    site = Site(tmp_path, server.url)
    repo = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    commit(repo, "base")
    for i in range(6):
        commit(repo, f"History {i} [#{300 + i % 3}]")
    proc = site.cli("backfill", str(repo))
    assert proc.returncode == 0, proc.stderr
    flush(site)
    assert len(server.received()) == 6
    proc = subprocess.run([sys.executable, "-m", "hookagent", "install", str(repo), "--config",
                           str(site.config_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    git(repo, "checkout", "-q", "-b", "upstream", "HEAD~6")
    commit(repo, "upstream")
    git(repo, "checkout", "-q", "main")
    git(repo, "rebase", "-q", "upstream")
    flush(site)
    proc = site.cli("backfill", str(repo))                  # the rebased history, backfilled again
    assert proc.returncode == 0, proc.stderr
    flush(site)
    assert len(server.received()) == 6


def test_fixup_commits_are_not_sent_and_autosquash_sends_nothing_again(tmp_path, server):
    site = Site(tmp_path, server.url)
    repo = make_repo(tmp_path, site)
    commit(repo, "base")
    commit(repo, "Thrusters [finishes #401]")
    target = head(repo)
    commit(repo, "Other [#402]")
    (repo / "fix.txt").write_text("fix")
    git(repo, "add", "fix.txt")
    git(repo, "commit", "-q", "--fixup", target)             # "fixup! Thrusters [finishes #401]"
    flush(site)
    assert {sid: len(v) for sid, v in comments(server).items()} == {401: 1, 402: 1}
    env = {**os.environ, "GIT_SEQUENCE_EDITOR": "true"}
    proc = subprocess.run(["git", "-C", str(repo), "rebase", "-q", "-i", "--autosquash", "HEAD~3"],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "fixup!" not in git(repo, "log", "--format=%s")
    flush(site)
    assert {sid: len(v) for sid, v in comments(server).items()} == {401: 1, 402: 1}


def test_a_copy_tells_only_its_new_stories_in_the_destinations_grammar_on_every_lane(tmp_path, server):
    """With Redmine's grammar on an HTTP api, each lane's changes read that grammar too (they
    fell back to Tracker's, found no story and sent the copy whole)."""
    site = Site(tmp_path, server.url, api="v5", tracker={"syntax": "redmine"}, agent={"concurrency": 4})
    repo = make_repo(tmp_path, site)
    commit(repo, "Sensors refs #81")
    flush(site)
    amend(repo, "Sensors refs #81, #82")
    flush(site)
    messages = [r["message"] for r in server.received()]
    assert len(messages) == 2 and "#82" in messages[1] and "#81" not in messages[1], messages
