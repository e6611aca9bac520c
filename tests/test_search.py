"""Query parsing, CJK indexing and ranked search on a real archive file."""

from __future__ import annotations

import sqlite3

import pytest

from aggregator import search
from aggregator.exceptions import InvalidSearchQuery
from aggregator.search import SearchFilters, index_text, make_snippet, parse_query, search_articles
from aggregator.store import Archive, FetchRecord, SourceState
from aggregator.types import Article, Source, article_id


def test_cjk_runs_are_indexed_as_bigrams():
    assert index_text("知识产权局") .split() == ["知识", "识产", "产权", "权局"]
    assert index_text("PCT出願の特許").split() == ["PCT", "出願", "願の", "の特", "特許"]
    assert index_text("특허청은").split() == ["특허", "허청", "청은"]
    assert index_text("Unitary patent") == "Unitary patent"


@pytest.mark.parametrize(
    "query, expression",
    [
        ("patent", '"patent"'),
        ('"unitary patent"', '"unitary patent"'),
        ("trademark*", '"trademark" *'),
        ("patent OR trademark", '"patent" OR "trademark"'),
        ("patent NOT design", '"patent" NOT "design"'),
        ("知识产权", "\"知识 识产 产权\""),
        ("title:patent", 'title : "patent"'),
        ("(patent OR design) fees", '( "patent" OR "design" ) AND "fees"'),
        # malformed input is read as plain words, never passed through
        ('"unbalanced', '"unbalanced"'),
        ("NEAR(", '"NEAR"'),
        ("title:", '"title"'),
        ("patent AND", '"patent"'),
        ("OR patent", '"patent"'),
        ("((patent", '"patent"'),
        ("patent)", '"patent"'),
        ('x") OR 1=1; --', '"x" OR "1=1"'),
        ("patent 專利", '"patent" AND ( "專利" OR "专利" )'),
        ("a\x00b", '"a" AND "b"'),
    ],
)
def test_queries_become_safe_fts_expressions(query, expression):
    assert parse_query(query).expression == expression


@pytest.mark.parametrize("query", ["", "   ", "AND", "*", "(((", "x" * 1001])
def test_unreadable_queries_are_clear_errors(query):
    with pytest.raises(InvalidSearchQuery):
        parse_query(query)


