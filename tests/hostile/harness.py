"""The hostile-input harness: one case = one bad input served on loopback, fetched by the real CLI.

Layout::

    tests/hostile/cases/<family>/<case>.<ext>            what the server sends (optional: see generate)
    tests/hostile/cases/<family>/<case>.expected.json    how it is served and what must come of it

Every case runs ``ipnews fetch --all`` in-process on a copy of an archive that already holds
articles (the "victim" source's earlier items and a bystander's), with two sources configured:

* ``victim``: the case's URL, kind and recipe;
* ``canary``: a healthy feed on the same server, which must be archived whatever the victim does.

and then checks, for every case: the exit status (0, or 3 when the victim fails); the victim's
outcome and its recorded message (``sources.last_error`` and the ``fetches`` row); the canary's
two new articles; that every row archived before is still there, unchanged; PRAGMA
integrity_check; that the run ended within its time budget (timeouts are small: connect and
read 1 s, whole request 3 s); that stored HTML holds no script, style, frame, event handler or
non-http(s) link and stored text no control, bidi or zero-width character; and whatever the
case adds.

Keys of ``<case>.expected.json`` (all optional except ``description`` and ``outcome``):

=====================  ======================================================================
description            what the case is and why its outcome is the right one
kind                   ``feed`` (default) or ``page``
source                 more victim config (``encoding``, ``list``, ``article``, ``timezone``…)
defaults               more ``defaults`` config (e.g. ``max_bytes``)
url                    the victim URL instead of the served path ({{BASE}}, {{CLOSED}} filled in)
path                   the served path's last part (default: the data file's name)
file / generate        the body: another file of the directory, or a generator of behaviours.py
                       (``{"name": …, "args": {…}}``) for large cases, never committed
status, headers        the HTTP answer (default 200 and a Content-Type from the extension)
route, route_args      a named behaviour of behaviours.py (drip, reset-mid-body, gzip bombs…)
pages                  more paths under the case's prefix (article pages): each a file name or
                       an object with the same body/status/headers/route keys
outcome                ``ok``, ``not-modified`` or ``failed``
error_contains         text (or list of texts) the victim's recorded error must contain
warning_contains       text the recorded warning (``last_error`` of a successful poll) must contain
stderr_contains        text the run's stderr (its log) must contain
articles               how many new articles the victim archived
titles                 their titles (any order)
match                  objects each of which some new victim article must match (column: value)
stored_text_excludes   strings found in no text column of the victim's articles (case-insensitive)
stored_text_includes   strings each found in some text column of them
http_status            the victim's recorded HTTP status
retry_after            true: a Retry-After was recorded; false: none
server_must_not_see    path prefixes the server must never have been asked for
max_seconds            the run's time budget (default 6)
heavy                  true for the slow ones: their test ids end in ``[heavy]`` (``-k "not heavy"``)
xfail                  the reason a known bug makes this case fail (strict: it must fail)
=====================  ======================================================================

Placeholders in bodies, ``url`` and ``match`` values: ``{{BASE}}`` (the server's base URL),
``{{HOSTPORT}}`` (its ``127.0.0.1:port``), ``{{PREFIX}}`` (the case's path prefix),
``{{SECRET_FILE}}`` (a local file whose text must never be archived), ``{{CLOSED}}``
(``http://127.0.0.1:<a port nothing listens on>``) and ``{{CLOSED_PORT}}`` (that port).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from behaviours import BEHAVIOURS, GENERATORS, Context

from aggregator.loopback import LoopbackServer, content_type_for

from conftest import query, rss, run, write_config

CASES_DIR = Path(__file__).parent / "cases"
SECRET = "IPNEWS-SECRET-7f3a9c"
DEFAULT_MAX_SECONDS = 6.0
CASE_DEFAULTS = {
    "connect_timeout": "1s",
    "read_timeout": "1s",
    "timeout": "3s",
    "contact": "mailto:hostile-tests@example.org",
}
PRIOR_VICTIM = [
    {"guid": f"prior-{n}", "title": f"Earlier notice {n}: renewal fees for design registrations in {2019 + n}",
     "link": f"/prior/victim/{n}.html", "date": f"Mon, 0{n} Mar 2021 09:00:00 GMT",
     "description": f"The office set the renewal fee for design registrations in {2019 + n} (notice {n})."}
    for n in (1, 2, 3)
]
PRIOR_BYSTANDER = [
    {"guid": f"bystander-{n}", "title": f"Bystander bulletin {n} on opposition deadlines",
     "link": f"/prior/bystander/{n}.html", "description": f"Opposition deadline bulletin number {n}."}
    for n in (1, 2)
]
TEXT_COLUMNS = ("title", "summary", "body", "body_html", "source_org", "topics", "url")
# Elements and URL schemes that must never survive into stored HTML.
FORBIDDEN_ELEMENTS = {"script", "style", "iframe", "frame", "frameset", "object", "embed", "svg", "math", "form",
                      "input", "button", "textarea", "select", "link", "meta", "base", "template", "noscript"}
SAFE_URL_PREFIXES = ("http://", "https://", "mailto:")
# Controls (but tab and newline), bidi marks, overrides and isolates, zero-width characters.
FORBIDDEN_CHARS = set(map(chr, [*range(0, 9), *range(11, 32), 127, *range(0x80, 0xA0)])) | set(
    "\u200b\u200c\u200d\u2060\ufeff\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    family: str
    name: str
    directory: Path
    spec: dict[str, Any] = field(hash=False, compare=False)

    @property
    def id(self) -> str:
        return f"{self.family}/{self.name}" + ("[heavy]" if self.spec.get("heavy") else "")

    @property
    def prefix(self) -> str:
        return f"/c/{self.family}/{self.name}/"

    def data_file(self) -> Path | None:
        if "file" in self.spec:
            return self.directory / self.spec["file"]
        found = [p for p in self.directory.glob(f"{self.name}.*")
                 if not p.name.endswith(".expected.json") and "." not in p.name[len(self.name) + 1:]]
        if len(found) > 1:
            raise ValueError(f"{self.id}: several data files: {found}")
        return found[0] if found else None


KEYS = {"description", "kind", "source", "defaults", "url", "path", "file", "generate", "status", "headers", "route",
        "route_args", "pages", "outcome", "error_contains", "warning_contains", "stderr_contains", "articles",
        "titles", "match", "stored_text_excludes", "stored_text_includes", "http_status", "retry_after",
        "server_must_not_see", "max_seconds", "heavy", "xfail"}
OUTCOMES = {"ok", "not-modified", "failed"}


def load_cases() -> list[Case]:
    cases = []
    for expected in sorted(CASES_DIR.glob("*/*.expected.json")):
        spec = json.loads(expected.read_text(encoding="utf-8"))
        name = expected.name[: -len(".expected.json")]
        for key in ("description", "outcome"):
            if key not in spec:
                raise ValueError(f"{expected}: missing {key!r}")
        if spec["outcome"] not in OUTCOMES or set(spec) - KEYS:
            raise ValueError(f"{expected}: unknown outcome or keys {sorted(set(spec) - KEYS)}")
        cases.append(Case(expected.parent.name, name, expected.parent, spec))
    return cases


def case_params() -> list[Any]:
    params = []
    for case in load_cases():
        marks = []
        if case.spec.get("xfail"):
            marks.append(pytest.mark.xfail(strict=True, reason=case.spec["xfail"]))
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


# --------------------------------------------------------------------------- the environment


@dataclass
class Env:
    server: LoopbackServer
    template: Path  # an archive holding the earlier articles, copied for each case
    secret_file: Path
    closed_port: int

    def placeholders(self, prefix: str) -> dict[str, str]:
        return {"{{BASE}}": self.server.base_url, "{{PREFIX}}": prefix, "{{SECRET_FILE}}": str(self.secret_file),
                "{{CLOSED}}": f"http://127.0.0.1:{self.closed_port}", "{{HOSTPORT}}": f"127.0.0.1:{self.server.port}",
                "{{CLOSED_PORT}}": str(self.closed_port)}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def hostile_env(tmp_path_factory):
    """One loopback server for every case, and the archive of earlier articles."""
    root = tmp_path_factory.mktemp("hostile")
    secret = root / "secret.txt"
    secret.write_text(f"{SECRET}: this line must never reach the archive\n", encoding="utf-8")
    with LoopbackServer() as server:
        feed_type = {"Content-Type": "application/rss+xml"}
        server.add("/prior/victim.xml", rss(PRIOR_VICTIM, "Victim office"), headers=feed_type)
        server.add("/prior/bystander.xml", rss(PRIOR_BYSTANDER, "Bystander office"), headers=feed_type)
        template = root / "template" / "ipnews.db"
        config = write_config(root / "template.yaml", [
            {"id": "victim", "office": "HOSTILE", "url": server.url("/prior/victim.xml"), "language": "en"},
            {"id": "bystander", "office": "BYSTANDER", "url": server.url("/prior/bystander.xml"), "language": "en"},
        ], defaults=CASE_DEFAULTS)
        result = run(["fetch", "--all"], config, template)
        assert result.exit_code == 0, result.output
        assert query(template, "SELECT count(*) FROM articles") == [(5,)]
        yield Env(server, template, secret, _closed_port())


# --------------------------------------------------------------------------- running a case


@dataclass
class CaseRun:
    case: Case
    db: Path
    exit_code: int
    stderr: str
    seconds: float
    before: dict[str, set[tuple]]
    requested: list[str]
    placeholders: dict[str, str]

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            for key, replacement in self.placeholders.items():
                value = value.replace(key, replacement)
        return value


def _fill(data: bytes, placeholders: dict[str, str]) -> bytes:
    for key, value in placeholders.items():
        data = data.replace(key.encode("ascii"), value.encode("utf-8"))
    return data


def _body(case: Case, spec: dict[str, Any], default_file: Path | None, placeholders: dict[str, str]) -> bytes:
    if "generate" in spec:
        generate = spec["generate"]
        return GENERATORS[generate["name"]](generate.get("args", {}))
    if "file" in spec:
        return _fill((case.directory / spec["file"]).read_bytes(), placeholders)
    if default_file is not None:
        return _fill(default_file.read_bytes(), placeholders)
    return b""


def _routes(case: Case, env: Env, spec: dict[str, Any], path: str, body: bytes, default_type: str) -> None:
    headers = {"Content-Type": default_type, **spec.get("headers", {})}
    if "Content-Type" in spec.get("headers", {}) and spec["headers"]["Content-Type"] is None:
        headers.pop("Content-Type")
    context = Context(server=env.server, prefix=case.prefix, path=path, body=body, status=spec.get("status", 200),
                      headers=headers, args=spec.get("route_args", {}), closed_port=env.closed_port)
    for route_path, route in BEHAVIOURS[spec.get("route", "static")](context).items():
        env.server.add(route_path, route)


def snapshot(db: Path) -> dict[str, set[tuple]]:
    """Every row of the tables that hold archived material."""
    conn = sqlite3.connect(db)
    try:
        return {table: set(conn.execute(f"SELECT * FROM {table}").fetchall())
                for table in ("articles", "article_sources", "article_revisions", "article_snapshots", "fetches")} | {
            "snapshots": set(conn.execute("SELECT id, source_id, url, sha256, size, content FROM snapshots"))}
    finally:
        conn.close()


def run_case(case: Case, env: Env, tmp_path: Path) -> CaseRun:
    spec = case.spec
    placeholders = env.placeholders(case.prefix)
    data_file = case.data_file()
    filename = spec.get("path") or (data_file.name if data_file else "feed.xml")
    path = case.prefix + filename
    kind = spec.get("kind", "feed")
    default_type = content_type_for(filename) if data_file or "." in filename else "application/octet-stream"
    _routes(case, env, spec, path, _body(case, spec, data_file, placeholders), default_type)
    for relative, page in spec.get("pages", {}).items():
        page_spec = {"file": page} if isinstance(page, str) else page
        _routes(case, env, page_spec, case.prefix + relative, _body(case, page_spec, None, placeholders),
                content_type_for(relative) if "." in relative.rsplit("/", 1)[-1] else "text/html")
    canary_items = [{"guid": f"canary-{case.family}-{case.name}-{n}", "title": f"Canary notice {n}",
                     "link": f"{case.prefix}canary/{n}.html", "description": f"A healthy item {n}."} for n in (1, 2)]
    env.server.add(case.prefix + "canary.xml", rss(canary_items, "Canary office"),
                   headers={"Content-Type": "application/rss+xml"})

    url = spec.get("url", env.server.url(path))
    for key, value in placeholders.items():
        url = url.replace(key, value)
    victim = {"id": "victim", "office": "HOSTILE", "name": case.id, "kind": kind, "url": url, "language": "en",
              **spec.get("source", {})}
    sources = [
        victim,
        {"id": "canary", "office": "CANARY", "url": env.server.url(case.prefix + "canary.xml"), "language": "en"},
        {"id": "bystander", "office": "BYSTANDER", "url": env.server.url("/prior/bystander.xml"), "enabled": False},
    ]
    config = write_config(tmp_path / "feeds.yaml", sources, defaults={**CASE_DEFAULTS, **spec.get("defaults", {})})
    db = tmp_path / "archive" / "ipnews.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(env.template, db)
    before = snapshot(db)
    seen_before = len(env.server.requests)
    started = time.monotonic()
    result = run(["fetch", "--all"], config, db)
    seconds = time.monotonic() - started
    requested = [r.path for r in env.server.requests[seen_before:]]
    return CaseRun(case, db, result.exit_code, result.stderr, seconds, before, requested, placeholders)


# --------------------------------------------------------------------------- checks


def rows(db: Path, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


_SCHEME = re.compile(r"^\s*[a-zA-Z][a-zA-Z0-9+.-]*:")


def assert_safe_html(markup: str, where: str, *, allow_relative: bool = False) -> None:
    """Stored HTML: no dangerous element, no event handler or style, only http(s)/mailto URLs
    (and, with ``allow_relative``, URLs without a scheme)."""
    if not markup:
        return
    root = lxml.html.fragment_fromstring(markup, create_parent="div")
    for el in root.iter():
        assert isinstance(el.tag, str), f"{where}: a comment or processing instruction survived: {markup[:200]!r}"
        assert el.tag.lower() not in FORBIDDEN_ELEMENTS, f"{where}: <{el.tag}> survived: {markup[:200]!r}"
        for name, value in el.attrib.items():
            assert not name.lower().startswith("on") and name.lower() != "style", f"{where}: {name}= survived"
            if name.lower() in ("href", "src"):
                relative = allow_relative and not _SCHEME.match(value)
                assert relative or value.startswith(SAFE_URL_PREFIXES), f"{where}: {name}={value!r} survived"


def assert_clean_text(value: str | None, where: str) -> None:
    if value:
        bad = sorted({hex(ord(c)) for c in value if c in FORBIDDEN_CHARS})
        assert not bad, f"{where}: invisible or control characters {bad} in {value[:120]!r}"


def _contains_all(text: str | None, expected: str | list[str], what: str) -> None:
    for part in [expected] if isinstance(expected, str) else expected:
        assert text and part.lower() in text.lower(), f"{what} {text!r} does not contain {part!r}"


def check_case(run_: CaseRun) -> None:
    case, spec, db = run_.case, run_.case.spec, run_.db
    outcome = spec["outcome"]
    context = f"{case.id}: stderr was {run_.stderr.strip()!r}"

    # The run: exit status and time budget.
    assert run_.exit_code == (3 if outcome == "failed" else 0), context
    budget = spec.get("max_seconds", DEFAULT_MAX_SECONDS)
    assert run_.seconds <= budget, f"{case.id}: the run took {run_.seconds:.1f} s, over its {budget} s budget"
    assert query(db, "PRAGMA integrity_check") == [("ok",)]

    # Nothing archived before changed or went missing.
    after = snapshot(db)
    for table, old_rows in run_.before.items():
        missing = old_rows - after[table]
        assert not missing, f"{case.id}: {len(missing)} {table} rows archived before changed or vanished"

    # The canary was archived.
    canary = rows(db, "SELECT * FROM sources WHERE id = 'canary'")[0]
    assert canary["last_error"] is None and canary["last_status"] == 200, canary
    assert query(db, "SELECT count(*) FROM articles WHERE source_id = 'canary'") == [(2,)]

    # The victim's outcome, as recorded.
    state = rows(db, "SELECT * FROM sources WHERE id = 'victim'")[0]
    fetch = rows(db, "SELECT * FROM fetches WHERE source_id = 'victim' ORDER BY id DESC LIMIT 1")[0]
    if outcome == "failed":
        assert state["consecutive_failures"] == 1 and state["last_error"], state
        assert fetch["error"] == state["last_error"]
        assert "\n" not in state["last_error"] and len(state["last_error"]) <= 500, state["last_error"]
        assert f"victim: {state['last_error']}" in run_.stderr, context
        if "error_contains" in spec:
            _contains_all(state["last_error"], spec["error_contains"], "the recorded error")
    else:
        assert state["consecutive_failures"] == 0 and state["last_success"], state
        if "warning_contains" in spec:
            _contains_all(state["last_error"], spec["warning_contains"], "the recorded warning")
        else:
            assert state["last_error"] is None, state
        if outcome == "not-modified":
            assert fetch["status"] == 304, fetch
    if "stderr_contains" in spec:
        _contains_all(run_.stderr, spec["stderr_contains"], "stderr")
    if "http_status" in spec:
        assert state["last_status"] == spec["http_status"], state
    if "retry_after" in spec:
        assert (state["retry_after"] is not None) == spec["retry_after"], state

    # What the victim archived.
    prior_ids = {r[1] for r in run_.before["articles"]}
    new = [r for r in rows(db, "SELECT * FROM articles WHERE source_id = 'victim'") if r["id"] not in prior_ids]
    if "articles" in spec:
        assert len(new) == spec["articles"], f"{case.id}: {[r['title'] for r in new][:10]}"
    elif outcome != "ok":
        assert not new, f"{case.id}: a failed poll archived {[r['title'] for r in new]}"
    if "titles" in spec:
        assert sorted(r["title"] for r in new) == sorted(spec["titles"]), f"{case.id}: titles"
    for wanted in spec.get("match", []):
        wanted = {k: run_.fill(v) for k, v in wanted.items()}
        assert any(all(r.get(k) == v for k, v in wanted.items()) for r in new), (
            f"{case.id}: no article matches {wanted}; got {[{k: r.get(k) for k in wanted} for r in new]}")
    texts = [(f"{r['id']}.{column}", r[column]) for r in new for column in TEXT_COLUMNS if r[column]]
    for where, value in texts:
        if where.endswith(".body_html"):
            assert_safe_html(value, where)
        assert_clean_text(value, where)
    for needle in spec.get("stored_text_excludes", []):
        found = [where for where, value in texts if needle.lower() in value.lower()]
        assert not found, f"{case.id}: {needle!r} stored in {found}"
    for needle in spec.get("stored_text_includes", []):
        assert any(needle.lower() in value.lower() for _, value in texts), f"{case.id}: {needle!r} not stored"
    for prefix in spec.get("server_must_not_see", []):
        asked = [p for p in run_.requested if p.startswith(prefix)]
        assert not asked, f"{case.id}: the server was asked for {asked}"
