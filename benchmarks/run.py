"""Run the whole benchmark of issue #7 and write docs/performance.md.

    .venv/bin/python -m benchmarks.run --sources 2000 --latency 0.05 --repeat 3 --out docs/performance.md
    .venv/bin/python -m benchmarks.run --quick          # a smoke run of the same steps, ~30 s

Steps (each measured program runs in a process of its own, so its peak RSS
is its own and nothing of the orchestrator's memory or GIL is in it):

1. corpus   build (or reuse from benchmarks/out/) the seeded corpus;
2. server   serve it from benchmarks.server on H loopback addresses;
3. ipnews   cold poll (phase 1) into a fresh archive, switch the server to
            phase 2, warm poll; check the archive against the ground truth;
            ``--repeat`` times, medians reported;
4. reader   the same on the feed sources, in benchmarks/.venv-reader, 8 workers;
5. limit    raw FTS5 insert rate (benchmarks.fts_limit);
6. ingest   the cold poll's work without the network (benchmarks.ingest);
7. search   100k and 1M-article archives (built once, cached), search
            p50/p95 and a full export (benchmarks.search_bench);
8. demo     ``ipnews demo`` end to end;
9. profile  (``--profile``) one more cold poll under py-spy, summed per function.

``--code HEAD`` (the default) measures the committed package: ``git archive HEAD``
is unpacked into benchmarks/out/code-<sha>/ and put first on PYTHONPATH, so
edits in progress in the work tree cannot change the figures mid-run.
``--code worktree`` measures the files as they are.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

from . import corpus as corpus_module
from .reader_run import ensure_reader_venv, run_reader
from .server import ServerProcess

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
FINDINGS = HERE / "findings.md"


# --------------------------------------------------------------------------- plumbing


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def snapshot_code(rev: str) -> tuple[Path | None, str]:
    """Unpack ``aggregator/`` at ``rev`` into benchmarks/out/code-<sha>; (None, sha+dirty) for the work tree."""
    sha = subprocess.run(["git", "rev-parse", "HEAD" if rev == "worktree" else rev], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip()
    if rev == "worktree":
        dirty = subprocess.run(["git", "status", "--porcelain", "aggregator"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return None, sha[:12] + (" + uncommitted changes" if dirty else "")
    target = OUT / f"code-{sha[:12]}"
    if not (target / "aggregator" / "__init__.py").exists():
        archive = subprocess.run(["git", "archive", sha, "aggregator"], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
    return target, sha[:12]


class Runner:
    """Runs benchmark modules in subprocesses with the chosen ipnews code first on the path."""

    def __init__(self, code_dir: Path | None):
        self.env = os.environ.copy()
        paths = [str(code_dir)] if code_dir else []
        self.env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT)])
        self.env.pop("PYTHONSTARTUP", None)

    def json(self, module: str, *args: str, timeout: float | None = None) -> dict:
        done = subprocess.run([sys.executable, "-m", module, *args], cwd=OUT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not done.stdout.strip():
            raise RuntimeError(f"{module} failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.splitlines()
    total = memory[1].split()[1] if len(memory) > 1 else "?"
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "memory": total, "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version, "platform": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": os.getloadavg()[0],
    }


# --------------------------------------------------------------------------- the steps


def run_polls(run: Runner, server: ServerProcess, corpus, *, kinds, repeat: int, tag: str,
              timeout: float, profile: bool = False) -> dict:
    config = OUT / f"{tag}.yaml"
    config.write_text(corpus_module.config_yaml(corpus, server.port, kinds), encoding="utf-8")
    runs = []
    for i in range(repeat):
        db = OUT / f"{tag}.db"
        remove_db(db)
        one = {}
        for phase, name in ((1, "cold"), (2, "warm")):
            server.phase(phase)
            server.reset()
            log(f"ipnews {tag} {name} poll ({i + 1}/{repeat})")
            try:
                result = run.json("benchmarks.ipnews_run", "--config", str(config), "--db", str(db),
                                  timeout=timeout)
            except subprocess.TimeoutExpired:
                one[name] = {"timeout": timeout, "expected": corpus.expected_articles(phase, kinds)}
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as partial:
                    one[name]["articles_at_timeout"] = partial.execute("SELECT count(*) FROM articles").fetchone()[0]
                log(f"  did not finish within {timeout:.0f} s")
                break
            result["server"] = server.stats()
            result["server"].pop("per_host")
            result["checks"] = check_ipnews(corpus, result, phase, kinds)
            one[name] = result
            log(f"  {result['seconds']:.1f} s, {result['seen']} entries, {result['new']} new, "
                f"peak/host {result['server']['total']['max_peak_in_flight_per_host']}, "
                f"checks {'ok' if all(c['ok'] for c in result['checks'].values()) else 'FAILED'}")
        runs.append(one)
        server.phase(1)
    out = {"runs": runs}
    if profile:
        from .profile import record

        db = OUT / f"{tag}-profile.db"
        remove_db(db)
        server.phase(1)
        server.reset()
        log(f"ipnews {tag} cold poll under py-spy")
        target = OUT / f"profile-{tag}-cold.txt"
        record(target, [sys.executable, "-m", "benchmarks.ipnews_run", "--config", str(config), "--db", str(db)],
               cwd=OUT, env=run.env, timeout=timeout * 1.5)
        out["profile"] = target.read_text(encoding="utf-8") if target.exists() else None
    return out


def check_ipnews(corpus, result: dict, phase: int, kinds) -> dict:
    after, before = result["after"], result["before"]
    checks = {
        "articles": (after["articles"], corpus.expected_articles(phase, kinds)),
        "article_sources": (after["article_sources"], corpus.expected_links(phase, kinds)),
        "fts_rows": (after["fts_rows"], after["articles"]),
        "failed_sources": (result["statuses"].get("failed", 0), 0),
    }
    if phase == 2:
        checks["revisions_in_warm_poll"] = (after["revisions"] - before["revisions"],
                                            corpus.expected_revisions(kinds))
    return {name: {"got": got, "expected": want, "ok": got == want} for name, (got, want) in checks.items()}


def run_reader_polls(server: ServerProcess, corpus, *, repeat: int, workers: int, timeout: float) -> dict:
    urls = OUT / "reader-urls.txt"
    urls.write_text("\n".join(corpus_module.feed_urls(corpus, server.port)) + "\n", encoding="utf-8")
    runs = []
    for i in range(repeat):
        db = OUT / "reader.db"
        remove_db(db)
        one = {}
        for phase, name in ((1, "cold"), (2, "warm")):
            server.phase(phase)
            server.reset()
            log(f"reader {name} poll ({i + 1}/{repeat})")
            result = run_reader(db, urls, workers=workers, timeout=timeout)
            result["server"] = server.stats()
            result["server"].pop("per_host")
            expected = corpus.expected_entries(phase)
            result["checks"] = {"entries": {"got": result["entries_after"], "expected": expected,
                                            "ok": result["entries_after"] == expected}}
            one[name] = result
            log(f"  {result['seconds']:.1f} s, {result['new_entries']} new entries, "
                f"peak/host {result['server']['total']['max_peak_in_flight_per_host']}")
            if name == "cold" and i == repeat - 1:
                # reader's poll leaves its archive unsearchable until update_search; ipnews's poll
                # indexes as it stores. Timed on a copy, so the warm poll below is reader's own.
                copy = OUT / "reader-index.db"
                remove_db(copy)
                for suffix in ("", "-wal"):
                    if Path(f"{db}{suffix}").exists():
                        shutil.copyfile(f"{db}{suffix}", f"{copy}{suffix}")
                log("reader search index of the cold poll's archive (update_search, on a copy)")
                result["search_index"] = run_reader(copy, urls, workers=workers, index_only=True, timeout=timeout)
                remove_db(copy)
                log(f"  {result['search_index']['search_index_seconds']:.1f} s")
        runs.append(one)
        server.phase(1)
    return {"runs": runs}


def run_demo(run: Runner) -> dict:
    db = OUT / "demo.db"
    remove_db(db)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "import sys; from aggregator.cli import main; sys.exit(main())",
                           "demo", "--db", str(db)], cwd=OUT, env=run.env, capture_output=True, text=True,
                          timeout=300)
    return {"seconds": time.perf_counter() - started, "exit": done.returncode,
            "tail": done.stdout.strip().splitlines()[-3:] if done.stdout else done.stderr[-500:]}


def run_search(run: Runner, rows: int, *, samples: int, timeout: float) -> dict:
    log(f"search archive of {rows:,} articles: build (or reuse)")
    build = run.json("benchmarks.search_bench", "build", "--rows", str(rows), "--out", str(OUT), timeout=timeout)
    built = "cached" if build.get("cached") else f"built in {build['seconds']:.0f} s"
    log(f"  {built}; measuring")
    measured = run.json("benchmarks.search_bench", "measure", build["path"], "--samples", str(samples),
                        "--warm-cache", timeout=timeout)
    log(f"  ranked+filters p95 {measured['ranked_office_date']['p95_ms']:.0f} ms, "
        f"newest p95 {measured['newest_first']['p95_ms']:.0f} ms; exporting")
    exported = run.json("benchmarks.search_bench", "export", build["path"], timeout=timeout)
    return {"build": build, "search": measured, "export": exported}


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ipnews benchmarks (issue #7)")
    parser.add_argument("--sources", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=None, help="default: sources / 20")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--code", default="HEAD", help="HEAD (default), a commit, or 'worktree'")
    parser.add_argument("--search-rows", default="100000,1000000", help="archive sizes for search; '' skips")
    parser.add_argument("--search-samples", type=int, default=24)
    parser.add_argument("--scale", default="", help="extra source counts for the scaling table, e.g. 200,10000")
    parser.add_argument("--workers", type=int, default=8, help="reader's workers")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed for one poll")
    parser.add_argument("--profile", action="store_true",
                        help="one more cold poll (of the smallest corpus) and the ingest under py-spy")
    parser.add_argument("--skip-reader", action="store_true")
    parser.add_argument("--ingest-max", type=int, default=10**9,
                        help="measure ingest only for corpora of at most this many sources")
    parser.add_argument("--no-feeds-only", action="store_true", help="skip ipnews's feeds-only polls")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (under a minute)")
    parser.add_argument("--results", help="write the report from a saved results JSON, run nothing")
    args = parser.parse_args(argv)
    if args.quick:
        args.sources, args.latency, args.repeat, args.no_feeds_only = 24, 0.01, 1, True
        args.search_rows, args.search_samples, args.scale = "2000", 6, ""
        if args.out == parser.get_default("out"):
            args.out = str(OUT / "performance-quick.md")
    OUT.mkdir(parents=True, exist_ok=True)

    if args.results:
        results = json.loads(Path(args.results).read_text())
        Path(args.out).write_text(render(results), encoding="utf-8")
        log(f"wrote {args.out}")
        return

    started = time.perf_counter()
    code_dir, commit = snapshot_code(args.code)
    run = Runner(code_dir)
    results: dict = {"args": vars(args), "machine": machine(), "commit": commit, "started": time.time()}
    log(f"ipnews {commit}; {args.sources} sources, latency {args.latency * 1000:.0f} ms, repeat {args.repeat}")

    if not args.skip_reader:
        results["reader_version"] = ensure_reader_venv()

    log("raw FTS5 insert rate")
    results["fts_limit"] = run.json("benchmarks.fts_limit", "--rows", "1000" if args.quick else "20000",
                                    "--repeat", "1" if args.quick else "3")

    sizes = sorted({args.sources, *(int(s) for s in args.scale.split(",") if s.strip())})
    results["scale"] = {}
    for n in sizes:
        main_size = n == args.sources
        log(f"corpus of {n} sources")
        corpus, corpus_path, build_seconds = corpus_module.load_or_build(OUT, n, args.hosts, args.seed)
        entry: dict = {"corpus": corpus.stats(), "corpus_build_seconds": build_seconds}
        log(f"  {entry['corpus']['feed_entries']} feed entries, {entry['corpus']['articles_phase1']} articles")
        if n <= args.ingest_max:
            log("  ingest without network")
            try:
                entry["ingest"] = run.json("benchmarks.ingest", str(corpus_path), timeout=args.timeout)
            except (subprocess.TimeoutExpired, RuntimeError) as e:
                entry["ingest"] = {"error": str(e)[-500:]}
        with ServerProcess(corpus_path, args.latency) as server:
            entry["ipnews"] = run_polls(run, server, corpus, kinds=("feed", "page"),
                                        repeat=args.repeat if main_size else 1, tag=f"ipnews-{n}",
                                        timeout=args.timeout, profile=args.profile and n == sizes[0])
            if main_size and not args.no_feeds_only:
                entry["ipnews_feeds"] = run_polls(run, server, corpus, kinds=("feed",), repeat=args.repeat,
                                                  tag=f"ipnews-feeds-{n}", timeout=args.timeout)
            if main_size and not args.skip_reader:
                entry["reader"] = run_reader_polls(server, corpus, repeat=args.repeat, workers=args.workers,
                                                   timeout=args.timeout)
        del corpus
        results["scale"][str(n)] = entry
        _save(results)

    results["search"] = {}
    for rows in [int(r) for r in args.search_rows.split(",") if r.strip()]:
        results["search"][str(rows)] = run_search(run, rows, samples=args.search_samples, timeout=7200)
        _save(results)

    log("ipnews demo")
    results["demo"] = run_demo(run)
    results["seconds"] = time.perf_counter() - started
    path = _save(results)
    Path(args.out).write_text(render(results), encoding="utf-8")
    log(f"results in {path}; report in {args.out} ({results['seconds'] / 60:.1f} min)")


def _save(results: dict) -> Path:
    stamp = datetime.fromtimestamp(results["started"]).strftime("%Y%m%d-%H%M%S")
    path = OUT / f"results-{stamp}{'-quick' if results['args']['quick'] else ''}.json"
    path.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the report

from .report import render  # noqa: E402  (kept apart: the report is long)

if __name__ == "__main__":
    main()
