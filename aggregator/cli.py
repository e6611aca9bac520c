"""The `ipnews` command line: a thin layer over config, pipeline, store and search.

Exit status: 0 all went well; 3 some sources failed (the rest were
archived); 2 usage or configuration error; 1 fatal (e.g. the archive cannot
be opened). User errors print one line, never a traceback.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import date, datetime
from functools import wraps
from typing import Any

import click

from . import __version__
from .config import DEFAULT_CONFIG_PATH, DEFAULT_DB_PATH, Config, load_config
from .exceptions import AggregatorError, ConfigError, InvalidSearchQuery, SourceError, StorageError

EXIT_OK, EXIT_FATAL, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3

log = logging.getLogger("ipnews")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="seconds"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup_logging(verbose: int, quiet: bool, log_format: str) -> None:
    level = logging.ERROR if quiet else logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if log_format == "json" else logging.Formatter("ipnews: %(levelname)s: %(message)s"))
    root = logging.getLogger("ipnews")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for noisy in ("httpx", "httpcore", "trafilatura", "htmldate", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class State:
    def __init__(self, config_path: str, db_path: str, verbose: int, quiet: bool):
        self.config_path = config_path
        self.db_path = db_path
        self.verbose = verbose
        self.quiet = quiet

    def config(self) -> Config:
        return load_config(self.config_path)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our errors into one line on stderr and the documented exit status."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as e:
            for problem in e.problems:
                click.echo(f"ipnews: {problem}", err=True)
            sys.exit(EXIT_USAGE)
        except InvalidSearchQuery as e:
            click.echo(f"ipnews: {e}", err=True)
            sys.exit(EXIT_USAGE)
        except StorageError as e:
            click.echo(f"ipnews: {e}", err=True)
            sys.exit(EXIT_FATAL)
        except AggregatorError as e:
            click.echo(f"ipnews: {e}", err=True)
            sys.exit(EXIT_FATAL)
        except KeyboardInterrupt:
            click.echo("ipnews: interrupted", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ipnews")
@click.option("--config", "-c", "config_path", envvar="IPNEWS_CONFIG", default=DEFAULT_CONFIG_PATH,
              show_default=True, help="Source list (env IPNEWS_CONFIG).")
@click.option("--db", "db_path", envvar="IPNEWS_DB", default=DEFAULT_DB_PATH, show_default=True,
              help="Archive database (env IPNEWS_DB).")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Log lines as text or as JSON objects.")
@click.pass_context
def cli(ctx: click.Context, config_path: str, db_path: str, verbose: int, quiet: bool, log_format: str) -> None:
    """ipnews: collect, archive and search news from intellectual-property offices."""
    setup_logging(verbose, quiet, log_format)
    ctx.obj = State(config_path, db_path, verbose, quiet)


def _open_archive(path: str, readonly: bool = False):
    from .store import Archive, needs_upgrade

    if readonly and needs_upgrade(path):
        # An archive written by an older ipnews: upgrade it once (under the write lock), then read.
        Archive(path).close()
    return Archive(path, readonly=readonly)


def _interactive() -> bool:
    return sys.stdout.isatty()


def _run_with_progress(config: Config, archive, *, source_ids=(), include_not_due=False, transport=None,
                       show: bool) -> Any:
    from .pipeline import run_fetch

    if not show:
        return run_fetch(config, archive, source_ids=source_ids, include_not_due=include_not_due, transport=transport)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]fetching"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), transient=True) as progress:
        task = progress.add_task("", total=0)

        def on_start(sources):
            progress.update(task, total=len(sources))

        def on_done(outcome):
            progress.update(task, advance=1, description=outcome.source_id)

        return run_fetch(config, archive, source_ids=source_ids, include_not_due=include_not_due,
                         transport=transport, on_start=on_start, on_done=on_done)


def _print_outcomes(summary) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=summary.line(), title_justify="left")
    for column in ("source", "result", "HTTP", "items", "new", "changed", "note"):
        table.add_column(column)
    for o in sorted(summary.outcomes, key=lambda o: (o.status != "failed", o.source_id)):
        style = "red" if o.status == "failed" else None
        table.add_row(o.source_id, o.status, str(o.http_status or ""), str(o.seen), str(o.new), str(o.changed),
                      (o.error or o.warning or "")[:80], style=style)
    Console().print(table)


@cli.command()
@click.option("--all", "include_not_due", is_flag=True, help="Poll every enabled source, due or not.")
@click.option("--source", "source_ids", multiple=True, metavar="ID", help="Poll only this source (repeatable).")
@click.pass_obj
@handle_errors
def fetch(state: State, include_not_due: bool, source_ids: tuple[str, ...]) -> None:
    """Poll the sources that are due and archive what is new.

    Quiet when not on a terminal, so cron mails only on trouble. Exit 3 when
    some sources failed (the others are archived).

    Example: ipnews --config feeds.yaml fetch --source wipo-pressroom-en
    """
    from .lock import AlreadyRunning, fetch_lock

    config = state.config()
    try:
        with fetch_lock(state.db_path), _open_archive(state.db_path) as archive:
            summary = _run_with_progress(config, archive, source_ids=source_ids, include_not_due=include_not_due,
                                         show=_interactive() and not state.quiet)
    except AlreadyRunning as e:
        log.info("%s", e)
        if _interactive() and not state.quiet:
            click.echo(str(e))
        sys.exit(EXIT_OK)
    log.info(summary.line())
    if _interactive() and not state.quiet:
        if summary.outcomes:
            _print_outcomes(summary)
        else:
            click.echo("nothing is due (use --all to poll every source now)")
    sys.exit(EXIT_PARTIAL if summary.failed else EXIT_OK)


def _iso_day(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        if len(value) == 10:
            date.fromisoformat(value)
        else:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2024-05-31", param_hint=name) from None
    return value


def filter_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Filters shared by search and export."""
    for option in reversed([
        click.option("--office", multiple=True, help="Only this office (repeatable), e.g. CNIPA."),
        click.option("--source", "source_ids", multiple=True, metavar="ID", help="Only this source (repeatable)."),
        click.option("--lang", "languages", multiple=True, help="Only this language (repeatable), e.g. zh."),
        click.option("--topic", "topics", multiple=True, help="Only articles with this topic (repeatable)."),
        click.option("--since", help="Published on or after this date (YYYY-MM-DD)."),
        click.option("--until", help="Published on or before this date (YYYY-MM-DD)."),
    ]):
        func = option(func)
    return func


