"""A seeded, reproducible corpus of office news sites to poll: feeds, news lists, article pages.

``build_corpus(sources=2000, hosts=100, seed=7)`` makes N sources spread over H
hosts. Each host plays one office's website (office, language, page template,
which validators it sends) and is served on its own loopback address
(127.0.1.1, 127.0.1.2, …), so the fetcher's per-host limit, which keys on the
hostname, sees H hosts. About two thirds of the sources are feeds (RSS 2.0,
Atom, RSS 1.0/RDF, JSON Feed; 50 items each, 1–5 KB bodies), the rest are
HTML news lists whose entries link to article pages, in two templates (a
Hanweb/TRS-like one, as Chinese offices use, and a Drupal-like one), most with
a selector recipe and some left to the generic extractor.

Two phases model two polls a few hours apart. In phase 2 a fifth of the feeds
publish 5 new items (dropping their 5 oldest) and revise one or two items, a
tenth only bump their build date (a 200 with nothing new), the rest are
byte-identical (a conditional GET gets 304); 30 % of the news lists gain two
entries. Duplicates are built in: section feeds that repeat items of another
feed of the same office, a GUID repeated inside a feed, and list pages that
link to articles a feed already carries.

The ground truth (which URL each source carries in each phase, which items
were revised) lets the benchmark check that the archive holds exactly the
expected articles. Everything is a pure function of the parameters and seed.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import ipaddress
import json
import pickle
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from .text import TextPool, body_size

FEED_SHARE = 0.6755  # 1,351 of 2,000 sources in the reader measurement were feeds
FEED_FORMATS = (("rss", 0.45), ("atom", 0.25), ("rdf", 0.15), ("json", 0.15))
ITEMS_PER_FEED = 50
PAGE_ITEMS = 10  # entries on a news list page (each one an article page to fetch on the first poll)
FALLBACK_SHARE = 0.25  # page sources without an article recipe: the generic extractor reads them

OFFICES = (
    ("WIPO", "en"), ("EPO", "en"), ("EUIPO", "en"), ("USPTO", "en"), ("UKIPO", "en"), ("CNIPA", "zh"),
    ("JPO", "ja"), ("KIPO", "ko"), ("DPMA", "de"), ("INPI", "fr"), ("OEPM", "es"), ("IPAU", "en"),
    ("CIPO", "fr"), ("IPOS", "en"), ("NCAC", "zh"), ("IMPI", "es"), ("IGE", "de"), ("TIPO", "zh"),
)
TOPICS = {
    "en": ("Patents", "Trademarks", "Designs", "Copyright", "PCT", "Madrid", "Fees", "Events"),
    "de": ("Patente", "Marken", "Designs", "Gebühren", "Veranstaltungen"),
    "fr": ("Brevets", "Marques", "Dessins et modèles", "Redevances", "Événements"),
    "es": ("Patentes", "Marcas", "Diseños", "Tasas", "Eventos"),
    "zh": ("专利", "商标", "地理标志", "工作动态", "政策法规"),
    "ja": ("特許", "商標", "意匠", "お知らせ", "報道発表"),
    "ko": ("특허", "상표", "디자인", "보도자료", "공지사항"),
}
PHASE1_DATE = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
PHASE2_DATE = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CORPUS_VERSION = 4  # bump when the generator changes: cached corpora are rebuilt


# --------------------------------------------------------------------------- records


@dataclass
class Resource:
    """One URL's answer in one phase."""

    body: bytes
    content_type: str
    gz: bytes | None  # pre-compressed body (served when the client accepts gzip)
    etag: str | None
    last_modified: str | None
    kind: str  # feed | list | article | robots


@dataclass
class Host:
    name: str  # the loopback address that stands for the host
    office: str
    language: str
    template: str  # "hanweb" | "drupal": how its news lists and article pages look
    validators: str  # "both" | "etag" | "lm"
    gbk: bool  # Chinese pages served in GBK with a <meta charset>


