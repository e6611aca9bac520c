"""ipnews's own writes index new articles at commit, in rowid order (issue #7): the index must
come out exactly as if every trigger had indexed at once, whatever the transaction did."""

from __future__ import annotations

import sqlite3

import pytest

from aggregator.sources.feed import parse_feed
from aggregator.store import Archive, register_index_function
from aggregator.types import Source

from conftest import rss

COLUMNS = ("id, source_id, office, url, url_canonical, title, published, sort_date, language, body, "
           "content_hash, extraction, parser_version, first_seen, last_seen, cluster_id")


def fts_rows(db) -> list[tuple]:
    """Every (term, rowid, column, offset) in the index: two equal lists mean two equal indexes."""
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts_instances USING fts5vocab(main, articles_fts, instance)")
    return db.execute("SELECT term, doc, col, offset FROM temp.fts_instances ORDER BY 1, 2, 3, 4").fetchall()


def insert(db, n: int, day: str | None, title: str, body: str = "unitary patent court fees") -> None:
    db.execute(
        f"INSERT INTO articles ({COLUMNS}) VALUES (?, 'epo', 'EPO', ?, ?, ?, ?, ?, 'en', ?, 'h', 'feed', '1', "
        "'2026-01-01', '2026-01-01', ?)",
        [f"a{n}", f"https://x/{n}", f"https://x/{n}", title, day, day, body, f"a{n}"],
    )


@pytest.fixture
def archive(tmp_path):
    archive = Archive(tmp_path / "a.db")
    archive.db.execute("INSERT INTO sources (id, office, kind, url) VALUES ('epo', 'EPO', 'feed', 'https://x/rss')")
    with archive.write_transaction():  # indexed by an earlier transaction
        insert(archive.db, 1, "2024-01-05", "madrid protocol")
        insert(archive.db, 2, "2023-02-01", "design fees")
        insert(archive.db, 3, None, "undated notice")
    yield archive
    archive.close()


def test_a_transaction_of_every_kind_of_change_leaves_the_index_a_rebuild_would_make(archive):
    db = archive.db
    with archive.write_transaction():
        insert(db, 10, "2025-03-01", "new later")
        insert(db, 11, "2019-07-07", "new earlier")  # a smaller rowid after a larger one
        with pytest.raises(RuntimeError), archive.write_transaction():  # a savepoint rolled back
            insert(db, 12, "2020-01-01", "rolled back")
            raise RuntimeError("this source failed")
        insert(db, 13, "2018-01-01", "reuses the rolled-back seq")
        with archive.write_transaction():
            insert(db, 14, "2021-01-01", "pending then revised")
            db.execute("UPDATE articles SET title = 'revised title', sort_date = '2017-01-01' WHERE id = 'a14'")
            insert(db, 15, "2022-01-01", "pending then deleted")
            db.execute("DELETE FROM articles WHERE id = 'a15'")
        db.execute("UPDATE articles SET title = 'indexed before, revised now' WHERE id = 'a1'")
        db.execute("DELETE FROM articles WHERE id = 'a2'")
        assert db.execute("SELECT count(*) FROM articles_fts_docsize").fetchone()[0] == 2  # nothing new yet
    got = fts_rows(db)
    archive.rebuild_index()
    assert got == fts_rows(db)
    ids = {r[0] for r in db.execute("SELECT id FROM articles")}
    assert ids == {"a1", "a3", "a10", "a11", "a13", "a14"}
    assert db.execute("SELECT count(*) FROM articles_fts_docsize").fetchone()[0] == 6
    assert db.execute("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH 'revised'").fetchone()[0] == 2


def test_a_failed_transaction_indexes_nothing_and_the_next_one_is_unaffected(archive):
    db = archive.db
    before = fts_rows(db)
    with pytest.raises(RuntimeError), archive.write_transaction():
        insert(db, 20, "2025-01-01", "never committed")
        raise RuntimeError("boom")
    assert fts_rows(db) == before
    with archive.write_transaction():
        insert(db, 21, "2025-01-02", "committed")
    got = fts_rows(db)
    archive.rebuild_index()
    assert got == fts_rows(db)


def test_writes_outside_our_transactions_and_other_connections_index_at_once(archive):
    db = archive.db
    insert(db, 30, "2025-05-05", "autocommit write")  # no transaction of ours: the trigger indexes
    assert db.execute("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH 'autocommit'").fetchone()[0] == 1
    other = sqlite3.connect(str(archive.path), isolation_level=None)  # e.g. Datasette through our plugin
    register_index_function(other)
    other.execute("BEGIN IMMEDIATE")
    insert(other, 31, "2025-05-06", "another connection")
    assert other.execute("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH 'another'").fetchone()[0] == 1
    other.execute("COMMIT")
    other.close()
    got = fts_rows(db)
    archive.rebuild_index()
    assert got == fts_rows(db)


