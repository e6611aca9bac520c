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
import hashlib
import html
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import feedparser
from feedparser.datetimes import _parse_date as _fp_parse_date_uncached
from feedparser.encodings import RE_XML_PI_ENCODING, parse_content_type
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.sanitizer import _sanitize_html as _fp_sanitize
from feedparser.urls import _urljoin as _fp_urljoin
from feedparser.urls import make_safe_absolute_uri
from feedparser.urls import resolve_relative_uris as _fp_resolve
from lxml import etree

from aggregator.dates import YEAR_MAX, YEAR_MIN
from aggregator.encoding import declared_encodings, decode_document, normalize_encoding, undo_double_utf8
from aggregator.exceptions import ParseError
from aggregator.normalize import (
    clean_line,
    clean_text,
    html_to_text,
    html_to_text_and_sanitized,
    iso_utc,
    normalize_language,
    sanitize_html,
)
from aggregator.sources.page import BINARY_SIGNATURES
from aggregator.types import PARSER_VERSION, Article, Source, article_id
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
    digest: str | None = None  # see _Digesting


@dataclass(frozen=True)
class _Seen:
    """An entry the archive holds exactly as this document gives it (its digest is known):
    not normalized again, only marked seen."""

    digest: str
    article_id: str


@dataclass(frozen=True)
class FeedReport:
    """What :func:`parse_feed_report` read: the articles, and what a librarian should know
    about what it could not read (one line each), e.g. entries left unread or skipped."""

    articles: list[Article]
    warnings: tuple[str, ...] = ()
    digests: tuple[str | None, ...] = ()  # each article's entry digest (None: not taken), see _Digesting
    unchanged: tuple[str, ...] = ()  # digests of the entries left out as known (see parse_feed_report)


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


def parse_feed_report(content: bytes, headers: Mapping[str, str], source: Source, url: str,
                      known: Mapping[str, str] | None = None, context: str = "") -> FeedReport:
    """:func:`parse_feed`, with the warnings returned instead of logged.

    With ``known`` (entry digest → the article id it was stored under, see
    :class:`_Digesting`), every entry gets a digest
    (in ``digests``), and an entry whose digest is known is not normalized at all: its
    digest goes to ``unchanged``. ``context`` is what else the caller's processing of an
    entry depends on (e.g. host aliases); it goes into every digest."""
    try:
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        if not content or not content.strip():
            raise ParseError("empty document, not a feed")
        for signature, kind in BINARY_SIGNATURES:
            if content.startswith(signature):
                raise ParseError(f"not a feed: {kind}")
        warnings = []
        digesting = None if known is None else _Digesting(known, _digest_context(source, url, context))
        if _is_json(content, lowered):
            entries, total = _json_feed_entries(content, lowered, source, url, digesting)
        else:
            entries, total = _feedparser_entries(content, lowered, source, url, digesting)
        if total > len(entries):
            warnings.append(f"the feed has {total} entries; only the first {len(entries)} were read "
                            f"(at most {MAX_FEED_ENTRIES} per feed)")
        # The first entry of each id is kept (a feed repeating a GUID keeps its first item); a
        # known entry keeps its place in that order, so leaving it unread changes nothing.
        articles: list[Article] = []
        article_digests: list[str | None] = []
        unchanged: list[str] = []
        taken: set[str] = set()
        unlinked = 0
        for entry in entries:
            if isinstance(entry, _Seen):
                if entry.article_id not in taken:
                    taken.add(entry.article_id)
                    unchanged.append(entry.digest)
                continue
            article = _to_article(entry, source, url)
            if article is None:
                unlinked += 1
            elif article.id not in taken:
                taken.add(article.id)
                articles.append(article)
                article_digests.append(entry.digest)
        if unlinked:
            warnings.append(f"{unlinked} of {len(entries)} entries skipped: "
                            "no http(s) link to archive them under")
        return FeedReport(articles, tuple(warnings), tuple(article_digests), tuple(unchanged))
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


