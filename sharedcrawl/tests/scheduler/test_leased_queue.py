"""The leased priority queue against a real redis-server: priorities, leases that expire, late and
stale acknowledgements, requeues that never duplicate, pushes checked by the dupefilter in the same
call, and the scheduler's acknowledgement barrier."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import scrapy
from conftest import make_spider
from news_spider import NewsSpider, story_sid
from scrapy.utils.defer import maybe_deferred_to_future

from scrapy_sharedcrawl import serialization
from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.scheduler import LeasingScheduler
from scrapy_sharedcrawl.signals import ack_barrier, requests_acknowledged
from scrapy_sharedcrawl.testing.scheduling import open_scheduler

# -- the leased queue ------------------------------------------------------------------


def test_higher_priority_first_then_first_in_first_out(
    queue: LeasedPriorityQueue, spider: NewsSpider
) -> None:
    pushed = [
        ("a", 0),
        ("b", 10),
        ("c", 0),
        ("d", 10),
        ("e", -5),
        ("f", 2**40),  # clamped, still first
    ]
    for name, priority in pushed:
        assert queue.push(scrapy.Request(f"http://www.news.test/{name}", priority=priority))
    order = []
    while popped := queue.pop("w1", 60).leased:
        order.append(popped[0][1].url.rsplit("/", 1)[1])
    assert order == ["f", "b", "d", "a", "c", "e"]


def test_a_lease_hides_a_request_until_it_expires_then_another_worker_gets_it(
    queue: LeasedPriorityQueue, spider: NewsSpider
) -> None:
    queue.push(spider.story_request(80222))
    (request_id, request), *_ = queue.pop("worker-a", lease_seconds=30).leased
    assert request.url.endswith("sid=80222")
    assert (len(queue), queue.leased_count()) == (0, 1)
    assert queue.pop("worker-b", 30).leased == []  # leased: not visible to others
    assert queue.requeue_expired() == 0  # not expired yet
    assert queue.renew("worker-a", [request_id], 30) == []  # the holder keeps it alive

    assert queue.requeue_expired(now=time.time() + 31) == 1  # as if worker-a died 31 s ago
    assert (len(queue), queue.leased_count()) == (1, 0)
    assert queue.renew("worker-a", [request_id], 30) == [request_id]  # worker-a has lost it
    (again_id, again), *_ = queue.pop("worker-b", 30).leased
    assert again_id == request_id and again.url == request.url and again.callback == spider.parse_story

    late = queue.ack("worker-a", [request_id])  # the old holder finishing late doesn't remove b's lease
    assert (late.acked, late.stale) == (0, 1) and queue.leased_count() == 1
    done = queue.ack("worker-b", [request_id])
    assert done.acked == 1 and (len(queue), queue.leased_count()) == (0, 0)
    assert queue.server.hlen(queue.payloads_key) == 0 and queue.held() == {}
    assert not queue.server.exists(queue.holders_key, queue.leased_key, queue.named.lease("worker-b"))


def test_a_late_ack_removes_the_requeued_copy(queue: LeasedPriorityQueue, spider: NewsSpider) -> None:
    queue.push(spider.story_request(1))
    (request_id, _), *_ = queue.pop("slow-worker", 30).leased
    queue.requeue_expired(now=time.time() + 60)
    assert len(queue) == 1
    result = queue.ack("slow-worker", [request_id])  # it did finish: no need to fetch it again
    assert result.late == 1 and len(queue) == 0 and queue.server.hlen(queue.payloads_key) == 0


def test_released_leases_go_back_with_their_priority(queue: LeasedPriorityQueue) -> None:
    queue.push(scrapy.Request("http://www.news.test/high", priority=5))
    queue.push(scrapy.Request("http://www.news.test/low", priority=1))
    (request_id, _), *_ = queue.pop("w", 30).leased
    assert queue.release("w", [request_id]) == 1
    assert queue.pop("w", 30).leased[0][1].url.endswith("/high")


def test_concurrent_requeues_do_not_duplicate(redis_url: str, spider: NewsSpider) -> None:
    first = open_scheduler(spider).queue
    second = open_scheduler(make_spider(redis_url)).queue  # another client, as another worker would be
    for sid in range(200):
        first.push(spider.story_request(sid + 1))
    while first.pop("dead-worker", 30, count=50).leased:
        pass
    assert first.leased_count() == 200

    start, counts = threading.Barrier(2), []

    def requeue(queue: LeasedPriorityQueue) -> None:
        total = 0
        for _ in range(40):  # the two calls of a round race (a loaded machine could run one thread alone)
            start.wait(timeout=30)
            total += queue.requeue_expired(now=time.time() + 60, limit=7)
        counts.append(total)

    threads = [threading.Thread(target=requeue, args=(q,)) for q in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(counts) == 200 and all(counts), counts  # both worked, neither duplicated
    ids = [request_id for request_id, _ in first.queued()]
    assert len(ids) == len(set(ids)) == 200 and first.leased_count() == 0


def test_push_checks_the_dupefilter_in_the_same_call(queue: LeasedPriorityQueue, spider: NewsSpider) -> None:
    scheduler = open_scheduler(spider)
    dropped: list[str] = []

    def on_dropped(request: scrapy.Request, spider: scrapy.Spider) -> None:
        dropped.append(request.url)

    spider.crawler.signals.connect(on_dropped, signal=scrapy.signals.request_dropped)
    story = spider.story_request(80222)
    retry = story.replace(dont_filter=True, meta={**story.meta, "retry_times": 1})
    batch = [story, spider.story_request(80222, categories=["linux"]), retry, retry.replace()]
    assert all(scheduler.enqueue_request(request) for request in batch)  # answered before Redis is asked
    assert len(scheduler.queue) == 0 and len(scheduler) == 4  # waiting in this worker: still pending
    before = scheduler.queue.round_trips
    assert scheduler.push_unsent() and scheduler.queue.round_trips == before + 1  # one for all four
    assert len(scheduler.queue) == 3  # the original and two dont_filter copies, each with its own id
    assert dropped == [story.url]  # the seen one is announced as Scrapy's scheduler would
    assert scheduler.stats.get_value("dupefilter/filtered") == 1
    assert scheduler.stats.get_value("scheduler/enqueued/redis") == 3
    entry = scheduler.queue.encode(spider.story_request(1), scheduler.compact.check(spider.story_request(1)))  # type: ignore[union-attr]
    assert scheduler.queue.push_encoded(entry) == 1
    assert scheduler.queue.push_encoded(entry) == 0  # a retried push (lost reply) queues nothing twice


def test_pushes_ride_with_a_pop_that_leases_several(redis_url: str, spider: NewsSpider) -> None:
    scheduler = open_scheduler(make_spider(redis_url, SCHEDULER_PREFETCH=3))
    for sid in range(1, 6):
        scheduler.enqueue_request(spider.story_request(sid))
    before = scheduler.queue.round_trips
    first = scheduler.next_request()  # pushes the five and leases three: one round trip
    assert first is not None and scheduler.queue.round_trips == before + 1
    assert scheduler.queue.pending() == (2, 3) and len(scheduler) == 2 + 2
    before = scheduler.queue.round_trips
    handed = [first, scheduler.next_request(), scheduler.next_request()]
    assert scheduler.queue.round_trips == before  # the two others came from this worker's leases
    assert [story_sid(request.url) for request in handed if request] == [1, 2, 3]
    assert scheduler.renew_leases() == 3
    fourth = scheduler.next_request()
    assert fourth is not None and scheduler.queue.pending() == (0, 5)

    async def shut_down() -> None:
        await maybe_deferred_to_future(scheduler.close("shutdown"))

    asyncio.run(shut_down())  # the prefetched one and those in progress go back
    assert scheduler.queue.pending() == (5, 0)
    assert scheduler.stats.get_value("scheduler/released") == 5


def test_has_pending_requests_counts_leases_held_by_any_worker(redis_url: str, spider: NewsSpider) -> None:
    mine, other = open_scheduler(spider), open_scheduler(make_spider(redis_url))
    other.enqueue_request(spider.story_request(80222))
    request = other.next_request()
    assert request is not None and len(mine) == 0
    assert mine.has_pending_requests()  # queue empty, but a lease is out: other may yet find more
    other.request_done(request)
    other.queue.ack(other.worker_id, [request_id for request_id, _ in other.leases.done])
    assert not mine.has_pending_requests()


def test_acknowledgement_waits_for_the_barrier_then_announces_the_urls(spider: NewsSpider) -> None:
    scheduler = open_scheduler(spider)
    events: list[Any] = []
    durable = False

    async def barrier(scheduler: LeasingScheduler) -> None:  # a batching store making items durable
        events.append("barrier")
        if not durable:
            raise ConnectionError("store unreachable")

    def acknowledged(scheduler: LeasingScheduler, urls: list[str]) -> None:
        events.append(urls)

    spider.crawler.signals.connect(barrier, signal=ack_barrier)
    spider.crawler.signals.connect(acknowledged, signal=requests_acknowledged)
    scheduler.enqueue_request(spider.story_request(80222))
    request = scheduler.next_request()
    assert request is not None
    scheduler.request_done(request)

    assert asyncio.run(scheduler.acknowledge()) == 0  # the store failed: the request stays leased
    assert events == ["barrier"] and scheduler.queue.leased_count() == 1
    assert scheduler.renew_leases() == 1  # and its lease is kept alive meanwhile
    durable = True
    assert asyncio.run(scheduler.acknowledge()) == 1
    assert events == ["barrier", "barrier", [request.url]]
    assert scheduler.queue.pending() == (0, 0) and scheduler.stats.get_value("scheduler/acked") == 1


def test_a_request_queued_by_the_previous_release_is_still_crawled(
    queue: LeasedPriorityQueue, spider: NewsSpider
) -> None:
    """The previous layout: the queue member is the id, the payload (long keys) in the payloads hash."""
    request = spider.story_request(80222, categories=["linux"])
    long_keys = serialization.long_keys(json.loads(serialization.request_to_bytes(request, spider)))
    payload = json.dumps(long_keys).encode()  # as the previous release wrote it: every key spelled out
    assert payload.startswith(b'{"url": ')
    queue.server.delete(queue.queue_key)  # the layout marker: an older release's Redis has a ZSET there
    queue.server.hset(queue.payloads_key, "0123456789abcdef", payload)
    queue.server.zadd(queue.queue_key, {"0123456789abcdef": 0})
    queue = open_scheduler(spider).queue  # a worker of this release opens: the ZSET is moved
    popped = queue.pop("worker", 30)
    assert popped.missing == 0 and popped.undecodable == []
    ((request_id, again),) = popped.leased
    assert request_id == "0123456789abcdef" and again.url == request.url
    assert again.callback == spider.parse_story and again.cb_kwargs == {"categories": ["linux"]}
    assert queue.ack("worker", [request_id]).acked == 1
    assert queue.server.hlen(queue.payloads_key) == 0 and queue.pending() == (0, 0)
