"""Soak: a large crawl through Redis with Sentinel into MongoDB, once calm and once under every fault
at a time, in one run; at the end every stored story is compared with the replica's truth.

Both runs crawl the same scope (``--stories`` sids up to ``--last-sid``, seeded with ``seed --sids``)
with ``--workers`` workers, each against a fresh Redis (master, replica, three Sentinels) and a fresh
MongoDB (mongoeco). The faulty run, at fractions of the calm run's wall time:

- 15 %: SIGKILL a worker, start a new one;
- 30 %: SIGKILL the Redis master: Sentinel promotes the replica (the seconds each worker took to
  reach the new master are printed, from its log; tests/shared_crawl/test_failover.py measures the
  seconds to the first acknowledgement on the new master exactly, with MONITOR);
- 45 %: freeze MongoDB for 20 s (SIGSTOP … SIGCONT);
- 60 %: the replica starts injecting faults (resets, error bursts, 429s, slow and truncated pages,
  wrong charsets), until 85 %;
- 75 %: SIGKILL another worker, start a new one.

Printed per run: stories expected / stored exactly / missing / duplicated / wrong, pages the site
served, and wall time; then the extra fetches of the faulty run (work redone and fault retries) and
its slowdown. Every ``--every`` seconds a run also prints where it stands: stories in MongoDB, requests
done (acknowledged), leased and queued in Redis, so that acknowledgement can be seen to follow the
store (done within a batch of stored, leases bounded by what is in flight); at the end, the store's
stories/s (first to last stored) and the most requests leased at once. Minutes, not CI:

    .venv/bin/python bench/soak.py --stories 20000 --workers 4
    .venv/bin/python bench/soak.py --stories 85572 --workers 2 --calm-only   # the whole history
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

from cluster import QUEUE_KEY, Cluster, stored  # noqa: E402
from harness import ROOT, ReplicaServer, read_line  # noqa: E402
from mongo_server import MongoServer, mongo_server  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from sentinel_servers import SentinelSet, sentinel_set  # noqa: E402
from truth import mismatches  # noqa: E402

from scrapy_sharedcrawl.keys import QueueKeys  # noqa: E402
from solidot_replica import Replica, ReplicaConfig  # noqa: E402
from solidot_spider.archive.documents import stored_item  # noqa: E402

#: The replica's faults from 60 % to 85 % of the run (FaultConfig spec).
FAULTS = (
    "reset=0.02,burst=300x0.5,throttle=0.01,retry_after=1,slow=0.02,slow_delay=1,truncate=0.01,charset=0.02"
)
MONGO_FREEZE = 20.0
#: A worker's line when Redis answers again after an outage, with the outage's length.
BACK = re.compile(r"\[scrapy_sharedcrawl\.connection\] INFO: Redis reachable again at \S+ after ([\d.]+) s")
#: Events: (seconds after the start, name, action → what happened).
Events = list[tuple[float, str, Callable[[], str]]]
Plan = Callable[[Cluster, SentinelSet, MongoServer, ReplicaServer], Events]


@contextmanager
def soak_replica(stories: int, last_sid: int) -> Iterator[ReplicaServer]:
    """bench/soak_replica.py: the replica whose faults SIGUSR1 / SIGUSR2 switch on and off."""
    command = [
        sys.executable,
        str(BENCH / "soak_replica.py"),
        "--stories",
        str(stories),
        "--last-sid",
        str(last_sid),
        "--faults-later",
        FAULTS,
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = read_line(process, timeout=300).strip()
        if not line.startswith("READY "):
            raise RuntimeError(f"replica did not start: {line!r}")
        yield ReplicaServer(process=process, port=int(line.rsplit(":", 1)[1]))
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Outcome:
    """One run's result."""

    name: str
    wall: float
    served: int
    expected: int
    exact: int = 0
    missing: int = 0
    duplicated: int = 0
    wrong: int = 0
    retries: int = 0
    events: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.name:>6}: {self.expected} expected, {self.exact} stored exactly, {self.missing} missing, "
            f"{self.duplicated} duplicated, {self.wrong} wrong; {self.served} pages served, "
            f"{self.retries} retries (surviving workers), {self.wall:.0f} s"
        )


def compare(outcome: Outcome, documents: list[dict[str, Any]], model: Replica, base_url: str) -> None:
    expected = set(model.sids()) - set(model.unserved_sids())
    counts = Counter(doc["sid"] for doc in documents)
    outcome.expected = len(expected)
    outcome.missing = len(expected - set(counts))
    outcome.duplicated = sum(n - 1 for n in counts.values() if n > 1)
    for doc in documents:
        sid = doc["sid"]
        if sid in expected and not mismatches(stored_item(doc), model.truth(sid, base_url), "subset"):
            outcome.exact += 1
        else:
            outcome.wrong += 1
    outcome.exact -= outcome.duplicated  # a story stored twice is not "stored exactly" twice


