"""Command-line values shared by the subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from configparser import ConfigParser
from contextlib import suppress
from dataclasses import dataclass

from scrapy.settings import BaseSettings, Settings
from scrapy.spiderloader import get_spider_loader

from scrapy_sharedcrawl.config import redis_configured
from scrapy_sharedcrawl.fleet.nodes import deploy_config


@dataclass(frozen=True)
class CrawlDefaults:
    """What the operator commands act on when not told: a project's scrapyd name and its spider.
    None: the project's own (:meth:`project_of`, :meth:`spider_of`)."""

    project: str | None = None
    spider: str | None = None

    @staticmethod
    def project_of(settings: BaseSettings) -> str:
        """scrapy.cfg's ``[deploy] project`` (what scrapyd-deploy uploads), else ``BOT_NAME``."""
        parser = ConfigParser()
        with suppress(ValueError):  # an unreadable scrapy.cfg is reported with the deploy targets
            parser = deploy_config()
        return parser.get("deploy", "project", fallback="") or str(settings.get("BOT_NAME") or "")

    @staticmethod
    def spider_of(settings: BaseSettings) -> str:
        """The project's only spider; ValueError when it has none or several (then --spider)."""
        names = sorted(get_spider_loader(settings).list())
        if len(names) != 1:
            found = ", ".join(names) or "none"
            raise ValueError(f"name the crawl's spider with --spider (the project has {found})")
        return names[0]


def add_crawl_arguments(parser: argparse.ArgumentParser, mongo_help: str, defaults: CrawlDefaults) -> None:
    """``--spider``, ``--redis-url`` and ``--mongo-uri``: which shared crawl a reading command reads."""
    parser.add_argument(
        "--spider",
        default=defaults.spider,
        help=f"the crawl's spider name (default {defaults.spider or 'the only spider of the project'})",
    )
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
