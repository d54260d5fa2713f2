"""Commit links from ``repos[].url`` templates. On the hook path: stdlib only, no ``re``."""
from __future__ import annotations

import os

from hookagent.globmatch import match


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
    return None
