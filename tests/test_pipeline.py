"""The whole pipeline through the CLI against a real loopback server and a real SQLite file."""

from __future__ import annotations

import json

from aggregator.loopback import Route

from conftest import paths, query, rss, run, write_config

WIPO_ITEMS = [
    {"guid": "PR-2026-901", "title": "PCT filings reach a new record", "link": "/pressroom/en/articles/2026/article_0901.html",
     "date": "Tue, 04 Aug 2026 10:00:00 GMT", "description": "International patent applications under the PCT grew.",
     "category": "Patents"},
    {"guid": "PR-2026-902", "title": "Madrid System adds a member", "link": "/pressroom/en/articles/2026/article_0902.html",
     "date": "Wed, 05 Aug 2026 09:30:00 GMT", "description": "The trademark system welcomes its newest member.",
     "category": "Trademarks"},
    {"guid": "PR-2026-903", "title": "Beijing Treaty anniversary", "link": "/pressroom/en/articles/2026/article_0903.html",
     "description": "An item without a date: its published date must stay empty."},
]
EPO_ITEMS = [
    {"guid": "epo-1", "title": "Unitary patent uptake grows", "link": "/en/news-events/news/unitary-patent-uptake",
     "date": "Mon, 10 Aug 2026 08:00:00 GMT", "description": "More proprietors request unitary patent protection."},
]


def feed_source(server, sid: str, office: str, path: str, **extra) -> dict:
    return {"id": sid, "office": office, "name": sid, "kind": "feed", "url": server.url(path), **extra}


def test_fetch_archives_every_item_once_then_sends_conditional_requests(server, tmp_path, archive_path):
    server.add("/wipo/rss.xml", rss(WIPO_ITEMS), headers={"Content-Type": "application/rss+xml"})
    server.add("/epo/rss.xml", rss(EPO_ITEMS), headers={"Content-Type": "application/rss+xml"})
    config = write_config(tmp_path / "feeds.yaml", [
        feed_source(server, "wipo", "WIPO", "/wipo/rss.xml", language="en"),
        feed_source(server, "epo", "EPO", "/epo/rss.xml"),
    ])

    first = run(["fetch"], config, archive_path)
    assert first.exit_code == 0, first.output
    assert query(archive_path, "SELECT count(*) FROM articles") == [(4,)]
    rows = dict(query(archive_path, "SELECT guid, published FROM articles"))
    assert rows["PR-2026-901"] == "2026-08-04T10:00:00Z"
    assert rows["PR-2026-903"] is None  # never invented, never the fetch time

    server.reset_stats()
    second = run(["fetch", "--all"], config, archive_path)
    assert second.exit_code == 0, second.output
    assert server.conditional_hits == 2
    sent = {r.path: r.headers for r in server.requests}
    assert "if-none-match" in sent["/wipo/rss.xml"]
    assert query(archive_path, "SELECT count(*) FROM articles") == [(4,)]
    fetches = query(archive_path, "SELECT source_id, status, items_new FROM fetches ORDER BY id")
    assert sorted(fetches[2:]) == [("epo", 304, 0), ("wipo", 304, 0)]


def test_rerun_on_unchanged_input_adds_and_changes_nothing(tmp_path, archive_path):
    from aggregator.loopback import LoopbackServer

    with LoopbackServer() as plain:  # no validators: every poll gets a full 200
        plain.add("/rss.xml", rss(WIPO_ITEMS), headers={"Content-Type": "application/rss+xml"})
        config = write_config(tmp_path / "feeds.yaml", [feed_source(plain, "wipo", "WIPO", "/rss.xml")])
        assert run(["fetch"], config, archive_path).exit_code == 0
        before = query(archive_path, "SELECT id, title, body, content_hash, first_seen FROM articles ORDER BY id")
        assert run(["fetch", "--all"], config, archive_path).exit_code == 0
        after = query(archive_path, "SELECT id, title, body, content_hash, first_seen FROM articles ORDER BY id")
    assert before == after
    assert query(archive_path, "SELECT count(*) FROM article_revisions") == [(0,)]
    assert query(archive_path, "SELECT items_seen, items_new, items_changed FROM fetches ORDER BY id DESC LIMIT 1") == [(3, 0, 0)]


