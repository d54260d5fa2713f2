"""tracker.syntax: Redmine's keyword grammar (refsyntax.py), the configuration that chooses it,
and the hooks that let its commits through (the sh hook installed, `hookagent hook post-commit`
run from PATH) only where the destination reads it. No server: the inbox is looked at."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hookagent import config as config_mod
from hookagent import inbox
from hookagent.errors import ConfigError
from hookagent.model import StoryRef
from hookagent.refsyntax import RedmineSyntax, TrackerSyntax, syntax_for
from testing.site import Site, commit_file, git, work_tree_with_hook

F = "finished"


@pytest.mark.parametrize("message, refs", [
    ("refs #1", [StoryRef(1)]),
    ("fixes #123, #124", [StoryRef(123, F), StoryRef(124, F)]),
    ("Closes: #7 & #8 and refs #9; IssueID #10.", [StoryRef(7, F), StoryRef(8, F), StoryRef(9), StoryRef(10)]),
    ("Shields (refs #3) up\n\nFIXES #3", [StoryRef(3, F)]),
    ("Merge pull request #12 from x", []),
    ("[#12] Tracker's brackets", []),
    ("prefixes #1, fixes#2, refs #3a, refs #", []),
    ("x-refs #4", [StoryRef(4)]),
])
def test_redmine_grammar_reads_what_redmine_reads(message, refs):
    assert RedmineSyntax().parse(message) == refs
    assert RedmineSyntax().has_refs(message) == bool(refs)


def test_redmine_keywords_are_configurable_and_star_takes_bare_ids():
    mine = RedmineSyntax(refs=("see", "*"), finished=("done",), delivered=("ships",))
    assert mine.parse("see #1, done #2 ships #3 and #4") == [StoryRef(1), StoryRef(2, F), StoryRef(3, "delivered"),
                                                            StoryRef(4)]
    assert RedmineSyntax(refs=("see",)).parse("refs #1 fixes #2") == [StoryRef(2, F)]


@pytest.mark.parametrize("message, linked", [
    ("fixes #12, #13 Torpedoes", "refs #12, #13 (fixes) Torpedoes"),
    ("Done.\n\nCloses: #7 and refs #9", "Done.\n\nrefs #7 (Closes) and refs #9"),
    ("refs #1 only", "refs #1 only"),
])
def test_link_only_keeps_every_issue_and_no_state(message, linked):
    syntax = RedmineSyntax()
    assert syntax.neutralise(message) == linked
    assert syntax.neutralise(linked) == linked
    assert [r.id for r in syntax.parse(linked)] == [r.id for r in syntax.parse(message)]
    assert all(r.state is None for r in syntax.parse(linked))


def test_keep_only_for_svn_log_edits():
    syntax = RedmineSyntax()
    assert syntax.keep_only("fixes #1, #2 refs #3", {2}) == "fixes #2 refs 3"
    assert syntax.parse(syntax.keep_only("fixes #1, #2 refs #3", {2})) == [StoryRef(2, F)]


def test_the_syntax_follows_the_api_and_can_be_chosen(tmp_path):
    assert config_mod.parse("tracker: {api: v5}").tracker.syntax == "tracker"
    assert isinstance(syntax_for(config_mod.parse("tracker: {api: v5}").tracker), TrackerSyntax)
    cfg = config_mod.parse("tracker: {api: redmine, url: 'https://rm.example.com'}")
    assert cfg.tracker.syntax == "redmine" and isinstance(syntax_for(cfg.tracker), RedmineSyntax)
    cfg = config_mod.parse("tracker: {api: v5, syntax: redmine, keywords: {refs: [see], finished: [done]}}")
    assert syntax_for(cfg.tracker).parse("see #1 done #2") == [StoryRef(1), StoryRef(2, F)]
    with pytest.raises(ConfigError, match="tracker.syntax"):
        config_mod.parse("tracker: {api: v5, syntax: jira}")
    with pytest.raises(ConfigError, match="tracker.keywords.finished"):
        config_mod.parse("tracker: {api: redmine, url: 'https://x', keywords: {finished: ['fix it']}}")
    with pytest.raises(ConfigError, match="tracker.redmine.statuses"):
        config_mod.parse("tracker: {api: redmine, url: 'https://x', redmine: {statuses: {done: 3}}}")
    authors = tmp_path / "authors"
    authors.write_text("# email login\nAda@Example.com: ada\nbob@example.com bobby\n")
    cfg = config_mod.parse(f"tracker: {{api: redmine, url: 'https://x', redmine: {{authors_file: {authors},"
                           f" authors: {{bob@example.com: bob}}}}}}")
    assert dict(cfg.tracker.redmine.authors) == {"ada@example.com": "ada", "bob@example.com": "bob"}


@pytest.mark.parametrize("syntax, recorded", [("redmine", True), ("tracker", False)])
def test_installed_hook_records_refs_only_for_redmines_syntax(tmp_path, syntax, recorded):
    site = Site(tmp_path, "http://127.0.0.1:9", tracker={"syntax": syntax})
    repo = work_tree_with_hook(tmp_path, site)
    assert commit_file(repo, "Shields up\n\nrefs #42").returncode == 0
    head = git(repo, "rev-parse", "HEAD").strip()
    record = Path(site.data["spool_dir"]) / "inbox" / f"{inbox.agent_key(str(site.config_path))}.git.{head}"
    assert record.exists() == recorded
    if recorded:
        assert len(site.queued()) == 1     # the agent's ingest reads it with the same grammar
    assert commit_file(repo, "No reference: issue 42, #x").returncode == 0
    assert not record.parent.exists() or list(record.parent.iterdir()) == []


@pytest.mark.parametrize("syntax, recorded", [("redmine", True), ("tracker", False)])
def test_post_commit_from_path_reads_the_config_for_a_hash_and_a_digit(tmp_path, syntax, recorded):
    site = Site(tmp_path, "http://127.0.0.1:9", tracker={"syntax": syntax})
    repo = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    assert commit_file(repo, "fixes #7").returncode == 0
    env = {**os.environ, "HOOKAGENT_CONFIG": str(site.config_path)}
    proc = subprocess.run([sys.executable, "-m", "hookagent", "hook", "post-commit"], cwd=repo, env=env,
                          capture_output=True)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    head = git(repo, "rev-parse", "HEAD").strip()
    record = Path(site.data["spool_dir"]) / "inbox" / f"{inbox.agent_key(str(site.config_path))}.git.{head}"
    assert record.exists() == recorded
