"""The svn hooks' work: post-commit (REPOS REV [TXN]) and post-revprop-change for svn:log."""
from __future__ import annotations

import sys

from hookagent import links, refs, spool as spool_mod
from hookagent.vcs import svn as vsvn


def _read(view: dict, repos: str, rev: int):
    svn = view.get("svn") or {}
    commit = vsvn.read_revision(repos, rev, reader=svn.get("reader", "svnlook"),
                                id_style=svn.get("commit_id", "revision"))
    commit.url = links.commit_url(view.get("repos") or [], commit.repo, commit.commit_id,
                                  revision=str(rev))
    return commit


def post_commit(view: dict, argv: list[str]) -> int:
    if len(argv) < 2:
        raise ValueError("svn post-commit expects REPOS REV arguments")
    commit = _read(view, argv[0], int(argv[1]))
    if not refs.has_refs(commit.message):
        return 0
    dest = view["destination"]
    entry = spool_mod.make_entry(dest, [commit.to_dict()])
    spool = spool_mod.Spool(view["spool_dir"], view.get("spool_group"))
    return int(spool.enqueue(spool_mod.commit_entry_name(dest, commit.ident), entry))


def post_revprop_change(view: dict, argv: list[str], old_value: bytes | None = None) -> int:
    """An edited log message: send the revision again only for the story ids the edit added.

    svn passes REPOS REV USER PROPNAME ACTION and the old value on stdin. The message sent keeps
    only the added ids in its reference brackets (stories it already mentioned are not commented
    on twice), and its ledger ident names those ids, so the same edit is never sent twice.
    """
    if len(argv) < 5:
        raise ValueError("svn post-revprop-change expects REPOS REV USER PROPNAME ACTION")
    repos, rev, _user, prop, action = argv[:5]
    if prop != "svn:log" or action not in ("M", "A"):
        return 0
    raw = sys.stdin.buffer.read() if old_value is None else old_value
    old = raw.decode("utf-8", "replace")
    commit = _read(view, repos, int(rev))
    before = {r.id for r in refs.parse(old)}
    added = [r.id for r in refs.parse(commit.message) if r.id not in before]
    if not added:
        return 0
    commit.message = refs.keep_only(commit.message, set(added))
    commit.ident = f"{commit.ident}+log:{','.join(str(i) for i in sorted(added))}"
    dest = view["destination"]
    entry = spool_mod.make_entry(dest, [commit.to_dict()])
    spool = spool_mod.Spool(view["spool_dir"], view.get("spool_group"))
    return int(spool.enqueue(spool_mod.commit_entry_name(dest, commit.ident), entry))
