"""Multilingual full-text search over the archive.

SQLite's unicode61 tokenizer keeps a whole run of Chinese, Japanese or Korean
characters as one token, so 专利 would never match inside 专利审查. We do not
load a custom tokenizer (Datasette and the sqlite3 shell could not read the
index); instead both sides are rewritten in Python:

* indexing: every CJK run is written into the FTS table as overlapping
  bigrams (知识产权 → 知识 识产 产权), Latin text unchanged;
* querying: a CJK word becomes the phrase of its bigrams, which matches
  exactly the documents containing that word as a substring.

The user's query is parsed into our own small grammar (words, "phrases",
prefix*, AND/OR/NOT, parentheses, column:word) and re-emitted as an FTS5
expression in which every term is a quoted string: nothing the user types
can reach FTS5's syntax or SQL. See docs/search.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from itertools import islice
from operator import add
from typing import Any

from .exceptions import InvalidSearchQuery

# Bump when index_text changes: the archive rebuilds its index on open.
INDEX_VERSION = "2"
MAX_QUERY_LENGTH = 1000
FTS_COLUMNS = ("title", "summary", "body", "topics", "source_org")
COLUMN_ALIASES = {"title": "title", "summary": "summary", "body": "body", "text": "body",
                  "topic": "topics", "topics": "topics", "source": "source_org", "source_org": "source_org"}

# Han (with extensions and compatibility forms), kana, Hangul.
_CJK_CLASS = (
    "\u2e80-\u2fdf\u3005\u3007\u3021-\u3029\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u31a0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_CJK_RUN = re.compile(f"[{_CJK_CLASS}]+")
_HAS_CJK = re.compile(f"[{_CJK_CLASS}]")


def _bigrams(run: str) -> str:
    if len(run) == 1:
        return run
    return " ".join(run[i : i + 2] for i in range(len(run) - 1))


_KANA_OR_HANGUL = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f\uac00-\ud7af]")
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


@lru_cache(maxsize=1)
def _to_simplified():
    import opencc

    return opencc.OpenCC("t2s").convert


def fold_chinese(text: str) -> str:
    """Traditional Chinese characters → simplified (OpenCC), so 專利 and 专利 index alike."""
    return _to_simplified()(text) if _HAN.search(text) else text


def _is_chinese(text: str, language: str | None) -> bool:
    if language:
        return language.lower().startswith("zh")
    return not _KANA_OR_HANGUL.search(text)  # Han with no kana or Hangul: Chinese, most likely


def index_text(text: str | None, language: str | None = None) -> str:
    """The text as written into the FTS index: CJK runs as space-separated bigrams; Chinese
    text folded to simplified characters (Japanese kanji are left as they are).

    Each CJK run becomes `` {its bigrams} `` (a run of one character stays as it is), the rest
    of the text is unchanged.
    """
    if not text:
        return ""
    if text.isascii() or not _may_have_cjk(text):  # isascii: a C scan, ~50× the regex's speed
        return text
    if _HAN.search(text) and _is_chinese(text, language):
        text = fold_chinese(text)
    if len(text) < _SHORT_TEXT:
        return _bigram_runs(text)
    return _bigram_chars(text)


def _may_have_cjk(text: str) -> bool:
    try:
        text.encode("latin-1")  # a copy for Latin-1 text (de, fr, es), so quicker than the regex
    except UnicodeEncodeError:
        return _HAS_CJK.search(text) is not None
    return False


# index_text's two ways of writing the bigrams, with the same result. _CJK_RUN.sub with a function
# costs a Python call per run (Korean has a run per word); these cost a few C calls per run, or a
# constant number of numpy operations per text, which is quicker from about a hundred characters on.
_SHORT_TEXT = 128
_CJK_SPLIT = re.compile(f"([{_CJK_CLASS}]+)")


def _bigram_runs(text: str) -> str:
    """The runs split out: [other, run, other, …, other] joined by spaces puts one on each side of a run."""
    pieces = _CJK_SPLIT.split(text)
    pieces[1::2] = [" ".join(map(add, run, run[1:])) or run for run in pieces[1::2]]
    return " ".join(pieces)


def _class_bounds(char_class: str) -> list[int]:
    """A regex character class of single characters and ranges -> ascending [first, last + 1, …]."""
    bounds: list[int] = []
    i = 0
    while i < len(char_class):
        if i + 2 < len(char_class) and char_class[i + 1] == "-":
            bounds += [ord(char_class[i]), ord(char_class[i + 2]) + 1]
            i += 3
        else:
            bounds += [ord(char_class[i]), ord(char_class[i]) + 1]
            i += 1
    return bounds


@lru_cache(maxsize=1)
def _cjk_bounds() -> Any:
    import numpy

    return numpy.array(_class_bounds(_CJK_CLASS), dtype=numpy.uint32)


def _bigram_chars(text: str) -> str:
    """The same text as _bigram_runs, written per character with numpy, from the code points.

    Seen per character, a run's bigrams (abcd -> ab bc cd) repeat each character with CJK on both
    sides after a space (a b_b c_c d); a space goes before a run's first character and after its last.
    """
    import numpy as np

    chars = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    cjk = (np.searchsorted(_cjk_bounds(), chars, side="right") & 1).astype(bool)  # inside a [first, last + 1)
    before = np.zeros(len(chars), dtype=bool)
    before[1:] = cjk[:-1]
    after = np.zeros(len(chars), dtype=bool)
    after[:-1] = cjk[1:]
    first = cjk & ~before
    inner = cjk & before & after
    widths = 1 + first.view(np.uint8) + (cjk & ~after).view(np.uint8) + 2 * inner.view(np.uint8)
    ends = np.cumsum(widths, dtype=np.int64)
    out = np.full(int(ends[-1]), ord(" "), dtype="<u4")
    at = ends - widths + first  # where each character itself goes
    out[at] = chars
    out[at[inner] + 2] = chars[inner]  # its repetition, after a space
    return out.tobytes().decode("utf-32-le", "surrogatepass")


# --- query parsing -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<phrase>"[^"]*")(?P<pstar>\*)?
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<word>[^\s()"]+)
    """,
    re.VERBOSE,
)
_OPERATORS = {"AND", "OR", "NOT"}
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# Characters that FTS5's tokenizer treats as separators anyway; stripped from bare words.
_WORD_JUNK = re.compile(r"^[^\w]+|[^\w*]+$", re.UNICODE)


