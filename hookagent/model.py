"""The domain objects shared by hooks, spool, agent and sinks.

Plain classes with ``__slots__``: a push or a backfill holds thousands of them.
"""
from __future__ import annotations

FINISHED = "finished"
DELIVERED = "delivered"


class StoryRef:
    """One story mentioned by a commit: its id and the state the message asks for (or None)."""

    __slots__ = ("id", "state")

    def __init__(self, id: int, state: str | None = None) -> None:
        self.id = id
        self.state = state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoryRef) and (self.id, self.state) == (other.id, other.state)

    def __hash__(self) -> int:
        return hash((self.id, self.state))

    def __repr__(self) -> str:
        return f"StoryRef({self.id}, {self.state!r})"

    def to_dict(self) -> dict:
        return {"id": self.id, "state": self.state}


class Commit:
    """One commit, whatever produced it (git post-commit, post-receive, svn, backfill).

    commit_id: what the tracker is told (git sha, svn revision or uuid@rev).
    ident:     what makes it unique for the ledger (git sha; ``svn:<uuid>@<rev>``).
    date:      ISO 8601 with offset.  url: link to the commit, or None.
    repo:      absolute path of the repository it came from.  branch: when known.
    ref:       the full ref a push moved to reach it (post-receive), else None.
    email, added, removed, modified: for push-style payloads; may be empty.
    replaces:  the commits git said this one replaces (post-rewrite after a rebase), for changes.py.
    change:    its change key once changes.py claimed its stories (then sent only to those it owns).
    """

    __slots__ = ("commit_id", "ident", "author", "email", "date", "message", "url", "repo",
                 "branch", "vcs", "added", "removed", "modified", "ref", "replaces", "change")

    def __init__(self, commit_id: str, author: str, message: str, *, ident: str | None = None,
                 email: str = "", date: str = "", url: str | None = None, repo: str = "",
                 branch: str | None = None, vcs: str = "git", added: list[str] | None = None,
                 removed: list[str] | None = None, modified: list[str] | None = None,
                 ref: str | None = None, replaces: list[str] | None = None,
                 change: str | None = None) -> None:
        self.commit_id = commit_id
        self.ident = ident or commit_id
        self.author = author
        self.email = email
        self.date = date
        self.message = message
        self.url = url
        self.repo = repo
        self.branch = branch
        self.vcs = vcs
        self.added = added or []
        self.removed = removed or []
        self.modified = modified or []
        self.ref = ref
        self.replaces = replaces or []
        self.change = change

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_dict(cls, d: dict) -> "Commit":
        known = {k: d[k] for k in cls.__slots__ if k in d}
        return cls(known.pop("commit_id"), known.pop("author"), known.pop("message"), **known)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Commit) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Commit({self.commit_id!r}, author={self.author!r})"


# Who pushed, from what the git server put in the hook's environment, most specific first:
# Gitea, Gogs, GitLab (GL_USERNAME), gitolite (GL_USER), git-http-backend (REMOTE_USER), then the
# system account running the hook (ssh or local pushes).
_PUSHER_ENV = (("GITEA_PUSHER_NAME", "GITEA_PUSHER_EMAIL"), ("GOGS_AUTH_USER_NAME", "GOGS_AUTH_USER_EMAIL"),
               ("GL_USERNAME", None), ("GL_USER", None), ("REMOTE_USER", None), ("USER", None),
               ("LOGNAME", None))


def pusher_from_env(environ) -> dict:
    """``{"name": ..., "email": ... or None}`` for a push entry (spool envelope field ``pusher``)."""
    for name_key, email_key in _PUSHER_ENV:
        name = environ.get(name_key)
        if name:
            return {"name": name, "email": (environ.get(email_key) or None) if email_key else None,
                    "source": name_key}
    return {"name": "", "email": None, "source": None}
