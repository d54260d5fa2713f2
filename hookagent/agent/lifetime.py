"""An agent's life: how it is built, started in the background, locked, kept and ended.

Who runs an agent:
- a hook, when it recorded something and the pid file says no agent of its configuration runs:
  ``hookagent flush --background`` detached (the sh hook starts it itself; Python's hook paths
  and backfill through :func:`start`);
- a person: ``hookagent flush`` (delivers what is due, then exits);
- a service: ``hookagent run``.

Two files in ``locks/`` keep background agents from crowding the tracker:
- ``flush-<destination tag>.lock``: flock-ed by the flush serving a destination; a second
  background flush for it exits at once. A flush run by hand does not wait for it: correctness
  comes from claims (spool.py), the lock only spares the tracker a crowd.
- ``agent-<agent key>.pid``: the pid of the background agent of one configuration, which the sh
  hook reads (no process, no flock in sh) to decide whether to start one. The agent removes it
  before its last look at the inbox and the queue, so a record written after that look finds
  no pid file and starts a new agent: nothing recorded waits for the next commit.

Both carry the agent's heartbeat (heartbeat.py): the promise to beat again before a deadline.
An agent past it is stuck (stopped, hung) and would hold up every commit after it: the sh hook
starts a new agent all the same, and that one, finding the flush lock held by a stuck agent of
its own user, kills it and takes over (:func:`take_over`); its claims return to the queue once
it is dead. One of another user it cannot stop: it queues what the hooks recorded and leaves, and
`hookagent status` names the stuck agent and the command to run.
"""
from __future__ import annotations

import fcntl
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hookagent import context, inbox, localdisk, retarget
from hookagent.agent import heartbeat
from hookagent.agent.worker import Agent, Pass
from hookagent.config import Config
from hookagent.errors import ConfigError
from hookagent.spool import Spool, UnsafeFile, flush_lock_path, open_nofollow

log = logging.getLogger("hookagent.agent")

LINGER = 1.0
"""Seconds a background flush waits for more work before it exits (a burst of commits, a
rebase, a script: one agent serves them all)."""


def build(cfg: Config) -> Agent:
    spool = context.open_spool(cfg)
    ledger = context.open_ledger(spool)
    try:
        # tracker.url or tracker.api changed: what was queued for the old destination follows
        followed = retarget.follow(spool, inbox.agent_key(cfg.path), cfg.path, cfg.tracker.destination)
    except OSError as exc:
        followed = retarget.Moved()
        log.warning("cannot move entries queued for an earlier destination (%s); they wait", exc)
    try:
        sink = context.make_sink(cfg)
    except ConfigError as exc:
        # No usable token: hold the queue (nothing is dropped) and say why in `status`.
        state = spool.read_state(cfg.tracker.destination)
        if state.get("held") != str(exc):
            state.update(held=str(exc), held_since=time.time(), last_error=str(exc),
                         last_error_at=time.time())
            spool.write_state(cfg.tracker.destination, state)
        raise
    agent = Agent(cfg, spool, ledger, sink)
    agent.followed = followed
    return agent


def stop_on_signals(agent: Agent, then: Callable[[], None] | None = None) -> None:
    """SIGTERM/SIGINT only set a flag: the request in flight finishes, then the loop ends.
    ``then`` (`hookagent run`: STOPPING=1 to systemd, one datagram that never waits) is called
    at the first signal, while the request may still be in flight."""
    def handler(signum, frame):  # noqa: ARG001
        first = not agent.stopping
        agent.stopping = True
        if first and then is not None:
            then()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


# ---------------------------------------------------------------------- pid file and lock
def pid_path(spool_dir: str, key: str) -> str:
    return os.path.join(spool_dir, "locks", f"agent-{key}.pid")


def agent_running(spool_dir: str, key: str) -> bool:
    """What the sh hook asks: does the pid file name a live hookagent process, not past its
    heartbeat's deadline?"""
    beat = heartbeat.read(pid_path(spool_dir, key))
    return (beat is not None and heartbeat.is_hookagent(beat.pid)
            and not beat.overdue(heartbeat.uptime()))