def test_changed_item_is_updated_and_its_old_version_kept(tmp_path, archive_path):
    from aggregator.loopback import LoopbackServer

    with LoopbackServer() as plain:
        plain.add("/rss.xml", rss(WIPO_ITEMS[:1]), headers={"Content-Type": "application/rss+xml"})
        config = write_config(tmp_path / "feeds.yaml", [feed_source(plain, "wipo", "WIPO", "/rss.xml")])
        run(["fetch"], config, archive_path)
        corrected = [{**WIPO_ITEMS[0], "description": "Corrected: international patent applications fell."}]
        plain.add("/rss.xml", rss(corrected), headers={"Content-Type": "application/rss+xml"})
        run(["fetch", "--all"], config, archive_path)
    assert query(archive_path, "SELECT count(*) FROM articles") == [(1,)]
    assert query(archive_path, "SELECT summary FROM articles") == [("Corrected: international patent applications fell.",)]
    (previous,) = query(archive_path, "SELECT previous FROM article_revisions")[0]
    assert json.loads(previous)["summary"] == "International patent applications under the PCT grew."


def test_per_host_limit_holds_across_many_sources(tmp_path, archive_path):
    from aggregator.loopback import LoopbackServer

    with LoopbackServer(latency=0.15) as slow:
        sources = []
        for n in range(10):
            slow.add(f"/feed{n}.xml", rss([{"guid": f"g{n}", "title": f"Notice {n}", "link": f"/n/{n}"}]),
                     headers={"Content-Type": "application/rss+xml"})
            sources.append(feed_source(slow, f"src{n}", "DPMA", f"/feed{n}.xml"))
        config = write_config(tmp_path / "feeds.yaml", sources, defaults={"per_host": 2, "concurrency": 16})
        result = run(["fetch"], config, archive_path)
        peak = slow.peak_concurrency
    assert result.exit_code == 0
    assert peak == 2  # the limit is used, and never exceeded
    assert query(archive_path, "SELECT count(*) FROM articles") == [(10,)]


def test_failing_sources_are_recorded_and_the_others_archived(server, tmp_path, archive_path):
    server.add("/good.xml", rss(WIPO_ITEMS), headers={"Content-Type": "application/rss+xml"})
    server.add("/broken.xml", b"oops", status=500)
    server.add("/garbage.xml", b"\x00\x01 this is not a feed at all \xff", headers={"Content-Type": "application/xml"})
    server.add("/slow.xml", Route(body=rss(EPO_ITEMS), delay=3.0))
    config = write_config(tmp_path / "feeds.yaml", [
        feed_source(server, "good", "WIPO", "/good.xml"),
        feed_source(server, "broken", "EPO", "/broken.xml"),
        feed_source(server, "garbage", "DPMA", "/garbage.xml"),
        feed_source(server, "slow", "UKIPO", "/slow.xml"),
    ], defaults={"read_timeout": "1s", "timeout": "2s"})

    result = run(["fetch"], config, archive_path)
    assert result.exit_code == 3
    assert query(archive_path, "SELECT count(*) FROM articles WHERE source_id = 'good'") == [(3,)]
    assert query(archive_path, "SELECT count(*) FROM articles WHERE source_id != 'good'") == [(0,)]
    errors = dict(query(archive_path, "SELECT source_id, error FROM fetches WHERE error IS NOT NULL"))
    assert set(errors) == {"broken", "garbage", "slow"}
    assert "HTTP 500" in errors["broken"]
    assert "timed out" in errors["slow"]
    assert "ipnews: ERROR: broken: HTTP 500" in result.stderr

    listing = run(["sources", "--format", "json"], config, archive_path)
    by_id = {r["id"]: r for r in json.loads(listing.output)}
    assert by_id["good"]["articles"] == 3 and by_id["good"]["last_error"] is None
    assert by_id["broken"]["consecutive_failures"] == 1 and "HTTP 500" in by_id["broken"]["last_error"]
    failing = json.loads(run(["sources", "--format", "json", "--failing"], config, archive_path).output)
    assert {r["id"] for r in failing} == {"broken", "garbage", "slow"}


