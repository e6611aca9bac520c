"""Benchmarks for ipnews (issue #7). Not part of the package nor of the test suite.

Run everything with one command (see benchmarks/README.md):

    .venv/bin/python -m benchmarks.run --sources 2000 --latency 0.05 --repeat 3 --out docs/performance.md
"""