def flush_running(spool_dir: str, destination: str) -> bool:
    """True when a background flush for ``destination`` holds its lock."""
    try:
        fd = open_nofollow(flush_lock_path(spool_dir, destination))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


class FlushLock:
    def __init__(self, spool: Spool, destination: str) -> None:
        self.fd = spool.open_file(flush_lock_path(spool.root, destination), os.O_RDWR)
        self.held = False

    def try_acquire(self) -> bool:
        if not self.held:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            self.held = True
            self._note_owner()
        return True

    def _note_owner(self) -> None:
        """Our pid in the lock file, for `hookagent status` and for people."""
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass

    def release(self) -> None:
        if self.held:
            self._forget_owner()
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            self.held = False

    def _forget_owner(self) -> None:
        """No pid in the lock file once we let go: what it names holds it, or is dead."""
        try:
            os.ftruncate(self.fd, 0)
        except OSError:
            pass

    def beat(self, text: bytes) -> None:
        """Our heartbeat in the lock file (heartbeat.py), while we hold it."""
        if self.held:
            heartbeat.rewrite(self.fd, text)

    def close(self) -> None:
        self.release()
        os.close(self.fd)


class PidFile:
    def __init__(self, spool: Spool, key: str) -> None:
        self.spool = spool
        self.path = pid_path(spool.root, key)

    def write(self) -> None:
        """Our pid for the sh hook. A disk that refuses it (full, read-only) is not fatal: a
        hook then starts an agent that finds the flush lock taken and ends at once. Nor is a
        file someone put there (a symlink, a FIFO): refused, said in the log."""
        try:
            fd = self.spool.open_file(self.path, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, f"{os.getpid()}\n".encode())
            finally:
                os.close(fd)
        except UnsafeFile as exc:
            log.error("%s", exc)
        except OSError as exc:
            if localdisk.refusal(exc, self.spool.root) is None:
                raise
            log.warning("cannot write the pid file %s (%s); going on without it", self.path, exc.strerror)

    def remove(self) -> None:
        try:
            mine = self.spool.read_file(self.path).split()[:1] == [str(os.getpid()).encode()]
            if mine:
                os.unlink(self.path)
        except (OSError, IndexError):
            pass

    def beat(self, text: bytes) -> None:
        """Our heartbeat in the pid file (heartbeat.py), while it names us: never created again
        once removed, never written over another agent's."""
        fd = open_nofollow(self.path, os.O_RDWR)
        try:
            if os.pread(fd, 32, 0).split()[:1] == [str(os.getpid()).encode()]:
                heartbeat.rewrite(fd, text)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------- a stuck agent
TAKEN, BUSY, STUCK = "taken", "busy", "stuck"

GRACE = 2.0
"""Seconds a new agent watches an agent past its deadline that is not stopped (state T) before
it kills it: one just back from a suspend (its deadline ran on through it) that was sleeping or
lingering beats again within a second. (One that was in a request beats after it: it may be
killed, which is safe.)"""

RELEASE_WAIT = 10.0
"""Seconds a new agent waits for the flush lock of the agent it killed: a process stuck in the
kernel (an NFS stall) dies only when that call returns; after that, it leaves the queue to it."""


