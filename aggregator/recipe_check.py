"""`ipnews check`: show what a source's recipe matches, so a maintainer can write or repair it.

It fetches the list page (and one article page) through the normal polite
fetcher, then reports, selector by selector, how many elements matched and
what text they hold, followed by the fields the real parsers extract. It
writes nothing to the archive.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx
from bs4 import BeautifulSoup

from .config import Config
from .encoding import decode_document
from .exceptions import SourceError
from .normalize import clean_line
from .pipeline import HTML_ACCEPT, build_fetcher
from .types import Source

PREVIEW = 70


@dataclass
class CheckReport:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, line: str = "") -> None:
        self.lines.append(line)

    def problem(self, message: str) -> None:
        self.problems.append(message)
        self.lines.append(f"  !! {message}")


def _preview(text: str, width: int = PREVIEW) -> str:
    text = clean_line(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _selector_lines(report: CheckReport, soup, name: str, selector: str | None, *, required: bool = False) -> int:
    if not selector:
        report.add(f"  {name:<8} (none)")
        return 0
    matches = soup.select(selector)
    shown = "; ".join(_preview(m.get_text(" "), 40) for m in matches[:3])
    report.add(f"  {name:<8} {selector!r}: {len(matches)} match{'es' if len(matches) != 1 else ''}"
               + (f" — {shown}" if shown else ""))
    if required and not matches:
        report.problem(f"{name} selector {selector!r} matched nothing")
    return len(matches)


async def _check(config: Config, source: Source, article_url: str | None,
                 transport: httpx.AsyncBaseTransport | None) -> CheckReport:
    from .sources.feed import parse_feed
    from .sources.page import parse_article_page, parse_list_page

    report = CheckReport()
    report.add(f"{source.id} ({source.office}, {source.kind}): {source.url}")
    async with build_fetcher(config, transport) as fetcher:
        accept = HTML_ACCEPT if source.kind == "page" else None
        result = await fetcher.get(source.url, headers=source.headers, source_id=source.id, accept=accept,
                                   ignore_robots=source.ignore_robots)
        report.add(f"  HTTP {result.status}, {len(result.content)} bytes, {result.headers.get('content-type', '?')}"
                   + (f", final URL {result.final_url}" if result.final_url != source.url else ""))
        if source.kind == "feed":
            articles = parse_feed(result.content, result.headers, source, result.final_url)
            report.add(f"  {len(articles)} items")
            if not articles:
                report.problem("the feed has no items")
            for article in articles[:3]:
                report.add(f"  - {_preview(article.title)} | {article.published or 'no date'} | {article.url}")
            return report

        assert source.list is not None
        text, encoding = decode_document(result.content, result.headers, source.encoding)
        soup = BeautifulSoup(text, "lxml")
        report.add(f"  decoded as {encoding}")
        report.add("list recipe:")
        _selector_lines(report, soup, "item", source.list.item, required=True)
        _selector_lines(report, soup, "next", source.list.next)
        listing = parse_list_page(result.content, result.headers, source, result.final_url)
        dated = sum(1 for e in listing.entries if e.date)
        report.add(f"  {len(listing.entries)} entries ({dated} with a date); next page: {listing.next_url or 'none'}")
        if source.list.date and listing.entries and not dated:
            report.problem(f"date selector {source.list.date!r} gave no date for any entry")
        for entry in listing.entries[:5]:
            report.add(f"  - {_preview(entry.title, 50)} | {entry.date.value if entry.date else entry.date_raw or 'no date'}"
                       f" | {entry.url}")
        url = article_url or (listing.entries[0].url if listing.entries else None)
        if url is None:
            return report
        entry = next((e for e in listing.entries if e.url == url), None)
        page = await fetcher.get(url, headers=source.headers, source_id=source.id, accept=HTML_ACCEPT,
                                 ignore_robots=source.ignore_robots)
        article_text, article_encoding = decode_document(page.content, page.headers, source.encoding)
        article_soup = BeautifulSoup(article_text, "lxml")
        report.add(f"article page: {url} (HTTP {page.status}, decoded as {article_encoding})")
        recipe = source.article
        for name in ("title", "date", "source", "topics", "body"):
            _selector_lines(report, article_soup, name, getattr(recipe, name) if recipe else None,
                            required=name in ("title", "body"))
        for selector in recipe.remove if recipe else ():
            _selector_lines(report, article_soup, "remove", selector)
        article = parse_article_page(page.content, page.headers, source, page.final_url, entry)
        report.add("extracted:")
        for name in ("title", "published", "published_raw", "site_published", "updated", "source_org", "topics",
                     "language", "extraction"):
            value = getattr(article, name)
            report.add(f"  {name:<15}{', '.join(value) if isinstance(value, tuple) else value}")
        body = article.body or ""
        report.add(f"  {'body':<15}{len(body)} characters: {_preview(body, 300)}")
        if not body.strip():
            report.problem("the article body came out empty (recipe broken?)")
        if not article.published:
            report.problem("no published date found")
    return report


def check_source(config: Config, source_id: str, *, article_url: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> CheckReport:
    source = config.source(source_id)
    try:
        return asyncio.run(_check(config, source, article_url, transport))
    except SourceError as e:
        report = CheckReport()
        report.add(f"{source.id} ({source.office}, {source.kind}): {source.url}")
        report.problem(str(e))
        return report
