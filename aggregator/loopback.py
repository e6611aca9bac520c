"""A small threaded HTTP/1.1 server on the loopback interface.

Tests, ``ipnews demo`` and the benchmarks need a real server that behaves
like an office's website (validators, 304s, gzip, slow answers, errors)
without touching the network. Each path maps to a :class:`Route`; the
server records every request and how many were handled at once, so tests
can check that the fetcher is polite.

    with LoopbackServer(latency=0.1, auto_validators=True) as server:
        server.add("/feed.xml", b"<rss/>", headers={"Content-Type": "application/rss+xml"})
        url = server.url("/feed.xml")
"""

from __future__ import annotations

import contextlib
import gzip as gzip_module
import hashlib
import json
import mimetypes
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

__all__ = ["LoopbackServer", "RequestRecord", "Route", "content_type_for", "serve_directory"]


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it; ``time`` is ``time.monotonic()`` on arrival."""

    method: str
    path: str  # request target, query string included
    headers: dict[str, str]  # lower-cased names
    host: str  # the Host header (or the server address when absent)
    time: float
    client_port: int = 0  # the client's end of the connection: one per connection


@dataclass
class Route:
    """What the server answers on one path.

    ``handler`` makes the answer dynamic: it gets the request and returns the
    Route to serve (its own ``handler`` is ignored). ``drip`` sends the body
    one byte at a time, waiting that many seconds before each byte, to play a
    server that never quite finishes.

    ``raw`` takes over the connection to play a broken server: it gets the
    request, the client socket (nothing written to it yet) and the server's
    stop event (set when the server stops: a raw answer that waits must wait
    on it), and writes whatever it likes, or nothing. The connection is closed
    after it returns unless it closed it itself (a reset).
    """

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None  # an HTTP-date
    delay: float = 0.0  # seconds before answering
    gzip: bool = False  # compress when the client accepts gzip
    handler: Callable[[RequestRecord], Route] | None = None
    drip: float = 0.0
    raw: Callable[[RequestRecord, socket.socket, threading.Event], None] | None = None


# Extensions the fixtures use, typed the way offices (should) serve them.
_CONTENT_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".json": "application/feed+json",
    ".html": "text/html",
    ".htm": "text/html",
    ".txt": "text/plain",
}
_SIDECAR_SUFFIX = ".headers.json"
_NO_BODY_STATUSES = frozenset({204, 304})


def content_type_for(path: Path | str) -> str:
    """The Content-Type for a file name, without a charset (fixtures declare their own)."""
    suffix = Path(path).suffix.lower()
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(str(path))
    return guessed or "application/octet-stream"


def serve_directory(root: Path) -> dict[str, Route]:
    """Map every file below ``root`` to a route at its relative URL path.

    ``<file>.headers.json`` (a JSON object) adds or replaces headers of
    ``<file>`` — e.g. a wrong charset — and is not served itself. An
    ``index.html`` also answers on its directory path (``/dir/``).
    """
    root = Path(root)
    routes: dict[str, Route] = {}
    for file in sorted(root.rglob("*")):
        if not file.is_file() or file.name.endswith(_SIDECAR_SUFFIX):
            continue
        headers = {"Content-Type": content_type_for(file)}
        sidecar = file.with_name(file.name + _SIDECAR_SUFFIX)
        if sidecar.is_file():
            extra = json.loads(sidecar.read_text(encoding="utf-8"))
            if not isinstance(extra, dict):
                raise ValueError(f"{sidecar}: expected a JSON object of headers")
            headers = _merge_headers(headers, {str(k): str(v) for k, v in extra.items()})
        route = Route(body=file.read_bytes(), headers=headers)
        relative = file.relative_to(root).as_posix()
        routes["/" + quote(relative)] = route
        if file.name == "index.html":
            parent = file.parent.relative_to(root).as_posix()
            routes["/" if parent == "." else "/" + quote(parent) + "/"] = route
    return routes


def _merge_headers(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """``base`` updated by ``extra``, matching names case-insensitively."""
    merged = {k: v for k, v in base.items() if k.lower() not in {e.lower() for e in extra}}
    merged.update(extra)
    return merged


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison, as If-None-Match requires."""

    def opaque(tag: str) -> str:
        tag = tag.strip()
        return tag[2:] if tag.startswith("W/") else tag

    candidates = [c for c in (part.strip() for part in if_none_match.split(",")) if c]
    return "*" in candidates or opaque(etag) in {opaque(c) for c in candidates}


