"""Seeded multilingual filler text for the benchmark corpus and the search archives.

Each language has a vocabulary: the words intellectual-property offices use
first (so searches for "patent" or 专利 hit a realistic share of the archive),
then a few thousand invented words from the language's syllables or
characters. Word frequencies follow a Zipf curve (a few words are common, most
are rare, as in real news text), and every sentence is drawn fresh, so two
articles share phrases about as rarely as real ones do; near-duplicate
detection then sees realistic candidate sets.
"""

from __future__ import annotations

import random

LANGUAGES = ("en", "de", "fr", "es", "zh", "ja", "ko")

def _words(text: str) -> list[str]:
    return text.split()


_WORDS = {
    "en": _words(
        "the of and to in a for on patent trademark office application applications examination "
        "design designs intellectual property rights international filing filings system treaty "
        "madrid hague pct unitary court decision guidance fees online service services users holders "
        "applicants new report annual data statistics growth year innovation technology artificial "
        "intelligence search classification opposition appeal board renewal deadline extension "
        "consultation public notice change changes procedure procedures rules regulation amendment "
        "european national regional agreement cooperation programme pilot workshop seminar webinar "
        "launch launches published publishes announce announces record increase decrease small "
        "business businesses enforcement counterfeit goods brand brands copyright licensing transfer "
        "quality examiners backlog pendency priority grant granted validation translation database "
        "portal electronic digital form forms payment requirement requirements inventors university "
        "research energy climate green medicine biotech software semiconductor battery vehicle"
    ),
    "de": _words(
        "der die das und in zu den von mit für ist auf Patent Patente Marke Marken Anmeldung "
        "Anmeldungen Prüfung Amt Design Designs Schutz Recht Rechte Gebühren Verfahren Einspruch "
        "Beschwerde Gericht Entscheidung Jahresbericht Statistik Zahlen Wachstum Innovation Technik "
        "künstliche Intelligenz Recherche Klassifikation Verlängerung Frist Änderung Bekanntmachung "
        "europäische nationale Zusammenarbeit Programm Veranstaltung Seminar Anmelder Erfinder "
        "Unternehmen Mittelstand Marke Fälschung Urheberrecht Lizenz Qualität Prüfer Erteilung "
        "Übersetzung Datenbank Portal elektronisch digital Formular Zahlung Hochschule Forschung "
        "Energie Klima Medizin Software Halbleiter Batterie Fahrzeug neue neuen Bericht veröffentlicht"
    ),
    "fr": _words(
        "le la les de des et à en pour sur un une du brevet brevets marque marques demande demandes "
        "examen office dessins modèles propriété intellectuelle droits dépôt dépôts système traité "
        "procédure opposition recours tribunal décision redevances service services en ligne "
        "déposants rapport annuel données statistiques croissance innovation technologie "
        "intelligence artificielle recherche classification renouvellement délai modification avis "
        "européen national coopération programme atelier séminaire entreprises contrefaçon droit "
        "d'auteur licence qualité examinateurs délivrance traduction base portail numérique "
        "formulaire paiement inventeurs université énergie climat médecine logiciel batterie véhicule"
    ),
    "es": _words(
        "el la los las de del y en para por un una con patente patentes marca marcas solicitud "
        "solicitudes examen oficina diseño diseños propiedad industrial intelectual derechos sistema "
        "tratado procedimiento oposición recurso tribunal decisión tasas servicio servicios línea "
        "solicitantes informe anual datos estadísticas crecimiento innovación tecnología inteligencia "
        "artificial búsqueda clasificación renovación plazo modificación aviso europeo nacional "
        "cooperación programa taller seminario empresas falsificación derecho autor licencia calidad "
        "examinadores concesión traducción base portal digital formulario pago inventores universidad "
        "energía clima medicina software batería vehículo"
    ),
    "zh": _words(
        "专利 商标 知识产权 国家 审查 申请 发明 实用新型 外观设计 保护 局 工作 会议 发展 创新 "
        "数据 统计 年度 报告 企业 服务 公共 信息 国际 合作 地理标志 版权 执法 质量 效率 周期 "
        "人工智能 检索 分类 转化 运用 许可 质押 融资 高校 科研 院所 产业 技术 领域 标准 政策 "
        "制度 改革 试点 推进 加强 提升 完善 建设 举办 发布 召开 部署 全国 地方 管理 部门 "
        "电子 系统 平台 线上 办理 费用 减缴 代理 机构 纠纷 调解 仲裁 法院 判决 侵权 假冒"
    ),
    "ja": _words(
        "特許 商標 意匠 実用新案 特許庁 審査 出願 知的財産 保護 制度 改正 施行 手続 料金 "
        "電子 出願人 中小企業 支援 国際 協力 年次 報告 統計 技術 分野 人工知能 検索 分類 "
        "審判 異議 申立 判決 裁判所 早期 期間 延長 説明会 開催 公表 発表 公開 運用 情報 "
        "システム 更新 登録 更新料 減免 大学 研究 産業 政策 推進 強化 品質 審査官 翻訳"
    ),
    "ko": _words(
        "특허 상표 디자인 실용신안 특허청 지식재산 심사 출원 보호 제도 개정 시행 절차 수수료 "
        "전자 출원인 중소기업 지원 국제 협력 연차 보고서 통계 기술 분야 인공지능 검색 분류 "
        "심판 이의 신청 판결 법원 기간 연장 설명회 개최 발표 공개 운영 정보 시스템 등록 "
        "감면 대학 연구 산업 정책 추진 강화 품질 심사관 번역 기업 혁신 발명"
    ),
}
_JA_PARTICLES = ("の", "を", "に", "は", "が", "と", "で", "について", "に関する")
_KO_PARTICLES = ("의", "을", "를", "에", "은", "는", "이", "가", "과", "에서")
_ZH_JOINERS = ("", "", "", "的", "和", "在", "对", "与")
_END = {"zh": "。", "ja": "。", "ko": "."}


