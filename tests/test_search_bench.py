"""benchmarks.search_bench on a small archive: `results` lists what `measure` times."""

from __future__ import annotations

from benchmarks import search_bench


def test_results_list_each_timed_query_and_measure_reports_cpu_time(tmp_path):
    path = tmp_path / "search.db"
    search_bench.build(path, 300, progress=False)
    first = list(search_bench.query_results(path, samples=2))
    assert first == list(search_bench.query_results(path, samples=2))  # the same queries every run
    assert [(line["query"], line["number"]) for line in first] == [
        (kind, number) for kind in ("ranked_office_date", "newest_first", "cjk_2char", "common_word",
                                    "latest_no_query", "cjk_office_date", "newest_first_cjk")
        for number in (0, 1)]
    ranked = [line for line in first if line["query"] == "common_word"]
    assert all(line["ids"] and len(line["ranks"]) == len(line["ids"]) for line in ranked)
    assert all(rank is not None for line in ranked for rank in line["ranks"])
    measured = search_bench.measure(path, samples=2)
    assert 0 <= measured["common_word"]["cpu_p50_ms"] <= measured["common_word"]["cpu_p95_ms"]
