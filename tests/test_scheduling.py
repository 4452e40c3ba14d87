"""The shared Redis scheduler: JSON requests, a leased priority queue, a compact dupefilter, and
workers that can be killed or lose Redis without losing a request. Against a real private
redis-server and, for the worker tests, real ``scrapy crawl`` processes."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import pickle
import random
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import scrapy
from harness import ROOT, crawl_command, crawl_env, read_jsonl, replica_server, wait_for
from redis_server import RedisServer, redis_server
from scrapy.crawler import Crawler
from scrapy.http import FormRequest
from scrapy.settings import Settings
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.test import get_crawler
from scrapy_redis.queue import PriorityQueue as StockPriorityQueue
from truth import assert_items_match, mismatches

from scrapy_sharedcrawl import serialization
from scrapy_sharedcrawl.addon import SHARED_SETTINGS, SharedCrawl
from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.scheduler import LeasingScheduler
from scrapy_sharedcrawl.seeding import Seeder
from scrapy_sharedcrawl.signals import ack_barrier, requests_acknowledged
from solidot_replica import Replica, ReplicaConfig
from solidot_spider.site import story_sid
from solidot_spider.spiders.solidot import SolidotSpider

STORIES, LAST_SID = 300, 80300
BASE_URL = "http://www.solidot.test:8080"


def make_spider(redis_url: str, base_url: str = BASE_URL, **settings: Any) -> SolidotSpider:
    """A ``solidot`` spider whose crawler is configured for the shared scheduler (no crawl running)."""
    crawler: Crawler = get_crawler(
        SolidotSpider, {"REDIS_URL": redis_url, "SOLIDOT_BASE_URL": base_url, **SHARED_SETTINGS, **settings}
    )
    spider = SolidotSpider.from_crawler(crawler, latest="0")
    crawler.spider = spider
    return spider


def open_scheduler(spider: scrapy.Spider) -> LeasingScheduler:
    scheduler = LeasingScheduler.from_crawler(spider.crawler)
    scheduler.open(spider)
    return scheduler


@pytest.fixture
def spider(redis_url: str) -> SolidotSpider:
    return make_spider(redis_url)


@pytest.fixture
def queue(spider: SolidotSpider) -> LeasedPriorityQueue:
    return open_scheduler(spider).queue


# -- serialization ------------------------------------------------------------------


def test_the_spiders_requests_round_trip_as_json(spider: SolidotSpider) -> None:
    story = spider.story_request(80222, categories=["linux", "科技"], from_range=True)
    listing = spider.list_request(spider.site.home())
    retry = story.replace(
        dont_filter=True, priority=story.priority - 1, meta={**story.meta, "retry_times": 2}
    )
    form = FormRequest(
        "http://www.solidot.test/search",
        formdata={"q": "内核"},
        callback=spider.parse_list,
        headers={"Referer": "http://www.solidot.test/", "X-Raw": b"\xff\x00"},
        cookies={"session": "1"},
        meta={"tuple": (1, 2), "ints": {1: "one"}, "$b": "looks like a tag", "raw": b"\x80abc"},
    )
    other = SolidotSpider.from_crawler(spider.crawler, latest="0")  # same class, another instance
    elsewhere = scrapy.Request("http://x.test/", callback=other.parse_list)
    for request in (story, listing, retry, form, elsewhere):
        # built without listing the spider's attributes, the same dict as Scrapy's own to_dict
        assert serialization.request_to_dict(request, spider) == request.to_dict(spider=spider)
    for request in (story, listing, retry, form):
        payload = serialization.request_to_bytes(request, spider)
        assert b"pickle" not in payload and payload.startswith(b"{")
        back = serialization.request_from_bytes(payload, spider)
        assert type(back) is type(request)
        for name in ("url", "method", "body", "cookies", "cb_kwargs", "priority", "dont_filter", "encoding"):
            assert getattr(back, name) == getattr(request, name), name
        assert back.callback == request.callback and back.errback == request.errback
        assert dict(back.headers) == dict(request.headers)
        expected_meta = {k: list(v) if isinstance(v, tuple) else v for k, v in request.meta.items()}
        assert back.meta == expected_meta  # tuples come back as lists
    assert serialization.request_from_bytes(
        serialization.request_to_bytes(story, spider), spider
    ).callback.__name__ == ("parse_story")
    assert len(serialization.request_to_bytes(story, spider)) < 240  # defaults left out


def test_anything_but_plain_data_is_refused(spider: SolidotSpider) -> None:
    story = spider.story_request(80222)
    with pytest.raises(
        serialization.UnserializableRequest, match=r"\['meta'\]\['when'\] is a datetime\.date"
    ):
        serialization.request_to_bytes(story.replace(meta={"when": datetime.date(2025, 1, 1)}), spider)
    with pytest.raises(serialization.UnserializableRequest, match="NaN"):
        serialization.request_to_bytes(story.replace(meta={"x": float("nan")}), spider)
    with pytest.raises(ValueError):  # a callback that isn't a spider method can't be named
        serialization.request_to_bytes(scrapy.Request("http://x.test/", callback=lambda r: None), spider)

    good = json.loads(serialization.request_to_bytes(story, spider))
    hostile = [
        pickle.dumps(story.to_dict(spider=spider)),  # pickle is not JSON: never unpickled
        json.dumps({**good, "_class": "subprocess.Popen"}).encode(),  # a class is never imported…
        json.dumps({**good, "_class": "os.system"}).encode(),  # …nor anything but a Request subclass
        json.dumps({**good, "callback": "__init__"}).encode(),  # only public names
        json.dumps({**good, "callback": "os.system"}).encode(),
        json.dumps({**good, "errback": "no_such_method"}).encode(),  # only the spider's methods
        b'{"url": "http://x.test/", "priority": NaN}',
        b"[1, 2]",
    ]
    for payload in hostile:
        with pytest.raises(serialization.UnserializableRequest):
            serialization.request_from_bytes(payload, spider)


def test_stock_scrapy_redis_queues_take_the_serializer(redis_url: str, spider: SolidotSpider) -> None:
    stock = StockPriorityQueue(
        redis.Redis.from_url(redis_url), spider, "%(spider)s:stock", serializer=serialization
    )
    stock.push(spider.story_request(80222, categories=["linux"]))
    back = stock.pop()
    assert (
        back is not None
        and back.callback == spider.parse_story
        and back.cb_kwargs == {"categories": ["linux"]}
    )


# -- the leased queue ------------------------------------------------------------------


def test_higher_priority_first_then_first_in_first_out(
    queue: LeasedPriorityQueue, spider: SolidotSpider
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
        assert queue.push(scrapy.Request(f"http://www.solidot.test/{name}", priority=priority))
    order = []
    while popped := queue.pop("w1", 60).leased:
        order.append(popped[0][1].url.rsplit("/", 1)[1])
    assert order == ["f", "b", "d", "a", "c", "e"]


def test_a_lease_hides_a_request_until_it_expires_then_another_worker_gets_it(
    queue: LeasedPriorityQueue, spider: SolidotSpider
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
    assert queue.server.hlen(queue.payloads_key) == 0 and queue.server.hlen(queue.owners_key) == 0


def test_a_late_ack_removes_the_requeued_copy(queue: LeasedPriorityQueue, spider: SolidotSpider) -> None:
    queue.push(spider.story_request(1))
    (request_id, _), *_ = queue.pop("slow-worker", 30).leased
    queue.requeue_expired(now=time.time() + 60)
    assert len(queue) == 1
    result = queue.ack("slow-worker", [request_id])  # it did finish: no need to fetch it again
    assert result.late == 1 and len(queue) == 0 and queue.server.hlen(queue.payloads_key) == 0


def test_released_leases_go_back_with_their_priority(queue: LeasedPriorityQueue) -> None:
    queue.push(scrapy.Request("http://www.solidot.test/high", priority=5))
    queue.push(scrapy.Request("http://www.solidot.test/low", priority=1))
    (request_id, _), *_ = queue.pop("w", 30).leased
    assert queue.release("w", [request_id]) == 1
    assert queue.pop("w", 30).leased[0][1].url.endswith("/high")


def test_concurrent_requeues_do_not_duplicate(redis_url: str, spider: SolidotSpider) -> None:
    first = open_scheduler(spider).queue
    second = open_scheduler(make_spider(redis_url)).queue  # another client, as another worker would be
    for sid in range(200):
        first.push(spider.story_request(sid + 1))
    while first.pop("dead-worker", 30, count=50).leased:
        pass
    assert first.leased_count() == 200

    start, counts = threading.Barrier(2), []

    def requeue(queue: LeasedPriorityQueue) -> None:
        start.wait()
        counts.append(sum(queue.requeue_expired(now=time.time() + 60, limit=7) for _ in range(40)))

    threads = [threading.Thread(target=requeue, args=(q,)) for q in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(counts) == 200 and all(counts), counts  # both worked, neither duplicated
    ids = first.server.zrange(first.queue_key, 0, -1)
    assert len(ids) == len(set(ids)) == 200 and first.leased_count() == 0


def test_push_checks_the_dupefilter_in_the_same_call(
    queue: LeasedPriorityQueue, spider: SolidotSpider
) -> None:
    scheduler = open_scheduler(spider)
    dropped: list[str] = []

    def on_dropped(request: scrapy.Request, spider: scrapy.Spider) -> None:
        dropped.append(request.url)

    spider.crawler.signals.connect(on_dropped, signal=scrapy.signals.request_dropped)
    story = spider.story_request(80222)
    retry = story.replace(dont_filter=True)
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


def test_pushes_ride_with_a_pop_that_leases_several(redis_url: str, spider: SolidotSpider) -> None:
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


def test_has_pending_requests_counts_leases_held_by_any_worker(redis_url: str, spider: SolidotSpider) -> None:
    mine, other = open_scheduler(spider), open_scheduler(make_spider(redis_url))
    other.enqueue_request(spider.story_request(80222))
    request = other.next_request()
    assert request is not None and len(mine) == 0
    assert mine.has_pending_requests()  # queue empty, but a lease is out: other may yet find more
    other.request_done(request)
    other.queue.ack(other.worker_id, [request_id for request_id, _ in other.leases.done])
    assert not mine.has_pending_requests()


def test_acknowledgement_waits_for_the_barrier_then_announces_the_urls(spider: SolidotSpider) -> None:
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


# -- the dupefilter ------------------------------------------------------------------------


def random_fingerprints(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(20) for _ in range(count)]


def test_dupefilter_sees_what_it_saw(spider: SolidotSpider) -> None:
    dupefilter = open_scheduler(spider).compact
    assert dupefilter is not None
    assert not dupefilter.request_seen(spider.story_request(80222))
    assert dupefilter.request_seen(spider.story_request(80222, categories=["linux"]))  # same URL
    assert not dupefilter.request_seen(spider.story_request(80223))
    assert dupefilter.request_seen(scrapy.Request(spider.site.story_url(80223) + "#comments"))


def test_dupefilter_stays_in_intsets_at_under_30_bytes_per_url(redis_url: str, spider: SolidotSpider) -> None:
    dupefilter = open_scheduler(spider).compact
    assert dupefilter is not None and dupefilter.layout is not None
    fingerprints = random_fingerprints(100_000)
    assert dupefilter.add_fingerprints(fingerprints) == 100_000
    assert dupefilter.add_fingerprints(fingerprints[:1000]) == 0
    client = dupefilter.server
    keys = [key for key in dupefilter.shard_keys() if client.exists(key)]
    encodings = Counter(client.object("encoding", key) for key in keys)
    assert encodings == {b"intset": len(keys)}, encodings
    used = sum(client.memory_usage(key) or 0 for key in keys)
    assert used / 100_000 <= 30, f"{used / 100_000:.1f} bytes per URL"


def test_a_shard_nearing_the_intset_limit_is_logged_and_the_layout_is_shared(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    small = open_scheduler(make_spider(redis_url, DUPEFILTER_CAPACITY=384)).compact
    assert small is not None and small.layout is not None and small.layout.shards == 1
    other = open_scheduler(make_spider(redis_url, DUPEFILTER_CAPACITY=10**7)).compact
    assert other is not None and other.layout == small.layout  # the first worker's layout wins
    with caplog.at_level(logging.WARNING):
        small.add_fingerprints(random_fingerprints(470))
    assert re.search(
        r"a shard holds 4\d\d fingerprints, near Redis's set-max-intset-entries \(512\)", caplog.text
    )


def test_bloom_mode(redis_url: str) -> None:
    dupefilter = open_scheduler(
        make_spider(redis_url, DUPEFILTER_MODE="bloom", DUPEFILTER_CAPACITY=50_000)
    ).compact
    assert dupefilter is not None and dupefilter.layout is not None and dupefilter.layout.hashes == 20
    fingerprints = random_fingerprints(50_001)
    assert dupefilter.add_fingerprints(fingerprints[:50_000]) == 50_000  # 0.05 false positives expected
    assert dupefilter.add_fingerprints(fingerprints[:1000]) == 0
    assert dupefilter.add_fingerprints(fingerprints[50_000:]) == 1
    (key,) = dupefilter.shard_keys()
    assert (dupefilter.server.memory_usage(key) or 0) / 50_000 < 4


# -- Redis going away ------------------------------------------------------------------------


@pytest.fixture
def durable_redis() -> Iterator[RedisServer]:
    """A Redis that keeps its data across stop/start (AOF), as a production one must."""
    with redis_server(persistence="aof") as server:
        yield server


def test_requests_are_held_while_redis_is_away_and_stored_when_it_is_back(
    durable_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    spider = make_spider(durable_redis.url)
    scheduler = open_scheduler(spider)
    assert scheduler.enqueue_request(spider.story_request(1))
    leased = scheduler.next_request()
    assert leased is not None

    durable_redis.stop()
    with caplog.at_level(logging.INFO):
        assert all(scheduler.enqueue_request(spider.story_request(sid)) for sid in (2, 3, 4))
        assert scheduler.next_request() is None  # the engine will ask again
        assert scheduler.has_pending_requests()  # never close for want of Redis
        assert not scheduler.try_reconnect()
    pattern = rf"Redis unreachable at redis://127\.0\.0\.1:{durable_redis.port}/0 — retrying in [\d.]+ s, \d requests held locally"
    assert len(re.findall(pattern, caplog.text)) == 1, caplog.text  # one line per outage

    durable_redis.start()
    with caplog.at_level(logging.INFO):
        wait_for(scheduler.try_reconnect, timeout=10, what="reconnect")
    assert re.search(
        r"Redis reachable again at redis://127\.0\.0\.1:\d+/0 after [\d.]+ s; 3 held requests stored",
        caplog.text,
    )
    got = []
    while (request := scheduler.next_request()) is not None:
        got.append(story_sid(request.url))
    assert sorted(got) == [2, 3, 4]
    assert scheduler.queue.leased_count() == 4  # including the one leased before the outage


# -- killing a worker -----------------------------------------------------------------------


def complete_items(path: Path) -> list[dict[str, Any]]:
    """The items of a JSON Lines file a killed process wrote (its last line may be cut off)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n")[:-1] if line.strip()]