# Syllables for the long tail of each vocabulary: invented words, so texts share few phrases
# (a shared pool of whole sentences would make every article a near-duplicate candidate of
# every other, which real news is not).
_SYLLABLES = {
    "en": "ba be bi co da de di en er fa fo ga in la le li ma me mo na ne no or pa pe pi ra re ri "
          "sa se si ta te ti to un ve vi",
    "de": "ab an be ber de der ein en er ge hal kei lan mar nen ren sch sel ster ten un ver wer zu",
    "fr": "ai an au ce de en eu la le li ma me mon ne on pa pe ré ri sa se té ti tou ve vi",
    "es": "ba ca ce da de do el en es la le lo ma me mo na ne no pa pe ra re ri sa se ta te to",
    "zh": "中国家知识产权局专利商标审查申请发明保护工作会议发展创新数据统计年度报告企业服务公共信息"
          "合作地理标志版权执法质量效率人工智能检索分类转化运用许可质押融资高校科研院所业技术领域标准"
          "政策制度改革试点推进加强提升完善建设举办发布召开部署全地方管理部门电子系统平台线上办理费用",
    "ja": "特許商標意匠実用新案庁審査出願知的財産保護制度改正施行手続料金電子人中小企業支援国際協力年次"
          "報告統計技術分野能検索分類判異議申立決裁所早期間延長説明会開催公表発公運用情系更新登録減免",
    "ko": "특허상표디자인실용신안청지식재산심사출원보호제도개정시행절차수수료전자인중소기업지원국제협력"
          "연차보고서통계기술분야능검색분류판이의신청결법원간장설명회개최발표공운영정시스템등록감면",
}
# Zipf–Mandelbrot offset: the commonest word makes ~4 % of the text, as "the" does in English news
# (plain Zipf over these vocabularies would give 11 %, and far more shared phrases).
ZIPF_OFFSET = 2.7
_TAIL_WORDS = {"en": 4000, "de": 3000, "fr": 3000, "es": 3000, "zh": 3000, "ja": 2500, "ko": 2500}


