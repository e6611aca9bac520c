"""Date parsing: every format offices use, and what must stay None."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.dates import ParsedDate, date_from_url, find_date, parse_date

# (text, keyword arguments, expected value)
CASES = [
    # ISO 8601
    ("2021-05-03", {}, "2021-05-03"),
    ("2021-05-03T14:00:00Z", {}, "2021-05-03T14:00:00Z"),
    ("2021-05-03T14:00:00.123+08:00", {}, "2021-05-03T06:00:00Z"),
    ("2021-05-03T14:00:00-0500", {}, "2021-05-03T19:00:00Z"),
    ("2021-05-03 14:52", {"timezone": "Asia/Shanghai"}, "2021-05-03T06:52:00Z"),
    ("2021-05-03 14:52", {}, "2021-05-03T14:52:00Z"),
    # a day is never shifted by the time zone
    ("2021-05-03", {"timezone": "Pacific/Kiritimati"}, "2021-05-03"),
    # RFC 822 / 1123
    ("Wed, 02 Jun 2010 21:33:33 +0000", {}, "2010-06-02T21:33:33Z"),
    ("Mon, 03 May 2021 09:00:00 GMT", {"timezone": "Asia/Tokyo"}, "2021-05-03T09:00:00Z"),
    ("Mon, 03 May 2021 09:00:00 EDT", {}, "2021-05-03T13:00:00Z"),
    # English month names
    ("May 3, 2021", {}, "2021-05-03"),
    ("March 28, 2022", {}, "2022-03-28"),
    ("Jan 5, 2020", {}, "2020-01-05"),
    ("Thursday Feb 09, 2023", {}, "2023-02-09"),
    ("May 3rd, 2021", {}, "2021-05-03"),
    ("3 May 2021", {}, "2021-05-03"),
    ("03 May 2021", {}, "2021-05-03"),
    ("3rd of May 2021", {}, "2021-05-03"),
    ("May 3, 2021 2:30 pm", {"timezone": "America/New_York"}, "2021-05-03T18:30:00Z"),
    # numeric day/month orders
    ("03.05.2021", {}, "2021-05-03"),
    ("03/05/2021", {}, "2021-05-03"),
    ("03/05/2021", {"date_order": "dmy"}, "2021-05-03"),
    ("03/05/2021", {"date_order": "mdy"}, "2021-03-05"),
    ("05/03/2021", {"date_order": "mdy"}, "2021-05-03"),
    ("13/05/2021", {"date_order": "mdy"}, "2021-05-13"),  # 13 can only be a day
    ("05/13/2021", {}, "2021-05-13"),
    ("3-5-2021", {}, "2021-05-03"),
    ("03.05.2021 14:30", {"timezone": "Europe/Berlin"}, "2021-05-03T12:30:00Z"),
    ("20/08/25", {}, "2025-08-20"),
    # year first is always y-m-d
    ("2021/5/7", {"date_order": "mdy"}, "2021-05-07"),
    ("2021/5/7 14:52:23", {"timezone": "Asia/Shanghai"}, "2021-05-07T06:52:23Z"),
    ("2021/5/7 14:52:23来源：国家知识产权局", {"timezone": "Asia/Shanghai"}, "2021-05-07T06:52:23Z"),
    ("2020/5/714:52:23来源：", {"timezone": "Asia/Shanghai"}, "2020-05-07T06:52:23Z"),
    ("2003.4.21", {}, "2003-04-21"),
    ("(2024-03-05)", {}, "2024-03-05"),
    ("[2021-05-10]", {}, "2021-05-10"),
    # Chinese
    ("2021年5月3日", {}, "2021-05-03"),
    ("2021年05月03日 14:52", {"timezone": "Asia/Shanghai"}, "2021-05-03T06:52:00Z"),
    ("2021年5月3日14时52分", {"timezone": "Asia/Shanghai"}, "2021-05-03T06:52:00Z"),
    ("２０２１年５月３日", {}, "2021-05-03"),
    ("２０２１－０５－０３", {}, "2021-05-03"),
    # Korean
    ("2025년 9월 5일", {}, "2025-09-05"),
    ("2025.09.05.", {}, "2025-09-05"),
    ("2025. 9. 5.", {}, "2025-09-05"),
    ("2025년 9월 5일 오후 2:30", {"timezone": "Asia/Seoul"}, "2025-09-05T05:30:00Z"),
    # Japanese eras
    ("令和3年5月3日", {}, "2021-05-03"),
    ("令和元年5月1日", {}, "2019-05-01"),
    ("平成31年4月1日", {}, "2019-04-01"),
    ("昭和64年1月7日", {}, "1989-01-07"),
    ("R3.5.3", {}, "2021-05-03"),
    ("H31.4.1", {}, "2019-04-01"),
    ("令和３年５月３日", {}, "2021-05-03"),
    ("㋿3年5月3日", {}, "2021-05-03"),
    # ROC (Minguo) years
    ("114-05-22", {"roc_years": True}, "2025-05-22"),
    ("114/5/22", {"roc_years": True}, "2025-05-22"),
    ("114年5月22日", {"roc_years": True}, "2025-05-22"),
    ("民國114年5月22日", {}, "2025-05-22"),
    ("中華民國99年1月1日", {}, "2010-01-01"),
    ("2025-05-22", {"roc_years": True}, "2025-05-22"),
    # CNIPA English
    ("4 28,2023", {}, "2023-04-28"),
    ("12 1, 2022", {}, "2022-12-01"),
    # French, German, Spanish (and a few more)
    ("3 mai 2021", {}, "2021-05-03"),
    ("1er mai 2021", {}, "2021-05-01"),
    ("3 février 2021", {}, "2021-02-03"),
    ("3 fevrier 2021", {}, "2021-02-03"),
    ("17 août 2021", {}, "2021-08-17"),
    ("3. Mai 2021", {}, "2021-05-03"),
    ("3. März 2021", {}, "2021-03-03"),
    ("Montag, 3. Mai 2021", {}, "2021-05-03"),
    ("3 de mayo de 2021", {}, "2021-05-03"),
    ("3 de septiembre del 2021", {}, "2021-09-03"),
    ("3 de maio de 2021", {}, "2021-05-03"),
    ("3 maggio 2021", {}, "2021-05-03"),
    ("3 мая 2021", {}, "2021-05-03"),
]


@pytest.mark.parametrize(("text", "kwargs", "value"), CASES, ids=[c[0] for c in CASES])
def test_parse_date(text: str, kwargs: dict, value: str) -> None:
    parsed = parse_date(text, **kwargs)
    assert parsed is not None, text
    assert parsed.value == value
    assert parsed.has_time == ("T" in value)
    assert parsed.raw and parsed.raw in text


@pytest.mark.parametrize(
    ("text", "kwargs"),
    [
        ("", {}),
        ("   ", {}),
        ("junk", {}),
        ("no date here at all", {}),
        ("2021-13-01", {}),
        ("2021-02-30", {}),
        ("31/02/2021", {}),
        ("13/13/2021", {}),
        ("2021-05-03 25:00", {}),
        ("2021年13月1日", {}),
        ("2021-05", {}),
        ("May 2021", {}),
        ("114-05-22", {}),  # ROC years only when configured
        ("114年5月22日", {}),
        ("令和3年2月30日", {}),
        ("32 May 2021", {}),
        ("10:00", {}),
        ("0000-00-00", {}),
        ("9999-01-01", {}),
    ],
)
def test_invalid_dates_are_none(text: str, kwargs: dict) -> None:
    assert parse_date(text, **kwargs) is None


def test_none_and_non_strings_are_none() -> None:
    assert parse_date(None) is None
    assert find_date(None) is None
    assert parse_date(20210503) is None  # type: ignore[arg-type]


def test_parse_date_reads_only_at_the_start() -> None:
    assert parse_date("Published 2021-05-03") is None
    assert find_date("Published 2021-05-03") == ParsedDate("2021-05-03", False, "2021-05-03")


@pytest.mark.parametrize(
    ("text", "kwargs", "value", "raw"),
    [
        ("发布时间：2020/5/7 14:52:23来源：国家知识产权局 字体 [大 中 小]", {"timezone": "Asia/Shanghai"},
         "2020-05-07T06:52:23Z", "2020/5/7 14:52:23"),
        ("Updated: 4 28,2023", {}, "2023-04-28", "4 28,2023"),
        ("Stand: 03.05.2021", {}, "2021-05-03", "03.05.2021"),
        ("Publié le 3 mai 2021 dans Brevets", {}, "2021-05-03", "3 mai 2021"),
        ("掲載日：令和3年5月3日（月）", {}, "2021-05-03", "令和3年5月3日"),
        ("발표일 2025년 9월 5일 (금)", {}, "2025-09-05", "2025년 9월 5일"),
        ("發布日期：114-05-22", {"roc_years": True}, "2025-05-22", "114-05-22"),
        ("Quick Reads (18 May 2021)", {}, "2021-05-18", "18 May 2021"),
        ("Meeting on 03/05/2021 10:00-12:00", {}, "2021-05-03T10:00:00Z", "03/05/2021 10:00"),
        ("Ref 12345 issued 2021-05-03 and revised 2021-06-01", {}, "2021-05-03", "2021-05-03"),
        ("Version 2021.5 was released on May 3, 2021", {}, "2021-05-03", "May 3, 2021"),
    ],
)
def test_find_date(text: str, kwargs: dict, value: str, raw: str) -> None:
    found = find_date(text, **kwargs)
    assert found is not None
    assert (found.value, found.raw) == (value, raw)


@pytest.mark.parametrize(
    "text",
    ["", "nothing here", "Version 1.2.3", "Call 555-1234", "Summary of the decision", "2021-13-45", "Item 13/13/2021"],
)
def test_find_date_none(text: str) -> None:
    assert find_date(text) is None


def test_unknown_timezone_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_date("2021-05-03 10:00", timezone="Mars/Olympus_Mons")
    # a bare day never needs the zone
    assert parse_date("2021-05-03", timezone="Mars/Olympus_Mons") == ParsedDate("2021-05-03", False, "2021-05-03")


@pytest.mark.parametrize(
    ("url", "value"),
    [
        ("https://wb.beijing.gov.cn/en/center_for_international_exchanges/events/202105/t20210510_2385303.html", "2021-05-10"),
        ("https://english.cnipa.gov.cn/art/2023/4/28/art_3090_185089.html", "2023-04-28"),
        ("https://www.cnipa.gov.cn/art/2020/5/7/art_53_149211.html", "2020-05-07"),
        ("https://news.example.org/2021/05/03/office-news", "2021-05-03"),
        ("https://news.example.org/2021/5/3/", "2021-05-03"),
        ("https://news.example.org/20210503/item.html", "2021-05-03"),
        ("https://news.example.org/press/20210503.html", "2021-05-03"),
    ],
)
def test_date_from_url(url: str, value: str) -> None:
    found = date_from_url(url)
    assert found is not None and found.value == value and not found.has_time


@pytest.mark.parametrize(
    "url",
    [
        "",
        "https://wb.beijing.gov.cn/en/express/202105/",
        "https://www.uspto.gov/about-us/news-updates/some-slug",
        "https://example.org/art/2023/13/45/art_1.html",
        "https://example.org/t20211399_1.html",
        "https://example.org/id/12345678/",
        "http://[::1",
    ],
)
def test_date_from_url_none(url: str) -> None:
    assert date_from_url(url) is None


OPTIONS = st.fixed_dictionaries(
    {
        "timezone": st.sampled_from([None, "Asia/Shanghai", "America/New_York", "UTC"]),
        "date_order": st.sampled_from([None, "dmy", "mdy", "ymd"]),
        "roc_years": st.booleans(),
    }
)
DATEISH = st.text(alphabet="0123456789-/.:年月日년월일 ,TZ+令和平成民國RHMayJunde", max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), DATEISH), OPTIONS)
def test_never_raises(text: str, options: dict) -> None:
    for found in (parse_date(text, **options), find_date(text, **options)):
        if found is not None:
            assert found.raw
            assert len(found.value) in (10, 20)


@settings(max_examples=100, deadline=None)
@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31)))
def test_iso_roundtrip(day: date) -> None:
    assert parse_date(day.isoformat()) == ParsedDate(day.isoformat(), False, day.isoformat())
    assert find_date(f"Published on {day.day} {day.strftime('%B')} {day.year}.").value == day.isoformat()
