"""What the cluster-wide host rate costs and holds: three workers of one shared crawl, with
``CLUSTER_HOST_RATE`` and without it, alternating in the same run against one replica process.

Prints, per round, the requests per second the replica saw (the middle 80 % of each run) and their
ratios: the limited rate against the configured one (≤ 1 is polite), and the unlimited rate against
the limited one (how far the limit, not the machine, is what paces the crawl). Moved here from the
politeness tests, which assert only upper bounds and completeness: a speed floor fails on a busy machine.

    .venv/bin/python bench/host_rate.py --stories 180 --rate 20 --rounds 2
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

from harness import ROOT, ReplicaServer, crawl_command, crawl_env, replica_server  # noqa: E402
from scheduling_fixtures import make_spider  # noqa: E402

from scrapy_sharedcrawl.seeding import Seeder  # noqa: E402
from scrapy_sharedcrawl.testing.redis_server import redis_server  # noqa: E402
from solidot_replica import Replica, ReplicaConfig  # noqa: E402

LAST_SID = 80300
WWW = "www.solidot.test"
WORKERS = 3


def seed(redis_url: str, server: ReplicaServer, sids: list[int]) -> None:
    spider = make_spider(redis_url, server.base_url)
    assert Seeder(spider).seed(spider.story_request(sid, from_range=True) for sid in sids).queued == len(sids)


def story_times(server: ReplicaServer, since: float) -> list[float]:
    arrivals = server.stats()["arrivals"].get(WWW, [])
    return sorted(t for t, _, path in arrivals if path == "/story" and t > since)


def steady_rate(times: list[float], trim: float = 0.1) -> float:
    skip = int(len(times) * trim)
    middle = times[skip : len(times) - skip]
    return (len(middle) - 1) / (middle[-1] - middle[0])


def crawl(work: Path, redis_url: str, server: ReplicaServer, sids: list[int], rate: float) -> float:
    """Three workers crawl ``sids`` at ``rate`` (0: unlimited); the rate the replica saw."""
    since = max([t for t, _, _ in server.stats()["arrivals"].get(WWW, [])], default=0.0)
    seed(redis_url, server, sids)
    key = f"bench:{uuid.uuid4().hex[:8]}:content_hash"  # a fresh content-hash record per run
    processes = []
    for index in range(WORKERS):
        name = f"r{rate:g}-w{index}"
        settings = {
            "REDIS_URL": redis_url,
            "SOLIDOT_DEDUPE_KEY": key,
            "CLUSTER_HOST_RATE": str(rate),
            "LOG_FILE": str(work / f"{name}.log"),
        }
        command = crawl_command(work / f"{name}.jsonl", {"latest": "0"}, settings)
        env = crawl_env(server, work / f"{name}.stats.json")
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env))
    if any(process.wait() != 0 for process in processes):
        raise SystemExit(f"a worker failed (logs in {work})")
    times = story_times(server, since)
    if len(times) != len(sids):
        raise SystemExit(f"{len(times)} stories fetched of {len(sids)}")
    return steady_rate(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--stories", type=int, default=180)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    sids = Replica(ReplicaConfig(stories=options.stories, last_sid=LAST_SID)).sids()
    limited: list[float] = []
    unlimited: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        replica_server(options.stories, LAST_SID) as server,
        redis_server() as redis,
    ):
        for round_ in range(options.rounds):
            work = Path(tmp) / f"round{round_}"
            work.mkdir()
            limited.append(crawl(work, redis.url, server, sids, options.rate))
            unlimited.append(crawl(work, redis.url, server, sids, 0))
            print(
                f"round {round_ + 1}: at CLUSTER_HOST_RATE={options.rate:g}: {limited[-1]:.2f} requests/s; "
                f"unlimited: {unlimited[-1]:.1f} requests/s"
            )
    rate, free = statistics.median(limited), statistics.median(unlimited)
    print(f"limited / configured rate: {rate / options.rate:.3f} (≤ 1: polite)")
    print(f"unlimited / limited: {free / rate:.1f}× (the limit, not the machine, paces the limited crawl)")


if __name__ == "__main__":
    main()
