"""The quick paths of aggregator.normalize give what the plain implementations give (#7)."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import normalize
from aggregator.normalize import clean_text

# The implementation before the quick paths, kept here as the reference.
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def reference_clean_text(text: str | None) -> str:
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text).translate(normalize._INVISIBLE)
    text = normalize._CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " "))
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


# Text made of the characters that matter: spaces of every kind, newlines, CR, controls,
# invisible characters, combining marks, surrogates, and ordinary letters.
_ALPHABET = st.sampled_from(
    list(" \n\r\t\x0b\x0c\x1c\x85\xa0\u2028\u2029\u3000\u200b\u200d\u00ad\ufeff\x00\x07\x7f\x9f")
    + ["\ud800", "e", "\u0301", "A", "z", "专", "é", ".", "<", "&"]
)
_TEXT = st.lists(_ALPHABET, max_size=40).map("".join)


@settings(max_examples=3000, deadline=None)
@given(_TEXT)
def test_clean_text_matches_reference(text):
    assert clean_text(text) == reference_clean_text(text)


@settings(max_examples=2000, deadline=None)
@given(st.text(max_size=60))
def test_clean_text_matches_reference_on_any_text(text):
    assert clean_text(text) == reference_clean_text(text)


@settings(max_examples=2000, deadline=None)
@given(_TEXT)
def test_html_controls_dropped_as_before(text):
    assert normalize._drop_html_controls(text) == normalize._HTML_CONTROL.sub("", text)
    assert normalize._INVISIBLE_RE.sub("", text) == text.translate(normalize._INVISIBLE)


def test_clean_text_examples():
    assert clean_text("  a  b \n\n\n c\u00a0d \r\n\u200be ") == "a b\n\nc d\ne"
    assert clean_text("\n\nline\n") == "line"
    assert clean_text("x\n \ny") == "x\n\ny"


@settings(max_examples=3000, deadline=None)
@given(_TEXT)
def test_whitespace_folded_as_before(text):
    assert normalize.fold_whitespace(text) == normalize._WHITESPACE.sub(" ", text)


# Paragraphs of text, as lxml writes them: the shape whose sanitizing skips nh3 and the second lxml pass.
_PARAGRAPH_TEXT = st.lists(
    st.sampled_from(list("ab z\n\t\"'=/#") + ["&amp;", "&lt;", "&gt;", "é", "专利", "\u200b", "\u2028", "\u3000",
                                              "\ufeff", "\u00ad", "\U0001F600", "e\u0301", "\u1680"]),
    max_size=12,
).map("".join)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_PARAGRAPH_TEXT, min_size=1, max_size=4), st.sampled_from([None, "http://example.org/a/b"]))
def test_text_paragraphs_pass_nh3_and_lxml_unchanged(texts, base):
    markup = "".join(f"<p>{t}</p>" for t in texts)
    if normalize._TEXT_PARAGRAPHS.fullmatch(markup):
        assert normalize._nh3_and_links(markup, base) == markup


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(["<p>", "</p>", "<br>", "<b>", "</b>", "<pre>", "</pre>", "<td>", "<li>", "<!-- c -->",
                                 "<script>s</script>", "<a href=' /r'>", "</a>", " ", "\n", "x", "&amp;", "&nbsp;",
                                 "\xa0", "\r\n", "专利", "<style>q</style>", "<div>", "</div>"]), max_size=20).map("".join))
def test_text_and_sanitized_as_separately(markup):
    base = "http://example.org/a/b"
    assert normalize.html_to_text_and_sanitized(markup, base) == (
        normalize.html_to_text(markup), normalize.sanitize_html(markup, base))