def test_retry_after_keeps_a_source_from_being_polled_early(server, tmp_path, archive_path):
    server.add("/busy.xml", b"", status=503, headers={"Retry-After": "3600"})
    config = write_config(tmp_path / "feeds.yaml", [feed_source(server, "busy", "EPO", "/busy.xml", interval="1s")])
    assert run(["fetch"], config, archive_path).exit_code == 3
    ((retry_after,),) = query(archive_path, "SELECT retry_after FROM sources WHERE id = 'busy'")
    assert retry_after is not None
    server.reset_stats()
    again = run(["fetch"], config, archive_path)
    assert again.exit_code == 0 and server.requests == []  # not due: nothing polled


def test_only_due_sources_are_polled(server, tmp_path, archive_path):
    server.add("/a.xml", rss(WIPO_ITEMS), headers={"Content-Type": "application/rss+xml"})
    config = write_config(tmp_path / "feeds.yaml", [feed_source(server, "a", "WIPO", "/a.xml", interval="6h")])
    run(["fetch"], config, archive_path)
    server.reset_stats()
    run(["fetch"], config, archive_path)
    assert server.requests == []
    run(["fetch", "--source", "a"], config, archive_path)
    assert paths(server) == ["/a.xml"]


def test_search_with_filters_and_json_output(server, tmp_path, archive_path):
    server.add("/wipo.xml", rss(WIPO_ITEMS), headers={"Content-Type": "application/rss+xml"})
    server.add("/epo.xml", rss(EPO_ITEMS), headers={"Content-Type": "application/rss+xml"})
    config = write_config(tmp_path / "feeds.yaml", [
        feed_source(server, "wipo", "WIPO", "/wipo.xml", language="en"),
        feed_source(server, "epo", "EPO", "/epo.xml", language="en"),
    ])
    run(["fetch"], config, archive_path)

    result = run(["search", "patent", "--format", "json"], db=archive_path)
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    assert {h["office"] for h in hits} == {"WIPO", "EPO"}
    for key in ("id", "title", "url", "published", "office", "source_id", "snippet"):
        assert key in hits[0]
    assert "**" in hits[0]["snippet"]

    epo_only = json.loads(run(["search", "patents", "--office", "EPO", "--format", "json"], db=archive_path).output)
    assert [h["title"] for h in epo_only] == ["Unitary patent uptake grows"]
    dated = json.loads(run(["search", "patent", "--since", "2026-08-05", "--format", "json"], db=archive_path).output)
    assert [h["source_id"] for h in dated] == ["epo"]
    newest = json.loads(run(["search", "patent OR trademark", "--sort", "date", "--format", "json"], db=archive_path).output)
    assert [h["published"][:10] for h in newest] == ["2026-08-10", "2026-08-05", "2026-08-04"]


def test_search_errors_are_one_line(tmp_path, archive_path):
    missing = run(["search", "patent"], db=tmp_path / "nope.db")
    assert missing.exit_code == 1 and "no archive here yet" in missing.stderr
    from aggregator.store import Archive

    Archive(archive_path).close()
    too_long = run(["search", "x" * 10_000], db=archive_path)
    assert too_long.exit_code == 2
    assert too_long.stderr.strip().count("\n") == 0 and "too long" in too_long.stderr
    assert run(["search", "AND"], db=archive_path).exit_code == 2
    for odd in ['"unbalanced', "NEAR(", "title:", "patent*", "(patent", "patent)"]:
        result = run(["search", odd, "--format", "json"], db=archive_path)
        assert result.exit_code == 0, (odd, result.stderr)
        assert json.loads(result.output) == []


