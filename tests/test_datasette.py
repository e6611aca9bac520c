"""Browsing the archive in Datasette: a real archive built by the pipeline, Datasette's own client.

The archive holds the bundled demo sources plus two of our own on a loopback server: a feed
whose article quotes a <script> tag as text, and a source that fails. No network.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import rss

pytest.importorskip("datasette")

from datasette.app import Datasette  # noqa: E402
from markupsafe import escape  # noqa: E402

from aggregator import web  # noqa: E402
from aggregator.config import load_config  # noqa: E402
from aggregator.demo import CONFIG_PATH, serve_demo_hosts  # noqa: E402
from aggregator.loopback import LoopbackServer  # noqa: E402
from aggregator.pipeline import run_fetch  # noqa: E402
from aggregator.search import FTS_COLUMNS, search_articles  # noqa: E402
from aggregator.store import Archive  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SCRIPT_TEXT = '<script>alert("owned")</script>'
SCRIPT_ITEMS = [
    {"guid": "sec-1", "title": "Security notice: phishing e-mails", "link": "/news/security-notice",
     "date": "Mon, 02 Nov 2026 09:00:00 GMT", "category": "Security",
     # Escaped twice: the HTML describes a script tag as text, it does not contain one.
     "description": "Never paste &amp;lt;script&amp;gt;alert(\"owned\")&amp;lt;/script&amp;gt; into a patent form."},
]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """archive/ipnews.db, fetched through the pipeline; run_fetch's summary is kept for checks."""
    root = tmp_path_factory.mktemp("datasette")
    path = root / "archive" / "ipnews.db"
    with LoopbackServer() as office, serve_demo_hosts() as (rewrite, _servers):
        office.add("/rss.xml", rss(SCRIPT_ITEMS), headers={"Content-Type": "application/rss+xml"})
        office.add("/broken.xml", b"gone", status=500)
        config_data = yaml.safe_load(CONFIG_PATH.read_text(encoding="utf-8"))
        config_data["sources"] += [
            {"id": "test-security-feed", "office": "TESTIPO", "name": "Security notices", "kind": "feed",
             "url": office.url("/rss.xml"), "language": "en"},
            {"id": "test-broken-feed", "office": "TESTIPO", "name": "Broken feed", "kind": "feed",
             "url": office.url("/broken.xml"), "language": "en"},
        ]
        config_path = root / "feeds.yaml"
        config_path.write_text(yaml.safe_dump(config_data, allow_unicode=True), encoding="utf-8")
        config = load_config(config_path, rewrite_url=rewrite)
        with Archive(path) as a:
            summary = run_fetch(config, a, include_not_due=True)
    assert [o.source_id for o in summary.failed] == ["test-broken-feed"], summary.line()
    return path


def get(ds: Datasette, path: str):
    async def fetch():
        return await ds.client.get(path)

    return asyncio.run(fetch())


def get_json(ds: Datasette, path: str):
    response = get(ds, path)
    assert response.status_code == 200, response.text[:500]
    return response.json()


@pytest.fixture(scope="module")
def ds(archive: Path) -> Datasette:
    """Served under another name than ipnews.db, as `ipnews serve` would."""
    demo = archive.parent.parent / "demo.db"
    shutil.copy(archive, demo)
    return Datasette([str(demo)], metadata=web.build_metadata("demo"), settings=web.SETTINGS)


def expected_ids(archive: Path, query: str) -> set[str]:
    with Archive(archive, readonly=True) as a:
        return {row["id"] for row in search_articles(a.db, query, limit=1000, all_duplicates=True)}


def searched_ids(ds: Datasette, query: str, **params: str) -> set[str]:
    from urllib.parse import urlencode

    qs = urlencode({"_search": query, "_size": "max", "_shape": "array", "_col": "id", **params})
    return {row["id"] for row in get_json(ds, f"/demo/articles.json?{qs}")}


def test_articles_table_page_loads_with_search_box_and_description(ds):
    response = get(ds, "/demo/articles")
    assert response.status_code == 200
    assert 'name="_search"' in response.text
    assert "One row per news article from every office" in response.text


@pytest.mark.parametrize("query", ["专利", "patent", "知识产权", "特許", "unitary patent", '"unitary patent"',
                                   "trademark* NOT madrid", "title:专利"])
def test_search_box_returns_the_same_rows_as_ipnews_search(ds, archive, query):
    expected = expected_ids(archive, query)
    assert expected, f"the demo archive should have results for {query}"
    assert searched_ids(ds, query) == expected


def test_cjk_words_longer_than_a_bigram_are_found_exactly(ds, archive):
    with Archive(archive, readonly=True) as a:
        containing = {row["id"] for row in a.rows(
            "SELECT id FROM articles WHERE " + " OR ".join(f"{column} LIKE '%知识产权%'" for column in FTS_COLUMNS))}
    assert len(containing) > 1
    assert searched_ids(ds, "知识产权") == containing


