"""`ipnews serve`: the archive in Datasette, with our metadata and search.

The Datasette metadata lives here, as data, so it can follow the archive
whatever its file is called: Datasette keys `databases:` by the file's stem
(`ipnews.db` → `ipnews`, `demo.db` → `demo`). Three places use it:

* :func:`build_metadata` renders the whole file for one database name;
  `archive/metadata.yml` is its output for `ipnews` (regenerate it with
  ``python -m aggregator.web > archive/metadata.yml``; a test checks they agree);
* the Datasette plugin (`aggregator/datasette_plugin.py`) supplies
  :func:`database_metadata` for every ipnews archive Datasette serves, so
  ``datasette demo.db`` is configured too;
* :func:`serve` runs Datasette on one archive with all of it.

Datasette itself is optional (``pip install 'ipnews[web]'``) and imported
only when serving.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .exceptions import AggregatorError
from .search import SEQ_MASK

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001
# Long bodies are cut to this many characters in table views (the row page shows them whole).
TRUNCATE_CELLS = 300
SETTINGS = {"truncate_cells_html": TRUNCATE_CELLS}
INSTALL_HINT = "pip install 'ipnews[web]'"

LICENSE_NOTE = (
    "Article texts remain the work of the offices that published them, under each office's own "
    "terms of use; this archive keeps them for reference and research. Check an office's terms "
    "before republishing its texts."
)


class WebUnavailable(AggregatorError):
    """Datasette is not installed, or the archive cannot be served."""


# --- canned queries ------------------------------------------------------------------------------

QUERIES: dict[str, dict[str, Any]] = {
    "latest_per_office": {
        "title": "Latest news per office",
        "description": "The five newest articles of every office, newest first within each office.",
        "sql": """\
select office, sort_date, title, url, source_id, language
from (
  select a.*, row_number() over (partition by office order by sort_date desc, seq desc) as n
  from articles a
)
where n <= 5
order by office, sort_date desc
""",
    },
    "search": {
        "title": "Search articles",
        "description": (
            "Full-text search in every language, ranked with the title counting most. "
            "q: words, \"a phrase\", prefix*, AND/OR/NOT, title:word; Chinese, Japanese and Korean words "
            "work too (专利, 特許). Optional filters: office (e.g. EPO), since and until (dates, "
            "YYYY-MM-DD, both inclusive). The snippet marks the matched words **like this**."
        ),
        "params": ["q", "office", "since", "until"],
        # The office is matched in the index (a facet token) and the dates as a range of
        # rowids; the exact checks below keep the result what they say (docs/search.md).
        "sql": f"""\
select
  a.seq, a.title, a.office, a.sort_date, a.language, a.source_org, a.url,
  ipnews_snippet(coalesce(a.summary, '') || ' ' || coalesce(a.body, ''), :q) as snippet,
  round(articles_fts.rank, 4) as rank
from articles_fts
join articles a on a.seq = articles_fts.rowid & {SEQ_MASK}
where articles_fts match ipnews_fts_query(:q, :office)
  and articles_fts.rowid between ipnews_fts_rowid_from(:since) and ipnews_fts_rowid_to(:until)
  and (:office = '' or a.office = :office collate nocase)
  and (:since = '' or a.sort_date >= :since)
  and (:until = '' or a.sort_date < date(:until, '+1 day'))
order by articles_fts.rank
limit 100
""",
    },
    "articles_per_office_per_month": {
        "title": "Articles per office per month",
        "description": "How many articles each office published each month (by the article's own date).",
        "sql": """\
select substr(sort_date, 1, 7) as month, office, count(*) as articles
from articles
group by month, office
order by month desc, office
""",
    },
    "failing_sources": {
        "title": "Sources that are failing",
        "description": (
            "Configured sources whose last poll failed, the longest-failing first "
            "(the same list as `ipnews sources --failing`)."
        ),
        "sql": """\