class _Digesting:
    """Entry digests for one document: which are known, and what else they depend on."""

    def __init__(self, known: Mapping[str, str], context: bytes):
        self.known = known
        self.context = context

    def narrowed(self, *parts: Any) -> _Digesting:
        """The same known digests, with more of what every entry of this document depends on."""
        return _Digesting(self.known, self.context + repr(parts).encode("utf-8", "surrogatepass"))

    def entry(self, entry: Any, *facts: Any) -> _Seen | str:
        """The entry as known (a :class:`_Seen`), else its digest to record."""
        digest = hashlib.blake2b(self.context + repr((facts, entry)).encode("utf-8", "surrogatepass"),
                                 digest_size=16).hexdigest()
        article_id = self.known.get(digest)
        return _Seen(digest, article_id) if article_id is not None else digest


def _digest_context(source: Source, url: str, extra: str) -> bytes:
    """Everything besides the entry itself that its article depends on: the parser's version,
    the source's settings that reach the parsers, the feed's URL (the base of its links)."""
    settings = (PARSER_VERSION, source.id, source.office, source.language, source.encoding, source.timezone,
                source.date_order, source.roc_years, url, extra)
    return repr(settings).encode("utf-8", "surrogatepass") + b"\n"


def _read_entries(entries: Iterable[Any], read: Callable[[Any], _Entry], digesting: _Digesting | None,
                  facts: Callable[[Any], tuple[Any, ...]] = lambda entry: ()) -> list[_Entry | _Seen]:
    """``read`` each raw entry, except those ``digesting`` knows; each read entry carries its digest.

    The digest is taken of the raw entry (what the format's reader made of the XML or JSON,
    before any normalization) and of ``facts``: what else in the document the reading of
    this entry looks at."""
    if digesting is None:
        return [read(entry) for entry in entries]
    out: list[_Entry | _Seen] = []
    for entry in entries:
        seen = digesting.entry(entry, *facts(entry))
        out.append(seen if isinstance(seen, _Seen) else replace(read(entry), digest=seen))
    return out


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
    return _article_link(link, base) if isinstance(link, str) else None


# Pure, and asked twice for each entry (its base URL, then its link to store).
_article_link = lru_cache(maxsize=256)(article_link)


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
    content: bytes, headers: Mapping[str, str], source: Source, url: str, digesting: _Digesting | None = None,
) -> tuple[list[_Entry | _Seen], int]:
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
    fallback_languages = (feed_language, http_language, source.language)
    entries = _read_entries(items[:MAX_FEED_ENTRIES], lambda item: _json_item(item, url, fallback_languages),
                            digesting and digesting.narrowed("json", fallback_languages))
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
        body, body_html = html_to_text_and_sanitized(content_html, base)
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
    content: bytes, headers: Mapping[str, str], source: Source, url: str, digesting: _Digesting | None = None,
) -> tuple[list[_Entry | _Seen], int]:
    """The entries feedparser reads (at most MAX_FEED_ENTRIES), and how many the document has."""
    content, total = _first_entries(content, MAX_FEED_ENTRIES)
    if not source.encoding:
        content = _undo_double_utf8(content, headers)
    passed = _feedparser_headers(headers, source, url)
    if not source.encoding:
        fast = _fast_entries(content, passed, headers, source, url, digesting)
        if fast is not None:
            return fast, max(total, len(fast))
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
    return _read_xml_entries(entries, url, raw, fallback_languages, is_rss, digesting, "feedparser"), \
        max(total, len(entries))


def _read_xml_entries(entries: list[Any], url: str, raw: _RawXml, fallback_languages: tuple[str | None, ...],
                      is_rss: bool, digesting: _Digesting | None, reader: str) -> list[_Entry | _Seen]:
    """:func:`_feedparser_entry` of each entry (feedparser's or the fast path's dictionary)."""
    return _read_entries(entries, lambda e: _feedparser_entry(e, url, raw, fallback_languages, is_rss),
                         digesting and digesting.narrowed(reader, fallback_languages, is_rss),
                         lambda e: _raw_facts(e, raw))


def _raw_facts(entry: Mapping[str, Any], raw: _RawXml) -> tuple[Any, ...]:
    """What :func:`_feedparser_entry` reads of the whole document for this entry (see _RawXml)."""
    get = dict.get
    resolved_id, link, updated = get(entry, "id"), get(entry, "link"), get(entry, "updated")
    return (raw.guids.get(resolved_id.strip()) if isinstance(resolved_id, str) else None,
            link in raw.links if isinstance(link, str) else None,
            updated.strip() in raw.dc_dates if isinstance(updated, str) else None)


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
    if content.isascii() or any(name != "utf-8" for name in declared_encodings(content, headers)):
        return content  # (ASCII: no character of a double encoding)
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
    return _scan_tree(root, feed_url)


