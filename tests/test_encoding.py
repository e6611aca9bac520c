"""Decoding office pages: declarations are hints that must survive a strict decode."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.encoding import decode_document, normalize_encoding

ZH = (
    "<html><head><meta charset='utf-8'><title>国家知识产权局</title></head><body>"
    "<p>国家知识产权局召开新闻发布会，介绍2020年第一季度知识产权主要工作统计数据，并回答记者提问。</p></body></html>"
)
JA = (
    "<html><head><meta charset='utf-8'><title>特許庁</title></head><body><p>ここから本文です。</p>"
    "<p>令和3年5月3日 特許庁は、特許出願の審査に関する新しい運用を発表しました。</p></body></html>"
)
KO = (
    "<html><body><p>특허청은 2025년 9월 5일 지식재산 보호를 위한 새로운 정책을 발표했습니다. "
    "이번 정책은 중소기업의 해외 출원을 지원합니다.</p></body></html>"
)
FR = (
    "<html><body><p>L'Institut national de la propriété industrielle a publié un rapport détaillé sur les "
    "dépôts de brevets en région. La première année, les entreprises françaises déposent davantage.</p></body></html>"
)
ES = (
    "<html><body><p>La Oficina Española de Patentes y Marcas publicó el informe anual. Según los datos, las "
    "solicitudes aumentaron en el año; además, la innovación crece en España.</p></body></html>"
)
UTF8 = {"Content-Type": "text/html; charset=UTF-8"}


def test_gbk_bytes_labelled_utf8() -> None:
    text, used = decode_document(ZH.encode("gbk"), UTF8)
    assert (text, used) == (ZH, "gb18030")


def test_shift_jis_bytes_labelled_utf8() -> None:
    text, used = decode_document(JA.encode("shift_jis"), {"content-type": "text/html;charset=utf-8"})
    assert (text, used) == (JA, "cp932")


def test_euc_kr_undeclared() -> None:
    text, used = decode_document(KO.encode("euc-kr"), {})
    assert (text, used) == (KO, "cp949")


@pytest.mark.parametrize("sample", [FR, ES], ids=["fr", "es"])
def test_windows_1252_undeclared(sample: str) -> None:
    text, used = decode_document(sample.encode("cp1252"), {"content-type": "text/html"})
    assert (text, used) == (sample, "cp1252")


@pytest.mark.parametrize(
    ("bom", "encoding"),
    [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")],
)
def test_bom_wins_over_the_header(bom: bytes, encoding: str) -> None:
    text, used = decode_document(bom + FR.encode(encoding), {"Content-Type": "text/html; charset=iso-8859-1"})
    assert (text, used) == (FR, encoding)


def test_meta_charset_used_when_http_has_none() -> None:
    page = ZH.replace("charset='utf-8'", "charset='gb2312'")
    text, used = decode_document(page.encode("gb2312"), {"content-type": "text/html"})
    assert (text, used) == (page, "gb18030")


def test_meta_http_equiv_content_type() -> None:
    page = "<html><head><meta http-equiv='Content-Type' content='text/html; charset=Shift_JIS'></head>" + JA[6:]
    text, used = decode_document(page.encode("cp932"), {})
    assert (text, used) == (page, "cp932")


def test_http_charset_used_when_it_decodes() -> None:
    page = FR.replace("<html>", "<html><head><meta charset='utf-8'></head>")
    text, used = decode_document(page.encode("cp1252"), {"Content-Type": "text/html; charset=windows-1252"})
    assert (text, used) == (page, "cp1252")


def test_valid_utf8_beats_a_legacy_label() -> None:
    # ISO-8859-1 is many servers' default; UTF-8 bytes would "decode" as mojibake.
    text, used = decode_document(FR.encode("utf-8"), {"Content-Type": "text/html; charset=ISO-8859-1"})
    assert (text, used) == (FR, "utf-8")
    text, used = decode_document(ZH.encode("utf-8"), {"Content-Type": "text/html; charset=gbk"})
    assert (text, used) == (ZH, "utf-8")


def test_override_wins() -> None:
    text, used = decode_document(ZH.encode("gbk"), UTF8, override="GBK")
    assert (text, used) == (ZH, "gb18030")


def test_unknown_override_is_ignored() -> None:
    text, used = decode_document(ZH.encode("utf-8"), {}, override="no-such-charset")
    assert (text, used) == (ZH, "utf-8")


def test_ascii_and_empty() -> None:
    assert decode_document(b"<p>plain</p>", {}) == ("<p>plain</p>", "utf-8")
    assert decode_document(b"", {}) == ("", "utf-8")


def test_xml_declaration() -> None:
    doc = "<?xml version='1.0' encoding='euc-jp'?><html><body><p>特許庁は本日、新しい運用を発表しました。</p></body></html>"
    text, used = decode_document(doc.encode("euc-jp"), {})
    assert (text, used) == (doc, "euc_jp")


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("gb2312", "gb18030"),
        ("GBK", "gb18030"),
        ("x-gbk", "gb18030"),
        ("shift_jis", "cp932"),
        ("sjis", "cp932"),
        ("Shift-JIS", "cp932"),
        ("euc-kr", "cp949"),
        ("iso-8859-1", "cp1252"),
        ("latin-1", "cp1252"),
        ("us-ascii", "cp1252"),
        ("UTF-8", "utf-8"),
        ("utf8", "utf-8"),
        ("big5", "cp950"),
        ("no-such-charset", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_encoding(label: str | None, codec: str | None) -> None:
    assert normalize_encoding(label) == codec


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=500), st.sampled_from([{}, UTF8, {"content-type": "text/html; charset=bogus"}]))
def test_never_raises(content: bytes, headers: dict) -> None:
    text, used = decode_document(content, headers)
    assert isinstance(text, str) and used
