"""Story references in commit messages: Pivotal Tracker's square-bracket syntax, parsed.

The rules (what counts as a reference)
--------------------------------------
A *bracket group* is ``[``, then text on one line holding no other bracket, then ``]``. A group
that holds at least one story id is a *reference group*:

* a story id is ``#`` followed directly by 1 to 18 ASCII digits that are not followed by another
  digit or a letter (``#123456``; leading zeros are allowed, ``#0012`` is story 12; ``#12a``,
  ``# 12``, 19 digits or more are no id). Every id of a reference group links its story;
* a state keyword is one of ``fix fixes fixed complete completes completed finish finishes
  finished`` (state "finished") and ``deliver delivers delivered`` ("delivered"), as a whole word
  (letters, digits and ``_`` on neither side; ``#finishes``, ``fixes:`` and ``fixes#12`` count,
  ``prefixes`` and ``fixess`` do not), in any letter case. A keyword anywhere in a reference group
  sets the state of every id of that group; with both kinds in one group, "delivered" wins;
* everything else in the group (other words, typos, punctuation) changes nothing: ``[for story
  #12]``, ``[finishes #12 again]``, ``[Closes #12]`` and ``[finsihes #12]`` (a typo) link story
  12, the last two without a state.

A group with no keyword only links its stories (state None). A nested group counts on its own
(``[see [#5]]``: the inner one); text outside groups never counts (``Merge pull request #12``,
``fixes #12``); text right after the bracket does not matter (``[#12](https://...)``, a markdown
link, is a reference). Every group in the message counts; an id seen in several groups is
reported once, at its first position, with the strongest state it was given (delivered >
finished > None). Tracker documents the strict forms (``[fixes #12]``, ``[#12 #13]``); people
write looser ones, and a link they meant is worth more than the rare stray one (``[see #12]``
links 12; keep an id out of brackets to keep it from linking).

Rewriting messages
------------------
``neutralise(message)`` (backfill's link-only mode, reverts) removes the keywords from every
reference group (with a ``#`` right before a keyword and a ``:`` right after it) and writes them,
as they were spelled, in parentheses right after the group, so the stories are only linked and a
reader still sees the intent::

    "[Fixes #12] Torpedoes"          -> "[#12] (Fixes) Torpedoes"
    "Shields [#1, delivers #2]"      -> "Shields [#1, #2] (delivers)"
    "Done [finished #3 #4 fixes]"    -> "Done [#3 #4] (finished fixes)"
    "[finishes #5 again]"            -> "[#5 again] (finishes)"

Nothing else changes (other words in a group, groups without keywords, text outside groups).
For every message m, ``parse(neutralise(m))`` has the same ids in the same order, all with state
None, and ``neutralise`` is idempotent.

``keep_only(message, ids)`` (svn log edits) keeps, in every reference group, only the ids in
``ids``; a group left without ids is made inert by turning its brackets into parentheses
(``[fixes #1]`` -> ``(fixes #1)``), and so is a bracket pair around it that would otherwise
become a group (``[a [#1]]`` -> ``(a (#1))``), so only the kept stories are referenced, with
their keywords.

This is the one grammar: the agent applies it to what the hooks recorded, post-receive and
backfill to what they read. The sh hook only asks a shell pattern whether a message may hold a
group at all (hook-tmpl: ``[``, then ``#`` and a digit, then ``]``: every reference group passes
it); anything that pattern lets through is decided here. Every function is linear in the
length of the message (a megabyte of brackets included).
"""
from __future__ import annotations

import re

from hookagent.model import DELIVERED, FINISHED, StoryRef

# A bracket group: no other bracket inside, on one line. An attempt from a `[` stops at the next
# bracket or line end, where the next attempt starts: linear on any input.
_GROUP = re.compile(r"\[[^\[\]\n\r]*\]")
# A story id; `[^\W_]` is a letter or a digit of any script.
_ID = re.compile(r"#([0-9]{1,18})(?![^\W_])")
_WORD = re.compile(r"\w+")
_STATES = {**dict.fromkeys(("fix", "fixes", "fixed", "complete", "completes", "completed", "finish",
                            "finishes", "finished"), FINISHED),
           **dict.fromkeys(("deliver", "delivers", "delivered"), DELIVERED)}
_SEPARATORS = " \t,"
_BRACKET_OR_EOL = re.compile(r"[\[\]\n\r]")

_RANK = {None: 0, FINISHED: 1, DELIVERED: 2}


def _keyword(word: str) -> str | None:
    """The state ``word`` (a maximal run of word characters) asks for, or None. ASCII only:
    ``str.lower`` maps no other letter onto a keyword's letters."""
    return _STATES.get(word.lower()) if word.isascii() else None


def _state(inner: str) -> str | None:
    """The state a group's text asks for: the strongest of its keywords."""
    state = None
    for word in _WORD.findall(inner):
        found = _keyword(word)
        if found == DELIVERED:
            return DELIVERED
        state = found or state
    return state


def has_refs(message: str) -> bool:
    """True when ``message`` holds at least one reference group (cheap for messages without)."""
    if "[" not in message or "#" not in message:
        return False
    search = _ID.search
    return any(search(m.group()) for m in _GROUP.finditer(message))


