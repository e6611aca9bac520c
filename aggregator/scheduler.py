"""When is a source due? Pure functions of the stored state, the clock and the server's hints.

* after a success: the source's interval plus a little jitter (so sources on
  one host drift apart), lengthened by Cache-Control max-age / Expires;
* after a failure: exponential backoff from the interval, capped at a day,
  and never before the server's Retry-After.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

from .normalize import iso_utc

JITTER = 0.1  # up to +10 % of the interval
MAX_BACKOFF = timedelta(hours=24)
MAX_SERVER_HINT = timedelta(days=7)  # a max-age or Expires beyond this is ignored past it
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def is_due(next_due: str | None, retry_after: str | None, now: datetime) -> bool:
    """A source is due when its next poll time has come and no Retry-After holds it back."""
    for gate in (parse_iso(next_due), parse_iso(retry_after)):
        if gate is not None and gate > now:
            return False
    return True


def server_hint(headers: Mapping[str, str], now: datetime) -> timedelta | None:
    """How long the server says the response stays fresh (max-age, else Expires), capped."""
    cache_control = headers.get("cache-control", "")
    if "no-cache" in cache_control.lower() or "no-store" in cache_control.lower():
        return None
    match = _MAX_AGE.search(cache_control)
    if match:
        return min(timedelta(seconds=int(match.group(1))), MAX_SERVER_HINT)
    expires = headers.get("expires")
    if expires:
        try:
            when = parsedate_to_datetime(expires)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        if when > now:
            return min(when - now, MAX_SERVER_HINT)
    return None


def next_due_after_success(
    now: datetime,
    interval: int,
    headers: Mapping[str, str] | None = None,
    rng: random.Random | None = None,
) -> str:
    rng = rng or random
    wait = timedelta(seconds=interval * (1 + rng.uniform(0, JITTER)))
    hint = server_hint(headers or {}, now)
    if hint is not None and hint > wait:
        wait = hint
    return iso_utc(now + wait)


def backoff(interval: int, failures: int) -> timedelta:
    """Interval × 2^(failures-1), capped at MAX_BACKOFF (but never below the interval)."""
    base = timedelta(seconds=interval)
    if failures <= 1:
        return base
    grown = base * (2 ** min(failures - 1, 20))
    return max(base, min(grown, MAX_BACKOFF))


def next_due_after_failure(
    now: datetime,
    interval: int,
    failures: int,
    retry_after: datetime | None = None,
) -> str:
    due = now + backoff(interval, failures)
    if retry_after is not None and retry_after > due:
        due = retry_after
    return iso_utc(due)
