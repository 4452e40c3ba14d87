"""Helpers for shared-crawl tests: worker processes of one crawl, the seed command, what they left.

Everything is real: ``scrapy crawl solidot`` worker processes and ``solidot-crawl seed``
against a replica server, a private redis-server and a MongoDB wire-protocol server.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import redis
from harness import ROOT, ReplicaServer, crawl_command, crawl_env, read_jsonl
from pymongo import MongoClient
from truth import mismatches

from scrapy_sharedcrawl.keys import QueueKeys
from scrapy_sharedcrawl.reading import text
from solidot_replica import Replica
from solidot_spider.archive.documents import stored_item

#: Settings of every worker in these tests: short leases (a killed worker's requests come back
#: fast), quick polls, MongoDB batches flushed often.
WORKER_SETTINGS: dict[str, str] = {
    "SCHEDULER_LEASE_SECONDS": "3",
    "SCHEDULER_IDLE_POLL_MAX": "1",
    "SCHEDULER_WAIT_FOR_SEED": "120",
    "MONGO_FLUSH_INTERVAL": "0.5",
    "CONCURRENT_REQUESTS": "4",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "4",
}
#: The shared crawl's keys (the default SCHEDULER_QUEUE_KEY / SCHEDULER_DUPEFILTER_KEY of the spider).
QUEUE_KEY = "{solidot}:requests"
SEEN_KEY = "{solidot}:seen"
CONTENT_HASH_KEY = "solidot:content_hash"


@dataclass
class Worker:
    """One ``scrapy crawl solidot`` process of the shared crawl."""

    name: str
    process: subprocess.Popen[bytes]
    workdir: Path

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def stats_path(self) -> Path:
        return self.workdir / f"{self.name}.stats.json"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""

    def stats(self) -> dict[str, Any]:
        return json.loads(self.stats_path.read_text()) if self.stats_path.exists() else {}

    def items(self) -> list[dict[str, Any]]:
        """What the worker wrote to its JSON Lines feed."""
        return read_jsonl(self.workdir / f"{self.name}.jsonl")

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def interrupt(self) -> None:
        """SIGINT, as Ctrl-C: Scrapy shuts down gracefully."""
        self.process.send_signal(signal.SIGINT)

    def owns(self, worker_ids: Iterable[str]) -> int:
        """How many of these scheduler worker ids (``host:pid:tag``) are this process's."""
        return sum(f":{self.process.pid}:" in worker_id for worker_id in worker_ids)


