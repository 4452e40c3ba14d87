"""Leases kept per worker, against a real redis-server: one hash of leased requests a worker, one
deadline a worker, a lease counter; what a dead worker held comes back whole, a live one keeps all it
holds with one write, late and stale acknowledgements still tell apart, a previous release's leases
are still requeued, and a leased request costs little more than a queued one."""

from __future__ import annotations

import time

import pytest
import redis
import scrapy
from news_spider import NewsSpider

from scrapy_sharedcrawl.keys import leased_total
from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.testing.scheduling import open_scheduler

ITEMS = "{news}:items"
#: Bytes a leased request may cost beyond a queued one (a news story request: an 11-character id, a
#: 13-character host; measured 57–73 on Redis 7.0): the hash's entry (24), the id as a string of its
#: own (16), the host and priority repeated in the entry, the table's bucket (8–16 as it doubles) and the
#: allocator's rounding.
LEASE_OVERHEAD = 80


def lease(queue: LeasedPriorityQueue, worker: str, count: int = 1, seconds: float = 30) -> list[str]:
    return [request_id for request_id, _ in queue.pop(worker, seconds, count=count).leased]


def retry(spider: NewsSpider, sid: int) -> scrapy.Request:
    """A retry of a story request, as Scrapy's retry middleware makes it: unfiltered."""
    story = spider.story_request(sid)
    return story.replace(dont_filter=True, meta={**story.meta, "retry_times": 1})


def push_stories(queue: LeasedPriorityQueue, spider: NewsSpider, sids: range) -> None:
    pushed = queue.push_many([queue.encode(spider.story_request(sid)) for sid in sids])
    assert [status for status, _ in pushed] == [1] * len(sids)


def test_a_dead_workers_leases_all_come_back_and_a_live_ones_are_kept(
    queue: LeasedPriorityQueue, spider: NewsSpider
) -> None:
    push_stories(queue, spider, range(1, 6))
    dead, alive = lease(queue, "dead", 3), lease(queue, "alive", 2)
    assert queue.held() == {"dead": 3, "alive": 2} and queue.pending() == (0, 5)
    # one id named extends every lease the worker holds: they share its deadline
    assert queue.renew("alive", alive[:1], 120) == []

    later = time.time() + 31  # "dead" stopped renewing 31 s ago
    assert [queue.requeue_expired(now=later, limit=2) for _ in range(3)] == [2, 1, 0]
    assert sorted(request_id for request_id, _ in queue.queued()) == sorted(dead)
    assert queue.held() == {"alive": 2} and queue.pending() == (3, 2)
    assert queue.server.zrange(queue.holders_key, 0, -1) == [b"alive"]
    assert queue.renew("dead", dead, 30) == dead  # all lost; and no deadline for a worker holding none
    assert queue.server.zscore(queue.holders_key, "dead") is None


def test_an_empty_pop_does_not_keep_leases_the_worker_does_not_know_of(
    queue: LeasedPriorityQueue, spider: NewsSpider
) -> None:
    push_stories(queue, spider, range(1, 2))
    lease(queue, "w")  # its reply lost, say: the worker holds a lease it never heard of
    assert lease(queue, "w", seconds=600) == []  # polls on an empty queue set no deadline
    assert queue.requeue_expired(now=time.time() + 31) == 1 and queue.pending() == (1, 0)


def test_renew_returns_the_ids_a_worker_no_longer_holds(
    queue: LeasedPriorityQueue, spider: NewsSpider
) -> None:
    push_stories(queue, spider, range(1, 4))
    first, second, third = lease(queue, "w", 3)
    assert queue.release("w", [second]) == 1
    assert queue.ack("w", [third]).acked == 1
    assert queue.renew("w", [first, second, third], 30) == [second, third]
    assert queue.held() == {"w": 1} and queue.leased_count() == 1


