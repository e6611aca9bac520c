"""benchmarks.report: the bounds it works out for the missed targets, and ThreadCpu's timing."""

from __future__ import annotations

import threading
import time

from benchmarks import ipnews_run, report


def _poll(seconds: float, seen: int, cpu: float, writer: float | None, workers: float = 0.0) -> dict:
    server = {"total": {"requests": 10, "not_modified": 0, "max_peak_in_flight_per_host": 2,
                        "max_peak_connections_per_host": 2, "connections": 5}}
    poll = {"seconds": seconds, "seen": seen, "new_entries": seen, "cpu_seconds": cpu, "server": server,
            "checks": {"articles": {"ok": True}}, "cpu_seconds_workers": workers}
    if writer is not None:
        poll["cpu_seconds_threads"] = {"event_loop": 1.0, "writer": writer, "checkpointer": 0.5, "other": 0.5}
        poll["rss_before_poll_bytes"] = 60 * report.MB
        poll["peak_rss_bytes"] = 200 * report.MB
        poll["peak_rss_by_process_bytes"] = {"main": 200 * report.MB, "worker": 90 * report.MB}
    return poll


def _results(writer: float | None) -> dict:
    ipnews = {"runs": [{"cold": _poll(100.0, 10_000, 150.0, writer, 60.0),
                        "warm": _poll(10.0, 2_000, 14.0, writer and writer / 10)}]}
    reader = {"runs": [{"cold": _poll(50.0, 10_000, 50.0, None), "warm": _poll(20.0, 100, 18.0, None)}]}
    return {"machine": {"nproc": 2}, "args": {"sources": 2000},
            "scale": {"2000": {"ipnews": ipnews, "ipnews_feeds": ipnews, "reader": reader,
                               "ingest": {"pipeline": {"entries_per_second": 900}}}}}


def _bounds(results: dict) -> list[str]:
    scale = results["scale"]["2000"]
    stats = {f"{side}_{name}": report._poll_stats(scale[side], name, "new_entries" if side == "reader" else "seen")
             for side in ("ipnews", "ipnews_feeds", "reader") for name in ("cold", "warm")}
    return report._bounds(results, stats["ipnews_cold"], stats["ipnews_feeds_cold"], stats["ipnews_feeds_warm"],
                          stats["reader_cold"], stats["reader_warm"], 5_000.0, "2000")


def test_bounds_set_the_writer_and_the_cores_against_each_target():
    lines = _bounds(_results(writer=50.0))
    table = [line for line in lines if line.startswith("| cold poll, 2000")]
    # reader: 10,000 entries in 50 s = 200/s, so the target is 600/s; the writer's 50 s of CPU
    # allow at most 200/s, and 150 s of CPU on 2 cores at most 133/s: the tighter, 0.22×.
    # 2 cores at 600/s allow 3.33 ms of CPU per entry.
    assert table == ["| cold poll, 2000 sources | 3× reader = 600 entries/s | 3.33 ms per entry | "
                     "15.00 ms per entry → ≤ 133/s | 5.00 ms per entry → ≤ 200/s | 0.22× |"]
    ingest = next(line for line in lines if line.startswith("| ingest"))
    assert "0.8× the FTS5 limit = 4,000 entries/s" in ingest and ingest.endswith("| 0.03× |")
    # warm: 0.3 × 20 s = 6 s allowed; 14 s of CPU on 2 cores take at least 7 s
    warm = next(line for line in lines if line.startswith("| warm poll"))
    assert warm == "| warm poll, feeds only | ≤ 0.3× reader = 6.0 s | 12.0 s | 14.0 s → ≥ 7.0 s | 5.0 s → ≥ 5.0 s | 0.86× |"
    assert any(line.startswith("For scale: reader's cold poll used 5.00 ms of CPU per entry") for line in lines)
    memory = next(line for line in lines if line.startswith("Memory before any work"))
    assert "holds 60 MB" in memory and "peaks at 90 MB" in memory and "page cache grows to 34 MB" in memory
    assert "That is 184 MB" in memory  # 60 + 90 + 32 MiB (33.6 MB)


def test_no_bounds_without_the_threads_cpu():
    # results of runs from before the per-thread figures: no section, no error
    assert not any(line.startswith("|") for line in _bounds(_results(writer=None)))


def test_thread_cpu_reads_the_cpu_a_thread_used_when_it_ends():
    timer = ipnews_run.ThreadCpu()

    def busy(until: float) -> None:
        while time.thread_time() < until:
            pass

    thread = threading.Thread(target=timer._timed("writer", busy), args=(0.05,))
    thread.start()
    thread.join()
    assert 0.05 <= timer.seconds["writer"] < 1.0
