"""``solidot-crawl status`` against a real shared crawl: while it runs, its numbers are Redis's at that
moment; after it, its totals are the true counts (pages the replica served, stories, injected
faults). Real redis-server, real replica, real ``scrapy crawl`` workers, the real command."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from harness import ROOT, crawl_command, crawl_env, replica_server, wait_for
from harness import run_status as status
from test_politeness import LAST_SID, STORIES, seed_stories, wait_all, workers

from scrapy_sharedcrawl.finishing import CrawlState, SeenRecord
from scrapy_sharedcrawl.workers import LIVE_BEATS

#: Small dupefilter (27 shards) so a test can count it directly; quick pushes and heartbeats.
SETTINGS = {
    "DUPEFILTER_CAPACITY": "10000",
    "STATS_PUSH_INTERVAL": "0.5",
    "WORKER_HEARTBEAT": "0.5",
    "CLUSTER_HOST_RATE": "0",
}


def status_json(redis_url: str) -> dict[str, Any]:
    done = status(redis_url, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def read_redis(client: redis.Redis, shard_keys: list[str]) -> dict[str, Any]:
    """What the crawl's keys hold right now, read directly (one MULTI/EXEC)."""
    pipe = client.pipeline(transaction=True)
    pipe.get("{solidot}:requests:count")
    pipe.get("{solidot}:requests:leased")
    pipe.hgetall("{solidot}:workers:info")
    pipe.hgetall("{solidot}:stats")
    for key in shard_keys:
        pipe.scard(key)
    queued, leased, info, stats, *shards = pipe.execute()
    return {
        "queued": int(queued or 0),
        "leased": int(leased or 0),
        "seen": sum(shards),
        "pids": sorted(json.loads(entry)["pid"] for entry in info.values()),
        "pages": int(stats.get(b"response_received_count", 0)),
        "done": int(stats.get(b"scheduler/acked", 0)),
    }


def urls_seen(sids: list[int], stats: list[dict[str, Any]]) -> int:
    """The URLs a crawl's dupefilter took in, counted without it: the stories seeded (the seeder found
    each new) and whatever the workers queued, but their retries (``dont_filter``: never in the filter)."""
    queued = sum(s.get("scheduler/enqueued", 0) for s in stats)
    retried = sum(s.get("retry/count", 0) for s in stats)
    return len(set(sids)) + queued - retried


@pytest.mark.integration  # worker processes and a replica
def test_status_during_a_crawl_is_redis_at_that_moment_and_after_it_the_true_totals(
    tmp_path: Path, redis_url: str
) -> None:
    # every story page takes 10 s: between waves of responses the crawl stands still, longer than a
    # `status` run takes even on a loaded machine (at 2 s, a slow run never saw a still moment; at
    # 5 s, under a load of 11 on two cores, the crawl's three waves went by before one was seen)
    with replica_server(STORIES, LAST_SID, faults="slow=1,slow_delay=10") as server:
        sids = seed_stories(redis_url, server, 48, DUPEFILTER_CAPACITY=10_000)
        # the filter grows with the crawl (a shard more each 192 URLs on average): read every shard it
        # may reach, far more than a crawl of 300 stories makes (a SCARD of a missing key is 0)
        shard_keys = [f"{{solidot}}:seen:{shard}" for shard in range(64)]
        settings = {**SETTINGS, "CONCURRENT_REQUESTS": "8", "SCHEDULER_PERSIST": "True"}
        client = redis.Redis.from_url(redis_url)
        with workers(tmp_path, redis_url, server, 2, settings) as running:
            pids = sorted(worker.process.pid for worker in running)
            wait_for(
                lambda: (
                    read_redis(client, shard_keys)["pids"] == pids
                    and int(client.get("{solidot}:requests:leased") or 0) >= 16
                ),
                timeout=60,
                what="both workers registered, each with 8 requests in flight",
            )
            seen_during: list[tuple[dict[str, Any], dict[str, Any]]] = []

            def status_while_redis_stands_still() -> bool:
                before = read_redis(client, shard_keys)
                assert before["leased"], "the crawl ended before a still moment was seen"
                shown = status_json(redis_url)
                if read_redis(client, shard_keys) != before:
                    return False  # a wave of responses came in meanwhile: look again
                seen_during.append((before, shown))
                return True

            wait_for(status_while_redis_stands_still, timeout=60, interval=0.1, what="a still moment")
            wait_all(running)
        served = server.stats()

    truth, shown = seen_during[0]
    assert shown["state"] == "running", (shown, truth)
    assert (shown["queued"], shown["leased"], shown["seen"]) == (
        truth["queued"],
        truth["leased"],
        truth["seen"],
    )
    assert truth["seen"] == 48 and truth["leased"] >= 16 and truth["queued"] + truth["leased"] <= 48
    assert sorted(worker["pid"] for worker in shown["workers"]) == pids
    assert {worker["host"] for worker in shown["workers"]} == {socket.gethostname()}
    # each shown live: a beat within LIVE_BEATS heartbeats (a busy machine may delay one, not three)
    live_for = LIVE_BEATS * float(SETTINGS["WORKER_HEARTBEAT"])
    assert all(0 <= worker["heartbeat_age"] <= live_for for worker in shown["workers"]), shown["workers"]
    assert shown["pages"] == truth["pages"]
    assert shown["done"] == truth["done"] < 48
    assert shown["progress"] == truth["done"] / (truth["done"] + truth["queued"] + truth["leased"])

    after = status_json(redis_url)
    pages = sum(worker.stats()["response_received_count"] for worker in running)
    items = [item["sid"] for worker in running for item in worker.items()]
    assert sorted(items) == sorted(sids)
    assert after["state"] == "finished" and after["finished_at"] is not None
    assert (after["queued"], after["leased"], after["done"], after["progress"]) == (0, 0, 48, 1.0)
    assert after["seen"] == 48 and after["seen_exact"]  # SCHEDULER_PERSIST keeps the dupefilter
    # recorded all the same (status reads the live filter while there is one)
    assert client.hmget("{solidot}:stats:meta", "seen", "seen_exact") == [b"48", b"1"]
    assert after["items"] == 48 and after["items_source"] == "scraped by the workers"
    assert after["pages"] == pages == served["requests"] == 48 + 2  # and one robots.txt per worker
    assert sum(minute["pages"] for minute in after["recent_minutes"]) == pages
    assert after["errors"] == {}
    assert after["workers"] == []


