"""robots.txt: what a site lets ipnews fetch, decided from one answer (RFC 9309).

The fetcher asks each site (scheme, host and port) for ``/robots.txt`` once
per run and keeps the :class:`RobotsRules` built here. Everything in this
module is pure: it turns an HTTP status and a body into rules and answers
questions about them; :mod:`aggregator.fetch` does the request.

What an answer means (RFC 9309, section 2.3.1):

* **2xx**: the rules are parsed, from the first 500 KiB only;
* **3xx**: the fetcher follows up to five redirects; when it cannot
  (more hops, a Location it refuses), the file is *unavailable*;
* **4xx** (401, 403, 404, 410 …): *unavailable*, so there are no rules
  and everything is allowed;
* **429, 5xx, a network failure or a timeout**: *unreachable*, so we
  assume everything is disallowed until the next run. 429 counts here
  rather than with the 4xx answers: a site asking us to slow down is not
  inviting us in (Google treats it the same way).

Rules are read with protego, not :mod:`urllib.robotparser`. The standard
library applies the first rule that matches, in file order, and knows no
wildcards, so ``Disallow: /news/`` followed by ``Allow: /news/public/`` hides
the public part, and ``Disallow: /*.pdf$`` blocks nothing. RFC 9309 and
Google apply the most specific (longest) matching rule instead, with Allow
winning a tie, and support ``*`` and ``$``. protego does that and is
maintained.

Groups are chosen by product token, as RFC 9309 asks: the group whose
``User-agent`` names ``ipnews`` (case-insensitively; ``ipnews/2.0`` names it
too), else the ``*`` group, else none (everything allowed). protego on its
own would also apply a group named after a prefix of our token
(``User-agent: ip``), so :func:`_select_product_tokens` first rewrites each
``User-agent`` line to say only whether it names us.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import httpx
from protego import Protego

__all__ = [
    "MAX_CRAWL_DELAY",
    "MAX_ROBOTS_BYTES",
    "MAX_ROBOTS_REDIRECTS",
    "ROBOTS_TOKEN",
    "Origin",
    "RobotsRules",
    "origin_of",
    "robots_url",
    "rules_for_status",
]

ROBOTS_TOKEN = "ipnews"  # the product token site owners name in robots.txt
MAX_ROBOTS_BYTES = 500 * 1024  # RFC 9309 2.5: parse at least the first 500 KiB
MAX_ROBOTS_REDIRECTS = 5  # RFC 9309 2.3.1.2: follow at least five
MAX_CRAWL_DELAY = 60.0  # seconds; a longer delay would stall a run for a single page

Origin = tuple[str, str, int]  # scheme, host, port: one robots.txt each

_DEFAULT_PORTS = {"http": 80, "https": 443}

# A User-agent line however protego accepts it ("User-agent:", "useragent",
# "User agent"), its value, and a comment after it.
_USER_AGENT_LINE = re.compile(r"^(\s*user[-\s]?agent\s*(?::|\s))([^#]*)(#.*)?$", re.IGNORECASE)
_PRODUCT_TOKEN = re.compile(r"[A-Za-z_-]+")  # RFC 9309 2.2.1
_OTHER_AGENT = "-other-"  # cannot occur inside "ipnews", so protego never applies it to us


def origin_of(url: httpx.URL) -> Origin:
    """The site a URL belongs to, with the default port filled in."""
    return (url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 0))


def robots_url(url: httpx.URL) -> httpx.URL:
    """Where the robots.txt governing ``url`` lives."""
    return url.copy_with(path="/robots.txt", query=None, fragment=None, userinfo=b"")


@dataclass(frozen=True)
class RobotsRules:
    """What one site's robots.txt lets ipnews do.

    ``reachable`` is False when the file could not be fetched (429, 5xx,
    network failure): then nothing may be fetched, and ``reason`` says why
    (``"HTTP 503"``, ``"timed out reading"``). ``retry_after`` is the site's
    Retry-After on that answer, if any.
    """

    reachable: bool
    reason: str = ""
    retry_after: datetime | None = None
    _parser: Protego | None = None

    @classmethod
    def parse(cls, content: bytes, reason: str = "HTTP 200") -> RobotsRules:
        """Rules from a robots.txt body; anything after the first 500 KiB is ignored."""
        if len(content) > MAX_ROBOTS_BYTES:
            content = content[:MAX_ROBOTS_BYTES]
            content = content[: content.rfind(b"\n") + 1]  # no half line: it could mean anything
        text = content.decode("utf-8-sig", errors="replace")  # RFC 9309: UTF-8
        return cls(True, reason, None, Protego.parse(_select_product_tokens(text)))

    @classmethod
    def allow_all(cls, reason: str) -> RobotsRules:
        """No usable robots.txt (4xx): no rules, everything allowed."""
        return cls(True, reason)

    @classmethod
    def unreachable(cls, reason: str, retry_after: datetime | None = None) -> RobotsRules:
        """robots.txt could not be fetched: nothing may be."""
        return cls(False, reason, retry_after)

    def allows(self, url: str) -> bool:
        """May ipnews fetch ``url`` (an absolute URL on this site)?"""
        if not self.reachable:
            return False
        if self._parser is None:
            return True
        return self._parser.can_fetch(url, ROBOTS_TOKEN)

    @property
    def crawl_delay(self) -> float | None:
        """Seconds to leave between two requests to the site (capped at 60), if asked."""
        if self._parser is None:
            return None
        delay = self._parser.crawl_delay(ROBOTS_TOKEN)
        return None if delay is None else min(delay, MAX_CRAWL_DELAY)


def rules_for_status(status: int, content: bytes = b"", retry_after: datetime | None = None) -> RobotsRules:
    """The rules a final HTTP answer on robots.txt stands for (see the module docstring)."""
    reason = f"HTTP {status}"
    if 200 <= status < 300:
        return RobotsRules.parse(content, reason)
    if 300 <= status < 400 or (400 <= status < 500 and status != 429):
        return RobotsRules.allow_all(reason)
    return RobotsRules.unreachable(reason, retry_after)


def _select_product_tokens(text: str) -> str:
    """Rewrite every ``User-agent`` value to ``ipnews``, ``*`` or a name that cannot match us.

    The value's product token (its leading letters, ``_`` and ``-``) must
    equal ours exactly; ``*`` stays. An empty value is left alone, since
    protego gives it a meaning of its own (it ends a group without starting one).
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = _USER_AGENT_LINE.match(line)
        if match is None:
            continue
        value = match.group(2).strip()
        if not value or value == "*":
            continue
        token = _PRODUCT_TOKEN.match(value)
        name = ROBOTS_TOKEN if token and token.group(0).lower() == ROBOTS_TOKEN else _OTHER_AGENT
        lines[i] = match.group(1) + " " + name
    return "\n".join(lines)
