"""The ``dashboard`` command: a live web page of a shared crawl, with a JSON API and /metrics.

sharedcrawl dashboard                               # http://127.0.0.1:8470/
sharedcrawl dashboard --host 0.0.0.0 --port 8470    # needs a token: SHAREDCRAWL_DASHBOARD_TOKEN

It reads only Redis (REDIS_URL or --redis-url) and the project's store through its report
(CRAWL_REPORT_CLASS, given --mongo-uri or MONGO_URI), so it may run anywhere and any number of
times. Bound beyond loopback it serves only requests that carry the token (Bearer, Basic
password, or ?token= once): the DASHBOARD_TOKEN setting or the environment variable
SHAREDCRAWL_DASHBOARD_TOKEN (never an option: ``ps`` would show it).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from scrapy.settings import BaseSettings, Settings

from scrapy_sharedcrawl.cli.options import CrawlDefaults, add_crawl_arguments, crawl_redis
from scrapy_sharedcrawl.config import setting
from scrapy_sharedcrawl.dashboard.auth import check_token
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS
from scrapy_sharedcrawl.stats import stats_timing

DEFAULT_PORT = 8470
#: The environment variable the token may come from.
TOKEN_ENV = "SHAREDCRAWL_DASHBOARD_TOKEN"


def register(commands: Any, defaults: CrawlDefaults | None = None) -> None:
    """Add ``dashboard`` to ``commands``; ``defaults`` name the spider (None: the project's only one).
    A project's old name of ``DASHBOARD_TOKEN`` goes in its ``RENAMED_SETTINGS``, as any other."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "dashboard",
        help="serve a live web page of a shared crawl (and /metrics for Prometheus)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0: any")
    parser.add_argument(
        "--refresh",
        type=float,
        metavar="SECONDS",
        help="seconds between readings of Redis and the store (default: STATS_PUSH_INTERVAL, at least 1)",
    )
    add_crawl_arguments(
        parser, "the project's store its report reads (default: MONGO_URI)", defaults or CrawlDefaults()
    )
    parser.set_defaults(run=run)


def dashboard_token(settings: BaseSettings) -> str:
    """The token: the ``DASHBOARD_TOKEN`` setting (or an old name of it the project still reads, carried
    over to it by :mod:`~scrapy_sharedcrawl.legacy`), else the environment's
    ``SHAREDCRAWL_DASHBOARD_TOKEN`` ("" : none)."""
    candidates = [setting(settings, "DASHBOARD_TOKEN", DEFAULTS), os.environ.get(TOKEN_ENV)]
    return next((str(value).strip() for value in candidates if str(value or "").strip()), "")


def run(options: argparse.Namespace, settings: Settings) -> int:
    crawl_redis(options, settings, "the dashboard")
    token = dashboard_token(settings)
    check_token(options.host, token)  # before anything else: refuse an open dashboard on the network
    if not 0 <= options.port <= 65535:
        raise ValueError("--port must be within 0..65535")
    refresh = options.refresh if options.refresh is not None else max(1.0, stats_timing(settings)[0])
    if not 0.1 <= refresh <= 3600:
        raise ValueError("--refresh must be within 0.1..3600 seconds")
    spider = options.spider or CrawlDefaults.spider_of(settings)

    try:
        from scrapy_sharedcrawl.dashboard.server import Dashboard, serve
        from scrapy_sharedcrawl.dashboard.state import DashboardReader
    except ImportError as error:  # aiohttp / prometheus-client: the [dashboard] extra
        raise ValueError(
            f"the dashboard needs aiohttp and prometheus-client ({error}): "
            "pip install 'scrapy-sharedcrawl[dashboard]'"
        ) from None

    reader = DashboardReader(settings, spider, options.mongo_uri or settings.get("MONGO_URI") or "")
    serve(Dashboard(reader, refresh), options.host, options.port, token)
    return 0
