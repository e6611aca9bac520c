"""HTML news pages → list entries and articles, checked against fixture pages.

Every ``tests/fixtures/pages/NAME.expected.json`` is one case: it holds the
source config, the page URL and the expected fields (exact values, plus
with/without snippets for the body). ``NAME.html`` holds the bytes as served
and ``NAME.headers.json`` the HTTP headers, when they matter. Adding a case
means adding files; this test walks the directory.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.dates import ParsedDate
from aggregator.exceptions import ParseError
from aggregator.language import choose_language, detect_language
from aggregator.normalize import html_to_text
from aggregator.sources.page import ListEntry, ListPage, parse_article_page, parse_list_page
from aggregator.types import Article, ArticleRecipe, ListRecipe, Source, article_id
from aggregator.urls import canonical_url

PAGES = Path(__file__).parent / "fixtures" / "pages"
CASES = sorted(PAGES.glob("*.expected.json"))
EXACT_FIELDS = ("title", "published", "site_published", "source_org", "topics", "language", "extraction")


def make_source(cfg: dict[str, Any]) -> Source:
    article = cfg.get("article")
    listing = cfg.get("list")
    return Source(
        id=cfg.get("id", "test"),
        office=cfg.get("office", "Test office"),
        name=cfg.get("name", cfg.get("office", "Test")),
        kind="page",
        url=cfg.get("url", "https://office.example/news/"),
        interval=3600,
        language=cfg.get("language"),
        timezone=cfg.get("timezone"),
        date_order=cfg.get("date_order"),
        roc_years=cfg.get("roc_years", False),
        encoding=cfg.get("encoding"),
        list=ListRecipe(**listing) if listing else None,
        article=ArticleRecipe(**{**article, "remove": tuple(article.get("remove", ()))}) if article else None,
    )


def load(case: Path) -> tuple[dict[str, Any], bytes, dict[str, str]]:
    name = case.name.removesuffix(".expected.json")
    expected = json.loads(case.read_text(encoding="utf-8"))
    content = (PAGES / f"{name}.html").read_bytes()
    headers_file = PAGES / f"{name}.headers.json"
    headers = json.loads(headers_file.read_text()) if headers_file.exists() else {"content-type": "text/html"}
    return expected, content, headers


def make_entry(data: dict[str, Any] | None) -> ListEntry | None:
    if not data:
        return None
    day = data.get("date")
    return ListEntry(
        url=data["url"],
        title=data["title"],
        date=ParsedDate(day, "T" in day, day) if day else None,
        date_raw=day,
    )


def check_article(article: Article, expected: dict[str, Any], fields: tuple[str, ...] = EXACT_FIELDS) -> None:
    for field in fields:
        value = getattr(article, field)
        want = expected[field]
        if field == "topics":
            want = tuple(want)
        assert value == want, f"{field}: {value!r} != {want!r}"
    for field in ("published_raw", "updated"):
        if field in expected:
            assert getattr(article, field) == expected[field], field
    body = article.body or ""
    assert body.startswith(expected["body_startswith"]), body[:200]
    for snippet in expected.get("body_contains", ()):
        assert snippet in body, snippet
    for snippet in expected.get("body_excludes", ()):
        assert snippet not in body, snippet
    lines = {line.strip() for line in body.split("\n")}
    for line in expected.get("no_line_equals", ()):
        assert line not in lines, line
    assert "\ufffd" not in body and "\ufffd" not in article.title
    assert article.id == article_id(article.source_id, canonical_url(expected["url"]))
    assert article.url == expected["url"]
    assert article.guid is None
    assert article.body_html and "<script" not in article.body_html
    shown = html_to_text(article.body_html)
    for snippet in expected.get("body_excludes", ()):
        if "\n" not in snippet:
            assert snippet not in shown, f"body_html shows {snippet!r}"


def check_list(page: ListPage, expected: dict[str, Any]) -> None:
    got = [(e.url, e.title, e.date.value if e.date else None) for e in page.entries]
    want = [(e["url"], e["title"], e.get("date")) for e in expected["entries"]]
    assert got == want
    for entry, spec in zip(page.entries, expected["entries"], strict=True):
        if "date_raw" in spec:
            assert entry.date_raw == spec["date_raw"]
    assert page.next_url == expected["next_url"]


@pytest.mark.parametrize("case", CASES, ids=[c.name.removesuffix(".expected.json") for c in CASES])
def test_fixture_page(case: Path) -> None:
    expected, content, headers = load(case)
    source = make_source(expected["source"])
    if expected.get("kind") == "list":
        check_list(parse_list_page(content, headers, source, expected["url"]), expected)
        return
    entry = make_entry(expected.get("entry"))
    article = parse_article_page(content, headers, source, expected["url"], entry)
    check_article(article, expected)
    if expected.get("also_without_selectors"):
        bare = parse_article_page(content, headers, replace(source, article=None), expected["url"], entry)
        check_article(bare, {**expected, "extraction": "fallback"})


def test_fixture_directory_is_complete() -> None:
    assert len([c for c in CASES if json.loads(c.read_text()).get("kind") != "list"]) >= 11
    for case in CASES:
        assert (PAGES / case.name.replace(".expected.json", ".html")).exists(), case


# --------------------------------------------------------------------------- the seed, both ways


SEED = PAGES / "bjfao_seed.expected.json"


def test_seed_with_and_without_selectors_agree() -> None:
    expected, content, headers = load(SEED)
    source = make_source(expected["source"])
    with_recipe = parse_article_page(content, headers, source, expected["url"])
    without = parse_article_page(content, headers, replace(source, article=None, language=None), expected["url"])
    assert with_recipe.extraction == "selectors" and without.extraction == "fallback"
    for field in ("title", "published", "site_published", "source_org", "topics", "language", "id"):
        assert getattr(with_recipe, field) == getattr(without, field), field
    assert without.body and without.body.startswith("April 26 marks")
    assert "Chinese" not in without.body.split("\n")


def test_seed_topics_label_without_value_gives_no_topics() -> None:
    expected, content, headers = load(SEED)
    source = make_source(expected["source"])
    assert parse_article_page(content, headers, source, expected["url"]).topics == ()


# --------------------------------------------------------------------------- small synthetic pages

SIMPLE = make_source(
    {"id": "office", "office": "Office", "timezone": "Asia/Shanghai", "article": {"body": "div.content"}}
)


def page(body: str, head: str = "") -> bytes:
    return f"<html><head>{head}</head><body>{body}</body></html>".encode()


def test_entry_supplies_title_and_date_when_the_page_has_none() -> None:
    entry = ListEntry(
        url="https://office.example/a.html",
        title="From the list",
        date=ParsedDate("2022-01-02", False, "2022-01-02"),
        date_raw="[2022-01-02]",
    )
    article = parse_article_page(
        page("<div class='content'><p>Text of the article.</p></div>"), {}, SIMPLE, entry.url, entry
    )
    assert article.title == "From the list"
    assert article.published == "2022-01-02"
    assert article.published_raw == "2022-01-02"


def test_page_date_beats_the_entry_date_and_url_date_becomes_site_published() -> None:
    entry = ListEntry("https://office.example/202201/t20220110_1.html", "T", ParsedDate("2022-01-10", False, "x"), "x")
    html = page("<h1>Title</h1><p>Date: 2022-01-03</p><div class='content'><p>Body text here.</p></div>")
    article = parse_article_page(html, {}, SIMPLE, entry.url, entry)
    assert article.published == "2022-01-03"
    assert article.site_published == "2022-01-10"


def test_meta_published_time_and_same_day_url_date() -> None:
    html = page(
        "<h1>Title</h1><div class='content'><p>Body text here.</p></div>",
        '<meta property="article:published_time" content="2023-04-28T10:00:00+08:00">',
    )
    article = parse_article_page(html, {}, SIMPLE, "https://office.example/art/2023/4/28/art_1_2.html")
    assert article.published == "2023-04-28T02:00:00Z"
    assert article.site_published is None


def test_no_date_anywhere_stays_none() -> None:
    article = parse_article_page(
        page("<h1>Title</h1><div class='content'><p>Nothing dated here.</p></div>"),
        {},
        SIMPLE,
        "https://office.example/news/item.html",
    )
    assert article.published is None and article.published_raw is None and article.site_published is None


def test_body_html_is_sanitized_with_absolute_links() -> None:
    html = page(
        "<base href='https://office.example/news/'><h1>T</h1><div class='content'>"
        "<p onclick='x()'>See <a href='../docs/a.pdf'>the report</a>.</p><script>evil()</script>"
        "<img src='img/chart.png' alt='chart'></div>"
    )
    article = parse_article_page(html, {}, SIMPLE, "https://office.example/other/page.html")
    assert article.body_html is not None
    assert 'href="https://office.example/docs/a.pdf"' in article.body_html
    assert 'src="https://office.example/news/img/chart.png"' in article.body_html
    assert "onclick" not in article.body_html and "evil" not in article.body_html
    assert article.body == "See the report."


def test_remove_selectors_and_noise_are_dropped() -> None:
    source = replace(SIMPLE, article=ArticleRecipe(body="div.content", remove=(".related",)))
    html = page(
        "<nav>Menu item</nav><h1>T</h1><div class='content'><p>Keep this.</p>"
        "<div class='related'>Related: other story</div></div><footer>Footer text</footer>"
    )
    article = parse_article_page(html, {}, source, "https://office.example/a.html")
    assert article.body == "Keep this."


def test_body_selector_that_matches_nothing_falls_back() -> None:
    source = replace(SIMPLE, article=ArticleRecipe(body="div.missing"))
    text = " ".join(["The office announced a new programme for small enterprises."] * 6)
    article = parse_article_page(page(f"<h1>Title</h1><article><p>{text}</p></article>"), {}, source, "https://o.example/a")
    assert article.extraction == "fallback"
    assert article.body and article.body.startswith("The office announced")


def test_language_from_html_lang_then_detection() -> None:
    source = replace(SIMPLE, language=None)
    text = "Das Deutsche Patent- und Markenamt hat heute seinen Jahresbericht veröffentlicht und die Zahlen erläutert."
    with_lang = parse_article_page(
        b"<html lang='de-DE'><body><h1>T</h1><div class='content'><p>x y z</p></div></body></html>",
        {},
        source,
        "https://o.example/a",
    )
    assert with_lang.language == "de"
    detected = parse_article_page(page(f"<h1>T</h1><div class='content'><p>{text}</p></div>"), {}, source, "https://o.example/b")
    assert detected.language == "de"


@pytest.mark.parametrize(
    "content",
    [b"", b"   \n\t ", bytes(range(256)) * 40, b"\x00\x01\x02\x03" * 500, b"\xff\xfe\x00\xd8" * 300],
    ids=["empty", "whitespace", "all-bytes", "control", "bad-utf16"],
)
def test_junk_and_empty_documents_raise_parse_error(content: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_article_page(content, {}, SIMPLE, "https://o.example/a")
    assert "\n" not in str(info.value)
    with pytest.raises(ParseError):
        parse_list_page(content, {}, replace(SIMPLE, list=ListRecipe(item="li")), "https://o.example/")


def test_page_with_no_content_raises_parse_error() -> None:
    with pytest.raises(ParseError, match="no article content"):
        parse_article_page(b"<html><head></head><body><div class='content'></div></body></html>", {}, SIMPLE, "https://o.example/a")


def test_invalid_selector_is_a_parse_error() -> None:
    source = replace(SIMPLE, article=ArticleRecipe(body="div[[["))
    with pytest.raises(ParseError, match="article.body"):
        parse_article_page(page("<p>x</p>"), {}, source, "https://o.example/a")
    with pytest.raises(ParseError, match="list.item"):
        parse_list_page(page("<p>x</p>"), {}, replace(SIMPLE, list=ListRecipe(item="li[[")), "https://o.example/")


def test_list_page_without_recipe_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="list recipe"):
        parse_list_page(page("<ul><li><a href='a'>A</a></li></ul>"), {}, SIMPLE, "https://o.example/")


def test_list_without_date_selector_reads_the_date_next_to_the_link() -> None:
    source = replace(SIMPLE, list=ListRecipe(item="ul.news li"))
    html = page(
        "<ul class='news'><li><a href='/a.html'>Item 2020年 title</a> 2021年5月3日</li>"
        "<li><a href='/b.html'>No date</a></li></ul>"
    )
    result = parse_list_page(html, {}, source, "https://o.example/list/")
    assert [(e.url, e.date.value if e.date else None) for e in result.entries] == [
        ("https://o.example/a.html", "2021-05-03"),
        ("https://o.example/b.html", None),
    ]
    assert result.next_url is None


def test_bare_links_in_one_container_take_the_date_after_them() -> None:
    # Old JPO lists: <a href>title</a>　2003.4.21<br> — no item elements at all.
    html = (
        "<div class='news'><a href='h1504_a.htm'>First notice</a>\u30002003.4.21<br>"
        "<a href='h1503_b.htm'>Second notice</a>\u30002003.3.18<br>"
        "<a href='h1503_c.htm'>Undated notice</a><br></div>"
    ).encode("cp932")
    source = replace(SIMPLE, list=ListRecipe(item="div.news > a"), timezone="Asia/Tokyo")
    result = parse_list_page(html, {"content-type": "text/html; charset=Shift_JIS"}, source, "http://www.jpo.go.jp/torikumi/puresu/puresu_list.htm")
    assert [(e.url.rsplit("/", 1)[1], e.date.value if e.date else None) for e in result.entries] == [
        ("h1504_a.htm", "2003-04-21"),
        ("h1503_b.htm", "2003-03-18"),
        ("h1503_c.htm", None),
    ]
    with_selector = replace(SIMPLE, list=ListRecipe(item="dl a", date="span.d"))
    html2 = page("<dl><a href='/1'>One</a> <span class='d'>2021-01-02</span> <a href='/2'>Two</a> <span class='d'>2021-01-03</span></dl>")
    got = parse_list_page(html2, {}, with_selector, "https://o.example/")
    assert [e.date.value if e.date else None for e in got.entries] == ["2021-01-02", "2021-01-03"]


@pytest.mark.parametrize(
    ("content", "kind"),
    [(b"%PDF-1.7\n%...", "PDF"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"PK\x03\x04rest", "ZIP")],
)
def test_binary_files_are_not_pages(content: bytes, kind: str) -> None:
    with pytest.raises(ParseError, match=kind):
        parse_article_page(content, {}, SIMPLE, "https://o.example/notice.pdf")


def test_list_next_link_to_the_same_page_is_ignored() -> None:
    source = replace(SIMPLE, list=ListRecipe(item="li", next="a.next"))
    html = page("<ul><li><a href='x.html'>X</a></li></ul><a class='next' href='index.html'>Next</a>")
    assert parse_list_page(html, {}, source, "https://o.example/news/index.html").next_url is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600) | st.text(max_size=300).map(lambda s: f"<div class='content'>{s}</div>".encode()))
def test_arbitrary_bytes_give_an_article_or_a_parse_error(content: bytes) -> None:
    try:
        article = parse_article_page(content, {}, SIMPLE, "https://o.example/a")
    except ParseError:
        return
    assert isinstance(article, Article)


# --------------------------------------------------------------------------- language


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("The European Patent Office has published the new edition of its Guidelines for Examination.", "en"),
        ("Das Deutsche Patent- und Markenamt hat seinen Jahresbericht für das Jahr 2020 veröffentlicht.", "de"),
        ("L'Institut national de la propriété industrielle publie son baromètre annuel des dépôts.", "fr"),
        ("La Oficina Española de Patentes y Marcas ha publicado su memoria de actividades del año.", "es"),
        ("国家知识产权局举行新闻发布会，介绍知识产权主要统计数据。", "zh"),
        ("經濟部智慧財產局今日公布本年度第1季商標申請統計。", "zh"),
        ("特許庁は、特許行政年次報告書を取りまとめましたので公表します。", "ja"),
        ("특허청은 중소기업의 지식재산 창출과 보호를 돕기 위해 지원 사업을 확대한다고 밝혔다.", "ko"),
    ],
)
def test_detect_language(text: str, code: str) -> None:
    assert detect_language(text) == code


@pytest.mark.parametrize("text", [None, "", "   ", "OK", "2021-05-03", "12345 67890", "Hi there"])
def test_detect_language_needs_enough_text(text: str | None) -> None:
    assert detect_language(text) is None


def test_choose_language_order() -> None:
    german = "Das Deutsche Patent- und Markenamt hat seinen Jahresbericht für das Jahr 2020 veröffentlicht."
    assert choose_language("en-GB", "de", german) == "en"
    assert choose_language(None, "zh-Hant-TW", german) == "zh"
    assert choose_language(None, "jpn", german) == "ja"
    assert choose_language(None, "", german) == "de"
    assert choose_language(None, "x", "") is None


TRICKY_MARKUP = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="iso-8859-1">'
    '<meta http-equiv="Content-Type" content="text/html; charset=gbk"><style>a>b&c</style>'
    '<script type="application/ld+json">{"datePublished": "2021-05-03"}</script></head><body>'
    "<header>site</header><nav>menu</nav><!-- note & more -->"
    "<main><header><h1>Title &amp; more</h1></header><div role=\"navigation\">crumbs</div>"
    "<div ROLE=\"search\">find</div><div role=\"Search\">kept: case matters</div>"
    "<article><header>kept header</header><noscript><p>n</p><script>x</script></noscript>"
    "<p a='x\"y' b=\"x'y&lt;\" c=\"both'&quot;\" class=\"a  b\" hidden>x &amp; <b>&lt;</b><br><img src=x>"
    "<![CDATA[zz]]><?pi x?><script>if(a<b&&c>d){}</script><template><p>t</p></template>"
    "<o:p>op</o:p><svg><rect/></svg><FORM><input></FORM><iframe></iframe></p></article></main>"
    "<footer>foot</footer></body></html>"
)


def test_markup_is_what_bs4_writes() -> None:
    from bs4 import Tag

    from aggregator.sources.page import _markup, _soup

    soup = _soup(TRICKY_MARKUP)
    for el in [soup, *(t for t in soup.descendants if isinstance(t, Tag))]:
        assert _markup(el) == str(el)


def test_noise_walk_removes_what_the_selectors_remove() -> None:
    from bs4 import Comment

    from aggregator.sources.page import HEADER_KEEP_INSIDE, NOISE_SELECTORS, _remove_noise, _soup

    source = Source(id="t", office="T", name="t", kind="page", url="https://office.example/", interval=3600,
                    article=ArticleRecipe(remove=(".a", "b")))
    expected = _soup(TRICKY_MARKUP)
    for comment in expected.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for el in expected.select(", ".join(NOISE_SELECTORS)):
        el.decompose()
    for el in expected.find_all("header"):
        if not any(parent.name in HEADER_KEEP_INSIDE for parent in el.parents):
            el.decompose()
    for el in expected.select('[role="navigation"], [role="search"]'):
        el.decompose()
    for selector in (".a", "b"):
        for el in expected.select(selector):
            el.decompose()
    soup = _soup(TRICKY_MARKUP)
    _remove_noise(soup, source.article, source, "https://office.example/a")
    assert str(soup) == str(expected)
    assert "kept: case matters" in str(soup) and "kept header" in str(soup) and "crumbs" not in str(soup)


# --------------------------------------------------------------------------- fast paths agree with the slow ones

_PAGE_FIXTURES = sorted(PAGES.glob("*.html")) + sorted((Path(__file__).parent / "hostile" / "cases").rglob("page-*.html"))
_INDEX_SELECTORS = (
    "div", "p", "a", "h1", "TD", "*.article", "div.article", ".info .time", "div > p", "ul.list li",
    "span, .date", "a[href]", "li a", "Div.Article", "body > div", "div#main p", ".print, .share",
)


def _check_source() -> Source:
    return Source(id="check", office="CHECK", name="check", kind="page", url="https://office.example/", interval=3600)


def _noise_free(path: Path):
    from aggregator.sources import page

    source = _check_source()
    soup = page._soup(page._decode(path.read_bytes(), {}, source, "https://office.example/"))
    return page, soup, page._remove_noise(soup, None, source, "https://office.example/")


@pytest.mark.parametrize("path", _PAGE_FIXTURES, ids=lambda p: p.name)
def test_tree_text_is_html_to_text_of_the_markup(path: Path) -> None:
    """Text read from the tree is what writing the element out and parsing it again would give."""
    page, soup, _ = _noise_free(path)
    for el in [soup, *soup.find_all(True)]:
        assert page._html_text(el) == html_to_text(page._markup(el)), el.name


@pytest.mark.parametrize("path", _PAGE_FIXTURES, ids=lambda p: p.name)
def test_indexed_selection_is_soupsieve_selection(path: Path) -> None:
    """Selecting through the element index gives soupsieve's elements, in order, also after decompose()."""
    page, soup, index = _noise_free(path)
    for _ in range(2):
        for selector in _INDEX_SELECTORS:
            found = page._indexed_select(index, soup, selector)
            if found is not None:
                assert found == soup.select(selector), selector
                assert page._indexed_select(index, soup, selector, limit=1) == soup.select(selector, limit=1)
        for name in ("h1", "time", "body"):
            assert page._find_all(index, soup, name) == soup.find_all(name)
        for el in soup.select("p")[::2] + soup.select("li")[::2]:
            if not el.decomposed:
                el.decompose()


def test_selector_keys() -> None:
    from aggregator.sources.page import _selector_keys

    assert _selector_keys("div.detail h1") == (("name", "h1"),)
    assert _selector_keys(".info .time, SPAN") == (("class", "time"), ("name", "span"))
    assert _selector_keys("ul > li.x") == (("name", "li"),)
    for unkeyed in ("*", "#id", "[href]", "a:first-child", "h1 + p", "a[href='x']", "p ~ p", ".a\\:b", "div *"):
        assert _selector_keys(unkeyed) is None, unkeyed
