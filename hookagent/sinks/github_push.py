"""GitHub's push webhook payload: ``POST {base}/services/v3/github_commits`` (``tracker.api: github-push``).

Pivotal Tracker's ``/services/v3/github_commits`` endpoint, and many other services (CI servers,
chat bridges, Gitea/Gogs-compatible receivers), take the JSON body GitHub sends for a ``push``
event. This sink sends that shape, one request per pushed ref with at most
``tracker.github.max_commits_per_request`` commits, more requests when a push is larger (a
request answered 413 is halved and sent again, and one refused for good costs only its own
commits: agent/batches.py):

* ``format: form`` (default; what GitHub's old Tracker service sent): the body is
  ``application/x-www-form-urlencoded`` with a single field ``payload=<the JSON>``.
* ``format: json``: the JSON itself, ``Content-Type: application/json``.

The token goes in the ``X-TrackerToken`` header, like the v3/v5 sinks. GitHub's old Tracker
service put it in a ``?token=`` query parameter instead; we never do, because URLs end up in
proxy and server logs. Each request also carries ``X-GitHub-Event: push`` and an
``X-GitHub-Delivery`` id derived from its content (a retry of the same request has the same id,
so a receiver that de-duplicates deliveries can).

What is real and what is synthesized (a self-hosted repository has no GitHub account behind it):

* real, from the hook and from git at send time: ``ref``, ``before``, ``after``, ``created``,
  ``deleted``, ``forced`` (``git merge-base --is-ancestor``), each commit's ``id``, ``tree_id``,
  ``message``, ``timestamp`` (author date, ISO 8601 with offset), ``author`` and ``committer``
  name/email, ``added``/``removed``/``modified`` (``git log --name-status`` against the first
  parent, renames as removed + added, as GitHub reports them), ``head_commit`` (the commit at
  ``after``), ``pusher`` (from the git server's environment, see ``model.pusher_from_env``; when
  it names nobody, e.g. no ``USER``, the account that owns the repository: the one git ran the
  hook as).
* ``commits`` holds only the commits hookagent queued, i.e. those that mention a story and are new
  to the repository (GitHub lists every pushed commit); ``distinct`` is therefore always true.
* synthesized: ``repository`` (``name`` from the folder, ``owner`` from the parent folder, ``id`` a
  stable CRC of the path, ``private: true``, ``url``/``html_url`` derived from the commit links
  (``repos[].url``, else the remote: links.py) when they end in ``/commit/<sha>``, else left out:
  never the repository's path on this server), ``compare`` (GitHub's ``/compare/a...b`` layout
  under ``html_url``, empty without one), ``base_ref: null``. No ``sender`` object and no
  ``username`` fields: there are no GitHub accounts to name. ``url`` of a commit is the
  ``repos[].url`` link, or empty without one.
* post-commit entries (no push): a one-commit push with ``before`` = the commit's first parent and
  the committer as pusher. Entries without recorded ref updates (older spools, backfill) are sent
  the same way, consecutive commits of one ref together.

If the repository cannot be read at send time (moved, deleted), the commit is still sent, from
what the spool holds: no ``tree_id``, the author as committer, empty file lists.
"""
from __future__ import annotations

import json
import logging
import os
import pwd
import uuid
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import urlencode

from hookagent.errors import VcsError
from hookagent.model import Commit
from hookagent.sinks import GITHUB_FORMATS
from hookagent.sinks.http import HttpSink
from hookagent.vcs import git as vgit
from hookagent.vcs.git import is_null as _null
from hookagent.xmltext import clean_text

log = logging.getLogger("hookagent.sinks.github_push")

PATH = "/services/v3/github_commits"
BODY_BUDGET = 4 * 1024 * 1024   # start another request before the messages of one pass this
_DELIVERY_NS = uuid.UUID("5b0f1d8e-7c55-4d0a-9a53-3c1f0e6c2b7a")
# git log record: \x01 then these fields, NUL-separated, then --name-status pairs.
_LOG_FIELDS = ("sha", "tree", "parents", "cname", "cemail", "cdate", "aname", "aemail", "adate", "message")
_LOG_FORMAT = "%x01" + "%x00".join(["%H", "%T", "%P", "%cn", "%ce", "%cI", "%an", "%ae", "%aI", "%B"])


