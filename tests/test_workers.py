"""Parsing in worker processes and saving on the writer thread give the same archive as threads."""

from __future__ import annotations

import asyncio
import pickle

import pytest
from test_pages_pipeline import add_site, page_source

from aggregator.derived import Derived, derive
from aggregator.loopback import LoopbackServer
from aggregator.store import Archive
from aggregator.types import Article
from aggregator.workers import ParsePool, feed_job

from conftest import query, rss, run, write_config

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


def test_group_commit_keeps_each_save_whole(tmp_path):
    """Saves queued together share a commit, but a failing one rolls back alone."""
    from aggregator.pipeline import ArchiveWriter

    with Archive(tmp_path / "a.db") as archive:
        shared: list[bool] = []  # whether each save ran inside a transaction opened before it

        def write(key: str, fail: bool = False) -> str:
            shared.append(archive.db.conn.in_transaction)
            with archive.write_transaction():
                archive.db.execute("INSERT INTO archive_meta(key, value) VALUES (?, 'x')", [key])
                if fail:
                    raise RuntimeError(f"bug while saving {key}")
            return key

        async def scenario():
            writer = ArchiveWriter(archive, group=8)
            try:
                blocker = writer.call(__import__("time").sleep, 0.2)  # the others queue up behind it
                saves = [writer.save(write, f"k{n}", fail=(n == 2)) for n in range(5)]
                return await asyncio.gather(blocker, *saves, return_exceptions=True)
            finally:
                writer.close()

        results = asyncio.run(scenario())
        keys = {r[0] for r in archive.db.execute("SELECT key FROM archive_meta WHERE key LIKE 'k%'")}
    assert isinstance(results[3], RuntimeError)
    assert results[1:3] + results[4:] == ["k0", "k1", "k3", "k4"]
    assert keys == {"k0", "k1", "k3", "k4"}
    assert shared == [True] * 5  # the five saves queued behind the blocker and shared one commit


def test_a_repolled_feed_derives_only_its_new_and_changed_items():
    from aggregator.types import FetchResult, Source

    result = FetchResult(url="http://h/f.xml", final_url="http://h/f.xml", status=200,
                         headers={"content-type": "application/rss+xml"}, content=rss(ITEMS[:3]))
    source = Source(id="s", office="WIPO", name="s", kind="feed", url="http://h/f.xml", interval=3600)
    first = feed_job(result, source, {})
    known = {"g-1": first.articles[0].article.content_hash, "g-2": "an older hash", "g-9": "gone"}
    again = feed_job(result, source, {}, known)
    assert [f.derived.complete for f in again.articles] == [False, True, True]
    assert again.articles[0].derived.url_key == first.articles[0].derived.url_key
    assert again.articles[1].derived == first.articles[1].derived


def test_an_item_wrongly_taken_for_unchanged_is_still_stored_whole(tmp_path):
    """If the archive changed between the worker's look-up and the save, the writer derives itself."""
    from aggregator.types import FetchResult, Source

    result = FetchResult(url="http://h/f.xml", final_url="http://h/f.xml", status=200,
                         headers={"content-type": "application/rss+xml"},
                         content=rss([{**item, "description": item["description"] * 4} for item in ITEMS[:2]]))
    source = Source(id="s", office="WIPO", name="s", kind="feed", url="http://h/f.xml", interval=3600)
    stale = {f.article.guid: f.article.content_hash for f in feed_job(result, source, {}).articles}
    parsed = feed_job(result, source, {}, stale)  # light, but the archive is still empty
    with Archive(tmp_path / "a.db") as archive:
        archive.sync_sources([source])
        saved = archive.save_source_results(source, parsed.articles, None, None)
        assert saved.new == 2
        assert archive.count("article_fingerprints") == 2
        hits = archive.db.execute("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH 'examination'")
        assert hits.fetchone()[0] == 2


def test_byte_budget_bounds_what_waits_first_come_first_served():
    from aggregator.pipeline import ByteBudget, _Claim

    async def scenario():
        budget = ByteBudget(100)
        a, b, c, d = _Claim(), _Claim(), _Claim(), _Claim()
        await budget.take(a, 60)
        big = asyncio.create_task(budget.take(b, 500))  # larger than the budget: waits until nothing is held
        small = asyncio.create_task(budget.take(c, 10))  # would fit, but waits its turn behind `big`
        await asyncio.sleep(0)
        assert not big.done() and not small.done()
        await budget.take(a, 300)  # a source holding some adds its next responses without waiting
        assert budget.used == 360
        budget.give_back(a)
        await asyncio.sleep(0)
        assert big.done() and not small.done() and budget.used == 500  # alone
        cancelled = asyncio.create_task(budget.take(d, 1))
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.gather(cancelled, return_exceptions=True)
        budget.give_back(b)
        await asyncio.sleep(0)
        assert small.done() and budget.used == 10 and d.held == 0
        budget.give_back(c)
        assert budget.used == 0

    asyncio.run(scenario())


@pytest.mark.parametrize("workers", [0, 1])
def test_a_budget_of_one_byte_polls_one_source_at_a_time_and_archives_the_same(tmp_path, monkeypatch, workers):
    from aggregator import pipeline

    with LoopbackServer() as server:
        serve(server)
        unbounded = archive_after_fetch(tmp_path, server, "unbounded", 0)
        monkeypatch.setattr(pipeline, "INFLIGHT_BYTES", 1)
        bounded = archive_after_fetch(tmp_path, server, f"bounded-{workers}", workers)
    assert bounded == unbounded


PARENT = """
import concurrent.futures, multiprocessing, sys, time
from aggregator.workers import _warm_up
if __name__ == "__main__":
    pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=_warm_up)
    pool.submit(time.sleep, 0).result()  # the worker is up
    (pid,) = pool._processes
    pool.submit(time.sleep, 120)  # busy when its parent is killed
    print(pid, flush=True)
    time.sleep(120)
"""


def test_a_worker_leaves_when_its_parent_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.getcwd()})
    worker = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError("the worker outlived its killed parent")
