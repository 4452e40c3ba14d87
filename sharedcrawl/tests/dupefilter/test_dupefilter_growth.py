"""The set-mode dupefilter grows with the crawl (issue 19): one shard for a new filter, a shard split
whenever the average passes 37.5 % of set-max-intset-entries, inside the check-and-add script; exact
with concurrent workers, whole across an AOF Redis killed mid-growth, the previous release's pre-sharded
filter upgraded in place, and a stored state no worker wrote logged and counted, never a crash.

Most tests lower set-max-intset-entries to 64 so that a few thousand URLs make hundreds of splits."""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from conftest import make_spider
from scrapy.settings import Settings

from scrapy_sharedcrawl.cli.status import StatusReader
from scrapy_sharedcrawl.dupefilter import (
    SPLIT_FILL,
    CompactRFPDupeFilter,
    Layout,
    fingerprint64,
)
from scrapy_sharedcrawl.scheduler import LeasingScheduler
from scrapy_sharedcrawl.testing.redis_server import RedisServer, redis_server
from scrapy_sharedcrawl.testing.scheduling import open_scheduler

KEY = "{news}:seen"
META = f"{KEY}:meta"
LIMIT = 64
#: Fingerprints a shard holds on average at most (the split threshold).
PER_SHARD = LIMIT * SPLIT_FILL
#: Values at the edges of a signed 64-bit integer: the script's modulus of a decimal string must agree
#: with Python's ``%`` on them too.
EDGES = [-(2**63), -(2**63) + 1, -1, 0, 1, 2**63 - 1, 2**53 + 1, -(2**53) - 1]


def random_fingerprints(count: int, seed: int = 19, edges: bool = False) -> list[bytes]:
    """``count`` fingerprints, the first ones at the edges of int64 if ``edges``."""
    rng = random.Random(seed)
    first = [value.to_bytes(8, "big", signed=True) + bytes(12) for value in EDGES] if edges else []
    return (first + [rng.randbytes(20) for _ in range(count)])[:count]


@pytest.fixture
def small_intsets(redis_url: str) -> Iterator[str]:
    """The private Redis with set-max-intset-entries at 64 (restored after the test)."""
    client = redis.Redis.from_url(redis_url)
    client.config_set("set-max-intset-entries", LIMIT)
    try:
        yield redis_url
    finally:
        client.config_set("set-max-intset-entries", 512)
        client.close()


def opened(redis_url: str) -> LeasingScheduler:
    scheduler = open_scheduler(make_spider(redis_url))
    assert scheduler.compact is not None
    return scheduler


def filter_of(redis_url: str) -> CompactRFPDupeFilter:
    compact = opened(redis_url).compact
    assert compact is not None
    return compact


def stored_layout(client: redis.Redis) -> Layout:
    return Layout.from_redis(client.hgetall(META))


def home(value: int, layout: Layout) -> int:
    """The shard linear hashing puts ``value`` in (the module docstring of dupefilter.py)."""
    span = layout.base * 2**layout.level
    shard = value % span
    return value % (2 * span) if shard < layout.split else shard


def assert_well_formed(client: redis.Redis, expected: int, intsets: bool = False) -> Layout:
    """Every fingerprint in the one shard linear hashing names for it, the stored count the fingerprints
    held, no shard beyond the layout's, and (``intsets``) every shard an intset: at the default limit
    of 512 the fullest expected shard holds 384, 6.5 standard deviations below it (at 64 only 2.3)."""
    layout = stored_layout(client)
    members: Counter[int] = Counter()
    for shard in range(layout.shards):
        key = f"{KEY}:{shard}"
        values = [int(member) for member in client.smembers(key)]
        assert all(home(value, layout) == shard for value in values), (shard, layout)
        if intsets:
            assert client.object("encoding", key) in (b"intset", None), (key, client.object("encoding", key))
        members.update(values)
    assert not client.exists(f"{KEY}:{layout.shards}")  # nothing past the last shard
    assert layout.count == sum(members.values()) == len(members) == expected, layout
    return layout


def test_a_new_filter_has_one_shard_and_splits_one_at_a_time_as_it_fills(small_intsets: str) -> None:
    dupefilter = filter_of(small_intsets)
    client = dupefilter.server
    assert stored_layout(client) == Layout("set", base=1, intset_limit=LIMIT)  # one shard, empty
    fingerprints = random_fingerprints(12_000, edges=True)
    for added in (1, int(PER_SHARD), int(PER_SHARD) + 1, 3_000, 12_000):  # crossings and far past them
        already = stored_layout(client).count
        assert dupefilter.add_fingerprints(fingerprints[already:added], batch=500) == added - already
        layout = assert_well_formed(client, added)
        # a split each time the average passes the threshold: the fewest shards that keep it under
        assert layout.shards == max(1, math.ceil(added / PER_SHARD)), (added, layout)
    assert layout.level == 8 and layout.split == layout.shards - 256  # 12,000 / 24 = 500 shards
    assert dupefilter.add_fingerprints(fingerprints) == 0  # every one found where the splits put it
    assert dupefilter.count() == (12_000, True)
    status = StatusReader(Settings({"REDIS_URL": small_intsets}), "news").read()
    assert (status.seen, status.seen_exact) == (12_000, True)  # counted over the shards stored now


