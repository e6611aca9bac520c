"""Sources to OPML and back, for feed readers and other aggregators.

Export (`sources_to_opml`) writes OPML 2.0: one folder outline per office,
and inside it one outline per source. Feed sources are `type="rss"` with
`xmlUrl`; page sources (scraped HTML lists, no feed) are `type="link"` with
`url`, so nothing is dropped. The source id, language and a disabled flag
ride along as `ipnews:` attributes, which readers ignore and our import uses.

Import (`import_opml`) reads an OPML file and appends a feed source to the
config text for every `xmlUrl` it does not follow yet (compared as
canonical URLs). The config is edited as text, never re-dumped, so its
comments and layout survive; the result must pass `parse_config` before it
is returned. Page sources are never imported: they need CSS selectors that
OPML cannot carry.

OPML comes from anywhere, so it is parsed as untrusted XML: a document
that declares a DOCTYPE (the only place entities can be declared) is
refused before any entity is read (billion laughs, external entities), and
so is one larger than MAX_OPML_BYTES.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

import yaml

from .config import DEFAULT_CONFIG_PATH, PROJECT_URL, parse_config
from .exceptions import ConfigError
from .export import xml_text
from .types import Source
from .urls import canonical_url

__all__ = ["IPNEWS_NS", "MAX_OPML_BYTES", "OpmlFeed", "import_opml", "read_opml", "sources_to_opml"]

log = logging.getLogger("ipnews.opml")

IPNEWS_NS = f"{PROJECT_URL}/opml"
MAX_OPML_BYTES = 5_000_000
UNKNOWN_OFFICE = "Unknown"
_ID_MAX = 60  # room for a "-NN" suffix under config's 80-character limit
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]+)*$")


# --- export ----------------------------------------------------------------------------------------


def _attrs(**values: str | None) -> str:
    """XML attributes from keywords (ipnews__id → ipnews:id), empty ones left out."""
    return "".join(f" {name.replace('__', ':')}={quoteattr(xml_text(v))}" for name, v in values.items() if v)


def sources_to_opml(sources: Iterable[Source], *, title: str = "ipnews sources") -> str:
    """OPML 2.0 for these sources, grouped by office in config order."""
    by_office: dict[str, list[Source]] = {}
    for source in sources:
        by_office.setdefault(source.office, []).append(source)
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<opml version="2.0" xmlns:ipnews="{IPNEWS_NS}">',
        "  <head>",
        f"    <title>{escape(xml_text(title))}</title>",
        f"    <dateCreated>{format_datetime(datetime.now(timezone.utc), usegmt=True)}</dateCreated>",
        "    <docs>http://opml.org/spec2.opml</docs>",
        "  </head>",
        "  <body>",
    ]
    for office, members in by_office.items():
        lines.append(f"    <outline{_attrs(text=office, title=office)}>")
        for s in members:
            common = {
                "category": s.office,
                "ipnews__id": s.id,
                "ipnews__language": s.language,
                "ipnews__enabled": None if s.enabled else "false",
            }
            if s.kind == "feed":
                attrs = _attrs(type="rss", text=s.name, title=s.name, xmlUrl=s.url, **common)
            else:
                attrs = _attrs(type="link", text=s.name, title=s.name, url=s.url, **common)
            lines.append(f"      <outline{attrs}/>")
        lines.append("    </outline>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


# --- reading OPML ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpmlFeed:
    """One feed outline found in an OPML file."""

    url: str
    name: str
    office: str
    source_id: str | None = None  # from ipnews:id, when we wrote the file
    language: str | None = None
    enabled: bool = True


class _Refused(Exception):
    pass


class _GuardedBuilder(ET.TreeBuilder):
    """Stops the parse at a DOCTYPE: entities can only be declared inside one."""

    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise _Refused(f"it declares a DOCTYPE ({name}); OPML never needs one and untrusted "
                       "files are refused with it (entity expansion, external entities)")


def _parse_untrusted(data: str | bytes, name: str) -> ET.Element:
    size = len(data.encode("utf-8") if isinstance(data, str) else data)
    if size > MAX_OPML_BYTES:
        raise ConfigError(f"{name}: refused: {size:,} bytes is more than the {MAX_OPML_BYTES:,} an OPML file may have")
    # A cheap textual check first for a clear message; the parser-level guard below also catches
    # a DOCTYPE in an encoding this check cannot read (UTF-16 bytes).
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    if re.search(r"<!\s*(DOCTYPE|ENTITY)", text, re.IGNORECASE):
        raise ConfigError(f"{name}: refused: it declares a DOCTYPE or ENTITY; OPML never needs one and "
                          "untrusted files are refused with it (entity expansion, external entities)")
    parser = ET.XMLParser(target=_GuardedBuilder())
    try:
        parser.feed(data)
        return parser.close()
    except _Refused as e:
        raise ConfigError(f"{name}: refused: {e}") from None
    except ET.ParseError as e:
        raise ConfigError(f"{name}: not well-formed XML: {e}") from None


def _attr(element: ET.Element, name: str) -> str:
    """An attribute by name, ignoring case (xmlUrl is also written xmlurl); stripped."""
    value = element.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in element.attrib.items() if k.lower() == lower), None)
    return " ".join((value or "").split())


def _office_from_category(category: str) -> str:
    """OPML 2.0 category: comma-separated, slash-delimited paths ("/IP offices/WIPO") → "WIPO"."""
    first = category.split(",")[0]
    parts = [p.strip() for p in first.split("/") if p.strip()]
    return parts[-1] if parts else ""


def read_opml(data: str | bytes, *, name: str = "OPML") -> list[OpmlFeed]:
    """Every outline with an xmlUrl, in document order, with its office.

    The office is the outline's own `category`, else the text (or title) of
    the nearest enclosing outline, else "Unknown".
    """
    root = _parse_untrusted(data, name)
    if root.tag != "opml":
        raise ConfigError(f"{name}: not an OPML file (the root element is <{root.tag}>, not <opml>)")
    body = root.find("body")
    if body is None:
        raise ConfigError(f"{name}: not an OPML file (no <body>)")
    return list(_walk(body, []))


def _walk(parent: ET.Element, folders: list[str]) -> Iterator[OpmlFeed]:
    for outline in parent.findall("outline"):
        url = _attr(outline, "xmlUrl")
        label = _attr(outline, "text") or _attr(outline, "title")
        if url:
            office = _office_from_category(_attr(outline, "category"))
            office = office or next((f for f in reversed(folders) if f), "") or UNKNOWN_OFFICE
            language = outline.get(f"{{{IPNEWS_NS}}}language") or None
            yield OpmlFeed(
                url=url,
                name=_attr(outline, "title") or label or url,
                office=office,
                source_id=outline.get(f"{{{IPNEWS_NS}}}id") or None,
                language=language if language and _LANGUAGE.match(language) else None,
                enabled=outline.get(f"{{{IPNEWS_NS}}}enabled", "").strip().lower() != "false",
            )
        yield from _walk(outline, [*folders, label])


# --- importing into the config ---------------------------------------------------------------------


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:_ID_MAX].rstrip("-")


def _new_id(feed: OpmlFeed, taken: set[str]) -> str:
    """The ipnews:id if free; else a slug of the name, else of the URL; made unique with -2, -3 …"""
    if feed.source_id and _ID.match(feed.source_id) and feed.source_id not in taken:
        return feed.source_id
    base = _slug(feed.name)
    if not base:  # a name with no Latin letters (知识产权局新闻): use the host and path
        parts = urlsplit(feed.url)
        host = (parts.hostname or "").removeprefix("www.")
        base = _slug(f"{host} {parts.path}") or "feed"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


# Characters JSON leaves as they are but YAML refuses (C1 controls) or reads as line breaks.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff]")


def _json(value: object) -> str:
    """JSON, which is valid YAML flow style, with the characters YAML refuses escaped."""
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", json.dumps(value, ensure_ascii=False))


def _yaml_str(value: str) -> str:
    """A YAML double-quoted scalar: never read as a date, bool or number."""
    return _json(value)


def _source_entry(feed: OpmlFeed, source_id: str) -> dict[str, object]:
    entry: dict[str, object] = {"id": source_id, "office": feed.office, "name": feed.name, "kind": "feed",
                                "url": feed.url}
    if feed.language:
        entry["language"] = feed.language
    if not feed.enabled:
        entry["enabled"] = False
    return entry


def _block_items(entries: list[dict[str, object]], indent: int, opml_name: str) -> str:
    pad = " " * indent
    lines = [f"{pad}# Imported from {' '.join(opml_name.split())} by `ipnews import-opml`."]
    for entry in entries:
        for i, (key, value) in enumerate(entry.items()):
            text = json.dumps(value) if isinstance(value, bool) else _yaml_str(str(value))
            if key == "kind":
                text = str(value)
            lines.append(f"{pad}{'- ' if i == 0 else '  '}{key}: {text}")
    return "\n".join(lines) + "\n"


def _existing(config_text: str, config_path: str) -> tuple[set[str], set[str]]:
    """Ids and canonical URLs already in the config, read leniently (the result is validated later)."""
    try:
        data = yaml.safe_load(config_text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{config_path}: not valid YAML: {str(e).splitlines()[0]}") from None
    raw = data.get("sources") if isinstance(data, dict) else None
    ids: set[str] = set()
    urls: set[str] = set()
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict):
            if isinstance(item.get("id"), str):
                ids.add(item["id"])
            if isinstance(item.get("url"), str):
                urls.add(canonical_url(item["url"]))
    return ids, urls


def import_opml(
    opml_text: str | bytes,
    config_text: str,
    *,
    opml_path: str = "OPML",
    config_path: str = DEFAULT_CONFIG_PATH,
) -> tuple[str, list[str]]:
    """Append a feed source for every new xmlUrl of the OPML to the config text.

    Returns (new config text, ids added). The existing text is kept byte
    for byte; new entries go at the end of the `sources:` list (or a list
    is added). Feeds already followed (same canonical URL), repeated in the
    OPML, or not http(s) are skipped and logged. Raises ConfigError for
    unreadable or refused OPML, and when the result does not validate.
    """
    feeds = read_opml(opml_text, name=opml_path)
    taken_ids, known_urls = _existing(config_text, config_path)
    entries: list[dict[str, object]] = []
    for feed in feeds:
        if urlsplit(feed.url).scheme.lower() not in ("http", "https"):
            log.warning("%s: skipped %s: not an http(s) URL", opml_path, feed.url)
            continue
        key = canonical_url(feed.url)
        if key in known_urls:
            log.info("%s: skipped %s: already in %s", opml_path, feed.url, config_path)
            continue
        known_urls.add(key)
        source_id = _new_id(feed, taken_ids)
        taken_ids.add(source_id)
        entries.append(_source_entry(feed, source_id))
    if not entries:
        return config_text, []
    new_text = _append_sources(config_text, entries, opml_path, config_path)
    parse_config(new_text, config_path)  # raises ConfigError listing every problem
    return new_text, [str(e["id"]) for e in entries]


def _append_sources(text: str, entries: list[dict[str, object]], opml_name: str, config_path: str) -> str:
    """Insert the entries into the `sources:` list without touching the rest of the text."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise ConfigError(f"{config_path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if text and not text.endswith("\n"):
        text += "\n"
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag.endswith(":null")):
        return text + "sources:\n" + _block_items(entries, 2, opml_name)
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{config_path}: must be a mapping with a sources: list")
    keys = [(k, v) for k, v in root.value if isinstance(k, yaml.ScalarNode)]
    found = next(((k, v) for k, v in keys if k.value == "sources"), None)
    flow_items = ", ".join(_json(e) for e in entries)

    if root.flow_style:  # the whole file is {...} (e.g. JSON): stay in flow style
        if found is None:
            return _insert_before_close(text, root, f'"sources": [{flow_items}]', config_path)
        if isinstance(found[1], yaml.SequenceNode):
            return _insert_before_close(text, found[1], flow_items, config_path)
        raise ConfigError(f"{config_path}: sources: must be a list")

    if found is None:
        return text + "\nsources:\n" + _block_items(entries, 2, opml_name)
    key, value = found
    if isinstance(value, yaml.SequenceNode) and value.flow_style and value.value:
        return _insert_before_close(text, value, flow_items, config_path)  # sources: [{...}, {...}]
    if isinstance(value, yaml.SequenceNode) and not value.flow_style:
        indent = value.start_mark.column
    elif (isinstance(value, yaml.SequenceNode)  # sources: []
          or (isinstance(value, yaml.ScalarNode) and value.tag.endswith(":null"))):  # sources: / ~ / null
        indent = 2
        if value.end_mark.index > value.start_mark.index:
            # Remove the explicit empty value; a comment after it stays on the line.
            before, after = text[: value.start_mark.index], text[value.end_mark.index :]
            text = (before.rstrip(" \t") + (" " if after[:1] not in ("\n", "") else "")) + after.lstrip(" \t")
    else:
        raise ConfigError(f"{config_path}: sources: must be a list")

    # Where the list ends: before the next top-level key (and the comments directly above it), else at EOF.
    lines = text.splitlines(keepends=True)
    later = [k.start_mark.line for k, _ in keys if k.start_mark.index > key.start_mark.index]
    at = min(later) if later else len(lines)
    if later:  # leave the blank lines and comments that introduce the next key with it
        while at > key.start_mark.line + 1 and (not lines[at - 1].strip() or lines[at - 1].startswith("#")):
            at -= 1
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    block = _block_items(entries, indent, opml_name)
    if at > key.start_mark.line + 1 and lines[at - 1].strip():
        block = "\n" + block  # a blank line between what was there and what was imported
    return "".join(lines[:at]) + block + "".join(lines[at:])


def _insert_before_close(text: str, node: yaml.Node, items: str, config_path: str) -> str:
    """Add items at the end of a flow collection ([...] or {...}), before its closing bracket."""
    close = node.end_mark.index - 1
    if text[close : close + 1] not in ("]", "}"):  # pragma: no cover - PyYAML marks end after the bracket
        raise ConfigError(f"{config_path}: cannot find the end of the sources list; add the feeds by hand")
    sep = ", " if node.value else ""
    return f"{text[:close].rstrip()}{sep}{items}{text[close:]}"