@dataclass(frozen=True)
class SeedRun:
    """What ``solidot-crawl seed`` said."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def counts(self) -> tuple[int, int]:
        """(pushed, already seen) from its summary line."""
        found = re.search(r"(\d+) requests pushed, (\d+) already seen", self.stdout)
        assert found, self.stdout + self.stderr
        return int(found[1]), int(found[2])


@dataclass
class Cluster:
    """A shared crawl of ``server`` through ``redis_url``, storing into ``database``."""

    server: ReplicaServer
    workdir: Path
    redis_url: str
    mongo_uri: str
    database: str
    settings: dict[str, str] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)

    def start_worker(self, name: str, spider_args: dict[str, str] | None = None, **settings: str) -> Worker:
        all_settings = {
            **WORKER_SETTINGS,
            "REDIS_URL": self.redis_url,
            "MONGO_URI": self.mongo_uri,
            "MONGO_DATABASE": self.database,
            "LOG_FILE": str(self.workdir / f"{name}.log"),
            **self.settings,
            **settings,
        }
        command = crawl_command(self.workdir / f"{name}.jsonl", spider_args or {}, all_settings)
        env = crawl_env(self.server, self.workdir / f"{name}.stats.json")
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        worker = Worker(name, process, self.workdir)
        self.workers.append(worker)
        return worker

    def seed(self, *arguments: str) -> SeedRun:
        """Run ``solidot-crawl seed ARGUMENTS`` against this crawl's Redis."""
        command = [sys.executable, "-m", "solidot_spider.cli", "seed", "--redis-url", self.redis_url]
        for name, value in self.settings.items():
            command += ["-s", f"{name}={value}"]
        env = crawl_env(self.server, self.workdir / "seed.stats.json")
        done = subprocess.run(
            [*command, *arguments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        return SeedRun(done.returncode, done.stdout, done.stderr)

    def stored(self) -> list[dict[str, Any]]:
        return stored(self.mongo_uri, self.database)

    def logs(self) -> str:
        return "\n".join(f"--- {w.name}\n{w.log()[-3000:]}" for w in self.workers)

    def stop_all(self) -> None:
        """Kill whatever still runs (a failed test must not leave workers behind)."""
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait(timeout=30)


@contextmanager
def cluster(
    server: ReplicaServer, workdir: Path, redis_url: str, mongo_uri: str, database: str, **settings: str
) -> Iterator[Cluster]:
    """A :class:`Cluster` whose worker processes are all gone when the block ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    crawl = Cluster(server, workdir, redis_url, mongo_uri, database, dict(settings))
    try:
        yield crawl
    finally:
        crawl.stop_all()


#: Sids read a query by :func:`stored`: mongoeco answers a whole large collection in one reply past the
#: wire protocol's limit (≈ 170 MB for 85k stories: pymongo's ProtocolError), so the archive is read in ranges.
STORED_RANGE = 2000


def stored(mongo_uri: str, database: str) -> list[dict[str, Any]]:
    """The stories in MongoDB, by sid (a range of sids at a time, see :data:`STORED_RANGE`; a duplicate
    sid is read as often as it is stored, and a document whose sid is no number last)."""
    with MongoClient(mongo_uri, serverSelectionTimeoutMS=5000, tz_aware=True) as client:
        stories = client[database]["stories"]
        documents: list[dict[str, Any]] = []
        ends = [
            list(stories.find({"sid": {"$type": "number"}}, {"sid": 1}, sort=[("sid", o)], limit=1))
            for o in (1, -1)
        ]
        if ends[0]:
            low, high = int(ends[0][0]["sid"]), int(ends[1][0]["sid"])
            for start in range(low, high + 1, STORED_RANGE):
                span = {"$gte": start, "$lt": start + STORED_RANGE}
                documents += stories.find({"sid": span}, sort=[("sid", 1)])
        return documents + list(stories.find({"sid": {"$not": {"$type": "number"}}}))


def assert_store_matches(
    documents: list[dict[str, Any]],
    model: Replica,
    base_url: str,
    categories: Literal["exact", "subset"] = "exact",
) -> None:
    """One document per served story, each (bookkeeping aside) equal to the replica's truth
    (``categories="subset"`` when seeded by sid: a story page alone doesn't list its categories)."""
    sids = [doc["sid"] for doc in documents]
    assert sids == sorted(set(sids)), "a story is stored twice"
    assert sids == model.sids(), f"missing {sorted(set(model.sids()) - set(sids))[:20]}"
    for doc in documents:
        problems = mismatches(stored_item(doc), model.truth(doc["sid"], base_url), categories)
        assert not problems, (doc["sid"], problems)


def shared_keys(client: redis.Redis) -> set[str]:
    """The keys of the shared crawl's queue and dupefilter that exist."""
    return {
        key.decode() if isinstance(key, bytes) else key
        for pattern in (f"{QUEUE_KEY}*", f"{SEEN_KEY}*")
        for key in client.scan_iter(match=pattern.replace("{", "\\{").replace("}", "\\}"))
    }


def lease_owners(client: redis.Redis) -> list[str]:
    """The worker id of every lease out right now."""
    keys = QueueKeys(QUEUE_KEY)
    holders = [text(worker) for worker in client.zrange(keys.holders, 0, -1)]
    return [worker for worker in holders for _ in range(client.hlen(keys.lease(worker)))]


def leased(client: redis.Redis) -> int:
    """Requests leased right now (the queue's lease counter)."""
    return int(client.get(QueueKeys(QUEUE_KEY).leased) or 0)


class Monitor:
    """Every command Redis runs, as MONITOR prints it (``+time [db client] "cmd" …``), commands run
    by scripts included (their client is ``lua``), read by a thread while the test goes on.

    What a test measures lies between two marks: :meth:`mark` sends ``PING <mark>`` from a
    connection of its own and returns once MONITOR has shown it, so the commands of the operations
    done between two marks are exactly those printed between them, however busy the machine.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._connection = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._connection.sendall(b"MONITOR\r\n")
        buffer = b""
        while b"\r\n" not in buffer:  # +OK: every command from now on is printed
            buffer += self._connection.recv(64)
        self._rest = buffer.split(b"\r\n", 1)[1]
        self._marker = redis.Redis(port=port, socket_timeout=10)
        self._marks = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = self._rest
        self._connection.settimeout(None)
        while True:
            *complete, buffer = buffer.split(b"\r\n")
            if complete:
                with self._seen:
                    self.lines += [line.decode(errors="replace") for line in complete]
                    self._seen.notify_all()
            try:
                chunk = self._connection.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk

    def mark(self, name: str = "") -> str:
        """Send a mark; return it once MONITOR has printed it."""
        self._marks += 1
        mark = f"mark-{self._marks}-{name}"
        self._marker.execute_command("PING", mark)
        self.wait(lambda lines: any(f'"PING" "{mark}"' in line for line in lines), what=mark)
        return mark

    def wait(self, condition: Callable[[list[str]], bool], timeout: float = 30, what: str = "") -> None:
        """Wait until ``condition(lines printed so far)`` holds."""
        with self._seen:
            if not self._seen.wait_for(lambda: condition(self.lines), timeout=timeout):
                raise TimeoutError(f"MONITOR did not show {what or 'the condition'} within {timeout} s")

    def between(self, start: str, end: str) -> list[str]:
        """The commands printed between two marks (the marks' own connection left out)."""
        with self._seen:
            lines = list(self.lines)
        first = next(i for i, line in enumerate(lines) if f'"PING" "{start}"' in line)
        last = next(i for i, line in enumerate(lines) if f'"PING" "{end}"' in line)
        marker = client_of(lines[first])
        return [line for line in lines[first + 1 : last] if client_of(line) != marker]

    def close(self) -> None:
        self._marker.close()
        with contextlib.suppress(OSError):
            self._connection.shutdown(socket.SHUT_RDWR)
        self._connection.close()
        self._reader.join(timeout=10)


def client_of(line: str) -> str:
    """The client a MONITOR line names (``127.0.0.1:PORT``, or ``lua`` for a script's command)."""
    return line.split("]", 1)[0].split()[-1]


@contextmanager
def monitoring(port: int) -> Iterator[Monitor]:
    """A :class:`Monitor` of the redis-server on ``port``, stopped at the end of the block."""
    watcher = Monitor(port)
    try:
        yield watcher
    finally:
        watcher.close()


def shared_spider(redis_url: str, base_url: str = "http://www.solidot.test:8080", **settings: Any) -> Any:
    """A ``solidot`` spider whose crawler is set up for the shared scheduler, in this process (no crawl)."""
    from scrapy.utils.test import get_crawler

    from scrapy_sharedcrawl.addon import SHARED_SETTINGS
    from solidot_spider.spiders.solidot import SolidotSpider

    crawler = get_crawler(
        SolidotSpider, {"REDIS_URL": redis_url, "SOLIDOT_BASE_URL": base_url, **SHARED_SETTINGS, **settings}
    )
    spider = SolidotSpider.from_crawler(crawler, latest="0")
    crawler.spider = spider
    return spider