def test_the_push_script_checks_and_grows_the_filter_in_the_same_step(small_intsets: str) -> None:
    scheduler = opened(small_intsets)
    spider, compact = scheduler.spider, scheduler.compact
    assert compact is not None
    sids = range(1, 301)
    entries = [
        scheduler.queue.encode(spider.story_request(sid), compact.check(spider.story_request(sid)))
        for sid in sids
    ]
    assert [status for status, _ in scheduler.queue.push_many(entries)] == [1] * 300
    again = [
        scheduler.queue.encode(spider.story_request(sid), compact.check(spider.story_request(sid)))
        for sid in sids
    ]
    assert [status for status, _ in scheduler.queue.push_many(again)] == [0] * 300  # seen: not queued
    layout = assert_well_formed(compact.server, 300)
    assert layout.shards == math.ceil(300 / PER_SHARD)
    assert len(scheduler.queue) == 300


def test_concurrent_adders_on_two_connections_see_each_url_new_exactly_once(small_intsets: str) -> None:
    fingerprints = random_fingerprints(9_000, edges=True)
    first, second = fingerprints[:6_000], fingerprints[3_000:]
    random.Random(1).shuffle(second)
    adders = [filter_of(small_intsets), filter_of(small_intsets)]
    assert adders[0].server is not adders[1].server
    new = [0, 0]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def add(index: int, batch: list[bytes]) -> None:
        try:
            start.wait(timeout=60)
            for at in range(0, len(batch), 50):  # small pipelines: the two interleave
                new[index] += adders[index].add_fingerprints(batch[at : at + 50])
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=add, args=(i, batch)) for i, batch in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors and not any(thread.is_alive() for thread in threads), errors
    assert sum(new) == 9_000  # the 3,000 both added were new to exactly one of them
    layout = assert_well_formed(adders[0].server, 9_000)
    assert layout.shards == math.ceil(9_000 / PER_SHARD)


