"""What systemd gives a service, for tests on a machine where systemd is not PID 1: the socket it
listens on for sd_notify messages, the JOURNAL_STREAM it sets, the unit files we ship.

``NotifySocket`` is the manager's side of the notify protocol: an AF_UNIX datagram socket bound
to a path or to a name in the abstract namespace, whose ``NOTIFY_SOCKET`` a real `hookagent run`
gets in its environment. ``messages()`` takes what arrived since, without waiting: tests wait
for progress with wait_until, never for a time.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "contrib" / "systemd"


class NotifySocket:
    def __init__(self, where: Path | None = None) -> None:
        """Bound to the path ``where``, or (None) to a random name in the abstract namespace."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if where is None:
            name = f"hookagent-test-{os.getpid()}-{os.urandom(4).hex()}"
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            self.sock.bind(str(where))
            self.env_value = str(where)
        self.sock.setblocking(False)
        self.received: list[dict[str, str]] = []

    def messages(self) -> list[dict[str, str]]:
        """Every message so far, each as its KEY=VALUE lines (after close: those that came)."""
        while self.sock.fileno() >= 0:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                break
            self.received.append(dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line))
        return self.received

    def saw(self, key: str, value: str | None = None) -> int:
        """How many messages carried ``key`` (with ``value``, when given)."""
        return sum(1 for m in self.messages() if key in m and (value is None or m[key] == value))

    def close(self) -> None:
        self.messages()
        self.sock.close()

    def __enter__(self) -> "NotifySocket":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def journal_stream(fd: int) -> str:
    """The JOURNAL_STREAM value systemd would set for a stderr at ``fd``: DEVICE:INODE."""
    st = os.fstat(fd)
    return f"{st.st_dev}:{st.st_ino}"


def unit_settings(path: Path) -> dict[str, list[str]]:
    """A unit file's ``Key=value`` settings (every value of a key that appears more than once)."""
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def unit_environment(path: Path, **specifiers: str) -> dict[str, str]:
    """The variables a unit's ``Environment=`` lines set (specifiers such as ``C`` for ``%C``
    replaced by the given values)."""
    env: dict[str, str] = {}
    for value in unit_settings(path).get("Environment", []):
        for letter, replacement in specifiers.items():
            value = value.replace(f"%{letter}", replacement)
        for pair in value.split():
            key, _, val = pair.partition("=")
            env[key] = val
    return env