class GithubPushSink(HttpSink):
    name = "github-push"
    path = PATH
    accept = "application/json, */*;q=0.5"

    def __init__(self, base_url: str, token: str, *, format: str = "form", max_commits: int = 100,
                 **kw: Any) -> None:
        if format not in GITHUB_FORMATS:
            raise ValueError(f"tracker.github.format: {format!r} is not one of {', '.join(GITHUB_FORMATS)}")
        if not (isinstance(max_commits, int) and max_commits >= 1):
            raise ValueError(f"tracker.github.max_commits_per_request: expected 1 or more, got {max_commits!r}")
        super().__init__(base_url, token, **kw)
        self.format = format
        self.max_commits = max_commits
        self.content_type = ("application/x-www-form-urlencoded" if format == "form"
                             else "application/json")
        self._repo_cache: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ the agent's interface
    def batches(self, entry: dict, commits: list[Commit]) -> Iterator[list[Commit]]:
        """The commits of one request each: same ref (same push), at most max_commits and about
        BODY_BUDGET bytes of messages (a few 1 MB messages must not make one huge body), in order."""
        group: list[Commit] = []
        key = None
        size = 0
        for commit in commits:
            k = (commit.repo, _ref_of(commit))
            weight = len(commit.message) + 512
            if group and (k != key or len(group) >= self.max_commits or size + weight > BODY_BUDGET):
                yield group
                group, size = [], 0
            key = k
            size += weight
            group.append(commit)
        if group:
            yield group

    def send_batch(self, entry: dict, batch: list[Commit]) -> None:
        payload = self.payload(entry, batch)
        self.post(self.encode(payload), {"X-GitHub-Event": "push",
                                         "X-GitHub-Delivery": delivery_id(payload)})

    def render_batch(self, entry: dict, batch: list[Commit]) -> bytes:
        return self.encode(self.payload(entry, batch))

    # the one-commit Sink interface (a post-commit style push)
    def render(self, commit: Commit) -> bytes:
        return self.render_batch({}, [commit])

    def send(self, commit: Commit) -> None:
        self.send_batch({}, [commit])

    # ------------------------------------------------------------------ the payload
    def encode(self, payload: dict[str, Any]) -> bytes:
        text = json.dumps(payload, ensure_ascii=False)
        if self.format == "json":
            return text.encode("utf-8")
        return urlencode({"payload": text}, encoding="utf-8").encode("ascii")

    def payload(self, entry: dict, batch: list[Commit]) -> dict[str, Any]:
        """The push event for ``batch`` (commits of one ref, oldest first)."""
        first, last = batch[0], batch[-1]
        repo, ref = first.repo, _ref_of(first)
        update = _update_for(entry, ref)
        git_ok = first.vcs == "git" and bool(repo) and os.path.isdir(repo)
        wanted = [c.commit_id for c in batch]
        if update is not None and not _null(update["after"]):
            wanted.append(update["after"])
        facts = read_commits(repo, wanted) if git_ok else {}
        if update is not None:
            before, after = update["before"], update["after"]
            forced = (git_ok and not _null(before) and not _null(after)
                      and vgit.is_ancestor(repo, before, after) is False)
        else:  # no push recorded: a push of exactly these commits onto the first one's parent
            parents = (facts.get(first.commit_id) or {}).get("parents") or []
            root = "0" * (len(first.commit_id) if len(first.commit_id) in (40, 64) else 40)
            before, after, forced = (parents[0] if parents else root), last.commit_id, False
        info = self._repository(repo, batch, entry, git_ok)
        commits = [_commit_json(c, facts.get(c.commit_id)) for c in batch]
        head = next((c for c, cm in zip(commits, batch) if cm.commit_id == after), None)
        if head is None and after in facts:
            head = _commit_json(_commit_from_facts(facts[after], _url_for(batch, after), repo), facts[after])
        if head is None and update is None:
            head = commits[-1]
        pusher = entry.get("pusher") or {}
        if pusher.get("name"):
            who = {"name": pusher["name"], "email": pusher.get("email") or None}
        elif update is None:   # post-commit: whoever committed "pushed" it into this repository
            head_json = head or commits[-1]
            who = {"name": head_json["committer"]["name"], "email": head_json["committer"]["email"]}
        else:   # the environment named nobody (no USER): the account the hook ran as
            who = {"name": self._owner(repo), "email": None}
        return {
            "ref": ref,
            "before": before,
            "after": after,
            "created": _null(before),
            "deleted": _null(after),
            "forced": bool(forced),
            "base_ref": None,
            "compare": _compare(info.get("html_url") or "", ref, before, after),
            "commits": commits,
            "head_commit": head,
            "repository": info,
            "pusher": who,
        }

    def _repository(self, repo: str, batch: list[Commit], entry: dict, git_ok: bool) -> dict[str, Any]:
        cached = self._repo_cache.get(repo)
        if cached is None:
            path = Path(repo) if repo else Path("unknown")
            name = path.name[:-4] if path.name.endswith(".git") else path.name
            if name == ".git" or not name:   # a work tree's .git folder: name the work tree
                name = path.parent.name or "repository"
            owner = (path.parent.parent if path.name == ".git" else path.parent).name or "local"
            branch = vgit.current_branch(repo) if git_ok else None
            cached = {"id": zlib.crc32(str(path).encode("utf-8", "surrogateescape")) & 0x7FFFFFFF,
                      "name": name, "full_name": f"{owner}/{name}",
                      "owner": {"name": owner, "email": None},
                      "private": True, "fork": False, "description": None,
                      "default_branch": branch or "main", "master_branch": branch or "main"}
            self._repo_cache[repo] = cached
        html = _html_url(batch)
        out = dict(cached)
        if html:   # never the repository's path on this server: no address, no url
            out["url"] = out["html_url"] = html
        out["pushed_at"] = int(entry.get("created") or 0) or None
        if out["pushed_at"] is None:
            del out["pushed_at"]
        return out


    def _owner(self, repo: str) -> str:
        """The account that owns the repository: the one git runs its hooks as there (git
        refuses a repository of another owner unless safe.directory says otherwise), named
        when the push's environment names nobody. ``unknown`` when that cannot be read."""
        try:
            uid = os.stat(repo).st_uid if repo else None
        except OSError:
            uid = None
        if uid is None:
            return "unknown"
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return f"uid {uid}"


