"""Unattended operation with real processes: overlapping runs, SIGKILL, the daemon."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from aggregator.loopback import LoopbackServer

from conftest import paths, query, rss, write_config

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and flock")


def start(config, db, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "-v", "--config", str(config), "--db", str(db), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def slow_feeds(server: LoopbackServer, tmp_path, count: int = 4, interval: str = "6h"):
    sources = []
    for n in range(count):
        items = [{"guid": f"s{n}-{i}", "title": f"Notice {n}.{i}", "link": f"/n/{n}/{i}"} for i in range(5)]
        server.add(f"/feed{n}.xml", rss(items), headers={"Content-Type": "application/rss+xml"})
        sources.append({"id": f"src{n}", "office": "EPO", "url": server.url(f"/feed{n}.xml"), "interval": interval})
    return write_config(tmp_path / "feeds.yaml", sources, defaults={"per_host": 1})


def assert_archive_sound(db, articles: int) -> None:
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert query(db, "SELECT count(*), count(DISTINCT id), count(DISTINCT guid) FROM articles") == [
        (articles, articles, articles)]
    conn = sqlite3.connect(db)
    try:  # the FTS index agrees with the table
        conn.create_function("ipnews_fts_text", 1, lambda t: t)
        assert conn.execute("INSERT INTO articles_fts(articles_fts, rank) VALUES ('integrity-check', 0)") is not None
    finally:
        conn.close()


def test_overlapping_runs_never_fetch_the_same_source_twice(tmp_path):
    db = tmp_path / "ipnews.db"
    with LoopbackServer(latency=0.4) as server:
        config = slow_feeds(server, tmp_path)
        first = start(config, db, "fetch")
        wait_for(lambda: len(paths(server)) >= 1)
        second = start(config, db, "fetch", "--all")
        out2, err2 = second.communicate(timeout=30)
        out1, err1 = first.communicate(timeout=30)
        requested = paths(server)
    assert second.returncode == 0 and "another ipnews run" in err2
    assert first.returncode == 0, err1
    assert sorted(requested) == [f"/feed{n}.xml" for n in range(4)]  # each source fetched exactly once
    assert_archive_sound(db, 20)


def test_a_run_killed_with_sigkill_is_completed_by_the_next_one(tmp_path):
    db = tmp_path / "ipnews.db"
    with LoopbackServer(latency=0.3) as server:
        config = slow_feeds(server, tmp_path, count=6)
        victim = start(config, db, "fetch")
        wait_for(lambda: len(paths(server)) >= 3)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        archived = query(db, "SELECT count(*) FROM articles")[0][0] if db.exists() else 0
        assert archived % 5 == 0  # whole sources or nothing: never half a batch
        after = start(config, db, "fetch")
        out, err = after.communicate(timeout=60)
    assert after.returncode == 0, err
    assert "another ipnews run" not in err  # the dead run's lock did not block
    assert_archive_sound(db, 30)


def test_daemon_polls_on_schedule_and_stops_cleanly_on_sigterm(tmp_path):
    db = tmp_path / "ipnews.db"
    with LoopbackServer() as server:
        config = slow_feeds(server, tmp_path, count=2, interval="1s")
        daemon = start(config, db, "run", "--grace", "2")
        wait_for(lambda: all(server.hits(f"/feed{n}.xml") >= 2 for n in range(2)), timeout=20)
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=15)
    assert daemon.returncode == 0, err
    assert "stopped after" in err
    assert_archive_sound(db, 10)
    assert query(db, "SELECT count(*) >= 4 FROM fetches") == [(1,)]


def test_daemon_reloads_its_config_on_sighup(tmp_path):
    db = tmp_path / "ipnews.db"
    with LoopbackServer() as server:
        config = slow_feeds(server, tmp_path, count=1, interval="1s")
        daemon = start(config, db, "run")
        wait_for(lambda: server.hits("/feed0.xml") >= 1)
        server.add("/extra.xml", rss([{"guid": "x1", "title": "Added later", "link": "/x/1"}]),
                   headers={"Content-Type": "application/rss+xml"})
        write_config(config, [
            {"id": "src0", "office": "EPO", "url": server.url("/feed0.xml"), "interval": "1s"},
            {"id": "extra", "office": "WIPO", "url": server.url("/extra.xml"), "interval": "1s"},
        ])
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: server.hits("/extra.xml") >= 1)
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=15)
    assert daemon.returncode == 0, err
    assert "reloaded the config: 2 sources" in err
    assert query(db, "SELECT count(*) FROM articles WHERE source_id = 'extra'") == [(1,)]