def test_a_late_acknowledgement_removes_the_requeued_request_and_pushes_its_outputs(
    queue: LeasedPriorityQueue, spider: NewsSpider
) -> None:
    push_stories(queue, spider, range(1, 3))
    first, second = lease(queue, "slow", 2)
    assert queue.requeue_expired(now=time.time() + 31) == 2 and queue.pending() == (2, 0)
    late = queue.ack("slow", [first], {first: [(ITEMS, b"late")]})
    assert (late.acked, late.late, late.stale) == (0, 1, 0)
    assert queue.server.lrange(ITEMS, 0, -1) == [b"late"]
    assert [request_id for request_id, _ in queue.queued()] == [second] and queue.pending() == (1, 0)
    assert queue.server.hkeys(queue.requeued_key) == [second.encode()]


def test_a_stale_acknowledgement_drops_its_outputs_and_the_new_holders_counts(
    queue: LeasedPriorityQueue, spider: NewsSpider
) -> None:
    push_stories(queue, spider, range(1, 2))
    (first,) = lease(queue, "stalled")
    queue.requeue_expired(now=time.time() + 31)
    assert lease(queue, "other") == [first]
    stale = queue.ack("stalled", [first], {first: [(ITEMS, b"from stalled")]})
    assert (stale.acked, stale.late, stale.stale) == (0, 0, 1) and queue.held() == {"other": 1}
    fresh = queue.ack("other", [first], {first: [(ITEMS, b"from other")]})
    assert fresh.acked == 1 and queue.server.lrange(ITEMS, 0, -1) == [b"from other"]
    # nothing left behind: no lease, no requeued entry, no holder, no counter
    assert queue.pending() == (0, 0) and queue.storage_keys() == queue.named.state
    assert not queue.server.exists(queue.requeued_key, queue.holders_key, queue.leased_key)
    gone = queue.ack("stalled", [first])  # done by "other": neither late nor stale
    assert (gone.acked, gone.late, gone.stale) == (0, 0, 0)


def test_a_retried_unchecked_push_is_a_no_op_until_the_request_is_acknowledged(
    queue: LeasedPriorityQueue, spider: NewsSpider
) -> None:
    entry = queue.encode(retry(spider, 1))
    assert entry.check is None and queue.push_encoded(entry) == 1
    assert lease(queue, "w") == [entry.request_id]
    assert queue.push_encoded(entry) == 2  # leased: a retry after a lost reply queues nothing
    queue.requeue_expired(now=time.time() + 31)
    assert queue.push_encoded(entry) == 2 and len(queue) == 1  # back in the queue: still once
    assert lease(queue, "w") == [entry.request_id] and queue.push_encoded(entry) == 2
    assert queue.ack("w", [entry.request_id]).acked == 1
    assert not queue.server.exists(queue.named.unchecked)
    buried = queue.encode(retry(spider, 2))
    assert queue.push_encoded(buried) == 1 and lease(queue, "w") == [buried.request_id]
    assert not queue.bury("another", buried.request_id, "payload: test")  # only its holder buries it
    assert queue.bury("w", buried.request_id, "payload: test") and queue.pending() == (0, 0)
    assert not queue.server.exists(queue.named.unchecked)