@pytest.mark.integration  # worker processes and a replica
def test_watching_a_crawl_with_faults_to_its_end(tmp_path: Path, redis_url: str) -> None:
    with replica_server(STORIES, LAST_SID, faults="throttle=0.08,retry_after=1,seed=3") as server:
        sids = seed_stories(redis_url, server, 60)
        watch = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "solidot_spider.cli",
                "status",
                "--watch",
                "0.3",
                "--redis-url",
                redis_url,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            with workers(tmp_path, redis_url, server, 2, SETTINGS) as running:
                wait_all(running)
            out, err = watch.communicate(timeout=30)  # it stops by itself once the crawl is finished
        finally:
            if watch.poll() is None:
                watch.kill()
        served = server.stats()
    throttled = served["faults"]["throttle"]
    assert throttled >= 2 and watch.returncode == 0, err
    frames = out.strip().split("\n\n")
    print(frames[-1])
    assert any(
        "crawl at" in frame and ": running" in frame and "workers    2 live" in frame for frame in frames
    )
    stats = [worker.stats() for worker in running]
    final = frames[-1].splitlines()
    assert final[0].startswith("solidot crawl at redis://127.0.0.1:") and ": finished, started " in final[0]
    requests = 60 + throttled  # a 429'd request is done once its retry is queued
    assert final[1].startswith("progress   100%|") and f"| {requests}/{requests} [" in final[1]
    # the dupefilter was deleted at the end (no SCHEDULER_PERSIST), its count recorded first
    assert redis.Redis.from_url(redis_url).keys("{solidot}:seen*") == []
    assert final[2:] == [
        f"queue      0 queued · 0 leases in flight · {requests} done",
        f"seen       {urls_seen(sids, stats):,} URLs",
        "items      60 (scraped by the workers)",
        final[5],  # pages: checked below
        final[6],  # outcomes: checked below
        f"errors     retry/reason_count/429 Unknown Status: {throttled}",
        "workers    0 live",
    ]
    # pages: responses that reached the spider (the 429s were turned into retries before it)
    assert final[5].startswith(f"pages      {served['requests'] - throttled} · ")
    assert "/min over the last 5 min (" in final[5]
    # every page came to a story stored or a robots.txt read (one per worker that fetched): nothing else
    pages = served["requests"] - throttled
    robots = pages - 60
    assert robots in (1, 2)
    assert (
        final[6] == f"outcomes   story_new 60 ({60 / pages:.0%}) · robots_txt {robots} ({robots / pages:.0%})"
    )
    assert sum(s.get("retry/reason_count/429 Unknown Status", 0) for s in stats) == throttled


