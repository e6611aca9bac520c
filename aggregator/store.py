"""The archive: one SQLite file, written through sqlite-utils.

WAL mode lets Datasette read while cron writes. The schema is created and
upgraded by named migrations. Every source's results go in one transaction
(articles, its fetch row, its fetch state), so a crash never leaves half a
batch. Upserts, never INSERT OR REPLACE: replacing a row would delete it
first and churn the full-text index.

The FTS table `articles_fts` is contentless (the text lives once, in
`articles`) and is kept in sync by triggers that call `ipnews_fts_text()`,
a deterministic SQL function registered on every connection we open; see
search.py for why the indexed text is not the stored text. Its rowid is the
article's date and seq (`articles.fts_rowid`), so FTS5 itself answers
newest-first and date ranges; see docs/search.md. Our own write connection
leaves new rows to the end of its transaction and indexes them then, in
rowid order (see m009_fts_deferred_indexing).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from .cluster import (
    FINGERPRINT_VERSION,
    THRESHOLD,
    Fingerprint,
    candidate_keys,
    score_stored,
)
from .derived import Derived, derive, fts_text, topics_json
from .exceptions import StorageError
from .normalize import iso_utc
from .search import (
    FACETS_COLUMN,
    FTS_COLUMNS,
    FTS_ROWID_SQL,
    INDEX_VERSION,
    RANK_FUNCTION,
    facets_sql,
)
from .types import Article, FetchedArticle, FetchResult, Source
from .types import article_id as item_article_id
from .urls import canonical_url

log = logging.getLogger("ipnews")

migrations = Migrations("ipnews")
FTS_CALL = "ipnews_fts_text({row}.{column}, {row}.language)"
FTS_INDEXED = ", ".join((*FTS_COLUMNS, FACETS_COLUMN))  # the columns of articles_fts (since m007)

CACHE_KIB = 32 * 1024  # the write connection's page cache
WAL_LIMIT_FRAMES = 8192  # 32 MiB of 4 KiB pages: the WAL's length at which a poll's writer lets it rewind (see Checkpointer)
DEFAULT_KEEP_SNAPSHOTS = 10  # raw snapshots kept per article (0 keeps all)
MAX_KEY_POSTINGS = 50  # a lookup key shared by more representatives than this is ignored
# Candidates are the representatives sharing the most lookup keys with the new text (a copy
# shares most of its 16, an unrelated text one or two); scored earliest first.
MAX_CLUSTER_CANDIDATES = 16
VOLATILE_STREAK = 3  # changed on this many polls in a row: the article is volatile
VOLATILE_REVISION_GAP = 24 * 3600  # a volatile article keeps at most one revision a day
REVISION_FIELDS = ("title", "published", "site_published", "source_org", "topics", "language", "summary", "body")
REVISION_CONTEXT = ("body_html", "content_hash", "source_id", "extraction", "parser_version", "last_seen")

ARTICLE_COLUMNS = (
    "id", "source_id", "office", "url", "url_canonical", "guid", "title", "published", "published_raw",
    "site_published", "updated", "sort_date", "source_org", "topics", "language", "summary", "body",
    "body_html", "content_hash", "extraction", "parser_version", "fetch_id", "first_seen", "last_seen",
)


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE sources (
            id TEXT PRIMARY KEY,
            office TEXT NOT NULL,
            name TEXT,
            kind TEXT NOT NULL,
            url TEXT NOT NULL,
            language TEXT,
            interval_seconds INTEGER,
            enabled INTEGER NOT NULL DEFAULT 1,
            in_config INTEGER NOT NULL DEFAULT 1,
            etag TEXT,
            last_modified TEXT,
            last_attempt TEXT,
            last_success TEXT,
            last_status INTEGER,
            last_error TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            next_due TEXT,
            retry_after TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE articles (
            seq INTEGER PRIMARY KEY,  -- stable rowid for the FTS index (VACUUM keeps it)
            id TEXT NOT NULL UNIQUE,
            source_id TEXT NOT NULL REFERENCES sources(id),
            office TEXT NOT NULL,
            url TEXT NOT NULL,
            url_canonical TEXT NOT NULL,
            guid TEXT,
            title TEXT NOT NULL,
            published TEXT,
            published_raw TEXT,
            site_published TEXT,
            updated TEXT,
            sort_date TEXT,  -- published, else the site's date, else updated: for newest-first
            source_org TEXT,
            topics TEXT NOT NULL DEFAULT '[]',  -- JSON array
            language TEXT,
            summary TEXT,
            body TEXT,
            body_html TEXT,
            content_hash TEXT NOT NULL,
            extraction TEXT NOT NULL,
            parser_version TEXT NOT NULL,
            fetch_id INTEGER,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX articles_url_canonical ON articles(url_canonical)")
    db.execute("CREATE INDEX articles_office_sort ON articles(office, sort_date)")
    db.execute("CREATE INDEX articles_source_sort ON articles(source_id, sort_date)")
    db.execute("CREATE INDEX articles_sort ON articles(sort_date)")
    db.execute(
        """
        CREATE TABLE article_sources (
            source_id TEXT NOT NULL REFERENCES sources(id),
            item_key TEXT NOT NULL,  -- the item's GUID, else its canonical URL
            article_id TEXT NOT NULL REFERENCES articles(id),
            url TEXT,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            PRIMARY KEY (source_id, item_key)
        )
        """
    )
    db.execute("CREATE INDEX article_sources_article ON article_sources(article_id)")
    db.execute(
        """
        CREATE TABLE article_revisions (
            id INTEGER PRIMARY KEY,
            article_id TEXT NOT NULL REFERENCES articles(id),
            seen TEXT NOT NULL,  -- when the newer version replaced this one
            changed_fields TEXT NOT NULL,  -- JSON array of field names
            previous TEXT NOT NULL  -- JSON object: the fields as they were
        )
        """
    )
    db.execute("CREATE INDEX article_revisions_article ON article_revisions(article_id)")
    db.execute(
        """
        CREATE TABLE fetches (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            source_id TEXT NOT NULL,
            url TEXT,
            final_url TEXT,
            started TEXT NOT NULL,
            duration_ms INTEGER,
            status INTEGER,
            bytes INTEGER,
            items_seen INTEGER NOT NULL DEFAULT 0,
            items_new INTEGER NOT NULL DEFAULT 0,
            items_changed INTEGER NOT NULL DEFAULT 0,
            error TEXT
        )
        """
    )
    db.execute("CREATE INDEX fetches_source_started ON fetches(source_id, started)")
    db.execute("CREATE TABLE archive_meta (key TEXT PRIMARY KEY, value TEXT)")
    _create_fts(db)


@migrations()
def m002_snapshots_revisions_clusters(db: sqlite_utils.Database) -> None:
    """Raw snapshots, revision damping and near-duplicate clusters (issue #4)."""
    db.execute(
        """
        CREATE TABLE snapshots (
            id INTEGER PRIMARY KEY,
            source_id TEXT NOT NULL,
            url TEXT NOT NULL,  -- what we asked for
            final_url TEXT NOT NULL,  -- after redirects
            status INTEGER,
            headers TEXT,  -- JSON object, lower-cased names
            fetched TEXT NOT NULL,
            sha256 TEXT NOT NULL,  -- of the (decoded) body
            size INTEGER NOT NULL,
            compression TEXT NOT NULL,
            content BLOB NOT NULL,
            context TEXT  -- JSON: what else the parser needed (a page article's list entry)
        )
        """
    )
    db.execute("CREATE INDEX snapshots_sha256 ON snapshots(sha256, final_url)")
    db.execute(
        """
        CREATE TABLE article_snapshots (
            article_id TEXT NOT NULL REFERENCES articles(id),
            snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
            seen TEXT NOT NULL,
            PRIMARY KEY (article_id, snapshot_id)
        )
        """
    )
    db.execute("CREATE INDEX article_snapshots_snapshot ON article_snapshots(snapshot_id)")
    for column, kind in (("snapshot_id", "INTEGER"), ("revision_count", "INTEGER NOT NULL DEFAULT 0"),
                         ("change_streak", "INTEGER NOT NULL DEFAULT 0"), ("last_revised", "TEXT"),
                         ("cluster_id", "TEXT"), ("cluster_similarity", "REAL")):
        db.execute(f"ALTER TABLE articles ADD COLUMN {column} {kind}")
    db.execute("UPDATE articles SET cluster_id = id WHERE cluster_id IS NULL")
    db.execute("CREATE INDEX articles_cluster ON articles(cluster_id)")


@migrations()
def m003_fts_language_aware(db: sqlite_utils.Database) -> None:
    """Index Chinese text folded to simplified characters: the index function now takes the language."""
    for trigger in ("articles_fts_ai", "articles_fts_ad", "articles_fts_au"):
        db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    _create_fts_triggers(db, FTS_CALL)
    # The index itself is rebuilt by Archive._check_index_version (INDEX_VERSION changed).


@migrations()
def m004_backfill_cursor(db: sqlite_utils.Database) -> None:
    """Where `ipnews backfill` stopped, per source, so an interrupted walk resumes."""
    db.execute(
        """
        CREATE TABLE backfill_state (
            source_id TEXT PRIMARY KEY REFERENCES sources(id),
            next_url TEXT,  -- the next list page to read; NULL once the last page was read
            pages_done INTEGER NOT NULL DEFAULT 0,
            started TEXT NOT NULL,
            updated TEXT NOT NULL
        )
        """
    )


@migrations()
def m005_source_moved_to(db: sqlite_utils.Database) -> None:
    """Where a source moved with a permanent redirect (301/308): polled there until the config changes."""
    db.execute("ALTER TABLE sources ADD COLUMN moved_to TEXT")


@migrations()
def m006_fingerprints(db: sqlite_utils.Database) -> None:
    """Near-duplicate fingerprints and their lookup keys (see cluster.py)."""
    db.execute(
        """
        CREATE TABLE article_fingerprints (
            article_id TEXT PRIMARY KEY REFERENCES articles(id),
            version INTEGER NOT NULL,
            fingerprint BLOB NOT NULL
        )
        """
    )
    db.execute("CREATE TABLE fingerprint_keys (key INTEGER NOT NULL, article_id TEXT NOT NULL)")
    db.execute("CREATE INDEX fingerprint_keys_key ON fingerprint_keys(key)")
    db.execute("CREATE INDEX fingerprint_keys_article ON fingerprint_keys(article_id)")


@migrations()
def m007_fts_date_ordered_with_facets(db: sqlite_utils.Database) -> None:
    """The FTS index keyed by date (rowid = date key << 32 | seq) with a facets column of filter
    tokens, so newest-first, date ranges and office/language/source filters are answered by
    FTS5 itself (issue #7; docs/search.md). The index is refilled by _check_index_version."""
    for trigger in ("articles_fts_ai", "articles_fts_ad", "articles_fts_au"):
        db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    db.execute("DROP TABLE IF EXISTS articles_fts")
    # A generated column, so Datasette's search (fts_pk) and our joins can name the FTS rowid.
    db.execute(f"ALTER TABLE articles ADD COLUMN fts_rowid INTEGER GENERATED ALWAYS AS {FTS_ROWID_SQL} VIRTUAL")
    db.execute("CREATE INDEX articles_fts_rowid ON articles(fts_rowid)")
    _create_fts_v2(db)
    db.execute(
        "INSERT INTO archive_meta(key, value) VALUES ('index_version', '') "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value"
    )


def _create_fts_v2(db: sqlite_utils.Database) -> None:
    db.execute(
        f"CREATE VIRTUAL TABLE articles_fts USING fts5({FTS_INDEXED}, content='', "
        "tokenize='porter unicode61 remove_diacritics 2')"
    )
    # `ORDER BY rank` on the table alone is FTS5's fast path; the facets column weighs 0.
    db.execute("INSERT INTO articles_fts(articles_fts, rank) VALUES ('rank', ?)", [RANK_FUNCTION])
    _create_fts_triggers_v2(db, deferrable=False)


@migrations()
def m009_fts_deferred_indexing(db: sqlite_utils.Database) -> None:
    """Let ipnews's own writes index new articles at commit, in rowid order (issue #7).

    FTS5 flushes its pending terms to a new segment whenever a row arrives with a smaller
    rowid than the last one, and at every savepoint. A poll inserts articles of many dates,
    one savepoint per source, so nearly every row cost a flush. The triggers now ask
    `ipnews_fts_later(seq, op)` first: on an ipnews write connection it notes the row and
    says "later" (see Archive._flush_index); on any other connection (Datasette) it says "now"
    and the trigger indexes at once, as before."""
    _create_fts_triggers_v2(db, deferrable=True)


def _create_fts_triggers_v2(db: sqlite_utils.Database, *, deferrable: bool) -> None:
    """The triggers that keep `articles_fts` (date-ordered rowids, facets) in step with `articles`.

    ``deferrable`` (m009 on): each trigger first asks `ipnews_fts_later(seq, op)`; a row it
    leaves to the commit (see Archive._flush_index) is not in the index yet, so there is
    nothing to delete or update there: its final values are indexed at commit."""
    for trigger in ("articles_fts_ai", "articles_fts_ad", "articles_fts_au"):
        db.execute(f"DROP TRIGGER IF EXISTS {trigger}")

    def when(row: str, op: str) -> str:
        return f"\n            WHEN ipnews_fts_later({row}.seq, '{op}') = 0" if deferrable else ""

    values_new, values_old = fts_values("new."), fts_values("old.")
    watched = ", ".join((*FTS_COLUMNS, "language", "sort_date", "office", "source_id"))
    db.execute(
        f"""CREATE TRIGGER articles_fts_ai AFTER INSERT ON articles{when("new", "insert")} BEGIN
            INSERT INTO articles_fts(rowid, {FTS_INDEXED}) VALUES (new.fts_rowid, {values_new});
        END"""
    )
    db.execute(
        f"""CREATE TRIGGER articles_fts_ad AFTER DELETE ON articles{when("old", "delete")} BEGIN
            INSERT INTO articles_fts(articles_fts, rowid, {FTS_INDEXED}) VALUES ('delete', old.fts_rowid, {values_old});
        END"""
    )
    # A new sort_date moves the row in the index: deleted at the old rowid, inserted at the new.
    db.execute(
        f"""CREATE TRIGGER articles_fts_au AFTER UPDATE OF {watched} ON articles{when("old", "update")} BEGIN
            INSERT INTO articles_fts(articles_fts, rowid, {FTS_INDEXED}) VALUES ('delete', old.fts_rowid, {values_old});
            INSERT INTO articles_fts(rowid, {FTS_INDEXED}) VALUES (new.fts_rowid, {values_new});
        END"""
    )


@migrations()
def m010_fingerprint_keys_clustered(db: sqlite_utils.Database) -> None:
    """Lookup keys clustered by key (issue #7): a candidate lookup reads one run of the table
    instead of an index entry plus a table row per posting."""
    db.execute(
        """
        CREATE TABLE fingerprint_keys_new (
            key INTEGER NOT NULL,
            article_id TEXT NOT NULL,
            PRIMARY KEY (key, article_id)
        ) WITHOUT ROWID
        """
    )
    db.execute("INSERT OR IGNORE INTO fingerprint_keys_new (key, article_id) SELECT key, article_id FROM fingerprint_keys")
    db.execute("DROP TABLE fingerprint_keys")
    db.execute("ALTER TABLE fingerprint_keys_new RENAME TO fingerprint_keys")
    db.execute("CREATE INDEX fingerprint_keys_article ON fingerprint_keys(article_id)")


@migrations()
def m011_item_digests(db: sqlite_utils.Database) -> None:
    """Each feed entry's digest (issue #7): an entry a feed repeats exactly is known without
    being normalized again (see Archive.known_items)."""
    db.execute("ALTER TABLE article_sources ADD COLUMN item_digest TEXT")


FTS_HASH_BYTES = 8 << 20  # FTS5's default is 1 MiB


@migrations()
def m012_fts_pending_terms(db: sqlite_utils.Database) -> None:
    """Let FTS5 hold 8 MiB of pending terms before it writes a segment (issue #7).

    A group commit indexes ~6 MB of text (more with CJK bigrams, whose many distinct terms
    make each segment large); at the 1 MiB default every commit wrote several small
    segments that the automerge then rewrote. Fewer, larger segments: indexing a
    2,000-source poll's articles costs ~20 % less CPU (benchmarks/findings.md). The setting
    is kept in the index's own config table, so a rebuild keeps it."""
    db.execute("INSERT INTO articles_fts(articles_fts, rank) VALUES ('hashsize', ?)", [FTS_HASH_BYTES])


@migrations()
def m013_fingerprint_keys_without_article_index(db: sqlite_utils.Database) -> None:
    """Drop the index of lookup keys by article (issue #7). Sixteen entries per representative,
    at random places (article ids are hashes): in a 2,000-source poll it cost the writer ~9 %
    of its CPU, only to find an article's keys when its text is revised, and those keys are
    the first values of its stored fingerprint (see Archive._drop_keys)."""
    db.execute("DROP INDEX IF EXISTS fingerprint_keys_article")


GZIP_MAGIC = b"\x1f\x8b"  # a zlib stream never starts so (its first byte is 0x?8)


def snapshot_bytes(stored: bytes) -> bytes:
    """A snapshot's response bytes from what the table stores: zlib, or one gzip member as the
    server sent it (zlib tells the two apart by their headers)."""
    return zlib.decompress(stored, zlib.MAX_WBITS | 32)


INDEXED_FROM = (*FTS_COLUMNS, "language", "office", "source_id")  # the columns an index entry is made from


def index_rows_sql(where: str = "") -> str:
    """Index the articles ``where`` selects, with the triggers' values, in rowid order: FTS5
    appends rising rowids to one pending segment (a smaller one after a larger flushes it)."""
    return (f"INSERT INTO articles_fts(rowid, {FTS_INDEXED}) SELECT fts_rowid, {fts_values()} "
            f"FROM articles {where} ORDER BY fts_rowid")


REINDEX_TABLE = "ipnews_stale_entries"  # a TEMP table: the index entries a transaction replaces
STALE_ENTRY = ("fts_rowid", *INDEXED_FROM)  # its columns: what Archive._defer_reindex notes of an entry


def reindex_rows_sql() -> str:
    """Replace index entries in one rowid order: the entries as indexed (the rows of
    REINDEX_TABLE: an entry's rowid and the INDEXED_FROM values it was made from) are deleted
    and the articles whose seq is in the parameter (a JSON array) are indexed, a delete before
    an insert at the same rowid. A NULL command makes FTS5 take the row as an insert."""
    columns = ", ".join(INDEXED_FROM)
    return (f"INSERT INTO articles_fts(articles_fts, rowid, {FTS_INDEXED}) SELECT op, fts_rowid, {fts_values()} "
            f"FROM (SELECT 'delete' AS op, fts_rowid, {columns} FROM temp.{REINDEX_TABLE} "
            f"UNION ALL SELECT NULL, fts_rowid, {columns} FROM articles "
            f"WHERE seq IN (SELECT value FROM json_each(?))) ORDER BY fts_rowid, op IS NULL")


def fts_values(row: str = "") -> str:
    """The indexed values of an article, in the FTS table's column order (`row`: "new.",
    "old." or "" for a plain SELECT): the triggers and rebuild_index share it."""
    texts = (f"ipnews_fts_text({row}{column}, {row}language)" for column in FTS_COLUMNS)
    return ", ".join((*texts, facets_sql(row)))


def _create_fts(db: sqlite_utils.Database) -> None:
    columns = ", ".join(FTS_COLUMNS)
    db.execute(
        f"CREATE VIRTUAL TABLE articles_fts USING fts5({columns}, content='', "
        "tokenize='porter unicode61 remove_diacritics 2')"
    )
    _create_fts_triggers(db, "ipnews_fts_text({row}.{column})")
    db.execute(
        "INSERT INTO archive_meta(key, value) VALUES ('index_version', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        ["1"],
    )


def _create_fts_triggers(db: sqlite_utils.Database, call: str) -> None:
    columns = ", ".join(FTS_COLUMNS)
    values_new = ", ".join(call.format(row="new", column=c) for c in FTS_COLUMNS)
    values_old = ", ".join(call.format(row="old", column=c) for c in FTS_COLUMNS)
    # One statement at a time: executescript() would commit the migration's transaction midway.
    db.execute(
        f"""CREATE TRIGGER articles_fts_ai AFTER INSERT ON articles BEGIN
            INSERT INTO articles_fts(rowid, {columns}) VALUES (new.seq, {values_new});
        END"""
    )
    db.execute(
        f"""CREATE TRIGGER articles_fts_ad AFTER DELETE ON articles BEGIN
            INSERT INTO articles_fts(articles_fts, rowid, {columns}) VALUES ('delete', old.seq, {values_old});
        END"""
    )
    db.execute(
        f"""CREATE TRIGGER articles_fts_au AFTER UPDATE OF {columns}, language ON articles BEGIN
            INSERT INTO articles_fts(articles_fts, rowid, {columns}) VALUES ('delete', old.seq, {values_old});
            INSERT INTO articles_fts(rowid, {columns}) VALUES (new.seq, {values_new});
        END"""
    )

_DIGITS = re.compile(r"\d+")


def _sort_date(article: Article) -> str | None:
    return article.published or article.site_published or article.updated


def _only_numbers_changed(previous: dict[str, Any], current: dict[str, Any]) -> bool:
    return all(
        _DIGITS.sub("#", previous.get(name) or "") == _DIGITS.sub("#", current.get(name) or "")
        for name in ("title", "summary", "body", "source_org", "topics")
    )


def _age_seconds(earlier: str, later: str) -> float:
    def parse(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    return (parse(later) - parse(earlier)).total_seconds()


@dataclass(frozen=True)
class Snapshot:
    """A stored response: what the office served, decompressed."""

    id: int
    source_id: str
    url: str
    final_url: str
    status: int | None
    headers: dict[str, str]
    fetched: str
    content: bytes
    context: Any


def _index_now(seq: Any, op: Any) -> int:
    return 0


def register_index_function(conn: sqlite3.Connection, ready: dict[tuple[str, str | None], str] | None = None) -> None:
    """`ipnews_fts_text(text[, language])`, which the archive's FTS triggers call: every
    connection that writes articles needs it (ours, and Datasette's through our plugin).

    ``ready`` maps (text, language) to its index text computed beforehand (by a parse
    worker, see :func:`derive`): the trigger then costs a dict lookup, not the CJK work.
    """
    # Connections other than an ipnews writer index at once (see m009_fts_deferred_indexing).
    conn.create_function("ipnews_fts_later", 2, _index_now)
    if ready is None:
        conn.create_function("ipnews_fts_text", 1, fts_text, deterministic=True)
        conn.create_function("ipnews_fts_text", 2, fts_text, deterministic=True)
        return

    def ready_or_computed(value: Any, language: Any = None) -> str:
        found = ready.get((value, language)) if isinstance(value, str) else None
        return found if found is not None else fts_text(value, language)

    conn.create_function("ipnews_fts_text", 1, ready_or_computed, deterministic=True)
    conn.create_function("ipnews_fts_text", 2, ready_or_computed, deterministic=True)


def needs_upgrade(path: str | Path) -> bool:
    """Whether an existing archive lacks migrations or its index is stale (an older ipnews wrote it)."""
    if not Path(path).exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            db = sqlite_utils.Database(conn)
            if not migrations.applied(db):
                return False  # not an ipnews archive (or an empty file): never write ours into it
            if migrations.pending(db):
                return True
            row = conn.execute("SELECT value FROM archive_meta WHERE key = 'index_version'").fetchone()
            return not row or row[0] != INDEX_VERSION
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False  # not ours to fix here: the read-only open reports it


@dataclass(frozen=True)
class SourceState:
    """What the archive remembers of a source between runs."""

    source_id: str
    etag: str | None = None
    last_modified: str | None = None
    last_attempt: str | None = None
    last_success: str | None = None
    last_status: int | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    next_due: str | None = None
    retry_after: str | None = None
    url: str | None = None
    moved_to: str | None = None  # a permanent redirect's target, polled instead of url


@dataclass(frozen=True)
class SaveResult:
    seen: int
    new: int
    changed: int


@dataclass(frozen=True)
class FetchRecord:
    """One row of the `fetches` table: a source polled in a run."""

    run_id: str
    source_id: str
    started: str
    duration_ms: int
    url: str | None = None
    final_url: str | None = None
    status: int | None = None
    bytes: int | None = None
    error: str | None = None


class Archive:
    """The archive database. Open it with ``Archive(path)``; close it when done."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        self.host_aliases: dict[str, str] = {}  # old host → current host (from feeds.yaml)
        self._ready_index: dict[tuple[str, str | None], str] = {}  # see register_index_function
        self._savepoints = 0
        self._index_later: set[int] | None = None  # articles (seq) to index at commit; None: index now
        self._index_stale: dict[int, tuple[Any, ...]] = {}  # seq → its index entry (STALE_ENTRY), replaced at commit
        self.on_commit: Callable[[], None] | None = None  # called after each commit (see Checkpointer)
        try:
            if readonly:
                if not self.path.exists():
                    raise StorageError(f"{self.path}: no archive here yet (run `ipnews fetch` first)")
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30, isolation_level=None,
                                       check_same_thread=False)
            else:
                if self.path.parent and not self.path.parent.exists():
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
            register_index_function(conn, self._ready_index)
            if not readonly:
                conn.create_function("ipnews_fts_later", 2, self._index_later_or_now)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA busy_timeout = 30000")
            if not readonly:
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA synchronous = NORMAL")
                # A group commit writes tens of MB; with SQLite's 2 MB default the cache spills
                # dirty pages to the WAL mid-transaction and reads them back (issue #7).
                self.db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                self.db.execute("PRAGMA foreign_keys = ON")
                if migrations.pending(self.db):
                    # Under the write lock, so two first runs cannot both create the schema.
                    with self.write_transaction():
                        migrations.apply(self.db)
                self._check_index_version()
            else:
                self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as e:
            raise StorageError(f"{self.path}: cannot open the archive: {e}") from e
        except OSError as e:
            raise StorageError(f"{self.path}: cannot open the archive: {e.strerror or e}") from e

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write_transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE: take the write lock up front, so two processes queue on the busy
        timeout instead of failing on a read-to-write lock upgrade.

        Inside an open transaction (a group commit, see :meth:`group_commit`) it is a
        savepoint instead: the block still takes effect whole or not at all."""
        if self.db.conn.in_transaction:
            yield from self._savepoint()
            return
        try:
            self.db.conn.execute("BEGIN IMMEDIATE")
            self._index_later, self._index_stale = set(), {}
            try:
                yield
                self._flush_index()
            except BaseException:
                if self.db.conn.in_transaction:
                    self.db.conn.rollback()
                raise
            else:
                self.db.conn.commit()
            finally:
                self._index_later = None
                self._index_stale = {}
                self._ready_index.clear()
        except sqlite3.DatabaseError as e:  # a full disk, a read-only file, a locked or corrupt archive
            raise StorageError(f"{self.path}: cannot write to the archive: {e}") from e
        if self.on_commit is not None:
            self.on_commit()

    def _index_later_or_now(self, seq: int, op: str) -> int:
        """`ipnews_fts_later()` on our write connection: 1 when the FTS trigger should leave
        the row to :meth:`_flush_index`, 0 to index now (outside a transaction of ours, or a
        row indexed before this transaction began, unless its entry was noted for replacing:
        see :meth:`_defer_reindex`)."""
        later = self._index_later
        if later is None:
            return 0
        if op == "insert" or (op == "update" and seq in self._index_stale):
            later.add(seq)
            return 1
        if seq in later:
            if op == "delete":
                later.discard(seq)
            return 1
        return 0

    def _defer_reindex(self, previous: dict[str, Any]) -> None:
        """Before an update of an indexed article (``previous``: its row as it is now), note its
        index entry, so the update trigger leaves it to :meth:`_flush_index` instead of replacing
        it at once. Out of rowid order, each replacement there made FTS5 flush its pending terms
        to a new segment twice (about 1.5 ms of a warm poll's writer per revised article).
        The first note in a transaction is kept: it is what the index holds. An update rolled
        back to a savepoint is replaced by the row as it is again, the same entry."""
        seq = previous["seq"]
        if self._index_later is None or seq in self._index_later or seq in self._index_stale:
            return
        self._index_stale[seq] = tuple(previous[c] for c in STALE_ENTRY)

    def _flush_index(self) -> None:
        """Index the articles this transaction inserted or revised, in rowid order (a revised
        one's old entry deleted first): FTS5 then appends to one pending segment instead of
        flushing one per out-of-order row or per savepoint. Rows rolled back to a savepoint
        are simply not found."""
        later, self._index_later = self._index_later, None
        stale, self._index_stale = self._index_stale, {}
        execute = self.db.conn.execute
        if stale:
            # A table, not JSON: SQLite's JSON functions cut a text at a NUL character.
            execute(f"CREATE TEMP TABLE IF NOT EXISTS {REINDEX_TABLE} ({', '.join(STALE_ENTRY)})")
            self.db.conn.executemany(f"INSERT INTO temp.{REINDEX_TABLE} VALUES ({', '.join(['?'] * len(STALE_ENTRY))})",
                                     list(stale.values()))
            execute(reindex_rows_sql(), [json.dumps(sorted(later or ()))])
            execute(f"DELETE FROM temp.{REINDEX_TABLE}")
        elif later:
            execute(index_rows_sql("WHERE seq IN (SELECT value FROM json_each(?))"), [json.dumps(sorted(later))])

    def _savepoint(self) -> Iterator[None]:
        self._savepoints += 1
        name = f"ipnews_{self._savepoints}"
        conn = self.db.conn
        try:
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
                raise
            else:
                conn.execute(f"RELEASE {name}")
        except sqlite3.DatabaseError as e:
            raise StorageError(f"{self.path}: cannot write to the archive: {e}") from e

    @contextmanager
    def group_commit(self) -> Iterator[None]:
        """One transaction around several writes, each of which still commits or rolls back
        whole (a savepoint): fewer, larger commits cost less, above all in the FTS index,
        which writes a new segment per commit."""
        with self.write_transaction():
            yield

    # --- index maintenance ----------------------------------------------------------------

    def _check_index_version(self) -> None:
        row = self.db.execute("SELECT value FROM archive_meta WHERE key = 'index_version'").fetchone()
        if row and row[0] == INDEX_VERSION:
            return
        self.rebuild_index()

    def rebuild_index(self) -> None:
        """Re-index every article (after a change of index_text or of the index's layout), with
        the triggers' values; in rowid order, which FTS5 appends fastest."""
        with self.write_transaction():
            self.db.execute("INSERT INTO articles_fts(articles_fts) VALUES ('delete-all')")
            self.db.execute(index_rows_sql())
            self.db.execute(
                "INSERT INTO archive_meta(key, value) VALUES ('index_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [INDEX_VERSION],
            )

    # --- sources --------------------------------------------------------------------------

    def url_key(self, url: str) -> str:
        """An article URL's identity key: its canonical form, with the configured host aliases."""
        return canonical_url(url, host_aliases=self.host_aliases)

    def sync_sources(self, sources: Iterable[Source], *, host_aliases: dict[str, str] | None = None) -> None:
        """Mirror the config into `sources`, keeping each source's fetch state."""
        if host_aliases is not None:
            self.host_aliases = dict(host_aliases)
        rows = [
            {
                "id": s.id, "office": s.office, "name": s.name, "kind": s.kind, "url": s.url,
                "language": s.language, "interval_seconds": s.interval, "enabled": int(s.enabled), "in_config": 1,
            }
            for s in sources
        ]
        ids = [r["id"] for r in rows]
        with self.write_transaction():
            for row in rows:
                self.db.execute(
                    """
                    INSERT INTO sources (id, office, name, kind, url, language, interval_seconds, enabled, in_config)
                    VALUES (:id, :office, :name, :kind, :url, :language, :interval_seconds, :enabled, :in_config)
                    ON CONFLICT(id) DO UPDATE SET
                        office = excluded.office, name = excluded.name, kind = excluded.kind,
                        language = excluded.language, interval_seconds = excluded.interval_seconds,
                        enabled = excluded.enabled, in_config = 1,
                        -- a new URL in the config starts with fresh validators
                        etag = CASE WHEN sources.url = excluded.url THEN sources.etag END,
                        last_modified = CASE WHEN sources.url = excluded.url THEN sources.last_modified END,
                        moved_to = CASE WHEN sources.url = excluded.url THEN sources.moved_to END,
                        url = excluded.url
                    """,
                    row,
                )
            placeholders = ", ".join("?" for _ in ids) or "''"
            self.db.execute(f"UPDATE sources SET in_config = 0 WHERE id NOT IN ({placeholders})", ids)

    def source_state(self, source_id: str) -> SourceState:
        row = self.db.execute(
            """SELECT etag, last_modified, last_attempt, last_success, last_status, last_error,
                      consecutive_failures, next_due, retry_after, url, moved_to FROM sources WHERE id = ?""",
            [source_id],
        ).fetchone()
        if row is None:
            return SourceState(source_id)
        return SourceState(source_id, *row)

    def source_states(self) -> dict[str, SourceState]:
        rows = self.db.execute(
            """SELECT id, etag, last_modified, last_attempt, last_success, last_status, last_error,
                      consecutive_failures, next_due, retry_after, url, moved_to FROM sources"""
        ).fetchall()
        return {row[0]: SourceState(*row) for row in rows}

    def known_items(self, source_id: str) -> tuple[dict[str, str], dict[str, str]]:
        """What a feed's parse job needs to know of the source's items: item key → content hash
        (``"*"`` for those another source keeps: this one only marks them seen), and the digests
        of the entries stored as they were read (digest → the article id the entry's GUID or URL
        gives, which decides between repeated entries)."""
        rows = self.db.execute(
            """SELECT s.item_key, CASE WHEN a.source_id = s.source_id THEN a.content_hash ELSE '*' END, s.item_digest
               FROM article_sources s JOIN articles a ON a.id = s.article_id WHERE s.source_id = ?""",
            [source_id]).fetchall()
        hashes = {key: value for key, value, _ in rows if value is not None}
        digests = {digest: item_article_id(source_id, key) for key, _, digest in rows if digest is not None}
        return hashes, digests

    def known_item_keys(self, source_id: str) -> set[str]:
        """Item keys (GUIDs or canonical URLs) already archived for a source."""
        rows = self.db.execute("SELECT item_key FROM article_sources WHERE source_id = ?", [source_id])
        return {r[0] for r in rows}

    # --- writing a source's results -------------------------------------------------------

    def save_source_results(
        self,
        source: Source,
        articles: Sequence[Article | FetchedArticle],
        record: FetchRecord | None,
        state: SourceState | None,
        *,
        now: datetime | None = None,
        keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS,
        unchanged: Sequence[str] = (),
    ) -> SaveResult:
        """Store a poll's articles, their snapshots, its fetch row and the source's new state in one
        transaction. ``record`` and ``state`` are None when re-parsing (no fetch happened).
        ``unchanged``: digests of the feed entries the archive holds as they are, only marked seen."""
        seen_at = iso_utc(now or datetime.now(timezone.utc))
        items = [a if isinstance(a, FetchedArticle) else FetchedArticle(a) for a in articles]
        # Oldest first (undated first): new rows then get rising FTS rowids (day << 32 | seq), which
        # FTS5 appends to its buffer; a smaller rowid after a larger one flushes it (~6× slower).
        items.sort(key=lambda item: _sort_date(item.article) or "")
        new = changed = 0
        derived = [item.derived if isinstance(item.derived, Derived) else derive(item.article, self.host_aliases)
                   for item in items]
        for d in derived:
            for text, language, indexed in d.index:
                self._ready_index[(text, language)] = indexed
        try:
            with self.write_transaction():
                fetch_id = self._insert_fetch(record) if record else None
                seen = len(items) + self._mark_unchanged(source.id, unchanged, seen_at)
                snapshots: dict[int, int] = {}  # id(response) → snapshot row
                touched: list[str] = []
                for item, d in zip(items, derived, strict=True):

                    def snapshot(item: FetchedArticle = item) -> int | None:
                        """The item's response as a snapshot row, stored on first use (once per response)."""
                        if item.response is None:
                            return None
                        key = id(item.response)
                        if key not in snapshots:
                            snapshots[key] = self._store_snapshot(source.id, item.response, item.context, seen_at,
                                                                  packed=item.packed)
                        return snapshots[key]

                    outcome, article_id = self._save_article(source, item.article, d, fetch_id, seen_at, snapshot,
                                                             item.digest)
                    new += outcome == "new"
                    changed += outcome == "changed"
                    if outcome != "same" and item.response is not None:
                        self._link_snapshot(article_id, snapshots[id(item.response)], seen_at)
                        if outcome == "changed":  # a new article has its one snapshot: nothing to prune
                            touched.append(article_id)
                if fetch_id is not None:
                    self.db.execute(
                        "UPDATE fetches SET items_seen = ?, items_new = ?, items_changed = ? WHERE id = ?",
                        [seen, new, changed, fetch_id],
                    )
                if state is not None:
                    self._write_state(state)
                if keep_snapshots > 0 and touched:
                    self._prune_snapshots(touched, keep_snapshots)
        except sqlite3.DatabaseError as e:
            raise StorageError(f"{self.path}: cannot write {source.id}'s results: {e}") from e
        return SaveResult(seen=seen, new=new, changed=changed)

    def _mark_unchanged(self, source_id: str, digests: Sequence[str], seen_at: str) -> int:
        """Mark seen the items behind these entry digests, as saving them unchanged would
        (the article's change streak ends only where this source keeps it); returns how many."""
        marked = 0
        execute = self.db.conn.execute
        for start in range(0, len(digests), 500):
            chunk = list(digests[start:start + 500])
            marks = ", ".join("?" for _ in chunk)
            execute(
                f"""UPDATE articles SET last_seen = ?1,
                          change_streak = CASE WHEN source_id = ?2 THEN 0 ELSE change_streak END
                   WHERE id IN (SELECT article_id FROM article_sources WHERE source_id = ?2 AND item_digest IN ({marks}))
                     AND (last_seen IS NOT ?1 OR (source_id = ?2 AND change_streak != 0))""",
                [seen_at, source_id, *chunk])
            marked += execute(
                f"UPDATE article_sources SET last_seen = ?1 WHERE source_id = ?2 AND item_digest IN ({marks})",
                [seen_at, source_id, *chunk]).rowcount
        return marked

    def record_failure(self, record: FetchRecord, state: SourceState) -> None:
        """Record a failed poll (fetch row + state), nothing else touched."""
        try:
            with self.write_transaction():
                self._insert_fetch(record)
                self._write_state(state)
        except sqlite3.DatabaseError as e:
            raise StorageError(f"{self.path}: cannot record {record.source_id}'s failure: {e}") from e

    def _insert_fetch(self, record: FetchRecord) -> int:
        cursor = self.db.execute(
            """INSERT INTO fetches (run_id, source_id, url, final_url, started, duration_ms, status, bytes, error)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [record.run_id, record.source_id, record.url, record.final_url, record.started,
             record.duration_ms, record.status, record.bytes, record.error],
        )
        return int(cursor.lastrowid)

    def _write_state(self, state: SourceState) -> None:
        self.db.execute(
            """UPDATE sources SET etag = ?, last_modified = ?, last_attempt = ?, last_success = ?,
                      last_status = ?, last_error = ?, consecutive_failures = ?, next_due = ?, retry_after = ?,
                      moved_to = ?
               WHERE id = ?""",
            [state.etag, state.last_modified, state.last_attempt, state.last_success, state.last_status,
             state.last_error, state.consecutive_failures, state.next_due, state.retry_after, state.moved_to,
             state.source_id],
        )

    def _save_article(
        self, source: Source, article: Article, derived: Derived, fetch_id: int | None, seen_at: str,
        snapshot: Callable[[], int | None] = lambda: None, digest: str | None = None,
    ) -> tuple[str, str]:
        """Insert, update or just mark seen one article; returns ("new"|"changed"|"same", article id).

        ``snapshot`` stores the response and returns its row, called only for a new or changed
        article: the row is written with its snapshot at once (an UPDATE would rewrite the whole
        row, body included)."""
        url_key = derived.url_key

        def full() -> Derived:  # the worker skipped an item it took for unchanged
            return derived if derived.complete else derive(article, self.host_aliases)

        item_key = article.guid or url_key
        if digest is not None and article.id != item_article_id(source.id, item_key):
            digest = None  # a digest stands for the id the parser gives; this key is not it (host aliases)
        execute = self.db.conn.execute  # hot path: sqlite3 directly, not through sqlite-utils
        # Three lookups in one statement (each statement is a GIL hand-off, see _store_fingerprint):
        # the article this source's item is linked to; else one another source archived from
        # the same page (one article, two sources); else a leftover article with the id the
        # item would get (e.g. its source link was lost), which is reused, not duplicated.
        linked, other, exists = execute(
            """SELECT (SELECT article_id FROM article_sources WHERE source_id = ?1 AND item_key = ?2),
                      (SELECT id FROM articles WHERE url_canonical = ?3 AND source_id != ?1 ORDER BY seq LIMIT 1),
                      EXISTS (SELECT 1 FROM articles WHERE id = ?4)""",
            [source.id, item_key, url_key, article.id],
        ).fetchone()
        article_id = linked if linked is not None else other
        if article_id is None:
            article_id = article.id
            if not exists:
                # The cluster is decided first, so the row is written once, cluster and all.
                fp = full().fingerprint
                match = self._closest(article_id, fp) if fp is not None else None
                self._insert_article(article, url_key, fetch_id, seen_at, snapshot(), match)
                self._link_source(source.id, item_key, article_id, article.url, seen_at, digest)
                if fp is not None:
                    self._store_fingerprint(article_id, fp, representative=match is None)
                return "new", article_id
        self._link_source(source.id, item_key, article_id, article.url, seen_at, digest)
        current = execute(
            "SELECT source_id, content_hash, extraction, change_streak, last_revised FROM articles WHERE id = ?",
            [article_id],
        ).fetchone()
        home_source, stored_hash, stored_extraction, streak, last_revised = current
        takes_over = home_source != source.id and stored_extraction == "feed" and article.extraction != "feed"
        if home_source != source.id and not takes_over:
            execute("UPDATE articles SET last_seen = ? WHERE id = ?", [seen_at, article_id])
            return "same", article_id
        if stored_hash == article.content_hash:
            execute(
                "UPDATE articles SET last_seen = ?, change_streak = 0 WHERE id = ? AND "
                "(last_seen IS NOT ? OR change_streak != 0)",
                [seen_at, article_id, seen_at],
            )
            return "same", article_id
        # The article's own page is a better record than a feed's summary of it: a page source
        # that extracted it takes the article over; otherwise only its first source revises it.
        self._revise_article(article_id, article, url_key, fetch_id, seen_at, streak, last_revised, snapshot())
        # A revised text gets a new fingerprint; it joins a cluster only if it stood alone.
        alone = self.db.execute("SELECT cluster_id = id FROM articles WHERE id = ?", [article_id]).fetchone()[0]
        self._cluster(article_id, full().fingerprint, joining=bool(alone))
        return "changed", article_id

    def _article_row(self, article: Article, url_key: str, fetch_id: int | None, seen_at: str) -> dict[str, Any]:
        row = {name: getattr(article, name, None) for name in ARTICLE_COLUMNS if hasattr(article, name)}
        row["url_canonical"] = url_key
        row["topics"] = topics_json(article.topics)
        row["sort_date"] = _sort_date(article)
        row["fetch_id"] = fetch_id
        row["first_seen"] = seen_at
        row["last_seen"] = seen_at
        return row

    def _insert_article(self, article: Article, url_key: str, fetch_id: int | None, seen_at: str,
                        snapshot_id: int | None, match: tuple[str, float] | None = None) -> None:
        row = self._article_row(article, url_key, fetch_id, seen_at)
        row["cluster_id"] = match[0] if match else article.id
        if match:
            row["cluster_similarity"] = match[1]
        row["snapshot_id"] = snapshot_id
        columns = ", ".join(row)
        params = ", ".join(f":{c}" for c in row)
        self.db.conn.execute(f"INSERT INTO articles ({columns}) VALUES ({params})", row)

    def _revise_article(
        self,
        article_id: str,
        article: Article,
        url_key: str,
        fetch_id: int | None,
        seen_at: str,
        streak: int,
        last_revised: str | None,
        snapshot_id: int | None = None,
    ) -> None:
        """Update the current row; keep the previous version unless the article is volatile.

        An article whose numbers (only its numbers: a clock, a counter, a date stamp) change on
        VOLATILE_STREAK polls in a row is damped: its row still follows the office, but a
        revision is kept at most once per VOLATILE_REVISION_GAP, so it cannot flood the history.
        A change in the words is always kept.
        """
        old = self.db.execute("SELECT *, fts_rowid FROM articles WHERE id = ?", [article_id])
        names = [d[0] for d in old.description]
        previous = dict(zip(names, old.fetchone(), strict=True))
        self._defer_reindex(previous)
        row = self._article_row(article, url_key, fetch_id, seen_at)
        for keep in ("id", "first_seen"):
            row.pop(keep)
        if fetch_id is None:
            row.pop("fetch_id")  # a re-parse keeps the provenance of the fetch that brought the bytes
        streak += 1
        volatile = streak >= VOLATILE_STREAK and _only_numbers_changed(previous, row)
        recent = last_revised is not None and _age_seconds(last_revised, seen_at) < VOLATILE_REVISION_GAP
        if not (volatile and recent):
            changed = [name for name in REVISION_FIELDS if previous.get(name) != row.get(name)]
            self.db.execute(
                "INSERT INTO article_revisions (article_id, seen, changed_fields, previous) VALUES (?, ?, ?, ?)",
                [article_id, seen_at, json.dumps(changed),
                 json.dumps({k: previous[k] for k in (*REVISION_FIELDS, *REVISION_CONTEXT)}, ensure_ascii=False)],
            )
            row["last_revised"] = seen_at
            row["revision_count"] = (previous.get("revision_count") or 0) + 1
        row["change_streak"] = streak
        if snapshot_id is not None:
            row["snapshot_id"] = snapshot_id
        assignments = ", ".join(f"{c} = :{c}" for c in row)
        self.db.execute(f"UPDATE articles SET {assignments} WHERE id = :article_id", {**row, "article_id": article_id})

    def _link_source(self, source_id: str, item_key: str, article_id: str, url: str, seen_at: str,
                     digest: str | None = None) -> None:
        self.db.conn.execute(
            """INSERT INTO article_sources (source_id, item_key, article_id, url, first_seen, last_seen, item_digest)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(source_id, item_key) DO UPDATE SET last_seen = excluded.last_seen, url = excluded.url,
                                                              item_digest = excluded.item_digest""",
            [source_id, item_key, article_id, url, seen_at, seen_at, digest],
        )

    # --- near-duplicate clusters -----------------------------------------------------------

    def _cluster(self, article_id: str, fp: Fingerprint | None, *, joining: bool) -> None:
        """After a revision: store the new fingerprint and, if `joining`, put the article in the
        cluster of its closest earlier near-duplicate (see :meth:`_closest`)."""
        self._drop_keys(article_id)
        if fp is None:
            self.db.conn.execute("DELETE FROM article_fingerprints WHERE article_id = ?", [article_id])
            return
        match = self._closest(article_id, fp) if joining else None
        if match is not None:
            self.db.conn.execute("UPDATE articles SET cluster_id = ?, cluster_similarity = ? WHERE id = ?",
                                 [match[0], match[1], article_id])
            representative = False
        elif joining:
            representative = True
        else:
            representative = not self.db.conn.execute(
                "SELECT cluster_id != id FROM articles WHERE id = ?", [article_id]).fetchone()[0]
        self._store_fingerprint(article_id, fp, representative=representative)

    def _drop_keys(self, article_id: str) -> None:
        """Remove an article's lookup keys, found from its stored fingerprint (they are its
        first values) through the table's key order: there is no index by article (m013)."""
        row = self.db.conn.execute("SELECT fingerprint FROM article_fingerprints WHERE article_id = ?",
                                   [article_id]).fetchone()
        if row is None:
            return
        try:
            keys = candidate_keys(Fingerprint.from_bytes(row[0]))
        except ValueError:  # unreadable (another version): its keys are not known, so read every row
            self.db.conn.execute("DELETE FROM fingerprint_keys WHERE article_id = ?", [article_id])
            return
        if keys:  # one statement, not one per key (see _store_fingerprint)
            self.db.conn.execute(f"DELETE FROM fingerprint_keys WHERE article_id = ? AND key IN ({', '.join(['?'] * len(keys))})",
                                 [article_id, *keys])

    def _closest(self, article_id: str, fp: Fingerprint) -> tuple[str, float] | None:
        """(cluster id, similarity) of the closest earlier near-duplicate, earliest published
        first on a tie; None if there is none. The one extra candidate allowed for is the
        article itself (a revision), which is left out."""
        keys = candidate_keys(fp)
        values = ", ".join("(?)" for _ in keys)
        # A key that many articles share is a common phrase, not evidence of a copy: skipping
        # such keys keeps the candidate set from growing with the archive. Postings are counted
        # only up to the limit, so a very common key costs no more than a rare one.
        rows = self.db.conn.execute(
            f"""WITH wanted(key) AS (VALUES {values}),
                usable AS (
                    SELECT key FROM wanted WHERE (
                        SELECT count(*) FROM (SELECT 1 FROM fingerprint_keys k WHERE k.key = wanted.key
                                              LIMIT ? + 1)) <= ?),
                nearest AS (
                    SELECT article_id FROM fingerprint_keys WHERE key IN (SELECT key FROM usable)
                    GROUP BY article_id ORDER BY count(*) DESC, article_id LIMIT ?)
                SELECT f.article_id, f.fingerprint FROM article_fingerprints f
                WHERE f.article_id IN (SELECT article_id FROM nearest) AND f.article_id != ? AND f.version = ?""",
            [*keys, MAX_KEY_POSTINGS, MAX_KEY_POSTINGS, MAX_CLUSTER_CANDIDATES + 1, article_id, FINGERPRINT_VERSION],
        ).fetchall()
        # The candidates are scored together, from their stored bytes (score_stored). Only a
        # cluster's representative has keys, and its cluster is itself (see
        # _store_fingerprint). The candidates are scored first and put in date order only when
        # several share the best score: most articles match nothing, and reading the dates
        # (a row lookup in the large articles table per candidate) is most of a lookup's cost.
        scored = list(zip(score_stored(fp, [blob for _, blob in rows]), (cid for cid, _ in rows), strict=True))
        best = max((s for s, _ in scored), default=0.0)
        if best < THRESHOLD:
            return None
        tied = [cid for s, cid in scored if s == best]
        if len(tied) > 1:
            marks = ", ".join("?" for _ in tied)
            tied = [cid for (cid,) in self.db.conn.execute(
                f"SELECT id FROM articles WHERE id IN ({marks}) ORDER BY sort_date IS NULL, sort_date, seq", tied)]
        return tied[0], round(best, 4)  # as cluster.decide reports it

    def _store_fingerprint(self, article_id: str, fp: Fingerprint, *, representative: bool) -> None:
        """Keep the fingerprint; only an article that stands for its cluster (the first member,
        or one alone) gets lookup keys, so copies cost O(1) each."""
        self.db.conn.execute(
            "INSERT INTO article_fingerprints (article_id, version, fingerprint) VALUES (?, ?, ?) "
            "ON CONFLICT(article_id) DO UPDATE SET version = excluded.version, fingerprint = excluded.fingerprint",
            [article_id, FINGERPRINT_VERSION, fp.to_bytes()])
        if representative and (keys := candidate_keys(fp)):
            # One statement for the 16 keys: executemany steps once per row, and the writer gives
            # up the GIL at every step, which in a poll means waiting for the event loop to hand
            # it back (16 waits per new article).
            self.db.conn.execute(
                f"INSERT OR IGNORE INTO fingerprint_keys (key, article_id) VALUES {', '.join(['(?, ?)'] * len(keys))}",
                [value for key in keys for value in (key, article_id)])

    # --- backfill cursor ------------------------------------------------------------------

    def backfill_cursor(self, source_id: str) -> tuple[str | None, int] | None:
        """(next list page URL or None when done, pages done), or None if no walk was started."""
        row = self.db.execute("SELECT next_url, pages_done FROM backfill_state WHERE source_id = ?",
                              [source_id]).fetchone()
        return (row[0], int(row[1])) if row else None

    def set_backfill_cursor(self, source_id: str, next_url: str | None, pages_done: int) -> None:
        now = iso_utc(datetime.now(timezone.utc))
        with self.write_transaction():
            self.db.execute(
                """INSERT INTO backfill_state (source_id, next_url, pages_done, started, updated)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(source_id) DO UPDATE SET next_url = excluded.next_url,
                       pages_done = excluded.pages_done, updated = excluded.updated""",
                [source_id, next_url, pages_done, now, now],
            )

    def reset_backfill_cursor(self, source_id: str) -> None:
        with self.write_transaction():
            self.db.execute("DELETE FROM backfill_state WHERE source_id = ?", [source_id])

    # --- raw snapshots --------------------------------------------------------------------

    def _store_snapshot(self, source_id: str, response: FetchResult, context: Any, seen_at: str, *,
                        packed: bytes | None = None) -> int:
        """Keep the response's bytes (``packed`` if a worker compressed them already, else the
        server's gzip if the fetcher kept it, else zlib), content-addressed per URL: the same
        bytes are stored once. gzip or zlib is told by the stream's header (see snapshot_bytes)."""
        digest = hashlib.sha256(response.content).hexdigest()
        existing = self.db.execute(
            "SELECT id FROM snapshots WHERE sha256 = ? AND final_url = ?", [digest, response.final_url]
        ).fetchone()
        if existing:
            return int(existing[0])
        if packed is None:
            packed = response.gzip if response.gzip is not None else zlib.compress(response.content, 6)
        cursor = self.db.execute(
            """INSERT INTO snapshots (source_id, url, final_url, status, headers, fetched, sha256, size,
                                      compression, content, context)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [source_id, response.url, response.final_url, response.status,
             json.dumps(dict(response.headers), ensure_ascii=False), seen_at, digest, len(response.content),
             "gzip" if packed.startswith(GZIP_MAGIC) else "zlib", packed,
             json.dumps(context, ensure_ascii=False) if context else None],
        )
        return int(cursor.lastrowid)

    def _link_snapshot(self, article_id: str, snapshot_id: int, seen_at: str) -> None:
        self.db.execute(
            "INSERT INTO article_snapshots (article_id, snapshot_id, seen) VALUES (?, ?, ?) "
            "ON CONFLICT(article_id, snapshot_id) DO UPDATE SET seen = excluded.seen",
            [article_id, snapshot_id, seen_at],
        )

    def _prune_snapshots(self, article_ids: Sequence[str], keep: int) -> None:
        """Keep each article's latest `keep` snapshots; drop snapshots nothing links to any more.

        Only the snapshots unlinked here are checked: a scan of the whole table per source
        would make every save cost as much as the archive is large."""
        dropped: set[int] = set()
        for article_id in set(article_ids):
            rows = self.db.execute(
                """SELECT snapshot_id FROM article_snapshots WHERE article_id = ?
                   ORDER BY seen DESC, snapshot_id DESC LIMIT -1 OFFSET ?""",
                [article_id, keep],
            ).fetchall()
            if rows:
                old = [r[0] for r in rows]
                dropped.update(old)
                self.db.conn.executemany("DELETE FROM article_snapshots WHERE article_id = ? AND snapshot_id = ?",
                                         [(article_id, sid) for sid in old])
        for snapshot_id in dropped:
            self.db.execute("DELETE FROM snapshots WHERE id = ? AND NOT EXISTS "
                            "(SELECT 1 FROM article_snapshots WHERE snapshot_id = ?)", [snapshot_id, snapshot_id])

    def snapshot(self, snapshot_id: int) -> Snapshot | None:
        row = self.db.execute(
            "SELECT id, source_id, url, final_url, status, headers, fetched, content, context FROM snapshots "
            "WHERE id = ?",
            [snapshot_id],
        ).fetchone()
        if row is None:
            return None
        sid, source_id, url, final_url, status, headers, fetched, content, context = row
        return Snapshot(
            id=sid, source_id=source_id, url=url, final_url=final_url, status=status,
            headers=json.loads(headers or "{}"), fetched=fetched, content=snapshot_bytes(content),
            context=json.loads(context) if context else None,
        )

    # --- reading --------------------------------------------------------------------------

    def count(self, table: str = "articles") -> int:
        return int(self.db.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0])

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Iterator[dict[str, Any]]:
        cursor = self.db.execute(sql, params)
        names = [d[0] for d in cursor.description]
        for values in cursor:
            yield dict(zip(names, values, strict=True))

    def source_rows(self) -> list[dict[str, Any]]:
        """The `ipnews sources` table: config mirror, state and article counts."""
        return list(
            self.rows(
                """
                SELECT s.*, (SELECT count(*) FROM article_sources a WHERE a.source_id = s.id) AS articles
                FROM sources s WHERE s.in_config = 1 ORDER BY s.office, s.id
                """
            )
        )


class Checkpointer:
    """Copies committed WAL frames into the database file on a thread and connection of its own.

    SQLite's automatic checkpoint runs inside the COMMIT of the connection that crosses
    1,000 frames: the writer stops, copies pages and waits for two fsyncs. A poll's group
    commits each touch thousands of pages (the FTS index, and b-trees keyed by hashes, whose
    inserts land all over the file), so nearly every commit paid for a checkpoint (a warm
    poll: about 100 commits, 118 fdatasync calls; issue #7). Here the writer only
    wakes this thread after each commit, and a PASSIVE checkpoint copies what is committed
    beside it. SQLite rewinds the WAL only at a write that begins after a pass has copied
    everything, which a writer committing back to back rarely lets happen: so once the WAL
    is ``wal_limit`` frames long (or the thread is more than two commits behind), the writer
    waits after its commit for the pass that covers it, and its next transaction starts the
    WAL again from the beginning. Closing gives the write connection its automatic
    checkpoint back.
    """

    def __init__(self, archive: Archive, *, wal_limit: int = WAL_LIMIT_FRAMES):
        self.archive = archive
        self.wal_limit = wal_limit
        self._cond = threading.Condition()
        self._requested = 0  # commits announced
        self._done = 0  # commits announced before the last finished pass began
        self._frames = 0  # the WAL's length at the last pass
        self._stopping = False
        self._conn = sqlite3.connect(str(archive.path), timeout=30, isolation_level=None, check_same_thread=False)
        self._autocheckpoint = archive.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        archive.db.execute("PRAGMA wal_autocheckpoint = 0")
        archive.on_commit = self.committed
        self._thread = threading.Thread(target=self._run, name="ipnews-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """After a commit (on the writer's thread): wake the checkpointer; once the WAL is
        past the limit, wait for the pass that copies this commit."""
        with self._cond:
            self._requested += 1
            wanted = self._requested
            self._cond.notify_all()
            # The length known is the last pass's; commits made since are not in it, so a pass
            # more than two commits behind is waited for as well.
            while ((self._frames > self.wal_limit or wanted - self._done > 2) and self._done < wanted
                   and self._thread.is_alive()):
                self._cond.wait(timeout=1)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._done == self._requested and not self._stopping:
                    self._cond.wait()
                if self._done == self._requested:
                    return
                upto = self._requested
            try:
                _, frames, _ = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as e:
                # Nothing is lost: the frames stay in the WAL for the next pass, or for the
                # checkpoint SQLite makes when the archive is closed. A cause that matters (a
                # full disk) fails the writer's own next commit too, and is reported there.
                log.debug("%s: background checkpoint failed: %s", self.archive.path, e)
                frames = 0
            with self._cond:
                self._done, self._frames = upto, frames
                self._cond.notify_all()

    def close(self) -> None:
        """Let the last pass finish, then give the write connection its automatic checkpoint back."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()
        self._conn.close()
        if self.archive.on_commit == self.committed:
            self.archive.on_commit = None
        self.archive.db.execute(f"PRAGMA wal_autocheckpoint = {int(self._autocheckpoint)}")


def article_history(archive: Archive, article_id: str) -> dict[str, Any] | None:
    """An article with its sources, revisions, snapshots and cluster: what `ipnews show` prints.

    ``article_id`` may be a unique prefix of the id.
    """
    rows = list(archive.rows("SELECT * FROM articles WHERE id = ? OR id LIKE ? LIMIT 2",
                             [article_id, article_id.replace("%", "").replace("_", "") + "%"]))
    exact = [r for r in rows if r["id"] == article_id]
    if exact:
        rows = exact
    if len(rows) != 1:
        return None
    article = rows[0]
    article["topics"] = json.loads(article["topics"] or "[]")
    aid = article["id"]
    return {
        "article": article,
        "sources": list(archive.rows(
            "SELECT s.source_id, src.office, s.url, s.first_seen, s.last_seen FROM article_sources s "
            "LEFT JOIN sources src ON src.id = s.source_id WHERE s.article_id = ? ORDER BY s.first_seen", [aid])),
        "revisions": [
            {**r, "changed_fields": json.loads(r["changed_fields"]), "previous": json.loads(r["previous"])}
            for r in archive.rows("SELECT id, seen, changed_fields, previous FROM article_revisions "
                                  "WHERE article_id = ? ORDER BY id", [aid])
        ],
        "snapshots": list(archive.rows(
            "SELECT sn.id, sn.url, sn.final_url, sn.status, sn.fetched, sn.size, sn.sha256 FROM article_snapshots a "
            "JOIN snapshots sn ON sn.id = a.snapshot_id WHERE a.article_id = ? ORDER BY a.seen", [aid])),
        "cluster": list(archive.rows(
            "SELECT id, office, source_id, title, published, cluster_similarity FROM articles "
            "WHERE cluster_id = ? AND id != ? ORDER BY sort_date", [article["cluster_id"] or aid, aid])),
    }
