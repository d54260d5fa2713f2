"""The git hooks' work: turn HEAD (post-commit) or a push (post-receive) into spool entries."""
from __future__ import annotations

import os

from hookagent import links, spool as spool_mod
from hookagent.refscan import has_refs


def _spool(view: dict) -> spool_mod.Spool:
    return spool_mod.Spool(view["spool_dir"], view.get("spool_group"))


def post_commit(view: dict, argv: list[str]) -> int:
    """Record HEAD when it references a story. Returns how many entries were queued."""
    from hookagent.vcs import gitobj

    cwd = os.getcwd()
    found = gitobj.head(cwd)          # direct reads: no git process in the common case
    if found is None:
        from hookagent.vcs import git as vgit
        found = vgit.head(cwd)
    repo, fields, branch = found.toplevel, found.fields, found.branch
    if not has_refs(fields["message"]):
        return 0
    url = links.commit_url(view.get("repos") or [], repo, fields["sha"], branch)
    commit = gitobj.to_commit(fields, repo, branch, url)
    dest = view["destination"]
    entry = spool_mod.make_entry(dest, [commit.to_dict()])
    return int(_spool(view).enqueue(spool_mod.commit_entry_name(dest, commit.ident), entry))


def post_receive(view: dict, argv: list[str], stdin_text: str | None = None) -> int:
    """Record the commits a push made new (see pushes.py). Returns how many entries were queued."""
    import sys
    from hookagent import pushes
    from hookagent.vcs import git as vgit

    text = sys.stdin.read() if stdin_text is None else stdin_text
    updates = pushes.parse_updates(text)
    repo = pushes.repository(os.getcwd())
    branches = view.get("branches") or ["*"]
    tags = bool(view.get("tags"))
    moved = [u for u in updates if pushes.watched(u.ref, branches, tags)]
    if not moved:
        return 0
    spool = _spool(view)
    dest = view["destination"]
    queued = 0
    with pushes.Snapshot(spool, repo) as snap:
        seen = snap.load()
        if seen is None:  # first push since install: what the other watched refs hold now
            seen = {ref: sha for ref, sha in vgit.list_refs(repo).items()
                    if pushes.watched(ref, branches, tags)}
        for u in moved:   # a moved ref counts by its old value: what the snapshot holds for it
            seen.pop(u.ref, None)   # may be this push's own new value (see pushes.py)
        exclude = set(seen.values()) | {u.old for u in moved if not u.created}
        commits = []
        for u in moved:
            if u.deleted:
                continue
            for fields in vgit.stream_new_commits(repo, u.new, exclude):
                if not has_refs(fields["message"]):
                    continue
                url = links.commit_url(view.get("repos") or [], repo, fields["sha"], u.branch)
                commit = vgit.to_commit(fields, repo, u.branch, url)
                commit.ref = u.ref
                commits.append(commit.to_dict())
            exclude.add(u.new)   # a commit shared by several refs of this push counts once
        from hookagent.model import pusher_from_env
        updates = [{"ref": u.ref, "before": u.old, "after": u.new} for u in moved]
        pusher = pusher_from_env(os.environ)
        for i in range(0, len(commits), BATCH):
            entry = spool_mod.make_entry(dest, commits[i:i + BATCH], push=[u.ref for u in moved],
                                         updates=updates, pusher=pusher)
            queued += int(spool.enqueue(spool_mod.batch_entry_name(dest), entry))
        for u in moved:
            if u.deleted:
                seen.pop(u.ref, None)
            else:
                seen[u.ref] = u.new
        snap.save(seen)
    return queued


BATCH = 1000
