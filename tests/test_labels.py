"""Labelled metadata lines and page furniture."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.labels import (
    FIELD_LABELS,
    FURNITURE_WORDS,
    is_furniture,
    read_label_line,
    split_labelled_lines,
    split_topics,
)

LANGUAGES = {"en", "zh", "ja", "ko", "fr", "de", "es"}

SEED_HEAD = [
    "Chinese",
    "Topics:",
    "Beijing Treaty on Audiovisual Performances: The First Anniversary of the Validation of International "
    "Intellectual Property Treaty Firstly Named after a Chinese City",
    "Date: 2021-05-03",
    "Source: WIPO Office in China",
    "fontSize:   big middle small",
    "",
    "April 26 marks the first anniversary of the validation of the Beijing Treaty.",
]


def test_every_field_has_every_language() -> None:
    for field, by_language in FIELD_LABELS.items():
        assert set(by_language) >= LANGUAGES, field
        assert all(labels for labels in by_language.values()), field


def test_seed_header() -> None:
    fields, rest = split_labelled_lines(SEED_HEAD)
    assert fields == {"date": "2021-05-03", "source": "WIPO Office in China"}
    assert rest == [SEED_HEAD[0], SEED_HEAD[2], SEED_HEAD[5], "", SEED_HEAD[7]]
    assert [line for line in rest if line and not is_furniture(line)] == [SEED_HEAD[2], SEED_HEAD[7]]


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        ("发布时间：2020/5/7 14:52:23来源：国家知识产权局 字体 [大 中 小]",
         {"date": "2020/5/7 14:52:23", "source": "国家知识产权局"}),
        ("发布时间:2020/5/714:52:23来源:国家知识产权局", {"date": "2020/5/714:52:23", "source": "国家知识产权局"}),
        ("发布日期：2021-04-26　　来源：市知识产权局　　【字体：大 中 小】",
         {"date": "2021-04-26", "source": "市知识产权局"}),
        ("2020-04-27 来源:", {"date": "2020-04-27"}),
        ("Updated: 4 28,2023", {"updated": "4 28,2023"}),
        ("Date: 2021-05-03 | Source: WIPO Office in China", {"date": "2021-05-03", "source": "WIPO Office in China"}),
        ("Published: May 3, 2021", {"date": "May 3, 2021"}),
        ("Date: 2021-05-03 (Beijing time)", {"date": "2021-05-03 (Beijing time)"}),
        ("掲載日：令和3年5月3日（月）", {"date": "令和3年5月3日（月）"}),
        ("Release date: 3 May 2021", {"date": "3 May 2021"}),
        ("Last updated 12 May 2021", {"updated": "12 May 2021"}),
        ("掲載日：令和3年5月3日", {"date": "令和3年5月3日"}),
        ("公開日 2021年5月3日", {"date": "2021年5月3日"}),
        ("更新日：2021年5月10日", {"updated": "2021年5月10日"}),
        ("出典：特許庁", {"source": "特許庁"}),
        ("등록일 2025년 9월 5일", {"date": "2025년 9월 5일"}),
        ("작성일 : 2025.09.05.", {"date": "2025.09.05."}),
        ("출처 : 특허청 산업재산정책과", {"source": "특허청 산업재산정책과"}),
        ("Publié le 3 mai 2021", {"date": "3 mai 2021"}),
        ("Date de publication : 03/05/2021", {"date": "03/05/2021"}),
        ("Mis à jour le 10 mai 2021", {"updated": "10 mai 2021"}),
        ("Thèmes : Brevets, Marques", {"topics": "Brevets, Marques"}),
        ("Auteur : INPI", {"source": "INPI"}),
        ("Stand: 03.05.2021", {"date": "03.05.2021"}),
        ("Veröffentlicht am 3. Mai 2021", {"date": "3. Mai 2021"}),
        ("Datum: 03.05.2021 Quelle: DPMA", {"date": "03.05.2021", "source": "DPMA"}),
        ("Themen: Patente; Marken", {"topics": "Patente; Marken"}),
        ("Fecha: 03/05/2021", {"date": "03/05/2021"}),
        ("Publicado el 3 de mayo de 2021", {"date": "3 de mayo de 2021"}),
        ("Fuente: OEPM", {"source": "OEPM"}),
        ("Temas: Patentes, Marcas", {"topics": "Patentes, Marcas"}),
        ("發布日期：114-05-22", {"date": "114-05-22"}),
        ("資料來源：商標權組", {"source": "商標權組"}),
        ("Topics:", {}),
        ("来源:", {}),
        ("主题：", {}),
    ],
)
def test_label_lines(line: str, fields: dict[str, str]) -> None:
    found, rest = split_labelled_lines([line])
    assert (found, rest) == (fields, [])


@pytest.mark.parametrize(
    "line",
    [
        "April 26 marks the first anniversary of the validation of the Beijing Treaty.",
        "Stand der Technik: ein Überblick",
        "Date: to be announced",
        "Date: 12 May 2021 – the deadline for comments on the draft",
        "Published: the annual report of 3 May 2021",
        "Published 2021 statistics show growth",
        "Issued 3 patents on 5 May 2021",
        "The source of the data: the annual report",
        "据介绍，一季度发明专利授权量保持稳定，时间：全年。",
        "Beijing Treaty on Audiovisual Performances: The First Anniversary",
        "Sources say the office will publish more data",
        "Updated guidance on inventive step was published today.",
        "",
    ],
)
def test_prose_is_not_a_label_line(line: str) -> None:
    assert read_label_line(line) is None
    assert split_labelled_lines([line]) == ({}, [line])


def test_label_value_on_the_next_line() -> None:
    assert split_labelled_lines(["Date:", "2021-05-03", "Body."]) == ({"date": "2021-05-03"}, ["Body."])
    assert split_labelled_lines(["등록일", "2025년 9월 5일", "본문"]) == ({"date": "2025년 9월 5일"}, ["본문"])
    assert read_label_line("Date:", "2021-05-03") == ({"date": "2021-05-03"}, 2)
    # a title after an empty "Topics:" is not its value
    assert split_labelled_lines(["Topics:", "A title"]) == ({}, ["A title"])
    # a non-date line after an empty date label stays
    assert split_labelled_lines(["Date:", "Not a date"]) == ({}, ["Not a date"])


def test_first_value_wins() -> None:
    fields, rest = split_labelled_lines(["Date: 2021-05-03", "Date: 2022-01-01", "Text"])
    assert fields == {"date": "2021-05-03"} and rest == ["Text"]


@pytest.mark.parametrize(
    "line",
    [
        "fontSize: big middle small",
        "fontSize:   big middle small",
        "Font size: A+ A A-",
        "字体 [大 中 小]",
        "字体：[ 大 中 小 ]",
        "字体 [ ] 打印",
        "【字体：大 中 小】",
        "【打印】【关闭】",
        "打印 关闭",
        "打印本页 关闭窗口",
        "Print",
        "Print Share",
        "Share: WeChat Weibo",
        "Share this page",
        "Back to top",
        "Skip to main content",
        "Skip to main content Skip to footer",
        "Main content starts here.",
        "ここから本文です。",
        "本文へ",
        "文字サイズ",
        "文字サイズ 標準 拡大",
        "ページの先頭へ戻る",
        "글자크기",
        "글자크기 확대 축소",
        "본문 바로가기",
        "인쇄 목록",
        "Aller au contenu principal",
        "Imprimer",
        "Zum Inhalt springen",
        "Drucken Teilen",
        "Ir al contenido principal",
        "Imprimir Compartir",
        "Chinese",
        "中文",
        "English",
        "日本語",
        "한국어",
        "Français",
        "Deutsch",
        "Español",
        "中文 | English",
        "You are here: Home > News > Photos",
        "当前位置：首页 > 新闻 > 局要闻",
        "擦亮“双奥之城”名片 加速国际交往中心功能建设.jpeg",
    ],
)
def test_furniture(line: str) -> None:
    assert is_furniture(line)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "April 26 marks the first anniversary",
        "named after a Chinese city",
        "Chinese government officials attended",
        "English translation of the Patent Law",
        "Print media reported the decision",
        "国家知识产权局召开新闻发布会",
        "ここから本文です。特許庁は本日発表しました。" * 4,
        "Home > News",
        "Date: 2021-05-03",
    ],
)
def test_not_furniture(line: str) -> None:
    assert not is_furniture(line)


def test_language_switch_words_are_listed() -> None:
    words = {w.casefold() for w in FURNITURE_WORDS["language switch"]}
    assert {"chinese", "中文", "english", "日本語", "한국어", "français", "deutsch", "español"} <= words


@pytest.mark.parametrize(
    ("value", "topics"),
    [
        ("Brevets, Marques", ("Brevets", "Marques")),
        ("Patents; Designs; IPI", ("Patents", "Designs", "IPI")),
        ("专利、商标，地理标志", ("专利", "商标", "地理标志")),
        ("Patents | Trade marks | Patents", ("Patents", "Trade marks")),
        ("", ()),
        (None, ()),
        (" , ; ", ()),
    ],
)
def test_split_topics(value: str | None, topics: tuple[str, ...]) -> None:
    assert split_topics(value) == topics


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=8))
def test_never_raises(lines: list[str]) -> None:
    fields, rest = split_labelled_lines(lines)
    assert set(fields) <= {"date", "updated", "source", "topics"}
    assert len(rest) <= len(lines)
    for line in lines:
        is_furniture(line)


def test_no_label_starts_with_edge_punctuation() -> None:
    # _read_line matches a colon-less line's label only after its leading edge punctuation.
    from aggregator.labels import _EDGE_PUNCT

    labels = [label for by in FIELD_LABELS.values() for ls in by.values() for label in ls]
    assert not [label for label in labels if label[0] in _EDGE_PUNCT]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="Date Published on Stand 发布时间日期 Source 来源 -|[]（）·,2021-05-03 xé", max_size=40))
def test_colonless_lines_match_only_at_the_start(text: str) -> None:
    """The one-position match of a line without a colon finds what a scan of the line keeps."""
    from aggregator.labels import _EDGE_PUNCT, _LABELS

    scanned = [m.span() for m in _LABELS.finditer(text) if m["colon"] or not text[: m.start()].strip(_EDGE_PUNCT)]
    first = _LABELS.match(text, len(text) - len(text.lstrip(_EDGE_PUNCT)))
    assert scanned == ([first.span()] if first else [])
