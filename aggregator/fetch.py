"""Polite HTTP fetching on httpx.

One :class:`Fetcher` is shared by a whole run, feeds and article pages
alike, so its limits hold across everything we ask of an office:

* at most ``per_host`` requests in flight per hostname (and ``concurrency``
  overall); a slot is held only while a request and its body are in flight;
* conditional GET (ETag / Last-Modified), with 304 returned as a result;
* redirects followed by us, hop by hop, so every hop takes its own host's slot
  and only http/https targets are allowed;
* robots.txt fetched once per site and obeyed before every hop (see
  :mod:`aggregator.robots`), and a minimum delay between the starts of two
  requests to a host: ``host_delay``, or the site's Crawl-delay if longer;
* a size cap on the decoded body and a total deadline, so neither a huge
  file, a gzip bomb nor a server dripping a byte a second can hold a run;
  bodies are decompressed here, never by httpx, and never beyond the cap
  (httpx would inflate a whole network chunk at once: 64 KB of gzip is
  64 MB of zeros, and a 2 KB brotli body can be a gigabyte);
* a 304 is believed only when we asked conditionally;
* every failure, HTTP or network, comes out as one :class:`FetchError` with a
  one-line message (the httpx error stays as ``__cause__``).

The helpers (:func:`build_user_agent`, :func:`parse_retry_after`) are pure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus

import httpx

from . import __version__
from .exceptions import FetchError
from .robots import (
    MAX_ROBOTS_BYTES,
    MAX_ROBOTS_REDIRECTS,
    ROBOTS_TOKEN,
    Origin,
    RobotsRules,
    origin_of,
    robots_url,
    rules_for_status,
)
from .types import FetchResult

try:
    import brotli
except ImportError:  # pragma: no cover - httpx[brotli] installs it
    brotli = None

__all__ = [
    "DEFAULT_ACCEPT",
    "PROJECT_URL",
    "Fetcher",
    "build_user_agent",
    "format_bytes",
    "parse_retry_after",
]

PROJECT_URL = "https://github.com/ipnews/ipnews"

# Feeds first, then generic XML, then pages: servers doing content negotiation
# hand us the feed when there is one.
DEFAULT_ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, text/html;q=0.8, */*;q=0.5"
)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_RETRY_AFTER = timedelta(days=7)  # anything longer is a server bug, not a plan

# Headers a redirect to another host must not carry (httpx drops them the same way).
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")
_LOCATION_KEY = "ipnews.location"
_DRAIN_LIMIT = 64 * 1024  # read small redirect/error bodies so the connection can be reused
_CONDITIONAL_HEADERS = ("if-none-match", "if-modified-since")

# Brotli only with a decoder that can stop at a size (brotli ≥ 1.2): older ones inflate at once.
_BROTLI = brotli is not None and hasattr(brotli.Decompressor(), "can_accept_more_data")
# The encodings we decode ourselves (see _ContentDecoder), and so the only ones we ask for.
ACCEPT_ENCODING = "gzip, deflate, br" if _BROTLI else "gzip, deflate"
# Real compressions we cannot decode: a clear error rather than compressed bytes for the parser.
# Other unknown values ("utf-8", "none": server misconfigurations) are ignored, as httpx does.
_UNSUPPORTED_ENCODINGS = frozenset({"compress", "x-compress", "zstd", "exi", "pack200-gzip", "aes128gcm"})
_DECODE_STEP = 64 * 1024  # bytes handed from one decoding layer to the next at a time


def build_user_agent(contact: str | None = None) -> str:
    """``ipnews/<version> (+<contact>)``: tells an office who is polling and how to reach us."""
    contact = " ".join((contact or "").split())  # no CR/LF smuggled into a header
    return f"ipnews/{__version__} (+{contact or PROJECT_URL})"


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """When a server asks us to come back (delta-seconds or an HTTP-date), in UTC.

    Junk, negative delays and dates in the past give None; anything beyond
    seven days from ``now`` is capped there. A naive ``now`` is taken as UTC.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now = now.astimezone(UTC)
    limit = now + MAX_RETRY_AFTER
    if value.isdecimal() and value.isascii():
        seconds = int(value)
        if seconds >= MAX_RETRY_AFTER.total_seconds():
            return limit
        return now + timedelta(seconds=seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" and asctime dates: HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    if when < now:
        return None
    return min(when, limit)


def format_bytes(size: int) -> str:
    """``10_000_000`` → ``"10 MB"`` (decimal units, as people read sizes)."""
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            break
        value /= 1000
    return f"{value:.3g} {unit}"


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


def _join_headers(headers: httpx.Headers) -> dict[str, str]:
    """Lower-cased names; repeated headers joined with ", "."""
    joined: dict[str, str] = {}
    for name, value in headers.multi_items():
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return joined


def _reason(response: httpx.Response) -> str:
    if response.reason_phrase:
        return response.reason_phrase
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return ""


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


_Fail = Callable[..., FetchError]  # builds a FetchError carrying the source id and URL

_ROBOTS_ACCEPT = "text/plain, */*;q=0.5"


class Fetcher:
    """A shared, polite HTTP client; use as ``async with Fetcher(...) as fetcher``.

    ``total_timeout`` bounds the time a ``get`` spends on the network (all
    hops, body included); waiting for a free per-host slot, for the delay
    between requests or for the site's robots.txt does not count, so a long
    queue of pages on one host does not time out by itself.

    ``host_delay`` is the least time, in seconds, between the starts of two
    requests to one host, whoever makes them; a site's ``Crawl-delay`` can
    make it longer for that site. ``robots=False`` turns robots.txt off for
    every request (``get(..., ignore_robots=True)`` does it for one).
    """

    def __init__(
        self,
        *,
        user_agent: str,
        per_host: int = 2,
        concurrency: int = 64,
        connect_timeout: float = 10,
        read_timeout: float = 30,
        total_timeout: float = 60,
        max_bytes: int = 10_000_000,
        max_redirects: int = 5,
        robots: bool = True,
        host_delay: float = 0.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        if per_host < 1 or concurrency < 1:
            raise ValueError("per_host and concurrency must be at least 1")
        if not 0 <= host_delay < float("inf"):
            raise ValueError("host_delay must be a number of seconds, at least 0")
        self.user_agent = user_agent
        self.per_host = per_host
        self.concurrency = concurrency
        self.total_timeout = total_timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.robots = robots
        self.host_delay = host_delay
        self.peak_in_flight: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._hosts: dict[str, _Host] = {}
        self._global_slots = asyncio.Semaphore(concurrency)
        self._robots: dict[Origin, asyncio.Task[RobotsRules]] = {}
        self._transport = transport or PoolPerOrigin(per_host)
        self._client = httpx.AsyncClient(
            transport=self._transport,
            follow_redirects=False,
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
            ),
            headers={"User-Agent": user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            event_hooks={"response": [_hide_location]},
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        pending = [task for task in self._robots.values() if not task.done()]
        for task in pending:  # only left when every caller waiting for it gave up
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._client.aclose()

    # -- the one public operation ---------------------------------------------------

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: Mapping[str, str] | None = None,
        source_id: str | None = None,
        accept: str | None = None,
        ignore_robots: bool = False,
    ) -> FetchResult:
        """GET ``url``; a 304 is a result (empty content), every failure a :class:`FetchError`.

        Every hop (the URL, then each redirect target) is first checked
        against its site's robots.txt, so a disallowed URL is never
        requested. ``ignore_robots=True`` skips robots.txt for this request
        altogether, Crawl-delay included (``host_delay`` still holds).
        """

        def fail(
            message: str, *, status: int | None = None, retry_after: datetime | None = None
        ) -> FetchError:
            return FetchError(message, source_id=source_id, url=url, status=status, retry_after=retry_after)

        request_headers = httpx.Headers({"User-Agent": self.user_agent, "Accept": DEFAULT_ACCEPT})
        try:
            request_headers.update(headers or {})
        except (TypeError, ValueError, UnicodeError) as exc:
            raise fail(f"invalid request header: {_one_line(str(exc))}") from exc
        if accept:
            request_headers["Accept"] = accept
        # Set last, so per-source headers cannot replace the validators we hold.
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified

        return await self._follow(
            url,
            request_headers,
            fail,
            max_redirects=self.max_redirects,
            max_bytes=self.max_bytes,
            truncate=False,
            obey_robots=self.robots and not ignore_robots,
        )

    # -- internals ---------------------------------------------------------------------

    async def _follow(
        self,
        url: str,
        request_headers: httpx.Headers,
        fail: _Fail,
        *,
        max_redirects: int,
        max_bytes: int,
        truncate: bool,
        obey_robots: bool,
    ) -> FetchResult:
        """Request ``url`` and follow its redirects hop by hop, within one total deadline.

        ``max_bytes`` caps the body: beyond it the request fails, or with
        ``truncate`` the body is cut there.
        """
        current = self._check_url(url, fail)
        redirects: list[tuple[int, str]] = []
        elapsed = 0.0  # time on the network: the total deadline's budget is spent from it
        while True:
            delay = self.host_delay
            if obey_robots:
                delay = max(delay, await self._obey_robots(current, fail))
            hop = await self._hop(
                current,
                request_headers,
                self.total_timeout - elapsed,
                fail,
                delay=delay,
                max_bytes=max_bytes,
                truncate=truncate,
            )
            elapsed += hop.elapsed
            if hop.status not in REDIRECT_STATUSES:
                return FetchResult(
                    url=url,
                    final_url=str(current),
                    status=hop.status,
                    headers=hop.headers,
                    content=hop.content,
                    elapsed=elapsed,
                    redirects=tuple(redirects),
                    gzip=hop.gzip,
                )
            if len(redirects) >= max_redirects:
                raise fail(f"too many redirects (>{max_redirects})", status=hop.status)
            location = hop.headers.get("location", "").strip()
            if not location:
                raise fail(f"HTTP {hop.status} redirect without a Location", status=hop.status)
            try:
                joined = str(current.join(location))
            except (httpx.InvalidURL, ValueError) as exc:
                raise fail("redirect to an invalid URL", status=hop.status) from exc
            target = self._check_url(joined, fail, redirect_status=hop.status)
            redirects.append((hop.status, str(target)))
            if (target.scheme, target.host, target.port) != (current.scheme, current.host, current.port):
                for name in _CREDENTIAL_HEADERS:
                    request_headers.pop(name, None)
            current = target

    async def _obey_robots(self, url: httpx.URL, fail: _Fail) -> float:
        """Raise unless robots.txt lets us fetch ``url``; gives the site's Crawl-delay (0 if none)."""
        rules = await self._robots_for(url)
        if not rules.reachable:
            raise fail(
                f"robots.txt unavailable ({rules.reason}); not fetching {url}", retry_after=rules.retry_after
            )
        if not rules.allows(str(url)):
            raise fail(f"disallowed by robots.txt for {ROBOTS_TOKEN}: {url}")
        return rules.crawl_delay or 0.0

    async def _robots_for(self, url: httpx.URL) -> RobotsRules:
        """The rules of ``url``'s site, fetched once: the first caller starts the fetch,
        callers arriving meanwhile wait for the same one, later callers find it done."""
        origin = origin_of(url)
        task = self._robots.get(origin)
        if task is None:
            task = self._robots[origin] = asyncio.create_task(self._fetch_robots(robots_url(url)))
        # Shielded: a caller giving up (cancelled) must not cancel the fetch others wait for.
        return await asyncio.shield(task)

    async def _fetch_robots(self, url: httpx.URL) -> RobotsRules:
        """GET one robots.txt like any request (slots, delay, redirects) and judge the answer."""

        def fail(
            message: str, *, status: int | None = None, retry_after: datetime | None = None
        ) -> FetchError:
            return FetchError(message, url=str(url), status=status, retry_after=retry_after)

        headers = httpx.Headers({"User-Agent": self.user_agent, "Accept": _ROBOTS_ACCEPT})
        try:
            result = await self._follow(
                str(url),
                headers,
                fail,
                max_redirects=MAX_ROBOTS_REDIRECTS,
                max_bytes=MAX_ROBOTS_BYTES + 1,  # one more, so the parser can tell it was cut
                truncate=True,
                obey_robots=False,
            )
        except FetchError as exc:
            if exc.status is not None and exc.status >= 300:  # an HTTP answer, or redirects we refused
                return rules_for_status(exc.status, retry_after=exc.retry_after)
            return RobotsRules.unreachable(exc.message)  # network failure, timeout, undecodable body
        return rules_for_status(result.status, result.content)

    @staticmethod
    def _check_url(url: str, fail: _Fail, *, redirect_status: int | None = None) -> httpx.URL:
        """Parse ``url`` and allow only absolute http/https URLs (for a redirect target too)."""
        invalid = "invalid URL" if redirect_status is None else "redirect to an invalid URL"
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise fail(invalid, status=redirect_status) from exc
        if parsed.scheme not in ("http", "https"):
            if not parsed.scheme:
                raise fail(invalid, status=redirect_status)
            prefix = "redirect to " if redirect_status is not None else ""
            raise fail(f"{prefix}unsupported scheme {parsed.scheme}:", status=redirect_status)
        if not parsed.host:
            raise fail(invalid, status=redirect_status)
        return parsed

    @contextlib.asynccontextmanager
    async def _slot(self, host: str, delay: float) -> AsyncIterator[None]:
        """Hold one of ``host``'s slots, then a global one, starting no sooner than ``delay``
        seconds after the previous request to ``host`` started.

        A queue for a busy host waits on the host's own slots and pacing lock,
        never on global slots that other hosts could use. The delay is slept
        holding only the pacing lock (the next request for the host waits there,
        behind us), and the start is stamped once the global slot is ours.
        """
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host(asyncio.Semaphore(self.per_host))
        async with state.slots:
            async with state.pace:
                if state.last_start is not None:
                    wait = state.last_start + delay - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                await self._global_slots.acquire()
                state.last_start = time.monotonic()
            count = self._in_flight.get(host, 0) + 1
            self._in_flight[host] = count
            if count > self.peak_in_flight.get(host, 0):
                self.peak_in_flight[host] = count
            try:
                yield
            finally:
                self._in_flight[host] -= 1
                self._global_slots.release()

    async def _hop(
        self,
        url: httpx.URL,
        headers: httpx.Headers,
        budget: float,
        fail: _Fail,
        *,
        delay: float,
        max_bytes: int,
        truncate: bool,
    ) -> _Hop:
        """One request and its response, inside a slot of its host and what is left of the
        time budget; every exception leaves as a FetchError."""
        if isinstance(self._transport, PoolPerOrigin):
            self._transport.prepare(url)  # before the slot: a new pool's set-up is not the request's
        async with self._slot(url.host.lower(), delay):
            started = time.monotonic()
            deadline = asyncio.timeout(max(budget, 0.0))
            try:
                async with deadline:
                    return await self._exchange(url, headers, fail, started, max_bytes, truncate)
            except FetchError:
                raise
            except TimeoutError as exc:
                if deadline.expired():
                    raise fail(f"timed out after {_format_seconds(self.total_timeout)}") from None
                raise fail("timed out") from exc
            except httpx.TimeoutException as exc:
                raise fail(_timeout_message(exc)) from exc
            except httpx.DecodingError as exc:  # raised before we saw the response
                raise fail("could not decode the response body") from exc
            except httpx.ConnectError as exc:
                raise fail(f"connection failed: {_connect_reason(exc)}") from exc
            except httpx.RemoteProtocolError as exc:
                raise fail(_protocol_message(exc)) from exc
            except httpx.LocalProtocolError as exc:
                raise fail(f"could not send the request: {_one_line(str(exc))}") from exc
            except httpx.ProxyError as exc:
                raise fail(f"proxy failed: {_one_line(str(exc))}") from exc
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                raise fail("invalid URL") from exc
            except (httpx.ReadError, httpx.WriteError) as exc:  # a reset: the reason is deep in the chain
                raise fail(f"connection broken: {_connect_reason(exc)}") from exc
            except (httpx.HTTPError, httpx.StreamError, OSError) as exc:
                raise fail(f"network error: {_one_line(str(exc)) or type(exc).__name__}") from exc

    async def _exchange(
        self,
        url: httpx.URL,
        headers: httpx.Headers,
        fail: _Fail,
        started: float,
        max_bytes: int,
        truncate: bool,
    ) -> _Hop:
        async with self._client.stream("GET", url, headers=headers) as response:
            status = response.status_code
            response_headers = _join_headers(response.headers)
            if _LOCATION_KEY in response.extensions:
                response_headers["location"] = response.extensions[_LOCATION_KEY]
            if status == 304 and not any(name in headers for name in _CONDITIONAL_HEADERS):
                await _drain(response)
                raise fail("HTTP 304 Not Modified to a request that was not conditional", status=status)
            if status == 304 or status in REDIRECT_STATUSES:
                await _drain(response)
                return _Hop(status, response_headers, b"", time.monotonic() - started)
            if not 200 <= status < 300:
                retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
                await _drain(response)
                raise fail(
                    f"HTTP {status} {_reason(response)}".rstrip(), status=status, retry_after=retry_after
                )
            too_large = f"response larger than the {format_bytes(max_bytes)} cap"
            declared = response.headers.get("content-length", "")
            if not truncate and declared.isdecimal() and int(declared) > max_bytes:
                raise fail(too_large, status=status)
            encoding = response.headers.get("content-encoding", "").strip() or "identity"
            decoder = _ContentDecoder.for_header(encoding)
            if decoder is None:
                raise fail(f"unsupported Content-Encoding: {_one_line(encoding)[:60]}", status=status)
            if response.is_stream_consumed:
                # Only in-memory transports (tests) hand over a body httpx has already read and decoded.
                decoder, raw_body = _ContentDecoder([]), _once(response.content)
            else:
                raw_body = response.aiter_raw()
            chunks: list[bytes] = []
            received = 0
            # A gzip body is kept as the server compressed it when it is exactly one gzip member of
            # what we decode: the snapshot is then stored without compressing it again.
            wire: list[bytes] | None = [] if decoder.single_gzip else None
            try:
                async with contextlib.aclosing(raw_body) as body:
                    async for raw in body:
                        if wire is not None:
                            wire.append(raw)
                        decoder.push(raw)
                        while chunk := decoder.pull(max_bytes - received + 1):
                            if received + len(chunk) > max_bytes:
                                if not truncate:
                                    raise fail(too_large, status=status)
                                chunks.append(chunk[: max_bytes - received])
                                received = max_bytes
                                wire = None  # what we keep is cut short: not the server's body any more
                                break
                            received += len(chunk)
                            chunks.append(chunk)
                        if received >= max_bytes and truncate:
                            break
            except httpx.DecodingError as exc:
                raise fail(
                    f"could not decode the response body (Content-Encoding: {_one_line(encoding)[:60]})",
                    status=status,
                ) from exc
            kept = b"".join(wire) if wire is not None and decoder.whole_single_member() else None
            return _Hop(status, response_headers, b"".join(chunks), time.monotonic() - started, kept)


class PoolPerOrigin(httpx.AsyncBaseTransport):
    """One connection pool per origin (scheme, host, port), each keeping ``per_host`` connections.

    httpcore's pool looks at every pooled connection for each request it places (an expiry check
    that polls the socket), so one pool shared by a run's hosts costs a request time in proportion
    to the connections open to all of them: at 100 hosts it took half of the event loop's CPU
    (issue #7). A pool per origin looks at its own few; and every host keeps its connections
    alive between requests instead of sharing one keep-alive allowance with the others. The
    per-host limit itself is the Fetcher's (its slots), not the pools'.
    """

    def __init__(self, per_host: int):
        # Slack above per_host: a connection being closed still counts in a pool for a moment.
        self._limits = httpx.Limits(max_connections=2 * per_host, max_keepalive_connections=per_host)
        self._pools: dict[tuple[bytes, bytes, int | None], httpx.AsyncHTTPTransport] = {}
        self._ssl: ssl.SSLContext | None = None  # one for all pools: each holds the CA bundle (~1.5 MB)

    def prepare(self, url: httpx.URL) -> httpx.AsyncHTTPTransport:
        """The origin's pool, made on first use (loading the CA bundle the first time: ~0.1 s,
        which the Fetcher spends before it stamps a request's start, so a host's pacing counts
        from when requests really leave)."""
        key = (url.raw_scheme, url.raw_host, url.port)
        pool = self._pools.get(key)
        if pool is None:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            pool = self._pools[key] = httpx.AsyncHTTPTransport(limits=self._limits, verify=self._ssl)
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.prepare(request.url).handle_async_request(request)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


@dataclass(eq=False)
class _Host:
    """What every request to one host shares: its slots and when the last one started."""

    slots: asyncio.Semaphore
    pace: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_start: float | None = None


@dataclass(frozen=True, slots=True)
class _Hop:
    """What one request gave: a final answer, a 304 or a redirect to follow."""

    status: int
    headers: dict[str, str]
    content: bytes
    elapsed: float
    gzip: bytes | None = None  # see FetchResult.gzip


class _Layer:
    """One Content-Encoding layer: takes compressed input, gives at most about ``limit`` bytes
    of output per :meth:`pull` (b"" when it needs more input)."""

    def __init__(self) -> None:
        self._input = b""

    def push(self, data: bytes) -> None:
        self._input += data

    def pull(self, limit: int) -> bytes:
        if len(self._input) <= limit:
            out, self._input = self._input, b""
        else:
            out, self._input = self._input[:limit], self._input[limit:]
        return out


class _Inflate(_Layer):
    """gzip (several members too) and deflate (zlib-wrapped or, as some servers send it, raw)."""

    def __init__(self, gzip: bool):
        super().__init__()
        self._gzip = gzip
        # The first bytes of a deflate body, replayed if it turns out to be raw; None once past them.
        self._head: bytes | None = b""
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self.members = 1
        self.ignored = False  # bytes after the end of the stream were dropped

    @property
    def ended(self) -> bool:
        """The stream ended, and nothing after its end is waiting."""
        return self._zlib.eof and not self._input

    def pull(self, limit: int) -> bytes:
        while self._input:
            if self._zlib.eof:  # what follows the end of a stream: another gzip member, or junk
                if self._gzip and len(self._input) < 2:
                    return b""  # too short to tell yet
                if not (self._gzip and self._input.startswith(b"\x1f\x8b")):
                    self._input = b""  # padding or junk after the end: ignored, as browsers do
                    self.ignored = True
                    return b""
                self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
                self.members += 1
            data = self._input
            try:
                out = self._zlib.decompress(data, limit)
            except zlib.error:
                if self._gzip or self._head is None:
                    raise
                # deflate without the zlib header (the header is checked on the first two bytes)
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                self._input, self._head = self._head + data, None
                continue
            self._input = self._zlib.unused_data if self._zlib.eof else self._zlib.unconsumed_tail
            if self._head is not None:
                self._head += data[: len(data) - len(self._zlib.unconsumed_tail)]
                if len(self._head) >= 2:
                    self._head = None
            if out:
                return out
        return b""


class _Brotli(_Layer):
    def __init__(self) -> None:
        super().__init__()
        self._brotli = brotli.Decompressor()

    def pull(self, limit: int) -> bytes:
        for _ in range(2):  # output still owed first; then, if there is none, new input
            if self._brotli.is_finished():
                self._input = b""  # anything after the end of the stream: ignored
                return b""
            if self._input and self._brotli.can_accept_more_data():
                data, self._input = self._input, b""
                out = self._brotli.process(data, output_buffer_limit=limit)
            else:
                out = self._brotli.process(b"", output_buffer_limit=limit)
            if out:
                return out
        return b""


class _ContentDecoder:
    """The layers of a Content-Encoding header, decoded lazily: each :meth:`pull` returns at
    most about ``limit`` bytes, so a decompression bomb costs the size cap, not the bomb."""

    def __init__(self, layers: list[_Layer]):
        self._layers = layers or [_Layer()]

    @classmethod
    def for_header(cls, value: str) -> _ContentDecoder | None:
        """The decoder for a Content-Encoding value, or None for one we cannot decode."""
        layers: list[_Layer] = []
        for token in (t.strip().lower() for t in value.split(",")):
            if token in ("gzip", "x-gzip"):
                layers.append(_Inflate(gzip=True))
            elif token == "deflate":
                layers.append(_Inflate(gzip=False))
            elif token == "br":
                if not _BROTLI:
                    return None
                layers.append(_Brotli())
            elif token in _UNSUPPORTED_ENCODINGS:
                return None
        layers.reverse()  # the encoding applied last is undone first
        return cls(layers)

    def push(self, data: bytes) -> None:
        self._layers[0].push(data)

    @property
    def single_gzip(self) -> bool:
        """The body is gzip, one layer (Content-Encoding: gzip)."""
        return len(self._layers) == 1 and isinstance(self._layers[0], _Inflate) and self._layers[0]._gzip

    def whole_single_member(self) -> bool:
        """All of a gzip body was decoded from one member, with nothing after it (so the raw body
        decompresses to exactly what was read, and alone)."""
        layer = self._layers[0]
        return (self.single_gzip and isinstance(layer, _Inflate) and layer.members == 1 and layer.ended
                and not layer.ignored)

    def pull(self, limit: int) -> bytes:
        """Up to about ``limit`` decoded bytes; raises httpx.DecodingError on a corrupt body."""
        try:
            return self._pull(len(self._layers) - 1, max(limit, 1))
        except _DECODE_ERRORS as exc:
            raise httpx.DecodingError(_one_line(str(exc)) or type(exc).__name__) from exc

    def _pull(self, index: int, limit: int) -> bytes:
        layer = self._layers[index]
        while True:
            out = layer.pull(limit)
            if out or index == 0:
                return out
            more = self._pull(index - 1, _DECODE_STEP)
            if not more:
                return b""
            layer.push(more)


_DECODE_ERRORS: tuple[type[Exception], ...] = (zlib.error,) + ((brotli.error,) if brotli is not None else ())


async def _once(content: bytes) -> AsyncIterator[bytes]:
    yield content


async def _hide_location(response: httpx.Response) -> None:
    """Even with follow_redirects=False, httpx builds the next request of every redirect
    and raises on a Location it cannot turn into one (``javascript:``, ``mailto:``,
    garbage). We follow redirects ourselves and judge the Location in ``get``, so the
    header is moved where httpx does not look."""
    if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
        first = response.headers.get_list("location")[0]  # the first, if repeated
        response.extensions[_LOCATION_KEY] = first
        del response.headers["location"]


async def _drain(response: httpx.Response) -> None:
    """Read a small body we do not need, so the keep-alive connection can be reused.

    A 304 or 204 has no body whatever its headers say (a 304's Content-Length, when sent, is
    the full representation's): it is always "read", so a conditional poll answered 304 keeps
    its connection instead of closing it and opening another for the next request."""
    length = response.headers.get("content-length", "")
    if response.status_code not in (204, 304) and not (length.isdecimal() and int(length) <= _DRAIN_LIMIT):
        return  # unknown or big: closing the connection is cheaper
    with contextlib.suppress(httpx.HTTPError, httpx.StreamError, OSError):
        async for _ in response.aiter_raw():
            pass


def _timeout_message(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "timed out connecting"
    if isinstance(exc, httpx.ReadTimeout):
        return "timed out reading"
    if isinstance(exc, httpx.WriteTimeout):
        return "timed out sending the request"
    if isinstance(exc, httpx.PoolTimeout):
        return "timed out waiting for a free connection"
    return "timed out"


def _connect_reason(exc: BaseException) -> str:
    """The innermost OS reason ("Connection refused"), not anyio's "All connection attempts failed"."""
    reason = _one_line(str(exc)) or type(exc).__name__
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and isinstance(cause.errno, int) and cause.errno > 0:
            reason = os.strerror(cause.errno)  # asyncio's strerror is "Connect call failed (...)"
        elif isinstance(cause, OSError) and cause.strerror:
            reason = _one_line(cause.strerror)
        cause = cause.__cause__ or cause.__context__
    return reason


def _protocol_message(exc: httpx.RemoteProtocolError) -> str:
    text = str(exc)
    if "peer closed" in text or "incomplete" in text.lower():
        return "connection closed by the server mid-response"
    if "without sending" in text:  # h11: "Server disconnected without sending a response."
        return "connection closed by the server before it answered"
    return f"the server broke the HTTP protocol: {_one_line(text)}"
