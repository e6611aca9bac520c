"""Pure text, HTML and language helpers shared by every parser.

Nothing here does I/O. Stored HTML goes through nh3 (the Ammonia
sanitizer): a maintained allow-list sanitizer, never our own regexes.

Markup from the network is parsed with lxml's HTML parser with libxml2's
"huge" option, which still stops at ``MAX_HTML_DEPTH`` levels of nesting:
broken templates that never close a ``<div>`` reach a few hundred levels
(libxml2's default limit of 256 would drop everything after that point),
while a hostile 100,000-level document is cut there instead of costing
minutes in the sanitizer (html5ever's cost grows faster than the depth).
Text nested deeper than the limit is dropped. See docs/security.md.
"""

from __future__ import annotations

import html
import re
import threading
import unicodedata
from datetime import datetime, timezone
from urllib.parse import urljoin

import nh3
from lxml import etree

# Characters that hide or reorder text: zero-width, bidi marks, overrides and isolates, BOM,
# and the soft hyphen (invisible, and it splits words for full-text search: "Patent\u00adamt").
_INVISIBLE_CHARS = (
    "\u200b\u200c\u200d\u2060\ufeff\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e"
    "\u2066\u2067\u2068\u2069\u00ad"
)
_INVISIBLE = dict.fromkeys(map(ord, _INVISIBLE_CHARS), None)
# The same as a pattern: one C scan instead of str.translate's per-character mapping lookups.
_INVISIBLE_RE = re.compile(f"[{_INVISIBLE_CHARS}]")
# C0/C1 control characters except tab and newline, and lone UTF-16 surrogates (a JSON "\ud800"
# escape decodes to one; it is not a character, and neither nh3 nor SQLite can encode it).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# The same in HTML, where newline, tab and carriage return are harmless whitespace.
_HTML_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl", "dt", "em",
    "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li", "ol", "p",
    "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "time", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
    "abbr": {"title"},
}
URL_SCHEMES = {"http", "https", "mailto"}

# libxml2's nesting limit with XML_PARSE_HUGE (lxml's huge_tree): deeper markup is cut off.
MAX_HTML_DEPTH = 2048

_LINE_TAGS = {"br", "li", "tr", "dt", "dd"}
_CELL_TAGS = {"td", "th"}
_WHITESPACE = re.compile(r"\s+")
_BLOCK_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "blockquote",
    "pre", "section", "article", "header", "footer", "dd", "dt", "dl", "figure", "figcaption", "hr",
}


def clean_text(text: str | None) -> str:
    """Normalize Unicode (NFC), drop invisible and control characters, fold runs of spaces.

    Lines of printable characters (the usual case) take a quick path: their only whitespace is
    the space, and there is nothing to drop (invisible, control and surrogate characters and
    every other space character are not printable).
    """
    if not text:
        return ""
    if text.isascii():  # NFC already; printable unless it has a control character other than \n
        raw = text.encode("ascii")
        if len(raw.translate(None, _ASCII_CONTROLS)) != len(raw):
            return _clean_text_full(text)
        lines = text.split("\n")
    else:
        text = unicodedata.normalize("NFC", text)
        lines = text.split("\n")
        if not all(map(str.isprintable, lines)):
            return _clean_text_full(text)
    kept: list[str] = []
    blank = False
    for line in lines:
        if "  " in line or line[:1] == " " or line[-1:] == " ":
            line = " ".join(line.split())
        if line:
            if blank and kept:
                kept.append("")
            kept.append(line)
            blank = False
        else:
            blank = True
    return "\n".join(kept)


def _clean_text_full(text: str) -> str:
    """:func:`clean_text` for text with other characters than printable ones and newlines."""
    if not text.isascii():
        text = _INVISIBLE_RE.sub("", text)
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " "))
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


# The bytes _HTML_CONTROL matches in ASCII text: deleted with bytes.translate, which is faster.
_HTML_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
# The ASCII characters that are not printable, but for the newline.
_ASCII_CONTROLS = bytes([*range(0x00, 0x0A), *range(0x0B, 0x20), 0x7F])


