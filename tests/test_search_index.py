"""The FTS index's layout (issue #7): date-ordered rowids, facet tokens, and search results that
stay exactly what a plain SQL query over every match would give."""

from __future__ import annotations

import json
import random
import sqlite3

import pytest
import sqlite_utils

from aggregator import search
from aggregator.search import (
    SEQ_BITS,
    SEQ_MASK,
    SearchFilters,
    date_key,
    date_key_sql,
    index_text,
    parse_query,
    search_articles,
)
from aggregator.store import FTS_HASH_BYTES, Archive, FetchRecord, SourceState, migrations
from aggregator.types import Article, Source, article_id

WORDS = ("patent", "trademark", "design", "fees", "court", "madrid", "unitary", "examination", "office", "news")
DAYS = ("1965-03-01", "1999-12-31", "2024-05-01", "2024-05-01T10:00:05Z", "2024-05-01T10:00:59Z",
        "2024-05-01T10:01:00Z", "2024-05-02", "2025-01-01T00:00:00Z", None)


def fts_rows(db) -> list[tuple]:
    """Every (term, rowid, column, offset) in the index: two equal lists mean two equal indexes."""
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts_instances USING fts5vocab(main, articles_fts, instance)")
    return db.execute("SELECT term, doc, col, offset FROM temp.fts_instances ORDER BY 1, 2, 3, 4").fetchall()


@pytest.fixture
def corpus(tmp_path):
    """Many same-day articles (dates and times), undated and pre-1970 ones, two offices, clusters."""
    rng = random.Random(7)
    archive = Archive(tmp_path / "a.db")
    db = archive.db
    with archive.write_transaction():
        for sid, office, lang in (("epo-news", "EPO", "en"), ("jpo_press", "JPO", "ja"), ("dpma", "DPMA", "de")):
            db.execute("INSERT INTO sources (id, office, kind, url, language) VALUES (?, ?, 'feed', ?, ?)",
                       [sid, office, f"https://{sid}.example/rss", lang])
        for n in range(90):
            sid, office, lang = rng.choice((("epo-news", "EPO", "en"), ("jpo_press", "JPO", "ja"),
                                            ("dpma", "DPMA", "de")))
            day = rng.choice(DAYS)
            title = " ".join(rng.choices(WORDS, k=rng.randint(1, 4)))
            body = " ".join(rng.choices(WORDS, k=rng.randint(3, 40))) + (" 特許庁" if office == "JPO" else "")
            topics = '["Patents"]' if n % 3 == 0 else '["Trade marks", "Law"]'
            db.execute(
                """INSERT INTO articles (id, source_id, office, url, url_canonical, title, published, sort_date,
                       topics, language, body, content_hash, extraction, parser_version, first_seen, last_seen,
                       cluster_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'h', 'feed', '1', '2026-01-01', '2026-01-01', ?)""",
                [f"a{n}", sid, office, f"https://x/{n}", f"https://x/{n}", title, day, day, topics, lang, body,
                 f"c{n % 30}" if n % 4 == 0 else f"a{n}"],
            )
    yield archive
    archive.close()


def reference(db, query: str, filters: SearchFilters, sort: str) -> list[tuple[str, float | None]]:
    """The results as the pre-#7 code computed them: every match scored, joined and filtered in
    SQL, sorted, then one row per cluster. Ranked: ties (same rank) broken newest-first. By date:
    sort_date descending, undated last, then fts_rowid descending, with no rank (None)."""
    clauses, params = filters.where("a")
    weights = search._BM25_ARGS
    order = ("rank, a.fts_rowid DESC" if sort == "rank"
             else "a.sort_date IS NULL, a.sort_date DESC, a.fts_rowid DESC")
    rank = f"bm25(articles_fts, {weights})" if sort == "rank" else "NULL"
    rows = db.execute(
        f"""SELECT a.id, a.cluster_id, a.sort_date, {rank} AS rank
            FROM articles_fts JOIN articles a ON a.seq = articles_fts.rowid & {SEQ_MASK}
            WHERE {" AND ".join(["articles_fts MATCH ?", *clauses])} ORDER BY {order}""",
        [parse_query(query).expression, *params]).fetchall()
    chosen: dict[str, tuple] = {}
    for aid, cluster, day, rank in rows:
        best = chosen.get(cluster)
        if best is None:
            chosen[cluster] = (aid, day, rank)
        elif (day or "~") < (best[1] or "~"):
            chosen[cluster] = (aid, day, best[2])
    return [(aid, None if rank is None else round(rank, 4)) for aid, _, rank in chosen.values()]


