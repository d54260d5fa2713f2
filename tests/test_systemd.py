"""Running the agent as a systemd service: the unit files we ship, and the notify protocol spoken
by a real `hookagent run` to a real datagram socket (systemd is not PID 1 here: the test is the
manager's side, testing/systemd.py), against the local tracker (hookagent.devserver)."""
from __future__ import annotations

import grp
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hookagent.devserver import DevServer
from testing.site import TOKEN, Site
from testing.systemd import UNITS, NotifySocket, unit_settings
from testing.wait import PATIENCE, wait_until

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="needs systemd-analyze (Debian: apt-get install systemd)")
HOOKAGENT = Path(sys.executable).parent / "hookagent"


def _installed_copy(unit: str, folder: Path, name: str | None = None) -> Path:
    """The unit as installed on this machine: ExecStart names this checkout's hookagent (verify
    checks that the command exists and is executable)."""
    text = (UNITS / unit).read_text()
    assert "ExecStart=/opt/hookagent/.venv/bin/hookagent " in text
    path = folder / (name or unit)
    path.write_text(text.replace("ExecStart=/opt/hookagent/.venv/bin/hookagent ", f"ExecStart={HOOKAGENT} "))
    return path


# ---------------------------------------------------------------------- the unit files
@needs_analyze
@pytest.mark.parametrize("unit, instance", [("hookagent.service", None),
                                            ("hookagent@.service", "hookagent@team-a.service")])
def test_the_units_verify_cleanly_with_systemd_analyze(tmp_path, unit, instance):
    path = _installed_copy(unit, tmp_path, instance)
    proc = subprocess.run([ANALYZE, "verify", "--man=no", str(path)], capture_output=True, text=True,
                          timeout=PATIENCE)
    # verify exits 0 on an unknown key or a value it cannot parse: a clean run prints nothing.
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", proc.stdout + proc.stderr
    # The exposure systemd-analyze security computes offline (0 best, 100 worst): "OK" below 40.
    security = subprocess.run([ANALYZE, "security", "--offline=yes", "--threshold=25", str(path)],
                              capture_output=True, text=True, timeout=PATIENCE)
    assert security.returncode == 0, security.stdout[-2000:] + security.stderr
    settings = unit_settings(path)
    assert settings["Type"] == ["notify"] and settings["User"] == ["hookagent"]
    assert settings["ProtectSystem"] == ["strict"] and settings["ReadWritePaths"] == ["/var/spool/hookagent"]
    assert settings["NoNewPrivileges"] == ["yes"] and settings["PrivateTmp"] == ["yes"]
    assert settings["ProtectHome"] == ["read-only"], "the agent reads repositories under /home"
    assert settings["WatchdogSec"] and settings["KillMode"] == ["mixed"]
    assert [c.split(":")[0] for c in settings["LoadCredential"]] == ["tracker-token"]
    assert " run --config " in settings["ExecStart"][0]


def test_the_template_is_the_unit_with_an_instance_per_config():
    """The two files cannot drift apart: the template differs only in its comments, its
    description and what names the instance's config and token."""
    plain, template = (unit_settings(UNITS / name) for name in ("hookagent.service", "hookagent@.service"))
    differs = {k for k in plain.keys() | template.keys() if plain.get(k) != template.get(k)}
    assert differs == {"Description", "ExecStart", "LoadCredential"}
    assert template["ExecStart"][0].endswith("--config /etc/hookagent/%i.yaml")
    assert template["LoadCredential"] == ["tracker-token:/etc/hookagent/%i.token"]


