"""The shipped feeds.yaml: it loads, and its documentation keys are honest.

These tests only parse the file. They never fetch a configured URL: the
network is switched off for the whole module, so an accidental fetch fails
loudly instead of quietly hitting an office's server.
"""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path

import pytest
import yaml

from aggregator.config import load_config

SHIPPED = Path(__file__).resolve().parents[1] / "feeds.yaml"
# Strongest first; a level may carry details, e.g. "seen (config, 2 crawlers)".
EVIDENCE_LEVELS = ("seen (probe", "seen (page", "seen (config", "unverified guess")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a connection or resolve a name fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("test_shipped_config must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="module")
def config():
    return load_config(SHIPPED)


@pytest.fixture(scope="module")
def raw_sources() -> list[dict]:
    # The documentation-only keys (verified, evidence, notes) are not on Source; read them raw.
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))["sources"]


def test_network_is_off():
    with pytest.raises(AssertionError, match="network"):
        socket.create_connection(("www.wipo.int", 443), timeout=1)


def test_loads_with_enough_sources_and_offices(config):
    assert len(config.sources) >= 25
    assert len({s.office for s in config.sources}) >= 15
    assert any(s.enabled for s in config.sources)


def test_ids_are_unique(raw_sources):
    counts = Counter(raw["id"] for raw in raw_sources)
    assert [sid for sid, n in counts.items() if n > 1] == []


def test_every_source_says_how_it_is_known(raw_sources):
    for raw in raw_sources:
        assert raw.get("evidence") or raw.get("verified"), f"{raw['id']}: needs evidence or verified"
        if "evidence" in raw:
            assert str(raw["evidence"]).startswith(EVIDENCE_LEVELS), f"{raw['id']}: unknown evidence level"


def test_verified_only_with_probe_evidence(raw_sources):
    for raw in raw_sources:
        if "verified" in raw:
            assert str(raw.get("evidence", "")).startswith("seen (probe"), raw["id"]


def test_guesses_are_disabled(raw_sources):
    for raw in raw_sources:
        if str(raw.get("evidence", "")).startswith("unverified guess"):
            assert raw.get("enabled") is False, f"{raw['id']}: an unverified guess must ship disabled"


def test_known_broken_uspto_feed_is_disabled(config):
    broken = [s for s in config.sources if s.url == "https://www.uspto.gov/rss/uspto-news"]
    assert broken and not any(s.enabled for s in broken)


def test_enabled_page_sources_have_a_list_item_selector(config):
    for source in config.sources:
        if source.kind == "page" and source.enabled:
            assert source.list is not None and source.list.item.strip(), source.id


def test_every_source_has_a_timezone(config):
    assert [s.id for s in config.sources if not s.timezone] == []
