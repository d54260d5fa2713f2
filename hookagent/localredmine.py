"""A local Redmine, started from Debian's package (redmine, redmine-sqlite, ruby-webrick), for
`hookagent demo --api redmine`, the tests (testing/redmine.py) and benchmarks/bench_redmine.py.

:class:`Redmine` runs on a copy of the database the package made (``DATABASE_URL``), so issue
numbers start at 1 and nothing of an earlier run is seen. It runs as ``www-data`` (Rails writes
its log and cache where the package lets that user write; so this needs root), served by
webrick (Debian 12 has no puma or thin) on a free port of 127.0.0.1, in a process group of its
own that :meth:`Redmine.stop` ends. The REST API is switched on and the admin's API key read with
``bin/rails runner``; everything else (users, a project, issues, journals) goes through REST.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

HOME = Path("/usr/share/redmine")
DATABASE = Path("/var/lib/dbconfig-common/sqlite3/redmine/instances/default/redmine_default")
USER = "www-data"
PATIENCE = 120.0
HOW = ("as root: apt-get install --no-install-recommends redmine redmine-sqlite ruby-webrick (with"
       " debconf set to make the SQLite database: scripts/install-redmine in hookagent's source does"
       " both) and add gem \"webrick\" to /usr/share/redmine/Gemfile.local")


class Unavailable(Exception):
    """Redmine cannot run here; the message says why and what to do."""


class RestError(AssertionError):
    """A REST call answered another status than expected (an AssertionError: tests show it as one)."""


def installed() -> str | None:
    """None when a local Redmine can be started here; else why not, and how to get one."""
    if not (HOME / "config.ru").exists() or not DATABASE.exists():
        return f"Redmine is not installed; {HOW}"
    if 'gem "webrick"' not in _read(HOME / "Gemfile.local"):
        return f"Redmine has no app server; {HOW}"
    if os.geteuid() != 0:
        return "a local Redmine runs as www-data, which needs root"
    for tool in ("rackup",):
        if shutil.which(tool) is None:
            return f"{tool} is missing; {HOW}"
    return None


def _as_user() -> dict:
    """Popen's arguments that run a child as www-data (our own child: we reap it)."""
    return {"user": USER, "group": USER, "extra_groups": []}


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    @classmethod
    def remote(cls, url: str, key: str) -> "Redmine":
        """A Redmine running elsewhere, reached with an admin's ``key`` (never started or stopped here)."""
        self = cls.__new__(cls)
        self.root, self.port, self.url, self.key = None, 0, url.rstrip("/"), key
        self.project, self.proc, self.log = "hookagent", None, None
        return self

    # ------------------------------------------------------------------ lifetime
    def start(self) -> "Redmine":
        why = installed()
        if why:
            raise Unavailable(why)
        db = self.root / "redmine.sqlite3"
        shutil.copyfile(DATABASE, db)
        shutil.chown(db, USER, USER)
        shutil.chown(self.root, USER, USER)
        env = self._env(db)
        out = subprocess.run(
            ["bin/rails", "runner",
             'Setting.rest_api_enabled = "1"; puts "key=" + User.find_by_login("admin").api_key'],
            cwd=HOME, env=env, capture_output=True, text=True, timeout=PATIENCE, **_as_user())
        keys = [line[4:] for line in out.stdout.splitlines() if line.startswith("key=")]
        if out.returncode != 0 or not keys:
            raise Unavailable(f"bin/rails runner failed ({out.returncode}): {out.stderr.strip()[-300:]}")
        self.key = keys[0]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["rackup", "-s", "webrick", "-E", "production",
                 "-o", "127.0.0.1", "-p", str(self.port), "config.ru"],
                cwd=HOME, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **_as_user())
        deadline = time.monotonic() + PATIENCE
        while not self._answers() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not self._answers() or (self.proc is not None and self.proc.poll() is not None):
            self.stop()
            raise Unavailable(f"Redmine did not answer on {self.url}; its output: {_read(self.log)[-300:]}")
        return self

    def runner(self, code: str) -> str:
        """``bin/rails runner CODE`` on this Redmine's database (a local one); its output."""
        if self.root is None:
            raise Unavailable("bin/rails runner needs the local Redmine")
        out = subprocess.run(["bin/rails", "runner", code], cwd=HOME, env=self._env(self.root / "redmine.sqlite3"),
                             capture_output=True, text=True, timeout=PATIENCE, **_as_user())
        if out.returncode != 0:
            raise RestError(f"bin/rails runner failed ({out.returncode}): {out.stderr.strip()[-300:]}")
        return out.stdout

    def _env(self, db: Path) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH") or "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.root),
                "LANG": "C.UTF-8", "RAILS_ENV": "production", "DATABASE_URL": f"sqlite3:{db}"}

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            return True   # ended: start() reports it below
        import requests
        try:
            return requests.get(self.url + "/users/current.json", headers=self.headers(),
                                timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        try:
            self._end()
        finally:
            if self.root is not None:
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
        import requests
        response = requests.request(method, self.url + path, headers=self.headers(key),
                                    data=json.dumps(body) if body is not None else None, timeout=60)
        if response.status_code != expect:
            raise RestError(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
        return response.json() if response.content.strip() else None

    def setup_project(self, identifier: str = "hookagent") -> int:
        """A project with every tracker (made once); returns its id."""
        self.project = identifier
        try:
            return self.call("GET", f"/projects/{identifier}.json")["project"]["id"]
        except RestError:
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

    def new_issue(self, subject: str, tracker_id: int | None = None) -> int:
        issue: dict[str, Any] = {"project_id": self.project, "subject": subject}
        if tracker_id is not None:
            issue["tracker_id"] = tracker_id
        made = self.call("POST", "/issues.json", {"issue": issue}, expect=201)
        return made["issue"]["id"]

    def issue(self, number: int) -> dict:
        """``GET /issues/N.json?include=journals``: the issue with its notes and changes."""
        return self.call("GET", f"/issues/{number}.json?include=journals")["issue"]

    def notes(self, number: int) -> list[dict]:
        """The journals of issue ``number`` that hold a note."""
        return [j for j in self.issue(number).get("journals", []) if j.get("notes")]

    def statuses(self) -> dict[str, int]:
        return {s["name"]: s["id"] for s in self.call("GET", "/issue_statuses.json")["issue_statuses"]}


