"""Tests for aggregator.sources.feed.

Golden tests: every feed in tests/fixtures/feeds/ sits beside NAME.expected.json
(the list of Article.to_dict() it must give) and, optionally, NAME.headers.json
(the response headers it is served with). Regenerate the expectations with
``IPNEWS_REGEN=1 pytest tests/test_sources_feed.py`` and review the diff by eye.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from aggregator.exceptions import ParseError
from aggregator.sources import feed as feed_module
from aggregator.sources.feed import parse_feed
from aggregator.types import Article, Source, article_id
from aggregator.urls import canonical_url

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
SIDECARS = (".expected.json", ".headers.json")


def _source(id: str, office: str, name: str, url: str, language: str | None) -> Source:
    return Source(id=id, office=office, name=name, kind="feed", url=url, interval=3600, language=language)


# One source per fixture, keyed by the fixture's stem.
SOURCES = {
    "rss2_wipo": _source(
        "wipo-press", "WIPO", "WIPO press releases", "https://www.wipo.int/pressroom/en/rss.xml", "en"
    ),
    "atom_ukipo": _source(
        "ukipo-govuk",
        "UKIPO",
        "UK IPO activity on GOV.UK",
        "https://www.gov.uk/government/organisations/intellectual-property-office.atom",
        "en",
    ),
    "rdf_jpo": _source(
        "jpo-news-ja", "JPO", "JPO news (Japanese)", "https://www.jpo.go.jp/news/rss/news.rdf", "ja"
    ),
    "jsonfeed_inpi": _source(
        "inpi-actualites", "INPI", "INPI actualités", "https://www.inpi.fr/actualites/feed.json", "fr"
    ),
    "rss2_dpma_latin1": _source(
        "dpma-presse",
        "DPMA",
        "DPMA Pressemitteilungen",
        "https://www.dpma.de/service/presse/pressemitteilungen/rss.xml",
        "de",
    ),
    "rss_duplicate_guids": _source(
        "cnipa-news-en", "CNIPA", "CNIPA news (English)", "https://english.cnipa.gov.cn/rss/news.xml", "en"
    ),
}


def _fixture_files() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if p.is_file() and not p.name.endswith(SIDECARS))


def _stem(path: Path) -> str:
    return path.name.split(".", 1)[0]


def _as_json(articles: list[Article]) -> list[dict]:
    return json.loads(json.dumps([a.to_dict() for a in articles], ensure_ascii=False))


@pytest.mark.parametrize("path", _fixture_files(), ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    stem = _stem(path)
    assert stem in SOURCES, f"add a Source for {path.name} to SOURCES"
    source = SOURCES[stem]
    headers_file = FIXTURES / f"{stem}.headers.json"
    headers = json.loads(headers_file.read_text("utf-8")) if headers_file.exists() else {}
    actual = _as_json(parse_feed(path.read_bytes(), headers, source, source.url))

    expected_file = FIXTURES / f"{stem}.expected.json"
    if os.environ.get("IPNEWS_REGEN") == "1":
        expected_file.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", "utf-8")
    assert expected_file.exists(), f"missing {expected_file.name}: run with IPNEWS_REGEN=1 and review it"
    assert actual == json.loads(expected_file.read_text("utf-8"))


def test_every_source_has_a_fixture() -> None:
    assert {_stem(p) for p in _fixture_files()} == set(SOURCES)


# --- helpers for the focused tests ---------------------------------------------------------------

SOURCE = _source("test-office", "TEST", "Test office", "https://office.example/feeds/news.xml", "en")
FEED_URL = SOURCE.url
RSS_HEADERS = {"Content-Type": "application/rss+xml; charset=utf-8"}


def rss(items: str, channel_extra: str = "", namespaces: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<rss version="2.0" {namespaces}><channel><title>Office news</title>'
        f"<link>https://office.example/news/</link>{channel_extra}{items}</channel></rss>"
    ).encode()


def parse(content: bytes, headers: dict[str, str] | None = None, source: Source = SOURCE) -> list[Article]:
    return parse_feed(content, RSS_HEADERS if headers is None else headers, source, FEED_URL)


def only(articles: list[Article]) -> Article:
    assert len(articles) == 1, articles
    return articles[0]


# --- golden fixtures: properties worth stating outright ------------------------------------------


def test_wipo_html_is_sanitized_and_links_are_absolute() -> None:
    source = SOURCES["rss2_wipo"]
    articles = parse_feed((FIXTURES / "rss2_wipo.xml").read_bytes(), {}, source, source.url)
    for article in articles:
        for bad in ("<script", "dataLayer", "onclick", "onerror", "trackOutbound"):
            assert bad not in (article.body_html or "")
            assert bad not in (article.body or "")
    first, _, no_date, relative = articles
    assert first.topics == ("Innovation", "Economics & Statistics")
    assert 'href="https://www.wipo.int/global_innovation_index/en/2025/"' in (first.body_html or "")
    assert no_date.published is None and no_date.published_raw is None
    assert relative.url == "https://www.wipo.int/pressroom/en/articles/2025/article_0008.html"
    assert articles[1].source_org == "WIPO Media Relations Section"


def test_latin1_feed_without_charset_is_decoded_from_its_xml_declaration() -> None:
    content = (FIXTURES / "rss2_dpma_latin1.xml").read_bytes()
    assert "Gebühren".encode("latin-1") in content  # really Latin-1 bytes, not UTF-8
    source = SOURCES["rss2_dpma_latin1"]
    for headers in ({"Content-Type": "text/xml"}, {"Content-Type": "application/rss+xml"}, {}):
        titles = [a.title for a in parse_feed(content, headers, source, source.url)]
        assert titles[0] == "Neue Gebühren für Markenanmeldungen ab 1. Januar 2026", headers
        assert titles[1] == "Größere Datenbestände in DEPATISnet verfügbar", headers


# --- not a feed ----------------------------------------------------------------------------------


def test_html_page_is_not_a_feed() -> None:
    page = b"<!DOCTYPE html>\n<html lang='en'><head><title>News</title></head><body><p>Hi</p></body></html>"
    with pytest.raises(ParseError, match="got an HTML page, not a feed") as info:
        parse(page, {"Content-Type": "text/html; charset=utf-8"})
    assert info.value.source_id == SOURCE.id
    assert info.value.url == FEED_URL


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\x01\x02\x03garbage\xff\xfe\xfd",
        b"just some words, no markup at all",
        b"<?xml version='1.0'?><catalogue><book id='1'/></catalogue>",
    ],
)
def test_garbage_is_not_a_feed(content: bytes) -> None:
    with pytest.raises(ParseError, match="not a feed"):
        parse(content)


@pytest.mark.parametrize("content", [b"", b"   \n\t "])
def test_empty_document(content: bytes) -> None:
    with pytest.raises(ParseError, match="empty document"):
        parse(content)


def test_bytes_that_look_like_a_path_are_never_opened(tmp_path: Path) -> None:
    # feedparser.parse(bytes) would try the bytes as a file name first.
    secret = tmp_path / "feed.xml"
    secret.write_bytes(rss("<item><title>secret</title><link>https://office.example/a</link></item>"))
    with pytest.raises(ParseError):
        parse(str(secret).encode())


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"title": "Not a feed", "entries": []}', "application/json"),
        (b'{"version": "1.1", "items": []}', "application/json"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', "application/feed+json"),
        (b'[{"version": "https://jsonfeed.org/version/1.1"}]', "application/json"),
        (b'{"version": "https://jsonfeed.org/version/1"}', ""),
    ],
)
def test_json_that_is_not_a_json_feed(content: bytes, content_type: str) -> None:
    with pytest.raises(ParseError, match="JSON document is not a JSON Feed"):
        parse(content, {"Content-Type": content_type} if content_type else {})


def test_broken_json() -> None:
    with pytest.raises(ParseError, match="invalid JSON"):
        parse(b'{"version": "https://jsonfeed.org/version/1.1", "items": [', {})


def test_unexpected_errors_are_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(feed_module.feedparser, "parse", explode)
    with pytest.raises(ParseError, match="could not parse feed: boom second line") as info:
        parse(rss(""))
    assert isinstance(info.value.__cause__, RuntimeError)


def test_valid_feed_without_items_gives_nothing() -> None:
    assert parse(rss("")) == []
    assert parse(b'{"version": "https://jsonfeed.org/version/1.1", "title": "x", "items": []}') == []


def test_lenient_with_a_bozo_feed_that_still_has_entries() -> None:
    broken = rss(
        "<item><title>Fees &nbsp; update</title><link>https://office.example/a</link></item>"
        "<item><title>Second</title><link>https://office.example/b</link></item>"
    )
    articles = parse(broken)
    assert [a.url for a in articles] == ["https://office.example/a", "https://office.example/b"]


# --- titles --------------------------------------------------------------------------------------


def test_missing_title_uses_the_start_of_the_summary() -> None:
    text = (
        "The office will close its filing counters on Friday afternoon for maintenance of the "
        "electronic filing system; online filing stays open."
    )
    article = only(
        parse(rss(f"<item><link>https://office.example/a</link><description>{text}</description></item>"))
    )
    assert (
        article.title == "The office will close its filing counters on Friday afternoon for maintenance of…"
    )
    assert len(article.title) <= 81
    assert article.summary == text


def test_missing_title_short_summary_is_used_whole() -> None:
    item = "<item><link>https://office.example/a</link><description>&lt;p&gt;Holiday closure&lt;/p&gt;</description></item>"
    assert only(parse(rss(item))).title == "Holiday closure"


def test_missing_title_without_spaces_is_cut_at_the_limit() -> None:
    text = "特許" * 60
    article = only(
        parse(rss(f"<item><link>https://office.example/a</link><description>{text}</description></item>"))
    )
    assert article.title == text[:80] + "…"


def test_no_title_and_no_text() -> None:
    assert only(parse(rss("<item><link>https://office.example/a</link></item>"))).title == "(no title)"


def test_html_in_titles_becomes_plain_text() -> None:
    item = "<item><title>&lt;b&gt;New&lt;/b&gt; fees &amp;amp; forms</title><link>https://office.example/a</link></item>"
    assert only(parse(rss(item))).title == "New fees & forms"


# --- links, GUIDs and ids ------------------------------------------------------------------------


def test_guid_url_stands_in_for_a_missing_link() -> None:
    item = "<item><title>A</title><guid>https://office.example/news/a.html</guid></item>"
    article = only(parse(rss(item)))
    assert article.url == "https://office.example/news/a.html"
    assert article.guid == "https://office.example/news/a.html"
    assert article.id == article_id(SOURCE.id, "https://office.example/news/a.html")


def test_item_without_link_or_url_guid_is_skipped() -> None:
    items = (
        '<item><title>No link</title><guid isPermaLink="false">notice-17</guid></item>'
        "<item><title>Nothing at all</title></item>"
        "<item><title>Kept</title><link>https://office.example/kept</link></item>"
    )
    assert [a.title for a in parse(rss(items))] == ["Kept"]


def test_relative_permalink_guid_is_kept_as_written() -> None:
    # No isPermaLink="false": feedparser would resolve the GUID against the feed URL,
    # and the id would change whenever the feed moves.
    items = (
        "<item><title>A</title><link>https://office.example/news/a.html</link><guid>PR-2025-17</guid></item>"
        "<item><title>B</title><guid>PR-2025-18</guid></item>"
    )
    article = only(parse(rss(items)))  # B has no link, and its GUID is no URL: skipped
    assert article.guid == "PR-2025-17"
    assert article.id == article_id(SOURCE.id, "PR-2025-17")


def test_absolute_permalink_guid_without_link() -> None:
    item = "<item><title>A</title><guid isPermaLink='true'>https://office.example/news/a.html</guid></item>"
    article = only(parse(rss(item)))
    assert (article.guid, article.url) == ("https://office.example/news/a.html",) * 2


def test_non_http_links_are_not_urls() -> None:
    items = (
        "<item><title>JS</title><link>javascript:alert(1)</link></item>"
        "<item><title>Mail</title><link>mailto:press@office.example</link></item>"
    )
    assert parse(rss(items)) == []


def test_without_guid_the_id_comes_from_the_canonical_url() -> None:
    link = "https://www.office.example/news/a.html?utm_source=rss&amp;utm_medium=feed"
    article = only(parse(rss(f"<item><title>A</title><link>{link}</link></item>")))
    assert article.guid is None
    assert article.url == "https://www.office.example/news/a.html?utm_source=rss&utm_medium=feed"
    assert article.id == article_id(SOURCE.id, canonical_url("http://office.example/news/a.html"))


def test_duplicate_guids_keep_the_first_item() -> None:
    items = (
        '<item><title>First</title><link>https://office.example/a</link><guid isPermaLink="false">x1</guid></item>'
        '<item><title>Again</title><link>https://office.example/b</link><guid isPermaLink="false">x1</guid></item>'
    )
    assert [a.title for a in parse(rss(items))] == ["First"]


def test_relative_links_resolve_against_the_feed_url() -> None:
    article = only(parse(rss("<item><title>A</title><link>../press/a.html</link></item>")))
    assert article.url == "https://office.example/press/a.html"


# --- dates ---------------------------------------------------------------------------------------


def test_published_is_never_invented() -> None:
    article = only(parse(rss("<item><title>A</title><link>https://office.example/a</link></item>")))
    assert (article.published, article.published_raw, article.updated) == (None, None, None)


def test_unparseable_date_keeps_the_raw_string_only() -> None:
    item = "<item><title>A</title><link>https://office.example/a</link><pubDate>Mi, 24 Sep 2025 10:00</pubDate></item>"
    article = only(parse(rss(item)))
    assert article.published is None
    assert article.published_raw == "Mi, 24 Sep 2025 10:00"


def test_published_is_utc() -> None:
    item = (
        "<item><title>A</title><link>https://office.example/a</link>"
        "<pubDate>Sat, 11 Oct 2025 16:20:00 +0800</pubDate></item>"
    )
    article = only(parse(rss(item)))
    assert article.published == "2025-10-11T08:20:00Z"
    assert article.published_raw == "Sat, 11 Oct 2025 16:20:00 +0800"


def test_atom_updated_is_not_published() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id><updated>2025-10-01T00:00:00Z</updated>
<entry><id>urn:x:1</id><title>A</title><link href="https://office.example/a"/>
<updated>2025-10-02T08:00:00+02:00</updated></entry></feed>"""
    article = only(parse(atom, {"Content-Type": "application/atom+xml"}))
    assert article.published is None and article.published_raw is None
    assert article.updated == "2025-10-02T06:00:00Z"


