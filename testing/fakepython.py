"""A stand-in interpreter for hook tests: an executable that records each call and exits.

Rendering the hook with this fake as `--python` shows every time the hook starts Python, with
what it passes (argv, stdin, environment, working directory), without depending on hookagent's
own commands. The installed hook (hookagent/resources/hook-tmpl) starts Python for:

- post-receive and svn post-revprop-change, and post-commit when its sh write failed:
  `INTERPRETER -I -c LAUNCH hook --vcs VCS [--config CFG] NAME -- ARGS` with the hook's stdin
  (PREFIX; hook_argv);
- the first record, when the spool's inbox/ does not exist yet, and the first after each change
  of the config file: `INTERPRETER -I -c LAUNCH hook --prepare --vcs VCS [--config CFG] --spool
  SPOOL NAME -- ARGS` (PREPARE); the fake makes no spool;
- a background agent after a record, when autostart is on:
  `INTERPRETER -I -m hookagent flush --background --quiet [--config CFG]` (AGENT), detached:
  use wait() before counting those calls.

git and svn post-commit themselves run no Python: their record in the spool's inbox/ shows what
they passed. Each call appends one JSON line to the log; `calls(log)` reads them back.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable

_SCRIPT = '''#!{python} -I
import json, os, sys
data = b"" if os.environ.get("FAKE_NO_STDIN") else sys.stdin.buffer.read()
rec = {{"argv": sys.argv[1:], "stdin": data.decode("utf-8", "surrogateescape"), "cwd": os.getcwd(),
        "env": dict(os.environ), "name": os.path.basename(sys.argv[0])}}
with open({log!r}, "a", encoding="utf-8") as fh:
    fh.write(json.dumps(rec) + "\\n")
sys.exit({status})
'''


def make(path: str | Path, log: str | Path, status: int = 0) -> Path:
    """Write the fake at path; it appends to log and exits with status."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_SCRIPT.format(python=sys.executable, log=str(log), status=status))
    path.chmod(0o755)
    return path


def calls(log: str | Path) -> list[dict]:
    try:
        text = Path(log).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    # Only whole lines: a fake still writing its line (the agent starts detached) has no newline yet.
    return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]


PREFIX = ["-I", "-c", "import sys; from hookagent.main import main; sys.exit(main())"]
"""How the installed hook starts `hookagent hook` (see hookagent/resources/hook-tmpl)."""

PREPARE = [*PREFIX, "hook", "--prepare"]
"""How the installed hook has Python make the spool (and check the configuration names it)."""

AGENT = ["-I", "-m", "hookagent", "flush", "--background", "--quiet"]
"""How the installed hook starts a background agent (followed by --config CFG when baked in)."""


def hook_argv(name: str, vcs: str, config: str | Path | None = None, *args: str) -> list[str]:
    """The argv of the installed hook's `hookagent hook` call."""
    return [*PREFIX, "hook", "--vcs", vcs, *(["--config", str(config)] if config else []), name, "--", *args]


def hook_calls(log: str | Path) -> list[dict]:
    """Only the `hookagent hook` calls of the installed hook (not install's own checks)."""
    return [c for c in calls(log) if c["argv"][:4] == [*PREFIX, "hook"] and c["argv"][:5] != PREPARE]


def prepare_calls(log: str | Path) -> list[dict]:
    """The installed hook's calls that make the spool."""
    return [c for c in calls(log) if c["argv"][:5] == PREPARE]


def agent_calls(log: str | Path) -> list[dict]:
    """The background agents the installed hook started."""
    return [c for c in calls(log) if c["argv"][:6] == AGENT]


def hook_started(log: str | Path) -> list[dict]:
    """Every call the installed hook made (install's own `-c import hookagent` check left out)."""
    return [c for c in calls(log) if c["argv"][:3] != ["-I", "-c", "import hookagent"]]


def wait(log: str | Path, n: int = 1, which: Callable[[str | Path], list[dict]] = agent_calls,
         timeout: float = 30.0, settle: float = 0.3) -> list[dict]:
    """The calls ``which`` selects, once there are at least ``n`` (the agent starts detached, so it
    may log after the hook returned), and ``settle`` seconds more for any unexpected extra one."""
    deadline = time.monotonic() + timeout
    while len(which(log)) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(settle)
    return which(log)
