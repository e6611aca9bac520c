"""Tests for aggregator.normalize: text cleaning, HTML → text, sanitizing, languages, dates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.normalize import (
    absolutize_links,
    clean_line,
    clean_text,
    html_to_text,
    iso_utc,
    normalize_language,
    sanitize_html,
)

BASE = "https://www.wipo.int/pressroom/en/articles/2025/article_0011.html"

# --- clean_text / clean_line ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "hidden",
    [
        "\u200b",  # zero width space
        "\u200c",  # zero width non-joiner
        "\u200d",  # zero width joiner
        "\u2060",  # word joiner
        "\ufeff",  # BOM / zero width no-break space
        "\u200e",  # left-to-right mark
        "\u200f",  # right-to-left mark
        "\u061c",  # Arabic letter mark
        "\u202a",  # left-to-right embedding
        "\u202b",  # right-to-left embedding
        "\u202c",  # pop directional formatting
        "\u202d",  # left-to-right override
        "\u202e",  # right-to-left override
        "\u2066",  # left-to-right isolate
        "\u2067",  # right-to-left isolate
        "\u2068",  # first strong isolate
        "\u2069",  # pop directional isolate
        "\u00ad",  # soft hyphen
    ],
)
def test_clean_line_removes_invisible_and_bidi_characters(hidden: str) -> None:
    assert clean_line(f"Patent{hidden}amt") == "Patentamt"
    assert clean_text(f"{hidden}Marken{hidden}") == "Marken"


def test_bidi_override_cannot_reorder_a_title() -> None:
    # "\u202e" would display the rest reversed: a classic spoofing trick.
    assert clean_line("Invoice \u202egnp.exe") == "Invoice gnp.exe"


def test_clean_line_folds_everything_onto_one_line() -> None:
    assert clean_line("  New\tfees\n\n for\xa0 2026  ") == "New fees for 2026"
    assert clean_line(None) == ""
    assert clean_line("") == ""


def test_clean_text_keeps_paragraphs_and_folds_spaces() -> None:
    text = "  First   line\r\nsecond line \r\n\r\n\r\n\n  Next paragraph\t\tends.  "
    assert clean_text(text) == "First line\nsecond line\n\nNext paragraph ends."


def test_clean_text_normalizes_unicode_and_drops_controls() -> None:
    decomposed = "Mu\u0308nchen"  # u + combining diaeresis
    assert clean_text(decomposed) == "München"
    assert clean_text("bell\x07 and\x1b escape\x85") == "bell and escape"
    assert clean_text("tab\tkept as space") == "tab kept as space"


@given(st.text())
def test_clean_line_is_idempotent_and_single_line(text: str) -> None:
    once = clean_line(text)
    assert clean_line(once) == once
    assert "\n" not in once
    assert once == once.strip()


@given(st.text())
def test_clean_text_is_idempotent(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once


# --- html_to_text --------------------------------------------------------------------------------


def test_paragraphs_become_blank_line_separated() -> None:
    markup = (
        "<p>First paragraph.</p><p>Second\n   paragraph,\nwrapped in the source.</p><h2>Heading</h2>After."
    )
    assert html_to_text(markup) == (
        "First paragraph.\n\nSecond paragraph, wrapped in the source.\n\nHeading\n\nAfter."
    )


def test_line_breaks_lists_and_tables() -> None:
    assert html_to_text("Line one<br>line two<br/>line three") == "Line one\nline two\nline three"
    assert html_to_text("Para one<br><br>para two") == "Para one\n\npara two"
    assert html_to_text("<p>Fees:</p><ul><li>filing</li><li>search</li></ul><p>End</p>") == (
        "Fees:\n\nfiling\nsearch\n\nEnd"
    )
    table = "<table><tr><th>Fee</th><th>EUR</th></tr><tr><td>Filing</td><td>40</td></tr></table>"
    assert html_to_text(table) == "Fee EUR\nFiling 40"


def test_inline_markup_and_entities() -> None:
    assert html_to_text("Patents <b>and</b> <i>trade marks</i>&nbsp;&amp; designs &#8211; 2025") == (
        "Patents and trade marks & designs – 2025"
    )
    assert html_to_text("AT&amp;T &lt;b&gt;") == "AT&T <b>"


def test_scripts_styles_and_comments_are_dropped() -> None:
    markup = (
        "<style>p { color: red }</style><p>Visible<script>track('x')</script> text</p>"
        "<noscript>Enable JavaScript</noscript><!-- hidden comment --><template><p>tpl</p></template>"
    )
    assert html_to_text(markup) == "Visible text"


def test_pre_keeps_its_line_breaks() -> None:
    assert html_to_text("<pre>Art. 1\nArt. 2</pre>") == "Art. 1\nArt. 2"


def test_plain_text_and_empty_input() -> None:
    assert html_to_text("Plain text\nwith two lines") == "Plain text\nwith two lines"
    assert html_to_text(None) == ""
    assert html_to_text("") == ""
    assert html_to_text("<p> </p><div></div>") == ""


def test_whole_documents_and_junk() -> None:
    doc = "<!DOCTYPE html><html><head><title>T</title></head><body><p>Body</p></body></html>"
    assert html_to_text(doc) == "Body"
    assert html_to_text("<<<>>>") == "<<<>>>"
    assert html_to_text("a < b and c > d") == "a < b and c > d"


@given(st.text())
def test_html_to_text_never_raises(text: str) -> None:
    html_to_text(text)


# --- sanitize_html -------------------------------------------------------------------------------


def test_sanitize_drops_dangerous_elements_with_their_content() -> None:
    markup = (
        "<p>Kept</p><script>alert(1)</script><style>body{}</style>"
        '<iframe src="https://video.example/embed/1">fallback</iframe>'
        '<object data="x.swf"></object><embed src="y.swf"><svg><script>alert(2)</script></svg>'
        "<form action='/x'><input name='q'></form>"
    )
    cleaned = sanitize_html(markup)
    assert cleaned.startswith("<p>Kept</p>")
    for bad in (
        "script",
        "alert",
        "style",
        "body{}",
        "iframe",
        "fallback",
        "object",
        "embed",
        "svg",
        "<form",
        "<input",
    ):
        assert bad not in cleaned


def test_sanitize_drops_event_handlers_and_style_attributes() -> None:
    markup = '<p onclick="steal()" style="display:none" class="x" id="y">Text <a href="/a" onmouseover="x()" target="_blank">link</a></p>'
    cleaned = sanitize_html(markup, BASE)
    assert "onclick" not in cleaned and "onmouseover" not in cleaned
    assert "style=" not in cleaned and "class=" not in cleaned and "target=" not in cleaned
    assert cleaned == (
        '<p>Text <a href="https://www.wipo.int/a" rel="noopener noreferrer nofollow">link</a></p>'
    )


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "jav&#x09;ascript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    ],
)
def test_sanitize_drops_script_and_data_urls(url: str) -> None:
    for base in (None, BASE):
        cleaned = sanitize_html(f'<a href="{url}">x</a><img src="{url}" alt="i">', base)
        assert "javascript" not in cleaned.lower()
        assert "vbscript" not in cleaned.lower()
        assert "data:" not in cleaned
        assert ">x</a>" in cleaned  # the text stays


def test_sanitize_makes_links_absolute() -> None:
    markup = (
        '<p><a href="../2024/article_0003.html">older</a> <a href="/pressroom/en/">press room</a> '
        '<a href="https://other.example/x">other</a> <img src="img/cover.png" alt="cover"></p>'
    )
    cleaned = sanitize_html(markup, BASE)
    assert 'href="https://www.wipo.int/pressroom/en/articles/2024/article_0003.html"' in cleaned
    assert 'href="https://www.wipo.int/pressroom/en/"' in cleaned
    assert 'href="https://other.example/x"' in cleaned
    assert 'src="https://www.wipo.int/pressroom/en/articles/2025/img/cover.png"' in cleaned


def test_sanitize_keeps_escaped_text_escaped() -> None:
    # Text that merely talks about markup must not become markup when links are made absolute.
    markup = 'Use &lt;b&gt; sparingly &amp; <a href="/style">see the guide</a>'
    cleaned = sanitize_html(markup, BASE)
    assert cleaned.startswith("Use &lt;b&gt; sparingly &amp; <a ")
    assert "<b>" not in cleaned


def test_sanitize_keeps_allowed_structure() -> None:
    markup = (
        "<h2>Fees</h2><table><thead><tr><th scope='col'>Item</th></tr></thead>"
        "<tbody><tr><td colspan='2'>Filing</td></tr></tbody></table><ul><li><strong>a</strong></li></ul>"
    )
    assert sanitize_html(markup) == (
        '<h2>Fees</h2><table><thead><tr><th scope="col">Item</th></tr></thead>'
        '<tbody><tr><td colspan="2">Filing</td></tr></tbody></table><ul><li><strong>a</strong></li></ul>'
    )


def test_sanitize_removes_comments_and_invisible_characters() -> None:
    assert sanitize_html("<p>a<!-- secret -->b\u200b\u202ec</p>") == "<p>abc</p>"


def test_sanitize_empty() -> None:
    assert sanitize_html(None) == ""
    assert sanitize_html("") == ""


def test_absolutize_links_leaves_fragments_without_base_alone() -> None:
    assert absolutize_links('<a href="/x">x</a>', "") == '<a href="/x">x</a>'
    assert absolutize_links('<a href=" /x ">x</a>', BASE) == '<a href="https://www.wipo.int/x">x</a>'


# --- normalize_language --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("en", "en"),
        ("en-US", "en"),
        ("EN-gb", "en"),
        ("zh_Hans_CN", "zh"),
        ("zh-Hant-TW", "zh"),
        (" ja ", "ja"),
        ("de, en", "de"),
        ("fr;q=0.9", "fr"),
        ("fil", "fil"),
        ("", None),
        (None, None),
        ("x-default", None),
        ("i-klingon", None),
        ("english", None),
        ("12", None),
        ("*", None),
    ],
)
def test_normalize_language(tag: str | None, expected: str | None) -> None:
    assert normalize_language(tag) == expected


# --- iso_utc -------------------------------------------------------------------------------------


def test_iso_utc() -> None:
    cest = timezone(timedelta(hours=2))
    assert iso_utc(datetime(2025, 10, 14, 10, 0, 0, 123456, tzinfo=cest)) == "2025-10-14T08:00:00Z"
    assert iso_utc(datetime(2025, 1, 1, 0, 30)) == "2025-01-01T00:30:00Z"  # naive = UTC
    assert iso_utc(datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=9)))) == "2025-12-31T16:00:00Z"