def revise(archive: Archive, article_id: str, **values) -> None:
    """What Archive._revise_article does to the index: note the entry, then update the row."""
    cursor = archive.db.execute("SELECT *, fts_rowid FROM articles WHERE id = ?", [article_id])
    archive._defer_reindex(dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True)))
    assignments = ", ".join(f"{name} = ?" for name in values)
    archive.db.execute(f"UPDATE articles SET {assignments} WHERE id = ?", [*values.values(), article_id])


def matches(db, query: str) -> int:
    return db.execute("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?", [query]).fetchone()[0]


def test_revisions_of_indexed_articles_are_replaced_at_commit_as_a_rebuild_would_index_them(archive):
    db = archive.db
    with archive.write_transaction():  # indexed before: one with a NUL in its text
        insert(db, 4, "2022-06-06", "ompi bulletin", body="before\x00after the nul")
        insert(db, 5, "2021-05-05", "withdrawn notice")
    with archive.write_transaction():
        insert(db, 40, "2025-01-01", "new this time")
        revise(archive, "a1", title="hague agreement", sort_date="2016-01-01")  # moves to a smaller rowid
        revise(archive, "a3", title="first change")
        revise(archive, "a3", title="second change", language="fr")  # the entry noted first is kept
        with pytest.raises(RuntimeError), archive.write_transaction():  # revised, then rolled back
            revise(archive, "a2", title="never kept")
            raise RuntimeError("this source failed")
        revise(archive, "a4", body="a new body")
        revise(archive, "a40", title="new then revised")  # inserted in this transaction: no entry yet
        insert(db, 41, "2025-02-02", "new and removed")
        revise(archive, "a41", title="removed after a revision")
        db.execute("DELETE FROM articles WHERE id = 'a41'")
        revise(archive, "a5", title="withdrawn and revised")  # indexed before, revised, then deleted
        db.execute("DELETE FROM articles WHERE id = 'a5'")
        # Until the commit, the index holds the entries as they were.
        assert matches(db, "madrid") == 1 and matches(db, "hague") == 0 and matches(db, "ompi") == 1
    assert (matches(db, "madrid"), matches(db, "hague"), matches(db, "second"), matches(db, "first")) == (0, 1, 1, 0)
    assert matches(db, "never") == 0 and matches(db, "design") == 1 and matches(db, "removed") == 0
    assert matches(db, "withdrawn") == 0
    got = fts_rows(db)
    archive.rebuild_index()
    assert got == fts_rows(db)
    assert db.execute("SELECT count(*) FROM articles_fts_docsize").fetchone()[0] == 5


def test_a_failed_transaction_with_revisions_leaves_the_index_as_it_was(archive):
    db = archive.db
    before = fts_rows(db)
    with pytest.raises(RuntimeError), archive.write_transaction():
        revise(archive, "a1", title="never committed")
        raise RuntimeError("boom")
    assert fts_rows(db) == before
    with archive.write_transaction():  # nothing noted by the failed one is replaced now
        insert(db, 50, "2025-01-02", "committed")
    got = fts_rows(db)
    archive.rebuild_index()
    assert got == fts_rows(db)


def test_a_poll_that_revises_an_article_defers_its_index_entry_to_the_commit(tmp_path):
    url = "https://office.example/news/rss.xml"
    source = Source(id="wipo", office="WIPO", name="WIPO news", kind="feed", url=url, interval=3600)
    item = {"guid": "PR-1", "title": "Fee notice", "link": "/news/1.html", "date": "Tue, 04 Aug 2026 10:00:00 GMT",
            "description": "<p>The madrid fees change in October.</p>"}
    headers = {"content-type": "application/rss+xml"}
    with Archive(tmp_path / "a.db") as archive:
        archive.sync_sources([source])
        archive.save_source_results(source, parse_feed(rss([item]), headers, source, url), None, None)
        corrected = parse_feed(rss([{**item, "description": "<p>The hague fees change in October.</p>"}]),
                               headers, source, url)
        with archive.group_commit():  # as a poll's writer saves
            assert archive.save_source_results(source, corrected, None, None).changed == 1
            assert (matches(archive.db, "madrid"), matches(archive.db, "hague")) == (1, 0)  # not replaced yet
        assert (matches(archive.db, "madrid"), matches(archive.db, "hague")) == (0, 1)
        got = fts_rows(archive.db)
        archive.rebuild_index()
        assert got == fts_rows(archive.db)