def _filters(office, source_ids, languages, topics, since, until):
    from .search import SearchFilters

    return SearchFilters(
        offices=tuple(office), sources=tuple(source_ids), languages=tuple(languages), topics=tuple(topics),
        since=_iso_day(since, "--since"), until=_iso_day(until, "--until"),
    )


@cli.command()
@click.argument("query", nargs=-1, required=True)
@filter_options
@click.option("--sort", type=click.Choice(["rank", "date"]), default="rank", show_default=True,
              help="Relevance (bm25, title first) or newest first.")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True)
@click.option("--all-duplicates", is_flag=True,
              help="List every near-duplicate (republications, mirrors); by default one row per cluster.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_obj
@handle_errors
def search(state: State, query: tuple[str, ...], office, source_ids, languages, topics, since, until,
           sort: str, limit: int, all_duplicates: bool, fmt: str) -> None:
    """Full-text search of the archive, in any language.

    QUERY: words (stemmed: patents finds patent), "a phrase", prefix*, AND/OR/NOT,
    title:word; Chinese, Japanese and Korean words work too (专利, 特許, 특허).

    Example: ipnews search "unitary patent" --office EPO --since 2024-01-01 --format json
    """
    from .search import search_articles

    filters = _filters(office, source_ids, languages, topics, since, until)
    with _open_archive(state.db_path, readonly=True) as archive:
        results = search_articles(archive.db, " ".join(query), filters=filters, sort=sort, limit=limit,
                                  all_duplicates=all_duplicates)
    for row in results:
        row["topics"] = json.loads(row["topics"] or "[]")
    if fmt == "json":
        click.echo(json.dumps(results, ensure_ascii=False, indent=2))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        columns = ["id", "published", "office", "source_id", "language", "title", "url", "duplicates", "snippet"]
        writer.writerow(columns)
        for row in results:
            writer.writerow([row.get(c) or "" for c in columns])
    else:
        _print_results(results)


def _print_results(results: list[dict]) -> None:
    if not results:
        click.echo("no matching articles", err=True)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    table = Table(show_lines=True)
    table.add_column("published", no_wrap=True)
    table.add_column("office")
    table.add_column("article")
    for row in results:
        snippet = escape(row["snippet"]).replace("**", "\0")
        parts = snippet.split("\0")
        marked = "".join(f"[bold yellow]{p}[/]" if i % 2 else p for i, p in enumerate(parts))
        when = (row["published"] or row["site_published"] or row["updated"] or "—")[:10]
        more = f"  [dim](+{row['duplicates']} near-duplicates: ipnews show {row['id'][:8]})[/]" if row["duplicates"] else ""
        table.add_row(when, row["office"],
                      f"[bold]{escape(row['title'])}[/]{more}\n{marked}\n[dim]{escape(row['url'])}[/]")
    console.print(table)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json", "opml"]), default="table", show_default=True,
              help="opml lists the configured sources for a feed reader.")
