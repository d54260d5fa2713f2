"""Heartbeats: an agent shows that it makes progress; others tell one that does not.

A running agent rewrites, every ``EVERY`` seconds while it works or waits, a small text in the
files that name it: its AgentLock file (every agent), the flush lock (the background agent that
serves a destination) and its pid file (which the sh hook reads)::

    PID
    DEADLINE LAST BOOT_ID

LAST is when it beat and DEADLINE its promise "I beat again before then", both in whole seconds
of /proc/uptime: the clock the sh hook reads without starting a process (``read up rest
</proc/uptime``). The promise allows for the longest step an agent takes between two beats
(:func:`allowance`). It beats at each pass, before each request, for each inbox record, and
while it sleeps through a backoff or lingers for the next commit. BOOT_ID (the kernel's, for
this boot) says whose clock DEADLINE is on: an agent of another machine (a spool on NFS) or of
a boot before this one is never judged by it.

An agent past its deadline is stuck (SIGSTOP, an NFS stall, a read that never returns). The sh
hook then starts a new agent (it reads DEADLINE, the first word of the second line); that one,
finding the flush lock held by a stuck agent of its own user, kills it and takes its place
(lifetime.py); one of another user it cannot stop: `hookagent status` names it, with the
command to run. A file without the second line (an agent of an older version) promises nothing
and is taken at its word.
"""
from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

MARGIN = 10.0
"""Seconds an agent's deadline allows beyond one request (bounded by tracker.timeout): reading an
inbox record, a ledger write, the fsyncs of an entry, a slow scheduler. An agent that overruns it
while alive is killed and replaced all the same: that is safe (a killed agent loses nothing and
repeats at most the request it had in flight), only wasteful."""

EVERY = 2.0
"""Seconds between two rewrites of the heartbeat at most (a beat asked for sooner writes
nothing). Well under MARGIN, which it takes from."""

AGENT_LOCK = re.compile(r"(\d+)-[0-9a-f]{6}\.lock")
"""The name of an AgentLock file in locks/ (spool.AgentLock): PID-RANDOM.lock."""


def allowance(timeout: float) -> float:
    """Seconds an agent whose requests time out after ``timeout`` may go between two beats."""
    return float(timeout) + MARGIN


def uptime() -> float | None:
    """Seconds since boot as /proc/uptime says (what the sh hook compares DEADLINE with); None
    where there is no such file (then no agent is ever judged stuck)."""
    try:
        with open("/proc/uptime", "rb") as fh:
            return float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


_BOOT_ID: list[str] = []


def boot_id() -> str:
    """This boot's id (the kernel's random one); "-" where it cannot be read."""
    if not _BOOT_ID:
        try:
            with open("/proc/sys/kernel/random/boot_id", "rb") as fh:
                _BOOT_ID.append(fh.read().decode("ascii", "replace").strip() or "-")
        except OSError:
            _BOOT_ID.append("-")
    return _BOOT_ID[0]


# ---------------------------------------------------------------------- reading a beat
@dataclass(frozen=True)
class Beat:
    """What a file says of the agent it names."""
    pid: int
    deadline: int | None = None     # seconds of uptime; None: no promise (an older agent)
    last: int | None = None
    boot: str | None = None

    def overdue(self, now: float | None) -> bool:
        """Past its deadline, on this machine's clock of this boot, in whole seconds as the sh
        hook compares them: whatever says an agent is stuck, the next commit starts a new one."""
        return (now is not None and self.deadline is not None and self.boot == boot_id()
                and boot_id() != "-" and math.floor(now) > self.deadline)

    def silent_for(self, now: float | None) -> float:
        """Seconds since it last beat (0 when that cannot be told)."""
        if now is None or self.last is None:
            return 0.0
        return max(0.0, now - self.last)


def parse(data: bytes) -> Beat | None:
    lines = data.decode("ascii", "replace").splitlines()
    try:
        pid = int(lines[0].strip())
    except (IndexError, ValueError):
        return None
    words = lines[1].split() if len(lines) > 1 else []
    try:
        deadline, last, boot = int(words[0]), int(words[1]), words[2]
    except (IndexError, ValueError):
        return Beat(pid)
    return Beat(pid, deadline, last, boot)


def read_fd(fd: int) -> Beat | None:
    try:
        return parse(os.pread(fd, 256, 0))
    except OSError:
        return None