def test_the_previous_releases_pre_sharded_filter_is_upgraded_in_place(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    old = random_fingerprints(5_000, seed=3)
    # what the previous release stored for DUPEFILTER_CAPACITY=10,000: 27 shards, value % 27
    client.hset(
        META,
        mapping={
            "mode": "set",
            "shards": 27,
            "intset_limit": 512,
            "bits": 0,
            "hashes": 0,
            "capacity": 10_000,
        },
    )
    pipe = client.pipeline(transaction=False)
    for fingerprint in old:
        value = fingerprint64(fingerprint)
        pipe.sadd(f"{KEY}:{value % 27}", value)
    pipe.execute()
    scheduler = opened(redis_url)
    compact = scheduler.compact
    assert compact is not None and compact.layout is not None
    assert (compact.layout.base, compact.layout.shards, compact.layout.count) == (27, 27, 5_000)
    assert not client.hexists(META, "shards")  # the previous release refuses it now rather than misroute
    assert opened(redis_url).compact.layout == compact.layout  # type: ignore[union-attr]  # upgraded once
    assert compact.add_fingerprints(old) == 0  # every URL seen before is still found
    story = scheduler.spider.story_request(80222)
    fresh = random_fingerprints(20_000, seed=4)
    assert compact.add_fingerprints(fresh) == 20_000
    layout = assert_well_formed(client, 25_000)
    assert layout.shards == math.ceil(25_000 / (512 * SPLIT_FILL)) and layout.base == 27
    assert compact.add_fingerprints(old + fresh) == 0
    assert scheduler.queue.push(story, compact.check(story)) and not scheduler.queue.push(
        story, compact.check(story)
    )


def kill(server: RedisServer) -> None:
    """SIGKILL the redis-server: nothing written after this moment reaches its AOF."""
    assert server.process is not None
    server.process.kill()
    server.process.wait(timeout=30)
    server.process = None


def test_an_aof_redis_killed_mid_growth_keeps_every_acknowledged_url() -> None:
    fingerprints = random_fingerprints(200_000, seed=5)
    acknowledged: list[bytes] = []
    stopped = threading.Event()
    with redis_server(persistence="aof") as server:
        with server.client() as client:
            client.config_set("appendfsync", "always")
            client.config_set("set-max-intset-entries", LIMIT)
        dupefilter = filter_of(server.url)

        def add() -> None:
            try:
                for at in range(0, len(fingerprints), 100):
                    batch = fingerprints[at : at + 100]
                    dupefilter.add_fingerprints(batch)
                    acknowledged.extend(batch)  # the pipeline's replies came back: every one is stored
            except redis.RedisError:  # the server is gone (whatever redis-py makes of that)
                pass
            finally:
                stopped.set()

        adder = threading.Thread(target=add)
        adder.start()
        deadline = time.monotonic() + 120
        while len(acknowledged) < 5_000 and not stopped.is_set() and time.monotonic() < deadline:
            stopped.wait(0.01)
        assert 5_000 <= len(acknowledged) < len(fingerprints), "the adder never got going, or finished"
        kill(server)
        adder.join(timeout=120)
        assert not adder.is_alive()
        server.start()  # replays the AOF (an incomplete last script is dropped whole)
        with server.client() as client:
            client.config_set("set-max-intset-entries", LIMIT)
        raw = redis.Redis.from_url(server.url)
        layout = stored_layout(raw)
        assert layout.count >= len(acknowledged)
        assert_well_formed(raw, layout.count)
        assert layout.shards == math.ceil(layout.count / PER_SHARD)  # no split lost or half done
        again = filter_of(server.url)
        assert again.add_fingerprints(acknowledged) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("level", "x"),
        ("split", "99"),
        ("base", "0"),
        ("count", "-5"),
        ("intset_limit", "nan"),
        ("mode", "odd"),
    ],
)
def test_a_layout_no_worker_wrote_is_logged_and_counted_and_the_request_queued(
    small_intsets: str, caplog: pytest.LogCaptureFixture, field: str, value: str
) -> None:
    scheduler = opened(small_intsets)
    spider, compact = scheduler.spider, scheduler.compact
    assert compact is not None
    client = compact.server
    compact.add_fingerprints(random_fingerprints(100))
    client.hset(META, field, value)
    with caplog.at_level(logging.ERROR):
        for sid in (1, 1, 2):  # the same URL twice: unchecked, both queued (a duplicate, not a loss)
            request = spider.story_request(sid)
            assert scheduler.enqueue_request(request)
        assert scheduler.push_unsent()
        assert len(scheduler.queue) == 2  # the two pushes of sid 1 share an id: queued once
        assert scheduler.stats.get_value("dupefilter/malformed") == 1  # one round trip found it
        assert compact.request_seen(spider.story_request(3)) is False
        assert scheduler.stats.get_value("dupefilter/malformed") == 2
        reopened = opened(small_intsets)  # a worker starting now: logged, not raised
        assert reopened.stats.get_value("dupefilter/malformed") == 1
    assert caplog.text.count("is not what a worker writes") == 2, caplog.text  # once per filter
    assert client.hget(META, field) == value.encode()  # left for the operator to look at
    status = StatusReader(Settings({"REDIS_URL": small_intsets}), "news").read()
    assert status.seen is None and status.unreadable == {"seen": 1}
    compact.clear()  # SCHEDULER_FLUSH_ON_START: its shards can't be named from it, all keys under it go
    assert not client.keys(f"{KEY}*")


def test_a_shard_of_another_type_or_a_stranger_in_a_shard(small_intsets: str) -> None:
    dupefilter = filter_of(small_intsets)
    client = dupefilter.server
    client.sadd(f"{KEY}:0", "not-a-number")  # a member no worker adds: moved or kept, never a crash
    assert dupefilter.add_fingerprints(random_fingerprints(1_000)) == 1_000
    layout = stored_layout(client)
    assert layout.count == 1_000 and layout.shards == math.ceil(1_000 / PER_SHARD)
    assert dupefilter.add_fingerprints(random_fingerprints(1_000)) == 0
    client.set(f"{KEY}:{layout.shards}", "x")  # the next split's target, of another type
    more = random_fingerprints(2_000, seed=9)[1_000:]
    assert dupefilter.add_fingerprints(more) == 1_000  # all taken in (or queued unchecked)
    assert dupefilter.add_fingerprints(random_fingerprints(1_000)) == 0  # nothing seen was lost
    assert stored_layout(client).shards == layout.shards  # no split half done over a stranger key


def test_a_deleted_filter_is_created_again_by_the_next_push(small_intsets: str) -> None:
    scheduler = opened(small_intsets)
    compact = scheduler.compact
    assert compact is not None
    compact.add_fingerprints(random_fingerprints(500))
    filter_of(small_intsets).clear()  # as another worker finishing the crawl does, while this one runs
    assert not compact.server.keys(f"{KEY}*")
    assert compact.add_fingerprints(random_fingerprints(500)) == 500  # a new filter, not unchecked
    assert_well_formed(compact.server, 500)
    assert stored_layout(compact.server).intset_limit == LIMIT