@click.option("--failing", is_flag=True, help="Only sources whose last poll failed.")
@click.pass_obj
@handle_errors
def sources(state: State, fmt: str, failing: bool) -> None:
    """Show each configured source with its fetch status.

    Example: ipnews sources --failing
    """
    config = state.config()
    if fmt == "opml":
        from .opml import sources_to_opml

        click.echo(sources_to_opml(config.sources), nl=False)
        return
    with _open_archive(state.db_path) as archive:
        archive.sync_sources(config.sources, host_aliases=config.settings.host_aliases)
        rows = archive.source_rows()
    if failing:
        rows = [r for r in rows if r["consecutive_failures"]]
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for column in ("id", "office", "kind", "last success", "last error", "failures", "next due", "articles"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["id"], r["office"], r["kind"], (r["last_success"] or "never")[:16].replace("T", " "),
            source_note(r)[:90], str(r["consecutive_failures"] or ""),
            (r["next_due"] or "now")[:16].replace("T", " ") if r["enabled"] else "disabled",
            str(r["articles"]), style="red" if r["consecutive_failures"] else None,
        )
    Console(width=None if _interactive() else 200).print(table)


@cli.command()
@click.argument("article_id")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
@handle_errors
def show(state: State, article_id: str, fmt: str) -> None:
    """Show one article with its sources, its revision history (with diffs) and its raw snapshots.

    ARTICLE_ID is the id from search results (a unique prefix is enough).

    Example: ipnews show 3f2a9c1e
    """
    from .store import article_history

    with _open_archive(state.db_path, readonly=True) as archive:
        history = article_history(archive, article_id)
    if history is None:
        click.echo(f"ipnews: no article {article_id!r} (or the prefix is not unique)", err=True)
        sys.exit(EXIT_USAGE)
    if fmt == "json":
        click.echo(json.dumps(history, ensure_ascii=False, indent=2))
        return
    click.echo(_format_history(history))


