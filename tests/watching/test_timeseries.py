"""The crawl's time series: pushed with the shared stats by real collectors into a real redis-server,
one point per interval however many workers push, one command more per push in the same round trip,
capped, expiring with the stats, started afresh with the next crawl, and read without trust."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import pytest
import redis
from cluster import monitoring
from harness import wait_for
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl.stats import RedisStatsCollector
from scrapy_sharedcrawl.timeseries import FIELDS, GAUGES, read_points, series_key
from solidot_spider.spiders.solidot import SolidotSpider

SERIES = series_key("{solidot}")


def collector(redis_url: str, worker: str, **settings: Any) -> RedisStatsCollector:
    """A worker's stats collector, opened (its crawl's stats begun), named ``worker``."""
    crawler = get_crawler(SolidotSpider, {"REDIS_URL": redis_url, "STATS_PUSH_INTERVAL": "0.2", **settings})
    stats = RedisStatsCollector(crawler)
    stats.worker_id = worker

    async def open_it() -> None:  # Scrapy's reactorless mode: its looping call needs a running loop
        stats.open_spider()
        stats._loop.stop()  # pushes happen when the test says

    asyncio.run(open_it())
    return stats


def test_workers_pushing_together_leave_one_point_per_interval_of_crawl_wide_totals(redis_url: str) -> None:
    workers = [collector(redis_url, f"w{i}") for i in range(3)]
    client = redis.Redis.from_url(redis_url)
    pushes = 0

    def push_round() -> bool:
        nonlocal pushes
        for stats in workers:
            stats.inc_value("response_received_count", 2)
            stats.inc_value("item_scraped_count")
            stats.inc_value("retry/reason_count/429 Unknown Status")
            assert stats.push()
            pushes += 1
        return client.xlen(SERIES) >= 6

    wait_for(push_round, timeout=30, interval=0.01, what="six points")
    points = read_points(client, SERIES)
    buckets = [math.floor(p.time * 1000 / 200) for p in points]
    assert buckets == sorted(set(buckets)), "two points in one interval"
    assert pushes >= len(points) * 2, "every push wrote a point"
    # no outcome counted in this crawl: the fan-out "o:" adds no field
    assert set(points[-1].values) == {name for name in FIELDS if not name.endswith(":")} | set(GAUGES)
    pages = [p.values["pages"] for p in points]
    assert pages == sorted(pages) and all(value % 2 == 0 for value in pages)
    # each point is the crawl-wide total at its moment: what the shared hash held then
    total = int(client.hget("{solidot}:stats", "response_received_count") or 0)
    assert pages[-1] <= total == 2 * pushes
    assert points[-1].values["err_http"] == points[-1].values["items"] == pages[-1] / 2
    assert points[-1].values["queued"] == points[-1].values["leased"] == 0


def test_a_push_costs_one_command_more_whatever_the_point_costs_inside(
    redis_srv: Any, redis_url: str
) -> None:
    plain = collector(redis_url, "plain", STATS_SERIES_POINTS="0")
    charted = collector(redis_url, "charted")
    commands: dict[str, list[str]] = {}
    with monitoring(redis_srv.port) as watcher:
        for name, stats in (("plain", plain), ("charted", charted)):
            stats.inc_value("response_received_count")
            assert stats.push()  # the first push may load its scripts (once per server): not measured
            start = watcher.mark(f"{name}-start")
            for _ in range(10):
                stats.inc_value("response_received_count")
                assert stats.push()
            commands[name] = watcher.between(start, watcher.mark(f"{name}-end"))
    sent = {name: from_pusher(lines) for name, lines in commands.items()}
    assert len(sent["plain"]) == 10 and all('"EVALSHA"' in line for line in sent["plain"])
    assert len(sent["charted"]) == 20, sent["charted"]  # the push and the point: one command more a push
    inside = [line for line in commands["charted"] if "lua]" in line]
    assert sum('"XREVRANGE"' in line for line in inside) == 10  # each push looks for this interval's point
    # and writes one when there is none yet (the first push of the interval, the unmeasured one here)
    assert sum('"XADD"' in line for line in inside) <= 10
    assert redis.Redis.from_url(redis_url).xlen("{solidot}:series") >= 1


def from_pusher(lines: list[str]) -> list[str]:
    """MONITOR lines sent by the connection that pushed (the one sending EVALSHA), not by scripts."""
    pusher = next(line.split("]")[0].split()[-1] for line in lines if '"EVALSHA"' in line)
    return [line for line in lines if f" {pusher}]" in line]


def test_the_series_is_capped_expires_with_the_stats_and_starts_afresh(redis_url: str) -> None:
    stats = collector(redis_url, "w", STATS_SERIES_POINTS="5", STATS_TTL="600")
    client = redis.Redis.from_url(redis_url)
    written = 0

    def push() -> bool:
        nonlocal written
        before = client.xlen(SERIES)
        stats.inc_value("response_received_count")
        stats.push()
        written += int(client.xlen(SERIES) > before or before == 5)
        return written >= 9

    wait_for(push, timeout=30, interval=0.05, what="nine intervals")
    assert client.xlen(SERIES) == 5
    assert 590_000 < client.pttl(SERIES) <= 600_000
    assert abs(client.pttl(SERIES) - client.pttl("{solidot}:stats")) < 5_000
    stats.close_spider(reason="finished")  # nothing queued or leased: the crawl is marked finished
    assert client.hexists("{solidot}:stats:meta", "finished_at")
    collector(redis_url, "next")  # the next crawl's first worker
    assert client.exists(SERIES) == 0


def test_a_broken_series_never_costs_the_stats(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    client = redis.Redis.from_url(redis_url)
    stats = collector(redis_url, "w")
    client.set(SERIES, "not a stream")  # a key of the wrong type: every point fails
    with caplog.at_level(logging.WARNING, logger="scrapy_sharedcrawl.timeseries"):
        for _ in range(3):
            stats.inc_value("response_received_count")
            assert stats.push()
    assert client.hget("{solidot}:stats", "response_received_count") == b"3"
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "Time series at {solidot}:series not written" in caplog.records[0].message


def test_points_are_read_without_trust(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.xadd(SERIES, {"pages": "12", "items": "nan", "queued": "inf", "bad": "x"}, id="1000-0")
    client.xadd(SERIES, {"pages": "1e400", "done": "-3.5"}, id="2000-0")
    client.xadd(SERIES, {"\udcff".encode("utf-8", "surrogatepass"): "1"}, id="3000-0")
    first, second, third = read_points(client, SERIES)
    assert (first.time, first.values) == (1.0, {"pages": 12.0})
    assert second.values == {"done": -3.5}
    assert len(third.values) == 1
    assert [p.id for p in read_points(client, SERIES, after="1000-0")] == ["2000-0", "3000-0"]


def test_a_new_redis_without_the_scripts_gets_them_again(redis_srv: Any, redis_url: str) -> None:
    stats = collector(redis_url, "w")
    stats.inc_value("response_received_count")
    assert stats.push()
    redis.Redis.from_url(redis_url).script_flush()  # as after a restart without persistence
    stats.inc_value("response_received_count")
    assert stats.push()
    client = redis.Redis.from_url(redis_url)
    assert client.hget("{solidot}:stats", "response_received_count") == b"2"
    assert client.xlen(SERIES) >= 1
