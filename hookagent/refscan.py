"""Does a message reference a story at all? The hook path's question, answered without ``re``.

``import re`` costs the post-commit hook about 6 ms (it pulls in ``enum``); this scanner answers
``refs.has_refs`` by hand, for exactly the grammar ``refs._GROUP`` matches (see refs.py): inside
one pair of square brackets, only separators (space, tab, comma), story ids (``#`` and 1 to 18
ASCII digits, followed by a separator or ``]``) and state keywords (whole ASCII words, any case,
followed by a separator, ``#`` or ``]``), with at least one id. tests/test_refscan.py checks it
against ``refs.parse`` on every table message and on generated ones.
"""
from __future__ import annotations

KEYWORDS = frozenset(("fix", "fixes", "fixed", "complete", "completes", "completed",
                      "finish", "finishes", "finished", "deliver", "delivers", "delivered"))
_SEP = " \t,"
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")


def _group_at(text: str, start: int) -> bool:
    """True when a reference group opens at ``text[start] == "["``."""
    n = len(text)
    j = start + 1
    seen_id = False
    while j < n:
        c = text[j]
        if c == "]":
            return seen_id
        if c in _SEP:
            j += 1
        elif c == "#":
            k = j + 1
            while k < n and text[k] in _DIGITS:
                k += 1
            if not 1 <= k - j - 1 <= 18 or k >= n or text[k] not in " \t,]":
                return False
            seen_id = True
            j = k
        else:
            k = j
            while k < n and text[k] in _LETTERS:
                k += 1
            if k == j or k >= n or text[k] not in " \t,#]" or text[j:k].lower() not in KEYWORDS:
                return False
            j = k
    return False


def has_refs(message: str) -> bool:
    """True when ``message`` holds at least one reference group."""
    if "#" not in message:
        return False
    i = message.find("[")
    while i != -1:
        if _group_at(message, i):
            return True
        i = message.find("[", i + 1)
    return False
