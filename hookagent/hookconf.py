"""The hook's view of the configuration, without importing yaml on every commit.

The hook needs a handful of settings (spool_dir, destination, url templates, autostart). Parsing
YAML costs more than the rest of the hook together, so the full loader runs only when the config
file changed: its result is cached as JSON in the user's cache directory, keyed by the config's
real path and validated by its (inode, size, mtime). A missing or unwritable cache only costs time.
The cache is a marshal file (plain dicts, lists and strings): reading it needs no import at all,
where ``json`` would cost the hook ~9 ms (it imports ``re`` and ``enum``). The stamp includes
the marshal format version; a cache that does not load is simply rebuilt.
"""
from __future__ import annotations

import marshal
import os

from hookagent.paths import cache_dir, find_config

CACHE_VERSION = 2
_MAGIC = marshal.version


def load(explicit: str | None = None) -> dict:
    """Settings for the hook. Raises ConfigError (from the full loader) when the file is bad."""
    path = find_config(explicit)
    if path is None:
        from hookagent import config
        return config.Config().hook_view()
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError as exc:
        from hookagent.errors import ConfigError
        raise ConfigError(f"cannot read config {path}: {exc.strerror}; fix the path given to the hook"
                          " (reinstall with hookagent install --config FILE)") from None
    # The view also holds defaults that come from the environment (the default spool_dir):
    # a session with another XDG_STATE_HOME or HOME must not reuse it.
    stamp = [CACHE_VERSION, _MAGIC, st.st_ino, st.st_size, st.st_mtime_ns, os.getuid(),
             os.environ.get("XDG_STATE_HOME", ""), os.environ.get("HOME", "")]
    cache = os.path.join(cache_dir(), "config" + real.replace("%", "%25").replace("/", "%") + ".marshal")
    try:
        with open(cache, "rb") as fh:
            cached = marshal.load(fh)
        if cached.get("stamp") == stamp:
            return cached["view"]
    except (OSError, ValueError, EOFError, TypeError, AttributeError):
        pass
    from hookagent import config  # slow path: yaml
    view = config.load(path).hook_view()
    _write_cache(cache, {"stamp": stamp, "view": view})
    return view


def _write_cache(path: str, data: dict) -> None:
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            marshal.dump(data, fh)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache we cannot write only costs time
