"""One worker of the shared Redis crawl against the same spider on Scrapy's own scheduler.

Both crawl the same story pages of one replica process, in the same run,
alternating, with the same settings; the distributed run uses a private
redis-server started here (flushed before each round). Prints pages/s of each
and their ratio, Redis round trips per page, and the dupefilter's bytes per URL
as the crawl left them.

    .venv/bin/python bench/distributed_throughput.py --stories 5000 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import redis

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
sys.path.insert(0, str(BENCH))

from crawl_throughput import (  # noqa: E402
    ROOT,
    Run,
    median_rate,
    print_runs,
    run_measured,
    solidot_crawl,
)
from harness import DOMAIN, replica_server  # noqa: E402
from redis_server import redis_server  # noqa: E402

from solidot_replica import Replica, ReplicaConfig  # noqa: E402


def dupefilter_bytes_per_url(client: redis.Redis) -> float:
    """MEMORY USAGE over the dupefilter's keys, per fingerprint held in its set shards."""
    keys = list(client.scan_iter(match="*:seen*"))
    urls = sum(int(client.scard(key)) for key in keys if client.type(key) == b"set")
    return sum(client.memory_usage(key, samples=0) or 0 for key in keys) / max(urls, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stories", type=int, default=5_000)
    parser.add_argument("--last-sid", type=int, default=85572)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()

    model = Replica(ReplicaConfig(stories=options.stories, last_sid=options.last_sid))
    low, high = model.first_sid, options.last_sid
    runs: list[Run] = []
    round_trips: list[float] = []
    seen_bytes: list[float] = []
    with (
        replica_server(options.stories, options.last_sid) as server,
        redis_server() as shared,
        tempfile.TemporaryDirectory() as tmp,
    ):
        work = Path(tmp)
        env = {**os.environ, "SOLIDOT_BASE_URL": server.base_url, "SOLIDOT_RESOLVE": f"{DOMAIN}=127.0.0.1"}
        env.pop("REDIS_URL", None)
        client = redis.Redis.from_url(shared.url)
        for round_no in range(options.rounds):
            client.flushall()
            stats = work / f"redis-{round_no}.json"
            # SCHEDULER_PERSIST: keep the dupefilter after the crawl, to be measured
            shared_settings = {
                "REDIS_URL": shared.url,
                "SOLIDOT_STATS_FILE": str(stats),
                "SCHEDULER_PERSIST": "True",
            }
            command = solidot_crawl(work, "redis", low, high, shared_settings)
            run = run_measured("redis", command, ROOT, env, stats)
            runs.append(run)
            raw = json.loads(stats.read_text())
            round_trips.append(raw.get("scheduler/redis/round_trips", 0) / max(run.pages, 1))
            seen_bytes.append(dupefilter_bytes_per_url(client))
            stats = work / f"default-{round_no}.json"
            command = solidot_crawl(work, "default", low, high, {"SOLIDOT_STATS_FILE": str(stats)})
            runs.append(run_measured("default", command, ROOT, env, stats))

    print(f"replica: {options.stories} sid slots, {len(model.sids())} stories; {options.rounds} rounds")
    print_runs(runs)
    shared_rate, default_rate = median_rate(runs, "redis"), median_rate(runs, "default")
    print(
        f"median pages/s: 1 worker on Redis {shared_rate:.1f}, default scheduler {default_rate:.1f}, "
        f"ratio {shared_rate / default_rate:.2f}x"
    )
    print(f"Redis round trips per page: {statistics.median(round_trips):.2f}")
    print(f"dupefilter bytes per URL seen: {statistics.median(seen_bytes):.1f}")


if __name__ == "__main__":
    main()
