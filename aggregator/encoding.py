"""Turn the bytes of an HTML page into text without storing mojibake.

Office sites label their charset badly: GBK and Shift_JIS pages are served
as ``charset=utf-8``, and servers default to ISO-8859-1. So a declaration is
a hint that must survive a strict decode before we believe it:

1. the source's configured ``encoding`` (trusted: a human checked it);
2. a byte-order mark;
3. the HTTP ``Content-Type`` charset, then ``<meta charset>`` /
   ``<meta http-equiv="Content-Type">`` / the XML declaration in the first
   8 KB, each used only if it decodes the whole document strictly. Bytes that
   are valid UTF-8 with non-ASCII content are read as UTF-8 whatever a
   legacy label says (text in GBK, Shift_JIS or CP1252 almost never forms
   valid multi-byte UTF-8, while UTF-8 read as those always "decodes");
4. detection with charset-normalizer;
5. UTF-8 with replacement characters as the last resort.

Mostly-UTF-8 documents with a few stray Windows-1252 bytes (a CMS pasting a
Latin-1 string into a UTF-8 page) are read as UTF-8 with those bytes taken as
Windows-1252, rather than all of it as some legacy encoding: at least four
valid multi-byte UTF-8 sequences per invalid byte, which GBK, Shift_JIS or
Windows-1252 text never shows.

Double-encoded UTF-8 (UTF-8 bytes read as Windows-1252 and encoded to UTF-8
again: ``CafÃ©``) is undone when the whole document round-trips: every
character fits in Windows-1252 (or Latin-1) and those bytes are valid UTF-8.
Genuine text never does (a lone ``é`` is not a UTF-8 sequence), so this only
ever repairs, as feedparser already does for feeds.

Legacy labels are widened to the superset browsers actually use
(gb2312/gbk → gb18030, shift_jis → cp932, euc-kr → cp949,
iso-8859-1/ascii → cp1252).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping

__all__ = ["decode_document", "declared_encodings", "normalize_encoding", "undo_double_utf8"]

SNIFF_BYTES = 8192

# Encoding label (after codecs.lookup) → the codec we decode with.
SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "hz": "gb18030",
    "shift_jis": "cp932",
    "shift_jis_2004": "cp932",
    "shift_jisx0213": "cp932",
    "euc_kr": "cp949",
    "iso2022_kr": "cp949",
    "latin_1": "cp1252",
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "iso8859-9": "cp1254",
    "tis-620": "cp874",
    "iso8859-11": "cp874",
    "utf-8-sig": "utf-8",
    "big5": "cp950",
}
# When the detector finds several equally clean decodings (cp1250 and cp1252
# both read "Española" without errors, but only one says ñ), prefer the
# encodings office sites actually use, in this order.
PREFERRED = ("utf-8", "cp1252", "gb18030", "cp932", "cp949", "cp950", "euc_jp", "cp1251", "iso8859-15", "cp1250")
CHAOS_MARGIN = 0.02
# Labels Python does not know by these names.
ALIASES = {
    "x-gbk": "gbk",
    "x-sjis": "shift_jis",
    "sjis": "shift_jis",
    "ms932": "cp932",
    "windows-31j": "cp932",
    "x-euc-kr": "euc_kr",
    "ks_c_5601-1987": "cp949",
    "unicode": "utf-8",
    "utf8": "utf-8",
    "x-user-defined": "cp1252",
}

BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_HTTP_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([\w.:+-]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(
    rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([\w.:+-]+)""", re.IGNORECASE | re.DOTALL
)
# A UTF-8 lead byte (Â…ô) followed by a continuation byte, both seen through Windows-1252/Latin-1.
_MOJIBAKE = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
# One valid multi-byte UTF-8 sequence (RFC 3629).
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_HIGH_BYTES = bytes(range(0x80, 0x100))
MOSTLY_UTF8_RATIO = 4  # valid multi-byte sequences per invalid byte, at least
_XML_DECL = re.compile(rb"""^\s*<\?xml\b[^>]*\bencoding\s*=\s*["']([\w.:+-]+)""", re.IGNORECASE)


