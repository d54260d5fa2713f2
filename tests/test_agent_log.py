"""Where the agent's log lines go (agent.log: file | stderr | journald, or as fits how it was
started): each line exactly once, in one place, escaped as one line wherever it goes. Real
`hookagent run` and `hookagent flush` processes against the local tracker; the journal is a
stderr whose device and inode JOURNAL_STREAM names (what systemd sets), or, for an agent whose
stderr is not the journal, a datagram socket at /run/systemd/journal/socket in a mount
namespace of the test's own."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hookagent.devserver import DevServer
from hookagent.model import Commit
from hookagent.spool import commit_entry_name, make_entry
from testing.site import TOKEN, Site
from testing.systemd import journal_stream
from testing.wait import PATIENCE, wait_until

AUTHOR = "Eve \x1b[2J\nforged line"
"""An author whose name would clear a terminal and start a line of its own, were it not escaped."""
ESCAPED = "Eve \\x1b[2J\\nforged line"
STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \d+ (INFO|WARNING|ERROR|DEBUG) ")


def _queue(site: Site) -> list[str]:
    """Two commits queued; the second by AUTHOR. Returns their ids."""
    ids = site.enqueue_fake_commits(1)
    dest = site.config.tracker.destination
    c = Commit("e000001", AUTHOR, "Escaped [#101]", date="2026-11-28T10:00:00+00:00")
    site.spool.enqueue(commit_entry_name(dest, c.commit_id), make_entry(dest, [c.to_dict()]))
    return ids + ["e000001"]


def _log_lines(site: Site) -> list[str]:
    path = Path(site.data["spool_dir"]) / "agent.log"
    return path.read_text(errors="replace").splitlines() if path.exists() else []


def _sent_lines(lines: list[str]) -> list[str]:
    """The agent's "sent COMMIT by AUTHOR" lines, stamped (file, stderr) or not (journald)."""
    return [line for line in lines if re.search(r"(^|[ >])sent [a-z]\d{6} by ", line)]


def _run_until_delivered(site: Site, server: DevServer, err_path: Path, env: dict[str, str],
                         where: str) -> subprocess.Popen:
    """`hookagent run` with stderr at ``err_path`` and ``env``; ended with SIGTERM once both
    commits are delivered and their two "sent" lines are in ``where`` (stderr or the file)."""
    def lines() -> list[str]:
        return err_path.read_text(errors="replace").splitlines() if where == "stderr" else _log_lines(site)

    with open(err_path, "wb") as err:
        env = {**os.environ, **env}
        if env.get("JOURNAL_STREAM") == "match":
            env["JOURNAL_STREAM"] = journal_stream(err.fileno())
        proc = subprocess.Popen([sys.executable, "-m", "hookagent", "run", "--config", str(site.config_path)],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        assert wait_until(lambda: len(server.received()) == 2 and len(_sent_lines(lines())) >= 2
                          or proc.poll() is not None), (err_path.read_text(), _log_lines(site))
        assert proc.poll() is None, err_path.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=PATIENCE)
        except BaseException:
            proc.kill()
            raise
    assert proc.returncode == 0, err_path.read_text()
    return proc


@pytest.mark.parametrize("setting, journal, expect", [
    (None, "match", "journald"),       # systemd's service: stderr is the journal
    ("journald", "match", "journald"),
    (None, None, "stderr"),            # a terminal, a container, another supervisor
    (None, "1:2", "stderr"),           # JOURNAL_STREAM inherited, stderr elsewhere: not the journal
    ("stderr", None, "stderr"),
    ("file", "match", "file"),         # asked for: even a service writes the file
])
def test_each_line_of_hookagent_run_goes_to_one_place_once(tmp_path, setting, journal, expect):
    with DevServer(token=TOKEN) as server:
        site = Site(tmp_path, server.url, **({"agent": {"log": setting}} if setting else {}))
        _queue(site)
        err_path = tmp_path / "stderr"
        _run_until_delivered(site, server, err_path, {"JOURNAL_STREAM": journal} if journal else {},
                             "file" if expect == "file" else "stderr")
    err = err_path.read_text(errors="replace").splitlines()
    log = _log_lines(site)
    here, elsewhere = (log, err) if expect == "file" else (err, log)
    for what in ("agent started", "sent c000000 by Ada Tester", f"sent e000001 by {ESCAPED}", "agent stopped"):
        assert sum(what in line for line in here) == 1, (what, here)
        assert not any(what in line for line in elsewhere), (what, elsewhere)
    assert not any("\x1b" in line or line.startswith("forged line") for line in err + log)
    logged = [line for line in here if "agent st" in line or "sent " in line]
    if expect == "journald":
        # journald takes <N> (the syslog priority) off and stamps the line itself.
        assert all(line.startswith("<6>") for line in logged), logged
        assert not any(STAMPED.match(line.removeprefix("<6>")) for line in logged)
    else:
        assert all(STAMPED.match(line) for line in logged), logged


def test_journal_lines_carry_their_priority(tmp_path):
    """A held queue is an error: <3> in front of its line, which journald files as PRIORITY=3."""
    with DevServer(token=TOKEN) as server:
        site = Site(tmp_path, server.url)
        site.set_token("wrong-token")
        site.enqueue_fake_commits(1)
        err_path = tmp_path / "stderr"
        with open(err_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "hookagent", "run", "--config", str(site.config_path)],
                                    stdout=subprocess.DEVNULL, stderr=err,
                                    env={**os.environ, "JOURNAL_STREAM": journal_stream(err.fileno())})
        try:
            assert wait_until(lambda: "queue held" in err_path.read_text() or proc.poll() is not None)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=PATIENCE)
    held = [line for line in err_path.read_text().splitlines() if "queue held" in line]
    assert len(held) == 1 and held[0].startswith("<3>queue held: the tracker refused the token"), held
    assert "wrong-token" not in err_path.read_text()
    assert _log_lines(site) == []


