"""Scale-out efficiency of the shared crawl on scrapyd: 1, 2 and 4 worker jobs, in one run.

Two real scrapyd nodes (2 slots each) run the worker jobs that ``solidot-crawl
workers up N`` schedules; a private redis-server holds the crawl; the replica
answers every page after a fixed delay (``slow=1``), so the crawl is I/O-bound
and this machine's two cores don't cap it. Every worker has the same
concurrency, and the cluster-wide host rate is off, so neither binds.

For each N (and each round, alternating 1, 2, 4, 1, 2, 4…) the crawl is seeded
afresh, ``workers up N --wait`` starts the workers (the time until all N are
crawling is printed), and after a warm-up the pages the replica served are
counted over a fixed window: that is the steady rate, free of start-up and
finishing. Efficiency at N is pages/s of N workers over N × pages/s of one.

    .venv/bin/python bench/scale_out.py --rounds 2
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

from harness import DOMAIN, FAST_SETTINGS, ROOT, ReplicaServer, replica_server, wait_for  # noqa: E402
from scrapyd_node import deploy, fleet_config, run_workers, scrapyd_nodes  # noqa: E402

from scrapy_sharedcrawl.testing.redis_server import redis_server  # noqa: E402
from solidot_replica import Replica, ReplicaConfig  # noqa: E402

WORKERS = (1, 2, 4)


def job_settings(concurrency: int) -> list[str]:
    settings = {
        **FAST_SETTINGS,
        "CONCURRENT_REQUESTS": str(concurrency),
        "CONCURRENT_REQUESTS_PER_DOMAIN": str(concurrency),
        "CLUSTER_HOST_RATE": "0",  # no cluster-wide limit: it must not bind here
        "SOLIDOT_OUTPUT": "",  # items are not the measure; no shared feed file between jobs
        "SCHEDULER_WAIT_FOR_SEED": "300",
        "LOG_LEVEL": "WARNING",
    }
    return [f"--set={name}={value}" for name, value in settings.items()]


def served(server: ReplicaServer) -> int:
    return int(server.stats()["requests"])


def measure(
    server: ReplicaServer,
    config: Path,
    client: redis.Redis,
    env: dict[str, str],
    count: int,
    args: argparse.Namespace,
) -> tuple[float, float]:
    """One phase: seed, ``workers up COUNT``, count pages over the window. → (pages/s, seconds to crawl)."""
    client.flushall()
    redis_url = env["REDIS_URL"]
    seed = [sys.executable, "-m", "solidot_spider.cli", "seed", "--sids", f"{args.first_sid}-{args.last_sid}"]
    subprocess.run(seed, cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    up = run_workers(
        config, "up", str(count), *job_settings(args.concurrency), "--wait", "120", redis_url=redis_url
    )
    found = re.search(r"crawling after ([\d.]+) s", up.stdout)
    if up.returncode != 0 or not found:
        raise RuntimeError(f"workers up {count} failed: {up.stdout}{up.stderr}")
    time.sleep(args.warmup)  # a benchmark's measurement window, not synchronization
    start_pages, start = served(server), time.monotonic()
    time.sleep(args.window)
    rate = (served(server) - start_pages) / (time.monotonic() - start)
    if int(client.get("{solidot}:requests:count") or 0) == 0:
        raise RuntimeError("the queue ran dry inside the window: seed more sids (--stories)")
    if rate <= 0:
        raise RuntimeError(f"{count} workers fetched nothing in the window: see the nodes' job logs")
    down = run_workers(config, "down", "0", redis_url=redis_url)
    if down.returncode != 0:
        raise RuntimeError(f"workers down failed: {down.stdout}{down.stderr}")
    return rate, float(found[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stories", type=int, default=6000, help="sid slots seeded for each phase")
    parser.add_argument("--delay", type=float, default=0.5, help="seconds the replica takes per page")
    parser.add_argument("--concurrency", type=int, default=8, help="CONCURRENT_REQUESTS of each worker")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    args.last_sid = 85572
    model = Replica(ReplicaConfig(stories=args.stories, last_sid=args.last_sid))
    args.first_sid = model.first_sid

    rates: dict[int, list[float]] = {count: [] for count in WORKERS}
    startup: dict[int, list[float]] = {count: [] for count in WORKERS}
    with (
        replica_server(args.stories, args.last_sid, faults=f"slow=1,slow_delay={args.delay}") as server,
        redis_server() as shared,
        tempfile.TemporaryDirectory() as tmp,
    ):
        work = Path(tmp)
        env = {**os.environ, "SOLIDOT_BASE_URL": server.base_url, "SOLIDOT_RESOLVE": f"{DOMAIN}=127.0.0.1"}
        env["REDIS_URL"] = shared.url
        env.pop("MONGO_URI", None)
        client = redis.Redis.from_url(shared.url)
        with scrapyd_nodes(work, env, count=2, slots=2) as nodes:
            deploy(nodes, "1", work)
            config = fleet_config(nodes, work / "fleet.cfg")
            for round_no in range(args.rounds):
                for count in WORKERS:
                    rate, started = measure(server, config, client, env, count, args)
                    rates[count].append(rate)
                    startup[count].append(started)
                    print(
                        f"round {round_no + 1}: {count} workers {rate:6.1f} pages/s, "
                        f"crawling {started:.1f} s after `workers up`",
                        flush=True,
                    )
                    wait_for(  # the cancelled jobs have ended: the next phase starts on free slots
                        lambda: not any(node.jobs()["running"] or node.jobs()["pending"] for node in nodes),
                        timeout=120,
                        interval=0.5,
                        what="every job ended",
                    )
    one = statistics.median(rates[1])
    print(
        f"\nreplica delay {args.delay} s per page, {args.concurrency} requests in flight per worker, "
        f"window {args.window:g} s after {args.warmup:g} s warm-up, {args.rounds} rounds (medians)"
    )
    print("workers  pages/s  efficiency  up → crawling (s)")
    for count in WORKERS:
        rate, started = statistics.median(rates[count]), statistics.median(startup[count])
        print(f"{count:>7}  {rate:7.1f}  {rate / (count * one):10.2f}  {started:17.1f}")


if __name__ == "__main__":
    main()
