"""Parsing in worker processes and saving on the writer thread give the same archive as threads."""

from __future__ import annotations

import asyncio
import pickle

import pytest

from aggregator.loopback import LoopbackServer
from aggregator.store import Archive, Derived, derive
from aggregator.types import Article
from aggregator.workers import ParsePool, feed_job

from conftest import query, rss, run, write_config
from test_pages_pipeline import add_site, page_source

ITEMS = [
    {"guid": f"g-{n}", "title": f"Patent notice {n}", "link": f"/news/{n}.html",
     "date": f"Tue, {n % 27 + 1:02d} Aug 2026 10:00:00 GMT",
     "description": f"Notice {n} on patent examination practice and the fees that apply from September. "
                    "Applicants should check the new forms before filing any request with the office."}
    for n in range(1, 13)
]

# Which of two feeds sharing an item archives it first is a race in both modes: compare by URL.
ARCHIVE_QUERY = """SELECT url_canonical, title, published, summary, body, topics, language, extraction,
                          cluster_id = id, (SELECT count(*) FROM article_sources s WHERE s.article_id = a.id),
                          (SELECT count(*) FROM article_snapshots s WHERE s.article_id = a.id)
                   FROM articles a ORDER BY url_canonical"""


def sources(server: LoopbackServer) -> list[dict]:
    feeds = [{"id": f"feed-{k}", "office": "WIPO", "kind": "feed", "url": server.url(f"/feed-{k}.xml")}
             for k in range(3)]
    return [*feeds, page_source(server)]


def serve(server: LoopbackServer) -> None:
    for k in range(3):
        server.add(f"/feed-{k}.xml", rss(ITEMS[k * 4:(k + 1) * 4 + 2]),
                   headers={"Content-Type": "application/rss+xml"})
    add_site(server, [[301, 302, 303], [304]])


def archive_after_fetch(tmp_path, server: LoopbackServer, name: str, workers: int) -> list[tuple]:
    db = tmp_path / f"{name}.db"
    config = write_config(tmp_path / f"{name}.yaml", sources(server), {"parse_workers": workers})
    result = run(["fetch"], config, db)
    assert result.exit_code == 0, result.output
    return query(db, ARCHIVE_QUERY)


def test_worker_processes_and_threads_build_the_same_archive(tmp_path):
    with LoopbackServer() as server:
        serve(server)
        threaded = archive_after_fetch(tmp_path, server, "threads", 0)
        pooled = archive_after_fetch(tmp_path, server, "pool", 1)
    assert len(threaded) == 12 + 4  # 12 feed items (2 shared by neighbouring feeds) + 4 article pages
    assert pooled == threaded
    fts = query(tmp_path / "pool.db", "SELECT count(*) FROM articles_fts")
    assert fts == [(16,)]


def test_index_text_computed_in_a_worker_is_what_the_trigger_would_index(tmp_path):
    article = Article(id="x", source_id="s", office="CNIPA", url="http://h/a", title="國家知識產權局 專利",
                      body="专利审查 patent examination", language="zh", topics=("专利",))
    derived = derive(article)
    assert isinstance(derived, Derived)
    with Archive(tmp_path / "a.db") as archive:
        for text, language, indexed in derived.index:
            computed = archive.db.execute("SELECT ipnews_fts_text(?, ?)", [text, language]).fetchone()[0]
            assert computed == indexed
    assert pickle.loads(pickle.dumps(derived)) == derived


def test_a_parse_error_in_a_worker_fails_only_that_source(tmp_path):
    db = tmp_path / "a.db"
    with LoopbackServer() as server:
        serve(server)
        server.add("/broken.xml", b"<html><body>not a feed</body></html>", headers={"Content-Type": "text/html"})
        listed = [*sources(server), {"id": "broken", "office": "EPO", "kind": "feed", "url": server.url("/broken.xml")}]
        config = write_config(tmp_path / "feeds.yaml", listed, {"parse_workers": 1})
        result = run(["fetch"], config, db)
    assert result.exit_code == 3
    assert "broken" in result.stderr and "Traceback" not in result.stderr
    assert query(db, "SELECT count(*) FROM articles") == [(16,)]


def _die(_: object) -> None:
    import os

    os._exit(1)


def test_a_dead_worker_fails_its_job_and_the_pool_recovers():
    import concurrent.futures

    async def scenario():
        with ParsePool(1) as pool:
            with pytest.raises(concurrent.futures.process.BrokenProcessPool):
                await pool.run(_die, None)
            return await pool.run(len, b"abc")

    assert asyncio.run(scenario()) == 3


def test_feed_job_returns_articles_with_their_derived_data():
    from aggregator.types import FetchResult, Source

    body = rss(ITEMS[:3])
    result = FetchResult(url="http://h/f.xml", final_url="http://h/f.xml", status=200,
                         headers={"content-type": "application/rss+xml"}, content=body)
    source = Source(id="s", office="WIPO", name="s", kind="feed", url="http://h/f.xml", interval=3600)
    parsed = feed_job(result, source, {})
    assert [f.article.guid for f in parsed.articles] == ["g-1", "g-2", "g-3"]
    assert [f.derived.url_key for f in parsed.articles] == [f"https://h/news/{n}.html" for n in (1, 2, 3)]
    assert parsed.articles[0].packed is parsed.articles[1].packed  # one snapshot per response