def fold_whitespace(text: str) -> str:
    """``_WHITESPACE.sub(" ", text)``: str.split() knows the same whitespace as the pattern's \\s."""
    if not text:
        return text
    folded = " ".join(text.split())
    if not folded:
        return " "
    if text[0].isspace():
        folded = " " + folded
    if text[-1].isspace():
        folded += " "
    return folded


def _drop_html_controls(markup: str) -> str:
    """``_HTML_CONTROL.sub("", markup)``, quicker for ASCII markup without control characters."""
    if markup.isascii():
        raw = markup.encode("ascii")
        kept = raw.translate(None, _HTML_CONTROL_BYTES)
        return markup if len(kept) == len(raw) else kept.decode("ascii")
    return _HTML_CONTROL.sub("", markup)


def clean_line(text: str | None) -> str:
    """`clean_text` folded onto one line: for titles, organisations, topics."""
    return " ".join(clean_text(text).split())


_FULL_HTML = re.compile(r"^\s*<(?:html|!doctype)", re.IGNORECASE)
# What lxml.html.tostring removes from libxml2's HTML output (include_meta_content_type=False).
_META_CONTENT_TYPE = re.compile(r'<meta http-equiv="Content-Type"[^>]*>')


_PARSERS = threading.local()


def _html_parser() -> etree.HTMLParser:
    """This thread's HTML parser: lxml parsers must not be shared between threads (parsing runs in
    workers), but one may parse many documents, which saves setting up libxml2's context each time."""
    parser = getattr(_PARSERS, "html", None)
    if parser is None:
        parser = _PARSERS.html = etree.HTMLParser(huge_tree=True)
    return parser


def _parse_fragment(markup: str):
    """``lxml.html.fragment_fromstring(markup, create_parent="div")``, as plain lxml elements.

    The same steps as lxml.html (wrap in html/body unless the markup is a whole document,
    move the body's children into a new div), without lxml.html's element classes: their
    lookup calls back into Python for every element, the larger part of the cost.
    """
    parser = _html_parser()
    try:
        document = markup if _FULL_HTML.match(markup) else f"<html><body>{markup}</body></html>"
        doc = etree.fromstring(document, parser)
        if doc is None or doc.tag != "html":
            return None
        bodies = [e for e in doc if e.tag == "body"]
        if len(bodies) != 1:
            return None
        body = bodies[0]
        root = etree.Element("div")
        if body.text and body.text.strip():
            root.text = body.text
        root.extend(body)
        return root
    except Exception:  # lxml raises several types on junk; junk has no text worth keeping
        return None


def _drop_tree(el) -> None:
    """lxml.html's ``drop_tree``: remove the element and its content, keep its tail."""
    parent = el.getparent()
    if el.tail:
        previous = el.getprevious()
        joined = ((parent.text if previous is None else previous.tail) or "") + el.tail
        try:
            _set_text(parent, previous, joined)
        except ValueError:  # the parser keeps control characters that lxml refuses to be given back
            _set_text(parent, previous, _settable(joined))  # (the failed set removed the old text)
    parent.remove(el)


def _set_text(parent, previous, text: str) -> None:
    if previous is None:
        parent.text = text
    else:
        previous.tail = text


def _settable(text: str) -> str:
    """``text`` without the characters lxml will not set: a space for those Python counts as
    whitespace (the text is folded later, as it would have folded them), nothing for the rest
    (the text cleaning drops them anyway)."""
    return _HTML_CONTROL.sub(lambda m: " " if m.group().isspace() else "", text)


def _html_string(el) -> str:
    """``lxml.html.tostring(el, encoding="unicode")`` for a plain lxml element."""
    return _META_CONTENT_TYPE.sub("", etree.tostring(el, method="html", encoding="unicode"))


