"""Near-duplicate clustering: the labelled pairs, the shingling rules, the sketch and the cluster-id rule."""

from __future__ import annotations

import importlib.util
import json
import pickle
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from aggregator import cluster
from aggregator.cluster import (
    KEY_COUNT,
    MAX_LENGTH_RATIO,
    SKETCH_SIZE,
    THRESHOLD,
    ClusterAssignment,
    Clusterer,
    Fingerprint,
    candidate_keys,
    decide,
    fingerprint,
    is_duplicate,
    length_ratio,
    overlap,
    score,
    score_stored,
    shingles,
    similarity,
)

DEDUP = Path(__file__).parent / "fixtures" / "dedup"
PAIRS = [json.loads(line) for line in (DEDUP / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]
BY_ID = {pair["id"]: pair for pair in PAIRS}


def words(text: str) -> float:
    """Word equivalents, as MIN_WORDS counts them (a CJK character is half a word)."""
    tokens, cjk = cluster._tokens(text)
    return len(tokens) - cjk / 2


def fingerprints(pair: dict) -> tuple[Fingerprint, Fingerprint]:
    a, b = fingerprint(pair["a"]), fingerprint(pair["b"])
    assert a is not None and b is not None, pair["id"]
    return a, b


# --- the labelled set ------------------------------------------------------------------------


def test_labelled_set_is_committed_from_its_script():
    spec = importlib.util.spec_from_file_location("make_pairs", DEDUP / "make_pairs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == (DEDUP / "pairs.jsonl").read_text(encoding="utf-8"), (
        "pairs.jsonl is stale: run .venv/bin/python tests/fixtures/dedup/make_pairs.py"
    )


def test_labelled_set_composition():
    kinds = Counter((pair["label"], pair["kind"]) for pair in PAIRS)
    assert len(PAIRS) >= 60
    assert sum(n for (label, _), n in kinds.items() if label == "duplicate") >= 20
    assert kinds["distinct", "translation"] >= 15
    assert kinds["distinct", "template-notice"] >= 15
    assert kinds["distinct", "same-topic"] >= 10
    cjk_copies = [p for p in PAIRS if p["label"] == "duplicate" and p["lang"] in {"zh", "ja", "ko"}]
    assert len(cjk_copies) >= 6
    for pair in PAIRS:
        assert set(pair) == {"id", "label", "kind", "lang", "a", "b"}
        assert pair["label"] in {"duplicate", "distinct"}
        for side in ("a", "b"):
            assert 80 <= words(pair[side]) <= 600, (pair["id"], side, words(pair[side]))


def confusion(threshold: float = THRESHOLD) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"tp": [], "fp": [], "fn": [], "tn": []}
    for pair in PAIRS:
        a, b = fingerprints(pair)
        predicted = score(a, b) >= threshold
        actual = pair["label"] == "duplicate"
        out[("t" if predicted == actual else "f") + ("p" if predicted else "n")].append(pair["id"])
    return out


def test_precision_and_recall_on_the_labelled_set():
    c = confusion()
    tp, fp, fn, tn = (len(c[k]) for k in ("tp", "fp", "fn", "tn"))
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    f1 = 2 * precision * recall / (precision + recall)
    report = (
        f"threshold {THRESHOLD}: tp={tp} fp={fp} fn={fn} tn={tn} "
        f"precision={precision:.3f} recall={recall:.3f} F1={f1:.3f}; "
        f"false positives {c['fp']}; false negatives {c['fn']}"
    )
    print(report)
    assert precision >= 0.99, report
    assert recall >= 0.95, report


def test_every_kind_of_distinct_pair_stays_apart():
    # Not only in aggregate: no translation, template notice, same-topic story or digest clusters.
    c = confusion()
    assert not c["fp"]


def test_the_number_weight_is_what_separates_template_notices():
    # Two closures of one filing office, a year apart, share 97 % of their words.
    a, b = fingerprints(BY_ID["tpl-epo-closure-2025-vs-2026"])
    assert overlap(a, b, number_weight=1) >= THRESHOLD
    assert overlap(a, b) < THRESHOLD
    # A republication's extra header does not count against it; Jaccard would.
    a, b = fingerprints(BY_ID["rep-wipo-pct"])
    assert overlap(a, b) == 1.0
    assert similarity(a, b) < 0.8


def test_candidate_keys_find_every_labelled_duplicate():
    missed = []
    for pair in PAIRS:
        if pair["label"] == "duplicate":
            a, b = fingerprints(pair)
            if not set(candidate_keys(a)) & set(candidate_keys(b)):
                missed.append(pair["id"])
    assert not missed


def test_candidate_keys_are_small_non_negative_ints():
    fp = fingerprints(PAIRS[0])[0]
    keys = candidate_keys(fp)
    assert len(keys) == KEY_COUNT
    assert all(isinstance(k, int) and 0 <= k < 2**32 for k in keys)
    assert keys == sorted(keys)


