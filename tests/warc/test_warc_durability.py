"""WARC records are durable before their requests are acknowledged, and a write that fails stops
acknowledgements and closes the worker: real workers of a shared crawl of the replica, watched by
:mod:`warc_probe` (every fsync, every acknowledged batch, a disk that fills up)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cluster import QUEUE_KEY, cluster, leased
from harness import replica_server
from mongo_server import MongoServer

from scrapy_sharedcrawl.testing.redis_server import RedisServer
from scrapy_sharedcrawl.warc.reader import gzip_members, parse_record, warc_files
from scrapy_sharedcrawl.warc.writer import OPEN_SUFFIX
from solidot_replica import Replica, ReplicaConfig
from solidot_spider import settings

pytestmark = pytest.mark.integration

STORIES, LAST_SID = 60, 80300
PROBE = {
    # the project's extensions (the stats file among them), and the probe
    "EXTENSIONS": json.dumps({**settings.EXTENSIONS, "tests.warc_probe.WarcProbe": 0}),
    "SCHEDULER_ACK_INTERVAL": "0.2",  # many batches in a short crawl
}


def request_record_ends(directory: Path) -> dict[str, list[tuple[str, int]]]:
    """For each URL, where its fetches' records end: (file name without ``.open``, offset after its
    request record, which a fetch writes last)."""
    ends: dict[str, list[tuple[str, int]]] = {}
    for path in warc_files([directory]):
        members = list(gzip_members(path.open("rb")))
        limits = [offset for offset, _ in members[1:]] + [path.stat().st_size]
        for (_, data), end in zip(members, limits, strict=True):
            if data is None:
                break  # a torn member: the fetch is not whole
            record = parse_record(data)
            if record.rec_type == "request":
                uri = record.rec_headers.get_header("WARC-Target-URI")
                ends.setdefault(uri, []).append((path.name.removesuffix(OPEN_SUFFIX), end))
    return ends


def probe_events(path: Path) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(path.read_text())["events"]
    return events


def synced_before_each_ack(events: list[dict[str, Any]], ends: dict[str, list[tuple[str, int]]]) -> list[str]:
    """The acknowledged URLs whose records were not fsynced before their batch was acknowledged."""
    synced: dict[str, int] = {}  # file name -> size at its latest fsync
    unsynced = []
    for event in events:
        if "sync" in event:
            name = Path(event["sync"]).name.removesuffix(OPEN_SUFFIX)
            synced[name] = max(synced.get(name, 0), event["size"])
        else:
            for url in event["ack"]:
                if not any(synced.get(name, 0) >= end for name, end in ends.get(url, [])):
                    unsynced.append(url)
    return unsynced


def test_every_acknowledged_request_has_its_records_fsynced_first(
    tmp_path: Path, redis_url: str, redis_srv: RedisServer, mongo: MongoServer, mongo_db_name: str
) -> None:
    model = Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID))
    sids = model.sids()
    warc_dir, probe_file = tmp_path / "warc", tmp_path / "probe.json"
    with (
        replica_server(STORIES, LAST_SID, faults="slow=1,slow_delay=0.1") as server,
        cluster(server, tmp_path, redis_url, mongo.uri, mongo_db_name, WARC_DIR=str(warc_dir)) as crawl,
    ):
        assert crawl.seed("--sids", f"{min(sids)}-{max(sids)}").returncode == 0
        worker = crawl.start_worker("one", WARC_PROBE_FILE=str(probe_file), **PROBE)
        assert worker.wait(timeout=180) == 0, crawl.logs()
        stats = worker.stats()

    events = probe_events(probe_file)
    batches = [event["ack"] for event in events if "ack" in event]
    acked = [url for batch in batches for url in batch]
    assert len(acked) == max(sids) - min(sids) + 1 == stats["scheduler/acked"]
    assert len(batches) >= 5, "the premise: several batches, each with its own barrier"
    assert synced_before_each_ack(events, request_record_ends(warc_dir)) == []
    assert stats["warc/syncs"] >= len(batches)


def test_a_write_that_fails_closes_the_worker_and_acknowledges_nothing_after_it(
    tmp_path: Path, redis_url: str, redis_srv: RedisServer, mongo: MongoServer, mongo_db_name: str
) -> None:
    model = Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID))
    sids = model.sids()
    requests = max(sids) - min(sids) + 1
    warc_dir, probe_file = tmp_path / "warc", tmp_path / "probe.json"
    with (
        replica_server(STORIES, LAST_SID, faults="slow=1,slow_delay=0.1") as server,
        cluster(server, tmp_path, redis_url, mongo.uri, mongo_db_name, WARC_DIR=str(warc_dir)) as crawl,
    ):
        assert crawl.seed("--sids", f"{min(sids)}-{max(sids)}").returncode == 0
        # the disk is full once the WARC file holds 120 kB: about half the crawl's fetches
        worker = crawl.start_worker(
            "one", WARC_PROBE_FILE=str(probe_file), WARC_PROBE_FILE_LIMIT="120000", **PROBE
        )
        worker.wait(timeout=180)
        stats, log = worker.stats(), worker.log()
        with redis_srv.client() as client:
            remaining = int(client.get(f"{QUEUE_KEY}:count") or 0) + leased(client)

    assert stats["finish_reason"] == "warc_error", log[-3000:]
    assert stats.get("warc/errors/OSError", 0) >= 1, stats
    assert log.count("Cannot write WARC records") == 1  # logged once, though the file fails again at close
    events = probe_events(probe_file)
    batches = [event for event in events if "ack" in event]
    acked = [url for batch in batches for url in batch["ack"]]
    assert acked, "the premise: requests were acknowledged before the disk filled"
    assert all(batch["warc_errors"] == 0 for batch in batches), "nothing acknowledged after the failure"
    assert synced_before_each_ack(events, request_record_ends(warc_dir)) == []
    assert len(acked) == stats["scheduler/acked"] < requests
    assert remaining == requests - len(acked)  # the rest stays in Redis, to be crawled again
