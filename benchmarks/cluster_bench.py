"""Near-duplicate clustering in isolation: fingerprints/s and comparisons/s, before vs after.

Bodies are the multilingual 1–5 KB texts of ``fts_limit.make_rows``. The "before"
module is ``aggregator/cluster.py`` as committed at ``--ref`` (``git show``, imported
from a temporary file); the "after" one is the working tree's. Both get the same
inputs, and every result is checked to be identical before any time is reported.

* ``fingerprint cold``: the first pass over the texts, with an empty token cache;
  ``warm``: the same texts again (a long-running worker sees mostly known words).
* ``score, unrelated``: pairs of different texts that pass the length guard, so the
  overlap is computed (the usual candidate: it shares one common phrase, nothing more).
* ``score, copies``: a text and an edited republication of it (header, footer, a few
  changed words): the full count, no early exit.
* ``decide, store path``: what ``Archive._cluster`` does per new article: decode each
  candidate's stored BLOB with ``Fingerprint.from_bytes`` and call ``decide`` on
  ``--candidates`` of them (one of them a copy), reported per candidate.

Each figure is the best of ``--repeat`` runs, before and after timed alternately. The
machine is shared: compare the before/after ratio of one run, not absolute figures
across runs.

    python -m benchmarks.cluster_bench --texts 1000
    python -m benchmarks.cluster_bench --texts 300 --ref HEAD --json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from aggregator import cluster as current

from .fts_limit import make_rows

ROOT = Path(__file__).resolve().parent.parent


def load_committed(ref: str, directory: str) -> ModuleType:
    """``aggregator/cluster.py`` at ``ref``, imported under another name."""
    source = subprocess.run(["git", "show", f"{ref}:aggregator/cluster.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(directory) / "cluster_before.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("cluster_before", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def clear_token_cache(module: ModuleType) -> None:
    if hasattr(module._token, "cache_clear"):  # up to the lru_cache version
        module._token.cache_clear()
    for table in (getattr(module, "_HASHES", None), getattr(module, "_WORDS", None), *getattr(module, "_LANES", ())):
        if table is not None:
            table.clear()


def republish(text: str, rng: random.Random) -> str:
    """A copy as another site posts it: its own header and footer, a few words changed."""
    words = text.split(" ")
    for _ in range(max(1, len(words) // 100)):
        words[rng.randrange(len(words))] = rng.choice(words)
    return f"IP News Daily › Patents\nPosted by the editorial team\n{' '.join(words)}\nShare this post. Read more."


def fields(fp) -> tuple | None:
    return None if fp is None else (fp.hashes, fp.size, fp.length)


def tasks(module: ModuleType, texts: list[str], copies: list[str], unrelated: list[tuple[int, int]],
          candidates: int, seed: int) -> dict:
    """Name -> (items per call, a function to time), for one module; "results" -> what to compare."""
    clear_token_cache(module)
    started = time.perf_counter()
    fps = [module.fingerprint(t) for t in texts]
    cold = time.perf_counter() - started
    copy_fps = [module.fingerprint(t) for t in copies]
    Fingerprint, score, decide = module.Fingerprint, module.score, module.decide  # noqa: N806

    def scorer(pairs):
        # score() keeps the first argument's value set (decide relies on it for the new
        # article): give every call fresh copies, so that no call is timed with a warm cache.
        return lambda: [score(Fingerprint(*fields(a)), b) for a, b in pairs]

    pairs = [(fps[i], fps[j]) for i, j in unrelated]
    dup_pairs = [(fps[i], copy_fps[i]) for i in range(len(copies))]

    # The store path: the new article is a copy, its candidates are BLOBs of earlier articles.
    rng = random.Random(seed)
    blobs = [fp.to_bytes() for fp in fps]
    jobs = []
    for i in range(len(copies)):
        rows = [(f"a{k}", f"c{k}", blobs[k]) for k in rng.sample(range(len(fps)), candidates) if k != i]
        rows[rng.randrange(len(rows))] = (f"a{i}", f"c{i}", blobs[i])
        jobs.append((f"new{i}", copy_fps[i], rows))
    from_bytes = Fingerprint.from_bytes

    def run_decide() -> list:
        return [decide(new_id, Fingerprint(*fields(fp)), ((cid, cluster, from_bytes(blob)) for cid, cluster, blob in rows))
                for new_id, fp, rows in jobs]

    return {
        "fingerprint_cold": (len(texts), cold),
        "fingerprint_warm": (len(texts), lambda: [module.fingerprint(t) for t in texts]),
        "score_unrelated": (len(pairs), scorer(pairs)),
        "score_copies": (len(dup_pairs), scorer(dup_pairs)),
        "decide_candidates": (sum(len(rows) for _, _, rows in jobs), run_decide),
        "results": {
            "fingerprints": [fields(fp) for fp in fps + copy_fps],
            "unrelated": scorer(pairs)(),
            "copies": scorer(dup_pairs)(),
            "decisions": [(r.cluster_id, r.matched_id, r.similarity) for r in run_decide()],
        },
    }


def rates(before: dict, after: dict, repeat: int) -> dict[str, dict[str, float]]:
    """Items per second, best of ``repeat``, timing before and after alternately (the load varies)."""
    best = {side: {} for side in ("before", "after")}
    for _ in range(repeat):
        for side, work in (("before", before), ("after", after)):
            for name, task in work.items():
                if name == "results":
                    continue
                items, func = task
                if callable(func):
                    started = time.perf_counter()
                    func()
                    seconds = time.perf_counter() - started
                else:
                    seconds = func  # measured once: the first pass over the texts
                best[side][name] = max(best[side].get(name, 0.0), items / seconds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=1000, help="bodies to fingerprint (default 1000)")
    parser.add_argument("--copies", type=int, default=200, help="republished copies (default 200)")
    parser.add_argument("--pairs", type=int, default=5000, help="unrelated pairs to score (default 5000)")
    parser.add_argument("--candidates", type=int, default=50, help="candidates per decide (default 50)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--ref", default="HEAD", help="git ref of the 'before' module (default HEAD)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    texts = [body for _, body, _ in make_rows(args.texts, seed=args.seed)]
    copies = [republish(texts[i], rng) for i in range(min(args.copies, len(texts)))]
    lengths = [current.fingerprint(t) for t in texts]
    unrelated: list[tuple[int, int]] = []
    while len(unrelated) < args.pairs:  # pairs that pass the length guard, so overlap is computed
        i, j = rng.randrange(len(texts)), rng.randrange(len(texts))
        a, b = lengths[i], lengths[j]
        if i != j and a is not None and b is not None and current.length_ratio(a, b) <= current.MAX_LENGTH_RATIO:
            unrelated.append((i, j))

    with tempfile.TemporaryDirectory() as tmp:
        before = tasks(load_committed(args.ref, tmp), texts, copies, unrelated, args.candidates, args.seed)
    after = tasks(current, texts, copies, unrelated, args.candidates, args.seed)
    for key, value in before["results"].items():
        if value != after["results"][key]:
            sys.exit(f"results differ between {args.ref} and the working tree: {key}")
    matched = sum(1 for _, matched_id, _ in after["results"]["decisions"] if matched_id is not None)
    best = rates(before, after, args.repeat)
    rates_before, rates_after = best["before"], best["after"]

    report = {
        "texts": len(texts), "mean_text_bytes": sum(len(t.encode()) for t in texts) / len(texts),
        "copies": len(copies), "copies_matched": matched, "unrelated_pairs": len(unrelated),
        "candidates_per_decide": args.candidates, "ref": args.ref, "identical_results": True,
        "before": rates_before, "after": rates_after,
        "speedup": {key: rates_after[key] / rates_before[key] for key in rates_before},
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return
    print(f"{len(texts)} texts of {report['mean_text_bytes']:,.0f} bytes on average, {len(copies)} copies "
          f"({matched} matched), {len(unrelated)} unrelated pairs, {args.candidates} candidates per decide; "
          f"results identical to {args.ref}")
    print(f"{'':28} {'before':>12} {'after':>12} {'speed-up':>9}")
    for key, value in rates_before.items():
        print(f"{key:28} {value:12,.0f} {rates_after[key]:12,.0f} {report['speedup'][key]:8.2f}x")


if __name__ == "__main__":
    main()
