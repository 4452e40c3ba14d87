"""``solidot-crawl seed``: put a crawl's first requests into the shared Redis queue.

solidot-crawl seed --since 2025-01-01 --until 2025-01-31   # every story of these days
solidot-crawl seed --sids 80000-80300,80400                # story pages by sid
solidot-crawl seed --latest --refresh                      # and the stored stories due for a re-fetch
solidot-crawl seed --latest --all                          # every listed story, stored and current or not

Design notes: docs/project-design.md#cli-seed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from itertools import chain
from typing import Any

from scrapy import Request
from scrapy.settings import Settings

from scrapy_sharedcrawl.cli import seed as framework_seed
from scrapy_sharedcrawl.connection import redis_from_settings
from scrapy_sharedcrawl.dashboard.scope import record_seed
from scrapy_sharedcrawl.redact import redact_uri
from scrapy_sharedcrawl.seeding import Seeder
from scrapy_sharedcrawl.stats import CrawlKeys, stats_timing
from solidot_spider.archive.mongo import StoreError
from solidot_spider.archive.selection import RefreshPicker
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
    parser.add_argument(
        "--all",
        dest="every_listed",
        action="store_true",
        help="with --latest: every listed story, not only those not stored yet or due for a re-fetch",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="the stored stories due for a re-fetch by the refresh policy (needs MONGO_URI)",
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
    """A ``solidot`` spider configured exactly as a worker's would be, without running a crawl."""
    spider = framework_seed.seeding_spider(SolidotSpider, settings, **arguments)
    assert isinstance(spider, SolidotSpider)
    return spider


def run(options: argparse.Namespace, settings: Settings) -> int:
    framework_seed.apply_seed_options(options, settings)
    if options.every_listed and not options.latest:
        raise ValueError("--all goes with --latest (every story the list pages and the feed name)")
    latest = None if options.latest is None else ("all" if options.every_listed else "1")
    refresh = "1" if options.refresh else None
    spider = seeding_spider(
        settings, since=options.since, until=options.until, sids=options.sids, latest=latest, refresh=refresh
    )
    if not framework_seed.redis_answers(settings, "solidot-crawl seed"):
        return 1
    seeder = Seeder(spider)
    requests: Iterable[Request] = spider.start_requests_for(spider.discovery)
    picker = RefreshPicker(settings) if options.refresh else None
    due = None
    try:
        if picker is not None:
            try:
                due = picker.pick()
            except StoreError as error:
                print(
                    f"solidot-crawl seed: MongoDB unreachable at {picker.where} "
                    f"({redact_uri(str(error))[:200]}): nothing seeded; the next run picks what is due",
                    file=sys.stderr,
                )
                return 1
            requests = chain(requests, spider.refresh_requests(due.sids))
        result = seeder.seed(requests)
        if picker is not None and due is not None:
            picker.claim(due)
    finally:
        if picker is not None:
            picker.close()
    if result.crawl_id is not None:  # what the dashboard shows as the crawl's scope
        scope = describe_scope(options.since, options.until, options.sids, options.latest)
        keys = CrawlKeys.from_settings(settings, spider.name)
        ttl_ms = round(stats_timing(settings)[1] * 1000)
        record_seed(redis_from_settings(settings), keys.prefix, result.crawl_id, scope, ttl_ms)
    refreshed = (
        ""
        if due is None
        else f" ({len(due.stories)} stories and {len(due.gaps)} gaps due for a refresh"
        + (", more due next run" if due.more else "")
        + ")"
    )
    print(framework_seed.summary(seeder, result, refreshed))
    return 0


def describe_scope(since: str | None, until: str | None, sids: str | None, latest: bool | None) -> str:
    """The seed's arguments as one line (what the dashboard shows as the crawl's scope):
    ``sids 80001-80300 + latest``.

    >>> describe_scope("2025-01-01", None, None, None)
    'days 2025-01-01 → today'
    """
    parts = []
    if since or until:
        parts.append(f"days {since or '?'} → {until or 'today'}")
    if sids:
        parts.append(f"sids {sids}")
    if latest or not parts:
        parts.append("latest")
    return " + ".join(parts)