def _not_modified_since(if_modified_since: str, last_modified: str) -> bool:
    try:
        since = parsedate_to_datetime(if_modified_since)
        modified = parsedate_to_datetime(last_modified)
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    if (since.tzinfo is None) != (modified.tzinfo is None):
        since, modified = since.replace(tzinfo=None), modified.replace(tzinfo=None)
    return since >= modified


def _accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.split(","):
        coding, _, params = part.partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and _float_or(q[2:], 1.0) == 0)
    return False


def _float_or(text: str, default: float) -> float:
    try:
        return float(text)
    except ValueError:
        return default


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default backlog of 5 drops bursts of connects
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: LoopbackServer):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:
        """Stay quiet: clients hanging up early is what the tests are about."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ipnews-loopback"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body are separate writes
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    def log_message(self, format: str, *args: object) -> None:
        """No access log on stderr."""

    def do_GET(self) -> None:
        self.server.owner._serve(self)

    def do_HEAD(self) -> None:
        self.server.owner._serve(self)

    def _other(self) -> None:
        self.server.owner._serve(self)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other


class LoopbackServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 answering from a table of routes.

    ``latency`` is added to every request (while it counts as in flight);
    ``auto_validators`` gives each route a strong ETag (hash of the body) and
    a Last-Modified unless it has its own. Unknown paths get a 404.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        auto_validators: bool = False,
    ):
        self.host = host
        self._port = port
        self.latency = latency
        self.auto_validators = auto_validators
        self.routes: dict[str, Route] = {}
        self.requests: list[RequestRecord] = []
        self.conditional_hits = 0
        self.peak_concurrency = 0
        self.errors: list[str] = []  # exceptions raised by route handlers
        self._in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._started_at = formatdate(time.time(), usegmt=True)

    # -- set-up -----------------------------------------------------------------

    def add(
        self,
        path: str,
        body_or_route: Route | bytes | str | Callable[[RequestRecord], Route] = b"",
        **route_kwargs: object,
    ) -> Route:
        """Serve ``path`` (query string included, matched exactly); returns the route."""
        if isinstance(body_or_route, Route):
            route = replace(body_or_route, **route_kwargs) if route_kwargs else body_or_route
        elif isinstance(body_or_route, str):
            route = Route(body=body_or_route.encode("utf-8"), **route_kwargs)  # type: ignore[arg-type]
        elif isinstance(body_or_route, bytes | bytearray):
            route = Route(body=bytes(body_or_route), **route_kwargs)  # type: ignore[arg-type]
        elif callable(body_or_route):
            route = Route(handler=body_or_route, **route_kwargs)  # type: ignore[arg-type]
        else:
            raise TypeError(f"cannot serve {type(body_or_route).__name__}")
        with self._lock:
            self.routes[path] = route
        return route

    def add_routes(self, routes: Mapping[str, Route], prefix: str = "") -> None:
        """Serve many routes at once, e.g. ``serve_directory(root)``."""
        for path, route in routes.items():
            self.add(prefix.rstrip("/") + path, route)

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, path: str = "/") -> str:
        if not path.startswith("/"):
            path = "/" + path
        return self.base_url + path

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> LoopbackServer:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self._port), self)
        self._port = self._server.server_address[1]  # kept after stop(): a restart reuses it
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"loopback-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving, hang up on open (keep-alive) connections and wait for the threads."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in delay/latency/drip
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout)
        deadline = time.monotonic() + timeout
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._server = self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- statistics ---------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Requests being answered now (a client may have read a whole response before its
        handler has left: the count drops a moment later)."""
        with self._lock:
            return self._in_flight

    def reset_stats(self) -> None:
        with self._lock:
            self.requests = []
            self.conditional_hits = 0
            self.peak_concurrency = self._in_flight
            self.errors = []

    def hits(self, path: str) -> int:
        """How many requests asked for ``path``."""
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    # -- serving (called from handler threads) -----------------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
                # A handler thread stays listed until it has ended, not only until its
                # connection is done: it still closes the socket after finish(), and stop()
                # joins every thread it started. Ended ones are dropped here, as new ones come.
                self._workers = {t for t in self._workers if t.is_alive()}
                self._workers.add(threading.current_thread())
            else:
                self._connections.discard(conn)

    def _serve(self, request: _Handler) -> None:
        record = RequestRecord(
            method=request.command,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            host=(request.headers.get("Host") or f"{self.host}:{self.port}").lower(),
            time=time.monotonic(),
            client_port=request.client_address[1],
        )
        with self._lock:
            self.requests.append(record)
            self._in_flight += 1
            self.peak_concurrency = max(self.peak_concurrency, self._in_flight)
            route = self.routes.get(record.path)
        try:
            self._answer(request, record, route)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            request.close_connection = True
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(self, request: _Handler, record: RequestRecord, route: Route | None) -> None:
        wait = self.latency + (route.delay if route else 0.0)
        if wait > 0 and self._stopping.wait(wait):
            request.close_connection = True
            return
        if route is None:
            route = Route(body=b"not found\n", status=404, headers={"Content-Type": "text/plain"})
        elif route.handler is not None:
            try:
                route = route.handler(record)
            except Exception as exc:  # a broken test handler becomes a visible 500
                with self._lock:
                    self.errors.append(f"{record.path}: {exc!r}")
                route = Route(body=b"handler failed\n", status=500, headers={"Content-Type": "text/plain"})
            if route.delay > 0 and self._stopping.wait(route.delay):
                request.close_connection = True
                return
        if route.raw is not None:
            request.close_connection = True
            route.raw(record, request.connection, self._stopping)
            return
        if record.method not in ("GET", "HEAD"):
            route = Route(body=b"method not allowed\n", status=405, headers={"Allow": "GET, HEAD"})

        etag, last_modified = route.etag, route.last_modified
        if self.auto_validators and route.status == 200:
            etag = etag or '"' + hashlib.sha256(route.body).hexdigest()[:20] + '"'
            last_modified = last_modified or self._started_at

        headers = dict(route.headers)
        if etag:
            headers = _merge_headers(headers, {"ETag": etag})
        if last_modified:
            headers = _merge_headers(headers, {"Last-Modified": last_modified})

        if 200 <= route.status < 300 and self._is_not_modified(record, etag, last_modified):
            with self._lock:
                self.conditional_hits += 1
            self._write(request, 304, headers, b"", send_body=False)
            return

        body = route.body
        if route.gzip:
            headers = _merge_headers(headers, {"Vary": "Accept-Encoding"})
            if _accepts_gzip(record.headers.get("accept-encoding", "")):
                body = gzip_module.compress(body, mtime=0)
                headers = _merge_headers(headers, {"Content-Encoding": "gzip"})
        self._write(request, route.status, headers, body, send_body=record.method != "HEAD", drip=route.drip)

    @staticmethod
    def _is_not_modified(record: RequestRecord, etag: str | None, last_modified: str | None) -> bool:
        if_none_match = record.headers.get("if-none-match")
        if if_none_match is not None:
            return bool(etag) and _etag_matches(if_none_match, etag or "")
        if_modified_since = record.headers.get("if-modified-since")
        return bool(if_modified_since and last_modified) and _not_modified_since(
            if_modified_since or "", last_modified or ""
        )

    def _write(
        self,
        request: _Handler,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        send_body: bool,
        drip: float = 0.0,
    ) -> None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        request.send_response(status, reason)
        for name, value in headers.items():
            request.send_header(name, value)
        if status not in _NO_BODY_STATUSES and not any(k.lower() == "content-length" for k in headers):
            request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if not send_body or status in _NO_BODY_STATUSES or not body:
            return
        if drip <= 0:
            request.wfile.write(body)
            return
        for i in range(len(body)):
            if self._stopping.wait(drip):
                request.close_connection = True
                return
            request.wfile.write(body[i : i + 1])