@dataclass
class SourceSpec:
    id: str
    office: str
    name: str
    kind: str  # feed | page
    host: str
    path: str
    language: str
    format: str  # rss | atom | rdf | json | hanweb | drupal
    recipe: bool = True  # page sources: an article recipe (else the generic extractor)


@dataclass
class Item:
    n: int
    path: str
    guid: str | None
    title: str
    summary: str
    paragraphs: list[str]
    published: datetime
    topics: tuple[str, ...]
    language: str
    author: str | None = None


@dataclass
class Corpus:
    params: dict
    hosts: list[Host]
    sources: list[SourceSpec]
    # phase → host → path → Resource (phase 2 shares unchanged resources with phase 1)
    phases: list[dict[str, dict[str, Resource]]]
    # phase → source id → item paths the source carries (unique, in order)
    carried: list[dict[str, list[str]]]
    revised: list[tuple[str, str]] = field(default_factory=list)  # (source id, path) revised in phase 2
    entry_ids: list[dict[str, list[str]]] = field(default_factory=list)  # phase → feed id → entry keys

    # ---- ground truth -----------------------------------------------------------------

    def source_ids(self, kinds: tuple[str, ...] = ("feed", "page")) -> list[str]:
        return [s.id for s in self.sources if s.kind in kinds]

    def expected_articles(self, phase: int, kinds: tuple[str, ...] = ("feed", "page")) -> int:
        """Unique articles after polling phases 1..phase: one per URL (per host), across sources."""
        wanted = set(self.source_ids(kinds))
        by_id = {s.id: s for s in self.sources}
        urls = set()
        for p in range(phase):
            for sid, paths in self.carried[p].items():
                if sid in wanted:
                    urls.update((by_id[sid].host, path) for path in paths)
        return len(urls)

    def expected_links(self, phase: int, kinds: tuple[str, ...] = ("feed", "page")) -> int:
        """Rows of article_sources: one per (source, item) ever carried."""
        wanted = set(self.source_ids(kinds))
        pairs = set()
        for p in range(phase):
            for sid, paths in self.carried[p].items():
                if sid in wanted:
                    pairs.update((sid, path) for path in paths)
        return len(pairs)

    def expected_entries(self, phase: int) -> int:
        """What a feed reader stores: one entry per (feed, entry id) ever seen, no cross-feed dedup."""
        pairs = set()
        for p in range(phase):
            for sid, keys in self.entry_ids[p].items():
                pairs.update((sid, k) for k in keys)
        return len(pairs)

    def expected_revisions(self, kinds: tuple[str, ...] = ("feed", "page")) -> int:
        wanted = set(self.source_ids(kinds))
        return sum(1 for sid, _ in self.revised if sid in wanted)

    def feed_entries_in_phase(self, phase: int) -> int:
        return sum(len(v) for v in self.entry_ids[phase - 1].values())

    def stats(self) -> dict:
        kinds: dict[str, int] = {}
        for s in self.sources:
            kinds[s.format] = kinds.get(s.format, 0) + 1
        phase1 = self.phases[0]
        size = sum(len(r.body) for h in phase1.values() for r in h.values())
        gz = sum(len(r.gz or r.body) for h in phase1.values() for r in h.values())
        langs: dict[str, int] = {}
        for s in self.sources:
            langs[s.language] = langs.get(s.language, 0) + 1
        return {
            "sources": len(self.sources), "hosts": len(self.hosts),
            "feeds": sum(s.kind == "feed" for s in self.sources),
            "pages": sum(s.kind == "page" for s in self.sources),
            "formats": kinds, "languages": langs,
            "feed_entries": self.feed_entries_in_phase(1),
            "articles_phase1": self.expected_articles(1), "articles_phase2": self.expected_articles(2),
            "urls": sum(len(h) for h in phase1.values()),
            "bytes": size, "gzip_bytes": gz,
        }


# --------------------------------------------------------------------------- helpers


def host_addresses(count: int) -> list[str]:
    """Loopback addresses standing for distinct hosts: 127.0.1.1, 127.0.1.2, … (no .0 or .255)."""
    out = []
    address = ipaddress.ip_address("127.0.1.1")
    while len(out) < count:
        if address.packed[-1] not in (0, 255):
            out.append(str(address))
        address += 1
    return out


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha1(body).hexdigest()[:16] + '"'


