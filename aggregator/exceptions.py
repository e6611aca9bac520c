"""The errors ipnews raises on purpose.

Anything a user can cause (a bad config line, an unreachable office, a
malformed search) is one of these, so the CLI can print one line instead
of a traceback. Third-party errors are wrapped at the boundary where they
happen, keeping the original as ``__cause__``.

    AggregatorError
    ├── ConfigError            feeds.yaml is unusable (carries every problem found)
    ├── SourceError            one source failed; the run goes on (source_id, url)
    │   ├── FetchError         network / HTTP failure (status, retry_after)
    │   └── ParseError         the bytes could not be turned into articles
    ├── StorageError           the archive cannot be opened or written
    └── SearchError
        └── InvalidSearchQuery the query cannot be read, even as plain words
"""

from __future__ import annotations

from datetime import datetime


class AggregatorError(Exception):
    """Base class of every error ipnews raises deliberately."""


class ConfigError(AggregatorError):
    """The configuration has one or more problems.

    ``problems`` holds one human-readable line per problem, each naming the
    source id (or the config line) and the field.
    """

    def __init__(self, problems: list[str] | str):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class SourceError(AggregatorError):
    """One source could not be polled; the other sources are not affected."""

    def __init__(self, message: str, *, source_id: str | None = None, url: str | None = None):
        self.message = message
        self.source_id = source_id
        self.url = url
        super().__init__(message)

    def __str__(self) -> str:
        where = self.source_id or self.url
        return f"{where}: {self.message}" if where else self.message


class FetchError(SourceError):
    """The HTTP request failed: connection, timeout, size cap, or an error status."""

    def __init__(
        self,
        message: str,
        *,
        source_id: str | None = None,
        url: str | None = None,
        status: int | None = None,
        retry_after: datetime | None = None,
    ):
        super().__init__(message, source_id=source_id, url=url)
        self.status = status
        self.retry_after = retry_after


class ParseError(SourceError):
    """The response could not be read as the configured kind of source."""


class StorageError(AggregatorError):
    """The archive database cannot be opened, migrated or written."""


class SearchError(AggregatorError):
    """Base class of search failures."""


class InvalidSearchQuery(SearchError):
    """The query is malformed and cannot be read as plain words either."""