# ---------------------------------------------------------------------- sd_notify, for real
def _run(site: Site, notify: NotifySocket, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hookagent", "run", "--config", str(site.config_path)],
                            env={**os.environ, "NOTIFY_SOCKET": notify.env_value, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _ended(proc: subprocess.Popen) -> str:
    """Wait for ``proc`` to end; its stderr."""
    try:
        return proc.communicate(timeout=PATIENCE)[1]
    except BaseException:
        proc.kill()
        raise


@pytest.mark.parametrize("where", ["path", "abstract"])
def test_run_says_ready_once_it_can_deliver_and_stopping_at_sigterm(tmp_path, where):
    """READY=1 before the first request (the spool, the ledger, the agent's lock and the sink
    are there), STOPPING=1 as soon as SIGTERM comes, while the request in flight still is."""
    with DevServer(token=TOKEN) as server, NotifySocket(tmp_path / "notify" if where == "path" else None) as notify:
        site = Site(tmp_path, server.url, tracker={"timeout": 600})
        site.enqueue_fake_commits(3)
        server.hold()       # the first request waits: the agent is in it when it is told to stop
        proc = _run(site, notify)
        try:
            assert wait_until(lambda: server.held() == 1 or proc.poll() is not None), "no request came"
            assert proc.poll() is None, proc.stderr.read()
            said = [m for m in notify.messages() if "READY" in m]
            assert [m["READY"] for m in said] == ["1"], f"READY=1 once, before the first request: {notify.received}"
            assert "3 due" in said[0]["STATUS"]
            spool = Path(site.data["spool_dir"])
            assert (spool / "ledger.sqlite3").exists()
            assert any(n.startswith(f"{proc.pid}-") for n in os.listdir(spool / "locks")), "its lock is taken"
            proc.send_signal(signal.SIGTERM)
            assert wait_until(lambda: notify.saw("STOPPING", "1") or proc.poll() is not None)
            assert notify.saw("STOPPING", "1") == 1 and server.held() == 1, "said while the request is in flight"
        finally:
            server.release()
        err = _ended(proc)
    assert proc.returncode == 0, err
    assert len(server.received()) == 1, "the request in flight was finished, no new one started"
    keys = [k for m in notify.received for k in m if k in ("READY", "STOPPING")]
    assert keys == ["READY", "STOPPING"]


def test_the_status_line_tells_what_was_sent_and_what_waits(tmp_path):
    with DevServer(token=TOKEN) as server, NotifySocket(tmp_path / "notify") as notify:
        site = Site(tmp_path, server.url)
        site.enqueue_fake_commits(3)
        proc = _run(site, notify)
        try:
            assert wait_until(lambda: any("sent 3 commit(s) since start; queue: 0 due, 0 deferred" in m.get("STATUS", "")
                                          for m in notify.messages()) or proc.poll() is not None), notify.received
            site.enqueue_fake_commits(1, prefix="d")
            assert wait_until(lambda: "sent 4 commit(s)" in notify.messages()[-1].get("STATUS", "")
                              or proc.poll() is not None), notify.received
        finally:
            proc.send_signal(signal.SIGTERM)
        err = _ended(proc)
    assert proc.returncode == 0, err
    statuses = [m["STATUS"] for m in notify.received if "STATUS" in m]
    assert all(a != b for a, b in zip(statuses, statuses[1:])), f"sent when it changes: {statuses}"


def test_a_held_queue_shows_in_the_status_line(tmp_path):
    with DevServer(token=TOKEN) as server, NotifySocket(tmp_path / "notify") as notify:
        site = Site(tmp_path, server.url)
        site.set_token("wrong-token")
        site.enqueue_fake_commits(2)
        proc = _run(site, notify)
        try:
            assert wait_until(lambda: any("HELD" in m.get("STATUS", "") for m in notify.messages())
                              or proc.poll() is not None), notify.received
        finally:
            proc.send_signal(signal.SIGTERM)
        err = _ended(proc)
    assert proc.returncode == 0, err
    held = next(m["STATUS"] for m in notify.received if "HELD" in m.get("STATUS", ""))
    assert "2 due" in held and "wrong-token" not in held and "refused the token" in held


def test_an_agent_that_cannot_start_never_says_ready(tmp_path):
    """A missing token: exit 2 before READY=1 (systemd marks the start failed), and the reason
    in STATUS= (what `systemctl status` shows)."""
    with DevServer(token=TOKEN) as server, NotifySocket(tmp_path / "notify") as notify:
        site = Site(tmp_path, server.url)
        site.token_file.unlink()
        proc = _run(site, notify)
        err = _ended(proc)
    assert proc.returncode == 2, err
    assert notify.saw("READY") == 0
    status = [m["STATUS"] for m in notify.messages() if "STATUS" in m]
    assert len(status) == 1 and status[0].startswith("cannot start: tracker.token_file: cannot read"), status


def test_the_watchdog_is_fed_by_the_loops_heartbeat(tmp_path):
    """WATCHDOG=1 comes with the heartbeat (each pass, request, record, step of a wait), and a
    WatchdogSec= shorter than the longest step the heartbeat allows (a request of
    tracker.timeout, + heartbeat.MARGIN, + heartbeat.EVERY) is extended by WATCHDOG_USEC=."""
    from hookagent.agent import heartbeat
    with DevServer(token=TOKEN) as server, NotifySocket(tmp_path / "notify") as notify:
        site = Site(tmp_path, server.url)      # tracker.timeout: 5
        site.enqueue_fake_commits(2)
        proc = _run(site, notify, WATCHDOG_USEC="1000000")
        try:
            assert wait_until(lambda: notify.saw("WATCHDOG", "1") >= 3 or proc.poll() is not None), notify.received
        finally:
            proc.send_signal(signal.SIGTERM)
        err = _ended(proc)
    assert proc.returncode == 0, err
    asked = [int(m["WATCHDOG_USEC"]) for m in notify.received if "WATCHDOG_USEC" in m]
    assert asked == [int((5 + heartbeat.MARGIN + heartbeat.EVERY) * 1_000_000)], notify.received
    order = [k for m in notify.received for k in m if k in ("WATCHDOG_USEC", "READY")]
    assert order == ["WATCHDOG_USEC", "READY"], "the longer watchdog is asked for before READY=1"
    assert len(server.received()) == 2


def _heartbeats(site: Site, pid: int) -> set[int]:
    """The LAST times the agent ``pid`` has written in its lock file's heartbeat, seen so far."""
    from hookagent.agent import heartbeat
    locks = Path(site.data["spool_dir"]) / "locks"
    seen = set()
    for name in os.listdir(locks):
        if name.startswith(f"{pid}-"):
            beat = heartbeat.read(str(locks / name))
            if beat is not None and beat.last is not None:
                seen.add(beat.last)
    return seen


def test_no_watchdog_message_unless_systemd_watches_this_process(tmp_path):
    """WATCHDOG_PID naming another process (our parent's, inherited): no WATCHDOG=1 from us,
    however many heartbeats the agent writes."""
    with DevServer(token=TOKEN) as server, NotifySocket(tmp_path / "notify") as notify:
        site = Site(tmp_path, server.url)
        site.enqueue_fake_commits(1)
        proc = _run(site, notify, WATCHDOG_USEC="1000000", WATCHDOG_PID=str(os.getpid()))
        try:
            assert wait_until(lambda: notify.saw("READY") or proc.poll() is not None)
            beats: set[int] = set()

            def three_beats() -> bool:
                # The first is the one the agent wrote as it was built; when the third is there,
                # every writer of the second (ours included) has run.
                beats.update(_heartbeats(site, proc.pid))
                return len(beats) >= 3 or proc.poll() is not None
            assert wait_until(three_beats), beats
        finally:
            proc.send_signal(signal.SIGTERM)
        err = _ended(proc)
    assert proc.returncode == 0, err
    assert notify.saw("READY", "1") == 1 and len(server.received()) == 1
    assert notify.saw("WATCHDOG") == 0 and notify.saw("WATCHDOG_USEC") == 0


# ---------------------------------------------------------------------- the unit's recipe, for real
def test_the_units_recipe_its_own_user_a_credential_and_another_users_push(tmp_path):
    """What the unit sets up, done by hand where systemd cannot run: the agent as a user of its
    own (User=) in the pushers' group (spool_group), the token only in $CREDENTIALS_DIRECTORY
    (LoadCredential=; the token file is root's, 0600), the unit's Environment= lines (the crash
    log's folder; git's safe.directory: the repository is another user's). A real push by the
    repository's owner is read by that agent, with git, and delivered. Root installed the hook
    for the owner and `hookagent doctor` as the owner finds nothing wrong."""
    from testing import accounts
    why = accounts.can_make_accounts() or (None if shutil.which("groupadd") else "needs groupadd")
    python = accounts.system_python()
    if why or python is None:
        pytest.skip(why or "needs a system Python (3.10 or newer, with venv) that every user can run")
    base = accounts.shared_folder("hookagent-service-")
    made: list = []
    try:
        group = accounts.create_group()
        made.append(lambda: accounts.remove_group(group))
        service = accounts.create(base, prefix="hks", groups=(group,))
        made.append(lambda: accounts.remove(service))
        pusher = accounts.create(base, prefix="hkp", groups=(group,))
        made.append(lambda: accounts.remove(pusher))
        venv = accounts.hookagent_venv(base / "python", python)
        _push_through_the_units_recipe(base, venv, group, service, pusher)
    finally:
        for undo in reversed(made):
            undo()
        shutil.rmtree(base, ignore_errors=True)


def _trusting(repo: Path) -> dict[str, str]:
    """Root's environment with git's safe.directory for ``repo`` (another user's)."""
    return dict(os.environ, GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="safe.directory", GIT_CONFIG_VALUE_0=str(repo))


def _push_through_the_units_recipe(base: Path, venv: Path, group: str, service, pusher) -> None:
    from testing.systemd import unit_environment
    etc, spool, creds, cache = base / "etc", base / "spool", base / "credentials", base / "cache"
    etc.mkdir(mode=0o755)
    # The README's steps: a spool of the service's, shared with the group; the token root's only.
    spool.mkdir()
    os.chown(spool, service.uid, grp.getgrnam(group).gr_gid)
    os.chmod(spool, 0o2770)
    with DevServer(token=TOKEN) as server, NotifySocket(base / "notify") as notify:
        os.chmod(base / "notify", 0o777)
        site = Site(etc, server.url, spool_dir=str(spool), spool_group=group,
                    tracker={"token_credential": "tracker-token"})
        site.config_path.chmod(0o644)
        assert site.token_file.stat().st_uid == 0 and site.token_file.stat().st_mode & 0o077 == 0
        # What LoadCredential=tracker-token:/etc/hookagent/token leaves for the service alone.
        creds.mkdir(mode=0o500)
        (creds / "tracker-token").write_text(TOKEN + "\n")
        (creds / "tracker-token").chmod(0o400)
        service.give(creds)
        # The owner's repository, with the hook installed by the owner; its clone.
        repos = base / "repos"
        repos.mkdir(mode=0o755)
        pusher.give(repos)
        repo, clone = repos / "central.git", repos / "clone"
        pusher.run(["git", "init", "-q", "--bare", "-b", "main", repo])
        # Root installs for the owner, as an administrator does: the check it runs as the owner
        # asks no token of it (agent.autostart is off: the service delivers).
        install = subprocess.run([str(venv), "-m", "hookagent", "install", str(repo), "--config", str(site.config_path)],
                                 env=_trusting(repo), capture_output=True, text=True, timeout=PATIENCE)
        assert install.returncode == 0 and install.stderr == "", install.stderr
        assert install.stdout.startswith(f"checked as {pusher.name} (uid {pusher.uid}), the repository's owner:")
        assert str(site.token_file) not in install.stdout
        pusher.run(["git", "init", "-q", "-b", "main", clone])
        pusher.run(["git", "-C", clone, "commit", "-q", "--allow-empty", "-m", "Before the service [#101]"])
        push = pusher.run(["git", "-C", clone, "push", "-q", repo, "HEAD:main"])
        assert "hookagent" not in push.stderr, push.stderr

        unit = UNITS / "hookagent.service"
        env = service.env(**unit_environment(unit, C=str(cache)), CREDENTIALS_DIRECTORY=str(creds),
                          NOTIFY_SOCKET=notify.env_value)
        cache.mkdir(mode=0o755)
        service.give(cache)
        proc = subprocess.Popen([str(venv), "-m", "hookagent", "run", "--config", str(site.config_path)],
                                cwd="/", env=env, user=service.uid, group=service.gid,
                                extra_groups=list(service.groups), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            assert wait_until(lambda: notify.saw("READY", "1") or proc.poll() is not None), notify.received
            pusher.run(["git", "-C", clone, "commit", "-q", "--allow-empty", "-m", "Through the service [#102]"])
            push = pusher.run(["git", "-C", clone, "push", "-q", repo, "HEAD:main"])
            assert "hookagent" not in push.stderr, push.stderr
            shas = pusher.run(["git", "-C", clone, "log", "--format=%H"]).stdout.split()
            assert wait_until(lambda: sorted(r["commit_id"] for r in server.received()) == sorted(shas)
                              or proc.poll() is not None), server.received()
            # The doctor, as the pushing user, finds nothing that would stop delivery.
            doctor = subprocess.run([str(venv), "-m", "hookagent", "doctor", str(repo), "--user", pusher.name],
                                    env=_trusting(repo), capture_output=True, text=True, timeout=PATIENCE)
            assert doctor.returncode == 0, doctor.stdout + doctor.stderr
            assert "read by the agent that delivers" in doctor.stdout and f"pid {proc.pid}" in doctor.stdout, doctor.stdout
        finally:
            proc.send_signal(signal.SIGTERM)
        err = _ended(proc)
    assert proc.returncode == 0, err
    assert "dubious ownership" not in err and "warning" not in err, err
    # No terminal, no JOURNAL_STREAM: `run` logs to its stderr (under systemd: the journal), once.
    assert sum(" INFO sent " in line for line in err.splitlines()) == 2, err
    assert not (spool / "agent.log").exists()