def take_over(lock: FlushLock) -> str:
    """The flush lock is held. BUSY: by an agent at work, which delivers what we queue. TAKEN: it
    was held by an agent of ours past its heartbeat's deadline (stopped, hung: heartbeat.py),
    now killed (SIGKILL: a stopped process cannot handle SIGTERM), which frees its locks, so its
    claims return to the queue (spool.recover_stale), and the lock is ours. STUCK: held by a
    stuck agent we cannot stop (another user's); the log and `hookagent status` say what to run."""
    holder = heartbeat.read_fd(lock.fd)
    if holder is None or not holder.overdue(heartbeat.uptime()):
        return BUSY
    why = heartbeat.why_not_stop(holder.pid)
    if why is not None:
        if lock.try_acquire():       # it ended meanwhile
            return TAKEN
        log.error("agent %d has made no progress for %.0fs (stopped or hung) and holds the delivery"
                  " of new commits; it cannot be stopped from here (%s): run `kill -9 %d` as its user,"
                  " or `hookagent flush`", holder.pid, holder.silent_for(heartbeat.uptime()), why, holder.pid)
        return STUCK
    if not _still_silent(lock, holder):
        return BUSY
    silent = holder.silent_for(heartbeat.uptime())
    if not _kill(lock, holder):         # it ended, or beat, meanwhile
        return TAKEN if lock.try_acquire() else BUSY
    log.warning("agent %d had made no progress for %.0fs (stopped or hung): killed it (SIGKILL)"
                " to take over its queue", holder.pid, silent)
    end = time.monotonic() + RELEASE_WAIT
    while not lock.try_acquire():
        if not _same_holder(lock, holder):
            return BUSY              # another new agent was first: it serves the queue now
        if time.monotonic() >= end:
            log.error("agent %d, killed, still holds the flush lock after %.0fs (stuck in the kernel?);"
                      " new commits wait until it ends", holder.pid, RELEASE_WAIT)
            return STUCK
        time.sleep(0.05)
    # Its lock file too is free once it has closed all its files (a zombie has): then its
    # claims return at our first pass.
    while heartbeat.process_state(holder.pid) not in (None, "Z", "X") and time.monotonic() < end:
        time.sleep(0.05)
    return TAKEN


def _same_holder(lock: FlushLock, holder: heartbeat.Beat) -> bool:
    """The lock file still says what it said of ``holder``: the same process, no newer beat."""
    return heartbeat.read_fd(lock.fd) == holder


def _still_silent(lock: FlushLock, holder: heartbeat.Beat) -> bool:
    """Whether ``holder`` stays silent: at once when it is stopped, else after GRACE seconds."""
    if heartbeat.process_state(holder.pid) in ("T", "t"):
        return _same_holder(lock, holder)
    end = time.monotonic() + GRACE
    while time.monotonic() < end:
        if not _same_holder(lock, holder):
            return False
        time.sleep(0.1)
    return _same_holder(lock, holder)