def _vocabulary(language: str, rng: random.Random) -> list[str]:
    words = list(dict.fromkeys(_WORDS[language]))
    seen = set(words)
    syllables = _SYLLABLES[language]
    pieces = list(syllables) if language in ("zh", "ja", "ko") else syllables.split()
    while len(words) < len(_WORDS[language]) + _TAIL_WORDS[language]:
        if language in ("zh", "ja", "ko"):
            word = "".join(rng.choices(pieces, k=rng.choice((2, 2, 2, 3, 4))))
        else:
            word = "".join(rng.choices(pieces, k=rng.choice((2, 3, 3, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


class TextPool:
    """Per-language vocabularies (the offices' words first, then invented ones, Zipf-weighted);
    every title, summary and body is drawn fresh from them with the caller's RNG."""

    def __init__(self, seed: int):
        rng = random.Random(seed)
        self.words = {lang: _vocabulary(lang, rng) for lang in LANGUAGES}
        self.cum = {}
        for lang, words in self.words.items():
            total, cum = 0.0, []
            for rank in range(len(words)):
                total += 1.0 / (rank + 1 + ZIPF_OFFSET)
                cum.append(total)
            self.cum[lang] = cum

    def sentence(self, rng: random.Random, language: str) -> str:
        words, cum = self.words[language], self.cum[language]
        if language == "zh":
            chosen = rng.choices(words, cum_weights=cum, k=rng.randint(5, 12))
            text = "".join(w + rng.choice(_ZH_JOINERS) for w in chosen)
            if len(text) > 12 and rng.random() < 0.6:
                cut = rng.randrange(4, len(text) - 4)
                text = text[:cut] + "，" + text[cut:]
            return text + "。"
        if language == "ja":
            chosen = rng.choices(words, cum_weights=cum, k=rng.randint(5, 12))
            return "".join(w + rng.choice(_JA_PARTICLES) for w in chosen[:-1]) + chosen[-1] + "を行います。"
        chosen = rng.choices(words, cum_weights=cum, k=rng.randint(8, 22))
        if language == "ko":
            return " ".join(w + rng.choice(_KO_PARTICLES) for w in chosen[:-1]) + " " + chosen[-1] + "합니다."
        sentence = " ".join(chosen)
        if rng.random() < 0.3:
            sentence += f" {rng.randint(2, 2026)}"
        return sentence[0].upper() + sentence[1:] + "."

    def title(self, rng: random.Random, language: str) -> str:
        sentence = self.sentence(rng, language).rstrip("。.")
        limit = 28 if language in ("zh", "ja") else 90
        if len(sentence) > limit:
            cut = sentence[:limit]
            if " " in cut and language not in ("zh", "ja"):
                cut = cut.rsplit(" ", 1)[0]
            sentence = cut
        return sentence

    def paragraphs(self, rng: random.Random, language: str, target_bytes: int) -> list[str]:
        """Paragraphs of 2–5 sentences adding up to about ``target_bytes`` of UTF-8 text."""
        sep = "" if language in ("zh", "ja") else " "
        paragraphs: list[str] = []
        total = 0
        while total < target_bytes:
            paragraph = sep.join(self.sentence(rng, language) for _ in range(rng.randint(2, 5)))
            paragraphs.append(paragraph)
            total += len(paragraph.encode()) + 1
        return paragraphs

    def summary(self, rng: random.Random, language: str) -> str:
        return self.sentence(rng, language)


def body_size(rng: random.Random) -> int:
    """A body length in bytes: 1–5 KB, most around 2–4 KB (mean ≈ 3.2 KB)."""
    return int(min(5000, max(1000, rng.triangular(1000, 5000, 3400))))
