"""Revisions, damping, raw snapshots, reparse and WARC: an archive a librarian can trust."""

from __future__ import annotations

import io
import json
import sqlite3

from warcio.archiveiterator import ArchiveIterator

from aggregator.loopback import LoopbackServer, Route
from aggregator.store import Archive, migrations
from aggregator.warc import write_warc

from conftest import query, rss, run, write_config

PAGE = """<html lang="en"><body><h1>Fee changes for 2027</h1>
<div class="info">Date: 2026-11-02</div>
<div class="body"><p>The office will change its filing fees on 1 January 2027.</p>
<p>The fee for a patent application will be {fee} euros.</p><p>{clock}</p></div></body></html>"""
LIST = '<html><body><ul class="list"><li><a href="/news/fees.html">Fee changes for 2027</a></li></ul></body></html>'


def page_site(server, fee="120", clock=""):
    server.add("/news/index.html", LIST.encode(), headers={"Content-Type": "text/html"})
    server.add("/news/fees.html", PAGE.format(fee=fee, clock=clock).encode(), headers={"Content-Type": "text/html"})


def page_source(server):
    return {"id": "office-news", "office": "EPO", "kind": "page", "url": server.url("/news/index.html"),
            "language": "en", "list": {"item": "ul.list li"},
            "article": {"title": "h1", "date": ".info", "body": "div.body"}}


def test_a_corrected_notice_keeps_its_previous_version_and_show_prints_the_diff(tmp_path, archive_path):
    with LoopbackServer() as server:
        server.add("/rss.xml", rss([{"guid": "n1", "title": "Fee notice", "link": "/n1",
                                     "description": "The fee will be 120 euros."}]),
                   headers={"Content-Type": "application/rss+xml"})
        config = write_config(tmp_path / "feeds.yaml", [{"id": "f", "office": "EPO", "url": server.url("/rss.xml")}])
        run(["fetch"], config, archive_path)
        server.add("/rss.xml", rss([{"guid": "n1", "title": "Fee notice (corrected)", "link": "/n1",
                                     "description": "The fee will be 150 euros."}]),
                   headers={"Content-Type": "application/rss+xml"})
        run(["fetch", "--all"], config, archive_path)
    ((article_id,),) = query(archive_path, "SELECT id FROM articles")
    revisions = query(archive_path, "SELECT changed_fields, previous FROM article_revisions")
    assert len(revisions) == 1
    assert json.loads(revisions[0][0]) == ["title", "summary", "body"]
    assert json.loads(revisions[0][1])["body"] == "The fee will be 120 euros."
    shown = run(["show", article_id[:8]], db=archive_path)
    assert shown.exit_code == 0
    assert "-The fee will be 120 euros." in shown.output and "+The fee will be 150 euros." in shown.output
    assert "Raw snapshots (2)" in shown.output
    history = json.loads(run(["show", article_id, "--format", "json"], db=archive_path).output)
    assert [s["source_id"] for s in history["sources"]] == ["f"]
    assert run(["show", "nope"], db=archive_path).exit_code == 2


def test_a_page_with_a_changing_clock_does_not_flood_the_history(tmp_path, archive_path):
    polls = {"n": 0}

    def article(_request):
        polls["n"] += 1
        return Route(body=PAGE.format(fee="120", clock=f"Page generated at 12:00:{polls['n']:02d}").encode(),
                     headers={"Content-Type": "text/html"})

    with LoopbackServer() as server:
        page_site(server)
        server.add("/news/fees.html", Route(handler=article))
        config = write_config(tmp_path / "feeds.yaml", [page_source(server)])
        run(["fetch"], config, archive_path)
        for _ in range(8):
            # forget the page so each poll fetches it again, as a source listing it daily would
            conn = sqlite3.connect(archive_path)
            conn.execute("DELETE FROM article_sources")
            conn.commit()
            conn.close()
            run(["fetch", "--all"], config, archive_path)
    assert polls["n"] == 9
    assert query(archive_path, "SELECT count(*) FROM articles") == [(1,)]
    (revisions,) = query(archive_path, "SELECT count(*) FROM article_revisions")[0]
    assert revisions == 2  # two changes in a row are kept; then the article is known to be volatile
    assert "12:00:09" in query(archive_path, "SELECT body FROM articles")[0][0]  # but it stays current


def test_changes_in_words_are_always_kept(tmp_path, archive_path):
    with LoopbackServer() as server:
        config_path = write_config(tmp_path / "feeds.yaml", [{"id": "f", "office": "EPO", "url": server.url("/rss.xml")}])
        for word in ("filing", "search", "examination", "renewal", "appeal"):
            server.add("/rss.xml", rss([{"guid": "n1", "title": "Fee", "link": "/n1", "description": f"The {word} fee"}]),
                       headers={"Content-Type": "application/rss+xml"})
            run(["fetch", "--all"], config_path, archive_path)
    assert query(archive_path, "SELECT count(*) FROM article_revisions") == [(4,)]