FILTERS = [
    SearchFilters(),
    SearchFilters(offices=("epo",)),
    SearchFilters(offices=("EPO", "JPO"), since="2024-05-01", until="2024-05-01"),
    SearchFilters(sources=("jpo_press",), languages=("ja",)),
    SearchFilters(topics=("Trade marks",), until="2024-05-01T10:01:00Z"),
    SearchFilters(since="1960-01-01", until="1999-12-31"),
    SearchFilters(since="2024-05-01T10:00:30Z"),
]


@pytest.mark.parametrize("sort", ["rank", "date"])
@pytest.mark.parametrize("filters", FILTERS)
@pytest.mark.parametrize("query", ["patent", "fees OR court", "特許", "trade*", "madrid NOT news"])
def test_results_are_exactly_those_of_a_scan_of_every_match(corpus, monkeypatch, query, filters, sort):
    monkeypatch.setattr(search, "_FIRST_PAGE", 1)  # many small pages, each continuing the last
    monkeypatch.setattr(search, "_MAX_PAGE", 4)
    expected = reference(corpus.db, query, filters, sort)
    got = [(r["id"], r["rank"]) for r in search_articles(corpus.db, query, filters=filters, sort=sort, limit=1000)]
    assert got == expected
    for offset, limit in ((0, 1), (2, 3), (5, 20)):
        page = search_articles(corpus.db, query, filters=filters, sort=sort, limit=limit, offset=offset)
        assert [(r["id"], r["rank"]) for r in page] == expected[offset:offset + limit]


def test_pages_continue_where_they_stopped(corpus, monkeypatch):
    monkeypatch.setattr(search, "_FIRST_PAGE", 1)
    statements: list[str] = []
    corpus.db.conn.set_trace_callback(statements.append)
    try:
        for sort in ("rank", "date"):
            search_articles(corpus.db, "patent OR fees", sort=sort, limit=5)
    finally:
        corpus.db.conn.set_trace_callback(None)
    assert not [s for s in statements if "OFFSET" in s.upper()]
    ranked = [s for s in statements if "ORDER BY score" in s]
    assert len(ranked) == 2  # a top-k, then one statement read to the end as needed


def test_newest_first_never_calls_bm25(corpus, monkeypatch):
    """bm25 reads each phrase's whole document list once per statement (about 25 ms for a common
    word at 1M articles): a date-sorted search issues no statement that scores, so it costs the
    page only, and its rows have no rank."""
    monkeypatch.setattr(search, "_FIRST_PAGE", 2)
    monkeypatch.setattr(search, "_MAX_PAGE", 2)
    statements: list[str] = []
    corpus.db.conn.set_trace_callback(statements.append)
    try:
        results = search_articles(corpus.db, "patent OR fees", sort="date", limit=1)  # reads 50 rows
        filtered = search_articles(corpus.db, "patent", sort="date", limit=3, all_duplicates=True,
                                   filters=SearchFilters(offices=("EPO",), since="1999-01-01"))
    finally:
        corpus.db.conn.set_trace_callback(None)
    walks = [s for s in statements if "ORDER BY rowid DESC" in s]
    pages = [s for s in walks if not s.rstrip().endswith("LIMIT -1")]  # not the completion of a day
    assert len(results) == 1 and len(filtered) == 3 and len(pages) > 2
    assert [r["rank"] for r in results + filtered] == [None] * 4
    assert statements and not [s for s in statements if "bm25" in s.lower() or "rank" in s.lower()]


def test_fts_rowids_are_date_keys_and_seq(corpus):
    db = corpus.db
    rows = db.execute("SELECT seq, sort_date, fts_rowid FROM articles").fetchall()
    assert {rowid for (rowid,) in db.execute("SELECT rowid FROM articles_fts_docsize")} == {r[2] for r in rows}
    for seq, day, rowid in rows:
        assert rowid & SEQ_MASK == seq
        assert rowid >> SEQ_BITS == date_key(day)
        assert (rowid >> SEQ_BITS == 0) == (day is None)  # undated: key 0, after every dated article
    by_date = sorted((r for r in rows if r[1]), key=lambda r: r[1])
    keys = [r[2] >> SEQ_BITS for r in by_date]
    assert keys == sorted(keys) and keys[0] >= 1  # 1965 still sorts after undated, before 1999