@dataclass
class Progress:
    """Where a run stands, sampled every ``every`` seconds (see the module docstring)."""

    every: float
    #: Requests the seed pushed: a --sids crawl finds no others, so done = seeded - queued - leased, exact
    #: at the moment of the sample (the shared stats' ``scheduler/acked`` comes seconds late).
    seeded: int
    samples: list[tuple[float, int, int, int, int]] = field(default_factory=list)
    last: float = -1e9

    def sample(self, elapsed: float, servers: SentinelSet, mongo: MongoServer, database: str) -> None:
        if elapsed - self.last < self.every:
            return
        self.last = elapsed
        try:
            client = servers.master.client()
            pipe = client.pipeline(transaction=True)  # one moment
            pipe.get(QueueKeys(QUEUE_KEY).count)
            pipe.get(QueueKeys(QUEUE_KEY).leased)
            raw_queued, raw_leased = pipe.execute()
            queued, leased_now = int(raw_queued or 0), int(raw_leased or 0)
            done = self.seeded - queued - leased_now
            with MongoClient(mongo.uri, serverSelectionTimeoutMS=3000) as mongo_client:
                in_store = mongo_client[database]["stories"].estimated_document_count()
        except Exception as error:  # a failover or a frozen MongoDB: no sample this time
            print(f"  [{elapsed:6.0f} s] no sample: {type(error).__name__}: {error}", flush=True)
            return
        self.samples.append((elapsed, in_store, done, leased_now, queued))
        print(
            f"  [{elapsed:6.0f} s] stored {in_store:,}, done {done:,}, leased {leased_now:,}, "
            f"queued {queued:,}",
            flush=True,
        )

    def summary(self) -> str:
        stored_at = [(at, n) for at, n, *_ in self.samples if n > 0]
        if len(stored_at) < 2:
            return "store: too few samples"
        (first, first_n), (last, last_n) = stored_at[0], stored_at[-1]
        rate = (last_n - first_n) / max(last - first, 1e-9)
        most_leased = max(sample[3] for sample in self.samples)
        behind = max(in_store - done for _, in_store, done, *_ in self.samples)
        return (
            f"store: {rate:.0f} stories/s between samples; at most {most_leased:,} requests leased at once; "
            f"done at most {behind:,} behind stored"
        )


class Schedule:
    """Events at given seconds after the start, run between polls of the workers."""

    def __init__(self, events: Events) -> None:
        self.events = sorted(events, key=lambda event: event[0])
        self.done: list[str] = []

    def tick(self, elapsed: float, now: Callable[[], float]) -> None:
        """Run the events due at ``elapsed``; an event that ran late or took time (a failover, a
        freeze) pushes the later ones back as much, so that each fault gets its share of the crawl."""
        while self.events and self.events[0][0] <= elapsed:
            at, name, action = self.events.pop(0)
            began = now()
            detail = action()
            self.done.append(f"{began:6.0f} s {name}{': ' + detail if detail else ''}")
            print(f"  [{time.strftime('%H:%M:%S')}] {self.done[-1]}", flush=True)
            lag = now() - at
            self.events = [(later + lag, what, act) for later, what, act in self.events]
            elapsed = now()


def crawl_once(
    name: str,
    site: ReplicaServer,
    model: Replica,
    options: argparse.Namespace,
    plan: Callable[
        [Cluster, SentinelSet, MongoServer, ReplicaServer], list[tuple[float, str, Callable[[], str]]]
    ]
    | None = None,
) -> Outcome:
    settings = {
        "CONCURRENT_REQUESTS": str(options.concurrency),
        "CONCURRENT_REQUESTS_PER_DOMAIN": str(options.concurrency),
        "CLUSTER_HOST_RATE": "0",
        "SCHEDULER_LEASE_SECONDS": "30",
        "SCHEDULER_WAIT_FOR_SEED": "5",  # a replacement started after the end leaves at once
        "LOG_LEVEL": "INFO",
    }
    with (
        sentinel_set() as servers,
        mongo_server() as mongo,
    ):
        tmp = tempfile.mkdtemp(prefix=f"soak-{name}-")  # kept: the workers' logs
        print(f"  workers' logs: {tmp}", flush=True)
        database = f"soak_{name}"
        crawl = Cluster(site, Path(tmp), "", mongo.uri, database, {**servers.settings, **settings})
        seeded = crawl.seed("--sids", f"{min(model.sids())}-{max(model.sids())}")
        if seeded.returncode != 0:
            raise RuntimeError(f"seed failed: {seeded.stdout}{seeded.stderr}")
        served_before = int(site.stats()["requests"])
        start = time.monotonic()
        for number in range(options.workers):
            crawl.start_worker(f"w{number}")
        schedule = Schedule(plan(crawl, servers, mongo, site) if plan else [])
        progress = Progress(options.every, seeded.counts[0])
        try:
            while any(worker.process.poll() is None for worker in crawl.workers):
                schedule.tick(time.monotonic() - start, lambda: time.monotonic() - start)
                progress.sample(time.monotonic() - start, servers, mongo, database)
                time.sleep(0.5)  # a polling loop of a benchmark, not a test's synchronization
        finally:
            crawl.stop_all()
            if mongo.process is not None:
                mongo.process.send_signal(signal.SIGCONT)
        wall = time.monotonic() - start
        outcome = Outcome(name, wall, int(site.stats()["requests"]) - served_before, 0, events=schedule.done)
        outcome.retries = sum(int(worker.stats().get("retry/count", 0)) for worker in crawl.workers)
        codes = {worker.name: worker.process.returncode for worker in crawl.workers}
        print(f"  exit codes: {codes}; events not reached: {[e[1] for e in schedule.events]}", flush=True)
        print(f"  {progress.summary()}", flush=True)
        compare(outcome, stored(mongo.uri, database), model, site.base_url)
    return outcome