def _inner_html(root) -> str:
    """The fragment root's content as HTML: its text escaped, then ``_html_string`` of each child
    (tail included). The children are written in one serialisation of the root, whose ``<div>``
    and ``</div>`` are cut off: libxml2 writes each child the same way either way."""
    text = root.text
    head = html.escape(text or "", quote=False)
    if not len(root):
        return head
    root.text = None
    try:
        whole = etree.tostring(root, method="html", encoding="unicode")
    finally:
        root.text = text
    inner = whole[5:-6]  # "<div>" … "</div>"
    if "<meta" in inner:
        inner = _META_CONTENT_TYPE.sub("", inner)
    return head + inner


def html_to_text(markup: str | None) -> str:
    """Plain text of an HTML fragment, keeping paragraph breaks; scripts and styles dropped.

    Whitespace in the source (including newlines) is folded as a browser would, except
    in <pre>; <p>, <div>, headings… end a paragraph; <br>, <li>, <tr>, <dt>/<dd> end a
    line; table cells are separated by a space.
    """
    if not markup:
        return ""
    if "<" not in markup and "&" not in markup:
        return clean_text(markup)
    root = _parse_fragment(markup)
    if root is None:
        return clean_text(markup)
    return _tree_text(root)


_HIDDEN_TAGS = ("script", "style", "noscript", "template")
_WALK_EVENTS = ("start", "end", "comment", "pi")  # a comment or PI comes once: as its "end" (its tail)
_BREAK_KIND = {**dict.fromkeys(_BLOCK_TAGS, 2), **dict.fromkeys(_LINE_TAGS, 1), "br": 3,
               **dict.fromkeys(_CELL_TAGS, 4)}  # 3: <br>; 4: a table cell


def _tree_text(root) -> str:
    """:func:`html_to_text` of a parsed fragment (its scripts and styles are removed from it).

    A depth-first walk (lxml's iterwalk: no recursion, the tree may be MAX_HTML_DEPTH deep)
    collecting text and break requests; adjacent breaks merge instead of piling up.
    """
    for bad in list(root.iter(_HIDDEN_TAGS)):
        _drop_tree(bad)
    pieces: list[str] = []
    append = pieces.append
    pending = 0  # newlines owed before the next text: 0, 1 (line) or 2 (paragraph)
    pre = 0  # <pre> elements open
    kinds = _BREAK_KIND
    for event, el in etree.iterwalk(root, events=_WALK_EVENTS):
        tag = el.tag
        tag = tag.lower() if tag.__class__ is str else ""
        kind = kinds.get(tag, 0)
        if event == "start":
            if kind == 3:
                pending = 2 if pending else 1
            elif (kind == 1 or kind == 2) and pending < kind:
                pending = kind
            if tag == "pre":
                pre += 1
            if not tag:
                continue  # comments and processing instructions have no text to show
            value = el.text
        else:
            if kind == 4:
                if not pending and pieces:
                    append(" ")
            elif (kind == 1 or kind == 2) and pending < kind:
                pending = kind
            if tag == "pre":
                pre -= 1
            value = el.tail  # the tail belongs to the parent: its "pre" is the parent's
        if not value:
            continue
        if not value.strip():
            if not pending and pieces:
                append(" ")
            continue
        if not pre and not (value.isprintable() and "  " not in value):
            # (printable: no whitespace but the space, so with no double space it is folded already)
            folded = " ".join(value.split())
            if value[0].isspace():
                folded = " " + folded
            if value[-1].isspace():
                folded += " "
            value = folded
        if pending:
            if pieces:
                append("\n" * pending)
            pending = 0
        append(value)
    return clean_text("".join(pieces))


def absolutize_links(markup: str, base_url: str | None) -> str:
    """Make href/src attributes absolute against the document's base URL.

    The markup comes back re-serialized by lxml, so nested at most ``MAX_HTML_DEPTH`` deep
    (without a ``base_url`` that is all that happens).
    """
    if not markup:
        return markup
    root = _parse_fragment(markup)
    if root is None:
        return markup
    if base_url:
        _absolutize_tree(root, base_url)
    # root.text is decoded text: escape it again, or "&lt;b&gt;" would come back as a real tag.
    return _inner_html(root)


