"""Command-line values shared by the subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from scrapy.settings import Settings

from scrapy_sharedcrawl.config import redis_configured


def add_crawl_arguments(parser: argparse.ArgumentParser, mongo_help: str) -> None:
    """``--spider``, ``--redis-url`` and ``--mongo-uri``: which shared crawl a reading command reads."""
    parser.add_argument("--spider", default="solidot", help="the crawl's spider name (default solidot)")
    parser.add_argument("--redis-url", help="default: the REDIS_URL setting / environment variable")
    parser.add_argument("--mongo-uri", help=mongo_help)


def crawl_redis(options: argparse.Namespace, settings: Settings, who: str) -> None:
    """Apply ``--redis-url``; refuse (ValueError) when no Redis is configured at all."""
    if options.redis_url:
        settings.set("REDIS_URL", options.redis_url, priority="cmdline")
    if not redis_configured(settings):
        raise ValueError(f"REDIS_URL is not set: {who} reads a shared crawl from its Redis (or --redis-url)")


def assignments(values: Iterable[str]) -> dict[str, str]:
    """``NAME=VALUE`` strings (``-s``/``-a`` as ``scrapy crawl`` takes them) as a dict.

    >>> assignments(["CONCURRENT_REQUESTS=8", "sids=1-5"])
    {'CONCURRENT_REQUESTS': '8', 'sids': '1-5'}
    """
    result = {}
    for assignment in values:
        name, sep, value = assignment.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected NAME=VALUE, got {assignment!r}")
        result[name.strip()] = value
    return result
