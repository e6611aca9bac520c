"""Tests for aggregator.urls.canonical_url: examples, then properties."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from aggregator.urls import canonical_url

# --- examples ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # case, default port, www, scheme folding, trailing slash
        ("HTTP://WWW.WIPO.INT:80/pressroom/en/", "https://wipo.int/pressroom/en"),
        ("https://www.wipo.int/", "https://wipo.int"),
        ("https://wipo.int", "https://wipo.int"),
        # path case is kept
        ("https://www.epo.org/en/News-Events/Press", "https://epo.org/en/News-Events/Press"),
        # dot segments, index pages, repeated slashes
        ("https://www.dpma.de/a/./b/../c/index.html", "https://dpma.de/a/c"),
        ("https://www.dpma.de/presse/Default.ASPX", "https://dpma.de/presse"),
        ("https://www.dpma.de/index.php?id=12", "https://dpma.de?id=12"),
        ("https://www.wipo.int//pressroom//en/", "https://wipo.int/pressroom/en"),
        ("https://x.example/../../a", "https://x.example/a"),
        # tracking and session parameters; the rest sorted
        (
            "https://www.gov.uk/news/a?utm_source=twitter&utm_medium=social&b=2&a=1&fbclid=XYZ",
            "https://gov.uk/news/a?a=1&b=2",
        ),
        ("https://x.example/a?gclid=1&mc_cid=2&mc_eid=3&JSESSIONID=4&PHPSESSID=5", "https://x.example/a"),
        ("https://x.example/a;jsessionid=0A1B2C3D/b.html", "https://x.example/a/b.html"),
        ("https://x.example/list?page=2&page=1", "https://x.example/list?page=1&page=2"),
        # story ids that merely look like session ids are kept
        ("https://x.example/article.php?sid=4711", "https://x.example/article.php?sid=4711"),
        # fragments dropped, hash routes of single-page sites kept
        ("https://www.jpo.go.jp/news/a.html#section2", "https://jpo.go.jp/news/a.html"),
        ("https://spa.example/#/news/detail?id=5", "https://spa.example#/news/detail?id=5"),
        ("https://spa.example/#!/news/5", "https://spa.example#!/news/5"),
        # IDN hosts to punycode; non-ASCII paths percent-encoded
        ("https://bücher.example/Straße", "https://xn--bcher-kva.example/Stra%C3%9Fe"),
        ("https://例え.jp/ニュース", "https://xn--r8jz45g.jp/%E3%83%8B%E3%83%A5%E3%83%BC%E3%82%B9"),
        # percent-encoding: unreserved decoded, the rest upper-cased, lone % escaped
        ("https://x.example/%7Euser/%61%2fb?q=%3d%zz", "https://x.example/~user/a%2Fb?q=%3D%25zz"),
        # ports
        ("http://x.example:443/a", "https://x.example/a"),
        ("http://x.example:8080/a", "https://x.example:8080/a"),
        ("https://[2001:DB8::1]:443/a", "https://[2001:db8::1]/a"),
        # user info is not part of the identity
        ("https://user:secret@x.example/a", "https://x.example/a"),
        # trailing dot in the host
        ("https://www.wipo.int./a", "https://wipo.int/a"),
        # "www." is only folded when a domain remains
        ("https://www.com/a", "https://www.com/a"),
        ("https://www.www.example.org/a", "https://example.org/a"),
    ],
)
def test_examples(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_folding_can_be_turned_off() -> None:
    url = "http://www.wipo.int/pressroom/"
    assert canonical_url(url, fold_scheme=False) == "http://wipo.int/pressroom"
    assert canonical_url(url, fold_www=False) == "https://www.wipo.int/pressroom"
    assert canonical_url(url, fold_scheme=False, fold_www=False) == "http://www.wipo.int/pressroom"
    assert canonical_url("http://x.example:443/", fold_scheme=False) == "http://x.example:443"


def test_host_aliases() -> None:
    aliases = {"english.sipo.gov.cn": "english.cnipa.gov.cn"}
    assert (
        canonical_url("http://english.sipo.gov.cn/news/2018/a.html", host_aliases=aliases)
        == "https://english.cnipa.gov.cn/news/2018/a.html"
    )
    assert canonical_url("https://english.cnipa.gov.cn/news/2018/a.html", host_aliases=aliases) == (
        "https://english.cnipa.gov.cn/news/2018/a.html"
    )
    # keys are matched like hosts: any case, with or without www.
    assert canonical_url("https://www.SIPO.gov.cn/a", host_aliases={"Sipo.Gov.Cn": "cnipa.gov.cn"}) == (
        "https://cnipa.gov.cn/a"
    )


def test_host_alias_chains_and_cycles_stay_idempotent() -> None:
    chain = {"a.example": "b.example", "b.example": "c.example"}
    assert canonical_url("https://a.example/x", host_aliases=chain) == "https://c.example/x"
    cycle = {"a.example": "b.example", "b.example": "a.example"}
    first = canonical_url("https://b.example/x", host_aliases=cycle)
    assert first == canonical_url("https://a.example/x", host_aliases=cycle)
    assert canonical_url(first, host_aliases=cycle) == first


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "   ",
        "not a url",
        "mailto:press@wipo.int",
        "javascript:alert(1)",
        "ftp://files.example/a",
        "https://",
        "http://[::1",
        "https://x.example:99999/a",
        "https://x.example:port/a",
        "//x.example/a",
        "/relative/path",
    ],
)
def test_junk_never_raises_and_comes_back_as_is(junk: str) -> None:
    assert canonical_url(junk) == junk.strip()


@pytest.mark.parametrize(
    "odd",
    [
        "https://a..b/",
        "https://" + "x" * 300 + ".example/",
        "http://\udcff.example/",
        "https://xn--zz.example/",
    ],
)
def test_odd_hosts_never_raise_and_stay_idempotent(odd: str) -> None:
    once = canonical_url(odd)
    assert canonical_url(once) == once


def test_non_string_input_is_returned() -> None:
    assert canonical_url(None) is None  # type: ignore[arg-type]


# --- properties ----------------------------------------------------------------------------------

_LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
_HOST = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_LABEL, min_size=1, max_size=3),
    st.sampled_from(["int", "org", "de", "fr", "jp", "cn", "gov.uk"]),
)
_SEGMENT_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_~"
_SEGMENT = st.text(alphabet=_SEGMENT_CHARS + "é中%.+", min_size=1, max_size=10)
_INDEX_NAMES = {
    f"{n}.{e}" for n in ("index", "default") for e in ("html", "htm", "php", "asp", "aspx", "jsp", "shtml")
}
# Segments that are already canonical: no dot segments, no index pages, nothing to decode.
_PLAIN_SEGMENT = st.text(alphabet=_SEGMENT_CHARS + ".", min_size=1, max_size=10).filter(
    lambda s: s not in {".", ".."} and s.lower() not in _INDEX_NAMES
)
_PARAM_KEY = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8).filter(
    lambda k: not k.startswith("utm_") and k not in {"fbclid", "gclid", "sid"}
)
_PARAM_VALUE = st.text(alphabet=_SEGMENT_CHARS + "é/%+", max_size=8)
_TRACKING = st.one_of(
    st.builds(
        lambda s: f"utm_{s}", st.sampled_from(["source", "medium", "campaign", "term", "content", "id"])
    ),
    st.sampled_from(["fbclid", "gclid", "mc_cid", "mc_eid", "UTM_Source", "msclkid"]),
)


@st.composite
def urls(draw: st.DrawFn) -> tuple[str, str, list[str], list[tuple[str, str]]]:
    scheme = draw(st.sampled_from(["http", "https", "HTTPS"]))
    host = draw(_HOST)
    if draw(st.booleans()):
        host = "www." + host
    segments = draw(st.lists(_SEGMENT, max_size=5))
    params = draw(st.lists(st.tuples(_PARAM_KEY, _PARAM_VALUE), max_size=4))
    return scheme, host, segments, params


def _build(
    scheme: str, host: str, segments: list[str], params: list[tuple[str, str]], fragment: str = ""
) -> str:
    url = f"{scheme}://{host}/" + "/".join(segments)
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params)
    if fragment:
        url += "#" + fragment
    return url


@given(st.text())
@example("http://[::1]/")
@example("https://www.www./")
@example("https://x.example/a/index.html/")
@example("https://x.example/%2e%2e/%2E/a")
def test_never_raises_and_idempotent_on_any_text(text: str) -> None:
    once = canonical_url(text)
    assert canonical_url(once) == once


@given(urls())
def test_idempotent_on_urls(parts: tuple[str, str, list[str], list[tuple[str, str]]]) -> None:
    url = _build(*parts)
    once = canonical_url(url)
    assert canonical_url(once) == once
    assert canonical_url(once, fold_scheme=False, fold_www=False) == once


@given(
    urls(),
    st.lists(st.tuples(_TRACKING, _PARAM_VALUE), min_size=1, max_size=3),
    st.randoms(use_true_random=False),
    st.text(alphabet=_SEGMENT_CHARS + "#?&=é ", max_size=12).filter(lambda f: not f.startswith(("/", "!"))),
)
def test_tracking_params_and_fragments_never_change_the_result(parts, tracking, rnd, fragment) -> None:
    scheme, host, segments, params = parts
    noisy = list(params)
    for pair in tracking:
        noisy.insert(rnd.randint(0, len(noisy)), pair)
    assert canonical_url(_build(scheme, host, segments, noisy, fragment)) == canonical_url(
        _build(scheme, host, segments, params)
    )


@given(
    _HOST,
    st.lists(_PLAIN_SEGMENT, min_size=1, max_size=4),
    st.lists(_PLAIN_SEGMENT, min_size=1, max_size=4),
)
def test_different_paths_on_one_host_never_collide(host: str, a: list[str], b: list[str]) -> None:
    if a == b:
        return
    assert canonical_url(f"https://{host}/" + "/".join(a)) != canonical_url(f"https://{host}/" + "/".join(b))
