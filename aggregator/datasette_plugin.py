"""The ipnews plugin for Datasette 0.65 (registered by the `datasette` entry point in pyproject.toml).

Datasette loads it whenever ipnews is installed next to it, so ``datasette archive/demo.db`` and
``ipnews serve`` behave alike. It acts only on databases that are ipnews archives (an `articles`
table, its `articles_fts` index and our migrations), whatever their file is called:

* ``get_metadata``: the archive's metadata (descriptions, facets, sorting, hidden tables, canned
  queries) from :func:`aggregator.web.database_metadata`; a metadata file passed to Datasette
  still takes precedence.
* ``prepare_connection``: SQL functions ``ipnews_fts_text(text)`` (the archive's triggers call it
  when a row is written), ``ipnews_fts_query(q)`` (a user's query → our safe FTS5 expression, or an
  expression matching nothing when the query is unreadable; ``ipnews_fts_query(q, office)`` adds the
  office filter), ``ipnews_fts_rowid_from(date)`` and ``ipnews_fts_rowid_to(date)`` (the index's
  rowid range for a date range) and ``ipnews_snippet(text, q)``.
* ``filters_from_request``: the table search. The index holds CJK text as bigrams, so Datasette's
  own ``?_search=`` (the typed text, escaped) would not find 知识产权. The metadata sets
  ``searchmode: raw``, Datasette builds its usual ``match :search`` clause, search box and
  description, and this hook, run last, replaces the bound value with ``parse_query(...)``'s
  expression. The box keeps showing what was typed.
* ``asgi_wrapper``: drops an empty ``?_search=`` on the articles table (an empty search box),
  which Datasette would otherwise send to FTS5 as a syntax error.
* ``register_facet_classes``: a ``year`` facet (``facets: [{year: sort_date}]``,
  ``?_facet_year=sort_date``) that selects with ``sort_date__startswith=2026``.

See docs/search.md.
"""

from __future__ import annotations

import re
import sqlite3
import weakref
from pathlib import Path
from urllib.parse import unquote_plus

from datasette import hookimpl
from datasette.database import QueryInterrupted
from datasette.facets import Facet
from datasette.filters import FilterArguments
from datasette.utils import (
    escape_fts,
    escape_sqlite,
    path_with_added_args,
    path_with_removed_args,
    tilde_decode,
)
from datasette.utils.asgi import BadRequest

from .exceptions import InvalidSearchQuery
from .search import FTS_COLUMNS, SearchFilters, make_snippet, parse_query
from .store import register_index_function
from .web import database_metadata

ARTICLES = "articles"
FTS_TABLE = "articles_fts"
NO_MATCH = '""'  # an empty FTS5 phrase: valid, matches no row
COLUMN_SEARCH = "_ipnews_search_"

# Datasette's own table route (app.py): /<database>/<table>(.<format>)
_ARTICLES_PATH = re.compile(r"^/(?P<database>[^/.]+)/articles(?:\.\w+)?$")

# Per Datasette instance: database file path → is it an ipnews archive?
_archives: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# --- which databases are ipnews archives -------------------------------------------------------------


def _looks_like_archive(path: str) -> bool:
    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {ARTICLES, FTS_TABLE, "_sqlite_migrations"} <= names:
            return False
        row = conn.execute("SELECT 1 FROM _sqlite_migrations WHERE migration_set = 'ipnews' LIMIT 1").fetchone()
        return row is not None
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def is_archive(datasette, database: str | None) -> bool:
    """Is this Datasette database an ipnews archive? (Checked once per file.)"""
    db = datasette.databases.get(database) if database else None
    if db is None or db.is_memory or not db.path:
        return False
    known = _archives.setdefault(datasette, {})
    if db.path not in known:
        known[db.path] = _looks_like_archive(db.path)
    return known[db.path]


# --- SQL functions -------------------------------------------------------------------------------


def fts_query(query: str | None) -> str:
    """``ipnews_fts_query(q)``: the FTS5 expression for a user's query, or one matching nothing."""
    try:
        return parse_query(query if isinstance(query, str) else "").expression
    except InvalidSearchQuery:
        return NO_MATCH