def test_snapshots_are_kept_per_article_within_the_retention_setting(tmp_path, archive_path):
    with LoopbackServer() as server:
        config_path = tmp_path / "feeds.yaml"
        for fee in ("100", "110", "120", "130"):
            server.add("/rss.xml", rss([{"guid": "n1", "title": "Fee", "link": "/n1", "description": f"{fee} euros"}]),
                       headers={"Content-Type": "application/rss+xml"})
            write_config(config_path, [{"id": "f", "office": "EPO", "url": server.url("/rss.xml")}],
                         defaults={"snapshots_per_article": 2})
            run(["fetch", "--all"], config_path, archive_path)
    assert query(archive_path, "SELECT count(*) FROM article_snapshots") == [(2,)]
    assert query(archive_path, "SELECT count(*) FROM snapshots") == [(2,)]
    # the articles are never pruned; (the third numbers-only change in a row is damped, see below)
    assert query(archive_path, "SELECT count(*) FROM article_revisions") == [(2,)]
    assert "130 euros" in query(archive_path, "SELECT body FROM articles")[0][0]


def test_reparse_from_snapshots_reproduces_the_same_articles(tmp_path, archive_path):
    from aggregator.demo import CONFIG_PATH, serve_demo_hosts

    with serve_demo_hosts() as (rewrite, servers):
        import shutil

        text = CONFIG_PATH.read_text(encoding="utf-8")
        for host, server in servers.items():
            text = text.replace(f"demo://{host}/", server.url("/"))
        config = tmp_path / "feeds.yaml"
        config.write_text(text, encoding="utf-8")
        assert run(["fetch"], config, archive_path).exit_code == 0
        shutil.copy(config, tmp_path / "kept.yaml")
    before = query(archive_path, "SELECT id, title, published, body, content_hash FROM articles ORDER BY id")
    result = run(["reparse"], config, archive_path)  # the servers are gone: no network needed
    assert result.exit_code == 0, result.output
    assert f"re-parsed {len(before)} articles: 0 changed" in result.output
    assert query(archive_path, "SELECT id, title, published, body, content_hash FROM articles ORDER BY id") == before


def test_warc_export_reads_back(tmp_path, archive_path):
    with LoopbackServer() as server:
        page_site(server)
        config = write_config(tmp_path / "feeds.yaml", [page_source(server)])
        run(["fetch"], config, archive_path)
    buffer = io.BytesIO()
    with Archive(archive_path) as archive:
        assert write_warc(archive.db, buffer) == 1
    records = []
    for record in ArchiveIterator(io.BytesIO(buffer.getvalue())):
        records.append((record.rec_type, record.rec_headers.get_header("WARC-Target-URI"),
                        record.http_headers.get_statuscode() if record.http_headers else None,
                        record.content_stream().read()))
    assert [r[0] for r in records] == ["warcinfo", "response"]
    _, uri, status, body = records[1]
    assert uri.endswith("/news/fees.html") and status == "200"
    assert b"The fee for a patent application will be 120 euros." in body


def test_a_gzipped_response_is_kept_as_sent_and_read_back_whole(tmp_path, archive_path):
    """A server's gzip body is the snapshot itself (no compressing again); show, WARC and reparse
    read it like a zlib one."""
    feed = rss([{"guid": "g1", "title": "Gzipped", "link": "/news/1.html", "description": "Sent compressed."}])
    with LoopbackServer() as server:
        page_site(server)
        server.add("/news/index.html", LIST.encode(), headers={"Content-Type": "text/html"}, gzip=True)
        server.add("/feed.xml", feed, headers={"Content-Type": "application/rss+xml"}, gzip=True)
        config = write_config(tmp_path / "feeds.yaml", [
            page_source(server),
            {"id": "office-feed", "office": "EPO", "kind": "feed", "url": server.url("/feed.xml")},
        ])
        assert run(["fetch"], config, archive_path).exit_code == 0
    kinds = dict(query(archive_path, "SELECT final_url, compression FROM snapshots"))
    assert sorted(kinds.values()) == ["gzip", "zlib"]  # the feed came gzipped, the article page plain
    with Archive(archive_path) as archive:
        for (sid, url) in archive.db.execute("SELECT id, final_url FROM snapshots").fetchall():
            content = archive.snapshot(sid).content
            assert content == (feed if url.endswith("/feed.xml") else PAGE.format(fee="120", clock="").encode())
        buffer = io.BytesIO()
        assert write_warc(archive.db, buffer) == 2
    bodies = [r.content_stream().read() for r in ArchiveIterator(io.BytesIO(buffer.getvalue()))
              if r.rec_type == "response"]
    assert feed in bodies
    result = run(["reparse"], config, archive_path)
    assert result.exit_code == 0 and "0 changed" in result.output, result.output


def test_an_archive_from_the_first_schema_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.db"
    archive = Archive.__new__(Archive)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.create_function("ipnews_fts_text", 1, lambda t: t or "", deterministic=True)
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    migrations.apply(db, stop_before="m002_snapshots_revisions_clusters")
    db.execute("INSERT INTO sources (id, office, kind, url) VALUES ('s', 'EPO', 'feed', 'https://x')")
    db.execute("INSERT INTO articles (id, source_id, office, url, url_canonical, title, content_hash, extraction,"
               " parser_version, first_seen, last_seen) VALUES ('a1', 's', 'EPO', 'https://x/1', 'https://x/1',"
               " 'Old', 'h', 'feed', '1', '2026-01-01', '2026-01-01')")
    conn.close()
    del archive
    with Archive(path) as upgraded:
        assert upgraded.db.execute("SELECT cluster_id, revision_count FROM articles").fetchall() == [("a1", 0)]
        assert upgraded.db["snapshots"].exists()