def delivery_id(payload: dict[str, Any]) -> str:
    """A GUID that is the same for the same request (ref, before, after and commit ids)."""
    key = " ".join([payload["ref"], payload["before"], payload["after"],
                    *(c["id"] for c in payload["commits"])])
    return str(uuid.uuid5(_DELIVERY_NS, key))


# ---------------------------------------------------------------------- payload pieces
def _ref_of(commit: Commit) -> str:
    if commit.ref:
        return commit.ref
    if commit.branch:
        return f"refs/heads/{commit.branch}"
    return "HEAD"   # a detached HEAD (post-commit) or an svn commit without a branch


def _update_for(entry: dict, ref: str) -> dict[str, str] | None:
    for u in entry.get("updates") or ():
        if isinstance(u, dict) and u.get("ref") == ref and u.get("before") and u.get("after"):
            return u
    return None


def _person(name: str, email: str) -> dict[str, Any]:
    return {"name": clean_text(name), "email": clean_text(email) or None}


def _commit_json(c: Commit, facts: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": c.commit_id}
    if facts:
        out["tree_id"] = facts["tree"]
    author = _person(c.author, c.email)
    committer = _person(facts["cname"], facts["cemail"]) if facts else dict(author)
    out.update({
        "distinct": True,
        "message": clean_text(c.message.rstrip("\n")),
        "timestamp": c.date or (facts or {}).get("adate") or "",
        "url": c.url or "",
        "author": author,
        "committer": committer,
        "added": list(facts["added"]) if facts else list(c.added),
        "removed": list(facts["removed"]) if facts else list(c.removed),
        "modified": list(facts["modified"]) if facts else list(c.modified),
    })
    return out


def _commit_from_facts(f: dict[str, Any], url: str | None, repo: str) -> Commit:
    return Commit(f["sha"], f["aname"], f["message"], email=f["aemail"], date=f["adate"], url=url,
                  repo=repo, vcs="git")


def _url_for(batch: list[Commit], sha: str) -> str | None:
    for c in batch:
        if c.url and c.commit_id in c.url:
            return c.url.replace(c.commit_id, sha)
    return None


def _html_url(batch: list[Commit]) -> str | None:
    """The repository's web address, when the commit links end in /commit/<sha> (GitHub, Gitea,
    Gogs, GitLab's /-/commit/, Bitbucket's /commits/)."""
    for c in batch:
        if not (c.url and c.commit_id and c.url.lower().startswith(("http://", "https://"))):
            continue
        head, sep, tail = c.url.partition(c.commit_id)
        if not sep or tail.strip("/"):
            continue
        head = head.rstrip("/")
        for suffix in ("/-/commit", "/commit", "/commits"):
            if head.endswith(suffix):
                return head[: -len(suffix)]
    return None


def _compare(html_url: str, ref: str, before: str, after: str) -> str:
    if not html_url.lower().startswith(("http://", "https://")):
        return ""
    if _null(before):   # like GitHub for a new ref: compare against the ref's name
        return f"{html_url}/compare/{ref.rsplit('/', 1)[-1]}"
    return f"{html_url}/compare/{before[:12]}...{after[:12]}"


# ---------------------------------------------------------------------- git, at send time
def read_commits(repo: str, shas: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Facts about each commit git still has: tree, parents, committer, author, message and the
    files it added/removed/modified against its first parent. Missing commits are left out."""
    shas = list(dict.fromkeys(s for s in shas if s and not _null(s)))
    if not shas:
        return {}
    found = _read_log(repo, shas)
    if found is None:   # some object is gone (gc after a force push?): one at a time
        found = {}
        for sha in shas:
            one = _read_log(repo, [sha])
            if one:
                found.update(one)
            else:
                log.warning("commit %s is not in %s any more; sending it without file lists", sha[:12], repo)
    return found


def _read_log(repo: str, shas: list[str]) -> dict[str, dict[str, Any]] | None:
    try:
        out = vgit.git(["-c", "core.quotePath=false", "log", "--no-walk=unsorted", "--stdin", "-z",
                        "--no-renames", "-m", "--first-parent", "--name-status", "--encoding=UTF-8",
                        f"--format={_LOG_FORMAT}"], repo, ("\n".join(shas) + "\n").encode("ascii", "replace"))
    except VcsError:   # a commit is gone, the repository moved, or no git
        return None
    return parse_log(out)


def parse_log(out: bytes) -> dict[str, dict[str, Any]]:
    tokens = out.split(b"\x00")
    found: dict[str, dict[str, Any]] = {}
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        if not tok.startswith(b"\x01"):
            i += 1
            continue
        values = [tok[1:], *tokens[i + 1:i + len(_LOG_FIELDS)]]
        i += len(_LOG_FIELDS)
        if len(values) < len(_LOG_FIELDS):
            break
        rec: dict[str, Any] = {k: v.decode("utf-8", "replace") for k, v in zip(_LOG_FIELDS, values)}
        rec["parents"] = rec["parents"].split()
        rec["added"], rec["removed"], rec["modified"] = [], [], []
        while i < n:   # name-status pairs until the next record
            status = tokens[i].strip(b"\n")
            if tokens[i].startswith(b"\x01"):
                break
            if not status:
                i += 1
                continue
            if i + 1 >= n:
                i += 1
                break
            path = os.fsdecode(tokens[i + 1])
            i += 2
            kind = {b"A": "added", b"D": "removed"}.get(status[:1], "modified")
            if path not in rec[kind]:
                rec[kind].append(path)
        found[rec["sha"]] = rec
    return found
