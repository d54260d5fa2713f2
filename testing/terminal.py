"""Running a command with its stderr on a real terminal (a pty), as a person at a shell sees it."""
from __future__ import annotations

import os
import pty
import subprocess


def stderr_on_a_terminal(cmd: list[str], timeout: float = 300) -> tuple[int, bytes, bytes]:
    """Run ``cmd`` with stderr on a new pty and stdout on a pipe, stdin closed; return its exit
    status, its stdout and what it wrote to the terminal."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
        os.close(slave)
        slave = -1
        out = proc.stdout.read()
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:   # EIO: the other side is closed
                break
            if not data:
                break
            chunks.append(data)
        return proc.wait(timeout=timeout), out, b"".join(chunks)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
