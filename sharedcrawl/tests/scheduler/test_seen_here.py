"""A duplicate of a request this worker queued in the crawl is dropped in the worker, as Scrapy's own
scheduler drops it: no admission check, no serialization, no Redis command. What the worker remembers
is forgotten whenever it holds no lease (the only time the crawl can end and its filter be emptied),
and is bounded. Real scheduler on the private redis-server; Redis's ``commandstats`` count the pushes.
Also the batch push itself: one script call for a batch, each request checked as if pushed alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from unittest.mock import ANY

import pytest
import redis
from scrapy import Request, Spider

from scrapy_sharedcrawl.scheduler import LeasingScheduler
from scrapy_sharedcrawl.scheduler.lease_ledger import SeenHere
from scrapy_sharedcrawl.testing.scheduling import shared_worker

SITE = "https://example.org"


class PagesSpider(Spider):
    name = "pages"
    allowed_domains = ("example.org",)

    def parse(self, response: object) -> None:
        pass


@pytest.fixture
def server(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def open_scheduler(redis_url: str, **settings: Any) -> LeasingScheduler:
    return shared_worker(PagesSpider, redis_url, **settings)


def evalsha_calls(server: redis.Redis) -> int:
    stats = server.info("commandstats").get("cmdstat_evalsha")
    return int(stats["calls"]) if stats else 0


def lease_one(scheduler: LeasingScheduler, url: str) -> Request:
    """Queue ``url`` and lease it: the worker then holds a lease, as while it parses a page."""
    assert scheduler.enqueue_request(Request(url, dont_filter=True, meta={"is_start_request": True}))
    request = scheduler.next_request()
    assert request is not None and request.url == url
    return request


def finish(scheduler: LeasingScheduler, request: Request) -> None:
    scheduler.request_done(request)
    assert asyncio.run(scheduler.acknowledge()) == 1


def test_a_duplicate_of_a_request_queued_here_is_dropped_without_a_round_trip(
    redis_url: str, server: redis.Redis
) -> None:
    scheduler = open_scheduler(redis_url)
    lease_one(scheduler, f"{SITE}/")
    assert scheduler.enqueue_request(Request(f"{SITE}/a"))
    assert scheduler.push_unsent()
    server.config_resetstat()
    for _ in range(3):
        assert scheduler.enqueue_request(Request(f"{SITE}/a")) is False  # the engine sends request_dropped
    assert len(scheduler.unsent) == 0 and scheduler.push_unsent()
    assert evalsha_calls(server) == 0  # nothing went to Redis for them
    stats = scheduler.stats
    assert stats.get_value("scheduler/filtered_here") == 3
    assert stats.get_value("dupefilter/filtered") == 3  # counted as Scrapy's scheduler counts a duplicate
    assert stats.get_value("scheduler/enqueued/redis") == 2  # the start request and /a, once
    # a dont_filter request is never dropped, and a new URL still goes to Redis
    assert scheduler.enqueue_request(Request(f"{SITE}/a", dont_filter=True, meta={"retry_times": 1}))
    assert scheduler.enqueue_request(Request(f"{SITE}/b"))
    assert len(scheduler.unsent) == 2


def test_forgotten_when_no_lease_is_held_so_a_new_crawl_queues_the_url_again(
    redis_url: str, server: redis.Redis
) -> None:
    scheduler = open_scheduler(redis_url)
    start = lease_one(scheduler, f"{SITE}/")
    assert scheduler.enqueue_request(Request(f"{SITE}/a"))
    assert scheduler.enqueue_request(Request(f"{SITE}/a")) is False
    assert scheduler.push_unsent()  # /a is stored before its parent is acknowledged
    finish(scheduler, start)
    page = scheduler.next_request()
    assert page is not None and page.url == f"{SITE}/a"
    finish(scheduler, page)
    assert not scheduler.leases.leased
    # the crawl ends: its queue and filter are deleted (SCHEDULER_PERSIST off)
    assert scheduler.end.finalize()
    assert len(scheduler.queue) == 0
    # a new crawl: the same worker finds /a again and queues it (the emptied shared filter agrees)
    start = lease_one(scheduler, f"{SITE}/")
    assert scheduler.enqueue_request(Request(f"{SITE}/a"))
    assert scheduler.push_unsent()
    assert len(scheduler.queue) == 1
    assert scheduler.stats.get_value("scheduler/filtered_here") == 1  # only the first crawl's duplicate


def test_while_no_lease_is_held_nothing_is_dropped_here(redis_url: str) -> None:
    """Start requests are queued before any lease: a duplicate goes to the shared filter, which knows."""
    scheduler = open_scheduler(redis_url)
    assert scheduler.enqueue_request(Request(f"{SITE}/a"))
    assert scheduler.enqueue_request(Request(f"{SITE}/a"))
    assert scheduler.push_unsent()
    assert scheduler.stats.get_value("scheduler/filtered_here") is None
    assert scheduler.stats.get_value("dupefilter/filtered") == 1  # the shared filter dropped it
    assert scheduler.stats.get_value("scheduler/enqueued/redis") == 1


def fingerprint(value: int) -> bytes:
    return value.to_bytes(8, "big") + bytes(12)  # 20 bytes, as Scrapy's fingerprints


def test_memory_is_bounded_and_what_keeps_coming_back_stays() -> None:
    seen = SeenHere(limit=100)
    seen.add(SeenHere.key(fingerprint(0)))
    for value in range(1, 10_000):
        key = SeenHere.key(fingerprint(value))
        assert not seen.seen(key)
        seen.add(key)
        assert seen.seen(SeenHere.key(fingerprint(0)))  # found often: stays
        assert len(seen) <= 100
    assert seen.seen(SeenHere.key(fingerprint(9_999)))
    assert not seen.seen(SeenHere.key(fingerprint(1)))  # long unseen: forgotten
    seen.forget()
    assert len(seen) == 0


@pytest.mark.parametrize("mode", ["set", "bloom"])
def test_a_batch_pushed_in_one_script_call_checks_each_request_in_order(
    redis_url: str, server: redis.Redis, mode: str
) -> None:
    """The push batch is one script call: each request is checked by the shared filter and queued as
    if pushed alone, duplicates within the batch included (what the worker did not drop itself)."""
    scheduler = open_scheduler(redis_url, DUPEFILTER_MODE=mode)
    queue, compact = scheduler.queue, scheduler.compact
    assert compact is not None

    def entry(path: str, dont_filter: bool = False) -> Any:
        request = Request(f"{SITE}{path}", dont_filter=dont_filter, meta={"retry_times": 1})
        return queue.encode(request, None if dont_filter else compact.check(request))

    assert queue.push_many([entry("/a")]) == [(1, ANY)]
    server.config_resetstat()
    batch = [entry("/b"), entry("/a"), entry("/c"), entry("/b"), entry("/a", dont_filter=True), entry("/d")]
    statuses = [status for status, _ in queue.push_many(batch)]
    assert statuses == [1, 0, 1, 0, 1, 1]
    assert evalsha_calls(server) == 1
    assert len(queue) == 5  # /a, /b, /c, /d, and the retry of /a
    assert [status for status, _ in queue.push_many(batch[:1])] == [0]  # seen: a retried push is a no-op