@dataclass(frozen=True)
class ParsedQuery:
    """An FTS5 MATCH expression plus the plain terms (for snippets)."""

    expression: str
    terms: tuple[str, ...]


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _term(text: str, prefix: bool = False, column: str | None = None) -> str | None:
    """One user term or phrase → a quoted FTS5 phrase (CJK as bigram phrases).

    A term with traditional Chinese characters matches both as written (Japanese text is
    indexed unfolded) and folded to simplified (Chinese text is indexed folded).
    """
    star = " *" if prefix else ""
    as_written = " ".join(_CJK_RUN.sub(lambda m: f" {_bigrams(m.group(0))} ", text).split())
    if not as_written:
        return None
    forms = [as_written]
    if _HAN.search(text):
        folded = " ".join(index_text(text, "zh").split())
        if folded != as_written:
            forms.append(folded)
    phrase = " OR ".join(_quote(form) + star for form in forms)
    if len(forms) > 1:
        phrase = f"( {phrase} )"
    return f"{column} : {phrase}" if column else phrase


def parse_query(query: str) -> ParsedQuery:
    """Turn what a librarian types into a safe FTS5 expression.

    Malformed operators and parentheses are read as plain words rather than
    rejected; only an empty or over-long query is an error.
    """
    if query is None or not query.strip():
        raise InvalidSearchQuery("empty search query")
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidSearchQuery(
            f"search query too long ({len(query)} characters; the limit is {MAX_QUERY_LENGTH})"
        )
    query = _CONTROL_CHARS.sub(" ", query)  # FTS5 rejects a NUL inside a phrase
    if query.count('"') % 2:
        query = query.replace('"', " ")  # an unbalanced quote: read the words plainly

    items: list[tuple[str, str]] = []  # (kind, fts text): kind in term/op/lparen/rparen
    terms: list[str] = []
    for match in _TOKEN.finditer(query):
        if match.group("phrase"):
            inner = match.group("phrase")[1:-1]
            fts = _term(inner, prefix=bool(match.group("pstar")))
            if fts:
                items.append(("term", fts))
                terms.append(inner.strip())
        elif match.group("lparen"):
            items.append(("lparen", "("))
        elif match.group("rparen"):
            items.append(("rparen", ")"))
        else:
            word = match.group("word")
            if word in _OPERATORS:
                items.append(("op", word))
                continue
            column = None
            if ":" in word:
                head, _, rest = word.partition(":")
                if head.lower() in COLUMN_ALIASES and rest:
                    column, word = COLUMN_ALIASES[head.lower()], rest
            prefix = word.endswith("*")
            word = _WORD_JUNK.sub("", word.replace(":", " ")).rstrip("*")
            if not word:
                continue
            fts = _term(word, prefix=prefix, column=column)
            if fts:
                items.append(("term", fts))
                terms.append(word)
    expression = _assemble(items)
    if not expression:
        raise InvalidSearchQuery("search query has no words to look for")
    return ParsedQuery(expression=expression, terms=tuple(terms))