# --- shingling -------------------------------------------------------------------------------


def test_latin_shingles_are_word_trigrams_ignoring_case_punctuation_and_spacing():
    assert len(shingles("the patent office")) == 1
    assert len(shingles("the European patent office opens")) == 3
    assert shingles("The Patent, Office!") == shingles("the   patent\noffice")
    assert shingles("propriété industrielle française") == shingles("propriete industrielle francaise")
    assert shingles("Patentamt Straße München") == shingles("PATENTAMT STRASSE MÜNCHEN")


def test_cjk_shingles_are_character_trigrams_ignoring_spacing():
    assert len(shingles("国家知识产权局")) == 5  # 7 characters
    assert shingles("国家 知识产权局") == shingles("国家知识产权局")
    assert shingles("특허청은 오늘") == shingles("특허청은오늘")  # Korean spacing varies between copies
    assert shingles("特許庁は、本日。") == shingles("特許庁は本日")
    # Numbers and Latin words inside CJK text are tokens of their own.
    tokens, cjk = cluster._tokens("2025年3月起PCT申请")
    assert (len(tokens), cjk) == (8, 5)


def test_width_and_number_formats_are_normalized():
    assert shingles("２０２５年３月１日起施行") == shingles("2025年3月1日起施行")
    same = {frozenset(shingles(f"a fee of {amount} francs")) for amount in ("1,330", "1 330", "1.330", "1330")}
    assert len(same) == 1
    assert shingles("filed on 01 May") == shingles("filed on 1 May")


def test_numbers_are_kept_and_marked():
    assert shingles("a fee of 1,330 francs") != shingles("a fee of 1,340 francs")
    assert shingles("a fee of $1,330") != shingles("a fee of €1,330")
    marked = shingles("the fee of 1330 francs is due")  # 3 of the 5 shingles contain the number
    assert sum(h & 1 for h in marked) == 3
    assert not any(h & 1 for h in shingles("the fee is due now"))


def test_hashes_are_stable_across_runs():
    # Fingerprints are stored: the hash must not depend on PYTHONHASHSEED or the process.
    assert shingles("The Patent Office") == {3629971538487639478}
    assert shingles("特許庁") == {15543901867866353798}


# --- fingerprints ----------------------------------------------------------------------------


def test_fingerprint_round_trips_through_bytes():
    for pair in PAIRS[:10]:
        fp = fingerprint(pair["b"])
        assert fp is not None
        data = fp.to_bytes()
        assert len(data) <= 11 + 4 * SKETCH_SIZE
        assert Fingerprint.from_bytes(data) == fp


def test_long_text_keeps_a_fixed_size_sketch():
    text = " ".join(f"word{i}" for i in range(3000))
    fp = fingerprint(text)
    assert fp is not None and not fp.complete
    assert len(fp.hashes) == SKETCH_SIZE and fp.size == 2998 and fp.length == 3000
    assert list(fp.hashes) == sorted(fp.hashes)
    assert len(fp.to_bytes()) == 11 + 4 * SKETCH_SIZE
    assert similarity(fp, fp) == overlap(fp, fp) == 1.0


def test_from_bytes_rejects_other_versions_and_truncation():
    data = fingerprint(PAIRS[0]["a"]).to_bytes()
    with pytest.raises(ValueError, match="version"):
        Fingerprint.from_bytes(b"\x63" + data[1:])
    with pytest.raises(ValueError, match="bytes"):
        Fingerprint.from_bytes(data[:-4])
    with pytest.raises(ValueError, match="short"):
        Fingerprint.from_bytes(b"\x01\x00")


def test_short_texts_get_no_fingerprint():
    assert fingerprint("") is None
    assert fingerprint(" ".join(["word"] * 29)) is None
    assert fingerprint(" ".join(f"w{i}" for i in range(30))) is not None
    han = "国家知识产权局发布公告" * 6
    assert fingerprint(han[:59]) is None
    assert fingerprint(han[:60]) is not None


def test_length_guard():
    notice = BY_ID["digest-quotes-notice-in-full"]
    a, b = fingerprints(notice)
    assert overlap(a, b) == 1.0  # the digest contains the notice word for word...
    assert length_ratio(a, b) > MAX_LENGTH_RATIO  # ...but is nearly twice as long
    assert score(a, b) == 0.0 and not is_duplicate(a, b)


# --- the fast paths compute the definitions --------------------------------------------------
# fingerprint() and overlap() are written for speed (big-integer lanes, C set operations);
# these reference versions are the definitions in plain loops, and must give the same numbers.


def reference_fingerprint(text: str) -> tuple[tuple[int, ...], int, int]:
    values = {(h >> 32) & ~1 & 0xFFFFFFFF | h & 1 for h in shingles(text)}
    return tuple(sorted(values)[:SKETCH_SIZE]), len(values), len(cluster._tokens(text)[0])


