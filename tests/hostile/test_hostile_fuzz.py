"""Property-based tests of the parsing entry points: whatever the bytes, only our documented errors.

* parse_feed, parse_list_page, parse_article_page: a result or ParseError;
* dates.parse_date / find_date / date_from_url: a well-formed ParsedDate or None, never an error;
* urls.canonical_url: never raises, idempotent; urls.article_link: None or an http(s) URL;
* encoding.decode_document: always text; normalize.sanitize_html: always safe HTML;
* search.parse_query: a query or InvalidSearchQuery.

Inputs are random bytes and text, and mutations (insertions of nasty fragments, cuts,
duplications) of valid feeds and pages, so the parsers get past their first check.
Settings are derandomized: the same examples every run, a few seconds in all.
"""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from harness import assert_clean_text, assert_safe_html
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aggregator.dates import ParsedDate, date_from_url, find_date, parse_date
from aggregator.encoding import decode_document
from aggregator.exceptions import InvalidSearchQuery, ParseError
from aggregator.normalize import html_to_text, sanitize_html
from aggregator.search import FTS_COLUMNS, parse_query
from aggregator.sources.feed import parse_feed
from aggregator.sources.page import ListEntry, parse_article_page, parse_list_page
from aggregator.types import ArticleRecipe, ListRecipe, Source
from aggregator.urls import article_link, canonical_url

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
URL = "http://127.0.0.1:9/news/feed.xml"
FEED_SOURCE = Source(id="fuzz", office="FUZZ", name="fuzz", kind="feed", url=URL, interval=3600)
PAGE_SOURCE = Source(id="fuzz-page", office="FUZZ", name="fuzz", kind="page", url=URL, interval=3600,
                     timezone="Asia/Tokyo", date_order="dmy",
                     list=ListRecipe(item="ul.news li", date="span", next="a.next", max_pages=3),
                     article=ArticleRecipe(title="h1", date=".date", source=".source", topics=".topics",
                                           body="div.article", remove=(".share",)))
FALLBACK_SOURCE = Source(id="fuzz-fallback", office="FUZZ", name="fuzz", kind="page", url=URL, interval=3600,
                         list=ListRecipe(item="li"))

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Office</title><link>https://o.example/</link>
<item><guid>g-1</guid><title>Fees &amp; forms</title><link>/news/1</link><pubDate>Mon, 04 May 2026 09:00:00 +0200</pubDate>
<description><![CDATA[<p>Renewal <b>fees</b> <a href="/x">change</a>.</p>]]></description><category>Patents</category></item>
<item><guid isPermaLink="false">g-2</guid><title>特許庁のお知らせ</title><link>https://o.example/news/2</link><dc:date>2026-05-05</dc:date></item>
</channel></rss>""".encode()
ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://o.example/"><title>Atom</title><id>urn:a</id><updated>2026-01-01T00:00:00Z</updated>
<entry><id>urn:a:1</id><title type="html">&lt;b&gt;Bold&lt;/b&gt;</title><link href="news/1"/><updated>2026-01-02T00:00:00Z</updated>
<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Text <a href="/y">y</a></p></div></content></entry></feed>"""
RDF = """<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://o.example/"><title>RDF</title><link>https://o.example/</link></channel>
<item rdf:about="https://o.example/1"><title>特許</title><link>https://o.example/1</link><dc:date>2026-05-03T10:00:00+09:00</dc:date></item></rdf:RDF>""".encode()
JSON_FEED = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": [
    {"id": "1", "url": "https://o.example/j/1", "title": "JSON", "content_html": "<p>x</p>",
     "date_published": "2026-05-04T09:00:00+02:00", "tags": ["a"], "authors": [{"name": "Office"}]}]}).encode()
