"""Due / not-due decisions are pure functions of state, clock and server hints."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from aggregator.scheduler import (
    backoff,
    is_due,
    next_due_after_failure,
    next_due_after_success,
    parse_iso,
    server_hint,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def test_due_when_next_due_and_retry_after_have_passed():
    assert is_due(None, None, NOW)
    assert is_due("2026-11-25T11:59:59Z", None, NOW)
    assert not is_due("2026-11-25T12:00:01Z", None, NOW)
    assert not is_due(None, "2026-11-25T13:00:00Z", NOW)


def test_interval_with_bounded_jitter():
    rng = random.Random(1)
    for _ in range(50):
        due = parse_iso(next_due_after_success(NOW, 3600, {}, rng))
        assert timedelta(hours=1) <= due - NOW <= timedelta(hours=1.1)


def test_server_hints_lengthen_the_wait_within_a_cap():
    assert server_hint({"cache-control": "public, max-age=7200"}, NOW) == timedelta(hours=2)
    assert server_hint({"cache-control": "no-cache, max-age=7200"}, NOW) is None
    assert server_hint({"expires": "Wed, 25 Nov 2026 15:00:00 GMT"}, NOW) == timedelta(hours=3)
    assert server_hint({"cache-control": "max-age=99999999"}, NOW) == timedelta(days=7)
    due = parse_iso(next_due_after_success(NOW, 600, {"cache-control": "max-age=7200"}, random.Random(0)))
    assert due - NOW == timedelta(hours=2)
    short = parse_iso(next_due_after_success(NOW, 3600, {"cache-control": "max-age=60"}, random.Random(0)))
    assert short - NOW >= timedelta(hours=1)  # hints lengthen, never shorten


def test_backoff_grows_and_is_capped():
    assert [backoff(600, n).total_seconds() for n in (1, 2, 3, 4)] == [600, 1200, 2400, 4800]
    assert backoff(600, 30) == timedelta(hours=24)
    assert backoff(2 * 86400, 5) == timedelta(days=2)  # never below the interval


def test_failure_waits_for_retry_after():
    later = NOW + timedelta(hours=5)
    assert parse_iso(next_due_after_failure(NOW, 600, 1, later)) == later
    assert parse_iso(next_due_after_failure(NOW, 600, 1, None)) == NOW + timedelta(minutes=10)