def _absolutize_tree(root, base_url: str) -> None:
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        for attr in ("href", "src"):
            value = el.get(attr)
            if value is not None:
                try:
                    el.set(attr, urljoin(base_url, value.strip()))
                except ValueError:
                    el.set(attr, "")


def sanitize_html(markup: str | None, base_url: str | None = None) -> str:
    """Safe HTML for storage and display: allow-listed tags and attributes, http(s) links only."""
    if not markup:
        return ""
    # Through lxml first: it bounds the nesting nh3 has to walk (see the module docstring).
    return _sanitize_parsed(absolutize_links(_drop_html_controls(markup), None), base_url)


def html_to_text_and_sanitized(markup: str | None, base_url: str | None = None) -> tuple[str, str]:
    """``(html_to_text(markup), sanitize_html(markup, base_url))``, parsing the markup once: the
    sanitizer's first lxml pass is the serialisation of the tree the text is then read from."""
    if not markup:
        return "", ""
    if ("<" not in markup and "&" not in markup) or _drop_html_controls(markup) != markup:
        return html_to_text(markup), sanitize_html(markup, base_url)
    root = _parse_fragment(markup)
    if root is None:
        return clean_text(markup), _sanitize_parsed(markup, base_url)
    serialized = _inner_html(root)  # before _tree_text removes scripts from the tree
    return _tree_text(root), _sanitize_parsed(serialized, base_url)


# Markup that is nothing but paragraphs of text: <p> elements one after the other, each holding
# some non-blank text without tags, entities other than &amp; &lt; &gt;, no-break spaces,
# carriage returns or control characters (text as lxml writes it). nh3 writes such markup back unchanged (html5ever
# builds the same paragraphs and escapes the same three characters), and so does lxml when it
# absolutizes links (there are none), so both passes are skipped (tests/test_normalize_quick_paths).
_TEXT_PARAGRAPHS = re.compile(
    r"(?:<p>(?=[^<]*[^\s<])(?:[^<>&\xa0\r\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]++|&(?:amp|lt|gt);)*+</p>)++")


def _sanitize_parsed(markup: str, base_url: str | None) -> str:
    """:func:`sanitize_html` after its first lxml pass."""
    if markup.startswith("<p>") and _TEXT_PARAGRAPHS.fullmatch(markup):
        cleaned = markup
    else:
        cleaned = _nh3_and_links(markup, base_url)
    if not cleaned.isascii():
        cleaned = _INVISIBLE_RE.sub("", cleaned)
    return _drop_html_controls(cleaned).strip()


def _nh3_and_links(markup: str, base_url: str | None) -> str:
    cleaned = nh3.clean(
        markup,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "math"},
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    if base_url:
        # Links are made absolute in nh3's output, not before: lxml and html5ever can disagree on
        # broken markup (where an element ends), but not on the clean HTML nh3 writes.
        cleaned = absolutize_links(cleaned, base_url)
    return cleaned


def normalize_language(tag: str | None) -> str | None:
    """`en-US`, `EN`, `zh_Hans_CN` → their primary subtag (`en`, `zh`); junk → None."""
    if not tag:
        return None
    # Content-Language may be a list ("de, en"): the first entry counts.
    primary = re.split(r"[-_\s,;]", tag.strip().lower(), maxsplit=1)[0]
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


def iso_utc(moment: datetime) -> str:
    """A datetime as ISO 8601 in UTC with a Z; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    utc = moment.astimezone(timezone.utc)
    # Not strftime("%Y"): glibc writes year 1 as "1", not "0001", and the value must sort as text.
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"


def now_iso() -> str:
    return iso_utc(datetime.now(timezone.utc))
