"""Which language an article is written in.

The configured source language wins, then the page's ``<html lang>``, then
detection. Detection reads the writing system first (kana means Japanese,
Hangul Korean, Han without kana Chinese: exact facts a statistical model
can blur on short text) and asks py3langid for everything else.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from .normalize import normalize_language

__all__ = ["choose_language", "detect_language"]

MIN_LETTERS = 20  # fewer letters than this: too little text to say
MIN_CJK = 6  # CJK characters carry more per character
MIN_CONFIDENCE = 0.5  # py3langid normalized probability
SAMPLE_CHARS = 4000  # the start of a body is enough

# py3langid labels without an ISO 639-1 code → the nearest 639-1 language,
# or None where there is none worth claiming.
LANGID_TO_ISO639_1: dict[str, str | None] = {
    "zxx": None, "yue": "zh", "wuu": "zh", "arz": "ar", "ary": "ar", "uzs": "uz", "gug": "gn",
    "hbo": "he", "grc": "el", "kik": "ki", "sdh": "ku", "ltg": "lv", "gom": None, "ace": None,
    "bcl": None, "ext": None, "gcf": None, "gcr": None, "nso": None, "pcm": None, "crh": None,
    "fuv": None, "guw": None, "kab": None, "lij": None, "vec": None,
}
# ISO 639-2/3 codes sometimes found in <html lang> → ISO 639-1.
ISO639_3_TO_1 = {
    "eng": "en", "zho": "zh", "chi": "zh", "cmn": "zh", "jpn": "ja", "kor": "ko", "fra": "fr", "fre": "fr",
    "deu": "de", "ger": "de", "spa": "es", "por": "pt", "rus": "ru", "ita": "it", "nld": "nl", "dut": "nl",
    "ara": "ar", "vie": "vi", "tha": "th", "ind": "id", "msa": "ms", "may": "ms",
}

_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LETTER = re.compile(r"[^\W\d_]")

_identifier: Any = None
_lock = threading.Lock()


def _langid() -> Any:
    global _identifier
    if _identifier is None:
        with _lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return _identifier


def _iso639_1(code: str | None) -> str | None:
    code = normalize_language(code)
    if not code:
        return None
    if len(code) == 2:
        return code
    if code in ISO639_3_TO_1:
        return ISO639_3_TO_1[code]
    return LANGID_TO_ISO639_1.get(code)


def detect_language(text: str | None) -> str | None:
    """ISO 639-1 code of ``text``'s language, or None when too short or unsure."""
    if not text:
        return None
    sample = text[:SAMPLE_CHARS]
    kana = len(_KANA.findall(sample))
    hangul = len(_HANGUL.findall(sample))
    han = len(_HAN.findall(sample))
    letters = len(_LETTER.findall(sample))
    if kana >= MIN_CJK / 2 and kana + han >= MIN_CJK and kana + han >= letters * 0.3:
        return "ja"
    if hangul >= MIN_CJK and hangul >= letters * 0.3:
        return "ko"
    if han >= MIN_CJK and han >= letters * 0.3:
        return "zh"
    if letters < MIN_LETTERS:
        return None
    try:
        code, confidence = _langid().classify(sample)
    except Exception:  # a detector failure is "unknown", never a crash
        return None
    if confidence < MIN_CONFIDENCE:
        return None
    return _iso639_1(code)


def choose_language(configured: str | None, declared_html_lang: str | None, text: str | None) -> str | None:
    """The article language: configured source language, else ``<html lang>``, else detected."""
    return _iso639_1(configured) or _iso639_1(declared_html_lang) or detect_language(text)
