"""A stand-in interpreter for hook tests: an executable that records each call and exits.

The installed hook runs `INTERPRETER -I -c LAUNCH hook [--config CFG] NAME -- ARGS` with the
hook's stdin; rendering the hook with this fake as `--python` tests what the hook passes (argv,
stdin, environment, working directory) without depending on the `hook` command itself.
Each call appends one JSON line to the log; `calls(log)` reads them back.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

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
    return [json.loads(line) for line in text.splitlines() if line.strip()]


PREFIX = ["-I", "-c", "import sys; from hookagent.main import main; sys.exit(main())"]
"""How the installed hook starts hookagent (see hookagent/resources/hook-tmpl)."""


def hook_calls(log: str | Path) -> list[dict]:
    """Only the calls the installed hook made (not install's own `-c import hookagent` check)."""
    return [c for c in calls(log) if c["argv"][:4] == [*PREFIX, "hook"]]
