"""The redmine sink against a real Redmine (Debian's, testing/redmine.py), end to end: commits
made in a work tree with the installed hooks, the agent run by `hookagent flush`, every result
read back through Redmine's REST API (``GET /issues/N.json?include=journals``)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testing.redmine import Redmine
from testing.site import Site, commit_file, git, work_tree_with_hook

ALICE = {"GIT_AUTHOR_NAME": "Alice Tester", "GIT_AUTHOR_EMAIL": "alice@example.com"}
BOB = {"GIT_AUTHOR_NAME": "Bob Outsider", "GIT_AUTHOR_EMAIL": "bob@example.org"}


def redmine_site(root: Path, server: Redmine, **tracker) -> Site:
    settings = {"api": "redmine", "url": server.url,
                "redmine": {"statuses": {"finished": "Resolved"}}, **tracker}
    return Site(root, server.url, token=server.key, tracker=settings)


def commit(repo: Path, message: str, author: dict | None = None) -> str:
    env = {**os.environ, **(author or {})}
    proc = commit_file(repo, message, env=env)
    assert proc.returncode == 0, proc.stderr
    return git(repo, "rev-parse", "HEAD").strip()


def flush(site: Site, expect: int = 0) -> subprocess.CompletedProcess:
    proc = site.cli("flush")
    assert proc.returncode == expect, proc.stdout + proc.stderr
    return proc


def status(site: Site) -> dict:
    return json.loads(site.cli("status", "--json", check=True).stdout)


def test_refs_adds_a_note_and_fixes_moves_the_issue_to_the_configured_status_once(tmp_path, redmine):
    first, second = redmine.new_issue("refs target"), redmine.new_issue("fixes target")
    site = redmine_site(tmp_path, redmine)
    repo = work_tree_with_hook(tmp_path, site)
    referenced = commit(repo, f"Shields up\n\nrefs #{first}")
    fixed = commit(repo, f"Torpedoes fixes #{second}")
    commit(repo, f"Merge pull request #{first} (no keyword: no reference)")
    assert len(site.queued()) == 2
    flush(site)

    [note] = redmine.notes(first)
    assert referenced in note["notes"] and "Shields up" in note["notes"] and "Ada Tester" in note["notes"]
    assert note["user"]["name"] == "Redmine Admin" and note["details"] == []
    assert redmine.issue(first)["status"]["name"] == "New"
    [note] = redmine.notes(second)
    assert fixed in note["notes"] and "Torpedoes" in note["notes"]
    assert [(d["name"], d["new_value"]) for d in note["details"]] == [("status_id", str(redmine.statuses()["Resolved"]))]
    assert redmine.issue(second)["status"]["name"] == "Resolved"

    # Nothing twice: the same commits queued again (a second ingest, a backfill) send nothing.
    assert site.cli("backfill", str(repo), "--with-state").returncode == 0
    flush(site)
    assert len(redmine.notes(first)) == 1 and len(redmine.notes(second)) == 1
    assert status(site)["sent"] == 2
    log = (tmp_path / "spool" / "agent.log").read_text()
    assert redmine.key not in log


def test_a_mapped_author_is_the_notes_user_an_unmapped_one_is_named(tmp_path, redmine):
    alice = redmine.user("alice")
    issue = redmine.new_issue("authors")
    site = redmine_site(tmp_path, redmine, redmine={
        "statuses": {"finished": 3},
        "authors": {"Alice@Example.com": "alice", "ghost@example.com": "no-such-login"}})
    repo = work_tree_with_hook(tmp_path, site)
    commit(repo, f"By Alice, fixes #{issue}", ALICE)
    commit(repo, f"By Bob, refs #{issue}", BOB)
    commit(repo, f"By a ghost, refs #{issue}",
           {"GIT_AUTHOR_NAME": "Gus Ghost", "GIT_AUTHOR_EMAIL": "ghost@example.com"})
    flush(site)

    by_alice, by_bob, by_ghost = redmine.notes(issue)
    assert by_alice["user"]["id"] == alice["id"] and "By Alice" in by_alice["notes"]
    assert by_alice["details"][0]["new_value"] == "3"
    assert by_bob["user"]["name"] == "Redmine Admin" and "Bob Outsider" in by_bob["notes"]
    # An unknown login (412) falls back to the key's user, and says so in the log.
    assert by_ghost["user"]["name"] == "Redmine Admin" and "Gus Ghost" in by_ghost["notes"]
    assert "no-such-login" in (tmp_path / "spool" / "agent.log").read_text()


def test_a_mapped_user_who_may_not_update_the_issue_falls_back_to_the_keys_user(tmp_path, redmine):
    """403 for the switched user (not a member of a private project) is not the key's problem:
    the note goes as the key's user; the queue is not held."""
    redmine.user("carol")                              # a member of the shared project only
    main = redmine.project
    try:
        redmine.setup_project("private-one")
        redmine.call("PUT", "/projects/private-one.json", {"project": {"is_public": False}}, expect=204)
        issue = redmine.new_issue("private")
    finally:
        redmine.project = main
    site = redmine_site(tmp_path, redmine, redmine={"authors": {"carol@example.com": "carol"}})
    repo = work_tree_with_hook(tmp_path, site)
    commit(repo, f"refs #{issue}", {"GIT_AUTHOR_NAME": "Carol Tester", "GIT_AUTHOR_EMAIL": "carol@example.com"})
    flush(site)
    [note] = redmine.notes(issue)
    assert note["user"]["name"] == "Redmine Admin" and "Carol Tester" in note["notes"]
    assert status(site)["held"] is None
    assert "'carol' may not update" in (tmp_path / "spool" / "agent.log").read_text()