def read(path: str) -> Beat | None:
    from hookagent.spool import open_nofollow
    try:
        fd = open_nofollow(path)    # a regular file: a planted FIFO or symlink is no beat
    except OSError:
        return None
    try:
        return read_fd(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- beating
def render(pid: int, deadline: float, last: float) -> bytes:
    return f"{pid}\n{math.ceil(deadline)} {math.floor(last)} {boot_id()}\n".encode()


def rewrite(fd: int, text: bytes) -> None:
    """Put ``text`` in the file open at ``fd``, in place: a reader sees the old text or the new
    one, never an empty file (the pid stays the same, and the numbers only grow)."""
    os.pwrite(fd, text, 0)
    os.ftruncate(fd, len(text))


class Heartbeat:
    """An agent's heartbeat: ``beat()`` writes the promise to each writer added (each decides
    whether it is still the agent's to write), at most every EVERY seconds unless forced."""

    def __init__(self, allowance: float) -> None:
        self.allowance = allowance
        self.writers: list[Callable[[bytes], None]] = []
        self.written = -math.inf

    def add(self, writer: Callable[[bytes], None]) -> None:
        self.writers.append(writer)

    def beat(self, force: bool = False) -> None:
        now = uptime()
        if now is None or (not force and now - self.written < EVERY):
            return
        self.written = now
        text = render(os.getpid(), now + self.allowance, now)
        for write in self.writers:
            try:
                write(text)
            except OSError:
                pass      # a heartbeat that cannot be written makes the agent look stuck, no worse


# ---------------------------------------------------------------------- judging another agent
def process_state(pid: int) -> str | None:
    """The state letter in /proc/PID/stat (R, S, D, T for stopped, Z...); None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


def why_not_stop(pid: int) -> str | None:
    """None when ``pid`` is a hookagent process of this user, which we may kill; otherwise why not."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read()
        with open(f"/proc/{pid}/status", "rb") as fh:   # not /proc/PID's owner: root's, if not dumpable
            uids = next((line.split()[1:3] for line in fh if line.startswith(b"Uid:")), [])
    except OSError:
        return "it is not running"
    if b"hookagent" not in cmdline:
        return "it is not a hookagent process"
    me = str(os.geteuid()).encode()
    if uids != [me, me]:
        owner = uids[0].decode() if uids else "?"
        return f"it belongs to uid {owner}, not to you (uid {os.geteuid()})"
    return None


def is_hookagent(pid: int) -> bool:
    """Whether ``pid`` is a live hookagent process (a zombie has no command line)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"hookagent" in fh.read()
    except OSError:
        return False


def overdue(path: str, now: float | None) -> Beat | None:
    """The agent the file at ``path`` names, when it still runs and is past its deadline. Read
    only: no lock is taken (a status taking the flush lock for a moment would send a hook's agent
    away), so a dead agent's file is told by its pid, which no longer runs a hookagent."""
    beat = read(path)
    if beat is None or not beat.overdue(now) or not is_hookagent(beat.pid):
        return None
    return beat


@dataclass(frozen=True)
class Stuck:
    """An agent that holds a lock and has made no progress for longer than its deadline allows."""
    pid: int
    silent_for: float
    serving: bool          # it holds the flush lock: hooks' agents wait for it
    agent_ids: tuple[str, ...] = ()   # its AgentLock ids (its claims are NAME@ID in cur/)

    @property
    def command(self) -> str:
        return f"kill -9 {self.pid}"


def stuck_agents(locks_dir: str, flush_lock: str) -> list[Stuck]:
    """Every stuck agent of a spool that `hookagent status` should name: the holder of
    ``flush_lock`` and the holder of any AgentLock file in ``locks_dir``, when past its deadline."""
    now = uptime()
    found: dict[int, Stuck] = {}
    holder = overdue(flush_lock, now)
    if holder is not None:
        found[holder.pid] = Stuck(holder.pid, holder.silent_for(now), True)
    try:
        names = sorted(os.listdir(locks_dir))
    except OSError:
        names = []
    for name in names:
        if not AGENT_LOCK.fullmatch(name):
            continue
        beat = overdue(os.path.join(locks_dir, name), now)
        if beat is None:
            continue
        ident = name[: -len(".lock")]
        old = found.get(beat.pid)
        found[beat.pid] = Stuck(beat.pid, max(beat.silent_for(now), old.silent_for if old else 0.0),
                                bool(old and old.serving), (old.agent_ids if old else ()) + (ident,))
    return sorted(found.values(), key=lambda s: s.pid)
