"""The README is executable documentation: its commands are the ones CI and users run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from aggregator.cli import cli

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_command = [line for line in ci.splitlines() if line.startswith("python3 -m venv")]
    assert len(ci_command) == 1
    assert f"```sh\n{ci_command[0]}\n```" in README


def test_readme_gives_the_demo_command():
    assert re.search(r"```sh\npython3 -m venv \.venv && \.venv/bin/pip install -e \. && \.venv/bin/ipnews demo\n```", README)


def test_every_command_has_help_with_an_example_and_is_in_the_readme():
    for name, command in cli.commands.items():
        assert command.help and "Example:" in command.help, name
        assert f"ipnews {name}" in README, name


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "aggregator", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "ipnews" in result.stdout and "fetch" in result.stdout


def test_changelog_has_an_unreleased_section():
    assert "## [Unreleased]" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