def test_a_missing_issue_is_dead_alone_and_a_retry_posts_only_what_was_missing(tmp_path, redmine):
    first, second = redmine.new_issue("one"), redmine.new_issue("two")
    missing = second + 1     # made only after the first delivery
    site = redmine_site(tmp_path, redmine)
    repo = work_tree_with_hook(tmp_path, site)
    commit(repo, f"Three issues refs #{first}, #{second}, #{missing}")
    later = commit(repo, f"After it, refs #{first}")
    flush(site)

    assert len(redmine.notes(first)) == 2 and len(redmine.notes(second)) == 1
    assert later in redmine.notes(first)[1]["notes"]
    st = status(site)
    assert st["dead"]["commits"] == 1 and st["held"] is None and st["sent"] == 1
    dead = [json.loads(p.read_text()) for p in (tmp_path / "spool" / "dead").iterdir()]
    assert f"#{missing}" in dead[0]["last_error"] and dead[0]["last_status"] == 404

    assert redmine.new_issue("three") == missing
    assert site.cli("retry", "--dead").returncode == 0
    flush(site)
    assert len(redmine.notes(missing)) == 1
    assert len(redmine.notes(first)) == 2 and len(redmine.notes(second)) == 1, "posted twice"
    assert status(site)["dead"]["commits"] == 0


def test_an_update_redmine_refuses_is_dead_with_its_errors_and_the_rest_go_on(tmp_path, redmine):
    """422: an issue Redmine will not save (its tracker's workflow now requires a due date, which
    it has none of; only that tracker's issues are affected)."""
    support = {t["name"]: t["id"] for t in redmine.call("GET", "/trackers.json")["trackers"]}["Support"]
    good, bad = redmine.new_issue("saved"), redmine.new_issue("unsavable", tracker_id=support)
    redmine.runner(f'Role.all.each {{ |r| WorkflowPermission.create!(role_id: r.id, tracker_id: {support},'
                   f' old_status_id: 1, field_name: "due_date", rule: "required") }}')
    site = redmine_site(tmp_path, redmine)
    repo = work_tree_with_hook(tmp_path, site)
    commit(repo, f"Both refs #{bad}, #{good}")
    flush(site)
    assert len(redmine.notes(good)) == 1 and redmine.notes(bad) == []
    [dead] = [json.loads(p.read_text()) for p in (tmp_path / "spool" / "dead").iterdir()]
    assert dead["last_status"] == 422 and "Due date cannot be blank" in dead["last_error"]
    assert "Due date cannot be blank" in dead["response"]


def test_a_wrong_key_holds_the_queue_then_delivers_after_the_fix(tmp_path, redmine):
    issue = redmine.new_issue("key")
    site = redmine_site(tmp_path, redmine)
    site.set_token("0" * 40)
    repo = work_tree_with_hook(tmp_path, site)
    commit(repo, f"refs #{issue}")
    proc = flush(site, expect=1)
    assert "held" in proc.stderr and "0" * 40 not in proc.stderr
    st = status(site)
    assert st["held"] and "401" in st["held"] and st["pending"]["commits"] == 1
    assert redmine.notes(issue) == []
    site.set_token(redmine.key)
    flush(site)
    assert len(redmine.notes(issue)) == 1 and status(site)["held"] is None


