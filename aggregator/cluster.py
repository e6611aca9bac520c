"""Cluster near-duplicate articles: republications, mirrors and lightly edited copies.

Nothing is deleted. Each article gets a ``cluster_id`` (the id of the cluster's first
member, so an article that matches nothing keeps its own id) and the score that put
it there. The decision is pure: it reads fingerprints and returns a
:class:`ClusterAssignment`. The store keeps the fingerprints and looks up candidates.
:class:`Clusterer` does the same job in memory, for tests and benchmarks.

How a text becomes a fingerprint::

    text -> casefold, thousands separators removed ("1,330" / "1 330" / "1.330" -> 1330)
         -> tokens: runs of letters/digits, each Han/kana/Hangul character, currency signs
            (NFKC, accents and leading zeros dropped per token; punctuation and spacing ignored)
         -> shingles: every 3 consecutive tokens (3 words, or 3 CJK characters), hashed to
            64 bits (blake2b per token, combined by a polynomial mod 2**64). Bit 0 marks a
            shingle that contains a number.
         -> bottom-k sketch: the SKETCH_SIZE smallest shingle values, kept as 32 bits
            (still with the number bit). A text with at most SKETCH_SIZE distinct
            shingles is stored whole, so comparisons between notices are exact.

How two fingerprints compare (:func:`score`)::

    length guard   the longer text has at most MAX_LENGTH_RATIO times the tokens of the shorter
    overlap        the share of the shorter text's shingles that also occur in the longer one,
                   each shingle that contains a number counting NUMBER_WEIGHT times
    duplicate      overlap >= THRESHOLD

Both are computed with few interpreted steps (shingles summed as numpy uint64 arrays,
comparisons as set operations): docs/dedup.md ("How it is made fast") explains how, and
tests/test_cluster.py checks them against the definitions written as plain loops.

Why these choices. The labelled set in ``tests/fixtures/dedup/pairs.jsonl`` (85 pairs) and
``docs/dedup.md`` give the figures.

* **Overlap, not Jaccard.** A republication adds its own header, intro line and footer.
  For a short release that extra text lowers Jaccard to 0.76 (``rep-wipo-pct``). Two
  maintenance notices that differ only in their dates reach 0.93. No Jaccard threshold
  separates the two. The share of the shorter text found in the longer one ignores
  added text. It is 1.0 for a republication that keeps the whole original, and 0.95 or
  more for one that drops the dateline.
* **Numbers weigh more.** Same-template notices (fee changes, closures, revocations,
  maintenance windows) differ mostly in dates, amounts and register numbers. Those
  are a small share of the text but are the whole point of the notice. Counting each
  number-bearing shingle NUMBER_WEIGHT = 4 times pulls every such pair down to 0.889 or less,
  while copies whose differences are framing, an added sentence or a corrected figure
  stay at 0.936 or above. Unweighted, the gap is 0.005. Weights 4 and 5 give the widest gap.
  The weight is applied when comparing, so changing it needs no new fingerprints.
* **THRESHOLD = 0.91** sits in that gap: the highest distinct pair is two maintenance
  windows of one JPO system (0.889), and the lowest duplicate is a copy with two corrected
  counts (0.936). These figures are exact because every text in the set fits in the
  sketch. Above SKETCH_SIZE shingles (about 500 words), the estimate has a standard
  deviation of about 0.01.
* **Length guard 1.5.** In the set, framing adds at most 31 % to a copy. A digest that
  quotes a notice in full among four other items is 1.95 times as long and contains the
  notice entirely, yet it is a different article. If it were clustered, digests would also chain
  unrelated notices into one cluster. A copy with more than 50 % extra text is missed (recall cost).
* **Short texts never cluster.** Fewer than MIN_WORDS word tokens (one CJK character counts as
  half a word) give no fingerprint. Boilerplate-only items ("Office closed today") would match each other.
* **Translations do not cluster.** Shingles are language-specific, so before the length guard
  the highest translation pair scores 0.23 (an English site frame around both versions).
  Linking translations is a different feature (docs/dedup.md).

Candidate lookup: :func:`candidate_keys` returns the KEY_COUNT smallest sketch values.
Two texts whose shingle sets have Jaccard J share at least one key unless none of the
KEY_COUNT smallest values of the union is shared, which has probability at most
(1 - J) ** KEY_COUNT. At the decision boundary (overlap 0.91, length ratio 1.5), J is at
least about 0.5, so the miss probability is at most 0.5 ** 16 ≈ 1.5e-5. For a typical
copy (J ≈ 0.8) it is below 1e-11.
"""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress
from types import ModuleType
from typing import Any

