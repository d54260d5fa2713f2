"""Text that survives XML 1.0 and UTF-8: remove what neither can carry.

XML 1.0 allows only ``#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]``.
Everything else (C0 controls but tab/newline/carriage return, U+FFFE, U+FFFF) is removed, and
so are surrogate code points: in a Python ``str`` a surrogate is always a lone half (for example
from ``surrogateescape`` decoding of bad bytes) and cannot be encoded as UTF-8 at all.
Characters that XML merely needs escaped (``& < > " '``, ``]]>``) are left alone: the XML and
JSON libraries escape them.
"""
from __future__ import annotations

import re

_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NEWLINES = re.compile("\r\n?")


def clean_text(text: str | None) -> str:
    """``text`` without the characters XML 1.0 forbids and UTF-8 cannot encode (None -> "")."""
    if not text:
        return ""
    return _ILLEGAL.sub("", text)


def xml_text(text: str | None) -> str:
    """:func:`clean_text`, with line ends made ``\\n``.

    An XML parser turns every ``\\r\\n`` and lone ``\\r`` of element text into ``\\n``
    (XML 1.0 section 2.11), and ElementTree cannot write ``&#13;`` in text; normalising here
    makes the body we send say exactly what the tracker will read.
    """
    return _NEWLINES.sub("\n", clean_text(text))
