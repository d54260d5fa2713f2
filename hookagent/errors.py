"""The errors hookagent raises on purpose, and the one way to warn. Every message ends with what
to do next.

:func:`hookagent.main.main` owns the exit codes: a :class:`HookagentError` is printed as one line
``hookagent: <message>`` and exits with its ``exit_code`` (2, or 130 for :class:`Interrupted`);
anything else is a bug, reported in one line naming the crash log that holds the traceback.
"""
from __future__ import annotations

import sys


class HookagentError(Exception):
    """Base of every error we raise on purpose; `main` prints it as one line and exits 2."""

    exit_code = 2


class Interrupted(HookagentError):
    """Stopped on request (Ctrl-C, SIGTERM) after leaving things consistent; exit 130.

    The message says what was kept and how to go on."""

    exit_code = 130


class ConfigError(HookagentError):
    """The configuration is wrong: the message names the key path and the fix."""


class SpoolError(HookagentError):
    """The spool directory cannot be used safely (permissions, owner, symlink, disk)."""


class VcsError(HookagentError):
    """git or svn did not give us what we asked for."""


class ProcessError(VcsError):
    """A command we ran could not start, failed, or overran its time (hookagent.process).

    A VcsError because almost every command we run is git, svn or svnlook: code that handles
    "git did not give us what we asked for" handles this too. ``cmd`` is the argv, ``returncode``
    the exit status (None when the command did not start or was stopped at its timeout), and
    ``stderr`` what it printed there.
    """

    def __init__(self, message: str, *, cmd: list[str], returncode: int | None, stderr: bytes = b"") -> None:
        super().__init__(message)
        self.cmd = cmd
        self.returncode = returncode
        self.stderr = stderr


class InstallError(HookagentError):
    """A hook cannot be installed or removed."""


RETRY = "retry"   # transient: back off (whole destination), try again later
HOLD = "hold"     # misconfiguration: hold the queue, spend no attempt, keep everything
DEAD = "dead"     # this entry will never be accepted: move it to dead/ with the answer kept


class DeliveryError(HookagentError):
    """A sink could not deliver. `kind` is RETRY, HOLD or DEAD.

    `retry_after` is the server's Retry-After in seconds when it gave one; `status` and
    `body` keep the HTTP answer (body truncated) for `status` and dead entries.
    """

    def __init__(self, message: str, kind: str, *, retry_after: float | None = None,
                 status: int | None = None, body: str | None = None) -> None:
        super().__init__(message)
        if kind not in (RETRY, HOLD, DEAD):
            raise ValueError(f"unknown delivery error kind {kind!r}")
        self.kind = kind
        self.retry_after = retry_after
        self.status = status
        self.body = body


def warn(message: str) -> None:
    """A problem that does not stop the command: one line on stderr, ``hookagent: warning: ...``."""
    print(f"hookagent: warning: {message}", file=sys.stderr)
