"""A shared crawl: several ``scrapy crawl solidot`` workers, seeded by ``solidot-crawl seed``, crawl a
replica into MongoDB through one Redis, and finish by themselves — also when a worker is killed
or Redis restarts mid-crawl. Real processes and servers throughout (see tests/cluster.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from cluster import (
    CONTENT_HASH_KEY,
    QUEUE_KEY,
    SEEN_KEY,
    assert_store_matches,
    cluster,
    lease_owners,
    leased,
    monitoring,
    shared_keys,
    shared_spider,
)
from harness import ROOT, replica_server, wait_for
from mongo_server import MongoServer
from scrapy.utils.defer import maybe_deferred_to_future

from scrapy_sharedcrawl.finishing import ClusterStatus, Finisher, IdlePolls, Verdict
from scrapy_sharedcrawl.scheduler import LeasingScheduler
from scrapy_sharedcrawl.seeding import Seeder
from scrapy_sharedcrawl.testing.redis_server import RedisServer, redis_server
from solidot_replica import Replica, ReplicaConfig

STORIES, LAST_SID = 120, 80300


@pytest.fixture(scope="module")
def model() -> Replica:
    return Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID))


@pytest.fixture
def durable_redis() -> Iterator[RedisServer]:
    """A Redis that keeps its data across stop/start (AOF), as a production one must."""
    with redis_server(persistence="aof") as server:
        yield server


def sid_range(model: Replica) -> str:
    return f"{min(model.sids())}-{max(model.sids())}"


def range_requests(model: Replica) -> int:
    """Requests a crawl of :func:`sid_range` makes: one per sid, gaps included."""
    return max(model.sids()) - min(model.sids()) + 1


def day_range(model: Replica) -> list[str]:
    days = model.days()
    return ["--since", days[0].isoformat(), "--until", days[-1].isoformat()]


def assert_clean_logs(log: str) -> None:
    assert "Traceback" not in log and "Deprecation" not in log, log[-3000:]
    assert " ERROR: " not in log, log[-3000:]


def test_three_workers_wait_for_the_seed_share_the_crawl_and_exit_by_themselves(
    tmp_path: Path,
    redis_url: str,
    redis_srv: RedisServer,
    mongo: MongoServer,
    mongo_db_name: str,
    model: Replica,
) -> None:
    requests = range_requests(model)
    # 8 pages/s across the cluster: the crawl lasts ≥ 15 s, so the second seed (a process start, several
    # seconds on a loaded machine) still finds it running (unpaced, it was over in ~2 s and the second
    # seed started a new crawl)
    with (
        replica_server(STORIES, LAST_SID, faults="slow=1,slow_delay=0.5") as server,
        cluster(server, tmp_path, redis_url, mongo.uri, mongo_db_name, CLUSTER_HOST_RATE="8") as crawl,
    ):
        workers = [crawl.start_worker(name) for name in ("one", "two", "three")]
        wait_for(
            lambda: all("No crawl seeded" in worker.log() for worker in workers),
            timeout=60,
            what="three workers waiting for a seed",
        )
        first = crawl.seed("--sids", sid_range(model))
        again = crawl.seed("--sids", sid_range(model))
        codes = [worker.wait(timeout=120) for worker in workers]
        stats = [worker.stats() for worker in workers]
        logs = crawl.logs()
        base_url = server.base_url

    assert first.returncode == 0 and first.counts == (requests, 0), first.stdout + first.stderr
    assert again.returncode == 0 and again.counts == (0, requests), again.stdout + again.stderr
    assert codes == [0, 0, 0], logs
    assert_store_matches(crawl.stored(), model, base_url, categories="subset")
    assert [s["finish_reason"] for s in stats] == ["finished"] * 3
    shares = [s.get("scheduler/dequeued", 0) for s in stats]
    print(f"requests per worker: {shares}")
    assert sum(shares) == requests and min(shares) >= 10, shares  # each did a share, none twice
    assert sum(s.get("scheduler/finalized", 0) for s in stats) == 1  # exactly one cleaned up
    with redis_srv.client() as client:
        assert shared_keys(client) == {f"{QUEUE_KEY}:finished"}  # queue, leases, dupefilter deleted
        assert client.hlen(CONTENT_HASH_KEY) == len(model.sids())
    assert_clean_logs(logs)


def test_a_worker_given_a_range_seeds_it_at_once_for_all(
    tmp_path: Path, redis_url: str, mongo: MongoServer, mongo_db_name: str, model: Replica
) -> None:
    requests = range_requests(model)
    with (
        replica_server(STORIES, LAST_SID, faults="slow=1,slow_delay=0.2") as server,
        cluster(server, tmp_path, redis_url, mongo.uri, mongo_db_name) as crawl,
    ):
        helpers = [crawl.start_worker(name) for name in ("two", "three")]
        wait_for(
            lambda: all("No crawl seeded" in worker.log() for worker in helpers),
            timeout=60,
            what="two workers waiting for a seed",
        )
        seeding = crawl.start_worker("one", {"sids": sid_range(model)})
        workers = [seeding, *helpers]
        codes = [worker.wait(timeout=120) for worker in workers]
        stats = [worker.stats() for worker in workers]
        logs = crawl.logs()
        base_url = server.base_url

    assert codes == [0, 0, 0], logs
    assert_store_matches(crawl.stored(), model, base_url, categories="subset")
    shares = [s.get("scheduler/dequeued", 0) for s in stats]
    print(f"requests per worker: {shares}")
    assert sum(shares) == requests and min(shares) >= 10, shares  # the waiting workers took their share
    assert stats[0]["scheduler/enqueued/redis"] == requests
    assert_clean_logs(logs)


def test_start_requests_and_pops_go_in_batches(
    tmp_path: Path, redis_url: str, mongo: MongoServer, mongo_db_name: str
) -> None:
    """A fast crawl: the engine would take one start request per turn, each costing a push and a pop.

    300 stories, not the module's 120: a few round trips are fixed costs (the seed marker, the
    first status, acknowledgements while the crawl runs), and on 120 requests a busy machine's
    slower crawl made them tip the count over the bound."""
    model = Replica(ReplicaConfig(stories=300, last_sid=LAST_SID))
    requests = range_requests(model)
    with (
        replica_server(300, LAST_SID) as server,
        cluster(server, tmp_path, redis_url, mongo.uri, mongo_db_name) as crawl,
    ):
        worker = crawl.start_worker("one", {"sids": sid_range(model)}, CONCURRENT_REQUESTS="16")
        assert worker.wait(timeout=120) == 0, crawl.logs()
        stats = worker.stats()
    trips = stats["scheduler/redis/round_trips"]
    print(f"{trips} Redis round trips for {requests} requests")
    assert stats["scheduler/enqueued/redis"] == stats["scheduler/acked"] == requests
    # pushes in pipelined batches, pops of SCHEDULER_PREFETCH (8): well under one round trip a request
    assert trips < requests / 4
    assert_clean_logs(crawl.logs())


def test_a_worker_killed_with_requests_in_flight_loses_and_duplicates_nothing(
    tmp_path: Path,
    redis_url: str,
    redis_srv: RedisServer,
    mongo: MongoServer,
    mongo_db_name: str,
    model: Replica,
) -> None:
    requests = range_requests(model)
    with (
        replica_server(STORIES, LAST_SID, faults="slow=1,slow_delay=0.5") as server,
        cluster(server, tmp_path, redis_url, mongo.uri, mongo_db_name) as crawl,
    ):
        assert crawl.seed("--sids", sid_range(model)).returncode == 0
        # MongoDB batches wait up to 30 s: only the acknowledgement barrier makes items durable in time
        slow_flush = {"MONGO_FLUSH_INTERVAL": "30"}
        victim, *survivors = [crawl.start_worker(name, **slow_flush) for name in ("victim", "two", "three")]
        with redis_srv.client() as client:

            def victim_mid_crawl() -> bool:
                # 15 requests acknowledged (gone from Redis for good), the victim downloading several
                remaining = int(client.get(f"{QUEUE_KEY}:count") or 0) + leased(client)
                return remaining <= requests - 15 and victim.owns(lease_owners(client)) >= 3

            wait_for(victim_mid_crawl, timeout=90, what="the victim holding 3 leases after 15 acks")
            victim.process.kill()  # SIGKILL: no cleanup of any kind
            victim.wait(timeout=30)
            in_flight = victim.owns(lease_owners(client))
            codes = [worker.wait(timeout=120) for worker in survivors]
            recorded = {int(sid): digest for sid, digest in client.hgetall(CONTENT_HASH_KEY).items()}
        stats = [worker.stats() for worker in survivors]
        logs = crawl.logs()
        base_url = server.base_url

    assert codes == [0, 0], logs
    documents = crawl.stored()
    assert_store_matches(documents, model, base_url, "subset")  # nothing lost, one document per story
    requeued = sum(s.get("scheduler/requeued", 0) for s in stats)
    print(f"killed with {in_flight} requests leased; {requeued} leases requeued to the others")
    assert in_flight >= 3 and requeued >= in_flight
    # dedupe dropped nothing as unchanged: no story was recorded before it was stored
    assert sum(s.get("solidot/dedupe/unchanged", 0) for s in stats) == 0
    by_sid = {doc["sid"]: doc for doc in documents}
    assert all(by_sid[sid]["content_hash"] == digest for sid, digest in recorded.items())
    assert [s["finish_reason"] for s in stats] == ["finished"] * 2
    assert_clean_logs("\n".join(worker.log() for worker in survivors))


def test_redis_restarted_mid_crawl_the_crawl_completes(
    tmp_path: Path, durable_redis: RedisServer, mongo: MongoServer, mongo_db_name: str, model: Replica
) -> None:
    with (
        replica_server(STORIES, LAST_SID, faults="slow=1,slow_delay=0.5") as server,
        cluster(server, tmp_path, durable_redis.url, mongo.uri, mongo_db_name) as crawl,
    ):
        assert crawl.seed(*day_range(model)).returncode == 0  # day pages: discovery is shared too
        workers = [crawl.start_worker(name, SCHEDULER_LEASE_SECONDS="30") for name in ("one", "two")]
        wait_for(lambda: len(crawl.stored()) >= 15, timeout=90, what="15 stories stored")
        durable_redis.stop()
        wait_for(
            lambda: all("Redis unreachable" in worker.log() for worker in workers),
            timeout=30,
            what="both workers noticing the outage",
        )
        durable_redis.start()
        codes = [worker.wait(timeout=150) for worker in workers]
        stats = [worker.stats() for worker in workers]
        logs = [worker.log() for worker in workers]
        base_url = server.base_url

    assert codes == [0, 0], crawl.logs()
    assert_store_matches(crawl.stored(), model, base_url)
    assert all("Redis reachable again at" in log for log in logs), crawl.logs()
    assert [s["finish_reason"] for s in stats] == ["finished"] * 2
    assert sum(s.get("scheduler/dequeued", 0) for s in stats) >= len(model.sids())
    with durable_redis.client() as client:
        assert shared_keys(client) == {f"{QUEUE_KEY}:finished"}
    assert_clean_logs("\n".join(logs))


def test_a_continuous_worker_waits_quietly_for_the_next_seed(
    tmp_path: Path,
    redis_url: str,
    redis_srv: RedisServer,
    mongo: MongoServer,
    mongo_db_name: str,
    model: Replica,
) -> None:
    sids = model.sids()
    first, second = sids[len(sids) // 2 :], sids[: len(sids) // 2]
    poll_max = 4.0
    with (
        replica_server(STORIES, LAST_SID) as server,
        cluster(server, tmp_path, redis_url, mongo.uri, mongo_db_name) as crawl,
    ):
        worker = crawl.start_worker(
            "continuous", SCHEDULER_CONTINUOUS="True", SCHEDULER_IDLE_POLL_MAX=str(poll_max)
        )
        assert crawl.seed("--sids", f"{first[0]}-{first[-1]}").returncode == 0
        wait_for(lambda: len(crawl.stored()) == len(first), timeout=60, what="the first seed stored")
        wait_for(
            lambda: "finished: nothing queued or leased" in worker.log(),
            timeout=30,
            what="the crawl finished",
        )

        # idle: how often does it ask Redis, and how much each time? Between two marks, once four
        # polls were seen (scripts' own commands and other components' keys aside)
        keys = " ".join(f'"{QUEUE_KEY}:{name}"' for name in ("count", "leased", "seeded", "finished"))
        polled = f'"4" {keys}'  # the crawl-status script (its 4 keys): once a poll, after the pop
        with monitoring(redis_srv.port) as watcher:
            start = watcher.mark("idle")
            seen = len(watcher.lines)
            watcher.wait(lambda lines: sum(polled in line for line in lines[seen:]) >= 4, 60, "4 polls")
            commands = [
                line for line in watcher.between(start, watcher.mark("end")) if " [0 lua] " not in line
            ]
        polls = [line for line in commands if polled in line]
        # the shared stats' time-series point names the queue's keys too (it records their sizes):
        # another component's command, counted by the time-series tests, not the scheduler's
        scheduler = [line for line in commands if QUEUE_KEY in line and '"{solidot}:series"' not in line]
        times = [float(line[1:].split(" ", 1)[0]) for line in polls]
        gaps = [round(later - earlier, 1) for earlier, later in pairwise(times)]
        print(f"idle: {len(scheduler)} scheduler commands in {len(polls)} polls, {gaps} s apart")
        assert worker.process.poll() is None  # still there
        # a poll is two commands (a pop, the status; a mark may cut one); the pauses double up to
        # the cap from 0.25 s, and a busy machine only makes them longer
        assert len(polls) >= 4 and len(scheduler) <= 2 * len(polls) + 1, scheduler
        assert gaps[-1] >= 0.9 * poll_max, gaps

        assert crawl.seed("--sids", f"{second[0]}-{second[-1]}").returncode == 0
        wait_for(lambda: len(crawl.stored()) == len(sids), timeout=60, what="the second seed stored")
        worker.interrupt()
        code = worker.wait(timeout=60)
        base_url = server.base_url

    assert code == 0, worker.log()[-3000:]
    assert worker.stats()["finish_reason"] == "shutdown"
    assert_store_matches(crawl.stored(), model, base_url, "subset")
    log = worker.log()
    assert "Waiting for a seed" in log and "No crawl seeded" not in log
    assert_clean_logs(log)


def test_a_worker_gives_up_waiting_for_a_seed(
    tmp_path: Path, redis_url: str, mongo: MongoServer, mongo_db_name: str
) -> None:
    with (
        replica_server(STORIES, LAST_SID) as server,
        cluster(server, tmp_path, redis_url, mongo.uri, mongo_db_name) as crawl,
    ):
        worker = crawl.start_worker("lonely", SCHEDULER_WAIT_FOR_SEED="2")
        assert worker.wait(timeout=60) == 0
    assert worker.stats()["finish_reason"] == "no_seed"
    assert re.search(
        r"No crawl was seeded at redis://127\.0\.0\.1:\d+/0 within 2 s \(SCHEDULER_WAIT_FOR_SEED\): closing",
        worker.log(),
    )
    assert "Seed one with `solidot-crawl seed`, then start workers" in worker.log()  # the project's hint


def test_seeding_needs_redis() -> None:
    env = {name: value for name, value in os.environ.items() if name != "REDIS_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "solidot_spider.cli", "seed", "--sids", "1-2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "set REDIS_URL (or --redis-url)" in done.stderr, done.stderr


# -- the pieces, in this process ---------------------------------------------------------


def open_worker(redis_url: str, **settings: Any) -> LeasingScheduler:
    scheduler = LeasingScheduler.from_crawler(shared_spider(redis_url, **settings).crawler)
    scheduler.open(scheduler.crawler.spider)
    return scheduler


def close(scheduler: LeasingScheduler, reason: str = "finished") -> None:
    async def closing() -> None:
        await maybe_deferred_to_future(scheduler.close(reason))

    asyncio.run(closing())


@pytest.mark.parametrize("persist", [False, True], ids=["deleted", "kept"])
def test_one_worker_cleans_up_a_finished_crawl_atomically(
    redis_url: str, redis_srv: RedisServer, persist: bool
) -> None:
    one, two = (open_worker(redis_url, SCHEDULER_PERSIST=persist) for _ in range(2))
    spider = one.crawler.spider
    seeder = Seeder(shared_spider(redis_url))
    crawl_id = seeder.seed(spider.story_request(sid) for sid in (1, 2, 3)).crawl_id
    assert crawl_id and two.has_pending_requests()  # seeded: two waits while one works
    while (request := one.next_request()) is not None:
        one.request_done(request)
    assert two.has_pending_requests()  # done but not acknowledged: still leased
    asyncio.run(one.acknowledge())
    assert not one.has_pending_requests() and not two.has_pending_requests()  # both see it finished
    close(one)
    close(two)
    assert (one.stats.get_value("scheduler/finalized"), two.stats.get_value("scheduler/finalized")) == (
        1,
        None,
    )
    with redis_srv.client() as client:
        assert client.zrange(f"{QUEUE_KEY}:finished", 0, -1) == [crawl_id]
        assert f"{QUEUE_KEY}:seeded" not in shared_keys(client)  # a new seed starts a new crawl
        kept = {key for key in shared_keys(client) if key.startswith(SEEN_KEY)}
        assert bool(kept) is persist  # the dupefilter: deleted, or kept with SCHEDULER_PERSIST
    again = seeder.seed(spider.story_request(sid) for sid in (1, 2, 3))
    assert again.queued == (0 if persist else 3) and again.crawl_id not in (None, crawl_id)


def test_idle_polls_back_off_to_the_cap() -> None:
    polls = IdlePolls(cap=4)
    polls.missed()
    assert [polls.polled(0, patient=True) for _ in range(6)] == [0.25, 0.5, 1, 2, 4, 4]
    assert not polls.due(3.9) and polls.due(4)
    polls.busy()  # work came: ask at once, then back off again, to 1 s while others hold leases
    assert polls.due(0) and [polls.polled(0, patient=False) for _ in range(4)] == [0.25, 0.5, 1, 1]


def test_verdicts(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    finisher = Finisher("redis://x", wait_for_seed=300, clock=lambda: now[0])

    def status(queued: int = 0, leased: int = 0, seeded: str | None = None, **flags: bool) -> ClusterStatus:
        return ClusterStatus(
            queued, leased, seeded, flags.get("ours", False), flags.get("since", False), server_ms=1
        )

    assert finisher.judge(status()) is Verdict.WAIT  # nothing seeded yet
    assert finisher.judge(status(queued=5)) is Verdict.BUSY
    assert finisher.judge(status(leased=1, seeded="c1")) is Verdict.BUSY and finisher.crawl_id == "c1"
    assert finisher.judge(status(seeded="c1")) is Verdict.FINISHED and finisher.should_finalize
    assert finisher.judge(status(ours=True)) is Verdict.FINISHED and not finisher.should_finalize
    with caplog.at_level(logging.WARNING):  # marker gone, crawl not finished: Redis lost it
        assert finisher.judge(status()) is Verdict.WAIT and finisher.crawl_id is None
    assert "Crawl c1 is no longer in Redis" in caplog.text
    assert finisher.judge(status(since=True)) is Verdict.FINISHED  # came and went between two polls
    now[0] = 301
    assert finisher.judge(status()) is Verdict.NO_SEED
    finisher.continuous = True
    assert finisher.judge(status()) is Verdict.WAIT  # continuous: waits forever
