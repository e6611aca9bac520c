"""Page sources through the real pipeline: lists, pagination, article pages, feed + page overlap."""

from __future__ import annotations

import json

from aggregator.loopback import LoopbackServer

from conftest import paths, query, rss, run, write_config

LIST = """<html lang="zh"><body><ul class="list clearfix">{items}</ul>{next}</body></html>"""
ITEM = '<li><a href="/art/2026/8/{d}/art_53_{n}.html" title="{t}">{t}</a><span>2026-08-{d:02d}</span></li>'
ARTICLE = """<html lang="zh"><head><title>{t}</title></head><body>
<div class="nav">首页 &gt; 新闻</div><h1>{t}</h1>
<div class="info">发布时间：2026/8/{d} 09:30:00来源：国家知识产权局 字体 [大 中 小]</div>
<div class="article"><p>{t}。国家知识产权局近日发布关于专利审查工作的通知，进一步提升专利审查质量和效率。</p>
<p>各地知识产权管理部门要加强对商标和地理标志的保护，做好相关工作。</p></div>
<div class="share">分享到：微信 微博</div></body></html>"""

RECIPE = {
    "list": {"item": "ul.list li", "date": "span", "next": "a.next", "max_pages": 3},
    "article": {"title": "h1", "date": ".info", "body": "div.article", "remove": [".share"]},
}


def add_site(server: LoopbackServer, pages: list[list[int]]) -> None:
    for page_no, numbers in enumerate(pages):
        items = "".join(ITEM.format(d=n % 27 + 1, n=n, t=f"专利审查通知第{n}号") for n in numbers)
        nxt = f'<a class="next" href="index_{page_no + 2}.html">下一页</a>' if page_no + 1 < len(pages) else ""
        name = "index.html" if page_no == 0 else f"index_{page_no + 1}.html"
        server.add(f"/col/col53/{name}", LIST.format(items=items, next=nxt).encode(),
                   headers={"Content-Type": "text/html; charset=utf-8"})
        for n in numbers:
            body = ARTICLE.format(d=n % 27 + 1, t=f"专利审查通知第{n}号").encode()
            server.add(f"/art/2026/8/{n % 27 + 1}/art_53_{n}.html", body, headers={"Content-Type": "text/html"})


def page_source(server, **extra) -> dict:
    return {"id": "cnipa-zh", "office": "CNIPA", "kind": "page", "url": server.url("/col/col53/index.html"),
            "language": "zh", "timezone": "Asia/Shanghai", **RECIPE, **extra}


def test_list_pagination_and_article_pages(tmp_path, archive_path):
    with LoopbackServer() as server:
        add_site(server, [[101, 102, 103], [104, 105], [106]])
        config = write_config(tmp_path / "feeds.yaml", [page_source(server)])
        assert run(["fetch"], config, archive_path).exit_code == 0
        requested = paths(server)
    assert requested.count("/col/col53/index_3.html") == 1
    rows = query(archive_path, "SELECT title, published, source_org, extraction, body FROM articles ORDER BY title")
    assert len(rows) == 6
    title, published, source_org, extraction, body = rows[0]
    assert title == "专利审查通知第101号"
    assert published == "2026-08-21T01:30:00Z"  # 09:30 in Asia/Shanghai
    assert source_org == "国家知识产权局" and extraction == "selectors"
    assert "专利审查质量" in body and "分享到" not in body and "字体" not in body
    hits = json.loads(run(["search", "专利审查", "--format", "json"], db=archive_path).output)
    assert len(hits) == 6


def test_an_unchanged_list_costs_one_request(tmp_path, archive_path):
    with LoopbackServer(auto_validators=True) as server:
        add_site(server, [[201, 202]])
        config = write_config(tmp_path / "feeds.yaml", [page_source(server)])
        run(["fetch"], config, archive_path)
        server.reset_stats()
        run(["fetch", "--all"], config, archive_path)
        assert paths(server) == ["/col/col53/index.html"]
        assert server.conditional_hits == 1

def test_later_polls_fetch_only_new_article_pages(tmp_path, archive_path):
    with LoopbackServer() as plain:  # no validators: the list costs a 200, known articles nothing
        add_site(plain, [[201, 202]])
        config = write_config(tmp_path / "feeds.yaml", [page_source(plain)])
        run(["fetch"], config, archive_path)
        add_site(plain, [[201, 202, 203]])
        plain.reset_stats()
        run(["fetch", "--all"], config, archive_path)
        assert sorted(paths(plain)) == ["/art/2026/8/15/art_53_203.html", "/col/col53/index.html"]
    assert query(archive_path, "SELECT count(*) FROM articles") == [(3,)]


def test_an_article_in_a_feed_and_a_page_list_is_archived_once(tmp_path, archive_path):
    with LoopbackServer() as server:
        add_site(server, [[301]])
        server.add("/rss.xml", rss([{"guid": "cnipa-301", "title": "专利审查通知第301号",
                                     "link": "/art/2026/8/5/art_53_301.html", "description": "摘要"}]),
                   headers={"Content-Type": "application/rss+xml"})
        config = write_config(tmp_path / "feeds.yaml", [
            {"id": "cnipa-feed", "office": "CNIPA", "url": server.url("/rss.xml")},
            page_source(server),
        ])
        assert run(["fetch", "--source", "cnipa-feed"], config, archive_path).exit_code == 0
        assert run(["fetch", "--source", "cnipa-zh"], config, archive_path).exit_code == 0
    assert query(archive_path, "SELECT count(*) FROM articles") == [(1,)]
    assert query(archive_path, "SELECT source_id, extraction FROM articles") == [("cnipa-zh", "selectors")]
    assert sorted(query(archive_path, "SELECT source_id FROM article_sources")) == [("cnipa-feed",), ("cnipa-zh",)]
    assert "专利审查质量" in query(archive_path, "SELECT body FROM articles")[0][0]  # the page's full text won


def test_a_list_that_matches_nothing_is_reported_as_a_broken_recipe(tmp_path, archive_path):
    with LoopbackServer() as server:
        server.add("/col/col53/index.html", b"<html><body><div class='redesigned'></div></body></html>",
                   headers={"Content-Type": "text/html"})
        config = write_config(tmp_path / "feeds.yaml", [page_source(server)])
        result = run(["fetch"], config, archive_path)
    assert result.exit_code == 3
    ((error,),) = query(archive_path, "SELECT last_error FROM sources")
    assert "matched nothing (recipe broken?)" in error


def test_failed_article_pages_degrade_the_source_without_losing_the_rest(tmp_path, archive_path):
    with LoopbackServer() as server:
        add_site(server, [[401, 402, 403]])
        server.add("/art/2026/8/25/art_53_402.html", b"gone", status=404)
        config = write_config(tmp_path / "feeds.yaml", [page_source(server)])
        result = run(["fetch"], config, archive_path)
        assert result.exit_code == 0
        assert query(archive_path, "SELECT count(*) FROM articles") == [(2,)]
        ((error,),) = query(archive_path, "SELECT last_error FROM sources")
        assert "1 of 3 article pages failed" in error
        server.add("/art/2026/8/25/art_53_402.html", ARTICLE.format(d=25, t="专利审查通知第402号").encode(),
                   headers={"Content-Type": "text/html"})
        run(["fetch", "--all"], config, archive_path)  # the failed page is retried, the others are not
        assert query(archive_path, "SELECT count(*) FROM articles") == [(3,)]
