"""A `git` whose `git log` stops part-way until the test opens a gate.

Put first on the PATH of a process under test (``GitGate.env()``): every other git command is
the real git (exec'd); `git log` (as git's first argument) sends the first ``fraction`` of its
output, then waits until the test calls ``open()``, then sends the rest. A test can so stop or
kill a reader of a long history (a backfill) while it is surely part-way through, whatever the
speed of the machine: no amount of speed gets the reader past the gate.

Generic (no hookagent imports). A gated `git log` whose reader goes away (killed) ends by itself.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

_SCRIPT = '''#!{python} -I
import os, select, subprocess, sys
REAL, GATE, FRACTION = {real!r}, {gate!r}, {fraction!r}
if sys.argv[1:2] != ["log"]:
    os.execv(REAL, [REAL, *sys.argv[1:]])
proc = subprocess.run([REAL, *sys.argv[1:]], stdout=subprocess.PIPE)
out = memoryview(proc.stdout)
cut = int(len(out) * FRACTION)


def send(data):
    while data:
        data = data[os.write(1, data):]


try:
    send(out[:cut])
    closed = select.poll()
    closed.register(1, 0)   # POLLERR: the reader closed its end (nobody wants the rest)
    while not os.path.exists(GATE):
        if closed.poll(20):
            sys.exit(0)
    send(out[cut:])
except BrokenPipeError:
    sys.exit(0)
sys.exit(proc.returncode)
'''


class GitGate:
    """``folder``/bin/git gating `git log` after ``fraction`` of its output; ``folder``/open is the gate."""

    def __init__(self, folder: str | os.PathLike, fraction: float = 0.5) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
        real = shutil.which("git")
        assert real, "git is not on PATH"
        self.folder = Path(folder)
        self.bin = self.folder / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.gate = self.folder / "open"
        script = self.bin / "git"
        script.write_text(_SCRIPT.format(python=sys.executable, real=real,
                                         gate=str(self.gate), fraction=fraction))
        script.chmod(0o755)

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default os.environ) with this git first on PATH."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = os.pathsep.join([str(self.bin), env.get("PATH") or os.defpath])
        return env

    def open(self) -> None:
        """Let every gated `git log` send the rest of its output."""
        self.gate.touch()
