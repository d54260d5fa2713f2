"""The git hooks' work: turn HEAD (post-commit) or a push (post-receive) into spool entries."""
from __future__ import annotations

import os

from hookagent import links, refs, spool as spool_mod
from hookagent.vcs import git as vgit


def _spool(view: dict) -> spool_mod.Spool:
    return spool_mod.Spool(view["spool_dir"], view.get("spool_group"))


def post_commit(view: dict, argv: list[str]) -> int:
    """Record HEAD when it references a story. Returns how many entries were queued."""
    repo = vgit.toplevel(os.getcwd())
    fields = vgit.read_commit(repo, "HEAD")
    if not refs.has_refs(fields["message"]):
        return 0
    branch = vgit.current_branch(repo)
    url = links.commit_url(view.get("repos") or [], repo, fields["sha"], branch)
    commit = vgit.to_commit(fields, repo, branch, url)
    dest = view["destination"]
    entry = spool_mod.make_entry(dest, [commit.to_dict()])
    return int(_spool(view).enqueue(spool_mod.commit_entry_name(dest, commit.ident), entry))


def post_receive(view: dict, argv: list[str]) -> int:
    raise NotImplementedError("post-receive is not implemented yet")
