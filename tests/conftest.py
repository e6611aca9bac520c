"""Shared fixtures: a real loopback HTTP server, config files and CLI runs. No network, real SQLite files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.cli import cli
from aggregator.loopback import LoopbackServer

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def server():
    with LoopbackServer(auto_validators=True) as srv:
        yield srv


@pytest.fixture
def archive_path(tmp_path: Path) -> Path:
    return tmp_path / "archive" / "ipnews.db"


def rss(items: list[dict], title: str = "Office news") -> bytes:
    """A small RSS 2.0 document; each item: guid, title, link, date, description, category."""
    parts = [f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
             "<link>https://office.example/</link><description>News</description>"]
    for item in items:
        parts.append("<item>")
        for key, tag in (("title", "title"), ("link", "link"), ("guid", "guid"), ("date", "pubDate"),
                         ("description", "description"), ("category", "category")):
            if key in item:
                parts.append(f"<{tag}>{item[key]}</{tag}>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def write_config(path: Path, sources: list[dict], defaults: dict | None = None) -> Path:
    """feeds.yaml from plain data (JSON is valid YAML)."""
    path.write_text(json.dumps({"defaults": defaults or {}, "sources": sources}, ensure_ascii=False, indent=1))
    return path


def run(args: list[str], config: Path | None = None, db: Path | None = None):
    """Run the CLI in-process; returns click's Result (exit_code, output, stderr)."""
    prefix = []
    if config is not None:
        prefix += ["--config", str(config)]
    if db is not None:
        prefix += ["--db", str(db)]
    return CliRunner().invoke(cli, prefix + args, catch_exceptions=False)


def query(db: Path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def paths(server) -> list[str]:
    """The paths a test server was asked for, robots.txt (fetched once per host per run) left out."""
    return [r.path for r in server.requests if r.path != "/robots.txt"]
