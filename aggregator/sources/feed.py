"""Syndication feeds → :class:`~aggregator.types.Article`.

One entry point, :func:`parse_feed`, for every feed format an office may serve:

* JSON Feed 1.0 / 1.1 is read by the small parser in this module
  (feedparser 6 does not know it);
* RSS 0.9x, RSS 1.0 (RDF), RSS 2.0 and Atom go through feedparser, which is
  given the raw bytes and the response headers (never decoded text), so the
  encoding rules of RFC 3023 / RFC 7303 and ``xml:base`` keep working.

Both paths first reduce an entry to a neutral :class:`_Entry`; one function,
:func:`_to_article`, then applies the shared rules (absolute link or skip,
stable id, title fallback, empty → None). Everything here is pure: bytes and
headers in, articles out. Anything unexpected is wrapped as
:class:`~aggregator.exceptions.ParseError` at :func:`parse_feed`.

Dates follow the rules of :class:`~aggregator.types.Article`: ISO 8601 UTC,
a bare ``YYYY-MM-DD`` when the feed gives only a day, None when the feed
gives nothing usable. ``published`` is never taken from an "updated" date and
never from the fetch time. The one exception is ``dc:date``: feedparser files
it under ``updated``, but in RSS 1.0 (and in RSS 2.0 feeds that use it
instead of ``pubDate``) it is the item's date of issue, so it counts as
``published``.

Two feedparser rewrites are undone with a quick second look at the XML
(:func:`_scan_xml`): ``dc:date`` as ``updated`` (above), and GUIDs resolved
against the feed URL (a GUID is an identity, kept exactly as written).
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import feedparser
from lxml import etree

from aggregator.dates import YEAR_MAX, YEAR_MIN
from aggregator.encoding import declared_encodings, decode_document, normalize_encoding, undo_double_utf8
from aggregator.exceptions import ParseError
from aggregator.normalize import (
    clean_line,
    clean_text,
    html_to_text,
    iso_utc,
    normalize_language,
    sanitize_html,
)
from aggregator.sources.page import BINARY_SIGNATURES
from aggregator.types import Article, Source, article_id
from aggregator.urls import article_link, canonical_url

__all__ = ["MAX_FEED_ENTRIES", "FeedReport", "parse_feed", "parse_feed_report"]

log = logging.getLogger("ipnews")

NO_TITLE = "(no title)"
TITLE_FROM_TEXT_LIMIT = 80  # characters of summary text used when an entry has no title
# Entries read from one feed document, in document order. Office feeds carry tens to a few
# hundred; parsing costs about 0.3 ms and 3 KB per entry, so a hostile 100,000-entry feed
# (8 MB, under the size cap) would take half a minute and 300 MB. The rest is left unread.
MAX_FEED_ENTRIES = 5_000

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml"})
_JSON_TYPES = frozenset({"application/feed+json", "application/json"})
_JSON_FEED_VERSIONS = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")
_DC_ELEMENTS = "http://purl.org/dc/elements/1.1/"
_ATOM = "http://www.w3.org/2005/Atom"
_RSS1 = "http://purl.org/rss/1.0/"
_UTF8_BOM = b"\xef\xbb\xbf"
_HTML_SNIFF = re.compile(rb"<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>])", re.IGNORECASE)
_HAS_TIME = re.compile(r"\d:\d\d")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL_THEN_NAME = re.compile(r"^\s*(?:mailto:)?[^\s@()<>]+@[^\s()<>]+\s*\((?P<name>[^()]+)\)\s*$")
_NAME_THEN_EMAIL = re.compile(r"^\s*(?P<name>[^<>@]+?)\s*<(?:mailto:)?[^\s@<>]+@[^\s<>]+>\s*$")
_EMAIL_ONLY = re.compile(r"^\s*(?:mailto:)?[^\s@]+@[^\s@]+\s*$")
# An HTML tag in a "plain text" RSS title: real element names only, so "rule <n>" stays text.
_HTML_TAG = re.compile(
    r"</?(?:a|abbr|b|big|blockquote|br|center|code|div|em|embed|font|form|h[1-6]|i|iframe|img|input|"
    r"link|meta|noscript|object|p|q|s|script|small|span|strike|strong|style|sub|sup|svg|table|td|tr|"
    r"u|ul|ol|li)\b[^<>]*>",
    re.IGNORECASE,
)
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
# The start of an RSS <item> or Atom <entry> (any prefix), and the end of one.
_ENTRY_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s/>]")
_ENTRY_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)\s*>")


@dataclass(frozen=True)
class _Entry:
    """One feed entry reduced to plain values, before the shared rules apply."""

    guid: str | None
    link: str | None  # as resolved by the format's own rules; may still be relative or junk
    title: str  # plain text, "" when absent
    summary: str  # plain text
    body: str  # plain text of the full content, "" when the entry has none
    body_html: str  # sanitized HTML of the content, else of the summary
    published: str | None
    published_raw: str | None
    updated: str | None
    source_org: str | None
    topics: tuple[str, ...]
    language: str | None


@dataclass(frozen=True)
class FeedReport:
    """What :func:`parse_feed_report` read: the articles, and what a librarian should know
    about what it could not read (one line each), e.g. entries left unread or skipped."""

    articles: list[Article]
    warnings: tuple[str, ...] = ()


def parse_feed(content: bytes, headers: Mapping[str, str], source: Source, url: str) -> list[Article]:
    """Parse a fetched feed into articles, in feed order, first occurrence of each id only.

    ``headers`` are the HTTP response headers (any case); ``url`` is the URL the
    bytes came from (after redirects), used to resolve relative links.

    Raises :class:`ParseError`, and nothing else, when the bytes are not a feed.
    A feed with recoverable errors that still yields entries is accepted; what
    had to be left out is logged as a warning (see :func:`parse_feed_report`).
    """
    report = parse_feed_report(content, headers, source, url)
    for warning in report.warnings:
        log.warning("%s: %s", source.id, warning)
    return report.articles


def parse_feed_report(content: bytes, headers: Mapping[str, str], source: Source, url: str) -> FeedReport:
    """:func:`parse_feed`, with the warnings returned instead of logged."""
    try:
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        if not content or not content.strip():
            raise ParseError("empty document, not a feed")
        for signature, kind in BINARY_SIGNATURES:
            if content.startswith(signature):
                raise ParseError(f"not a feed: {kind}")
        warnings = []
        if _is_json(content, lowered):
            entries, total = _json_feed_entries(content, lowered, source, url)
        else:
            entries, total = _feedparser_entries(content, lowered, source, url)
        if total > len(entries):
            warnings.append(f"the feed has {total} entries; only the first {len(entries)} were read "
                            f"(at most {MAX_FEED_ENTRIES} per feed)")
        linked = [a for a in (_to_article(entry, source, url) for entry in entries) if a is not None]
        if len(linked) < len(entries):
            warnings.append(f"{len(entries) - len(linked)} of {len(entries)} entries skipped: "
                            "no http(s) link to archive them under")
        return FeedReport(_unique(linked), tuple(warnings))
    except ParseError as exc:
        # Raised below without context: say which source and URL it was about.
        exc.source_id = exc.source_id or source.id
        exc.url = exc.url or url
        raise
    except Exception as exc:  # wrap at the boundary: callers only ever see ParseError
        raise ParseError(f"could not parse feed: {_one_line(exc)}", source_id=source.id, url=url) from exc


# --- shared rules --------------------------------------------------------------------------------


def _to_article(entry: _Entry, source: Source, feed_url: str) -> Article | None:
    link = _absolute_http_url(entry.link, feed_url)
    if link is not None and _is_feed_itself(link, feed_url):
        link = None
    if link is None and entry.guid and _is_http_url(entry.guid):
        link = article_link(entry.guid)
    if link is None:
        return None  # nothing to point a reader at: skip
    title = entry.title or _title_from_text(entry.summary or entry.body) or NO_TITLE
    return Article(
        id=article_id(source.id, entry.guid or canonical_url(link)),
        source_id=source.id,
        office=source.office,
        url=link,
        title=title,
        guid=entry.guid,
        published=entry.published,
        published_raw=entry.published_raw,
        updated=entry.updated,
        source_org=entry.source_org,
        topics=entry.topics,
        language=entry.language,
        summary=entry.summary or None,
        body=entry.body or entry.summary or None,
        body_html=entry.body_html or None,
        extraction="feed",
    )


def _unique(articles: Iterable[Article]) -> list[Article]:
    """Keep the first article of each id (a feed repeating a GUID keeps its first item)."""
    seen: set[str] = set()
    kept = []
    for article in articles:
        if article.id not in seen:
            seen.add(article.id)
            kept.append(article)
    return kept


def _title_from_text(text: str, limit: int = TITLE_FROM_TEXT_LIMIT) -> str:
    """The start of ``text`` as a stand-in title: whole if short, else cut at a word boundary with '…'."""
    text = clean_line(text)
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ")
    # No space in the second half (e.g. Japanese or Chinese text): cut at the limit itself.
    cut = cut[:space] if space >= limit // 2 else text[:limit]
    return cut.rstrip(" ,;:.-–—") + "…"


def _topics(values: Iterable[Any]) -> tuple[str, ...]:
    seen: set[str] = set()
    topics = []
    for value in values:
        topic = clean_line(value) if isinstance(value, str) else ""
        if topic and topic.casefold() not in seen:
            seen.add(topic.casefold())
            topics.append(topic)
    return tuple(topics)


def _first_language(*candidates: str | None) -> str | None:
    for candidate in candidates:
        language = normalize_language(candidate)
        if language:
            return language
    return None


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _absolute_http_url(link: str | None, base: str) -> str | None:
    """The link as we store it (see :func:`aggregator.urls.article_link`), or None."""
    return article_link(link, base)


def _is_feed_itself(link: str, feed_url: str) -> bool:
    """Whether ``link`` is the feed document (``#top``, resolved by feedparser): no article there."""
    try:
        return urldefrag(link).url == urldefrag(feed_url).url
    except ValueError:
        return False


def _text_to_html(text: str) -> str:
    """Plain text as minimal HTML: one <p> per paragraph, <br> for line breaks."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)


def _date_from_struct(moment: time.struct_time | None, raw: str | None) -> str | None:
    """feedparser's parsed UTC tuple as ISO UTC; a bare day when the raw date has no time of day."""
    if not moment:
        return None
    try:
        parsed = datetime(*moment[:6], tzinfo=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None
    if not YEAR_MIN <= parsed.year <= YEAR_MAX:
        return None  # year 1 or 9999: not a date anyone published on (the raw text is kept)
    if raw and not _HAS_TIME.search(raw):
        return parsed.strftime("%Y-%m-%d")
    return iso_utc(parsed)


def _date_from_string(raw: str | None) -> str | None:
    """An RFC 3339 (or, leniently, RFC 822) date string as ISO UTC; None when unreadable
    or outside the years anyone publishes in (``YEAR_MIN``–``YEAR_MAX``)."""
    if not raw or not raw.strip():
        return None
    raw = raw.strip()
    if _ISO_DAY.match(raw):
        try:
            day = datetime.strptime(raw, "%Y-%m-%d")
        except ValueError:
            return None
        return raw if YEAR_MIN <= day.year <= YEAR_MAX else None
    moment = None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
            moment = parsedate_to_datetime(raw)
    if moment is None or not YEAR_MIN <= moment.year <= YEAR_MAX:
        return None
    try:
        return iso_utc(moment)
    except (ValueError, OverflowError):  # an offset that pushes it out of datetime's range
        return None


def _one_line(exc: BaseException | str | None) -> str:
    text = " ".join(str(exc or "").split())
    return text[:300] or (type(exc).__name__ if isinstance(exc, BaseException) else "unknown error")


def _media_type(headers: Mapping[str, str]) -> tuple[str, str | None]:
    value = headers.get("content-type", "")
    mime, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, val = param.partition("=")
        if name.strip().lower() == "charset" and val.strip():
            charset = val.strip().strip("\"'")
    return mime.strip().lower(), charset


# --- JSON Feed -----------------------------------------------------------------------------------


def _is_json(content: bytes, headers: Mapping[str, str]) -> bool:
    head = content.removeprefix(_UTF8_BOM).lstrip()[:1]
    if head == b"{":
        return True
    mime, _ = _media_type(headers)
    return (mime in _JSON_TYPES or mime.endswith("+json")) and head != b"<"


def _json_feed_entries(
    content: bytes, headers: Mapping[str, str], source: Source, url: str
) -> tuple[list[_Entry], int]:
    _, charset = _media_type(headers)
    charset = source.encoding or charset
    try:
        text = content.decode(charset) if charset else content  # bytes: json detects UTF-8/16/32
        document = json.loads(text.removeprefix("\ufeff") if isinstance(text, str) else text)
    except (ValueError, LookupError) as exc:
        raise ParseError(f"invalid JSON: {_one_line(exc)}") from exc
    except RecursionError as exc:
        raise ParseError("invalid JSON: nested too deeply") from exc
    _replace_lone_surrogates(document)
    version = document.get("version") if isinstance(document, dict) else None
    items = document.get("items") if isinstance(document, dict) else None
    if not (isinstance(version, str) and version.startswith(_JSON_FEED_VERSIONS) and isinstance(items, list)):
        raise ParseError("JSON document is not a JSON Feed")
    feed_language = _str(document.get("language"))
    http_language = headers.get("content-language")
    items = [item for item in items if isinstance(item, dict)]
    entries = [
        _json_item(item, url, (feed_language, http_language, source.language))
        for item in items[:MAX_FEED_ENTRIES]
    ]
    return entries, len(items)


def _replace_lone_surrogates(document: Any) -> None:
    """Replace, in place, lone UTF-16 surrogates (``"\\ud800"`` escapes) in every string of a
    JSON document with U+FFFD: they are not characters, and no UTF-8 encoder (nh3, SQLite) takes them."""
    stack = [document]
    while stack:
        node = stack.pop()
        pairs = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for key, value in pairs:
            if isinstance(value, str):
                if _LONE_SURROGATE.search(value):
                    node[key] = _LONE_SURROGATE.sub("\ufffd", value)
            elif isinstance(value, dict | list):
                stack.append(value)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _json_item(item: Mapping[str, Any], feed_url: str, fallback_languages: tuple[str | None, ...]) -> _Entry:
    raw_id = item.get("id")
    guid = raw_id.strip() if isinstance(raw_id, str) else None
    if isinstance(raw_id, int | float) and not isinstance(raw_id, bool):
        guid = str(raw_id)  # JSON Feed 1.0 publishers sometimes use numbers
    link = _str(item.get("url")) or _str(item.get("external_url"))
    base = _absolute_http_url(link, feed_url) or feed_url

    content_html = _str(item.get("content_html"))
    content_text = _str(item.get("content_text"))
    summary = clean_text(_str(item.get("summary")))
    if content_html:
        body, body_html = html_to_text(content_html), sanitize_html(content_html, base)
    elif content_text:
        body = clean_text(content_text)
        body_html = sanitize_html(_text_to_html(body), base)
    else:
        body, body_html = "", sanitize_html(_text_to_html(summary), base)

    published_raw = _str(item.get("date_published"))
    tags = item.get("tags")
    return _Entry(
        guid=guid or None,
        link=link,
        title=clean_line(_str(item.get("title"))),
        summary=summary,
        body=body,
        body_html=body_html,
        published=_date_from_string(published_raw),
        published_raw=published_raw.strip() if published_raw else None,
        updated=_date_from_string(_str(item.get("date_modified"))),
        source_org=_json_author(item),
        topics=_topics(tags if isinstance(tags, list) else ()),
        language=_first_language(_str(item.get("language")), *fallback_languages),
    )


def _json_author(item: Mapping[str, Any]) -> str | None:
    authors = item.get("authors")
    candidates = list(authors) if isinstance(authors, list) else []
    candidates.append(item.get("author"))  # JSON Feed 1.0
    for author in candidates:
        if isinstance(author, dict):
            name = clean_line(_str(author.get("name")))
            if name:
                return name
    return None


# --- RSS / RDF / Atom through feedparser ---------------------------------------------------------


def _feedparser_entries(
    content: bytes, headers: Mapping[str, str], source: Source, url: str
) -> tuple[list[_Entry], int]:
    """The entries feedparser reads (at most MAX_FEED_ENTRIES), and how many the document has."""
    content, total = _first_entries(content, MAX_FEED_ENTRIES)
    if not source.encoding:
        content = _undo_double_utf8(content, headers)
    passed = _feedparser_headers(headers, source, url)
    parsed = feedparser.parse(io.BytesIO(content), response_headers=passed)
    better = None if source.encoding else _better_reading(content, headers, parsed)
    if better is not None:
        passed["content-type"] = "application/xml; charset=utf-8"
        parsed = feedparser.parse(io.BytesIO(better), response_headers=passed)
    entries = list(parsed.get("entries") or [])
    problem = parsed.get("bozo_exception")
    if not entries and not parsed.get("version"):
        if _HTML_SNIFF.search(content[:4096]):
            raise ParseError("got an HTML page, not a feed")
        raise ParseError(f"not a feed: {_one_line(problem or 'no RSS, RDF or Atom elements found')}")
    if not entries and problem and not isinstance(problem, feedparser.ThingsNobodyCaresAboutButMe):
        # A feed's start, then XML so broken that not one entry could be read (cut short, tags
        # never closed): an empty result would look like an office with nothing to say.
        raise ParseError(f"ill-formed feed, no entry could be read: {_one_line(problem)}")

    feed = parsed.get("feed") or {}
    fallback_languages = (dict.get(feed, "language"), headers.get("content-language"), source.language)
    raw = _scan_xml(content, url) if entries else _RawXml()
    is_rss = str(parsed.get("version") or "").startswith("rss")
    entries = entries[:MAX_FEED_ENTRIES]
    return [_feedparser_entry(e, url, raw, fallback_languages, is_rss) for e in entries], max(total, len(entries))


def _first_entries(content: bytes, limit: int) -> tuple[bytes, int]:
    """The document cut down to its first ``limit`` entries, and how many it had (about: counted
    by their start tags). The entries after the limit are cut out up to the end of the last one,
    so what closes the document (``</channel></rss>``, ``</feed>``) stays."""
    starts = [m.start() for m in _ENTRY_START.finditer(content)]
    if len(starts) <= limit:
        return content, len(starts)
    ends = list(_ENTRY_END.finditer(content, starts[-1]))
    if not ends:  # the last entry is never closed (cut short): drop everything after the limit
        return content[: starts[limit]], len(starts)
    return content[: starts[limit]] + content[ends[-1].end() :], len(starts)


def _undo_double_utf8(content: bytes, headers: Mapping[str, str]) -> bytes:
    """A UTF-8 document whose text was encoded twice (``CafÃ©``), repaired when all of it
    round-trips (see :func:`aggregator.encoding.undo_double_utf8`); other documents unchanged.
    feedparser repairs only text that fits Latin-1, not ``â€œ`` or ``Å’``."""
    if any(name != "utf-8" for name in declared_encodings(content, headers)):
        return content
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return content
    fixed = undo_double_utf8(text.removeprefix("\ufeff"))
    return fixed.encode("utf-8") if fixed else content


def _better_reading(content: bytes, headers: Mapping[str, str], parsed: Mapping[str, Any]) -> bytes | None:
    """The document as UTF-8, to re-parse, when feedparser had to override the declared
    encoding and our page decoder reads it differently; else None.

    feedparser falls back to windows-1252 (or a Latin cousin) when the declared or default
    encoding fails, which turns GBK, Shift_JIS or EUC-KR served as UTF-8 (or undeclared)
    into mojibake. :func:`aggregator.encoding.decode_document` tries the declarations
    strictly, reads mostly-UTF-8 text with a few stray bytes, and then detects.
    """
    problem = parsed.get("bozo_exception")
    if not isinstance(problem, feedparser.CharacterEncodingOverride | feedparser.CharacterEncodingUnknown):
        return None
    text, codec = decode_document(content, headers)
    used = normalize_encoding(str(parsed.get("encoding") or ""))
    return text.encode("utf-8") if codec != used else None


@dataclass(frozen=True)
class _RawXml:
    """What feedparser rewrites, as the document wrote it.

    ``dc_dates``: the text of every ``dc:date`` (feedparser files them as ``updated``).
    ``guids``: feedparser's URL → the raw ``<guid>``/``<id>`` it was resolved from.
    ``links``: every item link the document wrote (RSS ``<link>`` text, Atom ``<link href>``),
    resolved against the feed URL: a link equal to the resolved GUID is then known to be real.
    feedparser resolves a GUID that is not marked ``isPermaLink="false"`` against
    the feed URL, so ``<guid>PR-2026-901</guid>`` would become a URL that changes
    whenever the feed moves; the raw value is the stable identity.
    """

    dc_dates: frozenset[str] = frozenset()
    guids: Mapping[str, str] = field(default_factory=dict)
    links: frozenset[str] = frozenset()


def _scan_xml(content: bytes, feed_url: str) -> _RawXml:
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(content, parser)
    except (etree.LxmlError, ValueError):
        return _RawXml()
    if root is None:
        return _RawXml()
    dc_dates = set()
    raw_ids = set()
    raw_links = set()
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        name = etree.QName(el)
        if name.localname == "link" and name.namespace in (None, _ATOM, _RSS1) and el.get("href"):
            raw_links.add(el.get("href", "").strip())
        if not el.text or not el.text.strip():
            continue
        if name.localname == "link" and name.namespace in (None, _RSS1):
            raw_links.add(el.text.strip())
        elif name.namespace == _DC_ELEMENTS and name.localname == "date":
            dc_dates.add(el.text.strip())
        elif name.localname in ("guid", "id") and name.namespace in (None, _ATOM):
            raw_ids.add(el.text.strip())
    guids = {}
    for raw_id in raw_ids:
        with contextlib.suppress(ValueError):
            resolved = urljoin(feed_url, raw_id)
            if resolved != raw_id and resolved not in raw_ids:
                guids[resolved] = raw_id
    links = set()
    for raw_link in raw_links:
        with contextlib.suppress(ValueError):
            links.add(urljoin(feed_url, raw_link))
    return _RawXml(frozenset(dc_dates), guids, frozenset(links))


def _feedparser_headers(headers: Mapping[str, str], source: Source, url: str) -> dict[str, str]:
    """The headers feedparser sees.

    * ``content-location`` carries the feed URL, the base for relative links;
    * ``content-language`` is withheld: feedparser would stamp it on every entry
      as if it were ``xml:lang``, and it belongs at the end of our fallback chain;
    * a missing Content-Type becomes ``application/xml``, so the XML declaration
      (else UTF-8) decides, not feedparser's ISO-8859-1 default for header-less HTTP;
    * ``Source.encoding`` (configured) overrides whatever the server and the document say.
    """
    passed = {k: v for k, v in headers.items() if k != "content-language"}
    if source.encoding:
        passed["content-type"] = f"application/xml; charset={source.encoding}"
    elif not passed.get("content-type", "").strip():
        passed["content-type"] = "application/xml"
    passed["content-location"] = url
    return passed


def _detail_text(
    detail: Mapping[str, Any] | None, fallback: str | None = None, *, sniff_html: bool = False
) -> tuple[str, str]:
    """(plain text, HTML) of a feedparser text construct.

    ``sniff_html``: read "plain text" that holds HTML tags as HTML. For RSS titles, which
    feedparser calls text/plain by guess while offices put ``&lt;b&gt;`` (and worse) in them;
    an Atom ``type="text"`` title is plain text by declaration and keeps its ``<`` as written.
    """
    value = (detail or {}).get("value") if detail else None
    value = value if isinstance(value, str) else (fallback or "")
    if not value.strip():
        return "", ""
    kind = str((detail or {}).get("type") or "text/html").lower()
    if kind in _HTML_TYPES or (sniff_html and _HTML_TAG.search(value)):
        text = html_to_text(value)
        # Without a single tag it is text with entities: give it a paragraph like plain text gets.
        return text, (value if "<" in value else _text_to_html(text))
    text = clean_text(value)
    return text, _text_to_html(text)


def _feedparser_entry(
    entry: Mapping[str, Any],
    feed_url: str,
    raw: _RawXml,
    fallback_languages: tuple[str | None, ...],
    is_rss: bool = False,
) -> _Entry:
    get = dict.get  # FeedParserDict.get maps `updated` to `published`; plain dict access does not
    resolved_id = get(entry, "id")
    guid = resolved_id.strip() if isinstance(resolved_id, str) and resolved_id.strip() else None
    if guid:
        guid = raw.guids.get(guid, guid)
    link = get(entry, "link") if isinstance(get(entry, "link"), str) else None
    if get(entry, "guidislink") and link == resolved_id and link not in raw.links:
        link = None  # feedparser copied the (resolved) GUID into the link: the GUID rules decide
    base = _absolute_http_url(link, feed_url) or feed_url

    title_detail = get(entry, "title_detail")
    title, _ = _detail_text(title_detail, get(entry, "title"), sniff_html=is_rss)
    summary_detail = get(entry, "summary_detail")
    summary, summary_html = _detail_text(summary_detail, get(entry, "summary"))
    content_detail = _main_content(get(entry, "content") or [])
    body, content_html = _detail_text(content_detail)

    published_raw = get(entry, "published")
    published = _date_from_struct(get(entry, "published_parsed"), published_raw)
    updated_raw = get(entry, "updated")
    updated = _date_from_struct(get(entry, "updated_parsed"), updated_raw)
    if not published_raw and isinstance(updated_raw, str) and updated_raw.strip() in raw.dc_dates:
        # dc:date is the item's date of issue, not a revision date (see the module docstring).
        published_raw, published, updated = updated_raw, updated, None

    tags = get(entry, "tags") or []
    return _Entry(
        guid=guid,
        link=link,
        title=clean_line(title),
        summary=summary,
        body=body,
        body_html=sanitize_html(content_html or summary_html, base),
        published=published,
        published_raw=published_raw.strip()
        if isinstance(published_raw, str) and published_raw.strip()
        else None,
        updated=updated,
        source_org=_source_org(entry),
        topics=_topics((t.get("label") or t.get("term")) for t in tags if isinstance(t, Mapping)),
        language=_first_language(
            *(d.get("language") for d in (content_detail, summary_detail, title_detail) if d),
            *fallback_languages,
        ),
    )


def _main_content(contents: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The entry's full content: the first HTML one, else the first with any text."""
    with_text = [c for c in contents if isinstance(c, Mapping) and str(c.get("value") or "").strip()]
    for candidate in with_text:
        if str(candidate.get("type") or "").lower() in _HTML_TYPES:
            return candidate
    return with_text[0] if with_text else None


def _source_org(entry: Mapping[str, Any]) -> str | None:
    """author / dc:creator (feedparser: author), then dc:publisher, then the entry's <source> title."""
    get = dict.get
    origin = get(entry, "source")
    candidates = (
        _person_name(get(entry, "author"), get(entry, "author_detail")),
        _person_name(get(entry, "publisher"), get(entry, "publisher_detail")),
        origin.get("title") if isinstance(origin, Mapping) else None,
    )
    for candidate in candidates:
        if isinstance(candidate, str) and clean_line(candidate):
            return clean_line(candidate)
    return None


def _person_name(raw: Any, detail: Any) -> str | None:
    """The name in an author string; None for a bare e-mail address.

    RSS ``<author>`` holds ``email (Name)``. feedparser splits it with a pattern
    that only knows two- to four-letter top-level domains, so read the raw
    string first and use feedparser's ``name`` for everything else (Atom).
    """
    if isinstance(raw, str):
        match = _EMAIL_THEN_NAME.match(raw) or _NAME_THEN_EMAIL.match(raw)
        if match:
            return match["name"]
        if _EMAIL_ONLY.match(raw):
            return None
    name = detail.get("name") if isinstance(detail, Mapping) else None
    return name if isinstance(name, str) and name.strip() else raw if isinstance(raw, str) else None
