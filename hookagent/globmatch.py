"""Shell-style pattern matching without ``re``, for the hook path.

``fnmatch`` translates patterns to regular expressions, and ``import re`` costs each hook run
about 5 ms. :func:`match` gives the same answers as ``fnmatch.fnmatchcase`` (``*`` matches any
run of characters, ``/`` included; ``?`` one character; ``[seq]``, ``[!seq]`` and ranges like
``[a-z]`` one character of a set; a ``[`` without its ``]`` is literal), which
tests/test_fastpaths.py checks against fnmatch on generated cases. One deliberate difference: an
empty range such as ``[z-a]`` matches nothing here, where fnmatch's rewriting of it can turn the
rest of the set into a negation.
"""
from __future__ import annotations


def _char_class(pattern: str, i: int) -> tuple[list[tuple[str, str]], bool, int] | None:
    """Parse ``[...]`` at ``pattern[i]``: (ranges, negated, index after ``]``), or None if unclosed."""
    j = i + 1
    negated = False
    if j < len(pattern) and pattern[j] == "!":
        negated = True
        j += 1
    ranges: list[tuple[str, str]] = []
    first = True
    while j < len(pattern):
        c = pattern[j]
        if c == "]" and not first:
            return ranges, negated, j + 1
        first = False
        if j + 2 < len(pattern) and pattern[j + 1] == "-" and pattern[j + 2] != "]":
            ranges.append((c, pattern[j + 2]))
            j += 3
        else:
            ranges.append((c, c))
            j += 1
    return None


def match(name: str, pattern: str) -> bool:
    """True when ``name`` matches the shell pattern ``pattern`` (case-sensitive)."""
    if not any(c in pattern for c in "*?["):
        return name == pattern
    n, p = 0, 0
    star_p, star_n = -1, -1
    while n < len(name):
        if p < len(pattern):
            c = pattern[p]
            if c == "*":
                star_p, star_n = p, n
                p += 1
                continue
            if c == "?":
                n += 1
                p += 1
                continue
            if c == "[":
                cls = _char_class(pattern, p)
                if cls is not None:
                    ranges, negated, after = cls
                    ch = name[n]
                    hit = any(lo <= ch <= hi for lo, hi in ranges)
                    if hit != negated:
                        n += 1
                        p = after
                        continue
                elif name[n] == "[":
                    n += 1
                    p += 1
                    continue
            elif c == name[n]:
                n += 1
                p += 1
                continue
        if star_p >= 0:      # backtrack: let the last * swallow one more character
            star_n += 1
            n = star_n
            p = star_p + 1
            continue
        return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)
