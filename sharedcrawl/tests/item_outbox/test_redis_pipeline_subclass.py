"""A scrapy-redis ``RedisPipeline`` subclass on the shared crawl: its own key and serializer, pushed
with its request's acknowledgement, as the stock pipeline is (the add-on used to swap only the exact
class, so a subclass's items were pushed at once, twice if a worker died mid-request).

Real scrapy-redis classes; the private Redis only backs the crawler's settings (nothing is pushed here:
the exactly-once push itself is ``test_item_outbox.py``'s and ``test_redis_examples.py``'s).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import scrapy
from scrapy.http import HtmlResponse
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler
from scrapy_redis.pipelines import RedisPipeline

from scrapy_sharedcrawl.addon import SharedCrawl
from scrapy_sharedcrawl.item_outbox import AcknowledgedRedisPipeline, ItemOrigins, origins_of
from scrapy_sharedcrawl.signals import hold_output


class LinksSpider(scrapy.Spider):
    name = "links"


def short_json(item: Any) -> str:
    """A serializer named by ``REDIS_ITEMS_SERIALIZER``, as scrapy-redis reads it."""
    return json.dumps({"k": item["kind"]})


class KeyedPipeline(RedisPipeline):
    """A habit of scrapy-redis users: items of each kind in a key of their own."""

    def item_key(self, item: Any, spider: scrapy.Spider) -> str:
        return f"{spider.name}:items:{item['kind']}"


class PushingPipeline(RedisPipeline):
    """Pushes on its own terms: the add-on can't make that exactly-once without changing what it does."""

    def process_item(self, item: Any, spider: scrapy.Spider) -> Any:
        return item


def shared_crawler(redis_url: str, pipelines: dict[Any, int]) -> Any:
    settings = {
        "ADDONS": {SharedCrawl: 0},
        "REDIS_URL": redis_url,
        "ITEM_PIPELINES": pipelines,
        "REDIS_ITEMS_SERIALIZER": f"{__name__}.short_json",
    }
    return get_crawler(LinksSpider, settings)


def test_a_subclass_keeps_its_key_and_serializer_and_rides_on_the_acknowledgement(redis_url: str) -> None:
    crawler = shared_crawler(redis_url, {f"{__name__}.KeyedPipeline": 300})
    ((pipeline_cls, order),) = crawler.settings.getdict("ITEM_PIPELINES").items()
    assert order == 300 and issubclass(pipeline_cls, AcknowledgedRedisPipeline)
    assert issubclass(pipeline_cls, KeyedPipeline)
    assert crawler.settings.getdict("SPIDER_MIDDLEWARES")[ItemOrigins] == 1

    crawler.spider = spider = LinksSpider.from_crawler(crawler)
    pipeline = build_from_crawler(pipeline_cls, crawler)
    held: list[tuple[scrapy.Request, str, bytes]] = []

    def hold(request: scrapy.Request, key: str, value: bytes) -> bool:
        held.append((request, key, value))
        return True

    crawler.signals.connect(hold, signal=hold_output)
    request = scrapy.Request("http://pages.test/1")
    item = {"kind": "story"}
    origins_of(crawler).note(HtmlResponse(request.url, body=b"<p>", request=request), item)

    assert pipeline.process_item(item, spider) is item
    assert held == [(request, "links:items:story", b'{"k": "story"}')]
    assert crawler.stats is not None and crawler.stats.get_value("scheduler/items/held") == 1


def test_the_stock_class_named_twice_is_swapped_once(redis_url: str) -> None:
    crawler = shared_crawler(redis_url, {"scrapy_redis.pipelines.RedisPipeline": 300, RedisPipeline: 300})
    assert crawler.settings.getdict("ITEM_PIPELINES") == {AcknowledgedRedisPipeline: 300}


def test_a_subclass_with_its_own_process_item_is_left_alone_and_said_so(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="scrapy_sharedcrawl.addon"):
        crawler = shared_crawler(redis_url, {PushingPipeline: 300, KeyedPipeline: 400})
    pipelines = crawler.settings.getdict("ITEM_PIPELINES")
    assert pipelines[PushingPipeline] == 300 and KeyedPipeline not in pipelines
    assert next(cls for cls in pipelines if cls is not PushingPipeline).__mro__[2] is KeyedPipeline
    warned = [r.getMessage() for r in caplog.records if "own process_item" in r.getMessage()]
    assert warned == [
        "PushingPipeline has its own process_item: its items are pushed as it pushes them, not with their "
        "request's acknowledgement (a worker killed mid-request can push one twice)"
    ]


def test_without_redis_nothing_is_swapped(redis_url: str) -> None:
    alone = get_crawler(LinksSpider, {"ADDONS": {SharedCrawl: 0}, "ITEM_PIPELINES": {KeyedPipeline: 300}})
    assert alone.settings.getdict("ITEM_PIPELINES") == {KeyedPipeline: 300}
