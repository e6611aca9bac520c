"""Ingest without the network: parse, normalize, dedup, store and index the corpus's phase 1.

Three measurements, each in this process, on the same bytes the server sends:

* ``pipeline``: ``run_fetch`` over an in-memory ``httpx.MockTransport`` (no
  latency, no sockets; gzip when the request accepts it, as the benchmark's
  server sends it): everything a cold poll does except waiting for the
  network — the figure compared with the raw FTS5 insert rate;
* ``parse``: the parsers alone, called one source after another
  (``parse_feed``; ``parse_list_page`` + ``parse_article_page``), split by
  feed format and page kind;
* ``store``: ``Archive.save_source_results`` alone, fed the parsed articles, in
  group commits of the pipeline's size (``GROUP_COMMIT_SOURCES``).

    python -m benchmarks.ingest CORPUS.pickle [--kinds feed,page] [--profile out.txt] [--parse-only]

``--parse-only`` measures the parse stage alone (no pipeline, no store).

``--profile`` runs the parse and store stages (single-threaded, so every
sample is seen) under pyinstrument and writes its text report.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

from .corpus import Corpus, config_yaml, load
from .ipnews_run import peak_rss_bytes

PORT = 8080  # any: the mock transport answers by host and path


def _routes(corpus: Corpus, phase: int = 1):
    return corpus.phases[phase - 1]


class _Body(httpx.AsyncByteStream):
    """A body read as the network's is, through the fetcher's own decoder (httpx reads and
    decodes a plain bytes body when the response is made)."""

    def __init__(self, body: bytes):
        self.body = body

    async def __aiter__(self):
        yield self.body


def mock_transport(corpus: Corpus, phase: int = 1) -> httpx.MockTransport:
    routes = _routes(corpus, phase)

    def handler(request: httpx.Request) -> httpx.Response:
        resource = routes.get(request.url.host, {}).get(request.url.raw_path.decode())
        if resource is None:
            return httpx.Response(404, content=b"not found")
        headers = {"content-type": resource.content_type}
        if resource.etag:
            headers["etag"] = resource.etag
        if resource.last_modified:
            headers["last-modified"] = resource.last_modified
        body = resource.body
        # As the benchmark's server (and most offices' servers) answer: gzip when accepted.
        if resource.gz is not None and "gzip" in request.headers.get("accept-encoding", ""):
            body = resource.gz
            headers["content-encoding"] = "gzip"
        return httpx.Response(200, stream=_Body(body), headers=headers)

    return httpx.MockTransport(handler)


def run_pipeline(corpus: Corpus, kinds: tuple[str, ...], directory: Path) -> dict:
    from aggregator.config import parse_config
    from aggregator.pipeline import run_fetch
    from aggregator.store import Archive

    config = parse_config(config_yaml(corpus, PORT, kinds), "bench.yaml")
    db = directory / "ingest.db"
    with Archive(db) as archive:
        started = time.perf_counter()
        summary = run_fetch(config, archive, include_not_due=True, transport=mock_transport(corpus))
        seconds = time.perf_counter() - started
        articles = archive.count("articles")
    seen = sum(o.seen for o in summary.outcomes)
    return {"seconds": seconds, "seen": seen, "articles": articles, "failed": len(summary.failed),
            "failures": [f"{o.source_id}: {o.error}" for o in summary.failed][:3],
            "entries_per_second": seen / seconds, "expected_articles": corpus.expected_articles(1, kinds)}


def parse_all(corpus: Corpus, kinds: tuple[str, ...]):
    """Parse every source of ``kinds`` one after another; returns (parsed, timings by format)."""
    from aggregator.config import parse_config
    from aggregator.sources.feed import parse_feed
    from aggregator.sources.page import parse_article_page, parse_list_page
    from aggregator.types import FetchedArticle, FetchResult

    config = parse_config(config_yaml(corpus, PORT, kinds), "bench.yaml")
    specs = {s.id: s for s in corpus.sources}
    routes = _routes(corpus)
    timings: dict[str, list[float]] = {}  # format → [seconds, items]
    parsed = []

    def response(host: str, path: str) -> FetchResult:
        r = routes[host][path]
        url = f"http://{host}:{PORT}{path}"
        headers = {"content-type": r.content_type}
        return FetchResult(url=url, final_url=url, status=200, headers=headers, content=r.body)

    for source in config.sources:
        spec = specs[source.id]
        result = response(spec.host, spec.path)
        started = time.perf_counter()
        if source.kind == "feed":
            articles = [FetchedArticle(a, result) for a in
                        parse_feed(result.content, result.headers, source, result.final_url)]
            key = spec.format
        else:
            listing = parse_list_page(result.content, result.headers, source, result.final_url)
            articles = []
            for entry in listing.entries:
                path = entry.url.split(f":{PORT}", 1)[1]
                page = response(spec.host, path)
                articles.append(FetchedArticle(
                    parse_article_page(page.content, page.headers, source, page.final_url, entry), page))
            key = f"page-{spec.format}-{'recipe' if spec.recipe else 'fallback'}"
        spent = time.perf_counter() - started
        slot = timings.setdefault(key, [0.0, 0])
        slot[0] += spent
        slot[1] += len(articles)
        parsed.append((source, articles, result))
    return parsed, timings


def store_all(parsed, db: Path) -> tuple[float, int]:
    from aggregator.pipeline import GROUP_COMMIT_SOURCES
    from aggregator.store import Archive, FetchRecord, SourceState

    with Archive(db) as archive:
        archive.sync_sources([source for source, _, _ in parsed])
        started = time.perf_counter()
        # In commits of the pipeline's group size, as a poll's writer makes them.
        for start in range(0, len(parsed), GROUP_COMMIT_SOURCES):
            with archive.group_commit():
                for source, articles, result in parsed[start:start + GROUP_COMMIT_SOURCES]:
                    record = FetchRecord(run_id="bench", source_id=source.id, started="2026-06-01T06:00:00Z",
                                         duration_ms=0, url=source.url, final_url=result.final_url, status=200,
                                         bytes=len(result.content))
                    state = SourceState(source.id, etag=result.etag, last_modified=result.last_modified)
                    archive.save_source_results(source, articles, record, state)
        seconds = time.perf_counter() - started
        count = archive.count("articles")
    return seconds, count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus")
    parser.add_argument("--kinds", default="feed,page")
    parser.add_argument("--profile", help="pyinstrument text report of the parse and store stages")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--parse-only", action="store_true", help="measure the parse stage alone")
    args = parser.parse_args()
    kinds = tuple(args.kinds.split(","))
    corpus = load(args.corpus)
    result: dict = {"kinds": kinds}
    with tempfile.TemporaryDirectory(dir=Path(args.corpus).parent) as tmp:
        tmpdir = Path(tmp)
        if not (args.skip_pipeline or args.parse_only):
            result["pipeline"] = run_pipeline(corpus, kinds, tmpdir)
        profiler = None
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.001)
            profiler.start()
        started = time.perf_counter()
        parsed, timings = parse_all(corpus, kinds)
        parse_seconds = time.perf_counter() - started
        if not args.parse_only:
            store_seconds, stored = store_all(parsed, tmpdir / "store.db")
        if profiler:
            profiler.stop()
            Path(args.profile).write_text(profiler.output_text(unicode=True, color=False), encoding="utf-8")
    items = sum(len(a) for _, a, _ in parsed)
    result["parse"] = {
        "seconds": parse_seconds, "items": items, "items_per_second": items / parse_seconds,
        "by_format": {k: {"seconds": s, "items": n, "items_per_second": n / s if s else 0.0}
                      for k, (s, n) in sorted(timings.items())},
    }
    if not args.parse_only:
        result["store"] = {"seconds": store_seconds, "items": items, "articles": stored,
                           "items_per_second": items / store_seconds}
    result["peak_rss_bytes"] = peak_rss_bytes()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
