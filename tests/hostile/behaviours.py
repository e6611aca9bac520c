"""Named server behaviours and generated bodies for the hostile-input cases.

A case's ``route`` names one of :data:`BEHAVIOURS`: a function that gets the case's
:class:`Context` and returns the routes to add to the loopback server (the victim's
path among them). Byte-level faults (resets, lying Content-Length, a server that
never answers) use ``Route(raw=...)``, which hands the socket over.

A case's ``generate`` names one of :data:`GENERATORS`: large or pathological bodies
(50 MB, 100,000 items, decompression bombs, deep nesting) are built at test time and
cached for the session, never committed.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import socket
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from aggregator.loopback import LoopbackServer, RequestRecord, Route

HANG_SECONDS = 30.0  # a raw behaviour that "never" answers waits this long (or until the server stops)
_ZEROS = bytes(1 << 20)


@dataclass
class Context:
    """What a behaviour needs to build its routes."""

    server: LoopbackServer
    prefix: str  # URL path prefix of this case, e.g. "/c/http/reset-mid-body/"
    path: str  # the path the victim source is configured with
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    args: dict[str, Any] = field(default_factory=dict)
    closed_port: int = 9  # a port nothing listens on


Behaviour = Callable[[Context], dict[str, Route]]
BEHAVIOURS: dict[str, Behaviour] = {}


def behaviour(name: str) -> Callable[[Behaviour], Behaviour]:
    def register(func: Behaviour) -> Behaviour:
        BEHAVIOURS[name] = func
        return func

    return register


# --------------------------------------------------------------------------- raw socket helpers


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Whatever'}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _reset(conn: socket.socket) -> None:
    """Close with an RST, not a FIN: SO_LINGER 0, then the descriptor itself."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    os.close(conn.detach())


def _raw(func: Callable[[socket.socket, threading.Event], None]) -> Route:
    def answer(record: RequestRecord, conn: socket.socket, stopping: threading.Event) -> None:
        with contextlib.suppress(OSError):  # the client gave up first: that is the point of most of these
            func(conn, stopping)

    return Route(raw=answer)


def _content_type(ctx: Context) -> str:
    return ctx.headers.get("Content-Type", "application/rss+xml")


# --------------------------------------------------------------------------- HTTP faults


@behaviour("static")
def static(ctx: Context) -> dict[str, Route]:
    return {ctx.path: Route(body=ctx.body, status=ctx.status, headers=ctx.headers)}


@behaviour("drip")
def drip(ctx: Context) -> dict[str, Route]:
    """The body one byte every ``interval`` seconds (default 1): only the total deadline ends it."""
    return {ctx.path: Route(body=ctx.body, headers=ctx.headers, drip=float(ctx.args.get("interval", 1.0)))}


@behaviour("trickle-headers")
def trickle_headers(ctx: Context) -> dict[str, Route]:
    """The status line and headers one byte every 0.5 s: each read succeeds within the read
    timeout, so only the total deadline can end it."""

    def answer(conn: socket.socket, stopping: threading.Event) -> None:
        for byte in _head(200, {"Content-Type": _content_type(ctx), "Content-Length": str(len(ctx.body))}):
            if stopping.wait(0.5):
                return
            conn.sendall(bytes([byte]))

    return {ctx.path: _raw(answer)}


@behaviour("hang")
def hang(ctx: Context) -> dict[str, Route]:
    """Accept the request and never answer."""
    return {ctx.path: _raw(lambda conn, stopping: stopping.wait(HANG_SECONDS))}


@behaviour("hang-after-headers")
def hang_after_headers(ctx: Context) -> dict[str, Route]:
    def answer(conn: socket.socket, stopping: threading.Event) -> None:
        conn.sendall(_head(200, {"Content-Type": _content_type(ctx), "Content-Length": str(len(ctx.body))}))
        stopping.wait(HANG_SECONDS)

    return {ctx.path: _raw(answer)}


@behaviour("close-before-response")
def close_before_response(ctx: Context) -> dict[str, Route]:
    """Hang up (FIN) without a word."""
    return {ctx.path: _raw(lambda conn, stopping: None)}


@behaviour("reset-before-response")
def reset_before_response(ctx: Context) -> dict[str, Route]:
    return {ctx.path: _raw(lambda conn, stopping: _reset(conn))}


