"""``solidot-crawl seed``: put a crawl's first requests into the shared Redis queue.

solidot-crawl seed --since 2025-01-01 --until 2025-01-31   # every story of these days
solidot-crawl seed --sids 80000-80300,80400                # story pages by sid
solidot-crawl seed --latest                                # home page, categories, RSS (the default)

The arguments mean what the spider's ``-a`` arguments mean, and combine the
same way. The requests go through the crawl's dupefilter, so seeding the same
range twice queues nothing new. Workers (``scrapy crawl solidot`` with
``REDIS_URL`` set) may be running already or start later; no crawl needs to
run for seeding. Redis is ``REDIS_URL`` (or ``--redis-url``).

The scope is checked before Redis is even asked, as a worker checks it at
start-up: dates from 2000-01-01 to tomorrow in Beijing, at most
SOLIDOT_MAX_SIDS story ids and SOLIDOT_MAX_DAYS days (``-s NAME=VALUE`` raises
them); a refused scope pushes nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from scrapy.crawler import Crawler
from scrapy.settings import Settings

from scrapy_sharedcrawl.compat import configure_crawler
from scrapy_sharedcrawl.config import redis_configured
from scrapy_sharedcrawl.connection import UNREACHABLE, describe, redis_from_settings
from scrapy_sharedcrawl.seeding import Seeder
from scrapy_sharedcrawl.stats import CrawlKeys, stats_timing
from solidot_spider.cli.options import assignments
from solidot_spider.dashboard.scope import describe_scope, record_seed
from solidot_spider.spiders.solidot import SolidotSpider


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "seed",
        help="put a crawl's first requests into the shared Redis queue",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--since", metavar="YYYY-MM-DD", help="first day (with --until: the day archives)")
    parser.add_argument("--until", metavar="YYYY-MM-DD", help="last day (default: today in Beijing)")
    parser.add_argument("--sids", metavar="A-B[,C…]", help="story ids, inclusive ranges")
    parser.add_argument(
        "--latest",
        action="store_true",
        default=None,
        help="the home page, every category and the RSS feed (the default without --since/--sids)",
    )
    parser.add_argument("--redis-url", help="default: the REDIS_URL setting / environment variable")
    parser.add_argument(
        "-s",
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a Scrapy setting, as `scrapy crawl -s` takes it (e.g. a worker's SCHEDULER_QUEUE_KEY)",
    )
    parser.set_defaults(run=run)


def seeding_spider(settings: Settings, **arguments: str | None) -> SolidotSpider:
    """A ``solidot`` spider configured exactly as a worker's would be, without running a crawl.

    The crawler is configured the way ``scrapy shell`` configures one
    (:func:`~scrapy_sharedcrawl.compat.configure_crawler`): add-ons run (the shared scheduler's), and the
    stats and request fingerprinter the dupefilter needs exist. No reactor: none
    is needed to push requests.
    """
    settings = settings.copy()
    settings.set("TWISTED_REACTOR_ENABLED", False, priority="cmdline")
    crawler = Crawler(SolidotSpider, settings)
    configure_crawler(crawler)
    spider = SolidotSpider.from_crawler(crawler, **arguments)
    crawler.spider = spider
    return spider


def run(options: argparse.Namespace, settings: Settings) -> int:
    for name, value in assignments(options.settings).items():
        settings.set(name, value, priority="cmdline")
    if options.redis_url:
        settings.set("REDIS_URL", options.redis_url, priority="cmdline")
    if not redis_configured(settings):
        raise ValueError("no shared crawl to seed: set REDIS_URL (or --redis-url) to the workers' Redis")
    latest = None if options.latest is None else "1"
    spider = seeding_spider(
        settings, since=options.since, until=options.until, sids=options.sids, latest=latest
    )
    client = redis_from_settings(settings)
    try:
        client.ping()
    except UNREACHABLE as error:
        print(
            f"solidot-crawl seed: Redis unreachable at {describe(settings)} ({error}): start it, or point "
            "REDIS_URL (or --redis-url) at the workers' Redis",
            file=sys.stderr,
        )
        return 1
    finally:
        client.close()
    seeder = Seeder(spider)
    result = seeder.seed(spider.start_requests_for(spider.discovery))
    status = seeder.status()
    if result.crawl_id is not None:  # what the dashboard shows as the crawl's scope
        scope = describe_scope(options.since, options.until, options.sids, options.latest)
        keys = CrawlKeys.from_settings(settings, spider.name)
        ttl_ms = round(stats_timing(settings)[1] * 1000)
        record_seed(redis_from_settings(settings), keys.prefix, result.crawl_id, scope, ttl_ms)
    print(
        f"seeded crawl {result.crawl_id} at {seeder.where}: "
        f"{result.queued} requests pushed, {result.seen} already seen or queued; "
        f"the queue holds {status.queued} requests, {status.leased} leased to workers"
    )
    return 0