def test_a_feed_that_moved_permanently_is_polled_at_its_new_address(server, tmp_path, archive_path):
    server.add("/old.xml", b"", status=301, headers={"Location": server.url("/new.xml")})
    server.add("/new.xml", rss(EPO_ITEMS), headers={"Content-Type": "application/rss+xml"})
    config = write_config(tmp_path / "feeds.yaml", [feed_source(server, "epo", "EPO", "/old.xml")])
    result = run(["fetch"], config, archive_path)
    assert result.exit_code == 0
    assert "moved permanently to" in result.stderr and "update feeds.yaml" in result.stderr
    server.reset_stats()
    run(["fetch", "--all"], config, archive_path)
    assert paths(server) == ["/new.xml"]  # the old address is not asked again
    listing = json.loads(run(["sources", "--format", "json"], config, archive_path).output)
    assert listing[0]["moved_to"] == server.url("/new.xml")
    assert query(archive_path, "SELECT count(*) FROM articles") == [(1,)]


def test_a_gone_source_is_reported_as_such(server, tmp_path, archive_path):
    server.add("/gone.xml", b"", status=410)
    config = write_config(tmp_path / "feeds.yaml", [feed_source(server, "old", "UKIPO", "/gone.xml", interval="1s")])
    for _ in range(3):
        run(["fetch", "--all"], config, archive_path)
    from aggregator.cli import source_note

    (row,) = json.loads(run(["sources", "--format", "json"], config, archive_path).output)
    assert source_note(row) == "HTTP 410 on 3 polls, never fetched: gone?"


def test_host_aliases_make_an_old_and_a_new_address_one_article(tmp_path, archive_path):
    from aggregator.loopback import LoopbackServer

    with LoopbackServer() as old_site, LoopbackServer(host="127.0.0.2", port=old_site.port) as new_site:
        old_site.add("/rss.xml", rss([{"guid": "old-1", "title": "Annual report", "link": "/transfer/news/1122080.htm"}]),
                     headers={"Content-Type": "application/rss+xml"})
        new_site.add("/rss.xml", rss([{"guid": "new-1", "title": "Annual report", "link": "/transfer/news/1122080.htm"}]),
                     headers={"Content-Type": "application/rss+xml"})
        sources = [feed_source(old_site, "sipo", "CNIPA", "/rss.xml"), feed_source(new_site, "cnipa", "CNIPA", "/rss.xml")]
        config = write_config(tmp_path / "feeds.yaml", sources,
                              defaults={"host_aliases": {"127.0.0.1": "127.0.0.2"}})
        assert run(["fetch"], config, archive_path).exit_code == 0
    assert query(archive_path, "SELECT count(*) FROM articles") == [(1,)]
    assert query(archive_path, "SELECT count(*) FROM article_sources") == [(2,)]


def test_json_logs_and_quiet_mode(server, tmp_path, archive_path):
    server.add("/good.xml", rss(WIPO_ITEMS), headers={"Content-Type": "application/rss+xml"})
    server.add("/bad.xml", b"", status=500)
    config = write_config(tmp_path / "feeds.yaml", [feed_source(server, "good", "WIPO", "/good.xml"),
                                                    feed_source(server, "bad", "EPO", "/bad.xml")])
    result = run(["-v", "--log-format", "json", "fetch"], config, archive_path)
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert any(entry["level"] == "error" and entry["message"] == "bad: HTTP 500 Internal Server Error"
               for entry in lines)
    summary = [entry for entry in lines if entry["message"].startswith("polled 2 sources")]
    assert len(summary) == 1 and summary[0]["level"] == "info" and "1 failed" in summary[0]["message"]
    quiet = run(["-q", "fetch", "--all"], config, archive_path)
    assert quiet.exit_code == 3 and quiet.stdout == ""
    assert all("ERROR" in line for line in quiet.stderr.splitlines())
