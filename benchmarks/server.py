"""The benchmark's office web servers: one asyncio HTTP/1.1 server for every host of a corpus.

Each host of the corpus is a loopback address (127.0.1.1, …) with its own
listening socket on one shared port, so clients see H distinct hosts.
Every request waits ``latency`` seconds (an asyncio sleep: thousands can wait
at once) before its answer. Answers carry the corpus's ETag and
Last-Modified, honour If-None-Match / If-Modified-Since with a 304, and are
gzip-encoded (pre-compressed) for clients that accept it. Keep-alive is the
default, as in HTTP/1.1.

Per host the server counts requests by kind (feed, list, article, robots),
304s, bytes sent, connections opened, and the peak number of requests in
flight and of connections open at once: the politeness figures.

Why not aggregator.loopback.LoopbackServer: it runs one thread per
connection and counts concurrency over the whole server, not per host; a
reader with 8 workers, thousands of requests and H hosts needs neither
threads nor a GIL shared with the client. This server runs in its own process.

Run as ``python -m benchmarks.server CORPUS.pickle --latency 0.05``; it prints
one JSON line ``{"port": …, "control": …}`` once it listens. The control
address (127.0.0.1) answers ``GET /phase/N``, ``GET /reset``, ``GET /stats``
and ``GET /quit``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from .corpus import Corpus, Resource, load


@dataclass
class HostStats:
    requests: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    not_modified: int = 0
    status_200: int = 0
    status_404: int = 0
    gzip: int = 0
    bytes_sent: int = 0
    connections: int = 0
    open_connections: int = 0
    peak_connections: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("in_flight", "open_connections")}


class BenchServer:
    def __init__(self, corpus: Corpus, latency: float):
        self.corpus = corpus
        self.latency = latency
        self.phase = 0
        self.routes = corpus.phases[0]
        self.stats: dict[str, HostStats] = {h.name: HostStats() for h in corpus.hosts}
        self.started = time.monotonic()
        self.first_request: float | None = None
        self.last_request: float | None = None
        self.quit = asyncio.Event()

    # -- control ------------------------------------------------------------------------

    def reset(self) -> None:
        for name, old in self.stats.items():
            fresh = HostStats()
            fresh.open_connections = fresh.peak_connections = old.open_connections
            fresh.in_flight = fresh.peak_in_flight = old.in_flight
            self.stats[name] = fresh
        self.first_request = self.last_request = None

    def summary(self) -> dict:
        per_host = {name: s.as_dict() for name, s in self.stats.items()}
        total = {
            "requests": sum(s.requests for s in self.stats.values()),
            "not_modified": sum(s.not_modified for s in self.stats.values()),
            "status_200": sum(s.status_200 for s in self.stats.values()),
            "status_404": sum(s.status_404 for s in self.stats.values()),
            "gzip": sum(s.gzip for s in self.stats.values()),
            "bytes_sent": sum(s.bytes_sent for s in self.stats.values()),
            "connections": sum(s.connections for s in self.stats.values()),
            "max_peak_in_flight_per_host": max((s.peak_in_flight for s in self.stats.values()), default=0),
            "max_peak_connections_per_host": max((s.peak_connections for s in self.stats.values()), default=0),
            "by_kind": {},
        }
        for s in self.stats.values():
            for kind, count in s.by_kind.items():
                total["by_kind"][kind] = total["by_kind"].get(kind, 0) + count
        span = (self.last_request - self.first_request) if self.first_request and self.last_request else 0.0
        return {"phase": self.phase + 1, "latency": self.latency, "total": total, "span_seconds": span,
                "per_host": per_host}

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode()
            if target.startswith("/phase/"):
                self.phase = int(target.rsplit("/", 1)[1]) - 1
                self.routes = self.corpus.phases[self.phase]
                answer = {"phase": self.phase + 1}
            elif target == "/reset":
                self.reset()
                answer = {"reset": True}
            elif target == "/stats":
                answer = self.summary()
            elif target == "/quit":
                answer = {"quit": True}
                self.quit.set()
            else:
                answer = {"error": "unknown"}
            body = json.dumps(answer).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        finally:
            writer.close()

    # -- serving ------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("sockname")[0]
        stats = self.stats[host]
        stats.connections += 1
        stats.open_connections += 1
        stats.peak_connections = max(stats.peak_connections, stats.open_connections)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                stats = self.stats[host]  # reset() may have replaced it
                stats.in_flight += 1
                stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
                now = time.monotonic()
                self.first_request = self.first_request or now
                try:
                    keep_alive = await self.answer(host, head, writer, stats)
                finally:
                    stats.in_flight -= 1
                    self.last_request = time.monotonic()
                if not keep_alive:
                    return
        except ConnectionError:
            return
        finally:
            self.stats[host].open_connections -= 1
            writer.close()

    async def answer(self, host: str, head: bytes, writer: asyncio.StreamWriter, stats: HostStats) -> bool:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = (lines[0].split(" ") + ["", "", ""])[:3]
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        keep_alive = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        if self.latency:
            await asyncio.sleep(self.latency)
        stats.requests += 1
        resource = self.routes.get(host, {}).get(target)
        if resource is None:
            stats.status_404 += 1
            stats.by_kind["missing"] = stats.by_kind.get("missing", 0) + 1
            body = b"not found\n"
            self._send(writer, 404, "Not Found", [("Content-Type", "text/plain")], body, keep_alive)
            await writer.drain()
            return keep_alive
        stats.by_kind[resource.kind] = stats.by_kind.get(resource.kind, 0) + 1
        validators = []
        if resource.etag:
            validators.append(("ETag", resource.etag))
        if resource.last_modified:
            validators.append(("Last-Modified", resource.last_modified))
        if _not_modified(headers, resource):
            stats.not_modified += 1
            self._send(writer, 304, "Not Modified", validators, None, keep_alive)
            await writer.drain()
            return keep_alive
        response_headers = [("Content-Type", resource.content_type), *validators]
        body = resource.body
        if resource.gz is not None:
            response_headers.append(("Vary", "Accept-Encoding"))
            if "gzip" in headers.get("accept-encoding", ""):
                body = resource.gz
                response_headers.append(("Content-Encoding", "gzip"))
                stats.gzip += 1
        stats.status_200 += 1
        stats.bytes_sent += len(body)
        self._send(writer, 200, "OK", response_headers, body if method != "HEAD" else b"", keep_alive,
                   length=len(body))
        await writer.drain()
        return keep_alive

    @staticmethod
    def _send(writer, status: int, reason: str, headers: list[tuple[str, str]], body: bytes | None,
              keep_alive: bool, length: int | None = None) -> None:
        parts = [f"HTTP/1.1 {status} {reason}\r\nServer: ipnews-bench\r\n"]
        for name, value in headers:
            parts.append(f"{name}: {value}\r\n")
        if body is not None:
            parts.append(f"Content-Length: {len(body) if length is None else length}\r\n")
        if not keep_alive:
            parts.append("Connection: close\r\n")
        parts.append("\r\n")
        writer.write("".join(parts).encode("latin-1") + (body or b""))


def _not_modified(headers: dict[str, str], resource: Resource) -> bool:
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return bool(resource.etag) and resource.etag in [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    since = headers.get("if-modified-since")
    if since and resource.last_modified:
        try:
            return parsedate_to_datetime(since) >= parsedate_to_datetime(resource.last_modified)
        except (TypeError, ValueError):
            return False
    return False


def _free_port(hosts: list[str]) -> int:
    """A port free on every host address (tried in turn)."""
    for _ in range(50):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        taken = []
        try:
            for host in hosts:
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                taken.append(s)
                s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            for s in taken:
                s.close()
    raise RuntimeError("no port free on every host address")


async def serve(corpus: Corpus, latency: float, port: int = 0) -> None:
    server = BenchServer(corpus, latency)
    hosts = [h.name for h in corpus.hosts]
    port = port or _free_port(hosts)
    web = await asyncio.start_server(server.handle, host=hosts, port=port, backlog=4096, reuse_address=True)
    control = await asyncio.start_server(server.control, host="127.0.0.1", port=0)
    control_port = control.sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "control": control_port, "hosts": len(hosts)}), flush=True)
    async with web, control:
        await server.quit.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", help="a corpus pickle written by benchmarks.corpus")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every request")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    corpus = load(args.corpus)
    try:
        asyncio.run(serve(corpus, args.latency, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


# ---- a client for the control address ------------------------------------------------------------


class ServerProcess:
    """Start the server in a subprocess and talk to its control address."""

    def __init__(self, corpus_path, latency: float, python: str = sys.executable):
        import subprocess
        from pathlib import Path

        self.proc = subprocess.Popen(
            [python, "-m", "benchmarks.server", str(Path(corpus_path).resolve()), "--latency", str(latency)],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
        )
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the benchmark server did not start")
        info = json.loads(line)
        self.port = info["port"]
        self.control_port = info["control"]

    def call(self, path: str) -> dict:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.control_port}{path}", timeout=60) as r:
            return json.loads(r.read())

    def phase(self, n: int) -> None:
        self.call(f"/phase/{n}")

    def reset(self) -> None:
        self.call("/reset")

    def stats(self) -> dict:
        return self.call("/stats")

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.call("/quit")
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    main()
