"""The shared queue's structure: a queue per host and priority, hosts handed out at their rate.

Real Redis. What a pop hands out: the best priority across the hosts that may send now, priority then
arrival order within a host, at most what a rate-limited host can send soon; a paused host waits
while the others are served; expired leases go back to the head of their own host's queue; a pop
costs the same with ten hosts or ten thousand; a previous release's queue is moved, and a worker of
that release is refused.
"""

from __future__ import annotations

import time

import pytest
import redis
import scrapy

from scrapy_sharedcrawl.cluster_rate import ClusterRateLimitMiddleware
from scrapy_sharedcrawl.host_names import queue_host
from scrapy_sharedcrawl.queue import LAYOUT, PREVIOUS_LAYOUT, Encoded, LeasedPriorityQueue
from scrapy_sharedcrawl.testing.scheduling import plant, shared_worker


def request(host: str, path: str, priority: int = 0, **kwargs: object) -> scrapy.Request:
    return scrapy.Request(f"http://{host}/{path}", priority=priority, **kwargs)  # type: ignore[arg-type]


def push(queue: LeasedPriorityQueue, *requests: scrapy.Request) -> None:
    assert [status for status, _ in queue.push_many([queue.encode(r) for r in requests])] == [1] * len(
        requests
    )


def paths(queue: LeasedPriorityQueue, count: int, worker: str = "w") -> list[str]:
    return [r.url.split("/", 2)[2] for _, r in queue.pop(worker, 60, count=count).leased]


class BroadSpider(scrapy.Spider):
    """A broad crawl: any host (no allowed_domains), named as the limiter's keys below are."""

    name = "solidot"


def new_queue(redis_url: str, **settings: object) -> LeasedPriorityQueue:
    return shared_worker(BroadSpider, redis_url, **settings).queue


def test_priority_first_across_hosts_then_arrival_within_a_priority(redis_url: str) -> None:
    queue = new_queue(redis_url)
    push(
        queue,
        request("a.test", "a-low", -5),
        request("a.test", "a-1"),
        request("b.test", "b-1"),
        request("a.test", "a-2"),
        request("b.test", "b-high", 10),
        request("c.test", "c-1"),
        request("a.test", "a-top", 20),
    )
    assert len(queue) == 7 and queue.hosts() == (0, 0)  # all in the shared bucket: no host queue yet
    assert paths(queue, 1) == ["a.test/a-top"]  # the best priority of any host
    assert paths(queue, 1) == ["b.test/b-high"]
    # equal priorities, every host free to send: in arrival order
    assert paths(queue, 3) == ["a.test/a-1", "b.test/b-1", "a.test/a-2"]
    assert paths(queue, 5) == ["c.test/c-1", "a.test/a-low"]
    assert len(queue) == 0 and queue.hosts() == (0, 0) and queue.leased_count() == 7


def test_a_host_without_a_rate_gives_a_whole_pop(redis_url: str) -> None:
    queue = new_queue(redis_url)
    push(queue, *(request("one.test", str(n)) for n in range(20)))
    assert len(paths(queue, 16)) == 16  # one fast host reaches its full rate: nothing held back
    assert queue.hosts() == (0, 0) and len(queue) == 4  # the rest still in the bucket


def test_a_rate_limited_host_gives_what_it_can_send_soon_and_the_others_are_served(redis_url: str) -> None:
    queue = new_queue(redis_url, CLUSTER_HOST_RATE=4)
    push(queue, *(request("slow.test", str(n)) for n in range(10)))
    push(queue, *(request(f"h{k}.test", str(n)) for k in range(3) for n in range(10)))
    handed = paths(queue, 32)
    per_host = {host: sum(p.startswith(host + "/") for p in handed) for host in ("slow.test", "h0.test")}
    # 4 req/s within SCHEDULER_HOST_HORIZON (1 s): 4 each, no more, and every host got its share in the same pop
    assert per_host == {"slow.test": 4, "h0.test": 4} and len(handed) == 16, handed
    assert queue.hosts() == (0, 4)  # all four wait for their rate
    popped = queue.pop("w", 60, count=8)
    assert popped.leased == [] and popped.next_due is not None and 0 < popped.next_due <= queue.host_horizon


