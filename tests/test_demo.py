"""`hookagent demo`: the whole path (receiver, install, real commits, background agent) in a
temporary folder, as the README's quick start runs it."""
from __future__ import annotations

import subprocess
import sys


def test_the_demo_delivers_every_referencing_commit_and_moves_the_stories():
    proc = subprocess.run([sys.executable, "-m", "hookagent", "demo"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "install: installed post-commit" in out and "install: installed post-rewrite" in out
    assert "story #101  state: finished" in out
    assert "story #102  state: delivered" in out
    assert "story #103  state: finished" in out
    assert "sent:         4 commit(s)" in out
    assert "Merge pull request #12" not in out.split("What the receiver shows:")[1]
