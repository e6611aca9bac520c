"""Feed entries the archive holds exactly as a feed repeats them are not normalized again.

A changed feed mostly repeats what it said before. Each entry's digest (of what the format's
reader made of it, the source's settings and the parser's version) is stored with the item; an
entry with a known digest is only marked seen. The archive must end up exactly as if every entry
had been normalized and compared.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from aggregator.loopback import LoopbackServer
from aggregator.sources.feed import parse_feed_report
from aggregator.store import Archive
from aggregator.types import FetchedArticle, Source

from conftest import query, rss, run, write_config

URL = "https://office.example/news/rss.xml"
SOURCE = Source(id="wipo", office="WIPO", name="WIPO news", kind="feed", url=URL, interval=3600)
RSS = {"content-type": "application/rss+xml"}
ITEMS = [
    {"guid": f"PR-{n}", "title": f"Item {n}", "link": f"/news/{n}.html", "date": f"Tue, 0{n} Aug 2026 10:00:00 GMT",
     "description": f"<p>Text of item {n}, with <b>markup</b>.</p>"}
    for n in range(1, 5)
]
JSON_FEED = {"version": "https://jsonfeed.org/version/1.1", "title": "News", "items": [
    {"id": f"j{n}", "url": f"https://office.example/j/{n}", "title": f"JSON item {n}",
     "content_html": f"<p>Body {n}</p>", "date_published": f"2026-08-0{n}T10:00:00Z"} for n in range(1, 4)]}


def _known(report) -> dict[str, str]:
    return {digest: article.id for article, digest in zip(report.articles, report.digests, strict=True)}


@pytest.mark.parametrize("content, headers", [
    (rss(ITEMS), RSS),
    (json.dumps(JSON_FEED).encode(), {"content-type": "application/feed+json"}),
], ids=["rss", "json"])
def test_known_entries_are_left_unread_and_the_rest_read_as_before(content, headers):
    first = parse_feed_report(content, headers, SOURCE, URL, {})
    assert len(first.articles) >= 3 and all(first.digests) and first.unchanged == ()
    assert first.articles == parse_feed_report(content, headers, SOURCE, URL).articles  # digests change nothing

    known = _known(first)
    again = parse_feed_report(content, headers, SOURCE, URL, known)
    assert again.articles == [] and set(again.unchanged) == set(known)

    del known[first.digests[1]]  # the archive lost track of one entry: it is read again
    partly = parse_feed_report(content, headers, SOURCE, URL, known)
    assert partly.articles == [first.articles[1]] and partly.digests == (first.digests[1],)
    assert len(partly.unchanged) == len(first.articles) - 1


def test_a_changed_entry_or_changed_settings_are_read_again():
    first = parse_feed_report(rss(ITEMS), RSS, SOURCE, URL, {})
    known = _known(first)
    edited = [*ITEMS[:2], {**ITEMS[2], "description": "<p>Corrected text.</p>"}, ITEMS[3]]
    report = parse_feed_report(rss(edited), RSS, SOURCE, URL, known)
    assert [a.guid for a in report.articles] == ["PR-3"] and len(report.unchanged) == 3

    for settings in ({"language": "fr"}, {"office": "EPO"}, {"timezone": "Europe/Paris"}):
        report = parse_feed_report(rss(ITEMS), RSS, replace(SOURCE, **settings), URL, known)
        assert len(report.articles) == 4 and report.unchanged == ()
    moved = parse_feed_report(rss(ITEMS), RSS, SOURCE, "https://office.example/other/rss.xml", known)
    assert len(moved.articles) == 4  # relative links resolve against another address
    aliased = parse_feed_report(rss(ITEMS), RSS, SOURCE, URL, known, context="{'old.example': 'office.example'}")
    assert len(aliased.articles) == 4


def test_a_repeated_guid_keeps_its_first_entry_known_or_not():
    items = [ITEMS[0], ITEMS[1], {**ITEMS[1], "title": "The same GUID again, other text"}]
    first = parse_feed_report(rss(items), RSS, SOURCE, URL, {})
    assert [a.title for a in first.articles] == ["Item 1", "Item 2"]
    again = parse_feed_report(rss(items), RSS, SOURCE, URL, _known(first))
    assert again.articles == [] and len(again.unchanged) == 2  # the repeat is not read as a change


def _save(archive, items, now, unchanged=()):
    return archive.save_source_results(SOURCE, items, None, None, now=now, unchanged=unchanged)


def test_archive_marks_unchanged_entries_seen_as_an_unchanged_save_would(tmp_path):
    first = parse_feed_report(rss(ITEMS), RSS, SOURCE, URL, {})
    day1, day2 = datetime(2026, 8, 10, tzinfo=UTC), datetime(2026, 8, 11, tzinfo=UTC)
    with Archive(tmp_path / "a.db") as archive:
        archive.sync_sources([SOURCE])
        _save(archive, [FetchedArticle(a, digest=d) for a, d in zip(first.articles, first.digests, strict=True)], day1)
        hashes, digests = archive.known_items(SOURCE.id)
        assert digests == _known(first) and len(hashes) == 4
        archive.db.execute("UPDATE articles SET change_streak = 2")  # as after two changes in a row
        before = list(archive.rows("SELECT id, title, body, content_hash, revision_count FROM articles ORDER BY id"))

        saved = _save(archive, [], day2, unchanged=list(digests))
        assert (saved.seen, saved.new, saved.changed) == (4, 0, 0)
        assert list(archive.rows("SELECT id, title, body, content_hash, revision_count FROM articles ORDER BY id")) == before
        assert {r["last_seen"] for r in archive.rows("SELECT last_seen FROM articles")} == {"2026-08-11T00:00:00Z"}
        assert {r["last_seen"] for r in archive.rows("SELECT last_seen FROM article_sources")} == {"2026-08-11T00:00:00Z"}
        assert {r["change_streak"] for r in archive.rows("SELECT change_streak FROM articles")} == {0}


def _feed_config(server, tmp_path):
    return write_config(tmp_path / "feeds.yaml", [
        {"id": "wipo", "office": "WIPO", "name": "WIPO", "kind": "feed", "url": server.url("/wipo.xml")},
        {"id": "mirror", "office": "WIPO", "name": "Mirror", "kind": "feed", "url": server.url("/mirror.xml")},
    ])


STATE = {
    "articles": "SELECT id, source_id, title, summary, body, body_html, content_hash, change_streak, revision_count, "
                "cluster_id, snapshot_id FROM articles ORDER BY id",
    "sources": "SELECT source_id, item_key, article_id, url FROM article_sources ORDER BY source_id, item_key",
    "fetches": "SELECT source_id, items_seen, items_new, items_changed FROM fetches ORDER BY id",  # sorted per poll
    "revisions": "SELECT article_id, changed_fields FROM article_revisions ORDER BY id",
    "index": "SELECT rowid FROM articles_fts WHERE articles_fts MATCH 'item OR corrected' ORDER BY rowid",
}


def _three_polls(tmp_path, name):
    """Poll a feed and a mirror of it three times, the feeds changing between polls; the state."""
    db = tmp_path / f"{name}.db"
    with LoopbackServer() as server:  # no validators: every poll reads every entry
        config = _feed_config(server, tmp_path)
        versions = [
            ITEMS[:3],
            [{**ITEMS[0], "description": "<p>Corrected text.</p>"}, *ITEMS[1:4]],
            [{**ITEMS[0], "description": "<p>Corrected text.</p>"}, *ITEMS[1:4]],
        ]
        for poll, items in enumerate(versions):
            # The mirror repeats items 2 and 3 once the office's feed has them (no race for them).
            server.add("/wipo.xml", rss(items), headers={"Content-Type": "application/rss+xml"})
            server.add("/mirror.xml", rss(ITEMS[1:3] if poll else [], title="Mirror"),
                       headers={"Content-Type": "application/rss+xml"})
            result = run(["fetch", "--all"], config, db)
            assert result.exit_code == 0, result.output
        state = {name: query(db, sql) for name, sql in STATE.items()}
        origin = server.url("/").rstrip("/")
    state["sources"] = [(*row[:3], row[3].removeprefix(origin)) for row in state["sources"]]
    polls = state["fetches"]
    state["fetches"] = [sorted(polls[i:i + 2]) for i in range(0, len(polls), 2)]  # the two sources run at once
    return state


def test_the_archive_ends_the_same_with_and_without_known_entries(tmp_path, monkeypatch):
    marked = []
    mark = Archive._mark_unchanged
    monkeypatch.setattr(Archive, "_mark_unchanged",
                        lambda self, *args: marked.append(mark(self, *args)) or marked[-1])
    with_digests = _three_polls(tmp_path, "digests")
    assert sum(marked) == 8  # known entries only marked seen: 2 (wipo) on the second poll, 4 + 2 on the third
    monkeypatch.undo()
    original = Archive.known_items
    monkeypatch.setattr(Archive, "known_items", lambda self, source_id: (original(self, source_id)[0], {}))
    without = _three_polls(tmp_path, "plain")
    assert with_digests == without
    assert with_digests["fetches"][-1] == [("mirror", 2, 0, 0), ("wipo", 4, 0, 0)]
