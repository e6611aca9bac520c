"""One ipnews poll, in a process of its own (so its peak RSS is its own), printed as JSON.

    python -m benchmarks.ipnews_run --config feeds.yaml --db archive.db [--profile out.html]

Polls every source of the config now (``run_fetch(include_not_due=True)``, as
``ipnews fetch --all`` does) with the config's defaults (per_host 2). Reports
the wall time of the poll, its CPU time (this process and its parse workers),
the outcome counts, what the archive holds afterwards, and the memory: this
process's peak RSS (VmHWM), each worker's, their sum, and the peaks of the RSS
and of the PSS summed over this process and its children at one moment,
sampled every 50 ms from /proc (see TreeRss for what each one means).

The sampling runs in a process of its own (``--sample PID``), not in a thread of
the poll's: reading /proc every 50 ms is Python work that took the poll's GIL,
about 3.8 s of the main process's CPU in a 2,000-source cold poll, which reader's
run (measured by its own VmHWM) does not pay.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path


def peak_rss_bytes() -> int:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that over fork and exec, so a
    child started by a big parent would report the parent's peak."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _status_kib(pid: int, *fields: str) -> dict[str, int]:
    """Fields of /proc/<pid>/status in KiB (0 for a process gone)."""
    found = dict.fromkeys(fields, 0)
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                name = line.split(":", 1)[0]
                if name in found:
                    found[name] = int(line.split()[1])
    except OSError:
        pass
    return found


def _pss_kib(pid: int) -> int:
    """Proportional set size: a page shared by n processes counts 1/n (libpython, the shared
    libraries and the pages a spawned child shares with nothing are counted once in a sum)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _role(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    if "resource_tracker" in cmd:
        return "resource_tracker"
    if "spawn_main" in cmd or "forkserver" in cmd:
        return "worker"
    return "other"


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                found.extend(int(p) for p in f.read().split())
    except OSError:
        pass
    return found


class TreeRss:
    """Samples this process and its descendants every ``interval`` seconds.

    Keeps three views of the peak, which answer different questions:

    - ``peak_kib``: the peak of the RSS summed over the processes at one moment. Peaks of
      different processes need not coincide, so this is what the machine had to provide at
      most (up to the sampling interval), but a page shared by two processes counts twice.
    - ``peak_pss_kib``: the same with PSS (each shared page split between its sharers): the
      closest to the memory the poll really took.
    - ``hwm_kib``: each process's own VmHWM (the kernel's exact peak RSS; the last value seen
      before the process ended). Their sum is the old "summed" figure: an upper bound that
      adds peaks of different moments and counts shared pages once per process.
    """

    def __init__(self, root: int, interval: float = 0.05, pss_every: int = 4):
        import threading

        self.root = root  # the poll's process; the sampler itself (a child of it) is left out
        self.interval = interval
        self.pss_every = pss_every  # smaps_rollup walks the page tables: every 4th sample
        self.peak_kib = 0
        self.peak_pss_kib = 0
        self.hwm_kib: dict[int, int] = {}
        self.roles: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me, root, n = os.getpid(), self.root, 0
        while not self._stop.is_set():
            pids, total, pss, todo = set(), 0, 0, [root]
            while todo:
                pid = todo.pop()
                if pid in pids or pid == me:
                    continue
                pids.add(pid)
                status = _status_kib(pid, "VmRSS", "VmHWM")
                total += status["VmRSS"]
                if status["VmHWM"]:
                    # The last value, not the largest: a spawned child is a fork of this process
                    # until its exec, which starts a new VmHWM (and a new command line).
                    self.hwm_kib[pid] = status["VmHWM"]
                    self.roles[pid] = "main" if pid == root else _role(pid)
                if n % self.pss_every == 0:
                    pss += _pss_kib(pid)
                todo.extend(_children(pid))
            self.peak_kib = max(self.peak_kib, total)
            self.peak_pss_kib = max(self.peak_pss_kib, pss)
            n += 1
            self._stop.wait(self.interval)

    def hwm_by_role(self) -> dict[str, int]:
        """Peak RSS (VmHWM) in bytes per kind of process (the largest, if several of a kind)."""
        out: dict[str, int] = {}
        for pid, kib in self.hwm_kib.items():
            role = self.roles.get(pid, "other")
            out[role] = max(out.get(role, 0), kib * 1024)
        return out

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> dict:
        return {"peak_kib": self.peak_kib, "peak_pss_kib": self.peak_pss_kib,
                "hwm_kib": {str(pid): kib for pid, kib in self.hwm_kib.items()}, "by_role": self.hwm_by_role()}


def sample(root: int) -> None:
    """``--sample PID``: sample PID's tree until stdin closes, then print TreeRss's report."""
    with TreeRss(root) as tree:
        print("ready", flush=True)
        sys.stdin.read()
    json.dump(tree.report(), sys.stdout)
    sys.stdout.write("\n")


class TreeSampler:
    """TreeRss of this process's tree, run in a child process (see the module's docstring)."""

    def __enter__(self) -> TreeSampler:
        import subprocess

        self._proc = subprocess.Popen([sys.executable, "-m", "benchmarks.ipnews_run", "--sample", str(os.getpid())],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                      cwd=Path(__file__).resolve().parent.parent)
        assert self._proc.stdout.readline().strip() == "ready"
        return self

    def stop(self) -> dict:
        """Stop sampling and reap the sampler: call it after reading the children's CPU time,
        which would otherwise count the sampler's."""
        out, _ = self._proc.communicate("")
        return json.loads(out)

    def __exit__(self, *exc: object) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


class ThreadCpu:
    """CPU time of the poll's own threads: the event loop (this thread), the archive writer and
    the checkpointer, each read with ``time.thread_time()`` as its thread ends.

    The writer is the one stage a poll cannot spread over cores (SQLite has one writer), so its
    CPU per entry bounds the entries per second any scheduling could reach; the report sets it
    against the targets. Reading it in the threads themselves costs nothing while they run
    (the sampler process cannot name a process's threads: Python does not name them for the OS).
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def _timed(self, role: str, run):
        def timed(*args, **kwargs):
            try:
                return run(*args, **kwargs)
            finally:
                self.seconds[role] = self.seconds.get(role, 0.0) + time.thread_time()
        return timed

    def install(self) -> None:
        from aggregator.pipeline import ArchiveWriter
        from aggregator.store import Checkpointer

        ArchiveWriter._work = self._timed("writer", ArchiveWriter._work)
        Checkpointer._run = self._timed("checkpointer", Checkpointer._run)


def rss_bytes() -> int:
    """This process's RSS now (VmRSS)."""
    return _status_kib(os.getpid(), "VmRSS")["VmRSS"] * 1024


def archive_counts(db) -> dict:
    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    return {
        "articles": one("SELECT count(*) FROM articles"),
        "article_sources": one("SELECT count(*) FROM article_sources"),
        "revisions": one("SELECT count(*) FROM article_revisions"),
        "snapshots": one("SELECT count(*) FROM snapshots"),
        "fts_rows": one("SELECT count(*) FROM articles_fts"),
    }


def db_bytes(path: Path) -> int:
    return sum(Path(str(path) + s).stat().st_size for s in ("", "-wal") if Path(str(path) + s).exists())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, help=argparse.SUPPRESS)  # the memory sampler (TreeSampler)
    parser.add_argument("--config")
    parser.add_argument("--db")
    parser.add_argument("--profile", help="write a pyinstrument profile here (.html or .txt)")
    parser.add_argument("--interval", type=float, default=0.001, help="pyinstrument sampling interval")
    args = parser.parse_args()
    if args.sample:
        sample(args.sample)
        return
    if not (args.config and args.db):
        parser.error("--config and --db are required")

    started_process = time.perf_counter()
    from aggregator.config import load_config
    from aggregator.pipeline import run_fetch
    from aggregator.store import CACHE_KIB, Archive

    import_seconds = time.perf_counter() - started_process
    threads = ThreadCpu()
    threads.install()
    config = load_config(args.config)
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=args.interval, async_mode="disabled")
    with Archive(args.db) as archive:
        before = archive_counts(archive.db)
        rss_before_poll = rss_bytes()  # imports, the config and the open archive: before any work
        if profiler:
            profiler.start()
        with TreeSampler() as sampler:  # started first: its start-up (~35 ms) is not the poll's time
            started = time.perf_counter()
            cpu_started = time.process_time()
            loop_started = time.thread_time()
            children_started = resource.getrusage(resource.RUSAGE_CHILDREN)
            summary = run_fetch(config, archive, include_not_due=True)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            loop_cpu = time.thread_time() - loop_started
            children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the parse workers, reaped by now
            tree = sampler.stop()  # reaped after the reading above: its CPU is not the poll's
        children_cpu = (children.ru_utime - children_started.ru_utime) + (children.ru_stime - children_started.ru_stime)
        if profiler:
            profiler.stop()
        after = archive_counts(archive.db)
    statuses: dict[str, int] = {}
    for outcome in summary.outcomes:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    failures = [f"{o.source_id}: {o.error}" for o in summary.failed][:5]
    warnings = [f"{o.source_id}: {o.warning}" for o in summary.outcomes if o.warning][:5]
    self_rss = peak_rss_bytes()
    # ru_maxrss of the children is no use: a spawned worker is fork+exec of this process and Linux
    # carries ru_maxrss over both, so it reports at least this process's RSS at the spawn.
    child_rss = sum(kib for pid, kib in tree["hwm_kib"].items() if int(pid) != os.getpid()) * 1024
    result = {
        "seconds": seconds,
        "cpu_seconds": cpu + children_cpu,
        "cpu_seconds_main": cpu,
        "cpu_seconds_workers": children_cpu,
        # the main process's CPU by thread; "other" is the rest (archive reads, the pool's result
        # and job threads, the HTTP client's DNS threads)
        "cpu_seconds_threads": {"event_loop": loop_cpu, **threads.seconds,
                                "other": cpu - loop_cpu - sum(threads.seconds.values())},
        "import_seconds": import_seconds,
        "polled": summary.polled,
        "seen": sum(o.seen for o in summary.outcomes),
        "new": summary.new,
        "changed": summary.changed,
        "statuses": statuses,
        "failures": failures,
        "warnings": warnings,
        "before": before,
        "after": after,
        "peak_rss_bytes": self_rss,
        "rss_before_poll_bytes": rss_before_poll,
        "write_cache_bytes": CACHE_KIB * 1024,  # the writer's page cache at its fullest
        "peak_rss_children_bytes": child_rss,
        "peak_rss_tree_bytes": tree["peak_kib"] * 1024,
        "peak_pss_tree_bytes": tree["peak_pss_kib"] * 1024,
        # the old "summed" figure: every process's own peak RSS added up (peaks of different moments)
        "peak_rss_summed_hwm_bytes": self_rss + child_rss,
        "peak_rss_by_process_bytes": tree["by_role"],
        "db_bytes": db_bytes(Path(args.db)),
        "pid": os.getpid(),
    }
    if profiler:
        out = Path(args.profile)
        if out.suffix == ".html":
            out.write_text(profiler.output_html(), encoding="utf-8")
        else:
            out.write_text(profiler.output_text(unicode=True, color=False, show_all=False), encoding="utf-8")
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