def test_atom_published_and_updated() -> None:
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id>
<entry><id>urn:x:1</id><title>A</title><link href="https://office.example/a"/>
<published>2025-10-01T09:00:00Z</published><updated>2025-10-03T10:00:00Z</updated></entry></feed>"""
    article = only(parse(atom, {}))
    assert (article.published, article.updated) == ("2025-10-01T09:00:00Z", "2025-10-03T10:00:00Z")


def test_dc_date_in_rss2_counts_as_published_but_atom_updated_does_not() -> None:
    items = (
        "<item><title>A</title><link>https://office.example/a</link><dc:date>2025-10-01T12:00:00+09:00</dc:date></item>"
        "<item><title>B</title><link>https://office.example/b</link><atom:updated>2025-10-02T12:00:00Z</atom:updated></item>"
    )
    ns = 'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom"'
    a, b = parse(rss(items, namespaces=ns))
    assert (a.published, a.published_raw, a.updated) == (
        "2025-10-01T03:00:00Z",
        "2025-10-01T12:00:00+09:00",
        None,
    )
    assert (b.published, b.updated) == (None, "2025-10-02T12:00:00Z")


def test_a_bare_day_stays_a_day() -> None:
    item = "<item><title>A</title><link>https://office.example/a</link><dc:date>2025-10-03</dc:date></item>"
    article = only(parse(rss(item, namespaces='xmlns:dc="http://purl.org/dc/elements/1.1/"')))
    assert (article.published, article.published_raw) == ("2025-10-03", "2025-10-03")


# --- people, topics, language --------------------------------------------------------------------


def test_source_org_order() -> None:
    ns = 'xmlns:dc="http://purl.org/dc/elements/1.1/"'
    items = (
        "<item><title>1</title><link>https://office.example/1</link><author>press@office.example (Press Office)</author>"
        "<dc:publisher>Publisher</dc:publisher></item>"
        "<item><title>2</title><link>https://office.example/2</link><author>press@office.example</author>"
        "<dc:publisher>Trade Mark Division</dc:publisher></item>"
        '<item><title>3</title><link>https://office.example/3</link><source url="https://agency.example/rss">'
        "Partner Agency</source></item>"
        "<item><title>4</title><link>https://office.example/4</link></item>"
    )
    assert [a.source_org for a in parse(rss(items, namespaces=ns))] == [
        "Press Office",
        "Trade Mark Division",
        "Partner Agency",
        None,
    ]


def test_topics_are_cleaned_and_deduplicated() -> None:
    item = (
        "<item><title>A</title><link>https://office.example/a</link>"
        "<category>Patents</category><category>  Designs\u200b </category><category>patents</category>"
        "<category></category></item>"
    )
    assert only(parse(rss(item))).topics == ("Patents", "Designs")


def test_language_fallback_chain() -> None:
    item = "<item><title>A</title><link>https://office.example/a</link></item>"
    french = _source("fr-office", "TEST", "French office", FEED_URL, "fr")
    # nothing in the feed or headers: the configured language
    assert only(parse(rss(item), {}, source=french)).language == "fr"
    # HTTP Content-Language beats the configuration
    assert only(parse(rss(item), {"Content-Language": "de-AT"}, source=french)).language == "de"
    # the feed's <language> beats HTTP
    assert (
        only(parse(rss(item, "<language>es-ES</language>"), {"Content-Language": "de"}, french)).language
        == "es"
    )
    # an entry-level xml:lang beats the feed's <language>
    tagged = '<item><title>A</title><link>https://office.example/a</link><description xml:lang="it">Testo</description></item>'
    ns = 'xmlns:xml="http://www.w3.org/XML/1998/namespace"'
    assert only(parse(rss(tagged, "<language>es</language>", ns), {}, french)).language == "it"


def test_configured_encoding_overrides_the_declaration() -> None:
    # A Windows-1251 document that declares ISO-8859-1: every byte is valid Latin-1, so only
    # the configured encoding can recover the text.
    content = (
        '<?xml version="1.0" encoding="ISO-8859-1"?><rss version="2.0"><channel><title>x</title>'
        "<item><title>Новости Роспатента</title><link>https://office.example/a</link></item></channel></rss>"
    ).encode("cp1251")
    wrong = only(parse(content, {"Content-Type": "application/rss+xml"}))
    assert wrong.title != "Новости Роспатента"
    forced = dataclasses.replace(SOURCE, encoding="windows-1251")
    assert only(parse(content, {"Content-Type": "application/rss+xml"}, forced)).title == "Новости Роспатента"


# --- bodies --------------------------------------------------------------------------------------


def test_full_content_is_the_body_and_summary_stays_the_summary() -> None:
    ns = 'xmlns:content="http://purl.org/rss/1.0/modules/content/"'
    item = (
        "<item><title>A</title><link>https://office.example/a</link><description>Short teaser.</description>"
        "<content:encoded><![CDATA[<p>Full text, first paragraph.</p><p>Second <a href='/b'>link</a>.</p>]]>"
        "</content:encoded></item>"
    )
    article = only(parse(rss(item, namespaces=ns)))
    assert article.summary == "Short teaser."
    assert article.body == "Full text, first paragraph.\n\nSecond link."
    assert article.body_html is not None
    assert article.body_html.startswith("<p>Full text")
    assert 'href="https://office.example/b"' in article.body_html


def test_plain_text_atom_content_is_escaped_into_html() -> None:
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id>
<entry><id>urn:x:1</id><title>A</title><link href="https://office.example/a"/>
<content type="text">Fees &lt;b&gt;rise&lt;/b&gt; by 5 %

Second paragraph.</content></entry></feed>"""
    article = only(parse(atom, {}))
    assert article.body == "Fees <b>rise</b> by 5 %\n\nSecond paragraph."
    assert article.body_html == "<p>Fees &lt;b&gt;rise&lt;/b&gt; by 5 %</p><p>Second paragraph.</p>"


