"""Field labels and page furniture, as data.

Office article pages print their metadata as labelled lines above the body
(``Date: 2021-05-03``, ``发布时间：2020/5/7 14:52:23来源：国家知识产权局``,
``Publié le 3 mai 2021``) and surround it with widgets that extraction turns
into text (``fontSize: big middle small``, ``字体 [大 中 小]``, ``打印 关闭``,
a lone ``Chinese`` language-switch link). The tables below list both, per
field and per language; the two functions read them:

* :func:`split_labelled_lines` turns label lines into fields ("date",
  "updated", "source", "topics") and returns the other lines;
* :func:`is_furniture` says whether a line is only widgets and links.

To support a new office, add its words here; the code should not change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from .dates import find_date
from .normalize import clean_line

__all__ = [
    "FIELD_LABELS",
    "FURNITURE_PATTERNS",
    "FURNITURE_WORDS",
    "is_furniture",
    "read_label_line",
    "split_labelled_lines",
    "split_topics",
]

# --------------------------------------------------------------------------- field labels
# field → language → labels. Matching ignores case; a label is followed by a
# colon (ASCII or full-width), except at the start of a line, where a date
# label may be followed directly by a date ("Publié le 3 mai 2021").

FIELD_LABELS: dict[str, dict[str, tuple[str, ...]]] = {
    # The article's own date.
    "date": {
        "en": (
            "Date", "Published", "Published on", "Publication date", "Date of publication", "Release date",
            "Released", "Posted", "Posted on", "Issued", "Issue date", "Date published",
        ),
        "zh": (
            "发布时间", "发布日期", "发表时间", "发文日期", "成文日期", "日期", "时间", "发布于",
            "發布時間", "發布日期", "發佈日期", "發文日期", "公告日期", "公布日期", "刊登日期", "日　期",
        ),
        "ja": ("掲載日", "公開日", "発表日", "公表日", "掲載日時", "公開日時", "日付", "発行日"),
        "ko": ("등록일", "작성일", "게시일", "등록일자", "작성일자", "게시일자", "등록일시", "작성일시", "날짜", "일자"),
        "fr": ("Date de publication", "Publié le", "Publié", "Date", "Paru le"),
        "de": ("Datum", "Veröffentlicht am", "Veröffentlicht", "Erscheinungsdatum", "Stand"),
        "es": ("Fecha de publicación", "Fecha", "Publicado el", "Publicado", "Fecha de la noticia"),
    },
    # When the page was last changed (CNIPA English uses it as its only date).
    "updated": {
        "en": ("Updated", "Last updated", "Last modified", "Modified", "Updated on", "Last update"),
        "zh": ("更新时间", "更新日期", "修改时间", "更新於", "更新時間", "修改日期"),
        "ja": ("更新日", "最終更新日", "更新日時", "最終更新"),
        "ko": ("수정일", "최종수정일", "수정일자", "갱신일"),
        "fr": ("Mis à jour le", "Mis à jour", "Mise à jour", "Dernière mise à jour"),
        "de": ("Aktualisiert am", "Aktualisiert", "Zuletzt aktualisiert", "Letzte Änderung", "Geändert am"),
        "es": ("Actualizado el", "Actualizado", "Última actualización", "Fecha de actualización"),
    },
    # Who wrote or first published the story (often another organisation).
    "source": {
        "en": ("Source", "Sources", "Author", "Issued by", "Published by"),
        "zh": ("来源", "信息来源", "文章来源", "稿件来源", "來源", "資料來源", "作者", "发布机构", "發布單位"),
        "ja": ("出典", "出所", "提供", "発信元", "担当", "担当部署"),
        "ko": ("출처", "작성자", "담당부서", "담당자", "부서"),
        "fr": ("Source", "Auteur", "Auteurs"),
        "de": ("Quelle", "Autor", "Autorin", "Herausgeber"),
        "es": ("Fuente", "Autor", "Autora"),
    },
    # Subject tags.
    "topics": {
        "en": ("Topics", "Topic", "Tags", "Tag", "Categories", "Category", "Keywords", "Subjects"),
        "zh": ("主题", "主题分类", "分类", "关键词", "关键字", "标签", "主題", "分類", "關鍵詞", "標籤"),
        "ja": ("タグ", "カテゴリ", "カテゴリー", "分野", "キーワード"),
        "ko": ("분류", "태그", "주제", "카테고리", "키워드"),
        "fr": ("Thèmes", "Thème", "Mots-clés", "Mots clés", "Catégories", "Catégorie", "Étiquettes"),
        "de": ("Themen", "Thema", "Schlagwörter", "Schlagworte", "Kategorie", "Kategorien"),
        "es": ("Temas", "Tema", "Etiquetas", "Categoría", "Categorías", "Palabras clave"),
    },
}
DATE_FIELDS = ("date", "updated")

# --------------------------------------------------------------------------- furniture
# Whole lines that are only widgets, grouped by language. Matched against the
# whole (cleaned) line, ignoring case.
FURNITURE_PATTERNS: dict[str, tuple[str, ...]] = {
    "en": (
        r"(?:font\s*-?\s*size|text\s*size)\s*:?(?:\s*(?:big|large|larger|middle|medium|small|smaller|normal|"
        r"default|reset|increase|decrease|a\+?|a-|\+|-))*",
        r"skip\s+to\s+(?:the\s+)?(?:main\s+)?(?:content|navigation|footer|search)"
        r"(?:\s+skip\s+to\s+(?:the\s+)?(?:main\s+)?(?:content|navigation|footer|search))*",
        r"main\s+content\s+starts\s+here\.?",
        r"(?:print|share|email|e-mail)\s+(?:this\s+)?(?:page|article)",
        r"back\s+to\s+(?:top|list|previous\s+page)",
        r"you\s+are\s+here\s*:?",
    ),
    # Breadcrumbs ("You are here: Home > News > Photos", "当前位置：首页 > 新闻") and
    # image file names leaked into the text ("….jpeg" on a line of its own).
    "any": (
        r"(?:(?:you\s+are\s+here|当前位置|您现在的位置|您的位置|現在位置|현재\s*위치)\s*[:：]?\s*)?"
        r"[^>»›\n]{1,30}(?:\s*[>»›]\s*[^>»›\n]{1,40}){2,8}",
        r"[^\n]{1,120}\.(?:jpe?g|png|gif|bmp|webp)",
    ),
    "zh": (
        r"[【\[]?\s*(?:字体|字號|字号)\s*[:：]?\s*[\[【（(]?[\s大中小]*[\]】）)]?\s*[】\]]?",
        r"(?:【\s*)?(?:打印|关闭|關閉|列印)(?:本页|此页|窗口|本頁|視窗)?(?:\s*】)?",
        r"(?:分享|分享到)\s*[:：]?",
        r"当前位置\s*[:：]?|您现在的位置\s*[:：]?|目前位置\s*[:：]?",
    ),
    "ja": (
        r"ここから本文(?:です)?。?",
        r"本文ここまで(?:です)?。?",
        r"本文へ(?:スキップ|移動)?",
        r"文字サイズ(?:の?変更)?\s*[:：]?[\s標準拡大縮小大中小]*",
        r"ページの?(?:先頭|トップ)へ(?:戻る)?",
    ),
    "ko": (
        r"글자\s*크기\s*[:：]?(?:\s*(?:확대|축소|크게|작게|기본|\+|-))*",
        r"본문\s*바로\s*가기|주\s*메뉴\s*바로\s*가기",
    ),
    "fr": (
        r"aller\s+au\s+(?:contenu|menu)(?:\s+principal)?",
        r"taille\s+du\s+texte\s*:?(?:\s*(?:a\+?|a-|\+|-))*",
        r"retour\s+en\s+haut(?:\s+de\s+(?:la\s+)?page)?",
    ),
    "de": (
        r"zum\s+(?:inhalt|hauptinhalt)(?:\s+springen)?",
        r"schriftgröße\s*:?(?:\s*(?:a\+?|a-|\+|-))*",
        r"seite\s+drucken|nach\s+oben",
    ),
    "es": (
        r"ir\s+al\s+contenido(?:\s+principal)?|saltar\s+al\s+contenido(?:\s+principal)?",
        r"tamaño\s+de\s+(?:letra|texto|fuente)\s*:?(?:\s*(?:a\+?|a-|\+|-))*",
        r"volver\s+arriba",
    ),
}

# Single words that are furniture when a line holds nothing else (alone or
# with each other: "Print Share", "打印 关闭", "中文 | English").
FURNITURE_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("print", "share", "email", "e-mail", "close", "top", "back", "download", "tweet", "facebook",
           "twitter", "linkedin", "wechat", "weibo", "rss", "home", "menu", "search", "a+", "a-", "a"),
    "zh": ("打印", "关闭", "關閉", "列印", "分享", "收藏", "返回", "返回顶部", "返回列表", "顶部", "首页",
           "微信", "微博", "大", "中", "小"),
    "ja": ("印刷", "閉じる", "戻る", "共有", "標準", "拡大", "縮小"),
    "ko": ("인쇄", "공유", "닫기", "목록", "스크랩", "확대", "축소"),
    "fr": ("imprimer", "partager", "fermer", "retour"),
    "de": ("drucken", "teilen", "schließen", "zurück"),
    "es": ("imprimir", "compartir", "cerrar", "volver"),
    # Language-switch links: furniture only when they stand alone.
    "language switch": (
        "chinese", "中文", "简体中文", "繁體中文", "简体", "繁體", "繁体", "english", "en", "zh", "cn", "日本語",
        "japanese", "한국어", "korean", "français", "francais", "french", "deutsch", "german", "español",
        "espanol", "spanish", "русский", "português", "italiano", "العربية",
    ),
}

# Widgets that can also sit at the end of a labelled line
# ("来源：国家知识产权局 字体 [大 中 小]"): cut from label values.
INLINE_FURNITURE = (
    r"[【\[]?\s*(?:字体|字號|字号)\s*[:：]?\s*[\[【（(][\s大中小]*[\]】）)]\s*[】\]]?",
    r"[【\[]?\s*(?:字体|字號|字号)\s*[:：]?\s*大\s*中\s*小\s*[】\]]?",
    r"【\s*(?:打印|关闭|關閉|列印)(?:本页|窗口)?\s*】",
    r"(?<!\S)(?:打印|关闭|關閉|列印)(?:本页|窗口)?(?!\S)",
    r"font\s*size\s*:?\s*big\s+middle\s+small",
    r"文字サイズ(?:の?変更)?\s*[:：]?(?:\s*(?:標準|拡大|縮小))*",
    r"글자\s*크기(?:\s*(?:확대|축소))*",
)

# --------------------------------------------------------------------------- compiled forms

def _label_key(label: str) -> str:
    return "".join(label.split()).casefold()


_LABEL_TO_FIELD: dict[str, str] = {}
for _field, _by_language in FIELD_LABELS.items():
    for _labels in _by_language.values():
        for _label in _labels:
            _LABEL_TO_FIELD.setdefault(_label_key(_label), _field)


def _label_pattern(labels: Iterable[str]) -> str:
    parts = []
    for label in sorted(set(labels), key=len, reverse=True):
        joiner = r"\s+" if label.isascii() else r"\s*"
        escaped = joiner.join(re.escape(word) for word in label.split())
        if label[0].isascii() and label[0].isalpha():
            escaped = r"(?<![^\W\d_])" + escaped  # Latin labels start a word
        parts.append(escaped)
    return "|".join(parts)


_LABELS = re.compile(
    r"(?P<label>" + _label_pattern(label for by in FIELD_LABELS.values() for ls in by.values() for label in ls) + r")"
    r"(?![^\W\d_])(?P<colon>\s*[:：]\s*)?",
    re.IGNORECASE,
)
_FURNITURE_LINE = re.compile(
    "|".join(f"(?:{p})" for group in FURNITURE_PATTERNS.values() for p in group), re.IGNORECASE
)
_INLINE_FURNITURE = re.compile("|".join(f"(?:{p})" for p in INLINE_FURNITURE), re.IGNORECASE)
_WORDS = frozenset(w.casefold() for group in FURNITURE_WORDS.values() for w in group)
_TOKEN_SPLIT = re.compile(r"[\s|/·•,，、;；]+")
_TOKEN_STRIP = "[]【】()（）「」〔〕<>《》\"'“”‘’:：.。!！"
_EDGE_PUNCT = " \t|/·•-–—,，;；:：[]【】()（）"
_CLOSING = {")": "(", "）": "（", "]": "[", "】": "【"}
_TOPIC_SPLIT = re.compile(r"\s*[,;，；、|/·•]\s*")
MAX_FURNITURE_CHARS = 80
MAX_LABEL_LINE_CHARS = 300
MAX_DATE_NOTE_CHARS = 16  # what may follow the date in a date label's value


def _field_of(label: str) -> str:
    return _LABEL_TO_FIELD[_label_key(label)]


def _strip_value(value: str) -> str:
    value = clean_line(_INLINE_FURNITURE.sub(" ", value)).lstrip(_EDGE_PUNCT)
    # keep a closing bracket whose opening one is in the value: "2021-05-03 (Beijing time)"
    stripped = value.rstrip(_EDGE_PUNCT)
    while len(stripped) < len(value) and value[len(stripped)] in _CLOSING:
        closer = value[len(stripped)]
        if _CLOSING[closer] not in stripped:
            break
        stripped += closer
    return stripped


def _tokens_are_furniture(text: str) -> bool:
    tokens = [t.strip(_TOKEN_STRIP) for t in _TOKEN_SPLIT.split(text)]
    tokens = [t for t in tokens if t]
    return bool(tokens) and all(t.casefold() in _WORDS for t in tokens)


# Pages of one template repeat the same furniture and label lines: the line readers below are pure
# functions of their arguments, so their answers for short lines are kept (bounded in number and
# size) instead of re-running the regexes.
CACHED_LINES = 8192
CACHED_LINE_CHARS = 400


def is_furniture(line: str | None) -> bool:
    """True when a line holds only page widgets: font-size and print buttons, skip links, a language switch."""
    if line is not None and len(line) > CACHED_LINE_CHARS:
        return _is_furniture(line)
    return _is_furniture_cached(line)


@lru_cache(maxsize=CACHED_LINES)
def _is_furniture_cached(line: str | None) -> bool:
    return _is_furniture(line)


def _is_furniture(line: str | None) -> bool:
    text = clean_line(line)
    if not text or len(text) > MAX_FURNITURE_CHARS:
        return False
    if _FURNITURE_LINE.fullmatch(text):
        return True
    rest = _INLINE_FURNITURE.sub(" ", text).strip()
    if not rest:
        return True
    return _tokens_are_furniture(rest)


def _is_date_value(value: str) -> bool:
    """A date, perhaps with a short note ("(Beijing time)", "（月）"), and not a sentence that mentions one."""
    found = find_date(value, roc_years=True)
    if not found:
        return False
    before, _, after = value.partition(found.raw)
    return not before.strip(_EDGE_PUNCT) and len(after.strip(_EDGE_PUNCT)) <= MAX_DATE_NOTE_CHARS


def _read_line(line: str, next_line: str | None) -> tuple[dict[str, str], bool] | None:
    """Fields of one label line, and whether it also used the next line; None if not a label line.

    A fresh dict per call: the cached answer is shared.
    """
    if (line and len(line) > CACHED_LINE_CHARS) or (next_line and len(next_line) > CACHED_LINE_CHARS):
        return _read_line_uncached(line, next_line)
    read = _read_line_cached(line, next_line)
    return None if read is None else (dict(read[0]), read[1])


@lru_cache(maxsize=CACHED_LINES)
def _read_line_cached(line: str, next_line: str | None) -> tuple[tuple[tuple[str, str], ...], bool] | None:
    read = _read_line_uncached(line, next_line)
    return None if read is None else (tuple(read[0].items()), read[1])


def _read_line_uncached(line: str, next_line: str | None) -> tuple[dict[str, str], bool] | None:
    text = clean_line(line)
    if not text or len(text) > MAX_LABEL_LINE_CHARS:
        return None
    if ":" in text or "：" in text:
        matches = []
        for m in _LABELS.finditer(text):
            at_start = not text[: m.start()].strip(_EDGE_PUNCT)
            if m["colon"] or at_start:
                matches.append(m)
    else:
        # Without a colon only a label at the start of the line counts, and no label starts with
        # edge punctuation: one match at the first other character instead of a scan of the line.
        first = _LABELS.match(text, len(text) - len(text.lstrip(_EDGE_PUNCT)))
        matches = [first] if first is not None else []
    if not matches:
        return None

    fields: dict[str, str] = {}
    prefix = text[: matches[0].start()].strip(_EDGE_PUNCT)
    if prefix:
        # "2020-04-27 来源:" (NCAC): a bare date may precede the first label.
        found = find_date(prefix, roc_years=True)
        if found and not prefix.replace(found.raw, "").strip(_EDGE_PUNCT):
            fields["date"] = found.raw
        elif not is_furniture(prefix):
            return None

    used_next = False
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        field = _field_of(m["label"])
        value = _strip_value(text[m.end() : end])
        if not m["colon"]:
            # A label without a colon counts only when a date follows it
            # directly, or when it is the whole line and the next line is a date.
            if field not in DATE_FIELDS:
                return None
            if value:
                found = find_date(value, roc_years=True)
                if not found or not value.startswith(found.raw):
                    return None
            elif i == len(matches) - 1 and next_line is not None:
                following = clean_line(next_line)
                found = find_date(following, roc_years=True)
                if not found or following != found.raw:
                    return None
                value, used_next = following, True
            else:
                return None
        elif not value and field in DATE_FIELDS and i == len(matches) - 1 and next_line is not None:
            following = clean_line(next_line)
            found = find_date(following, roc_years=True)
            if found and following == found.raw:
                value, used_next = following, True
        if field in DATE_FIELDS and value and not _is_date_value(value):
            return None  # "Date: to be announced" is prose, not a field
        if value:
            fields.setdefault(field, value)
    return fields, used_next


def read_label_line(line: str, next_line: str | None = None) -> tuple[dict[str, str], int] | None:
    """The fields of one label line and how many lines it used (2 when its value is on ``next_line``).

    None when ``line`` is not a label line. ``Topics:`` alone gives ({}, 1).
    """
    read = _read_line(line, next_line)
    if read is None:
        return None
    fields, used_next = read
    return fields, 2 if used_next else 1


def split_labelled_lines(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """Pull labelled metadata out of ``lines``.

    Returns (fields, the other lines). Fields are "date", "updated", "source"
    and "topics", each the raw value of its first occurrence (furniture cut
    off: ``来源：国家知识产权局 字体 [大 中 小]`` gives ``国家知识产权局``). A
    label with no value (``Topics:``) removes its line but sets nothing.
    Several labels may share a line (``发布时间：2020/5/7 14:52:23来源：…``).
    """
    fields: dict[str, str] = {}
    rest: list[str] = []
    skip = False
    for i, line in enumerate(lines):
        if skip:
            skip = False
            continue
        read = _read_line(line, lines[i + 1] if i + 1 < len(lines) else None)
        if read is None:
            rest.append(line)
            continue
        found, skip = read
        for key, value in found.items():
            fields.setdefault(key, value)
    return fields, rest


def split_topics(value: str | None) -> tuple[str, ...]:
    """Topic names from a label value or element text: ``Patents, Designs; IPI`` → three topics."""
    if not value:
        return ()
    seen: dict[str, None] = {}
    for part in _TOPIC_SPLIT.split(clean_line(value)):
        part = part.strip(_EDGE_PUNCT)
        if part and part.casefold() not in {p.casefold() for p in seen}:
            seen[part] = None
    return tuple(seen)