__all__ = [
    "FINGERPRINT_VERSION",
    "KEY_COUNT",
    "MAX_LENGTH_RATIO",
    "MIN_WORDS",
    "NUMBER_WEIGHT",
    "SKETCH_SIZE",
    "THRESHOLD",
    "ClusterAssignment",
    "Clusterer",
    "Fingerprint",
    "candidate_keys",
    "decide",
    "fingerprint",
    "is_duplicate",
    "length_ratio",
    "overlap",
    "score",
    "score_stored",
    "shingles",
    "similarity",
]

# Decision parameters (see the module docstring and docs/dedup.md).
THRESHOLD = 0.91  # weighted overlap at or above which two texts are copies of one another
NUMBER_WEIGHT = 4  # a shingle containing a number counts this many times in the overlap
MAX_LENGTH_RATIO = 1.5  # longer/shorter token count beyond which a pair is never a copy
MIN_WORDS = 30  # shorter texts get no fingerprint; a CJK character counts as half a word

# Fingerprint parameters: changing any of them changes stored fingerprints (bump the version).
FINGERPRINT_VERSION = 1
SHINGLE = 3  # tokens per shingle: 3 words or 3 CJK characters
SKETCH_SIZE = 512  # bottom-k size; texts with fewer distinct shingles are stored whole
KEY_COUNT = 16  # smallest sketch values used as lookup keys

_CJK = (
    "\u3005-\u3007\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
    "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af\U00020000-\U0003134f"
)
_CURRENCY = "$\u00a2-\u00a5\u20a0-\u20bf\uffe0\uffe1\uffe5\uffe6"
# A token: a run of letters/digits, or a currency sign (amounts in $ and € must differ).
_WORD = re.compile(f"[^\\W_]+|[{_CURRENCY}]")
_HAS_CJK = re.compile(f"[{_CJK}]")
# In text with CJK: a run of CJK characters (one token each), or a word without them.
_CJK_OR_WORD = re.compile(f"([{_CJK}]+)|([^\\W_{_CJK}]+|[{_CURRENCY}])")
_HALFWIDTH_KANA = re.compile("[\uff61-\uff9f]")  # composes across characters: NFKC the whole text
# A thousands separator: one of , . ' or a (narrow) space between a digit and exactly three digits.
_THOUSANDS = re.compile(r"(\d)[,.' \u00a0\u202f\u2009](?=\d{3}(?!\d))")

_MASK = (1 << 64) - 1
_EVEN = _MASK ^ 1
_LAST32 = _MASK >> 32
_EVEN32 = _LAST32 ^ 1  # the top half of a shingle hash, with bit 0 left for the number bit
_A = 0x9E3779B97F4A7C15  # odd multipliers of the shingle polynomial
_A2 = _A * _A & _MASK
_NUMBER_BIT = 1
_HEADER = struct.Struct(">BHII")  # version, sketch length, token count, distinct shingles


_TOKEN_CACHE_SIZE = 1 << 17  # distinct tokens remembered; the tables are emptied when full


def _token(raw: str) -> int:
    """Stable 64-bit hash of one normalized token; bit 0 says whether it holds a digit."""
    tok = raw if raw.isascii() else unicodedata.normalize("NFKC", raw)
    if tok.isdigit():
        tok = tok.lstrip("0") or "0"
    elif not tok.isascii():
        tok = "".join(c for c in unicodedata.normalize("NFKD", tok) if not unicodedata.combining(c))
        tok = unicodedata.normalize("NFC", tok)
    h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "big")
    return h | _NUMBER_BIT if any(c.isdigit() for c in tok) else h & _EVEN


