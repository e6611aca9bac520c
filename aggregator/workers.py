"""Parse jobs and the pool that runs them: where a poll's CPU work happens.

A poll's Python work is parsing, normalizing, fingerprinting and building
the full-text index's text: all pure functions of the fetched bytes. The
event loop must stay free for the network and the archive's writer thread
for SQLite, so these jobs run in worker processes (the second core), and
hand back plain records: the articles, what the archive derives from each
(:class:`aggregator.derived.Derived`) and the response compressed for its
snapshot. With no worker processes (small runs, tests) the same jobs run in
a thread.

Every job returns, or raises a :class:`SourceError`; anything else a parser
raises is a bug, reported by the caller for that source only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import functools
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .types import Article, FetchedArticle, FetchResult, Source

log = logging.getLogger("ipnews")

SNAPSHOT_LEVEL = 6  # zlib level of raw snapshots: they are written once and kept for years
POOL_MIN_SOURCES = 32  # fewer sources than this: worker start-up (~1 s) costs more than it saves


@dataclass(frozen=True)
class ParsedFeed:
    articles: list[FetchedArticle]
    warnings: list[str]
    unchanged: list[str] = field(default_factory=list)  # digests of entries the archive holds as they are


def _pack(result: FetchResult) -> bytes:
    """The response's bytes as its snapshot keeps them: the server's own gzip when the fetcher
    kept it (no work), else zlib (``Archive.snapshot`` reads either)."""
    return result.gzip if result.gzip is not None else zlib.compress(result.content, SNAPSHOT_LEVEL)


def feed_job(result: FetchResult, source: Source, host_aliases: Mapping[str, str],
             known: Mapping[str, str] | None = None, known_digests: Mapping[str, str] | None = None) -> ParsedFeed:
    """Parse a fetched feed and derive what the archive stores of its new or changed articles
    (``known``: item key → stored content hash, see derived.derive_unless_known).

    ``known_digests`` (entry digest → article id, see Archive.known_digests) are the entries
    the archive holds exactly as this feed gives them: they are not normalized again, and
    come back as ``unchanged``. The response is compressed for its snapshot only if some
    article may be new or changed."""
    from .derived import derive_unless_known
    from .sources.feed import parse_feed_report

    context = repr(sorted(host_aliases.items())) if host_aliases else ""
    report = parse_feed_report(result.content, result.headers, source, result.final_url, known_digests, context)
    derived = [derive_unless_known(a, host_aliases, known or {}) for a in report.articles]
    packed = _pack(result) if any(d.complete for d in derived) else None
    items = [FetchedArticle(a, result, None, d, packed, digest)
             for a, d, digest in zip(report.articles, derived, report.digests, strict=True)]
    return ParsedFeed(items, list(report.warnings), list(report.unchanged))


def list_job(result: FetchResult, source: Source):
    """Parse one news list page (entries and the next page's URL)."""
    from .sources.page import parse_list_page

    return parse_list_page(result.content, result.headers, source, result.final_url)


def article_job(result: FetchResult, source: Source, entry: Any, context: Mapping[str, Any] | None,
                host_aliases: Mapping[str, str]) -> FetchedArticle:
    """Parse one article page reached from a list entry, with its derived data."""
    from .derived import derive
    from .sources.page import parse_article_page

    article: Article = parse_article_page(result.content, result.headers, source, result.final_url, entry)
    return FetchedArticle(article, result, context, derive(article, host_aliases), _pack(result))


def detached_feed_job(result: FetchResult, source: Source, host_aliases: Mapping[str, str],
                      known: Mapping[str, str] | None = None,
                      known_digests: Mapping[str, str] | None = None) -> ParsedFeed:
    """:func:`feed_job` for a worker process: the articles come back without their response.

    The caller holds the response already (it sent it); pickling it back would put a second copy
    of every body through the pipe and into the caller's memory. :func:`attach` puts it back."""
    parsed = feed_job(result, source, host_aliases, known, known_digests)
    return ParsedFeed([replace(f, response=None) for f in parsed.articles], parsed.warnings, parsed.unchanged)


def detached_article_job(result: FetchResult, source: Source, entry: Any, context: Mapping[str, Any] | None,
                         host_aliases: Mapping[str, str]) -> FetchedArticle:
    """:func:`article_job` without the response in what it returns (see :func:`detached_feed_job`)."""
    return replace(article_job(result, source, entry, context, host_aliases), response=None)


def attach(items: list[FetchedArticle], result: FetchResult) -> list[FetchedArticle]:
    """The articles of a detached job with the response they were parsed from (one object for
    all, so the archive stores one snapshot)."""
    return [replace(f, response=result) for f in items]


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Any:
    """glibc's malloc_trim, or None (another C library)."""
    try:
        libc = ctypes.CDLL("libc.so.6")  # not find_library: it forks ldconfig
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_last_trim = 0.0


def trim_heap(every: float = 0.5) -> None:
    """Give the C heap's free pages back to the system, at most once per ``every`` seconds.

    Bodies, parsed texts and pickles are mostly too big for Python's small-object allocator and
    too small for their own mmap, so they come from malloc's heaps; freed, they leave holes that
    glibc only returns from the top of a heap. Left alone, the process's RSS ratchets up to the
    fragmented size of its busiest moment and stays there; malloc_trim(0) returns every free
    page (MADV_DONTNEED) and costs about a millisecond.
    """
    global _last_trim
    now = time.monotonic()
    if now - _last_trim < every:
        return
    _last_trim = now
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _in_worker(job: Callable[..., Any], *args: Any) -> Any:
    """Run a job in a worker process, then trim the worker's heap (see trim_heap)."""
    try:
        return job(*args)
    finally:
        trim_heap()


def _warm_up() -> None:
    """Import the parsers once per worker, before the first job arrives; leave with the parent."""
    _exit_with_parent()
    from . import derived  # noqa: F401
    from .sources import feed, page  # noqa: F401


def _exit_with_parent() -> None:
    """End this worker as soon as the process that started it is gone.

    A parent killed outright (SIGKILL, the OOM killer) cannot shut its pool down, and a worker
    in the middle of a job, or with jobs still in the pipe, went on alone for minutes. A daemon
    thread waits on the parent's sentinel (readable once the parent has exited) and exits."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="ipnews-parent-watch", daemon=True).start()


def default_workers() -> int:
    """One parse process per core beyond the first, at least one: the first core runs the
    event loop and the SQLite writer."""
    return max(1, (os.cpu_count() or 1) - 1)


class ParsePool:
    """Runs parse jobs in worker processes, or in threads when ``workers`` is 0.

    Worker processes are spawned, not forked: the parent has threads (the
    archive writer, httpx) that a fork would copy in an unknown state. A
    worker that dies (killed, out of memory) fails only the jobs it had;
    the pool is rebuilt for the next ones.
    """

    def __init__(self, workers: int):
        self.workers = workers
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_warm_up)
        return self._executor

    async def run(self, job: Callable[..., Any], *args: Any) -> Any:
        if self.workers <= 0:
            return await asyncio.to_thread(job, *args)
        try:
            executor = self._pool()
            future = executor.submit(_in_worker, job, *args)
        except (OSError, RuntimeError) as e:  # no processes here (a sandbox, a script without a main guard)
            log.warning("cannot start parse worker processes (%s); parsing in threads instead",
                        str(e).strip().splitlines()[0])
            self.close()
            self.workers = 0
            return await asyncio.to_thread(job, *args)
        try:
            return await asyncio.wrap_future(future)
        except concurrent.futures.process.BrokenProcessPool:
            if self._executor is executor:
                log.warning("a parse worker died; starting new ones")
                executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
            raise

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
