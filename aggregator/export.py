"""Stream the archive out as JSON Lines, CSV or an Atom 1.0 feed.

Exports take the same filters as search, plus an optional search query, and
run as one SQL statement whose cursor is read row by row: nothing is
collected, so memory stays flat whether 10 or 10 million articles go out
(tests/test_export.py measures it). Each writer takes any iterable of
article dicts, writes as it goes and returns how many rows it wrote.

    iter_articles(db, query?, filters, sort, limit)  →  dict per article
        → write_jsonl | write_csv | write_atom  →  a text stream

Atom entries are written by hand with xml.sax.saxutils escaping rather than
built as a DOM. Article text comes from the web, so every string passes
through `xml_text`, which drops the characters XML 1.0 forbids (C0 controls,
surrogates, U+FFFE/U+FFFF) and the C1 controls; a feed reader would
otherwise reject the whole document for one stray byte in one title.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO
from xml.sax.saxutils import escape, quoteattr

from . import __version__
from .config import PROJECT_URL
from .search import SEQ_MASK, SearchFilters, parse_query

__all__ = [
    "CSV_COLUMNS",
    "EXPORT_COLUMNS",
    "FORMATS",
    "atomic_output",
    "entry_id",
    "export_articles",
    "feed_id_for",
    "iter_articles",
    "open_output",
    "write_atom",
    "write_csv",
    "write_jsonl",
    "xml_text",
]

# Every exported row has these keys, in this order (plus "rank" when a query was given).
EXPORT_COLUMNS = (
    "id", "source_id", "office", "url", "url_canonical", "guid", "title", "published", "site_published",
    "updated", "sort_date", "source_org", "topics", "language", "summary", "body", "body_html",
    "content_hash", "extraction", "parser_version", "first_seen", "last_seen",
)
# CSV is for spreadsheets: the plain-text body is there, the HTML copy is not.
CSV_COLUMNS = tuple(c for c in EXPORT_COLUMNS if c != "body_html")
FORMATS = ("jsonl", "csv", "atom")
SORTS = ("date", "rank")

ATOM_NS = "http://www.w3.org/2005/Atom"
# The scheme of the office category, so readers can tell it from the site's own topics.
OFFICE_SCHEME = f"{PROJECT_URL}#office"
# Entry ids are name-based UUIDs (RFC 4122 v5) of the article id: a registered URN form that needs
# no domain of our own (a tag: URI would), stable across exports and archives.
_ENTRY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, f"{PROJECT_URL}#article")
_FEED_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, f"{PROJECT_URL}#feed")

# Not allowed anywhere in an XML 1.0 document, even escaped: C0 controls but tab/LF/CR, surrogates,
# U+FFFE and U+FFFF. C1 controls are allowed but are never text worth keeping, and XML 1.1 forbids them.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Spreadsheet apps run a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- reading ---------------------------------------------------------------------------------------


def iter_articles(
    db: Any,
    *,
    query: str | None = None,
    filters: SearchFilters | None = None,
    sort: str = "date",
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Articles matching the filters (and the query, if any), one dict at a time.

    `db` is an Archive, a sqlite_utils.Database or a sqlite3.Connection.
    Newest first by sort_date (undated articles last), or by relevance when
    a query is given and sort == "rank". `topics` is decoded to a list;
    with a query each row also has "rank" (bm25, lower is better).

    The query is parsed and the statement started before this returns, so
    a bad query or sort raises here rather than at the first row.
    """
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be ≥ 0, not {limit}")
    conn = getattr(db, "db", db)  # an Archive holds its sqlite_utils.Database as .db
    filters = filters or SearchFilters()
    clauses, params = filters.where("a")
    columns = ", ".join(f"a.{c}" for c in EXPORT_COLUMNS)
    # NULLs sort first in SQLite, so DESC puts undated articles last; seq breaks ties (newest
    # archived first). (sort_date, seq) is exactly the articles_sort index, so no sort step.
    by_date = "a.sort_date DESC, a.seq DESC"
    if query is not None:
        # The filters also narrow the index itself (facet tokens, a rowid range; see search.py).
        parsed = parse_query(query)
        sql = f"""
            SELECT {columns}, articles_fts.rank AS rank
            FROM articles_fts JOIN articles a ON a.seq = articles_fts.rowid & {SEQ_MASK}
            WHERE {" AND ".join(["articles_fts MATCH ? AND articles_fts.rowid BETWEEN ? AND ?", *clauses])}
            ORDER BY {"rank, " + by_date if sort == "rank" else by_date}
            LIMIT ?
        """
        params = [filters.match(parsed.expression), *filters.rowid_range(), *params]
    else:
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {columns} FROM articles a {where} ORDER BY {by_date} LIMIT ?"
    cursor = conn.execute(sql, [*params, -1 if limit is None else limit])
    return _rows(cursor)


