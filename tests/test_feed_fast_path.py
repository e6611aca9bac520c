"""The lxml fast path of aggregator.sources.feed reads feeds as feedparser does, or declines (#7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator.sources import feed as feed_module
from aggregator.sources.feed import parse_feed_report
from aggregator.types import Source

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
URL = "https://office.example/feeds/news.xml"
SOURCE = Source(id="office", office="TEST", name="Office", kind="feed", url=URL, interval=3600)
RSS_HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}


def _feedparser_only(monkeypatch, content, headers, source=SOURCE, url=URL):
    with monkeypatch.context() as m:
        m.setattr(feed_module, "_fast_entries", lambda *a, **k: None)
        return parse_feed_report(content, headers, source, url)


def _fast(content, headers, source=SOURCE, url=URL):
    passed = feed_module._feedparser_headers(headers, source, url)
    return feed_module._fast_entries(content, passed, headers, source, url)


def _rss(items: str, head: str = "", root_attrs: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n{head}<rss version="2.0" {root_attrs}'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>News</title><link>https://office.example/</link><language>en</language>{items}"
        "</channel></rss>"
    ).encode()


ITEM = (
    "<item><title>Fees &amp; rules</title><link>/news/1.html</link>"
    "<description><![CDATA[<p>New fees.</p><p>From <b>May</b>.</p>]]></description>"
    "<guid isPermaLink=\"false\">PR-1</guid><pubDate>Mon, 03 May 2021 08:00:00 GMT</pubDate>"
    "<category>Patents</category><dc:creator>Press office</dc:creator></item>"
)


def _fixture_cases() -> list:
    return [pytest.param(p, id=p.name) for p in sorted(FIXTURES.iterdir()) if p.suffix in (".xml", ".rdf")]


@pytest.mark.parametrize("path", _fixture_cases())
def test_fixture_feeds_read_alike(monkeypatch, path):
    headers_path = path.with_name(path.stem + ".headers.json")
    headers = json.loads(headers_path.read_text()) if headers_path.exists() else {}
    expected = _feedparser_only(monkeypatch, path.read_bytes(), headers)
    assert parse_feed_report(path.read_bytes(), headers, SOURCE, URL) == expected


def test_plain_rss_takes_the_fast_path(monkeypatch):
    content = _rss(ITEM)
    entries = _fast(content, RSS_HEADERS)
    assert entries is not None and len(entries) == 1
    assert entries[0].guid == "PR-1" and entries[0].link == "https://office.example/news/1.html"
    assert parse_feed_report(content, RSS_HEADERS, SOURCE, URL) == _feedparser_only(monkeypatch, content, RSS_HEADERS)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(
            b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de">'
            b"<title>News</title><id>tag:office.example,2021:feed</id>"
            b'<entry><id>tag:office.example,2021:1</id><title type="html">Geb&#252;hren &amp;lt;neu&amp;gt;</title>'
            b'<link rel="alternate" type="text/html" href="/news/1.html"/><link rel="enclosure" href="/a.pdf"/>'
            b"<published>2021-05-03T08:00:00+02:00</published><updated>2021-05-04T08:00:00Z</updated>"
            b"<author><name>Pressestelle</name><email>presse@office.example</email></author>"
            b'<category term="Marken" label="Marken"/><summary>Kurz.</summary>'
            b'<content type="html">&lt;p&gt;Text &lt;a href="rel/x.html"&gt;mehr&lt;/a&gt;&lt;/p&gt;</content>'
            b"</entry></feed>",
            id="atom-with-relative-link-in-content",
        ),
        pytest.param(
            b'<?xml version="1.0" encoding="utf-8"?><rdf:RDF xmlns="http://purl.org/rss/1.0/" '
            b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            b'xml:lang="ja"><channel rdf:about="https://office.example/"><title>t</title></channel>'
            b'<item rdf:about="https://office.example/n/1"><title>\xe7\x89\xb9\xe8\xa8\xb1</title>'
            b"<link>https://office.example/n/1</link><dc:date>2021-05-03</dc:date><dc:subject>a</dc:subject>"
            b"</item></rdf:RDF>",
            id="rdf-dc-date",
        ),
    ],
)
def test_atom_and_rdf_take_the_fast_path(monkeypatch, content):
    headers = {"content-type": "application/xml"}
    assert _fast(content, headers) is not None
    assert parse_feed_report(content, headers, SOURCE, URL) == _feedparser_only(monkeypatch, content, headers)


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        pytest.param(_rss(ITEM, head='<!DOCTYPE rss [<!ENTITY x "y">]>'), RSS_HEADERS, id="doctype"),
        pytest.param(_rss(ITEM, root_attrs='xml:base="https://elsewhere.example/"'), RSS_HEADERS, id="xml-base"),
        pytest.param(_rss(ITEM.replace("<category>", "<comments>x</comments><source url='u'>s</source><category>")),
                     RSS_HEADERS, id="source-element"),
        pytest.param(_rss(ITEM.replace("</item>", "<title>Second title</title></item>")), RSS_HEADERS,
                     id="repeated-title"),
        pytest.param(_rss(ITEM.replace("<category>", "<foo:bar xmlns:foo='urn:x'>1</foo:bar><category>")),
                     RSS_HEADERS, id="unknown-namespace"),
        pytest.param(_rss(ITEM.replace("Fees", "Geb\u00fchren")), {"content-type": "text/xml"},
                     id="text-xml-without-charset-not-ascii"),
        pytest.param(_rss(ITEM).decode().replace("utf-8", "utf-16").encode("utf-16"),
                     {"content-type": "application/xml"}, id="utf-16"),
        pytest.param(_rss(ITEM).replace(b"</channel>", b""), RSS_HEADERS, id="ill-formed"),
        pytest.param(_rss(ITEM.replace("<dc:creator>", "<dc:creator><b>x</b>")), RSS_HEADERS,
                     id="element-inside-a-text-element"),
        pytest.param(_rss(ITEM.replace("Fees &amp; rules", "Fees &nbsp; rules")), RSS_HEADERS,
                     id="undefined-entity"),
    ],
)
def test_what_the_fast_path_declines_goes_to_feedparser(monkeypatch, content, headers):
    assert _fast(content, headers) is None
    before = _feedparser_only(monkeypatch, content, headers)
    assert parse_feed_report(content, headers, SOURCE, URL) == before


def test_entity_attacks_are_declined_before_any_expansion():
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b"<rss version=\"2.0\"><channel><item><title>&lol3;</title><link>https://o.example/1</link></item>"
        b"</channel></rss>"
    )
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<rss version="2.0"><channel><item><title>&xxe;</title><link>https://o.example/1</link></item>'
        b"</channel></rss>"
    )
    for content in (laughs, xxe):
        assert _fast(content, {"content-type": "application/xml"}) is None
        report = parse_feed_report(content, {"content-type": "application/xml"}, SOURCE, URL)
        assert all("root:" not in (a.title + (a.body or "")) for a in report.articles)


def test_plain_markup_check():
    assert feed_module._PLAIN_HTML.fullmatch("<p>a &amp; b</p><br/><ul><li>x</li></ul>")
    assert not feed_module._PLAIN_HTML.fullmatch('<a href="x">y</a>')
    assert not feed_module._PLAIN_HTML.fullmatch("a &nbsp; b")
    assert not feed_module._PLAIN_HTML.fullmatch("a\r\nb")
    # linear time on long near-misses (no nested quantifier backtracking)
    assert not feed_module._PLAIN_HTML.fullmatch("x" * 100_000 + "<script>")
