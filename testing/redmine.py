"""The real Redmine for tests (hookagent/localredmine.py starts it): installed when missing, one
for the whole test session.

``scripts/install-redmine`` installs Debian's package (``scripts/setup --test`` runs it);
:func:`available` runs it again as root when the package is missing, as the suite installs what
it needs. The ``redmine`` fixture starts one Redmine on a free port of 127.0.0.1 for the session
(with a project, ``hookagent``) and stops it at the end; a test that asks for it skips, saying
why, only where Redmine cannot be installed or run (not root, no apt).
"""
from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookagent.localredmine import Redmine, Unavailable, installed

INSTALLER = Path(__file__).resolve().parent.parent / "scripts" / "install-redmine"

__all__ = ["Redmine", "Unavailable", "available", "started", "redmine"]


def available() -> None:
    """Return when Redmine can run here (installing it as root when missing); else raise
    Unavailable with the reason."""
    if os.geteuid() != 0:
        raise Unavailable("Redmine runs as www-data, which needs root (run the tests as root)")
    if installed() is not None:
        proc = subprocess.run([str(INSTALLER)], capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"status {proc.returncode}"])[-1]
            raise Unavailable(f"cannot install Redmine: {last}")
    why = installed()
    if why:
        raise Unavailable(why)


def started() -> Redmine:
    """A started Redmine with its project, timed (``started_in``, seconds)."""
    began = time.monotonic()
    available()
    redmine = Redmine()
    try:
        redmine.start()
        redmine.setup_project()
    except BaseException:
        redmine.stop()
        raise
    redmine.started_in = time.monotonic() - began   # type: ignore[attr-defined]
    return redmine


@pytest.fixture(scope="session")
def redmine() -> Iterator[Redmine]:
    """One Redmine for the whole session (on a free port of 127.0.0.1), stopped at its end; the
    test skips, saying why, only where Redmine cannot be installed or run (not root, no apt)."""
    try:
        server = started()
    except Unavailable as exc:
        pytest.skip(f"no Redmine: {exc}")
    try:
        yield server
    finally:
        server.stop()
