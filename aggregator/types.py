"""Plain frozen records that move between pipeline stages.

Config becomes :class:`Source`; the fetcher returns :class:`FetchResult`;
parsers return :class:`Article`. None of them does I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

# Bump when parsing/normalization changes in a way that alters stored fields;
# it is recorded on every article (provenance) and lets `reparse` find stale rows.
PARSER_VERSION = "1"


@dataclass(frozen=True)
class ListRecipe:
    """How to read an office's HTML news list (``list:`` in feeds.yaml)."""

    item: str
    date: str | None = None
    next: str | None = None
    max_pages: int = 1


@dataclass(frozen=True)
class ArticleRecipe:
    """How to read one article page (``article:`` in feeds.yaml); every selector optional."""

    title: str | None = None
    date: str | None = None
    source: str | None = None
    topics: str | None = None
    body: str | None = None
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """One configured source, with defaults already applied."""

    id: str
    office: str
    name: str
    kind: str  # "feed" | "page"
    url: str
    interval: int  # seconds between polls
    language: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    encoding: str | None = None
    timezone: str | None = None
    enabled: bool = True
    list: ListRecipe | None = None
    article: ArticleRecipe | None = None
    date_order: str | None = None  # "dmy" | "mdy" | "ymd": how to read 03/05/2021
    roc_years: bool = False  # read 114-05-22 as a Minguo (ROC) year
    ignore_robots: bool = False
    line: int | None = None  # line of the source in feeds.yaml, for messages


@dataclass(frozen=True)
class FetchResult:
    """What the server answered; ``content`` is empty for a 304."""

    url: str  # what we asked for
    final_url: str  # after redirects
    status: int
    headers: Mapping[str, str]  # lower-cased names
    content: bytes = b""
    elapsed: float = 0.0  # seconds
    redirects: tuple[tuple[int, str], ...] = ()  # (status, location) per hop
    # The body as the server gzipped it, when that is one whole gzip member of exactly `content`:
    # kept as the response's snapshot without compressing it again.
    gzip: bytes | None = field(default=None, repr=False)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")


# Fields left out of content_hash: identity (the same article reached through
# another source or URL variant is not a revision), bookkeeping, and fields
# that change without the text changing (feeds bump `updated`; body_html
# differs by link tracking while `body` holds the same text).
HASH_EXCLUDED_FIELDS = frozenset(
    {
        "id", "source_id", "office", "url", "guid", "published_raw", "updated", "body_html",
        "extraction", "parser_version", "content_hash", "first_seen", "last_seen",
    }
)


@dataclass(frozen=True)
class Article:
    """One normalized news item, whatever kind of source it came from.

    Dates are ISO 8601 strings in UTC (``2021-05-03T08:00:00Z``) or, when the
    source gives only a day, the bare date (``2021-05-03``). ``published`` is
    None when the source gives no usable date: we never invent one.
    """

    id: str
    source_id: str
    office: str
    url: str
    title: str
    guid: str | None = None
    published: str | None = None
    published_raw: str | None = None
    site_published: str | None = None  # the publishing site's own date, when it differs
    updated: str | None = None
    source_org: str | None = None
    topics: tuple[str, ...] = ()
    language: str | None = None
    summary: str | None = None
    body: str | None = None
    body_html: str | None = None
    extraction: str = "feed"  # "feed" | "selectors" | "fallback"
    parser_version: str = PARSER_VERSION
    content_hash: str = ""
    first_seen: str | None = None
    last_seen: str | None = None

    def __post_init__(self) -> None:
        if not self.content_hash:
            object.__setattr__(self, "content_hash", content_hash(self))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def evolve(self, **changes: Any) -> Article:
        changes.setdefault("content_hash", "")
        return replace(self, **changes)


def content_hash(article: Article) -> str:
    """A stable hash of the meaningful fields (empty fields skipped, so adding a field keeps old hashes)."""
    data = {}
    for f in fields(article):
        if f.name in HASH_EXCLUDED_FIELDS:
            continue
        value = getattr(article, f.name)
        if value in (None, "", ()):
            continue
        data[f.name] = list(value) if isinstance(value, tuple) else value
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def article_id(source_id: str, key: str) -> str:
    """The stable id of an item: from its source and its GUID (else its canonical URL)."""
    return hashlib.sha256(f"{source_id}\n{key}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class FetchedArticle:
    """An article with the response it was parsed from (kept as its raw snapshot).

    ``context`` is what the parser needed besides the bytes, so the article can
    be parsed again from the snapshot alone: for a page article, the list entry
    (title and date) it was reached from. ``derived`` (a ``store.Derived``) and
    ``packed`` (the response's bytes, zlib-compressed) are what the archive would
    otherwise compute itself, computed by a parse worker so the writer does not.
    """

    article: Article
    response: FetchResult | None = None
    context: Mapping[str, Any] | None = None
    derived: Any = None
    packed: bytes | None = None
    digest: str | None = None  # the feed entry's digest, recorded so an identical entry is skipped next time
