"""Commit links: ``repos[].url`` templates, else derived from a git repository's remote.

Derivation, only where the web address is unambiguous: the remote ``origin`` (or the only
remote) of the repository, when its host is GitHub, GitLab, Bitbucket, Gitea/Forgejo (Codeberg)
or cgit, known by name (github.com, gitlab.com, bitbucket.org, codeberg.org, gitea.com) or by a
host name that says it (``gitlab.example.com``, ``gitea.``, ``forgejo.``, ``cgit.``). Credentials
in the remote URL are never copied into a link. Anything else gives no link: a wrong link is
worse than none. On the hook path: stdlib only, no ``re`` or ``configparser``.
"""
from __future__ import annotations

import os

from fnmatch import fnmatchcase as match


def repo_name(repo_path: str) -> str:
    base = os.path.basename(repo_path.rstrip("/"))
    return base[:-4] if base.endswith(".git") else base


def commit_url(rules: list[dict], repo_path: str, commit_id: str, branch: str | None = None,
               revision: str | None = None) -> str | None:
    """The first rule whose ``path`` glob matches the repository renders the link; else None.

    Template fields: {repo} (folder name without .git), {commit_id}, {branch}, {revision}.
    """
    for rule in rules:
        pattern = rule.get("path") or ""
        template = rule.get("url")
        if not template:
            continue
        if match(repo_path.rstrip("/"), pattern.rstrip("/")):
            fields = {"repo": repo_name(repo_path), "commit_id": commit_id, "branch": branch or "",
                      "revision": revision or commit_id}
            try:
                return template.format(**fields)
            except (KeyError, IndexError, ValueError):
                return None
    if revision is not None:
        return None   # svn: no remote to derive from
    base = _derived.get(repo_path)
    if base is None:
        base = _derived[repo_path] = derive_template(remote_url(repo_path) or "") or ""
    return base.replace("{commit_id}", commit_id) if base else None


_derived: dict[str, str] = {}


# ---------------------------------------------------------------------- derivation
KINDS = {
    "github": "https://{host}/{path}/commit/{commit_id}",
    "gitlab": "https://{host}/{path}/-/commit/{commit_id}",
    "bitbucket": "https://{host}/{path}/commits/{commit_id}",
    "gitea": "https://{host}/{path}/commit/{commit_id}",
    "cgit": "https://{host}/{path}.git/commit/?id={commit_id}",
}
KNOWN_HOSTS = {"github.com": "github", "gitlab.com": "gitlab", "bitbucket.org": "bitbucket",
               "codeberg.org": "gitea", "gitea.com": "gitea"}


def _kind(host: str) -> str | None:
    if host in KNOWN_HOSTS:
        return KNOWN_HOSTS[host]
    labels = host.split(".")
    for kind, words in (("gitlab", ("gitlab",)), ("gitea", ("gitea", "forgejo")), ("cgit", ("cgit",)),
                        ("github", ("github",))):
        if any(label in words for label in labels[:-1]):
            return kind
    return None


def split_remote(url: str) -> tuple[str, str, str] | None:
    """(scheme, host, path) of a git remote URL, credentials and port of ssh dropped; or None."""
    url = url.strip()
    if "://" in url:
        scheme, _, rest = url.partition("://")
        hostport, _, path = rest.partition("/")
        hostport = hostport.rpartition("@")[2]        # drop user[:password]@
        host = hostport
        if scheme.lower() not in ("http", "https"):
            host = hostport.partition(":")[0]          # ssh/git ports are not web ports
        scheme = scheme.lower()
    elif ":" in url and "/" not in url.partition(":")[0]:   # scp-like: [user@]host:path
        hostpart, _, path = url.partition(":")
        scheme, host = "ssh", hostpart.rpartition("@")[2]
    else:
        return None                                    # a local path
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    host = host.lower()
    if not host or not path or any(c in path for c in " ?#"):
        return None
    return scheme, host, path


def derive_template(remote: str) -> str | None:
    """A link template with ``{commit_id}`` for a remote URL, or None when not unambiguous."""
    parts = split_remote(remote)
    if parts is None:
        return None
    scheme, host, path = parts
    kind = _kind(host.partition(":")[0])
    if kind is None:
        return None
    if kind == "cgit" and scheme in ("http", "https"):
        # cgit serves clones under the same path as the web pages, or under a /git/ prefix
        path = path[4:] if path.startswith("git/") else path
    elif kind in ("github", "bitbucket") and path.count("/") != 1:
        return None                                    # owner/repo only
    web_host = host if scheme in ("http", "https") else host.partition(":")[0]
    template = KINDS[kind].replace("{host}", web_host).replace("{path}", path)
    if scheme == "http":
        template = "http://" + template[len("https://"):]
    return template


def remote_url(repo_path: str) -> str | None:
    """The URL of ``origin``, else of the only remote, from the repository's config file."""
    config = _config_file(repo_path)
    if config is None:
        return None
    try:
        with open(config, encoding="utf-8", errors="replace") as fh:
            text = fh.read(1 << 20)
    except OSError:
        return None
    remotes: dict[str, str] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            head = line[1:line.find("]")] if "]" in line else ""
            kind, _, sub = head.partition(" ")
            section = sub.strip().strip('"') if kind.strip().lower() == "remote" and sub else None
            continue
        if section is not None:
            key, eq, value = line.partition("=")
            if eq and key.strip().lower() == "url" and section not in remotes:
                remotes[section] = value.strip().strip('"')
    if "origin" in remotes:
        return remotes["origin"]
    return next(iter(remotes.values())) if len(remotes) == 1 else None


def _config_file(repo_path: str) -> str | None:
    """The config of a work tree (``.git`` folder or file, linked worktrees included) or of a
    bare repository: the one in its common dir."""
    from hookagent.vcs.git import git_dirs
    dirs = git_dirs(repo_path)
    if dirs is None:
        return None
    path = os.path.join(dirs[1], "config")
    return path if os.path.isfile(path) else None
