"""The svn hooks' work: post-commit (REPOS REV [TXN]) and post-revprop-change for svn:log."""
from __future__ import annotations

import sys

from hookagent import links, refscan, spool as spool_mod
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
    if not refscan.has_refs(commit.message):   # refscan: no `re` import on every commit
        return 0
    dest = view["destination"]
    entry = spool_mod.make_entry(dest, [commit.to_dict()])
    spool = spool_mod.Spool(view["spool_dir"], view.get("spool_group"))
    return int(spool.enqueue(spool_mod.commit_entry_name(dest, commit.ident), entry))


def post_revprop_change(view: dict, argv: list[str], old_value: bytes | None = None) -> int:
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
    from hookagent import refs
    raw = sys.stdin.buffer.read() if old_value is None else old_value
    old = raw.decode("utf-8", "replace")
    commit = _read(view, repos, int(rev))
    before = {r.id for r in refs.parse(old)}
    added = [r.id for r in refs.parse(commit.message) if r.id not in before]
    if not added:
        return 0
    base, message = commit.ident, commit.message
    records = []
    for sid in added:
        commit.message = refs.keep_only(message, {sid})
        commit.ident = f"{base}+log:{sid}"
        records.append(commit.to_dict())
    dest = view["destination"]
    entry = spool_mod.make_entry(dest, records)
    spool = spool_mod.Spool(view["spool_dir"], view.get("spool_group"))
    name = spool_mod.commit_entry_name(dest, f"{base}+log:{_ids_key(sorted(added))}")
    return int(spool.enqueue(name, entry))


def _ids_key(ids: list[int]) -> str:
    """The added ids as written into the entry's name: in full when short; else a digest, because
    entry names keep only the first 120 characters of an ident (two long lists could collide)."""
    text = ",".join(str(i) for i in ids)
    if len(text) <= 48:
        return text
    import hashlib
    return f"{len(ids)}ids-{hashlib.sha256(text.encode()).hexdigest()[:24]}"
