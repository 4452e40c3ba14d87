"""Politeness across a shared crawl: one per-host rate for all workers together, robots.txt's
Crawl-delay (capped), and a 429's Retry-After pausing every worker. Real redis-server, real
replica (which timestamps every request it receives), real ``scrapy crawl`` worker processes."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from cluster import Worker
from harness import (
    ROOT,
    ReplicaServer,
    assert_spaced,
    crawl_command,
    crawl_env,
    gaps,
    replica_server,
    wait_for,
)
from scheduling_fixtures import make_spider

from scrapy_sharedcrawl.seeding import Seeder
from scrapy_sharedcrawl.testing.redis_server import redis_server
from solidot_replica import Replica, ReplicaConfig

STORIES, LAST_SID = 300, 80300
WWW = "www.solidot.test"


@contextmanager
def workers(
    workdir: Path, redis_url: str, server: ReplicaServer, count: int, settings: dict[str, str] | None = None
) -> Iterator[list[Worker]]:
    """Start ``count`` workers of one shared crawl; kill any still running on the way out."""
    workdir.mkdir(parents=True, exist_ok=True)
    crawl = uuid.uuid4().hex[:8]  # a fresh content-hash record per crawl: a re-crawl is not "unchanged"
    started = []
    try:
        for index in range(count):
            name = f"w{index}"
            options = {
                "REDIS_URL": redis_url,
                "SOLIDOT_DEDUPE_KEY": f"test:{crawl}:content_hash",
                "LOG_FILE": str(workdir / f"{name}.log"),
                **(settings or {}),
            }
            command = crawl_command(workdir / f"{name}.jsonl", {"latest": "0"}, options)
            env = crawl_env(server, workdir / f"{name}.stats.json")
            started.append(Worker(name, subprocess.Popen(command, cwd=ROOT, env=env), workdir))
        yield started
    finally:
        for worker in started:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()


def wait_all(running: Sequence[Worker], timeout: float = 90) -> None:
    """Wait for every worker to exit; each must have finished the crawl cleanly."""
    for worker in running:
        assert worker.process.wait(timeout=timeout) == 0, worker.log()[-3000:]
        assert worker.stats()["finish_reason"] == "finished", worker.log()[-3000:]
        assert "Traceback" not in worker.log() and "Deprecation" not in worker.log(), worker.log()[-3000:]


def seed_stories(redis_url: str, server: ReplicaServer, count: int, **settings: Any) -> list[int]:
    """Queue ``count`` story requests (from the newest) for the shared crawl; their sids."""
    sids = Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID)).sids()[-count:]
    spider = make_spider(redis_url, server.base_url, **settings)
    assert Seeder(spider).seed(spider.story_request(sid, from_range=True) for sid in sids).queued == count
    return sids


def story_arrivals(server: ReplicaServer, since: float = 0.0) -> list[tuple[float, int]]:
    """(time, status) of every story request the replica received for www since ``since``, in order."""
    arrivals = server.stats()["arrivals"].get(WWW, [])
    return sorted((t, status) for t, status, path in arrivals if path == "/story" and t >= since)


def steady_rate(times: Sequence[float], trim: float = 0.1) -> float:
    """Requests per second over the middle of a run (the first and last ``trim`` share left out)."""
    skip = int(len(times) * trim)
    middle = times[skip : len(times) - skip]
    assert len(middle) >= 10, f"too few requests to measure a rate: {len(times)}"
    return (len(middle) - 1) / (middle[-1] - middle[0])


@pytest.fixture(scope="module")
def replica() -> Iterator[ReplicaServer]:
    with replica_server(STORIES, LAST_SID) as server:
        yield server


RATE = 20.0


def test_three_workers_together_hold_the_host_rate(
    tmp_path: Path, redis_url: str, replica: ReplicaServer
) -> None:
    sids = seed_stories(redis_url, replica, 180)
    since = replica.stats()["arrivals"].get(WWW, [[0]])[-1][0]
    with workers(tmp_path, redis_url, replica, 3, {"CLUSTER_HOST_RATE": str(RATE)}) as running:
        wait_all(running)
    times = [t for t, _ in story_arrivals(replica, since)]
    rate = steady_rate(times)
    print(
        f"3 workers at CLUSTER_HOST_RATE={RATE:g}: the replica saw {rate:.2f} requests/s ({len(times)} stories)"
    )
    # never faster than the rate (how close it comes, and how much faster the crawl goes without it,
    # is bench/host_rate.py's to measure: a floor on speed fails on a busy machine)
    assert rate <= 1.1 * RATE
    assert len(times) / (times[-1] - times[0]) <= 1.1 * RATE  # the whole run too, not just its middle
    assert_spaced(times, 1 / RATE)  # and any stretch of it
    # all three took part, and every story was crawled once
    assert all(worker.stats()["cluster_rate/waits"] > 10 for worker in running)
    assert sorted(item["sid"] for worker in running for item in worker.items()) == sorted(sids)


def test_robots_crawl_delay_paces_the_cluster(tmp_path: Path, redis_url: str) -> None:
    with replica_server(STORIES, LAST_SID, extra=["--crawl-delay", "0.1"]) as server:
        seed_stories(redis_url, server, 40)
        with workers(tmp_path, redis_url, server, 3, {"CLUSTER_HOST_RATE": "0"}) as running:
            wait_all(running)
        times = [t for t, _ in story_arrivals(server)]
    print(
        f"Crawl-delay 0.1: {steady_rate(times):.2f} requests/s, smallest gap {min(gaps(times)) * 1000:.1f} ms"
    )
    assert len(times) == 40  # every story, and
    assert_spaced(times, 0.1)  # never two closer than the delay
    # every worker that took stories learned the delay (a late starter may find them all taken)
    crawling = [worker for worker in running if worker.items()]
    line = "asks for Crawl-delay: 0.1 s; the cluster sends it one request every 0.1 s"
    assert crawling and all(line in worker.log() for worker in crawling)


def test_a_huge_crawl_delay_is_capped(tmp_path: Path, redis_url: str) -> None:
    with replica_server(STORIES, LAST_SID, extra=["--crawl-delay", "3600"]) as server:
        seed_stories(redis_url, server, 20)
        settings = {"CLUSTER_HOST_RATE": "0", "CLUSTER_CRAWL_DELAY_MAX": "0.2"}
        with workers(tmp_path, redis_url, server, 2, settings) as running:
            wait_all(running, timeout=60)
        times = [t for t, _ in story_arrivals(server)]
    assert len(times) == 20  # all crawled within wait_all's minute: not an hour apart
    assert_spaced(times, 0.2)
    # every worker that took stories logged the cap (a late starter may find them all taken)
    crawling = [worker for worker in running if worker.items()]
    line = "Crawl-delay: 3600 s (capped at CLUSTER_CRAWL_DELAY_MAX = 0.2 s)"
    assert crawling and all(line in worker.log() for worker in crawling)


RETRY_AFTER = 2


def test_a_429_seen_by_one_worker_pauses_them_all(tmp_path: Path, redis_url: str) -> None:
    faults = f"throttle=0.03,retry_after={RETRY_AFTER},seed=11"
    with replica_server(STORIES, LAST_SID, faults=faults) as server:
        seed_stories(redis_url, server, 150)
        with workers(tmp_path, redis_url, server, 3, {"CLUSTER_HOST_RATE": str(RATE)}) as running:
            wait_all(running)
        arrivals = story_arrivals(server)
        throttled = server.stats()["faults"].get("throttle", 0)
    assert throttled >= 2, "the replica injected too few 429s to test with"
    times = [t for t, _ in arrivals]
    pauses = [t for t, status in arrivals if status == 429]
    assert len(pauses) == throttled
    in_flight = []
    for start in pauses:
        # requests already sent when the 429 came back may still arrive just after it; then silence
        in_flight += [t for t in times if start < t <= start + 0.25]
        during = [t for t in times if start + 0.25 < t < start + RETRY_AFTER - 0.05]
        assert during == [], f"{len(during)} requests reached the host during the pause after {start:.3f}"
    print(f"{throttled} 429s, each paused all 3 workers; {len(in_flight)} requests were already in flight")
    assert len(in_flight) <= len(pauses)
    stats = [worker.stats() for worker in running]
    assert sum(s.get("cluster_rate/pauses_published", 0) for s in stats) >= 1
    # workers that saw no 429 themselves waited for the pause another one published
    bystanders = [s for s in stats if not s.get("backoff/retry_after")]
    assert all(s.get("cluster_rate/paused_by_cluster", 0) > 0 for s in bystanders)
    assert all(s.get("cluster_rate/paused_by_cluster", 0) > 0 for s in stats)


def test_without_redis_each_worker_paces_alone_and_the_crawl_goes_on(tmp_path: Path) -> None:
    with redis_server(persistence="aof") as durable, replica_server(STORIES, LAST_SID) as server:
        sids = seed_stories(durable.url, server, 60)
        client = redis.Redis.from_url(durable.url)
        with workers(tmp_path, durable.url, server, 1, {"CLUSTER_HOST_RATE": "10"}) as (worker,):
            # 16 requests leased, most of them waiting for their turn at the limiter: then Redis goes
            wait_for(
                lambda: int(client.get("{solidot}:requests:leased") or 0) >= 16, timeout=60, what="16 leased"
            )
            outage = time.time()  # the replica records arrivals in Unix time, on this machine's clock
            durable.stop()
            wait_for(lambda: "Host pacing: Redis at" in worker.log(), timeout=30, what="the outage logged")
            wait_for(lambda: len(story_arrivals(server, outage)) >= 5, timeout=30, what="5 more stories")
            durable.start()
            wait_all([worker])
        times = [t for t, _ in story_arrivals(server)]
    log = worker.log()
    assert sorted(item["sid"] for item in worker.items()) == sorted(sids)
    assert log.count("Host pacing: Redis at") == 2, log[-3000:]  # one line when it goes, one when back
    assert "each worker paces hosts alone, at the cluster's rate" in log
    assert "hosts are paced for the whole cluster again" in log
    assert worker.stats()["cluster_rate/redis_errors"] >= 1
    assert_spaced(times, 0.1)  # the same interval, kept locally meanwhile
