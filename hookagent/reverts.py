"""Reverts never move a story: the configuration's ``reverts`` applied to a commit to be queued.

A *revert* is a commit whose message starts with ``Revert "`` (or ``Reapply "``, what git 2.43
and later write when a revert is itself reverted) and has a line ``This reverts commit <hex id>``
(``git revert`` writes ``This reverts commit <id>.``; for a merge, ``This reverts commit <id>,
reversing``). Its subject quotes the reverted commit's, keywords included: ``Revert "Risky change
[finishes #7777]"`` must not finish story 7777.

* ``reverts: link`` (the default): the revert is sent, its message with the state keywords moved
  out of the brackets (:func:`hookagent.stories.neutralise`, as backfill's link-only mode):
  ``Revert "Risky change [#7777] (finishes)"``. The stories get a comment, no state changes.
* ``reverts: ignore``: a revert is not sent at all.

:func:`apply` is the one place this happens: every path that turns commits into queue entries
calls it on each commit (the agent's ingest of post-commit, post-rewrite and svn records,
post-receive's ``queue_push``, svn log edits, and backfill, dry run included).
"""
from __future__ import annotations

import re
from collections.abc import Callable

from hookagent import stories
from hookagent.model import Commit

LINK = "link"
IGNORE = "ignore"
CHOICES = (LINK, IGNORE)

_SUBJECTS = ('Revert "', 'Reapply "')
_REVERTS_LINE = re.compile(r"^This reverts commit [0-9a-fA-F]{7,64}\b", re.MULTILINE)


def is_revert(message: str) -> bool:
    """True for a message ``git revert`` wrote (see the module docstring)."""
    return message.lstrip().startswith(_SUBJECTS) and _REVERTS_LINE.search(message) is not None


def apply(commit: Commit, policy: str, neutralise: Callable[[str], str] | None = None) -> Commit | None:
    """``commit`` as it is queued under ``policy`` (``reverts``): any other commit unchanged; a
    revert with its state keywords neutralised (LINK), or None (IGNORE: not queued).
    ``neutralise``: the destination's grammar's (refsyntax.py; Tracker's brackets by default)."""
    if not is_revert(commit.message):
        return commit
    if policy == IGNORE:
        return None
    commit.message = (neutralise or stories.neutralise)(commit.message)
    return commit
