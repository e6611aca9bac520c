"""A multilingual corpus with the hits and orderings a librarian expects for each query."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator.search import SearchFilters, search_articles
from aggregator.store import Archive, FetchRecord, SourceState
from aggregator.types import Article, Source

HERE = Path(__file__).parent / "fixtures" / "search"
CORPUS = json.loads((HERE / "corpus.json").read_text(encoding="utf-8"))
QUERIES = json.loads((HERE / "queries.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    archive = Archive(tmp_path_factory.mktemp("search") / "corpus.db")
    sources = {doc["office"]: Source(id=doc["office"].lower(), office=doc["office"], name=doc["office"],
                                     kind="feed", url=f"https://{doc['office'].lower()}.example/rss", interval=3600)
               for doc in CORPUS}
    archive.sync_sources(sources.values())
    for office, source in sources.items():
        articles = [Article(id=doc["key"], source_id=source.id, office=office, url=f"https://{source.id}.example/{doc['key']}",
                            title=doc["title"], body=doc["body"], published=doc["published"], language=doc["language"],
                            topics=tuple(doc["topics"]))
                    for doc in CORPUS if doc["office"] == office]
        archive.save_source_results(source, articles, FetchRecord("r", source.id, "2026-01-01T00:00:00Z", 1),
                                    SourceState(source.id))
    yield archive
    archive.close()


@pytest.mark.parametrize("case", QUERIES, ids=[q["query"] + (f" [{q['office']}]" if "office" in q else "")
                                                + (" [date]" if q.get("sort") == "date" else "") for q in QUERIES])
def test_query(archive, case):
    filters = SearchFilters(offices=(case["office"],) if "office" in case else (), since=case.get("since"))
    found = [r["id"] for r in search_articles(archive.db, case["query"], filters=filters,
                                              sort=case.get("sort", "rank"), limit=50)]
    if "hits" in case:
        assert sorted(found) == case["hits"], case.get("why")
    if "order" in case:
        assert found == case["order"]
    if "order_first" in case:
        assert found[0] == case["order_first"], case.get("why")
