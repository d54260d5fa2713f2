"""Story references in commit messages: Pivotal Tracker's square-bracket syntax, parsed.

The rules (what counts as a reference)
--------------------------------------
A *reference group* is a pair of square brackets whose content is made only of

* story ids: ``#`` followed directly by 1 to 18 ASCII digits (``#123456``; leading zeros are
  allowed, ``#0012`` is story 12; 19 digits or more is not an id, so the group does not count);
* state keywords, whole words, any letter case: ``fix fixes fixed complete completes completed
  finish finishes finished`` (state "finished") and ``deliver delivers delivered`` ("delivered");
* separators: spaces, tabs and commas, in any number (no newlines: a group is on one line),

with at least one id. Every id must be followed by a separator or the closing bracket (``#1#2``
and ``#12a`` are not ids); a keyword must be followed by a separator, ``#`` or the closing
bracket (``[fixes#12]`` counts, as it did for Tracker). Keywords may stand before, between or
after the ids, and apply to every id of their group; with both kinds in one group, "delivered"
wins. A group with no keyword only links its stories (state None).

Anything else inside the brackets makes the whole group *not* a reference: ``[WIP]``,
``[see #12 later]``, ``[prefixes #1]``, ``[Fixes: #12]``, ``[fixes # 12]``, ``[story #12]``.
This is the strict reading of Tracker's documented syntax (its own pattern was roughly
``\\[(keyword\\s*)?#\\d+([ ,]+#\\d+)*(\\s*keyword)?\\]``); we chose it because a wrong
"finished" is worse than a missed link, and the author can always write ``[#12]``. Text outside
brackets never counts (``Merge pull request #12``, ``fixes #12``). Text right after the bracket
does not matter: ``[#12](https://...)`` (a markdown link) is a reference. Every group in the
message counts; an id seen in several groups is reported once, at its first position, with the
strongest state it was given (delivered > finished > None).

Rewriting messages
------------------
``neutralise(message)`` (backfill's link-only mode) removes the keywords from every reference
group and writes them, as they were spelled, in parentheses right after the group, so the
stories are only linked and a reader still sees the intent::

    "[Fixes #12] Torpedoes"          -> "[#12] (Fixes) Torpedoes"
    "Shields [#1, delivers #2]"      -> "Shields [#1, #2] (delivers)"
    "Done [finished #3 #4 fixes]"    -> "Done [#3 #4] (finished fixes)"

Nothing else changes (groups without keywords, text outside groups). For every message m,
``parse(neutralise(m))`` has the same ids in the same order, all with state None, and
``neutralise`` is idempotent.

``keep_only(message, ids)`` (svn log edits) keeps, in every reference group, only the ids in
``ids``; a group left without ids is made inert by turning its brackets into parentheses
(``[fixes #1]`` -> ``(fixes #1)``), so only the kept stories are referenced, with their keywords.

This is the one grammar: the agent applies it to what the hooks recorded, post-receive and
backfill to what they read. The sh hook only asks a shell pattern whether a message may hold a
group at all (hook-tmpl); anything that pattern lets through is decided here.
"""
from __future__ import annotations

import re

from hookagent.model import DELIVERED, FINISHED, StoryRef

_SEP = r"[ \t,]"
_KW = r"(?:fix(?:e[sd])?|complete[sd]?|finish(?:e[sd])?|deliver(?:s|ed)?)(?=[ \t,#\]])"
_ID = r"#[0-9]{1,18}(?=[ \t,\]])"
# Optional keywords, then a first id, then any mix of ids and keywords; token starts are disjoint
# (letters, '#', separators), so matching is linear even on a megabyte of brackets.
_GROUP = re.compile(
    rf"\[{_SEP}*(?:{_KW}{_SEP}*)*{_ID}{_SEP}*(?:(?:{_KW}|{_ID}){_SEP}*)*\]",
    re.IGNORECASE | re.ASCII)
_IDS = re.compile(r"#([0-9]+)")
_KEYWORD = re.compile(rf"{_KW}{_SEP}*", re.IGNORECASE | re.ASCII)
_ID_TOKEN = re.compile(r"#([0-9]+)[ \t,]*")
_SEPARATORS = " \t,"

_RANK = {None: 0, FINISHED: 1, DELIVERED: 2}


def _state(inner: str) -> str | None:
    """The state a group asks for; ``inner`` holds only ids, separators and keywords."""
    lowered = inner.lower()
    if "deliver" in lowered:
        return DELIVERED
    for ch in lowered:
        if "a" <= ch <= "z":
            return FINISHED
    return None


def has_refs(message: str) -> bool:
    """True when ``message`` holds at least one reference group (cheap for messages without)."""
    return "[" in message and "#" in message and _GROUP.search(message) is not None


def parse(message: str) -> list[StoryRef]:
    """The stories ``message`` references, in order of first appearance, each once.

    An id referenced by several groups gets the strongest state among them.
    """
    if "[" not in message or "#" not in message:
        return []
    found: dict[int, str | None] = {}
    for match in _GROUP.finditer(message):
        group = match.group()
        state = _state(group)
        for digits in _IDS.findall(group):
            sid = int(digits)
            if sid not in found or _RANK[state] > _RANK[found[sid]]:
                found[sid] = state
    return [StoryRef(sid, state) for sid, state in found.items()]


def _neutralise_group(match: re.Match[str]) -> str:
    group = match.group()   # the keyword pattern needs the closing bracket to see a word's end
    words = [kw.rstrip(_SEPARATORS) for kw in _KEYWORD.findall(group)]
    if not words:
        return group
    ids = _KEYWORD.sub("", group)[1:-1].strip(_SEPARATORS)
    return f"[{ids}] ({' '.join(words)})"


def neutralise(message: str) -> str:
    """``message`` with every reference group's state keywords moved out of the brackets.

    See the module docstring: ``[fixes #12] x`` becomes ``[#12] (fixes) x``.
    """
    if "[" not in message or "#" not in message:
        return message
    return _GROUP.sub(_neutralise_group, message)


def keep_only(message: str, ids: set[int]) -> str:
    """``message`` referencing only the stories in ``ids`` (see the module docstring)."""
    if "[" not in message or "#" not in message:
        return message

    def one_group(match: re.Match[str]) -> str:
        inner = match.group()[1:-1]
        kept = _ID_TOKEN.sub(lambda m: m.group() if int(m.group(1)) in ids else "", inner)
        if not _IDS.search(kept):
            return f"({inner})"
        return f"[{kept.strip(_SEPARATORS)}]"

    return _GROUP.sub(one_group, message)