def test_a_configured_status_redmine_does_not_have_holds_the_queue_with_the_reason(tmp_path, redmine):
    issue = redmine.new_issue("status")
    site = redmine_site(tmp_path, redmine, redmine={"statuses": {"finished": "Shipped", "delivered": 99}})
    repo = work_tree_with_hook(tmp_path, site)
    commit(repo, f"refs #{issue}")
    flush(site, expect=1)
    held = status(site)["held"]
    assert "tracker.redmine.statuses" in held and "Shipped" in held and "Resolved" in held
    assert redmine.notes(issue) == []
    site.data["tracker"]["redmine"]["statuses"] = {"finished": "resolved", "delivered": 5}
    site.write()
    flush(site)
    assert len(redmine.notes(issue)) == 1


def test_backfill_link_only_adds_notes_without_status_changes(tmp_path, redmine):
    issue = redmine.new_issue("history")
    repo = tmp_path / "old"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    old = commit(repo, f"Long ago, fixes #{issue}")       # no hook: history
    commit(repo, "Unrelated [#5] and #7")
    site = redmine_site(tmp_path, redmine)
    dry = site.cli("backfill", str(repo), "--dry-run", "--format", "jsonl")
    assert dry.returncode == 0, dry.stderr
    [line] = [json.loads(x) for x in dry.stdout.splitlines()]
    assert line["commit_id"] == old and line["stories"] == [{"id": issue, "state": "finished"}]
    assert "fixes #12 goes as refs #12 (fixes)" in dry.stderr
    assert site.cli("backfill", str(repo)).returncode == 0
    flush(site)
    [note] = redmine.notes(issue)
    assert old in note["notes"] and f"refs #{issue} (fixes)" in note["notes"] and note["details"] == []
    assert redmine.issue(issue)["status"]["name"] == "New"


def test_the_hooks_quick_test_follows_the_destinations_syntax(tmp_path, redmine, server):
    """`refs #N` gets past the installed hook only where the destination reads Redmine's
    syntax; a spool shared with a Tracker destination still records each commit once."""
    issue = redmine.new_issue("shared spool")
    (tmp_path / "rm").mkdir()
    (tmp_path / "tr").mkdir()
    rm = redmine_site(tmp_path / "rm", redmine)
    tr = Site(tmp_path / "tr", server.url, spool_dir=rm.data["spool_dir"])
    rm_repo = work_tree_with_hook(tmp_path / "rm", rm)
    tr_repo = work_tree_with_hook(tmp_path / "tr", tr)
    inbox = Path(rm.data["spool_dir"]) / "inbox"
    commit(tr_repo, "refs #1 is not Tracker's syntax")
    assert not inbox.exists() or list(inbox.iterdir()) == []
    sha = commit(rm_repo, f"refs #{issue}")
    tr_sha = commit(tr_repo, "Tracker's [#101]")
    assert sorted(p.name.rsplit(".", 1)[-1] for p in inbox.iterdir()) == sorted([sha, tr_sha])
    flush(tr)
    flush(rm)
    assert [r["commit_id"] for r in server.received()] == [tr_sha]
    [note] = redmine.notes(issue)
    assert sha in note["notes"]
    assert list(inbox.iterdir()) == []


def test_render_lists_the_puts_and_holds_no_key(tmp_path, redmine):
    site = redmine_site(tmp_path, redmine)
    from hookagent import context
    from hookagent.model import Commit
    sink = context.make_sink(site.config)
    body = sink.render(Commit("a" * 40, "Ada", "fixes #3, #4\n</pre><b>x</b>", url="https://x/c/a"))
    lines = [json.loads(x) for x in body.decode().splitlines()]
    assert [x["issue"] for x in lines] == [3, 4]
    assert "</pre>\n</pre>" not in lines[0]["body"]["issue"]["notes"]
    assert redmine.key not in body.decode()


@pytest.fixture
def server():
    from hookagent.devserver import DevServer
    from testing.site import TOKEN
    with DevServer(token=TOKEN) as srv:
        yield srv