@pytest.mark.parametrize("horizon", [0.5, 2.0])
def test_a_paced_host_gives_a_pop_what_it_can_send_within_the_horizon_setting(
    redis_url: str, horizon: float
) -> None:
    queue = new_queue(redis_url, CLUSTER_HOST_RATE=4, SCHEDULER_HOST_HORIZON=str(horizon))
    push(queue, *(request("slow.test", str(n)) for n in range(20)))
    assert len(paths(queue, 16)) == 4 * horizon  # 4 req/s: 2 of it for half a second ahead, 8 for 2 s
    popped = queue.pop("w", 60, count=16)
    assert popped.leased == [] and popped.next_due is not None and 0 < popped.next_due <= horizon / 2


def test_a_host_the_limiter_spaces_out_waits_for_its_own_interval(redis_url: str) -> None:
    """A robots.txt Crawl-delay is known to one worker only: the limiter mirrors its interval (``iv``)."""
    queue = new_queue(redis_url, CLUSTER_HOST_RATE=100)
    queue.server.hset("{solidot}:host:polite.test", mapping={"iv": 5_000_000})  # 5 s between requests
    push(queue, *(request("polite.test", str(n)) for n in range(5)), request("other.test", "x"))
    assert sorted(paths(queue, 10)) == ["other.test/x", "polite.test/0"]
    assert queue.pop("w", 60, count=10).leased == []  # the next one is seconds away


def test_a_paused_host_holds_no_worker_while_the_others_are_served(redis_url: str) -> None:
    queue = new_queue(redis_url)
    push(queue, *(request("paused.test", str(n), 5) for n in range(3)), request("b.test", "1"))
    seconds, micros = queue.server.time()
    until_us = (seconds + 60) * 1_000_000 + micros  # a Retry-After of 60 s, as the limiter stores it
    queue.server.hset("{solidot}:host:paused.test", "pause_until", until_us)
    assert paths(queue, 8) == ["b.test/1"]  # its better priority does not matter while it is paused
    popped = queue.pop("w", 60, count=8)
    assert popped.leased == [] and popped.next_due is not None and popped.next_due > 50
    queue.server.hset("{solidot}:host:paused.test", "pause_until", 0)  # over: back when it is due
    queue.server.zadd(queue.named.wait, {"paused.test": 0})
    assert paths(queue, 8) == ["paused.test/0", "paused.test/1", "paused.test/2"]


def test_expired_leases_go_back_to_the_head_of_their_own_host(redis_url: str) -> None:
    queue = new_queue(redis_url)
    push(queue, request("a.test", "1"), request("b.test", "1"), request("a.test", "2", 3))
    leased = queue.pop("dead", 30, count=2).leased
    assert [r.url for _, r in leased] == ["http://a.test/2", "http://a.test/1"]
    push(queue, request("a.test", "3"))
    assert queue.requeue_expired(now=time.time() + 31) == 2 and len(queue) == 4
    # back at their priority in their host's own queue, ahead of what came for it meanwhile (a.test/3,
    # still in the shared bucket behind b.test/1, which came before it)
    assert paths(queue, 10, "alive") == ["a.test/2", "a.test/1", "b.test/1", "a.test/3"]
    late = queue.ack("dead", [request_id for request_id, _ in leased])
    assert (late.acked, late.stale) == (0, 2)  # taken again by "alive": its acknowledgement counts
    assert queue.ack("alive", queue.lease_ids()).acked == 4 and queue.pending() == (0, 0)