def reference_overlap(a: Fingerprint, b: Fingerprint, number_weight: int = cluster.NUMBER_WEIGHT) -> float:
    small, large = (a, b) if a.size <= b.size else (b, a)
    cut = min([fp.hashes[-1] for fp in (a, b) if not fp.complete], default=2**64)
    total = found = 0
    for h in small.hashes:
        if h > cut:
            break
        weight = number_weight if h & 1 else 1
        total += weight
        found += weight if h in large.hashes else 0
    return found / total if total else 0.0


def varied_texts() -> list[str]:
    rng = random.Random(7)
    texts = [pair[side] for pair in PAIRS[::4] for side in ("a", "b")]
    words = " ".join(PAIRS[0]["a"].split()[:120]).split()
    for _ in range(6):  # long texts (incomplete sketches, more than 2 * SKETCH_SIZE shingles), many numbers
        texts.append(" ".join(rng.choice(words) if rng.random() < 0.8 else str(rng.randint(0, 99999))
                              for _ in range(rng.randint(400, 1600))))
    texts.append("ｶﾀｶﾅ ２０２５年３月１日 ½ ① $1,330 €1 330 fee_x 特許庁は、本日。" * 12)
    return texts


def test_fingerprint_is_the_bottom_of_the_shingle_values():
    for text in varied_texts():
        fp = fingerprint(text)
        assert fp is not None
        assert (fp.hashes, fp.size, fp.length) == reference_fingerprint(text)


def test_fingerprint_does_not_depend_on_the_token_cache(monkeypatch):
    texts = varied_texts()
    expected = [fingerprint(text) for text in texts]
    monkeypatch.setattr(cluster, "_TOKEN_CACHE_SIZE", 10)  # emptied before every text
    assert [fingerprint(text) for text in texts] == expected


def test_overlap_and_score_are_the_definition():
    fps = [fp for fp in map(fingerprint, varied_texts()) if fp is not None]
    for a in fps:
        for b in fps[::3]:
            for weight in (0, 1, 4, 5):
                assert overlap(a, b, number_weight=weight) == reference_overlap(a, b, weight)
            expected = 0.0 if length_ratio(a, b) > MAX_LENGTH_RATIO else reference_overlap(a, b)
            assert score(a, b) == expected
            # A decoded fingerprint (its number bits read from the bytes) scores the same.
            assert score(a, Fingerprint.from_bytes(b.to_bytes())) == expected


def test_scores_of_stored_fingerprints_are_score():
    fps = [fp for fp in map(fingerprint, varied_texts()) if fp is not None]
    pairs = [fingerprints(pair) for pair in PAIRS]
    fps += [fp for pair in pairs for fp in pair]
    for a in fps[::2]:
        others = fps[::-1] + [a]
        assert score_stored(a, [b.to_bytes() for b in others]) == [score(a, b) for b in others]
    a = fps[0]
    assert score_stored(a, []) == []
    assert score_stored(a, [Fingerprint((), 0, a.length).to_bytes()]) == [0.0]  # no values: no overlap
    with pytest.raises(ValueError, match="version"):
        score_stored(a, [b"\x07" + a.to_bytes()[1:]])
    with pytest.raises(ValueError, match="too short"):
        score_stored(a, [b"\x01"])


def test_labelled_scores_are_the_definition():
    for pair in PAIRS:
        a, b = fingerprints(pair)
        assert overlap(a, b) == reference_overlap(a, b)
        assert overlap(b, a) == reference_overlap(b, a)


def test_fingerprints_pickle_as_their_stored_bytes_without_their_lookup_caches():
    a, b = fingerprints(BY_ID["rep-wipo-pct"])
    plain = len(pickle.dumps(a))
    assert score(a, b) == 1.0  # builds a's lookup sets
    others = [other for pair in PAIRS for other in fingerprints(pair)]
    expected = score_stored(a, [o.to_bytes() for o in others])  # and its lookup arrays
    data = pickle.dumps(a)
    assert len(data) == plain < len(a.to_bytes()) + 100  # the bytes, not a tuple of ints
    copy = pickle.loads(data)
    assert copy == a and hash(copy) == hash(a) and copy.to_bytes() == a.to_bytes()
    assert not {"_set_cache", "_lookup_cache"} & copy.__dict__.keys()
    assert score(copy, b) == 1.0
    assert score_stored(copy, [o.to_bytes() for o in others]) == expected == [score(a, o) for o in others]


# --- the cluster-id rule ---------------------------------------------------------------------


