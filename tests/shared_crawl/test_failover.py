"""Redis fails over mid-crawl (issue 21): workers reach Redis through three real Sentinels; the master
is SIGKILLed (no shutdown, its last writes may never reach the replica); Sentinel promotes the
replica; the workers follow it with the outage handling they have and finish with every story
stored once and equal to the replica's truth, and ``status`` reads the new master. Real processes
throughout (tests/cluster.py, tests/sentinel_servers.py).

Each test prints the seconds from the master's death to the first acknowledgement the new master
ran (MONITOR on the replica, attached before the kill): the figure docs/deploying.md quotes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import Cluster, assert_store_matches, cluster
from harness import ROOT, replica_server, wait_for
from mongo_server import MongoServer
from sentinel_servers import SentinelSet, first_ack_after, sentinel_set, watching

from solidot_replica import Replica, ReplicaConfig

STORIES, LAST_SID = 120, 80300
#: Long enough that no lease expires while Redis fails over (expired leases would only redo work).
LEASE_SECONDS = "20"


@pytest.fixture(scope="module")
def model() -> Replica:
    return Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID))


@pytest.fixture
def servers() -> Iterator[SentinelSet]:
    with sentinel_set() as redis_set:
        yield redis_set


def day_range(model: Replica) -> list[str]:
    days = model.days()
    return ["--since", days[0].isoformat(), "--until", days[-1].isoformat()]


def status_json(settings: dict[str, str]) -> dict[str, Any]:
    """``solidot-crawl status --json`` with the Sentinel settings in its environment."""
    done = subprocess.run(
        [sys.executable, "-m", "solidot_spider.cli", "status", "--json"],
        cwd=ROOT,
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    shown: dict[str, Any] = json.loads(done.stdout)
    return shown


def finish(crawl: Cluster, timeout: float = 180) -> list[int]:
    return [worker.wait(timeout=timeout) for worker in crawl.workers]


def assert_finished_through(servers: SentinelSet, crawl: Cluster, model: Replica, base_url: str) -> None:
    """Every story once and true; ``status`` reads the master the Sentinels name now."""
    assert_store_matches(crawl.stored(), model, base_url)
    stats = [worker.stats() for worker in crawl.workers]
    assert [s["finish_reason"] for s in stats] == ["finished"] * len(stats), crawl.logs()
    shown = status_json(servers.settings)
    with servers.master.client() as client:
        acked = int(client.hget("{solidot}:stats", "scheduler/acked") or 0)
    assert shown["state"] == "finished", shown
    assert shown["done"] == acked > 0, shown
    logs = "\n".join(worker.log() for worker in crawl.workers)
    assert "Traceback" not in logs and " ERROR: " not in logs, logs[-3000:]


def test_the_master_killed_mid_crawl_the_workers_follow_the_promoted_replica(
    tmp_path: Path, servers: SentinelSet, mongo: MongoServer, mongo_db_name: str, model: Replica
) -> None:
    with (
        replica_server(STORIES, LAST_SID, faults="slow=1,slow_delay=0.5") as site,
        cluster(site, tmp_path, "", mongo.uri, mongo_db_name, **servers.settings) as crawl,
        watching(servers.replica.port) as monitor,
    ):
        assert crawl.seed(*day_range(model)).returncode == 0
        workers = [
            crawl.start_worker(name, SCHEDULER_LEASE_SECONDS=LEASE_SECONDS)
            for name in ("one", "two", "three")
        ]
        wait_for(lambda: len(crawl.stored()) >= 15, timeout=90, what="15 stories stored")
        old, died = servers.kill_master()
        promoted = servers.wait_for_failover(old)
        seconds = first_ack_after(monitor, died)
        print(
            f"failover: {seconds:.2f} s from the master's death to the first acknowledgement on the new one"
        )
        codes = finish(crawl)
        logs = [worker.log() for worker in workers]
        base_url = site.base_url

        assert promoted.port != old.port
        assert codes == [0, 0, 0], crawl.logs()
        assert any("Redis unreachable at sentinel://" in log for log in logs), crawl.logs()
        assert_finished_through(servers, crawl, model, base_url)


def test_two_failovers_one_crawl(
    tmp_path: Path, servers: SentinelSet, mongo: MongoServer, mongo_db_name: str, model: Replica
) -> None:
    """Kill the master; once the crawl goes on on the replica, bring the dead machine back (empty)
    as a replica, and kill the new master: the crawl ends on the first machine, complete."""
    with (
        replica_server(STORIES, LAST_SID, faults="slow=1,slow_delay=0.5") as site,
        cluster(site, tmp_path, "", mongo.uri, mongo_db_name, **servers.settings) as crawl,
    ):
        assert crawl.seed(*day_range(model)).returncode == 0
        for name in ("one", "two"):
            crawl.start_worker(name, SCHEDULER_LEASE_SECONDS=LEASE_SECONDS)
        wait_for(lambda: len(crawl.stored()) >= 10, timeout=90, what="10 stories stored")
        times = []
        for _ in range(2):
            with watching(servers.replica.port) as monitor:
                old, died = servers.kill_master()
                servers.wait_for_failover(old)
                times.append(first_ack_after(monitor, died))
            if len(times) == 1:
                # the workers hold still (SIGSTOP) while the dead machine comes back and syncs, so
                # that the crawl is still running for the second failover
                for worker in crawl.workers:
                    worker.process.send_signal(signal.SIGSTOP)
                try:
                    servers.restart_as_replica(old)
                finally:
                    for worker in crawl.workers:
                        worker.process.send_signal(signal.SIGCONT)
                resumed = time.time()
                with watching(servers.master.port) as monitor:
                    first_ack_after(monitor, resumed)  # the crawl goes on before the next kill
        print(
            "failovers: "
            + ", ".join(f"{seconds:.2f} s" for seconds in times)
            + " to the first acknowledgement"
        )
        codes = finish(crawl)
        base_url = site.base_url

        assert codes == [0, 0], crawl.logs()
        assert_finished_through(servers, crawl, model, base_url)
