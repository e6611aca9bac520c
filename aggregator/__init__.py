"""ipnews: an aggregator and archiver of news from intellectual-property offices."""

__version__ = "0.1.0"
