"""The ``seed`` command: a spider's start requests into the shared queue, from outside any crawl.

sharedcrawl seed SPIDER -a NAME=VALUE …   # what `scrapy crawl SPIDER -a …` would start with

The spider is built exactly as a worker builds it (same settings, add-ons and arguments), its
``start()`` is run, and every request it makes goes through the crawl's duplicate filter into the
queue, as a worker's own would (so seeding twice queues nothing new); then the crawl is marked
seeded: workers may be running already or start later. A spider of scrapy-redis (``RedisSpider``)
starts from its ``redis_key`` instead: push URLs there. Items a ``start()`` yields are not seeds
(counted, not stored).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.settings import Settings
from scrapy.spiderloader import get_spider_loader

from scrapy_sharedcrawl.cli.options import CrawlDefaults, assignments
from scrapy_sharedcrawl.compat import configure_crawler
from scrapy_sharedcrawl.config import redis_configured
from scrapy_sharedcrawl.connection import UNREACHABLE, describe, redis_from_settings
from scrapy_sharedcrawl.redis_spiders import is_redis_spider
from scrapy_sharedcrawl.seeding import Seeder, SeedResult
from scrapy_sharedcrawl.start import as_seed


def register(commands: Any, defaults: CrawlDefaults | None = None) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "seed",
        help="put a spider's start requests into the shared queue",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spider", nargs="?", default=(defaults or CrawlDefaults()).spider, help="the spider")
    parser.add_argument(
        "-a", dest="args", action="append", default=[], metavar="NAME=VALUE", help="spider argument"
    )
    parser.add_argument(
        "-s", "--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
        help="a Scrapy setting, as `scrapy crawl -s` takes it (e.g. a worker's SCHEDULER_QUEUE_KEY)",
    )  # fmt: skip
    parser.add_argument("--redis-url", help="default: the REDIS_URL setting / environment variable")
    parser.set_defaults(run=run)


def seeding_spider(spider_class: type[Spider], settings: Settings, **arguments: Any) -> Spider:
    """A spider configured exactly as a worker's would be, without running a crawl.

    The crawler is configured the way ``scrapy shell`` configures one
    (:func:`~scrapy_sharedcrawl.compat.configure_crawler`): add-ons run (the shared scheduler's), and the
    stats and request fingerprinter the dupefilter needs exist. No reactor: none is needed to push.
    """
    settings = settings.copy()
    settings.set("TWISTED_REACTOR_ENABLED", False, priority="cmdline")
    crawler = Crawler(spider_class, settings)
    configure_crawler(crawler)
    spider = spider_class.from_crawler(crawler, **arguments)
    crawler.spider = spider
    return spider


def start_requests(spider: Spider) -> tuple[list[Request], int]:
    """What the spider's ``start()`` makes, as seeds (:func:`~scrapy_sharedcrawl.start.as_seed`), and how
    many items it yielded besides."""

    async def collect() -> tuple[list[Request], int]:
        requests, items = [], 0
        async for output in spider.start():
            if isinstance(output, Request):
                requests.append(as_seed(output, spider))
            else:
                items += 1
        return requests, items

    return asyncio.run(collect())


def apply_seed_options(options: argparse.Namespace, settings: Settings) -> None:
    """``-s`` and ``--redis-url`` into ``settings``; ValueError when no Redis is named at all."""
    for name, value in assignments(options.settings).items():
        settings.set(name, value, priority="cmdline")
    if options.redis_url:
        settings.set("REDIS_URL", options.redis_url, priority="cmdline")
    if not redis_configured(settings):
        raise ValueError("no shared crawl to seed: set REDIS_URL (or --redis-url) to the workers' Redis")


def run(options: argparse.Namespace, settings: Settings) -> int:
    apply_seed_options(options, settings)
    name = options.spider or CrawlDefaults.spider_of(settings)
    loader = get_spider_loader(settings)
    if name not in loader.list():
        known = ", ".join(sorted(loader.list())) or "none"
        raise ValueError(f"no spider {name!r} in this project (its spiders: {known})")
    spider_class = loader.load(name)
    spider = seeding_spider(spider_class, settings, **assignments(options.args))
    if is_redis_spider(spider):
        raise ValueError(
            f"{name} is a scrapy-redis spider: it starts from its key, {getattr(spider, 'redis_key', '?')} "
            "(push URLs there: LPUSH or SADD)"
        )
    requests, items = start_requests(spider)
    if not redis_answers(settings, "seed"):
        return 1
    seeder = Seeder(spider)
    result = seeder.seed(requests)
    print(summary(seeder, result) + (f"; {items} items from start() not seeded" if items else ""))
    return 0


def redis_answers(settings: Settings, who: str) -> bool:
    """Whether the crawl's Redis answers; if not, one line on stderr saying what to do."""
    client = redis_from_settings(settings)
    try:
        client.ping()
    except UNREACHABLE as error:
        print(
            f"{who}: Redis unreachable at {describe(settings)} ({error}): start it, or point REDIS_URL "
            "(or --redis-url) at the workers' Redis",
            file=sys.stderr,
        )
        return False
    finally:
        client.close()
    return True


def summary(seeder: Seeder, result: SeedResult, detail: str = "") -> str:
    """The line a seeding command prints: what was pushed and what the queue holds now."""
    status = seeder.status()
    return (
        f"seeded crawl {result.crawl_id} at {seeder.where}: "
        f"{result.queued} requests pushed{detail}, {result.seen} already seen or queued; "
        f"the queue holds {status.queued} requests, {status.leased} leased to workers"
    )
