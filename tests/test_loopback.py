"""The loopback test server: routes, validators, statistics, directory serving, clean shutdown."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
import time

import pytest

from aggregator.loopback import LoopbackServer, RequestRecord, Route, content_type_for, serve_directory


def raw_get(server: LoopbackServer, path: str, headers: dict[str, str] | None = None, method: str = "GET"):
    """One request with http.client, which (unlike httpx) does not decode gzip for us."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_routes_and_404():
    with LoopbackServer() as server:
        server.add("/a?x=1", b"bytes", headers={"Content-Type": "text/plain"})
        server.add("/text", "caf\u00e9")
        assert raw_get(server, "/a?x=1")[2] == b"bytes"
        assert raw_get(server, "/a")[0] == 404  # exact match, query string included
        assert raw_get(server, "/text")[2] == "caf\u00e9".encode()
        status, headers, body = raw_get(server, "/missing")
    assert status == 404 and headers["content-length"] == str(len(body))
    assert [r.path for r in server.requests] == ["/a?x=1", "/a", "/text", "/missing"]
    assert server.hits("/a?x=1") == 1


def test_url_and_no_content_type_unless_given():
    with LoopbackServer() as server:
        server.add("/plain", b"x")
        assert server.url("/plain") == f"http://127.0.0.1:{server.port}/plain"
        assert server.url("plain") == server.url("/plain")
        _, headers, _ = raw_get(server, "/plain")
    assert "content-type" not in headers


def test_head_sends_length_without_body():
    with LoopbackServer() as server:
        server.add("/f", b"0123456789")
        status, headers, body = raw_get(server, "/f", method="HEAD")
    assert status == 200 and headers["content-length"] == "10" and body == b""


def test_other_methods_are_refused():
    with LoopbackServer() as server:
        server.add("/f", b"x")
        status, headers, _ = raw_get(server, "/f", method="POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"


def test_explicit_validators_and_conditional_requests():
    lm = "Wed, 01 May 2024 10:00:00 GMT"
    with LoopbackServer() as server:
        server.add("/f", b"feed", etag='"abc"', last_modified=lm)
        assert raw_get(server, "/f", {"If-None-Match": '"abc"'})[0] == 304
        assert raw_get(server, "/f", {"If-None-Match": 'W/"abc", "zzz"'})[0] == 304
        assert raw_get(server, "/f", {"If-None-Match": '"other"'})[0] == 200
        # If-None-Match wins over If-Modified-Since
        assert raw_get(server, "/f", {"If-None-Match": '"other"', "If-Modified-Since": lm})[0] == 200
        assert raw_get(server, "/f", {"If-Modified-Since": lm})[0] == 304
        assert raw_get(server, "/f", {"If-Modified-Since": "Thu, 02 May 2024 00:00:00 GMT"})[0] == 304
        assert raw_get(server, "/f", {"If-Modified-Since": "Tue, 30 Apr 2024 00:00:00 GMT"})[0] == 200
        assert raw_get(server, "/f", {"If-Modified-Since": "garbage"})[0] == 200
        status, headers, body = raw_get(server, "/f", {"If-None-Match": '"abc"'})
    assert (status, body) == (304, b"")
    assert headers["etag"] == '"abc"' and headers["last-modified"] == lm
    assert server.conditional_hits == 5


def test_auto_validators_follow_the_body():
    bodies = iter([b"v1", b"v1", b"v2"])
    with LoopbackServer(auto_validators=True) as server:
        server.add("/f", lambda record: Route(body=next(bodies)))
        _, first, _ = raw_get(server, "/f")
        same = raw_get(server, "/f", {"If-None-Match": first["etag"]})
        changed = raw_get(server, "/f", {"If-None-Match": first["etag"]})
    assert first["etag"].startswith('"') and "last-modified" in first
    assert same[0] == 304
    assert changed[0] == 200 and changed[2] == b"v2" and changed[1]["etag"] != first["etag"]
    assert server.conditional_hits == 1


def test_gzip_only_when_accepted():
    payload = b"<rss>" + b"x" * 1000 + b"</rss>"
    with LoopbackServer() as server:
        server.add("/f", payload, gzip=True)
        _, zipped_headers, zipped = raw_get(server, "/f", {"Accept-Encoding": "br, gzip"})
        _, plain_headers, plain = raw_get(server, "/f", {"Accept-Encoding": "identity"})
        _, refused_headers, _ = raw_get(server, "/f", {"Accept-Encoding": "gzip;q=0"})
    assert zipped_headers["content-encoding"] == "gzip" and gzip.decompress(zipped) == payload
    assert int(zipped_headers["content-length"]) == len(zipped)
    assert "content-encoding" not in plain_headers and plain == payload
    assert "content-encoding" not in refused_headers
    assert plain_headers["vary"] == "Accept-Encoding"


def test_handler_sees_the_request_and_errors_become_500():
    seen: list[RequestRecord] = []

    def handler(record: RequestRecord) -> Route:
        seen.append(record)
        return Route(body=f"call {len(seen)}".encode(), status=201, headers={"X-Count": str(len(seen))})

    def broken(record: RequestRecord) -> Route:
        raise RuntimeError("boom")

    with LoopbackServer() as server:
        server.add("/dyn", b"", handler=handler)
        server.add("/broken", broken)
        raw_get(server, "/dyn", {"X-Test": "yes"})
        status, headers, body = raw_get(server, "/dyn")
        assert raw_get(server, "/broken")[0] == 500
    assert (status, body, headers["x-count"]) == (201, b"call 2", "2")
    assert seen[0].headers["x-test"] == "yes" and seen[0].method == "GET"
    assert seen[0].host == f"127.0.0.1:{server.port}"
    assert server.errors == ["/broken: RuntimeError('boom')"]


def test_add_route_with_overrides():
    base = Route(body=b"x", status=202)
    with LoopbackServer() as server:
        route = server.add("/r", base, headers={"X-A": "1"})
        status, headers, _ = raw_get(server, "/r")
    assert route is not base and base.headers == {}
    assert status == 202 and headers["x-a"] == "1"


def test_hundreds_of_concurrent_keep_alive_connections_and_peak():
    # Every handler waits on one barrier, so each round only completes if the server
    # really holds all n requests at once. http.client in threads, not httpx: httpcore's
    # pool costs O(connections²) per request at this size and would measure the client.
    n, rounds = 200, 2
    gate = threading.Barrier(n, timeout=10)

    def handler(record: RequestRecord) -> Route:
        gate.wait()
        return Route(body=record.path.encode())

    with LoopbackServer() as server:
        for i in range(n):
            server.add(f"/{i}", handler)
        bodies: dict[int, list[bytes]] = {}

        def client(i: int) -> None:
            conn = http.client.HTTPConnection(server.host, server.port, timeout=15)
            try:
                for _ in range(rounds):  # the same connection each time (keep-alive)
                    conn.request("GET", f"/{i}")
                    bodies.setdefault(i, []).append(conn.getresponse().read())
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert bodies == {i: [f"/{i}".encode()] * rounds for i in range(n)}
        assert server.errors == []
        assert len(server.requests) == n * rounds
        assert server.peak_concurrency == n
        deadline = time.monotonic() + 5
        while server.in_flight and time.monotonic() < deadline:  # handlers still leaving
            time.sleep(0.01)
        server.reset_stats()
        assert (server.requests, server.peak_concurrency, server.conditional_hits) == ([], 0, 0)


def test_stop_hangs_up_idle_keep_alive_connections_and_sleeping_handlers(capfd):
    before = set(threading.enumerate())
    server = LoopbackServer().start()
    server.add("/f", b"x")
    server.add("/sleepy", b"x", delay=30)
    server.add("/drip", b"x" * 100, drip=1)
    idle = http.client.HTTPConnection(server.host, server.port, timeout=5)
    idle.request("GET", "/f")
    idle.getresponse().read()  # the connection stays open (keep-alive)
    busy = [http.client.HTTPConnection(server.host, server.port, timeout=5) for _ in range(2)]
    for conn, path in zip(busy, ("/sleepy", "/drip"), strict=True):
        conn.request("GET", path)
    time.sleep(0.1)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.5
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []
    for conn in [idle, *busy]:
        conn.close()
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # no access log, no tracebacks


def test_restart_keeps_the_port():
    server = LoopbackServer()
    with server:
        server.add("/f", b"x")
        port = server.port
    with server:
        assert server.port == port and raw_get(server, "/f")[2] == b"x"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("feed.xml", "application/xml"),
        ("feed.rss", "application/rss+xml"),
        ("feed.atom", "application/atom+xml"),
        ("feed.json", "application/feed+json"),
        ("page.html", "text/html"),
        ("logo.png", "image/png"),
        ("mystery.zzz", "application/octet-stream"),
    ],
)
def test_content_type_for(name, content_type):
    assert content_type_for(name) == content_type