def _assemble(items: list[tuple[str, str]]) -> str:
    """Keep operators and parentheses only where FTS5 accepts them; drop the rest."""
    # Parentheses: keep only balanced pairs that enclose at least one term.
    depth_ok: list[bool] = [True] * len(items)
    stack: list[int] = []
    for i, (kind, _) in enumerate(items):
        if kind == "lparen":
            stack.append(i)
        elif kind == "rparen":
            if stack:
                start = stack.pop()
                if not any(k == "term" for k, _ in items[start + 1 : i]):
                    depth_ok[start] = depth_ok[i] = False
            else:
                depth_ok[i] = False
    for i in stack:
        depth_ok[i] = False
    items = [item for item, ok in zip(items, depth_ok, strict=True) if ok]

    out: list[tuple[str, str]] = []
    for kind, text in items:
        prev = out[-1][0] if out else None
        if kind == "op":
            # An operator needs an operand before it; repeated operators collapse.
            if prev in ("term", "rparen"):
                out.append((kind, text))
            continue
        # Implicit AND is written out: FTS5 rejects a phrase next to a parenthesised group,
        # and a traditional-Chinese term is such a group ("專利" OR "专利").
        if kind in ("lparen", "term") and prev in ("term", "rparen"):
            out.append(("op", "AND"))
        out.append((kind, text))
    # Remove operators left dangling before a ")" or at the end.
    cleaned: list[tuple[str, str]] = []
    for kind, text in out:
        if kind == "rparen" and cleaned and cleaned[-1][0] == "op":
            cleaned.pop()
        cleaned.append((kind, text))
    while cleaned and cleaned[-1][0] == "op":
        cleaned.pop()
    # "( )" left empty after cleaning cannot happen: empty groups were dropped above.
    return " ".join(text for _, text in cleaned)


# --- the index's layout: date-ordered rowids and filter tokens ----------------------------------

# The FTS rowid is (date key << 32) | articles.seq, so FTS5's rowid order is date order: newest
# first is `ORDER BY rowid DESC` and a date range is a rowid range, both answered from the index.
# The key is a day, not a minute: FTS5 stores rowid deltas as varints, and at one article a
# minute a minute key would double the index; a day key costs about a quarter (docs/search.md).
SEQ_BITS = 32
SEQ_MASK = (1 << SEQ_BITS) - 1
_KEY_EPOCH = date(1000, 1, 1)
_KEY_EPOCH_OFFSET = 30610224000  # seconds from 1000-01-01 to 1970-01-01
_KEY_MAX = 2**31 - 1  # the rowid stays below 2^63
FACETS_COLUMN = "facets"
INDEX_COLUMNS = (*FTS_COLUMNS, FACETS_COLUMN)  # the FTS table's columns, in order
# (kind, articles column): each becomes one token "x<kind><value>" in the facets column.
FACETS = (("office", "office"), ("lang", "language"), ("source", "source_id"))
_FACET_DROPPED = "-_. "  # removed from facet values, so most values stay a single token


