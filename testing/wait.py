"""Waiting on progress in tests: a condition polled until it holds, never a bare sleep.

The deadline is only there so a broken test ends: it is generous (minutes), because a loaded
machine may be slow but a passing test returns as soon as the condition holds. No test asserts
how long anything took.
"""
from __future__ import annotations

import time
from collections.abc import Callable

PATIENCE = 120.0
"""Seconds before a wait gives up: far beyond what any condition needs on a busy machine."""


def wait_until(predicate: Callable[[], object], timeout: float = PATIENCE, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds passed (its last value,
    checked once more after the deadline, so a slow last step still counts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
