"""Acknowledgements follow durability request by request, with a store slower than the crawl.

Two real ``scrapy crawl solidot`` workers crawl the replica through one Redis into a
MongoDB reached through a proxy that holds every message (tests/paced_proxy.py): the
store always has a backlog. Before, the acknowledgement barrier waited for the whole
buffer and, the buffer never draining in time, nothing was acknowledged while every
request stayed leased. Now each request is acknowledged once its own items are in
MongoDB: done requests keep pace with stored stories, leases stay bounded by what a
worker holds (prefetch, concurrency, two batches: while MongoDB answers, a slower store
slows the crawl instead of filling ``MONGO_MAX_BUFFER``, left at its default of 50,000
here, with fetched requests), and a worker SIGKILLed mid-backlog
hands back only the requests whose items were not stored — nothing is lost.
"""

from __future__ import annotations

from pathlib import Path

from cluster import QUEUE_KEY, assert_store_matches, cluster, lease_owners, leased, stored
from harness import ReplicaServer, wait_for
from mongo_server import MongoServer
from paced_proxy import paced_proxy
from pymongo import MongoClient

from scrapy_sharedcrawl.durability import WriteMarks
from scrapy_sharedcrawl.testing.redis_server import RedisServer
from solidot_replica import Replica

#: Each message to MongoDB waits this long: a batch of new stories costs one or two of them (its
#: stories, its 404s), far slower than the crawl, and no more batches are stored between two
#: acknowledgement ticks than HELD allows (at 0.3 s, when a batch was two or three messages).
DELAY = 0.6
BATCH, PREFETCH, CONCURRENCY = 10, 8, 4
#: Writes a worker's store holds while MongoDB answers: the batch being written and the next.
BUFFER = 2 * BATCH
#: Bytes of responses Scrapy's scraper holds before the downloader waits (Scrapy's default, 5 MB, is
#: the whole replica): a story page is a few kB, so a handful of responses wait for the pipelines.
SCRAPER_BYTES = 20_000
#: What one worker may hold leased at most: requests prefetched, downloading and waiting in the
#: scraper, requests whose items are buffered, and those stored since the last acknowledgement
#: tick (a batch or two).
HELD = PREFETCH + 3 * CONCURRENCY + BUFFER + 2 * BATCH
SETTINGS = {
    "SCHEDULER_LEASE_SECONDS": "8",  # the barrier waits 2 s: less than the buffer takes to drain
    "SCHEDULER_PREFETCH": str(PREFETCH),
    "CONCURRENT_REQUESTS": str(CONCURRENCY),
    "CONCURRENT_REQUESTS_PER_DOMAIN": str(CONCURRENCY),
    "MONGO_BATCH_SIZE": str(BATCH),
    "SCRAPER_SLOT_MAX_ACTIVE_SIZE": str(SCRAPER_BYTES),
}


def durable(mongo_uri: str, database: str) -> int:
    """Requests whose write MongoDB holds: one story or one gap (a 404) per sid."""
    with MongoClient(mongo_uri, serverSelectionTimeoutMS=5000) as client:
        return sum(client[database][name].count_documents({}) for name in ("stories", "stories.gaps"))


def test_a_slow_store_keeps_acknowledging_and_a_worker_killed_mid_backlog_loses_nothing(
    tmp_path: Path,
    redis_url: str,
    redis_srv: RedisServer,
    mongo: MongoServer,
    mongo_db_name: str,
    replica: ReplicaServer,
    replica_model: Replica,
) -> None:
    sids = replica_model.sids()
    requests = max(sids) - min(sids) + 1
    samples: list[tuple[int, int, int, int]] = []  # (done, durable, leased, the victim's leases)
    with (
        paced_proxy(mongo.port, DELAY) as proxy,
        cluster(replica, tmp_path, redis_url, proxy.uri(), mongo_db_name, **SETTINGS) as crawl,
        redis_srv.client() as client,
    ):
        assert crawl.seed("--sids", f"{min(sids)}-{max(sids)}").returncode == 0
        victim, survivor = crawl.start_worker("victim"), crawl.start_worker("survivor")

        def sample() -> tuple[int, int, int, int]:
            # Redis first, then MongoDB: a request is acknowledged only after its write, so done ≤ durable
            queued, out = int(client.get(f"{QUEUE_KEY}:count") or 0), leased(client)
            mine = victim.owns(lease_owners(client))
            samples.append((requests - queued - out, durable(mongo.uri, mongo_db_name), out, mine))
            return samples[-1]

        def a_third_acknowledged_mid_backlog() -> bool:
            done, stored_now, _, mine = sample()
            return done >= requests // 3 and stored_now < requests and mine >= 3

        wait_for(a_third_acknowledged_mid_backlog, timeout=120, interval=0.2, what="a third acknowledged")
        victim.process.kill()  # SIGKILL mid-backlog: its buffered items are lost with it
        victim.wait(timeout=30)
        held_at_kill = samples[-1][3]
        assert survivor.wait(timeout=180) == 0, crawl.logs()
        stats = survivor.stats()
        logs = crawl.logs()

    print(f"samples (done, durable, leased, victim's): {samples[::5]}; victim held {held_at_kill} at kill")
    assert all(done <= stored_now for done, stored_now, _, _ in samples), samples  # never ahead of MongoDB
    # leases bounded by what the workers hold, not by what they crawled: the old barrier kept them all
    assert all(leased <= 2 * HELD for _, _, leased, _ in samples), samples
    assert all(stored_now - done <= 2 * (BUFFER + BATCH) for done, stored_now, _, _ in samples), samples
    assert 3 <= held_at_kill <= HELD
    # nothing lost: the victim's unstored requests came back and the survivor stored them
    assert_store_matches(stored(mongo.uri, mongo_db_name), replica_model, replica.base_url, "subset")
    assert stats.get("scheduler/requeued", 0) >= held_at_kill
    assert stats.get("scheduler/acks/held", 0) > 0  # requests held back while others were acknowledged
    assert stats.get("solidot/mongo/waits/store_slower", 0) > 0  # the crawl waited for the store
    assert stats["finish_reason"] == "finished"
    assert "Traceback" not in logs and " ERROR: " not in logs, logs


def test_write_marks_name_the_requests_behind_the_settled_writes() -> None:
    from scrapy import Request
    from scrapy.utils.test import get_crawler

    from scrapy_sharedcrawl.signals import request_done

    crawler = get_crawler()
    received = 0
    marks = WriteMarks(crawler, lambda: received)
    first, second, third = (Request(f"http://example.com/{n}") for n in range(3))
    received = 2
    crawler.signals.send_catch_log(request_done, request=first)  # its items: writes 1 and 2
    received = 5
    crawler.signals.send_catch_log(request_done, request=second)
    crawler.signals.send_catch_log(request_done, request=third)  # no item of its own
    batch = [first, second, third]
    assert marks.last(batch) == 5 and marks.first_pending(batch, settled=1) == 2
    assert marks.pending(batch, settled=2) == [second, third] and len(marks) == 2
    assert marks.first_pending(batch, settled=2) == 5
    assert marks.pending(batch, settled=5) == [] and len(marks) == 0
    assert marks.last(batch) == 0  # durable once found so: asked again after a failed ack, still durable