def date_key_sql(value: str) -> str:
    """SQL for the date part of an FTS rowid: whole days since 1000-01-01, clamped to
    1…2^31−1; 0 when undated, so undated articles come last newest-first. Integer arithmetic
    only, so it is exact and non-decreasing in the ISO string order of `sort_date`."""
    return (f"(CASE WHEN {value} IS NULL THEN 0 ELSE max(1, min({_KEY_MAX}, coalesce("
            f"(CAST(strftime('%s', {value}) AS INTEGER) + {_KEY_EPOCH_OFFSET}) / 86400, 1))) END)")


FTS_ROWID_SQL = f"({date_key_sql('sort_date')} << {SEQ_BITS} | seq)"  # articles.fts_rowid


def date_key(value: str | None) -> int | None:
    """date_key_sql in Python, for a bound: read from its date part only ('YYYY-MM-DD'), so a
    bound orders like the strings it is compared with. None when unreadable."""
    if value is None:
        return 0
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return None
    return max(1, min(_KEY_MAX, (day - _KEY_EPOCH).days))


def _facet_value_sql(column: str) -> str:
    value = f"coalesce({column}, '')"
    for char in _FACET_DROPPED:
        value = f"replace({value}, '{char}', '')"
    return f"lower({value})"


def facets_sql(row: str = "") -> str:
    """SQL for the facets column of an article (`row` is "new.", "old." or ""): pure SQL,
    so any connection's writes index it alike."""
    return " || ' ' || ".join(f"'x{kind}' || {_facet_value_sql(row + column)}" for kind, column in FACETS)


def facet_phrase(kind: str, value: str) -> str:
    """The FTS5 phrase matching facets_sql's token for `value` (the tokenizer folds case)."""
    return _quote(f"x{kind}" + "".join(c for c in value.lower() if c not in _FACET_DROPPED))


# --- running a search ----------------------------------------------------------------------------

# bm25 weights per FTS column: a hit in the title counts most; the facets never count.
BM25_WEIGHTS = {"title": 10.0, "summary": 4.0, "body": 1.0, "topics": 3.0, "source_org": 2.0}
_BM25_ARGS = ", ".join(str(BM25_WEIGHTS.get(c, 0.0)) for c in INDEX_COLUMNS)
RANK_FUNCTION = f"bm25({_BM25_ARGS})"  # the index's rank: `ORDER BY rank` in Datasette and the sqlite3 shell
RESULT_COLUMNS = (
    "id", "title", "url", "published", "site_published", "updated", "office", "source_id", "language",
    "source_org", "topics", "summary",
)
SNIPPET_WIDTH = 180
_FIRST_PAGE, _MAX_PAGE = 64, 4096  # FTS rows read per step


