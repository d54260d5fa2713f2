"""The git hooks' Python work: a push into spool entries; an old post-commit into the inbox."""
from __future__ import annotations

import os
import sys

from hookagent import inbox, links, process, reverts
from hookagent.config import Config
from hookagent.hook import push as pushes
from hookagent.model import pusher_from_env
from hookagent.refsyntax import syntax_for
from hookagent.spool import Spool, batch_entry_name, make_entry, push_entry_name
from hookagent.vcs import git as vgit

BATCH = 1000
"""Commits per spool entry for a push (one fsynced file each)."""


def post_commit(cfg: Config, spool: Spool, argv: list[str], hook: str = "post-commit") -> int:
    """A post-commit hook installed by an older version (it ran Python for each commit): record
    HEAD in the inbox as the sh hook does. Returns 1 when recorded, else 0. ``hook="post-merge"``:
    only a merge commit the merge made here (see merge_made_here)."""
    repo = vgit.toplevel(os.getcwd())
    sha = vgit.git(["rev-parse", "--verify", "HEAD^{commit}"], repo).decode().strip()
    raw = vgit.git(["cat-file", "commit", sha], repo)
    fields = vgit.parse_raw_commit(sha, raw)
    if not syntax_for(cfg.tracker).has_refs(fields["message"]):
        return 0
    if hook == "post-merge" and not merge_made_here(repo, sha, fields["parents"], argv):
        return 0
    branch = vgit.current_branch(repo)
    key = inbox.agent_key(cfg.path)
    headers = {"hook": hook, "vcs": "git", "key": key, "repo": repo,
               "head": f"ref: refs/heads/{branch}" if branch else sha}
    return int(spool.write_record(f"{key}.git.{sha}", inbox.encode(headers, [(sha, raw)])))


def post_merge(cfg: Config, spool: Spool, argv: list[str]) -> int:
    """post-merge (the sh hook's fallbacks, `hookagent hook post-merge` from PATH): HEAD, as
    post-commit records it, when the merge made a merge commit here."""
    return post_commit(cfg, spool, argv, hook="post-merge")


def merge_made_here(repo: str, sha: str, parents: list[str], argv: list[str]) -> bool:
    """Whether HEAD (``sha``, with ``parents``) is a merge commit that the merge post-merge runs
    after made here, as the sh hook decides: not a squash merge (post-merge's argument 1: no
    commit), two or more parents, the first of them ORIG_HEAD (HEAD before the merge), and
    HEAD's reflog not saying Fast-forward (a fast-forward onto someone else's merge of our old
    HEAD passes the parent test). A fast-forward's commits are other people's: recorded where
    they were made, or by the server's post-receive."""
    if argv[:1] == ["1"] or len(parents) < 2:
        return False
    orig = process.run(["git", "-C", repo, "rev-parse", "-q", "--verify", "ORIG_HEAD^{commit}"], check=False,
                       timeout=60)
    if orig.stdout.decode("ascii", "replace").strip() != parents[0]:
        return False
    last = process.run(["git", "-C", repo, "log", "-g", "-1", "--format=%H %gs", "HEAD"], check=False, timeout=60)
    new, _, subject = last.stdout.decode("utf-8", "replace").strip().partition(" ")
    return not (new == sha and ": Fast-forward" in subject)


def post_receive(cfg: Config, spool: Spool, argv: list[str], stdin_text: str | None = None) -> int:
    """The Python post-receive (a hook of the previous version, or the sh hook's fallback when
    its configuration names another spool): queue what the push made new, now."""
    text = sys.stdin.read() if stdin_text is None else stdin_text
    return queue_push(cfg, spool, pushes.repository(os.getcwd()), text, os.environ)


def queue_push(cfg: Config, spool: Spool, repo: str, text: str, environ, record: str | None = None,
               changes=None) -> int:
    """Queue the commits a push made new (see push.py), from its `OLD NEW REF` lines; the agent
    does this for the sh hook's push records (``record``: its name, which names the entries, so
    a record read again after a crash queues nothing twice). Returns how many entries were
    queued."""
    updates = pushes.parse_updates(text)
    branches, tags = list(cfg.branches), cfg.tags
    moved = [u for u in updates if pushes.watched(u.ref, branches, tags)]
    if not moved:
        return 0
    dest = cfg.tracker.destination
    rules = cfg.link_rules()
    syntax = syntax_for(cfg.tracker)
    queued = 0
    with pushes.Snapshot(spool, repo) as snap:
        seen = snap.load()
        if seen is None:  # first push since install: what the other watched refs hold now
            seen = {ref: sha for ref, sha in vgit.list_refs(repo).items()
                    if pushes.watched(ref, branches, tags)}
        for u in moved:   # a moved ref counts by its old value: what the snapshot holds for it
            seen.pop(u.ref, None)   # may be this push's own new value (see push.py)
        exclude = set(seen.values()) | {u.old for u in moved if not u.created}
        commits = []
        for u in moved:
            if u.deleted:
                continue
            for fields in vgit.stream_new_commits(repo, u.new, exclude):
                if not syntax.has_refs(fields["message"]):
                    continue
                url = links.commit_url(rules, repo, fields["sha"], u.branch)
                commit = reverts.apply(vgit.to_commit(fields, repo, u.branch, url), cfg.reverts,
                                       syntax.neutralise)
                if commit is None:
                    continue
                commit.ref = u.ref
                commits.append(commit)
            exclude.add(u.new)   # a commit shared by several refs of this push counts once
        if changes is not None and commits:   # one comment per change (changes.py): a force push
            commits = changes.claim(commits)  # of rebased commits tells no story again
        updates_out = [{"ref": u.ref, "before": u.old, "after": u.new} for u in moved]
        pusher = pusher_from_env(environ)
        for i in range(0, len(commits), BATCH):
            entry = make_entry(dest, [c.to_dict() for c in commits[i:i + BATCH]], push=[u.ref for u in moved],
                               updates=updates_out, pusher=pusher)
            name = batch_entry_name(dest) if record is None else push_entry_name(dest, record, i // BATCH)
            queued += int(spool.enqueue(name, entry))
        for u in moved:
            if u.deleted:
                seen.pop(u.ref, None)
            else:
                seen[u.ref] = u.new
        snap.save(seen)
    return queued