def _rows(cursor: Any) -> Iterator[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    try:
        for values in cursor:
            row = dict(zip(names, values, strict=True))
            row["topics"] = _topics(row["topics"])
            if "rank" in row:
                row["rank"] = round(row["rank"], 4)
            yield row
    finally:
        cursor.close()  # also when the consumer stops early: ends the read transaction


def _topics(value: Any) -> list[str]:
    if isinstance(value, list):
        return value
    try:
        topics = json.loads(value or "[]")
    except (TypeError, ValueError):
        return []
    return [str(t) for t in topics] if isinstance(topics, list) else []


# --- JSON Lines and CSV ----------------------------------------------------------------------------


def write_jsonl(rows: Iterable[Mapping[str, Any]], out: TextIO) -> int:
    """One JSON object per line, UTF-8 as is (no \\u escapes). Returns the number of rows."""
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        count += 1
    return count


def write_csv(
    rows: Iterable[Mapping[str, Any]],
    out: TextIO,
    *,
    columns: tuple[str, ...] = CSV_COLUMNS,
    protect_formulas: bool = False,
) -> int:
    """A header row, then one row per article in `columns` order; topics joined with "; ".

    Open files with newline="" (the csv module writes its own line ends).
    `protect_formulas` prefixes cells starting with = + - @ with an apostrophe,
    for files that will be opened in a spreadsheet (titles come from the web).
    Returns the number of data rows.
    """
    writer = csv.writer(out)
    writer.writerow(columns)
    count = 0
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            if isinstance(value, list | tuple):
                value = "; ".join(str(v) for v in value)
            cell = "" if value is None else str(value)
            if protect_formulas and cell.startswith(_FORMULA_START):
                cell = "'" + cell
            cells.append(cell)
        writer.writerow(cells)
        count += 1
    return count


# --- Atom --------------------------------------------------------------------------------------------


def xml_text(value: Any) -> str:
    """`value` as a string with the characters XML 1.0 cannot carry removed."""
    if value is None:
        return ""
    return _XML_INVALID.sub("", str(value))


def _text(value: Any) -> str:
    return escape(xml_text(value))


def _attr(value: Any) -> str:
    return quoteattr(xml_text(value))


def entry_id(article_id: str) -> str:
    """The Atom id of an article: urn:uuid, derived from the archive's article id."""
    return f"urn:uuid:{uuid.uuid5(_ENTRY_NAMESPACE, article_id)}"


def feed_id_for(*parts: Any) -> str:
    """A stable Atom feed id for an export defined by `parts` (query, filters, title …)."""
    key = json.dumps([p if isinstance(p, str | int | float | type(None)) else repr(p) for p in parts],
                     ensure_ascii=False)
    return f"urn:uuid:{uuid.uuid5(_FEED_NAMESPACE, key)}"


_UTC_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_DAY = re.compile(r"\d{4}-\d\d-\d\d")


def _atom_date(value: Any) -> str | None:
    """An archive date → RFC 3339 UTC. A bare day becomes midnight UTC (Atom needs a time)."""
    if not value:
        return None
    if isinstance(value, str):  # the archive's two forms, without a datetime round trip
        if _UTC_SECONDS.fullmatch(value):
            return value
        if _DAY.fullmatch(value):
            return value + "T00:00:00Z"
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        if len(text) == 10:
            text += "T00:00:00Z"
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _entry_updated(row: Mapping[str, Any], published: str | None) -> str:
    """Atom's required <updated>: the later of the article's `updated` and `published` dates;
    without either, the site's own date; without that, when we first archived it."""
    updated = _atom_date(row.get("updated"))
    if updated or published:
        return max(updated or "", published or "")
    for key in ("site_published", "first_seen"):
        if day := _atom_date(row.get(key)):
            return day
    return _atom_date(datetime.now(timezone.utc)) or ""  # pragma: no cover - first_seen is NOT NULL


def write_atom(
    rows: Iterable[Mapping[str, Any]],
    out: TextIO,
    *,
    title: str,
    feed_id: str,
    self_url: str | None = None,
    updated: str | datetime | None = None,
) -> int:
    """An Atom 1.0 feed (RFC 4287), written entry by entry. Returns the number of entries.

    `feed_id` must be an absolute IRI (see `feed_id_for`). The feed's
    <updated> is `updated`, else the time of writing (entries stream out
    after the header, so the newest one is not known yet).

    Per entry: id (`entry_id`), title, link rel=alternate, published (when
    known), updated (`_entry_updated`: updated or published, else the
    site's date, else first_seen), author (source_org, else the office), a
    category per topic plus the office (scheme OFFICE_SCHEME), summary
    (text) and content: body_html as type="html", else body as text.
    The stream must be written as UTF-8.
    """
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S", feed_id):
        raise ValueError(f"feed_id must be an absolute IRI such as a urn:uuid, not {feed_id!r}")
    feed_updated = _atom_date(updated) if updated else None
    if feed_updated is None:
        if updated:
            raise ValueError(f"updated: {updated!r} is not an ISO 8601 date")
        feed_updated = _atom_date(datetime.now(timezone.utc))
    out.write('<?xml version="1.0" encoding="utf-8"?>\n')
    out.write(f'<feed xmlns="{ATOM_NS}">\n')
    out.write(f"  <title>{_text(title)}</title>\n")
    out.write(f"  <id>{_text(feed_id)}</id>\n")
    out.write(f"  <updated>{feed_updated}</updated>\n")
    if self_url:
        out.write(f'  <link rel="self" type="application/atom+xml" href={_attr(self_url)}/>\n')
    out.write(f"  <generator uri={_attr(PROJECT_URL)} version={_attr(__version__)}>ipnews</generator>\n")
    count = 0
    for row in rows:
        out.write(_entry(row))
        count += 1
    out.write("</feed>\n")
    return count


def _entry(row: Mapping[str, Any]) -> str:
    language = row.get("language")
    lang = f" xml:lang={_attr(language)}" if language else ""
    parts = [
        f"  <entry{lang}>\n",
        f"    <id>{entry_id(str(row['id']))}</id>\n",
        f"    <title>{_text(row.get('title'))}</title>\n",
    ]
    if row.get("url"):
        parts.append(f'    <link rel="alternate" type="text/html" href={_attr(row["url"])}/>\n')
    published = _atom_date(row.get("published"))
    if published:
        parts.append(f"    <published>{published}</published>\n")
    parts.append(f"    <updated>{_entry_updated(row, published)}</updated>\n")
    author = xml_text(row.get("source_org")).strip() or xml_text(row.get("office")).strip()
    if author:
        parts.append(f"    <author><name>{escape(author)}</name></author>\n")
    for topic in _topics(row.get("topics")):
        if term := xml_text(topic).strip():
            parts.append(f"    <category term={quoteattr(term)}/>\n")
    if office := xml_text(row.get("office")).strip():
        parts.append(f'    <category term={quoteattr(office)} scheme="{OFFICE_SCHEME}"/>\n')
    if summary := xml_text(row.get("summary")).strip():
        parts.append(f"    <summary>{escape(summary)}</summary>\n")
    if body_html := xml_text(row.get("body_html")).strip():
        parts.append(f'    <content type="html">{escape(body_html)}</content>\n')
    elif body := xml_text(row.get("body")).strip():
        parts.append(f'    <content type="text">{escape(body)}</content>\n')
    parts.append("  </entry>\n")
    return "".join(parts)


# --- one call for the CLI -------------------------------------------------------------------------


def export_articles(
    db: Any,
    out: TextIO,
    *,
    fmt: str,
    query: str | None = None,
    filters: SearchFilters | None = None,
    sort: str = "date",
    limit: int | None = None,
    title: str = "ipnews export",
    feed_id: str | None = None,
    self_url: str | None = None,
    protect_formulas: bool = False,
) -> int:
    """Run `iter_articles` and write it in `fmt` (jsonl, csv or atom). Returns the number of rows.

    Without a `feed_id`, an Atom export gets one derived from the query,
    filters and title, so the same export command always yields the same id.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    rows = iter_articles(db, query=query, filters=filters, sort=sort, limit=limit)
    if fmt == "jsonl":
        return write_jsonl(rows, out)
    if fmt == "csv":
        return write_csv(rows, out, protect_formulas=protect_formulas)
    feed_id = feed_id or feed_id_for(query, filters or SearchFilters(), title)
    return write_atom(rows, out, title=title, feed_id=feed_id, self_url=self_url)


@contextmanager
def atomic_output(path: str | Path, *, binary: bool = False) -> Iterator[TextIO]:
    """A UTF-8 text (or, with binary=True, bytes) file that appears at `path` only once fully written.

    A temporary file in the same directory is renamed over `path` on
    success and removed on failure, so a feed served from `path` is never
    seen half-written. Opened with newline="" (right for csv; jsonl and
    Atom write "\\n" themselves).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def open_output(path: str | Path) -> Iterator[TextIO]:
    """Where the CLI writes an export: "-" is stdout (as UTF-8, whatever the locale says, since
    the Atom header declares UTF-8); anything else is an `atomic_output` file."""
    if str(path) != "-":
        with atomic_output(path) as out:
            yield out
        return
    sys.stdout.flush()
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
    try:
        yield out
        out.flush()
    finally:
        out.detach()  # leave sys.stdout open
