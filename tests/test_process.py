"""hookagent.process: the one runner. Errors that say what failed, no deadlock on big pipes,
and no zombie, fd or thread left behind whichever way a command ends."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from hookagent import process
from hookagent.errors import ProcessError, VcsError

BIG = 8 << 20   # far more than a pipe holds (64 KiB by default, 1 MiB at most unprivileged)


@pytest.fixture(autouse=True)
def deadline():
    """A deadlock fails the test instead of hanging the suite."""
    def expired(signum, frame):
        raise AssertionError("deadline passed: the runner is stuck")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


@pytest.fixture
def no_leaks():
    """After the test: no open fd and no thread that was not there before it."""
    fds, threads = open_fds(), set(threading.enumerate())
    yield
    assert open_fds() <= fds
    assert set(threading.enumerate()) <= threads


def reaped(pid: int) -> bool:
    """True when pid is no child of ours any more (reaped) and does not exist."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not os.path.exists(f"/proc/{pid}")
    return False


def test_run_returns_code_stdout_and_stderr(no_leaks):
    code, out, err = process.run(["sh", "-c", "echo out; echo err >&2"])
    assert (code, out, err) == (0, b"out\n", b"err\n")
    result = process.run(["sh", "-c", "exit 3"], check=False)
    assert result.returncode == 3 and result.stdout == b""


def test_a_failure_names_the_command_the_status_and_the_error_line(tmp_path, no_leaks):
    os.system(f"git init -q {tmp_path}")
    with pytest.raises(ProcessError) as info:
        process.run(["git", "-C", str(tmp_path), "log", "no-such-branch", "--"])
    exc = info.value
    assert isinstance(exc, VcsError) and exc.returncode == 128
    assert str(exc).startswith("git log failed: fatal: bad revision 'no-such-branch' (exit status 128); run `git -C ")
    assert str(exc).endswith("log no-such-branch --` to see the whole error")
    assert b"no-such-branch" in exc.stderr and exc.cmd[:3] == ["git", "-C", str(tmp_path)]


def test_the_error_line_is_the_first_fatal_one_and_a_hint_replaces_the_default(no_leaks):
    script = "echo 'warning: noise' >&2; echo 'fatal: the cause' >&2; echo 'usage: x' >&2; exit 2"
    with pytest.raises(ProcessError, match=r"^sh failed: fatal: the cause \(exit status 2\); fix it$"):
        process.run(["sh", "-c", script], hint="fix it")
    with pytest.raises(ProcessError, match=r"^sh failed \(exit status 1\)$"):
        process.run(["sh", "-c", "exit 1"], hint="")
    with pytest.raises(ProcessError, match=r"^sh failed \(killed by signal 9\)"):
        process.run(["sh", "-c", "kill -9 $$"])


def test_a_command_that_cannot_start_says_what_to_do(tmp_path, no_leaks):
    with pytest.raises(ProcessError, match=r"^no-such-tool-x is not on PATH; install no-such-tool-x or fix PATH"):
        process.run(["no-such-tool-x", "--version"], check=False)
    with pytest.raises(ProcessError, match=r"^/nowhere/svnlook not found; install svnlook there"):
        process.run(["/nowhere/svnlook", "uuid"])
    with pytest.raises(ProcessError, match=r"^cannot run git status in /nowhere/repo: no such folder"):
        process.run(["git", "status"], cwd="/nowhere/repo")
    with pytest.raises(ProcessError, match=r"no-such-tool-x is not on PATH"):
        next(process.stream(["no-such-tool-x"]))


def test_stdin_larger_than_a_pipe_is_fed_without_deadlock(no_leaks):
    data = bytes(range(256)) * (BIG // 256)
    assert process.run(["cat"], input=data).stdout == data
    assert b"".join(process.stream(["cat"], input=data)) == data
    # The child writes a pipe-full and more before it reads anything: a runner that wrote all of
    # stdin before reading stdout would wait forever.
    script = "head -c 1000000 /dev/zero; cat"
    out = process.run(["sh", "-c", script], input=data).stdout
    assert len(out) == 1000000 + len(data) and out.endswith(data)


def test_stderr_larger_than_a_pipe_never_blocks_the_child(no_leaks):
    script = "head -c 1000000 /dev/zero | tr '\\0' e >&2; echo done"
    assert b"".join(process.stream(["sh", "-c", script])) == b"done\n"
    code, out, err = process.run(["sh", "-c", script])
    assert out == b"done\n" and len(err) == 1000000


def test_a_stream_fails_after_its_output_with_the_error_line(no_leaks):
    got = []
    with pytest.raises(ProcessError, match=r"^sh failed: fatal: boom \(exit status 3\)"):
        for chunk in process.stream(["sh", "-c", "echo out; echo 'fatal: boom' >&2; exit 3"]):
            got.append(chunk)
    assert b"".join(got) == b"out\n"


@pytest.mark.parametrize("new_session", [False, True])
def test_a_stream_closed_early_kills_and_reaps_the_child(new_session, no_leaks):
    chunks = process.stream(["sh", "-c", "echo $$; exec yes"], new_session=new_session, read_size=1 << 20)
    first = next(chunks)
    pid = int(first.split(b"\n")[0])
    assert not reaped(pid)
    chunks.close()          # raises nothing: stopping early is not a failure
    assert reaped(pid)


def test_a_stream_closed_early_while_its_stdin_is_still_being_fed(no_leaks):
    """The child never reads its stdin: the feeding thread must not outlive the close. (A close
    that waited for the child instead would outlast the test's deadline: it sleeps 600 s.)"""
    chunks = process.stream(["sh", "-c", "echo $$; exec sleep 600"], input=b"x" * BIG)
    pid = int(next(chunks))
    chunks.close()
    assert reaped(pid)


def test_an_exception_in_the_reader_still_reaps_the_child(no_leaks):
    chunks = process.stream(["sh", "-c", "echo $$; exec yes"])
    pid = None
    with pytest.raises(RuntimeError):
        try:
            for chunk in chunks:
                pid = int(chunk.split(b"\n")[0])
                raise RuntimeError("the reader gave up")
        finally:
            chunks.close()
    assert pid is not None and reaped(pid)


def test_a_process_runs_beside_us_and_close_stops_it(no_leaks):
    with process.Process([sys.executable, "-c", "print(42)"]) as done:
        while done.poll() is None:
            time.sleep(0.01)
        assert done.finish() == (0, b"42\n", b"")
    with process.Process(["sleep", "60"], input=b"x" * BIG) as slow:   # its stdin never read
        pid = slow.pid
        assert slow.poll() is None
    assert reaped(pid) and slow.returncode == -signal.SIGKILL


def test_a_timeout_stops_the_command_and_raises(no_leaks):
    """(A timeout that waited for the command instead would outlast the test's deadline.)"""
    with pytest.raises(ProcessError, match=r"^sleep 600 did not finish within 0.5 s and was stopped"):
        process.run(["sleep", "600"], timeout=0.5, check=False)
    assert process.run(["true"], timeout=30) == (0, b"", b"")


def test_describe_names_the_program_and_its_subcommand():
    assert process.describe(["git", "-C", "/r", "-c", "core.quotePath=false", "log", "--stdin"]) == "git log"
    assert process.describe(["/usr/bin/svnlook", "propget", "--revprop", "-r", "1"]) == "svnlook propget"
    assert process.describe(["svn", "--non-interactive"]) == "svn"