@behaviour("reset-mid-body")
def reset_mid_body(ctx: Context) -> dict[str, Route]:
    def answer(conn: socket.socket, stopping: threading.Event) -> None:
        conn.sendall(_head(200, {"Content-Type": _content_type(ctx), "Content-Length": str(len(ctx.body))}))
        conn.sendall(ctx.body[: len(ctx.body) // 2])
        stopping.wait(0.05)
        _reset(conn)

    return {ctx.path: _raw(answer)}


@behaviour("close-mid-body")
def close_mid_body(ctx: Context) -> dict[str, Route]:
    def answer(conn: socket.socket, stopping: threading.Event) -> None:
        conn.sendall(_head(200, {"Content-Type": _content_type(ctx), "Content-Length": str(len(ctx.body))}))
        conn.sendall(ctx.body[: len(ctx.body) // 2])

    return {ctx.path: _raw(answer)}


@behaviour("content-length-short")
def content_length_short(ctx: Context) -> dict[str, Route]:
    """Content-Length says half of what is sent: the client reads the first half, a cut document."""

    def answer(conn: socket.socket, stopping: threading.Event) -> None:
        length = int(ctx.args.get("declared", len(ctx.body) // 2))
        conn.sendall(_head(200, {"Content-Type": _content_type(ctx), "Content-Length": str(length)}))
        conn.sendall(ctx.body)

    return {ctx.path: _raw(answer)}


@behaviour("content-length-long")
def content_length_long(ctx: Context) -> dict[str, Route]:
    """Content-Length promises more than is sent; the connection then stays open (``hang``) or closes."""

    def answer(conn: socket.socket, stopping: threading.Event) -> None:
        conn.sendall(_head(200, {"Content-Type": _content_type(ctx), "Content-Length": str(len(ctx.body) + 1000)}))
        conn.sendall(ctx.body)
        if ctx.args.get("then") == "hang":
            stopping.wait(HANG_SECONDS)

    return {ctx.path: _raw(answer)}


@behaviour("raw-head")
def raw_head(ctx: Context) -> dict[str, Route]:
    """Send ``args.head`` (status line and headers, as text with \\r\\n written as \\n) and the body."""

    def answer(conn: socket.socket, stopping: threading.Event) -> None:
        head = str(ctx.args["head"]).replace("\r\n", "\n").replace("\n", "\r\n")
        conn.sendall(head.encode("latin-1") + ctx.body)

    return {ctx.path: _raw(answer)}


@behaviour("stream-forever")
def stream_forever(ctx: Context) -> dict[str, Route]:
    """No Content-Length (close-delimited) or chunked (``args.chunked``): a body that never ends."""
    chunked = bool(ctx.args.get("chunked"))

    def answer(conn: socket.socket, stopping: threading.Event) -> None:
        headers = {"Content-Type": _content_type(ctx)}
        headers.update({"Transfer-Encoding": "chunked"} if chunked else {"Connection": "close"})
        def chunk(data: bytes) -> bytes:
            return f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data

        conn.sendall(_head(200, headers) + chunk(ctx.body))
        filler = chunk(b"<!-- " + b"x" * 65_000 + b" -->")
        while not stopping.is_set():
            conn.sendall(filler)

    return {ctx.path: _raw(answer)}


@behaviour("redirect-chain")
def redirect_chain(ctx: Context) -> dict[str, Route]:
    """``hops`` redirects (``status``, default 302) before the body; ``loop`` sends the last hop back to the first."""
    hops = int(ctx.args.get("hops", 3))
    status = int(ctx.args.get("status", 302))
    routes: dict[str, Route] = {}
    names = [ctx.path] + [f"{ctx.prefix}hop{n}" for n in range(1, hops + 1)]
    for here, there in zip(names, names[1:], strict=False):
        routes[here] = Route(status=status, headers={"Location": there})
    if ctx.args.get("loop"):
        routes[names[-1]] = Route(status=status, headers={"Location": ctx.path})
    else:
        routes[names[-1]] = Route(body=ctx.body, headers=ctx.headers)
    return routes


@behaviour("redirect-to")
def redirect_to(ctx: Context) -> dict[str, Route]:
    """One redirect to ``location`` ({{BASE}}, {{PREFIX}}, {{CLOSED}} filled in); ``final`` serves the body there."""
    def fill(text: str) -> str:
        return (text.replace("{{BASE}}", ctx.server.base_url).replace("{{PREFIX}}", ctx.prefix)
                .replace("{{CLOSED}}", f"http://127.0.0.1:{ctx.closed_port}"))

    location = fill(str(ctx.args["location"]))
    headers = {"Location": location} if location else {}
    routes = {ctx.path: Route(status=int(ctx.args.get("status", 302)), headers=headers)}
    if ctx.args.get("final"):
        routes[fill(str(ctx.args["final"]))] = Route(body=ctx.body, headers=ctx.headers)
    return routes


# --------------------------------------------------------------------------- generated bodies

Generator = Callable[[dict[str, Any]], bytes]
GENERATORS: dict[str, Generator] = {}


def generator(name: str) -> Callable[[Generator], Generator]:
    def register(func: Generator) -> Generator:
        GENERATORS[name] = lambda args: _cached(name, tuple(sorted(args.items())))
        _GENERATOR_FUNCS[name] = func
        return func

    return register


_GENERATOR_FUNCS: dict[str, Generator] = {}


@lru_cache(maxsize=16)
def _cached(name: str, args: tuple[tuple[str, Any], ...]) -> bytes:
    return _GENERATOR_FUNCS[name](dict(args))


def rss_items(count: int, prefix: str = "gen") -> bytes:
    items = b"".join(
        b"<item><guid>%s-%d</guid><title>Notice %d</title><link>/%s/%d</link></item>" % (prefix.encode(), n, n,
                                                                                        prefix.encode(), n)
        for n in range(count)
    )
    return b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Generated</title>' + items + (
        b"</channel></rss>"
    )


@generator("big-body")
def big_body(args: dict[str, Any]) -> bytes:
    """A feed with two items padded to ``megabytes`` MB by an XML comment."""
    size = int(args.get("megabytes", 50)) * 1_000_000
    head = rss_items(2, "big")
    return head[:-len(b"</channel></rss>")] + b"<!--" + b"x" * (size - len(head) - 7) + b"-->" + b"</channel></rss>"


@generator("many-items")
def many_items(args: dict[str, Any]) -> bytes:
    return rss_items(int(args.get("count", 100_000)), "many")


@generator("gzip-bomb")
def gzip_bomb(args: dict[str, Any]) -> bytes:
    """``megabytes`` MB of zeros in one gzip member (about 1,000 : 1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = [compressor.compress(_ZEROS) for _ in range(int(args.get("megabytes", 256)))]
    return b"".join(parts) + compressor.flush()


@generator("brotli-bomb")
def brotli_bomb(args: dict[str, Any]) -> bytes:
    """``megabytes`` MB of zeros in brotli (about 600,000 : 1 at a gigabyte)."""
    import brotli

    compressor = brotli.Compressor(quality=5)
    parts = [compressor.process(_ZEROS) for _ in range(int(args.get("megabytes", 1024)))]
    return b"".join(parts) + compressor.finish()


@generator("gzip-twice")
def gzip_twice(args: dict[str, Any]) -> bytes:
    """A small feed compressed twice, to be served with one ``Content-Encoding: gzip``."""
    return gzip.compress(gzip.compress(rss_items(2, "twice"), mtime=0), mtime=0)


@generator("deep-html-feed")
def deep_html_feed(args: dict[str, Any]) -> bytes:
    """One item whose description is HTML nested ``depth`` levels deep (entity-escaped)."""
    depth = int(args.get("depth", 100_000))
    html = b"&lt;div&gt;" * depth + b"deep text" + b"&lt;/div&gt;" * depth
    return (b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Deep</title>'
            b"<item><guid>deep-1</guid><title>Deeply nested notice</title><link>/deep/1</link>"
            b"<description>" + html + b"</description></item>"
            b"<item><guid>deep-2</guid><title>Shallow notice</title><link>/deep/2</link>"
            b"<description>&lt;p&gt;Plain text.&lt;/p&gt;</description></item></channel></rss>")


@generator("deep-html-page")
def deep_html_page(args: dict[str, Any]) -> bytes:
    """An article page whose body holds ``depth`` nested <div>s around its text."""
    depth = int(args.get("depth", 100_000))
    return (b"<!DOCTYPE html><html lang='en'><head><title>Deep page</title></head><body>"
            b"<h1>Deeply nested article</h1><div class='article'><p>Opening paragraph of the notice.</p>"
            + b"<div>" * depth + b"Text at the bottom of the well." + b"</div>" * depth
            + b"</div></body></html>")


@generator("unclosed-divs-page")
def unclosed_divs_page(args: dict[str, Any]) -> bytes:
    """A broken template that never closes its <div>s: ``count`` paragraphs, each one level deeper."""
    count = int(args.get("count", 600))
    paragraphs = b"".join(b"<div><p>Paragraph %d of the notice.</p>" % n for n in range(count))
    return (b"<!DOCTYPE html><html lang='en'><head><title>Unclosed</title></head><body>"
            b"<h1>Notice with a broken template</h1><div class='article'>" + paragraphs + b"</body></html>")


@generator("many-identical-items")
def many_identical_items(args: dict[str, Any]) -> bytes:
    """``count`` items with their own GUIDs and links but one and the same 150-word text."""
    text = b" ".join(b"fee%d" % (k % 37) for k in range(150))
    items = b"".join(b"<item><guid>same-%d</guid><title>Same notice %d</title><link>/same/%d</link>"
                     b"<description>%s</description></item>" % (n, n, n, text) for n in range(int(args.get("count", 2000))))
    return b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Same</title>' + items + (
        b"</channel></rss>")


@generator("huge-title")
def huge_title(args: dict[str, Any]) -> bytes:
    """One item whose title is ``kilobytes`` KB of words."""
    title = b"Patent " * (int(args.get("kilobytes", 200)) * 1000 // 7)
    return (b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Huge</title>'
            b"<item><guid>ht-1</guid><title>" + title + b"</title><link>/news/ht-1</link></item></channel></rss>")


@generator("deep-json")
def deep_json(args: dict[str, Any]) -> bytes:
    """A JSON Feed whose items are arrays nested ``depth`` deep."""
    depth = int(args.get("depth", 100_000))
    return b'{"version": "https://jsonfeed.org/version/1.1", "items": ' + b"[" * depth + b"]" * depth + b"}"