def parse(message: str) -> list[StoryRef]:
    """The stories ``message`` references, in order of first appearance, each once.

    An id referenced by several groups gets the strongest state among them.
    """
    if "[" not in message or "#" not in message:
        return []
    found: dict[int, str | None] = {}
    for match in _GROUP.finditer(message):
        group = match.group()
        ids = _ID.findall(group)
        if not ids:
            continue
        state = _state(group)
        for digits in ids:
            sid = int(digits)
            if sid not in found or _RANK[state] > _RANK[found[sid]]:
                found[sid] = state
    return [StoryRef(sid, state) for sid, state in found.items()]


def _neutralise_group(match: re.Match[str]) -> str:
    group = match.group()
    if not _ID.search(group):
        return group
    inner = group[1:-1]
    words: list[str] = []
    out: list[str] = []
    pos, last = 0, ""
    for m in _WORD.finditer(inner):
        if _keyword(m.group()) is None:
            continue
        start, end = m.span()
        if start and inner[start - 1] == "#" and (start == 1 or not _WORD.match(inner, start - 2, start - 1)):
            start -= 1            # `#finishes`: the `#` goes with the word
        if end < len(inner) and inner[end] == ":":
            end += 1              # `fixes:`
        while end < len(inner) and inner[end] in _SEPARATORS:
            end += 1
        words.append(m.group())
        if start > pos:
            out.append(inner[pos:start])
            last = inner[start - 1]
        pos = end
        # What is left before the word ends in a non-word character; a `#` there must not meet
        # the digits after the word (they would become an id).
        if last == "#" and inner[pos:pos + 1].isdigit():
            out.append(" ")
            last = " "
    if not words:
        return group
    out.append(inner[pos:])
    return f"[{''.join(out).strip(_SEPARATORS)}] ({' '.join(words)})"


def neutralise(message: str) -> str:
    """``message`` with every reference group's state keywords moved out of the brackets.

    See the module docstring: ``[fixes #12] x`` becomes ``[#12] (fixes) x``.
    """
    if "[" not in message or "#" not in message:
        return message
    return _GROUP.sub(_neutralise_group, message)


def _keep_ids(inner: str, ids: set[int]) -> str:
    """A reference group's text with the ids not in ``ids`` taken out (each with the separators
    after it); a space where the two sides would otherwise run together."""
    out: list[str] = []
    pos, last = 0, ""
    for m in _ID.finditer(inner):
        if int(m.group(1)) in ids:
            continue
        start, end = m.span()
        while end < len(inner) and inner[end] in _SEPARATORS:
            end += 1
        if start > pos:
            out.append(inner[pos:start])
            last = inner[start - 1]
        pos = end
        if last and last not in _SEPARATORS and pos < len(inner) and inner[pos] not in _SEPARATORS:
            out.append(" ")
            last = " "
    out.append(inner[pos:])
    return "".join(out).strip(_SEPARATORS)


class _Pair:
    """An open bracket while keep_only reads a line."""

    __slots__ = ("at", "src", "pairs", "kept", "has_id")

    def __init__(self, at: int, src: int) -> None:
        self.at, self.src = at, src      # its index in the output pieces; in the message
        self.pairs = 0                   # bracket pairs closed inside it
        self.kept = 0                    # of those, pairs that kept their brackets
        self.has_id = False              # an id anywhere inside


def keep_only(message: str, ids: set[int]) -> str:
    """``message`` referencing only the stories in ``ids`` (see the module docstring)."""
    if "[" not in message or "#" not in message:
        return message
    out: list[str] = []
    open_: list[_Pair] = []
    pos = 0
    for m in _BRACKET_OR_EOL.finditer(message):
        i, ch = m.start(), m.group()
        text = message[pos:i]
        out.append(text)
        pos = i + 1
        if open_ and not open_[-1].has_id and "#" in text and _ID.search(text):
            open_[-1].has_id = True
        if ch == "[":
            open_.append(_Pair(len(out), i))
            out.append("[")
            continue
        if ch != "]":
            open_.clear()       # a line end: brackets still open there stay as they are
            out.append(ch)
            continue
        if not open_:
            out.append("]")
            continue
        pair = open_.pop()
        brackets = True
        if pair.has_id:
            if not pair.pairs:      # a reference group
                kept = _keep_ids(message[pair.src + 1:i], ids)
                brackets = _ID.search(kept) is not None
                if brackets:
                    out[pair.at + 1] = kept
            else:                   # a group once the pairs inside lose their brackets
                brackets = pair.kept > 0
        if brackets:
            out.append("]")
        else:
            out[pair.at] = "("
            out.append(")")
        if open_:
            outer = open_[-1]
            outer.pairs += 1
            outer.kept += brackets
            outer.has_id = outer.has_id or pair.has_id
    out.append(message[pos:])
    return "".join(out)


_MERGE_LOG = re.compile(r"^\* [^\n]*:\n(?:  [^\n]*(?:\n|$))+", re.MULTILINE)


def merge_log_inert(message: str) -> str:
    """A merge commit's message with the summary ``merge.log`` adds made inert: git lists the
    merged commits' subjects (``* side9:`` then indented lines), whose stories heard of those
    commits where they were made; their brackets become parentheses, so only what the merge's
    own message says references a story."""
    if "[" not in message or "\n* " not in message:
        return message
    return _MERGE_LOG.sub(lambda m: m.group().replace("[", "(").replace("]", ")"), message)
