"""Redis fails over mid-crawl (issue 21): workers reach Redis through three real Sentinels; the master
is SIGKILLed (no shutdown, its last writes may never reach the replica); Sentinel promotes the
replica; the workers follow it with the outage handling they have and finish with every story
stored once and equal to the replica's truth, and ``status`` reads the new master. Real processes
throughout (tests/cluster.py, tests/sentinel_servers.py).

Each test prints the seconds from the master's death to the first acknowledgement the new master
ran (MONITOR on the replica, attached before the kill): the figure the README quotes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from cluster import Cluster, Monitor, assert_store_matches, cluster
from harness import ROOT, replica_server, wait_for
from mongo_server import MongoServer
from sentinel_servers import SentinelSet, sentinel_set

from scrapy_sharedcrawl.queue import _LUA_ACK
from solidot_replica import Replica, ReplicaConfig

STORIES, LAST_SID = 120, 80300
#: The ack script as EVALSHA names it (redis-py runs registered scripts by SHA1).
ACK_SHA = hashlib.sha1(_LUA_ACK.encode()).hexdigest()
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


class PromotionMonitor(Monitor):
    """MONITOR that attaches again at once when its connection is closed: Sentinel promotes a
    replica with ``CLIENT KILL TYPE normal``, which a MONITOR connection is."""

    def __init__(self, port: int) -> None:
        self.closing = False
        super().__init__(port)

    def _read(self) -> None:
        while True:
            super()._read()  # returns when the connection is closed
            if self.closing:
                return
            try:
                connection = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                connection.sendall(b"MONITOR\r\n")
                buffer = b""
                while b"\r\n" not in buffer:
                    buffer += connection.recv(64)
            except OSError:
                return
            self._connection, self._rest = connection, buffer.split(b"\r\n", 1)[1]

    def close(self) -> None:
        self.closing = True
        super().close()


@contextmanager
def watching(port: int) -> Iterator[PromotionMonitor]:
    monitor = PromotionMonitor(port)
    try:
        yield monitor
    finally:
        monitor.close()


def first_ack_after(monitor: Monitor, died: float, timeout: float = 60) -> float:
    """Seconds from ``died`` to the first acknowledgement run on the monitored server after it: an
    EVALSHA of the ack script followed by the script's own commands (client ``lua``: it ran, it
    was no NOSCRIPT)."""
    found: list[float] = []

    def acknowledged(lines: list[str]) -> bool:
        for line, following in pairwise(lines):
            stamp = float(line[1:].split(" ", 1)[0]) if line.startswith("+") else 0.0
            if stamp >= died and f'"{ACK_SHA}"' in line.lower() and "lua]" in following:
                found.append(stamp - died)
                return True
        return False

    monitor.wait(acknowledged, timeout=timeout, what="an acknowledgement on the new master")
    return found[0]


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
