"""The shared bucket: requests of hosts without a queue of their own wait in one LIST per priority.

Real Redis. A host costs nothing while its requests wait in the bucket, so a crawl of many hosts with a
few URLs each costs what a crawl of one host costs; a host gets a queue of its own (and a place in
``ready``/``wait``) only when one of its requests must wait for its rate or a pause, and loses it when
that queue is empty and its turn is over. Arrival order within a host and its rate hold across the two.
"""

from __future__ import annotations

import redis
import scrapy

from scrapy_sharedcrawl.keys import BUCKET
from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.testing.scheduling import shared_worker


class BroadSpider(scrapy.Spider):
    name = "solidot"


def new_queue(redis_url: str, **settings: object) -> LeasedPriorityQueue:
    return shared_worker(BroadSpider, redis_url, **settings).queue


def push(queue: LeasedPriorityQueue, *urls: str) -> None:
    statuses = [status for status, _ in queue.push_many([queue.encode(scrapy.Request(url)) for url in urls])]
    assert statuses == [1] * len(urls)


def urls(queue: LeasedPriorityQueue, count: int) -> list[str]:
    return [request.url for _, request in queue.pop("w", 60, count=count).leased]


def queue_bytes(queue: LeasedPriorityQueue) -> int:
    """MEMORY USAGE of every key the queue keeps requests in (the bucket's and each host's)."""
    return sum(queue.server.memory_usage(key, samples=0) or 0 for key in queue.storage_keys())


def test_many_hosts_with_a_few_urls_cost_what_one_host_costs(redis_url: str) -> None:
    queue = new_queue(redis_url, CLUSTER_HOST_RATE=4)
    hosts, per_host = 2_000, 3
    one_host = [f"http://h0000.test/page/{n:06d}" for n in range(hosts * per_host)]
    many_hosts = [f"http://h{n // per_host:04d}.test/page/{n:06d}" for n in range(hosts * per_host)]
    costs = []
    for crawl in (one_host, many_hosts):
        queue.clear()
        for start in range(0, len(crawl), 500):
            push(queue, *crawl[start : start + 500])
        assert len(queue) == len(crawl)
        costs.append(queue_bytes(queue) / len(crawl))
    assert costs[1] <= costs[0] * 1.01, costs
    assert queue.server.hlen(queue.named.hosts) == 1  # the bucket alone: no host has a queue yet


def own_queue(queue: LeasedPriorityQueue, host: str) -> list[str]:
    return [
        member.split(b'"u":"', 1)[1].split(b'"', 1)[0].decode()
        for member in queue.server.lrange(queue.named.host_queue(0, host), 0, -1)
    ]


def test_a_host_gets_a_queue_of_its_own_only_while_it_must_wait(redis_url: str) -> None:
    queue = new_queue(redis_url, CLUSTER_HOST_RATE=0.1)  # 10 s apart: one request of a host per turn
    push(queue, *(f"http://slow.test/{n}" for n in range(3)), "http://other.test/1")
    assert urls(queue, 16) == ["http://slow.test/0", "http://other.test/1"]
    assert queue.hosts() == (0, 1)  # slow.test's others wait in a queue of its own, for its rate
    assert own_queue(queue, "slow.test") == ["http://slow.test/1", "http://slow.test/2"]
    # what comes for it meanwhile goes behind them, through the bucket, at the next pop
    push(queue, "http://slow.test/3", "http://new.test/1")
    assert urls(queue, 16) == ["http://new.test/1"]
    assert own_queue(queue, "slow.test") == [f"http://slow.test/{n}" for n in (1, 2, 3)]
    assert queue.server.hget(queue.named.hosts, BUCKET) is None  # the bucket is empty: gone from hosts
    # its turn comes (as if the time had passed): the next in arrival order
    queue.server.zadd(queue.named.wait, {"slow.test": 0})
    queue.server.hset(queue.named.hosts, "slow.test", "0 0")
    assert urls(queue, 16) == ["http://slow.test/1"]
    assert queue.hosts() == (0, 1) and len(queue) == 2


def test_a_paced_hosts_turn_holds_across_pops_while_its_requests_come_through_the_bucket(
    redis_url: str,
) -> None:
    queue = new_queue(redis_url, CLUSTER_HOST_RATE=0.1)
    push(queue, "http://paced.test/0")
    assert urls(queue, 8) == ["http://paced.test/0"]
    assert queue.hosts() == (0, 0)  # no queue of its own: only its next time is kept
    push(queue, "http://paced.test/1")
    assert urls(queue, 8) == []  # its turn is 10 s after the first one's
    assert queue.hosts() == (0, 1) and own_queue(queue, "paced.test") == ["http://paced.test/1"]


def test_a_hosts_turn_is_forgotten_once_over(redis_url: str) -> None:
    queue = new_queue(redis_url, CLUSTER_HOST_RATE=4)
    push(queue, "http://once.test/0")
    assert urls(queue, 8) == ["http://once.test/0"]
    assert queue.server.hexists(queue.named.hosts, "once.test")  # its next time, for a request to come
    queue.server.zadd(queue.named.recent, {"once.test": 0})  # as if its turn were over
    assert urls(queue, 8) == []
    assert queue.server.hlen(queue.named.hosts) == 0 and queue.server.zcard(queue.named.recent) == 0


def test_a_payload_whose_host_the_script_cannot_read_goes_to_the_hosts_own_queue(redis_url: str) -> None:
    queue = new_queue(redis_url)
    plain, with_user = (
        queue.encode(scrapy.Request(url)) for url in ("http://a.test/1", "http://me@b.test/1")
    )
    assert plain.place == BUCKET and with_user.place == with_user.host == "b.test"
    assert [status for status, _ in queue.push_many([plain, with_user])] == [1, 1]
    assert queue.server.llen(queue.named.host_queue(0, "b.test")) == 1
    assert sorted(urls(queue, 8)) == ["http://a.test/1", "http://me@b.test/1"]


def test_a_worker_of_the_release_before_the_bucket_serves_it_as_a_host(redis_url: str) -> None:
    """What an old worker does with the bucket: its ``"<priority> *|<worker>"`` lease goes back there."""
    queue = new_queue(redis_url)
    push(queue, "http://a.test/1")
    server = redis.Redis.from_url(redis_url)
    (member,) = server.lrange(queue.named.host_queue(0, BUCKET), 0, -1)
    request_id = member.split(b" ")[0]
    # an old worker's pop, by hand: the member out of the "*" host, leased as "0 *|old"
    server.lpop(queue.named.host_queue(0, BUCKET))
    server.hset(queue.named.hosts, BUCKET, "0")  # its schedule kept, no level left
    server.hset(queue.payloads_key, request_id, member.split(b" ", 1)[1])
    server.zadd(queue.leases_key, {request_id: 0})
    server.hset(queue.owners_key, request_id, "0 *|old")
    server.decr(queue.count_key)
    assert queue.requeue_expired() == 1 and len(queue) == 1
    assert urls(queue, 8) == ["http://a.test/1"]


def test_an_idle_queue_is_cleared_with_the_hosts_turns(redis_url: str) -> None:
    queue = new_queue(redis_url, CLUSTER_HOST_RATE=0.1)
    push(queue, "http://turn.test/0")
    ((request_id, _),) = queue.pop("w", 60, count=8).leased
    assert queue.server.exists(queue.named.recent)  # turn.test's turn is kept
    assert queue.ack("w", [request_id]).acked == 1 and queue.clear_if_idle()
    assert not queue.server.exists(queue.named.recent, queue.named.hosts, queue.named.count)