def _format_history(history: dict) -> str:
    import difflib

    a = history["article"]
    lines = [a["title"], "=" * min(len(a["title"]), 78)]
    for label, key in (("id", "id"), ("url", "url"), ("office", "office"), ("source", "source_id"),
                       ("published", "published"), ("site published", "site_published"), ("updated", "updated"),
                       ("source org", "source_org"), ("language", "language"), ("extraction", "extraction"),
                       ("parser", "parser_version"), ("first seen", "first_seen"), ("last seen", "last_seen")):
        if a.get(key):
            lines.append(f"{label + ':':<16}{a[key]}")
    if a["topics"]:
        lines.append(f"{'topics:':<16}{', '.join(a['topics'])}")
    lines += ["", a["body"] or a["summary"] or "(no text)", ""]
    lines.append(f"Sources ({len(history['sources'])}):")
    for s in history["sources"]:
        lines.append(f"  {s['source_id']} ({s['office']})  first {s['first_seen']}  last {s['last_seen']}  {s['url']}")
    if history["cluster"]:
        lines.append(f"Near-duplicates ({len(history['cluster'])}):")
        for c in history["cluster"]:
            lines.append(f"  {c['id']}  {c['office']}  {(c['published'] or '')[:10]}  {c['title']}")
    lines.append(f"Revisions ({len(history['revisions'])}):")
    newer = {"title": a["title"], "body": a["body"] or "", "summary": a["summary"] or ""}
    for rev in reversed(history["revisions"]):
        prev = rev["previous"]
        lines.append(f"  replaced on {rev['seen']}: changed {', '.join(rev['changed_fields']) or 'formatting only'}")
        for field in ("title", "summary", "body"):
            old_text, new_text = prev.get(field) or "", newer.get(field) or ""
            if old_text != new_text:
                diff = difflib.unified_diff(old_text.splitlines(), new_text.splitlines(), f"{field} (before)",
                                            f"{field} (after)", lineterm="", n=1)
                lines.extend("    " + d for d in diff)
        newer = {k: prev.get(k) or "" for k in newer}
    lines.append(f"Raw snapshots ({len(history['snapshots'])}):")
    for s in history["snapshots"]:
        lines.append(f"  #{s['id']}  {s['fetched']}  HTTP {s['status']}  {s['size']} bytes  {s['final_url']}")
    return "\n".join(lines)


@cli.command()
@click.option("--source", "source_ids", multiple=True, metavar="ID", help="Only this source (repeatable).")
@click.pass_obj
@handle_errors
def reparse(state: State, source_ids: tuple[str, ...]) -> None:
    """Rebuild articles from their raw snapshots with the current parser, without fetching.

    Example: ipnews reparse --source cnipa-zh-news
    """
    from .lock import AlreadyRunning, fetch_lock
    from .pipeline import reparse_sources

    config = state.config()
    try:
        with fetch_lock(state.db_path), _open_archive(state.db_path) as archive:
            summary = reparse_sources(config, archive, source_ids)
    except AlreadyRunning as e:
        click.echo(f"ipnews: {e}", err=True)
        sys.exit(EXIT_FATAL)
    for problem in summary.failed:
        click.echo(f"ipnews: {problem}", err=True)
    click.echo(f"re-parsed {summary.articles} articles: {summary.changed} changed")
    sys.exit(EXIT_PARTIAL if summary.failed else EXIT_OK)


@cli.command()
@click.argument("query", nargs=-1)
@filter_options
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "atom", "warc"]), default="jsonl",
              show_default=True, help="warc writes the raw snapshots (what the offices served), not articles.")
@click.option("--sort", type=click.Choice(["date", "rank"]), default="date", show_default=True,
              help="Newest first, or relevance (needs a QUERY).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N articles (default: all).")
@click.option("--output", "-o", default="-", show_default=True, metavar="FILE",
              help="Write here, replacing the file only once complete; - for stdout.")
@click.option("--title", default="ipnews export", show_default=True, help="Atom: the feed title.")
@click.option("--feed-id", metavar="IRI", help="Atom: the feed id (default: derived from the query, filters and title).")
@click.option("--self-url", metavar="URL", help="Atom: where the feed will be served (rel=self link).")
@click.option("--excel-safe", is_flag=True, help="CSV: prefix cells starting with = + - @ with ' for spreadsheets.")
@click.pass_obj
@handle_errors
def export(state: State, query, office, source_ids, languages, topics, since, until, fmt, sort, limit, output,
           title, feed_id, self_url, excel_safe) -> None:
    """Export articles as JSON Lines, CSV or an Atom feed, streamed (memory does not grow with the archive).

    QUERY is optional and uses the `ipnews search` syntax; without it, every article the filters let
    through. --format warc exports the raw snapshots instead (filtered by --source only).

    Example: ipnews export --format atom --office CNIPA patent --title "CNIPA patent news" -o cnipa.atom
    """
    from .export import atomic_output, export_articles, open_output

    text = " ".join(query) or None
    if fmt == "warc":
        if output == "-":
            raise click.UsageError("--format warc needs --output FILE.warc.gz")
        from .warc import write_warc

        with _open_archive(state.db_path, readonly=True) as archive, atomic_output(output, binary=True) as out:
            count = write_warc(archive.db, out, source_ids=source_ids)
        log.info("exported %d snapshots", count)
        return
    if sort == "rank" and text is None:
        raise click.UsageError("--sort rank needs a QUERY")
    filters = _filters(office, source_ids, languages, topics, since, until)
    with _open_archive(state.db_path, readonly=True) as archive, open_output(output) as out:
        try:
            count = export_articles(archive, out, fmt=fmt, query=text, filters=filters, sort=sort, limit=limit,
                                    title=title, feed_id=feed_id, self_url=self_url, protect_formulas=excel_safe)
        except ValueError as e:  # a --feed-id that is not an IRI
            raise click.UsageError(str(e)) from None
    log.info("exported %d articles", count)


