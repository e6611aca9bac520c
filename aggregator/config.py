"""Read and validate feeds.yaml.

The config is the one trusted input. It is still checked field by field so a
typo gives one clear line naming the source and the field (with a
did-you-mean), rather than a traceback or a silently ignored key. Every
problem is collected before failing, so one run of `ipnews check-config`
shows them all.
"""

from __future__ import annotations

import codecs
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import soupsieve
import yaml

from .exceptions import ConfigError
from .types import ArticleRecipe, ListRecipe, Source

DEFAULT_CONFIG_PATH = "feeds.yaml"
DEFAULT_DB_PATH = "archive/ipnews.db"
PROJECT_URL = "https://github.com/ipnews/ipnews"

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")
_DURATION_PART = re.compile(r"(\d+)\s*(d|h|m|s)", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(\d+\s*[dhms]\s*)+$", re.IGNORECASE)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}

TOP_KEYS = ("defaults", "sources")
DEFAULT_KEYS = (
    "interval", "contact", "per_host", "concurrency", "timeout", "connect_timeout", "read_timeout",
    "max_bytes", "timezone", "headers", "language", "snapshots_per_article", "host_delay", "host_aliases",
    "parse_workers",
)
SOURCE_KEYS = (
    "id", "office", "name", "kind", "url", "language", "interval", "headers", "encoding", "timezone",
    "enabled", "list", "article", "date_order", "roc_years", "ignore_robots",
    # Documentation-only keys: how the source was checked, and notes for maintainers.
    "verified", "evidence", "notes",
)
LIST_KEYS = ("item", "date", "next", "max_pages")
ARTICLE_KEYS = ("title", "date", "source", "topics", "body", "remove")
KINDS = ("feed", "page")
DATE_ORDERS = ("dmy", "mdy", "ymd")


@dataclass(frozen=True)
class Settings:
    """Run-wide settings from the `defaults` block."""

    interval: int = 6 * 3600
    contact: str = PROJECT_URL
    per_host: int = 2  # the politeness promise: requests in flight per host
    concurrency: int = 64  # a local resource cap on requests in flight overall (not a politeness knob)
    timeout: float = 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_bytes: int = 10_000_000
    timezone: str | None = None
    language: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    snapshots_per_article: int = 10  # raw responses kept per article; 0 keeps them all
    host_delay: float = 0.0  # minimum seconds between two requests to one host (Crawl-delay may raise it)
    host_aliases: Mapping[str, str] = field(default_factory=dict)  # old host → current host, for identity
    parse_workers: int | None = None  # parse processes; None: one per core beyond the first; 0: threads


@dataclass(frozen=True)
class Config:
    settings: Settings
    sources: tuple[Source, ...]
    path: str

    def source(self, source_id: str) -> Source:
        for source in self.sources:
            if source.id == source_id:
                return source
        raise ConfigError(f"no source with id {source_id!r} in {self.path}{_suggest(source_id, self.ids())}")

    def ids(self) -> list[str]:
        return [s.id for s in self.sources]


class _LineDict(dict):
    """A mapping that remembers the line it started on in the YAML file."""

    line: int = 0


class _LineLoader(yaml.SafeLoader):
    pass


# libyaml's parser when PyYAML was built with it (the wheels are): ~4x faster on a feeds.yaml of
# 2,000 sources (1.25 -> 0.28 s with validation), with the same safe constructors and line marks.
# Its error messages are terser: a file it rejects is read again by the Python parser for the
# message (see parse_config).
class _FastLineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    mapping = _LineDict(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_FastLineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_duration(value: Any) -> int:
    """`30m`, `6h`, `1d`, `1h30m`, `90s` or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError("is not a duration")
    if isinstance(value, int | float):
        seconds = int(value)
    elif isinstance(value, str) and _DURATION.match(value):
        factor = {"d": 86400, "h": 3600, "m": 60, "s": 1}
        seconds = sum(int(n) * factor[u.lower()] for n, u in _DURATION_PART.findall(value))
    else:
        raise ValueError("is not a duration")
    if seconds <= 0:
        raise ValueError("is not positive")
    return seconds


def parse_size(value: Any) -> int:
    """`10MB`, `512KiB` or a number of bytes → bytes."""
    if isinstance(value, bool):
        raise ValueError("is not a size")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError("is not a size")
        unit = match.group(2).lower() if match.group(2) else None
        size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if size <= 0:
        raise ValueError("is not positive")
    return size


def _suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Problems:
    """Collects one message per problem, each prefixed with the file and line."""

    def __init__(self, path: str):
        self.path = path
        self.items: list[str] = []

    def add(self, line: int | None, message: str) -> None:
        where = f"{self.path}:{line}" if line else self.path
        self.items.append(f"{where}: {message}")


def _check_keys(mapping: Mapping, allowed: tuple[str, ...], what: str, line: int | None, problems: _Problems) -> None:
    for key in mapping:
        if key not in allowed:
            problems.add(line, f"{what}: unknown key {key!r}{_suggest(str(key), allowed)}")


def _check_selector(value: Any, what: str, line: int | None, problems: _Problems) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.add(line, f"{what}: must be a CSS selector string")
        return None
    try:
        soupsieve.compile(value)
    except Exception as e:  # soupsieve raises SelectorSyntaxError and ValueError subclasses
        first = str(e).splitlines()[0]
        problems.add(line, f"{what}: invalid CSS selector {value!r} ({first})")
        return None
    return value


def _check_headers(value: Any, what: str, line: int | None, problems: _Problems) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        problems.add(line, f"{what}: must be a mapping of header names to values")
        return {}
    return {k: str(v) for k, v in value.items()}


def _check_timezone(value: Any, what: str, line: int | None, problems: _Problems) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        problems.add(line, f"{what}: unknown timezone {value!r} (use an IANA name such as Asia/Shanghai)")
        return None
    return str(value)


def _parse_settings(raw: Any, problems: _Problems) -> Settings:
    if raw is None:
        return Settings()
    if not isinstance(raw, Mapping):
        problems.add(None, "defaults: must be a mapping")
        return Settings()
    line = getattr(raw, "line", None)
    _check_keys(raw, DEFAULT_KEYS, "defaults", line, problems)
    values: dict[str, Any] = {}
    for key, parse in (("interval", parse_duration), ("timeout", parse_duration),
                       ("connect_timeout", parse_duration), ("read_timeout", parse_duration),
                       ("max_bytes", parse_size)):
        if key in raw:
            try:
                values[key] = parse(raw[key])
            except ValueError as e:
                problems.add(line, f"defaults: {key}: {raw[key]!r} {e} (e.g. 30m, 6h, 10MB)")
    for key, least in (("per_host", 1), ("concurrency", 1), ("snapshots_per_article", 0), ("parse_workers", 0)):
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                problems.add(line, f"defaults: {key}: must be a whole number ≥ {least}, not {value!r}")
            else:
                values[key] = value
    if "host_delay" in raw:
        value = raw["host_delay"]
        try:
            values["host_delay"] = float(parse_duration(value)) if isinstance(value, str) else float(value)
            if isinstance(value, bool) or not 0 <= values["host_delay"] <= 600:
                raise ValueError
        except (TypeError, ValueError):
            values.pop("host_delay", None)
            problems.add(line, f"defaults: host_delay: must be a number of seconds from 0 to 600, not {value!r}")
    if "host_aliases" in raw:
        aliases = raw["host_aliases"]
        if not isinstance(aliases, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and "/" not in k + v for k, v in aliases.items()
        ):
            problems.add(line, "defaults: host_aliases: must map old host names to current ones, "
                               "e.g. english.sipo.gov.cn: english.cnipa.gov.cn")
        else:
            values["host_aliases"] = {k.lower().strip("."): v.lower().strip(".") for k, v in aliases.items()}
    if "contact" in raw:
        if not isinstance(raw["contact"], str) or not raw["contact"].strip():
            problems.add(line, "defaults: contact: must be a URL or an e-mail address")
        else:
            values["contact"] = raw["contact"].strip()
    if "timezone" in raw:
        values["timezone"] = _check_timezone(raw["timezone"], "defaults: timezone", line, problems)
    if "language" in raw:
        values["language"] = raw["language"]
    if "headers" in raw:
        values["headers"] = _check_headers(raw["headers"], "defaults: headers", line, problems)
    return Settings(**values)


def _parse_source(
    raw: Any,
    index: int,
    settings: Settings,
    problems: _Problems,
    rewrite_url: Callable[[str], str] | None,
) -> Source | None:
    if not isinstance(raw, Mapping):
        problems.add(None, f"sources[{index}]: must be a mapping with id, office, url …")
        return None
    line = getattr(raw, "line", None)
    sid = raw.get("id")
    if not isinstance(sid, str) or not sid.strip():
        problems.add(line, f"sources[{index}]: missing id")
        sid = None
    elif not _ID.match(sid):
        problems.add(line, f"source {sid!r}: id must be lower-case letters, digits, '.', '_' or '-'")
    what = f"source {sid!r}" if sid else f"sources[{index}]"
    _check_keys(raw, SOURCE_KEYS, what, line, problems)
    before = len(problems.items)

    office = raw.get("office")
    if not isinstance(office, str) or not office.strip():
        problems.add(line, f"{what}: missing office (e.g. WIPO, EPO, CNIPA)")
    kind = raw.get("kind", "feed")
    if kind not in KINDS:
        problems.add(line, f"{what}: kind: must be 'feed' or 'page', not {kind!r}")
    url = raw.get("url")
    if not isinstance(url, str) or not url.strip():
        problems.add(line, f"{what}: missing url")
    else:
        url = url.strip()
        if rewrite_url:
            url = rewrite_url(url)
        if not re.match(r"^https?://[^/\s]+", url):
            problems.add(line, f"{what}: url: must be an http:// or https:// URL, not {url!r}")

    interval = settings.interval
    if "interval" in raw:
        try:
            interval = parse_duration(raw["interval"])
        except ValueError as e:
            problems.add(line, f"{what}: interval: {raw['interval']!r} {e} (e.g. 30m, 6h, 1d)")

    language = raw.get("language", settings.language)
    if language is not None and (not isinstance(language, str) or not re.match(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]+)*$", language)):
        problems.add(line, f"{what}: language: {language!r} is not a language tag (e.g. en, zh, ja)")
    encoding = raw.get("encoding")
    if encoding is not None:
        try:
            codecs.lookup(str(encoding))
        except LookupError:
            problems.add(line, f"{what}: encoding: unknown encoding {encoding!r}")
    timezone = _check_timezone(raw.get("timezone"), f"{what}: timezone", line, problems) or settings.timezone
    headers = {**settings.headers, **_check_headers(raw.get("headers"), f"{what}: headers", line, problems)}
    flags = {}
    for key in ("enabled", "roc_years", "ignore_robots"):
        value = raw.get(key, key == "enabled")
        if not isinstance(value, bool):
            problems.add(line, f"{what}: {key}: must be true or false, not {value!r}")
        flags[key] = bool(value)
    date_order = raw.get("date_order")
    if date_order is not None and date_order not in DATE_ORDERS:
        problems.add(line, f"{what}: date_order: must be one of dmy, mdy, ymd, not {date_order!r}")

    list_recipe = None
    article_recipe = None
    raw_list = raw.get("list")
    raw_article = raw.get("article")
    if kind == "page":
        if raw_list is None:
            problems.add(line, f"{what}: a page source needs a list: block with at least an item selector")
    elif raw_list is not None or raw_article is not None:
        problems.add(line, f"{what}: list: and article: blocks only apply to kind: page")
    if isinstance(raw_list, Mapping):
        list_line = getattr(raw_list, "line", line)
        _check_keys(raw_list, LIST_KEYS, f"{what}: list", list_line, problems)
        item = _check_selector(raw_list.get("item"), f"{what}: list.item", list_line, problems)
        if raw_list.get("item") is None:
            problems.add(list_line, f"{what}: list: missing item selector")
        max_pages = raw_list.get("max_pages", 1)
        if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
            problems.add(list_line, f"{what}: list.max_pages: must be a whole number ≥ 1, not {max_pages!r}")
            max_pages = 1
        if item:
            list_recipe = ListRecipe(
                item=item,
                date=_check_selector(raw_list.get("date"), f"{what}: list.date", list_line, problems),
                next=_check_selector(raw_list.get("next"), f"{what}: list.next", list_line, problems),
                max_pages=max_pages,
            )
    elif raw_list is not None:
        problems.add(line, f"{what}: list: must be a mapping of selectors")
    if isinstance(raw_article, Mapping):
        article_line = getattr(raw_article, "line", line)
        _check_keys(raw_article, ARTICLE_KEYS, f"{what}: article", article_line, problems)
        selectors = {
            key: _check_selector(raw_article.get(key), f"{what}: article.{key}", article_line, problems)
            for key in ARTICLE_KEYS
            if key != "remove"
        }
        remove = raw_article.get("remove", [])
        if isinstance(remove, str):
            remove = [remove]
        if not isinstance(remove, list):
            problems.add(article_line, f"{what}: article.remove: must be a list of CSS selectors")
            remove = []
        checked = [_check_selector(r, f"{what}: article.remove", article_line, problems) for r in remove]
        article_recipe = ArticleRecipe(**selectors, remove=tuple(r for r in checked if r))
    elif raw_article is not None:
        problems.add(line, f"{what}: article: must be a mapping of selectors")

    if len(problems.items) > before or sid is None:
        return None
    return Source(
        id=sid,
        office=office.strip(),
        name=str(raw.get("name") or sid),
        kind=kind,
        url=url,
        interval=interval,
        language=language,
        headers=headers,
        encoding=encoding,
        timezone=timezone,
        enabled=flags["enabled"],
        list=list_recipe,
        article=article_recipe,
        date_order=date_order,
        roc_years=flags["roc_years"],
        ignore_robots=flags["ignore_robots"],
        line=line,
    )


def parse_config(text: str, path: str = DEFAULT_CONFIG_PATH, *, rewrite_url: Callable[[str], str] | None = None) -> Config:
    """Validate config text; raise ConfigError listing every problem found."""
    problems = _Problems(path)
    try:
        try:
            data = yaml.load(text, Loader=_FastLineLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError:
            data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - the same; its messages say more
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        reason = getattr(e, "problem", None) or str(e).splitlines()[0]
        problems.add(mark.line + 1 if mark else None, f"not valid YAML: {reason}")
        raise ConfigError(problems.items) from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        problems.add(None, "must be a mapping with a sources: list")
        raise ConfigError(problems.items)
    _check_keys(data, TOP_KEYS, "top level", None, problems)
    settings = _parse_settings(data.get("defaults"), problems)
    raw_sources = data.get("sources")
    if raw_sources is None:
        problems.add(None, "missing sources: list")
        raw_sources = []
    elif not isinstance(raw_sources, list):
        problems.add(None, "sources: must be a list")
        raw_sources = []
    sources: list[Source] = []
    seen: dict[str, int | None] = {}
    for index, raw in enumerate(raw_sources):
        source = _parse_source(raw, index, settings, problems, rewrite_url)
        sid = raw.get("id") if isinstance(raw, Mapping) else None
        if isinstance(sid, str):
            line = getattr(raw, "line", None)
            if sid in seen:
                first = f" (first defined on line {seen[sid]})" if seen[sid] else ""
                problems.add(line, f"source {sid!r}: duplicate id{first}")
                continue
            seen[sid] = line
        if source is not None:
            sources.append(source)
    if problems.items:
        raise ConfigError(problems.items)
    return Config(settings=settings, sources=tuple(sources), path=path)


def load_config(path: str | Path, *, rewrite_url: Callable[[str], str] | None = None) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (use --config or IPNEWS_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read config: {e}") from None
    return parse_config(text, str(path), rewrite_url=rewrite_url)
