"""The one module that performs I/O in order. The flow of one run:

    config ─▶ scheduler.is_due ─▶ fetch (conditional GET, per-host limit)
        ─▶ sources.feed.parse_feed          (kind: feed)
        ─▶ sources.page.parse_list_page ─▶ fetch new article pages
               ─▶ sources.page.parse_article_page   (kind: page)
        ─▶ store.save_source_results (one transaction per source; FTS triggers index it)
        ─▶ scheduler.next_due_* saved with the source's state

Each source runs as its own task; a source's failure is recorded for that
source and never stops the others. Three places do the work, so none waits
for another: the event loop only does network I/O; parsing (with everything
the archive derives from an article) runs in worker processes
(:mod:`aggregator.workers`); the archive is read and written by one writer
thread that owns the SQLite connection (:class:`ArchiveWriter`).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import contextvars
import functools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx

from .config import Config
from .exceptions import AggregatorError, ConfigError, FetchError, ParseError, SourceError, StorageError
from .fetch import Fetcher, build_user_agent
from .normalize import iso_utc
from .scheduler import is_due, next_due_after_failure, next_due_after_success, parse_iso
from .store import DEFAULT_KEEP_SNAPSHOTS, Archive, Checkpointer, FetchRecord, SourceState
from .types import FetchedArticle, FetchResult, Source
from .urls import canonical_url
from .workers import (
    POOL_MIN_SOURCES,
    ParsePool,
    attach,
    default_workers,
    detached_article_job,
    detached_feed_job,
    list_job,
    trim_heap,
)

log = logging.getLogger("ipnews")

HTML_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
GROUP_COMMIT_SOURCES = 32  # at most this many sources' saves share one commit
# Fetched bytes of the sources between their first parse and their save, at most (a source bigger
# than this runs alone). What a source holds meanwhile (the responses, their parsed articles with
# bodies, HTML, index text, fingerprints, the compressed snapshots) is about 7× its response bytes,
# and the writer is the slowest stage, so without a bound what waits for it grows to `concurrency`
# sources. 4 MiB is 25-30 sources of the benchmark corpus: enough to fill a group commit.
INFLIGHT_BYTES = 4 << 20
_STOP = object()  # tells the archive writer thread to finish


@dataclass(frozen=True)
class SourceOutcome:
    """How one source's poll ended."""

    source_id: str
    status: str  # "ok" | "not-modified" | "failed"
    seen: int = 0
    new: int = 0
    changed: int = 0
    http_status: int | None = None
    error: str | None = None
    warning: str | None = None
    seconds: float = 0.0