@cli.command("import-opml")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--dry-run", is_flag=True, help="Show what would be added; change nothing.")
@click.pass_obj
@handle_errors
def import_opml_command(state: State, file: str, dry_run: bool) -> None:
    """Add the feeds of an OPML file (e.g. from a feed reader) to the source list.

    Feeds already followed (same canonical URL) are skipped. The config keeps its comments and
    layout; the previous version is saved as <config>.bak.

    Example: ipnews --config feeds.yaml import-opml subscriptions.opml
    """
    import shutil
    from pathlib import Path

    from .export import atomic_output
    from .opml import import_opml

    with click.open_file(file, "rb") as f:
        data = f.read()  # bytes: the OPML's own encoding declaration applies
    config_path = Path(state.config_path)
    config_text = config_path.read_text(encoding="utf-8") if config_path.exists() else ""
    new_text, added = import_opml(data, config_text, opml_path=file, config_path=str(config_path))
    if not added:
        click.echo(f"nothing to add: {config_path} already has every feed in {file}")
        return
    if not dry_run:
        if config_path.exists():
            shutil.copy2(config_path, config_path.with_name(config_path.name + ".bak"))
        with atomic_output(config_path) as out:
            out.write(new_text)
    for source_id in added:
        click.echo(f"{'would add' if dry_run else 'added'} {source_id}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 exposes it).")
@click.option("--port", "-p", default=8001, show_default=True, type=int)
@click.option("--open", "open_browser", is_flag=True, help="Open the articles page in a browser.")
@click.pass_obj
@handle_errors
def serve(state: State, host: str, port: int, open_browser: bool) -> None:
    """Browse and search the archive in Datasette (needs: pip install 'ipnews[web]').

    Example: ipnews --db archive/ipnews.db serve --open
    """
    from .web import serve as serve_archive

    serve_archive(state.db_path, host=host, port=port, open_browser=open_browser)


@cli.command()
@click.argument("source_id")
@click.option("--pages", type=click.IntRange(1, 10000), default=10, show_default=True,
              help="How many list pages to read in this call.")
@click.option("--restart", is_flag=True, help="Start again from the first list page.")
@click.pass_obj
@handle_errors
def backfill(state: State, source_id: str, pages: int, restart: bool) -> None:
    """Archive an office's history: walk older list pages through the `next` links.

    Politely (per-host limit, robots.txt, pacing), PAGES list pages per call; an
    interrupted walk resumes where it stopped on the next call.

    Example: ipnews backfill cnipa-zh-news --pages 50
    """
    from .lock import AlreadyRunning, fetch_lock
    from .pipeline import backfill_source

    config = state.config()

    def on_page(page) -> None:
        note = f" ({page.warning})" if page.warning else ""
        click.echo(f"page {page.number}: {page.entries} entries, {page.new} new, {page.changed} updated  "
                   f"{page.url}{note}")

    try:
        with fetch_lock(state.db_path), _open_archive(state.db_path) as archive:
            walked, finished = backfill_source(config, archive, source_id, pages=pages, restart=restart,
                                               on_page=on_page)
    except AlreadyRunning as e:
        click.echo(f"ipnews: {e}", err=True)
        sys.exit(EXIT_FATAL)
    except SourceError as e:
        click.echo(f"ipnews: {e} (run backfill again to resume from this page)", err=True)
        sys.exit(EXIT_PARTIAL)
    if finished:
        click.echo(f"{source_id}: reached the last list page" + ("" if walked else " already (use --restart)"))
    else:
        click.echo(f"{source_id}: stopped after {len(walked)} pages; run again to continue")


