"""Office HTML news pages → list entries and articles.

Two entry points, both pure (bytes in, records out) and both raising only
:class:`~aggregator.exceptions.ParseError`:

* :func:`parse_list_page` reads a news list with the source's ``list``
  recipe (CSS selectors): entry links, titles, dates, the next-page link.
* :func:`parse_article_page` reads one article. Per-source selectors from the
  ``article`` recipe come first; every field then has a generic fallback, so
  a source with no recipe at all still yields a clean article:

  ========== ===================================================================
  title      ``title`` selector → og:title / ArticleTitle meta → first ``h1`` →
             the list entry's title → ``<title>``
  labels     ``Date:``, ``Source:``, ``Topics:``… lines above and at the top of
             the body become fields and leave the body (:mod:`aggregator.labels`)
  published  ``date`` selector → labelled date → meta (article:published_time,
             pubdate, PubDate…) → ``<time datetime>`` → JSON-LD datePublished →
             the list entry's date → a labelled "Updated" date
  site date  the URL (TRS ``tYYYYMMDD``, Hanweb ``/art/Y/M/D/``) → page metadata;
             kept as ``site_published`` only when it is another day or time
  source_org ``source`` selector → labelled source → ContentSource meta
  topics     ``topics`` selector → labelled topics
  body       ``body`` selector (extraction "selectors") → trafilatura
             (extraction "fallback"); then furniture lines, leading label
             lines and a leading repeat of the title are dropped
  language   configured → ``<html lang>`` → detected from the body
  ========== ===================================================================

Why trafilatura for the fallback: it is maintained, it is the best-evaluated
open-source main-text extractor in published comparisons, and it needs no
per-site rules. It is imported lazily because its import is slow.
"""

from __future__ import annotations

import html
import json
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import soupsieve
from bs4 import BeautifulSoup, Comment, Tag
from bs4.element import AttributeValueWithCharsetSubstitution, PreformattedString
from soupsieve.css_match import CSSMatch

from ..dates import ParsedDate, date_from_url, find_date, parse_date
from ..encoding import decode_document
from ..exceptions import ParseError
from ..labels import DATE_FIELDS, is_furniture, read_label_line, split_labelled_lines, split_topics
from ..language import choose_language
from ..normalize import clean_line, clean_text, fold_whitespace, html_to_text, sanitize_html
from ..types import Article, ArticleRecipe, Source, article_id
from ..urls import article_link, canonical_url

__all__ = ["ListEntry", "ListPage", "parse_article_page", "parse_list_page"]


@dataclass(frozen=True)
class ListEntry:
    """One link on a news list page."""

    url: str
    title: str
    date: ParsedDate | None
    date_raw: str | None


@dataclass(frozen=True)
class ListPage:
    """The entries of one list page and the next page's URL, if any."""

    entries: tuple[ListEntry, ...]
    next_url: str | None


# --------------------------------------------------------------------------- heuristics as data

# Elements that are never article content.
NOISE_SELECTORS = ("script", "style", "noscript", "template", "nav", "footer", "iframe", "form", "svg")
# <header> is noise at page level only; an <article>'s own header holds its title and date.
HEADER_KEEP_INSIDE = ("article", "main")
# [role="…"] landmarks that are never article content.
NOISE_ROLES = ("navigation", "search")

# <meta name|property|itemprop> keys, lower-cased, in order of preference.
META_TITLE = ("og:title", "articletitle")
META_PUBLISHED = (
    "article:published_time", "pubdate", "publishdate", "publish-date", "publication_date",
    "datepublished", "dcterms.issued", "dc.date.issued", "dc.date", "dcterms.date", "og:published_time",
    "firstpublishedtime",
)
META_MODIFIED = ("article:modified_time", "og:updated_time", "datemodified", "dcterms.modified", "lastmodified")
META_SOURCE = ("contentsource",)
# og:description only: a plain <meta name="description"> is often one site-wide blurb.
META_DESCRIPTION = ("og:description",)

# Files that offices link from news lists instead of pages (notices as PDF, images, archives).
BINARY_SIGNATURES = (
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a ZIP archive or Office document"),
    (b"\xd0\xcf\x11\xe0", "a legacy Office document"),
    (b"\x1f\x8b", "gzip-compressed data"),
)
SCHEMES = ("http", "https")
TRAILING_WINDOW = 4  # last body lines searched for a date label ("Stand: …")
LEADING_WINDOW = 40  # lines before the body searched for labelled metadata
HEADER_FALLBACK_LINES = 60  # when the body cannot be located in the page text
JUNK_RATIO = 0.1  # share of U+FFFD / control characters that marks undecodable bytes
PROSE_CHARS = 200  # a leaf element longer than this is body text, never a label or widget
# Elements nested deeper than this are replaced by their text. Real pages stay far below it (a
# template that never closes its <div>s can pass it, and keeps its words); a hostile 100,000-level
# tree is slow to walk; and libxml2, which trafilatura parses with, drops whatever lies deeper than 256.
MAX_HTML_DEPTH = 250

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]")
_TITLE_KEY = re.compile(r"[\W_]+")
_LD_JSON = re.compile(r"ld\+json", re.IGNORECASE)
_BLOCK = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "section", "article",
          "blockquote", "dl", "dt", "dd", "tr", "td", "th", "figure", "pre", "header", "br", "hr"}

