"""Crash safety: SIGKILL at twenty moments of a run, a full disk, a read-only archive.

A killed run must leave an archive that passes PRAGMA integrity_check (and the FTS index's own
check), holds whole sources only (each source's articles are written in one transaction), has no
duplicate article, and is completed by the next ordinary ``ipnews fetch``. A run that cannot
write (a full disk, simulated with RLIMIT_FSIZE; a read-only file) stops with exit 1 and one
line on stderr, and leaves the archive as it was.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fleet import command
from harness import snapshot

from aggregator.loopback import LoopbackServer

from conftest import rss, run, write_config

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and resource limits")

TRIALS = 20
SEED = 8
FEEDS, ITEMS = 8, 10
# New items per feed in the round after the first: enough that the round's WAL grows well past the
# archive's size (2.8 MB against 0.64 MB), so a file-size limit just above the archive is always
# hit mid-fetch. With 5 the WAL peaked at ~1.0 MB against a 0.71 MB limit, and fewer, larger
# group commits could stay under it (seen once: the fetch then succeeded).
NEXT_ROUND = 40


def serve(server: LoopbackServer, round_: int = 0) -> list[dict]:
    """FEEDS feeds of ITEMS items each (``round_`` > 0 adds that many new items to each) and one page source."""
    sources = []
    for n in range(FEEDS):
        items = [{"guid": f"f{n}-{i}", "title": f"Feed {n} notice {i}", "link": f"/f{n}/{i}.html",
                  "description": f"Notice {i} of feed {n} about renewal fees, deadlines and forms " * 20}
                 for i in range(ITEMS + round_)]
        server.add(f"/f{n}.xml", rss(items), headers={"Content-Type": "application/rss+xml"})
        sources.append({"id": f"feed-{n}", "office": "CRASH", "url": server.url(f"/f{n}.xml"), "language": "en"})
    links = "".join(f'<li><a href="/page/{i}.html">Page article {i}</a></li>' for i in range(3))
    server.add("/page/list.html", f'<html><body><ul class="news">{links}</ul></body></html>',
               headers={"Content-Type": "text/html"})
    for i in range(3):
        server.add(f"/page/{i}.html", f"<html><body><h1>Page article {i}</h1><div class='a'><p>Text of page "
                   f"article {i} about the unitary patent.</p></div></body></html>", headers={"Content-Type": "text/html"})
    sources.append({"id": "page", "office": "CRASH", "kind": "page", "url": server.url("/page/list.html"), "language": "en",
                    "list": {"item": "ul.news li"}, "article": {"title": "h1", "body": "div.a"}})
    return sources


def expected_per_source(round_: int = 0) -> dict[str, int]:
    return {**{f"feed-{n}": ITEMS + round_ for n in range(FEEDS)}, "page": 3}


def assert_sound(db: Path) -> dict[str, int]:
    """Integrity, the FTS index, no duplicates, whole sources; returns articles per source."""
    conn = sqlite3.connect(db)
    try:
        conn.create_function("ipnews_fts_text", 2, lambda text, language: text)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "articles" not in tables:  # killed before the schema was committed: an empty archive, all or nothing
            assert not tables & {"sources", "fetches", "articles_fts"}, tables
            return {}
        conn.execute("INSERT INTO articles_fts(articles_fts, rank) VALUES ('integrity-check', 0)")
        assert conn.execute("SELECT count(*) = count(DISTINCT id) AND count(*) = count(DISTINCT url_canonical) "
                            "FROM articles").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM articles a WHERE NOT EXISTS "
                            "(SELECT 1 FROM article_sources s WHERE s.article_id = a.id)").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM articles WHERE fetch_id NOT IN (SELECT id FROM fetches)"
                            ).fetchone() == (0,)
        counts = dict(conn.execute("SELECT source_id, count(*) FROM articles GROUP BY source_id").fetchall())
    finally:
        conn.close()
    return counts


def _articles(db: Path) -> int:
    """Articles committed so far, read while the run writes (WAL); 0 before the schema exists."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
        try:
            return conn.execute("SELECT count(*) FROM articles").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _kill_when(victim: subprocess.Popen, db: Path, articles: int | None, delay: float) -> None:
    """SIGKILL ``delay`` seconds after the archive holds ``articles`` articles (or, with None,
    ``delay`` seconds after the start); a run that ends first is simply not killed."""
    deadline = time.monotonic() + 30
    while articles is not None and victim.poll() is None and (not db.exists() or _articles(db) < articles):
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.003)
    time.sleep(delay)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)


