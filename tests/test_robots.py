"""robots.txt: the rules on their own, then obeyed by the Fetcher against real loopback servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from aggregator.exceptions import FetchError
from aggregator.fetch import Fetcher
from aggregator.loopback import LoopbackServer
from aggregator.robots import (
    MAX_CRAWL_DELAY,
    MAX_ROBOTS_BYTES,
    RobotsRules,
    origin_of,
    robots_url,
    rules_for_status,
)

UA = "ipnews-test/1 (+https://example.org/contact)"
SITE = "https://office.example"
# Server clocks see a request when it arrives; a new connection's handshake can
# make one arrive a little later than it was sent, shrinking the next gap.
GAP_TOLERANCE = 0.05


def run(coro):
    return asyncio.run(coro)


def rules(text: str) -> RobotsRules:
    return RobotsRules.parse(text.encode("utf-8"))


def allowed(text: str, path: str) -> bool:
    return rules(text).allows(SITE + path)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


# -- the rules ---------------------------------------------------------------------------------

LONGEST_MATCH = """\
User-agent: *
Disallow: /news/
Allow: /news/public/
Disallow: /*.pdf$
Allow: /page
Disallow: /page
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", True),
        ("/news/", False),
        ("/news/2024/item", False),
        ("/news/public/", True),  # the longer Allow wins, though it comes second
        ("/news/public/item?id=1", True),
        ("/files/report.pdf", False),  # wildcard and end anchor
        ("/files/report.pdf?download=1", True),  # "$": the URL must end there
        ("/page", True),  # a tie: Allow wins
        ("/other", True),
    ],
)
def test_allow_and_disallow_use_the_longest_match(path, expected):
    assert allowed(LONGEST_MATCH, path) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("User-agent: ipnews\nDisallow: /\n", False),
        ("User-agent: IPNews\nDisallow: /\n", False),  # case-insensitive
        ("User-agent: ipnews/2.0\nDisallow: /\n", False),  # the product token is what counts
        ("User agent ipnews  # lenient syntax\nDisallow: /\n", False),
        ("User-agent: googlebot\nUser-agent: ipnews\nDisallow: /\n", False),  # one group, two agents
        ("User-agent: ip\nDisallow: /\n", True),  # a prefix of our token is another crawler
        ("User-agent: ipnews-bot\nDisallow: /\n", True),
        ("User-agent: news\nDisallow: /\n", True),
        ("User-agent: googlebot\nDisallow: /\n", True),
        ("User-agent: *\nDisallow: /\n", False),
        ("User-agent: *\nDisallow: /\n\nUser-agent: ipnews\nAllow: /\n", True),  # ours beats *
        ("User-agent: *\nAllow: /\n\nUser-agent: ipnews\nDisallow: /\n", False),
        ("User-agent: ipnews\nDisallow:\n\nUser-agent: *\nDisallow: /\n", True),  # empty: all allowed
        ("", True),
        ("<html><body>Not a robots.txt</body></html>", True),
    ],
)
def test_our_group_is_chosen_by_product_token_and_star_is_the_fallback(text, expected):
    assert allowed(text, "/news/item") is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("User-agent: *\nCrawl-delay: 2.5\n", 2.5),
        ("User-agent: *\nCrawl-delay: 9\n\nUser-agent: ipnews\nCrawl-delay: 1\n", 1.0),
        ("User-agent: googlebot\nCrawl-delay: 9\n", None),
        ("User-agent: *\nCrawl-delay: 3600\n", MAX_CRAWL_DELAY),
        ("User-agent: *\nCrawl-delay: soon\n", None),
        ("User-agent: *\nDisallow: /x\n", None),
    ],
)
def test_crawl_delay(text, expected):
    assert rules(text).crawl_delay == expected


def test_only_the_first_500_kib_are_read_and_never_half_a_line():
    head = b"User-agent: *\nDisallow: /private/\n"
    padding = b"# " + b"x" * (MAX_ROBOTS_BYTES - len(head) - 10) + b"\n"
    # "Disallow: /" is all that fits before the cap: read alone, it would block everything.
    straddling = b"Disallow: /public/only-this-path\n"
    body = head + padding + straddling + b"Disallow: /late/\n"
    assert len(head + padding) < MAX_ROBOTS_BYTES < len(head + padding + straddling)
    parsed = RobotsRules.parse(body)
    assert not parsed.allows(SITE + "/private/x")
    assert parsed.allows(SITE + "/public/x")
    assert parsed.allows(SITE + "/late/x")


def test_byte_order_mark_and_invalid_utf8_are_tolerated():
    parsed = RobotsRules.parse(b"\xef\xbb\xbfUser-agent: *\nDisallow: /x\xff\nDisallow: /y\n")
    assert not parsed.allows(SITE + "/y")
    assert parsed.allows(SITE + "/z")


@pytest.mark.parametrize(
    ("status", "reachable", "allows"),
    [
        (200, True, False),  # the body below disallows everything
        (404, True, True),
        (410, True, True),
        (403, True, True),
        (401, True, True),
        (301, True, True),  # redirects we could not follow: "unavailable"
        (429, False, False),
        (500, False, False),
        (503, False, False),
    ],
)
def test_what_an_http_answer_on_robots_txt_means(status, reachable, allows):
    parsed = rules_for_status(status, b"User-agent: *\nDisallow: /\n")
    assert parsed.reachable is reachable
    assert parsed.allows(SITE + "/feed.xml") is allows
    assert parsed.reason == f"HTTP {status}"


def test_origin_and_robots_url():
    url = httpx.URL("https://user:pw@Office.Example:8443/news/feed.xml?x=1#top")
    assert origin_of(url) == ("https", "office.example", 8443)
    assert str(robots_url(url)) == "https://office.example:8443/robots.txt"
    assert origin_of(httpx.URL("http://office.example/")) == ("http", "office.example", 80)
    assert origin_of(httpx.URL("https://office.example/")) == ("https", "office.example", 443)
    assert (
        str(robots_url(httpx.URL("http://m\u00fcnchen.example/a")))
        == "http://xn--mnchen-3ya.example/robots.txt"
    )


# -- obeyed by the Fetcher, against a real server -------------------------------------------------


async def get_all(fetcher: Fetcher, urls: list[str], **kwargs) -> list[object]:
    """Every URL at once; each result or FetchError, in order."""
    return await asyncio.gather(*(fetcher.get(u, **kwargs) for u in urls), return_exceptions=True)


def test_disallowed_paths_are_never_requested():
    with LoopbackServer() as server:
        server.add(
            "/robots.txt", "User-agent: *\nDisallow: /private/\n", headers={"Content-Type": "text/plain"}
        )
        server.add("/public", b"ok")
        server.add("/private/page", b"secret")
        server.add("/moved", b"", status=301, headers={"Location": "/private/page"})

        async def main():
            async with Fetcher(user_agent=UA) as fetcher:
                return await get_all(fetcher, [server.url(p) for p in ("/public", "/private/page", "/moved")])

        public, private, moved = run(main())
    assert public.content == b"ok"
    assert isinstance(private, FetchError)
    assert private.message == f"disallowed by robots.txt for ipnews: {server.url('/private/page')}"
    assert private.status is None
    # A redirect into a disallowed path is refused before that hop.
    assert isinstance(moved, FetchError)
    assert moved.message == f"disallowed by robots.txt for ipnews: {server.url('/private/page')}"
    assert server.hits("/private/page") == 0
    assert server.requests[0].path == "/robots.txt"
    assert sorted(r.path for r in server.requests) == ["/moved", "/public", "/robots.txt"]
    assert server.requests[0].headers["user-agent"] == UA


@pytest.mark.parametrize("status", [404, 410, 403])
def test_no_robots_txt_allows_everything(status):
    with LoopbackServer() as server:
        if status != 404:  # unknown paths are 404 already
            server.add("/robots.txt", b"forbidden", status=status)
        server.add("/feed.xml", b"<rss/>")

        async def main():
            async with Fetcher(user_agent=UA) as fetcher:
                return await fetcher.get(server.url("/feed.xml"))

        assert run(main()).content == b"<rss/>"
    assert [r.path for r in server.requests] == ["/robots.txt", "/feed.xml"]


@pytest.mark.parametrize("status", [503, 500, 429])
def test_unreachable_robots_txt_stops_the_site_for_this_run(status):
    with LoopbackServer() as server:
        server.add("/robots.txt", b"busy", status=status, headers={"Retry-After": "120"})
        server.add("/feed.xml", b"<rss/>")
        url = server.url("/feed.xml")

        async def poll():
            async with Fetcher(user_agent=UA) as fetcher:
                first = await get_all(fetcher, [url], source_id="office")
                second = await get_all(fetcher, [url])  # the same run: not asked again
                return first[0], second[0]

        first, second = run(poll())
        assert isinstance(first, FetchError) and isinstance(second, FetchError)
        assert str(first) == f"office: robots.txt unavailable (HTTP {status}); not fetching {url}"
        assert second.message == first.message
        assert first.status is None  # the page itself was never asked for
        assert first.retry_after is not None
        assert first.retry_after > datetime.now(UTC) + timedelta(seconds=100)
        assert [r.path for r in server.requests] == ["/robots.txt"]

        server.add("/robots.txt", b"", status=404)  # the next poll (a new Fetcher) asks again
        assert not isinstance(run(poll())[0], FetchError)
    assert [r.path for r in server.requests] == ["/robots.txt", "/robots.txt", "/feed.xml", "/feed.xml"]


def test_robots_txt_timeout_means_unreachable():
    with LoopbackServer() as server:
        server.add("/robots.txt", b"", delay=3)
        server.add("/feed.xml", b"<rss/>")

        async def main():
            async with Fetcher(user_agent=UA, read_timeout=0.2) as fetcher:
                return await fetcher.get(server.url("/feed.xml"))

        with pytest.raises(FetchError) as info:
            run(main())
    assert info.value.message == (
        f"robots.txt unavailable (timed out reading); not fetching {server.url('/feed.xml')}"
    )
    assert server.hits("/feed.xml") == 0


def test_robots_txt_is_fetched_once_for_concurrent_first_requests_and_takes_a_slot():
    with LoopbackServer() as server:
        server.add("/robots.txt", "User-agent: *\nDisallow: /no/\n", delay=0.1)
        for i in range(10):
            server.add(f"/item/{i}", f"item {i}")

        async def main():
            async with Fetcher(user_agent=UA, per_host=2) as fetcher:
                urls = [server.url(f"/item/{i}") for i in range(10)] + [server.url("/no/1")]
                return fetcher, await get_all(fetcher, urls)

        fetcher, results = run(main())
    assert [r.content for r in results[:10]] == [f"item {i}".encode() for i in range(10)]
    assert isinstance(results[10], FetchError)
    assert server.hits("/robots.txt") == 1
    assert server.requests[0].path == "/robots.txt"
    assert len(server.requests) == 11
    assert server.peak_concurrency <= 2 and fetcher.peak_in_flight == {"127.0.0.1": 2}


def test_the_robots_request_waits_for_a_per_host_slot_like_any_other():
    with LoopbackServer() as server:
        server.add("/slow", b"slow", delay=0.3)
        server.add("/feed.xml", b"<rss/>")

        async def main():
            async with Fetcher(user_agent=UA, per_host=1) as fetcher:
                slow = asyncio.create_task(fetcher.get(server.url("/slow"), ignore_robots=True))
                await asyncio.sleep(0.05)  # /slow holds the host's only slot
                return await asyncio.gather(slow, fetcher.get(server.url("/feed.xml")))

        run(main())
    assert [r.path for r in server.requests] == ["/slow", "/robots.txt", "/feed.xml"]
    assert server.peak_concurrency == 1
    assert server.requests[1].time - server.requests[0].time >= 0.3 - GAP_TOLERANCE


def test_ignore_robots_and_robots_off_skip_robots_txt_entirely():
    with LoopbackServer() as server:
        server.add("/robots.txt", "User-agent: *\nDisallow: /\nCrawl-delay: 30\n")
        server.add("/feed.xml", b"<rss/>")
        url = server.url("/feed.xml")

        async def main():
            async with Fetcher(user_agent=UA) as fetcher:
                one = await fetcher.get(url, ignore_robots=True)
                two = await fetcher.get(url, ignore_robots=True)  # no Crawl-delay either
            async with Fetcher(user_agent=UA, robots=False) as fetcher:
                three = await fetcher.get(url)
            return one, two, three

        results = run(main())
    assert [r.content for r in results] == [b"<rss/>"] * 3
    assert server.hits("/robots.txt") == 0
    assert gaps([r.time for r in server.requests])[0] < 1


def test_crawl_delay_spaces_the_starts_of_requests_to_the_site():
    with LoopbackServer() as server:
        # Our group's delay, and larger than host_delay: it wins.
        server.add("/robots.txt", "User-agent: *\nCrawl-delay: 5\n\nUser-agent: ipnews\nCrawl-delay: 0.3\n")
        server.add("/a", b"a")
        server.add("/b", b"b")

        async def main():
            async with Fetcher(user_agent=UA, host_delay=0.1) as fetcher:
                return await get_all(fetcher, [server.url("/a"), server.url("/b")])

        run(main())
    assert sorted(r.path for r in server.requests) == ["/a", "/b", "/robots.txt"]
    # robots.txt counts as a request too: the first page waits after it.
    assert all(gap >= 0.3 - GAP_TOLERANCE for gap in gaps([r.time for r in server.requests]))


def test_robots_txt_redirects_are_followed_up_to_five():
    with LoopbackServer() as server:
        server.add("/robots.txt", b"", status=301, headers={"Location": "/conf/robots.txt"})
        server.add("/conf/robots.txt", "User-agent: *\nDisallow: /private/\n")
        server.add("/private/x", b"secret")

        async def main():
            async with Fetcher(user_agent=UA) as fetcher:
                return await fetcher.get(server.url("/private/x"))

        with pytest.raises(FetchError, match="disallowed by robots.txt"):
            run(main())
    assert server.hits("/private/x") == 0


def test_robots_txt_behind_too_many_redirects_is_unavailable():
    seen: list[str] = []

    def site(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path.startswith("/robots"):
            n = int(request.url.path.removeprefix("/robots.txt").strip("/") or 0)
            return httpx.Response(302, headers={"Location": f"/robots.txt/{n + 1}"})
        return httpx.Response(200, content=b"page")

    async def main():
        async with Fetcher(user_agent=UA, transport=httpx.MockTransport(site), max_redirects=1) as fetcher:
            return await fetcher.get(SITE + "/feed.xml")

    assert run(main()).content == b"page"  # RFC 9309: "unavailable", so allowed
    assert seen[:6] == ["/robots.txt"] + [f"/robots.txt/{n}" for n in range(1, 6)]
    assert seen[6:] == ["/feed.xml"]  # five hops for robots.txt, whatever max_redirects says


class Endless(httpx.AsyncByteStream):
    """A robots.txt that never ends; counts the bytes pulled from it."""

    def __init__(self, head: bytes):
        self.head, self.sent = head, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        self.sent += len(self.head)
        while True:
            self.sent += 64 * 1024
            yield b"#" * (64 * 1024 - 1) + b"\n"


def test_a_huge_robots_txt_is_cut_at_500_kib_not_refused():
    body = Endless(b"User-agent: *\nDisallow: /private/\n")

    def site(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/robots.txt":
            return httpx.Response(200, stream=body)
        return httpx.Response(200, content=b"page")

    async def main():
        async with Fetcher(user_agent=UA, transport=httpx.MockTransport(site)) as fetcher:
            page = await fetcher.get(SITE + "/news")
            with pytest.raises(FetchError, match="disallowed"):
                await fetcher.get(SITE + "/private/1")
            return page

    assert run(main()).content == b"page"
    assert body.sent < MAX_ROBOTS_BYTES + 2 * 64 * 1024


def test_every_redirect_hop_is_checked_against_its_own_site():
    seen: list[str] = []

    def site(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/robots.txt":
            if request.url.host == "cdn.example":
                return httpx.Response(200, text="User-agent: *\nDisallow: /\n")
            return httpx.Response(404)
        return httpx.Response(302, headers={"Location": "https://cdn.example/feed.xml"})

    async def main():
        async with Fetcher(user_agent=UA, transport=httpx.MockTransport(site)) as fetcher:
            return await fetcher.get(SITE + "/feed.xml")

    with pytest.raises(FetchError) as info:
        run(main())
    assert info.value.message == "disallowed by robots.txt for ipnews: https://cdn.example/feed.xml"
    assert seen == [
        SITE + "/robots.txt",
        SITE + "/feed.xml",
        "https://cdn.example/robots.txt",
    ]


def test_a_caller_giving_up_does_not_cancel_the_robots_fetch_others_wait_for():
    robots_requests = 0

    async def site(request: httpx.Request) -> httpx.Response:
        nonlocal robots_requests
        if request.url.path == "/robots.txt":
            robots_requests += 1
            await asyncio.sleep(0.2)
            return httpx.Response(404)
        return httpx.Response(200, content=request.url.path.encode())

    async def main():
        async with Fetcher(user_agent=UA, transport=httpx.MockTransport(site)) as fetcher:
            impatient = asyncio.create_task(fetcher.get(SITE + "/a"))
            patient = asyncio.create_task(fetcher.get(SITE + "/b"))
            await asyncio.sleep(0.05)
            impatient.cancel()
            result = await patient
            assert impatient.cancelled()
            return result

    assert run(main()).content == b"/b"
    assert robots_requests == 1
