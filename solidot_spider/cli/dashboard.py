"""``solidot-crawl dashboard``: a live web page of a shared crawl, with a JSON API and /metrics.

solidot-crawl dashboard                          # http://127.0.0.1:8470/
solidot-crawl dashboard --host 0.0.0.0 --port 8470   # needs SOLIDOT_DASHBOARD_TOKEN

It reads only Redis (REDIS_URL or --redis-url) and MongoDB (MONGO_URI or
--mongo-uri), so it may run anywhere and any number of times. Bound beyond
loopback it serves only requests that carry the token from the environment
variable SOLIDOT_DASHBOARD_TOKEN (Bearer, Basic password, or ?token= once).
"""

from __future__ import annotations

import argparse
from typing import Any

from scrapy.settings import Settings

from scrapy_sharedcrawl.cli.options import add_crawl_arguments, crawl_redis
from scrapy_sharedcrawl.stats import stats_timing
from solidot_spider.cli.target import SOLIDOT
from solidot_spider.dashboard.auth import check_token

DEFAULT_PORT = 8470


def register(commands: Any) -> None:
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
        help="seconds between readings of Redis and MongoDB (default: STATS_PUSH_INTERVAL, at least 1)",
    )
    add_crawl_arguments(parser, "the archive (default: MONGO_URI; none: no archive figures)", SOLIDOT)
    parser.set_defaults(run=run)


def run(options: argparse.Namespace, settings: Settings) -> int:
    crawl_redis(options, settings, "the dashboard")
    token = str(settings.get("SOLIDOT_DASHBOARD_TOKEN") or "").strip()
    check_token(options.host, token)  # before anything else: refuse an open dashboard on the network
    if not 0 <= options.port <= 65535:
        raise ValueError("--port must be within 0..65535")
    refresh = options.refresh if options.refresh is not None else max(1.0, stats_timing(settings)[0])
    if not 0.1 <= refresh <= 3600:
        raise ValueError("--refresh must be within 0.1..3600 seconds")

    from solidot_spider.dashboard.server import Dashboard, serve
    from solidot_spider.dashboard.state import DashboardReader

    reader = DashboardReader(settings, options.spider, options.mongo_uri or settings.get("MONGO_URI") or "")
    serve(Dashboard(reader, refresh), options.host, options.port, token)
    return 0
