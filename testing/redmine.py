"""A real Redmine for tests, the demo and the benchmark: Debian's package on SQLite, served by
webrick on 127.0.0.1.

``scripts/install-redmine`` installs it (``scripts/setup --test`` runs that; :func:`available`
runs it again as root when the package is missing, as the suite installs what it needs). Each
:class:`Redmine` runs on a copy of the database the package made (``DATABASE_URL``), so issue
numbers start at 1 and nothing of an earlier run is seen; it runs as ``www-data`` (Rails writes
its log and cache where the package lets that user write), in a process group of its own, and
:meth:`Redmine.stop` ends that group. The REST API is switched on and the admin's API key read
with ``bin/rails runner``; everything else (users, a project, issues, reading journals back) goes
through the REST API, as hookagent would see it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from testing.repos import free_port
from testing.wait import PATIENCE, wait_until

HOME = Path("/usr/share/redmine")
DATABASE = Path("/var/lib/dbconfig-common/sqlite3/redmine/instances/default/redmine_default")
INSTALLER = Path(__file__).resolve().parent.parent / "scripts" / "install-redmine"
USER = "www-data"


class Unavailable(Exception):
    """Redmine cannot run here; the message says why and what to do."""


def available() -> None:
    """Return when Redmine can run here (installing it as root when missing); else raise
    Unavailable with the reason."""
    if os.geteuid() != 0:
        raise Unavailable("Redmine runs as www-data, which needs root (run the tests as root)")
    if not (HOME / "config.ru").exists() or not DATABASE.exists() \
            or 'gem "webrick"' not in _read(HOME / "Gemfile.local"):
        proc = subprocess.run([str(INSTALLER)], capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"status {proc.returncode}"])[-1]
            raise Unavailable(f"cannot install Redmine: {last}")
    for tool in ("rackup", "runuser"):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is missing (scripts/install-redmine installs Redmine with it)")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


class Redmine:
    """One running Redmine. ``url``, ``key`` (the admin's API key), ``project`` (its identifier)."""

    def __init__(self) -> None:
        # Its own folder in /tmp, www-data's: pytest's tmp_path is under a folder only root may enter.
        self.root = Path(tempfile.mkdtemp(prefix="hookagent-redmine-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = ""
        self.project = "hookagent"
        self.proc: subprocess.Popen | None = None
        self.log = self.root / "webrick.log"

    # ------------------------------------------------------------------ lifetime
    def start(self) -> "Redmine":
        available()
        db = self.root / "redmine.sqlite3"
        shutil.copyfile(DATABASE, db)
        shutil.chown(db, USER, USER)
        shutil.chown(self.root, USER, USER)
        env = self._env(db)
        out = subprocess.run(
            ["runuser", "-u", USER, "--", "bin/rails", "runner",
             'Setting.rest_api_enabled = "1"; puts "key=" + User.find_by_login("admin").api_key'],
            cwd=HOME, env=env, capture_output=True, text=True, timeout=PATIENCE)
        keys = [line[4:] for line in out.stdout.splitlines() if line.startswith("key=")]
        if out.returncode != 0 or not keys:
            raise Unavailable(f"bin/rails runner failed ({out.returncode}): {out.stderr.strip()[-300:]}")
        self.key = keys[0]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["runuser", "-u", USER, "--", "rackup", "-s", "webrick", "-E", "production",
                 "-o", "127.0.0.1", "-p", str(self.port), "config.ru"],
                cwd=HOME, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_until(self._answers, interval=0.1):
            self.stop()
            raise Unavailable(f"Redmine did not answer on {self.url}; its output: {_read(self.log)[-300:]}")
        return self

    def _env(self, db: Path) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH") or "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.root),
                "LANG": "C.UTF-8", "RAILS_ENV": "production", "DATABASE_URL": f"sqlite3:{db}"}

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            return True   # ended: start() reports it below
        try:
            return requests.get(self.url + "/users/current.json", headers=self.headers(),
                                timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        try:
            self._end()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _end(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    # ------------------------------------------------------------------ REST
    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"X-Redmine-API-Key": key or self.key, "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict | None = None, *, expect: int = 200,
             key: str | None = None) -> Any:
        response = requests.request(method, self.url + path, headers=self.headers(key),
                                    data=json.dumps(body) if body is not None else None, timeout=60)
        if response.status_code != expect:
            raise AssertionError(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
        return response.json() if response.content.strip() else None

    def setup_project(self, identifier: str = "hookagent") -> int:
        """A project with every tracker (made once); returns its id."""
        self.project = identifier
        try:
            return self.call("GET", f"/projects/{identifier}.json")["project"]["id"]
        except AssertionError:
            pass
        trackers = [t["id"] for t in self.call("GET", "/trackers.json")["trackers"]]
        made = self.call("POST", "/projects.json", {"project": {
            "name": identifier, "identifier": identifier, "tracker_ids": trackers}}, expect=201)
        return made["project"]["id"]

    def user(self, login: str, *, firstname: str = "", lastname: str = "Tester",
             role: str = "Developer") -> dict:
        """A user, member of the project with ``role`` (made once); returns it with its API key."""
        found = [u for u in self.call("GET", f"/users.json?name={login}")["users"] if u["login"] == login]
        if found:
            return self.call("GET", f"/users/{found[0]['id']}.json")["user"]
        made = self.call("POST", "/users.json", {"user": {
            "login": login, "firstname": firstname or login.title(), "lastname": lastname,
            "mail": f"{login}@example.com", "password": "hookagent-test-pw"}}, expect=201)["user"]
        roles = {r["name"]: r["id"] for r in self.call("GET", "/roles.json")["roles"]}
        self.call("POST", f"/projects/{self.project}/memberships.json", {"membership": {
            "user_id": made["id"], "role_ids": [roles[role]]}}, expect=201)
        return self.call("GET", f"/users/{made['id']}.json")["user"]

    def new_issue(self, subject: str) -> int:
        made = self.call("POST", "/issues.json", {"issue": {
            "project_id": self.project, "subject": subject}}, expect=201)
        return made["issue"]["id"]

    def issue(self, number: int) -> dict:
        """``GET /issues/N.json?include=journals``: the issue with its notes and changes."""
        return self.call("GET", f"/issues/{number}.json?include=journals")["issue"]

    def notes(self, number: int) -> list[dict]:
        """The journals of issue ``number`` that hold a note."""
        return [j for j in self.issue(number).get("journals", []) if j.get("notes")]

    def statuses(self) -> dict[str, int]:
        return {s["name"]: s["id"] for s in self.call("GET", "/issue_statuses.json")["issue_statuses"]}


def started() -> Redmine:
    """A started Redmine with its project, timed (``started_in``, seconds)."""
    began = time.monotonic()
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