def test_a_flush_under_systemd_logs_to_the_journal_and_by_hand_to_its_file(tmp_path):
    """`hookagent flush` started by a service (a timer's) logs to the journal; the same
    command by hand keeps its file (and prints only its summary)."""
    with DevServer(token=TOKEN) as server:
        site = Site(tmp_path, server.url)
        site.enqueue_fake_commits(1)
        err_path = tmp_path / "stderr"
        with open(err_path, "wb") as err:
            proc = subprocess.run([sys.executable, "-m", "hookagent", "flush", "--config", str(site.config_path)],
                                  stdout=subprocess.DEVNULL, stderr=err, timeout=PATIENCE,
                                  env={**os.environ, "JOURNAL_STREAM": journal_stream(err.fileno())})
        assert proc.returncode == 0, err_path.read_text()
        site.enqueue_fake_commits(1, prefix="d")
        by_hand = site.cli("flush", env=dict(os.environ))      # a process of its own, stderr a pipe
        assert by_hand.returncode == 0, by_hand.stderr
    journal = err_path.read_text().splitlines()
    assert [line for line in journal if line.startswith("<")] == ["<6>sent c000000 by Ada Tester"], journal
    assert "sent d000000" not in by_hand.stderr and "sent 1 commit(s)" in by_hand.stderr
    assert [line.split(" ", 3)[-1] for line in _log_lines(site)] == ["sent d000000 by Ada Tester"]


# ---------------------------------------------------------------------- the journal's own socket
NAMESPACE = textwrap.dedent("""
    # In a mount namespace of its own: a fresh /run/systemd, where the journal's socket is ours
    # (or, with "none", missing); run the command and print what the socket received.
    import json, os, socket, subprocess, sys
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "hookagent-test", "/run/systemd"], check=True)
    sock = None
    if sys.argv[1] == "socket":
        os.makedirs("/run/systemd/journal")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind("/run/systemd/journal/socket")
    proc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    got = []
    if sock is not None:
        sock.setblocking(False)
        while True:
            try:
                got.append(sock.recv(65536).decode())
            except BlockingIOError:
                break
    print(json.dumps({"rc": proc.returncode, "stderr": proc.stderr, "journal": got}))
""")


def _in_own_mount_namespace(mode: str, cmd: list[str]) -> dict:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1): a journal socket of the test's own at /run/systemd/journal/socket")
    if not os.path.isdir("/run/systemd"):
        pytest.skip("needs a /run/systemd folder to mount over")
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c", NAMESPACE,
                           mode, *cmd], capture_output=True, text=True, timeout=PATIENCE)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_journald_for_an_agent_whose_stderr_is_not_the_journal_uses_the_journals_socket(tmp_path):
    """agent.log: journald, and stderr is not the journal (a flush by hand, a hook's agent): one
    datagram per line to /run/systemd/journal/socket, in the journal's native protocol."""
    with DevServer(token=TOKEN) as server:
        site = Site(tmp_path, server.url, agent={"log": "journald"})
        _queue(site)
        got = _in_own_mount_namespace("socket", [sys.executable, "-m", "hookagent", "flush", "--config",
                                                 str(site.config_path)])
        assert len(server.received()) == 2
    assert got["rc"] == 0, got["stderr"]
    fields = [dict(line.split("=", 1) for line in d.splitlines()) for d in got["journal"]]
    assert [f["MESSAGE"] for f in fields] == ["sent c000000 by Ada Tester", f"sent e000001 by {ESCAPED}"]
    assert all(f["PRIORITY"] == "6" and f["SYSLOG_IDENTIFIER"] == "hookagent" for f in fields)
    assert "sent c000000" not in got["stderr"] and _log_lines(site) == []


def test_journald_without_a_journal_falls_back_to_the_file_and_says_so(tmp_path):
    with DevServer(token=TOKEN) as server:
        site = Site(tmp_path, server.url, agent={"log": "journald"})
        site.enqueue_fake_commits(1)
        got = _in_own_mount_namespace("none", [sys.executable, "-m", "hookagent", "flush", "--config",
                                               str(site.config_path)])
    assert got["rc"] == 0, got["stderr"]
    said = [line for line in got["stderr"].splitlines() if "journal" in line]
    assert len(said) == 1 and "cannot reach the journal at /run/systemd/journal/socket" in said[0], got["stderr"]
    assert [line.split(" ", 3)[-1] for line in _log_lines(site)] == ["sent c000000 by Ada Tester"]


def test_a_bad_log_setting_is_one_line_naming_the_choices(tmp_path):
    with DevServer(token=TOKEN) as server:
        site = Site(tmp_path, server.url, agent={"log": "syslog"})
        proc = subprocess.run([sys.executable, "-m", "hookagent", "run", "--config", str(site.config_path)],
                              capture_output=True, text=True, timeout=PATIENCE)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "hookagent: agent.log: 'syslog' is not one of file, stderr, journald; leave it out to log where fits how"
        " the agent was started (journald under systemd, stderr for `hookagent run` elsewhere, the log file for"
        " agents the hooks start)"]
