"""OPML out of the config and back in: round trip, comments kept, duplicates skipped, hostile XML refused."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from aggregator.config import load_config, parse_config
from aggregator.exceptions import ConfigError
from aggregator.opml import IPNEWS_NS, MAX_OPML_BYTES, import_opml, read_opml, sources_to_opml

from conftest import write_config

CONFIG = """\
# Our sources. Keep this comment!
defaults:
  interval: 6h   # poll four times a day

sources:
  # ---- WIPO
  - id: wipo-pressroom-en
    office: WIPO
    name: WIPO press releases & news <en>
    kind: feed
    url: https://www.wipo.int/pressroom/en/rss.xml
    language: en
  - id: wipo-pressroom-es   # translations
    office: WIPO
    name: WIPO comunicados
    url: https://www.wipo.int/pressroom/es/rss.xml
    language: es
    enabled: false

  # ---- CNIPA
  - id: cnipa-zh-news
    office: CNIPA
    name: 国家知识产权局新闻
    kind: page
    url: https://www.cnipa.gov.cn/col/col53/index.html
    language: zh
    list:
      item: "ul.list li"     # each news item
  - id: epo-news
    office: EPO
    url: https://www.epo.org/en/news-events/rss
"""


def opml(*outlines: str, head: str = "") -> str:
    return f'<?xml version="1.0" encoding="utf-8"?><opml version="2.0">{head}<head><title>t</title></head><body>' \
           f'{"".join(outlines)}</body></opml>'


def feed(url: str, text: str = "A feed", **attrs: str) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return f'<outline type="rss" text="{text}" xmlUrl="{url}"{extra}/>'


def folder(text: str, *children: str) -> str:
    return f'<outline text="{text}">{"".join(children)}</outline>'


def urls(config_text: str, kind: str | None = "feed") -> list[str]:
    return [s.url for s in parse_config(config_text).sources if kind is None or s.kind == kind]


# --- export ----------------------------------------------------------------------------------------


def test_sources_to_opml_groups_by_office_and_keeps_page_sources():
    sources = parse_config(CONFIG).sources
    root = ET.fromstring(sources_to_opml(sources, title="Mine & yours").encode())
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "Mine & yours"
    assert [o.get("text") for o in root.findall("body/outline")] == ["WIPO", "CNIPA", "EPO"]
    wipo = root.findall("body/outline")[0].findall("outline")
    assert [(o.get("type"), o.get("xmlUrl"), o.get("category")) for o in wipo] == [
        ("rss", "https://www.wipo.int/pressroom/en/rss.xml", "WIPO"),
        ("rss", "https://www.wipo.int/pressroom/es/rss.xml", "WIPO"),
    ]
    assert wipo[0].get("text") == wipo[0].get("title") == "WIPO press releases & news <en>"
    assert wipo[0].get(f"{{{IPNEWS_NS}}}id") == "wipo-pressroom-en"
    assert wipo[0].get(f"{{{IPNEWS_NS}}}language") == "en"
    assert wipo[1].get(f"{{{IPNEWS_NS}}}enabled") == "false" and wipo[0].get(f"{{{IPNEWS_NS}}}enabled") is None
    page = root.find("body/outline[@text='CNIPA']/outline")
    assert (page.get("type"), page.get("url"), page.get("xmlUrl")) == (
        "link", "https://www.cnipa.gov.cn/col/col53/index.html", None)
    assert page.get("text") == "国家知识产权局新闻"


# --- round trip ------------------------------------------------------------------------------------


@pytest.mark.parametrize("empty", ["", "# nothing yet\n", "sources: []\n", "defaults:\n  interval: 1h\n"])
def test_round_trip_into_an_empty_config(empty):
    original = parse_config(CONFIG).sources
    new_text, added = import_opml(sources_to_opml(original), empty)
    imported = parse_config(new_text).sources
    feeds = [s for s in original if s.kind == "feed"]
    assert [s.url for s in imported] == [s.url for s in feeds]  # page sources need selectors: not imported
    assert added == [s.id for s in imported] == [s.id for s in feeds]  # ipnews:id kept
    assert [(s.office, s.name, s.language, s.enabled, s.kind) for s in imported] == [
        (s.office, s.name, s.language, s.enabled, "feed") for s in feeds]
    assert new_text.startswith(empty.replace("sources: []\n", ""))


def test_round_trip_into_the_same_config_adds_nothing():
    new_text, added = import_opml(sources_to_opml(parse_config(CONFIG).sources), CONFIG)
    assert (new_text, added) == (CONFIG, [])


# --- editing the config as text --------------------------------------------------------------------


def test_import_appends_to_the_list_and_keeps_every_comment():
    doc = opml(folder("JPO", feed("https://www.jpo.go.jp/news/rss.xml", "JPO news")))
    new_text, added = import_opml(doc, CONFIG)
    assert added == ["jpo-news"]
    assert new_text.startswith(CONFIG)  # byte for byte, comments and all
    tail = new_text[len(CONFIG):]
    assert "\n  - id: \"jpo-news\"\n    office: \"JPO\"\n" in tail and "kind: feed" in tail
    assert urls(new_text)[-1] == "https://www.jpo.go.jp/news/rss.xml"


def test_import_inserts_before_a_later_top_level_key():
    config = (
        "sources:\n"
        "- id: a   # zero-indented list\n"
        "  office: A\n"
        "  url: https://a.example/rss\n"
        "\n"
        "# Settings for every source\n"
        "defaults:\n"
        "  interval: 2h\n"
    )
    new_text, added = import_opml(opml(feed("https://b.example/rss", "B feed")), config)
    assert added == ["b-feed"]
    lines = new_text.splitlines()
    assert lines[:4] == config.splitlines()[:4]
    assert lines[-4:] == ["", "# Settings for every source", "defaults:", "  interval: 2h"]
    assert "- id: \"b-feed\"" in lines  # at the list's own indentation
    config_out = parse_config(new_text)
    assert [s.id for s in config_out.sources] == ["a", "b-feed"] and config_out.settings.interval == 7200


@pytest.mark.parametrize("config", [
    "sources: ~   # none yet\ndefaults: {interval: 1h}\n",
    "sources:\n# none yet\ndefaults: {interval: 1h}\n",
    "defaults: {interval: 1h}\n",
])
def test_import_fills_an_empty_or_missing_sources_list(config):
    new_text, added = import_opml(opml(feed("https://b.example/rss", "B")), config)
    assert added == ["b"] and urls(new_text) == ["https://b.example/rss"]
    assert "# none yet" in new_text or "none yet" not in config
    assert parse_config(new_text).settings.interval == 3600


def test_import_into_a_json_config_stays_json(tmp_path):
    path = write_config(tmp_path / "feeds.yaml", [{"id": "a", "office": "A", "url": "https://a.example/rss"}])
    new_text, added = import_opml(opml(feed("https://b.example/rss", "国家知识产权局")), path.read_text())
    data = json.loads(new_text)
    assert [s["url"] for s in data["sources"]] == ["https://a.example/rss", "https://b.example/rss"]
    assert data["sources"][1]["name"] == "国家知识产权局"
    path.write_text(new_text)
    assert [s.id for s in load_config(path).sources] == ["a", "b-example-rss"]  # no Latin name: id from the URL


def test_names_that_yaml_would_misread_come_back_as_written():
    names = ["yes", "2024-05-01", "null", "a: b # not a comment", "- dash", 'say "hi"', "tab\tand\u0085next"]
    doc = opml(*(feed(f"https://n{i}.example/rss", name.replace('"', "&quot;").replace("\t", "&#9;")
                      .replace("\u0085", "&#133;")) for i, name in enumerate(names)))
    new_text, added = import_opml(doc, CONFIG)
    imported = {s.url: s.name for s in parse_config(new_text).sources}
    expected = [" ".join(n.split()) for n in names]  # whitespace runs folded, like the OPML readers do
    assert [imported[f"https://n{i}.example/rss"] for i in range(len(names))] == expected
    assert added[:3] == ["yes", "2024-05-01", "null"]  # quoted in the YAML, so still strings


# --- what gets imported ----------------------------------------------------------------------------


def test_duplicates_are_skipped_by_canonical_url():
    doc = opml(
        feed("http://wipo.int/pressroom/en/rss.xml", "WIPO again"),  # in the config (scheme and www folded)
        feed("https://www.epo.org/en/news-events/rss#top", "EPO again"),  # fragment ignored
        feed("https://new.example/rss?b=2&amp;a=1", "New"),
        feed("https://new.example/rss?a=1&amp;b=2", "New, listed twice"),
        feed("https://www.cnipa.gov.cn/col/col53/index.html", "CNIPA as a feed"),  # a page source's URL
        feed("feed://odd.example/rss", "Not http"),
    )
    new_text, added = import_opml(doc, CONFIG)
    assert added == ["new"]
    assert urls(new_text, kind=None)[-1] == "https://new.example/rss?b=2&a=1"


def test_ids_are_slugs_made_unique_against_the_config():
    doc = opml(
        feed("https://x1.example/rss", "EPO News!"),
        feed("https://x2.example/rss", "epo news"),
        feed("https://x3.example/rss", "WIPO Press-room (EN)", **{"ipnews:id": "wipo-pressroom-en"}),
        feed("https://x4.example/rss", "Ümlaut Straße"),
    ).replace("<opml ", f'<opml xmlns:ipnews="{IPNEWS_NS}" ')
    _, added = import_opml(doc, CONFIG.replace("id: epo-news", "id: epo-news\n    name: taken"))
    assert added == ["epo-news-2", "epo-news-3", "wipo-press-room-en", "umlaut-strae"]


def test_office_comes_from_category_then_nearest_folder_else_unknown():
    doc = opml(
        folder("IP offices", folder("KIPO", feed("https://k.example/rss", "K")),
               feed("https://g.example/rss", "G")),
        feed("https://c.example/rss", "C", category="/Asia/CNIPA,/other"),
        folder("EUIPO", feed("https://e.example/rss", "E", category="EUIPO-news")),
        feed("https://u.example/rss", "U"),
    )
    feeds = read_opml(doc)
    assert [(f.url.split("/")[2][0], f.office) for f in feeds] == [
        ("k", "KIPO"), ("g", "IP offices"), ("c", "CNIPA"), ("e", "EUIPO-news"), ("u", "Unknown")]


def test_name_falls_back_from_title_to_text_to_url():
    doc = opml(
        '<outline title="The title" text="The text" xmlUrl="https://a.example/rss"/>',
        '<outline text="Only text" xmlURL="https://b.example/rss"/>',  # attribute case varies in the wild
        '<outline xmlUrl="https://c.example/rss"/>',
    )
    assert [(f.name, f.url) for f in read_opml(doc)] == [
        ("The title", "https://a.example/rss"), ("Only text", "https://b.example/rss"),
        ("https://c.example/rss", "https://c.example/rss")]


# --- untrusted OPML --------------------------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE opml [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<opml version="2.0"><body><outline text="&lol3;" xmlUrl="https://a.example/rss"/></body></opml>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<opml version="2.0"><body><outline text="&xxe;" xmlUrl="https://a.example/rss"/></body></opml>"""


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, EXTERNAL_ENTITY, BILLION_LAUGHS.encode("utf-8"),
                                 BILLION_LAUGHS.replace("utf-8", "utf-16").encode("utf-16")])
