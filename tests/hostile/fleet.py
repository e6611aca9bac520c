"""A fleet of sources on loopback for whole-run tests: memory, SIGKILL, full disk.

:func:`serve_fleet` puts ``count`` sources on a loopback server: ordinary RSS feeds (30 items
with 1 KB HTML descriptions), some HTML page sources (a list and two article pages each) and,
with ``hostile=True``, a share of the worst inputs of the hostile cases (decompression bombs,
a 50 MB body, an endless body, 100,000 items, 100,000-level nesting). :func:`run_measured`
runs ``ipnews fetch`` in a child process and returns its exit status, stderr and peak RSS.

Run as a script to measure a larger fleet outside the test suite::

    .venv/bin/python tests/hostile/fleet.py 2000 30     # sources, items per feed
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__":  # run as a script: conftest.py lives one directory up
    sys.path.insert(0, str(Path(__file__).parent.parent))

from behaviours import BEHAVIOURS, GENERATORS, Context  # noqa: E402

from aggregator.loopback import LoopbackServer, Route  # noqa: E402

from conftest import rss, write_config  # noqa: E402

FEED_TYPE = {"Content-Type": "application/rss+xml"}
WORDS = ["patent", "trademark", "design", "copyright", "fee", "renewal", "opposition", "appeal", "examination",
         "filing", "deadline", "register", "office", "notice", "holiday", "closure", "system", "maintenance",
         "treaty", "member", "state", "applicant", "proprietor", "agent", "form", "online", "service",
         "guideline", "decision", "court", "ruling", "statistics", "report", "annual", "record", "growth"]


def description(n: int, i: int) -> str:
    """About 1 KB of text, different for every item (identical texts would all cluster together)."""
    words = [WORDS[(n * 7 + i * 13 + k * k) % len(WORDS)] for k in range(140)]
    return f"<p>Notice {i} of source {n}: " + " ".join(words) + f". Reference {n}-{i}.</p>"
# One in every HOSTILE_EVERY sources is hostile, cycling through these.
HOSTILE_EVERY = 50
HOSTILE_KINDS = ("gzip-bomb", "brotli-bomb", "fifty-mb", "stream-forever", "many-items", "deep-nesting")
PAGE_EVERY = 10  # one in ten ordinary sources is an HTML page source


@dataclass
class Fleet:
    sources: list[dict]
    articles: int  # what a complete run archives
    hostile: int  # sources expected to fail or be cut


def _feed_items(n: int, count: int) -> list[dict]:
    return [{"guid": f"s{n}-i{i}", "title": f"Source {n} notice {i} on fees", "link": f"/s{n}/n/{i}.html",
             "date": "Mon, 04 May 2026 09:00:00 GMT",
             "description": description(n, i).replace("<", "&lt;").replace(">", "&gt;")}
            for i in range(count)]


def _page(n: int, server: LoopbackServer) -> dict:
    links = "".join(f'<li><a href="/p{n}/a/{i}.html">Page {n} article {i}</a><span>2026-05-0{i + 1}</span></li>'
                    for i in range(2))
    server.add(f"/p{n}/list.html", f'<html><body><ul class="news">{links}</ul></body></html>',
               headers={"Content-Type": "text/html; charset=utf-8"})
    for i in range(2):
        server.add(f"/p{n}/a/{i}.html", f"<html><body><h1>Page {n} article {i}</h1><div class='article'>{description(n, i)}"
                   "</div></body></html>", headers={"Content-Type": "text/html; charset=utf-8"})
    return {"id": f"page-{n}", "office": "FLEET", "kind": "page", "url": server.url(f"/p{n}/list.html"),
            "language": "en", "list": {"item": "ul.news li", "date": "span"},
            "article": {"title": "h1", "body": "div.article"}}


def _hostile(kind: str, n: int, server: LoopbackServer) -> tuple[dict, int]:
    """A hostile source and how many articles it yields."""
    path = f"/h{n}/{kind}.xml"
    body: bytes = b""
    headers = dict(FEED_TYPE)
    route = "static"
    articles = 0
    if kind == "gzip-bomb":
        body, headers["Content-Encoding"] = GENERATORS["gzip-bomb"]({"megabytes": 256}), "gzip"
    elif kind == "brotli-bomb":
        body, headers["Content-Encoding"] = GENERATORS["brotli-bomb"]({"megabytes": 1024}), "br"
    elif kind == "fifty-mb":
        body = GENERATORS["big-body"]({"megabytes": 50})
    elif kind == "stream-forever":
        route, body = "stream-forever", rss(_feed_items(n, 1))[: -len(b"</channel></rss>")]
    elif kind == "many-items":
        body, articles = GENERATORS["many-items"]({"count": 100_000}), 5000
    elif kind == "deep-nesting":
        body, articles = GENERATORS["deep-html-feed"]({"depth": 100_000}), 2
    context = Context(server=server, prefix=f"/h{n}/", path=path, body=body, headers=headers)
    for route_path, route_obj in BEHAVIOURS[route](context).items():
        server.add(route_path, route_obj)
    return {"id": f"hostile-{n}-{kind}", "office": "HOSTILE", "url": server.url(path), "language": "en"}, articles


def serve_fleet(server: LoopbackServer, count: int, *, items: int = 30, hostile: bool = True,
                hostile_every: int = HOSTILE_EVERY) -> Fleet:
    """``count`` sources, ordinary feeds carrying ``items`` items each; one in ``hostile_every`` hostile."""
    sources: list[dict] = []
    articles = failing = 0
    for n in range(count):
        if hostile and n % hostile_every == hostile_every - 1:
            kind = HOSTILE_KINDS[(n // hostile_every) % len(HOSTILE_KINDS)]
            source, yields = _hostile(kind, n, server)
            sources.append(source)
            articles += yields
            failing += 1
        elif n % PAGE_EVERY == PAGE_EVERY - 1:
            sources.append(_page(n, server))
            articles += 2
        else:
            server.add(f"/s{n}/feed.xml", Route(body=rss(_feed_items(n, items), f"Office {n}"), headers=FEED_TYPE))
            sources.append({"id": f"feed-{n}", "office": "FLEET", "url": server.url(f"/s{n}/feed.xml"),
                            "language": "en"})
            articles += items
    return Fleet(sources, articles, failing)


def fleet_config(path: Path, fleet: Fleet) -> Path:
    """The fleet's feeds.yaml: one host, so per_host is raised to the run's concurrency (16)."""
    return write_config(path, fleet.sources, defaults={
        "per_host": 16, "concurrency": 16, "connect_timeout": "2s", "read_timeout": "2s", "timeout": "5s",
        "contact": "mailto:hostile-tests@example.org"})


def command(config: Path, db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "aggregator", "--config", str(config), "--db", str(db), *args]


@dataclass
class Measured:
    exit_code: int
    seconds: float
    peak_rss_mb: float
    stderr: str


# Runs the command and prints its exit status, peak RSS (KiB) and duration. The measured process
# must be a grandchild of the test: Linux carries the high-water mark of the address space a
# process had before exec into its ru_maxrss, and a child forked (or vforked) from pytest
# starts with pytest's, hundreds of MB. This small wrapper's own address space is what the
# grandchild starts from.
_WRAPPER = """
import json, os, subprocess, sys, time
timeout = float(sys.argv[1])
started = time.monotonic()
child = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
while True:
    pid, status, usage = os.wait4(child.pid, os.WNOHANG)
    if pid:
        break
    if time.monotonic() - started > timeout:
        child.kill()
        pid, status, usage = os.wait4(child.pid, 0)
        break
    time.sleep(0.02)
print(json.dumps([os.waitstatus_to_exitcode(status), usage.ru_maxrss, time.monotonic() - started]))
"""


def run_measured(config: Path, db: Path, *args: str, timeout: float = 300) -> Measured:
    """``ipnews fetch`` in a child process; its own peak RSS (see _WRAPPER), its duration."""
    result = subprocess.run([sys.executable, "-c", _WRAPPER, str(timeout), *command(config, db, "fetch", *args)],
                            capture_output=True, text=True, timeout=timeout + 30)
    exit_code, max_rss_kib, seconds = json.loads(result.stdout.strip().splitlines()[-1])
    return Measured(exit_code, seconds, max_rss_kib / 1024, result.stderr)


if __name__ == "__main__":  # pragma: no cover - a measurement, not a test
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    items = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer() as server:
        fleet = serve_fleet(server, count, items=items)
        measured = run_measured(fleet_config(Path(tmp) / "feeds.yaml", fleet), Path(tmp) / "ipnews.db", "--all",
                                timeout=3600)
        print(f"{count} sources ({fleet.hostile} hostile, {items} items a feed): exit {measured.exit_code}, "
              f"{measured.seconds:.1f} s, peak RSS {measured.peak_rss_mb:.0f} MB")