def test_search_box_keeps_what_was_typed_and_the_query_language(ds):
    page = get(ds, "/demo/articles?_search=知识产权")
    assert 'value="知识产权"' in page.text
    data = get_json(ds, "/demo/articles.json?_search=知识产权")
    assert data["query"]["params"]["search"] == '"知识 识产 产权"'
    assert 'search matches "知识产权"' in data["human_description_en"]


def test_search_combines_with_filters_and_columns(ds, archive):
    cnipa = searched_ids(ds, "专利", office="CNIPA")
    assert cnipa == expected_ids(archive, "专利")  # all CNIPA already
    assert searched_ids(ds, "patent", office="EPO") < searched_ids(ds, "patent")
    titles = get_json(ds, "/demo/articles.json?_search_title=专利&_shape=array&_col=title")
    assert titles and all("专利" in row["title"] for row in titles)


def test_empty_and_unreadable_searches_do_not_break_the_page(ds, archive):
    with Archive(archive, readonly=True) as a:
        total = a.count()
    assert get_json(ds, "/demo/articles.json?_search=")["filtered_table_rows_count"] == total
    assert get_json(ds, "/demo/articles.json?_search=%20%20")["filtered_table_rows_count"] == total
    assert get(ds, "/demo/articles?_search=").status_code == 200
    for nasty in ['"', "AND OR (", "title:", "x" * 1001, "'; DROP TABLE articles; --"]:
        data = get_json(ds, f"/demo/articles.json?_search={nasty}")
        assert data["filtered_table_rows_count"] >= 0
    unreadable = get_json(ds, "/demo/articles.json?_search=" + "x" * 1001)
    assert unreadable["filtered_table_rows_count"] == 0
    assert "too long" in unreadable["human_description_en"]


def test_facets_office_language_topics_and_year(ds):
    data = get_json(ds, "/demo/articles.json?_search=patent")
    facets = data["facet_results"]
    assert {"office", "language", "topics", "sort_date"} <= set(facets)
    offices = {r["value"]: r["count"] for r in facets["office"]["results"]}
    assert offices["EPO"] >= 1 and "JPO" not in offices  # counts follow the search
    assert facets["topics"]["type"] == "array"
    years = facets["sort_date"]
    assert years["type"] == "year"
    assert all(len(r["value"]) == 4 and r["value"].isdigit() for r in years["results"])
    # Choosing a year filters on it.
    all_years = {r["value"]: r["count"] for r in get_json(ds, "/demo/articles.json")["facet_results"]["sort_date"]["results"]}
    assert set(all_years) >= {"2026", "2021"}
    only_2021 = get_json(ds, "/demo/articles.json?sort_date__startswith=2021")
    assert only_2021["filtered_table_rows_count"] == all_years["2021"]
    assert [r["selected"] for r in only_2021["facet_results"]["sort_date"]["results"]] == [True]
    # Facets asked for in the URL work too.
    assert "source_id" in get_json(ds, "/demo/articles.json?_facet=source_id")["facet_results"]
    page = get(ds, "/demo/articles")
    assert "facet-info" in page.text


def test_each_canned_query_runs(ds):
    queries = web.QUERIES
    assert set(queries) == {"latest_per_office", "search", "articles_per_office_per_month", "failing_sources"}
    latest = get_json(ds, "/demo/latest_per_office.json?_shape=array")
    per_office: dict[str, int] = {}
    for row in latest:
        per_office[row["office"]] = per_office.get(row["office"], 0) + 1
    assert len(per_office) >= 9 and max(per_office.values()) == 5

    results = get_json(ds, "/demo/search.json?_shape=array&q=专利&office=&since=&until=")
    assert results and all("专利" in row["title"] + row["snippet"] for row in results[:3])
    ranks = [row["rank"] for row in results]
    assert ranks == sorted(ranks)
    filtered = get_json(ds, "/demo/search.json?_shape=array&q=patent&office=epo&since=2026-09-01&until=2026-10-01")
    assert filtered and all(row["office"] == "EPO" and "2026-09-01" <= row["sort_date"] < "2026-10-02"
                            for row in filtered)
    assert "2026-10-01T07:00:00Z" in {row["sort_date"] for row in filtered}  # until is inclusive
    assert get_json(ds, "/demo/search.json?_shape=array&q=") == []  # unreadable: nothing, no error
    assert get_json(ds, "/demo/search.json?_shape=array&q=%22") == []

    months = get_json(ds, "/demo/articles_per_office_per_month.json?_shape=array")
    assert {"month": "2021-05", "office": "Beijing FAO", "articles": 1} in months

    failing = get_json(ds, "/demo/failing_sources.json?_shape=array")
    assert [row["id"] for row in failing] == ["test-broken-feed"]
    assert failing[0]["last_status"] == 500

    for name in queries:  # the HTML pages too
        assert get(ds, f"/demo/{name}").status_code == 200