def test_three_copies_share_the_first_id_and_a_translation_keeps_its_own():
    original = BY_ID["rep-wipo-pct"]["a"]
    republished = BY_ID["rep-wipo-pct"]["b"]
    translated = BY_ID["tr-en-zh-wipo-pct"]["b"]
    mirrored = " ".join(original.replace("—", "-").split())
    clusterer = Clusterer()
    first = clusterer.add("wipo:pr-2025-921", original, "2025-03-04")
    assert first == ClusterAssignment("wipo:pr-2025-921")
    second = clusterer.add("ipasia:4411", republished, "2025-03-05")
    assert second.cluster_id == "wipo:pr-2025-921" and second.matched_id == "wipo:pr-2025-921"
    assert second.similarity is not None and second.similarity >= THRESHOLD
    third = clusterer.add("mirror:77", mirrored, "2025-03-06")
    assert third.cluster_id == "wipo:pr-2025-921"
    assert third.matched_id in {"wipo:pr-2025-921", "ipasia:4411"}
    assert clusterer.add("cnipa:zh-1", translated, "2025-03-05") == ClusterAssignment("cnipa:zh-1")
    assert clusterer.clusters() == {
        "wipo:pr-2025-921": ["wipo:pr-2025-921", "ipasia:4411", "mirror:77"],
        "cnipa:zh-1": ["cnipa:zh-1"],
    }


def test_template_notices_and_short_texts_start_their_own_clusters():
    pair = BY_ID["tpl-epo-closure-2025-vs-2026"]
    clusterer = Clusterer()
    assert clusterer.add("epo:closure-2025", pair["a"]).cluster_id == "epo:closure-2025"
    assert clusterer.add("epo:closure-2026", pair["b"]).cluster_id == "epo:closure-2026"
    assert clusterer.add("short:1", "Office closed today.") == ClusterAssignment("short:1")
    assert clusterer.add("short:2", "Office closed today.") == ClusterAssignment("short:2")
    with pytest.raises(ValueError, match="already"):
        clusterer.add("short:1", "again")


def test_a_copy_of_a_copy_joins_the_first_members_cluster():
    base = BY_ID["edit-euipo-sme-added-sentence"]
    clusterer = Clusterer()
    clusterer.add("euipo:1", base["a"])
    clusterer.add("blog:2", base["b"])
    later = clusterer.add("blog:3", base["b"] + "\n\nShare this post.")
    assert later.matched_id == "blog:2"  # the most similar earlier article...
    assert later.cluster_id == "euipo:1"  # ...whose cluster is named after its first member


def test_clusterer_over_the_whole_labelled_set():
    # All texts through one Clusterer (key lookup included): a labelled duplicate pair ends in
    # one cluster, a distinct pair in two. A text used in several pairs is added once.
    article_of: dict[str, str] = {}
    clusterer = Clusterer()
    for pair in PAIRS:
        for side in ("a", "b"):
            text = pair[side]
            if text not in article_of:
                article_of[text] = f"{pair['id']}:{side}"
                clusterer.add(article_of[text], text)
    wrong = [
        pair["id"]
        for pair in PAIRS
        if (clusterer.cluster_of(article_of[pair["a"]]) == clusterer.cluster_of(article_of[pair["b"]]))
        != (pair["label"] == "duplicate")
    ]
    assert not wrong


def test_decide_is_pure_and_prefers_the_best_then_the_first_candidate():
    pair = BY_ID["rep-kipo-euipo"]
    a, b = fingerprints(pair)
    other = fingerprint(BY_ID["topic-scam-ukipo-vs-euipo"]["a"])
    assert other is not None
    assert decide("new", a, []) == ClusterAssignment("new")
    assert decide("new", None, [("x", "x", a)]) == ClusterAssignment("new")
    assert decide("new", a, [("u", "u", other)]) == ClusterAssignment("new")
    found = decide("new", a, [("u", "u", other), ("k1", "c1", b), ("k2", "c2", b)])
    assert found == ClusterAssignment("c1", "k1", 1.0)


# --- speed -----------------------------------------------------------------------------------


def _best_of(func, text: str, repeat: int = 5, number: int = 20) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            func(text)
        best = min(best, time.perf_counter() - start)
    return best / number


def _python_char_loop(text: str) -> int:
    n = 0
    for ch in text:
        n += ch.isalnum()
    return n


@pytest.mark.parametrize("pair_id", ["rep-wipo-pct", "mirror-zh-wipo-pct", "mirror-ja-jpo-dx", "rep-ko-kipo-euipo"])
def test_fingerprint_costs_a_few_python_passes_over_the_text(pair_id):
    # A ratio, not a wall-clock limit: fingerprinting must stay linear and cheap compared
    # with one interpreted pass over the characters. docs/dedup.md reports absolute times.
    text = "\n\n".join([BY_ID[pair_id]["a"]] * 3)
    fingerprint(text)  # warm the token cache
    ratio = _best_of(fingerprint, text) / _best_of(_python_char_loop, text)
    assert ratio < 40, ratio