def worker_command(
    workdir: Path, redis_url: str, name: str, extra: dict[str, str] | None = None
) -> list[str]:
    settings = {
        **SHARED_SETTINGS,
        "REDIS_URL": redis_url,
        "CONCURRENT_REQUESTS": "32",
        "CONCURRENT_REQUESTS_PER_DOMAIN": "32",
        "SCHEDULER_LEASE_SECONDS": "4",
        # each worker its own content-hash record: this test is about requests, and a shared one
        # would drop a re-fetched story as "unchanged" (see the report on dedupe vs. leases)
        "SOLIDOT_DEDUPE_KEY": f"test:{name}:content_hash",
        "LOG_FILE": str(workdir / f"{name}.log"),
        **(extra or {}),
    }
    return crawl_command(workdir / f"{name}.jsonl", {"latest": "0"}, settings)


def test_a_sigkilled_worker_loses_no_request(tmp_path: Path, redis_url: str) -> None:
    model = Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID))
    sids = model.sids()[-96:]
    # every response takes 2 s, so 32 requests are in flight when the worker is killed
    with replica_server(STORIES, LAST_SID, faults="slow=1,slow_delay=2") as server:
        seeder = Seeder(make_spider(redis_url, server.base_url))
        spider = make_spider(redis_url, server.base_url)
        assert seeder.seed(spider.story_request(sid, from_range=True) for sid in sids).queued == 96
        queue = seeder.queue

        first = subprocess.Popen(
            worker_command(tmp_path, redis_url, "first"),
            cwd=ROOT,
            env=crawl_env(server, tmp_path / "first.json"),
        )

        def acknowledged_some_with_32_in_flight() -> bool:
            queued, leased = queue.pending()
            return leased >= 32 and queued + leased <= len(sids) - 32

        try:
            wait_for(acknowledged_some_with_32_in_flight, timeout=60, what="32 acknowledged, 32 in flight")
        finally:
            first.kill()  # SIGKILL: no cleanup of any kind
            first.wait(timeout=30)
        leased_at_kill = {
            story_sid(serialization.loads(queue.server.hget(queue.payloads_key, request_id))["url"])
            for request_id in queue.lease_ids()
        }
        queued_at_kill = {  # queue members are "<id> <payload>"
            story_sid(serialization.loads(member.split(b" ", 1)[1])["url"])
            for member in queue.server.zrange(queue.queue_key, 0, -1)
        }
        first_items = complete_items(tmp_path / "first.jsonl")

        second = subprocess.run(
            worker_command(tmp_path, redis_url, "second"),
            cwd=ROOT,
            env=crawl_env(server, tmp_path / "second.json"),
            timeout=120,
            capture_output=True,
            text=True,
        )
        log = (tmp_path / "second.log").read_text(encoding="utf-8")
        assert second.returncode == 0, log[-3000:] + second.stderr[-2000:]
        second_items = read_jsonl(tmp_path / "second.jsonl")
        stats = json.loads((tmp_path / "second.json").read_text())

    acknowledged = set(sids) - leased_at_kill - queued_at_kill
    print(
        f"SIGKILL with {len(leased_at_kill)} requests leased, {len(acknowledged)} acknowledged, "
        f"{len(first_items)} stories written; "
        f"second worker: {len(second_items)} stories, {stats['scheduler/requeued']} leases requeued, "
        f"{stats.get('scheduler/redis/round_trips')} Redis round trips for "
        f"{stats.get('response_received_count')} responses"
    )
    # the kill happened with a full window of requests leased, after some were acknowledged
    assert len(leased_at_kill) >= 32 and len(acknowledged) >= 32
    # acknowledged means written: the dead worker's file has every story it acknowledged
    assert acknowledged <= {item["sid"] for item in first_items}
    # nothing lost: every story is in one of the two outputs
    found = Counter(item["sid"] for item in first_items + second_items)
    assert set(found) == set(sids), f"missing {sorted(set(sids) - set(found))}"
    # nothing duplicated, except requests leased and not acknowledged at the kill: the dead worker
    # may have written their items before it could acknowledge them
    duplicated = {sid for sid, count in found.items() if count > 1}
    print(f"lost: {len(set(sids) - set(found))}, duplicated: {len(duplicated)} (all leased at the kill)")
    assert duplicated <= leased_at_kill, sorted(duplicated - leased_at_kill)
    assert max(found.values()) <= 2
    assert not {sid for sid, n in Counter(i["sid"] for i in second_items).items() if n > 1}
    # every unacknowledged lease went back to the queue exactly once, and the second worker finished it
    assert stats["scheduler/requeued"] == len(leased_at_kill)
    assert stats["finish_reason"] == "finished" and "Deprecation" not in log
    assert queue.pending() == (0, 0) and queue.server.hlen(queue.payloads_key) == 0
    truths = {sid: model.truth(sid, server.base_url) for sid in sids}
    problems = [
        p for item in first_items + second_items if (p := mismatches(item, truths[item["sid"]], "subset"))
    ]
    assert not problems, problems[:3]