def _scan_tree(root: Any, feed_url: str) -> _RawXml:
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
    text, markup, _ = _detail_parts(detail, fallback, sniff_html=sniff_html)
    return text, markup


def _detail_parts(
    detail: Mapping[str, Any] | None, fallback: str | None = None, *, sniff_html: bool = False,
    base: str | None = None,
) -> tuple[str, str, str]:
    """:func:`_detail_text`, and with a ``base`` also its HTML sanitized against that base
    (``sanitize_html(html, base)``; "" without one), the markup parsed once for both."""
    value = (detail or {}).get("value") if detail else None
    value = value if isinstance(value, str) else (fallback or "")
    if not value.strip():
        return "", "", ""
    kind = str((detail or {}).get("type") or "text/html").lower()
    if kind in _HTML_TYPES or (sniff_html and _HTML_TAG.search(value)):
        if "<" in value:
            if base is None:
                return html_to_text(value), value, ""
            text, sanitized = html_to_text_and_sanitized(value, base)
            return text, value, sanitized
        # Without a single tag it is text with entities: give it a paragraph like plain text gets.
        text = html_to_text(value)
    else:
        text = clean_text(value)
    markup = _text_to_html(text)
    return text, markup, (sanitize_html(markup, base) if base is not None else "")


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
    # The stored HTML is the content's, else the summary's: sanitized from the tree its text is read from.
    content_detail = _main_content(get(entry, "content") or [])
    body, content_html, body_html = _detail_parts(content_detail, base=base)
    summary_detail = get(entry, "summary_detail")
    summary, summary_html, summary_clean = _detail_parts(
        summary_detail, get(entry, "summary"), base=None if content_html else base)
    if not content_html:
        body_html = summary_clean

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
        body_html=body_html,
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


# --- RSS / RDF / Atom: the fast path -------------------------------------------------------------
#
# feedparser reads a feed with a SAX parser and a Python callback per element, then runs every
# HTML value through its own sanitizer and relative-URI resolver (sgmllib, also Python): about
# 1,000 entries/s. Most office feeds are plain RSS 2.0, RSS 1.0 or Atom 1.0 that use a dozen
# elements. For those, :func:`_fast_entries` reads the document with lxml (one C parse) and
# builds, element by element, the same entry dictionary feedparser would build; the shared
# :func:`_feedparser_entry` then turns it into an :class:`_Entry` as before. It declines (returns
# None, and feedparser reads the document) whenever the document uses anything whose feedparser
# handling it does not reproduce: a DOCTYPE, another encoding than UTF-8/ASCII/Latin-1 or one that
# would not decode, ill-formed XML, xml:base, an element or attribute outside the lists below, a
# repeated single-valued element, XHTML content, base64, ... Values are post-processed with
# feedparser's own helpers (date parser, URL join, HTML sanitizer and URI resolver when a value
# holds more than plain markup), so what is read is what feedparser would have read.
# benchmarks/parse_check.py compares both paths on the fixtures and a benchmark corpus.

_FP_NAMESPACES = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_RDF_ABOUT = "{" + _RDF + "}about"
# Namespace URIs that would make feedparser take the document for another format than its root says.
_OTHER_FORMATS = frozenset({_ATOM.lower(), _RSS1.lower(), "http://my.netscape.com/rdf/simple/0.9/"})
_FAST_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "us-ascii": "ascii", "ascii": "ascii",
                   "iso-8859-1": "iso-8859-1", "latin-1": "iso-8859-1", "latin1": "iso-8859-1"}
