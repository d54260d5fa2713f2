"""Default locations: the config file, the spool, the cache."""
from __future__ import annotations

import os


def home() -> str:
    """The user's home from the password database: svn runs hooks with an empty environment."""
    try:
        import pwd
        return pwd.getpwuid(os.getuid()).pw_dir
    except (KeyError, ImportError):
        return os.environ.get("HOME", "/")


def default_config_paths() -> list[str]:
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home(), ".config")
    return [os.path.join(xdg, "hookagent", "config.yaml"), "/etc/hookagent/config.yaml"]


def default_spool_dir() -> str:
    if os.geteuid() == 0:
        return "/var/spool/hookagent"
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(home(), ".local", "state")
    return os.path.join(state, "hookagent", "spool")


def cache_dir() -> str:
    return os.environ.get("HOOKAGENT_CACHE_DIR") or os.path.join(home(), ".cache", "hookagent")


def find_config(explicit: str | None = None) -> str | None:
    """--config, else $HOOKAGENT_CONFIG, else the first default path that exists, else None."""
    if explicit:
        return os.path.abspath(explicit)
    env = os.environ.get("HOOKAGENT_CONFIG")
    if env:
        return os.path.abspath(env)
    for p in default_config_paths():
        if os.path.isfile(p):
            return p
    return None
