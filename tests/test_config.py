"""Every config problem gives one clear line naming the file line, the source and the field."""

from __future__ import annotations

import pytest

from aggregator.config import load_config, parse_config, parse_duration, parse_size
from aggregator.exceptions import ConfigError

from conftest import run

GOOD = """\
defaults:
  interval: 6h
  contact: mailto:library@example.org
  per_host: 2
sources:
  - id: wipo-pressroom-en
    office: WIPO
    name: WIPO press releases
    url: https://www.wipo.int/pressroom/en/rss.xml
    language: en
    interval: 30m
    headers: {Accept-Language: en}
  - id: cnipa-zh-news
    office: CNIPA
    kind: page
    url: https://www.cnipa.gov.cn/col/col53/index.html
    timezone: Asia/Shanghai
    encoding: gbk
    list: {item: "ul.list.clearfix li", date: span, next: "a.next", max_pages: 3}
    article: {title: h1, body: "div.article", remove: [".share", ".print"]}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "feeds.yaml")
    return info.value.problems


def source_yaml(**fields) -> str:
    base = {"id": "src", "office": "EPO", "url": "https://epo.org/rss.xml"}
    base.update(fields)
    lines = ["sources:", "  - " + "\n    ".join(f"{k}: {v}" for k, v in base.items() if v is not None)]
    return "\n".join(lines) + "\n"


def test_a_good_config_is_read_with_defaults_applied():
    config = parse_config(GOOD)
    wipo, cnipa = config.sources
    assert wipo.interval == 1800 and cnipa.interval == 6 * 3600
    assert wipo.headers == {"Accept-Language": "en"}
    assert cnipa.list.max_pages == 3 and cnipa.article.remove == (".share", ".print")
    assert cnipa.name == "cnipa-zh-news" and cnipa.line == 13
    assert config.settings.contact == "mailto:library@example.org"


@pytest.mark.parametrize(
    "text, expected",
    [
        (source_yaml(intervall="6h"), "feeds.yaml:2: source 'src': unknown key 'intervall' (did you mean 'interval'?)"),
        (source_yaml(url=None), "feeds.yaml:2: source 'src': missing url"),
        (source_yaml(url="ftp://epo.org/x"), "feeds.yaml:2: source 'src': url: must be an http:// or https:// URL, not 'ftp://epo.org/x'"),
        (source_yaml(interval="soon"), "feeds.yaml:2: source 'src': interval: 'soon' is not a duration (e.g. 30m, 6h, 1d)"),
        (source_yaml(interval="0m"), "feeds.yaml:2: source 'src': interval: '0m' is not positive (e.g. 30m, 6h, 1d)"),
        (source_yaml(office=None), "feeds.yaml:2: source 'src': missing office (e.g. WIPO, EPO, CNIPA)"),
        (source_yaml(kind="atom"), "feeds.yaml:2: source 'src': kind: must be 'feed' or 'page', not 'atom'"),
        (source_yaml(id="Bad Id"), "feeds.yaml:2: source 'Bad Id': id must be lower-case letters, digits, '.', '_' or '-'"),
        (source_yaml(id=None), "feeds.yaml:2: sources[0]: missing id"),
        (source_yaml(timezone="Mars/Olympus"), "feeds.yaml:2: source 'src': timezone: unknown timezone 'Mars/Olympus' (use an IANA name such as Asia/Shanghai)"),
        (source_yaml(encoding="klingon"), "feeds.yaml:2: source 'src': encoding: unknown encoding 'klingon'"),
        (source_yaml(language="english!"), "feeds.yaml:2: source 'src': language: 'english!' is not a language tag (e.g. en, zh, ja)"),
        (source_yaml(enabled="yes please"), "feeds.yaml:2: source 'src': enabled: must be true or false, not 'yes please'"),
        (source_yaml(date_order="dym"), "feeds.yaml:2: source 'src': date_order: must be one of dmy, mdy, ymd, not 'dym'"),
        (source_yaml(headers="[1, 2]"), "feeds.yaml:2: source 'src': headers: must be a mapping of header names to values"),
        (source_yaml(kind="page"), "feeds.yaml:2: source 'src': a page source needs a list: block with at least an item selector"),
        (source_yaml(list="{item: a}"), "feeds.yaml:2: source 'src': list: and article: blocks only apply to kind: page"),
        (source_yaml(kind="page", list="{item: 'ul[['}"), "feeds.yaml:6: source 'src': list.item: invalid CSS selector 'ul[[' (Malformed attribute selector at position 2)"),
        (source_yaml(kind="page", list="{date: span}"), "feeds.yaml:6: source 'src': list: missing item selector"),
        (source_yaml(kind="page", list="{item: a, nxt: b}"), "feeds.yaml:6: source 'src': list: unknown key 'nxt' (did you mean 'next'?)"),
        (source_yaml(kind="page", list="{item: a, max_pages: 0}"), "feeds.yaml:6: source 'src': list.max_pages: must be a whole number ≥ 1, not 0"),
        (source_yaml(kind="page", list="{item: a}", article="{bdy: x}"), "feeds.yaml:7: source 'src': article: unknown key 'bdy' (did you mean 'body'?)"),
        (source_yaml(kind="page", list="{item: a}", article="{remove: 3}"), "feeds.yaml:7: source 'src': article.remove: must be a list of CSS selectors"),
        ("defaults:\n  per_host: 0\nsources: []\n", "feeds.yaml:2: defaults: per_host: must be a whole number ≥ 1, not 0"),
        ("defaults:\n  max_bytes: lots\nsources: []\n", "feeds.yaml:2: defaults: max_bytes: 'lots' is not a size (e.g. 30m, 6h, 10MB)"),
        ("defaults:\n  contactt: x\nsources: []\n", "feeds.yaml:2: defaults: unknown key 'contactt' (did you mean 'contact'?)"),
        ("sourcess: []\n", "feeds.yaml: top level: unknown key 'sourcess' (did you mean 'sources'?)"),
        ("sources: {a: 1}\n", "feeds.yaml: sources: must be a list"),
        ("sources:\n  - just a string\n", "feeds.yaml: sources[0]: must be a mapping with id, office, url …"),
        ("sources: [\n", "feeds.yaml:2: not valid YAML: expected the node content, but found '<stream end>'"),
        ("- a\n- b\n", "feeds.yaml: must be a mapping with a sources: list"),
    ],
)
def test_each_problem_is_one_clear_line(text, expected):
    assert expected in problems(text)


def test_duplicate_ids_name_both_lines():
    text = source_yaml() + "  - id: src\n    office: EPO\n    url: https://epo.org/other.xml\n"
    assert problems(text) == ["feeds.yaml:5: source 'src': duplicate id (first defined on line 2)"]


def test_every_problem_is_reported_at_once():
    text = "defaults:\n  intervall: 1h\n" + source_yaml(url=None, kind="atom")
    assert len(problems(text)) == 3


def test_durations_and_sizes():
    assert parse_duration("1h30m") == 5400 and parse_duration(90) == 90 and parse_duration("1d") == 86400
    assert parse_size("10MB") == 10_000_000 and parse_size("512KiB") == 524288 and parse_size(2048) == 2048
    for bad in ("", "6 hours", True, -5):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_check_config_prints_every_problem_and_exits_2(tmp_path):
    path = tmp_path / "feeds.yaml"
    path.write_text("defaults:\n  intervall: 1h\n" + source_yaml(url=None))
    result = run(["check-config"], config=path)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"ipnews: {path}:2: defaults: unknown key 'intervall' (did you mean 'interval'?)",
        f"ipnews: {path}:4: source 'src': missing url",
    ]
    path.write_text(GOOD)
    ok = run(["check-config"], config=path)
    assert ok.exit_code == 0 and "2 sources (2 enabled) from 2 offices" in ok.output


def test_config_and_db_come_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "custom.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("IPNEWS_CONFIG", str(path))
    assert run(["check-config"]).exit_code == 0
    monkeypatch.setenv("IPNEWS_CONFIG", str(tmp_path / "missing.yaml"))
    result = run(["check-config"])
    assert result.exit_code == 2 and "config file not found" in result.stderr
