"""URL canonicalization: the identity key of an article across URL variants.

A canonical URL is a key, not necessarily a URL to fetch: by default it folds
``http``/``https`` and a leading ``www.``, which office sites serve alike.

:func:`canonical_url` is pure, idempotent (``canonical_url(canonical_url(u)) ==
canonical_url(u)``) and never raises: input it cannot read as an http(s) URL
comes back stripped of surrounding whitespace and otherwise unchanged.

Steps, in order:

1. scheme and host lower-cased; IDN hosts to punycode (IDNA 2008/UTS 46);
   ``host_aliases`` applied (chains followed); leading ``www.`` dropped;
   default ports dropped; user info dropped;
2. percent-encoding normalized (RFC 3986 §6.2.2): unreserved characters
   decoded, other escapes upper-cased, unsafe characters encoded;
3. ``;jsessionid=…``-style path parameters removed, dot segments resolved,
   repeated slashes folded, a trailing ``index.html`` (and kin) and trailing
   slash dropped;
4. tracking and session parameters removed, the rest sorted;
5. the fragment dropped, except a hash route (``#!…`` or ``#/…``), which
   single-page sites use as the real address of a page.

:func:`article_link` is the other gate: it turns a link found in a feed or a
page into the URL we store and fetch, or None: absolute http(s) only, with no
``user:password@`` (never needed to read public news, and the classic spoof
``https://www.epo.org@evil.example/``), no control characters or whitespace
inside, and at most ``MAX_LINK_LENGTH`` characters.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from urllib.parse import quote, unquote_plus, urljoin, urlsplit, urlunsplit

import idna

__all__ = ["DEFAULT_PORTS", "MAX_LINK_LENGTH", "TRACKING_PARAMS", "article_link", "canonical_url"]

# Query parameters that never identify content: campaign tags, click ids, session ids.
TRACKING_PARAMS = re.compile(
    r"^(utm_[a-z0-9_]*|fbclid|gclid|gclsrc|dclid|msclkid|twclid|mc_cid|mc_eid|_ga|_gl|yclid|igshid|"
    r"jsessionid|phpsessid|sessionid|session_id|aspsessionid[a-z]*|cfid|cftoken)$",
    re.IGNORECASE,
)
DEFAULT_PORTS = {"http": 80, "https": 443}

_INDEX_PAGE = re.compile(r"/(index|default)\.(html?|php|aspx?|jsp|shtml)$", re.IGNORECASE)
_PATH_SESSION = re.compile(r";(jsessionid|phpsessid|sid)=[^/]*", re.IGNORECASE)
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Characters left as they are in a path: unreserved, sub-delims, ":", "@", "/" and "%" (escapes).
_PATH_SAFE = "-._~!$&'()*+,;=:@/%"
_FRAGMENT_SAFE = "-._~!$&'()*+,;=:@/?%"
_QUERY_SAFE = "-._~!$'()*+,;:@/?%"  # not "&" and "=": they separate the fields
_HOST_CHARS = re.compile(r"^[a-z0-9\-._~!$&'()*+,;=:%]+$")  # RFC 3986 reg-name, plus ":" for IPv6
_PROPER_DOMAIN = re.compile(r"^[^.]+(\.[^.]+)+$")  # two or more labels, none empty
_HASH_ROUTE = re.compile(r"^[!/]")
# Longer than any server accepts in a request line (8 KB is the common limit; browsers allow more).
MAX_LINK_LENGTH = 16_384
_TAB_NEWLINE = re.compile(r"[\t\n\r]")
# Controls, spaces, lone surrogates, and what may never appear raw in a URL (WHATWG percent-encodes them).
_LINK_JUNK = re.compile(r"[\x00-\x20\x7f-\x9f\ud800-\udfff\"<>`]")


def article_link(link: str | None, base: str | None = None) -> str | None:
    """``link`` resolved against ``base`` as an absolute http(s) URL to store and fetch, or None.

    Credentials are dropped (``http://user:pw@host/x`` → ``http://host/x``); tabs and newlines
    inside are removed (as browsers do); spaces, control characters, quotes, angle brackets and
    backticks are percent-encoded. Junk, other schemes (``javascript:``, ``data:``, ``file:``)
    and links longer than ``MAX_LINK_LENGTH`` give None. Never raises.
    """
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        link = _TAB_NEWLINE.sub("", link.strip())  # as browsers do (WHATWG URL)
        absolute = urljoin(base, link) if base else link
        absolute = _LINK_JUNK.sub(lambda m: quote(m.group(0).encode("utf-8", "replace")), absolute)
        parts = urlsplit(absolute)
        if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
            return None
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        if "@" in parts.netloc:
            absolute = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    except ValueError:
        return None
    return absolute if len(absolute) <= MAX_LINK_LENGTH else None


def canonical_url(
    url: str,
    *,
    fold_scheme: bool = True,
    fold_www: bool = True,
    host_aliases: Mapping[str, str] | None = None,
) -> str:
    """Reduce a URL to its identity key.

    ``fold_scheme``: write ``http`` as ``https``; ``fold_www``: drop a leading
    ``www.``; ``host_aliases``: host → host it moved to (for example
    ``{"english.sipo.gov.cn": "english.cnipa.gov.cn"}``).
    """
    if not isinstance(url, str):
        return url
    url = url.strip()
    try:
        return _canonical(url, fold_scheme, fold_www, host_aliases or {})
    except Exception:  # junk in, junk out: a key function must not take a pipeline down
        return url


def _canonical(url: str, fold_scheme: bool, fold_www: bool, aliases: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    original_scheme = parts.scheme.lower()
    if original_scheme not in DEFAULT_PORTS:
        return url
    host = _host(parts.hostname or "")
    if not _HOST_CHARS.match(host):
        return url  # empty, or characters no host may have (spaces, controls, non-ASCII after IDNA)
    port = parts.port  # ValueError on a bad port: caller returns the input
    if aliases:
        host = _resolve_alias(host, aliases, fold_www)
    if fold_www:
        host = _fold_www(host)
    scheme = "https" if fold_scheme else original_scheme
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    netloc = host
    if port is not None and port not in (DEFAULT_PORTS[original_scheme], DEFAULT_PORTS[scheme]):
        netloc = f"{host}:{port}"

    path = _path(parts.path)
    query = _query(parts.query)
    fragment = _normalize_escapes(parts.fragment, _FRAGMENT_SAFE)
    if not _HASH_ROUTE.match(fragment):
        fragment = ""
    return urlunsplit((scheme, netloc, path, query, fragment))


def _host(host: str) -> str:
    host = host.strip().strip(".").lower()
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            with contextlib.suppress(UnicodeError):  # IDNA 2003, for names IDNA 2008 refuses
                host = host.encode("idna").decode("ascii")
    return host.strip(".")  # IDNA may map a character to nothing, leaving an edge dot


def _fold_www(host: str) -> str:
    """Drop leading ``www.`` labels while a proper domain remains (``www.com`` stays)."""
    while host.startswith("www.") and _PROPER_DOMAIN.match(host[4:]):
        host = host[4:]
    return host


def _resolve_alias(host: str, aliases: Mapping[str, str], fold_www: bool) -> str:
    """Follow host aliases to the end of the chain; a cycle resolves to its smallest member."""

    def norm(name: str) -> str:
        name = _host(str(name))
        return _fold_www(name) if fold_www else name

    table = {norm(k): norm(v) for k, v in aliases.items()}
    key = norm(host)
    seen: list[str] = []
    while key in table and key not in seen:
        seen.append(key)
        key = table[key]
    if key in seen:  # cycle: every member of it must land on the same name
        return min(seen[seen.index(key) :])
    return key if key != norm(host) else host


def _normalize_escapes(text: str, safe: str) -> str:
    """RFC 3986 §6.2.2: decode escaped unreserved characters, upper-case the other escapes,
    encode what may not appear raw (a lone ``%`` becomes ``%25``)."""
    if "%" not in text:  # no escapes to look at (the usual case)
        return quote(text, safe=safe)
    text = re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", text)

    def unescape(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return quote(_PERCENT.sub(unescape, text), safe=safe)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for an absolute path."""
    output: list[str] = []
    segments = path.split("/")[1:]
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        elif segment == ".":
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)