@pytest.mark.parametrize("value", [
    "2024-05-01", "2024-05-01T10:00:59Z", "2024-05-01T10:00:00.5Z", "1969-12-31T23:59:59Z", "1970-01-01",
    "1000-01-01T00:00:59Z", "0999-12-31", "0001-01-01", "9999-12-31", "2024-02-29T23:59:00Z",
])
def test_date_key_in_python_agrees_with_the_sql(value):
    db = sqlite3.connect(":memory:")
    assert date_key(value) == db.execute(f"SELECT {date_key_sql('?1')}", [value]).fetchone()[0]


def test_a_revised_date_moves_the_article_in_the_index(tmp_path):
    source = Source(id="epo", office="EPO", name="e", kind="feed", url="https://epo.example/rss", interval=3600)
    with Archive(tmp_path / "a.db") as archive:
        archive.sync_sources([source])

        def save(day: str, body: str) -> None:
            article = Article(id=article_id("epo", "x"), source_id="epo", office="EPO", url="https://epo.example/1",
                              title="Unitary patent fees", body=body, published=day, language="en")
            archive.save_source_results(source, [article], FetchRecord("r", "epo", day, 1), SourceState("epo"))

        save("2024-01-01T00:00:00Z", "first")
        old = archive.db.execute("SELECT fts_rowid FROM articles").fetchone()[0]
        save("2025-06-01T12:00:00Z", "corrected")
        new = archive.db.execute("SELECT fts_rowid FROM articles").fetchone()[0]
        assert new >> SEQ_BITS > old >> SEQ_BITS and new & SEQ_MASK == old & SEQ_MASK
        assert [r for (r,) in archive.db.execute("SELECT rowid FROM articles_fts WHERE articles_fts MATCH 'unitary'")] \
            == [new]
        assert len(search_articles(archive.db, "corrected", filters=SearchFilters(since="2025-01-01"))) == 1
        assert search_articles(archive.db, "first") == []
        assert search_articles(archive.db, "unitary", filters=SearchFilters(until="2024-12-31")) == []


def test_filters_are_facet_tokens_in_the_match(corpus):
    match = SearchFilters(offices=("EPO", "jpo"), sources=("epo-news",), languages=("en",)).match('"patent"')
    assert match == ('"patent" AND facets : ( "xofficeepo" OR "xofficejpo" ) AND facets : ( "xsourceeponews" ) '
                     'AND facets : ( "xlangen" )')
    count = corpus.db.execute("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?", [match]).fetchone()[0]
    exact = corpus.db.execute(
        f"SELECT count(*) FROM articles_fts JOIN articles a ON a.seq = articles_fts.rowid & {SEQ_MASK} "
        "WHERE articles_fts MATCH 'patent' AND a.source_id = 'epo-news' AND a.language = 'en'").fetchone()[0]
    assert count == exact > 0
    # a prefix query could match a facet token ("xoffice…"): it is kept to the text columns
    assert SearchFilters().match('"xoff" *').startswith("{title summary body topics source_org} : (")
    assert search_articles(corpus.db, "xoff*") == []


def test_rebuild_index_writes_what_the_triggers_wrote(corpus):
    before = fts_rows(corpus.db)
    assert before
    corpus.rebuild_index()
    assert fts_rows(corpus.db) == before
    assert corpus.db.execute("INSERT INTO articles_fts(articles_fts, rank) VALUES ('integrity-check', 0)")


