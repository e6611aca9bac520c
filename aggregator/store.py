"""The archive: one SQLite file, written through sqlite-utils.

WAL mode lets Datasette read while cron writes. The schema is created and
upgraded by named migrations. Every source's results go in one transaction
(articles, its fetch row, its fetch state), so a crash never leaves half a
batch. Upserts, never INSERT OR REPLACE: replacing a row would delete it
first and churn the full-text index.

The FTS table `articles_fts` is contentless (the text lives once, in
`articles`) and is kept in sync by triggers that call `ipnews_fts_text()`,
a deterministic SQL function registered on every connection we open; see
search.py for why the indexed text is not the stored text.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from .exceptions import StorageError
from .normalize import iso_utc
from .search import FTS_COLUMNS, INDEX_VERSION, index_text
from .types import Article, Source
from .urls import canonical_url

migrations = Migrations("ipnews")

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


def _create_fts(db: sqlite_utils.Database) -> None:
    columns = ", ".join(FTS_COLUMNS)
    db.execute(
        f"CREATE VIRTUAL TABLE articles_fts USING fts5({columns}, content='', "
        "tokenize='porter unicode61 remove_diacritics 2')"
    )
    values_new = ", ".join(f"ipnews_fts_text(new.{c})" for c in FTS_COLUMNS)
    values_old = ", ".join(f"ipnews_fts_text(old.{c})" for c in FTS_COLUMNS)
    db.executescript(
        f"""
        CREATE TRIGGER articles_fts_ai AFTER INSERT ON articles BEGIN
            INSERT INTO articles_fts(rowid, {columns}) VALUES (new.seq, {values_new});
        END;
        CREATE TRIGGER articles_fts_ad AFTER DELETE ON articles BEGIN
            INSERT INTO articles_fts(articles_fts, rowid, {columns}) VALUES ('delete', old.seq, {values_old});
        END;
        CREATE TRIGGER articles_fts_au AFTER UPDATE OF {columns} ON articles BEGIN
            INSERT INTO articles_fts(articles_fts, rowid, {columns}) VALUES ('delete', old.seq, {values_old});
            INSERT INTO articles_fts(rowid, {columns}) VALUES (new.seq, {values_new});
        END;
        """
    )
    db.execute(
        "INSERT INTO archive_meta(key, value) VALUES ('index_version', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [INDEX_VERSION],
    )


def _fts_text(value: Any) -> str:
    return index_text(value) if isinstance(value, str) else ""


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
        try:
            if readonly:
                if not self.path.exists():
                    raise StorageError(f"{self.path}: no archive here yet (run `ipnews fetch` first)")
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30, isolation_level=None)
            else:
                if self.path.parent and not self.path.parent.exists():
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
            conn.create_function("ipnews_fts_text", 1, _fts_text, deterministic=True)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA busy_timeout = 30000")
            if not readonly:
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA synchronous = NORMAL")
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
        timeout instead of failing on a read-to-write lock upgrade."""
        self.db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.db.conn.in_transaction:
                self.db.conn.rollback()
            raise
        else:
            self.db.conn.commit()

    # --- index maintenance ----------------------------------------------------------------

    def _check_index_version(self) -> None:
        row = self.db.execute("SELECT value FROM archive_meta WHERE key = 'index_version'").fetchone()
        if row and row[0] == INDEX_VERSION:
            return
        self.rebuild_index()

    def rebuild_index(self) -> None:
        """Re-index every article (after a change of index_text)."""
        columns = ", ".join(FTS_COLUMNS)
        values = ", ".join(f"ipnews_fts_text({c})" for c in FTS_COLUMNS)
        with self.write_transaction():
            self.db.execute("INSERT INTO articles_fts(articles_fts) VALUES ('delete-all')")
            self.db.execute(f"INSERT INTO articles_fts(rowid, {columns}) SELECT seq, {values} FROM articles")
            self.db.execute(
                "INSERT INTO archive_meta(key, value) VALUES ('index_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [INDEX_VERSION],
            )

    # --- sources --------------------------------------------------------------------------

    def sync_sources(self, sources: Iterable[Source]) -> None:
        """Mirror the config into `sources`, keeping each source's fetch state."""
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
                        url = excluded.url
                    """,
                    row,
                )
            placeholders = ", ".join("?" for _ in ids) or "''"
            self.db.execute(f"UPDATE sources SET in_config = 0 WHERE id NOT IN ({placeholders})", ids)

    def source_state(self, source_id: str) -> SourceState:
        row = self.db.execute(
            """SELECT etag, last_modified, last_attempt, last_success, last_status, last_error,
                      consecutive_failures, next_due, retry_after, url FROM sources WHERE id = ?""",
            [source_id],
        ).fetchone()
        if row is None:
            return SourceState(source_id)
        return SourceState(source_id, *row)

    def source_states(self) -> dict[str, SourceState]:
        rows = self.db.execute(
            """SELECT id, etag, last_modified, last_attempt, last_success, last_status, last_error,
                      consecutive_failures, next_due, retry_after, url FROM sources"""
        ).fetchall()
        return {row[0]: SourceState(*row) for row in rows}

    def known_item_keys(self, source_id: str) -> set[str]:
        """Item keys (GUIDs or canonical URLs) already archived for a source."""
        rows = self.db.execute("SELECT item_key FROM article_sources WHERE source_id = ?", [source_id])
        return {r[0] for r in rows}

    # --- writing a source's results -------------------------------------------------------

    def save_source_results(
        self,
        source: Source,
        articles: Sequence[Article],
        record: FetchRecord,
        state: SourceState,
        *,
        now: datetime | None = None,
    ) -> SaveResult:
        """Store a poll's articles, its fetch row and the source's new state in one transaction."""
        seen_at = iso_utc(now or datetime.now(timezone.utc))
        new = changed = 0
        try:
            with self.write_transaction():
                fetch_id = self._insert_fetch(record)
                for article in articles:
                    outcome = self._save_article(source, article, fetch_id, seen_at)
                    new += outcome == "new"
                    changed += outcome == "changed"
                self.db.execute(
                    "UPDATE fetches SET items_seen = ?, items_new = ?, items_changed = ? WHERE id = ?",
                    [len(articles), new, changed, fetch_id],
                )
                self._write_state(state)
        except sqlite3.DatabaseError as e:
            raise StorageError(f"{self.path}: cannot write {source.id}'s results: {e}") from e
        return SaveResult(seen=len(articles), new=new, changed=changed)

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
                      last_status = ?, last_error = ?, consecutive_failures = ?, next_due = ?, retry_after = ?
               WHERE id = ?""",
            [state.etag, state.last_modified, state.last_attempt, state.last_success, state.last_status,
             state.last_error, state.consecutive_failures, state.next_due, state.retry_after, state.source_id],
        )

    def _save_article(self, source: Source, article: Article, fetch_id: int, seen_at: str) -> str:
        """Insert, update or just mark seen one article; returns "new", "changed" or "same"."""
        url_key = canonical_url(article.url)
        item_key = article.guid or url_key
        row = self.db.execute(
            "SELECT article_id FROM article_sources WHERE source_id = ? AND item_key = ?",
            [source.id, item_key],
        ).fetchone()
        article_id = row[0] if row else None
        if article_id is None:
            # Another source may have archived the same page already: one article, two sources.
            other = self.db.execute(
                "SELECT id FROM articles WHERE url_canonical = ? AND source_id != ? ORDER BY seq LIMIT 1",
                [url_key, source.id],
            ).fetchone()
            article_id = other[0] if other else None
        if article_id is None:
            # A leftover article with this id (e.g. its source link was lost) is reused, not duplicated.
            exists = self.db.execute("SELECT 1 FROM articles WHERE id = ?", [article.id]).fetchone()
            article_id = article.id
            if not exists:
                self._insert_article(article, url_key, fetch_id, seen_at)
                self._link_source(source.id, item_key, article_id, article.url, seen_at)
                return "new"
        self._link_source(source.id, item_key, article_id, article.url, seen_at)
        current = self.db.execute(
            "SELECT source_id, content_hash, extraction FROM articles WHERE id = ?", [article_id]
        ).fetchone()
        if current is None:  # pragma: no cover - guarded by foreign keys
            return "same"
        home_source, stored_hash, stored_extraction = current
        takes_over = home_source != source.id and stored_extraction == "feed" and article.extraction != "feed"
        if (home_source != source.id and not takes_over) or stored_hash == article.content_hash:
            self.db.execute("UPDATE articles SET last_seen = ? WHERE id = ?", [seen_at, article_id])
            return "same"
        # The article's own page is a better record than a feed's summary of it: a page source
        # that extracted it takes the article over; otherwise only its first source revises it.
        self._revise_article(article_id, article, url_key, fetch_id, seen_at)
        return "changed"

    def _article_row(self, article: Article, url_key: str, fetch_id: int, seen_at: str) -> dict[str, Any]:
        row = {name: getattr(article, name, None) for name in ARTICLE_COLUMNS if hasattr(article, name)}
        row["url_canonical"] = url_key
        row["topics"] = json.dumps(list(article.topics), ensure_ascii=False)
        row["sort_date"] = article.published or article.site_published or article.updated
        row["fetch_id"] = fetch_id
        row["first_seen"] = seen_at
        row["last_seen"] = seen_at
        return row

    def _insert_article(self, article: Article, url_key: str, fetch_id: int, seen_at: str) -> None:
        row = self._article_row(article, url_key, fetch_id, seen_at)
        columns = ", ".join(row)
        params = ", ".join(f":{c}" for c in row)
        self.db.execute(f"INSERT INTO articles ({columns}) VALUES ({params})", row)

    def _revise_article(self, article_id: str, article: Article, url_key: str, fetch_id: int, seen_at: str) -> None:
        old = self.db.execute("SELECT * FROM articles WHERE id = ?", [article_id])
        names = [d[0] for d in old.description]
        previous = dict(zip(names, old.fetchone(), strict=True))
        row = self._article_row(article, url_key, fetch_id, seen_at)
        for keep in ("id", "first_seen"):
            row.pop(keep)
        compared = ("title", "published", "site_published", "source_org", "topics", "language", "summary", "body")
        changed = [name for name in compared if previous.get(name) != row.get(name)]
        self.db.execute(
            "INSERT INTO article_revisions (article_id, seen, changed_fields, previous) VALUES (?, ?, ?, ?)",
            [article_id, seen_at, json.dumps(changed),
             json.dumps({k: previous[k] for k in (*compared, "body_html", "content_hash", "source_id", "extraction", "last_seen")},
                        ensure_ascii=False)],
        )
        assignments = ", ".join(f"{c} = :{c}" for c in row)
        self.db.execute(f"UPDATE articles SET {assignments} WHERE id = :article_id", {**row, "article_id": article_id})

    def _link_source(self, source_id: str, item_key: str, article_id: str, url: str, seen_at: str) -> None:
        self.db.execute(
            """INSERT INTO article_sources (source_id, item_key, article_id, url, first_seen, last_seen)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(source_id, item_key) DO UPDATE SET last_seen = excluded.last_seen, url = excluded.url""",
            [source_id, item_key, article_id, url, seen_at, seen_at],
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