@dataclass
class RunSummary:
    run_id: str
    outcomes: list[SourceOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def polled(self) -> int:
        return len(self.outcomes)

    @property
    def new(self) -> int:
        return sum(o.new for o in self.outcomes)

    @property
    def changed(self) -> int:
        return sum(o.changed for o in self.outcomes)

    @property
    def failed(self) -> list[SourceOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def line(self) -> str:
        return (
            f"polled {self.polled} sources in {self.seconds:.1f} s: {self.new} new, "
            f"{self.changed} changed, {len(self.failed)} failed"
        )


def permanent_redirect(result: FetchResult) -> str | None:
    """Where the URL moved for good: the end of the leading run of 301/308 hops, if any."""
    target = None
    for status, location in result.redirects:
        if status not in (301, 308):
            break
        target = location
    return target


def entry_to_json(entry) -> dict:
    """A list entry as plain data, stored with the article page's snapshot for re-parsing."""
    date = entry.date
    return {"url": entry.url, "title": entry.title, "date_raw": entry.date_raw,
            "date": {"value": date.value, "has_time": date.has_time, "raw": date.raw} if date else None}


def entry_from_json(data: dict):
    from .dates import ParsedDate
    from .sources.page import ListEntry

    date = data.get("date")
    return ListEntry(url=data["url"], title=data.get("title") or "", date=ParsedDate(**date) if date else None,
                     date_raw=data.get("date_raw"))


def select_sources(
    config: Config,
    archive: Archive,
    *,
    source_ids: Iterable[str] = (),
    include_not_due: bool = False,
    now: datetime,
) -> list[Source]:
    """The sources this run polls: the named ones, else every enabled source that is due."""
    wanted = list(source_ids)
    if wanted:
        return [config.source(sid) for sid in wanted]
    states = archive.source_states()
    chosen = []
    for source in config.sources:
        if not source.enabled:
            continue
        state = states.get(source.id)
        if include_not_due or state is None or is_due(state.next_due, state.retry_after, now):
            chosen.append(source)
    return chosen


def build_fetcher(config: Config, transport: httpx.AsyncBaseTransport | None = None) -> Fetcher:
    s = config.settings
    return Fetcher(
        user_agent=build_user_agent(s.contact),
        per_host=s.per_host,
        concurrency=s.concurrency,
        connect_timeout=s.connect_timeout,
        read_timeout=s.read_timeout,
        total_timeout=s.timeout,
        max_bytes=s.max_bytes,
        host_delay=s.host_delay,
        transport=transport,
    )


class ArchiveWriter:
    """The one thread that touches the archive while a poll runs.

    A save (SQLite, the FTS index, clustering) takes milliseconds of CPU; on
    the event loop it would stall every socket, until servers that answered
    in time look like timeouts. Here the loop only awaits it. One thread, so
    the connection is never used by two at once and saves stay serial.

    Saves that queue up while one runs are written in one transaction, each
    in a savepoint of its own (group commit): a source's results still take
    effect whole or not at all, and a failed one rolls back alone. A kill
    loses at most the uncommitted group, whose sources' fetch state was not
    committed either, so the next run fetches them again. Without a thread
    (``threads=False``) calls run inline, for callers with nothing else to do.
    """

    def __init__(self, archive: Archive, *, threads: bool = True, group: int = GROUP_COMMIT_SOURCES):
        self.archive = archive
        self.group = group
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._reads: concurrent.futures.ThreadPoolExecutor | None = None
        self._reader: Archive | None = None
        self._checkpointer: Checkpointer | None = None
        if threads:
            self._checkpointer = Checkpointer(archive)
            self._thread = threading.Thread(target=self._work, name="ipnews-archive", daemon=True)
            self._thread.start()
            # WAL lets a second connection read while the writer writes: a poll's reads (its
            # state, the items it knows) never queue behind other sources' saves.
            self._reads = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ipnews-archive-read")

    async def read(self, method: Callable[..., Any], *args: Any) -> Any:
        """Run ``method(archive, *args)`` on a read-only connection of its own (committed data only)."""
        if self._reads is None:
            return method(self.archive, *args)

        def on_reader() -> Any:
            if self._reader is None:
                self._reader = Archive(self.archive.path, readonly=True)
                self._reader.host_aliases = self.archive.host_aliases
            return method(self._reader, *args)

        return await asyncio.get_running_loop().run_in_executor(self._reads, on_reader)

    async def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``method`` on the writer thread by itself (reads, and writes that must commit now)."""
        return await self._submit(False, method, args, kwargs)

    async def save(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a write that may share its commit with other saves queued at the same time."""
        return await self._submit(True, method, args, kwargs)

    async def _submit(self, groupable: bool, method: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        if self._thread is None:
            return method(*args, **kwargs)
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((groupable, future, functools.partial(method, *args, **kwargs)))
        return await asyncio.wrap_future(future)

    def _work(self) -> None:
        held = None  # a job taken from the queue while gathering a group, run next
        while True:
            if held is None and self._jobs.empty():
                trim_heap()  # idle: between saves, nothing waiting (see workers.trim_heap)
            job, held = held or self._jobs.get(), None
            if job is _STOP:
                return
            groupable, future, call = job
            if not groupable:
                self._run(future, call)
                continue
            group = [job]
            while len(group) < self.group:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP or not more[0]:
                    held = more
                    break
                group.append(more)
            self._run_group(group)

    @staticmethod
    def _run(future: concurrent.futures.Future, call: Callable[[], Any]) -> None:
        if not future.set_running_or_notify_cancel():
            return  # its poll was cancelled before its turn: nothing written
        ArchiveWriter._settle(future, call)

    @staticmethod
    def _settle(future: concurrent.futures.Future, call: Callable[[], Any]) -> None:
        try:
            future.set_result(call())
        except BaseException as e:
            future.set_exception(e)

    def _run_group(self, group: list) -> None:
        live = [(future, call) for _, future, call in group if future.set_running_or_notify_cancel()]
        if len(live) == 1:
            self._settle(*live[0])
            return
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self.archive.group_commit():
                for _, call in live:
                    try:
                        outcomes.append((True, call()))
                    except BaseException as e:  # rolled back to its savepoint; the others go on
                        outcomes.append((False, e))
        except BaseException as e:  # the commit itself failed: none of the group was written
            outcomes = [(False, e)] * len(live)
        for (future, _), (ok, value) in zip(live, outcomes, strict=True):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def close(self) -> None:
        """Finish the queued work (a save in progress commits or rolls back whole), then stop."""
        if self._thread is not None:
            self._jobs.put(_STOP)
            self._thread.join()
            self._thread = None
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self._reads is not None:
            self._reads.shutdown(wait=True, cancel_futures=True)
            self._reads = None
            if self._reader is not None:
                self._reader.close()


class ByteBudget:
    """Bounds the response bytes held by sources between their first parse and their save.

    A source takes its first response's bytes, waiting (first come, first served) until they
    fit, or until nothing else is held, so a source larger than the budget still runs, alone.
    Its later responses (a news list's next pages and article pages) are added without waiting:
    a source that waited for a part of its memory while holding another could deadlock with the
    others. Everything a source took is given back after its save (or failure).
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self._waiters: collections.deque[tuple[asyncio.Future, _Claim, int]] = collections.deque()

    def _fits(self, size: int) -> bool:
        return self.used == 0 or self.used + size <= self.limit

    async def take(self, claim: _Claim, size: int) -> None:
        if claim.held or (not self._waiters and self._fits(size)):
            self._grant(claim, size)
            return
        future = asyncio.get_running_loop().create_future()
        waiter = (future, claim, size)
        self._waiters.append(waiter)
        try:
            await future  # granted by _wake, which did the accounting
        except asyncio.CancelledError:
            if not future.done():
                self._waiters.remove(waiter)
                self._wake()  # the head of the line may have changed
            raise  # granted already: the claim holds it, and its owner gives it back

    def _grant(self, claim: _Claim, size: int) -> None:
        self.used += size
        claim.held += size

    def give_back(self, claim: _Claim) -> None:
        self.used -= claim.held
        claim.held = 0
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._fits(self._waiters[0][2]):
            future, claim, size = self._waiters.popleft()
            if not future.done():
                self._grant(claim, size)
                future.set_result(None)


@dataclass
class _Claim:
    """What one source's poll took of the ByteBudget."""

    held: int = 0


_claim: contextvars.ContextVar[_Claim | None] = contextvars.ContextVar("ipnews_claim", default=None)


class Poller:
    """Polls sources through one Fetcher into one Archive."""

    def __init__(
        self,
        archive: Archive,
        fetcher: Fetcher,
        *,
        run_id: str,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        on_done: Callable[[SourceOutcome], None] | None = None,
        keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS,
        writer: ArchiveWriter | None = None,
        pool: ParsePool | None = None,
        budget: ByteBudget | None = None,
    ):
        self.archive = archive
        self.budget = budget
        self.fetcher = fetcher
        self.keep_snapshots = keep_snapshots
        self.run_id = run_id
        self.clock = clock
        self.on_done = on_done
        self.writer = writer or ArchiveWriter(archive, threads=False)
        self.pool = pool or ParsePool(0)

    async def poll(self, source: Source) -> SourceOutcome:
        claim = _Claim()
        token = _claim.set(claim)  # seen by the tasks this poll starts (its article pages)
        try:
            return await self._poll(source)
        finally:
            _claim.reset(token)
            if self.budget is not None:
                self.budget.give_back(claim)

    async def _parse(self, job: Callable[..., Any], result: FetchResult, *args: Any) -> Any:
        """Run a parse job on a response, once the response's bytes fit in the budget."""
        claim = _claim.get()
        if self.budget is not None and claim is not None:
            await self.budget.take(claim, len(result.content))
        return await self.pool.run(job, result, *args)

    async def _poll(self, source: Source) -> SourceOutcome:
        started_at = self.clock()
        started = time.monotonic()
        state = await self.writer.read(Archive.source_state, source.id)
        if state.moved_to:  # it moved for good (301/308): poll the new address until the config says otherwise
            source = replace(source, url=state.moved_to)
        record = FetchRecord(run_id=self.run_id, source_id=source.id, started=iso_utc(started_at),
                             duration_ms=0, url=source.url)
        try:
            if source.kind == "page":
                result, articles, warning = await self._poll_page(source, state)
                unchanged: list[str] = []
            else:
                result, articles, warning, unchanged = await self._poll_feed(source, state)
        except SourceError as e:
            outcome = await self._record_failure(source, state, record, e, started)
        except StorageError:
            raise
        except Exception as e:  # a bug must not take the other sources down; record it loudly
            log.debug("%s: unexpected error", source.id, exc_info=True)
            error = SourceError(f"unexpected error: {type(e).__name__}: {e}", source_id=source.id, url=source.url)
            outcome = await self._record_failure(source, state, record, error, started)
        else:
            try:
                outcome = await self._record_success(source, state, record, result, articles, warning, started,
                                                     unchanged)
            except StorageError:
                raise
            except Exception as e:  # a bug while saving: nothing was committed (one transaction)
                log.debug("%s: unexpected error while saving", source.id, exc_info=True)
                error = SourceError(f"unexpected error while saving: {type(e).__name__}: {e}",
                                    source_id=source.id, url=source.url)
                outcome = await self._record_failure(source, state, record, error, started)
        if self.on_done:
            self.on_done(outcome)
        return outcome

    async def _poll_feed(
        self, source: Source, state: SourceState,
    ) -> tuple[FetchResult, list[FetchedArticle], str | None, list[str]]:
        """The feed's response, its new or changed articles (and those it must check), a warning,
        and the digests of the entries the archive holds unchanged (only marked seen)."""
        result = await self.fetcher.get(
            source.url, etag=state.etag, last_modified=state.last_modified,
            headers=source.headers, source_id=source.id, ignore_robots=source.ignore_robots,
        )
        if result.not_modified:
            return result, [], None, []
        known, digests = await self.writer.read(Archive.known_items, source.id)
        parsed = await self._parse(detached_feed_job, result, source, self.archive.host_aliases, known, digests)
        warning = "; ".join(parsed.warnings) or None  # recorded on the source, like a page source's
        return result, attach(parsed.articles, result), warning, parsed.unchanged

    async def _get_html(self, source: Source, url: str, **validators: str | None) -> FetchResult:
        return await self.fetcher.get(url, headers=source.headers, source_id=source.id, accept=HTML_ACCEPT,
                                      ignore_robots=source.ignore_robots, **validators)

    async def _poll_page(self, source: Source, state: SourceState) -> tuple[FetchResult, list[FetchedArticle], str | None]:
        assert source.list is not None
        first = await self._get_html(source, source.url, etag=state.etag, last_modified=state.last_modified)
        if first.not_modified:
            return first, [], None
        entries = []
        page_result = first
        seen_pages = {canonical_url(first.final_url)}
        for page_number in range(1, source.list.max_pages + 1):
            listing = await self._parse(list_job, page_result, source)
            entries.extend(listing.entries)
            if page_number == source.list.max_pages or not listing.next_url:
                break
            if canonical_url(listing.next_url) in seen_pages:
                break
            seen_pages.add(canonical_url(listing.next_url))
            page_result = await self._get_html(source, listing.next_url)
        if not entries:
            raise ParseError(
                f"list selector {source.list.item!r} matched nothing (recipe broken?)",
                source_id=source.id, url=source.url,
            )
        articles, warning = await self.fetch_articles(source, entries)
        return first, articles, warning

    async def fetch_articles(self, source: Source, entries) -> tuple[list[FetchedArticle], str | None]:
        """Fetch and parse the article pages of list entries this source has not archived yet.

        A page a feed already archived is fetched once, so its full text replaces the feed's
        summary. Raises ParseError when every page failed; otherwise the failures are a warning.
        """
        unique = {self.archive.url_key(e.url): e for e in entries}
        known = await self.writer.read(Archive.known_item_keys, source.id)
        todo = [e for key, e in unique.items() if key not in known]
        aliases = self.archive.host_aliases

        async def one(entry) -> FetchedArticle | SourceError:
            try:
                result = await self._get_html(source, entry.url)
                parsed = await self._parse(detached_article_job, result, source, entry,
                                           {"entry": entry_to_json(entry)}, aliases)
                return attach([parsed], result)[0]
            except SourceError as e:
                return e

        results = await asyncio.gather(*(one(e) for e in todo))
        articles = [r for r in results if isinstance(r, FetchedArticle)]
        failures = [r for r in results if isinstance(r, SourceError)]
        empty = [f.article for f in articles if not (f.article.body or "").strip()]
        warnings = []
        if failures:
            warnings.append(f"{len(failures)} of {len(todo)} article pages failed (first: {failures[0].message})")
        if empty:
            warnings.append(f"{len(empty)} article bodies came out empty (recipe broken?), e.g. {empty[0].url}")
        if todo and not articles:
            raise ParseError("; ".join(warnings), source_id=source.id, url=source.url)
        return articles, "; ".join(warnings) or None

    async def _record_success(
        self,
        source: Source,
        state: SourceState,
        record: FetchRecord,
        result: FetchResult,
        articles: list[FetchedArticle],
        warning: str | None,
        started: float,
        unchanged: list[str] | None = None,
    ) -> SourceOutcome:
        now = self.clock()
        duration = time.monotonic() - started
        new_state = SourceState(
            source.id,
            etag=result.etag if not result.not_modified else (result.etag or state.etag),
            last_modified=result.last_modified if not result.not_modified else (result.last_modified or state.last_modified),
            last_attempt=iso_utc(now),
            last_success=iso_utc(now),
            last_status=result.status,
            last_error=warning,
            consecutive_failures=0,
            next_due=next_due_after_success(now, source.interval, result.headers),
            retry_after=None,
            moved_to=state.moved_to,
        )
        moved = permanent_redirect(result)
        if moved and moved != source.url:
            new_state = replace(new_state, moved_to=moved, etag=None, last_modified=None)
            log.warning("%s: %s moved permanently to %s; polling the new address from now on "
                        "(update feeds.yaml)", source.id, source.url, moved)
        record = FetchRecord(
            run_id=record.run_id, source_id=source.id, started=record.started, duration_ms=int(duration * 1000),
            url=source.url, final_url=result.final_url, status=result.status, bytes=len(result.content),
            error=warning,
        )
        saved = await self.writer.save(self.archive.save_source_results, source, articles, record, new_state,
                                       now=now, keep_snapshots=self.keep_snapshots, unchanged=unchanged or ())
        if warning:
            log.warning("%s: %s", source.id, warning)
        log.debug("%s: HTTP %s, %d items, %d new, %d changed", source.id, result.status, saved.seen, saved.new,
                  saved.changed)
        return SourceOutcome(
            source.id, "not-modified" if result.not_modified else "ok", seen=saved.seen, new=saved.new,
            changed=saved.changed, http_status=result.status, warning=warning, seconds=duration,
        )

    async def _record_failure(
        self, source: Source, state: SourceState, record: FetchRecord, error: SourceError, started: float
    ) -> SourceOutcome:
        now = self.clock()
        duration = time.monotonic() - started
        failures = state.consecutive_failures + 1
        retry_after = error.retry_after if isinstance(error, FetchError) else None
        status = error.status if isinstance(error, FetchError) else None
        message = error.message
        new_state = SourceState(
            source.id,
            etag=state.etag,
            last_modified=state.last_modified,
            last_attempt=iso_utc(now),
            last_success=state.last_success,
            last_status=status,
            last_error=message,
            consecutive_failures=failures,
            next_due=next_due_after_failure(now, source.interval, failures, retry_after),
            retry_after=iso_utc(retry_after) if retry_after else None,
            moved_to=state.moved_to,
        )
        record = FetchRecord(
            run_id=record.run_id, source_id=source.id, started=record.started, duration_ms=int(duration * 1000),
            url=source.url, status=status, error=message,
        )
        await self.writer.save(self.archive.record_failure, record, new_state)
        log.error("%s: %s", source.id, message)
        return SourceOutcome(source.id, "failed", http_status=status, error=message, seconds=duration)


async def poll_sources(
    config: Config,
    archive: Archive,
    sources: list[Source],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    on_done: Callable[[SourceOutcome], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    inflight_bytes: int | None = None,
) -> RunSummary:
    """Poll the given sources concurrently; returns when every one has finished.

    ``inflight_bytes``: see :class:`ByteBudget` (None: INFLIGHT_BYTES; 0: no bound but ``concurrency``)."""
    inflight_bytes = INFLIGHT_BYTES if inflight_bytes is None else inflight_bytes
    summary = RunSummary(run_id=uuid.uuid4().hex[:12])
    started = time.monotonic()
    archive.sync_sources(config.sources, host_aliases=config.settings.host_aliases)
    for source in sources:
        if source.ignore_robots:
            log.warning("%s: ignoring robots.txt, as configured (ignore_robots: true)", source.id)
    writer = ArchiveWriter(archive)
    try:
        with ParsePool(parse_workers(config, len(sources))) as pool:
            async with build_fetcher(config, transport) as fetcher:
                poller = Poller(archive, fetcher, run_id=summary.run_id, clock=clock, on_done=on_done,
                                keep_snapshots=config.settings.snapshots_per_article, writer=writer, pool=pool,
                                budget=ByteBudget(inflight_bytes) if inflight_bytes > 0 else None)
                # A TaskGroup: if the archive itself fails (StorageError), the other polls are cancelled
                # before the client closes under them, and the one error reaches the CLI.
                # At most `concurrency` sources between their first request and their save, and at
                # most `inflight_bytes` of responses between parse and save (the budget): what waits
                # for a parse worker or the writer is held in memory, so it must be bounded.
                gate = asyncio.Semaphore(config.settings.concurrency)

                async def gated(source: Source) -> SourceOutcome:
                    async with gate:
                        return await poller.poll(source)

                try:
                    async with asyncio.TaskGroup() as group:
                        tasks = [group.create_task(gated(s)) for s in interleave_hosts(sources)]
                except* StorageError as errors:
                    raise errors.exceptions[0] from None
                outcomes = {o.source_id: o for o in (task.result() for task in tasks)}
                summary.outcomes = [outcomes[s.id] for s in sources]
    finally:
        writer.close()
    summary.seconds = time.monotonic() - started
    return summary


def interleave_hosts(sources: list[Source]) -> list[Source]:
    """The sources in round-robin order of their hosts: a config lists an office's sources
    together, and polling them in that order would leave every host but one idle."""
    by_host: dict[str, list[Source]] = {}
    for source in sources:
        by_host.setdefault(urlsplit(source.url).hostname or "", []).append(source)
    queues = list(by_host.values())
    order = []
    for depth in range(max((len(q) for q in queues), default=0)):
        order.extend(q[depth] for q in queues if depth < len(q))
    return order


def parse_workers(config: Config, sources: int) -> int:
    """Parse processes for a run of ``sources`` sources: none (threads) for a handful."""
    configured = config.settings.parse_workers
    if configured is not None:
        return configured
    return default_workers() if sources >= POOL_MIN_SOURCES else 0


def run_fetch(
    config: Config,
    archive: Archive,
    *,
    source_ids: Iterable[str] = (),
    include_not_due: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    on_start: Callable[[list[Source]], None] | None = None,
    on_done: Callable[[SourceOutcome], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> RunSummary:
    """`ipnews fetch`: poll the due (or named) sources once."""
    archive.sync_sources(config.sources, host_aliases=config.settings.host_aliases)
    sources = select_sources(config, archive, source_ids=source_ids, include_not_due=include_not_due, now=clock())
    if on_start:
        on_start(sources)
    if not sources:
        return RunSummary(run_id="-")
    return asyncio.run(
        poll_sources(config, archive, sources, transport=transport, on_done=on_done, clock=clock)
    )


class Daemon:
    """`ipnews run`: keep polling due sources on their schedules in one process.

    SIGHUP reloads the config before the next round; SIGTERM/SIGINT stop
    taking new work, give in-flight polls `grace` seconds to finish, then
    cancel the rest. A poll writes its results in one synchronous
    transaction after its network work is done, so cancelling it can only
    lose work that was never committed, never leave half of it.
    """

    def __init__(
        self,
        load_config: Callable[[], Config],
        archive: Archive,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        grace: float = 5.0,
        max_sleep: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self.load_config = load_config
        self.archive = archive
        self.transport = transport
        self.grace = grace
        self.max_sleep = max_sleep
        self.clock = clock
        self.config = load_config()
        self.rounds = 0
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._reload = False
        self._budget = ByteBudget(INFLIGHT_BYTES)  # shared by the rounds: polls outlive their round

    def request_stop(self) -> None:
        log.info("stopping: no new polls; finishing the ones in flight")
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        self._reload = True
        self._wake.set()

    def _maybe_reload(self) -> None:
        if not self._reload:
            return
        self._reload = False
        try:
            self.config = self.load_config()
            log.info("reloaded the config: %d sources", len(self.config.sources))
        except AggregatorError as e:  # keep running on the old config
            log.error("config reload failed, keeping the previous config: %s", e)

    def _seconds_until_next_due(self) -> float:
        now = self.clock()
        states = self.archive.source_states()  # called through the writer thread
        waits = [self.max_sleep]
        for source in self.config.sources:
            state = states.get(source.id)
            if not source.enabled or state is None:
                continue
            gates = [parse_iso(state.next_due), parse_iso(state.retry_after)]
            due = max((g for g in gates if g is not None), default=now)
            waits.append((due - now).total_seconds())
        return max(1.0, min(waits))

    async def run(self) -> None:
        import signal

        loop = asyncio.get_running_loop()
        for sig, handler in ((signal.SIGTERM, self.request_stop), (signal.SIGINT, self.request_stop),
                             (signal.SIGHUP, self.request_reload)):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, handler)
        in_flight: dict[str, asyncio.Task] = {}
        writer = ArchiveWriter(self.archive)
        pool = ParsePool(parse_workers(self.config, len(self.config.sources)))
        try:
            await self._rounds(writer, pool, in_flight)
        finally:
            pool.close()
            writer.close()
        log.info("stopped after %d rounds", self.rounds)

    async def _rounds(self, writer: ArchiveWriter, pool: ParsePool, in_flight: dict[str, asyncio.Task]) -> None:
        async with build_fetcher(self.config, self.transport) as fetcher:
            while not self._stop.is_set():
                self._maybe_reload()
                await writer.call(self.archive.sync_sources, self.config.sources,
                                  host_aliases=self.config.settings.host_aliases)
                poller = Poller(self.archive, fetcher, run_id=uuid.uuid4().hex[:12], clock=self.clock,
                                keep_snapshots=self.config.settings.snapshots_per_article, writer=writer, pool=pool,
                                budget=self._budget)
                due = await writer.call(select_sources, self.config, self.archive, now=self.clock())
                for source in due:
                    if source.id not in in_flight:
                        in_flight[source.id] = asyncio.create_task(poller.poll(source))
                self.rounds += 1
                self._wake.clear()
                sleep = await writer.call(self._seconds_until_next_due)
                wait_for = [asyncio.create_task(self._wake.wait())]
                if in_flight:
                    wait_for.append(asyncio.create_task(
                        asyncio.wait(list(in_flight.values()), return_when=asyncio.FIRST_COMPLETED)))
                done, pending = await asyncio.wait(wait_for, timeout=sleep, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                for sid, task in list(in_flight.items()):
                    if task.done():
                        del in_flight[sid]
                        if not task.cancelled() and task.exception():
                            raise task.exception()
            if in_flight:
                done, pending = await asyncio.wait(list(in_flight.values()), timeout=self.grace)
                for task in pending:
                    task.cancel()
                if pending:
                    log.warning("abandoned %d polls still in flight after %.0f s", len(pending), self.grace)
                    await asyncio.gather(*pending, return_exceptions=True)


@dataclass(frozen=True)
class ReparseSummary:
    articles: int
    changed: int
    failed: list[str]


def reparse_sources(config: Config, archive: Archive, source_ids: Iterable[str] = ()) -> ReparseSummary:
    """Rebuild articles from their latest raw snapshots with the current parser: no network.

    Each article is re-parsed from the snapshot it was last changed by; an
    article whose text comes out different gets a revision like any change.
    """
    from .sources.feed import parse_feed
    from .sources.page import parse_article_page

    wanted = list(source_ids) or [s.id for s in config.sources]
    total = changed = 0
    failed: list[str] = []
    for sid in wanted:
        source = config.source(sid)
        latest: dict[int, set[str]] = {}
        for article_id, snapshot_id in archive.db.execute(
            "SELECT id, snapshot_id FROM articles WHERE source_id = ? AND snapshot_id IS NOT NULL", [source.id]
        ):
            latest.setdefault(snapshot_id, set()).add(article_id)
        rebuilt = []
        for snapshot_id, article_ids in latest.items():
            snapshot = archive.snapshot(snapshot_id)
            if snapshot is None:
                continue
            try:
                if source.kind == "page":
                    entry = entry_from_json(snapshot.context["entry"]) if snapshot.context else None
                    parsed = [parse_article_page(snapshot.content, snapshot.headers, source, snapshot.final_url, entry)]
                else:
                    parsed = parse_feed(snapshot.content, snapshot.headers, source, snapshot.final_url)
            except SourceError as e:
                failed.append(f"{source.id}: snapshot {snapshot_id}: {e.message}")
                continue
            keys = {a.guid or archive.url_key(a.url): a for a in parsed}
            links = dict(archive.db.execute(
                "SELECT item_key, article_id FROM article_sources WHERE source_id = ? AND article_id IN "
                f"({', '.join('?' for _ in article_ids)})", [source.id, *article_ids]
            ).fetchall())
            rebuilt.extend(keys[key] for key in links if key in keys)
        if rebuilt:
            saved = archive.save_source_results(source, rebuilt, None, None)
            total += saved.seen
            changed += saved.changed
    return ReparseSummary(articles=total, changed=changed, failed=failed)


@dataclass(frozen=True)
class BackfillPage:
    number: int  # 1 is the source's own list URL
    url: str
    entries: int
    new: int
    changed: int
    warning: str | None = None


async def _backfill(
    config: Config,
    archive: Archive,
    source: Source,
    *,
    pages: int,
    transport: httpx.AsyncBaseTransport | None,
    on_page: Callable[[BackfillPage], None] | None,
) -> tuple[list[BackfillPage], bool]:
    from .sources.page import parse_list_page

    cursor = archive.backfill_cursor(source.id)
    next_url, done = (source.url, 0) if cursor is None else cursor
    walked: list[BackfillPage] = []
    if next_url is None:
        return walked, True
    visited: set[str] = set()
    async with build_fetcher(config, transport) as fetcher:
        poller = Poller(archive, fetcher, run_id="backfill-" + uuid.uuid4().hex[:8],
                        keep_snapshots=config.settings.snapshots_per_article)
        for _ in range(pages):
            url = next_url
            visited.add(canonical_url(url))
            started, started_at = time.monotonic(), iso_utc(datetime.now(timezone.utc))
            result = await poller._get_html(source, url)
            listing = await asyncio.to_thread(parse_list_page, result.content, result.headers, source,
                                              result.final_url)
            articles, warning = (await poller.fetch_articles(source, listing.entries)) if listing.entries else ([], None)
            record = FetchRecord(run_id=poller.run_id, source_id=source.id, started=started_at,
                                 duration_ms=int((time.monotonic() - started) * 1000), url=url,
                                 final_url=result.final_url, status=result.status, bytes=len(result.content),
                                 error=warning)
            saved = archive.save_source_results(source, articles, record, None,
                                                keep_snapshots=config.settings.snapshots_per_article)
            done += 1
            next_url = listing.next_url
            if next_url and canonical_url(next_url) in visited:
                next_url = None  # a list that links back to itself: the walk is over
            # The cursor moves only after the page's articles are committed: an interrupted walk
            # re-reads at most one page, whose articles are then already known.
            archive.set_backfill_cursor(source.id, next_url, done)
            page = BackfillPage(done, url, len(listing.entries), saved.new, saved.changed, warning)
            walked.append(page)
            if on_page:
                on_page(page)
            if next_url is None:
                return walked, True
    return walked, False


def backfill_source(
    config: Config,
    archive: Archive,
    source_id: str,
    *,
    pages: int = 10,
    restart: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    on_page: Callable[[BackfillPage], None] | None = None,
) -> tuple[list[BackfillPage], bool]:
    """`ipnews backfill`: walk a page source's older list pages through `next` links.

    Politely (the same fetcher: per-host limit, robots.txt, pacing), `pages` list pages
    per call, resuming where the previous call stopped. Returns the pages read and whether
    the last page was reached.
    """
    source = config.source(source_id)
    if source.kind != "page" or source.list is None:
        raise ConfigError(f"{source_id}: backfill walks HTML news lists; this source is a feed")
    if source.list.next is None:
        raise ConfigError(f"{source_id}: backfill needs a list.next selector in feeds.yaml")
    archive.sync_sources(config.sources, host_aliases=config.settings.host_aliases)
    if restart:
        archive.reset_backfill_cursor(source_id)
    return asyncio.run(_backfill(config, archive, source, pages=pages, transport=transport, on_page=on_page))