def _path(path: str) -> str:
    path = _PATH_SESSION.sub("", path)
    path = _normalize_escapes(path, _PATH_SAFE)
    if not path.startswith("/"):
        path = "/" + path
    path = _remove_dot_segments(path)
    if "//" in path:
        path = re.sub(r"/{2,}", "/", path)
    while True:  # "/a/index.html/" → "/a/index.html" → "/a/" → "/a"
        shorter = _INDEX_PAGE.sub("/", path.rstrip("/")) if path != "/" else path
        shorter = shorter.rstrip("/")
        if shorter == path:
            return path
        path = shorter


def _query(query: str) -> str:
    """Drop tracking parameters and sort the rest; escapes are normalized, never decoded to bytes
    and re-encoded, so distinct queries stay distinct (``+`` and ``%20`` are not folded)."""
    pairs = []
    for field in query.split("&"):
        if not field:
            continue
        key, sep, value = field.partition("=")
        if TRACKING_PARAMS.match(unquote_plus(key).strip()):
            continue
        key = _normalize_escapes(key, _QUERY_SAFE)
        pairs.append((key, _normalize_escapes(value, _QUERY_SAFE + "=") if sep else None))
    pairs.sort(key=lambda pair: (pair[0], pair[1] is not None, pair[1] or ""))
    return "&".join(key if value is None else f"{key}={value}" for key, value in pairs)