# --- JSON Feed specifics -------------------------------------------------------------------------


def test_json_feed_1_0_author_and_numeric_id() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1",
        "title": "Office",
        "items": [
            {
                "id": 4711,
                "url": "/news/4711",
                "title": "Numbered",
                "content_text": "Body",
                "author": {"name": "Press Office"},
                "date_published": "2025-10-01T10:00:00-04:00",
            },
            {"id": "no-url", "title": "Skipped: no url and a non-URL id"},
            {"id": "https://office.example/news/by-id", "external_url": "https://elsewhere.example/story"},
            "not an object",
        ],
    }
    first, second = parse(json.dumps(doc).encode(), {"Content-Type": "application/json"})
    assert (first.guid, first.url, first.source_org) == (
        "4711",
        "https://office.example/news/4711",
        "Press Office",
    )
    assert first.published == "2025-10-01T14:00:00Z"
    assert first.body_html == "<p>Body</p>"
    assert second.url == "https://elsewhere.example/story"
    assert second.title == "(no title)"


def test_json_feed_with_bom_and_no_content_type() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [{"id": "1", "url": "https://office.example/1"}],
    }
    content = b"\xef\xbb\xbf  \n" + json.dumps(doc).encode()
    assert only(parse(content, {})).url == "https://office.example/1"


def test_json_feed_item_without_content_uses_the_summary() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [{"id": "1", "url": "https://office.example/1", "title": "T", "summary": "Just a summary."}],
    }
    article = only(parse(json.dumps(doc).encode(), {}))
    assert (article.summary, article.body, article.body_html) == (
        "Just a summary.",
        "Just a summary.",
        "<p>Just a summary.</p>",
    )


def test_json_feed_control_character_after_a_script_does_not_lose_the_feed() -> None:
    # lxml keeps a control character it parsed but refuses one set from Python: removing the
    # <script> (its tail joins the text before it) used to raise, and the whole feed failed.
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [{"id": "1", "url": "https://office.example/1", "title": "T",
                   "content_html": "<p>a</p><script>x()</script>b\u0007c<div>d<style>s</style>e\u000cf</div>"},
                  {"id": "2", "url": "https://office.example/2", "title": "Next", "content_text": "Fine."}],
    }
    first, second = parse(json.dumps(doc).encode(), {})
    assert first.body == "a\n\nbc\n\nde f"
    assert "script" not in first.body_html and "\u0007" not in first.body_html
    assert second.body == "Fine."