class _TokenHashes(dict[str, int]):
    """Raw token -> :func:`_token`, computed on the first lookup."""

    def __missing__(self, raw: str) -> int:
        h = self[raw] = _token(raw)
        return h


class _TokenWords(dict[str, bytes]):
    """Raw token -> :func:`_token` as 8 little-endian bytes, to be joined and read by numpy (see _sketch)."""

    def __missing__(self, raw: str) -> bytes:
        word = self[raw] = _HASHES[raw].to_bytes(8, "little")
        return word


# Filled on demand, so a lookup never fails, even while another thread empties them.
_HASHES = _TokenHashes()
_WORDS = _TokenWords()
_TABLES = (_HASHES, _WORDS)
_ODD = (1).__and__  # h -> h & 1, the number bit, as a C function for map()
_BIT0 = bytes(i & 1 for i in range(256))  # a translate() table: byte -> its bit 0


@lru_cache(maxsize=1)
def _numpy() -> ModuleType:
    """numpy, imported on the first fingerprint (the CLI's other commands do without it)."""
    import numpy

    return numpy


# Tokenising Latin-1 text (most of the archive): the same tokens as _WORD.findall, by C string
# methods. In Latin-1 a token is a run of letters/digits (currency signs aside), so turning every
# other character into a space leaves the tokens separated by spaces.
_LATIN1_TOKENS = bytes(i if chr(i).isalnum() else 32 for i in range(256))
_LATIN1_CURRENCY = tuple(chr(i).encode("latin-1") for i in range(256) if re.fullmatch(f"[{_CURRENCY}]", chr(i)))
# _THOUSANDS can only match where a digit, a separator and a digit follow each other: looked for
# on the bytes with digits mapped to "0" and separators to "," (Latin-1 has no other \d).
_DIGIT_SEP = bytes(48 if chr(i).isdecimal() else 44 if chr(i) in ",.' \u00a0" else 120 for i in range(256))


def _latin1_tokens(text: str) -> list[str] | None:
    """_WORD's tokens of case-folded Latin-1 text (thousands separators removed); None for other text."""
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        return None
    if b"0,0" in data.translate(_DIGIT_SEP):
        text = _THOUSANDS.sub(r"\1", text)
        data = text.encode("latin-1")
    if any(sign in data for sign in _LATIN1_CURRENCY):
        return _WORD.findall(text)
    return data.translate(_LATIN1_TOKENS).decode("latin-1").split()


def _raw_tokens(text: str) -> tuple[list[str], int]:
    """Tokens as strings, in text order, and how many of them are CJK characters."""
    if not text.isascii():
        if _HALFWIDTH_KANA.search(text):
            text = unicodedata.normalize("NFKC", text)
        text = text.casefold()
        if _HAS_CJK.search(text):
            out: list[str] = []
            add_word, extend = out.append, out.extend
            cjk = 0
            for han, word in _CJK_OR_WORD.findall(_THOUSANDS.sub(r"\1", text)):  # "2025年3月" -> 2025, 年, 3, 月
                if han:
                    extend(han)
                    cjk += len(han)
                else:
                    add_word(word)
            return out, cjk
    else:
        text = text.casefold()
    tokens = _latin1_tokens(text)
    return (_WORD.findall(_THOUSANDS.sub(r"\1", text)) if tokens is None else tokens), 0


def _tokens(text: str) -> tuple[list[int], int]:
    """Token hashes in text order, and how many of them are CJK characters."""
    raw, cjk = _raw_tokens(text)
    return list(map(_HASHES.__getitem__, raw)), cjk