def _http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def _resource(host: Host, body: bytes, content_type: str, kind: str, modified: datetime) -> Resource:
    return Resource(
        body=body,
        content_type=content_type,
        gz=gzip.compress(body, 6, mtime=0) if len(body) > 512 else None,
        etag=_etag(body) if host.validators in ("both", "etag") else None,
        last_modified=_http_date(modified) if host.validators in ("both", "lm") else None,
        kind=kind,
    )


def _x(text: str) -> str:
    return html.escape(text, quote=False)


def _body_html(item: Item) -> str:
    return "".join(f"<p>{_x(p)}</p>" for p in item.paragraphs)


# --------------------------------------------------------------------------- feed formats


def _rss(spec: SourceSpec, items: list[Item], built: datetime, latin1: bool) -> bytes:
    out = [
        f'<?xml version="1.0" encoding="{"ISO-8859-1" if latin1 else "UTF-8"}"?>\n'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
        f"<channel>\n<title>{_x(spec.name)}</title>\n<link>/</link>\n"
        f"<description>{_x(spec.office)} news</description>\n<language>{spec.language}</language>\n"
        f"<lastBuildDate>{format_datetime(built)}</lastBuildDate>\n"
        f'<atom:link href="{spec.path}" rel="self" type="application/rss+xml"/>\n'
    ]
    for item in items:
        guid = ""
        if item.guid is not None:
            permalink = "" if item.guid.startswith("/") else ' isPermaLink="false"'
            guid = f"<guid{permalink}>{_x(item.guid)}</guid>"
        cats = "".join(f"<category>{_x(t)}</category>" for t in item.topics)
        author = f"<dc:creator>{_x(item.author)}</dc:creator>" if item.author else ""
        out.append(
            f"<item><title>{_x(item.title)}</title><link>{item.path}</link>"
            f"<description><![CDATA[{_body_html(item)}]]></description>{cats}"
            f"<pubDate>{format_datetime(item.published)}</pubDate>{guid}{author}</item>\n"
        )
    out.append("</channel>\n</rss>\n")
    text = "".join(out)
    return text.encode("latin-1", "xmlcharrefreplace") if latin1 else text.encode()


def _atom(spec: SourceSpec, items: list[Item], built: datetime) -> bytes:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{spec.language}">\n'
        f"<id>tag:{spec.host},2005:{spec.path}</id>\n<title>{_x(spec.name)}</title>\n"
        f"<updated>{built.isoformat()}</updated>\n"
        f'<link rel="self" type="application/atom+xml" href="{spec.path}"/>\n'
        '<link rel="alternate" type="text/html" href="/"/>\n'
    ]
    for item in items:
        cats = "".join(f'<category term="{html.escape(t)}"/>' for t in item.topics)
        author = f"<author><name>{_x(item.author)}</name></author>" if item.author else ""
        out.append(
            f"<entry><id>{_x(_atom_id(spec, item))}</id><title>{_x(item.title)}</title>"
            f'<link rel="alternate" type="text/html" href="{item.path}"/>'
            f"<published>{item.published.isoformat()}</published><updated>{item.published.isoformat()}</updated>"
            f"{author}{cats}<summary>{_x(item.summary)}</summary>"
            f'<content type="html">{_x(_body_html(item))}</content></entry>\n'
        )
    out.append("</feed>\n")
    return "".join(out).encode()


def _atom_id(spec: SourceSpec, item: Item) -> str:
    """Atom ids must be absolute IRIs: an item borrowed from an RSS feed gets a tag: id."""
    guid = item.guid or item.path
    return guid if guid.startswith("tag:") else f"tag:{spec.host},2005:{guid.lstrip('/')}"