def test_serve_directory(tmp_path):
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "news.rss").write_bytes(b"<rss/>")
    (tmp_path / "feeds" / "news.rss.headers.json").write_text(
        json.dumps({"content-type": "application/rss+xml; charset=iso-8859-1", "X-Extra": "1"})
    )
    (tmp_path / "col" / "col53").mkdir(parents=True)
    (tmp_path / "col" / "col53" / "index.html").write_bytes(b"<html>list</html>")
    (tmp_path / "index.html").write_bytes(b"<html>home</html>")
    (tmp_path / "a b.atom").write_bytes(b"<feed/>")

    routes = serve_directory(tmp_path)
    assert set(routes) == {
        "/feeds/news.rss",
        "/col/col53/index.html",
        "/col/col53/",
        "/index.html",
        "/",
        "/a%20b.atom",
    }
    assert routes["/feeds/news.rss"].headers == {
        "content-type": "application/rss+xml; charset=iso-8859-1",
        "X-Extra": "1",
    }
    assert routes["/a%20b.atom"].headers == {"Content-Type": "application/atom+xml"}
    assert routes["/col/col53/"] is routes["/col/col53/index.html"]

    with LoopbackServer() as server:
        server.add_routes(routes)
        assert raw_get(server, "/col/col53/")[2] == b"<html>list</html>"
        assert raw_get(server, "/a%20b.atom")[2] == b"<feed/>"
        status, headers, _ = raw_get(server, "/feeds/news.rss")
        assert raw_get(server, "/feeds/news.rss.headers.json")[0] == 404
    assert status == 200 and headers["content-type"] == "application/rss+xml; charset=iso-8859-1"


def test_serve_directory_rejects_a_sidecar_that_is_not_an_object(tmp_path):
    (tmp_path / "f.xml").write_bytes(b"<x/>")
    (tmp_path / "f.xml.headers.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        serve_directory(tmp_path)