select id, office, name, kind, url, consecutive_failures, last_status, last_error,
       last_attempt, last_success, next_due, retry_after
from sources
where in_config = 1 and consecutive_failures > 0
order by consecutive_failures desc, office, id
""",
    },
}

# --- tables --------------------------------------------------------------------------------------

ARTICLE_COLUMNS = {
    "seq": "Row number (stable: VACUUM keeps it).",
    "fts_rowid": "The row's key in the full-text index: its day, then seq (newest = largest).",
    "id": "Stable article id.",
    "source_id": "The source the article was first archived from.",
    "office": "The office that published it (WIPO, EPO, CNIPA, JPO…).",
    "url": "The article on the office's site.",
    "url_canonical": "The URL normalized for deduplication (across sources too).",
    "guid": "The feed's GUID for the item, when it has one.",
    "title": "Title as published.",
    "published": "Publication time in UTC, or a bare date; empty when the source gives none (never invented).",
    "published_raw": "The date exactly as the source printed it.",
    "site_published": "The publishing site's own date, when it differs from the feed's.",
    "updated": "Last-updated time the source gives.",
    "sort_date": "published, else site_published, else updated: the date used for ordering and by year.",
    "source_org": "The issuing organisation or department named by the article.",
    "topics": "Topics or categories, as a JSON array.",
    "language": "Language code (en, zh, ja, de, fr…).",
    "summary": "Summary or teaser text.",
    "body": "Plain-text body (cut short in this list; whole on the article's own page).",
    "body_html": "Body as sanitized HTML (nh3), shown as text, never rendered.",
    "content_hash": "Hash of the content: a change makes a new revision.",
    "extraction": "How the body was obtained: feed, selectors (feeds.yaml's CSS) or fallback (generic extractor).",
    "parser_version": "Version of the parser that produced the row.",
    "fetch_id": "The fetch that last wrote this row.",
    "first_seen": "When ipnews first archived it (UTC).",
    "last_seen": "When ipnews last saw it in a source (UTC).",
}

SOURCE_COLUMNS = {
    "id": "Source id from feeds.yaml.",
    "kind": "feed (RSS, Atom, JSON Feed) or page (a scraped news list).",
    "interval_seconds": "How often the source is polled.",
    "enabled": "1 when enabled in feeds.yaml.",
    "in_config": "1 while the source is still in feeds.yaml (0: removed, its articles kept).",
    "etag": "Validator for the next conditional request.",
    "last_modified": "Validator for the next conditional request.",
    "last_status": "HTTP status of the last poll.",
    "last_error": "The last poll's error, if it failed.",
    "consecutive_failures": "Failed polls in a row (0 when the last poll succeeded).",
    "next_due": "When the source will next be polled.",
    "retry_after": "The office asked us to wait until then (Retry-After).",
}


def _tables() -> dict[str, dict[str, Any]]:
    return {
        "articles": {
            "description": (
                "One row per news article from every office. Search understands words, \"phrases\", "
                "prefix*, AND/OR/NOT, title:word and Chinese, Japanese or Korean words of any length."
            ),
            "label_column": "title",
            "fts_table": "articles_fts",
            "fts_pk": "fts_rowid",
            # The ipnews plugin turns what was typed into the index's FTS5 expression.
            "searchmode": "raw",
            "sort_desc": "sort_date",
            "sortable_columns": [
                "sort_date", "published", "site_published", "updated", "first_seen", "last_seen",
                "title", "office", "language", "source_id",
            ],
            "facets": ["office", "language", {"array": "topics"}, {"year": "sort_date"}],
            "size": 50,
            "columns": ARTICLE_COLUMNS,
        },
        "sources": {
            "description": "The sources in feeds.yaml and their fetch state.",
            "label_column": "name",
            "sort": "id",
            "facets": ["office", "kind"],
            "columns": SOURCE_COLUMNS,
        },
        "article_sources": {
            "description": "Every source that carried an article (an article found by two sources has two rows).",
            "sort_desc": "last_seen",
            "facets": ["source_id"],
            "columns": {"item_key": "The item's GUID, else its canonical URL.",
                        "item_digest": "Digest of the feed entry as last read; an entry repeated exactly "
                                       "is only marked seen."},
        },
        "article_revisions": {
            "description": "Earlier versions of articles that changed after they were archived.",
            "sort_desc": "seen",
            "columns": {
                "seen": "When the newer version replaced this one.",
                "changed_fields": "JSON array of the fields that changed.",
                "previous": "JSON object: the fields as they were.",
            },
        },
        "fetches": {
            "description": "One row per source per run: status, timing, items seen, new and changed, or the error.",
            "sort_desc": "id",
            "facets": ["source_id", "status"],
        },
        "articles_fts": {"hidden": True},
        "archive_meta": {"hidden": True},
        "_sqlite_migrations": {"hidden": True},
    }


def database_metadata() -> dict[str, Any]:
    """Metadata for one ipnews archive (the value under ``databases: <name>:``)."""
    return {
        "description": (
            "News from intellectual-property offices, archived by ipnews: articles with their sources, "
            "revisions and fetch history."
        ),
        "license": LICENSE_NOTE,
        "source": "The offices' own news feeds and pages (each article links to its original)",
        "tables": _tables(),
        "queries": copy.deepcopy(QUERIES),
    }


def build_metadata(db_name: str = "ipnews") -> dict[str, Any]:
    """Datasette metadata for serving the archive whose file stem is ``db_name``."""
    return {
        "title": "ipnews: news from intellectual-property offices",
        "description": (
            "Press releases, notices and news from patent, trademark and copyright offices, kept for good "
            "and searchable in every language they are written in."
        ),
        "license": LICENSE_NOTE,
        "source": "The offices' own news feeds and pages",
        "about": "ipnews",
        "databases": {db_name: database_metadata()},
    }


# --- YAML ----------------------------------------------------------------------------------------

YAML_HEADER = """\
# Datasette 0.65 metadata for archive/ipnews.db, generated by `python -m aggregator.web`
# from aggregator/web.py: edit that file, not this one (tests/test_datasette.py checks they agree).
# `datasette archive/` (configuration-directory mode) picks this file up; the ipnews plugin
# applies the same settings to an archive under any other name. See docs/search.md.
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def metadata_yaml(db_name: str = "ipnews") -> str:
    body = yaml.dump(build_metadata(db_name), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return YAML_HEADER + body


# --- serving -------------------------------------------------------------------------------------


def _require_datasette() -> Any:
    try:
        from datasette.app import Datasette
    except ImportError as e:
        raise WebUnavailable(f"Datasette is not installed: {INSTALL_HINT}") from e
    return Datasette


def make_datasette(db_path: str | Path, *, settings: dict[str, Any] | None = None) -> Any:
    """A Datasette instance serving one archive with our metadata and settings."""
    path = Path(db_path)
    if not path.is_file():
        raise WebUnavailable(f"{path}: no archive here yet (run `ipnews fetch` first)")
    Datasette = _require_datasette()
    return Datasette(
        [str(path)],
        metadata=build_metadata(path.stem),
        settings={**SETTINGS, **(settings or {})},
    )


def serve(
    db_path: str | Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    open_browser: bool = False,
) -> None:
    """Run Datasette on the archive until interrupted (what `ipnews serve` does)."""
    import asyncio

    ds = make_datasette(db_path)
    try:
        import uvicorn
    except ImportError as e:  # pragma: no cover - uvicorn is a dependency of datasette
        raise WebUnavailable(f"uvicorn is not installed: {INSTALL_HINT}") from e
    asyncio.run(ds.invoke_startup())
    import click

    url = f"http://{host}:{port}/{Path(db_path).stem}/articles"
    click.echo(f"Serving {db_path} at {url} (Ctrl-C to stop)")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    print(metadata_yaml(), end="")