LIST_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><base href="/news/"></head><body>
<ul class="news"><li><a href="a/1.html" title="Full title">Short…</a><span>03.05.2021</span></li>
<li><a href="/b/2.html">令和3年5月3日 特許</a> <span>2021年5月3日</span></li></ul><a class="next" href="?page=2">Next</a></body></html>""".encode()
ARTICLE_PAGE = """<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><meta property="og:title" content="OG">
<script type="application/ld+json">{"datePublished": "2021-05-03T10:00:00+09:00"}</script></head>
<body><h1>見出し</h1><p class="date">2021/5/3 14:52</p><p class="source">来源：特許庁</p><div class="topics">Topics: A, B</div>
<div class="article"><p>発表日：2021年5月3日</p><p>本文です。<a href="rel.html">link</a></p><div class="share">Share</div></div></body></html>""".encode()

NASTY = [b"\x00", b"<", b">", b"&", b"&#0;", b"&#xD800;", b"&lol;", b"]]>", b"<![CDATA[", b"<!--", b"-->",
         b"<item>", b"</item>", b"<entry>", b"</channel>", b"<!DOCTYPE x [<!ENTITY a SYSTEM 'file:///etc/passwd'>]>",
         b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x80", b"\xc3", b"\xe2\x80\xae", b"<script>alert(1)</script>",
         b" onerror=alert(1) ", b"javascript:", b"<div>" * 50, b"\r\n", b'"', b"'", b"{", b"}", b"[", b"]", b'":',
         b"<?xml version='1.0' encoding='utf-16'?>", b"\\ud800", b"%", b"<base href='//evil.example/'>"]
HEADERS = st.sampled_from([{}, {"Content-Type": "application/rss+xml"}, {"Content-Type": "text/xml"},
                           {"Content-Type": "application/xml; charset=utf-16"}, {"Content-Type": "text/html; charset=bogus"},
                           {"Content-Type": "application/json"}, {"Content-Type": "application/feed+json; charset=gbk"},
                           {"Content-Type": "text/html; charset=shift_jis", "Content-Language": "ja"},
                           {"Content-Type": 'text/html; charset="utf-8'}, {"content-type": "; charset="}])


@st.composite
def mutated(draw, templates: list[bytes]) -> bytes:
    doc = bytearray(draw(st.sampled_from(templates)))
    for _ in range(draw(st.integers(0, 6))):
        pos = draw(st.integers(0, len(doc)))
        op = draw(st.sampled_from(["insert", "insert", "delete", "truncate", "duplicate", "random"]))
        if op == "insert":
            doc[pos:pos] = draw(st.sampled_from(NASTY))
        elif op == "delete":
            del doc[pos:pos + draw(st.integers(1, 40))]
        elif op == "truncate":
            del doc[pos:]
        elif op == "duplicate":
            doc[pos:pos] = doc[max(0, pos - 200):pos]
        else:
            doc[pos:pos] = draw(st.binary(max_size=30))
    return bytes(doc)


FEED_BYTES = st.one_of(st.binary(max_size=300), mutated([RSS, ATOM, RDF, JSON_FEED]))
PAGE_BYTES = st.one_of(st.binary(max_size=300), mutated([LIST_PAGE, ARTICLE_PAGE]))


def _check_articles(articles) -> None:
    for a in articles:
        assert a.url.startswith(("http://", "https://")), a.url
        assert a.title and a.title == a.title.strip()
        for value in (a.title, a.summary, a.body, a.source_org, *a.topics):
            assert_clean_text(value, a.id)
        assert_safe_html(a.body_html or "", a.id)
        for value in (a.published, a.updated):
            assert value is None or re.fullmatch(r"\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\dZ)?", value), value


@FUZZ
@given(FEED_BYTES, HEADERS)
def test_parse_feed_raises_only_parse_error(content, headers):
    try:
        articles = parse_feed(content, headers, FEED_SOURCE, URL)
    except ParseError as e:
        assert e.source_id == "fuzz" and str(e).strip()
        return
    _check_articles(articles)


@FUZZ
@given(PAGE_BYTES, HEADERS)
def test_parse_list_page_raises_only_parse_error(content, headers):
    try:
        listing = parse_list_page(content, headers, PAGE_SOURCE, URL)
    except ParseError:
        return
    for entry in listing.entries:
        assert entry.url.startswith(("http://", "https://")) and entry.title


@FUZZ
@given(PAGE_BYTES, HEADERS, st.sampled_from([PAGE_SOURCE, FALLBACK_SOURCE]), st.booleans())
def test_parse_article_page_raises_only_parse_error(content, headers, source, with_entry):
    entry = ListEntry(url=URL, title="Entry title", date=None, date_raw=None) if with_entry else None
    try:
        article = parse_article_page(content, headers, source, URL, entry)
    except ParseError:
        return
    _check_articles([article])


DATE_TEXT = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["2021", "5", "03", "12", "31", "99", "0", "114", "令和", "元", "平成", "年", "月", "日",
                              "民國", "-", "/", ".", " ", ":", "T", "Z", "+09:00", "-0500", "May", "mai", "Mai",
                              "de", "1er", "pm", "午後", "오후", "년", "월", "일", "R3", "14:52", "25:61", "(", "["]),
             max_size=12).map("".join),
)


@FUZZ
@given(DATE_TEXT, st.sampled_from([None, "UTC", "Asia/Shanghai", "America/St_Johns", "Pacific/Kiritimati"]),
       st.sampled_from([None, "dmy", "mdy", "ymd"]), st.booleans())
def test_dates_never_raise_and_are_well_formed(text, timezone, date_order, roc_years):
    for parse in (parse_date, find_date):
        found = parse(text, timezone=timezone, date_order=date_order, roc_years=roc_years)
        assert found is None or isinstance(found, ParsedDate)
        if found is not None:
            assert re.fullmatch(r"\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\dZ)?", found.value), found
            assert found.has_time == ("T" in found.value)
    date_from_url(text)


URL_TEXT = st.one_of(
    st.text(max_size=60),
    st.builds(lambda scheme, host, rest: f"{scheme}{host}{rest}",
              st.sampled_from(["http://", "https://", "HTTP://", "//", "javascript:", "ftp://", "", "http:"]),
              st.sampled_from(["office.example", "www.Office.example.", "例え.jp", "[::1]", "user:pw@h", "h:99999",
                               "h:x", "", "xn--r8jz45g.jp", "WWW.www.x.example", "%41.example"]),
              st.text(max_size=30)),
)


@FUZZ
@given(URL_TEXT, st.sampled_from([None, URL, "https://o.example/a/b/", "not a url"]))
def test_urls_never_raise(url, base):
    key = canonical_url(url)
    assert canonical_url(key) == key
    link = article_link(url, base)
    assert link is None or (link.lower().startswith(("http://", "https://")) and "@" not in link.split("/")[2])


@FUZZ
@given(st.one_of(st.binary(max_size=200), mutated([LIST_PAGE, RSS, JSON_FEED])), HEADERS,
       st.sampled_from([None, "gbk", "shift_jis", "latin-1", "utf-8", "bogus"]))
def test_decode_document_always_gives_text(content, headers, override):
    text, codec = decode_document(content, headers, override)
    assert isinstance(text, str) and codec


@FUZZ
@given(st.one_of(st.text(max_size=200), mutated([ARTICLE_PAGE, LIST_PAGE]).map(lambda b: b.decode("utf-8", "replace"))))
def test_sanitized_html_is_always_safe(markup):
    assert_safe_html(sanitize_html(markup, URL), "sanitize_html")
    assert_safe_html(sanitize_html(markup), "sanitize_html", allow_relative=True)
    assert isinstance(html_to_text(markup), str)


QUERY_TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(["patent", "fees", '"', "(", ")", "*", ":", " ", "AND", "OR", "NOT", "NEAR", "title:",
                              "body:", "source:", "专利", "知识产权", "特許", "특허", "-", "^", "+", "{", "}", "'"]),
             max_size=15).map("".join),
)


@FUZZ
@given(QUERY_TEXT)
def test_parse_query_raises_only_invalid_search_query(query):
    try:
        parsed = parse_query(query)
    except InvalidSearchQuery:
        return
    assert parsed.expression


@pytest.fixture(scope="module")
def fts() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE VIRTUAL TABLE f USING fts5({', '.join(FTS_COLUMNS)}, content='', "
                 "tokenize='porter unicode61 remove_diacritics 2')")
    return conn


@FUZZ
@example("0\x000")
@example("patent 專利")
@example("許 patent")
@given(QUERY_TEXT)
def test_parse_query_always_gives_fts5_that_sqlite_accepts(fts, query):
    """The examples are what the fuzzing found: a NUL inside a term, and a traditional-Chinese
    term (which becomes an OR of two forms) next to another term."""
    try:
        parsed = parse_query(query)
    except InvalidSearchQuery:
        return
    fts.execute("SELECT count(*) FROM f WHERE f MATCH ?", [parsed.expression]).fetchall()