@pytest.mark.integration  # worker processes and a replica
def test_a_bloom_filters_estimate_outlives_it_until_the_next_crawl(tmp_path: Path, redis_url: str) -> None:
    """Status shows "–" before a crawl; the finishing worker leaves the estimate status showed live (≈),
    and the next crawl's first worker starts the shared stats afresh without it."""
    bloom = {"DUPEFILTER_MODE": "bloom", "DUPEFILTER_CAPACITY": "10000"}
    client = redis.Redis.from_url(redis_url)
    nothing = status(redis_url)
    assert nothing.returncode == 0, nothing.stderr
    assert (
        "seen       – (no dupefilter in Redis, no count recorded: not started)" in nothing.stdout.splitlines()
    )
    with replica_server(STORIES, LAST_SID) as server:
        sids = seed_stories(redis_url, server, 20, **bloom)
        live = status_json(redis_url)
        with workers(tmp_path, redis_url, server, 1, {**SETTINGS, **bloom}) as running:
            wait_all(running)
        after = status_json(redis_url)
        shown = status(redis_url).stdout.splitlines()
        assert client.keys("{solidot}:seen*") == []  # deleted at the end (no SCHEDULER_PERSIST)
        # a worker of the next crawl: no arguments, so it waits for a seed; none comes, it closes
        stats_file = tmp_path / "next.stats.json"
        settings = {
            "REDIS_URL": redis_url,
            "SCHEDULER_WAIT_FOR_SEED": "1",
            "LOG_FILE": str(tmp_path / "next.log"),
        }
        command = crawl_command(tmp_path / "next.jsonl", {}, settings)
        subprocess.run(command, cwd=ROOT, env=crawl_env(server, stats_file), check=True, timeout=60)
        assert json.loads(stats_file.read_text())["finish_reason"] == "no_seed"
    truth = urls_seen(sids, [worker.stats() for worker in running])
    assert (live["seen"], live["seen_exact"]) == (truth, False)  # 20 URLs in a 10k filter: spot on
    assert after["state"] == "finished"
    assert (after["seen"], after["seen_exact"]) == (live["seen"], False)
    assert f"seen       ≈ {truth:,} URLs" in shown
    assert client.hmget("{solidot}:stats:meta", "seen", "seen_exact") == [None, None]
    following = status_json(redis_url)
    assert (following["seen"], following["seen_exact"]) == (0, True)  # the new crawl's own (empty) filter


def test_finalize_records_the_urls_seen_next_to_the_stats_and_never_over_a_count(redis_url: str) -> None:
    """The record is made only where shared stats exist, and a second finalize of the same crawl (a
    crawl never marked is finalized by each worker in turn) leaves the first one's count alone."""
    client = redis.Redis.from_url(redis_url)
    meta, layout = "{solidot}:stats:meta", "{solidot}:seen:meta"
    shards = ["{solidot}:seen:0", "{solidot}:seen:1"]
    state = CrawlState(client, "{solidot}:requests")
    record = SeenRecord(meta, layout, sets=shards)
    client.sadd(shards[0], 1, 2, 3)
    client.sadd(shards[1], -4)
    client.hset(layout, "mode", "set")
    assert state.finalize(None, keep=True, state_keys=[*shards, layout], seen=record)
    assert not client.exists(meta)  # no shared stats: no hash without a TTL left behind
    client.hset(meta, "started_at", "1")
    assert state.finalize(None, keep=False, state_keys=[*shards, layout], seen=record)
    assert client.hmget(meta, "seen", "seen_exact") == [b"4", b"1"]
    assert client.exists(*shards, layout) == 0
    assert state.finalize(None, keep=False, state_keys=[*shards, layout], seen=record)
    assert client.hmget(meta, "seen", "seen_exact") == [b"4", b"1"]  # the filter was gone: kept
    client.hset(layout, "mode", "bloom")
    estimate = SeenRecord(meta, layout, counted=(7, False))  # a Bloom filter's, counted by the caller
    assert state.finalize(None, keep=False, state_keys=[layout], seen=estimate)
    assert client.hmget(meta, "seen", "seen_exact") == [b"7", b"0"]
    assert state.finalize(None, keep=False, state_keys=[], seen=SeenRecord(meta))  # a filter not shared
    assert client.hmget(meta, "seen", "seen_exact") == [None, None]


def test_status_says_when_redis_is_unreachable() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "solidot_spider.cli", "status", "--redis-url", "redis://127.0.0.1:1/0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("solidot-crawl status: Redis unreachable at redis://127.0.0.1:1/0")