def fault_plan(calm_wall: float) -> Plan:
    def plan(crawl: Cluster, servers: SentinelSet, mongo: MongoServer, site: ReplicaServer) -> Events:
        replaced = [0]

        def replace_worker() -> str:
            victim = next(w for w in crawl.workers if w.process.poll() is None)
            victim.process.kill()
            victim.process.wait(timeout=30)
            replaced[0] += 1
            crawl.start_worker(f"new{replaced[0]}")
            return f"SIGKILLed {victim.name}, started new{replaced[0]}"

        def fail_over() -> str:
            """SIGKILL the master; → how long the workers took to reach the new one, by their own
            "Redis reachable again at … after N s" lines (counted from each one's first failed call)."""
            live = [worker for worker in crawl.workers if worker.process.poll() is None]
            before = {worker.name: len(BACK.findall(worker.log())) for worker in live}
            old, _ = servers.kill_master()
            servers.wait_for_failover(old)

            def back() -> list[float]:
                return [
                    float(found[-1])
                    for worker in live
                    if len(found := BACK.findall(worker.log())) > before[worker.name]
                ]

            deadline = time.monotonic() + 120
            while len(back()) < len(live) and time.monotonic() < deadline:
                time.sleep(0.5)  # the soak's polling loop
            seconds = back()
            shown = f"{min(seconds):.1f}–{max(seconds):.1f} s" if seconds else "not within 120 s"
            return (
                f"master SIGKILLed; {len(seconds)}/{len(live)} workers back on the new master after {shown}"
            )

        def freeze_mongo() -> str:
            assert mongo.process is not None
            mongo.process.send_signal(signal.SIGSTOP)
            time.sleep(MONGO_FREEZE)  # the fault itself: MongoDB frozen this long
            mongo.process.send_signal(signal.SIGCONT)
            return f"MongoDB frozen {MONGO_FREEZE:.0f} s"

        def faults(on: bool) -> Callable[[], str]:
            def switch() -> str:
                site.process.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)
                return FAULTS if on else ""

            return switch

        return [
            (0.15 * calm_wall, "worker killed", replace_worker),
            (0.30 * calm_wall, "Redis failover", fail_over),
            (0.45 * calm_wall, "MongoDB frozen", freeze_mongo),
            (0.60 * calm_wall, "replica faults on", faults(True)),
            (0.75 * calm_wall, "worker killed", replace_worker),
            (0.85 * calm_wall, "replica faults off", faults(False)),
        ]

    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stories", type=int, default=20000, help="sid slots of the scope (the last N)")
    parser.add_argument("--last-sid", type=int, default=85572)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=16, help="CONCURRENT_REQUESTS of each worker")
    parser.add_argument("--calm-only", action="store_true", help="the calm run only (no faulty run)")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between progress samples")
    options = parser.parse_args()
    model = Replica(ReplicaConfig(stories=options.stories, last_sid=options.last_sid))
    print(f"scope: sids {min(model.sids())}-{max(model.sids())}, {options.workers} workers", flush=True)
    with soak_replica(options.stories, options.last_sid) as site:
        print("calm run", flush=True)
        calm = crawl_once("calm", site, model, options)
        print(calm.line(), flush=True)
        if options.calm_only:
            return
        print("faulty run", flush=True)
        faulty = crawl_once("faulty", site, model, options, fault_plan(calm.wall))
        print(faulty.line(), flush=True)
    print()
    print(calm.line())
    print(faulty.line())
    for event in faulty.events:
        print(f"  {event}")
    extra = faulty.served - calm.served
    print(
        f"extra fetches under faults: {extra} ({extra / max(calm.served, 1):.1%}; work redone and retries of "
        f"faulted pages), slowdown {faulty.wall / calm.wall:.2f}×"
    )


if __name__ == "__main__":
    main()
