"""JSON encoding for the hook path, without importing :mod:`json`.

``import json`` pulls in ``re`` and ``enum``: about 9 ms, a third of what the post-commit hook
costs in all. Strings are escaped by CPython's own C escaper (``_json.encode_basestring_ascii``,
the function ``json.dumps`` uses), so the output is exactly what ``json.dumps(obj,
separators=(",", ":"))`` prints (ASCII-only: non-ASCII characters and lone surrogates become
``\\uXXXX`` escapes, so any str can be written). Where ``_json`` is missing (not CPython) this
simply calls ``json.dumps``. Reading stays with :mod:`json` (the agent side).
"""
from __future__ import annotations

try:
    from _json import encode_basestring_ascii as _string
except ImportError:  # pragma: no cover - other interpreters
    _string = None


def dumps(obj: object) -> str:
    """Compact JSON for ``obj`` made of dict (str keys), list, tuple, str, int, float, bool, None."""
    if _string is None or _large(obj):
        # Big values (a push's batch of commits): json's C encoder outruns this module by far
        # more than its ~9 ms import.
        import json
        return json.dumps(obj, separators=(",", ":"))
    out: list[str] = []
    _encode(obj, out.append)
    return "".join(out)


LARGE = 32
"""A dict holding a list longer than this is written by json itself."""


def _large(obj: object) -> bool:
    return isinstance(obj, dict) and any(isinstance(v, list) and len(v) > LARGE for v in obj.values())


def _encode(obj: object, w) -> None:
    if obj is None:
        w("null")
    elif obj is True:
        w("true")
    elif obj is False:
        w("false")
    elif isinstance(obj, str):
        w(_string(obj))
    elif isinstance(obj, int):
        w(int.__repr__(obj))
    elif isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise ValueError(f"JSON cannot hold {obj!r}")
        w(float.__repr__(obj))
    elif isinstance(obj, (list, tuple)):
        w("[")
        for i, item in enumerate(obj):
            if i:
                w(",")
            _encode(item, w)
        w("]")
    elif isinstance(obj, dict):
        w("{")
        for i, (key, value) in enumerate(obj.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, not {type(key).__name__}")
            if i:
                w(",")
            w(_string(key))
            w(":")
            _encode(value, w)
        w("}")
    else:
        raise TypeError(f"cannot write {type(obj).__name__} as JSON")