_NOISE_NAMES = frozenset(NOISE_SELECTORS)
# Elements whose text bs4 writes without entities (its HTML formatters' cdata_containing_tags).
_CDATA_TAGS = frozenset(("script", "style"))
# Selectors without pseudo-classes, sibling combinators, escapes or quoted strings: whether an
# element matches depends only on the element and its ancestors, so removing other elements does
# not change it, and joining them with ", " selects the union of what each selects.
_ORDER_FREE = re.compile(r"[^:+~|\\\"'()]+")
# soupsieve compares HTML tag and attribute names lower-casing ASCII letters only.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

T = TypeVar("T")


# --------------------------------------------------------------------------- shared helpers


def _error(message: str, source: Source, url: str) -> ParseError:
    return ParseError(" ".join(message.split()), source_id=source.id, url=url)


def _guard(source: Source, url: str, parse: Callable[[], T]) -> T:
    """Run ``parse``; anything but a ParseError becomes one (with the original as cause)."""
    try:
        return parse()
    except ParseError:
        raise
    except Exception as e:
        raise _error(f"could not parse page: {type(e).__name__}: {e}", source, url) from e


def _decode(content: bytes, headers: Mapping[str, str] | None, source: Source, url: str) -> str:
    if not content or not content.strip():
        raise _error("empty document", source, url)
    for signature, kind in BINARY_SIGNATURES:
        if content.startswith(signature):
            raise _error(f"not an HTML page: {kind}", source, url)
    text, _ = decode_document(content, headers or {}, source.encoding)
    sample = text[:20000]
    if not sample.strip():
        raise _error("empty document", source, url)
    if len(_CONTROL.findall(sample)) > JUNK_RATIO * len(sample):
        raise _error("undecodable content: binary data or an unknown encoding", source, url)
    return text


def _soup(text: str) -> BeautifulSoup:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        soup = BeautifulSoup(text, "lxml")
    _flatten_deep(soup, MAX_HTML_DEPTH)
    return soup


def _flatten_deep(root: Tag, limit: int) -> None:
    """Replace every element nested more than ``limit`` levels deep by its text, in one pass."""
    too_deep: list[Tag] = []
    stack: list[tuple[Tag, int]] = [(root, 0)]
    while stack:
        el, depth = stack.pop()
        for child in el.contents:
            if isinstance(child, Tag):
                if depth + 1 > limit:
                    too_deep.append(child)
                else:
                    stack.append((child, depth + 1))
    for el in too_deep:
        el.replace_with(" " + el.get_text(" ") + " ")


def _quoted(value: str) -> str:
    """bs4's ``quoted_attribute_value``."""
    if '"' not in value:
        return '"' + value + '"'
    if "'" not in value:
        return "'" + value + "'"
    return '"' + value.replace('"', "&quot;") + '"'


