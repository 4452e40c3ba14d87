"""A shared crawl through everything hostile at once: pages with numbers BSON can't hold and nesting
past what a parser reads, requests for other hosts and worse planted in the shared queue, and a Redis
that is full (``maxmemory`` under ``noeviction``) for a while. Every other story is stored exactly
once, each bad input is counted under its reason, and the crawl ends by itself.

Real processes and servers throughout (tests/cluster.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import redis
from cluster import QUEUE_KEY, cluster, stored
from harness import replica_server, wait_for
from mongo_server import MongoServer
from truth import mismatches

from scrapy_sharedcrawl.keys import QueueKeys
from scrapy_sharedcrawl.testing.redis_server import RedisServer
from scrapy_sharedcrawl.testing.scheduling import plant as plant_member
from solidot_replica import FaultConfig, Replica, ReplicaConfig
from solidot_spider.archive.documents import stored_item

STORIES, LAST_SID, HOSTILE = 120, 80300, "hostile=6"
SITE = "http://www.solidot.test"

#: Payloads planted in the shared queue, each with the reason it must be refused for.
PLANTED: dict[str, tuple[dict | bytes, str]] = {
    "foreign-host": ({"url": "http://evil.example/story?sid=80299", "callback": "parse_story"}, "host"),
    "metadata-service": ({"url": "http://169.254.169.254/latest/meta-data/"}, "host"),
    "local-file": ({"url": "file:///etc/passwd", "callback": "parse_story"}, "url"),
    "proxy": ({"url": f"{SITE}/story?sid=1", "meta": {"proxy": "http://attacker:3128"}}, "meta"),
    "robots-off": ({"url": f"{SITE}/", "meta": {"dont_obey_robotstxt": True}}, "meta"),
    "any-method": ({"url": f"{SITE}/", "callback": "start_requests_for"}, "callback"),
    "nested": (b"[" * 5000 + b"]" * 5000, "payload"),
    "encoding": ({"url": f"{SITE}/", "encoding": "no-such-codec"}, "encoding"),
}


def plant(client: redis.Redis) -> None:
    for request_id, (payload, _) in PLANTED.items():
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        plant_member(client, QueueKeys(QUEUE_KEY), request_id.encode() + b" " + data, priority=10**6)  # first


def test_hostile_pages_planted_requests_and_a_full_redis_cost_only_themselves(
    tmp_path: Path, redis_url: str, redis_srv: RedisServer, mongo: MongoServer, mongo_db_name: str
) -> None:
    model = Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID, faults=FaultConfig.parse(HOSTILE)))
    days = model.days()
    with (
        replica_server(STORIES, LAST_SID, faults=f"{HOSTILE},slow=1,slow_delay=0.2") as server,
        cluster(server, tmp_path, redis_url, mongo.uri, mongo_db_name) as crawl,
        redis_srv.client() as admin,
    ):
        workers = [crawl.start_worker(name) for name in ("one", "two")]
        wait_for(
            lambda: all("No crawl seeded" in w.log() for w in workers), timeout=60, what="workers waiting"
        )
        # Redis full before the seed: the day pages' story requests can't be pushed until it has room
        admin.config_set("maxmemory-policy", "noeviction")
        assert crawl.seed("--since", days[0].isoformat(), "--until", days[-1].isoformat()).returncode == 0
        plant(admin)
        admin.config_set("maxmemory", int(admin.info("memory")["used_memory"]) + 32 * 1024)
        try:
            ballast = 0
            try:
                while ballast < 10_000:
                    admin.set(f"ballast:{ballast}", "x" * 4096)
                    ballast += 1
            except redis.exceptions.OutOfMemoryError:
                pass
            wait_for(
                lambda: any("Redis is full: raise maxmemory" in w.log() for w in workers),
                timeout=90,
                what="a worker holding requests because Redis is full",
            )
        finally:
            admin.config_set("maxmemory", 0)
        codes = [worker.wait(timeout=240) for worker in workers]
        stats = [worker.stats() for worker in workers]
        dead = {key: value.split("\n", 1)[0] for key, value in admin.hgetall(f"{QUEUE_KEY}:dead").items()}
        logs = crawl.logs()
        base_url = server.base_url

    assert codes == [0, 0], logs
    assert [s["finish_reason"] for s in stats] == ["finished", "finished"]
    # every story but the bad ones, stored exactly once and equal to the truth
    documents = stored(mongo.uri, mongo_db_name)
    sids = [doc["sid"] for doc in documents]
    dropped = model.dropped_sids()
    assert sids == sorted(set(sids)), "a story is stored twice"
    assert sids == [sid for sid in model.sids() if sid not in dropped]
    for doc in documents:
        assert not mismatches(stored_item(doc), model.truth(doc["sid"], base_url), "subset"), doc["sid"]
    # each hostile page counted under its reason, nothing else dropped
    counted = Counter()
    for s in stats:  # the drop counters (each page's outcome/dropped/<reason> is counted apart)
        counted.update(
            {name: value for name, value in s.items() if "dropped/" in name and "outcome/" not in name}
        )
    assert counted == Counter(dropped.values()), (counted, dropped)
    # each planted payload in the dead letters with its reason, counted, never retried
    assert {key: reason.split(":", 1)[0] for key, reason in dead.items()} == {
        key: reason for key, (_, reason) in PLANTED.items()
    }
    assert sum(s.get("scheduler/dead", 0) for s in stats) == len(PLANTED)
    assert sum(s.get("scheduler/redis/outages", 0) for s in stats) >= 1  # the refusals were ridden out
    assert "Traceback" not in logs