def test_a_late_ack_removes_a_requeued_request_from_its_host(redis_url: str) -> None:
    queue = new_queue(redis_url)
    push(queue, request("a.test", "1", 2), request("a.test", "2"))
    ((request_id, _),) = queue.pop("slow", 30, count=1).leased
    queue.requeue_expired(now=time.time() + 31)
    assert queue.ack("slow", [request_id]).late == 1  # done after all: out of a.test's queue
    assert len(queue) == 1 and paths(queue, 5) == ["a.test/2"]
    assert queue.server.hlen(queue.named.hosts) == 0 and queue.hosts() == (0, 0)


def test_a_retried_push_of_an_unfiltered_request_queues_it_once(redis_url: str) -> None:
    queue = new_queue(redis_url)
    entry = queue.encode(request("a.test", "retry", dont_filter=True, meta={"retry_times": 1}))
    assert entry.check is None and queue.push_encoded(entry) == 1
    assert queue.push_encoded(entry) == 2 and len(queue) == 1  # the reply was lost: pushed again
    ((request_id, _),) = queue.pop("w", 30).leased
    assert request_id == entry.request_id and queue.push_encoded(entry) == 2  # leased: still a no-op
    assert queue.ack("w", [request_id]).acked == 1
    assert not queue.server.exists(queue.named.unchecked)  # kept until the acknowledgement, not after


def test_hosts_are_named_as_the_limiter_names_them() -> None:
    assert queue_host("https://WWW.Example.org:8443/a") == "www.example.org"
    assert queue_host("http://127.0.0.2:8080/") == "127.0.0.2"
    assert queue_host("http://[::1]:80/") == "::1"
    assert " " not in queue_host("http://a%20b/") and "|" not in queue_host("http://a|b/")


def limiter_of(queue: LeasedPriorityQueue) -> ClusterRateLimitMiddleware:
    """The cluster rate limiter of the queue's crawl, as the add-on installs it."""
    return ClusterRateLimitMiddleware.from_crawler(queue.spider.crawler)


def test_a_pause_the_limiter_records_for_a_host_the_queue_escapes_is_seen_by_the_pop(redis_url: str) -> None:
    """A host name with a character outside ``[A-Za-z0-9.-_:[]]`` is %-escaped in the queue's keys: the
    limiter names it so too, or the pop reads another host's hash and hands out a paused host."""
    queue = new_queue(redis_url)
    unusual = "a+b.test"  # "a%2Bb.test" in the queue's keys
    push(queue, *(request(unusual, str(n), 5) for n in range(3)), request("b.test", "1"))
    limiter_of(queue).host_paused(request(unusual, "asked"), 60, "retry_after")  # its 429's Retry-After
    assert paths(queue, 8) == ["b.test/1"]  # its better priority does not matter while it is paused
    popped = queue.pop("w", 60, count=8)
    assert popped.leased == [] and popped.next_due is not None and popped.next_due > 50
    assert queue.hosts() == (0, 1)  # it waits for the end of its pause, holding no worker


def test_the_limiter_keys_an_ordinary_host_as_it_always_did(redis_url: str) -> None:
    """Byte for byte the keys of the release before the queue and the limiter shared a host's name: a
    running crawl's limiters (their pace, their pauses) carry on through the upgrade."""
    queue = new_queue(redis_url)
    limiter = limiter_of(queue)
    for url, key in [
        ("https://WWW.Example.org:8443/a", "{solidot}:host:www.example.org"),
        ("http://127.0.0.2:8080/", "{solidot}:host:127.0.0.2"),
        ("http://[::1]:80/", "{solidot}:host:::1"),
        ("http://under_score-1.test/", "{solidot}:host:under_score-1.test"),
    ]:
        limiter.host_paused(scrapy.Request(url), 30, "retry_after")
        assert queue.server.hget(key, "pause_reason") == b"retry_after", url


def calls(server: redis.Redis) -> int:
    """Commands Redis ran so far, those of scripts included (INFO commandstats)."""
    return sum(int(stat["calls"]) for stat in server.info("commandstats").values())