def test_doctype_and_entities_are_refused(doc):
    with pytest.raises(ConfigError, match="refused: .*DOCTYPE") as info:
        import_opml(doc, CONFIG, opml_path="evil.opml")
    assert str(info.value).startswith("evil.opml: refused")


@pytest.mark.parametrize("doc, message", [
    ("<opml><body><outline", "not well-formed XML"),
    ('<opml version="2.0"><body><outline text="&nbsp;"/></body></opml>', "not well-formed XML"),  # undeclared
    ("<rss><channel/></rss>", "not an OPML file"),
    ("<opml><head/></opml>", "no <body>"),
    ("<opml><body>" + "<!-- padding -->" * (MAX_OPML_BYTES // 16) + "</body></opml>", "refused: .* bytes"),
])
def test_unreadable_opml_is_one_clear_error(doc, message):
    with pytest.raises(ConfigError, match=message):
        import_opml(doc, CONFIG, opml_path="in.opml")


def test_result_is_validated_and_an_invalid_config_is_not_written():
    with pytest.raises(ConfigError) as info:
        import_opml(opml(feed("https://b.example/rss")), CONFIG.replace("office: EPO", "office: EPO\n    kind: rss"))
    assert any("epo-news" in p and "kind" in p for p in info.value.problems)
    with pytest.raises(ConfigError, match="sources: must be a list"):
        import_opml(opml(feed("https://b.example/rss")), "sources: {a: 1}\n")


def test_nothing_new_returns_the_config_unchanged():
    assert import_opml(opml(), CONFIG) == (CONFIG, [])
    assert import_opml(opml(folder("Empty folder")), "") == ("", [])