def _sketch(raw: list[str], k: int) -> tuple[tuple[int, ...], int]:
    """The k smallest distinct 32-bit sketch values of the shingles of these tokens, ascending,
    and how many distinct values there are.

    The same numbers as :func:`_shingles` followed by ``(h >> 32) & _EVEN32 | h & 1``, sorted,
    but as a constant number of numpy operations per text instead of a dozen interpreted steps
    per shingle: the token hashes are joined into one array of 64-bit words, where the wrapping
    arithmetic of ``uint64`` is the polynomial mod 2**64, and the distinct values are read off
    the sorted array.
    """
    if len(raw) < SHINGLE:
        values = sorted({(s >> 32) & _EVEN32 | s & _NUMBER_BIT for s in _shingles(list(map(_HASHES.__getitem__, raw)))})
        return tuple(values[:k]), len(values)
    np = _numpy()
    t = np.frombuffer(b"".join(map(_WORDS.__getitem__, raw)), dtype="<u8")
    a, b, c = t[:-2], t[1:-1], t[2:]
    sums = a * np.uint64(_A2) + b * np.uint64(_A) + c  # mod 2**64
    values = ((sums >> np.uint64(32)) & np.uint64(_EVEN32) | (a | b | c) & np.uint64(_NUMBER_BIT)).astype(np.uint32)
    values.sort()
    distinct = np.empty(len(values), dtype=bool)
    distinct[0] = True
    np.not_equal(values[1:], values[:-1], out=distinct[1:])
    values = values[distinct]
    return tuple(values[:k].tolist()), len(values)


def _shingles(t: list[int]) -> set[int]:
    if len(t) < SHINGLE:  # a text of one or two tokens is its own single shingle
        return {sum(t) & _EVEN | any(x & _NUMBER_BIT for x in t)} if t else set()
    out = {(a * _A2 + b * _A + c) & _EVEN for a, b, c in zip(t, t[1:], t[2:], strict=False)}
    last = len(t) - SHINGLE
    numbered = {s for i, x in enumerate(t) if x & _NUMBER_BIT for s in range(max(0, i - 2), min(i, last) + 1)}
    for s in numbered:
        h = (t[s] * _A2 + t[s + 1] * _A + t[s + 2]) & _EVEN
        out.discard(h)
        out.add(h | _NUMBER_BIT)
    return out


def shingles(text: str) -> set[int]:
    """The text's shingles as 64-bit hashes (bit 0 set when the shingle contains a number)."""
    return _shingles(_tokens(text)[0])


@dataclass(frozen=True)
class Fingerprint:
    """A bottom-k sketch of a text's shingles.

    ``hashes`` are the SKETCH_SIZE smallest 32-bit shingle values, ascending (bit 0:
    the shingle contains a number). ``size`` is the number of distinct shingles (so
    ``len(hashes) == size`` means the sketch holds the whole set), and ``length``
    is the token count.
    """

    hashes: tuple[int, ...]
    size: int
    length: int

    @property
    def complete(self) -> bool:
        return len(self.hashes) == self.size

    def __reduce__(self) -> tuple[Callable[[bytes], Fingerprint], tuple[bytes]]:
        # As its stored bytes, not the caches below nor a tuple of ints: a parse worker sends
        # every new article's fingerprint to the archive's writer, which stores these bytes and
        # builds its lookup array from them (pickle's tuple of 512 ints cost ~20 µs more there).
        return Fingerprint.from_bytes, (self.to_bytes(),)

    # Caches, not fields (the dataclass stays frozen and compares by its fields): built on
    # first use by the comparisons, which need them as C-level sets and byte strings.

    def _set(self) -> frozenset[int]:
        """The values, to look other sketches' values up in."""
        values: frozenset[int] | None = self.__dict__.get("_set_cache")
        if values is None:
            values = self.__dict__["_set_cache"] = frozenset(self.hashes)
        return values

    def _numbered(self) -> frozenset[int]:
        """The values with the number bit."""
        values: frozenset[int] | None = self.__dict__.get("_numbered_cache")
        if values is None:
            values = self.__dict__["_numbered_cache"] = frozenset(compress(self.hashes, self._numbers()))
        return values

    def _numbers(self) -> bytes:
        """One byte per value, 1 where the value has the number bit: ``.count(1, 0, i)`` counts them."""
        numbers: bytes | None = self.__dict__.get("_numbers_cache")
        if numbers is None:
            n = len(self.hashes)
            numbers = self.__dict__["_numbers_cache"] = struct.pack(f">{n}I", *self.hashes)[3::4].translate(_BIT0)
        return numbers

    def to_bytes(self) -> bytes:
        """Big-endian: version, count, length, size, then the values; at most 2,059 bytes."""
        data: bytes | None = self.__dict__.get("_bytes_cache")
        if data is None:
            n = len(self.hashes)
            data = _HEADER.pack(FINGERPRINT_VERSION, n, self.length, self.size) + struct.pack(f">{n}I", *self.hashes)
            self.__dict__["_bytes_cache"] = data
        return data

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        if len(data) < _HEADER.size:
            raise ValueError(f"fingerprint of {len(data)} bytes is too short")
        version, n, length, size = _HEADER.unpack_from(data)
        if version != FINGERPRINT_VERSION:
            raise ValueError(f"fingerprint version {version}, expected {FINGERPRINT_VERSION}: recompute it")
        if len(data) != _HEADER.size + 4 * n:
            raise ValueError(f"fingerprint of {len(data)} bytes, expected {_HEADER.size + 4 * n}")
        fp = cls(struct.unpack_from(f">{n}I", data, _HEADER.size), size, length)
        fp.__dict__["_numbers_cache"] = data[_HEADER.size + 3 :: 4].translate(_BIT0)  # the values' last bytes
        fp.__dict__["_bytes_cache"] = bytes(data)
        return fp


