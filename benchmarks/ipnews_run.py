"""One ipnews poll, in a process of its own (so its peak RSS is its own), printed as JSON.

    python -m benchmarks.ipnews_run --config feeds.yaml --db archive.db [--profile out.html]

Polls every source of the config now (``run_fetch(include_not_due=True)``, as
``ipnews fetch --all`` does) with the config's defaults: per_host 2,
concurrency 16. Reports the wall time of the poll, the outcome counts, what
the archive holds afterwards, and the peak RSS of this process (and of any
worker processes ipnews may start).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path


def peak_rss_bytes() -> int:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that over fork and exec, so a
    child started by a big parent would report the parent's peak."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def archive_counts(db) -> dict:
    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    return {
        "articles": one("SELECT count(*) FROM articles"),
        "article_sources": one("SELECT count(*) FROM article_sources"),
        "revisions": one("SELECT count(*) FROM article_revisions"),
        "snapshots": one("SELECT count(*) FROM snapshots"),
        "fts_rows": one("SELECT count(*) FROM articles_fts"),
    }


def db_bytes(path: Path) -> int:
    return sum(Path(str(path) + s).stat().st_size for s in ("", "-wal") if Path(str(path) + s).exists())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--profile", help="write a pyinstrument profile here (.html or .txt)")
    parser.add_argument("--interval", type=float, default=0.001, help="pyinstrument sampling interval")
    args = parser.parse_args()

    started_process = time.perf_counter()
    from aggregator.config import load_config
    from aggregator.pipeline import run_fetch
    from aggregator.store import Archive

    import_seconds = time.perf_counter() - started_process
    config = load_config(args.config)
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=args.interval, async_mode="disabled")
    with Archive(args.db) as archive:
        before = archive_counts(archive.db)
        if profiler:
            profiler.start()
        started = time.perf_counter()
        cpu_started = time.process_time()
        summary = run_fetch(config, archive, include_not_due=True)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        if profiler:
            profiler.stop()
        after = archive_counts(archive.db)
    statuses: dict[str, int] = {}
    for outcome in summary.outcomes:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    failures = [f"{o.source_id}: {o.error}" for o in summary.failed][:5]
    warnings = [f"{o.source_id}: {o.warning}" for o in summary.outcomes if o.warning][:5]
    self_rss = peak_rss_bytes()
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    result = {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "import_seconds": import_seconds,
        "polled": summary.polled,
        "seen": sum(o.seen for o in summary.outcomes),
        "new": summary.new,
        "changed": summary.changed,
        "statuses": statuses,
        "failures": failures,
        "warnings": warnings,
        "before": before,
        "after": after,
        "peak_rss_bytes": self_rss,
        "peak_rss_children_bytes": child_rss,
        "db_bytes": db_bytes(Path(args.db)),
        "pid": os.getpid(),
    }
    if profiler:
        out = Path(args.profile)
        if out.suffix == ".html":
            out.write_text(profiler.output_html(), encoding="utf-8")
        else:
            out.write_text(profiler.output_text(unicode=True, color=False, show_all=False), encoding="utf-8")
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
