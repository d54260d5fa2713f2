"""Table tests for the backoff policy (hookagent.retry): pure functions, no clock, no sleeping."""
from __future__ import annotations

import random
from email.utils import format_datetime
from datetime import datetime, timezone

import pytest

from hookagent.backoff import MAX_RETRY_AFTER, next_delay, parse_retry_after

SEEDS = range(300)


@pytest.mark.parametrize("attempts,lo,hi,cap", [
    (0, 30, 3600, 30),        # first failure: exactly the minimum
    (1, 30, 3600, 60),
    (2, 30, 3600, 120),
    (5, 30, 3600, 960),
    (7, 30, 3600, 3600),      # 30 * 128 = 3840 > max
    (40, 30, 3600, 3600),
    (10**6, 30, 3600, 3600),  # no overflow for absurd counts
    (-3, 30, 3600, 30),       # nonsense counts act like the first failure
    (3, 0.02, 0.1, 0.1),
    (4, 5, 5, 5),             # min == max: no room for jitter
])
def test_delay_stays_between_min_and_the_growing_cap(attempts, lo, hi, cap):
    delays = [next_delay(attempts, lo, hi, rng=random.Random(seed)) for seed in SEEDS]
    assert all(lo <= d <= cap for d in delays), (min(delays), max(delays))


@pytest.mark.parametrize("attempts", [2, 4, 6])
def test_jitter_is_full_it_spreads_over_the_whole_range(attempts):
    cap = 30 * 2 ** attempts
    delays = [next_delay(attempts, 30, 3600, rng=random.Random(seed)) for seed in SEEDS]
    span = cap - 30
    assert min(delays) < 30 + 0.1 * span      # reaches near the floor ...
    assert max(delays) > cap - 0.1 * span     # ... and near the cap
    assert len(set(delays)) > len(delays) // 2  # not a constant


def test_delays_grow_with_attempts_until_the_maximum():
    def mean(attempts: int) -> float:
        return sum(next_delay(attempts, 1, 1000, rng=random.Random(s)) for s in SEEDS) / len(SEEDS)
    means = [mean(a) for a in range(0, 12)]
    assert means[0] == 1
    assert all(b > a for a, b in zip(means[:9], means[1:10])), means
    assert 400 < means[11] < 700   # capped: uniform(1, 1000) averages about 500


def test_same_seed_same_delay():
    assert next_delay(5, 1, 100, rng=random.Random(7)) == next_delay(5, 1, 100, rng=random.Random(7))


def test_default_rng_still_respects_the_bounds():
    assert all(2 <= next_delay(3, 2, 10) <= 10 for _ in range(100))


@pytest.mark.parametrize("attempts,retry_after,expected_min,expected_max", [
    (0, 120, 120, 120),                          # above the backoff: the server wins
    (0, 5000, 5000, 5000),                       # honoured above max_backoff (3600)
    (0, 10 * 86400, MAX_RETRY_AFTER, MAX_RETRY_AFTER),  # but never more than a day
    (0, float("inf"), MAX_RETRY_AFTER, MAX_RETRY_AFTER),
    (0, 0, 30, 30),                              # "retry now" does not go below min_backoff
    (0, -10, 30, 30),
    (3, 10, 30, 240),                            # below the backoff: the backoff wins
    (0, float("nan"), 30, 30),                   # nonsense is ignored
])
def test_retry_after_is_a_floor_capped_at_one_day(attempts, retry_after, expected_min, expected_max):
    for seed in range(50):
        d = next_delay(attempts, 30, 3600, retry_after, rng=random.Random(seed))
        assert expected_min <= d <= expected_max


@pytest.mark.parametrize("lo,hi", [(0, 10), (-1, 10), (10, 5)])
def test_bad_bounds_are_refused_with_the_keys_to_fix(lo, hi):
    with pytest.raises(ValueError, match="retry.min_backoff"):
        next_delay(1, lo, hi)


NOW = 1_700_000_000.0


def _http_date(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, timezone.utc), usegmt=True)


@pytest.mark.parametrize("value,expected", [
    (None, None),
    ("", None),
    ("   ", None),
    ("120", 120.0),
    (" 7 ", 7.0),
    ("0", 0.0),
    ("1.5", 1.5),
    ("-5", 0.0),                       # negative -> now
    ("9" * 400, MAX_RETRY_AFTER),      # absurd -> as long as we ever wait
    ("soon", None),
    ("12abc", None),
    ("inf", None),
    ("nan", None),
    ("0x10", None),
    (_http_date(NOW + 90), 90.0),      # IMF-fixdate
    (_http_date(NOW - 90), 0.0),       # in the past -> now
    ("Tue, 14 Nov 2023 22:14:20 -0000", 1_700_000_060.0 - NOW),  # "-0000": UTC, no zone claim
    ("Tuesday, 14-Nov-23 22:15:20 GMT", 1_700_000_120.0 - NOW),  # RFC 850
    ("Tue Nov 14 22:16:20 2023", 1_700_000_180.0 - NOW),  # asctime
    ("Tue, 99 Nov 2023 22:13:20 GMT", None),  # impossible date
])
def test_parse_retry_after(value, expected):
    got = parse_retry_after(value, NOW)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)
