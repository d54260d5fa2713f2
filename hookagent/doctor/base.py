"""What every check shares: a :class:`Result` (ok, warn or fail; one line; the fix) and the user
the hook runs as (:class:`Who`)."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from hookagent import ownercheck
from hookagent.hookfiles import Target
from hookagent.ownercheck import Owner

OK, WARN, FAIL = "ok", "warn", "fail"
TAGS = {OK: "ok  ", WARN: "warn", FAIL: "FAIL"}


@dataclass(frozen=True)
class Result:
    check: str               # what was checked: a hook's name, interpreter, config, spool...
    level: str               # OK, WARN or FAIL
    message: str
    fix: str | None = None

    def line(self) -> str:
        text = f"{TAGS[self.level]} {self.check}: {self.message}"
        return text + (f" \u2014 fix: {self.fix}" if self.fix and self.level != OK else "")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def ok(check: str, message: str) -> Result:
    return Result(check, OK, message)


def warn(check: str, message: str, fix: str | None = None) -> Result:
    return Result(check, WARN, message, fix)


def fail(check: str, message: str, fix: str | None = None) -> Result:
    return Result(check, FAIL, message, fix)


@dataclass(frozen=True)
class Who:
    """The user the hook runs as; ``mine``: that is the user running doctor."""
    owner: Owner

    @property
    def mine(self) -> bool:
        return self.owner.uid == os.geteuid()

    def __str__(self) -> str:
        return self.owner.who


def user_for(target: Target, name: str | None) -> Who:
    """``--user NAME`` (root only, or naming oneself), else the repository's owner when root runs
    doctor, else the user running it."""
    from hookagent.errors import HookagentError
    if name:
        owner = ownercheck.account(name)
        if owner.uid != os.geteuid() and os.geteuid() != 0:
            raise HookagentError(f"--user {name}: only root can check as another user; run doctor as"
                                 f" {owner.login} (or with sudo)")
        return Who(owner)
    return Who(ownercheck.owner_of(target) or ownercheck.me())


def cannot_run(path: str, who: Who) -> str | None:
    """Why ``who`` cannot execute ``path`` (mode bits, folders on the way), or None."""
    if who.mine:
        return None if os.access(path, os.X_OK) else f"it is not executable by {who}"
    blocked = ownercheck.blocked_at(path, who.owner, "x")
    if blocked is None:
        return None
    return f"{blocked[0]} is closed to {who}" if blocked[1] else f"it is not executable by {who}"
