"""The one way hookagent runs a child process: git, svn, svnlook, an interpreter.

- ``run(args)`` runs a command to its end and returns ``Result(returncode, stdout, stderr)``, like
  pre-commit's ``cmd_output_b``; a non-zero exit raises ProcessError unless ``check=False``.
- ``stream(args)`` yields a command's stdout in chunks as the command writes it (``git log`` or
  ``svn log --xml`` over a whole history: memory stays flat whatever its size).
- ``Process(args)`` is a command started now and collected later, for the callers that work
  beside it (svnlook's three propgets side by side, the count behind backfill's progress bar).

The same rules hold for all three:

- stdin is the bytes given, or /dev/null (a child never waits for a terminal). stdin, stdout and
  stderr are served together, whatever their sizes, so no pipe can fill up and stop either side
  (thousands of excluded tips for ``git log --stdin`` in a post-receive): by ``communicate`` for
  a command read to its end, by two threads (one writing stdin, one reading stderr) for a stream,
  whose stdout the caller reads at its own pace.
- stderr is kept for the error message.
- The child is always reaped and every pipe closed: after a normal end, after a failure, and when
  the caller stops early (a stream's generator is closed, a Process is closed); a child still
  running then is killed first.
- A command that cannot start, or outlives its ``timeout``, raises ProcessError whatever ``check``
  says. The message names the command, the exit status and the command's first error line, and
  ends with what to do.
"""
from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Generator, Iterator, Sequence
from typing import IO, NamedTuple, cast

from hookagent.errors import ProcessError

READ_SIZE = 1 << 16
"""Bytes asked for per read of the child's stdout: the size of a default Linux pipe."""


class Result(NamedTuple):
    returncode: int
    stdout: bytes
    stderr: bytes


class Identity(NamedTuple):
    """Another user a child runs as (root only): user id, group id, supplementary groups."""
    uid: int
    gid: int
    groups: tuple[int, ...]


def describe(args: Sequence[str]) -> str:
    """The command as messages name it: the program and its subcommand (``git log``,
    ``svnlook propget``), skipping options and the values of git's ``-C``/``-c``."""
    words = [os.path.basename(args[0])]
    skip = False
    for arg in args[1:]:
        if skip:
            skip = False
        elif arg in ("-C", "-c"):
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
            break
    return " ".join(words)


def error_line(stderr: bytes) -> str:
    """The line of stderr that says what went wrong: git's first ``fatal:`` or ``error:`` line
    (warnings and hints may come before it, usage lines after it), else the first line."""
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[0] if lines else ""


def _shown(args: Sequence[str], cwd: str | None) -> str:
    import shlex
    text = shlex.join(args)
    if len(text) > 300:
        text = text[:297] + "..."
    return f"`{text}`" + (f" in {cwd}" if cwd else "")


def failure(args: Sequence[str], returncode: int, stderr: bytes, *, cwd: str | None = None,
            hint: str | None = None) -> ProcessError:
    """The ProcessError for a command that ended with a non-zero status.

    ``hint`` is what to do; None gives "run the command by hand to see the whole error", and ""
    gives none (for a caller that adds its own)."""
    what = describe(args)
    status = f"killed by signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
    line = error_line(stderr)
    message = f"{what} failed: {line} ({status})" if line else f"{what} failed ({status})"
    if hint is None:
        hint = f"run {_shown(args, cwd)} to see the whole error"
    return ProcessError(message + (f"; {hint}" if hint else ""), cmd=list(args), returncode=returncode,
                        stderr=stderr)


def _cannot_start(args: Sequence[str], cwd: str | None, exc: OSError) -> ProcessError:
    program = args[0]
    name = os.path.basename(program)
    if isinstance(exc, FileNotFoundError) and cwd is not None and exc.filename == cwd:
        message = f"cannot run {describe(args)} in {cwd}: no such folder; check the path"
    elif isinstance(exc, FileNotFoundError) and os.sep not in program:
        message = f"{name} is not on PATH; install {name} or fix PATH"
    elif isinstance(exc, FileNotFoundError):
        message = f"{program} not found; install {name} there or fix the path to it"
    else:
        message = (f"cannot run {program} ({exc.strerror or exc}); check that it runs for the user"
                   " hookagent runs as")
    return ProcessError(message, cmd=list(args), returncode=None)


