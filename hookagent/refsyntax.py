"""Which grammar of references a destination reads: Tracker's brackets, or Redmine's keywords.

``tracker.syntax`` chooses (config.py): ``tracker`` (the default for v3, v5, github-push and
stdout) is :mod:`hookagent.stories`, unchanged; ``redmine`` (the default for ``api: redmine``)
is Redmine's own commit syntax, as its changeset.rb scans a message::

    refs #123                 links issue 123
    fixes #123, #124          links both and asks for state "finished"
    Closes: #7 & #8 and refs #9

A *keyword* (``tracker.keywords``: ``refs`` Redmine's default ``refs, references, IssueID``;
``finished`` ``fixes, closes``; ``delivered`` none), any letter case, at the start of a line or
after a space, ``(``, ``[``, ``,`` or ``-``, then spaces or colons, then ids ``#N`` separated by
spaces, ``,``, ``;`` or ``&``, the last one followed by punctuation, a space, ``<`` or the end of
a line. An id list without a keyword is no reference (``Merge pull request #12``), unless the
``refs`` keywords hold ``*`` (Redmine's "any"). An id mentioned several times is reported once,
at its first place, with its strongest state (delivered > finished > none).

The grammar travels with the destination: the agent's ingest, backfill (its dry run, its
link-only rewriting), the Python hooks and the sh hook's quick test (hookfiles bakes ``SYNTAX``
into it: with ``redmine`` a ``#`` and a digit anywhere let a commit through; the agent decides).
"""
from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Protocol

from hookagent import stories
from hookagent.model import DELIVERED, FINISHED, StoryRef

SYNTAXES = ("tracker", "redmine")
REDMINE_REFS = ("refs", "references", "IssueID")
REDMINE_FINISHED = ("fixes", "closes")
_RANK = {None: 0, FINISHED: 1, DELIVERED: 2}


class Syntax(Protocol):
    name: str
    example: str   # how link-only mode rewrites a message, for backfill's dry run

    def has_refs(self, message: str) -> bool: ...

    def parse(self, message: str) -> list[StoryRef]: ...

    def neutralise(self, message: str) -> str: ...

    def may_reference(self, raw: bytes) -> bool: ...

    def keep_only(self, message: str, ids: set[int]) -> str: ...


class TrackerSyntax:
    """Pivotal Tracker's bracket groups: :mod:`hookagent.stories`, looked up at each call."""

    name = "tracker"
    example = "[fixes #12] goes as [#12] (fixes)"

    def has_refs(self, message: str) -> bool:
        return stories.has_refs(message)

    def parse(self, message: str) -> list[StoryRef]:
        return stories.parse(message)

    def neutralise(self, message: str) -> str:
        return stories.neutralise(message)

    def may_reference(self, raw: bytes) -> bool:
        from hookagent.hook.run import may_reference
        return may_reference(raw)

    def keep_only(self, message: str, ids: set[int]) -> str:
        return stories.keep_only(message, ids)


class RedmineSyntax:
    """Redmine's keyword syntax (see the module docstring)."""

    name = "redmine"

    def __init__(self, refs: Sequence[str] = REDMINE_REFS, finished: Sequence[str] = REDMINE_FINISHED,
                 delivered: Sequence[str] = ()) -> None:
        self.any = "*" in refs
        self.refs = tuple(k for k in refs if k != "*")
        self.states: dict[str, str | None] = {k.lower(): None for k in self.refs}
        self.states.update({k.lower(): FINISHED for k in finished})
        self.states.update({k.lower(): DELIVERED for k in delivered})
        words = sorted(self.states, key=len, reverse=True)
        kw = "|".join(re.escape(w) for w in words) or r"(?!)"
        punct = re.escape(string.punctuation)
        self._ref = re.compile(
            rf"(?:^|(?<=[\s(\[,\-]))(?:({kw})[\s:]+)?(#[0-9]{{1,18}}(?:[\s,;&]+#[0-9]{{1,18}})*)(?=[{punct}]|\s|<|$)",
            re.IGNORECASE | re.MULTILINE)
        self._ids = re.compile(r"#([0-9]+)")
        first = self.refs[0] if self.refs else ""
        self._link = first
        self.example = f"fixes #12 goes as {first + ' ' if first else ''}#12 (fixes)"

    def _groups(self, message: str):
        for match in self._ref.finditer(message):
            keyword = match.group(1)
            if keyword is None and not self.any:
                continue
            yield match, keyword

    def has_refs(self, message: str) -> bool:
        return "#" in message and next(self._groups(message), None) is not None

    def parse(self, message: str) -> list[StoryRef]:
        if "#" not in message:
            return []
        found: dict[int, str | None] = {}
        for match, keyword in self._groups(message):
            state = self.states.get(keyword.lower()) if keyword else None
            for digits in self._ids.findall(match.group(2)):
                sid = int(digits)
                if sid not in found or _RANK[state] > _RANK[found[sid]]:
                    found[sid] = state
        return [StoryRef(sid, state) for sid, state in found.items()]

    def neutralise(self, message: str) -> str:
        """Every state keyword replaced by the first reference keyword, and written after the
        ids in parentheses: ``fixes #12, #13 x`` -> ``refs #12, #13 (fixes) x``. Idempotent."""
        if "#" not in message:
            return message

        def one(match: re.Match[str]) -> str:
            keyword = match.group(1)
            if keyword is None or self.states.get(keyword.lower()) is None:
                return match.group()
            ids = match.group(2)
            link = f"{self._link} " if self._link else ""
            return f"{link}{ids} ({keyword})"

        return self._ref.sub(one, message)

    def keep_only(self, message: str, ids: set[int]) -> str:
        """``message`` referencing only ``ids`` (svn log edits): other ids leave each keyword's
        list; a list left empty loses its ``#`` signs (``fixes #1`` -> ``fixes 1``): inert."""
        if "#" not in message:
            return message

        def one(match: re.Match[str]) -> str:
            keyword = match.group(1)
            if keyword is None and not self.any:
                return match.group()
            kept = [d for d in self._ids.findall(match.group(2)) if int(d) in ids]
            if not kept:
                return match.group().replace("#", "")    # inert: no ids left to join another list
            return match.group()[: match.start(2) - match.start()] + ", ".join(f"#{d}" for d in kept)

        return self._ref.sub(one, message)

    def may_reference(self, raw: bytes) -> bool:
        """The sh hook's quick test for this syntax: a ``#`` then a digit anywhere."""
        return re.search(rb"#[0-9]", raw) is not None


def syntax_for(tracker) -> Syntax:
    """The grammar of a destination (a config.Tracker)."""
    if getattr(tracker, "syntax", "tracker") == "redmine":
        kw = tracker.keywords
        return RedmineSyntax(kw.refs, kw.finished, kw.delivered)
    return TrackerSyntax()