_XML_MEDIA = ("application/xml", "application/xml-dtd", "application/xml-external-parsed-entity")
_ENTRY_TAGS = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s/>]", re.IGNORECASE)
# Item children read, by feedparser name ("prefix:local" with feedparser's prefixes; "" = the
# format's own namespace), and the attributes each may carry besides xml:lang / lang.
_RSS_CHILDREN: dict[str, frozenset[str]] = {
    "title": frozenset(), "link": frozenset(), "description": frozenset(), "guid": frozenset({"ispermalink"}),
    "pubdate": frozenset(), "category": frozenset({"domain"}), "author": frozenset(), "comments": frozenset(),
    "enclosure": frozenset({"url", "length", "type"}), "dc:creator": frozenset(), "dc:date": frozenset(),
    "dc:subject": frozenset(), "dc:publisher": frozenset(), "content:encoded": frozenset(),
}
_ATOM_CHILDREN: dict[str, frozenset[str]] = {
    "id": frozenset(), "title": frozenset({"type"}), "published": frozenset(), "updated": frozenset(),
    "link": frozenset({"href", "rel", "type", "hreflang", "title", "length"}), "summary": frozenset({"type"}),
    "content": frozenset({"type"}), "author": frozenset(), "category": frozenset({"term", "scheme", "label"}),
}
_MULTIPLE = frozenset({"category", "dc:subject", "enclosure", "link"})  # "link": Atom only (checked below)
_SAME_FIELD = {"dc:creator": "author", "dc:subject": "category", "guid": "id"}
_AUTHOR_PARTS = frozenset({"name", "email", "uri"})
_PLAIN_TAG = (r"</?(?:p|br|b|i|em|strong|u|s|ul|ol|li|h[1-6]|blockquote|div|span|code|sub|sup|small|table|"
              r"thead|tbody|tr|td|th|hr)\s*/?>")
