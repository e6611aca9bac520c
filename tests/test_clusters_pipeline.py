"""Near-duplicates across sources and offices: clustered, never deleted, one search row per story."""

from __future__ import annotations

import json
import sqlite3

from aggregator.loopback import LoopbackServer

from conftest import query, rss, run, write_config

STORY = (
    "The International Bureau reported that applications filed under the Patent Cooperation Treaty "
    "reached a new record last year, driven by strong growth from applicants in Asia. Digital "
    "communication and computer technology accounted for the largest share of published applications, "
    "followed by medical technology and electrical machinery. Universities and public research "
    "organisations also filed more applications than in any previous year, and the number of small "
    "and medium-sized enterprises using the system rose for the third year in a row."
)
OTHER = (
    "The office will be closed for maintenance of its electronic filing systems on the first weekend "
    "of the month. During that time, online services for trademarks and industrial designs will be "
    "unavailable. Deadlines falling on those days are extended to the next working day, and users "
    "are invited to plan their submissions accordingly and to contact the help desk in case of doubt."
)


def test_republications_share_a_cluster_and_search_shows_one_row(tmp_path, archive_path):
    with LoopbackServer() as server:
        server.add("/wipo.xml", rss([{"guid": "w1", "title": "PCT filings reach a record", "link": "/w1",
                                      "date": "Mon, 02 Mar 2026 09:00:00 GMT", "description": STORY},
                                     {"guid": "w2", "title": "Maintenance weekend", "link": "/w2",
                                      "date": "Tue, 03 Mar 2026 09:00:00 GMT", "description": OTHER}]),
                   headers={"Content-Type": "application/rss+xml"})
        server.add("/cnipa-en.xml", rss([{"guid": "c1", "title": "WIPO: PCT applications hit a record", "link": "/c1",
                                          "date": "Thu, 05 Mar 2026 02:00:00 GMT",
                                          "description": "Source: WIPO. " + STORY + " (Reprinted from WIPO)"}]),
                   headers={"Content-Type": "application/rss+xml"})
        config = write_config(tmp_path / "feeds.yaml", [
            {"id": "wipo", "office": "WIPO", "url": server.url("/wipo.xml")},
            {"id": "cnipa-en", "office": "CNIPA", "url": server.url("/cnipa-en.xml")},
        ])
        run(["fetch", "--source", "wipo"], config, archive_path)
        run(["fetch", "--source", "cnipa-en"], config, archive_path)
    rows = dict(query(archive_path, "SELECT guid, cluster_id FROM articles"))
    assert rows["c1"] == rows["w1"] != rows["w2"]  # the republication joined the original's cluster
    assert query(archive_path, "SELECT count(*) FROM articles") == [(3,)]  # nothing deleted
    assert query(archive_path, "SELECT cluster_similarity >= 0.91 FROM articles WHERE guid = 'c1'") == [(1,)]

    collapsed = json.loads(run(["search", "PCT", "--format", "json"], db=archive_path).output)
    assert [(h["office"], h["duplicates"]) for h in collapsed] == [("WIPO", 1)]  # the earliest published member
    every = json.loads(run(["search", "PCT", "--all-duplicates", "--format", "json"], db=archive_path).output)
    assert sorted(h["office"] for h in every) == ["CNIPA", "WIPO"]
    only_cnipa = json.loads(run(["search", "PCT", "--office", "CNIPA", "--format", "json"], db=archive_path).output)
    assert [h["office"] for h in only_cnipa] == ["CNIPA"]  # filters choose among the members
    # Newest first: the cluster's place is its newest match (CNIPA), its row the earliest published; no rank.
    by_date = json.loads(run(["search", "PCT", "--sort", "date", "--format", "json"], db=archive_path).output)
    assert [(h["office"], h["duplicates"], h["rank"]) for h in by_date] == [("WIPO", 1, None)]
    assert "PCT filings reach a record" in run(["search", "PCT", "--sort", "date", "--format", "csv"],
                                                db=archive_path).output
    assert "PCT filings reach a record" in run(["search", "PCT", "--sort", "date"], db=archive_path).output
    (wipo_id,) = [h["id"] for h in every if h["office"] == "WIPO"]
    shown = run(["show", wipo_id], db=archive_path).output
    assert "Near-duplicates (1):" in shown and "WIPO: PCT applications hit a record" in shown


def test_a_revised_text_replaces_its_lookup_keys_without_an_index_by_article(tmp_path, archive_path):
    """An article's lookup keys are found from its stored fingerprint (m013 dropped the index
    by article); one stored by another version is still cleared, by reading every key."""
    from aggregator.cluster import Fingerprint, candidate_keys

    def keys_of(guid: str) -> tuple[list[int], list[int]]:
        stored = query(archive_path, "SELECT k.key FROM fingerprint_keys k JOIN articles a ON a.id = k.article_id "
                                     "WHERE a.guid = ? ORDER BY k.key", [guid])
        blob = query(archive_path, "SELECT f.fingerprint FROM article_fingerprints f JOIN articles a "
                                   "ON a.id = f.article_id WHERE a.guid = ?", [guid])[0][0]
        return [k for (k,) in stored], sorted(set(candidate_keys(Fingerprint.from_bytes(blob))))

    def poll(server: LoopbackServer, config, text: str) -> None:
        server.add("/wipo.xml", rss([{"guid": "w1", "title": "PCT filings reach a record", "link": "/w1",
                                      "date": "Mon, 02 Mar 2026 09:00:00 GMT", "description": text}]),
                   headers={"Content-Type": "application/rss+xml"})
        result = run(["fetch", "--all"], config, archive_path)
        assert result.exit_code == 0, result.output

    with LoopbackServer() as server:
        config = write_config(tmp_path / "feeds.yaml", [{"id": "wipo", "office": "WIPO", "url": server.url("/wipo.xml")}])
        poll(server, config, STORY)
        first, expected = keys_of("w1")
        assert first == expected and first
        poll(server, config, OTHER)  # revised: the old keys go, the new text's come
        second, expected = keys_of("w1")
        assert second == expected and not set(first) & set(second)
        assert query(archive_path, "SELECT count(*) FROM fingerprint_keys") == [(len(second),)]
        with sqlite3.connect(archive_path) as conn:  # a fingerprint this version cannot read
            conn.execute("UPDATE article_fingerprints SET version = 0, fingerprint = x'00'")
        poll(server, config, STORY + " Revised once more.")
        third, expected = keys_of("w1")
        assert third == expected and query(archive_path, "SELECT count(*) FROM fingerprint_keys") == [(len(third),)]
    assert query(archive_path, "SELECT name FROM sqlite_master WHERE name = 'fingerprint_keys_article'") == []