def _rdf(spec: SourceSpec, items: list[Item], built: datetime) -> bytes:
    seq = "".join(f'<rdf:li rdf:resource="{i.path}"/>' for i in items)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rdf:RDF xmlns="http://purl.org/rss/1.0/" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        f'xmlns:content="http://purl.org/rss/1.0/modules/content/" xml:lang="{spec.language}">\n'
        f'<channel rdf:about="{spec.path}"><title>{_x(spec.name)}</title><link>/</link>'
        f"<description>{_x(spec.office)}</description><dc:date>{built.isoformat()}</dc:date>"
        f"<items><rdf:Seq>{seq}</rdf:Seq></items></channel>\n"
    ]
    for item in items:
        subjects = "".join(f"<dc:subject>{_x(t)}</dc:subject>" for t in item.topics)
        out.append(
            f'<item rdf:about="{item.path}"><title>{_x(item.title)}</title><link>{item.path}</link>'
            f"<description>{_x(item.summary)}</description>"
            f"<content:encoded><![CDATA[{_body_html(item)}]]></content:encoded>"
            f"<dc:date>{item.published.isoformat()}</dc:date>{subjects}</item>\n"
        )
    out.append("</rdf:RDF>\n")
    return "".join(out).encode()


def _json_feed(spec: SourceSpec, items: list[Item], built: datetime) -> bytes:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": spec.name,
        "home_page_url": "/",
        "feed_url": spec.path,
        "language": spec.language,
        "authors": [{"name": spec.office}],
        "items": [
            {
                "id": item.guid or item.path,
                "url": item.path,
                "title": item.title,
                "summary": item.summary,
                "content_html": _body_html(item),
                "date_published": item.published.isoformat(),
                "tags": list(item.topics),
                **({"authors": [{"name": item.author}]} if item.author else {}),
            }
            for item in items
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode()


FEED_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "rdf": "application/rdf+xml",
    "json": "application/feed+json",
}


# --------------------------------------------------------------------------- page templates

_HANWEB_CHROME = (
    '<div class="top"><a class="logo" href="/">{office}</a><div class="top_link"><a href="/">首页</a> | '
    '<a href="/col/col1/index.html">无障碍</a></div></div>\n<div class="nav"><ul><li><a href="/">首页</a></li>'
    '<li><a href="/col/col2/index.html">机构</a></li><li class="on"><a href="/col/col53/index.html">新闻发布</a></li>'
    "</ul></div>\n"
)
_HANWEB_FOOTER = '<div class="footer"><p>主办单位：{office}　版权所有：{office}</p><p>地址：北京市海淀区</p></div>\n'
_DRUPAL_CHROME = (
    '<header class="site-header"><a href="/" class="logo">{office}</a><nav><ul><li><a href="/">Home</a></li>'
    '<li><a href="/about">About</a></li><li><a href="/news">News</a></li><li><a href="/contact">Contact</a></li>'
    "</ul></nav></header>\n"
)
_DRUPAL_FOOTER = (
    '<footer class="site-footer"><ul><li><a href="/privacy">Privacy</a></li><li><a href="/legal">Legal notice</a>'
    "</li><li><a href=\"/accessibility\">Accessibility</a></li></ul><p>© {office}</p></footer>\n"
)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def _list_date(host: Host, moment: datetime) -> str:
    if host.template == "hanweb":
        return moment.strftime("%Y-%m-%d")
    if host.language == "en":
        return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"
    return moment.strftime("%d.%m.%Y")


def _page_doc(host: Host, title: str, inner: str) -> str:
    charset = "gbk" if host.gbk else "utf-8"
    chrome, footer = (_HANWEB_CHROME, _HANWEB_FOOTER) if host.template == "hanweb" else (_DRUPAL_CHROME, _DRUPAL_FOOTER)
    return (
        f'<!DOCTYPE html>\n<html lang="{host.language}">\n<head>\n<meta charset="{charset}">\n'
        f"<title>{_x(title)} - {_x(host.office)}</title>\n"
        '<link rel="stylesheet" href="/css/style.css">\n<script src="/js/site.js"></script>\n</head>\n<body>\n'
        + chrome.format(office=_x(host.office))
        + inner
        + footer.format(office=_x(host.office))
        + "</body>\n</html>\n"
    )