@dataclass(frozen=True)
class SearchFilters:
    """Filters shared by search and export (all optional)."""

    offices: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    since: str | None = None  # ISO date or datetime, inclusive
    until: str | None = None  # ISO date (inclusive, the whole day) or datetime (exclusive)

    def where(self, alias: str = "a") -> tuple[list[str], list[object]]:
        clauses: list[str] = []
        params: list[object] = []
        for column, values in (("office", self.offices), ("source_id", self.sources), ("language", self.languages)):
            if values:
                clauses.append(f"{alias}.{column} COLLATE NOCASE IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        for topic in self.topics:
            clauses.append(f"EXISTS (SELECT 1 FROM json_each({alias}.topics) WHERE value = ? COLLATE NOCASE)")
            params.append(topic)
        if self.since:
            clauses.append(f"{alias}.sort_date >= ?")
            params.append(self.since)
        if self.until:
            clauses.append(f"{alias}.sort_date < ?")
            params.append(self._until_exclusive())
        return clauses, params

    def _until_exclusive(self) -> str:
        return _day_after(self.until) if len(self.until) == 10 else self.until

    def match(self, expression: str) -> str:
        """The MATCH expression: the query AND the facet tokens of the filters (weight 0), a
        superset of the filters (where() stays exact) that FTS5 intersects before anything is
        ranked or joined. Only a prefix query is kept to the text columns: a column filter
        makes FTS5 read every position of every match (bm25 counts all matches, 4× slower)."""
        if '" *' in expression:  # a prefix (x*) could reach a facet token: keep it to the text
            expression = f"{{{' '.join(FTS_COLUMNS)}}} : ( {expression} )"
        parts = [expression]
        for kind, values in (("office", self.offices), ("source", self.sources), ("lang", self.languages)):
            if values:
                parts.append(f"{FACETS_COLUMN} : ( {' OR '.join(facet_phrase(kind, v) for v in values)} )")
        # Topics are not narrowed here: a phrase in the topics column would count in bm25.
        return " AND ".join(parts)

    def rowid_range(self) -> tuple[int, int]:
        """FTS rowids that can hold the date range: whole days around since/until (a superset)."""
        low, high = 0, (1 << 63) - 1
        since = date_key(self.since) if self.since else None
        if since is not None:
            low = since << SEQ_BITS
        until = date_key(self._until_exclusive()) if self.until else None
        if until is not None:
            high = ((until + 1) << SEQ_BITS) - 1
        if self.since or self.until:
            low = max(low, 1 << SEQ_BITS)  # undated articles never pass a date filter
        return low, high


def _day_after(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def search_articles(
    db,  # sqlite_utils.Database or sqlite3.Connection
    query: str,
    *,
    filters: SearchFilters | None = None,
    sort: str = "rank",
    limit: int = 20,
    offset: int = 0,
    all_duplicates: bool = False,
) -> list[dict]:
    """Ranked (bm25, title weighted) or newest-first results with a marked snippet.

    sort="rank": best first, ties newest first. sort="date": `sort_date` descending (undated
    last), the same `sort_date` most recently archived first (FTS rowid descending); no bm25
    is computed, so `rank` is None.

    Near-duplicates (one `cluster_id`) come back as one row, the cluster's earliest published
    match, at the place of its first match in the order, with `duplicates` = how many other
    articles the cluster holds; `all_duplicates` lists every member instead.
    """
    parsed = parse_query(query)
    hits = _hits(db, parsed.expression, filters or SearchFilters(), sort, query,
                 first=max(_FIRST_PAGE, 3 * (offset + limit)))
    try:
        if all_duplicates:
            rows = list(islice(hits, offset, offset + limit))
        else:
            rows = _one_per_cluster(hits, limit, offset)
            sizes = _cluster_sizes(db, {r["cluster_id"] for r in rows})
    finally:
        hits.close()
    bodies = _bodies(db, [row["_seq"] for row in rows])
    results = []
    for row in rows:
        body = bodies.get(row.pop("_seq")) or ""
        row.pop("_sort")
        cluster = row.pop("cluster_id")
        row["duplicates"] = 0 if all_duplicates else sizes.get(cluster, 1) - 1
        row["cluster_id"] = cluster
        row["snippet"] = make_snippet(" ".join(filter(None, [row.get("summary"), body])) or row["title"],
                                      parsed.terms)
        row["rank"] = None if row["rank"] is None else round(row["rank"], 4)
        results.append(row)
    return results


def _hits(db, expression: str, filters: SearchFilters, sort: str, query: str, first: int) -> Iterator[dict]:
    """Matching articles, exactly filtered, best first (rank) or newest first (date), read
    from the index a page at a time; each page's articles are fetched by rowid."""
    import sqlite3

    match = filters.match(expression)
    low, high = filters.rowid_range()
    clauses, params = filters.where("a")
    columns = ", ".join(f"a.{c}" for c in RESULT_COLUMNS)
    conn = getattr(db, "conn", db)
    try:
        pages = (_ranked_pages if sort == "rank" else _newest_pages)(conn, match, low, high, first)
        names = (*RESULT_COLUMNS, "cluster_id", "_sort", "_seq")
        for page in pages:
            found = {row[-1]: row for row in conn.execute(  # bodies only for the rows shown (_bodies)
                f"SELECT {columns}, a.cluster_id, a.sort_date AS _sort, a.seq FROM articles a "
                f"WHERE a.seq IN ({', '.join('?' for _ in page)}){''.join(' AND ' + c for c in clauses)}",
                [rowid & SEQ_MASK for rowid, _ in page] + params)}
            rows = [(rowid, {**dict(zip(names, found[rowid & SEQ_MASK], strict=True)), "rank": rank})
                    for rowid, rank in page if rowid & SEQ_MASK in found]
            yield from ([row for _, row in rows] if sort == "rank" else _by_date(rows))
    except sqlite3.OperationalError as e:  # pragma: no cover - parse_query only emits valid syntax
        raise InvalidSearchQuery(f"cannot search for {query!r}: {e}") from e


def _ranked_pages(conn, match: str, low: int, high: int, first: int) -> Iterator[list[tuple[int, float]]]:
    """Matches best first (ties: newest first). The first page is a top-k (SQLite keeps only k
    rows while FTS5 scores every match); if more are needed, one more statement continues after
    the last row read and is read lazily, so nothing is ranked or joined twice for a page."""
    scored = (f"SELECT rowid, bm25(articles_fts, {_BM25_ARGS}) AS score FROM articles_fts "
              "WHERE articles_fts MATCH ? AND rowid BETWEEN ? AND ?")
    page = conn.execute(f"{scored} ORDER BY score, rowid DESC LIMIT ?", [match, low, high, first]).fetchall()
    yield page
    if len(page) < first:
        return
    score, rowid = page[-1][1], page[-1][0]
    cursor = conn.execute(
        f"SELECT rowid, score FROM ({scored}) WHERE score > ? OR (score = ? AND rowid < ?) ORDER BY score, rowid DESC",
        [match, low, high, score, score, rowid])
    size = first
    while page := cursor.fetchmany(size):
        yield page
        size = min(_MAX_PAGE, size * 2)


def _newest_pages(conn, match: str, low: int, high: int, first: int) -> Iterator[list[tuple[int, None]]]:
    """Matches in descending rowid (date) order, each page continuing below the last rowid read;
    a page ends at a date key's end, so a page holds whole keys (see _by_date).

    No statement calls bm25 (the rank is None): bm25 counts each phrase's documents by reading
    its whole list once per statement, which at 1M articles costs more than the page itself.
    Without it FTS5 reads the newest matches and stops."""
    ids = ("SELECT rowid FROM articles_fts "
           "WHERE articles_fts MATCH ? AND rowid BETWEEN ? AND ? ORDER BY rowid DESC LIMIT ?")
    size = first
    while high >= low:
        rowids = [rowid for (rowid,) in conn.execute(ids, [match, low, high, size])]
        if len(rowids) == size:  # complete the last key: its rows order among themselves
            key = rowids[-1] >> SEQ_BITS
            rowids += [rowid for (rowid,) in conn.execute(ids, [match, max(low, key << SEQ_BITS), rowids[-1] - 1, -1])]
        if not rowids:
            return
        yield [(rowid, None) for rowid in rowids]  # a row deleted since is dropped by the join
        if len(rowids) < size:
            return
        high = rowids[-1] - 1
        size = min(_MAX_PAGE, size * 2)


def _by_date(rows: list[tuple[int, dict]]) -> list[dict]:
    """(rowid, row) pairs of whole date keys → exactly `sort_date DESC` (undated last), the same
    `sort_date` by rowid descending (most recently archived first): a key is a day, so within
    one the dates and then the rowids decide; undated rows (key 0) by rowid."""
    return [row for _, row in sorted(rows, key=lambda pair: (pair[0] >> SEQ_BITS, pair[1]["_sort"] or "", pair[0]),
                                     reverse=True)]


def _one_per_cluster(hits: Iterator[dict], limit: int, offset: int) -> list[dict]:
    """Walk the ordered matches, keeping each cluster once (its earliest published match, at the
    place of its best-ordered one), until `offset + limit` clusters are found. Matches are read
    in growing batches; a batch read is always finished, so a later copy can still replace
    a cluster's row with an earlier published one."""
    wanted = offset + limit
    chosen: dict[str, dict] = {}
    order: list[str] = []
    batch = max(wanted * 3, 50)
    while len(order) < wanted:
        rows = list(islice(hits, batch))
        for row in rows:
            cluster = row["cluster_id"] or row["id"]
            row["cluster_id"] = cluster
            best = chosen.get(cluster)
            if best is None:
                if len(order) < wanted:
                    chosen[cluster] = row
                    order.append(cluster)
            elif (row["_sort"] or "~") < (best["_sort"] or "~"):  # undated sorts last
                chosen[cluster] = {**row, "rank": best["rank"]}
        if len(rows) < batch:
            break
        batch *= 2
    return [chosen[c] for c in order[offset:wanted]]


def _bodies(db, seqs: list[int]) -> dict[int, str | None]:
    if not seqs:
        return {}
    return dict(db.execute(f"SELECT seq, body FROM articles WHERE seq IN ({', '.join('?' for _ in seqs)})",
                           seqs).fetchall())


def _cluster_sizes(db, clusters: set[str]) -> dict[str, int]:
    if not clusters:
        return {}
    ids = sorted(clusters)
    placeholders = ", ".join("?" for _ in ids)
    return dict(db.execute(
        f"SELECT cluster_id, count(*) FROM articles WHERE cluster_id IN ({placeholders}) GROUP BY cluster_id", ids
    ).fetchall())


def _term_patterns(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    pieces = []
    for term in terms:
        for word in term.split():
            word = word.strip("*")
            if not word:
                continue
            if _HAS_CJK.search(word):
                pieces.append(re.escape(word))
            else:
                # Stemmed matches: "patents" should mark "patent", "patented", "patenting".
                stem = word[: max(4, len(word) - 2)] if len(word) > 4 else word
                pieces.append(r"\b" + re.escape(stem) + r"\w*")
    if not pieces:
        return None
    pieces.sort(key=len, reverse=True)
    return re.compile("|".join(pieces), re.IGNORECASE)


def make_snippet(text: str, terms: tuple[str, ...], width: int = SNIPPET_WIDTH) -> str:
    """A window of the text around the first matched term, terms marked **like this**.

    The window is taken from the text with its whitespace collapsed (" ".join(text.split())),
    but only as much of it is collapsed as the window needs: a match never spans whitespace,
    so the first match in the text as it is, is the first in the collapsed text."""
    pattern = _term_patterns(terms)
    match = pattern.search(text) if pattern else None
    if match is None:
        head = _collapsed_head(text, width + 1)
        return head[:width] + ("…" if len(head) > width else "")
    before = text[: match.start()]
    at = len(" ".join(before.split()))
    if at and before[-1].isspace():
        at += 1  # the space that stands for the whitespace before the match
    text = _collapsed_head(text, at + width + 1)  # exact up to the window's end and one more
    start = max(0, at - width // 3)
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < at else start
    end = min(len(text), start + width)
    window = text[start:end]
    marked = pattern.sub(lambda m: f"**{m.group(0)}**", window)
    return ("…" if start else "") + marked + ("…" if end < len(text) else "")


_WHITESPACE = re.compile(r"\s")


def _collapsed_head(text: str, length: int) -> str:
    """" ".join(text.split()), either whole or cut anywhere at `length` characters or more."""
    cut = 2 * length + 64
    while cut < len(text):
        space = _WHITESPACE.search(text, cut)  # cut between words: the words before are exact
        if space is None:
            break
        head = " ".join(text[: space.start()].split())
        if len(head) >= length:
            return head
        cut *= 2
    return " ".join(text.split())