def fingerprint(text: str) -> Fingerprint | None:
    """Sketch a text, or None when it is too short to judge (see MIN_WORDS)."""
    if len(_HASHES) > _TOKEN_CACHE_SIZE:
        for table in _TABLES:
            table.clear()
    tokens, cjk = _raw_tokens(text)
    if len(tokens) - cjk / 2 < MIN_WORDS:
        return None
    hashes, size = _sketch(tokens, SKETCH_SIZE)
    return Fingerprint(hashes, size, len(tokens))


def _cut(a: Fingerprint, b: Fingerprint) -> int:
    """Values up to here are known exactly for both texts (every value, if both are complete)."""
    cut = _MASK
    for fp in (a, b):
        if not fp.complete:
            cut = min(cut, fp.hashes[-1])
    return cut


def similarity(a: Fingerprint, b: Fingerprint) -> float:
    """Estimated Jaccard similarity of the two shingle sets (exact when both sketches are complete)."""
    cut = _cut(a, b)
    sa = set(a.hashes[: bisect_right(a.hashes, cut)])
    sb = set(b.hashes[: bisect_right(b.hashes, cut)])
    union = len(sa | sb)
    return len(sa & sb) / union if union else 0.0


def overlap(a: Fingerprint, b: Fingerprint, number_weight: int = NUMBER_WEIGHT) -> float:
    """Estimated share of the smaller text's shingles found in the other, numbers weighted.

    By definition a loop: for each value of the smaller sketch up to the cut, add its weight
    to the total, and to the found weight if the other sketch has it. Here the same sums are
    counts of C operations. The values found are the same whichever sketch is looked up in
    the other (both are cut at the same value), so ``b``'s are looked up in ``a``'s set,
    which is kept (compare a new text as ``a`` with many). The numbered values found are
    counted by their bit 0, or in ``a``'s numbered set when there are many (copies), and the
    numbered values of the smaller prefix in a byte string of bit 0s. The integers are the
    loop's, so the float is the same.
    """
    cut = _cut(a, b)
    bh = b.hashes
    b_end = bisect_right(bh, cut)
    found = a._set().intersection(bh if b_end == len(bh) else bh[:b_end])
    small, end = (a, bisect_right(a.hashes, cut)) if a.size <= b.size else (b, b_end)
    extra = number_weight - 1
    total = end + extra * small._numbers().count(1, 0, end)
    if not total:
        return 0.0
    numbered = sum(map(_ODD, found)) if len(found) < 64 else len(a._numbered().intersection(found))
    return (len(found) + extra * numbered) / total


def length_ratio(a: Fingerprint, b: Fingerprint) -> float:
    return _ratio(a.length, b.length)