def test_internal_tables_are_hidden(ds):
    tables = {t["name"]: t["hidden"] for t in get_json(ds, "/demo.json")["tables"]}
    assert not any(tables[name] for name in ("articles", "sources", "article_sources", "article_revisions",
                                             "fetches"))
    for name in ("articles_fts", "articles_fts_data", "articles_fts_idx", "_sqlite_migrations", "archive_meta"):
        assert tables[name] is True


def test_script_text_is_shown_escaped_and_long_bodies_truncated(ds, archive):
    with Archive(archive, readonly=True) as a:
        seq, body, body_html = a.db.execute(
            "SELECT seq, body, body_html FROM articles WHERE source_id = 'test-security-feed'").fetchone()
    assert SCRIPT_TEXT in body and "<script" not in (body_html or "")
    for path in (f"/demo/articles/{seq}", "/demo/articles?source_id=test-security-feed",
                 "/demo/search?q=phishing&office=&since=&until="):
        html = get(ds, path).text
        assert "<script>alert" not in html, path
        assert "&lt;script&gt;alert(" in html, path
    # Table view cuts long bodies; the row page shows the whole text.
    rows = get_json(ds, "/demo/articles.json?_shape=array&_col=body&_size=max")
    longest = max(rows, key=lambda row: len(row["body"] or ""))
    assert len(longest["body"]) > web.TRUNCATE_CELLS + 100
    tail = str(escape(longest["body"][-40:]))
    assert tail not in get(ds, f"/demo/articles?seq={longest['seq']}").text
    assert tail in get(ds, f"/demo/articles/{longest['seq']}").text


def test_any_database_name_works_through_the_plugin_alone(archive):
    other = archive.parent.parent / "my-archive.db"
    shutil.copy(archive, other)
    plain = Datasette([str(other)])  # no metadata: the ipnews plugin supplies it
    assert searched_ids_for(plain, "my-archive", "知识产权") == expected_ids(archive, "知识产权")
    assert get_json(plain, "/my-archive/failing_sources.json?_shape=array")[0]["id"] == "test-broken-feed"
    tables = {t["name"]: t["hidden"] for t in get_json(plain, "/my-archive.json")["tables"]}
    assert tables["_sqlite_migrations"] is True


def searched_ids_for(ds: Datasette, db: str, query: str) -> set[str]:
    rows = get_json(ds, f"/{db}/articles.json?_search={query}&_size=max&_shape=array&_col=id")
    return {row["id"] for row in rows}


def test_other_databases_are_left_alone(tmp_path, archive):
    import sqlite_utils

    other = sqlite_utils.Database(tmp_path / "other.db")
    other["articles"].insert_all([{"id": 1, "title": "hello world"}, {"id": 2, "title": "专利审查"}], pk="id")
    other["articles"].enable_fts(["title"])
    other.close()
    mixed = Datasette([str(tmp_path / "other.db"), str(archive)])
    assert set(mixed.metadata("databases")) == {"ipnews"}
    data = get_json(mixed, "/other/articles.json?_search=hello")
    assert data["query"]["params"]["search"] == "hello"  # Datasette's own search, untouched
    assert [row[1] for row in data["rows"]] == ["hello world"]
    assert get(mixed, "/other/articles.json?_search=").status_code == 400  # Datasette's own behaviour too


def test_empty_search_box_is_dropped_under_a_base_url_too(archive):
    prefixed = Datasette([str(archive)], settings={"base_url": "/news/"})
    data = get_json(prefixed, "/ipnews/articles.json?_search=&_search_title=")
    assert "search" not in data["human_description_en"]


def test_configuration_directory_mode_uses_archive_metadata_yml(archive):
    shutil.copy(REPO / "archive" / "metadata.yml", archive.parent / "metadata.yml")
    served = Datasette([], config_dir=archive.parent)
    assert served.metadata("title") == web.build_metadata()["title"]
    assert searched_ids_for(served, "ipnews", "专利") == expected_ids(archive, "专利")
    assert get_json(served, "/ipnews/search.json?_shape=array&q=特許")


def test_committed_metadata_yml_matches_the_builder():
    committed = yaml.safe_load((REPO / "archive" / "metadata.yml").read_text(encoding="utf-8"))
    assert committed == web.build_metadata("ipnews"), "regenerate: python -m aggregator.web > archive/metadata.yml"


def test_make_datasette_and_missing_archive(tmp_path, archive):
    ds = web.make_datasette(archive)
    assert ds.setting("truncate_cells_html") == web.TRUNCATE_CELLS
    assert "ipnews" in ds.metadata("databases")
    with pytest.raises(web.WebUnavailable, match="no archive here yet"):
        web.make_datasette(tmp_path / "nothing.db")


def test_serve_without_datasette_says_how_to_install(monkeypatch, archive):
    import builtins

    real_import = builtins.__import__

    def no_datasette(name, *args, **kwargs):
        if name == "datasette" or name.startswith("datasette."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasette)
    with pytest.raises(web.WebUnavailable, match=r"pip install 'ipnews\[web\]'"):
        web.serve(archive)
