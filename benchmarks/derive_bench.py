"""What a parse worker derives from an article (``derived.derive``): before vs after, same output.

The "before" modules are ``aggregator/search.py`` and ``aggregator/cluster.py`` as committed at
``--ref`` (``git show``, imported from temporary files under other names); the "after" ones are
the working tree's. Every result is checked to be identical before any time is reported:

* ``index_text``: the FTS index text (byte for byte: a stored index must not change) of the
  texts of ``benchmarks.text.TextPool`` in all seven languages (titles, summaries, bodies), of
  :func:`tricky_texts` (mixed scripts, traditional Chinese, full-width digits, emoji, empty,
  whitespace only …), each with its language, no language and "zh";
* ``fingerprint``: the near-duplicate fingerprint of every body and of titles + summaries.

With ``--corpus PATH`` (a ``benchmarks.corpus`` pickle, e.g. the 200-source one) the articles
are the corpus's phase 1, parsed as the pipeline parses them, and ``derive`` itself is timed,
before (the committed index_text and fingerprint) and after; without it, articles are made from
the TextPool texts. Each figure is the best of ``--repeat`` runs, before and after timed
alternately: the machine is shared, compare the ratio of one run.

    python -m benchmarks.derive_bench --texts 300
    python -m benchmarks.derive_bench --corpus benchmarks/out/corpus-v4-s200-h10-seed7.pickle

``tests/test_derive_bench.py`` runs :func:`check` on a few texts of each language.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType

from aggregator import cluster, derived, search

from .text import LANGUAGES, TextPool, body_size

ROOT = Path(__file__).resolve().parent.parent


def load_committed(module: str, ref: str, directory: str) -> ModuleType:
    """``aggregator/<module>.py`` at ``ref``, imported as ``<module>_before``."""
    source = subprocess.run(["git", "show", f"{ref}:aggregator/{module}.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    source = source.replace("from .", "from aggregator.")  # its relative imports: the package's
    path = Path(directory) / f"{module}_before.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"{module}_before", path)
    assert spec and spec.loader
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded  # dataclasses look their module up while the class is built
    spec.loader.exec_module(loaded)
    return loaded


def tricky_texts() -> list[str]:
    """Inputs at the edges of index_text's and fingerprint's rules."""
    base = [
        "", " ", "   \n\t ", "\u3000", "patent", "Unitary Patent: fees €1,330 / $1 330 (2025)",
        "知", "知识", "知识产权局", " 知识 产权 ", "專利審查高速公路（PPH）", "國家知識產權局發佈２０２５年報告",
        "PCT出願の特許", "特許庁は、本日。", "ｶﾀｶﾅとﾊﾝｶｸ", "특허청은 2025년 3월", "한국 특허청 KIPO",
        "Änderung der Gebühren: 1.330 € ab 1. Juli", "Propriété intellectuelle — décision n° 12 345",
        "emoji 😀知识😀 🇪🇺", "𠀀𠀁 𪚥 rare Han", "々〆〇 ー ・ 〜", "full-width ＰＣＴ ２０２５ ＡＢＣ",
        "mixed 知识 and 特許 and 특허 and Ünïcödé", "a知b识c", "知\n识\r\n产\t权", "x" * 300 + "知识",
        "²³¹ ½ ① ª º µ ß ÿ", "fee_x under_score 1,234,567.89 1'000 1 000 1\u00a0000 1\u202f000",
    ]
    rng = random.Random(5)
    alphabet = "a Z1 ,.'\n知識专利特許출원ｶﾀ々〇ー２０😀𠀀é€ß$¥"
    base += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 400))) for _ in range(300)]
    return base


def pool_texts(count: int, seed: int) -> list[tuple[str, str]]:
    """(text, language): ``count`` titles, summaries and bodies per language."""
    pool, rng = TextPool(seed), random.Random(seed)
    out = []
    for language in LANGUAGES:
        for _ in range(count):
            out.append((pool.title(rng, language), language))
            out.append((pool.summary(rng, language), language))
            sep = "" if language in ("zh", "ja") else " "
            out.append(("\n".join(sep.join(p.split("\n")) for p in pool.paragraphs(rng, language, body_size(rng))),
                        language))
    return out


def index_cases(texts: Iterable[tuple[str, str]]) -> list[tuple[str, str | None]]:
    cases: list[tuple[str, str | None]] = []
    for text, language in texts:
        cases += [(text, language), (text, None)] + ([(text, "zh")] if language != "zh" else [])
    return cases + [(text, language) for text in tricky_texts() for language in (None, "zh", "ja", "ko", "en")]


def fields(fp) -> tuple | None:
    return None if fp is None else (fp.hashes, fp.size, fp.length)


def _outcome(func: Callable, *args) -> object:
    try:
        return func(*args)
    except Exception as exc:  # the same input must fail the same way (OpenCC rejects lone surrogates)
        return type(exc)


def check(cases: list[tuple[str, str | None]], fingerprint_texts: list[str], before_search: ModuleType,
          before_cluster: ModuleType) -> list[str]:
    """Descriptions of the inputs whose index text or fingerprint differ (empty: identical)."""
    problems = []
    for text, language in cases:
        old = _outcome(before_search.index_text, text, language)
        if _outcome(search.index_text, text, language) != old:
            problems.append(f"index_text({text[:40]!r}, {language!r})")
    for text in fingerprint_texts:
        if fields(cluster.fingerprint(text)) != fields(before_cluster.fingerprint(text)):
            problems.append(f"fingerprint({text[:40]!r})")
    return problems


def _parsed_articles(corpus_path: str) -> list:
    from .corpus import load
    from .ingest import parse_all

    parsed, _ = parse_all(load(Path(corpus_path)), ("feed", "page"))
    return [fetched.article for _, articles, _ in parsed for fetched in articles]


def _pool_articles(texts: list[tuple[str, str]]) -> list:
    from aggregator.types import Article

    out = []
    for i in range(0, len(texts) - 2, 3):
        (title, language), (summary, _), (body, _) = texts[i : i + 3]
        out.append(Article(id=f"a{i}", source_id="bench", office="Office", url=f"https://example.org/news/{i}",
                           title=title, summary=summary, body=body, topics=("News",), source_org="Office",
                           language=language))
    return out


def _clear(module: ModuleType) -> None:
    for name in ("_HASHES", "_WORDS"):
        if hasattr(module, name):
            getattr(module, name).clear()
    for table in getattr(module, "_LANES", ()):
        table.clear()


def best_seconds(work: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(repeat):
        for name, func in work.items():
            started = time.perf_counter()
            func()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=200, help="TextPool texts of each kind per language")
    parser.add_argument("--corpus", help="a benchmarks.corpus pickle: time derive on its parsed articles")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--ref", default="HEAD", help="git ref of the 'before' modules (default HEAD)")
    args = parser.parse_args()

    texts = pool_texts(args.texts, args.seed)
    articles = _parsed_articles(args.corpus) if args.corpus else _pool_articles(texts)
    cases = index_cases(texts) + [(value, article.language) for article in articles
                                  for value in (article.title, article.summary, article.body) if value]
    fp_texts = [derived.fingerprint_text(a) for a in articles] + [t for t, _ in texts] + tricky_texts()

    with tempfile.TemporaryDirectory() as tmp:
        before_search = load_committed("search", args.ref, tmp)
        before_cluster = load_committed("cluster", args.ref, tmp)
    problems = check(cases, fp_texts, before_search, before_cluster)
    if problems:
        sys.exit(f"{len(problems)} results differ from {args.ref}, e.g. " + "; ".join(problems[:5]))
    print(f"identical to {args.ref}: {len(cases):,} index texts, {len(fp_texts):,} fingerprints")

    def derive_with(index_text: Callable, fingerprint: Callable) -> Callable[[], None]:
        """derive() itself, its index_text and fingerprint swapped for the given ones."""
        def run() -> None:
            kept = derived.index_text, derived.fingerprint
            derived.index_text, derived.fingerprint = index_text, fingerprint
            try:
                for a in articles:
                    derived.derive(a)
            finally:
                derived.index_text, derived.fingerprint = kept
        return run

    index_inputs = [(v, a.language) for a in articles for v in (a.title, a.summary, a.body) if isinstance(v, str)]
    work = {}
    for side, s, c in (("before", before_search, before_cluster), ("after", search, cluster)):
        work[f"derive {side}"] = derive_with(s.index_text, c.fingerprint)
        work[f"index_text {side}"] = lambda s=s: [s.index_text(v, lang) for v, lang in index_inputs]
        work[f"fingerprint {side}"] = lambda c=c: [c.fingerprint(derived.fingerprint_text(a)) for a in articles]
    for module in (before_cluster, cluster):
        _clear(module)
    best = best_seconds(work, args.repeat)
    print(f"{len(articles):,} articles ({'corpus' if args.corpus else 'TextPool'}), best of {args.repeat}:")
    print(f"{'':12} {'before':>10} {'after':>10} {'speed-up':>9}")
    for name in ("derive", "index_text", "fingerprint"):
        old, new = best[f"{name} before"], best[f"{name} after"]
        print(f"{name:12} {old:9.3f}s {new:9.3f}s {old / new:8.2f}x   "
              f"({len(articles) / old:,.0f} → {len(articles) / new:,.0f} articles/s)")


if __name__ == "__main__":
    main()