def _ratio(x: int, y: int) -> float:
    return max(x, y) / max(1, min(x, y))


def score(a: Fingerprint, b: Fingerprint) -> float:
    """The score compared with THRESHOLD: the overlap, or 0.0 when the length guard fails.

    ``a``'s value set is built once and kept: score a new text as ``a`` against many others.
    """
    if length_ratio(a, b) > MAX_LENGTH_RATIO:
        return 0.0
    return overlap(a, b)


def score_stored(fp: Fingerprint, stored: Sequence[bytes]) -> list[float]:
    """``score(fp, Fingerprint.from_bytes(blob))`` for each stored fingerprint, all at once.

    A new article is scored against up to a few dozen candidates; one by one, each costs
    decoding 512 values into a tuple and hashing them into a set (~17 µs in Python, which
    was the writer's largest Python cost in a cold poll). Here the candidates' values stay the bytes they
    were stored as, and the loop of :func:`overlap` becomes a constant number of numpy
    operations over all of them: a table of ``fp``'s values by their top 16 bits rules out
    most values that ``fp`` lacks, a binary search in its sorted values settles the rest,
    and the per-candidate sums are counts by candidate. They are the loop's integers, so
    each float is :func:`score`'s exactly (a candidate the length guard rules out is 0.0,
    and is not decoded).
    """
    np = _numpy()
    scores = [0.0] * len(stored)
    kept: list[int] = []
    bodies: list[bytes] = []
    lengths: list[int] = []
    cuts: list[int] = []
    they_are_smaller: list[bool] = []
    own_cut = fp.hashes[-1] if not fp.complete else _LAST32  # every value is at most _LAST32
    for i, data in enumerate(stored):
        if len(data) < _HEADER.size:
            Fingerprint.from_bytes(data)  # raises, saying what is wrong with it
        version, n, length, size = _HEADER.unpack_from(data)
        if version != FINGERPRINT_VERSION or len(data) != _HEADER.size + 4 * n:
            Fingerprint.from_bytes(data)
        if not n or _ratio(fp.length, length) > MAX_LENGTH_RATIO:
            continue  # no values overlap nothing (0.0, as overlap() gives); the guard gives 0.0
        kept.append(i)
        bodies.append(data[_HEADER.size :])
        lengths.append(n)
        cuts.append(min(own_cut, int.from_bytes(data[-4:], "big")) if n < size else own_cut)
        they_are_smaller.append(fp.size > size)
    if not kept:
        return scores
    own, has_top, own_odd_before = _lookup(fp, np)
    count = len(kept)
    values = np.frombuffer(b"".join(bodies), dtype=">u4").astype(np.uint32)
    owner = np.repeat(np.arange(count), lengths)
    cut = np.array(cuts, dtype=np.uint32)
    maybe = np.flatnonzero(has_top[values >> 16])
    looked = values[maybe]
    at = np.searchsorted(own, looked)
    at[at == len(own)] = 0
    hits = maybe[(own[at] == looked) & (looked <= cut[owner[maybe]])]
    hit_owner = owner[hits]
    found_all = np.bincount(hit_owner, minlength=count).tolist()
    found_odd = np.bincount(hit_owner[(values[hits] & 1).astype(bool)], minlength=count).tolist()
    # The total is the smaller sketch's values up to the cut: fp's own, or the candidate's.
    own_end = np.searchsorted(own, cut, side="right")
    own_all, own_odd = own_end.tolist(), own_odd_before[own_end].tolist()
    their_all = their_odd = own_all
    if any(they_are_smaller):
        within = values <= cut[owner]
        starts = np.cumsum([0, *lengths[:-1]])
        their_all = np.add.reduceat(within.view(np.uint8), starts, dtype=np.intp).tolist()
        their_odd = np.add.reduceat((within & (values & 1).astype(bool)).view(np.uint8), starts, dtype=np.intp).tolist()
    extra = NUMBER_WEIGHT - 1
    for j, i in enumerate(kept):
        if they_are_smaller[j]:
            total = their_all[j] + extra * their_odd[j]
        else:
            total = own_all[j] + extra * own_odd[j]
        if total:
            scores[i] = (found_all[j] + extra * found_odd[j]) / total
    return scores