def test_an_archive_at_the_previous_schema_is_migrated_and_reindexed(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.create_function("ipnews_fts_text", 1, lambda t: t or "", deterministic=True)
    conn.create_function("ipnews_fts_text", 2, lambda t, _lang: index_text(t) if isinstance(t, str) else "",
                         deterministic=True)
    db = sqlite_utils.Database(conn)
    migrations.apply(db, stop_before="m007_fts_date_ordered_with_facets")
    db.execute("UPDATE archive_meta SET value = ? WHERE key = 'index_version'", [search.INDEX_VERSION])
    db.execute("INSERT INTO sources (id, office, kind, url) VALUES ('s', 'CNIPA', 'feed', 'https://x')")
    for n, day in enumerate(("2024-03-01", None, "1960-01-01T08:00:00Z")):
        db.execute("INSERT INTO articles (id, source_id, office, url, url_canonical, title, sort_date, language, "
                   "content_hash, extraction, parser_version, first_seen, last_seen) VALUES (?, 's', 'CNIPA', ?, ?, "
                   "?, ?, 'zh', 'h', 'feed', '1', '2026-01-01', '2026-01-01')",
                   [f"a{n}", f"https://x/{n}", f"https://x/{n}", f"国家知识产权局专利公告 {n}", day])
    assert db.execute("SELECT rowid FROM articles_fts").fetchall() == [(1,), (2,), (3,)]  # rowid = seq
    conn.close()
    with Archive(path) as upgraded:
        fts = sorted(r for (r,) in upgraded.db.execute("SELECT rowid FROM articles_fts"))
        assert fts == sorted(r for (r,) in upgraded.db.execute("SELECT fts_rowid FROM articles"))
        assert [r["id"] for r in search_articles(upgraded.db, "专利", sort="date")] == ["a0", "a2", "a1"]
        assert [r["id"] for r in search_articles(upgraded.db, "专利", filters=SearchFilters(offices=("cnipa",),
                                                                                         until="1999-12-31"))] == ["a2"]
        migrated = fts_rows(upgraded.db)
        upgraded.rebuild_index()
        assert fts_rows(upgraded.db) == migrated
        assert fts_config(upgraded.db)["hashsize"] == FTS_HASH_BYTES  # m012 reached the old index too
        assert [i.origin for i in upgraded.db["fingerprint_keys"].indexes] == ["pk"]  # m013: by key only


def fts_config(db):
    return dict(db.execute("SELECT k, v FROM articles_fts_config").fetchall())


def test_the_index_gathers_pending_terms_before_writing_a_segment(corpus):
    config = fts_config(corpus.db)
    assert config["hashsize"] == FTS_HASH_BYTES > 1 << 20  # FTS5's default, 1 MiB, wrote a segment per MiB
    corpus.rebuild_index()
    assert fts_config(corpus.db) == config  # kept in the index's config table: a rebuild keeps it


def test_datasette_style_rank_is_the_search_rank(corpus):
    rows = corpus.db.execute("SELECT rowid, rank FROM articles_fts WHERE articles_fts MATCH 'patent' ORDER BY rank"
                             ).fetchall()
    ours = {r["id"]: r["rank"] for r in search_articles(corpus.db, "patent", limit=1000, all_duplicates=True)}
    ids = dict(corpus.db.execute("SELECT fts_rowid, id FROM articles").fetchall())
    assert {ids[rowid]: round(rank, 4) for rowid, rank in rows} == ours


@pytest.mark.parametrize("text, language, expected", [
    ("Unitary patent fees", "en", "Unitary patent fees"),
    ("Café – Marke „neu“", "de", "Café – Marke „neu“"),
    ("EPO’s 特許 news", None, "EPO’s  特许  news"),  # Han without kana: read as Chinese, folded
    ("國家知識產權局", "zh", " 国家 家知 知识 识产 产权 权局 "),
    ("", "en", ""),
])
def test_index_text_output_is_pinned(text, language, expected):
    assert index_text(text, language) == expected


def test_search_on_an_archive_written_by_an_older_ipnews_upgrades_it_first(tmp_path):
    """`ipnews search` opens the archive read-only; an older schema is migrated once, not an error."""
    from conftest import run

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.create_function("ipnews_fts_text", 2, lambda t, _lang: index_text(t) if isinstance(t, str) else "",
                         deterministic=True)
    db = sqlite_utils.Database(conn)
    migrations.apply(db, stop_before="m007_fts_date_ordered_with_facets")
    db.execute("INSERT INTO sources (id, office, kind, url) VALUES ('s', 'EPO', 'feed', 'https://x')")
    db.execute("INSERT INTO articles (id, source_id, office, url, url_canonical, title, sort_date, language, "
               "content_hash, extraction, parser_version, first_seen, last_seen) VALUES ('a1', 's', 'EPO', "
               "'https://x/1', 'https://x/1', 'Unitary patent news', '2024-03-01', 'en', 'h', 'feed', '1', "
               "'2026-01-01', '2026-01-01')")
    conn.close()
    result = run(["search", "unitary", "--format", "json"], db=path)
    assert result.exit_code == 0, result.stderr
    assert [hit["id"] for hit in json.loads(result.output)] == ["a1"]


def test_a_foreign_sqlite_file_is_never_upgraded(tmp_path):
    from aggregator.store import needs_upgrade

    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE notes (x)").connection.commit()
    assert needs_upgrade(path) is False