@pytest.mark.parametrize(
    ("owner", "host"),
    [("20 www.news.test|old-worker", "www.news.test"), ("-85899345920|old-worker", "")],
    ids=["host queue release", "ZSET queue release"],
)
def test_a_previous_releases_leases_are_requeued_when_they_expire_and_acked_late(
    queue: LeasedPriorityQueue, spider: NewsSpider, owner: str, host: str
) -> None:
    """As the previous release left them: payload, deadline and owner ("<priority> <host>|<worker>",
    or "<score>|<worker>" before the host queue) in three keys. This release never writes them."""
    entry = queue.encode(spider.story_request(7))
    named, server = queue.named, queue.server
    push_stories(queue, spider, range(1, 2))  # queued meanwhile
    server.hset(named.payloads, entry.request_id, entry.payload)
    server.hset(named.owners, entry.request_id, owner)
    server.zadd(named.leases, {entry.request_id: (time.time() + 30) * 1000})
    assert queue.pending() == (1, 1) and not queue.clear_if_idle()  # out: the crawl is not idle

    assert queue.requeue_expired() == 0  # not expired yet
    assert queue.requeue_expired(now=time.time() + 31) == 1 and queue.pending() == (2, 0)
    assert not server.exists(named.payloads, named.owners, named.leases)
    assert server.hget(named.requeued, entry.request_id) == f"20 {host} {entry.request_id} ".encode() + (
        entry.payload
    )
    head = server.lindex(named.host_queue(20, host), 0)  # back at the head of its host at its priority
    assert head == f"{entry.request_id} ".encode() + entry.payload
    late = queue.ack("old-worker", [entry.request_id])  # the old worker finishing it after all
    assert late.late == 1 and queue.pending() == (1, 0)


def test_the_lease_counter_is_kept_and_a_strangers_value_is_counted_again(
    queue: LeasedPriorityQueue, spider: NewsSpider
) -> None:
    push_stories(queue, spider, range(1, 6))
    lease(queue, "a", 2)
    lease(queue, "b", 3)
    assert queue.server.get(queue.leased_key) == b"5"
    queue.server.set(queue.leased_key, "junk")
    assert queue.leased_count() == 2  # unreadable: at least one a holder, never "nothing leased"
    owner, request_id, _ = queue.leases()[0]
    assert queue.ack(owner, [request_id]).acked == 1
    assert queue.server.get(queue.leased_key) == b"4" and queue.leased_count() == 4  # counted again
    for worker, held, _ in queue.leases():
        queue.ack(worker, [held])
    assert not queue.server.exists(queue.leased_key, queue.holders_key)
    queue.server.set(queue.leased_key, 7)  # a counter with no holder left behind is no lease
    assert queue.leased_count() == 0 and leased_total(7, 0, 0) == 0


def test_a_lease_entry_a_stranger_wrote_goes_to_the_dead_letters(
    queue: LeasedPriorityQueue,
) -> None:
    queue.server.hset(queue.named.lease("ghost"), "planted", "not a lease entry")
    queue.server.zadd(queue.holders_key, {"ghost": 0})
    assert queue.requeue_expired() == 1 and queue.held() == {}
    popped = queue.pop("w", 30)
    assert popped.leased == [] and [request_id for request_id, _ in popped.undecodable] == ["planted"]
    assert queue.bury("w", "planted", popped.undecodable[0][1])
    assert queue.pending() == (0, 0) and queue.server.hexists(queue.dead_key, "planted")


def test_a_leased_request_costs_a_queued_one_and_a_little_more(spider: NewsSpider) -> None:
    scheduler = open_scheduler(spider)  # pushed as a worker pushes: through the duplicate filter
    queue, requests = scheduler.queue, 2000
    assert scheduler.compact is not None
    stories = [spider.story_request(sid) for sid in range(1, requests + 1)]
    pushed = queue.push_many([queue.encode(story, scheduler.compact.check(story)) for story in stories])
    assert [status for status, _ in pushed] == [1] * requests
    server: redis.Redis = queue.server

    def usage(keys: list[str]) -> float:
        return sum(server.memory_usage(key, samples=0) or 0 for key in keys if server.exists(key)) / requests

    queued = usage(queue.storage_keys())
    while lease(queue, "w", 100):
        pass
    named = queue.named
    leased = usage([named.holders, named.leased, named.lease("w")])
    print(f"{queued:.1f} B a queued request, {leased:.1f} B a leased one")
    assert queue.pending() == (0, requests) and not server.exists(named.unchecked)
    assert leased <= queued + LEASE_OVERHEAD, (queued, leased)