class Process:
    """A command, started when made. Read its stdout as it comes with ``chunks()``, or all at once
    with ``finish()``; then, or instead, ``close()`` it (also a context manager). ``new_session``
    starts it in a session of its own, so a Ctrl-C meant for us does not reach it (closing still
    stops it). ``read_size`` is the bytes per read in ``chunks()``; a size above 64 KiB also asks
    Linux for a pipe that big, so the child keeps writing while the caller works on a chunk.
    ``user`` runs the child as another user (its ids and groups are set before the exec, so a
    program that user may not run fails to start, as it would for that user)."""

    def __init__(self, args: Sequence[str], *, cwd: str | None = None, input: bytes | None = None,
                 env: dict[str, str] | None = None, new_session: bool = False,
                 read_size: int = READ_SIZE, hint: str | None = None, user: Identity | None = None) -> None:
        self.args = list(args)
        self.cwd = cwd
        self.hint = hint
        self.read_size = read_size
        self._input = input
        self._stderr = bytearray()
        self._threads: list[threading.Thread] = []
        self._streaming = False
        self._closed = False
        try:
            self._popen = subprocess.Popen(
                self.args, cwd=cwd, env=env, bufsize=0, start_new_session=new_session,
                stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                user=None if user is None else user.uid, group=None if user is None else user.gid,
                extra_groups=None if user is None else list(user.groups))
        except OSError as exc:   # kept as the cause: callers may tell "not there" from "not allowed"
            raise _cannot_start(self.args, cwd, exc) from exc
        self._stdin: IO[bytes] | None = self._popen.stdin
        self._stdout = cast("IO[bytes]", self._popen.stdout)         # PIPE: never None
        self._stderr_pipe = cast("IO[bytes]", self._popen.stderr)
        if read_size > READ_SIZE:
            try:
                import fcntl
                fcntl.fcntl(self._stdout.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), read_size)
            except (ImportError, OSError):
                pass   # not Linux, or above the limit: the default pipe works, with less overlap

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def poll(self) -> int | None:
        """The exit status if the child has ended, else None."""
        return self._popen.poll()

    def chunks(self) -> Iterator[bytes]:
        """The child's stdout, as it comes, until the child closes it. From the first call on,
        threads write stdin and read stderr."""
        if not self._streaming:
            self._streaming = True
            self._threads.append(threading.Thread(target=self._drain_stderr, daemon=True))
            if self._stdin is not None and self._input:
                self._threads.append(threading.Thread(target=self._feed, args=(self._stdin, self._input),
                                                      daemon=True))
            elif self._stdin is not None:
                self._stdin.close()
            for thread in self._threads:
                thread.start()
        fd = self._stdout.fileno()
        read, size = os.read, self.read_size
        while True:
            chunk = read(fd, size)
            if not chunk:
                return
            yield chunk

    @staticmethod
    def _feed(pipe: IO[bytes], data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(pipe.fileno(), view):]
        except OSError:   # the child exited (or was killed) without reading it all
            pass
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    def _drain_stderr(self) -> None:
        pipe = self._stderr_pipe
        try:
            while True:
                chunk = os.read(pipe.fileno(), READ_SIZE)
                if not chunk:
                    return
                self._stderr += chunk
        except OSError:
            pass
        finally:
            pipe.close()

    def finish(self, *, check: bool = True, timeout: float | None = None) -> Result:
        """Read the rest of stdout, wait for the child and close everything. Raises ProcessError
        on a non-zero exit when ``check``, and when ``timeout`` seconds pass first (the child is
        then killed; the timeout applies to a Process not read with ``chunks()``)."""
        popen = self._popen
        try:
            if self._streaming:
                out = b"".join(self.chunks())
                popen.wait()
                for thread in self._threads:
                    thread.join()
                err = bytes(self._stderr)
            else:
                try:
                    out, err = popen.communicate(self._input, timeout)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    _, err = popen.communicate()
                    raise ProcessError(
                        f"{describe(self.args)} did not finish within {timeout:g} s and was stopped;"
                        f" run {_shown(self.args, self.cwd)} to see where it hangs",
                        cmd=self.args, returncode=None, stderr=err) from None
        finally:
            self.close()
        result = Result(popen.returncode, out, err)
        if check and result.returncode != 0:
            raise failure(self.args, result.returncode, err, cwd=self.cwd, hint=self.hint)
        return result

    def close(self) -> None:
        """Kill the child if it is still running, reap it and close every pipe (idempotent)."""
        if self._closed:
            return
        self._closed = True
        popen = self._popen
        try:
            if popen.poll() is None:
                popen.kill()
        finally:
            popen.wait()
            for thread in self._threads:   # a stream's: they end once the child is gone
                thread.join()
            for pipe in (self._stdin, self._stdout, self._stderr_pipe):
                if pipe is not None:
                    pipe.close()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def run(args: Sequence[str], *, cwd: str | None = None, input: bytes | None = None,
        env: dict[str, str] | None = None, check: bool = True, timeout: float | None = None,
        hint: str | None = None, user: Identity | None = None) -> Result:
    """Run a command to its end: ``(returncode, stdout, stderr)``. ``env`` None inherits ours;
    ``user``: see Process. A non-zero exit raises ProcessError when ``check`` (``hint``: see
    ``failure``)."""
    with Process(args, cwd=cwd, input=input, env=env, hint=hint, user=user) as proc:
        return proc.finish(check=check, timeout=timeout)


def stream(args: Sequence[str], *, cwd: str | None = None, input: bytes | None = None,
           env: dict[str, str] | None = None, new_session: bool = False, read_size: int = READ_SIZE,
           hint: str | None = None) -> Generator[bytes, None, None]:
    """Yield a command's stdout in chunks as it comes; raise ProcessError after the last chunk
    when the command failed. The command starts at the first ``next()``. Closing the generator
    early kills the child and reaps it, and raises nothing."""
    with Process(args, cwd=cwd, input=input, env=env, new_session=new_session, read_size=read_size,
                 hint=hint) as proc:
        yield from proc.chunks()
        proc.finish()


def spawn_detached(args: Sequence[str], *, env: dict[str, str] | None = None, cwd: str = "/") -> None:
    """Start a command that outlives the caller and is never waited for (a background agent):
    its own session, stdin, stdout and stderr on /dev/null, no other descriptor of the caller's
    (git, or an ssh session, waits for every copy of its pipes to close)."""
    try:
        subprocess.Popen(list(args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True,
                                 cwd=cwd, env=env)
    except OSError as exc:
        raise _cannot_start(args, cwd, exc) from None
