"""A seed of many start URLs enters the shared queue at Redis's pace, not a batch a second (issue 22).

scrapy-redis reads ``REDIS_START_URLS_BATCH_SIZE`` entries per look at the key; a look a second put
100,000 pushed URLs into the queue in ~17 minutes, and a broad crawl's later hosts reached the queue
long after its first. The heartbeat now takes batches while they come back full, a few per tick (the
engine runs between ticks), and asks for the next tick at once. Counted in reads of the key and ticks
of a worker's heartbeat (its clock frozen: no second ever passes), on a real scheduler and Redis.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import scrapy
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl.scheduler import LeasingScheduler, heartbeat
from scrapy_sharedcrawl.scheduler.engine_hooks import EngineHooks
from scrapy_sharedcrawl.start_urls import TICK_BATCHES, TICK_ENTRIES
from scrapy_sharedcrawl.testing.scheduling import shared_worker

KEY = "seeded:start_urls"


class SeededSpider(scrapy.Spider):
    """A spider fed only through its start-URLs key, on any host."""

    name = "seeded"


def urls(count: int) -> list[str]:
    return [f"http://h{n % 7}.test/page/{n}" for n in range(count)]


class Intake:
    """One worker's heartbeat, its reads of the key counted and its requests for another tick kept."""

    def __init__(self, redis_url: str, batch: int) -> None:
        self.scheduler: LeasingScheduler = shared_worker(
            SeededSpider, redis_url, REDIS_START_URLS_BATCH_SIZE=batch
        )
        self.reads: list[int] = []  # entries each read took (the reads that found some)
        self.again = 0
        feed, hooks = self.scheduler.heartbeat.start_urls, self.scheduler.hooks
        take = feed.take

        def counted_take() -> list[bytes]:
            entries = take()
            if entries:
                self.reads.append(len(entries))
            return entries

        def tick_again() -> None:
            self.again += 1

        feed.take = counted_take  # type: ignore[method-assign]
        hooks.tick_again = tick_again  # type: ignore[method-assign]

    def tick(self) -> list[int]:
        """One tick of the heartbeat; the reads it made."""
        before = len(self.reads)
        asyncio.run(self.scheduler.heartbeat.tick())
        return self.reads[before:]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as server:
        yield server


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The heartbeat's clock stands still: a look at the key "once a second" would never come again."""
    monkeypatch.setattr(heartbeat, "time", SimpleNamespace(monotonic=lambda: 1000.0))


@pytest.mark.parametrize(("batch", "count"), [(20, 1000), (100, 2_345)])
def test_a_seed_of_many_batches_is_queued_in_as_many_reads_tick_after_tick(
    redis_url: str, client: redis.Redis, batch: int, count: int
) -> None:
    intake = Intake(redis_url, batch)
    client.rpush(KEY, *urls(count))
    per_tick = min(TICK_BATCHES, TICK_ENTRIES // batch)
    ticks = 0
    while client.llen(KEY):
        ticks += 1
        assert ticks <= count, "the intake stopped taking"
        reads = intake.tick()
        assert len(reads) == min(per_tick, math.ceil((count - sum(intake.reads) + sum(reads)) / batch))
    assert len(intake.reads) == math.ceil(count / batch)  # every read a full batch but the last
    assert ticks == math.ceil(count / (batch * per_tick))
    again = ticks - (count % (batch * per_tick) != 0)
    assert intake.again == again  # the next tick at once, after each tick whose last read was full
    assert len(intake.scheduler.queue) == count and intake.scheduler.state.seeded()
    assert intake.tick() == [] and intake.again == again  # the key is empty: back to a look a second


@pytest.mark.parametrize(
    ("batch", "reads_per_tick"), [(5, TICK_BATCHES), (400, 2), (TICK_ENTRIES, 1), (5000, 1)]
)
def test_a_tick_takes_a_bounded_part_of_a_big_seed(
    redis_url: str, client: redis.Redis, batch: int, reads_per_tick: int
) -> None:
    """At most TICK_ENTRIES entries or TICK_BATCHES reads a tick (and always a read): the engine runs
    between ticks, however big the batch or the seed."""
    intake = Intake(redis_url, batch)
    client.rpush(KEY, *urls(3 * max(batch, TICK_ENTRIES)))
    assert intake.tick() == [batch] * reads_per_tick
    assert intake.again == 1 and intake.tick() == [batch] * reads_per_tick  # the next tick: at once


def test_a_short_seed_is_taken_in_one_read_and_the_next_look_waits_its_second(
    redis_url: str, client: redis.Redis
) -> None:
    intake = Intake(redis_url, 100)
    client.rpush(KEY, *urls(60))
    assert intake.tick() == [60] and intake.again == 0
    client.rpush(KEY, *urls(5))
    assert intake.tick() == []  # pushed within the second: read at the next look, as before


def test_tick_again_runs_the_next_tick_after_what_waits_on_the_loop() -> None:
    """A tick that asks for another gets it once the loop served what was ready (the engine's calls),
    not within the tick, nor at the next interval."""
    crawler: Any = get_crawler(SeededSpider)
    slot = SimpleNamespace(remove_request=lambda request: None, inprogress=set(), nextcall=None)
    crawler._engine = SimpleNamespace(_slot=slot)  # the engine's parts the hooks use (compat.py)
    events: list[str] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        async def tick() -> None:
            events.append("tick")
            if events.count("tick") < 3:
                loop.call_soon(events.append, "engine")  # the engine's work, ready meanwhile
                hooks.tick_again()
            else:
                done.set_result(None)

        hooks = EngineHooks(crawler, lambda request: None, tick, interval=3600)
        assert hooks.attach()
        hooks.tick_now()
        await asyncio.wait_for(done, timeout=30)
        hooks.stop()

    asyncio.run(scenario())
    assert events == ["tick", "engine", "tick", "engine", "tick"]
