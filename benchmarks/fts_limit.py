"""The raw FTS5 insert rate of this machine: the ceiling ingest is compared with.

A plain table plus an FTS5 table (unicode61 tokenizer), rows of about
3.4 KB of multilingual article text, inserted with executemany in one
transaction — no Python per row beyond the driver. Measured with the
tokenizer ipnews uses too ("porter unicode61 remove_diacritics 2"), and
with ipnews's CJK bigram rewriting (``index_text``) applied in Python
before the insert, so the cost of each layer is visible.

    python -m benchmarks.fts_limit --rows 20000
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from .text import LANGUAGES, TextPool

LANGUAGE_MIX = (("en", 50), ("de", 8), ("fr", 8), ("es", 6), ("zh", 14), ("ja", 8), ("ko", 6))


def make_rows(count: int, seed: int = 11, target_bytes: int = 3400) -> list[tuple[str, str, str]]:
    """(title, body, language) rows averaging ``target_bytes`` of UTF-8 text."""
    pool = TextPool(seed)
    rng = random.Random(seed)
    languages, weights = zip(*LANGUAGE_MIX, strict=True)
    assert set(languages) <= set(LANGUAGES)
    rows = []
    for _ in range(count):
        language = rng.choices(languages, weights)[0]
        # paragraphs() overshoots its target by about 9 %: aim a little lower to average target_bytes
        size = int(rng.triangular(target_bytes * 0.4, target_bytes * 1.6) * 0.92)
        rows.append((pool.title(rng, language), "\n\n".join(pool.paragraphs(rng, language, size)), language))
    return rows


def insert_rate(rows: list[tuple[str, str, str]], tokenizer: str, *, bigrams: bool = False,
                directory: str | None = None) -> dict:
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        path = Path(tmp) / "fts.db"
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, body TEXT, language TEXT)")
        db.execute(f"CREATE VIRTUAL TABLE docs_fts USING fts5(title, body, content='', tokenize='{tokenizer}')")
        index = None
        if bigrams:
            from aggregator.search import index_text as index
        started = time.perf_counter()
        db.execute("BEGIN")
        db.executemany("INSERT INTO docs (id, title, body, language) VALUES (?, ?, ?, ?)",
                       ((i, *row) for i, row in enumerate(rows, 1)))
        if index is None:
            db.executemany("INSERT INTO docs_fts (rowid, title, body) VALUES (?, ?, ?)",
                           ((i, t, b) for i, (t, b, _) in enumerate(rows, 1)))
        else:
            db.executemany("INSERT INTO docs_fts (rowid, title, body) VALUES (?, ?, ?)",
                           ((i, index(t, lang), index(b, lang)) for i, (t, b, lang) in enumerate(rows, 1)))
        db.execute("COMMIT")
        seconds = time.perf_counter() - started
        db.close()
    return {"tokenizer": tokenizer, "bigrams": bigrams, "rows": len(rows), "seconds": seconds,
            "rows_per_second": len(rows) / seconds,
            "mean_row_bytes": sum(len(t.encode()) + len(b.encode()) for t, b, _ in rows) / len(rows)}


def measure(rows_count: int = 20000, repeat: int = 3, directory: str | None = None) -> dict:
    rows = make_rows(rows_count)
    results = {}
    for name, tokenizer, bigrams in (
        ("unicode61", "unicode61", False),
        ("porter_unicode61", "porter unicode61 remove_diacritics 2", False),
        ("porter_unicode61_bigrams", "porter unicode61 remove_diacritics 2", True),
    ):
        runs = [insert_rate(rows, tokenizer, bigrams=bigrams, directory=directory) for _ in range(repeat)]
        rates = sorted(r["rows_per_second"] for r in runs)
        results[name] = {**runs[0], "rows_per_second": rates[len(rates) // 2], "all_rates": rates}
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.rows, args.repeat)))


if __name__ == "__main__":
    main()
