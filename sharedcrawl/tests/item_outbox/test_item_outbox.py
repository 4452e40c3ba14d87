"""Outputs pushed with their request's acknowledgement: in Redis exactly when the request is done.

Real Redis (a private redis-server); the crawl-level check, RedisPipeline's items exactly once with
a worker SIGKILLed, is in ``test_redis_examples.py``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
import scrapy
from scrapy.utils.test import get_crawler
from scrapy_redis.pipelines import RedisPipeline

from scrapy_sharedcrawl.addon import SHARED_SETTINGS, SharedCrawl
from scrapy_sharedcrawl.item_outbox import AcknowledgedRedisPipeline, ItemOrigins
from scrapy_sharedcrawl.queue import LeasedPriorityQueue

SITE = "http://pages.test"
ITEMS = "links:items"


class LinksSpider(scrapy.Spider):
    name = "links"
    allowed_domains = ("pages.test",)

    def parse(self, response: Any) -> Any:
        yield {"url": response.url}


@pytest.fixture
def queue(redis_url: str) -> LeasedPriorityQueue:
    crawler = get_crawler(LinksSpider, {"REDIS_URL": redis_url, **SHARED_SETTINGS})
    spider = LinksSpider.from_crawler(crawler)
    crawler.spider = spider
    return LeasedPriorityQueue(redis.Redis.from_url(redis_url), spider)


def lease(queue: LeasedPriorityQueue, worker: str) -> str:
    ((request_id, _),) = queue.pop(worker, 30).leased
    return request_id


def expire_leases(queue: LeasedPriorityQueue) -> None:
    assert queue.requeue_expired(now=time.time() + 3600) == 1


def test_an_acknowledged_requests_outputs_are_pushed_with_it(queue: LeasedPriorityQueue) -> None:
    queue.push(scrapy.Request(f"{SITE}/1"))
    queue.push(scrapy.Request(f"{SITE}/2"))
    first, second = lease(queue, "a"), lease(queue, "a")

    result = queue.ack("a", [first, second], {first: [(ITEMS, b"one"), (ITEMS, b"two"), ("other", b"x")]})

    assert (result.acked, result.late, result.stale) == (2, 0, 0)
    assert queue.server.lrange(ITEMS, 0, -1) == [b"one", b"two"]
    assert queue.server.lrange("other", 0, -1) == [b"x"]
    assert queue.leased_count() == 0 and len(queue) == 0


def test_a_stale_acknowledgement_pushes_nothing_and_the_new_holder_pushes_once(
    queue: LeasedPriorityQueue,
) -> None:
    queue.push(scrapy.Request(f"{SITE}/1"))
    first = lease(queue, "a")
    expire_leases(queue)  # worker a stalled: the request went back to the queue
    again = lease(queue, "b")

    stale = queue.ack("a", [first], {first: [(ITEMS, b"from a")]})
    fresh = queue.ack("b", [again], {again: [(ITEMS, b"from b")]})

    assert (stale.stale, fresh.acked) == (1, 1)
    assert queue.server.lrange(ITEMS, 0, -1) == [b"from b"]


def test_a_late_acknowledgement_counts_only_while_nobody_else_took_the_request(
    queue: LeasedPriorityQueue,
) -> None:
    queue.push(scrapy.Request(f"{SITE}/1"))
    queue.push(scrapy.Request(f"{SITE}/2"))
    first = lease(queue, "a")
    expire_leases(queue)
    late = queue.ack("a", [first], {first: [(ITEMS, b"late")]})  # back in the queue, unclaimed: done now
    assert late.late == 1 and queue.server.lrange(ITEMS, 0, -1) == [b"late"]

    second = lease(queue, "a")
    expire_leases(queue)
    again = lease(queue, "b")
    assert queue.ack("b", [again], {again: [(ITEMS, b"b")]}).acked == 1
    gone = queue.ack("a", [second], {second: [(ITEMS, b"a, too late")]})  # b crawled it: a's is dropped
    assert (gone.acked, gone.late, gone.stale) == (0, 0, 0)
    assert queue.server.lrange(ITEMS, 0, -1) == [b"late", b"b"]


def test_the_add_on_swaps_scrapy_redis_pipeline_only_on_a_shared_crawl(redis_url: str) -> None:
    shared = get_crawler(
        LinksSpider,
        {
            "ADDONS": {SharedCrawl: 0},
            "REDIS_URL": redis_url,
            "ITEM_PIPELINES": {"scrapy_redis.pipelines.RedisPipeline": 300},
        },
    )
    alone = get_crawler(LinksSpider, {"ADDONS": {SharedCrawl: 0}, "ITEM_PIPELINES": {RedisPipeline: 300}})

    pipelines = shared.settings.getdict("ITEM_PIPELINES")
    assert pipelines == {AcknowledgedRedisPipeline: 300}
    assert shared.settings.getdict("SPIDER_MIDDLEWARES")[ItemOrigins] == 1
    assert alone.settings.getdict("ITEM_PIPELINES") == {RedisPipeline: 300}
