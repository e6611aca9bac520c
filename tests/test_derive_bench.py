"""derive's fast paths give the committed output: index text byte for byte, fingerprints field for field.

``benchmarks/derive_bench.py`` does the same over a whole corpus and times it; this runs its
check on a few TextPool texts of each language and the tricky inputs, against ``HEAD``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from aggregator import search
from benchmarks import derive_bench

ROOT = Path(__file__).resolve().parent.parent


def _has_git_head() -> bool:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD:aggregator/search.py"], cwd=ROOT,
                              capture_output=True).returncode == 0
    except OSError:
        return False


@pytest.mark.skipif(not _has_git_head(), reason="needs the git history")
def test_index_text_and_fingerprints_match_the_committed_ones(tmp_path):
    before_search = derive_bench.load_committed("search", "HEAD", str(tmp_path))
    before_cluster = derive_bench.load_committed("cluster", "HEAD", str(tmp_path))
    texts = derive_bench.pool_texts(4, seed=3)
    problems = derive_bench.check(derive_bench.index_cases(texts), [t for t, _ in texts] + derive_bench.tricky_texts(),
                                  before_search, before_cluster)
    assert problems == []


def test_both_ways_of_writing_bigrams_agree():
    for text in derive_bench.tricky_texts():
        if search._HAS_CJK.search(text):
            assert search._bigram_chars(text) == search._bigram_runs(text), text


def test_numpy_cjk_class_is_the_regex_class():
    bounds = search._cjk_bounds()
    assert list(bounds) == sorted(bounds)
    points = np.arange(0x110000, dtype=np.uint32)
    inside = (np.searchsorted(bounds, points, side="right") & 1).astype(bool)
    edges = np.flatnonzero(np.diff(inside.astype(np.int8))) + 1  # first code point of each change
    for point in [0, 0x10FFFF, *edges.tolist(), *(edges - 1).tolist()]:
        assert bool(inside[point]) == bool(search._HAS_CJK.match(chr(point))), hex(point)
    assert int(inside.sum()) == sum(1 for point in range(0x2E80, 0x31350) if search._HAS_CJK.match(chr(point)))