# Markup that feedparser's URI resolver and sanitizer leave meaning the same: listed tags without
# attributes, the five XML entities, no carriage return (the sanitizer rewrites CR LF).
_PLAIN_HTML = re.compile(rf"(?:[^<&\r]++|&(?:amp|lt|gt|quot|apos);|{_PLAIN_TAG})*+")
_CP1252_RANGE = re.compile("[\x80-\x9f]")
_FP_EMAIL = re.compile(r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?""")  # noqa: E501
_FP_HTML_TYPES = frozenset({"application/xhtml+xml", "text/html"})


# feedparser's date parser tries its formats one after another; an Atom entry's published and
# updated dates are often the same string. Pure (a struct_time or None for a string).
_fp_parse_date = lru_cache(maxsize=256)(_fp_parse_date_uncached)


class _Decline(Exception):
    """The fast path does not reproduce feedparser on this document: let feedparser read it."""


def _fast_entries(
    content: bytes, passed: Mapping[str, str], headers: Mapping[str, str], source: Source, url: str,
    digesting: _Digesting | None = None,
) -> list[_Entry | _Seen] | None:
    """The entries as feedparser would read them, or None when the fast path declines."""
    try:
        return _fast_read(content, passed, headers, source, url, digesting)
    except _Decline:
        return None


def _fp_encoding(content: bytes, passed: Mapping[str, str]) -> tuple[bytes, str]:
    """The document without a UTF-8 BOM and the codec feedparser decodes it with (RFC 3023 rules,
    see ``feedparser.encodings.convert_to_utf8``), limited to the codecs lxml reads identically."""
    data = content
    if data.startswith(_UTF8_BOM):
        data = data[3:]
    if data[:1] not in (b"<", b" ", b"\t", b"\r", b"\n"):
        raise _Decline  # UTF-16/32, EBCDIC, other BOMs, junk before the root
    match = RE_XML_PI_ENCODING.match(data)
    xml_encoding = match.group(1).decode("utf-8", "replace").lower() if match else ""
    mime, http_encoding = parse_content_type(passed.get("content-type") or "")
    if mime in _XML_MEDIA or (mime.startswith("application/") and mime.endswith("+xml")):
        chosen = http_encoding or xml_encoding or "utf-8"
    elif mime.startswith("text/"):
        chosen = http_encoding or "us-ascii"
    else:
        chosen = xml_encoding or "utf-8"
    codec = _FAST_ENCODINGS.get(chosen.lower())
    declared = _FAST_ENCODINGS.get(xml_encoding or "utf-8")
    # lxml (and the raw scan) must read the bytes as feedparser decodes them.
    if codec is None or declared is None or (declared != codec and not (codec == "ascii" or declared == "ascii")):
        raise _Decline
    if codec == "ascii":
        if not data.isascii():
            raise _Decline  # feedparser would override the declared encoding
        codec = "utf-8"
    elif codec == "utf-8":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise _Decline from None
    return data, codec


def _fast_read(
    content: bytes, passed: Mapping[str, str], headers: Mapping[str, str], source: Source, url: str,
    digesting: _Digesting | None = None,
) -> list[_Entry | _Seen]:
    data, codec = _fp_encoding(content, passed)
    parser = etree.XMLParser(
        encoding=codec, resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
        remove_comments=False, remove_pis=False,
    )
    try:
        root = etree.fromstring(data, parser)
    except (etree.LxmlError, ValueError):
        raise _Decline from None
    docinfo = root.getroottree().docinfo
    if root is None or docinfo.doctype or docinfo.internalDTD is not None:
        raise _Decline
    base = make_safe_absolute_uri("", url) or url
    if (make_safe_absolute_uri(base, base) or base) != base:
        raise _Decline

    nsmap_uris = {str(u).lower() for u in root.nsmap.values()}
    root_lang = _fp_lang(root, None)
    feed_language = root_lang.replace("_", "-") if root_lang else None
    if root.tag == "rss":
        if None in root.nsmap or nsmap_uris & {_RSS1.lower(), "http://my.netscape.com/rdf/simple/0.9/"}:
            raise _Decline
        version = _rss_version(root.get("version", ""))
        channels = [c for c in root if isinstance(c.tag, str) and c.tag == "channel"]
        if len(channels) != 1:
            raise _Decline
        channel = channels[0]
        container, items_parent_lang = channel, _fp_lang(channel, root_lang)
        item_tag, children = "item", _RSS_CHILDREN
    elif root.tag == f"{{{_RDF}}}RDF":
        if root.nsmap.get(None) != _RSS1 or nsmap_uris & (_OTHER_FORMATS - {_RSS1.lower()}):
            raise _Decline
        version = "rss10"
        channel = root.find(f"{{{_RSS1}}}channel")
        container, items_parent_lang = root, root_lang
        item_tag, children = f"{{{_RSS1}}}item", _RSS_CHILDREN
    elif root.tag == f"{{{_ATOM}}}feed":
        if nsmap_uris & (_OTHER_FORMATS - {_ATOM.lower()}):
            raise _Decline
        version = "atom10"
        channel = root
        container, items_parent_lang = root, root_lang
        item_tag, children = f"{{{_ATOM}}}entry", _ATOM_CHILDREN
    else:
        raise _Decline
    if _has_base(root) or (channel is not None and _has_base(channel)):
        raise _Decline
    if channel is not None:
        for el in channel:
            if isinstance(el.tag, str) and _fp_name(el) in ("language", "dc:language"):
                if len(el) or _has_base(el):
                    raise _Decline
                feed_language = _fp_text((el.text or "").strip())
    items = [el for el in container if el.tag == item_tag]
    if not items or len(items) != len(_ENTRY_TAGS.findall(data)):
        raise _Decline  # entries elsewhere, in another case, or "<item" inside text: feedparser decides
    is_atom = version.startswith("atom")
    entries = [_fast_entry(item, children, base, items_parent_lang, is_atom) for item in items]

    raw = _scan_tree(root, url)
    fallback_languages = (feed_language, headers.get("content-language"), source.language)
    return _read_xml_entries(entries, url, raw, fallback_languages, version.startswith("rss"), digesting, "fast")


def _rss_version(attr: str) -> str:
    versions = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}
    return versions.get(attr) or ("rss20" if attr.startswith("2.") else "rss")


def _fp_name(el: Any) -> str:
    """The element's name as feedparser dispatches on it ("dc:creator", "title"); "?" if unknown."""
    tag = el.tag
    if tag[0] != "{":
        return tag.lower()
    uri, _, local = tag[1:].partition("}")
    prefix = _FP_NAMESPACES.get(uri.lower())
    if prefix is None:
        return "?"
    return f"{prefix}:{local.lower()}" if prefix else local.lower()


def _has_base(el: Any) -> bool:
    return any(name in (_XML_BASE, "base") or name.lower() == "base" for name in el.attrib)


def _fp_lang(el: Any, inherited: str | None) -> str | None:
    """feedparser's language in scope: xml:lang, else lang, on the element; "" clears it."""
    lang = el.get(_XML_LANG)
    if lang is None:
        lang = next((v for k, v in el.attrib.items() if k.lower() == "lang"), None)
    if lang == "":
        return None
    return inherited if lang is None else lang


def _attrs(el: Any, allowed: frozenset[str]) -> dict[str, str]:
    """The element's attributes as feedparser sees them (names lower-cased, rel/type values too)."""
    found = {}
    for name, value in el.attrib.items():
        if name in (_XML_LANG, _RDF_ABOUT):
            continue
        key = name.lower()
        if key == "lang":
            continue
        if key not in allowed:
            raise _Decline
        found[key] = value.lower() if key in ("rel", "type") else value
    return found


def _map_type(value: str) -> str:
    return _FeedParserMixin.map_content_type(value)


def _fp_text(value: str) -> str:
    """What feedparser's ``pop`` does last to every text value (see ``feedparser.mixin``)."""
    if value.isascii():
        return value
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        value = value.encode("iso-8859-1").decode("utf-8")
    if _CP1252_RANGE.search(value):
        value = value.translate(_cp1252)
    return value


def _fast_entry(item: Any, children: Mapping[str, frozenset[str]], base: str, lang: str | None,
                is_atom: bool) -> dict[str, Any]:
    """One item/entry as feedparser's entry dictionary (only the keys ipnews reads)."""
    if _has_base(item):
        raise _Decline
    item_lang = _fp_lang(item, lang)
    entry: dict[str, Any] = {}
    about = item.get(_RDF_ABOUT)
    if about is not None and not is_atom and about:
        entry["id"] = about
    for name in item.attrib:
        if name not in (_XML_LANG, _RDF_ABOUT) and name.lower() != "lang":
            raise _Decline
    guidislink = False
    has_content = False
    seen: set[str] = set()
    for el in item:
        if not isinstance(el.tag, str):
            continue  # comments and processing instructions between elements
        name = _fp_name(el)
        if name not in children or (name == "link" and not is_atom and "link" in seen):
            raise _Decline
        field_name = _SAME_FIELD.get(name, name)
        if field_name in seen and name not in _MULTIPLE:
            raise _Decline
        seen.add(field_name)
        if _has_base(el):
            raise _Decline
        attrs = _attrs(el, children[name])
        el_lang = _fp_lang(el, item_lang)
        if name == "author" and is_atom:
            _fast_atom_author(el, entry)
            continue
        if len(el):
            raise _Decline  # markup as child elements (XHTML, nested structures)
        text = (el.text or "").strip()

        if name in ("title", "description", "summary", "content", "content:encoded"):
            default = "text/html" if name in ("description", "content:encoded") else "text/plain"
            kind = _map_type(attrs.get("type", default))
            if not (kind.startswith("text/") or kind.endswith("+xml") or kind.endswith("/xml")):
                raise _Decline  # base64
            if kind == "application/xhtml+xml" or (name == "content" and el.get("src") is not None):
                raise _Decline
            if not is_atom and kind == "text/plain" and _FeedParserMixin.looks_like_html(text):
                kind = "text/html"
            if kind in _FP_HTML_TYPES and not _PLAIN_HTML.fullmatch(text):
                text = _fp_resolve(text, base, "utf-8", kind)
                text = _fp_sanitize(text, "utf-8", kind)
                if isinstance(text, bytes):
                    text = text.decode("utf-8", "ignore")
            text = _fp_text(text)
            detail = {"type": kind, "language": el_lang.replace("_", "-") if el_lang else None,
                      "base": base, "value": text}
            if name == "title":
                entry["title"], entry["title_detail"] = text, detail
            elif name in ("content", "content:encoded"):
                has_content = True
                entry.setdefault("content", []).append(detail)
                if kind == "text/plain" or kind in _FP_HTML_TYPES:
                    entry.setdefault("summary", text)
            else:
                if "summary" in entry and not has_content:
                    raise _Decline  # feedparser would read this one as content
                entry["summary"], entry["summary_detail"] = text, detail
        elif name == "link":
            if is_atom:
                if "url" in attrs or "uri" in attrs or "href" not in attrs:
                    raise _Decline
                rel = attrs.get("rel", "alternate")
                kind = attrs.get("type", "application/atom+xml" if rel == "self" else "text/html")
                href = _fp_urljoin(base, attrs["href"])
                if rel == "alternate" and _map_type(kind) in _FP_HTML_TYPES:
                    entry["link"] = href
            else:
                value = _fp_text(_fp_urljoin(base, text) if text else text)
                value = re.sub("&([A-Za-z0-9_]+);", r"&\g<1>", value.replace("&amp;", "&"))
                entry["link"] = value
        elif name in ("guid", "id"):
            guidislink = attrs.get("ispermalink", "true") == "true"
            value = _fp_text(_fp_urljoin(base, text) if text and guidislink else text)
            entry["id"] = value
            entry.setdefault("guidislink", guidislink and "link" not in entry)
            if guidislink:
                entry.setdefault("link", value)
        elif name in ("pubdate", "published"):
            value = _fp_text(text)
            entry["published"], entry["published_parsed"] = value, _fp_parse_date(value)
        elif name in ("dc:date", "updated"):
            value = _fp_text(text)
            entry["updated"], entry["updated_parsed"] = value, _fp_parse_date(value)
        elif name in ("category", "dc:subject"):
            _fp_add_tag(entry, attrs.get("term"), attrs.get("scheme", attrs.get("domain")), attrs.get("label"))
            value = _fp_text(text)
            if value:
                tags = entry["tags"]
                if tags and not tags[-1]["term"]:
                    tags[-1]["term"] = value
                else:
                    _fp_add_tag(entry, value, None, None)
        elif name in ("author", "dc:creator", "dc:publisher"):
            key = "publisher" if name == "dc:publisher" else "author"
            if key == "author":
                entry.setdefault("authors", []).append({})
            entry[key] = _fp_text(text)
            _fp_sync_author(entry, key)
        # comments, enclosure: nothing ipnews reads
    return entry


def _fast_atom_author(el: Any, entry: dict[str, Any]) -> None:
    """An Atom <author> with name / email / uri children, as feedparser's author handlers do it."""
    if (el.text or "").strip():
        raise _Decline
    entry.setdefault("authors", []).append({})
    seen: set[str] = set()
    for part in el:
        if not isinstance(part.tag, str):
            continue
        name = _fp_name(part)
        if name not in _AUTHOR_PARTS or name in seen or len(part) or part.attrib or (part.tail or "").strip():
            raise _Decline
        seen.add(name)
        value = (part.text or "").strip()
        if name == "uri":
            continue  # feedparser keeps it as author_detail["href"]: not read here
        entry.setdefault("author_detail", {})[name] = value
        _fp_sync_author(entry, "author")
        entry["authors"][-1][name] = value
    entry["author"] = ""
    _fp_sync_author(entry, "author")


def _fp_add_tag(entry: dict[str, Any], term: str | None, scheme: str | None, label: str | None) -> None:
    tags = entry.setdefault("tags", [])
    if not term and not scheme and not label:
        return
    value = {"term": term, "scheme": scheme, "label": label}
    if value not in tags:
        tags.append(value)


def _fp_sync_author(context: dict[str, Any], key: str = "author") -> None:
    """``_FeedParserMixin._sync_author_detail`` on a plain dictionary."""
    detail = context.get(f"{key}s", [{}])[-1]
    if detail:
        name, email = detail.get("name"), detail.get("email")
        if name and email:
            context[key] = f"{name} ({email})"
        elif name:
            context[key] = name
        elif email:
            context[key] = email
        return
    author, email = context.get(key), None
    if not author:
        return
    match = _FP_EMAIL.search(author)
    if match:
        email = match.group(0)
        author = author.replace(email, "").replace("()", "").replace("<>", "").replace("&lt;&gt;", "").strip()
        if author and author[0] == "(":
            author = author[1:]
        if author and author[-1] == ")":
            author = author[:-1]
        author = author.strip()
    if author or email:
        context.setdefault(f"{key}_detail", detail)
    if author:
        detail["name"] = author
    if email:
        detail["email"] = email
