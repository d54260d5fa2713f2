"""A real small disk for tests: a tmpfs mounted for one test, filled to its last block, or made
read-only under a process that keeps running there. Root only: the test is skipped otherwise.

Read-only under a running agent: ``mount -o remount,ro`` answers "busy" while any process holds
a file there open for writing (an agent holds its log, its lock files and the ledger), so the
kernel never does it to a running agent on request; it happens when a file system turns itself
read-only after an error. :meth:`SmallDisk.read_only` comes as close as can be made on purpose:
a read-only bind mount of the same file system over it, so every path opened, created, renamed
or removed there answers EROFS, as after a read-only remount; descriptors opened before keep
writing to the file system below. :meth:`SmallDisk.writable` takes it away again.
"""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from testing.wait import wait_until


class SmallDisk:
    """A tmpfs of ``size`` at ``path`` (made), unmounted when the test ends, even when it fails:
    register it first, so what runs there (an agent) is stopped before it goes."""

    def __init__(self, path: Path, request, size: str = "4m") -> None:
        self.path = path
        self.filler = path / "filler"
        self.overlaid = False
        path.mkdir(mode=0o700, exist_ok=True)
        if os.geteuid() != 0 or _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                                     str(path)).returncode != 0:
            pytest.skip("needs root and tmpfs to make a really full or read-only disk")
        request.addfinalizer(self._unmount)

    def fill(self) -> None:
        """Fill the file system to its last block with one file (the filler)."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (1 << 16, 1 << 12, 1):
                try:
                    while os.write(fd, b"\0" * chunk):
                        pass
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
        finally:
            os.close(fd)
        assert self.free_blocks() == 0

    def free(self) -> None:
        """Give the room back: the filler goes."""
        self.filler.unlink()

    def free_blocks(self) -> int:
        return os.statvfs(self.path).f_bavail

    def read_only(self) -> None:
        """Make every path under it answer EROFS (see the module's docstring)."""
        _run("mount", "--bind", "-o", "ro", str(self.path), str(self.path), check=True)
        self.overlaid = True

    def writable(self) -> None:
        """Writable again. A process opening a file there at that very moment makes the unmount
        busy for as long as it holds it: try until it goes."""
        assert wait_until(lambda: _run("umount", str(self.path)).returncode == 0), "cannot lift the read-only mount"
        self.overlaid = False

    def _unmount(self) -> None:
        for _ in range(2 if self.overlaid else 1):
            if _run("umount", str(self.path)).returncode != 0:
                _run("umount", "-l", str(self.path))   # still busy: detach it, it goes when freed


def _run(*cmd: str, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {proc.returncode}: {proc.stderr}")
    return proc
