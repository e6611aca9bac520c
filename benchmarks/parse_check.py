"""Compare the parsers of this tree with those of another revision, input by input.

Parses every feed and page of a benchmark corpus (every phase), every test fixture and every
hostile-suite case with the current ``aggregator`` and with the ``aggregator`` of a git revision
(``--ref``, default HEAD: the code before uncommitted changes), and reports every input whose
resulting :class:`~aggregator.types.Article` objects (or error) differ.

    python -m benchmarks.parse_check [CORPUS.pickle ...] [--ref REV] [--no-fixtures]

The reference runs in a child process with the revision's ``aggregator/`` (``git archive``) first
on ``sys.path``; results travel as pickled plain dicts. Exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = 8080
FEED_SUFFIXES = {".xml", ".rss", ".atom", ".rdf", ".json"}
PAGE_SUFFIXES = {".html", ".htm"}


def _fixture_inputs(root: Path) -> list[tuple[str, str, bytes, dict, str]]:
    """(key, kind, bytes, headers, url) for the feed and page fixtures and the hostile cases."""
    found = []
    folders = [root / "tests" / "fixtures" / "feeds", root / "tests" / "fixtures" / "pages",
               root / "tests" / "hostile" / "cases"]
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            suffix = path.suffix.lower()
            if not path.is_file() or path.name.endswith((".expected.json", ".headers.json")):
                continue
            if suffix not in FEED_SUFFIXES | PAGE_SUFFIXES and "hostile" not in path.parts:
                continue
            if suffix in (".py", ".md", ".yaml", ".yml", ".txt") or path.name.startswith("."):
                continue
            headers_path = path.with_name(path.name.rsplit(".", 1)[0] + ".headers.json")
            headers = {}
            if headers_path.exists():
                try:
                    loaded = json.loads(headers_path.read_text(encoding="utf-8"))
                    headers = {str(k).lower(): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
                except ValueError:
                    headers = {}
            key = str(path.relative_to(root))
            url = f"https://office.example/{path.name}"
            content = path.read_bytes()
            if suffix in PAGE_SUFFIXES:
                found.append((key, "page", content, headers, url))
            else:
                found.append((key, "feed", content, headers, url))
                if "hostile" in path.parts and suffix not in FEED_SUFFIXES:
                    found.append((key + "#page", "page", content, headers, url))
    return found


def _result(call) -> object:
    try:
        value = call()
    except Exception as exc:  # the parsers raise ParseError; anything else is a difference too
        return f"{type(exc).__name__}: {exc}"
    return value


def _articles(value) -> object:
    if isinstance(value, str):
        return value
    return [a.to_dict() for a in value]


def run(corpora: list[str], fixtures: bool) -> tuple[dict[str, object], dict[str, float]]:
    """Parse every input with the ``aggregator`` on sys.path: key → articles (dicts) or error text."""
    from aggregator.sources.feed import parse_feed_report
    from aggregator.sources.page import parse_article_page, parse_list_page
    from aggregator.types import Source

    results: dict[str, object] = {}
    seconds: dict[str, float] = {}
    if fixtures:
        generic = Source(id="check", office="CHECK", name="check", kind="feed", url="https://office.example/",
                         interval=3600)
        started = time.perf_counter()
        for key, kind, content, headers, url in _fixture_inputs(ROOT):
            if kind == "feed":
                report = _result(lambda c=content, h=headers, u=url: parse_feed_report(c, h, generic, u))
                results[key] = report if isinstance(report, str) else (_articles(report.articles), report.warnings)
            else:
                results[key] = _articles(_result(
                    lambda c=content, h=headers, u=url: [parse_article_page(c, h, generic, u)]))
        seconds["fixtures"] = time.perf_counter() - started
    for path in corpora:
        from aggregator.config import parse_config

        from .corpus import config_yaml, load

        corpus = load(path)
        config = parse_config(config_yaml(corpus, PORT), "check.yaml")
        specs = {s.id: s for s in corpus.sources}
        name = Path(path).stem
        for phase_no, routes in enumerate(corpus.phases, 1):
            started = time.perf_counter()
            for source in config.sources:
                spec = specs[source.id]
                resource = routes.get(spec.host, {}).get(spec.path)
                if resource is None:
                    continue
                url = f"http://{spec.host}:{PORT}{spec.path}"
                headers = {"content-type": resource.content_type}
                key = f"{name}/phase{phase_no}/{source.id}"
                if source.kind == "feed":
                    results[key] = _articles(_result(
                        lambda b=resource.body, h=headers, s=source, u=url: parse_feed_report(b, h, s, u).articles))
                    continue
                listing = _result(lambda b=resource.body, h=headers, s=source, u=url: parse_list_page(b, h, s, u))
                if isinstance(listing, str):
                    results[key] = listing
                    continue
                results[key] = [(e.url, e.title, e.date, e.date_raw) for e in listing.entries] + [listing.next_url]
                for entry in listing.entries:
                    path_part = entry.url.split(f":{PORT}", 1)[1]
                    page = routes.get(spec.host, {}).get(path_part)
                    if page is None:
                        continue
                    page_headers = {"content-type": page.content_type}
                    results[f"{key}{path_part}"] = _articles(_result(
                        lambda b=page.body, h=page_headers, s=source, u=entry.url, e=entry:
                        [parse_article_page(b, h, s, u, e)]))
            seconds[f"{name}/phase{phase_no}"] = time.perf_counter() - started
    return results, seconds


def _reference(ref: str, corpora: list[str], fixtures: bool) -> tuple[dict[str, object], dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "aggregator"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        out = Path(tmp) / "results.pickle"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([tmp, str(ROOT)])}
        command = [sys.executable, "-m", "benchmarks.parse_check", *corpora, "--emit", str(out)]
        if not fixtures:
            command.append("--no-fixtures")
        subprocess.run(command, check=True, env=env, cwd=tmp)
        with out.open("rb") as f:
            return pickle.load(f)


def _first_difference(old: object, new: object, path: str = "") -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new), key=str):
            if old.get(k) != new.get(k):
                return _first_difference(old.get(k), new.get(k), f"{path}.{k}")
    if isinstance(old, list | tuple) and isinstance(new, list | tuple):
        if len(old) != len(new):
            return f"{path}: {len(old)} items → {len(new)} items"
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b:
                return _first_difference(a, b, f"{path}[{i}]")
    return f"{path}: {old!r:.200} → {new!r:.200}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs="*", help="benchmark corpus pickles (benchmarks.corpus)")
    parser.add_argument("--ref", default="HEAD", help="git revision whose aggregator/ is the reference")
    parser.add_argument("--no-fixtures", action="store_true", help="only the corpora")
    parser.add_argument("--emit", help=argparse.SUPPRESS)  # the child: write results here
    args = parser.parse_args()
    corpora = [str(Path(c).resolve()) for c in args.corpora]
    if args.emit:
        with open(args.emit, "wb") as f:
            pickle.dump(run(corpora, not args.no_fixtures), f)
        return
    old, old_seconds = _reference(args.ref, corpora, not args.no_fixtures)
    new, new_seconds = run(corpora, not args.no_fixtures)
    differences = [key for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    for key in differences:
        print(f"DIFF {key}: {_first_difference(old.get(key), new.get(key))}")
    for part in old_seconds:
        print(f"{part}: {old_seconds[part]:.2f} s ({args.ref}) → {new_seconds.get(part, 0):.2f} s (this tree)")
    print(f"{len(old)} inputs compared, {len(differences)} differ")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