def _kill(lock: FlushLock, holder: heartbeat.Beat) -> bool:
    """SIGKILL ``holder``, sure it is still the process the lock file names: through a pidfd
    (no pid reused meanwhile can be hit) once the lock is seen still held and still naming it."""
    try:
        pidfd = os.pidfd_open(holder.pid)
    except ProcessLookupError:
        return False                # it ended
    except (AttributeError, OSError):   # no pidfds here (Python, kernel): the pid, checked just before
        pidfd = -1
    try:
        if lock.try_acquire() or not _same_holder(lock, holder) or heartbeat.why_not_stop(holder.pid):
            return False
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        else:
            os.kill(holder.pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False
    finally:
        if pidfd >= 0:
            os.close(pidfd)


# ---------------------------------------------------------------------- starting one
def start(cfg: Config) -> None:
    """Start ``hookagent flush --background`` detached, unless this configuration's agent runs:
    its own session, stdin/stdout/stderr on /dev/null (it logs to its log file), no descriptor
    of the caller's inherited (git, or an ssh session, would wait for them), no GIT_* variables
    (they name the caller's repository), in /."""
    import sys

    from hookagent import process
    if agent_running(cfg.spool_dir, inbox.agent_key(cfg.path)):
        return
    cmd = [sys.executable, "-I", "-m", "hookagent", "flush", "--background", "--quiet"]
    if cfg.path:
        cmd += ["--config", cfg.path]
    process.spawn_detached(cmd, env={k: v for k, v in os.environ.items() if not k.startswith("GIT_")})


def detach() -> None:
    """What a background agent does first: its own session (a Ctrl-C at the terminal that made
    the commit is not for it), no descriptor of the hook's, no working directory held, and the
    developer's work first."""
    try:
        os.setsid()
    except OSError:
        pass                 # already a session leader (started by Python's start())
    os.closerange(3, 65536)
    os.chdir("/")
    for name in [n for n in os.environ if n.startswith("GIT_")]:
        del os.environ[name]     # they name the repository of the hook's commit, not the ones we read
    try:
        os.nice(10)
    except OSError:
        pass


# ---------------------------------------------------------------------- running until done
@dataclass
class Totals:
    sent: int = 0
    skipped: int = 0
    deferred: int = 0
    dead: int = 0
    last: Pass = field(default_factory=Pass)

    def add(self, result: Pass) -> None:
        self.sent += result.sent
        self.skipped += result.skipped
        self.deferred += result.deferred
        self.dead += result.dead
        self.last = result


def flush(agent: Agent, *, wait: float = 0.0, background: bool = False) -> Totals | None:
    """Deliver what is due. ``wait``: go on through backoffs for up to that many seconds.
    ``background`` (a hook's agent): None at once when another serves this destination;
    otherwise stay, sleeping through backoffs, until nothing is left to retry, linger a moment
    for the next commit, and hand over cleanly (see the module's docstring)."""
    lock = FlushLock(agent.spool, agent.dest)
    pidfile = PidFile(agent.spool, agent.inbox.key)
    if background:
        if not lock.try_acquire():
            taken = take_over(lock)
            if taken is not TAKEN:
                # Queued: the agent that holds the lock delivers them (one stuck may hold the
                # inbox too: then they wait in it).
                agent.ingest(wait=taken is BUSY)
                lock.close()
                return None
        pidfile.write()
        agent.heartbeat.add(lock.beat)
        agent.heartbeat.add(pidfile.beat)
        agent.heartbeat.beat(force=True)
    deadline = time.time() + wait
    totals = Totals()
    try:
        while True:
            result = agent.run_once(time.time(), probe_held=True)
            totals.add(result)
            if agent.stopping or result.held:
                break
            if result.entries_done or result.dead or result.skipped or result.ingested:
                continue  # progress: go round until a pass finds nothing more
            if not result.paused_until and agent.waiting_on_others():
                agent.beat()          # a story's next event waits for another agent's request
                time.sleep(0.05)
                continue
            now = time.time()
            wake = result.paused_until or agent.next_due()
            if wait and wake and now < deadline:
                agent.beat()
                time.sleep(max(0.01, min(wake - now, deadline - now, 1.0)))
                continue
            if background and wake:
                # Nobody else may come: stay while something waits for a retry (the tracker is
                # down or slow), sleep until it is due, try again.
                _sleep_until(agent, wake)
                continue
            if background:
                if _linger(agent, LINGER):
                    continue
                # The hand-over: after the pid file goes, a hook that records starts a new
                # agent; what was recorded before that, this last look finds.
                pidfile.remove()
                agent.ingest()       # queued: whoever holds the lock next delivers them
                lock.release()
                if agent.due_now() and lock.try_acquire():
                    pidfile.write()
                    agent.heartbeat.beat(force=True)
                    continue
            break
    finally:
        if background:
            pidfile.remove()
        lock.close()
    return totals


def _sleep_until(agent: Agent, when: float) -> None:
    """Sleep until ``when`` (a due time), waking for a signal, or early when someone lifted the
    pause (`hookagent retry`) and something is due."""
    while not agent.stopping and time.time() < when:
        agent.beat()
        time.sleep(min(0.5, max(0.01, when - time.time())))
        if agent.paused_until() <= time.time() and agent.due_now():
            return


def _linger(agent: Agent, seconds: float) -> bool:
    """Wait up to ``seconds`` for an entry or a record to come; True when one did."""
    end = time.time() + seconds
    while time.time() < end and not agent.stopping:
        agent.beat()
        if agent.due_now():
            return True
        time.sleep(0.05)
    return False
