"""Talking to systemd without a library: the notify protocol and the journal.

- :class:`Notifier`: sd_notify(3) in a few lines. systemd names an AF_UNIX datagram socket in
  ``$NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract namespace); each message is one
  datagram of ``KEY=VALUE`` lines. ``hookagent run`` says READY=1 once its spool, ledger and sink
  are built, STATUS= with its queue, WATCHDOG=1 with each heartbeat (heartbeat.py: the beats
  come from the loop's own progress, never from a timer) and STOPPING=1 when told to stop.
  Without ``$NOTIFY_SOCKET`` (not started by systemd) every call does nothing.
- :func:`stderr_is_journal`: whether our stderr is connected to the journal. systemd then sets
  ``$JOURNAL_STREAM`` to that stream's ``DEVICE:INODE``; comparing it with fstat(2) of fd 2 tells
  a real journal stream from a variable inherited by a child whose stderr went elsewhere.
- :class:`JournalSocket`: the journal's native protocol (one datagram of ``KEY=VALUE`` lines to
  ``/run/systemd/journal/socket``), for an agent whose stderr is not the journal (a hook's
  background agent) when ``agent.log: journald`` asks for the journal.
"""
from __future__ import annotations

import logging
import math
import os
import socket
import stat

JOURNAL_SOCKET = "/run/systemd/journal/socket"
MAX_MESSAGE = 32768

PRIORITIES = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (journald's PRIORITY=, or the ``<N>`` prefix)."""
    for level, prio in PRIORITIES.items():
        if levelno >= level:
            return prio
    return 7


def _address(name: str) -> str:
    """A socket address from ``$NOTIFY_SOCKET``: ``@name`` is ``name`` in the abstract namespace."""
    return "\0" + name[1:] if name.startswith("@") else name


class Notifier:
    """sd_notify for this process. A message that cannot be sent is dropped: being watched by
    systemd must never be what stops the agent."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        name = env.get("NOTIFY_SOCKET", "")
        self.address = _address(name) if name.startswith(("/", "@")) else None
        self.sock: socket.socket | None = None
        self.last_status: str | None = None
        self.watchdog_usec = _watchdog_usec(env)

    @property
    def active(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """One datagram of ``fields`` (``KEY=VALUE`` each); True when it left."""
        if self.address is None:
            return False
        try:
            if self.sock is None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self.sock.sendto("\n".join(fields).encode("utf-8", "replace"), socket.MSG_DONTWAIT, self.address)
            return True
        except OSError:
            return False

    def ready(self, status: str) -> None:
        self.last_status = status
        self.send("READY=1", f"STATUS={status}")

    def status(self, text: str) -> None:
        """STATUS=, sent only when it says something new (`systemctl status` shows the last)."""
        if text != self.last_status:
            self.last_status = text
            self.send(f"STATUS={text}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def watchdog(self) -> None:
        if self.watchdog_usec is not None:
            self.send("WATCHDOG=1")

    def extend_watchdog(self, seconds: float) -> float | None:
        """Ask systemd for a watchdog of at least ``seconds`` (the longest step between two beats)
        when WatchdogSec= is shorter; the seconds asked for, or None when nothing was asked."""
        if self.watchdog_usec is None or self.watchdog_usec >= seconds * 1e6:
            return None
        usec = math.ceil(seconds * 1_000_000)
        self.watchdog_usec = usec
        self.send(f"WATCHDOG_USEC={usec}")
        return usec / 1e6

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _watchdog_usec(env) -> int | None:
    """systemd's watchdog interval for this process (``$WATCHDOG_USEC``, when ``$WATCHDOG_PID``
    is unset or ours), or None when no watchdog watches us."""
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None     # set for our parent, inherited
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec if usec > 0 else None


def stderr_is_journal(fd: int = 2, environ: dict[str, str] | None = None) -> bool:
    """Whether ``fd`` is the stream systemd connected to the journal (``$JOURNAL_STREAM``)."""
    env = os.environ if environ is None else environ
    try:
        dev, ino = (int(part) for part in env.get("JOURNAL_STREAM", "").split(":"))
        st = os.fstat(fd)
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def stderr_is_nowhere(fd: int = 2) -> bool:
    """Whether ``fd`` is closed or the null device (a hook's background agent): nobody reads it."""
    try:
        st = os.fstat(fd)
    except OSError:
        return True
    if not stat.S_ISCHR(st.st_mode):
        return False
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return st.st_rdev == null.st_rdev


class JournalSocket:
    """The journal's native protocol: each line one datagram, ``MESSAGE=`` (one line: the
    formatter escapes newlines), ``PRIORITY=``, ``SYSLOG_IDENTIFIER=hookagent``."""

    def __init__(self, path: str = JOURNAL_SOCKET) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise

    def send(self, message: str, prio: int) -> None:
        """One line to the journal (a line longer than MAX_MESSAGE characters is cut there: a
        datagram has a size limit, and such a line is a quoted answer or a traceback)."""
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + "\u2026"
        self.sock.send(f"PRIORITY={prio}\nSYSLOG_IDENTIFIER=hookagent\nMESSAGE={message}\n"
                       .encode("utf-8", "replace"))

    def close(self) -> None:
        self.sock.close()
