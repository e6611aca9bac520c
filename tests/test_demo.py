"""`ipnews demo` end to end: bundled sources on loopback, the real pipeline, a real archive."""

from __future__ import annotations

import json

from aggregator.config import load_config
from aggregator.demo import CONFIG_PATH, run_demo

from conftest import query, run


def test_demo_archives_every_sample_source_then_polls_conditionally(tmp_path, capsys):
    db = tmp_path / "demo.db"
    assert run_demo(str(db)) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "answered 304 Not Modified" in out
    sources = load_config(CONFIG_PATH, rewrite_url=lambda u: u.replace("demo://", "http://")).sources
    per_source = dict(query(db, "SELECT source_id, count(*) FROM article_sources GROUP BY source_id"))
    assert set(per_source) == {s.id for s in sources}  # every sample source contributed
    seed = query(db, "SELECT title, published, site_published, source_org, language, body FROM articles "
                     "WHERE url LIKE '%t20210510_2385303.html'")
    assert len(seed) == 1
    title, published, site_published, source_org, language, body = seed[0]
    assert title.startswith("Beijing Treaty on Audiovisual Performances: The First Anniversary")
    assert (published, site_published, source_org, language) == ("2021-05-03", "2021-05-10", "WIPO Office in China", "en")
    assert body.startswith("April 26 marks") and "fontSize" not in body
    # CNIPA's English site republishes a WIPO release: one story, two articles, one cluster
    assert query(db, "SELECT count(*) FROM articles WHERE cluster_id != id") == [(1,)]
    for word in ("专利", "特許", "patent"):
        hits = json.loads(run(["search", word, "--format", "json"], db=db).output)
        assert hits, word


def test_demo_starts_afresh_unless_kept(tmp_path, capsys):
    db = tmp_path / "demo.db"
    run_demo(str(db))
    first = query(db, "SELECT count(*) FROM articles")
    run_demo(str(db))
    assert query(db, "SELECT count(*) FROM articles") == first
    assert query(db, "SELECT count(*) FROM fetches") == [(22,)]