def test_demo_runs_against_the_real_redmine(tmp_path, redmine):
    key = tmp_path / "key"
    key.write_text(redmine.key)
    proc = subprocess.run([sys.executable, "-m", "hookagent", "demo", "--api", "redmine",
                           "--redmine-url", redmine.url, "--redmine-key-file", str(key)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = proc.stdout.split("What Redmine shows")[1]
    assert shown.count("status: Resolved") == 3, proc.stdout
    assert shown.count("- Redmine Admin: Commit") == 4, proc.stdout
    assert redmine.key not in proc.stdout + proc.stderr


def test_doctor_checks_the_key_and_the_statuses_and_a_hook_of_another_syntax(tmp_path, redmine):
    site = redmine_site(tmp_path, redmine)
    repo = work_tree_with_hook(tmp_path, site)
    out = site.cli("doctor", str(repo))
    assert "/users/current.json answered 200" in out.stdout, out.stdout + out.stderr
    assert "finished -> status 3" in out.stdout and "an admin's" in out.stdout
    assert redmine.key not in out.stdout + out.stderr
    site.data["tracker"]["redmine"]["statuses"] = {"finished": "Shipped"}
    site.data["tracker"]["syntax"] = "tracker"
    site.write()
    out = site.cli("doctor", str(repo))
    assert "'Shipped'" in out.stdout and "installed for tracker.syntax redmine" in out.stdout, out.stdout


def test_a_push_to_a_server_repository_notes_the_issues_it_references(tmp_path, redmine):
    from testing.site import bare_repo_with_hook
    issue = redmine.new_issue("pushed")
    site = redmine_site(tmp_path, redmine)
    bare, work = bare_repo_with_hook(tmp_path, site)
    commit_file(work, "Local work, no reference")
    pushed = [commit(work, f"Pushed, refs #{issue}"), commit(work, f"And closes #{issue}")]
    git(work, "push", "-q", "origin", "main")
    flush(site)
    notes = redmine.notes(issue)
    assert [n["notes"].split()[1].strip('"').split('"')[0] for n in notes] == pushed
    assert redmine.issue(issue)["status"]["name"] == "Resolved"


def test_svn_commits_and_a_log_edit_reach_redmine_once(tmp_path, redmine):
    from testing import svn as tsvn
    if not tsvn.have_svnserve():
        pytest.skip("Subversion is not installed (scripts/setup --test installs it)")
    first, second = redmine.new_issue("svn one"), redmine.new_issue("svn two")
    site = redmine_site(tmp_path, redmine)
    repos = tsvn.create_repository(tmp_path / "svnroot" / "project")
    tsvn.allow_log_edits(repos)
    proc = site.cli("install", str(repos), "--hooks", "post-commit,post-revprop-change")
    assert proc.returncode == 0, proc.stderr
    client = tsvn.Client(tmp_path / "svnconf")
    wc = client.checkout(tsvn.file_url(repos), tmp_path / "wc")
    client.commit(wc, f"Shields up, refs #{first}")
    client.commit(wc, "Tidy, no issue")
    flush(site)
    assert [n["notes"].split()[1] for n in redmine.notes(first)] == ["1"]
    client.set_log(tsvn.file_url(repos), 1, f"Shields up, refs #{first}, fixes #{second}")
    flush(site)
    assert len(redmine.notes(first)) == 1, "the edit told the first issue again"
    [note] = redmine.notes(second)
    assert redmine.issue(second)["status"]["name"] == "Resolved"
    assert f"#{first}" not in note["notes"].split("<pre>")[1]


def test_an_amended_commit_does_not_note_the_issue_again(tmp_path, redmine):
    """One comment per change (changes.py) reads the destination's grammar: an amend of a
    delivered `refs #N` commit is the same change, and the issue is not told twice."""
    issue = redmine.new_issue("amended")
    site = redmine_site(tmp_path, redmine)
    repo = work_tree_with_hook(tmp_path, site)
    first = commit(repo, f"Shields up, refs #{issue}")
    flush(site)
    proc = subprocess.run(["git", "-C", str(repo), "commit", "-q", "--amend", "-m", f"Shields up! refs #{issue}"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    flush(site)
    [note] = redmine.notes(issue)
    assert first in note["notes"]


def test_a_revert_notes_the_issue_without_moving_it(tmp_path, redmine):
    """reverts: link neutralises a revert's keywords in the destination's grammar."""
    issue = redmine.new_issue("reverted")
    site = redmine_site(tmp_path, redmine)
    repo = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    commit(repo, f"Finished, fixes #{issue}")                   # before the hooks: never sent
    assert site.cli("install", str(repo)).returncode == 0
    proc = subprocess.run(["git", "-C", str(repo), "revert", "--no-edit", "HEAD"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    flush(site)
    [note] = redmine.notes(issue)
    assert note["details"] == [] and f'Revert "Finished, refs #{issue} (fixes)"' in note["notes"]
    assert redmine.issue(issue)["status"]["name"] == "New"