def pop_cost(queue: LeasedPriorityQueue, hosts: int) -> int:
    """Commands run by a pop of 8 from a queue of ``hosts`` hosts with a request each."""
    queue.clear()
    for start in range(0, hosts, 500):
        entries = [queue.encode(request(f"h{n}.test", "x")) for n in range(start, min(hosts, start + 500))]
        queue.push_many(entries)
    queue.pop("warm", 60, count=1)  # the script loaded (and any first-call cost paid)
    before = calls(queue.server)
    assert len(queue.pop("w", 60, count=8).leased) == 8
    return calls(queue.server) - before - 1  # INFO itself


@pytest.mark.parametrize("rate", [0, 4])
def test_a_pop_costs_the_same_with_ten_hosts_or_ten_thousand(redis_url: str, rate: float) -> None:
    queue = new_queue(redis_url, CLUSTER_HOST_RATE=rate)
    few, many = pop_cost(queue, 10), pop_cost(queue, 10_000)
    assert few == many and few < 200, (few, many)


def test_the_previous_release_queue_is_moved_and_its_workers_are_refused(redis_url: str) -> None:
    server = redis.Redis.from_url(redis_url)
    queue = LeasedPriorityQueue(server, BroadSpider())  # encoding only
    # the previous release's layout: one ZSET, "<id> <payload>" by -priority·2³² + seq
    members = {}
    for seq, (host, path, priority) in enumerate(
        [("a.test", "1", 0), ("b.test", "1", 0), ("a.test", "top", 7), ("a.test", "2", 0)], start=1
    ):
        entry: Encoded = queue.encode(request(host, path, priority))
        members[entry.request_id.encode() + b" " + entry.payload] = -priority * 2**32 + seq
    server.zadd(queue.queue_key, members)
    server.hset(queue.requeued_key, next(iter(members)).split(b" ")[0], next(iter(members)))
    queue = new_queue(redis_url)  # a worker of this release opens
    assert server.get(queue.queue_key) == LAYOUT.encode() and len(queue) == 4
    first_id, first_member = next(iter(members)).split(b" ")[0], next(iter(members))
    assert server.hget(queue.requeued_key, first_id) == b"0 a.test " + first_member  # a late ack finds it
    assert paths(queue, 10) == ["a.test/top", "a.test/1", "a.test/2", "b.test/1"]
    # a worker of the previous release meets the marker: every command on its queue key fails
    for command in (
        ("ZADD", queue.queue_key, 0, "x"),
        ("ZPOPMIN", queue.queue_key),
        ("ZCARD", queue.queue_key),
    ):
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            server.execute_command(*command)
    assert "upgrade it" in LAYOUT


def test_the_release_befores_queue_is_marked_anew_and_its_requests_still_served(redis_url: str) -> None:
    """The release before kept the same keys with whole payloads: a worker of this release reads them and
    re-marks the queue at its open, so a worker of that release started afterwards refuses the queue
    instead of reading this release's payloads (``m+``, ``s``) as the spider's defaults."""
    server = redis.Redis.from_url(redis_url)
    queue = LeasedPriorityQueue(server, BroadSpider())  # encoding only
    server.set(queue.queue_key, PREVIOUS_LAYOUT)
    whole = b'{"u":"http://a.test/1","m":{"is_start_request":true}}'  # as the release before wrote seeds
    plant(server, queue.named, b"old " + whole, host="*")

    queue = new_queue(redis_url)  # a worker of this release opens
    assert server.get(queue.queue_key) == LAYOUT.encode() != PREVIOUS_LAYOUT.encode()
    [(request_id, popped)] = queue.pop("w", 60).leased
    assert (request_id, popped.url, popped.meta) == ("old", "http://a.test/1", {"is_start_request": True})


def test_a_marker_no_release_wrote_is_refused(redis_url: str) -> None:
    server = redis.Redis.from_url(redis_url)
    server.set("{solidot}:requests:queue", "hosts/9: a later release")
    with pytest.raises(RuntimeError, match="not this release's layout"):
        new_queue(redis_url)
