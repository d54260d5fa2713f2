"""The backoff policy, as pure functions: how long to wait before the next attempt.

Nothing here sleeps or reads the clock; the agent passes ``now`` and a seeded ``random.Random``
when it wants reproducible delays.

Policy: exponential backoff with *full jitter* between ``min_backoff`` and a cap that doubles
with every failed attempt (``min_backoff * 2**attempts``) up to ``max_backoff``.  A server's
Retry-After is a floor: it is honoured even above ``max_backoff``, but never beyond one day,
so a confused server cannot park a queue for a year.
"""
from __future__ import annotations

import math
import random
import re
from datetime import timezone
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER = 86400.0   # one day: the most a server's Retry-After can make us wait
_MAX_EXPONENT = 1000        # 2.0**1000 is still a finite float; more would overflow

_DELTA_SECONDS = re.compile(r"[+-]?\d+(?:\.\d+)?")


def next_delay(attempts: int, min_backoff: float, max_backoff: float,
               retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds to wait after ``attempts`` failures in a row (0 for the first failure).

    Always at least ``min_backoff``; at most ``max(max_backoff, min(retry_after, 1 day))``.
    """
    if not (min_backoff > 0 and max_backoff >= min_backoff):
        raise ValueError(f"backoff bounds must satisfy 0 < min_backoff <= max_backoff,"
                         f" got min_backoff={min_backoff!r}, max_backoff={max_backoff!r};"
                         " fix retry.min_backoff / retry.max_backoff")
    exponent = min(max(int(attempts), 0), _MAX_EXPONENT)
    cap = min(float(max_backoff), float(min_backoff) * 2.0 ** exponent)
    uniform = (rng or random).uniform
    delay = min(max(uniform(min_backoff, cap), min_backoff), cap)  # guard float rounding
    if retry_after is not None and not math.isnan(retry_after):
        delay = max(delay, min(max(retry_after, 0.0), MAX_RETRY_AFTER))
    return delay


def parse_retry_after(value: str | None, now: float) -> float | None:
    """A Retry-After header as seconds from ``now``: None when absent or unreadable.

    Accepts delta-seconds (``120``) and an HTTP-date (``Wed, 21 Oct 2015 07:28:00 GMT``).
    A negative delay or a date in the past gives 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)
        if math.isinf(seconds):   # hundreds of digits: as good as "forever", next_delay caps it
            return MAX_RETRY_AFTER
        return max(seconds, 0.0)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:   # "-0000" means UTC with no claim about the local zone (RFC 5322)
        when = when.replace(tzinfo=timezone.utc)
    try:
        return max(when.timestamp() - now, 0.0)
    except (OverflowError, OSError, ValueError):
        return None
