"""Search and export at archive scale (100k and 1M articles).

``build`` writes synthetic multilingual articles straight into an archive
created by ``Archive(path)`` — the same schema, indexes and FTS triggers
(so the index holds CJK bigrams exactly as a real poll leaves it) — in
transactions of 20,000 rows. Bodies are 1–5 KB of text; ``body_html`` is left
empty to keep the 1M-article file near 6 GB (search never reads it). Built
archives are kept in benchmarks/out/ and reused.

``measure`` times ``search_articles`` (p50/p95 over many parameter variants,
after a warm-up) for: a ranked top-20 with an office and a one-year date
filter; a newest-first top-20; a two-character CJK query; a common English
word; the latest 20 without a query (``iter_articles``); and a two-character CJK
query with the office and one-year filter (the target's other half).

``results`` prints, one JSON line per query ``measure`` times, the ids and ranks it returns:
the same lines from two versions of the search code mean the same results in the same order
(``diff`` the two outputs).

``export`` (run in a fresh process) streams every article as JSON Lines to
/dev/null with ``export_articles`` and reports rows/s and the peak RSS over
the RSS the process had before the export started.

    python -m benchmarks.search_bench build --rows 1000000
    python -m benchmarks.search_bench measure benchmarks/out/search-1000000-seed5.db
    python -m benchmarks.search_bench results benchmarks/out/search-1000000-seed5.db > results.jsonl
    python -m benchmarks.search_bench export benchmarks/out/search-1000000-seed5.db
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .corpus import OFFICES, TOPICS
from .fts_limit import LANGUAGE_MIX
from .ipnews_run import peak_rss_bytes
from .text import TextPool, body_size

BATCH = 20_000
SOURCES_PER_OFFICE = 8
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
SPAN_SECONDS = int((datetime(2026, 6, 30, tzinfo=UTC) - EPOCH).total_seconds())
COMMON_WORDS = ("patent", "trademark", "application", "office", "design", "examination", "fees", "court")
CJK_QUERIES = ("专利", "商标", "审查", "特許", "商標", "특허", "상표", "出願")


def archive_path(out_dir: Path, rows: int, seed: int) -> Path:
    return Path(out_dir) / f"search-{rows}-seed{seed}.db"


def _offices() -> list[tuple[str, str]]:
    return list(OFFICES)


def build(path: Path, rows: int, seed: int = 5, *, progress: bool = True) -> dict:
    """Fill a new archive with ``rows`` synthetic articles; returns timings and sizes."""
    from aggregator.search import INDEX_VERSION
    from aggregator.store import Archive

    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    pool = TextPool(seed)
    rng = random.Random(seed)
    languages, weights = zip(*LANGUAGE_MIX, strict=True)
    started = time.perf_counter()
    with Archive(path) as archive:
        db = archive.db.conn
        sources = []
        with archive.write_transaction():
            for office, office_language in _offices():
                for k in range(SOURCES_PER_OFFICE):
                    sid = f"{office.lower()}-{k}"
                    sources.append((sid, office, office_language))
                    db.execute("INSERT INTO sources (id, office, name, kind, url, language) VALUES (?, ?, ?, ?, ?, ?)",
                               [sid, office, f"{office} {k}", "feed", f"https://{office.lower()}.example/{k}.xml",
                                office_language])
        done = 0
        while done < rows:
            batch = []
            links = []
            for n in range(done, min(rows, done + BATCH)):
                sid, office, office_language = sources[rng.randrange(len(sources))]
                language = office_language if rng.random() < 0.6 else rng.choices(languages, weights)[0]
                moment = EPOCH + timedelta(seconds=rng.randrange(SPAN_SECONDS))
                stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
                url = f"https://{office.lower()}.example/news/{moment.year}/{n}.html"
                aid = hashlib.sha256(f"{sid}\n{url}".encode()).hexdigest()[:20]
                body = "\n\n".join(pool.paragraphs(rng, language, body_size(rng)))
                topics = json.dumps(rng.sample(TOPICS[language], k=rng.randint(0, 2)), ensure_ascii=False)
                batch.append((aid, sid, office, url, url.replace("https://", "https://"), None,
                              pool.title(rng, language), stamp, stamp, topics, language,
                              pool.summary(rng, language), body, None, aid[:16] * 2, "feed", "1",
                              stamp, stamp, aid))
                links.append((sid, url, aid, url, stamp, stamp))
            # In date order within a batch, as an archive mostly grows: the FTS rowid is date-ordered
            # (docs/search.md), and FTS5 appends rising rowids without flushing at each row.
            batch.sort(key=lambda row: row[7])
            with archive.write_transaction():
                db.executemany(
                    """INSERT INTO articles (id, source_id, office, url, url_canonical, guid, title, published,
                           sort_date, topics, language, summary, body, body_html, content_hash, extraction,
                           parser_version, first_seen, last_seen, cluster_id)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    batch,
                )
                db.executemany(
                    """INSERT INTO article_sources (source_id, item_key, article_id, url, first_seen, last_seen)
                       VALUES (?, ?, ?, ?, ?, ?)""",
                    links,
                )
            done += len(batch)
            if progress:
                rate = done / (time.perf_counter() - started)
                print(f"  {done:>9,} articles, {rate:,.0f}/s", file=sys.stderr, flush=True)
        with archive.write_transaction():
            db.execute("INSERT INTO archive_meta(key, value) VALUES ('bench_rows', ?) "
                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value", [str(rows)])
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    seconds = time.perf_counter() - started
    size = Path(path).stat().st_size
    return {"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds, "bytes": size,
            "bytes_per_article": size / rows, "index_version": INDEX_VERSION}


def is_built(path: Path, rows: int) -> bool:
    import sqlite3

    if not Path(path).exists():
        return False
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        row = db.execute("SELECT value FROM archive_meta WHERE key = 'bench_rows'").fetchone()
        db.close()
    except sqlite3.DatabaseError:
        return False
    return bool(row) and row[0] == str(rows)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _timed(calls, warmup: int = 2) -> dict:
    """Run each call once (after ``warmup`` of them); p50/p95/max in ms and the mean result count.

    Also the CPU time of this thread (``cpu_p50_ms``, ``cpu_p95_ms``): on a machine whose cores
    other work shares, the wall-clock tail is mostly the scheduler's, and the CPU time is what
    two versions of the code can be compared by."""
    for call in calls[:warmup]:
        call()
    times, cpu, counts = [], [], []
    for call in calls:
        c0, t0 = time.thread_time(), time.perf_counter()
        result = call()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
        counts.append(len(result))
    return {"n": len(times), "p50_ms": _percentile(times, 0.5), "p95_ms": _percentile(times, 0.95),
            "max_ms": max(times), "mean_ms": statistics.fmean(times), "mean_results": statistics.fmean(counts),
            "cpu_p50_ms": _percentile(cpu, 0.5), "cpu_p95_ms": _percentile(cpu, 0.95)}


def _queries(db, samples: int, seed: int) -> list[tuple[str, list]]:
    """(kind, one call per parameter variant) for each kind of query ``measure`` times, the
    variants drawn from ``seed`` in a fixed order (so every run and every version of the code
    times, and ``results`` lists, the same queries)."""
    from aggregator.export import iter_articles
    from aggregator.search import SearchFilters, search_articles

    rng = random.Random(seed)
    offices = [o for o, _ in _offices()]

    def filtered(words):
        def make():
            word, office, year = rng.choice(words), rng.choice(offices), rng.randint(2001, 2025)
            filters = SearchFilters(offices=(office,), since=f"{year}-01-01", until=f"{year}-12-31")
            return lambda: search_articles(db, word, filters=filters, sort="rank", limit=20)
        return make

    def newest(words):
        def make():
            word = rng.choice(words)
            return lambda: search_articles(db, word, sort="date", limit=20)
        return make

    def cjk():
        word = rng.choice(CJK_QUERIES)
        return lambda: search_articles(db, word, sort="rank", limit=20)

    def common():
        word = rng.choice(("patent", "trademark", "office"))
        return lambda: search_articles(db, word, sort="rank", limit=20)

    def latest():
        return lambda: list(iter_articles(db, limit=20))

    return [(name, [make() for _ in range(samples)])
            for name, make in (("ranked_office_date", filtered(COMMON_WORDS)), ("newest_first", newest(COMMON_WORDS)),
                               ("cjk_2char", cjk), ("common_word", common), ("latest_no_query", latest),
                               ("cjk_office_date", filtered(CJK_QUERIES)), ("newest_first_cjk", newest(CJK_QUERIES)))]


def read_through(path: Path) -> dict:
    """Read the archive file once, so the timings are of a cached archive (as on a server whose
    archive fits in memory) and not of whatever the polls before them left in the page cache.
    A cold cache made the 1M ranked figures 4-10x worse in one run and not in the next."""
    started = time.perf_counter()
    size = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
    seconds = time.perf_counter() - started
    return {"bytes": size, "seconds": seconds, "mb_per_second": size / 1e6 / max(seconds, 1e-9)}


def measure(path: Path, samples: int = 24, seed: int = 3, *, warm_cache: bool = False) -> dict:
    from aggregator.store import Archive

    warmed = read_through(path) if warm_cache else None
    with Archive(path, readonly=True) as archive:
        db = archive.db
        rows = archive.count("articles")
        results = {"rows": rows, "load_average_before": os.getloadavg()[0]}  # timings are noisy on a loaded host
        if warmed is not None:
            results["read_through"] = warmed
        for name, calls in _queries(db, samples, seed):
            results[name] = _timed(calls)
        # how many articles the words match: the size of the work behind each query
        results["matches"] = {
            word: db.execute("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?",
                             [f'"{word}"']).fetchone()[0]
            for word in ("patent", "office")
        }
    results["load_average_after"] = os.getloadavg()[0]
    results["bytes"] = Path(path).stat().st_size
    results["bytes_per_article"] = results["bytes"] / max(1, rows)
    return results


def query_results(path: Path, samples: int = 24, seed: int = 3) -> Iterator[dict]:
    """What each query ``measure`` times returns: its kind, its number, the ids and ranks in
    order. Two versions of the search code that print the same lines give the same results."""
    from aggregator.store import Archive

    with Archive(path, readonly=True) as archive:
        for name, calls in _queries(archive.db, samples, seed):
            for number, call in enumerate(calls):
                rows = call()
                yield {"query": name, "number": number, "ids": [row["id"] for row in rows],
                       "ranks": [row.get("rank") for row in rows]}


def export(path: Path) -> dict:
    from aggregator.export import export_articles
    from aggregator.store import Archive

    with Archive(path, readonly=True) as archive:
        archive.count("articles")
        before = peak_rss_bytes()
        started = time.perf_counter()
        with open(os.devnull, "w", encoding="utf-8") as out:
            rows = export_articles(archive, out, fmt="jsonl")
        seconds = time.perf_counter() - started
    peak = peak_rss_bytes()
    return {"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds, "rss_before_bytes": before,
            "peak_rss_bytes": peak, "growth_bytes": peak - before}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--rows", type=int, required=True)
    b.add_argument("--seed", type=int, default=5)
    b.add_argument("--out", default=str(Path(__file__).parent / "out"))
    b.add_argument("--force", action="store_true")
    m = sub.add_parser("measure")
    m.add_argument("path")
    m.add_argument("--samples", type=int, default=24)
    m.add_argument("--warm-cache", action="store_true", help="read the file once first (see read_through)")
    r = sub.add_parser("results")
    r.add_argument("path")
    r.add_argument("--samples", type=int, default=24)
    e = sub.add_parser("export")
    e.add_argument("path")
    args = parser.parse_args()
    if args.command == "build":
        import fcntl

        path = archive_path(Path(args.out), args.rows, args.seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(str(path) + ".lock", "w")  # noqa: SIM115 - held until the process ends
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run building the same archive: wait for it
        if is_built(path, args.rows) and not args.force:
            result = {"rows": args.rows, "cached": True, "bytes": path.stat().st_size,
                      "bytes_per_article": path.stat().st_size / args.rows}
        else:
            result = build(path, args.rows, args.seed)
        result["path"] = str(path)
    elif args.command == "measure":
        result = measure(Path(args.path), args.samples, warm_cache=args.warm_cache)
    elif args.command == "results":
        for line in query_results(Path(args.path), args.samples):
            print(json.dumps(line, ensure_ascii=False))
        return
    else:
        result = export(Path(args.path))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
