"""Datasette shows hostile archived text escaped: nothing a feed carries can run in a librarian's browser.

The archive is built by the real pipeline from a feed whose plain-text fields hold markup as
characters (an Atom type="text" title, a JSON Feed summary), a link with quotes and angle
brackets, and a source whose failure message carries the server's hostile reason phrase. Then,
as a sanitizer bypass would, one row's ``body_html`` is overwritten with raw script: Datasette
must still show it as text (it never renders stored HTML). Table, row, search and canned-query
pages are fetched with Datasette's own client.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import lxml.html
import pytest

pytest.importorskip("datasette")

from datasette.app import Datasette  # noqa: E402

from aggregator import web  # noqa: E402
from aggregator.loopback import LoopbackServer, Route  # noqa: E402

from conftest import run, write_config  # noqa: E402

MARK = "ipnews-xss"
ATOM = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Office</title><id>urn:o</id><updated>2026-01-01T00:00:00Z</updated>
<entry><id>urn:o:1</id><title type="text">&lt;script&gt;alert("{MARK}-title")&lt;/script&gt; fees</title>
<link href="https://office.example/x%22%3E/a&quot;&gt;&lt;script&gt;alert('{MARK}-url')&lt;/script&gt;"/>
<updated>2026-01-02T00:00:00Z</updated>
<summary type="text">&lt;img src=x onerror=alert('{MARK}-summary')&gt; and javascript:alert('{MARK}-js')</summary>
<content type="text">&lt;iframe src="javascript:alert('{MARK}-body')"&gt;&lt;/iframe&gt; body text</content></entry>
</feed>""".encode()
RAW_HTML = f"<script>alert('{MARK}-html')</script><img src=x onerror=\"alert('{MARK}-onerror')\"><a href=\"javascript:alert('{MARK}-href')\">x</a>"
def get(ds: Datasette, path: str):
    async def fetch():
        return await ds.client.get(path)

    return asyncio.run(fetch())


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile-datasette")
    db = root / "archive" / "ipnews.db"
    with LoopbackServer() as server:
        server.add("/feed.atom", ATOM, headers={"Content-Type": "application/atom+xml"})
        server.add("/broken.xml", Route(raw=lambda record, conn, stopping: conn.sendall(
            f"HTTP/1.1 500 <script>alert('{MARK}-reason')</script>\r\nContent-Length: 0\r\n\r\n".encode())))
        config = write_config(root / "feeds.yaml", [
            {"id": "hostile-feed", "office": "HOSTILE", "url": server.url("/feed.atom"), "language": "en"},
            {"id": "hostile-reason", "office": "HOSTILE", "url": server.url("/broken.xml"), "language": "en"},
        ])
        result = run(["fetch", "--all"], config, db)
    assert result.exit_code == 3, result.stderr
    conn = sqlite3.connect(db)
    try:  # as if the sanitizer had been bypassed
        with conn:
            conn.execute("UPDATE articles SET body_html = ? WHERE source_id = 'hostile-feed'", [RAW_HTML])
        row = conn.execute("SELECT title, summary, body, url FROM articles WHERE source_id = 'hostile-feed'").fetchone()
        error = conn.execute("SELECT last_error FROM sources WHERE id = 'hostile-reason'").fetchone()[0]
    finally:
        conn.close()
    title, summary, body, url = row
    # The archive holds the payloads as text: this test is about how they are shown.
    assert f'<script>alert("{MARK}-title")</script>' in title
    assert f"onerror=alert('{MARK}-summary')" in summary and "<iframe" in body
    assert "<" not in url and '"' not in url  # links are percent-encoded when stored
    assert f"<script>alert('{MARK}-reason')</script>" in error
    return db


@pytest.fixture(scope="module")
def ds(archive: Path) -> Datasette:
    return Datasette([str(archive)], metadata=web.build_metadata("ipnews"), settings=web.SETTINGS)


def assert_nothing_executable(html: str, where: str) -> None:
    """Our payloads are on the page only as text: in no script element, event handler,
    javascript: URL or element of their own."""
    assert MARK in html, f"{where}: the hostile row is not on the page at all"
    for el in lxml.html.document_fromstring(html).iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag in ("script", "style"):
            assert MARK not in (el.text or ""), f"{where}: our payload inside <{el.tag}>"
        for name, value in el.attrib.items():
            if MARK not in value:
                continue
            assert not name.lower().startswith("on"), f"{where}: <{el.tag} {name}={value!r}>"
            assert not value.strip().lower().startswith("javascript:"), f"{where}: <{el.tag} {name}={value!r}>"
            assert el.tag not in ("img", "iframe", "script", "object", "embed"), f"{where}: <{el.tag} {name}={value!r}>"


def test_table_page_shows_hostile_text_escaped(ds):
    page = get(ds, "/ipnews/articles")
    assert page.status_code == 200
    assert_nothing_executable(page.text, "table page")
    assert "&lt;script&gt;alert(" in page.text  # there, as text


def test_row_page_shows_hostile_text_and_raw_html_escaped(ds, archive):
    seq = sqlite3.connect(archive).execute("SELECT seq FROM articles WHERE source_id = 'hostile-feed'").fetchone()[0]
    page = get(ds, f"/ipnews/articles/{seq}")
    assert page.status_code == 200
    assert_nothing_executable(page.text, "row page")
    assert f"{MARK}-html" in page.text and f"{MARK}-href" in page.text  # body_html is shown, as text


def test_search_and_canned_queries_escape_what_was_typed_and_stored(ds):
    typed = get(ds, f"/ipnews/articles?_search=%3Cscript%3Ealert(%27{MARK}-typed%27)%3C/script%3E")
    assert typed.status_code == 200
    assert f"<script>alert('{MARK}-typed')" not in typed.text
    failing = get(ds, "/ipnews/failing_sources")
    assert failing.status_code == 200
    assert_nothing_executable(failing.text, "failing_sources")
    assert f"{MARK}-reason" in failing.text
    search = get(ds, f"/ipnews/search?q=fees&office=&since=&until=%3Cscript%3E{MARK}")
    assert search.status_code == 200
    assert f"<script>{MARK}" not in search.text


def test_json_api_returns_the_stored_text_unchanged(ds):
    data = json.loads(get(ds, "/ipnews/articles.json?_shape=array&source_id=hostile-feed").text)
    assert data[0]["body_html"] == RAW_HTML  # data is data; escaping is the page's job


@pytest.mark.parametrize("query", ["fees%20專利", "專利%20fees", "a%00b"])
def test_search_box_accepts_any_typed_query(ds, query):
    """Found by the fuzzing: these gave FTS5 that SQLite rejects (Datasette answered 400 'Invalid SQL')."""
    assert get(ds, f"/ipnews/articles.json?_search={query}").status_code == 200
