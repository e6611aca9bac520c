"""`ipnews backfill` (resumable history walks) and `ipnews check` (recipe diagnosis)."""

from __future__ import annotations

from test_pages_pipeline import RECIPE, add_site, page_source

from aggregator.loopback import LoopbackServer

from conftest import paths, query, rss, run, write_config

PAGES = [[n * 10 + i for i in range(3)] for n in range(1, 6)]  # five list pages, three articles each


def test_backfill_walks_older_pages_and_resumes_where_it_stopped(tmp_path, archive_path):
    with LoopbackServer() as server:
        add_site(server, PAGES)
        config = write_config(tmp_path / "feeds.yaml", [page_source(server, list={**RECIPE["list"], "max_pages": 1})])
        first = run(["backfill", "cnipa-zh", "--pages", "2"], config, archive_path)
        assert first.exit_code == 0, first.output
        assert "page 2: 3 entries, 3 new" in first.output and "run again to continue" in first.output
        assert query(archive_path, "SELECT count(*) FROM articles") == [(6,)]
        server.reset_stats()
        second = run(["backfill", "cnipa-zh", "--pages", "10"], config, archive_path)
        assert "reached the last list page" in second.output
        lists = [p for p in paths(server) if "/col/" in p]
        assert lists == ["/col/col53/index_3.html", "/col/col53/index_4.html", "/col/col53/index_5.html"]
        assert query(archive_path, "SELECT count(*) FROM articles") == [(15,)]
        again = run(["backfill", "cnipa-zh"], config, archive_path)
        assert "already (use --restart)" in again.output


def test_an_interrupted_backfill_resumes_at_the_failed_page(tmp_path, archive_path):
    with LoopbackServer() as server:
        add_site(server, PAGES[:3])
        server.add("/col/col53/index_2.html", b"busy", status=503)
        config = write_config(tmp_path / "feeds.yaml", [page_source(server)])
        failed = run(["backfill", "cnipa-zh"], config, archive_path)
        assert failed.exit_code == 3 and "run backfill again to resume" in failed.stderr
        add_site(server, PAGES[:3])
        server.reset_stats()
        resumed = run(["backfill", "cnipa-zh"], config, archive_path)
        assert resumed.exit_code == 0
        assert [p for p in paths(server) if "/col/" in p] == ["/col/col53/index_2.html", "/col/col53/index_3.html"]
    assert query(archive_path, "SELECT count(*) FROM articles") == [(9,)]


def test_backfill_needs_a_page_source_with_a_next_selector(tmp_path, archive_path):
    with LoopbackServer() as server:
        config = write_config(tmp_path / "feeds.yaml", [
            {"id": "feed", "office": "EPO", "url": server.url("/rss.xml")},
            page_source(server, list={"item": "ul.list li"}),
        ])
        assert run(["backfill", "feed"], config, archive_path).exit_code == 2
        result = run(["backfill", "cnipa-zh"], config, archive_path)
        assert result.exit_code == 2 and "needs a list.next selector" in result.stderr


def test_check_shows_what_each_selector_matches(tmp_path, archive_path):
    with LoopbackServer() as server:
        add_site(server, PAGES[:1])
        server.add("/rss.xml", rss([{"guid": "a", "title": "Fee notice", "link": "/a"}]),
                   headers={"Content-Type": "application/rss+xml"})
        config = write_config(tmp_path / "feeds.yaml", [
            page_source(server),
            {"id": "feed", "office": "EPO", "url": server.url("/rss.xml")},
            page_source(server, id="broken", list={"item": "ul.news li"}),
        ])
        good = run(["check", "cnipa-zh"], config, archive_path)
        assert good.exit_code == 0, good.output
        assert "item     'ul.list li': 3 matches" in good.output
        assert "3 entries (3 with a date)" in good.output
        assert "title          专利审查通知第10号" in good.output
        assert "extraction     selectors" in good.output
        other = run(["check", "cnipa-zh", "--url", server.url("/art/2026/8/12/art_53_11.html")], config, archive_path)
        assert "专利审查通知第11号" in other.output
        feed = run(["check", "feed"], config, archive_path)
        assert feed.exit_code == 0 and "1 items" in feed.output and "Fee notice" in feed.output
        broken = run(["check", "broken"], config, archive_path)
        assert broken.exit_code == 3 and "!! item selector 'ul.news li' matched nothing" in broken.output
    assert not archive_path.exists()  # check writes nothing