def normalize_encoding(label: str | None) -> str | None:
    """The Python codec to decode a charset label with (widened to its superset), or None if unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = ALIASES.get(label, label)
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    name = SUPERSETS.get(name, name)
    if name in ("utf-16", "utf-32"):  # a <meta> cannot honestly say this about bytes we could read it in
        return None
    return name


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def declared_encodings(content: bytes, headers: Mapping[str, str]) -> list[str]:
    """The codecs the HTTP header and the document declare, in that order (unknown labels left out)."""
    return _declared(content, headers)


def _declared(content: bytes, headers: Mapping[str, str]) -> list[str]:
    """Declared encodings in priority order: HTTP header, then the document itself."""
    found: list[str] = []
    content_type = _header(headers, "content-type") or ""
    m = _HTTP_CHARSET.search(content_type)
    if m:
        found.append(m.group(1))
    head = content[:SNIFF_BYTES]
    m2 = _XML_DECL.match(head)
    if m2:
        found.append(m2.group(1).decode("ascii", "replace"))
    m3 = _META_CHARSET.search(head)
    if m3:
        found.append(m3.group(1).decode("ascii", "replace"))
    result: list[str] = []
    for label in found:
        name = normalize_encoding(label)
        if name and name not in result:
            result.append(name)
    return result


def undo_double_utf8(text: str) -> str | None:
    """``text`` repaired when all of it is double-encoded UTF-8 (``CafÃ©`` → ``Café``), else None."""
    if not _MOJIBAKE.search(text):
        return None
    try:
        # Windows-1252, with the five bytes it leaves undefined (0x81, 0x8d…) passed through
        # as Latin-1 does: the double encoder read them as U+0081, U+008D….
        fixed = text.encode("cp1252", errors=_LATIN1_FALLBACK).decode("utf-8")
    except UnicodeError:
        return None
    return fixed if fixed != text else None


def _latin1_fallback(error: UnicodeError) -> tuple[bytes, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    chunk = error.object[error.start : error.end]
    if any(ord(char) > 0xFF for char in chunk):
        raise error
    return chunk.encode("latin-1"), error.end


_LATIN1_FALLBACK = "ipnews-latin1-fallback"
codecs.register_error(_LATIN1_FALLBACK, _latin1_fallback)


def _cp1252_bytes(error: UnicodeError) -> tuple[str, int]:
    """Decoding: a byte that is not UTF-8 read as Windows-1252 (Latin-1 where it is undefined)."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    byte = error.object[error.start : error.start + 1]
    try:
        return byte.decode("cp1252"), error.start + 1
    except UnicodeDecodeError:
        return byte.decode("latin-1"), error.start + 1


_CP1252_BYTES = "ipnews-cp1252-bytes"
codecs.register_error(_CP1252_BYTES, _cp1252_bytes)


def _mostly_utf8(content: bytes) -> str | None:
    """UTF-8 text with a few stray Windows-1252 bytes, decoded as such; None if it is not that."""
    valid = 0
    valid_bytes = 0
    for match in _UTF8_MULTIBYTE.finditer(content):
        valid += 1
        valid_bytes += match.end() - match.start()
    invalid = len(content) - len(content.translate(None, _HIGH_BYTES)) - valid_bytes
    if valid == 0 or valid < MOSTLY_UTF8_RATIO * invalid:
        return None
    return content.decode("utf-8", errors=_CP1252_BYTES)


def _strict(content: bytes, encoding: str) -> str | None:
    try:
        return content.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _detect(content: bytes) -> tuple[str, str] | None:
    """Best strict decoding that charset-normalizer proposes, or None."""
    from charset_normalizer import from_bytes

    try:
        results = from_bytes(content)
    except Exception:  # the detector must never take the parser down with it
        return None
    candidates: list[tuple[float, int, str, str]] = []  # (chaos, preference, codec, text)
    for match in results:
        names = [normalize_encoding(label) for label in [match.encoding, *match.could_be_from_charset]]
        ranked = sorted(
            {n for n in names if n}, key=lambda n: PREFERRED.index(n) if n in PREFERRED else len(PREFERRED)
        )
        for name in ranked:
            text = _strict(content, name)
            if text is not None:
                rank = PREFERRED.index(name) if name in PREFERRED else len(PREFERRED)
                candidates.append((match.chaos, rank, name, text))
                break
    if not candidates:
        return None
    least = min(c[0] for c in candidates)
    _, _, name, text = min((c for c in candidates if c[0] <= least + CHAOS_MARGIN), key=lambda c: c[1])
    return text, name


def decode_document(
    content: bytes, headers: Mapping[str, str] | None = None, override: str | None = None
) -> tuple[str, str]:
    """Decode a fetched document; returns (text, the codec used)."""
    headers = headers or {}
    if override:
        name = normalize_encoding(override)
        if name:
            return content.decode(name, errors="replace"), name

    for bom, name in BOMS:
        if content.startswith(bom):
            return content[len(bom) :].decode(name, errors="replace"), name

    if not content:
        return "", "utf-8"

    utf8 = _strict(content, "utf-8")
    non_ascii = not content.isascii()
    declared = _declared(content, headers)

    if utf8 is not None and (non_ascii or not declared):
        # Valid multi-byte UTF-8 is decisive; pure ASCII needs no label at all.
        return undo_double_utf8(utf8) or utf8, "utf-8"
    if not non_ascii and b"\x1b" not in content:
        return content.decode("ascii"), declared[0] if declared else "utf-8"

    if all(name == "utf-8" for name in declared):
        mostly = _mostly_utf8(content)
        if mostly is not None:
            return mostly, "utf-8"

    for name in declared:
        text = _strict(content, name)
        if text is not None:
            return text, name

    detected = _detect(content)
    if detected:
        return detected
    return content.decode("utf-8", errors="replace"), "utf-8"