@cli.command()
@click.argument("source_id")
@click.option("--url", "article_url", metavar="ARTICLE_URL", help="Check this article page instead of the first one listed.")
@click.pass_obj
@handle_errors
def check(state: State, source_id: str, article_url: str | None) -> None:
    """Show what a source's recipe matches: each selector's matches and the extracted fields.

    Fetches the list page and one article page; writes nothing. Exit 3 when something
    looks broken (no items, an empty body, no date).

    Example: ipnews check cnipa-zh-news --url https://www.cnipa.gov.cn/art/2026/8/12/art_53_207701.html
    """
    from .recipe_check import check_source

    report = check_source(state.config(), source_id, article_url=article_url)
    click.echo("\n".join(report.lines))
    sys.exit(EXIT_PARTIAL if report.problems else EXIT_OK)


def source_note(row: dict) -> str:
    """The last error, plus what a maintainer should do about a permanent answer."""
    notes = []
    if row.get("moved_to"):
        notes.append(f"moved permanently to {row['moved_to']} (update feeds.yaml)")
    if row.get("consecutive_failures") and row.get("last_status") in (404, 410):
        since = f" since {row['last_success'][:10]}" if row.get("last_success") else ", never fetched"
        notes.append(f"HTTP {row['last_status']} on {row['consecutive_failures']} polls{since}: gone?")
    elif row.get("last_error"):
        notes.append(row["last_error"])
    return "; ".join(notes)


@cli.command("check-config")
@click.pass_obj
@handle_errors
def check_config(state: State) -> None:
    """Validate the source list; print every problem and exit 2 if there are any.

    Example: ipnews --config feeds.yaml check-config
    """
    config = state.config()
    enabled = sum(s.enabled for s in config.sources)
    offices = len({s.office for s in config.sources})
    click.echo(f"{config.path}: OK, {len(config.sources)} sources ({enabled} enabled) from {offices} offices")


@cli.command("run")
@click.option("--grace", type=float, default=5.0, show_default=True,
              help="Seconds in-flight polls get to finish after SIGTERM/SIGINT.")
@click.pass_obj
@handle_errors
def run_daemon(state: State, grace: float) -> None:
    """Keep polling due sources on their schedules (a long-running service).

    SIGHUP reloads the config; SIGTERM or SIGINT finish or abandon in-flight
    requests within --grace seconds, commit what is complete and exit 0.

    Example: ipnews --config /etc/ipnews/feeds.yaml --db /var/lib/ipnews/ipnews.db run
    """
    import asyncio

    from .lock import AlreadyRunning, fetch_lock
    from .pipeline import Daemon

    state.config()  # fail early, with exit 2, on a bad config
    try:
        with fetch_lock(state.db_path), _open_archive(state.db_path) as archive:
            daemon = Daemon(state.config, archive, grace=grace)
            log.info("ipnews %s polling %d sources into %s", __version__, len(daemon.config.sources), state.db_path)
            asyncio.run(daemon.run())
    except AlreadyRunning as e:
        click.echo(f"ipnews: {e}", err=True)
        sys.exit(EXIT_FATAL)
    sys.exit(EXIT_OK)


@cli.command()
@click.option("--db", "demo_db", default="archive/demo.db", show_default=True, help="Where the demo archive goes.")
@click.option("--keep", is_flag=True, help="Keep an existing demo archive instead of starting afresh.")
@handle_errors
def demo(demo_db: str, keep: bool) -> None:
    """Run the whole pipeline offline on bundled sample sources served on loopback.

    Example: ipnews demo
    """
    from .demo import run_demo

    sys.exit(run_demo(demo_db, fresh=not keep))


def main() -> None:
    try:
        cli(prog_name="ipnews")
    except BrokenPipeError:  # `ipnews search … | head`
        os._exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