def _escape(text: str) -> str:
    """bs4's ``substitute_xml``: &, < and > as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _start_tag(el: Tag, name: str) -> str:
    parts = ["<", name]
    for key, value in sorted(el.attrs.items()):  # keys are distinct: ordered as bs4 orders (key, value) pairs
        parts.append(" ")
        parts.append(str(key))
        if value is None:
            continue
        if isinstance(value, list | tuple):
            value = " ".join(value)
        elif not isinstance(value, str):
            value = str(value)
        elif isinstance(value, AttributeValueWithCharsetSubstitution):
            value = value.substitute_encoding("utf-8")
        parts.append("=")
        parts.append(_quoted(_escape(value)))
    return "".join(parts)


def _markup(root: Tag) -> str:
    """``str(root)`` (bs4's ``decode()`` with the "minimal" formatter) in one loop over the tree,
    without bs4's per-node event and formatter calls: the markup is written several times per page."""
    if root._is_xml:
        return str(root)
    out: list[str] = []
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if type(node) is str:  # a closing tag
            out.append(node)
        elif isinstance(node, Tag):
            name = node.prefix + ":" + node.name if node.prefix else node.name
            contents = node.contents
            if not contents and node.can_be_empty_element is True:
                if not node.hidden:
                    out.append(_start_tag(node, name) + "/>")
                continue
            if node.hidden:
                stack.append("")
            else:
                out.append(_start_tag(node, name) + ">")
                stack.append("</" + name + ">")
            stack.extend(reversed(contents))
        elif isinstance(node, PreformattedString):
            out.append(node.PREFIX + node + node.SUFFIX)
        else:
            parent = node.parent
            text = node if parent is not None and parent.name in _CDATA_TAGS else _escape(node)
            out.append(node.PREFIX + text + node.SUFFIX)
    return "".join(out)


# The namespaces bs4 gives soupsieve for every document its lxml HTML builder makes.
_BS4_NAMESPACES = {"xml": "http://www.w3.org/XML/1998/namespace"}


@lru_cache(maxsize=256)
def _compiled(selector: str) -> soupsieve.SoupSieve:
    """The selector ``Tag.select`` would compile, built once: bs4 and soupsieve redo the namespace
    and cache-key work on every call, and recipes run the same few selectors on every page."""
    return soupsieve.compile(selector, namespaces=_BS4_NAMESPACES)


def _css_select(root: Any, selector: str) -> list[Tag]:
    """``root.select(selector)`` as a list."""
    if getattr(root, "_namespaces", None) != _BS4_NAMESPACES:
        return list(root.select(selector))
    return _compiled(selector).select(root)


def _css_select_one(root: Any, selector: str) -> Tag | None:
    """``root.select_one(selector)``: stops at the first match."""
    if getattr(root, "_namespaces", None) != _BS4_NAMESPACES:
        return root.select_one(selector)
    return _compiled(selector).select_one(root)


def _css_match(el: Tag, selector: str) -> bool:
    """``el.css.match(selector)``."""
    if getattr(el, "_namespaces", None) != _BS4_NAMESPACES:
        return el.css.match(selector)
    return _compiled(selector).match(el)


# A selector whose every alternative ends in a compound of only ASCII type, class, id and bare
# attribute-name parts, joined by descendant or child combinators: what its last compound names
# (a tag name, or a class) must hold for any element it selects.
_SIMPLE_COMPOUND = r"(?:[A-Za-z][A-Za-z0-9-]*|\*)?(?:[.#][A-Za-z_-][A-Za-z0-9_-]*|\[[A-Za-z_-][A-Za-z0-9_-]*\])*"
_SIMPLE_SELECTOR = re.compile(rf"\s*{_SIMPLE_COMPOUND}(?:(?:\s*>\s*|\s+){_SIMPLE_COMPOUND})*\s*")
_KEY = re.compile(r"([A-Za-z][A-Za-z0-9-]*)|\*?\.([A-Za-z_-][A-Za-z0-9_-]*)")


@lru_cache(maxsize=256)
def _selector_keys(selector: str) -> tuple[tuple[str, str], ...] | None:
    """("name", lower-case tag) or ("class", name) per alternative, or None when some alternative
    has neither (or the selector is not of the simple kind)."""
    keys = []
    for alternative in selector.split(","):
        if not alternative.strip() or not _SIMPLE_SELECTOR.fullmatch(alternative):
            return None
        m = _KEY.match(re.split(r"[\s>]+", alternative.strip())[-1])
        if m is None:
            return None
        keys.append(("name", m[1].translate(_ASCII_LOWER)) if m[1] else ("class", m[2]))
    return tuple(keys)


@dataclass
class _TagIndex:
    """A document's elements in document order, by lower-case name and by class.

    soupsieve's select walks every element and runs its whole matcher on each; with this, only the
    elements that have the tag name or class a selector ends with are matched (by the same compiled
    selector, so with the same result). Valid while elements leave the tree only by decompose(),
    which marks them.
    """

    root: BeautifulSoup
    position: dict[int, int]
    by_name: dict[str, list[Tag]]
    by_class: dict[str, list[Tag]]

    def candidates(self, keys: tuple[tuple[str, str], ...]) -> list[Tag]:
        lists = [(self.by_name if kind == "name" else self.by_class).get(value, []) for kind, value in keys]
        if len(lists) == 1:
            return lists[0]
        merged = {id(el): el for found in lists for el in found}
        return sorted(merged.values(), key=lambda el: self.position[id(el)])


def _find_all(index: _TagIndex | None, root: Tag, name: str) -> list[Tag]:
    """``root.find_all(name)`` (elements named exactly ``name``) through the index when it covers ``root``."""
    if index is None:
        return list(root.find_all(name))
    found = []
    for el in index.by_name.get(name.translate(_ASCII_LOWER), ()):
        if el.__dict__.get("_decomposed") or el.name != name:
            continue
        if root is not index.root and not any(parent is root for parent in el.parents):
            continue
        found.append(el)
    return found


def _tag_index(soup: BeautifulSoup) -> _TagIndex | None:
    """The index of ``soup``, or None where selecting through it might differ from soupsieve:
    a <template> (whose contents soupsieve does not enter) or a class attribute bs4 did not split."""
    position: dict[int, int] = {}
    by_name: dict[str, list[Tag]] = {}
    by_class: dict[str, list[Tag]] = {}
    stack = list(reversed(soup.contents))
    while stack:
        el = stack.pop()
        if not isinstance(el, Tag):
            continue
        position[id(el)] = len(position)
        name = el.name.translate(_ASCII_LOWER)
        if name == "template":
            return None
        by_name.setdefault(name, []).append(el)
        for key, value in el.attrs.items():
            if key.translate(_ASCII_LOWER) == "class":
                if key != "class" or not isinstance(value, list):
                    return None
                for token in value:
                    by_class.setdefault(token, []).append(el)
        stack.extend(reversed(el.contents))
    return _TagIndex(soup, position, by_name, by_class)


def _indexed_select(index: _TagIndex | None, root: Any, selector: str, limit: int = 0) -> list[Tag] | None:
    """``select(selector)`` over the whole document through ``index``; None where the index does not apply."""
    keys = _selector_keys(selector) if index is not None and root is index.root else None
    if keys is None or getattr(root, "_namespaces", None) != _BS4_NAMESPACES:
        return None
    compiled = _compiled(selector)
    matcher = CSSMatch(compiled.selectors, root, compiled.namespaces, compiled.flags)
    found = []
    for el in index.candidates(keys):  # type: ignore[union-attr]
        if not el.__dict__.get("_decomposed") and matcher.match(el):
            found.append(el)
            if len(found) == limit:
                break
    return found


def _select(root: Any, selector: str, what: str, source: Source, url: str,
            index: _TagIndex | None = None) -> list[Tag]:
    try:
        found = _indexed_select(index, root, selector)
        if found is not None:
            return found
        return _css_select(root, selector)
    except Exception as e:  # soupsieve raises SelectorSyntaxError and friends
        raise _error(f"invalid {what} selector {selector!r}: {e}", source, url) from e


def _select_one(root: Any, selector: str | None, what: str, source: Source, url: str,
                index: _TagIndex | None = None) -> Tag | None:
    if not selector:
        return None
    try:
        found = _indexed_select(index, root, selector, limit=1)
        if found is not None:
            return found[0] if found else None
        return _css_select_one(root, selector)  # stops at the first match, unlike select()
    except Exception as e:  # soupsieve raises SelectorSyntaxError and friends
        raise _error(f"invalid {what} selector {selector!r}: {e}", source, url) from e


def _base_url(base: Any, url: str) -> str:
    """``url`` resolved against the page's first ``<base href>`` element, if any."""
    if isinstance(base, Tag):
        href = str(base.get("href") or "").strip()
        if href:
            try:
                return urljoin(url, href)
            except ValueError:
                return url
    return url


def _absolute(base: str, href: str | None) -> str | None:
    """An absolute http(s) URL for a link, or None (javascript:, mailto:, bare fragments);
    without credentials or fragment (see :func:`aggregator.urls.article_link`)."""
    if not href:
        return None
    href = href.strip()
    if not href or href.startswith("#"):
        return None
    absolute = article_link(href, base)
    if absolute is None:
        return None
    try:
        return urlsplit(absolute)._replace(fragment="").geturl()
    except ValueError:
        return None


def _text(el: Tag | None) -> str:
    return clean_line(el.get_text(" ")) if el is not None else ""


def _date_parser(source: Source) -> Callable[[str | None], ParsedDate | None]:
    def read(text: str | None) -> ParsedDate | None:
        return find_date(text, timezone=source.timezone, date_order=source.date_order, roc_years=source.roc_years)

    return read


# --------------------------------------------------------------------------- list pages


def parse_list_page(
    content: bytes, headers: Mapping[str, str] | None, source: Source, url: str
) -> ListPage:
    """Entries (absolute links, titles, dates) and the next-page URL of one news list page."""
    return _guard(source, url, lambda: _parse_list_page(content, headers, source, url))


def _entry_title(link: Tag) -> str:
    text = _text(link)
    attr = clean_line(str(link.get("title") or ""))
    if not attr:
        return text
    stem = text.rstrip(".…").strip()
    # Lists truncate long titles ("…") and keep the full one in title="".
    if not text or (stem and attr.startswith(stem) and len(attr) >= len(text)) or text.endswith(("…", "...")):
        return attr
    return text


def _shares_scope(link: Tag, scope: Tag) -> bool:
    """Whether ``scope`` holds other entries' links too (a bare <a> list inside one container)."""
    return scope is not link and any(a is not link for a in _css_select(scope, "a[href]"))


def _siblings_until_next_link(link: Tag) -> Iterator[Any]:
    for sibling in link.next_siblings:
        if isinstance(sibling, Tag) and (sibling.name == "a" or _css_select_one(sibling, "a[href]") is not None):
            return
        yield sibling


def _list_date_element(link: Tag, scope: Tag, selector: str, source: Source, url: str) -> Tag | None:
    """The date element of one entry: inside its item, or (for bare links) among the link's next siblings."""
    if link is scope or not _shares_scope(link, scope) or link.parent is not scope:
        return _select_one(scope, selector, "list.date", source, url)
    for sibling in _siblings_until_next_link(link):
        if not isinstance(sibling, Tag):
            continue
        try:
            if _css_match(sibling, selector):
                return sibling
        except Exception as e:
            raise _error(f"invalid list.date selector {selector!r}: {e}", source, url) from e
        inner = _select_one(sibling, selector, "list.date", source, url)
        if inner is not None:
            return inner
    return None


def _text_around(link: Tag, scope: Tag) -> str:
    """Text of an entry outside its link (where an unmarked date sits)."""
    if link is not scope and link.parent is scope and _shares_scope(link, scope):
        parts = [s.get_text(" ") if isinstance(s, Tag) else str(s) for s in _siblings_until_next_link(link)]
        return clean_line(" ".join(parts))
    return clean_line(scope.get_text(" ").replace(link.get_text(" "), " ", 1))


def _parse_list_page(content: bytes, headers: Mapping[str, str] | None, source: Source, url: str) -> ListPage:
    recipe = source.list
    if recipe is None or not recipe.item:
        raise _error("source has no list recipe (list.item)", source, url)
    soup = _soup(_decode(content, headers, source, url))
    base = _base_url(soup.find("base", href=True), url)
    read_date = _date_parser(source)

    entries: list[ListEntry] = []
    seen: set[str] = set()
    for item in _select(soup, recipe.item, "list.item", source, url):
        if item.name == "a" and item.get("href"):
            link: Tag | None = item
            scope = item.parent if isinstance(item.parent, Tag) else item
        else:
            link = _css_select_one(item, "a[href]")
            scope = item
        if link is None:
            continue
        absolute = _absolute(base, str(link.get("href") or ""))
        if absolute is None:
            continue
        key = canonical_url(absolute)
        if key in seen:
            continue
        title = _entry_title(link)
        if not title:
            continue
        date_raw: str | None = None
        parsed: ParsedDate | None = None
        if recipe.date:
            date_el = _list_date_element(link, scope, recipe.date, source, url)
            if date_el is not None:
                date_raw = _text(date_el) or clean_line(str(date_el.get("datetime") or "")) or None
                parsed = read_date(str(date_el.get("datetime") or "")) or read_date(date_raw)
        else:
            # No date selector: a date written next to the link, outside its text.
            parsed = read_date(_text_around(link, scope))
            date_raw = parsed.raw if parsed else None
        seen.add(key)
        entries.append(ListEntry(url=absolute, title=title, date=parsed, date_raw=date_raw))

    next_url = None
    if recipe.next:
        next_el = _select_one(soup, recipe.next, "list.next", source, url)
        if next_el is not None:
            if next_el.name != "a" or not next_el.get("href"):
                inner = _css_select_one(next_el, "a[href]")
                next_el = inner if inner is not None else next_el
            candidate = _absolute(base, str(next_el.get("href") or ""))
            if candidate and canonical_url(candidate) != canonical_url(url):
                next_url = candidate
    return ListPage(entries=tuple(entries), next_url=next_url)


# --------------------------------------------------------------------------- article pages: metadata


@dataclass
class _HeadElements:
    """What the metadata readers need, gathered in one walk of the tree (before the noise goes):
    the same elements as ``find("base", href=True)``, ``find_all("meta")``,
    ``find_all("script", type=_LD_JSON)``, ``find("html")`` and ``find("title")``."""

    base: Tag | None = None
    metas: list[Tag] = field(default_factory=list)
    ld_scripts: list[Tag] = field(default_factory=list)
    html: Tag | None = None
    title: Tag | None = None


def _head_elements(soup: BeautifulSoup) -> _HeadElements:
    found = _HeadElements()
    for el in soup.descendants:
        if not isinstance(el, Tag):
            continue
        name = el.name
        if name == "meta":
            found.metas.append(el)
        elif name == "script":
            kind = el.get("type")
            if isinstance(kind, str) and _LD_JSON.search(kind):
                found.ld_scripts.append(el)
        elif name == "base":
            if found.base is None and el.get("href") is not None:
                found.base = el
        elif name == "html":
            if found.html is None:
                found.html = el
        elif name == "title" and found.title is None:
            found.title = el
    return found


def _meta(elements: list[Tag]) -> dict[str, str]:
    """<meta> values by lower-cased name / property / itemprop (first one wins)."""
    found: dict[str, str] = {}
    for el in elements:
        key = el.get("name") or el.get("property") or el.get("itemprop") or el.get("http-equiv")
        value = el.get("content")
        if key and value and str(value).strip():
            found.setdefault(str(key).strip().lower(), str(value).strip())
    return found


def _walk_json(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk_json(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_json(value)


def _json_ld(scripts: list[Tag]) -> dict[str, str]:
    """datePublished / dateModified / inLanguage from JSON-LD blocks (first value of each)."""
    found: dict[str, str] = {}
    for script in scripts:
        try:
            data = json.loads(script.string or script.get_text() or "")
        except (ValueError, TypeError):
            continue
        for obj in _walk_json(data):
            for key in ("datePublished", "dateModified", "inLanguage"):
                value = obj.get(key)
                if isinstance(value, str) and value.strip() and key not in found:
                    found[key] = value.strip()
    return found


def _html_lang(root: Tag | None, meta: dict[str, str]) -> str | None:
    if isinstance(root, Tag):
        for attr in ("lang", "xml:lang"):
            value = root.get(attr)
            if value and str(value).strip():
                return str(value).strip()
    return meta.get("content-language") or meta.get("language")


def _role(el: Tag) -> str | None:
    """The ``role`` attribute as soupsieve's ``[role=…]`` reads it (name in any ASCII case, lists joined)."""
    for key, value in el.attrs.items():
        if key == "role" or key.translate(_ASCII_LOWER) == "role":
            return value if isinstance(value, str) else " ".join(str(v) for v in value)
    return None


def _is_noise(el: Tag, in_article: bool) -> bool:
    name = el.name
    if name in _NOISE_NAMES or name.translate(_ASCII_LOWER) in _NOISE_NAMES:
        return True
    if name == "header" and not in_article:
        return True
    return bool(el.attrs) and _role(el) in NOISE_ROLES


def _compiles(selector: str) -> bool:
    try:
        _compiled(selector)
    except Exception:
        return False
    return True


def _remove_noise(soup: BeautifulSoup, recipe: ArticleRecipe | None, source: Source, url: str) -> _TagIndex | None:
    """Drop comments, noise elements, page-level headers and navigation / search landmarks, then the
    recipe's ``remove`` selectors; returns the index of what is left, for the recipe's other selectors.

    The generic part is one walk of the tree: what it removes is decided by each node and its
    ancestors alone, so removing it all at once leaves the tree that removing it step by step does
    (``NOISE_SELECTORS``, ``<header>`` outside ``HEADER_KEEP_INSIDE``, ``[role=navigation|search]``),
    without matching every element against each CSS selector.
    """
    doomed: list[Any] = []
    stack: list[tuple[Tag, bool]] = [(soup, False)]
    while stack:
        parent, in_article = stack.pop()
        for child in parent.contents:
            if isinstance(child, Tag):
                if _is_noise(child, in_article):
                    doomed.append(child)
                else:
                    stack.append((child, in_article or child.name in HEADER_KEEP_INSIDE))
            elif isinstance(child, Comment):
                doomed.append(child)
    for node in doomed:
        if isinstance(node, Tag):
            node.decompose()
        else:
            node.extract()
    index = _tag_index(soup)
    if not recipe or not recipe.remove:
        return index
    selectors = recipe.remove
    if len(selectors) > 1 and all(_ORDER_FREE.fullmatch(selector) and _compiles(selector) for selector in selectors):
        # What these select does not change as other elements go: one select for them all.
        try:
            joined = ", ".join(selectors)
            found = _indexed_select(index, soup, joined)
            if found is None:
                found = _css_select(soup, joined)
        except Exception:  # one of them is invalid: the loop below names it
            pass
        else:
            selectors = ()
            for el in found:
                el.decompose()
    for selector in selectors:
        for el in _select(soup, selector, "article.remove", source, url, index):
            el.decompose()
    return index


def _day_in_zone(parsed: ParsedDate, zone: str | None) -> date:
    if not parsed.has_time:
        return date.fromisoformat(parsed.value)
    moment = datetime.fromisoformat(parsed.value.replace("Z", "+00:00"))
    if zone:
        moment = moment.astimezone(ZoneInfo(zone))
    return moment.date()


def _same_date(a: ParsedDate, b: ParsedDate, zone: str | None) -> bool:
    """Whether two dates name the same thing: the same instant, or (if either is a bare day) the same local day."""
    if a.has_time and b.has_time:
        return a.value == b.value
    return _day_in_zone(a, zone) == _day_in_zone(b, zone)


# --------------------------------------------------------------------------- article pages: body


def _title_key(text: str) -> str:
    return _TITLE_KEY.sub("", text).casefold()


def _is_label_only(text: str) -> bool:
    return read_label_line(text) is not None


def _block_holders(root: Tag) -> set[int]:
    """The ids of the elements below ``root`` that have a block-level descendant: one pass,
    each element climbed to at most once, so deep trees cost no more than wide ones."""
    holders: set[int] = set()
    for el in root.descendants:
        if isinstance(el, Tag) and el.name in _BLOCK:
            parent = el.parent
            while parent is not None and parent is not root and id(parent) not in holders:
                holders.add(id(parent))
                parent = parent.parent
    return holders


def _leaf_blocks(root: Tag, holders: set[int] | None = None) -> Iterator[Tag]:
    """The largest elements without block-level descendants, in document order."""
    if holders is None:
        holders = _block_holders(root)
    for child in list(root.children):
        if not isinstance(child, Tag) or child.name in ("br", "hr", "img"):
            continue
        if id(child) in holders:
            yield from _leaf_blocks(child, holders)
        else:
            yield child


def _prune_element(body: Tag, title: str) -> None:
    """Drop widget elements, leading label / title-repeat elements and trailing date labels from a body element.

    Mirrors what :func:`_clean_body_lines` does to the text, so ``body_html``
    shows what ``body`` says.
    """
    title_key = _title_key(title) if title else ""
    leading = True
    kept: list[Tag] = []
    for el in list(_leaf_blocks(body)):
        text = clean_line(el.get_text(" "))
        if not text:
            continue
        if len(text) <= PROSE_CHARS and is_furniture(text):
            el.decompose()
            continue
        if leading:
            if len(text) <= PROSE_CHARS and (
                _is_label_only(text) or (title_key and _title_key(text) == title_key)
            ):
                el.decompose()
                continue
            leading = False
        kept.append(el)
    for el in kept[-TRAILING_WINDOW:]:
        read = read_label_line(clean_line(el.get_text(" ")))
        if read is not None and read[0] and set(read[0]) <= set(DATE_FIELDS):
            el.decompose()


def _clean_body_lines(lines: list[str], title: str) -> tuple[list[str], dict[str, str]]:
    """Drop furniture lines everywhere, and label lines and a title repeat at the top.

    Returns the kept lines and the fields found in the leading label lines.
    """
    title_key = _title_key(title) if title else ""
    fields: dict[str, str] = {}
    i = 0
    while i < len(lines):  # the leading block ends at the first line of content
        line = lines[i].strip()
        if not line or is_furniture(line) or (title_key and _title_key(line) == title_key):
            i += 1
            continue
        following = next((n for n in lines[i + 1 :] if n.strip()), None)
        read = read_label_line(line, following)
        if read is None:
            break
        found, used = read
        for key, value in found.items():
            fields.setdefault(key, value)
        i += 1
        if used == 2:
            while i < len(lines) and not lines[i].strip():
                i += 1
            i += 1
    kept = [line for line in lines[i:] if not (line.strip() and is_furniture(line))]
    # Some templates (German Government Site Builder: "Stand: 03.05.2021") put
    # the date after the text: read date labels among the last few lines.
    tail_start = max(0, len(kept) - TRAILING_WINDOW)
    for j in range(len(kept) - 1, tail_start - 1, -1):
        line = kept[j].strip()
        if not line:
            continue
        read = read_label_line(line)
        if read is None or not read[0] or not set(read[0]) <= set(DATE_FIELDS):
            continue
        for key, value in read[0].items():
            fields.setdefault(key, value)
        del kept[j]
    text = clean_text("\n".join(kept))
    return (text.split("\n") if text else []), fields


def _fallback_text(markup: str, url: str) -> str | None:
    import trafilatura  # slow to import: only pages without a body selector need it

    for options in ({"favor_precision": True}, {"favor_recall": True}):
        try:
            text = trafilatura.extract(
                markup, url=url, include_comments=False, include_tables=True, deduplicate=False, **options
            )
        except Exception:  # an extractor failure falls through to the next attempt
            text = None
        if text and text.strip():
            return text
    return None


# What html_to_text drops, and how it breaks lines (see normalize.html_to_text).
_TEXT_DROPPED = frozenset(("script", "style", "noscript", "template"))
_TEXT_CELLS = frozenset(("td", "th"))
_TEXT_LINES = frozenset(("li", "tr", "dt", "dd"))
_TEXT_BLOCKS = frozenset((
    "p", "div", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre", "section",
    "article", "header", "footer", "dl", "figure", "figcaption", "hr",
))
# Elements whose markup html_to_text would not read as a fragment of a body: the walk below is
# only for elements inside <body> (or <body> itself).
_NOT_IN_BODY = frozenset(("html", "head", "[document]"))


def _tree_text(root: Tag) -> str | None:
    """``html_to_text(_markup(root))`` read straight from the tree, or None where that is not known
    to agree (an element outside <body>).

    The tree came from libxml2, and writing it out and parsing it again gives the same elements and
    strings; reading it directly saves the serialisation and the second parse of every page. Same
    rules: whitespace folded except in <pre>, paragraph breaks after blocks, line breaks after
    <br>/<li>/<tr>/<dt>/<dd>, a space after table cells, adjacent breaks merged.
    """
    if root.name in _NOT_IN_BODY or root.name in _TEXT_DROPPED or (
        root.name != "body" and not any(p.name == "body" for p in root.parents)
    ):
        return None
    pieces: list[str] = []
    pending = 0  # newlines owed before the next text: 0, 1 (line) or 2 (paragraph)

    def add(value: str, pre: bool) -> None:
        nonlocal pending
        if not pre:
            value = fold_whitespace(value)  # as html_to_text folds text outside <pre>
        if not value:
            return
        if not value.strip():
            if not pending and pieces:
                pieces.append(" ")
            return
        if pending and pieces:
            pieces.append("\n" * pending)
        pending = 0
        pieces.append(value)

    # ("open", element, pre), ("text", string, pre) and ("close", level, _): level 0 nothing,
    # 1 line break, 2 paragraph break, 3 a space (table cell).
    stack: list[tuple[str, Any, bool]] = [("open", root, False)]
    while stack:
        action, node, pre = stack.pop()
        if action == "text":
            add(node, pre)
            continue
        if action == "close":
            if node == 3:
                if not pending and pieces:
                    pieces.append(" ")
            elif node:
                pending = max(pending, node)
            continue
        name = node.name
        inner = pre or name == "pre"
        if name == "br":
            pending = min(2, pending + 1)
        elif name in _TEXT_LINES:
            pending = max(pending, 1)
        elif name in _TEXT_BLOCKS:
            pending = max(pending, 2)
        level = 3 if name in _TEXT_CELLS else 1 if name in _TEXT_LINES else 2 if name in _TEXT_BLOCKS else 0
        stack.append(("close", level, pre))
        # Children go on the stack in reverse; a run of adjacent strings is one text, as lxml holds it.
        items: list[tuple[str, Any, bool]] = []
        run: list[str] = []
        for child in node.contents:
            if isinstance(child, Tag):
                if run:
                    items.append(("text", "".join(run), inner))
                    run = []
                if child.name not in _TEXT_DROPPED:
                    items.append(("open", child, inner))
            elif not isinstance(child, PreformattedString):
                run.append(child)
        if run:
            items.append(("text", "".join(run), inner))
        items.reverse()
        stack.extend(items)
    return "".join(pieces)


def _html_text(root: Tag) -> str:
    """``html_to_text(_markup(root))``, from the tree where that is known to agree."""
    text = _tree_text(root)
    return html_to_text(_markup(root)) if text is None else clean_text(text)


def _page_lines(root: Tag | None) -> list[str]:
    if root is None:
        return []
    text = _html_text(root)
    return [line for line in text.split("\n") if line.strip()]


def _header_lines(page_lines: list[str], body_lines: list[str]) -> list[str]:
    """Page lines just above the body (where TRS and Hanweb pages print Date/Source)."""
    first = next((clean_line(line) for line in body_lines if line.strip() and not is_furniture(line)), None)
    if first:
        for i, line in enumerate(page_lines):
            if clean_line(line) == first:
                return page_lines[max(0, i - LEADING_WINDOW) : i]
    return page_lines[:HEADER_FALLBACK_LINES]


# --------------------------------------------------------------------------- article pages: main


def parse_article_page(
    content: bytes,
    headers: Mapping[str, str] | None,
    source: Source,
    url: str,
    entry: ListEntry | None = None,
) -> Article:
    """One article page → :class:`Article` (see the module docstring for the order of fallbacks)."""
    return _guard(source, url, lambda: _parse_article_page(content, headers, source, url, entry))


def _first(*candidates: T | None) -> T | None:
    for candidate in candidates:
        if candidate:
            return candidate
    return None


def _parse_article_page(
    content: bytes,
    headers: Mapping[str, str] | None,
    source: Source,
    url: str,
    entry: ListEntry | None,
) -> Article:
    recipe = source.article
    soup = _soup(_decode(content, headers, source, url))
    head = _head_elements(soup)
    base = _base_url(head.base, url)
    read_date = _date_parser(source)

    def read_exact(text: str | None) -> ParsedDate | None:
        return parse_date(text, timezone=source.timezone, date_order=source.date_order, roc_years=source.roc_years)

    # Metadata that lives in <head> and <script>, read before the noise goes.
    meta = _meta(head.metas)
    ld = _json_ld(head.ld_scripts)
    html_lang = _html_lang(head.html, meta)
    doc_title = _text(head.title)

    index = _remove_noise(soup, recipe, source, url)
    bodies = _find_all(index, soup, "body")  # soup.body, the first <body>
    page_root = bodies[0] if bodies else soup

    # ---- title
    title = ""
    if recipe and recipe.title:
        title = _text(_select_one(soup, recipe.title, "article.title", source, url, index))
    if not title:
        title = clean_line(_first(*(meta.get(k) for k in META_TITLE)) or "")
    if not title:
        title = next((_text(h) for h in _find_all(index, soup, "h1") if _text(h)), "")
    if not title and entry is not None:
        title = clean_line(entry.title)
    if not title:
        title = doc_title

    # ---- body
    page_lines = _page_lines(page_root)
    body_el = _select_one(soup, recipe.body, "article.body", source, url, index) if recipe and recipe.body else None
    if body_el is not None:
        extraction = "selectors"
        raw_lines = _html_text(body_el).split("\n")
    else:
        extraction = "fallback"
        extracted = _fallback_text(_markup(soup), url)
        if extracted is None:
            extracted = _html_text(page_root)
        raw_lines = clean_text(extracted).split("\n")
    body_lines, body_fields = _clean_body_lines(raw_lines, title)
    body = "\n".join(body_lines).strip()
    body_html = ""
    if body_el is not None:
        _prune_element(body_el, title)
        body_html = sanitize_html(_markup(body_el), base)
    elif body:
        body_html = sanitize_html("".join(f"<p>{html.escape(line)}</p>" for line in body_lines if line.strip()), base)

    if not title and not body:
        raise _error("no article content found", source, url)
    if not title:
        title = body_lines[0][:200]

    # ---- labelled fields: just above the body first, then the top of the body
    header_fields, _ = split_labelled_lines(_header_lines(page_lines, body_lines))
    fields = {**body_fields, **header_fields}

    # ---- dates
    published: ParsedDate | None = None
    if recipe and recipe.date:
        date_el = _select_one(soup, recipe.date, "article.date", source, url, index)
        if date_el is not None:
            published = read_exact(str(date_el.get("datetime") or date_el.get("content") or "")) or read_date(
                _text(date_el)
            )
    if published is None and fields.get("date"):
        published = read_date(fields["date"])
    meta_dates = [d for d in (read_exact(meta.get(k)) for k in META_PUBLISHED) if d]
    time_el = next((el for el in _find_all(index, page_root, "time") if el.get("datetime") is not None), None) if (
        isinstance(page_root, Tag)
    ) else None
    if isinstance(time_el, Tag):
        parsed_time = read_exact(str(time_el.get("datetime") or ""))
        if parsed_time:
            meta_dates.append(parsed_time)
    ld_published = read_exact(ld.get("datePublished"))
    if ld_published:
        meta_dates.append(ld_published)
    if published is None and meta_dates:
        published = meta_dates[0]
    if published is None and entry is not None and entry.date is not None:
        published = entry.date
    updated_label = read_date(fields.get("updated"))
    if published is None and updated_label is not None:
        published = updated_label
    published_raw = published.raw if published is not None else None

    site: ParsedDate | None = date_from_url(url) or (meta_dates[0] if meta_dates else None)
    site_published = None
    if site is not None and (published is None or not _same_date(site, published, source.timezone)):
        site_published = site.value

    updated = _first(updated_label, *(read_exact(meta.get(k)) for k in META_MODIFIED), read_exact(ld.get("dateModified")))
    updated_value = None
    if updated is not None and (published is None or not _same_date(updated, published, source.timezone)):
        updated_value = updated.value

    # ---- source organisation
    source_org: str | None = None
    if recipe and recipe.source:
        source_el = _select_one(soup, recipe.source, "article.source", source, url, index)
        text = _text(source_el)
        if text:
            found, rest = split_labelled_lines([text])
            source_org = found.get("source") or (clean_line(text) if rest else None)
    if not source_org:
        source_org = fields.get("source") or _first(*(meta.get(k) for k in META_SOURCE))
    source_org = clean_line(source_org) or None

    # ---- topics
    topics: tuple[str, ...] = ()
    if recipe and recipe.topics:
        topic_els = _select(soup, recipe.topics, "article.topics", source, url, index)
        if len(topic_els) > 1:
            topics = tuple(dict.fromkeys(t for t in (_text(el) for el in topic_els) if t))
        elif topic_els:
            text = _text(topic_els[0])
            found, rest = split_labelled_lines([text])
            topics = split_topics(found.get("topics") if not rest else text)
    if not topics:
        topics = split_topics(fields.get("topics"))

    summary = clean_line(_first(*(meta.get(k) for k in META_DESCRIPTION)) or "") or None
    language = choose_language(source.language, html_lang or ld.get("inLanguage"), body or title)

    return Article(
        id=article_id(source.id, canonical_url(url)),
        source_id=source.id,
        office=source.office,
        url=url,
        title=title,
        guid=None,
        published=published.value if published else None,
        published_raw=published_raw,
        site_published=site_published,
        updated=updated_value,
        source_org=source_org,
        topics=topics,
        language=language,
        summary=summary,
        body=body or None,
        body_html=body_html or None,
        extraction=extraction,
    )

