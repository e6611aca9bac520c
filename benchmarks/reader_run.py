"""lemon24/reader on the feed sources of the corpus: the peer ipnews is measured against.

Two roles in one file:

* imported by ``benchmarks.run``: :func:`ensure_reader_venv` creates
  ``benchmarks/.venv-reader`` and ``pip install reader`` there (once), and
  :func:`run_reader` runs this file in that venv, in a subprocess;
* run in the reader venv (stdlib + reader only, nothing from ipnews):
  ``python benchmarks/reader_run.py --db reader.db --urls urls.txt --workers 8``
  adds the feeds (first run), updates every feed once (``scheduled=False``,
  ``workers=8``, the setting of the issue's measurement) and prints JSON:
  seconds, entries stored, feeds that failed, peak RSS. ``--search`` also
  times reader's own full-text search (enable_search + update_search +
  search_entries), for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-reader"
# The newest reader from PyPI (its version is recorded in the results). reader vendors a feedparser
# that imports `sgmllib`; the feedparser 6.0.14 served here depends on feedparser-sgmllib, which
# provides `feedparser_sgmllib` instead, so the classic sgmllib3k is installed beside it.
READER_REQUIREMENTS = ("reader", "sgmllib3k")


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_reader_venv(python: str = sys.executable) -> str:
    """Create the reader venv and install reader from PyPI unless done already; returns reader's version."""
    if not venv_python().exists():
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    probe = [str(venv_python()), "-c", "import reader, sgmllib; print(reader.__version__)"]
    found = subprocess.run(probe, capture_output=True, text=True)
    if found.returncode != 0:
        subprocess.run([str(venv_python()), "-m", "pip", "install", "-q", *READER_REQUIREMENTS], check=True)
        found = subprocess.run(probe, capture_output=True, text=True, check=True)
    return found.stdout.strip()


def run_reader(db: Path, urls: Path, *, workers: int = 8, search: bool = False, index_only: bool = False,
               timeout: float = 3600) -> dict:
    command = [str(venv_python()), str(Path(__file__).resolve()), "--db", str(db), "--urls", str(urls),
               "--workers", str(workers)]
    if search:
        command.append("--search")
    if index_only:
        command.append("--index-only")
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    if done.returncode != 0:
        raise RuntimeError(f"reader run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_rss_bytes() -> int:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that over fork and exec, so a
    child started by a big parent would report the parent's peak."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:  # runs inside the reader venv
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--urls", required=True)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--search", action="store_true")
    parser.add_argument("--index-only", action="store_true",
                        help="no update: time enable_search + update_search on the archive as it is")
    args = parser.parse_args()

    import reader as reader_module
    from reader import make_reader

    if args.index_only:  # what reader needs to make an archive it polled searchable
        r = make_reader(args.db)
        started, cpu_started = time.perf_counter(), time.process_time()
        r.enable_search()
        r.update_search()
        result = {"search_index_seconds": time.perf_counter() - started,
                  "search_index_cpu_seconds": time.process_time() - cpu_started,
                  "entries": r.get_entry_counts().total, "peak_rss_bytes": peak_rss_bytes()}
        r.close()
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
        return

    urls = [u.strip() for u in Path(args.urls).read_text().splitlines() if u.strip()]
    r = make_reader(args.db)
    existing = {f.url for f in r.get_feeds()}
    for url in urls:
        if url not in existing:
            r.add_feed(url)
    before = r.get_entry_counts().total
    started = time.perf_counter()
    cpu_started = time.process_time()
    r.update_feeds(scheduled=False, workers=args.workers)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    after = r.get_entry_counts().total
    broken = [f"{f.url}: {f.last_exception.type_name}: {f.last_exception.value_str}"
              for f in r.get_feeds(broken=True)]
    result = {
        "reader_version": reader_module.__version__,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "feeds": len(urls),
        "entries_before": before,
        "entries_after": after,
        "new_entries": after - before,
        "broken": len(broken),
        "broken_examples": broken[:3],
        "peak_rss_bytes": peak_rss_bytes(),
        "db_bytes": sum(os.path.getsize(args.db + s) for s in ("", "-wal") if os.path.exists(args.db + s)),
    }
    if args.search:
        started = time.perf_counter()
        r.enable_search()
        r.update_search()
        result["search_index_seconds"] = time.perf_counter() - started
        timings = []
        for query in ("patent", "trademark", "application", "office", "design", "examination") * 5:
            t0 = time.perf_counter()
            list(r.search_entries(query, limit=20))
            timings.append(time.perf_counter() - t0)
        result["search_p50_ms"] = _percentile(timings, 0.5) * 1000
        result["search_p95_ms"] = _percentile(timings, 0.95) * 1000
    r.close()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