def fts_query_for_office(query: str | None, office: str | None) -> str:
    """``ipnews_fts_query(q, office)``: the expression on the text columns only, plus the office's
    facet token unless `office` is empty (see SearchFilters.match)."""
    expression = fts_query(query)
    if expression == NO_MATCH:
        return NO_MATCH
    return SearchFilters(offices=(office,) if office else ()).match(expression)


def _rowid_from(since: str | None) -> int:
    """``ipnews_fts_rowid_from(since)``: the lowest FTS rowid an article dated `since` or later has."""
    return SearchFilters(since=since or None).rowid_range()[0]


def _rowid_to(until: str | None) -> int:
    """``ipnews_fts_rowid_to(until)``: the highest FTS rowid an article dated up to `until` has."""
    return SearchFilters(until=until or None).rowid_range()[1]


def _snippet(text: object, query: object) -> str:
    try:
        terms = parse_query(query).terms if isinstance(query, str) else ()
    except InvalidSearchQuery:
        terms = ()
    return make_snippet(text if isinstance(text, str) else "", terms)


@hookimpl
def prepare_connection(conn):
    register_index_function(conn)
    conn.create_function("ipnews_fts_query", 1, fts_query, deterministic=True)
    conn.create_function("ipnews_fts_query", 2, fts_query_for_office, deterministic=True)
    conn.create_function("ipnews_fts_rowid_from", 1, _rowid_from, deterministic=True)
    conn.create_function("ipnews_fts_rowid_to", 1, _rowid_to, deterministic=True)
    conn.create_function("ipnews_snippet", 2, _snippet, deterministic=True)


# --- metadata ------------------------------------------------------------------------------------


@hookimpl
def get_metadata(datasette, key, database, table):
    names = [database] if database else list(datasette.databases)
    found = {name: database_metadata() for name in names if is_archive(datasette, name)}
    return {"databases": found} if found else {}


# --- search --------------------------------------------------------------------------------------


def _expression(value: str, problems: list[str]) -> str:
    """Our expression for a search box value; an unreadable one matches nothing and says why."""
    try:
        return parse_query(value).expression
    except InvalidSearchQuery as e:
        problems.append(f"nothing found: {e}")
        return NO_MATCH


@hookimpl(trylast=True)
def filters_from_request(request, database, table, datasette):
    """Swap Datasette's bound ``:search`` value for our FTS5 expression (see the module doc), and
    run the column searches (``_search_title=``, renamed by asgi_wrapper; see _rename_column_search).

    trylast: this hook's params are merged after Datasette's own search filter, so they win.
    """
    if table != ARTICLES or not is_archive(datasette, database):
        return None
    table_metadata = datasette.table_metadata(database, table)
    raw = table_metadata.get("searchmode") == "raw"
    mode = request.args.get("_searchmode")
    if mode in ("raw", "escaped"):
        raw = mode == "raw"
    fts_table = request.args.get("_fts_table") or table_metadata.get("fts_table")
    if fts_table != FTS_TABLE:
        return None
    columns = [(key[len(COLUMN_SEARCH):], request.args[key]) for key in request.args if key.startswith(COLUMN_SEARCH)]
    if columns:
        return _column_searches(columns, raw)
    if not raw or "_search" not in request.args:
        return None  # Datasette's literal search, as asked
    problems: list[str] = []
    return FilterArguments([], {"search": _expression(request.args["_search"], problems)},
                           human_descriptions=problems)


def _column_searches(columns: list[tuple[str, str]], raw: bool) -> FilterArguments:
    """Datasette's own column search compares the FTS rowid with the articles' rowid, which are
    no longer the same (docs/search.md): ours joins on fts_rowid, like the search box."""
    clauses, params, descriptions = [], {}, []
    for i, (column, text) in enumerate(columns):
        if column not in FTS_COLUMNS:
            raise BadRequest("Cannot search by that column")
        problems: list[str] = []
        expression = _expression(text, problems) if raw else escape_fts(text)
        clauses.append(f"fts_rowid in (select rowid from {FTS_TABLE} where {FTS_TABLE} match :ipnews_search_{i})")
        params[f"ipnews_search_{i}"] = NO_MATCH if expression == NO_MATCH else f"{{{column}}} : ( {expression} )"
        descriptions += [f'search column "{column}" matches "{text}"', *problems]
    return FilterArguments(clauses, params, descriptions, {"search": columns[-1][1]})