def _encode_page(host: Host, text: str) -> tuple[bytes, str]:
    if host.gbk:
        return text.encode("gbk", "xmlcharrefreplace"), "text/html"
    return text.encode(), "text/html; charset=utf-8"


def _list_page(host: Host, spec: SourceSpec, items: list[Item]) -> str:
    if host.template == "hanweb":
        rows = "".join(
            f'<li><a href="{i.path}" title="{html.escape(i.title)}" target="_blank">{_x(i.title)}</a>'
            f"<span>{_list_date(host, i.published)}</span></li>\n"
            for i in items
        )
        inner = (
            f'<div class="main"><div class="position">当前位置：<a href="/">首页</a> &gt; {_x(spec.name)}</div>\n'
            f'<div class="list_con"><ul class="list clearfix">\n{rows}</ul>\n'
            '<div class="page"><span>共1页</span></div></div></div>\n'
        )
    else:
        rows = "".join(
            f'<div class="views-row"><h3 class="title"><a href="{i.path}">{_x(i.title)}</a></h3>'
            f'<div class="date">{_list_date(host, i.published)}</div><p class="teaser">{_x(i.summary)}</p></div>\n'
            for i in items
        )
        inner = f'<main><h1>{_x(spec.name)}</h1><div class="view-content">\n{rows}</div></main>\n'
    return _page_doc(host, spec.name, inner)


def _article_page(host: Host, item: Item) -> str:
    body = _body_html(item)
    if host.template == "hanweb":
        stamp = f"{item.published.year}/{item.published.month}/{item.published.day} {item.published:%H:%M:%S}"
        inner = (
            f'<div class="main"><div class="detail"><h1>{_x(item.title)}</h1>'
            f'<div class="info"><span class="time">发布时间：{stamp}</span>'
            f'<span class="source">来源：{_x(item.author or host.office)}</span></div>'
            f'<div class="article"><div id="zoom">{body}</div>'
            '<div class="share">分享到：<a href="#" class="wx">微信</a> <a href="#" class="wb">微博</a></div></div>'
            '<div class="print"><a href="javascript:window.print()">【打印本页】</a></div></div></div>\n'
        )
    else:
        topics = "".join(f'<a href="/topics/{html.escape(t)}">{_x(t)}</a> ' for t in item.topics)
        inner = (
            f'<main><article class="node"><h1 class="page-title">{_x(item.title)}</h1>'
            f'<div class="meta"><span class="date">{_list_date(host, item.published)}</span></div>'
            f'<div class="field--body">{body}</div><div class="topics">{topics}</div>'
            '<div class="share"><a href="#">Share</a> <a href="#">Print</a></div></article></main>\n'
        )
    return _page_doc(host, item.title, inner)


# --------------------------------------------------------------------------- the generator


class _Maker:
    def __init__(self, seed: int):
        self.seed = seed
        self.pool = TextPool(seed)
        self.counter = 0

    def item(self, rng: random.Random, host: Host, language: str, path_style: str, when: datetime,
             guid_style: str) -> Item:
        self.counter += 1
        n = self.counter
        if path_style == "hanweb":
            path = f"/art/{when.year}/{when.month}/{when.day}/art_53_{n}.html"
        elif path_style == "drupal":
            path = f"/{language}/news/item-{n}"
        else:
            path = f"/news/{when.year}/{when:%m}/n{n}.html"
        guid = {
            "code": f"PR/{when.year}/{n}",
            "link": path,
            "tag": f"tag:{host.name},{when.year}:news/{n}",
            "none": None,
        }[guid_style]
        topics = tuple(rng.sample(TOPICS[language], k=rng.randint(0, 2)))
        return Item(
            n=n, path=path, guid=guid, title=self.pool.title(rng, language) + f" ({n})",
            summary=self.pool.summary(rng, language),
            paragraphs=self.pool.paragraphs(rng, language, body_size(rng)),
            published=when, topics=topics, language=language,
            author=host.office if rng.random() < 0.4 else None,
        )