def test_sigkill_at_twenty_moments_then_the_next_run_completes_the_archive(tmp_path):
    """Twenty runs killed at moments spread over the run, each on its own archive, each then
    completed by the next ordinary run.

    A moment is a point of progress plus a random delay (fixed seed), not a time since the
    start: the start-up takes what the machine's load makes it take. Two runs are killed during
    start-up (before or while the archive is created); the others once the archive holds
    k articles, k spread over the run, and then 0–40 ms later: between two sources' commits,
    inside one, or while the next pages are fetched.
    """
    rng = random.Random(SEED)
    # One request at a time, 80 ms each: sources finish one by one, so the writer commits them one
    # by one. Saves that arrive together share one commit (a savepoint each), which would leave
    # too few moments between commits for the kills to land on.
    with LoopbackServer(latency=0.08) as server:
        config = write_config(tmp_path / "feeds.yaml", serve(server), defaults={"per_host": 1})
        whole = expected_per_source()
        total = sum(whole.values())
        plan: list[tuple[int | None, float]] = [(None, rng.uniform(0.05, 0.5)) for _ in range(2)]
        plan += [(int(total * (i + rng.random()) / (TRIALS - 2)), rng.uniform(0, 0.04)) for i in range(TRIALS - 2)]
        progress = []
        for trial, (articles, delay) in enumerate(plan):
            moment = f"trial {trial} (at {articles} articles + {delay * 1000:.0f} ms)"
            db = tmp_path / f"trial{trial}" / "ipnews.db"
            victim = subprocess.Popen(command(config, db, "fetch"), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            _kill_when(victim, db, articles, delay)
            counts = assert_sound(db) if db.exists() else {}
            for source, count in counts.items():  # whole sources or nothing, never half a batch
                assert count == whole[source], f"{moment}: {source} has {count} of {whole[source]}"
            progress.append(sum(counts.values()))

            after = run(["fetch"], config, db)  # the next cron run (in-process, to save the start-up)
            assert after.exit_code == 0, f"{moment}: {after.stderr}"
            assert "another ipnews run" not in after.stderr  # the dead run's lock did not block
            assert assert_sound(db) == whole, f"{moment}: not completed by the next run"

    landed_mid_run = [p for p in progress if 0 < p < total]
    assert len(landed_mid_run) >= TRIALS // 2, f"kills did not land mid-run often enough: {progress}"


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _archive_with_a_first_round(tmp_path: Path, server: LoopbackServer) -> tuple[Path, Path]:
    config = write_config(tmp_path / "feeds.yaml", serve(server))
    db = tmp_path / "archive" / "ipnews.db"
    first = run(["fetch"], config, db)
    assert first.exit_code == 0, first.stderr
    serve(server, round_=NEXT_ROUND)  # new items in every feed
    return config, db


def _content(db: Path) -> set[tuple]:
    """The archived articles as content: identity, URL, title, dates and texts (not last_seen & co)."""
    conn = sqlite3.connect(db)
    try:
        return set(conn.execute("SELECT id, source_id, url, guid, title, published, published_raw, summary, body, "
                                "body_html, content_hash FROM articles"))
    finally:
        conn.close()


def _one_clear_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ipnews: ") and "Traceback" not in stderr, stderr[-2000:]
    return lines[0]


def test_full_disk_is_one_line_and_exit_1_and_the_archive_survives(tmp_path):
    with LoopbackServer() as server:
        config, db = _archive_with_a_first_round(tmp_path, server)
        before = _content(db)
        largest = max(p.stat().st_size for p in db.parent.iterdir())
        full = subprocess.run(command(config, db, "fetch", "--all"), capture_output=True, text=True,
                              preexec_fn=_limit_file_size(largest + 64 * 1024), timeout=60)
        assert full.returncode == 1, full.stderr
        line = _one_clear_line(full.stderr)
        assert "cannot write" in line and str(db) in line
        assert _content(db) >= before  # sources written before the disk filled may have
        assert_sound(db)  # moved on (new articles, last_seen), but nothing archived was lost or altered
        complete = run(["fetch", "--all"], config, db)
        assert complete.exit_code == 0, complete.stderr
        assert assert_sound(db) == expected_per_source(round_=NEXT_ROUND)


@pytest.mark.parametrize("limit_kb", [1, 44, 60])
def test_a_disk_full_from_the_start_is_one_line(tmp_path, limit_kb):
    """No room at all (opening the archive fails), or room for the WAL's first pages only
    (syncing the sources, the first write of a run, fails): one line, exit 1, archive intact."""
    with LoopbackServer() as server:
        config, db = _archive_with_a_first_round(tmp_path, server)
        before = _content(db)
        full = subprocess.run(command(config, db, "fetch", "--all"), capture_output=True, text=True,
                              preexec_fn=_limit_file_size(limit_kb * 1024), timeout=60)
        assert full.returncode in (1, 3), full.stderr  # 3: the failures could be recorded, just not the articles
        if full.returncode == 1:
            assert "cannot" in _one_clear_line(full.stderr)
        assert_sound(db)
        assert _content(db) >= before


@contextlib.contextmanager
def read_only(path: Path):
    """``path`` read-only for the block, even for root (chattr +i), else by its mode."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode:
            pytest.skip("cannot make a file read-only for root here (chattr +i)")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)


def test_read_only_archive_is_one_line_and_exit_1(tmp_path):
    with LoopbackServer() as server:
        config, db = _archive_with_a_first_round(tmp_path, server)
        before = snapshot(db)
        with read_only(db):
            result = subprocess.run(command(config, db, "fetch", "--all"), capture_output=True, text=True,
                                    timeout=60)
        assert result.returncode == 1, result.stderr
        line = _one_clear_line(result.stderr)
        assert "read-only" in line or "readonly" in line
        assert snapshot(db) == before


def test_read_only_archive_directory_is_one_line_and_exit_1(tmp_path):
    with LoopbackServer() as server:
        config, db = _archive_with_a_first_round(tmp_path, server)
        (db.parent / (db.name + ".lock")).unlink()
        before = _content(db)
        with read_only(db.parent):
            result = subprocess.run(command(config, db, "fetch", "--all"), capture_output=True, text=True,
                                    timeout=60)
        assert _content(db) == before
        assert result.returncode == 1, result.stderr
        _one_clear_line(result.stderr)
