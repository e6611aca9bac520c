"""What the archive derives from an article before storing it.

Pure functions of the article, so a parse worker computes them next to the
parsing, and the SQLite writer only looks the results up. Kept apart from
store.py so the worker processes need not import the database layer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .cluster import Fingerprint, fingerprint
from .search import FTS_COLUMNS, index_text
from .types import Article
from .urls import canonical_url


def fts_text(value: Any, language: Any = None) -> str:
    """What the full-text index holds for a stored text (see search.index_text)."""
    return index_text(value, language if isinstance(language, str) else None) if isinstance(value, str) else ""


_TOPICS_JSON = json.JSONEncoder(ensure_ascii=False)  # json.dumps(…, ensure_ascii=False), built once


def topics_json(topics: Iterable[str]) -> str:
    return _TOPICS_JSON.encode(list(topics))


def fingerprint_text(article: Article) -> str:
    """The text an article's near-duplicate fingerprint is taken from."""
    return article.body or article.summary or ""


@dataclass(frozen=True)
class Derived:
    """What the archive computes from an article before storing it: pure, so a parse worker
    computes it and the SQLite writer only looks it up."""

    url_key: str
    fingerprint: Fingerprint | None = None
    index: tuple[tuple[str, str | None, str], ...] = ()  # (stored text, language, its index text)
    complete: bool = True  # False: only url_key, for an item the archive holds unchanged


def derive(article: Article, host_aliases: Mapping[str, str] | None = None, *, url_key: str | None = None) -> Derived:
    """The canonical URL key (``url_key`` if the caller has it already), the fingerprint and the
    index text of every FTS column."""
    values = {"title": article.title, "summary": article.summary, "body": article.body,
              "topics": topics_json(article.topics), "source_org": article.source_org}
    index = tuple((values[c], article.language, fts_text(values[c], article.language))
                  for c in FTS_COLUMNS if isinstance(values.get(c), str))
    return Derived(url_key or canonical_url(article.url, host_aliases=host_aliases),
                   fingerprint(fingerprint_text(article)), index)


def derive_unless_known(article: Article, host_aliases: Mapping[str, str] | None,
                        known: Mapping[str, str]) -> Derived:
    """:func:`derive`, skipping the costly parts for an item the archive already holds as is.

    ``known`` maps the source's item keys to the stored content hash (``"*"``: kept by
    another source, so this one cannot change it). A re-polled feed repeats most of its
    items; fingerprinting and indexing them again would be wasted work.
    """
    url_key = canonical_url(article.url, host_aliases=host_aliases)
    stored = known.get(article.guid or url_key)
    if stored is not None and stored in ("*", article.content_hash):
        return Derived(url_key, complete=False)
    return derive(article, host_aliases, url_key=url_key)