def _is_blank_search(pair: bytes) -> bool:
    key, _, value = pair.partition(b"=")
    name = unquote_plus(key.decode("latin-1"))
    return name.startswith("_search") and name != "_searchmode" and not unquote_plus(value.decode("latin-1")).strip()


def _rewrite_search(datasette, scope: dict) -> dict:
    """On an archive's articles table: drop empty searches; rename column searches (see
    _rename_column_search)."""
    query = scope.get("query_string") or b""
    if b"_search" not in query:
        return scope
    path = scope.get("raw_path") or scope.get("path", "").encode("utf-8")
    path = path.decode("latin-1").partition("?")[0]
    base_url = datasette.setting("base_url") or "/"
    if base_url != "/" and path.startswith(base_url):
        path = "/" + path[len(base_url):]
    match = _ARTICLES_PATH.match(path)
    if not match:
        return scope
    try:
        db = datasette.get_database(route=tilde_decode(match.group("database")))
    except KeyError:
        return scope
    if not is_archive(datasette, db.name):
        return scope
    pairs = query.split(b"&")
    kept = _rename_column_search([pair for pair in pairs if not _is_blank_search(pair)])
    if kept == pairs:
        return scope
    return dict(scope, query_string=b"&".join(kept))


def _rename_column_search(pairs: list[bytes]) -> list[bytes]:
    """``_search_title=`` → ``_ipnews_search_title=`` unless there is a ``_search=`` (which Datasette
    would use instead): Datasette then adds no clause of its own, and filters_from_request does."""
    names = [unquote_plus(pair.partition(b"=")[0].decode("latin-1")) for pair in pairs]
    if "_search" in names:
        return pairs
    return [b"_ipnews" + pair if name.startswith("_search_") else pair for pair, name in zip(pairs, names, strict=True)]


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def ipnews_app(scope, receive, send):
            if scope.get("type") == "http":
                scope = _rewrite_search(datasette, scope)
            await app(scope, receive, send)

        return ipnews_app

    return wrap


# --- the year facet ------------------------------------------------------------------------------


class YearFacet(Facet):
    """Counts by the year of an ISO date column, newest year first."""

    type = "year"

    async def suggest(self):
        return []

    async def facet_results(self):
        results, timed_out = [], []
        args = dict(self.get_querystring_pairs())
        facet_size = self.get_facet_size()
        for source_and_config in self.get_configs():
            config = source_and_config["config"]
            column = config.get("column") or config["simple"]
            col = escape_sqlite(column)
            sql = f"""
                select substr({col}, 1, 4) as value, count(*) as count from ({self.sql})
                where {col} glob '[0-9][0-9][0-9][0-9]*'
                group by value order by value desc limit {facet_size + 1}
            """
            try:
                rows = await self.ds.execute(
                    self.database, sql, self.params, truncate=False,
                    custom_time_limit=self.ds.setting("facet_time_limit_ms"),
                )
            except QueryInterrupted:
                timed_out.append(column)
                continue
            arg = f"{column}__startswith"
            values = []
            for row in rows.rows[:facet_size]:
                selected = args.get(arg) == row["value"]
                if selected:
                    toggle = path_with_removed_args(self.request, {arg: row["value"]})
                else:
                    toggle = path_with_added_args(self.request, {arg: row["value"]})
                values.append({
                    "value": row["value"],
                    "label": row["value"],
                    "count": row["count"],
                    "toggle_url": self.ds.absolute_url(self.request, self.ds.urls.path(toggle)),
                    "selected": selected,
                })
            results.append({
                "name": column,
                "type": self.type,
                "hideable": source_and_config["source"] != "metadata",
                "toggle_url": self.ds.urls.path(path_with_removed_args(self.request, {"_facet_year": column})),
                "results": values,
                "truncated": len(rows) > facet_size,
            })
        return results, timed_out


@hookimpl
def register_facet_classes():
    return [YearFacet]
