"""The leasing scheduler in real crawls: requests held while Redis is away, a SIGKILLed worker
losing nothing, a Redis restart mid-crawl, and the add-on that switches it all on."""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, crawl_command, crawl_env, read_jsonl, replica_server, wait_for
from scheduling_fixtures import LAST_SID, STORIES, make_spider
from scrapy.settings import Settings
from truth import assert_items_match, mismatches

from scrapy_sharedcrawl import serialization
from scrapy_sharedcrawl.addon import SHARED_SETTINGS, SharedCrawl
from scrapy_sharedcrawl.seeding import Seeder
from scrapy_sharedcrawl.testing.redis_server import RedisServer, redis_server
from scrapy_sharedcrawl.testing.scheduling import open_scheduler
from solidot_replica import Replica, ReplicaConfig
from solidot_spider.site.urls import story_sid

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
        leased_at_kill = {story_sid(serialization.loads(payload)["url"]) for _, _, payload in queue.leases()}
        queued_at_kill = {  # queue members are "<id> <payload>"
            story_sid(serialization.loads(payload)["url"]) for _, payload in queue.queued()
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
