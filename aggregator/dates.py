"""Multilingual date parsing for office news pages (pure, no I/O).

Every parser here returns a :class:`ParsedDate` whose ``value`` is either a
bare day (``2021-05-03``, never shifted by a time zone: a librarian reads it
as the office wrote it) or a UTC instant (``2021-05-03T06:52:23Z``). A time
without an offset in the text is read in the source's configured time zone
(UTC when none is configured). Unparseable or impossible input gives None;
nothing here ever falls back to "today".

Why not ``dateparser``: it is built to *guess*. It reorders day and month from
the system or detected locale, fills a missing day or year from the current
date, and knows neither Japanese era years (令和3年, R3.5.3) nor ROC/Minguo
years (114-05-22). Office pages need the opposite: the day/month order is a
per-source setting (``date_order``), ROC years are opt-in (``roc_years``), and
an unreadable date must stay None. A short chain of compiled patterns does
this deterministically and fast.

Recognised forms (full-width digits and punctuation are folded first):

* ISO 8601 dates and datetimes, with ``T`` or a space, ``Z`` or an offset;
  ``2021/5/7 14:52:23`` and ``2021.5.7`` (year first is always y-m-d), even
  when the time or following text is glued on (``2020/5/714:52:23来源：…``);
  Korean ``2025.09.05.`` and ``2025. 9. 5.``;
* ``03.05.2021``, ``03/05/2021``, ``03-05-2021``: day first unless
  ``date_order="mdy"``; a first number above 12 can only be a day, a second
  above 12 only a day in m/d order; two-digit years (``20/08/25``) only in
  :func:`parse_date`, where ``date_order="ymd"`` reads them year first;
* month names in English, French, German, Spanish, Portuguese, Italian,
  Dutch and Russian: ``May 3, 2021``, ``Thursday Feb 09, 2023``,
  ``3 May 2021``, ``1er mai 2021``, ``3. Mai 2021``, ``3 de mayo de 2021``,
  RFC 822/1123 ``Wed, 02 Jun 2010 21:33:33 +0000``;
* CNIPA's ``4 28,2023`` (month day, year);
* ``2021年5月3日`` (optionally ``14:52`` / ``14时52分``), Korean
  ``2025년 9월 5일`` (optionally ``오후 2:30``);
* Japanese eras ``令和3年5月3日``, ``令和元年``, ``平成31年4月1日``, ``R3.5.3``;
* ROC years ``114-05-22``, ``114年5月22日`` with ``roc_years=True``; an explicit
  ``民國``/``民国`` prefix is read as ROC whatever the setting.

``parse_date`` reads a date at the start of a string (after brackets and a
weekday); text after the date is ignored. ``find_date`` finds the first date
anywhere. ``date_from_url`` reads CMS dates in URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from functools import lru_cache
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ParsedDate", "date_from_url", "find_date", "parse_date"]


@dataclass(frozen=True)
class ParsedDate:
    """A parsed date: ``value`` is ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SSZ`` (UTC)."""

    value: str
    has_time: bool
    raw: str


# --------------------------------------------------------------------------- data

# Month names (lower case, accents as written; unaccented spellings listed too).
MONTH_NAMES: dict[str, int] = {}
_MONTHS_BY_LANGUAGE = {
    "en": (
        "january february march april may june july august september october november december",
        "jan feb mar apr may jun jul aug sep oct nov dec",
    ),
    "fr": (
        "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
        "janv févr mars avr mai juin juil août sept oct nov déc",
    ),
    "fr-plain": (
        "janvier fevrier mars avril mai juin juillet aout septembre octobre novembre decembre",
        "janv fevr mars avr mai juin juil aout sept oct nov dec",
    ),
    "de": (
        "januar februar märz april mai juni juli august september oktober november dezember",
        "jan feb mrz apr mai jun jul aug sep okt nov dez",
    ),
    "de-extra": (
        "jänner feber maerz april mai juni juli august september oktober november dezember",
        "jän feb mär apr mai jun jul aug sept okt nov dez",
    ),
    "es": (
        "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
        "ene feb mar abr may jun jul ago sep oct nov dic",
    ),
    "es-extra": (
        "enero febrero marzo abril mayo junio julio agosto setiembre octubre noviembre diciembre",
        "ene feb mar abr may jun jul ago set oct nov dic",
    ),
    "pt": (
        "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro",
        "jan fev mar abr mai jun jul ago set out nov dez",
    ),
    "it": (
        "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre",
        "gen feb mar apr mag giu lug ago set ott nov dic",
    ),
    "nl": (
        "januari februari maart april mei juni juli augustus september oktober november december",
        "jan feb mrt apr mei jun jul aug sep okt nov dec",
    ),
    # Russian genitive ("3 мая 2021") and nominative forms.
    "ru": (
        "января февраля марта апреля мая июня июля августа сентября октября ноября декабря",
        "январь февраль март апрель май июнь июль август сентябрь октябрь ноябрь декабрь",
    ),
}
for _full, _short in _MONTHS_BY_LANGUAGE.values():
    for _names in (_full, _short):
        for _number, _name in enumerate(_names.split(), start=1):
            if MONTH_NAMES.setdefault(_name, _number) != _number:  # pragma: no cover - data check
                raise ValueError(f"month name {_name!r} is ambiguous")
MONTH_NAMES["sept"] = 9

_WEEKDAYS_BY_LANGUAGE = (
    "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun",
    "lundi mardi mercredi jeudi vendredi samedi dimanche",
    "montag dienstag mittwoch donnerstag freitag samstag sonntag",
    "lunes martes miércoles miercoles jueves viernes sábado sabado domingo",
)
WEEKDAYS = tuple(day for names in _WEEKDAYS_BY_LANGUAGE for day in names.split())

# Japanese eras: first Gregorian year of each (year N of an era = start + N - 1).
ERAS = {
    "令和": 2019, "㋿": 2019, "R": 2019,
    "平成": 1989, "㍻": 1989, "H": 1989,
    "昭和": 1926, "㍼": 1926, "S": 1926,
    "大正": 1912, "㍽": 1912, "T": 1912,
    "明治": 1868, "㍾": 1868, "M": 1868,
}
ROC_EPOCH = 1911  # ROC year 1 = 1912

# Time-zone abbreviations we accept. Ambiguous ones (CST is China *and* US
# Central, IST is India *and* Ireland) are left out on purpose: the source's
# configured zone is a better answer than a guess.
ZONE_ABBREVIATIONS = {
    "Z": 0, "UT": 0, "UTC": 0, "GMT": 0,
    "EST": -5 * 60, "EDT": -4 * 60, "CDT": -5 * 60, "MST": -7 * 60, "MDT": -6 * 60,
    "PST": -8 * 60, "PDT": -7 * 60, "CET": 60, "CEST": 120, "BST": 60,
    "JST": 9 * 60, "KST": 9 * 60, "HKT": 8 * 60, "SGT": 8 * 60, "AEST": 600, "AEDT": 660,
}

YEAR_MIN, YEAR_MAX = 1850, 2199

# Full-width ASCII variants → ASCII, ideographic space → space. One character
# for one character, so match positions still index the original string.
_FOLD = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_FOLD[0x3000] = 0x20
_FOLD[0x00A0] = 0x20

# --------------------------------------------------------------------------- patterns

_NOT_BEFORE = r"(?<![0-9A-Za-z])"
_MONTH_ALT = "|".join(sorted((re.escape(m) for m in MONTH_NAMES), key=len, reverse=True))
_MONTH = rf"(?<![^\W\d_])(?P<mon>{_MONTH_ALT})(?![^\W\d_])\.?"
_WEEKDAY = (
    r"(?:(?:" + "|".join(sorted(WEEKDAYS, key=len, reverse=True)) + r")(?![^\W\d_])\.?,?\s*)?"
)
_ERA_ALT = "|".join(re.escape(e) for e in ERAS if len(e) > 1 or not e.isascii())

# Each pattern matches the date part only; the time is read by _TIME after it.
# Named groups: y, m, d (numbers), mon (month name), a/b (ambiguous day/month),
# era/ey (era and era year), yy (two-digit year).
_PATTERNS: dict[str, re.Pattern[str]] = {
    # 2021-05-03, 2021/5/7, 2021.5.7, 2025.09.05., 2025. 9. 5.; the second day
    # alternative reads a time glued to the day (2020/5/714:52:23).
    "ymd": re.compile(
        _NOT_BEFORE
        + r"(?P<y>\d{4})(?P<s>-|/|\.\s?)(?P<m>\d{1,2})(?P=s)"
        r"(?:(?P<d>\d{1,2})(?!\d)|(?P<dg>\d{1,2}?)(?=\d{2}:\d{2}))\.?"
    ),
    # 03.05.2021, 03/05/2021, 3-5-2021 (order decided later)
    "num": re.compile(_NOT_BEFORE + r"(?P<a>\d{1,2})(?P<s>[-/.])(?P<b>\d{1,2})(?P=s)(?P<y>\d{4})(?!\d)"),
    # 2021年5月3日, 2025년 9월 5일
    "cjk": re.compile(
        _NOT_BEFORE + r"(?P<y>\d{4})\s*[年년]\s*(?P<m>\d{1,2})\s*[月월]\s*(?P<d>\d{1,2})\s*[日号號일]?"
    ),
    # 令和3年5月3日, 令和元年5月1日
    "era": re.compile(
        rf"(?P<era>{_ERA_ALT})\s*(?P<ey>\d{{1,2}}|元)\s*年\s*(?P<m>\d{{1,2}})\s*月\s*(?P<d>\d{{1,2}})\s*日?"
    ),
    # R3.5.3, H31.4.1 (capital letters only)
    "era_letter": re.compile(
        r"(?<![0-9A-Za-z])(?P<era>[RHSTM])\s?(?P<ey>\d{1,2})(?P<s>[./-])(?P<m>\d{1,2})(?P=s)(?P<d>\d{1,2})(?!\d)"
    ),
    # 民國114年5月22日 / 民国114-05-22: explicit ROC, always read as such
    "roc_explicit": re.compile(
        r"(?:中華|中华)?民[國国]\s*(?P<y>\d{1,3})\s*(?:年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日?"
        r"|(?P<s>[-/.])(?P<m2>\d{1,2})(?P=s)(?P<d2>\d{1,2})(?!\d))"
    ),
    # May 3, 2021 / Thursday Feb 09, 2023 / May 3rd 2021
    "mdy_name": re.compile(
        r"(?<![^\W\d_])" + _WEEKDAY + _MONTH + r"\s*(?P<d>\d{1,2})(?:st|nd|rd|th)?(?!\d),?\s+(?P<y>\d{4})(?!\d)",
        re.IGNORECASE,
    ),
    # 3 May 2021 / 1er mai 2021 / 3. Mai 2021 / 3 de mayo de 2021 / 3 мая 2021 / Wed, 02 Jun 2010
    "dmy_name": re.compile(
        r"(?<![^\W\d_])" + _WEEKDAY + r"(?<!\d)(?P<d>\d{1,2})(?:st|nd|rd|th|er|º|°|\.)?[\s-]*(?:de\s+|of\s+)?"
        + _MONTH
        + r"[\s,-]*(?:del?\s+)?(?P<y>\d{4})(?!\d)",
        re.IGNORECASE,
    ),
    # CNIPA English "Updated: 4 28,2023"
    "md_comma": re.compile(_NOT_BEFORE + r"(?P<m>\d{1,2})\s+(?P<d>\d{1,2})\s*,\s*(?P<y>\d{4})(?!\d)"),
}

# ROC years without a prefix (only with roc_years=True): 114-05-22, 114/5/22, 114年5月22日
_ROC = re.compile(
    _NOT_BEFORE
    + r"(?P<y>\d{2,3})(?:\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日?"
    r"|(?P<s>[-/.])(?P<m2>\d{1,2})(?P=s)(?P<d2>\d{1,2})(?!\d))"
)
# Two-digit years (20/08/25), only for a whole-string parse_date.
_SHORT_YEAR = re.compile(r"(?P<a>\d{1,2})(?P<s>[/.])(?P<b>\d{1,2})(?P=s)(?P<yy>\d{2})(?![\d/.])")

_TIME = re.compile(
    r"(?:T|\s*,?\s*(?:(?:at|à|um|a\s+las|às|alle|kl\.)\s+)?)"
    r"(?:(?P<ap1>上午|下午|午前|午後|오전|오후)\s*)?"
    r"(?P<H>\d{1,2})\s*(?:[:時时点시]\s*)(?P<M>\d{1,2})(?!\d)\s*(?:[分분](?![\w]))?"
    r"(?:(?::(?P<S>\d{2})(?:[.,]\d{1,9})?)|\s*(?P<S2>\d{1,2})\s*[秒초])?"
    r"(?:\s*(?P<ap2>[aApP])\.?\s?[mM]\.?(?![A-Za-z]))?"
    r"(?:\s*(?:Uhr|h)(?![A-Za-z]))?"
)
_ZONE = re.compile(
    r"\s*\(?\s*(?:"
    r"(?:UTC|GMT)\s*(?P<o1>[+-]\d{1,2}(?::?\d{2})?)"
    r"|(?P<o2>[+-]\d{2}:?\d{2})(?!\d)"
    r"|(?P<abbr>" + "|".join(sorted(ZONE_ABBREVIATIONS, key=len, reverse=True)) + r")(?![A-Za-z])"
    r")\s*\)?"
)
_LEADING_JUNK = re.compile(r"[\s\[\(（【〔<「『\"'“‘]*")

# URL date patterns, tried in order on the URL path.
_URL_PATTERNS = (
    re.compile(r"/t(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})_\d+"),  # TRS: t20210510_2385303.html
    re.compile(r"/art/(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})/"),  # Hanweb: /art/2023/4/28/art_…
    re.compile(r"/(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})(?=/|$|\.html?$)"),  # /2021/05/03/
    re.compile(r"/(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})(?=/|$)"),  # /2021-05-03/
    re.compile(r"/(?P<y>(?:19|20)\d{2})(?P<m>\d{2})(?P<d>\d{2})(?=/|$|\.html?$|_)"),  # /20210503/
)


# --------------------------------------------------------------------------- helpers


@lru_cache(maxsize=64)
def _zone(name: str | None) -> dt_timezone | ZoneInfo:
    if not name:
        return dt_timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {name!r}") from e


def _valid_day(y: int, m: int, d: int) -> date | None:
    if not (YEAR_MIN <= y <= YEAR_MAX):
        return None
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _resolve_order(a: int, b: int, order: str | None) -> tuple[int, int]:
    """(month, day) from two ambiguous numbers: a number above 12 can only be a day."""
    if a > 12 >= b:
        return b, a
    if b > 12 >= a:
        return a, b
    return (a, b) if order == "mdy" else (b, a)


def _month_number(name: str) -> int | None:
    return MONTH_NAMES.get(name.lower().rstrip("."))


def _day_from_match(kind: str, g: dict[str, str | None], date_order: str | None) -> date | None:
    """The calendar day a pattern match stands for, or None when impossible."""
    if kind in ("ymd", "cjk", "md_comma"):
        return _valid_day(int(g["y"]), int(g["m"]), int(g["d"] or g["dg"]))  # type: ignore[arg-type]
    if kind == "num":
        m, d = _resolve_order(int(g["a"]), int(g["b"]), date_order)  # type: ignore[arg-type]
        return _valid_day(int(g["y"]), m, d)  # type: ignore[arg-type]
    if kind in ("era", "era_letter"):
        ey = 1 if g["ey"] == "元" else int(g["ey"])  # type: ignore[arg-type]
        if ey < 1:
            return None
        return _valid_day(ERAS[g["era"]] + ey - 1, int(g["m"]), int(g["d"]))  # type: ignore[index,arg-type]
    if kind in ("roc", "roc_explicit"):
        y = int(g["y"])  # type: ignore[arg-type]
        if y < 1:
            return None
        m, d = (g["m"], g["d"]) if g.get("m") else (g["m2"], g["d2"])
        return _valid_day(ROC_EPOCH + y, int(m), int(d))  # type: ignore[arg-type]
    if kind in ("mdy_name", "dmy_name"):
        month = _month_number(g["mon"] or "")
        if month is None:
            return None
        return _valid_day(int(g["y"]), month, int(g["d"]))  # type: ignore[arg-type]
    if kind == "short_year":
        yy = int(g["yy"])  # type: ignore[arg-type]
        a, b = int(g["a"]), int(g["b"])  # type: ignore[arg-type]
        if date_order == "ymd":
            return _valid_day(2000 + a if a < 70 else 1900 + a, b, yy)
        m, d = _resolve_order(a, b, date_order)
        return _valid_day(2000 + yy if yy < 70 else 1900 + yy, m, d)
    return None  # pragma: no cover


_Found = tuple[int, int, date, "datetime | None"]  # start, end, day, aware datetime or None


def _read_time(
    text: str, pos: int, day: date, tz_name: str | None
) -> tuple[int, datetime | None] | None:
    """Read an optional time (and zone) at ``pos``.

    Returns (end, aware datetime) when a valid time follows, (pos, None) when
    no time follows, and None when a time follows but is impossible (25:00).
    """
    tm = _TIME.match(text, pos)
    if not tm:
        return pos, None
    hour, minute = int(tm["H"]), int(tm["M"])
    second = int(tm["S"] or tm["S2"] or 0)
    marker = tm["ap1"] or (tm["ap2"] or "").lower()
    if marker:
        if not 1 <= hour <= 12 and not (hour == 0 and marker in ("a", "上午", "午前", "오전")):
            return None
        if marker in ("p", "下午", "午後", "오후") and hour != 12:
            hour += 12
        elif marker in ("a", "上午", "午前", "오전") and hour == 12:
            hour = 0
    if hour > 23 or minute > 59 or second > 60:
        return None
    second = min(second, 59)
    end = tm.end()
    zone: dt_timezone | ZoneInfo
    zm = _ZONE.match(text, end)
    # A bare "+08:00"/"-0500" counts only after seconds or an ISO "T": after
    # "10:00" it is more likely the end of a range ("10:00-12:00").
    if zm and zm["o2"] and not (tm["S"] is not None or text[tm.start()] == "T"):
        zm = None
    if zm:
        if zm["abbr"]:
            zone = dt_timezone(timedelta(minutes=ZONE_ABBREVIATIONS[zm["abbr"]]))
        else:
            offset = (zm["o1"] or zm["o2"]).replace(":", "")
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:]
            hours, minutes = (int(digits[:-2]), int(digits[-2:])) if len(digits) > 2 else (int(digits), 0)
            if hours > 14 or minutes > 59:
                return None
            zone = dt_timezone(sign * timedelta(hours=hours, minutes=minutes))
        end = zm.end()
    else:
        zone = _zone(tz_name)
    moment = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=zone)
    return end, moment


def _patterns(roc_years: bool) -> list[tuple[str, re.Pattern[str]]]:
    items = list(_PATTERNS.items())
    if roc_years:
        items.insert(0, ("roc", _ROC))
    return items


def _match_at(
    kind: str, m: re.Match[str], text: str, timezone: str | None, date_order: str | None
) -> _Found | None:
    groups = m.groupdict()
    day = _day_from_match(kind, groups, date_order)
    if day is None:
        return None
    timed = _read_time(text, m.end(), day, timezone)
    if timed is None:
        return None
    end, moment = timed
    return m.start(), end, day, moment


def _to_parsed(original: str, found: _Found) -> ParsedDate:
    start, end, day, moment = found
    raw = original[start:end].strip(" ,")
    if moment is None:
        return ParsedDate(day.isoformat(), False, raw)
    utc = moment.astimezone(dt_timezone.utc)
    return ParsedDate(utc.strftime("%Y-%m-%dT%H:%M:%SZ"), True, raw)


# --------------------------------------------------------------------------- public API


def parse_date(
    text: str | None,
    *,
    timezone: str | None = None,
    date_order: str | None = None,
    roc_years: bool = False,
) -> ParsedDate | None:
    """Parse a date written at the start of ``text`` (brackets and a weekday may precede it).

    Text after the date is ignored (``2021/5/7 14:52:23来源：…``). ``timezone``
    (an IANA name) applies to times written without an offset; ``date_order``
    ("dmy", "mdy" or "ymd") settles ``03/05/2021``; ``roc_years`` reads
    ``114-05-22`` as a Minguo year. Returns None when no valid date starts
    the text. Raises ValueError only for an unknown ``timezone`` name.
    """
    if not text or not isinstance(text, str):
        return None
    folded = text.translate(_FOLD)
    start = _LEADING_JUNK.match(folded).end()  # type: ignore[union-attr]
    if start >= len(folded):
        return None
    best: _Found | None = None
    for kind, pattern in _patterns(roc_years):
        m = pattern.match(folded, start)
        if not m:
            continue
        found = _match_at(kind, m, folded, timezone, date_order)
        if found and (best is None or found[1] > best[1]):
            best = found
    if best is None:
        m = _SHORT_YEAR.match(folded, start)
        if m:
            best = _match_at("short_year", m, folded, timezone, date_order)
    return _to_parsed(text, best) if best else None


def find_date(
    text: str | None,
    *,
    timezone: str | None = None,
    date_order: str | None = None,
    roc_years: bool = False,
) -> ParsedDate | None:
    """The first date found anywhere in ``text`` (same options as :func:`parse_date`)."""
    if not text or not isinstance(text, str):
        return None
    if len(text) <= CACHED_TEXT_CHARS:  # label values and list lines repeat: answers are kept
        return _find_date_cached(text, timezone, date_order, roc_years)
    return _find_date(text, timezone, date_order, roc_years)


CACHED_TEXT_CHARS = 300


@lru_cache(maxsize=4096)
def _find_date_cached(text: str, timezone: str | None, date_order: str | None, roc_years: bool) -> ParsedDate | None:
    return _find_date(text, timezone, date_order, roc_years)


def _find_date(text: str, timezone: str | None, date_order: str | None, roc_years: bool) -> ParsedDate | None:
    folded = text.translate(_FOLD)
    best: _Found | None = None
    for kind, pattern in _patterns(roc_years):
        limit = best[0] if best else len(folded)
        for m in pattern.finditer(folded, 0, len(folded)):
            if m.start() > limit:
                break
            found = _match_at(kind, m, folded, timezone, date_order)
            if found is None:
                continue
            if best is None or found[0] < best[0] or (found[0] == best[0] and found[1] > best[1]):
                best = found
            break
    return _to_parsed(text, best) if best else None


def date_from_url(url: str | None) -> ParsedDate | None:
    """A CMS publication day encoded in a URL path, or None.

    TRS ``…/202105/t20210510_2385303.html``, Hanweb ``/art/2023/4/28/art_…``,
    ``/2021/05/03/`` and ``/20210503/``.
    """
    if not url:
        return None
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    for pattern in _URL_PATTERNS:
        for m in pattern.finditer(path):
            day = _valid_day(int(m["y"]), int(m["m"]), int(m["d"]))
            if day is not None:
                return ParsedDate(day.isoformat(), False, m.group(0).strip("/"))
    return None