def build_corpus(
    sources: int = 2000,
    hosts: int | None = None,
    seed: int = 7,
    *,
    items_per_feed: int = ITEMS_PER_FEED,
    page_items: int = PAGE_ITEMS,
    fallback_share: float = FALLBACK_SHARE,
) -> Corpus:
    hosts = hosts or max(4, sources // 20)
    rng = random.Random(seed)
    maker = _Maker(seed)
    host_list = []
    for i, name in enumerate(host_addresses(hosts)):
        office, language = OFFICES[i % len(OFFICES)]
        host_list.append(Host(
            name=name, office=office, language=language,
            template="hanweb" if language in ("zh", "ja", "ko") or rng.random() < 0.2 else "drupal",
            validators=rng.choices(("both", "etag", "lm"), weights=(8, 1, 1))[0],
            gbk=language == "zh" and rng.random() < 0.3,
        ))
    n_feeds = round(sources * FEED_SHARE)
    kinds = ["feed"] * n_feeds + ["page"] * (sources - n_feeds)
    rng.shuffle(kinds)
    formats, weights = zip(*FEED_FORMATS, strict=True)

    phase1: dict[str, dict[str, Resource]] = {h.name: {} for h in host_list}
    carried1: dict[str, list[str]] = {}
    entries1: dict[str, list[str]] = {}
    specs: list[SourceSpec] = []
    # per source, what phase 2 needs: (spec, host, items, extra)
    state: list[tuple[SourceSpec, Host, list[Item], dict]] = []
    host_items: dict[str, list[Item]] = {h.name: [] for h in host_list}  # feed items, for duplicates
    host_shared: dict[str, set[str]] = {h.name: set() for h in host_list}  # paths in >1 source

    for index, kind in enumerate(kinds):
        host = host_list[index % hosts]
        language = host.language if rng.random() < 0.75 else "en"
        sid = f"{host.office.lower()}-{kind}-{index:05d}"
        srng = random.Random(f"{seed}:{sid}")
        end = datetime(2012, 1, 1, tzinfo=UTC) + timedelta(days=srng.randrange(0, 365 * 14 + 150))
        end = end.replace(hour=srng.randrange(6, 19), minute=srng.choice((0, 15, 30, 45)))
        if kind == "feed":
            fmt = srng.choices(formats, weights=weights)[0]
            path = f"/feeds/{sid}." + {"rss": "xml", "atom": "atom", "rdf": "rdf", "json": "json"}[fmt]
            spec = SourceSpec(sid, host.office, f"{host.office} news {index}", "feed", host.name, path, language, fmt)
            guid_style = {"rss": srng.choice(("code", "code", "link", "none")), "atom": "tag", "rdf": "link",
                          "json": srng.choice(("link", "code"))}[fmt]
            items: list[Item] = []
            when = end
            # Section feeds repeat a few items of another feed of the same office (same URL).
            borrowed = []
            if host_items[host.name] and srng.random() < 0.3:
                pool = [i for i in host_items[host.name] if i.language == language]
                borrowed = srng.sample(pool, k=min(len(pool), srng.randint(3, 8)))
            for _ in range(items_per_feed - len(borrowed)):
                items.append(maker.item(srng, host, language, "news", when, guid_style))
                when -= timedelta(days=srng.randint(1, 10), hours=srng.randint(0, 12))
            for item in borrowed:
                host_shared[host.name].add(item.path)
                items.insert(srng.randrange(len(items) + 1), item)
            items.sort(key=lambda i: i.published, reverse=True)
            host_items[host.name].extend(i for i in items if i not in borrowed)
            extra = {"latin1": fmt == "rss" and language in ("de", "fr", "es") and srng.random() < 0.3,
                     "repeat": fmt == "rss" and srng.random() < 0.05}
            specs.append(spec)
            state.append((spec, host, items, extra))
        else:
            recipe = srng.random() >= fallback_share
            spec = SourceSpec(sid, host.office, f"{host.office} news list {index}", "page", host.name,
                              f"/col/col{index}/index.html" if host.template == "hanweb" else f"/{language}/news-{index}",
                              language, host.template, recipe)
            items = []
            when = end
            for _ in range(page_items):
                items.append(maker.item(srng, host, language, host.template, when, "none"))
                when -= timedelta(days=srng.randint(1, 10))
            # A news list may link to an article an office feed already carries.
            extra = {"linked": []}
            pool = [i for i in host_items[host.name] if i.language == language and i.path not in host_shared[host.name]]
            if pool and srng.random() < 0.2:
                linked = srng.choice(pool)
                host_shared[host.name].add(linked.path)
                items.insert(1, linked)
                extra["linked"].append(linked.path)
            specs.append(spec)
            state.append((spec, host, items, extra))

    # ---- phase 1 -----------------------------------------------------------------------
    for spec, host, items, extra in state:
        _render_source(spec, host, items, extra, PHASE1_DATE, phase1, carried1, entries1)
    for host in host_list:
        phase1[host.name]["/robots.txt"] = Resource(
            b"User-agent: *\nDisallow: /private/\n", "text/plain", None, None, None, "robots")

    # ---- phase 2 -----------------------------------------------------------------------
    phase2 = {name: dict(routes) for name, routes in phase1.items()}
    carried2: dict[str, list[str]] = {}
    entries2: dict[str, list[str]] = {}
    revised: list[tuple[str, str]] = []
    for spec, host, items, extra in state:
        prng = random.Random(f"{seed}:{spec.id}:phase2")
        roll = prng.random()
        if spec.kind == "feed":
            if roll < 0.2:  # news: 5 new items, the 5 oldest drop off, 1–2 items revised
                guid_style = "none" if items[0].guid is None else (
                    "tag" if spec.format == "atom" else "link" if items[0].guid.startswith("/") else "code")
                start = max(i.published for i in items)
                fresh = [maker.item(prng, host, spec.language, "news", start + timedelta(days=k + 1), guid_style)
                         for k in range(5)]
                kept = items[:-5]
                candidates = [i for i in kept if i.path not in host_shared[host.name]]
                new_items = [*reversed(fresh)]
                for item in kept:
                    new_items.append(item)
                for old in prng.sample(candidates, k=min(len(candidates), prng.randint(1, 2))):
                    changed = Item(**{**old.__dict__, "paragraphs": [*old.paragraphs[:-1],
                                   old.paragraphs[-1] + " " + maker.pool.summary(prng, spec.language)]})
                    new_items[new_items.index(old)] = changed
                    revised.append((spec.id, old.path))
                _render_source(spec, host, new_items, extra, PHASE2_DATE, phase2, carried2, entries2)
            elif roll < 0.3:  # only the build date moves: a 200 with nothing new
                _render_source(spec, host, items, extra, PHASE2_DATE, phase2, carried2, entries2, touch=True)
            else:
                carried2[spec.id] = carried1[spec.id]
                entries2[spec.id] = entries1[spec.id]
        else:
            if roll < 0.3:  # two new entries on the list, two old ones drop off
                start = max(i.published for i in items)
                fresh = [maker.item(prng, host, spec.language, host.template, start + timedelta(days=k + 1), "none")
                         for k in range(2)]
                new_items = [*reversed(fresh), *items[:-2]]
                _render_source(spec, host, new_items, extra, PHASE2_DATE, phase2, carried2, entries2)
            else:
                carried2[spec.id] = carried1[spec.id]
    params = {"sources": sources, "hosts": hosts, "seed": seed, "items_per_feed": items_per_feed,
              "page_items": page_items, "fallback_share": fallback_share, "version": CORPUS_VERSION}
    return Corpus(params=params, hosts=host_list, sources=specs, phases=[phase1, phase2],
                  carried=[carried1, carried2], revised=revised, entry_ids=[entries1, entries2])


def _render_source(spec, host, items, extra, moment, routes, carried, entries, touch=False) -> None:
    if spec.kind == "feed":
        shown = list(items)
        if extra.get("repeat") and len(shown) > 3:
            shown.insert(3, shown[1])  # the same GUID twice in one feed
        built = moment if touch or moment == PHASE1_DATE else moment
        if spec.format == "rss":
            body = _rss(spec, shown, built, extra.get("latin1", False))
            ctype = "application/rss+xml" if extra.get("latin1") else FEED_TYPES["rss"]
        elif spec.format == "atom":
            body, ctype = _atom(spec, shown, built), FEED_TYPES["atom"]
        elif spec.format == "rdf":
            body, ctype = _rdf(spec, shown, built), FEED_TYPES["rdf"]
        else:
            body, ctype = _json_feed(spec, shown, built), FEED_TYPES["json"]
        routes[host.name][spec.path] = _resource(host, body, ctype, "feed", moment)
        carried[spec.id] = list(dict.fromkeys(i.path for i in items))
        entries[spec.id] = list(dict.fromkeys(i.guid or i.path for i in items))
        return
    body, ctype = _encode_page(host, _list_page(host, spec, items))
    routes[host.name][spec.path] = _resource(host, body, ctype, "list", moment)
    for item in items:
        if item.path in routes[host.name] and routes[host.name][item.path].kind == "article":
            continue
        page, page_type = _encode_page(host, _article_page(host, item))
        routes[host.name][item.path] = _resource(host, page, page_type, "article", moment)
    carried[spec.id] = list(dict.fromkeys(i.path for i in items))


# --------------------------------------------------------------------------- files for the runners


def config_yaml(corpus: Corpus, port: int, kinds: tuple[str, ...] = ("feed", "page")) -> str:
    """feeds.yaml for ipnews, every source on its host's loopback address and the server's port."""
    lines = ["defaults:", "  interval: 1h", "  contact: https://github.com/ipnews/ipnews#benchmarks", "sources:"]
    for s in corpus.sources:
        if s.kind not in kinds:
            continue
        lines += [f"  - id: {s.id}", f"    office: {s.office}", f"    name: {json.dumps(s.name)}",
                  f"    kind: {s.kind}", f"    url: http://{s.host}:{port}{s.path}", f"    language: {s.language}"]
        if s.kind != "page":
            continue
        if s.format == "hanweb":
            lines += ["    timezone: Asia/Shanghai", "    list:", '      item: "ul.list li"', '      date: "span"']
            if s.recipe:
                lines += ["    article:", '      title: "div.detail h1"', '      date: ".info .time"',
                          '      source: ".info .source"', '      body: "div.article"',
                          '      remove: [".share", ".print"]']
        else:
            lines += ["    date_order: dmy", "    list:", '      item: "div.views-row"', '      date: ".date"']
            if s.recipe:
                lines += ["    article:", '      title: "h1.page-title"', '      date: ".meta .date"',
                          '      topics: ".topics a"', '      body: "div.field--body"', '      remove: [".share"]']
    return "\n".join(lines) + "\n"


def feed_urls(corpus: Corpus, port: int) -> list[str]:
    return [f"http://{s.host}:{port}{s.path}" for s in corpus.sources if s.kind == "feed"]


def cache_path(out_dir: Path, sources: int, hosts: int | None, seed: int) -> Path:
    hosts = hosts or max(4, sources // 20)
    return Path(out_dir) / f"corpus-v{CORPUS_VERSION}-s{sources}-h{hosts}-seed{seed}.pickle"


def load_or_build(out_dir: Path, sources: int, hosts: int | None, seed: int) -> tuple[Corpus, Path, float]:
    """The corpus from its cache file, else built and cached; also returns the build seconds (0 if cached)."""
    import time

    path = cache_path(out_dir, sources, hosts, seed)
    if path.exists():
        with path.open("rb") as f:
            return pickle.load(f), path, 0.0
    started = time.perf_counter()
    corpus = build_corpus(sources, hosts, seed)
    seconds = time.perf_counter() - started
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        pickle.dump(corpus, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return corpus, path, seconds


def load(path: Path) -> Corpus:
    with Path(path).open("rb") as f:
        return pickle.load(f)


if __name__ == "__main__":  # a quick look: python -m benchmarks.corpus 200
    import sys
    import time

    started = time.perf_counter()
    built = build_corpus(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
    print(f"built in {time.perf_counter() - started:.1f} s")
    print(json.dumps(built.stats(), indent=1))
