"""benchmarks.ingest on a small corpus: the in-memory transport answers as the benchmark's
server does, so the ingest figure measures the pipeline a poll runs."""

from __future__ import annotations

import sqlite3

from benchmarks import ingest
from benchmarks.corpus import build_corpus

GZIP_MAGIC = b"\x1f\x8b"


def test_the_pipeline_stores_every_expected_article_and_keeps_the_servers_gzip(tmp_path):
    corpus = build_corpus(sources=6, hosts=2, seed=3)
    result = ingest.run_pipeline(corpus, ("feed", "page"), tmp_path)
    assert result["failed"] == 0
    assert result["articles"] == result["expected_articles"] > 0
    db = sqlite3.connect(tmp_path / "ingest.db")
    stored = db.execute("SELECT compression, substr(content, 1, 2) FROM snapshots").fetchall()
    gzipped = [r for r in stored if r[1] == GZIP_MAGIC]
    # Bodies over 512 bytes are served gzip-encoded: their snapshots are the server's bytes.
    assert stored and len(gzipped) == len(stored)
    assert {r[0] for r in stored} == {"gzip"}
