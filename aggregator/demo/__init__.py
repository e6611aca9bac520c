"""`ipnews demo`: the whole job, offline, in one command.

Every host directory under `data/` is served by its own loopback server;
`demo://HOST/PATH` URLs in the bundled `feeds.yaml` are mapped onto those
servers, and the real pipeline fetches them twice: a cold poll that
archives everything, then a warm poll answered by 304 Not Modified.
(This module is the lead's; the sample data is in data/ and feeds.yaml.)
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import click

from ..config import load_config
from ..loopback import LoopbackServer, serve_directory

DEMO_DIR = Path(__file__).parent
DATA_DIR = DEMO_DIR / "data"
CONFIG_PATH = DEMO_DIR / "feeds.yaml"
SAMPLE_QUERIES = ("patent", "专利", "特許", '"unitary patent"', "Marken")


@contextlib.contextmanager
def serve_demo_hosts(data_dir: Path = DATA_DIR):
    """Start one loopback server per host directory; yield a demo:// URL rewriter."""
    servers: dict[str, LoopbackServer] = {}
    try:
        for host_dir in sorted(p for p in data_dir.iterdir() if p.is_dir()):
            server = LoopbackServer(auto_validators=True)
            server.add_routes(serve_directory(host_dir))
            server.start()
            servers[host_dir.name] = server

        def rewrite(url: str) -> str:
            if not url.startswith("demo://"):
                return url
            host, _, path = url[len("demo://"):].partition("/")
            server = servers.get(host)
            return server.url("/" + path) if server else url

        yield rewrite, servers
    finally:
        for server in servers.values():
            server.stop()


def _remove_archive(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        candidate = Path(str(path) + suffix)
        if candidate.exists():
            candidate.unlink()


def run_demo(db_path: str, *, fresh: bool = True) -> int:
    from ..pipeline import run_fetch
    from ..search import search_articles
    from ..store import Archive

    started = time.monotonic()
    path = Path(db_path)
    if fresh:
        _remove_archive(path)
    with serve_demo_hosts() as (rewrite, servers):
        config = load_config(CONFIG_PATH, rewrite_url=rewrite)
        click.echo(f"Serving {len(config.sources)} sample sources from {len(servers)} office hosts on 127.0.0.1")
        with Archive(path) as archive:
            cold = run_fetch(config, archive, include_not_due=True)
            requests = sum(len(s.requests) for s in servers.values())
            click.echo(f"\nCold poll: {cold.line()} ({requests} HTTP requests)")
            for outcome in sorted(cold.outcomes, key=lambda o: o.source_id):
                source = config.source(outcome.source_id)
                note = outcome.error or outcome.warning or ""
                updated = f"{outcome.changed} updated" if outcome.changed else ""
                click.echo(f"  {outcome.source_id:<22} {source.office:<12} {source.kind:<5} {outcome.status:<7} "
                           f"{outcome.new:>3} new {updated:<10} {note}".rstrip())
            for server in servers.values():
                server.reset_stats()
            warm = run_fetch(config, archive, include_not_due=True)
            requests = sum(len(s.requests) for s in servers.values())
            hits = sum(s.conditional_hits for s in servers.values())
            click.echo(f"Warm poll: {warm.line()}; {requests} requests, {hits} answered 304 Not Modified")
            total = archive.count()
            offices = archive.db.execute("SELECT count(DISTINCT office) FROM articles").fetchone()[0]
            click.echo(f"\nArchive {path}: {total} articles from {offices} offices")
            for query in SAMPLE_QUERIES:
                results = search_articles(archive.db, query, limit=3)
                click.echo(f"\nipnews --db {path} search {query}")
                for row in results:
                    when = (row["published"] or row["site_published"] or row["updated"] or "")[:10]
                    click.echo(f"  {when:<10}  {row['office']:<12} {row['title'][:70]}")
                if not results:
                    click.echo("  (no results)")
    click.echo(f"\nDone in {time.monotonic() - started:.1f} s. Browse it: datasette {path}")
    failed = cold.failed or warm.failed
    return 3 if failed else 0