def _lookup(fp: Fingerprint, np: ModuleType) -> tuple[Any, Any, Any]:
    """What :func:`score_stored` looks candidate values up in, kept with the fingerprint: its
    values as a sorted array, which top 16 bits occur among them, and how many values before
    each index have the number bit."""
    lookup = fp.__dict__.get("_lookup_cache")
    if lookup is None:
        own = np.frombuffer(fp.to_bytes(), dtype=">u4", offset=_HEADER.size).astype(np.uint32)
        has_top = np.zeros(1 << 16, dtype=bool)
        has_top[own >> 16] = True
        odd_before = np.concatenate(([0], np.cumsum(own & 1)))
        lookup = fp.__dict__["_lookup_cache"] = (own, has_top, odd_before)
    return lookup


def is_duplicate(a: Fingerprint, b: Fingerprint) -> bool:
    return score(a, b) >= THRESHOLD


def candidate_keys(fp: Fingerprint) -> list[int]:
    """Lookup keys (non-negative ints below 2**32) for an indexed ``(key, article)`` table."""
    return list(fp.hashes[:KEY_COUNT])


@dataclass(frozen=True)
class ClusterAssignment:
    """Where an article goes: its cluster, the earlier article it matched and the score."""

    cluster_id: str
    matched_id: str | None = None
    similarity: float | None = None  # the score() that decided, >= THRESHOLD when matched


def decide(
    article_id: str, fp: Fingerprint | None, candidates: Iterable[tuple[str, str, Fingerprint]]
) -> ClusterAssignment:
    """Join the cluster of the best-scoring earlier article at or above THRESHOLD, else start one.

    ``candidates`` are ``(article_id, cluster_id, fingerprint)`` of earlier articles, in
    the order to prefer on a tie (earliest first). Articles without a fingerprint never match.
    """
    best: tuple[float, str, str] | None = None
    if fp is not None:
        for cand_id, cluster_id, cand_fp in candidates:
            s = score(fp, cand_fp)  # fp's value set is built by the first call, then reused
            if s >= THRESHOLD and (best is None or s > best[0]):
                best = (s, cand_id, cluster_id)
    if best is None:
        return ClusterAssignment(article_id)
    return ClusterAssignment(best[2], best[1], round(best[0], 4))


class Clusterer:
    """In-memory clustering with the same key lookup and decision the store uses.

    Articles are taken in the order they are added. Candidates are the earlier articles
    that share a key with the new one, offered to :func:`decide` oldest published first.
    """

    def __init__(self) -> None:
        self._fingerprints: dict[str, Fingerprint | None] = {}
        self._clusters: dict[str, str] = {}
        self._order: dict[str, tuple[bool, str, int]] = {}
        self._index: dict[int, list[str]] = {}

    def add(self, article_id: str, text: str, published: str | None = None) -> ClusterAssignment:
        if article_id in self._fingerprints:
            raise ValueError(f"article {article_id!r} was already added")
        fp = fingerprint(text)
        keys = candidate_keys(fp) if fp is not None else []
        found = {other for key in keys for other in self._index.get(key, ())}
        candidates = [
            (other, self._clusters[other], other_fp)
            for other in sorted(found, key=self._order.__getitem__)
            if (other_fp := self._fingerprints[other]) is not None
        ]
        result = decide(article_id, fp, candidates)
        self._fingerprints[article_id] = fp
        self._clusters[article_id] = result.cluster_id
        self._order[article_id] = (published is None, published or "", len(self._order))
        for key in keys:
            self._index.setdefault(key, []).append(article_id)
        return result

    def cluster_of(self, article_id: str) -> str:
        return self._clusters[article_id]

    def clusters(self) -> dict[str, list[str]]:
        """Cluster id -> member ids, in the order they were added."""
        out: dict[str, list[str]] = {}
        for article_id, cluster_id in self._clusters.items():
            out.setdefault(cluster_id, []).append(article_id)
        return out
