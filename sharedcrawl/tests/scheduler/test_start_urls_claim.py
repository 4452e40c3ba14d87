"""Every entry of a start-URLs key is taken by exactly one worker, and none is lost (issue 17, item 1).

A scrapy-redis start request is ``dont_filter``: no dupefilter catches a second worker queueing the
same entry, so the workers take a key's entries one at a time, under a claim on the key. Each worker
here is a real :class:`LeasingScheduler`, opened on a private redis-server, running its heartbeat's
intake as it does once a second in a crawl; the spider is scrapy-redis's own ``RedisSpider``. A
worker "in the middle of its take" is one whose spider is still turning the entries into requests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy_redis.spiders import RedisSpider

from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.scheduler import LeasingScheduler
from scrapy_sharedcrawl.start_urls import STATS, claim_key
from scrapy_sharedcrawl.testing.processes import wait_for
from scrapy_sharedcrawl.testing.redis_server import redis_server
from scrapy_sharedcrawl.testing.scheduling import shared_worker

SITE = "http://pages.test:8080"
URLS = [f"{SITE}/page/{number}" for number in range(6)]
#: The entries, in scrapy-redis's JSON data format.
ENTRIES = [json.dumps({"url": url}) for url in URLS]


class FeedSpider(RedisSpider):
    """A RedisSpider with a key of its own, and a way to act while it makes its start requests."""

    name = "claimfeed"
    allowed_domains = ("pages.test",)
    redis_key = "claimfeed:urls"
    redis_batch_size = 16
    #: Called once, while this worker turns its entries into requests (after taking, before queueing).
    meanwhile: Callable[[], object] | None = None

    def make_request_from_data(self, data: bytes) -> Any:
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return super().make_request_from_data(data)

    def parse(self, response: Any) -> Any:
        yield {"url": response.url}


def worker(redis_url: str, **settings: Any) -> LeasingScheduler:
    """One worker's scheduler, opened as a crawl opens it."""
    return shared_worker(FeedSpider, redis_url, **settings)


def stat(scheduler: LeasingScheduler, name: str) -> int:
    return int(scheduler.stats.get_value(f"{STATS}{name}", 0))


def queued_urls(scheduler: LeasingScheduler) -> list[str]:
    """Every request in the shared queue, leased out to look at (the queue is left empty)."""
    queue: LeasedPriorityQueue = scheduler.queue
    popped = queue.pop("checker", 60, count=1000)
    assert not popped.undecodable and not popped.missing
    requests = [request for _, request in popped.leased]
    assert all(request.dont_filter for request in requests)  # what no dupefilter would catch twice
    return sorted(request.url for request in requests)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as server:
        yield server


def test_a_second_worker_takes_nothing_while_the_first_holds_the_claim(
    redis_url: str, client: redis.Redis
) -> None:
    first, second = worker(redis_url), worker(redis_url)
    client.rpush(FeedSpider.redis_key, *ENTRIES)
    seen_meanwhile: list[bool] = []

    def second_looks() -> None:  # the first is between taking the entries and queueing their requests
        seen_meanwhile.append(bool(client.exists(claim_key(FeedSpider.redis_key))))
        second.heartbeat.take_start_urls()

    first.spider.meanwhile = second_looks  # type: ignore[attr-defined]
    first.heartbeat.take_start_urls()
    second.heartbeat.take_start_urls()  # and again after: the key is empty

    assert queued_urls(first) == sorted(URLS)  # each entry once
    assert seen_meanwhile == [True]
    assert stat(second, "claimed_elsewhere") == 1 and not second.heartbeat.start_urls.held
    assert client.llen(FeedSpider.redis_key) == 0
    assert not client.exists(claim_key(FeedSpider.redis_key))  # given up once done
    assert stat(first, "read") == len(URLS) and stat(second, "read") == 0
    assert first.end.seed_pending is False and first.state.seeded()  # the crawl is marked seeded


def test_a_dead_holders_claim_expires_and_its_entries_are_taken_once(
    redis_url: str, client: redis.Redis
) -> None:
    lease = {"SCHEDULER_LEASE_SECONDS": 5}  # ample for the survivor's first look to fall within it
    dead, survivor, late = worker(redis_url, **lease), worker(redis_url, **lease), worker(redis_url, **lease)
    client.rpush(FeedSpider.redis_key, *ENTRIES)

    taken = dead.heartbeat.start_urls.take()  # and dies before queueing anything
    assert len(taken) == len(URLS)
    survivor.heartbeat.take_start_urls()
    assert stat(survivor, "claimed_elsewhere") == 1 and client.llen(FeedSpider.redis_key) == len(URLS)

    def survivor_took_them() -> bool:
        survivor.heartbeat.take_start_urls()  # its heartbeat, once a second in a crawl
        return client.llen(FeedSpider.redis_key) == 0

    wait_for(survivor_took_them, timeout=30, interval=0.1, what="the entries taken once the claim expired")
    late.heartbeat.take_start_urls()

    assert queued_urls(survivor) == sorted(URLS)  # once: the late worker found the key empty
    assert stat(late, "read") == 0
    # a holder that was only stalled, not dead, learns its claim expired: counted and logged
    assert dead.heartbeat.start_urls.stored() == len(URLS)
    assert stat(dead, "claim_expired") == 1


@pytest.mark.parametrize("then", ["tick", "close"])
def test_entries_held_through_an_outage_are_not_read_again(then: str) -> None:
    with redis_server(persistence="aof") as server:
        held_by = worker(server.url)
        other = worker(server.url)
        with redis.Redis.from_url(server.url) as client:
            client.rpush(FeedSpider.redis_key, *ENTRIES)
        held_by.spider.meanwhile = server.stop  # type: ignore[attr-defined]  # Redis goes away mid-take

        held_by.heartbeat.take_start_urls()  # the requests wait in the worker for Redis
        assert len(held_by.unsent) == len(URLS) and held_by.outage.down
        server.start()  # the same data (AOF): the entries are still in the key
        assert held_by.try_reconnect()  # the held requests are stored (as the next tick does first)
        other.heartbeat.take_start_urls()  # the claim is still the first worker's
        if then == "tick":
            held_by.heartbeat.take_start_urls()  # the entries leave the key, not read again
            held_by.heartbeat.take_start_urls()
        else:  # the worker is stopped now: its entries leave the key as it closes

            async def shut_down() -> None:
                await maybe_deferred_to_future(held_by.close("shutdown"))

            asyncio.run(shut_down())

        with redis.Redis.from_url(server.url) as client:
            assert client.llen(FeedSpider.redis_key) == 0
            assert not client.exists(claim_key(FeedSpider.redis_key))
        assert queued_urls(other) == sorted(URLS)
        assert stat(held_by, "read") == len(URLS) and stat(other, "claimed_elsewhere") == 1
        assert stat(held_by, "claim_expired") == 0