@pytest.mark.parametrize("seed", range(4))
def test_snippet_is_cut_from_the_text_with_its_whitespace_collapsed(seed):
    """make_snippet collapses only as much whitespace as its window needs: the result is that
    of the whole text collapsed first."""
    import random

    def reference(text, terms, width):
        text = " ".join(text.split())
        pattern = search._term_patterns(terms)
        match = pattern.search(text) if pattern else None
        if match is None:
            return text[:width] + ("…" if len(text) > width else "")
        start = max(0, match.start() - width // 3)
        if start:
            space = text.find(" ", start)
            start = space + 1 if 0 <= space < match.start() else start
        end = min(len(text), start + width)
        marked = pattern.sub(lambda m: f"**{m.group(0)}**", text[start:end])
        return ("…" if start else "") + marked + ("…" if end < len(text) else "")

    rng = random.Random(seed)
    words = ["patent", "Patents", "专利", "专 利", "abc专利", "court", "x", "_patent", "Patent,", "商標", "\u00a0", "\x1c"]
    for _ in range(2000):
        text = "".join(rng.choice(words) + rng.choice([" ", "", "\n\n", "\t ", "\u3000"])
                       for _ in range(rng.choice([0, 1, 5, 40, 300])))
        terms = tuple(rng.sample(["patent", "专利", "court", "商標", "zzz"], rng.randint(0, 2)))
        width = rng.choice([180, 30, 3])
        assert make_snippet(text, terms, width) == reference(text, terms, width), (text, terms, width)


def test_snippet_marks_stemmed_and_cjk_terms():
    assert make_snippet("New patenting rules for SMEs", ("patents",)) == "New **patenting** rules for SMEs"
    assert "**专利**" in make_snippet("国家知识产权局发布专利审查指南", ("专利",))
    long = "word " * 100 + "trademark news " + "word " * 100
    snippet = make_snippet(long, ("trademark",))
    assert snippet.startswith("…") and snippet.endswith("…") and "**trademark**" in snippet


@pytest.fixture
def archive(tmp_path):
    archive = Archive(tmp_path / "a.db")
    sources = [Source(id=s, office=o, name=s, kind="feed", url=f"https://{s}.example/rss", interval=3600)
               for s, o in (("wipo", "WIPO"), ("cnipa", "CNIPA"), ("jpo", "JPO"), ("kipo", "MOIP"))]
    archive.sync_sources(sources)
    docs = {
        "wipo": [("Patent filings grew", "International patents under the PCT grew in 2025.", "2026-03-01", "en"),
                 ("Trademark news", "The Madrid system for trademarks has a new member.", "2026-04-01", "en"),
                 ("Patent in the title only", "Nothing else here.", "2026-01-01", "en")],
        "cnipa": [("国家知识产权局发布专利审查指南", "专利审查指南修改，商标审查同步推进。", "2026-05-01", "zh")],
        "jpo": [("特許庁が新制度を発表", "特許出願の手続きを簡素化します。", "2026-06-01", "ja")],
        "kipo": [("특허청은 새로운 제도를 발표했다", "특허 출원 절차가 간소화된다.", "2026-07-01", "ko")],
    }
    for source in sources:
        articles = [
            Article(id=article_id(source.id, title), source_id=source.id, office=source.office,
                    url=f"https://{source.id}.example/{i}", title=title, body=body, published=day, language=lang)
            for i, (title, body, day, lang) in enumerate(docs[source.id])
        ]
        archive.save_source_results(source, articles, FetchRecord("r", source.id, "2026-01-01T00:00:00Z", 1),
                                    SourceState(source.id))
    yield archive
    archive.close()


def titles(rows):
    return [r["title"] for r in rows]


def test_search_finds_every_language(archive):
    assert titles(search_articles(archive.db, "专利")) == ["国家知识产权局发布专利审查指南"]
    assert titles(search_articles(archive.db, "商标")) == ["国家知识产权局发布专利审查指南"]
    assert titles(search_articles(archive.db, "知识产权")) == ["国家知识产权局发布专利审查指南"]
    assert titles(search_articles(archive.db, "特許")) == ["特許庁が新制度を発表"]
    assert titles(search_articles(archive.db, "특허")) == ["특허청은 새로운 제도를 발표했다"]
    assert titles(search_articles(archive.db, '"madrid system"')) == ["Trademark news"]


def test_title_hits_rank_first_and_date_sort_is_newest_first(archive):
    ranked = titles(search_articles(archive.db, "patent"))
    assert ranked[0] in ("Patent filings grew", "Patent in the title only")
    assert set(ranked) == {"Patent filings grew", "Patent in the title only"}
    by_date = titles(search_articles(archive.db, "patent", sort="date"))
    assert by_date == ["Patent filings grew", "Patent in the title only"]


def test_filters(archive):
    assert titles(search_articles(archive.db, "patent OR 特許", filters=SearchFilters(offices=("JPO",)))) == [
        "特許庁が新制度を発表"]
    assert titles(search_articles(archive.db, "patent", filters=SearchFilters(since="2026-02-01"))) == [
        "Patent filings grew"]
    assert titles(search_articles(archive.db, "patent", filters=SearchFilters(until="2026-01-01"))) == [
        "Patent in the title only"]
    assert search_articles(archive.db, "patent", filters=SearchFilters(languages=("zh",))) == []


def test_search_never_splices_the_query_into_sql(archive):
    hostile = "patent'; DROP TABLE articles; --"
    search_articles(archive.db, hostile)
    assert archive.count() == 6
    with pytest.raises(sqlite3.OperationalError):
        archive.db.execute("SELECT * FROM articles_fts WHERE articles_fts MATCH 'NEAR('").fetchall()


def test_traditional_and_simplified_chinese_match_each_other(tmp_path):
    source = Source(id="tipo", office="TIPO", name="t", kind="feed", url="https://tipo.example/rss", interval=3600)
    with Archive(tmp_path / "a.db") as archive:
        archive.sync_sources([source])
        docs = [("智慧財產局公告專利審查基準", "zh"), ("知识产权局发布专利审查指南", "zh"), ("特許庁の審査基準", "ja")]
        articles = [Article(id=article_id("tipo", t), source_id="tipo", office="TIPO", url=f"https://tipo.example/{i}",
                            title=t, language=lang) for i, (t, lang) in enumerate(docs)]
        archive.save_source_results(source, articles, FetchRecord("r", "tipo", "2026-01-01T00:00:00Z", 1),
                                    SourceState("tipo"))
        assert len(search_articles(archive.db, "專利")) == 2
        assert len(search_articles(archive.db, "专利")) == 2
        assert titles(search_articles(archive.db, "審查基準")) == ["智慧財產局公告專利審查基準"]
        # Japanese text is indexed as written; a Japanese-form query finds it (and, folded, its Chinese kin)
        assert "特許庁の審査基準" in titles(search_articles(archive.db, "審査基準"))
        assert titles(search_articles(archive.db, "特許庁")) == ["特許庁の審査基準"]


def test_an_archive_indexed_by_an_older_index_version_is_rebuilt(tmp_path):
    path = tmp_path / "a.db"
    with Archive(path) as archive:
        source = Source(id="s", office="CNIPA", name="s", kind="feed", url="https://x.example/rss", interval=3600)
        archive.sync_sources([source])
        archive.save_source_results(source, [Article(id="a", source_id="s", office="CNIPA", url="https://x.example/1",
                                                     title="國家知識產權局", language="zh")],
                                    FetchRecord("r", "s", "2026-01-01T00:00:00Z", 1), SourceState("s"))
        archive.db.execute("UPDATE archive_meta SET value = 'old' WHERE key = 'index_version'")
        archive.db.execute("INSERT INTO articles_fts(articles_fts) VALUES ('delete-all')")
        assert search_articles(archive.db, "知识产权") == []
    with Archive(path) as reopened:
        assert titles(search_articles(reopened.db, "知识产权")) == ["國家知識產權局"]