def test_a_worker_rides_out_a_redis_restart_mid_crawl(tmp_path: Path, durable_redis: RedisServer) -> None:
    model = Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID))
    log_path, items_path = tmp_path / "worker.log", tmp_path / "worker.jsonl"
    with replica_server(STORIES, LAST_SID, faults="slow=1,slow_delay=0.3") as server:
        spider = make_spider(durable_redis.url, server.base_url)
        seeded = Seeder(spider).seed(
            spider.list_request(spider.site.day_archive(day)) for day in model.days()
        )
        assert seeded.queued == len(model.days()) >= 30
        worker = subprocess.Popen(
            worker_command(tmp_path, durable_redis.url, "worker", {"SCHEDULER_LEASE_SECONDS": "30"}),
            cwd=ROOT,
            env=crawl_env(server, tmp_path / "stats.json"),
        )
        queue = open_scheduler(spider).queue
        try:
            # every day page in flight (0.3 s each), then Redis goes: their stories can't be queued
            wait_for(lambda: queue.leased_count() >= 30, timeout=60, what="the day pages leased")
            durable_redis.stop()
            wait_for(
                lambda: "Redis unreachable" in log_path.read_text(), timeout=30, what="the outage logged"
            )
            durable_redis.start()
            assert worker.wait(timeout=120) == 0
        finally:
            if worker.poll() is None:
                worker.kill()
        stats = json.loads((tmp_path / "stats.json").read_text())
        truths = {sid: model.truth(sid, server.base_url) for sid in model.sids()}
    log = log_path.read_text()
    assert_items_match(read_jsonl(items_path), truths)  # every story exactly once
    assert log.count("Redis unreachable at") == 1 and log.count("Redis reachable again at") == 1, log[-3000:]
    assert stats["scheduler/redis/outages"] == 1 and stats["scheduler/held"] > 0
    assert stats["scheduler/acked"] == stats["scheduler/dequeued"] == len(model.days()) + len(model.sids())
    assert stats["finish_reason"] == "finished" and "Deprecation" not in log
    assert "Traceback" not in log, log[-3000:]


def test_the_addon_switches_on_with_redis_url_only() -> None:
    plain, shared = Settings(), Settings({"REDIS_URL": "redis://127.0.0.1:1/0"})
    SharedCrawl().update_settings(plain)
    SharedCrawl().update_settings(shared)
    assert plain.get("SCHEDULER") == "scrapy.core.scheduler.Scheduler"
    assert shared.get("SCHEDULER") == SHARED_SETTINGS["SCHEDULER"]
    assert shared.get("DUPEFILTER_CLASS") == SHARED_SETTINGS["DUPEFILTER_CLASS"]
    explicit = Settings({"REDIS_URL": "redis://x", "SCHEDULER": "my.Scheduler"}, priority="project")
    SharedCrawl().update_settings(explicit)
    assert explicit.get("SCHEDULER") == "my.Scheduler"
