"""The svn hooks' Python work: post-revprop-change for svn:log edits; an old post-commit into
the inbox (the sh hook records new revisions itself)."""
from __future__ import annotations

import sys

from hookagent import inbox, links
from hookagent.config import Config
from hookagent.spool import Spool, commit_entry_name, make_entry
from hookagent.vcs import svn as vsvn


def read_commit(cfg: Config, repos: str, rev: int):
    """The revision as a Commit, with its link (the agent's ingest and log edits)."""
    commit = vsvn.read_revision(repos, rev, reader=cfg.svn_reader, id_style=cfg.svn_commit_id)
    rules = cfg.link_rules()
    commit.url = links.commit_url(rules, commit.repo, commit.commit_id, revision=str(rev))
    return commit


def post_commit(cfg: Config, spool: Spool, argv: list[str]) -> int:
    """A post-commit hook installed by an older version: record the revision in the inbox as the
    sh hook does (the agent reads it). Returns 1 when recorded."""
    if len(argv) < 2:
        raise ValueError("svn post-commit expects REPOS REV arguments")
    repos, rev = argv[0], int(argv[1])
    key = inbox.agent_key(cfg.path)
    headers = {"hook": "post-commit", "vcs": "svn", "key": key, "repo": repos, "revision": str(rev)}
    return int(spool.write_record(f"{key}.svn.{inbox.path_key(repos)}.{rev}", inbox.encode(headers)))


def post_revprop_change(cfg: Config, spool: Spool, argv: list[str], old_value: bytes | None = None) -> int:
    """An edited log message: send the revision again, only to the stories the edit added.

    svn passes REPOS REV USER PROPNAME ACTION and the old value on stdin. Each added story gets
    its own commit record, whose message keeps only that story's id in its reference brackets
    (the others are shown in parentheses) and whose ledger ident is ``svn:UUID@REV+log:ID``: the
    same edit twice, or an id taken out and put back, never reaches a story twice. (An id that
    was in the message at commit time, taken out and put back later is sent again: the hook
    only knows the message before this edit.) The records travel in one spool entry.
    """
    if len(argv) < 5:
        raise ValueError("svn post-revprop-change expects REPOS REV USER PROPNAME ACTION")
    repos, rev, _user, prop, action = argv[:5]
    if prop != "svn:log" or action not in ("M", "A"):
        return 0
    from hookagent.refsyntax import syntax_for
    stories = syntax_for(cfg.tracker)
    raw = sys.stdin.buffer.read() if old_value is None else old_value
    old = raw.decode("utf-8", "replace")
    from hookagent import reverts
    commit = reverts.apply(read_commit(cfg, repos, int(rev)), cfg.reverts, stories.neutralise)
    if commit is None:
        return 0
    before = {r.id for r in stories.parse(old)}
    added = [r.id for r in stories.parse(commit.message) if r.id not in before]
    if not added:
        return 0
    base, message = commit.ident, commit.message
    records = []
    for sid in added:
        commit.message = stories.keep_only(message, {sid})
        commit.ident = f"{base}+log:{sid}"
        records.append(commit.to_dict())
    dest = cfg.tracker.destination
    entry = make_entry(dest, records)
    name = commit_entry_name(dest, f"{base}+log:{_ids_key(sorted(added))}")
    return int(spool.enqueue(name, entry))


def _ids_key(ids: list[int]) -> str:
    """The added ids as written into the entry's name: in full when short; else a digest, because
    entry names keep only the first 120 characters of an ident (two long lists could collide)."""
    text = ",".join(str(i) for i in ids)
    if len(text) <= 48:
        return text
    import hashlib
    return f"{len(ids)}ids-{hashlib.sha256(text.encode()).hexdigest()[:24]}"
